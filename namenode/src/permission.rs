//! Who calls, and what they may do: HDFS's permission model. Every inode
//! has an owner, a group and POSIX-like mode bits; a caller is a user name
//! (trusted as the client names it, as HDFS's simple authentication) with
//! the groups the namenode's host knows for it. The superuser (the user
//! the namenode runs as, and members of the supergroup) may do anything.
//! The checks themselves walk the namespace (`Namespace::check`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::Error;

/// How long a user's groups are remembered (HDFS:
/// `hadoop.security.groups.cache.secs`, 300 s).
const GROUPS_TTL: Duration = Duration::from_secs(300);

/// The user a call acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user name the client gave (empty if it gave none).
    pub user: String,
    /// Its groups, primary first.
    pub groups: Arc<Vec<String>>,
    /// The superuser passes every check.
    pub superuser: bool,
}

impl Caller {
    /// A caller that passes every check: the namenode's own work, and
    /// every caller when permissions are off.
    pub fn superuser() -> Caller {
        Caller {
            user: String::new(),
            groups: Arc::new(Vec::new()),
            superuser: true,
        }
    }

    /// Whether the caller belongs to `group`.
    pub fn is_member(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// Fails unless the caller is the superuser (administration: safe mode,
    /// decommission, the balancer, the datanode report).
    pub fn require_superuser(&self, what: &str) -> Result<(), Error> {
        if self.superuser {
            return Ok(());
        }
        Err(Error::PermissionDenied {
            message: format!(
                "Access denied for user {}. Superuser privilege is required to {what}",
                shown(&self.user)
            ),
        })
    }
}

/// A user name as messages show it: on one line, whatever it contains.
pub(crate) fn shown(user: &str) -> String {
    if user.is_empty() {
        "(none)".to_string()
    } else {
        user.escape_debug().to_string()
    }
}

/// Access asked of an inode: a set of the read, write and execute bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access(u8);

impl Access {
    /// Read a file, list a directory.
    pub const READ: Access = Access(4);
    /// Write a file, change a directory's entries.
    pub const WRITE: Access = Access(2);
    /// Pass through a directory.
    pub const EXECUTE: Access = Access(1);
    /// List a directory's entries and look into them.
    pub const READ_EXECUTE: Access = Access(5);
    /// Every bit (deleting a subtree).
    pub const ALL: Access = Access(7);

    /// Whether the `rwx` bits `granted` (0..=7) allow this access.
    pub fn allowed_by(self, granted: u32) -> bool {
        u32::from(self.0) & !granted == 0
    }

    /// HDFS's name of the access, for messages.
    pub fn name(self) -> &'static str {
        match self.0 {
            4 => "READ",
            2 => "WRITE",
            1 => "EXECUTE",
            5 => "READ_EXECUTE",
            6 => "READ_WRITE",
            3 => "WRITE_EXECUTE",
            7 => "ALL",
            _ => "NONE",
        }
    }
}

