//! The namesystem: namespace, block map, datanodes, leases, safe mode and
//! replication queues behind one lock, plus the metadata store.
//!
//! Locking: one `parking_lot::RwLock` over [`State`]. Reads (stat, list,
//! block locations) take it shared; mutations take it exclusively for the
//! in-memory change and queuing its batch for the edit log only, then
//! release it and wait for the group commit. No lock is ever held across an `.await`.
//!
//! The operations live in submodules: `client` (the ClientProtocol entry
//! points), `write` (create, addBlock, fsync, complete, abandon on the
//! state), `read` (block locations, corrupt replicas), `datanode`
//! (registration, heartbeats, block reports),
//! `recovery` (leases and pipeline recovery), `admin` (reports, fsck,
//! decommission), `balance` (the balancer's moves) and `monitor` (the
//! background loop).

mod access;
mod admin;
mod balance;
mod client;
mod datanode;
mod monitor;
mod read;
mod recovery;
#[cfg(test)]
mod tests;
mod write;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::RwLock;
use tokio::sync::Notify;

use crate::balancer::Balancer;
use crate::blocks::{BlockInfo, BlockMap, BlockState};
use crate::config::Config;
use crate::datanodes::{DatanodeManager, NodeIdx};
use crate::decommissions::Decommissions;
use crate::error::{Error, Result};
use crate::leases::LeaseManager;
use crate::namespace::{now_ms, Namespace, RemovedFile};
use crate::permission::{Caller, Permissions};
use crate::replication::ReplicationQueues;
use crate::safemode::SafeMode;
use crate::store::{Batch, CallRecord, Change, Store};
use crate::topology::Topology;

/// Everything in memory, behind the namesystem lock.
pub struct State {
    pub(crate) ns: Namespace,
    pub(crate) blocks: BlockMap,
    pub(crate) dns: DatanodeManager,
    pub(crate) leases: LeaseManager,
    pub(crate) safemode: SafeMode,
    pub(crate) repl: ReplicationQueues,
    /// Copies are not scheduled before this instant: right after safe mode
    /// the datanodes that have not reported yet would look like lost
    /// replicas.
    pub(crate) replication_ready_at: Instant,
    /// Full block reports that arrive in parts, by node, until the last.
    pub(crate) partial_reports: HashMap<NodeIdx, datanode::PartialReport>,
    /// Nodes taken out of service, kept across restarts.
    pub(crate) decommissions: Decommissions,
    /// The balancing run, going on or last finished.
    pub(crate) balancer: Option<Balancer>,
    pub(crate) cfg: Arc<Config>,
}

/// The namenode's shared state and store.
pub struct Namesystem {
    state: RwLock<State>,
    store: Arc<Store>,
    cfg: Arc<Config>,
    /// Wakes the monitor early (a node died, safe mode ended).
    kick: Notify,
    /// Who callers are and whether their permissions are checked.
    perms: Permissions,
    /// The at-most-once calls of the edits replayed at start, until the
    /// retry cache takes them.
    replayed_calls: parking_lot::Mutex<Vec<CallRecord>>,
}

impl Namesystem {
    /// Opens the store, loads the namespace, rebuilds the block map without
    /// locations and enters safe mode.
    pub fn open(cfg: Config) -> Result<Namesystem> {
        let topology = match &cfg.topology {
            Some(p) => Topology::load(p)?,
            None => Topology::default(),
        };
        let (store, mut image) = Store::open(&cfg.data_dir)?;
        // The replayed edits are merged into the image now: the calls they
        // recorded (those the retry cache would still keep) go into the
        // new edit log, so a second restart soon after knows them too.
        let expiry = crate::retry_cache::EXPIRY.as_millis() as i64;
        let mut replayed_calls = std::mem::take(&mut image.calls);
        let started_ms = now_ms();
        replayed_calls.retain(|c| started_ms.saturating_sub(c.at_ms) < expiry);
        if !replayed_calls.is_empty() {
            store.apply(replayed_calls.iter().cloned().map(Change::Call).collect())?;
        }
        let decommissions = Decommissions::load(&cfg.data_dir)?;
        let ns = Namespace::from_image(image, cfg.block_size, cfg.replication)?;
        let cfg = Arc::new(cfg);
        let now = Instant::now();
        let mut blocks = BlockMap::new();
        let mut leases = LeaseManager::new();
        for inode in ns.inodes() {
            let rec = &inode.rec;
            if rec.is_dir {
                continue;
            }
            let uc_file = !rec.lease_holder.is_empty();
            for b in &rec.blocks {
                let state = if b.under_construction {
                    BlockState::UnderConstruction
                } else if uc_file {
                    BlockState::Committed
                } else {
                    BlockState::Complete
                };
                let mut info =
                    BlockInfo::new(rec.id, b.generation_stamp, b.length, state, rec.replication);
                if b.under_construction {
                    info.pipeline = rec.pipeline.clone();
                }
                blocks.insert(b.id, info);
            }
            if uc_file {
                leases.add(&rec.lease_holder, rec.id, now);
            }
        }
        let (files, dirs) = ns.counts();
        let (_, total) = blocks.safe_counts();
        tracing::info!(
            store = %store.path().display(),
            files,
            dirs,
            blocks = blocks.len(),
            complete_blocks = total,
            files_under_construction = leases.file_count(),
            "namespace loaded"
        );
        let mut safemode = SafeMode::new(cfg.safemode_threshold, cfg.safemode_extension);
        if safemode.update(0, total, now) {
            tracing::info!("no complete blocks: safe mode is off");
        } else {
            tracing::info!(
                "safe mode is on until {} of {total} blocks have a reported replica",
                safemode.needed(total)
            );
        }
        let state = State {
            ns,
            blocks,
            dns: DatanodeManager::new(topology, cfg.stale_after, cfg.dead_after),
            leases,
            safemode,
            repl: ReplicationQueues::new(),
            replication_ready_at: now + startup_delay(&cfg),
            partial_reports: HashMap::new(),
            decommissions,
            balancer: None,
            cfg: cfg.clone(),
        };
        let perms = Permissions::new(
            cfg.permissions,
            cfg.superuser.clone(),
            cfg.supergroup.clone(),
        );
        Ok(Namesystem {
            state: RwLock::new(state),
            store: Arc::new(store),
            cfg,
            kick: Notify::new(),
            perms,
            replayed_calls: parking_lot::Mutex::new(replayed_calls),
        })
    }

