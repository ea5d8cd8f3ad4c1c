//! The background monitor: liveness (stale, dead), safe-mode extension,
//! lease hard limits and stuck recoveries, block health checks
//! (over-replication trimming, corrupt and stale replica deletion), copy
//! scheduling with per-node throttling, and decommissioning progress.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dfs_proto::{datanode_command, DatanodeCommand, ExtendedBlock, TransferBlock};
use rand::Rng;

use super::{Namesystem, State};
use crate::blocks::{BlockInfo, BlockState};
use crate::datanodes::{AdminState, NodeIdx};
use crate::placement::{choose_targets, Request};
use crate::replication::{
    choose_excess_preferring, priority, ExcessCandidate, Health, PendingCopy, Priority,
};
use crate::store::Store;

/// Most block checks done per tick (the rest wait for the next tick).
const CHECKS_PER_TICK: usize = 50_000;
/// Shortest pause between two ticks, even when kicked often.
const MIN_PAUSE: Duration = Duration::from_millis(50);

impl Namesystem {
    /// Runs the monitor until `shutdown` completes.
    pub async fn run_monitor(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        let period = (self.cfg.heartbeat_interval / 3)
            .clamp(Duration::from_millis(100), Duration::from_secs(1));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(period) => {}
                _ = self.kick.notified() => {}
            }
            self.tick(Instant::now());
            tokio::time::sleep(MIN_PAUSE).await;
        }
    }

    /// One monitor round.
    pub fn tick(&self, now: Instant) {
        let mut st = self.state.write();
        st.monitor_tick(&self.store, now);
    }
}

impl State {
    pub(crate) fn monitor_tick(&mut self, store: &Store, now: Instant) {
        for d in self.dns.check_liveness(now) {
            let silence = self.dns.get(d).silence(now);
            self.node_lost(d, &format!("no heartbeat for {}s", silence.as_secs()));
        }
        self.update_safemode(now);
        if self.safemode.is_on() {
            return;
        }
        let expired = self.repl.expire(now, self.cfg.replication_timeout);
        if !expired.is_empty() {
            tracing::info!(
                blocks = expired.len(),
                "copies not confirmed in time; scheduling them again"
            );
            self.repl.check_all(expired);
        }
        self.lease_tick(store, now);
        self.process_checks(now);
        self.schedule_copies(now);
        self.balance_tick(now);
        self.decommission_progress(now);
    }

    /// How long after a commit the pipeline's missing reports are awaited.
    fn report_grace(&self) -> Duration {
        (self.cfg.heartbeat_interval * 2).max(Duration::from_secs(2))
    }

    /// Replica counts of a block.
    pub(crate) fn health(&self, id: u64, info: &BlockInfo, now: Instant) -> Health {
        let mut h = Health {
            expected: info.expected,
            pending: self.repl.pending(id).map_or(0, |p| p.targets.len() as u32),
            ..Default::default()
        };
        let mut racks = HashSet::new();
        for r in &info.replicas {
            if !self.dns.is_alive(r.node) {
                continue;
            }
            if r.corrupt {
                h.corrupt += 1;
                continue;
            }
            if !info.is_good(r) {
                continue;
            }
            let n = self.dns.get(r.node);
            if n.decommissioning() {
                h.decommissioning += 1;
            } else {
                h.live += 1;
                racks.insert(n.rack.as_str());
            }
        }
        h.racks = racks.len();
        // Right after a commit, pipeline nodes that have not reported yet
        // are about to: count them as pending rather than copying around them.
        if let Some(t) = info.committed_at {
            if now.saturating_duration_since(t) < self.report_grace() {
                let waiting = info
                    .pipeline
                    .iter()
                    .filter_map(|n| self.dns.lookup(n))
                    .filter(|n| info.replica(*n).is_none())
                    .count();
                h.pending += waiting as u32;
            }
        }
        h
    }

    fn process_checks(&mut self, now: Instant) {
        let mut ids = self.repl.take_checks(now);
        if ids.len() > CHECKS_PER_TICK {
            let rest = ids.split_off(CHECKS_PER_TICK);
            self.repl.check_all(rest);
        }
        let racks = self.cluster_racks(now);
        let grace = self.report_grace();
        let mut trimmed = 0usize;
        for id in ids {
            let Some(info) = self.blocks.get(id) else {
                self.repl.forget(id);
                continue;
            };
            if info.state == BlockState::UnderConstruction || info.recovery.is_some() {
                self.repl.set_priority(id, None);
                continue;
            }
            if let Some(t) = info.committed_at {
                if now.saturating_duration_since(t) >= grace {
                    self.blocks.modify(id, |b| {
                        b.committed_at = None;
                        b.pipeline = Vec::new();
                    });
                } else {
                    // Look again once the grace period is over (not at
                    // every round until then: at a few hundred blocks
                    // committed a second, that was thousands of checks
                    // a round, under the namespace's lock).
                    self.repl.check_at(id, t + grace);
                }
            }
            self.delete_stale_replicas(id);
            let Some(info) = self.blocks.get(id) else {
                continue;
            };
            let h = self.health(id, info, now);
            if h.corrupt > 0 && h.live > 0 {
                self.delete_corrupt_replicas(id, &h, now);
            }
            if h.over_replicated() && h.pending == 0 {
                trimmed += self.trim_excess(id, &h);
            }
            let Some(info) = self.blocks.get(id) else {
                continue;
            };
            let h = self.health(id, info, now);
            self.repl.set_priority(id, priority(&h, racks));
        }
        if trimmed > 0 {
            tracing::info!(
                replicas = trimmed,
                "over-replicated blocks: excess replicas queued for deletion"
            );
        }
    }

