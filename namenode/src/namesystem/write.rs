//! The write path on the namesystem state: create, addBlock, fsync,
//! complete and abandon, for a client that holds the file's lease.

use std::collections::HashSet;
use std::time::Instant;

use dfs_proto::image::InodeRecord;
use dfs_proto::{
    AbandonBlockRequest, AddBlockRequest, CompleteRequest, CreateRequest, DatanodeInfo,
    ExtendedBlock, FileStatus, FsyncRequest, LocatedBlock,
};

use super::State;
use crate::blocks::{BlockInfo, BlockState, ReplicaKind};
use crate::datanodes::NodeIdx;
use crate::error::{Error, Result};
use crate::namespace::{now_ms, stamp_mtime, AttrChange, CreateArgs, NewAttrs, RECOVERY_HOLDER};
use crate::permission::Caller;
use crate::placement::{choose_targets, out_of_space, Request, Skip};
use crate::store::{Change, Store};

/// The caller's view of a file it writes.
pub(crate) struct Writing {
    pub id: u64,
    pub path: String,
    pub rec: InodeRecord,
}

impl State {
    /// Resolves a file the caller must be writing (holding its lease), by
    /// its inode id when the caller gives one (else by path).
    pub(crate) fn writing(
        &mut self,
        path: &str,
        file_id: u64,
        client: &str,
        now: Instant,
    ) -> Result<Writing> {
        let (id, norm, inode) = self.ns.resolve_written(path, file_id)?;
        let holder = inode.rec.lease_holder.as_str();
        let message = if holder.is_empty() {
            Some("not open for writing: the file is closed and files are write-once".to_string())
        } else if holder == RECOVERY_HOLDER {
            Some(format!(
                "the lease of {client} was recovered; the file is being closed"
            ))
        } else if holder != client {
            Some(format!(
                "{client} does not hold the lease: the file is being written by {holder}"
            ))
        } else {
            None
        };
        if let Some(message) = message {
            return Err(Error::LeaseExpired {
                path: norm,
                message,
            });
        }
        let rec = inode.rec.clone();
        self.leases.renew(client, now);
        Ok(Writing {
            id,
            path: norm,
            rec,
        })
    }

    pub(crate) fn create(
        &mut self,
        store: &Store,
        req: CreateRequest,
        now: Instant,
    ) -> Result<(FileStatus, u64)> {
        let mut args = CreateArgs {
            path: req.path,
            client_name: req.client_name,
            overwrite: req.overwrite,
            create_parents: req.create_parents,
            replication: req.replication,
            block_size: req.block_size,
            attrs: NewAttrs {
                mode: req.mode,
                owner: req.owner,
                group: req.group,
            },
            lapsed_holder: None,
        };
        args.lapsed_holder = self.lapsed_holder(&args, now);
        let (batch, created) = self
            .ns
            .plan_create(&args, now_ms())
            .map_err(|e| self.explain_held(e, now))?;
        if let Some(old) = &created.replaced {
            if !old.lease_holder.is_empty() && old.lease_holder != args.client_name {
                tracing::info!(
                    path = %created.path,
                    holder = %old.lease_holder,
                    client = %args.client_name,
                    "replacing a file whose writer stopped renewing its lease (past the soft limit)"
                );
            }
        }
        let seq = self.commit(store, batch)?;
        if let Some(old) = &created.replaced {
            self.forget_file(old);
        }
        self.leases.add(&args.client_name, created.id, now);
        let status = self
            .ns
            .status(created.id, created.path.clone())
            .ok_or(Error::NotFound { path: created.path })?;
        Ok((status, seq))
    }

    /// For a create that replaces a file: the holder of the file's lease
    /// when another client's lease is past the soft limit (or the file is
    /// being recovered), so the create may replace it rather than wait for
    /// the hard limit. (HDFS's overwrite replaces it whatever its lease.)
    fn lapsed_holder(&self, args: &CreateArgs, now: Instant) -> Option<String> {
        if !args.overwrite {
            return None;
        }
        let (_, _, inode) = self.ns.resolve_file(&args.path).ok()?;
        let holder = &inode.rec.lease_holder;
        if !inode.under_construction() || *holder == args.client_name {
            return None;
        }
        let lapsed = holder == RECOVERY_HOLDER
            || self
                .leases
                .age(holder, now)
                .is_some_and(|age| age > self.cfg.lease_soft_limit);
        lapsed.then(|| holder.clone())
    }

