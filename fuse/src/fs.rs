//! [`DfsFs`], the mount's filesystem: the work behind each kernel request,
//! as helpers returning `Result<_, Errno>` over the client library. The
//! `fuser::Filesystem` methods (module `kernel`) only decode arguments and
//! run a helper whose result becomes the reply: polled first on the FUSE
//! worker thread, and moved to a task on the tokio runtime at its first
//! wait (see `kernel` for why, and for WRITE, the exception). The helpers
//! live by concern: module `lookup` holds the name lookups (located
//! status, statahead, read-ahead of small files), `open` opening files and
//! reading them, `write` the files being written (flush, truncation,
//! setattr, commits at unmount) and `namespace` the namespace changes
//! (mkdir, create, unlink, rmdir, rename); this module keeps the
//! shared state and the small helpers they all use (namenode calls, paths,
//! attributes, listings). Every namenode call is bounded by the RPC timeout
//! and every data wait by the data timeout, so a dead cluster turns into
//! EIO, never into a hung process.

use std::ffi::OsStr;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use dfs_client::{Client, FileStatus, FileType as DfsFileType, FsStats, LocatedStatus};
use dfs_proto::defaults::{self, LIST_PAGE, MAX_NAME_LEN};
use fuser::{Errno, FileAttr, FileType, INodeNo, Notifier};
use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use crate::attr::{self, file_attr, now_ms, Owners};
use crate::dirs::FIRST_ENTRY;
use crate::errno::{errno, is_expected, path_errno};
use crate::handles::Handles;
use crate::inodes::{InodeTable, Stale};
use crate::located::RecentLookups;
use crate::prefetch::Prefetch;
use crate::statahead::Statahead;

mod kernel;
mod lookup;
mod namespace;
mod open;
mod write;

pub use kernel::Kernel;

/// Largest write the kernel sends in one request.
pub const MAX_WRITE: u32 = 1024 * 1024;

/// Extra time given to the client's own RPC timeout before this layer gives up.
const RPC_SLACK: Duration = Duration::from_millis(500);

/// Commits running in the background at once; more wait for their turn,
/// and the FLUSH of a file being written waits for a free one (bounded).
const MAX_PENDING_COMMITS: usize = 128;

/// Tunables of the mount.
#[derive(Debug, Clone)]
pub struct FsOptions {
    /// How long the kernel caches attributes.
    pub attr_ttl: Duration,
    /// How long the kernel caches names.
    pub entry_ttl: Duration,
    /// How long the kernel, and the statahead, take a name for absent.
    pub negative_ttl: Duration,
    /// Bytes read ahead of a sequential reader.
    pub read_ahead: u64,
    /// Bound on one namenode call.
    pub rpc_timeout: Duration,
}

impl FsOptions {
    /// Bound on one data wait (a write accepted, a chunk read, a commit):
    /// longer than an RPC, and than a writer's recovery from a datanode
    /// of a 3-node pipeline that hangs (its ack timeout, then the
    /// recovery), with a namenode call to spare; shorter, the mount failed
    /// writes with EIO that the client library was about to finish.
    pub fn data_timeout(&self) -> Duration {
        self.write_timeout(dfs_proto::defaults::REPLICATION)
    }

    /// Bound on a data wait of a writer whose pipeline has up to
    /// `replication` nodes: the data timeout, longer for more than 3 (each
    /// node adds to the time a hung one takes to be noticed).
    pub fn write_timeout(&self, replication: u32) -> Duration {
        let client = dfs_client::ClientOptions {
            rpc_timeout: self.rpc_timeout,
            ..Default::default()
        };
        let nodes = replication.max(dfs_proto::defaults::REPLICATION) as usize;
        (self.rpc_timeout * 6)
            .max(Duration::from_secs(30))
            .max(client.pipeline_stall_limit(nodes) + self.rpc_timeout)
    }
}

/// The mounted filesystem.
pub struct DfsFs {
    rt: Handle,
    client: Client,
    inodes: InodeTable,
    handles: Handles,
    lookups: RecentLookups<LocatedStatus>,
    statahead: Statahead<LocatedStatus>,
    prefetch: Prefetch,
    owners: Owners,
    opts: FsOptions,
    commits: Arc<Semaphore>,
    statfs: Mutex<Option<(Instant, FsStats)>>,
    /// Tells the kernel to drop what it cached (set once mounted).
    notifier: OnceLock<Notifier>,
}

impl std::fmt::Debug for DfsFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DfsFs")
            .field("namenode", &self.client.namenode_addr())
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

/// A name from the kernel as a valid dfs name.
fn name_of(name: &OsStr) -> Result<&str, Errno> {
    let name = name.to_str().ok_or(Errno::EINVAL)?;
    if name.len() > MAX_NAME_LEN {
        return Err(Errno::ENAMETOOLONG);
    }
    dfs_proto::path::validate_name(name).map_err(|e| path_errno(&e))?;
    Ok(name)
}

