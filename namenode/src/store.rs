//! The metadata store: the edit log (durability) and the sled image (the
//! namespace at some earlier transaction), as HDFS's edit log and fsimage.
//!
//! Layout of the single sled tree (all integers big endian):
//!
//! | key | value |
//! |---|---|
//! | `i` + inode id | `InodeRecord` (prost) |
//! | `d` + parent id + name | child inode id |
//! | `c` | counters: next inode id, next block id, generation stamp |
//! | `t` | txid of the last transaction in the image |
//! | `v` | format marker [`FORMAT`] |
//!
//! Every mutation is one [`Batch`], accepted in order with [`Store::apply`],
//! which queues it, gives it the next transaction id and wakes the flusher.
//! Durability is a separate step: [`Store::wait_durable`] waits until the group-commit
//! flusher (one task, [`Store::run_flusher`]) has appended every batch
//! queued up to it to the edit log ([`crate::edits`]) with one write and one
//! `fdatasync`, so N concurrent mutations cost one sync.
//!
//! When a segment of the log reaches [`SEGMENT_BYTES`] the flusher starts a
//! new one, and a background checkpoint merges the closed segment into
//! sled, then records its last txid under `t`, flushes and deletes the
//! segment. At start, the segments after `t` are replayed on top
//! of the image and merged into it; at a clean stop everything is merged.
//! sled is never written on the path of a request (a sled flush blocks
//! every concurrent sled batch).
//!
//! This module keeps the group commit, the segments and the checkpoint
//! task; `image` keeps the sled side: the keys, loading, replay and the
//! bounded merge.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use dfs_proto::image::InodeRecord;
use parking_lot::Mutex;
use tokio::sync::{watch, Notify};

use crate::edits::{self, Segment, SegmentWriter};
use crate::error::{Error, Result};
use image::{initialize, load, next_txid, replay, ImageWriter, KEY_FORMAT};

/// Inode id of `/`.
pub const ROOT_ID: u64 = 1;
/// Format marker stored under key `v`.
pub const FORMAT: &[u8] = b"dfs-namenode-store-1";
/// File created beside the sled directory once the store is initialised, so
/// that a store that later opens empty is reported instead of re-created.
const MARKER: &str = "meta.initialized";

/// Directory of the edit log segments, beside the sled directory.
const EDITS_DIR: &str = "edits";
/// A segment is closed, and merged into the image in the background, once
/// it holds this many bytes (some 40,000 file creations).
pub const SEGMENT_BYTES: u64 = 16 << 20;

/// The persisted id counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Id of the next inode.
    pub next_inode: u64,
    /// Id of the next block.
    pub next_block: u64,
    /// Last generation stamp handed out.
    pub generation_stamp: u64,
}

impl Default for Counters {
    fn default() -> Counters {
        Counters {
            next_inode: ROOT_ID + 1,
            next_block: 1 << 30,
            generation_stamp: 1000,
        }
    }
}

/// One change of the persistent namespace.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Insert or replace an inode.
    PutInode(InodeRecord),
    /// Remove an inode.
    RemoveInode(u64),
    /// Insert or replace a directory entry.
    PutDirent {
        /// Directory inode.
        parent: u64,
        /// Entry name.
        name: String,
        /// Inode the entry names.
        child: u64,
    },
    /// Remove a directory entry.
    RemoveDirent {
        /// Directory inode.
        parent: u64,
        /// Entry name.
        name: String,
    },
    /// Replace the counters.
    Counters(Counters),
    /// The batch is the work of this at-most-once call: it changes nothing
    /// in the namespace, and lets the retry cache know the call ran after a
    /// restart (HDFS logs its RPC ids with its edits for this).
    Call(CallRecord),
}

/// An at-most-once call that changed the namespace
/// ([`crate::retry_cache`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// The caller's user.
    pub user: String,
    /// The call id the client sent.
    pub id: String,
    /// The call's kind (`create`, `delete`...): a retry of another kind
    /// with the same id is refused.
    pub kind: String,
    /// When it ran (ms since the epoch): an entry older than the retry
    /// cache's expiry is not restored.
    pub at_ms: i64,
}

/// Changes applied atomically together.
pub type Batch = Vec<Change>;

/// Everything loaded from the store at start.
#[derive(Debug, Default)]
pub struct Image {
    /// Every inode.
    pub inodes: Vec<InodeRecord>,
    /// Every directory entry: (parent, name, child).
    pub dirents: Vec<(u64, String, u64)>,
    /// The counters.
    pub counters: Counters,
    /// The at-most-once calls of the edits replayed at start, oldest first.
    pub calls: Vec<CallRecord>,
}

