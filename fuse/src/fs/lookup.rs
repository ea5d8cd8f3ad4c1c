//! Name lookups: a file's status with its block locations (so the open
//! that follows needs no namenode call), statahead pages that answer the
//! lookups of a program walking a directory in name order, and the
//! read-ahead of the small files those pages list.

use dfs_client::LocatedStatus;
use dfs_proto::defaults::LOCATED_LIST_PAGE;
use fuser::{Errno, FileAttr};
use tracing::debug;

use super::DfsFs;
use crate::prefetch::{self, Key};
use crate::statahead::{Ahead, ListFrom, Slot};

impl DfsFs {
    pub(super) async fn lookup_entry(
        &self,
        parent: u64,
        name: &str,
    ) -> Result<Option<FileAttr>, Errno> {
        let (path, target) = self.child_ref(parent, name)?;
        let list = match self.statahead.lookup(parent, name) {
            Ahead::Hit(located) => return Ok(Some(self.found(parent, name, located))),
            // A page may be as old as the entry timeout: it says a name is
            // absent only where absence may be cached.
            Ahead::Absent if !self.opts.negative_ttl.is_zero() => {
                self.inodes.unlink(parent, name);
                return Ok(None);
            }
            Ahead::Absent => None,
            Ahead::Miss { list } => list,
        };
        if let Some(from) = list {
            // A reader walking the directory in name order: list what
            // follows in one call and serve the next lookups from it.
            if let Some(answer) = self.list_ahead(parent, name, &from).await? {
                return Ok(answer);
            }
        }
        // With the block locations: the open that usually follows needs
        // no namenode call of its own.
        match self
            .call("lookup", &path, self.client.located_status(&target))
            .await
        {
            Ok(located) => {
                self.statahead.found(parent, name, true);
                Ok(Some(self.found(parent, name, located)))
            }
            Err(e) if e == Errno::ENOENT => {
                self.inodes.unlink(parent, name);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Fetches the page of `parent` after `from` for the statahead and
    /// answers the lookup of `name` from it; `None` when the page does not
    /// settle the name. A namenode that does not answer fails the lookup
    /// (within the one RPC timeout), as a one-name lookup would.
    async fn list_ahead(
        &self,
        parent: u64,
        name: &str,
        from: &ListFrom,
    ) -> Result<Option<Option<FileAttr>>, Errno> {
        let (dir, target) = self.inode_ref(parent)?;
        let listing = self
            .client
            .list_located_page(&target, &from.after, LOCATED_LIST_PAGE);
        let (page, has_more) = match self.call("statahead", &dir, listing).await {
            Ok(page) => page,
            Err(Errno::EIO) => return Err(Errno::EIO),
            // Anything else (the directory changed meanwhile): ask for the
            // one name.
            Err(_) => return Ok(None),
        };
        debug!(path = %dir, after = %from.after, entries = page.len(), "statahead page");
        let names = page
            .into_iter()
            .map(|located| {
                let status = located.status();
                let name = status.name().to_string();
                // A file being written changes under us: look it up afresh.
                let slot = if status.under_construction {
                    Slot::Exists
                } else {
                    Slot::Entry(located)
                };
                (name, slot)
            })
            .collect();
        self.statahead.fill(parent, from, names, has_more);
        Ok(match self.statahead.lookup(parent, name) {
            Ahead::Hit(located) => Some(Some(self.found(parent, name, located))),
            Ahead::Absent if !self.opts.negative_ttl.is_zero() => {
                self.inodes.unlink(parent, name);
                Some(None)
            }
            Ahead::Absent | Ahead::Miss { .. } => None,
        })
    }

    /// Remembers `name` in `parent` as `located` says and returns its
    /// attributes; keeps a complete file's locations for the open.
    fn found(&self, parent: u64, name: &str, located: LocatedStatus) -> FileAttr {
        let status = located.status().clone();
        let ino = self.inodes.remember(parent, name, status.inode);
        self.inodes.cache_dir(ino, &status);
        if !status.is_dir() && !status.under_construction {
            self.lookups.put(ino, located);
        }
        self.attr(ino, &status)
    }

    /// Starts reading the small files listed after `ino` in its
    /// directory's statahead page, together: a program opening what it
    /// looked up in name order opens them next. A new batch starts when
    /// the next file or half the window is not read ahead yet.
    pub(super) fn prefetch_following(&self, ino: u64) {
        let Ok(path) = self.path_of(ino) else {
            return;
        };
        let name = path.rsplit('/').next().unwrap_or_default();
        let parent = self.inodes.parent(ino);
        // Only the files still to read are copied out of the page.
        let wanted = self
            .statahead
            .following(parent, name, prefetch::AHEAD, |located| {
                let key = Key::of(located.status());
                let want = !located.status().under_construction && self.prefetch.wants(&key);
                want.then(|| (key, located.clone()))
            });
        let next_missing = wanted.first().is_some_and(|(i, _)| *i == 0);
        if wanted.is_empty() || !(next_missing || wanted.len() >= prefetch::AHEAD / 2) {
            return;
        }
        let (keys, files): (Vec<Key>, Vec<LocatedStatus>) =
            wanted.into_iter().map(|(_, picked)| picked).unzip();
        let client = self.client.clone();
        debug!(path = %path, files = files.len(), "reading the next small files ahead");
        self.prefetch
            .start_batch(keys, async move { client.read_small_files(&files).await });
    }
}
