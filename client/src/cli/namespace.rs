//! Namespace commands: `ls`, `mkdir`, `rm`, `rmdir`, `mv`, `stat`, `du`,
//! `setrep`.

use std::time::Duration;

use super::attrs::creatable;
use super::format::{date_full, human_size, long_lines, permission_string};
use super::glob::{expand_all, expand_one};
use super::{print_json, print_out, CliError, CliResult, Failures, LsArgs};
use crate::{Client, Error, FileStatus};

/// Every entry under `path` (itself for a file), recursively when asked.
pub(crate) async fn collect(
    client: &Client,
    path: &str,
    recursive: bool,
    failures: &mut Failures,
) -> CliResult<Vec<FileStatus>> {
    let st = client.status(path).await?;
    if !st.is_dir() {
        return Ok(vec![st]);
    }
    // Depth first, in name order: each directory is followed by its tree.
    // A directory below that cannot be listed (no permission, removed
    // meanwhile) is a failure of its own; the rest is still listed, as
    // `hdfs dfs -ls -R` does.
    let mut out = Vec::new();
    let mut stack = vec![client.list(&st.path).await?.into_iter()];
    while let Some(top) = stack.last_mut() {
        match top.next() {
            Some(e) => {
                let subdir = (recursive && e.is_dir()).then(|| e.path.clone());
                out.push(e);
                if let Some(d) = subdir {
                    match client.list(&d).await {
                        Ok(entries) => stack.push(entries.into_iter()),
                        Err(err) => failures.note_path(&d, Err(err.into()))?,
                    }
                }
            }
            None => {
                stack.pop();
            }
        }
    }
    Ok(out)
}

/// `dfs ls`.
pub(crate) async fn ls(client: &Client, args: LsArgs) -> CliResult {
    let mut failures = Failures::default();
    let mut entries = Vec::new();
    for p in expand_all(client, &args.paths, &mut failures).await? {
        match collect(client, &p, args.recursive, &mut failures).await {
            Ok(e) => entries.extend(e),
            Err(e) => failures.note_path(&p, Err(e))?,
        }
    }
    failures.note(print_listing(&args, &entries))?;
    failures.finish()
}

fn print_listing(args: &LsArgs, entries: &[FileStatus]) -> CliResult {
    if args.json {
        return print_json(&entries);
    }
    let mut text = String::new();
    if args.long {
        for line in long_lines(entries) {
            text.push_str(&line);
            text.push('\n');
        }
    } else {
        for e in entries {
            text.push_str(&e.path);
            text.push('\n');
        }
    }
    print_out(&text)
}

/// `dfs mkdir`: the paths are taken as `touchz` takes them (a pattern's
/// matches, or the name itself when nothing matches; `\` takes a glob
/// character literally), so `/d/new\*` makes `/d/new*`.
pub(crate) async fn mkdir(client: &Client, parents: bool, paths: &[String]) -> CliResult {
    let mut failures = Failures::default();
    for p in &creatable(client, paths, &mut failures).await? {
        failures.note_path(
            p,
            client
                .mkdirs(p, parents)
                .await
                .map(drop)
                .map_err(Into::into),
        )?;
    }
    failures.finish()
}

/// `dfs rm`.
pub(crate) async fn rm(client: &Client, recursive: bool, paths: &[String]) -> CliResult {
    let mut failures = Failures::default();
    for p in &expand_all(client, paths, &mut failures).await? {
        let one = async {
            let st = client.status(p).await?;
            if st.is_dir() && !recursive {
                let (entries, _) = client.list_page(&st.path, "", 1).await?;
                return Err(if entries.is_empty() {
                    Error::IsADirectory { path: st.path }
                } else {
                    Error::DirectoryNotEmpty { path: st.path }
                });
            }
            client.delete(&st.path, recursive).await
        };
        failures.note_path(p, one.await.map_err(Into::into))?;
    }
    failures.finish()
}

