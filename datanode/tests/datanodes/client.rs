//! A tiny client: writes and reads blocks over the block transfer
//! protocol, packet by packet.

use std::time::Duration;

use bytes::Bytes;
use dfs_proto::checksum;
use dfs_proto::defaults::PACKET_SIZE;
use dfs_proto::write_block_request::Msg as ReqMsg;
use dfs_proto::write_block_response::Msg as RespMsg;
use dfs_proto::xfer;
use dfs_proto::*;
use tonic::Status;

use super::*;

pub(crate) fn payload(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

/// Packets of `data` starting at block offset `base`, seqnos from `seq0`.
pub(crate) fn packets(data: &[u8], base: u64, seq0: u64, last: bool) -> Vec<Packet> {
    let mut out: Vec<Packet> = data
        .chunks(PACKET_SIZE)
        .enumerate()
        .map(|(i, c)| Packet {
            seqno: seq0 + i as u64,
            offset_in_block: base + (i * PACKET_SIZE) as u64,
            data: Bytes::copy_from_slice(c),
            checksums: Bytes::from(checksum::compute(c)),
            last: false,
            sync: false,
        })
        .collect();
    if last {
        match out.last_mut() {
            Some(p) => p.last = true,
            None => out.push(Packet {
                seqno: seq0,
                offset_in_block: base,
                data: Bytes::new(),
                checksums: Bytes::new(),
                last: true,
                sync: false,
            }),
        }
    }
    out
}

pub(crate) fn header(
    block: ExtendedBlock,
    targets: &[&TestNode],
    stage: WriteStage,
    bytes_acked: u64,
) -> WriteHeader {
    WriteHeader {
        block: Some(block),
        targets: targets.iter().map(|t| t.info()).collect(),
        stage: stage as i32,
        client_name: "dfs-client-test".into(),
        bytes_acked,
        ack_timeout_base_ms: 0,
    }
}

/// Opens a block write stream to `node`.
pub(crate) async fn open_write(node: &TestNode, queue: usize) -> xfer::WriteBlockStream {
    xfer::open_write_block(&node.addr, queue, Duration::from_secs(3))
        .await
        .unwrap()
}

/// Runs one block write stream; returns every response (ready + acks).
pub(crate) async fn write(
    first: &TestNode,
    header: WriteHeader,
    packets: Vec<Packet>,
) -> Result<Vec<WriteBlockResponse>, Status> {
    let xfer::WriteBlockStream {
        requests: tx,
        responses: mut stream,
        sender: _sender,
    } = open_write(first, 128).await;
    tx.send(WriteBlockRequest {
        msg: Some(ReqMsg::Header(header)),
    })
    .await
    .unwrap();
    let mut out = Vec::new();
    let first_msg = stream.message::<WriteBlockResponse>().await?;
    let ready = matches!(
        first_msg,
        Some(WriteBlockResponse {
            msg: Some(RespMsg::Ready(_))
        })
    );
    out.extend(first_msg);
    if ready {
        for p in packets {
            tx.send(WriteBlockRequest {
                msg: Some(ReqMsg::Packet(p)),
            })
            .await
            .unwrap();
        }
    }
    drop(tx);
    while let Some(m) = stream.message::<WriteBlockResponse>().await? {
        out.push(m);
    }
    Ok(out)
}

pub(crate) fn acks_of(resps: &[WriteBlockResponse]) -> Vec<PacketAck> {
    resps
        .iter()
        .filter_map(|r| match &r.msg {
            Some(RespMsg::Ack(a)) => Some(a.clone()),
            _ => None,
        })
        .collect()
}

pub(crate) fn ok(n: usize) -> Vec<i32> {
    vec![AckStatus::Success as i32; n]
}

/// The frames of a block read, as sent (not verified).
pub(crate) async fn read_frames(
    node: &TestNode,
    block: ExtendedBlock,
    offset: u64,
    length: u64,
) -> Result<Vec<ReadBlockResponse>, Status> {
    let req = ReadBlockRequest {
        block: Some(block),
        offset,
        length,
        client_name: "dfs-client-test".into(),
    };
    let mut s = xfer::open_read_block(&node.addr, &req, Duration::from_secs(3))
        .await
        .unwrap();
    let mut frames = Vec::new();
    while let Some(m) = s.message::<ReadBlockResponse>().await? {
        assert_eq!(m.offset % 512, 0);
        frames.push(m);
    }
    Ok(frames)
}

/// Reads a range of a block, every chunk verified.
pub(crate) async fn read(
    node: &TestNode,
    block: ExtendedBlock,
    offset: u64,
    length: u64,
) -> Result<Vec<u8>, Status> {
    let mut out = Vec::new();
    let mut first = None;
    for m in read_frames(node, block, offset, length).await? {
        checksum::verify(&m.data, &m.checksums).expect("chunks verify");
        first.get_or_insert(m.offset);
        out.extend_from_slice(&m.data);
    }
    let start = first.unwrap_or(offset);
    let skip = (offset - start) as usize;
    let mut out = out.split_off(skip.min(out.len()));
    if length > 0 {
        out.truncate(length as usize);
    }
    Ok(out)
}

pub(crate) fn blk(id: u64, gs: u64, length: u64) -> ExtendedBlock {
    ExtendedBlock {
        id,
        generation_stamp: gs,
        length,
    }
}
