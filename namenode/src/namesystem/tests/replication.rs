//! Keeping replication: dead and corrupt replicas, decommission, setrep,
//! the pace of copies and deletes.

use super::*;

#[tokio::test]
async fn dead_node_blocks_are_re_replicated_and_extra_replicas_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    h.register("dn4", "127.0.0.4:9101", "/r1");
    let blocks = h.write("/f", 1, 0).await;
    let b = blocks[0];
    let holders: Vec<String> = h.fs.fsck(&Caller::superuser(), "/", "").unwrap().files[0].blocks[0]
        .replicas
        .iter()
        .map(|r| r.node_id.clone())
        .collect();
    assert_eq!(holders.len(), 3);
    let lost = holders[0].clone();
    // Every node but `lost` keeps heartbeating; then `lost` is declared dead.
    let later = Instant::now() + Duration::from_secs(11);
    for n in ["dn1", "dn2", "dn3", "dn4"] {
        if n != lost {
            let mut st = h.fs.state.write();
            let idx = st.dns.lookup(n).unwrap();
            st.dns.get_mut(idx).last_heartbeat = later;
        }
    }
    h.fs.tick(later);
    let fsck = h.fs.fsck(&Caller::superuser(), "/", "").unwrap();
    assert_eq!(fsck.under_replicated, 1);
    // A surviving holder was told to copy to the spare node.
    let survivors: Vec<&String> = holders.iter().filter(|n| **n != lost).collect();
    let mut transfer = None;
    for s in &survivors {
        for c in h.commands(s) {
            if let datanode_command::Command::Transfer(t) = c {
                transfer = Some(t);
            }
        }
    }
    let t = transfer.expect("a transfer was scheduled");
    assert_eq!(t.block.unwrap().id, b.id);
    assert_eq!(t.targets.len(), 1);
    let target = t.targets[0].id.clone();
    assert!(!holders.contains(&target));
    h.received(&target, b);
    let fsck = h.fs.fsck(&Caller::superuser(), "/", "").unwrap();
    assert_eq!((fsck.under_replicated, fsck.missing), (0, 0));
    // The dead node comes back with its replica: one too many, trimmed.
    h.register(&lost, &format!("{lost}-addr:1"), "/r9");
    h.received(&lost, b);
    h.fs.tick(Instant::now());
    let fsck = h.fs.fsck(&Caller::superuser(), "/", "").unwrap();
    assert_eq!(fsck.files[0].blocks[0].replicas.len(), 3, "{fsck:?}");
    assert_eq!(fsck.over_replicated, 0);
    h.close().await;
}

#[tokio::test]
async fn corrupt_replica_is_replaced_then_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    h.register("dn4", "127.0.0.4:9101", "/r1");
    let b = h.write("/f", 1, 0).await[0];
    let fsck = h.fs.fsck(&Caller::superuser(), "/f", "").unwrap();
    let bad = fsck.files[0].blocks[0].replicas[0].node_id.clone();
    h.fs.report_bad_blocks(ReportBadBlocksRequest {
        replicas: vec![BadReplica {
            block: Some(b),
            node_id: bad.clone(),
            reason: "checksum mismatch".into(),
        }],
    })
    .unwrap();
    let loc = h.locations("/f");
    assert_eq!(loc.blocks[0].locations.len(), 2);
    assert!(loc.blocks[0].locations.iter().all(|l| l.id != bad));
    h.fs.tick(Instant::now());
    let mut target = None;
    for n in ["dn1", "dn2", "dn3", "dn4"] {
        for c in h.commands(n) {
            if let datanode_command::Command::Transfer(t) = c {
                target = Some(t.targets[0].id.clone());
            }
        }
    }
    let target = target.expect("re-replication scheduled");
    h.received(&target, b);
    h.fs.tick(Instant::now());
    let cmds = h.commands(&bad);
    assert!(cmds
        .iter()
        .any(|c| matches!(c, datanode_command::Command::Delete(_))));
    h.close().await;
}

