//! Unit tests of the block store, its writers and readers.

use dfs_proto::checksum;

use super::files::parse_name;
use super::*;

fn store(dir: &Path) -> Arc<BlockStore> {
    Arc::new(BlockStore::open(dir, 0).unwrap())
}

fn payload(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn write_all(w: &mut ReplicaWriter, data: &[u8], packet: usize) {
    let mut off = 0;
    for chunk in data.chunks(packet) {
        w.write_packet(off as u64, chunk, &checksum::compute(chunk))
            .unwrap();
        off += chunk.len();
    }
}

fn read_all(s: &BlockStore, id: u64, gs: u64) -> Result<Vec<u8>> {
    let mut r = s.open_reader(id, gs)?;
    let len = r.info().block.length;
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < len {
        let end = (pos + 4096).min(len);
        let (d, c) = r.read(pos, end)?;
        checksum::verify(&d, &c).unwrap();
        out.extend_from_slice(&d);
        pos = end;
    }
    Ok(out)
}

#[test]
fn names_parse_only_from_digits() {
    assert_eq!(parse_name("blk_12"), Some((12, None)));
    assert_eq!(parse_name("blk_12_3.meta"), Some((12, Some(3))));
    assert_eq!(parse_name("blk_12_x.meta"), None);
    assert_eq!(parse_name("blk_../x"), None);
    assert_eq!(parse_name("blk_+1"), None);
    assert_eq!(parse_name("other"), None);
}

#[test]
fn write_finalize_read_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let node_id = s.node_id().to_string();
    let data = payload(100_000, 1);
    let mut w = s.create(5, 1000, ReplicaState::Rbw).unwrap();
    write_all(&mut w, &data, 65536);
    assert_eq!(w.block().length, 100_000);
    // A replica being written is readable up to its length.
    assert_eq!(read_all(&s, 5, 1000).unwrap(), data);
    let b = w.finalize(ReplicaState::Finalized).unwrap();
    assert_eq!(b.length, 100_000);
    assert!(dir.path().join("current/finalized/blk_5").exists());
    assert!(dir
        .path()
        .join("current/finalized/blk_5_1000.meta")
        .exists());
    assert!(!dir.path().join("current/rbw/blk_5").exists());
    assert_eq!(read_all(&s, 5, 1000).unwrap(), data);
    // A stale request is refused, a newer replica serves an older stamp.
    assert!(matches!(
        s.open_reader(5, 1001),
        Err(Error::GenerationStamp { .. })
    ));
    assert!(s.open_reader(5, 1).is_ok());
    assert!(matches!(
        s.create(5, 1000, ReplicaState::Rbw),
        Err(Error::ReplicaExists { .. })
    ));
    drop(s);
    let s = store(dir.path());
    assert_eq!(s.node_id(), node_id);
    let info = s.replica(5).unwrap();
    assert_eq!(info.state, ReplicaState::Finalized);
    assert_eq!(info.block.length, 100_000);
    assert_eq!(read_all(&s, 5, 1000).unwrap(), data);
    assert!(s.stats().used >= 100_000);
}

#[test]
fn partial_reads_trim_and_recompute_the_last_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let data = payload(3000, 2);
    let mut w = s.create(1, 1, ReplicaState::Rbw).unwrap();
    write_all(&mut w, &data, 65536);
    w.finalize(ReplicaState::Finalized).unwrap();
    let mut r = s.open_reader(1, 1).unwrap();
    let (d, c) = r.read(512, 1300).unwrap();
    assert_eq!(&d[..], &data[512..1300]);
    assert_eq!(c.len(), 8);
    checksum::verify(&d, &c).unwrap();
    assert!(matches!(
        r.read(100, 200),
        Err(Error::InvalidRequest { .. })
    ));
    assert!(matches!(r.read(0, 3001), Err(Error::InvalidRequest { .. })));
}

