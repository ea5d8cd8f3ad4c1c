//! The sled image: its keys, how a [`Change`] maps onto them, reading it
//! whole at start, replaying the edit log onto it, and merging changes into
//! it in bounded batches (the checkpoint).

use std::collections::HashMap;
use std::path::Path;

use dfs_proto::image::InodeRecord;
use prost::Message;

use super::{corrupt, CallRecord, Change, Counters, Image, FORMAT, ROOT_ID};
use crate::edits::{self, Segment};
use crate::error::{Error, Result};

pub(super) const KEY_COUNTERS: &[u8] = b"c";
pub(super) const KEY_FORMAT: &[u8] = b"v";
pub(super) const KEY_TXID: &[u8] = b"t";

impl Counters {
    pub(super) fn encode(&self) -> [u8; 24] {
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(&self.next_inode.to_be_bytes());
        out[8..16].copy_from_slice(&self.next_block.to_be_bytes());
        out[16..].copy_from_slice(&self.generation_stamp.to_be_bytes());
        out
    }

    pub(super) fn decode(b: &[u8]) -> Option<Counters> {
        if b.len() != 24 {
            return None;
        }
        let u = |r: std::ops::Range<usize>| {
            b.get(r)
                .and_then(|s| s.try_into().ok())
                .map(u64::from_be_bytes)
        };
        Some(Counters {
            next_inode: u(0..8)?,
            next_block: u(8..16)?,
            generation_stamp: u(16..24)?,
        })
    }
}

pub(super) fn inode_key(id: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = b'i';
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

pub(super) fn dirent_key(parent: u64, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + name.len());
    k.push(b'd');
    k.extend_from_slice(&parent.to_be_bytes());
    k.extend_from_slice(name.as_bytes());
    k
}

/// The image being loaded, keyed for replaying edits on top.
#[derive(Default)]
pub(super) struct Loading {
    inodes: HashMap<u64, InodeRecord>,
    dirents: HashMap<(u64, String), u64>,
    counters: Option<Counters>,
    calls: Vec<CallRecord>,
    /// Txid of the last transaction in the image, if it records one.
    pub(super) txid: Option<u64>,
}

impl Loading {
    pub(super) fn apply(&mut self, batch: &[Change]) {
        for change in batch {
            match change {
                Change::PutInode(rec) => {
                    self.inodes.insert(rec.id, rec.clone());
                }
                Change::RemoveInode(id) => {
                    self.inodes.remove(id);
                }
                Change::PutDirent {
                    parent,
                    name,
                    child,
                } => {
                    self.dirents.insert((*parent, name.clone()), *child);
                }
                Change::RemoveDirent { parent, name } => {
                    self.dirents.remove(&(*parent, name.clone()));
                }
                Change::Counters(c) => self.counters = Some(*c),
                Change::Call(call) => self.calls.push(call.clone()),
            }
        }
    }

    pub(super) fn into_image(self) -> Result<Image> {
        Ok(Image {
            inodes: self.inodes.into_values().collect(),
            dirents: self
                .dirents
                .into_iter()
                .map(|((parent, name), child)| (parent, name, child))
                .collect(),
            counters: self
                .counters
                .ok_or_else(|| corrupt("the counters record is missing"))?,
            calls: self.calls,
        })
    }
}

/// The sled key a change writes and the value it leaves (`None`:
/// removed); no key for a change the image does not keep (a call record).
pub(super) fn key_value(change: &Change) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    Some(match change {
        Change::PutInode(rec) => (inode_key(rec.id).to_vec(), Some(rec.encode_to_vec())),
        Change::RemoveInode(id) => (inode_key(*id).to_vec(), None),
        Change::PutDirent {
            parent,
            name,
            child,
        } => (
            dirent_key(*parent, name),
            Some(child.to_be_bytes().to_vec()),
        ),
        Change::RemoveDirent { parent, name } => (dirent_key(*parent, name), None),
        Change::Counters(c) => (KEY_COUNTERS.to_vec(), Some(c.encode().to_vec())),
        Change::Call(_) => return None,
    })
}

pub(super) fn decode_u64(v: &[u8], what: &str) -> Result<u64> {
    v.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| corrupt(format!("{what} has the wrong size")))
}

