//! Replicas on the local disk.
//!
//! ```text
//! DATA/node_id                       the node's UUID
//! DATA/cluster_id                    the cluster its replicas belong to
//!                                    (recorded when it first joins)
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
//! * lock order is the replica map, then one replica; file I/O of a write,
//!   and a reader's read of a last chunk still being written, run under the
//!   replica's lock only (never under the map's).
//!
//! Every method does blocking file I/O: call it from `spawn_blocking` or a
//! blocking writer thread.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dfs_proto::defaults::BYTES_PER_CHECKSUM;
use dfs_proto::ExtendedBlock;
use parking_lot::Mutex;
use tracing::warn;

use crate::error::{Error, Result};
use crate::meta;
use crate::page_cache::DropBehind;
use files::{
    clean_tmp, data_name, load_cluster_id, load_or_create_node_id, meta_name, remove_if_exists,
    write_id_file,
};

mod files;
mod recovery;
mod replica_io;
mod scan;
mod spares;

pub use replica_io::{AckedLength, ReplicaReader, ReplicaWriter};

/// Name of the file holding the node's UUID, in the data directory.
pub const NODE_ID_FILE: &str = "node_id";
/// File under the data directory holding the id of the cluster the
/// replicas belong to.
pub const CLUSTER_ID_FILE: &str = "cluster_id";
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
    /// Found being written when the store opened (HDFS's "waiting to be
    /// recovered"): its unsynced bytes may not all have survived.
    restarted: bool,
}

#[derive(Debug)]
struct Replica {
    id: u64,
    meta: Mutex<ReplicaMeta>,
    /// Apart from `meta`, whose lock the writer holds while it writes to
    /// the disk: the pipeline's responder records acknowledgements here
    /// without waiting for a write.
    acked: Mutex<Acked>,
}

