//! The link to the namenode: registration, heartbeats, full and incremental
//! block reports, and the commands that come back in heartbeat replies.
//!
//! The namenode may be away (not started yet, restarting): every call is
//! retried with capped exponential backoff, and the outage is logged once
//! when it starts and once when it ends. Data transfer keeps working
//! meanwhile; reports wait in the [`Reporter`](crate::reports::Reporter).

use std::sync::Arc;
use std::time::Duration;

use dfs_proto::datanode_command::Command;
use dfs_proto::error_kind::ErrorKind;
use dfs_proto::{
    BlockReportRequest, DatanodeCommand, DeleteBlocks, HeartbeatRequest, HeartbeatResponse,
    IncrementalBlockReportRequest, RegisterRequest, ReplicaReport, ReplicaState as WireState,
    StorageReport,
};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::block_store::{ReplicaState, StorageStats};
use crate::error::{Error, Result};
use crate::node::Node;
use crate::reports::Event;
use crate::{recovery, transfer};

/// Events per incremental block report (~40 bytes each on the wire).
const IBR_MAX_EVENTS: usize = 10_000;

/// First retry delay after a failed call to the namenode.
const BACKOFF_START: Duration = Duration::from_millis(250);
/// Longest retry delay.
const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// Capped exponential backoff.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: BACKOFF_START,
        }
    }
}

impl Backoff {
    /// The next delay (doubling up to the cap).
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(BACKOFF_CAP);
        d
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.next = BACKOFF_START;
    }
}

/// Whether the namenode answers, logged on changes only.
struct Link<'a> {
    addr: &'a str,
    up: Option<bool>,
}

impl Link<'_> {
    fn up(&mut self, what: &str) {
        if self.up != Some(true) {
            info!(namenode = %self.addr, "{what}");
        }
        self.up = Some(true);
    }

    fn down(&mut self, err: &Error) {
        if self.up != Some(false) {
            warn!(
                namenode = %self.addr,
                reason = %err,
                "namenode unreachable; retrying with backoff (reads keep working, new blocks need the namenode)"
            );
        }
        self.up = Some(false);
    }
}

/// Sleeps unless the node stops first; true when it stops.
async fn sleep_or_stop(node: &Node, d: Duration) -> bool {
    tokio::select! {
        _ = node.shutdown.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}

fn storage_report(s: &StorageStats) -> StorageReport {
    StorageReport {
        capacity: s.capacity,
        used: s.used,
        remaining: s.remaining,
        failure: s.failure.clone().unwrap_or_default(),
        full: s.full,
    }
}

/// Re-checks the storage (logging changes) and returns its figures.
async fn storage(node: &Node, last_failure: &mut Option<String>) -> Result<StorageStats> {
    let (failure, stats) = node
        .blocking("check storage", |s| Ok((s.check_storage(), s.stats())))
        .await?;
    if failure != *last_failure {
        match &failure {
            Some(f) => {
                warn!(reason = %f, "storage failed: refusing writes, reporting the failure to the namenode")
            }
            None => info!("storage is healthy again"),
        }
        *last_failure = failure;
    }
    Ok(stats)
}

/// Registration, heartbeats, full block reports and command execution,
/// until the node stops.
pub async fn run(node: Arc<Node>) {
    let stop = node.shutdown.clone();
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = heartbeat_loop(node) => {}
    }
}

