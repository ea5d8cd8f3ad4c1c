//! Copies a local replica to other datanodes as a `REPLICATE` pipeline.
//!
//! Used for the namenode's `TransferBlock` commands (re-replication; at most
//! `--max-transfers` at a time) and for the `TransferReplica` RPC (a client
//! bringing a replacement node into a recovering write pipeline). The
//! replica is read with every chunk verified, so a corrupt source is caught
//! here and not copied.

use std::sync::Arc;

use dfs_proto::checksum::{chunk_count, CHECKSUM_SIZE};
use dfs_proto::defaults::{self, MAX_PACKETS_IN_FLIGHT, PACKET_SIZE, READ_CHUNK, SETUP_ACK_SEQNO};
use dfs_proto::write_block_request::Msg as ReqMsg;
use dfs_proto::write_block_response::Msg as RespMsg;
use dfs_proto::xfer::WriteBlockStream;
use dfs_proto::{
    AckStatus, DatanodeInfo, ExtendedBlock, Packet, TransferBlock, TransferReplicaRequest,
    WriteBlockRequest, WriteBlockResponse, WriteHeader, WriteStage,
};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::timeout;
use tracing::{info, warn, Instrument};

use crate::block_store::{ReplicaReader, ReplicaState};
use crate::error::{Error, Result};
use crate::net;
use crate::node::{Job, Node};
use crate::reader::handle_corruption;

/// Copies that may wait for a slot, per `--max-transfers` slot.
const QUEUED_PER_SLOT: usize = 8;
/// Packets read ahead of the network.
const READ_AHEAD: usize = 8;
/// Time for the target pipeline to report ready.
const SETUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The `TransferReplica` RPC: copies the first `block.length` bytes of the
/// local replica (finalized or being written, with a generation stamp not
/// newer than asked) to `targets`, and returns once all of them stored it.
pub async fn transfer_replica(node: Arc<Node>, req: TransferReplicaRequest) -> Result<()> {
    let block = req
        .block
        .ok_or_else(|| Error::invalid(0, "transfer request without a block"))?;
    tracing::Span::current().record("block", tracing::field::display(&block));
    if req.client_name.is_empty() {
        return Err(Error::invalid(
            block.id,
            "transfer request without a client name",
        ));
    }
    check_targets(&node, &block, &req.targets)?;
    let _active = node.transfer_guard();
    let id = block.id;
    let reader = node
        .blocking("open replica", move |s| s.open_reader(id, 0))
        .await?;
    let local = reader.info().block;
    if local.generation_stamp > block.generation_stamp {
        return Err(Error::GenerationStamp {
            block: id,
            have: local.generation_stamp,
            reason: format!(
                "the transfer asks for generation stamp {}, the local replica is newer",
                block.generation_stamp
            ),
        });
    }
    if local.length < block.length {
        return Err(Error::invalid(
            id,
            format!(
                "local replica has {} bytes, {} were asked",
                local.length, block.length
            ),
        ));
    }
    send(&node, reader, block.length, &req.targets, req.client_name).await
}

/// Starts a namenode-ordered copy in the background.
pub fn spawn_command(node: &Arc<Node>, cmd: TransferBlock) {
    let Some(block) = cmd.block else {
        warn!("ignoring a transfer command without a block");
        return;
    };
    let queued_max = node.config.max_transfers.max(1) as usize * QUEUED_PER_SLOT;
    if node.job_count(Job::Transfer) >= queued_max {
        warn!(block = %block, queued = queued_max, "too many copies queued; dropping the command (the namenode will retry)");
        return;
    }
    let Some(job) = node.claim(Job::Transfer, block.id) else {
        info!(block = %block, "transfer already in progress; ignoring the repeated command");
        return;
    };
    let span = tracing::info_span!("transfer", block = %block);
    let node2 = node.clone();
    node.tasks.spawn(
        async move {
            let _job = job;
            let permit = tokio::select! {
                p = node2.transfer_slots.clone().acquire_owned() => p,
                _ = node2.shutdown.cancelled() => return,
            };
            let Ok(_permit) = permit else { return };
            let _active = node2.transfer_guard();
            let targets: Vec<String> = cmd.targets.iter().map(|t| t.address.clone()).collect();
            match copy_finalized(&node2, &block, &cmd.targets).await {
                Ok(()) => info!(targets = ?targets, bytes = block.length, "replica copied"),
                Err(e) => warn!(targets = ?targets, error = %e, "replica copy failed; the namenode will retry"),
            }
        }
        .instrument(span),
    );
}

