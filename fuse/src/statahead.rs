//! [`Statahead`]: when a program looks up the names of a directory one
//! after another in name order (`cat dir/*`, a backup, a build reading its
//! sources), the mount fetches the statuses and block locations of the
//! names that follow in one located listing (HDFS's `listLocatedStatus`;
//! Lustre calls the idea statahead) and answers the next lookups, and the
//! opens after them, without a namenode call each.
//!
//! A page is kept for at most the entry timeout (and never more than
//! [`FRESH_FOR`]), the same staleness the kernel's own name cache allows;
//! the mount drops a directory's page whenever it changes that directory
//! itself. Each listed entry serves one lookup; a name looked up again asks
//! the namenode.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The longest a page may answer lookups (the mount uses the shorter of
/// this and its entry timeout).
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// Directories with a page or a lookup pattern kept at most.
pub const MAX_DIRS: usize = 256;

/// What the statahead knows of one name.
#[derive(Debug, PartialEq, Eq)]
pub enum Ahead<T> {
    /// Listed: here is its entry.
    Hit(T),
    /// Not in the directory when the page covering it was listed.
    Absent,
    /// Ask the namenode. `list` is set when lookups in this directory
    /// follow name order: list the names after the one it gives in one page
    /// (it includes the name asked for) rather than look up one name.
    Miss {
        /// Where to list from, for [`Statahead::fill`].
        list: Option<ListFrom>,
    },
}

/// A listing to fetch: the names after `after`. `epoch` tells
/// [`Statahead::fill`] whether the mount changed the directory meanwhile.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct ListFrom {
    /// List the names after this one.
    pub after: String,
    epoch: u64,
}

/// One listed name.
#[derive(Debug)]
pub enum Slot<T> {
    /// Its entry, for the first lookup.
    Entry(T),
    /// It exists, but must be looked up (already served, or not cacheable
    /// such as a file being written).
    Exists,
}

/// Names listed after `after`, up to `last` (to the end of the directory
/// when `last` is `None`).
#[derive(Debug)]
struct Page<T> {
    at: Instant,
    after: String,
    last: Option<String>,
    names: BTreeMap<String, Slot<T>>,
}

impl<T> Page<T> {
    fn covers(&self, name: &str) -> bool {
        name > self.after.as_str() && self.last.as_deref().is_none_or(|l| name <= l)
    }
}

/// One directory's recent lookups and page.
#[derive(Debug)]
struct Dir<T> {
    epoch: u64,
    last_lookup: String,
    last_found: bool,
    touched: Instant,
    page: Option<Page<T>>,
}

/// Listed pages and lookup order by directory inode.
#[derive(Debug)]
pub struct Statahead<T> {
    dirs: Mutex<Dirs<T>>,
    fresh_for: Duration,
}

/// The directories, and the epoch the next change gets (epochs never
/// repeat, even for a directory dropped and seen again).
#[derive(Debug)]
struct Dirs<T> {
    by_ino: HashMap<u64, Dir<T>>,
    next_epoch: u64,
}

impl<T> Statahead<T> {
    /// Keeps pages for `fresh_for` (at most [`FRESH_FOR`]; zero turns
    /// statahead off).
    pub fn new(fresh_for: Duration) -> Self {
        Statahead {
            dirs: Mutex::new(Dirs {
                by_ino: HashMap::new(),
                next_epoch: 1,
            }),
            fresh_for: fresh_for.min(FRESH_FOR),
        }
    }

    /// What is known of `name` in directory `parent`, noting the lookup.
    pub fn lookup(&self, parent: u64, name: &str) -> Ahead<T> {
        if self.fresh_for.is_zero() {
            return Ahead::Miss { list: None };
        }
        let now = Instant::now();
        let mut dirs = self.dirs.lock();
        let dirs = &mut *dirs;
        if !dirs.by_ino.contains_key(&parent) && dirs.by_ino.len() >= MAX_DIRS {
            let oldest = dirs.by_ino.iter().min_by_key(|(_, d)| d.touched);
            if let Some(oldest) = oldest.map(|(k, _)| *k) {
                dirs.by_ino.remove(&oldest);
            }
        }
        let epoch = &mut dirs.next_epoch;
        let dir = dirs.by_ino.entry(parent).or_insert_with(|| Dir {
            epoch: std::mem::replace(epoch, *epoch + 1),
            last_lookup: String::new(),
            last_found: false,
            touched: now,
            page: None,
        });
        dir.touched = now;
        let previous = std::mem::replace(&mut dir.last_lookup, name.to_string());
        let was_found = std::mem::replace(&mut dir.last_found, false);
        if let Some(page) = &mut dir.page {
            if now.duration_since(page.at) < self.fresh_for && page.covers(name) {
                return match page.names.get_mut(name) {
                    Some(slot) => match std::mem::replace(slot, Slot::Exists) {
                        Slot::Entry(entry) => {
                            dir.last_found = true;
                            Ahead::Hit(entry)
                        }
                        Slot::Exists => Ahead::Miss { list: None },
                    },
                    None => Ahead::Absent,
                };
            }
        }
        // In name order after a name that existed: a reader walking the
        // directory. (Creating files in order looks up absent names, which
        // one-name lookups serve as well as a listing would.)
        let in_order = was_found && previous.as_str() < name;
        Ahead::Miss {
            list: in_order.then_some(ListFrom {
                after: previous,
                epoch: dir.epoch,
            }),
        }
    }