/// `dfs rmdir [--ignore-fail-on-non-empty] DIR...`: removes empty
/// directories only.
pub(crate) async fn rmdir(client: &Client, ignore_non_empty: bool, paths: &[String]) -> CliResult {
    let mut failures = Failures::default();
    for p in &expand_all(client, paths, &mut failures).await? {
        let one = async {
            let st = client.status(p).await?;
            if !st.is_dir() {
                return Err(Error::NotADirectory { path: st.path });
            }
            match client.delete(&st.path, false).await {
                Err(Error::DirectoryNotEmpty { .. }) if ignore_non_empty => Ok(()),
                r => r,
            }
        };
        failures.note_path(p, one.await.map_err(Into::into))?;
    }
    failures.finish()
}

/// `dfs mv SRC... DST`: into an existing directory, or one source to a
/// new name.
pub(crate) async fn mv(client: &Client, paths: &[String]) -> CliResult {
    let Some((dst, srcs)) = paths.split_last() else {
        return Err(CliError::Usage("mv needs SRC... DST".into()));
    };
    let mut failures = Failures::default();
    let srcs = expand_all(client, srcs, &mut failures).await?;
    let dest = super::dest::resolve(client, dst, "mv").await?;
    if dest.is_file {
        return Err(Error::AlreadyExists { path: dest.path }.into());
    }
    if dest.dir.is_none() && srcs.len() > 1 {
        return Err(Error::NotADirectory { path: dest.path }.into());
    }
    for src in &srcs {
        let r = mv_one(client, src, &dest.path, dest.dir.as_deref()).await;
        failures.note_path(src, r)?;
    }
    failures.finish()
}

async fn mv_one(client: &Client, src: &str, dst: &str, dst_dir: Option<&str>) -> CliResult {
    let src_st = client.status(src).await?;
    let target = match dst_dir {
        Some(dir) => dfs_proto::path::join(dir, src_st.name()),
        None => dst.to_string(),
    };
    if dfs_proto::path::normalize(&target).ok().as_deref() == Some(src_st.path.as_str()) {
        return Err(CliError::Told(format!(
            "{}: already at {dst}: source and target are the same",
            src_st.path
        )));
    }
    client.rename(&src_st.path, &target, false).await?;
    Ok(())
}

/// `dfs stat`.
pub(crate) async fn stat(client: &Client, path: &str, json: bool) -> CliResult {
    let st = client
        .status(&expand_one(client, path, "stat").await?)
        .await?;
    if json {
        return print_json(&st);
    }
    let kind = if st.is_dir() { "dir" } else { "file" };
    let mut text = format!(
        "  Path: {}\n  Type: {kind}\n  Size: {}\n",
        st.path, st.length
    );
    if !st.is_dir() {
        text.push_str(&format!(
            "  Replication: {}\n  Block size: {}\n",
            st.replication, st.block_size
        ));
    }
    text.push_str(&format!(
        "  Mode: {:04o} ({})\n  Owner: {}\n  Group: {}\n  Modified: {}\n  Accessed: {}\n  Inode: {}\n",
        st.mode,
        permission_string(st.is_dir(), st.mode),
        st.owner,
        st.group,
        date_full(st.mtime),
        date_full(st.atime),
        st.inode
    ));
    if st.under_construction {
        text.push_str("  Under construction: yes (a writer holds it open)\n");
    }
    print_out(&text)
}