#[test]
fn flipped_byte_is_detected_and_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let data = payload(10_000, 3);
    let mut w = s.create(9, 7, ReplicaState::Rbw).unwrap();
    write_all(&mut w, &data, 4096);
    w.finalize(ReplicaState::Finalized).unwrap();
    let path = dir.path().join("current/finalized/blk_9");
    let mut bytes = fs::read(&path).unwrap();
    bytes[5000] ^= 0x40;
    fs::write(&path, &bytes).unwrap();
    match read_all(&s, 9, 7) {
        Err(Error::ChecksumMismatch { block: 9, offset }) => assert_eq!(offset, 4608),
        other => panic!("expected a checksum mismatch, got {other:?}"),
    }
    let moved = s.mark_corrupt(9, 7).unwrap().unwrap();
    assert_eq!(moved.length, 10_000);
    assert!(s.replica(9).is_none());
    assert!(dir.path().join("current/corrupt/blk_9_7").exists());
    assert!(dir.path().join("current/corrupt/blk_9_7.meta").exists());
    assert!(matches!(
        s.open_reader(9, 7),
        Err(Error::ReplicaNotFound { block: 9 })
    ));
    // A new copy can take its place.
    let mut w = s.create(9, 7, ReplicaState::Temporary).unwrap();
    write_all(&mut w, &data, 65536);
    w.finalize(ReplicaState::Finalized).unwrap();
    assert_eq!(read_all(&s, 9, 7).unwrap(), data);
}

#[test]
fn damaged_meta_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let mut w = s.create(4, 1, ReplicaState::Rbw).unwrap();
    write_all(&mut w, &payload(1000, 0), 65536);
    w.finalize(ReplicaState::Finalized).unwrap();
    let meta_path = dir.path().join("current/finalized/blk_4_1.meta");
    let mut m = fs::read(&meta_path).unwrap();
    m[0] = b'X';
    fs::write(&meta_path, &m).unwrap();
    assert!(read_all(&s, 4, 1).unwrap_err().is_corruption());
    drop(s);
    // At start the bad replica is moved aside.
    let s = store(dir.path());
    assert!(s.replica(4).is_none());
    assert!(dir.path().join("current/corrupt/blk_4_1.meta").exists());
}

/// A replica whose file cannot be read (here a directory where the file
/// was, as a failing disk's EIO) is bad, as HDFS's scanner counts it; at
/// start it is set aside, and a replica whose files cannot be moved is
/// left unloaded instead of stopping the node.
#[test]
fn unreadable_replicas_are_bad_and_never_stop_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    for id in [5, 6, 7] {
        let mut w = s.create(id, 1, ReplicaState::Rbw).unwrap();
        write_all(&mut w, &payload(3000, id as u8), 65536);
        w.finalize(ReplicaState::Finalized).unwrap();
    }
    let fin = dir.path().join("current/finalized");
    let swap_for_dir = |name: &str| {
        fs::remove_file(fin.join(name)).unwrap();
        fs::create_dir(fin.join(name)).unwrap();
    };
    swap_for_dir("blk_5");
    let err = read_all(&s, 5, 1).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(err.to_string().contains("blk_5"), "{err}");
    // Found bad while running, with corrupt/ unusable: the replica leaves
    // the map (so it is reported) although its files stay.
    fs::remove_dir(dir.path().join("current/corrupt")).unwrap();
    fs::write(dir.path().join("current/corrupt"), b"not a directory").unwrap();
    assert_eq!(s.mark_corrupt(5, 1).unwrap().map(|b| b.id), Some(5));
    assert!(s.replica(5).is_none());
    fs::remove_file(dir.path().join("current/corrupt")).unwrap();
    fs::create_dir(dir.path().join("current/corrupt")).unwrap();
    drop(s);
    // At start: a checksum file that cannot be read is set aside, and one
    // that cannot be moved either leaves its replica unloaded.
    swap_for_dir("blk_6_1.meta");
    fs::remove_dir(fin.join("blk_5")).unwrap();
    fs::write(fin.join("blk_5"), payload(3000, 5)).unwrap();
    let s = store(dir.path());
    assert!(s.replica(6).is_none());
    assert!(dir.path().join("current/corrupt/blk_6_1.meta").is_dir());
    assert_eq!(read_all(&s, 7, 1).unwrap(), payload(3000, 7));
    assert_eq!(read_all(&s, 5, 1).unwrap(), payload(3000, 5));
    drop(s);
    swap_for_dir("blk_7_1.meta");
    // A non-empty directory in the way: the move fails.
    fs::create_dir_all(dir.path().join("current/corrupt/blk_7_1.meta/x")).unwrap();
    let s = store(dir.path());
    assert!(s.replica(7).is_none());
    assert_eq!(read_all(&s, 5, 1).unwrap(), payload(3000, 5));
    drop(s);
    // The half-moved replica (data in corrupt/, its checksums left behind
    // and still not movable) stops no later start either.
    let s = store(dir.path());
    assert!(s.replica(7).is_none());
    assert_eq!(read_all(&s, 5, 1).unwrap(), payload(3000, 5));
}

