//! Writing a file through the mount: write-once, append-only, committed on
//! the last release.
//!
//! One `Writer` exists per inode being written; every file handle opened
//! for writing on that inode shares it. Data is accepted only at the
//! current end of the file. When the kernel releases the last handle the
//! file is committed (`FileWriter::close`) in the background: `close()` in
//! the application returns at FLUSH, before RELEASE arrives, once every
//! byte written is acknowledged by every datanode of the pipeline (so the
//! bytes survive the death of this process: lease recovery completes the
//! file), and the commit then overlaps with whatever the application does
//! next. Operations that
//! need the committed file (open for reading, rename, unlink, overwrite)
//! wait for the commit through [`Writer::wait_done`].
//!
//! Attributes set while a file is written (tar sets them before close) are
//! kept by its writer too (module `attrs`): stored on the namenode by the
//! next FLUSH or fsync, and again with the close, in the same namenode edit
//! that completes the file, so no client sees the file complete without
//! them and completing it cannot overwrite them.

use std::time::{Duration, Instant};

use dfs_client::{Client, FileStatus, FileWriter, SetAttr};
use fuser::Errno;
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tracing::{debug, error, warn};

use crate::attr::now_ms;

mod attrs;
mod recover;

use recover::recover_in_background;

/// Where a writer is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// At least one file handle is open.
    Open,
    /// The last handle was released; the file is being completed.
    Committing,
    /// Completed (or given up); nothing more happens.
    Done,
}

enum State {
    /// An existing, complete file opened for writing: it may only be
    /// replaced (truncated to 0), not appended to.
    Existing,
    /// A new file being written.
    Open(Box<FileWriter>),
    /// A write or flush failed; the file will not be completed.
    Failed(Errno),
    /// Handed to the commit.
    Finished,
}

#[derive(Debug)]
struct Info {
    path: String,
    handles: usize,
    /// Every handle saw a FLUSH (close) after the last write: a RELEASE and
    /// the commit are probably on their way.
    flushed: bool,
    bytes: u64,
    /// Bytes acknowledged by the whole pipeline at the last FLUSH or fsync.
    synced: u64,
    status: Option<FileStatus>,
    pending: SetAttr,
    /// The namenode's inode id of the file written (none for an existing
    /// file opened for writing).
    nn_inode: Option<u64>,
    /// Bumped whenever attributes are deferred.
    pending_gen: u64,
    /// The `pending_gen` last stored on the namenode (at a FLUSH or fsync).
    stored_gen: u64,
    /// Attributes being stored right now (shown until the namenode has them).
    applying: SetAttr,
    last_write_ms: i64,
    failed: Option<Errno>,
    unlinked: bool,
    done_at: Option<Instant>,
}

/// The shared write state of one inode.
pub struct Writer {
    ino: u64,
    state: tokio::sync::Mutex<State>,
    info: Mutex<Info>,
    phase: watch::Sender<Phase>,
    /// Held while deferred attributes are stored, so two FLUSHes of one
    /// file store them in order.
    storing_attrs: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("ino", &self.ino)
            .field("info", &*self.info.lock())
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// A writer for a file just created (`status` as created), with one handle.
    pub fn new_file(ino: u64, writer: FileWriter, status: FileStatus) -> Writer {
        let path = writer.path().to_string();
        let nn_inode = Some(writer.inode());
        Writer::build(
            ino,
            path,
            State::Open(Box::new(writer)),
            Some(status),
            nn_inode,
        )
    }

    /// A writer for an existing complete file opened for writing, with one handle.
    pub fn existing(ino: u64, path: String) -> Writer {
        Writer::build(ino, path, State::Existing, None, None)
    }

    fn build(
        ino: u64,
        path: String,
        state: State,
        status: Option<FileStatus>,
        nn_inode: Option<u64>,
    ) -> Writer {
        Writer {
            ino,
            state: tokio::sync::Mutex::new(state),
            storing_attrs: tokio::sync::Mutex::new(()),
            info: Mutex::new(Info {
                path,
                handles: 1,
                flushed: false,
                bytes: 0,
                synced: 0,
                status,
                pending: SetAttr::default(),
                nn_inode,
                pending_gen: 0,
                stored_gen: 0,
                applying: SetAttr::default(),
                last_write_ms: now_ms(),
                failed: None,
                unlinked: false,
                done_at: None,
            }),
            phase: watch::Sender::new(Phase::Open),
        }
    }

