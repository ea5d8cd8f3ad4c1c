use super::image::key_value;
use super::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Opens a store that an earlier handle in this process had open. sled's
/// background I/O threads can hold that handle's file, and its lock, for a
/// moment after the handle is dropped; a namenode that restarts is a new
/// process and never meets this, so only the lock error is retried.
fn open_again(dir: &Path) -> Result<(Store, Image)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Store::open(dir) {
            Err(e)
                if format!("{e:?}").contains("could not acquire lock")
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

#[test]
fn fresh_store_has_root_and_counters() {
    let dir = tempfile::tempdir().unwrap();
    let (_s, image) = Store::open(dir.path()).unwrap();
    assert_eq!(image.inodes.len(), 1);
    assert_eq!(image.inodes[0].id, ROOT_ID);
    assert_eq!(image.counters, Counters::default());
}

#[test]
fn batches_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (s, _) = Store::open(dir.path()).unwrap();
        let rec = InodeRecord {
            id: 7,
            parent: ROOT_ID,
            name: "a".into(),
            is_dir: true,
            ..Default::default()
        };
        s.apply(vec![
            Change::PutInode(rec),
            Change::PutDirent {
                parent: ROOT_ID,
                name: "a".into(),
                child: 7,
            },
            Change::Counters(Counters {
                next_inode: 8,
                next_block: 5,
                generation_stamp: 9,
            }),
        ])
        .unwrap();
        s.flush_now().unwrap();
    }
    let (_s, image) = open_again(dir.path()).unwrap();
    assert_eq!(image.inodes.len(), 2);
    assert_eq!(image.dirents, vec![(ROOT_ID, "a".to_string(), 7)]);
    assert_eq!(image.counters.next_inode, 8);
    assert!(image.calls.is_empty());
}

/// The call that made a batch comes back from the edits replayed at the
/// next start, and changes nothing in the image.
#[test]
fn calls_recorded_with_batches_come_back_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let call = CallRecord {
        user: "alice".into(),
        id: "client-1:7".into(),
        kind: "delete".into(),
        at_ms: 1_700_000_000_123,
    };
    {
        let (s, _) = Store::open(dir.path()).unwrap();
        s.apply(vec![
            Change::RemoveDirent {
                parent: ROOT_ID,
                name: "gone".into(),
            },
            Change::Call(call.clone()),
        ])
        .unwrap();
        s.flush_now().unwrap();
    }
    let (s, image) = open_again(dir.path()).unwrap();
    assert_eq!(image.calls, vec![call]);
    assert_eq!(image.inodes.len(), 1);
    drop(s);
    // Replayed into the image at that start: not again.
    let (_s, image) = open_again(dir.path()).unwrap();
    assert!(image.calls.is_empty());
}

#[test]
fn emptied_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    std::fs::remove_dir_all(dir.path().join("meta")).unwrap();
    let err = Store::open(dir.path()).err().unwrap();
    assert!(matches!(err, Error::CorruptStore { .. }), "{err}");
}

#[test]
fn garbage_store_is_an_error_not_a_reset() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let meta = dir.path().join("meta");
    for e in std::fs::read_dir(&meta).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::write(&p, vec![0xAB; 4096]).unwrap();
        }
    }
    assert!(open_again(dir.path()).is_err());
}

fn file(id: u64) -> Batch {
    let name = format!("f{id}");
    vec![
        Change::PutInode(InodeRecord {
            id,
            parent: ROOT_ID,
            name: name.clone(),
            ..Default::default()
        }),
        Change::PutDirent {
            parent: ROOT_ID,
            name,
            child: id,
        },
        Change::Counters(Counters {
            next_inode: id + 1,
            ..Counters::default()
        }),
    ]
}

fn names(image: &Image) -> Vec<String> {
    let mut n: Vec<String> = image.dirents.iter().map(|d| d.1.clone()).collect();
    n.sort();
    n
}

fn segments(dir: &Path) -> Vec<Segment> {
    edits::list_segments(&dir.join(EDITS_DIR)).unwrap()
}

