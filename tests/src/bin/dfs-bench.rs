//! `dfs-bench`: load generators for the benchmark scripts in `scripts/`.
//!
//! * `dfs-bench tcp` measures loopback TCP throughput (the network limit of
//!   the machine, printed next to the cluster's figures).
//! * `dfs-bench meta` measures the namenode's metadata rate over RPC in the
//!   manner of HDFS's NNThroughputBenchmark: N concurrent clients create
//!   empty files (create + complete, both durable), then stat them, then list
//!   their directories.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use dfs_client::{Client, CreateOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Parser)]
#[command(about = "Load generators for the dfs benchmarks")]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Loopback TCP throughput with one connection and 1 MiB writes.
    Tcp {
        /// Bytes to send.
        #[arg(long, default_value_t = 4 << 30)]
        bytes: u64,
    },
    /// Namenode metadata throughput over RPC.
    Meta {
        /// Namenode address.
        #[arg(long, env = "DFS_NAMENODE", default_value = dfs_proto::defaults::NAMENODE_ADDR)]
        namenode: String,
        /// Concurrent clients.
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Separate `Client` handles the clients are spread over, each with
        /// its own namenode connections. The default, one, is one process
        /// whose tasks share a client, as the threads of
        /// NNThroughputBenchmark share one FileSystem and Hadoop IPC
        /// connection; `--handles 64` gives every client its own.
        #[arg(long, default_value_t = 1)]
        handles: usize,
        /// Files per client.
        #[arg(long, default_value_t = 500)]
        files_per_client: usize,
        /// Directory to work in (must not exist).
        #[arg(long, default_value = "/nnbench")]
        dir: String,
        /// Process id of the namenode, when it runs on this machine: each
        /// phase then also reports the namenode's CPU time per operation,
        /// which, unlike operations per second, does not depend on what
        /// else the machine is doing.
        #[arg(long)]
        namenode_pid: Option<u32>,
    },
    /// Latency of writing small files one after another through the
    /// library, by step: create (namenode), the data acknowledged by the
    /// pipeline (`hflush_data`: block allocation, pipeline setup, one
    /// packet), close (last packet and complete). Medians and 90th
    /// percentiles in microseconds.
    Small {
        /// Namenode address.
        #[arg(long, env = "DFS_NAMENODE", default_value = dfs_proto::defaults::NAMENODE_ADDR)]
        namenode: String,
        /// Files to write.
        #[arg(long, default_value_t = 1000)]
        files: usize,
        /// Bytes per file.
        #[arg(long, default_value_t = 4096)]
        size: usize,
        /// Directory to write in (must not exist).
        #[arg(long, default_value = "/smallbench")]
        dir: String,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    match Args::parse().cmd {
        Cmd::Tcp { bytes } => tcp(bytes).await,
        Cmd::Meta {
            namenode,
            clients,
            handles,
            files_per_client,
            dir,
            namenode_pid,
        } => {
            let conns = handles.clamp(1, clients.max(1));
            meta(
                &namenode,
                clients,
                conns,
                files_per_client,
                &dir,
                namenode_pid,
            )
            .await
        }
        Cmd::Small {
            namenode,
            files,
            size,
            dir,
        } => small(&namenode, files, size, &dir).await,
    }
}

/// `dfs-bench small`: per-step latency of small files written in turn.
async fn small(namenode: &str, files: usize, size: usize, dir: &str) -> Result<()> {
    let client = Client::connect(namenode).await?;
    client.mkdirs(dir, false).await?;
    let data = vec![7u8; size];
    let mut steps: [Vec<u128>; 4] = Default::default();
    let start = Instant::now();
    for i in 0..files {
        let t0 = Instant::now();
        let mut w = client
            .create(&format!("{dir}/f{i:06}"), CreateOptions::default())
            .await?;
        let t1 = Instant::now();
        w.write_all(&data).await?;
        w.hflush_data().await?;
        let t2 = Instant::now();
        w.close().await?;
        let t3 = Instant::now();
        for (k, d) in [t1 - t0, t2 - t1, t3 - t2, t3 - t0].iter().enumerate() {
            steps[k].push(d.as_micros());
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!("small_files_per_s {:.1}", files as f64 / secs);
    for (name, mut v) in ["create", "data_acked", "close", "total"]
        .into_iter()
        .zip(steps)
    {
        v.sort_unstable();
        let at = |q: f64| v.get(((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1)));
        println!(
            "small_{name}_us median {} p90 {}",
            at(0.5).copied().unwrap_or(0),
            at(0.9).copied().unwrap_or(0)
        );
    }
    client.delete(dir, true).await?;
    Ok(())
}

async fn tcp(bytes: u64) -> Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await?;
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        Ok::<u64, std::io::Error>(total)
    });
    let mut c = tokio::net::TcpStream::connect(addr).await?;
    let buf = vec![7u8; 1 << 20];
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < bytes {
        c.write_all(&buf).await?;
        sent += buf.len() as u64;
    }
    c.shutdown().await?;
    drop(c);
    let got = server.await??;
    let secs = start.elapsed().as_secs_f64();
    println!("tcp_loopback_MBps {:.1}", got as f64 / 1e6 / secs);
    Ok(())
}

