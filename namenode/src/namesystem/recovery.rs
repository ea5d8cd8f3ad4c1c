//! Recovery: lease recovery (RecoverLease, the hard limit, RecoverBlock to a
//! primary datanode, CommitBlockSynchronization) and pipeline recovery
//! (UpdateBlockForPipeline, UpdatePipeline, GetAdditionalDatanodes).

use std::time::Instant;

use dfs_proto::{
    datanode_command, CommitBlockSynchronizationRequest, DatanodeCommand, DatanodeInfo,
    ExtendedBlock, GetAdditionalDatanodesRequest, RecoverBlock, RecoverLeaseRequest,
    UpdatePipelineRequest,
};

use super::{Namesystem, State};
use crate::blocks::{BlockState, Recovery, Replica, ReplicaKind};
use crate::datanodes::NodeIdx;
use crate::error::{Error, Result};
use crate::namespace::{now_ms, stamp_mtime, AttrChange, Need, RECOVERY_HOLDER};
use crate::permission::{Access, Caller};
use crate::placement::{choose_targets, Request};
use crate::store::{Change, Store};

impl Namesystem {
    /// Starts (or checks) lease recovery of a file; true once it is
    /// closed. The caller needs write access to the file, unless it holds
    /// the file's lease (a writer giving up its own file, which may have
    /// been made read-only while written, as tar does).
    pub async fn recover_lease(
        &self,
        caller: &Caller,
        mut req: RecoverLeaseRequest,
    ) -> Result<bool> {
        let (closed, seq) = self.mutate(Some("recover a lease"), |st, store| {
            req.path = st.ns.expand(&req.path)?.into_owned();
            let own = st
                .ns
                .resolve_file(&req.path)
                .is_ok_and(|(_, _, i)| i.rec.lease_holder == req.client_name);
            let need = if own {
                Need::default()
            } else {
                Need::target(Access::WRITE)
            };
            st.ns.check(caller, &req.path, &need)?;
            st.recover_lease(store, &req, Instant::now())
        })?;
        self.durable(seq).await?;
        Ok(closed)
    }

    /// A new generation stamp for the block of a recovering pipeline.
    pub async fn update_block_for_pipeline(
        &self,
        client: &str,
        block: Option<ExtendedBlock>,
    ) -> Result<u64> {
        let (gs, seq) = self.mutate(Some("update a pipeline"), |st, store| {
            st.update_block_for_pipeline(store, client, block)
        })?;
        self.durable(seq).await?;
        Ok(gs)
    }

    /// Records a recovered pipeline.
    pub async fn update_pipeline(&self, req: UpdatePipelineRequest) -> Result<()> {
        let seq = self.mutate(Some("update a pipeline"), |st, store| {
            st.update_pipeline(store, req)
        })?;
        self.durable(seq).await
    }

    /// Replacement datanodes for a pipeline.
    pub fn get_additional_datanodes(
        &self,
        req: GetAdditionalDatanodesRequest,
    ) -> Result<Vec<DatanodeInfo>> {
        self.mutate(Some("add a datanode to a pipeline"), |st, _| {
            st.additional_datanodes(req, Instant::now())
        })
    }

    /// The outcome of a block recovery the namenode ordered.
    pub async fn commit_block_synchronization(
        &self,
        req: CommitBlockSynchronizationRequest,
    ) -> Result<()> {
        let seq = self.mutate(None, |st, store| {
            st.commit_block_sync(store, req, Instant::now())
        })?;
        self.kick.notify_one();
        self.durable(seq).await
    }
}

impl State {
    pub(crate) fn recover_lease(
        &mut self,
        store: &Store,
        req: &RecoverLeaseRequest,
        now: Instant,
    ) -> Result<(bool, u64)> {
        let (id, path, inode) = self.ns.resolve_file(&req.path)?;
        if !inode.under_construction() {
            return Ok((true, store.last_applied()));
        }
        let holder = inode.rec.lease_holder.clone();
        if holder != RECOVERY_HOLDER && holder != req.client_name && !req.force {
            let age = self.leases.age(&holder, now).unwrap_or_default();
            if age <= self.cfg.lease_soft_limit {
                return Err(Error::LeaseHeld {
                    path: format!(
                        "{path} (lease renewed {}s ago, soft limit {}s; force recovery to override)",
                        age.as_secs(),
                        self.cfg.lease_soft_limit.as_secs()
                    ),
                    holder,
                });
            }
        }
        if holder == RECOVERY_HOLDER {
            if let Some(last) = inode.rec.blocks.last() {
                if self
                    .blocks
                    .get(last.id)
                    .is_some_and(|b| b.recovery.is_some())
                {
                    return Ok((false, store.last_applied()));
                }
            }
        }
        tracing::info!(path = %path, holder = %holder, by = %req.client_name, force = req.force, "lease recovery requested");
        self.start_recovery(store, id, now)
    }