    /// Says, for a file another client writes, when it may be replaced.
    fn explain_held(&self, e: Error, now: Instant) -> Error {
        match e {
            Error::LeaseHeld { path, holder } => {
                let age = self.leases.age(&holder, now).unwrap_or_default();
                Error::LeaseHeld {
                    path: format!(
                        "{path} (lease renewed {}s ago: it may be replaced once the writer has not renewed it for {}s)",
                        age.as_secs(),
                        self.cfg.lease_soft_limit.as_secs()
                    ),
                    holder,
                }
            }
            e => e,
        }
    }

    /// Maps client-given node names (ids or addresses) to nodes.
    pub(crate) fn node_set(&self, names: &[String]) -> HashSet<NodeIdx> {
        names.iter().filter_map(|n| self.dns.find(n)).collect()
    }

    /// True if every node of `pipeline` is registered and not dead, and
    /// none is in `excluded`: a never-written block allocated on them may
    /// be handed out again.
    pub(crate) fn pipeline_usable(&self, pipeline: &[String], excluded: &HashSet<NodeIdx>) -> bool {
        !pipeline.is_empty()
            && pipeline
                .iter()
                .all(|id| self.dns.lookup(id).is_some_and(|i| !excluded.contains(&i)))
    }

    fn infos(&self, ids: &[String]) -> Vec<DatanodeInfo> {
        ids.iter()
            .filter_map(|id| self.dns.find(id))
            .map(|i| self.dns.get(i).info())
            .collect()
    }

