//! Read-only questions to the namespace: statuses, listings in pages,
//! subtree totals and walks.

use dfs_proto::defaults;
use dfs_proto::path as dpath;
use dfs_proto::{FileStatus, FileType};

use super::{Inode, Namespace, Summary};
use crate::error::Result;

impl Namespace {
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
