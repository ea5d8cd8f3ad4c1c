//! Writing and reading one replica's files: [`ReplicaWriter`] appends
//! verified packets and finalizes, [`ReplicaReader`] serves byte ranges
//! with every checksum verified.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use dfs_proto::checksum::{self, CHECKSUM_SIZE};
use dfs_proto::defaults::BYTES_PER_CHECKSUM;
use dfs_proto::ExtendedBlock;
use tracing::warn;

use super::files::{check_header, fsync_dir, rename};
use super::{BlockStore, Replica, ReplicaInfo, ReplicaMeta, ReplicaState, CHUNK};
use crate::error::{Error, Result};
use crate::meta;
use crate::page_cache::{self, DropBehind};

/// Writes one replica: packets, sync, finalize. Dropping it without
/// finalizing leaves a replica being written in place (for recovery) and
/// removes a temporary copy.
#[derive(Debug)]
pub struct ReplicaWriter {
    pub(super) store: Arc<BlockStore>,
    pub(super) replica: Arc<Replica>,
    pub(super) token: u64,
    pub(super) id: u64,
    pub(super) gs: u64,
    /// Where the files are: `Rbw` or `Temporary`.
    pub(super) state: ReplicaState,
    pub(super) data: File,
    pub(super) meta: File,
    pub(super) done: bool,
    /// Written windows leave the page cache behind the writer.
    pub(super) behind: DropBehind,
}

/// What the pipeline acknowledged of a replica being written, kept for
/// readers ([`BlockStore::visible_length`]): held by the node's responder,
/// which acknowledges packets while the writer writes them.
#[derive(Debug, Clone)]
pub struct AckedLength {
    replica: Arc<Replica>,
    token: u64,
}

impl AckedLength {
    /// Bytes `[0, end)` are acknowledged by this node and every node after
    /// it. Ignored once another writer or a recovery took the replica over.
    /// Never waits for a disk write (the writer holds the replica's other
    /// lock while it writes).
    pub fn advance(&self, end: u64) {
        let mut acked = self.replica.acked.lock();
        if acked.writer == self.token {
            acked.bytes = acked.bytes.max(end);
        }
    }
}

impl ReplicaWriter {
    /// A handle to record what the pipeline acknowledged of this replica.
    pub fn acked_length(&self) -> AckedLength {
        AckedLength {
            replica: self.replica.clone(),
            token: self.token,
        }
    }

    /// The replica with its current length.
    pub fn block(&self) -> ExtendedBlock {
        ExtendedBlock {
            id: self.id,
            generation_stamp: self.gs,
            length: self.replica.meta.lock().len,
        }
    }

    fn check(&self, m: &ReplicaMeta) -> Result<()> {
        if m.removed || m.writer != self.token || self.done {
            return Err(Error::Superseded { block: self.id });
        }
        Ok(())
    }

    /// Writes a packet's data and checksums at `offset`. A packet starting
    /// below the replica's length (a partial last chunk is resent after
    /// hflush) must repeat the bytes the replica has: only what follows is
    /// written, then the checksums, so the acknowledged bytes are never cut
    /// and a crash in between leaves the old checksum, which the start-up
    /// scan finds. The checksums must have been verified.
    pub fn write_packet(&mut self, offset: u64, data: &[u8], checksums: &[u8]) -> Result<()> {
        let id = self.id;
        // A failed storage acknowledges nothing more, even through the
        // open files of a replica it can no longer finalize.
        if let Some(reason) = self.store.failure() {
            return Err(Error::StorageFailed { reason });
        }
        let mut m = self.replica.meta.lock();
        self.check(&m)?;
        let len = m.len;
        if data.is_empty() {
            if offset != len {
                return Err(Error::invalid(
                    id,
                    format!("empty packet at offset {offset} but the replica has {len} bytes"),
                ));
            }
            return Ok(());
        }
        if offset % CHUNK != 0 {
            return Err(Error::invalid(
                id,
                format!("packet offset {offset} is not a multiple of {CHUNK}"),
            ));
        }
        if offset > len {
            return Err(Error::invalid(
                id,
                format!("packet at offset {offset} leaves a gap after the replica's {len} bytes"),
            ));
        }
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or_else(|| Error::invalid(id, "packet ends beyond 2^64"))?;
        if checksums.len() as u64 != meta::checksum_len(data.len() as u64) {
            return Err(Error::invalid(
                id,
                format!(
                    "{} checksum bytes for {} data bytes",
                    checksums.len(),
                    data.len()
                ),
            ));
        }
        if end < len {
            return Err(Error::invalid(
                id,
                format!("packet at {offset}..{end} ends inside the replica's {len} bytes"),
            ));
        }
        // Bytes of the packet the replica already has (acknowledged).
        let have = (len - offset) as usize;
        if have > 0 {
            let mut kept = vec![0u8; have];
            self.data
                .read_exact_at(&mut kept, offset)
                .map_err(|e| Error::io(format!("cannot read blk_{id} at {offset}"), e))?;
            if kept[..] != data[..have] {
                return Err(Error::invalid(
                    id,
                    format!("packet at {offset} differs from the {have} bytes the replica already has there"),
                ));
            }
        }
        self.data
            .write_all_at(&data[have..], len)
            .map_err(|e| Error::io(format!("cannot write blk_{id} at {len}"), e))?;
        self.meta
            .write_all_at(checksums, meta::checksum_offset(offset))
            .map_err(|e| Error::io(format!("cannot write the checksums of blk_{id}"), e))?;
        m.len = end;
        drop(m);
        self.behind.advance(&self.data, end);
        Ok(())
    }

