//! The write path: create, add a block, fsync, complete, abandon, pipeline
//! recovery, and writers that name their file by id.

use super::leases::{recovery_after_hard_limit, short_leases};
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
    let st = h.fs.get_file_info(&Caller::superuser(), "/a/f").unwrap();
    assert_eq!(st.length, 2 * 4096 + 100);
    assert!(!st.under_construction);
    let loc =
        h.fs.get_block_locations(
            &Caller::superuser(),
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

    h.fs.delete(&Caller::superuser(), "/a", true, EntryKind::Any)
        .await
        .unwrap();
    assert_eq!(h.deletes("dn1").len(), 3);
    h.close().await;
}

#[tokio::test]
async fn complete_waits_for_a_finalized_replica_and_leases_exclude() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    h.fs.create(
        &Caller::superuser(),
        CreateRequest {
            path: "/f".into(),
            client_name: "c1".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let err =
        h.fs.create(
            &Caller::superuser(),
            CreateRequest {
                path: "/f".into(),
                client_name: "c2".into(),
                overwrite: true,
                ..Default::default()
            },
        )
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
    let loc = h.locations("/f");
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
    let e = h.fs.complete(&Caller::superuser(), bad).await.unwrap_err();
    assert!(e.to_string().contains("empty owner"), "{e}");
    let before = h.fs.get_file_info(&Caller::superuser(), "/f").unwrap();
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
    assert!(!h
        .fs
        .complete(&Caller::superuser(), complete.clone())
        .await
        .unwrap());
    h.received("dn1", b);
    assert!(h
        .fs
        .complete(&Caller::superuser(), complete.clone())
        .await
        .unwrap());
    // A retry of the same complete is fine.
    assert!(h
        .fs
        .complete(&Caller::superuser(), complete.clone())
        .await
        .unwrap());
    let st = h.fs.get_file_info(&Caller::superuser(), "/f").unwrap();
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
    h.fs.set_attr(
        &Caller::superuser(),
        SetAttrRequest {
            path: "/f".into(),
            mode: Some(0o600),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let e =
        h.fs.complete(&Caller::superuser(), complete)
            .await
            .unwrap_err();
    assert!(e.to_string().contains("without the attributes"), "{e}");
    h.close().await;
}

#[tokio::test]
async fn no_datanodes_error_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    h.fs.create(
        &Caller::superuser(),
        CreateRequest {
            path: "/f".into(),
            client_name: "c1".into(),
            ..Default::default()
        },
    )
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

/// A cluster whose datanodes are all full says so, as `StorageFull`
/// (ENOSPC on the mount), not as a generic lack of nodes: full by their
/// heartbeats, or by the client's word that they refused its block as full.
/// A node the client excluded for another reason, or a dead one, may come
/// back with room: then it is the generic error.
#[tokio::test]
async fn a_full_cluster_is_reported_as_out_of_space() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    h.fs.create(
        &Caller::superuser(),
        CreateRequest {
            path: "/f".into(),
            client_name: "c1".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let add = |excluded: &[&str], full: &[&str]| AddBlockRequest {
        path: "/f".into(),
        client_name: "c1".into(),
        excluded_nodes: excluded.iter().map(|s| s.to_string()).collect(),
        full_nodes: full.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let full = |node: &str| {
        h.fs.heartbeat(HeartbeatRequest {
            node_id: node.into(),
            storage: Some(StorageReport {
                capacity: 1 << 30,
                remaining: 1 << 10,
                full: true,
                ..Default::default()
            }),
            ..Default::default()
        });
    };
    for (id, addr) in [
        ("dn1", "127.0.0.1:1"),
        ("dn2", "127.0.0.1:2"),
        ("dn3", "127.0.0.1:3"),
    ] {
        h.register(id, addr, "");
    }
    full("dn1");
    full("dn2");
    // One node with room: a block, on it alone.
    let lb = h.fs.add_block(add(&[], &[]), "").await.unwrap();
    assert_eq!(lb.locations.len(), 1);
    assert_eq!(lb.locations[0].id, "dn3");
    h.fs.abandon_block(AbandonBlockRequest {
        path: "/f".into(),
        client_name: "c1".into(),
        block: lb.block,
        ..Default::default()
    })
    .await
    .unwrap();
    // The client could not reach the node with room: not a lack of space.
    let err =
        h.fs.add_block(add(&["127.0.0.1:3"], &[]), "")
            .await
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoDatanodes, "{err}");
    // It refused the client's block as full before its heartbeat said so.
    let err =
        h.fs.add_block(add(&["127.0.0.1:3"], &["127.0.0.1:3"]), "")
            .await
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageFull, "{err}");
    full("dn3");
    let err = h.fs.add_block(add(&[], &[]), "").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageFull, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("no space for a new block of /f") && msg.contains("3 full"),
        "{msg}"
    );
    // A fourth node, dead: it may come back with room.
    h.register("dn4", "127.0.0.1:4", "");
    {
        let mut st = h.fs.state.write();
        let idx = st.dns.lookup("dn4").unwrap();
        st.dns.get_mut(idx).dead = true;
    }
    let err = h.fs.add_block(add(&[], &[]), "").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoDatanodes, "{err}");
    h.close().await;
}

#[tokio::test]
async fn pipeline_recovery_bumps_generation_stamp() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    h.register("dn4", "127.0.0.4:9101", "/r1");
    let lb = h.allocate("/f", "c1").await;
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
        .complete(
            &Caller::superuser(),
            CompleteRequest {
                path: "/f".into(),
                client_name: "c1".into(),
                last: Some(fin),
                ..Default::default()
            }
        )
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
    let fsck = h.fs.fsck(&Caller::superuser(), "/f", "").unwrap();
    assert_eq!(fsck.files[0].blocks[0].replicas.len(), 3);
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
        h.fs.create(
            &Caller::superuser(),
            CreateRequest {
                path: path.into(),
                client_name: client.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        h.fs.set_attr(&Caller::superuser(), set_attrs(path))
            .await
            .unwrap();
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
    assert!(h.fs.complete(&Caller::superuser(), close).await.unwrap());
    let st = h.fs.get_file_info(&Caller::superuser(), "/closed").unwrap();
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
    let st =
        h.fs.get_file_info(&Caller::superuser(), "/recovered")
            .unwrap();
    assert!(!st.under_construction);
    assert_eq!((st.mtime_ms, st.mode, st.length), (SET, 0o751, 99));

    // Without an mtime set, the close stamps its own time as before.
    h.fs.create(
        &Caller::superuser(),
        CreateRequest {
            path: "/mode-only".into(),
            client_name: "c1".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let created =
        h.fs.get_file_info(&Caller::superuser(), "/mode-only")
            .unwrap()
            .mtime_ms;
    tokio::time::sleep(Duration::from_millis(5)).await;
    h.fs.set_attr(
        &Caller::superuser(),
        SetAttrRequest {
            path: "/mode-only".into(),
            mode: Some(0o700),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let close = CompleteRequest {
        file_id: 0,
        path: "/mode-only".into(),
        client_name: "c1".into(),
        last: None,
        attrs: None,
    };
    assert!(h.fs.complete(&Caller::superuser(), close).await.unwrap());
    let st =
        h.fs.get_file_info(&Caller::superuser(), "/mode-only")
            .unwrap();
    assert_eq!(st.mode, 0o700);
    assert!(st.mtime_ms > created, "{} <= {created}", st.mtime_ms);

    // A change bound to an inode leaves another file at the path alone.
    let id =
        h.fs.get_file_info(&Caller::superuser(), "/closed")
            .unwrap()
            .inode;
    let e =
        h.fs.set_attr(
            &Caller::superuser(),
            SetAttrRequest {
                path: "/mode-only".into(),
                mode: Some(0o777),
                inode: Some(id),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(
        h.fs.get_file_info(&Caller::superuser(), "/mode-only")
            .unwrap()
            .mode,
        0o700
    );
    h.close().await;
}

#[tokio::test]
async fn a_writer_names_its_file_by_id_so_renames_do_not_lose_it() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    let st =
        h.fs.create(
            &Caller::superuser(),
            CreateRequest {
                path: "/d/f".into(),
                client_name: "c1".into(),
                create_parents: true,
                ..Default::default()
            },
        )
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
    h.fs.rename(&Caller::superuser(), "/d", "/e", false)
        .await
        .unwrap();
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
    assert_eq!(
        h.fs.get_file_info(&Caller::superuser(), "/e/f")
            .unwrap()
            .length,
        4096 + 7
    );
    h.received("dn1", b2);
    let close = CompleteRequest {
        path: "/d/f".into(),
        client_name: "c1".into(),
        last: Some(b2),
        file_id,
        ..Default::default()
    };
    assert!(h
        .fs
        .complete(&Caller::superuser(), close.clone())
        .await
        .unwrap());
    // A retry of the close finds the closed file by its id too.
    assert!(h.fs.complete(&Caller::superuser(), close).await.unwrap());
    let st = h.fs.get_file_info(&Caller::superuser(), "/e/f").unwrap();
    assert!(!st.under_construction);
    assert_eq!(st.length, 4096 + 10);

    // A file deleted while it is written: the writer's next call is told
    // so, naming the path it knows and the inode, and a new file created
    // at that path is not taken for it.
    let st =
        h.fs.create(
            &Caller::superuser(),
            CreateRequest {
                path: "/g".into(),
                client_name: "c1".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    h.fs.delete(&Caller::superuser(), "/g", false, EntryKind::Any)
        .await
        .unwrap();
    h.fs.create(
        &Caller::superuser(),
        CreateRequest {
            path: "/g".into(),
            client_name: "c1".into(),
            ..Default::default()
        },
    )
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
    assert!(
        h.fs.get_file_info(&Caller::superuser(), "/g")
            .unwrap()
            .under_construction
    );
    h.close().await;
}

/// Inode paths (`/.reserved/.inodes/ID[/NAME]`, HDFS's) name an inode
/// wherever it moved, so a client that knows the inode (the mount) acts on
/// it and not on whatever took its old path; a delete that expects a file
/// refuses a directory and the reverse; the rest of `/.reserved` is refused.
#[tokio::test]
async fn inode_paths_follow_renames_and_deletes_check_the_kind() {
    use dfs_proto::path::inode_path;
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    let su = Caller::superuser();
    let mkdir = |path: &str| MkdirsRequest {
        path: path.into(),
        parents: true,
        mode: 0o755,
        ..Default::default()
    };
    h.fs.mkdirs(&su, mkdir("/a/d")).await.unwrap();
    let d = h.fs.get_file_info(&su, "/a/d").unwrap().inode;
    // Another client moves the directory and puts a new one at its path.
    h.fs.rename(&su, "/a", "/b", false).await.unwrap();
    h.fs.mkdirs(&su, mkdir("/a/d")).await.unwrap();
    assert_eq!(
        h.fs.get_file_info(&su, &inode_path(d, None)).unwrap().inode,
        d
    );
    h.fs.mkdirs(&su, mkdir(&inode_path(d, Some("x"))))
        .await
        .unwrap();
    assert!(h.fs.get_file_info(&su, "/b/d/x").is_ok());
    assert!(h.fs.get_file_info(&su, "/a/d/x").is_err());
    h.fs.create(
        &su,
        CreateRequest {
            path: inode_path(d, Some("f")),
            client_name: "c1".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(h.fs.get_file_info(&su, "/b/d/f").is_ok());
    h.fs.rename(
        &su,
        &inode_path(d, Some("f")),
        &inode_path(d, Some("g")),
        false,
    )
    .await
    .unwrap();
    let (entries, _) = h.fs.list_status(&su, &inode_path(d, None), "", 0).unwrap();
    let names: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(names, ["/b/d/g", "/b/d/x"]);
    // unlink of a name that is now a directory, rmdir of one that is a file.
    let x = inode_path(d, Some("x"));
    let err =
        h.fs.delete(&su, &x, false, EntryKind::File)
            .await
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::IsADirectory, "{err}");
    let g = inode_path(d, Some("g"));
    let err =
        h.fs.delete(&su, &g, false, EntryKind::Directory)
            .await
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotADirectory, "{err}");
    h.fs.delete(&su, &x, false, EntryKind::Directory)
        .await
        .unwrap();
    h.fs.delete(&su, &g, false, EntryKind::File).await.unwrap();
    assert!(
        h.fs.get_file_info(&su, "/a/d").is_ok(),
        "the new /a/d was touched"
    );
    // A deleted inode, and the rest of /.reserved.
    h.fs.delete(&su, "/b", true, EntryKind::Any).await.unwrap();
    let err = h.fs.get_file_info(&su, &inode_path(d, None)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    // fsck and lease recovery take inode paths too.
    let e = h.fs.get_file_info(&su, "/a/d").unwrap().inode;
    assert!(h.fs.fsck(&su, &inode_path(e, None), "").is_ok());
    for bad in [
        "/.reserved",
        "/.reserved/x",
        "/.reserved/.inodes/abc/x",
        "//.reserved/.inodes",
        "/.reserved//x",
        "/.reserved/.inodes/1/.reserved",
        "/.reserved/.inodes/1/.reserved/x",
        "/.reserved/.inodes/+1/x",
        "/.reserved/.inodes/01/x",
    ] {
        let err = h.fs.mkdirs(&su, mkdir(bad)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}: {err}");
    }
    h.fs.mkdirs(&su, mkdir("/m")).await.unwrap();
    let err =
        h.fs.rename(&su, "/m", "/.reserved/.inodes/1/.reserved", false)
            .await
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    h.close().await;
}
