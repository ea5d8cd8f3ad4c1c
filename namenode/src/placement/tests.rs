//! Placement policy tests: rack rules, exclusions, load.

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

/// A request for `needed` new replicas of a block that has none.
fn request<'a>(
    needed: usize,
    writer: Option<&'a str>,
    excluded: &'a HashSet<NodeIdx>,
) -> Request<'a> {
    Request {
        needed,
        existing: &[],
        writer_host: writer,
        excluded,
    }
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
        let p = choose_targets(&c, &request(3, writer, &none), &mut rng);
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
    let p = choose_targets(&c, &request(5, None, &none), &mut rng);
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
    let p = choose_targets(&c, &request(3, None, &none), &mut rng);
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
    let p = choose_targets(&c, &request(1, None, &excluded), &mut rng);
    assert!(p.targets.is_empty());
    let why = p.shortfall.unwrap();
    assert!(why.contains("1 stale"), "{why}");
    assert!(why.contains("1 full"), "{why}");
    assert!(why.contains("2 excluded by the client"), "{why}");
    let empty: Vec<Candidate<'_>> = vec![];
    let p = choose_targets(&empty, &request(1, None, &excluded), &mut rng);
    assert_eq!(p.shortfall.unwrap(), "no datanode is registered");
}

#[test]
fn never_two_replicas_on_one_node() {
    let nodes = six_nodes_three_racks();
    let c = cands(&nodes);
    let mut rng = StdRng::seed_from_u64(6);
    let none = HashSet::new();
    for needed in 1..=6 {
        let p = choose_targets(&c, &request(needed, Some("h1"), &none), &mut rng);
        let set: HashSet<_> = p.targets.iter().collect();
        assert_eq!(set.len(), p.targets.len());
        assert_eq!(p.targets.len(), needed);
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
