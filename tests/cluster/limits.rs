//! Datanode limits: a full disk (no new blocks, reads still served), the
//! block transfer slots (`--max-xceivers`: refusals, clients going
//! elsewhere, busy waits) and peers that stop taking data
//! (`--socket-write-timeout`).

use std::fs;
use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use dfs_client::Client;
use dfs_tests::{replica_files, sha256_file, wait_until, Cluster, NodeSpec};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

#[test]
fn full_datanode_takes_no_new_blocks_but_serves_reads() {
    let mut c = Cluster::builder().datanodes(3).start();
    let local = c.local_file("before", 2 * MIB, 6);
    c.dfs_ok(&["put", local.to_str().unwrap(), "/before"]);
    // A fourth node whose reserve exceeds any disk.
    c.add_datanode_with(
        NodeSpec {
            host: "127.0.0.1".into(),
            rack: None,
        },
        &["--reserved", "1000000000000000"],
    );
    c.wait_live(4, Duration::from_secs(20));
    let local2 = c.local_file("after", 3 * MIB, 7);
    c.dfs_ok(&["put", local2.to_str().unwrap(), "/after"]);
    assert!(
        replica_files(&c.datanode_dir(3)).is_empty(),
        "a full node received blocks"
    );
    let out = c.dir.path().join("after.out");
    c.dfs_ok(&["get", "/after", out.to_str().unwrap()]);
    assert_eq!(sha256_file(&local2), sha256_file(&out));
}

