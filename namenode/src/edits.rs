//! The edit log: every namespace mutation, numbered by a transaction id
//! (txid), appended to a segment file and made durable by one `fdatasync`
//! per group of concurrent mutations, as HDFS's edit log. The sled image is
//! brought up to date from closed segments now and then (a checkpoint, see
//! [`crate::store`]), never on the path of a request.
//!
//! A segment is `DIR/edits_<first txid, 20 digits>`: a 16-byte header
//! ([`SEGMENT_MAGIC`], first txid as u64 LE) followed by records:
//!
//! | field | size |
//! |---|---|
//! | magic [`RECORD_MAGIC`] | u32 LE |
//! | payload length | u32 LE |
//! | CRC32 (crc32fast) of the payload | u32 LE |
//! | payload: txid (u64 LE), change count (u32 LE), changes | length |
//!
//! A change is a tag byte followed by its fields (integers LE, strings and
//! inode records as a u32 LE length and the bytes): 1 put inode (prost
//! `InodeRecord`), 2 remove inode (id), 3 put entry (parent, child, name),
//! 4 remove entry (parent, name), 5 counters (three u64), 6 the call that
//! made the batch (user, call id, kind, time in ms as i64).
//!
//! Segments are filled with zeros ahead of the records, a chunk at a time,
//! and synced, so that appending a group usually only overwrites allocated
//! blocks: `fdatasync` then has no file size or extent to journal, which
//! halves its cost. Zeros after the last record are unused room.
//!
//! Only the end of the newest segment (or of an older one whose torn end
//! a start dropped before it went on in the next) can hold a record that
//! is not whole:
//! a write that a crash interrupted, and so was never acknowledged. Any other
//! damaged record makes the log corrupt.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use dfs_proto::image::InodeRecord;
use prost::Message;

use crate::error::{Error, Result};
use crate::store::{Batch, CallRecord, Change, Counters};

/// First bytes of every segment file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"DFSEDIT1";
/// First bytes of every record.
pub const RECORD_MAGIC: u32 = 0xED17_D0C5;
const SEGMENT_HEADER: usize = 16;
const RECORD_HEADER: usize = 12;
/// Larger payloads are refused as damage (a batch is a few KiB at most,
/// a recursive delete of a big tree a few MiB).
const MAX_PAYLOAD: usize = 1 << 30;
const PREFIX: &str = "edits_";

const TAG_PUT_INODE: u8 = 1;
const TAG_REMOVE_INODE: u8 = 2;
const TAG_PUT_DIRENT: u8 = 3;
const TAG_REMOVE_DIRENT: u8 = 4;
const TAG_COUNTERS: u8 = 5;
const TAG_CALL: u8 = 6;

fn corrupt(message: impl Into<String>) -> Error {
    Error::CorruptStore {
        message: message.into(),
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// Appends the record of transaction `txid` to `out`.
pub fn encode_record(txid: u64, batch: &[Change], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&RECORD_MAGIC.to_le_bytes());
    out.extend_from_slice(&[0u8; 8]); // length and CRC, filled in below
    out.extend_from_slice(&txid.to_le_bytes());
    out.extend_from_slice(&(batch.len() as u32).to_le_bytes());
    for change in batch {
        match change {
            Change::PutInode(rec) => {
                out.push(TAG_PUT_INODE);
                out.extend_from_slice(&(rec.encoded_len() as u32).to_le_bytes());
                // Writing into a Vec cannot run out of room.
                let _ = rec.encode(out);
            }
            Change::RemoveInode(id) => {
                out.push(TAG_REMOVE_INODE);
                out.extend_from_slice(&id.to_le_bytes());
            }
            Change::PutDirent {
                parent,
                name,
                child,
            } => {
                out.push(TAG_PUT_DIRENT);
                out.extend_from_slice(&parent.to_le_bytes());
                out.extend_from_slice(&child.to_le_bytes());
                put_bytes(out, name.as_bytes());
            }
            Change::RemoveDirent { parent, name } => {
                out.push(TAG_REMOVE_DIRENT);
                out.extend_from_slice(&parent.to_le_bytes());
                put_bytes(out, name.as_bytes());
            }
            Change::Counters(c) => {
                out.push(TAG_COUNTERS);
                out.extend_from_slice(&c.next_inode.to_le_bytes());
                out.extend_from_slice(&c.next_block.to_le_bytes());
                out.extend_from_slice(&c.generation_stamp.to_le_bytes());
            }
            Change::Call(call) => {
                out.push(TAG_CALL);
                put_bytes(out, call.user.as_bytes());
                put_bytes(out, call.id.as_bytes());
                put_bytes(out, call.kind.as_bytes());
                out.extend_from_slice(&call.at_ms.to_le_bytes());
            }
        }
    }
    let payload = start + RECORD_HEADER;
    let len = (out.len() - payload) as u32;
    let crc = crc32fast::hash(&out[payload..]);
    out[start + 4..start + 8].copy_from_slice(&len.to_le_bytes());
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
}

/// Reads fields off a payload; every read is bounds-checked.
struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        if self.b.len() < n {
            return Err("record ends early".into());
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }

    fn u8(&mut self) -> std::result::Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> std::result::Result<u32, String> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }

    fn u64(&mut self) -> std::result::Result<u64, String> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }

    fn bytes(&mut self) -> std::result::Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn string(&mut self) -> std::result::Result<String, String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| "a name is not UTF-8".to_string())
    }
}