    /// Replicas with an older generation stamp (and nodes that left a
    /// recovered pipeline) of a block that is no longer being written.
    fn delete_stale_replicas(&mut self, id: u64) {
        let mut stale = Vec::new();
        self.blocks.modify(id, |b| {
            let gs = b.gs;
            b.replicas.retain(|r| {
                if r.gs < gs {
                    stale.push((r.node, r.gs));
                    false
                } else {
                    true
                }
            });
            stale.append(&mut b.stale_holders);
        });
        for (n, gs) in stale {
            self.dns.queue_delete(
                n,
                ExtendedBlock {
                    id,
                    generation_stamp: gs,
                    length: 0,
                },
            );
        }
    }

    /// Deletes corrupt replicas once enough good ones exist: the target is
    /// reached, or good plus corrupt exceed it, or no other node could take
    /// a new replica anyway. With no good replica, corrupt ones stay.
    fn delete_corrupt_replicas(&mut self, id: u64, h: &Health, now: Instant) {
        let Some(info) = self.blocks.get(id) else {
            return;
        };
        let holders: HashSet<NodeIdx> = info.replicas.iter().map(|r| r.node).collect();
        let no_room = || {
            self.dns
                .candidates(now, info.len)
                .iter()
                .all(|c| c.skip.is_some() || holders.contains(&c.idx))
        };
        if !(h.live >= h.expected || h.live + h.corrupt > h.expected || no_room()) {
            return;
        }
        let corrupt: Vec<(NodeIdx, u64, u64)> = info
            .replicas
            .iter()
            .filter(|r| r.corrupt)
            .map(|r| (r.node, r.gs, r.len))
            .collect();
        for (node, gs, len) in corrupt {
            self.blocks.modify(id, |b| b.remove_replica(node));
            self.dns.queue_delete(
                node,
                ExtendedBlock {
                    id,
                    generation_stamp: gs,
                    length: len,
                },
            );
            tracing::info!(block = id, node = %self.dns.get(node).address, "deleting corrupt replica");
        }
    }

    /// Deletes replicas above the target; returns how many.
    fn trim_excess(&mut self, id: u64, h: &Health) -> usize {
        let Some(info) = self.blocks.get(id) else {
            return 0;
        };
        let cands: Vec<ExcessCandidate> = info
            .good()
            .filter(|r| self.dns.is_alive(r.node) && !self.dns.get(r.node).decommissioning())
            .map(|r| {
                let n = self.dns.get(r.node);
                ExcessCandidate {
                    node: r.node,
                    rack: n.rack.clone(),
                    remaining: n.remaining,
                }
            })
            .collect();
        let excess = (h.live - h.expected) as usize;
        // A balancer move deletes its source; any further excess is chosen
        // as usual among the others.
        let moved = self
            .move_source_to_delete(id)
            .filter(|s| excess > 0 && cands.iter().any(|c| c.node == *s));
        let (victims, source_went) = choose_excess_preferring(&cands, excess, moved);
        if let (Some(_), Some(b)) = (moved, self.balancer.as_mut()) {
            if source_went {
                b.moved(id);
            } else {
                b.moves.remove(&id);
            }
        }
        let Some(info) = self.blocks.get(id) else {
            return 0;
        };
        let block = info.extended(id);
        let n = victims.len();
        for v in victims {
            self.blocks.modify(id, |b| b.remove_replica(v));
            self.dns.queue_delete(v, block);
            tracing::debug!(block = %block, node = %self.dns.get(v).address, expected = h.expected,
                "over-replicated: deleting an excess replica");
        }
        n
    }

