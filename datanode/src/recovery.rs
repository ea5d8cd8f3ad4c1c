//! Replica recovery (lease recovery of a block whose writer is gone).
//!
//! The namenode picks a primary datanode and sends it `RecoverBlock` with a
//! new generation stamp (the recovery id). The primary asks every replica for
//! its state and length (`InitReplicaRecovery`, which also cuts off any
//! writer), agrees on a length, brings every replica to it under the new
//! stamp (`UpdateReplicaUnderRecovery`) and reports the outcome with
//! `CommitBlockSynchronization`.
//!
//! The agreed length: a finalized replica's length when one exists (the
//! block was complete on it), else the shortest replica being written —
//! every acknowledged byte is on every surviving pipeline node, so the
//! minimum never loses acknowledged data — leaving out replicas found being
//! written after their node restarted while any other answers (see
//! `agreed_length`).

use std::sync::Arc;
use std::time::Duration;

use dfs_proto::defaults;
use dfs_proto::error_kind::ErrorKind;
use dfs_proto::{
    CommitBlockSynchronizationRequest, DatanodeInfo, ExtendedBlock, InitReplicaRecoveryRequest,
    InitReplicaRecoveryResponse, RecoverBlock, ReplicaStateKind, UpdateReplicaUnderRecoveryRequest,
    UpdateReplicaUnderRecoveryResponse,
};
use futures::future::join_all;
use tokio::time::timeout;
use tracing::{info, warn, Instrument};

use crate::block_store::ReplicaState;
use crate::error::{Error, Result};
use crate::node::{Job, Node};

/// Attempts at CommitBlockSynchronization before leaving it to the
/// namenode's next recovery.
const COMMIT_ATTEMPTS: u32 = 3;

fn state_kind(state: ReplicaState, restarted: bool) -> ReplicaStateKind {
    match state {
        ReplicaState::Finalized => ReplicaStateKind::Finalized,
        ReplicaState::Rbw | ReplicaState::Temporary if restarted => ReplicaStateKind::Rwr,
        ReplicaState::Rbw | ReplicaState::Temporary => ReplicaStateKind::Rbw,
    }
}

/// The `InitReplicaRecovery` RPC.
pub async fn init_replica_recovery(
    node: Arc<Node>,
    req: InitReplicaRecoveryRequest,
) -> Result<InitReplicaRecoveryResponse> {
    let block = req
        .block
        .ok_or_else(|| Error::invalid(0, "recovery request without a block"))?;
    tracing::Span::current().record("block", tracing::field::display(&block));
    let rid = req.recovery_id;
    let (info, restarted) = node
        .blocking("init replica recovery", move |s| {
            s.init_recovery(&block, rid)
        })
        .await?;
    info!(replica = %info.block, bytes = info.block.length, recovery_id = rid, restarted, "replica recovery started");
    Ok(InitReplicaRecoveryResponse {
        replica: Some(info.block),
        state: state_kind(info.state, restarted) as i32,
    })
}

/// The `UpdateReplicaUnderRecovery` RPC.
pub async fn update_replica_under_recovery(
    node: Arc<Node>,
    req: UpdateReplicaUnderRecoveryRequest,
) -> Result<UpdateReplicaUnderRecoveryResponse> {
    let block = req
        .block
        .ok_or_else(|| Error::invalid(0, "recovery request without a block"))?;
    tracing::Span::current().record("block", tracing::field::display(&block));
    let (id, rid, len) = (block.id, req.recovery_id, req.new_length);
    let replica = node
        .blocking("update replica under recovery", move |s| {
            s.update_recovery(id, rid, len)
        })
        .await?;
    info!(replica = %replica, bytes = replica.length, "replica recovered and finalized");
    Ok(UpdateReplicaUnderRecoveryResponse {
        replica: Some(replica),
    })
}

/// Starts a `RecoverBlock` command as primary, in the background.
pub fn spawn_primary(node: &Arc<Node>, cmd: RecoverBlock) {
    let Some(block) = cmd.block else {
        warn!("ignoring a recovery command without a block");
        return;
    };
    let Some(job) = node.claim(Job::Recovery, block.id) else {
        info!(block = %block, "recovery already in progress; ignoring the repeated command");
        return;
    };
    let span = tracing::info_span!("recover_block", block = %block, recovery_id = cmd.new_generation_stamp);
    let node2 = node.clone();
    node.tasks.spawn(
        async move {
            let _job = job;
            tokio::select! {
                r = recover_block(&node2, cmd) => if let Err(e) = r {
                    warn!(error = %e, "block recovery failed; the namenode will retry");
                },
                _ = node2.shutdown.cancelled() => {}
            }
        }
        .instrument(span),
    );
}

/// One replica's answer to step 1.
struct Answer {
    node: DatanodeInfo,
    replica: ExtendedBlock,
    finalized: bool,
    /// Being written when its node last stopped (`RWR`).
    restarted: bool,
}

