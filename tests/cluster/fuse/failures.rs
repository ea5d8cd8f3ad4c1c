//! The mount when the cluster fails: a datanode killed mid-read, the
//! namenode down (EIO within the timeout, then working again), and
//! unmounting by signal or fusermount3 with the cluster down.

use super::*;

#[test]
fn read_survives_a_datanode_killed_midway() {
    let mut c = Cluster::builder().start();
    let src = c.local_file("big", 40 * MIB, 9);
    c.dfs_ok(&["put", src.to_str().unwrap(), "/big"]);
    let m = Mount::new(&c, &[]);
    let mut f = fs::File::open(m.dir.join("big")).unwrap();
    let mut buf = vec![0u8; 10 * MIB];
    f.read_exact(&mut buf).unwrap();
    let mut all = buf.clone();
    c.datanodes[0].kill();
    let mut rest = Vec::new();
    f.read_to_end(&mut rest).unwrap();
    all.extend_from_slice(&rest);
    assert_eq!(dfs_tests::sha256(&all), sha256_file(&src));
}

#[test]
fn namenode_down_fails_with_eio_within_timeout_then_recovers() {
    let mut c = Cluster::builder().start();
    let m = Mount::new(
        &c,
        &[
            "--rpc-timeout",
            "3s",
            "--attr-timeout",
            "0s",
            "--entry-timeout",
            "0s",
        ],
    );
    fs::create_dir(m.dir.join("before")).unwrap();
    c.namenode.kill();
    let start = Instant::now();
    let r = fs::read_dir(m.dir.join("before")).and_then(|d| d.collect::<Result<Vec<_>, _>>());
    let took = start.elapsed();
    let e = r.unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e:?}");
    assert!(took < Duration::from_secs(15), "ls took {took:?}");
    c.restart_namenode(3);
    dfs_tests::wait_until(Duration::from_secs(30), "the mount to work again", || {
        fs::read_dir(m.dir.join("before")).is_ok()
    });
    fs::write(m.dir.join("before/after"), b"ok").unwrap();
    assert_eq!(fs::read(m.dir.join("before/after")).unwrap(), b"ok");
}

/// A request waiting for the namenode holds no FUSE worker thread: with a
/// single one, a read of an open file (served by the datanodes) completes
/// while a lookup waits for a namenode that does not answer (stopped with
/// SIGSTOP, so its socket stays open and only the timeout ends the wait).
#[test]
fn a_request_waiting_for_the_namenode_holds_up_no_other() {
    let c = Cluster::builder().start();
    let src = c.local_file("big", 12 * MIB, 5);
    c.dfs_ok(&["put", src.to_str().unwrap(), "/big"]);
    let m = Mount::new(
        &c,
        &[
            "--threads",
            "1",
            "--rpc-timeout",
            "20s",
            "--attr-timeout",
            "60s",
        ],
    );
    let mut f = fs::File::open(m.dir.join("big")).unwrap();
    let mut head = vec![0u8; MIB];
    f.read_exact(&mut head).unwrap();

    c.namenode.signal(libc::SIGSTOP);
    let absent = m.dir.join("absent");
    let lookup = std::thread::spawn(move || fs::metadata(absent));
    // Time for the LOOKUP to reach the mount's only worker thread.
    std::thread::sleep(Duration::from_secs(1));
    // Not `read_to_end`: it asks for the file's size first (fstat), a
    // GETATTR that goes to the namenode.
    f.seek(SeekFrom::Start(8 * MIB as u64)).unwrap();
    let mut tail = vec![0u8; 4 * MIB];
    f.read_exact(&mut tail).unwrap();
    let waiting = !lookup.is_finished();
    c.namenode.signal(libc::SIGCONT);
    let expected = fs::read(&src).unwrap();
    assert!(tail == expected[8 * MIB..], "wrong bytes read");
    assert!(
        waiting,
        "the read was held up until the lookup waiting for the namenode ended"
    );
    let e = lookup.join().unwrap().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{e:?}");
}

