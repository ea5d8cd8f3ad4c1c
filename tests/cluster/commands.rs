//! The `hdfs dfs` commands beyond put/get/ls: cp, chmod, chown, chgrp,
//! touchz, touch, test, count, df, head, tail, rmdir, through the CLI
//! against a real cluster.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use dfs_client::{Client, CreateOptions};
use dfs_tests::{random_bytes, Cluster};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

fn stat(c: &Cluster, path: &str) -> Value {
    c.dfs_json(&["stat", "--json", path])
}

fn cat(c: &Cluster, path: &str) -> Vec<u8> {
    let out = c.dfs(&["cat", path]);
    assert!(
        out.status.success(),
        "cat {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Exit code of `dfs test`, checking it prints nothing.
fn test_code(c: &Cluster, flag: &str, path: &str) -> i32 {
    let out = c.dfs(&["test", flag, path]);
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "test {flag} {path}: {out:?}"
    );
    out.status.code().unwrap()
}

#[test]
fn cp_copies_files_and_trees_within_the_cluster() {
    let c = Cluster::builder().start();
    let big = random_bytes(2_500_000, 1); // three 1 MiB blocks
    let small = random_bytes(10, 2);
    let fb = c.local_file("big", big.len(), 1);
    let fs = c.local_file("small", small.len(), 2);
    c.dfs_ok(&["mkdir", "-p", "/src/sub/empty", "/dir"]);
    c.dfs_ok(&["put", fb.to_str().unwrap(), "/src/big"]);
    c.dfs_ok(&["put", fs.to_str().unwrap(), "/src/sub/small"]);
    c.dfs_ok(&["touchz", "/src/zero"]);

    // A file to a new name, byte for byte.
    c.dfs_ok(&["cp", "/src/big", "/big-copy"]);
    assert_eq!(cat(&c, "/big-copy"), big);
    // An existing target needs -f.
    c.dfs_fails(
        &["cp", "/src/sub/small", "/big-copy"],
        &["/big-copy", "exists"],
    );
    assert_eq!(cat(&c, "/big-copy"), big);
    c.dfs_ok(&["cp", "-f", "/src/sub/small", "/big-copy"]);
    assert_eq!(cat(&c, "/big-copy"), small);

    // A tree, into an existing directory and to a new name.
    c.dfs_ok(&["cp", "/src", "/dir"]);
    c.dfs_ok(&["cp", "/src", "/tree"]);
    let under = |root: &str| -> Vec<(String, String, u64)> {
        c.tree()
            .into_iter()
            .filter_map(|(p, t, l)| p.strip_prefix(root).map(|r| (r.to_string(), t, l)))
            .collect()
    };
    let want = under("/src/");
    assert_eq!(want.len(), 5, "{want:?}");
    assert_eq!(under("/dir/src/"), want);
    assert_eq!(under("/tree/"), want);
    assert_eq!(cat(&c, "/tree/big"), big);
    assert_eq!(cat(&c, "/dir/src/sub/small"), small);

    // Several sources into a directory; a missing one is told, the others copied.
    c.dfs_ok(&["mkdir", "/many"]);
    let err = c.dfs_fails(
        &["cp", "/src/big", "/nope", "/src/sub/small", "/many"],
        &["/nope"],
    );
    assert!(!err.contains("big"), "{err}");
    assert_eq!(cat(&c, "/many/big"), big);
    assert_eq!(cat(&c, "/many/small"), small);

    // Refused, and nothing changes.
    let before = c.tree();
    c.dfs_fails(&["cp", "/src", "/src/sub"], &["into itself"]);
    c.dfs_fails(&["cp", "/src/big", "/src/big"], &["same"]);
    c.dfs_fails(
        &["cp", "/src/big", "/src/zero", "/new-name"],
        &["not a directory"],
    );
    c.dfs_fails(&["cp", "/src/big", "/absent/"], &["no such directory"]);
    c.dfs_fails(&["cp", "/src/big", "/src/big/x"], &["not a directory"]);
    assert_eq!(c.tree(), before);
    // No temporary copy is left anywhere.
    assert!(
        !before.iter().any(|(p, _, _)| p.contains("_COPYING_")),
        "{before:?}"
    );

    // -p keeps mode, owner, group and times; without it the copy is the caller's.
    c.dfs_ok(&["chmod", "600", "/src/big"]);
    c.dfs_ok(&["chown", "alice:staff", "/src/big"]);
    c.dfs_ok(&["touch", "-t", "20200102:030405", "/src/big"]);
    c.dfs_ok(&["cp", "-p", "/src/big", "/kept"]);
    c.dfs_ok(&["cp", "/src/big", "/fresh"]);
    let (src, kept, fresh) = (stat(&c, "/src/big"), stat(&c, "/kept"), stat(&c, "/fresh"));
    for key in ["mode", "owner", "group", "mtime", "atime", "length"] {
        assert_eq!(kept[key], src[key], "cp -p {key}: {kept} vs {src}");
    }
    assert_eq!(src["mtime"], 1_577_934_245_000u64);
    assert_ne!(fresh["owner"], "alice");
    assert_ne!(fresh["mtime"], src["mtime"]);
    assert_eq!(cat(&c, "/kept"), big);
    // -p on a tree keeps the directories' times too (set after their children).
    c.dfs_ok(&["touch", "-t", "20210101:000000", "/src/sub"]);
    c.dfs_ok(&["cp", "-p", "/src", "/tree-p"]);
    assert_eq!(
        stat(&c, "/tree-p/sub")["mtime"],
        stat(&c, "/src/sub")["mtime"]
    );
    assert_eq!(stat(&c, "/tree-p/big")["owner"], "alice");
}

#[test]
fn chmod_chown_touch_and_rmdir_change_what_they_say() {
    let c = Cluster::builder().start();
    let f = c.local_file("f", 5000, 3);
    c.dfs_ok(&["mkdir", "-p", "/t/a/b"]);
    c.dfs_ok(&["put", f.to_str().unwrap(), "/t/a/f"]);
    c.dfs_ok(&["put", f.to_str().unwrap(), "/t/g"]);
    let mode = |p: &str| stat(&c, p)["mode"].as_u64().unwrap();

    // Octal and symbolic modes, one path and trees.
    c.dfs_ok(&["chmod", "640", "/t/g"]);
    assert_eq!(mode("/t/g"), 0o640);
    c.dfs_ok(&["chmod", "u+x,g-r,o+w", "/t/g"]);
    assert_eq!(mode("/t/g"), 0o702);
    c.dfs_ok(&["chmod", "-R", "700", "/t/a"]);
    for p in ["/t/a", "/t/a/b", "/t/a/f"] {
        assert_eq!(mode(p), 0o700, "{p}");
    }
    c.dfs_ok(&["chmod", "-R", "go=rX", "/t"]);
    assert_eq!(mode("/t/a/b"), 0o755);
    assert_eq!(mode("/t/a/f"), 0o755, "X: a file its owner can execute");
    c.dfs_ok(&["chmod", "a-x", "/t/a/f"]);
    c.dfs_ok(&["chmod", "-R", "a+X", "/t/a"]);
    assert_eq!(mode("/t/a/f"), 0o644, "X skips files no one can execute");
    c.dfs_ok(&["chmod", "1777", "/t/a/b"]);
    let ls = c.dfs_ok(&["ls", "-l", "/t/a"]);
    assert!(ls.contains("drwxrwxrwt"), "{ls}");

    // Owner and group.
    c.dfs_ok(&["chown", "alice", "/t/g"]);
    c.dfs_ok(&["chgrp", "ops", "/t/g"]);
    let st = stat(&c, "/t/g");
    assert_eq!(
        (st["owner"].as_str(), st["group"].as_str()),
        (Some("alice"), Some("ops"))
    );
    c.dfs_ok(&["chown", ":staff", "/t/g"]);
    assert_eq!(stat(&c, "/t/g")["owner"], "alice");
    assert_eq!(stat(&c, "/t/g")["group"], "staff");
    c.dfs_ok(&["chown", "-R", "bob:dev", "/t/a"]);
    for p in ["/t/a", "/t/a/b", "/t/a/f"] {
        let st = stat(&c, p);
        assert_eq!(
            (st["owner"].as_str(), st["group"].as_str()),
            (Some("bob"), Some("dev")),
            "{p}"
        );
    }

    // Bad arguments: one line, nothing changes.
    let before = (c.tree(), stat(&c, "/t/g"));
    c.dfs_fails(&["chmod", "u+q", "/t/g"], &["invalid mode"]);
    c.dfs_fails(&["chmod", "888", "/t/g"], &["invalid mode"]);
    c.dfs_fails(&["chown", "a:b:c", "/t/g"], &["invalid owner"]);
    c.dfs_fails(&["chown", ":", "/t/g"], &["invalid owner"]);
    c.dfs_fails(&["chmod", "644", "/t/none"], &["/t/none"]);
    c.dfs_fails(&["touch", "-t", "2020-01-01", "/t/g"], &["yyyyMMdd:HHmmss"]);
    c.dfs_fails(&["touchz", "/t/g"], &["not a zero-length file"]);
    c.dfs_fails(&["touchz", "/t/a"], &["directory"]);
    assert_eq!((c.tree(), stat(&c, "/t/g")), before);

    // touchz and touch.
    c.dfs_ok(&["touchz", "/t/empty", "/t/a/empty"]);
    // Without a block allocated and given back (explorer: 50,000 touchz
    // took 8 min, half of it on blocks never written).
    let nn_log = std::fs::read_to_string(&c.namenode.log).unwrap();
    assert!(
        nn_log
            .lines()
            .filter(|l| l.contains("block abandoned"))
            .all(|l| !l.contains("empty")),
        "touchz allocated a block"
    );
    assert_eq!(stat(&c, "/t/empty")["length"], 0);
    assert_eq!(stat(&c, "/t/empty")["type"], "file");
    c.dfs_ok(&["touchz", "/t/empty"]);
    c.dfs_ok(&["touch", "-t", "20200102:030405", "/t/g", "/t/new"]);
    for p in ["/t/g", "/t/new"] {
        let st = stat(&c, p);
        assert_eq!(st["mtime"], 1_577_934_245_000u64, "{p}: {st}");
        assert_eq!(st["atime"], 1_577_934_245_000u64, "{p}: {st}");
    }
    assert_eq!(stat(&c, "/t/new")["length"], 0);
    c.dfs_ok(&["touch", "-m", "/t/g"]);
    let st = stat(&c, "/t/g");
    assert!(st["mtime"].as_u64().unwrap() > 1_700_000_000_000, "{st}");
    assert_eq!(st["atime"], 1_577_934_245_000u64, "-m leaves atime");
    c.dfs_ok(&["touch", "-c", "/t/never"]);
    c.dfs_fails(&["stat", "/t/never"], &["/t/never"]);

    // rmdir removes empty directories only.
    c.dfs_ok(&["mkdir", "/t/gone"]);
    c.dfs_ok(&["rmdir", "/t/gone"]);
    c.dfs_fails(&["stat", "/t/gone"], &["/t/gone"]);
    c.dfs_fails(&["rmdir", "/t/a"], &["not empty"]);
    c.dfs_fails(&["rmdir", "/t/g"], &["not a directory"]);
    c.dfs_ok(&["rmdir", "--ignore-fail-on-non-empty", "/t/a"]);
    assert_eq!(stat(&c, "/t/a/f")["length"], 5000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_count_df_head_and_tail_answer_as_hdfs_does() {
    let c = Cluster::builder().start();
    let data = random_bytes(3000, 4);
    let f = c.local_file("f", data.len(), 4);
    c.dfs_ok(&["mkdir", "-p", "/q/d/e"]);
    c.dfs_ok(&["put", f.to_str().unwrap(), "/q/f"]);
    c.dfs_ok(&["put", f.to_str().unwrap(), "/q/d/f"]);
    c.dfs_ok(&["touchz", "/q/zero"]);

    // test: 0 true, 1 false, nothing printed.
    let cases = [
        ("-e", "/q/f", 0),
        ("-e", "/q/none", 1),
        ("-e", "/q/f/below", 1),
        ("-d", "/q/d", 0),
        ("-d", "/q/f", 1),
        ("-f", "/q/f", 0),
        ("-f", "/q/d", 1),
        ("-s", "/q/f", 0),
        ("-s", "/q/zero", 1),
        ("-z", "/q/zero", 0),
        ("-z", "/q/f", 1),
    ];
    for (flag, path, want) in cases {
        assert_eq!(test_code(&c, flag, path), want, "test {flag} {path}");
    }
    // One question is required; a cluster that cannot answer is an error, told.
    assert_eq!(c.dfs(&["test", "/q/f"]).status.code(), Some(2));
    let out = std::process::Command::new(dfs_tests::bin("dfs"))
        .args(["--namenode", "127.0.0.1:1", "test", "-e", "/q/f"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "not 1: a script would take it for false"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("127.0.0.1:1"),
        "{out:?}"
    );

    // count: DIR_COUNT FILE_COUNT CONTENT_SIZE PATHNAME.
    let out = c.dfs_ok(&["count", "-v", "/q", "/q/d/f"]);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        ["DIR_COUNT", "FILE_COUNT", "CONTENT_SIZE", "PATHNAME"],
        "{out}"
    );
    assert_eq!(lines[1], ["3", "3", "6000", "/q"], "{out}");
    assert_eq!(lines[2], ["0", "1", "3000", "/q/d/f"], "{out}");
    let out = c.dfs_ok(&["count", "-h", "/q"]);
    assert!(out.contains("5.9 KiB"), "{out}");

    // df: the cluster's figures, as report gives them.
    let report = c.dfs_json(&["report", "--json"]);
    let out = c.dfs_ok(&["df", "/"]);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        ["Filesystem", "Size", "Used", "Available", "Use%"],
        "{out}"
    );
    assert_eq!(lines[1][0], format!("dfs://{}", c.addr()));
    let size: u64 = lines[1][1].parse().unwrap();
    let capacity: u64 = report["datanodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["capacity"].as_u64().unwrap())
        .sum();
    assert_eq!(size, capacity, "{out} vs {report}");
    assert!(lines[1][4].ends_with('%'), "{out}");
    assert!(c.dfs_ok(&["df", "-h"]).contains("iB"));
    assert!(c.dfs_ok(&["du", "-h", "-s", "/q"]).contains("KiB"));

    // head and tail: the first and last KiB.
    assert_eq!(c.dfs(&["head", "/q/f"]).stdout, data[..1024]);
    assert_eq!(c.dfs(&["tail", "/q/f"]).stdout, data[data.len() - 1024..]);
    assert!(c.dfs(&["tail", "/q/zero"]).stdout.is_empty());
    c.dfs_fails(&["tail", "/q/d"], &["directory"]);
    c.dfs_fails(&["head", "/q/none"], &["/q/none"]);

    // tail -f prints what a writer adds, as the writer flushes it.
    let client = Client::connect(c.addr()).await.unwrap();
    let mut w = client
        .create("/q/log", CreateOptions::default())
        .await
        .unwrap();
    w.write_all(b"first line\n").await.unwrap();
    w.hflush().await.unwrap();
    let mut tail = c
        .dfs_command(&["tail", "-f", "/q/log"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = tail.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        let deadline = Instant::now() + Duration::from_secs(30);
        while !got.ends_with(b"second line\n") && Instant::now() < deadline {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        got
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    w.write_all(b"second line\n").await.unwrap();
    w.hflush().await.unwrap();
    let got = tokio::task::spawn_blocking(move || reader.join().unwrap())
        .await
        .unwrap();
    assert_eq!(got, b"first line\nsecond line\n");
    // A stop signal ends it with 128 + SIGTERM.
    unsafe { libc::kill(tail.id() as i32, libc::SIGTERM) };
    let status = tail.wait().unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM));
    w.close().await.unwrap();
}

#[test]
fn remote_glob_patterns_expand_as_hdfs_does() {
    let c = Cluster::builder().start();
    let f = c.local_file("f", 100, 5);
    let f = f.to_str().unwrap();
    c.dfs_ok(&["mkdir", "-p", "/g/2026-01", "/g/2026-02", "/g/other"]);
    for p in [
        "/g/2026-01/part-0",
        "/g/2026-01/part-1",
        "/g/2026-02/part-0",
    ] {
        c.dfs_ok(&["put", f, p]);
    }
    c.dfs_ok(&["touchz", "/g/we[ird]", "/g/other/x"]);
    let lines = |out: String| -> Vec<String> { out.lines().map(str::to_string).collect() };

    assert_eq!(
        lines(c.dfs_ok(&["ls", "/g/2026-*/part-0"])),
        ["/g/2026-01/part-0", "/g/2026-02/part-0"]
    );
    assert_eq!(
        lines(c.dfs_ok(&["ls", "/g/2026-0{2,1}"])),
        [
            "/g/2026-02/part-0",
            "/g/2026-01/part-0",
            "/g/2026-01/part-1"
        ]
    );
    assert_eq!(
        lines(c.dfs_ok(&["ls", "/g/2026-0[!2]/part-[0-9]"])),
        ["/g/2026-01/part-0", "/g/2026-01/part-1"]
    );
    // A name with glob characters is still reachable as itself.
    assert_eq!(lines(c.dfs_ok(&["ls", "/g/we[ird]"])), ["/g/we[ird]"]);
    assert_eq!(c.dfs(&["cat", "/g/2026-01/part-?"]).stdout.len(), 200);
    let count = c.dfs_ok(&["count", "/g/2026-*"]);
    assert_eq!(count.lines().count(), 2, "{count}");
    let v = c.dfs_json(&["ls", "--json", "/g/2026-*/part-0", "/g/other"]);
    assert_eq!(v.as_array().unwrap().len(), 3, "{v}");

    // Refusals: one line, nothing changed.
    let before = c.tree();
    c.dfs_fails(&["ls", "/g/nothing-*"], &["no match"]);
    c.dfs_fails(&["stat", "/g/2026-*"], &["matches 2 paths", "takes one"]);
    c.dfs_fails(&["ls", "/g/{a,b"], &["'{' without '}'"]);
    let local_file = c.local_file("not-a-dir", 1, 1);
    c.dfs_fails(
        &["get", "/g/2026-01/*", local_file.to_str().unwrap()],
        &["not a directory"],
    );
    c.dfs_fails(&["mv", "/g/2026-01/*", "/g/absent"], &["not a directory"]);
    assert_eq!(c.tree(), before);

    // Commands that change things do so on every match.
    let dir = tempfile::tempdir().unwrap();
    c.dfs_ok(&["get", "/g/2026-01/*", dir.path().to_str().unwrap()]);
    for n in ["part-0", "part-1"] {
        assert_eq!(
            std::fs::read(dir.path().join(n)).unwrap(),
            std::fs::read(f).unwrap()
        );
    }
    c.dfs_ok(&["chmod", "600", "/g/2026-0*/part-0"]);
    assert_eq!(stat(&c, "/g/2026-02/part-0")["mode"], 0o600);
    assert_eq!(stat(&c, "/g/2026-01/part-1")["mode"], 0o644);
    c.dfs_ok(&["mv", "/g/2026-02/*", "/g/other"]);
    assert_eq!(stat(&c, "/g/other/part-0")["length"], 100);
    c.dfs_ok(&["rm", "/g/2026-01/part-*"]);
    assert_eq!(lines(c.dfs_ok(&["ls", "/g/2026-0?"])), Vec::<String>::new());
    c.dfs_ok(&["rmdir", "/g/2026-*"]);
    assert_eq!(lines(c.dfs_ok(&["ls", "/g"])), ["/g/other", "/g/we[ird]"]);
}

/// Runs `dfs args` while safe mode is on, checks it is still waiting
/// 1.5 s later, leaves safe mode, and returns its output (it must succeed).
fn waits_until_safe_mode_is_left(c: &Cluster, args: &[&str]) -> std::process::Output {
    let mut child = c
        .dfs_command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "dfs {args:?} returned while safe mode is on"
    );
    assert_eq!(
        c.dfs_ok(&["admin", "safemode", "leave"]),
        "Safe mode is OFF\n"
    );
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "dfs {args:?}: {out:?}");
    out
}

#[test]
fn safe_mode_is_entered_left_and_waited_for_by_hand() {
    let mut c = Cluster::builder().start();
    let f = c.local_file("f", 3000, 6);
    let f = f.to_str().unwrap();
    c.dfs_ok(&["put", f, "/kept"]);
    assert_eq!(
        c.dfs_ok(&["admin", "safemode", "get"]),
        "Safe mode is OFF\n"
    );

    // Entered by hand: changes are refused with one line, reads go on.
    let on = c.dfs_ok(&["admin", "safemode", "enter"]);
    assert!(
        on.starts_with("Safe mode is ON") && on.contains("administrator"),
        "{on}"
    );
    assert_eq!(c.dfs_json(&["report", "--json"])["safe_mode"], true);
    c.dfs_fails(&["mkdir", "/no"], &["safe mode"]);
    // The refusal names the remote path it was about, not the source.
    let err = c.dfs_fails(&["put", f, "/no"], &["safe mode"]);
    assert!(err.starts_with("dfs: put: /no"), "{err}");
    c.dfs_fails(&["rm", "/kept"], &["safe mode"]);
    assert_eq!(cat(&c, "/kept"), std::fs::read(f).unwrap());
    assert!(c
        .dfs_ok(&["admin", "safemode", "get"])
        .starts_with("Safe mode is ON"));

    // `wait` returns when it is left, and not before.
    let out = waits_until_safe_mode_is_left(&c, &["admin", "safemode", "wait"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Safe mode is OFF\n");
    c.dfs_ok(&["put", f, "/after"]);
    assert_eq!(cat(&c, "/after"), std::fs::read(f).unwrap());

    // Left early after a restart, before safe mode would end by itself
    // (here an hour after the block reports).
    c.namenode.set_arg("--safemode-extension", "1h");
    c.namenode.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = c.dfs(&["admin", "safemode", "get"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("leaving safe mode in") {
            break;
        }
        assert!(Instant::now() < deadline, "no block reports in: {text}");
        std::thread::sleep(Duration::from_millis(300));
    }
    // A change made in start-up safe mode waits for its end (it ends by
    // itself), instead of failing at once.
    waits_until_safe_mode_is_left(&c, &["mkdir", "/during"]);
    assert_eq!(stat(&c, "/during")["type"], "dir");
    c.dfs_ok(&["mkdir", "/yes"]);
    assert_eq!(cat(&c, "/kept"), std::fs::read(f).unwrap());
}

/// What an exploratory session found wrong in the commands above, each
/// refused or done as GNU tools and `hdfs dfs` do.
#[test]
fn destinations_patterns_and_modes_behave_as_hdfs_and_gnu_tools() {
    let c = Cluster::builder().start();
    let f = c.local_file("f", 2000, 8);
    let f = f.to_str().unwrap();
    c.dfs_ok(&["mkdir", "-p", "/e/dir", "/e/bx"]);
    c.dfs_ok(&["put", f, "/e/victim"]);
    c.dfs_ok(&["touchz", "/e/one", "/e/bx/a1", "/e/tg-a", "/e/tg-b"]);

    // `DST/` is a directory: cp -f does not overwrite a file named so.
    c.dfs_fails(&["cp", "-f", "/e/one", "/e/victim/"], &["not a directory"]);
    assert_eq!(stat(&c, "/e/victim")["length"], 2000);
    // A directory copy needs its destination's parent, as cp -r.
    c.dfs_fails(&["cp", "/e/dir", "/e/none/deep"], &["/e/none"]);
    c.dfs_fails(&["stat", "/e/none"], &["/e/none"]);
    // A pattern as destination names its one match.
    c.dfs_ok(&["cp", "/e/one", "/e/di*"]);
    assert_eq!(stat(&c, "/e/dir/one")["length"], 0);

    // {a,b} alternatives: only existing paths, and no match is "no match".
    c.dfs_ok(&["mv", "/e/bx/{a1,a2}", "/e/bx/renamed"]);
    assert_eq!(stat(&c, "/e/bx/renamed")["type"], "file");
    let out = c.dfs_ok(&["ls", "/e/{dir,nothere}"]);
    assert_eq!(out, "/e/dir/one\n");
    c.dfs_fails(&["ls", "/e/{x,y}"], &["no match"]);
    assert_eq!(c.dfs_ok(&["ls", "-R", "/{,}"]).lines().next(), Some("/e"));

    // touch and touchz: a pattern names its matches, and is the name of a
    // new file only when nothing matches; `\` takes a character literally.
    c.dfs_ok(&["touch", "-t", "20000101:000000", "/e/tg-*"]);
    for p in ["/e/tg-a", "/e/tg-b"] {
        assert_eq!(stat(&c, p)["mtime"], 946_684_800_000u64, "{p}");
    }
    c.dfs_fails(&["stat", "/e/tg-\\*"], &["no such file"]);
    c.dfs_ok(&["touchz", "/e/star*"]);
    assert_eq!(c.dfs_ok(&["ls", "/e/star\\*"]), "/e/star*\n");
    c.dfs_ok(&["rm", "/e/star\\*"]);
    assert_eq!(test_code(&c, "-e", "/e/star\\*"), 1);
    assert_eq!(test_code(&c, "-e", "/e/tg-*"), 0);
    assert_eq!(test_code(&c, "-e", "/e/zz*"), 1);
    // A new file is never made from `NAME/`.
    c.dfs_fails(&["touchz", "/e/new/"], &["no such directory"]);
    c.dfs_fails(&["touch", "/e/new2/"], &["no such directory"]);
    c.dfs_fails(&["stat", "/e/new"], &["/e/new"]);

    // Modes: no setuid or setgid (as HDFS); `=` clears what it names.
    c.dfs_fails(&["chmod", "4755", "/e/one"], &["at most 1777"]);
    c.dfs_ok(&["chmod", "01755", "/e/one"]);
    assert_eq!(stat(&c, "/e/one")["mode"], 0o1755);
    c.dfs_ok(&["chmod", "a=r", "/e/one"]);
    assert_eq!(stat(&c, "/e/one")["mode"], 0o444);
    c.dfs_fails(&["chgrp", "", "/e/one"], &["invalid group"]);
    c.dfs_fails(&["chgrp", "a:b", "/e/one"], &["invalid group"]);
    c.dfs_fails(&["df", "/e/nope"], &["/e/nope"]);

    // A pattern below a file matches nothing: never the file itself.
    c.dfs_fails(&["rm", "-r", "/e/victim/*"], &["no match"]);
    assert_eq!(stat(&c, "/e/victim")["length"], 2000);
    c.dfs_fails(&["ls", "/e/victim/?*"], &["no match"]);

    // Each failure of a command given several paths names its path.
    let err = c.dfs_fails(&["rm", "/e/gone1", "/e/one"], &["/e/gone1"]);
    assert!(!err.contains("/e/one"), "{err}");
}

/// The namenode checks permissions for the user a client names, as HDFS
/// does (simple authentication): mode bits, ownership, superuser-only
/// administration; a refusal is one line in HDFS's words, exit 1, and
/// changes nothing. With `--permissions false` nothing is checked.
#[test]
fn permissions_are_checked_for_the_user_a_client_names() {
    let c = Cluster::builder().start();
    let refused = |user: &str, args: &[&str], expect: &str| {
        let out = c.dfs_as(user, args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{user} {args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{user} {args:?}: {err}");
        assert!(
            err.contains(expect),
            "{user} {args:?}: {err}\nexpected: {expect}"
        );
    };
    let ok = |user: &str, args: &[&str]| {
        let out = c.dfs_as(user, args);
        assert!(
            out.status.success(),
            "{user} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    c.dfs_ok(&["mkdir", "-p", "/user/alice"]);
    c.dfs_ok(&["chown", "alice", "/user/alice"]);
    let local = c.local_file("mine", 3000, 1);
    let local = local.to_str().unwrap();
    ok("alice", &["put", local, "/user/alice/f"]);
    assert_eq!(stat(&c, "/user/alice/f")["owner"], "alice");
    refused(
        "bob",
        &["put", local, "/user/alice/g"],
        "Permission denied: user=bob, access=WRITE, inode=\"/user/alice\":alice:root:drwxr-xr-x",
    );
    refused("bob", &["mkdir", "/user/alice/d"], "user=bob, access=WRITE");
    refused("bob", &["rm", "/user/alice/f"], "user=bob, access=WRITE");
    refused(
        "bob",
        &["chmod", "777", "/user/alice/f"],
        "is not the owner",
    );
    refused(
        "alice",
        &["chown", "bob", "/user/alice/f"],
        "only the superuser",
    );
    // A change that changes nothing is still the owner's (or the
    // superuser's) to make, as in HDFS: refused, never a silent success.
    let mode = format!("{:o}", stat(&c, "/user/alice/f")["mode"].as_u64().unwrap());
    refused(
        "bob",
        &["chmod", &mode, "/user/alice/f"],
        "is not the owner",
    );
    refused(
        "bob",
        &["chown", "alice", "/user/alice/f"],
        "only the superuser",
    );
    ok("alice", &["chmod", &mode, "/user/alice/f"]);
    // Readable by others until its owner says otherwise.
    assert_eq!(ok("bob", &["cat", "/user/alice/f"]).len(), 3000);
    ok("alice", &["chmod", "600", "/user/alice/f"]);
    refused(
        "bob",
        &["cat", "/user/alice/f"],
        "user=bob, access=READ, inode=\"/user/alice/f\":alice:root:-rw-------",
    );
    refused(
        "bob",
        &["get", "/user/alice/f", "/tmp/never"],
        "access=READ",
    );
    // Administration is the superuser's (here root, who runs the namenode).
    refused(
        "bob",
        &["admin", "safemode", "enter"],
        "Superuser privilege is required",
    );
    refused("bob", &["report"], "Superuser privilege is required");
    ok("bob", &["admin", "safemode", "get"]);
    assert!(c.dfs_ok(&["admin", "safemode", "get"]).contains("OFF"));
    // cp -p keeps the owner only for the superuser: bob's copy of root's
    // file or tree is kept with the mode and times, and one warning line
    // says the owner or group were not (as GNU cp -p; exit 0).
    c.dfs_ok(&["mkdir", "-p", "/user/bob", "/pubtree/sub"]);
    c.dfs_ok(&["chown", "bob", "/user/bob"]);
    c.dfs_ok(&["put", local, "/public"]);
    c.dfs_ok(&["put", local, "/pubtree/sub/f"]);
    c.dfs_ok(&["chmod", "604", "/public"]);
    c.dfs_ok(&["touch", "-t", "20000101:000000", "/public"]);
    let kept_without_owner = |args: &[&str], expect: &str| {
        let out = c.dfs_as("bob", args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains("warning: owner or group not preserved")
                && err.contains(expect)
                && err.contains("only the superuser can change the owner")
                && !err.contains("._COPYING_"),
            "{args:?}: {err}"
        );
    };
    kept_without_owner(&["cp", "-p", "/public", "/user/bob/copy"], "/user/bob/copy");
    let copy = stat(&c, "/user/bob/copy");
    assert_eq!(
        (
            &copy["owner"],
            &copy["mode"],
            &copy["mtime"],
            &copy["length"]
        ),
        (
            &"bob".into(),
            &0o604.into(),
            &946_684_800_000u64.into(),
            &3000.into()
        )
    );
    kept_without_owner(
        &["cp", "-p", "/pubtree", "/user/bob/tree"],
        "for 3 copies, kept with the mode and times (the first: /user/bob/tree/sub/f: ",
    );
    assert_eq!(stat(&c, "/user/bob/tree/sub/f")["owner"], "bob");
    assert_eq!(stat(&c, "/user/bob/tree/sub/f")["length"], 3000);
    c.dfs_ok(&["rm", "/user/bob/copy"]);
    ok("bob", &["cp", "/public", "/user/bob/copy"]);
    assert_eq!(stat(&c, "/user/bob/copy")["owner"], "bob");
    // A recursive listing goes on past a directory it may not read, and
    // names it.
    c.dfs_ok(&["chmod", "750", "/user/bob"]);
    let out = c.dfs_as("alice", &["ls", "-R", "/"]);
    let (listed, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        listed.contains("/user/alice/f") && listed.contains("/public"),
        "{listed}"
    );
    assert!(!listed.contains("/user/bob/copy"), "{listed}");
    assert!(
        err.contains("/user/bob") && err.contains("access=READ_EXECUTE"),
        "{err}"
    );
    c.dfs_ok(&["rm", "-r", "/user/bob", "/public", "/pubtree"]);

    // Nothing changed, nothing was left behind; the superuser reads all.
    let names: Vec<String> = c
        .tree()
        .into_iter()
        .map(|(p, _, _)| p)
        .filter(|p| p.starts_with("/user/alice/"))
        .collect();
    assert_eq!(names, ["/user/alice/f"]);
    assert_eq!(cat(&c, "/user/alice/f").len(), 3000);

    let open = Cluster::builder()
        .datanodes(1)
        .replication(1)
        .namenode_args(&["--permissions", "false"])
        .start();
    open.dfs_ok(&["mkdir", "/alice"]);
    open.dfs_ok(&["chmod", "700", "/alice"]);
    let out = open.dfs_as("bob", &["put", local, "/alice/g"]);
    assert!(out.status.success(), "{out:?}");
}

/// `dfs get -f` onto something that is not a regular file does what `cp`
/// does: a device or FIFO is written into and stays what it is (it used to
/// be replaced by a regular file: `/dev/null` for the whole machine), a
/// symbolic link is written through (the link stays, its target gets the
/// bytes), and a dangling link is refused with one line naming it.
#[test]
fn get_force_writes_into_devices_fifos_and_through_symlinks_and_never_replaces_them() {
    use std::os::unix::fs::FileTypeExt;
    let c = Cluster::builder().datanodes(1).replication(1).start();
    let data = random_bytes(300_000, 51);
    let local = c.dir.path().join("src");
    std::fs::write(&local, &data).unwrap();
    c.dfs_ok(&["put", local.to_str().unwrap(), "/f"]);
    let dir = c.dir.path();

    // A private null device (never the machine's own).
    let null = dir.join("null");
    let ok = std::process::Command::new("mknod")
        .args([null.to_str().unwrap(), "c", "1", "3"])
        .status()
        .unwrap();
    assert!(ok.success());
    c.dfs_fails(&["get", "/f", null.to_str().unwrap()], &["use -f"]);
    c.dfs_ok(&["get", "-f", "/f", null.to_str().unwrap()]);
    let ft = std::fs::symlink_metadata(&null).unwrap().file_type();
    assert!(ft.is_char_device(), "the device was replaced: {ft:?}");

    // A directory where the copy would go is refused in one line saying
    // so; no symbolic link is involved, so none is named (it used to say
    // "(through a symbolic link)").
    let gout = dir.join("gout");
    std::fs::create_dir_all(gout.join("f")).unwrap();
    let into = format!("{}/", gout.display());
    let err = c.dfs_fails(&["get", "-f", "/f", &into], &["is a directory"]);
    assert!(err.trim_end().ends_with("gout/f: is a directory"), "{err}");

    // A FIFO: the bytes come out of it.
    let fifo = dir.join("fifo");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(ok.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            std::fs::File::open(&fifo)
                .unwrap()
                .read_to_end(&mut got)
                .unwrap();
            got
        })
    };
    c.dfs_ok(&["get", "-f", "/f", fifo.to_str().unwrap()]);
    assert!(
        reader.join().unwrap() == data,
        "wrong bytes out of the FIFO"
    );
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());

    // A symbolic link: written through.
    let real = dir.join("real");
    std::fs::write(&real, b"old").unwrap();
    let link = dir.join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    c.dfs_ok(&["get", "-f", "/f", link.to_str().unwrap()]);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(
        std::fs::read(&real).unwrap() == data,
        "the link's target was not written"
    );

    let dangling = dir.join("dangling");
    std::os::unix::fs::symlink(dir.join("nowhere"), &dangling).unwrap();
    let err = c.dfs_fails(
        &["get", "-f", "/f", dangling.to_str().unwrap()],
        &["symbolic link"],
    );
    assert!(err.contains(dangling.to_str().unwrap()), "{err}");
    assert!(std::fs::symlink_metadata(&dangling)
        .unwrap()
        .file_type()
        .is_symlink());
}

/// `dfs put` of a local tree follows symbolic links (as HDFS's put does)
/// but refuses one that leads back up the tree, where it copied the same
/// files again and again until the path got too deep; it skips FIFOs,
/// sockets and devices, where it waited forever for a FIFO's writer, and
/// dangling links; one line each, exit 1, everything else copied.
#[test]
fn put_of_a_tree_copes_with_symlink_loops_fifos_and_dangling_links() {
    let c = Cluster::builder().datanodes(1).replication(1).start();
    let top = c.dir.path().join("loopdir");
    std::fs::create_dir_all(top.join("sub")).unwrap();
    std::fs::write(top.join("sub/file"), b"once").unwrap();
    std::os::unix::fs::symlink("..", top.join("sub/up")).unwrap();
    std::os::unix::fs::symlink("sub/file", top.join("linked")).unwrap();
    std::os::unix::fs::symlink("nowhere", top.join("dangling")).unwrap();
    let ok = std::process::Command::new("mkfifo")
        .arg(top.join("fifo"))
        .status()
        .unwrap();
    assert!(ok.success());
    let mut child = c
        .dfs_command(&["put", top.to_str().unwrap(), "/p"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("dfs put of the tree did not finish");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for name in ["sub/up", "dangling", "fifo"] {
        assert!(
            err.lines()
                .any(|l| l.contains(name) && l.contains("skipped")),
            "no line about {name}: {err}"
        );
    }
    let mut files: Vec<String> = c
        .tree()
        .into_iter()
        .filter(|(_, t, _)| t == "file")
        .map(|(p, _, _)| p)
        .collect();
    files.sort();
    assert_eq!(files, ["/p/linked", "/p/sub/file"], "{err}");
    assert_eq!(cat(&c, "/p/linked"), b"once");
}

/// A `put` whose destination directory another client moves during the
/// copy fails in one line saying so, and leaves no `._COPYING_` file: the
/// partial copy is removed by its inode where its directory went. Before,
/// it said the destination did not exist and left the whole copy behind.
#[test]
fn put_into_a_directory_moved_during_the_copy_says_so_and_leaves_nothing() {
    use std::io::Write;
    let c = Cluster::builder().start();
    c.dfs_ok(&["mkdir", "-p", "/W/w", "/S"]);
    let mut child = c
        .dfs_command(&["put", "-", "/W/w/file"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&random_bytes(1_500_000, 71)).unwrap();
    // The temporary file exists once the first bytes went out.
    let started = Instant::now();
    while !c.tree().iter().any(|(p, _, _)| p.contains("._COPYING_")) {
        assert!(started.elapsed() < Duration::from_secs(20), "no copy began");
        std::thread::sleep(Duration::from_millis(50));
    }
    c.dfs_ok(&["mv", "/W", "/S/"]);
    stdin.write_all(&random_bytes(1_500_000, 72)).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("/W/w/file") && err.contains("moved or removed during the copy"),
        "{err}"
    );
    let tree = c.tree();
    assert!(
        !tree.iter().any(|(p, _, _)| p.contains("._COPYING_")),
        "a partial copy was left: {tree:?}"
    );
}

/// `du DIR` goes on past a child the user may not read, as `hdfs dfs -du`
/// does: one line names it, every other child has its row, and the
/// command exits 1 at the end. (It used to stop at the first such child,
/// leaving the later ones out.)
#[test]
fn du_goes_on_past_a_child_the_user_may_not_read() {
    let c = Cluster::builder().datanodes(1).replication(1).start();
    c.dfs_ok(&["mkdir", "-p", "/q/a", "/q/b", "/q/c"]);
    let local = c.local_file("q", 1500, 3);
    let local = local.to_str().unwrap();
    for p in ["/q/a/f", "/q/b/f", "/q/c/f"] {
        c.dfs_ok(&["put", local, p]);
    }
    // alice may not look into /q/b, which sorts between the others.
    c.dfs_ok(&["chmod", "700", "/q/b"]);
    let out = c.dfs_as("alice", &["du", "/q"]);
    let (rows, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{rows}{err}");
    let listed: Vec<&str> = rows
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    assert_eq!(listed, ["/q/a", "/q/c"], "{rows}");
    assert!(rows.lines().all(|l| l.starts_with("1500 ")), "{rows}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("/q/b") && err.contains("Permission denied"),
        "{err}"
    );
}

/// `setrep` of several files or of a directory sets every file it can, as
/// `hdfs dfs -setrep` does: one line names each file refused, exit 1 at
/// the end. (It used to stop at the first refusal, leaving the later
/// files unchanged.)
#[test]
fn setrep_goes_on_past_a_file_the_user_may_not_change() {
    let c = Cluster::builder().datanodes(1).replication(1).start();
    let local = c.local_file("r", 1500, 4);
    let local = local.to_str().unwrap();
    // alice may change her own files, not root's /r/f2, which comes
    // between them.
    c.dfs_ok(&["mkdir", "/r"]);
    c.dfs_ok(&["chown", "alice", "/r"]);
    for (user, p) in [("alice", "/r/f1"), ("root", "/r/f2"), ("alice", "/r/f3")] {
        let out = c.dfs_as(user, &["put", local, p]);
        assert!(out.status.success(), "{user} put {p}: {out:?}");
    }
    let replication = |p: &str| stat(&c, p)["replication"].as_u64();
    for (args, want) in [
        (vec!["setrep", "2", "/r/f1", "/r/f2", "/r/f3"], 2),
        (vec!["setrep", "3", "/r"], 3),
    ] {
        let out = c.dfs_as("alice", &args);
        let (said, err) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(out.status.code(), Some(1), "{args:?}: {said}{err}");
        assert_eq!(
            said,
            format!("Replication {want} set: /r/f1\nReplication {want} set: /r/f3\n"),
            "{args:?}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains("/r/f2") && err.contains("Permission denied"),
            "{args:?}: {err}"
        );
        assert_eq!(replication("/r/f1"), Some(want));
        assert_eq!(replication("/r/f3"), Some(want));
        assert_eq!(replication("/r/f2"), Some(1));
    }
}

/// `\` takes a glob character literally in the names `put`, `cp` and `mv`
/// create and in `mkdir`, as in `touchz` (README): `'/dq/new\*'` names
/// `/dq/new*`. (They used to create names with the backslash in them, so
/// no command but touchz could make a name with `*?[{`.) A name with no
/// glob characters is taken as it is.
#[test]
fn escaped_glob_characters_name_new_files_and_directories() {
    let c = Cluster::builder().datanodes(1).replication(1).start();
    let local = c.local_file("small", 700, 5);
    let local = local.to_str().unwrap();
    c.dfs_ok(&["mkdir", "/dq"]);
    c.dfs_ok(&["put", local, "/dq/new\\*"]);
    c.dfs_ok(&["put", local, "/dq/plain"]);
    c.dfs_ok(&["cp", "/dq/new\\*", "/dq/c\\?"]);
    c.dfs_ok(&["mv", "/dq/c\\?", "/dq/m\\[1]"]);
    c.dfs_ok(&["mkdir", "/dq/d\\*"]);
    c.dfs_ok(&["mkdir", "-p", "/dq/p\\{a,b}/x"]);
    // An escaped name that exists is the directory to copy into.
    c.dfs_ok(&["put", local, "/dq/d\\*"]);
    // A pattern that matches nothing is still no destination.
    c.dfs_fails(&["put", local, "/dq/none*"], &["no match"]);
    let names: Vec<String> = c.tree().into_iter().map(|(p, _, _)| p).collect();
    assert_eq!(
        names,
        [
            "/dq",
            "/dq/d*",
            "/dq/d*/small",
            "/dq/m[1]",
            "/dq/new*",
            "/dq/plain",
            "/dq/p{a,b}",
            "/dq/p{a,b}/x",
        ]
    );
    assert_eq!(cat(&c, "/dq/m\\[1]").len(), 700);
}
