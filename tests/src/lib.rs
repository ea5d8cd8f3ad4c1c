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
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// How long a process may take to report that it listens.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Directory holding the built binaries.
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("DFS_BIN_DIR") {
        return PathBuf::from(dir);
    }
    // target/debug/deps/cluster-xxxx -> target/debug
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// Path of one binary, with a clear message if it was not built.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "binary {} not found: run `cargo build --workspace --bins` first (or set DFS_BIN_DIR)",
        p.display()
    );
    p
}

/// A server process with its log file.
pub struct Proc {
    /// What it is, e.g. `namenode` or `datanode-2`.
    pub name: String,
    child: Option<Child>,
    /// Where its stderr and stdout go.
    pub log: PathBuf,
    /// The address it reported as bound.
    pub addr: String,
    /// Arguments it was started with (to restart it).
    args: Vec<String>,
    program: PathBuf,
}

impl Proc {
    fn spawn(name: &str, program: PathBuf, args: Vec<String>, log: PathBuf) -> Proc {
        let mut p = Proc {
            name: name.to_string(),
            child: None,
            log,
            addr: String::new(),
            args,
            program,
        };
        p.start();
        p
    }

    fn start(&mut self) {
        let offset = fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open log");
        let err = out.try_clone().expect("clone log");
        let child = Command::new(&self.program)
            .args(&self.args)
            .env(
                "RUST_LOG",
                std::env::var("DFS_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.program.display()));
        self.child = Some(child);
        self.addr = self.wait_for_line("listening on ", offset);
    }

    /// Waits for a log line containing `marker` written after `offset`, and
    /// returns the first word after the marker.
    fn wait_for_line(&mut self, marker: &str, offset: u64) -> String {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let mut text = String::new();
            if let Ok(mut f) = fs::File::open(&self.log) {
                let _ = f.seek(SeekFrom::Start(offset));
                let _ = f.read_to_string(&mut text);
            }
            let plain = strip_ansi(&text);
            if let Some(i) = plain.find(marker) {
                let rest = &plain[i + marker.len()..];
                let word: String = rest
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '"' && *c != ',')
                    .collect();
                return word;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "{} exited ({status}) before '{marker}':\n{}",
                        self.name,
                        tail(&self.log, 40)
                    );
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "{} did not log '{marker}' within {START_TIMEOUT:?}:\n{}",
                    self.name,
                    tail(&self.log, 40)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) {
        if let Some(pid) = self.pid() {
            send_signal(pid, libc::SIGTERM);
            self.wait_exit(Duration::from_secs(10));
        }
    }

    /// Waits up to `timeout` for the process to exit by itself and returns
    /// how it ended; `None` if it was not running, or did not exit in time
    /// (it is then killed).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = c.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    /// Starts the process again with the same arguments; `addr` keeps the
    /// same port where the arguments named one.
    pub fn restart(&mut self) {
        self.kill();
        self.start();
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Process id, if running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn set_arg(&mut self, flag: &str, value: &str) {
        if let Some(i) = self.args.iter().position(|a| a == flag) {
            self.args[i + 1] = value.to_string();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn send_signal(pid: u32, sig: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// Removes ANSI colour codes from log text.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// One datanode to start.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// Loopback address to bind, e.g. `127.0.0.1` or `127.0.0.12`.
    pub host: String,
    /// Its `--rack`.
    pub rack: Option<String>,
}

/// Settings of a test cluster.
#[derive(Clone, Debug)]
pub struct ClusterBuilder {
    nodes: Vec<NodeSpec>,
    block_size: u64,
    replication: u32,
    namenode_args: Vec<String>,
    datanode_args: Vec<String>,
    wait_live: bool,
}

impl Default for ClusterBuilder {
    fn default() -> Self {
        ClusterBuilder {
            nodes: (0..3)
                .map(|_| NodeSpec {
                    host: "127.0.0.1".into(),
                    rack: None,
                })
                .collect(),
            block_size: 1024 * 1024,
            replication: 3,
            namenode_args: vec![],
            datanode_args: vec![],
            wait_live: true,
        }
    }
}

impl ClusterBuilder {
    /// `n` datanodes on 127.0.0.1 without racks.
    pub fn datanodes(mut self, n: usize) -> Self {
        self.nodes = (0..n)
            .map(|_| NodeSpec {
                host: "127.0.0.1".into(),
                rack: None,
            })
            .collect();
        self
    }

    /// Datanodes given one by one (host and rack).
    pub fn nodes(mut self, nodes: Vec<NodeSpec>) -> Self {
        self.nodes = nodes;
        self
    }

    /// The namenode's `--block-size`.
    pub fn block_size(mut self, b: u64) -> Self {
        self.block_size = b;
        self
    }

    /// The namenode's `--replication`.
    pub fn replication(mut self, r: u32) -> Self {
        self.replication = r;
        self
    }

    /// Extra namenode flags.
    pub fn namenode_args(mut self, args: &[&str]) -> Self {
        self.namenode_args
            .extend(args.iter().map(|s| s.to_string()));
        self
    }

    /// Extra flags for every datanode.
    pub fn datanode_args(mut self, args: &[&str]) -> Self {
        self.datanode_args
            .extend(args.iter().map(|s| s.to_string()));
        self
    }

    /// Starts the cluster and waits until every datanode is live.
    pub fn start(self) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("dfs-test-")
            .tempdir()
            .expect("tempdir");
        let nn_data = dir.path().join("namenode");
        fs::create_dir_all(&nn_data).unwrap();
        let mut args: Vec<String> = vec![
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--data".into(),
            nn_data.display().to_string(),
            "--block-size".into(),
            self.block_size.to_string(),
            "--replication".into(),
            self.replication.to_string(),
            "--heartbeat-interval".into(),
            "1s".into(),
            "--safemode-extension".into(),
            "0s".into(),
        ];
        args.extend(self.namenode_args.iter().cloned());
        let mut namenode = Proc::spawn(
            "namenode",
            bin("namenode"),
            args,
            dir.path().join("namenode.log"),
        );
        // Restarts must come back on the same port.
        let addr = namenode.addr.clone();
        namenode.set_arg("--listen", &addr);
        let mut cluster = Cluster {
            namenode,
            datanodes: Vec::new(),
            dir,
            datanode_args: self.datanode_args.clone(),
        };
        for spec in &self.nodes {
            cluster.add_datanode(spec.clone());
        }
        if self.wait_live {
            let n = cluster.datanodes.len();
            cluster.wait_live(n, Duration::from_secs(30));
        }
        cluster
    }
}

/// A running cluster of real processes. Killed when dropped.
pub struct Cluster {
    /// The namenode process.
    pub namenode: Proc,
    /// The datanode processes, in start order.
    pub datanodes: Vec<Proc>,
    /// The test's temporary folder (data dirs, logs).
    pub dir: tempfile::TempDir,
    datanode_args: Vec<String>,
}

impl Cluster {
    /// A builder with 3 datanodes, 1 MiB blocks, replication 3.
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    /// Starts one more datanode; returns its index.
    pub fn add_datanode(&mut self, spec: NodeSpec) -> usize {
        self.add_datanode_with(spec, &[])
    }

    /// Starts one more datanode with extra flags; returns its index.
    pub fn add_datanode_with(&mut self, spec: NodeSpec, extra: &[&str]) -> usize {
        let i = self.datanodes.len();
        let data = self.dir.path().join(format!("dn{i}"));
        fs::create_dir_all(&data).unwrap();
        let mut args: Vec<String> = vec![
            "--namenode".into(),
            self.namenode.addr.clone(),
            "--listen".into(),
            format!("{}:0", spec.host),
            "--data".into(),
            data.display().to_string(),
            "--heartbeat-interval".into(),
            "1s".into(),
        ];
        if let Some(r) = &spec.rack {
            args.push("--rack".into());
            args.push(r.clone());
        }
        args.extend(self.datanode_args.iter().cloned());
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut p = Proc::spawn(
            &format!("datanode-{i}"),
            bin("datanode"),
            args,
            self.dir.path().join(format!("dn{i}.log")),
        );
        let addr = p.addr.clone();
        p.set_arg("--listen", &addr);
        self.datanodes.push(p);
        i
    }

    /// The namenode address for `--namenode` / `DFS_NAMENODE`.
    pub fn addr(&self) -> &str {
        &self.namenode.addr
    }

    /// Data directory of datanode `i`.
    pub fn datanode_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("dn{i}"))
    }

    /// Runs `dfs --namenode ADDR args...` and returns its output.
    pub fn dfs(&self, args: &[&str]) -> Output {
        self.dfs_stdin(args, None)
    }

    /// Runs `dfs` with bytes on standard input.
    pub fn dfs_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = Command::new(bin("dfs"));
        // The CLI's warnings are part of what some tests check.
        cmd.arg("--namenode")
            .arg(self.addr())
            .args(args)
            .env("RUST_LOG", "warn");
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd.spawn().expect("spawn dfs");
        if let Some(data) = stdin {
            let mut sin = child.stdin.take().unwrap();
            let data = data.to_vec();
            std::thread::spawn(move || {
                let _ = sin.write_all(&data);
            });
        }
        child.wait_with_output().expect("dfs output")
    }

    /// Runs `dfs` and panics with its stderr unless it succeeds; returns stdout.
    pub fn dfs_ok(&self, args: &[&str]) -> String {
        let out = self.dfs(args);
        assert!(
            out.status.success(),
            "dfs {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `dfs ... --json` and parses the output.
    pub fn dfs_json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.dfs_ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("dfs {args:?}: bad JSON ({e}): {out}"))
    }

    /// Waits until at least `n` datanodes are reported live.
    pub fn wait_live(&self, n: usize, timeout: Duration) {
        wait_until(timeout, &format!("{n} live datanodes"), || {
            let out = self.dfs(&["report", "--json"]);
            if !out.status.success() {
                return false;
            }
            let v: serde_json::Value = match serde_json::from_slice(&out.stdout) {
                Ok(v) => v,
                Err(_) => return false,
            };
            let live = v["datanodes"]
                .as_array()
                .map(|a| a.iter().filter(|d| d["state"] == "live").count())
                .unwrap_or(0);
            live >= n && v["safe_mode"] == false
        });
    }

    /// Kills (SIGKILL) and restarts the namenode on the same port, then
    /// waits until `live` datanodes have re-registered and safe mode is off.
    pub fn restart_namenode(&mut self, live: usize) {
        self.namenode.restart();
        self.wait_live(live, Duration::from_secs(60));
    }

    /// Writes a local file of `len` pseudo-random bytes (seeded) and returns
    /// its path.
    pub fn local_file(&self, name: &str, len: usize, seed: u64) -> PathBuf {
        let p = self.dir.path().join(name);
        fs::write(&p, random_bytes(len, seed)).unwrap();
        p
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- namenode log ({}) ----\n{}",
                self.namenode.log.display(),
                tail(&self.namenode.log, 60)
            );
            for d in &self.datanodes {
                eprintln!("---- {} log ----\n{}", d.name, tail(&d.log, 30));
            }
            if std::env::var_os("DFS_KEEP_TEST_DIR").is_some() {
                let p = self.dir.path().to_path_buf();
                eprintln!("keeping {}", p.display());
                std::mem::forget(std::mem::replace(
                    &mut self.dir,
                    tempfile::tempdir().unwrap(),
                ));
            }
        }
        for d in &mut self.datanodes {
            d.kill();
        }
        self.namenode.kill();
    }
}

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

