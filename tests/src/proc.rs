//! Processes: finding the built binaries, starting one and reading the
//! address it listens on from its log, signals, and log tails.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
    pub(crate) child: Option<Child>,
    /// Where its stderr and stdout go.
    pub log: PathBuf,
    /// The address it reported as bound.
    pub addr: String,
    /// Arguments it was started with (to restart it).
    pub(crate) args: Vec<String>,
    pub(crate) program: PathBuf,
}

impl Proc {
    pub(crate) fn spawn(name: &str, program: PathBuf, args: Vec<String>, log: PathBuf) -> Proc {
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
    pub(crate) fn wait_for_line(&mut self, marker: &str, offset: u64) -> String {
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

    /// Sends `sig` (e.g. `libc::SIGSTOP`, `libc::SIGCONT`) if running.
    pub fn signal(&self, sig: i32) {
        if let Some(pid) = self.pid() {
            send_signal(pid, sig);
        }
    }

    /// Process id, if running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Changes the value after `flag` for the next start (a restart on
    /// another `--data`, say).
    pub fn set_arg(&mut self, flag: &str, value: &str) {
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