/// Syncs the files of the sled image with `fsync`, before the edit log
/// segments merged into it are deleted: `sled::Db::flush` only asks the
/// kernel to write the data (`sync_file_range`), which survives a crash of
/// the process but not necessarily of the machine.
pub(super) fn sync_image(path: &Path) -> Result<()> {
    let io = |source| Error::Io {
        context: format!("cannot sync the image in {}", path.display()),
        source,
    };
    for entry in std::fs::read_dir(path).map_err(io)? {
        let entry = entry.map_err(io)?;
        if entry.file_type().map_err(io)?.is_file() {
            std::fs::File::open(entry.path())
                .and_then(|f| f.sync_all())
                .map_err(io)?;
        }
    }
    edits::sync_dir(path)
}

/// Writes the root, the counters and the format marker of a new store.
pub(super) fn initialize(db: &sled::Db) -> Result<()> {
    let now = crate::namespace::now_ms();
    let root = InodeRecord {
        id: ROOT_ID,
        parent: 0,
        name: String::new(),
        is_dir: true,
        mode: 0o755,
        owner: "root".into(),
        group: "root".into(),
        mtime_ms: now,
        atime_ms: now,
        ..Default::default()
    };
    let mut batch = sled::Batch::default();
    batch.insert(&inode_key(ROOT_ID)[..], root.encode_to_vec());
    batch.insert(KEY_COUNTERS, &Counters::default().encode()[..]);
    batch.insert(KEY_TXID, &0u64.to_be_bytes()[..]);
    batch.insert(KEY_FORMAT, FORMAT);
    db.apply_batch(batch)
        .map_err(|e| Error::store("cannot initialise the store", e))?;
    db.flush()
        .map_err(|e| Error::store("cannot flush the new store", e))?;
    Ok(())
}

/// Reads the whole sled image.
pub(super) fn load(db: &sled::Db) -> Result<Loading> {
    let mut image = Loading::default();
    for item in db.iter() {
        let (k, v) = item.map_err(|e| Error::store("cannot read the store", e))?;
        match k.first() {
            Some(b'i') if k.len() == 9 => {
                let id = decode_u64(&k[1..9], "an inode key")?;
                let rec = InodeRecord::decode(v.as_ref())
                    .map_err(|e| corrupt(format!("inode {id}: undecodable record: {e}")))?;
                if rec.id != id {
                    return Err(corrupt(format!(
                        "inode key {id} holds the record of inode {}",
                        rec.id
                    )));
                }
                image.inodes.insert(id, rec);
            }
            Some(b'd') if k.len() > 9 && v.len() == 8 => {
                let parent = decode_u64(&k[1..9], "a directory entry key")?;
                let name = std::str::from_utf8(&k[9..])
                    .map_err(|_| {
                        corrupt(format!(
                            "directory entry of inode {parent} with a non-UTF-8 name"
                        ))
                    })?
                    .to_string();
                let child = decode_u64(&v, "a directory entry")?;
                image.dirents.insert((parent, name), child);
            }
            _ if k.as_ref() == KEY_COUNTERS => {
                image.counters = Some(
                    Counters::decode(&v)
                        .ok_or_else(|| corrupt("counters record has the wrong size"))?,
                );
            }
            _ if k.as_ref() == KEY_TXID => image.txid = Some(decode_u64(&v, "the txid record")?),
            _ if k.as_ref() == KEY_FORMAT => {}
            _ => {
                return Err(corrupt(format!(
                    "unknown key {:?}",
                    String::from_utf8_lossy(&k)
                )))
            }
        }
    }
    if image.counters.is_none() {
        return Err(corrupt("the counters record is missing"));
    }
    Ok(image)
}

/// The txid expected after `last`: `txid` itself if it follows `last`,
/// `last` if it is already in the image; a gap is corruption.
pub(super) fn next_txid(last: u64, txid: u64, seg: &Segment) -> Result<u64> {
    if txid <= last {
        Ok(last)
    } else if txid == last + 1 {
        Ok(txid)
    } else {
        Err(corrupt(format!(
            "the edit log skips from txid {last} to {txid} ({}): transactions are missing",
            seg.path.display()
        )))
    }
}