/// `dd` copying `src` to `dst` in 1 MiB writes, its stderr piped.
fn spawn_dd(src: &Path, dst: &Path) -> std::process::Child {
    Command::new("dd")
        .arg(format!("if={}", src.display()))
        .arg(format!("of={}", dst.display()))
        .args(["bs=1M", "status=none"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Bytes the `dd` process `pid` has written to `dst` so far (the offset
/// of its output descriptor); `u64::MAX` until it has opened `dst` (fd 1
/// is the test's own stdout until then) or after it exited.
fn dd_written(pid: u32, dst: &Path) -> u64 {
    let fd = format!("/proc/{pid}/fd/1");
    if !fs::read_link(&fd).is_ok_and(|p| p == dst) {
        return u64::MAX;
    }
    fs::read_to_string(format!("/proc/{pid}/fdinfo/1"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("pos:").map(|p| p.trim().parse::<u64>()))
        })
        .and_then(Result::ok)
        .unwrap_or(u64::MAX)
}

/// A datanode of the pipeline that hangs (SIGSTOP: its connections stay
/// open, nothing answers) while `dd` writes through a mount with the
/// default timeouts: the writer's ack timeout gives up on it and the
/// pipeline goes on without it, and the mount waits that long rather than
/// failing the write with EIO (found by an explorer: the mount gave up
/// after 30 s, 5 s before the pipeline would have recovered).
#[test]
fn a_hung_datanode_during_a_write_is_dropped_from_the_pipeline_before_the_mount_gives_up() {
    // One block, so the node stopped is the head of the pipeline dd
    // writes to: only the writer's own ack timeout (35 s) notices it.
    let c = Cluster::builder().block_size(64 * MIB as u64).start();
    let m = Mount::with_log(&c, &[], "info,dfs_client::streamer=debug");
    let src = c.local_file("big", 24 * MIB, 41);
    let dst = m.dir.join("big");
    let mut dd = spawn_dd(&src, &dst);
    dfs_tests::wait_until(Duration::from_secs(30), "the first 2 MiB written", || {
        (2 * MIB as u64..u64::MAX).contains(&dd_written(dd.id(), &dst))
    });
    let log = m.log();
    let head = log
        .lines()
        .find_map(|l| {
            l.contains("block started")
                .then(|| l.split("pipeline=[\"").nth(1))?
        })
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no pipeline logged: {log}"))
        .to_string();
    let hung = c
        .datanodes
        .iter()
        .find(|d| d.addr == head)
        .unwrap_or_else(|| panic!("no datanode at {head}"));
    hung.signal(libc::SIGSTOP);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = dd.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "dd still running 150 s after the datanode hung"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    hung.signal(libc::SIGCONT);
    let mut err = String::new();
    if let Some(mut e) = dd.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(status.success(), "dd failed: {err}\n{}", m.log());
    assert_eq!(
        sha256_file(&dst),
        sha256_file(&src),
        "the file came back different"
    );
}

/// A WRITE waiting for a datanode that does not answer holds no FUSE
/// worker thread: with a single one, and every datanode stopped (SIGSTOP)
/// while `dd` writes a large file, a mkdir (served by the namenode)
/// completes while the writer is stuck; once the datanodes go on, the
/// file is written whole. (The writer is a process of its own: a fork of
/// this one, as `kill` is started, would close its copy of the file at
/// exec, and that FLUSH waits for the stopped datanodes.)
#[test]
fn a_write_waiting_for_a_hung_datanode_holds_up_no_other() {
    let c = Cluster::builder().start();
    let m = Mount::new(
        &c,
        &[
            "--threads",
            "1",
            "--attr-timeout",
            "0s",
            "--entry-timeout",
            "0s",
        ],
    );
    let src = c.local_file("big", 64 * MIB, 31);
    let dst = m.dir.join("big");
    let mut dd = spawn_dd(&src, &dst);
    let (pid, dst_path) = (dd.id(), dst.clone());
    let written = move || dd_written(pid, &dst_path);
    dfs_tests::wait_until(Duration::from_secs(30), "the first 4 MiB written", || {
        (4 * MIB as u64..u64::MAX).contains(&written())
    });
    for dn in &c.datanodes {
        dn.signal(libc::SIGSTOP);
    }
    // dd fills the pipeline's window and its channel, then waits: stuck
    // once three samples half a second apart agree, inside its writes
    // (not in the close after the last one).
    let mut last = written();
    let mut same = 0;
    dfs_tests::wait_until(Duration::from_secs(30), "the writer to be stuck", || {
        std::thread::sleep(Duration::from_millis(500));
        let now = written();
        same = if std::mem::replace(&mut last, now) == now {
            same + 1
        } else {
            0
        };
        same >= 2
    });
    assert!(
        last < 64 * MIB as u64,
        "dd wrote everything before it got stuck"
    );
    let other = m.dir.join("other");
    let mkdir =
        std::thread::spawn(move || fs::create_dir(&other).and_then(|()| fs::metadata(&other)));
    // Well within the 10 s a new block's pipeline setup may wait (the
    // test cluster's blocks are 1 MiB, so one may be being set up now).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !mkdir.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let served = mkdir.is_finished();
    let writer_stuck = matches!(dd.try_wait(), Ok(None)) && written() == last;
    for dn in &c.datanodes {
        dn.signal(libc::SIGCONT);
    }
    assert!(
        served && writer_stuck,
        "a mkdir must be served while a WRITE waits for stopped datanodes \
         (mkdir served: {served}; writer still waiting then: {writer_stuck})"
    );
    assert!(mkdir.join().unwrap().unwrap().is_dir());
    assert!(dd.wait().unwrap().success());
    assert_eq!(
        sha256_file(&dst),
        sha256_file(&src),
        "the file came back different"
    );
}

/// The back-pressure on writers: the mount completes at most 128 closed
/// files at once (`MAX_PENDING_COMMITS` in dfs-fuse), and close() of a
/// file being written waits while all of them are taken. With the namenode
/// stopped (SIGSTOP: its socket stays open, so completions wait rather than
/// fail), 128 closes return — their bytes are on the datanodes, and no
/// attributes were set, so close() needs nothing of the namenode — and the
/// 129th waits until the namenode answers again and a completion ends.
/// Then every file reads back whole.
#[test]
fn closes_wait_while_128_completions_are_pending() {
    const SLOTS: usize = 128;
    let c = Cluster::builder().start();
    // Timeouts long enough that no completion fails while the namenode is
    // stopped (the commit-slot wait is bounded by the data timeout, 6 × this).
    let m = Mount::with_log(
        &c,
        &["--rpc-timeout", "60s"],
        "info,dfs_client::namenode=trace",
    );
    let dir = m.dir.join("many");
    fs::create_dir(&dir).unwrap();
    let content = |i: usize| random_bytes(4096, i as u64);
    let mut files: Vec<fs::File> = (0..=SLOTS)
        .map(|i| {
            let mut f = fs::File::create(dir.join(format!("f{i:03}"))).unwrap();
            f.write_all(&content(i)).unwrap();
            f
        })
        .collect();
    let last = files.pop().unwrap();

    c.namenode.signal(libc::SIGSTOP);
    let start = Instant::now();
    drop(files);
    let closing = start.elapsed();
    // The RELEASEs that follow the closes start the completions, each in
    // a slot, each logging its call to the (stopped) namenode.
    dfs_tests::wait_until(Duration::from_secs(20), "128 completions to start", || {
        m.log()
            .lines()
            .filter(|l| l.contains("namenode call") && l.contains("op=\"Complete\""))
            .count()
            >= SLOTS
    });
    let last_close = std::thread::spawn(move || {
        let t = Instant::now();
        drop(last);
        t.elapsed()
    });
    std::thread::sleep(Duration::from_secs(2));
    let waited = !last_close.is_finished();
    c.namenode.signal(libc::SIGCONT);
    let last_took = last_close.join().unwrap();
    assert!(
        closing < Duration::from_secs(20),
        "{SLOTS} closes with the namenode stopped took {closing:?}"
    );
    assert!(
        waited,
        "close #{} returned in {last_took:?} while {SLOTS} completions were pending",
        SLOTS + 1
    );
    assert!(
        last_took < Duration::from_secs(30),
        "close #{} took {last_took:?} after the namenode came back",
        SLOTS + 1
    );
    dfs_tests::wait_until(Duration::from_secs(30), "every file to be complete", || {
        let ls = c.dfs_json(&["ls", "--json", "/many"]);
        let entries = ls.as_array().unwrap();
        entries.len() == SLOTS + 1
            && entries
                .iter()
                .all(|e| e["under_construction"] == false && e["length"] == 4096)
    });
    for i in 0..=SLOTS {
        let got = fs::read(dir.join(format!("f{i:03}"))).unwrap();
        assert!(got == content(i), "f{i:03} read back wrong");
    }
}

#[test]
fn namenode_down_during_a_directory_walk_fails_within_one_timeout() {
    let mut c = Cluster::builder().start();
    let m = Mount::new(&c, &["--rpc-timeout", "6s"]);
    let dir = m.dir.join("walk");
    fs::create_dir(&dir).unwrap();
    for i in 0..5 {
        fs::write(dir.join(format!("f{i}")), b"x").unwrap();
    }
    std::thread::sleep(Duration::from_millis(1100));
    // A name found: the next lookup in name order lists ahead.
    fs::read(dir.join("f0")).unwrap();
    c.namenode.kill();
    let start = Instant::now();
    let e = fs::read(dir.join("f1")).unwrap_err();
    let took = start.elapsed();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e:?}");
    // The kernel sends a failed LOOKUP twice; each must cost one RPC
    // timeout (6 s plus slack), not one for the listing and another for a
    // one-name lookup after it (which made ~3 timeouts in all).
    assert!(took < Duration::from_secs(15), "the lookup took {took:?}");
}

/// dfs-fuse unmounts cleanly on SIGTERM and on SIGINT, and `fusermount3 -u`
/// unmounts it too, also while the whole cluster is down.
#[test]
fn unmounts_on_signals_and_fusermount_even_with_the_cluster_down() {
    let mut c = Cluster::builder().datanodes(1).replication(1).start();
    let mounted = |dir: &Path| {
        fs::read_to_string("/proc/self/mounts")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(1) == Some(dir.to_str().unwrap()))
    };
    let exits_cleanly = |m: &mut Mount, what: &str| {
        let status = m
            .proc
            .wait_exit(Duration::from_secs(15))
            .unwrap_or_else(|| panic!("dfs-fuse did not exit after {what}"));
        assert!(
            status.success(),
            "dfs-fuse exited with {status} after {what}"
        );
        assert!(!mounted(&m.dir), "still mounted after {what}");
    };
    let signal = |m: &Mount, sig: i32| {
        let pid = m.proc.pid().unwrap();
        // SAFETY: kill(2) with a pid this test started.
        assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0);
    };

    let mut m = Mount::new(&c, &[]);
    fs::write(m.dir.join("f"), b"x").unwrap();
    assert!(mounted(&m.dir));
    signal(&m, libc::SIGTERM);
    exits_cleanly(&mut m, "SIGTERM");

    let mut m1 = Mount::new(&c, &["--rpc-timeout", "2s"]);
    let mut m2 = Mount::new(&c, &["--rpc-timeout", "2s"]);
    assert_eq!(fs::read(m1.dir.join("f")).unwrap(), b"x");
    c.namenode.kill();
    for d in &mut c.datanodes {
        d.kill();
    }
    signal(&m1, libc::SIGINT);
    exits_cleanly(&mut m1, "SIGINT with the cluster down");
    let out = Command::new("fusermount3")
        .arg("-u")
        .arg(&m2.dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "fusermount3 -u: {out:?}");
    exits_cleanly(&mut m2, "fusermount3 -u with the cluster down");
}

