//! One port, two protocols: the accept loop hands each connection to the
//! block transfer protocol ([`dfs_proto::xfer`]) when it opens with one of
//! that protocol's operations, and to the gRPC server otherwise (an HTTP/2
//! client opens with its preface, which no operation matches). A block
//! transfer connection carries one call: the operation's module does the
//! work, this one reads the request and sends the answers back as frames.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dfs_proto::accept::Acceptor;
use dfs_proto::defaults;
use dfs_proto::error_kind::ErrorKind;
use dfs_proto::xfer::{self, FrameReader, FrameWriter, Reply};
use dfs_proto::{ReadBlockRequest, ReadBlockResponse, WriteBlockResponse};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tracing::field::Empty;
use tracing::{debug, warn, Instrument, Span};

use crate::error::{Error, Result};
use crate::node::Node;
use crate::{pipeline, reader, zero_copy};

/// How long a new connection may take to send its first bytes before it is
/// handed to the gRPC server as it is.
const FIRST_BYTES_WAIT: Duration = Duration::from_secs(10);
/// How long a reader may take to send its request.
const REQUEST_TIMEOUT: Duration = defaults::RPC_TIMEOUT;
/// How long a refused connection is read from before it is closed.
const REFUSAL_DRAIN: Duration = Duration::from_secs(2);
/// Refusals for want of a transfer slot are logged at most this often.
const BUSY_LOG_EVERY: Duration = Duration::from_secs(1);

/// Accepts connections on `listener` until the node shuts down; gRPC
/// connections go to `grpc` (the server's incoming stream).
pub async fn run(
    listener: TcpListener,
    node: Arc<Node>,
    grpc: mpsc::Sender<io::Result<TcpStream>>,
) {
    let mut acceptor = Acceptor::new(listener);
    loop {
        let (stream, peer) = tokio::select! {
            _ = node.shutdown.cancelled() => return,
            c = acceptor.accept() => c,
        };
        let node = node.clone();
        let grpc = grpc.clone();
        // Tracked, so shutdown also waits for a transfer accepted just
        // before it began.
        let tasks = node.tasks.clone();
        tasks.spawn(async move {
            let op = tokio::select! {
                _ = node.shutdown.cancelled() => return,
                op = xfer::peek_magic(&stream, FIRST_BYTES_WAIT) => op,
            };
            let Some(op) = op else {
                let _ = grpc.send(Ok(stream)).await;
                return;
            };
            if let Err(e) = xfer::set_keepalive(&stream) {
                debug!(node = %peer, error = %e, "cannot set TCP keepalive");
            }
            let mut stream = stream;
            let mut magic = [0u8; 4];
            if stream.read_exact(&mut magic).await.is_err() {
                return;
            }
            let peer = peer.to_string();
            // Held until the transfer ends.
            let Ok(_slot) = node.xceivers.clone().try_acquire_owned() else {
                return refuse_busy(&node, op, stream, &peer).await;
            };
            match op {
                xfer::WRITE_BLOCK => write_block(node, stream, peer).await,
                _ => read_block(node, stream, peer).await,
            }
        });
    }
}

/// Refuses a block transfer because the node serves `--max-xceivers`
/// already: one error frame saying so, which the client takes as this
/// node failing, so it reads another replica or writes elsewhere.
async fn refuse_busy(node: &Node, op: [u8; 4], stream: TcpStream, peer: &str) {
    let limit = node.config.max_xceivers;
    let what = if op == xfer::WRITE_BLOCK {
        "write"
    } else {
        "read"
    };
    // One line a second at most: refusals come in floods.
    let refused = {
        let mut busy = node.busy_refusals.lock();
        busy.0 += 1;
        let due = busy.1.is_none_or(|at| at.elapsed() >= BUSY_LOG_EVERY);
        if due {
            busy.1 = Some(Instant::now());
        }
        due.then(|| std::mem::take(&mut busy.0))
    };
    if let Some(refused) = refused {
        warn!(
            node = %peer,
            limit,
            refused,
            "block {what} refused: this datanode already serves its limit of {limit} block transfers \
             (--max-xceivers); the client goes to another datanode ({refused} refused since the last such line)"
        );
    }
    let status = ErrorKind::Busy.status(format!(
        "datanode {} is busy: it already serves its limit of {limit} block transfers (--max-xceivers)",
        node.address
    ));
    let (mut rd, wr) = stream.into_split();
    let mut out = FrameWriter::new(wr);
    let sent = if op == xfer::WRITE_BLOCK {
        refuse::<WriteBlockResponse>(&mut out, &status).await
    } else {
        refuse::<ReadBlockResponse>(&mut out, &status).await
    };
    if !sent {
        return;
    }
    // The request the client sent with its first bytes is still unread:
    // closing now would reset the connection and could discard the
    // refusal on its way. Read until the client closes (or a moment).
    let drain = async {
        let mut sink = [0u8; 4096];
        while matches!(rd.read(&mut sink).await, Ok(n) if n > 0) {}
    };
    tokio::select! {
        _ = node.shutdown.cancelled() => {}
        _ = tokio::time::timeout(REFUSAL_DRAIN, drain) => {}
    }
}

