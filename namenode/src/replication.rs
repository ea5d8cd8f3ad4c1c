//! Replication bookkeeping: the prioritised queues of blocks that need
//! copies, the copies in flight, and the choice of excess replicas to trim.
//!
//! Priorities follow HDFS: a block with a single live replica first, then
//! badly under-replicated blocks (fewer than a third of the target), then
//! under-replicated ones, then mis-replicated ones (every replica on one rack
//! while the cluster has several), and last blocks whose every replica is
//! corrupt (nothing can be copied; they stay for fsck to report).
//!
//! The scheduling itself, which needs the datanodes and placement, is the
//! namesystem's monitor.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::datanodes::NodeIdx;

/// Queue priority, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// One live replica left (or only draining ones).
    OneReplica = 0,
    /// Fewer than a third of the target.
    VeryUnder = 1,
    /// Below the target.
    Under = 2,
    /// Enough replicas, all on one rack.
    MisReplicated = 3,
    /// Every replica is corrupt.
    AllCorrupt = 4,
}

const LEVELS: usize = 5;

impl Priority {
    fn all() -> [Priority; LEVELS] {
        [
            Priority::OneReplica,
            Priority::VeryUnder,
            Priority::Under,
            Priority::MisReplicated,
            Priority::AllCorrupt,
        ]
    }
}

/// Replica counts of one block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Health {
    /// Good replicas on in-service nodes that are not dead.
    pub live: u32,
    /// Good replicas on decommissioning or decommissioned nodes.
    pub decommissioning: u32,
    /// Corrupt replicas.
    pub corrupt: u32,
    /// Copies scheduled and not yet confirmed.
    pub pending: u32,
    /// Distinct racks of the live replicas.
    pub racks: usize,
    /// Target replication.
    pub expected: u32,
}

impl Health {
    /// Whether fewer live replicas than the target exist.
    pub fn under_replicated(&self) -> bool {
        self.live < self.expected
    }

    /// Whether more live replicas than the target exist.
    pub fn over_replicated(&self) -> bool {
        self.live > self.expected
    }

    /// Whether every replica sits on one rack though the cluster has more.
    pub fn mis_replicated(&self, cluster_racks: usize) -> bool {
        self.expected > 1 && self.live > 1 && self.racks == 1 && cluster_racks > 1
    }

    /// No replica can be read.
    pub fn missing(&self) -> bool {
        self.live + self.decommissioning == 0
    }
}

/// The queue a block belongs in, if any.
pub fn priority(h: &Health, cluster_racks: usize) -> Option<Priority> {
    if h.missing() {
        return (h.corrupt > 0).then_some(Priority::AllCorrupt);
    }
    if h.live + h.pending >= h.expected {
        return (h.pending == 0 && h.mis_replicated(cluster_racks))
            .then_some(Priority::MisReplicated);
    }
    if h.live <= 1 {
        Some(Priority::OneReplica)
    } else if h.live * 3 < h.expected {
        Some(Priority::VeryUnder)
    } else {
        Some(Priority::Under)
    }
}

/// A copy handed to a source datanode.
#[derive(Debug, Clone)]
pub struct PendingCopy {
    /// The node copying.
    pub source: NodeIdx,
    /// Nodes that should receive the block and have not reported it yet.
    pub targets: Vec<NodeIdx>,
    /// When it was scheduled.
    pub issued: Instant,
}

/// Queues of blocks needing copies, and copies in flight.
#[derive(Debug, Default)]
pub struct ReplicationQueues {
    queues: [BTreeSet<u64>; LEVELS],
    level_of: HashMap<u64, Priority>,
    cursors: [u64; LEVELS],
    pending: HashMap<u64, PendingCopy>,
    check: HashSet<u64>,
    /// Checks due later, the soonest first.
    later: BinaryHeap<Reverse<(Instant, u64)>>,
}

impl ReplicationQueues {
    /// Empty queues.
    pub fn new() -> ReplicationQueues {
        ReplicationQueues::default()
    }

    /// Asks the monitor to re-evaluate a block.
    pub fn check(&mut self, id: u64) {
        self.check.insert(id);
    }

