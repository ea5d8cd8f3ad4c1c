//! The metadata store: the only code that touches sled.
//!
//! Layout of the single sled tree (all integers big endian):
//!
//! | key | value |
//! |---|---|
//! | `i` + inode id | `InodeRecord` (prost) |
//! | `d` + parent id + name | child inode id |
//! | `c` | counters: next inode id, next block id, generation stamp |
//! | `v` | format marker [`FORMAT`] |
//!
//! Every mutation is one [`Batch`] applied atomically with
//! [`Store::apply`]. Durability is a separate step: [`Store::wait_durable`]
//! waits until the group-commit flusher (one task, [`Store::run_flusher`])
//! has run `sled::Db::flush` after the batch was applied, so N concurrent
//! mutations cost one flush.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use dfs_proto::image::InodeRecord;
use parking_lot::Mutex;
use prost::Message;
use tokio::sync::{watch, Notify};

use crate::error::{Error, Result};

/// Inode id of `/`.
pub const ROOT_ID: u64 = 1;
/// Format marker stored under key `v`.
pub const FORMAT: &[u8] = b"dfs-namenode-store-1";
/// File created beside the sled directory once the store is initialised, so
/// that a store that later opens empty is reported instead of re-created.
const MARKER: &str = "meta.initialized";

const KEY_COUNTERS: &[u8] = b"c";
const KEY_FORMAT: &[u8] = b"v";

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

impl Counters {
    fn encode(&self) -> [u8; 24] {
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(&self.next_inode.to_be_bytes());
        out[8..16].copy_from_slice(&self.next_block.to_be_bytes());
        out[16..].copy_from_slice(&self.generation_stamp.to_be_bytes());
        out
    }

