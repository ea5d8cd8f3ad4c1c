//! Restarts and block reports: the namespace kept, safe mode, reports in
//! parts.

use super::*;

#[tokio::test]
async fn restart_keeps_namespace_and_enters_safe_mode() {
    let dir = tempfile::tempdir().unwrap();
    let blocks;
    {
        let h = Harness::open(config(dir.path()));
        three_nodes(&h);
        blocks = h.write("/d/f", 1, 1).await;
        h.fs.mkdirs(
            &Caller::superuser(),
            MkdirsRequest {
                path: "/empty".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        h.fs.rename(&Caller::superuser(), "/d/f", "/d/g", false)
            .await
            .unwrap();
        h.fs.create(
            &Caller::superuser(),
            CreateRequest {
                path: "/open".into(),
                client_name: "writer".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        h.close().await;
    }
    let h = Harness::open(config(dir.path()));
    assert!(h.fs.in_safe_mode());
    assert_eq!(
        h.fs.get_file_info(&Caller::superuser(), "/d/g")
            .unwrap()
            .length,
        4097
    );
    assert!(h.fs.get_file_info(&Caller::superuser(), "/d/f").is_err());
    assert!(
        h.fs.get_file_info(&Caller::superuser(), "/open")
            .unwrap()
            .under_construction
    );
    let err =
        h.fs.mkdirs(
            &Caller::superuser(),
            MkdirsRequest {
                path: "/x".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SafeMode);
    assert!(err.to_string().contains("0 of 2 blocks"), "{err}");
    // Heartbeats from unknown nodes ask them to register.
    assert!(
        h.fs.heartbeat(HeartbeatRequest {
            node_id: "dn1".into(),
            ..Default::default()
        })
        .reregister
    );
    three_nodes(&h);
    h.fs.block_report(BlockReportRequest {
        node_id: "dn1".into(),
        replicas: blocks
            .iter()
            .map(|b| ReplicaReport {
                block: Some(*b),
                state: ReplicaState::Finalized as i32,
            })
            .chain(std::iter::once(ReplicaReport {
                block: Some(ExtendedBlock {
                    id: 999,
                    generation_stamp: 1,
                    length: 5,
                }),
                state: ReplicaState::Finalized as i32,
            }))
            .collect(),
        ..Default::default()
    })
    .unwrap();
    assert!(!h.fs.in_safe_mode());
    // The orphan replica is deleted.
    let cmds = h.commands("dn1");
    assert!(cmds.iter().any(|c| matches!(c, datanode_command::Command::Delete(d) if d.blocks.iter().any(|b| b.id == 999))));
    // The writer's lease survived the restart.
    let err =
        h.fs.create(
            &Caller::superuser(),
            CreateRequest {
                path: "/open".into(),
                client_name: "other".into(),
                overwrite: true,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseHeld);
    h.close().await;
}

#[tokio::test]
async fn a_block_report_in_parts_drops_only_what_no_part_names() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    let blocks = h.write("/f", 3, 0).await;
    let holders = |h: &Harness| -> Vec<usize> {
        h.fs.fsck(&Caller::superuser(), "/", "").unwrap().files[0]
            .blocks
            .iter()
            .map(|b| b.replicas.iter().filter(|r| r.node_id == "dn1").count())
            .collect()
    };
    assert_eq!(holders(&h), vec![1, 1, 1]);
    let part = |id: u64, part: u32, bs: &[ExtendedBlock]| BlockReportRequest {
        node_id: "dn1".into(),
        replicas: bs
            .iter()
            .map(|b| ReplicaReport {
                block: Some(*b),
                state: ReplicaState::Finalized as i32,
            })
            .collect(),
        report_id: id,
        part,
        parts: 3,
    };
    // Parts 0 and 1 name blocks 0 and 1; nothing is dropped before the last.
    h.fs.block_report(part(7, 0, &blocks[..1])).unwrap();
    h.fs.block_report(part(7, 1, &blocks[1..2])).unwrap();
    assert_eq!(holders(&h), vec![1, 1, 1]);
    // A part out of order (or of another report) is refused, and the
    // report must start again.
    let err = h.fs.block_report(part(8, 2, &[])).unwrap_err();
    assert!(err.to_string().contains("does not follow"), "{err}");
    let err = h.fs.block_report(part(7, 2, &[])).unwrap_err();
    assert!(err.to_string().contains("does not follow"), "{err}");
    let err = h.fs.block_report(part(7, 3, &[])).unwrap_err();
    assert!(err.to_string().contains("part 3 of 3"), "{err}");
    // A whole report: block 2 is in no part, so dn1 no longer holds it.
    h.fs.block_report(part(9, 0, &blocks[..1])).unwrap();
    h.fs.block_report(part(9, 1, &blocks[1..2])).unwrap();
    h.fs.block_report(part(9, 2, &[])).unwrap();
    assert_eq!(holders(&h), vec![1, 1, 0]);
    h.close().await;
}

#[tokio::test]
async fn no_replica_is_deleted_in_safe_mode() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    let blocks = h.write("/f", 1, 0).await;
    let (on, status) = h.fs.set_safe_mode(Some(true));
    assert!(on && status.contains("administrator"), "{status}");
    let orphan = ExtendedBlock {
        id: 999,
        generation_stamp: 1,
        length: 5,
    };
    h.fs.block_report(BlockReportRequest {
        node_id: "dn1".into(),
        replicas: [blocks[0], orphan]
            .iter()
            .map(|b| ReplicaReport {
                block: Some(*b),
                state: ReplicaState::Finalized as i32,
            })
            .collect(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(h.deletes("dn1"), Vec::<u64>::new());
    assert_eq!(h.deletes("dn1"), Vec::<u64>::new());
    // Once it is left, the orphan's deletion is handed out.
    assert_eq!(h.fs.set_safe_mode(Some(false)), (false, String::new()));
    assert_eq!(h.deletes("dn1"), vec![999]);
    h.close().await;
}

/// Deletions held in safe mode, then the nodes restart and report the
/// replicas again: those replicas must not be counted, or the trim after
/// safe mode would delete the one kept as well.
#[tokio::test]
async fn a_replica_reported_while_its_deletion_is_held_is_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    let block = h.write("/f", 1, 0).await[0];
    h.fs.set_replication(&Caller::superuser(), "/f", 1)
        .await
        .unwrap();
    h.fs.tick(Instant::now());
    let holders = |h: &Harness| -> Vec<String> {
        h.fs.fsck(&Caller::superuser(), "/", "").unwrap().files[0].blocks[0]
            .replicas
            .iter()
            .map(|r| r.node_id.clone())
            .collect()
    };
    let kept = holders(&h);
    assert_eq!(kept.len(), 1, "{kept:?}");
    h.fs.set_safe_mode(Some(true));
    for node in ["dn1", "dn2", "dn3"] {
        h.fs.block_report(BlockReportRequest {
            node_id: node.into(),
            replicas: vec![ReplicaReport {
                block: Some(block),
                state: ReplicaState::Finalized as i32,
            }],
            ..Default::default()
        })
        .unwrap();
    }
    assert_eq!(
        holders(&h),
        kept,
        "replicas queued for deletion were counted"
    );
    h.fs.set_safe_mode(Some(false));
    h.fs.tick(Instant::now());
    for node in ["dn1", "dn2", "dn3"] {
        let deleted = h.deletes(node);
        if kept[0] == node {
            assert!(deleted.is_empty(), "the kept replica on {node} was deleted");
        } else {
            assert_eq!(deleted, vec![block.id], "{node}");
        }
    }
    h.close().await;
}

/// A block allocation retried after a restart (its answer was lost) gets
/// the same block while its datanodes are registered, and a new block on
/// the nodes that are here when they are not: never a block without one.
#[tokio::test]
async fn a_retried_allocation_after_a_restart_never_gets_a_block_without_datanodes() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second);
    {
        let h = Harness::open(config(dir.path()));
        three_nodes(&h);
        first = h.allocate("/f", "w").await.block.unwrap();
        let mut written = first;
        written.length = 4096;
        for n in ["dn1", "dn2", "dn3"] {
            h.received(n, written);
        }
        let next = AddBlockRequest {
            path: "/f".into(),
            client_name: "w".into(),
            previous: Some(written),
            ..Default::default()
        };
        second = h.fs.add_block(next.clone(), "").await.unwrap();
        // Retried before a restart: the same block.
        let again = h.fs.add_block(next, "").await.unwrap();
        assert_eq!(again.block, second.block);
        assert_eq!(again.locations.len(), 3);
        h.close().await;
    }
    let h = Harness::open(config(dir.path()));
    // dn1 reports the first block, which ends safe mode; the pipeline's
    // other two nodes have not registered yet, and a new node has.
    let mut written = first;
    written.length = 4096;
    h.register_only("dn1", "127.0.0.1:9101", "/r1");
    h.fs.block_report(BlockReportRequest {
        node_id: "dn1".into(),
        replicas: vec![ReplicaReport {
            block: Some(written),
            state: ReplicaState::Finalized as i32,
        }],
        ..Default::default()
    })
    .unwrap();
    h.register("dn4", "127.0.0.4:9101", "/r3");
    assert!(!h.fs.in_safe_mode());
    let retry = AddBlockRequest {
        path: "/f".into(),
        client_name: "w".into(),
        previous: Some(written),
        ..Default::default()
    };
    let got = h.fs.add_block(retry.clone(), "").await.unwrap();
    let old = second.block.unwrap();
    let new = got.block.unwrap();
    assert_ne!(
        new.id, old.id,
        "the unregistered pipeline's block is replaced"
    );
    assert_eq!(got.offset, 4096);
    let mut ids: Vec<_> = got.locations.iter().map(|l| l.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["dn1", "dn4"]);
    // The file holds the first block and the new one; the old is gone.
    let blocks: Vec<u64> = h
        .locations("/f")
        .blocks
        .iter()
        .filter_map(|b| b.block.map(|b| b.id))
        .chain(
            h.locations("/f")
                .last_block
                .and_then(|b| b.block)
                .map(|b| b.id),
        )
        .collect();
    assert!(!blocks.contains(&old.id), "{blocks:?}");
    assert!(blocks.contains(&new.id), "{blocks:?}");
    // With its datanodes here, a further retry gets that same new block.
    let again = h.fs.add_block(retry.clone(), "").await.unwrap();
    assert_eq!(again.block.map(|b| b.id), Some(new.id));
    // A retry that excludes one of them (its setup failed, and so did the
    // abandon) gets a block without it.
    h.register("dn5", "127.0.0.5:9101", "/r3");
    let mut excluding = retry;
    excluding.excluded_nodes = vec!["127.0.0.4:9101".into()];
    let other = h.fs.add_block(excluding, "").await.unwrap();
    assert_ne!(other.block.map(|b| b.id), Some(new.id));
    assert!(other.locations.iter().all(|l| l.id != "dn4"), "{other:?}");
    h.close().await;
}
