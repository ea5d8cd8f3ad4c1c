//! The datanode manager: registrations, heartbeats, liveness states,
//! storage figures and each node's queue of pending commands.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use dfs_proto::{
    datanode_command, DatanodeCommand, DatanodeInfo, DeleteBlocks, ExtendedBlock, NodeState,
    StorageReport,
};

use crate::placement::{Candidate, Skip};
use crate::topology::{host_of, Topology};

/// Index of a datanode in the manager; stable for the life of the process.
pub type NodeIdx = u32;

/// Administrative state of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminState {
    /// In service.
    Normal,
    /// Draining: readable, takes no new blocks, its replicas do not count.
    Decommissioning,
    /// Drained: stopping it loses nothing.
    Decommissioned,
}

/// How often the scheduled-block counts roll (HDFS: 10 minutes).
const SCHEDULED_ROLL: std::time::Duration = std::time::Duration::from_secs(600);

/// What the namenode knows of one datanode.
#[derive(Debug, Clone)]
pub struct Datanode {
    /// Index in the manager.
    pub idx: NodeIdx,
    /// Stable node id (UUID).
    pub id: String,
    /// host:port of its DataTransfer service.
    pub address: String,
    /// Host part of the address.
    pub host: String,
    /// Effective rack.
    pub rack: String,
    /// The rack the node named itself.
    pub own_rack: String,
    /// Storage capacity in bytes.
    pub capacity: u64,
    /// Bytes used by blocks.
    pub used: u64,
    /// Bytes free for blocks.
    pub remaining: u64,
    /// The node refuses new blocks.
    pub full: bool,
    /// Storage failure reported by the node (empty when healthy).
    pub failure: String,
    /// Transfers the node reports in progress.
    pub active_transfers: u32,
    /// Block transfer connections open at the last heartbeat.
    pub xceivers: u32,
    /// The node's limit of them (0: unknown).
    pub max_xceivers: u32,
    /// Last heartbeat or registration.
    pub last_heartbeat: Instant,
    /// Declared dead; must register again.
    pub dead: bool,
    /// Administrative state.
    pub admin: AdminState,
    /// Blocks allocated to the node whose replica it has not reported yet,
    /// in two rolling periods (HDFS's blocksScheduled): placement counts a
    /// block's worth of space for each, so a node with room for one block
    /// is not given several at once. A count whose write failed is
    /// forgotten after two periods.
    scheduled: [u32; 2],
    /// When `scheduled` last rolled.
    scheduled_rolled: Instant,
    /// A full block report was processed since the node last registered:
    /// until then the namenode does not know all the replicas it holds.
    pub reported: bool,
    /// Blocks to delete, sent in the next heartbeat replies once the edit
    /// that made each one unneeded is durable.
    deletes: VecDeque<QueuedDelete>,
    /// The queued deletes by block id, with their generation stamps (a
    /// node holds one replica of a block at most).
    delete_ids: HashMap<u64, u64>,
    /// Transfer and recovery commands for the next heartbeat reply.
    commands: VecDeque<DatanodeCommand>,
}

impl Datanode {
    /// Starts a new period of scheduled blocks every ten minutes, dropping
    /// the oldest (counts of writes that failed).
    fn roll_scheduled(&mut self, now: Instant) {
        if now.saturating_duration_since(self.scheduled_rolled) >= SCHEDULED_ROLL {
            self.scheduled = [self.scheduled[1], 0];
            self.scheduled_rolled = now;
        }
    }

    /// Blocks allocated to the node and not reported yet.
    pub fn scheduled_blocks(&self) -> u64 {
        u64::from(self.scheduled[0]) + u64::from(self.scheduled[1])
    }

    /// The wire form of the node.
    pub fn info(&self) -> DatanodeInfo {
        DatanodeInfo {
            id: self.id.clone(),
            address: self.address.clone(),
            rack: self.rack.clone(),
        }
    }

    /// Whether it is out of service or draining.
    pub fn decommissioning(&self) -> bool {
        self.admin != AdminState::Normal
    }

    /// Seconds since the last heartbeat.
    pub fn silence(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.last_heartbeat)
    }

    /// Pending delete commands.
    pub fn pending_deletes(&self) -> usize {
        self.deletes.len()
    }
}

/// The load a heartbeat reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeLoad {
    /// Replica copies in progress.
    pub transfers: u32,
    /// Block transfer connections open.
    pub xceivers: u32,
    /// The node's limit of them (0: not reported).
    pub max_xceivers: u32,
}

