//! `dfs-fuse`: mount a dfs cluster as a local folder.
//!
//! A thin translator from the kernel's FUSE requests to the
//! [`dfs_client`] library: no namespace logic lives here. The pieces:
//!
//! * [`inodes`]: FUSE inode numbers ↔ paths, with lookup counts;
//! * [`errno`]: the one mapping from client errors to errno values;
//! * [`handles`], [`reader`], [`writer`], [`dirs`]: open files (sequential
//!   read-ahead, write-once writers committed on the last release) and
//!   directory streams listed page by page;
//! * [`fs`]: the `fuser::Filesystem` implementation;
//! * [`mount`]: connect, mount, serve until unmounted (by `fusermount3 -u`,
//!   `umount`, SIGINT or SIGTERM); [`mountinfo`] keeps it from unmounting
//!   anything but itself.
//!
//! dfs files are write-once: a file is written sequentially from start to
//! end and committed when its last descriptor is closed. Writes elsewhere,
//! appends to complete files and truncations other than to 0 fail with
//! EPERM (the mount logs why). Symbolic links, hard links and extended
//! attributes are not supported.

pub mod attr;
pub mod dirs;
pub mod errno;
pub mod fs;
pub mod handles;
pub mod inodes;
pub mod located;
pub mod mountinfo;
pub mod prefetch;
pub mod reader;
pub mod statahead;
pub mod writer;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use dfs_client::{Client, ClientOptions};
use dfs_proto::defaults::CONNECT_TIMEOUT;
use fuser::{MountOption, Session, SessionACL, SessionUnmounter};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tracing::{error, info, warn};

use crate::fs::{DfsFs, FsOptions, Kernel};

