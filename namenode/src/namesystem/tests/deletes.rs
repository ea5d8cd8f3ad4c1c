//! Replica deletes: sent to the datanodes only once the edit that made
//! them is durable, and not held back by an edit nobody waits for.

use super::*;

/// An edit is applied in memory before it is on disk. The replicas of a
/// deleted file, or of one a rename replaced, are deleted only once the
/// edit is durable (found by an explorer: a namenode whose disk filled
/// refused an `rm`, but had already told the datanodes to delete the
/// file's blocks; after a restart the file was back without its data).
#[tokio::test]
async fn replicas_are_deleted_only_once_the_edit_that_drops_them_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    let deleted = h.write("/deleted", 1, 10).await;
    let replaced = h.write("/replaced", 1, 0).await;
    h.write("/new", 0, 5).await;
    // Nothing becomes durable from here on, until flushed by hand.
    h.flusher.abort();
    let deletes = |h: &Harness| -> Vec<u64> {
        ["dn1", "dn2", "dn3"]
            .iter()
            .flat_map(|n| h.deletes(n))
            .collect()
    };
    let su = Caller::superuser();
    let pending = Duration::from_millis(300);
    let rm = tokio::time::timeout(pending, h.fs.delete(&su, "/deleted", false, EntryKind::Any));
    assert!(rm.await.is_err(), "the delete waits for its edit");
    let mv = tokio::time::timeout(pending, h.fs.rename(&su, "/new", "/replaced", true));
    assert!(mv.await.is_err(), "the rename waits for its edit");
    assert_eq!(
        deletes(&h),
        Vec::<u64>::new(),
        "nothing deleted before the edits are durable"
    );
    h.fs.store().flush_now().unwrap();
    let mut sent = deletes(&h);
    sent.sort_unstable();
    let mut want: Vec<u64> = deleted.iter().chain(&replaced).map(|b| b.id).collect();
    // Each block has a replica on each of the three nodes.
    want = want.iter().flat_map(|id| [*id; 3]).collect();
    want.sort_unstable();
    assert_eq!(sent, want);
}

/// An edit nobody waits for (the monitor's lease recovery commits without
/// waiting) is flushed all the same, so the replica deletes queued after it
/// are not held back until some client's call happens to flush (found by
/// the reviewer of the delete barrier).
#[tokio::test]
async fn deletes_queued_after_an_edit_nobody_waits_for_are_sent() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    // The flusher idle, with no wake-up left over from the set-up.
    tokio::time::sleep(Duration::from_millis(200)).await;
    {
        let mut st = h.fs.state.write();
        let (batch, _, _) = st
            .ns
            .plan_mkdirs("/unwaited", false, &Default::default(), 0)
            .unwrap();
        st.commit(h.fs.store(), batch).unwrap();
        let node = st.dns.lookup("dn1").unwrap();
        st.dns.queue_delete(
            node,
            ExtendedBlock {
                id: 77,
                generation_stamp: 1,
                length: 0,
            },
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if h.deletes("dn1").contains(&77) {
            break;
        }
        assert!(Instant::now() < deadline, "the delete was never sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.close().await;
}
