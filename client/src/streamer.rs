//! The background task behind a [`FileWriter`](crate::FileWriter): it
//! allocates blocks, opens their pipelines, sends packets, matches acks,
//! recovers a pipeline that loses a node, and completes the file.
//!
//! One task per open file. The writer hands it data through a bounded
//! channel; the task keeps at most `MAX_PACKETS_IN_FLIGHT` packets
//! unacknowledged (kept for resending after a recovery) and stops reading
//! the channel when that window is full, so backpressure reaches the writer.
//!
//! Pipeline recovery (rebuilding or reallocating the block after a node
//! fails, and resending what was not acknowledged) is in the `recovery`
//! child module.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dfs_proto::defaults::MAX_PACKETS_IN_FLIGHT;
use dfs_proto::{DatanodeInfo, ExtendedBlock, WriteStage};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use crate::client::Inner;
use crate::error::{Error, Result};
use crate::lease::LeaseGuard;
use crate::packet::{OutPacket, Packetizer};
use crate::pipeline::{NodeFailure, Pipeline, Setup};

mod recovery;

/// Attempts to allocate a block whose pipeline cannot be set up.
const MAX_BLOCK_ATTEMPTS: usize = 4;
/// The most datanodes a new block may be refused by as full before the
/// writer gives up (each is excluded, so the namenode runs out first on any
/// cluster of fewer nodes).
const MAX_FULL_REFUSALS: usize = 64;
/// How long `Complete` is retried while the last block has no finalized
/// replica yet.
const COMPLETE_BUDGET: Duration = Duration::from_secs(30);

/// A message from the writer.
#[derive(Debug)]
pub(crate) enum Msg {
    /// File bytes; never crossing a block boundary.
    Data(Bytes),
    /// hflush: answer once every byte sent so far is acknowledged and, if
    /// `update_length`, the namenode knows the length.
    Flush {
        tx: oneshot::Sender<Result<()>>,
        update_length: bool,
    },
    /// Finish the last block and complete the file, storing `attrs` with
    /// the close.
    Close {
        tx: oneshot::Sender<Result<()>>,
        attrs: Option<dfs_proto::FileAttrs>,
    },
}

/// The first fatal error of a write, shared with the writer.
pub(crate) type ErrorSlot = Arc<Mutex<Option<Error>>>;

#[derive(Debug)]
struct Inflight {
    seqno: u64,
    packet: OutPacket,
}

/// The block being written.
#[derive(Debug)]
struct BlockState {
    /// Id and the generation stamp the namenode holds for it.
    block: ExtendedBlock,
    /// The generation stamp of the replicas of the current pipeline.
    replica_gs: u64,
    nodes: Vec<DatanodeInfo>,
    pipeline: Option<Pipeline>,
    packetizer: Packetizer,
    unacked: VecDeque<Inflight>,
    /// Bytes of the block every pipeline node acknowledged.
    acked: u64,
    /// Whether any packet of this block was acknowledged.
    any_acked: bool,
    /// Offset of the packet the recoveries below were for.
    recovery_key: Option<u64>,
    recoveries: u32,
}

pub(crate) struct Streamer {
    ctx: Arc<Inner>,
    path: String,
    /// The namenode's inode id of the file: the calls below name the file
    /// by it, so a rename by another client does not lose this writer.
    file_id: u64,
    block_size: u64,
    replication: u32,
    /// The last finished block, with its final length.
    prev: Option<ExtendedBlock>,
    cur: Option<BlockState>,
    /// Nodes that failed during this write; not chosen again.
    excluded: Vec<Excluded>,
    /// The first block, allocated with the create: its pipeline is opened
    /// as soon as the task starts, before any data.
    first: Option<dfs_proto::LocatedBlock>,
    error: ErrorSlot,
    _lease: LeaseGuard,
}

/// A node left out of a write, and why.
struct Excluded {
    node: DatanodeInfo,
    /// What it failed with.
    reason: String,
    /// It refused for lack of space.
    no_space: bool,
}

impl std::fmt::Debug for Streamer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streamer")
            .field("path", &self.path)
            .finish()
    }
}

impl Streamer {
    pub(crate) fn new(
        ctx: Arc<Inner>,
        path: String,
        file_id: u64,
        block_size: u64,
        replication: u32,
        first: Option<dfs_proto::LocatedBlock>,
        error: ErrorSlot,
    ) -> Self {
        // The client renews its leases while a writer is open.
        let lease = ctx.leases.register();
        Streamer {
            ctx,
            path,
            file_id,
            block_size,
            replication,
            prev: None,
            cur: None,
            excluded: Vec::new(),
            first,
            error,
            _lease: lease,
        }
    }

