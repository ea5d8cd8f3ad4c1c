//! Administration: cluster report, fsck, statfs, decommissioning.

use std::collections::HashSet;
use std::time::Instant;

use dfs_proto::{
    ClusterReportResponse, DatanodeReport, FsckBlock, FsckFile, FsckReplica, FsckResponse,
    StatFsResponse,
};

use dfs_proto::defaults::{FSCK_PAGE_BLOCKS, FSCK_PAGE_INODES};

use super::{Namesystem, State};
use crate::blocks::BlockState;
use crate::datanodes::{AdminState, NodeIdx};
use crate::error::{Error, Result};
use crate::namespace::Need;
use crate::permission::{Access, Caller};

impl Namesystem {
    /// Safe mode and every datanode.
    pub fn cluster_report(&self) -> ClusterReportResponse {
        self.read(|st| st.cluster_report(Instant::now()))
    }

    /// One page of the health of the files under `path`, starting after
    /// `start_after` (empty: from the start). The caller needs read and
    /// execute on every directory whose entries the page shows.
    pub fn fsck(&self, caller: &Caller, path: &str, start_after: &str) -> Result<FsckResponse> {
        self.read(|st| {
            let path = &*st.ns.expand(path)?;
            st.ns.check(caller, path, &Need::default())?;
            st.fsck_page(
                caller,
                path,
                start_after,
                FSCK_PAGE_INODES,
                FSCK_PAGE_BLOCKS,
                Instant::now(),
            )
        })
    }

    /// Capacity figures of the live datanodes.
    pub fn statfs(&self) -> StatFsResponse {
        self.read(|st| st.statfs())
    }

    /// Reads (`None`), enters (`Some(true)`) or leaves (`Some(false)`)
    /// safe mode by an administrator's order; returns whether it is on and
    /// where it stands.
    pub fn set_safe_mode(&self, enter: Option<bool>) -> (bool, String) {
        let mut st = self.state.write();
        let now = Instant::now();
        match enter {
            Some(true) if st.safemode.enter() => tracing::warn!(
                "safe mode entered by an administrator: namespace changes and new blocks \
                 are refused, no new replica copy is ordered and no replica is deleted, until \
                 it is left"
            ),
            Some(false) => {
                let (safe, total) = st.blocks.safe_counts();
                if st.safemode.leave() {
                    tracing::warn!(
                        "safe mode left by an administrator with {safe} of {total} complete \
                         blocks reported; namespace changes are accepted"
                    );
                    st.after_safemode(now);
                }
            }
            _ => {}
        }
        let (safe, total) = st.blocks.safe_counts();
        let on = st.safemode.is_on();
        let status = if on {
            st.safemode.status(safe, total, now)
        } else {
            String::new()
        };
        drop(st);
        self.kick.notify_one();
        (on, status)
    }

    /// Starts or stops decommissioning a node given by address or id.
    pub fn decommission(&self, node: &str, decommission: bool) -> Result<DatanodeReport> {
        let report = self.mutate(None, |st, _| {
            st.decommission(node, decommission, Instant::now())
        })?;
        self.kick.notify_one();
        Ok(report)
    }
}

impl State {
    pub(crate) fn node_report(&self, idx: NodeIdx, now: Instant) -> DatanodeReport {
        let n = self.dns.get(idx);
        DatanodeReport {
            node: Some(n.info()),
            state: self.dns.state(idx, now) as i32,
            capacity: n.capacity,
            used: n.used,
            remaining: n.remaining,
            blocks: self.blocks.count_on(idx) as u64,
            active_transfers: n.active_transfers,
            xceivers: n.xceivers,
            max_xceivers: n.max_xceivers,
            last_heartbeat_ms_ago: n.silence(now).as_millis() as i64,
            failure: n.failure.clone(),
        }
    }

    pub(crate) fn cluster_report(&self, now: Instant) -> ClusterReportResponse {
        let (safe, total) = self.blocks.safe_counts();
        ClusterReportResponse {
            safe_mode: self.safemode.is_on(),
            datanodes: self
                .dns
                .all()
                .iter()
                .map(|n| self.node_report(n.idx, now))
                .collect(),
            total_blocks: self.blocks.len() as u64,
            under_replicated: self.repl.needed_count() as u64,
            pending_replication: self.repl.pending_count() as u64,
            safe_mode_reason: if self.safemode.is_on() {
                self.safemode.status(safe, total, now)
            } else {
                String::new()
            },
        }
    }