/// Batches accepted but not yet in the edit log.
#[derive(Default)]
struct Queue {
    batches: Vec<Batch>,
    /// Txid of the last accepted batch.
    last: u64,
}

/// The open segment and the buffer records are encoded into.
struct Log {
    writer: SegmentWriter,
    buf: Vec<u8>,
}

/// The metadata store: edit log, sled image and group-commit state.
pub struct Store {
    cluster_id: String,
    db: sled::Db,
    path: PathBuf,
    edits: PathBuf,
    segment_bytes: u64,
    /// Accepted batches waiting for the flusher.
    queue: Mutex<Queue>,
    /// Held while appending, so that groups are written in order.
    log: Mutex<Log>,
    /// Closed segments not yet merged into the image, oldest first.
    closed_segments: Mutex<VecDeque<Segment>>,
    /// Held while merging segments into the image.
    checkpoint_lock: Mutex<()>,
    /// Set while a background checkpoint task runs.
    checkpointing: AtomicBool,
    /// Txid of the last transaction in the sled image.
    image_txid: AtomicU64,
    /// Highest txid known durable.
    durable: watch::Sender<u64>,
    /// Wakes the flusher.
    kick: Notify,
    /// Set by `close`: the flusher flushes once more and exits.
    closed: AtomicBool,
    /// First write, sync or checkpoint failure; mutations are refused after it.
    failed: Mutex<Option<String>>,
}

fn corrupt(message: impl Into<String>) -> Error {
    Error::CorruptStore {
        message: message.into(),
    }
}

impl Store {
    /// Opens (or creates) the store in `dir`, replays the edit log on top of
    /// the image and returns everything in it.
    ///
    /// A store that cannot be read, holds undecodable records, whose records
    /// are inconsistent, or whose edit log is damaged (other than an
    /// unfinished write at its very end) or missing is an error naming the
    /// problem; it is never silently re-created.
    pub fn open(dir: &Path) -> Result<(Store, Image)> {
        Store::open_with(dir, SEGMENT_BYTES)
    }

