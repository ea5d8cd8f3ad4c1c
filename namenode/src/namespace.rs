//! The namespace: the inode tree in memory.
//!
//! Every mutating operation is planned first: it validates against the
//! current tree and returns a [`Batch`] of [`Change`]s plus its outcome,
//! without touching anything. The caller persists the batch with the store
//! and then applies the very same batch here with [`Namespace::apply`], so
//! the tree in memory and the tree on disk are always built from the same
//! changes (and a failed store write leaves memory untouched).
//!
//! [`Batch`]: crate::store::Batch

use std::collections::{BTreeMap, HashMap};

use dfs_proto::defaults;
use dfs_proto::image::{BlockRecord, InodeRecord};
use dfs_proto::path as dpath;
use dfs_proto::{FileStatus, FileType};

use crate::error::{Error, Result};
use crate::store::{Change, Counters, Image, ROOT_ID};

mod plan;

pub use plan::{check_block_size, check_principal};

/// Lease holder recorded while the namenode itself recovers a file.
pub const RECOVERY_HOLDER: &str = "dfs-namenode-lease-recovery";

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One inode: its persistent record and, for a directory, its entries.
#[derive(Debug, Clone, PartialEq)]
pub struct Inode {
    /// The persisted fields.
    pub rec: InodeRecord,
    /// Directory entries by name (empty for files).
    pub children: BTreeMap<String, u64>,
}

impl Inode {
    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.rec.is_dir
    }

    /// Whether a writer holds the file open.
    pub fn under_construction(&self) -> bool {
        !self.rec.is_dir && !self.rec.lease_holder.is_empty()
    }

    /// Bytes of the file: the sum of its block lengths (for a block being
    /// written, what the pipeline acknowledged).
    pub fn length(&self) -> u64 {
        self.rec
            .blocks
            .iter()
            .fold(0u64, |a, b| a.saturating_add(b.length))
    }
}

/// Who asks for a new inode and with which attributes.
#[derive(Debug, Clone, Default)]
pub struct NewAttrs {
    /// Permission bits (0 = default).
    pub mode: u32,
    /// Owner (empty = `root`).
    pub owner: String,
    /// Group (empty = `root`).
    pub group: String,
}

/// Attributes to change on an inode; `None` leaves one as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttrChange {
    /// Permission bits (only the low 12 are kept).
    pub mode: Option<u32>,
    /// Owner name.
    pub owner: Option<String>,
    /// Group name.
    pub group: Option<String>,
    /// Modification time, milliseconds since the epoch.
    pub mtime_ms: Option<i64>,
    /// Access time, milliseconds since the epoch.
    pub atime_ms: Option<i64>,
}

impl AttrChange {
    /// Checks the names, before anything is changed: a new owner or group
    /// is not empty, at most 256 bytes and without NUL.
    pub fn check(&self, path: &str) -> Result<()> {
        for (what, name) in [("owner", &self.owner), ("group", &self.group)] {
            if let Some(n) = name {
                dfs_proto::principal::check_principal(what, n, false)
                    .map_err(|e| Error::invalid(format!("set {what} of {path}: {e}")))?;
            }
        }
        Ok(())
    }

    /// True if `rec` has every attribute given.
    pub fn stored_in(&self, rec: &InodeRecord) -> bool {
        self.mode.is_none_or(|m| rec.mode == m & 0o7777)
            && self.owner.as_ref().is_none_or(|o| rec.owner == *o)
            && self.group.as_ref().is_none_or(|g| rec.group == *g)
            && self.mtime_ms.is_none_or(|t| rec.mtime_ms == t)
            && self.atime_ms.is_none_or(|t| rec.atime_ms == t)
    }

    /// Sets the attributes given on `rec` (checked with [`check`](Self::check)).
    pub fn apply(self, rec: &mut InodeRecord) {
        if let Some(m) = self.mode {
            rec.mode = m & 0o7777;
        }
        if let Some(o) = self.owner {
            rec.owner = o;
        }
        if let Some(g) = self.group {
            rec.group = g;
        }
        if let Some(t) = self.mtime_ms {
            rec.mtime_ms = t;
        }
        if let Some(t) = self.atime_ms {
            rec.atime_ms = t;
        }
    }
}