/// `ls -l`'s form of a mode: `drwxr-xr-t`.
pub fn mode_string(is_dir: bool, mode: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(if is_dir { 'd' } else { '-' });
    for (shift, special, set_char) in [(6, 0o4000, 's'), (3, 0o2000, 's'), (0, 0o1000, 't')] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        let x = bits & 1 != 0;
        s.push(match (mode & special != 0, x) {
            (true, true) => set_char,
            (true, false) => set_char.to_ascii_uppercase(),
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// Permission settings and the callers' groups.
#[derive(Debug)]
pub struct Permissions {
    enabled: bool,
    superuser: String,
    supergroup: String,
    passwd: PathBuf,
    group: PathBuf,
    groups: Mutex<HashMap<String, Remembered>>,
}

/// A user's groups and when they were looked up.
type Remembered = (Instant, Arc<Vec<String>>);

impl Permissions {
    /// Checks on (`enabled`) or off; `superuser` and members of
    /// `supergroup` pass every check. Groups come from /etc/passwd and
    /// /etc/group.
    pub fn new(enabled: bool, superuser: String, supergroup: String) -> Permissions {
        Permissions::with_files(
            enabled,
            superuser,
            supergroup,
            "/etc/passwd".into(),
            "/etc/group".into(),
        )
    }

    /// [`Permissions::new`] reading groups from the given files.
    pub fn with_files(
        enabled: bool,
        superuser: String,
        supergroup: String,
        passwd: PathBuf,
        group: PathBuf,
    ) -> Permissions {
        Permissions {
            enabled,
            superuser,
            supergroup,
            passwd,
            group,
            groups: Mutex::new(HashMap::new()),
        }
    }

    /// The caller a request naming `user` acts for.
    pub fn caller(&self, user: &str) -> Caller {
        if !self.enabled {
            return Caller {
                user: user.to_string(),
                ..Caller::superuser()
            };
        }
        let groups = if user.is_empty() {
            Arc::new(Vec::new())
        } else {
            self.groups_of(user)
        };
        let superuser =
            (!user.is_empty() && user == self.superuser) || groups.contains(&self.supergroup);
        Caller {
            user: user.to_string(),
            groups,
            superuser,
        }
    }

    fn groups_of(&self, user: &str) -> Arc<Vec<String>> {
        let now = Instant::now();
        if let Some((at, g)) = self.groups.lock().get(user) {
            if now.duration_since(*at) < GROUPS_TTL {
                return g.clone();
            }
        }
        let passwd = std::fs::read_to_string(&self.passwd).unwrap_or_default();
        let group = std::fs::read_to_string(&self.group).unwrap_or_default();
        let found = Arc::new(dfs_proto::principal::groups_of(user, &passwd, &group));
        if found.is_empty() {
            tracing::debug!(
                user,
                "no groups known for the user on the namenode's host; only the owner and other bits apply to it"
            );
        }
        let mut cache = self.groups.lock();
        // Names are the client's to choose: keep the map bounded.
        if cache.len() >= 10_000 {
            cache.retain(|_, (at, _)| now.duration_since(*at) < GROUPS_TTL);
            if cache.len() >= 10_000 {
                cache.clear();
            }
        }
        cache.insert(user.to_string(), (now, found.clone()));
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_print_as_ls_does() {
        assert_eq!(mode_string(true, 0o755), "drwxr-xr-x");
        assert_eq!(mode_string(false, 0o640), "-rw-r-----");
        assert_eq!(mode_string(true, 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(true, 0o1770), "drwxrwx--T");
        assert_eq!(mode_string(false, 0o4755), "-rwsr-xr-x");
    }

    #[test]
    fn access_bits_and_names() {
        assert!(Access::READ.allowed_by(0o5));
        assert!(!Access::WRITE.allowed_by(0o5));
        assert!(Access::READ_EXECUTE.allowed_by(0o7));
        assert!(!Access::ALL.allowed_by(0o6));
        assert_eq!(Access::READ_EXECUTE.name(), "READ_EXECUTE");
    }

    #[test]
    fn callers_get_their_groups_and_the_superuser_is_known() {
        let dir = tempfile::tempdir().unwrap();
        let (passwd, group) = (dir.path().join("passwd"), dir.path().join("group"));
        std::fs::write(
            &passwd,
            "alice:x:1000:1000::/:/bin/sh\nbob:x:1001:1001::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(&group, "alice:x:1000:\nbob:x:1001:\nsupergroup:x:900:bob\n").unwrap();
        let p = Permissions::with_files(
            true,
            "hdfs".into(),
            "supergroup".into(),
            passwd.clone(),
            group,
        );
        let alice = p.caller("alice");
        assert_eq!(*alice.groups, ["alice"]);
        assert!(!alice.superuser);
        assert!(p.caller("bob").superuser, "a member of the supergroup");
        assert!(p.caller("hdfs").superuser, "the namenode's user");
        assert!(!p.caller("").superuser);
        assert!(alice.require_superuser("enter safe mode").is_err());
        // Off: everyone passes.
        let off = Permissions::with_files(false, "hdfs".into(), "sg".into(), passwd, "/x".into());
        assert!(off.caller("alice").superuser);
    }
}
