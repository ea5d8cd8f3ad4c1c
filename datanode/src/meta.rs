//! The `.meta` file format kept beside every replica's data file.
//!
//! ```text
//! offset 0   8 bytes  magic "DFSMETA1"
//! offset 8   u32 LE   format version (1)
//! offset 12  u32 LE   bytes per checksum (512)
//! offset 16  u32 LE   CRC32 of data chunk 0, then one per 512-byte chunk
//! ```
//!
//! The last chunk of the data file may be short; its CRC covers only its
//! bytes. The checksum layout is the wire layout of `dfs_proto::checksum`, so
//! a range of the `.meta` file is sent to readers as it is stored.

use dfs_proto::checksum::CHECKSUM_SIZE;
use dfs_proto::defaults::BYTES_PER_CHECKSUM;

/// The first 8 bytes of every `.meta` file.
pub const MAGIC: [u8; 8] = *b"DFSMETA1";
/// The only format version written and accepted.
pub const VERSION: u32 = 1;
/// Bytes of the header before the first checksum.
pub const HEADER_LEN: usize = 16;

/// Why a `.meta` file (or buffer) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    /// Fewer than [`HEADER_LEN`] bytes.
    #[error("checksum file has {len} bytes, shorter than its {HEADER_LEN}-byte header")]
    Truncated {
        /// Bytes present.
        len: u64,
    },
    /// The magic is not `DFSMETA1`.
    #[error("checksum file does not start with the DFSMETA1 magic")]
    BadMagic,
    /// An unknown format version.
    #[error("checksum file has format version {0}, only version {VERSION} is known")]
    BadVersion(u32),
    /// A chunk size other than 512 bytes.
    #[error("checksum file covers {0}-byte chunks, only {BYTES_PER_CHECKSUM} is supported")]
    BadChunkSize(u32),
    /// The checksum area does not hold exactly one CRC per data chunk.
    #[error("checksum file has {checksum_bytes} checksum bytes for {data_len} data bytes (expected {expected})")]
    Length {
        /// Length of the data the checksums should cover.
        data_len: u64,
        /// Checksum bytes present after the header.
        checksum_bytes: u64,
        /// Checksum bytes expected.
        expected: u64,
    },
    /// A checksum area whose length is not a multiple of 4.
    #[error("checksum area of {0} bytes is not a whole number of 4-byte checksums")]
    Ragged(u64),
}

/// The header every `.meta` file starts with.
pub fn encode_header() -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[..8].copy_from_slice(&MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&(BYTES_PER_CHECKSUM as u32).to_le_bytes());
    out
}

/// Checks a header: magic, version and chunk size.
pub fn decode_header(bytes: &[u8]) -> Result<(), MetaError> {
    if bytes.len() < HEADER_LEN {
        return Err(MetaError::Truncated {
            len: bytes.len() as u64,
        });
    }
    if bytes[..8] != MAGIC {
        return Err(MetaError::BadMagic);
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != VERSION {
        return Err(MetaError::BadVersion(version));
    }
    let chunk = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
    if chunk as usize != BYTES_PER_CHECKSUM {
        return Err(MetaError::BadChunkSize(chunk));
    }
    Ok(())
}

/// Checksum bytes that cover `data_len` data bytes.
pub fn checksum_len(data_len: u64) -> u64 {
    data_len.div_ceil(BYTES_PER_CHECKSUM as u64) * CHECKSUM_SIZE as u64
}

/// Length of the `.meta` file of a replica of `data_len` bytes.
pub fn meta_len(data_len: u64) -> u64 {
    HEADER_LEN as u64 + checksum_len(data_len)
}

/// Position in the `.meta` file of the checksum of the chunk holding byte
/// `data_offset`.
pub fn checksum_offset(data_offset: u64) -> u64 {
    HEADER_LEN as u64 + data_offset / BYTES_PER_CHECKSUM as u64 * CHECKSUM_SIZE as u64
}

/// Number of whole checksums in a `.meta` file of `meta_len` bytes.
pub fn checksums_in(meta_len: u64) -> Result<u64, MetaError> {
    let area = meta_len
        .checked_sub(HEADER_LEN as u64)
        .ok_or(MetaError::Truncated { len: meta_len })?;
    if area % CHECKSUM_SIZE as u64 != 0 {
        return Err(MetaError::Ragged(area));
    }
    Ok(area / CHECKSUM_SIZE as u64)
}

/// Checks that a `.meta` file of `meta_len` bytes covers exactly `data_len`
/// data bytes.
pub fn check_lengths(data_len: u64, meta_len: u64) -> Result<(), MetaError> {
    let checksum_bytes = meta_len
        .checked_sub(HEADER_LEN as u64)
        .ok_or(MetaError::Truncated { len: meta_len })?;
    let expected = checksum_len(data_len);
    if checksum_bytes != expected {
        return Err(MetaError::Length {
            data_len,
            checksum_bytes,
            expected,
        });
    }
    Ok(())
}

/// Encodes a whole `.meta` file for `checksums` (as produced by
/// `dfs_proto::checksum::compute`).
pub fn encode(checksums: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + checksums.len());
    out.extend_from_slice(&encode_header());
    out.extend_from_slice(checksums);
    out
}

