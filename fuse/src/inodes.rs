//! The inode table: FUSE inode numbers and the names they stand for.
//!
//! The namespace is addressed by path, the kernel by inode number. Each
//! known inode records its parent and its name, so a path is found by
//! walking up and a rename touches one entry however large the tree below.
//! The namenode's inode id is kept as a stable identity: a lookup that finds
//! a known id under another name (renamed by another client) moves the
//! entry, and one that finds a new id under a known name (replaced by
//! another client) gives the name a new inode, so the kernel drops what it
//! cached for the old file.
//!
//! Lifetimes follow the FUSE protocol: every reply that hands the kernel an
//! inode (lookup, create, mkdir, readdirplus) counts one lookup, `forget`
//! gives them back, and an entry is dropped when the kernel holds no
//! lookups and no known child still needs it to build its path.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use dfs_client::FileStatus;

use dfs_proto::defaults::MAX_PATH_DEPTH;
use parking_lot::Mutex;

/// The root directory's inode number (fixed by FUSE).
pub const ROOT: u64 = 1;

/// Why a path could not be built for an inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stale {
    /// The kernel passed an inode this table does not know.
    Unknown,
    /// The inode, or a directory above it, was removed or replaced.
    Gone,
}

#[derive(Debug)]
struct Node {
    parent: u64,
    name: String,
    /// The namenode's inode id; 0 while not known yet.
    nn_id: u64,
    /// Lookups the kernel holds.
    lookups: u64,
    /// Known entries whose parent this is.
    children: u64,
    /// False once removed or replaced: the name no longer leads here.
    linked: bool,
    /// A directory's last known status and when it was fetched. The kernel
    /// drops a directory's attributes whenever an entry in it changes and
    /// asks again before the next permission check; this answers that.
    dir_status: Option<(Instant, FileStatus)>,
    /// The kernel was last told this file's size while another client
    /// wrote it: a size it may keep (its attribute timeout) after the
    /// file is complete and longer.
    told_growing: bool,
}

#[derive(Debug)]
struct Inner {
    nodes: HashMap<u64, Node>,
    by_name: HashMap<(u64, String), u64>,
    by_nn: HashMap<u64, u64>,
    next_ino: u64,
}

/// The table; every method takes the lock once and never across I/O.
#[derive(Debug)]
pub struct InodeTable {
    inner: Mutex<Inner>,
}

impl Default for InodeTable {
    fn default() -> Self {
        Self::new()
    }
}

impl InodeTable {
    /// A table that knows only the root.
    pub fn new() -> InodeTable {
        let mut nodes = HashMap::new();
        nodes.insert(
            ROOT,
            Node {
                parent: ROOT,
                name: String::new(),
                nn_id: 0,
                lookups: 1,
                children: 0,
                linked: true,
                dir_status: None,
                told_growing: false,
            },
        );
        InodeTable {
            inner: Mutex::new(Inner {
                nodes,
                by_name: HashMap::new(),
                by_nn: HashMap::new(),
                next_ino: ROOT + 1,
            }),
        }
    }

    /// The absolute path of `ino`.
    pub fn path(&self, ino: u64) -> Result<String, Stale> {
        self.inner.lock().path(ino)
    }

    /// The path of `name` inside directory `parent`.
    pub fn child_path(&self, parent: u64, name: &str) -> Result<String, Stale> {
        let dir = self.path(parent)?;
        Ok(dfs_proto::path::join(&dir, name))
    }

    /// The parent of `ino` (the root is its own parent).
    pub fn parent(&self, ino: u64) -> u64 {
        self.inner.lock().nodes.get(&ino).map_or(ROOT, |n| n.parent)
    }

    /// The namenode id recorded for `ino` (0 when unknown).
    pub fn nn_id(&self, ino: u64) -> u64 {
        self.inner.lock().nodes.get(&ino).map_or(0, |n| n.nn_id)
    }

