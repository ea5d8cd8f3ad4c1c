//! Placement of new blocks: nodes at their transfer limit, and nodes with
//! room for fewer blocks than are being allocated to them.

use super::*;

/// Heartbeats carry each datanode's open transfer connections and its
/// limit: a node at its limit is offered no new block until a heartbeat
/// says it has room again.
#[tokio::test]
async fn a_datanode_at_its_transfer_limit_gets_no_new_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    h.register("dn4", "127.0.0.4:9101", "/r1");
    let beat = |xceivers: u32| h.beat("dn1", xceivers, 4);
    let offered = |i: usize| {
        let path = format!("/load{i}");
        let h = &h;
        async move {
            let (_, lb) =
                h.fs.create_located(
                    &Caller::superuser(),
                    CreateRequest {
                        path: path.clone(),
                        client_name: "c1".into(),
                        allocate_block: true,
                        ..Default::default()
                    },
                    "",
                )
                .await
                .unwrap();
            let nodes: Vec<String> = lb.unwrap().locations.iter().map(|l| l.id.clone()).collect();
            assert_eq!(nodes.len(), 3, "{path}: {nodes:?}");
            nodes.contains(&"dn1".to_string())
        }
    };
    beat(4);
    let report = h.fs.cluster_report();
    let dn1 = report
        .datanodes
        .iter()
        .find(|d| d.node.as_ref().is_some_and(|n| n.id == "dn1"))
        .unwrap();
    assert_eq!((dn1.xceivers, dn1.max_xceivers), (4, 4));
    for i in 0..40 {
        assert!(!offered(i).await, "dn1 at its limit was offered /load{i}");
    }
    beat(0);
    let mut again = false;
    for i in 40..140 {
        if offered(i).await {
            again = true;
            break;
        }
    }
    assert!(again, "dn1 was not offered a block after it reported room");
    h.close().await;
}

/// A node with room for one more block is given one, not one per
/// allocation until its next heartbeat: blocks allocated to it and not
/// reported yet count against its free space (HDFS's blocksScheduled).
#[tokio::test]
async fn a_node_with_room_for_one_block_is_given_one_until_it_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    let block = h.fs.config().block_size;
    h.fs.register_datanode(
        RegisterRequest {
            node: Some(DatanodeInfo {
                id: "small".into(),
                address: "127.0.0.9:9101".into(),
                rack: "/r3".into(),
            }),
            storage: Some(StorageReport {
                capacity: 1 << 40,
                used: 0,
                remaining: block + block / 2,
                ..Default::default()
            }),
            cluster_id: String::new(),
        },
        false,
    )
    .unwrap();
    let mut on_small = Vec::new();
    for i in 0..6 {
        let lb = h.allocate(&format!("/f{i}"), "c1").await;
        if lb.locations.iter().any(|l| l.id == "small") {
            on_small.push(lb.block.unwrap());
        }
    }
    assert!(
        on_small.len() <= 1,
        "{} blocks placed on a node with room for one",
        on_small.len()
    );
    h.close().await;
}

#[tokio::test]
async fn an_abandoned_block_gives_back_the_room_placement_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.replication = 1;
    let h = Harness::open(cfg);
    let block = h.fs.config().block_size;
    h.fs.register_datanode(
        RegisterRequest {
            node: Some(DatanodeInfo {
                id: "only".into(),
                address: "127.0.0.9:9101".into(),
                rack: "/r1".into(),
            }),
            storage: Some(StorageReport {
                capacity: 1 << 40,
                used: 0,
                remaining: 3 * block,
                ..Default::default()
            }),
            cluster_id: String::new(),
        },
        false,
    )
    .unwrap();
    // Ten writers each get a block and abandon it (as an empty file's
    // close does): the node's room for three stays free.
    for i in 0..10 {
        let path = format!("/f{i}");
        let lb = h.allocate(&path, "c1").await;
        h.fs.abandon_block(AbandonBlockRequest {
            path,
            client_name: "c1".into(),
            block: lb.block,
            ..Default::default()
        })
        .await
        .unwrap();
    }
    h.close().await;
}
