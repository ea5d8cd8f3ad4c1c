//! DatanodeProtocol operations: registration, heartbeats (which carry the
//! commands back), full and incremental block reports.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use dfs_proto::{
    BlockReportRequest, ExtendedBlock, HeartbeatRequest, HeartbeatResponse,
    IncrementalBlockReportRequest, RegisterRequest, RegisterResponse, ReplicaState,
};

use super::{Namesystem, State};

/// The shortest heartbeat interval asked of a datanode while copies run.
const FAST_HEARTBEAT_MIN: Duration = Duration::from_millis(200);
/// How long a registration waits to learn whether the node holding its
/// id at another address still answers there.
const HOLDER_PROBE_TIMEOUT: Duration = Duration::from_secs(1);
use crate::blocks::{BlockState, Replica, ReplicaKind};
use crate::datanodes::{AdminState, NodeIdx, NodeLoad};
use crate::error::{Error, Result};

impl Namesystem {
    /// Registers a datanode. A node id held by a live node at another
    /// address is refused (see [`Namesystem::id_holder_gone`]) unless
    /// `holder_gone` says nothing answers at that address any more.
    pub fn register_datanode(
        &self,
        req: RegisterRequest,
        holder_gone: bool,
    ) -> Result<RegisterResponse> {
        self.mutate(None, |st, store| {
            st.register(req, store.cluster_id(), Instant::now(), holder_gone)
        })
    }

    /// For a registration of a node id that a live node holds at another
    /// address: true if nothing accepts a connection at that address (the
    /// node restarted on a new address, with a port of 0 or a new IP), so
    /// the id may move at once; false if something answers there (a copy
    /// of its data directory, most likely) or no other node holds the id.
    pub async fn id_holder_gone(&self, req: &RegisterRequest) -> bool {
        let Some(node) = &req.node else {
            return false;
        };
        let holder = self.read(|st| {
            st.dns
                .id_held_elsewhere(&node.id, &node.address, Instant::now())
                .map(str::to_string)
        });
        let Some(holder) = holder else {
            return false;
        };
        let connect = tokio::net::TcpStream::connect(holder.as_str());
        let answered = matches!(
            tokio::time::timeout(HOLDER_PROBE_TIMEOUT, connect).await,
            Ok(Ok(_))
        );
        if !answered {
            tracing::info!(node = %node.id, address = %node.address, old = %holder,
                "nothing answers at the node's previous address: it moved");
        }
        !answered
    }

    /// Records a heartbeat and returns the node's pending commands.
    pub fn heartbeat(&self, req: HeartbeatRequest) -> HeartbeatResponse {
        // Read before the lock: an edit applied meanwhile is not counted
        // durable early.
        let durable = self.store.durable_seq();
        let mut st = self.state.write();
        st.heartbeat(req, Instant::now(), durable)
    }

    /// Reconciles a node's full block report.
    pub fn block_report(&self, req: BlockReportRequest) -> Result<()> {
        let left = self.mutate(None, |st, _| st.block_report(req, Instant::now()))?;
        if left {
            self.kick.notify_one();
        }
        Ok(())
    }

    /// Applies an incremental block report.
    pub fn incremental_block_report(&self, req: IncrementalBlockReportRequest) -> Result<()> {
        let (left, copied) = self.mutate(None, |st, _| {
            let copies = st.repl.pending_count();
            let left = st.incremental_block_report(req, Instant::now())?;
            Ok((left, st.repl.pending_count() < copies))
        })?;
        // A landed copy frees slots on two nodes: schedule the next copies
        // now rather than at the next tick.
        if left || copied {
            self.kick.notify_one();
        }
        Ok(())
    }
}

/// A full block report whose later parts are still to come.
#[derive(Debug)]
pub(crate) struct PartialReport {
    id: u64,
    /// The part expected next.
    next: u32,
    /// Block ids reported so far.
    seen: HashSet<u64>,
    counts: Counts,
}

/// What became of the replicas of a report so far.
#[derive(Debug, Default)]
struct Counts {
    stored: usize,
    orphans: usize,
    stale: usize,
    corrupt: usize,
}

