//! [`FileWriter`]: the `AsyncWrite` end of a file being written.
//!
//! Bytes are gathered into a packet buffer; each full packet goes through a
//! bounded channel to the file's [`streamer`](crate::streamer) task, which
//! owns the pipeline. Packets are cut at 64 KiB boundaries of the block
//! and never cross a block boundary. The task starts with the first packet
//! or flush that has data: closing a file nothing was written to only
//! completes it, without a task (the lease is renewed all the same while
//! the writer is open).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use dfs_proto::defaults::{BLOCK_SIZE, PACKET_SIZE, REPLICATION};
use tokio::io::AsyncWrite;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::PollSender;
use tracing::Instrument;

use crate::client::Inner;
use crate::error::{Error, Result};
use crate::options::{check_attrs, SetAttr};
use crate::streamer::{ErrorSlot, Msg, Streamer};
use crate::types::FileStatus;

/// Messages queued between the writer and its streamer task (each at most
/// one packet), in addition to the streamer's window of unacknowledged
/// packets.
const CHANNEL_DEPTH: usize = 8;

/// Completing a file that no data was written to, without a task.
type CloseEmpty = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// What the writer waits for.
enum Pending {
    Flush(oneshot::Receiver<Result<()>>),
    Close(oneshot::Receiver<Result<()>>),
    CloseEmpty(CloseEmpty),
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Pending::Flush(_) => "Flush",
            Pending::Close(_) => "Close",
            Pending::CloseEmpty(_) => "CloseEmpty",
        })
    }
}

/// The streamer task, once started.
#[derive(Debug)]
struct Running {
    tx: PollSender<Msg>,
    task: JoinHandle<()>,
}

/// Writes a new file: `tokio::io::AsyncWrite`, where `poll_flush` is an
/// hflush (it returns once every byte written so far is acknowledged by
/// every datanode of the pipeline and readers can see it) and
/// `poll_shutdown` closes the file.
///
/// Dropping a `FileWriter` without [`close`](FileWriter::close) does not
/// complete the file: like a crashed writer, it is left to lease recovery.
///
/// ```no_run
/// # async fn f(client: dfs_client::Client) -> dfs_client::Result<()> {
/// use tokio::io::AsyncWriteExt;
/// let mut w = client.create("/logs/today", Default::default()).await?;
/// w.write_all(b"first line\n").await?;
/// w.hflush().await?; // readers now see the first line
/// w.write_all(b"second line\n").await?;
/// w.close().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct FileWriter {
    path: String,
    /// The namenode's inode id of the file.
    inode: u64,
    /// Owner and group as the namenode created the file.
    owner: String,
    group: String,
    /// The streamer, until something needs its task.
    idle: Option<Streamer>,
    running: Option<Running>,
    buf: BytesMut,
    /// File offset of `buf[0]`.
    buf_start: u64,
    block_size: u64,
    /// Bytes known to be acknowledged (the last successful flush).
    flushed: u64,
    /// Bytes the namenode was last told the file has.
    length_told: u64,
    /// `bytes_written()` when the pending flush was asked for.
    flush_target: u64,
    /// Whether the pending flush tells the namenode the length.
    pending_updates_length: bool,
    pending: Option<Pending>,
    closed: bool,
    /// Attributes to store with the close.
    close_attrs: SetAttr,
    error: ErrorSlot,
}

impl FileWriter {
    pub(crate) fn start(
        ctx: Arc<Inner>,
        path: String,
        status: FileStatus,
        first: Option<dfs_proto::LocatedBlock>,
    ) -> FileWriter {
        let block_size = if status.block_size == 0 {
            BLOCK_SIZE
        } else {
            status.block_size
        };
        let replication = if status.replication == 0 {
            REPLICATION
        } else {
            status.replication
        };
        let error = ErrorSlot::default();
        let streamer = Streamer::new(
            ctx,
            path.clone(),
            status.inode,
            block_size,
            replication,
            first,
            error.clone(),
        );
        let eager = streamer.has_first_block();
        let mut writer = FileWriter {
            path,
            inode: status.inode,
            owner: status.owner,
            group: status.group,
            idle: Some(streamer),
            running: None,
            buf: BytesMut::new(),
            buf_start: 0,
            block_size,
            flushed: 0,
            length_told: 0,
            flush_target: 0,
            pending_updates_length: false,
            pending: None,
            closed: false,
            close_attrs: SetAttr::default(),
            error,
        };
        if eager {
            writer.sender();
        }
        writer
    }