async fn copy_finalized(
    node: &Arc<Node>,
    block: &ExtendedBlock,
    targets: &[DatanodeInfo],
) -> Result<()> {
    check_targets(node, block, targets)?;
    let (id, gs) = (block.id, block.generation_stamp);
    let reader = node
        .blocking("open replica", move |s| s.open_reader(id, gs))
        .await?;
    let local = reader.info();
    if local.state != ReplicaState::Finalized {
        return Err(Error::invalid(id, "the local replica is not finalized"));
    }
    if local.block.generation_stamp != gs || local.block.length != block.length {
        return Err(Error::GenerationStamp {
            block: id,
            have: local.block.generation_stamp,
            reason: format!(
                "the namenode asked to copy {block} of {} bytes, the local replica has {} bytes",
                block.length, local.block.length
            ),
        });
    }
    let len = local.block.length;
    send(node, reader, len, targets, String::new()).await
}

fn check_targets(node: &Node, block: &ExtendedBlock, targets: &[DatanodeInfo]) -> Result<()> {
    if targets.is_empty() {
        return Err(Error::invalid(block.id, "transfer without targets"));
    }
    if targets.len() >= defaults::MAX_REPLICATION as usize {
        return Err(Error::invalid(block.id, "too many transfer targets"));
    }
    if targets
        .iter()
        .any(|t| t.address.is_empty() || node.is_me(t))
    {
        return Err(Error::invalid(
            block.id,
            "transfer targets must be other datanodes with an address",
        ));
    }
    Ok(())
}

/// Streams the first `len` bytes of the replica to `targets` and waits for
/// every packet's ack. The copy carries the replica's generation stamp.
async fn send(
    node: &Arc<Node>,
    reader: ReplicaReader,
    len: u64,
    targets: &[DatanodeInfo],
    client_name: String,
) -> Result<()> {
    let source = reader.info().clone();
    let block = ExtendedBlock {
        id: source.block.id,
        generation_stamp: source.block.generation_stamp,
        length: len,
    };
    let first = targets[0].address.clone();
    let WriteBlockStream {
        requests: tx,
        responses: mut acks,
        sender: _sender,
    } = net::open_write_block(&first, MAX_PACKETS_IN_FLIGHT).await?;
    let header = WriteHeader {
        block: Some(block),
        targets: targets[1..].to_vec(),
        stage: WriteStage::Replicate as i32,
        client_name,
        bytes_acked: 0,
        ack_timeout_base_ms: 0,
    };
    let _ = tx
        .send(WriteBlockRequest {
            msg: Some(ReqMsg::Header(header)),
        })
        .await;
    let setup = async {
        match acks.message::<WriteBlockResponse>().await {
            Ok(Some(WriteBlockResponse {
                msg: Some(RespMsg::Ready(_)),
            })) => Ok(()),
            Ok(Some(WriteBlockResponse {
                msg: Some(RespMsg::Ack(a)),
            })) if a.seqno == SETUP_ACK_SEQNO => Err(Error::Pipeline {
                addr: failed_node(targets, &a.statuses),
                reason: a.message,
            }),
            Ok(_) => Err(Error::Pipeline {
                addr: first.clone(),
                reason: "unexpected answer during pipeline setup".to_string(),
            }),
            Err(s) => Err(Error::remote(&first, "WriteBlock", &s)),
        }
    };
    let setup = timeout(SETUP_TIMEOUT, setup)
        .await
        .map_err(|_| Error::Pipeline {
            addr: first.clone(),
            reason: "pipeline setup timed out".to_string(),
        })
        .and_then(|r| r);
    setup?;

    let packets = len.div_ceil(PACKET_SIZE as u64).max(1);
    let (ptx, mut prx) = mpsc::channel::<Result<Packet>>(READ_AHEAD);
    let producer = tokio::task::spawn_blocking(move || produce(reader, len, &ptx));
    let window = Arc::new(Semaphore::new(MAX_PACKETS_IN_FLIGHT));
    let sender = async {
        while let Some(p) = prx.recv().await {
            let p = p?;
            let permit = window
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| Error::ShuttingDown)?;
            permit.forget();
            tx.send(WriteBlockRequest {
                msg: Some(ReqMsg::Packet(p)),
            })
            .await
            .map_err(|_| Error::Pipeline {
                addr: first.clone(),
                reason: "the pipeline closed while sending".to_string(),
            })?;
        }
        Ok::<(), Error>(())
    };
    let ack_timeout = defaults::ack_timeout(0, targets.len());
    let acker = async {
        for seqno in 0..packets {
            let got = timeout(ack_timeout, acks.message::<WriteBlockResponse>()).await;
            let a = match got {
                Ok(Ok(Some(WriteBlockResponse {
                    msg: Some(RespMsg::Ack(a)),
                }))) => a,
                Ok(Ok(_)) => {
                    return Err(Error::Pipeline {
                        addr: first.clone(),
                        reason: format!("stream ended before the ack of packet {seqno}"),
                    })
                }
                Ok(Err(s)) => return Err(Error::remote(&first, "WriteBlock", &s)),
                Err(_) => {
                    return Err(Error::Pipeline {
                        addr: first.clone(),
                        reason: format!(
                            "no ack of packet {seqno} within {}s",
                            ack_timeout.as_secs()
                        ),
                    })
                }
            };
            let ok = a.statuses.len() == targets.len()
                && a.statuses.iter().all(|&s| s == AckStatus::Success as i32);
            if a.seqno != seqno || !ok {
                return Err(Error::Pipeline {
                    addr: failed_node(targets, &a.statuses),
                    reason: if a.message.is_empty() {
                        format!("packet {} not acknowledged", a.seqno)
                    } else {
                        a.message
                    },
                });
            }
            window.add_permits(1);
        }
        Ok::<(), Error>(())
    };
    let result = tokio::select! {
        r = async { tokio::try_join!(sender, acker) } => r.map(|_| ()),
        _ = node.shutdown.cancelled() => Err(Error::ShuttingDown),
    };
    drop(tx);
    // Unblocks the producer if it still has packets to hand over.
    drop(prx);
    let reader = producer.await.map_err(|e| Error::TaskFailed {
        task: "read replica",
        reason: e.to_string(),
    })?;
    if let Err(e) = &result {
        if e.is_corruption() {
            handle_corruption(node, &reader, e);
        }
    }
    result
}