/// The errno for a call on an inode (through its inode path `target`)
/// that failed: ENOENT means the inode is gone (deleted, or replaced by
/// another client), and ESTALE has the kernel look the name up afresh,
/// where ENOENT would end an open or stat of a path that names a new file.
pub(crate) fn stale_if_gone(e: Errno, path: &str, target: &str) -> Errno {
    if e == Errno::ENOENT && path != target {
        debug!(path = %path, "inode removed or replaced by another client");
        Errno::ESTALE
    } else {
        e
    }
}

fn stale_errno(stale: Stale) -> Errno {
    match stale {
        Stale::Unknown => Errno::ESTALE,
        Stale::Gone => Errno::ENOENT,
    }
}

/// The attributes of a file just created, before the namenode is asked again.
fn new_file_status(path: &str, mode: u32, owner: String, group: String) -> FileStatus {
    let now = now_ms();
    FileStatus {
        path: path.to_string(),
        file_type: DfsFileType::File,
        length: 0,
        replication: 0,
        block_size: 0,
        owner,
        group,
        mode: mode & 0o7777,
        mtime: now,
        atime: now,
        inode: 0,
        under_construction: true,
    }
}

/// Attributes for entries the kernel does not link (`.`, `..`, negative entries).
fn placeholder_attr(ino: u64, kind: FileType) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: 0,
        blocks: 0,
        atime: SystemTime::UNIX_EPOCH,
        mtime: SystemTime::UNIX_EPOCH,
        ctime: SystemTime::UNIX_EPOCH,
        crtime: SystemTime::UNIX_EPOCH,
        kind,
        perm: 0o755,
        nlink: 2,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: attr::IO_BLOCK_SIZE,
        flags: 0,
    }
}

impl DfsFs {
    /// A filesystem over `client`, running its calls on `rt`.
    pub fn new(rt: Handle, client: Client, opts: FsOptions) -> DfsFs {
        DfsFs {
            rt,
            client,
            inodes: InodeTable::new(),
            lookups: RecentLookups::new(opts.entry_ttl),
            statahead: Statahead::new(opts.entry_ttl),
            prefetch: Prefetch::new(),
            handles: Handles::new(),
            owners: Owners::load(),
            opts,
            commits: Arc::new(Semaphore::new(MAX_PENDING_COMMITS)),
            statfs: Mutex::new(None),
            notifier: OnceLock::new(),
        }
    }

    fn block<F: Future>(&self, fut: F) -> F::Output {
        self.rt.block_on(fut)
    }

    /// A namenode call bounded by the RPC timeout, with its error logged
    /// (quietly for ordinary answers such as "no such file").
    async fn call<T>(
        &self,
        op: &str,
        path: &str,
        fut: impl Future<Output = dfs_client::Result<T>>,
    ) -> Result<T, Errno> {
        self.bounded(op, path, fut).await?.map_err(|e| {
            if is_expected(&e) {
                debug!(op = %op, path = %path, error = %e, "refused");
            } else {
                warn!(op = %op, path = %path, error = %e, "failed");
            }
            errno(&e)
        })
    }

    /// [`call`](Self::call) for a caller that handles the client's answer,
    /// errors included, itself: bounded the same way; only no answer in
    /// time is logged here (and is `EIO`).
    async fn bounded<T>(
        &self,
        op: &str,
        path: &str,
        fut: impl Future<Output = dfs_client::Result<T>>,
    ) -> Result<dfs_client::Result<T>, Errno> {
        let started = Instant::now();
        // The client bounds each call by the RPC timeout itself, but waits
        // out a namenode's start-up safe mode longer.
        let bound = self.opts.rpc_timeout.max(defaults::SAFE_MODE_WAIT) + RPC_SLACK;
        match tokio::time::timeout(bound, fut).await {
            Ok(r) => {
                if r.is_ok() {
                    debug!(op = %op, path = %path, elapsed = ?started.elapsed(), "done");
                }
                Ok(r)
            }
            Err(_) => {
                warn!(
                    op = %op,
                    path = %path,
                    timeout = ?self.opts.rpc_timeout,
                    "no answer from the namenode in time; is it running?"
                );
                Err(Errno::EIO)
            }
        }
    }

    fn path_of(&self, ino: u64) -> Result<String, Errno> {
        self.inodes.path(ino).map_err(stale_errno)
    }

    fn child_path(&self, parent: u64, name: &str) -> Result<String, Errno> {
        self.inodes.child_path(parent, name).map_err(stale_errno)
    }