    /// The inode currently known under `name` in `parent`, if any.
    pub fn find(&self, parent: u64, name: &str) -> Option<u64> {
        self.inner
            .lock()
            .by_name
            .get(&(parent, name.to_string()))
            .copied()
    }

    /// Records that the kernel now holds one more lookup of the entry
    /// `name` in `parent`, whose namenode id is `nn_id` (0 if unknown), and
    /// returns its inode number.
    pub fn remember(&self, parent: u64, name: &str, nn_id: u64) -> u64 {
        let mut inner = self.inner.lock();
        let ino = inner.resolve(parent, name, nn_id);
        if let Some(node) = inner.nodes.get_mut(&ino) {
            node.lookups += 1;
        }
        ino
    }

    /// Checks that `ino` still is namenode inode `nn_id`. Learns the id if it
    /// was unknown; when it differs, the entry is detached (the file was
    /// replaced) and `false` is returned.
    pub fn confirm(&self, ino: u64, nn_id: u64) -> bool {
        if ino == ROOT || nn_id == 0 {
            return true;
        }
        let mut inner = self.inner.lock();
        let Some(node) = inner.nodes.get_mut(&ino) else {
            return false;
        };
        if node.nn_id == nn_id {
            return true;
        }
        if node.nn_id == 0 {
            node.nn_id = nn_id;
            inner.by_nn.insert(nn_id, ino);
            return true;
        }
        inner.detach(ino);
        false
    }

    /// Records that `ino` now stands for namenode inode `nn_id` (0: unknown),
    /// after this mount replaced the file's contents (create with overwrite).
    pub fn replace_id(&self, ino: u64, nn_id: u64) {
        let mut inner = self.inner.lock();
        let Some(node) = inner.nodes.get_mut(&ino) else {
            return;
        };
        let old = std::mem::replace(&mut node.nn_id, nn_id);
        if old != 0 && inner.by_nn.get(&old) == Some(&ino) {
            inner.by_nn.remove(&old);
        }
        if nn_id != 0 {
            inner.by_nn.insert(nn_id, ino);
        }
    }

    /// Keeps a directory's status for [`InodeTable::cached_dir`] (files are ignored).
    pub fn cache_dir(&self, ino: u64, status: &FileStatus) {
        if !status.is_dir() {
            return;
        }
        if let Some(node) = self.inner.lock().nodes.get_mut(&ino) {
            node.dir_status = Some((Instant::now(), status.clone()));
        }
    }

    /// Notes whether the size the kernel is being told for `ino` is that
    /// of a file another client is still writing.
    pub fn tell_growing(&self, ino: u64, growing: bool) {
        if let Some(node) = self.inner.lock().nodes.get_mut(&ino) {
            node.told_growing = growing;
        }
    }

    /// True if the kernel was last told `ino`'s size while another client
    /// wrote it (see [`InodeTable::tell_growing`]).
    pub fn told_growing(&self, ino: u64) -> bool {
        self.inner
            .lock()
            .nodes
            .get(&ino)
            .is_some_and(|n| n.told_growing)
    }

    /// A directory's status fetched less than `ttl` ago.
    pub fn cached_dir(&self, ino: u64, ttl: Duration) -> Option<FileStatus> {
        let inner = self.inner.lock();
        let (at, status) = inner.nodes.get(&ino)?.dir_status.as_ref()?;
        (at.elapsed() < ttl).then(|| status.clone())
    }

    /// An entry of directory `ino` changed through this mount at `mtime_ms`.
    pub fn dir_changed(&self, ino: u64, mtime_ms: i64) {
        if let Some(node) = self.inner.lock().nodes.get_mut(&ino) {
            if let Some((_, status)) = node.dir_status.as_mut() {
                status.mtime = status.mtime.max(mtime_ms);
            }
        }
    }

    /// The entry `name` in `parent` was removed.
    pub fn unlink(&self, parent: u64, name: &str) {
        let mut inner = self.inner.lock();
        if let Some(ino) = inner.by_name.get(&(parent, name.to_string())).copied() {
            inner.detach(ino);
        }
    }

