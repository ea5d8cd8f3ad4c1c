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

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use tracing::debug;

use crate::error::{Error, Result};
use crate::meta;

/// Pairs kept ready.
const STOCK: usize = 64;
/// The filler wakes when fewer than this many pairs are left.
const LOW_WATER: usize = STOCK / 2;
/// How long the filler sleeps between checks, and after a failure.
const PAUSE: Duration = Duration::from_secs(1);

/// An empty data file and a checksum file holding only its header, open
/// for reading and writing.
#[derive(Debug)]
pub(super) struct Spare {
    /// Where the data file is now.
    pub(super) data_path: PathBuf,
    /// Where the checksum file is now.
    pub(super) meta_path: PathBuf,
    /// The data file.
    pub(super) data: File,
    /// The checksum file.
    pub(super) meta: File,
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
        moved.map(|()| (self.data, self.meta))
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
    low: Condvar,
}

impl Spares {
    /// Starts filling a stock in `dir` (the store's `tmp/`). The filler
    /// thread ends within [`PAUSE`] of the last handle being dropped.
    pub(super) fn start(dir: &Path) -> Arc<Spares> {
        let spares = Arc::new(Spares {
            dir: dir.to_path_buf(),
            stock: Mutex::new(Stock::default()),
            low: Condvar::new(),
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
        if stock.ready.len() < LOW_WATER {
            self.low.notify_one();
        }
        spare
    }

    /// Creates one pair; `None` when the disk refuses.
    fn make(&self, n: u64) -> Option<Spare> {
        let data_path = self.dir.join(format!("spare_{n}"));
        let meta_path = self.dir.join(format!("spare_{n}.meta"));
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
                data,
                meta,
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

/// The filler: tops the stock up whenever it runs low, until the store is
/// gone.
fn fill(spares: Weak<Spares>) {
    // Names of spares made so far; only this thread makes them.
    let mut made = 0u64;
    loop {
        let Some(s) = spares.upgrade() else { return };
        {
            let mut stock = s.stock.lock();
            if stock.ready.len() >= LOW_WATER {
                s.low.wait_for(&mut stock, PAUSE);
            }
            if stock.ready.len() >= LOW_WATER {
                continue;
            }
        }
        let mut failed = false;
        while !failed && s.stock.lock().ready.len() < STOCK {
            made += 1;
            match s.make(made) {
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
    fn stock_is_filled_and_refilled_with_empty_pairs() {
        let dir = tempfile::tempdir().unwrap();
        let spares = Spares::start(dir.path());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while spares.stock.lock().ready.len() < STOCK {
            assert!(std::time::Instant::now() < deadline, "stock never filled");
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut taken = Vec::new();
        for _ in 0..STOCK {
            taken.push(spares.take().expect("a spare while the stock lasts"));
        }
        for s in &taken {
            assert_eq!(s.data.metadata().unwrap().len(), 0);
            let mut header = [0u8; meta::HEADER_LEN];
            s.meta.read_exact_at(&mut header, 0).unwrap();
            assert_eq!(header, meta::encode_header());
        }
        while spares.stock.lock().ready.len() < LOW_WATER {
            assert!(std::time::Instant::now() < deadline, "stock never refilled");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