impl From<dfs_proto::FileAttrs> for AttrChange {
    fn from(a: dfs_proto::FileAttrs) -> AttrChange {
        AttrChange {
            mode: a.mode,
            owner: a.owner,
            group: a.group,
            mtime_ms: a.mtime_ms,
            atime_ms: a.atime_ms,
        }
    }
}

/// Parameters of [`Namespace::plan_create`].
#[derive(Debug, Clone, Default)]
pub struct CreateArgs {
    /// The file to create.
    pub path: String,
    /// Lease holder.
    pub client_name: String,
    /// Replace an existing file.
    pub overwrite: bool,
    /// Create missing parent directories.
    pub create_parents: bool,
    /// Replication (0 = default).
    pub replication: u32,
    /// Block size (0 = default).
    pub block_size: u64,
    /// Attributes.
    pub attrs: NewAttrs,
}

/// A file taken out of the namespace (deleted or replaced).
#[derive(Debug, Clone, PartialEq)]
pub struct RemovedFile {
    /// Its inode id.
    pub id: u64,
    /// Its blocks.
    pub blocks: Vec<BlockRecord>,
    /// Datanode ids of its last block's pipeline, if it was being written.
    pub pipeline: Vec<String>,
    /// Lease holder if it was being written.
    pub lease_holder: String,
}

/// Outcome of a create.
#[derive(Debug, Clone)]
pub struct Created {
    /// The new file's inode id.
    pub id: u64,
    /// The normalized path.
    pub path: String,
    /// The file it replaced, if any.
    pub replaced: Option<RemovedFile>,
}

/// Totals of a subtree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Bytes of every file.
    pub length: u64,
    /// Number of files.
    pub files: u64,
    /// Number of directories, the root of the subtree included.
    pub directories: u64,
    /// Bytes times replication.
    pub space_consumed: u64,
}

/// The inode tree.
#[derive(Debug, Clone)]
pub struct Namespace {
    inodes: HashMap<u64, Inode>,
    counters: Counters,
    default_block_size: u64,
    default_replication: u32,
}

fn corrupt(message: String) -> Error {
    Error::CorruptStore { message }
}

/// Splits and validates a path, returning its components and normal form.
pub fn parse(path: &str) -> Result<(Vec<&str>, String)> {
    let comps = dpath::components(path)?;
    let mut norm = String::with_capacity(path.len());
    for c in &comps {
        norm.push('/');
        norm.push_str(c);
    }
    if norm.is_empty() {
        norm.push('/');
    }
    Ok((comps, norm))
}

fn prefix(comps: &[&str]) -> String {
    if comps.is_empty() {
        return "/".to_string();
    }
    let mut s = String::new();
    for c in comps {
        s.push('/');
        s.push_str(c);
    }
    s
}

impl Namespace {
    /// An empty namespace holding only `/` (tests).
    pub fn new_empty(default_block_size: u64, default_replication: u32) -> Namespace {
        let now = now_ms();
        let root = InodeRecord {
            id: ROOT_ID,
            is_dir: true,
            mode: 0o755,
            owner: "root".into(),
            group: "root".into(),
            mtime_ms: now,
            atime_ms: now,
            ..Default::default()
        };
        let mut inodes = HashMap::new();
        inodes.insert(
            ROOT_ID,
            Inode {
                rec: root,
                children: BTreeMap::new(),
            },
        );
        Namespace {
            inodes,
            counters: Counters::default(),
            default_block_size,
            default_replication,
        }
    }