#[test]
fn a_resent_partial_chunk_never_cuts_acknowledged_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let data = payload(2000, 4);
    let mut w = s.create(2, 1, ReplicaState::Rbw).unwrap();
    // hflush of 1300 bytes, then the partial chunk is resent with more.
    w.write_packet(0, &data[..1300], &checksum::compute(&data[..1300]))
        .unwrap();
    // A resend that differs from the bytes the replica has, or ends
    // inside them, is refused and changes nothing.
    let mut other = data[1024..1500].to_vec();
    other[10] ^= 1;
    assert!(matches!(
        w.write_packet(1024, &other, &checksum::compute(&other)),
        Err(Error::InvalidRequest { .. })
    ));
    assert!(matches!(
        w.write_packet(
            1024,
            &data[1024..1200],
            &checksum::compute(&data[1024..1200])
        ),
        Err(Error::InvalidRequest { .. })
    ));
    assert_eq!(w.block().length, 1300);
    assert_eq!(read_all(&s, 2, 1).unwrap(), &data[..1300]);
    w.write_packet(1024, &data[1024..], &checksum::compute(&data[1024..]))
        .unwrap();
    assert_eq!(w.block().length, 2000);
    assert_eq!(read_all(&s, 2, 1).unwrap(), data);
    // Offsets must be chunk aligned and leave no gap.
    assert!(matches!(
        w.write_packet(100, &data[..10], &checksum::compute(&data[..10])),
        Err(Error::InvalidRequest { .. })
    ));
    assert!(matches!(
        w.write_packet(2048, &data[..10], &checksum::compute(&data[..10])),
        Err(Error::InvalidRequest { .. })
    ));
    assert!(matches!(
        w.write_packet(0, &data[..10], &[0u8; 8]),
        Err(Error::InvalidRequest { .. })
    ));
    // An empty last packet sits at the end.
    w.write_packet(2000, &[], &[]).unwrap();
    w.finalize(ReplicaState::Finalized).unwrap();
    assert_eq!(read_all(&s, 2, 1).unwrap(), data);
}

