//! [`RecentLookups`]: the block locations a lookup fetched with a file's
//! status, kept for the open that usually follows at once, so reading a
//! small file takes one namenode call instead of two.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The longest a lookup's locations may serve an open (the mount uses
/// the shorter of this and its entry timeout). Complete files never change
/// and a reader refreshes locations that went stale, so this only bounds
/// how old a replica list may be when a read starts.
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// At most this many lookups are kept; the oldest go first.
pub const CAPACITY: usize = 1024;

/// Lookups (in the mount: `dfs_client::LocatedStatus`) by inode, each kept
/// for at most [`FRESH_FOR`] and taken by one open.
#[derive(Debug)]
pub struct RecentLookups<T> {
    map: Mutex<HashMap<u64, (Instant, T)>>,
    fresh_for: Duration,
}

impl<T> Default for RecentLookups<T> {
    fn default() -> Self {
        RecentLookups::new(FRESH_FOR)
    }
}

impl<T> RecentLookups<T> {
    /// Keeps lookups for `fresh_for` (at most [`FRESH_FOR`]; zero keeps
    /// none).
    pub fn new(fresh_for: Duration) -> Self {
        RecentLookups {
            map: Mutex::new(HashMap::new()),
            fresh_for: fresh_for.min(FRESH_FOR),
        }
    }

    /// Keeps the lookup of `ino` for the open that follows.
    pub fn put(&self, ino: u64, located: T) {
        if self.fresh_for.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut map = self.map.lock();
        if map.len() >= CAPACITY {
            map.retain(|_, (at, _)| now.duration_since(*at) < self.fresh_for);
            if map.len() >= CAPACITY {
                if let Some(oldest) = map.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| *k) {
                    map.remove(&oldest);
                }
            }
        }
        map.insert(ino, (now, located));
    }

    /// The lookup of `ino`, if one was kept less than its freshness ago.
    pub fn take(&self, ino: u64) -> Option<T> {
        let (at, located) = self.map.lock().remove(&ino)?;
        (at.elapsed() < self.fresh_for).then_some(located)
    }

    /// Forgets `ino` (its name now points elsewhere, or it is gone).
    pub fn forget(&self, ino: u64) {
        self.map.lock().remove(&ino);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_serves_one_open() {
        let l = RecentLookups::default();
        l.put(7, "seven");
        assert_eq!(l.take(7), Some("seven"));
        assert_eq!(l.take(7), None);
        l.put(8, "eight");
        l.forget(8);
        assert_eq!(l.take(8), None);
    }

    #[test]
    fn a_zero_entry_timeout_keeps_nothing() {
        let l = RecentLookups::new(Duration::ZERO);
        l.put(7, "seven");
        assert_eq!(l.take(7), None);
    }

    #[test]
    fn stays_bounded_and_drops_the_oldest() {
        let l = RecentLookups::default();
        for i in 0..(CAPACITY as u64 + 10) {
            l.put(i, i);
        }
        assert_eq!(l.map.lock().len(), CAPACITY);
        assert_eq!(l.take(0), None);
        assert_eq!(l.take(CAPACITY as u64 + 9), Some(CAPACITY as u64 + 9));
    }
}