/// A datanode that serves its `--max-xceivers` block transfers refuses one
/// more as busy, naming itself and the limit, and the client goes
/// elsewhere: new blocks land on the other datanode, and once a heartbeat
/// told the namenode, it no longer offers the busy one; a read whose only
/// replica is on the busy node asks again after growing waits, fails with
/// one line saying why if the node stays busy, and completes if a transfer
/// ends meanwhile.
#[test]
fn a_datanode_at_its_transfer_limit_refuses_and_clients_go_elsewhere() {
    let localhost = || NodeSpec {
        host: "127.0.0.1".into(),
        rack: None,
    };
    let mut c = Cluster::builder().datanodes(0).replication(1).start();
    c.add_datanode_with(localhost(), &["--max-xceivers", "1"]);
    c.wait_live(1, Duration::from_secs(20));
    let only = c.local_file("only", MIB + 3, 21);
    c.dfs_ok(&["put", only.to_str().unwrap(), "/only"]);
    let before = replica_files(&c.datanode_dir(0)).len();
    c.add_datanode_with(localhost(), &[]);
    c.wait_live(2, Duration::from_secs(20));

    // A connection that opened a block read and sent nothing more holds
    // the busy node's one transfer slot until its request times out
    // (30 s): no refusal comes back to it.
    let held_at = Instant::now();
    let mut hold = std::net::TcpStream::connect(&c.datanodes[0].addr).unwrap();
    hold.write_all(&dfs_proto::xfer::READ_BLOCK).unwrap();
    hold.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(
        hold.read(&mut byte).is_err(),
        "the connection meant to hold the slot was answered"
    );
    // Writes go to the other node, whichever node the namenode offers:
    // until the busy node's next heartbeat tells the namenode it serves
    // its limit, the namenode may offer it (the writer is refused and asks
    // for another node); after that it does not.
    // Returns whether the writer was refused by a node (its warning).
    let put_and_get = |i: u64| {
        let local = c.local_file(&format!("w{i}"), 50 * KIB, 30 + i);
        let remote = format!("/w{i}");
        let put = c.dfs(&["put", local.to_str().unwrap(), &remote]);
        let warnings = String::from_utf8_lossy(&put.stderr).into_owned();
        assert!(put.status.success(), "put {remote}: {warnings}");
        let back = c.dir.path().join(format!("w{i}.out"));
        c.dfs_ok(&["get", &remote, back.to_str().unwrap()]);
        assert_eq!(sha256_file(&local), sha256_file(&back));
        warnings.contains("could not set up the write pipeline")
    };
    let mut i = 0;
    let busy_addr = c.datanodes[0].addr.clone();
    let reported_busy = || {
        let r = c.dfs_json(&["report", "--json"]);
        r["datanodes"].as_array().is_some_and(|nodes| {
            nodes.iter().any(|d| {
                d["address"].as_str() == Some(busy_addr.as_str())
                    && d["xceivers"] == 1
                    && d["max_xceivers"] == 1
            })
        })
    };
    while !reported_busy() {
        assert!(
            held_at.elapsed() < Duration::from_secs(8),
            "the namenode never heard that the busy node serves its limit"
        );
        put_and_get(i);
        i += 1;
    }
    for _ in 0..4 {
        assert!(
            !put_and_get(i),
            "the namenode offered a node whose heartbeat said it serves its limit"
        );
        i += 1;
    }
    // The held slot lasts 30 s; what follows needs at most ~10 s.
    assert!(
        held_at.elapsed() < Duration::from_secs(15),
        "too slow: the held slot may time out before the end ({:?})",
        held_at.elapsed()
    );
    assert_eq!(
        replica_files(&c.datanode_dir(0)).len(),
        before,
        "the busy node took new blocks"
    );

    let out = c.dir.path().join("only.out");
    let mut refused = String::new();
    // The client asks a busy node again after growing waits (3.75-7.5 s
    // in all), then gives up.
    wait_until(
        Duration::from_secs(30),
        "the busy node to refuse a read",
        || {
            let r = c.dfs(&["get", "-f", "/only", out.to_str().unwrap()]);
            refused = String::from_utf8_lossy(&r.stderr).into_owned();
            !r.status.success()
        },
    );
    assert_eq!(
        refused.matches("asking again").count(),
        4,
        "the read should ask the busy node again four times: {refused}"
    );
    // One line says why (the client's warnings about each replica it
    // tried come before it).
    let error: Vec<&str> = refused.lines().filter(|l| l.starts_with("dfs:")).collect();
    assert_eq!(error.len(), 1, "{refused}");
    assert!(
        error[0].contains("busy")
            && error[0].contains("--max-xceivers")
            && error[0].contains(&c.datanodes[0].addr),
        "the error names neither the node nor the limit: {refused}"
    );

    // A read that finds every replica busy waits: when the transfer ends
    // during its waits, it completes.
    let mut waiting = c
        .dfs_command(&["get", "-f", "/only", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The slot frees once the read has been refused and is waiting.
    let lines = std::io::BufReader::new(waiting.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufRead::lines(lines).map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut stderr = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !stderr.contains("asking again") {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => stderr.push_str(&(line + "\n")),
            Err(_) => panic!("the read never waited for the busy node: {stderr}"),
        }
    }
    drop(hold);
    let status = waiting.wait().unwrap();
    reader.join().unwrap();
    stderr.extend(rx.try_iter().map(|l| l + "\n"));
    assert!(status.success(), "the waiting read failed: {stderr}");
    assert!(
        stderr.contains("busy") && stderr.contains("asking again"),
        "{stderr}"
    );
    assert_eq!(sha256_file(&only), sha256_file(&out));
    let log = fs::read_to_string(&c.datanodes[0].log).unwrap();
    assert!(
        log.contains("block read refused") && log.contains("--max-xceivers"),
        "the datanode did not log the refusal"
    );
    assert!(c.datanodes[0].is_running());
}

/// A reader that opened a block and stopped reading holds a transfer slot
/// only until `--socket-write-timeout`: then the datanode closes the
/// connection, saying why, and the read waiting for a slot is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_reading_loses_its_slot_after_the_write_timeout() {
    let c = Cluster::builder()
        .datanodes(1)
        .replication(1)
        .block_size(16 * MIB as u64)
        .datanode_args(&["--max-xceivers", "1", "--socket-write-timeout", "2s"])
        .start();
    // Far more than the socket buffers of a connection nobody reads.
    let local = c.local_file("stalled", 12 * MIB, 81);
    c.dfs_ok(&["put", local.to_str().unwrap(), "/stalled"]);
    let client = Client::connect(c.addr()).await.unwrap();
    let block = client
        .block_locations("/stalled", 0, u64::MAX)
        .await
        .unwrap()[0]
        .clone();
    let req = dfs_proto::ReadBlockRequest {
        block: Some(dfs_proto::ExtendedBlock {
            id: block.block_id,
            generation_stamp: 0,
            length: block.length,
        }),
        offset: 0,
        length: block.length,
        client_name: "stalled-reader".into(),
    };
    let held = dfs_proto::xfer::open_read_block(&c.datanodes[0].addr, &req, Duration::from_secs(5))
        .await
        .unwrap();
    // The held read takes the node's one slot: this get is refused as busy
    // and waits in rounds (7.5 s at most) until the datanode gives up on
    // the stalled reader.
    let out = c.dir.path().join("stalled.out");
    let res = c.dfs(&["get", "/stalled", out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "get failed: {stderr}");
    assert!(
        stderr.contains("busy"),
        "the get was never refused: {stderr}"
    );
    assert_eq!(sha256_file(&local), sha256_file(&out));
    let log = fs::read_to_string(&c.datanodes[0].log).unwrap();
    assert!(
        log.contains("--socket-write-timeout") && log.contains("stalled-reader"),
        "the datanode did not say why it closed the stalled read:\n{log}"
    );
    drop(held);
}

/// A node that cannot start exits with a failure status, not a panic, also
/// when its stderr cannot be written (its log on a full disk: the chaos
/// test's restarted nodes once exited with 101 that way). `/dev/full`
/// refuses every write with ENOSPC.
#[test]
fn a_node_that_cannot_start_fails_cleanly_even_when_its_log_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("file");
    fs::write(&not_a_dir, b"x").unwrap();
    let data = dir.path().join("dn");
    let runs: [(&str, Vec<&str>); 2] = [
        (
            "namenode",
            vec![
                "--listen",
                "127.0.0.1:0",
                "--data",
                not_a_dir.to_str().unwrap(),
            ],
        ),
        (
            "datanode",
            vec![
                "--namenode",
                "127.0.0.1:1",
                "--listen",
                "256.0.0.1:5",
                "--data",
                data.to_str().unwrap(),
            ],
        ),
    ];
    for (name, args) in runs {
        let full = fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let status = std::process::Command::new(dfs_tests::bin(name))
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(full)
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(1), "{name} {args:?}: {status}");
    }
}