    /// Recovers the lease of file `id`: closes it at once when its last
    /// block allows, else orders a block recovery from a primary datanode.
    /// Returns whether the file is closed now.
    pub(crate) fn start_recovery(
        &mut self,
        store: &Store,
        id: u64,
        now: Instant,
    ) -> Result<(bool, u64)> {
        let Some(inode) = self.ns.inode(id) else {
            return Ok((true, store.last_applied()));
        };
        self.leases.note_attempt(id, now);
        let path = self.ns.path_of(id).unwrap_or_default();
        let mut rec = inode.rec.clone();
        let old_holder = rec.lease_holder.clone();
        let last = rec.blocks.last().cloned();
        let close_now = match &last {
            None => true,
            Some(b) => self
                .blocks
                .get(b.id)
                .is_some_and(|i| i.state != BlockState::UnderConstruction && i.is_safe()),
        };
        if close_now {
            if let Some(b) = rec.blocks.last_mut() {
                if let Some(i) = self.blocks.get(b.id) {
                    b.length = i.len;
                }
                b.under_construction = false;
            }
            return self.close_recovered(store, id, rec, &path, &old_holder, "nothing to recover");
        }
        let Some(last) = last else {
            return Ok((true, store.last_applied()));
        };
        let Some(info) = self.blocks.get(last.id) else {
            return Ok((true, store.last_applied()));
        };
        // Nodes that may hold the block: the pipeline and every replica with
        // the current (or a newer) generation stamp, alive.
        let mut nodes: Vec<NodeIdx> = info
            .pipeline
            .iter()
            .filter_map(|n| self.dns.lookup(n))
            .collect();
        for r in &info.replicas {
            if r.gs >= info.gs && !nodes.contains(&r.node) && self.dns.is_alive(r.node) {
                nodes.push(r.node);
            }
        }
        if nodes.is_empty() {
            // Only a block no datanode was ever given is dropped. The
            // datanodes of a pipeline that are down now may hold bytes
            // they acknowledged (the namenode knows a length only from an
            // fsync): the file waits for one of them to come back, as in
            // HDFS, instead of losing those bytes (their replicas would be
            // deleted as orphans on return).
            if info.pipeline.is_empty() && info.replicas.is_empty() && last.length == 0 {
                rec.blocks.pop();
                let block_id = last.id;
                let r = self.close_recovered(
                    store,
                    id,
                    rec,
                    &path,
                    &old_holder,
                    "empty last block dropped",
                )?;
                self.forget_block(block_id);
                return Ok(r);
            }
            // Keep the file under the namenode's lease; the monitor retries.
            tracing::warn!(path = %path, block = last.id, pipeline = ?info.pipeline,
                "lease recovery waits: no datanode that may hold the last block is live; the file is closed when one of them returns");
            let seq = self.take_over_lease(store, id, rec, &old_holder, now)?;
            return Ok((false, seq));
        }
        // The primary: the node heard from most recently.
        let primary = nodes
            .iter()
            .copied()
            .max_by_key(|n| self.dns.get(*n).last_heartbeat)
            .unwrap_or(nodes[0]);
        let mut counters = self.ns.counters();
        counters.generation_stamp += 1;
        let recovery_id = counters.generation_stamp;
        let block = info.extended(last.id);
        let replicas: Vec<DatanodeInfo> = nodes.iter().map(|n| self.dns.get(*n).info()).collect();
        rec.lease_holder = RECOVERY_HOLDER.to_string();
        let seq = self.commit(
            store,
            vec![Change::PutInode(rec), Change::Counters(counters)],
        )?;
        if old_holder != RECOVERY_HOLDER {
            self.leases.remove(&old_holder, id);
            self.leases.add(RECOVERY_HOLDER, id, now);
            self.leases.note_attempt(id, now);
        }
        self.blocks.modify(last.id, |b| {
            b.recovery = Some(Recovery {
                id: recovery_id,
                primary,
                started: now,
            })
        });
        self.dns.queue_command(
            primary,
            DatanodeCommand {
                command: Some(datanode_command::Command::Recover(RecoverBlock {
                    block: Some(block),
                    new_generation_stamp: recovery_id,
                    replicas,
                })),
            },
        );
        tracing::info!(path = %path, block = %block, recovery_id, primary = %self.dns.get(primary).address,
            nodes = nodes.len(), "lease recovery: block recovery ordered");
        Ok((false, seq))
    }