    pub(crate) fn add_block(
        &mut self,
        store: &Store,
        req: AddBlockRequest,
        peer_host: &str,
        now: Instant,
    ) -> Result<(LocatedBlock, u64)> {
        let w = self.writing(&req.path, req.file_id, &req.client_name, now)?;
        let mut rec = w.rec;
        let mut n = rec.blocks.len();
        let offset_of = |k: usize, rec: &InodeRecord| {
            rec.blocks[..k]
                .iter()
                .fold(0u64, |a, b| a.saturating_add(b.length))
        };
        // A retried call whose answer was lost: hand out the same block
        // again, if its datanodes are all registered and alive and the
        // writer excluded none of them. After a restart they may not be
        // registered yet (or no longer be); the block was never written,
        // so it is replaced by a new one on nodes that are here.
        let retried = match (&req.previous, rec.blocks.last()) {
            (None, Some(_)) => n == 1,
            (Some(p), Some(_)) => n >= 2 && rec.blocks[n - 2].id == p.id,
            _ => false,
        } && self.unwritten_last_block(&rec);
        let excluded = self.node_set(&req.excluded_nodes);
        let mut replaced = None;
        if retried {
            if self.pipeline_usable(&rec.pipeline, &excluded) {
                return Ok((
                    self.located_new(&rec, offset_of(n - 1, &rec)),
                    store.last_applied(),
                ));
            }
            replaced = rec.blocks.pop().map(|b| b.id);
            rec.pipeline.clear();
            n -= 1;
        }
        match (&req.previous, rec.blocks.last()) {
            (None, None) => {}
            (Some(p), Some(last)) if p.id == last.id => {
                if p.generation_stamp != last.generation_stamp {
                    return Err(Error::StaleBlock {
                        message: format!(
                            "{}: previous block {p} does not match the current generation stamp {}",
                            w.path, last.generation_stamp
                        ),
                    });
                }
            }
            (Some(p), last) => {
                return Err(Error::invalid(format!(
                    "{}: previous block {p} is not the file's last block ({})",
                    w.path,
                    last.map_or("none".to_string(), |l| format!(
                        "blk_{}_{}",
                        l.id, l.generation_stamp
                    ))
                )))
            }
            (None, Some(last)) => {
                return Err(Error::invalid(format!(
                    "{}: the previous block (blk_{}) must be given with its final length",
                    w.path, last.id
                )))
            }
        }
        if let Some(p) = &req.previous {
            check_length(&w.path, p, rec.block_size)?;
        }
        let writer = if req.client_host.is_empty() {
            peer_host
        } else {
            req.client_host.as_str()
        };
        let mut cands = self.dns.candidates(now, rec.block_size);
        // Nodes that refused this client's block as full are full, whatever
        // their last heartbeat said.
        let refused_full = self.node_set(&req.full_nodes);
        for c in &mut cands {
            if c.skip.is_none() && refused_full.contains(&c.idx) {
                c.skip = Some(Skip::Full);
            }
        }
        let request = Request {
            needed: rec.replication as usize,
            existing: &[],
            writer_host: Some(writer),
            excluded: &excluded,
        };
        let placement = choose_targets(&cands, &request, &mut rand::rng());
        if placement.targets.is_empty()
            && self.dns.all().is_empty()
            && now < self.replication_ready_at
        {
            // Just restarted: the datanodes register within a heartbeat.
            // Said as safe mode, which the writer retries.
            return Err(Error::SafeMode {
                op: "allocate a block",
                status: "the namenode started moments ago and no datanode has registered yet"
                    .into(),
                by_admin: false,
            });
        }
        if placement.targets.is_empty() {
            let why = placement.shortfall.unwrap_or_default();
            if out_of_space(&cands) {
                return Err(Error::StorageFull {
                    message: format!(
                        "no space for a new block of {}: every datanode is full ({why})",
                        w.path
                    ),
                });
            }
            return Err(Error::NoDatanodes {
                message: format!(
                    "cannot allocate a block for {} (replication {}): {why}",
                    w.path, rec.replication,
                ),
            });
        }
        if let Some(why) = &placement.shortfall {
            tracing::warn!(path = %w.path, "new block will be under-replicated: {why}");
        }
        // Commit the previous block.
        let previous = req.previous;
        if let (Some(p), Some(last)) = (&previous, rec.blocks.last_mut()) {
            last.length = p.length;
            last.under_construction = false;
        }
        let mut counters = self.ns.counters();
        let block_id = counters.next_block;
        counters.next_block += 1;
        counters.generation_stamp += 1;
        let gs = counters.generation_stamp;
        let pipeline: Vec<String> = placement
            .targets
            .iter()
            .map(|t| self.dns.get(*t).id.clone())
            .collect();
        for t in &placement.targets {
            self.dns.schedule(*t, now);
        }
        rec.blocks.push(dfs_proto::image::BlockRecord {
            id: block_id,
            generation_stamp: gs,
            length: 0,
            under_construction: true,
        });
        rec.pipeline = pipeline.clone();
        stamp_mtime(&mut rec, now_ms(), false);
        let seq = self.commit(
            store,
            vec![Change::PutInode(rec.clone()), Change::Counters(counters)],
        )?;
        if let Some(p) = previous {
            self.commit_block_in_map(p.id, p.length, now);
        }
        if let Some(old) = replaced {
            self.forget_block(old);
            tracing::info!(path = %w.path, old, new = block_id,
                "a retried block allocation got a new block: a datanode of the one allocated before is not live (not registered since a restart, or dead) or was excluded by the writer");
        }
        let mut info = BlockInfo::new(w.id, gs, 0, BlockState::UnderConstruction, rec.replication);
        info.pipeline = pipeline;
        info.scheduled = placement.targets.clone();
        self.blocks.insert(block_id, info);
        tracing::debug!(path = %w.path, block = block_id, gs, targets = ?rec.pipeline, "block allocated");
        Ok((self.located_new(&rec, offset_of(n, &rec)), seq))
    }

    /// True if the file's last block was allocated and never written (no
    /// length, no replica): a call that allocated it and lost its answer
    /// may be given it again.
    pub(crate) fn unwritten_last_block(&self, rec: &InodeRecord) -> bool {
        rec.blocks.last().is_some_and(|last| {
            last.under_construction
                && last.length == 0
                && self
                    .blocks
                    .get(last.id)
                    .is_some_and(|b| b.replicas.is_empty())
        })
    }

