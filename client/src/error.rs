//! The client's one error type, and the one place where a server's
//! `tonic::Status` becomes a typed [`Error`].

use dfs_proto::error_kind::ErrorKind;
use tonic::{Code, Status};

/// A `Result` whose error is the client's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a client call. Each message is one line
/// naming the path, node or block concerned and the reason.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The path does not exist.
    #[error("{path}: no such file or directory")]
    NotFound {
        /// The path asked for.
        path: String,
    },
    /// The path exists already.
    #[error("{path}: file exists")]
    AlreadyExists {
        /// The path asked for.
        path: String,
    },
    /// A component of the path that must be a directory is a file.
    #[error("{path}: not a directory")]
    NotADirectory {
        /// The path asked for.
        path: String,
    },
    /// The path is a directory where a file is needed.
    #[error("{path}: is a directory")]
    IsADirectory {
        /// The path asked for.
        path: String,
    },
    /// The directory is not empty.
    #[error("{path}: directory not empty")]
    DirectoryNotEmpty {
        /// The path asked for.
        path: String,
    },
    /// The namenode refused the caller's user: permission bits, ownership,
    /// the sticky bit, or an operation for the superuser only.
    #[error("{message}")]
    PermissionDenied {
        /// The namenode's explanation (user, access, inode and its mode,
        /// as HDFS says it).
        message: String,
    },
    /// The path is malformed (checked locally before any call).
    #[error(transparent)]
    InvalidPath(#[from] dfs_proto::path::PathError),
    /// A name over 255 bytes, or a path the namenode found over 4096
    /// bytes or 256 components once expanded (a name given by inode path).
    #[error("{message}")]
    NameTooLong {
        /// The namenode's explanation, naming the path.
        message: String,
    },
    /// An argument is out of range or inconsistent.
    #[error("{message}")]
    InvalidArgument {
        /// What is wrong.
        message: String,
    },
    /// The namenode is in safe mode and refuses changes.
    #[error("{message}")]
    SafeMode {
        /// The namenode's explanation.
        message: String,
        /// Entered by an administrator: it lasts until they leave it, so
        /// the call is not retried.
        by_admin: bool,
    },
    /// Another client is writing the file, or this client lost its lease.
    #[error("{message}")]
    LeaseHeld {
        /// The file.
        path: String,
        /// The namenode's explanation.
        message: String,
    },
    /// The operation does not fit the write-once model.
    #[error("{message}")]
    NotSupported {
        /// What was refused and why.
        message: String,
    },
    /// No datanode could take a block.
    #[error("{message}")]
    NoDatanodes {
        /// Why each class of node was skipped.
        message: String,
    },
    /// The cluster is out of space: every datanode that could take a new
    /// block is full (ENOSPC on the mount).
    #[error("{message}")]
    NoSpace {
        /// The file, and which nodes are full.
        message: String,
    },
    /// Every replica of a block is bad; no byte of it is returned.
    #[error("{message}")]
    Corrupt {
        /// The block, the nodes tried and what each did.
        message: String,
    },
    /// A server could not be reached.
    #[error("cannot reach {addr}: {message}")]
    Unreachable {
        /// The address (or addresses) tried.
        addr: String,
        /// The reason.
        message: String,
    },
    /// A server did not answer in time.
    #[error("timed out: {what}")]
    Timeout {
        /// What was waited for.
        what: String,
    },
    /// A local I/O error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Any other server error, with its message as given.
    #[error("{message}")]
    Server {
        /// The server's message.
        message: String,
    },
}

