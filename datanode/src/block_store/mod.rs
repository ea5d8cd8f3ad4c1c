//! Replicas on the local disk.
//!
//! ```text
//! DATA/node_id                       the node's UUID
//! DATA/current/finalized/blk_<id>    complete replica data
//! DATA/current/finalized/blk_<id>_<gs>.meta
//! DATA/current/rbw/blk_<id>          replica being written
//! DATA/current/rbw/blk_<id>_<gs>.meta
//! DATA/current/corrupt/...           replicas found corrupt, kept aside
//! DATA/tmp/                          partial copies and spare replica files
//!                                    (see `spares`), removed at start
//! ```
//!
//! Invariants:
//! * every file name is built from numeric ids only, so no request can name a
//!   path outside the data directory;
//! * a replica's recorded length only covers bytes whose data *and* checksum
//!   were written, so readers never see a chunk without its CRC;
//! * one writer at a time: a writer holds a token, and a recovery or a newer
//!   writer takes the token away, which makes the old writer's next call fail;
//! * lock order is the replica map, then one replica; file I/O of a write
//!   runs under the replica's lock only.
//!
//! Every method does blocking file I/O: call it from `spawn_blocking` or a
//! blocking writer thread.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dfs_proto::checksum::{self, CHECKSUM_SIZE};
use dfs_proto::defaults::{self, BYTES_PER_CHECKSUM};
use dfs_proto::ExtendedBlock;
use parking_lot::Mutex;
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::meta;
use crate::page_cache::DropBehind;

mod replica_io;
mod spares;

pub use replica_io::{ReplicaReader, ReplicaWriter};

/// Name of the file holding the node's UUID, in the data directory.
pub const NODE_ID_FILE: &str = "node_id";
const FINALIZED_DIR: &str = "current/finalized";
const RBW_DIR: &str = "current/rbw";
const CORRUPT_DIR: &str = "current/corrupt";
const TMP_DIR: &str = "tmp";
const CHUNK: u64 = BYTES_PER_CHECKSUM as u64;

/// Where a replica is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaState {
    /// Complete, checksummed, immutable (in `current/finalized`).
    Finalized,
    /// Being written by a pipeline (in `current/rbw`).
    Rbw,
    /// A copy in progress (in `tmp/`); invisible to readers and reports.
    Temporary,
}

impl ReplicaState {
    /// A word for logs and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaState::Finalized => "finalized",
            ReplicaState::Rbw => "being written",
            ReplicaState::Temporary => "temporary copy",
        }
    }

    fn dir(self) -> &'static str {
        match self {
            ReplicaState::Finalized => FINALIZED_DIR,
            ReplicaState::Rbw => RBW_DIR,
            ReplicaState::Temporary => TMP_DIR,
        }
    }
}

/// A snapshot of one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaInfo {
    /// Id, generation stamp and bytes on disk.
    pub block: ExtendedBlock,
    /// Its state.
    pub state: ReplicaState,
}

/// Space figures for storage reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageStats {
    /// Size of the file system minus the reserve.
    pub capacity: u64,
    /// Bytes of replica data and checksums.
    pub used: u64,
    /// Free bytes beyond the reserve.
    pub remaining: u64,
    /// Set when the storage failed (vanished, unwritable).
    pub failure: Option<String>,
    /// The node cannot take a new block.
    pub full: bool,
}

#[derive(Debug)]
struct ReplicaMeta {
    gs: u64,
    state: ReplicaState,
    /// Bytes whose data and checksums are both on disk.
    len: u64,
    /// Token of the writer allowed to change the replica; 0 = none.
    writer: u64,
    /// Recovery id of the last `init_recovery`; 0 = none.
    recovery_id: u64,
    /// Deleted or moved aside; any handle to it is dead.
    removed: bool,
}

#[derive(Debug)]
struct Replica {
    id: u64,
    meta: Mutex<ReplicaMeta>,
}

impl Replica {
    fn info(&self, m: &ReplicaMeta) -> ReplicaInfo {
        ReplicaInfo {
            block: ExtendedBlock {
                id: self.id,
                generation_stamp: m.gs,
                length: m.len,
            },
            state: m.state,
        }
    }
}

/// The replicas of this node and the files behind them.
#[derive(Debug)]
pub struct BlockStore {
    root: PathBuf,
    node_id: String,
    reserved: u64,
    replicas: Mutex<HashMap<u64, Arc<Replica>>>,
    next_token: AtomicU64,
    failure: Mutex<Option<String>>,
    /// Free bytes a new block needs (the cluster's default block size).
    block_size: AtomicU64,
    /// Replica files made ahead of need.
    spares: Arc<spares::Spares>,
}