    /// The entry `name` in `parent` was renamed to `new_name` in `new_parent`
    /// (replacing whatever was there).
    pub fn rename(&self, parent: u64, name: &str, new_parent: u64, new_name: &str) {
        let mut inner = self.inner.lock();
        match inner.by_name.get(&(parent, name.to_string())).copied() {
            Some(ino) => inner.relink(ino, new_parent, new_name),
            None => {
                if let Some(old) = inner
                    .by_name
                    .get(&(new_parent, new_name.to_string()))
                    .copied()
                {
                    inner.detach(old);
                }
            }
        }
    }

    /// The kernel gives back `n` lookups of `ino`.
    pub fn forget(&self, ino: u64, n: u64) {
        if ino == ROOT {
            return;
        }
        let mut inner = self.inner.lock();
        if let Some(node) = inner.nodes.get_mut(&ino) {
            node.lookups = node.lookups.saturating_sub(n);
            inner.prune(ino);
        }
    }

    /// Number of inodes known (the root included).
    pub fn len(&self) -> usize {
        self.inner.lock().nodes.len()
    }

    /// True when only the root is known.
    pub fn is_empty(&self) -> bool {
        self.len() <= 1
    }
}

impl Inner {
    fn path(&self, ino: u64) -> Result<String, Stale> {
        if ino == ROOT {
            return Ok("/".to_string());
        }
        let mut names = Vec::new();
        let mut cur = ino;
        while cur != ROOT {
            let node = self.nodes.get(&cur).ok_or(if cur == ino {
                Stale::Unknown
            } else {
                Stale::Gone
            })?;
            if !node.linked || names.len() > MAX_PATH_DEPTH {
                return Err(Stale::Gone);
            }
            names.push(node.name.as_str());
            cur = node.parent;
        }
        let mut path = String::with_capacity(names.iter().map(|n| n.len() + 1).sum());
        for name in names.iter().rev() {
            path.push('/');
            path.push_str(name);
        }
        Ok(path)
    }

