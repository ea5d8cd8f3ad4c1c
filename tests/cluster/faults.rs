//! Failures of issue 2: namenode SIGKILL and restart, a dead datanode, a
//! replica whose bytes rot on disk.

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Duration;

use dfs_client::{BlockLocation, Client};
use dfs_tests::{replica_files, sha256_file, wait_until, Cluster};
use tokio::io::AsyncWriteExt;

const MIB: usize = 1024 * 1024;

#[test]
fn namenode_sigkill_keeps_every_acknowledged_change() {
    let mut c = Cluster::builder().start();
    c.dfs_ok(&["mkdir", "-p", "/keep/dir"]);
    let mut files = Vec::new();
    for i in 0..6 {
        let local = c.local_file(&format!("k{i}"), i * MIB / 2 + 17, i as u64);
        let remote = format!("/keep/f{i}");
        c.dfs_ok(&["put", local.to_str().unwrap(), &remote]);
        files.push((local, remote));
    }
    c.dfs_ok(&["mv", "/keep/f5", "/keep/dir/f5"]);
    files[5].1 = "/keep/dir/f5".into();
    c.dfs_ok(&["rm", "/keep/f4"]);
    files.remove(4);
    c.dfs_ok(&["mkdir", "/after"]);

    c.restart_namenode(3);

    assert_eq!(c.dfs_json(&["stat", "--json", "/after"])["type"], "dir");
    assert!(
        !c.dfs(&["stat", "/keep/f4"]).status.success(),
        "deleted file came back"
    );
    for (i, (local, remote)) in files.iter().enumerate() {
        let out = c.dir.path().join(format!("restored-{i}"));
        c.dfs_ok(&["get", remote, out.to_str().unwrap()]);
        assert_eq!(sha256_file(local), sha256_file(&out), "{remote}");
    }
    // The restarted namenode accepts new writes.
    let local = c.local_file("new", MIB + 5, 42);
    c.dfs_ok(&["put", local.to_str().unwrap(), "/after/new"]);
}

/// A namenode restart of a few seconds fails no write: a create, and the
/// next block of a file being written, whose connection the namenode
/// refused (so the request never reached it) or that it refused in safe
/// mode, are retried until it is back, within the client's RPC timeout
/// (as HDFS's client retries connection failures). Before, both failed at
/// once ("connection refused").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_and_new_blocks_wait_out_a_short_namenode_restart() {
    let mut c = Cluster::builder().start();
    let client = Client::connect(c.addr()).await.unwrap();
    let data = dfs_tests::random_bytes(2 * MIB + 3, 12);
    let mut w = client.create("/a", Default::default()).await.unwrap();
    // A full block: the next byte needs a new block (AddBlock).
    w.write_all(&data[..MIB]).await.unwrap();
    w.hflush().await.unwrap();
    c.namenode.kill();
    // The calls below are made while the namenode is down (those caught
    // in the instant it dies are the next test's concern).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rest = data[MIB..].to_vec();
    let writer = tokio::spawn(async move {
        w.write_all(&rest).await?;
        w.close().await
    });
    let c2 = client.clone();
    let creator = tokio::spawn(async move {
        let mut w = c2.create("/b", Default::default()).await?;
        w.write_all(b"made while the namenode restarted").await?;
        w.close().await
    });
    // Namespace changes asked while it is down wait for it too.
    let c3 = client.clone();
    let changes = tokio::spawn(async move {
        c3.mkdirs("/m/n", true).await?;
        c3.rename("/m/n", "/m/o", false).await?;
        c3.delete("/m/o", false).await
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    tokio::task::block_in_place(|| c.namenode.restart());
    changes
        .await
        .unwrap()
        .expect("a namespace change during the restart failed");
    assert!(client.status("/m").await.unwrap().is_dir());
    assert!(client.status("/m/o").await.is_err());
    writer
        .await
        .unwrap()
        .expect("the write across the restart failed");
    creator
        .await
        .unwrap()
        .expect("the create during the restart failed");
    let got = c.dfs_ok(&["cat", "/b"]);
    assert_eq!(got, "made while the namenode restarted");
    let back = c.dir.path().join("a-back");
    c.dfs_ok(&["get", "/a", back.to_str().unwrap()]);
    assert!(fs::read(&back).unwrap() == data, "wrong bytes in /a");
}

/// Calls that change the namespace and were sent just before the
/// namenode died (stopped, then killed, so they reached its socket and got
/// no answer) are retried once it is back, instead of failing with
/// "connection reset": the client cannot know whether they ran, and sends
/// them again with the same call id. Here they never ran, so the restarted
/// namenode runs them; a call that did run is answered from the retry
/// cache (next test). Before, each failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_caught_by_the_namenode_dying_are_retried_once_it_is_back() {
    let mut c = Cluster::builder().start();
    let client = Client::connect(c.addr()).await.unwrap();
    for p in ["/r", "/d"] {
        let mut w = client.create(p, Default::default()).await.unwrap();
        w.write_all(p.as_bytes()).await.unwrap();
        w.close().await.unwrap();
    }
    c.namenode.signal(libc::SIGSTOP);
    let c2 = client.clone();
    let calls = tokio::spawn(async move {
        let (mkdir, rename, delete, create) = tokio::join!(
            c2.mkdirs("/m", false),
            c2.rename("/r", "/r2", false),
            c2.delete("/d", false),
            async {
                let mut w = c2.create("/c", Default::default()).await?;
                w.write_all(b"created across the namenode's death").await?;
                w.close().await
            }
        );
        [
            ("mkdir", mkdir.map(|_| ())),
            ("rename", rename),
            ("delete", delete.map(|_| ())),
            ("create", create),
        ]
    });
    // The calls reach the stopped namenode and wait unanswered.
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.namenode.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::task::block_in_place(|| c.namenode.restart());
    for (op, result) in calls.await.unwrap() {
        if let Err(e) = result {
            panic!("{op} caught by the namenode's death failed: {e}");
        }
    }
    assert!(client.status("/m").await.unwrap().is_dir());
    assert!(client.status("/r").await.is_err());
    assert!(client.status("/d").await.is_err());
    assert_eq!(c.dfs_ok(&["cat", "/r2"]), "/r");
    assert_eq!(
        c.dfs_ok(&["cat", "/c"]),
        "created across the namenode's death"
    );
}

