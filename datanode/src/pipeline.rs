//! The write pipeline: one `WriteBlock` stream through this node.
//!
//! ```text
//! upstream ──packets──▶ receiver ──▶ writer thread (rbw file)   ──done N──┐
//!                          └──────▶ downstream node ──acks──────────────┐ │
//! upstream ◀──ack N─────────────────────────────────────────── responder ◀┘
//! ```
//!
//! The receiver verifies each packet's checksums, queues it for the local
//! writer and forwards the same bytes downstream; the responder acknowledges
//! seqno N once the local write of N and the downstream ack of N are both
//! in. Every queue is bounded, so a slow disk or a slow successor slows the
//! client down instead of filling memory.

use std::sync::Arc;
use std::time::Duration;

use dfs_proto::checksum;
use dfs_proto::defaults::{self, MAX_PACKETS_IN_FLIGHT, SETUP_ACK_SEQNO};
use dfs_proto::error_kind::ErrorKind;
use dfs_proto::write_block_request::Msg as ReqMsg;
use dfs_proto::write_block_response::Msg as RespMsg;
use dfs_proto::xfer::{FrameReader, SendTask, WriteBlockStream};
use dfs_proto::{
    AckStatus, ExtendedBlock, Packet, PacketAck, PipelineReady, WriteBlockRequest,
    WriteBlockResponse, WriteHeader, WriteStage,
};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tracing::{debug, info, warn, Instrument};

use crate::block_store::{AckedLength, ReplicaState, ReplicaWriter};
use crate::error::{Error, Result};
use crate::net;
use crate::node::Node;

/// The stream of responses of a `WriteBlock` stream.
pub type WriteStream = ReceiverStream<Result<WriteBlockResponse, Status>>;

/// How long the client may take to send the header.
const HEADER_TIMEOUT: Duration = defaults::RPC_TIMEOUT;
/// Time allowed per downstream node to connect and report ready.
const SETUP_TIMEOUT_PER_HOP: Duration = Duration::from_secs(10);
/// How long a finished pipeline waits for its upstream node to close.
const UPSTREAM_DRAIN: Duration = Duration::from_secs(5);
/// Packets queued for the local writer (1 MiB of 64 KiB packets).
const WRITE_QUEUE: usize = 16;
/// Packets queued for the downstream connection.
const DOWNSTREAM_QUEUE: usize = 16;

/// A `statuses` list of `n` nodes where node `i` failed.
pub fn failed_at(i: usize, n: usize) -> Vec<i32> {
    (0..n.max(i + 1))
        .map(|k| {
            if k < i {
                AckStatus::Success
            } else if k == i {
                AckStatus::Error
            } else {
                AckStatus::Unspecified
            }
        } as i32)
        .collect()
}

/// Makes a downstream `statuses` list exactly `n` long; a list that claims
/// no failure where one is expected marks the first node failed.
fn normalize(mut statuses: Vec<i32>, n: usize, expect_failure: bool) -> Vec<i32> {
    statuses.resize(n, AckStatus::Unspecified as i32);
    if expect_failure && statuses.iter().all(|&s| s == AckStatus::Success as i32) {
        return failed_at(0, n);
    }
    statuses
}

fn all_success(statuses: &[i32]) -> bool {
    statuses.iter().all(|&s| s == AckStatus::Success as i32)
}

fn ack(seqno: u64, statuses: Vec<i32>, message: impl Into<String>) -> WriteBlockResponse {
    failed_ack(seqno, statuses, message, String::new())
}

/// An ack reporting a failure of error kind `kind` (the wire name, empty
/// if none), so the client can tell a full node from a broken one.
fn failed_ack(
    seqno: u64,
    statuses: Vec<i32>,
    message: impl Into<String>,
    kind: String,
) -> WriteBlockResponse {
    WriteBlockResponse {
        msg: Some(RespMsg::Ack(PacketAck {
            seqno,
            statuses,
            message: message.into(),
            kind,
        })),
    }
}

