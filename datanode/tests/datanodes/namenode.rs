//! A fake namenode: records what the datanodes tell it and hands out
//! the commands a test queues.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dfs_proto::datanode_command::Command;
use dfs_proto::namenode::{DatanodeProtocol, DatanodeProtocolServer};
use dfs_proto::*;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use super::*;

#[derive(Default)]
pub(crate) struct NnState {
    pub(crate) registered: Vec<RegisterRequest>,
    pub(crate) heartbeats: Vec<HeartbeatRequest>,
    pub(crate) full_reports: Vec<BlockReportRequest>,
    pub(crate) received: Vec<(String, ReplicaReport)>,
    pub(crate) deleted: Vec<(String, ExtendedBlock)>,
    pub(crate) commits: Vec<CommitBlockSynchronizationRequest>,
    pub(crate) commands: HashMap<String, Vec<DatanodeCommand>>,
}

#[derive(Clone, Default)]
pub(crate) struct FakeNamenode(pub(crate) Arc<Mutex<NnState>>);

#[tonic::async_trait]
impl DatanodeProtocol for FakeNamenode {
    async fn register(
        &self,
        r: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        self.0.lock().registered.push(r.into_inner());
        Ok(Response::new(RegisterResponse {
            default_block_size: 1024 * 1024,
            cluster_id: "CID-test".into(),
        }))
    }
    async fn heartbeat(
        &self,
        r: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let r = r.into_inner();
        let mut st = self.0.lock();
        let commands = st.commands.remove(&r.node_id).unwrap_or_default();
        st.heartbeats.push(r);
        Ok(Response::new(HeartbeatResponse {
            commands,
            ..Default::default()
        }))
    }
    async fn block_report(
        &self,
        r: Request<BlockReportRequest>,
    ) -> Result<Response<BlockReportResponse>, Status> {
        self.0.lock().full_reports.push(r.into_inner());
        Ok(Response::new(BlockReportResponse {}))
    }
    async fn incremental_block_report(
        &self,
        r: Request<IncrementalBlockReportRequest>,
    ) -> Result<Response<IncrementalBlockReportResponse>, Status> {
        let r = r.into_inner();
        let mut st = self.0.lock();
        for rep in r.received {
            st.received.push((r.node_id.clone(), rep));
        }
        for b in r.deleted {
            st.deleted.push((r.node_id.clone(), b));
        }
        Ok(Response::new(IncrementalBlockReportResponse {}))
    }
    async fn commit_block_synchronization(
        &self,
        r: Request<CommitBlockSynchronizationRequest>,
    ) -> Result<Response<CommitBlockSynchronizationResponse>, Status> {
        self.0.lock().commits.push(r.into_inner());
        Ok(Response::new(CommitBlockSynchronizationResponse {}))
    }
}

impl FakeNamenode {
    pub(crate) async fn start() -> (FakeNamenode, String) {
        let nn = FakeNamenode::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let svc = DatanodeProtocolServer::new(nn.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming(TcpIncoming::from(listener)),
        );
        (nn, addr)
    }

    pub(crate) fn command(&self, node: &TestNode, cmd: Command) {
        self.0
            .lock()
            .commands
            .entry(node.id.clone())
            .or_default()
            .push(DatanodeCommand { command: Some(cmd) });
    }

    pub(crate) async fn wait(&self, what: &str, f: impl Fn(&NnState) -> bool) {
        for _ in 0..200 {
            if f(&self.0.lock()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what}");
    }

    pub(crate) fn received(&self, node: &TestNode, id: u64, state: ReplicaState) -> bool {
        received(&self.0.lock(), node, id, state)
    }
}

pub(crate) fn received(s: &NnState, node: &TestNode, id: u64, state: ReplicaState) -> bool {
    s.received.iter().any(|(n, r)| {
        n == &node.id && r.state == state as i32 && r.block.as_ref().map(|b| b.id) == Some(id)
    })
}