/// Errors that stop the mount.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The async runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The namenode could not be reached or refused the first call.
    #[error("cannot use the cluster: {0}")]
    Cluster(#[from] dfs_client::Error),
    /// The kernel refused the mount.
    #[error("cannot mount {mountpoint}: {source}")]
    Mount {
        /// Where the mount was asked for.
        mountpoint: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The session with the kernel ended with an error.
    #[error("FUSE session on {mountpoint} failed: {source}")]
    Session {
        /// The mountpoint.
        mountpoint: String,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What to mount where.
#[derive(Debug, Clone)]
pub struct MountConfig {
    /// The namenode, `host:port`.
    pub namenode: String,
    /// The folder to mount on.
    pub mountpoint: PathBuf,
    /// How long the kernel caches attributes.
    pub attr_timeout: Duration,
    /// How long the kernel caches names.
    pub entry_timeout: Duration,
    /// How long the kernel caches the absence of a name.
    pub negative_timeout: Duration,
    /// Bytes read ahead of a sequential reader.
    pub read_ahead: u64,
    /// Bound on one namenode call; operations fail with EIO after it.
    pub rpc_timeout: Duration,
    /// Let other users than the one mounting use the mount.
    pub allow_other: bool,
    /// Threads reading kernel requests (a request that waits for the
    /// cluster continues as a task and holds none).
    pub threads: usize,
}

/// Mounts the cluster and serves it until unmounted; returns `Ok` after a
/// clean unmount (`fusermount3 -u`, `umount`, SIGINT or SIGTERM).
pub fn mount(config: MountConfig) -> Result<()> {
    // The kernel mounts a directory filesystem on a file too, and every
    // use of the path then fails with EIO: refuse it, saying why.
    match std::fs::metadata(&config.mountpoint) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::Mount {
                mountpoint: config.mountpoint.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotADirectory,
                    "not a directory (mount on an empty directory)",
                ),
            })
        }
        Err(e) => {
            return Err(Error::Mount {
                mountpoint: config.mountpoint.display().to_string(),
                source: e,
            })
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("dfs-fuse-io")
        .build()
        .map_err(Error::Runtime)?;
    let client_opts = ClientOptions {
        rpc_timeout: config.rpc_timeout,
        connect_timeout: CONNECT_TIMEOUT.min(config.rpc_timeout),
        client_host: None,
        ..ClientOptions::default()
    };
    let client = runtime.block_on(async {
        let client = Client::connect_with(&config.namenode, client_opts).await?;
        // Fail now, naming the address, rather than at the first `ls`.
        client.status("/").await?;
        Ok::<_, dfs_client::Error>(client)
    })?;
    let fs = DfsFs::new(
        runtime.handle().clone(),
        client,
        FsOptions {
            attr_ttl: config.attr_timeout,
            entry_ttl: config.entry_timeout,
            negative_ttl: config.negative_timeout,
            read_ahead: config.read_ahead,
            rpc_timeout: config.rpc_timeout,
        },
    );
    let mut fuse_config = fuser::Config::default();
    fuse_config.mount_options = vec![
        MountOption::FSName("dfs".to_string()),
        MountOption::Subtype("dfs".to_string()),
        MountOption::DefaultPermissions,
        MountOption::NoAtime,
    ];
    if config.allow_other {
        fuse_config.acl = SessionACL::All;
    }
    fuse_config.n_threads = Some(config.threads.max(1));
    fuse_config.clone_fd = true;
    // Watch for signals before mounting, so a SIGTERM always unmounts.
    let signals = {
        let _rt = runtime.enter();
        (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        )
    };
    let (term, int) = match signals {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => return Err(Error::Runtime(e)),
    };
    let shown = config.mountpoint.display().to_string();
    let kernel = Kernel::new(fs);
    let fs = kernel.fs();
    let mounted = kernel.mounted();
    // Resolved before mounting: once mounted, a walk of the path could
    // ask this mount, which answers nothing before it runs.
    let canonical = config.mountpoint.canonicalize().ok();
    let mut session =
        Session::new(kernel, &config.mountpoint, &fuse_config).map_err(|source| Error::Mount {
            mountpoint: shown.clone(),
            source,
        })?;
    fs.set_notifier(session.notifier());
    if let Some(at) = canonical.and_then(|path| {
        let device = mountinfo::device_at(&path)?;
        Some((path, device))
    }) {
        let _ = mounted.set(at);
    }
    runtime.spawn(unmount_on_signal(
        term,
        int,
        session.unmount_callable(),
        config.mountpoint.clone(),
    ));
    info!(namenode = %config.namenode, "mounted {shown}");
    let res = session.run().map_err(|source| Error::Session {
        mountpoint: shown.clone(),
        source,
    });
    info!("unmounted {shown}");
    runtime.shutdown_timeout(Duration::from_secs(1));
    res
}

/// Unmounts on the first SIGINT or SIGTERM; exits at once on a second.
async fn unmount_on_signal(
    mut term: Signal,
    mut int: Signal,
    unmounter: SessionUnmounter,
    mountpoint: PathBuf,
) {
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    info!("{name} received: unmounting {}", mountpoint.display());
    let mp = mountpoint.clone();
    tokio::task::spawn_blocking(move || unmount(unmounter, &mp));
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    warn!("second signal: exiting without waiting for a clean unmount");
    std::process::exit(130);
}

/// Unmounts; when the mount is busy (a process has a file open or its
/// working directory there), detaches it lazily so it goes away once unused.
fn unmount(mut unmounter: SessionUnmounter, mountpoint: &std::path::Path) {
    let Err(e) = unmounter.unmount() else {
        return;
    };
    warn!(error = %e, "unmount failed; detaching the mount lazily (it goes away once no process uses it)");
    for (cmd, args) in [("fusermount3", ["-u", "-z"]), ("umount", ["-l", "--"])] {
        match Command::new(cmd).args(args).arg(mountpoint).status() {
            Ok(status) if status.success() => return,
            Ok(status) => warn!(command = cmd, %status, "lazy unmount failed"),
            Err(e) => warn!(command = cmd, error = %e, "lazy unmount failed"),
        }
    }
    error!(
        "cannot unmount {}; unmount it by hand",
        mountpoint.display()
    );
}