    /// The last block of `rec`, being written, at `offset`, with its pipeline.
    pub(crate) fn located_new(&self, rec: &InodeRecord, offset: u64) -> LocatedBlock {
        let last = rec.blocks.last().cloned().unwrap_or_default();
        LocatedBlock {
            block: Some(ExtendedBlock {
                id: last.id,
                generation_stamp: last.generation_stamp,
                length: last.length,
            }),
            offset,
            locations: self.infos(&rec.pipeline),
            corrupt: false,
            under_construction: true,
        }
    }

    /// Marks a block committed at its final length in the block map.
    pub(crate) fn commit_block_in_map(&mut self, id: u64, length: u64, now: Instant) {
        self.blocks.modify(id, |b| {
            b.len = length;
            // A finalized replica of another length than the writer's is bad.
            let gs = b.gs;
            for r in b.replicas.iter_mut() {
                if r.gs == gs && r.kind == ReplicaKind::Finalized && r.len != length {
                    r.corrupt = true;
                }
            }
            if b.state == BlockState::UnderConstruction {
                b.state = BlockState::Committed;
                b.committed_at = Some(now);
            }
            if b.is_safe() {
                b.state = BlockState::Complete;
            }
        });
    }

    pub(crate) fn fsync(&mut self, store: &Store, req: FsyncRequest, now: Instant) -> Result<u64> {
        let w = self.writing(&req.path, req.file_id, &req.client_name, now)?;
        let Some(given) = req.last_block else {
            return Ok(store.last_applied());
        };
        let mut rec = w.rec;
        check_length(&w.path, &given, rec.block_size)?;
        let Some(last) = rec.blocks.last_mut() else {
            return Err(Error::invalid(format!(
                "{}: fsync of {given} but the file has no block",
                w.path
            )));
        };
        if last.id != given.id {
            return Err(Error::invalid(format!(
                "{}: fsync of {given}, which is not the file's last block",
                w.path
            )));
        }
        if !last.under_construction || given.length <= last.length {
            return Ok(store.last_applied());
        }
        last.length = given.length;
        let (id, len) = (last.id, last.length);
        let seq = self.commit(store, vec![Change::PutInode(rec)])?;
        self.blocks.modify(id, |b| {
            if b.state == BlockState::UnderConstruction {
                b.len = len;
            }
        });
        Ok(seq)
    }

    pub(crate) fn complete(
        &mut self,
        store: &Store,
        caller: &Caller,
        req: CompleteRequest,
        now: Instant,
    ) -> Result<(bool, u64)> {
        // A retry after a lost answer: the file is closed with this last block.
        if let Ok((_, path, i)) = self.ns.resolve_written(&req.path, req.file_id) {
            let same = match (i.rec.blocks.last(), &req.last) {
                (None, None) => true,
                (Some(b), Some(l)) => b.id == l.id && b.generation_stamp == l.generation_stamp,
                _ => false,
            };
            if !i.under_construction() && same {
                // The close this retries stored its attributes; a close by
                // lease recovery (another client's recoverLease meanwhile)
                // did not. (An attribute another client changed between
                // the two also fails the retry: rare, and said, not hidden.)
                let attrs = req.attrs.clone().map(AttrChange::from).unwrap_or_default();
                if !attrs.stored_in(&i.rec) {
                    return Err(Error::LeaseExpired {
                        path,
                        message: "the file was closed by lease recovery, without the attributes given with the close".into(),
                    });
                }
                return Ok((true, store.last_applied()));
            }
        }
        let w = self.writing(&req.path, req.file_id, &req.client_name, now)?;
        let mut rec = w.rec;
        if let Some(l) = &req.last {
            check_length(&w.path, l, rec.block_size)?;
        }
        let attrs = req.attrs.map(AttrChange::from).unwrap_or_default();
        attrs.check(&w.path)?;
        self.check_attr_change(caller, &w.path, &attrs)?;
        match (rec.blocks.last_mut(), &req.last) {
            (None, None) => {}
            (Some(b), Some(l)) if b.id == l.id => {
                if b.generation_stamp != l.generation_stamp {
                    return Err(Error::StaleBlock {
                        message: format!(
                            "{}: last block {l} does not match the current generation stamp {}",
                            w.path, b.generation_stamp
                        ),
                    });
                }
                b.length = l.length;
                b.under_construction = false;
            }
            (b, l) => {
                return Err(Error::invalid(format!(
                    "{}: complete with last block {} but the file's last block is {}",
                    w.path,
                    l.as_ref().map_or("none".to_string(), |l| l.to_string()),
                    b.map_or("none".to_string(), |b| format!(
                        "blk_{}_{}",
                        b.id, b.generation_stamp
                    ))
                )))
            }
        }
        if let Some(l) = &req.last {
            self.commit_block_in_map(l.id, l.length, now);
        }
        let waiting: Vec<u64> = rec
            .blocks
            .iter()
            .filter(|b| {
                self.blocks
                    .get(b.id)
                    .is_none_or(|i| i.good().next().is_none())
            })
            .map(|b| b.id)
            .collect();
        if !waiting.is_empty() {
            tracing::debug!(path = %w.path, ?waiting, "complete: waiting for a finalized replica");
            return Ok((false, store.last_applied()));
        }
        let holder = rec.lease_holder.clone();
        let (seq, ids, length) = self.close_file(store, w.id, rec, &holder, attrs)?;
        for id in &ids {
            self.blocks.modify(*id, |b| {
                b.state = BlockState::Complete;
                b.pipeline.clear();
            });
        }
        self.repl.check_all(ids);
        tracing::debug!(path = %w.path, client = %holder, length, "file closed");
        Ok((true, seq))
    }

