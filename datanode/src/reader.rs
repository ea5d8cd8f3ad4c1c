//! `ReadBlock`: streams a byte range of a replica with its checksums.
//!
//! A range of at most one `READ_CHUNK` is read by the blocking task that
//! opens the replica, and every 512-byte chunk of it checked against the
//! `.meta` file: a chunk that fails its checksum is never sent, the call
//! ends with a `Corrupt` status naming the block and offset, and a
//! finalized replica is moved to `corrupt/` and reported. A longer range
//! of a finalized replica goes straight from its file to the connection
//! ([`crate::zero_copy`]), with the stored checksums, which the reader
//! verifies. A longer range of a replica being written is read and
//! verified by a second blocking task in `READ_CHUNK` pieces, feeding a
//! bounded channel that the connection drains.

use std::sync::Arc;

use dfs_proto::defaults::{BYTES_PER_CHECKSUM, READ_CHUNK, SMALL_BLOCKS_PER_CALL, SMALL_BLOCK_MAX};
use dfs_proto::{
    ExtendedBlock, GetReplicaVisibleLengthRequest, ReadBlockRequest, ReadBlockResponse,
    ReadSmallBlocksRequest, ReadSmallBlocksResponse, SmallBlock,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tracing::{debug, warn};

use crate::block_store::{ReplicaReader, ReplicaState};
use crate::error::{Error, Result};
use crate::node::Node;
use crate::page_cache;

/// The answers of a `ReadBlock` call, read here.
pub type ReadStream = ReceiverStream<Result<ReadBlockResponse, Status>>;

/// How a `ReadBlock` call is answered.
#[derive(Debug)]
pub enum Answer {
    /// Messages read and verified here (and the error that ends them).
    Messages(ReadStream),
    /// A longer range of a finalized replica, to send from its file
    /// ([`crate::zero_copy::send`]).
    FromFile(FileRange),
}

/// A range of a finalized replica, open, to send from its file.
#[derive(Debug)]
pub struct FileRange {
    /// The replica.
    pub reader: ReplicaReader,
    /// First byte (a multiple of 512).
    pub start: u64,
    /// End (a multiple of 512, or the replica's length).
    pub stop: u64,
}

/// Messages buffered ahead of the network (4 × 256 KiB).
const READ_QUEUE: usize = 4;
const CHUNK: u64 = BYTES_PER_CHECKSUM as u64;
/// Reads of at most this many bytes run on the async worker itself.
const SMALL_READ: u64 = 64 * 1024;

/// What a `ReadBlock` call found when it opened the replica.
enum Opened {
    /// A range of one message, already read: sent without a second task.
    Ready(Result<ReadBlockResponse>),
    /// A longer range, streamed by a blocking task from `start` to `stop`.
    Stream {
        reader: ReplicaReader,
        start: u64,
        stop: u64,
    },
    /// Nothing to send.
    Empty,
}

/// Handles a `ReadBlock` call. `length` 0 reads to the end of the replica.
pub async fn read_block(node: Arc<Node>, req: ReadBlockRequest) -> Result<Answer> {
    let block = req
        .block
        .ok_or_else(|| Error::invalid(0, "read request without a block"))?;
    tracing::Span::current().record("block", tracing::field::display(&block));
    let opened = if req.length > 0 && req.length <= SMALL_READ {
        // A small read (a small file, a reader's positional read): opening
        // and reading it take a few microseconds from the page cache, less
        // than handing it to a blocking thread and back.
        open_range(&node, &block, req.offset, req.length)?
    } else {
        let span = tracing::Span::current();
        let n = node.clone();
        // Opening the replica and, for a one-message range, reading it
        // happen in one blocking task: one thread hand-off, not two.
        tokio::task::spawn_blocking(move || {
            let _enter = span.enter();
            open_range(&n, &block, req.offset, req.length)
        })
        .await
        .map_err(|e| Error::TaskFailed {
            task: "open replica",
            reason: e.to_string(),
        })??
    };
    let (tx, rx) = mpsc::channel(READ_QUEUE);
    match opened {
        Opened::Ready(msg) => {
            // The channel is empty and has room: this cannot fail.
            let _ = tx.try_send(msg.map_err(Status::from));
        }
        Opened::Stream {
            reader,
            start,
            stop,
        } if reader.info().state == ReplicaState::Finalized => {
            return Ok(Answer::FromFile(FileRange {
                reader,
                start,
                stop,
            }));
        }
        Opened::Stream {
            reader,
            start,
            stop,
        } => {
            let span = tracing::Span::current();
            tokio::task::spawn_blocking(move || {
                let _enter = span.enter();
                stream_range(&node, reader, start, stop, &tx);
            });
        }
        Opened::Empty => {}
    }
    Ok(Answer::Messages(ReceiverStream::new(rx)))
}

/// Handles a `GetReplicaVisibleLength` call: the bytes of the replica
/// readers may see ([`crate::block_store::BlockStore::visible_length`]),
/// on a blocking thread (the replica's writer may hold it during a write).
pub async fn visible_length(node: Arc<Node>, req: GetReplicaVisibleLengthRequest) -> Result<u64> {
    let block = req
        .block
        .ok_or_else(|| Error::invalid(0, "visible length asked without a block"))?;
    tracing::Span::current().record("block", tracing::field::display(&block));
    node.blocking("visible length", move |s| {
        s.visible_length(block.id, block.generation_stamp)
    })
    .await
}

/// Handles a `ReadSmallBlocks` call: each whole block read and verified
/// like a one-message `ReadBlock`, all in one blocking task. A block this
/// replica cannot serve gets an error entry; the others are still sent.
pub async fn read_small_blocks(
    node: Arc<Node>,
    req: ReadSmallBlocksRequest,
) -> Result<ReadSmallBlocksResponse> {
    if req.blocks.len() > SMALL_BLOCKS_PER_CALL {
        return Err(Error::invalid(
            0,
            format!(
                "{} blocks asked in one small read; at most {SMALL_BLOCKS_PER_CALL}",
                req.blocks.len()
            ),
        ));
    }
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _enter = span.enter();
        let blocks = req
            .blocks
            .iter()
            .map(|block| match read_small(&node, block) {
                Ok(b) => b,
                Err(e) => {
                    debug!(block = %block, error = %e, "small read refused");
                    SmallBlock {
                        error: e.to_string(),
                        ..SmallBlock::default()
                    }
                }
            })
            .collect();
        ReadSmallBlocksResponse { blocks }
    })
    .await
    .map_err(|e| Error::TaskFailed {
        task: "read small blocks",
        reason: e.to_string(),
    })
}

