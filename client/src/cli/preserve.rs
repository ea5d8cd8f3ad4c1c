//! What `dfs cp -p` preserves: mode and times with the copy's close, owner
//! and group after it (before the copy takes its name), and the one
//! warning for copies whose owner or group could not be given.

use std::io::Write as _;

use super::CliResult;
use crate::{Client, Error, FileStatus, SetAttr};

/// The copies `cp -p` kept without their source's owner and group: the
/// namenode lets only the superuser give an inode to another user, and
/// only a group's members give it to that group. As GNU `cp -p` and
/// `hdfs dfs -cp -p` by a non-superuser, the copy is kept with what could
/// be preserved (mode and times) and the command succeeds; one warning
/// line at the end says so (README).
#[derive(Debug, Default)]
pub(super) struct Unpreserved(std::sync::Mutex<Option<(usize, String)>>);

impl Unpreserved {
    /// Notes the copy `path`, refused for `reason` (the namenode's words).
    fn note(&self, path: &str, reason: &str) {
        if let Ok(mut u) = self.0.lock() {
            match &mut *u {
                Some((n, _)) => *n += 1,
                None => *u = Some((1, format!("{path}: {reason}"))),
            }
        }
    }

    /// Prints the one warning line, if a copy was noted.
    pub(super) fn warn(&self) {
        let Some((n, first)) = self.0.lock().ok().and_then(|mut u| u.take()) else {
            return;
        };
        let text = match n {
            1 => format!(
                "owner or group not preserved, the copy is kept with the mode and times ({first})"
            ),
            n => format!(
                "owner or group not preserved for {n} copies, kept with the mode and times \
                 (the first: {first})"
            ),
        };
        // Never panic on a closed stderr.
        let _ = writeln!(std::io::stderr().lock(), "dfs: cp: warning: {text}");
    }
}

/// Mode and times of `st`, for `cp -p`: what the owner of the copy may
/// always set.
pub(super) fn preserved_mode_and_times(st: &FileStatus) -> SetAttr {
    SetAttr {
        mode: Some(st.mode),
        mtime: Some(st.mtime),
        atime: Some(st.atime),
        ..SetAttr::default()
    }
}

/// Gives `path` (the copy `shown` of `src`, now owned by `have`) the
/// owner and group of `src`, for `cp -p`. A refusal is noted in
/// `unpreserved`, not an error: the copy is kept.
pub(super) async fn preserve_owner(
    client: &Client,
    path: &str,
    shown: &str,
    src: &FileStatus,
    have: (&str, &str),
    unpreserved: &Unpreserved,
) -> CliResult {
    let attrs = SetAttr {
        owner: (src.owner != have.0).then(|| src.owner.clone()),
        group: (src.group != have.1).then(|| src.group.clone()),
        ..SetAttr::default()
    };
    if attrs.is_empty() {
        return Ok(());
    }
    let message = match client.set_attr(path, attrs.clone()).await {
        Ok(_) => return Ok(()),
        Err(Error::PermissionDenied { message }) => message,
        Err(e) => return Err(e.into()),
    };
    // The owner refused (only the superuser gives one away): the group
    // alone may still be the user's to give, as GNU cp -p falls back to.
    if let (Some(_), Some(group)) = (attrs.owner, attrs.group) {
        let group_only = SetAttr {
            group: Some(group),
            ..SetAttr::default()
        };
        match client.set_attr(path, group_only).await {
            Ok(_) | Err(Error::PermissionDenied { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    unpreserved.note(shown, &message.replace(path, shown));
    Ok(())
}
