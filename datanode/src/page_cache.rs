//! Keeping block files out of the page cache once they are on disk.
//!
//! A datanode streams far more bytes than it will read again soon, and a
//! page cache that grows with every block written costs twice: memory that
//! other processes lose, and fresh pages that are slower to fill than
//! reused ones (markedly so in virtual machines, where a never-touched page
//! costs the host a fault: writes into fresh page cache ran at ~420 MB/s
//! on the 2-core test machines against 2-2.8 GB/s into reused pages). Like
//! HDFS's `dfs.datanode.drop.cache.behind.writes` and `.reads`, block
//! files are advised out of the cache behind the writer and the reader, in
//! windows: the advice on a window starts its writeback, and the same
//! advice a window later drops its pages, clean by then.
//!
//! Advice is best effort: a failure costs memory, never data, and is only
//! logged at debug level.

use std::fs::File;
use std::num::NonZeroU64;

use rustix::fs::{fadvise, Advice};
use tracing::debug;

/// Bytes per window.
pub const WINDOW: u64 = 8 << 20;

/// Drops a sequentially written or read file's pages behind the cursor.
#[derive(Debug, Default)]
pub struct DropBehind {
    /// Everything below this offset has been advised at least once.
    advised: u64,
}

impl DropBehind {
    /// Starts behind `offset` (where the writer or reader begins).
    pub fn from(offset: u64) -> DropBehind {
        DropBehind {
            advised: offset / WINDOW * WINDOW,
        }
    }

    /// The cursor reached `pos`: advise every whole window behind it, and
    /// once more the window before, which is clean by now.
    pub fn advance(&mut self, file: &File, pos: u64) {
        while pos >= self.advised + WINDOW {
            let start = self.advised;
            dont_need(file, start, WINDOW);
            if start >= WINDOW {
                dont_need(file, start - WINDOW, WINDOW);
            }
            self.advised += WINDOW;
        }
    }
}

/// Advises the whole of `file` out of the cache (after an fsync its pages
/// are clean and go at once).
pub fn drop_all(file: &File) {
    if let Err(e) = fadvise(file, 0, None, Advice::DontNeed) {
        debug!(error = %e, "fadvise(DONTNEED) failed");
    }
}

/// Tells the kernel that `file` is read sequentially (longer read-ahead).
pub fn sequential(file: &File) {
    if let Err(e) = fadvise(file, 0, None, Advice::Sequential) {
        debug!(error = %e, "fadvise(SEQUENTIAL) failed");
    }
}

fn dont_need(file: &File, offset: u64, len: u64) {
    if let Err(e) = fadvise(file, offset, NonZeroU64::new(len), Advice::DontNeed) {
        debug!(error = %e, offset, len, "fadvise(DONTNEED) failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn windows_advance() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&vec![7u8; (3 * WINDOW) as usize]).unwrap();
        let mut d = DropBehind::from(WINDOW + 5);
        assert_eq!(d.advised, WINDOW);
        d.advance(&f, WINDOW + 10);
        assert_eq!(d.advised, WINDOW);
        d.advance(&f, 3 * WINDOW);
        assert_eq!(d.advised, 3 * WINDOW);
        drop_all(&f);
        sequential(&f);
    }
}
