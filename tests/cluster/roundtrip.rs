//! put/get round trips through the CLI and the library, and replica counts.

use std::collections::{HashMap, HashSet};
use std::fs;

use dfs_client::{Client, CreateOptions, SetAttr};
use dfs_tests::{random_bytes, replica_files, sha256, sha256_file, Cluster};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

const MIB: usize = 1024 * 1024;
/// 0 B, 1 B, exactly one block, one block + 1, several blocks and a tail.
const SIZES: [usize; 5] = [0, 1, MIB, MIB + 1, 3 * MIB + 12345];

#[test]
fn cli_put_get_roundtrip_all_sizes() {
    let c = Cluster::builder().start();
    c.dfs_ok(&["mkdir", "-p", "/cli"]);
    for (i, &size) in SIZES.iter().enumerate() {
        let local = c.local_file(&format!("in-{size}"), size, i as u64 + 1);
        let remote = format!("/cli/f-{size}");
        c.dfs_ok(&["put", local.to_str().unwrap(), &remote]);
        let out = c.dir.path().join(format!("out-{size}"));
        c.dfs_ok(&["get", &remote, out.to_str().unwrap()]);
        assert_eq!(sha256_file(&local), sha256_file(&out), "size {size}");
        let st = c.dfs_json(&["stat", "--json", &remote]);
        assert_eq!(st["length"], size as u64);
        assert_eq!(st["type"], "file");
        assert_eq!(st["replication"], 3);
    }
    // `-` is stdin for put and stdout for get/cat.
    let data = random_bytes(MIB + 777, 99);
    let out = c.dfs_stdin(&["put", "-", "/cli/stdin"], Some(&data));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = c.dfs(&["get", "/cli/stdin", "-"]);
    assert!(got.status.success());
    assert_eq!(sha256(&got.stdout), sha256(&data));
    let cat = c.dfs(&["cat", "/cli/stdin"]);
    assert_eq!(sha256(&cat.stdout), sha256(&data));

    // Copies go through temporary names nobody else uses: a file that
    // happens to be called NAME._COPYING_, remote or local, is left alone
    // (before, put and get overwrote it and renamed it away), and names of
    // up to 255 bytes copy (the temporary name is cut to fit).
    let src = c.local_file("src", 100_000, 5);
    let mine = c.local_file("mine", 1000, 6);
    let (src_s, mine_s) = (src.to_str().unwrap(), mine.to_str().unwrap());
    let long = "n".repeat(255);
    c.dfs_ok(&["mkdir", "/tmpname"]);
    c.dfs_ok(&["put", mine_s, "/tmpname/report._COPYING_"]);
    c.dfs_ok(&["put", src_s, "/tmpname/report"]);
    c.dfs_ok(&["put", src_s, &format!("/tmpname/{long}")]);
    let out = c.dir.path().join("tmpname-out");
    fs::create_dir(&out).unwrap();
    fs::write(out.join("report._COPYING_"), b"local").unwrap();
    for (remote, local, want) in [
        ("report._COPYING_", "mine", &mine),
        ("report", "report", &src),
        (long.as_str(), long.as_str(), &src),
    ] {
        let got = out.join(local);
        c.dfs_ok(&["get", &format!("/tmpname/{remote}"), got.to_str().unwrap()]);
        assert_eq!(sha256_file(&got), sha256_file(want), "{remote}");
    }
    assert_eq!(fs::read(out.join("report._COPYING_")).unwrap(), b"local");
    let mut remote_names: Vec<String> = c
        .dfs_ok(&["ls", "/tmpname"])
        .lines()
        .filter_map(|l| l.rsplit('/').next().map(str::to_string))
        .collect();
    remote_names.sort();
    assert_eq!(
        remote_names,
        [long.clone(), "report".into(), "report._COPYING_".into()]
    );
    assert_eq!(
        fs::read_dir(&out).unwrap().count(),
        4,
        "no temporary file left"
    );
    // A failure names the file asked for, not the temporary copy, on one
    // line (the library's warnings on the way only with RUST_LOG=warn).
    let failed = c
        .dfs_command(&[
            "put",
            "--block-size",
            "1125899906842624",
            src_s,
            "/tmpname/huge",
        ])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("/tmpname/huge") && !err.contains("COPYING"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_roundtrip_seek_and_positional_reads() {
    let c = Cluster::builder().start();
    let client = Client::connect(c.addr()).await.unwrap();
    client.mkdirs("/lib", true).await.unwrap();
    for (i, &size) in SIZES.iter().enumerate() {
        let data = random_bytes(size, 1000 + i as u64);
        let path = format!("/lib/f-{size}");
        let mut w = client
            .create(&path, CreateOptions::default())
            .await
            .unwrap();
        // Odd-sized writes cross packet and block boundaries.
        for chunk in data.chunks(100_003) {
            w.write_all(chunk).await.unwrap();
        }
        assert_eq!(w.bytes_written(), size as u64);
        w.close().await.unwrap();

        let mut r = client.open(&path).await.unwrap();
        assert_eq!(r.len(), size as u64);
        let mut back = Vec::new();
        r.read_to_end(&mut back).await.unwrap();
        assert_eq!(sha256(&back), sha256(&data), "size {size}");

        if size > 10 {
            // Positional reads at block boundaries and odd offsets.
            for &off in &[0usize, 1, 511, 512, MIB - 3, MIB, size / 2, size - 1] {
                if off >= size {
                    continue;
                }
                let mut buf = vec![0u8; 4096.min(size - off)];
                let mut filled = 0;
                while filled < buf.len() {
                    let n = r
                        .read_at((off + filled) as u64, &mut buf[filled..])
                        .await
                        .unwrap();
                    assert!(n > 0, "short read at {}", off + filled);
                    filled += n;
                }
                assert_eq!(&buf[..], &data[off..off + buf.len()], "read_at {off}");
            }
            // Seek then stream.
            let off = size / 3;
            r.seek(std::io::SeekFrom::Start(off as u64)).await.unwrap();
            let mut rest = Vec::new();
            r.read_to_end(&mut rest).await.unwrap();
            assert_eq!(&rest[..], &data[off..]);
        }
    }
    let names: Vec<String> = client
        .list("/lib")
        .await
        .unwrap()
        .iter()
        .map(|s| s.name().to_string())
        .collect();
    assert_eq!(names.len(), SIZES.len());

    // One reader shared by tasks on other threads (`FileReader` is `Sync`):
    // positional reads of different blocks at once.
    let size = *SIZES.iter().max().unwrap();
    let i = SIZES.iter().position(|&s| s == size).unwrap();
    let data = std::sync::Arc::new(random_bytes(size, 1000 + i as u64));
    let reader = std::sync::Arc::new(client.open(&format!("/lib/f-{size}")).await.unwrap());
    let tasks: Vec<_> = (0..8)
        .map(|k| {
            let (reader, data) = (reader.clone(), data.clone());
            tokio::spawn(async move {
                let off = k * size / 8;
                let mut buf = vec![0u8; (size / 8).min(size - off)];
                let mut filled = 0;
                while filled < buf.len() {
                    let at = (off + filled) as u64;
                    let n = reader.read_at(at, &mut buf[filled..]).await.unwrap();
                    assert!(n > 0, "short read at {at}");
                    filled += n;
                }
                assert!(
                    buf[..] == data[off..off + buf.len()],
                    "parallel read_at {off}"
                );
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_block_has_three_replicas_on_distinct_datanodes() {
    let c = Cluster::builder().start();
    let local = c.local_file("five-blocks", 5 * MIB - 100, 5);
    c.dfs_ok(&["put", local.to_str().unwrap(), "/five"]);
    let client = Client::connect(c.addr()).await.unwrap();
    let locs = client.block_locations("/five", 0, u64::MAX).await.unwrap();
    assert_eq!(locs.len(), 5);
    let mut expected_offset = 0;
    for b in &locs {
        assert_eq!(b.offset, expected_offset);
        expected_offset += b.length;
        let hosts: HashSet<&String> = b.hosts.iter().collect();
        assert_eq!(b.hosts.len(), 3, "block {} hosts {:?}", b.block_id, b.hosts);
        assert_eq!(
            hosts.len(),
            3,
            "block {} has two replicas on one node",
            b.block_id
        );
    }
    assert_eq!(expected_offset, 5 * MIB as u64 - 100);
    // And on disk: every block's replica file exists on exactly 3 datanodes.
    let mut count: HashMap<String, usize> = HashMap::new();
    for i in 0..3 {
        for f in replica_files(&c.datanode_dir(i)) {
            *count
                .entry(f.file_name().unwrap().to_string_lossy().into())
                .or_default() += 1;
        }
    }
    for b in &locs {
        let name = format!("blk_{}", b.block_id);
        assert_eq!(count.get(&name), Some(&3), "{name} on disk: {count:?}");
    }
    let total: u64 = (0..3)
        .flat_map(|i| replica_files(&c.datanode_dir(i)))
        .map(|f| fs::metadata(f).unwrap().len())
        .sum();
    assert_eq!(total, 3 * (5 * MIB as u64 - 100));
}

/// One namenode call gives status and locations; the reader opened from
/// them needs no other, and still reads everything when the locations went
/// stale because a datanode died after the lookup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn located_status_opens_without_a_second_call_and_survives_stale_locations() {
    let mut c = Cluster::builder().start();
    let client = Client::connect(c.addr()).await.unwrap();
    client.mkdirs("/loc", true).await.unwrap();
    let data = random_bytes(2 * MIB + 4321, 77);
    let mut w = client
        .create("/loc/f", CreateOptions::default())
        .await
        .unwrap();
    w.write_all(&data).await.unwrap();
    w.close().await.unwrap();

    let dir = client.located_status("/loc").await.unwrap();
    assert!(dir.status().is_dir());
    let err = client.open_located(dir).await.unwrap_err().to_string();
    assert!(err.contains("/loc"), "{err}");

    let located = client.located_status("/loc/f").await.unwrap();
    assert_eq!(located.path(), "/loc/f");
    assert_eq!(located.status().length, data.len() as u64);
    let mut r = client.open_located(located.clone()).await.unwrap();
    let mut back = Vec::new();
    r.read_to_end(&mut back).await.unwrap();
    assert_eq!(sha256(&back), sha256(&data));

    // Every replica list names all three nodes; kill one after the lookup.
    c.datanodes[0].kill();
    let mut r = client.open_located(located).await.unwrap();
    let mut back = Vec::new();
    r.read_to_end(&mut back).await.unwrap();
    assert_eq!(
        sha256(&back),
        sha256(&data),
        "read with a dead node in the list"
    );

    let missing = client.located_status("/loc/nope").await.unwrap_err();
    assert!(missing.to_string().contains("/loc/nope"), "{missing}");
}

/// A flush abandoned half-way (its future dropped) does not make a later
/// flush return before the bytes written since are acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_flush_does_not_cut_the_next_one_short() {
    let c = Cluster::builder().start();
    let client = Client::connect(c.addr()).await.unwrap();
    let data = random_bytes(300_000, 5);
    let mut w = client
        .create("/flushes", CreateOptions::default())
        .await
        .unwrap();
    w.write_all(&data[..100_000]).await.unwrap();
    // Polled once, then dropped: the flush request is on its way.
    let _ = tokio::time::timeout(std::time::Duration::ZERO, w.hflush()).await;
    w.write_all(&data[100_000..]).await.unwrap();
    w.hflush().await.unwrap();
    assert_eq!(client.status("/flushes").await.unwrap().length, 300_000);
    w.close().await.unwrap();
    let mut back = Vec::new();
    client
        .open("/flushes")
        .await
        .unwrap()
        .read_to_end(&mut back)
        .await
        .unwrap();
    assert_eq!(sha256(&back), sha256(&data));
}

/// Attributes given to a writer before its close are stored by the close
/// itself: the file is never complete without them. Names the namenode
/// would refuse are refused at once, and the close then goes on without
/// them; so are attributes given once the close has started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attributes_set_on_close_are_stored_with_the_close() {
    let c = Cluster::builder().datanodes(1).replication(1).start();
    let client = Client::connect(c.addr()).await.unwrap();
    for (path, data) in [("/attrs-empty", &b""[..]), ("/attrs-data", b"some bytes")] {
        let mut w = client.create(path, CreateOptions::default()).await.unwrap();
        w.write_all(data).await.unwrap();
        let e = w
            .set_attrs_on_close(&SetAttr {
                mode: Some(0o600),
                group: Some("a\0b".into()),
                ..SetAttr::default()
            })
            .unwrap_err();
        assert!(
            e.to_string().contains(&format!("set group of {path}")),
            "{e}"
        );
        for attrs in [
            SetAttr {
                mode: Some(0o640),
                owner: Some("alice".into()),
                ..SetAttr::default()
            },
            SetAttr {
                group: Some("staff".into()),
                mtime: Some(1_500_000_000_000),
                ..SetAttr::default()
            },
        ] {
            w.set_attrs_on_close(&attrs).unwrap();
        }
        w.close().await.unwrap();
        let st = client.status(path).await.unwrap();
        assert!(!st.under_construction, "{path}");
        assert_eq!(st.length, data.len() as u64, "{path}");
        assert_eq!(
            (
                st.mode & 0o7777,
                st.owner.as_str(),
                st.group.as_str(),
                st.mtime
            ),
            (0o640, "alice", "staff", 1_500_000_000_000),
            "{path}"
        );
    }
    // Once the close has started, attributes can no longer go with it.
    let mut w = client
        .create("/attrs-late", CreateOptions::default())
        .await
        .unwrap();
    w.write_all(b"late").await.unwrap();
    w.shutdown().await.unwrap();
    let e = w
        .set_attrs_on_close(&SetAttr {
            mode: Some(0o600),
            ..SetAttr::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("already being closed"), "{e}");
}

/// A file of more blocks than one namenode reply lists (1000) reads back
/// whole, and its block locations come back complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_more_blocks_than_one_reply_lists_reads_back_whole() {
    let c = Cluster::builder().start();
    let client = Client::connect(c.addr()).await.unwrap();
    let block = 4096u64;
    let n_blocks = dfs_proto::defaults::MAX_LOCATED_BLOCKS as u64 + 20;
    let data = random_bytes((n_blocks * block - 100) as usize, 12);
    let opts = CreateOptions {
        block_size: Some(block),
        replication: Some(1),
        ..CreateOptions::default()
    };
    let mut w = client.create("/many", opts).await.unwrap();
    w.write_all(&data).await.unwrap();
    w.close().await.unwrap();

    let locs = client.block_locations("/many", 0, 0).await.unwrap();
    assert_eq!(locs.len() as u64, n_blocks);
    let tail = client
        .block_locations("/many", 1000 * block + 10, 3 * block)
        .await
        .unwrap();
    assert_eq!(tail.len(), 4, "{tail:?}");

    let mut r = client.open("/many").await.unwrap();
    let mut back = Vec::new();
    r.read_to_end(&mut back).await.unwrap();
    assert_eq!(sha256(&back), sha256(&data));
    // A positional read past the first reply's blocks.
    let off = (n_blocks - 3) * block + 7;
    let mut buf = vec![0u8; 5000];
    let n = r.read_at(off, &mut buf).await.unwrap();
    assert_eq!(n, 5000);
    assert_eq!(&buf[..], &data[off as usize..off as usize + 5000]);
}

/// Replica files (data and `.meta`) a datanode holds in `rbw/` (being
/// written).
fn rbw_files(c: &Cluster, i: usize) -> Vec<String> {
    let dir = c.datanode_dir(i).join("current").join("rbw");
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The namenode allocates a file's first block with the create and the
/// writer opens its pipeline at once. A file that gets data keeps that
/// block (three replicas, nothing else on disk); a file that stays empty —
/// closed, or abandoned by dropping its writer — leaves no block in the
/// namespace and no replica on any datanode, not even an empty `rbw` one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_block_comes_with_the_create_and_empty_files_leave_no_replica() {
    let c = Cluster::builder().start();
    let client = Client::connect(c.addr()).await.unwrap();
    let data = random_bytes(3000, 17);
    for i in 0..20 {
        let mut w = client
            .create(
                &format!("/d/full{i}"),
                CreateOptions {
                    create_parents: true,
                    ..CreateOptions::default()
                },
            )
            .await
            .unwrap();
        w.write_all(&data).await.unwrap();
        w.close().await.unwrap();
        let mut w = client
            .create(&format!("/d/empty{i}"), CreateOptions::default())
            .await
            .unwrap();
        if i % 2 == 0 {
            w.hflush().await.unwrap();
        }
        w.close().await.unwrap();
    }
    // Lazy allocation still works and also leaves nothing for empty files.
    let lazy = CreateOptions {
        lazy_first_block: true,
        ..CreateOptions::default()
    };
    client
        .create("/d/lazy-empty", lazy.clone())
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    let mut w = client.create("/d/lazy-full", lazy).await.unwrap();
    w.write_all(&data).await.unwrap();
    w.close().await.unwrap();
    for i in 0..20 {
        let full = client
            .block_locations(&format!("/d/full{i}"), 0, u64::MAX)
            .await
            .unwrap();
        assert_eq!(full.len(), 1, "full{i}: {full:?}");
        assert_eq!(full[0].hosts.len(), 3, "full{i}: {full:?}");
        let mut r = client.open(&format!("/d/full{i}")).await.unwrap();
        let mut back = Vec::new();
        r.read_to_end(&mut back).await.unwrap();
        assert_eq!(sha256(&back), sha256(&data), "full{i}");
        let st = client.status(&format!("/d/empty{i}")).await.unwrap();
        assert_eq!(st.length, 0);
        let empty = client
            .block_locations(&format!("/d/empty{i}"), 0, u64::MAX)
            .await
            .unwrap();
        assert!(empty.is_empty(), "empty{i} has blocks: {empty:?}");
    }
    assert!(client
        .block_locations("/d/lazy-empty", 0, u64::MAX)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        client
            .block_locations("/d/lazy-full", 0, u64::MAX)
            .await
            .unwrap()
            .len(),
        1
    );
    // A writer dropped without close after its pipeline opened: the
    // datanodes drop their empty replicas (the namenode's lease recovery
    // deals with the block it allocated).
    let w = client
        .create("/d/dropped", CreateOptions::default())
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    drop(w);
    // 21 blocks of data, each on exactly 3 datanodes; nothing being written.
    dfs_tests::wait_until(std::time::Duration::from_secs(10), "empty rbw dirs", || {
        (0..3).all(|i| rbw_files(&c, i).is_empty())
    });
    let finalized: usize = (0..3)
        .map(|i| replica_files(&c.datanode_dir(i)).len())
        .sum();
    assert_eq!(finalized, 21 * 3);
}

/// A reader of a file still being written that looks for more bytes after
/// the path was given to another file reads none of that file: it fails
/// saying the file was replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_never_continues_into_a_file_that_replaced_its_own() {
    let c = Cluster::builder().datanodes(1).replication(1).start();
    let client = Client::connect(c.addr()).await.unwrap();
    let old = random_bytes(1000, 41);
    let mut w = client
        .create("/log", CreateOptions::default())
        .await
        .unwrap();
    w.write_all(&old).await.unwrap();
    w.hflush().await.unwrap();
    let mut r = client.open("/log").await.unwrap();
    let mut got = vec![0u8; 1000];
    r.read_exact(&mut got).await.unwrap();
    assert_eq!(got, old);
    // The path now names a new, longer file (the writer, which holds the
    // lease, creates it again).
    w.abort().await;
    let new = random_bytes(3000, 42);
    let mut w2 = client
        .create(
            "/log",
            CreateOptions {
                overwrite: true,
                ..CreateOptions::default()
            },
        )
        .await
        .unwrap();
    w2.write_all(&new).await.unwrap();
    w2.close().await.unwrap();
    let mut more = Vec::new();
    let e = r.read_to_end(&mut more).await.unwrap_err();
    assert!(e.to_string().contains("replaced"), "{e}");
    assert!(more.is_empty(), "read {} bytes of another file", more.len());
}

/// SIGTERM (`kill`, `timeout`) stops a put as Ctrl-C does: the partial
/// copy is removed and the exit status says which signal (128 + 15).
/// Before, SIGTERM left `NAME.XXXXXXXX._COPYING_` under construction,
/// its lease held, until the hard limit.
/// Starts `dfs put - /st/f` (with `/st` made) and feeds it `bytes` bytes,
/// keeping its input open; returns once its partial copy
/// (`NAME.XXXXXXXX._COPYING_`) is there, so the copy is running.
fn running_put_from_stdin(
    c: &Cluster,
    bytes: usize,
    seed: u64,
) -> (std::process::Child, std::process::ChildStdin) {
    use std::io::Write;
    use std::process::Stdio;
    let mut put = c
        .dfs_command(&["put", "-", "/st/f"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = put.stdin.take().unwrap();
    stdin.write_all(&random_bytes(bytes, seed)).unwrap();
    dfs_tests::wait_until(std::time::Duration::from_secs(20), "a partial copy", || {
        c.dfs_ok(&["ls", "/st"]).contains("._COPYING_")
    });
    (put, stdin)
}

#[test]
fn a_put_stopped_by_sigterm_removes_its_partial_copy() {
    let c = Cluster::builder().datanodes(1).replication(1).start();
    c.dfs_ok(&["mkdir", "/st"]);
    let (put, stdin) = running_put_from_stdin(&c, 3 << 20, 5);
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &put.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = put.wait_with_output().unwrap();
    drop(stdin);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{err}");
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
    assert_eq!(c.dfs_ok(&["ls", "/st"]), "", "the partial copy stayed");
}

/// Two stop signals that come together are one request: the put still
/// removes its partial copy, as after one. GNU `timeout -s INT` signals
/// the command and then its process group, so dfs gets the signal twice
/// within microseconds; it used to take the second for "exit now" and
/// leave `NAME.XXXXXXXX._COPYING_` behind without a word.
#[test]
fn two_signals_together_stop_a_put_as_one_does() {
    let c = Cluster::builder().datanodes(1).replication(1).start();
    c.dfs_ok(&["mkdir", "/st"]);
    // Two of a kind may merge into one delivery; two kinds never do, and
    // either may be seen first.
    let rounds = [
        (libc::SIGINT, libc::SIGINT, 0),
        (libc::SIGINT, libc::SIGINT, 20),
        (libc::SIGTERM, libc::SIGINT, 0),
    ];
    for (first, second, gap_ms) in rounds {
        let (put, stdin) = running_put_from_stdin(&c, 1 << 20, 6);
        let pid = put.id() as i32;
        // SAFETY: kill(2) on the child this test spawned and has not reaped.
        unsafe { libc::kill(pid, first) };
        std::thread::sleep(std::time::Duration::from_millis(gap_ms));
        // SAFETY: as above.
        unsafe { libc::kill(pid, second) };
        let out = put.wait_with_output().unwrap();
        drop(stdin);
        let err = String::from_utf8_lossy(&out.stderr);
        let name = if out.status.code() == Some(143) {
            "SIGTERM"
        } else {
            "SIGINT"
        };
        assert!(
            [Some(130), Some(143)].contains(&out.status.code()),
            "{first}+{second} +{gap_ms}ms: {:?}: {err}",
            out.status
        );
        assert_eq!(
            err.trim(),
            format!("dfs: put: interrupted by {name}"),
            "{first}+{second} +{gap_ms}ms"
        );
        assert_eq!(
            c.dfs_ok(&["ls", "/st"]),
            "",
            "{first}+{second} +{gap_ms}ms: the partial copy stayed: {err}"
        );
    }
}