    fn take_over_lease(
        &mut self,
        store: &Store,
        id: u64,
        mut rec: dfs_proto::image::InodeRecord,
        old_holder: &str,
        now: Instant,
    ) -> Result<u64> {
        if old_holder == RECOVERY_HOLDER {
            return Ok(store.last_applied());
        }
        rec.lease_holder = RECOVERY_HOLDER.to_string();
        let seq = self.commit(store, vec![Change::PutInode(rec)])?;
        self.leases.remove(old_holder, id);
        self.leases.add(RECOVERY_HOLDER, id, now);
        self.leases.note_attempt(id, now);
        Ok(seq)
    }

    fn close_recovered(
        &mut self,
        store: &Store,
        id: u64,
        rec: dfs_proto::image::InodeRecord,
        path: &str,
        old_holder: &str,
        why: &str,
    ) -> Result<(bool, u64)> {
        let (seq, ids, length) =
            self.close_file(store, id, rec, old_holder, AttrChange::default())?;
        for b in &ids {
            self.blocks.modify(*b, |i| {
                i.state = if i.is_safe() || i.state == BlockState::Complete {
                    BlockState::Complete
                } else {
                    BlockState::Committed
                };
                i.pipeline.clear();
                i.recovery = None;
            });
        }
        self.repl.check_all(ids);
        tracing::info!(
            path,
            holder = old_holder,
            length,
            "lease recovered, file closed ({why})"
        );
        Ok((true, seq))
    }

    pub(crate) fn commit_block_sync(
        &mut self,
        store: &Store,
        req: CommitBlockSynchronizationRequest,
        now: Instant,
    ) -> Result<u64> {
        let old = req
            .old_block
            .ok_or_else(|| Error::invalid("commitBlockSynchronization: old_block is missing"))?;
        let new = req.new_block.unwrap_or(ExtendedBlock {
            id: old.id,
            generation_stamp: 0,
            length: 0,
        });
        let info = self
            .blocks
            .get(old.id)
            .ok_or(Error::BlockNotFound { block: old.id })?;
        if info.recovery.is_none()
            && info.gs == new.generation_stamp
            && info.state != BlockState::UnderConstruction
        {
            // Already committed (a retry).
            return Ok(store.last_applied());
        }
        match &info.recovery {
            Some(r) if r.id == new.generation_stamp => {}
            Some(r) => {
                return Err(Error::StaleBlock {
                    message: format!(
                        "recovery of {old} with id {} is stale: the current recovery id is {}",
                        new.generation_stamp, r.id
                    ),
                })
            }
            None => {
                return Err(Error::StaleBlock {
                    message: format!("no recovery of {old} is in progress"),
                })
            }
        }
        let file = info.file;
        let path = self.ns.path_of(file).unwrap_or_default();
        let inode = self
            .ns
            .inode(file)
            .ok_or(Error::BlockNotFound { block: old.id })?;
        let mut rec = inode.rec.clone();
        super::write::check_length(&path, &new, rec.block_size)?;
        let holder = rec.lease_holder.clone();
        if rec.blocks.last().map(|b| b.id) != Some(old.id) {
            return Err(Error::invalid(format!(
                "{path}: {old} is not the file's last block"
            )));
        }
        if req.delete {
            rec.blocks.pop();
        } else if let Some(b) = rec.blocks.last_mut() {
            b.generation_stamp = new.generation_stamp;
            b.length = new.length;
            b.under_construction = false;
        }
        rec.lease_holder.clear();
        rec.pipeline.clear();
        // An mtime a client set while writing survives.
        stamp_mtime(&mut rec, now_ms(), true);
        let ids: Vec<u64> = rec.blocks.iter().map(|b| b.id).collect();
        let seq = self.commit(store, vec![Change::PutInode(rec)])?;
        self.leases.remove(&holder, file);
        if req.delete {
            self.forget_block(old.id);
        } else {
            let synced: Vec<NodeIdx> = req
                .node_ids
                .iter()
                .filter_map(|n| self.dns.lookup(n))
                .collect();
            let mut stale = Vec::new();
            self.blocks.modify(old.id, |b| {
                b.gs = new.generation_stamp;
                b.len = new.length;
                b.recovery = None;
                b.pipeline.clear();
                for n in &synced {
                    b.put_replica(Replica {
                        node: *n,
                        gs: new.generation_stamp,
                        len: new.length,
                        kind: ReplicaKind::Finalized,
                        corrupt: false,
                    });
                }
                b.replicas.retain(|r| {
                    let keep = r.gs >= new.generation_stamp;
                    if !keep {
                        stale.push((r.node, r.gs));
                    }
                    keep
                });
                stale.append(&mut b.stale_holders);
                b.state = if b.is_safe() {
                    BlockState::Complete
                } else {
                    BlockState::Committed
                };
                b.committed_at = Some(now);
            });
            for (n, gs) in stale {
                self.dns.queue_delete(
                    n,
                    ExtendedBlock {
                        id: old.id,
                        generation_stamp: gs,
                        length: 0,
                    },
                );
            }
        }
        for id in &ids {
            self.blocks.modify(*id, |b| {
                if b.state == BlockState::UnderConstruction {
                    b.state = BlockState::Committed;
                }
            });
        }
        self.repl.check_all(ids);
        tracing::info!(path = %path, block = %new, delete = req.delete, nodes = ?req.node_ids,
            "block recovery committed; file closed");
        Ok(seq)
    }