    /// [`Store::open`] with segments closed at `segment_bytes`.
    pub fn open_with(dir: &Path, segment_bytes: u64) -> Result<(Store, Image)> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            context: format!("cannot create data directory {}", dir.display()),
            source,
        })?;
        let path = dir.join("meta");
        let marker = dir.join(MARKER);
        let had_marker = marker.exists();
        let cfg = sled::Config::new()
            .path(&path)
            // Only checkpoints and the start read or write sled.
            .cache_capacity(4 * 1024 * 1024)
            .mode(sled::Mode::HighThroughput)
            .flush_every_ms(None);
        let opened = std::panic::catch_unwind(AssertUnwindSafe(|| cfg.open()));
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(e)) => {
                return Err(Error::store(format!("cannot open {}", path.display()), e));
            }
            Err(_) => {
                return Err(corrupt(format!(
                    "sled failed while opening {} (see the log above); the store is damaged",
                    path.display()
                )))
            }
        };
        let format = db
            .get(KEY_FORMAT)
            .map_err(|e| Error::store("cannot read the format marker", e))?;
        match format {
            None if had_marker => {
                return Err(corrupt(format!(
                    "{} was initialised before ({} exists) but now holds no namespace; \
                     refusing to start with an empty namespace",
                    path.display(),
                    marker.display()
                )))
            }
            None => initialize(&db)?,
            Some(f) if f.as_ref() != FORMAT => {
                return Err(corrupt(format!(
                    "{} has format {:?}, expected {:?}",
                    path.display(),
                    String::from_utf8_lossy(&f),
                    String::from_utf8_lossy(FORMAT)
                )))
            }
            Some(_) => {}
        }
        let mut loading = load(&db)?;
        let edits = dir.join(EDITS_DIR);
        let segments = edits::list_segments(&edits)?;
        if segments.is_empty() && had_marker && loading.txid.is_some() {
            return Err(corrupt(format!(
                "the edit log {} is missing: the namespace after transaction {} is lost",
                edits.display(),
                loading.txid.unwrap_or(0)
            )));
        }
        std::fs::create_dir_all(&edits).map_err(|source| Error::Io {
            context: format!("cannot create {}", edits.display()),
            source,
        })?;
        edits::remove_unfinished(&edits)?;
        let last = replay(&db, &path, &mut loading, &segments)?;
        // Continue in a fresh segment; the old ones are in the image now.
        let writer = SegmentWriter::create(&edits, last + 1, room(segment_bytes))?;
        for seg in segments.iter().filter(|s| s.first != last + 1) {
            std::fs::remove_file(&seg.path).map_err(|source| Error::Io {
                context: format!("cannot remove {}", seg.path.display()),
                source,
            })?;
        }
        edits::sync_dir(&edits)?;
        if !had_marker {
            std::fs::write(&marker, FORMAT).map_err(|source| Error::Io {
                context: format!("cannot write {}", marker.display()),
                source,
            })?;
        }
        let image = loading.into_image()?;
        let cluster_id = cluster_id::load_or_create(dir, had_marker)?;
        let (durable, _) = watch::channel(last);
        let store = Store {
            cluster_id,
            db,
            path,
            edits,
            segment_bytes,
            queue: Mutex::new(Queue {
                batches: Vec::new(),
                last,
            }),
            log: Mutex::new(Log {
                writer,
                buf: Vec::new(),
            }),
            closed_segments: Mutex::new(VecDeque::new()),
            checkpoint_lock: Mutex::new(()),
            checkpointing: AtomicBool::new(false),
            image_txid: AtomicU64::new(last),
            durable,
            kick: Notify::new(),
            closed: AtomicBool::new(false),
            failed: Mutex::new(None),
        };
        Ok((store, image))
    }

    /// The cluster id of this namespace (`DATA/cluster_id`): datanodes
    /// that hold replicas of another cluster refuse to join.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// Where the sled files live.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts `batch` (to be logged after every batch accepted before it)
    /// and returns its txid, to be passed to [`Store::wait_durable`]. Fails
    /// once the store has failed: a write, sync or checkpoint failure is
    /// permanent.
    pub fn apply(&self, batch: Batch) -> Result<u64> {
        self.check()?;
        let seq = {
            let mut q = self.queue.lock();
            q.last += 1;
            q.batches.push(batch);
            q.last
        };
        // Durable soon even if nobody waits for it (an edit of the
        // monitor's, say): replica deletes wait for the last edit applied.
        // Batches accepted while the flusher writes still go out together.
        self.kick.notify_one();
        Ok(seq)
    }

    /// Fails if an earlier write, sync or checkpoint failed.
    pub fn check(&self) -> Result<()> {
        match self.failed.lock().as_ref() {
            Some(message) => Err(Error::StoreFailed {
                message: message.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Appends every accepted batch to the edit log with one write and one
    /// sync, then wakes the waiters; returns whether the segment was closed
    /// (and a checkpoint is due).
    fn write_pending(&self) -> Result<bool> {
        let mut log = self.log.lock();
        let (batches, target) = {
            let mut q = self.queue.lock();
            (std::mem::take(&mut q.batches), q.last)
        };
        if target <= *self.durable.borrow() {
            return Ok(false);
        }
        self.check()?;
        let first = target + 1 - batches.len() as u64;
        let Log { writer, buf } = &mut *log;
        buf.clear();
        for (txid, batch) in (first..).zip(&batches) {
            edits::encode_record(txid, batch, buf);
        }
        if let Err(e) = writer.append(buf) {
            let message = format!(
                "cannot append to the edit log {}: {e}",
                writer.segment().path.display()
            );
            self.fail(message.clone());
            return Err(Error::StoreFailed { message });
        }
        if buf.capacity() > 1 << 20 {
            *buf = Vec::new();
        }
        self.durable.send_replace(target);
        if writer.len() < self.segment_bytes {
            return Ok(false);
        }
        self.roll(&mut log, target + 1)?;
        Ok(true)
    }

    /// Closes the open segment (all of it durable) and starts one at `next`.
    fn roll(&self, log: &mut Log, next: u64) -> Result<()> {
        let writer = match SegmentWriter::create(&self.edits, next, room(self.segment_bytes)) {
            Ok(w) => w,
            Err(e) => {
                self.fail(e.to_string());
                return Err(e);
            }
        };
        let old = std::mem::replace(&mut log.writer, writer);
        self.closed_segments.lock().push_back(old.segment().clone());
        Ok(())
    }

    /// Merges every closed segment into the sled image, oldest first; the
    /// segment's last txid is recorded and flushed before it is deleted.
    fn checkpoint_closed(&self) -> Result<()> {
        let _only = self.checkpoint_lock.lock();
        loop {
            let Some(seg) = self.closed_segments.lock().front().cloned() else {
                return Ok(());
            };
            let started = std::time::Instant::now();
            let from = self.image_txid.load(Ordering::SeqCst);
            // Check the whole segment before writing any of it.
            let mut last = from;
            edits::read_segment(&seg, false, |(txid, _)| {
                last = next_txid(last, txid, &seg)?;
                Ok(())
            })?;
            let mut image = ImageWriter::new(&self.db, &self.path);
            edits::read_segment(&seg, false, |(txid, batch)| {
                if txid > from {
                    image.add(&batch);
                }
                Ok(())
            })?;
            image.finish(last)?;
            self.image_txid.store(last, Ordering::SeqCst);
            match std::fs::remove_file(&seg.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(Error::Io {
                        context: format!("cannot remove {}", seg.path.display()),
                        source,
                    })
                }
            }
            self.closed_segments.lock().pop_front();
            tracing::info!(from = from + 1, to = last, elapsed = ?started.elapsed(),
                "checkpoint: transactions merged from the edit log into the image");
        }
    }

    /// Runs [`Store::checkpoint_closed`] in the background unless it runs.
    fn start_checkpoint(self: &Arc<Self>) {
        if self.checkpointing.swap(true, Ordering::SeqCst) {
            return;
        }
        let store = self.clone();
        tokio::task::spawn_blocking(move || loop {
            if let Err(e) = store.checkpoint_closed() {
                store.fail(format!("checkpoint failed: {e}"));
            }
            store.checkpointing.store(false, Ordering::SeqCst);
            // A segment closed after the loop saw none: go again.
            if store.closed_segments.lock().is_empty()
                || store.failed.lock().is_some()
                || store.checkpointing.swap(true, Ordering::SeqCst)
            {
                return;
            }
        });
    }

    fn fail(&self, message: String) {
        let mut f = self.failed.lock();
        if f.is_none() {
            tracing::error!(store = %self.path.display(), error = %message,
                "metadata store failed; every later mutation is refused, and the namenode stops");
            *f = Some(message);
        }
        drop(f);
        // Wake waiters so that they see the failure.
        self.durable.send_modify(|_| {});
    }

    /// Completes, with the reason, once the store has failed (a write,
    /// sync or checkpoint): the namespace in memory may then hold changes
    /// that will never be on disk.
    pub async fn wait_failed(&self) -> String {
        let mut rx = self.durable.subscribe();
        loop {
            if let Some(message) = self.failed.lock().clone() {
                return message;
            }
            if rx.changed().await.is_err() {
                // The store is gone; it can no longer fail.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Txid of the last batch on disk: it and every batch before it
    /// survive a crash.
    pub fn durable_seq(&self) -> u64 {
        *self.durable.borrow()
    }

    /// Txid of the last accepted batch.
    pub fn last_applied(&self) -> u64 {
        self.queue.lock().last
    }

    /// Waits until the batch with txid `seq` is on disk.
    pub async fn wait_durable(&self, seq: u64) -> Result<()> {
        let mut rx = self.durable.subscribe();
        if *rx.borrow() >= seq {
            return Ok(());
        }
        // No wake-up of the flusher here: `apply` gave one for the batch.
        loop {
            if *rx.borrow_and_update() >= seq {
                return Ok(());
            }
            if let Some(message) = self.failed.lock().clone() {
                return Err(Error::StoreFailed { message });
            }
            if rx.changed().await.is_err() {
                return Err(Error::StoreFailed {
                    message: "the flusher stopped".into(),
                });
            }
        }
    }

    /// The group-commit loop: whenever batches were accepted since the
    /// last write, appends them all to the edit log with
    /// one sync, then wakes every waiter it covers; starts a checkpoint when
    /// a segment fills up. Returns after [`Store::close`], once everything
    /// is durable.
    pub async fn run_flusher(self: Arc<Self>) {
        loop {
            let pending = self.last_applied() > *self.durable.borrow();
            if pending && self.failed.lock().is_none() {
                let store = self.clone();
                // A failure is recorded by `fail`, which wakes the waiters.
                match tokio::task::spawn_blocking(move || store.write_pending()).await {
                    Ok(Ok(true)) => self.start_checkpoint(),
                    Ok(_) => {}
                    Err(e) => self.fail(format!("flush task failed: {e}")),
                }
                continue;
            }
            if self.closed.load(Ordering::SeqCst) {
                return;
            }
            self.kick.notified().await;
        }
    }

    /// Asks the flusher to flush what is left and stop.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.kick.notify_one();
    }

    /// Makes everything accepted durable, synchronously (tests and
    /// shutdown).
    pub fn flush_now(&self) -> Result<()> {
        self.write_pending().map(|_| ())
    }

    /// Makes everything accepted durable and merges the whole edit log into
    /// the sled image, so that the next start has nothing to replay
    /// (shutdown). Blocks.
    pub fn checkpoint(&self) -> Result<()> {
        self.write_pending()?;
        {
            let mut log = self.log.lock();
            if !log.writer.is_empty() {
                let next = *self.durable.borrow() + 1;
                self.roll(&mut log, next)?;
            }
        }
        self.checkpoint_closed()
    }
}

/// Room added to a segment at a time: its size, at most 4 MiB.
fn room(segment_bytes: u64) -> u64 {
    segment_bytes.min(4 << 20)
}

mod cluster_id;
mod image;
#[cfg(test)]
mod tests;