    /// Notes whether the last lookup of `name` in `parent`, answered by
    /// the namenode, found it.
    pub fn found(&self, parent: u64, name: &str, found: bool) {
        if let Some(dir) = self.dirs.lock().by_ino.get_mut(&parent) {
            if dir.last_lookup == name {
                dir.last_found = found;
            }
        }
    }

    /// Keeps a page of `parent` listed as `from` asked: `names` in name
    /// order, the directory's last ones unless `has_more`. Dropped if the
    /// mount changed the directory since `from` was handed out.
    pub fn fill(
        &self,
        parent: u64,
        from: &ListFrom,
        names: Vec<(String, Slot<T>)>,
        has_more: bool,
    ) {
        if self.fresh_for.is_zero() {
            return;
        }
        let last = if has_more {
            match names.last() {
                Some((name, _)) => Some(name.clone()),
                None => return,
            }
        } else {
            None
        };
        let mut dirs = self.dirs.lock();
        let Some(dir) = dirs.by_ino.get_mut(&parent) else {
            return;
        };
        if dir.epoch == from.epoch {
            dir.page = Some(Page {
                at: Instant::now(),
                after: from.after.clone(),
                last,
                names: names.into_iter().collect(),
            });
        }
    }

    /// What `pick` takes of the entries of at most `n` names listed after
    /// `name` in `parent` and not looked up yet (what a reader walking the
    /// directory opens next), each with its position among those `n`.
    /// `pick` sees the entries in place, so only what it returns is copied.
    pub fn following<U>(
        &self,
        parent: u64,
        name: &str,
        n: usize,
        mut pick: impl FnMut(&T) -> Option<U>,
    ) -> Vec<(usize, U)> {
        let dirs = self.dirs.lock();
        let Some(page) = dirs.by_ino.get(&parent).and_then(|d| d.page.as_ref()) else {
            return Vec::new();
        };
        if page.at.elapsed() >= self.fresh_for {
            return Vec::new();
        }
        page.names
            .range::<str, _>((Bound::Excluded(name), Bound::Unbounded))
            .filter_map(|(_, slot)| match slot {
                Slot::Entry(entry) => Some(entry),
                Slot::Exists => None,
            })
            .take(n)
            .enumerate()
            .filter_map(|(i, entry)| pick(entry).map(|u| (i, u)))
            .collect()
    }

