//! Opening gRPC channels to the namenode and to datanodes, with bounded
//! connect times, and a per-client cache of datanode channels.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dfs_proto::datanode::DataTransferClient;
use dfs_proto::defaults;
use parking_lot::Mutex;
use tonic::transport::{Channel, Endpoint};

use crate::error::{Error, Result};

/// HTTP/2 flow-control windows: large enough that a 64 KiB packet stream is
/// never throttled by the default 64 KiB window.
const STREAM_WINDOW: u32 = 8 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 32 * 1024 * 1024;

/// An endpoint for `addr` (`host:port`) with the project's client settings.
pub(crate) fn endpoint(addr: &str, connect_timeout: Duration) -> Result<Endpoint> {
    let port = addr
        .rsplit_once(':')
        .map(|(host, port)| (host, port.parse::<u16>()));
    if !matches!(port, Some((host, Ok(p))) if !host.is_empty() && p != 0) {
        return Err(Error::InvalidArgument {
            message: format!("bad server address '{addr}': expected HOST:PORT, the port 1-65535"),
        });
    }
    let ep =
        Endpoint::from_shared(format!("http://{addr}")).map_err(|e| Error::InvalidArgument {
            message: format!("bad server address '{addr}': {e}"),
        })?;
    Ok(ep
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(false)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(dfs_proto::defaults::MAX_FRAME_SIZE))
}

/// Connects to `addr` now, failing within `connect_timeout` with an error
/// that names `role` ("namenode", "datanode") and the address
/// ("cannot reach namenode at 127.0.0.1:9000: ...").
pub(crate) async fn connect(addr: &str, role: &str, connect_timeout: Duration) -> Result<Channel> {
    connect_waiting(addr, role, connect_timeout, Duration::ZERO).await
}

/// [`connect`], retried while the server refuses connections (it is
/// restarting), up to `budget`, as HDFS's client retries a refused
/// connection: a command started while the namenode restarts waits for
/// it, as its calls would.
pub(crate) async fn connect_waiting(
    addr: &str,
    role: &str,
    connect_timeout: Duration,
    budget: Duration,
) -> Result<Channel> {
    let deadline = tokio::time::Instant::now() + budget;
    let mut delay = Duration::from_millis(100);
    let mut told = false;
    loop {
        let ep = endpoint(addr, connect_timeout)?;
        // The endpoint's own timeout covers the TCP connect; this one also
        // covers name resolution and the HTTP/2 handshake.
        let e = match tokio::time::timeout(connect_timeout + Duration::from_secs(1), ep.connect())
            .await
        {
            Ok(Ok(channel)) => return Ok(channel),
            Ok(Err(e)) => e,
            Err(_) => {
                return Err(Error::Unreachable {
                    addr: format!("{role} at {addr}"),
                    message: format!("no connection within {connect_timeout:?}"),
                })
            }
        };
        if !refused(&e) || tokio::time::Instant::now() + delay >= deadline {
            return Err(Error::Unreachable {
                addr: format!("{role} at {addr}"),
                message: deepest_cause(&e),
            });
        }
        if !told {
            tracing::warn!(
                "{role} at {addr} refuses connections; waiting up to {budget:?} for it (is it running?)"
            );
            told = true;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

/// Whether a connection, or a call on it, failed because nothing listens
/// at the address (the request was never sent).
pub(crate) fn refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

/// The innermost cause of an error chain (e.g. "Connection refused").
pub(crate) fn deepest_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    let deepest = cur.to_string();
    let top = e.to_string();
    // "transport error" and "(os error 111)" tell the user nothing.
    let text = if deepest == top || top == "transport error" {
        deepest
    } else {
        format!("{top}: {deepest}")
    };
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_string(),
        _ => text,
    }
}

/// gRPC channels to datanodes, one per address, shared by every caller of
/// a client (HTTP/2 multiplexes their calls: `ReadSmallBlocks`,
/// `TransferReplica`), and which datanodes failed lately. Block data
/// itself goes over the block transfer protocol, a connection per block.
#[derive(Debug, Clone)]
pub(crate) struct DatanodePool {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    /// Nodes that failed a read or write lately, with when: tried last.
    failed: Arc<Mutex<HashMap<String, Instant>>>,
    connect_timeout: Duration,
}

/// How long a node that failed is tried after the others.
const FAILED_MEMORY: Duration = Duration::from_secs(60);

impl DatanodePool {
    pub(crate) fn new(connect_timeout: Duration) -> Self {
        DatanodePool {
            channels: Arc::new(Mutex::new(HashMap::new())),
            failed: Arc::new(Mutex::new(HashMap::new())),
            connect_timeout,
        }
    }

    /// A data transfer client for the datanode at `addr`, connecting if
    /// needed.
    pub(crate) async fn get(&self, addr: &str) -> Result<DataTransferClient<Channel>> {
        let cached = self.channels.lock().get(addr).cloned();
        let channel = match cached {
            Some(c) => c,
            None => {
                let c = connect(addr, "datanode", self.connect_timeout).await?;
                self.channels.lock().insert(addr.to_string(), c.clone());
                c
            }
        };
        Ok(DataTransferClient::new(channel)
            .max_decoding_message_size(defaults::MAX_MESSAGE_SIZE)
            .max_encoding_message_size(defaults::MAX_MESSAGE_SIZE))
    }

    /// How long connecting to a datanode may take.
    pub(crate) fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Forgets the channel to `addr` after a failure, so the next use
    /// connects afresh.
    pub(crate) fn evict(&self, addr: &str) {
        self.channels.lock().remove(addr);
    }

    /// Remembers that `addr` failed, so other replicas are tried first for
    /// a while.
    pub(crate) fn mark_failed(&self, addr: &str) {
        self.evict(addr);
        self.failed.lock().insert(addr.to_string(), Instant::now());
    }

    /// Whether `addr` failed within the last minute.
    pub(crate) fn recently_failed(&self, addr: &str) -> bool {
        let mut failed = self.failed.lock();
        match failed.get(addr) {
            Some(at) if at.elapsed() < FAILED_MEMORY => true,
            Some(_) => {
                failed.remove(addr);
                false
            }
            None => false,
        }
    }
}