    /// Takes the at-most-once calls of the edits replayed at start, for
    /// the retry cache.
    pub fn take_replayed_calls(&self) -> Vec<CallRecord> {
        std::mem::take(&mut *self.replayed_calls.lock())
    }

    /// The caller a request naming `user` acts for (its groups, and
    /// whether it is the superuser).
    pub fn caller(&self, user: &str) -> Caller {
        self.perms.caller(user)
    }

    /// The store (to run its flusher).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Whether the namenode is in safe mode.
    pub fn in_safe_mode(&self) -> bool {
        self.state.read().safemode.is_on()
    }

    /// Runs `f` on the state under the exclusive lock, refusing in safe mode
    /// when `op` names a namespace mutation.
    fn mutate<T>(
        &self,
        op: Option<&'static str>,
        f: impl FnOnce(&mut State, &Store) -> Result<T>,
    ) -> Result<T> {
        let mut st = self.state.write();
        if let Some(op) = op {
            st.check_safemode(op)?;
        }
        f(&mut st, &self.store)
    }

    /// Waits until the batch `seq` is durable.
    async fn durable(&self, seq: u64) -> Result<()> {
        self.store.wait_durable(seq).await
    }

    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.read())
    }
}

/// How long after start (or safe mode) copies wait for block reports.
fn startup_delay(cfg: &Config) -> std::time::Duration {
    (cfg.heartbeat_interval * 3).max(std::time::Duration::from_secs(2))
}

impl State {
    /// Refuses a mutation while in safe mode, saying how far block reports got.
    pub(crate) fn check_safemode(&self, op: &'static str) -> Result<()> {
        if self.safemode.is_on() {
            let (safe, total) = self.blocks.safe_counts();
            return Err(Error::SafeMode {
                op,
                status: self.safemode.status(safe, total, Instant::now()),
                by_admin: self.safemode.by_admin(),
            });
        }
        Ok(())
    }

    /// Persists a planned batch and applies it in memory. An empty batch
    /// still waits for whatever was applied before it (the state it
    /// observed may not be durable yet).
    pub(crate) fn commit(&mut self, store: &Store, mut batch: Batch) -> Result<u64> {
        if batch.is_empty() {
            return Ok(store.last_applied());
        }
        // The edit names the at-most-once call that made it, so a retry
        // after a restart is not run again.
        if let Some((call, kind)) = crate::retry_cache::current_call() {
            batch.push(Change::Call(call.record(kind, now_ms())));
        }
        store.check()?;
        self.ns.apply(&batch);
        let seq = store.apply(batch)?;
        // Replicas this edit makes unneeded are deleted once it is durable.
        self.dns.set_delete_barrier(seq);
        Ok(seq)
    }

    /// Drops a deleted or replaced file from the block map and leases, and
    /// queues the deletion of every replica it had.
    pub(crate) fn forget_file(&mut self, f: &RemovedFile) {
        if !f.lease_holder.is_empty() {
            self.leases.remove(&f.lease_holder, f.id);
        }
        for b in &f.blocks {
            self.forget_block(b.id);
        }
    }

    /// Removes a block and queues the deletion of its replicas, including
    /// those a pipeline or a copy may be writing.
    pub(crate) fn forget_block(&mut self, id: u64) {
        self.repl.forget(id);
        let Some(info) = self.blocks.remove(id) else {
            return;
        };
        for r in &info.replicas {
            self.dns.queue_delete(
                r.node,
                dfs_proto::ExtendedBlock {
                    id,
                    generation_stamp: r.gs,
                    length: r.len,
                },
            );
        }
        for node_id in &info.pipeline {
            if let Some(n) = self.dns.lookup(node_id) {
                if info.replica(n).is_none() {
                    self.dns.queue_delete(n, info.extended(id));
                }
            }
        }
        // Placement counted the block against these nodes' free space until
        // their replica arrived; it never will.
        for n in &info.scheduled {
            self.dns.unschedule(*n);
        }
        for (n, gs) in &info.stale_holders {
            self.dns.queue_delete(
                *n,
                dfs_proto::ExtendedBlock {
                    id,
                    generation_stamp: *gs,
                    length: 0,
                },
            );
        }
    }

    /// Moves safe mode on; logs when it ends.
    pub(crate) fn update_safemode(&mut self, now: Instant) -> bool {
        let (safe, total) = self.blocks.safe_counts();
        let left = self.safemode.update(safe, total, now);
        if left {
            tracing::info!(
                "leaving safe mode: {safe} of {total} complete blocks have a reported replica; \
                 namespace changes are accepted"
            );
            self.after_safemode(now);
        }
        left
    }

    /// What follows the end of safe mode: every block is checked for
    /// replication, after giving the datanodes that have not reported yet
    /// a moment.
    pub(crate) fn after_safemode(&mut self, now: Instant) {
        let all: Vec<u64> = self.blocks.iter().map(|(id, _)| id).collect();
        self.repl.check_all(all);
        self.replication_ready_at = now + startup_delay(&self.cfg);
    }
}