/// Outcome of a registration.
#[derive(Debug, Clone, Default)]
pub struct Registered {
    /// The node's index.
    pub idx: NodeIdx,
    /// First registration of this id since the namenode started.
    pub new: bool,
    /// The node had been declared dead.
    pub revived: bool,
    /// Other node ids that used the same address; they are declared dead.
    pub displaced: Vec<NodeIdx>,
}

/// All datanodes.
#[derive(Debug)]
pub struct DatanodeManager {
    nodes: Vec<Datanode>,
    by_id: HashMap<String, NodeIdx>,
    topology: Topology,
    stale_after: Duration,
    dead_after: Duration,
    /// The edit log sequence number every delete queued from now on waits
    /// for (see [`DatanodeManager::set_delete_barrier`]).
    barrier: u64,
}

/// A replica to delete, and the edit that must be durable first.
#[derive(Debug, Clone, Copy)]
struct QueuedDelete {
    block: ExtendedBlock,
    /// The edit log sequence number of the last edit applied when the
    /// delete was queued.
    after: u64,
}

impl DatanodeManager {
    /// An empty manager.
    pub fn new(topology: Topology, stale_after: Duration, dead_after: Duration) -> DatanodeManager {
        DatanodeManager {
            nodes: Vec::new(),
            by_id: HashMap::new(),
            topology,
            stale_after,
            dead_after,
            barrier: 0,
        }
    }

    /// Deletes queued from now on are sent only once the edit with
    /// sequence number `seq` is durable. The namespace applies an edit in
    /// memory (and forgets a deleted file's blocks) before the edit
    /// reaches the disk; a replica deleted in that window would be lost
    /// for good if the edit never did (the namenode killed, its disk
    /// full), and the file would come back without its data. HDFS removes
    /// a deleted file's blocks only after its `logSync` for the same
    /// reason.
    pub fn set_delete_barrier(&mut self, seq: u64) {
        self.barrier = self.barrier.max(seq);
    }

    /// Registers (or re-registers) a node. Its address and rack may change.
    pub fn register(
        &mut self,
        info: &DatanodeInfo,
        storage: &StorageReport,
        now: Instant,
    ) -> Registered {
        let rack = self.topology.resolve(&info.address, &info.rack);
        let displaced: Vec<NodeIdx> = self
            .nodes
            .iter()
            .filter(|n| n.address == info.address && n.id != info.id && !n.dead)
            .map(|n| n.idx)
            .collect();
        for d in &displaced {
            self.nodes[*d as usize].dead = true;
        }
        let (idx, new, revived) = match self.by_id.get(&info.id) {
            Some(&idx) => {
                let n = &mut self.nodes[idx as usize];
                let revived = n.dead;
                n.dead = false;
                (idx, false, revived)
            }
            None => {
                let idx = self.nodes.len() as NodeIdx;
                self.nodes.push(Datanode {
                    idx,
                    id: info.id.clone(),
                    address: String::new(),
                    host: String::new(),
                    rack: String::new(),
                    own_rack: String::new(),
                    capacity: 0,
                    used: 0,
                    remaining: 0,
                    full: false,
                    failure: String::new(),
                    active_transfers: 0,
                    xceivers: 0,
                    max_xceivers: 0,
                    last_heartbeat: now,
                    dead: false,
                    admin: AdminState::Normal,
                    reported: false,
                    scheduled: [0; 2],
                    scheduled_rolled: now,
                    deletes: VecDeque::new(),
                    delete_ids: HashMap::new(),
                    commands: VecDeque::new(),
                });
                self.by_id.insert(info.id.clone(), idx);
                (idx, true, false)
            }
        };
        let n = &mut self.nodes[idx as usize];
        n.reported = false;
        n.address = info.address.clone();
        n.host = host_of(&info.address).to_string();
        n.own_rack = info.rack.clone();
        n.rack = rack;
        n.last_heartbeat = now;
        apply_storage(n, storage);
        // A new incarnation serves nothing yet; its heartbeats say more.
        n.active_transfers = 0;
        n.xceivers = 0;
        // Commands queued for a previous incarnation are void.
        n.commands.clear();
        Registered {
            idx,
            new,
            revived,
            displaced,
        }
    }

