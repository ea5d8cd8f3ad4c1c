//! [`Mount`]: `dfs-fuse` mounting a [`Cluster`](crate::Cluster).

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::proc::*;
use crate::Cluster;

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
        Mount::at(cluster, dir, extra, log)
    }

    /// A mount whose calls act as `user` (`DFS_USER`): the namenode checks
    /// that user's permissions (the kernel checks the local caller's first).
    pub fn as_user(cluster: &Cluster, user: &str) -> Mount {
        let dir = cluster
            .dir
            .path()
            .join(format!("mnt-{user}-{}", rand::random::<u32>()));
        fs::create_dir_all(&dir).unwrap();
        Mount::start(cluster, dir, &[], "info", Some(user))
    }

    /// [`Mount::with_log`] at the existing folder `dir`.
    pub fn at(cluster: &Cluster, dir: PathBuf, extra: &[&str], log: &str) -> Mount {
        Mount::start(cluster, dir, extra, log, None)
    }

    fn start(
        cluster: &Cluster,
        dir: PathBuf,
        extra: &[&str],
        log: &str,
        user: Option<&str>,
    ) -> Mount {
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
                "fuse-{}-{}.log",
                dir.file_name().unwrap().to_string_lossy(),
                rand::random::<u32>()
            )),
            addr: String::new(),
            args,
            program: bin("dfs-fuse"),
        };
        let offset = 0;
        let out = fs::File::create(&proc.log).unwrap();
        let err = out.try_clone().unwrap();
        let mut cmd = Command::new(&proc.program);
        if let Some(user) = user {
            cmd.env("DFS_USER", user);
        }
        proc.child = Some(
            cmd.args(&proc.args)
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