/// `msg` sent by `root` with call id `id`.
fn with_id<T>(msg: T, id: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert(dfs_proto::call::CALL_ID_KEY, id.parse().unwrap());
    r.metadata_mut().insert_bin(
        dfs_proto::principal::USER_KEY,
        tonic::metadata::MetadataValue::from_bytes(b"root"),
    );
    r
}

/// A call that ran, and reached the edit log, just before the namenode
/// was killed is not run again when its client sends it again (same call
/// id) to the restarted namenode: the call id was logged with the edit,
/// so the retry gets an answer made from the namespace, where running it
/// again failed with "already exists" or "not found". A retried create
/// gets the file and the block it allocated (the writer's AddBlock would
/// get it too). The records survive a second restart, and a call id
/// reused for another kind of call is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_retried_after_a_namenode_restart_is_not_run_again() {
    use dfs_proto::namenode::ClientProtocolClient;
    use dfs_proto::{AddBlockRequest, CreateRequest, DeleteRequest, MkdirsRequest, RenameRequest};
    let mut c = Cluster::builder().start();
    let connect = |addr: String| async move {
        ClientProtocolClient::connect(format!("http://{addr}"))
            .await
            .unwrap()
    };
    let mut nn = connect(c.addr().to_string()).await;
    let mkdir = || MkdirsRequest {
        path: "/m".into(),
        mode: 0o755,
        ..Default::default()
    };
    let create = |path: &str, allocate_block: bool| CreateRequest {
        path: path.into(),
        client_name: "test".into(),
        replication: 3,
        block_size: MIB as u64,
        mode: 0o644,
        allocate_block,
        ..Default::default()
    };
    let rename = || RenameRequest {
        src: "/m/h".into(),
        dst: "/m/h2".into(),
        ..Default::default()
    };
    let delete = || DeleteRequest {
        path: "/m/x".into(),
        ..Default::default()
    };
    nn.mkdirs(with_id(mkdir(), "r:1")).await.unwrap();
    let first = nn
        .create(with_id(create("/m/f", true), "r:2"))
        .await
        .unwrap()
        .into_inner();
    let block = first.block.and_then(|b| b.block).expect("a first block");
    let inode = first.status.as_ref().unwrap().inode;
    nn.create(with_id(create("/m/h", false), "r:10"))
        .await
        .unwrap();
    nn.rename(with_id(rename(), "r:3")).await.unwrap();
    nn.create(with_id(create("/m/x", false), "r:11"))
        .await
        .unwrap();
    nn.delete(with_id(delete(), "r:4")).await.unwrap();

    tokio::task::block_in_place(|| c.restart_namenode(3));
    let mut nn = connect(c.addr().to_string()).await;
    let dir = nn
        .mkdirs(with_id(mkdir(), "r:1"))
        .await
        .expect("a retried mkdir after a restart must succeed");
    assert_eq!(
        dir.into_inner().status.unwrap().file_type(),
        dfs_proto::FileType::Dir
    );
    let again = nn
        .create(with_id(create("/m/f", true), "r:2"))
        .await
        .expect("a retried create after a restart must succeed")
        .into_inner();
    assert_eq!(again.status.unwrap().inode, inode, "the same file");
    assert_eq!(
        again.block.and_then(|b| b.block).map(|b| b.id),
        Some(block.id),
        "the block the create allocated"
    );
    let added = nn
        .add_block(with_id(
            AddBlockRequest {
                path: "/m/f".into(),
                client_name: "test".into(),
                file_id: inode,
                ..Default::default()
            },
            "r:12",
        ))
        .await
        .expect("the writer's AddBlock after the retried create")
        .into_inner();
    assert_eq!(
        added.block.and_then(|b| b.block).map(|b| b.id),
        Some(block.id),
        "the block the create allocated"
    );
    nn.rename(with_id(rename(), "r:3"))
        .await
        .expect("a retried rename after a restart must succeed");
    nn.delete(with_id(delete(), "r:4"))
        .await
        .expect("a retried delete after a restart must succeed");
    let other = nn.rename(with_id(rename(), "r:4")).await.unwrap_err();
    assert_eq!(other.code(), tonic::Code::InvalidArgument, "{other:?}");
    // A second restart soon after still knows the calls.
    tokio::task::block_in_place(|| c.restart_namenode(3));
    let mut nn = connect(c.addr().to_string()).await;
    nn.delete(with_id(delete(), "r:4"))
        .await
        .expect("a retried delete after a second restart must succeed");
    // A new call id runs: the file is really gone.
    let gone = nn.delete(with_id(delete(), "r:5")).await.unwrap_err();
    assert!(gone.message().contains("/m/x"), "{gone:?}");
    let names: Vec<String> = c.tree().into_iter().map(|(p, _, _)| p).collect();
    assert_eq!(names, ["/m", "/m/f", "/m/h2"]);
    assert!(
        fs::read_to_string(&c.namenode.log)
            .unwrap()
            .contains("answered from the namespace, not run twice"),
        "the namenode should say so"
    );
}