#[test]
fn a_reader_of_a_growing_last_chunk_reads_its_own_length() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let data = payload(1900, 9);
    let mut w = s.create(3, 1, ReplicaState::Rbw).unwrap();
    w.write_packet(0, &data[..1300], &checksum::compute(&data[..1300]))
        .unwrap();
    // Opened at 1300 bytes; the writer then extends the last chunk (its
    // checksum on disk now covers bytes this reader does not see) and
    // starts another.
    let mut r = s.open_reader(3, 1).unwrap();
    w.write_packet(
        1024,
        &data[1024..1700],
        &checksum::compute(&data[1024..1700]),
    )
    .unwrap();
    for (start, end) in [(0, 1300), (1024, 1300), (1024, 1200), (512, 1100)] {
        let (d, c) = r.read(start, end).unwrap();
        assert_eq!(
            &d[..],
            &data[start as usize..end as usize],
            "[{start}, {end})"
        );
        checksum::verify(&d, &c).unwrap();
    }
    // A last chunk that is full by now is verified whole.
    w.write_packet(1536, &data[1536..], &checksum::compute(&data[1536..]))
        .unwrap();
    let (d, c) = r.read(1024, 1300).unwrap();
    assert_eq!(&d[..], &data[1024..1300]);
    checksum::verify(&d, &c).unwrap();
    // A flipped byte in the last chunk is still found.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("current/rbw/blk_3"))
        .unwrap();
    f.write_all_at(&[data[1100] ^ 1], 1100).unwrap();
    assert!(matches!(
        r.read(1024, 1300),
        Err(Error::ChecksumMismatch {
            block: 3,
            offset: 1024
        })
    ));
    // A replica cut below the reader's length (recovery) is refused.
    drop(w);
    let w = s.recover(3, 2, 1000).unwrap();
    assert!(matches!(
        r.read(1024, 1300),
        Err(Error::GenerationStamp { .. })
    ));
    drop(w);
}

#[test]
fn deleted_replicas_nobody_reads_are_recycled_as_spares() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
    let finalized = dir.path().join("current/finalized");
    let tmp = dir.path().join("tmp");
    // (The thread making spares renames files out of tmp/ meanwhile.)
    let in_tmp = |inode: u64| {
        std::fs::read_dir(&tmp)
            .unwrap()
            .filter_map(|e| e.ok()?.metadata().ok())
            .find(|m| m.ino() == inode)
    };
    // Once the stock is full, no spare is made until it runs low.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_dir(&tmp).unwrap().count() < 2 * 64 {
        assert!(std::time::Instant::now() < deadline, "no spares prepared");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // (The last pair made is in tmp/ a moment before it is in the stock.)
    std::thread::sleep(std::time::Duration::from_millis(50));
    let (a, b, c) = (payload(5000, 1), payload(3000, 2), payload(700, 3));
    for (id, data) in [(10, &a), (11, &b)] {
        let mut w = s.create(id, 1, ReplicaState::Rbw).unwrap();
        write_all(&mut w, data, 4096);
        w.finalize(ReplicaState::Finalized).unwrap();
    }
    let (a_data, b_data) = (
        ino(&finalized.join("blk_10")),
        ino(&finalized.join("blk_11")),
    );
    let b_meta = ino(&finalized.join("blk_11_1.meta"));
    // Deleted while nobody reads it: both files move to tmp/, emptied (the
    // checksum file keeps its header).
    s.delete(11, 1).unwrap();
    assert!(!finalized.join("blk_11").exists());
    assert!(!finalized.join("blk_11_1.meta").exists());
    assert_eq!(in_tmp(b_data).expect("data file recycled").len(), 0);
    assert_eq!(
        in_tmp(b_meta).expect("checksum file recycled").len(),
        meta::HEADER_LEN as u64
    );
    // Deleted while a reader has it open: removed, never reused, and the
    // reader keeps reading the bytes it opened.
    let mut r = s.open_reader(10, 1).unwrap();
    s.delete(10, 1).unwrap();
    assert!(in_tmp(a_data).is_none());
    // The next new replica takes the recycled pair and reads back its own
    // bytes only.
    let mut w = s.create(12, 1, ReplicaState::Rbw).unwrap();
    assert_eq!(ino(&dir.path().join("current/rbw/blk_12")), b_data);
    write_all(&mut w, &c, 4096);
    w.finalize(ReplicaState::Finalized).unwrap();
    assert_eq!(read_all(&s, 12, 1).unwrap(), c);
    let (d, sums) = r.read(0, 5000).unwrap();
    assert_eq!(&d[..], &a[..]);
    checksum::verify(&d, &sums).unwrap();
    // Reopened, the store finds the replica made from a recycled pair.
    drop((r, s));
    let s = store(dir.path());
    assert_eq!(read_all(&s, 12, 1).unwrap(), c);
    assert!(s.replica(10).is_none() && s.replica(11).is_none());
}