/// After a lazy unmount (`fusermount3 -uz`) the detached mount lives on
/// until its last user goes; if another mount is at the same path by then,
/// the old dfs-fuse leaves it alone as it ends (before, it unmounted by
/// path and took the new mount down with it).
#[test]
fn a_lazily_unmounted_mount_leaves_the_next_one_at_its_path_alone() {
    let c = Cluster::builder().start();
    let mut old = Mount::new(&c, &[]);
    fs::write(old.dir.join("f"), b"kept").unwrap();
    // close() returns once the bytes are on every datanode; the namenode
    // learns the length from the commit that follows. The new mount is
    // another client: it reads what the namenode knows.
    let closed = wait_closed(&c, "/f", Duration::from_secs(30), "the old mount");
    assert_eq!(closed, 4);
    let mut busy = Command::new("sleep")
        .arg("600")
        .current_dir(&old.dir)
        .spawn()
        .unwrap();
    sh(&format!("fusermount3 -u -z '{}'", old.dir.display()));
    let new = Mount::at(&c, old.dir.clone(), &[], "info");
    assert_eq!(fs::read(new.dir.join("f")).unwrap(), b"kept");
    busy.kill().unwrap();
    busy.wait().unwrap();
    let status = old.proc.wait_exit(Duration::from_secs(30));
    assert!(status.is_some(), "the detached mount never ended");
    assert!(
        Command::new("findmnt")
            .arg(&new.dir)
            .status()
            .unwrap()
            .success(),
        "the new mount was taken down"
    );
    assert_eq!(fs::read(new.dir.join("f")).unwrap(), b"kept");
    assert!(
        old.log()
            .contains("the other mount now at the same path is left alone"),
        "{}",
        old.log()
    );
}