    /// The inode written.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// The path being written.
    pub fn path(&self) -> String {
        self.info.lock().path.clone()
    }

    /// The file was renamed, or a directory above it, from `from` to `to`:
    /// its messages name the new path. (Its namenode calls name the file
    /// by inode, so a rename never loses it.)
    pub fn moved(&self, from: &str, to: &str) {
        let mut info = self.info.lock();
        // (The root is never renamed.)
        if let Some(rest) = info.path.strip_prefix(from) {
            if rest.is_empty() || rest.starts_with('/') {
                info.path = format!("{to}{rest}");
            }
        }
    }

    /// The namenode's inode id of the file written (none for an existing
    /// file opened for writing and not replaced).
    pub fn nn_inode(&self) -> Option<u64> {
        self.info.lock().nn_inode
    }

    /// Replicas of the file being written (0 when not writing a new file).
    pub fn replication(&self) -> u32 {
        self.info
            .lock()
            .status
            .as_ref()
            .map_or(0, |s| s.replication)
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    /// Bytes accepted so far.
    pub fn bytes(&self) -> u64 {
        self.info.lock().bytes
    }

    /// When it finished, if it did.
    pub fn done_at(&self) -> Option<Instant> {
        self.info.lock().done_at
    }

    /// Adds a handle; false when the writer is no longer open (the caller
    /// must wait for it to finish and start a new one).
    pub fn attach(&self) -> bool {
        let mut info = self.info.lock();
        if self.phase() != Phase::Open {
            return false;
        }
        info.handles += 1;
        info.flushed = false;
        true
    }

    /// Drops a handle; true when it was the last one (the caller commits).
    pub fn detach(&self) -> bool {
        let mut info = self.info.lock();
        info.handles = info.handles.saturating_sub(1);
        if info.handles == 0 && self.phase() == Phase::Open {
            self.phase.send_replace(Phase::Committing);
            return true;
        }
        false
    }

    /// Drops every handle (at unmount, for handles the kernel never
    /// released); true if the caller must now commit.
    pub fn release_all(&self) -> bool {
        let mut info = self.info.lock();
        info.handles = 0;
        if self.phase() == Phase::Open {
            self.phase.send_replace(Phase::Committing);
            return true;
        }
        false
    }

    /// True while the file is new and being written (not an existing file
    /// opened for writing, not failed).
    pub fn is_writing(&self) -> bool {
        let info = self.info.lock();
        info.status.is_some() && info.failed.is_none() && self.phase() != Phase::Done
    }

    /// Appends `data`, which must start at the current end of the file.
    pub async fn write(&self, offset: u64, data: &[u8], timeout: Duration) -> Result<(), Errno> {
        let mut state = self.state.lock().await;
        let writer = self.writable(&mut state, offset)?;
        let res = match tokio::time::timeout(timeout, writer.write_all(data)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(io_errno(&e, &self.path(), "write")),
            Err(_) => {
                warn!(path = %self.path(), ?timeout, "write timed out; the file will not be completed");
                Err(Errno::EIO)
            }
        };
        self.wrote(&mut state, res)
    }

    /// Appends as much of `data` (which must start at the current end of
    /// the file) as the pipeline takes within `wait` — counting the wait
    /// for another request of this file — and returns how much that was;
    /// the rest, if any, goes through [`write`](Self::write). So the thread
    /// that read a WRITE from the kernel writes it from the kernel's buffer
    /// while the pipeline keeps up, and hands on (a copy of) only what a
    /// stuck pipeline holds back. Running out of `wait` is not a failure.
    ///
    /// The rest is written after this returns, with the state lock let go:
    /// that relies on the kernel, which holds the inode's lock until the
    /// WRITE is answered (no writeback cache, no parallel direct writes are
    /// negotiated), so no other WRITE, FLUSH, fsync or truncation of the
    /// file comes in between.
    pub async fn write_some(
        &self,
        offset: u64,
        data: &[u8],
        wait: Duration,
    ) -> Result<usize, Errno> {
        let deadline = tokio::time::Instant::now() + wait;
        let Ok(mut state) = tokio::time::timeout_at(deadline, self.state.lock()).await else {
            return Ok(0);
        };
        let writer = self.writable(&mut state, offset)?;
        let mut taken = 0;
        let mut res = Ok(());
        while taken < data.len() {
            // One `write` is cancel-safe: cut off while waiting, it took nothing.
            match tokio::time::timeout_at(deadline, writer.write(&data[taken..])).await {
                Ok(Ok(n)) => taken += n,
                Ok(Err(e)) => {
                    res = Err(io_errno(&e, &self.path(), "write"));
                    break;
                }
                Err(_) => break,
            }
        }
        self.wrote(&mut state, res).map(|()| taken)
    }

    /// The file's writer, if `offset` may be written now (else why not).
    fn writable<'a>(&self, state: &'a mut State, offset: u64) -> Result<&'a mut FileWriter, Errno> {
        if let Some(e) = self.info.lock().failed {
            return Err(e);
        }
        let writer = match state {
            State::Open(w) => w,
            State::Existing => {
                warn!(
                    path = %self.path(),
                    offset,
                    "write refused: the file is complete and dfs files are write-once; \
                     replace it by opening with O_TRUNC (or truncating it to 0) instead"
                );
                return Err(Errno::EPERM);
            }
            State::Failed(e) => return Err(*e),
            State::Finished => {
                warn!(
                    path = %self.path(),
                    offset,
                    "write refused: the file was already completed and dfs files are write-once"
                );
                return Err(Errno::EPERM);
            }
        };
        let end = writer.bytes_written();
        if offset != end {
            warn!(
                path = %self.path(),
                offset,
                end,
                "write refused: dfs files are write-once and only grow at the end \
                 (random writes and rewrites are not supported)"
            );
            return Err(Errno::EPERM);
        }
        Ok(writer)
    }

    /// Records the outcome of a write: the bytes taken, or the failure
    /// (after which the file will not be completed).
    fn wrote(&self, state: &mut State, res: Result<(), Errno>) -> Result<(), Errno> {
        let State::Open(writer) = &*state else {
            return res;
        };
        let bytes = writer.bytes_written();
        let mut info = self.info.lock();
        match res {
            Ok(()) => {
                let grew = bytes > info.bytes;
                info.bytes = bytes;
                info.last_write_ms = now_ms();
                info.flushed = false;
                // A write after an explicit utimens moves the mtime on, as
                // on a local disk (the namenode keeps a time a client set
                // through the close, so the new one must be sent).
                if grew && info.pending.mtime.is_some() {
                    info.pending.mtime = Some(info.last_write_ms);
                    info.pending_gen += 1;
                }
            }
            Err(e) => {
                info.failed = Some(e);
                *state = State::Failed(e);
            }
        }
        res
    }

    /// FLUSH (every `close()` of a descriptor): reports an earlier failure
    /// so `close()` returns it, and otherwise makes every byte written so
    /// far acknowledged by every datanode of the pipeline (hflush), so that
    /// a file whose `close()` returned keeps its bytes even if this process
    /// dies before the commit (lease recovery then completes it at that
    /// length). The commit itself waits for RELEASE.
    pub async fn flush(&self, timeout: Duration) -> Result<(), Errno> {
        {
            let mut info = self.info.lock();
            info.flushed = true;
            if let Some(e) = info.failed {
                return Err(e);
            }
            if info.bytes <= info.synced {
                return Ok(());
            }
        }
        // The namenode learns the length at the commit that follows; the
        // bytes are safe once every datanode has them.
        self.sync(timeout, false).await
    }

    /// fsync: returns once every byte written is acknowledged by every
    /// datanode of the pipeline and the namenode knows the length (so
    /// other clients see it).
    pub async fn hflush(&self, timeout: Duration) -> Result<(), Errno> {
        self.sync(timeout, true).await
    }

    /// Waits until every byte written is acknowledged by every datanode of
    /// the pipeline; with `update_length` the namenode is told the length.
    async fn sync(&self, timeout: Duration, update_length: bool) -> Result<(), Errno> {
        let mut state = self.state.lock().await;
        let State::Open(writer) = &mut *state else {
            return self.info.lock().failed.map_or(Ok(()), Err);
        };
        let flushed = async {
            if update_length {
                writer.hflush().await
            } else {
                writer.hflush_data().await
            }
        };
        let res = match tokio::time::timeout(timeout, flushed).await {
            Ok(Ok(())) => {
                let mut info = self.info.lock();
                info.synced = info.synced.max(writer.bytes_written());
                return Ok(());
            }
            Ok(Err(e)) => {
                warn!(path = %self.path(), error = %e, "fsync failed; the file will not be completed");
                crate::errno::errno(&e)
            }
            Err(_) => {
                warn!(path = %self.path(), ?timeout, "fsync timed out; the file will not be completed");
                Errno::EIO
            }
        };
        self.info.lock().failed = Some(res);
        *state = State::Failed(res);
        Err(res)
    }

    /// Turns an existing file opened for writing into a new, empty one
    /// (after the caller re-created it with overwrite). False if the writer
    /// is not in that state any more (the caller then closes `writer`).
    pub async fn replace(&self, writer: FileWriter, status: FileStatus) -> Result<(), FileWriter> {
        let mut state = self.state.lock().await;
        if !matches!(*state, State::Existing) || self.phase() != Phase::Open {
            return Err(writer);
        }
        let nn_inode = writer.inode();
        *state = State::Open(Box::new(writer));
        let mut info = self.info.lock();
        info.nn_inode = Some(nn_inode);
        info.status = Some(status);
        info.bytes = 0;
        info.synced = 0;
        info.last_write_ms = now_ms();
        Ok(())
    }

    /// True for an existing file opened for writing that was not replaced.
    pub async fn is_existing(&self) -> bool {
        matches!(*self.state.lock().await, State::Existing)
    }

    /// Marks the writer failed (a write's handler panicked, and part of
    /// its data may have been taken): at once, without waiting for a
    /// request of the file that holds it, so the next write, FLUSH or the
    /// commit sees it. The file is then not completed by this mount, as
    /// after any failed write.
    pub fn fail(&self, e: Errno) {
        self.info.lock().failed.get_or_insert(e);
    }

    /// The file was unlinked while open: it will be abandoned, not completed.
    pub fn mark_unlinked(&self) {
        self.info.lock().unlinked = true;
    }

    /// True once the file was unlinked while open.
    pub fn is_unlinked(&self) -> bool {
        self.info.lock().unlinked
    }

    /// True if every handle was closed since the last write.
    pub fn all_flushed(&self) -> bool {
        self.info.lock().flushed
    }

    /// Waits until the writer is done, at most `limit`; true if it is.
    pub async fn wait_done(&self, limit: Duration) -> bool {
        let mut rx = self.phase.subscribe();
        tokio::time::timeout(limit, rx.wait_for(|p| *p == Phase::Done))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Waits until the last handle is released, at most `limit`.
    pub async fn wait_released(&self, limit: Duration) -> bool {
        let mut rx = self.phase.subscribe();
        tokio::time::timeout(limit, rx.wait_for(|p| *p != Phase::Open))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Completes the file (after the last release): close, with the
    /// attributes set while it was written, then store those set during
    /// the close. Bounded by `timeout` per step.
    pub async fn commit(&self, client: &Client, timeout: Duration) {
        // A store of deferred attributes still running (a FLUSH) lands
        // before the close's edit, never after it.
        let _attrs_in_order = self.storing_attrs.lock().await;
        let state = std::mem::replace(&mut *self.state.lock().await, State::Finished);
        let (path, unlinked, failed, nn_inode) = {
            let info = self.info.lock();
            (info.path.clone(), info.unlinked, info.failed, info.nn_inode)
        };
        // A file this mount gives up on is closed by lease recovery now,
        // not at the hard limit.
        let give_up = |path: &str| {
            if let Some(inode) = nn_inode {
                recover_in_background(client.clone(), path.to_string(), inode);
            }
        };
        // Marked failed by `fail` while its state was still open.
        let state = match (state, failed) {
            (State::Open(_), Some(e)) => State::Failed(e),
            (state, _) => state,
        };
        match state {
            State::Open(writer) if unlinked => {
                debug!(path = %path, "file unlinked while open: abandoned");
                writer.abort().await;
            }
            State::Open(mut writer) => {
                // Attributes set while the file was written go with the
                // close, in its edit; those set during the close follow.
                self.attrs_on_close(&mut writer);
                let inode = writer.inode();
                let started = Instant::now();
                match tokio::time::timeout(timeout, writer.close()).await {
                    Ok(Ok(())) => {
                        debug!(path = %path, elapsed = ?started.elapsed(), "file committed");
                        self.store_pending(client, &path, inode, timeout).await;
                    }
                    Ok(Err(e)) => {
                        error!(
                            path = %path,
                            error = %e,
                            "completing the file failed; it stays under construction until lease recovery closes it (asked for now)"
                        );
                        give_up(&path);
                    }
                    Err(_) => {
                        error!(
                            path = %path,
                            ?timeout,
                            "completing the file timed out; it stays under construction until lease recovery closes it (asked for now)"
                        );
                        give_up(&path);
                    }
                }
            }
            State::Failed(e) => {
                warn!(
                    path = %path,
                    errno = e.code(),
                    "file not completed because an earlier write failed; lease recovery closes it with the bytes its datanodes hold"
                );
                give_up(&path);
            }
            State::Existing | State::Finished => {}
        }
        self.finish();
    }

    /// Marks the writer done (also for writers that never wrote).
    pub fn finish(&self) {
        let mut info = self.info.lock();
        if info.done_at.is_none() {
            info.done_at = Some(Instant::now());
        }
        self.phase.send_replace(Phase::Done);
    }
}

/// The errno of an I/O error from the writer, logging it once.
fn io_errno(e: &std::io::Error, path: &str, what: &str) -> Errno {
    let errno = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<dfs_client::Error>())
        .map(crate::errno::errno)
        .unwrap_or_else(|| crate::errno::os_errno(e));
    warn!(path = %path, error = %e, "{what} failed; the file will not be completed");
    errno
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn handles_share_a_writer_and_the_last_release_commits() {
        let w = Writer::existing(5, "/a".into());
        assert_eq!(w.phase(), Phase::Open);
        assert!(w.attach());
        assert!(!w.detach());
        assert!(w.detach());
        assert_eq!(w.phase(), Phase::Committing);
        // A writer being committed takes no new handles.
        assert!(!w.attach());
        w.finish();
        assert_eq!(w.phase(), Phase::Done);
        assert!(w.wait_done(Duration::from_millis(10)).await);
        assert!(w.done_at().is_some());
    }

    #[test]
    fn a_rename_above_the_file_moves_its_path() {
        let w = Writer::existing(2, "/d/f".into());
        w.moved("/dx", "/y");
        assert_eq!(w.path(), "/d/f");
        w.moved("/d", "/e");
        assert_eq!(w.path(), "/e/f");
        w.moved("/e/f", "/g");
        assert_eq!(w.path(), "/g");
        w.moved("/g/", "/h");
        assert_eq!(w.path(), "/g");
    }

    #[tokio::test]
    async fn existing_file_refuses_writes_and_has_no_overlay() {
        let w = Writer::existing(5, "/a".into());
        assert!(w.is_existing().await);
        assert!(!w.is_writing());
        assert_eq!(
            w.write(0, b"x", Duration::from_secs(1)).await,
            Err(Errno::EPERM)
        );
        assert_eq!(
            w.write_some(0, b"x", Duration::from_secs(1)).await,
            Err(Errno::EPERM)
        );
        assert!(w.overlay(None).is_none());
        assert!(!w.defer_attrs(&SetAttr {
            mode: Some(0o600),
            ..SetAttr::default()
        }));
        assert_eq!(w.flush(Duration::from_secs(1)).await, Ok(()));
        assert!(w.all_flushed());
    }

    #[tokio::test]
    async fn a_writer_marked_failed_refuses_writes_and_flushes_at_once() {
        let w = Writer::existing(5, "/a".into());
        w.fail(Errno::EIO);
        assert_eq!(
            w.write_some(0, b"x", Duration::from_secs(1)).await,
            Err(Errno::EIO)
        );
        assert_eq!(w.flush(Duration::from_secs(1)).await, Err(Errno::EIO));
        assert!(!w.is_writing());
    }

    #[tokio::test]
    async fn release_all_and_waits() {
        let w = Writer::existing(5, "/a".into());
        assert!(w.attach());
        assert!(!w.wait_released(Duration::from_millis(10)).await);
        assert!(w.release_all());
        assert!(w.wait_released(Duration::from_millis(10)).await);
        assert!(!w.release_all());
    }

    #[test]
    fn merge_prefers_newer() {
        let mut a = SetAttr {
            mode: Some(0o600),
            mtime: Some(1),
            ..SetAttr::default()
        };
        a.merge(SetAttr {
            mtime: Some(2),
            owner: Some("7".into()),
            ..SetAttr::default()
        });
        assert_eq!(a.mode, Some(0o600));
        assert_eq!(a.mtime, Some(2));
        assert_eq!(a.owner.as_deref(), Some("7"));
        assert!(!a.is_empty());
        assert!(SetAttr::default().is_empty());
    }
}