impl Error {
    /// The [`ErrorKind`] this error corresponds to, for errors that came
    /// from (or mirror) a server's answer. `None` for transport, timeout
    /// and local I/O errors.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            Error::NotFound { .. } => Some(ErrorKind::NotFound),
            Error::PermissionDenied { .. } => Some(ErrorKind::PermissionDenied),
            Error::AlreadyExists { .. } => Some(ErrorKind::AlreadyExists),
            Error::NotADirectory { .. } => Some(ErrorKind::NotADirectory),
            Error::IsADirectory { .. } => Some(ErrorKind::IsADirectory),
            Error::DirectoryNotEmpty { .. } => Some(ErrorKind::DirectoryNotEmpty),
            Error::InvalidPath(_) => Some(ErrorKind::InvalidPath),
            Error::NameTooLong { .. } => Some(ErrorKind::NameTooLong),
            Error::InvalidArgument { .. } => Some(ErrorKind::InvalidArgument),
            Error::SafeMode { by_admin: true, .. } => Some(ErrorKind::AdminSafeMode),
            Error::SafeMode { .. } => Some(ErrorKind::SafeMode),
            Error::LeaseHeld { .. } => Some(ErrorKind::LeaseHeld),
            Error::NotSupported { .. } => Some(ErrorKind::NotSupported),
            Error::NoDatanodes { .. } => Some(ErrorKind::NoDatanodes),
            Error::NoSpace { .. } => Some(ErrorKind::StorageFull),
            Error::Corrupt { .. } => Some(ErrorKind::Corrupt),
            Error::Unreachable { .. }
            | Error::Timeout { .. }
            | Error::Io(_)
            | Error::Server { .. } => None,
        }
    }

    /// Maps a namenode `Status` to an error about `path` (the path the call
    /// was about; empty when none). `addr` is the server's address, named
    /// when the call failed in transport.
    pub(crate) fn from_status(status: Status, path: &str, addr: &str) -> Error {
        Error::from_status_paths(status, &[path], addr)
    }

    /// Like [`from_status`](Self::from_status) for calls about several
    /// paths (rename): the error names the path the server's message
    /// mentions (the longest one that matches), else the first.
    pub(crate) fn from_status_paths(status: Status, paths: &[&str], addr: &str) -> Error {
        let message = status.message().to_string();
        let path = paths
            .iter()
            .filter(|p| !p.is_empty() && message.contains(**p))
            .max_by_key(|p| p.len())
            .or(paths.first())
            .map_or_else(String::new, |p| p.to_string());
        match ErrorKind::of(&status) {
            Some(ErrorKind::NotFound) if !path.is_empty() => Error::NotFound { path },
            Some(ErrorKind::AlreadyExists) if !path.is_empty() => Error::AlreadyExists { path },
            Some(ErrorKind::NotADirectory) if !path.is_empty() => Error::NotADirectory { path },
            Some(ErrorKind::IsADirectory) if !path.is_empty() => Error::IsADirectory { path },
            Some(ErrorKind::DirectoryNotEmpty) if !path.is_empty() => {
                Error::DirectoryNotEmpty { path }
            }
            Some(
                ErrorKind::NotFound
                | ErrorKind::AlreadyExists
                | ErrorKind::NotADirectory
                | ErrorKind::IsADirectory
                | ErrorKind::DirectoryNotEmpty,
            ) => Error::Server { message },
            Some(ErrorKind::NameTooLong) => Error::NameTooLong { message },
            Some(ErrorKind::InvalidPath | ErrorKind::InvalidArgument) => {
                Error::InvalidArgument { message }
            }
            Some(kind @ (ErrorKind::SafeMode | ErrorKind::AdminSafeMode)) => Error::SafeMode {
                message: if message.to_ascii_lowercase().contains("safe mode") {
                    message
                } else {
                    format!("namenode is in safe mode: {message}")
                },
                by_admin: kind == ErrorKind::AdminSafeMode,
            },
            Some(ErrorKind::LeaseHeld | ErrorKind::LeaseExpired) => {
                Error::LeaseHeld { path, message }
            }
            Some(ErrorKind::NotSupported) => Error::NotSupported { message },
            Some(ErrorKind::PermissionDenied) => Error::PermissionDenied { message },
            Some(ErrorKind::NoDatanodes) => Error::NoDatanodes { message },
            Some(ErrorKind::StorageFull) => Error::NoSpace { message },
            Some(ErrorKind::Corrupt) => Error::Corrupt { message },
            Some(ErrorKind::Busy) => Error::Unreachable {
                addr: addr.to_string(),
                message,
            },
            Some(ErrorKind::StaleBlock | ErrorKind::Internal) => Error::Server { message },
            None => match status.code() {
                Code::Unavailable | Code::Cancelled | Code::Unknown if is_transport(&status) => {
                    Error::Unreachable {
                        addr: addr.to_string(),
                        message: transport_message(&status),
                    }
                }
                Code::Unavailable => Error::Unreachable {
                    addr: addr.to_string(),
                    message: transport_message(&status),
                },
                Code::Unimplemented => Error::Server {
                    message: format!(
                        "{addr} does not serve this call: is it the right kind of server (a namenode for --namenode), of this version?"
                    ),
                },
                Code::DeadlineExceeded => Error::Timeout {
                    what: format!("{addr}: {message}"),
                },
                Code::NotFound if !path.is_empty() => Error::NotFound { path },
                Code::AlreadyExists if !path.is_empty() => Error::AlreadyExists { path },
                Code::InvalidArgument => Error::InvalidArgument { message },
                Code::DataLoss => Error::Corrupt { message },
                _ if message.is_empty() => Error::Server {
                    message: format!("{addr}: {} error", status.code()),
                },
                _ => Error::Server { message },
            },
        }
    }

    /// A copy of this error (errors are not `Clone` because of
    /// `std::io::Error`); used where one failure must be reported to
    /// several waiters.
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::NotFound { path } => Error::NotFound { path: path.clone() },
            Error::AlreadyExists { path } => Error::AlreadyExists { path: path.clone() },
            Error::NotADirectory { path } => Error::NotADirectory { path: path.clone() },
            Error::IsADirectory { path } => Error::IsADirectory { path: path.clone() },
            Error::DirectoryNotEmpty { path } => Error::DirectoryNotEmpty { path: path.clone() },
            Error::InvalidPath(e) => Error::InvalidPath(e.clone()),
            Error::NameTooLong { message } => Error::NameTooLong {
                message: message.clone(),
            },
            Error::InvalidArgument { message } => Error::InvalidArgument {
                message: message.clone(),
            },
            Error::SafeMode { message, by_admin } => Error::SafeMode {
                message: message.clone(),
                by_admin: *by_admin,
            },
            Error::LeaseHeld { path, message } => Error::LeaseHeld {
                path: path.clone(),
                message: message.clone(),
            },
            Error::NotSupported { message } => Error::NotSupported {
                message: message.clone(),
            },
            Error::PermissionDenied { message } => Error::PermissionDenied {
                message: message.clone(),
            },
            Error::NoDatanodes { message } => Error::NoDatanodes {
                message: message.clone(),
            },
            Error::NoSpace { message } => Error::NoSpace {
                message: message.clone(),
            },
            Error::Corrupt { message } => Error::Corrupt {
                message: message.clone(),
            },
            Error::Unreachable { addr, message } => Error::Unreachable {
                addr: addr.clone(),
                message: message.clone(),
            },
            Error::Timeout { what } => Error::Timeout { what: what.clone() },
            Error::Io(e) => Error::Io(std::io::Error::new(e.kind(), e.to_string())),
            Error::Server { message } => Error::Server {
                message: message.clone(),
            },
        }
    }

    /// Whether retrying the same call later may succeed (the server was
    /// unreachable, slow, or in safe mode).
    pub(crate) fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Unreachable { .. }
                | Error::Timeout { .. }
                | Error::SafeMode {
                    by_admin: false,
                    ..
                }
        )
    }
}

