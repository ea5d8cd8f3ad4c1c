//! The block scanner: re-reads every finalized replica in the background at
//! `--scan-rate` bytes per second, verifying every chunk, so bit rot is found
//! before a reader needs the data. A corrupt replica is moved to `corrupt/`
//! and reported; the namenode then re-replicates from a good copy.

use std::sync::Arc;
use std::time::Duration;

use dfs_proto::defaults::BYTES_PER_CHECKSUM;
use tokio::time::Instant;
use tracing::{debug, info};

use crate::block_store::{ReplicaInfo, ReplicaState};
use crate::node::Node;
use crate::reader::handle_corruption;

/// Shortest time between the starts of two passes over all replicas.
const MIN_PASS: Duration = Duration::from_secs(10);
/// Pause before the first pass, so start-up work goes first.
const START_DELAY: Duration = Duration::from_secs(1);

/// Bytes read per step: about a quarter second of the rate, 64 KiB to 1 MiB.
fn step_bytes(rate: u64) -> u64 {
    let step = (rate / 4).clamp(64 * 1024, 1024 * 1024);
    step / BYTES_PER_CHECKSUM as u64 * BYTES_PER_CHECKSUM as u64
}

async fn sleep_or_stop(node: &Node, d: Duration) -> bool {
    tokio::select! {
        _ = node.shutdown.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}

/// Runs passes over the finalized replicas until the node stops.
pub async fn run(node: Arc<Node>) {
    let rate = node.config.scan_rate;
    if rate == 0 {
        info!("block scanner disabled (--scan-rate 0)");
        return;
    }
    if sleep_or_stop(&node, START_DELAY).await {
        return;
    }
    loop {
        let started = Instant::now();
        let mut replicas: Vec<ReplicaInfo> = node
            .store
            .replicas()
            .into_iter()
            .filter(|r| r.state == ReplicaState::Finalized)
            .collect();
        replicas.sort_by_key(|r| r.block.id);
        let (mut scanned, mut bytes) = (0usize, 0u64);
        for r in replicas {
            match scan_one(&node, &r, rate).await {
                Some(n) => {
                    scanned += 1;
                    bytes += n;
                }
                None if node.shutdown.is_cancelled() => return,
                None => {}
            }
        }
        if scanned > 0 {
            debug!(
                replicas = scanned,
                bytes,
                secs = started.elapsed().as_secs(),
                "scanner pass done"
            );
        }
        let rest = MIN_PASS.saturating_sub(started.elapsed());
        if sleep_or_stop(&node, rest).await {
            return;
        }
    }
}

/// Verifies one replica at the configured rate; returns the bytes checked,
/// or `None` when the replica could not be scanned (gone, corrupt, stopped).
async fn scan_one(node: &Arc<Node>, info: &ReplicaInfo, rate: u64) -> Option<u64> {
    let (id, gs) = (info.block.id, info.block.generation_stamp);
    let reader = node
        .blocking("open replica", move |s| s.open_reader(id, gs))
        .await
        .ok()?;
    if reader.info().block.generation_stamp != gs || reader.info().state != ReplicaState::Finalized
    {
        return None;
    }
    let len = reader.info().block.length;
    let step = step_bytes(rate);
    let mut reader = reader;
    let mut pos = 0u64;
    while pos < len {
        let end = (pos + step).min(len);
        let began = Instant::now();
        let (r, res) = tokio::task::spawn_blocking(move || {
            let mut r = reader;
            let res = r.read(pos, end).map(|_| ());
            (r, res)
        })
        .await
        .ok()?;
        if let Err(e) = res {
            if e.is_corruption() {
                handle_corruption(node, &r, &e);
            } else {
                debug!(block = %info.block, error = %e, "scanner skipped a replica");
            }
            return None;
        }
        reader = r;
        let budget = Duration::from_secs_f64((end - pos) as f64 / rate as f64);
        pos = end;
        let pause = budget.saturating_sub(began.elapsed());
        if sleep_or_stop(node, pause).await {
            return None;
        }
    }
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_whole_chunks_within_bounds() {
        assert_eq!(step_bytes(1), 64 * 1024);
        assert_eq!(step_bytes(1024 * 1024), 256 * 1024);
        assert_eq!(step_bytes(u64::MAX), 1024 * 1024);
        assert_eq!(step_bytes(1_000_001) % 512, 0);
    }
}