    /// Checks that `client` writes the file of `block` and that `block` is
    /// its last block under construction with the current stamp.
    fn pipeline_block(
        &self,
        client: &str,
        block: &ExtendedBlock,
    ) -> Result<(u64, dfs_proto::image::InodeRecord)> {
        let info = self
            .blocks
            .get(block.id)
            .ok_or(Error::BlockNotFound { block: block.id })?;
        let inode = self
            .ns
            .inode(info.file)
            .ok_or(Error::BlockNotFound { block: block.id })?;
        let path = self.ns.path_of(info.file).unwrap_or_default();
        if inode.rec.lease_holder != client {
            return Err(Error::LeaseExpired {
                path,
                message: format!(
                    "{client} does not hold the lease (holder: '{}')",
                    inode.rec.lease_holder
                ),
            });
        }
        match inode.rec.blocks.last() {
            Some(b) if b.id == block.id && b.under_construction => {}
            _ => {
                return Err(Error::invalid(format!(
                    "{path}: {block} is not the block being written"
                )))
            }
        }
        if block.generation_stamp != info.gs {
            return Err(Error::StaleBlock {
                message: format!(
                    "{path}: {block} is stale: the current generation stamp is {}",
                    info.gs
                ),
            });
        }
        Ok((info.file, inode.rec.clone()))
    }

    pub(crate) fn update_block_for_pipeline(
        &mut self,
        store: &Store,
        client: &str,
        block: Option<ExtendedBlock>,
    ) -> Result<(u64, u64)> {
        let block =
            block.ok_or_else(|| Error::invalid("updateBlockForPipeline: block is missing"))?;
        self.pipeline_block(client, &block)?;
        let mut c = self.ns.counters();
        c.generation_stamp += 1;
        let gs = c.generation_stamp;
        let seq = self.commit(store, vec![Change::Counters(c)])?;
        self.leases.renew(client, Instant::now());
        tracing::info!(block = %block, new_gs = gs, client, "pipeline recovery: new generation stamp");
        Ok((gs, seq))
    }