    /// The channel to the streamer task, starting it if needed.
    fn sender(&mut self) -> &mut PollSender<Msg> {
        if let Some(streamer) = self.idle.take() {
            let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
            let span = tracing::debug_span!("write", path = %self.path);
            let task = tokio::spawn(streamer.run(rx).instrument(span));
            self.running = Some(Running {
                tx: PollSender::new(tx),
                task,
            });
        }
        match &mut self.running {
            Some(r) => &mut r.tx,
            // Just set above when it was not.
            None => unreachable!("the streamer task runs"),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The namenode's inode id of the file being written (a file created
    /// again under the same path gets a new one).
    pub fn inode(&self) -> u64 {
        self.inode
    }

    /// The owner and group the namenode gave the file: those asked for,
    /// or, for a caller who is not the superuser, the caller and (unless
    /// it asked for one of its own groups) the directory's group.
    pub fn owner_and_group(&self) -> (&str, &str) {
        (&self.owner, &self.group)
    }

    /// Bytes accepted so far: the offset the next write lands at.
    pub fn bytes_written(&self) -> u64 {
        self.buf_start + self.buf.len() as u64
    }

    /// Returns once every byte written so far is acknowledged by every
    /// datanode of the pipeline, and the namenode knows the length (so
    /// listings show it too; HDFS's hsync with UPDATE_LENGTH).
    pub async fn hflush(&mut self) -> Result<()> {
        std::future::poll_fn(|cx| self.poll_flush_inner(cx, true)).await
    }

    /// Like [`hflush`](Self::hflush) without telling the namenode the
    /// length (HDFS's plain hflush): every byte written so far is
    /// acknowledged by every datanode of the pipeline, so it survives this
    /// process (lease recovery finds the length on the datanodes), and new
    /// readers see it (they ask a datanode of the pipeline how much of the
    /// block being written is acknowledged), while listings show the
    /// length the namenode knows until the next length update or the
    /// close. One namenode call cheaper; a mount uses it when `close()`
    /// returns before the commit.
    pub async fn hflush_data(&mut self) -> Result<()> {
        std::future::poll_fn(|cx| self.poll_flush_inner(cx, false)).await
    }

    /// Attributes to store when the file is closed, in the same namenode
    /// edit as the close, so no reader sees the file complete without them
    /// (as tar sets mode, owner and times while it writes). Later calls add
    /// to earlier ones; an mtime given replaces the close's own. Fails, and
    /// keeps nothing, if an owner or group name is empty, longer than 256
    /// bytes or contains NUL, or once the close has started (a
    /// `poll_shutdown` that did not finish).
    pub fn set_attrs_on_close(&mut self, attrs: &SetAttr) -> Result<()> {
        if self.closed
            || matches!(
                self.pending,
                Some(Pending::Close(_) | Pending::CloseEmpty(_))
            )
        {
            return Err(Error::InvalidArgument {
                message: format!(
                    "set attributes of {} on close: the file is already being closed",
                    self.path
                ),
            });
        }
        check_attrs(&self.path, attrs)?;
        self.close_attrs.merge(attrs.clone());
        Ok(())
    }

    /// Flushes, finalizes the last block and completes the file (retrying
    /// until the namenode confirms it). After this the file is immutable.
    pub async fn close(mut self) -> Result<()> {
        std::future::poll_fn(|cx| self.poll_close_inner(cx)).await
    }

    /// Stops writing without completing the file, as if this process had
    /// crashed: the lease expires and lease recovery closes the file.
    pub async fn abort(mut self) {
        self.idle = None;
        if let Some(r) = self.running.as_mut() {
            r.task.abort();
            // Wait until the streamer has stopped: nothing is sent after this.
            let _ = (&mut r.task).await;
        }
        tracing::debug!(path = %self.path, "writer aborted");
    }

    /// Bytes the current packet may still take: up to the next 64 KiB
    /// boundary of the block, never past the block's end.
    fn packet_room(&self) -> usize {
        packet_room(self.buf_start, self.buf.len(), self.block_size)
    }

    fn failed(&self) -> Error {
        match self.error.lock().as_ref() {
            Some(e) => e.duplicate(),
            None => Error::Server {
                message: format!("write of {} stopped", self.path),
            },
        }
    }

    fn check(&self) -> Result<()> {
        if self.closed {
            return Err(Error::InvalidArgument {
                message: format!("{}: the writer is closed", self.path),
            });
        }
        if let Some(e) = self.error.lock().as_ref() {
            return Err(e.duplicate());
        }
        Ok(())
    }

    /// Reserves a slot in the channel and sends `msg()` in it.
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        msg: impl FnOnce(&mut Self) -> Msg,
    ) -> Poll<Result<()>> {
        if ready!(self.sender().poll_reserve(cx)).is_err() {
            return Poll::Ready(Err(self.failed()));
        }
        let m = msg(self);
        if self.sender().send_item(m).is_err() {
            return Poll::Ready(Err(self.failed()));
        }
        Poll::Ready(Ok(()))
    }

    fn poll_send_buf(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.poll_send(cx, |w| {
            let data = w.buf.split().freeze();
            w.buf_start += data.len() as u64;
            Msg::Data(data)
        })
    }

    fn poll_write_inner(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<Result<usize>> {
        self.check()?;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if self.packet_room() == 0 {
            ready!(self.poll_send_buf(cx))?;
        }
        let n = self.packet_room().min(data.len());
        if self.buf.capacity() == 0 {
            self.buf.reserve(PACKET_SIZE);
        }
        self.buf.extend_from_slice(&data[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<()>>> {
        let rx = match self.pending.as_mut() {
            None => return Poll::Ready(None),
            Some(Pending::Flush(rx) | Pending::Close(rx)) => rx,
            Some(Pending::CloseEmpty(fut)) => {
                let r = ready!(fut.as_mut().poll(cx));
                self.pending = None;
                return Poll::Ready(Some(r));
            }
        };
        let r = ready!(Pin::new(rx).poll(cx));
        self.pending = None;
        Poll::Ready(Some(match r {
            Ok(r) => r,
            Err(_) => Err(self.failed()),
        }))
    }

    /// Flushes every byte written so far; with `update_length` the
    /// namenode is told the length too. A flush still pending from an
    /// earlier, abandoned call is awaited first and counts for what it
    /// covered.
    fn poll_flush_inner(&mut self, cx: &mut Context<'_>, update_length: bool) -> Poll<Result<()>> {
        loop {
            if matches!(self.pending, Some(Pending::Flush(_))) {
                ready!(self.poll_wait(cx)).unwrap_or(Ok(()))?;
                self.flushed = self.flush_target;
                if self.pending_updates_length {
                    self.length_told = self.flush_target;
                }
                continue;
            }
            self.check()?;
            if !self.buf.is_empty() {
                ready!(self.poll_send_buf(cx))?;
                continue;
            }
            let done = if update_length {
                self.length_told == self.bytes_written()
            } else {
                self.flushed == self.bytes_written()
            };
            if done {
                return Poll::Ready(Ok(()));
            }
            ready!(self.poll_send(cx, |w| {
                let (tx, rx) = oneshot::channel();
                w.pending = Some(Pending::Flush(rx));
                w.flush_target = w.bytes_written();
                w.pending_updates_length = update_length;
                Msg::Flush { tx, update_length }
            }))?;
        }
    }

    fn poll_close_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        loop {
            match self.pending {
                Some(Pending::Close(_) | Pending::CloseEmpty(_)) => {
                    let r = ready!(self.poll_wait(cx)).unwrap_or(Ok(()));
                    self.closed = true;
                    return Poll::Ready(r);
                }
                Some(Pending::Flush(_)) => {
                    // A flush was started and not awaited to its end.
                    ready!(self.poll_wait(cx));
                    continue;
                }
                None => {}
            }
            if self.closed {
                return Poll::Ready(Ok(()));
            }
            if let Some(e) = self.error.lock().as_ref() {
                return Poll::Ready(Err(e.duplicate()));
            }
            if !self.buf.is_empty() {
                ready!(self.poll_send_buf(cx))?;
                continue;
            }
            if let Some(mut streamer) = self.idle.take() {
                // Nothing was written: complete the file from here.
                let attrs = std::mem::take(&mut self.close_attrs).to_proto();
                self.pending = Some(Pending::CloseEmpty(Box::pin(async move {
                    streamer.close(attrs).await
                })));
                continue;
            }
            ready!(self.poll_send(cx, |w| {
                let (tx, rx) = oneshot::channel();
                w.pending = Some(Pending::Close(rx));
                Msg::Close {
                    tx,
                    attrs: std::mem::take(&mut w.close_attrs).to_proto(),
                }
            }))?;
        }
    }
}

impl Drop for FileWriter {
    /// A writer dropped without `close` stops at once, like a crashed
    /// process: nothing more is sent and the file is left to lease recovery.
    fn drop(&mut self) {
        if let Some(r) = &self.running {
            r.task.abort();
        }
    }
}

/// Bytes a packet that starts at file offset `start` and holds `buffered`
/// bytes may still take: up to the next 64 KiB boundary of its block, never
/// past the block's end.
fn packet_room(start: u64, buffered: usize, block_size: u64) -> usize {
    let in_block = start % block_size;
    let packet = PACKET_SIZE as u64;
    let end = ((in_block / packet + 1) * packet).min(block_size);
    ((end - in_block) as usize).saturating_sub(buffered)
}

impl AsyncWrite for FileWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().poll_write_inner(cx, buf).map_err(Into::into)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.get_mut()
            .poll_flush_inner(cx, true)
            .map_err(Into::into)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.get_mut().poll_close_inner(cx).map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_room_respects_packet_and_block_boundaries() {
        let room = packet_room;
        assert_eq!(room(0, 0, 1 << 20), PACKET_SIZE);
        assert_eq!(room(1000, 0, 1 << 20), PACKET_SIZE - 1000);
        assert_eq!(room(0, 0, 4096), 4096);
        assert_eq!(room(4096, 100, 4096), 3996);
        assert_eq!(room((1 << 20) - 512, 0, 1 << 20), 512);
        // After an hflush at 1000 the packet still ends at 64 KiB.
        assert_eq!(room(1000, 24, 1 << 20), PACKET_SIZE - 1024);
        // Second block starts a fresh packet.
        assert_eq!(room(4096 * 3, 0, 4096 * 3), 4096 * 3);
    }
}
