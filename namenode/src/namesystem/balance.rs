//! The balancer on the block map: choosing replicas to move, ordering
//! their copies, and deleting the source replica once the copy landed
//! (see [`crate::balancer`]).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use dfs_proto::{
    datanode_command, BalanceResponse, DatanodeCommand, NodeUtilization, TransferBlock,
};

use super::{Namesystem, State};
use crate::balancer::{plan, Balancer, Move, NodeUse, IDLE_TICKS};
use crate::blocks::BlockState;
use crate::datanodes::{AdminState, NodeIdx};
use crate::error::Result;
use crate::replication::PendingCopy;

impl Namesystem {
    /// Starts a balancing run with threshold `start` (a fraction; a run
    /// going on takes the new threshold), or stops the run (`stop`), and
    /// returns where it stands (with neither, only that).
    /// A start in safe mode is refused: no replica moves then, and the run
    /// would wait, reporting nothing, until safe mode ends.
    pub fn balance(&self, start: Option<f64>, stop: bool) -> Result<BalanceResponse> {
        let now = Instant::now();
        if start.is_none() && !stop {
            return Ok(self.read(|st| st.balance_report(now)));
        }
        let mut st = self.state.write();
        if start.is_some() {
            st.check_safemode("start the balancer")?;
        }
        if let Some(threshold) = start {
            match &mut st.balancer {
                Some(b) if b.running() => b.threshold = threshold,
                _ => st.balancer = Some(Balancer::new(threshold)),
            }
            tracing::info!(
                threshold_pct = threshold * 100.0,
                "balancer started: replicas move from nodes fuller than the average to emptier ones"
            );
        }
        if stop {
            if let Some(b) = st.balancer.as_mut().filter(|b| b.running()) {
                b.finish("stopped by an administrator".into());
                tracing::info!(
                    blocks_moved = b.blocks_moved,
                    "balancer stopped by an administrator"
                );
            }
        }
        let resp = st.balance_report(now);
        drop(st);
        self.kick.notify_one();
        Ok(resp)
    }
}

impl State {
    /// Bytes of replicas on each node by the block map (exact once
    /// reports are in; heartbeats' figures lag behind moves), in one pass.
    fn replica_bytes(&self) -> HashMap<NodeIdx, u64> {
        let mut out: HashMap<NodeIdx, u64> = HashMap::new();
        for (_, b) in self.blocks.iter() {
            for r in &b.replicas {
                *out.entry(r.node).or_default() += b.len;
            }
        }
        out
    }

    /// Bytes each node gains (positive) or loses by the moves in flight:
    /// the target until its copy lands, the source until its replica is
    /// deleted.
    fn move_adjustments(&self) -> HashMap<NodeIdx, i128> {
        let mut out: HashMap<NodeIdx, i128> = HashMap::new();
        let Some(b) = &self.balancer else {
            return out;
        };
        for (id, m) in &b.moves {
            let landed = self
                .blocks
                .get(*id)
                .is_some_and(|info| info.replica(m.target).is_some());
            if !landed {
                *out.entry(m.target).or_default() += i128::from(m.len);
            }
            *out.entry(m.source).or_default() -= i128::from(m.len);
        }
        out
    }

    /// In-service nodes that can give or take replicas, with their use
    /// counting the moves in flight as done.
    fn node_uses(&self, now: Instant) -> Vec<NodeUse> {
        let adjust = self.move_adjustments();
        let bytes = self.replica_bytes();
        self.dns
            .all()
            .iter()
            .filter(|n| {
                !n.dead
                    && n.admin == AdminState::Normal
                    && n.failure.is_empty()
                    && n.capacity > 0
                    && !self.dns.is_stale(n.idx, now)
            })
            .map(|n| {
                let used = i128::from(bytes.get(&n.idx).copied().unwrap_or(0))
                    + adjust.get(&n.idx).copied().unwrap_or(0);
                NodeUse {
                    node: n.idx,
                    used: used.clamp(0, i128::from(u64::MAX)) as u64,
                    capacity: n.capacity,
                }
            })
            .collect()
    }

