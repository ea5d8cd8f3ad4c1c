//! `memfs MOUNTPOINT [THREADS]`: the ceiling of any FUSE filesystem on this
//! machine, for `scripts/bench-fuse`.
//!
//! An in-memory filesystem served through `fuser` with the mount options
//! and thread count of `dfs-fuse`, that does no work beyond keeping names
//! and bytes in one map: no network, no disk, no durability. What it
//! reaches on a workload is what the kernel's FUSE round trips alone allow,
//! so `dfs-fuse`'s figures can be read against it as well as against a local
//! folder. Not a filesystem to keep anything in: it forgets everything at
//! unmount.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::time::{Duration, SystemTime};

use fuser::{
    BsdFileFlags, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, LockOwner, MountOption, OpenFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use parking_lot::Mutex;

/// How long the kernel may cache names and attributes (dfs-fuse's default).
const TTL: Duration = Duration::from_secs(1);

/// One file or directory.
struct Node {
    attr: FileAttr,
    data: Vec<u8>,
    children: BTreeMap<OsString, u64>,
}

/// Every node by inode, and the last inode handed out.
struct Nodes {
    by_ino: HashMap<u64, Node>,
    last: u64,
}

/// The filesystem: one map behind one lock.
struct MemFs {
    nodes: Mutex<Nodes>,
}

fn new_attr(ino: u64, kind: FileType, perm: u16, req: &Request) -> FileAttr {
    attr_of(ino, kind, perm, req.uid(), req.gid())
}

fn attr_of(ino: u64, kind: FileType, perm: u16, uid: u32, gid: u32) -> FileAttr {
    let now = SystemTime::now();
    FileAttr {
        ino: INodeNo(ino),
        size: 0,
        blocks: 0,
        atime: now,
        mtime: now,
        ctime: now,
        crtime: now,
        kind,
        perm,
        nlink: if kind == FileType::Directory { 2 } else { 1 },
        uid,
        gid,
        rdev: 0,
        flags: 0,
        blksize: 4096,
    }
}

fn time_of(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

impl MemFs {
    fn new() -> MemFs {
        let mut by_ino = HashMap::new();
        by_ino.insert(
            1,
            Node {
                attr: root_attr(),
                data: Vec::new(),
                children: BTreeMap::new(),
            },
        );
        MemFs {
            nodes: Mutex::new(Nodes { by_ino, last: 1 }),
        }
    }

    fn add(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        kind: FileType,
        mode: u32,
    ) -> Result<FileAttr, Errno> {
        let mut nodes = self.nodes.lock();
        let ino = nodes.last + 1;
        let dir = nodes.by_ino.get_mut(&parent.0).ok_or(Errno::ENOENT)?;
        if dir.children.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        dir.children.insert(name.to_os_string(), ino);
        nodes.last = ino;
        let attr = new_attr(ino, kind, (mode & 0o7777) as u16, req);
        nodes.by_ino.insert(
            ino,
            Node {
                attr,
                data: Vec::new(),
                children: BTreeMap::new(),
            },
        );
        Ok(attr)
    }

    fn remove(&self, parent: INodeNo, name: &OsStr) -> Result<(), Errno> {
        let mut nodes = self.nodes.lock();
        let dir = nodes.by_ino.get_mut(&parent.0).ok_or(Errno::ENOENT)?;
        let ino = dir.children.remove(name).ok_or(Errno::ENOENT)?;
        nodes.by_ino.remove(&ino);
        Ok(())
    }
}

/// The root directory, open to everyone as a scratch folder.
fn root_attr() -> FileAttr {
    attr_of(INodeNo::ROOT.0, FileType::Directory, 0o777, 0, 0)
}

impl Filesystem for MemFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let nodes = self.nodes.lock();
        let child = nodes
            .by_ino
            .get(&parent.0)
            .and_then(|d| d.children.get(name))
            .and_then(|ino| nodes.by_ino.get(ino));
        match child {
            Some(n) => reply.entry(&TTL, &n.attr, Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.nodes.lock().by_ino.get(&ino.0) {
            Some(n) => reply.attr(&TTL, &n.attr),
            None => reply.error(Errno::ENOENT),
        }
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
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut nodes = self.nodes.lock();
        let Some(n) = nodes.by_ino.get_mut(&ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        if let Some(mode) = mode {
            n.attr.perm = (mode & 0o7777) as u16;
        }
        n.attr.uid = uid.unwrap_or(n.attr.uid);
        n.attr.gid = gid.unwrap_or(n.attr.gid);
        if let Some(size) = size {
            n.data
                .resize(usize::try_from(size).unwrap_or(usize::MAX), 0);
            n.attr.size = n.data.len() as u64;
        }
        n.attr.atime = atime.map(time_of).unwrap_or(n.attr.atime);
        n.attr.mtime = mtime.map(time_of).unwrap_or(n.attr.mtime);
        reply.attr(&TTL, &n.attr)
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
        match self.add(req, parent, name, FileType::Directory, mode) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.remove(parent, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.remove(parent, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.opened(FileHandle(ino.0), FopenFlags::empty());
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let nodes = self.nodes.lock();
        let Some(n) = nodes.by_ino.get(&ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        let start = usize::try_from(offset).map_or(n.data.len(), |o| o.min(n.data.len()));
        let end = start.saturating_add(size as usize).min(n.data.len());
        reply.data(&n.data[start..end]);
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut nodes = self.nodes.lock();
        let Some(n) = nodes.by_ino.get_mut(&ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        let Some(end) = usize::try_from(offset)
            .ok()
            .and_then(|o| o.checked_add(data.len()))
        else {
            return reply.error(Errno::EFBIG);
        };
        if n.data.len() < end {
            n.data.resize(end, 0);
        }
        n.data[end - data.len()..end].copy_from_slice(data);
        n.attr.size = n.data.len() as u64;
        reply.written(data.len() as u32);
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let nodes = self.nodes.lock();
        let Some(dir) = nodes.by_ino.get(&ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, (name, child)) in dir.children.iter().enumerate().skip(skip) {
            let kind = nodes
                .by_ino
                .get(child)
                .map_or(FileType::RegularFile, |n| n.attr.kind);
            if reply.add(INodeNo(*child), i as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        match self.add(req, parent, name, FileType::RegularFile, mode) {
            Ok(attr) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(attr.ino.0),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(mountpoint) = args.next() else {
        eprintln!("usage: memfs MOUNTPOINT [THREADS]");
        std::process::exit(2);
    };
    let threads = match args.next().map(|t| t.parse::<usize>()) {
        None => 8,
        Some(Ok(t)) if t > 0 => t,
        Some(_) => {
            eprintln!("memfs: THREADS must be a positive number");
            std::process::exit(2);
        }
    };
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("memfs".to_string()),
        MountOption::DefaultPermissions,
        MountOption::NoAtime,
    ];
    config.n_threads = Some(threads);
    config.clone_fd = true;
    fuser::mount(MemFs::new(), mountpoint, &config)
}
