//! The dfs datanode: stores checksummed block replicas on local disk, takes
//! part in write pipelines, serves verified reads, and follows the
//! namenode's orders (delete, copy, recover) received in heartbeat replies.
//!
//! [`run`] is the whole node: it opens the data directory, starts the
//! background tasks (heartbeats and block reports, incremental reports, the
//! block scanner) and serves, on one already-bound listener, the
//! `DataTransfer` gRPC service and the block transfer protocol until the
//! shutdown future completes.
//!
//! Modules, one concept each:
//! * [`meta`], the `.meta` checksum file format;
//! * [`block_store`], replicas on disk (layout, writes, finalize, reads,
//!   corruption, recovery);
//! * [`accept`], one port for gRPC and block transfer connections;
//! * [`pipeline`], `WriteBlock`, the pipelined write;
//! * [`reader`], `ReadBlock`, and [`zero_copy`], its long reads of
//!   finalized replicas sent straight from the file;
//! * [`transfer`], copying a replica to other nodes;
//! * [`recovery`], replica and block recovery;
//! * [`heartbeat`], the namenode link and command execution;
//! * [`scanner`], background re-verification;
//! * [`server`], the gRPC service.

pub mod accept;
pub mod block_store;
pub mod config;
pub mod error;
pub mod heartbeat;
pub mod meta;
pub mod net;
pub mod node;
pub mod page_cache;
pub mod pipeline;
pub mod reader;
pub mod recovery;
pub mod reports;
pub mod scanner;
pub mod server;
pub mod transfer;
pub mod zero_copy;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use dfs_proto::datanode::DataTransferServer;
use dfs_proto::defaults;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Server;
use tracing::{info, warn};

pub use crate::config::{Args, Config};
pub use crate::error::{Error, Result};

use crate::block_store::BlockStore;
use crate::node::Node;
use crate::server::DataTransferService;

/// How long shutdown waits for pipelines and transfers to wind down.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs a datanode on `listener` until `shutdown` completes. The node
/// advertises the listener's address.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("cannot read the listening address", e))?;
    let data_dir = config.data_dir.clone();
    let reserved = config.reserved;
    let store = tokio::task::spawn_blocking(move || BlockStore::open(&data_dir, reserved))
        .await
        .map_err(|e| Error::TaskFailed {
            task: "open the data directory",
            reason: e.to_string(),
        })??;
    store.limit_capacity(config.capacity);
    if let Some(f) = store.check_storage() {
        warn!(reason = %f, "storage failed at start: refusing writes");
    }
    let namenode = net::namenode_client(&config.namenode)?;
    let node = Arc::new(Node::new(
        config,
        addr.to_string(),
        Arc::new(store),
        namenode,
    ));
    info!(
        node_id = %node.id(),
        rack = %node.config.rack,
        data = %node.config.data_dir.display(),
        namenode = %node.config.namenode,
        "datanode started"
    );
    let background = [
        tokio::spawn(heartbeat::run(node.clone())),
        tokio::spawn(heartbeat::report_loop(node.clone())),
        tokio::spawn(scanner::run(node.clone())),
    ];
    let service = DataTransferServer::new(DataTransferService::new(node.clone()))
        .max_decoding_message_size(defaults::MAX_MESSAGE_SIZE)
        .max_encoding_message_size(defaults::MAX_MESSAGE_SIZE);
    let (grpc_tx, grpc_rx) = mpsc::channel(64);
    let acceptor = tokio::spawn(accept::run(listener, node.clone(), grpc_tx));
    let incoming = ReceiverStream::new(grpc_rx);
    let token = node.shutdown.clone();
    let stop = async move {
        tokio::select! {
            _ = shutdown => {}
            _ = token.cancelled() => {}
        }
        token.cancel();
    };
    info!("listening on {addr}");
    let served = Server::builder()
        .initial_stream_window_size(net::STREAM_WINDOW)
        .initial_connection_window_size(net::CONNECTION_WINDOW)
        .max_frame_size(dfs_proto::defaults::MAX_FRAME_SIZE)
        .http2_keepalive_interval(Some(net::KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(net::KEEPALIVE_TIMEOUT))
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, stop)
        .await;
    node.shutdown.cancel();
    let _ = acceptor.await;
    node.tasks.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, node.tasks.wait())
        .await
        .is_err()
    {
        warn!("some transfers did not stop in time");
    }
    for task in background {
        let _ = task.await;
    }
    info!("datanode stopped");
    served.map_err(Error::Serve)
}
