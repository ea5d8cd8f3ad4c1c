//! The kernel-facing half of the mount: `fuser::Filesystem` for
//! [`Kernel`], which owns the [`DfsFs`]. Each method decodes a request,
//! runs the matching helper of [`super`] (or, for the few that need no
//! cluster — RELEASE, OPENDIR, RELEASEDIR, FORGET — its table updates) and
//! turns its `Result<_, Errno>` into one reply.
//!
//! Each request's work is polled first on the FUSE worker thread that read
//! it — one answered from the mount's caches costs no thread switch — and
//! at its first wait (a namenode call, data not arrived yet) continues as a
//! task on the runtime, which replies when it ends; the worker thread goes
//! straight back to the kernel. So a request stuck on an unreachable
//! namenode or a slow datanode does not hold up the others — in particular
//! not the RELEASE that an open of the same file is waiting for. WRITE's
//! data is borrowed from fuser's buffer: it goes straight into the packet
//! on the worker thread, which waits for room in the pipeline's window up
//! to 200 ms (a copy into a task costs a tenth of the mount's sequential
//! write rate); a rest still held back then (a hung datanode) is copied
//! into a task, so no worker thread waits longer.

use std::ffi::OsStr;
use std::future::Future;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use dfs_proto::defaults::MAX_NAME_LEN;
use fuser::{
    Errno, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite,
    ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use super::{name_of, placeholder_attr, DfsFs, MAX_WRITE};
use crate::dirs::DirStream;
use crate::mountinfo;
use crate::writer::Writer;

/// How long a WRITE may wait for the pipeline on the worker thread that
/// read it; what is left after that continues as a task, with a copy.
const WRITE_ON_THREAD: Duration = Duration::from_millis(200);

/// Marks a writer failed unless disarmed: held by the task writing the
/// rest of a WRITE, so a panic in it fails the file as one on the worker
/// thread does (part of the data may have been taken).
struct FailUnlessDone(Option<Arc<Writer>>);

impl Drop for FailUnlessDone {
    fn drop(&mut self) {
        if let Some(w) = self.0.take() {
            w.fail(Errno::EIO);
        }
    }
}

/// The filesystem as the kernel sees it: [`DfsFs`] shared with the tasks
/// serving its requests.
#[derive(Debug)]
pub struct Kernel {
    fs: Arc<DfsFs>,
    /// Requests continuing as tasks; unmounting waits for them.
    tasks: TaskTracker,
    /// Where this mount is and its device number, once mounted.
    mounted: Arc<OnceLock<(PathBuf, String)>>,
}

impl Kernel {
    /// Serves `fs` to the kernel.
    pub fn new(fs: DfsFs) -> Kernel {
        Kernel {
            fs: Arc::new(fs),
            tasks: TaskTracker::new(),
            mounted: Arc::default(),
        }
    }

    /// Where to record the mount's path and device number once mounted
    /// ([`crate::mountinfo`]): at the end it then leaves alone another
    /// mount found at its path.
    pub fn mounted(&self) -> Arc<OnceLock<(PathBuf, String)>> {
        self.mounted.clone()
    }

    /// The filesystem served.
    pub fn fs(&self) -> Arc<DfsFs> {
        self.fs.clone()
    }

    /// Runs the work of one request, which replies when it ends: here, if
    /// it can end without waiting (an answer from the mount's caches),
    /// else as a task on the runtime from its first wait on. Handing every
    /// request to a runtime thread cost a thread switch each: a third of
    /// the small-file read rate on two cores.
    fn serve<F>(&self, work: impl FnOnce(Arc<DfsFs>) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        run_request(work(self.fs.clone()), &self.fs.rt, &self.tasks);
    }
}

/// Polls `fut` once on this thread and, if it must wait, spawns the rest
/// on `rt`, tracked by `tasks`. A panic while polling here is caught and
/// logged, as tokio does for a task: the future is dropped, and with it the
/// request's reply, which answers EIO. Uncaught, it would end the FUSE
/// worker thread, and a mount with none left would serve nothing.
fn run_request<F>(fut: F, rt: &tokio::runtime::Handle, tasks: &TaskTracker)
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut fut = Box::pin(fut);
    let _runtime = rt.enter();
    // A future polled again must use the latest waker (the task's), so
    // this first poll's no-op waker is never relied on.
    let mut cx = Context::from_waker(Waker::noop());
    match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx))) {
        Ok(Poll::Pending) => {
            tasks.spawn_on(fut, rt);
        }
        Ok(Poll::Ready(())) => {}
        Err(_) => error!("a request's handler panicked (a bug): the request fails with EIO and the mount goes on"),
    }
}

