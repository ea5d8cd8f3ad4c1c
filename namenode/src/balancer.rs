//! The balancer: moves replicas from datanodes fuller than the cluster's
//! average to emptier ones until every node is within a threshold of it
//! (HDFS's Balancer, run inside the namenode and started by
//! `dfs balancer`).
//!
//! A move is a replica copy from the full node to the empty one, through
//! the replication machinery, and then the deletion of the full node's
//! replica as the excess (the block is never below its replication). A
//! move never lowers the number of racks a block is on. Repairs come
//! first: their copies are ordered before the balancer's in each step and
//! take the nodes' transfer slots first.
//!
//! This module holds the state and the arithmetic; the namesystem's
//! `balance` module applies it to the block map.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::datanodes::NodeIdx;

/// Ticks in a row with nothing moving and nothing movable before the
/// balancer gives up.
pub const IDLE_TICKS: u32 = 5;

/// One node's use of its capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeUse {
    /// The node.
    pub node: NodeIdx,
    /// Bytes of the replicas the block map places on it, counting moves
    /// in flight as done.
    pub used: u64,
    /// Its capacity in bytes (never 0 here).
    pub capacity: u64,
}

impl NodeUse {
    /// Fraction of the capacity used.
    pub fn utilization(&self) -> f64 {
        self.used as f64 / self.capacity as f64
    }
}

/// Which nodes give and which take, for a threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Bytes used over bytes of capacity, all nodes together.
    pub average: f64,
    /// Nodes to move replicas away from, fullest first, with the bytes to
    /// move to bring them down to the average.
    pub sources: Vec<(NodeIdx, u64)>,
    /// Nodes to move replicas to, emptiest first, with the bytes they may
    /// take before they reach the average.
    pub targets: Vec<(NodeIdx, u64)>,
    /// Every node is within the threshold of the average.
    pub balanced: bool,
}

/// The moves needed for every node to be within `threshold` (a fraction,
/// 0.1 = 10 percentage points) of the average utilization. As HDFS: a
/// node above the average plus the threshold gives to any node below the
/// average, and a node below the average minus the threshold takes from
/// any node above the average.
pub fn plan(nodes: &[NodeUse], threshold: f64) -> Plan {
    let used: u128 = nodes.iter().map(|n| u128::from(n.used)).sum();
    let capacity: u128 = nodes.iter().map(|n| u128::from(n.capacity)).sum();
    let average = if capacity == 0 {
        0.0
    } else {
        used as f64 / capacity as f64
    };
    let over = |n: &NodeUse| n.utilization() > average + threshold;
    let under = |n: &NodeUse| n.utilization() < average - threshold;
    let any_over = nodes.iter().any(over);
    let any_under = nodes.iter().any(under);
    let share = |n: &NodeUse| (average * n.capacity as f64) as u64;
    let mut sources: Vec<(NodeIdx, u64, f64)> = nodes
        .iter()
        .filter(|n| over(n) || (any_under && n.utilization() > average))
        .map(|n| (n.node, n.used.saturating_sub(share(n)), n.utilization()))
        .filter(|s| s.1 > 0)
        .collect();
    let mut targets: Vec<(NodeIdx, u64, f64)> = nodes
        .iter()
        .filter(|n| under(n) || (any_over && n.utilization() < average))
        .map(|n| (n.node, share(n).saturating_sub(n.used), n.utilization()))
        .filter(|t| t.1 > 0)
        .collect();
    sources.sort_by(|a, b| b.2.total_cmp(&a.2));
    targets.sort_by(|a, b| a.2.total_cmp(&b.2));
    Plan {
        average,
        balanced: !any_over && !any_under,
        sources: sources.into_iter().map(|(n, b, _)| (n, b)).collect(),
        targets: targets.into_iter().map(|(n, b, _)| (n, b)).collect(),
    }
}

/// A replica being moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    /// The full node; its replica is the one deleted.
    pub source: NodeIdx,
    /// The empty node the copy goes to.
    pub target: NodeIdx,
    /// Bytes of the block.
    pub len: u64,
    /// When the copy was ordered.
    pub issued: Instant,
}

/// A balancing run: started by an administrator, over when the cluster is
/// balanced, when nothing can move, or when stopped.
#[derive(Debug, Clone)]
pub struct Balancer {
    /// Allowed distance from the average utilization (a fraction).
    pub threshold: f64,
    /// Moves whose source replica is not deleted yet, by block id.
    pub moves: HashMap<u64, Move>,
    /// Blocks moved so far.
    pub blocks_moved: u64,
    /// Bytes moved so far.
    pub bytes_moved: u64,
    /// Ticks in a row with nothing in flight and nothing movable.
    pub idle_ticks: u32,
    /// Why the run ended (`None` while it runs).
    pub outcome: Option<String>,
    /// The last plan's average utilization.
    pub average: f64,
    /// When the last step ran.
    pub last_step: Option<Instant>,
}

