//! ls/stat/mkdir/rm/mv through the CLI, and every bad input of issue 2:
//! each fails with one clear line, a non-zero exit, and no change.

use std::time::{Duration, Instant};

use dfs_tests::Cluster;

#[test]
fn ls_stat_mkdir_rm_mv_semantics() {
    let c = Cluster::builder().start();
    c.dfs_ok(&["mkdir", "-p", "/a/b/c"]);
    c.dfs_ok(&["mkdir", "/a/d"]);
    let f = c.local_file("small", 1000, 1);
    c.dfs_ok(&["put", f.to_str().unwrap(), "/a/b/file"]);

    let st = c.dfs_json(&["stat", "--json", "/a/b"]);
    assert_eq!(st["type"], "dir");
    assert_eq!(st["path"], "/a/b");
    for key in [
        "path",
        "type",
        "length",
        "replication",
        "block_size",
        "owner",
        "mode",
        "mtime",
    ] {
        assert!(st.get(key).is_some(), "stat --json lacks {key}: {st}");
    }
    let st = c.dfs_json(&["stat", "--json", "/a/b/file"]);
    assert_eq!(st["length"], 1000);
    assert_eq!(st["block_size"], 1024 * 1024);
    assert!(
        st["mtime"].as_i64().unwrap() > 1_600_000_000_000,
        "mtime in ms: {st}"
    );

    let ls = c.dfs_json(&["ls", "--json", "/a/b"]);
    let names: Vec<&str> = ls
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["/a/b/c", "/a/b/file"]);
    let long = c.dfs_ok(&["ls", "-l", "/a/b"]);
    assert!(
        long.contains("/a/b/file") && long.contains("1000"),
        "{long}"
    );
    assert!(long.lines().any(|l| l.starts_with('d')), "{long}");
    let rec = c.dfs_ok(&["ls", "-R", "/a"]);
    assert!(
        rec.contains("/a/b/c") && rec.contains("/a/d") && rec.contains("/a/b/file"),
        "{rec}"
    );

    // mv a file, then a directory.
    c.dfs_ok(&["mv", "/a/b/file", "/a/d/moved"]);
    assert!(c.dfs_ok(&["ls", "/a/d"]).contains("/a/d/moved"));
    c.dfs_ok(&["mv", "/a/b", "/x"]);
    assert_eq!(c.dfs_json(&["stat", "--json", "/x/c"])["type"], "dir");

    // du
    let du = c.dfs_ok(&["du", "-s", "/a"]);
    assert!(du.contains("1000"), "{du}");

    // rm file, rm -r dir.
    c.dfs_ok(&["rm", "/a/d/moved"]);
    c.dfs_ok(&["rm", "-r", "/x"]);
    assert_eq!(
        c.tree(),
        vec![
            ("/a".into(), "dir".into(), 0),
            ("/a/d".into(), "dir".into(), 0)
        ]
    );
}

#[test]
fn bad_inputs_fail_clearly_and_change_nothing() {
    let c = Cluster::builder().datanodes(1).replication(1).start();
    c.dfs_ok(&["mkdir", "-p", "/d/sub"]);
    let f = c.local_file("f", 10, 1);
    let fs = f.to_str().unwrap();
    c.dfs_ok(&["put", fs, "/d/file"]);
    let before = c.tree();

    c.dfs_fails(&["stat", "/nope"], &["/nope"]);
    c.dfs_fails(
        &["stat", "/nope"],
        &["no such file", "not found", "does not exist"],
    );
    c.dfs_fails(
        &["ls", "/nope/deeper"],
        &["no such file", "not found", "does not exist"],
    );
    c.dfs_fails(&["get", "/nope", "/tmp/never-written"], &["/nope"]);
    c.dfs_fails(&["mkdir", "relative/path"], &["absolute"]);
    c.dfs_fails(&["mkdir", "/d/../x"], &["'.' or '..'", "..", "dot"]);
    c.dfs_fails(&["mkdir", "/d/./x"], &["'.' or '..'", "dot"]);
    c.dfs_fails(&["mkdir", "/d/a\u{1}b/../c"], &[".."]);
    let long = format!("/d/{}", "n".repeat(256));
    c.dfs_fails(&["mkdir", &long], &["255", "too long", "longer"]);
    c.dfs_fails(&["mkdir", "/d/file/child"], &["not a directory"]);
    c.dfs_fails(
        &["mkdir", "/missing/child"],
        &["/missing", "no such", "not found"],
    );
    c.dfs_fails(&["mkdir", "/d/sub"], &["exists"]);
    c.dfs_fails(&["put", fs, "/d/file"], &["exists"]);
    c.dfs_fails(&["put", fs, "/d/file/below"], &["not a directory"]);
    c.dfs_fails(
        &["put", fs, "/missing/x"],
        &["/missing", "no such", "not found"],
    );
    c.dfs_fails(&["rm", "/d/sub"], &["directory", "-r"]);
    c.dfs_fails(&["rm", "/d"], &["not empty", "directory"]);
    c.dfs_fails(&["rm", "/nope"], &["/nope"]);
    c.dfs_fails(
        &["mv", "/d", "/d/sub/inside"],
        &["itself", "descendant", "into"],
    );
    c.dfs_fails(&["mv", "/nope", "/other"], &["/nope"]);
    c.dfs_fails(
        &["mv", "/d/file", "/missing/file"],
        &["/missing", "no such", "not found"],
    );
    c.dfs_fails(
        &["mv", "/d/sub", "/d/file"],
        &["exists", "not a directory", "directory"],
    );
    c.dfs_fails(&["rm", "-r", "/"], &["/", "root"]);
    // `DST/` names a directory: never a new file, as GNU mv.
    c.dfs_fails(
        &["mv", "/d/file", "/newdir/"],
        &["/newdir/: no such directory"],
    );
    c.dfs_fails(
        &["mv", "/d/sub", "/d/file/"],
        &["/d/file/: not a directory"],
    );
    // Into the directory it is in: nothing to do, and said.
    c.dfs_fails(&["mv", "/d/sub", "/d"], &["source and target are the same"]);
    let out = std::process::Command::new(dfs_tests::bin("dfs"))
        .args(["--namenode", "127.0.0.1:99999", "ls", "/"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("bad server address '127.0.0.1:99999'"),
        "{err}"
    );
    assert_eq!(c.tree(), before, "a failed command changed the namespace");

    // A NUL inside a name cannot come from argv; the library refuses it.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = dfs_client::Client::connect(c.addr()).await.unwrap();
        let err = client.mkdirs("/d/a\0b", false).await.unwrap_err();
        assert!(err.to_string().contains("NUL"), "{err}");
    });
    assert_eq!(c.tree(), before);

    // Creating over an existing file with -f replaces it.
    let g = c.local_file("g", 20, 2);
    c.dfs_ok(&["put", "-f", g.to_str().unwrap(), "/d/file"]);
    assert_eq!(c.dfs_json(&["stat", "--json", "/d/file"])["length"], 20);
}

