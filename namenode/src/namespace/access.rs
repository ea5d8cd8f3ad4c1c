//! Permission checks on a path, as HDFS's `FSPermissionChecker`: execute
//! on every directory passed through, then what the operation needs of the
//! nearest existing ancestor, the parent, the inode itself or every
//! directory below it, ownership, and the sticky bit.

use crate::error::{Error, Result};
use crate::permission::{mode_string, shown, Access, Caller};
use crate::store::ROOT_ID;

use super::{parse, Inode, Namespace};

/// What an operation needs of a path besides passing through its
/// directories (execute on each existing ancestor).
#[derive(Debug, Clone, Copy, Default)]
pub struct Need {
    /// Of the nearest existing ancestor, when the inode does not exist
    /// (creating it and any missing parents: mkdir -p, create).
    pub ancestor: Option<Access>,
    /// Of the parent directory, if it exists (create, delete, rename).
    pub parent: Option<Access>,
    /// Of the inode itself, if it exists.
    pub target: Option<Access>,
    /// Of every directory below and including the inode, if it exists
    /// (deleting or summing a subtree).
    pub sub: Option<Access>,
    /// `sub` skips empty directories (a delete may remove an empty
    /// directory it cannot write, as HDFS).
    pub sub_skips_empty: bool,
    /// In a sticky directory, only the owner of the entry or of the
    /// directory may remove or rename the entry.
    pub sticky: bool,
}

impl Need {
    /// Only `access` of the inode itself.
    pub fn target(access: Access) -> Need {
        Need {
            target: Some(access),
            ..Need::default()
        }
    }

    /// Only `access` of every directory of the subtree.
    pub fn sub(access: Access) -> Need {
        Need {
            sub: Some(access),
            ..Need::default()
        }
    }
}

impl Namespace {
    /// Fails with a permission error unless `caller` may do what `need`
    /// says on `path`. A path that does not resolve passes the parts that
    /// do not exist: the operation itself then says what is missing.
    pub fn check(&self, caller: &Caller, path: &str, need: &Need) -> Result<()> {
        if caller.superuser {
            return Ok(());
        }
        let (comps, _) = parse(path)?;
        // The existing inodes along the path, the root first.
        let mut chain = vec![ROOT_ID];
        for name in &comps {
            let cur = &self.inodes[chain.last().unwrap_or(&ROOT_ID)];
            match cur.children.get(*name) {
                Some(c) if cur.is_dir() => chain.push(*c),
                _ => break,
            }
        }
        let exists = chain.len() == comps.len() + 1;
        let ancestors = if exists {
            &chain[..chain.len() - 1]
        } else {
            &chain[..]
        };
        for &id in ancestors {
            if self.inodes[&id].is_dir() {
                self.need(caller, id, Access::EXECUTE)?;
            }
        }
        // A file where a directory should be is the operation's to say.
        let is_dir = |id: u64| self.inodes[&id].is_dir();
        if let (Some(a), Some(&id), false) = (need.ancestor, ancestors.last(), exists) {
            if is_dir(id) {
                self.need(caller, id, a)?;
            }
        }
        let parent = (!comps.is_empty() && chain.len() >= comps.len())
            .then(|| chain[comps.len() - 1])
            .filter(|&p| is_dir(p));
        if let (Some(a), Some(id)) = (need.parent, parent) {
            self.need(caller, id, a)?;
        }
        if !exists {
            return Ok(());
        }
        let id = chain[comps.len()];
        if let Some(a) = need.target {
            self.need(caller, id, a)?;
        }
        if let Some(a) = need.sub {
            for d in self.subtree(id) {
                let i = &self.inodes[&d];
                if i.is_dir() && !(need.sub_skips_empty && i.children.is_empty()) {
                    self.need(caller, d, a)?;
                }
            }
        }
        if let (true, Some(p)) = (need.sticky, parent) {
            self.need_sticky(caller, p, id)?;
        }
        Ok(())
    }

    /// Whether `caller` has `access` to inode `id` itself (its directories
    /// not looked at).
    pub fn allows(&self, caller: &Caller, id: u64, access: Access) -> bool {
        caller.superuser || (self.inodes.contains_key(&id) && self.need(caller, id, access).is_ok())
    }

    /// Fails unless `caller` owns inode `id` (or is the superuser).
    pub fn check_owner(&self, caller: &Caller, id: u64) -> Result<()> {
        if caller.superuser {
            return Ok(());
        }
        self.need_owner(caller, id)
    }

    fn need(&self, caller: &Caller, id: u64, access: Access) -> Result<()> {
        let i = &self.inodes[&id];
        let mode = i.rec.mode;
        let bits = if caller.user == i.rec.owner {
            mode >> 6
        } else if caller.is_member(&i.rec.group) {
            mode >> 3
        } else {
            mode
        } & 7;
        if access.allowed_by(bits) {
            return Ok(());
        }
        Err(Error::PermissionDenied {
            message: format!(
                "Permission denied: user={}, access={}, inode={}",
                shown(&caller.user),
                access.name(),
                self.described(id, i)
            ),
        })
    }

    fn need_owner(&self, caller: &Caller, id: u64) -> Result<()> {
        let i = &self.inodes[&id];
        if caller.user == i.rec.owner {
            return Ok(());
        }
        Err(Error::PermissionDenied {
            message: format!(
                "Permission denied: user={} is not the owner of inode={}",
                shown(&caller.user),
                self.described(id, i)
            ),
        })
    }

    fn need_sticky(&self, caller: &Caller, parent: u64, id: u64) -> Result<()> {
        let p = &self.inodes[&parent];
        let i = &self.inodes[&id];
        if p.rec.mode & 0o1000 == 0 || caller.user == p.rec.owner || caller.user == i.rec.owner {
            return Ok(());
        }
        Err(Error::PermissionDenied {
            message: format!(
                "Permission denied by sticky bit: user={}, path={}, parent={}",
                shown(&caller.user),
                self.described(id, i),
                self.described(parent, p)
            ),
        })
    }

    /// `"/path":owner:group:drwxr-xr-x`, as HDFS names an inode.
    fn described(&self, id: u64, i: &Inode) -> String {
        format!(
            "\"{}\":{}:{}:{}",
            self.path_of(id).unwrap_or_else(|| format!("inode {id}")),
            i.rec.owner,
            i.rec.group,
            mode_string(i.is_dir(), i.rec.mode)
        )
    }
}
