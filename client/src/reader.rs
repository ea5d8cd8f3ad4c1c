//! [`FileReader`]: sequential (`AsyncRead` + `AsyncSeek`) and positional
//! reads, with checksum verification and fail-over between replicas.

use std::future::Future;
use std::io::SeekFrom;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use dfs_proto::error_kind::ErrorKind;
use dfs_proto::{
    ExtendedBlock, GetBlockLocationsRequest, GetBlockLocationsResponse,
    GetReplicaVisibleLengthRequest, LocatedBlock,
};
use parking_lot::Mutex;
use sync_wrapper::SyncWrapper;
use tokio::io::{AsyncRead, AsyncSeek, ReadBuf};

use crate::block_reader::BlockCursor;
use crate::client::Inner;
use crate::error::{Error, Result};
use crate::types::FileStatus;

/// Asks the namenode where `length` bytes from `offset` (0 = to the end) of
/// `path` live.
pub(crate) async fn get_block_locations(
    ctx: &Inner,
    path: &str,
    offset: u64,
    length: u64,
) -> Result<GetBlockLocationsResponse> {
    let req = GetBlockLocationsRequest {
        path: path.to_string(),
        offset,
        length,
        client_host: ctx.client_host(),
    };
    let budget = ctx.namenode.rpc_timeout();
    let mut resp = ctx
        .namenode
        .call_retrying("GetBlockLocations", path, budget, |mut c| {
            let req = req.clone();
            async move { c.get_block_locations(req).await }
        })
        .await?;
    settle_last_block(ctx, path, &mut resp).await;
    Ok(resp)
}

/// For a file under construction, folds what its pipeline acknowledged of
/// the block being written into `resp` (its length and the file's), as
/// HDFS readers do: the namenode learns that block's length only at the
/// next block, fsync or close, but every byte a pipeline acknowledged (a
/// writer's hflush, or a close on a mount whose commit is still on its way)
/// is readable.
pub(crate) async fn settle_last_block(
    ctx: &Inner,
    path: &str,
    resp: &mut GetBlockLocationsResponse,
) {
    let Some(mut last) = resp.last_block.take() else {
        return;
    };
    let Some(block) = last.block else {
        return;
    };
    let Some(visible) = visible_length(ctx, path, &last).await else {
        return;
    };
    if visible <= block.length {
        return;
    }
    last.block = Some(ExtendedBlock {
        length: visible,
        ..block
    });
    resp.file_length = resp.file_length.max(last.offset.saturating_add(visible));
    resp.blocks
        .retain(|lb| lb.block.is_none_or(|b| b.id != block.id));
    // Listed only where the listing reaches it: a page that ends earlier
    // (the namenode lists a bounded number of blocks) is followed by a
    // request from where it ends, whose answer has it.
    let reaches = resp
        .blocks
        .last()
        .is_none_or(|lb| lb.offset.saturating_add(block_len(lb)) >= last.offset);
    if reaches {
        resp.blocks.push(last);
    }
}

/// How many bytes of block `lb`, being written, its first datanode that
/// answers says readers may see; `None` if none answered (the reader then
/// stops at the length the namenode knows).
async fn visible_length(ctx: &Inner, path: &str, lb: &LocatedBlock) -> Option<u64> {
    let block = lb.block?;
    let timeout = ctx.data_timeout();
    let pool = &ctx.datanodes;
    // Nodes that failed lately (for any reader of this client) last, as
    // the block's read will order them.
    let mut nodes: Vec<&dfs_proto::DatanodeInfo> = lb.locations.iter().collect();
    nodes.sort_by_key(|n| pool.recently_failed(&n.address));
    for node in nodes {
        let req = GetReplicaVisibleLengthRequest { block: Some(block) };
        // Err((reason, the node itself is unreachable or hung)).
        let asked = async {
            let mut dn = pool
                .get(&node.address)
                .await
                .map_err(|e| (e.to_string(), true))?;
            dn.get_replica_visible_length(req).await.map_err(|s| {
                // A refusal, or a datanode too old to know the call, is
                // not a node down.
                let down = ErrorKind::of(&s).is_none() && s.code() != tonic::Code::Unimplemented;
                (s.message().to_string(), down)
            })
        };
        let (reason, down) = match tokio::time::timeout(timeout, asked).await {
            Ok(Ok(r)) => return Some(r.into_inner().length),
            Ok(Err(e)) => e,
            Err(_) => (format!("no answer within {timeout:?}"), true),
        };
        tracing::debug!(
            path = %path, block = %block.name(), node = %node.address, reason = %reason,
            "a datanode of the block being written could not tell its visible length"
        );
        if down {
            // The read that follows tries its other replicas first.
            pool.mark_failed(&node.address);
        }
    }
    if !lb.locations.is_empty() {
        tracing::warn!(
            path = %path, block = %block.name(),
            "no datanode of the block being written said how much of it is acknowledged; reading the file up to the length the namenode knows"
        );
    }
    None
}

