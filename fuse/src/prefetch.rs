//! [`Prefetch`]: the next small files of a directory, read while a program
//! reads the directory's files in name order.
//!
//! Once the statahead ([`crate::statahead`]) serves a program's lookups and
//! it opens what it looked up, the mount starts reading the next few small
//! files of the listed page in the background, so their opens find the
//! bytes already there instead of waiting for a datanode each. Every byte
//! still comes through the client library's checksummed reads; a file is
//! kept under its inode, length and modification time (a complete file
//! never changes under those), serves one open, and is dropped unread
//! after [`KEEP_FOR`]. At most [`MAX_KEPT`] files of at most [`MAX_FILE`]
//! bytes are kept, so the memory spent is bounded.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dfs_client::FileStatus;
use futures::future::{BoxFuture, FutureExt, Shared};
use parking_lot::Mutex;

/// Files up to this size are read ahead.
pub const MAX_FILE: u64 = 256 * 1024;
/// Files read ahead of the one a program opens, asked for together.
pub const AHEAD: usize = 16;
/// Files kept (read or being read) at most: 16 MiB at most.
pub const MAX_KEPT: usize = 64;
/// How long a file read ahead waits for its open.
pub const KEEP_FOR: Duration = Duration::from_secs(2);

/// What a prefetched file is kept under: a complete file with these never
/// changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    inode: u64,
    length: u64,
    mtime_ms: i64,
}

impl Key {
    /// The key of the file `status` describes.
    pub fn of(status: &FileStatus) -> Key {
        Key {
            inode: status.inode,
            length: status.length,
            mtime_ms: status.mtime,
        }
    }
}

/// A file's bytes, once read (`None`: the read failed; open reads it
/// itself).
pub type Loading = Shared<BoxFuture<'static, Option<Bytes>>>;

/// Files read ahead, by [`Key`].
#[derive(Default)]
pub struct Prefetch {
    files: Mutex<HashMap<Key, (Instant, Loading)>>,
}

impl std::fmt::Debug for Prefetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prefetch")
            .field("files", &self.files.lock().len())
            .finish()
    }
}

impl Prefetch {
    /// Nothing read ahead yet.
    pub fn new() -> Prefetch {
        Prefetch::default()
    }

    /// True when the file under `key` is worth reading ahead and is neither
    /// kept already nor over the bound.
    pub fn wants(&self, key: &Key) -> bool {
        if key.length == 0 || key.length > MAX_FILE {
            return false;
        }
        let mut files = self.files.lock();
        if files.contains_key(key) {
            return false;
        }
        if files.len() >= MAX_KEPT {
            files.retain(|_, (at, _)| at.elapsed() < KEEP_FOR);
        }
        files.len() < MAX_KEPT
    }

    /// Starts `read` on the runtime for the files under `keys` together:
    /// it yields their bytes in the same order. Keys already kept, or not
    /// worth reading, are left out of the bookkeeping (their bytes are
    /// dropped). Must run inside the tokio runtime.
    pub fn start_batch(
        &self,
        keys: Vec<Key>,
        read: impl Future<Output = Vec<Option<Bytes>>> + Send + 'static,
    ) {
        let batch = read.boxed().shared();
        tokio::spawn(batch.clone());
        let now = Instant::now();
        for (i, key) in keys.into_iter().enumerate() {
            if !self.wants(&key) {
                continue;
            }
            let one = batch
                .clone()
                .map(move |files| files.get(i).cloned().flatten())
                .boxed()
                .shared();
            self.files.lock().insert(key, (now, one));
        }
    }

    /// The file under `key`, if read ahead (or being read) recently;
    /// serves one open.
    pub fn take(&self, key: &Key) -> Option<Loading> {
        let (at, loading) = self.files.lock().remove(key)?;
        (at.elapsed() < KEEP_FOR).then_some(loading)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(inode: u64, length: u64) -> Key {
        Key {
            inode,
            length,
            mtime_ms: 7,
        }
    }

    #[tokio::test]
    async fn a_file_read_ahead_serves_one_open() {
        let p = Prefetch::new();
        p.start_batch(vec![key(1, 3)], async {
            vec![Some(Bytes::from_static(b"abc"))]
        });
        let loading = p.take(&key(1, 3)).expect("kept");
        assert_eq!(loading.await, Some(Bytes::from_static(b"abc")));
        assert!(p.take(&key(1, 3)).is_none());
        // Another length or time is another file.
        p.start_batch(vec![key(2, 3)], async {
            vec![Some(Bytes::from_static(b"abc"))]
        });
        assert!(p
            .take(&Key {
                mtime_ms: 8,
                ..key(2, 3)
            })
            .is_none());
    }

    #[tokio::test]
    async fn empty_large_and_known_files_are_not_read_again() {
        let p = Prefetch::new();
        assert!(!p.wants(&key(1, 0)));
        assert!(!p.wants(&key(1, MAX_FILE + 1)));
        p.start_batch(vec![key(1, 3)], async { vec![None] });
        assert!(!p.wants(&key(1, 3)));
    }

    #[tokio::test]
    async fn files_read_together_are_served_one_each() {
        let p = Prefetch::new();
        p.start_batch(vec![key(1, 1), key(2, 1), key(3, 1)], async {
            vec![
                Some(Bytes::from_static(b"a")),
                None,
                Some(Bytes::from_static(b"c")),
            ]
        });
        assert_eq!(
            p.take(&key(3, 1)).expect("kept").await,
            Some(Bytes::from_static(b"c"))
        );
        assert_eq!(p.take(&key(2, 1)).expect("kept").await, None);
        assert_eq!(
            p.take(&key(1, 1)).expect("kept").await,
            Some(Bytes::from_static(b"a"))
        );
        assert!(p.take(&key(1, 1)).is_none());
    }

    #[tokio::test]
    async fn stays_bounded() {
        let p = Prefetch::new();
        for i in 0..(MAX_KEPT as u64 + 10) {
            p.start_batch(vec![key(i, 3)], async { vec![None] });
        }
        assert_eq!(p.files.lock().len(), MAX_KEPT);
        assert!(!p.wants(&key(1000, 3)));
        // One taken frees a place.
        assert!(p.take(&key(0, 3)).is_some());
        assert!(p.wants(&key(1000, 3)));
    }
}
