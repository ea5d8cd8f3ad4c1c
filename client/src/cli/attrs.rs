//! Attribute commands: `chmod`, `chown`, `chgrp`, `touchz`, `touch`.
//!
//! Like `hdfs dfs`, each takes several paths (every one is tried) and
//! `-R` for whole trees (an entry that cannot be changed or listed is a
//! failure of its own; the others are still changed). The namenode checks
//! the caller's permissions: the owner changes the mode, the superuser the
//! owner (README).

use super::format::days_from_civil;
use super::glob::{expand_all, expand_or_literal};
use super::mode::ModeChange;
use super::namespace::collect;
use super::{CliError, CliResult, Failures};
use crate::{Client, CreateOptions, Error, FileStatus, SetAttr};

/// Calls `change` on each path, and with `recursive` on everything under
/// the directories among them; every path is tried.
async fn for_each<F, Fut>(
    client: &Client,
    paths: &[String],
    recursive: bool,
    mut change: F,
) -> CliResult
where
    F: FnMut(FileStatus) -> Fut,
    Fut: std::future::Future<Output = CliResult>,
{
    let mut failures = Failures::default();
    for p in &expand_all(client, paths, &mut failures).await? {
        let st = match client.status(p).await {
            Ok(st) => st,
            Err(e) => {
                failures.note_path(p, Err(e.into()))?;
                continue;
            }
        };
        let tree = recursive && st.is_dir();
        let root = st.path.clone();
        failures.note_path(&root, change(st).await)?;
        if tree {
            match collect(client, &root, true, &mut failures).await {
                Ok(entries) => {
                    for e in entries {
                        let path = e.path.clone();
                        failures.note_path(&path, change(e).await)?;
                    }
                }
                Err(e) => failures.note_path(&root, Err(e))?,
            }
        }
    }
    failures.finish()
}

/// `dfs chmod [-R] MODE PATH...`.
pub(crate) async fn chmod(
    client: &Client,
    mode: &str,
    recursive: bool,
    paths: &[String],
) -> CliResult {
    let change = super::mode::parse(mode).map_err(CliError::Usage)?;
    let change: &ModeChange = &change;
    for_each(client, paths, recursive, move |st| async move {
        // Sent even when the mode is unchanged: the namenode says whether
        // the user may change it (as `hdfs dfs -chmod`), where skipping
        // the call would report success to anyone.
        let new = change.apply(st.mode, st.is_dir());
        let attr = SetAttr {
            mode: Some(new),
            ..Default::default()
        };
        client.set_attr_of(&st.path, st.inode, attr).await?;
        Ok(())
    })
    .await
}

/// `OWNER`, `OWNER:GROUP`, `:GROUP` or `OWNER:` of `dfs chown`.
fn parse_owner(spec: &str) -> CliResult<SetAttr> {
    let (owner, group) = match spec.split_once(':') {
        Some((o, g)) => (o, Some(g)),
        None => (spec, None),
    };
    let bad = |why: &str| CliError::Usage(format!("invalid owner '{spec}': {why}"));
    if group.is_some_and(|g| g.contains(':')) {
        return Err(bad("expected OWNER[:GROUP]"));
    }
    let attr = SetAttr {
        owner: (!owner.is_empty()).then(|| owner.to_string()),
        group: group.filter(|g| !g.is_empty()).map(str::to_string),
        ..Default::default()
    };
    if attr.owner.is_none() && attr.group.is_none() {
        return Err(bad("no owner or group given"));
    }
    for (what, name) in [("owner", &attr.owner), ("group", &attr.group)] {
        let Some(name) = name else { continue };
        if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("names have no spaces or control characters"));
        }
        dfs_proto::principal::check_principal(what, name, false).map_err(|e| bad(&e))?;
    }
    Ok(attr)
}

/// `dfs chown [-R] OWNER[:GROUP] PATH...` (and `chgrp GROUP`).
pub(crate) async fn chown(
    client: &Client,
    spec: &str,
    recursive: bool,
    paths: &[String],
) -> CliResult {
    let attr = parse_owner(spec)?;
    let attr = &attr;
    for_each(client, paths, recursive, move |st| {
        let attr = attr.clone();
        async move {
            // Sent even when nothing changes, for the namenode's check (as
            // chmod above).
            client.set_attr_of(&st.path, st.inode, attr).await?;
            Ok(())
        }
    })
    .await
}

/// `dfs chgrp [-R] GROUP PATH...`.
pub(crate) async fn chgrp(
    client: &Client,
    group: &str,
    recursive: bool,
    paths: &[String],
) -> CliResult {
    if group.is_empty() || group.contains(':') {
        return Err(CliError::Usage(format!(
            "invalid group '{group}': a group name, without ':'"
        )));
    }
    chown(client, &format!(":{group}"), recursive, paths).await
}

/// `dfs touchz PATH...`: an empty file; a path that is already an empty
/// file is left as it is, anything else there is an error.
pub(crate) async fn touchz(client: &Client, paths: &[String]) -> CliResult {
    let mut failures = Failures::default();
    for p in &creatable(client, paths, &mut failures).await? {
        let one = async {
            match client.status(p).await {
                Ok(st) if st.is_dir() => Err(Error::IsADirectory { path: st.path }.into()),
                Ok(st) if st.under_construction => Err(CliError::Told(format!(
                    "{}: is being written (not closed yet), so not a zero-length file",
                    st.path
                ))),
                Ok(st) if st.length > 0 => Err(CliError::Told(format!(
                    "{}: not a zero-length file",
                    st.path
                ))),
                Ok(_) => Ok(()),
                Err(Error::NotFound { .. }) => {
                    no_trailing_slash(p)?;
                    create_empty(client, p).await
                }
                Err(e) => Err(e.into()),
            }
        };
        failures.note_path(p, one.await)?;
    }
    failures.finish()
}

