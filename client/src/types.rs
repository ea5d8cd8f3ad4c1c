//! What the client returns: file status, block locations, summaries and the
//! cluster's reports. Every type serializes to the JSON that `dfs ... --json`
//! prints.

use serde::Serialize;

/// Whether a path is a file or a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileType {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// The status of one file or directory.
///
/// ```
/// use dfs_client::{FileStatus, FileType};
/// let st = FileStatus {
///     path: "/logs/app.log".into(), file_type: FileType::File, length: 42,
///     replication: 3, block_size: 128 << 20, owner: "alice".into(),
///     group: "staff".into(), mode: 0o644, mtime: 0, atime: 0, inode: 7,
///     under_construction: false,
/// };
/// assert_eq!(st.name(), "app.log");
/// assert!(!st.is_dir());
/// let json = serde_json::to_value(&st).unwrap();
/// assert_eq!(json["type"], "file");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileStatus {
    /// Absolute path.
    pub path: String,
    /// File or directory (JSON field `type`: `"file"` or `"dir"`).
    #[serde(rename = "type")]
    pub file_type: FileType,
    /// Length in bytes (0 for a directory; the acknowledged length while a
    /// file is being written).
    pub length: u64,
    /// Replicas per block (0 for a directory).
    pub replication: u32,
    /// Block size in bytes (0 for a directory).
    pub block_size: u64,
    /// Owner name.
    pub owner: String,
    /// Group name.
    pub group: String,
    /// Permission bits only, such as `0o644`.
    pub mode: u32,
    /// Modification time, milliseconds since the Unix epoch.
    pub mtime: i64,
    /// Access time, milliseconds since the Unix epoch.
    pub atime: i64,
    /// Stable inode number.
    pub inode: u64,
    /// A writer holds the file open.
    pub under_construction: bool,
}

impl FileStatus {
    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.file_type == FileType::Dir
    }

    /// The last component of the path (`/` for the root).
    pub fn name(&self) -> &str {
        match self.path.rsplit('/').find(|c| !c.is_empty()) {
            Some(name) => name,
            None => "/",
        }
    }
}

impl From<dfs_proto::FileStatus> for FileStatus {
    fn from(p: dfs_proto::FileStatus) -> Self {
        let file_type = if p.file_type == dfs_proto::FileType::Dir as i32 {
            FileType::Dir
        } else {
            FileType::File
        };
        FileStatus {
            path: p.path,
            file_type,
            length: p.length,
            replication: p.replication,
            block_size: p.block_size,
            owner: p.owner,
            group: p.group,
            mode: p.mode & 0o7777,
            mtime: p.mtime_ms,
            atime: p.atime_ms,
            inode: p.inode,
            under_construction: p.under_construction,
        }
    }
}

/// Where one block of a file lives, for data locality.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockLocation {
    /// Block id.
    pub block_id: u64,
    /// Offset of the block's first byte in the file.
    pub offset: u64,
    /// Bytes in the block.
    pub length: u64,
    /// Datanode addresses (`host:port`) holding a replica, nearest first.
    pub hosts: Vec<String>,
    /// The rack of each host, in the same order.
    pub racks: Vec<String>,
    /// Every known replica is corrupt.
    pub corrupt: bool,
}

impl From<&dfs_proto::LocatedBlock> for BlockLocation {
    fn from(lb: &dfs_proto::LocatedBlock) -> Self {
        let block = lb.block.unwrap_or_default();
        BlockLocation {
            block_id: block.id,
            offset: lb.offset,
            length: block.length,
            hosts: lb.locations.iter().map(|d| d.address.clone()).collect(),
            racks: lb.locations.iter().map(|d| d.rack.clone()).collect(),
            corrupt: lb.corrupt,
        }
    }
}

/// Totals under a path (`dfs du`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ContentSummary {
    /// Bytes in all files.
    pub length: u64,
    /// Number of files.
    pub files: u64,
    /// Number of directories, the path itself included.
    pub directories: u64,
    /// Bytes stored counting every replica.
    pub space_consumed: u64,
}

/// Capacity of the whole cluster (`statfs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FsStats {
    /// Total bytes of every live datanode.
    pub capacity: u64,
    /// Bytes used by block replicas.
    pub used: u64,
    /// Bytes free for new blocks.
    pub remaining: u64,
    /// Number of files and directories.
    pub files: u64,
    /// The cluster's default block size.
    pub block_size: u64,
}