#[test]
fn a_replica_under_lease_recovery_refuses_its_writer_and_restarted_ones_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let data = payload(3000, 5);
    let mut w = s.create(8, 5, ReplicaState::Rbw).unwrap();
    write_all(&mut w, &data, 1024);
    drop(w);
    let blk = |id, gs| ExtendedBlock {
        id,
        generation_stamp: gs,
        length: 0,
    };
    let (info, restarted) = s.init_recovery(&blk(8, 5), 7).unwrap();
    assert_eq!((info.block.length, restarted), (3000, false));
    // The old writer's pipeline recovery comes late: refused, nothing cut.
    assert!(matches!(
        s.recover(8, 6, 1024),
        Err(Error::GenerationStamp { .. })
    ));
    let done = s.update_recovery(8, 7, 3000).unwrap();
    assert_eq!((done.length, done.generation_stamp), (3000, 7));
    assert_eq!(read_all(&s, 8, 7).unwrap(), data);
    // A replica being written when the store closed comes back as one
    // waiting to be recovered.
    let mut w = s.create(9, 5, ReplicaState::Rbw).unwrap();
    write_all(&mut w, &data, 1024);
    drop((w, s));
    let s = store(dir.path());
    let (info, restarted) = s.init_recovery(&blk(9, 5), 7).unwrap();
    assert_eq!((info.block.length, restarted), (3000, true));
}

#[test]
fn recover_truncates_renames_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let data = payload(5000, 5);
    let mut old = s.create(3, 10, ReplicaState::Rbw).unwrap();
    write_all(&mut old, &data[..4000], 1024);
    // Recovery to 2100 acknowledged bytes (mid-chunk) under stamp 11.
    let mut w = s.recover(3, 11, 2100).unwrap();
    assert!(matches!(
        old.write_packet(
            4000,
            &data[4000..4100],
            &checksum::compute(&data[4000..4100])
        ),
        Err(Error::Superseded { block: 3 })
    ));
    drop(old);
    assert!(dir.path().join("current/rbw/blk_3_11.meta").exists());
    assert!(!dir.path().join("current/rbw/blk_3_10.meta").exists());
    assert_eq!(read_all(&s, 3, 11).unwrap(), &data[..2100]);
    w.write_packet(2048, &data[2048..], &checksum::compute(&data[2048..]))
        .unwrap();
    let b = w.finalize(ReplicaState::Finalized).unwrap();
    assert_eq!((b.generation_stamp, b.length), (11, 5000));
    assert_eq!(read_all(&s, 3, 11).unwrap(), data);
    // Too few bytes, or an older stamp, is refused.
    assert!(matches!(
        s.recover(3, 12, 6000),
        Err(Error::InvalidRequest { .. })
    ));
    assert!(matches!(
        s.recover(3, 9, 10),
        Err(Error::GenerationStamp { .. })
    ));
    // A finalized replica can be recovered too (failure at close).
    let mut w = s.recover(3, 12, 4096).unwrap();
    w.write_packet(4096, &data[4096..], &checksum::compute(&data[4096..]))
        .unwrap();
    w.finalize(ReplicaState::Finalized).unwrap();
    assert_eq!(read_all(&s, 3, 12).unwrap(), data);
}

