//! The destination argument of `put`, `cp` and `mv`: a pattern must match
//! one path, an existing directory receives the sources, and `DST/` names
//! a directory (as GNU cp and mv): never a file to create or replace.

use super::glob::expand_one;
use super::{CliError, CliResult};
use crate::{Client, Error};

/// A resolved destination.
#[derive(Debug)]
pub(crate) struct Dest {
    /// The path (a pattern's one match).
    pub(crate) path: String,
    /// The directory it names, if it is one.
    pub(crate) dir: Option<String>,
    /// It is an existing file.
    pub(crate) is_file: bool,
}

/// Resolves `arg` for `command`: a pattern names its one match, and `\`
/// takes a glob character literally (`/d/new\*` names `/d/new*`, as the
/// operands of other commands), so a new name may have `*?[{` in it.
pub(crate) async fn resolve(client: &Client, arg: &str, command: &str) -> CliResult<Dest> {
    let path = expand_one(client, arg, command).await?;
    let slash = path.ends_with('/');
    match client.status(&path).await {
        Ok(st) if st.is_dir() => Ok(Dest {
            path: st.path.clone(),
            dir: Some(st.path),
            is_file: false,
        }),
        Ok(_) if slash => Err(Error::NotADirectory { path }.into()),
        Ok(_) => Ok(Dest {
            path,
            dir: None,
            is_file: true,
        }),
        Err(Error::NotFound { .. }) if slash => {
            Err(CliError::Told(format!("{path}: no such directory")))
        }
        Err(Error::NotFound { .. }) => Ok(Dest {
            path,
            dir: None,
            is_file: false,
        }),
        Err(e) => Err(e.into()),
    }
}