#[tokio::test]
async fn decommission_drains_then_reports_decommissioned() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    h.register("dn4", "127.0.0.4:9101", "/r1");
    let b = h.write("/f", 1, 0).await[0];
    let holder = h.fs.fsck(&Caller::superuser(), "/", "").unwrap().files[0].blocks[0].replicas[0]
        .node_id
        .clone();
    let r = h.fs.decommission(&holder, true).unwrap();
    assert_eq!(r.state, NodeState::Decommissioning as i32);
    h.fs.tick(Instant::now());
    let mut target = None;
    for n in ["dn1", "dn2", "dn3", "dn4"] {
        for c in h.commands(n) {
            if let datanode_command::Command::Transfer(t) = c {
                target = Some(t.targets[0].id.clone());
            }
        }
    }
    let target = target.expect("a copy off the draining node");
    assert_ne!(target, holder);
    // Still readable meanwhile.
    let loc = h.locations("/f");
    assert_eq!(loc.blocks[0].locations.len(), 3);
    assert_eq!(
        loc.blocks[0].locations[2].id, holder,
        "draining nodes are read last"
    );
    h.received(&target, b);
    h.fs.tick(Instant::now());
    let report = h.fs.cluster_report();
    let state = report
        .datanodes
        .iter()
        .find(|d| d.node.as_ref().unwrap().id == holder)
        .unwrap()
        .state;
    assert_eq!(state, NodeState::Decommissioned as i32);
    h.close().await;
}

#[tokio::test]
async fn setrep_adds_and_removes_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    h.register("dn4", "127.0.0.4:9101", "/r1");
    let b = h.write("/f", 1, 0).await[0];
    h.fs.set_replication(&Caller::superuser(), "/f", 1)
        .await
        .unwrap();
    h.fs.tick(Instant::now());
    let fsck = h.fs.fsck(&Caller::superuser(), "/f", "").unwrap();
    assert_eq!(fsck.files[0].blocks[0].replicas.len(), 1);
    h.fs.set_replication(&Caller::superuser(), "/f", 2)
        .await
        .unwrap();
    h.fs.tick(Instant::now());
    let mut copied = false;
    for n in ["dn1", "dn2", "dn3", "dn4"] {
        for c in h.commands(n) {
            if let datanode_command::Command::Transfer(t) = c {
                h.received(&t.targets[0].id, b);
                copied = true;
            }
        }
    }
    assert!(copied);
    let fsck = h.fs.fsck(&Caller::superuser(), "/f", "").unwrap();
    assert_eq!(fsck.files[0].blocks[0].replicas.len(), 2);
    assert_eq!(fsck.under_replicated, 0);
    h.close().await;
}

/// While a copy is in flight, heartbeat replies ask datanodes to come back
/// sooner than their interval; once it lands, they stop asking.
#[tokio::test]
async fn heartbeats_speed_up_while_copies_run() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    h.register("dn4", "127.0.0.4:9101", "/r1");
    let b = h.write("/f", 1, 0).await[0];
    let beat = |n: &str| h.beat(n, 0, 0);
    assert_eq!(beat("dn4").next_heartbeat_ms, 0, "nothing to copy yet");
    h.fs.set_replication(&Caller::superuser(), "/f", 4)
        .await
        .unwrap();
    h.fs.tick(Instant::now());
    let mut target = None;
    for n in ["dn1", "dn2", "dn3", "dn4"] {
        let resp = beat(n);
        assert!(resp.next_heartbeat_ms > 0, "{n}: a copy is in flight");
        for c in resp.commands.into_iter().filter_map(|c| c.command) {
            if let datanode_command::Command::Transfer(t) = c {
                target = Some(t.targets[0].id.clone());
            }
        }
    }
    let target = target.expect("a copy was handed out");
    h.received(&target, b);
    assert_eq!(beat("dn1").next_heartbeat_ms, 0, "the copy landed");
    h.close().await;
}

