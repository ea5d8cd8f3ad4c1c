//! Replica placement, HDFS's default policy:
//!
//! 1. the first replica on the writer's node if it runs on a usable
//!    datanode, else on a random one;
//! 2. the second on another rack;
//! 3. the third on the second's rack, another node;
//! 4. more replicas on random nodes, at most `(r - 1) / racks + 2` per rack.
//!
//! A rule that cannot hold (one rack, too few nodes) is relaxed rather than
//! failing the write. Dead, stale, failed, full and decommissioning nodes
//! are skipped, and when nothing fits the caller gets a reason for every
//! class of node skipped. A busy node — one whose last heartbeat said it
//! serves its limit of transfer connections, or whose load is above twice
//! the average of the nodes in service and above [`MIN_OVERLOAD`] (HDFS's
//! `considerLoad`) — is chosen only when no other node fits; HDFS refuses
//! it outright, which can fail a write on a small cluster, while the node
//! itself still refuses a connection it has no room for. Among equal
//! choices the less loaded of two random nodes wins (power of two choices),
//! which spreads load without a storm.
//!
//! The module also orders replicas for readers: the client's own node
//! first, then its rack, then the rest; stale and draining nodes last.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use rand::seq::IndexedRandom;
use rand::Rng;

use crate::datanodes::NodeIdx;

/// Why a node cannot take a new replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    /// Declared dead.
    Dead,
    /// No recent heartbeat.
    Stale,
    /// Its storage failed.
    Failed,
    /// Being decommissioned.
    Decommissioning,
    /// Decommissioned.
    Decommissioned,
    /// Reports itself full.
    Full,
    /// Less free space than one block.
    NoSpace,
    /// The client asked to exclude it.
    Excluded,
    /// It already holds (or is receiving) the block.
    HoldsBlock,
}

impl Skip {
    fn describe(self) -> &'static str {
        match self {
            Skip::Dead => "dead",
            Skip::Stale => "stale (no recent heartbeat)",
            Skip::Failed => "reporting failed storage",
            Skip::Decommissioning => "decommissioning",
            Skip::Decommissioned => "decommissioned",
            Skip::Full => "full",
            Skip::NoSpace => "with less free space than one block",
            Skip::Excluded => "excluded by the client",
            Skip::HoldsBlock => "already holding the block",
        }
    }
}

/// A datanode as placement sees it.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// Node index.
    pub idx: NodeIdx,
    /// Host part of its address.
    pub host: &'a str,
    /// Rack path.
    pub rack: &'a str,
    /// Why it cannot take a replica, if it cannot.
    pub skip: Option<Skip>,
    /// Transfers in progress: copies and open transfer connections.
    pub load: u32,
    /// Its last heartbeat said it serves its limit of transfer connections.
    pub saturated: bool,
    /// Free bytes.
    pub remaining: u64,
}

/// What to place.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// Replicas wanted in addition to `existing`.
    pub needed: usize,
    /// Nodes already holding (or receiving) the block, in pipeline order.
    pub existing: &'a [NodeIdx],
    /// Host the writer runs on, for the first replica.
    pub writer_host: Option<&'a str>,
    /// Nodes not to choose.
    pub excluded: &'a HashSet<NodeIdx>,
}

/// Chosen targets, in pipeline order, and why fewer than asked were found.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    /// The chosen nodes.
    pub targets: Vec<NodeIdx>,
    /// Set when fewer targets than needed were found.
    pub shortfall: Option<String>,
}