/// What a reader knows of the file's blocks.
#[derive(Debug, Default)]
struct Locations {
    blocks: Vec<LocatedBlock>,
    under_construction: bool,
}

/// The state shared by a reader and the reads it has in flight.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) ctx: Arc<Inner>,
    pub(crate) path: String,
    status: FileStatus,
    len: AtomicU64,
    locations: Mutex<Locations>,
}

fn block_len(lb: &LocatedBlock) -> u64 {
    lb.block.as_ref().map_or(0, |b| b.length)
}

impl Shared {
    fn len(&self) -> u64 {
        self.len.load(Ordering::Acquire)
    }

    /// Takes the locations of a (re)located file. The length never goes
    /// down: an answer that could not measure the block being written
    /// again (its datanodes busy or gone) keeps the bytes already seen
    /// readable, rather than ending a sequential read early.
    fn store(&self, resp: GetBlockLocationsResponse) {
        let mut loc = self.locations.lock();
        let seen = self.len();
        let mut blocks = resp.blocks;
        if resp.file_length < seen {
            let covered = |id: u64| blocks.iter().any(|lb| lb.block.is_some_and(|b| b.id == id));
            let kept: Vec<LocatedBlock> = loc
                .blocks
                .iter()
                .filter(|lb| {
                    lb.block.is_some_and(|b| !covered(b.id))
                        && lb.offset.saturating_add(block_len(lb)) > resp.file_length
                })
                .cloned()
                .collect();
            blocks.extend(kept);
        }
        self.len
            .store(resp.file_length.max(seen), Ordering::Release);
        loc.blocks = blocks;
        loc.under_construction = resp.under_construction;
    }

    /// Fetches the locations from `offset` on again: of the same file
    /// (the namenode's inode), never of another one created at the path
    /// since it was opened.
    pub(crate) async fn refresh(&self, offset: u64) -> Result<()> {
        let resp = get_block_locations(&self.ctx, &self.path, offset, 0).await?;
        let now = resp.status.as_ref().map_or(0, |s| s.inode);
        if now != 0 && self.status.inode != 0 && now != self.status.inode {
            return Err(Error::NotFound {
                path: format!(
                    "{} (the file this reader opened was replaced by another)",
                    self.path
                ),
            });
        }
        self.store(resp);
        Ok(())
    }

    fn cached(&self, pos: u64) -> Option<LocatedBlock> {
        let loc = self.locations.lock();
        loc.blocks
            .iter()
            .find(|lb| {
                lb.offset <= pos
                    && lb
                        .offset
                        .checked_add(block_len(lb))
                        .is_some_and(|end| pos < end)
            })
            .cloned()
    }

    /// The cached block with id `id`.
    pub(crate) fn cached_block(&self, id: u64) -> Option<LocatedBlock> {
        let loc = self.locations.lock();
        loc.blocks
            .iter()
            .find(|lb| lb.block.as_ref().is_some_and(|b| b.id == id))
            .cloned()
    }

    /// The block holding file offset `pos`, from the cache or the namenode.
    pub(crate) async fn locate(&self, pos: u64) -> Result<LocatedBlock> {
        if let Some(lb) = self.cached(pos) {
            return Ok(lb);
        }
        self.refresh(pos).await?;
        self.cached(pos).ok_or_else(|| Error::Server {
            message: format!(
                "{}: the namenode returned no block for offset {pos} (file length {})",
                self.path,
                self.len()
            ),
        })
    }

    /// For a file being written, asks again how long it is now.
    async fn refresh_if_growing(&self) -> Result<()> {
        let growing = self.locations.lock().under_construction;
        if growing {
            self.refresh(0).await?;
        }
        Ok(())
    }

