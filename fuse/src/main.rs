//! `dfs-fuse`: mounts a dfs cluster on a local folder and serves it in the
//! foreground until unmounted (`fusermount3 -u`, `umount`, Ctrl-C, SIGTERM).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use dfs_proto::defaults;
use tracing_subscriber::EnvFilter;

/// mimalloc reuses the data path's megabyte buffers; with glibc's allocator
/// each was a fresh mmap with page faults and zeroing (~10 % of the CPU of
/// a put).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Mount a dfs cluster as a local folder (FUSE).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Namenode address (host:port).
    #[arg(long, env = defaults::NAMENODE_ENV, default_value = defaults::NAMENODE_ADDR)]
    namenode: String,
    /// Folder to mount on.
    mountpoint: PathBuf,
    /// How long the kernel caches file attributes.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    attr_timeout: Duration,
    /// How long the kernel caches names.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    entry_timeout: Duration,
    /// How long the kernel caches the absence of a name (0, as MooseFS and
    /// libfuse default to: a name another client creates is seen at once).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    negative_timeout: Duration,
    /// Bytes read ahead of a sequential reader (0 disables read-ahead).
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    read_ahead: u64,
    /// How long to wait for the namenode before an operation fails with EIO.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    rpc_timeout: Duration,
    /// Let users other than the one mounting use the mount.
    #[arg(long)]
    allow_other: bool,
    /// Threads reading kernel requests (a request that waits for the
    /// cluster continues as a task and holds none).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: u16,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        // fuser warns when it unmounts a mount that `fusermount3 -u` already removed.
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,fuser::session=error")),
        )
        .with_writer(std::io::stderr)
        // A log that cannot be written (stderr on a full disk) must not
        // become a panic: tracing-subscriber reports it with `eprintln!`.
        .log_internal_errors(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = Args::parse();
    let config = dfs_fuse::MountConfig {
        namenode: args.namenode,
        mountpoint: args.mountpoint,
        attr_timeout: args.attr_timeout,
        entry_timeout: args.entry_timeout,
        negative_timeout: args.negative_timeout,
        read_ahead: args.read_ahead,
        rpc_timeout: args.rpc_timeout,
        allow_other: args.allow_other,
        threads: usize::from(args.threads),
    };
    match dfs_fuse::mount(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
