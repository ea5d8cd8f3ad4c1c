//! The read path on the namesystem state: block locations ordered for the
//! reader, and replicas reported corrupt.

use std::time::Instant;

use dfs_proto::image::BlockRecord;
use dfs_proto::{
    ExtendedBlock, FileStatus, GetBlockLocationsRequest, GetBlockLocationsResponse, LocatedBlock,
};
use rand::Rng;

use super::State;
use crate::blocks::{BlockInfo, BlockState, Replica, ReplicaKind};
use crate::datanodes::NodeIdx;
use crate::error::Result;
use crate::namespace::Inode;
use crate::placement::{self};
use dfs_proto::defaults::MAX_LOCATED_BLOCKS;

/// Where a read comes from, for ordering replicas nearest first.
pub(crate) struct ReaderSite<'a> {
    host: &'a str,
    racks: Vec<&'a str>,
}

impl State {
    pub(crate) fn block_locations(
        &self,
        req: &GetBlockLocationsRequest,
        peer_host: &str,
        now: Instant,
    ) -> Result<GetBlockLocationsResponse> {
        self.block_locations_at_most(req, peer_host, now, MAX_LOCATED_BLOCKS)
    }

    /// [`block_locations`](Self::block_locations) listing at most
    /// `max_blocks` blocks, the first ones of the range.
    pub(crate) fn block_locations_at_most(
        &self,
        req: &GetBlockLocationsRequest,
        peer_host: &str,
        now: Instant,
        max_blocks: usize,
    ) -> Result<GetBlockLocationsResponse> {
        let (id, path, inode) = self.ns.resolve_file(&req.path)?;
        let reader = self.reader_site(&req.client_host, peer_host);
        let status = self.ns.status(id, path).unwrap_or_default();
        Ok(self.located(
            inode, status, req.offset, req.length, &reader, now, max_blocks,
        ))
    }

