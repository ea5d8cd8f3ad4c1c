//! Which mount is at a path, from `/proc/self/mountinfo`, so that the
//! mount only ever unmounts itself.
//!
//! The FUSE library unmounts by path when the session ends. After a lazy
//! unmount (`umount -l`, `fusermount3 -uz`) the session ends only when the
//! last user of the detached mount goes away, and by then another mount
//! may sit at the same path: unmounting by path would take that one down.
//! A mount is told apart by its device number (`0:NN`), unique while it
//! exists.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

/// The device number (`major:minor`) of the mount on top at `path` (an
/// absolute path without symbolic links), if one is.
pub fn device_at(path: &Path) -> Option<String> {
    let table = std::fs::read("/proc/self/mountinfo").ok()?;
    device_in(&table, path)
}

/// [`device_at`] in the text of a mountinfo table: the last entry at
/// `path` is the one on top.
fn device_in(table: &[u8], path: &Path) -> Option<String> {
    table.rsplit(|&b| b == b'\n').find_map(|line| {
        let mut fields = line.split(|&b| b == b' ');
        let device = fields.nth(2)?;
        let mount_point = fields.nth(1)?;
        (unescape(mount_point) == path.as_os_str())
            .then(|| String::from_utf8_lossy(device).into_owned())
    })
}

/// A mountinfo field with its octal escapes (`\040` for a space, ...)
/// decoded.
fn unescape(field: &[u8]) -> OsString {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|d| field[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match octal {
            Some(b) => {
                out.push(b);
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    OsString::from_vec(out)
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    const TABLE: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
60 22 0:41 / /tmp/a\\040b rw,nosuid shared:30 - fuse.dfs dfs rw,user_id=0
61 22 0:42 / /mnt rw shared:31 - tmpfs tmpfs rw
62 61 0:43 / /mnt rw,nosuid shared:32 - fuse.dfs dfs rw,user_id=0
";

    #[test]
    fn the_mount_on_top_at_a_path_is_found_with_escapes_decoded() {
        let t = TABLE.as_bytes();
        assert_eq!(device_in(t, Path::new("/tmp/a b")).as_deref(), Some("0:41"));
        assert_eq!(device_in(t, Path::new("/mnt")).as_deref(), Some("0:43"));
        assert_eq!(device_in(t, Path::new("/")).as_deref(), Some("254:0"));
        assert_eq!(device_in(t, Path::new("/tmp")), None);
        assert_eq!(device_in(b"garbage\n\n1 2\n", Path::new("/")), None);
        assert_eq!(unescape(b"a\\134b\\04"), OsString::from("a\\b\\04"));
        assert_eq!(unescape(b"\\011x").as_bytes(), b"\tx");
    }
}
