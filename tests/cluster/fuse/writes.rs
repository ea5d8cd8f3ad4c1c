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
