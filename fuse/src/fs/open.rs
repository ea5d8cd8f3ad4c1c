//! Opening files and reading through their handles: OPEN (a reader, or a
//! handle sharing the file's writer), the reader of a file (from the
//! located status of its lookup and the small files read ahead when it can
//! be) and READ.

use std::sync::Arc;

use bytes::Bytes;
use fuser::{Errno, FopenFlags, OpenAccMode, OpenFlags};
use tokio::sync::OnceCell;
use tracing::{debug, warn};

use super::{stale_if_gone, DfsFs};
use crate::handles::OpenFile;
use crate::prefetch::Key;
use crate::reader::Reader;

impl DfsFs {
    /// OPEN of `ino`: a handle that reads, or one that shares the file's
    /// writer (truncated first if `flags` say `O_TRUNC`).
    pub(super) async fn open_file(
        &self,
        ino: u64,
        flags: OpenFlags,
    ) -> Result<(u64, FopenFlags), Errno> {
        let trunc = flags.0 & libc::O_TRUNC != 0;
        if flags.acc_mode() == OpenAccMode::O_RDONLY {
            if trunc {
                warn!(
                    path = %self.path_of(ino).unwrap_or_default(),
                    "open refused: O_TRUNC on a read-only open; open for writing to replace the file"
                );
                return Err(Errno::EPERM);
            }
            return self.open_read(ino).await;
        }
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
            // A file being written: its reader ends at the bytes visible
            // when it opened, short of the size the kernel may know (this
            // mount's writer's). Through the page cache, the kernel would
            // fill the rest of a short page with zeros and keep them for
            // later readers of the complete file; read directly, a read
            // just ends there.
            FopenFlags::FOPEN_DIRECT_IO
        } else if self.inodes.told_growing(ino) {
            // Complete now, but the kernel may still hold the size it was
            // told while another client wrote it (until its attribute
            // timeout): through the page cache it would end reads there,
            // short of bytes that client's close() returned for. Read
            // directly, the reader's length counts.
            FopenFlags::FOPEN_DIRECT_IO
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
        // By inode: a file another client moved is still this one.
        let (path, target) = self.inode_ref(ino)?;
        // The lookup's answer only if it is of the file the inode stands for
        // now (not one this mount has replaced since).
        let known = self.inodes.nn_id(ino);
        let looked_up = self
            .lookups
            .take(ino)
            .filter(|l| known != 0 && l.status().inode == known);
        let file = match looked_up {
            Some(l) => match self.client.open_located(l).await {
                Ok(file) => file,
                Err(_) => self
                    .call("open", &path, self.client.open(&target))
                    .await
                    .map_err(|e| stale_if_gone(e, &path, &target))?,
            },
            None => self
                .call("open", &path, self.client.open(&target))
                .await
                .map_err(|e| stale_if_gone(e, &path, &target))?,
        };
        if !self.inodes.confirm(ino, file.status().inode) {
            return Err(Errno::ESTALE);
        }
        let growing = file.status().under_construction;
        let key = Key::of(file.status());
        let reader = Reader::new(file, path, self.opts.read_ahead, self.opts.data_timeout());
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

    /// READ of `size` bytes at `offset` through handle `fh`.
    pub(super) async fn read_handle(
        &self,
        fh: u64,
        offset: u64,
        size: u32,
    ) -> Result<Bytes, Errno> {
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
        // The kernel keeps one page cache per inode. Once this mount has
        // replaced the file (O_TRUNC, or a truncate to 0) the inode stands
        // for the new file, and the old file's bytes read through a handle
        // opened before would land in the new file's cache, where every
        // later reader of the inode would get them.
        let now = self.inodes.nn_id(file.ino);
        if now != 0 && now != reader.status().inode {
            warn!(
                path = %reader.path(),
                "read refused: the file was replaced on this mount after this descriptor opened it; open it again to read the new file"
            );
            return Err(Errno::ESTALE);
        }
        reader.read(offset, size).await
    }
}