impl Balancer {
    /// A run with this threshold (a fraction).
    pub fn new(threshold: f64) -> Balancer {
        Balancer {
            threshold,
            moves: HashMap::new(),
            blocks_moved: 0,
            bytes_moved: 0,
            idle_ticks: 0,
            outcome: None,
            average: 0.0,
            last_step: None,
        }
    }

    /// Whether the run is going on.
    pub fn running(&self) -> bool {
        self.outcome.is_none()
    }

    /// Ends the run, saying why.
    pub fn finish(&mut self, why: String) {
        self.moves.clear();
        self.outcome = Some(why);
    }

    /// A move's source replica was deleted: the move is done.
    pub fn moved(&mut self, block: u64) -> Option<Move> {
        let m = self.moves.remove(&block)?;
        self.blocks_moved += 1;
        self.bytes_moved += m.len;
        Some(m)
    }

    /// Drops moves whose copy never landed, `give_up` after it was
    /// ordered (the block keeps its replicas; it may be moved again).
    pub fn expire(&mut self, now: Instant, give_up: Duration) {
        self.moves
            .retain(|_, m| now.saturating_duration_since(m.issued) < give_up);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn node(node: NodeIdx, used_mib: u64, cap_mib: u64) -> NodeUse {
        NodeUse {
            node,
            used: used_mib * MIB,
            capacity: cap_mib * MIB,
        }
    }

    #[test]
    fn full_nodes_give_to_empty_ones_down_to_the_average() {
        // 20 of 160 MiB used: 12.5 %; two nodes at 25 %, two empty.
        let p = plan(
            &[
                node(0, 10, 40),
                node(1, 10, 40),
                node(2, 0, 40),
                node(3, 0, 40),
            ],
            0.05,
        );
        assert!(!p.balanced);
        assert!((p.average - 0.125).abs() < 1e-9);
        assert_eq!(p.sources, vec![(0, 5 * MIB), (1, 5 * MIB)]);
        assert_eq!(p.targets, vec![(2, 5 * MIB), (3, 5 * MIB)]);
    }

    #[test]
    fn within_the_threshold_is_balanced() {
        let p = plan(&[node(0, 11, 40), node(1, 9, 40), node(2, 10, 40)], 0.1);
        assert!(p.balanced);
        assert!(p.sources.is_empty() && p.targets.is_empty());
        // Capacities differ: utilization, not bytes, is compared.
        let p = plan(&[node(0, 10, 100), node(1, 1, 10)], 0.05);
        assert!(p.balanced, "{p:?}");
    }

    #[test]
    fn one_outlier_pairs_with_every_node_on_the_other_side_of_the_average() {
        // One node far above; the others just below the average (within
        // the threshold) still take from it.
        let p = plan(&[node(0, 30, 40), node(1, 35, 100), node(2, 34, 100)], 0.1);
        assert!(!p.balanced);
        assert_eq!(p.sources.len(), 1);
        assert_eq!(
            p.targets.iter().map(|t| t.0).collect::<Vec<_>>(),
            vec![2, 1]
        );
        // One node far below: it takes from the nodes above the average.
        let p = plan(&[node(0, 30, 100), node(1, 31, 100), node(2, 0, 20)], 0.1);
        assert_eq!(
            p.sources.iter().map(|s| s.0).collect::<Vec<_>>(),
            vec![1, 0]
        );
        assert_eq!(p.targets.iter().map(|t| t.0).collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn moves_are_counted_once_and_expire() {
        let t = Instant::now();
        let mut b = Balancer::new(0.1);
        let m = Move {
            source: 0,
            target: 1,
            len: MIB,
            issued: t,
        };
        b.moves.insert(7, m);
        b.moves.insert(
            8,
            Move {
                issued: t + Duration::from_secs(8),
                ..m
            },
        );
        assert_eq!(b.moved(7), Some(m));
        assert_eq!(b.moved(7), None);
        assert_eq!((b.blocks_moved, b.bytes_moved), (1, MIB));
        b.expire(t + Duration::from_secs(10), Duration::from_secs(5));
        assert_eq!(
            b.moves.len(),
            1,
            "only the copy ordered 10 s ago is given up"
        );
        b.expire(t + Duration::from_secs(20), Duration::from_secs(5));
        assert!(b.moves.is_empty());
        b.finish("balanced".into());
        assert!(!b.running());
    }
}
