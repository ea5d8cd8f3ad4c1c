//! Who the client is: the owner of the files and directories it creates.
//!
//! As HDFS's simple authentication: `$DFS_USER` when set (HDFS's
//! `HADOOP_USER_NAME`), else the login name of the process's effective
//! user, looked up in /etc/passwd, else (a user from a directory service,
//! not in /etc/passwd) `$USER`, else that user's numeric id. `$USER` does
//! not come first: it is whatever the environment says (`su`, cron and
//! service managers set it differently, or not at all).

use std::os::unix::fs::MetadataExt;
use std::sync::OnceLock;

/// The environment variable that names the client's user.
pub(crate) const USER_ENV: &str = "DFS_USER";

/// The user the client acts as (empty when it cannot be told; the
/// namenode then uses its default owner). Looked up once per process:
/// every create asks.
pub(crate) fn current_user() -> String {
    static USER: OnceLock<String> = OnceLock::new();
    USER.get_or_init(look_up_user).clone()
}

fn look_up_user() -> String {
    if let Ok(u) = std::env::var(USER_ENV) {
        if !u.is_empty() {
            return u;
        }
    }
    // /proc/self belongs to the process's effective user.
    let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return String::new();
    };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    user_name(&passwd, uid)
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| uid.to_string())
}

/// The name of `uid` in a passwd file's text (`name:x:uid:...` lines).
fn user_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uid_is_named_by_the_passwd_file() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      # comment\n\
                      broken\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
        assert_eq!(user_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(user_name(passwd, 65534).as_deref(), Some("nobody"));
        assert_eq!(user_name(passwd, 1000), None);
    }

    #[test]
    fn the_current_user_is_this_process_owner() {
        if std::env::var(USER_ENV).is_ok() {
            return; // Named by the environment, not looked up.
        }
        let id = std::process::Command::new("id").arg("-un").output();
        let Ok(out) = id else { return };
        let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(current_user(), name);
    }
}
