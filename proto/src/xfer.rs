//! The block transfer protocol: block writes and reads as protobuf frames
//! over plain TCP connections, as HDFS's DataTransferProtocol runs beside
//! its RPC.
//!
//! A connection to a datanode's address opens with a 4-byte magic that
//! names the operation ([`WRITE_BLOCK`], [`READ_BLOCK`]); a datanode tells
//! it from an HTTP/2 (gRPC) connection by those first bytes, so one port
//! serves both. Then each side sends frames: a 4-byte big-endian length and
//! one protobuf message ([`WriteBlockRequest`] one way, [`WriteBlockResponse`]
//! the other; one [`ReadBlockRequest`], then [`ReadBlockResponse`]s). The
//! end of a side's messages is the end of its half of the connection; a
//! refusal is a [`CallError`] in the last frame, read back as a [`Status`]
//! so both ends handle it as they would a gRPC error.
//!
//! Why not gRPC streams: the packets are the whole data path, and through
//! HTTP/2 each one was copied into a decode buffer, re-encoded to forward
//! it and copied again into the connection's send buffer. Here a frame is
//! read once into memory that the decoded packet then points into, and a
//! packet's data is written from its own memory with one vectored write.

use std::io::{self, IoSlice};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};
use prost::Message;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tonic::{Code, Status};

use crate::defaults::MAX_MESSAGE_SIZE;
use crate::error_kind::ErrorKind;
use crate::write_block_request::Msg as ReqMsg;
use crate::write_block_response::Msg as RespMsg;
use crate::{
    CallError, Packet, ReadBlockRequest, ReadBlockResponse, WriteBlockRequest, WriteBlockResponse,
};

/// Opens a block write stream (`WriteBlockRequest` frames in,
/// `WriteBlockResponse` frames out).
pub const WRITE_BLOCK: [u8; 4] = *b"DFXW";
/// Opens a block read (one `ReadBlockRequest` frame in,
/// `ReadBlockResponse` frames out).
pub const READ_BLOCK: [u8; 4] = *b"DFXR";
/// Every operation a connection may open with.
const OPERATIONS: [[u8; 4]; 2] = [WRITE_BLOCK, READ_BLOCK];
/// Bytes of a frame's length prefix.
const LEN_PREFIX: usize = 4;
/// TCP keepalive of a block transfer connection: a peer whose host died
/// or dropped off the network is noticed within ~25 s even while a stream
/// is idle (an hflushed file held open), as the HTTP/2 pings of the gRPC
/// streams did.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_PROBES: u32 = 3;
/// Most bytes a reader asks the kernel for while it looks for the next
/// frame: a run of small frames (acks) in one read, and little of a large
/// frame's body, which is read into the frame's own buffer instead.
const HEAD_READ: usize = 2048;
/// Frames up to this size are cut from the shared read buffer.
const SMALL_FRAME: usize = 16 * 1024;
/// A large frame's buffer starts at most this big and grows as its bytes
/// arrive.
const FIRST_ALLOC: usize = 1024 * 1024;

/// A message that travels as a frame of the block transfer protocol.
pub trait Frame: Message + Default + Sized {
    /// A received message, or the error it carries.
    fn into_result(self) -> Result<Self, Status> {
        Ok(self)
    }

    /// Writes the whole frame (length prefix included) into `head`, except
    /// for a trailing body it returns to be sent after `head` as it is,
    /// without a copy.
    fn encode_frame(&self, head: &mut BytesMut) -> Option<Bytes> {
        encode_whole(self, head);
        None
    }
}

/// The number of `ReadBlockResponse.data`, sent as a frame's body.
const READ_DATA_FIELD: u32 = 2;

/// Frames `m` whole into `head`.
fn encode_whole(m: &impl Message, head: &mut BytesMut) {
    let len = m.encoded_len();
    head.reserve(LEN_PREFIX + len);
    head.put_u32(len as u32);
    // Cannot fail: `reserve` made room for the whole message.
    let _ = m.encode(head);
}

