//! Attributes of inodes: those a new inode gets ([`NewAttrs`]) and changes
//! to an existing one ([`AttrChange`]), checked before anything changes.

use dfs_proto::image::InodeRecord;

use crate::error::{Error, Result};

/// The mode bits an inode keeps, as HDFS's `FsPermission`: read, write and
/// execute for owner, group and others, and the sticky bit. setuid and
/// setgid are dropped (nothing runs from here as its owner), whoever sets
/// them: `dfs chmod` refuses them, and a `chmod 4755` or a setuid file
/// through the mount (tar, rsync -a) is stored as 0755, so every client
/// shows the same mode.
pub const MODE_BITS: u32 = 0o1777;

/// Who asks for a new inode and with which attributes.
#[derive(Debug, Clone, Default)]
pub struct NewAttrs {
    /// Permission bits (0 = default).
    pub mode: u32,
    /// Owner (empty = `root`).
    pub owner: String,
    /// Group (empty = the nearest existing directory's).
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
    /// is not empty, at most 256 bytes, without control characters or ':'.
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
        self.mode.is_none_or(|m| rec.mode == m & MODE_BITS)
            && self.owner.as_ref().is_none_or(|o| rec.owner == *o)
            && self.group.as_ref().is_none_or(|g| rec.group == *g)
            && self.mtime_ms.is_none_or(|t| rec.mtime_ms == t)
            && self.atime_ms.is_none_or(|t| rec.atime_ms == t)
    }

    /// Sets the attributes given on `rec` (checked with [`check`](Self::check)).
    pub fn apply(self, rec: &mut InodeRecord) {
        if let Some(m) = self.mode {
            rec.mode = m & MODE_BITS;
        }
        if let Some(o) = self.owner {
            rec.owner = o;
        }
        if let Some(g) = self.group {
            rec.group = g;
        }
        if let Some(t) = self.mtime_ms {
            rec.mtime_ms = t;
            // Kept until the file is closed (see `mtime_set`).
            rec.mtime_set = !rec.lease_holder.is_empty();
        }
        if let Some(t) = self.atime_ms {
            rec.atime_ms = t;
        }
    }
}

/// Stamps `now` as the mtime of a file under construction that gets a
/// block or is closed (`closing`, also by lease recovery), unless a client
/// set one while it was written (`mtime_set`, which the close ends).
pub fn stamp_mtime(rec: &mut InodeRecord, now: i64, closing: bool) {
    let set = if closing {
        std::mem::take(&mut rec.mtime_set)
    } else {
        rec.mtime_set
    };
    if !set {
        rec.mtime_ms = now;
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

/// A name, or `root` when empty.
pub(super) fn or_root(s: &str) -> String {
    if s.is_empty() {
        "root".to_string()
    } else {
        s.to_string()
    }
}