/// The state of a datanode as the namenode sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Heartbeats arrive.
    Live,
    /// No heartbeat for a while: new blocks avoid it, reads try it last.
    Stale,
    /// No heartbeat for long: its replicas were re-replicated elsewhere.
    Dead,
    /// Being drained: its blocks are copied elsewhere.
    Decommissioning,
    /// Drained: stopping it loses nothing.
    Decommissioned,
}

impl NodeState {
    fn from_proto(v: i32) -> NodeState {
        use dfs_proto::NodeState as P;
        match P::try_from(v) {
            Ok(P::Stale) => NodeState::Stale,
            Ok(P::Dead) => NodeState::Dead,
            Ok(P::Decommissioning) => NodeState::Decommissioning,
            Ok(P::Decommissioned) => NodeState::Decommissioned,
            Ok(P::Live | P::Unspecified) | Err(_) => NodeState::Live,
        }
    }

    /// The lowercase name printed by `dfs report`.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Live => "live",
            NodeState::Stale => "stale",
            NodeState::Dead => "dead",
            NodeState::Decommissioning => "decommissioning",
            NodeState::Decommissioned => "decommissioned",
        }
    }
}

/// One datanode in a [`ClusterReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatanodeStatus {
    /// Stable node id.
    pub id: String,
    /// `host:port` of its data transfer service.
    pub address: String,
    /// Rack path such as `/dc1/rack2`.
    pub rack: String,
    /// Live, stale, dead, decommissioning or decommissioned.
    pub state: NodeState,
    /// Total bytes.
    pub capacity: u64,
    /// Bytes used by replicas.
    pub used: u64,
    /// Bytes free.
    pub remaining: u64,
    /// Replicas stored.
    pub blocks: u64,
    /// Block copies in progress.
    pub active_transfers: u32,
    /// Block transfer connections open at its last heartbeat.
    pub xceivers: u32,
    /// Its limit of them (`--max-xceivers`).
    pub max_xceivers: u32,
    /// Milliseconds since its last heartbeat.
    pub last_heartbeat_ms_ago: i64,
    /// Set when the node reports its storage failed.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub failure: String,
}

impl From<dfs_proto::DatanodeReport> for DatanodeStatus {
    fn from(r: dfs_proto::DatanodeReport) -> Self {
        let node = r.node.unwrap_or_default();
        DatanodeStatus {
            id: node.id,
            address: node.address,
            rack: node.rack,
            state: NodeState::from_proto(r.state),
            capacity: r.capacity,
            used: r.used,
            remaining: r.remaining,
            blocks: r.blocks,
            active_transfers: r.active_transfers,
            xceivers: r.xceivers,
            max_xceivers: r.max_xceivers,
            last_heartbeat_ms_ago: r.last_heartbeat_ms_ago,
            failure: r.failure,
        }
    }
}

/// The cluster's state (`dfs report`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterReport {
    /// The namenode is in safe mode (read-only).
    pub safe_mode: bool,
    /// Why the namenode is still in safe mode.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub safe_mode_reason: String,
    /// Every datanode the namenode knows.
    pub datanodes: Vec<DatanodeStatus>,
    /// Blocks in the namespace.
    pub total_blocks: u64,
    /// Blocks with fewer replicas than asked for.
    pub under_replicated: u64,
    /// Copies scheduled and not yet reported.
    pub pending_replication: u64,
}

impl From<dfs_proto::ClusterReportResponse> for ClusterReport {
    fn from(r: dfs_proto::ClusterReportResponse) -> Self {
        ClusterReport {
            safe_mode: r.safe_mode,
            safe_mode_reason: r.safe_mode_reason,
            datanodes: r.datanodes.into_iter().map(DatanodeStatus::from).collect(),
            total_blocks: r.total_blocks,
            under_replicated: r.under_replicated,
            pending_replication: r.pending_replication,
        }
    }
}

/// The verdict of a [`FsckReport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FsckStatus {
    /// No block is missing or corrupt.
    #[serde(rename = "HEALTHY")]
    Healthy,
    /// Some block is missing or has only corrupt replicas.
    #[serde(rename = "CORRUPT")]
    Corrupt,
}