/// One whole small block, read and verified.
fn read_small(node: &Arc<Node>, block: &ExtendedBlock) -> Result<SmallBlock> {
    if block.length > SMALL_BLOCK_MAX {
        return Err(Error::invalid(
            block.id,
            format!(
                "{} bytes is too large for a small read (at most {SMALL_BLOCK_MAX})",
                block.length
            ),
        ));
    }
    match open_range(node, block, 0, block.length.max(1))? {
        Opened::Ready(msg) => {
            let msg = msg?;
            Ok(SmallBlock {
                data: msg.data,
                checksums: msg.checksums,
                error: String::new(),
            })
        }
        Opened::Empty => Ok(SmallBlock::default()),
        Opened::Stream { .. } => Err(Error::invalid(
            block.id,
            "the replica is larger than a small read",
        )),
    }
}

/// Opens the replica of `block` for `length` bytes at `offset` (0 = to the
/// end) and reads them at once if they fit in one message.
fn open_range(node: &Arc<Node>, block: &ExtendedBlock, offset: u64, length: u64) -> Result<Opened> {
    let (id, gs) = (block.id, block.generation_stamp);
    let mut reader = node.store.open_reader(id, gs)?;
    let len = reader.info().block.length;
    if offset > len {
        return Err(Error::invalid(
            id,
            format!("read offset {offset} is beyond the replica's {len} bytes"),
        ));
    }
    let end = if length == 0 {
        len
    } else {
        offset.saturating_add(length).min(len)
    };
    if end <= offset {
        return Ok(Opened::Empty);
    }
    let start = offset / CHUNK * CHUNK;
    // Whole chunks only: the client verifies them and trims to its range.
    let stop = end.div_ceil(CHUNK).saturating_mul(CHUNK).min(len);
    if stop - start > READ_CHUNK as u64 {
        return Ok(Opened::Stream {
            reader,
            start,
            stop,
        });
    }
    let msg = match reader.read(start, stop) {
        Ok((data, checksums)) => Ok(ReadBlockResponse {
            offset: start,
            data,
            checksums,
            error: None,
        }),
        Err(e) => {
            read_failed(node, &reader, &e);
            Err(e)
        }
    };
    Ok(Opened::Ready(msg))
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
    let mut pos = start;
    while pos < stop {
        if node.shutdown.is_cancelled() {
            let _ = tx.blocking_send(Err(Error::ShuttingDown.into()));
            return;
        }
        let end = (pos + READ_CHUNK as u64).min(stop);
        match reader.read(pos, end) {
            Ok((data, checksums)) => {
                let msg = ReadBlockResponse {
                    offset: pos,
                    data,
                    checksums,
                    error: None,
                };
                if tx.blocking_send(Ok(msg)).is_err() {
                    debug!(offset = pos, "reader went away");
                    return;
                }
            }
            Err(e) => {
                read_failed(node, &reader, &e);
                let _ = tx.blocking_send(Err(e.into()));
                return;
            }
        }
        pos = end;
    }
}

/// Logs a read of `reader` that failed with `err`, and moves the replica
/// aside (and reports it) if `err` says its stored data is corrupt.
pub fn read_failed(node: &Node, reader: &ReplicaReader, err: &Error) {
    if err.is_corruption() {
        handle_corruption(node, reader, err);
    } else {
        warn!(error = %err, "read failed");
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