    fn decode(b: &[u8]) -> Option<Counters> {
        if b.len() != 24 {
            return None;
        }
        let u = |r: std::ops::Range<usize>| {
            b.get(r)
                .and_then(|s| s.try_into().ok())
                .map(u64::from_be_bytes)
        };
        Some(Counters {
            next_inode: u(0..8)?,
            next_block: u(8..16)?,
            generation_stamp: u(16..24)?,
        })
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
}

/// The sled-backed metadata store with its group-commit state.
pub struct Store {
    db: sled::Db,
    path: PathBuf,
    /// Sequence number of the last applied batch.
    applied: AtomicU64,
    /// Highest sequence number known durable.
    durable: watch::Sender<u64>,
    /// Wakes the flusher.
    kick: Notify,
    /// Set by `close`: the flusher flushes once more and exits.
    closed: AtomicBool,
    /// First write or flush failure; mutations are refused after it.
    failed: Mutex<Option<String>>,
}

fn inode_key(id: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = b'i';
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

fn dirent_key(parent: u64, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + name.len());
    k.push(b'd');
    k.extend_from_slice(&parent.to_be_bytes());
    k.extend_from_slice(name.as_bytes());
    k
}

fn corrupt(message: impl Into<String>) -> Error {
    Error::CorruptStore {
        message: message.into(),
    }
}

impl Store {
    /// Opens (or creates) the store in `dir` and loads everything in it.
    ///
    /// A store that cannot be read, holds undecodable records, or whose
    /// records are inconsistent is an error naming the problem; it is never
    /// silently re-created.
    pub fn open(dir: &Path) -> Result<(Store, Image)> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            context: format!("cannot create data directory {}", dir.display()),
            source,
        })?;
        let path = dir.join("meta");
        let marker = dir.join(MARKER);
        let cfg = sled::Config::new()
            .path(&path)
            .cache_capacity(64 * 1024 * 1024)
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
        let (durable, _) = watch::channel(0);
        let store = Store {
            db,
            path: path.clone(),
            applied: AtomicU64::new(0),
            durable,
            kick: Notify::new(),
            closed: AtomicBool::new(false),
            failed: Mutex::new(None),
        };
        let format = store
            .db
            .get(KEY_FORMAT)
            .map_err(|e| Error::store("cannot read the format marker", e))?;
        match format {
            None if marker.exists() => Err(corrupt(format!(
                "{} was initialised before ({} exists) but now holds no namespace; \
                     refusing to start with an empty namespace",
                path.display(),
                marker.display()
            ))),
            None => {
                let image = store.initialize()?;
                std::fs::write(&marker, FORMAT).map_err(|source| Error::Io {
                    context: format!("cannot write {}", marker.display()),
                    source,
                })?;
                Ok((store, image))
            }
            Some(f) if f.as_ref() != FORMAT => Err(corrupt(format!(
                "{} has format {:?}, expected {:?}",
                path.display(),
                String::from_utf8_lossy(&f),
                String::from_utf8_lossy(FORMAT)
            ))),
            Some(_) => {
                if !marker.exists() {
                    // Initialised by a run that died before writing the marker.
                    let _ = std::fs::write(&marker, FORMAT);
                }
                let image = store.load()?;
                Ok((store, image))
            }
        }
    }

    /// Where the sled files live.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn initialize(&self) -> Result<Image> {
        let now = crate::namespace::now_ms();
        let root = InodeRecord {
            id: ROOT_ID,
            parent: 0,
            name: String::new(),
            is_dir: true,
            mode: 0o755,
            owner: "root".into(),
            group: "root".into(),
            mtime_ms: now,
            atime_ms: now,
            ..Default::default()
        };
        let counters = Counters::default();
        let mut batch = sled::Batch::default();
        batch.insert(&inode_key(ROOT_ID)[..], root.encode_to_vec());
        batch.insert(KEY_COUNTERS, &counters.encode()[..]);
        batch.insert(KEY_FORMAT, FORMAT);
        self.db
            .apply_batch(batch)
            .map_err(|e| Error::store("cannot initialise the store", e))?;
        self.db
            .flush()
            .map_err(|e| Error::store("cannot flush the new store", e))?;
        Ok(Image {
            inodes: vec![root],
            dirents: vec![],
            counters,
        })
    }

    fn load(&self) -> Result<Image> {
        let mut image = Image::default();
        let mut counters = None;
        for item in self.db.iter() {
            let (k, v) = item.map_err(|e| Error::store("cannot read the store", e))?;
            match k.first() {
                Some(b'i') if k.len() == 9 => {
                    let id = u64::from_be_bytes(
                        k[1..9].try_into().map_err(|_| corrupt("bad inode key"))?,
                    );
                    let rec = InodeRecord::decode(v.as_ref())
                        .map_err(|e| corrupt(format!("inode {id}: undecodable record: {e}")))?;
                    if rec.id != id {
                        return Err(corrupt(format!(
                            "inode key {id} holds the record of inode {}",
                            rec.id
                        )));
                    }
                    image.inodes.push(rec);
                }
                Some(b'd') if k.len() > 9 && v.len() == 8 => {
                    let parent = u64::from_be_bytes(
                        k[1..9].try_into().map_err(|_| corrupt("bad dirent key"))?,
                    );
                    let name = std::str::from_utf8(&k[9..])
                        .map_err(|_| {
                            corrupt(format!(
                                "directory entry of inode {parent} with a non-UTF-8 name"
                            ))
                        })?
                        .to_string();
                    let child = u64::from_be_bytes(
                        v.as_ref()
                            .try_into()
                            .map_err(|_| corrupt("bad dirent value"))?,
                    );
                    image.dirents.push((parent, name, child));
                }
                _ if k.as_ref() == KEY_COUNTERS => {
                    counters = Some(
                        Counters::decode(&v)
                            .ok_or_else(|| corrupt("counters record has the wrong size"))?,
                    );
                }
                _ if k.as_ref() == KEY_FORMAT => {}
                _ => {
                    return Err(corrupt(format!(
                        "unknown key {:?}",
                        String::from_utf8_lossy(&k)
                    )))
                }
            }
        }
        image.counters = counters.ok_or_else(|| corrupt("the counters record is missing"))?;
        Ok(image)
    }

    /// Applies `batch` atomically and returns its sequence number, to be
    /// passed to [`Store::wait_durable`]. A failure here is permanent: the
    /// store refuses every later batch.
    pub fn apply(&self, batch: &[Change]) -> Result<u64> {
        if let Some(message) = self.failed.lock().clone() {
            return Err(Error::StoreFailed { message });
        }
        let mut b = sled::Batch::default();
        for change in batch {
            match change {
                Change::PutInode(rec) => b.insert(&inode_key(rec.id)[..], rec.encode_to_vec()),
                Change::RemoveInode(id) => b.remove(&inode_key(*id)[..]),
                Change::PutDirent {
                    parent,
                    name,
                    child,
                } => b.insert(dirent_key(*parent, name), &child.to_be_bytes()[..]),
                Change::RemoveDirent { parent, name } => b.remove(dirent_key(*parent, name)),
                Change::Counters(c) => b.insert(KEY_COUNTERS, &c.encode()[..]),
            }
        }
        if let Err(e) = self.db.apply_batch(b) {
            let err = Error::store("cannot apply a batch", e);
            self.fail(err.to_string());
            return Err(err);
        }
        let seq = self.applied.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(seq)
    }

    fn fail(&self, message: String) {
        let mut f = self.failed.lock();
        if f.is_none() {
            tracing::error!(store = %self.path.display(), error = %message,
                "metadata store failed; every later mutation is refused until the namenode restarts");
            *f = Some(message);
        }
        drop(f);
        // Wake waiters so that they see the failure.
        self.durable.send_modify(|_| {});
    }

    /// Sequence number of the last applied batch.
    pub fn last_applied(&self) -> u64 {
        self.applied.load(Ordering::SeqCst)
    }

    /// Waits until the batch with sequence number `seq` is on disk.
    pub async fn wait_durable(&self, seq: u64) -> Result<()> {
        let mut rx = self.durable.subscribe();
        if *rx.borrow() >= seq {
            return Ok(());
        }
        self.kick.notify_one();
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

    /// The group-commit loop: flushes whenever batches were applied since
    /// the last flush and somebody waits, then wakes every waiter the flush
    /// covers. Returns after [`Store::close`], once everything is flushed.
    pub async fn run_flusher(self: std::sync::Arc<Self>) {
        loop {
            let target = self.applied.load(Ordering::SeqCst);
            if target > *self.durable.borrow() && self.failed.lock().is_none() {
                let db = self.db.clone();
                match tokio::task::spawn_blocking(move || db.flush()).await {
                    Ok(Ok(_)) => {
                        self.durable.send_replace(target);
                    }
                    Ok(Err(e)) => {
                        self.fail(format!("flush of {} failed: {e}", self.path.display()))
                    }
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

    /// Flushes synchronously (tests and shutdown).
    pub fn flush_now(&self) -> Result<()> {
        self.db
            .flush()
            .map(|_| ())
            .map_err(|e| Error::store("flush failed", e))?;
        self.durable
            .send_replace(self.applied.load(Ordering::SeqCst));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn fresh_store_has_root_and_counters() {
        let dir = tempfile::tempdir().unwrap();
        let (_s, image) = Store::open(dir.path()).unwrap();
        assert_eq!(image.inodes.len(), 1);
        assert_eq!(image.inodes[0].id, ROOT_ID);
        assert_eq!(image.counters, Counters::default());
    }

    #[test]
    fn batches_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (s, _) = Store::open(dir.path()).unwrap();
            let rec = InodeRecord {
                id: 7,
                parent: ROOT_ID,
                name: "a".into(),
                is_dir: true,
                ..Default::default()
            };
            s.apply(&[
                Change::PutInode(rec),
                Change::PutDirent {
                    parent: ROOT_ID,
                    name: "a".into(),
                    child: 7,
                },
                Change::Counters(Counters {
                    next_inode: 8,
                    next_block: 5,
                    generation_stamp: 9,
                }),
            ])
            .unwrap();
            s.flush_now().unwrap();
        }
        let (_s, image) = Store::open(dir.path()).unwrap();
        assert_eq!(image.inodes.len(), 2);
        assert_eq!(image.dirents, vec![(ROOT_ID, "a".to_string(), 7)]);
        assert_eq!(image.counters.next_inode, 8);
    }

    #[test]
    fn emptied_store_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        std::fs::remove_dir_all(dir.path().join("meta")).unwrap();
        let err = Store::open(dir.path()).err().unwrap();
        assert!(matches!(err, Error::CorruptStore { .. }), "{err}");
    }

    #[test]
    fn garbage_store_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let meta = dir.path().join("meta");
        for e in std::fs::read_dir(&meta).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                std::fs::write(&p, vec![0xAB; 4096]).unwrap();
            }
        }
        assert!(Store::open(dir.path()).is_err());
    }

    #[tokio::test]
    async fn group_commit_wakes_waiters() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(dir.path()).unwrap();
        let s = Arc::new(s);
        let flusher = tokio::spawn(s.clone().run_flusher());
        let mut waits = Vec::new();
        for i in 0..32u64 {
            let seq = s.apply(&[Change::RemoveInode(1000 + i)]).unwrap();
            let s2 = s.clone();
            waits.push(tokio::spawn(async move { s2.wait_durable(seq).await }));
        }
        for w in waits {
            w.await.unwrap().unwrap();
        }
        s.close();
        flusher.await.unwrap();
    }
}