/// A namenode at its file-descriptor limit cannot accept connections:
/// new clients wait in its backlog while it pauses between tries and says
/// why, and once descriptors are freed it serves them. (Found by an
/// explorer: tonic's accept loop retried at once, spinning a core, and
/// logged nothing.)
#[test]
fn a_namenode_out_of_file_descriptors_waits_without_spinning_and_serves_again() {
    let c = Cluster::builder().datanodes(1).start();
    let pid = c.namenode.pid().unwrap();
    let open = fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    let limit = open + 8;
    let set = std::process::Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={limit}:{limit}"))
        .output()
        .unwrap();
    assert!(set.status.success(), "prlimit: {set:?}");
    // Connections that take the namenode's last descriptors, and more
    // waiting in its backlog.
    let conns: Vec<std::net::TcpStream> = (0..20)
        .map(|_| std::net::TcpStream::connect(c.addr()).unwrap())
        .collect();
    wait_until(
        Duration::from_secs(10),
        "the namenode to log the failed accepts",
        || {
            fs::read_to_string(&c.namenode.log)
                .unwrap()
                .contains("cannot accept a connection")
        },
    );
    let cpu = || dfs_tests::cpu_time(&pid.to_string()).unwrap().as_secs_f64();
    let before = cpu();
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu() - before;
    assert!(
        used < 0.5,
        "the namenode used {used:.2} s of CPU in 2 s while out of descriptors"
    );
    drop(conns);
    wait_until(
        Duration::from_secs(30),
        "the namenode to serve again",
        || c.dfs(&["ls", "/"]).status.success(),
    );
}