/// The length every replica is brought to: a finalized replica's (the
/// block was complete there), else the shortest replica still being
/// written — every acknowledged byte is on every node of the pipeline, so
/// that never loses one — and only when no such replica answered, the
/// shortest of those found being written after their node restarted
/// (their unsynced tail may be gone after a power loss; taking their
/// minimum when a live replica answered would cut acknowledged bytes from
/// the others, as HDFS's recovery avoids the same way).
fn agreed_length(answers: &[Answer]) -> u64 {
    let min = |keep: &dyn Fn(&Answer) -> bool| {
        answers
            .iter()
            .filter(|a| keep(a))
            .map(|a| a.replica.length)
            .min()
    };
    min(&|a| a.finalized)
        .or_else(|| min(&|a| !a.restarted))
        .or_else(|| min(&|_| true))
        .unwrap_or(0)
}

fn node_name(n: &DatanodeInfo) -> String {
    if n.id.is_empty() {
        n.address.clone()
    } else {
        n.id.clone()
    }
}

/// Whether replica `a` is brought to `new_len` and kept: it must hold that
/// many bytes, and a replica found being written after its node restarted
/// is left out entirely while a finalized or live one answered (as HDFS
/// does): after a power loss it may miss pages before its end too, which
/// the start-up scan (last chunk only) does not see.
fn takes_part(a: &Answer, answers: &[Answer], new_len: u64) -> bool {
    // (A finalized replica is never a restarted one.)
    let live = answers.iter().any(|a| !a.restarted);
    a.replica.length >= new_len && !(live && a.restarted)
}

async fn recover_block(node: &Arc<Node>, cmd: RecoverBlock) -> Result<()> {
    let block = cmd
        .block
        .ok_or_else(|| Error::invalid(0, "recovery command without a block"))?;
    let rid = cmd.new_generation_stamp;
    if rid <= block.generation_stamp {
        return Err(Error::invalid(
            block.id,
            format!("recovery id {rid} is not newer than {block}"),
        ));
    }
    if cmd.replicas.is_empty() {
        return Err(Error::invalid(
            block.id,
            "recovery command without replicas",
        ));
    }
    let inits = cmd
        .replicas
        .iter()
        .map(|r| async move { (r.clone(), init_on(node, r, block, rid).await) });
    let mut answers = Vec::new();
    // Nodes that answered that they hold no replica of the block at all.
    let mut without = 0;
    for (r, res) in join_all(inits).await {
        match res {
            Ok(resp) => match resp.replica {
                Some(replica) => answers.push(Answer {
                    node: r,
                    replica,
                    finalized: resp.state == ReplicaStateKind::Finalized as i32,
                    restarted: resp.state == ReplicaStateKind::Rwr as i32,
                }),
                None => warn!(node = %r.address, "replica answered without its state; left out"),
            },
            Err(e) if e.kind() == ErrorKind::NotFound => {
                info!(node = %r.address, "node holds no replica of the block");
                without += 1;
            }
            Err(e) => warn!(node = %r.address, error = %e, "replica left out of the recovery"),
        }
    }
    let old_block = block;
    // No replica that answered holds a byte — and some replica answered,
    // or every node answered that it holds none: the writer never got a
    // packet acknowledged in this block (every acknowledged byte is on every
    // pipeline node), so the block goes, as HDFS does when no replica
    // exists. When nobody answered at all, the block stays for a later try.
    let all_answered = answers.len() + without == cmd.replicas.len();
    let no_byte = answers
        .iter()
        .all(|a| !a.finalized && a.replica.length == 0);
    if no_byte && (!answers.is_empty() || all_answered) {
        info!(
            empty = answers.len(),
            without, "no replica holds any byte; asking the namenode to drop the block"
        );
        let req = CommitBlockSynchronizationRequest {
            old_block: Some(old_block),
            new_block: Some(ExtendedBlock {
                id: block.id,
                generation_stamp: rid,
                length: 0,
            }),
            node_ids: vec![],
            delete: true,
        };
        return commit(node, req).await;
    }
    if answers.is_empty() {
        return Err(Error::Pipeline {
            addr: cmd
                .replicas
                .iter()
                .map(|r| r.address.as_str())
                .collect::<Vec<_>>()
                .join(","),
            reason: format!("no replica of {block} could take part in its recovery"),
        });
    }
    let new_len = agreed_length(&answers);
    let updates = answers
        .iter()
        .filter(|a| takes_part(a, &answers, new_len))
        .map(|a| async move { (a, update_on(node, &a.node, a.replica, rid, new_len).await) });
    let mut node_ids = Vec::new();
    for (a, res) in join_all(updates).await {
        match res {
            Ok(_) => node_ids.push(node_name(&a.node)),
            Err(e) => {
                warn!(node = %a.node.address, error = %e, "replica could not be updated; left out")
            }
        }
    }
    if node_ids.is_empty() {
        return Err(Error::Pipeline {
            addr: String::new(),
            reason: format!("no replica of {block} could be brought to {new_len} bytes"),
        });
    }
    info!(
        bytes = new_len,
        replicas = node_ids.len(),
        "replicas synchronized; committing"
    );
    let req = CommitBlockSynchronizationRequest {
        old_block: Some(old_block),
        new_block: Some(ExtendedBlock {
            id: block.id,
            generation_stamp: rid,
            length: new_len,
        }),
        node_ids,
        delete: false,
    };
    commit(node, req).await
}

