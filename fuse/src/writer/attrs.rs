//! The attributes of a file being written (tar sets mode, owner and times
//! before close): kept by its [`Writer`], shown by getattr through the
//! overlay, stored on the namenode by the next FLUSH or fsync (so a close()
//! that returned keeps them if the mount dies, as it keeps the bytes), and
//! stored again with the close, in the namenode edit that completes the
//! file; those set while the close runs are stored after it.

use std::time::{Duration, Instant};

use dfs_client::{Client, FileStatus, FileWriter, SetAttr};
use dfs_proto::path::inode_path;
use tracing::warn;

use super::{Info, Phase, Writer};

impl Writer {
    /// Keeps attributes to store at the next FLUSH or fsync and with the
    /// close (or after it, if it has started); false if the writer is not
    /// writing a new file (the caller stores them directly).
    pub fn defer_attrs(&self, attrs: &SetAttr) -> bool {
        let mut info = self.info.lock();
        if info.status.is_none() || info.failed.is_some() || self.phase() == Phase::Done {
            return false;
        }
        info.pending.merge(attrs.clone());
        info.pending_gen += 1;
        true
    }

    /// Stores on the namenode the attributes deferred since they were last
    /// stored, so that a close() or fsync that returns keeps them even if
    /// this process dies before the commit (lease recovery then completes
    /// the file, and the namenode keeps an mtime set this way). They stay
    /// deferred too: the commit carries them in its edit as ever. Sent to
    /// the file's namenode inode (its inode path), so they reach it
    /// wherever it was renamed, and a file another client put at its old
    /// path is left alone. One namenode call when there is something new.
    pub async fn store_deferred_attrs(&self, client: &Client) -> dfs_client::Result<()> {
        if !self.attrs_due() {
            return Ok(());
        }
        let _in_order = self.storing_attrs.lock().await;
        let (inode, attrs, gen) = {
            let info = self.info.lock();
            match info.nn_inode {
                Some(inode) if self.due(&info) => (inode, info.pending.clone(), info.pending_gen),
                _ => return Ok(()),
            }
        };
        client
            .set_attr_of(&inode_path(inode, None), inode, attrs)
            .await?;
        let mut info = self.info.lock();
        info.stored_gen = info.stored_gen.max(gen);
        Ok(())
    }

    /// True if attributes were deferred since they were last stored, and
    /// [`store_deferred_attrs`](Self::store_deferred_attrs) would store them.
    pub fn attrs_due(&self) -> bool {
        self.due(&self.info.lock())
    }

    fn due(&self, info: &Info) -> bool {
        info.pending_gen != info.stored_gen
            && !info.pending.is_empty()
            && !info.unlinked
            && info.nn_inode.is_some()
            && self.phase() == Phase::Open
    }

    /// The file's status while written: what the namenode knows, with the
    /// length and attributes this mount knows better. `None` when this
    /// writer has nothing to add (an existing file opened for writing).
    pub fn overlay(&self, base: Option<&FileStatus>) -> Option<FileStatus> {
        let info = self.info.lock();
        let own = info.status.as_ref()?;
        if self.phase() == Phase::Done && !base.is_some_and(|b| b.under_construction) {
            return None;
        }
        let mut s = base.cloned().unwrap_or_else(|| own.clone());
        s.length = s.length.max(info.bytes);
        s.mtime = info.last_write_ms.max(s.mtime);
        let mut attrs = info.applying.clone();
        attrs.merge(info.pending.clone());
        s.mtime = attrs.mtime.unwrap_or(s.mtime);
        s.atime = attrs.atime.unwrap_or(s.atime);
        s.mode = attrs.mode.unwrap_or(s.mode);
        if let Some(owner) = attrs.owner {
            s.owner = owner;
        }
        if let Some(group) = attrs.group {
            s.group = group;
        }
        Some(s)
    }

    /// Hands the attributes deferred so far to `writer`, to be stored with
    /// its close (shown as being applied until then). Attributes it refuses
    /// stay deferred, for [`store_pending`](Self::store_pending) to report.
    pub(super) fn attrs_on_close(&self, writer: &mut FileWriter) {
        let mut info = self.info.lock();
        if info.pending.is_empty() {
            return;
        }
        if writer.set_attrs_on_close(&info.pending).is_ok() {
            let pending = std::mem::take(&mut info.pending);
            info.applying.merge(pending);
        }
    }

    /// Stores deferred attributes until none are left, then marks the
    /// writer done in the same critical section, so an attribute deferred
    /// meanwhile is never lost.
    pub(super) async fn store_pending(
        &self,
        client: &Client,
        path: &str,
        inode: u64,
        timeout: Duration,
    ) {
        loop {
            let pending = {
                let mut info = self.info.lock();
                let pending = std::mem::take(&mut info.pending);
                if pending.is_empty() {
                    info.applying = SetAttr::default();
                    info.done_at = Some(Instant::now());
                    self.phase.send_replace(Phase::Done);
                    return;
                }
                info.applying.merge(pending.clone());
                pending
            };
            let target = inode_path(inode, None);
            let store = client.set_attr_of(&target, inode, pending);
            match tokio::time::timeout(timeout, store).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    warn!(path = %path, error = %e, "storing attributes after close failed")
                }
                Err(_) => warn!(path = %path, ?timeout, "storing attributes after close timed out"),
            }
        }
    }
}
