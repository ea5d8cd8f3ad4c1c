//! Open file and directory handles, and the writers findable by inode.
//!
//! The kernel names an open file by handle (`fh`) in read, write, flush and
//! release, but by inode alone in setattr and getattr; so writers live in a
//! second map keyed by inode, shared by every handle writing that inode.
//! A finished writer stays in that map for a short while so a listing
//! answered just before the commit landed cannot show a stale length.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::OnceCell;

use crate::dirs::DirStream;
use crate::reader::Reader;
use crate::writer::{Phase, Writer};

/// How long a finished writer still corrects listings of its file.
const DONE_LINGER: Duration = Duration::from_secs(10);

/// An open regular file.
#[derive(Debug)]
pub struct OpenFile {
    /// The inode opened.
    pub ino: u64,
    /// Set for handles opened for writing.
    pub writer: Option<Arc<Writer>>,
    /// The reader, opened at open for read-only handles and on the first
    /// read for the others.
    pub reader: OnceCell<Arc<Reader>>,
}

/// All open handles.
#[derive(Debug, Default)]
pub struct Handles {
    next_fh: AtomicU64,
    files: Mutex<HashMap<u64, Arc<OpenFile>>>,
    dirs: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<DirStream>>>>,
    writers: Mutex<HashMap<u64, Arc<Writer>>>,
    /// When finished writers were last swept out of `writers`.
    swept: Mutex<Option<Instant>>,
    /// Per-inode locks of the operations that decide an inode's writer.
    ino_locks: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
}

/// Holds the lock of one inode's writer decisions (see [`Handles::lock_ino`]).
pub struct InoLock<'a> {
    handles: &'a Handles,
    ino: u64,
    guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for InoLock<'_> {
    fn drop(&mut self) {
        let mut locks = self.handles.ino_locks.lock();
        // Only the map and this guard hold the lock: nobody waits for it
        // (waiters clone it under the map's lock, held here).
        let lock = tokio::sync::OwnedMutexGuard::mutex(&self.guard);
        if Arc::strong_count(lock) == 2 {
            locks.remove(&self.ino);
        }
    }
}

impl Handles {
    /// No handles.
    pub fn new() -> Handles {
        Handles {
            next_fh: AtomicU64::new(1),
            ..Handles::default()
        }
    }

    fn next(&self) -> u64 {
        self.next_fh.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers an open file and returns its handle.
    pub fn add_file(&self, file: OpenFile) -> u64 {
        let fh = self.next();
        self.files.lock().insert(fh, Arc::new(file));
        fh
    }

    /// The open file behind `fh`.
    pub fn file(&self, fh: u64) -> Option<Arc<OpenFile>> {
        self.files.lock().get(&fh).cloned()
    }

    /// The reader of an open handle of `ino`, `fh` if it is one (any, else).
    pub fn reader_of(&self, ino: u64, fh: Option<u64>) -> Option<Arc<Reader>> {
        let files = self.files.lock();
        let of = |f: &Arc<OpenFile>| (f.ino == ino).then(|| f.reader.get().cloned()).flatten();
        fh.and_then(|fh| files.get(&fh).and_then(of))
            .or_else(|| files.values().find_map(of))
    }

    /// Forgets `fh` (release).
    pub fn remove_file(&self, fh: u64) -> Option<Arc<OpenFile>> {
        self.files.lock().remove(&fh)
    }

    /// Registers an open directory stream and returns its handle.
    pub fn add_dir(&self, dir: DirStream) -> u64 {
        let fh = self.next();
        self.dirs
            .lock()
            .insert(fh, Arc::new(tokio::sync::Mutex::new(dir)));
        fh
    }

    /// The directory stream behind `fh`.
    pub fn dir(&self, fh: u64) -> Option<Arc<tokio::sync::Mutex<DirStream>>> {
        self.dirs.lock().get(&fh).cloned()
    }

    /// Forgets a directory handle (releasedir).
    pub fn remove_dir(&self, fh: u64) {
        self.dirs.lock().remove(&fh);
    }

    /// The writer of `ino`, if it is being written or finished recently.
    pub fn writer(&self, ino: u64) -> Option<Arc<Writer>> {
        let mut writers = self.writers.lock();
        let w = writers.get(&ino)?;
        if w.done_at().is_some_and(|t| t.elapsed() > DONE_LINGER) {
            writers.remove(&ino);
            return None;
        }
        Some(w.clone())
    }

    /// The writer of `ino` unless it is done.
    pub fn active_writer(&self, ino: u64) -> Option<Arc<Writer>> {
        self.writer(ino).filter(|w| w.phase() != Phase::Done)
    }

    /// Makes `writer` the writer of its inode.
    pub fn set_writer(&self, writer: Arc<Writer>) {
        let mut writers = self.writers.lock();
        // Sweep at most once per linger period: creating many files stays O(1) each.
        let mut swept = self.swept.lock();
        if swept.is_none_or(|t| t.elapsed() > DONE_LINGER) {
            writers.retain(|_, w| w.done_at().is_none_or(|t| t.elapsed() <= DONE_LINGER));
            *swept = Some(Instant::now());
        }
        writers.insert(writer.ino(), writer);
    }

    /// Serializes the operations that decide `ino`'s writer (opening it
    /// for writing, truncating it): two at once could each start a writer,
    /// and the second's re-create would delete the first's file.
    pub async fn lock_ino(&self, ino: u64) -> InoLock<'_> {
        let lock = self.ino_locks.lock().entry(ino).or_default().clone();
        InoLock {
            handles: self,
            ino,
            guard: lock.lock_owned().await,
        }
    }