/// The namenode runs a call that must run at most once (create, delete,
/// rename, mkdir) once per call id: the same call sent again with the same
/// id, as a client does when its connection broke, gets the first answer
/// instead of "already exists" or "not found"; the same call with a new id
/// runs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_sent_twice_with_the_same_call_id_runs_once() {
    use dfs_proto::namenode::ClientProtocolClient;
    use dfs_proto::{CreateRequest, DeleteRequest, MkdirsRequest, RenameRequest};
    let c = Cluster::builder().start();
    let mut nn = ClientProtocolClient::connect(format!("http://{}", c.addr()))
        .await
        .unwrap();
    let mkdir = || MkdirsRequest {
        path: "/m".into(),
        mode: 0o755,
        ..Default::default()
    };
    nn.mkdirs(with_id(mkdir(), "test:1")).await.unwrap();
    nn.mkdirs(with_id(mkdir(), "test:1"))
        .await
        .expect("a retried mkdir must get the first answer");
    let again = nn.mkdirs(with_id(mkdir(), "test:2")).await.unwrap_err();
    assert!(again.message().contains("exists"), "{again:?}");

    let create = || CreateRequest {
        path: "/m/f".into(),
        client_name: "test".into(),
        replication: 3,
        block_size: MIB as u64,
        mode: 0o644,
        ..Default::default()
    };
    let first = nn.create(with_id(create(), "test:3")).await.unwrap();
    let retry = nn.create(with_id(create(), "test:3")).await.unwrap();
    assert_eq!(first.into_inner(), retry.into_inner());
    assert!(nn.create(with_id(create(), "test:4")).await.is_err());

    let rename = || RenameRequest {
        src: "/m/f".into(),
        dst: "/m/g".into(),
        ..Default::default()
    };
    nn.rename(with_id(rename(), "test:5")).await.unwrap();
    nn.rename(with_id(rename(), "test:5"))
        .await
        .expect("a retried rename must get the first answer");
    assert!(nn.rename(with_id(rename(), "test:6")).await.is_err());

    let delete = || DeleteRequest {
        path: "/m/g".into(),
        ..Default::default()
    };
    nn.delete(with_id(delete(), "test:7")).await.unwrap();
    nn.delete(with_id(delete(), "test:7"))
        .await
        .expect("a retried delete must get the first answer");
    let gone = nn.delete(with_id(delete(), "test:8")).await.unwrap_err();
    assert!(gone.message().contains("/m/g"), "{gone:?}");
    assert_eq!(
        c.tree(),
        [("/m".to_string(), "dir".to_string(), 0)],
        "the namespace after the retries"
    );
}

