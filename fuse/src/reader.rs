//! Reading an open file: sequential read-ahead and positional reads.
//!
//! The kernel asks for at most a few hundred KiB at a time, several at once
//! when it reads ahead. A handle whose reads follow each other gets a
//! stream: a task that reads the file sequentially (one block stream per
//! block, as `dfs get` does) into chunks and queues them in a bounded
//! channel, `read_ahead` bytes ahead of the reader, while the kernel copies
//! out what has arrived. A read elsewhere in the file goes to `read_at` on a
//! second `FileReader` and leaves the stream alone; reads a little behind
//! the stream (the kernel's parallel read-ahead arriving out of order) are
//! served from the last chunks kept.

use std::collections::VecDeque;
use std::io::SeekFrom;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use dfs_client::{FileReader, FileStatus};
use fuser::Errno;
use tokio::io::AsyncSeekExt;
use tokio::sync::{mpsc, Mutex};
use tokio::task::AbortHandle;
use tracing::{debug, warn};

use crate::errno::errno;

/// How far behind the stream's reader received data is kept (at most).
const MAX_CHUNK: u64 = 1024 * 1024;
/// The largest piece the stream receives (one datanode read message, as
/// the client verified it), for sizing its queue to the read-ahead window.
const PIECE: u64 = dfs_proto::defaults::READ_CHUNK as u64;

/// Data for one read of the stream: a chunk at the stream's position.
type Piece = Result<Bytes, Errno>;

#[derive(Debug, Default)]
struct Stream {
    /// Received data, contiguous, ending at `hi`.
    chunks: VecDeque<(u64, Bytes)>,
    /// File offset the next received chunk starts at.
    hi: u64,
    rx: Option<mpsc::Receiver<Piece>>,
    task: Option<AbortHandle>,
    /// Where the last read ended: a read starting there is sequential.
    last_end: u64,
}

impl Stream {
    fn lo(&self) -> u64 {
        self.chunks.front().map_or(self.hi, |(off, _)| *off)
    }

    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.rx = None;
        self.chunks.clear();
    }
}

/// An open file being read.
#[derive(Debug)]
pub struct Reader {
    path: String,
    len: u64,
    window: u64,
    chunk: u64,
    timeout: Duration,
    stream: Mutex<Stream>,
    /// For reads outside the stream (and the first stream): opened again
    /// when a stream took it.
    spare: Mutex<Option<FileReader>>,
    /// The file as opened, for more readers of it (never of another file
    /// created at the path since).
    origin: FileReader,
    /// The whole file, when it was read ahead ([`crate::prefetch`]).
    whole: Option<Bytes>,
}

impl Drop for Reader {
    fn drop(&mut self) {
        if let Some(task) = self.stream.get_mut().task.take() {
            task.abort();
        }
    }
}

impl Reader {
    /// Wraps a file opened at `path`; `read_ahead` is the stream's window in
    /// bytes (0: every read goes to `read_at`), `timeout` bounds each wait
    /// for data.
    pub fn new(file: FileReader, path: String, read_ahead: u64, timeout: Duration) -> Reader {
        Reader {
            path,
            len: file.len(),
            window: read_ahead,
            chunk: read_ahead.clamp(1, MAX_CHUNK),
            timeout,
            stream: Mutex::new(Stream::default()),
            origin: file.reopen(),
            spare: Mutex::new(Some(file)),
            whole: None,
        }
    }

    /// Serves every read from `whole`, the file's bytes read ahead, if it
    /// holds the whole file; otherwise reads as usual.
    pub fn with_whole(mut self, whole: Bytes) -> Reader {
        if whole.len() as u64 == self.len {
            self.whole = Some(whole);
        }
        self
    }

    /// The file's status when it was opened.
    pub fn status(&self) -> &FileStatus {
        self.origin.status()
    }

    /// The path the file was opened at.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The file's length when it was opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty file.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads up to `size` bytes at `offset` (short only at the end of file).
    /// A read inside one received piece is a view of it, not a copy.
    pub async fn read(&self, offset: u64, size: u32) -> Result<Bytes, Errno> {
        if offset >= self.len || size == 0 {
            return Ok(Bytes::new());
        }
        let end = self.len.min(offset.saturating_add(u64::from(size)));
        if let Some(whole) = &self.whole {
            // Both within `len`, which is `whole.len()`.
            return Ok(whole.slice(offset as usize..end as usize));
        }
        if self.window > 0 {
            let mut s = self.stream.lock().await;
            let servable =
                s.rx.is_some() && offset >= s.lo() && offset <= s.hi.saturating_add(self.window);
            if servable || offset == s.last_end {
                if !servable {
                    self.start_stream(&mut s, offset).await?;
                }
                s.last_end = end;
                return self.serve_from_stream(&mut s, offset, end).await;
            }
            s.last_end = end;
        }
        self.read_direct(offset, end).await
    }