    /// The inode for (parent, name, nn_id), creating or moving entries so
    /// the table agrees with what the namenode just said.
    fn resolve(&mut self, parent: u64, name: &str, nn_id: u64) -> u64 {
        if nn_id != 0 {
            if let Some(ino) = self.by_nn.get(&nn_id).copied() {
                let here = self
                    .nodes
                    .get(&ino)
                    .is_some_and(|n| n.linked && n.parent == parent && n.name == name);
                if !here {
                    self.relink(ino, parent, name);
                }
                return ino;
            }
        }
        let key = (parent, name.to_string());
        if let Some(ino) = self.by_name.get(&key).copied() {
            let known = self.nodes.get(&ino).map_or(0, |n| n.nn_id);
            if known == nn_id || known == 0 || nn_id == 0 {
                if known == 0 && nn_id != 0 {
                    if let Some(node) = self.nodes.get_mut(&ino) {
                        node.nn_id = nn_id;
                    }
                    self.by_nn.insert(nn_id, ino);
                }
                return ino;
            }
            // Another file now has this name: the old inode is stale.
            self.detach(ino);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(
            ino,
            Node {
                parent,
                name: name.to_string(),
                nn_id,
                lookups: 0,
                children: 0,
                linked: true,
                dir_status: None,
                told_growing: false,
            },
        );
        if let Some(p) = self.nodes.get_mut(&parent) {
            p.children += 1;
        }
        self.by_name.insert(key, ino);
        if nn_id != 0 {
            self.by_nn.insert(nn_id, ino);
        }
        ino
    }

    /// Moves `ino` to (parent, name), detaching whatever was there.
    fn relink(&mut self, ino: u64, parent: u64, name: &str) {
        let key = (parent, name.to_string());
        if let Some(other) = self.by_name.get(&key).copied() {
            if other != ino {
                self.detach(other);
            }
        }
        let Some(node) = self.nodes.get_mut(&ino) else {
            return;
        };
        let old_key = (
            node.parent,
            std::mem::replace(&mut node.name, name.to_string()),
        );
        let old_parent = std::mem::replace(&mut node.parent, parent);
        node.linked = true;
        let nn_id = node.nn_id;
        if self.by_name.get(&old_key) == Some(&ino) {
            self.by_name.remove(&old_key);
        }
        self.by_name.insert(key, ino);
        if nn_id != 0 {
            self.by_nn.insert(nn_id, ino);
        }
        if let Some(p) = self.nodes.get_mut(&parent) {
            p.children += 1;
        }
        if let Some(p) = self.nodes.get_mut(&old_parent) {
            p.children = p.children.saturating_sub(1);
        }
        self.prune(old_parent);
    }

    /// The name no longer leads to `ino`; it stays until the kernel forgets it.
    fn detach(&mut self, ino: u64) {
        let Some(node) = self.nodes.get_mut(&ino) else {
            return;
        };
        node.linked = false;
        let key = (node.parent, node.name.clone());
        let nn_id = node.nn_id;
        if self.by_name.get(&key) == Some(&ino) {
            self.by_name.remove(&key);
        }
        if nn_id != 0 && self.by_nn.get(&nn_id) == Some(&ino) {
            self.by_nn.remove(&nn_id);
        }
        self.prune(ino);
    }

    /// Drops `ino` and then its ancestors while nothing needs them.
    fn prune(&mut self, mut ino: u64) {
        while ino != ROOT {
            let Some(node) = self.nodes.get(&ino) else {
                return;
            };
            if node.lookups > 0 || node.children > 0 {
                return;
            }
            let parent = node.parent;
            let key = (parent, node.name.clone());
            let nn_id = node.nn_id;
            self.nodes.remove(&ino);
            if self.by_name.get(&key) == Some(&ino) {
                self.by_name.remove(&key);
            }
            if nn_id != 0 && self.by_nn.get(&nn_id) == Some(&ino) {
                self.by_nn.remove(&nn_id);
            }
            match self.nodes.get_mut(&parent) {
                Some(p) => p.children = p.children.saturating_sub(1),
                None => return,
            }
            ino = parent;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_children_paths() {
        let t = InodeTable::new();
        assert_eq!(t.path(ROOT).unwrap(), "/");
        let a = t.remember(ROOT, "a", 10);
        let b = t.remember(a, "b", 11);
        assert_ne!(a, b);
        assert_eq!(t.path(b).unwrap(), "/a/b");
        assert_eq!(t.child_path(b, "c").unwrap(), "/a/b/c");
        assert_eq!(t.path(999), Err(Stale::Unknown));
        assert_eq!(t.find(a, "b"), Some(b));
        assert_eq!(t.parent(b), a);
    }

    #[test]
    fn same_entry_gets_same_inode() {
        let t = InodeTable::new();
        let a = t.remember(ROOT, "a", 10);
        assert_eq!(t.remember(ROOT, "a", 10), a);
        // Two lookups held: one forget keeps it.
        t.forget(a, 1);
        assert_eq!(t.path(a).unwrap(), "/a");
        t.forget(a, 1);
        assert_eq!(t.path(a), Err(Stale::Unknown));
        assert!(t.is_empty());
    }

    #[test]
    fn parent_outlives_forget_while_children_known() {
        let t = InodeTable::new();
        let d = t.remember(ROOT, "d", 10);
        let f = t.remember(d, "f", 11);
        t.forget(d, 1);
        assert_eq!(t.path(f).unwrap(), "/d/f");
        t.forget(f, 1);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn rename_of_directory_moves_descendants() {
        let t = InodeTable::new();
        let d = t.remember(ROOT, "d", 10);
        let f = t.remember(d, "f", 11);
        let e = t.remember(ROOT, "e", 12);
        t.rename(ROOT, "d", e, "moved");
        assert_eq!(t.path(f).unwrap(), "/e/moved/f");
        assert_eq!(t.find(ROOT, "d"), None);
        assert_eq!(t.find(e, "moved"), Some(d));
    }

    #[test]
    fn rename_over_existing_detaches_target() {
        let t = InodeTable::new();
        let a = t.remember(ROOT, "a", 10);
        let b = t.remember(ROOT, "b", 11);
        t.rename(ROOT, "a", ROOT, "b");
        assert_eq!(t.path(a).unwrap(), "/b");
        assert_eq!(t.path(b), Err(Stale::Gone));
        assert_eq!(t.find(ROOT, "b"), Some(a));
        t.forget(b, 1);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn unlink_keeps_inode_until_forgotten() {
        let t = InodeTable::new();
        let a = t.remember(ROOT, "a", 10);
        t.unlink(ROOT, "a");
        assert_eq!(t.path(a), Err(Stale::Gone));
        let again = t.remember(ROOT, "a", 20);
        assert_ne!(again, a);
        t.forget(a, 1);
        assert_eq!(t.path(again).unwrap(), "/a");
    }

    #[test]
    fn external_replace_gives_new_inode() {
        let t = InodeTable::new();
        let a = t.remember(ROOT, "a", 10);
        let b = t.remember(ROOT, "a", 20);
        assert_ne!(a, b);
        assert_eq!(t.path(a), Err(Stale::Gone));
        assert_eq!(t.path(b).unwrap(), "/a");
    }

    #[test]
    fn external_rename_moves_known_id() {
        let t = InodeTable::new();
        let a = t.remember(ROOT, "a", 10);
        assert_eq!(t.remember(ROOT, "z", 10), a);
        assert_eq!(t.path(a).unwrap(), "/z");
        assert_eq!(t.find(ROOT, "a"), None);
    }

    #[test]
    fn unknown_id_is_learned_then_confirmed() {
        let t = InodeTable::new();
        let a = t.remember(ROOT, "a", 0);
        assert_eq!(t.nn_id(a), 0);
        assert_eq!(t.remember(ROOT, "a", 10), a);
        assert_eq!(t.nn_id(a), 10);
        assert!(t.confirm(a, 10));
        assert!(!t.confirm(a, 11));
        assert_eq!(t.path(a), Err(Stale::Gone));
    }

    #[test]
    fn directory_status_cached_for_a_while() {
        let t = InodeTable::new();
        let d = t.remember(ROOT, "d", 10);
        let mut st = FileStatus {
            path: "/d".into(),
            file_type: dfs_client::FileType::Dir,
            length: 0,
            replication: 0,
            block_size: 0,
            owner: "0".into(),
            group: "0".into(),
            mode: 0o755,
            mtime: 100,
            atime: 100,
            inode: 10,
            under_construction: false,
        };
        t.cache_dir(d, &st);
        assert_eq!(t.cached_dir(d, Duration::from_secs(60)).unwrap().mtime, 100);
        t.dir_changed(d, 200);
        assert_eq!(t.cached_dir(d, Duration::from_secs(60)).unwrap().mtime, 200);
        assert!(t.cached_dir(d, Duration::ZERO).is_none());
        st.file_type = dfs_client::FileType::File;
        let f = t.remember(d, "f", 11);
        t.cache_dir(f, &st);
        assert!(t.cached_dir(f, Duration::from_secs(60)).is_none());
    }

    #[test]
    fn replace_id_after_local_overwrite() {
        let t = InodeTable::new();
        let a = t.remember(ROOT, "a", 10);
        t.replace_id(a, 30);
        assert!(t.confirm(a, 30));
        assert_eq!(t.remember(ROOT, "a", 30), a);
        // The old id no longer points anywhere.
        let old = t.remember(ROOT, "b", 10);
        assert_ne!(old, a);
    }
}