/// Frames a message whose one large `bytes` field (number `tag`) travels
/// as the body: `fields` is the message with that field empty, written
/// into `head` followed by the field's key and length; the `body_len`
/// bytes of the body follow. With `outer`, the message is field `outer` of
/// the framed one (a oneof member). Field order does not matter to a
/// decoder.
fn encode_head(
    fields: &impl Message,
    tag: u32,
    body_len: usize,
    outer: Option<u32>,
    head: &mut BytesMut,
) {
    let inner_len =
        fields.encoded_len() + key_len(tag) + encoded_len_varint(body_len as u64) + body_len;
    let frame_len = match outer {
        Some(o) => key_len(o) + encoded_len_varint(inner_len as u64) + inner_len,
        None => inner_len,
    };
    head.reserve(LEN_PREFIX + frame_len - body_len);
    head.put_u32(frame_len as u32);
    if let Some(o) = outer {
        encode_key(o, WireType::LengthDelimited, head);
        encode_varint(inner_len as u64, head);
    }
    let _ = fields.encode(head);
    encode_key(tag, WireType::LengthDelimited, head);
    encode_varint(body_len as u64, head);
}

/// [`encode_head`] of a body held in memory, returned to be sent after
/// the head.
fn encode_with_body(
    fields: &impl Message,
    tag: u32,
    body: &Bytes,
    outer: Option<u32>,
    head: &mut BytesMut,
) -> Option<Bytes> {
    encode_head(fields, tag, body.len(), outer, head);
    Some(body.clone())
}

impl Frame for WriteBlockRequest {
    fn encode_frame(&self, head: &mut BytesMut) -> Option<Bytes> {
        let Some(ReqMsg::Packet(p)) = &self.msg else {
            encode_whole(self, head);
            return None;
        };
        let fields = Packet {
            seqno: p.seqno,
            offset_in_block: p.offset_in_block,
            data: Bytes::new(),
            checksums: p.checksums.clone(),
            last: p.last,
            sync: p.sync,
        };
        // `Packet.data` is field 3; the packet is field 2 of the request.
        encode_with_body(&fields, 3, &p.data, Some(2), head)
    }
}

impl Frame for ReadBlockRequest {}

impl Frame for ReadBlockResponse {
    fn into_result(self) -> Result<Self, Status> {
        match self.error {
            Some(e) => Err(e.into_status()),
            None => Ok(self),
        }
    }

    fn encode_frame(&self, head: &mut BytesMut) -> Option<Bytes> {
        let fields = ReadBlockResponse {
            offset: self.offset,
            data: Bytes::new(),
            checksums: self.checksums.clone(),
            error: self.error.clone(),
        };
        encode_with_body(&fields, READ_DATA_FIELD, &self.data, None, head)
    }
}

impl CallError {
    /// A refusal carrying `status` (its code, message and error kind).
    pub fn from_status(status: &Status) -> Self {
        CallError {
            code: status.code() as i32,
            message: status.message().to_string(),
            kind: ErrorKind::of(status)
                .map(|k| k.as_str().to_string())
                .unwrap_or_default(),
        }
    }

    /// The status this refusal carries.
    pub fn into_status(self) -> Status {
        match ErrorKind::parse(&self.kind) {
            Some(kind) => kind.status(self.message),
            None => Status::new(Code::from_i32(self.code), self.message),
        }
    }
}

impl Frame for WriteBlockResponse {
    fn into_result(self) -> Result<Self, Status> {
        match self.msg {
            Some(RespMsg::Error(e)) => Err(e.into_status()),
            _ => Ok(self),
        }
    }
}

/// A message a datanode answers with, which can also carry a refusal.
pub trait Reply: Frame {
    /// The frame that refuses a call or ends its stream with `status`.
    fn refusal(status: &Status) -> Self;
}

impl Reply for WriteBlockResponse {
    fn refusal(status: &Status) -> Self {
        WriteBlockResponse {
            msg: Some(RespMsg::Error(CallError::from_status(status))),
        }
    }
}