    /// Drops what is known of `parent`'s names: the mount changed it.
    pub fn forget_dir(&self, parent: u64) {
        let mut dirs = self.dirs.lock();
        let dirs = &mut *dirs;
        if let Some(dir) = dirs.by_ino.get_mut(&parent) {
            dir.page = None;
            dir.last_found = false;
            dir.epoch = dirs.next_epoch;
            dirs.next_epoch += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(names: &[&str]) -> Vec<(String, Slot<String>)> {
        names
            .iter()
            .map(|n| (n.to_string(), Slot::Entry(n.to_uppercase())))
            .collect()
    }

    #[allow(clippy::ptr_arg)] // the page's entry type is String here
    fn pick_all(e: &String) -> Option<String> {
        Some(e.to_string())
    }

    fn names(picked: Vec<(usize, String)>) -> Vec<String> {
        picked.into_iter().map(|(_, e)| e).collect()
    }

    fn listing<T: std::fmt::Debug>(a: Ahead<T>) -> ListFrom {
        match a {
            Ahead::Miss { list: Some(from) } => from,
            other => panic!("expected a listing, got {other:?}"),
        }
    }

    /// A page for `parent` as if the lookups had walked up to `after`.
    fn fill_after(s: &Statahead<String>, parent: u64, after: &str, names: &[&str], more: bool) {
        s.lookup(parent, after);
        s.found(parent, after, true);
        let from = listing(s.lookup(parent, "~"));
        s.fill(parent, &from, page(names), more);
    }

    #[test]
    fn lookups_in_name_order_ask_for_a_listing_and_are_served_by_it() {
        let s = Statahead::new(FRESH_FOR);
        assert_eq!(s.lookup(1, "a"), Ahead::Miss { list: None });
        s.found(1, "a", true);
        let from = listing(s.lookup(1, "b"));
        assert_eq!(from.after, "a");
        s.fill(1, &from, page(&["b", "d", "e"]), true);
        assert_eq!(s.lookup(1, "b"), Ahead::Hit("B".into()));
        assert_eq!(s.lookup(1, "c"), Ahead::Absent);
        assert_eq!(s.lookup(1, "d"), Ahead::Hit("D".into()));
        // Served once: a second lookup of the same name asks again.
        assert_eq!(s.lookup(1, "d"), Ahead::Miss { list: None });
        // Past the page's last name (more follow): not known.
        s.found(1, "d", true);
        assert_eq!(listing(s.lookup(1, "f")).after, "d");
        // Other directories are separate.
        assert_eq!(s.lookup(2, "b"), Ahead::Miss { list: None });
    }

    #[test]
    fn following_lists_the_names_not_looked_up_yet_in_order() {
        let s = Statahead::new(FRESH_FOR);
        fill_after(&s, 1, "a", &["b", "c", "d", "e"], true);
        assert_eq!(s.lookup(1, "c"), Ahead::Hit("C".into()));
        assert_eq!(
            names(s.following(1, "b", 2, pick_all)),
            vec!["D".to_string(), "E".to_string()]
        );
        assert_eq!(
            names(s.following(1, "e", 2, pick_all)),
            Vec::<String>::new()
        );
        assert_eq!(
            names(s.following(2, "b", 2, pick_all)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_last_page_covers_the_rest_of_the_directory() {
        let s = Statahead::new(FRESH_FOR);
        fill_after(&s, 1, "a", &["b"], false);
        assert_eq!(s.lookup(1, "zzz"), Ahead::Absent);
        assert_eq!(s.lookup(1, "a"), Ahead::Miss { list: None });
    }

    #[test]
    fn absent_names_and_out_of_order_lookups_ask_for_one_name() {
        let s: Statahead<String> = Statahead::new(FRESH_FOR);
        s.lookup(1, "a");
        s.found(1, "a", false);
        assert_eq!(s.lookup(1, "b"), Ahead::Miss { list: None });
        s.found(1, "b", true);
        assert_eq!(s.lookup(1, "a"), Ahead::Miss { list: None });
    }

    #[test]
    fn a_change_by_the_mount_drops_the_page() {
        let s = Statahead::new(FRESH_FOR);
        fill_after(&s, 1, "a", &["b"], false);
        s.forget_dir(1);
        assert_eq!(s.lookup(1, "c"), Ahead::Miss { list: None });
    }

    #[test]
    fn a_listing_that_raced_a_change_by_the_mount_is_dropped() {
        let s = Statahead::new(FRESH_FOR);
        s.lookup(1, "a");
        s.found(1, "a", true);
        let from = listing(s.lookup(1, "b"));
        s.forget_dir(1);
        s.fill(1, &from, page(&["b"]), false);
        assert_eq!(s.lookup(1, "b"), Ahead::Miss { list: None });
    }

    #[test]
    fn entries_the_page_could_not_keep_are_looked_up() {
        let s: Statahead<String> = Statahead::new(FRESH_FOR);
        s.lookup(1, "a");
        s.found(1, "a", true);
        let from = listing(s.lookup(1, "b"));
        s.fill(1, &from, vec![("b".into(), Slot::Exists)], false);
        assert_eq!(s.lookup(1, "b"), Ahead::Miss { list: None });
    }

    #[test]
    fn zero_timeout_keeps_nothing_and_pages_expire() {
        let s: Statahead<String> = Statahead::new(Duration::ZERO);
        s.lookup(1, "a");
        s.found(1, "a", true);
        assert_eq!(s.lookup(1, "b"), Ahead::Miss { list: None });
        let s = Statahead::new(Duration::from_millis(20));
        fill_after(&s, 1, "a", &["b"], false);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(s.lookup(1, "b"), Ahead::Miss { list: None });
    }

    #[test]
    fn stays_bounded() {
        let s: Statahead<String> = Statahead::new(FRESH_FOR);
        for d in 0..(MAX_DIRS as u64 + 10) {
            s.lookup(d, "a");
        }
        assert_eq!(s.dirs.lock().by_ino.len(), MAX_DIRS);
    }
}