    /// Closes the file `id` in its record: no lease holder, no pipeline,
    /// no block under construction, a new mtime (unless a client set one
    /// while writing), then the `attrs` the
    /// writer asked for (checked); commits it and drops the lease of
    /// `holder`. Returns the edit's sequence number, the file's block ids
    /// and its length; the caller settles the block map.
    pub(crate) fn close_file(
        &mut self,
        store: &Store,
        id: u64,
        mut rec: InodeRecord,
        holder: &str,
        attrs: AttrChange,
    ) -> Result<(u64, Vec<u64>, u64)> {
        rec.lease_holder.clear();
        rec.pipeline.clear();
        stamp_mtime(&mut rec, now_ms(), true);
        attrs.apply(&mut rec);
        for b in &mut rec.blocks {
            b.under_construction = false;
        }
        let ids: Vec<u64> = rec.blocks.iter().map(|b| b.id).collect();
        let length = rec
            .blocks
            .iter()
            .fold(0u64, |a, b| a.saturating_add(b.length));
        let seq = self.commit(store, vec![Change::PutInode(rec)])?;
        self.leases.remove(holder, id);
        Ok((seq, ids, length))
    }

    pub(crate) fn abandon_block(&mut self, store: &Store, req: AbandonBlockRequest) -> Result<u64> {
        let w = self.writing(&req.path, req.file_id, &req.client_name, Instant::now())?;
        let block = req
            .block
            .ok_or_else(|| Error::invalid(format!("{}: abandon without a block", w.path)))?;
        let mut rec = w.rec;
        match rec.blocks.last() {
            Some(last) if last.id == block.id && last.under_construction => {}
            _ => {
                // Already abandoned (a retry) or never allocated.
                if rec.blocks.iter().all(|b| b.id != block.id) {
                    return Ok(store.last_applied());
                }
                return Err(Error::invalid(format!(
                    "{}: {block} is not the block being written",
                    w.path
                )));
            }
        }
        rec.blocks.pop();
        rec.pipeline.clear();
        let seq = self.commit(store, vec![Change::PutInode(rec)])?;
        self.forget_block(block.id);
        tracing::info!(path = %w.path, block = %block, "block abandoned");
        Ok(seq)
    }
}

/// Refuses a block length larger than the file's block size.
pub(crate) fn check_length(path: &str, b: &ExtendedBlock, block_size: u64) -> Result<()> {
    if b.length > block_size {
        return Err(Error::invalid(format!(
            "{path}: {b} has length {}, more than the file's block size {block_size}",
            b.length
        )));
    }
    Ok(())
}