impl Reply for ReadBlockResponse {
    fn refusal(status: &Status) -> Self {
        ReadBlockResponse {
            error: Some(CallError::from_status(status)),
            ..Default::default()
        }
    }
}

/// Reads frames from one side of a connection.
#[derive(Debug)]
pub struct FrameReader<R = OwnedReadHalf> {
    rd: R,
    buf: BytesMut,
    /// A large frame being read into its own buffer: its length and what
    /// arrived so far (kept here, so a dropped read loses nothing).
    partial: Option<(usize, BytesMut)>,
    peer: String,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Frames from `rd`; `peer` names the other end in errors.
    pub fn new(rd: R, peer: impl Into<String>) -> Self {
        FrameReader {
            rd,
            buf: BytesMut::new(),
            partial: None,
            peer: peer.into(),
        }
    }

    /// The next frame's bytes, or `None` where the peer ended its side
    /// cleanly between frames.
    ///
    /// Small frames (acks, headers) are cut from a shared buffer that each
    /// read fills with at most `HEAD_READ` bytes; a large one (a packet)
    /// gets a buffer of its own that its body is read into directly. Cutting
    /// large frames from one buffer copied the part of the next frame that
    /// each read brought along, whenever the buffer had to grow while the
    /// frames before it were still in use.
    /// Cancel-safe: a read dropped while it waits loses no byte.
    pub async fn next_frame(&mut self) -> Result<Option<Bytes>, Status> {
        if self.partial.is_none() {
            while self.buf.len() < LEN_PREFIX {
                if self.read_some(HEAD_READ).await? == 0 {
                    return if self.buf.is_empty() {
                        Ok(None)
                    } else {
                        Err(cut_short(&self.peer))
                    };
                }
            }
            let len =
                u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
            if len > MAX_MESSAGE_SIZE {
                return Err(Status::invalid_argument(format!(
                    "{} sent a frame of {len} bytes, more than the {MAX_MESSAGE_SIZE}-byte limit",
                    self.peer
                )));
            }
            if len <= SMALL_FRAME {
                while self.buf.len() < LEN_PREFIX + len {
                    let want = (LEN_PREFIX + len - self.buf.len()).max(HEAD_READ);
                    if self.read_some(want).await? == 0 {
                        return Err(cut_short(&self.peer));
                    }
                }
            }
            self.buf.advance(LEN_PREFIX);
            if self.buf.len() >= len {
                return Ok(Some(self.buf.split_to(len).freeze()));
            }
            // What was read of it already (at most `HEAD_READ` bytes), then
            // the rest straight into its own buffer, which grows as bytes
            // arrive past `FIRST_ALLOC`: a peer that declares a large frame
            // and sends it slowly holds only the memory it filled.
            let mut frame = BytesMut::with_capacity(len.min(FIRST_ALLOC));
            frame.extend_from_slice(&self.buf);
            self.buf.clear();
            self.partial = Some((len, frame));
        }
        let FrameReader {
            rd, partial, peer, ..
        } = self;
        if let Some((len, frame)) = partial.as_mut() {
            while frame.len() < *len {
                let room = *len - frame.len();
                if frame.capacity() == frame.len() {
                    // Doubling, but never past the frame: amortised one
                    // copy, only for frames over `FIRST_ALLOC` (packets
                    // and read answers are smaller).
                    let grown = frame.len() + room.min(frame.len().max(FIRST_ALLOC));
                    let mut bigger = BytesMut::with_capacity(grown);
                    bigger.extend_from_slice(frame);
                    *frame = bigger;
                }
                let n = rd
                    .read_buf(&mut (&mut *frame).limit(room))
                    .await
                    .map_err(|e| broken(peer, e))?;
                if n == 0 {
                    return Err(cut_short(peer));
                }
            }
        }
        Ok(partial.take().map(|(_, frame)| frame.freeze()))
    }

    /// Reads at most `max` more bytes into the shared buffer.
    async fn read_some(&mut self, max: usize) -> Result<usize, Status> {
        self.buf.reserve(max);
        let n = self.rd.read_buf(&mut (&mut self.buf).limit(max)).await;
        n.map_err(|e| broken(&self.peer, e))
    }