/// The address of the first node a `statuses` list marks failed.
fn failed_node(targets: &[DatanodeInfo], statuses: &[i32]) -> String {
    let i = statuses
        .iter()
        .position(|&s| s != AckStatus::Success as i32)
        .unwrap_or(0);
    targets
        .get(i)
        .or(targets.first())
        .map(|t| t.address.clone())
        .unwrap_or_default()
}

/// Reads the replica in `READ_CHUNK` pieces and cuts them into packets.
/// Returns the reader so that a corruption can be handled by the caller.
fn produce(
    mut reader: ReplicaReader,
    len: u64,
    tx: &mpsc::Sender<Result<Packet>>,
) -> ReplicaReader {
    let mut seqno = 0;
    if len == 0 {
        let _ = tx.blocking_send(Ok(Packet {
            seqno,
            offset_in_block: 0,
            data: Default::default(),
            checksums: Default::default(),
            last: true,
            sync: false,
        }));
        return reader;
    }
    if len >= crate::page_cache::WINDOW {
        reader.stream_from(0);
    }
    let mut pos = 0u64;
    while pos < len {
        let end = (pos + READ_CHUNK as u64).min(len);
        let (data, sums) = match reader.read(pos, end) {
            Ok(x) => x,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return reader;
            }
        };
        let mut off = 0usize;
        while off < data.len() {
            let n = PACKET_SIZE.min(data.len() - off);
            let first_sum = off / dfs_proto::defaults::BYTES_PER_CHECKSUM * CHECKSUM_SIZE;
            let packet = Packet {
                seqno,
                offset_in_block: pos + off as u64,
                data: data.slice(off..off + n),
                checksums: sums.slice(first_sum..first_sum + chunk_count(n) * CHECKSUM_SIZE),
                last: pos + (off + n) as u64 == len,
                sync: false,
            };
            if tx.blocking_send(Ok(packet)).is_err() {
                return reader;
            }
            seqno += 1;
            off += n;
        }
        pos = end;
    }
    reader
}
