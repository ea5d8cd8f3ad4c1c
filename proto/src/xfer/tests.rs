//! Tests of the block transfer protocol's framing and connection opening.

use super::*;
use crate::{PacketAck, WriteHeader};

fn packet(seqno: u64, data: &[u8]) -> WriteBlockRequest {
    WriteBlockRequest {
        msg: Some(ReqMsg::Packet(Packet {
            seqno,
            offset_in_block: seqno * 512,
            data: Bytes::copy_from_slice(data),
            checksums: Bytes::from_static(&[1, 2, 3, 4]),
            last: seqno == 2,
            sync: false,
        })),
    }
}

#[tokio::test]
async fn frames_round_trip_and_packets_decode_as_prost_encodes_them() {
    let (a, b) = tokio::io::duplex(1 << 20);
    let mut w = FrameWriter::new(a);
    let mut r = FrameReader::new(b, "test peer");
    let header = WriteBlockRequest {
        msg: Some(ReqMsg::Header(WriteHeader {
            client_name: "c".into(),
            ..Default::default()
        })),
    };
    let sent = vec![
        header,
        packet(0, &[7u8; 70_000]),
        packet(1, &[]),
        packet(2, b"tail"),
    ];
    for m in &sent {
        w.send(m).await.unwrap();
        // A hand-built packet frame (data field last) has the length
        // its prefix says and decodes with prost as the message.
        let mut head = BytesMut::new();
        let body = m.encode_frame(&mut head);
        head.extend_from_slice(body.as_deref().unwrap_or(&[]));
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        assert_eq!(len, head.len() - LEN_PREFIX);
        assert_eq!(&WriteBlockRequest::decode(&head[LEN_PREFIX..]).unwrap(), m);
    }
    w.finish().await.unwrap();
    for m in &sent {
        let got: WriteBlockRequest = r.message().await.unwrap().unwrap();
        assert_eq!(&got, m);
    }
    assert!(r.message::<WriteBlockRequest>().await.unwrap().is_none());
}