#[tokio::test]
async fn no_copy_goes_to_a_node_that_still_has_to_delete_the_block() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    let b = h.write("/f", 1, 0).await[0];
    let holders: Vec<String> = h.fs.fsck(&Caller::superuser(), "/", "").unwrap().files[0].blocks[0]
        .replicas
        .iter()
        .map(|r| r.node_id.clone())
        .collect();
    // The only spare node, dn4, holds an old replica of the block whose
    // delete is still queued.
    h.register("dn4", "127.0.0.4:9101", "/r1");
    {
        let mut st = h.fs.state.write();
        let idx = st.dns.lookup("dn4").unwrap();
        let old = ExtendedBlock {
            generation_stamp: b.generation_stamp.saturating_sub(1),
            ..b
        };
        st.dns.queue_delete(idx, old);
    }
    let lost = holders[0].clone();
    let later = Instant::now() + Duration::from_secs(11);
    let keep_alive = |h: &Harness| {
        for n in ["dn1", "dn2", "dn3", "dn4"] {
            if n != lost {
                let mut st = h.fs.state.write();
                let idx = st.dns.lookup(n).unwrap();
                st.dns.get_mut(idx).last_heartbeat = later;
            }
        }
    };
    keep_alive(&h);
    let transfer_targets = |h: &Harness| {
        let mut targets = Vec::new();
        for s in holders.iter().filter(|n| **n != lost) {
            for c in h.commands(s) {
                if let datanode_command::Command::Transfer(t) = c {
                    targets.extend(t.targets.into_iter().map(|n| n.id));
                }
            }
        }
        targets
    };
    h.fs.tick(later);
    assert_eq!(transfer_targets(&h), Vec::<String>::new());
    // Once dn4 has been sent its delete, it may take the new copy.
    assert!(h
        .commands("dn4")
        .iter()
        .any(|c| matches!(c, datanode_command::Command::Delete(_))));
    keep_alive(&h);
    h.fs.tick(later);
    assert_eq!(transfer_targets(&h), vec!["dn4".to_string()]);
    h.close().await;
}

/// A datanode whose replicas belong to another cluster is refused, and
/// nothing of it is recorded; a new one is told the cluster id to keep.
#[tokio::test]
async fn a_datanode_of_another_cluster_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    let req = |cluster_id: &str| RegisterRequest {
        node: Some(DatanodeInfo {
            id: if cluster_id == "CID-other" {
                "dny"
            } else {
                "dnx"
            }
            .into(),
            address: "127.0.0.9:9101".into(),
            rack: "/r1".into(),
        }),
        storage: Some(StorageReport::default()),
        cluster_id: cluster_id.into(),
    };
    let ours = h.fs.register_datanode(req(""), false).unwrap().cluster_id;
    assert!(ours.starts_with("CID-"), "{ours}");
    assert!(h.fs.register_datanode(req(&ours), false).is_ok());
    let e = h.fs.register_datanode(req("CID-other"), false).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("belong to cluster CID-other"), "{text}");
    assert!(text.contains(&ours), "{text}");
    let ids: Vec<String> =
        h.fs.cluster_report()
            .datanodes
            .iter()
            .map(|d| d.node.as_ref().unwrap().id.clone())
            .collect();
    assert_eq!(ids, ["dnx"], "the refused node was recorded");
    h.close().await;
}

/// The state `cluster_report` gives node `id`.
fn node_state(h: &Harness, id: &str) -> i32 {
    h.fs.cluster_report()
        .datanodes
        .iter()
        .find(|d| d.node.as_ref().unwrap().id == id)
        .unwrap()
        .state
}

