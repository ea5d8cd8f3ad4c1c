//! Defaults shared by every binary and test, following Apache HDFS.

use std::time::Duration;

/// Namenode RPC address when none is given.
pub const NAMENODE_ADDR: &str = "127.0.0.1:9000";
/// Environment variable naming the namenode for `dfs` and `dfs-fuse`.
pub const NAMENODE_ENV: &str = "DFS_NAMENODE";
/// First datanode port of the local dev cluster.
pub const DATANODE_PORT: u16 = 9101;
/// Default block size: 128 MiB (`dfs.blocksize`).
pub const BLOCK_SIZE: u64 = 128 * 1024 * 1024;
/// Smallest block size accepted (must be a multiple of [`BYTES_PER_CHECKSUM`]).
pub const MIN_BLOCK_SIZE: u64 = 4096;
/// Default replication (`dfs.replication`).
pub const REPLICATION: u32 = 3;
/// Largest replication accepted.
pub const MAX_REPLICATION: u32 = 32;
/// Bytes covered by one CRC (`dfs.bytes-per-checksum`).
pub const BYTES_PER_CHECKSUM: usize = 512;
/// Data bytes in one write packet: 64 KiB as in HDFS.
pub const PACKET_SIZE: usize = 64 * 1024;
/// Unacknowledged packets one write stream may have in flight (HDFS: 80).
pub const MAX_PACKETS_IN_FLIGHT: usize = 80;
/// Bytes per message of a block read stream.
pub const READ_CHUNK: usize = 256 * 1024;
/// Largest block `ReadSmallBlocks` serves (one read chunk).
pub const SMALL_BLOCK_MAX: u64 = READ_CHUNK as u64;
/// Blocks one `ReadSmallBlocks` call asks for at most (4 MiB of data at
/// most, half of [`MAX_MESSAGE_SIZE`]).
pub const SMALL_BLOCKS_PER_CALL: usize = 16;
/// Datanode heartbeat interval (`dfs.heartbeat.interval`).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3);
/// A datanode without heartbeat this long is stale.
pub const STALE_AFTER: Duration = Duration::from_secs(30);
/// A datanode without heartbeat this long is dead (2 × 5 min + 10 × 3 s).
pub const DEAD_AFTER: Duration = Duration::from_secs(630);
/// Full block report interval (`dfs.blockreport.intervalMsec`): 6 h.
pub const BLOCK_REPORT_INTERVAL: Duration = Duration::from_secs(6 * 3600);
/// Lease soft limit: another client may recover the file after this.
pub const LEASE_SOFT_LIMIT: Duration = Duration::from_secs(60);
/// Lease hard limit: the namenode recovers the file by itself after this.
pub const LEASE_HARD_LIMIT: Duration = Duration::from_secs(20 * 60);
/// Fraction of complete blocks that must have a replica to leave safe mode.
pub const SAFEMODE_THRESHOLD: f64 = 0.999;
/// Concurrent replication streams one datanode takes part in.
pub const MAX_REPLICATION_STREAMS: u32 = 2;
/// Block transfer protocol connections (block writes and reads) one
/// datanode serves at once (`dfs.datanode.max.transfer.threads`); more are
/// refused.
pub const MAX_XCEIVERS: u32 = 4096;
/// Largest gRPC message any service accepts (a packet plus its checksums).
pub const MAX_MESSAGE_SIZE: usize = 8 * 1024 * 1024;
/// Most entries one directory listing page returns.
pub const LIST_PAGE: u32 = 1000;
/// Most entries one located listing page returns (each with block locations).
pub const LOCATED_LIST_PAGE: u32 = 100;
/// Blocks listed per file in a located listing page: enough to open a small
/// file without another call, and ~100 × 16 blocks stay far below
/// [`MAX_MESSAGE_SIZE`]; a reader asks for the rest.
pub const LOCATED_LIST_BLOCKS: usize = 16;
/// Longest file or directory name, in bytes.
pub const MAX_NAME_LEN: usize = 255;
/// Longest path, in bytes.
pub const MAX_PATH_LEN: usize = 4096;
/// Deepest path, in components.
pub const MAX_PATH_DEPTH: usize = 256;
/// `PacketAck.seqno` of an ack that reports a failure to set up the pipeline
/// (before any packet); its statuses name the node that failed.
pub const SETUP_ACK_SEQNO: u64 = u64::MAX;
/// How long a client waits for the namenode before giving up on a call.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client call waits out a namenode's start-up safe mode (block
/// reports, then the extension), whatever its RPC timeout: a restart of a
/// few seconds fails no change.
pub const SAFE_MODE_WAIT: Duration = Duration::from_secs(30);
/// The base of a pipeline's ack timeouts when the writer gives none.
pub const ACK_TIMEOUT_BASE: Duration = RPC_TIMEOUT;
/// What each node of a pipeline adds to the ack timeout of the nodes
/// upstream of it.
pub const ACK_TIMEOUT_PER_NODE: Duration = Duration::from_secs(5);

/// How long a pipeline member waits for the ack of a packet from the
/// `downstream` nodes after it (for the writer: every pipeline node),
/// given the writer's `base` (`WriteHeader.ack_timeout_base_ms`; 0 = the
/// default). Shorter further down the pipeline, so the node next to a
/// silent one times out first and names it.
pub fn ack_timeout(base_ms: u64, downstream: usize) -> Duration {
    let base = if base_ms == 0 {
        ACK_TIMEOUT_BASE
    } else {
        Duration::from_millis(base_ms)
    };
    base + ACK_TIMEOUT_PER_NODE * u32::try_from(downstream).unwrap_or(u32::MAX)
}

/// Replicas per full block report message (~30 bytes each on the wire, so
/// a part stays well under [`MAX_MESSAGE_SIZE`]); larger reports are split.
pub const BLOCK_REPORT_PART: usize = 100_000;

/// Blocks one `GetBlockLocations` (or located `GetFileInfo`) reply lists
/// at most (~250 KB, far below [`MAX_MESSAGE_SIZE`]); a reader asks again
/// from where the list ends. Without a cap a file of ~4 TB (33,000 blocks)
/// could not be opened.
pub const MAX_LOCATED_BLOCKS: usize = 1000;

/// Inodes one fsck reply covers at most; a page also ends after the file
/// that brings it to [`FSCK_PAGE_BLOCKS`] blocks.
pub const FSCK_PAGE_INODES: usize = 1000;
/// Blocks after which an fsck page ends (at the end of a file).
pub const FSCK_PAGE_BLOCKS: usize = 10_000;

/// Connections from one client (and its clones) to the namenode.
pub const NAMENODE_CONNECTIONS: usize = 2;
/// How long a client waits to connect to any server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Largest HTTP/2 DATA frame a data-path peer accepts (the protocol's
/// default is 16 KiB, so a 64 KiB packet would take four frames).
pub const MAX_FRAME_SIZE: u32 = 1024 * 1024;