/// Keys per sled batch at most: sled keeps every node a batch replaces
/// until the batch ends, so merging a segment of 64,000 file creations in
/// one batch took 700 MiB, in batches of 2048 keys 100 MiB, of 256 some
/// 30 MiB.
pub(super) const IMAGE_CHUNK: usize = 256;

/// Merges changes into the sled image: only the last value of each key is
/// written (a file created and closed, the counters, a directory's mtime
/// changed thousands of times are one write each), in bounded batches,
/// then the txid they bring the image to. Not atomic, and need not be:
/// until the txid is written, a restart replays every change written here
/// (each sets a key to its value at some txid), which ends in the same
/// state.
pub(super) struct ImageWriter<'a> {
    db: &'a sled::Db,
    path: &'a Path,
    last: HashMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<'a> ImageWriter<'a> {
    pub(super) fn new(db: &'a sled::Db, path: &'a Path) -> ImageWriter<'a> {
        ImageWriter {
            db,
            path,
            last: HashMap::new(),
        }
    }

    pub(super) fn add(&mut self, batch: &[Change]) {
        for (k, v) in batch.iter().filter_map(key_value) {
            self.last.insert(k, v);
        }
    }

    /// Writes every key and the txid, and makes it all durable.
    pub(super) fn finish(self, txid: u64) -> Result<()> {
        let store_err = |e| Error::store(format!("cannot write {}", self.path.display()), e);
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for (k, v) in self.last {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
            n += 1;
            if n % IMAGE_CHUNK == 0 {
                self.db
                    .apply_batch(std::mem::take(&mut batch))
                    .map_err(store_err)?;
            }
        }
        batch.insert(KEY_TXID, &txid.to_be_bytes()[..]);
        self.db.apply_batch(batch).map_err(store_err)?;
        self.db
            .flush()
            .map_err(|e| Error::store(format!("cannot flush {}", self.path.display()), e))?;
        sync_image(self.path)
    }
}

/// Replays the transactions of `segments` after the image's txid onto
/// `image` and merges them into sled; returns the last txid. The whole log
/// is checked before anything is written.
pub(super) fn replay(
    db: &sled::Db,
    path: &Path,
    image: &mut Loading,
    segments: &[Segment],
) -> Result<u64> {
    let start = image.txid.unwrap_or(0);
    let mut last = start;
    for (i, seg) in segments.iter().enumerate() {
        if seg.first > last + 1 {
            return Err(corrupt(format!(
                "the edit log skips from txid {last} to {} ({}): transactions are missing",
                seg.first,
                seg.path.display()
            )));
        }
        let mut first = None;
        let torn = edits::read_segment(seg, true, |(txid, _)| {
            first.get_or_insert(txid);
            last = next_txid(last, txid, seg)?;
            Ok(())
        })?;
        if first.is_some_and(|f| f != seg.first) {
            return Err(corrupt(format!(
                "edit log segment {} does not start with txid {}",
                seg.path.display(),
                seg.first
            )));
        }
        if torn == 0 {
            continue;
        }
        match segments.get(i + 1) {
            // The newest segment: its last write was cut short by a stop.
            None => tracing::warn!(segment = %seg.path.display(), bytes = torn, after_txid = last,
                "the edit log ends with a record that was not completely written (the namenode \
                 stopped while writing it, before acknowledging it); it is dropped"),
            // A start-up dropped this torn end before and went on in the
            // next segment, and stopped before removing this one.
            Some(next) if next.first == last + 1 => tracing::info!(
                segment = %seg.path.display(), after_txid = last,
                "an older segment's unfinished last record was dropped at an earlier start"),
            Some(next) => {
                return Err(corrupt(format!(
                    "edit log segment {} is damaged at its end (after txid {last}) and the next \
                     segment starts at txid {}: transactions are missing",
                    seg.path.display(),
                    next.first
                )))
            }
        }
    }
    if last == start && image.txid.is_some() {
        return Ok(last);
    }
    let mut writer = ImageWriter::new(db, path);
    for seg in segments {
        edits::read_segment(seg, true, |(txid, batch)| {
            if txid > start {
                image.apply(&batch);
                writer.add(&batch);
            }
            Ok(())
        })?;
    }
    writer.finish(last)?;
    if last != start {
        tracing::info!(
            from = start + 1,
            to = last,
            "replayed {} transactions from the edit log",
            last - start
        );
    }
    Ok(last)
}
