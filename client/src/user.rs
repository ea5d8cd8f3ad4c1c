//! Who the client is: the user whose permissions the namenode checks, and
//! the owner of the files and directories it creates.
//!
//! As HDFS's simple authentication: `$DFS_USER` when set (HDFS's
//! `HADOOP_USER_NAME`), else the login name of the process's effective
//! user ([`dfs_proto::principal::process_user`]).

use std::sync::OnceLock;

/// The environment variable that names the client's user.
pub(crate) const USER_ENV: &str = "DFS_USER";

/// The user the client acts as (empty when it cannot be told). Looked up
/// once per process: every call names it.
pub(crate) fn current_user() -> String {
    static USER: OnceLock<String> = OnceLock::new();
    USER.get_or_init(look_up_user).clone()
}

fn look_up_user() -> String {
    // A name that is not UTF-8 is used as given (lossily), never swapped
    // for the login name: that could be the superuser's.
    match std::env::var_os(USER_ENV) {
        Some(u) if !u.is_empty() => u.to_string_lossy().into_owned(),
        _ => dfs_proto::principal::process_user(),
    }
}