    pub(crate) fn balance_report(&self, now: Instant) -> BalanceResponse {
        let Some(b) = &self.balancer else {
            return BalanceResponse::default();
        };
        BalanceResponse {
            running: b.running(),
            outcome: b.outcome.clone().unwrap_or_default(),
            threshold: b.threshold,
            blocks_moved: b.blocks_moved,
            bytes_moved: b.bytes_moved,
            moves_in_flight: b.moves.len() as u32,
            average: b.average,
            nodes: self
                .node_uses(now)
                .iter()
                .map(|u| NodeUtilization {
                    address: self.dns.get(u.node).address.clone(),
                    utilization: u.utilization(),
                })
                .collect(),
        }
    }

    /// One balancer step of the monitor: ends the run when balanced or
    /// stuck, else orders copies for the moves that fit the nodes'
    /// transfer limits.
    pub(crate) fn balance_tick(&mut self, now: Instant) {
        let Some(b) = self.balancer.as_mut().filter(|b| b.running()) else {
            return;
        };
        if b.last_step
            .is_some_and(|t| now.saturating_duration_since(t) < self.cfg.balance_every)
        {
            return;
        }
        b.last_step = Some(now);
        b.expire(now, self.cfg.replication_timeout);
        // Right after start or safe mode, reports are still coming in.
        // Repairs were scheduled before this step and hold their transfer
        // slots first.
        if now < self.replication_ready_at {
            return;
        }
        let threshold = b.threshold;
        let in_flight_moves = b.moves.len();
        let p = plan(&self.node_uses(now), threshold);
        let Some(b) = self.balancer.as_mut() else {
            return;
        };
        b.average = p.average;
        if p.balanced && in_flight_moves == 0 {
            let why = format!(
                "balanced: every node is within {:.1} points of the average use, {:.1}%",
                threshold * 100.0,
                p.average * 100.0
            );
            tracing::info!(
                blocks_moved = b.blocks_moved,
                bytes_moved = b.bytes_moved,
                "balancer done: {why}"
            );
            b.finish(why);
            return;
        }
        let (scheduled, slots_free) = self.schedule_moves(&p.sources, &p.targets, now);
        let Some(b) = self.balancer.as_mut() else {
            return;
        };
        // A step whose nodes' transfer slots were all taken (by repairs)
        // is not one where nothing could move.
        if scheduled == 0 && in_flight_moves == 0 && slots_free {
            b.idle_ticks += 1;
            if b.idle_ticks >= IDLE_TICKS {
                let why = "no replica can move: every candidate would lower a block's \
                           racks, or its block is being written or repaired, or the \
                           emptier nodes hold it already"
                    .to_string();
                tracing::warn!(blocks_moved = b.blocks_moved, "balancer stopped: {why}");
                b.finish(why);
            }
        } else {
            b.idle_ticks = 0;
        }
    }

    /// Orders copies from `sources` to `targets` within the transfer
    /// limits; returns how many, and whether some source and some target
    /// had a free transfer slot to begin with.
    fn schedule_moves(
        &mut self,
        sources: &[(NodeIdx, u64)],
        targets: &[(NodeIdx, u64)],
        now: Instant,
    ) -> (usize, bool) {
        let limit = self.cfg.max_replication_streams;
        let mut in_flight: HashMap<NodeIdx, u32> = self.repl.in_flight();
        let free = |nodes: &[(NodeIdx, u64)], in_flight: &HashMap<NodeIdx, u32>| {
            nodes
                .iter()
                .any(|(n, _)| in_flight.get(n).copied().unwrap_or(0) < limit)
        };
        let slots_free = free(sources, &in_flight) && free(targets, &in_flight);
        let mut room: HashMap<NodeIdx, i128> =
            targets.iter().map(|(n, b)| (*n, i128::from(*b))).collect();
        let mut scheduled = 0;
        for &(source, to_move) in sources {
            let mut left = i128::from(to_move);
            let ids: Vec<u64> = self.blocks.blocks_of(source).collect();
            for id in ids {
                if left <= 0 || in_flight.get(&source).copied().unwrap_or(0) >= limit {
                    break;
                }
                let Some(target) = self.move_target(id, source, targets, &room, &in_flight, now)
                else {
                    continue;
                };
                let Some(info) = self.blocks.get(id) else {
                    continue;
                };
                let block = info.extended(id);
                let len = info.len;
                self.dns.queue_command(
                    source,
                    DatanodeCommand {
                        command: Some(datanode_command::Command::Transfer(TransferBlock {
                            block: Some(block),
                            targets: vec![self.dns.get(target).info()],
                        })),
                    },
                );
                self.repl.add_pending(
                    id,
                    PendingCopy {
                        source,
                        targets: vec![target],
                        issued: now,
                    },
                );
                if let Some(b) = self.balancer.as_mut() {
                    b.moves.insert(
                        id,
                        Move {
                            source,
                            target,
                            len,
                            issued: now,
                        },
                    );
                }
                *in_flight.entry(source).or_default() += 1;
                *in_flight.entry(target).or_default() += 1;
                left -= i128::from(len);
                *room.entry(target).or_default() -= i128::from(len);
                tracing::debug!(block = %block, source = %self.dns.get(source).address,
                    target = %self.dns.get(target).address, "balancer: replica move ordered");
                scheduled += 1;
            }
        }
        if scheduled > 0 {
            tracing::info!(scheduled, "balancer: replica moves handed to datanodes");
        }
        (scheduled, slots_free)
    }

