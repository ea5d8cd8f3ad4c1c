//! File attributes: a namenode `FileStatus` as the kernel's `FileAttr`.
//!
//! Owners and groups are stored in the namespace as strings. Files made
//! through the mount store the numeric uid/gid (`"1000"`), which map back
//! exactly; names set by other clients (`"alice"`) are resolved through
//! `/etc/passwd` and `/etc/group`, and unknown names show as `nobody`.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dfs_client::{FileStatus, FileType as DfsFileType};
use fuser::{FileAttr, FileType, INodeNo};

/// uid/gid shown for owners that are neither numeric nor known locally.
pub const NOBODY: u32 = 65534;

/// `st_blksize`: the I/O size tools like `cp` pick for their buffers.
pub const IO_BLOCK_SIZE: u32 = 1024 * 1024;

/// Resolves stored owner and group strings to numeric ids.
#[derive(Debug, Default)]
pub struct Owners {
    users: HashMap<String, u32>,
    groups: HashMap<String, u32>,
}

impl Owners {
    /// Reads the local user and group databases (missing files mean no names).
    pub fn load() -> Owners {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        Owners {
            users: parse_id_file(&read("/etc/passwd")),
            groups: parse_id_file(&read("/etc/group")),
        }
    }

    /// The uid of a stored owner.
    pub fn uid(&self, owner: &str) -> u32 {
        resolve(owner, &self.users)
    }

    /// The gid of a stored group.
    pub fn gid(&self, group: &str) -> u32 {
        resolve(group, &self.groups)
    }
}

fn resolve(name: &str, names: &HashMap<String, u32>) -> u32 {
    name.parse::<u32>()
        .ok()
        .or_else(|| names.get(name).copied())
        .unwrap_or(NOBODY)
}

/// Parses `name:x:id:...` lines (passwd and group share the first three fields).
fn parse_id_file(text: &str) -> HashMap<String, u32> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let id = fields.nth(1)?.parse().ok()?;
            Some((name.to_string(), id))
        })
        .collect()
}

/// Milliseconds since the epoch as a `SystemTime` (negative clamps to the epoch).
pub fn time_from_ms(ms: i64) -> SystemTime {
    u64::try_from(ms).map_or(UNIX_EPOCH, |ms| UNIX_EPOCH + Duration::from_millis(ms))
}

/// A `SystemTime` as milliseconds since the epoch (before it: negative).
pub fn ms_from_time(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// Now, in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    ms_from_time(SystemTime::now())
}

/// The kernel's view of `status` as inode `ino`.
pub fn file_attr(ino: u64, status: &FileStatus, owners: &Owners) -> FileAttr {
    let (kind, nlink, size) = match status.file_type {
        DfsFileType::Dir => (FileType::Directory, 2, 0),
        DfsFileType::File => (FileType::RegularFile, 1, status.length),
    };
    let mtime = time_from_ms(status.mtime);
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: time_from_ms(status.atime),
        mtime,
        ctime: mtime,
        crtime: mtime,
        kind,
        perm: (status.mode & 0o7777) as u16,
        nlink,
        uid: owners.uid(&status.owner),
        gid: owners.gid(&status.group),
        rdev: 0,
        blksize: IO_BLOCK_SIZE,
        flags: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(file_type: DfsFileType) -> FileStatus {
        FileStatus {
            path: "/a".into(),
            file_type,
            length: 1025,
            replication: 3,
            block_size: 1 << 20,
            owner: "1000".into(),
            group: "staff".into(),
            mode: 0o100640,
            mtime: 1_700_000_000_123,
            atime: 1_700_000_000_000,
            inode: 42,
            under_construction: false,
        }
    }

    #[test]
    fn owners_numeric_named_and_unknown() {
        let owners = Owners {
            users: parse_id_file(
                "root:x:0:0:root:/root:/bin/sh\nalice:x:1001:1001::/home/alice:/bin/sh\n",
            ),
            groups: parse_id_file("root:x:0:\nstaff:x:50:\n"),
        };
        assert_eq!(owners.uid("1000"), 1000);
        assert_eq!(owners.uid("alice"), 1001);
        assert_eq!(owners.uid("root"), 0);
        assert_eq!(owners.uid("nosuchuser"), NOBODY);
        assert_eq!(owners.gid("staff"), 50);
        assert_eq!(owners.gid(""), NOBODY);
    }

    #[test]
    fn attr_of_file_and_dir() {
        let owners = Owners::default();
        let a = file_attr(7, &status(DfsFileType::File), &owners);
        assert_eq!(a.ino, INodeNo(7));
        assert_eq!(a.kind, FileType::RegularFile);
        assert_eq!(a.size, 1025);
        assert_eq!(a.blocks, 3);
        assert_eq!(a.perm, 0o640);
        assert_eq!(a.uid, 1000);
        assert_eq!(a.gid, NOBODY);
        assert_eq!(ms_from_time(a.mtime), 1_700_000_000_123);
        let d = file_attr(8, &status(DfsFileType::Dir), &owners);
        assert_eq!(d.kind, FileType::Directory);
        assert_eq!(d.size, 0);
        assert_eq!(d.nlink, 2);
    }

    #[test]
    fn times_roundtrip_and_clamp() {
        assert_eq!(ms_from_time(time_from_ms(5)), 5);
        assert_eq!(time_from_ms(-5), UNIX_EPOCH);
        assert_eq!(ms_from_time(UNIX_EPOCH - Duration::from_millis(3)), -3);
    }
}