#[tokio::test]
async fn large_and_small_frames_arriving_in_pieces_read_back_whole() {
    // A pipe of 999 bytes: every frame arrives over many reads, large
    // ones straddling the shared buffer and their own.
    let (a, b) = tokio::io::duplex(999);
    let sent: Vec<WriteBlockRequest> = (0..40u64)
        .map(|i| {
            let size = if i % 3 == 0 {
                70_000 + i as usize
            } else {
                i as usize * 7
            };
            let data: Vec<u8> = (0..size).map(|k| (k as u64 * 31 + i) as u8).collect();
            packet(i, &data)
        })
        .collect();
    let to_send = sent.clone();
    let writer = tokio::spawn(async move {
        let mut w = FrameWriter::new(a);
        for m in &to_send {
            w.send(m).await.unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        w.finish().await.unwrap();
    });
    // Every read is given up after 1 ms and tried again: reads dropped
    // in the middle of a frame lose nothing.
    async fn patient<R: AsyncRead + Unpin>(r: &mut FrameReader<R>) -> Option<WriteBlockRequest> {
        loop {
            let read = r.message::<WriteBlockRequest>();
            if let Ok(got) = tokio::time::timeout(Duration::from_millis(1), read).await {
                return got.unwrap();
            }
        }
    }
    let mut r = FrameReader::new(b, "peer");
    for m in &sent {
        assert_eq!(&patient(&mut r).await.unwrap(), m);
    }
    assert!(patient(&mut r).await.is_none());
    writer.await.unwrap();
}

#[tokio::test]
async fn read_responses_round_trip_and_an_error_ends_them() {
    let (a, b) = tokio::io::duplex(1 << 20);
    let mut w = FrameWriter::new(a);
    let mut r = FrameReader::new(b, "dn");
    let data = ReadBlockResponse {
        offset: 512,
        data: Bytes::from(vec![9u8; 100_000]),
        checksums: Bytes::from_static(&[5; 8]),
        error: None,
    };
    w.send(&data).await.unwrap();
    let corrupt = ErrorKind::Corrupt.status("blk_1_1 is corrupt at 1024");
    w.send(&ReadBlockResponse::refusal(&corrupt)).await.unwrap();
    assert_eq!(r.message::<ReadBlockResponse>().await.unwrap(), Some(data));
    let e = r.message::<ReadBlockResponse>().await.unwrap_err();
    assert_eq!(ErrorKind::of(&e), Some(ErrorKind::Corrupt));
    assert_eq!(e.message(), "blk_1_1 is corrupt at 1024");
}

/// A datanode sending data straight from a file writes the frame's head,
/// then the bytes itself: the reader gets the same message as from `send`.
#[tokio::test]
async fn a_read_head_followed_by_its_bytes_reads_as_the_whole_message() {
    let (a, b) = tokio::io::duplex(1 << 20);
    let mut w = FrameWriter::new(a);
    let mut r = FrameReader::new(b, "dn");
    let whole = ReadBlockResponse {
        offset: 1024,
        data: Bytes::from((0..200_000u32).map(|i| i as u8).collect::<Vec<_>>()),
        checksums: Bytes::from_static(&[3; 12]),
        error: None,
    };
    for len in [whole.data.len(), 0] {
        w.send_read_head(whole.offset, whole.checksums.clone(), len)
            .await
            .unwrap();
        w.get_mut().write_all(&whole.data[..len]).await.unwrap();
    }
    w.send(&whole).await.unwrap();
    w.finish().await.unwrap();
    assert_eq!(
        r.message::<ReadBlockResponse>().await.unwrap().as_ref(),
        Some(&whole)
    );
    let empty = r.message::<ReadBlockResponse>().await.unwrap().unwrap();
    assert_eq!((empty.offset, empty.data.len()), (1024, 0));
    assert_eq!(r.message::<ReadBlockResponse>().await.unwrap(), Some(whole));
    assert!(r.message::<ReadBlockResponse>().await.unwrap().is_none());
}

#[tokio::test]
async fn an_error_frame_reads_as_a_status() {
    let (a, b) = tokio::io::duplex(4096);
    let mut w = FrameWriter::new(a);
    let mut r = FrameReader::new(b, "dn");
    let ack = WriteBlockResponse {
        msg: Some(RespMsg::Ack(PacketAck {
            seqno: 3,
            ..Default::default()
        })),
    };
    w.send(&ack).await.unwrap();
    w.send(&WriteBlockResponse::refusal(&Status::failed_precondition(
        "no room",
    )))
    .await
    .unwrap();
    assert_eq!(r.message::<WriteBlockResponse>().await.unwrap(), Some(ack));
    let e = r.message::<WriteBlockResponse>().await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(e.message(), "no room");
}

/// A connection on 127.0.0.1 whose client side sends `first` (its
/// first byte alone, the rest 20 ms later when `split`), as the
/// accepting end sees it; the client stays open until the test ends.
async fn accepted_after(first: &'static [u8], split: bool) -> TcpStream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut client = TcpStream::connect(addr).await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    let cut = if split { 1 } else { first.len() };
    client.write_all(&first[..cut]).await.unwrap();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        client.write_all(&first[cut..]).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    server
}

#[tokio::test]
async fn the_first_bytes_tell_a_transfer_from_grpc_and_are_not_consumed() {
    let wait = Duration::from_secs(2);
    let s = accepted_after(b"DFXW\0\0\0\0", false).await;
    assert_eq!(peek_magic(&s, wait).await, Some(WRITE_BLOCK));
    let s = accepted_after(b"DFXR", true).await;
    assert_eq!(peek_magic(&s, wait).await, Some(READ_BLOCK));
    let mut buf = [0u8; 4];
    s.peek(&mut buf).await.unwrap();
    assert_eq!(&buf, b"DFXR", "peeking consumed the magic");
    // An HTTP/2 client's preface, and a prefix of a magic that never
    // completes, go to gRPC.
    let s = accepted_after(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", false).await;
    assert_eq!(peek_magic(&s, wait).await, None);
    let s = accepted_after(b"DF", false).await;
    assert_eq!(peek_magic(&s, Duration::from_millis(200)).await, None);
}

#[tokio::test]
async fn oversized_truncated_and_garbage_frames_are_errors_not_panics() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (u32::MAX.to_be_bytes().to_vec(), "limit"),
        (vec![0, 0, 0, 10, 1, 2], "middle of a frame"),
        (vec![0, 0, 0, 3, 0xff, 0xff, 0xff], "does not decode"),
    ];
    for (bytes, why) in cases {
        let (mut a, b) = tokio::io::duplex(4096);
        a.write_all(&bytes).await.unwrap();
        drop(a);
        let mut r = FrameReader::new(b, "peer");
        let e = r.message::<WriteBlockRequest>().await.unwrap_err();
        assert!(e.message().contains(why), "{why}: {}", e.message());
    }
}

#[tokio::test]
async fn a_large_frame_sent_slowly_holds_only_what_arrived_and_reads_back_whole() {
    let (mut a, b) = tokio::io::duplex(64 * 1024);
    let mut r = FrameReader::new(b, "slow peer");
    // A frame of almost the largest size, whose first 40 KiB arrive.
    let body: Vec<u8> = (0..MAX_MESSAGE_SIZE - 7).map(|i| (i % 251) as u8).collect();
    a.write_all(&(body.len() as u32).to_be_bytes())
        .await
        .unwrap();
    a.write_all(&body[..40 * 1024]).await.unwrap();
    let waiting = tokio::time::timeout(Duration::from_millis(100), r.next_frame()).await;
    assert!(waiting.is_err(), "a frame was returned before it arrived");
    let held = r.partial.as_ref().map(|(_, f)| f.capacity()).unwrap();
    assert!(
        held <= FIRST_ALLOC,
        "{held} bytes held for a frame of which 40 KiB arrived"
    );
    // The rest arrives (the buffer grows past its first size) and the
    // frame reads back byte for byte.
    let rest = body[40 * 1024..].to_vec();
    let writer = tokio::spawn(async move {
        a.write_all(&rest).await.unwrap();
        a
    });
    let frame = r.next_frame().await.unwrap().unwrap();
    assert_eq!(frame.len(), body.len());
    // Frozen from its own buffer, which never grew past the frame.
    let grown = frame.try_into_mut().expect("the frame owns its buffer");
    assert_eq!(grown.capacity(), body.len());
    let frame = grown.freeze();
    assert!(frame[..] == body[..], "the frame came back different");
    drop(writer.await.unwrap());
    assert_eq!(r.next_frame().await.unwrap(), None);
}
