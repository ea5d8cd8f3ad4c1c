//! Reading and listing through the mount: directories read ahead in name
//! order, 100,000 entries in pages, statfs, random and parallel reads, and
//! the attributes getattr returns.

use super::*;

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
                    // Empty files: no first block to allocate and abandon
                    // (two calls and edits per file fewer).
                    let opts = dfs_client::CreateOptions {
                        lazy_first_block: true,
                        ..Default::default()
                    };
                    let w = client.create(&format!("/big/f{i:06}"), opts).await.unwrap();
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
/// being written (as tar does), are stored and come back from getattr,
/// times before the epoch included; a write after utimes moves the mtime on.
#[test]
fn statfs_random_and_parallel_reads_and_stored_attributes() {
    use std::os::unix::fs::FileExt;
    let c = Cluster::builder().start();
    // Every namenode call the mount makes is logged.
    let m = Mount::with_log(&c, &[], "info,dfs_client::namenode=trace");

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
    // A time before the epoch (tarballs of old files, `touch -d 1969-...`).
    let old = m.dir.join("old");
    fs::write(&old, b"old").unwrap();
    std::os::unix::fs::chown(&old, Some(1111), Some(2222)).unwrap();
    fs::set_permissions(&old, fs::Permissions::from_mode(0o644)).unwrap();
    fs::File::options()
        .write(true)
        .open(&old)
        .and_then(|f| {
            f.set_times(
                fs::FileTimes::new()
                    .set_modified(std::time::UNIX_EPOCH - Duration::from_secs(3600)),
            )
        })
        .unwrap_or_else(|e| panic!("utimes before the epoch: {e}"));
    // A write after an explicit time moves the mtime on, as on a local disk.
    let rewritten = m.dir.join("written-after-utimes");
    let before_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    {
        let mut f = fs::File::create(&rewritten).unwrap();
        f.write_all(b"first ").unwrap();
        f.set_times(fs::FileTimes::new().set_modified(t1)).unwrap();
        f.write_all(b"then more").unwrap();
    }
    std::thread::sleep(Duration::from_millis(1100));
    let meta = fs::metadata(&rewritten).unwrap();
    assert!(
        meta.mtime() * 1000 + 1000 >= before_ms,
        "mtime after a write that followed utimes, through the mount: {}",
        meta.mtime()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut st = c.dfs_json(&["stat", "--json", "/written-after-utimes"]);
    while st["under_construction"] != false && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        st = c.dfs_json(&["stat", "--json", "/written-after-utimes"]);
    }
    assert!(
        st["mtime"].as_i64().is_some_and(|t| t >= before_ms - 1000),
        "mtime after a write that followed utimes, at the namenode: {st}"
    );
    for (name, uid, gid, mode, mtime) in [
        ("after", 1234, 5678, 0o640, 1_600_000_000),
        ("during", 4321, 8765, 0o600, 1_600_000_007),
        ("old", 1111, 2222, 0o644, -3600),
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
        // Attributes set before close are stored by the close (FLUSH),
        // and go in the commit's own edit as well, so the file is never
        // seen complete without them.
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
            let complete = st["under_construction"] == false;
            if name == "during" && complete {
                assert!(stored(&st), "{name} complete without its attributes: {st}");
            }
            if stored(&st) && complete {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(stored(&st), "{name} at the namenode: {st}");
        assert_eq!(
            st["under_construction"], false,
            "{name} never completed: {st}"
        );
    }
    assert_eq!(fs::read(&during).unwrap(), b"being written");
    // The three attributes set before close were stored together, by one
    // SetAttr at the close (the file set after close had one per change).
    // The mount names a file it knows by its inode path
    // (`/.reserved/.inodes/ID`), a writer by its path.
    let setattrs = |path: &str| {
        let inode = c.dfs_json(&["stat", "--json", path])["inode"]
            .as_u64()
            .unwrap_or_default();
        let by_inode = dfs_proto::path::inode_path(inode, None);
        m.log()
            .lines()
            .filter(|l| {
                l.contains("namenode call")
                    && l.contains("op=\"SetAttr\"")
                    && (l.contains(&format!("path=\"{path}\""))
                        || l.contains(&format!("path=\"{by_inode}\"")))
            })
            .count()
    };
    assert!(
        setattrs("/after") > 0,
        "no SetAttr call logged: {}",
        m.log()
    );
    assert_eq!(setattrs("/during"), 1, "{}", m.log());
}

/// Open files read as on a local disk, within the write-once model. A
/// file this mount is still writing reads only bytes that were written,
/// never zeros: up to what was visible when it was opened, both before
/// and after the writer closes it, and the next open reads it whole.
/// (Before, a read past the visible bytes left zero-filled pages in the
/// page cache, which every later reader of the complete file got.) A file
/// removed or replaced while open still answers fstat and, until the
/// datanodes delete its blocks, reads to its end: with no attribute
/// caching, every read near the end asks for the size again, by handle.
#[test]
fn open_files_read_only_written_bytes_and_outlive_their_name() {
    let c = Cluster::builder().start();
    let m = Mount::new(&c, &["--attr-timeout", "0s"]);
    let p = m.dir.join("growing");
    let data = random_bytes(3_000_001, 77);
    let mut w = fs::File::create(&p).unwrap();
    w.write_all(&data[..3_000_000]).unwrap();
    let is_prefix = |got: &[u8], what: &str| {
        assert!(
            got.len() <= data.len() && got == &data[..got.len()],
            "{what}: {} bytes that are not the file's first ones",
            got.len()
        );
    };
    let mut r = fs::File::open(&p).unwrap();
    let mut got = Vec::new();
    r.read_to_end(&mut got).unwrap();
    is_prefix(&got, "read while written");
    w.write_all(&data[3_000_000..]).unwrap();
    drop(w);
    r.seek(SeekFrom::Start(0)).unwrap();
    got.clear();
    r.read_to_end(&mut got).unwrap();
    is_prefix(&got, "read after the close through the earlier descriptor");
    drop(r);
    assert!(
        fs::read(&p).unwrap() == data,
        "a new open reads the whole file"
    );

    // Removed, and replaced by a rename, while open.
    let want = random_bytes(3 * MIB + 5, 78);
    for how in ["unlink", "rename over"] {
        let p = m.dir.join("open-then-gone");
        fs::write(&p, &want).unwrap();
        let mut f = fs::File::open(&p).unwrap();
        let mut head = vec![0u8; 1000];
        f.read_exact(&mut head).unwrap();
        if how == "unlink" {
            fs::remove_file(&p).unwrap();
        } else {
            let other = m.dir.join("other");
            fs::write(&other, b"another file").unwrap();
            fs::rename(&other, &p).unwrap();
        }
        assert_eq!(
            f.metadata().unwrap().len(),
            want.len() as u64,
            "fstat after {how}"
        );
        let mut rest = Vec::new();
        match f.read_to_end(&mut rest) {
            Ok(_) => {
                head.extend_from_slice(&rest);
                assert!(head == want, "the open file's bytes after {how}");
            }
            // The blocks are deleted already (heartbeats may be quick).
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "after {how}: {e}"),
        }
    }
}

