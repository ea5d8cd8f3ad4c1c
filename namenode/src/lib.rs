//! The dfs namenode: it owns the namespace (an edit log with group commit
//! and a sled image), the block map, the datanode manager, replica
//! placement, the replication monitor, leases and safe mode, and serves
//! ClientProtocol and DatanodeProtocol on one gRPC listener.
//!
//! ```no_run
//! # async fn demo() -> dfs_namenode::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|source| {
//!     dfs_namenode::Error::Io { context: "bind".into(), source }
//! })?;
//! let config = dfs_namenode::Config::new("/tmp/nn");
//! dfs_namenode::run(listener, config, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

pub mod balancer;
pub mod blocks;
pub mod config;
pub mod datanodes;
pub mod decommissions;
pub mod edits;
pub mod error;
pub mod leases;
pub mod namespace;
pub mod namesystem;
pub mod permission;
pub mod placement;
pub mod replication;
pub mod retry_cache;
pub mod safemode;
pub mod server;
pub mod store;
pub mod topology;

use std::future::Future;
use std::sync::Arc;

use dfs_proto::defaults;
use dfs_proto::namenode::{ClientProtocolServer, DatanodeProtocolServer};

pub use config::{Args, Config};
pub use error::{Error, Result};
pub use namesystem::Namesystem;

/// Loads the namespace from `config.data_dir` and serves both namenode
/// protocols on `listener` until `shutdown` completes; then stops the
/// background tasks and flushes the store.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    config.validate().map_err(Error::invalid)?;
    let addr = listener.local_addr().map_err(|source| Error::Io {
        context: "cannot read the listener's address".into(),
        source,
    })?;
    let fs = Arc::new(Namesystem::open(config)?);
    let flusher = tokio::spawn(fs.store().clone().run_flusher());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let monitor = {
        let fs = fs.clone();
        let mut rx = stop_rx.clone();
        tokio::spawn(fs.run_monitor(async move {
            let _ = rx.wait_for(|v| *v).await;
        }))
    };
    let svc = server::NamenodeService::new(fs.clone());
    let client = ClientProtocolServer::new(svc.clone())
        .max_decoding_message_size(defaults::MAX_MESSAGE_SIZE)
        .max_encoding_message_size(defaults::MAX_MESSAGE_SIZE);
    let datanode = DatanodeProtocolServer::new(svc)
        .max_decoding_message_size(defaults::MAX_MESSAGE_SIZE)
        .max_encoding_message_size(defaults::MAX_MESSAGE_SIZE);
    tracing::info!(
        data = %fs.config().data_dir.display(),
        block_size = fs.config().block_size,
        replication = fs.config().replication,
        "listening on {addr}"
    );
    // Small replies (a status, then the trailers in a second write) must
    // not wait for Nagle's algorithm (that cost 40 ms per call), and a
    // failed accept must not spin (tonic's own loop retries at once).
    let incoming = futures::stream::unfold(
        dfs_proto::accept::Acceptor::new(listener),
        |mut acceptor| async move {
            let (stream, _) = acceptor.accept().await;
            Some((Ok::<_, std::io::Error>(stream), acceptor))
        },
    );
    // A failed store stops the namenode, as HDFS terminates when it cannot
    // write its edit log: edits are applied in memory before they are
    // durable, so the namespace served from then on could show changes
    // that a restart will not have (a refused mkdir listed, say).
    let store = fs.store().clone();
    let shutdown = async move {
        tokio::select! {
            () = shutdown => {}
            reason = store.wait_failed() => {
                tracing::error!(error = %reason,
                    "stopping: the namespace in memory may hold changes that are not on disk; a restart loads every acknowledged one");
            }
        }
    };
    let served = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .add_service(client)
        .add_service(datanode)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await;
    let _ = stop_tx.send(true);
    let _ = monitor.await;
    fs.store().close();
    let _ = flusher.await;
    let store = fs.store().clone();
    match tokio::task::spawn_blocking(move || store.checkpoint()).await {
        Ok(r) => r?,
        Err(e) => {
            return Err(Error::StoreFailed {
                message: format!("final checkpoint task failed: {e}"),
            })
        }
    }
    // Stopped by a failure (whose final checkpoint may still succeed:
    // it merges only what was durable): not a clean stop.
    fs.store().check()?;
    tracing::info!("namenode stopped; metadata flushed and merged into the image");
    served.map_err(Error::from)
}