#[test]
fn replica_recovery_init_and_update() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let data = payload(3000, 6);
    let mut w = s.create(8, 5, ReplicaState::Rbw).unwrap();
    write_all(&mut w, &data, 1024);
    let blk = ExtendedBlock {
        id: 8,
        generation_stamp: 5,
        length: 0,
    };
    let (info, restarted) = s.init_recovery(&blk, 6).unwrap();
    assert!(!restarted);
    assert_eq!((info.state, info.block.length), (ReplicaState::Rbw, 3000));
    // The writer is cut off.
    assert!(w
        .write_packet(3072, &[1], &checksum::compute(&[1]))
        .is_err());
    drop(w);
    assert!(matches!(
        s.update_recovery(8, 7, 100),
        Err(Error::GenerationStamp { .. })
    ));
    assert!(matches!(
        s.update_recovery(8, 6, 4000),
        Err(Error::InvalidRequest { .. })
    ));
    let b = s.update_recovery(8, 6, 1500).unwrap();
    assert_eq!((b.generation_stamp, b.length), (6, 1500));
    assert_eq!(s.replica(8).unwrap().state, ReplicaState::Finalized);
    assert_eq!(read_all(&s, 8, 6).unwrap(), &data[..1500]);
    // Idempotent, and an old recovery is refused.
    assert_eq!(s.update_recovery(8, 6, 1500).unwrap().length, 1500);
    assert!(s.init_recovery(&blk, 6).is_err());
    drop(s);
    let s = store(dir.path());
    assert_eq!(read_all(&s, 8, 6).unwrap(), &data[..1500]);
}

#[test]
fn temporary_copies_vanish_unless_finalized() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let mut w = s.create(6, 1, ReplicaState::Temporary).unwrap();
    write_all(&mut w, &payload(700, 7), 65536);
    assert!(dir.path().join("tmp/blk_6").exists());
    assert!(s.replica(6).is_none());
    drop(w);
    assert!(!dir.path().join("tmp/blk_6").exists());
    assert!(!dir.path().join("tmp/blk_6_1.meta").exists());
    assert!(s.create(6, 1, ReplicaState::Rbw).is_ok());
}

#[test]
fn start_up_recovers_torn_rbw_and_cleans_tmp() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let data = payload(3000, 8);
    let mut w = s.create(7, 2, ReplicaState::Rbw).unwrap();
    write_all(&mut w, &data, 1024);
    drop(w);
    drop(s);
    // Simulate a crash after data of a packet was written but not its checksums.
    let p = dir.path().join("current/rbw/blk_7");
    let mut f = OpenOptions::new().append(true).open(&p).unwrap();
    f.write_all(&[9u8; 600]).unwrap();
    fs::write(dir.path().join("tmp/blk_99"), b"junk").unwrap();
    let s = store(dir.path());
    let info = s.replica(7).unwrap();
    assert_eq!((info.state, info.block.length), (ReplicaState::Rbw, 3000));
    assert_eq!(read_all(&s, 7, 2).unwrap(), data);
    assert!(!dir.path().join("tmp/blk_99").exists());
    // A finalization interrupted between its renames is completed.
    drop(s);
    fs::rename(
        dir.path().join("current/rbw/blk_7"),
        dir.path().join("current/finalized/blk_7"),
    )
    .unwrap();
    let s = store(dir.path());
    assert_eq!(s.replica(7).unwrap().state, ReplicaState::Finalized);
    assert_eq!(read_all(&s, 7, 2).unwrap(), data);
}

#[test]
fn delete_spares_newer_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let w = s.create(11, 5, ReplicaState::Rbw).unwrap();
    w.finalize(ReplicaState::Finalized).unwrap();
    assert_eq!(s.delete(11, 4).unwrap(), None);
    assert!(s.replica(11).is_some());
    assert_eq!(s.delete(11, 5).unwrap().unwrap().id, 11);
    assert!(s.replica(11).is_none());
    assert!(!dir.path().join("current/finalized/blk_11").exists());
    assert_eq!(s.delete(11, 5).unwrap(), None);
    // Once deleted, the block can arrive again (a later copy).
    let w = s.create(11, 5, ReplicaState::Temporary).unwrap();
    w.finalize(ReplicaState::Finalized).unwrap();
    assert!(dir.path().join("current/finalized/blk_11").exists());
    assert_eq!(s.replica(11).unwrap().block.generation_stamp, 5);
}

