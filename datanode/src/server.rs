//! The `DataTransfer` gRPC service: a thin layer that opens a span per call
//! and hands the work to the module that owns it. (Block data, written and
//! read, travels over the block transfer protocol instead: see
//! [`crate::accept`].)

use std::sync::Arc;

use dfs_proto::datanode::DataTransfer;
use dfs_proto::{
    GetReplicaVisibleLengthRequest, GetReplicaVisibleLengthResponse, InitReplicaRecoveryRequest,
    InitReplicaRecoveryResponse, PingRequest, PingResponse, ReadSmallBlocksRequest,
    ReadSmallBlocksResponse, TransferReplicaRequest, TransferReplicaResponse,
    UpdateReplicaUnderRecoveryRequest, UpdateReplicaUnderRecoveryResponse,
};
use tonic::{Request, Response, Status};
use tracing::field::Empty;
use tracing::Instrument;

use crate::node::Node;
use crate::reader;
use crate::{recovery, transfer};

/// The DataTransfer service of one datanode.
#[derive(Debug, Clone)]
pub struct DataTransferService {
    node: Arc<Node>,
}

impl DataTransferService {
    /// The service over a running node.
    pub fn new(node: Arc<Node>) -> Self {
        DataTransferService { node }
    }
}

fn peer<T>(req: &Request<T>) -> String {
    req.remote_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|| "unknown".to_string())
}

macro_rules! call_span {
    ($name:literal, $req:expr) => {
        tracing::info_span!($name, block = Empty, client = Empty, node = %peer(&$req))
    };
}

#[tonic::async_trait]
impl DataTransfer for DataTransferService {
    async fn read_small_blocks(
        &self,
        req: Request<ReadSmallBlocksRequest>,
    ) -> Result<Response<ReadSmallBlocksResponse>, Status> {
        let span = call_span!("read_small_blocks", req);
        let req = req.into_inner();
        if !req.client_name.is_empty() {
            span.record("client", req.client_name.as_str());
        }
        reader::read_small_blocks(self.node.clone(), req)
            .instrument(span)
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn transfer_replica(
        &self,
        req: Request<TransferReplicaRequest>,
    ) -> Result<Response<TransferReplicaResponse>, Status> {
        let span = call_span!("transfer_replica", req);
        let req = req.into_inner();
        span.record("client", req.client_name.as_str());
        transfer::transfer_replica(self.node.clone(), req)
            .instrument(span)
            .await
            .map(|()| Response::new(TransferReplicaResponse {}))
            .map_err(Status::from)
    }

    async fn init_replica_recovery(
        &self,
        req: Request<InitReplicaRecoveryRequest>,
    ) -> Result<Response<InitReplicaRecoveryResponse>, Status> {
        let span = call_span!("init_replica_recovery", req);
        recovery::init_replica_recovery(self.node.clone(), req.into_inner())
            .instrument(span)
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn update_replica_under_recovery(
        &self,
        req: Request<UpdateReplicaUnderRecoveryRequest>,
    ) -> Result<Response<UpdateReplicaUnderRecoveryResponse>, Status> {
        let span = call_span!("update_replica_under_recovery", req);
        recovery::update_replica_under_recovery(self.node.clone(), req.into_inner())
            .instrument(span)
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn get_replica_visible_length(
        &self,
        req: Request<GetReplicaVisibleLengthRequest>,
    ) -> Result<Response<GetReplicaVisibleLengthResponse>, Status> {
        let span = call_span!("get_replica_visible_length", req);
        reader::visible_length(self.node.clone(), req.into_inner())
            .instrument(span)
            .await
            .map(|length| Response::new(GetReplicaVisibleLengthResponse { length }))
            .map_err(Status::from)
    }

    async fn ping(&self, _req: Request<PingRequest>) -> Result<Response<PingResponse>, Status> {
        Ok(Response::new(PingResponse {
            node_id: self.node.id().to_string(),
        }))
    }
}