fn data_name(id: u64) -> String {
    format!("blk_{id}")
}

fn meta_name(id: u64, gs: u64) -> String {
    format!("blk_{id}_{gs}.meta")
}

/// Parses `blk_<id>` and `blk_<id>_<gs>.meta`.
fn parse_name(name: &str) -> Option<(u64, Option<u64>)> {
    let rest = name.strip_prefix("blk_")?;
    if let Some(stem) = rest.strip_suffix(".meta") {
        let (id, gs) = stem.split_once('_')?;
        if !id.bytes().all(|b| b.is_ascii_digit()) || !gs.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        return Some((id.parse().ok()?, Some(gs.parse().ok()?)));
    }
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((rest.parse().ok()?, None))
}

fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("cannot sync directory {}", dir.display()), e))
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("cannot remove {}", path.display()), e)),
    }
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| {
        Error::io(
            format!("cannot move {} to {}", from.display(), to.display()),
            e,
        )
    })
}

/// Empties `tmp/`: partial copies and spares of a previous run.
fn clean_tmp(root: &Path) -> Result<()> {
    let tmp = root.join(TMP_DIR);
    let entries =
        fs::read_dir(&tmp).map_err(|e| Error::io(format!("cannot list {}", tmp.display()), e))?;
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("cannot list {}", tmp.display()), e))?;
        let path = entry.path();
        let res = if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        res.map_err(|e| Error::io(format!("cannot remove {}", path.display()), e))?;
        removed += 1;
    }
    if removed > 0 {
        info!(
            files = removed,
            "removed partial copies and spare replica files left in tmp/"
        );
    }
    Ok(())
}

fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))
}

/// Cuts a replica's files to `new_len` bytes. When the new end falls inside a
/// chunk, the chunk is verified first and its checksum recomputed over the
/// bytes kept, so corruption is never laundered into a fresh checksum.
fn truncate_files(
    id: u64,
    data: &File,
    meta_file: &File,
    old_len: u64,
    new_len: u64,
) -> Result<()> {
    if new_len == old_len {
        return Ok(());
    }
    if new_len > old_len {
        return Err(Error::invalid(
            id,
            format!("cannot truncate a {old_len}-byte replica to {new_len} bytes"),
        ));
    }
    let rem = new_len % CHUNK;
    let mut last_crc = None;
    if rem != 0 {
        let chunk_start = new_len - rem;
        let chunk_end = (chunk_start + CHUNK).min(old_len);
        let mut chunk = vec![0u8; (chunk_end - chunk_start) as usize];
        data.read_exact_at(&mut chunk, chunk_start)
            .map_err(|e| Error::io(format!("cannot read blk_{id} at {chunk_start}"), e))?;
        let mut stored = [0u8; CHECKSUM_SIZE];
        meta_file
            .read_exact_at(&mut stored, meta::checksum_offset(chunk_start))
            .map_err(|e| Error::io(format!("cannot read the checksums of blk_{id}"), e))?;
        if checksum::crc(&chunk) != u32::from_le_bytes(stored) {
            return Err(Error::ChecksumMismatch {
                block: id,
                offset: chunk_start,
            });
        }
        last_crc = Some(checksum::crc(&chunk[..rem as usize]));
    }
    let ctx = || format!("cannot truncate blk_{id} to {new_len} bytes");
    data.set_len(new_len).map_err(|e| Error::io(ctx(), e))?;
    meta_file
        .set_len(meta::meta_len(new_len))
        .map_err(|e| Error::io(ctx(), e))?;
    if let Some(c) = last_crc {
        meta_file
            .write_all_at(&c.to_le_bytes(), meta::checksum_offset(new_len - rem))
            .map_err(|e| Error::io(ctx(), e))?;
    }
    Ok(())
}

fn check_header(id: u64, meta_file: &File) -> Result<()> {
    let mut header = [0u8; meta::HEADER_LEN];
    let len = meta_file
        .metadata()
        .map_err(|e| Error::io(format!("cannot stat the checksums of blk_{id}"), e))?
        .len();
    if len < meta::HEADER_LEN as u64 {
        return Err(Error::BadMeta {
            block: id,
            source: meta::MetaError::Truncated { len },
        });
    }
    meta_file
        .read_exact_at(&mut header, 0)
        .map_err(|e| Error::io(format!("cannot read the checksums of blk_{id}"), e))?;
    meta::decode_header(&header).map_err(|source| Error::BadMeta { block: id, source })
}

/// Files of one directory scanned at start, by block id.
#[derive(Default)]
struct DirScan {
    data: BTreeSet<u64>,
    metas: BTreeMap<u64, Vec<u64>>,
}