    /// The next message, `None` at the clean end of the peer's side; an
    /// error frame, a broken connection or an undecodable frame is an
    /// error. A message's `bytes` fields point into the frame (no copy).
    pub async fn message<M: Frame>(&mut self) -> Result<Option<M>, Status> {
        let Some(frame) = self.next_frame().await? else {
            return Ok(None);
        };
        let m = M::decode(frame).map_err(|e| {
            Status::invalid_argument(format!(
                "{} sent a frame that does not decode: {e}",
                self.peer
            ))
        })?;
        m.into_result().map(Some)
    }
}

fn broken(peer: &str, e: io::Error) -> Status {
    Status::unavailable(format!("connection to {peer} broke: {e}"))
}

fn cut_short(peer: &str) -> Status {
    Status::unavailable(format!(
        "{peer} closed the connection in the middle of a frame"
    ))
}

/// Writes frames to one side of a connection.
#[derive(Debug)]
pub struct FrameWriter<W = OwnedWriteHalf> {
    w: W,
    /// Bytes that go out before the next frame's body: the frame's head,
    /// preceded on a new connection by the operation's magic, so that it
    /// travels with the first frame instead of in a write of its own.
    head: BytesMut,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    /// Frames to `w`.
    pub fn new(w: W) -> Self {
        FrameWriter {
            w,
            head: BytesMut::with_capacity(1024),
        }
    }

    /// Frames to `w` that open with `magic` (sent with the first frame).
    fn opening(w: W, magic: [u8; 4]) -> Self {
        let mut out = FrameWriter::new(w);
        out.head.extend_from_slice(&magic);
        out
    }

    /// Sends one message as a frame.
    pub async fn send<M: Frame>(&mut self, m: &M) -> io::Result<()> {
        let body = m.encode_frame(&mut self.head);
        let body = body.as_deref().unwrap_or(&[]);
        write_both(&mut self.w, &self.head, body).await?;
        self.head.clear();
        Ok(())
    }

    /// Sends the head of a `ReadBlockResponse` frame: data at `offset`
    /// with its `checksums`, whose `len` bytes the caller writes next to
    /// [`FrameWriter::get_mut`] itself (from a file, with `sendfile`).
    /// Exactly `len` bytes must follow, or the connection be dropped.
    pub async fn send_read_head(
        &mut self,
        offset: u64,
        checksums: Bytes,
        len: usize,
    ) -> io::Result<()> {
        let fields = ReadBlockResponse {
            offset,
            checksums,
            ..ReadBlockResponse::default()
        };
        encode_head(&fields, READ_DATA_FIELD, len, None, &mut self.head);
        self.w.write_all(&self.head).await?;
        self.head.clear();
        Ok(())
    }

    /// The connection the frames go to.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.w
    }

    /// Ends this side of the connection (the peer reads a clean end).
    pub async fn finish(&mut self) -> io::Result<()> {
        if !self.head.is_empty() {
            self.w.write_all(&self.head).await?;
            self.head.clear();
        }
        self.w.shutdown().await
    }
}

/// Writes `a` then `b` with as few (vectored) writes as the kernel takes.
async fn write_both<W: AsyncWrite + Unpin>(
    w: &mut W,
    mut a: &[u8],
    mut b: &[u8],
) -> io::Result<()> {
    while !a.is_empty() {
        let n = w
            .write_vectored(&[IoSlice::new(a), IoSlice::new(b)])
            .await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        if n < a.len() {
            a = &a[n..];
        } else {
            b = &b[n - a.len()..];
            a = &[];
        }
    }
    w.write_all(b).await
}

/// Turns on the block transfer protocol's TCP keepalive on `stream`.
pub fn set_keepalive(stream: &TcpStream) -> io::Result<()> {
    let params = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_PROBES);
    socket2::SockRef::from(stream).set_tcp_keepalive(&params)
}