    /// The path of `name` in `parent` (for messages) and how the namenode
    /// is to find it: through the parent's inode path
    /// (`/.reserved/.inodes/ID/NAME`), so that a rename of the parent, or
    /// of a directory above it, by another client cannot make the call act
    /// on whatever took the old path (an unlink through a directory
    /// descriptor deleting a file of the new directory of that name).
    fn child_ref(&self, parent: u64, name: &str) -> Result<(String, String), Errno> {
        let path = self.child_path(parent, name)?;
        let target = match self.inodes.nn_id(parent) {
            0 => path.clone(),
            id => dfs_proto::path::inode_path(id, Some(name)),
        };
        Ok((path, target))
    }

    /// The path of `ino` (for messages) and its inode path, as
    /// [`child_ref`](Self::child_ref). A call through the inode path that
    /// finds it gone goes through [`stale_if_gone`].
    fn inode_ref(&self, ino: u64) -> Result<(String, String), Errno> {
        let path = self.path_of(ino)?;
        let target = self.inode_target(ino, &path);
        Ok((path, target))
    }

    /// The inode path of `ino`, or `path` while its namenode id is unknown.
    fn inode_target(&self, ino: u64, path: &str) -> String {
        match self.inodes.nn_id(ino) {
            0 => path.to_string(),
            id => dfs_proto::path::inode_path(id, None),
        }
    }

    fn attr(&self, ino: u64, status: &FileStatus) -> FileAttr {
        match self
            .handles
            .writer(ino)
            .and_then(|w| w.overlay(Some(status)))
        {
            Some(s) => {
                self.inodes.tell_growing(ino, false);
                file_attr(ino, &s, &self.owners)
            }
            None => {
                self.inodes
                    .tell_growing(ino, status.under_construction && !status.is_dir());
                file_attr(ino, status, &self.owners)
            }
        }
    }

    /// The path and namenode status of `ino`, checked to still be the same
    /// file. Asked by inode: after another client renamed it (or a
    /// directory above it), this is still the file, at its current path.
    async fn stat(&self, ino: u64) -> Result<(String, FileStatus), Errno> {
        let (path, target) = self.inode_ref(ino)?;
        let status = match self
            .call("getattr", &path, self.client.status(&target))
            .await
        {
            Ok(s) => s,
            // The inode is gone (deleted, or replaced by another client):
            // ESTALE has the kernel look the name up afresh, where ENOENT
            // would end an open or stat of a path that names a new file.
            Err(e) => return Err(stale_if_gone(e, &path, &target)),
        };
        let path = if status.path.is_empty() {
            path
        } else {
            status.path.clone()
        };
        if !self.inodes.confirm(ino, status.inode) {
            debug!(path = %path, "inode replaced by another client");
            return Err(Errno::ESTALE);
        }
        Ok((path, status))
    }

    /// Lets the mount tell the kernel to drop the cached pages of a file
    /// after a refused write; the session's, once mounted.
    pub fn set_notifier(&self, notifier: Notifier) {
        let _ = self.notifier.set(notifier);
    }

    /// Has the kernel drop what it caches of `name` in `parent`, after a
    /// MKDIR, CREATE or RENAME found it existing: the kernel took it for
    /// absent (a negative entry, cached for the entry timeout, made before
    /// another client created it), and would go on answering ENOENT for it
    /// (`mkdir -p` then fails: EEXIST, and the stat that follows ENOENT).
    /// Sent from a blocking thread: the kernel holds the directory's lock
    /// until the call it waits on is answered.
    fn forget_entry(&self, parent: u64, name: &str) {
        let Some(notifier) = self.notifier.get().cloned() else {
            return;
        };
        let name = name.to_string();
        self.rt.spawn_blocking(move || {
            if let Err(e) = notifier.inval_entry(INodeNo(parent), std::ffi::OsStr::new(&name)) {
                debug!(parent, name, error = %e, "cannot drop the kernel's cached entry");
            }
        });
    }

    /// Has the kernel drop the pages it caches of `ino` (after a write the
    /// mount refused: a write through a shared mapping leaves its bytes in
    /// the page cache, where every reader would see what was never stored).
    /// Sent from a blocking thread once the refusal is answered: the kernel
    /// waits for the pages' writeback, which waits for that answer.
    fn drop_cached_pages(&self, ino: u64) {
        let Some(notifier) = self.notifier.get().cloned() else {
            return;
        };
        self.rt.spawn_blocking(move || {
            // ENOENT: the kernel holds nothing of the inode any more.
            if let Err(e) = notifier.inval_inode(INodeNo(ino), 0, 0) {
                debug!(ino, error = %e, "cannot drop the kernel's cached pages");
            }
        });
    }

