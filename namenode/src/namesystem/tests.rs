//! Namesystem tests: whole write/read/restart cycles against the real
//! store, with datanodes simulated by calling the protocol methods.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dfs_proto::error_kind::ErrorKind;
use dfs_proto::*;

use super::*;

struct Harness {
    fs: Arc<Namesystem>,
    flusher: tokio::task::JoinHandle<()>,
}

fn config(dir: &std::path::Path) -> Config {
    let mut c = Config::new(dir);
    c.block_size = 4096;
    c.replication = 3;
    c.safemode_extension = Duration::ZERO;
    c.stale_after = Duration::from_secs(3);
    c.dead_after = Duration::from_secs(10);
    c.heartbeat_interval = Duration::from_secs(1);
    c
}

impl Harness {
    fn open(cfg: Config) -> Harness {
        let fs = Arc::new(Namesystem::open(cfg).unwrap());
        // No start-up grace for copies in these tests.
        fs.state.write().replication_ready_at = Instant::now();
        let flusher = tokio::spawn(fs.store().clone().run_flusher());
        Harness { fs, flusher }
    }

    async fn close(self) {
        self.fs.store().close();
        self.flusher.await.unwrap();
    }

    fn register(&self, id: &str, addr: &str, rack: &str) {
        self.fs
            .register_datanode(RegisterRequest {
                node: Some(DatanodeInfo {
                    id: id.into(),
                    address: addr.into(),
                    rack: rack.into(),
                }),
                storage: Some(StorageReport {
                    capacity: 1 << 40,
                    used: 0,
                    remaining: 1 << 40,
                    ..Default::default()
                }),
            })
            .unwrap();
    }

    fn received(&self, node: &str, block: ExtendedBlock) {
        self.fs
            .incremental_block_report(IncrementalBlockReportRequest {
                node_id: node.into(),
                received: vec![ReplicaReport {
                    block: Some(block),
                    state: ReplicaState::Finalized as i32,
                }],
                deleted: vec![],
            })
            .unwrap();
    }

    fn commands(&self, node: &str) -> Vec<datanode_command::Command> {
        self.fs
            .heartbeat(HeartbeatRequest {
                node_id: node.into(),
                storage: Some(StorageReport {
                    capacity: 1 << 40,
                    remaining: 1 << 40,
                    ..Default::default()
                }),
                active_transfers: 0,
            })
            .commands
            .into_iter()
            .filter_map(|c| c.command)
            .collect()
    }

