//! ClientProtocol operations on the [`Namesystem`]: namespace calls, and
//! the entry points of the write path (see `write`) and the read path (see
//! `read`), each taking the lock and, for a mutation, waiting for its
//! group commit.

use std::time::Instant;

use dfs_proto::{
    AbandonBlockRequest, AddBlockRequest, CompleteRequest, CreateRequest, EntryKind, FileStatus,
    FsyncRequest, GetBlockLocationsRequest, GetBlockLocationsResponse, LocatedBlock, MkdirsRequest,
    ReportBadBlocksRequest, SetAttrRequest,
};

use dfs_proto::defaults::{LOCATED_LIST_BLOCKS, LOCATED_LIST_PAGE};

use super::access::owned_by;
use super::Namesystem;
use crate::error::{Error, Result};
use crate::namespace::{now_ms, AttrChange, Need, NewAttrs, Summary};
use crate::permission::{Access, Caller};

impl Namesystem {
    /// Status of a path.
    pub fn get_file_info(&self, caller: &Caller, path: &str) -> Result<FileStatus> {
        self.read(|st| {
            let path = &*st.ns.expand(path)?;
            st.ns.check(caller, path, &Need::default())?;
            st.ns.get_file_info(path)
        })
    }

    /// The answer to a create that ran before the namenode restarted (its
    /// answer was lost, see [`crate::retry_cache`]): the file at `path`
    /// and its first block, if `client` still holds it and has not written
    /// it. Refused if the file is no longer the one that create made (it
    /// was closed, or replaced by another client's).
    pub fn created(
        &self,
        caller: &Caller,
        path: &str,
        client: &str,
    ) -> Result<(FileStatus, Option<LocatedBlock>)> {
        self.read(|st| {
            let path = &*st.ns.expand(path)?;
            st.ns.check(caller, path, &Need::default())?;
            let (_, norm, inode) = st.ns.resolve_file(path)?;
            if inode.rec.lease_holder != client {
                return Err(Error::LeaseExpired {
                    path: norm,
                    message: "the file this create made before the namenode restarted was \
                              closed or replaced since"
                        .into(),
                });
            }
            // Without all its datanodes (not registered yet after the
            // restart), no block: the writer's first write allocates one.
            let block = (inode.rec.blocks.len() == 1
                && st.unwritten_last_block(&inode.rec)
                && st.pipeline_usable(&inode.rec.pipeline, &Default::default()))
            .then(|| st.located_new(&inode.rec, 0));
            Ok((st.ns.get_file_info(path)?, block))
        })
    }

    /// Status of a path and, for a file, the locations of all its blocks,
    /// read under one lock so the two agree.
    /// A file the caller may not read comes without its locations.
    pub fn located_file_info(
        &self,
        caller: &Caller,
        path: &str,
        client_host: &str,
        peer_host: &str,
    ) -> Result<(FileStatus, Option<GetBlockLocationsResponse>)> {
        self.read(|st| {
            let path = &*st.ns.expand(path)?;
            st.ns.check(caller, path, &Need::default())?;
            let readable = st.ns.check(caller, path, &Need::target(Access::READ));
            if let Err(Error::PermissionDenied { .. }) = readable {
                return Ok((st.ns.get_file_info(path)?, None));
            }
            let req = GetBlockLocationsRequest {
                path: path.to_string(),
                offset: 0,
                length: 0,
                client_host: client_host.to_string(),
            };
            // One resolve for a file: the locations carry its status.
            match st.block_locations(&req, peer_host, Instant::now()) {
                Ok(mut located) => {
                    let status = located.status.take().unwrap_or_default();
                    Ok((status, Some(located)))
                }
                Err(Error::IsADirectory { .. }) => Ok((st.ns.get_file_info(path)?, None)),
                Err(e) => Err(e),
            }
        })
    }

    /// One page of a listing.
    pub fn list_status(
        &self,
        caller: &Caller,
        path: &str,
        start_after: &str,
        limit: u32,
    ) -> Result<(Vec<FileStatus>, bool)> {
        self.read(|st| {
            let path = &*st.ns.expand(path)?;
            st.check_listing(caller, path)?;
            st.ns.list(path, start_after, limit)
        })
    }