impl DirScan {
    fn read(dir: &Path) -> Result<DirScan> {
        let mut scan = DirScan::default();
        let entries = fs::read_dir(dir)
            .map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?;
        for entry in entries {
            let entry =
                entry.map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?;
            let name = entry.file_name();
            match name.to_str().and_then(parse_name) {
                Some((id, None)) => {
                    scan.data.insert(id);
                }
                Some((id, Some(gs))) => scan.metas.entry(id).or_default().push(gs),
                None => warn!(
                    file = %entry.path().display(),
                    "ignoring a file that is not a replica"
                ),
            }
        }
        Ok(scan)
    }

    /// The newest meta file's generation stamp; older ones are deleted.
    fn newest_meta(&self, dir: &Path, id: u64) -> Result<Option<u64>> {
        let Some(list) = self.metas.get(&id) else {
            return Ok(None);
        };
        let newest = list.iter().copied().max();
        for &gs in list {
            if Some(gs) != newest {
                warn!(
                    block = id,
                    gs, "removing a checksum file of an older generation"
                );
                remove_if_exists(&dir.join(meta_name(id, gs)))?;
            }
        }
        Ok(newest)
    }
}

impl BlockStore {
    /// Opens (creating if needed) the data directory: loads or creates the
    /// node id, empties `tmp/`, and rebuilds the replica map from disk.
    pub fn open(root: &Path, reserved: u64) -> Result<BlockStore> {
        for dir in [FINALIZED_DIR, RBW_DIR, CORRUPT_DIR, TMP_DIR] {
            let p = root.join(dir);
            fs::create_dir_all(&p)
                .map_err(|e| Error::io(format!("cannot create {}", p.display()), e))?;
        }
        let node_id = load_or_create_node_id(root)?;
        clean_tmp(root)?;
        let store = BlockStore {
            root: root.to_path_buf(),
            node_id,
            reserved,
            replicas: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(1),
            failure: Mutex::new(None),
            block_size: AtomicU64::new(defaults::BLOCK_SIZE),
            spares: spares::Spares::start(&root.join(TMP_DIR)),
        };
        store.scan()?;
        Ok(store)
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The node's stable id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Sets the free space a new block needs (the cluster's block size).
    pub fn set_block_size(&self, bytes: u64) {
        if bytes > 0 {
            self.block_size.store(bytes, Ordering::Relaxed);
        }
    }

    fn data_path(&self, state: ReplicaState, id: u64) -> PathBuf {
        self.root.join(state.dir()).join(data_name(id))
    }

    fn meta_path(&self, state: ReplicaState, id: u64, gs: u64) -> PathBuf {
        self.root.join(state.dir()).join(meta_name(id, gs))
    }

    fn token(&self) -> u64 {
        self.next_token.fetch_add(1, Ordering::Relaxed)
    }

    fn get(&self, id: u64) -> Option<Arc<Replica>> {
        self.replicas.lock().get(&id).cloned()
    }

    /// Rebuilds the replica map, finishing interrupted finalizations and
    /// moving unusable replicas to `current/corrupt`.
    fn scan(&self) -> Result<()> {
        let fin_dir = self.root.join(FINALIZED_DIR);
        let rbw_dir = self.root.join(RBW_DIR);
        let fin = DirScan::read(&fin_dir)?;
        let rbw = DirScan::read(&rbw_dir)?;
        let ids: BTreeSet<u64> = fin
            .data
            .iter()
            .chain(fin.metas.keys())
            .chain(rbw.data.iter())
            .chain(rbw.metas.keys())
            .copied()
            .collect();
        let mut map = HashMap::new();
        let (mut finalized, mut rbw_count) = (0usize, 0usize);
        for id in ids {
            let fin_meta = fin.newest_meta(&fin_dir, id)?;
            let rbw_meta = rbw.newest_meta(&rbw_dir, id)?;
            let fin_data = fin.data.contains(&id);
            let rbw_data = rbw.data.contains(&id);
            let found = match (fin_data, fin_meta, rbw_data, rbw_meta) {
                (true, Some(gs), _, _) => {
                    if rbw_data || rbw_meta.is_some() {
                        warn!(
                            block = id,
                            "removing leftover files of a finalized replica in rbw/"
                        );
                        self.remove_files(ReplicaState::Rbw, id, rbw_data, rbw_meta)?;
                    }
                    self.load_finalized(id, gs)?
                }
                // A finalization that stopped between its two renames.
                (true, None, false, Some(gs)) => {
                    rename(
                        &self.meta_path(ReplicaState::Rbw, id, gs),
                        &self.meta_path(ReplicaState::Finalized, id, gs),
                    )?;
                    self.load_finalized(id, gs)?
                }
                (false, Some(gs), true, None) => {
                    rename(
                        &self.data_path(ReplicaState::Rbw, id),
                        &self.data_path(ReplicaState::Finalized, id),
                    )?;
                    self.load_finalized(id, gs)?
                }
                (false, None, true, Some(gs)) => self.load_rbw(id, gs)?,
                _ => {
                    warn!(
                        block = id,
                        "moving a replica with missing files to corrupt/"
                    );
                    self.move_to_corrupt(ReplicaState::Finalized, id, fin_data, fin_meta)?;
                    self.move_to_corrupt(ReplicaState::Rbw, id, rbw_data, rbw_meta)?;
                    None
                }
            };
            if let Some(m) = found {
                match m.state {
                    ReplicaState::Finalized => finalized += 1,
                    _ => rbw_count += 1,
                }
                map.insert(
                    id,
                    Arc::new(Replica {
                        id,
                        meta: Mutex::new(m),
                    }),
                );
            }
        }
        *self.replicas.lock() = map;
        info!(finalized, rbw = rbw_count, data = %self.root.display(), "replicas loaded");
        Ok(())
    }

