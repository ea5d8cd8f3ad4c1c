//! Cutting one block's data into packets: offsets, checksums, and the
//! partial chunk that must be resent after an hflush.
//!
//! Invariant: every packet starts at a multiple of 512 bytes in the block.
//! When a packet ends inside a chunk (an hflush sent a partial packet), the
//! next packet starts again at that chunk's beginning and carries the
//! chunk's bytes once more; the datanode truncates its replica to the
//! packet's offset before writing, so the chunk's CRC stays whole.

use bytes::{Bytes, BytesMut};
use dfs_proto::checksum;
use dfs_proto::defaults::BYTES_PER_CHECKSUM;

/// One packet ready to be sent (and kept until acknowledged, for resending
/// after a pipeline recovery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutPacket {
    /// Offset of `data[0]` in the block.
    pub(crate) offset: u64,
    /// The bytes.
    pub(crate) data: Bytes,
    /// One CRC per 512-byte chunk of `data`.
    pub(crate) checksums: Bytes,
    /// The block's last packet.
    pub(crate) last: bool,
}

impl OutPacket {
    /// Block offset just past this packet's data.
    pub(crate) fn end(&self) -> u64 {
        self.offset + self.data.len() as u64
    }
}

/// The packet cutter of one block.
#[derive(Debug, Default)]
pub(crate) struct Packetizer {
    /// Block offset just past the last byte handed to `packet`.
    sent: u64,
    /// The bytes of the partial chunk at the end of what was sent.
    tail: Bytes,
}

impl Packetizer {
    /// Bytes of the block handed out so far.
    pub(crate) fn sent(&self) -> u64 {
        self.sent
    }

    /// The next packet, carrying `data` (preceded by the partial chunk of
    /// the previous packet, if any).
    pub(crate) fn packet(&mut self, data: Bytes, last: bool) -> OutPacket {
        let offset = self.sent - self.tail.len() as u64;
        let new_len = data.len() as u64;
        let payload = if self.tail.is_empty() {
            data
        } else {
            let mut b = BytesMut::with_capacity(self.tail.len() + data.len());
            b.extend_from_slice(&self.tail);
            b.extend_from_slice(&data);
            b.freeze()
        };
        self.sent += new_len;
        let partial = payload.len() % BYTES_PER_CHECKSUM;
        self.tail = payload.slice(payload.len() - partial..);
        let checksums = Bytes::from(checksum::compute(&payload));
        OutPacket {
            offset,
            data: payload,
            checksums,
            last,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize, seed: u8) -> Bytes {
        Bytes::from(
            (0..n)
                .map(|i| (i as u8).wrapping_add(seed))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn full_packets_are_aligned_and_checksummed() {
        let mut p = Packetizer::default();
        let a = p.packet(bytes(65536, 0), false);
        let b = p.packet(bytes(65536, 1), false);
        assert_eq!((a.offset, b.offset), (0, 65536));
        assert_eq!(a.checksums.len(), 128 * 4);
        assert_eq!(checksum::verify(&b.data, &b.checksums), Ok(()));
        assert_eq!(p.sent(), 131072);
    }

    #[test]
    fn partial_chunk_is_resent_after_flush() {
        let mut p = Packetizer::default();
        let first = p.packet(bytes(1000, 0), false);
        assert_eq!(first.offset, 0);
        assert_eq!(first.checksums.len(), 2 * 4);
        let second = p.packet(bytes(100, 9), false);
        // Restarts at the chunk boundary 512 with the 488 bytes already sent.
        assert_eq!(second.offset, 512);
        assert_eq!(second.data.len(), 488 + 100);
        assert_eq!(&second.data[..488], &first.data[512..]);
        assert_eq!(checksum::verify(&second.data, &second.checksums), Ok(()));
        assert_eq!(second.end(), 1100);
        // An empty last packet resends the partial chunk, still aligned.
        let last = p.packet(Bytes::new(), true);
        assert_eq!(last.offset, 1024);
        assert_eq!(last.data.len(), 76);
        assert!(last.last);
        assert_eq!(p.sent(), 1100);
    }

    #[test]
    fn empty_last_packet_on_a_boundary_is_empty() {
        let mut p = Packetizer::default();
        p.packet(bytes(1024, 0), false);
        let last = p.packet(Bytes::new(), true);
        assert_eq!(
            (last.offset, last.data.len(), last.checksums.len()),
            (1024, 0, 0)
        );
    }

    #[test]
    fn every_offset_is_a_multiple_of_512() {
        let mut p = Packetizer::default();
        for n in [1usize, 511, 512, 513, 4095, 70000, 3] {
            let pk = p.packet(bytes(n, n as u8), false);
            assert_eq!(pk.offset % 512, 0);
            assert_eq!(pk.end(), p.sent());
        }
    }
}
