//! Pipeline recovery for the [`Streamer`]: when a datanode of the current
//! block's pipeline fails, the block is either given up and rewritten on
//! other nodes (nothing acknowledged yet) or its pipeline is rebuilt under
//! a new generation stamp, with a replacement node if the cluster has one;
//! then every unacknowledged packet is resent.

use std::time::Duration;

use dfs_proto::{DatanodeInfo, ExtendedBlock, WriteStage};

use super::Streamer;
use crate::client::Inner;
use crate::error::{Error, Result};
use crate::pipeline::{NodeFailure, Pipeline, Setup};

/// Recoveries of the same packet before the write gives up (HDFS: 5).
const MAX_RECOVERIES: u32 = 5;

impl Streamer {
    /// Rebuilds the pipeline of the current block after `failure` and
    /// resends every unacknowledged packet.
    pub(super) async fn recover(&mut self, mut failure: NodeFailure) -> Result<()> {
        loop {
            let Some(b) = self.cur.as_mut() else {
                return Err(Error::Server {
                    message: format!("write of {}: {}", self.path, failure.reason),
                });
            };
            b.pipeline = None;
            let key = b.unacked.front().map_or(b.acked, |p| p.packet.offset);
            if b.recovery_key == Some(key) {
                b.recoveries += 1;
            } else {
                b.recovery_key = Some(key);
                b.recoveries = 1;
            }
            if b.recoveries > MAX_RECOVERIES {
                return Err(Error::Server {
                    message: format!(
                        "write of {} failed: block {} at offset {key} went through {MAX_RECOVERIES} pipeline recoveries; last failure: {}",
                        self.path, b.block, failure.reason
                    ),
                });
            }
            let index = failure.index.min(b.nodes.len().saturating_sub(1));
            let bad = b.nodes.remove(index);
            if failure.no_space {
                tracing::info!(
                    path = %self.path, block = %b.block, node = %bad.address, reason = %failure.reason,
                    acked = b.acked, "datanode full in the write pipeline; going on without it"
                );
            } else {
                tracing::warn!(
                    path = %self.path, block = %b.block, node = %bad.address, reason = %failure.reason,
                    acked = b.acked, "datanode failed in the write pipeline; recovering"
                );
            }
            if b.nodes.is_empty() {
                if failure.no_space {
                    return Err(Error::NoSpace {
                        message: format!(
                            "no space to go on writing block {} of {}: the last datanode of its pipeline is full ({})",
                            b.block, self.path, failure.reason
                        ),
                    });
                }
                return Err(Error::Unreachable {
                    addr: bad.address,
                    message: format!(
                        "every datanode of the pipeline of block {} of {} failed; last: {}",
                        b.block, self.path, failure.reason
                    ),
                });
            }
            let any_acked = b.any_acked;
            self.exclude(bad, &failure);
            let result = if any_acked {
                self.rebuild_pipeline().await
            } else {
                self.reallocate_block().await
            };
            match result {
                Ok(()) => return Ok(()),
                Err(Step::Node(f)) => failure = f,
                Err(Step::Fatal(e)) => return Err(e),
            }
        }
    }

    /// No byte of the block was acknowledged: give it up and write its
    /// packets into a fresh block on other nodes.
    async fn reallocate_block(&mut self) -> Result<(), Step> {
        let Some(old) = self.cur.take() else {
            return Ok(());
        };
        self.abandon(&old.block).await;
        let mut state = old;
        let lb = self.add_block().await.map_err(Step::Fatal)?;
        let block = lb.block.unwrap_or_default();
        let opened = Pipeline::open(self.new_block_setup(&lb.locations, block)).await;
        state.block = block;
        state.replica_gs = block.generation_stamp;
        state.nodes = lb.locations;
        state.acked = 0;
        self.cur = Some(state);
        match opened {
            Ok(p) => self.resend(p).await,
            Err(f) => Err(Step::Node(f)),
        }
    }

