//! The namenode's error type and its one mapping to gRPC statuses.

use dfs_proto::error_kind::ErrorKind;
use dfs_proto::path::PathError;

/// Result alias of the namenode.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can fail in the namenode. Each message is one line that
/// names what failed (path, block, node) and why.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A malformed path (relative, NUL, `.`/`..`, too long).
    #[error(transparent)]
    InvalidPath(#[from] PathError),
    /// The path does not exist.
    #[error("{path}: no such file or directory")]
    NotFound {
        /// The path asked for.
        path: String,
    },
    /// A parent directory is missing.
    #[error("{path}: parent directory {parent} does not exist")]
    ParentNotFound {
        /// The path asked for.
        path: String,
        /// The missing ancestor.
        parent: String,
    },
    /// The path exists already.
    #[error("{path}: already exists")]
    AlreadyExists {
        /// The path asked for.
        path: String,
    },
    /// A component that must be a directory is a file.
    #[error("{path}: not a directory")]
    NotADirectory {
        /// The offending path or ancestor.
        path: String,
    },
    /// The path is a directory where a file is needed.
    #[error("{path}: is a directory")]
    IsADirectory {
        /// The path asked for.
        path: String,
    },
    /// A directory to delete or replace is not empty.
    #[error("{path}: directory not empty")]
    DirectoryNotEmpty {
        /// The directory.
        path: String,
    },
    /// A change that would leave a path over the length or depth limits
    /// (a tree moved deeper): ENAMETOOLONG on a mount.
    #[error("{message}")]
    PathTooLong {
        /// What would be too long, naming the paths.
        message: String,
    },
    /// An argument is out of range or inconsistent.
    #[error("{message}")]
    InvalidArgument {
        /// What is wrong.
        message: String,
    },
    /// The namenode is in safe mode.
    #[error("cannot {op}: namenode is in safe mode: {status}")]
    SafeMode {
        /// The refused operation.
        op: &'static str,
        /// Progress of block reports.
        status: String,
        /// Entered by an administrator (lasts until they leave it).
        by_admin: bool,
    },
    /// Another client holds the file's lease.
    #[error("{path}: file is being written by another client ({holder})")]
    LeaseHeld {
        /// The file.
        path: String,
        /// Who holds the lease.
        holder: String,
    },
    /// The caller does not hold the lease it claims.
    #[error("{path}: {message}")]
    LeaseExpired {
        /// The file.
        path: String,
        /// Why the lease is not the caller's.
        message: String,
    },
    /// No datanode could take a block.
    #[error("{message}")]
    NoDatanodes {
        /// Why each class of node was skipped.
        message: String,
    },
    /// Every datanode that could take a new block is full.
    #[error("{message}")]
    StorageFull {
        /// The file and what each class of node was skipped for.
        message: String,
    },
    /// A block with an older generation stamp, or one that was replaced.
    #[error("{message}")]
    StaleBlock {
        /// What is stale.
        message: String,
    },
    /// The block is unknown.
    #[error("block {block} does not exist (deleted, abandoned or never allocated)")]
    BlockNotFound {
        /// The block id.
        block: u64,
    },
    /// A datanode is unknown.
    #[error("datanode {node} is not registered")]
    UnknownDatanode {
        /// Node id or address.
        node: String,
    },
    /// The caller's user may not do this.
    #[error("{message}")]
    PermissionDenied {
        /// As HDFS says it: `Permission denied: user=U, access=A,
        /// inode="P":owner:group:mode`, or what needs a superuser.
        message: String,
    },
    /// The operation does not fit the write-once model.
    #[error("{message}")]
    NotSupported {
        /// What is not supported.
        message: String,
    },
    /// The metadata store failed.
    #[error("metadata store: {context}: {source}")]
    Store {
        /// What was being done.
        context: String,
        /// The sled error.
        #[source]
        source: sled::Error,
    },
    /// The metadata store holds data that does not make sense.
    #[error("metadata store is corrupt: {message}")]
    CorruptStore {
        /// What is inconsistent.
        message: String,
    },
    /// An earlier write or flush of the store failed; the namenode refuses
    /// mutations until it is restarted.
    #[error("metadata store failed earlier ({message}); restart the namenode")]
    StoreFailed {
        /// The first failure.
        message: String,
    },
    /// A local file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the file.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The topology file could not be read.
    #[error("topology file {path}: {message}")]
    Topology {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Serving failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

impl Error {
    /// The wire class of the error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidPath(PathError::NameTooLong { .. } | PathError::TooLong(_))
            | Error::PathTooLong { .. } => ErrorKind::NameTooLong,
            Error::InvalidPath(_) => ErrorKind::InvalidPath,
            Error::NotFound { .. } | Error::ParentNotFound { .. } => ErrorKind::NotFound,
            Error::BlockNotFound { .. } | Error::UnknownDatanode { .. } => ErrorKind::NotFound,
            Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Error::NotADirectory { .. } => ErrorKind::NotADirectory,
            Error::IsADirectory { .. } => ErrorKind::IsADirectory,
            Error::DirectoryNotEmpty { .. } => ErrorKind::DirectoryNotEmpty,
            Error::InvalidArgument { .. } => ErrorKind::InvalidArgument,
            Error::SafeMode { by_admin: true, .. } => ErrorKind::AdminSafeMode,
            Error::SafeMode { .. } => ErrorKind::SafeMode,
            Error::LeaseHeld { .. } => ErrorKind::LeaseHeld,
            Error::LeaseExpired { .. } => ErrorKind::LeaseExpired,
            Error::NoDatanodes { .. } => ErrorKind::NoDatanodes,
            Error::StorageFull { .. } => ErrorKind::StorageFull,
            Error::StaleBlock { .. } => ErrorKind::StaleBlock,
            Error::NotSupported { .. } => ErrorKind::NotSupported,
            Error::PermissionDenied { .. } => ErrorKind::PermissionDenied,
            Error::Store { .. }
            | Error::CorruptStore { .. }
            | Error::StoreFailed { .. }
            | Error::Topology { .. }
            | Error::Io { .. }
            | Error::Transport(_) => ErrorKind::Internal,
        }
    }

    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::InvalidArgument {
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Store`].
    pub fn store(context: impl Into<String>, source: sled::Error) -> Error {
        Error::Store {
            context: context.into(),
            source,
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> tonic::Status {
        e.kind().status(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_carries_kind_and_message() {
        let st: tonic::Status = Error::NotFound { path: "/a".into() }.into();
        assert_eq!(ErrorKind::of(&st), Some(ErrorKind::NotFound));
        assert_eq!(st.message(), "/a: no such file or directory");
        let st: tonic::Status = Error::LeaseHeld {
            path: "/f".into(),
            holder: "c1".into(),
        }
        .into();
        assert_eq!(ErrorKind::of(&st), Some(ErrorKind::LeaseHeld));
        assert!(st.message().contains("being written by another client"));
    }
}
