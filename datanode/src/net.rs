//! Connections to other nodes: datanodes of a pipeline and the namenode.

use std::collections::HashMap;
use std::time::Duration;

use dfs_proto::datanode::DataTransferClient;
use dfs_proto::defaults;
use dfs_proto::namenode::DatanodeProtocolClient;
use dfs_proto::xfer::{self, WriteBlockStream};
use parking_lot::Mutex;
use tonic::transport::{Channel, Endpoint};

use crate::error::{Error, Result};

/// HTTP/2 flow-control window of one stream: room for many 64 KiB packets
/// in flight on a loopback or LAN hop.
pub const STREAM_WINDOW: u32 = 4 * 1024 * 1024;
/// HTTP/2 flow-control window of one connection (shared by the pipelines
/// multiplexed on it).
pub const CONNECTION_WINDOW: u32 = 32 * 1024 * 1024;
/// HTTP/2 keepalive ping interval.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Time without a ping answer after which a connection is dead.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

fn endpoint(addr: &str) -> Result<Endpoint> {
    let ep =
        Endpoint::from_shared(format!("http://{addr}")).map_err(|e| Error::connect(addr, &e))?;
    Ok(ep
        .connect_timeout(defaults::CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(defaults::MAX_FRAME_SIZE))
}

/// Open gRPC channels to other datanodes, one per address, shared by the
/// replica recovery calls (HTTP/2 multiplexes them). Block data goes over
/// the block transfer protocol instead ([`open_write_block`]).
#[derive(Debug, Default)]
pub struct Peers {
    channels: Mutex<HashMap<String, Channel>>,
}

impl Peers {
    /// A client of `addr`'s DataTransfer service over the shared channel,
    /// connecting first if there is none.
    pub async fn get(&self, addr: &str) -> Result<DataTransferClient<Channel>> {
        let cached = self.channels.lock().get(addr).cloned();
        let channel = match cached {
            Some(c) => c,
            None => {
                let c = endpoint(addr)?
                    .connect()
                    .await
                    .map_err(|e| Error::connect(addr, &e))?;
                self.channels.lock().insert(addr.to_string(), c.clone());
                c
            }
        };
        Ok(DataTransferClient::new(channel)
            .max_decoding_message_size(defaults::MAX_MESSAGE_SIZE)
            .max_encoding_message_size(defaults::MAX_MESSAGE_SIZE))
    }

    /// Forgets the channel to `addr` after a failure on it, so the next
    /// use connects afresh.
    pub fn evict(&self, addr: &str) {
        self.channels.lock().remove(addr);
    }
}

/// A client of the namenode's DatanodeProtocol that connects on first use
/// and reconnects by itself; every call times out after the RPC timeout.
pub fn namenode_client(addr: &str) -> Result<DatanodeProtocolClient<Channel>> {
    let channel = endpoint(addr)?
        .timeout(defaults::RPC_TIMEOUT)
        .connect_lazy();
    Ok(DatanodeProtocolClient::new(channel)
        .max_decoding_message_size(defaults::MAX_MESSAGE_SIZE)
        .max_encoding_message_size(defaults::MAX_MESSAGE_SIZE))
}

/// Opens a block write stream to the datanode at `addr` (see
/// [`xfer::open_write_block`]), naming the node when it cannot be reached.
pub async fn open_write_block(addr: &str, queue: usize) -> Result<WriteBlockStream> {
    xfer::open_write_block(addr, queue, defaults::CONNECT_TIMEOUT)
        .await
        .map_err(|e| Error::connect(addr, &e))
}