/// The kernel keeps one page cache per inode, and a file replaced on the
/// same mount (O_TRUNC, or a truncate to 0 as `cp` sends) keeps its inode.
/// A descriptor opened on the old file can no longer read: the old bytes
/// would land in the new file's page cache and every later reader would
/// get them (found by an explorer: `cmp` of the new file differed from
/// byte 1 until the pages were evicted).
#[test]
fn a_file_replaced_on_this_mount_is_not_read_through_descriptors_of_the_old_one() {
    use std::os::fd::AsRawFd;
    let c = Cluster::builder().start();
    let m = Mount::new(&c, &[]);
    let p = m.dir.join("replaced");
    for (round, how) in ["O_TRUNC", "truncate to 0"].into_iter().enumerate() {
        let old = random_bytes(3 * MIB + 7, 90 + round as u64);
        let new = random_bytes(3 * MIB + 7, 95 + round as u64);
        fs::write(&p, &old).unwrap();
        let mut reader = fs::File::open(&p).unwrap();
        let mut head = vec![0u8; 4096];
        reader.read_exact(&mut head).unwrap();
        assert!(head[..] == old[..4096], "{how}: the old file's first bytes");
        if how == "O_TRUNC" {
            fs::write(&p, &new).unwrap();
        } else {
            let mut w = fs::OpenOptions::new().write(true).open(&p).unwrap();
            w.set_len(0).unwrap();
            w.write_all(&new).unwrap();
        }
        // Drop the new file's pages, so reads go to the mount again.
        let f = fs::File::open(&p).unwrap();
        // SAFETY: a valid descriptor, and advice changes no memory of ours.
        let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0);
        drop(f);
        let mut rest = Vec::new();
        let e = reader.read_to_end(&mut rest).unwrap_err();
        assert_eq!(
            e.raw_os_error(),
            Some(libc::ESTALE),
            "{how}: old descriptor: {e}"
        );
        drop(reader);
        assert!(
            fs::read(&p).unwrap() == new,
            "{how}: the new file reads back whole"
        );
    }
    assert!(
        m.log().contains("the file was replaced on this mount"),
        "the mount says why"
    );
}