    pub(crate) fn update_pipeline(
        &mut self,
        store: &Store,
        req: UpdatePipelineRequest,
    ) -> Result<u64> {
        let old = req
            .old_block
            .ok_or_else(|| Error::invalid("updatePipeline: old_block is missing"))?;
        let new = req
            .new_block
            .ok_or_else(|| Error::invalid("updatePipeline: new_block is missing"))?;
        let (file, mut rec) = self.pipeline_block(&req.client_name, &old)?;
        let path = self.ns.path_of(file).unwrap_or_default();
        super::write::check_length(&path, &new, rec.block_size)?;
        if new.id != old.id
            || new.generation_stamp <= old.generation_stamp
            || new.generation_stamp > self.ns.counters().generation_stamp
        {
            return Err(Error::invalid(format!(
                "updatePipeline: {new} does not follow {old} (it must keep the id and take a stamp from updateBlockForPipeline)"
            )));
        }
        if req.node_ids.iter().any(|n| self.dns.find(n).is_none()) {
            return Err(Error::invalid(format!(
                "updatePipeline {new}: unknown datanode in {:?}",
                req.node_ids
            )));
        }
        if let Some(b) = rec.blocks.last_mut() {
            b.generation_stamp = new.generation_stamp;
            b.length = b.length.max(new.length);
        }
        let old_pipeline = std::mem::replace(&mut rec.pipeline, req.node_ids.clone());
        let len = rec.blocks.last().map_or(0, |b| b.length);
        let seq = self.commit(store, vec![Change::PutInode(rec)])?;
        let left: Vec<NodeIdx> = old_pipeline
            .iter()
            .filter(|n| !req.node_ids.contains(n))
            .filter_map(|n| self.dns.find(n))
            .collect();
        self.blocks.modify(old.id, |b| {
            for n in left {
                if !b.stale_holders.contains(&(n, old.generation_stamp)) {
                    b.stale_holders.push((n, old.generation_stamp));
                }
            }
            b.gs = new.generation_stamp;
            b.len = len;
            b.pipeline = req.node_ids.clone();
            b.replicas.retain(|r| r.gs >= new.generation_stamp);
        });
        self.leases.renew(&req.client_name, Instant::now());
        tracing::info!(block = %new, nodes = ?req.node_ids, "pipeline updated");
        Ok(seq)
    }

    pub(crate) fn additional_datanodes(
        &mut self,
        req: GetAdditionalDatanodesRequest,
        now: Instant,
    ) -> Result<Vec<DatanodeInfo>> {
        let w = self.writing(&req.path, req.file_id, &req.client_name, now)?;
        let existing: Vec<NodeIdx> = req
            .existing_nodes
            .iter()
            .filter_map(|n| self.dns.find(n))
            .collect();
        let excluded = self.node_set(&req.excluded_nodes);
        let count = (req.count as usize).min(dfs_proto::defaults::MAX_REPLICATION as usize);
        let cands = self.dns.candidates(now, w.rec.block_size);
        let p = choose_targets(
            &cands,
            &Request {
                needed: count,
                existing: &existing,
                writer_host: None,
                excluded: &excluded,
            },
            &mut rand::rng(),
        );
        if let Some(why) = &p.shortfall {
            tracing::info!(path = %w.path, "replacement datanodes: {why}");
        }
        Ok(p.targets.iter().map(|t| self.dns.get(*t).info()).collect())
    }

    /// Hard-limit expiry and stuck recoveries, run by the monitor.
    pub(crate) fn lease_tick(&mut self, store: &Store, now: Instant) {
        let mut todo: Vec<(u64, String)> = self
            .leases
            .expired(self.cfg.lease_hard_limit, now)
            .into_iter()
            .filter(|(h, _)| h != RECOVERY_HOLDER)
            .map(|(h, f)| (f, format!("lease of {h} passed the hard limit")))
            .collect();
        for f in self.leases.files_of(RECOVERY_HOLDER) {
            let Some(last) = self.ns.inode(f).and_then(|i| i.rec.blocks.last()) else {
                todo.push((f, "recovery of a file without blocks".into()));
                continue;
            };
            let timeout = self.cfg.recovery_timeout;
            let recovery = self.blocks.get(last.id).and_then(|b| b.recovery.as_ref());
            let stuck = match recovery {
                None => self
                    .leases
                    .last_attempt(f)
                    .is_none_or(|t| now.saturating_duration_since(t) > timeout),
                Some(r) => now.saturating_duration_since(r.started) > timeout,
            };
            // The primary takes its order with a heartbeat. One not heard
            // from for three heartbeats since it was chosen (hung: it was
            // the node heard from last when chosen) never took it, so
            // another is chosen now rather than at the timeout.
            let silent = recovery.is_some_and(|r| {
                now.saturating_duration_since(r.started) > self.cfg.heartbeat_interval * 3
                    && self.dns.get(r.primary).last_heartbeat <= r.started
            });
            if stuck {
                todo.push((f, "block recovery did not finish; retrying".into()));
            } else if silent {
                todo.push((
                    f,
                    "the block recovery's primary datanode has not been heard from since it was chosen; choosing another".into(),
                ));
            }
        }
        for (f, why) in todo {
            let path = self.ns.path_of(f).unwrap_or_default();
            tracing::info!(path = %path, "{why}");
            if let Err(e) = self.start_recovery(store, f, now) {
                tracing::error!(path = %path, error = %e, "lease recovery failed");
            }
        }
    }
}