    /// Starts a stream at `offset`, replacing any other.
    async fn start_stream(&self, s: &mut Stream, offset: u64) -> Result<(), Errno> {
        s.stop();
        let mut file = match self.spare.lock().await.take() {
            Some(file) => file,
            None => self.origin.reopen(),
        };
        // The pieces are the datanode's read messages (up to 256 KiB) as
        // the client verified them, handed over without a copy; the queue
        // holds at most the window's worth of them.
        let (tx, rx) = mpsc::channel(usize::try_from(self.window / PIECE).unwrap_or(1).max(1));
        let (len, path) = (self.len, self.path.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = file.seek(SeekFrom::Start(offset)).await {
                let _ = tx.send(Err(io_errno(&e, &path, offset))).await;
                return;
            }
            let mut pos = offset;
            while pos < len {
                let mut piece = match file.read_bytes().await {
                    Ok(piece) => piece,
                    Err(e) => {
                        let e = std::io::Error::other(e);
                        let _ = tx.send(Err(io_errno(&e, &path, pos))).await;
                        return;
                    }
                };
                if piece.is_empty() {
                    return;
                }
                // Nothing past the length the file had when it was opened.
                piece.truncate(usize::try_from(len - pos).unwrap_or(usize::MAX));
                pos += piece.len() as u64;
                if tx.send(Ok(piece)).await.is_err() {
                    // The handle was released or moved elsewhere.
                    return;
                }
            }
        });
        s.task = Some(task.abort_handle());
        s.rx = Some(rx);
        s.hi = offset;
        debug!(path = %self.path, offset, "sequential read stream started");
        Ok(())
    }

    /// Serves [offset, end) from the stream, waiting for chunks as needed.
    async fn serve_from_stream(
        &self,
        s: &mut Stream,
        offset: u64,
        end: u64,
    ) -> Result<Bytes, Errno> {
        while s.hi < end {
            let Some(rx) = s.rx.as_mut() else {
                return Err(Errno::EIO);
            };
            let piece = match tokio::time::timeout(self.timeout, rx.recv()).await {
                Ok(Some(piece)) => piece,
                Ok(None) => {
                    // The stream ended early: the file is shorter than it
                    // was when opened. A short answer would read as EOF.
                    warn!(
                        path = %self.path,
                        offset = s.hi,
                        end,
                        "read stream ended before the file's length; failing the read"
                    );
                    s.stop();
                    return Err(Errno::EIO);
                }
                Err(_) => {
                    warn!(
                        path = %self.path,
                        offset = s.hi,
                        timeout = ?self.timeout,
                        "read got no data in time; the datanodes holding this block may be down"
                    );
                    s.stop();
                    return Err(Errno::EIO);
                }
            };
            match piece {
                Ok(data) => {
                    let at = s.hi;
                    s.hi += data.len() as u64;
                    s.chunks.push_back((at, data));
                }
                Err(e) => {
                    s.stop();
                    return Err(e);
                }
            }
        }
        let mut parts = s.chunks.iter().filter_map(|(at, data)| {
            let chunk_end = at + data.len() as u64;
            if chunk_end <= offset || *at >= end {
                return None;
            }
            let from = (offset.max(*at) - at) as usize;
            let to = (end.min(chunk_end) - at) as usize;
            Some(data.slice(from..to))
        });
        let out = match (parts.next(), parts.next()) {
            (None, _) => Bytes::new(),
            // Inside one piece: a view of it.
            (Some(only), None) => only,
            (Some(first), Some(second)) => {
                let mut joined =
                    BytesMut::with_capacity(usize::try_from(end - offset).unwrap_or(0));
                joined.extend_from_slice(&first);
                joined.extend_from_slice(&second);
                for part in parts {
                    joined.extend_from_slice(&part);
                }
                joined.freeze()
            }
        };
        // Keep up to a chunk's worth behind the reader for reads that
        // arrive out of order.
        while s
            .chunks
            .front()
            .is_some_and(|(at, d)| at + d.len() as u64 + self.chunk <= offset)
        {
            s.chunks.pop_front();
        }
        Ok(out)
    }

    async fn read_direct(&self, offset: u64, end: u64) -> Result<Bytes, Errno> {
        let mut spare = self.spare.lock().await;
        if spare.is_none() {
            *spare = Some(self.origin.reopen());
        }
        let Some(file) = spare.as_ref() else {
            return Err(Errno::EIO);
        };
        let len = usize::try_from(end - offset).map_err(|_| Errno::EINVAL)?;
        let mut buf = vec![0u8; len];
        let mut filled = 0;
        let read = async {
            while filled < len {
                match file
                    .read_at(offset + filled as u64, &mut buf[filled..])
                    .await
                {
                    Ok(0) => {
                        // Shorter than when opened: a short answer would read as EOF.
                        warn!(path = %self.path, offset = offset + filled as u64, end, "file ended before its length; failing the read");
                        return Err(Errno::EIO);
                    }
                    Ok(n) => filled += n,
                    Err(e) => {
                        warn!(path = %self.path, offset = offset + filled as u64, error = %e, "read failed");
                        return Err(errno(&e));
                    }
                }
            }
            Ok(())
        };
        match tokio::time::timeout(self.timeout, read).await {
            Ok(Ok(())) => {
                buf.truncate(filled);
                Ok(Bytes::from(buf))
            }
            Ok(Err(e)) => Err(e),
            Err(_) => {
                warn!(
                    path = %self.path,
                    offset,
                    timeout = ?self.timeout,
                    "read got no data in time; the datanodes holding this block may be down"
                );
                Err(Errno::EIO)
            }
        }
    }
}

/// The errno of a read stream's I/O error, logged once.
fn io_errno(e: &std::io::Error, path: &str, offset: u64) -> Errno {
    warn!(path = %path, offset, error = %e, "read failed");
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<dfs_client::Error>())
        .map(errno)
        .or_else(|| e.raw_os_error().map(Errno::from_i32))
        .unwrap_or(Errno::EIO)
}