#[test]
fn unreachable_namenode_fails_within_seconds_naming_it() {
    // A port nobody listens on: bind and drop.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let start = Instant::now();
    let out = std::process::Command::new(dfs_tests::bin("dfs"))
        .args(["--namenode", &addr, "ls", "/"])
        .output()
        .unwrap();
    let took = start.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&addr), "error does not name {addr}: {err}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    // DFS_NAMENODE is used when --namenode is absent.
    let out = std::process::Command::new(dfs_tests::bin("dfs"))
        .env("DFS_NAMENODE", &addr)
        .args(["ls", "/"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains(&addr));
}

/// `fsck` of a tree larger than one namenode page (1000 inodes) reports
/// every file once, with counts that add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsck_of_a_tree_larger_than_one_page_reports_every_file() {
    let c = Cluster::builder().start();
    let client = dfs_client::Client::connect(c.addr()).await.unwrap();
    let n = 1200usize;
    let mut tasks = Vec::new();
    for t in 0..8usize {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for i in (t..n).step_by(8) {
                let w = client
                    .create(
                        &format!("/big/d{}/f{i:04}", i % 7),
                        dfs_client::CreateOptions {
                            create_parents: true,
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap();
                w.close().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let report = client.fsck("/big").await.unwrap();
    assert_eq!(report.total_files, n as u64);
    assert_eq!(report.total_dirs, 8);
    let paths: std::collections::HashSet<&str> =
        report.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(report.files.len(), n);
    assert_eq!(paths.len(), n, "a file was reported twice");
    let json = c.dfs_json(&["fsck", "--json", "/big"]);
    assert_eq!(json["files"].as_array().unwrap().len(), n);
    assert_eq!(json["status"], "HEALTHY");
}

/// A command given several paths does every one it can, as `hdfs dfs`
/// does: one line per path that failed, exit status 1. (Before, it
/// stopped at the first failure and skipped the rest.)
#[test]
fn commands_given_several_paths_do_every_one_they_can() {
    let c = Cluster::builder().datanodes(1).replication(1).start();
    c.dfs_ok(&["mkdir", "/mp"]);
    for n in ["1", "3"] {
        let out = c.dfs_stdin(&["put", "-", &format!("/mp/{n}")], Some(n.as_bytes()));
        assert!(out.status.success(), "{out:?}");
    }
    let told = |args: &[&str], lines: usize, naming: &str| {
        let out = c.dfs(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "dfs {args:?}: {err}");
        assert_eq!(err.trim().lines().count(), lines, "dfs {args:?}: {err}");
        assert!(err.contains(naming), "dfs {args:?}: {err}");
        out
    };
    // cat: a missing path between two files; both files are printed.
    let out = told(&["cat", "/mp/1", "/mp/2", "/mp/3"], 1, "/mp/2");
    assert_eq!(out.stdout, b"13");
    // mkdir: one fails (its parent is missing), the others are made.
    told(&["mkdir", "/mp/a", "/mp/no/b", "/mp/c"], 1, "/mp/no/b");
    // rm: two missing paths, each told; the files are removed.
    told(&["rm", "/mp/1", "/mp/2", "/mp/x", "/mp/3"], 2, "/mp/x");
    let left = c.dfs_json(&["ls", "--json", "/mp"]);
    let names: Vec<&str> = left
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["/mp/a", "/mp/c"]);
    // put of several files into a directory: the missing one is told,
    // the others copied.
    let local = c.dir.path().join("p");
    std::fs::create_dir_all(&local).unwrap();
    std::fs::write(local.join("f1"), b"one").unwrap();
    std::fs::write(local.join("f3"), b"three").unwrap();
    let l = |n: &str| local.join(n).display().to_string();
    told(&["put", &l("f1"), &l("f2"), &l("f3"), "/mp/a"], 1, "f2");
    let out = c.dfs_ok(&["cat", "/mp/a/f1", "/mp/a/f3"]);
    assert_eq!(out, "onethree");
}
