//! Rebuilding the replica map from the data directory when the store opens.
//!
//! The scan reads `current/finalized` and `current/rbw` and, block by block:
//! * keeps only the newest generation's checksum file, deleting older ones;
//! * loads a finalized replica, deleting leftover files of the same block in
//!   `rbw/`;
//! * finishes a finalization interrupted between its two renames, moving the
//!   file still in `rbw/` to `finalized/`;
//! * loads a replica being written with the length of its longest prefix
//!   whose chunks all have checksums, trimming a last chunk torn by a crash;
//! * moves unusable replicas — files missing, a bad checksum header, or (when
//!   finalized) lengths that do not match — to `current/corrupt`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use dfs_proto::checksum::{self, CHECKSUM_SIZE};
use parking_lot::Mutex;
use tracing::{info, warn};

use super::files::{check_header, meta_name, open_rw, parse_name, remove_if_exists, rename};
use super::{
    Acked, BlockStore, Replica, ReplicaMeta, ReplicaState, CHUNK, CORRUPT_DIR, FINALIZED_DIR,
    RBW_DIR,
};
use crate::error::{Error, Result};
use crate::meta;

/// Files of one directory scanned at start, by block id.
#[derive(Default)]
struct DirScan {
    data: BTreeSet<u64>,
    metas: BTreeMap<u64, Vec<u64>>,
}

impl DirScan {
    fn read(dir: &Path) -> Result<DirScan> {
        let mut scan = DirScan::default();
        let entries = fs::read_dir(dir)
            .map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?;
        for entry in entries {
            let entry =
                entry.map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?;
            let name = entry.file_name();
            match name.to_str().and_then(parse_name) {
                Some((id, None)) => {
                    scan.data.insert(id);
                }
                Some((id, Some(gs))) => scan.metas.entry(id).or_default().push(gs),
                None => warn!(
                    file = %entry.path().display(),
                    "ignoring a file that is not a replica"
                ),
            }
        }
        Ok(scan)
    }

    /// The newest meta file's generation stamp; older ones are deleted.
    fn newest_meta(&self, dir: &Path, id: u64) -> Result<Option<u64>> {
        let Some(list) = self.metas.get(&id) else {
            return Ok(None);
        };
        let newest = list.iter().copied().max();
        for &gs in list {
            if Some(gs) != newest {
                warn!(
                    block = id,
                    gs, "removing a checksum file of an older generation"
                );
                remove_if_exists(&dir.join(meta_name(id, gs)))?;
            }
        }
        Ok(newest)
    }
}

impl BlockStore {
    /// Rebuilds the replica map, finishing interrupted finalizations and
    /// moving unusable replicas to `current/corrupt`.
    pub(super) fn scan(&self) -> Result<()> {
        let fin_dir = self.root.join(FINALIZED_DIR);
        let rbw_dir = self.root.join(RBW_DIR);
        let fin = DirScan::read(&fin_dir)?;
        let rbw = DirScan::read(&rbw_dir)?;
        let ids: BTreeSet<u64> = fin
            .data
            .iter()
            .chain(fin.metas.keys())
            .chain(rbw.data.iter())
            .chain(rbw.metas.keys())
            .copied()
            .collect();
        let mut map = HashMap::new();
        let (mut finalized, mut rbw_count) = (0usize, 0usize);
        for id in ids {
            // A replica whose files cannot be loaded, moved or removed is
            // left unloaded (not served, not reported: the namenode copies
            // it from other replicas); one bad file never stops the node.
            let found = match self.load_one(id, (&fin_dir, &fin), (&rbw_dir, &rbw)) {
                Ok(found) => found,
                Err(e) => {
                    warn!(block = id, error = %e,
                        "cannot load a replica; leaving its files as they are, the replica is not loaded");
                    None
                }
            };
            if let Some(m) = found {
                match m.state {
                    ReplicaState::Finalized => finalized += 1,
                    _ => rbw_count += 1,
                }
                map.insert(
                    id,
                    Arc::new(Replica {
                        id,
                        meta: Mutex::new(m),
                        acked: Mutex::new(Acked::default()),
                    }),
                );
            }
        }
        *self.replicas.lock() = map;
        info!(finalized, rbw = rbw_count, data = %self.root.display(), "replicas loaded");
        Ok(())
    }

    /// Loads replica `id` from its files in `finalized/` and `rbw/`,
    /// finishing an interrupted finalization and moving a bad replica to
    /// `corrupt/`. `None`: nothing to serve.
    fn load_one(
        &self,
        id: u64,
        (fin_dir, fin): (&Path, &DirScan),
        (rbw_dir, rbw): (&Path, &DirScan),
    ) -> Result<Option<ReplicaMeta>> {
        let fin_meta = fin.newest_meta(fin_dir, id)?;
        let rbw_meta = rbw.newest_meta(rbw_dir, id)?;
        let fin_data = fin.data.contains(&id);
        let rbw_data = rbw.data.contains(&id);
        Ok(match (fin_data, fin_meta, rbw_data, rbw_meta) {
            (true, Some(gs), _, _) => {
                if rbw_data || rbw_meta.is_some() {
                    warn!(
                        block = id,
                        "removing leftover files of a finalized replica in rbw/"
                    );
                    self.remove_files(ReplicaState::Rbw, id, rbw_data, rbw_meta)?;
                }
                self.load_finalized(id, gs)?
            }
            // A finalization that stopped between its two renames.
            (true, None, false, Some(gs)) => {
                rename(
                    &self.meta_path(ReplicaState::Rbw, id, gs),
                    &self.meta_path(ReplicaState::Finalized, id, gs),
                )?;
                self.load_finalized(id, gs)?
            }
            (false, Some(gs), true, None) => {
                rename(
                    &self.data_path(ReplicaState::Rbw, id),
                    &self.data_path(ReplicaState::Finalized, id),
                )?;
                self.load_finalized(id, gs)?
            }
            (false, None, true, Some(gs)) => self.load_rbw(id, gs)?,
            _ => {
                warn!(
                    block = id,
                    "moving a replica with missing files to corrupt/"
                );
                self.move_to_corrupt(ReplicaState::Finalized, id, fin_data, fin_meta)?;
                self.move_to_corrupt(ReplicaState::Rbw, id, rbw_data, rbw_meta)?;
                None
            }
        })
    }