    /// Fsyncs data and checksums (hsync).
    pub fn sync(&mut self) -> Result<()> {
        // The files belong to this writer: fsync without holding the lock,
        // so readers and reports of the replica never wait for the disk.
        self.check(&self.replica.meta.lock())?;
        self.sync_files()
    }

    fn sync_files(&self) -> Result<()> {
        let err = |e| Error::io(format!("cannot sync blk_{}", self.id), e);
        self.data.sync_all().map_err(err)?;
        self.meta.sync_all().map_err(err)
    }

    /// Fsyncs the replica and moves it to `into` (`Finalized`, or `Rbw` for
    /// a temporary copy that a pipeline recovery will continue).
    pub fn finalize(mut self, into: ReplicaState) -> Result<ExtendedBlock> {
        let (id, gs) = (self.id, self.gs);
        if into == ReplicaState::Temporary {
            return Err(Error::invalid(
                id,
                "a replica cannot be finalized as temporary",
            ));
        }
        self.sync()?;
        // Clean after the fsync: the pages go at once.
        page_cache::drop_all(&self.data);
        page_cache::drop_all(&self.meta);
        let moved = into != self.state;
        let block = {
            let mut m = self.replica.meta.lock();
            self.check(&m)?;
            if moved {
                let store = &self.store;
                rename(&store.data_path(self.state, id), &store.data_path(into, id))?;
                rename(
                    &store.meta_path(self.state, id, gs),
                    &store.meta_path(into, id, gs),
                )?;
            }
            m.state = into;
            m.writer = 0;
            self.replica.info(&m).block
        };
        self.done = true;
        if moved {
            fsync_dir(&self.store.root.join(into.dir()))?;
        }
        Ok(block)
    }

    /// Deletes a replica that never got data (pipeline setup failed).
    pub fn abandon(mut self) {
        self.discard();
    }

    fn discard(&mut self) {
        self.done = true;
        {
            let mut map = self.store.replicas.lock();
            let mut m = self.replica.meta.lock();
            if m.removed || m.writer != self.token {
                return;
            }
            if map
                .get(&self.id)
                .is_some_and(|r| Arc::ptr_eq(r, &self.replica))
            {
                map.remove(&self.id);
            }
            m.removed = true;
            m.writer = 0;
        }
        if let Err(e) = self
            .store
            .remove_files(self.state, self.id, true, Some(self.gs))
        {
            warn!(block = self.id, error = %e, "cannot remove an abandoned replica");
        }
    }
}

impl Drop for ReplicaWriter {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.state == ReplicaState::Temporary {
            self.discard();
        } else {
            let mut m = self.replica.meta.lock();
            if m.writer == self.token {
                m.writer = 0;
            }
        }
    }
}