    /// Builds the tree from a loaded image, checking that it is one
    /// consistent tree rooted at `/`.
    pub fn from_image(
        image: Image,
        default_block_size: u64,
        default_replication: u32,
    ) -> Result<Namespace> {
        let mut inodes: HashMap<u64, Inode> = HashMap::with_capacity(image.inodes.len());
        let mut max_block = 0u64;
        let mut max_gs = 0u64;
        let mut max_inode = 0u64;
        for rec in image.inodes {
            max_inode = max_inode.max(rec.id);
            for b in &rec.blocks {
                max_block = max_block.max(b.id);
                max_gs = max_gs.max(b.generation_stamp);
            }
            if rec.is_dir && !rec.blocks.is_empty() {
                return Err(corrupt(format!("directory inode {} has blocks", rec.id)));
            }
            let id = rec.id;
            if inodes
                .insert(
                    id,
                    Inode {
                        rec,
                        children: BTreeMap::new(),
                    },
                )
                .is_some()
            {
                return Err(corrupt(format!("inode {id} appears twice")));
            }
        }
        match inodes.get(&ROOT_ID) {
            Some(root) if root.is_dir() => {}
            _ => return Err(corrupt("the root directory is missing".into())),
        }
        let mut entries_of = HashMap::<u64, u32>::new();
        for (parent, name, child) in image.dirents {
            let rec = match inodes.get(&child) {
                Some(c) => &c.rec,
                None => {
                    return Err(corrupt(format!(
                        "entry '{name}' of directory {parent} names missing inode {child}"
                    )))
                }
            };
            if rec.parent != parent || rec.name != name {
                return Err(corrupt(format!(
                    "entry '{name}' of directory {parent} names inode {child}, which says it is '{}' in {}",
                    rec.name, rec.parent
                )));
            }
            match inodes.get_mut(&parent) {
                Some(p) if p.is_dir() => {
                    p.children.insert(name, child);
                }
                _ => {
                    return Err(corrupt(format!(
                        "entry '{name}' belongs to inode {parent}, which is not a directory"
                    )))
                }
            }
            *entries_of.entry(child).or_default() += 1;
        }
        for id in inodes.keys() {
            if *id != ROOT_ID && entries_of.get(id) != Some(&1) {
                return Err(corrupt(format!(
                    "inode {id} has {} directory entries, expected 1",
                    entries_of.get(id).copied().unwrap_or(0)
                )));
            }
        }
        // Every inode must hang off the root (no detached cycles).
        let mut seen = 0usize;
        let mut stack = vec![ROOT_ID];
        while let Some(id) = stack.pop() {
            seen += 1;
            if seen > inodes.len() {
                return Err(corrupt("the directory tree has a cycle".into()));
            }
            if let Some(i) = inodes.get(&id) {
                stack.extend(i.children.values().copied());
            }
        }
        if seen != inodes.len() {
            return Err(corrupt(format!(
                "{} inodes are not reachable from /",
                inodes.len() - seen
            )));
        }
        let c = image.counters;
        if c.next_inode <= max_inode
            || (max_block > 0 && c.next_block <= max_block)
            || c.generation_stamp < max_gs
        {
            return Err(corrupt(format!(
                "counters {c:?} are behind the records (max inode {max_inode}, block {max_block}, gs {max_gs})"
            )));
        }
        Ok(Namespace {
            inodes,
            counters: c,
            default_block_size,
            default_replication,
        })
    }

    /// Applies a batch planned by this namespace (after it was persisted).
    pub fn apply(&mut self, batch: &[Change]) {
        for change in batch {
            match change {
                Change::PutInode(rec) => match self.inodes.get_mut(&rec.id) {
                    Some(i) => i.rec = rec.clone(),
                    None => {
                        self.inodes.insert(
                            rec.id,
                            Inode {
                                rec: rec.clone(),
                                children: BTreeMap::new(),
                            },
                        );
                    }
                },
                Change::RemoveInode(id) => {
                    self.inodes.remove(id);
                }
                Change::PutDirent {
                    parent,
                    name,
                    child,
                } => {
                    if let Some(p) = self.inodes.get_mut(parent) {
                        p.children.insert(name.clone(), *child);
                    }
                }
                Change::RemoveDirent { parent, name } => {
                    if let Some(p) = self.inodes.get_mut(parent) {
                        p.children.remove(name);
                    }
                }
                Change::Counters(c) => self.counters = *c,
            }
        }
    }

    /// The counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Default block size of new files.
    pub fn default_block_size(&self) -> u64 {
        self.default_block_size
    }

    /// An inode by id.
    pub fn inode(&self, id: u64) -> Option<&Inode> {
        self.inodes.get(&id)
    }

    /// Every inode (any order).
    pub fn inodes(&self) -> impl Iterator<Item = &Inode> {
        self.inodes.values()
    }

    /// Number of files and directories.
    pub fn counts(&self) -> (u64, u64) {
        let dirs = self.inodes.values().filter(|i| i.is_dir()).count() as u64;
        (self.inodes.len() as u64 - dirs, dirs)
    }

