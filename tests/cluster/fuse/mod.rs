//! The FUSE mount (issue 4): real kernel FUSE (`dfs-fuse`) over a real
//! cluster of processes, driven with the ordinary tools.

//!
//! By concern: `tools` (cp, tar, rsync, dd, the shell), `writes`
//! (write-once, close and fsync when the mount dies), `reads` (reading and
//! listing, statfs, attributes), `failures` (datanode or namenode down,
//! unmounting).

mod failures;
mod reads;
mod tools;
mod writes;

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use dfs_tests::{random_bytes, sha256, sha256_file, Cluster, Mount};

const MIB: usize = 1024 * 1024;

/// Runs a shell command, panicking with its output unless it succeeds.
fn sh(cmd: &str) -> String {
    let out = Command::new("bash").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "`{cmd}` failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs library calls from these synchronous tests.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Waits (at most 60 s) until lease recovery has closed `path`, left open
/// by a mount that was killed; returns the length it closed it at.
fn closed_by_lease_recovery(c: &Cluster, path: &str) -> u64 {
    wait_closed(c, path, Duration::from_secs(60), "lease recovery")
}

/// Waits (at most `within`) until `path` is closed, by `closer`; returns
/// its length.
fn wait_closed(c: &Cluster, path: &str, within: Duration, closer: &str) -> u64 {
    block_on(async {
        let client = dfs_client::Client::connect(c.addr()).await.unwrap();
        let deadline = Instant::now() + within;
        loop {
            let st = client.status(path).await.unwrap();
            if !st.under_construction {
                return st.length;
            }
            assert!(Instant::now() < deadline, "{closer} never closed {path}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}