    fn schedule_copies(&mut self, now: Instant) {
        if self.repl.needed_count() == 0 || now < self.replication_ready_at {
            return;
        }
        let limit = self.cfg.max_replication_streams;
        let live = self.dns.in_service_count(now).max(1);
        let max_work = (live * limit as usize * 2).max(8);
        let attempts = max_work * 4 + 64;
        let racks = self.cluster_racks(now);
        let mut in_flight: HashMap<NodeIdx, u32> = self.repl.in_flight();
        let mut scheduled = 0usize;
        let mut rng = rand::rng();
        for (id, _) in self.repl.schedule_order(attempts) {
            if scheduled >= max_work {
                break;
            }
            let Some(info) = self.blocks.get(id) else {
                self.repl.forget(id);
                continue;
            };
            let h = self.health(id, info, now);
            let Some(p) = priority(&h, racks) else {
                self.repl.set_priority(id, None);
                continue;
            };
            if p == Priority::AllCorrupt {
                self.repl.set_priority(id, Some(p));
                continue;
            }
            // Sources: good replicas, busy nodes skipped; the most urgent
            // blocks may use twice the streams (as HDFS's hard limit).
            let source_limit = if p == Priority::OneReplica {
                limit * 2
            } else {
                limit
            };
            let source = info
                .good()
                .map(|r| r.node)
                .filter(|n| self.dns.is_alive(*n))
                .filter(|n| in_flight.get(n).copied().unwrap_or(0) < source_limit)
                .min_by_key(|n| {
                    (
                        self.dns.is_stale(*n, now),
                        in_flight.get(n).copied().unwrap_or(0),
                        rng.random::<u32>(),
                    )
                });
            let Some(source) = source else { continue };
            let needed = if p == Priority::MisReplicated {
                1
            } else {
                h.expected.saturating_sub(h.live + h.pending).max(1) as usize
            };
            let mut existing: Vec<NodeIdx> = info
                .good()
                .map(|r| r.node)
                .filter(|n| self.dns.is_alive(*n) && !self.dns.get(*n).decommissioning())
                .collect();
            if let Some(pc) = self.repl.pending(id) {
                existing.extend(pc.targets.iter().copied());
            }
            let mut excluded: HashSet<NodeIdx> = info.replicas.iter().map(|r| r.node).collect();
            // A node still to delete an old replica of this block would
            // delete the new copy with it.
            excluded.extend(self.dns.deleting(id));
            excluded.extend(
                in_flight
                    .iter()
                    .filter(|(_, c)| **c >= limit)
                    .map(|(n, _)| *n),
            );
            let cands = self.dns.candidates(now, info.len);
            let placement = choose_targets(
                &cands,
                &Request {
                    needed,
                    existing: &existing,
                    writer_host: None,
                    excluded: &excluded,
                },
                &mut rng,
            );
            let mut targets = placement.targets;
            if p == Priority::MisReplicated {
                let crowded: HashSet<&str> = existing
                    .iter()
                    .map(|n| self.dns.get(*n).rack.as_str())
                    .collect();
                targets.retain(|t| !crowded.contains(self.dns.get(*t).rack.as_str()));
            }
            if targets.is_empty() {
                continue;
            }
            let block = info.extended(id);
            let infos = targets.iter().map(|t| self.dns.get(*t).info()).collect();
            self.dns.queue_command(
                source,
                DatanodeCommand {
                    command: Some(datanode_command::Command::Transfer(TransferBlock {
                        block: Some(block),
                        targets: infos,
                    })),
                },
            );
            *in_flight.entry(source).or_default() += 1;
            for t in &targets {
                *in_flight.entry(*t).or_default() += 1;
            }
            tracing::debug!(
                block = %block,
                priority = ?p,
                live = h.live,
                expected = h.expected,
                source = %self.dns.get(source).address,
                targets = ?targets.iter().map(|t| self.dns.get(*t).address.as_str()).collect::<Vec<_>>(),
                "replication scheduled"
            );
            let mut all_targets = self
                .repl
                .pending(id)
                .map(|pc| pc.targets.clone())
                .unwrap_or_default();
            all_targets.extend(targets);
            self.repl.add_pending(
                id,
                PendingCopy {
                    source,
                    targets: all_targets,
                    issued: now,
                },
            );
            self.repl.set_priority(id, None);
            scheduled += 1;
        }
        if scheduled > 0 {
            tracing::info!(
                scheduled,
                still_queued = self.repl.needed_count(),
                in_flight = self.repl.pending_count(),
                "re-replication: copies handed to datanodes"
            );
        }
    }

    fn decommission_progress(&mut self, now: Instant) {
        let draining: Vec<NodeIdx> = self
            .dns
            .all()
            .iter()
            // A node's replicas are known once its first full block
            // report since it registered is in (HDFS's
            // checkBlockReportReceived): before, it would look drained.
            .filter(|n| n.admin == AdminState::Decommissioning && !n.dead && n.reported)
            .map(|n| n.idx)
            .collect();
        if draining.is_empty() {
            return;
        }
        for node in draining {
            let mut waiting = 0usize;
            for id in self.blocks.blocks_of(node) {
                let Some(info) = self.blocks.get(id) else {
                    continue;
                };
                let h = self.health(id, info, now);
                // As HDFS: the file's replication, or at least the
                // cluster's default when the file asks for more; never
                // less because few nodes are in service (the node then
                // stays draining; fsck shows the blocks under-replicated).
                let target = h.expected.min(self.cfg.replication).max(1);
                if info.state == BlockState::UnderConstruction || h.live < target {
                    waiting += 1;
                }
            }
            if waiting == 0 {
                let n = self.dns.get_mut(node);
                n.admin = AdminState::Decommissioned;
                tracing::info!(node = %n.id, address = %n.address,
                    "decommission complete: every block on the node is fully replicated elsewhere; it can be stopped");
            }
        }
    }
}