/// Whether a status without an error kind came from the transport (the
/// connection) rather than from a handler.
fn is_transport(status: &Status) -> bool {
    use std::error::Error as _;
    status.source().is_some()
        || status.message().contains("transport")
        || status.message().contains("connect")
}

/// The deepest cause of a transport failure ("Connection refused ..."),
/// which says more than tonic's "transport error".
fn transport_message(status: &Status) -> String {
    use std::error::Error as _;
    let mut msg = status.message().to_string();
    let mut source = status.source();
    let mut deepest = None;
    while let Some(s) = source {
        deepest = Some(s.to_string());
        source = s.source();
    }
    if let Some(d) = deepest {
        if !msg.contains(&d) {
            if msg.is_empty() {
                msg = d;
            } else {
                msg = format!("{msg}: {d}");
            }
        }
    }
    if msg.is_empty() {
        msg = "unavailable".to_string();
    }
    msg
}

impl From<Error> for std::io::Error {
    fn from(err: Error) -> std::io::Error {
        use std::io::ErrorKind as K;
        let kind = match &err {
            Error::Io(e) => return std::io::Error::new(e.kind(), err.to_string()),
            Error::NotFound { .. } => K::NotFound,
            Error::AlreadyExists { .. } => K::AlreadyExists,
            Error::NotADirectory { .. } => K::NotADirectory,
            Error::IsADirectory { .. } => K::IsADirectory,
            Error::DirectoryNotEmpty { .. } => K::DirectoryNotEmpty,
            Error::InvalidPath(_) | Error::InvalidArgument { .. } | Error::NameTooLong { .. } => {
                K::InvalidInput
            }
            Error::SafeMode { .. } => K::ReadOnlyFilesystem,
            Error::LeaseHeld { .. } => K::ResourceBusy,
            Error::NotSupported { .. } => K::Unsupported,
            Error::PermissionDenied { .. } => K::PermissionDenied,
            Error::NoDatanodes { .. } => K::Other,
            Error::NoSpace { .. } => K::StorageFull,
            Error::Corrupt { .. } => K::InvalidData,
            Error::Unreachable { .. } => K::NotConnected,
            Error::Timeout { .. } => K::TimedOut,
            Error::Server { .. } => K::Other,
        };
        std::io::Error::new(kind, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_typed_errors() {
        let e = Error::from_status(ErrorKind::NotFound.status("no /a/b"), "/a/b", "nn:1");
        assert!(matches!(&e, Error::NotFound { path } if path == "/a/b"));
        assert_eq!(e.to_string(), "/a/b: no such file or directory");
        assert_eq!(e.kind(), Some(ErrorKind::NotFound));

        let e = Error::from_status(ErrorKind::SafeMode.status("read only"), "/x", "nn:1");
        assert!(e.to_string().contains("safe mode"));
        assert_eq!(e.kind(), Some(ErrorKind::SafeMode));
        assert!(e.is_transient(), "start-up safe mode ends by itself");
        let e = Error::from_status(ErrorKind::AdminSafeMode.status("by hand"), "/x", "nn:1");
        assert!(matches!(e, Error::SafeMode { by_admin: true, .. }));
        assert_eq!(e.kind(), Some(ErrorKind::AdminSafeMode));
        assert!(
            !e.is_transient(),
            "an administrator's safe mode is not waited out"
        );

        let e = Error::from_status(
            ErrorKind::LeaseHeld.status("/f is being written by another client"),
            "/f",
            "nn:1",
        );
        assert!(matches!(e, Error::LeaseHeld { .. }));

        let e = Error::from_status(ErrorKind::Internal.status("disk gone"), "/f", "nn:1");
        assert!(matches!(&e, Error::Server { message } if message == "disk gone"));
        assert_eq!(e.kind(), None);
    }

    #[test]
    fn rename_errors_name_the_path_the_server_means() {
        let st = ErrorKind::NotFound.status("parent of /missing/file does not exist");
        let e = Error::from_status_paths(st, &["/d/file", "/missing/file"], "nn:1");
        assert!(
            matches!(&e, Error::NotFound { path } if path == "/missing/file"),
            "{e}"
        );
        let st = ErrorKind::NotFound.status("/nope does not exist");
        let e = Error::from_status_paths(st, &["/nope", "/other"], "nn:1");
        assert!(
            matches!(&e, Error::NotFound { path } if path == "/nope"),
            "{e}"
        );
    }

    #[test]
    fn transport_failures_name_the_address() {
        let e = Error::from_status(Status::unavailable("connection refused"), "/", "10.1.1.1:9");
        assert!(matches!(e, Error::Unreachable { .. }));
        assert!(e.to_string().contains("10.1.1.1:9"), "{e}");
        let e = Error::from_status(Status::deadline_exceeded("slow"), "/", "h:1");
        assert!(matches!(e, Error::Timeout { .. }));
        // A server that is not the namenode (a datanode's port, say).
        let e = Error::from_status(Status::unimplemented(""), "/", "h:2");
        assert!(
            e.to_string().contains("h:2 does not serve this call"),
            "{e}"
        );
    }

    #[test]
    fn server_addresses_are_checked_before_connecting() {
        for bad in ["127.0.0.1", "127.0.0.1:99999", ":9000", "h:0", "h:x"] {
            let e = crate::conn::endpoint(bad, std::time::Duration::from_secs(1)).unwrap_err();
            assert!(e.to_string().contains("expected HOST:PORT"), "{bad}: {e}");
        }
        for good in ["127.0.0.1:9000", "localhost:1", "[::1]:9000"] {
            assert!(crate::conn::endpoint(good, std::time::Duration::from_secs(1)).is_ok());
        }
    }

    #[test]
    fn io_error_kinds() {
        let io: std::io::Error = Error::NotFound { path: "/a".into() }.into();
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        assert!(io.to_string().contains("/a"));
        let io: std::io::Error = Error::NotSupported {
            message: "x".into(),
        }
        .into();
        assert_eq!(io.kind(), std::io::ErrorKind::Unsupported);
        let io: std::io::Error = Error::Io(std::io::Error::other("boom")).into();
        assert_eq!(io.kind(), std::io::ErrorKind::Other);
        let dup = Error::Corrupt {
            message: "m".into(),
        }
        .duplicate();
        assert!(matches!(dup, Error::Corrupt { .. }));
    }
}