/// What became of one reported replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reported {
    /// Recorded.
    Stored,
    /// Its block is not in the namespace: deletion queued.
    Orphan,
    /// Older generation stamp than the block's.
    Stale,
    /// Corrupt (reported so, wrong length, or unknown newer generation stamp).
    Corrupt,
    /// Its deletion is queued for the node (an excess, moved or corrupt
    /// replica not deleted yet): not counted, so that no other replica is
    /// trimmed in its place.
    Deleting,
}

impl State {
    pub(crate) fn register(
        &mut self,
        req: RegisterRequest,
        cluster_id: &str,
        now: Instant,
        holder_gone: bool,
    ) -> Result<RegisterResponse> {
        let node = req
            .node
            .ok_or_else(|| Error::invalid("register: the node is missing"))?;
        if !req.cluster_id.is_empty() && req.cluster_id != cluster_id {
            tracing::error!(node = %node.id, address = %node.address, theirs = %req.cluster_id,
                ours = %cluster_id, "datanode refused: its replicas belong to another cluster (is this namenode's --data the right directory?)");
            return Err(Error::invalid(format!(
                "datanode {} at {}: its replicas belong to cluster {}, this namenode is cluster {} \
                 (a namenode started on another or an empty --data directory?); not joining, \
                 so that none of them is taken for an orphan and deleted (if this namespace is \
                 theirs, its DATA/cluster_id must hold their id)",
                node.id, node.address, req.cluster_id, cluster_id
            )));
        }
        if node.id.is_empty() || node.id.len() > 256 {
            return Err(Error::invalid(
                "register: the node id must be 1 to 256 bytes",
            ));
        }
        if node.address.parse::<std::net::SocketAddr>().is_err() && !node.address.contains(':') {
            return Err(Error::invalid(format!(
                "register {}: address '{}' is not host:port",
                node.id, node.address
            )));
        }
        let held = self.dns.id_held_elsewhere(&node.id, &node.address, now);
        if let Some(holder) = held.filter(|_| !holder_gone) {
            tracing::warn!(node = %node.id, address = %node.address, registered = %holder,
                "datanode refused: its node id is held by a live datanode still answering at another address (a copied data directory?)");
            return Err(Error::invalid(format!(
                "datanode {} at {}: the datanode at {holder}, live and answering there, has this \
                 node id (is this node's data directory a copy of its?); not joining while it is, \
                 so that neither node's replicas are counted on the other (give each node its own \
                 data directory)",
                node.id, node.address
            )));
        }
        let storage = req.storage.unwrap_or_default();
        let r = self.dns.register(&node, &storage, now);
        for d in r.displaced.clone() {
            let why = format!("node {} registered with the same address", node.id);
            self.node_lost(d, &why);
        }
        if self.decommissions.contains(&node.id) {
            let n = self.dns.get_mut(r.idx);
            if n.admin == AdminState::Normal {
                // Taken out of service before a restart: it drains again
                // (or is found drained at once) and takes no new block.
                n.admin = AdminState::Decommissioning;
            }
        }
        let n = self.dns.get(r.idx);
        tracing::info!(
            node = %n.id,
            address = %n.address,
            rack = %n.rack,
            capacity = n.capacity,
            remaining = n.remaining,
            new = r.new,
            revived = r.revived,
            "datanode registered"
        );
        Ok(RegisterResponse {
            default_block_size: self.cfg.block_size,
            cluster_id: cluster_id.to_string(),
        })
    }

    /// Records a heartbeat; the reply carries the node's queued commands,
    /// with the deletes whose edit is durable (up to sequence `durable`).
    pub(crate) fn heartbeat(
        &mut self,
        req: HeartbeatRequest,
        now: Instant,
        durable: u64,
    ) -> HeartbeatResponse {
        let storage = req.storage.unwrap_or_default();
        match self.dns.heartbeat(
            &req.node_id,
            &req.address,
            &storage,
            NodeLoad {
                transfers: req.active_transfers,
                xceivers: req.xceivers,
                max_xceivers: req.max_xceivers,
            },
            now,
        ) {
            None => {
                tracing::info!(node = %req.node_id, "heartbeat from an unregistered or dead datanode; asking it to register");
                HeartbeatResponse {
                    commands: vec![],
                    reregister: true,
                    next_heartbeat_ms: 0,
                }
            }
            Some(idx) => HeartbeatResponse {
                // As HDFS, no replica is deleted in safe mode: a namenode
                // started on an old or wrong namespace, or an administrator's
                // maintenance, must not cost replicas. They wait in the queue.
                commands: self.dns.take_commands(
                    idx,
                    if self.safemode.is_on() {
                        0
                    } else {
                        self.cfg.deletes_per_heartbeat
                    },
                    durable,
                ),
                reregister: false,
                next_heartbeat_ms: self.fast_heartbeat_ms(),
            },
        }
    }

