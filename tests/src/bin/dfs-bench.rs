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
        /// Concurrent clients (each with its own connection).
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Files per client.
        #[arg(long, default_value_t = 500)]
        files_per_client: usize,
        /// Directory to work in (must not exist).
        #[arg(long, default_value = "/nnbench")]
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
            files_per_client,
            dir,
        } => meta(&namenode, clients, files_per_client, &dir).await,
    }
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

/// Runs `per_client` operations on each of `clients` tasks and returns ops/s.
async fn phase<F, Fut>(name: &str, clients: &[Client], per_client: usize, op: F) -> Result<f64>
where
    F: Fn(Client, usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<u64>> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
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
    let ops = done.load(Ordering::Relaxed) as f64 / secs;
    println!(
        "# {name}: {} ops in {secs:.2}s",
        done.load(Ordering::Relaxed)
    );
    Ok(ops)
}

async fn meta(addr: &str, n: usize, per: usize, dir: &str) -> Result<()> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(
            Client::connect(addr)
                .await
                .with_context(|| format!("connect to {addr}"))?,
        );
    }
    let admin = &clients[0];
    for c in 0..n {
        admin.mkdirs(&format!("{dir}/c{c}"), true).await?;
    }
    let d = dir.to_string();
    let creates = phase("create", &clients, per, move |client, c, i| {
        let path = format!("{d}/c{c}/f{i}");
        async move {
            let w = client.create(&path, CreateOptions::default()).await?;
            w.close().await?;
            Ok(1)
        }
    })
    .await?;
    println!("create_ops_per_s {creates:.0}");
    let d = dir.to_string();
    let stats = phase("stat", &clients, per, move |client, c, i| {
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
    let lists = phase("list", &clients, 20, move |client, c, _| {
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
