//! Mutation planning for the namespace.
//!
//! Each `plan_*` method turns a request into a [`Batch`] of [`Change`]s for
//! the edit log, validating it against the current tree without touching the
//! tree. The tree changes only when the committed batch is applied with
//! [`Namespace::apply`].

use dfs_proto::defaults;
use dfs_proto::image::InodeRecord;

use super::{
    or_root, parse, prefix, AttrChange, CreateArgs, Created, Namespace, NewAttrs, RemovedFile,
    MODE_BITS,
};
use crate::error::{Error, Result};
use crate::store::{Batch, Change, Counters, ROOT_ID};

impl Namespace {
    fn touch(&self, batch: &mut Batch, dir: u64, now: i64) {
        if let Some(d) = self.inodes.get(&dir) {
            if let Some(Change::PutInode(r)) = batch
                .iter_mut()
                .rev()
                .find(|c| matches!(c, Change::PutInode(r) if r.id == dir))
            {
                r.mtime_ms = now;
                return;
            }
            let mut rec = d.rec.clone();
            rec.mtime_ms = now;
            batch.push(Change::PutInode(rec));
        }
    }

    /// The group a new inode below `dirs` takes when none is given: the
    /// nearest existing directory's (as HDFS, and BSD).
    fn inherited_group(&self, dirs: &[&str]) -> String {
        let mut cur = ROOT_ID;
        for name in dirs {
            match self.inodes[&cur].children.get(*name) {
                Some(c) if self.inodes[c].is_dir() => cur = *c,
                _ => break,
            }
        }
        self.inodes[&cur].rec.group.clone()
    }

    /// `attrs` with the inherited group when they name none.
    fn with_group(&self, attrs: &NewAttrs, dirs: &[&str]) -> NewAttrs {
        let mut attrs = attrs.clone();
        if attrs.group.is_empty() {
            attrs.group = self.inherited_group(dirs);
        }
        attrs
    }

    fn check_attrs(attrs: &NewAttrs) -> Result<()> {
        check_principal("owner", &attrs.owner)?;
        check_principal("group", &attrs.group)
    }

    fn new_dir(
        &self,
        c: &mut Counters,
        parent: u64,
        name: &str,
        attrs: &NewAttrs,
        now: i64,
    ) -> InodeRecord {
        let id = c.next_inode;
        c.next_inode += 1;
        InodeRecord {
            id,
            parent,
            name: name.to_string(),
            is_dir: true,
            mode: if attrs.mode == 0 {
                0o755
            } else {
                attrs.mode & MODE_BITS
            },
            owner: or_root(&attrs.owner),
            group: or_root(&attrs.group),
            mtime_ms: now,
            atime_ms: now,
            ..Default::default()
        }
    }

    /// Creates every missing directory of `comps` (all of them must be
    /// directories where they exist) and returns the last one's id.
    fn plan_dirs(
        &self,
        comps: &[&str],
        attrs: &NewAttrs,
        c: &mut Counters,
        batch: &mut Batch,
        now: i64,
    ) -> Result<u64> {
        let mut cur = ROOT_ID;
        let mut existing = true;
        for (i, name) in comps.iter().enumerate() {
            if existing {
                match self.inodes[&cur].children.get(*name) {
                    Some(child) => {
                        if !self.inodes[child].is_dir() {
                            return Err(Error::NotADirectory {
                                path: prefix(&comps[..=i]),
                            });
                        }
                        cur = *child;
                        continue;
                    }
                    None => {
                        existing = false;
                        self.touch(batch, cur, now);
                    }
                }
            }
            let rec = self.new_dir(c, cur, name, attrs, now);
            cur = add_child(batch, cur, name, rec);
        }
        Ok(cur)
    }