async fn heartbeat_loop(node: Arc<Node>) {
    let mut link = Link {
        addr: &node.config.namenode,
        up: None,
    };
    let mut backoff = Backoff::default();
    let mut registered = false;
    let mut last_failure = None;
    let mut next_full_report = Instant::now();
    let mut delay = Duration::ZERO;
    // The namenode's request for an early next heartbeat (0: none).
    let mut fast_ms = 0u32;
    loop {
        if sleep_or_stop(&node, delay).await {
            return;
        }
        let stats = match storage(&node, &mut last_failure).await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "cannot check the storage");
                StorageStats::default()
            }
        };
        // Replicas whose files vanished: the namenode hears they are gone
        // (and copies their blocks from other replicas).
        for lost in node.store.take_lost() {
            node.reporter.deleted(lost);
        }
        if !registered {
            match register(&node, &stats).await {
                Ok(()) => {
                    registered = true;
                    backoff.reset();
                    link.up("registered with the namenode");
                    next_full_report = Instant::now();
                }
                Err(e) => {
                    link.down(&e);
                    delay = backoff.next_delay();
                    continue;
                }
            }
        } else {
            match heartbeat(&node, &stats).await {
                Ok(resp) => {
                    backoff.reset();
                    link.up("namenode reachable again");
                    if resp.reregister {
                        info!("the namenode does not know this node (it restarted?); registering again");
                        registered = false;
                        delay = Duration::ZERO;
                        continue;
                    }
                    fast_ms = resp.next_heartbeat_ms;
                    execute(&node, resp.commands);
                }
                Err(e) => {
                    if matches!(
                        &e,
                        Error::Remote {
                            kind: Some(ErrorKind::NotFound),
                            ..
                        }
                    ) {
                        registered = false;
                    }
                    link.down(&e);
                    delay = backoff.next_delay();
                    continue;
                }
            }
        }
        if Instant::now() >= next_full_report {
            match full_report(&node).await {
                Ok(n) => {
                    debug!(replicas = n, "full block report sent");
                    next_full_report = Instant::now() + node.config.block_report_interval;
                }
                Err(e) => {
                    link.down(&e);
                    delay = backoff.next_delay();
                    continue;
                }
            }
        }
        delay = node.config.heartbeat_interval;
        if fast_ms > 0 {
            delay = delay.min(Duration::from_millis(fast_ms.into()));
        }
    }
}

async fn register(node: &Node, stats: &StorageStats) -> Result<()> {
    let req = RegisterRequest {
        node: Some(node.info()),
        storage: Some(storage_report(stats)),
        cluster_id: node.store.cluster_id().unwrap_or_default(),
    };
    let resp = node
        .namenode
        .clone()
        .register(req)
        .await
        .map_err(|s| Error::remote(&node.config.namenode, "Register", &s))?
        .into_inner();
    // Checked here too: a namenode that does not check (or sent no id)
    // must not be joined by a node of another cluster.
    if !resp.cluster_id.is_empty() {
        node.store.adopt_cluster_id(&resp.cluster_id)?;
    }
    node.store.set_block_size(resp.default_block_size);
    Ok(())
}

async fn heartbeat(node: &Node, stats: &StorageStats) -> Result<HeartbeatResponse> {
    let req = HeartbeatRequest {
        node_id: node.id().to_string(),
        storage: Some(storage_report(stats)),
        active_transfers: node.active_transfers(),
        xceivers: node.xceiver_count(),
        max_xceivers: node.config.max_xceivers,
        address: node.info().address,
    };
    node.namenode
        .clone()
        .heartbeat(req)
        .await
        .map(|r| r.into_inner())
        .map_err(|s| Error::remote(&node.config.namenode, "Heartbeat", &s))
}

fn wire_state(state: ReplicaState) -> WireState {
    match state {
        ReplicaState::Finalized => WireState::Finalized,
        ReplicaState::Rbw | ReplicaState::Temporary => WireState::Rbw,
    }
}

/// Sends a full block report, in parts of `--block-report-part` replicas
/// when it is larger, while no incremental report can overtake it.
async fn full_report(node: &Node) -> Result<usize> {
    let _gate = node.report_gate.lock().await;
    let replicas: Vec<ReplicaReport> = node
        .store
        .replicas()
        .into_iter()
        .map(|r| ReplicaReport {
            block: Some(r.block),
            state: wire_state(r.state) as i32,
        })
        .collect();
    let n = replicas.len();
    let per_part = node.config.block_report_part.max(1);
    let parts = n.div_ceil(per_part).max(1);
    let parts_u32 = u32::try_from(parts).map_err(|_| {
        Error::invalid(
            0,
            format!("a block report of {n} replicas needs too many parts"),
        )
    })?;
    // Distinguishes this report's parts from those of an earlier one that
    // was cut off.
    let report_id = new_report_id();
    let mut chunks = replicas.chunks(per_part);
    for part in 0..parts_u32 {
        let chunk = chunks.next().unwrap_or(&[]);
        let req = BlockReportRequest {
            node_id: node.id().to_string(),
            replicas: chunk.to_vec(),
            report_id,
            part,
            parts: parts_u32,
        };
        node.namenode
            .clone()
            .block_report(req)
            .await
            .map_err(|s| Error::remote(&node.config.namenode, "BlockReport", &s))?;
    }
    if parts > 1 {
        debug!(replicas = n, parts, "full block report sent in parts");
    }
    Ok(n)
}