    /// Asks the monitor to re-evaluate many blocks.
    pub fn check_all(&mut self, ids: impl IntoIterator<Item = u64>) {
        self.check.extend(ids);
    }

    /// Asks the monitor to re-evaluate a block once `at` has passed (not
    /// at every round until then).
    pub fn check_at(&mut self, id: u64, at: Instant) {
        self.later.push(Reverse((at, id)));
    }

    /// Takes the blocks to re-evaluate now, with those due by `now`.
    pub fn take_checks(&mut self, now: Instant) -> Vec<u64> {
        while let Some(&Reverse((at, id))) = self.later.peek() {
            if at > now {
                break;
            }
            self.check.insert(id);
            self.later.pop();
        }
        self.check.drain().collect()
    }

    /// Puts a block in the queue of its priority (or in none).
    pub fn set_priority(&mut self, id: u64, p: Option<Priority>) {
        if self.level_of.get(&id).copied() == p {
            return;
        }
        if let Some(old) = self.level_of.remove(&id) {
            self.queues[old as usize].remove(&id);
        }
        if let Some(p) = p {
            self.queues[p as usize].insert(id);
            self.level_of.insert(id, p);
        }
    }

    /// The queue a block is in.
    pub fn priority_of(&self, id: u64) -> Option<Priority> {
        self.level_of.get(&id).copied()
    }

    /// Forgets a block entirely (deleted).
    pub fn forget(&mut self, id: u64) {
        self.set_priority(id, None);
        self.pending.remove(&id);
        self.check.remove(&id);
    }

    /// Blocks queued for copies (all-corrupt ones excluded).
    pub fn needed_count(&self) -> usize {
        self.queues[..Priority::AllCorrupt as usize]
            .iter()
            .map(|q| q.len())
            .sum()
    }

    /// Copies in flight.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Up to `max` queued blocks in scheduling order: by priority, and
    /// within a priority round-robin from where the last round stopped, so
    /// a block that cannot be placed does not starve the others.
    pub fn schedule_order(&mut self, max: usize) -> Vec<(u64, Priority)> {
        let mut out = Vec::new();
        for p in Priority::all() {
            if p == Priority::AllCorrupt {
                break;
            }
            let q = &self.queues[p as usize];
            let cursor = self.cursors[p as usize];
            let after = q.range(cursor.saturating_add(1)..);
            let before = q.range(..=cursor);
            let mut last = cursor;
            for id in after.chain(before) {
                if out.len() >= max {
                    break;
                }
                out.push((*id, p));
                last = *id;
            }
            self.cursors[p as usize] = last;
            if out.len() >= max {
                break;
            }
        }
        out
    }

    /// The copy in flight for a block.
    pub fn pending(&self, id: u64) -> Option<&PendingCopy> {
        self.pending.get(&id)
    }

    /// Records a scheduled copy.
    pub fn add_pending(&mut self, id: u64, copy: PendingCopy) {
        self.pending.insert(id, copy);
    }

    /// A target reported the replica; true if it was expected.
    pub fn replica_arrived(&mut self, id: u64, node: NodeIdx) -> bool {
        let Some(p) = self.pending.get_mut(&id) else {
            return false;
        };
        let before = p.targets.len();
        p.targets.retain(|t| *t != node);
        let hit = p.targets.len() != before;
        if p.targets.is_empty() {
            self.pending.remove(&id);
        }
        hit
    }

    /// Drops copies older than `timeout`; returns their blocks.
    pub fn expire(&mut self, now: Instant, timeout: Duration) -> Vec<u64> {
        let old: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.issued) > timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in &old {
            self.pending.remove(id);
        }
        old
    }

    /// Drops copies a dead node took part in; returns their blocks.
    pub fn drop_node(&mut self, node: NodeIdx) -> Vec<u64> {
        let hit: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.source == node || p.targets.contains(&node))
            .map(|(id, _)| *id)
            .collect();
        for id in &hit {
            self.pending.remove(id);
        }
        hit
    }

    /// Copies each node takes part in (as source or target).
    pub fn in_flight(&self) -> HashMap<NodeIdx, u32> {
        let mut m: HashMap<NodeIdx, u32> = HashMap::new();
        for p in self.pending.values() {
            *m.entry(p.source).or_default() += 1;
            for t in &p.targets {
                *m.entry(*t).or_default() += 1;
            }
        }
        m
    }
}