/// `dfs du`: `length  space-consumed  path` per entry (or one total per
/// path).
pub(crate) async fn du(client: &Client, paths: &[String], summary: bool, human: bool) -> CliResult {
    let fmt = |n: u64| {
        if human {
            human_size(n)
        } else {
            n.to_string()
        }
    };
    let mut failures = Failures::default();
    let mut rows = Vec::new();
    for p in expand_all(client, paths, &mut failures).await? {
        let children = async {
            let st = client.status(&p).await?;
            if summary || !st.is_dir() {
                return Ok(vec![st.path]);
            }
            let entries = client.list(&st.path).await?;
            Ok::<_, Error>(entries.into_iter().map(|e| e.path).collect())
        };
        let children = match children.await {
            Ok(c) => c,
            Err(e) => {
                failures.note_path(&p, Err(e.into()))?;
                continue;
            }
        };
        // A child that cannot be summarised (a directory below it the user
        // may not read, one removed meanwhile) is a failure of its own: the
        // other children still get their rows, as `hdfs dfs -du` does.
        for child in children {
            match client.content_summary(&child).await {
                Ok(cs) => rows.push((cs.length, cs.space_consumed, child)),
                // The namenode away: every other child would wait for it.
                Err(e) if e.is_transient() => return Err(e.into()),
                Err(e) => failures.note_path(&child, Err(e.into()))?,
            }
        }
    }
    let w1 = rows.iter().map(|r| fmt(r.0).len()).max().unwrap_or(1);
    let w2 = rows.iter().map(|r| fmt(r.1).len()).max().unwrap_or(1);
    let mut text = String::new();
    for (len, consumed, p) in rows {
        text.push_str(&format!("{:<w1$}  {:<w2$}  {p}\n", fmt(len), fmt(consumed)));
    }
    failures.note(print_out(&text))?;
    failures.finish()
}

/// `dfs setrep`: a file, or every file under a directory.
pub(crate) async fn setrep(
    client: &Client,
    replication: u32,
    paths: &[String],
    wait: bool,
) -> CliResult {
    let mut failures = Failures::default();
    let mut files: Vec<FileStatus> = Vec::new();
    for p in expand_all(client, paths, &mut failures).await? {
        match collect(client, &p, true, &mut failures).await {
            Ok(entries) => files.extend(entries.into_iter().filter(|s| !s.is_dir())),
            Err(e) => failures.note_path(&p, Err(e))?,
        }
    }
    setrep_files(client, replication, &files, wait, &mut failures).await?;
    failures.finish()
}

/// Sets the replication of each file, then with `wait` waits for the
/// files it set. A file refused (no permission, removed meanwhile) is a
/// failure of its own: the others are still set, as `hdfs dfs -setrep`.
async fn setrep_files(
    client: &Client,
    replication: u32,
    files: &[FileStatus],
    wait: bool,
    failures: &mut Failures,
) -> CliResult {
    let mut set = Vec::new();
    for f in files {
        match client.set_replication(&f.path, replication).await {
            Ok(()) => {
                failures.note(print_out(&format!(
                    "Replication {replication} set: {}\n",
                    f.path
                )))?;
                set.push(&f.path);
            }
            // The namenode away: every other file would wait for it.
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(e) => failures.note_path(&f.path, Err(e.into()))?,
        }
    }
    if wait {
        for path in set {
            failures.note_path(path, setrep_wait(client, path, replication).await)?;
        }
    }
    Ok(())
}

/// Waits until every block of `path` has `replication` replicas.
async fn setrep_wait(client: &Client, path: &str, replication: u32) -> CliResult {
    let mut next_note = std::time::Instant::now() + SETREP_FIRST_NOTE;
    loop {
        let blocks = client.block_locations(path, 0, 0).await?;
        let Some(short) = blocks
            .iter()
            .map(|b| b.hosts.len())
            .filter(|n| *n != replication as usize)
            .min()
        else {
            return Ok(());
        };
        // HDFS's -w waits silently, forever if the cluster has fewer
        // datanodes than the replication: say what is awaited.
        if std::time::Instant::now() >= next_note {
            setrep_note(path, short, replication);
            next_note = std::time::Instant::now() + SETREP_NOTE_EVERY;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// When `setrep -w` first says what it still waits for, then how often.
const SETREP_FIRST_NOTE: Duration = Duration::from_secs(3);
const SETREP_NOTE_EVERY: Duration = Duration::from_secs(30);

fn setrep_note(path: &str, have: usize, want: u32) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr().lock(),
        "dfs: setrep: still waiting for {path}: a block has {have} of {want} replicas \
         (with fewer than {want} live datanodes it never will; Ctrl-C stops waiting, \
         the replication stays set)"
    );
}