    /// Whether the task should start at once (to open the first block's
    /// pipeline while the application prepares its data).
    pub(crate) fn has_first_block(&self) -> bool {
        self.first.is_some()
    }

    /// The base of this writer's ack timeouts, sent to the pipeline.
    fn ack_timeout_base(&self) -> Duration {
        self.ctx.opts.ack_timeout_base()
    }

    /// How long to wait for a packet's ack: longer than any pipeline
    /// node's wait for its downstream (see `defaults::ack_timeout`).
    fn ack_timeout(&self) -> Duration {
        let nodes = self.cur.as_ref().map_or(1, |b| b.nodes.len());
        self.ctx.opts.ack_timeout(nodes)
    }

    fn setup_timeout(&self) -> Duration {
        self.ctx.opts.setup_timeout()
    }

    /// The pipeline setup of a block just allocated on `nodes`.
    fn new_block_setup<'a>(&'a self, nodes: &'a [DatanodeInfo], block: ExtendedBlock) -> Setup<'a> {
        Setup {
            pool: &self.ctx.datanodes,
            nodes,
            block,
            stage: WriteStage::Create,
            bytes_acked: 0,
            client_name: &self.ctx.client_name,
            timeout: self.setup_timeout(),
            ack_timeout_base: self.ack_timeout_base(),
        }
    }