    /// The absolute path of an inode.
    pub fn path_of(&self, id: u64) -> Option<String> {
        let mut names = Vec::new();
        let mut cur = id;
        while cur != ROOT_ID {
            let i = self.inodes.get(&cur)?;
            names.push(i.rec.name.as_str());
            cur = i.rec.parent;
            if names.len() > defaults::MAX_PATH_DEPTH + 1 {
                return None;
            }
        }
        Some(prefix(&names.into_iter().rev().collect::<Vec<_>>()))
    }

    fn walk(&self, comps: &[&str]) -> Result<u64> {
        let mut cur = ROOT_ID;
        for (i, name) in comps.iter().enumerate() {
            let dir = &self.inodes[&cur];
            if !dir.is_dir() {
                return Err(Error::NotADirectory {
                    path: prefix(&comps[..i]),
                });
            }
            match dir.children.get(*name) {
                Some(c) => cur = *c,
                None => {
                    return Err(Error::NotFound {
                        path: prefix(comps),
                    })
                }
            }
        }
        Ok(cur)
    }

    /// Resolves a path to its inode id and normal form.
    pub fn resolve(&self, path: &str) -> Result<(u64, String)> {
        let (comps, norm) = parse(path)?;
        Ok((self.walk(&comps)?, norm))
    }

    /// Resolves a path that must be a file: its inode id, normal form and
    /// inode.
    pub fn resolve_file(&self, path: &str) -> Result<(u64, String, &Inode)> {
        let (id, norm) = self.resolve(path)?;
        let inode = self
            .inodes
            .get(&id)
            .ok_or_else(|| Error::NotFound { path: norm.clone() })?;
        if inode.is_dir() {
            return Err(Error::IsADirectory { path: norm });
        }
        Ok((id, norm, inode))
    }

    /// Resolves the parent directory of the last component. The error names
    /// the first missing or non-directory ancestor.
    fn resolve_parent(&self, comps: &[&str]) -> Result<u64> {
        let full = prefix(comps);
        let mut cur = ROOT_ID;
        for (i, name) in comps[..comps.len().saturating_sub(1)].iter().enumerate() {
            match self.inodes[&cur].children.get(*name) {
                Some(c) => cur = *c,
                None => {
                    return Err(Error::ParentNotFound {
                        path: full,
                        parent: prefix(&comps[..=i]),
                    })
                }
            }
            if !self.inodes[&cur].is_dir() {
                return Err(Error::NotADirectory {
                    path: prefix(&comps[..=i]),
                });
            }
        }
        Ok(cur)
    }

    /// The status of an inode, reported under `path`.
    pub fn status(&self, id: u64, path: String) -> Option<FileStatus> {
        self.inodes.get(&id).map(|i| status_of(i, path))
    }

    /// The status of a path.
    pub fn get_file_info(&self, path: &str) -> Result<FileStatus> {
        let (id, norm) = self.resolve(path)?;
        Ok(status_of(&self.inodes[&id], norm))
    }

    /// One page of a directory listing, sorted by name: entries after
    /// `start_after`, at most `limit`; and whether more follow.
    pub fn list(
        &self,
        path: &str,
        start_after: &str,
        limit: u32,
    ) -> Result<(Vec<FileStatus>, bool)> {
        let (id, norm) = self.resolve(path)?;
        let dir = &self.inodes[&id];
        if !dir.is_dir() {
            return Ok((vec![status_of(dir, norm)], false));
        }
        let limit = match limit {
            0 => defaults::LIST_PAGE,
            n => n.min(defaults::LIST_PAGE),
        } as usize;
        let range = if start_after.is_empty() {
            dir.children.range::<str, _>(..)
        } else {
            dir.children.range::<str, _>((
                std::ops::Bound::Excluded(start_after),
                std::ops::Bound::Unbounded,
            ))
        };
        let mut out = Vec::with_capacity(limit.min(dir.children.len()));
        let mut has_more = false;
        for (name, child) in range {
            if out.len() == limit {
                has_more = true;
                break;
            }
            if let Some(c) = self.inodes.get(child) {
                out.push(status_of(c, dpath::join(&norm, name)));
            }
        }
        Ok((out, has_more))
    }

