//! The state one running datanode shares between its server, its pipelines
//! and its background tasks.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use dfs_proto::namenode::DatanodeProtocolClient;
use dfs_proto::DatanodeInfo;
use parking_lot::Mutex;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::Channel;

use crate::block_store::BlockStore;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::net::Peers;
use crate::reports::Reporter;

/// What kind of background job holds a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Job {
    /// A namenode-ordered copy.
    Transfer,
    /// A lease recovery led by this node.
    Recovery,
}

/// One running datanode.
#[derive(Debug)]
pub struct Node {
    /// Settings.
    pub config: Config,
    /// host:port of the DataTransfer service, as advertised.
    pub address: String,
    /// Local replicas.
    pub store: Arc<BlockStore>,
    /// Incremental block reports to send.
    pub reporter: Reporter,
    /// Held while an incremental report is sent and while a full report is
    /// taken and sent, so the namenode sees them in the order they
    /// describe: a replica received after a full report's snapshot is never
    /// reported before it (the full report would then drop it).
    pub report_gate: tokio::sync::Mutex<()>,
    /// The namenode's DatanodeProtocol (connects lazily).
    pub namenode: DatanodeProtocolClient<Channel>,
    /// Cancelled when the node stops.
    pub shutdown: CancellationToken,
    /// Pipelines, transfers and recoveries in flight, awaited at shutdown.
    pub tasks: TaskTracker,
    /// Permits for namenode-ordered copies (`--max-transfers`).
    pub transfer_slots: Arc<Semaphore>,
    /// Permits for block transfer connections (`--max-xceivers`).
    pub xceivers: Arc<Semaphore>,
    /// Connections refused for want of a permit since the last time that
    /// was logged, and when that was (one line a second at most).
    pub busy_refusals: Mutex<(u64, Option<std::time::Instant>)>,
    /// Shared channels to other datanodes.
    pub peers: Peers,
    active_transfers: AtomicU32,
    jobs: Mutex<HashSet<(Job, u64)>>,
}

impl Node {
    /// A node over an opened store.
    pub fn new(
        config: Config,
        address: String,
        store: Arc<BlockStore>,
        namenode: DatanodeProtocolClient<Channel>,
    ) -> Node {
        let slots = config.max_transfers.max(1) as usize;
        let xceivers = config.max_xceivers.max(1) as usize;
        Node {
            config,
            address,
            store,
            reporter: Reporter::default(),
            report_gate: tokio::sync::Mutex::new(()),
            namenode,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            transfer_slots: Arc::new(Semaphore::new(slots)),
            xceivers: Arc::new(Semaphore::new(xceivers)),
            busy_refusals: Mutex::new((0, None)),
            peers: Peers::default(),
            active_transfers: AtomicU32::new(0),
            jobs: Mutex::new(HashSet::new()),
        }
    }

    /// The node's id.
    pub fn id(&self) -> &str {
        self.store.node_id()
    }

    /// How the namenode knows this node.
    pub fn info(&self) -> DatanodeInfo {
        DatanodeInfo {
            id: self.id().to_string(),
            address: self.address.clone(),
            rack: self.config.rack.clone(),
        }
    }

    /// True when `node` is this datanode.
    pub fn is_me(&self, node: &DatanodeInfo) -> bool {
        node.id == self.id() || (node.id.is_empty() && node.address == self.address)
    }

    /// Replica copies in progress (reported in heartbeats).
    pub fn active_transfers(&self) -> u32 {
        self.active_transfers.load(Ordering::Relaxed)
    }

    /// Block transfer connections open now (each holds one of the
    /// `--max-xceivers` permits; reported in heartbeats).
    pub fn xceiver_count(&self) -> u32 {
        let max = self.config.max_xceivers.max(1) as usize;
        u32::try_from(max.saturating_sub(self.xceivers.available_permits())).unwrap_or(u32::MAX)
    }

    /// Counts a replica copy for as long as the guard lives.
    pub fn transfer_guard(self: &Arc<Self>) -> TransferGuard {
        self.active_transfers.fetch_add(1, Ordering::Relaxed);
        TransferGuard { node: self.clone() }
    }

    /// Claims `block` for a job; `None` when the same job already runs.
    pub fn claim(self: &Arc<Self>, job: Job, block: u64) -> Option<JobGuard> {
        self.jobs.lock().insert((job, block)).then(|| JobGuard {
            node: self.clone(),
            key: (job, block),
        })
    }

    /// Number of blocks held by `job`.
    pub fn job_count(&self, job: Job) -> usize {
        self.jobs.lock().iter().filter(|(j, _)| *j == job).count()
    }

    /// Runs blocking store work on the blocking pool.
    pub async fn blocking<T, F>(&self, what: &'static str, f: F) -> Result<T>
    where
        F: FnOnce(&Arc<BlockStore>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| Error::TaskFailed {
                task: what,
                reason: e.to_string(),
            })?
    }
}

/// Counts one active replica copy.
#[derive(Debug)]
pub struct TransferGuard {
    node: Arc<Node>,
}

impl Drop for TransferGuard {
    fn drop(&mut self) {
        self.node.active_transfers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Holds a block for a job until dropped.
#[derive(Debug)]
pub struct JobGuard {
    node: Arc<Node>,
    key: (Job, u64),
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        self.node.jobs.lock().remove(&self.key);
    }
}