    /// Writers not yet done whose path is `path` or lies below it (a file
    /// unlinked while open no longer has a path).
    pub fn active_writers_under(&self, path: &str) -> Vec<Arc<Writer>> {
        let writers = self.writers.lock();
        writers
            .values()
            .filter(|w| w.phase() != Phase::Done && !w.is_unlinked())
            .filter(|w| {
                let p = w.path();
                p == path
                    || (p.starts_with(path)
                        && (path == "/" || p.as_bytes().get(path.len()) == Some(&b'/')))
            })
            .cloned()
            .collect()
    }

    /// Every writer not yet done (for unmount).
    pub fn active_writers(&self) -> Vec<Arc<Writer>> {
        self.writers
            .lock()
            .values()
            .filter(|w| w.phase() != Phase::Done)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_found_by_inode_and_path() {
        let h = Handles::new();
        h.set_writer(Arc::new(Writer::existing(3, "/d/f".into())));
        h.set_writer(Arc::new(Writer::existing(4, "/dx".into())));
        assert!(h.writer(3).is_some());
        assert!(h.active_writer(9).is_none());
        assert_eq!(h.active_writers_under("/d").len(), 1);
        assert_eq!(h.active_writers_under("/d/f").len(), 1);
        assert_eq!(h.active_writers_under("/").len(), 2);
        assert_eq!(h.active_writers_under("/e").len(), 0);
        let w = h.writer(3).unwrap();
        w.finish();
        assert!(h.active_writer(3).is_none());
        // Still known for a while after it finished.
        assert!(h.writer(3).is_some());
        assert_eq!(h.active_writers().len(), 1);
    }

    #[test]
    fn file_handles_are_distinct() {
        let h = Handles::new();
        let a = h.add_file(OpenFile {
            ino: 2,
            writer: None,
            reader: OnceCell::new(),
        });
        let b = h.add_dir(DirStream::new("/".into()));
        assert_ne!(a, b);
        assert_eq!(h.file(a).unwrap().ino, 2);
        assert!(h.file(b).is_none());
        assert!(h.dir(b).is_some());
        assert!(h.remove_file(a).is_some());
        assert!(h.file(a).is_none());
        h.remove_dir(b);
        assert!(h.dir(b).is_none());
    }

    /// One writer decision per inode at a time; the lock goes away with
    /// its last user.
    #[tokio::test]
    async fn inode_locks_serialize_and_are_dropped() {
        let h = Arc::new(Handles::new());
        let first = h.lock_ino(7).await;
        let h2 = h.clone();
        let waiting = tokio::spawn(async move {
            let _second = h2.lock_ino(7).await;
        });
        // Another inode is not held up.
        drop(h.lock_ino(8).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "a second lock of inode 7 was granted"
        );
        drop(first);
        waiting.await.unwrap();
        assert!(h.ino_locks.lock().is_empty());
    }
}
