//! Files being written: waiting for a closed writer's commit (settle),
//! FLUSH and fsync (which also store the attributes set while writing),
//! opening for writing, truncation (only to 0, which
//! re-creates the file), SETATTR (which may truncate, and leaves the
//! attributes of a file being written to its writer) and completing the
//! files still being written at unmount.

use std::sync::Arc;
use std::time::Duration;

use dfs_client::{CreateOptions, FileStatus, FileWriter, SetAttr};
use fuser::{Errno, FileAttr, TimeOrNow};
use tracing::{info, warn};

use super::{new_file_status, stale_if_gone, DfsFs, MAX_PENDING_COMMITS};
use crate::attr::{file_attr, ms_from_time, now_ms};
use crate::errno::errno;
use crate::writer::{Phase, Writer};

/// How long a commit waits for RELEASE after every handle saw a FLUSH:
/// `close()` returns at FLUSH, and RELEASE follows asynchronously.
const RELEASE_GRACE: Duration = Duration::from_secs(1);

fn time_ms(t: TimeOrNow) -> i64 {
    match t {
        TimeOrNow::SpecificTime(t) => ms_from_time(t),
        TimeOrNow::Now => now_ms(),
    }
}

/// How long a replace waits for another client's file to be committed.
const COMMIT_GRACE: Duration = Duration::from_secs(2);

/// Options that re-create `old` empty with its attributes.
fn replace_options(old: &FileStatus) -> CreateOptions {
    CreateOptions {
        overwrite: true,
        create_parents: false,
        replication: (old.replication > 0).then_some(old.replication),
        block_size: (old.block_size > 0).then_some(old.block_size),
        mode: Some(old.mode & 0o7777),
        owner: Some(old.owner.clone()),
        group: Some(old.group.clone()),
        lazy_first_block: false,
    }
}

impl DfsFs {
    /// Waits until a writer of `ino` that looks closed has committed, so a
    /// reader or a namespace change sees the complete file. Returns the
    /// writer if it is still open (a descriptor is still held somewhere).
    pub(super) async fn settle(&self, ino: u64) -> Option<Arc<Writer>> {
        let w = self.handles.active_writer(ino)?;
        self.settle_writer(&w).await.then_some(w)
    }

    /// True if `w` is still open after waiting for its commit.
    pub(super) async fn settle_writer(&self, w: &Writer) -> bool {
        if w.phase() == Phase::Open && w.all_flushed() {
            w.wait_released(RELEASE_GRACE).await;
        }
        if w.phase() == Phase::Committing
            && !w.wait_done(self.opts.write_timeout(w.replication())).await
        {
            warn!(path = %w.path(), "commit still running; going on without it");
        }
        w.phase() == Phase::Open
    }

    /// FLUSH (`fsync` false) or fsync (`fsync` true) of handle `fh`: for a
    /// handle that writes, waits for its bytes to be acknowledged (fsync
    /// also tells the namenode the length); for any other, nothing.
    pub(super) async fn sync_handle(&self, fh: u64, fsync: bool) -> Result<(), Errno> {
        let Some(w) = self.handles.file(fh).and_then(|f| f.writer.clone()) else {
            return Ok(());
        };
        let limit = self.opts.write_timeout(w.replication());
        // The bytes go to the datanodes and the attributes set while
        // writing, if any, to the namenode (`Writer::store_deferred_attrs`)
        // at once; with none, the store is an immediate Ok.
        let bytes = async {
            if fsync {
                w.hflush(limit).await
            } else {
                w.flush(limit).await
            }
        };
        let attrs = async {
            if !w.attrs_due() {
                return Ok(());
            }
            let path = w.path();
            let stored = self
                .call("setattr", &path, w.store_deferred_attrs(&self.client))
                .await;
            // fsync reports a failure (below); close() succeeds, saying why.
            match &stored {
                Err(e) if !fsync && *e == Errno::ENOENT => warn!(
                    path = %path,
                    "the file being written was deleted by another client (or another file was renamed over it): \
                     its attributes are not stored and it will not be completed"
                ),
                // The bytes are safe and the commit still carries the attributes.
                Err(_) if !fsync => warn!(
                    path = %path,
                    "attributes set while writing not stored at close; they go with the commit"
                ),
                _ => {}
            }
            stored
        };
        let (bytes, attrs) = tokio::join!(bytes, attrs);
        if fsync {
            // fsync's own errno for "not all of it is stored".
            return bytes.and(attrs.map_err(|_| Errno::EIO));
        }
        bytes?;
        if w.is_writing() {
            self.wait_commit_slot(&w).await;
        }
        Ok(())
    }

