//! Data commands: `put`, `get`, `cp`, `cat`.
//!
//! `put` writes to `NAME.XXXXXXXX._COPYING_` and renames it into place
//! when the copy is complete (as `hdfs dfs -put` does with
//! `NAME._COPYING_`), so a failed or interrupted put never leaves a
//! partial file under the final name; `get` does the same on the local
//! side. The random part makes the temporary name one nobody else uses: it
//! is created only if it does not exist, so a file of the user's that
//! happens to be called `NAME._COPYING_`, another copy to the same name,
//! or the leftover of a killed one is never overwritten, and never in the
//! way.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::glob::{expand, expand_all};
use super::preserve::{preserve_owner, preserved_mode_and_times, Unpreserved};
use super::{local, stop, CliError, CliResult, CpArgs, Failures, GetArgs, PutArgs};
use crate::{Client, CreateOptions, Error, FileReader, FileStatus, FileType, FileWriter};

/// Files at least this large get a progress bar (on a terminal).
const PROGRESS_MIN: u64 = 32 << 20;
/// Bytes read from a local file per call.
const LOCAL_CHUNK: usize = 1 << 20;
/// Chunks queued for the local writer thread.
const LOCAL_QUEUE: usize = 8;
/// Suffix of a copy in progress.
const COPYING: &str = "._COPYING_";
/// Longest name of a file or directory (dfs and local filesystems).
const MAX_NAME: usize = 255;

/// A temporary name for a copy to `name`, in the same directory: `name`
/// (cut to fit 255 bytes) with a random part and [`COPYING`] appended.
fn copying_name(name: &str) -> String {
    let tag = format!(".{:08x}{COPYING}", rand::random::<u32>());
    let mut keep = name.len().min(MAX_NAME - tag.len());
    while !name.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}{tag}", &name[..keep])
}

/// [`copying_name`] of the last component of the remote path `path`.
fn remote_copying_path(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/{}", copying_name(name)),
        None => copying_name(path),
    }
}

fn progress(len: u64, name: &str) -> ProgressBar {
    if len < PROGRESS_MIN || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .map(|s| s.progress_chars("=> "));
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar.set_message(name.to_string());
    bar
}

fn file_name(local: &str) -> CliResult<String> {
    Path::new(local)
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| CliError::Usage(format!("{local}: cannot tell the file name")))
}

/// `dfs put LOCAL... REMOTE`.
pub(crate) async fn put(client: &Client, args: PutArgs) -> CliResult {
    let (remote, locals) = match args.paths.split_last() {
        Some((r, l)) if !l.is_empty() => (r.clone(), l.to_vec()),
        _ => return Err(CliError::Usage("put needs LOCAL... REMOTE".into())),
    };
    let opts = CreateOptions {
        overwrite: args.force,
        replication: args.replication,
        block_size: args.block_size,
        ..Default::default()
    };
    let dest = super::dest::resolve(client, &remote, "put").await?;
    let remote = dest.path;
    let remote_dir = dest.dir;
    if locals.len() > 1 && remote_dir.is_none() {
        return Err(Error::NotADirectory { path: remote }.into());
    }
    let mut failures = Failures::default();
    for l in &locals {
        let target = match &remote_dir {
            Some(dir) if l == "-" => Err(Error::IsADirectory { path: dir.clone() }.into()),
            Some(dir) => file_name(l).map(|name| dfs_proto::path::join(dir, &name)),
            None => Ok(remote.clone()),
        };
        // A refusal of the cluster's (safe mode, no datanodes) names the
        // remote path it was about; a failure of the local file, the
        // local path.
        let (named, r) = match target {
            Ok(t) => match put_one(client, l, &t, &opts).await {
                r @ Err(CliError::Local { .. } | CliError::Usage(_)) => (l.clone(), r),
                r => (t, r),
            },
            Err(e) => (l.clone(), Err(e)),
        };
        failures.note_path(&named, r)?;
    }
    failures.finish()
}

async fn put_one(
    client: &Client,
    local_path: &str,
    remote: &str,
    opts: &CreateOptions,
) -> CliResult {
    if local_path != "-" {
        let meta = tokio::fs::metadata(local_path)
            .await
            .map_err(local(local_path))?;
        if meta.is_dir() {
            return put_dir(client, Path::new(local_path), remote, opts, &mut Vec::new()).await;
        }
    }
    if !opts.overwrite {
        must_not_exist(client, remote).await?;
    }
    write_via_temp(client, remote, opts, |writer| async move {
        if local_path == "-" {
            copy_to_remote(tokio::io::stdin(), writer, ProgressBar::hidden(), "stdin").await
        } else {
            let file = tokio::fs::File::open(local_path)
                .await
                .map_err(local(local_path))?;
            let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
            copy_to_remote(file, writer, progress(len, local_path), local_path).await
        }
    })
    .await
}