    /// Runs until the writer closes, aborts (drops the channel) or the
    /// write fails.
    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        if let Some(lb) = self.first.take() {
            // A failure here only costs the block: the first write
            // allocates another and reports what goes wrong then.
            if let Err(reason) = self.open_block(lb).await {
                tracing::debug!(path = %self.path, reason, "the first block's pipeline could not be opened early");
            }
        }
        match self.serve(&mut rx).await {
            Ok(()) => {}
            Err(e) => {
                if matches!(e, Error::PermissionDenied { .. }) {
                    // A refusal of the close's attributes: the caller says it.
                    tracing::debug!(path = %self.path, error = %e, "close refused");
                } else if matches!(e, Error::NoSpace { .. }) {
                    // Not a fault of the cluster; the caller says it.
                    tracing::debug!(path = %self.path, error = %e, "write refused: no space");
                } else {
                    tracing::warn!(path = %self.path, error = %e, "write failed");
                }
                let reply = e.duplicate();
                *self.error.lock() = Some(e);
                // Answer whoever waits, then go.
                rx.close();
                while let Some(msg) = rx.recv().await {
                    match msg {
                        Msg::Flush { tx, .. } | Msg::Close { tx, .. } => {
                            let _ = tx.send(Err(reply.duplicate()));
                        }
                        Msg::Data(_) => {}
                    }
                }
            }
        }
    }

    async fn serve(&mut self, rx: &mut mpsc::Receiver<Msg>) -> Result<()> {
        loop {
            let waiting_acks = self.cur.as_ref().is_some_and(|b| !b.unacked.is_empty());
            let timeout = self.ack_timeout();
            tokio::select! {
                biased;
                ack = next_ack(self.cur.as_mut(), timeout), if waiting_acks => {
                    self.on_ack(ack).await?;
                }
                msg = rx.recv() => match msg {
                    None => {
                        tracing::debug!(path = %self.path, "writer dropped without close; file left for lease recovery");
                        return Ok(());
                    }
                    Some(Msg::Data(data)) => self.write(data).await?,
                    Some(Msg::Flush { tx, update_length }) => {
                        match self.flush(update_length).await {
                            Ok(()) => { let _ = tx.send(Ok(())); }
                            Err(e) => { let _ = tx.send(Err(e.duplicate())); return Err(e); }
                        }
                    }
                    Some(Msg::Close { tx, attrs }) => {
                        match self.close(attrs).await {
                            Ok(()) => { let _ = tx.send(Ok(())); return Ok(()); }
                            Err(e) => { let _ = tx.send(Err(e.duplicate())); return Err(e); }
                        }
                    }
                },
            }
        }
    }

    /// Sends `data` as packets, starting and finishing blocks as needed.
    async fn write(&mut self, mut data: Bytes) -> Result<()> {
        while !data.is_empty() {
            if self.cur.is_none() {
                self.start_block().await?;
            }
            let sent = self.cur.as_ref().map_or(0, |b| b.packetizer.sent());
            let room = (self.block_size - sent) as usize;
            let piece = data.split_to(room.min(data.len()));
            let ends_block = sent + piece.len() as u64 == self.block_size;
            self.send_packet(piece, ends_block).await?;
            if ends_block {
                self.finish_block().await?;
            }
        }
        Ok(())
    }

    /// hflush: waits for every ack, then, if `update_length`, tells the
    /// namenode the length.
    async fn flush(&mut self, update_length: bool) -> Result<()> {
        self.drain_acks().await?;
        if !update_length {
            return Ok(());
        }
        let last = match (&self.cur, &self.prev) {
            (Some(b), _) => ExtendedBlock {
                length: b.acked,
                ..b.block
            },
            (None, Some(p)) => *p,
            (None, None) => return Ok(()),
        };
        let req = dfs_proto::FsyncRequest {
            path: self.path.clone(),
            client_name: self.ctx.client_name.clone(),
            last_block: Some(last),
            file_id: self.file_id,
        };
        let budget = self.ctx.namenode.rpc_timeout();
        self.ctx
            .namenode
            .call_retrying("Fsync", &self.path, budget, |mut c| {
                let req = req.clone();
                async move { c.fsync(req).await }
            })
            .await?;
        Ok(())
    }

    /// Finishes the last block and completes the file, with `attrs` stored
    /// in the same namenode edit.
    pub(crate) async fn close(&mut self, attrs: Option<dfs_proto::FileAttrs>) -> Result<()> {
        // A block (the one allocated with the create) that got no data is
        // given up instead of stored empty; the datanodes drop their empty
        // replicas when the pipeline stream ends without a packet.
        if let Some(b) = self
            .cur
            .take_if(|b| b.packetizer.sent() == 0 && b.unacked.is_empty())
        {
            drop(b.pipeline);
            self.abandon_checked(&b.block).await?;
        } else if self.cur.is_some() {
            self.send_packet(Bytes::new(), true).await?;
            self.finish_block().await?;
        }
        let req = dfs_proto::CompleteRequest {
            path: self.path.clone(),
            client_name: self.ctx.client_name.clone(),
            last: self.prev,
            attrs,
            file_id: self.file_id,
        };
        let deadline = tokio::time::Instant::now() + COMPLETE_BUDGET;
        let mut delay = Duration::from_millis(50);
        loop {
            let r = self
                .ctx
                .namenode
                .call("Complete", &self.path, |mut c| {
                    let req = req.clone();
                    async move { c.complete(req).await }
                })
                .await;
            match r {
                Ok(resp) if resp.completed => {
                    tracing::debug!(path = %self.path, "file complete");
                    return Ok(());
                }
                Ok(_) => {}
                Err(e) if e.is_transient() => {
                    tracing::debug!(path = %self.path, error = %e, "complete failed; retrying");
                }
                Err(e) => return Err(e),
            }
            if tokio::time::Instant::now() + delay > deadline {
                return Err(Error::Timeout {
                    what: format!(
                        "closing {}: the namenode did not confirm a finalized replica of the last block within {:?}",
                        self.path, COMPLETE_BUDGET
                    ),
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }

    /// Waits until every packet sent is acknowledged.
    async fn drain_acks(&mut self) -> Result<()> {
        while self.cur.as_ref().is_some_and(|b| !b.unacked.is_empty()) {
            let timeout = self.ack_timeout();
            let ack = next_ack(self.cur.as_mut(), timeout).await;
            self.on_ack(ack).await?;
        }
        Ok(())
    }

    /// Handles one ack (or a failure while waiting for one).
    async fn on_ack(&mut self, ack: Result<u64, NodeFailure>) -> Result<()> {
        let failure = match ack {
            Ok(seqno) => {
                let Some(b) = self.cur.as_mut() else {
                    return Ok(());
                };
                match b.unacked.front() {
                    Some(front) if front.seqno == seqno => {
                        let done = b.unacked.pop_front();
                        if let Some(done) = done {
                            b.acked = b.acked.max(done.packet.end());
                            b.any_acked = true;
                            if b.recovery_key.is_some_and(|k| k <= done.packet.offset) {
                                b.recovery_key = None;
                                b.recoveries = 0;
                            }
                        }
                        return Ok(());
                    }
                    Some(front) => NodeFailure::first(format!(
                        "ack {seqno} arrived while {} was expected",
                        front.seqno
                    )),
                    None => NodeFailure::first(format!("ack {seqno} arrived for no packet")),
                }
            }
            Err(f) => f,
        };
        self.recover(failure).await
    }

    /// Queues and sends one packet of the current block, waiting for room
    /// in the ack window first.
    async fn send_packet(&mut self, data: Bytes, last: bool) -> Result<()> {
        while self
            .cur
            .as_ref()
            .is_some_and(|b| b.unacked.len() >= MAX_PACKETS_IN_FLIGHT)
        {
            let timeout = self.ack_timeout();
            let ack = next_ack(self.cur.as_mut(), timeout).await;
            self.on_ack(ack).await?;
        }
        let timeout = self.setup_timeout();
        let Some(b) = self.cur.as_mut() else {
            return Err(Error::Server {
                message: format!("write of {}: no block is open", self.path),
            });
        };
        let packet = b.packetizer.packet(data, last);
        let sent = match b.pipeline.as_mut() {
            Some(p) => p.send(&packet).await,
            None => Err(()),
        };
        match sent {
            Ok(seqno) => {
                b.unacked.push_back(Inflight { seqno, packet });
                Ok(())
            }
            Err(()) => {
                // Queue it with a placeholder seqno; recovery renumbers and resends.
                b.unacked.push_back(Inflight {
                    seqno: u64::MAX,
                    packet,
                });
                let failure = match b.pipeline.as_mut() {
                    Some(p) => p.failure(timeout).await,
                    None => NodeFailure::first("no pipeline"),
                };
                self.recover(failure).await
            }
        }
    }

    /// Sends nothing more for the current block: waits for the last
    /// packet's ack and remembers the block as the previous one.
    async fn finish_block(&mut self) -> Result<()> {
        self.drain_acks().await?;
        if let Some(b) = self.cur.take() {
            let block = ExtendedBlock {
                length: b.packetizer.sent(),
                ..b.block
            };
            tracing::debug!(path = %self.path, block = %block, length = block.length, "block finished");
            self.prev = Some(block);
        }
        Ok(())
    }

    fn excluded_keys(&self) -> Vec<String> {
        self.keys_of(|_| true)
    }

    /// The id and address of every excluded node `pick` chooses.
    fn keys_of(&self, pick: impl Fn(&Excluded) -> bool) -> Vec<String> {
        let mut keys = Vec::new();
        for x in self.excluded.iter().filter(|x| pick(x)) {
            keys.push(x.node.id.clone());
            keys.push(x.node.address.clone());
        }
        keys.sort();
        keys.dedup();
        keys
    }

    async fn add_block(&self) -> Result<dfs_proto::LocatedBlock> {
        let req = dfs_proto::AddBlockRequest {
            path: self.path.clone(),
            client_name: self.ctx.client_name.clone(),
            previous: self.prev,
            excluded_nodes: self.excluded_keys(),
            client_host: self.ctx.client_host(),
            file_id: self.file_id,
            full_nodes: self.keys_of(|x| x.no_space),
        };
        let resp = self
            .ctx
            .namenode
            .call_at_most_once(
                "AddBlock",
                &self.path,
                self.ctx.opts.rpc_timeout,
                |mut c| {
                    let req = req.clone();
                    async move { c.add_block(req).await }
                },
            )
            .await
            .map_err(|e| self.no_target(e))?;
        match resp.block {
            Some(lb) if lb.block.is_some() && !lb.locations.is_empty() => Ok(lb),
            _ => Err(Error::NoDatanodes {
                message: format!(
                    "could not add a block to {}: the namenode returned no datanode",
                    self.path
                ),
            }),
        }
    }

    /// Leaves `node` out of this write's pipelines from now on.
    pub(super) fn exclude(&mut self, node: DatanodeInfo, failure: &NodeFailure) {
        self.excluded.push(Excluded {
            node,
            reason: failure.reason.clone(),
            no_space: failure.no_space,
        });
    }

    /// The namenode found no datanode for a new block: adds what this
    /// write saw of the nodes it excluded. Whether it is a lack of space is
    /// the namenode's call, told which nodes refused as full
    /// (`full_nodes`).
    fn no_target(&self, e: Error) -> Error {
        match e {
            Error::NoSpace { message } => {
                let full: Vec<&str> = self
                    .excluded
                    .iter()
                    .filter(|x| x.no_space)
                    .map(|x| x.node.address.as_str())
                    .collect();
                if full.is_empty() {
                    return Error::NoSpace { message };
                }
                Error::NoSpace {
                    message: format!(
                        "{message}; full when this write tried them: {}",
                        full.join(", ")
                    ),
                }
            }
            Error::NoDatanodes { message } if !self.excluded.is_empty() => {
                // Each reason names its node.
                let why: Vec<&str> = self.excluded.iter().map(|x| x.reason.as_str()).collect();
                Error::NoDatanodes {
                    message: format!("{message}; excluded by this write: {}", why.join("; ")),
                }
            }
            e => e,
        }
    }

    async fn abandon(&self, block: &ExtendedBlock) {
        if let Err(e) = self.abandon_checked(block).await {
            tracing::warn!(path = %self.path, block = %block, error = %e, "could not abandon block");
        }
    }

    async fn abandon_checked(&self, block: &ExtendedBlock) -> Result<()> {
        let req = dfs_proto::AbandonBlockRequest {
            path: self.path.clone(),
            client_name: self.ctx.client_name.clone(),
            block: Some(*block),
            file_id: self.file_id,
        };
        let budget = self.ctx.namenode.rpc_timeout();
        self.ctx
            .namenode
            .call_retrying("AbandonBlock", &self.path, budget, |mut c| {
                let req = req.clone();
                async move { c.abandon_block(req).await }
            })
            .await?;
        Ok(())
    }

    /// Allocates the next block and opens its pipeline, leaving out nodes
    /// that cannot be reached.
    async fn start_block(&mut self) -> Result<()> {
        let mut failures = Vec::new();
        // A node that refuses as full is excluded and not counted against
        // the attempts: the namenode says when no node is left.
        for _ in 0..MAX_BLOCK_ATTEMPTS + MAX_FULL_REFUSALS {
            let lb = self.add_block().await?;
            let excluded = self.excluded.len();
            match self.open_block(lb).await {
                Ok(()) => return Ok(()),
                Err(_) if self.excluded.len() > excluded && self.excluded[excluded].no_space => {}
                Err(reason) => failures.push(reason),
            }
            if failures.len() == MAX_BLOCK_ATTEMPTS {
                break;
            }
        }
        Err(Error::NoDatanodes {
            message: format!(
                "could not write a block of {}: no pipeline could be set up after {} attempts ({})",
                self.path,
                failures.len(),
                failures.join("; ")
            ),
        })
    }

    /// Opens the pipeline of a block just allocated and makes it the
    /// current block. On failure the block is abandoned, the node that
    /// failed excluded, and the reason returned.
    async fn open_block(&mut self, lb: dfs_proto::LocatedBlock) -> Result<(), String> {
        let Some(block) = lb.block else {
            return Err("the namenode returned a block without an id".to_string());
        };
        if lb.locations.is_empty() {
            self.abandon(&block).await;
            return Err(format!("the namenode gave {block} no datanode"));
        }
        match Pipeline::open(self.new_block_setup(&lb.locations, block)).await {
            Ok(pipeline) => {
                tracing::debug!(
                    path = %self.path,
                    block = %block,
                    pipeline = ?lb.locations.iter().map(|n| n.address.as_str()).collect::<Vec<_>>(),
                    "block started"
                );
                self.cur = Some(BlockState {
                    replica_gs: block.generation_stamp,
                    block,
                    nodes: lb.locations,
                    pipeline: Some(pipeline),
                    packetizer: Packetizer::default(),
                    unacked: VecDeque::new(),
                    acked: 0,
                    any_acked: false,
                    recovery_key: None,
                    recoveries: 0,
                });
                Ok(())
            }
            Err(f) => {
                let bad = lb.locations[f.index.min(lb.locations.len() - 1)].clone();
                if f.no_space {
                    // A full node is not a fault; if every node is full,
                    // the caller gets "no space" naming them.
                    tracing::info!(
                        path = %self.path, block = %block, node = %bad.address, reason = %f.reason,
                        "datanode full; trying another for the block"
                    );
                } else {
                    tracing::warn!(
                        path = %self.path, block = %block, node = %bad.address, reason = %f.reason,
                        "could not set up the write pipeline; abandoning the block and excluding the node"
                    );
                }
                let reason = format!("{}: {}", bad.address, f.reason);
                self.exclude(bad, &f);
                self.abandon(&block).await;
                Err(reason)
            }
        }
    }
}

/// Waits for the current pipeline's next ack, at most `timeout`.
async fn next_ack(cur: Option<&mut BlockState>, timeout: Duration) -> Result<u64, NodeFailure> {
    let Some(p) = cur.and_then(|b| b.pipeline.as_mut()) else {
        return Err(NodeFailure::first("no pipeline"));
    };
    match tokio::time::timeout(timeout, p.next_ack()).await {
        Ok(r) => r,
        Err(_) => Err(NodeFailure::first(format!("no ack within {timeout:?}"))),
    }
}