/// A mount acts as the user it runs for (`DFS_USER` here, as HDFS's
/// fuse-dfs acts as its user): what the namenode refuses that user comes
/// back as EACCES, changes nothing, is logged, and the mount goes on
/// working where the user may write.
#[test]
fn a_mount_acting_as_a_user_gets_eacces_for_what_the_namenode_refuses() {
    let c = Cluster::builder().start();
    let src = c.local_file("secret", 5000, 3);
    c.dfs_ok(&["mkdir", "-p", "/alice", "/bob"]);
    c.dfs_ok(&["chown", "alice", "/alice"]);
    c.dfs_ok(&["chown", "bob", "/bob"]);
    c.dfs_ok(&["put", src.to_str().unwrap(), "/alice/secret"]);
    c.dfs_ok(&["chmod", "600", "/alice/secret"]);
    let before = c.tree();
    let m = Mount::as_user(&c, "bob");
    #[track_caller]
    fn eacces<T: std::fmt::Debug>(r: std::io::Result<T>, what: &str) {
        let e = r.expect_err(what);
        assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{what}: {e}");
    }
    eacces(fs::write(m.dir.join("alice/new"), b"x"), "create");
    eacces(fs::create_dir(m.dir.join("alice/d")), "mkdir");
    eacces(fs::read(m.dir.join("alice/secret")), "read");
    eacces(fs::remove_file(m.dir.join("alice/secret")), "unlink");
    eacces(
        fs::rename(m.dir.join("alice/secret"), m.dir.join("bob/taken")),
        "rename",
    );
    assert_eq!(c.tree(), before, "a refusal changed the namespace");
    assert!(m.log().contains("Permission denied"), "{}", m.log());
    // bob's own directory: as on any mount, and what the mount creates is
    // bob's (the mount is not the superuser: it cannot give it to the
    // local caller, root here).
    fs::create_dir(m.dir.join("bob/sub")).unwrap();
    fs::write(m.dir.join("bob/sub/f"), b"hello").unwrap();
    assert_eq!(fs::read(m.dir.join("bob/sub/f")).unwrap(), b"hello");
    for path in ["/bob/sub", "/bob/sub/f"] {
        let st = c.dfs_json(&["stat", "--json", path]);
        assert_eq!(st["owner"], "bob", "{st}");
        assert_eq!(st["group"], "root", "the group of its directory: {st}");
    }
    let mode = fs::metadata(m.dir.join("bob/sub")).unwrap().permissions();
    assert_eq!(mode.mode() & 0o7777, 0o755);
}