/// Fails with [`Error::AlreadyExists`] if `remote` exists (copies replace
/// files only with `-f`).
async fn must_not_exist(client: &Client, remote: &str) -> CliResult {
    match client.status(remote).await {
        Ok(_) => Err(Error::AlreadyExists {
            path: remote.to_string(),
        }
        .into()),
        Err(Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Writes `remote` through a temporary `._COPYING_` name: `fill` writes
/// and closes the file, which is then renamed into place; on failure or
/// a stop signal the partial copy is removed. Errors name `remote`.
async fn write_via_temp<F, Fut>(
    client: &Client,
    remote: &str,
    opts: &CreateOptions,
    fill: F,
) -> CliResult
where
    F: FnOnce(FileWriter) -> Fut,
    Fut: std::future::Future<Output = CliResult>,
{
    // From the temporary file's creation to its rename or removal, a stop
    // signal lets this finish (see `run`).
    let tmp = remote_copying_path(remote);
    let _running = stop::CopyGuard::copy(tmp.clone());
    let tmp_opts = CreateOptions {
        overwrite: false,
        ..opts.clone()
    };
    let writer = client
        .create(&tmp, tmp_opts)
        .await
        .map_err(|e| untemp(e.into(), &tmp, remote))?;
    let tmp_id = writer.inode();
    let copied = interruptible(fill(writer)).await;
    let renamed = match copied {
        Ok(()) => match client.rename(&tmp, remote, opts.overwrite).await {
            // The copy is gone from its name: its directory was moved or
            // removed meanwhile (the copy is removed by inode below).
            Err(Error::NotFound { path }) if path == tmp => Err(CliError::Told(format!(
                "{remote}: its directory was moved or removed during the copy; \
                 the copy is not kept"
            ))),
            r => r.map_err(CliError::from),
        },
        Err(e) => Err(e),
    };
    if let Err(e) = renamed {
        let e = untemp(e, &tmp, remote);
        return match remove_partial(client, &tmp, tmp_id).await {
            Ok(()) => Err(e),
            Err(cleanup) => Err(CliError::Told(format!(
                "{e}; the partial copy {tmp} is left behind ({cleanup}): remove it with dfs rm"
            ))),
        };
    }
    Ok(())
}

/// How long a failed copy keeps trying to remove its partial file while
/// the namenode does not answer.
const PARTIAL_CLEANUP: std::time::Duration = std::time::Duration::from_secs(30);

/// Removes a failed copy's temporary file, retrying while the namenode
/// is unreachable (the failure may have been its absence).
async fn remove_partial(client: &Client, tmp: &str, tmp_id: u64) -> Result<(), Error> {
    let deadline = tokio::time::Instant::now() + PARTIAL_CLEANUP;
    let mut delay = std::time::Duration::from_millis(200);
    // By inode: a copy whose directory was moved meanwhile is still found.
    let by_inode = dfs_proto::path::inode_path(tmp_id, None);
    let target = if tmp_id == 0 { tmp } else { by_inode.as_str() };
    loop {
        match client.delete_kind(target, false, FileType::File).await {
            // Gone (its directory removed meanwhile).
            Ok(()) | Err(Error::NotFound { .. }) => return Ok(()),
            Err(e) if e.is_transient() && tokio::time::Instant::now() + delay < deadline => {
                tracing::debug!(path = %tmp, error = %e, "retrying the removal of a partial copy");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Runs a copy until it ends or a signal stops it (Ctrl-C, `kill`,
/// `timeout`), so the caller can remove the partial copy either way.
async fn interruptible(copy: impl std::future::Future<Output = CliResult>) -> CliResult {
    tokio::select! {
        r = copy => r,
        s = stop::requested_wait() => Err(CliError::Interrupted(s)),
    }
}

/// An error of a copy through `tmp`, told about `remote`: the kind kept
/// where it names the path, else reworded.
fn untemp(e: CliError, tmp: &str, remote: &str) -> CliError {
    let CliError::Client(e) = e else {
        return e;
    };
    let e = rename_path(e, tmp, remote);
    let text = e.to_string();
    if text.contains(tmp) {
        CliError::Told(text.replace(tmp, remote))
    } else {
        CliError::Client(e)
    }
}

/// An error about the temporary `._COPYING_` file, told about `remote`.
fn rename_path(e: Error, tmp: &str, remote: &str) -> Error {
    let fix = |p: String| if p == tmp { remote.to_string() } else { p };
    match e {
        Error::NotFound { path } => Error::NotFound { path: fix(path) },
        Error::AlreadyExists { path } => Error::AlreadyExists { path: fix(path) },
        Error::NotADirectory { path } => Error::NotADirectory { path: fix(path) },
        Error::IsADirectory { path } => Error::IsADirectory { path: fix(path) },
        Error::InvalidArgument { message } => Error::InvalidArgument {
            message: message.replace(tmp, remote),
        },
        Error::Server { message } => Error::Server {
            message: message.replace(tmp, remote),
        },
        other => other,
    }
}

/// Copies a local directory tree (`hdfs dfs -put DIR`).
/// Copies local directory `dir` to `remote`. Symbolic links are followed
/// (as HDFS's put does); `ancestors` holds the (device, inode) of each
/// directory being copied above this one, so a link back up is refused
/// rather than copied again and again. FIFOs, sockets and devices inside
/// are skipped, each with a line: reading a FIFO would wait for a writer.
async fn put_dir(
    client: &Client,
    dir: &Path,
    remote: &str,
    opts: &CreateOptions,
    ancestors: &mut Vec<(u64, u64)>,
) -> CliResult {
    use std::os::unix::fs::MetadataExt;
    let dir_str = dir.display().to_string();
    let meta = tokio::fs::metadata(dir).await.map_err(local(&dir_str))?;
    let id = (meta.dev(), meta.ino());
    if ancestors.contains(&id) {
        return Err(CliError::Local {
            path: dir_str,
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a symbolic link back to a directory being copied; skipped",
            ),
        });
    }
    ancestors.push(id);
    let r = put_dir_entries(client, dir, remote, opts, ancestors).await;
    ancestors.pop();
    r
}

async fn put_dir_entries(
    client: &Client,
    dir: &Path,
    remote: &str,
    opts: &CreateOptions,
    ancestors: &mut Vec<(u64, u64)>,
) -> CliResult {
    let dir_str = dir.display().to_string();
    client.mkdirs(remote, true).await?;
    let mut entries = tokio::fs::read_dir(dir).await.map_err(local(&dir_str))?;
    let mut names = Vec::new();
    while let Some(e) = entries.next_entry().await.map_err(local(&dir_str))? {
        names.push(e.path());
    }
    names.sort();
    let mut failures = Failures::default();
    for p in names {
        let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
            failures.note(Err(CliError::Usage(format!(
                "{}: name is not UTF-8",
                p.display()
            ))))?;
            continue;
        };
        let target = dfs_proto::path::join(remote, name);
        let p_str = p.display().to_string();
        let r = match tokio::fs::metadata(&p).await {
            Err(e) => Err(CliError::Local {
                path: p_str.clone(),
                source: std::io::Error::new(e.kind(), format!("{e} (a dangling link?); skipped")),
            }),
            Ok(m) if m.is_dir() => Box::pin(put_dir(client, &p, &target, opts, ancestors)).await,
            Ok(m) if m.is_file() => Box::pin(put_one(client, &p_str, &target, opts)).await,
            Ok(_) => Err(CliError::Local {
                path: p_str.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a regular file or directory (a FIFO, socket or device); skipped",
                ),
            }),
        };
        failures.note_path(&p_str, r)?;
    }
    failures.finish()
}

async fn copy_to_remote(
    mut src: impl AsyncRead + Unpin,
    mut writer: FileWriter,
    bar: ProgressBar,
    src_name: &str,
) -> CliResult {
    let mut buf = vec![0u8; LOCAL_CHUNK];
    loop {
        let n = src.read(&mut buf).await.map_err(local(src_name))?;
        if n == 0 {
            break;
        }
        if let Err(e) = writer.write_all(&buf[..n]).await {
            bar.abandon();
            writer.abort().await;
            return Err(io_to_client(e).into());
        }
        bar.inc(n as u64);
    }
    let r = writer.close().await;
    bar.finish_and_clear();
    Ok(r?)
}

/// Recovers the client error inside an `io::Error` from `AsyncWrite`.
fn io_to_client(e: std::io::Error) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        match e.into_inner().map(|inner| inner.downcast::<Error>()) {
            Some(Ok(err)) => *err,
            Some(Err(other)) => Error::Io(std::io::Error::other(other)),
            None => Error::Io(std::io::Error::other("write failed")),
        }
    } else {
        Error::Io(e)
    }
}

/// `dfs cp [-f] [-p] SRC... DST`: copies files and trees within the
/// cluster, through the client (as `hdfs dfs -cp`), each file through a
/// temporary name as `put`. An existing directory DST receives the
/// sources inside it; several sources need one.
pub(crate) async fn cp(client: &Client, args: CpArgs) -> CliResult {
    let (dst, srcs) = match args.paths.split_last() {
        Some((d, s)) if !s.is_empty() => (d.clone(), s.to_vec()),
        _ => return Err(CliError::Usage("cp needs SRC... DST".into())),
    };
    let dest = super::dest::resolve(client, &dst, "cp").await?;
    let dst = dest.path;
    let dst_dir = dest.dir;
    if srcs.len() > 1 && dst_dir.is_none() {
        return Err(Error::NotADirectory { path: dst }.into());
    }
    let unpreserved = Unpreserved::default();
    let how = CopyHow {
        force: args.force,
        preserve: args.preserve,
        unpreserved: &unpreserved,
    };
    let mut failures = Failures::default();
    let srcs = expand_all(client, &srcs, &mut failures).await?;
    if srcs.len() > 1 && dst_dir.is_none() {
        failures.note(Err(Error::NotADirectory { path: dst }.into()))?;
        return failures.finish();
    }
    for s in &srcs {
        let one = async {
            let st = client.status(s).await?;
            let target = match &dst_dir {
                Some(dir) => dfs_proto::path::join(dir, st.name()),
                None => dfs_proto::path::normalize(&dst).map_err(|e| Error::InvalidArgument {
                    message: format!("{dst}: {e}"),
                })?,
            };
            if target == st.path {
                return Err(CliError::Told(format!(
                    "{}: source and target are the same",
                    st.path
                )));
            }
            if st.is_dir() {
                if target.starts_with(&format!("{}/", st.path)) || st.path == "/" {
                    return Err(CliError::Told(format!(
                        "{}: cannot copy a directory into itself ({target})",
                        st.path
                    )));
                }
                Box::pin(cp_dir(client, st, &target, how)).await
            } else {
                cp_file(client, &st, &target, how).await
            }
        };
        failures.note_path(s, one.await)?;
    }
    unpreserved.warn();
    failures.finish()
}

/// The options of `dfs cp` every file of a tree gets.
#[derive(Debug, Clone, Copy)]
struct CopyHow<'a> {
    force: bool,
    preserve: bool,
    /// Where `-p` notes the copies it could not give their source's owner
    /// and group.
    unpreserved: &'a Unpreserved,
}

async fn cp_file(client: &Client, src: &FileStatus, target: &str, how: CopyHow<'_>) -> CliResult {
    if !how.force {
        must_not_exist(client, target).await?;
    }
    let mut reader = client.open(&src.path).await?;
    let opts = CreateOptions {
        overwrite: how.force,
        ..Default::default()
    };
    let bar = progress(reader.len(), &src.path);
    write_via_temp(client, target, &opts, |mut writer| async move {
        if how.preserve {
            writer.set_attrs_on_close(&preserved_mode_and_times(src))?;
        }
        let tmp = writer.path().to_string();
        let (owner, group) = writer.owner_and_group();
        let have = (owner.to_string(), group.to_string());
        loop {
            let chunk = match reader.read_bytes().await {
                Ok(c) if c.is_empty() => break,
                Ok(c) => c,
                Err(e) => {
                    bar.abandon();
                    writer.abort().await;
                    return Err(e.into());
                }
            };
            if let Err(e) = writer.write_all(&chunk).await {
                bar.abandon();
                writer.abort().await;
                return Err(io_to_client(e).into());
            }
            bar.inc(chunk.len() as u64);
        }
        let r = writer.close().await;
        bar.finish_and_clear();
        r?;
        if how.preserve {
            // Before the rename, so the copy appears with them. Not with
            // the close: a refusal there would throw the copy away.
            let have = (have.0.as_str(), have.1.as_str());
            preserve_owner(client, &tmp, target, src, have, how.unpreserved).await?;
        }
        Ok(())
    })
    .await
}

async fn cp_dir(client: &Client, src: FileStatus, target: &str, how: CopyHow<'_>) -> CliResult {
    // Its parent must exist (as cp -r); a directory already there is
    // copied into.
    let made = match client.mkdirs(target, false).await {
        Ok(st) => st,
        Err(e @ Error::AlreadyExists { .. }) => match client.status(target).await? {
            st if st.is_dir() => st,
            _ => return Err(e.into()),
        },
        Err(e) => return Err(e.into()),
    };
    let mut failures = Failures::default();
    for e in client.list(&src.path).await? {
        let child = dfs_proto::path::join(target, e.name());
        let path = e.path.clone();
        let r = if e.is_dir() {
            Box::pin(cp_dir(client, e, &child, how)).await
        } else {
            cp_file(client, &e, &child, how).await
        };
        failures.note_path(&path, r)?;
    }
    if how.preserve {
        // Last: adding the children changed the directory's mtime.
        failures.note(
            client
                .set_attr(target, preserved_mode_and_times(&src))
                .await
                .map(drop)
                .map_err(Into::into),
        )?;
        let have = (made.owner.as_str(), made.group.as_str());
        failures.note(preserve_owner(client, target, target, &src, have, how.unpreserved).await)?;
    }
    failures.finish()
}

/// `dfs get REMOTE LOCAL`.
/// A pattern matching several paths copies each into the local directory
/// (or to stdout).
pub(crate) async fn get(client: &Client, args: GetArgs) -> CliResult {
    let remotes = expand(client, &args.remote).await?;
    if let [remote] = remotes.as_slice() {
        return get_path(client, remote, &args.local, args.force).await;
    }
    let local_is_dir = tokio::fs::metadata(&args.local)
        .await
        .is_ok_and(|m| m.is_dir());
    if args.local != "-" && !local_is_dir {
        return Err(CliError::Told(format!(
            "{}: not a directory ({} matches {} paths)",
            args.local,
            args.remote,
            remotes.len()
        )));
    }
    let mut failures = Failures::default();
    for r in &remotes {
        failures.note_path(r, get_path(client, r, &args.local, args.force).await)?;
    }
    failures.finish()
}

async fn get_path(client: &Client, remote: &str, local_path: &str, force: bool) -> CliResult {
    let st = client.status(remote).await?;
    if local_path == "-" {
        if st.is_dir() {
            return Err(Error::IsADirectory { path: st.path }.into());
        }
        let reader = client.open(&st.path).await?;
        return copy_to_local(reader, stdout_file()?, ProgressBar::hidden(), "stdout").await;
    }
    let local_target = match tokio::fs::metadata(local_path).await {
        Ok(m) if m.is_dir() => Path::new(local_path).join(st.name()),
        _ => PathBuf::from(local_path),
    };
    if st.is_dir() {
        get_dir(client, &st.path, &local_target, force).await
    } else {
        get_one(client, &st.path, &local_target, force).await
    }
}

async fn get_one(client: &Client, remote: &str, target: &Path, force: bool) -> CliResult {
    let target_str = target.display().to_string();
    let existing = tokio::fs::symlink_metadata(target).await.ok();
    if !force && existing.is_some() {
        return Err(CliError::Local {
            path: target_str,
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "file exists (use -f to replace it)",
            ),
        });
    }
    // As cp: a symbolic link is written through (its target replaced, not
    // the link), and a device, FIFO or socket is written into, never
    // replaced (`dfs get -f F /dev/null` replaced /dev/null for everyone).
    let resolved;
    let target = match &existing {
        Some(m) if m.file_type().is_symlink() => {
            resolved = tokio::fs::canonicalize(target)
                .await
                .map_err(|e| CliError::Local {
                    path: target_str.clone(),
                    source: std::io::Error::new(
                        e.kind(),
                        format!(
                            "not writing through a symbolic link whose target is unreachable: {e}"
                        ),
                    ),
                })?;
            resolved.as_path()
        }
        _ => target,
    };
    if let Ok(m) = tokio::fs::metadata(target).await {
        if m.is_dir() {
            // Name the link only where there is one.
            let through_link = existing
                .as_ref()
                .is_some_and(|m| m.file_type().is_symlink());
            let text = if through_link {
                "is a directory (through a symbolic link)"
            } else {
                "is a directory"
            };
            return Err(CliError::Local {
                path: target_str,
                source: std::io::Error::new(std::io::ErrorKind::IsADirectory, text),
            });
        }
        if !m.is_file() {
            let reader = client.open(remote).await?;
            let file = tokio::fs::OpenOptions::new()
                .write(true)
                .open(target)
                .await
                .map_err(local(&target_str))?
                .into_std()
                .await;
            let bar = progress(reader.len(), remote);
            return interruptible(copy_to_local(reader, file, bar, &target_str)).await;
        }
    }
    let reader = client.open(remote).await?;
    let _running = stop::CopyGuard::new();
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = target.with_file_name(copying_name(&name));
    // Only a new file: never one that exists (someone else's copy).
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .await
        .map_err(local(&target_str))?
        .into_std()
        .await;
    let bar = progress(reader.len(), remote);
    let r = interruptible(copy_to_local(reader, file, bar, &target_str)).await;
    let r = match r {
        Ok(()) => tokio::fs::rename(&tmp, target)
            .await
            .map_err(local(&target_str)),
        Err(e) => Err(e),
    };
    if r.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    r
}

async fn get_dir(client: &Client, remote: &str, target: &Path, force: bool) -> CliResult {
    let target_str = target.display().to_string();
    tokio::fs::create_dir_all(target)
        .await
        .map_err(local(&target_str))?;
    let mut failures = Failures::default();
    for e in client.list(remote).await? {
        let child = target.join(e.name());
        let r = if e.is_dir() {
            Box::pin(get_dir(client, &e.path, &child, force)).await
        } else {
            get_one(client, &e.path, &child, force).await
        };
        failures.note_path(&e.path, r)?;
    }
    failures.finish()
}

/// Streams `reader` into `dst`. The verified chunks go to a blocking
/// thread that writes them straight from the reader's buffers (tokio's
/// file and stdout types would copy every byte once more).
async fn copy_to_local(
    mut reader: FileReader,
    dst: std::fs::File,
    bar: ProgressBar,
    dst_name: &str,
) -> CliResult {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(LOCAL_QUEUE);
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut dst = dst;
        while let Some(chunk) = rx.blocking_recv() {
            dst.write_all(&chunk)?;
        }
        dst.flush()
    });
    let mut read_error = None;
    loop {
        match reader.read_bytes().await {
            Ok(chunk) if chunk.is_empty() => break,
            Ok(chunk) => {
                let n = chunk.len() as u64;
                if tx.send(chunk).await.is_err() {
                    break; // the writer failed; its error is below
                }
                bar.inc(n);
            }
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let written = writer.await.map_err(|e| CliError::Local {
        path: dst_name.to_string(),
        source: std::io::Error::other(e),
    })?;
    if let Some(e) = read_error {
        bar.abandon();
        return Err(e.into());
    }
    written.map_err(local(dst_name))?;
    bar.finish_and_clear();
    Ok(())
}

/// Standard output as a file, written without a user-space buffer.
fn stdout_file() -> CliResult<std::fs::File> {
    use std::os::fd::AsFd;
    let fd = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(local("stdout"))?;
    Ok(std::fs::File::from(fd))
}

/// `dfs cat PATH...`.
pub(crate) async fn cat(client: &Client, paths: &[String]) -> CliResult {
    let mut failures = Failures::default();
    for p in &expand_all(client, paths, &mut failures).await? {
        let one = async {
            let st = client.status(p).await?;
            if st.is_dir() {
                return Err(Error::IsADirectory { path: st.path }.into());
            }
            let reader = client.open(&st.path).await?;
            copy_to_local(reader, stdout_file()?, ProgressBar::hidden(), "stdout").await
        };
        failures.note_path(p, one.await)?;
    }
    failures.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copying_names_are_unique_and_fit_any_name() {
        let a = copying_name("report");
        assert!(a.starts_with("report.") && a.ends_with(COPYING), "{a}");
        assert_ne!(a, copying_name("report"));
        for name in ["x".repeat(255), "é".repeat(127), "ab".into()] {
            let t = copying_name(&name);
            assert!(t.len() <= MAX_NAME && t.ends_with(COPYING), "{t}");
            assert!(name.starts_with(t.split_at(t.len() - 19).0));
        }
        assert!(remote_copying_path("/a/b/report").starts_with("/a/b/report."));
        assert!(remote_copying_path("/report").starts_with("/report."));
    }
}