    fn remove_files(
        &self,
        state: ReplicaState,
        id: u64,
        data: bool,
        gs: Option<u64>,
    ) -> Result<()> {
        if data {
            remove_if_exists(&self.data_path(state, id))?;
        }
        if let Some(gs) = gs {
            remove_if_exists(&self.meta_path(state, id, gs))?;
        }
        Ok(())
    }

    fn move_to_corrupt(
        &self,
        state: ReplicaState,
        id: u64,
        data: bool,
        gs: Option<u64>,
    ) -> Result<()> {
        let corrupt = self.root.join(CORRUPT_DIR);
        let tag = gs.unwrap_or(0);
        if data {
            rename(
                &self.data_path(state, id),
                &corrupt.join(format!("blk_{id}_{tag}")),
            )?;
        }
        if let Some(gs) = gs {
            rename(
                &self.meta_path(state, id, gs),
                &corrupt.join(format!("blk_{id}_{gs}.meta")),
            )?;
        }
        Ok(())
    }

    fn load_finalized(&self, id: u64, gs: u64) -> Result<Option<ReplicaMeta>> {
        let data_path = self.data_path(ReplicaState::Finalized, id);
        let meta_path = self.meta_path(ReplicaState::Finalized, id, gs);
        let data_len = fs::metadata(&data_path)
            .map_err(|e| Error::io(format!("cannot stat {}", data_path.display()), e))?
            .len();
        let meta_file = File::open(&meta_path)
            .map_err(|e| Error::io(format!("cannot open {}", meta_path.display()), e))?;
        let checked = check_header(id, &meta_file).and_then(|()| {
            let meta_len = meta_file
                .metadata()
                .map_err(|e| Error::io(format!("cannot stat {}", meta_path.display()), e))?
                .len();
            meta::check_lengths(data_len, meta_len)
                .map_err(|source| Error::BadMeta { block: id, source })
        });
        match checked {
            Ok(()) => Ok(Some(ReplicaMeta {
                gs,
                state: ReplicaState::Finalized,
                len: data_len,
                writer: 0,
                recovery_id: 0,
                removed: false,
            })),
            Err(e) if e.is_corruption() => {
                warn!(block = id, error = %e, "moving a finalized replica to corrupt/");
                self.move_to_corrupt(ReplicaState::Finalized, id, true, Some(gs))?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Loads a replica being written when the node stopped: its length is
    /// the longest prefix whose chunks all have checksums, minus a last chunk
    /// torn by the crash.
    fn load_rbw(&self, id: u64, gs: u64) -> Result<Option<ReplicaMeta>> {
        let data = open_rw(&self.data_path(ReplicaState::Rbw, id))?;
        let meta_file = open_rw(&self.meta_path(ReplicaState::Rbw, id, gs))?;
        if let Err(e) = check_header(id, &meta_file) {
            if e.is_corruption() {
                warn!(block = id, error = %e, "moving a replica being written to corrupt/");
                self.move_to_corrupt(ReplicaState::Rbw, id, true, Some(gs))?;
                return Ok(None);
            }
            return Err(e);
        }
        let stat_err = |e| Error::io(format!("cannot stat blk_{id}"), e);
        let data_len = data.metadata().map_err(stat_err)?.len();
        let meta_len = meta_file.metadata().map_err(stat_err)?.len();
        let sums = (meta_len - meta::HEADER_LEN as u64) / CHECKSUM_SIZE as u64;
        let mut len = data_len.min(sums.saturating_mul(CHUNK));
        if len > 0 {
            // The last checksum covers some prefix of its chunk: keep the
            // longest prefix it matches, or drop the chunk.
            let start = (len - 1) / CHUNK * CHUNK;
            let mut chunk = vec![0u8; (len - start) as usize];
            let mut stored = [0u8; CHECKSUM_SIZE];
            let read_err = |e| Error::io(format!("cannot read blk_{id}"), e);
            data.read_exact_at(&mut chunk, start).map_err(read_err)?;
            meta_file
                .read_exact_at(&mut stored, meta::checksum_offset(start))
                .map_err(read_err)?;
            let stored = u32::from_le_bytes(stored);
            let keep = (1..=chunk.len())
                .rev()
                .find(|&n| checksum::crc(&chunk[..n]) == stored)
                .unwrap_or(0);
            if start + keep as u64 != len {
                warn!(
                    block = id,
                    offset = start,
                    kept = keep,
                    "trimming a last chunk torn by a crash"
                );
            }
            len = start + keep as u64;
        }
        let ctx = |e| Error::io(format!("cannot truncate blk_{id}"), e);
        data.set_len(len).map_err(ctx)?;
        meta_file.set_len(meta::meta_len(len)).map_err(ctx)?;
        Ok(Some(ReplicaMeta {
            gs,
            state: ReplicaState::Rbw,
            len,
            writer: 0,
            recovery_id: 0,
            removed: false,
        }))
    }

    /// The failure of the storage, if any, as last checked.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().clone()
    }

    /// Checks that the data directory is still there and writable; returns
    /// (and remembers) the failure.
    pub fn check_storage(&self) -> Option<String> {
        let failure = self.probe().err();
        *self.failure.lock() = failure.clone();
        failure
    }

    fn probe(&self) -> std::result::Result<(), String> {
        for dir in [FINALIZED_DIR, RBW_DIR, TMP_DIR] {
            let p = self.root.join(dir);
            match fs::metadata(&p) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(format!("{} is not a directory", p.display())),
                Err(e) => return Err(format!("{} is not accessible: {e}", p.display())),
            }
        }
        let probe = self.root.join(TMP_DIR).join(".probe");
        let res = File::create(&probe)
            .and_then(|mut f| f.write_all(b"ok"))
            .and_then(|()| fs::remove_file(&probe));
        res.map_err(|e| format!("cannot write in {}: {e}", self.root.display()))
    }

    /// Space figures for the namenode.
    pub fn stats(&self) -> StorageStats {
        let used = self
            .snapshot()
            .iter()
            .map(|r| {
                let len = r.meta.lock().len;
                len + meta::meta_len(len)
            })
            .sum();
        StorageStats {
            used,
            ..self.space()
        }
    }

    /// Capacity, free space and failure, without the (costlier) used bytes.
    fn space(&self) -> StorageStats {
        let mut failure = self.failure();
        let (total, avail) = match rustix::fs::statvfs(&self.root) {
            Ok(s) => (
                s.f_blocks.saturating_mul(s.f_frsize),
                s.f_bavail.saturating_mul(s.f_frsize),
            ),
            Err(e) => {
                failure.get_or_insert_with(|| {
                    format!("cannot read the free space of {}: {e}", self.root.display())
                });
                (0, 0)
            }
        };
        let remaining = avail.saturating_sub(self.reserved);
        StorageStats {
            capacity: total.saturating_sub(self.reserved),
            used: 0,
            remaining,
            full: remaining < self.block_size.load(Ordering::Relaxed),
            failure,
        }
    }

    /// Fails when the storage failed, or when `new_block` and there is no
    /// room for one more block.
    pub fn check_writable(&self, new_block: bool) -> Result<()> {
        if let Some(reason) = self.failure() {
            return Err(Error::StorageFailed { reason });
        }
        if new_block {
            let stats = self.space();
            if let Some(reason) = stats.failure {
                return Err(Error::StorageFailed { reason });
            }
            if stats.full {
                return Err(Error::StorageFull {
                    remaining: stats.remaining,
                    needed: self.block_size.load(Ordering::Relaxed),
                    reserved: self.reserved,
                });
            }
        }
        Ok(())
    }

    /// Every visible replica (finalized and being written).
    pub fn replicas(&self) -> Vec<ReplicaInfo> {
        self.snapshot()
            .iter()
            .filter_map(|r| {
                let m = r.meta.lock();
                (m.state != ReplicaState::Temporary && !m.removed).then(|| r.info(&m))
            })
            .collect()
    }

    /// The replica handles, taken under the map lock only (a replica lock
    /// may be held across a disk write).
    fn snapshot(&self) -> Vec<Arc<Replica>> {
        self.replicas.lock().values().cloned().collect()
    }

    /// One replica, if present and visible.
    pub fn replica(&self, id: u64) -> Option<ReplicaInfo> {
        let r = self.get(id)?;
        let m = r.meta.lock();
        (m.state != ReplicaState::Temporary && !m.removed).then(|| r.info(&m))
    }

    /// Creates a new replica being written (`Rbw`) or a temporary copy
    /// (`Temporary`, removed again unless finalized). A stale replica of the
    /// same block (older generation stamp, no writer) is replaced by a copy.
    pub fn create(
        self: &Arc<Self>,
        id: u64,
        gs: u64,
        state: ReplicaState,
    ) -> Result<ReplicaWriter> {
        if state == ReplicaState::Finalized {
            return Err(Error::invalid(id, "a new replica cannot start finalized"));
        }
        if let Some(reason) = self.failure() {
            return Err(Error::StorageFailed { reason });
        }
        let token = self.token();
        let replica = Arc::new(Replica {
            id,
            meta: Mutex::new(ReplicaMeta {
                gs,
                state,
                len: 0,
                writer: token,
                recovery_id: 0,
                removed: false,
            }),
        });
        let replaced = {
            let mut map = self.replicas.lock();
            let mut replaced = None;
            if let Some(existing) = map.get(&id).cloned() {
                let mut m = existing.meta.lock();
                if state == ReplicaState::Temporary && m.gs < gs && m.writer == 0 && !m.removed {
                    m.removed = true;
                    replaced = Some(existing.info(&m));
                } else {
                    return Err(Error::ReplicaExists {
                        block: id,
                        generation_stamp: m.gs,
                        state: m.state.as_str(),
                    });
                }
            }
            map.insert(id, replica.clone());
            replaced
        };
        let result = (|| {
            if let Some(old) = &replaced {
                warn!(block = %old.block, "replacing a stale replica with a new copy");
                self.remove_files(old.state, id, true, Some(old.block.generation_stamp))?;
            }
            let data_path = self.data_path(state, id);
            let meta_path = self.meta_path(state, id, gs);
            let open = |p: &Path| {
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(p)
                    .map_err(|e| Error::io(format!("cannot create {}", p.display()), e))
            };
            if let Some(spare) = self.spares.take() {
                match spare.place(&data_path, &meta_path) {
                    Ok(files) => return Ok(files),
                    Err(e) => {
                        warn!(block = id, error = %e, "cannot use a prepared replica file; creating one");
                    }
                }
            }
            let data = open(&data_path)?;
            let meta_file = open(&meta_path)?;
            meta_file
                .write_all_at(&meta::encode_header(), 0)
                .map_err(|e| Error::io(format!("cannot write {}", meta_path.display()), e))?;
            Ok((data, meta_file))
        })();
        match result {
            Ok((data, meta_file)) => Ok(ReplicaWriter {
                store: self.clone(),
                replica,
                token,
                id,
                gs,
                state,
                data,
                meta: meta_file,
                done: false,
                behind: DropBehind::from(0),
            }),
            Err(e) => {
                self.forget(&replica);
                let _ = self.remove_files(state, id, true, Some(gs));
                Err(e)
            }
        }
    }

    /// Removes `replica` from the map if it is still the entry for its id.
    fn forget(&self, replica: &Arc<Replica>) {
        let mut map = self.replicas.lock();
        if map
            .get(&replica.id)
            .is_some_and(|r| Arc::ptr_eq(r, replica))
        {
            map.remove(&replica.id);
        }
        replica.meta.lock().removed = true;
    }

    /// Pipeline recovery: takes over an existing replica (being written or
    /// finalized) with a generation stamp at most `new_gs` and at least
    /// `bytes_acked` bytes, truncates it to `bytes_acked`, gives it `new_gs`
    /// and returns a writer that continues from there. Any older writer of
    /// the replica is cut off.
    pub fn recover(
        self: &Arc<Self>,
        id: u64,
        new_gs: u64,
        bytes_acked: u64,
    ) -> Result<ReplicaWriter> {
        if let Some(reason) = self.failure() {
            return Err(Error::StorageFailed { reason });
        }
        let replica = self.get(id).ok_or(Error::ReplicaNotFound { block: id })?;
        let mut m = replica.meta.lock();
        if m.removed || m.state == ReplicaState::Temporary {
            return Err(Error::ReplicaNotFound { block: id });
        }
        if m.gs > new_gs {
            return Err(Error::GenerationStamp {
                block: id,
                have: m.gs,
                reason: format!("recovery to generation stamp {new_gs} is older than the replica"),
            });
        }
        if m.len < bytes_acked {
            return Err(Error::invalid(
                id,
                format!(
                    "replica has {} bytes but {bytes_acked} were acknowledged",
                    m.len
                ),
            ));
        }
        let token = self.token();
        m.writer = token;
        if m.gs != new_gs {
            rename(
                &self.meta_path(m.state, id, m.gs),
                &self.meta_path(m.state, id, new_gs),
            )?;
            m.gs = new_gs;
        }
        if m.state == ReplicaState::Finalized {
            rename(
                &self.data_path(ReplicaState::Finalized, id),
                &self.data_path(ReplicaState::Rbw, id),
            )?;
            rename(
                &self.meta_path(ReplicaState::Finalized, id, new_gs),
                &self.meta_path(ReplicaState::Rbw, id, new_gs),
            )?;
            m.state = ReplicaState::Rbw;
            fsync_dir(&self.root.join(RBW_DIR))?;
        }
        let data = open_rw(&self.data_path(ReplicaState::Rbw, id))?;
        let meta_file = open_rw(&self.meta_path(ReplicaState::Rbw, id, new_gs))?;
        truncate_files(id, &data, &meta_file, m.len, bytes_acked)?;
        m.len = bytes_acked;
        drop(m);
        Ok(ReplicaWriter {
            store: self.clone(),
            replica,
            token,
            id,
            gs: new_gs,
            state: ReplicaState::Rbw,
            data,
            meta: meta_file,
            done: false,
            behind: DropBehind::from(bytes_acked),
        })
    }

    /// Opens a visible replica for reading. Fails with a stale-block error
    /// when its generation stamp is older than `min_gs`.
    pub fn open_reader(&self, id: u64, min_gs: u64) -> Result<ReplicaReader> {
        let replica = self.get(id).ok_or(Error::ReplicaNotFound { block: id })?;
        let m = replica.meta.lock();
        if m.removed || m.state == ReplicaState::Temporary {
            return Err(Error::ReplicaNotFound { block: id });
        }
        if m.gs < min_gs {
            return Err(Error::GenerationStamp {
                block: id,
                have: m.gs,
                reason: format!("generation stamp {min_gs} or newer was asked"),
            });
        }
        let open = |p: PathBuf| {
            File::open(&p).map_err(|e| Error::io(format!("cannot open {}", p.display()), e))
        };
        let data = open(self.data_path(m.state, id))?;
        let meta_file = open(self.meta_path(m.state, id, m.gs))?;
        Ok(ReplicaReader {
            info: replica.info(&m),
            data,
            meta: meta_file,
            header_checked: false,
            behind: None,
        })
    }

    /// Moves a finalized replica found corrupt to `current/corrupt`. Returns
    /// the block when it was moved (not when it changed or left meanwhile).
    pub fn mark_corrupt(&self, id: u64, gs: u64) -> Result<Option<ExtendedBlock>> {
        let (block, state) = {
            let mut map = self.replicas.lock();
            let Some(replica) = map.get(&id).cloned() else {
                return Ok(None);
            };
            let mut m = replica.meta.lock();
            if m.removed || m.gs != gs || m.state != ReplicaState::Finalized {
                return Ok(None);
            }
            map.remove(&id);
            m.removed = true;
            m.writer = 0;
            (replica.info(&m).block, m.state)
        };
        self.move_to_corrupt(state, id, true, Some(gs))?;
        Ok(Some(block))
    }

    /// Deletes a replica unless it is newer than `max_gs`. Returns the block
    /// deleted.
    pub fn delete(&self, id: u64, max_gs: u64) -> Result<Option<ExtendedBlock>> {
        // The replica stays in the map, marked removed, until its files are
        // gone: a new replica of the same block cannot be created (and then
        // lose its files to this removal) meanwhile.
        let (info, gs, replica) = {
            let map = self.replicas.lock();
            let Some(replica) = map.get(&id).cloned() else {
                return Ok(None);
            };
            let mut m = replica.meta.lock();
            if m.removed {
                return Ok(None);
            }
            if m.gs > max_gs {
                warn!(
                    block = id,
                    have = m.gs,
                    asked = max_gs,
                    "not deleting a replica newer than the one to delete"
                );
                return Ok(None);
            }
            m.removed = true;
            m.writer = 0;
            let (info, gs) = (replica.info(&m), m.gs);
            drop(m);
            (info, gs, replica)
        };
        let removed = self.remove_files(info.state, id, true, Some(gs));
        self.forget(&replica);
        removed?;
        Ok(Some(info.block))
    }

    /// Replica recovery step 1: cuts off writers, remembers `recovery_id`
    /// and returns the replica's state and length.
    pub fn init_recovery(&self, block: &ExtendedBlock, recovery_id: u64) -> Result<ReplicaInfo> {
        let id = block.id;
        let replica = self.get(id).ok_or(Error::ReplicaNotFound { block: id })?;
        let mut m = replica.meta.lock();
        if m.removed || m.state == ReplicaState::Temporary {
            return Err(Error::ReplicaNotFound { block: id });
        }
        let stale = |reason: String| Error::GenerationStamp {
            block: id,
            have: m.gs,
            reason,
        };
        if m.recovery_id > recovery_id {
            return Err(stale(format!(
                "recovery {recovery_id} is older than recovery {} already under way",
                m.recovery_id
            )));
        }
        if m.gs >= recovery_id {
            return Err(stale(format!(
                "recovery id {recovery_id} is not newer than the replica"
            )));
        }
        if m.gs < block.generation_stamp {
            return Err(stale(format!(
                "the namenode expects generation stamp {} or newer",
                block.generation_stamp
            )));
        }
        m.writer = 0;
        m.recovery_id = recovery_id;
        Ok(replica.info(&m))
    }

    /// Replica recovery step 2: truncates to `new_len`, takes `recovery_id`
    /// as the generation stamp and finalizes.
    pub fn update_recovery(
        &self,
        id: u64,
        recovery_id: u64,
        new_len: u64,
    ) -> Result<ExtendedBlock> {
        let replica = self.get(id).ok_or(Error::ReplicaNotFound { block: id })?;
        let mut m = replica.meta.lock();
        if m.removed || m.state == ReplicaState::Temporary {
            return Err(Error::ReplicaNotFound { block: id });
        }
        if m.state == ReplicaState::Finalized && m.gs == recovery_id && m.len == new_len {
            return Ok(replica.info(&m).block);
        }
        if m.recovery_id != recovery_id {
            return Err(Error::GenerationStamp {
                block: id,
                have: m.gs,
                reason: format!(
                    "recovery {recovery_id} was not started here (last recovery: {})",
                    m.recovery_id
                ),
            });
        }
        if new_len > m.len {
            return Err(Error::invalid(
                id,
                format!(
                    "recovery length {new_len} exceeds the replica's {} bytes",
                    m.len
                ),
            ));
        }
        m.writer = 0;
        let state = m.state;
        let data = open_rw(&self.data_path(state, id))?;
        let meta_file = open_rw(&self.meta_path(state, id, m.gs))?;
        truncate_files(id, &data, &meta_file, m.len, new_len)?;
        let sync_err = |e| Error::io(format!("cannot sync blk_{id}"), e);
        data.sync_all().map_err(sync_err)?;
        meta_file.sync_all().map_err(sync_err)?;
        m.len = new_len;
        // The meta file takes the new stamp first, so a crash between the
        // renames leaves a replica that the start-up scan completes.
        rename(
            &self.meta_path(state, id, m.gs),
            &self.meta_path(state, id, recovery_id),
        )?;
        m.gs = recovery_id;
        if state != ReplicaState::Finalized {
            rename(
                &self.data_path(state, id),
                &self.data_path(ReplicaState::Finalized, id),
            )?;
            rename(
                &self.meta_path(state, id, recovery_id),
                &self.meta_path(ReplicaState::Finalized, id, recovery_id),
            )?;
            m.state = ReplicaState::Finalized;
        }
        fsync_dir(&self.root.join(FINALIZED_DIR))?;
        Ok(replica.info(&m).block)
    }
}

fn load_or_create_node_id(root: &Path) -> Result<String> {
    let path = root.join(NODE_ID_FILE);
    match fs::read_to_string(&path) {
        Ok(s) => {
            let id = s.trim();
            uuid::Uuid::parse_str(id).map_err(|e| Error::BadNodeId {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            Ok(id.to_string())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let id = uuid::Uuid::new_v4().to_string();
            let tmp = root.join(format!("{NODE_ID_FILE}.new"));
            let write = || -> io::Result<()> {
                let mut f = File::create(&tmp)?;
                f.write_all(format!("{id}\n").as_bytes())?;
                f.sync_all()
            };
            write().map_err(|e| Error::io(format!("cannot write {}", tmp.display()), e))?;
            rename(&tmp, &path)?;
            fsync_dir(root)?;
            info!(node_id = %id, "created a new node id");
            Ok(id)
        }
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}

#[cfg(test)]
mod tests;
