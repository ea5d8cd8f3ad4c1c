//! Recovering a replica whose writer failed: pipeline recovery
//! ([`BlockStore::recover`]) takes the replica over and continues writing;
//! replica recovery, driven by the namenode, cuts writers off
//! ([`BlockStore::init_recovery`]) and then truncates and finalizes the
//! replica under the recovery id ([`BlockStore::update_recovery`]).

use std::sync::Arc;

use dfs_proto::ExtendedBlock;

use super::files::{fsync_dir, open_rw, rename, truncate_files};
use super::{Acked, BlockStore, ReplicaInfo, ReplicaState, ReplicaWriter, FINALIZED_DIR, RBW_DIR};
use crate::error::{Error, Result};
use crate::page_cache::DropBehind;

impl BlockStore {
    /// Pipeline recovery: takes over an existing replica (being written or
    /// finalized) with a generation stamp at most `new_gs` and at least
    /// `bytes_acked` bytes, truncates it to `bytes_acked`, gives it `new_gs`
    /// and returns a writer that continues from there. Any older writer of
    /// the replica is cut off.
    pub fn recover(
        self: &Arc<Self>,
        id: u64,
        new_gs: u64,
        bytes_acked: u64,
    ) -> Result<ReplicaWriter> {
        if let Some(reason) = self.failure() {
            return Err(Error::StorageFailed { reason });
        }
        let replica = self.get(id).ok_or(Error::ReplicaNotFound { block: id })?;
        let mut m = replica.meta.lock();
        if m.removed || m.state == ReplicaState::Temporary {
            return Err(Error::ReplicaNotFound { block: id });
        }
        if m.gs > new_gs {
            return Err(Error::GenerationStamp {
                block: id,
                have: m.gs,
                reason: format!("recovery to generation stamp {new_gs} is older than the replica"),
            });
        }
        // Lease recovery took the replica over: its writer is gone for good
        // (HDFS refuses a replica under recovery the same way), and cutting
        // the replica now would undo the length that recovery found. The id
        // is never reset: files are write-once, so no writer follows a
        // recovery (an append would have to reset it once finalized).
        if m.recovery_id != 0 {
            return Err(Error::GenerationStamp {
                block: id,
                have: m.gs,
                reason: format!(
                    "the replica is under lease recovery {}; its writer cannot continue",
                    m.recovery_id
                ),
            });
        }
        if m.len < bytes_acked {
            return Err(Error::invalid(
                id,
                format!(
                    "replica has {} bytes but {bytes_acked} were acknowledged",
                    m.len
                ),
            ));
        }
        let token = self.token();
        m.writer = token;
        if m.gs != new_gs {
            rename(
                &self.meta_path(m.state, id, m.gs),
                &self.meta_path(m.state, id, new_gs),
            )?;
            m.gs = new_gs;
        }
        if m.state == ReplicaState::Finalized {
            rename(
                &self.data_path(ReplicaState::Finalized, id),
                &self.data_path(ReplicaState::Rbw, id),
            )?;
            rename(
                &self.meta_path(ReplicaState::Finalized, id, new_gs),
                &self.meta_path(ReplicaState::Rbw, id, new_gs),
            )?;
            m.state = ReplicaState::Rbw;
            fsync_dir(&self.root.join(RBW_DIR))?;
        }
        let data = open_rw(&self.data_path(ReplicaState::Rbw, id))?;
        let meta_file = open_rw(&self.meta_path(ReplicaState::Rbw, id, new_gs))?;
        truncate_files(id, &data, &meta_file, m.len, bytes_acked)?;
        m.len = bytes_acked;
        *replica.acked.lock() = Acked {
            writer: token,
            bytes: bytes_acked,
        };
        // A replica found being written at start-up that a live pipeline
        // takes over is being written again: its bytes up to the
        // acknowledged length are the writer's, and readers may see them.
        m.restarted = false;
        drop(m);
        Ok(ReplicaWriter {
            store: self.clone(),
            replica,
            token,
            id,
            gs: new_gs,
            state: ReplicaState::Rbw,
            data,
            meta: meta_file,
            done: false,
            behind: DropBehind::from(bytes_acked),
        })
    }