/// Decodes a record payload (CRC already checked) into its txid and batch.
fn decode_payload(payload: &[u8]) -> std::result::Result<Record, String> {
    let mut c = Cursor { b: payload };
    let txid = c.u64()?;
    let n = c.u32()? as usize;
    let mut batch = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let change = match c.u8()? {
            TAG_PUT_INODE => Change::PutInode(
                InodeRecord::decode(c.bytes()?).map_err(|e| format!("bad inode record: {e}"))?,
            ),
            TAG_REMOVE_INODE => Change::RemoveInode(c.u64()?),
            TAG_PUT_DIRENT => {
                let parent = c.u64()?;
                let child = c.u64()?;
                Change::PutDirent {
                    parent,
                    name: c.string()?,
                    child,
                }
            }
            TAG_REMOVE_DIRENT => {
                let parent = c.u64()?;
                Change::RemoveDirent {
                    parent,
                    name: c.string()?,
                }
            }
            TAG_COUNTERS => Change::Counters(Counters {
                next_inode: c.u64()?,
                next_block: c.u64()?,
                generation_stamp: c.u64()?,
            }),
            TAG_CALL => Change::Call(CallRecord {
                user: c.string()?,
                id: c.string()?,
                kind: c.string()?,
                at_ms: c.u64()? as i64,
            }),
            t => return Err(format!("unknown change tag {t}")),
        };
        batch.push(change);
    }
    if !c.b.is_empty() {
        return Err(format!("{} stray bytes after the changes", c.b.len()));
    }
    Ok((txid, batch))
}

/// A decoded record: its txid and batch.
pub type Record = (u64, Batch);

/// Parses the record at the start of `b`: `Ok(Some((record, size)))`,
/// `Ok(None)` when no valid record starts there.
fn parse_record(b: &[u8]) -> std::result::Result<Option<(Record, usize)>, String> {
    if b.len() < RECORD_HEADER {
        return Ok(None);
    }
    let word = |i: usize| {
        let mut a = [0u8; 4];
        a.copy_from_slice(&b[i..i + 4]);
        u32::from_le_bytes(a)
    };
    let len = word(4) as usize;
    if word(0) != RECORD_MAGIC || len > MAX_PAYLOAD || b.len() < RECORD_HEADER + len {
        return Ok(None);
    }
    let payload = &b[RECORD_HEADER..RECORD_HEADER + len];
    if crc32fast::hash(payload) != word(8) {
        return Ok(None);
    }
    // A record whose checksum matches but does not decode was written so:
    // that is corruption, not a torn write.
    decode_payload(payload).map(|r| Some((r, RECORD_HEADER + len)))
}

/// One segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Txid of its first record.
    pub first: u64,
    /// The file.
    pub path: PathBuf,
}

impl Segment {
    /// The segment of `dir` that starts at `first`.
    pub fn new(dir: &Path, first: u64) -> Segment {
        Segment {
            first,
            path: dir.join(format!("{PREFIX}{first:020}")),
        }
    }
}

/// The segments of `dir` in txid order (none if `dir` does not exist).
/// Other files are ignored.
pub fn list_segments(dir: &Path) -> Result<Vec<Segment>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(format!("cannot list {}", dir.display()))(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(format!("cannot list {}", dir.display())))?;
        let name = entry.file_name();
        let Some(digits) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(first) = digits.parse() {
            out.push(Segment {
                first,
                path: entry.path(),
            });
        }
    }
    out.sort_by_key(|s| s.first);
    Ok(out)
}

/// Removes segments left unfinished under their temporary name by a stop
/// during [`SegmentWriter::create`] (never used, never acknowledged).
pub fn remove_unfinished(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(PREFIX) && name.ends_with(".new") {
            std::fs::remove_file(entry.path())
                .map_err(io(format!("cannot remove {}", entry.path().display())))?;
        }
    }
    Ok(())
}