/// The connection to the next node of the pipeline.
struct Downstream {
    addr: String,
    tx: mpsc::Sender<WriteBlockRequest>,
    acks: FrameReader,
    /// Writes `tx`'s packets; aborted when the pipeline ends.
    sender: SendTask,
}

/// Why the rest of the pipeline could not be set up.
struct SetupFailure {
    /// One status per downstream node.
    statuses: Vec<i32>,
    message: String,
    /// The error kind of the failure, if known (wire name).
    kind: String,
}

/// Handles a block write stream: reads the header, prepares the local
/// replica, connects the rest of the pipeline and returns the response
/// stream; the packets are then handled by a background task.
pub async fn write_block(node: Arc<Node>, mut upstream: FrameReader) -> Result<WriteStream> {
    let header = match timeout(HEADER_TIMEOUT, upstream.message::<WriteBlockRequest>()).await {
        Ok(Ok(Some(WriteBlockRequest {
            msg: Some(ReqMsg::Header(h)),
        }))) => h,
        Ok(Ok(Some(_))) => {
            return Err(Error::invalid(
                0,
                "the first message of WriteBlock must be a header",
            ))
        }
        Ok(Ok(None)) => {
            return Err(Error::invalid(
                0,
                "WriteBlock stream ended before its header",
            ))
        }
        Ok(Err(status)) => {
            return Err(Error::invalid(
                0,
                format!(
                    "WriteBlock stream failed before its header: {}",
                    status.message()
                ),
            ))
        }
        Err(_) => return Err(Error::invalid(0, "no WriteBlock header within the timeout")),
    };
    let block = header
        .block
        .ok_or_else(|| Error::invalid(0, "write header without a block"))?;
    let span = tracing::Span::current();
    span.record("block", tracing::field::display(&block));
    if !header.client_name.is_empty() {
        span.record("client", header.client_name.as_str());
    }
    if header.targets.len() >= defaults::MAX_REPLICATION as usize {
        return Err(Error::invalid(
            block.id,
            format!(
                "pipeline of {} more nodes is too long",
                header.targets.len()
            ),
        ));
    }
    if let Some(t) = header.targets.iter().find(|t| t.address.is_empty()) {
        return Err(Error::invalid(
            block.id,
            format!("pipeline target '{}' has no address", t.id),
        ));
    }
    if header.targets.iter().any(|t| node.is_me(t)) {
        return Err(Error::invalid(
            block.id,
            "this datanode appears twice in the pipeline",
        ));
    }
    let stage = WriteStage::try_from(header.stage).unwrap_or(WriteStage::Unspecified);
    if stage == WriteStage::Unspecified {
        return Err(Error::invalid(block.id, "write header without a stage"));
    }
    let n_down = header.targets.len();
    let (resp_tx, resp_rx) = mpsc::channel(MAX_PACKETS_IN_FLIGHT + 4);
    // The local replica and the rest of the pipeline are set up at the
    // same time: creating a replica's files waits on the local journal,
    // and done one node after the other it was most of a small file's
    // write latency.
    let local = prepare_local(&node, &header, block, stage);
    let (local, downstream) = if n_down == 0 {
        (local.await, None)
    } else {
        let (l, d) = tokio::join!(local, connect_downstream(&header, &block));
        (l, Some(d))
    };
    // A local failure ends the call; a downstream already connected sees
    // its upstream end before any packet and drops its empty replica.
    let (writer, finalize_as) = local?;
    let downstream = match downstream {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(failure)) => {
            if failure.kind == ErrorKind::StorageFull.as_str() {
                info!(reason = %failure.message, "downstream datanode full; pipeline not set up");
            } else {
                warn!(reason = %failure.message, "pipeline setup failed downstream");
            }
            if stage != WriteStage::Recover {
                let _ = tokio::task::spawn_blocking(move || writer.abandon()).await;
            }
            let mut statuses = vec![AckStatus::Success as i32];
            statuses.extend(failure.statuses);
            let _ = resp_tx.try_send(Ok(failed_ack(
                SETUP_ACK_SEQNO,
                statuses,
                failure.message,
                failure.kind,
            )));
            return Ok(ReceiverStream::new(resp_rx));
        }
    };
    let _ = resp_tx.try_send(Ok(WriteBlockResponse {
        msg: Some(RespMsg::Ready(PipelineReady {})),
    }));
    debug!(
        stage = stage.as_str_name(),
        downstream = n_down,
        "pipeline ready"
    );
    let task = Pipeline {
        node: node.clone(),
        block,
        n_down,
        ack_timeout: defaults::ack_timeout(header.ack_timeout_base_ms, n_down),
        cancel: node.shutdown.child_token(),
    };
    node.tasks.spawn(
        task.run(
            upstream,
            writer,
            finalize_as,
            stage == WriteStage::Create,
            downstream,
            resp_tx,
        )
        .instrument(span),
    );
    Ok(ReceiverStream::new(resp_rx))
}

