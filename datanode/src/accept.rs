//! One port, two protocols: the accept loop hands each connection to the
//! block transfer protocol ([`dfs_proto::xfer`]) when it opens with that
//! protocol's magic, and to the gRPC server otherwise (an HTTP/2 client
//! opens with its preface, which no magic matches).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use dfs_proto::xfer;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::node::Node;
use crate::pipeline;

/// How long a new connection may take to send its first bytes before it is
/// handed to the gRPC server as it is.
const FIRST_BYTES_WAIT: Duration = Duration::from_secs(10);
/// Pause after a failed accept (out of file descriptors, say) so the loop
/// does not spin.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Accepts connections on `listener` until the node shuts down; gRPC
/// connections go to `grpc` (the server's incoming stream).
pub async fn run(
    listener: TcpListener,
    node: Arc<Node>,
    grpc: mpsc::Sender<io::Result<TcpStream>>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = node.shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, "cannot accept a connection; retrying");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            },
        };
        if let Err(e) = stream.set_nodelay(true) {
            debug!(node = %peer, error = %e, "cannot set TCP_NODELAY");
        }
        let node = node.clone();
        let grpc = grpc.clone();
        tokio::spawn(async move {
            match xfer::peek_magic(&stream, FIRST_BYTES_WAIT).await {
                Some(xfer::WRITE_BLOCK) => {
                    let mut stream = stream;
                    let mut magic = [0u8; 4];
                    if stream.read_exact(&mut magic).await.is_ok() {
                        node.tasks
                            .spawn(pipeline::serve(node.clone(), stream, peer.to_string()));
                    }
                }
                _ => {
                    let _ = grpc.send(Ok(stream)).await;
                }
            }
        });
    }
}
