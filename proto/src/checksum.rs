//! The block checksum format: one CRC32 (IEEE, computed by `crc32fast`) per
//! 512-byte chunk, stored as 4 little-endian bytes. The last chunk of a
//! block may be shorter than 512 bytes; its CRC covers only its bytes.
//!
//! The same layout is used on the wire (`Packet.checksums`,
//! `ReadBlockResponse.checksums`) and in the datanode's `.meta` files, so a
//! replica can be served without recomputing anything.

use crate::defaults::BYTES_PER_CHECKSUM;

/// Bytes of one stored checksum.
pub const CHECKSUM_SIZE: usize = 4;

/// A chunk whose data does not match its checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChecksumError {
    /// The chunk starting at `offset` (relative to the checked buffer) is corrupt.
    #[error("checksum mismatch in the chunk at offset {offset}")]
    Mismatch {
        /// Offset of the bad chunk within the checked data.
        offset: u64,
    },
    /// The checksum buffer does not have one CRC per chunk.
    #[error("{got} checksum bytes for {data_len} data bytes (expected {expected})")]
    Length {
        /// Data bytes.
        data_len: usize,
        /// Checksum bytes received.
        got: usize,
        /// Checksum bytes expected.
        expected: usize,
    },
}

/// Number of chunks, and so of checksums, covering `len` bytes.
pub fn chunk_count(len: usize) -> usize {
    len.div_ceil(BYTES_PER_CHECKSUM)
}

/// The CRC32 of one chunk.
pub fn crc(chunk: &[u8]) -> u32 {
    crc32fast::hash(chunk)
}

/// Appends the checksums of `data`, chunk by chunk, to `out`.
pub fn compute_into(data: &[u8], out: &mut Vec<u8>) {
    out.reserve(chunk_count(data.len()) * CHECKSUM_SIZE);
    for chunk in data.chunks(BYTES_PER_CHECKSUM) {
        out.extend_from_slice(&crc(chunk).to_le_bytes());
    }
}

/// The checksums of `data`, chunk by chunk.
pub fn compute(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    compute_into(data, &mut out);
    out
}

/// Checks `data` against `checksums` (one CRC per 512-byte chunk).
pub fn verify(data: &[u8], checksums: &[u8]) -> Result<(), ChecksumError> {
    let expected = chunk_count(data.len()) * CHECKSUM_SIZE;
    if checksums.len() != expected {
        return Err(ChecksumError::Length {
            data_len: data.len(),
            got: checksums.len(),
            expected,
        });
    }
    for (i, (chunk, sum)) in data
        .chunks(BYTES_PER_CHECKSUM)
        .zip(checksums.chunks_exact(CHECKSUM_SIZE))
        .enumerate()
    {
        let stored = u32::from_le_bytes([sum[0], sum[1], sum[2], sum[3]]);
        if crc(chunk) != stored {
            return Err(ChecksumError::Mismatch {
                offset: (i * BYTES_PER_CHECKSUM) as u64,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_data_has_no_checksums() {
        assert!(compute(&[]).is_empty());
        assert_eq!(verify(&[], &[]), Ok(()));
    }

    #[test]
    fn flipped_byte_is_found_in_its_chunk() {
        let mut data = vec![7u8; 2000];
        let sums = compute(&data);
        data[1500] ^= 1;
        assert_eq!(
            verify(&data, &sums),
            Err(ChecksumError::Mismatch { offset: 1024 })
        );
    }

    proptest! {
        #[test]
        fn roundtrip(data in proptest::collection::vec(any::<u8>(), 0..5000)) {
            let sums = compute(&data);
            prop_assert_eq!(sums.len(), chunk_count(data.len()) * 4);
            prop_assert_eq!(verify(&data, &sums), Ok(()));
        }

        #[test]
        fn wrong_length_is_rejected(data in proptest::collection::vec(any::<u8>(), 1..3000), extra in 1usize..8) {
            let mut sums = compute(&data);
            sums.extend(std::iter::repeat_n(0u8, extra));
            let is_length_error = matches!(verify(&data, &sums), Err(ChecksumError::Length { .. }));
            prop_assert!(is_length_error);
        }

        #[test]
        fn any_single_bit_flip_is_detected(data in proptest::collection::vec(any::<u8>(), 1..3000), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let sums = compute(&data);
            let mut bad = data.clone();
            let i = pos.index(bad.len());
            bad[i] ^= 1 << bit;
            let offset = (i / BYTES_PER_CHECKSUM * BYTES_PER_CHECKSUM) as u64;
            prop_assert_eq!(verify(&bad, &sums), Err(ChecksumError::Mismatch { offset }));
        }
    }
}