    /// Reads `buf.len()` bytes (fewer at the end of the file) at `offset`.
    async fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        if offset >= self.len() {
            self.refresh_if_growing().await?;
        }
        let end = offset.saturating_add(buf.len() as u64).min(self.len());
        let mut filled = 0usize;
        while offset + (filled as u64) < end {
            let pos = offset + filled as u64;
            let lb = self.locate(pos).await?;
            let start_in_block = pos - lb.offset;
            let end_in_block = (end - lb.offset).min(block_len(&lb));
            let mut cursor = BlockCursor::new(lb, start_in_block, end_in_block);
            while let Some(piece) = cursor.next(self).await? {
                buf[filled..filled + piece.len()].copy_from_slice(&piece);
                filled += piece.len();
            }
        }
        Ok(filled)
    }

    /// The next bytes at `pos` for a sequential reader, continuing
    /// `cursor` when it is positioned there.
    async fn next_chunk(
        self: Arc<Self>,
        cursor: Option<BlockCursor>,
        pos: u64,
    ) -> (Option<BlockCursor>, Result<Bytes>) {
        let mut cursor = cursor.filter(|c| c.file_pos() == pos);
        loop {
            let mut c = match cursor.take() {
                Some(c) => c,
                None => match self.locate(pos).await {
                    Ok(lb) => {
                        let len = block_len(&lb);
                        let start = pos - lb.offset;
                        BlockCursor::new(lb, start, len)
                    }
                    Err(e) => return (None, Err(e)),
                },
            };
            match c.next(&self).await {
                Ok(Some(bytes)) => return (Some(c), Ok(bytes)),
                // This block is done; the next one starts at `pos`.
                Ok(None) => continue,
                Err(e) => return (None, Err(e)),
            }
        }
    }
}

type ChunkFuture = Pin<Box<dyn Future<Output = (Option<BlockCursor>, Result<Bytes>)> + Send>>;

/// Reads a file: `tokio::io::AsyncRead` + `AsyncSeek` for streaming, and
/// [`read_at`](FileReader::read_at) for positional reads that may run
/// concurrently. Every chunk is checked against its CRC; a replica that
/// fails, times out or returns bad data is left for the next one, and a bad
/// replica is reported to the namenode. No byte that failed its checksum is
/// ever returned.
///
/// ```no_run
/// # async fn f(client: dfs_client::Client) -> dfs_client::Result<()> {
/// use tokio::io::{AsyncReadExt, AsyncSeekExt};
/// let mut r = client.open("/data/big.bin").await?;
/// r.seek(std::io::SeekFrom::Start(1 << 20)).await?;
/// let mut buf = vec![0u8; 4096];
/// r.read_exact(&mut buf).await?;
/// # Ok(()) }
/// ```
pub struct FileReader {
    shared: Arc<Shared>,
    pos: u64,
    /// Verified bytes at `pos`, not yet handed out.
    buffered: Bytes,
    /// The sequential stream's state, touched only through `&mut self`
    /// (reads and seeks); the wrapper makes `FileReader` `Sync`, so an
    /// `Arc<FileReader>` can serve positional reads from many tasks.
    stream: SyncWrapper<SeqStream>,
    seek_to: Option<u64>,
}

/// The block stream of the sequential reader and its next chunk in flight.
#[derive(Default)]
struct SeqStream {
    /// The open block stream, positioned at `pos + buffered.len()`.
    cursor: Option<BlockCursor>,
    fut: Option<ChunkFuture>,
}

impl std::fmt::Debug for FileReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileReader")
            .field("path", &self.shared.path)
            .field("len", &self.shared.len())
            .field("pos", &self.pos)
            .finish()
    }
}

impl FileReader {
    pub(crate) async fn open(ctx: Arc<Inner>, path: String) -> Result<FileReader> {
        let resp = get_block_locations(&ctx, &path, 0, 0).await?;
        let status: FileStatus = match resp.status.clone() {
            Some(st) => st.into(),
            None => {
                let req = dfs_proto::GetFileInfoRequest {
                    path: path.clone(),
                    ..Default::default()
                };
                let r = ctx
                    .namenode
                    .call("GetFileInfo", &path, |mut c| async move {
                        c.get_file_info(req).await
                    })
                    .await?;
                match r.status {
                    Some(st) => st.into(),
                    None => return Err(Error::NotFound { path }),
                }
            }
        };
        FileReader::with_locations(ctx, path, status, resp).await
    }