    /// Moves a bad replica found at start-up to `corrupt/`. A replica
    /// whose files cannot be moved is left where it is, unloaded (so not
    /// served or reported): one bad file does not keep the node down.
    fn set_aside(&self, state: ReplicaState, id: u64, gs: u64) {
        if let Err(e) = self.move_to_corrupt(state, id, true, Some(gs)) {
            warn!(block = id, error = %e,
                "cannot move a bad replica's files to corrupt/; leaving them, the replica is not loaded");
        }
    }

    pub(super) fn move_to_corrupt(
        &self,
        state: ReplicaState,
        id: u64,
        data: bool,
        gs: Option<u64>,
    ) -> Result<()> {
        let corrupt = self.root.join(CORRUPT_DIR);
        let tag = gs.unwrap_or(0);
        if data {
            rename(
                &self.data_path(state, id),
                &corrupt.join(format!("blk_{id}_{tag}")),
            )?;
        }
        if let Some(gs) = gs {
            rename(
                &self.meta_path(state, id, gs),
                &corrupt.join(format!("blk_{id}_{gs}.meta")),
            )?;
        }
        Ok(())
    }

    fn load_finalized(&self, id: u64, gs: u64) -> Result<Option<ReplicaMeta>> {
        let data_path = self.data_path(ReplicaState::Finalized, id);
        let meta_path = self.meta_path(ReplicaState::Finalized, id, gs);
        let data_len = fs::metadata(&data_path)
            .map_err(|e| Error::io(format!("cannot stat {}", data_path.display()), e))?
            .len();
        let meta_file = File::open(&meta_path)
            .map_err(|e| Error::io(format!("cannot open {}", meta_path.display()), e))?;
        let checked = check_header(id, &meta_file).and_then(|()| {
            let meta_len = meta_file
                .metadata()
                .map_err(|e| Error::io(format!("cannot stat {}", meta_path.display()), e))?
                .len();
            meta::check_lengths(data_len, meta_len)
                .map_err(|source| Error::BadMeta { block: id, source })
        });
        match checked {
            Ok(()) => Ok(Some(ReplicaMeta {
                gs,
                state: ReplicaState::Finalized,
                len: data_len,
                writer: 0,
                recovery_id: 0,
                removed: false,
                restarted: false,
            })),
            Err(e) if e.is_corruption() => {
                warn!(block = id, error = %e, "moving a finalized replica to corrupt/");
                self.set_aside(ReplicaState::Finalized, id, gs);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Loads a replica being written when the node stopped: its length is
    /// the longest prefix whose chunks all have checksums, minus a last chunk
    /// torn by the crash.
    fn load_rbw(&self, id: u64, gs: u64) -> Result<Option<ReplicaMeta>> {
        let data = open_rw(&self.data_path(ReplicaState::Rbw, id))?;
        let meta_file = open_rw(&self.meta_path(ReplicaState::Rbw, id, gs))?;
        if let Err(e) = check_header(id, &meta_file) {
            if e.is_corruption() {
                warn!(block = id, error = %e, "moving a replica being written to corrupt/");
                self.set_aside(ReplicaState::Rbw, id, gs);
                return Ok(None);
            }
            return Err(e);
        }
        let stat_err = |e| Error::io(format!("cannot stat blk_{id}"), e);
        let data_len = data.metadata().map_err(stat_err)?.len();
        let meta_len = meta_file.metadata().map_err(stat_err)?.len();
        let sums = (meta_len - meta::HEADER_LEN as u64) / CHECKSUM_SIZE as u64;
        let mut len = data_len.min(sums.saturating_mul(CHUNK));
        if len > 0 {
            // The last checksum covers some prefix of its chunk: keep the
            // longest prefix it matches, or drop the chunk.
            let start = (len - 1) / CHUNK * CHUNK;
            let mut chunk = vec![0u8; (len - start) as usize];
            let mut stored = [0u8; CHECKSUM_SIZE];
            let read_err = |e| Error::io(format!("cannot read blk_{id}"), e);
            data.read_exact_at(&mut chunk, start).map_err(read_err)?;
            meta_file
                .read_exact_at(&mut stored, meta::checksum_offset(start))
                .map_err(read_err)?;
            let stored = u32::from_le_bytes(stored);
            let keep = (1..=chunk.len())
                .rev()
                .find(|&n| checksum::crc(&chunk[..n]) == stored)
                .unwrap_or(0);
            if start + keep as u64 != len {
                warn!(
                    block = id,
                    offset = start,
                    kept = keep,
                    "trimming a last chunk torn by a crash"
                );
            }
            len = start + keep as u64;
        }
        let ctx = |e| Error::io(format!("cannot truncate blk_{id}"), e);
        data.set_len(len).map_err(ctx)?;
        meta_file.set_len(meta::meta_len(len)).map_err(ctx)?;
        Ok(Some(ReplicaMeta {
            gs,
            state: ReplicaState::Rbw,
            len,
            writer: 0,
            recovery_id: 0,
            removed: false,
            restarted: true,
        }))
    }
}
