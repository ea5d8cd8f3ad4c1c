//! Leases and their recovery: the hard limit, a forced recovery, and a
//! last block whose datanodes are down.

use super::*;

/// A namesystem on `dir` with three datanodes and leases of 1 s (soft)
/// and 2 s (hard).
pub(super) fn short_leases(dir: &std::path::Path) -> Harness {
    let mut cfg = config(dir);
    cfg.lease_soft_limit = Duration::from_secs(1);
    cfg.lease_hard_limit = Duration::from_secs(2);
    let h = Harness::open(cfg);
    three_nodes(&h);
    h
}

/// Lets the hard limit pass and returns the block recovery the namenode
/// then orders (to one of the datanodes).
pub(super) fn recovery_after_hard_limit(h: &Harness) -> RecoverBlock {
    h.fs.tick(Instant::now() + Duration::from_secs(3));
    ["dn1", "dn2", "dn3"]
        .into_iter()
        .flat_map(|n| h.commands(n))
        .find_map(|c| match c {
            datanode_command::Command::Recover(r) => Some(r),
            _ => None,
        })
        .expect("a block recovery was ordered")
}

#[tokio::test]
async fn lease_recovery_after_hard_limit() {
    let dir = tempfile::tempdir().unwrap();
    let h = short_leases(dir.path());
    let lb = h.allocate("/f", "gone").await;
    let b = lb.block.unwrap();
    // Within the soft limit another client may not recover without force.
    let err =
        h.fs.recover_lease(
            &Caller::superuser(),
            RecoverLeaseRequest {
                path: "/f".into(),
                client_name: "other".into(),
                force: false,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseHeld);
    let r = recovery_after_hard_limit(&h);
    assert!(r.new_generation_stamp > b.generation_stamp);
    assert_eq!(r.replicas.len(), 3);
    // The old writer lost its lease.
    let err =
        h.fs.fsync(FsyncRequest {
            file_id: 0,
            path: "/f".into(),
            client_name: "gone".into(),
            last_block: Some(b),
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseExpired);
    let new = ExtendedBlock {
        id: b.id,
        generation_stamp: r.new_generation_stamp,
        length: 1234,
    };
    h.fs.commit_block_synchronization(CommitBlockSynchronizationRequest {
        old_block: Some(b),
        new_block: Some(new),
        node_ids: vec!["dn1".into(), "dn2".into()],
        delete: false,
    })
    .await
    .unwrap();
    let st = h.fs.get_file_info(&Caller::superuser(), "/f").unwrap();
    assert!(!st.under_construction);
    assert_eq!(st.length, 1234);
    assert!(h
        .fs
        .recover_lease(
            &Caller::superuser(),
            RecoverLeaseRequest {
                path: "/f".into(),
                client_name: "other".into(),
                force: false,
            }
        )
        .await
        .unwrap());
    h.close().await;
}

/// A writer dies and so do the datanodes of its last block: lease
/// recovery waits for one of them instead of dropping the block (it may
/// hold bytes they acknowledged; the namenode knows no length without an
/// fsync), and recovers it when a node returns. Before, the file was
/// closed without the block and the returning replicas deleted as orphans.
#[tokio::test]
async fn lease_recovery_waits_for_the_dead_datanodes_of_the_last_block() {
    let dir = tempfile::tempdir().unwrap();
    let h = short_leases(dir.path());
    h.register("dn4", "127.0.0.4:9101", "/r1");
    h.fs.create(
        &Caller::superuser(),
        CreateRequest {
            path: "/f".into(),
            client_name: "gone".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let lb =
        h.fs.add_block(
            AddBlockRequest {
                path: "/f".into(),
                client_name: "gone".into(),
                excluded_nodes: vec!["dn4".into()],
                ..Default::default()
            },
            "",
        )
        .await
        .unwrap();
    let b = lb.block.unwrap();
    // The pipeline's nodes (dn1-dn3) die: only dn4 keeps heartbeating.
    let later = Instant::now() + Duration::from_secs(11);
    {
        let mut st = h.fs.state.write();
        let idx = st.dns.lookup("dn4").unwrap();
        st.dns.get_mut(idx).last_heartbeat = later;
    }
    h.fs.tick(later);
    let closed =
        h.fs.recover_lease(
            &Caller::superuser(),
            RecoverLeaseRequest {
                path: "/f".into(),
                client_name: "admin".into(),
                force: true,
            },
        )
        .await
        .unwrap();
    assert!(!closed, "closed while the last block's datanodes are down");
    let st = h.fs.get_file_info(&Caller::superuser(), "/f").unwrap();
    assert!(st.under_construction);
    let blocks = h.fs.fsck(&Caller::superuser(), "/", "").unwrap().files[0]
        .blocks
        .len();
    assert_eq!(blocks, 1, "the last block was dropped");
    // dn1 comes back: the monitor orders the block recovery from it.
    h.register("dn1", "127.0.0.1:9101", "/r1");
    let retry = later + Duration::from_secs(60);
    {
        let mut st = h.fs.state.write();
        let idx = st.dns.lookup("dn1").unwrap();
        st.dns.get_mut(idx).last_heartbeat = retry;
    }
    h.fs.tick(retry);
    let ordered = h.commands("dn1").into_iter().any(|c| {
        matches!(c, datanode_command::Command::Recover(r) if r.block.is_some_and(|x| x.id == b.id))
    });
    assert!(ordered, "no block recovery ordered from the returning node");
    h.close().await;
}

#[tokio::test]
async fn a_create_replaces_a_file_whose_writer_is_past_the_soft_limit() {
    let dir = tempfile::tempdir().unwrap();
    let h = short_leases(dir.path());
    let lb = h.allocate("/f", "gone").await;
    let old_id =
        h.fs.get_file_info(&Caller::superuser(), "/f")
            .unwrap()
            .inode;
    let replace = |client: &str| CreateRequest {
        path: "/f".into(),
        client_name: client.into(),
        overwrite: true,
        ..Default::default()
    };
    // Within the soft limit the writer may still be alive: refused, saying when.
    let err =
        h.fs.create(&Caller::superuser(), replace("c2"))
            .await
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseHeld);
    assert!(
        err.to_string()
            .contains("it may be replaced once the writer has not renewed it for 1s"),
        "{err}"
    );
    // A create without overwrite is refused whatever the lease's age.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut keep = replace("c2");
    keep.overwrite = false;
    let err = h.fs.create(&Caller::superuser(), keep).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    // Past the soft limit the file is replaced; its writer lost it.
    let st =
        h.fs.create(&Caller::superuser(), replace("c2"))
            .await
            .unwrap();
    assert_ne!(st.inode, old_id);
    assert!(st.under_construction);
    let err =
        h.fs.add_block(
            AddBlockRequest {
                path: "/f".into(),
                client_name: "gone".into(),
                file_id: old_id,
                previous: lb.block,
                ..Default::default()
            },
            "",
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    // The new writer holds the file; the lease manager knows only it.
    h.fs.complete(
        &Caller::superuser(),
        CompleteRequest {
            path: "/f".into(),
            client_name: "c2".into(),
            file_id: st.inode,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let st = h.fs.get_file_info(&Caller::superuser(), "/f").unwrap();
    assert!(!st.under_construction);
    assert_eq!(h.fs.state.read().leases.file_count(), 0);
    h.close().await;
}