    /// Records a heartbeat. `None` when the node must register again
    /// (unknown to this namenode, or declared dead).
    pub fn heartbeat(
        &mut self,
        id: &str,
        address: &str,
        storage: &StorageReport,
        load: NodeLoad,
        now: Instant,
    ) -> Option<NodeIdx> {
        let idx = *self.by_id.get(id)?;
        let n = &mut self.nodes[idx as usize];
        if n.dead {
            return None;
        }
        if !address.is_empty() && address != n.address {
            tracing::warn!(node = %id, from = %address, registered = %n.address,
                "heartbeat from another address than the node registered with (two datanodes with one node id: a copied data directory?); asking it to register");
            return None;
        }
        n.last_heartbeat = now;
        n.active_transfers = load.transfers;
        n.xceivers = load.xceivers;
        n.max_xceivers = load.max_xceivers;
        apply_storage(n, storage);
        Some(idx)
    }

    /// The address of the live node registered as `id`, if it is not
    /// `address`: another node holds that id now (heard from within the
    /// stale limit).
    pub fn id_held_elsewhere(&self, id: &str, address: &str, now: Instant) -> Option<&str> {
        let n = &self.nodes[*self.by_id.get(id)? as usize];
        (!n.dead && n.address != address && n.silence(now) <= self.stale_after)
            .then_some(n.address.as_str())
    }

    /// A registered, not-dead node by id.
    pub fn lookup(&self, id: &str) -> Option<NodeIdx> {
        self.by_id
            .get(id)
            .copied()
            .filter(|i| !self.nodes[*i as usize].dead)
    }

    /// A node by id or address, dead or alive.
    pub fn find(&self, id_or_address: &str) -> Option<NodeIdx> {
        self.by_id.get(id_or_address).copied().or_else(|| {
            self.nodes
                .iter()
                .rev()
                .find(|n| n.address == id_or_address)
                .map(|n| n.idx)
        })
    }

    /// A node.
    pub fn get(&self, idx: NodeIdx) -> &Datanode {
        &self.nodes[idx as usize]
    }

    /// Counts a block allocated to node `idx` (a pipeline target) until
    /// the node reports its replica.
    pub fn schedule(&mut self, idx: NodeIdx, now: Instant) {
        let n = &mut self.nodes[idx as usize];
        n.roll_scheduled(now);
        n.scheduled[1] = n.scheduled[1].saturating_add(1);
    }

    /// Node `idx` reported a new replica: one scheduled block arrived.
    pub fn unschedule(&mut self, idx: NodeIdx) {
        let n = &mut self.nodes[idx as usize];
        if n.scheduled[1] > 0 {
            n.scheduled[1] -= 1;
        } else {
            n.scheduled[0] = n.scheduled[0].saturating_sub(1);
        }
    }

    /// A node, mutably.
    pub fn get_mut(&mut self, idx: NodeIdx) -> &mut Datanode {
        &mut self.nodes[idx as usize]
    }

    /// Every node ever registered.
    pub fn all(&self) -> &[Datanode] {
        &self.nodes
    }

    /// Whether the node has missed heartbeats for the stale interval.
    pub fn is_stale(&self, idx: NodeIdx, now: Instant) -> bool {
        let n = &self.nodes[idx as usize];
        !n.dead && n.silence(now) > self.stale_after
    }

    /// Whether a node can serve reads and hold counted replicas.
    pub fn is_alive(&self, idx: NodeIdx) -> bool {
        !self.nodes[idx as usize].dead
    }

    /// The state shown in reports.
    pub fn state(&self, idx: NodeIdx, now: Instant) -> NodeState {
        let n = &self.nodes[idx as usize];
        if n.dead {
            NodeState::Dead
        } else if n.admin == AdminState::Decommissioned {
            NodeState::Decommissioned
        } else if n.admin == AdminState::Decommissioning {
            NodeState::Decommissioning
        } else if n.silence(now) > self.stale_after {
            NodeState::Stale
        } else {
            NodeState::Live
        }
    }

    /// Declares dead every node silent for the dead interval; returns them.
    pub fn check_liveness(&mut self, now: Instant) -> Vec<NodeIdx> {
        let mut out = Vec::new();
        for n in &mut self.nodes {
            if !n.dead && n.silence(now) > self.dead_after {
                n.dead = true;
                n.commands.clear();
                out.push(n.idx);
            }
        }
        out
    }

    /// Number of nodes not dead.
    pub fn alive_count(&self) -> usize {
        self.nodes.iter().filter(|n| !n.dead).count()
    }

    /// Number of in-service, live, not-stale nodes.
    pub fn in_service_count(&self, now: Instant) -> usize {
        self.nodes
            .iter()
            .filter(|n| {
                !n.dead && n.admin == AdminState::Normal && n.silence(now) <= self.stale_after
            })
            .count()
    }