    /// Where a read comes from: the client's host (`client_host`, else the
    /// connection's peer) and the racks of datanodes on it, found once for
    /// every file a call locates.
    pub(crate) fn reader_site<'a>(
        &'a self,
        client_host: &'a str,
        peer_host: &'a str,
    ) -> ReaderSite<'a> {
        let host = if client_host.is_empty() {
            peer_host
        } else {
            client_host
        };
        let racks = self
            .dns
            .all()
            .iter()
            .filter(|n| n.host == host && !n.dead)
            .map(|n| n.rack.as_str())
            .collect();
        ReaderSite { host, racks }
    }

    /// The blocks of file `inode` (reported as `status`) holding `length`
    /// bytes from `offset` (0 = to the end), at most `max_blocks` of them,
    /// each with its replicas nearest to `reader` first.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn located(
        &self,
        inode: &Inode,
        status: FileStatus,
        offset: u64,
        length: u64,
        reader: &ReaderSite<'_>,
        now: Instant,
        max_blocks: usize,
    ) -> GetBlockLocationsResponse {
        let file_length = inode.length();
        let end = if length == 0 {
            file_length
        } else {
            offset.saturating_add(length).min(file_length)
        };
        let mut blocks = Vec::new();
        let mut off = 0u64;
        for b in &inode.rec.blocks {
            let start = off;
            off = off.saturating_add(b.length);
            if b.length == 0 || off <= offset || start >= end {
                continue;
            }
            if blocks.len() >= max_blocks {
                break;
            }
            let Some(info) = self.blocks.get(b.id) else {
                continue;
            };
            blocks.push(self.located_block(b, info, start, Some((reader, now))));
        }
        // The block being written, which the namenode knows only as long as
        // the last fsync: readers ask its pipeline how much is acknowledged,
        // in pipeline order. The head's answer is the one every replica
        // holds (a node acknowledges only what it and every node after it
        // wrote); a node further down may have acknowledged bytes the head
        // has not written yet, which a lease recovery could cut. Also a
        // last block a Complete committed (and a replica report may have
        // completed in the block map) while the file is not closed yet,
        // its Complete waiting for that report: the record still has it as
        // the block being written, at its last fsync length. Left out, it
        // made the file read short of bytes its writer's close() had
        // returned for. (A finalized replica's visible length is its
        // length.)
        let last_block = inode
            .under_construction()
            .then(|| inode.rec.blocks.last())
            .flatten()
            .filter(|b| b.under_construction)
            .and_then(|b| {
                let info = self.blocks.get(b.id)?;
                let start = file_length.saturating_sub(b.length);
                Some(self.located_block(b, info, start, None))
            });
        GetBlockLocationsResponse {
            file_length,
            blocks,
            under_construction: inode.under_construction(),
            status: Some(status),
            last_block,
        }
    }

    /// Block `b` of a file, at file offset `offset`, with its replicas
    /// nearest to the reader first (stale and decommissioning nodes last)
    /// when `nearest_to` is given, else in pipeline order.
    fn located_block(
        &self,
        b: &BlockRecord,
        info: &BlockInfo,
        offset: u64,
        nearest_to: Option<(&ReaderSite<'_>, Instant)>,
    ) -> LocatedBlock {
        let mut rng = rand::rng();
        // (A block a Complete committed that is still the record's block
        // being written is read from its pipeline too.)
        let uc = info.state == BlockState::UnderConstruction || b.under_construction;
        let (nodes, corrupt) = self.read_replicas(info, uc);
        let mut keyed: Vec<((u8, u8, u32), NodeIdx)> = nodes
            .into_iter()
            .map(|n| match nearest_to {
                Some((reader, now)) => {
                    let d = self.dns.get(n);
                    let late = u8::from(self.dns.is_stale(n, now) || d.decommissioning());
                    let dist = placement::distance(reader.host, &reader.racks, &d.host, &d.rack);
                    ((late, dist, rng.random::<u32>()), n)
                }
                None => ((0, 0, 0), n),
            })
            .collect();
        // Stable: without a reader, the order stays the pipeline's.
        keyed.sort_by_key(|k| k.0);
        LocatedBlock {
            block: Some(ExtendedBlock {
                id: b.id,
                generation_stamp: b.generation_stamp,
                length: b.length,
            }),
            offset,
            locations: keyed
                .into_iter()
                .map(|(_, n)| self.dns.get(n).info())
                .collect(),
            corrupt,
            under_construction: uc,
        }
    }

    /// Nodes to read a block from, and whether they are all corrupt.
    fn read_replicas(&self, info: &BlockInfo, uc: bool) -> (Vec<NodeIdx>, bool) {
        if uc {
            // The pipeline holds the acknowledged bytes.
            let mut nodes: Vec<NodeIdx> = info
                .pipeline
                .iter()
                .filter_map(|id| self.dns.lookup(id))
                .collect();
            for r in &info.replicas {
                if r.gs == info.gs
                    && !r.corrupt
                    && !nodes.contains(&r.node)
                    && self.dns.is_alive(r.node)
                {
                    nodes.push(r.node);
                }
            }
            return (nodes, false);
        }
        let alive = |r: &&Replica| self.dns.is_alive(r.node);
        let good: Vec<NodeIdx> = info.good().filter(alive).map(|r| r.node).collect();
        if !good.is_empty() {
            return (good, false);
        }
        // Replicas still being finalized with the right generation stamp.
        let rbw: Vec<NodeIdx> = info
            .replicas
            .iter()
            .filter(alive)
            .filter(|r| !r.corrupt && r.gs == info.gs && r.kind == ReplicaKind::Rbw)
            .map(|r| r.node)
            .collect();
        if !rbw.is_empty() {
            return (rbw, false);
        }
        let corrupt: Vec<NodeIdx> = info
            .replicas
            .iter()
            .filter(alive)
            .filter(|r| r.corrupt)
            .map(|r| r.node)
            .collect();
        let all_corrupt = !corrupt.is_empty();
        (corrupt, all_corrupt)
    }

    /// Marks the replica of `block` on `node_id` corrupt.
    pub(crate) fn mark_corrupt(&mut self, block: &ExtendedBlock, node_id: &str, reason: &str) {
        let Some(node) = self.dns.find(node_id) else {
            tracing::warn!(block = %block, node = node_id, "bad replica reported on an unknown datanode; ignored");
            return;
        };
        let Some(info) = self.blocks.get(block.id) else {
            tracing::debug!(block = %block, node = node_id, "bad replica of a deleted block; deleting it");
            self.dns.queue_delete(node, *block);
            return;
        };
        if block.generation_stamp < info.gs {
            tracing::info!(block = %block, node = node_id, "bad replica with an old generation stamp; deleting it");
            self.blocks.modify(block.id, |b| b.remove_replica(node));
            self.dns.queue_delete(node, *block);
            return;
        }
        let address = self.dns.get(node).address.clone();
        self.blocks.modify(block.id, |b| {
            let mut r = b.replica(node).cloned().unwrap_or(Replica {
                node,
                gs: block.generation_stamp,
                len: block.length,
                kind: ReplicaKind::Finalized,
                corrupt: true,
            });
            r.corrupt = true;
            b.put_replica(r);
        });
        let good = self.blocks.get(block.id).map_or(0, |b| b.good().count());
        tracing::warn!(block = %block, node = node_id, %address, reason, good_replicas = good,
            "replica marked corrupt; it is no longer served and will be replaced");
        self.repl.check(block.id);
    }
}