    /// The writer a handle opened for writing on `ino` shares: the
    /// writer of a descriptor still open, else a new one (after the
    /// commit of a writer whose descriptors were all closed, so the new
    /// handle works on the complete file: replaces it with `trunc`, is
    /// refused appends without).
    pub(super) async fn open_write(&self, ino: u64, trunc: bool) -> Result<Arc<Writer>, Errno> {
        let _one_at_a_time = self.handles.lock_ino(ino).await;
        self.lookups.forget(ino);
        if let Some(w) = self.handles.active_writer(ino) {
            // close() returns at FLUSH, before RELEASE: wait for a RELEASE
            // that is due, and for the commit it starts.
            let open = self.settle_writer(&w).await;
            if open && w.attach() {
                if trunc {
                    if let Err(e) = self.truncate_writer(&w, 0).await {
                        self.detach_writer(w);
                        return Err(e);
                    }
                }
                return Ok(w);
            }
            if open {
                // Released just now: its commit has not been waited for.
                w.wait_done(self.opts.write_timeout(w.replication())).await;
            }
        }
        let path = self.path_of(ino)?;
        let writer = if trunc {
            let (fw, status) = self.recreate(ino, &path).await?;
            Writer::new_file(ino, fw, status)
        } else {
            // Opening a complete file for writing is allowed (touch, or a
            // truncation to 0 that follows); appending to it is not.
            Writer::existing(ino, path)
        };
        let writer = Arc::new(writer);
        self.handles.set_writer(writer.clone());
        Ok(writer)
    }

    /// Drops one handle of `w`; after the last one the file is committed
    /// in the background (close() already returned at FLUSH): a file being
    /// written takes one of `MAX_PENDING_COMMITS` slots for its commit, in
    /// turn; a writer with nothing to complete (an existing file opened
    /// for writing, a failed one) finishes at once.
    pub(super) fn detach_writer(&self, w: Arc<Writer>) {
        if !w.detach() {
            return;
        }
        let commits = w.is_writing().then(|| self.commits.clone());
        let (client, limit) = (
            self.client.clone(),
            self.opts.write_timeout(w.replication()),
        );
        self.rt.spawn(async move {
            let _slot = match commits {
                Some(commits) => commits.acquire_owned().await.ok(),
                None => None,
            };
            w.commit(&client, limit).await;
        });
    }

    /// The back-pressure on writers (at the FLUSH of a file being written,
    /// after its bytes are safe): while every commit slot is taken, close()
    /// waits for a free one, at most the data timeout, so a program that
    /// closes files faster than the cluster completes them is slowed down
    /// instead of piling up closed files that each hold a pipeline and a
    /// lease. It holds no lock of the kernel's or the mount's meanwhile
    /// (CREATE would: the kernel holds the directory for it), and never
    /// fails the close: after the timeout it goes on, with a warning.
    async fn wait_commit_slot(&self, w: &Writer) {
        if self.commits.available_permits() > 0 {
            return;
        }
        let limit = self.opts.data_timeout();
        if tokio::time::timeout(limit, self.commits.acquire())
            .await
            .is_err()
        {
            warn!(
                path = %w.path(),
                waited = ?limit,
                "{MAX_PENDING_COMMITS} closed files are still being completed; is the cluster slow?"
            );
        }
    }

    /// `ino` now stands for the file the namenode created again as
    /// `nn_id`: lookups and listed pages answered before hold the old file
    /// (its blocks, its length) and must not be used to open the new one.
    fn replaced(&self, ino: u64, nn_id: u64) {
        self.inodes.replace_id(ino, nn_id);
        self.lookups.forget(ino);
        self.statahead.forget_dir(self.inodes.parent(ino));
    }

