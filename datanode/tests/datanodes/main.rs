//! In-process tests: several datanodes started with `run` on 127.0.0.1:0,
//! a fake namenode that records what they tell it and hands out commands,
//! and a minimal client that writes and reads blocks over the block
//! transfer protocol.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use bytes::Bytes;
use dfs_proto::datanode_command::Command;
use dfs_proto::defaults::SETUP_ACK_SEQNO;
use dfs_proto::error_kind::ErrorKind;
use dfs_proto::write_block_request::Msg as ReqMsg;
use dfs_proto::write_block_response::Msg as RespMsg;
use dfs_proto::xfer;
use dfs_proto::*;

mod client;
mod namenode;
mod node;

use client::*;
use namenode::*;
use node::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_of_three_writes_reports_and_reads_back() {
    let (nn, nn_addr) = FakeNamenode::start().await;
    let a = TestNode::start(&nn_addr, |_| {}).await;
    let b = TestNode::start(&nn_addr, |_| {}).await;
    let c = TestNode::start(&nn_addr, |_| {}).await;
    nn.wait("3 registrations and block reports", |s| {
        s.registered.len() == 3 && s.full_reports.len() >= 3
    })
    .await;
    {
        let st = nn.0.lock();
        let reg = st
            .registered
            .iter()
            .find(|r| r.node.as_ref().unwrap().id == a.id)
            .unwrap();
        assert_eq!(reg.node.as_ref().unwrap().address, a.addr);
        assert!(reg.storage.as_ref().unwrap().capacity > 0);
    }
    let data = payload(1024 * 1024 + 1000, 1);
    let block = blk(1001, 1, 0);
    let pk = packets(&data, 0, 0, true);
    let n = pk.len();
    let resps = write(&a, header(block, &[&b, &c], WriteStage::Create, 0), pk)
        .await
        .unwrap();
    assert!(matches!(resps[0].msg, Some(RespMsg::Ready(_))));
    let acks = acks_of(&resps);
    assert_eq!(acks.len(), n);
    for (i, ack) in acks.iter().enumerate() {
        assert_eq!(ack.seqno, i as u64);
        assert_eq!(ack.statuses, ok(3), "{}", ack.message);
    }
    for node in [&a, &b, &c] {
        assert!(node.path("current/finalized/blk_1001").exists());
        assert!(node.path("current/finalized/blk_1001_1.meta").exists());
        assert_eq!(read(node, block, 0, 0).await.unwrap(), data);
        assert_eq!(
            read(node, block, 1000, 5000).await.unwrap(),
            &data[1000..6000]
        );
        assert_eq!(
            read(node, block, data.len() as u64 - 10, 100)
                .await
                .unwrap(),
            &data[data.len() - 10..]
        );
    }
    for node in [&a, &b, &c] {
        nn.wait("FINALIZED reports", |s| {
            received(s, node, 1001, ReplicaState::Finalized)
        })
        .await;
    }
    let reported = nn.0.lock().received[0].1.block.unwrap();
    assert_eq!(reported.length, data.len() as u64);
    // Stale and out-of-range reads are refused with typed errors.
    let stale = read(&a, blk(1001, 2, 0), 0, 10).await.unwrap_err();
    assert_eq!(ErrorKind::of(&stale), Some(ErrorKind::StaleBlock));
    let beyond = read(&a, block, data.len() as u64 + 1, 10)
        .await
        .unwrap_err();
    assert_eq!(ErrorKind::of(&beyond), Some(ErrorKind::InvalidArgument));
    let missing = read(&a, blk(5, 1, 0), 0, 10).await.unwrap_err();
    assert_eq!(ErrorKind::of(&missing), Some(ErrorKind::NotFound));
    // Creating it again is refused.
    let again = write(&a, header(block, &[], WriteStage::Create, 0), vec![])
        .await
        .unwrap_err();
    assert_eq!(ErrorKind::of(&again), Some(ErrorKind::AlreadyExists));
    // Heartbeats carry the storage figures.
    nn.wait("heartbeats", |s| {
        s.heartbeats
            .iter()
            .any(|h| h.storage.as_ref().is_some_and(|s| s.used > 0))
    })
    .await;
    // A restarted node keeps its id and its replicas.
    let a_id = a.id.clone();
    let dir = a.stop().await;
    let a = TestNode::start_in(&nn_addr, dir, |_| {}).await;
    assert_eq!(a.id, a_id);
    assert_eq!(read(&a, block, 0, 0).await.unwrap(), data);
    nn.wait("a full report with the block", |s| {
        s.full_reports
            .iter()
            .any(|r| r.node_id == a_id && r.replicas.iter().any(|x| x.block.unwrap().id == 1001))
    })
    .await;
    for n in [a, b, c] {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_failure_and_bad_checksums_are_acked() {
    let (_nn, nn_addr) = FakeNamenode::start().await;
    let a = TestNode::start(&nn_addr, |_| {}).await;
    let b = TestNode::start(&nn_addr, |_| {}).await;
    // A dead third node: its port is closed.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let mut h = header(blk(2001, 1, 0), &[&b], WriteStage::Create, 0);
    h.targets.push(DatanodeInfo {
        id: "dead".into(),
        address: dead,
        rack: "/r".into(),
    });
    let resps = write(&a, h, vec![]).await.unwrap();
    let acks = acks_of(&resps);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].seqno, SETUP_ACK_SEQNO);
    assert_eq!(
        acks[0].statuses,
        vec![
            AckStatus::Success as i32,
            AckStatus::Success as i32,
            AckStatus::Error as i32
        ]
    );
    assert!(
        acks[0].message.contains("could not join"),
        "{}",
        acks[0].message
    );
    // The failed setup left no replica behind; the block can be written again.
    assert!(!a.path("current/rbw/blk_2001").exists());
    assert!(!b.path("current/rbw/blk_2001").exists());

    // A packet whose checksums do not match.
    let data = payload(5000, 2);
    let mut pk = packets(&data, 0, 0, true);
    let mut bad = pk[0].checksums.to_vec();
    bad[0] ^= 1;
    pk[0].checksums = Bytes::from(bad);
    let resps = write(
        &a,
        header(blk(2001, 1, 0), &[&b], WriteStage::Create, 0),
        pk,
    )
    .await
    .unwrap();
    let acks = acks_of(&resps);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].statuses[0], AckStatus::ChecksumError as i32);
    assert!(acks[0].message.contains("blk_2001"), "{}", acks[0].message);

    // A downstream node that dies mid-stream is named in the ack.
    let data = payload(300 * 1024, 3);
    let first = packets(&data[..128 * 1024], 0, 0, false);
    let xfer::WriteBlockStream {
        requests: tx,
        responses: mut s,
        sender: _sender,
    } = open_write(&a, 16).await;
    tx.send(WriteBlockRequest {
        msg: Some(ReqMsg::Header(header(
            blk(2002, 1, 0),
            &[&b],
            WriteStage::Create,
            0,
        ))),
    })
    .await
    .unwrap();
    assert!(matches!(
        s.message::<WriteBlockResponse>()
            .await
            .unwrap()
            .unwrap()
            .msg,
        Some(RespMsg::Ready(_))
    ));
    for p in first {
        tx.send(WriteBlockRequest {
            msg: Some(ReqMsg::Packet(p)),
        })
        .await
        .unwrap();
    }
    for i in 0..2u64 {
        let m = s.message::<WriteBlockResponse>().await.unwrap().unwrap();
        match m.msg {
            Some(RespMsg::Ack(a)) => assert_eq!((a.seqno, a.statuses), (i, ok(2))),
            other => panic!("unexpected {other:?}"),
        }
    }
    b.stop().await;
    for p in packets(&data[128 * 1024..], 128 * 1024, 2, true) {
        let _ = tx
            .send(WriteBlockRequest {
                msg: Some(ReqMsg::Packet(p)),
            })
            .await;
    }
    let mut failure = None;
    while let Ok(Some(m)) = s.message::<WriteBlockResponse>().await {
        if let Some(RespMsg::Ack(a)) = m.msg {
            if a.statuses != ok(2) {
                failure = Some(a);
            }
        }
    }
    let failure = failure.expect("an ack naming the failed node");
    assert_eq!(
        failure.statuses,
        vec![AckStatus::Success as i32, AckStatus::Error as i32]
    );
    // The local replica stays for a pipeline recovery: being written, or
    // finalized when the local writer took the last packet before the
    // downstream failure stopped the stream (seen under load; recovery
    // takes a finalized replica back too).
    let kept = a.path("current/rbw/blk_2002").exists()
        || (a.path("current/finalized/blk_2002").exists()
            && a.path("current/finalized/blk_2002_1.meta").exists());
    assert!(kept, "the local replica of blk_2002 is gone");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_recovery_with_a_transferred_replacement() {
    let (nn, nn_addr) = FakeNamenode::start().await;
    let a = TestNode::start(&nn_addr, |_| {}).await;
    let b = TestNode::start(&nn_addr, |_| {}).await;
    let c = TestNode::start(&nn_addr, |_| {}).await;
    let data = payload(400 * 1024 + 77, 4);
    // 200 KiB + 300 bytes written and acknowledged (hflush), no last packet.
    let acked = 200 * 1024 + 300;
    let resps = write(
        &a,
        header(blk(3001, 1, 0), &[&b], WriteStage::Create, 0),
        packets(&data[..acked], 0, 0, false),
    )
    .await
    .unwrap();
    assert!(acks_of(&resps).iter().all(|a| a.statuses == ok(2)));
    assert!(b.path("current/rbw/blk_3001").exists());
    // B is lost; C replaces it: A copies the acknowledged bytes to C.
    let mut ca = a.client().await;
    ca.transfer_replica(TransferReplicaRequest {
        block: Some(blk(3001, 2, acked as u64)),
        targets: vec![c.info()],
        client_name: "dfs-client-test".into(),
    })
    .await
    .unwrap();
    assert!(c.path("current/rbw/blk_3001").exists());
    assert!(c.path("current/rbw/blk_3001_1.meta").exists());
    assert!(!nn.received(&c, 3001, ReplicaState::Finalized));
    // Then RECOVER with the new stamp: the partial chunk is resent.
    let resend_from = acked / 512 * 512;
    let resps = write(
        &a,
        header(blk(3001, 2, 0), &[&c], WriteStage::Recover, acked as u64),
        packets(&data[resend_from..], resend_from as u64, 100, true),
    )
    .await
    .unwrap();
    let acks = acks_of(&resps);
    assert!(!acks.is_empty());
    assert!(acks.iter().all(|a| a.statuses == ok(2)), "{acks:?}");
    for n in [&a, &c] {
        assert!(n.path("current/finalized/blk_3001_2.meta").exists());
        assert_eq!(read(n, blk(3001, 2, 0), 0, 0).await.unwrap(), data);
        nn.wait("FINALIZED with the new stamp", |s| {
            s.received
                .iter()
                .any(|(id, r)| id == &n.id && r.block.unwrap() == blk(3001, 2, data.len() as u64))
        })
        .await;
    }
    // B, left behind, still has the old stamp: it is not served for the new one.
    let stale = read(&b, blk(3001, 2, 0), 0, 0).await.unwrap_err();
    assert_eq!(ErrorKind::of(&stale), Some(ErrorKind::StaleBlock));
    let old = read(&a, blk(3001, 3, 0), 0, 0).await.unwrap_err();
    assert_eq!(ErrorKind::of(&old), Some(ErrorKind::StaleBlock));
    for n in [a, b, c] {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namenode_commands_copy_delete_and_recover() {
    let (nn, nn_addr) = FakeNamenode::start().await;
    let a = TestNode::start(&nn_addr, |_| {}).await;
    let b = TestNode::start(&nn_addr, |_| {}).await;
    let c = TestNode::start(&nn_addr, |_| {}).await;
    let data = payload(700 * 1024 + 5, 5);
    let block = blk(4001, 7, 0);
    write(
        &a,
        header(block, &[], WriteStage::Create, 0),
        packets(&data, 0, 0, true),
    )
    .await
    .unwrap();
    let full = blk(4001, 7, data.len() as u64);
    // Re-replication: A copies to B and C.
    nn.command(
        &a,
        Command::Transfer(TransferBlock {
            block: Some(full),
            targets: vec![b.info(), c.info()],
        }),
    );
    for n in [&b, &c] {
        nn.wait("the copy's FINALIZED report", |s| {
            received(s, n, 4001, ReplicaState::Finalized)
        })
        .await;
        assert_eq!(read(n, block, 0, 0).await.unwrap(), data);
        assert!(!n.path("tmp/blk_4001").exists());
    }
    // Delete on A.
    nn.command(&a, Command::Delete(DeleteBlocks { blocks: vec![full] }));
    nn.wait("the deletion report", |s| {
        s.deleted.iter().any(|(id, b)| id == &a.id && b.id == 4001)
    })
    .await;
    assert!(!a.path("current/finalized/blk_4001").exists());

    // Lease recovery: replicas being written with different lengths.
    let short = 100 * 1024 + 3;
    write(
        &a,
        header(blk(4002, 1, 0), &[&b, &c], WriteStage::Create, 0),
        packets(&data[..short], 0, 0, false),
    )
    .await
    .unwrap();
    // C got more bytes than the others (its upstream died after forwarding).
    write(
        &c,
        header(blk(4002, 1, 0), &[], WriteStage::Recover, short as u64),
        packets(
            &data[short / 512 * 512..200 * 1024],
            (short / 512 * 512) as u64,
            0,
            false,
        ),
    )
    .await
    .unwrap();
    nn.command(
        &b,
        Command::Recover(RecoverBlock {
            block: Some(blk(4002, 1, 0)),
            new_generation_stamp: 9,
            replicas: vec![a.info(), b.info(), c.info()],
        }),
    );
    nn.wait("CommitBlockSynchronization", |s| !s.commits.is_empty())
        .await;
    let commit = nn.0.lock().commits[0].clone();
    assert_eq!(commit.new_block.unwrap(), blk(4002, 9, short as u64));
    assert_eq!(commit.node_ids.len(), 3);
    assert!(!commit.delete);
    for n in [&a, &b, &c] {
        assert!(n.path("current/finalized/blk_4002_9.meta").exists());
        assert_eq!(
            read(n, blk(4002, 9, 0), 0, 0).await.unwrap(),
            &data[..short]
        );
    }
    for n in [a, b, c] {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corruption_is_refused_moved_aside_and_reported() {
    let (nn, nn_addr) = FakeNamenode::start().await;
    let a = TestNode::start(&nn_addr, |_| {}).await;
    let sc = TestNode::start(&nn_addr, |c| c.scan_rate = 64 * 1024 * 1024).await;
    let data = payload(600 * 1024, 6);
    for n in [&a, &sc] {
        write(
            n,
            header(blk(5001, 1, 0), &[], WriteStage::Create, 0),
            packets(&data, 0, 0, true),
        )
        .await
        .unwrap();
        let path = n.path("current/finalized/blk_5001");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[300_000] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
    }
    // A long range of a finalized replica goes from the file as it is,
    // with the stored checksums: the reader's verification finds the bad
    // chunk, and only it.
    let frames = read_frames(&a, blk(5001, 1, 0), 0, 0).await.unwrap();
    let sent: usize = frames.iter().map(|f| f.data.len()).sum();
    assert_eq!(sent, data.len());
    let bad: Vec<u64> = frames
        .iter()
        .filter_map(|f| match checksum::verify(&f.data, &f.checksums) {
            Ok(()) => None,
            Err(checksum::ChecksumError::Mismatch { offset }) => Some(f.offset + offset),
            Err(e) => panic!("{e:?}"),
        })
        .collect();
    assert_eq!(bad, [300_000 / 512 * 512]);
    // A range the datanode reads itself (one message) is verified there:
    // a Corrupt error naming the block and offset, never bad bytes.
    let err = read(&a, blk(5001, 1, 0), 299_000, 4096).await.unwrap_err();
    assert_eq!(ErrorKind::of(&err), Some(ErrorKind::Corrupt));
    assert!(err.message().contains("blk_5001"), "{}", err.message());
    assert!(
        err.message().contains(&(300_000 / 512 * 512).to_string()),
        "{}",
        err.message()
    );
    nn.wait("the CORRUPT report", |s| {
        received(s, &a, 5001, ReplicaState::Corrupt)
    })
    .await;
    assert!(a.path("current/corrupt/blk_5001_1").exists());
    assert!(!a.path("current/finalized/blk_5001").exists());
    // The scanner finds it by itself on the other node.
    nn.wait("the scanner's CORRUPT report", |s| {
        received(s, &sc, 5001, ReplicaState::Corrupt)
    })
    .await;
    assert!(sc.path("current/corrupt/blk_5001_1").exists());
    a.stop().await;
    sc.stop().await;
}

/// A replica whose file fails to read (a directory where it was, as a
/// failing disk's EIO) is reported by the scanner and by a read, as bad,
/// even when its files cannot be moved to `corrupt/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_replicas_are_reported_by_reads_and_the_scanner() {
    let (nn, nn_addr) = FakeNamenode::start().await;
    let sc = TestNode::start(&nn_addr, |c| c.scan_rate = 64 * 1024 * 1024).await;
    let data = payload(100 * 1024, 7);
    for id in [5201, 5202] {
        write(
            &sc,
            header(blk(id, 1, 0), &[], WriteStage::Create, 0),
            packets(&data, 0, 0, true),
        )
        .await
        .unwrap();
    }
    // A read's failure reports it at once, with corrupt/ unusable.
    std::fs::remove_dir(sc.path("current/corrupt")).unwrap();
    std::fs::write(sc.path("current/corrupt"), b"in the way").unwrap();
    let path = sc.path("current/finalized/blk_5201");
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    let err = read(&sc, blk(5201, 1, 0), 0, 4096).await.unwrap_err();
    assert_eq!(
        ErrorKind::of(&err),
        Some(ErrorKind::Corrupt),
        "{}",
        err.message()
    );
    assert!(err.message().contains("blk_5201"), "{}", err.message());
    nn.wait("the read's CORRUPT report", |s| {
        received(s, &sc, 5201, ReplicaState::Corrupt)
    })
    .await;
    std::fs::remove_file(sc.path("current/corrupt")).unwrap();
    std::fs::create_dir(sc.path("current/corrupt")).unwrap();
    // The scanner finds the other by itself.
    let path = sc.path("current/finalized/blk_5202");
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    nn.wait("the scanner's CORRUPT report", |s| {
        received(s, &sc, 5202, ReplicaState::Corrupt)
    })
    .await;
    assert!(sc.path("current/corrupt/blk_5202_1").is_dir());
    sc.stop().await;
}

/// A long range is sent from the replica's file, in frames of at most
/// 256 KiB: a replica whose file is shorter than the replica (damaged on
/// disk) is refused before any frame, as corrupt, and moved aside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_file_cut_short_is_refused_before_any_frame() {
    let (nn, nn_addr) = FakeNamenode::start().await;
    let a = TestNode::start(&nn_addr, |_| {}).await;
    let data = payload(900 * 1024, 9);
    write(
        &a,
        header(blk(5101, 1, 0), &[], WriteStage::Create, 0),
        packets(&data, 0, 0, true),
    )
    .await
    .unwrap();
    // Whole and verified, in frames of at most 256 KiB.
    let frames = read_frames(&a, blk(5101, 1, 0), 0, 0).await.unwrap();
    assert_eq!(frames.len(), 4);
    assert!(frames.iter().all(|f| f.data.len() <= 256 * 1024));
    assert_eq!(read(&a, blk(5101, 1, 0), 0, 0).await.unwrap(), data);
    assert_eq!(
        read(&a, blk(5101, 1, 0), 1000, 600_000).await.unwrap(),
        data[1000..601_000]
    );
    let path = a.path("current/finalized/blk_5101");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(800 * 1024)
        .unwrap();
    let req = ReadBlockRequest {
        block: Some(blk(5101, 1, 0)),
        offset: 0,
        length: 0,
        client_name: "dfs-client-test".into(),
    };
    let mut stream = xfer::open_read_block(&a.addr, &req, std::time::Duration::from_secs(3))
        .await
        .unwrap();
    // The first frame is the refusal: no data went out before it.
    let err = stream.message::<ReadBlockResponse>().await.unwrap_err();
    assert_eq!(ErrorKind::of(&err), Some(ErrorKind::Corrupt), "{err}");
    assert!(err.message().contains("blk_5101"), "{}", err.message());
    nn.wait("the CORRUPT report", |s| {
        received(s, &a, 5101, ReplicaState::Corrupt)
    })
    .await;
    assert!(!path.exists());
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_node_refuses_new_blocks_but_serves_reads() {
    let (nn, nn_addr) = FakeNamenode::start().await;
    let dir = tempfile::tempdir().unwrap();
    let n = TestNode::start_in(&nn_addr, dir, |_| {}).await;
    let data = payload(10_000, 7);
    write(
        &n,
        header(blk(6001, 1, 0), &[], WriteStage::Create, 0),
        packets(&data, 0, 0, true),
    )
    .await
    .unwrap();
    let dir = n.stop().await;
    let n = TestNode::start_in(&nn_addr, dir, |c| c.reserved = u64::MAX).await;
    let err = write(
        &n,
        header(blk(6002, 1, 0), &[], WriteStage::Create, 0),
        vec![],
    )
    .await
    .unwrap_err();
    assert_eq!(ErrorKind::of(&err), Some(ErrorKind::StorageFull));
    assert_eq!(read(&n, blk(6001, 1, 0), 0, 0).await.unwrap(), data);
    // Downstream in a pipeline, the full node's refusal reaches the client
    // as a failed setup ack naming it, with the kind, so the client can
    // tell "out of space" from a broken node.
    let head = TestNode::start(&nn_addr, |_| {}).await;
    let resps = write(
        &head,
        header(blk(6004, 1, 0), &[&n], WriteStage::Create, 0),
        vec![],
    )
    .await
    .unwrap();
    let acks = acks_of(&resps);
    assert_eq!(acks.len(), 1, "{resps:?}");
    assert_eq!(
        acks[0].statuses,
        [AckStatus::Success as i32, AckStatus::Error as i32]
    );
    assert_eq!(
        acks[0].kind,
        ErrorKind::StorageFull.as_str(),
        "{:?}",
        acks[0]
    );
    assert!(
        acks[0].message.contains("storage full"),
        "{}",
        acks[0].message
    );
    head.stop().await;
    nn.wait("a heartbeat saying full", |s| {
        s.heartbeats
            .iter()
            .any(|h| h.node_id == n.id && h.storage.as_ref().is_some_and(|s| s.full))
    })
    .await;
    // A vanished data directory is reported as a failure and refuses writes.
    std::fs::remove_dir_all(n.path("current")).unwrap();
    nn.wait("a heartbeat reporting the failure", |s| {
        s.heartbeats
            .iter()
            .any(|h| h.node_id == n.id && h.storage.as_ref().is_some_and(|s| !s.failure.is_empty()))
    })
    .await;
    let err = write(
        &n,
        header(blk(6003, 1, 0), &[], WriteStage::Create, 0),
        vec![],
    )
    .await
    .unwrap_err();
    assert_eq!(ErrorKind::of(&err), Some(ErrorKind::Internal));
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_without_a_namenode_and_rejects_bad_requests() {
    // Nothing listens on the namenode address: the node still serves.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let a = TestNode::start(&dead, |_| {}).await;
    let data = payload(70_000, 8);
    let resps = write(
        &a,
        header(blk(7001, 1, 0), &[], WriteStage::Create, 0),
        packets(&data, 0, 0, true),
    )
    .await
    .unwrap();
    assert!(acks_of(&resps).iter().all(|a| a.statuses == ok(1)));
    assert_eq!(read(&a, blk(7001, 1, 0), 0, 0).await.unwrap(), data);
    // A gap in the offsets is refused by the node (ack ERROR for itself).
    let mut pk = packets(&data, 0, 0, true);
    pk[1].offset_in_block += 512;
    let resps = write(&a, header(blk(7002, 1, 0), &[], WriteStage::Create, 0), pk)
        .await
        .unwrap();
    let acks = acks_of(&resps);
    assert_eq!(acks.last().unwrap().statuses, vec![AckStatus::Error as i32]);
    assert!(
        acks.last().unwrap().message.contains("gap"),
        "{}",
        acks.last().unwrap().message
    );
    // Headers without a block or stage.
    let mut h = header(blk(7003, 1, 0), &[], WriteStage::Create, 0);
    h.block = None;
    let err = write(&a, h, vec![]).await.unwrap_err();
    assert_eq!(ErrorKind::of(&err), Some(ErrorKind::InvalidArgument));
    let err = write(
        &a,
        header(blk(7003, 1, 0), &[], WriteStage::Unspecified, 0),
        vec![],
    )
    .await
    .unwrap_err();
    assert_eq!(ErrorKind::of(&err), Some(ErrorKind::InvalidArgument));
    // Huge offsets and lengths are bounded.
    let err = read(&a, blk(7001, 1, 0), u64::MAX, u64::MAX)
        .await
        .unwrap_err();
    assert_eq!(ErrorKind::of(&err), Some(ErrorKind::InvalidArgument));
    assert_eq!(
        read(&a, blk(7001, 1, 0), 69_000, u64::MAX).await.unwrap(),
        &data[69_000..]
    );
    a.stop().await;
}
