//! Replica files created ahead of need.
//!
//! Creating a file on a journaling filesystem waits for the journal, and on
//! a node where the namenode and other datanodes fsync all the time that
//! took close to a millisecond per file: two files per new replica, on
//! every node of a pipeline, on the critical path of every block written.
//! Renaming a file is an order of magnitude cheaper. So a background
//! thread keeps a small stock of empty replica pairs — a data file and a
//! checksum file with its header already written — in `tmp/`, and a new
//! replica renames one pair into place. `tmp/` is emptied when the store
//! opens, so a spare never outlives the process that made it, and spares
//! never look like replicas (their names do not start with `blk_`).
//!
//! A deleted replica that nobody has open is recycled instead of unlinked
//! ([`Spares::recycle`]): its files are moved to `tmp/` first, then emptied,
//! and join the stock. Creating and freeing inodes is most of a datanode's
//! CPU when many small files come and go: on ext4 without a journal the
//! allocator skips inodes freed in the last minutes, reading each one,
//! so after a mass delete every new file scanned thousands of them
//! (measured: 45 % of a datanode's CPU in the thread making spares while
//! 1,500 files of 4 KiB were written after a delete).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use tracing::debug;

use super::files::open_rw;
use crate::error::{Error, Result};
use crate::meta;

/// Pairs kept ready, at most (each holds two open descriptors).
const STOCK: usize = 64;
/// At most this share of the process's descriptor limit is held by the
/// stock: 64 pairs at the usual 1024, fewer under a lower limit (found
/// by an explorer: under `ulimit -n 64` the stock took 52 of 64
/// descriptors, and the node could no longer accept connections).
const STOCK_SHARE_OF_LIMIT: u64 = 8;
/// At most this many pairs in the stock, recycled ones included (a
/// recycled pair is two empty files in `tmp/` and no open descriptor).
const RECYCLE_CAP: usize = 4096;
/// How long the filler sleeps between checks, and after a failure.
const PAUSE: Duration = Duration::from_secs(1);

/// An empty data file and a checksum file holding only its header: open
/// for reading and writing when made ahead, opened when placed when
/// recycled.
#[derive(Debug)]
pub(super) struct Spare {
    /// Where the data file is now.
    pub(super) data_path: PathBuf,
    /// Where the checksum file is now.
    pub(super) meta_path: PathBuf,
    /// The data and checksum files, when kept open.
    pub(super) files: Option<(File, File)>,
}

impl Spare {
    /// Renames the pair to a new replica's paths and returns its files.
    /// On failure nothing is left at either path, nor of the spare.
    pub(super) fn place(self, data_path: &Path, meta_path: &Path) -> Result<(File, File)> {
        let moved = std::fs::rename(&self.data_path, data_path)
            .map_err(|e| Error::io(format!("cannot move a spare to {}", data_path.display()), e))
            .and_then(|()| {
                std::fs::rename(&self.meta_path, meta_path).map_err(|e| {
                    let _ = std::fs::remove_file(data_path);
                    Error::io(format!("cannot move a spare to {}", meta_path.display()), e)
                })
            });
        if moved.is_err() {
            let _ = std::fs::remove_file(&self.data_path);
            let _ = std::fs::remove_file(&self.meta_path);
        }
        moved?;
        let files = match self.files {
            Some(files) => Ok(files),
            None => open_rw(data_path).and_then(|d| Ok((d, open_rw(meta_path)?))),
        };
        if files.is_err() {
            let _ = std::fs::remove_file(data_path);
            let _ = std::fs::remove_file(meta_path);
        }
        files
    }
}

#[derive(Debug, Default)]
struct Stock {
    ready: Vec<Spare>,
}

/// The stock of spare pairs and its filler thread.
#[derive(Debug)]
pub(super) struct Spares {
    dir: PathBuf,
    stock: Mutex<Stock>,
    /// Pairs kept ready (see [`stock_for`]).
    full: usize,
    low: Condvar,
    /// Names of the pairs made or recycled so far.
    named: AtomicU64,
}