/// Chooses `req.needed` new targets.
pub fn choose_targets<R: Rng + ?Sized>(
    cands: &[Candidate<'_>],
    req: &Request<'_>,
    rng: &mut R,
) -> Placement {
    let rack_of: HashMap<NodeIdx, &str> = cands.iter().map(|c| (c.idx, c.rack)).collect();
    let existing: HashSet<NodeIdx> = req.existing.iter().copied().collect();
    let usable: Vec<&Candidate<'_>> = cands
        .iter()
        .filter(|c| {
            c.skip.is_none() && !req.excluded.contains(&c.idx) && !existing.contains(&c.idx)
        })
        .collect();
    let mut racks: HashSet<&str> = usable.iter().map(|c| c.rack).collect();
    racks.extend(req.existing.iter().filter_map(|e| rack_of.get(e).copied()));
    let total = req.existing.len() + req.needed;
    let max_per_rack = if racks.len() <= 1 {
        usize::MAX
    } else {
        (total.saturating_sub(1)) / racks.len() + 2
    };
    let mut per_rack: HashMap<&str, usize> = HashMap::new();
    for e in req.existing {
        if let Some(r) = rack_of.get(e) {
            *per_rack.entry(r).or_default() += 1;
        }
    }
    let limit = overload_limit(cands);
    let overloaded: HashSet<NodeIdx> = usable
        .iter()
        .filter(|c| c.saturated || limit.is_some_and(|l| f64::from(c.load) > l))
        .map(|c| c.idx)
        .collect();
    let mut placed: Vec<NodeIdx> = req.existing.to_vec();
    let mut chosen: Vec<NodeIdx> = Vec::new();
    let mut taken: HashSet<NodeIdx> = HashSet::new();
    for _ in 0..req.needed {
        let free: Vec<&Candidate<'_>> = usable
            .iter()
            .copied()
            .filter(|c| !taken.contains(&c.idx))
            .collect();
        let pos = Position {
            cands,
            rack_of: &rack_of,
            placed: &placed,
            per_rack: &per_rack,
            max_per_rack,
            writer_host: req.writer_host,
            overloaded: &overloaded,
        };
        let pick = pos.pick(&free, rng);
        let Some(c) = pick else { break };
        taken.insert(c.idx);
        chosen.push(c.idx);
        placed.push(c.idx);
        *per_rack.entry(c.rack).or_default() += 1;
    }
    let shortfall =
        (chosen.len() < req.needed).then(|| explain(cands, req, usable.len(), chosen.len()));
    Placement {
        targets: chosen,
        shortfall,
    }
}

/// The choice of one more target, given those placed so far.
struct Position<'c, 'a> {
    cands: &'c [Candidate<'a>],
    rack_of: &'c HashMap<NodeIdx, &'a str>,
    /// Existing replicas and targets chosen so far, in pipeline order.
    placed: &'c [NodeIdx],
    per_rack: &'c HashMap<&'a str, usize>,
    max_per_rack: usize,
    writer_host: Option<&'c str>,
    /// Busy nodes: at their connection limit, or above the overload limit.
    overloaded: &'c HashSet<NodeIdx>,
}

impl<'a> Position<'_, 'a> {
    fn rack(&self, i: usize) -> Option<&'a str> {
        self.placed
            .get(i)
            .and_then(|n| self.rack_of.get(n))
            .copied()
    }

    fn under_cap(&self, c: &Candidate<'_>) -> bool {
        self.per_rack.get(c.rack).copied().unwrap_or(0) < self.max_per_rack
    }

    /// The nodes of `free` the policy prefers for this position.
    fn preferred<'b>(&self, free: &[&'b Candidate<'a>]) -> Vec<&'b Candidate<'a>> {
        let only = |keep: &dyn Fn(&Candidate<'a>) -> bool| -> Vec<&'b Candidate<'a>> {
            free.iter().copied().filter(|c| keep(c)).collect()
        };
        match self.placed.len() {
            0 => match self.writer_host {
                Some(h) => {
                    let local = only(&|c| c.host == h);
                    if local.is_empty() {
                        // The writer's rack, if it runs on a (full or busy) datanode.
                        let writer_racks: HashSet<&str> = self
                            .cands
                            .iter()
                            .filter(|c| c.host == h)
                            .map(|c| c.rack)
                            .collect();
                        only(&|c| writer_racks.contains(c.rack))
                    } else {
                        local
                    }
                }
                None => Vec::new(),
            },
            1 => only(&|c| Some(c.rack) != self.rack(0)),
            2 if self.rack(0) == self.rack(1) => only(&|c| Some(c.rack) != self.rack(0)),
            2 => only(&|c| Some(c.rack) == self.rack(1)),
            // Prefer racks that do not hold a replica yet.
            _ => only(&|c| self.per_rack.get(c.rack).copied().unwrap_or(0) == 0),
        }
    }

    /// True when this position's preference puts the block on a second
    /// rack (what lets it survive the loss of a rack), not only saves
    /// bandwidth (the writer's node, the second replica's rack).
    fn prefers_another_rack(&self) -> bool {
        match self.placed.len() {
            0 => false,
            1 => true,
            2 => self.rack(0) == self.rack(1),
            _ => true,
        }
    }

    /// Picks from `free`: a preferred node under its rack's cap, else any
    /// node under the cap, else any node; in each, a node that is not busy
    /// if there is one. A preference for another rack comes before load,
    /// but not before a node at its connection limit (which would refuse
    /// the pipeline); load comes before the other preferences.
    fn pick<'b, R: Rng + ?Sized>(
        &self,
        free: &[&'b Candidate<'a>],
        rng: &mut R,
    ) -> Option<&'b Candidate<'a>> {
        let capped = |from: &[&'b Candidate<'a>]| -> Vec<&'b Candidate<'a>> {
            from.iter().copied().filter(|c| self.under_cap(c)).collect()
        };
        let light = |from: &[&'b Candidate<'a>]| -> Vec<&'b Candidate<'a>> {
            from.iter()
                .copied()
                .filter(|c| !self.overloaded.contains(&c.idx))
                .collect()
        };
        let tiers = [capped(&self.preferred(free)), capped(free), free.to_vec()];
        for (i, tier) in tiers.iter().enumerate() {
            if let Some(c) = pick_least_loaded(&light(tier), rng) {
                return Some(c);
            }
            if i > 0 || self.prefers_another_rack() {
                let last = i + 1 == tiers.len();
                let pool: Vec<&'b Candidate<'a>> = tier
                    .iter()
                    .copied()
                    .filter(|c| last || !c.saturated)
                    .collect();
                if let Some(c) = pick_least_loaded(&pool, rng) {
                    return Some(c);
                }
            }
        }
        None
    }
}