    /// Replaces the file at `path` by an empty one with the attributes of
    /// `old`. A file another client is still committing (its `close()`
    /// returned, its completion is in flight: a few ms) is waited for, up to
    /// [`COMMIT_GRACE`], rather than refused with EBUSY at once; one still
    /// open for writing elsewhere is refused (EBUSY) after that, until its
    /// writer's lease is past the soft limit (the writer is gone).
    async fn replace(&self, path: &str, old: &FileStatus) -> Result<FileWriter, Errno> {
        let started = tokio::time::Instant::now();
        let mut delay = Duration::from_millis(10);
        loop {
            let create = self.client.create(path, replace_options(old));
            match self.bounded("truncate", path, create).await? {
                Ok(fw) => return Ok(fw),
                Err(dfs_client::Error::LeaseHeld { .. })
                    if started.elapsed() + delay < COMMIT_GRACE =>
                {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_millis(200));
                }
                Err(e) => {
                    warn!(op = "truncate", path = %path, error = %e, "failed");
                    return Err(errno(&e));
                }
            }
        }
    }

    /// Re-creates the file at `path` empty, keeping its attributes.
    async fn recreate(&self, ino: u64, path: &str) -> Result<(FileWriter, FileStatus), Errno> {
        // The file as it is now, at its current path (another client may
        // have moved it): what takes the path it had is not replaced.
        let (current, old) = self.stat(ino).await?;
        if old.is_dir() {
            return Err(Errno::EISDIR);
        }
        let path = if current.is_empty() {
            path
        } else {
            current.as_str()
        };
        let fw = self.replace(path, &old).await?;
        let status = new_file_status(path, old.mode, old.owner, old.group);
        self.replaced(ino, fw.inode());
        Ok((fw, status))
    }

    /// A truncation of a file with a writer in this mount.
    async fn truncate_writer(&self, w: &Arc<Writer>, size: u64) -> Result<(), Errno> {
        if w.is_existing().await {
            if size != 0 {
                let (path, status) = self.stat(w.ino()).await?;
                return self.truncate_refused(&path, size, status.length);
            }
            let (fw, status) = self.recreate(w.ino(), &w.path()).await?;
            if let Err(fw) = w.replace(fw, status).await {
                // Someone else finished the writer meanwhile: complete the new empty file.
                let _ = tokio::time::timeout(self.opts.data_timeout(), fw.close()).await;
            }
            return Ok(());
        }
        let len = w.bytes();
        if size != len {
            warn!(
                path = %w.path(),
                size,
                length = len,
                "truncate refused: the file is being written, and a file being written only grows by writes at its end"
            );
            return Err(Errno::EPERM);
        }
        Ok(())
    }

    fn truncate_refused(&self, path: &str, size: u64, len: u64) -> Result<(), Errno> {
        if size == len {
            return Ok(());
        }
        warn!(
            path = %path,
            size,
            length = len,
            "truncate refused: dfs files are write-once; only truncating to 0 (which replaces the file) is supported"
        );
        Err(Errno::EPERM)
    }

    async fn truncate(&self, ino: u64, size: u64) -> Result<(), Errno> {
        let _one_at_a_time = self.handles.lock_ino(ino).await;
        if let Some(w) = self.handles.active_writer(ino) {
            // A writer whose descriptors were all closed is committed
            // first: its file is then truncated as a complete one.
            if self.settle_writer(&w).await {
                return self.truncate_writer(&w, size).await;
            }
        }
        let (path, status) = self.stat(ino).await?;
        if status.is_dir() {
            return Err(Errno::EISDIR);
        }
        if size != 0 || status.length == 0 {
            return self.truncate_refused(&path, size, status.length);
        }
        let fw = self.replace(&path, &status).await?;
        self.replaced(ino, fw.inode());
        match tokio::time::timeout(self.opts.data_timeout(), fw.close()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                warn!(path = %path, error = %e, "truncate: completing the empty file failed");
                Err(errno(&e))
            }
            Err(_) => {
                warn!(path = %path, "truncate: completing the empty file timed out");
                Err(Errno::EIO)
            }
        }
    }

    /// SETATTR of `ino`: a truncation if `size` is given, then the other
    /// attributes, kept by an open writer for the close of its file.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn setattr_of(
        &self,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
    ) -> Result<FileAttr, Errno> {
        if let Some(size) = size {
            self.truncate(ino, size).await?;
        }
        let attrs = SetAttr {
            // What the namenode keeps (rwx and the sticky bit), so a file
            // being written shows the mode it will have.
            mode: mode.map(|m| m & 0o1777),
            owner: uid.map(|u| self.owners.user_name(u)),
            group: gid.map(|g| self.owners.group_name(g)),
            mtime: mtime.map(time_ms),
            atime: atime.map(time_ms),
        };
        if attrs.is_empty() {
            return self.getattr_of(ino).await;
        }
        if let Some(w) = self.handles.active_writer(ino) {
            // Stored at the next FLUSH and with the close, so completing
            // cannot undo them.
            if w.defer_attrs(&attrs) {
                if let Some(status) = w.overlay(None) {
                    return Ok(file_attr(ino, &status, &self.owners));
                }
            }
        }
        // By inode: a chmod never lands on what took a moved file's path.
        let (path, target) = self.inode_ref(ino)?;
        let status = self
            .call("setattr", &path, self.client.set_attr(&target, attrs))
            .await
            .map_err(|e| stale_if_gone(e, &path, &target))?;
        // A listed page may hold the old attributes.
        self.statahead.forget_dir(self.inodes.parent(ino));
        if !self.inodes.confirm(ino, status.inode) {
            return Err(Errno::ESTALE);
        }
        self.inodes.cache_dir(ino, &status);
        Ok(self.attr(ino, &status))
    }

    /// Completes every file still being written (at unmount).
    pub(super) async fn drain(&self) {
        let writers = self.handles.active_writers();
        if writers.is_empty() {
            return;
        }
        info!(
            files = writers.len(),
            "completing files still being written before exit"
        );
        let limit = self.opts.data_timeout();
        let waits = writers.into_iter().map(|w| async move {
            if w.release_all() {
                // Handles the kernel never released (a lazy unmount): commit them now.
                w.commit(&self.client, limit).await;
            } else if !w.wait_done(limit).await {
                warn!(path = %w.path(), "file not completed before exit; lease recovery will close it");
            }
        });
        futures::future::join_all(waits).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_keeps_attributes() {
        let mut old = new_file_status("/a", 0o100755, "1000".into(), "100".into());
        old.replication = 2;
        old.block_size = 1 << 20;
        let o = replace_options(&old);
        assert!(o.overwrite);
        assert_eq!(o.mode, Some(0o755));
        assert_eq!(o.owner.as_deref(), Some("1000"));
        assert_eq!(o.replication, Some(2));
        assert_eq!(o.block_size, Some(1 << 20));
    }
}
