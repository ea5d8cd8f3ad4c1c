//! The block map, in memory only: block id → file, expected replication,
//! generation stamp, length, state and the replicas datanodes reported.
//! Rebuilt after a restart from the namespace (without locations) and the
//! datanodes' block reports.
//!
//! Every change goes through [`BlockMap::modify`], which keeps the
//! node → blocks index and the safe-mode counters in step.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use dfs_proto::ExtendedBlock;

use crate::datanodes::NodeIdx;

/// Life cycle of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockState {
    /// Being written; its length is what the pipeline acknowledged.
    UnderConstruction,
    /// The writer gave the final length; no finalized replica reported yet.
    Committed,
    /// Final length and at least one finalized replica.
    Complete,
}

/// Replica states the namenode tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaKind {
    /// Complete and immutable.
    Finalized,
    /// Being written.
    Rbw,
}

/// One reported replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    /// The node holding it.
    pub node: NodeIdx,
    /// Its generation stamp.
    pub gs: u64,
    /// Its length.
    pub len: u64,
    /// Finalized or being written.
    pub kind: ReplicaKind,
    /// Reported or found corrupt.
    pub corrupt: bool,
}

/// A lease recovery in progress for the block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The new generation stamp (recovery id).
    pub id: u64,
    /// The primary datanode.
    pub primary: NodeIdx,
    /// When the command was queued.
    pub started: Instant,
}

/// Everything known of one block.
#[derive(Debug, Clone)]
pub struct BlockInfo {
    /// The file (inode id).
    pub file: u64,
    /// Current generation stamp.
    pub gs: u64,
    /// Length: final once committed, acknowledged while under construction.
    pub len: u64,
    /// Life-cycle state.
    pub state: BlockState,
    /// The file's replication.
    pub expected: u32,
    /// Reported replicas, one per node.
    pub replicas: Vec<Replica>,
    /// Datanode ids of the write pipeline while under construction (ids, as
    /// the nodes may not have registered yet after a restart).
    pub pipeline: Vec<String>,
    /// When the writer committed the final length; until a grace period
    /// after it, pipeline nodes that have not reported yet are not
    /// re-replicated around.
    pub committed_at: Option<Instant>,
    /// Lease recovery in progress.
    pub recovery: Option<Recovery>,
    /// Nodes that may hold replicas with an older generation stamp (left a
    /// recovered pipeline); deleted once the block is complete.
    pub stale_holders: Vec<(NodeIdx, u64)>,
    /// Nodes placement counted this block against (chosen at allocation)
    /// whose finalized replica has not arrived: each is uncounted once,
    /// when it arrives or when the block is forgotten.
    pub scheduled: Vec<NodeIdx>,
}

impl BlockInfo {
    /// A block of `file` as loaded or allocated.
    pub fn new(file: u64, gs: u64, len: u64, state: BlockState, expected: u32) -> BlockInfo {
        BlockInfo {
            file,
            gs,
            len,
            state,
            expected,
            replicas: Vec::new(),
            pipeline: Vec::new(),
            committed_at: None,
            recovery: None,
            stale_holders: Vec::new(),
            scheduled: Vec::new(),
        }
    }

    /// The wire identity of the block.
    pub fn extended(&self, id: u64) -> ExtendedBlock {
        ExtendedBlock {
            id,
            generation_stamp: self.gs,
            length: self.len,
        }
    }

    /// Whether the replica matches the block: current generation stamp,
    /// finalized, not corrupt, and (once committed) the final length.
    pub fn is_good(&self, r: &Replica) -> bool {
        !r.corrupt
            && r.gs == self.gs
            && r.kind == ReplicaKind::Finalized
            && (self.state == BlockState::UnderConstruction || r.len == self.len)
    }

    /// Good replicas.
    pub fn good(&self) -> impl Iterator<Item = &Replica> {
        self.replicas.iter().filter(|r| self.is_good(r))
    }

    /// Whether the block counts towards safe mode (committed or complete).
    pub fn counted(&self) -> bool {
        self.state != BlockState::UnderConstruction
    }

    /// Whether the block is safe: counted and with a good replica.
    pub fn is_safe(&self) -> bool {
        self.counted() && self.good().next().is_some()
    }

    /// The replica on `node`.
    pub fn replica(&self, node: NodeIdx) -> Option<&Replica> {
        self.replicas.iter().find(|r| r.node == node)
    }

    /// Adds or replaces the replica of `r.node`.
    pub fn put_replica(&mut self, r: Replica) {
        match self.replicas.iter_mut().find(|x| x.node == r.node) {
            Some(x) => *x = r,
            None => self.replicas.push(r),
        }
    }

    /// Removes the replica of `node`; whether there was one.
    pub fn remove_replica(&mut self, node: NodeIdx) -> bool {
        let before = self.replicas.len();
        self.replicas.retain(|r| r.node != node);
        self.replicas.len() != before
    }
}

/// The block map.
#[derive(Debug, Default)]
pub struct BlockMap {
    blocks: HashMap<u64, BlockInfo>,
    by_node: Vec<HashSet<u64>>,
    counted: u64,
    safe: u64,
}