impl Spares {
    /// Starts filling a stock in `dir` (the store's `tmp/`). The filler
    /// thread ends within [`PAUSE`] of the last handle being dropped.
    pub(super) fn start(dir: &Path) -> Arc<Spares> {
        let spares = Arc::new(Spares {
            dir: dir.to_path_buf(),
            stock: Mutex::new(Stock::default()),
            full: stock_for(descriptor_limit()),
            low: Condvar::new(),
            named: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&spares);
        let started = std::thread::Builder::new()
            .name("replica-spares".into())
            .spawn(move || fill(weak));
        if let Err(e) = started {
            // Without spares every replica is created in place: slower,
            // not wrong.
            tracing::warn!(error = %e, "cannot start the thread that prepares replica files");
        }
        spares
    }

    /// Takes a spare pair, if one is ready.
    pub(super) fn take(&self) -> Option<Spare> {
        let mut stock = self.stock.lock();
        let spare = stock.ready.pop();
        if stock.ready.len() < self.low_water() {
            self.low.notify_one();
        }
        spare
    }

    /// The filler wakes when fewer than this many pairs are left.
    fn low_water(&self) -> usize {
        self.full.div_ceil(2)
    }

    /// Paths for the next pair.
    fn next_paths(&self) -> (PathBuf, PathBuf) {
        let n = self.named.fetch_add(1, Ordering::Relaxed);
        (
            self.dir.join(format!("spare_{n}")),
            self.dir.join(format!("spare_{n}.meta")),
        )
    }

    /// Takes the files of a deleted replica (that nobody has open) into the
    /// stock: moves them to `tmp/`, then empties them. Returns false, with
    /// the files left where they were or removed, when the stock is full or
    /// a step fails; the caller then removes what is left.
    pub(super) fn recycle(&self, data: &Path, meta: &Path) -> bool {
        if self.stock.lock().ready.len() >= RECYCLE_CAP {
            return false;
        }
        let (data_path, meta_path) = self.next_paths();
        if std::fs::rename(data, &data_path).is_err() {
            return false;
        }
        if std::fs::rename(meta, &meta_path).is_err() {
            let _ = std::fs::remove_file(&data_path);
            return false;
        }
        let emptied = (|| -> std::io::Result<()> {
            OpenOptions::new()
                .write(true)
                .open(&data_path)?
                .set_len(0)?;
            let m = OpenOptions::new().write(true).open(&meta_path)?;
            m.set_len(meta::HEADER_LEN as u64)?;
            m.write_all_at(&meta::encode_header(), 0)
        })();
        if let Err(e) = emptied {
            debug!(dir = %self.dir.display(), error = %e, "cannot recycle the files of a deleted replica; removing them");
            let _ = std::fs::remove_file(&data_path);
            let _ = std::fs::remove_file(&meta_path);
            return false;
        }
        self.stock.lock().ready.push(Spare {
            data_path,
            meta_path,
            files: None,
        });
        true
    }

    /// Creates one pair; `None` when the disk refuses.
    fn make(&self) -> Option<Spare> {
        let (data_path, meta_path) = self.next_paths();
        let open = |p: &Path| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(p)
        };
        let made = open(&data_path).and_then(|data| {
            let meta = open(&meta_path)?;
            meta.write_all_at(&meta::encode_header(), 0)?;
            Ok((data, meta))
        });
        match made {
            Ok((data, meta)) => Some(Spare {
                data_path,
                meta_path,
                files: Some((data, meta)),
            }),
            Err(e) => {
                debug!(dir = %self.dir.display(), error = %e, "cannot prepare a replica file; new replicas are created in place");
                let _ = std::fs::remove_file(&data_path);
                let _ = std::fs::remove_file(&meta_path);
                None
            }
        }
    }
}

/// The soft limit on this process's open descriptors (`ulimit -n`).
fn descriptor_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX)
}

/// Pairs to keep ready under a descriptor limit of `limit`: at most
/// 1/[`STOCK_SHARE_OF_LIMIT`] of it (two descriptors a pair), at least one.
fn stock_for(limit: u64) -> usize {
    let pairs = limit / STOCK_SHARE_OF_LIMIT / 2;
    usize::try_from(pairs).unwrap_or(STOCK).clamp(1, STOCK)
}

/// The filler: tops the stock up whenever it runs low, until the store is
/// gone.
fn fill(spares: Weak<Spares>) {
    loop {
        let Some(s) = spares.upgrade() else { return };
        {
            let mut stock = s.stock.lock();
            if stock.ready.len() >= s.low_water() {
                s.low.wait_for(&mut stock, PAUSE);
            }
            if stock.ready.len() >= s.low_water() {
                continue;
            }
        }
        let mut failed = false;
        while !failed && s.stock.lock().ready.len() < s.full {
            match s.make() {
                Some(spare) => s.stock.lock().ready.push(spare),
                None => failed = true,
            }
        }
        if failed {
            drop(s);
            std::thread::sleep(PAUSE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stock_holds_a_share_of_the_descriptor_limit() {
        assert_eq!(stock_for(1024), 64);
        assert_eq!(stock_for(1 << 20), 64);
        assert_eq!(stock_for(64), 4);
        assert_eq!(stock_for(10), 1);
        assert_eq!(stock_for(u64::MAX), 64);
        assert!(descriptor_limit() > 0);
    }

    #[test]
    fn stock_is_filled_and_refilled_with_empty_pairs() {
        let dir = tempfile::tempdir().unwrap();
        let spares = Spares::start(dir.path());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while spares.stock.lock().ready.len() < spares.full {
            assert!(std::time::Instant::now() < deadline, "stock never filled");
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut taken = Vec::new();
        for _ in 0..spares.full {
            taken.push(spares.take().expect("a spare while the stock lasts"));
        }
        for s in &taken {
            let (data, meta) = s.files.as_ref().expect("made spares are open");
            assert_eq!(data.metadata().unwrap().len(), 0);
            let mut header = [0u8; meta::HEADER_LEN];
            meta.read_exact_at(&mut header, 0).unwrap();
            assert_eq!(header, meta::encode_header());
        }
        while spares.stock.lock().ready.len() < spares.low_water() {
            assert!(std::time::Instant::now() < deadline, "stock never refilled");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
