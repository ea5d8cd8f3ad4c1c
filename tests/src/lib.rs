//! Test support for dfs cluster integration tests: a [`Cluster`] guard that
//! starts the real `namenode` and `datanode` binaries as processes on
//! loopback, and helpers to run the `dfs` CLI and mount `dfs-fuse`.
//!
//! Every server binds port 0 and the guard reads the bound address from the
//! process's log (`listening on ADDR`), so parallel tests never collide.
//! Processes are killed with SIGKILL and reaped when the guard drops; when a
//! test panics, the tail of every log is printed.
//!
//! The binaries come from the cargo target directory next to the test
//! executable (`target/debug`), or from `DFS_BIN_DIR`. Build them first with
//! `cargo build --workspace --bins` (the test script does).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

mod cluster;
mod mount;
mod proc;

pub use cluster::{Cluster, ClusterBuilder, NodeSpec};
pub use mount::Mount;
pub use proc::{bin, bin_dir, tail, Proc};

/// Deterministic pseudo-random bytes (xorshift), fast for large files.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Hex SHA-256 of bytes.
pub fn sha256(data: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(data);
    format!("{:x}", h.finalize())
}

/// Hex SHA-256 of a file's contents.
pub fn sha256_file(path: &Path) -> String {
    let mut f = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    format!("{:x}", h.finalize())
}

/// Polls `f` every 100 ms until it returns true, or panics after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// All block replica data files (`blk_<id>`, not `.meta`) under a datanode
/// data dir's `current/finalized`.
pub fn replica_files(data_dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let dir = data_dir.join("current").join("finalized");
    if let Ok(rd) = fs::read_dir(&dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("blk_") && !name.ends_with(".meta") {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// CPU time (user + system) a process has used so far, from
/// `/proc/<pid>/stat` (`self` for this process); `None` where unavailable.
pub fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, in USER_HZ (100/s) ticks.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}
