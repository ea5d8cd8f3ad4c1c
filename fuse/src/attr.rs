//! File attributes: a namenode `FileStatus` as the kernel's `FileAttr`.
//!
//! Owners and groups are stored in the namespace as names, which the
//! namenode's permission checks compare with its callers'. Files made
//! through the mount store the local caller's user and group names from
//! `/etc/passwd` and `/etc/group` (the numeric id, `"1000"`, for an id those
//! do not name); stored names are resolved back the same way, numbers map
//! to themselves, and unknown names show as `nobody`.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dfs_client::{FileStatus, FileType as DfsFileType};
use fuser::{FileAttr, FileType, INodeNo};

/// uid/gid shown for owners that are neither numeric nor known locally.
pub const NOBODY: u32 = 65534;

/// `st_blksize`: the I/O size tools like `cp` pick for their buffers.
pub const IO_BLOCK_SIZE: u32 = 1024 * 1024;

/// Resolves stored owner and group strings to numeric ids and back.
#[derive(Debug, Default)]
pub struct Owners {
    users: HashMap<String, u32>,
    groups: HashMap<String, u32>,
    user_names: HashMap<u32, String>,
    group_names: HashMap<u32, String>,
}

impl Owners {
    /// Reads the local user and group databases (missing files mean no names).
    pub fn load() -> Owners {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        Owners::from_files(&read("/etc/passwd"), &read("/etc/group"))
    }

    /// From the texts of a passwd and a group file.
    pub fn from_files(passwd: &str, group: &str) -> Owners {
        let users = parse_id_file(passwd);
        let groups = parse_id_file(group);
        // The first name of an id wins, as getpwuid's.
        let by_id = |names: &HashMap<String, u32>, text: &str| {
            let mut out = HashMap::new();
            for line in text.lines() {
                if let Some(name) = line.split(':').next() {
                    if let Some(&id) = names.get(name) {
                        out.entry(id).or_insert_with(|| name.to_string());
                    }
                }
            }
            out
        };
        Owners {
            user_names: by_id(&users, passwd),
            group_names: by_id(&groups, group),
            users,
            groups,
        }
    }

    /// The name to store for a local uid: its login name, else the number.
    pub fn user_name(&self, uid: u32) -> String {
        self.user_names
            .get(&uid)
            .cloned()
            .unwrap_or_else(|| uid.to_string())
    }

    /// The name to store for a local gid: its group name, else the number.
    pub fn group_name(&self, gid: u32) -> String {
        self.group_names
            .get(&gid)
            .cloned()
            .unwrap_or_else(|| gid.to_string())
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

/// Milliseconds since the epoch as a `SystemTime` (negative: before it, as
/// `touch -d 1969-...` and tarballs of old files store).
pub fn time_from_ms(ms: i64) -> SystemTime {
    let d = Duration::from_millis(ms.unsigned_abs());
    let t = if ms < 0 {
        UNIX_EPOCH.checked_sub(d)
    } else {
        UNIX_EPOCH.checked_add(d)
    };
    t.unwrap_or(UNIX_EPOCH)
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
        let owners = Owners::from_files(
            "root:x:0:0:root:/root:/bin/sh\nalice:x:1001:1001::/home/alice:/bin/sh\n\
             toor:x:0:0::/:/bin/sh\n",
            "root:x:0:\nstaff:x:50:\n",
        );
        assert_eq!(owners.uid("1000"), 1000);
        assert_eq!(owners.uid("alice"), 1001);
        assert_eq!(owners.uid("root"), 0);
        assert_eq!(owners.uid("nosuchuser"), NOBODY);
        assert_eq!(owners.gid("staff"), 50);
        assert_eq!(owners.gid(""), NOBODY);
        // What the mount stores for a local caller: names, the first of an
        // id, else the number.
        assert_eq!(owners.user_name(0), "root");
        assert_eq!(owners.user_name(1001), "alice");
        assert_eq!(owners.user_name(1234), "1234");
        assert_eq!(owners.group_name(50), "staff");
        assert_eq!(owners.group_name(7), "7");
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
    fn times_roundtrip_before_and_after_the_epoch() {
        assert_eq!(ms_from_time(time_from_ms(5)), 5);
        assert_eq!(ms_from_time(time_from_ms(-3_600_250)), -3_600_250);
        assert_eq!(time_from_ms(-5), UNIX_EPOCH - Duration::from_millis(5));
        assert_eq!(ms_from_time(UNIX_EPOCH - Duration::from_millis(3)), -3);
    }
}