#[test]
fn acknowledged_edits_survive_a_crash_and_are_merged_at_start() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (s, _) = Store::open(dir.path()).unwrap();
        for id in 10..20 {
            s.apply(file(id)).unwrap();
        }
        s.flush_now().unwrap();
        // Dropped without a checkpoint, as if killed.
    }
    let (s, image) = open_again(dir.path()).unwrap();
    assert_eq!(image.dirents.len(), 10);
    assert_eq!(image.counters.next_inode, 20);
    assert_eq!(s.last_applied(), 10);
    // Replayed edits were merged: one fresh segment is left.
    assert_eq!(
        segments(dir.path()),
        vec![Segment::new(&dir.path().join(EDITS_DIR), 11)]
    );
    drop(s);
    let (s, image) = open_again(dir.path()).unwrap();
    assert_eq!(image.dirents.len(), 10);
    assert_eq!(s.last_applied(), 10);
}

#[tokio::test]
async fn full_segments_are_checkpointed_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = Store::open_with(dir.path(), 300).unwrap();
    let s = Arc::new(s);
    let flusher = tokio::spawn(s.clone().run_flusher());
    for id in 10..60 {
        let seq = s.apply(file(id)).unwrap();
        s.wait_durable(seq).await.unwrap();
    }
    // Let the background checkpoint catch up.
    for _ in 0..200 {
        if s.closed_segments.lock().is_empty() && !s.checkpointing.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        s.image_txid.load(Ordering::SeqCst) > 10,
        "nothing was checkpointed"
    );
    assert_eq!(segments(dir.path()).len(), 1);
    s.close();
    flusher.await.unwrap();
    s.checkpoint().unwrap();
    assert_eq!(s.image_txid.load(Ordering::SeqCst), 50);
    // A background checkpoint clears its flag just before its task drops
    // its handle on the store: wait for the last handle, which closes the
    // database and its lock, before opening it again.
    let mut s = s;
    for _ in 0..500 {
        match Arc::try_unwrap(s) {
            Ok(store) => {
                drop(store);
                break;
            }
            Err(shared) => {
                s = shared;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
    let (_s, image) = open_again(dir.path()).unwrap();
    assert_eq!(image.dirents.len(), 50);
}

#[test]
fn a_checkpoint_cut_short_is_redone_at_start() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (s, _) = Store::open(dir.path()).unwrap();
        let mut batches: Vec<Batch> = (10..20).map(file).collect();
        batches.push(vec![
            Change::RemoveDirent {
                parent: ROOT_ID,
                name: "f12".into(),
            },
            Change::RemoveInode(12),
        ]);
        for b in &batches {
            s.apply(b.clone()).unwrap();
        }
        s.flush_now().unwrap();
        // A checkpoint that wrote the last changes of a few keys and
        // died before recording its txid.
        let mut partial = sled::Batch::default();
        for change in batches.iter().rev().take(3).flatten() {
            match key_value(change) {
                Some((k, Some(v))) => partial.insert(k, v),
                Some((k, None)) => partial.remove(k),
                None => {}
            }
        }
        s.db.apply_batch(partial).unwrap();
        s.db.flush().unwrap();
    }
    let (s, image) = open_again(dir.path()).unwrap();
    let expected: Vec<String> = (10..20)
        .filter(|i| *i != 12)
        .map(|i| format!("f{i}"))
        .collect();
    assert_eq!(names(&image), expected);
    assert_eq!(image.inodes.len(), 10);
    assert_eq!(image.counters.next_inode, 20);
    assert_eq!(s.last_applied(), 11);
}

#[test]
fn an_unfinished_write_at_the_end_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (s, _) = Store::open(dir.path()).unwrap();
        s.apply(file(10)).unwrap();
        s.apply(file(11)).unwrap();
        s.flush_now().unwrap();
        let mut torn = Vec::new();
        edits::encode_record(3, &file(12), &mut torn);
        torn.truncate(torn.len() / 2);
        s.log.lock().writer.append(&torn).unwrap();
    }
    let (s, image) = open_again(dir.path()).unwrap();
    assert_eq!(names(&image), vec!["f10", "f11"]);
    assert_eq!(s.last_applied(), 2);
}

