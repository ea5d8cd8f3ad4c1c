//! Namespace commands: `ls`, `mkdir`, `rm`, `rmdir`, `mv`, `stat`, `du`,
//! `setrep`.

use std::time::Duration;

use super::format::{date_full, human_size, long_lines, permission_string};
use super::{print_json, print_out, CliError, CliResult, Failures, LsArgs};
use crate::{Client, Error, FileStatus};

/// Every entry under `path` (itself for a file), recursively when asked.
pub(crate) async fn collect(
    client: &Client,
    path: &str,
    recursive: bool,
) -> CliResult<Vec<FileStatus>> {
    let st = client.status(path).await?;
    if !st.is_dir() {
        return Ok(vec![st]);
    }
    // Depth first, in name order: each directory is followed by its tree.
    let mut out = Vec::new();
    let mut stack = vec![client.list(&st.path).await?.into_iter()];
    while let Some(top) = stack.last_mut() {
        match top.next() {
            Some(e) => {
                let subdir = (recursive && e.is_dir()).then(|| e.path.clone());
                out.push(e);
                if let Some(d) = subdir {
                    stack.push(client.list(&d).await?.into_iter());
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
    let entries = collect(client, &args.path, args.recursive).await?;
    if args.json {
        return print_json(&entries);
    }
    let mut text = String::new();
    if args.long {
        for line in long_lines(&entries) {
            text.push_str(&line);
            text.push('\n');
        }
    } else {
        for e in &entries {
            text.push_str(&e.path);
            text.push('\n');
        }
    }
    print_out(&text)
}

/// `dfs mkdir`.
pub(crate) async fn mkdir(client: &Client, parents: bool, paths: &[String]) -> CliResult {
    let mut failures = Failures::default();
    for p in paths {
        failures.note(
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
    for p in paths {
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
        failures.note(one.await.map_err(Into::into))?;
    }
    failures.finish()
}

/// `dfs rmdir [--ignore-fail-on-non-empty] DIR...`: removes empty
/// directories only.
pub(crate) async fn rmdir(client: &Client, ignore_non_empty: bool, paths: &[String]) -> CliResult {
    let mut failures = Failures::default();
    for p in paths {
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
        failures.note(one.await.map_err(Into::into))?;
    }
    failures.finish()
}

/// `dfs mv`: into an existing directory, or to a new name.
pub(crate) async fn mv(client: &Client, src: &str, dst: &str) -> CliResult {
    let src_st = client.status(src).await?;
    let target = match client.status(dst).await {
        Ok(st) if st.is_dir() => dfs_proto::path::join(&st.path, src_st.name()),
        // `DST/` names a directory (as GNU mv): never a new file.
        Ok(_) if dst.ends_with('/') => {
            return Err(Error::NotADirectory {
                path: dst.to_string(),
            }
            .into())
        }
        Ok(_) => {
            return Err(Error::AlreadyExists {
                path: dst.to_string(),
            }
            .into())
        }
        Err(Error::NotFound { .. }) if dst.ends_with('/') => {
            return Err(CliError::Told(format!("{dst}: no such directory")))
        }
        Err(Error::NotFound { .. }) => dst.to_string(),
        Err(e) => return Err(e.into()),
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
    let st = client.status(path).await?;
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

/// `dfs du`: `length  space-consumed  path` per entry (or one total).
pub(crate) async fn du(client: &Client, path: &str, summary: bool, human: bool) -> CliResult {
    let fmt = |n: u64| {
        if human {
            human_size(n)
        } else {
            n.to_string()
        }
    };
    let st = client.status(path).await?;
    let mut rows = Vec::new();
    if summary || !st.is_dir() {
        let cs = client.content_summary(&st.path).await?;
        rows.push((cs.length, cs.space_consumed, st.path.clone()));
    } else {
        for e in client.list(&st.path).await? {
            let cs = client.content_summary(&e.path).await?;
            rows.push((cs.length, cs.space_consumed, e.path));
        }
    }
    let w1 = rows.iter().map(|r| fmt(r.0).len()).max().unwrap_or(1);
    let w2 = rows.iter().map(|r| fmt(r.1).len()).max().unwrap_or(1);
    let mut text = String::new();
    for (len, consumed, p) in rows {
        text.push_str(&format!("{:<w1$}  {:<w2$}  {p}\n", fmt(len), fmt(consumed)));
    }
    print_out(&text)
}

/// `dfs setrep`: a file, or every file under a directory.
pub(crate) async fn setrep(client: &Client, replication: u32, path: &str, wait: bool) -> CliResult {
    let files: Vec<FileStatus> = collect(client, path, true)
        .await?
        .into_iter()
        .filter(|s| !s.is_dir())
        .collect();
    for f in &files {
        client.set_replication(&f.path, replication).await?;
        print_out(&format!("Replication {replication} set: {}\n", f.path))?;
    }
    if wait {
        for f in &files {
            loop {
                let blocks = client.block_locations(&f.path, 0, 0).await?;
                if blocks.iter().all(|b| b.hosts.len() == replication as usize) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    Ok(())
}