    /// The emptiest target that may take block `id` from `source`: the
    /// block is complete, fully replicated and not otherwise being copied
    /// or moved; the target has room, free transfer slots, no replica of
    /// it, and the move keeps the block on as many racks.
    fn move_target(
        &self,
        id: u64,
        source: NodeIdx,
        targets: &[(NodeIdx, u64)],
        room: &HashMap<NodeIdx, i128>,
        in_flight: &HashMap<NodeIdx, u32>,
        now: Instant,
    ) -> Option<NodeIdx> {
        let limit = self.cfg.max_replication_streams;
        let info = self.blocks.get(id)?;
        let moving = self
            .balancer
            .as_ref()
            .is_some_and(|b| b.moves.contains_key(&id));
        if moving
            || info.state != BlockState::Complete
            || info.recovery.is_some()
            || info.len == 0
            || self.repl.pending(id).is_some()
            || !info.replica(source).is_some_and(|r| info.is_good(r))
        {
            return None;
        }
        let h = self.health(id, info, now);
        if h.live != h.expected || h.corrupt > 0 || h.decommissioning > 0 || h.pending > 0 {
            return None;
        }
        let good: Vec<NodeIdx> = info
            .good()
            .map(|r| r.node)
            .filter(|n| self.dns.is_alive(*n))
            .collect();
        let racks = |nodes: &mut dyn Iterator<Item = NodeIdx>| -> usize {
            nodes
                .map(|n| self.dns.get(n).rack.as_str())
                .collect::<HashSet<_>>()
                .len()
        };
        let before = racks(&mut good.iter().copied());
        let deleting: HashSet<NodeIdx> = self.dns.deleting(id).collect();
        targets
            .iter()
            .map(|(t, _)| *t)
            .filter(|t| *t != source && info.replica(*t).is_none() && !deleting.contains(t))
            .filter(|t| in_flight.get(t).copied().unwrap_or(0) < limit)
            .filter(|t| room.get(t).copied().unwrap_or(0) > 0)
            .filter(|t| {
                let n = self.dns.get(*t);
                !n.full && n.remaining > info.len
            })
            .find(|t| {
                let mut after = good.iter().copied().filter(|n| *n != source).chain([*t]);
                racks(&mut after) >= before
            })
    }

    /// The node whose replica of `id` goes as the excess: a balancer
    /// move's source once its copy landed.
    pub(crate) fn move_source_to_delete(&self, id: u64) -> Option<NodeIdx> {
        let m = self.balancer.as_ref()?.moves.get(&id)?;
        let info = self.blocks.get(id)?;
        let landed = info.replica(m.target).is_some_and(|r| info.is_good(r));
        let still_there = info.replica(m.source).is_some_and(|r| info.is_good(r));
        (landed && still_there).then_some(m.source)
    }
}