#[test]
fn a_start_stopped_after_dropping_a_torn_end_starts_again() {
    let dir = tempfile::tempdir().unwrap();
    let damaged = {
        let (s, _) = Store::open(dir.path()).unwrap();
        s.apply(file(10)).unwrap();
        s.apply(file(11)).unwrap();
        s.flush_now().unwrap();
        let mut torn = Vec::new();
        edits::encode_record(3, &file(12), &mut torn);
        torn.truncate(torn.len() / 2);
        s.log.lock().writer.append(&torn).unwrap();
        let seg = s.log.lock().writer.segment().clone();
        (seg.path.clone(), std::fs::read(&seg.path).unwrap())
    };
    // The start drops the torn record and goes on in a new segment; a stop
    // before it removed the old one leaves both.
    drop(open_again(dir.path()).unwrap());
    std::fs::write(&damaged.0, &damaged.1).unwrap();
    assert_eq!(segments(dir.path()).len(), 2);
    let (s, image) = open_again(dir.path()).unwrap();
    assert_eq!(names(&image), vec!["f10", "f11"]);
    assert_eq!(s.last_applied(), 2);
}

/// A store with files 10 to 12 in its edit log, closed; returns the
/// segment's path.
fn three_files_logged(dir: &Path) -> std::path::PathBuf {
    let (s, _) = Store::open(dir).unwrap();
    for id in 10..13 {
        s.apply(file(id)).unwrap();
    }
    s.flush_now().unwrap();
    let seg = s.log.lock().writer.segment().path.clone();
    seg
}

#[test]
fn a_segment_that_lost_its_contents_is_an_error_not_an_empty_namespace() {
    for damage in [0usize, 10] {
        let dir = tempfile::tempdir().unwrap();
        let seg = three_files_logged(dir.path());
        // Emptied, or cut inside its header.
        let data = std::fs::read(&seg).unwrap();
        std::fs::write(&seg, &data[..damage]).unwrap();
        let err = open_again(dir.path()).err().unwrap();
        assert!(matches!(err, Error::CorruptStore { .. }), "{err}");
        assert!(err.to_string().contains("header"), "{err}");
    }
}

#[test]
fn a_damaged_edit_log_is_an_error_not_a_loss() {
    let dir = tempfile::tempdir().unwrap();
    let seg = three_files_logged(dir.path());
    let mut data = std::fs::read(&seg).unwrap();
    data[40] ^= 0x55;
    std::fs::write(&seg, &data).unwrap();
    let err = open_again(dir.path()).err().unwrap();
    assert!(matches!(err, Error::CorruptStore { .. }), "{err}");
}

#[test]
fn a_missing_segment_or_edit_log_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (s, _) = Store::open_with(dir.path(), 100).unwrap();
        for id in 10..16 {
            s.apply(file(id)).unwrap();
            s.flush_now().unwrap();
        }
    }
    let segs = segments(dir.path());
    assert!(segs.len() > 3, "{segs:?}");
    std::fs::remove_file(&segs[1].path).unwrap();
    let err = Store::open(dir.path()).err().unwrap();
    assert!(err.to_string().contains("skips"), "{err}");
    std::fs::remove_dir_all(dir.path().join(EDITS_DIR)).unwrap();
    let err = Store::open(dir.path()).err().unwrap();
    assert!(err.to_string().contains("edit log"), "{err}");
}

#[tokio::test]
async fn group_commit_wakes_waiters() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = Store::open(dir.path()).unwrap();
    let s = Arc::new(s);
    let flusher = tokio::spawn(s.clone().run_flusher());
    let mut waits = Vec::new();
    for i in 0..32u64 {
        let seq = s.apply(vec![Change::RemoveInode(1000 + i)]).unwrap();
        let s2 = s.clone();
        waits.push(tokio::spawn(async move { s2.wait_durable(seq).await }));
    }
    for w in waits {
        w.await.unwrap().unwrap();
    }
    s.close();
    flusher.await.unwrap();
}

/// `wait_failed` (which stops the namenode) completes once a write fails,
/// with the reason, and not before; later mutations and waits are refused
/// and nothing becomes durable.
#[tokio::test]
async fn a_failure_is_announced_to_whoever_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = Store::open(dir.path()).unwrap();
    let s = Arc::new(s);
    let waiting = tokio::spawn({
        let s = s.clone();
        async move { s.wait_failed().await }
    });
    let seq = s.apply(vec![Change::RemoveInode(1000)]).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!waiting.is_finished(), "no failure yet");
    s.fail("cannot append to the edit log: No space left on device".into());
    let reason = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
        .await
        .expect("the failure is announced")
        .unwrap();
    assert!(reason.contains("No space left"), "{reason}");
    assert!(s.apply(vec![Change::RemoveInode(1001)]).is_err());
    assert!(s.wait_durable(seq).await.is_err());
    assert!(s.durable_seq() < seq);
}
