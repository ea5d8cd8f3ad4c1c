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
    let whole = h.fs.fsck("/", "").unwrap();
    assert!(!whole.has_more);
    assert_eq!((whole.total_files, whole.total_blocks), (4, 8));
    for (inodes, blocks) in [(1, 100), (2, 100), (100, 2), (3, 3)] {
        let st = h.fs.state.read();
        let (mut files, mut dirs, mut nblocks, mut paths) = (0, 0, 0, Vec::new());
        let mut after = String::new();
        loop {
            let page = st
                .fsck_page("/", &after, inodes, blocks, Instant::now())
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
    let err = h.fs.fsck("/d0", "/d1/f1").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    h.close().await;
}