    fn reporting_node(&self, id: &str) -> Result<NodeIdx> {
        self.dns.lookup(id).ok_or_else(|| Error::UnknownDatanode {
            node: id.to_string(),
        })
    }

    /// Full report: the node holds exactly these replicas (or, for a
    /// report in parts, these and those of the other parts).
    pub(crate) fn block_report(&mut self, req: BlockReportRequest, now: Instant) -> Result<bool> {
        let node = self.reporting_node(&req.node_id)?;
        let parts = req.parts.max(1);
        if req.part >= parts {
            return Err(Error::invalid(format!(
                "block report part {} of {parts} from {}",
                req.part, req.node_id
            )));
        }
        let mut report = if req.part == 0 {
            self.partial_reports.remove(&node);
            PartialReport {
                id: req.report_id,
                next: 0,
                seen: HashSet::with_capacity(req.replicas.len()),
                counts: Counts::default(),
            }
        } else {
            match self.partial_reports.remove(&node) {
                Some(p) if p.id == req.report_id && p.next == req.part => p,
                _ => {
                    return Err(Error::invalid(format!(
                        "block report part {} of {parts} from {} does not follow an earlier part; send the report again",
                        req.part, req.node_id
                    )))
                }
            }
        };
        for r in &req.replicas {
            let Some(b) = &r.block else { continue };
            report.seen.insert(b.id);
            match self.process_replica(node, b, r.state(), now) {
                Reported::Stored => report.counts.stored += 1,
                Reported::Orphan => report.counts.orphans += 1,
                Reported::Stale => report.counts.stale += 1,
                Reported::Corrupt => report.counts.corrupt += 1,
                Reported::Deleting => report.counts.stale += 1,
            }
        }
        report.next = req.part + 1;
        if report.next < parts {
            self.partial_reports.insert(node, report);
            return Ok(self.update_safemode(now));
        }
        let PartialReport { seen, counts, .. } = report;
        let Counts {
            stored,
            orphans,
            stale,
            corrupt,
        } = counts;
        let gone: Vec<u64> = self
            .blocks
            .blocks_of(node)
            .filter(|id| !seen.contains(id))
            .collect();
        for id in &gone {
            self.blocks.modify(*id, |b| b.remove_replica(node));
        }
        self.repl.check_all(gone.iter().copied());
        self.dns.get_mut(node).reported = true;
        let n = self.dns.get(node);
        tracing::info!(
            node = %n.id,
            address = %n.address,
            replicas = seen.len(),
            parts,
            stored,
            orphans,
            stale,
            corrupt,
            missing = gone.len(),
            "full block report processed (orphan and stale replicas are queued for deletion)"
        );
        Ok(self.update_safemode(now))
    }

    pub(crate) fn incremental_block_report(
        &mut self,
        req: IncrementalBlockReportRequest,
        now: Instant,
    ) -> Result<bool> {
        let node = self.reporting_node(&req.node_id)?;
        for r in &req.received {
            let Some(b) = &r.block else { continue };
            let was_scheduled = r.state() == ReplicaState::Finalized
                && self
                    .blocks
                    .modify(b.id, |info| {
                        let before = info.scheduled.len();
                        info.scheduled.retain(|n| *n != node);
                        info.scheduled.len() < before
                    })
                    .unwrap_or(false);
            if was_scheduled {
                self.dns.unschedule(node);
            }
            let outcome = self.process_replica(node, b, r.state(), now);
            tracing::debug!(node = %req.node_id, block = %b, state = ?r.state(), ?outcome, "replica received");
        }
        for b in &req.deleted {
            let removed = self
                .blocks
                .modify(b.id, |info| {
                    let ours = info
                        .replica(node)
                        .is_some_and(|r| r.gs <= b.generation_stamp);
                    ours && info.remove_replica(node)
                })
                .unwrap_or(false);
            if removed {
                self.repl.check(b.id);
            }
        }
        Ok(self.update_safemode(now))
    }

