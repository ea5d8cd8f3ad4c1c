//! Owner and group names: the one rule the client and the namenode check,
//! and how a client names its user on every call.

/// Request metadata key naming the user a client acts as (binary, so any
/// UTF-8 name travels): the namenode checks permissions for this user, as
/// HDFS's simple authentication trusts the user the client names.
pub const USER_KEY: &str = "dfs-user-bin";

/// Longest owner or group name, in bytes.
pub const MAX_PRINCIPAL_LEN: usize = 256;

/// Checks an owner or group name (`what` says which): at most
/// [`MAX_PRINCIPAL_LEN`] bytes without control characters or `:` (which
/// separates owner and group, and no Unix name holds), and not empty
/// unless `empty_ok` (a create without an owner gets the default). Spaces
/// are kept: directory services have group names such as "domain users".
/// The error says what is wrong.
pub fn check_principal(what: &str, name: &str, empty_ok: bool) -> Result<(), String> {
    if name.len() > MAX_PRINCIPAL_LEN {
        return Err(format!(
            "{what} must be at most {MAX_PRINCIPAL_LEN} bytes (got {} bytes)",
            name.len()
        ));
    }
    if name.chars().any(|c| c.is_control() || c == ':') {
        return Err(format!(
            "{what} '{}' has a control character or ':'",
            name.escape_debug()
        ));
    }
    if name.is_empty() && !empty_ok {
        return Err(format!("empty {what}"));
    }
    Ok(())
}

/// The login name of the process's effective user: the owner of
/// `/proc/self` named by /etc/passwd, else (a user from a directory service)
/// `$USER`, else the numeric id; empty if none of these can be told.
/// `$USER` does not come first: it is whatever the environment says (`su`,
/// cron and service managers set it differently, or not at all).
pub fn process_user() -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return String::new();
    };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd_name(&passwd, uid)
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| uid.to_string())
}

/// The name of `uid` in a passwd file's text (`name:x:uid:...` lines).
pub fn passwd_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_string())
    })
}

/// The groups of `user` as a passwd and a group file's texts say (HDFS's
/// shell-based group mapping on the local files): the group of its passwd
/// entry's gid first, then every group that lists it as a member. Empty
/// for a user neither file knows.
pub fn groups_of(user: &str, passwd: &str, group: &str) -> Vec<String> {
    let gid = passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == user).then(|| fields.nth(2)?.parse::<u32>().ok())?
    });
    let mut out: Vec<String> = Vec::new();
    for line in group.lines() {
        let mut fields = line.split(':');
        let (Some(name), Some(_), Some(id), Some(members)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        let primary = gid.is_some_and(|g| id.parse::<u32>().ok() == Some(g));
        let member = members.split(',').any(|m| m.trim() == user);
        if primary {
            out.insert(0, name.to_string());
        } else if member && !out.iter().any(|g| g == name) {
            out.push(name.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_their_groups_are_read_from_the_local_files() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      # comment\n\
                      broken\n\
                      alice:x:1000:1000::/home/alice:/bin/sh\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
        assert_eq!(passwd_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(passwd_name(passwd, 65534).as_deref(), Some("nobody"));
        assert_eq!(passwd_name(passwd, 42), None);
        let group = "root:x:0:\n\
                     alice:x:1000:\n\
                     staff:x:50:bob, alice\n\
                     supergroup:x:900:alice\n\
                     broken\n";
        assert_eq!(
            groups_of("alice", passwd, group),
            ["alice", "staff", "supergroup"]
        );
        assert_eq!(groups_of("bob", passwd, group), ["staff"]);
        assert!(groups_of("carol", passwd, group).is_empty());
    }

    #[test]
    fn names_too_long_with_control_characters_colons_or_empty_are_refused() {
        assert!(check_principal("owner", "alice", false).is_ok());
        assert!(check_principal("owner", "", true).is_ok());
        assert_eq!(
            check_principal("group", "", false).unwrap_err(),
            "empty group"
        );
        assert!(check_principal("owner", "a\0b", true).is_err());
        // A newline broke `dfs ls -l`; `a:b` read as owner a, group b.
        for bad in ["a\nb", "a\tb", "a:b", "\u{7f}"] {
            let e = check_principal("owner", bad, false).unwrap_err();
            assert!(e.contains("control character or ':'"), "{e}");
        }
        assert!(check_principal("group", "domain users", false).is_ok());
        assert!(check_principal("owner", &"x".repeat(256), false).is_ok());
        let e = check_principal("owner", &"x".repeat(257), false).unwrap_err();
        assert!(e.contains("257 bytes"), "{e}");
    }
}