    /// Some bytes were acknowledged: new generation stamp, a replacement
    /// node if the cluster has one, reopen with stage RECOVER, resend.
    async fn rebuild_pipeline(&mut self) -> Result<(), Step> {
        let ctx = self.ctx.clone();
        let path = self.path.clone();
        let file_id = self.file_id;
        let ack_timeout_base = self.ack_timeout_base();
        let replication = self.replication as usize;
        let excluded = self.excluded_keys();
        let Some(b) = self.cur.as_mut() else {
            return Ok(());
        };
        // The block as the namenode knows it: the stamp of the last
        // pipeline it recorded, and the acknowledged length.
        let acked_block = ExtendedBlock {
            id: b.block.id,
            generation_stamp: b.replica_gs,
            length: b.acked,
        };
        // A failed earlier attempt may have moved some replicas to a newer
        // stamp than the namenode's; none is newer than the last one issued.
        let newest_gs = b.block.generation_stamp.max(b.replica_gs);

        // 1. A new generation stamp, so replicas left behind are stale.
        let req = dfs_proto::UpdateBlockForPipelineRequest {
            client_name: ctx.client_name.clone(),
            block: Some(acked_block),
        };
        let resp = ctx
            .namenode
            .call("UpdateBlockForPipeline", &path, |mut c| async move {
                c.update_block_for_pipeline(req).await
            })
            .await
            .map_err(Step::Fatal)?;
        let new_gs = resp.new_generation_stamp;
        b.block.generation_stamp = new_gs;
        let source_block = ExtendedBlock {
            generation_stamp: newest_gs,
            ..acked_block
        };

        // 2. A replacement for the lost node, brought up to the acked bytes.
        let mut nodes = b.nodes.clone();
        if nodes.len() < replication {
            let req = dfs_proto::GetAdditionalDatanodesRequest {
                path: path.clone(),
                client_name: ctx.client_name.clone(),
                block: Some(acked_block),
                existing_nodes: nodes.iter().map(|n| n.id.clone()).collect(),
                excluded_nodes: excluded,
                count: (replication - nodes.len()) as u32,
                file_id,
            };
            match ctx
                .namenode
                .call("GetAdditionalDatanodes", &path, |mut c| async move {
                    c.get_additional_datanodes(req).await
                })
                .await
            {
                Ok(r) if !r.nodes.is_empty() => {
                    let fresh: Vec<DatanodeInfo> = r
                        .nodes
                        .into_iter()
                        .filter(|n| !nodes.iter().any(|m| m.id == n.id))
                        .collect();
                    if !fresh.is_empty() {
                        match transfer(&ctx, &nodes[0], &source_block, &fresh).await {
                            Ok(()) => {
                                tracing::info!(
                                    path = %path, block = %acked_block,
                                    added = ?fresh.iter().map(|n| n.address.as_str()).collect::<Vec<_>>(),
                                    "replacement datanode joined the pipeline"
                                );
                                nodes.extend(fresh);
                            }
                            Err(e) => tracing::warn!(
                                path = %path, block = %acked_block, error = %e,
                                "could not copy the replica to a replacement datanode; going on with fewer replicas"
                            ),
                        }
                    }
                }
                Ok(_) => tracing::info!(
                    path = %path, block = %acked_block,
                    "no replacement datanode available; going on with {} replicas", nodes.len()
                ),
                Err(e) => tracing::warn!(
                    path = %path, block = %acked_block, error = %e,
                    "could not ask for a replacement datanode; going on with fewer replicas"
                ),
            }
        }
        b.nodes = nodes;

        // 3. Reopen the stream with stage RECOVER.
        let new_block = ExtendedBlock {
            id: b.block.id,
            generation_stamp: new_gs,
            length: b.acked,
        };
        let setup = Setup {
            pool: &ctx.datanodes,
            nodes: &b.nodes,
            block: new_block,
            stage: WriteStage::Recover,
            bytes_acked: b.acked,
            client_name: &ctx.client_name,
            timeout: ctx.opts.rpc_timeout.max(Duration::from_secs(10)),
            ack_timeout_base,
        };
        let pipeline = Pipeline::open(setup).await.map_err(Step::Node)?;

        // 4. Record the new pipeline.
        let req = dfs_proto::UpdatePipelineRequest {
            client_name: ctx.client_name.clone(),
            old_block: Some(acked_block),
            new_block: Some(new_block),
            node_ids: b.nodes.iter().map(|n| n.id.clone()).collect(),
        };
        ctx.namenode
            .call("UpdatePipeline", &path, |mut c| async move {
                c.update_pipeline(req).await
            })
            .await
            .map_err(Step::Fatal)?;
        b.replica_gs = new_gs;
        tracing::info!(
            path = %path, block = %b.block, acked = b.acked,
            pipeline = ?b.nodes.iter().map(|n| n.address.as_str()).collect::<Vec<_>>(),
            "write pipeline recovered"
        );
        self.resend(pipeline).await
    }

    /// Resends every unacknowledged packet on a fresh pipeline.
    async fn resend(&mut self, mut pipeline: Pipeline) -> Result<(), Step> {
        let timeout = self.setup_timeout();
        let Some(b) = self.cur.as_mut() else {
            return Ok(());
        };
        for inflight in b.unacked.iter_mut() {
            match pipeline.send(&inflight.packet).await {
                Ok(seqno) => inflight.seqno = seqno,
                Err(()) => return Err(Step::Node(pipeline.failure(timeout).await)),
            }
        }
        b.pipeline = Some(pipeline);
        Ok(())
    }
}

/// The outcome of one recovery attempt that did not work.
enum Step {
    /// Another node failed: try again without it.
    Node(NodeFailure),
    /// Give up.
    Fatal(Error),
}

/// Has `source` copy its replica (up to `block.length`) to `targets`.
async fn transfer(
    ctx: &Inner,
    source: &DatanodeInfo,
    block: &ExtendedBlock,
    targets: &[DatanodeInfo],
) -> Result<()> {
    let mut dn = ctx.datanodes.get(&source.address).await?;
    let req = dfs_proto::TransferReplicaRequest {
        block: Some(*block),
        targets: targets.to_vec(),
        client_name: ctx.client_name.clone(),
    };
    let timeout = ctx.opts.rpc_timeout.max(Duration::from_secs(30));
    match tokio::time::timeout(timeout, dn.transfer_replica(req)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(status)) => Err(Error::from_status(status, "", &source.address)),
        Err(_) => Err(Error::Timeout {
            what: format!("transfer of {block} from {}", source.address),
        }),
    }
}