    /// Distinct racks of nodes not dead.
    pub fn rack_count(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| !n.dead)
            .map(|n| n.rack.as_str())
            .collect::<HashSet<_>>()
            .len()
    }

    /// Queues the deletion of a replica on a node.
    pub fn queue_delete(&mut self, idx: NodeIdx, block: ExtendedBlock) {
        let n = &mut self.nodes[idx as usize];
        if n.dead {
            return;
        }
        let queued = QueuedDelete {
            block,
            after: self.barrier,
        };
        match n.delete_ids.get(&block.id) {
            Some(&gs) if gs == block.generation_stamp => {}
            Some(_) => {
                // A delete of another stamp of the same replica is queued:
                // the newer order replaces it.
                n.deletes.retain(|d| d.block.id != block.id);
                n.delete_ids.insert(block.id, block.generation_stamp);
                n.deletes.push_back(queued);
            }
            None => {
                n.delete_ids.insert(block.id, block.generation_stamp);
                n.deletes.push_back(queued);
            }
        }
    }

    /// The nodes that still have a delete of block `block_id` queued: not
    /// a place for a new copy of it, which the delete would remove.
    pub fn deleting(&self, block_id: u64) -> impl Iterator<Item = NodeIdx> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter(move |(_, n)| n.delete_ids.contains_key(&block_id))
            .map(|(i, _)| i as NodeIdx)
    }

    /// The generation stamp of the delete of `block_id` queued for `idx`,
    /// if one is.
    pub fn queued_delete(&self, idx: NodeIdx, block_id: u64) -> Option<u64> {
        self.nodes[idx as usize].delete_ids.get(&block_id).copied()
    }

    /// Queues a transfer or recovery command.
    pub fn queue_command(&mut self, idx: NodeIdx, cmd: DatanodeCommand) {
        self.nodes[idx as usize].commands.push_back(cmd);
    }

    /// Drops a queued delete of `block` (it was found to be needed).
    pub fn cancel_delete(&mut self, idx: NodeIdx, block_id: u64, gs: u64) {
        let n = &mut self.nodes[idx as usize];
        if n.delete_ids.get(&block_id) == Some(&gs) {
            n.delete_ids.remove(&block_id);
            n.deletes
                .retain(|d| !(d.block.id == block_id && d.block.generation_stamp == gs));
        }
    }

    /// Takes the commands for a heartbeat reply: queued transfers and
    /// recoveries, and at most `max_deletes` deletions among those whose
    /// edit is durable (sequence number up to `durable`).
    pub fn take_commands(
        &mut self,
        idx: NodeIdx,
        max_deletes: usize,
        durable: u64,
    ) -> Vec<DatanodeCommand> {
        let n = &mut self.nodes[idx as usize];
        let mut out: Vec<DatanodeCommand> = n.commands.drain(..).collect();
        let mut blocks = Vec::new();
        // In the order of their edits (the barrier only grows and every
        // delete is queued at the back), so the durable ones come first.
        while blocks.len() < max_deletes && n.deletes.front().is_some_and(|d| d.after <= durable) {
            if let Some(d) = n.deletes.pop_front() {
                n.delete_ids.remove(&d.block.id);
                blocks.push(d.block);
            }
        }
        if !blocks.is_empty() {
            out.push(DatanodeCommand {
                command: Some(datanode_command::Command::Delete(DeleteBlocks { blocks })),
            });
        }
        out
    }

    /// The placement view of every node for a block of `block_size` bytes.
    pub fn candidates(&self, now: Instant, block_size: u64) -> Vec<Candidate<'_>> {
        self.nodes
            .iter()
            .map(|n| {
                let skip = if n.dead {
                    Some(Skip::Dead)
                } else if !n.failure.is_empty() {
                    Some(Skip::Failed)
                } else if n.admin == AdminState::Decommissioned {
                    Some(Skip::Decommissioned)
                } else if n.admin == AdminState::Decommissioning {
                    Some(Skip::Decommissioning)
                } else if n.silence(now) > self.stale_after {
                    Some(Skip::Stale)
                } else if n.full {
                    Some(Skip::Full)
                } else if n.capacity > 0
                    && n.remaining
                        .saturating_sub(n.scheduled_blocks().saturating_mul(block_size))
                        < block_size
                {
                    Some(Skip::NoSpace)
                } else {
                    None
                };
                Candidate {
                    idx: n.idx,
                    host: &n.host,
                    rack: &n.rack,
                    skip,
                    load: n.active_transfers.saturating_add(n.xceivers),
                    saturated: n.max_xceivers > 0 && n.xceivers >= n.max_xceivers,
                    remaining: n.remaining,
                }
            })
            .collect()
    }
}