/// Of a replica being written: the bytes this node and every node after
/// it in the pipeline acknowledged, which readers may see (HDFS's
/// bytesAcked), recorded for writer `writer` (a token; 0 = none).
#[derive(Debug, Default)]
struct Acked {
    writer: u64,
    bytes: u64,
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

/// Fails unless replica `id` (its metadata `m`) is one readers may use: not
/// removed, not a temporary copy, and with generation stamp `min_gs` or
/// newer.
fn readable(id: u64, m: &ReplicaMeta, min_gs: u64) -> Result<()> {
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
    Ok(())
}

/// The replicas of this node and the files behind them.
#[derive(Debug)]
pub struct BlockStore {
    root: PathBuf,
    node_id: String,
    /// The cluster the replicas belong to, once the node joined one.
    cluster_id: Mutex<Option<String>>,
    reserved: u64,
    /// Most bytes of replicas stored (0: no limit but the disk).
    capacity_limit: AtomicU64,
    replicas: Mutex<HashMap<u64, Arc<Replica>>>,
    next_token: AtomicU64,
    failure: Mutex<Option<String>>,
    /// Finalized replicas whose files were found gone (removed behind the
    /// node's back), dropped from the map, for the namenode to hear of.
    lost: Mutex<Vec<ExtendedBlock>>,
    /// Free bytes a new block needs: the cluster's default block size,
    /// 0 until the namenode has told it (a node with less room than
    /// HDFS's 128 MiB default but more than its cluster's blocks must not
    /// register as full).
    block_size: AtomicU64,
    /// Replica files made ahead of need.
    spares: Arc<spares::Spares>,
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
        let cluster_id = load_cluster_id(root)?;
        clean_tmp(root)?;
        let store = BlockStore {
            root: root.to_path_buf(),
            node_id,
            cluster_id: Mutex::new(cluster_id),
            reserved,
            capacity_limit: AtomicU64::new(0),
            replicas: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(1),
            failure: Mutex::new(None),
            lost: Mutex::new(Vec::new()),
            block_size: AtomicU64::new(0),
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

    /// The cluster the replicas belong to (`None` until the node first
    /// joins a namenode).
    pub fn cluster_id(&self) -> Option<String> {
        self.cluster_id.lock().clone()
    }

    /// Records the cluster of the namenode the node joined: from then on
    /// it joins no namenode of another cluster. Fails if it is recorded
    /// already with another id.
    pub fn adopt_cluster_id(&self, id: &str) -> Result<()> {
        let mut current = self.cluster_id.lock();
        match current.as_deref() {
            Some(c) if c == id => Ok(()),
            Some(c) => Err(Error::WrongCluster {
                path: self.root.join(CLUSTER_ID_FILE).display().to_string(),
                recorded: c.to_string(),
                offered: id.to_string(),
            }),
            None => {
                write_id_file(&self.root, CLUSTER_ID_FILE, id)?;
                tracing::info!(cluster_id = %id, "joined the cluster");
                *current = Some(id.to_string());
                Ok(())
            }
        }
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

    /// Limits the bytes of replicas this node stores, and the capacity
    /// it reports, to `bytes` (0: no limit but the disk).
    pub fn limit_capacity(&self, bytes: u64) {
        self.capacity_limit.store(bytes, Ordering::Relaxed);
    }

    /// Bytes of replica data and checksum files.
    fn used(&self) -> u64 {
        self.snapshot()
            .iter()
            .map(|r| {
                let len = r.meta.lock().len;
                len + meta::meta_len(len)
            })
            .sum()
    }

    /// Space figures for the namenode.
    pub fn stats(&self) -> StorageStats {
        let used = self.used();
        StorageStats {
            used,
            ..self.space_with(Some(used))
        }
    }

    /// Capacity, free space and failure, without the used bytes (which it
    /// sums only under a `--capacity` limit).
    fn space(&self) -> StorageStats {
        self.space_with(None)
    }

    /// [`space`](Self::space) with the used bytes, if already summed.
    fn space_with(&self, used: Option<u64>) -> StorageStats {
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
        let mut capacity = total.saturating_sub(self.reserved);
        let mut remaining = avail.saturating_sub(self.reserved);
        let limit = self.capacity_limit.load(Ordering::Relaxed);
        if limit > 0 {
            capacity = capacity.min(limit);
            let used = used.unwrap_or_else(|| self.used());
            remaining = remaining.min(limit.saturating_sub(used));
        }
        StorageStats {
            capacity,
            used: 0,
            remaining,
            full: remaining < self.block_size.load(Ordering::Relaxed).max(1),
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
    /// may be held across a disk write or read).
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
                restarted: false,
            }),
            acked: Mutex::new(Acked {
                writer: token,
                bytes: 0,
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

    /// Opens a visible replica for reading. Fails with a stale-block error
    /// when its generation stamp is older than `min_gs`.
    pub fn open_reader(&self, id: u64, min_gs: u64) -> Result<ReplicaReader> {
        let replica = self.get(id).ok_or(Error::ReplicaNotFound { block: id })?;
        let m = replica.meta.lock();
        readable(id, &m, min_gs)?;
        let open = |p: PathBuf| File::open(&p).map_err(|e| (p, e));
        let opened = open(self.data_path(m.state, id))
            .and_then(|d| Ok((d, open(self.meta_path(m.state, id, m.gs))?)));
        let (data, meta_file) = match opened {
            Ok(files) => files,
            Err((p, e))
                if e.kind() == std::io::ErrorKind::NotFound
                    && m.state == ReplicaState::Finalized =>
            {
                let gs = m.gs;
                drop(m);
                self.forget_lost(id, gs, &p);
                return Err(Error::io(
                    format!("{} is gone (removed behind the datanode's back); the replica is dropped and reported to the namenode", p.display()),
                    e,
                ));
            }
            Err((p, e)) => return Err(Error::io(format!("cannot open {}", p.display()), e)),
        };
        Ok(ReplicaReader {
            info: replica.info(&m),
            replica: replica.clone(),
            data,
            meta: meta_file,
            header_checked: false,
            behind: None,
        })
    }

    /// How many bytes of replica `id` readers may see (HDFS's visible
    /// length): all of a finalized replica; of one being written, the bytes
    /// acknowledged by this node and every node after it in its pipeline.
    /// A replica found being written at start-up shows none until a
    /// recovery settles its length (its unsynced bytes may be gone).
    /// Fails with a stale-block error when its generation stamp is older
    /// than `min_gs`.
    pub fn visible_length(&self, id: u64, min_gs: u64) -> Result<u64> {
        let replica = self.get(id).ok_or(Error::ReplicaNotFound { block: id })?;
        let m = replica.meta.lock();
        readable(id, &m, min_gs)?;
        match m.state {
            ReplicaState::Finalized => Ok(m.len),
            _ if m.restarted => Err(Error::NotVisible {
                block: id,
                reason: "it was being written when this datanode restarted and awaits recovery",
            }),
            _ => Ok(replica.acked.lock().bytes.min(m.len)),
        }
    }

    /// Drops finalized replica `id`_`gs` whose file `missing` is gone from
    /// the disk: it is no longer served or reported, and [`take_lost`]
    /// hands it to the namenode, which copies the block from another
    /// replica (HDFS's directory scanner finds such replicas).
    ///
    /// [`take_lost`]: BlockStore::take_lost
    fn forget_lost(&self, id: u64, gs: u64, missing: &Path) {
        // As `delete`: the replica stays in the map, marked removed, until
        // its files are gone, so a new replica of the block cannot be made
        // (and lose its files to this removal) meanwhile.
        let (block, replica) = {
            let map = self.replicas.lock();
            let Some(replica) = map.get(&id).cloned() else {
                return;
            };
            let mut m = replica.meta.lock();
            if m.removed || m.gs != gs || m.state != ReplicaState::Finalized {
                return;
            }
            m.removed = true;
            m.writer = 0;
            let block = replica.info(&m).block;
            drop(m);
            (block, replica)
        };
        warn!(block = %block, file = %missing.display(), "replica file gone from the disk: the replica is dropped and will be reported lost");
        // The other file of the pair, if it is still there, is of no use.
        let _ = self.remove_files(ReplicaState::Finalized, id, true, Some(gs));
        self.forget(&replica);
        self.lost.lock().push(block);
    }

    /// The replicas found lost since the last call (see `forget_lost`).
    pub fn take_lost(&self) -> Vec<ExtendedBlock> {
        std::mem::take(&mut *self.lost.lock())
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
        // Out of the map, the replica is no longer served: the namenode is
        // told (by the caller) even when its files cannot be moved.
        if let Err(e) = self.move_to_corrupt(state, id, true, Some(gs)) {
            warn!(block = %block, error = %e,
                "cannot move a corrupt replica's files to corrupt/; it is no longer served and is reported all the same");
        }
        Ok(Some(block))
    }

    /// Deletes a replica unless it is newer than `max_gs`. Returns the block
    /// deleted.
    pub fn delete(&self, id: u64, max_gs: u64) -> Result<Option<ExtendedBlock>> {
        // The replica stays in the map, marked removed, until its files are
        // gone: a new replica of the same block cannot be created (and then
        // lose its files to this removal) meanwhile.
        let (info, gs, replica, unused) = {
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
            // Held by the map and here only: no reader or writer has its
            // files open, and none can open them now (it is marked removed,
            // and handles are taken from the map under its lock).
            let unused = Arc::strong_count(&replica) == 2;
            (info, gs, replica, unused)
        };
        let recycled = unused
            && self.spares.recycle(
                &self.data_path(info.state, id),
                &self.meta_path(info.state, id, gs),
            );
        let removed = if recycled {
            Ok(())
        } else {
            self.remove_files(info.state, id, true, Some(gs))
        };
        self.forget(&replica);
        removed?;
        Ok(Some(info.block))
    }
}

#[cfg(test)]
mod tests;
