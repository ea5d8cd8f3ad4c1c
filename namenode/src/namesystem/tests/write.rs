//! The write path: create, complete, leases and their recovery, pipeline
//! recovery.

use super::*;

#[tokio::test]
async fn write_read_delete_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    assert!(
        !h.fs.in_safe_mode(),
        "an empty namespace leaves safe mode at once"
    );
    three_nodes(&h);
    let blocks = h.write("/a/f", 2, 100).await;
    let st = h.fs.get_file_info("/a/f").unwrap();
    assert_eq!(st.length, 2 * 4096 + 100);
    assert!(!st.under_construction);
    let loc =
        h.fs.get_block_locations(
            &GetBlockLocationsRequest {
                path: "/a/f".into(),
                offset: 4000,
                length: 200,
                client_host: "127.0.0.2".into(),
            },
            "",
        )
        .unwrap();
    assert_eq!(loc.blocks.len(), 2);
    assert_eq!(loc.blocks[0].offset, 0);
    assert_eq!(loc.blocks[1].offset, 4096);
    // The reader's own node first, then its rack.
    assert_eq!(loc.blocks[0].locations[0].id, "dn2");
    assert_eq!(loc.blocks[0].locations[1].id, "dn3");
    assert_eq!(loc.blocks[0].locations.len(), 3);

    // Closed files are write-once.
    let err =
        h.fs.add_block(
            AddBlockRequest {
                path: "/a/f".into(),
                client_name: "c1".into(),
                previous: blocks.last().copied(),
                ..Default::default()
            },
            "",
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseExpired);

    h.fs.delete("/a", true).await.unwrap();
    let cmds = h.commands("dn1");
    let deleted: Vec<u64> = cmds
        .iter()
        .filter_map(|c| match c {
            datanode_command::Command::Delete(d) => Some(d.blocks.iter().map(|b| b.id)),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(deleted.len(), 3);
    h.close().await;
}

#[tokio::test]
async fn complete_waits_for_a_finalized_replica_and_leases_exclude() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    h.fs.create(CreateRequest {
        path: "/f".into(),
        client_name: "c1".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let err =
        h.fs.create(CreateRequest {
            path: "/f".into(),
            client_name: "c2".into(),
            overwrite: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseHeld);
    assert!(err.to_string().contains("being written by another client"));
    let lb =
        h.fs.add_block(
            AddBlockRequest {
                path: "/f".into(),
                client_name: "c1".into(),
                ..Default::default()
            },
            "",
        )
        .await
        .unwrap();
    assert_eq!(lb.locations.len(), 3);
    let mut b = lb.block.unwrap();
    b.length = 10;
    // hflush: a reader sees the acknowledged bytes.
    h.fs.fsync(FsyncRequest {
        file_id: 0,
        path: "/f".into(),
        client_name: "c1".into(),
        last_block: Some(ExtendedBlock { length: 7, ..b }),
    })
    .await
    .unwrap();
    let loc =
        h.fs.get_block_locations(
            &GetBlockLocationsRequest {
                path: "/f".into(),
                ..Default::default()
            },
            "",
        )
        .unwrap();
    assert!(loc.under_construction);
    assert_eq!(loc.file_length, 7);
    assert!(loc.blocks[0].under_construction);
    assert_eq!(loc.blocks[0].locations.len(), 3);
    // Attributes carried by the close are checked before anything changes.
    let bad = CompleteRequest {
        file_id: 0,
        path: "/f".into(),
        client_name: "c1".into(),
        last: Some(b),
        attrs: Some(FileAttrs {
            owner: Some(String::new()),
            ..Default::default()
        }),
    };
    let e = h.fs.complete(bad).await.unwrap_err();
    assert!(e.to_string().contains("empty owner"), "{e}");
    let before = h.fs.get_file_info("/f").unwrap();
    assert!(before.under_construction);
    let complete = CompleteRequest {
        file_id: 0,
        path: "/f".into(),
        client_name: "c1".into(),
        last: Some(b),
        attrs: Some(FileAttrs {
            mode: Some(0o100_640),
            owner: Some("alice".into()),
            mtime_ms: Some(1_234_000),
            ..Default::default()
        }),
    };
    assert!(!h.fs.complete(complete.clone()).await.unwrap());
    h.received("dn1", b);
    assert!(h.fs.complete(complete.clone()).await.unwrap());
    // A retry of the same complete is fine.
    assert!(h.fs.complete(complete.clone()).await.unwrap());
    let st = h.fs.get_file_info("/f").unwrap();
    assert_eq!(st.length, 10);
    // Stored in the close's edit: the mode (permission bits only), the
    // owner and the mtime given (not the close's); the group unchanged.
    assert_eq!(
        (st.mode, st.owner.as_str(), st.mtime_ms),
        (0o640, "alice", 1_234_000)
    );
    assert_eq!(st.group, before.group);
    // A retry that finds the file closed without its attributes (as lease
    // recovery closes it) is not told they were stored.
    h.fs.set_attr(SetAttrRequest {
        path: "/f".into(),
        mode: Some(0o600),
        ..Default::default()
    })
    .await
    .unwrap();
    let e = h.fs.complete(complete).await.unwrap_err();
    assert!(e.to_string().contains("without the attributes"), "{e}");
    h.close().await;
}

#[tokio::test]
async fn no_datanodes_error_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    h.fs.create(CreateRequest {
        path: "/f".into(),
        client_name: "c1".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let add = || AddBlockRequest {
        path: "/f".into(),
        client_name: "c1".into(),
        ..Default::default()
    };
    let err = h.fs.add_block(add(), "").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoDatanodes);
    assert!(
        err.to_string().contains("no datanode is registered"),
        "{err}"
    );
    h.register("dn1", "127.0.0.1:1", "");
    let mut req = add();
    req.excluded_nodes = vec!["127.0.0.1:1".into()];
    let err = h.fs.add_block(req, "").await.unwrap_err();
    assert!(
        err.to_string().contains("1 excluded by the client"),
        "{err}"
    );
    // Fewer nodes than the replication: as many as possible.
    let lb = h.fs.add_block(add(), "").await.unwrap();
    assert_eq!(lb.locations.len(), 1);
    h.close().await;
}

/// A namesystem on `dir` with three datanodes and leases of 1 s (soft)
/// and 2 s (hard).
fn short_leases(dir: &std::path::Path) -> Harness {
    let mut cfg = config(dir);
    cfg.lease_soft_limit = Duration::from_secs(1);
    cfg.lease_hard_limit = Duration::from_secs(2);
    let h = Harness::open(cfg);
    three_nodes(&h);
    h
}

/// Lets the hard limit pass and returns the block recovery the namenode
/// then orders (to one of the datanodes).
fn recovery_after_hard_limit(h: &Harness) -> RecoverBlock {
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
    h.fs.create(CreateRequest {
        path: "/f".into(),
        client_name: "gone".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let lb =
        h.fs.add_block(
            AddBlockRequest {
                path: "/f".into(),
                client_name: "gone".into(),
                ..Default::default()
            },
            "",
        )
        .await
        .unwrap();
    let b = lb.block.unwrap();
    // Within the soft limit another client may not recover without force.
    let err =
        h.fs.recover_lease(RecoverLeaseRequest {
            path: "/f".into(),
            client_name: "other".into(),
            force: false,
        })
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
    let st = h.fs.get_file_info("/f").unwrap();
    assert!(!st.under_construction);
    assert_eq!(st.length, 1234);
    assert!(h
        .fs
        .recover_lease(RecoverLeaseRequest {
            path: "/f".into(),
            client_name: "other".into(),
            force: false,
        })
        .await
        .unwrap());
    h.close().await;
}

#[tokio::test]
async fn pipeline_recovery_bumps_generation_stamp() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    h.register("dn4", "127.0.0.4:9101", "/r1");
    h.fs.create(CreateRequest {
        path: "/f".into(),
        client_name: "c1".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let lb =
        h.fs.add_block(
            AddBlockRequest {
                path: "/f".into(),
                client_name: "c1".into(),
                ..Default::default()
            },
            "",
        )
        .await
        .unwrap();
    let b = lb.block.unwrap();
    let nodes: Vec<String> = lb.locations.iter().map(|l| l.id.clone()).collect();
    let gs = h.fs.update_block_for_pipeline("c1", Some(b)).await.unwrap();
    assert!(gs > b.generation_stamp);
    let extra =
        h.fs.get_additional_datanodes(GetAdditionalDatanodesRequest {
            file_id: 0,
            path: "/f".into(),
            client_name: "c1".into(),
            block: Some(b),
            existing_nodes: nodes[1..].to_vec(),
            excluded_nodes: vec![nodes[0].clone()],
            count: 1,
        })
        .unwrap();
    assert_eq!(extra.len(), 1);
    assert!(!nodes.contains(&extra[0].id));
    let mut new_nodes = nodes[1..].to_vec();
    new_nodes.push(extra[0].id.clone());
    let nb = ExtendedBlock {
        id: b.id,
        generation_stamp: gs,
        length: 100,
    };
    h.fs.update_pipeline(UpdatePipelineRequest {
        client_name: "c1".into(),
        old_block: Some(ExtendedBlock { length: 100, ..b }),
        new_block: Some(nb),
        node_ids: new_nodes.clone(),
    })
    .await
    .unwrap();
    // The old stamp is stale now.
    let fin = ExtendedBlock { length: 200, ..nb };
    for n in &new_nodes {
        h.received(n, fin);
    }
    h.received(&nodes[0], ExtendedBlock { length: 200, ..b });
    assert!(h
        .fs
        .complete(CompleteRequest {
            path: "/f".into(),
            client_name: "c1".into(),
            last: Some(fin),
            ..Default::default()
        })
        .await
        .unwrap());
    h.fs.tick(Instant::now());
    let cmds = h.commands(&nodes[0]);
    assert!(
        cmds.iter()
            .any(|c| matches!(c, datanode_command::Command::Delete(d)
            if d.blocks.iter().any(|x| x.id == b.id && x.generation_stamp == b.generation_stamp))),
        "the stale replica is deleted: {cmds:?}"
    );
    let fsck = h.fs.fsck("/f", "").unwrap();
    assert_eq!(fsck.files[0].blocks[0].replicas.len(), 3);
    h.close().await;
}

/// Heartbeats carry each datanode's open transfer connections and its
/// limit: a node at its limit is offered no new block until a heartbeat
/// says it has room again.
#[tokio::test]
async fn a_datanode_at_its_transfer_limit_gets_no_new_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    h.register("dn4", "127.0.0.4:9101", "/r1");
    let beat = |xceivers: u32| h.beat("dn1", xceivers, 4);
    let offered = |i: usize| {
        let path = format!("/load{i}");
        let h = &h;
        async move {
            let (_, lb) =
                h.fs.create_located(
                    CreateRequest {
                        path: path.clone(),
                        client_name: "c1".into(),
                        allocate_block: true,
                        ..Default::default()
                    },
                    "",
                )
                .await
                .unwrap();
            let nodes: Vec<String> = lb.unwrap().locations.iter().map(|l| l.id.clone()).collect();
            assert_eq!(nodes.len(), 3, "{path}: {nodes:?}");
            nodes.contains(&"dn1".to_string())
        }
    };
    beat(4);
    let report = h.fs.cluster_report();
    let dn1 = report
        .datanodes
        .iter()
        .find(|d| d.node.as_ref().is_some_and(|n| n.id == "dn1"))
        .unwrap();
    assert_eq!((dn1.xceivers, dn1.max_xceivers), (4, 4));
    for i in 0..40 {
        assert!(!offered(i).await, "dn1 at its limit was offered /load{i}");
    }
    beat(0);
    let mut again = false;
    for i in 40..140 {
        if offered(i).await {
            again = true;
            break;
        }
    }
    assert!(again, "dn1 was not offered a block after it reported room");
    h.close().await;
}

/// An mtime a client sets while the file is being written (tar sets it
/// before close) is kept by a new block, by a close that carries no mtime
/// of its own, and by lease recovery, instead of their own time.
#[tokio::test]
async fn an_mtime_set_while_writing_survives_blocks_close_and_lease_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let h = short_leases(dir.path());
    const SET: i64 = 1_000_000;
    let set_attrs = |path: &str| SetAttrRequest {
        path: path.into(),
        mode: Some(0o751),
        mtime_ms: Some(SET),
        ..Default::default()
    };
    let add_block = |path: &str, client: &str| AddBlockRequest {
        path: path.into(),
        client_name: client.into(),
        ..Default::default()
    };
    for (path, client) in [("/closed", "c1"), ("/recovered", "gone")] {
        h.fs.create(CreateRequest {
            path: path.into(),
            client_name: client.into(),
            ..Default::default()
        })
        .await
        .unwrap();
        h.fs.set_attr(set_attrs(path)).await.unwrap();
    }

    // Closed by its writer, with a block added after the mtime was set.
    let mut b =
        h.fs.add_block(add_block("/closed", "c1"), "")
            .await
            .unwrap()
            .block
            .unwrap();
    b.length = 10;
    h.received("dn1", b);
    let close = CompleteRequest {
        file_id: 0,
        path: "/closed".into(),
        client_name: "c1".into(),
        last: Some(b),
        attrs: None,
    };
    assert!(h.fs.complete(close).await.unwrap());
    let st = h.fs.get_file_info("/closed").unwrap();
    assert_eq!((st.mtime_ms, st.mode), (SET, 0o751));

    // Closed by lease recovery after its writer went away.
    let b =
        h.fs.add_block(add_block("/recovered", "gone"), "")
            .await
            .unwrap()
            .block
            .unwrap();
    let recover = recovery_after_hard_limit(&h);
    h.fs.commit_block_synchronization(CommitBlockSynchronizationRequest {
        old_block: Some(b),
        new_block: Some(ExtendedBlock {
            id: b.id,
            generation_stamp: recover.new_generation_stamp,
            length: 99,
        }),
        node_ids: vec!["dn1".into(), "dn2".into()],
        delete: false,
    })
    .await
    .unwrap();
    let st = h.fs.get_file_info("/recovered").unwrap();
    assert!(!st.under_construction);
    assert_eq!((st.mtime_ms, st.mode, st.length), (SET, 0o751, 99));

    // Without an mtime set, the close stamps its own time as before.
    h.fs.create(CreateRequest {
        path: "/mode-only".into(),
        client_name: "c1".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let created = h.fs.get_file_info("/mode-only").unwrap().mtime_ms;
    tokio::time::sleep(Duration::from_millis(5)).await;
    h.fs.set_attr(SetAttrRequest {
        path: "/mode-only".into(),
        mode: Some(0o700),
        ..Default::default()
    })
    .await
    .unwrap();
    let close = CompleteRequest {
        file_id: 0,
        path: "/mode-only".into(),
        client_name: "c1".into(),
        last: None,
        attrs: None,
    };
    assert!(h.fs.complete(close).await.unwrap());
    let st = h.fs.get_file_info("/mode-only").unwrap();
    assert_eq!(st.mode, 0o700);
    assert!(st.mtime_ms > created, "{} <= {created}", st.mtime_ms);

    // A change bound to an inode leaves another file at the path alone.
    let id = h.fs.get_file_info("/closed").unwrap().inode;
    let e =
        h.fs.set_attr(SetAttrRequest {
            path: "/mode-only".into(),
            mode: Some(0o777),
            inode: Some(id),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(h.fs.get_file_info("/mode-only").unwrap().mode, 0o700);
    h.close().await;
}

#[tokio::test]
async fn a_writer_names_its_file_by_id_so_renames_do_not_lose_it() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    let st =
        h.fs.create(CreateRequest {
            path: "/d/f".into(),
            client_name: "c1".into(),
            create_parents: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let file_id = st.inode;
    let add = |path: &str, previous: Option<ExtendedBlock>| AddBlockRequest {
        path: path.into(),
        client_name: "c1".into(),
        previous,
        file_id,
        ..Default::default()
    };
    let mut b1 =
        h.fs.add_block(add("/d/f", None), "")
            .await
            .unwrap()
            .block
            .unwrap();
    b1.length = 4096;
    h.received("dn1", b1);

    // Another client renames the directory while the file is written: the
    // writer's calls, still naming the old path, reach the file by its id.
    h.fs.rename("/d", "/e", false).await.unwrap();
    let by_path =
        h.fs.add_block(
            AddBlockRequest {
                file_id: 0,
                ..add("/d/f", Some(b1))
            },
            "",
        )
        .await
        .unwrap_err();
    assert_eq!(by_path.kind(), ErrorKind::NotFound, "{by_path}");
    let mut b2 =
        h.fs.add_block(add("/d/f", Some(b1)), "")
            .await
            .unwrap()
            .block
            .unwrap();
    b2.length = 10;
    h.fs.fsync(FsyncRequest {
        path: "/d/f".into(),
        client_name: "c1".into(),
        last_block: Some(ExtendedBlock { length: 7, ..b2 }),
        file_id,
    })
    .await
    .unwrap();
    assert_eq!(h.fs.get_file_info("/e/f").unwrap().length, 4096 + 7);
    h.received("dn1", b2);
    let close = CompleteRequest {
        path: "/d/f".into(),
        client_name: "c1".into(),
        last: Some(b2),
        file_id,
        ..Default::default()
    };
    assert!(h.fs.complete(close.clone()).await.unwrap());
    // A retry of the close finds the closed file by its id too.
    assert!(h.fs.complete(close).await.unwrap());
    let st = h.fs.get_file_info("/e/f").unwrap();
    assert!(!st.under_construction);
    assert_eq!(st.length, 4096 + 10);

    // A file deleted while it is written: the writer's next call is told
    // so, naming the path it knows and the inode, and a new file created
    // at that path is not taken for it.
    let st =
        h.fs.create(CreateRequest {
            path: "/g".into(),
            client_name: "c1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    h.fs.delete("/g", false).await.unwrap();
    h.fs.create(CreateRequest {
        path: "/g".into(),
        client_name: "c1".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let gone =
        h.fs.add_block(
            AddBlockRequest {
                file_id: st.inode,
                ..add("/g", None)
            },
            "",
        )
        .await
        .unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::NotFound, "{gone}");
    assert!(
        gone.to_string()
            .contains(&format!("/g (inode {}: deleted or replaced", st.inode)),
        "{gone}"
    );
    assert!(h.fs.get_file_info("/g").unwrap().under_construction);
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
    h.fs.create(CreateRequest {
        path: "/f".into(),
        client_name: "gone".into(),
        ..Default::default()
    })
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
        h.fs.recover_lease(RecoverLeaseRequest {
            path: "/f".into(),
            client_name: "admin".into(),
            force: true,
        })
        .await
        .unwrap();
    assert!(!closed, "closed while the last block's datanodes are down");
    let st = h.fs.get_file_info("/f").unwrap();
    assert!(st.under_construction);
    let blocks = h.fs.fsck("/", "").unwrap().files[0].blocks.len();
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

/// A node with room for one more block is given one, not one per
/// allocation until its next heartbeat: blocks allocated to it and not
/// reported yet count against its free space (HDFS's blocksScheduled).
#[tokio::test]
async fn a_node_with_room_for_one_block_is_given_one_until_it_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    let block = h.fs.config().block_size;
    h.fs.register_datanode(RegisterRequest {
        node: Some(DatanodeInfo {
            id: "small".into(),
            address: "127.0.0.9:9101".into(),
            rack: "/r3".into(),
        }),
        storage: Some(StorageReport {
            capacity: 1 << 40,
            used: 0,
            remaining: block + block / 2,
            ..Default::default()
        }),
        cluster_id: String::new(),
    })
    .unwrap();
    let mut on_small = Vec::new();
    for i in 0..6 {
        let path = format!("/f{i}");
        h.fs.create(CreateRequest {
            path: path.clone(),
            client_name: "c1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        let lb =
            h.fs.add_block(
                AddBlockRequest {
                    path,
                    client_name: "c1".into(),
                    ..Default::default()
                },
                "",
            )
            .await
            .unwrap();
        if lb.locations.iter().any(|l| l.id == "small") {
            on_small.push(lb.block.unwrap());
        }
    }
    assert!(
        on_small.len() <= 1,
        "{} blocks placed on a node with room for one",
        on_small.len()
    );
    h.close().await;
}