    /// Writes a file of `blocks` full blocks plus `tail` bytes, reporting
    /// every replica, and closes it. Returns its blocks.
    async fn write(&self, path: &str, blocks: usize, tail: u64) -> Vec<ExtendedBlock> {
        self.fs
            .create(CreateRequest {
                path: path.into(),
                client_name: "c1".into(),
                create_parents: true,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut prev: Option<ExtendedBlock> = None;
        let mut out = Vec::new();
        let n = blocks + usize::from(tail > 0);
        for i in 0..n {
            let lb = self
                .fs
                .add_block(
                    AddBlockRequest {
                        path: path.into(),
                        client_name: "c1".into(),
                        previous: prev,
                        ..Default::default()
                    },
                    "10.9.9.9",
                )
                .await
                .unwrap();
            let mut b = lb.block.unwrap();
            b.length = if i < blocks { 4096 } else { tail };
            for loc in &lb.locations {
                self.received(&loc.id, b);
            }
            out.push(b);
            prev = Some(b);
        }
        let done = self
            .fs
            .complete(CompleteRequest {
                path: path.into(),
                client_name: "c1".into(),
                last: prev,
            })
            .await
            .unwrap();
        assert!(done);
        out
    }
}

fn three_nodes(h: &Harness) {
    h.register("dn1", "127.0.0.1:9101", "/r1");
    h.register("dn2", "127.0.0.2:9101", "/r2");
    h.register("dn3", "127.0.0.3:9101", "/r2");
}

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
    let complete = CompleteRequest {
        path: "/f".into(),
        client_name: "c1".into(),
        last: Some(b),
    };
    assert!(!h.fs.complete(complete.clone()).await.unwrap());
    h.received("dn1", b);
    assert!(h.fs.complete(complete.clone()).await.unwrap());
    // A retry of the same complete is fine.
    assert!(h.fs.complete(complete).await.unwrap());
    assert_eq!(h.fs.get_file_info("/f").unwrap().length, 10);
    h.close().await;
}

#[tokio::test]
async fn restart_keeps_namespace_and_enters_safe_mode() {
    let dir = tempfile::tempdir().unwrap();
    let blocks;
    {
        let h = Harness::open(config(dir.path()));
        three_nodes(&h);
        blocks = h.write("/d/f", 1, 1).await;
        h.fs.mkdirs(MkdirsRequest {
            path: "/empty".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        h.fs.rename("/d/f", "/d/g", false).await.unwrap();
        h.fs.create(CreateRequest {
            path: "/open".into(),
            client_name: "writer".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        h.close().await;
    }
    let h = Harness::open(config(dir.path()));
    assert!(h.fs.in_safe_mode());
    assert_eq!(h.fs.get_file_info("/d/g").unwrap().length, 4097);
    assert!(h.fs.get_file_info("/d/f").is_err());
    assert!(h.fs.get_file_info("/open").unwrap().under_construction);
    let err =
        h.fs.mkdirs(MkdirsRequest {
            path: "/x".into(),
            ..Default::default()
        })
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
        h.fs.create(CreateRequest {
            path: "/open".into(),
            client_name: "other".into(),
            overwrite: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseHeld);
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

#[tokio::test]
async fn dead_node_blocks_are_re_replicated_and_extra_replicas_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    h.register("dn4", "127.0.0.4:9101", "/r1");
    let blocks = h.write("/f", 1, 0).await;
    let b = blocks[0];
    let holders: Vec<String> = h.fs.fsck("/", "").unwrap().files[0].blocks[0]
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
    let fsck = h.fs.fsck("/", "").unwrap();
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
    let fsck = h.fs.fsck("/", "").unwrap();
    assert_eq!((fsck.under_replicated, fsck.missing), (0, 0));
    // The dead node comes back with its replica: one too many, trimmed.
    h.register(&lost, &format!("{lost}-addr:1"), "/r9");
    h.received(&lost, b);
    h.fs.tick(Instant::now());
    let fsck = h.fs.fsck("/", "").unwrap();
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
    let fsck = h.fs.fsck("/f", "").unwrap();
    let bad = fsck.files[0].blocks[0].replicas[0].node_id.clone();
    h.fs.report_bad_blocks(ReportBadBlocksRequest {
        replicas: vec![BadReplica {
            block: Some(b),
            node_id: bad.clone(),
            reason: "checksum mismatch".into(),
        }],
    })
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
async fn lease_recovery_after_hard_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.lease_soft_limit = Duration::from_secs(1);
    cfg.lease_hard_limit = Duration::from_secs(2);
    let h = Harness::open(cfg);
    three_nodes(&h);
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
    h.fs.tick(Instant::now() + Duration::from_secs(3));
    let mut recover = None;
    for n in ["dn1", "dn2", "dn3"] {
        for c in h.commands(n) {
            if let datanode_command::Command::Recover(r) = c {
                recover = Some(r);
            }
        }
    }
    let r = recover.expect("a block recovery was ordered");
    assert!(r.new_generation_stamp > b.generation_stamp);
    assert_eq!(r.replicas.len(), 3);
    // The old writer lost its lease.
    let err =
        h.fs.fsync(FsyncRequest {
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

#[tokio::test]
async fn decommission_drains_then_reports_decommissioned() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    h.register("dn4", "127.0.0.4:9101", "/r1");
    let b = h.write("/f", 1, 0).await[0];
    let holder = h.fs.fsck("/", "").unwrap().files[0].blocks[0].replicas[0]
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
    let loc =
        h.fs.get_block_locations(
            &GetBlockLocationsRequest {
                path: "/f".into(),
                ..Default::default()
            },
            "",
        )
        .unwrap();
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
    h.fs.set_replication("/f", 1).await.unwrap();
    h.fs.tick(Instant::now());
    let fsck = h.fs.fsck("/f", "").unwrap();
    assert_eq!(fsck.files[0].blocks[0].replicas.len(), 1);
    h.fs.set_replication("/f", 2).await.unwrap();
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
    let fsck = h.fs.fsck("/f", "").unwrap();
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
    let beat = |n: &str| {
        h.fs.heartbeat(HeartbeatRequest {
            node_id: n.into(),
            storage: Some(StorageReport {
                capacity: 1 << 40,
                remaining: 1 << 40,
                ..Default::default()
            }),
            active_transfers: 0,
        })
    };
    assert_eq!(beat("dn4").next_heartbeat_ms, 0, "nothing to copy yet");
    h.fs.set_replication("/f", 4).await.unwrap();
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
    let holders: Vec<String> = h.fs.fsck("/", "").unwrap().files[0].blocks[0]
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

#[tokio::test]
async fn a_block_report_in_parts_drops_only_what_no_part_names() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    let blocks = h.write("/f", 3, 0).await;
    let holders = |h: &Harness| -> Vec<usize> {
        h.fs.fsck("/", "").unwrap().files[0]
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
async fn block_locations_are_listed_a_bounded_number_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    let blocks = h.write("/f", 3, 0).await;
    {
        let st = h.fs.state.read();
        let req = |offset: u64| GetBlockLocationsRequest {
            path: "/f".into(),
            offset,
            length: 0,
            client_host: String::new(),
        };
        let first = st
            .block_locations_at_most(&req(0), "", Instant::now(), 2)
            .unwrap();
        assert_eq!(first.file_length, 3 * 4096);
        let ids: Vec<u64> = first.blocks.iter().map(|b| b.block.unwrap().id).collect();
        assert_eq!(ids, vec![blocks[0].id, blocks[1].id]);
        // Asking again from where the list ended gives the rest.
        let rest = st
            .block_locations_at_most(&req(2 * 4096), "", Instant::now(), 2)
            .unwrap();
        let ids: Vec<u64> = rest.blocks.iter().map(|b| b.block.unwrap().id).collect();
        assert_eq!(ids, vec![blocks[2].id]);
        assert_eq!(rest.blocks[0].offset, 2 * 4096);
    }
    h.close().await;
}

#[tokio::test]
async fn fsck_pages_add_up_to_the_whole_tree() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    for i in 0..4 {
        h.write(&format!("/d{}/f{i}", i % 2), 2, 0).await;
    }
    let whole = h.fs.fsck("/", "").unwrap();
    assert!(!whole.has_more);
    assert_eq!((whole.total_files, whole.total_blocks), (4, 8));
    for (inodes, blocks) in [(1, 100), (2, 100), (100, 2), (3, 3)] {
        let st = h.fs.state.read();
        let (mut files, mut dirs, mut nblocks, mut paths) = (0, 0, 0, Vec::new());
        let mut after = String::new();
        loop {
            let page = st
                .fsck_page("/", &after, inodes, blocks, Instant::now())
                .unwrap();
            files += page.total_files;
            dirs += page.total_dirs;
            nblocks += page.total_blocks;
            paths.extend(page.files.iter().map(|f| f.path.clone()));
            if !page.has_more {
                break;
            }
            assert!(!page.next_after.is_empty());
            after = page.next_after;
        }
        assert_eq!(
            (files, dirs, nblocks),
            (4, 3, 8),
            "pages of {inodes}/{blocks}"
        );
        let whole_paths: Vec<String> = whole.files.iter().map(|f| f.path.clone()).collect();
        assert_eq!(paths, whole_paths);
    }
    let err = h.fs.fsck("/d0", "/d1/f1").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    h.close().await;
}