/// Prepares this node's replica for a pipeline stage: a new replica for
/// `Create`, the existing one cut back to the acknowledged length for
/// `Recover`, a temporary copy for `Replicate`. Returns the writer and the
/// state the replica takes when the last packet is written.
async fn prepare_local(
    node: &Arc<Node>,
    header: &WriteHeader,
    block: ExtendedBlock,
    stage: WriteStage,
) -> Result<(ReplicaWriter, ReplicaState)> {
    let (id, gs) = (block.id, block.generation_stamp);
    match stage {
        WriteStage::Create => {
            let w = node
                .blocking("create replica", move |s| {
                    s.check_writable(true)?;
                    s.create(id, gs, ReplicaState::Rbw)
                })
                .await?;
            Ok((w, ReplicaState::Finalized))
        }
        WriteStage::Recover => {
            let acked = header.bytes_acked;
            let w = node
                .blocking("recover replica", move |s| {
                    s.check_writable(false)?;
                    s.recover(id, gs, acked)
                })
                .await?;
            Ok((w, ReplicaState::Finalized))
        }
        WriteStage::Replicate => {
            let w = node
                .blocking("create copy", move |s| {
                    s.check_writable(true)?;
                    s.create(id, gs, ReplicaState::Temporary)
                })
                .await?;
            // A copy ordered by the namenode (no client) is a new finalized
            // replica; a copy for a client's pipeline recovery stays being
            // written, for the RECOVER stream that follows.
            let into = if header.client_name.is_empty() {
                ReplicaState::Finalized
            } else {
                ReplicaState::Rbw
            };
            Ok((w, into))
        }
        WriteStage::Unspecified => Err(Error::invalid(id, "write header without a stage")),
    }
}

async fn connect_downstream(
    header: &WriteHeader,
    block: &ExtendedBlock,
) -> Result<Downstream, SetupFailure> {
    let n = header.targets.len();
    let next = &header.targets[0];
    let addr = next.address.clone();
    let fail_next = |reason: String, kind: Option<ErrorKind>| SetupFailure {
        statuses: failed_at(0, n),
        message: format!("datanode {addr} could not join the pipeline of {block}: {reason}"),
        kind: kind.map(|k| k.as_str().to_string()).unwrap_or_default(),
    };
    let setup = async {
        let WriteBlockStream {
            requests: tx,
            responses: mut acks,
            sender,
        } = net::open_write_block(&addr, DOWNSTREAM_QUEUE)
            .await
            .map_err(|e| fail_next(e.to_string(), None))?;
        let next_header = WriteHeader {
            block: Some(*block),
            targets: header.targets[1..].to_vec(),
            stage: header.stage,
            client_name: header.client_name.clone(),
            bytes_acked: header.bytes_acked,
            ack_timeout_base_ms: header.ack_timeout_base_ms,
        };
        tx.send(WriteBlockRequest {
            msg: Some(ReqMsg::Header(next_header)),
        })
        .await
        .map_err(|_| fail_next("request stream closed".to_string(), None))?;
        match acks.message::<WriteBlockResponse>().await {
            Ok(Some(WriteBlockResponse {
                msg: Some(RespMsg::Ready(_)),
            })) => Ok(Downstream {
                addr: addr.clone(),
                tx,
                acks,
                sender,
            }),
            Ok(Some(WriteBlockResponse {
                msg: Some(RespMsg::Ack(a)),
            })) => Err(SetupFailure {
                statuses: normalize(a.statuses, n, true),
                message: a.message,
                kind: a.kind,
            }),
            Ok(_) => Err(fail_next(
                "it closed the stream during setup".to_string(),
                None,
            )),
            Err(s) => Err(fail_next(s.message().to_string(), ErrorKind::of(&s))),
        }
    };
    match timeout(SETUP_TIMEOUT_PER_HOP * n as u32, setup).await {
        Ok(r) => r,
        Err(_) => Err(fail_next("timed out".to_string(), None)),
    }
}