#[test]
fn files_read_back_with_one_of_three_datanodes_killed() {
    let mut c = Cluster::builder().start();
    let mut files = Vec::new();
    for i in 0..4 {
        let local = c.local_file(&format!("d{i}"), (i + 1) * MIB + 333, 10 + i as u64);
        let remote = format!("/d{i}");
        c.dfs_ok(&["put", local.to_str().unwrap(), &remote]);
        files.push((local, remote));
    }
    c.datanodes[1].kill();
    for (i, (local, remote)) in files.iter().enumerate() {
        let out = c.dir.path().join(format!("back-{i}"));
        c.dfs_ok(&["get", remote, out.to_str().unwrap()]);
        assert_eq!(sha256_file(local), sha256_file(&out), "{remote}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_bytes_are_detected_and_reported() {
    let c = Cluster::builder().start();
    let local = c.local_file("rot", 2 * MIB, 7);
    c.dfs_ok(&["put", local.to_str().unwrap(), "/rot"]);
    let client = Client::connect(c.addr()).await.unwrap();
    let (first, victim, _) =
        corrupt_first_replica(&c, &client, "/rot", 1000, b"\xde\xad\xbe\xef").await;
    let victim_addr = c.datanodes[victim].addr.clone();
    // The read still returns the right bytes.
    let out = c.dir.path().join("rot.out");
    c.dfs_ok(&["get", "/rot", out.to_str().unwrap()]);
    assert_eq!(sha256_file(&local), sha256_file(&out));
    // The namenode learned: the bad replica is no longer offered (or it was
    // already replaced by a good copy).
    let good = fs::read(&local).unwrap();
    let block_len = first.length as usize;
    let client2 = client.clone();
    let block_id = first.block_id;
    let rt = tokio::runtime::Handle::current();
    let dir = c.datanode_dir(victim);
    tokio::task::spawn_blocking(move || {
        wait_until(
            Duration::from_secs(30),
            "the namenode to drop the corrupt replica",
            || {
                let locs = rt.block_on(client2.block_locations("/rot", 0, 1)).unwrap();
                let offered = locs[0].hosts.contains(&victim_addr);
                let repaired = fs::read(
                    dir.join("current/finalized")
                        .join(format!("blk_{block_id}")),
                )
                .map(|b| b == good[..block_len])
                .unwrap_or(false);
                !offered || repaired
            },
        );
    })
    .await
    .unwrap();
}

/// A small file is read by the datanode in the task that opens the replica
/// (one message): a flipped byte there is refused the same way, the read
/// goes to another replica, and the datanode moves the bad replica aside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_in_a_small_file_is_refused_and_moved_aside() {
    let c = Cluster::builder().start();
    let local = c.local_file("small", 4096, 8);
    c.dfs_ok(&["put", local.to_str().unwrap(), "/small"]);
    let client = Client::connect(c.addr()).await.unwrap();
    let (_, victim, replica) = corrupt_first_replica(&c, &client, "/small", 100, b"\x00\xff").await;
    let out = c.dir.path().join("small.out");
    c.dfs_ok(&["get", "/small", out.to_str().unwrap()]);
    assert_eq!(sha256_file(&local), sha256_file(&out));
    let log = c.datanodes[victim].log.clone();
    wait_until(
        Duration::from_secs(10),
        "the datanode to move the corrupt replica aside",
        || fs::read_to_string(&log).is_ok_and(|l| l.contains("corrupt replica moved to corrupt/")),
    );
    assert!(!replica.exists(), "{} is still in place", replica.display());
}

/// A read whose replicas are gone while the namenode cannot be asked again
/// either fails, after its rounds, with one error naming both: the
/// replicas' failures and the namenode's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_with_no_replica_and_no_namenode_names_both() {
    let mut c = Cluster::builder().datanodes(1).replication(1).start();
    let local = c.local_file("gone", 3000, 72);
    c.dfs_ok(&["put", local.to_str().unwrap(), "/gone"]);
    let opts = dfs_client::ClientOptions {
        rpc_timeout: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let client = Client::connect_with(c.addr(), opts).await.unwrap();
    let r = client.open("/gone").await.unwrap();
    c.datanodes[0].kill();
    c.namenode.kill();
    let mut buf = vec![0u8; 3000];
    let started = std::time::Instant::now();
    let err = r.read_at(0, &mut buf).await.unwrap_err().to_string();
    assert!(
        err.contains("cannot reach datanode")
            && err.contains("the namenode could not be asked again"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

/// A read whose only replica's node is down waits and asks the namenode
/// again (HDFS's block acquire retries) instead of failing at once, so it
/// completes when the node comes back within seconds.
#[test]
fn a_read_waits_for_a_replica_whose_node_comes_back() {
    let mut c = Cluster::builder().datanodes(1).replication(1).start();
    let local = c.local_file("back", MIB + 333, 71);
    c.dfs_ok(&["put", local.to_str().unwrap(), "/back"]);
    c.datanodes[0].kill();
    let out = c.dir.path().join("got");
    let mut get = c.dfs_command(&["get", "/back", out.to_str().unwrap()]);
    let get = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let res = get.output().expect("run dfs get");
        (res, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    c.datanodes[0].restart();
    let (res, took) = get.join().unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "get failed after {took:?}: {stderr}");
    assert!(
        stderr.contains("asking the namenode for its locations again"),
        "the read never waited: {stderr}"
    );
    assert_eq!(sha256_file(&local), sha256_file(&out));
}

/// Datanodes whose full block reports come in parts (two replicas per
/// message here; 100,000 by default) bring a restarted namenode out of safe
/// mode with every replica known.
#[test]
fn block_reports_in_parts_rebuild_every_location_after_a_restart() {
    let mut c = Cluster::builder()
        .datanode_args(&["--block-report-part", "2"])
        .start();
    c.dfs_ok(&["mkdir", "/parts"]);
    let mut files = Vec::new();
    for i in 0..3 {
        // 2.5 blocks each: 9 blocks, so each node reports in 5 parts.
        let local = c.local_file(&format!("p{i}"), 2 * MIB + MIB / 2, 40 + i as u64);
        let remote = format!("/parts/f{i}");
        c.dfs_ok(&["put", local.to_str().unwrap(), &remote]);
        files.push((local, remote));
    }
    c.restart_namenode(3);
    let fsck = c.dfs_json(&["fsck", "--json", "/parts"]);
    assert_eq!(fsck["status"], "HEALTHY", "{fsck}");
    for f in fsck["files"].as_array().unwrap() {
        for b in f["blocks"].as_array().unwrap() {
            assert_eq!(b["replicas"].as_array().unwrap().len(), 3, "{b}");
        }
    }
    for (local, remote) in &files {
        let out = c.dir.path().join("back");
        c.dfs_ok(&["get", "-f", remote, out.to_str().unwrap()]);
        assert_eq!(sha256_file(local), sha256_file(&out), "{remote}");
    }
    // Each node's 9 replicas arrived in 5 parts.
    let log = std::fs::read_to_string(&c.namenode.log).unwrap();
    let reports = log
        .lines()
        .filter(|l| l.contains("full block report processed") && l.contains("parts=5"))
        .count();
    assert!(reports >= 3, "{reports} reports in 5 parts:\n{log}");
}

/// Overwrites `bytes` at `offset` in the replica of the first block of
/// `path` that a reader tries first; returns the block, the datanode's
/// index and the replica file.
async fn corrupt_first_replica(
    c: &Cluster,
    client: &Client,
    path: &str,
    offset: u64,
    bytes: &[u8],
) -> (BlockLocation, usize, PathBuf) {
    let locs = client.block_locations(path, 0, u64::MAX).await.unwrap();
    let first = locs[0].clone();
    let victim = (0..c.datanodes.len())
        .find(|&i| c.datanodes[i].addr == first.hosts[0])
        .expect("victim datanode");
    let name = format!("blk_{}", first.block_id);
    let replica = replica_files(&c.datanode_dir(victim))
        .into_iter()
        .find(|p| p.file_name().unwrap().to_string_lossy() == name)
        .expect("replica file");
    let mut f = fs::OpenOptions::new().write(true).open(&replica).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
    (first, victim, replica)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_files_read_together_are_verified_and_fail_over() {
    use tokio::io::AsyncWriteExt;
    let mut c = Cluster::builder().block_size(MIB as u64).start();
    let client = Client::connect(c.addr()).await.unwrap();
    client.mkdirs("/small", true).await.unwrap();
    let mut want = Vec::new();
    for i in 0..40u64 {
        let len = if i == 3 { 0 } else { 100 + 997 * i as usize };
        let data = dfs_tests::random_bytes(len, i);
        let mut w = client
            .create(&format!("/small/f{i:02}"), Default::default())
            .await
            .unwrap();
        w.write_all(&data).await.unwrap();
        w.close().await.unwrap();
        want.push(Some(data));
    }
    // Two blocks: not a small file.
    let big = c.local_file("big", MIB + 10, 99);
    c.dfs_ok(&["put", big.to_str().unwrap(), "/small/z-big"]);
    want.push(None);
    // Every replica of f05 flipped: its bytes are never returned.
    let name = {
        let locs = client.block_locations("/small/f05", 0, 0).await.unwrap();
        format!("blk_{}", locs[0].block_id)
    };
    for i in 0..c.datanodes.len() {
        for p in replica_files(&c.datanode_dir(i)) {
            if p.file_name().unwrap().to_string_lossy() == name {
                let mut f = fs::OpenOptions::new().write(true).open(&p).unwrap();
                f.seek(SeekFrom::Start(700)).unwrap();
                f.write_all(b"XYZ").unwrap();
            }
        }
    }
    want[5] = None;

    let check = |got: Vec<Option<Vec<u8>>>| {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.as_deref(), w.as_deref(), "file {i}");
        }
    };
    let (page, more) = client.list_located_page("/small", "", 100).await.unwrap();
    assert!(!more);
    let read = |got: Vec<Option<_>>| -> Vec<Option<Vec<u8>>> {
        got.into_iter()
            .map(|b| b.map(|b: dfs_client::Bytes| b.to_vec()))
            .collect()
    };
    check(read(client.read_small_files(&page).await));

    // A datanode down (and still first in the located page): the files
    // come from the others.
    let first = page[0].status().path.clone();
    let locs = client.block_locations(&first, 0, 0).await.unwrap();
    let victim = (0..c.datanodes.len())
        .find(|&i| c.datanodes[i].addr == locs[0].hosts[0])
        .expect("victim datanode");
    c.datanodes[victim].kill();
    let fresh = Client::connect(c.addr()).await.unwrap();
    check(read(fresh.read_small_files(&page).await));
}

/// A `dfs` command started while the namenode is down (restarting) waits
/// for it, as its calls would, instead of failing at its first connection
/// ("Connection refused"); it says once that it waits.
#[test]
fn a_command_started_while_the_namenode_restarts_waits_for_it() {
    let mut c = Cluster::builder().start();
    c.namenode.kill();
    let child = c
        .dfs_command(&["mkdir", "-p", "/made/while/down"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    c.namenode.restart();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("refuses connections; waiting"), "{err}");
    assert_eq!(
        c.dfs_json(&["stat", "--json", "/made/while/down"])["type"],
        "dir"
    );
}
