//! Bounded answers: block locations and fsck pages.

use super::*;

#[tokio::test]
async fn block_locations_are_listed_a_bounded_number_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    let blocks = h.write("/f", 3, 0).await;
    {
        let st = h.fs.state.read();
        let req = |offset: u64| GetBlockLocationsRequest {
            path: "/f".into(),
            offset,
            length: 0,
            client_host: String::new(),
        };
        let first = st
            .block_locations_at_most(&req(0), "", Instant::now(), 2)
            .unwrap();
        assert_eq!(first.file_length, 3 * 4096);
        let ids: Vec<u64> = first.blocks.iter().map(|b| b.block.unwrap().id).collect();
        assert_eq!(ids, vec![blocks[0].id, blocks[1].id]);
        // Asking again from where the list ended gives the rest.
        let rest = st
            .block_locations_at_most(&req(2 * 4096), "", Instant::now(), 2)
            .unwrap();
        let ids: Vec<u64> = rest.blocks.iter().map(|b| b.block.unwrap().id).collect();
        assert_eq!(ids, vec![blocks[2].id]);
        assert_eq!(rest.blocks[0].offset, 2 * 4096);
    }
    h.close().await;
}

#[tokio::test]
async fn fsck_pages_add_up_to_the_whole_tree() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    for i in 0..4 {
        h.write(&format!("/d{}/f{i}", i % 2), 2, 0).await;
    }
    let whole = h.fs.fsck(&Caller::superuser(), "/", "").unwrap();
    assert!(!whole.has_more);
    assert_eq!((whole.total_files, whole.total_blocks), (4, 8));
    for (inodes, blocks) in [(1, 100), (2, 100), (100, 2), (3, 3)] {
        let st = h.fs.state.read();
        let (mut files, mut dirs, mut nblocks, mut paths) = (0, 0, 0, Vec::new());
        let mut after = String::new();
        loop {
            let page = st
                .fsck_page(
                    &Caller::superuser(),
                    "/",
                    &after,
                    inodes,
                    blocks,
                    Instant::now(),
                )
                .unwrap();
            files += page.total_files;
            dirs += page.total_dirs;
            nblocks += page.total_blocks;
            paths.extend(page.files.iter().map(|f| f.path.clone()));
            if !page.has_more {
                break;
            }
            assert!(!page.next_after.is_empty());
            after = page.next_after;
        }
        assert_eq!(
            (files, dirs, nblocks),
            (4, 3, 8),
            "pages of {inodes}/{blocks}"
        );
        let whole_paths: Vec<String> = whole.files.iter().map(|f| f.path.clone()).collect();
        assert_eq!(paths, whole_paths);
    }
    let err =
        h.fs.fsck(&Caller::superuser(), "/d0", "/d1/f1")
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    h.close().await;
}

#[tokio::test]
async fn the_block_being_written_is_located_for_readers_to_measure() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    let first = h.allocate("/f", "c1").await;
    let req = GetBlockLocationsRequest {
        path: "/f".into(),
        ..Default::default()
    };
    let locate = || {
        h.fs.get_block_locations(&Caller::superuser(), &req, "")
            .unwrap()
    };
    // Nothing is known of its length yet: no block listed, but the block
    // being written with its whole pipeline, for readers to ask.
    let resp = locate();
    assert!(resp.under_construction);
    assert_eq!(resp.file_length, 0);
    assert!(resp.blocks.is_empty());
    let last = resp.last_block.expect("the block being written");
    assert_eq!(last.block, first.block);
    assert_eq!(last.offset, 0);
    assert!(last.under_construction);
    let mut pipeline: Vec<&str> = first.locations.iter().map(|n| n.id.as_str()).collect();
    let mut located: Vec<&str> = last.locations.iter().map(|n| n.id.as_str()).collect();
    pipeline.sort_unstable();
    located.sort_unstable();
    assert_eq!(located, pipeline);
    // The next block: the first one's length is known, and the new one is
    // the block being written, at its offset.
    let mut b1 = first.block.unwrap();
    b1.length = 4096;
    let second =
        h.fs.add_block(
            AddBlockRequest {
                path: "/f".into(),
                client_name: "c1".into(),
                previous: Some(b1),
                ..Default::default()
            },
            "",
        )
        .await
        .unwrap();
    let resp = locate();
    assert_eq!(resp.file_length, 4096);
    assert_eq!(resp.blocks.len(), 1);
    let last = resp.last_block.expect("the second block being written");
    assert_eq!((last.block, last.offset), (second.block, 4096));
    // Once complete, nothing is being written.
    let mut b2 = second.block.unwrap();
    b2.length = 100;
    for n in first.locations.iter() {
        h.received(&n.id, b1);
    }
    for n in second.locations.iter() {
        h.received(&n.id, b2);
    }
    let done =
        h.fs.complete(
            &Caller::superuser(),
            CompleteRequest {
                path: "/f".into(),
                client_name: "c1".into(),
                last: Some(b2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(done);
    let resp = locate();
    assert!(!resp.under_construction && resp.last_block.is_none());
    assert_eq!((resp.file_length, resp.blocks.len()), (4196, 2));
    h.close().await;
}

/// A file whose Complete committed its last block but waits for a
/// finalized replica report is not closed yet: readers get that block as
/// the block being written (its datanodes answer its length), before the
/// report and after it until the writer's next Complete. Before, it was
/// left out of the answer and the file read short.
#[tokio::test]
async fn a_committed_last_block_of_a_file_not_closed_yet_is_listed() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    let lb = h.allocate("/f", "c").await;
    let id =
        h.fs.get_file_info(&Caller::superuser(), "/f")
            .unwrap()
            .inode;
    let block = ExtendedBlock {
        length: 1234,
        ..lb.block.unwrap()
    };
    let complete = || CompleteRequest {
        path: "/f".into(),
        client_name: "c".into(),
        last: Some(block),
        file_id: id,
        ..Default::default()
    };
    let closed =
        h.fs.complete(&Caller::superuser(), complete())
            .await
            .unwrap();
    assert!(!closed, "closed without a finalized replica");
    for when in ["committed", "reported"] {
        let r = h.locations("/f");
        assert!(r.under_construction, "{when}");
        let last = r
            .last_block
            .unwrap_or_else(|| panic!("{when}: no last block"));
        assert_eq!(last.block.map(|b| b.id), Some(block.id), "{when}");
        assert!(!last.locations.is_empty(), "{when}: no datanode to ask");
        h.received("dn1", block);
    }
    assert!(h
        .fs
        .complete(&Caller::superuser(), complete())
        .await
        .unwrap());
    let r = h.locations("/f");
    assert!(r.last_block.is_none());
    assert_eq!(r.file_length, 1234);
    h.close().await;
}