/// What the responder must acknowledge next, in seqno order.
enum Pending {
    /// A packet queued for writing and forwarding, ending at block
    /// offset `end`.
    Packet { seqno: u64, end: u64 },
    /// A packet that failed its checksums; the stream ends after its ack.
    BadChecksum { seqno: u64, message: String },
    /// A protocol violation; the stream ends with this status.
    Protocol(Status),
}

/// Outcome of the local write of one packet.
struct LocalDone {
    seqno: u64,
    result: Result<Option<ExtendedBlock>>,
}

struct Pipeline {
    node: Arc<Node>,
    block: ExtendedBlock,
    n_down: usize,
    /// How long to wait for the downstream's ack of a packet before
    /// declaring it failed (shorter than the upstream's wait).
    ack_timeout: Duration,
    cancel: CancellationToken,
}

type RespTx = mpsc::Sender<Result<WriteBlockResponse, Status>>;

impl Pipeline {
    async fn run(
        self,
        mut upstream: FrameReader,
        writer: ReplicaWriter,
        finalize_as: ReplicaState,
        new_replica: bool,
        downstream: Option<Downstream>,
        resp: RespTx,
    ) {
        let (pending_tx, pending_rx) = mpsc::channel(MAX_PACKETS_IN_FLIGHT * 2);
        let (write_tx, write_rx) = mpsc::channel(WRITE_QUEUE);
        let (done_tx, done_rx) = mpsc::channel(MAX_PACKETS_IN_FLIGHT * 2);
        let acked = writer.acked_length();
        let writer_task = tokio::task::spawn_blocking(move || {
            write_loop(writer, write_rx, done_tx, finalize_as, new_replica)
        });
        let (down_tx, down, _sender) = match downstream {
            Some(d) => (Some(d.tx), Some((d.addr, d.acks)), Some(d.sender)),
            None => (None, None, None),
        };
        let this = Arc::new(self);
        let responder = tokio::spawn(
            this.clone()
                .respond(pending_rx, done_rx, down, resp, acked)
                .instrument(tracing::Span::current()),
        );
        this.receive(&mut upstream, pending_tx, write_tx, down_tx)
            .await;
        let _ = responder.await;
        let _ = writer_task.await;
        // The connection closes once the upstream node closed its side (or
        // after a short wait): closing with its packets unread would reset
        // the connection, and a reset can discard a failure ack still on
        // its way, so the upstream node would blame the wrong node.
        let drain = async { while let Ok(Some(_)) = upstream.next_frame().await {} };
        tokio::select! {
            _ = this.node.shutdown.cancelled() => {}
            _ = timeout(UPSTREAM_DRAIN, drain) => {}
        }
    }