/// The capacity (`--capacity`) of each datanode in the full-cluster tests:
/// room for two 1 MiB replicas and their checksums, not three.
const FULL_CAPACITY: &str = "3145728";

/// Every datanode is full, and the namenode knows it from their
/// heartbeats: `dfs put` says "no space" in one line and leaves nothing
/// behind, a `cp` onto the mount fails with ENOSPC ("No space left on
/// device", not EIO), what is stored reads back intact, and once a file is
/// deleted and its replicas are gone, writes work again.
#[test]
fn a_full_cluster_answers_no_space_and_takes_writes_again_once_space_is_freed() {
    let c = Cluster::builder()
        .datanode_args(&["--capacity", FULL_CAPACITY])
        .start();
    let a = c.local_file("a", 2 * MIB, 1);
    let b = c.local_file("b", 3 * MIB, 2);
    c.dfs_ok(&["put", a.to_str().unwrap(), "/a"]);
    dfs_tests::wait_until(
        Duration::from_secs(20),
        "heartbeats saying the datanodes are full",
        || {
            let r = c.dfs_json(&["report", "--json"]);
            r["datanodes"].as_array().is_some_and(|nodes| {
                nodes
                    .iter()
                    .all(|n| n["remaining"].as_u64().unwrap_or(u64::MAX) < MIB as u64)
            })
        },
    );
    let err = c.dfs_fails(&["put", b.to_str().unwrap(), "/b"], &["no space"]);
    assert!(
        err.contains("no space for a new block of /b") && err.contains("every datanode is full"),
        "{err}"
    );
    let m = Mount::new(&c, &[]);
    let copy = fs::copy(&b, m.dir.join("b")).unwrap_err();
    assert_eq!(copy.raw_os_error(), Some(libc::ENOSPC), "{copy}");
    assert!(
        m.log().contains("no space for a new block of /b"),
        "the mount's log does not say why"
    );
    // The mount gives the file up and has lease recovery close it now,
    // not at the hard limit, which its renewals for the file it still
    // writes would put off (explorer: such files stayed open for as long
    // as the mount wrote anything).
    let mut open = fs::File::create(m.dir.join("open")).unwrap();
    open.write_all(b"x").unwrap();
    dfs_tests::wait_until(
        Duration::from_secs(30),
        "/b closed by lease recovery",
        || c.dfs_json(&["stat", "--json", "/b"])["under_construction"] == false,
    );
    drop(open);
    let got = c.dir.path().join("a.out");
    c.dfs_ok(&["get", "/a", got.to_str().unwrap()]);
    assert_eq!(sha256_file(&got), sha256_file(&a));

    // Freeing space: the replicas of /a are deleted, heartbeats say so,
    // and a file that fits (two blocks, three replicas each) is taken.
    c.dfs_ok(&["rm", "/a", "/b"]);
    dfs_tests::wait_until(Duration::from_secs(30), "writes to work again", || {
        c.dfs(&["put", a.to_str().unwrap(), "/a2"]).status.success()
    });
    let got = c.dir.path().join("a2.out");
    c.dfs_ok(&["get", "/a2", got.to_str().unwrap()]);
    assert_eq!(sha256_file(&got), sha256_file(&a));
    // Written while some nodes still had no room, it may have fewer
    // replicas at first; the namenode copies the rest.
    dfs_tests::wait_until(Duration::from_secs(30), "/a2 fully replicated", || {
        c.dfs_json(&["fsck", "/a2", "--json"])["under_replicated"] == 0
    });
}