/// The task that writes a stream's queued frames. Dropping this aborts it,
/// so a peer that stopped reading cannot keep the task, its connection and
/// the frames queued for it alive after the stream's owner is gone.
#[derive(Debug)]
pub struct SendTask(tokio::task::AbortHandle);

impl Drop for SendTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An open block write stream (see [`open_write_block`]).
#[derive(Debug)]
pub struct WriteBlockStream {
    /// The requests (header, then packets); dropping every sender ends
    /// the request side once the queued ones are written.
    pub requests: mpsc::Sender<WriteBlockRequest>,
    /// The node's answers.
    pub responses: FrameReader,
    /// The task writing the requests; keep it as long as the stream.
    pub sender: SendTask,
}

/// Sends every message of `rx` as a frame, then ends this side of the
/// connection once `rx` closes (every sender dropped). Stops at the first
/// failed write; the senders then see `rx` closed, and the peer's failure
/// shows on the responses.
pub async fn send_all<M: Frame, W: AsyncWrite + Unpin>(
    mut out: FrameWriter<W>,
    mut rx: mpsc::Receiver<M>,
) -> io::Result<()> {
    while let Some(m) = rx.recv().await {
        out.send(&m).await?;
    }
    out.finish().await
}

/// Connects to `addr` (a datanode) within `connect_timeout` and opens the
/// operation `magic`; returns the two halves as frame endpoints.
pub async fn connect(
    addr: &str,
    magic: [u8; 4],
    connect_timeout: Duration,
) -> io::Result<(FrameWriter, FrameReader)> {
    let stream = match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
        Ok(s) => s?,
        Err(_) => {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no connection within {connect_timeout:?}"),
            ))
        }
    };
    stream.set_nodelay(true)?;
    set_keepalive(&stream)?;
    let (rd, wr) = stream.into_split();
    Ok((FrameWriter::opening(wr, magic), FrameReader::new(rd, addr)))
}

/// Opens a block write stream to the datanode at `addr`: the requests go
/// through a queue (of `queue` messages) to a task that writes them, the
/// responses come from the reader. Dropping the queue's last sender ends
/// the request side. A failed write ends the task; the node's failure then
/// shows on the responses.
pub async fn open_write_block(
    addr: &str,
    queue: usize,
    connect_timeout: Duration,
) -> io::Result<WriteBlockStream> {
    let (out, responses) = connect(addr, WRITE_BLOCK, connect_timeout).await?;
    let (requests, rx) = mpsc::channel(queue);
    let task = tokio::spawn(send_all(out, rx));
    Ok(WriteBlockStream {
        requests,
        responses,
        sender: SendTask(task.abort_handle()),
    })
}

/// Opens a block read of `req` at the datanode at `addr`; the returned
/// reader yields its `ReadBlockResponse`s. Dropping it closes the
/// connection, which stops the node.
pub async fn open_read_block(
    addr: &str,
    req: &ReadBlockRequest,
    connect_timeout: Duration,
) -> io::Result<FrameReader> {
    let (mut out, responses) = connect(addr, READ_BLOCK, connect_timeout).await?;
    out.send(req).await?;
    // Dropping the write half ends the request side; the node does not
    // wait for more.
    Ok(responses)
}

/// Reads the 4-byte operation magic a block transfer connection opens
/// with, or `None` when the first bytes are something else (an HTTP/2
/// client's preface) or do not come within `wait`; nothing is consumed.
pub async fn peek_magic(stream: &TcpStream, wait: Duration) -> Option<[u8; 4]> {
    let peek = async {
        let mut buf = [0u8; 4];
        loop {
            match stream.peek(&mut buf).await {
                Ok(4) => return Some(buf),
                // A prefix of a magic may be followed by the rest.
                Ok(n) if n > 0 && OPERATIONS.iter().any(|m| m.starts_with(&buf[..n])) => {
                    tokio::time::sleep(Duration::from_millis(1)).await
                }
                _ => return None,
            }
        }
    };
    let magic = tokio::time::timeout(wait, peek).await.ok().flatten()?;
    OPERATIONS.contains(&magic).then_some(magic)
}

#[cfg(test)]
mod tests;
