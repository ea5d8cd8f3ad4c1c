//! The chaos test (issue 5): concurrent writers and readers while datanodes
//! are SIGKILLed and restarted at random (never more than one down), the
//! namenode is SIGKILLed and restarted once, and stored replicas rot.
//! Every acknowledged file must read back intact, fsck must turn HEALTHY,
//! and no datanode may keep blocks that no file references.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dfs_client::{Client, ClientOptions, CreateOptions};
use dfs_tests::{random_bytes, replica_files, sha256, wait_until, Cluster, NodeSpec};
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KIB: usize = 1024;

fn chaos_secs() -> u64 {
    std::env::var("DFS_CHAOS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(45)
}

#[test]
fn chaos() {
    let racks = ["/east", "/east", "/east", "/west", "/west"];
    let nodes = racks
        .iter()
        .enumerate()
        .map(|(i, r)| NodeSpec {
            host: format!("127.0.0.{}", 91 + i),
            rack: Some(r.to_string()),
        })
        .collect();
    let mut c = Cluster::builder()
        .nodes(nodes)
        .block_size(256 * KIB as u64)
        .namenode_args(&[
            "--stale-after",
            "2s",
            "--dead-after",
            "4s",
            "--lease-soft-limit",
            "3s",
            "--lease-hard-limit",
            "10s",
        ])
        .datanode_args(&["--scan-rate", "20000000"])
        .start();
    let addr = c.addr().to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // path -> sha256 of every file whose close was acknowledged.
    let acked: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let bad_reads = Arc::new(AtomicU64::new(0));
    let opts = ClientOptions {
        rpc_timeout: Duration::from_secs(5),
        ..ClientOptions::default()
    };

    let mut tasks = Vec::new();
    for w in 0..3u64 {
        let (addr, stop, acked, opts) = (addr.clone(), stop.clone(), acked.clone(), opts.clone());
        tasks.push(rt.spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(w);
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let path = format!("/w{w}/f{i}");
                let len = match rng.random_range(0..10) {
                    0 => 0,
                    1..=5 => rng.random_range(1..64 * KIB),
                    _ => rng.random_range(64 * KIB..900 * KIB),
                };
                let data = random_bytes(len, w * 1_000_000 + i);
                let result = async {
                    let client = Client::connect_with(&addr, opts.clone()).await?;
                    let mut f = client
                        .create(
                            &path,
                            CreateOptions {
                                create_parents: true,
                                overwrite: true,
                                ..Default::default()
                            },
                        )
                        .await?;
                    for chunk in data.chunks(50_000) {
                        f.write_all(chunk).await?;
                    }
                    f.close().await?;
                    Ok::<(), dfs_client::Error>(())
                }
                .await;
                match result {
                    Ok(()) => {
                        acked.lock().unwrap().insert(path, sha256(&data));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        }));
    }
    for r in 0..2u64 {
        let (addr, stop, acked, bad, opts) = (
            addr.clone(),
            stop.clone(),
            acked.clone(),
            bad_reads.clone(),
            opts.clone(),
        );
        tasks.push(rt.spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(100 + r);
            while !stop.load(Ordering::Relaxed) {
                let pick = {
                    let a = acked.lock().unwrap();
                    if a.is_empty() {
                        None
                    } else {
                        let k = rng.random_range(0..a.len());
                        a.iter().nth(k).map(|(p, s)| (p.clone(), s.clone()))
                    }
                };
                let Some((path, want)) = pick else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let got = async {
                    let client = Client::connect_with(&addr, opts.clone()).await?;
                    let mut f = client.open(&path).await?;
                    let mut buf = Vec::new();
                    f.read_to_end(&mut buf).await?;
                    Ok::<Vec<u8>, dfs_client::Error>(buf)
                }
                .await;
                // Errors are allowed while nodes are down; wrong bytes never.
                if let Ok(buf) = got {
                    if sha256(&buf) != want {
                        bad.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }

    // The chaos loop.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let secs = chaos_secs();
    let start = Instant::now();
    let (mut dn_kills, mut nn_kills, mut corruptions) = (0u32, 0u32, 0u32);
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(rng.random_range(1000..2500)));
        let phase = start.elapsed().as_secs_f64() / secs as f64;
        if nn_kills == 0 && phase > 0.5 {
            c.namenode.kill();
            std::thread::sleep(Duration::from_millis(500));
            c.namenode.restart();
            nn_kills += 1;
        } else if corruptions < 2 && phase > 0.25 * (corruptions + 1) as f64 {
            if corrupt_random_replica(&c, &mut rng) {
                corruptions += 1;
            }
        } else {
            let i = rng.random_range(0..c.datanodes.len());
            c.datanodes[i].kill();
            dn_kills += 1;
            std::thread::sleep(Duration::from_millis(rng.random_range(500..3000)));
            c.datanodes[i].restart();
        }
    }
    stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(60), t).await;
        }
    });
    c.wait_live(5, Duration::from_secs(60));

    // Settle: fsck HEALTHY.
    wait_until(Duration::from_secs(120), "fsck HEALTHY after chaos", || {
        let out = c.dfs(&["fsck", "/", "--json"]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .map(|v| {
                v["status"] == "HEALTHY"
                    && v["under_replicated"] == 0
                    && v["missing"] == 0
                    && v["corrupt"] == 0
            })
            .unwrap_or(false)
    });

    // Every acknowledged file reads back sha256-equal.
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 10, "too few files written ({})", acked.len());
    let mut lost = Vec::new();
    rt.block_on(async {
        let client = Client::connect(&addr).await.unwrap();
        for (path, want) in &acked {
            let got = async {
                let mut f = client.open(path).await?;
                let mut buf = Vec::new();
                f.read_to_end(&mut buf).await?;
                Ok::<Vec<u8>, dfs_client::Error>(buf)
            }
            .await;
            match got {
                Ok(buf) if sha256(&buf) == *want => {}
                Ok(_) => lost.push(format!("{path}: wrong bytes")),
                Err(e) => lost.push(format!("{path}: {e}")),
            }
        }
    });
    assert_eq!(
        bad_reads.load(Ordering::Relaxed),
        0,
        "a reader got wrong bytes during chaos"
    );

    // No datanode keeps blocks that no file references (deletions settle).
    wait_until(Duration::from_secs(60), "no orphan replicas", || {
        let out = c.dfs(&["fsck", "/", "--json"]);
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
            return false;
        };
        let referenced: HashSet<String> = v["files"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| f["blocks"].as_array().unwrap().iter())
            .map(|b| format!("blk_{}", b["id"]))
            .collect();
        (0..c.datanodes.len()).all(|i| {
            replica_files(&c.datanode_dir(i))
                .iter()
                .all(|p| referenced.contains(&p.file_name().unwrap().to_string_lossy().to_string()))
        })
    });

    println!(
        "chaos: {} files, {dn_kills} datanode kills, {nn_kills} namenode kill, {corruptions} corruptions, {} lost",
        acked.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "lost acknowledged files: {lost:#?}");
    assert_eq!(nn_kills, 1);
}

/// Flips bytes in a random finalized replica; false if none was found.
fn corrupt_random_replica(c: &Cluster, rng: &mut rand::rngs::StdRng) -> bool {
    let i = rng.random_range(0..c.datanodes.len());
    let files: Vec<_> = replica_files(&c.datanode_dir(i))
        .into_iter()
        .filter(|p| fs::metadata(p).map(|m| m.len() > 0).unwrap_or(false))
        .collect();
    if files.is_empty() {
        return false;
    }
    let p = &files[rng.random_range(0..files.len())];
    let len = fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let Ok(mut f) = fs::OpenOptions::new().write(true).open(p) else {
        return false;
    };
    let off = rng.random_range(0..len);
    let _ = f.seek(SeekFrom::Start(off));
    let mut old = [0u8; 1];
    if let Ok(data) = fs::read(p) {
        old[0] = data[off as usize];
    }
    f.write_all(&[!old[0]]).is_ok() && f.sync_all().is_ok()
}