/// A live replica that could be trimmed.
#[derive(Debug, Clone)]
pub struct ExcessCandidate {
    /// Its node.
    pub node: NodeIdx,
    /// The node's rack.
    pub rack: String,
    /// The node's free bytes.
    pub remaining: u64,
}

/// Chooses `excess` replicas to delete so that rack diversity is kept
/// (first from racks holding more than one replica) and the fullest nodes
/// lose first.
pub fn choose_excess(replicas: &[ExcessCandidate], excess: usize) -> Vec<NodeIdx> {
    let mut left: Vec<&ExcessCandidate> = replicas.iter().collect();
    let mut out = Vec::new();
    while out.len() < excess && left.len() > 1 {
        let mut per_rack: HashMap<&str, usize> = HashMap::new();
        for r in &left {
            *per_rack.entry(r.rack.as_str()).or_default() += 1;
        }
        let crowded: Vec<usize> = (0..left.len())
            .filter(|i| per_rack[left[*i].rack.as_str()] > 1)
            .collect();
        let pool: Vec<usize> = if crowded.is_empty() {
            (0..left.len()).collect()
        } else {
            crowded
        };
        let Some(victim) = pool
            .into_iter()
            .min_by_key(|i| (left[*i].remaining, left[*i].node))
        else {
            break;
        };
        out.push(left[victim].node);
        left.remove(victim);
    }
    out
}