/// Reads a replica's data with verified checksums.
#[derive(Debug)]
pub struct ReplicaReader {
    pub(super) info: ReplicaInfo,
    pub(super) data: File,
    pub(super) meta: File,
    pub(super) header_checked: bool,
    /// Set by [`ReplicaReader::stream_from`].
    pub(super) behind: Option<DropBehind>,
    /// The replica read: its lock orders reads of a last chunk that is
    /// still being written with its writer's writes, and while it is held
    /// the files are never recycled. Last, so it is dropped after them.
    pub(super) replica: Arc<Replica>,
}

impl ReplicaReader {
    /// The replica as it was when opened (its length is the readable length).
    pub fn info(&self) -> &ReplicaInfo {
        &self.info
    }

    /// Declares that the replica is read once, sequentially, from `start`:
    /// longer read-ahead, and pages dropped behind the reader.
    pub fn stream_from(&mut self, start: u64) {
        page_cache::sequential(&self.data);
        self.behind = Some(DropBehind::from(start));
    }

    /// The stored checksums of `[start, end)` of a finalized replica, whose
    /// bytes are then sent straight from [`ReplicaReader::data_file`]
    /// (`start` a multiple of 512, `end` one too or the replica's length).
    /// The data is neither read nor verified here, as in HDFS's
    /// `transferTo` path: the reader verifies every chunk against these
    /// checksums (and on a mismatch reports the replica to the namenode
    /// and reads another), and the block scanner re-verifies every replica
    /// in the background. Pages before `start`, sent already, may leave
    /// the page cache ([`ReplicaReader::stream_from`]).
    pub fn stored_checksums(&mut self, start: u64, end: u64) -> Result<Bytes> {
        let id = self.info.block.id;
        let len = self.info.block.length;
        if self.info.state != ReplicaState::Finalized
            || start % CHUNK != 0
            || start > end
            || end > len
            || (end % CHUNK != 0 && end != len)
        {
            return Err(Error::invalid(
                id,
                format!(
                    "cannot send [{start}, {end}) of a {len}-byte replica ({}) from its file",
                    self.info.state.as_str()
                ),
            ));
        }
        if !self.header_checked {
            check_header(id, &self.meta)?;
            // A data file shorter than the replica (damaged on disk) would
            // end a frame early: refused before any frame, as a read's is.
            let on_disk = self
                .data
                .metadata()
                .map_err(|e| Error::io(format!("cannot stat the data of blk_{id}"), e))?
                .len();
            if on_disk < len {
                return Err(Error::ReplicaShort {
                    block: id,
                    what: "data",
                    offset: on_disk,
                });
            }
            self.header_checked = true;
        }
        let sums = self.stored_sums(start, (end - start) as usize)?;
        if let Some(behind) = &mut self.behind {
            behind.advance(&self.data, start);
        }
        Ok(Bytes::from(sums))
    }