    /// Plans `mkdir` (`parents` = `mkdir -p`). Returns the directory's id
    /// and normal path.
    pub fn plan_mkdirs(
        &self,
        path: &str,
        parents: bool,
        attrs: &NewAttrs,
        now: i64,
    ) -> Result<(Batch, u64, String)> {
        let (comps, norm) = parse(path)?;
        Self::check_attrs(attrs)?;
        let attrs = &self.with_group(attrs, &comps);
        let mut c = self.counters;
        let mut batch = Batch::new();
        match self.walk(&comps) {
            Ok(id) if self.inodes[&id].is_dir() => {
                return if parents {
                    Ok((batch, id, norm))
                } else {
                    Err(Error::AlreadyExists { path: norm })
                };
            }
            Ok(_) => return Err(Error::AlreadyExists { path: norm }),
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let id = if parents {
            self.plan_dirs(&comps, attrs, &mut c, &mut batch, now)?
        } else {
            let parent = self.resolve_parent(&comps)?;
            let name = comps.last().copied().unwrap_or_default();
            let rec = self.new_dir(&mut c, parent, name, attrs, now);
            self.touch(&mut batch, parent, now);
            add_child(&mut batch, parent, name, rec)
        };
        batch.push(Change::Counters(c));
        Ok((batch, id, norm))
    }

    fn removed_file(&self, id: u64) -> RemovedFile {
        let rec = &self.inodes[&id].rec;
        RemovedFile {
            id,
            blocks: rec.blocks.clone(),
            pipeline: rec.pipeline.clone(),
            lease_holder: rec.lease_holder.clone(),
        }
    }

    /// Plans the creation of a file under construction leased to
    /// `args.client_name`.
    pub fn plan_create(&self, args: &CreateArgs, now: i64) -> Result<(Batch, Created)> {
        let (comps, norm) = parse(&args.path)?;
        if comps.is_empty() {
            return Err(Error::IsADirectory { path: norm });
        }
        Self::check_attrs(&args.attrs)?;
        if args.client_name.is_empty() || args.client_name.len() > 1024 {
            return Err(Error::invalid(format!(
                "create {norm}: client_name is empty"
            )));
        }
        let replication = match args.replication {
            0 => self.default_replication,
            r if r > defaults::MAX_REPLICATION => {
                return Err(Error::invalid(format!(
                    "create {norm}: replication {r} is out of range 1..={}",
                    defaults::MAX_REPLICATION
                )))
            }
            r => r,
        };
        let block_size = match args.block_size {
            0 => self.default_block_size,
            b => {
                check_block_size(b).map_err(|m| Error::invalid(format!("create {norm}: {m}")))?;
                b
            }
        };
        let mut c = self.counters;
        let mut batch = Batch::new();
        let name = comps[comps.len() - 1];
        let attrs = self.with_group(&args.attrs, &comps[..comps.len() - 1]);
        let parent = if args.create_parents {
            // Missing parents belong to the file's owner, as HDFS.
            let dirs = NewAttrs {
                owner: attrs.owner.clone(),
                group: attrs.group.clone(),
                mode: 0,
            };
            self.plan_dirs(&comps[..comps.len() - 1], &dirs, &mut c, &mut batch, now)?
        } else {
            self.resolve_parent(&comps)?
        };
        let mut replaced = None;
        let existing = self
            .inodes
            .get(&parent)
            .and_then(|p| p.children.get(name))
            .copied();
        if let Some(old) = existing {
            let o = &self.inodes[&old];
            if !args.overwrite {
                return Err(Error::AlreadyExists { path: norm });
            }
            if o.is_dir() {
                return Err(Error::IsADirectory { path: norm });
            }
            let holder = &o.rec.lease_holder;
            if o.under_construction()
                && *holder != args.client_name
                && args.lapsed_holder.as_ref() != Some(holder)
            {
                return Err(Error::LeaseHeld {
                    path: norm,
                    holder: o.rec.lease_holder.clone(),
                });
            }
            replaced = Some(self.removed_file(old));
            batch.push(Change::RemoveInode(old));
        }
        let id = c.next_inode;
        c.next_inode += 1;
        let rec = InodeRecord {
            id,
            parent,
            name: name.to_string(),
            is_dir: false,
            mode: if args.attrs.mode == 0 {
                0o644
            } else {
                args.attrs.mode & MODE_BITS
            },
            owner: or_root(&attrs.owner),
            group: or_root(&attrs.group),
            mtime_ms: now,
            atime_ms: now,
            replication,
            block_size,
            blocks: vec![],
            lease_holder: args.client_name.clone(),
            pipeline: vec![],
            mtime_set: false,
        };
        self.touch(&mut batch, parent, now);
        add_child(&mut batch, parent, name, rec);
        batch.push(Change::Counters(c));
        Ok((
            batch,
            Created {
                id,
                path: norm,
                replaced,
            },
        ))
    }

    fn plan_remove_subtree(&self, id: u64, batch: &mut Batch, removed: &mut Vec<RemovedFile>) {
        for i in self.subtree(id) {
            let inode = &self.inodes[&i];
            if !inode.is_dir() {
                removed.push(self.removed_file(i));
            }
            if i != id {
                batch.push(Change::RemoveDirent {
                    parent: inode.rec.parent,
                    name: inode.rec.name.clone(),
                });
            }
            batch.push(Change::RemoveInode(i));
        }
    }

    /// Plans a delete; returns the files removed.
    pub fn plan_delete(
        &self,
        path: &str,
        recursive: bool,
        now: i64,
    ) -> Result<(Batch, Vec<RemovedFile>)> {
        let (id, norm) = self.resolve(path)?;
        if id == ROOT_ID {
            return Err(Error::invalid("cannot delete the root directory /"));
        }
        let inode = &self.inodes[&id];
        if inode.is_dir() && !inode.children.is_empty() && !recursive {
            return Err(Error::DirectoryNotEmpty { path: norm });
        }
        let mut batch = Batch::new();
        let mut removed = Vec::new();
        let parent = inode.rec.parent;
        batch.push(Change::RemoveDirent {
            parent,
            name: inode.rec.name.clone(),
        });
        self.plan_remove_subtree(id, &mut batch, &mut removed);
        self.touch(&mut batch, parent, now);
        Ok((batch, removed))
    }

    /// Plans a POSIX rename: `dst` is the new full name. An existing file at
    /// `dst` is replaced only with `overwrite`; an existing empty directory
    /// is replaced by a directory with `overwrite`. Returns the replaced file.
    pub fn plan_rename(
        &self,
        src: &str,
        dst: &str,
        overwrite: bool,
        now: i64,
    ) -> Result<(Batch, Vec<RemovedFile>)> {
        let (src_id, src_norm) = self.resolve(src)?;
        let (dst_comps, dst_norm) = parse(dst)?;
        if src_id == ROOT_ID {
            return Err(Error::invalid("cannot rename the root directory /"));
        }
        if dst_comps.is_empty() {
            return Err(Error::invalid(format!(
                "cannot rename {src_norm} onto the root directory /"
            )));
        }
        if src_norm == dst_norm {
            return Ok((Batch::new(), Vec::new()));
        }
        let dst_parent = self.resolve_parent(&dst_comps)?;
        // Refuse moving a directory into itself or below itself.
        let mut a = dst_parent;
        loop {
            if a == src_id {
                return Err(Error::invalid(format!(
                    "cannot move {src_norm} into itself ({dst_norm})"
                )));
            }
            if a == ROOT_ID {
                break;
            }
            a = self.inodes[&a].rec.parent;
        }
        let src_inode = &self.inodes[&src_id];
        if src_inode.is_dir() {
            self.check_moved_paths(src_id, &src_norm, dst_comps.len(), &dst_norm)?;
        }
        let dst_name = dst_comps[dst_comps.len() - 1];
        let mut batch = Batch::new();
        let mut removed = Vec::new();
        if let Some(&old) = self.inodes[&dst_parent].children.get(dst_name) {
            let o = &self.inodes[&old];
            match (src_inode.is_dir(), o.is_dir()) {
                (false, true) => return Err(Error::IsADirectory { path: dst_norm }),
                (true, false) => return Err(Error::NotADirectory { path: dst_norm }),
                _ if !overwrite => return Err(Error::AlreadyExists { path: dst_norm }),
                (true, true) if !o.children.is_empty() => {
                    return Err(Error::DirectoryNotEmpty { path: dst_norm })
                }
                _ => {
                    self.plan_remove_subtree(old, &mut batch, &mut removed);
                }
            }
        }
        let src_parent = src_inode.rec.parent;
        batch.push(Change::RemoveDirent {
            parent: src_parent,
            name: src_inode.rec.name.clone(),
        });
        batch.push(Change::PutDirent {
            parent: dst_parent,
            name: dst_name.to_string(),
            child: src_id,
        });
        let mut rec = src_inode.rec.clone();
        rec.parent = dst_parent;
        rec.name = dst_name.to_string();
        batch.push(Change::PutInode(rec));
        self.touch(&mut batch, src_parent, now);
        self.touch(&mut batch, dst_parent, now);
        Ok((batch, removed))
    }

    /// Refuses a rename of directory `src` to `dst` that would put a path
    /// below it deeper than [`defaults::MAX_PATH_DEPTH`] components or
    /// longer than [`defaults::MAX_PATH_LEN`] bytes: such a path could no
    /// longer be named (HDFS checks the destination's length too). Walks
    /// the subtree only when the move makes its paths deeper or longer,
    /// and stops at the first path over a limit.
    fn check_moved_paths(
        &self,
        src: u64,
        src_norm: &str,
        dst_depth: usize,
        dst_norm: &str,
    ) -> Result<()> {
        let src_depth = src_norm.split('/').filter(|c| !c.is_empty()).count();
        if dst_depth <= src_depth && dst_norm.len() <= src_norm.len() {
            return Ok(());
        }
        let mut stack = vec![(src, dst_depth, dst_norm.len())];
        while let Some((id, depth, len)) = stack.pop() {
            if depth > defaults::MAX_PATH_DEPTH || len > defaults::MAX_PATH_LEN {
                return Err(Error::PathTooLong {
                    message: format!(
                    "cannot move {src_norm} to {dst_norm}: a path below it would be deeper than \
                     {} components or longer than {} bytes",
                    defaults::MAX_PATH_DEPTH,
                    defaults::MAX_PATH_LEN
                ),
                });
            }
            if let Some(inode) = self.inodes.get(&id) {
                for (name, child) in &inode.children {
                    stack.push((*child, depth + 1, len + 1 + name.len()));
                }
            }
        }
        Ok(())
    }

    /// Plans a change of attributes (chmod, chown, utimes).
    pub fn plan_set_attr(
        &self,
        path: &str,
        change: AttrChange,
        expected_inode: Option<u64>,
    ) -> Result<(Batch, u64, String)> {
        let (id, norm) = self.resolve(path)?;
        if expected_inode.is_some_and(|want| want != id) {
            // The file asked for is no longer at this path.
            return Err(Error::NotFound { path: norm });
        }
        change.check(&norm)?;
        let mut rec = self.inodes[&id].rec.clone();
        change.apply(&mut rec);
        Ok((vec![Change::PutInode(rec)], id, norm))
    }

    /// Plans a change of a file's replication.
    pub fn plan_set_replication(&self, path: &str, replication: u32) -> Result<(Batch, u64)> {
        let (id, norm) = self.resolve(path)?;
        if replication == 0 || replication > defaults::MAX_REPLICATION {
            return Err(Error::invalid(format!(
                "setrep {norm}: replication {replication} is out of range 1..={}",
                defaults::MAX_REPLICATION
            )));
        }
        let inode = &self.inodes[&id];
        if inode.is_dir() {
            return Err(Error::IsADirectory { path: norm });
        }
        let mut rec = inode.rec.clone();
        rec.replication = replication;
        Ok((vec![Change::PutInode(rec)], id))
    }
}

/// Adds a new inode `rec` under `parent` as `name` (its entry, then its
/// record) and returns its id.
fn add_child(batch: &mut Batch, parent: u64, name: &str, rec: InodeRecord) -> u64 {
    let id = rec.id;
    batch.push(Change::PutDirent {
        parent,
        name: name.to_string(),
        child: id,
    });
    batch.push(Change::PutInode(rec));
    id
}

/// Checks an owner or group name (empty allowed: the default).
pub fn check_principal(what: &str, name: &str) -> Result<()> {
    dfs_proto::principal::check_principal(what, name, true).map_err(Error::invalid)
}

/// Checks a block size: a multiple of the checksum chunk, at least the minimum.
pub fn check_block_size(b: u64) -> std::result::Result<(), String> {
    if b < defaults::MIN_BLOCK_SIZE || b % defaults::BYTES_PER_CHECKSUM as u64 != 0 {
        return Err(format!(
            "block size {b} must be a multiple of {} and at least {}",
            defaults::BYTES_PER_CHECKSUM,
            defaults::MIN_BLOCK_SIZE
        ));
    }
    Ok(())
}
