//! Namesystem tests: whole write/read/restart cycles against the real
//! store, with datanodes simulated by calling the protocol methods.
//! This module holds the harness; the tests live in its submodules by
//! concern.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dfs_proto::error_kind::ErrorKind;
use dfs_proto::*;

use super::*;
use crate::permission::Caller;

mod balance;
mod deletes;
mod leases;
mod listing;
mod permissions;
mod placement;
mod replication;
mod restart;
mod write;

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
    c.balance_every = Duration::ZERO;
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

    /// Registers a node and processes its (empty) first full block report.
    fn register(&self, id: &str, addr: &str, rack: &str) {
        self.register_only(id, addr, rack);
        self.fs
            .block_report(BlockReportRequest {
                node_id: id.into(),
                ..Default::default()
            })
            .unwrap();
    }

    /// Registers a node that has not sent its full block report yet.
    fn register_only(&self, id: &str, addr: &str, rack: &str) {
        self.fs
            .register_datanode(
                RegisterRequest {
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
                    cluster_id: String::new(),
                },
                false,
            )
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

    /// A heartbeat of `node` with 1 TiB free and `xceivers` of
    /// `max_xceivers` transfer connections open.
    fn beat(&self, node: &str, xceivers: u32, max_xceivers: u32) -> HeartbeatResponse {
        self.fs.heartbeat(HeartbeatRequest {
            node_id: node.into(),
            storage: Some(StorageReport {
                capacity: 1 << 40,
                remaining: 1 << 40,
                ..Default::default()
            }),
            xceivers,
            max_xceivers,
            ..Default::default()
        })
    }

    fn commands(&self, node: &str) -> Vec<datanode_command::Command> {
        self.beat(node, 0, 0)
            .commands
            .into_iter()
            .filter_map(|c| c.command)
            .collect()
    }

    /// The ids of the blocks a heartbeat of `node` now tells it to delete.
    fn deletes(&self, node: &str) -> Vec<u64> {
        self.commands(node)
            .into_iter()
            .flat_map(|c| match c {
                datanode_command::Command::Delete(d) => d.blocks.iter().map(|b| b.id).collect(),
                _ => vec![],
            })
            .collect()
    }

    /// Where every block of `path` is, as the superuser reading from
    /// nowhere in particular sees it.
    fn locations(&self, path: &str) -> GetBlockLocationsResponse {
        self.fs
            .get_block_locations(
                &Caller::superuser(),
                &GetBlockLocationsRequest {
                    path: path.into(),
                    ..Default::default()
                },
                "",
            )
            .unwrap()
    }

    /// Creates `path` for writer `client` and allocates its first block.
    async fn allocate(&self, path: &str, client: &str) -> LocatedBlock {
        self.fs
            .create(
                &Caller::superuser(),
                CreateRequest {
                    path: path.into(),
                    client_name: client.into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        self.fs
            .add_block(
                AddBlockRequest {
                    path: path.into(),
                    client_name: client.into(),
                    ..Default::default()
                },
                "",
            )
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Writes a file of `blocks` full blocks plus `tail` bytes, reporting
    /// every replica, and closes it. Returns its blocks.
    async fn write(&self, path: &str, blocks: usize, tail: u64) -> Vec<ExtendedBlock> {
        self.fs
            .create(
                &Caller::superuser(),
                CreateRequest {
                    path: path.into(),
                    client_name: "c1".into(),
                    create_parents: true,
                    ..Default::default()
                },
            )
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
            .complete(
                &Caller::superuser(),
                CompleteRequest {
                    path: path.into(),
                    client_name: "c1".into(),
                    last: prev,
                    ..Default::default()
                },
            )
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