    /// GETATTR of `ino` (with the handle `fh` the kernel names for reads
    /// near the end of a file): a file removed or replaced since it was
    /// opened still answers while it is open (fstat, reads to its end),
    /// from the status it was opened with, as an open file does on a local
    /// disk.
    async fn getattr_handle(&self, ino: u64, fh: Option<u64>) -> Result<FileAttr, Errno> {
        let res = self.getattr_of(ino).await;
        let Err(Errno::ENOENT | Errno::ESTALE) = res else {
            return res;
        };
        match self.handles.reader_of(ino, fh) {
            Some(reader) => Ok(file_attr(ino, reader.status(), &self.owners)),
            None => res,
        }
    }

    async fn getattr_of(&self, ino: u64) -> Result<FileAttr, Errno> {
        // A file this mount is writing: known here better than at the namenode.
        if let Some(status) = self
            .handles
            .active_writer(ino)
            .and_then(|w| w.overlay(None))
        {
            return Ok(file_attr(ino, &status, &self.owners));
        }
        if let Some(status) = self.inodes.cached_dir(ino, self.opts.attr_ttl) {
            return Ok(file_attr(ino, &status, &self.owners));
        }
        let (_, status) = self.stat(ino).await?;
        self.inodes.cache_dir(ino, &status);
        Ok(self.attr(ino, &status))
    }

    /// Notes that the mount changed directory `parent` at `mtime_ms`.
    fn dir_changed(&self, parent: u64, mtime_ms: i64) {
        self.statahead.forget_dir(parent);
        self.inodes.dir_changed(parent, mtime_ms);
    }

    async fn readdir_entries(
        &self,
        ino: u64,
        fh: u64,
        offset: u64,
        mut add: impl FnMut(u64, u64, &str, Option<&FileStatus>) -> bool,
    ) -> Result<(), Errno> {
        let dir = self.handles.dir(fh).ok_or(Errno::EBADF)?;
        let mut stream = dir.lock().await;
        let mut cookie = offset;
        if cookie == 0 {
            if add(ino, 1, ".", None) {
                return Ok(());
            }
            cookie = 1;
        }
        if cookie == 1 {
            if add(self.inodes.parent(ino), FIRST_ENTRY, "..", None) {
                return Ok(());
            }
            cookie = FIRST_ENTRY;
        }
        let path = stream.path().to_string();
        // Listed by inode: a directory renamed by another client is still
        // the one listed, not whatever took its old path.
        let target = self.inode_target(ino, &path);
        let mut added = false;
        loop {
            let index = cookie - FIRST_ENTRY;
            let entry = stream
                .entry(index, |after| {
                    let (client, path, target) =
                        (self.client.clone(), path.clone(), target.clone());
                    async move {
                        self.call(
                            "readdir",
                            &path,
                            client.list_page(&target, &after, LIST_PAGE),
                        )
                        .await
                    }
                })
                .await;
            let status = match entry {
                Ok(Some(status)) => status.clone(),
                Ok(None) => return Ok(()),
                // Entries already added are delivered; the next call reports it.
                Err(_) if added => return Ok(()),
                Err(e) => return Err(e),
            };
            cookie += 1;
            if add(ino, cookie, status.name(), Some(&status)) {
                return Ok(());
            }
            added = true;
        }
    }

    async fn statfs_of(&self) -> Result<FsStats, Errno> {
        if let Some((at, stats)) = self.statfs.lock().as_ref() {
            if at.elapsed() < self.opts.attr_ttl {
                return Ok(*stats);
            }
        }
        let stats = self.call("statfs", "/", self.client.statfs()).await?;
        *self.statfs.lock() = Some((Instant::now(), stats));
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(name_of(OsStr::new("a.txt")), Ok("a.txt"));
        assert_eq!(
            name_of(OsStr::new(&"x".repeat(256))),
            Err(Errno::ENAMETOOLONG)
        );
        assert_eq!(name_of(OsStr::new("..")), Err(Errno::EINVAL));
        assert_eq!(name_of(OsStr::new("a\0b")), Err(Errno::EINVAL));
    }

    #[test]
    fn data_timeout_outlasts_a_pipeline_recovery() {
        let opts = |rpc| FsOptions {
            attr_ttl: Duration::from_secs(1),
            entry_ttl: Duration::from_secs(1),
            negative_ttl: Duration::ZERO,
            read_ahead: 4 << 20,
            rpc_timeout: Duration::from_secs(rpc),
        };
        // Ack timeout 20 s + 3 × 5 s, setup 10 s, then two calls of 5 s.
        assert_eq!(opts(5).data_timeout(), Duration::from_secs(55));
        // 20 + 15, 10, 10 + 10.
        assert_eq!(opts(10).data_timeout(), Duration::from_secs(65));
        assert_eq!(opts(30).data_timeout(), Duration::from_secs(180));
        // A pipeline of 5: 20 + 25, 10, 5 + 5.
        assert_eq!(opts(5).write_timeout(5), Duration::from_secs(65));
        assert_eq!(opts(5).write_timeout(1), Duration::from_secs(55));
    }
}