/// Load (copies plus transfer connections) at or below which a node is
/// never counted overloaded: on a quiet cluster twice the average is a
/// fraction of one connection, and one read would push the writer's own
/// node off its first replica.
pub const MIN_OVERLOAD: f64 = 8.0;

/// The load above which a node counts as overloaded: twice the average of
/// the nodes in service (not dead, stale, failed or decommissioning), at
/// least [`MIN_OVERLOAD`]; `None` while they are all idle.
fn overload_limit(cands: &[Candidate<'_>]) -> Option<f64> {
    let in_service: Vec<u32> = cands
        .iter()
        .filter(|c| {
            !matches!(
                c.skip,
                Some(
                    Skip::Dead
                        | Skip::Stale
                        | Skip::Failed
                        | Skip::Decommissioning
                        | Skip::Decommissioned
                )
            )
        })
        .map(|c| c.load)
        .collect();
    let total: u64 = in_service.iter().map(|l| u64::from(*l)).sum();
    (total > 0).then(|| (2.0 * total as f64 / in_service.len() as f64).max(MIN_OVERLOAD))
}

fn pick_least_loaded<'a, 'b, R: Rng + ?Sized>(
    from: &[&'b Candidate<'a>],
    rng: &mut R,
) -> Option<&'b Candidate<'a>> {
    let a = *from.choose(rng)?;
    let b = *from.choose(rng)?;
    Some(
        if (b.load, std::cmp::Reverse(b.remaining)) < (a.load, std::cmp::Reverse(a.remaining)) {
            b
        } else {
            a
        },
    )
}

/// True when space is what stops a new block: some datanode is full (or
/// has less room than one block) and every other one is full too, failed
/// or leaving the cluster. A dead or stale node, or one the client excluded
/// for another reason than space, may come back with room: then the
/// cluster is not (only) out of space.
pub fn out_of_space(cands: &[Candidate<'_>]) -> bool {
    let mut full = 0;
    for c in cands {
        match c.skip {
            Some(Skip::Full | Skip::NoSpace) => full += 1,
            Some(Skip::Failed | Skip::Decommissioning | Skip::Decommissioned) => {}
            _ => return false,
        }
    }
    full > 0
}

/// Says why fewer nodes than needed could be chosen, per class of node.
pub fn explain(cands: &[Candidate<'_>], req: &Request<'_>, usable: usize, chosen: usize) -> String {
    if cands.is_empty() {
        return "no datanode is registered".to_string();
    }
    let existing: HashSet<NodeIdx> = req.existing.iter().copied().collect();
    let mut counts: HashMap<Skip, usize> = HashMap::new();
    for c in cands {
        let why = if let Some(s) = c.skip {
            s
        } else if req.excluded.contains(&c.idx) {
            Skip::Excluded
        } else if existing.contains(&c.idx) {
            Skip::HoldsBlock
        } else {
            continue;
        };
        *counts.entry(why).or_default() += 1;
    }
    let mut msg = format!(
        "{} of {} needed datanodes found among {} registered ({} usable)",
        chosen,
        req.needed,
        cands.len(),
        usable
    );
    let mut reasons: Vec<(Skip, usize)> = counts.into_iter().collect();
    reasons.sort();
    if !reasons.is_empty() {
        msg.push_str(": skipped");
        for (i, (why, n)) in reasons.iter().enumerate() {
            let _ = write!(
                msg,
                "{} {n} {}",
                if i == 0 { "" } else { "," },
                why.describe()
            );
        }
    }
    msg
}

/// Network distance of a replica from a reader: 0 same host, 1 same rack,
/// 2 elsewhere.
pub fn distance(reader_host: &str, reader_racks: &[&str], host: &str, rack: &str) -> u8 {
    if !reader_host.is_empty() && host == reader_host {
        0
    } else if reader_racks.contains(&rack) {
        1
    } else {
        2
    }
}

#[cfg(test)]
mod tests;