/// A block write connection: [`pipeline::write_block`] with its answers.
async fn write_block(node: Arc<Node>, stream: TcpStream, peer: String) {
    let span = tracing::info_span!("write_block", block = Empty, client = Empty, node = %peer);
    let (rd, wr) = stream.into_split();
    let upstream = FrameReader::new(rd, format!("upstream {peer}"));
    let timeout = node.config.socket_write_timeout;
    let outcome = pipeline::write_block(node, upstream)
        .instrument(span.clone())
        .await;
    reply(FrameWriter::new(wr), outcome, &span, timeout).await;
}

/// A block read connection: its request, then [`reader::read_block`] with
/// its answers.
async fn read_block(node: Arc<Node>, stream: TcpStream, peer: String) {
    let span = tracing::info_span!("read_block", block = Empty, client = Empty, node = %peer);
    let (rd, wr) = stream.into_split();
    let mut requests = FrameReader::new(rd, format!("reader {peer}"));
    let timeout = node.config.socket_write_timeout;
    let req = tokio::time::timeout(REQUEST_TIMEOUT, requests.message::<ReadBlockRequest>()).await;
    let outcome = match req {
        Ok(Ok(Some(req))) => {
            if !req.client_name.is_empty() {
                span.record("client", req.client_name.as_str());
            }
            reader::read_block(node.clone(), req)
                .instrument(span.clone())
                .await
        }
        Ok(Ok(None)) => return,
        Ok(Err(status)) => Err(Error::invalid(
            0,
            format!("bad ReadBlock request: {}", status.message()),
        )),
        Err(_) => Err(Error::invalid(0, "no ReadBlock request within the timeout")),
    };
    let out = FrameWriter::new(wr);
    match outcome {
        Ok(reader::Answer::FromFile(range)) => {
            zero_copy::send(node, range, out, timeout)
                .instrument(span)
                .await
        }
        Ok(reader::Answer::Messages(answers)) => reply(out, Ok(answers), &span, timeout).await,
        Err(e) => reply::<ReadBlockResponse>(out, Err(e), &span, timeout).await,
    }
}

/// Sends a call's answers back as frames: every message of its stream,
/// or the error that refused or ended it (the last frame), then the end of
/// this side of the connection. A peer that takes no frame within
/// `timeout` is left: the call ends and its transfer slot is free again.
async fn reply<M: Reply>(
    mut out: FrameWriter,
    outcome: Result<ReceiverStream<Result<M, Status>>>,
    span: &Span,
    timeout: Duration,
) {
    let mut answers = match outcome {
        Ok(a) => a.into_inner(),
        Err(e) => {
            refuse::<M>(&mut out, &Status::from(e)).await;
            return;
        }
    };
    while let Some(a) = answers.recv().await {
        let (frame, last) = match a {
            Ok(m) => (m, false),
            Err(status) => (M::refusal(&status), true),
        };
        if !within(timeout, out.send(&frame))
            .instrument(span.clone())
            .await
        {
            return;
        }
        if last {
            break;
        }
    }
    let _ = out.finish().await;
}

/// Sends one frame (`send`) within `timeout`; false, logged, when the
/// peer went away or took no data for that long: the call ends and its
/// transfer slot is free again.
pub(crate) async fn within(timeout: Duration, send: impl Future<Output = io::Result<()>>) -> bool {
    match tokio::time::timeout(timeout, send).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            debug!(error = %e, "the peer went away");
            false
        }
        Err(_) => {
            warn!(
                timeout = ?timeout,
                "the peer took no data for {timeout:?} (--socket-write-timeout); transfer closed and its slot freed"
            );
            false
        }
    }
}

/// Sends `status` as the one (refusal) frame of a call answered with `M`
/// messages, then ends this side; false if the peer went away.
pub(crate) async fn refuse<M: Reply>(out: &mut FrameWriter, status: &Status) -> bool {
    out.send(&M::refusal(status)).await.is_ok() && out.finish().await.is_ok()
}