    /// Replica recovery step 1: cuts off writers, remembers `recovery_id`
    /// and returns the replica's state and length, and whether it was being
    /// written when this node last stopped (then its unsynced bytes may be
    /// fewer than were acknowledged).
    pub fn init_recovery(
        &self,
        block: &ExtendedBlock,
        recovery_id: u64,
    ) -> Result<(ReplicaInfo, bool)> {
        let id = block.id;
        let replica = self.get(id).ok_or(Error::ReplicaNotFound { block: id })?;
        let mut m = replica.meta.lock();
        if m.removed || m.state == ReplicaState::Temporary {
            return Err(Error::ReplicaNotFound { block: id });
        }
        let stale = |reason: String| Error::GenerationStamp {
            block: id,
            have: m.gs,
            reason,
        };
        if m.recovery_id > recovery_id {
            return Err(stale(format!(
                "recovery {recovery_id} is older than recovery {} already under way",
                m.recovery_id
            )));
        }
        if m.gs >= recovery_id {
            return Err(stale(format!(
                "recovery id {recovery_id} is not newer than the replica"
            )));
        }
        if m.gs < block.generation_stamp {
            return Err(stale(format!(
                "the namenode expects generation stamp {} or newer",
                block.generation_stamp
            )));
        }
        m.writer = 0;
        m.recovery_id = recovery_id;
        Ok((replica.info(&m), m.restarted))
    }

    /// Replica recovery step 2: truncates to `new_len`, takes `recovery_id`
    /// as the generation stamp and finalizes.
    pub fn update_recovery(
        &self,
        id: u64,
        recovery_id: u64,
        new_len: u64,
    ) -> Result<ExtendedBlock> {
        let replica = self.get(id).ok_or(Error::ReplicaNotFound { block: id })?;
        let mut m = replica.meta.lock();
        if m.removed || m.state == ReplicaState::Temporary {
            return Err(Error::ReplicaNotFound { block: id });
        }
        if m.state == ReplicaState::Finalized && m.gs == recovery_id && m.len == new_len {
            return Ok(replica.info(&m).block);
        }
        if m.recovery_id != recovery_id {
            return Err(Error::GenerationStamp {
                block: id,
                have: m.gs,
                reason: format!(
                    "recovery {recovery_id} was not started here (last recovery: {})",
                    m.recovery_id
                ),
            });
        }
        if new_len > m.len {
            return Err(Error::invalid(
                id,
                format!(
                    "recovery length {new_len} exceeds the replica's {} bytes",
                    m.len
                ),
            ));
        }
        m.writer = 0;
        let state = m.state;
        let data = open_rw(&self.data_path(state, id))?;
        let meta_file = open_rw(&self.meta_path(state, id, m.gs))?;
        truncate_files(id, &data, &meta_file, m.len, new_len)?;
        let sync_err = |e| Error::io(format!("cannot sync blk_{id}"), e);
        data.sync_all().map_err(sync_err)?;
        meta_file.sync_all().map_err(sync_err)?;
        m.len = new_len;
        {
            let mut acked = replica.acked.lock();
            acked.bytes = acked.bytes.min(new_len);
            acked.writer = 0;
        }
        // The meta file takes the new stamp first, so a crash between the
        // renames leaves a replica that the start-up scan completes.
        rename(
            &self.meta_path(state, id, m.gs),
            &self.meta_path(state, id, recovery_id),
        )?;
        m.gs = recovery_id;
        if state != ReplicaState::Finalized {
            rename(
                &self.data_path(state, id),
                &self.data_path(ReplicaState::Finalized, id),
            )?;
            rename(
                &self.meta_path(state, id, recovery_id),
                &self.meta_path(ReplicaState::Finalized, id, recovery_id),
            )?;
            m.state = ReplicaState::Finalized;
        }
        fsync_dir(&self.root.join(FINALIZED_DIR))?;
        Ok(replica.info(&m).block)
    }
}