/// CPU used by this process and by the namenode (if its pid is known).
#[derive(Clone, Copy)]
struct Cpu {
    bench: Option<Duration>,
    namenode: Option<Duration>,
}

impl Cpu {
    fn now(namenode_pid: Option<u32>) -> Cpu {
        Cpu {
            bench: dfs_tests::cpu_time("self"),
            namenode: namenode_pid.and_then(|p| dfs_tests::cpu_time(&p.to_string())),
        }
    }

    /// "cpu per op: client X us, namenode Y us" since `earlier` (each part
    /// only where known).
    fn per_op(&self, earlier: &Cpu, ops: u64) -> String {
        let us = |who: &str, a: Option<Duration>, b: Option<Duration>| match (a, b) {
            (Some(a), Some(b)) if ops > 0 => Some(format!(
                "{who} {:.0} us",
                a.saturating_sub(b).as_secs_f64() * 1e6 / ops as f64
            )),
            _ => None,
        };
        let parts: Vec<String> = [
            us("client", self.bench, earlier.bench),
            us("namenode", self.namenode, earlier.namenode),
        ]
        .into_iter()
        .flatten()
        .collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!("; cpu per op: {}", parts.join(", "))
        }
    }
}

/// Runs `per_client` operations on each of `clients` tasks and returns ops/s.
async fn phase<F, Fut>(
    name: &str,
    clients: &[Client],
    per_client: usize,
    namenode_pid: Option<u32>,
    op: F,
) -> Result<f64>
where
    F: Fn(Client, usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<u64>> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let cpu = Cpu::now(namenode_pid);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (ci, client) in clients.iter().enumerate() {
        let client = client.clone();
        let op = op.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_client {
                let n = op(client.clone(), ci, i).await?;
                done.fetch_add(n, Ordering::Relaxed);
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    let ops = n as f64 / secs;
    let cpu = Cpu::now(namenode_pid).per_op(&cpu, n);
    println!("# {name}: {n} ops in {secs:.2}s{cpu}");
    Ok(ops)
}

async fn meta(
    addr: &str,
    n: usize,
    conns: usize,
    per: usize,
    dir: &str,
    namenode_pid: Option<u32>,
) -> Result<()> {
    let mut clients: Vec<Client> = Vec::with_capacity(n);
    for i in 0..n {
        let client = if i < conns {
            Client::connect(addr)
                .await
                .with_context(|| format!("connect to {addr}"))?
        } else {
            clients[i % conns].clone()
        };
        clients.push(client);
    }
    let admin = &clients[0];
    for c in 0..n {
        admin.mkdirs(&format!("{dir}/c{c}"), true).await?;
    }
    let d = dir.to_string();
    let creates = phase(
        "create",
        &clients,
        per,
        namenode_pid,
        move |client, c, i| {
            let path = format!("{d}/c{c}/f{i}");
            async move {
                // Empty files: no first block with the create (what
                // NNThroughputBenchmark's create measures).
                let opts = CreateOptions {
                    lazy_first_block: true,
                    ..CreateOptions::default()
                };
                let w = client.create(&path, opts).await?;
                w.close().await?;
                Ok(1)
            }
        },
    )
    .await?;
    println!("create_ops_per_s {creates:.0}");
    let d = dir.to_string();
    let stats = phase("stat", &clients, per, namenode_pid, move |client, c, i| {
        let path = format!("{d}/c{c}/f{i}");
        async move {
            client.status(&path).await?;
            Ok(1)
        }
    })
    .await?;
    println!("stat_ops_per_s {stats:.0}");
    let d = dir.to_string();
    let entries = Arc::new(AtomicU64::new(0));
    let e2 = entries.clone();
    let start = Instant::now();
    let lists = phase("list", &clients, 20, namenode_pid, move |client, c, _| {
        let path = format!("{d}/c{c}");
        let e2 = e2.clone();
        async move {
            let page = client.list(&path).await?;
            e2.fetch_add(page.len() as u64, Ordering::Relaxed);
            Ok(1)
        }
    })
    .await?;
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    println!("list_ops_per_s {lists:.0}");
    println!(
        "list_entries_per_s {:.0}",
        entries.load(Ordering::Relaxed) as f64 / secs
    );
    admin.delete(dir, true).await?;
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}