/// Every datanode is full before the namenode hears of it (heartbeats an
/// hour apart): each node refuses the new block's pipeline as full, the
/// writer excludes it, and the namenode has no other node. The writer
/// knows why it excluded them, so `dfs put` and the mount still say "no
/// space" (ENOSPC), naming the nodes and their free bytes, rather than
/// "0 of 3 datanodes, 3 excluded".
#[test]
fn datanodes_that_refuse_new_blocks_as_full_give_no_space_before_the_namenode_knows() {
    let c = Cluster::builder()
        .namenode_args(&["--stale-after", "10m"])
        .datanode_args(&["--capacity", FULL_CAPACITY, "--heartbeat-interval", "1h"])
        .start();
    let a = c.local_file("a", 2 * MIB, 3);
    let b = c.local_file("b", 3 * MIB, 4);
    c.dfs_ok(&["put", a.to_str().unwrap(), "/a"]);
    let err = c.dfs_fails(&["put", b.to_str().unwrap(), "/b"], &["no space"]);
    assert!(
        err.contains("every datanode is full") && err.contains("full when this write tried them"),
        "{err}"
    );
    assert_eq!(
        c.tree(),
        [("/a".to_string(), "file".to_string(), 2 * MIB as u64)],
        "put left something behind"
    );
    let m = Mount::new(&c, &[]);
    let copy = fs::copy(&b, m.dir.join("b")).unwrap_err();
    assert_eq!(copy.raw_os_error(), Some(libc::ENOSPC), "{copy}");
    let got = c.dir.path().join("a.out");
    c.dfs_ok(&["get", "/a", got.to_str().unwrap()]);
    assert_eq!(sha256_file(&got), sha256_file(&a));
}

