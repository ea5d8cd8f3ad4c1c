//! Leases: one writer per file. A lease belongs to a client name and covers
//! every file that client has open; renewing it renews them all. After the
//! soft limit another client may recover a file; after the hard limit the
//! namenode recovers it by itself.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// One client's lease.
#[derive(Debug, Clone)]
pub struct Lease {
    /// Last renewal (or grant).
    pub renewed: Instant,
    /// Inode ids of the files it covers.
    pub files: BTreeSet<u64>,
}

/// All leases.
#[derive(Debug, Default)]
pub struct LeaseManager {
    leases: HashMap<String, Lease>,
    /// Last recovery attempt per file, to pace retries.
    attempts: HashMap<u64, Instant>,
}

impl LeaseManager {
    /// No leases.
    pub fn new() -> LeaseManager {
        LeaseManager::default()
    }

    /// Grants `holder` the lease of `file` (and renews the holder's lease).
    pub fn add(&mut self, holder: &str, file: u64, now: Instant) {
        let l = self
            .leases
            .entry(holder.to_string())
            .or_insert_with(|| Lease {
                renewed: now,
                files: BTreeSet::new(),
            });
        l.renewed = now;
        l.files.insert(file);
    }

    /// Releases `file` from `holder`'s lease.
    pub fn remove(&mut self, holder: &str, file: u64) {
        self.attempts.remove(&file);
        if let Some(l) = self.leases.get_mut(holder) {
            l.files.remove(&file);
            if l.files.is_empty() {
                self.leases.remove(holder);
            }
        }
    }

    /// Renews every file of `holder`; false if it holds none.
    pub fn renew(&mut self, holder: &str, now: Instant) -> bool {
        match self.leases.get_mut(holder) {
            Some(l) => {
                l.renewed = now;
                true
            }
            None => false,
        }
    }

    /// Time since `holder` last renewed, if it holds a lease.
    pub fn age(&self, holder: &str, now: Instant) -> Option<Duration> {
        self.leases
            .get(holder)
            .map(|l| now.saturating_duration_since(l.renewed))
    }

    /// Files of holders whose lease is older than `limit`.
    pub fn expired(&self, limit: Duration, now: Instant) -> Vec<(String, u64)> {
        self.leases
            .iter()
            .filter(|(_, l)| now.saturating_duration_since(l.renewed) > limit)
            .flat_map(|(h, l)| l.files.iter().map(move |f| (h.clone(), *f)))
            .collect()
    }

    /// Files under `holder`'s lease.
    pub fn files_of(&self, holder: &str) -> Vec<u64> {
        self.leases
            .get(holder)
            .map(|l| l.files.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Notes a recovery attempt of `file`.
    pub fn note_attempt(&mut self, file: u64, now: Instant) {
        self.attempts.insert(file, now);
    }

    /// The last recovery attempt of `file`.
    pub fn last_attempt(&self, file: u64) -> Option<Instant> {
        self.attempts.get(&file).copied()
    }

    /// Number of files under lease.
    pub fn file_count(&self) -> usize {
        self.leases.values().map(|l| l.files.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_renew_expire() {
        let t = Instant::now();
        let mut m = LeaseManager::new();
        m.add("c1", 5, t);
        m.add("c1", 6, t);
        m.add("c2", 7, t + Duration::from_secs(5));
        assert_eq!(
            m.expired(Duration::from_secs(3), t + Duration::from_secs(6))
                .len(),
            2
        );
        assert!(m.renew("c1", t + Duration::from_secs(6)));
        assert!(m
            .expired(Duration::from_secs(3), t + Duration::from_secs(7))
            .is_empty());
        m.remove("c1", 5);
        m.remove("c1", 6);
        assert!(!m.renew("c1", t));
        assert_eq!(m.file_count(), 1);
        assert_eq!(
            m.age("c2", t + Duration::from_secs(6)),
            Some(Duration::from_secs(1))
        );
    }
}
