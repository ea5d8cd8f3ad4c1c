//! The error contract between servers and clients.
//!
//! Every error a server returns is a gRPC `Status` whose message is one line
//! naming what failed and why, and whose metadata key [`ERROR_KIND_KEY`]
//! carries an [`ErrorKind`]. Clients map the kind back to a typed error
//! (and `dfs-fuse` to an errno) without parsing messages.

use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

/// Metadata key holding the [`ErrorKind`] of a failed call.
pub const ERROR_KIND_KEY: &str = "dfs-error-kind";

/// Machine-readable class of a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The path or block does not exist.
    NotFound,
    /// The caller's user may not do this (permission bits, ownership,
    /// sticky bit, or superuser only).
    PermissionDenied,
    /// The path exists already.
    AlreadyExists,
    /// A path component that must be a directory is a file.
    NotADirectory,
    /// The path is a directory where a file is needed.
    IsADirectory,
    /// A directory to delete or replace is not empty.
    DirectoryNotEmpty,
    /// The path is malformed (relative, NUL, `.`/`..`).
    InvalidPath,
    /// A name is over 255 bytes, or the whole path (an inode path once
    /// expanded, say) over 4096 bytes or 256 components: ENAMETOOLONG.
    NameTooLong,
    /// An argument is out of range or inconsistent.
    InvalidArgument,
    /// The namenode is in safe mode and refuses mutations; it ends by
    /// itself (block reports at start), so the call may be retried.
    SafeMode,
    /// The namenode is in safe mode by an administrator's order; it lasts
    /// until they leave it, so retrying is pointless.
    AdminSafeMode,
    /// Another client holds the file's lease.
    LeaseHeld,
    /// The caller does not hold the lease it claims (expired or recovered).
    LeaseExpired,
    /// No datanode could take the block.
    NoDatanodes,
    /// The replica or block has an older generation stamp, or was replaced.
    StaleBlock,
    /// Stored data failed its checksum.
    Corrupt,
    /// A write-once file cannot be changed this way.
    NotSupported,
    /// The node's storage, or every datanode's, has no room for a new
    /// block.
    StorageFull,
    /// The datanode already serves as many block transfers as it may
    /// (`--max-xceivers`): try another replica, or this one again later.
    Busy,
    /// A server-side failure (I/O, metadata store).
    Internal,
}

impl ErrorKind {
    /// The wire name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::NotADirectory => "not_a_directory",
            ErrorKind::IsADirectory => "is_a_directory",
            ErrorKind::DirectoryNotEmpty => "directory_not_empty",
            ErrorKind::InvalidPath => "invalid_path",
            ErrorKind::NameTooLong => "name_too_long",
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::SafeMode => "safe_mode",
            ErrorKind::AdminSafeMode => "admin_safe_mode",
            ErrorKind::LeaseHeld => "lease_held",
            ErrorKind::LeaseExpired => "lease_expired",
            ErrorKind::NoDatanodes => "no_datanodes",
            ErrorKind::StaleBlock => "stale_block",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::NotSupported => "not_supported",
            ErrorKind::StorageFull => "storage_full",
            ErrorKind::Busy => "busy",
            ErrorKind::Internal => "internal",
        }
    }

    /// Parses a wire name; unknown names give `None`.
    pub fn parse(s: &str) -> Option<ErrorKind> {
        Some(match s {
            "not_found" => ErrorKind::NotFound,
            "permission_denied" => ErrorKind::PermissionDenied,
            "already_exists" => ErrorKind::AlreadyExists,
            "not_a_directory" => ErrorKind::NotADirectory,
            "is_a_directory" => ErrorKind::IsADirectory,
            "directory_not_empty" => ErrorKind::DirectoryNotEmpty,
            "invalid_path" => ErrorKind::InvalidPath,
            "name_too_long" => ErrorKind::NameTooLong,
            "invalid_argument" => ErrorKind::InvalidArgument,
            "safe_mode" => ErrorKind::SafeMode,
            "admin_safe_mode" => ErrorKind::AdminSafeMode,
            "lease_held" => ErrorKind::LeaseHeld,
            "lease_expired" => ErrorKind::LeaseExpired,
            "no_datanodes" => ErrorKind::NoDatanodes,
            "stale_block" => ErrorKind::StaleBlock,
            "corrupt" => ErrorKind::Corrupt,
            "not_supported" => ErrorKind::NotSupported,
            "storage_full" => ErrorKind::StorageFull,
            "busy" => ErrorKind::Busy,
            "internal" => ErrorKind::Internal,
            _ => return None,
        })
    }

    /// The gRPC code used for the kind.
    pub fn code(self) -> Code {
        match self {
            ErrorKind::NotFound => Code::NotFound,
            ErrorKind::PermissionDenied => Code::PermissionDenied,
            ErrorKind::AlreadyExists => Code::AlreadyExists,
            ErrorKind::NotADirectory
            | ErrorKind::IsADirectory
            | ErrorKind::DirectoryNotEmpty
            | ErrorKind::LeaseHeld
            | ErrorKind::LeaseExpired
            | ErrorKind::StaleBlock
            | ErrorKind::NotSupported => Code::FailedPrecondition,
            ErrorKind::InvalidPath | ErrorKind::NameTooLong | ErrorKind::InvalidArgument => {
                Code::InvalidArgument
            }
            ErrorKind::SafeMode
            | ErrorKind::AdminSafeMode
            | ErrorKind::NoDatanodes
            | ErrorKind::Busy => Code::Unavailable,
            ErrorKind::StorageFull => Code::ResourceExhausted,
            ErrorKind::Corrupt => Code::DataLoss,
            ErrorKind::Internal => Code::Internal,
        }
    }

    /// A `Status` of this kind with a one-line message.
    pub fn status(self, message: impl Into<String>) -> Status {
        let mut status = Status::new(self.code(), message);
        status
            .metadata_mut()
            .insert(ERROR_KIND_KEY, MetadataValue::from_static(self.as_str()));
        status
    }

    /// The kind a `Status` carries, if any.
    pub fn of(status: &Status) -> Option<ErrorKind> {
        status
            .metadata()
            .get(ERROR_KIND_KEY)
            .and_then(|v| v.to_str().ok())
            .and_then(ErrorKind::parse)
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_roundtrip_through_status() {
        for kind in [
            ErrorKind::NotFound,
            ErrorKind::PermissionDenied,
            ErrorKind::SafeMode,
            ErrorKind::AdminSafeMode,
            ErrorKind::LeaseHeld,
            ErrorKind::Corrupt,
            ErrorKind::Busy,
            ErrorKind::NameTooLong,
            ErrorKind::Internal,
        ] {
            let st = kind.status("x");
            assert_eq!(ErrorKind::of(&st), Some(kind));
            assert_eq!(st.code(), kind.code());
            assert_eq!(ErrorKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ErrorKind::parse("nope"), None);
    }
}
