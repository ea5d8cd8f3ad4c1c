//! The datanode's error type and its one mapping to gRPC statuses.

use std::io;

use dfs_proto::checksum::ChecksumError;
use dfs_proto::error_kind::ErrorKind;

use crate::meta::MetaError;

/// Result alias of the datanode crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the datanode. Each message is one line
/// naming the block or node and the reason.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No replica of the block on this node.
    #[error("replica blk_{block} is not on this datanode")]
    ReplicaNotFound {
        /// Block id.
        block: u64,
    },
    /// A new replica was asked for a block this node already holds.
    #[error("replica blk_{block}_{generation_stamp} already exists on this datanode ({state})")]
    ReplicaExists {
        /// Block id.
        block: u64,
        /// Generation stamp of the existing replica.
        generation_stamp: u64,
        /// State of the existing replica.
        state: &'static str,
    },
    /// The replica's generation stamp does not fit the request.
    #[error("replica blk_{block}_{have} is stale or newer than asked: {reason}")]
    GenerationStamp {
        /// Block id.
        block: u64,
        /// Generation stamp of the local replica.
        have: u64,
        /// What was expected.
        reason: String,
    },
    /// Another writer or a recovery took over the replica.
    #[error("replica blk_{block} was taken over by a newer writer or recovery")]
    Superseded {
        /// Block id.
        block: u64,
    },
    /// No byte of the replica may be read yet.
    #[error("replica blk_{block} shows no bytes to readers: {reason}")]
    NotVisible {
        /// Block id.
        block: u64,
        /// Why.
        reason: &'static str,
    },
    /// A request that is out of range or inconsistent.
    #[error("blk_{block}: {reason}")]
    InvalidRequest {
        /// Block id (0 when unknown).
        block: u64,
        /// What is wrong.
        reason: String,
    },
    /// A packet whose checksums do not match its data.
    #[error("blk_{block}: packet at offset {offset} failed its checksum: {source}")]
    PacketChecksum {
        /// Block id.
        block: u64,
        /// Offset of the packet in the block.
        offset: u64,
        /// What did not match.
        source: ChecksumError,
    },
    /// Stored data does not match its stored checksum.
    #[error("replica blk_{block}: stored data fails its checksum in the chunk at offset {offset}")]
    ChecksumMismatch {
        /// Block id.
        block: u64,
        /// Offset of the bad chunk in the block.
        offset: u64,
    },
    /// The `.meta` file of a replica is damaged.
    #[error("replica blk_{block}: {source}")]
    BadMeta {
        /// Block id.
        block: u64,
        /// What is wrong with the file.
        source: MetaError,
    },
    /// A replica's file is shorter than its recorded length.
    #[error("replica blk_{block}: the {what} file ends before offset {offset}")]
    ReplicaShort {
        /// Block id.
        block: u64,
        /// `data` or `checksums`.
        what: &'static str,
        /// Offset of the read that came up short.
        offset: u64,
    },
    /// A replica's file could not be read. When the error says the file
    /// is bad (a failing disk's EIO, or a directory where the file was)
    /// the replica counts as corrupt (see [`Error::is_corruption`]);
    /// other errors are the node's or the volume's, not the replica's.
    #[error("replica blk_{block}: cannot read its {what}: {source}")]
    ReplicaUnreadable {
        /// Block id.
        block: u64,
        /// What was read, e.g. `data at 65536`.
        what: String,
        /// The OS error.
        source: io::Error,
    },
    /// Not enough free space for a new block.
    #[error("storage full: {remaining} bytes free beyond the {reserved}-byte reserve, a block needs {needed}")]
    StorageFull {
        /// Free bytes beyond the reserve.
        remaining: u64,
        /// Bytes a block needs.
        needed: u64,
        /// Configured reserve.
        reserved: u64,
    },
    /// The data directory vanished or cannot be written.
    #[error("storage failed: {reason}")]
    StorageFailed {
        /// What failed.
        reason: String,
    },
    /// A local I/O failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the file or block.
        context: String,
        /// The OS error.
        source: io::Error,
    },
    /// The data directory holds an unusable node id.
    #[error("node id file {path} is invalid ({reason}); fix or remove it to give the node a new identity")]
    BadNodeId {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The cluster id file is unusable.
    #[error("cluster id file {path} is empty or unreadable: write the id of the cluster the replicas belong to into it (the namenode's DATA/cluster_id); do not remove it, or the node joins any namenode and loses its replicas as orphans")]
    BadClusterId {
        /// The file.
        path: String,
    },
    /// The namenode is of another cluster than the node's replicas.
    #[error("this datanode's replicas belong to cluster {recorded} (recorded in {path}), the namenode is cluster {offered}: not joining it, so that no replica is deleted as an orphan (is the namenode's --data the right directory?)")]
    WrongCluster {
        /// The cluster id file.
        path: String,
        /// The cluster the replicas belong to.
        recorded: String,
        /// The namenode's cluster.
        offered: String,
    },
    /// Another node could not be reached.
    #[error("cannot reach {addr}: {reason}")]
    Connect {
        /// host:port of the peer.
        addr: String,
        /// The transport error with its causes.
        reason: String,
    },
    /// A call to another node failed.
    #[error("{call} on {addr} failed: {message}")]
    Remote {
        /// host:port of the peer.
        addr: String,
        /// The RPC.
        call: &'static str,
        /// The peer's status message.
        message: String,
        /// The peer's error kind, if it sent one.
        kind: Option<ErrorKind>,
    },
    /// A downstream pipeline or transfer target failed.
    #[error("pipeline to {addr} failed: {reason}")]
    Pipeline {
        /// host:port of the failed node.
        addr: String,
        /// What happened.
        reason: String,
    },
    /// A background task died.
    #[error("{task} failed: {reason}")]
    TaskFailed {
        /// What the task did.
        task: &'static str,
        /// Why it ended.
        reason: String,
    },
    /// The datanode is stopping.
    #[error("the datanode is shutting down")]
    ShuttingDown,
    /// The gRPC server failed.
    #[error("datanode server failed: {0}")]
    Serve(#[source] tonic::transport::Error),
}

impl Error {
    /// An I/O error with the context it happened in.
    pub fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// An invalid request about `block`.
    pub fn invalid(block: u64, reason: impl Into<String>) -> Error {
        Error::InvalidRequest {
            block,
            reason: reason.into(),
        }
    }

    /// A failed connection to `addr`, with every cause of the transport
    /// error (tonic's own message is only "transport error").
    pub fn connect(addr: &str, err: &(dyn std::error::Error + 'static)) -> Error {
        let mut reason = err.to_string();
        let mut source = err.source();
        while let Some(s) = source {
            reason.push_str(": ");
            reason.push_str(&s.to_string());
            source = s.source();
        }
        Error::Connect {
            addr: addr.to_string(),
            reason,
        }
    }

    /// A failed call to a peer.
    pub fn remote(addr: &str, call: &'static str, status: &tonic::Status) -> Error {
        Error::Remote {
            addr: addr.to_string(),
            call,
            message: status.message().to_string(),
            kind: ErrorKind::of(status),
        }
    }

    /// True when stored data was found corrupt (the replica must be moved aside).
    pub fn is_corruption(&self) -> bool {
        match self {
            Error::ChecksumMismatch { .. } | Error::BadMeta { .. } | Error::ReplicaShort { .. } => {
                true
            }
            Error::ReplicaUnreadable { source, .. } => is_bad_file(source),
            _ => false,
        }
    }

    /// The wire class of the error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::ReplicaNotFound { .. } => ErrorKind::NotFound,
            Error::ReplicaExists { .. } => ErrorKind::AlreadyExists,
            Error::GenerationStamp { .. } | Error::Superseded { .. } | Error::NotVisible { .. } => {
                ErrorKind::StaleBlock
            }
            Error::InvalidRequest { .. } => ErrorKind::InvalidArgument,
            Error::PacketChecksum { .. }
            | Error::ChecksumMismatch { .. }
            | Error::BadMeta { .. }
            | Error::ReplicaShort { .. } => ErrorKind::Corrupt,
            Error::ReplicaUnreadable { .. } if self.is_corruption() => ErrorKind::Corrupt,
            Error::ReplicaUnreadable { .. } => ErrorKind::Internal,
            Error::StorageFull { .. } => ErrorKind::StorageFull,
            Error::Io { source, .. } if source.kind() == io::ErrorKind::StorageFull => {
                ErrorKind::StorageFull
            }
            Error::Io { .. }
            | Error::StorageFailed { .. }
            | Error::BadNodeId { .. }
            | Error::WrongCluster { .. }
            | Error::BadClusterId { .. }
            | Error::Serve(_) => ErrorKind::Internal,
            Error::Remote { kind, .. } => kind.unwrap_or(ErrorKind::Internal),
            Error::Connect { .. }
            | Error::Pipeline { .. }
            | Error::TaskFailed { .. }
            | Error::ShuttingDown => ErrorKind::Internal,
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> tonic::Status {
        e.kind().status(e.to_string())
    }
}

/// True for a read failure that says the file itself is bad: the disk
/// failed under it (EIO, or the file system's own checksums: EUCLEAN,
/// EBADMSG), or something that is not a file stands in its place
/// (EISDIR). Anything else (out of descriptors or memory, a network file
/// system's ESTALE or ENOTCONN, a device gone) is the node's or the
/// volume's trouble, not this replica's: it is refused, not moved aside.
fn is_bad_file(e: &io::Error) -> bool {
    use rustix::io::Errno;
    Errno::from_io_error(e)
        .is_some_and(|n| [Errno::IO, Errno::ISDIR, Errno::UCLEAN, Errno::BADMSG].contains(&n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_carry_the_kind() {
        let cases = [
            (Error::ReplicaNotFound { block: 7 }, ErrorKind::NotFound),
            (
                Error::ChecksumMismatch {
                    block: 7,
                    offset: 1024,
                },
                ErrorKind::Corrupt,
            ),
            (
                Error::StorageFailed {
                    reason: "gone".into(),
                },
                ErrorKind::Internal,
            ),
            (
                Error::io("write", io::Error::from(io::ErrorKind::StorageFull)),
                ErrorKind::StorageFull,
            ),
            (Error::invalid(1, "bad"), ErrorKind::InvalidArgument),
            (
                Error::ReplicaUnreadable {
                    block: 7,
                    what: "data at 0".into(),
                    source: io::Error::from_raw_os_error(rustix::io::Errno::ISDIR.raw_os_error()),
                },
                ErrorKind::Corrupt,
            ),
            (
                Error::ReplicaUnreadable {
                    block: 7,
                    what: "data at 0".into(),
                    source: io::Error::from_raw_os_error(rustix::io::Errno::MFILE.raw_os_error()),
                },
                ErrorKind::Internal,
            ),
            (
                Error::ReplicaUnreadable {
                    block: 7,
                    what: "data at 0".into(),
                    source: io::Error::from_raw_os_error(rustix::io::Errno::STALE.raw_os_error()),
                },
                ErrorKind::Internal,
            ),
            (
                Error::ReplicaUnreadable {
                    block: 7,
                    what: "data at 0".into(),
                    source: io::Error::from_raw_os_error(rustix::io::Errno::IO.raw_os_error()),
                },
                ErrorKind::Corrupt,
            ),
        ];
        for (err, kind) in cases {
            let msg = err.to_string();
            let status = tonic::Status::from(err);
            assert_eq!(ErrorKind::of(&status), Some(kind));
            assert_eq!(status.message(), msg);
        }
        let st = tonic::Status::from(Error::ChecksumMismatch {
            block: 7,
            offset: 1024,
        });
        assert!(st.message().contains("blk_7"));
        assert!(st.message().contains("1024"));
    }
}