/// A namenode restart fails no change on the mount, though its start-up
/// safe mode (8 s of extension here) outlasts the mount's `--rpc-timeout`
/// (3 s): a mkdir, a rename, and a write that needs a new block wait it
/// out (up to 30 s), where they failed with EROFS.
#[test]
fn changes_on_the_mount_wait_out_a_namenode_restart_and_its_safe_mode() {
    let mut c = Cluster::builder()
        .namenode_args(&["--safemode-extension", "8s"])
        .start();
    // A complete block, so that the restarted namenode waits for reports.
    let kept = c.local_file("kept", 1000, 40);
    c.dfs_ok(&["put", kept.to_str().unwrap(), "/kept"]);
    let m = Mount::new(&c, &["--rpc-timeout", "3s"]);
    fs::create_dir(m.dir.join("d")).unwrap();
    let data = random_bytes(2 * MIB + 100, 41);
    let mut w = fs::File::create(m.dir.join("d/f")).unwrap();
    w.write_all(&data[..MIB]).unwrap();
    w.flush().unwrap();
    c.namenode.restart();
    std::thread::sleep(Duration::from_millis(1500));
    let start = Instant::now();
    fs::create_dir(m.dir.join("made-in-safe-mode")).unwrap();
    fs::rename(m.dir.join("made-in-safe-mode"), m.dir.join("renamed")).unwrap();
    w.write_all(&data[MIB..]).unwrap();
    w.sync_all().unwrap();
    drop(w);
    let waited = start.elapsed();
    assert!(
        waited > Duration::from_secs(3),
        "the changes did not meet safe mode ({waited:?}): the test proves nothing"
    );
    assert!(fs::metadata(m.dir.join("renamed")).unwrap().is_dir());
    let back = c.dir.path().join("f.back");
    c.dfs_ok(&["get", "/d/f", back.to_str().unwrap()]);
    assert!(fs::read(&back).unwrap() == data, "wrong bytes in /d/f");
}

/// dfs-fuse refuses a mountpoint that is not a directory, in one line
/// naming it, and exits 1: the kernel mounted on a regular file, and every
/// use of the path then failed with EIO until it was unmounted.
#[test]
fn a_mountpoint_that_is_not_a_directory_is_refused() {
    let c = Cluster::builder().datanodes(1).replication(1).start();
    let file = c.dir.path().join("a-file");
    fs::write(&file, b"keep").unwrap();
    for target in [file.clone(), c.dir.path().join("missing")] {
        let out = Command::new(dfs_tests::bin("dfs-fuse"))
            .args(["--namenode", c.addr()])
            .arg(&target)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(target.to_str().unwrap()) && err.lines().count() == 1,
            "{err}"
        );
    }
    assert_eq!(fs::read(&file).unwrap(), b"keep");
}