/// A report id unlikely to repeat: the clock in nanoseconds.
fn new_report_id() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1
}

/// Carries out the commands of a heartbeat reply.
pub fn execute(node: &Arc<Node>, commands: Vec<DatanodeCommand>) {
    for c in commands {
        match c.command {
            Some(Command::Delete(d)) => spawn_delete(node, d),
            Some(Command::Transfer(t)) => transfer::spawn_command(node, t),
            Some(Command::Recover(r)) => recovery::spawn_primary(node, r),
            None => debug!("ignoring an empty command"),
        }
    }
}

fn spawn_delete(node: &Arc<Node>, cmd: DeleteBlocks) {
    let node2 = node.clone();
    node.tasks.spawn(async move {
        let blocks = cmd.blocks;
        let asked = blocks.len();
        let res = node2
            .blocking("delete replicas", move |s| {
                let mut deleted = Vec::new();
                for b in blocks {
                    match s.delete(b.id, b.generation_stamp) {
                        Ok(Some(d)) => deleted.push(d),
                        Ok(None) => {}
                        Err(e) => warn!(block = %b, error = %e, "cannot delete a replica"),
                    }
                }
                Ok(deleted)
            })
            .await;
        match res {
            Ok(deleted) => {
                info!(
                    asked,
                    deleted = deleted.len(),
                    "replicas deleted at the namenode's request"
                );
                for b in deleted {
                    node2.reporter.deleted(b);
                }
            }
            Err(e) => warn!(error = %e, "deleting replicas failed"),
        }
    });
}

/// Sends incremental block reports as events arrive, batching whatever
/// accumulated while the previous report was in flight, until the node
/// stops.
pub async fn report_loop(node: Arc<Node>) {
    let stop = node.shutdown.clone();
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = send_reports(node) => {}
    }
}

async fn send_reports(node: Arc<Node>) {
    let mut backoff = Backoff::default();
    loop {
        tokio::select! {
            _ = node.shutdown.cancelled() => return,
            _ = node.reporter.wait() => {}
        }
        loop {
            let gate = node.report_gate.lock().await;
            let batch = node.reporter.take(IBR_MAX_EVENTS);
            if batch.is_empty() {
                break;
            }
            let mut req = IncrementalBlockReportRequest {
                node_id: node.id().to_string(),
                received: vec![],
                deleted: vec![],
            };
            for (_, ev) in &batch {
                match ev {
                    Event::Received(r) => req.received.push(*r),
                    Event::Deleted(b) => req.deleted.push(*b),
                }
            }
            let sent = node.namenode.clone().incremental_block_report(req).await;
            drop(gate);
            match sent {
                Ok(_) => {
                    debug!(events = batch.len(), "incremental block report sent");
                    backoff.reset();
                }
                Err(s) => {
                    debug!(error = %s.message(), "incremental block report failed; will retry");
                    node.reporter.restore(batch);
                    if sleep_or_stop(&node, backoff.next_delay()).await {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap() {
        let mut b = Backoff::default();
        assert_eq!(b.next_delay(), Duration::from_millis(250));
        assert_eq!(b.next_delay(), Duration::from_millis(500));
        for _ in 0..10 {
            b.next_delay();
        }
        assert_eq!(b.next_delay(), BACKOFF_CAP);
        b.reset();
        assert_eq!(b.next_delay(), BACKOFF_START);
    }
}