/// One replica in a [`FsckBlock`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FsckReplica {
    /// Datanode id.
    pub node_id: String,
    /// Datanode address.
    pub address: String,
    /// Datanode rack.
    pub rack: String,
    /// This replica is known corrupt.
    pub corrupt: bool,
    /// Its node is being decommissioned (draining): readable, not
    /// counted towards the replication.
    pub decommissioning: bool,
    /// Its node is decommissioned (drained): readable until it stops, not
    /// counted towards the replication.
    pub decommissioned: bool,
}

/// One block in a [`FsckFile`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FsckBlock {
    /// Block id.
    pub id: u64,
    /// Generation stamp.
    pub generation_stamp: u64,
    /// Bytes.
    pub length: u64,
    /// Where its replicas are.
    pub replicas: Vec<FsckReplica>,
    /// The file's replication.
    pub expected_replication: u32,
    /// Fewer live replicas than expected.
    pub under_replicated: bool,
    /// More replicas than expected.
    pub over_replicated: bool,
    /// All replicas on one rack although more racks exist.
    pub mis_replicated: bool,
    /// Every replica is corrupt.
    pub corrupt: bool,
    /// No replica at all.
    pub missing: bool,
}

/// One file in a [`FsckReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FsckFile {
    /// Absolute path.
    pub path: String,
    /// Length in bytes.
    pub length: u64,
    /// Replication asked for.
    pub replication: u32,
    /// Its blocks in order.
    pub blocks: Vec<FsckBlock>,
    /// Still being written.
    pub under_construction: bool,
}

/// The health of the files under a path (`dfs fsck`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FsckReport {
    /// `HEALTHY` unless some block is missing or corrupt.
    pub status: FsckStatus,
    /// Blocks with too few replicas.
    pub under_replicated: u64,
    /// Blocks with too many replicas.
    pub over_replicated: u64,
    /// Blocks whose replicas sit on one rack.
    pub mis_replicated: u64,
    /// Blocks whose every replica is corrupt.
    pub corrupt: u64,
    /// Blocks without any replica.
    pub missing: u64,
    /// Files checked.
    pub total_files: u64,
    /// Directories checked.
    pub total_dirs: u64,
    /// Blocks checked.
    pub total_blocks: u64,
    /// Live datanodes.
    pub live_datanodes: u32,
    /// Racks with live datanodes.
    pub racks: u32,
    /// Every file with its blocks.
    pub files: Vec<FsckFile>,
}

impl FsckReport {
    /// Whether no data is missing or corrupt.
    pub fn is_healthy(&self) -> bool {
        self.status == FsckStatus::Healthy
    }
}