/// A FUSE mount of a cluster, unmounted and stopped when dropped.
pub struct Mount {
    /// The `dfs-fuse` process.
    pub proc: Proc,
    /// The mount point.
    pub dir: PathBuf,
}

impl Mount {
    /// Mounts the cluster at a new folder inside the cluster's temp dir.
    pub fn new(cluster: &Cluster, extra: &[&str]) -> Mount {
        Mount::with_log(cluster, extra, "info")
    }

    /// [`Mount::new`] logging with the `RUST_LOG` filter `log`.
    pub fn with_log(cluster: &Cluster, extra: &[&str], log: &str) -> Mount {
        let dir = cluster
            .dir
            .path()
            .join(format!("mnt-{}", rand::random::<u32>()));
        fs::create_dir_all(&dir).unwrap();
        let mut args = vec![
            "--namenode".to_string(),
            cluster.addr().to_string(),
            dir.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut proc = Proc {
            name: "dfs-fuse".into(),
            child: None,
            log: cluster.dir.path().join(format!(
                "fuse-{}.log",
                dir.file_name().unwrap().to_string_lossy()
            )),
            addr: String::new(),
            args,
            program: bin("dfs-fuse"),
        };
        let offset = 0;
        let out = fs::File::create(&proc.log).unwrap();
        let err = out.try_clone().unwrap();
        proc.child = Some(
            Command::new(&proc.program)
                .args(&proc.args)
                .env("RUST_LOG", log)
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .expect("spawn dfs-fuse"),
        );
        proc.wait_for_line("mounted", offset);
        Mount { proc, dir }
    }

    /// The log of the mount process.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.proc.log).unwrap_or_default()
    }

    /// Unmounts with `fusermount3 -u` and waits for the process to exit.
    pub fn unmount(&mut self) {
        let _ = Command::new("fusermount3")
            .arg("-u")
            .arg(&self.dir)
            .stderr(Stdio::null())
            .status();
        self.proc.wait_exit(Duration::from_secs(10));
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- dfs-fuse log ----\n{}", tail(&self.proc.log, 60));
        }
        self.unmount();
        let _ = Command::new("fusermount3")
            .args(["-u", "-z"])
            .arg(&self.dir)
            .stderr(Stdio::null())
            .status();
    }
}
