//! The FUSE mount (issue 4): real kernel FUSE (`dfs-fuse`) over a real
//! cluster of processes, driven with the ordinary tools.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use dfs_tests::{random_bytes, sha256_file, Cluster, Mount};

const MIB: usize = 1024 * 1024;

/// Runs a shell command, panicking with its output unless it succeeds.
fn sh(cmd: &str) -> String {
    let out = Command::new("bash").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "`{cmd}` failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs library calls from these synchronous tests.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Waits (at most 60 s) until lease recovery has closed `path`, left open
/// by a mount that was killed; returns the length it closed it at.
fn closed_by_lease_recovery(c: &Cluster, path: &str) -> u64 {
    block_on(async {
        let client = dfs_client::Client::connect(c.addr()).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let st = client.status(path).await.unwrap();
            if !st.under_construction {
                return st.length;
            }
            assert!(
                Instant::now() < deadline,
                "lease recovery never closed {path}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// `path mode mtime size` of every entry below `dir`, sorted.
fn tree_listing(dir: &Path) -> String {
    sh(&format!(
        "cd '{}' && find . -mindepth 1 -printf '%P %y %m %Ts %s\\n' | awk '{{ if ($2==\"d\") $5=\"-\"; print }}' | sort",
        dir.display()
    ))
}

#[test]
fn cp_in_and_out_of_the_mount() {
    let c = Cluster::builder().start();
    let m = Mount::new(&c, &[]);
    for (i, &size) in [0usize, 1, 3 * MIB + 5].iter().enumerate() {
        let local = c.local_file(&format!("cp-{size}"), size, 50 + i as u64);
        let inside = m.dir.join(format!("cp-{size}"));
        sh(&format!("cp '{}' '{}'", local.display(), inside.display()));
        assert_eq!(fs::metadata(&inside).unwrap().len(), size as u64);
        let back = c.dir.path().join(format!("back-{size}"));
        sh(&format!("cp '{}' '{}'", inside.display(), back.display()));
        assert_eq!(sha256_file(&local), sha256_file(&back), "size {size}");
        // The CLI sees what the mount wrote.
        let st = c.dfs_json(&["stat", "--json", &format!("/cp-{size}")]);
        assert_eq!(st["length"], size as u64);
    }
    // cp onto an existing file replaces it (O_TRUNC or setattr(size=0)).
    let newer = c.local_file("newer", 12345, 77);
    let target = m.dir.join(format!("cp-{}", 3 * MIB + 5));
    sh(&format!("cp '{}' '{}'", newer.display(), target.display()));
    assert_eq!(sha256_file(&newer), sha256_file(&target));
    // Shell redirection truncates too.
    sh(&format!("echo hello > '{}'", target.display()));
    assert_eq!(fs::read_to_string(&target).unwrap(), "hello\n");
}

#[test]
fn tar_extract_is_identical_with_modes_and_mtimes() {
    let c = Cluster::builder().block_size(4 * MIB as u64).start();
    let m = Mount::new(&c, &[]);
    let src = if Path::new("/usr/lib/python3").is_dir() {
        "python3"
    } else {
        ""
    };
    let tarball = c.dir.path().join("tree.tar");
    if src.is_empty() {
        sh(&format!(
            "tar -C /usr/share -chf '{}' doc",
            tarball.display()
        ));
    } else {
        sh(&format!(
            "tar -C /usr/lib -cf '{}' {src}",
            tarball.display()
        ));
    }
    let files: usize = sh(&format!("tar -tf '{}' | grep -vc '/$'", tarball.display()))
        .trim()
        .parse()
        .unwrap();
    assert!(
        files > 1000,
        "the tarball should have thousands of files ({files})"
    );
    let local = c.dir.path().join("local-x");
    fs::create_dir_all(&local).unwrap();
    sh(&format!(
        "tar -C '{}' -xf '{}'",
        local.display(),
        tarball.display()
    ));
    let remote = m.dir.join("x");
    fs::create_dir_all(&remote).unwrap();
    sh(&format!(
        "tar -C '{}' -xf '{}'",
        remote.display(),
        tarball.display()
    ));
    sh(&format!(
        "diff -r '{}' '{}'",
        local.display(),
        remote.display()
    ));
    assert_eq!(
        tree_listing(&local),
        tree_listing(&remote),
        "modes or mtimes differ"
    );
}

#[test]
fn rsync_twice_changes_nothing_the_second_time() {
    let c = Cluster::builder().start();
    let m = Mount::new(&c, &[]);
    let src = c.dir.path().join("rs-src");
    for d in ["a", "a/b", "c"] {
        fs::create_dir_all(src.join(d)).unwrap();
    }
    for (i, name) in ["a/one", "a/b/two", "c/three", "four"].iter().enumerate() {
        fs::write(
            src.join(name),
            random_bytes(1000 * (i + 1) + i * MIB / 2, i as u64),
        )
        .unwrap();
    }
    fs::set_permissions(src.join("a/one"), fs::Permissions::from_mode(0o600)).unwrap();
    let dst = m.dir.join("rs");
    sh(&format!(
        "rsync -a '{}/' '{}/'",
        src.display(),
        dst.display()
    ));
    sh(&format!("diff -r '{}' '{}'", src.display(), dst.display()));
    assert_eq!(tree_listing(&src), tree_listing(&dst));
    let second = sh(&format!(
        "rsync -a --itemize-changes '{}/' '{}/'",
        src.display(),
        dst.display()
    ));
    assert_eq!(
        second.trim(),
        "",
        "second rsync changed something:\n{second}"
    );
}

#[test]
fn dd_with_fsync_and_shell_tools() {
    let c = Cluster::builder().start();
    let m = Mount::new(&c, &[]);
    let src = c.local_file("dd-src", 24 * MIB, 3);
    let dst = m.dir.join("dd.bin");
    sh(&format!(
        "dd if='{}' of='{}' bs=1M conv=fsync status=none",
        src.display(),
        dst.display()
    ));
    assert_eq!(sha256_file(&src), sha256_file(&dst));
    // sha256sum through the mount agrees with the local file.
    let a = sh(&format!("sha256sum < '{}'", src.display()));
    let b = sh(&format!("sha256sum < '{}'", dst.display()));
    assert_eq!(a, b);

    // mkdir -p, mv, ls -l, stat, rm -r.
    sh(&format!("mkdir -p '{}/p/q/r'", m.dir.display()));
    sh(&format!(
        "mv '{}' '{}/p/q/r/moved.bin'",
        dst.display(),
        m.dir.display()
    ));
    let ls = sh(&format!("ls -l '{}/p/q/r'", m.dir.display()));
    assert!(
        ls.contains("moved.bin") && ls.contains(&(24 * MIB).to_string()),
        "{ls}"
    );
    let st = sh(&format!(
        "stat -c '%s %F %a' '{}/p/q/r/moved.bin'",
        m.dir.display()
    ));
    assert_eq!(st.trim(), format!("{} regular file 644", 24 * MIB));
    let st = sh(&format!("stat -c '%F' '{}/p/q'", m.dir.display()));
    assert_eq!(st.trim(), "directory");
    sh(&format!("chmod 600 '{}/p/q/r/moved.bin'", m.dir.display()));
    let meta = fs::metadata(m.dir.join("p/q/r/moved.bin")).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    sh(&format!("rm -r '{}/p'", m.dir.display()));
    assert!(!m.dir.join("p").exists());
    // rmdir of a non-empty dir fails, mv over an existing file replaces it.
    fs::create_dir_all(m.dir.join("full/x")).unwrap();
    assert!(fs::remove_dir(m.dir.join("full")).is_err());
    fs::write(m.dir.join("f1"), b"one").unwrap();
    fs::write(m.dir.join("f2"), b"two").unwrap();
    fs::rename(m.dir.join("f1"), m.dir.join("f2")).unwrap();
    assert_eq!(fs::read(m.dir.join("f2")).unwrap(), b"one");
    assert!(!m.dir.join("f1").exists());
}

fn is_refused(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::ENOTSUP))
}

#[test]
fn random_writes_and_appends_are_refused_and_change_nothing() {
    let c = Cluster::builder().start();
    let m = Mount::new(&c, &[]);
    // Random offset while writing a new file.
    let p = m.dir.join("new");
    let mut f = fs::File::create(&p).unwrap();
    f.write_all(&[1u8; 1000]).unwrap();
    f.seek(SeekFrom::Start(5000)).unwrap();
    let e = f.write_all(&[2u8; 10]).and_then(|_| f.flush()).unwrap_err();
    assert!(is_refused(&e), "random write: {e:?}");
    drop(f);

    // Append to a closed file.
    let closed = m.dir.join("closed");
    fs::write(&closed, b"immutable").unwrap();
    let r = fs::OpenOptions::new()
        .append(true)
        .open(&closed)
        .and_then(|mut f| f.write_all(b"more").and_then(|_| f.sync_all()));
    let e = r.unwrap_err();
    assert!(is_refused(&e), "append: {e:?}");
    // Overwrite in place without truncation.
    let r = fs::OpenOptions::new()
        .write(true)
        .open(&closed)
        .and_then(|mut f| f.write_all(b"X").and_then(|_| f.sync_all()));
    assert!(is_refused(&r.unwrap_err()));
    assert_eq!(fs::read(&closed).unwrap(), b"immutable");
    // Truncate to a size other than 0.
    let e = fs::OpenOptions::new()
        .write(true)
        .open(&closed)
        .and_then(|f| f.set_len(3));
    assert!(e.is_err());
    assert_eq!(fs::read(&closed).unwrap(), b"immutable");
    let log = m.log();
    assert!(log.contains("closed"), "the mount should log why: {log}");
}

/// Reads `dir/f0000`... in name order from `from` to `to` (excluded),
/// checking each against `expect`.
fn read_in_order(
    dir: &Path,
    range: std::ops::Range<usize>,
    expect: impl Fn(usize) -> Option<Vec<u8>>,
) {
    for i in range {
        let path = dir.join(format!("f{i:04}"));
        match (fs::read(&path), expect(i)) {
            (Ok(got), Some(want)) => assert!(got == want, "{} read back wrong", path.display()),
            (Err(e), None) => {
                assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{}", path.display())
            }
            (got, want) => panic!(
                "{}: read {:?}, expected {}",
                path.display(),
                got.map(|d| d.len()),
                if want.is_some() {
                    "a file"
                } else {
                    "no such file"
                }
            ),
        }
    }
}

#[test]
fn reading_a_directory_in_name_order_is_served_ahead_and_sees_every_change() {
    let mut c = Cluster::builder().start();
    let m = Mount::with_log(&c, &[], "info,dfs_fuse=debug");
    let dir = m.dir.join("many");
    fs::create_dir(&dir).unwrap();
    let content = |i: usize, version: u64| random_bytes(1000 + 37 * i, 1000 * version + i as u64);
    for i in 0..250 {
        fs::write(dir.join(format!("f{i:04}")), content(i, 0)).unwrap();
    }
    // Entries the pages must carry without locations or skip over.
    fs::create_dir(dir.join("f0005-dir")).unwrap();
    fs::write(dir.join("f0006-empty"), b"").unwrap();

    // Several located pages (100 entries each), most files read ahead.
    // (After the entry timeout: the kernel forgot the names it created.)
    std::thread::sleep(Duration::from_millis(1100));
    read_in_order(&dir, 0..250, |i| Some(content(i, 0)));
    assert_eq!(fs::read(dir.join("f0006-empty")).unwrap(), b"");
    assert!(dir.join("f0005-dir").is_dir());
    let log = m.log();
    let pages = log.matches("statahead page").count();
    let ahead = log.matches("opened from the files read ahead").count();
    assert!(
        pages >= 3 && ahead >= 150,
        "{pages} statahead pages and {ahead} files read ahead for 250 files read in order"
    );

    // Changes by the mount itself, in the middle of a listed page.
    std::thread::sleep(Duration::from_millis(1100));
    read_in_order(&dir, 0..10, |i| Some(content(i, 0)));
    fs::write(dir.join("f0050"), content(50, 1)).unwrap();
    fs::remove_file(dir.join("f0060")).unwrap();
    let changed = |i: usize| match i {
        50 => Some(content(50, 1)),
        60 => None,
        _ => Some(content(i, 0)),
    };
    read_in_order(&dir, 10..250, changed);

    // Changes by another client show once the entry timeout (1 s) passed.
    std::thread::sleep(Duration::from_millis(1100));
    read_in_order(&dir, 0..10, changed);
    let newer = c.local_file("f0070-v2", 4321, 7);
    c.dfs_ok(&["rm", "/many/f0070"]);
    c.dfs_ok(&["put", newer.to_str().unwrap(), "/many/f0070"]);
    std::thread::sleep(Duration::from_millis(1100));
    read_in_order(&dir, 70..71, |_| Some(fs::read(&newer).unwrap()));

    // A datanode down: files read ahead and read by their opens fail over.
    std::thread::sleep(Duration::from_millis(1100));
    c.datanodes[0].kill();
    read_in_order(&dir, 71..250, changed);
}

#[test]
fn a_file_replaced_while_its_directory_is_walked_reads_back_new() {
    // The kernel still knows `f05` (no lookup when it is opened again), a
    // statahead page lists it, and it is replaced through the mount: once
    // the kernel forgets the name, the next lookup must not be answered
    // from the page with the old file.
    let c = Cluster::builder().start();
    let m = Mount::new(&c, &[]);
    let dir = m.dir.join("walk");
    fs::create_dir(&dir).unwrap();
    for i in 0..10 {
        fs::write(dir.join(format!("f{i:02}")), format!("old {i}")).unwrap();
    }
    std::thread::sleep(Duration::from_millis(1100));
    let started = Instant::now();
    assert_eq!(fs::read_to_string(dir.join("f05")).unwrap(), "old 5");
    // The page is listed well after the kernel learned f05.
    std::thread::sleep(Duration::from_millis(400));
    for i in 1..5 {
        assert_eq!(
            fs::read_to_string(dir.join(format!("f{i:02}"))).unwrap(),
            format!("old {i}")
        );
    }
    fs::write(dir.join("f05"), "new 5").unwrap();
    // Past the kernel's entry timeout for f05, within the page's.
    std::thread::sleep(Duration::from_millis(1100).saturating_sub(started.elapsed()));
    assert_eq!(fs::read_to_string(dir.join("f05")).unwrap(), "new 5");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(fs::read_to_string(dir.join("f05")).unwrap(), "new 5");
}

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

/// A directory of 100,000 entries lists completely through the mount: the
/// kernel's readdir is answered from namenode pages of `LIST_PAGE` names
/// (the mount never asks for the whole listing at once), in name order,
/// each name once.
#[test]
fn hundred_thousand_entries_list_in_pages() {
    const N: usize = 100_000;
    const TASKS: usize = 32;
    let c = Cluster::builder().datanodes(1).replication(1).start();
    block_on(async {
        let client = dfs_client::Client::connect(c.addr()).await.unwrap();
        client.mkdirs("/big", false).await.unwrap();
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                for i in (t..N).step_by(TASKS) {
                    let w = client
                        .create(&format!("/big/f{i:06}"), Default::default())
                        .await
                        .unwrap();
                    w.close().await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let m = Mount::new(&c, &[]);
    let names: Vec<String> = fs::read_dir(m.dir.join("big"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), N, "every entry listed exactly once");
    let expected: Vec<String> = (0..N).map(|i| format!("f{i:06}")).collect();
    assert_eq!(names, expected, "in name order, no duplicates or gaps");
    let st = fs::metadata(m.dir.join("big/f099999")).unwrap();
    assert!(st.is_file());
    assert_eq!(st.len(), 0);
}

/// `close()` returns once the pipeline acknowledged every byte: a file
/// closed just before the mount is SIGKILLed (its commit still pending)
/// keeps all its bytes, and lease recovery completes it.
#[test]
fn closed_file_survives_the_mount_being_killed() {
    let c = Cluster::builder()
        .namenode_args(&["--lease-soft-limit", "1s", "--lease-hard-limit", "3s"])
        .start();
    let mut m = Mount::new(&c, &[]);
    let data = random_bytes(3 * MIB + 123, 9);
    {
        let mut f = fs::File::create(m.dir.join("k")).unwrap();
        f.write_all(&data).unwrap();
    }
    m.proc.kill();
    m.unmount();
    let length = closed_by_lease_recovery(&c, "/k");
    assert_eq!(length, data.len() as u64, "closed bytes were lost");
    let back = c.dir.path().join("k-back");
    let out = c.dfs(&["get", "/k", back.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(fs::read(&back).unwrap(), data);
}

/// `statvfs` of `path`: (total bytes, available bytes).
fn statvfs_bytes(path: &Path) -> (u64, u64) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `vfs` a valid out-pointer.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut vfs) };
    assert_eq!(rc, 0, "statvfs {}", path.display());
    let frag = vfs.f_frsize as u64;
    (vfs.f_blocks as u64 * frag, vfs.f_bavail as u64 * frag)
}

/// statfs shows the cluster's capacity and free space; reads at any
/// offset, and several files read at once, return the right bytes; chown,
/// chmod and utimes, set after close (as rsync does) and on a file still
/// being written (as tar does), are stored and come back from getattr.
#[test]
fn statfs_random_and_parallel_reads_and_stored_attributes() {
    use std::os::unix::fs::FileExt;
    let c = Cluster::builder().start();
    let m = Mount::new(&c, &[]);

    // statfs: the namenode's capacity and free space.
    let stats = block_on(async {
        let client = dfs_client::Client::connect(c.addr()).await.unwrap();
        client.statfs().await.unwrap()
    });
    let (total, avail) = statvfs_bytes(&m.dir);
    assert!(stats.capacity > 0);
    assert_eq!(total, stats.capacity / 4096 * 4096, "df size");
    // Free space moves as other tests write the same disk.
    assert!(
        avail.abs_diff(stats.remaining) < stats.capacity / 10,
        "df free {avail} vs the cluster's {}",
        stats.remaining
    );

    // Reads at any offset of a file of several blocks.
    let big = c.local_file("big", 5 * MIB + 77, 41);
    c.dfs_ok(&["put", big.to_str().unwrap(), "/big"]);
    let want = fs::read(&big).unwrap();
    // (Read by two readers at once below, before anything else reads it.)
    c.dfs_ok(&["put", big.to_str().unwrap(), "/big2"]);
    let f = fs::File::open(m.dir.join("big")).unwrap();
    let mut seed = 12345u64;
    for _ in 0..60 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let offset = (seed >> 20) as usize % want.len();
        let len = ((seed >> 8) as usize % (300 * 1024)).min(want.len() - offset);
        let mut got = vec![0u8; len];
        f.read_exact_at(&mut got, offset as u64).unwrap();
        assert!(
            got == want[offset..offset + len],
            "read of {len} at {offset}"
        );
    }
    let mut past_end = [0u8; 16];
    assert_eq!(f.read_at(&mut past_end, want.len() as u64).unwrap(), 0);

    // Several files at once, and one file by several readers at once.
    let files: Vec<_> = (0..4)
        .map(|i| {
            let local = c.local_file(&format!("p{i}"), 2 * MIB + i * 1000, 50 + i as u64);
            c.dfs_ok(&["put", local.to_str().unwrap(), &format!("/p{i}")]);
            local
        })
        .collect();
    std::thread::scope(|s| {
        for (i, local) in files.iter().enumerate() {
            let path = m.dir.join(format!("p{i}"));
            s.spawn(move || assert_eq!(sha256_file(&path), sha256_file(local), "p{i}"));
        }
        for start in [0, 2 * MIB + 5] {
            let (path, want) = (m.dir.join("big2"), &want);
            s.spawn(move || {
                let f = fs::File::open(path).unwrap();
                let mut got = vec![0u8; 3 * MIB];
                let len = got.len().min(want.len() - start);
                f.read_exact_at(&mut got[..len], start as u64).unwrap();
                assert!(got[..len] == want[start..start + len], "reader at {start}");
            });
        }
    });

    // Attributes set after close, as rsync -a does.
    let after = m.dir.join("after");
    fs::write(&after, b"closed").unwrap();
    std::os::unix::fs::chown(&after, Some(1234), Some(5678)).unwrap();
    fs::set_permissions(&after, fs::Permissions::from_mode(0o640)).unwrap();
    let t1 = std::time::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    fs::File::options()
        .write(true)
        .open(&after)
        .and_then(|f| f.set_times(fs::FileTimes::new().set_modified(t1)))
        .unwrap_or_else(|e| panic!("utimes after close: {e}"));
    // Attributes set on a file being written, before close, as tar does.
    let during = m.dir.join("during");
    {
        let mut f = fs::File::create(&during).unwrap();
        f.write_all(b"being written").unwrap();
        std::os::unix::fs::fchown(&f, Some(4321), Some(8765)).unwrap();
        f.set_permissions(fs::Permissions::from_mode(0o600))
            .unwrap();
        f.set_times(fs::FileTimes::new().set_modified(t1 + Duration::from_secs(7)))
            .unwrap();
    }
    for (name, uid, gid, mode, mtime) in [
        ("after", 1234, 5678, 0o640, 1_600_000_000),
        ("during", 4321, 8765, 0o600, 1_600_000_007),
    ] {
        // From the mount, once the kernel's cached attributes expired
        // (1 s), and from the namenode.
        std::thread::sleep(Duration::from_millis(1100));
        let meta = fs::metadata(m.dir.join(name)).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o7777, meta.mtime()),
            (uid, gid, mode, mtime),
            "{name} through the mount"
        );
        // The namenode gets a written file's attributes with its commit,
        // which runs after close returned; attributes set before close go
        // in the close's own edit, so the file is never seen complete
        // without them.
        let mut st = serde_json::Value::Null;
        let (owner, group) = (uid.to_string(), gid.to_string());
        let stored = |st: &serde_json::Value| {
            st["owner"].as_str() == Some(owner.as_str())
                && st["group"].as_str() == Some(group.as_str())
                && st["mode"].as_u64().map(|m| m & 0o7777) == Some(u64::from(mode))
                && st["mtime"].as_i64() == Some(mtime * 1000)
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            st = c.dfs_json(&["stat", "--json", &format!("/{name}")]);
            if name == "during" && st["under_construction"] == false {
                assert!(stored(&st), "{name} complete without its attributes: {st}");
            }
            if stored(&st) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(stored(&st), "{name} at the namenode: {st}");
    }
    assert_eq!(fs::read(&during).unwrap(), b"being written");
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

/// fsync returns once the bytes written so far are on every datanode of
/// the pipeline: another client then sees the length while the file is
/// still open, and when the mount is killed before close, lease recovery
/// (which keeps the length every replica has) closes the file with every
/// fsynced byte.
#[test]
fn fsynced_bytes_are_visible_and_survive_the_mount_being_killed() {
    let c = Cluster::builder()
        .namenode_args(&["--lease-soft-limit", "1s", "--lease-hard-limit", "3s"])
        .start();
    let mut m = Mount::new(&c, &[]);
    let data = random_bytes(2 * MIB + 321, 77);
    let mut f = fs::File::create(m.dir.join("s")).unwrap();
    f.write_all(&data).unwrap();
    f.sync_all().unwrap();
    let st = c.dfs_json(&["stat", "--json", "/s"]);
    assert_eq!(st["length"].as_u64(), Some(data.len() as u64), "{st}");
    assert_eq!(st["under_construction"], true, "{st}");
    // Bytes written after the fsync may or may not survive; those before must.
    f.write_all(&random_bytes(1000, 78)).unwrap();

    m.proc.kill();
    drop(f);
    m.unmount();
    let length = closed_by_lease_recovery(&c, "/s");
    assert!(length >= data.len() as u64, "fsynced bytes were lost");
    let back = c.dir.path().join("s-back");
    c.dfs_ok(&["get", "/s", back.to_str().unwrap()]);
    let back = fs::read(&back).unwrap();
    assert!(
        back.len() >= data.len() && back[..data.len()] == data[..],
        "fsynced bytes came back different"
    );
}