impl From<dfs_proto::FsckResponse> for FsckReport {
    fn from(r: dfs_proto::FsckResponse) -> Self {
        let files: Vec<FsckFile> = r
            .files
            .into_iter()
            .map(|f| FsckFile {
                path: f.path,
                length: f.length,
                replication: f.replication,
                under_construction: f.under_construction,
                blocks: f
                    .blocks
                    .into_iter()
                    .map(|b| FsckBlock {
                        id: b.id,
                        generation_stamp: b.generation_stamp,
                        length: b.length,
                        expected_replication: b.expected_replication,
                        under_replicated: b.under_replicated,
                        over_replicated: b.over_replicated,
                        mis_replicated: b.mis_replicated,
                        corrupt: b.corrupt,
                        missing: b.missing,
                        replicas: b
                            .replicas
                            .into_iter()
                            .map(|p| FsckReplica {
                                node_id: p.node_id,
                                address: p.address,
                                rack: p.rack,
                                corrupt: p.corrupt,
                                decommissioning: p.decommissioning,
                                decommissioned: p.decommissioned,
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        let status = if r.corrupt == 0 && r.missing == 0 {
            FsckStatus::Healthy
        } else {
            FsckStatus::Corrupt
        };
        FsckReport {
            status,
            under_replicated: r.under_replicated,
            over_replicated: r.over_replicated,
            mis_replicated: r.mis_replicated,
            corrupt: r.corrupt,
            missing: r.missing,
            total_files: r.total_files,
            total_dirs: r.total_dirs,
            total_blocks: r.total_blocks,
            live_datanodes: r.live_datanodes,
            racks: r.racks,
            files,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> FileStatus {
        FileStatus {
            path: "/a/b".into(),
            file_type: FileType::Dir,
            length: 0,
            replication: 0,
            block_size: 0,
            owner: "o".into(),
            group: "g".into(),
            mode: 0o755,
            mtime: 5,
            atime: 6,
            inode: 2,
            under_construction: false,
        }
    }

    #[test]
    fn file_status_json_has_the_contract_fields() {
        let v = serde_json::to_value(status()).unwrap();
        for key in [
            "path",
            "type",
            "length",
            "replication",
            "block_size",
            "owner",
            "mode",
            "mtime",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["type"], "dir");
        assert_eq!(v["mode"], 0o755);
        assert_eq!(status().name(), "b");
        let mut root = status();
        root.path = "/".into();
        assert_eq!(root.name(), "/");
    }

    #[test]
    fn report_json_shape() {
        let r = ClusterReport::from(dfs_proto::ClusterReportResponse {
            safe_mode: true,
            datanodes: vec![dfs_proto::DatanodeReport {
                node: Some(dfs_proto::DatanodeInfo {
                    id: "n1".into(),
                    address: "127.0.0.1:9101".into(),
                    rack: "/r1".into(),
                }),
                state: dfs_proto::NodeState::Decommissioning as i32,
                capacity: 10,
                used: 1,
                remaining: 9,
                blocks: 3,
                ..Default::default()
            }],
            ..Default::default()
        });
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["safe_mode"], true);
        let dn = &v["datanodes"][0];
        assert_eq!(dn["state"], "decommissioning");
        for key in [
            "id",
            "address",
            "rack",
            "state",
            "capacity",
            "used",
            "remaining",
            "blocks",
        ] {
            assert!(dn.get(key).is_some(), "missing {key}");
        }
    }

    #[test]
    fn fsck_json_shape_and_verdict() {
        let resp = dfs_proto::FsckResponse {
            files: vec![dfs_proto::FsckFile {
                path: "/f".into(),
                blocks: vec![dfs_proto::FsckBlock {
                    id: 9,
                    length: 100,
                    replicas: vec![dfs_proto::FsckReplica {
                        address: "a:1".into(),
                        rack: "/r".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            under_replicated: 1,
            ..Default::default()
        };
        let r = FsckReport::from(resp.clone());
        assert!(r.is_healthy());
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["status"], "HEALTHY");
        assert_eq!(v["under_replicated"], 1);
        for key in ["over_replicated", "mis_replicated", "corrupt", "missing"] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        let b = &v["files"][0]["blocks"][0];
        assert_eq!(b["id"], 9);
        assert_eq!(b["length"], 100);
        assert_eq!(b["replicas"][0]["address"], "a:1");
        assert_eq!(b["replicas"][0]["rack"], "/r");

        let bad = FsckReport::from(dfs_proto::FsckResponse { missing: 1, ..resp });
        assert_eq!(serde_json::to_value(&bad).unwrap()["status"], "CORRUPT");
    }
}

/// What [`Client::set_safe_mode`](crate::Client::set_safe_mode) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SafeModeAction {
    /// Only report where safe mode stands.
    Get,
    /// Enter safe mode; it lasts until an administrator leaves it.
    Enter,
    /// Leave safe mode now, even before the block reports are in.
    Leave,
}

/// Where the namenode's safe mode stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SafeModeState {
    /// Whether safe mode is on.
    pub on: bool,
    /// Where it stands, in words (empty when off).
    pub status: String,
}

/// Where the namenode's balancer stands
/// ([`Client::balance`](crate::Client::balance)).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BalancerStatus {
    /// A run is going on.
    pub running: bool,
    /// Why the last run ended (empty while running, or if none ran).
    pub outcome: String,
    /// The run's allowed distance from the average use, in percentage points.
    pub threshold_pct: f64,
    /// Blocks moved so far.
    pub blocks_moved: u64,
    /// Bytes moved so far.
    pub bytes_moved: u64,
    /// Moves ordered and not done.
    pub moves_in_flight: u32,
    /// Average use of the in-service nodes, in percent.
    pub average_pct: f64,
    /// Each in-service node's address and use, in percent.
    pub nodes: Vec<(String, f64)>,
}