/// [`choose_excess`], but deleting `prefer` (a balancer move's source)
/// first when that keeps as many racks as the usual choice (a replica may
/// have died since the move was ordered). Returns the victims and whether
/// `prefer` is among them by this preference.
pub fn choose_excess_preferring(
    replicas: &[ExcessCandidate],
    excess: usize,
    prefer: Option<NodeIdx>,
) -> (Vec<NodeIdx>, bool) {
    let usual = choose_excess(replicas, excess);
    let Some(p) = prefer.filter(|p| excess > 0 && replicas.iter().any(|c| c.node == *p)) else {
        return (usual, false);
    };
    let rest: Vec<ExcessCandidate> = replicas.iter().filter(|c| c.node != p).cloned().collect();
    let mut forced = vec![p];
    forced.extend(choose_excess(&rest, excess - 1));
    let racks_kept = |victims: &[NodeIdx]| {
        replicas
            .iter()
            .filter(|c| !victims.contains(&c.node))
            .map(|c| c.rack.as_str())
            .collect::<HashSet<_>>()
            .len()
    };
    if racks_kept(&forced) >= racks_kept(&usual) {
        (forced, true)
    } else {
        (usual, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(live: u32, expected: u32) -> Health {
        Health {
            live,
            expected,
            racks: 2,
            ..Default::default()
        }
    }

    #[test]
    fn a_check_asked_for_later_comes_due_once() {
        let mut q = ReplicationQueues::new();
        let t0 = Instant::now();
        q.check_at(7, t0 + Duration::from_secs(2));
        q.check_at(8, t0 + Duration::from_secs(1));
        q.check(9);
        assert_eq!(q.take_checks(t0), vec![9]);
        assert!(q.take_checks(t0).is_empty());
        assert_eq!(q.take_checks(t0 + Duration::from_secs(1)), vec![8]);
        assert_eq!(q.take_checks(t0 + Duration::from_secs(3)), vec![7]);
        assert!(q.take_checks(t0 + Duration::from_secs(4)).is_empty());
    }

    #[test]
    fn priorities() {
        assert_eq!(priority(&h(1, 3), 2), Some(Priority::OneReplica));
        assert_eq!(priority(&h(2, 3), 2), Some(Priority::Under));
        assert_eq!(priority(&h(2, 10), 2), Some(Priority::VeryUnder));
        assert_eq!(priority(&h(3, 3), 2), None);
        assert_eq!(priority(&h(4, 3), 2), None);
        let one_rack = Health {
            racks: 1,
            ..h(3, 3)
        };
        assert_eq!(priority(&one_rack, 2), Some(Priority::MisReplicated));
        assert_eq!(
            priority(&one_rack, 1),
            None,
            "a one-rack cluster cannot do better"
        );
        let pending = Health {
            pending: 1,
            ..h(2, 3)
        };
        assert_eq!(priority(&pending, 2), None);
        let corrupt = Health {
            corrupt: 2,
            ..h(0, 3)
        };
        assert_eq!(priority(&corrupt, 2), Some(Priority::AllCorrupt));
        assert_eq!(priority(&h(0, 3), 2), None, "missing: nothing to copy from");
        let draining = Health {
            decommissioning: 1,
            ..h(0, 3)
        };
        assert_eq!(priority(&draining, 2), Some(Priority::OneReplica));
    }

    #[test]
    fn schedule_order_is_by_priority_and_round_robin() {
        let mut q = ReplicationQueues::new();
        for id in 1..=4 {
            q.set_priority(id, Some(Priority::Under));
        }
        q.set_priority(9, Some(Priority::OneReplica));
        q.set_priority(8, Some(Priority::MisReplicated));
        let first = q.schedule_order(3);
        assert_eq!(
            first,
            vec![
                (9, Priority::OneReplica),
                (1, Priority::Under),
                (2, Priority::Under)
            ]
        );
        let second: Vec<u64> = q.schedule_order(3).into_iter().map(|x| x.0).collect();
        assert_eq!(second, vec![9, 3, 4]);
        q.set_priority(9, None);
        let third: Vec<u64> = q.schedule_order(10).into_iter().map(|x| x.0).collect();
        assert_eq!(third, vec![1, 2, 3, 4, 8]);
        assert_eq!(q.needed_count(), 5);
    }

    #[test]
    fn pending_copies() {
        let t = Instant::now();
        let mut q = ReplicationQueues::new();
        q.add_pending(
            1,
            PendingCopy {
                source: 0,
                targets: vec![1, 2],
                issued: t,
            },
        );
        assert_eq!(q.in_flight()[&0], 1);
        assert!(q.replica_arrived(1, 1));
        assert!(!q.replica_arrived(1, 1));
        assert!(q
            .expire(t + Duration::from_secs(1), Duration::from_secs(5))
            .is_empty());
        assert_eq!(
            q.expire(t + Duration::from_secs(6), Duration::from_secs(5)),
            vec![1]
        );
        assert_eq!(q.pending_count(), 0);
    }

    #[test]
    fn a_move_source_goes_only_if_the_racks_stay() {
        let c = |node: NodeIdx, rack: &str| ExcessCandidate {
            node,
            rack: rack.into(),
            remaining: 100,
        };
        // Source 1 on rack a, its copy 3 landed on rack b, 2 on a: deleting
        // 1 keeps both racks.
        let reps = [c(1, "a"), c(2, "a"), c(3, "b")];
        assert_eq!(choose_excess_preferring(&reps, 1, Some(1)), (vec![1], true));
        // The other replica on rack a died; with replication lowered to 2,
        // deleting the source would leave rack b only.
        let reps = [c(1, "a"), c(3, "b"), c(4, "b")];
        let (v, went) = choose_excess_preferring(&reps, 1, Some(1));
        assert!(!went && v.len() == 1 && v[0] != 1, "{v:?}");
        // No preference, or a source no longer among them: the usual choice.
        assert_eq!(
            choose_excess_preferring(&reps, 1, None).0,
            choose_excess(&reps, 1)
        );
        assert!(!choose_excess_preferring(&reps, 1, Some(9)).1);
    }

    #[test]
    fn excess_keeps_racks_and_trims_fullest() {
        let c = |node, rack: &str, remaining| ExcessCandidate {
            node,
            rack: rack.into(),
            remaining,
        };
        // r1 holds two replicas: one of them goes, the fuller one.
        let reps = vec![
            c(0, "/r1", 50),
            c(1, "/r1", 10),
            c(2, "/r2", 1),
            c(3, "/r3", 5),
        ];
        assert_eq!(choose_excess(&reps, 1), vec![1]);
        // Then racks are all distinct: the fullest goes.
        assert_eq!(choose_excess(&reps, 2), vec![1, 2]);
        // Never the last replica.
        assert_eq!(choose_excess(&reps[..1], 1), Vec::<NodeIdx>::new());
    }
}