    /// While copies are in flight, datanodes come back sooner than their
    /// interval, so a freed copy slot is refilled at once rather than up to
    /// a heartbeat later; otherwise 0 (the node's own interval).
    fn fast_heartbeat_ms(&self) -> u32 {
        if self.repl.pending_count() == 0 {
            return 0;
        }
        let fast = (self.cfg.heartbeat_interval / 10).max(FAST_HEARTBEAT_MIN);
        fast.as_millis().try_into().unwrap_or(u32::MAX)
    }

    /// Applies one reported replica of `node`.
    pub(crate) fn process_replica(
        &mut self,
        node: NodeIdx,
        blk: &ExtendedBlock,
        state: ReplicaState,
        now: Instant,
    ) -> Reported {
        let Some(info) = self.blocks.get(blk.id) else {
            // Deleted, abandoned or never allocated: nothing references it.
            self.dns.queue_delete(node, *blk);
            return Reported::Orphan;
        };
        // A replica whose deletion is queued (held in safe mode, say) and
        // reported again, by a restarted node's full report: counting it
        // would let another replica be trimmed in its place, and then both
        // go. It is counted only if the block needs it after all, and then
        // its deletion is cancelled.
        if let Some(queued) = self.dns.queued_delete(node, blk.id) {
            if queued >= blk.generation_stamp {
                let h = self.health(blk.id, info, now);
                if h.live >= h.expected {
                    return Reported::Deleting;
                }
                self.dns.cancel_delete(node, blk.id, queued);
                tracing::info!(block = %blk, node = %self.dns.get(node).address,
                    "a replica queued for deletion is needed again: its deletion is cancelled");
            }
        }
        let Some(info) = self.blocks.get(blk.id) else {
            return Reported::Orphan;
        };
        let recovering = info.state == BlockState::UnderConstruction || info.recovery.is_some();
        let (gs, len, bstate) = (info.gs, info.len, info.state);
        let was_corrupt = info
            .replica(node)
            .is_some_and(|r| r.corrupt && r.gs == blk.generation_stamp);
        if blk.generation_stamp < gs {
            self.blocks.modify(blk.id, |b| {
                b.remove_replica(node);
                if recovering && !b.stale_holders.contains(&(node, blk.generation_stamp)) {
                    b.stale_holders.push((node, blk.generation_stamp));
                }
            });
            if !recovering {
                self.dns.queue_delete(node, *blk);
            }
            return Reported::Stale;
        }
        let kind = match state {
            ReplicaState::Finalized => ReplicaKind::Finalized,
            _ => ReplicaKind::Rbw,
        };
        let corrupt = state == ReplicaState::Corrupt
            || was_corrupt
            || (!recovering && blk.generation_stamp > gs)
            || (!recovering
                && kind == ReplicaKind::Finalized
                && blk.length != len
                && bstate != BlockState::UnderConstruction);
        self.blocks.modify(blk.id, |b| {
            b.put_replica(Replica {
                node,
                gs: blk.generation_stamp,
                len: blk.length,
                kind,
                corrupt,
            });
            if b.state == BlockState::Committed && b.is_safe() {
                b.state = BlockState::Complete;
            }
        });
        if corrupt && !was_corrupt {
            let n = self.dns.get(node);
            tracing::warn!(block = %blk, node = %n.id, address = %n.address, expected_gs = gs, expected_length = len,
                "replica is corrupt (reported so, or its length or generation stamp does not match); it will be replaced");
        }
        if !corrupt && kind == ReplicaKind::Finalized && blk.generation_stamp == gs {
            self.repl.replica_arrived(blk.id, node);
        }
        self.repl.check(blk.id);
        if corrupt {
            Reported::Corrupt
        } else {
            Reported::Stored
        }
    }

    /// A node is gone (dead or displaced): its replicas leave the block map
    /// and its blocks are re-evaluated at once.
    pub(crate) fn node_lost(&mut self, node: NodeIdx, why: &str) {
        self.dns.get_mut(node).dead = true;
        let ids = self.blocks.remove_node(node);
        let copies = self.repl.drop_node(node);
        let n = self.dns.get(node);
        tracing::warn!(
            node = %n.id,
            address = %n.address,
            rack = %n.rack,
            replicas = ids.len(),
            "datanode declared dead ({why}); its replicas no longer count and their blocks are queued for re-replication"
        );
        self.repl.check_all(ids);
        self.repl.check_all(copies);
    }
}