/// Reads a segment, handing its records to `visit` in order, and returns
/// how many bytes at its end are not a whole record (an interrupted
/// write). Damage is an error, except at the end when `tail_may_be_torn`
/// (the newest segment, or one whose torn end a start-up already dropped
/// and continued after), where bytes after the last whole record are an
/// interrupted write when no whole record follows them.
pub fn read_segment(
    seg: &Segment,
    tail_may_be_torn: bool,
    mut visit: impl FnMut(Record) -> Result<()>,
) -> Result<usize> {
    let data =
        std::fs::read(&seg.path).map_err(io(format!("cannot read {}", seg.path.display())))?;
    let name = seg.path.display();
    let header_ok = data.len() >= SEGMENT_HEADER
        && &data[..8] == SEGMENT_MAGIC
        && data[8..16] == seg.first.to_le_bytes();
    if !header_ok {
        // A segment gets its name only once its header is synced
        // (`SegmentWriter::create`): without it, the file lost data it
        // had, and the transactions it held are unknown.
        return Err(corrupt(format!(
            "edit log segment {name} has a bad or missing header ({} bytes): the file lost \
             data it had on disk, so the transactions from {} on may be lost; refusing to \
             start (restore the namenode's data directory from a copy)",
            data.len(),
            seg.first
        )));
    }
    let mut last = seg.first.saturating_sub(1);
    let mut pos = SEGMENT_HEADER;
    while pos < data.len() {
        let rest = &data[pos..];
        match parse_record(rest) {
            Ok(Some((record, size))) => {
                last = record.0;
                visit(record)?;
                pos += size;
            }
            Ok(None) if rest.iter().all(|b| *b == 0) => break,
            Ok(None) => {
                let later =
                    (1..rest.len()).any(|i| matches!(parse_record(&rest[i..]), Ok(Some(_))));
                if tail_may_be_torn && !later {
                    // The bytes written, not the zeros allocated after them.
                    return Ok(rest.iter().rposition(|b| *b != 0).map_or(1, |p| p + 1));
                }
                return Err(corrupt(format!(
                    "edit log segment {name} is damaged at byte {pos} (after txid {last})"
                )));
            }
            Err(e) => {
                return Err(corrupt(format!(
                    "edit log segment {name}: record at byte {pos}: {e}"
                )))
            }
        }
    }
    Ok(0)
}

/// Syncs a directory, so that files created or removed in it stay so.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("cannot sync directory {}", dir.display())))
}

/// Replaces `dir/name` with `contents`, durably and atomically (a crash
/// leaves the old file or the new one): written to `name.new`, synced,
/// renamed over it, and the directory synced.
pub fn replace_file(dir: &Path, name: &str, contents: &[u8]) -> Result<()> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.new"));
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(io(format!("cannot write {}", path.display())))?;
    sync_dir(dir)
}

/// The segment being appended to.
#[derive(Debug)]
pub struct SegmentWriter {
    file: File,
    segment: Segment,
    /// Bytes of header and records.
    len: u64,
    /// Bytes in the file (records, then zeros).
    allocated: u64,
    /// How much room to add at a time.
    chunk: u64,
}