    /// One page of a listing with, for each file, the locations of its
    /// first blocks (at most [`LOCATED_LIST_BLOCKS`]), read under one lock
    /// so the two agree. A directory's locations are empty, and so are
    /// those of a file the caller may not read.
    pub fn list_located(
        &self,
        caller: &Caller,
        path: &str,
        start_after: &str,
        limit: u32,
        client_host: &str,
        peer_host: &str,
    ) -> Result<(Vec<FileStatus>, Vec<GetBlockLocationsResponse>, bool)> {
        let limit = match limit {
            0 => LOCATED_LIST_PAGE,
            n => n.min(LOCATED_LIST_PAGE),
        };
        self.read(|st| {
            let path = &*st.ns.expand(path)?;
            st.check_listing(caller, path)?;
            let (entries, has_more) = st.ns.list(path, start_after, limit)?;
            let reader = st.reader_site(client_host, peer_host);
            let now = Instant::now();
            let located = entries
                .iter()
                .map(|e| match st.ns.inode(e.inode) {
                    Some(inode)
                        if !inode.is_dir() && st.ns.allows(caller, e.inode, Access::READ) =>
                    {
                        st.located(inode, e.clone(), 0, 0, &reader, now, LOCATED_LIST_BLOCKS)
                    }
                    _ => GetBlockLocationsResponse::default(),
                })
                .collect();
            Ok((entries, located, has_more))
        })
    }

    /// Totals of a subtree.
    pub fn content_summary(&self, caller: &Caller, path: &str) -> Result<Summary> {
        self.read(|st| {
            let path = &*st.ns.expand(path)?;
            st.ns
                .check(caller, path, &Need::sub(Access::READ_EXECUTE))?;
            st.ns.content_summary(path)
        })
    }

    /// `mkdir` / `mkdir -p`.
    pub async fn mkdirs(&self, caller: &Caller, mut req: MkdirsRequest) -> Result<FileStatus> {
        let (status, seq) = self.mutate(Some("create a directory"), |st, store| {
            req.path = st.ns.expand(&req.path)?.into_owned();
            st.ns.check_creatable(&req.path)?;
            let need = Need {
                ancestor: Some(Access::WRITE),
                ..Need::default()
            };
            st.ns.check(caller, &req.path, &need)?;
            let attrs = owned_by(
                caller,
                NewAttrs {
                    mode: req.mode,
                    owner: req.owner,
                    group: req.group,
                },
            )?;
            let (batch, id, path) = st
                .ns
                .plan_mkdirs(&req.path, req.parents, &attrs, now_ms())?;
            let seq = st.commit(store, batch)?;
            Ok((st.ns.status(id, path), seq))
        })?;
        self.durable(seq).await?;
        status.ok_or_else(|| Error::NotFound { path: req.path })
    }

    /// Deletes a file or a directory (recursively if asked), refusing
    /// another kind of entry than `expect`.
    pub async fn delete(
        &self,
        caller: &Caller,
        path: &str,
        recursive: bool,
        expect: EntryKind,
    ) -> Result<()> {
        let seq = self.mutate(Some("delete"), |st, store| {
            let path = &*st.ns.expand(path)?;
            let need = Need {
                parent: Some(Access::WRITE),
                sticky: true,
                sub: recursive.then_some(Access::ALL),
                sub_skips_empty: true,
                ..Need::default()
            };
            // First: the kind of an entry the caller may not delete is
            // none of its business.
            st.ns.check(caller, path, &need)?;
            if expect != EntryKind::Any {
                let (id, norm) = st.ns.resolve(path)?;
                let is_dir = st.ns.inode(id).is_some_and(|i| i.is_dir());
                match (expect, is_dir) {
                    (EntryKind::File, true) => return Err(Error::IsADirectory { path: norm }),
                    (EntryKind::Directory, false) => {
                        return Err(Error::NotADirectory { path: norm })
                    }
                    _ => {}
                }
            }
            let (batch, removed) = st.ns.plan_delete(path, recursive, now_ms())?;
            let seq = st.commit(store, batch)?;
            let blocks: usize = removed.iter().map(|f| f.blocks.len()).sum();
            for f in &removed {
                st.forget_file(f);
            }
            tracing::info!(
                path,
                files = removed.len(),
                blocks,
                "deleted; replicas queued for deletion"
            );
            Ok(seq)
        })?;
        self.durable(seq).await
    }

