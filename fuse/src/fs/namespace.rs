//! Namespace changes: MKDIR, CREATE, UNLINK, RMDIR and RENAME, each
//! followed by the inode table and the directory caches.

use std::sync::Arc;

use dfs_client::{CreateOptions, FileType, SetAttr};
use dfs_proto::path::inode_path;
use fuser::{Errno, FileAttr, OpenFlags, RenameFlags};
use tokio::sync::OnceCell;
use tracing::{debug, warn};

use super::{new_file_status, DfsFs};
use crate::attr::now_ms;
use crate::handles::OpenFile;
use crate::writer::Writer;

impl DfsFs {
    /// MKDIR of `name` in `parent`, owned by the requesting user and group.
    pub(super) async fn mkdir_entry(
        &self,
        req_uid: u32,
        req_gid: u32,
        parent: u64,
        name: &str,
        mode: u32,
    ) -> Result<FileAttr, Errno> {
        let (path, target) = self.child_ref(parent, name)?;
        let mut status = self
            .call("mkdir", &path, self.client.mkdirs(&target, false))
            .await?;
        let mode = mode & 0o7777;
        let mut fix = SetAttr {
            mode: (status.mode & 0o7777 != mode).then_some(mode),
            owner: (self.owners.uid(&status.owner) != req_uid)
                .then(|| self.owners.user_name(req_uid)),
            group: (self.owners.gid(&status.group) != req_gid)
                .then(|| self.owners.group_name(req_gid)),
            mtime: None,
            atime: None,
        };
        if !fix.is_empty() {
            let set = self.client.set_attr(&target, fix.clone());
            match self.bounded("mkdir", &path, set).await? {
                Ok(s) => status = s,
                // A mount that is not the superuser cannot give the
                // directory to the local caller: it stays the mount's
                // user's (as every inode it creates), with the mode asked.
                Err(dfs_client::Error::PermissionDenied { message })
                    if fix.owner.is_some() || fix.group.is_some() =>
                {
                    debug!(path = %path, reason = %message, "directory kept by the mount's user");
                    (fix.owner, fix.group) = (None, None);
                    if !fix.is_empty() {
                        status = self
                            .call("mkdir", &path, self.client.set_attr(&target, fix))
                            .await?;
                    }
                }
                Err(e) => {
                    warn!(op = "mkdir", path = %path, error = %e, "failed");
                    return Err(crate::errno::errno(&e));
                }
            }
        }
        let ino = self.inodes.remember(parent, name, status.inode);
        self.inodes.cache_dir(ino, &status);
        self.dir_changed(parent, now_ms());
        Ok(self.attr(ino, &status))
    }

    /// CREATE of `name` in `parent`: the new file's attributes and a handle
    /// that writes it (or, as open(2) would, one on the existing file
    /// without `O_EXCL`).
    pub(super) async fn create_file(
        &self,
        req: (u32, u32),
        parent: u64,
        name: &str,
        mode: u32,
        flags: i32,
    ) -> Result<(FileAttr, u64), Errno> {
        let (path, target) = self.child_ref(parent, name)?;
        let opts = CreateOptions {
            mode: Some(mode & 0o7777),
            owner: Some(self.owners.user_name(req.0)),
            group: Some(self.owners.group_name(req.1)),
            ..CreateOptions::default()
        };
        match self
            .call("create", &path, self.client.create(&target, opts))
            .await
        {
            Ok(fw) => {
                // The namenode's owner and group: the local caller's, or the
                // mount's user's when it is not the superuser.
                let (owner, group) = fw.owner_and_group();
                let status = new_file_status(&path, mode, owner.to_string(), group.to_string());
                // Whatever the table knew under this name is gone.
                self.inodes.unlink(parent, name);
                let ino = self.inodes.remember(parent, name, fw.inode());
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
                    .call("create", &path, self.client.status(&target))
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

    /// UNLINK (`dir` false) or RMDIR (`dir` true) of `name` in `parent`.
    pub(super) async fn remove(&self, parent: u64, name: &str, dir: bool) -> Result<(), Errno> {
        let (path, target) = self.child_ref(parent, name)?;
        let open_writer = match self.inodes.find(parent, name) {
            Some(ino) => self.settle(ino).await,
            None => None,
        };
        // The namenode refuses another kind of entry than the kernel saw
        // (another client may have replaced the file by a directory).
        let (op, kind) = if dir {
            ("rmdir", FileType::Dir)
        } else {
            ("unlink", FileType::File)
        };
        self.call(op, &path, self.client.delete_kind(&target, false, kind))
            .await?;
        if let Some(w) = open_writer {
            // Still open: it will be abandoned at release, not completed.
            w.mark_unlinked();
        }
        self.inodes.unlink(parent, name);
        self.dir_changed(parent, now_ms());
        Ok(())
    }

    /// Marks `w` unlinked (abandoned at its release) if its file is gone
    /// from the namenode: the kernel's name for it may be stale (another
    /// client may have moved it), so only the namenode says whether a
    /// rename replaced it.
    async fn abandon_if_deleted(&self, w: &Writer) {
        let Some(id) = w.nn_inode() else { return };
        let target = inode_path(id, None);
        let status = self.client.status(&target);
        if let Ok(Err(dfs_client::Error::NotFound { .. })) =
            tokio::time::timeout(self.opts.rpc_timeout, status).await
        {
            debug!(path = %w.path(), "file being written replaced by a rename: it will be abandoned");
            w.mark_unlinked();
        }
    }

    /// RENAME of `name` in `parent` to `new_name` in `new_parent`.
    pub(super) async fn rename_entry(
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
        let (src, src_target) = self.child_ref(parent, name)?;
        let (dst, dst_target) = self.child_ref(new_parent, new_name)?;
        // Files being written under the source go on being written: their
        // namenode calls name them by inode (the path they keep is for
        // messages). A file being written at the destination, found by
        // the inode the kernel knows there, is waited for if it is being
        // committed, so the rename replaces the complete file; if it is
        // still open and the rename deleted it, it is abandoned at its
        // release, as after an unlink.
        let moved = self.handles.active_writers_under(&src);
        let src_ino = self.inodes.find(parent, name);
        let replaced = match self.inodes.find(new_parent, new_name) {
            Some(ino) if Some(ino) != src_ino => match self.handles.active_writer(ino) {
                Some(w) if self.settle_writer(&w).await => Some(w),
                _ => None,
            },
            _ => None,
        };
        self.call(
            "rename",
            &src,
            self.client.rename(&src_target, &dst_target, overwrite),
        )
        .await?;
        for w in moved {
            w.moved(&src, &dst);
        }
        if let Some(w) = replaced {
            self.abandon_if_deleted(&w).await;
        }
        self.inodes.rename(parent, name, new_parent, new_name);
        let now = now_ms();
        self.dir_changed(parent, now);
        self.dir_changed(new_parent, now);
        Ok(())
    }
}
