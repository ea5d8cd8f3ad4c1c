//! [`DfsFs`], the mount's filesystem: the work behind each kernel request,
//! as helpers returning `Result<_, Errno>` over the client library. The
//! `fuser::Filesystem` methods (module `kernel`) only decode arguments, run a
//! helper on the tokio runtime with `block_on` from fuser's worker threads,
//! and reply; module `lookup` holds the name lookups (located status,
//! statahead, read-ahead of small files). Every namenode call is bounded by
//! the RPC timeout and every data wait by the data timeout, so a dead
//! cluster turns into EIO, never into a hung process.

use std::ffi::OsStr;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use dfs_client::{
    Client, CreateOptions, FileStatus, FileType as DfsFileType, FileWriter, FsStats, LocatedStatus,
    SetAttr,
};
use dfs_proto::defaults::{LIST_PAGE, MAX_NAME_LEN};
use fuser::{
    Errno, FileAttr, FileType, FopenFlags, INodeNo, OpenAccMode, OpenFlags, RenameFlags, TimeOrNow,
};
use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::sync::{OnceCell, Semaphore};
use tracing::{debug, info, warn};

use crate::attr::{self, file_attr, ms_from_time, now_ms, Owners};
use crate::dirs::FIRST_ENTRY;
use crate::errno::{errno, is_expected, path_errno};
use crate::handles::{Handles, OpenFile};
use crate::inodes::{InodeTable, Stale};
use crate::located::RecentLookups;
use crate::prefetch::{Key, Prefetch};
use crate::reader::Reader;
use crate::statahead::Statahead;
use crate::writer::{has_attrs, Phase, Writer};

mod kernel;
mod lookup;

/// Largest write the kernel sends in one request.
pub const MAX_WRITE: u32 = 1024 * 1024;

/// How long a commit waits for RELEASE after every handle saw a FLUSH:
/// `close()` returns at FLUSH, and RELEASE follows asynchronously.
const RELEASE_GRACE: Duration = Duration::from_secs(1);

/// Extra time given to the client's own RPC timeout before this layer gives up.
const RPC_SLACK: Duration = Duration::from_millis(500);

/// Commits running in the background at once; more wait in RELEASE.
const MAX_PENDING_COMMITS: usize = 128;

/// Tunables of the mount.
#[derive(Debug, Clone)]
pub struct FsOptions {
    /// How long the kernel caches attributes.
    pub attr_ttl: Duration,
    /// How long the kernel caches names (and the absence of a name).
    pub entry_ttl: Duration,
    /// Bytes read ahead of a sequential reader.
    pub read_ahead: u64,
    /// Bound on one namenode call.
    pub rpc_timeout: Duration,
}

