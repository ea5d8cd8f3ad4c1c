//! The one mapping from client errors to the errno the kernel passes on.
//!
//! Every `dfs_client::Error` variant is matched exhaustively, so a new
//! variant in the client fails to compile here until it is mapped.

use dfs_client::Error;
use dfs_proto::path::PathError;
use fuser::Errno;

/// The errno a failed client call turns into.
pub fn errno(err: &Error) -> Errno {
    match err {
        Error::NotFound { .. } => Errno::ENOENT,
        Error::AlreadyExists { .. } => Errno::EEXIST,
        Error::NotADirectory { .. } => Errno::ENOTDIR,
        Error::IsADirectory { .. } => Errno::EISDIR,
        Error::DirectoryNotEmpty { .. } => Errno::ENOTEMPTY,
        Error::InvalidPath(path) => path_errno(path),
        Error::NameTooLong { .. } => Errno::ENAMETOOLONG,
        Error::InvalidArgument { .. } => Errno::EINVAL,
        // Reads work in safe mode, mutations do not: a read-only file system.
        Error::SafeMode { .. } => Errno::EROFS,
        Error::LeaseHeld { .. } => Errno::EBUSY,
        // Write-once files: the operation is not permitted on this file.
        Error::NotSupported { .. } => Errno::EPERM,
        Error::PermissionDenied { .. } => Errno::EACCES,
        Error::NoDatanodes { .. } => Errno::EIO,
        Error::NoSpace { .. } => Errno::ENOSPC,
        Error::Corrupt { .. } => Errno::EIO,
        Error::Unreachable { .. } => Errno::EIO,
        Error::Timeout { .. } => Errno::EIO,
        Error::Io(e) => os_errno(e),
        Error::Server { .. } => Errno::EIO,
    }
}

/// The errno an application gets for a local I/O error of the client
/// (mostly sockets): no space stays no space, everything else is EIO. The
/// raw errno is never passed on: ECONNRESET or EPIPE mean nothing to the
/// application, and ENOSYS from FLUSH or FSYNC would make the kernel stop
/// sending them for the whole mount.
pub fn os_errno(e: &std::io::Error) -> Errno {
    match e.raw_os_error() {
        Some(libc::ENOSPC) => Errno::ENOSPC,
        Some(libc::EDQUOT) => Errno::EDQUOT,
        _ => Errno::EIO,
    }
}

/// The errno for a path the rules refuse.
pub fn path_errno(err: &PathError) -> Errno {
    match err {
        PathError::NameTooLong { .. } | PathError::TooLong(_) => Errno::ENAMETOOLONG,
        PathError::NotAbsolute(_) | PathError::Nul(_) | PathError::DotComponent(_) => Errno::EINVAL,
    }
}

/// True for errors that are ordinary answers (a missing name, an existing
/// file), logged at debug level; everything else is worth a warning.
pub fn is_expected(err: &Error) -> bool {
    matches!(
        err,
        Error::NotFound { .. }
            | Error::AlreadyExists { .. }
            | Error::NotADirectory { .. }
            | Error::IsADirectory { .. }
            | Error::DirectoryNotEmpty { .. }
            | Error::InvalidPath(_)
            | Error::NameTooLong { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s() -> String {
        "/x".to_string()
    }

    #[test]
    fn namespace_errors_map_to_posix() {
        assert_eq!(errno(&Error::NotFound { path: s() }), Errno::ENOENT);
        assert_eq!(errno(&Error::AlreadyExists { path: s() }), Errno::EEXIST);
        assert_eq!(errno(&Error::NotADirectory { path: s() }), Errno::ENOTDIR);
        assert_eq!(errno(&Error::IsADirectory { path: s() }), Errno::EISDIR);
        assert_eq!(
            errno(&Error::DirectoryNotEmpty { path: s() }),
            Errno::ENOTEMPTY
        );
        assert_eq!(
            errno(&Error::InvalidArgument { message: s() }),
            Errno::EINVAL
        );
    }

    #[test]
    fn path_errors_distinguish_long_names() {
        let long = PathError::NameTooLong {
            path: s(),
            len: 300,
        };
        assert_eq!(errno(&Error::InvalidPath(long)), Errno::ENAMETOOLONG);
        assert_eq!(
            errno(&Error::InvalidPath(PathError::TooLong(s()))),
            Errno::ENAMETOOLONG
        );
        assert_eq!(
            errno(&Error::InvalidPath(PathError::Nul(s()))),
            Errno::EINVAL
        );
        assert_eq!(
            errno(&Error::InvalidPath(PathError::DotComponent(s()))),
            Errno::EINVAL
        );
    }

    #[test]
    fn cluster_state_errors() {
        for by_admin in [false, true] {
            assert_eq!(
                errno(&Error::SafeMode {
                    message: s(),
                    by_admin
                }),
                Errno::EROFS
            );
        }
        assert_eq!(
            errno(&Error::LeaseHeld {
                path: s(),
                message: s()
            }),
            Errno::EBUSY
        );
        assert_eq!(errno(&Error::NotSupported { message: s() }), Errno::EPERM);
        assert_eq!(
            errno(&Error::PermissionDenied { message: s() }),
            Errno::EACCES
        );
    }

    #[test]
    fn failures_are_eio() {
        let unreachable = Error::Unreachable {
            addr: "127.0.0.1:1".into(),
            message: s(),
        };
        assert_eq!(errno(&unreachable), Errno::EIO);
        assert_eq!(errno(&Error::Timeout { what: s() }), Errno::EIO);
        assert_eq!(errno(&Error::Corrupt { message: s() }), Errno::EIO);
        assert_eq!(errno(&Error::NoDatanodes { message: s() }), Errno::EIO);
        assert_eq!(errno(&Error::NoSpace { message: s() }), Errno::ENOSPC);
        assert_eq!(errno(&Error::Server { message: s() }), Errno::EIO);
        let io = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(errno(&Error::Io(io)), Errno::ENOSPC);
        let other = std::io::Error::other("x");
        assert_eq!(errno(&Error::Io(other)), Errno::EIO);
    }

    #[test]
    fn expected_errors_are_quiet() {
        assert!(is_expected(&Error::NotFound { path: s() }));
        assert!(!is_expected(&Error::Timeout { what: s() }));
    }

    /// Local I/O errors of the client never reach the application raw:
    /// ENOSYS from FLUSH or FSYNC would switch them off for the whole mount.
    #[test]
    fn local_io_errors_are_eio_but_no_space() {
        let io = |n| Error::Io(std::io::Error::from_raw_os_error(n));
        for n in [
            libc::ECONNRESET,
            libc::EPIPE,
            libc::ENOSYS,
            libc::EAGAIN,
            libc::ECONNREFUSED,
        ] {
            assert_eq!(errno(&io(n)), Errno::EIO, "errno {n}");
        }
        assert_eq!(errno(&io(libc::ENOSPC)), Errno::ENOSPC);
        assert_eq!(errno(&io(libc::EDQUOT)), Errno::EDQUOT);
        assert_eq!(
            errno(&Error::Io(std::io::Error::other("no errno"))),
            Errno::EIO
        );
    }
}