impl BlockMap {
    /// An empty map.
    pub fn new() -> BlockMap {
        BlockMap::default()
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Committed or complete blocks, and how many of them have a good replica.
    pub fn safe_counts(&self) -> (u64, u64) {
        (self.safe, self.counted)
    }

    /// A block.
    pub fn get(&self, id: u64) -> Option<&BlockInfo> {
        self.blocks.get(&id)
    }

    /// Every block.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &BlockInfo)> {
        self.blocks.iter().map(|(k, v)| (*k, v))
    }

    /// Blocks with a replica on `node`.
    pub fn blocks_of(&self, node: NodeIdx) -> impl Iterator<Item = u64> + '_ {
        self.by_node
            .get(node as usize)
            .into_iter()
            .flat_map(|s| s.iter().copied())
    }

    /// Number of replicas on `node`.
    pub fn count_on(&self, node: NodeIdx) -> usize {
        self.by_node.get(node as usize).map_or(0, |s| s.len())
    }

    /// Inserts a new block (replacing any with the same id).
    pub fn insert(&mut self, id: u64, info: BlockInfo) {
        self.remove(id);
        if info.counted() {
            self.counted += 1;
        }
        if info.is_safe() {
            self.safe += 1;
        }
        for r in &info.replicas {
            self.index(r.node).insert(id);
        }
        self.blocks.insert(id, info);
    }

    /// Removes a block; returns it.
    pub fn remove(&mut self, id: u64) -> Option<BlockInfo> {
        let info = self.blocks.remove(&id)?;
        if info.counted() {
            self.counted -= 1;
        }
        if info.is_safe() {
            self.safe -= 1;
        }
        for r in &info.replicas {
            if let Some(s) = self.by_node.get_mut(r.node as usize) {
                s.remove(&id);
            }
        }
        Some(info)
    }

    fn index(&mut self, node: NodeIdx) -> &mut HashSet<u64> {
        let i = node as usize;
        if self.by_node.len() <= i {
            self.by_node.resize_with(i + 1, HashSet::new);
        }
        &mut self.by_node[i]
    }

    /// Changes a block through `f`, keeping the indexes consistent.
    pub fn modify<R>(&mut self, id: u64, f: impl FnOnce(&mut BlockInfo) -> R) -> Option<R> {
        let b = self.blocks.get_mut(&id)?;
        let nodes_before: Vec<NodeIdx> = b.replicas.iter().map(|r| r.node).collect();
        let (counted, safe) = (b.counted(), b.is_safe());
        let out = f(b);
        let (counted2, safe2) = (b.counted(), b.is_safe());
        let nodes_after: Vec<NodeIdx> = b.replicas.iter().map(|r| r.node).collect();
        self.counted = self.counted + u64::from(counted2) - u64::from(counted);
        self.safe = self.safe + u64::from(safe2) - u64::from(safe);
        for n in &nodes_before {
            if !nodes_after.contains(n) {
                if let Some(s) = self.by_node.get_mut(*n as usize) {
                    s.remove(&id);
                }
            }
        }
        for n in nodes_after {
            if !nodes_before.contains(&n) {
                self.index(n).insert(id);
            }
        }
        Some(out)
    }

    /// Removes every replica of `node`; returns the blocks it held.
    pub fn remove_node(&mut self, node: NodeIdx) -> Vec<u64> {
        let ids: Vec<u64> = self.blocks_of(node).collect();
        for id in &ids {
            self.modify(*id, |b| b.remove_replica(node));
        }
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(node: NodeIdx, gs: u64, len: u64) -> Replica {
        Replica {
            node,
            gs,
            len,
            kind: ReplicaKind::Finalized,
            corrupt: false,
        }
    }

    #[test]
    fn counters_follow_changes() {
        let mut m = BlockMap::new();
        m.insert(1, BlockInfo::new(10, 5, 100, BlockState::Complete, 3));
        m.insert(
            2,
            BlockInfo::new(10, 5, 0, BlockState::UnderConstruction, 3),
        );
        assert_eq!(m.safe_counts(), (0, 1));
        m.modify(1, |b| b.put_replica(rep(0, 5, 100)));
        assert_eq!(m.safe_counts(), (1, 1));
        // Wrong length or generation stamp does not count.
        m.modify(1, |b| b.put_replica(rep(1, 4, 100)));
        m.modify(1, |b| b.put_replica(rep(2, 5, 99)));
        assert_eq!(m.blocks_of(1).collect::<Vec<_>>(), vec![1]);
        m.modify(1, |b| b.remove_replica(0));
        assert_eq!(m.safe_counts(), (0, 1));
        m.modify(2, |b| {
            b.put_replica(rep(0, 5, 10));
            b.state = BlockState::Committed;
            b.len = 10;
        });
        assert_eq!(m.safe_counts(), (1, 2));
        assert_eq!(m.remove_node(0), vec![2]);
        assert_eq!(m.safe_counts(), (0, 2));
        m.remove(1);
        assert_eq!(m.safe_counts(), (0, 1));
        assert_eq!(m.count_on(1), 0);
    }
}