    /// POSIX rename.
    pub async fn rename(
        &self,
        caller: &Caller,
        src: &str,
        dst: &str,
        overwrite: bool,
    ) -> Result<()> {
        let seq = self.mutate(Some("rename"), |st, store| {
            let (src, dst) = (&*st.ns.expand(src)?, &*st.ns.expand(dst)?);
            st.ns.check_creatable(dst)?;
            let need = Need {
                parent: Some(Access::WRITE),
                sticky: true,
                ..Need::default()
            };
            st.ns.check(caller, src, &need)?;
            st.ns.check(caller, dst, &need)?;
            let (batch, removed) = st.ns.plan_rename(src, dst, overwrite, now_ms())?;
            let seq = st.commit(store, batch)?;
            for f in &removed {
                st.forget_file(f);
            }
            Ok(seq)
        })?;
        self.durable(seq).await
    }

    /// chmod / chown / utimes.
    pub async fn set_attr(&self, caller: &Caller, mut req: SetAttrRequest) -> Result<FileStatus> {
        let (status, seq) = self.mutate(Some("change attributes"), |st, store| {
            req.path = st.ns.expand(&req.path)?.into_owned();
            let change = AttrChange {
                mode: req.mode,
                owner: req.owner.clone(),
                group: req.group.clone(),
                mtime_ms: req.mtime_ms,
                atime_ms: req.atime_ms,
            };
            // A writer names its file by inode: check the path it has now.
            let path = match req.inode {
                Some(id) if id != 0 => st.ns.path_of(id).unwrap_or_else(|| req.path.clone()),
                _ => req.path.clone(),
            };
            st.check_attr_change(caller, &path, &change)?;
            let (batch, id, path) = st.ns.plan_set_attr(&req.path, change, req.inode)?;
            let seq = st.commit(store, batch)?;
            Ok((st.ns.status(id, path), seq))
        })?;
        self.durable(seq).await?;
        status.ok_or_else(|| Error::NotFound { path: req.path })
    }

    /// Changes a file's replication; the monitor adds or trims replicas.
    pub async fn set_replication(
        &self,
        caller: &Caller,
        path: &str,
        replication: u32,
    ) -> Result<()> {
        let seq = self.mutate(Some("change replication"), |st, store| {
            let path = &*st.ns.expand(path)?;
            st.ns.check(caller, path, &Need::target(Access::WRITE))?;
            let (batch, id) = st.ns.plan_set_replication(path, replication)?;
            let seq = st.commit(store, batch)?;
            let ids: Vec<u64> = st
                .ns
                .inode(id)
                .map(|i| i.rec.blocks.iter().map(|b| b.id).collect())
                .unwrap_or_default();
            for b in &ids {
                st.blocks.modify(*b, |info| info.expected = replication);
            }
            st.repl.check_all(ids);
            tracing::info!(path, replication, "replication changed");
            Ok(seq)
        })?;
        self.kick.notify_one();
        self.durable(seq).await
    }

    /// Creates a file under construction, leased to the client.
    pub async fn create(&self, caller: &Caller, req: CreateRequest) -> Result<FileStatus> {
        Ok(self.create_located(caller, req, "").await?.0)
    }