    /// One fsck page: at most `max_inodes` inodes of the subtree at `path`
    /// in pre-order after `start_after`, ending early after the file that
    /// brings it to `max_blocks` blocks, so no reply nears the message
    /// limit and the lock is held briefly.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn fsck_page(
        &self,
        caller: &Caller,
        path: &str,
        start_after: &str,
        max_inodes: usize,
        max_blocks: usize,
        now: Instant,
    ) -> Result<FsckResponse> {
        let (id, root_path) = self.ns.resolve(path)?;
        let after = if start_after.is_empty() {
            None
        } else {
            let inside = root_path == "/"
                || start_after == root_path
                || start_after
                    .strip_prefix(root_path.as_str())
                    .is_some_and(|r| r.starts_with('/'));
            if !inside {
                return Err(Error::invalid(format!(
                    "fsck of {root_path}: cannot continue after {start_after}, which is not under it"
                )));
            }
            Some(start_after)
        };
        let cluster_racks = self.cluster_racks(now);
        let mut out = FsckResponse {
            live_datanodes: self.dns.all().iter().filter(|n| !n.dead).count() as u32,
            racks: self.dns.rack_count() as u32,
            ..Default::default()
        };
        let (page, mut has_more) = self.ns.subtree_page(id, &root_path, after, max_inodes);
        let mut blocks_in_page = 0usize;
        let mut last = String::new();
        // Directories whose entries this page shows, checked once each: a
        // page costs what it shows, whatever page a caller asks for.
        let mut listable = std::collections::HashSet::new();
        for (i, ipath) in &page {
            if blocks_in_page >= max_blocks {
                has_more = true;
                break;
            }
            last.clone_from(ipath);
            let Some(inode) = self.ns.inode(*i) else {
                continue;
            };
            let parent = inode.rec.parent;
            if !caller.superuser && *i != id && listable.insert(parent) {
                let dir = self.ns.path_of(parent).unwrap_or_default();
                self.ns
                    .check(caller, &dir, &Need::target(Access::READ_EXECUTE))?;
            }
            if inode.is_dir() {
                out.total_dirs += 1;
                continue;
            }
            out.total_files += 1;
            blocks_in_page += inode.rec.blocks.len();
            let mut file = FsckFile {
                path: ipath.clone(),
                length: inode.length(),
                replication: inode.rec.replication,
                blocks: vec![],
                under_construction: inode.under_construction(),
            };
            for b in &inode.rec.blocks {
                out.total_blocks += 1;
                let mut fb = FsckBlock {
                    id: b.id,
                    generation_stamp: b.generation_stamp,
                    length: b.length,
                    expected_replication: inode.rec.replication,
                    ..Default::default()
                };
                let Some(info) = self.blocks.get(b.id) else {
                    fb.missing = true;
                    out.missing += 1;
                    file.blocks.push(fb);
                    continue;
                };
                for r in &info.replicas {
                    if !self.dns.is_alive(r.node) || r.gs != info.gs {
                        continue;
                    }
                    let n = self.dns.get(r.node);
                    fb.replicas.push(FsckReplica {
                        node_id: n.id.clone(),
                        address: n.address.clone(),
                        rack: n.rack.clone(),
                        corrupt: r.corrupt,
                        decommissioning: n.admin == AdminState::Decommissioning,
                        decommissioned: n.admin == AdminState::Decommissioned,
                    });
                }
                if info.state != BlockState::UnderConstruction {
                    let h = self.health(b.id, info, now);
                    let unreadable = h.live + h.decommissioning == 0;
                    fb.corrupt = unreadable && h.corrupt > 0;
                    fb.missing = unreadable && h.corrupt == 0;
                    fb.under_replicated = !unreadable && h.live < h.expected;
                    fb.over_replicated = h.live > h.expected;
                    fb.mis_replicated = h.mis_replicated(cluster_racks);
                    out.corrupt += u64::from(fb.corrupt);
                    out.missing += u64::from(fb.missing);
                    out.under_replicated += u64::from(fb.under_replicated);
                    out.over_replicated += u64::from(fb.over_replicated);
                    out.mis_replicated += u64::from(fb.mis_replicated);
                }
                file.blocks.push(fb);
            }
            out.files.push(file);
        }
        out.has_more = has_more;
        if has_more {
            out.next_after = last;
        }
        Ok(out)
    }

    pub(crate) fn statfs(&self) -> StatFsResponse {
        let mut r = StatFsResponse {
            block_size: self.cfg.block_size,
            ..Default::default()
        };
        for n in self.dns.all().iter().filter(|n| !n.dead) {
            r.capacity += n.capacity;
            r.used += n.used;
            r.remaining += n.remaining;
        }
        r.files = self.ns.counts().0;
        r
    }

    pub(crate) fn decommission(
        &mut self,
        node: &str,
        decommission: bool,
        now: Instant,
    ) -> Result<DatanodeReport> {
        let idx = self.dns.find(node).ok_or_else(|| Error::UnknownDatanode {
            node: node.to_string(),
        })?;
        let id = self.dns.get(idx).id.clone();
        self.decommissions.set(&id, decommission)?;
        let n = self.dns.get_mut(idx);
        let before = n.admin;
        if decommission {
            if before == AdminState::Normal {
                n.admin = AdminState::Decommissioning;
            }
        } else {
            n.admin = AdminState::Normal;
        }
        let (id, address, after) = (n.id.clone(), n.address.clone(), n.admin);
        let blocks: Vec<u64> = self.blocks.blocks_of(idx).collect();
        if before != after {
            tracing::info!(node = %id, %address, blocks = blocks.len(), state = ?after,
            "{}", if decommission {
                "decommissioning: the node stays readable while its blocks are copied elsewhere"
            } else {
                "recommissioned: the node is back in service; extra replicas will be trimmed"
            });
        }
        self.repl.check_all(blocks);
        Ok(self.node_report(idx, now))
    }

    /// Distinct racks of the live, in-service datanodes.
    pub(crate) fn cluster_racks(&self, now: Instant) -> usize {
        self.dns
            .all()
            .iter()
            .filter(|n| !n.dead && !n.decommissioning() && !self.dns.is_stale(n.idx, now))
            .map(|n| n.rack.as_str())
            .collect::<HashSet<_>>()
            .len()
    }
}