impl FsOptions {
    /// Bound on one data wait (a write accepted, a chunk read, a commit):
    /// longer than an RPC, as it may include a pipeline recovery.
    pub fn data_timeout(&self) -> Duration {
        (self.rpc_timeout * 6).max(Duration::from_secs(30))
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

fn stale_errno(stale: Stale) -> Errno {
    match stale {
        Stale::Unknown => Errno::ESTALE,
        Stale::Gone => Errno::ENOENT,
    }
}

fn time_ms(t: TimeOrNow) -> i64 {
    match t {
        TimeOrNow::SpecificTime(t) => ms_from_time(t),
        TimeOrNow::Now => now_ms(),
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
        let started = Instant::now();
        match tokio::time::timeout(self.opts.rpc_timeout + RPC_SLACK, fut).await {
            Ok(Ok(v)) => {
                debug!(op = %op, path = %path, elapsed = ?started.elapsed(), "done");
                Ok(v)
            }
            Ok(Err(e)) => {
                if is_expected(&e) {
                    debug!(op = %op, path = %path, error = %e, "refused");
                } else {
                    warn!(op = %op, path = %path, error = %e, "failed");
                }
                Err(errno(&e))
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

    fn attr(&self, ino: u64, status: &FileStatus) -> FileAttr {
        match self
            .handles
            .writer(ino)
            .and_then(|w| w.overlay(Some(status)))
        {
            Some(s) => file_attr(ino, &s, &self.owners),
            None => file_attr(ino, status, &self.owners),
        }
    }

    /// The path and namenode status of `ino`, checked to still be the same file.
    async fn stat(&self, ino: u64) -> Result<(String, FileStatus), Errno> {
        let path = self.path_of(ino)?;
        let status = self
            .call("getattr", &path, self.client.status(&path))
            .await?;
        if !self.inodes.confirm(ino, status.inode) {
            debug!(path = %path, "inode replaced by another client");
            return Err(Errno::ESTALE);
        }
        Ok((path, status))
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

    /// Waits until a writer of `ino` that looks closed has committed, so a
    /// reader or a namespace change sees the complete file. Returns the
    /// writer if it is still open (a descriptor is still held somewhere).
    async fn settle(&self, ino: u64) -> Option<Arc<Writer>> {
        let w = self.handles.active_writer(ino)?;
        self.settle_writer(&w).await.then_some(w)
    }

    /// True if `w` is still open after waiting for its commit.
    async fn settle_writer(&self, w: &Writer) -> bool {
        if w.phase() == Phase::Open && w.all_flushed() {
            w.wait_released(RELEASE_GRACE).await;
        }
        if w.phase() == Phase::Committing && !w.wait_done(self.opts.data_timeout()).await {
            warn!(path = %w.path(), "commit still running; going on without it");
        }
        w.phase() == Phase::Open
    }

    async fn mkdir_entry(
        &self,
        req_uid: u32,
        req_gid: u32,
        parent: u64,
        name: &str,
        mode: u32,
    ) -> Result<FileAttr, Errno> {
        let path = self.child_path(parent, name)?;
        let mut status = self
            .call("mkdir", &path, self.client.mkdirs(&path, false))
            .await?;
        let mode = mode & 0o7777;
        let fix = SetAttr {
            mode: (status.mode & 0o7777 != mode).then_some(mode),
            owner: (self.owners.uid(&status.owner) != req_uid).then(|| req_uid.to_string()),
            group: (self.owners.gid(&status.group) != req_gid).then(|| req_gid.to_string()),
            mtime: None,
            atime: None,
        };
        if has_attrs(&fix) {
            status = self
                .call("mkdir", &path, self.client.set_attr(&path, fix))
                .await?;
        }
        let ino = self.inodes.remember(parent, name, status.inode);
        self.inodes.cache_dir(ino, &status);
        self.dir_changed(parent, now_ms());
        Ok(self.attr(ino, &status))
    }

    async fn create_file(
        &self,
        req: (u32, u32),
        parent: u64,
        name: &str,
        mode: u32,
        flags: i32,
    ) -> Result<(FileAttr, u64), Errno> {
        let path = self.child_path(parent, name)?;
        let (owner, group) = (req.0.to_string(), req.1.to_string());
        let opts = CreateOptions {
            mode: Some(mode & 0o7777),
            owner: Some(owner.clone()),
            group: Some(group.clone()),
            ..CreateOptions::default()
        };
        match self
            .call("create", &path, self.client.create(&path, opts))
            .await
        {
            Ok(fw) => {
                let status = new_file_status(&path, mode, owner, group);
                // Whatever the table knew under this name is gone.
                self.inodes.unlink(parent, name);
                let ino = self.inodes.remember(parent, name, 0);
                self.dir_changed(parent, status.mtime);
                let writer = Arc::new(Writer::new_file(ino, fw, status.clone()));
                self.handles.set_writer(writer.clone());
                let fh = self.handles.add_file(OpenFile {
                    ino,
                    writer: Some(writer),
                    reader: OnceCell::new(),
                });
                Ok((self.attr(ino, &status), fh))
            }
            Err(e) if e == Errno::EEXIST && flags & libc::O_EXCL == 0 => {
                // The kernel thought the name was free (its cache was stale):
                // open the existing file as open(2) would.
                let status = self
                    .call("create", &path, self.client.status(&path))
                    .await?;
                if status.is_dir() {
                    return Err(Errno::EISDIR);
                }
                let ino = self.inodes.remember(parent, name, status.inode);
                let open = self.open_file(ino, OpenFlags(flags)).await;
                match open {
                    Ok((fh, _)) => Ok((self.attr(ino, &status), fh)),
                    Err(e) => {
                        self.inodes.forget(ino, 1);
                        Err(e)
                    }
                }
            }
            Err(e) => Err(e),
        }
    }

    /// FLUSH (`fsync` false) or fsync (`fsync` true) of handle `fh`: for a
    /// handle that writes, waits for its bytes to be acknowledged (fsync
    /// also tells the namenode the length); for any other, nothing.
    async fn sync_handle(&self, fh: u64, fsync: bool) -> Result<(), Errno> {
        let Some(w) = self.handles.file(fh).and_then(|f| f.writer.clone()) else {
            return Ok(());
        };
        if fsync {
            w.hflush(self.opts.data_timeout()).await
        } else {
            w.flush(self.opts.data_timeout()).await
        }
    }

    async fn open_file(&self, ino: u64, flags: OpenFlags) -> Result<(u64, FopenFlags), Errno> {
        if flags.acc_mode() == OpenAccMode::O_RDONLY {
            return self.open_read(ino).await;
        }
        let trunc = flags.0 & libc::O_TRUNC != 0;
        let writer = self.open_write(ino, trunc).await?;
        let fh = self.handles.add_file(OpenFile {
            ino,
            writer: Some(writer),
            reader: OnceCell::new(),
        });
        Ok((fh, FopenFlags::empty()))
    }

    async fn open_read(&self, ino: u64) -> Result<(u64, FopenFlags), Errno> {
        self.settle(ino).await;
        let reader = self.new_reader(ino).await?;
        if !reader.1 {
            self.prefetch_following(ino);
        }
        let flags = if reader.1 {
            FopenFlags::empty()
        } else {
            // Complete files never change, so cached pages stay good.
            FopenFlags::FOPEN_KEEP_CACHE
        };
        let fh = self.handles.add_file(OpenFile {
            ino,
            writer: None,
            reader: OnceCell::new_with(Some(Arc::new(reader.0))),
        });
        Ok((fh, flags))
    }

    /// A reader of `ino` and whether the file is still being written.
    async fn new_reader(&self, ino: u64) -> Result<(Reader, bool), Errno> {
        let path = self.path_of(ino)?;
        let looked_up = self
            .lookups
            .take(ino)
            .filter(|l| l.path() == path && self.inodes.confirm(ino, l.status().inode))
            .and_then(|l| self.client.open_located(l).ok());
        let file = match looked_up {
            Some(file) => file,
            None => self.call("open", &path, self.client.open(&path)).await?,
        };
        if !self.inodes.confirm(ino, file.status().inode) {
            return Err(Errno::ESTALE);
        }
        let growing = file.status().under_construction;
        let key = Key::of(file.status());
        let reader = Reader::new(
            self.client.clone(),
            file,
            path,
            self.opts.read_ahead,
            self.opts.data_timeout(),
        );
        if growing {
            return Ok((reader, growing));
        }
        let whole = match self.prefetch.take(&key) {
            Some(loading) => tokio::time::timeout(self.opts.data_timeout(), loading)
                .await
                .ok()
                .flatten(),
            None => None,
        };
        match whole {
            Some(whole) => {
                debug!(path = %reader.path(), "opened from the files read ahead");
                Ok((reader.with_whole(whole), growing))
            }
            None => Ok((reader, growing)),
        }
    }

    /// The writer a handle opened for writing on `ino` shares.
    async fn open_write(&self, ino: u64, trunc: bool) -> Result<Arc<Writer>, Errno> {
        self.lookups.forget(ino);
        if let Some(w) = self.handles.active_writer(ino) {
            if w.attach() {
                if trunc {
                    if let Err(e) = self.truncate_writer(&w, 0).await {
                        w.detach();
                        return Err(e);
                    }
                }
                return Ok(w);
            }
            // Being committed: the new handle works on the complete file.
            w.wait_done(self.opts.data_timeout()).await;
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

    /// Re-creates the file at `path` empty, keeping its attributes.
    async fn recreate(&self, ino: u64, path: &str) -> Result<(FileWriter, FileStatus), Errno> {
        let (_, old) = self.stat(ino).await?;
        if old.is_dir() {
            return Err(Errno::EISDIR);
        }
        let fw = self
            .call(
                "truncate",
                path,
                self.client.create(path, replace_options(&old)),
            )
            .await?;
        let status = new_file_status(path, old.mode, old.owner, old.group);
        // The new file has a new namenode id, learned at the next lookup;
        // a listed page may still hold the old file under this name.
        self.inodes.replace_id(ino, 0);
        self.statahead.forget_dir(self.inodes.parent(ino));
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
        if size == w.bytes() {
            return Ok(());
        }
        self.truncate_refused(&w.path(), size, w.bytes())
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
        if let Some(w) = self.handles.active_writer(ino) {
            if w.phase() == Phase::Open {
                return self.truncate_writer(&w, size).await;
            }
            w.wait_done(self.opts.data_timeout()).await;
        }
        let (path, status) = self.stat(ino).await?;
        if status.is_dir() {
            return Err(Errno::EISDIR);
        }
        if size != 0 || status.length == 0 {
            return self.truncate_refused(&path, size, status.length);
        }
        let fw = self
            .call(
                "truncate",
                &path,
                self.client.create(&path, replace_options(&status)),
            )
            .await?;
        self.inodes.replace_id(ino, 0);
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

    #[allow(clippy::too_many_arguments)]
    async fn setattr_of(
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
            mode: mode.map(|m| m & 0o7777),
            owner: uid.map(|u| u.to_string()),
            group: gid.map(|g| g.to_string()),
            mtime: mtime.map(time_ms),
            atime: atime.map(time_ms),
        };
        if !has_attrs(&attrs) {
            return self.getattr_of(ino).await;
        }
        if let Some(w) = self.handles.active_writer(ino) {
            // Stored once the file is complete, so completing cannot undo them.
            if w.defer_attrs(&attrs) {
                if let Some(status) = w.overlay(None) {
                    return Ok(file_attr(ino, &status, &self.owners));
                }
            }
        }
        let path = self.path_of(ino)?;
        let status = self
            .call("setattr", &path, self.client.set_attr(&path, attrs))
            .await?;
        // A listed page may hold the old attributes.
        self.statahead.forget_dir(self.inodes.parent(ino));
        if !self.inodes.confirm(ino, status.inode) {
            return Err(Errno::ESTALE);
        }
        self.inodes.cache_dir(ino, &status);
        Ok(self.attr(ino, &status))
    }

    async fn remove(&self, parent: u64, name: &str, dir: bool) -> Result<(), Errno> {
        let path = self.child_path(parent, name)?;
        if let Some(ino) = self.inodes.find(parent, name) {
            if let Some(w) = self.settle(ino).await {
                // Still open: it will be abandoned at release, not completed.
                w.mark_unlinked();
            }
        }
        let op = if dir { "rmdir" } else { "unlink" };
        self.call(op, &path, self.client.delete(&path, false))
            .await?;
        self.inodes.unlink(parent, name);
        self.dir_changed(parent, now_ms());
        Ok(())
    }

    async fn rename_entry(
        &self,
        parent: u64,
        name: &str,
        new_parent: u64,
        new_name: &str,
        flags: RenameFlags,
    ) -> Result<(), Errno> {
        if flags.intersects(RenameFlags::RENAME_EXCHANGE | RenameFlags::RENAME_WHITEOUT) {
            debug!(name, "rename: exchange and whiteout are not supported");
            return Err(Errno::EINVAL);
        }
        let overwrite = !flags.contains(RenameFlags::RENAME_NOREPLACE);
        let src = self.child_path(parent, name)?;
        let dst = self.child_path(new_parent, new_name)?;
        // Writers address their file by path: let closed ones commit first.
        let mut writers = self.handles.active_writers_under(&src);
        writers.extend(self.handles.active_writers_under(&dst));
        for w in writers {
            if self.settle_writer(&w).await {
                warn!(
                    path = %w.path(),
                    "rename refused: the file is still open for writing; close it first"
                );
                return Err(Errno::EBUSY);
            }
        }
        self.call("rename", &src, self.client.rename(&src, &dst, overwrite))
            .await?;
        self.inodes.rename(parent, name, new_parent, new_name);
        let now = now_ms();
        self.dir_changed(parent, now);
        self.dir_changed(new_parent, now);
        Ok(())
    }

    async fn read_handle(&self, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let file = self.handles.file(fh).ok_or(Errno::EBADF)?;
        let reader = match (file.reader.get(), &file.writer) {
            (Some(r), _) => r.clone(),
            (None, Some(w)) => {
                if !w.is_existing().await {
                    warn!(
                        path = %w.path(),
                        "read refused: reading a file through a descriptor that is writing it is not supported"
                    );
                    return Err(Errno::EPERM);
                }
                file.reader
                    .get_or_try_init(|| async {
                        self.new_reader(file.ino).await.map(|r| Arc::new(r.0))
                    })
                    .await?
                    .clone()
            }
            (None, None) => return Err(Errno::EBADF),
        };
        reader.read(offset, size).await
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
        let mut added = false;
        loop {
            let index = cookie - FIRST_ENTRY;
            let entry = stream
                .entry(index, |after| {
                    let (client, path) = (self.client.clone(), path.clone());
                    async move {
                        self.call("readdir", &path, client.list_page(&path, &after, LIST_PAGE))
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

    fn statfs_of(&self) -> Result<FsStats, Errno> {
        if let Some((at, stats)) = self.statfs.lock().as_ref() {
            if at.elapsed() < self.opts.attr_ttl {
                return Ok(*stats);
            }
        }
        let stats = self.block(self.call("statfs", "/", self.client.statfs()))?;
        *self.statfs.lock() = Some((Instant::now(), stats));
        Ok(stats)
    }

    /// Completes every file still being written (at unmount).
    async fn drain(&self) {
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

    #[test]
    fn data_timeout_is_longer_than_rpc() {
        let opts = FsOptions {
            attr_ttl: Duration::from_secs(1),
            entry_ttl: Duration::from_secs(1),
            read_ahead: 4 << 20,
            rpc_timeout: Duration::from_secs(10),
        };
        assert_eq!(opts.data_timeout(), Duration::from_secs(60));
    }
}
