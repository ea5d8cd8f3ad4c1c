//! Write-once through the mount: refused random writes and appends, and
//! what close and fsync promise when the mount is killed.

use super::*;

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
    // Truncating a file being written to a size other than its length.
    let growing = m.dir.join("growing");
    let mut f = fs::File::create(&growing).unwrap();
    f.write_all(b"0123456789").unwrap();
    let e = f.set_len(0).unwrap_err();
    assert!(is_refused(&e), "ftruncate of a file being written: {e:?}");
    f.set_len(10).unwrap();
    f.write_all(b"abc").unwrap();
    drop(f);
    assert_eq!(fs::read(&growing).unwrap(), b"0123456789abc");
    let log = m.log();
    assert!(
        log.contains("a file being written only grows by writes at its end"),
        "the mount should log why: {log}"
    );

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
    // A write through a shared mapping reaches the mount only as the
    // pages' writeback, after the program changed them in the page cache:
    // refused, the mount has the kernel drop those pages, so no reader
    // sees bytes that were never stored (before: until memory pressure).
    sh(&format!(
        "python3 -c 'import mmap, os; fd = os.open(\"{}\", os.O_RDWR); \
         m = mmap.mmap(fd, 0); m[0:6] = b\"HACKED\"; m.close(); os.close(fd)'",
        closed.display()
    ));
    let deadline = Instant::now() + Duration::from_secs(5);
    while fs::read(&closed).unwrap() != b"immutable" {
        assert!(
            Instant::now() < deadline,
            "readers still see the refused bytes: {:?}",
            String::from_utf8_lossy(&fs::read(&closed).unwrap())
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = m.log();
    assert!(log.contains("closed"), "the mount should log why: {log}");
}

/// A file being written through the mount whose directory another client
/// renames goes on and is closed at its new path: the writer names the
/// file by its inode id (HDFS's fileId), not by the path it opened.
/// Before, its next block and its close failed (the old path was gone)
/// and the file stayed open, read as empty, until lease recovery.
#[test]
fn a_file_whose_directory_is_renamed_while_written_is_closed_at_its_new_path() {
    let c = Cluster::builder().start();
    let m = Mount::new(&c, &[]);
    fs::create_dir(m.dir.join("d")).unwrap();
    let data = random_bytes(3 * MIB + 77, 31);
    let mut f = fs::File::create(m.dir.join("d/f")).unwrap();
    f.write_all(&data[..MIB + 5]).unwrap();
    f.sync_all().unwrap();
    let out = c.dfs(&["mv", "/d", "/e"]);
    assert!(out.status.success(), "{out:?}");
    // The next blocks are allocated, and the file closed, after the rename.
    f.write_all(&data[MIB + 5..]).unwrap();
    drop(f);
    // close() returned with every byte acknowledged; the mount's commit
    // (Complete) follows it.
    let length = wait_closed(&c, "/e/f", Duration::from_secs(20), "the mount");
    assert_eq!(length, data.len() as u64);
    let back = c.dir.path().join("f-back");
    let out = c.dfs(&["get", "/e/f", back.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert!(fs::read(&back).unwrap() == data, "wrong bytes at /e/f");
    assert!(
        fs::read(m.dir.join("e/f")).unwrap() == data,
        "wrong bytes at e/f on the mount"
    );
}

/// On the mount itself, a file may be renamed while it is written, and so
/// may a directory above it (logrotate renames a log its program keeps
/// writing): the writer goes on, attributes set after the rename are
/// stored, and the file is closed at its new path with every byte. A file
/// being written that a rename replaces is abandoned, as after an unlink.
/// Before, each of these renames failed with EBUSY.
#[test]
fn files_being_written_can_be_renamed_on_the_mount() {
    let c = Cluster::builder().start();
    let m = Mount::new(&c, &[]);
    fs::create_dir(m.dir.join("d")).unwrap();
    let data = random_bytes(3 * MIB + 77, 41);
    let mut log = fs::File::create(m.dir.join("d/app.log")).unwrap();
    log.write_all(&data[..MIB]).unwrap();
    // logrotate: the log moves aside, a new one takes its name.
    fs::rename(m.dir.join("d/app.log"), m.dir.join("d/app.log.1")).unwrap();
    let mut fresh = fs::File::create(m.dir.join("d/app.log")).unwrap();
    fresh.write_all(b"after the rotation\n").unwrap();
    log.write_all(&data[MIB..2 * MIB]).unwrap();
    // The directory moves too, while both are open.
    fs::rename(m.dir.join("d"), m.dir.join("e")).unwrap();
    log.write_all(&data[2 * MIB..]).unwrap();
    let mtime = std::time::UNIX_EPOCH + Duration::from_secs(978_307_200);
    log.set_permissions(fs::Permissions::from_mode(0o640))
        .unwrap();
    log.set_times(fs::FileTimes::new().set_modified(mtime))
        .unwrap();
    log.sync_all().unwrap();
    drop(log);
    drop(fresh);
    let length = wait_closed(&c, "/e/app.log.1", Duration::from_secs(20), "the mount");
    assert_eq!(length, data.len() as u64);
    let got = c.dfs(&["cat", "/e/app.log.1"]);
    assert!(got.status.success(), "{got:?}");
    assert!(got.stdout == data, "wrong bytes at /e/app.log.1");
    let st = c.dfs_json(&["stat", "--json", "/e/app.log.1"]);
    assert_eq!(st["mode"].as_u64(), Some(0o640), "{st}");
    assert_eq!(st["mtime"].as_i64(), Some(978_307_200_000), "{st}");
    wait_closed(&c, "/e/app.log", Duration::from_secs(20), "the mount");
    assert_eq!(
        fs::read(m.dir.join("e/app.log")).unwrap(),
        b"after the rotation\n"
    );

    // A rename onto a file being written replaces it: the writer's bytes
    // are abandoned, the renamed file is what the name holds.
    let mut open = fs::File::create(m.dir.join("e/target")).unwrap();
    open.write_all(&random_bytes(200_000, 42)).unwrap();
    fs::write(m.dir.join("e/new"), b"the new target").unwrap();
    fs::rename(m.dir.join("e/new"), m.dir.join("e/target")).unwrap();
    open.write_all(b"more").unwrap();
    drop(open);
    assert_eq!(fs::read(m.dir.join("e/target")).unwrap(), b"the new target");
    let got = c.dfs(&["cat", "/e/target"]);
    assert!(got.status.success(), "{got:?}");
    assert_eq!(got.stdout, b"the new target");
    let st = c.dfs_json(&["stat", "--json", "/e/target"]);
    assert_eq!(st["under_construction"], false, "{st}");

    // Another client moves a file the mount writes (logrotate on another
    // host); the mount's rename onto the old name then replaces nothing of
    // it, though the kernel still caches that name for it.
    let data = random_bytes(300_000, 43);
    let mut w = fs::File::create(m.dir.join("e/w")).unwrap();
    w.write_all(&data[..100_000]).unwrap();
    c.dfs_ok(&["mv", "/e/w", "/e/w.1"]);
    fs::write(m.dir.join("e/tmp"), b"tmp").unwrap();
    fs::rename(m.dir.join("e/tmp"), m.dir.join("e/w")).unwrap();
    w.write_all(&data[100_000..]).unwrap();
    drop(w);
    let length = wait_closed(&c, "/e/w.1", Duration::from_secs(20), "the mount");
    assert_eq!(length, data.len() as u64, "the moved file was abandoned");
    let got = c.dfs(&["cat", "/e/w.1"]);
    assert!(
        got.status.success() && got.stdout == data,
        "wrong bytes at /e/w.1"
    );
    assert_eq!(c.dfs_ok(&["cat", "/e/w"]), "tmp");
    let names: Vec<String> = fs::read_dir(m.dir.join("e"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 5, "{names:?}");
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

/// The bytes of a file whose `close()` returned on a mount are readable by
/// every other client at once, before the mount's commit lands: a reader
/// asks the pipeline how much of the block being written is acknowledged
/// (as HDFS readers do), so `dfs get` and another mount read the whole
/// file, not the namenode's length of it (0 here).
#[test]
fn bytes_closed_on_a_mount_are_readable_by_other_clients_before_the_commit() {
    let c = Cluster::builder().start();
    let m = Mount::new(&c, &[]);
    let data = random_bytes(MIB + 4321, 31);
    let mut f = fs::File::create(m.dir.join("c")).unwrap();
    // A second descriptor keeps the file open: the first one's close()
    // returns at FLUSH, and no RELEASE, so no commit, follows.
    let keep = f.try_clone().unwrap();
    f.write_all(&data).unwrap();
    drop(f);
    let st = c.dfs_json(&["stat", "--json", "/c"]);
    assert_eq!(st["under_construction"], true, "{st}");
    assert!(st["length"].as_u64() < Some(data.len() as u64), "{st}");
    let back = c.dir.path().join("c-back");
    c.dfs_ok(&["get", "/c", back.to_str().unwrap()]);
    assert_eq!(sha256_file(&back), sha256(&data), "dfs get");
    let other = Mount::new(&c, &[]);
    assert_eq!(
        sha256(&fs::read(other.dir.join("c")).unwrap()),
        sha256(&data),
        "another mount"
    );
    drop(keep);
}

/// Attributes set on a file while it is written (tar sets mode and times
/// before close) are on the namenode when close() returns: the mount
/// SIGKILLed before the file's commit loses neither them nor the bytes,
/// and lease recovery keeps the mtime that was set.
#[test]
fn attributes_set_before_close_survive_the_mount_being_killed() {
    let c = Cluster::builder()
        .namenode_args(&["--lease-soft-limit", "1s", "--lease-hard-limit", "3s"])
        .start();
    let mut m = Mount::new(&c, &[]);
    let data = random_bytes(100_000, 21);
    let mtime = std::time::UNIX_EPOCH + Duration::from_secs(978_307_200); // 2001-01-01
    let mut f = fs::File::create(m.dir.join("t")).unwrap();
    // A second descriptor keeps the file open: closing the first sends
    // FLUSH (what close() waits for) but no RELEASE, so no commit starts
    // before the mount dies.
    let keep = f.try_clone().unwrap();
    f.write_all(&data).unwrap();
    f.set_permissions(fs::Permissions::from_mode(0o751))
        .unwrap();
    f.set_times(fs::FileTimes::new().set_modified(mtime))
        .unwrap();
    drop(f);
    m.proc.kill();
    drop(keep);
    m.unmount();
    let length = closed_by_lease_recovery(&c, "/t");
    assert_eq!(length, data.len() as u64, "closed bytes were lost");
    let st = c.dfs_json(&["stat", "--json", "/t"]);
    assert_eq!(st["mode"].as_u64(), Some(0o751), "{st}");
    assert_eq!(st["mtime"].as_i64(), Some(978_307_200_000), "{st}");
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

/// A file written and closed is complete for the next open even when the
/// kernel's RELEASE comes after it: overwriting it at once replaces it,
/// appending to it at once is refused, every time; `truncate -s 0` right
/// after close replaces it too. Two opens with O_TRUNC at once share one
/// writer: the bytes written through the first stay.
#[test]
fn the_next_open_after_close_sees_the_complete_file() {
    let c = Cluster::builder().datanodes(1).replication(1).start();
    let m = Mount::new(&c, &[]);
    let f = m.dir.join("again");
    for i in 0..20 {
        fs::write(&f, format!("first {i}")).unwrap();
        fs::write(&f, format!("second {i}"))
            .unwrap_or_else(|e| panic!("overwrite {i} right after close: {e}"));
        let e = fs::OpenOptions::new()
            .append(true)
            .open(&f)
            .and_then(|mut h| h.write_all(b" more"))
            .unwrap_err();
        assert!(is_refused(&e), "append {i} right after close: {e}");
        assert_eq!(fs::read_to_string(&f).unwrap(), format!("second {i}"));
        fs::write(&f, format!("third {i}")).unwrap();
        fs::OpenOptions::new()
            .write(true)
            .open(&f)
            .and_then(|h| h.set_len(0))
            .unwrap_or_else(|e| panic!("truncate {i} right after close: {e}"));
        assert_eq!(fs::read(&f).unwrap(), b"", "truncated {i}");
    }
    for i in 0..5 {
        fs::write(&f, b"old contents").unwrap();
        let barrier = std::sync::Barrier::new(2);
        let (a, b) = std::thread::scope(|s| {
            let open = || {
                barrier.wait();
                fs::OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(&f)
                    .unwrap_or_else(|e| panic!("round {i}: open with O_TRUNC: {e}"))
            };
            let a = s.spawn(open);
            let b = s.spawn(open);
            (a.join().unwrap(), b.join().unwrap())
        });
        let (mut a, mut b) = (a, b);
        a.write_all(b"from the first").unwrap();
        // The second descriptor's offset is 0, no longer the end.
        let e = b.write_all(b"from the second").unwrap_err();
        assert!(is_refused(&e), "round {i}: {e}");
        drop(a);
        drop(b);
        assert_eq!(fs::read(&f).unwrap(), b"from the first", "round {i}");
    }
}

/// What dfs does not have is refused with a clear errno and a log line:
/// symbolic and hard links and special files (EPERM), extended
/// attributes (EOPNOTSUPP, which programs such as `cp --preserve=all`
/// skip); setuid and setgid are dropped, as HDFS keeps only rwx and the
/// sticky bit.
#[test]
fn links_special_files_xattrs_and_setuid_are_refused_or_dropped() {
    let c = Cluster::builder().start();
    let m = Mount::new(&c, &[]);
    let f = m.dir.join("f");
    fs::write(&f, b"data").unwrap();
    let eperm = |r: std::io::Result<()>, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{what}: {e}");
    };
    eperm(
        std::os::unix::fs::symlink("f", m.dir.join("sym")),
        "symlink",
    );
    eperm(fs::hard_link(&f, m.dir.join("hard")), "hard link");
    let fifo = std::ffi::CString::new(m.dir.join("fifo").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    let rc = unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) };
    assert_eq!(rc, -1);
    eperm(Err(std::io::Error::last_os_error()), "mkfifo");
    let path = std::ffi::CString::new(f.to_str().unwrap()).unwrap();
    // SAFETY: valid NUL-terminated strings and a valid buffer.
    let rc = unsafe {
        libc::setxattr(
            path.as_ptr(),
            c"user.test".as_ptr(),
            b"v".as_ptr().cast(),
            1,
            0,
        )
    };
    assert_eq!(rc, -1);
    let e = std::io::Error::last_os_error();
    assert_eq!(e.raw_os_error(), Some(libc::EOPNOTSUPP), "setxattr: {e}");
    fs::set_permissions(&f, fs::Permissions::from_mode(0o4755)).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(fs::metadata(&f).unwrap().mode() & 0o7777, 0o755);
    let st = c.dfs_json(&["stat", "--json", "/f"]);
    assert_eq!(st["mode"].as_u64().map(|m| m & 0o7777), Some(0o755), "{st}");
    let log = m.log();
    for why in [
        "no symbolic links",
        "no hard links",
        "no devices, fifos or sockets",
    ] {
        assert!(log.contains(why), "the mount logs '{why}': {log}");
    }
    assert!(
        !m.dir.join("sym").exists() && !m.dir.join("hard").exists() && !m.dir.join("fifo").exists()
    );
}

/// Another client's changes never make the mount act on the wrong entry,
/// however stale the kernel's view (long entry and attribute timeouts):
/// - an unlink of a name that another client turned into a directory fails
///   with EISDIR, an rmdir of one turned into a file with ENOTDIR, and
///   both entries are kept (the mount used to delete them);
/// - through a descriptor of a directory that another client renamed (and
///   replaced by a new one at its old path), unlinkat, openat(O_CREAT) and
///   mkdirat act in that directory, at its new path, and the new directory
///   at the old path is untouched (the mount used to act on it).
#[test]
fn changes_by_another_client_never_make_the_mount_act_on_the_wrong_entry() {
    use std::ffi::CString;
    use std::os::fd::AsRawFd;
    let c = Cluster::builder().start();
    let m = Mount::new(&c, &["--entry-timeout", "60s", "--attr-timeout", "60s"]);
    let precious = c.local_file("precious", 5000, 31);
    let other = c.local_file("other", 3000, 32);

    c.dfs_ok(&["mkdir", "-p", "/t/d"]);
    c.dfs_ok(&["touchz", "/t/f"]);
    assert!(fs::metadata(m.dir.join("t/f")).unwrap().is_file());
    assert!(fs::metadata(m.dir.join("t/d")).unwrap().is_dir());
    c.dfs_ok(&["rm", "/t/f"]);
    c.dfs_ok(&["mkdir", "/t/f"]);
    c.dfs_ok(&["rm", "-r", "/t/d"]);
    c.dfs_ok(&["put", precious.to_str().unwrap(), "/t/d"]);
    let unlink = fs::remove_file(m.dir.join("t/f")).unwrap_err();
    assert_eq!(unlink.raw_os_error(), Some(libc::EISDIR), "{unlink}");
    let rmdir = fs::remove_dir(m.dir.join("t/d")).unwrap_err();
    assert_eq!(rmdir.raw_os_error(), Some(libc::ENOTDIR), "{rmdir}");
    let st = c.dfs_json(&["stat", "--json", "/t/f"]);
    assert_eq!(st["type"], "dir", "{st}");
    let got = c.dir.path().join("d.out");
    c.dfs_ok(&["get", "/t/d", got.to_str().unwrap()]);
    assert_eq!(sha256_file(&got), sha256_file(&precious));

    c.dfs_ok(&["mkdir", "-p", "/u/a"]);
    c.dfs_ok(&["put", other.to_str().unwrap(), "/u/a/victim"]);
    let dir = fs::File::open(m.dir.join("u/a")).unwrap();
    c.dfs_ok(&["mv", "/u/a", "/u/b"]);
    c.dfs_ok(&["mkdir", "/u/a"]);
    c.dfs_ok(&["put", precious.to_str().unwrap(), "/u/a/victim"]);
    let name = |s: &str| CString::new(s).unwrap();
    // SAFETY: a valid descriptor and NUL-terminated names.
    let rc = unsafe { libc::unlinkat(dir.as_raw_fd(), name("victim").as_ptr(), 0) };
    assert_eq!(rc, 0, "unlinkat: {}", std::io::Error::last_os_error());
    // SAFETY: as above; the descriptor returned is closed below.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name("created").as_ptr(),
            libc::O_CREAT | libc::O_WRONLY | libc::O_EXCL,
            0o644,
        )
    };
    assert!(fd >= 0, "openat: {}", std::io::Error::last_os_error());
    // SAFETY: fd is a descriptor openat just returned.
    let mut created = unsafe { <fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    created.write_all(b"in the renamed directory").unwrap();
    drop(created);
    // SAFETY: as above.
    let rc = unsafe { libc::mkdirat(dir.as_raw_fd(), name("sub").as_ptr(), 0o755) };
    assert_eq!(rc, 0, "mkdirat: {}", std::io::Error::last_os_error());
    drop(dir);
    let names = |p: &str| -> Vec<String> {
        let mut v: Vec<String> = c
            .dfs_json(&["ls", "--json", p])
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names("/u/a"),
        ["/u/a/victim"],
        "the new directory was touched"
    );
    assert_eq!(names("/u/b"), ["/u/b/created", "/u/b/sub"]);
    let got = c.dir.path().join("victim.out");
    c.dfs_ok(&["get", "/u/a/victim", got.to_str().unwrap()]);
    assert_eq!(sha256_file(&got), sha256_file(&precious));
    assert_eq!(
        c.dfs_ok(&["cat", "/u/b/created"]),
        "in the renamed directory"
    );
}

/// A name another client creates is seen at once, though this mount
/// looked it up as absent just before: the absence is not cached (as in
/// MooseFS and libfuse, `--negative-timeout 0s`), so `mkdir -p` racing
/// another client's works, and a mkdir that fails with EEXIST is followed
/// by a stat that finds the directory. With absence cached
/// (`--negative-timeout 60s`), a MKDIR, CREATE or RENAME that finds the
/// name existing has the kernel drop its cached absence.
#[test]
fn names_created_by_another_client_are_seen_at_once_and_mkdir_p_races_work() {
    let c = Cluster::builder().start();
    c.dfs_ok(&["mkdir", "/n"]);
    let m = Mount::new(&c, &["--entry-timeout", "60s", "--attr-timeout", "60s"]);
    let absent = |p: &str| {
        let e = fs::metadata(m.dir.join(p)).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{p}: {e}");
    };
    absent("n/f");
    absent("n/d");
    c.dfs_ok(&["touchz", "/n/f"]);
    c.dfs_ok(&["mkdir", "/n/d"]);
    assert!(fs::metadata(m.dir.join("n/f")).unwrap().is_file());
    let e = fs::create_dir(m.dir.join("n/d")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EEXIST), "{e}");
    assert!(fs::metadata(m.dir.join("n/d")).unwrap().is_dir());
    // Several clients racing on one mkdir -p: each succeeds.
    let m2 = Mount::new(&c, &[]);
    for round in 0..5 {
        let p = format!("r{round}/a/b/c");
        let mut kids: Vec<std::process::Child> = [&m.dir, &m2.dir]
            .iter()
            .map(|d| {
                Command::new("mkdir")
                    .arg("-p")
                    .arg(d.join("n").join(&p))
                    .spawn()
                    .unwrap()
            })
            .collect();
        let cli = c.dfs(&["mkdir", "-p", &format!("/n/{p}")]);
        assert!(cli.status.success(), "dfs mkdir -p /n/{p}: {cli:?}");
        for k in &mut kids {
            assert!(k.wait().unwrap().success(), "mkdir -p n/{p} failed");
        }
    }

    // Absence cached: the kernel's entry is dropped on EEXIST.
    let m3 = Mount::new(&c, &["--entry-timeout", "60s", "--negative-timeout", "60s"]);
    let e = fs::metadata(m3.dir.join("n/e")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{e}");
    c.dfs_ok(&["mkdir", "/n/e"]);
    let e = fs::create_dir(m3.dir.join("n/e")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EEXIST), "{e}");
    dfs_tests::wait_until(Duration::from_secs(5), "n/e to be seen", || {
        fs::metadata(m3.dir.join("n/e")).is_ok_and(|m| m.is_dir())
    });
}

/// A directory that another client renamed (and replaced by a new one at
/// its old path) stays usable through a descriptor opened before, after
/// the attribute timeout too: fstat works, a file opened in it is the one
/// that moved with it, and a chmod of that file changes it, not the file
/// that took its old path (the mount used its old path: ENOENT, or the
/// other file).
#[test]
fn a_directory_renamed_by_another_client_stays_usable_through_open_descriptors() {
    use std::ffi::CString;
    use std::os::fd::{AsRawFd, FromRawFd};
    let c = Cluster::builder().start();
    let m = Mount::new(&c, &[]);
    let orig = c.local_file("orig", 3000, 81);
    let other = c.local_file("other", 2000, 82);
    c.dfs_ok(&["mkdir", "-p", "/t1/d1/s"]);
    c.dfs_ok(&["put", orig.to_str().unwrap(), "/t1/d1/s/f"]);
    let dir = fs::File::open(m.dir.join("t1/d1/s")).unwrap();
    c.dfs_ok(&["mv", "/t1/d1", "/t1/d2"]);
    c.dfs_ok(&["mkdir", "-p", "/t1/d1/s"]);
    c.dfs_ok(&["put", other.to_str().unwrap(), "/t1/d1/s/f"]);
    // Past the attribute and entry timeouts (1 s).
    std::thread::sleep(Duration::from_millis(1500));
    assert!(dir.metadata().unwrap().is_dir());
    let name = CString::new("f").unwrap();
    // SAFETY: a valid descriptor and a NUL-terminated name.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), libc::O_RDONLY) };
    assert!(fd >= 0, "openat: {}", std::io::Error::last_os_error());
    // SAFETY: fd was just returned by openat.
    let mut f = unsafe { fs::File::from_raw_fd(fd) };
    let mut got = Vec::new();
    f.read_to_end(&mut got).unwrap();
    assert_eq!(sha256(&got), sha256_file(&orig), "read the wrong file");
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .unwrap();
    let moved = c.dfs_json(&["stat", "--json", "/t1/d2/s/f"]);
    let stayed = c.dfs_json(&["stat", "--json", "/t1/d1/s/f"]);
    assert_eq!(moved["mode"], 0o600, "{moved}");
    assert_ne!(stayed["mode"], 0o600, "chmod hit the other file: {stayed}");
}

/// A file closed on one mount can be replaced (O_TRUNC) from another at
/// once: its commit, in flight for a few ms after `close()` returned, is
/// waited for (up to 2 s), where the replace failed with EBUSY (explorer:
/// 10 of 10 tries).
#[test]
fn a_file_closed_on_one_mount_is_replaced_from_another_at_once() {
    let c = Cluster::builder().start();
    let a = Mount::new(&c, &[]);
    let b = Mount::new(&c, &[]);
    for round in 0..10u64 {
        let first = random_bytes(100_000, 90 + round);
        let second = random_bytes(50_000, 190 + round);
        fs::write(a.dir.join("f"), &first).unwrap();
        let mut f = fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(b.dir.join("f"))
            .unwrap_or_else(|e| panic!("round {round}: O_TRUNC from the other mount: {e}"));
        f.write_all(&second).unwrap();
        drop(f);
        let got = c.dfs(&["cat", "/f"]);
        assert!(got.status.success(), "round {round}: {got:?}");
        assert!(got.stdout == second, "round {round}: wrong bytes");
    }
}

/// Every byte a writer's close() returned for is read at once on another
/// mount, which looked the file up (`stat`) first: the kernel there was
/// told the size the namenode knew while the file was being written, and
/// kept it; read through its page cache, the file ended there (explorer:
/// 4 of 20 short reads). Such a file is now read directly, and the
/// namenode lists a last block a Complete committed while it waits for a
/// replica report, which it left out.
#[test]
fn a_file_closed_on_one_mount_reads_whole_on_another_at_once() {
    let c = Cluster::builder().block_size(MIB as u64).start();
    let a = Mount::new(&c, &[]);
    let b = Mount::new(&c, &[]);
    fs::create_dir(a.dir.join("x")).unwrap();
    for i in 0..24u64 {
        let size = [3 * MIB + 1234, 1_500_000, 70_000, 2 * MIB][i as usize % 4];
        let data = random_bytes(size, 500 + i);
        let name = format!("x/f{i}");
        fs::write(a.dir.join(&name), &data).unwrap();
        let _ = fs::metadata(b.dir.join(&name)).unwrap();
        let got = fs::read(b.dir.join(&name)).unwrap();
        assert_eq!(
            got.len(),
            data.len(),
            "file {i} read short on the other mount"
        );
        assert!(got == data, "file {i}: wrong bytes");
    }
}

/// A file whose writer died (its mount killed before close) is refused to
/// another mount's `cp` while the writer's lease may still be renewed, and
/// replaced once it is past the soft limit, without waiting for the hard
/// limit (20 min by default) to close it.
#[test]
fn a_file_whose_writer_died_is_replaced_after_the_soft_limit() {
    let c = Cluster::builder()
        .namenode_args(&["--lease-soft-limit", "8s", "--lease-hard-limit", "10m"])
        .start();
    let mut a = Mount::new(&c, &[]);
    let b = Mount::new(&c, &[]);
    let mut f = fs::File::create(a.dir.join("f")).unwrap();
    f.write_all(&random_bytes(100_000, 31)).unwrap();
    f.sync_all().unwrap();
    a.proc.kill();
    let killed = Instant::now();
    drop(f);
    a.unmount();
    let new = c.local_file("new", 70_000, 32);
    let cp = |dst: &Path| {
        Command::new("cp")
            .arg(&new)
            .arg(dst)
            .output()
            .expect("run cp")
    };
    let early = cp(&b.dir.join("f"));
    assert!(
        killed.elapsed() < Duration::from_secs(8),
        "too slow to try within the soft limit"
    );
    assert!(
        !early.status.success(),
        "replaced a file whose writer may be alive"
    );
    let err = String::from_utf8_lossy(&early.stderr);
    assert!(err.contains("Device or resource busy"), "{err}");
    assert!(
        b.log()
            .contains("it may be replaced once the writer has not renewed it for 8s"),
        "{}",
        b.log()
    );
    let st = c.dfs_json(&["stat", "--json", "/f"]);
    assert_eq!(st["under_construction"], true, "{st}");
    // Past the soft limit.
    std::thread::sleep(Duration::from_secs(9).saturating_sub(killed.elapsed()));
    let late = cp(&b.dir.join("f"));
    assert!(late.status.success(), "{late:?}");
    assert_eq!(
        sha256(&fs::read(b.dir.join("f")).unwrap()),
        sha256_file(&new)
    );
    let got = c.dfs(&["cat", "/f"]);
    assert!(got.status.success(), "{got:?}");
    assert_eq!(sha256(&got.stdout), sha256_file(&new));
    let st = c.dfs_json(&["stat", "--json", "/f"]);
    assert_eq!(st["under_construction"], false, "{st}");
}

/// A file another client replaced is opened, and changed, as the new one
/// through a name the kernel still caches (long timeouts): the mount finds
/// the old inode gone and answers ESTALE, so the kernel looks the name up
/// afresh (ENOENT would fail the open of a path that names a file).
#[test]
fn a_file_replaced_by_another_client_is_the_new_one_through_a_cached_name() {
    let c = Cluster::builder().start();
    let m = Mount::new(&c, &["--entry-timeout", "60s", "--attr-timeout", "60s"]);
    let v1 = c.local_file("v1", 4000, 101);
    let v2 = c.local_file("v2", 6000, 102);
    c.dfs_ok(&["put", v1.to_str().unwrap(), "/g"]);
    assert_eq!(
        sha256(&fs::read(m.dir.join("g")).unwrap()),
        sha256_file(&v1)
    );
    c.dfs_ok(&["put", "-f", v2.to_str().unwrap(), "/g"]);
    assert_eq!(
        sha256(&fs::read(m.dir.join("g")).unwrap()),
        sha256_file(&v2),
        "read the old file or failed"
    );
    c.dfs_ok(&["rm", "/g"]);
    c.dfs_ok(&["put", v1.to_str().unwrap(), "/g"]);
    fs::set_permissions(m.dir.join("g"), fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(c.dfs_json(&["stat", "--json", "/g"])["mode"], 0o600);
}