/// Replies with an entry (or the error).
fn entry(fs: &DfsFs, reply: ReplyEntry, res: Result<fuser::FileAttr, Errno>) {
    match res {
        Ok(attr) => {
            reply.entry_with_ttls(&fs.opts.attr_ttl, &fs.opts.entry_ttl, &attr, Generation(0))
        }
        Err(e) => reply.error(e),
    }
}

impl Filesystem for Kernel {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        if let Err(max) = config.set_max_write(MAX_WRITE) {
            let _ = config.set_max_write(max);
        }
        let _ = config.set_max_background(64);
        let _ = config.set_congestion_threshold(48);
        // The namespace keeps milliseconds.
        let _ = config.set_time_granularity(Duration::from_millis(1));
        for cap in [
            // Listings carry attributes: `ls -l` needs no lookup per entry.
            InitFlags::FUSE_DO_READDIRPLUS,
            // O_TRUNC arrives with open, not as a separate setattr.
            InitFlags::FUSE_ATOMIC_O_TRUNC,
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_ASYNC_READ,
            InitFlags::FUSE_BIG_WRITES,
            // Files being written are read without the page cache
            // (`open_read`): still mappable, on kernels that allow it.
            InitFlags::FUSE_DIRECT_IO_ALLOW_MMAP,
        ] {
            if let Err(missing) = config.add_capabilities(cap) {
                debug!(?missing, "kernel lacks a FUSE capability");
            }
        }
        Ok(())
    }

    fn destroy(&mut self) {
        // The library unmounts by path once this returns. Whether this
        // mount is still on top at its path is decided now, right as its
        // session ended: a mount made there later (after a lazy unmount,
        // or a restart while the drain below runs) may even get this
        // mount's device number again.
        let gone = self.mounted.get().and_then(|(path, ours)| {
            mountinfo::device_at(path)
                .is_none_or(|there| &there != ours)
                .then_some(path)
        });
        // Requests still running (a connection aborted mid-request) may be
        // creating a writer that the drain must see.
        self.tasks.close();
        let (fs, tasks) = (&self.fs, &self.tasks);
        fs.block(async {
            if tokio::time::timeout(fs.opts.data_timeout(), tasks.wait())
                .await
                .is_err()
            {
                warn!(
                    requests = tasks.len(),
                    "requests still running at unmount; going on without them"
                );
            }
            fs.drain().await;
        });
        // This mount is gone from its path (unmounted, or detached lazily
        // and now ended): the library's unmount by path could only hit
        // another mount there now. The drain is done; end here.
        if let Some(path) = gone {
            if mountinfo::device_at(path).is_some() {
                info!(
                    mountpoint = %path.display(),
                    "unmounted; the other mount now at the same path is left alone"
                );
                std::process::exit(0);
            }
        }
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let name = match name_of(name) {
            Ok(n) => n.to_string(),
            Err(e) => return reply.error(e),
        };
        self.serve(|fs| async move {
            match fs.lookup_entry(parent.0, &name).await {
                Ok(Some(attr)) => entry(&fs, reply, Ok(attr)),
                // Cache the absence for the negative timeout.
                Ok(None) => reply.entry(
                    &fs.opts.negative_ttl,
                    &placeholder_attr(0, FileType::RegularFile),
                    Generation(0),
                ),
                Err(e) => reply.error(e),
            }
        });
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.fs.inodes.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        self.serve(|fs| async move {
            match fs.getattr_handle(ino.0, fh.map(|fh| fh.0)).await {
                Ok(attr) => reply.attr(&fs.opts.attr_ttl, &attr),
                Err(e) => reply.error(e),
            }
        });
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        self.serve(|fs| async move {
            match fs
                .setattr_of(ino.0, mode, uid, gid, size, atime, mtime)
                .await
            {
                Ok(attr) => reply.attr(&fs.opts.attr_ttl, &attr),
                Err(e) => reply.error(e),
            }
        });
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let name = match name_of(name) {
            Ok(n) => n.to_string(),
            Err(e) => return reply.error(e),
        };
        let (uid, gid) = (req.uid(), req.gid());
        self.serve(|fs| async move {
            let res = fs.mkdir_entry(uid, gid, parent.0, &name, mode).await;
            if res.as_ref().is_err_and(|e| *e == Errno::EEXIST) {
                fs.forget_entry(parent.0, &name);
            }
            entry(&fs, reply, res);
        });
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(parent, name, false, reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(parent, name, true, reply);
    }

    fn symlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        _target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        info!(
            path = %self.entry_path(parent, link_name),
            "symlink refused: dfs has no symbolic links"
        );
        reply.error(Errno::EPERM);
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        info!(
            path = %self.entry_path(newparent, newname),
            "hard link refused: dfs has no hard links"
        );
        reply.error(Errno::EPERM);
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        let path = self.entry_path(parent, name);
        if mode & libc::S_IFMT == libc::S_IFREG {
            // The kernel sends CREATE for open(O_CREAT); mknod(2) of a
            // regular file comes here.
            info!(path = %path, "mknod of a regular file refused: create it with open(O_CREAT)");
        } else {
            info!(path = %path, "mknod refused: dfs has no devices, fifos or sockets");
        }
        reply.error(Errno::EPERM);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let names =
            name_of(name).and_then(|name| Ok((name.to_string(), name_of(newname)?.to_string())));
        let (name, newname) = match names {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        self.serve(|fs| async move {
            let res = fs
                .rename_entry(parent.0, &name, newparent.0, &newname, flags)
                .await;
            if res.as_ref().is_err_and(|e| *e == Errno::EEXIST) {
                fs.forget_entry(newparent.0, &newname);
            }
            answer(reply, res);
        });
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.serve(|fs| async move {
            match fs.open_file(ino.0, flags).await {
                Ok((fh, fopen)) => reply.opened(FileHandle(fh), fopen),
                Err(e) => reply.error(e),
            }
        });
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.serve(|fs| async move {
            match fs.read_handle(fh.0, offset, size).await {
                Ok(data) => reply.data(&data),
                Err(e) => reply.error(e),
            }
        });
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let fs = &self.fs;
        let Some(writer) = fs.handles.file(fh.0).and_then(|f| f.writer.clone()) else {
            return reply.error(Errno::EBADF);
        };
        let Ok(len) = u32::try_from(data.len()) else {
            return reply.error(Errno::EINVAL);
        };
        // From fuser's buffer straight into the packet, on this thread,
        // while the pipeline keeps up; a rest that the pipeline holds back
        // longer (a hung datanode) is copied into a task, so it holds no
        // worker thread.
        let taken = catch_unwind(AssertUnwindSafe(|| {
            fs.block(writer.write_some(offset, data, WRITE_ON_THREAD))
        }));
        match taken {
            Ok(Ok(n)) if n == data.len() => reply.written(len),
            Ok(Ok(n)) => {
                let rest = data[n..].to_vec();
                let (at, limit) = (
                    offset + n as u64,
                    fs.opts.write_timeout(writer.replication()),
                );
                self.serve(move |fs| async move {
                    let mut guard = FailUnlessDone(Some(writer.clone()));
                    let res = writer.write(at, &rest, limit).await;
                    guard.0 = None;
                    match res {
                        Ok(()) => reply.written(len),
                        Err(e) => {
                            reply.error(e);
                            fs.drop_cached_pages(ino.0);
                        }
                    }
                });
            }
            Ok(Err(e)) => {
                reply.error(e);
                // Bytes refused may sit in the page cache (a shared
                // mapping's): no reader may see them.
                fs.drop_cached_pages(ino.0);
            }
            Err(_) => {
                error!(path = %writer.path(), "a write's handler panicked (a bug): the write fails with EIO, the file will not be completed, and the mount goes on");
                // Part of the data may have been taken: as after any failed
                // write, and recorded before the reply lets a FLUSH in.
                writer.fail(Errno::EIO);
                reply.error(Errno::EIO);
                fs.drop_cached_pages(ino.0);
            }
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // Never ENOSYS: the kernel would stop sending FLUSH for the whole mount.
        self.serve(|fs| async move { answer(reply, fs.sync_handle(fh.0, false).await) });
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let writer = self
            .fs
            .handles
            .remove_file(fh.0)
            .and_then(|f| f.writer.clone());
        if let Some(w) = writer {
            self.fs.detach_writer(w);
        }
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.serve(|fs| async move { answer(reply, fs.sync_handle(fh.0, true).await) });
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let fs = &self.fs;
        match fs.path_of(ino.0) {
            Ok(path) => reply.opened(
                FileHandle(fs.handles.add_dir(DirStream::new(path))),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        self.serve(|fs| async move {
            let res = fs
                .readdir_entries(ino.0, fh.0, offset, |ino, cookie, name, status| {
                    let (ino, kind) = match status {
                        None => (ino, FileType::Directory),
                        Some(s) => {
                            let kind = if s.is_dir() {
                                FileType::Directory
                            } else {
                                FileType::RegularFile
                            };
                            // d_ino only: the inode if known, else a number outside the table's range.
                            (
                                fs.inodes.find(ino, name).unwrap_or(u64::MAX - s.inode),
                                kind,
                            )
                        }
                    };
                    reply.add(INodeNo(ino), cookie, kind, name)
                })
                .await;
            match res {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e),
            }
        });
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        self.serve(|fs| async move {
            let ttl = fs.opts.attr_ttl;
            let res = fs
                .readdir_entries(ino.0, fh.0, offset, |dir, cookie, name, status| {
                    let Some(status) = status else {
                        // `.` and `..`: the kernel does not link them.
                        let attr = placeholder_attr(dir, FileType::Directory);
                        return reply.add(INodeNo(dir), cookie, name, &ttl, &attr, Generation(0));
                    };
                    let child = fs.inodes.remember(ino.0, name, status.inode);
                    fs.inodes.cache_dir(child, status);
                    let attr = fs.attr(child, status);
                    let full = reply.add(INodeNo(child), cookie, name, &ttl, &attr, Generation(0));
                    if full {
                        // Not sent: the kernel does not hold this lookup.
                        fs.inodes.forget(child, 1);
                    }
                    full
                })
                .await;
            match res {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e),
            }
        });
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.fs.handles.remove_dir(fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Namespace changes are durable before the namenode answers.
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        const FRAGMENT: u64 = 4096;
        self.serve(|fs| async move {
            match fs.statfs_of().await {
                Ok(s) => {
                    let free_files = u64::from(u32::MAX);
                    reply.statfs(
                        s.capacity / FRAGMENT,
                        s.remaining / FRAGMENT,
                        s.remaining / FRAGMENT,
                        s.files + free_files,
                        free_files,
                        FRAGMENT as u32,
                        MAX_NAME_LEN as u32,
                        FRAGMENT as u32,
                    )
                }
                Err(e) => reply.error(e),
            }
        });
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let name = match name_of(name) {
            Ok(n) => n.to_string(),
            Err(e) => return reply.error(e),
        };
        let owner = (req.uid(), req.gid());
        self.serve(|fs| async move {
            match fs.create_file(owner, parent.0, &name, mode, flags).await {
                Ok((attr, fh)) => reply.created(
                    &fs.opts.attr_ttl,
                    &attr,
                    Generation(0),
                    FileHandle(fh),
                    FopenFlags::empty(),
                ),
                Err(e) => {
                    if e == Errno::EEXIST {
                        fs.forget_entry(parent.0, &name);
                    }
                    reply.error(e)
                }
            }
        });
    }

    // Not supported, answered without a warning per call. ENOSYS for the
    // xattr calls makes the kernel stop asking for the whole mount.

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: ReplyXattr) {
        reply.error(Errno::ENOSYS);
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::ENOSYS);
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: i64,
        _whence: i32,
        reply: fuser::ReplyLseek,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: fuser::IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: fuser::ReplyIoctl,
    ) {
        // No ioctls (cp asks for FICLONE first).
        reply.error(Errno::ENOTTY);
    }

    fn poll(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _ph: fuser::PollNotifier,
        _events: fuser::PollEvents,
        _flags: fuser::PollFlags,
        reply: fuser::ReplyPoll,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        _fh_in: FileHandle,
        _offset_in: u64,
        _ino_out: INodeNo,
        _fh_out: FileHandle,
        _offset_out: u64,
        _len: u64,
        _flags: fuser::CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        reply.error(Errno::ENOSYS);
    }
}

impl Kernel {
    /// UNLINK (`dir` false) or RMDIR.
    fn remove(&self, parent: INodeNo, name: &OsStr, dir: bool, reply: ReplyEmpty) {
        let name = match name_of(name) {
            Ok(n) => n.to_string(),
            Err(e) => return reply.error(e),
        };
        self.serve(|fs| async move { answer(reply, fs.remove(parent.0, &name, dir).await) });
    }

    /// The path of `name` in `parent`, for a log line (lossy: a refused
    /// request may name anything).
    fn entry_path(&self, parent: INodeNo, name: &OsStr) -> String {
        let name = name.to_string_lossy();
        self.fs
            .inodes
            .child_path(parent.0, &name)
            .unwrap_or_else(|_| format!("<inode {}>/{name}", parent.0))
    }
}

/// Replies to a request that returns nothing but success or an errno.
fn answer(reply: ReplyEmpty, res: Result<(), Errno>) {
    match res {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

#[cfg(test)]
mod tests;