#[test]
fn storage_checks() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    assert_eq!(s.check_storage(), None);
    let st = s.stats();
    assert!(st.capacity > 0);
    s.check_writable(true).unwrap();
    // A reserve bigger than the disk makes the node full.
    let full = Arc::new(BlockStore::open(dir.path(), u64::MAX).unwrap());
    assert!(full.stats().full);
    assert!(matches!(
        full.check_writable(true),
        Err(Error::StorageFull { .. })
    ));
    assert!(full.check_writable(false).is_ok());
    // A vanished directory is a failure.
    fs::remove_dir_all(dir.path().join("current")).unwrap();
    assert!(s.check_storage().is_some());
    assert!(matches!(
        s.create(1, 1, ReplicaState::Rbw),
        Err(Error::StorageFailed { .. })
    ));
}

#[test]
fn replicas_made_from_spares_and_in_place_read_back_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let spares = |d: &Path| {
        fs::read_dir(d.join(TMP_DIR))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("spare_"))
            })
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while spares(dir.path()) < 2 * 64 {
        assert!(std::time::Instant::now() < deadline, "no spares prepared");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // More replicas than the stock holds: the first come from spares, the
    // rest are created in place or from the refilled stock.
    let n = 100u64;
    for id in 1..=n {
        let data = payload(1000 + id as usize, id as u8);
        let mut w = s.create(id, 7, ReplicaState::Rbw).unwrap();
        write_all(&mut w, &data, 512);
        w.finalize(ReplicaState::Finalized).unwrap();
    }
    for id in 1..=n {
        assert_eq!(
            read_all(&s, id, 7).unwrap(),
            payload(1000 + id as usize, id as u8)
        );
    }
    drop(s);
    // Reopening empties tmp/ of the old spares and finds exactly the
    // replicas written, none of the spares.
    let s = store(dir.path());
    let mut ids: Vec<u64> = s.replicas().iter().map(|r| r.block.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=n).collect::<Vec<_>>());
    for id in 1..=n {
        assert_eq!(
            read_all(&s, id, 7).unwrap(),
            payload(1000 + id as usize, id as u8)
        );
    }
}

#[test]
fn the_cluster_id_is_recorded_once_and_another_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::open(dir.path(), 0).unwrap();
    assert_eq!(store.cluster_id(), None);
    store.adopt_cluster_id("CID-a").unwrap();
    store.adopt_cluster_id("CID-a").unwrap();
    drop(store);
    let store = BlockStore::open(dir.path(), 0).unwrap();
    assert_eq!(store.cluster_id().as_deref(), Some("CID-a"));
    let e = store.adopt_cluster_id("CID-b").unwrap_err();
    assert!(matches!(e, Error::WrongCluster { .. }), "{e}");
    assert!(e.to_string().contains("not joining"), "{e}");
    assert_eq!(store.cluster_id().as_deref(), Some("CID-a"));
}

#[test]
fn a_finalized_replica_whose_file_vanished_is_dropped_and_handed_over_as_lost() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let data = payload(10_000, 3);
    let mut w = s.create(9, 1000, ReplicaState::Rbw).unwrap();
    write_all(&mut w, &data, 4096);
    w.finalize(ReplicaState::Finalized).unwrap();
    assert!(s.take_lost().is_empty());
    fs::remove_file(dir.path().join("current/finalized/blk_9")).unwrap();
    let e = s.open_reader(9, 1000).unwrap_err();
    assert!(e.to_string().contains("is gone"), "{e}");
    let lost = s.take_lost();
    assert_eq!(lost.len(), 1);
    assert_eq!((lost[0].id, lost[0].generation_stamp), (9, 1000));
    assert!(s.replicas().is_empty(), "still listed");
    assert!(!dir
        .path()
        .join("current/finalized/blk_9_1000.meta")
        .exists());
    assert!(matches!(
        s.open_reader(9, 1000),
        Err(Error::ReplicaNotFound { .. })
    ));
    assert!(s.take_lost().is_empty());
}