/// Decodes a whole `.meta` file that must cover `data_len` data bytes and
/// returns its checksum area.
pub fn decode(bytes: &[u8], data_len: u64) -> Result<&[u8], MetaError> {
    decode_header(bytes)?;
    check_lengths(data_len, bytes.len() as u64)?;
    Ok(&bytes[HEADER_LEN..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use dfs_proto::checksum;
    use proptest::prelude::*;

    #[test]
    fn header_layout_is_fixed() {
        let h = encode_header();
        assert_eq!(&h[..8], b"DFSMETA1");
        assert_eq!(&h[8..12], &[1, 0, 0, 0]);
        assert_eq!(&h[12..16], &[0, 2, 0, 0]);
        assert_eq!(decode_header(&h), Ok(()));
    }

    #[test]
    fn malformed_headers_are_rejected() {
        let good = encode_header();
        assert_eq!(
            decode_header(&good[..15]),
            Err(MetaError::Truncated { len: 15 })
        );
        assert_eq!(decode_header(&[]), Err(MetaError::Truncated { len: 0 }));
        let mut bad = good;
        bad[0] = b'X';
        assert_eq!(decode_header(&bad), Err(MetaError::BadMagic));
        let mut bad = good;
        bad[8] = 2;
        assert_eq!(decode_header(&bad), Err(MetaError::BadVersion(2)));
        let mut bad = good;
        bad[12..16].copy_from_slice(&1024u32.to_le_bytes());
        assert_eq!(decode_header(&bad), Err(MetaError::BadChunkSize(1024)));
    }

    #[test]
    fn lengths_must_agree() {
        assert_eq!(meta_len(0), 16);
        assert_eq!(meta_len(1), 20);
        assert_eq!(meta_len(512), 20);
        assert_eq!(meta_len(513), 24);
        assert_eq!(check_lengths(513, 24), Ok(()));
        assert!(matches!(
            check_lengths(513, 20),
            Err(MetaError::Length { .. })
        ));
        assert!(matches!(
            check_lengths(0, 3),
            Err(MetaError::Truncated { len: 3 })
        ));
        assert_eq!(checksums_in(24), Ok(2));
        assert_eq!(checksums_in(23), Err(MetaError::Ragged(7)));
        assert_eq!(checksum_offset(0), 16);
        assert_eq!(checksum_offset(1023), 20);
        assert_eq!(checksum_offset(1024), 24);
    }

    proptest! {
        #[test]
        fn roundtrip(data in proptest::collection::vec(any::<u8>(), 0..6000)) {
            let sums = checksum::compute(&data);
            let file = encode(&sums);
            prop_assert_eq!(file.len() as u64, meta_len(data.len() as u64));
            let area = decode(&file, data.len() as u64).unwrap();
            prop_assert_eq!(area, &sums[..]);
            prop_assert_eq!(checksum::verify(&data, area), Ok(()));
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), data_len in any::<u64>()) {
            let _ = decode(&bytes, data_len);
            let _ = checksums_in(bytes.len() as u64);
        }

        #[test]
        fn wrong_data_length_is_rejected(data in proptest::collection::vec(any::<u8>(), 0..3000), delta in 1u64..2000) {
            let file = encode(&checksum::compute(&data));
            let other = data.len() as u64 + delta;
            if checksum_len(other) != checksum_len(data.len() as u64) {
                let is_length_error = matches!(decode(&file, other), Err(MetaError::Length { .. }));
                prop_assert!(is_length_error);
            }
        }
    }
}