    /// Reads packets from upstream, checks them, and hands them to the
    /// writer, the downstream node and the responder.
    async fn receive(
        &self,
        upstream: &mut FrameReader,
        pending: mpsc::Sender<Pending>,
        write: mpsc::Sender<Packet>,
        down: Option<mpsc::Sender<WriteBlockRequest>>,
    ) {
        let mut last_seqno: Option<u64> = None;
        loop {
            let msg = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return,
                m = upstream.message::<WriteBlockRequest>() => m,
            };
            let packet = match msg {
                Ok(Some(WriteBlockRequest {
                    msg: Some(ReqMsg::Packet(p)),
                })) => p,
                Ok(None) => return,
                Ok(Some(_)) => {
                    let st =
                        Error::invalid(self.block.id, "unexpected message after the header").into();
                    let _ = pending.send(Pending::Protocol(st)).await;
                    return;
                }
                Err(status) => {
                    debug!(status = %status.message(), "upstream stream ended with an error");
                    return;
                }
            };
            let seqno = packet.seqno;
            if last_seqno.is_some_and(|l| seqno <= l) {
                let st = Error::invalid(
                    self.block.id,
                    format!("packet seqno {seqno} does not increase"),
                )
                .into();
                let _ = pending.send(Pending::Protocol(st)).await;
                return;
            }
            last_seqno = Some(seqno);
            if let Err(e) = checksum::verify(&packet.data, &packet.checksums) {
                let err = Error::PacketChecksum {
                    block: self.block.id,
                    offset: packet.offset_in_block,
                    source: e,
                };
                warn!(seqno, error = %err, "refusing a packet that fails its checksum");
                let _ = pending
                    .send(Pending::BadChecksum {
                        seqno,
                        message: err.to_string(),
                    })
                    .await;
                return;
            }
            let last = packet.last;
            let end = packet
                .offset_in_block
                .saturating_add(packet.data.len() as u64);
            let forward = down.as_ref().map(|_| WriteBlockRequest {
                msg: Some(ReqMsg::Packet(packet.clone())),
            });
            let step = async {
                pending.send(Pending::Packet { seqno, end }).await.ok()?;
                write.send(packet).await.ok()?;
                if let (Some(tx), Some(req)) = (&down, forward) {
                    tx.send(req).await.ok()?;
                }
                Some(())
            };
            let sent = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => None,
                r = step => r,
            };
            if sent.is_none() || last {
                return;
            }
        }
    }

    /// Acknowledges packets in order once written here and downstream.
    async fn respond(
        self: Arc<Self>,
        mut pending: mpsc::Receiver<Pending>,
        mut done: mpsc::Receiver<LocalDone>,
        mut down: Option<(String, FrameReader)>,
        resp: RespTx,
        acked: AckedLength,
    ) {
        let n = 1 + self.n_down;
        let failure = loop {
            let Some(p) = pending.recv().await else {
                break None;
            };
            let (seqno, end) = match p {
                Pending::Packet { seqno, end } => (seqno, end),
                Pending::BadChecksum { seqno, message } => {
                    let mut statuses = vec![AckStatus::Unspecified as i32; n];
                    statuses[0] = AckStatus::ChecksumError as i32;
                    break Some(ack(seqno, statuses, message));
                }
                Pending::Protocol(status) => {
                    let _ = resp.send(Err(status)).await;
                    break None;
                }
            };
            match done.recv().await {
                Some(LocalDone {
                    seqno: s,
                    result: Ok(finalized),
                }) if s == seqno => {
                    if let Some(b) = finalized {
                        info!(block = %b, bytes = b.length, "replica received");
                        self.node.reporter.finalized(b);
                    }
                }
                Some(LocalDone { result: Err(e), .. }) => {
                    warn!(seqno, error = %e, "local write failed");
                    break Some(failed_ack(
                        seqno,
                        failed_at(0, n),
                        format!("datanode {}: {e}", self.node.address),
                        e.kind().as_str().to_string(),
                    ));
                }
                _ => {
                    break Some(ack(
                        seqno,
                        failed_at(0, n),
                        format!("datanode {}: local writer stopped", self.node.address),
                    ));
                }
            }
            let mut statuses = vec![AckStatus::Success as i32];
            if let Some((addr, acks)) = down.as_mut() {
                let got = tokio::select! {
                    _ = self.cancel.cancelled() => break None,
                    _ = resp.closed() => break None,
                    r = timeout(self.ack_timeout, acks.message::<WriteBlockResponse>()) => r,
                };
                let reason = match got {
                    Ok(Ok(Some(WriteBlockResponse {
                        msg: Some(RespMsg::Ack(a)),
                    }))) if a.seqno == seqno => {
                        let ds = normalize(a.statuses, self.n_down, false);
                        let ok = all_success(&ds);
                        statuses.extend(ds);
                        if !ok {
                            break Some(failed_ack(seqno, statuses, a.message, a.kind));
                        }
                        None
                    }
                    Ok(Ok(Some(WriteBlockResponse {
                        msg: Some(RespMsg::Ack(a)),
                    }))) => Some(format!("acknowledged seqno {} instead of {seqno}", a.seqno)),
                    Ok(Ok(Some(_))) => Some("sent an unexpected message".to_string()),
                    Ok(Ok(None)) => Some("closed the stream".to_string()),
                    Ok(Err(s)) => Some(s.message().to_string()),
                    Err(_) => Some(format!("no ack within {}s", self.ack_timeout.as_secs())),
                };
                if let Some(reason) = reason {
                    warn!(node = %addr, seqno, %reason, "downstream datanode failed");
                    break Some(ack(
                        seqno,
                        failed_at(1, n),
                        format!("downstream datanode {addr} failed: {reason}"),
                    ));
                }
            }
            // Readers may see the bytes before the writer hears of them.
            acked.advance(end);
            if resp.send(Ok(ack(seqno, statuses, ""))).await.is_err() {
                debug!("upstream went away");
                break None;
            }
        };
        if let Some(a) = failure {
            let _ = resp.send(Ok(a)).await;
        }
        // Stops the receiver (a no-op when it already finished).
        self.cancel.cancel();
    }
}