    /// Creates a file under construction, leased to the client, and when
    /// `allocate_block` is asked also its first block and pipeline, made
    /// durable by the same flush. A block that cannot be placed is left
    /// out (the writer's `AddBlock` then says why); the create stands.
    pub async fn create_located(
        &self,
        caller: &Caller,
        mut req: CreateRequest,
        peer_host: &str,
    ) -> Result<(FileStatus, Option<LocatedBlock>)> {
        let ((status, block), seq) = self.mutate(Some("create a file"), |st, store| {
            req.path = st.ns.expand(&req.path)?.into_owned();
            st.ns.check_creatable(&req.path)?;
            let need = Need {
                ancestor: Some(Access::WRITE),
                parent: Some(Access::WRITE),
                target: req.overwrite.then_some(Access::WRITE),
                // Replacing another's file in a sticky directory is removing it.
                sticky: req.overwrite,
                ..Need::default()
            };
            st.ns.check(caller, &req.path, &need)?;
            let attrs = owned_by(
                caller,
                NewAttrs {
                    mode: 0,
                    owner: std::mem::take(&mut req.owner),
                    group: std::mem::take(&mut req.group),
                },
            )?;
            (req.owner, req.group) = (attrs.owner, attrs.group);
            let now = Instant::now();
            let first = req.allocate_block.then(|| AddBlockRequest {
                path: req.path.clone(),
                client_name: req.client_name.clone(),
                previous: None,
                excluded_nodes: Vec::new(),
                client_host: req.client_host.clone(),
                file_id: 0,
                full_nodes: Vec::new(),
            });
            let (status, seq) = st.create(store, req, now)?;
            let Some(first) = first else {
                return Ok(((status, None), seq));
            };
            let path = first.path.clone();
            match st.add_block(store, first, peer_host, now) {
                Ok((block, seq)) => Ok(((status, Some(block)), seq)),
                Err(e) => {
                    tracing::debug!(path, error = %e, "created without a first block");
                    Ok(((status, None), seq))
                }
            }
        })?;
        self.durable(seq).await?;
        Ok((status, block))
    }

    /// Allocates the next block of a file and chooses its pipeline.
    pub async fn add_block(&self, req: AddBlockRequest, peer_host: &str) -> Result<LocatedBlock> {
        let (block, seq) = self.mutate(Some("allocate a block"), |st, store| {
            st.add_block(store, req, peer_host, Instant::now())
        })?;
        self.durable(seq).await?;
        Ok(block)
    }

    /// Records the acknowledged length of the last block (hflush).
    pub async fn fsync(&self, req: FsyncRequest) -> Result<()> {
        let seq = self.mutate(Some("sync a file"), |st, store| {
            st.fsync(store, req, Instant::now())
        })?;
        self.durable(seq).await
    }

    /// Commits the last block and closes the file once every block has a
    /// finalized replica; `false` means "not yet, retry".
    /// Attributes stored with the close are checked as a SetAttr by
    /// `caller` would be.
    pub async fn complete(&self, caller: &Caller, req: CompleteRequest) -> Result<bool> {
        let (done, seq) = self.mutate(Some("complete a file"), |st, store| {
            st.complete(store, caller, req, Instant::now())
        })?;
        self.durable(seq).await?;
        if done {
            self.kick.notify_one();
        }
        Ok(done)
    }

    /// Gives up the last block of a file being written.
    pub async fn abandon_block(&self, req: AbandonBlockRequest) -> Result<()> {
        let seq = self.mutate(Some("abandon a block"), |st, store| {
            st.abandon_block(store, req)
        })?;
        self.durable(seq).await
    }

    /// Renews every lease of a client.
    pub fn renew_lease(&self, client: &str) -> Result<()> {
        if client.is_empty() {
            return Err(Error::invalid("renew lease: client_name is empty"));
        }
        self.state.write().leases.renew(client, Instant::now());
        Ok(())
    }

    /// Block locations of a byte range.
    pub fn get_block_locations(
        &self,
        caller: &Caller,
        req: &GetBlockLocationsRequest,
        peer_host: &str,
    ) -> Result<GetBlockLocationsResponse> {
        self.read(|st| {
            let path = st.ns.expand(&req.path)?;
            if let std::borrow::Cow::Owned(path) = path {
                let req = GetBlockLocationsRequest {
                    path,
                    ..req.clone()
                };
                st.ns
                    .check(caller, &req.path, &Need::target(Access::READ))?;
                return st.block_locations(&req, peer_host, Instant::now());
            }
            st.ns
                .check(caller, &req.path, &Need::target(Access::READ))?;
            st.block_locations(req, peer_host, Instant::now())
        })
    }

    /// Marks replicas corrupt as reported by a client or a datanode.
    pub fn report_bad_blocks(&self, req: ReportBadBlocksRequest) -> Result<()> {
        self.mutate(None, |st, _| {
            for bad in req.replicas {
                let Some(block) = bad.block else { continue };
                st.mark_corrupt(&block, &bad.node_id, &bad.reason);
            }
            Ok(())
        })?;
        self.kick.notify_one();
        Ok(())
    }
}