/// The paths of `touch`/`touchz`/`mkdir` arguments: a pattern's matches,
/// or the argument itself when nothing matches.
pub(crate) async fn creatable(
    client: &Client,
    args: &[String],
    failures: &mut Failures,
) -> CliResult<Vec<String>> {
    let mut out = Vec::new();
    for a in args {
        match expand_or_literal(client, a).await {
            Ok(v) => out.extend(v),
            Err(e) => failures.note_path(a, Err(e))?,
        }
    }
    Ok(out)
}

/// A new file is never made from `NAME/` (a directory's name, as touch).
fn no_trailing_slash(path: &str) -> CliResult {
    if path.ends_with('/') && path != "/" {
        return Err(CliError::Told(format!("{path}: no such directory")));
    }
    Ok(())
}

/// Options for a file created empty (touchz, touch): no first block,
/// which the create would allocate and the close give back (two namenode
/// calls, and datanode work, per file).
fn empty_file() -> CreateOptions {
    CreateOptions {
        lazy_first_block: true,
        ..CreateOptions::default()
    }
}

async fn create_empty(client: &Client, path: &str) -> CliResult {
    let writer = client.create(path, empty_file()).await?;
    writer.close().await?;
    Ok(())
}

/// What `dfs touch` sets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Touch {
    /// Access time only (`-a`).
    pub(crate) atime_only: bool,
    /// Modification time only (`-m`).
    pub(crate) mtime_only: bool,
    /// Do not create missing files (`-c`).
    pub(crate) no_create: bool,
}

/// `dfs touch [-a] [-m] [-c] [-t TIME] PATH...`: sets the times (now, or
/// TIME), creating empty files that do not exist (unless `-c`).
pub(crate) async fn touch(
    client: &Client,
    how: Touch,
    time: Option<&str>,
    paths: &[String],
) -> CliResult {
    let at = match time {
        Some(t) => parse_time(t)?,
        None => now_ms(),
    };
    let both = how.atime_only == how.mtime_only;
    let attr = SetAttr {
        mtime: (both || how.mtime_only).then_some(at),
        atime: (both || how.atime_only).then_some(at),
        ..Default::default()
    };
    let mut failures = Failures::default();
    for p in &creatable(client, paths, &mut failures).await? {
        let one = async {
            match client.status(p).await {
                Ok(st) => {
                    client.set_attr_of(&st.path, st.inode, attr.clone()).await?;
                    Ok(())
                }
                Err(Error::NotFound { .. }) if how.no_create => Ok(()),
                Err(Error::NotFound { .. }) => {
                    no_trailing_slash(p)?;
                    let mut writer = client.create(p, empty_file()).await?;
                    if time.is_some() {
                        writer.set_attrs_on_close(&attr)?;
                    }
                    writer.close().await?;
                    Ok(())
                }
                Err(e) => Err(e.into()),
            }
        };
        failures.note_path(p, one.await)?;
    }
    failures.finish()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `yyyyMMdd:HHmmss` (UTC, as every time the CLI prints) to milliseconds
/// since the epoch: the `-t` format of `hdfs dfs -touch`.
fn parse_time(text: &str) -> CliResult<i64> {
    let bad = || {
        CliError::Usage(format!(
            "invalid time '{text}': expected yyyyMMdd:HHmmss (UTC), as 20261122:153000"
        ))
    };
    let b = text.as_bytes();
    if b.len() != 15 || b[8] != b':' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> CliResult<i64> {
        let s = text.get(r).ok_or_else(bad)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, s) = (num(9..11)?, num(11..13)?, num(13..15)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let valid_day = (1..=12).contains(&mo) && d >= 1 && d <= month_days[(mo - 1) as usize];
    if !valid_day || h > 23 || mi > 59 || s > 59 {
        return Err(bad());
    }
    let days = days_from_civil(y, mo as u32, d as u32);
    Ok(((days * 86_400) + h * 3600 + mi * 60 + s) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_specs_parse_as_hdfs_takes_them() {
        let a = parse_owner("alice").unwrap();
        assert_eq!(
            (a.owner.as_deref(), a.group.as_deref()),
            (Some("alice"), None)
        );
        let a = parse_owner("alice:staff").unwrap();
        assert_eq!(
            (a.owner.as_deref(), a.group.as_deref()),
            (Some("alice"), Some("staff"))
        );
        let a = parse_owner(":staff").unwrap();
        assert_eq!(
            (a.owner.as_deref(), a.group.as_deref()),
            (None, Some("staff"))
        );
        let a = parse_owner("alice:").unwrap();
        assert_eq!(
            (a.owner.as_deref(), a.group.as_deref()),
            (Some("alice"), None)
        );
        for bad in ["", ":", "a:b:c", "al ice", "a:\tb"] {
            assert!(parse_owner(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn touch_times_are_utc() {
        assert_eq!(parse_time("19700101:000000").unwrap(), 0);
        // 2026-11-22 10:00:00 UTC
        assert_eq!(parse_time("20261122:100000").unwrap(), 1_795_341_600_000);
        assert_eq!(parse_time("20000229:000001").unwrap(), 951_782_401_000);
        for bad in [
            "20261122100000",
            "20261322:100000",
            "20260230:100000",
            "20261122:240000",
            "2026112a:100000",
            "20261122:10000é",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