    /// Totals of the subtree at `path`.
    pub fn content_summary(&self, path: &str) -> Result<Summary> {
        let (id, _) = self.resolve(path)?;
        let mut s = Summary::default();
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            let Some(i) = self.inodes.get(&id) else {
                continue;
            };
            if i.is_dir() {
                s.directories += 1;
                stack.extend(i.children.values().copied());
            } else {
                let len = i.length();
                s.files += 1;
                s.length = s.length.saturating_add(len);
                s.space_consumed = s
                    .space_consumed
                    .saturating_add(len.saturating_mul(u64::from(i.rec.replication)));
            }
        }
        Ok(s)
    }

    /// Up to `limit` inodes of the subtree at `root` (whose path is
    /// `root_path`) in pre-order with children by name, each with its path,
    /// starting after the inode at `after` (a path below `root_path`, as a
    /// previous page ended; `None` starts with `root` itself). `after` need
    /// not exist any more: the walk goes on with what sorts after it. The
    /// flag tells whether inodes remain.
    pub fn subtree_page(
        &self,
        root: u64,
        root_path: &str,
        after: Option<&str>,
        limit: usize,
    ) -> (Vec<(u64, String)>, bool) {
        let join = |dir: &str, name: &str| {
            if dir == "/" {
                format!("/{name}")
            } else {
                format!("{dir}/{name}")
            }
        };
        // A stack of (id, path), popped in visiting order.
        let mut stack: Vec<(u64, String)> = Vec::new();
        match after {
            None => stack.push((root, root_path.to_string())),
            Some(after) => {
                // The caller checked that `after` lies under `root_path`.
                let rel = after
                    .strip_prefix(root_path)
                    .unwrap_or("")
                    .trim_start_matches('/');
                let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
                let mut dir = Some(root);
                let mut dir_path = root_path.to_string();
                for comp in &comps {
                    let Some(d) = dir.and_then(|d| self.inodes.get(&d)) else {
                        break;
                    };
                    // The siblings after `comp` come once its subtree is done.
                    let later: Vec<(u64, String)> = d
                        .children
                        .range::<str, _>((
                            std::ops::Bound::Excluded(*comp),
                            std::ops::Bound::Unbounded,
                        ))
                        .map(|(name, id)| (*id, join(&dir_path, name)))
                        .collect();
                    stack.extend(later.into_iter().rev());
                    dir = d.children.get(*comp).copied();
                    dir_path = join(&dir_path, comp);
                }
                // The children of `after` itself (pre-order visits them next).
                if let Some(d) = dir.and_then(|d| self.inodes.get(&d)) {
                    stack.extend(
                        d.children
                            .iter()
                            .rev()
                            .map(|(name, id)| (*id, join(&dir_path, name))),
                    );
                }
            }
        }
        let mut out = Vec::new();
        while let Some((id, path)) = stack.pop() {
            if out.len() >= limit {
                stack.push((id, path));
                break;
            }
            if let Some(i) = self.inodes.get(&id) {
                stack.extend(
                    i.children
                        .iter()
                        .rev()
                        .map(|(name, c)| (*c, join(&path, name))),
                );
                out.push((id, path));
            }
        }
        (out, !stack.is_empty())
    }

    /// Ids of every inode under (and including) `id`.
    pub fn subtree(&self, id: u64) -> Vec<u64> {
        let mut out = Vec::new();
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            if let Some(i) = self.inodes.get(&id) {
                out.push(id);
                stack.extend(i.children.values().rev().copied());
            }
        }
        out
    }
}

fn or_root(s: &str) -> String {
    if s.is_empty() {
        "root".to_string()
    } else {
        s.to_string()
    }
}

fn status_of(i: &Inode, path: String) -> FileStatus {
    let r = &i.rec;
    FileStatus {
        path,
        file_type: if r.is_dir {
            FileType::Dir
        } else {
            FileType::File
        } as i32,
        length: if r.is_dir { 0 } else { i.length() },
        replication: r.replication,
        block_size: r.block_size,
        owner: r.owner.clone(),
        group: r.group.clone(),
        mode: r.mode,
        mtime_ms: r.mtime_ms,
        atime_ms: r.atime_ms,
        inode: r.id,
        under_construction: i.under_construction(),
        children: i.children.len() as u64,
    }
}

#[cfg(test)]
mod tests;