impl SegmentWriter {
    /// Creates the segment of `dir` starting at `first` (replacing a file of
    /// that name), with its header synced, `chunk` bytes of room and the
    /// directory entry durable. It is made whole under a temporary name
    /// and renamed into place, so a segment under its own name always has
    /// its header: one without is damage, never a crash.
    pub fn create(dir: &Path, first: u64, chunk: u64) -> Result<SegmentWriter> {
        let segment = Segment::new(dir, first);
        let context = format!("cannot create edit log segment {}", segment.path.display());
        let tmp = segment.path.with_extension("new");
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io(context.clone()))?;
        let mut header = [0u8; SEGMENT_HEADER];
        header[..8].copy_from_slice(SEGMENT_MAGIC);
        header[8..].copy_from_slice(&first.to_le_bytes());
        file.write_all(&header).map_err(io(context.clone()))?;
        let mut w = SegmentWriter {
            file,
            segment,
            len: SEGMENT_HEADER as u64,
            allocated: SEGMENT_HEADER as u64,
            chunk: chunk.max(1),
        };
        w.make_room(0).map_err(io(context.clone()))?;
        std::fs::rename(&tmp, &w.segment.path).map_err(io(context))?;
        sync_dir(dir)?;
        Ok(w)
    }

    /// Fills the file with zeros up to a chunk beyond `len + extra`, and
    /// syncs it with its new size.
    fn make_room(&mut self, extra: u64) -> std::io::Result<()> {
        let need = self.len + extra;
        let target = (need / self.chunk + 1) * self.chunk;
        let zeros = vec![0u8; (target - self.allocated).min(1 << 20) as usize];
        while self.allocated < target {
            let n = (target - self.allocated).min(zeros.len() as u64) as usize;
            self.file.write_all_at(&zeros[..n], self.allocated)?;
            self.allocated += n as u64;
        }
        self.file.sync_all()
    }

    /// Writes whole records after the last ones and waits until they are on
    /// disk.
    pub fn append(&mut self, records: &[u8]) -> std::io::Result<()> {
        let extra = records.len() as u64;
        if self.len + extra > self.allocated {
            self.make_room(extra)?;
        }
        self.file.write_all_at(records, self.len)?;
        self.file.sync_data()?;
        self.len += extra;
        Ok(())
    }

    /// Bytes of records, header included.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the segment holds no record yet.
    pub fn is_empty(&self) -> bool {
        self.len == SEGMENT_HEADER as u64
    }

    /// The segment written.
    pub fn segment(&self) -> &Segment {
        &self.segment
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Batch {
        vec![
            Change::PutInode(InodeRecord {
                id: 9,
                parent: 1,
                name: "f".into(),
                lease_holder: "c".into(),
                ..Default::default()
            }),
            Change::PutDirent {
                parent: 1,
                name: "f".into(),
                child: 9,
            },
            Change::RemoveDirent {
                parent: 1,
                name: "g".into(),
            },
            Change::RemoveInode(8),
            Change::Counters(Counters {
                next_inode: 10,
                next_block: 11,
                generation_stamp: 12,
            }),
            Change::Call(CallRecord {
                user: "u".into(),
                id: "c:1".into(),
                kind: "create".into(),
                at_ms: -5,
            }),
        ]
    }

    fn write(dir: &Path, first: u64, n: u64) -> Segment {
        let mut w = SegmentWriter::create(dir, first, 4096).unwrap();
        let mut buf = Vec::new();
        for t in first..first + n {
            encode_record(t, &sample(), &mut buf);
        }
        w.append(&buf).unwrap();
        w.segment().clone()
    }

    fn read(seg: &Segment, newest: bool) -> Result<(Vec<Record>, usize)> {
        let mut records = Vec::new();
        let torn = read_segment(seg, newest, |r| {
            records.push(r);
            Ok(())
        })?;
        Ok((records, torn))
    }

    #[test]
    fn records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let seg = write(dir.path(), 5, 3);
        let (records, torn) = read(&seg, false).unwrap();
        assert_eq!(torn, 0);
        let txids: Vec<u64> = records.iter().map(|r| r.0).collect();
        assert_eq!(txids, vec![5, 6, 7]);
        assert_eq!(records[0].1, sample());
        assert_eq!(list_segments(dir.path()).unwrap(), vec![seg]);
    }

    #[test]
    fn zeros_after_the_records_are_a_clean_end() {
        let dir = tempfile::tempdir().unwrap();
        let seg = write(dir.path(), 1, 2);
        assert_eq!(std::fs::metadata(&seg.path).unwrap().len(), 4096);
        let (records, torn) = read(&seg, false).unwrap();
        assert_eq!((records.len(), torn), (2, 0));
    }

    #[test]
    fn torn_tail_of_newest_segment_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let seg = write(dir.path(), 1, 2);
        let mut data = std::fs::read(&seg.path).unwrap();
        let end = data.iter().rposition(|b| *b != 0).unwrap() + 1;
        data[end - 7..end].fill(0);
        std::fs::write(&seg.path, &data).unwrap();
        let (records, torn) = read(&seg, true).unwrap();
        assert_eq!(records.len(), 1);
        assert!(torn > 0);
        // The same damage in an older segment is corruption.
        assert!(matches!(read(&seg, false), Err(Error::CorruptStore { .. })));
    }

    #[test]
    fn damage_before_whole_records_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let seg = write(dir.path(), 1, 3);
        let mut data = std::fs::read(&seg.path).unwrap();
        data[SEGMENT_HEADER + RECORD_HEADER + 3] ^= 0xFF;
        std::fs::write(&seg.path, &data).unwrap();
        let err = read(&seg, true).unwrap_err();
        assert!(err.to_string().contains("damaged"), "{err}");
    }

    #[test]
    fn bad_header_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let seg = write(dir.path(), 1, 1);
        let renamed = Segment::new(dir.path(), 2);
        std::fs::rename(&seg.path, &renamed.path).unwrap();
        assert!(read(&renamed, true).is_err());
    }
}