/// The local writer: writes packets in order on a blocking thread and
/// reports each outcome. Stops at the first failure.
fn write_loop(
    writer: ReplicaWriter,
    mut rx: mpsc::Receiver<Packet>,
    done: mpsc::Sender<LocalDone>,
    finalize_as: ReplicaState,
    new_replica: bool,
) {
    let mut writer = Some(writer);
    let mut got_packet = false;
    while let Some(p) = rx.blocking_recv() {
        got_packet = true;
        let result = match writer.as_mut() {
            None => Err(Error::invalid(
                0,
                "packet after the last packet of the block",
            )),
            Some(w) => w
                .write_packet(p.offset_in_block, &p.data, &p.checksums)
                .and_then(|()| if p.sync && !p.last { w.sync() } else { Ok(()) }),
        };
        let result = match result {
            Ok(()) if p.last => match writer.take() {
                // Only finalized replicas are reported; a copy kept as being
                // written waits for its RECOVER stream.
                Some(w) => w
                    .finalize(finalize_as)
                    .map(|b| (finalize_as == ReplicaState::Finalized).then_some(b)),
                None => Ok(None),
            },
            Ok(()) => Ok(None),
            Err(e) => Err(e),
        };
        let failed = result.is_err();
        // Once the responder is gone (the writer died, or a node
        // downstream), the packets already queued are still written: each
        // was forwarded downstream, where it may have been acknowledged,
        // and a recovery relies on every node holding what any node after
        // it acknowledged.
        let _ = done.blocking_send(LocalDone {
            seqno: p.seqno,
            result,
        });
        if failed {
            return;
        }
    }
    // A new replica whose stream ended before its first packet holds no
    // byte anyone could need (a writer that allocated a block and wrote
    // nothing, or a pipeline that broke during setup): drop it now rather
    // than keep an orphan until the next block report.
    if new_replica && !got_packet {
        if let Some(w) = writer.take() {
            debug!("stream ended before any packet; removing the empty replica");
            w.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_mark_the_failed_node() {
        let s = |v: &[AckStatus]| v.iter().map(|&x| x as i32).collect::<Vec<_>>();
        use AckStatus::*;
        assert_eq!(failed_at(0, 3), s(&[Error, Unspecified, Unspecified]));
        assert_eq!(failed_at(1, 3), s(&[Success, Error, Unspecified]));
        assert_eq!(failed_at(1, 1), s(&[Success, Error]));
        assert_eq!(
            normalize(s(&[Success]), 2, false),
            s(&[Success, Unspecified])
        );
        assert_eq!(
            normalize(s(&[Success, Success]), 2, true),
            s(&[Error, Unspecified])
        );
        assert_eq!(
            normalize(s(&[Success, Error, Success]), 2, true),
            s(&[Success, Error])
        );
    }
}
