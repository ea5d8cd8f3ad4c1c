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
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    struct Node {
        host: String,
        rack: String,
        skip: Option<Skip>,
    }

    fn cluster(spec: &[(&str, &str)]) -> Vec<Node> {
        spec.iter()
            .map(|(h, r)| Node {
                host: h.to_string(),
                rack: r.to_string(),
                skip: None,
            })
            .collect()
    }

    fn cands(nodes: &[Node]) -> Vec<Candidate<'_>> {
        nodes
            .iter()
            .enumerate()
            .map(|(i, n)| Candidate {
                idx: i as NodeIdx,
                host: &n.host,
                rack: &n.rack,
                skip: n.skip,
                load: 0,
                saturated: false,
                remaining: 1 << 40,
            })
            .collect()
    }

    fn six_nodes_three_racks() -> Vec<Node> {
        cluster(&[
            ("h1", "/r1"),
            ("h2", "/r1"),
            ("h3", "/r2"),
            ("h4", "/r2"),
            ("h5", "/r3"),
            ("h6", "/r3"),
        ])
    }

    #[test]
    fn default_policy_with_racks() {
        let nodes = six_nodes_three_racks();
        let c = cands(&nodes);
        let mut rng = StdRng::seed_from_u64(1);
        let none = HashSet::new();
        for round in 0..200 {
            let writer = if round % 2 == 0 { Some("h3") } else { None };
            let p = choose_targets(
                &c,
                &Request {
                    needed: 3,
                    existing: &[],
                    writer_host: writer,
                    excluded: &none,
                },
                &mut rng,
            );
            assert_eq!(p.targets.len(), 3);
            assert!(p.shortfall.is_none());
            let racks: Vec<&str> = p
                .targets
                .iter()
                .map(|t| nodes[*t as usize].rack.as_str())
                .collect();
            if writer.is_some() {
                assert_eq!(p.targets[0], 2, "first replica on the writer's node");
            }
            assert_ne!(racks[0], racks[1], "second replica on another rack");
            assert_eq!(racks[1], racks[2], "third on the second's rack");
            assert_ne!(p.targets[1], p.targets[2]);
        }
    }

    #[test]
    fn extra_replicas_respect_rack_cap() {
        let nodes = six_nodes_three_racks();
        let c = cands(&nodes);
        let mut rng = StdRng::seed_from_u64(2);
        let none = HashSet::new();
        let p = choose_targets(
            &c,
            &Request {
                needed: 5,
                existing: &[],
                writer_host: None,
                excluded: &none,
            },
            &mut rng,
        );
        assert_eq!(p.targets.len(), 5);
        let mut per: HashMap<&str, usize> = HashMap::new();
        for t in &p.targets {
            *per.entry(nodes[*t as usize].rack.as_str()).or_default() += 1;
        }
        // (5 - 1) / 3 + 2 = 3 per rack at most, and 2 is all a rack has.
        assert!(per.values().all(|n| *n <= 2));
        assert_eq!(per.len(), 3);
    }

    #[test]
    fn re_replication_goes_to_another_rack() {
        let nodes = six_nodes_three_racks();
        let c = cands(&nodes);
        let mut rng = StdRng::seed_from_u64(3);
        let none = HashSet::new();
        for _ in 0..50 {
            // Both replicas on /r1: the new one must leave /r1.
            let p = choose_targets(
                &c,
                &Request {
                    needed: 1,
                    existing: &[0, 1],
                    writer_host: None,
                    excluded: &none,
                },
                &mut rng,
            );
            assert_ne!(nodes[p.targets[0] as usize].rack, "/r1");
        }
    }

    #[test]
    fn one_rack_and_too_few_nodes() {
        let nodes = cluster(&[("h1", "/r"), ("h2", "/r")]);
        let c = cands(&nodes);
        let mut rng = StdRng::seed_from_u64(4);
        let none = HashSet::new();
        let p = choose_targets(
            &c,
            &Request {
                needed: 3,
                existing: &[],
                writer_host: None,
                excluded: &none,
            },
            &mut rng,
        );
        assert_eq!(p.targets.len(), 2);
        assert_ne!(p.targets[0], p.targets[1]);
        assert!(p.shortfall.unwrap().starts_with("2 of 3"));
    }

    #[test]
    fn exclusion_and_reasons() {
        let mut nodes = cluster(&[("h1", "/r"), ("h2", "/r"), ("h3", "/r"), ("h4", "/r")]);
        nodes[1].skip = Some(Skip::Stale);
        nodes[2].skip = Some(Skip::Full);
        let c = cands(&nodes);
        let mut rng = StdRng::seed_from_u64(5);
        let excluded: HashSet<NodeIdx> = [0, 3].into_iter().collect();
        let p = choose_targets(
            &c,
            &Request {
                needed: 1,
                existing: &[],
                writer_host: None,
                excluded: &excluded,
            },
            &mut rng,
        );
        assert!(p.targets.is_empty());
        let why = p.shortfall.unwrap();
        assert!(why.contains("1 stale"), "{why}");
        assert!(why.contains("1 full"), "{why}");
        assert!(why.contains("2 excluded by the client"), "{why}");
        let empty: Vec<Candidate<'_>> = vec![];
        let p = choose_targets(
            &empty,
            &Request {
                needed: 1,
                existing: &[],
                writer_host: None,
                excluded: &excluded,
            },
            &mut rng,
        );
        assert_eq!(p.shortfall.unwrap(), "no datanode is registered");
    }

    #[test]
    fn never_two_replicas_on_one_node() {
        let nodes = six_nodes_three_racks();
        let c = cands(&nodes);
        let mut rng = StdRng::seed_from_u64(6);
        let none = HashSet::new();
        for needed in 1..=6 {
            let p = choose_targets(
                &c,
                &Request {
                    needed,
                    existing: &[],
                    writer_host: Some("h1"),
                    excluded: &none,
                },
                &mut rng,
            );
            let set: HashSet<_> = p.targets.iter().collect();
            assert_eq!(set.len(), p.targets.len());
            assert_eq!(p.targets.len(), needed);
        }
    }

    fn request<'a>(
        needed: usize,
        writer: Option<&'a str>,
        none: &'a HashSet<NodeIdx>,
    ) -> Request<'a> {
        Request {
            needed,
            existing: &[],
            writer_host: writer,
            excluded: none,
        }
    }

    /// A node serving more than twice the average load is left out while
    /// others fit (also when it is the writer's own node), but the rack
    /// rules come first, and it is still chosen when nothing else fits.
    #[test]
    fn overloaded_nodes_are_a_last_resort_after_the_rack_rules() {
        let nodes = six_nodes_three_racks();
        let mut c = cands(&nodes);
        // Average 60 / 6: h3 (30) is above twice that, h1 (20) and h6 (10) are not.
        c[2].load = 30;
        c[0].load = 20;
        c[5].load = 10;
        assert_eq!(overload_limit(&c), Some(20.0));
        let mut rng = StdRng::seed_from_u64(7);
        let none = HashSet::new();
        for round in 0..200 {
            let writer = if round % 2 == 0 { Some("h3") } else { None };
            let p = choose_targets(&c, &request(3, writer, &none), &mut rng);
            assert_eq!(p.targets.len(), 3);
            assert!(!p.targets.contains(&2), "round {round}: {:?}", p.targets);
        }
        // h1 and h2 on /r1 and the overloaded h3 on /r2 left: the second
        // replica goes to h3 rather than both on /r1.
        let r2_but_h3_out: HashSet<NodeIdx> = [3, 4, 5].into_iter().collect();
        for _ in 0..50 {
            let p = choose_targets(&c, &request(2, None, &r2_but_h3_out), &mut rng);
            assert_eq!(p.targets.len(), 2, "{p:?}");
            assert!(
                p.targets[0] < 2,
                "first replica on a light node: {:?}",
                p.targets
            );
            assert_eq!(
                p.targets[1], 2,
                "rack rule broken for load: {:?}",
                p.targets
            );
        }
        // Nothing else usable: the overloaded node is chosen.
        let all_but_h3: HashSet<NodeIdx> = [0, 1, 3, 4, 5].into_iter().collect();
        let p = choose_targets(&c, &request(1, None, &all_but_h3), &mut rng);
        assert_eq!(p.targets, vec![2]);
        // All idle: nothing is overloaded.
        for n in &mut c {
            n.load = 0;
        }
        assert_eq!(overload_limit(&c), None);
    }

    /// On a quiet cluster a few connections do not make a node overloaded:
    /// a writer's own node serving one read keeps its first replica.
    #[test]
    fn a_few_connections_never_count_as_overload() {
        let spec: Vec<(String, String)> = (0..10)
            .map(|i| (format!("h{i}"), format!("/r{}", i % 2)))
            .collect();
        let refs: Vec<(&str, &str)> = spec.iter().map(|(h, r)| (h.as_str(), r.as_str())).collect();
        let nodes = cluster(&refs);
        let mut c = cands(&nodes);
        c[4].load = 1;
        c[7].load = 3;
        assert_eq!(overload_limit(&c), Some(MIN_OVERLOAD));
        let mut rng = StdRng::seed_from_u64(9);
        let none = HashSet::new();
        for _ in 0..50 {
            let p = choose_targets(&c, &request(3, Some("h4"), &none), &mut rng);
            assert_eq!(p.targets[0], 4);
        }
    }

    /// Dead, stale and decommissioning nodes do not count in the average.
    #[test]
    fn the_average_load_counts_only_nodes_in_service() {
        let mut nodes = six_nodes_three_racks();
        for (i, s) in [Skip::Dead, Skip::Stale, Skip::Decommissioning, Skip::Failed]
            .into_iter()
            .enumerate()
        {
            nodes[i].skip = Some(s);
        }
        let mut c = cands(&nodes);
        c[0].load = 100;
        c[4].load = 40;
        // (40 + 0) / 2 nodes in service, twice that.
        assert_eq!(overload_limit(&c), Some(40.0));
    }

    /// A node at its transfer connection limit is chosen only when no
    /// other node fits, whatever its load.
    #[test]
    fn nodes_at_their_transfer_limit_are_a_last_resort() {
        let nodes = cluster(&[("h1", "/r1"), ("h2", "/r1"), ("h3", "/r1")]);
        let mut c = cands(&nodes);
        c[1].saturated = true;
        c[2].load = 5;
        let mut rng = StdRng::seed_from_u64(8);
        let none = HashSet::new();
        for _ in 0..50 {
            let p = choose_targets(&c, &request(2, Some("h2"), &none), &mut rng);
            assert!(!p.targets.contains(&1), "{:?}", p.targets);
        }
        let p = choose_targets(&c, &request(3, None, &none), &mut rng);
        assert_eq!(p.targets.len(), 3);
        assert_eq!(p.targets[2], 1, "the busy node comes last: {:?}", p.targets);
        // Unlike a merely overloaded node, one at its limit does not win
        // the second rack: it would refuse the pipeline.
        let nodes = cluster(&[("h1", "/r1"), ("h2", "/r1"), ("h3", "/r2")]);
        let mut c = cands(&nodes);
        c[2].saturated = true;
        for _ in 0..50 {
            let p = choose_targets(&c, &request(2, None, &none), &mut rng);
            assert!(!p.targets.contains(&2), "{:?}", p.targets);
        }
    }
}