/// Decommissioning waits until every block has the file's replication on
/// nodes in service (at most the cluster's default): with too few nodes
/// left it stays draining instead of claiming the node can be stopped.
/// The state survives a namenode restart.
#[tokio::test]
async fn decommission_waits_for_full_replication_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let h = Harness::open(config(dir.path()));
        three_nodes(&h);
        h.write("/f", 1, 0).await;
        // Two of three nodes out: one in service cannot hold 3 replicas.
        h.fs.decommission("dn1", true).unwrap();
        h.fs.decommission("dn2", true).unwrap();
        h.fs.tick(Instant::now());
        h.fs.tick(Instant::now());
        let state = |id: &str| node_state(&h, id);
        assert_eq!(state("dn1"), NodeState::Decommissioning as i32);
        assert_eq!(state("dn2"), NodeState::Decommissioning as i32);
        h.fs.decommission("dn2", false).unwrap();
        h.close().await;
    }
    let h = Harness::open(config(dir.path()));
    // Registered, their block reports not in yet: dn1 holds blocks the
    // namenode does not know of, and must not look drained.
    h.register_only("dn1", "127.0.0.1:9101", "/r1");
    h.register_only("dn2", "127.0.0.2:9101", "/r2");
    h.register_only("dn3", "127.0.0.3:9101", "/r2");
    h.fs.tick(Instant::now());
    let state = |id: &str| node_state(&h, id);
    assert_eq!(state("dn1"), NodeState::Decommissioning as i32);
    assert_eq!(state("dn2"), NodeState::Live as i32);
    h.close().await;
}

/// Two datanodes with one node id (a copied data directory): the second
/// is refused while the first is live, and a heartbeat from an address
/// the id is not registered at is told to register; once the first is
/// silent past the stale limit, the second may take the id (a node that
/// moved).
#[tokio::test]
async fn a_node_id_held_by_a_live_node_is_refused_to_another_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.stale_after = Duration::from_millis(400);
    let h = Harness::open(cfg);
    h.register("dn1", "127.0.0.1:9101", "/r1");
    let copy = RegisterRequest {
        node: Some(DatanodeInfo {
            id: "dn1".into(),
            address: "127.0.0.9:9101".into(),
            rack: "/r4".into(),
        }),
        ..Default::default()
    };
    let err = h.fs.register_datanode(copy.clone(), false).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("127.0.0.1:9101") && msg.contains("127.0.0.9:9101"),
        "{msg}"
    );
    let beat = |address: &str| {
        h.fs.heartbeat(HeartbeatRequest {
            node_id: "dn1".into(),
            address: address.into(),
            ..Default::default()
        })
        .reregister
    };
    assert!(beat("127.0.0.9:9101"), "the copy is told to register");
    assert!(!beat("127.0.0.1:9101"));
    assert!(!beat(""), "an old datanode's heartbeat is not checked");
    let report = h.fs.cluster_report().datanodes;
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].node.as_ref().unwrap().address, "127.0.0.1:9101");
    // Nothing answers at the holder's address (the server's probe): the
    // node moved, and the id with it.
    h.fs.register_datanode(copy.clone(), true).unwrap();
    assert!(beat("127.0.0.1:9101"));
    assert!(!beat("127.0.0.9:9101"));
    // Back to the first address, refused again while the other is live;
    // silent past the stale limit, the id may move without a probe.
    let mut back = copy.clone();
    back.node.as_mut().unwrap().address = "127.0.0.1:9101".into();
    assert!(h.fs.register_datanode(back.clone(), false).is_err());
    tokio::time::sleep(Duration::from_millis(500)).await;
    h.fs.register_datanode(back, false).unwrap();
    assert!(!beat("127.0.0.1:9101"));
    h.fs.register_datanode(copy.clone(), false).unwrap_err();
    tokio::time::sleep(Duration::from_millis(500)).await;
    h.fs.register_datanode(copy, false).unwrap();
    assert!(beat("127.0.0.1:9101"));
    assert!(!beat("127.0.0.9:9101"));
    h.close().await;
}