fn apply_storage(n: &mut Datanode, s: &StorageReport) {
    n.capacity = s.capacity;
    n.used = s.used;
    n.remaining = s.remaining;
    n.full = s.full;
    if n.failure != s.failure {
        if s.failure.is_empty() {
            tracing::info!(node = %n.id, address = %n.address, "datanode reports its storage healthy again");
        } else {
            tracing::warn!(node = %n.id, address = %n.address, failure = %s.failure,
                "datanode reports failed storage; no new blocks go to it");
        }
    }
    n.failure = s.failure.clone();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str, addr: &str) -> DatanodeInfo {
        DatanodeInfo {
            id: id.into(),
            address: addr.into(),
            rack: String::new(),
        }
    }

    /// A manager with no topology, stale after 3 s, dead after 10 s.
    fn manager() -> DatanodeManager {
        DatanodeManager::new(
            Topology::default(),
            Duration::from_secs(3),
            Duration::from_secs(10),
        )
    }

    #[test]
    fn lifecycle() {
        let t0 = Instant::now();
        let mut m = manager();
        let r = m.register(&info("a", "127.0.0.1:1"), &StorageReport::default(), t0);
        assert!(r.new);
        assert_eq!(m.get(r.idx).rack, crate::topology::DEFAULT_RACK);
        assert_eq!(m.state(r.idx, t0), NodeState::Live);
        assert_eq!(
            m.state(r.idx, t0 + Duration::from_secs(4)),
            NodeState::Stale
        );
        assert_eq!(m.check_liveness(t0 + Duration::from_secs(11)), vec![r.idx]);
        assert!(m
            .heartbeat("a", "", &StorageReport::default(), NodeLoad::default(), t0)
            .is_none());
        assert!(m
            .heartbeat("zz", "", &StorageReport::default(), NodeLoad::default(), t0)
            .is_none());
        let r2 = m.register(&info("a", "127.0.0.1:2"), &StorageReport::default(), t0);
        assert!(r2.revived && !r2.new);
        assert_eq!(m.get(r2.idx).address, "127.0.0.1:2");
        // A new id on the same address displaces the old one.
        let r3 = m.register(&info("b", "127.0.0.1:2"), &StorageReport::default(), t0);
        assert_eq!(r3.displaced, vec![r2.idx]);
    }

    #[test]
    fn deletes_are_batched_and_deduplicated() {
        let t0 = Instant::now();
        let mut m = manager();
        let r = m.register(&info("a", "h:1"), &StorageReport::default(), t0);
        for i in 0..5 {
            let b = ExtendedBlock {
                id: i,
                generation_stamp: 1,
                length: 0,
            };
            m.queue_delete(r.idx, b);
            m.queue_delete(r.idx, b);
        }
        let cmds = m.take_commands(r.idx, 3, 0);
        assert_eq!(cmds.len(), 1);
        let Some(datanode_command::Command::Delete(d)) = &cmds[0].command else {
            panic!()
        };
        assert_eq!(d.blocks.len(), 3);
        assert_eq!(m.get(r.idx).pending_deletes(), 2);
    }

    #[test]
    fn deletes_wait_for_the_edit_that_made_them() {
        let t0 = Instant::now();
        let mut m = manager();
        let r = m.register(&info("a", "h:1"), &StorageReport::default(), t0);
        let b = |id| ExtendedBlock {
            id,
            generation_stamp: 1,
            length: 0,
        };
        m.queue_delete(r.idx, b(1));
        m.set_delete_barrier(7);
        m.queue_delete(r.idx, b(2));
        m.set_delete_barrier(5); // never goes back
        m.queue_delete(r.idx, b(3));
        let sent = |cmds: Vec<DatanodeCommand>| -> Vec<u64> {
            cmds.into_iter()
                .filter_map(|c| match c.command {
                    Some(datanode_command::Command::Delete(d)) => Some(d.blocks),
                    _ => None,
                })
                .flatten()
                .map(|b| b.id)
                .collect()
        };
        assert_eq!(sent(m.take_commands(r.idx, 10, 6)), vec![1]);
        assert_eq!(m.get(r.idx).pending_deletes(), 2);
        assert_eq!(sent(m.take_commands(r.idx, 10, 6)), Vec::<u64>::new());
        // Still refused to a new block: the delete is only waiting.
        assert_eq!(m.deleting(2).count(), 1);
        assert_eq!(sent(m.take_commands(r.idx, 10, 7)), vec![2, 3]);
        assert_eq!(m.get(r.idx).pending_deletes(), 0);
    }
}