    /// A reader over locations the caller already has (see
    /// [`LocatedStatus`](crate::LocatedStatus)): no namenode call (for a
    /// file under construction, its block being written is measured on a
    /// datanode of its pipeline).
    pub(crate) async fn with_locations(
        ctx: Arc<Inner>,
        path: String,
        status: FileStatus,
        mut resp: GetBlockLocationsResponse,
    ) -> Result<FileReader> {
        if status.is_dir() {
            return Err(Error::IsADirectory { path });
        }
        settle_last_block(&ctx, &path, &mut resp).await;
        let shared = Arc::new(Shared {
            ctx,
            path,
            status,
            len: AtomicU64::new(0),
            locations: Mutex::new(Locations::default()),
        });
        shared.store(resp);
        Ok(FileReader {
            shared,
            pos: 0,
            buffered: Bytes::new(),
            stream: SyncWrapper::new(SeqStream::default()),
            seek_to: None,
        })
    }

    /// The file's length: what was acknowledged when it was opened (or
    /// last looked up), for a file still being written.
    pub fn len(&self) -> u64 {
        self.shared.len()
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The file's status when it was opened.
    pub fn status(&self) -> &FileStatus {
        &self.shared.status
    }

    /// Another reader of the same opened file, with its own position at
    /// 0: the same namenode inode and block locations, no namenode call,
    /// and never a file created at the path since.
    pub fn reopen(&self) -> FileReader {
        FileReader {
            shared: self.shared.clone(),
            pos: 0,
            buffered: Bytes::new(),
            stream: SyncWrapper::new(SeqStream::default()),
            seek_to: None,
        }
    }

    /// Reads up to `buf.len()` bytes at `offset`, without moving the
    /// stream position. Returns fewer bytes only at the end of the file
    /// (0 at or past it). Several may run at once.
    pub async fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        self.shared.read_at(offset, buf).await
    }

    /// The next verified bytes from the current position (empty at the
    /// end of the file), without copying them: the fastest way to stream
    /// a file.
    pub async fn read_bytes(&mut self) -> Result<Bytes> {
        std::future::poll_fn(|cx| self.poll_fill(cx)).await?;
        let bytes = std::mem::take(&mut self.buffered);
        self.pos += bytes.len() as u64;
        Ok(bytes)
    }

    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        loop {
            let stream = self.stream.get_mut();
            if let Some(fut) = stream.fut.as_mut() {
                let (cursor, r) = ready!(fut.as_mut().poll(cx));
                stream.fut = None;
                stream.cursor = cursor;
                self.buffered = r?;
                return Poll::Ready(Ok(()));
            }
            if !self.buffered.is_empty() {
                return Poll::Ready(Ok(()));
            }
            if self.pos >= self.shared.len() {
                // A file being written may have grown; ask once per read.
                let shared = self.shared.clone();
                let pos = self.pos;
                stream.fut = Some(Box::pin(async move {
                    match shared.refresh_if_growing().await {
                        Ok(()) if pos < shared.len() => shared.next_chunk(None, pos).await,
                        Ok(()) => (None, Ok(Bytes::new())),
                        Err(e) => (None, Err(e)),
                    }
                }));
                continue;
            }
            let shared = self.shared.clone();
            let cursor = stream.cursor.take();
            stream.fut = Some(Box::pin(shared.next_chunk(cursor, self.pos)));
        }
    }
}

impl AsyncRead for FileReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        ready!(this.poll_fill(cx))?;
        let n = this.buffered.len().min(buf.remaining());
        buf.put_slice(&this.buffered[..n]);
        let _ = this.buffered.split_to(n);
        this.pos += n as u64;
        Poll::Ready(Ok(()))
    }
}

impl AsyncSeek for FileReader {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> std::io::Result<()> {
        let this = self.get_mut();
        let target = match position {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => this.pos.checked_add_signed(d),
            SeekFrom::End(d) => this.shared.len().checked_add_signed(d),
        };
        match target {
            Some(t) => {
                this.seek_to = Some(t);
                Ok(())
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{}: seek before the start of the file", this.shared.path),
            )),
        }
    }

    fn poll_complete(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<u64>> {
        let this = self.get_mut();
        if let Some(target) = this.seek_to.take() {
            if target != this.pos {
                // Keep what is buffered when the target falls inside it.
                let ahead = target.checked_sub(this.pos);
                match ahead {
                    Some(d) if (d as usize) < this.buffered.len() => {
                        let _ = this.buffered.split_to(d as usize);
                    }
                    _ => {
                        this.buffered = Bytes::new();
                        *this.stream.get_mut() = SeqStream::default();
                    }
                }
                this.pos = target;
            }
        }
        Poll::Ready(Ok(this.pos))
    }
}
