//! `ReadBlock`: streams a byte range of a replica with verified checksums.
//!
//! A blocking task reads the data file sequentially in `READ_CHUNK` pieces,
//! checks every 512-byte chunk against the `.meta` file and feeds a bounded
//! channel; the gRPC stream drains it. A chunk that fails its checksum is
//! never sent: the stream ends with a `Corrupt` status naming the block and
//! offset, and a finalized replica is moved to `corrupt/` and reported.

use std::sync::Arc;

use bytes::BytesMut;
use dfs_proto::defaults::{BYTES_PER_CHECKSUM, READ_CHUNK};
use dfs_proto::{ReadBlockRequest, ReadBlockResponse};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tracing::{debug, warn};

use crate::block_store::{ReplicaReader, ReplicaState};
use crate::error::{Error, Result};
use crate::node::Node;
use crate::page_cache;

/// The stream of a `ReadBlock` call.
pub type ReadStream = ReceiverStream<Result<ReadBlockResponse, Status>>;

/// Messages buffered ahead of the network (4 × 256 KiB).
const READ_QUEUE: usize = 4;
const CHUNK: u64 = BYTES_PER_CHECKSUM as u64;

/// Handles a `ReadBlock` call. `length` 0 reads to the end of the replica.
pub async fn read_block(node: Arc<Node>, req: ReadBlockRequest) -> Result<ReadStream> {
    let block = req
        .block
        .ok_or_else(|| Error::invalid(0, "read request without a block"))?;
    tracing::Span::current().record("block", tracing::field::display(&block));
    let (id, gs) = (block.id, block.generation_stamp);
    let reader = node
        .blocking("open replica", move |s| s.open_reader(id, gs))
        .await?;
    let len = reader.info().block.length;
    if req.offset > len {
        return Err(Error::invalid(
            id,
            format!(
                "read offset {} is beyond the replica's {len} bytes",
                req.offset
            ),
        ));
    }
    let end = if req.length == 0 {
        len
    } else {
        req.offset.saturating_add(req.length).min(len)
    };
    let start = req.offset / CHUNK * CHUNK;
    // Whole chunks only: the client verifies them and trims to its range.
    let stop = end.div_ceil(CHUNK).saturating_mul(CHUNK).min(len);
    let (tx, rx) = mpsc::channel(READ_QUEUE);
    if end > req.offset {
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _enter = span.enter();
            stream_range(&node, reader, start, stop, &tx);
        });
    }
    Ok(ReceiverStream::new(rx))
}

fn stream_range(
    node: &Arc<Node>,
    mut reader: ReplicaReader,
    start: u64,
    stop: u64,
    tx: &mpsc::Sender<Result<ReadBlockResponse, Status>>,
) {
    if stop - start >= page_cache::WINDOW {
        reader.stream_from(start);
    }
    let mut buf = BytesMut::new();
    let mut pos = start;
    while pos < stop {
        if node.shutdown.is_cancelled() {
            let _ = tx.blocking_send(Err(Error::ShuttingDown.into()));
            return;
        }
        let end = (pos + READ_CHUNK as u64).min(stop);
        match reader.read(pos, end, &mut buf) {
            Ok((data, checksums)) => {
                let msg = ReadBlockResponse {
                    offset: pos,
                    data,
                    checksums,
                };
                if tx.blocking_send(Ok(msg)).is_err() {
                    debug!(offset = pos, "reader went away");
                    return;
                }
            }
            Err(e) => {
                if e.is_corruption() {
                    handle_corruption(node, &reader, &e);
                } else {
                    warn!(error = %e, "read failed");
                }
                let _ = tx.blocking_send(Err(e.into()));
                return;
            }
        }
        pos = end;
    }
}

/// Moves a corrupt finalized replica aside and reports it. A replica being
/// written is only refused: its last chunk may be changing under the read.
pub fn handle_corruption(node: &Node, reader: &ReplicaReader, err: &Error) {
    let info = reader.info();
    if info.state != ReplicaState::Finalized {
        warn!(block = %info.block, error = %err, "checksum mismatch in a replica being written");
        return;
    }
    match node
        .store
        .mark_corrupt(info.block.id, info.block.generation_stamp)
    {
        Ok(Some(block)) => {
            warn!(block = %block, error = %err, "corrupt replica moved to corrupt/ and reported to the namenode");
            node.reporter.corrupt(block);
        }
        Ok(None) => {}
        Err(e) => warn!(block = %info.block, error = %e, "cannot move a corrupt replica aside"),
    }
}