async fn commit(node: &Node, req: CommitBlockSynchronizationRequest) -> Result<()> {
    let mut last = None;
    for attempt in 0..COMMIT_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        match node
            .namenode
            .clone()
            .commit_block_synchronization(req.clone())
            .await
        {
            Ok(_) => {
                info!("block synchronization committed");
                return Ok(());
            }
            Err(s) => {
                last = Some(Error::remote(
                    &node.config.namenode,
                    "CommitBlockSynchronization",
                    &s,
                ))
            }
        }
    }
    Err(last.unwrap_or(Error::ShuttingDown))
}

async fn init_on(
    node: &Arc<Node>,
    target: &DatanodeInfo,
    block: ExtendedBlock,
    rid: u64,
) -> Result<InitReplicaRecoveryResponse> {
    let req = InitReplicaRecoveryRequest {
        block: Some(block),
        recovery_id: rid,
    };
    if node.is_me(target) {
        return init_replica_recovery(node.clone(), req).await;
    }
    let addr = &target.address;
    let call = async {
        let mut client = node.peers.get(addr).await?;
        client
            .init_replica_recovery(req)
            .await
            .map(|r| r.into_inner())
            .map_err(|s| Error::remote(addr, "InitReplicaRecovery", &s))
    };
    timeout(defaults::RPC_TIMEOUT, call)
        .await
        .map_err(|_| Error::Pipeline {
            addr: addr.clone(),
            reason: "InitReplicaRecovery timed out".to_string(),
        })?
}

async fn update_on(
    node: &Arc<Node>,
    target: &DatanodeInfo,
    replica: ExtendedBlock,
    rid: u64,
    new_len: u64,
) -> Result<UpdateReplicaUnderRecoveryResponse> {
    let req = UpdateReplicaUnderRecoveryRequest {
        block: Some(replica),
        recovery_id: rid,
        new_length: new_len,
    };
    if node.is_me(target) {
        return update_replica_under_recovery(node.clone(), req).await;
    }
    let addr = &target.address;
    let call = async {
        let mut client = node.peers.get(addr).await?;
        client
            .update_replica_under_recovery(req)
            .await
            .map(|r| r.into_inner())
            .map_err(|s| Error::remote(addr, "UpdateReplicaUnderRecovery", &s))
    };
    timeout(defaults::RPC_TIMEOUT, call)
        .await
        .map_err(|_| Error::Pipeline {
            addr: addr.clone(),
            reason: "UpdateReplicaUnderRecovery timed out".to_string(),
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(length: u64, state: ReplicaStateKind) -> Answer {
        Answer {
            node: DatanodeInfo::default(),
            replica: ExtendedBlock {
                id: 1,
                generation_stamp: 5,
                length,
            },
            finalized: state == ReplicaStateKind::Finalized,
            restarted: state == ReplicaStateKind::Rwr,
        }
    }

    #[test]
    fn a_replica_short_after_its_node_restarted_does_not_cut_the_others() {
        use ReplicaStateKind::{Finalized, Rbw, Rwr};
        let agreed = |a: &[(u64, ReplicaStateKind)]| {
            agreed_length(&a.iter().map(|&(l, s)| answer(l, s)).collect::<Vec<_>>())
        };
        // Two live replicas have 3000 acknowledged bytes; the third lost its
        // unsynced tail in a power loss.
        assert_eq!(agreed(&[(3000, Rbw), (3000, Rbw), (0, Rwr)]), 3000);
        assert_eq!(agreed(&[(3000, Rbw), (2600, Rbw), (1000, Rwr)]), 2600);
        // Only restarted replicas: the shortest of them.
        assert_eq!(agreed(&[(2000, Rwr), (1500, Rwr)]), 1500);
        // A finalized replica decides.
        assert_eq!(agreed(&[(4000, Finalized), (4096, Rbw), (0, Rwr)]), 4000);
        assert_eq!(agreed(&[]), 0);
        // Who is updated and kept: a restarted replica long enough is still
        // left out while a live one answered, and takes part when none did.
        let answers = [answer(3000, Rbw), answer(3000, Rbw), answer(3500, Rwr)];
        let kept: Vec<bool> = answers
            .iter()
            .map(|a| takes_part(a, &answers, 3000))
            .collect();
        assert_eq!(kept, [true, true, false]);
        let answers = [answer(2000, Rwr), answer(1500, Rwr), answer(1000, Rwr)];
        let kept: Vec<bool> = answers
            .iter()
            .map(|a| takes_part(a, &answers, 1000))
            .collect();
        assert_eq!(kept, [true, true, true]);
    }
}