#[test]
fn a_capacity_limit_caps_what_is_reported_and_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    store.set_block_size(1 << 20);
    store.limit_capacity(3 << 20);
    let st = store.stats();
    assert_eq!(st.capacity, 3 << 20);
    assert!(st.remaining <= 3 << 20 && !st.full, "{st:?}");
    let data = payload(2 << 20, 3);
    let mut w = store.create(1, 1, ReplicaState::Rbw).unwrap();
    write_all(&mut w, &data, 65536);
    w.finalize(ReplicaState::Finalized).unwrap();
    let st = store.stats();
    assert_eq!(st.used, (2 << 20) + meta::meta_len(2 << 20));
    assert!(st.remaining < 1 << 20 && st.full, "{st:?}");
    assert!(store.check_writable(true).is_err());
    store.limit_capacity(0);
    assert!(store.stats().capacity > 3 << 20);
}

#[test]
fn readers_see_what_the_pipeline_acknowledged_of_a_replica_being_written() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let data = payload(5000, 3);
    let mut w = s.create(4, 10, ReplicaState::Rbw).unwrap();
    let acked = w.acked_length();
    assert_eq!(s.visible_length(4, 10).unwrap(), 0);
    write_all(&mut w, &data[..4000], 1024);
    // Written here but not yet acknowledged downstream: not visible.
    assert_eq!(s.visible_length(4, 10).unwrap(), 0);
    acked.advance(3072);
    assert_eq!(s.visible_length(4, 10).unwrap(), 3072);
    // Never beyond the bytes on disk, never backwards.
    acked.advance(9000);
    assert_eq!(s.visible_length(4, 10).unwrap(), 4000);
    acked.advance(1024);
    assert_eq!(s.visible_length(4, 10).unwrap(), 4000);
    // An older stamp than the replica's is fine; a newer one is refused.
    assert_eq!(s.visible_length(4, 9).unwrap(), 4000);
    assert!(matches!(
        s.visible_length(4, 11),
        Err(Error::GenerationStamp { .. })
    ));
    // A pipeline recovery restarts from what the writer saw acknowledged;
    // the old pipeline's acks no longer count.
    let mut w2 = s.recover(4, 11, 2048).unwrap();
    assert_eq!(s.visible_length(4, 11).unwrap(), 2048);
    acked.advance(4000);
    assert_eq!(s.visible_length(4, 11).unwrap(), 2048);
    w2.write_packet(2048, &data[2048..], &checksum::compute(&data[2048..]))
        .unwrap();
    w2.finalize(ReplicaState::Finalized).unwrap();
    assert_eq!(s.visible_length(4, 11).unwrap(), 5000);
    drop(w);
    // Unknown replicas and temporary copies are not found.
    assert!(matches!(
        s.visible_length(5, 1),
        Err(Error::ReplicaNotFound { block: 5 })
    ));
    let mut copy = s.create(6, 1, ReplicaState::Temporary).unwrap();
    write_all(&mut copy, &data, 1024);
    assert!(matches!(
        s.visible_length(6, 1),
        Err(Error::ReplicaNotFound { block: 6 })
    ));
    // A replica found being written at start-up shows nothing until a
    // recovery settles it: its unsynced bytes may be gone.
    let mut w = s.create(7, 1, ReplicaState::Rbw).unwrap();
    write_all(&mut w, &data, 1024);
    w.acked_length().advance(5000);
    drop((w, copy, s));
    let s = store(dir.path());
    assert!(matches!(
        s.visible_length(7, 1),
        Err(Error::NotVisible { block: 7, .. })
    ));
    assert_eq!(s.visible_length(4, 11).unwrap(), 5000);
    // Once a live pipeline takes it over, it is being written again.
    let w = s.recover(7, 2, 4096).unwrap();
    assert_eq!(s.visible_length(7, 2).unwrap(), 4096);
    w.acked_length().advance(4096);
    drop(w);
}
