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

use crate::error::{Error, Result};
use crate::store::{Change, Counters, Image, ROOT_ID};

mod access;
mod attrs;
mod plan;
mod queries;

pub use access::Need;

use attrs::or_root;
pub use attrs::{stamp_mtime, AttrChange, NewAttrs, MODE_BITS};

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
    /// With `overwrite`, the lease holder whose file being written may be
    /// replaced all the same: its lease is past the soft limit (the writer
    /// is gone). (HDFS's overwrite replaces such a file whatever its
    /// lease; dfs refuses while the writer may be alive.)
    pub lapsed_holder: Option<String>,
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
                Change::Call(_) => {}
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

    /// Turns an inode path (`/.reserved/.inodes/ID[/NAME...]`, see
    /// [`dpath::INODES_DIR`]) into the inode's current path; any other
    /// path is returned as is. Anything else under `/.reserved` is
    /// refused: that name is not for files.
    pub fn expand<'p>(&self, path: &'p str) -> Result<std::borrow::Cow<'p, str>> {
        use std::borrow::Cow;
        if !path.contains(".reserved") {
            return Ok(Cow::Borrowed(path));
        }
        // On the normal form: `//.reserved` is `/.reserved` too.
        let (comps, norm) = parse(path)?;
        if comps.first() != Some(&".reserved") {
            return Ok(Cow::Borrowed(path));
        }
        let path = norm.as_str();
        let rest = path
            .strip_prefix(dpath::INODES_DIR)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{path}: {} is reserved (only inode paths {}/ID live there)",
                    dpath::RESERVED_DIR,
                    dpath::INODES_DIR
                ))
            })?;
        let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
        // Digits only, as printed: not `+7` or `007`.
        let id: u64 = id
            .parse()
            .ok()
            .filter(|n: &u64| n.to_string() == id)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{path}: '{id}' is not an inode number ({}/ID)",
                    dpath::INODES_DIR
                ))
            })?;
        let base = self.path_of(id).ok_or_else(|| Error::NotFound {
            path: format!("{path} (inode {id} no longer exists)"),
        })?;
        Ok(Cow::Owned(match (tail, base.as_str()) {
            ("", _) => base,
            (t, "/") => format!("/{t}"),
            (t, b) => format!("{b}/{t}"),
        }))
    }

    /// Refuses a new entry at or under `/.reserved` (an expanded inode
    /// path may name it): that name belongs to inode paths, so whatever
    /// were created there could not be named again. One that exists (made
    /// before inode paths were) can still be reached, renamed or removed
    /// through its inode path.
    pub fn check_creatable(&self, path: &str) -> Result<()> {
        let (comps, norm) = parse(path)?;
        if comps.first() == Some(&".reserved") {
            return Err(Error::invalid(format!(
                "{norm}: {} is reserved for inode paths; nothing can be created there",
                dpath::RESERVED_DIR
            )));
        }
        Ok(())
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

    /// Resolves the file a writer names: by its inode id when it gives one
    /// (so a rename of the file or of a directory above it, by another
    /// client, does not lose the writer, as HDFS's fileId), else by path.
    /// Returns the id, the file's current path and its inode.
    pub fn resolve_written(&self, path: &str, file_id: u64) -> Result<(u64, String, &Inode)> {
        if file_id == 0 {
            return self.resolve_file(path);
        }
        let gone = || Error::NotFound {
            path: format!(
                "{path} (inode {file_id}: deleted or replaced while it was being written)"
            ),
        };
        let inode = self.inodes.get(&file_id).ok_or_else(gone)?;
        let current = self.path_of(file_id).ok_or_else(gone)?;
        if inode.is_dir() {
            return Err(Error::IsADirectory { path: current });
        }
        Ok((file_id, current, inode))
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
}

#[cfg(test)]
mod tests;
