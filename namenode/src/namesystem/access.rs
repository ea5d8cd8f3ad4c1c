//! What the namespace operations need of their caller, beyond the path
//! checks of `Namespace::check`: who owns what a caller creates, what a
//! listing needs, and the rules for changing attributes (HDFS's
//! setPermission, setOwner and setTimes).

use super::State;
use crate::error::{Error, Result};
use crate::namespace::{AttrChange, Need, NewAttrs};
use crate::permission::{Access, Caller};

/// The attributes of a new inode created by `caller`. The superuser
/// gets what it asks for (its own name when it names no owner). Anyone
/// else owns what it creates, as in HDFS, whatever owner it names (a
/// mount passes the local caller's), and gets the group it names only if
/// it belongs to it, else the directory's.
pub(super) fn owned_by(caller: &Caller, mut attrs: NewAttrs) -> Result<NewAttrs> {
    if caller.superuser {
        if attrs.owner.is_empty() {
            attrs.owner = caller.user.clone();
        }
        return Ok(attrs);
    }
    if caller.user.is_empty() {
        return Err(Error::PermissionDenied {
            message: "Permission denied: the call names no user (set DFS_USER), so nothing can be created for it".into(),
        });
    }
    if attrs.owner != caller.user && !attrs.owner.is_empty() {
        tracing::debug!(
            user = %caller.user,
            asked = %attrs.owner,
            "only the superuser creates inodes for others; the caller owns it"
        );
    }
    attrs.owner = caller.user.clone();
    if !attrs.group.is_empty() && !caller.is_member(&attrs.group) {
        attrs.group.clear();
    }
    Ok(attrs)
}

impl State {
    /// A listing of `path` needs read and execute on it when it is a
    /// directory (a file lists as itself).
    pub(super) fn check_listing(&self, caller: &Caller, path: &str) -> Result<()> {
        let is_dir = self
            .ns
            .resolve(path)
            .ok()
            .and_then(|(id, _)| self.ns.inode(id))
            .is_some_and(|i| i.is_dir());
        let need = if is_dir {
            Need::target(Access::READ_EXECUTE)
        } else {
            Need::default()
        };
        self.ns.check(caller, path, &need)
    }

    /// What an attribute change of `path` needs, as HDFS's setPermission,
    /// setOwner and setTimes: the owner changes the mode; only the
    /// superuser gives an inode to another user; the owner changes the
    /// group to one it belongs to; times need the owner or write access.
    /// For a SetAttr, and for the attributes a writer stores with its
    /// close.
    pub(super) fn check_attr_change(
        &self,
        caller: &Caller,
        path: &str,
        change: &AttrChange,
    ) -> Result<()> {
        self.ns.check(caller, path, &Need::default())?;
        if caller.superuser {
            return Ok(());
        }
        let Ok((id, _)) = self.ns.resolve(path) else {
            // The change itself says what is missing.
            return Ok(());
        };
        let owner = self
            .ns
            .inode(id)
            .map(|i| i.rec.owner.clone())
            .unwrap_or_default();
        let user = crate::permission::shown(&caller.user);
        if change.mode.is_some() {
            self.ns.check_owner(caller, id)?;
        }
        if let Some(new_owner) = &change.owner {
            if *new_owner != owner || caller.user != owner {
                return Err(Error::PermissionDenied {
                    message: format!(
                        "Permission denied: user={user} is not the superuser; only the superuser can change the owner of {path}"
                    ),
                });
            }
        }
        if let Some(group) = &change.group {
            self.ns.check_owner(caller, id)?;
            if !caller.is_member(group) {
                return Err(Error::PermissionDenied {
                    message: format!(
                        "Permission denied: user={user} does not belong to group {group}, so cannot give {path} to it"
                    ),
                });
            }
        }
        if (change.mtime_ms.is_some() || change.atime_ms.is_some()) && caller.user != owner {
            self.ns.check(caller, path, &Need::target(Access::WRITE))?;
        }
        Ok(())
    }
}
