//! The balancer against simulated datanodes: replicas move from full
//! nodes to empty ones, each block keeps its replication and its racks,
//! and the run ends by itself.

use std::collections::{HashMap, HashSet};

use super::*;

const BLOCK: u64 = 4096;

/// Datanodes as sets of blocks: they carry out transfers and deletes the
/// namenode orders, and report what they hold.
struct Sim {
    capacity: u64,
    held: HashMap<String, HashSet<ExtendedBlock>>,
}

impl Sim {
    fn new(capacity: u64) -> Sim {
        Sim {
            capacity,
            held: HashMap::new(),
        }
    }

    fn beat(&self, h: &Harness, node: &str) -> Vec<datanode_command::Command> {
        let used = self.held.get(node).map_or(0, |s| s.len() as u64 * BLOCK);
        h.fs.heartbeat(HeartbeatRequest {
            node_id: node.into(),
            storage: Some(StorageReport {
                capacity: self.capacity,
                used,
                remaining: self.capacity - used,
                ..Default::default()
            }),
            ..Default::default()
        })
        .commands
        .into_iter()
        .filter_map(|c| c.command)
        .collect()
    }

    /// One round: every node heartbeats and carries out its commands.
    fn round(&mut self, h: &Harness, nodes: &[&str]) {
        let ids: HashMap<String, String> =
            h.fs.cluster_report()
                .datanodes
                .iter()
                .filter_map(|d| d.node.as_ref())
                .map(|n| (n.address.clone(), n.id.clone()))
                .collect();
        for node in nodes {
            for cmd in self.beat(h, node) {
                match cmd {
                    datanode_command::Command::Transfer(t) => {
                        let b = t.block.unwrap();
                        for target in &t.targets {
                            let id = ids.get(&target.address).unwrap_or(&target.id);
                            self.held.entry(id.clone()).or_default().insert(b);
                            h.received(id, b);
                        }
                    }
                    datanode_command::Command::Delete(d) => {
                        for b in &d.blocks {
                            self.held.get_mut(*node).unwrap().retain(|x| x.id != b.id);
                        }
                        h.fs.incremental_block_report(IncrementalBlockReportRequest {
                            node_id: node.to_string(),
                            received: vec![],
                            deleted: d.blocks.clone(),
                        })
                        .unwrap();
                    }
                    _ => {}
                }
            }
        }
        h.fs.tick(Instant::now());
    }

    fn count(&self, node: &str) -> usize {
        self.held.get(node).map_or(0, |s| s.len())
    }
}

/// Writes `files` one-block files on the nodes registered so far and
/// records where the replicas went.
async fn fill(h: &Harness, sim: &mut Sim, files: usize) {
    for i in 0..files {
        let b = h.write(&format!("/f{i}"), 1, 0).await[0];
        for f in h.fs.fsck(&Caller::superuser(), "/", "").unwrap().files {
            for fb in f.blocks.iter().filter(|fb| fb.id == b.id) {
                for r in &fb.replicas {
                    sim.held.entry(r.node_id.clone()).or_default().insert(b);
                }
            }
        }
    }
}

async fn balance(replication: u32, racks: [&str; 4]) -> (Harness, Sim) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.replication = replication;
    let h = Harness::open(cfg);
    std::mem::forget(dir);
    let mut sim = Sim::new(64 * BLOCK);
    let nodes = ["dn1", "dn2", "dn3", "dn4"];
    h.register("dn1", "127.0.0.1:9101", racks[0]);
    h.register("dn2", "127.0.0.2:9101", racks[1]);
    fill(&h, &mut sim, 16).await;
    sim.round(&h, &nodes[..2]);
    h.register("dn3", "127.0.0.3:9101", racks[2]);
    h.register("dn4", "127.0.0.4:9101", racks[3]);
    sim.round(&h, &nodes);
    let before = h.fs.balance(Some(0.05), false).unwrap();
    assert!(before.running);
    for _ in 0..200 {
        sim.round(&h, &nodes);
        if !h.fs.balance(None, false).unwrap().running {
            break;
        }
    }
    // The last deletions go out with the next heartbeats.
    for _ in 0..3 {
        sim.round(&h, &nodes);
    }
    (h, sim)
}

#[tokio::test]
async fn replicas_move_from_full_nodes_to_new_ones_until_balanced() {
    let (h, sim) = balance(1, ["/r1", "/r2", "/r1", "/r2"]).await;
    let r = h.fs.balance(None, false).unwrap();
    assert!(!r.running);
    assert!(r.outcome.starts_with("balanced"), "{r:?}");
    assert!(r.blocks_moved >= 2, "{r:?}");
    // 16 blocks on 4 nodes of 64 blocks: 4 each, within 5 points (3.2 blocks).
    for n in ["dn1", "dn2", "dn3", "dn4"] {
        let c = sim.count(n);
        assert!((1..=7).contains(&c), "{n} holds {c}: {:?}", sim.held);
    }
    // Every block still has exactly one replica, where the namenode says.
    let report = h.fs.fsck(&Caller::superuser(), "/", "").unwrap();
    assert_eq!(report.files.len(), 16);
    for f in &report.files {
        assert_eq!(f.blocks[0].replicas.len(), 1, "{f:?}");
    }
    let total: usize = ["dn1", "dn2", "dn3", "dn4"]
        .iter()
        .map(|n| sim.count(n))
        .sum();
    assert_eq!(total, 16);
    h.close().await;
}

#[tokio::test]
async fn moves_keep_replication_and_never_lower_a_blocks_racks() {
    // Old nodes on two racks, both new ones on the first rack: a replica
    // may leave /r2 only if the block keeps a replica on /r2.
    let (h, sim) = balance(2, ["/r1", "/r2", "/r1", "/r1"]).await;
    let r = h.fs.balance(None, false).unwrap();
    assert!(!r.running, "{r:?}");
    assert!(r.blocks_moved > 0, "{r:?}");
    let rack: HashMap<&str, &str> = HashMap::from([
        ("dn1", "/r1"),
        ("dn2", "/r2"),
        ("dn3", "/r1"),
        ("dn4", "/r1"),
    ]);
    let report = h.fs.fsck(&Caller::superuser(), "/", "").unwrap();
    for f in &report.files {
        let reps = &f.blocks[0].replicas;
        assert_eq!(reps.len(), 2, "{f:?}");
        let racks: HashSet<&str> = reps.iter().map(|r| rack[r.node_id.as_str()]).collect();
        assert_eq!(racks.len(), 2, "a move lowered the racks of {f:?}");
    }
    assert!(sim.count("dn3") + sim.count("dn4") > 0);
    h.close().await;
}

#[tokio::test]
async fn a_run_is_stopped_by_hand_and_rejects_nothing_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    let r = h.fs.balance(Some(0.1), false).unwrap();
    assert!(r.running);
    let r = h.fs.balance(None, true).unwrap();
    assert!(!r.running);
    assert_eq!(r.outcome, "stopped by an administrator");
    // A new start is a new run.
    assert!(h.fs.balance(Some(0.2), false).unwrap().running);
    h.fs.balance(None, true).unwrap();
    // In safe mode no replica moves: a start is refused, saying so,
    // where the run used to wait, reporting nothing, until it ended.
    h.fs.set_safe_mode(Some(true));
    let err = h.fs.balance(Some(0.1), false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AdminSafeMode, "{err}");
    assert!(err.to_string().contains("balancer"), "{err}");
    assert!(!h.fs.balance(None, false).unwrap().running);
    h.fs.set_safe_mode(Some(false));
    assert!(h.fs.balance(Some(0.1), false).unwrap().running);
    h.close().await;
}
