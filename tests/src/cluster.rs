//! [`Cluster`]: a namenode and datanodes as processes on loopback, and
//! the helpers tests drive it with (the `dfs` CLI, restarts, kills).

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::proc::*;
use crate::{random_bytes, wait_until};

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
        override_args(&mut args, &self.namenode_args);
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

/// Appends `extra` to `args`, except that a `--flag value` pair whose
/// flag `args` has already replaces that value (clap refuses a flag given
/// twice), so a test can change the harness's own defaults.
fn override_args(args: &mut Vec<String>, extra: &[String]) {
    let mut i = 0;
    while i < extra.len() {
        let pos = args.iter().position(|a| *a == extra[i]);
        match (pos, extra.get(i + 1)) {
            (Some(p), Some(value)) if extra[i].starts_with("--") && p + 1 < args.len() => {
                args[p + 1] = value.clone();
                i += 2;
            }
            _ => {
                args.push(extra[i].clone());
                i += 1;
            }
        }
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
        let extra: Vec<String> = self
            .datanode_args
            .iter()
            .cloned()
            .chain(extra.iter().map(|s| s.to_string()))
            .collect();
        override_args(&mut args, &extra);
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

    /// `dfs --namenode ADDR args...` with the CLI's warnings on (they are
    /// part of what some tests check), for a test that runs it itself (in
    /// the background, say).
    pub fn dfs_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("dfs"));
        cmd.arg("--namenode")
            .arg(self.addr())
            .args(args)
            .env("RUST_LOG", "warn");
        cmd
    }

    /// Runs `dfs` as `user` (`DFS_USER`, as HDFS's `HADOOP_USER_NAME`),
    /// whose permissions the namenode checks.
    pub fn dfs_as(&self, user: &str, args: &[&str]) -> Output {
        self.dfs_command(args)
            .env("DFS_USER", user)
            .stdin(Stdio::null())
            .output()
            .expect("dfs output")
    }

    /// Runs `dfs` with bytes on standard input.
    pub fn dfs_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = self.dfs_command(args);
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

    /// Runs a `dfs` command that must fail with exit 1 and one line on
    /// stderr mentioning one of `expect` (case-insensitive); returns the
    /// line.
    pub fn dfs_fails(&self, args: &[&str], expect: &[&str]) -> String {
        let out = self.dfs(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "dfs {args:?} should fail but succeeded"
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "dfs {args:?}: exit {:?}: {err}",
            out.status
        );
        assert!(!err.contains("panicked"), "dfs {args:?} panicked: {err}");
        assert_eq!(
            err.trim().lines().count(),
            1,
            "dfs {args:?}: not one line: {err}"
        );
        let lower = err.to_lowercase();
        assert!(
            expect.iter().any(|e| lower.contains(&e.to_lowercase())),
            "dfs {args:?}: '{err}' does not mention any of {expect:?}"
        );
        err
    }

    /// Every path under `/` with its type and length, sorted: a snapshot of
    /// the namespace, to check that nothing changed.
    pub fn tree(&self) -> Vec<(String, String, u64)> {
        let v = self.dfs_json(&["ls", "-R", "--json", "/"]);
        let mut out: Vec<(String, String, u64)> = v
            .as_array()
            .map(|a| a.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|e| {
                (
                    e["path"].as_str().unwrap_or_default().to_string(),
                    e["type"].as_str().unwrap_or_default().to_string(),
                    e["length"].as_u64().unwrap_or_default(),
                )
            })
            .collect();
        out.sort();
        out
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