    /// The stored CRCs of the `n` bytes from `start` (a multiple of 512).
    fn stored_sums(&self, start: u64, n: usize) -> Result<Vec<u8>> {
        let id = self.info.block.id;
        let mut sums = vec![0u8; checksum::chunk_count(n) * CHECKSUM_SIZE];
        self.meta
            .read_exact_at(&mut sums, meta::checksum_offset(start))
            .map_err(|e| {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    Error::ReplicaShort {
                        block: id,
                        what: "checksums",
                        offset: start,
                    }
                } else {
                    Error::ReplicaUnreadable {
                        block: id,
                        what: format!("checksums at {start}"),
                        source: e,
                    }
                }
            })?;
        Ok(sums)
    }

    /// The replica's data file, for sending ranges of a finalized replica
    /// straight from it ([`ReplicaReader::stored_checksums`]).
    pub fn data_file(&self) -> &File {
        &self.data
    }

    /// Reads bytes `[start, end)` (`start` a multiple of 512, `end` at most
    /// the replica's length), verifying every chunk against the stored
    /// checksums. Returns the data and one CRC per 512-byte chunk of it;
    /// when `end` cuts a chunk, that chunk is verified whole and its CRC
    /// recomputed over the bytes returned.
    pub fn read(&mut self, start: u64, end: u64) -> Result<(Bytes, Bytes)> {
        let id = self.info.block.id;
        let len = self.info.block.length;
        if start % CHUNK != 0 || start > end || end > len {
            return Err(Error::invalid(
                id,
                format!("cannot read [{start}, {end}) of a {len}-byte replica"),
            ));
        }
        if !self.header_checked {
            check_header(id, &self.meta)?;
            self.header_checked = true;
        }
        let read_end = end.div_ceil(CHUNK).saturating_mul(CHUNK).min(len);
        // The partial last chunk of a replica being written grows while it
        // is read, and its checksum is rewritten each time: that chunk is
        // read and verified under the replica's lock, which its writer holds
        // while it writes (the checksum on disk may already cover more bytes
        // than this reader's length).
        let growing =
            self.info.state != ReplicaState::Finalized && len % CHUNK != 0 && read_end == len;
        let body_end = if growing {
            len / CHUNK * CHUNK
        } else {
            read_end
        };
        let n = (body_end - start) as usize;
        let short = |e: io::Error, what: &'static str| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                Error::ReplicaShort {
                    block: id,
                    what,
                    offset: start,
                }
            } else {
                Error::ReplicaUnreadable {
                    block: id,
                    what: format!("{what} at {start}"),
                    source: e,
                }
            }
        };
        // Read into fresh capacity: no zeroing of a buffer about to be
        // overwritten (it showed as 12 % of a `dfs get`'s CPU).
        let mut buf = Vec::with_capacity((read_end - start) as usize);
        (&self.data)
            .seek(SeekFrom::Start(start))
            .and_then(|_| (&self.data).take(n as u64).read_to_end(&mut buf))
            .map_err(|e| short(e, "data"))?;
        if buf.len() < n {
            return Err(short(io::ErrorKind::UnexpectedEof.into(), "data"));
        }
        let mut sums = self.stored_sums(start, n)?;
        if let Err(e) = checksum::verify(&buf, &sums) {
            let offset = match e {
                checksum::ChecksumError::Mismatch { offset } => start + offset,
                checksum::ChecksumError::Length { .. } => start,
            };
            return Err(Error::ChecksumMismatch { block: id, offset });
        }
        if growing {
            let crc = self.read_growing_chunk(body_end, &mut buf)?;
            sums.extend_from_slice(&crc.to_le_bytes());
        }
        if let Some(behind) = &mut self.behind {
            behind.advance(&self.data, read_end);
        }
        let mut data = Bytes::from(buf);
        if end < read_end {
            let keep = (end - start) as usize;
            data.truncate(keep);
            let last = keep / BYTES_PER_CHECKSUM * BYTES_PER_CHECKSUM;
            let crc = checksum::crc(&data[last..]);
            let at = last / BYTES_PER_CHECKSUM * CHECKSUM_SIZE;
            sums.truncate(at);
            sums.extend_from_slice(&crc.to_le_bytes());
        }
        Ok((data, Bytes::from(sums)))
    }

    /// Reads the partial last chunk `[from, length)` of a replica being
    /// written onto `buf`, verified as it is now, and returns the checksum
    /// of the bytes appended.
    fn read_growing_chunk(&self, from: u64, buf: &mut Vec<u8>) -> Result<u32> {
        let id = self.info.block.id;
        let len = self.info.block.length;
        let mut chunk = [0u8; BYTES_PER_CHECKSUM];
        let mut stored = [0u8; CHECKSUM_SIZE];
        let now = {
            let m = self.replica.meta.lock();
            if m.len < len {
                // Cut by a pipeline recovery since this reader opened it:
                // stale (the client asks the namenode again), not corrupt.
                return Err(Error::GenerationStamp {
                    block: id,
                    have: m.gs,
                    reason: format!("the replica was cut to {} bytes while read to {len}", m.len),
                });
            }
            let now = m.len.min(from + CHUNK);
            let n = (now - from) as usize;
            let read = self
                .data
                .read_exact_at(&mut chunk[..n], from)
                .and_then(|()| {
                    self.meta
                        .read_exact_at(&mut stored, meta::checksum_offset(from))
                });
            read.map_err(|e| Error::ReplicaUnreadable {
                block: id,
                what: format!("last chunk at {from}"),
                source: e,
            })?;
            now
        };
        let chunk = &chunk[..(now - from) as usize];
        if checksum::crc(chunk) != u32::from_le_bytes(stored) {
            return Err(Error::ChecksumMismatch {
                block: id,
                offset: from,
            });
        }
        let keep = &chunk[..(len - from) as usize];
        buf.extend_from_slice(keep);
        Ok(if now == len {
            u32::from_le_bytes(stored)
        } else {
            checksum::crc(keep)
        })
    }
}
