//! [`Client`]: the namespace calls, and the entry points of reading and
//! writing. The directory listing calls are in the `listing` child module.

use std::sync::Arc;
use std::time::Duration;

use dfs_proto::defaults;
use dfs_proto::path::normalize;

use crate::conn::DatanodePool;
use crate::error::{Error, Result};
use crate::lease::LeaseRenewer;
use crate::namenode::NameNode;
use crate::options::{ClientOptions, CreateOptions, SetAttr};
use crate::reader::FileReader;
use crate::types::{
    BalancerStatus, BlockLocation, ClusterReport, ContentSummary, FileStatus, FileType, FsStats,
    FsckReport, SafeModeAction, SafeModeState,
};
use crate::writer::FileWriter;

mod listing;

/// A path's status and, for a file, the locations of its blocks, from
/// [`Client::located_status`]; [`Client::open_located`] opens it.
#[derive(Debug, Clone)]
pub struct LocatedStatus {
    path: String,
    status: FileStatus,
    locations: Option<dfs_proto::GetBlockLocationsResponse>,
}

impl LocatedStatus {
    /// The path asked for, normalized.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path's status.
    pub fn status(&self) -> &FileStatus {
        &self.status
    }

    /// The block locations, for a file.
    pub(crate) fn locations(&self) -> Option<&dfs_proto::GetBlockLocationsResponse> {
        self.locations.as_ref()
    }
}

/// A connection to a dfs cluster. Cheap to clone; clones share the
/// connections, the client name (and so the leases) and the lease renewer.
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) namenode: NameNode,
    pub(crate) datanodes: DatanodePool,
    pub(crate) opts: ClientOptions,
    pub(crate) client_name: String,
    pub(crate) leases: LeaseRenewer,
}

impl Inner {
    /// The host sent to the namenode for locality (empty = use the peer).
    pub(crate) fn client_host(&self) -> String {
        self.opts.client_host.clone().unwrap_or_default()
    }

    /// How long to wait for the next message of a datanode stream.
    pub(crate) fn data_timeout(&self) -> Duration {
        self.opts.rpc_timeout
    }
}

fn path_of(path: &str) -> Result<String> {
    Ok(normalize(path)?)
}

impl Client {
    /// Connects to the namenode at `addr` (`host:port`) with default
    /// options. A namenode that refuses connections (restarting) is waited
    /// for up to 5 s (at most the RPC timeout); one that cannot be reached
    /// otherwise fails within the connect timeout. The error names the
    /// address.
    ///
    /// ```no_run
    /// # async fn f() -> dfs_client::Result<()> {
    /// let client = dfs_client::Client::connect("127.0.0.1:9000").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(addr: &str) -> Result<Client> {
        Client::connect_with(addr, ClientOptions::default()).await
    }

    /// Connects with explicit [`ClientOptions`].
    ///
    /// ```no_run
    /// # async fn f() -> dfs_client::Result<()> {
    /// use std::time::Duration;
    /// let opts = dfs_client::ClientOptions { rpc_timeout: Duration::from_secs(5), ..Default::default() };
    /// let client = dfs_client::Client::connect_with("127.0.0.1:9000", opts).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_with(addr: &str, opts: ClientOptions) -> Result<Client> {
        let client_name = format!("dfs-client-{}", uuid::Uuid::new_v4());
        let namenode = NameNode::connect(
            addr,
            &client_name,
            opts.namenode_connections.max(1),
            opts.connect_timeout,
            opts.rpc_timeout,
        )
        .await?;
        let leases = LeaseRenewer::new(namenode.clone(), client_name.clone());
        Ok(Client {
            inner: Arc::new(Inner {
                namenode,
                datanodes: DatanodePool::new(opts.connect_timeout),
                opts,
                client_name,
                leases,
            }),
        })
    }

    /// The namenode address this client talks to.
    pub fn namenode_addr(&self) -> &str {
        self.inner.namenode.addr()
    }

    /// This client's name, which holds the leases of the files it writes.
    pub fn client_name(&self) -> &str {
        &self.inner.client_name
    }

    fn nn(&self) -> &NameNode {
        &self.inner.namenode
    }

    /// `GetFileInfo` of a normalized path, retried while the namenode is
    /// unreachable or in safe mode; `with_locations` asks for the blocks.
    async fn get_file_info(
        &self,
        path: &str,
        with_locations: bool,
    ) -> Result<dfs_proto::GetFileInfoResponse> {
        let req = dfs_proto::GetFileInfoRequest {
            path: path.to_string(),
            with_locations,
            client_host: if with_locations {
                self.inner.client_host()
            } else {
                String::new()
            },
        };
        let budget = self.nn().rpc_timeout();
        self.nn()
            .call_retrying("GetFileInfo", path, budget, |mut c| {
                let req = req.clone();
                async move { c.get_file_info(req).await }
            })
            .await
    }

    /// The status of a file or directory.
    ///
    /// ```no_run
    /// # async fn f(client: dfs_client::Client) -> dfs_client::Result<()> {
    /// let st = client.status("/data/part-0").await?;
    /// println!("{} bytes, {} replicas", st.length, st.replication);
    /// # Ok(()) }
    /// ```
    pub async fn status(&self, path: &str) -> Result<FileStatus> {
        let path = path_of(path)?;
        let resp = self.get_file_info(&path, false).await?;
        match resp.status {
            Some(st) => Ok(st.into()),
            None => Err(Error::NotFound { path }),
        }
    }

    /// Creates a directory (and its missing parents when `parents`).
    /// With `parents`, an existing directory is not an error.
    pub async fn mkdirs(&self, path: &str, parents: bool) -> Result<FileStatus> {
        let path = path_of(path)?;
        let req = dfs_proto::MkdirsRequest {
            path: path.clone(),
            parents,
            mode: 0o755,
            owner: crate::user::current_user(),
            group: String::new(),
        };
        let call = |mut c: crate::namenode::NnClient| {
            let req = req.clone();
            async move { c.mkdirs(req).await }
        };
        let budget = self.inner.opts.rpc_timeout;
        // With `parents`, a mkdirs applied twice answers the same (HDFS
        // marks it idempotent), so one whose connection broke is retried
        // too; without, only one that surely never reached the namenode,
        // since a second try would find the directory it made.
        let resp = if parents {
            self.nn()
                .call_retrying("Mkdirs", &path, budget, call)
                .await?
        } else {
            self.nn()
                .call_at_most_once("Mkdirs", &path, budget, call)
                .await?
        };
        match resp.status {
            Some(st) => Ok(st.into()),
            None => self.status(&path).await,
        }
    }

    /// Deletes a file, or a directory (which must be empty unless
    /// `recursive`).
    pub async fn delete(&self, path: &str, recursive: bool) -> Result<()> {
        self.delete_as(path, recursive, dfs_proto::EntryKind::Any)
            .await
    }

    /// Deletes `path` only if it is a `kind`: a directory where a file is
    /// expected fails with [`Error::IsADirectory`], a file where a
    /// directory is expected with [`Error::NotADirectory`], as unlink(2)
    /// and rmdir(2) do. For a caller whose view of the path may be stale
    /// (another client replaced the file by a directory meanwhile).
    pub async fn delete_kind(&self, path: &str, recursive: bool, kind: FileType) -> Result<()> {
        let expect = match kind {
            FileType::File => dfs_proto::EntryKind::File,
            FileType::Dir => dfs_proto::EntryKind::Directory,
        };
        self.delete_as(path, recursive, expect).await
    }

    async fn delete_as(
        &self,
        path: &str,
        recursive: bool,
        expect: dfs_proto::EntryKind,
    ) -> Result<()> {
        let path = path_of(path)?;
        let req = dfs_proto::DeleteRequest {
            path: path.clone(),
            recursive,
            expect: expect as i32,
        };
        self.nn()
            .call_at_most_once("Delete", &path, self.inner.opts.rpc_timeout, |mut c| {
                let req = req.clone();
                async move { c.delete(req).await }
            })
            .await?;
        Ok(())
    }

    /// Renames `src` to `dst`. With `overwrite`, an existing destination
    /// file is replaced (POSIX rename); otherwise it is an error.
    pub async fn rename(&self, src: &str, dst: &str, overwrite: bool) -> Result<()> {
        let src = path_of(src)?;
        let dst = path_of(dst)?;
        let req = dfs_proto::RenameRequest {
            src: src.clone(),
            dst: dst.clone(),
            overwrite,
        };
        self.nn()
            .call_paths_at_most_once(
                "Rename",
                &[&src, &dst],
                self.inner.opts.rpc_timeout,
                |mut c| {
                    let req = req.clone();
                    async move { c.rename(req).await }
                },
            )
            .await
            .map_err(|e| match e {
                // Only the destination can be in the way.
                Error::AlreadyExists { .. } => Error::AlreadyExists { path: dst.clone() },
                Error::DirectoryNotEmpty { .. } => Error::DirectoryNotEmpty { path: dst.clone() },
                other => other,
            })?;
        Ok(())
    }

    /// Changes mode, owner, group or times; returns the new status.
    pub async fn set_attr(&self, path: &str, attr: SetAttr) -> Result<FileStatus> {
        self.set_attr_checked(path, None, attr).await
    }

    /// Like [`set_attr`](Self::set_attr), but only if `path` still names
    /// the file `inode` ([`FileStatus::inode`]): a file this client writes
    /// may have been renamed, and another put in its place, by another
    /// client. Otherwise [`Error::NotFound`] and nothing changes. An mtime
    /// set on a file being written is kept by its close.
    pub async fn set_attr_of(&self, path: &str, inode: u64, attr: SetAttr) -> Result<FileStatus> {
        self.set_attr_checked(path, Some(inode), attr).await
    }

    async fn set_attr_checked(
        &self,
        path: &str,
        inode: Option<u64>,
        attr: SetAttr,
    ) -> Result<FileStatus> {
        let path = path_of(path)?;
        let req = dfs_proto::SetAttrRequest {
            path: path.clone(),
            mode: attr.mode.map(|m| m & 0o7777),
            owner: attr.owner,
            group: attr.group,
            mtime_ms: attr.mtime,
            atime_ms: attr.atime,
            inode,
        };
        let resp = self
            .nn()
            .call_at_most_once("SetAttr", &path, self.inner.opts.rpc_timeout, |mut c| {
                let req = req.clone();
                async move { c.set_attr(req).await }
            })
            .await?;
        match resp.status {
            Some(st) => Ok(st.into()),
            None => self.status(&path).await,
        }
    }

    /// Changes a file's replication; the cluster adds or removes replicas.
    pub async fn set_replication(&self, path: &str, replication: u32) -> Result<()> {
        let path = path_of(path)?;
        check_replication(replication)?;
        let req = dfs_proto::SetReplicationRequest {
            path: path.clone(),
            replication,
        };
        self.nn()
            .call_at_most_once(
                "SetReplication",
                &path,
                self.inner.opts.rpc_timeout,
                |mut c| {
                    let req = req.clone();
                    async move { c.set_replication(req).await }
                },
            )
            .await?;
        Ok(())
    }

    /// Bytes, files and directories under a path.
    pub async fn content_summary(&self, path: &str) -> Result<ContentSummary> {
        let path = path_of(path)?;
        let req = dfs_proto::ContentSummaryRequest { path: path.clone() };
        let r = self
            .nn()
            .call("ContentSummary", &path, |mut c| async move {
                c.content_summary(req).await
            })
            .await?;
        Ok(ContentSummary {
            length: r.length,
            files: r.files,
            directories: r.directories,
            space_consumed: r.space_consumed,
        })
    }

    /// Creates a file and returns its writer. The file is visible at once
    /// (empty, under construction); its data is readable up to what the
    /// writer has flushed, and it is complete after
    /// [`FileWriter::close`].
    ///
    /// ```no_run
    /// # async fn f(client: dfs_client::Client) -> dfs_client::Result<()> {
    /// use tokio::io::AsyncWriteExt;
    /// let mut w = client.create("/data/hello.txt", Default::default()).await?;
    /// w.write_all(b"hello, world\n").await?;
    /// w.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn create(&self, path: &str, opts: CreateOptions) -> Result<FileWriter> {
        let path = path_of(path)?;
        if let Some(r) = opts.replication {
            check_replication(r)?;
        }
        if let Some(bs) = opts.block_size {
            check_block_size(bs)?;
        }
        let req = dfs_proto::CreateRequest {
            path: path.clone(),
            client_name: self.inner.client_name.clone(),
            overwrite: opts.overwrite,
            create_parents: opts.create_parents,
            replication: opts.replication.unwrap_or(0),
            block_size: opts.block_size.unwrap_or(0),
            mode: opts.mode.map(|m| m & 0o7777).unwrap_or(0o644),
            owner: opts.owner.unwrap_or_else(crate::user::current_user),
            group: opts.group.unwrap_or_default(),
            allocate_block: !opts.lazy_first_block,
            client_host: self.inner.client_host(),
        };
        let resp = self
            .nn()
            .call_at_most_once("Create", &path, self.inner.opts.rpc_timeout, |mut c| {
                let req = req.clone();
                async move { c.create(req).await }
            })
            .await?;
        let status: FileStatus = match resp.status {
            Some(st) => st.into(),
            None => {
                return Err(Error::Server {
                    message: format!("namenode created {path} without returning its status"),
                })
            }
        };
        // The file's real path, also when it was named by an inode path
        // (`/.reserved/.inodes/ID/NAME`): the writer's messages name it.
        let path = if status.path.is_empty() {
            path
        } else {
            status.path.clone()
        };
        Ok(FileWriter::start(
            self.inner.clone(),
            path,
            status,
            resp.block,
        ))
    }

    /// Opens a file for reading.
    ///
    /// ```no_run
    /// # async fn f(client: dfs_client::Client) -> dfs_client::Result<()> {
    /// use tokio::io::AsyncReadExt;
    /// let mut r = client.open("/data/hello.txt").await?;
    /// let mut text = String::new();
    /// r.read_to_string(&mut text).await?;
    /// let mut head = [0u8; 5];
    /// let n = r.read_at(0, &mut head).await?;
    /// # Ok(()) }
    /// ```
    pub async fn open(&self, path: &str) -> Result<FileReader> {
        let path = path_of(path)?;
        FileReader::open(self.inner.clone(), path).await
    }

    /// The status of a path and, for a file, where all its blocks are, in
    /// one namenode call (HDFS's located status). [`Client::open_located`]
    /// then opens the file without another call; a mount answering a
    /// lookup and the open that follows uses this.
    ///
    /// ```no_run
    /// # async fn f(client: dfs_client::Client) -> dfs_client::Result<()> {
    /// let located = client.located_status("/data/part-0").await?;
    /// if !located.status().is_dir() {
    ///     let reader = client.open_located(located).await?;
    ///     println!("{} bytes", reader.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn located_status(&self, path: &str) -> Result<LocatedStatus> {
        let path = path_of(path)?;
        let resp = self.get_file_info(&path, true).await?;
        match resp.status {
            Some(st) => Ok(LocatedStatus {
                path,
                status: st.into(),
                locations: resp.locations,
            }),
            None => Err(Error::NotFound { path }),
        }
    }

    /// Opens the file `located` describes with the block locations it
    /// carries, without a namenode call. Locations that went stale (a
    /// datanode died since) are refreshed by the reader as it fails over.
    /// For a file under construction, a datanode of the block being written
    /// is asked how much of it is acknowledged. Fails for a directory.
    pub async fn open_located(&self, located: LocatedStatus) -> Result<FileReader> {
        let LocatedStatus {
            path,
            status,
            locations,
        } = located;
        match locations {
            Some(resp) => FileReader::with_locations(self.inner.clone(), path, status, resp).await,
            None if status.is_dir() => Err(Error::IsADirectory { path }),
            // No locations came with a file (the caller may not read it):
            // an open asks the namenode, which says why not.
            None => FileReader::open(self.inner.clone(), path).await,
        }
    }

    /// The blocks holding `length` bytes from `offset` (0 = to the end),
    /// with the datanodes and racks of their replicas, for scheduling work
    /// near the data.
    pub async fn block_locations(
        &self,
        path: &str,
        offset: u64,
        length: u64,
    ) -> Result<Vec<BlockLocation>> {
        let path = path_of(path)?;
        // The namenode lists a bounded number of blocks per reply: ask
        // again from the end of the last one until the range is covered.
        let mut out: Vec<BlockLocation> = Vec::new();
        let mut from = offset;
        loop {
            let resp = crate::reader::get_block_locations(
                &self.inner,
                &path,
                from,
                if length == 0 {
                    0
                } else {
                    (offset.saturating_add(length)).saturating_sub(from)
                },
            )
            .await?;
            let end = if length == 0 {
                resp.file_length
            } else {
                offset.saturating_add(length).min(resp.file_length)
            };
            let Some(last) = resp.blocks.last() else {
                break;
            };
            let next = last.offset + last.block.as_ref().map_or(0, |b| b.length);
            // The block being written comes whole: kept if the range
            // reaches it.
            out.extend(
                resp.blocks
                    .iter()
                    .filter(|lb| lb.offset < end)
                    .map(BlockLocation::from),
            );
            if next >= end || next <= from {
                break;
            }
            from = next;
        }
        Ok(out)
    }

    /// The cluster's datanodes and safe mode state (`dfs report`).
    pub async fn report(&self) -> Result<ClusterReport> {
        let budget = self.nn().rpc_timeout();
        let r = self
            .nn()
            .call_retrying("ClusterReport", "", budget, |mut c| async move {
                c.cluster_report(dfs_proto::ClusterReportRequest {}).await
            })
            .await?;
        Ok(r.into())
    }

    /// The health of every file under `path` (`dfs fsck`).
    pub async fn fsck(&self, path: &str) -> Result<FsckReport> {
        let path = path_of(path)?;
        // The namenode answers in pages (so no reply nears the message
        // limit and its lock is held briefly); the counts add up.
        let mut all = dfs_proto::FsckResponse::default();
        let mut start_after = String::new();
        loop {
            let req = dfs_proto::FsckRequest {
                path: path.clone(),
                start_after: start_after.clone(),
            };
            let page = self
                .nn()
                .call("Fsck", &path, |mut c| async move { c.fsck(req).await })
                .await?;
            all.files.extend(page.files);
            all.total_files += page.total_files;
            all.total_dirs += page.total_dirs;
            all.total_blocks += page.total_blocks;
            all.under_replicated += page.under_replicated;
            all.over_replicated += page.over_replicated;
            all.mis_replicated += page.mis_replicated;
            all.corrupt += page.corrupt;
            all.missing += page.missing;
            all.live_datanodes = page.live_datanodes;
            all.racks = page.racks;
            if !page.has_more || page.next_after.is_empty() || page.next_after == start_after {
                break;
            }
            start_after = page.next_after;
        }
        Ok(all.into())
    }

    /// Capacity and usage of the whole cluster.
    pub async fn statfs(&self) -> Result<FsStats> {
        let budget = self.nn().rpc_timeout();
        let r = self
            .nn()
            .call_retrying("StatFs", "", budget, |mut c| async move {
                c.stat_fs(dfs_proto::StatFsRequest {}).await
            })
            .await?;
        Ok(FsStats {
            capacity: r.capacity,
            used: r.used,
            remaining: r.remaining,
            files: r.files,
            block_size: r.block_size,
        })
    }

    /// Starts lease recovery of a file whose writer is gone (with `force`,
    /// before the soft limit expired). Returns `true` when the file is
    /// closed; `false` means recovery is under way: call again to see it
    /// finish.
    pub async fn recover_lease(&self, path: &str, force: bool) -> Result<bool> {
        let path = path_of(path)?;
        let req = dfs_proto::RecoverLeaseRequest {
            path: path.clone(),
            client_name: self.inner.client_name.clone(),
            force,
        };
        let r = self
            .nn()
            .call("RecoverLease", &path, |mut c| async move {
                c.recover_lease(req).await
            })
            .await?;
        Ok(r.closed)
    }

    /// Decommissions (`true`) or recommissions (`false`) the datanode with
    /// this address or id.
    pub async fn decommission(&self, node: &str, decommission: bool) -> Result<()> {
        let req = dfs_proto::DecommissionRequest {
            node: node.to_string(),
            decommission,
        };
        self.nn()
            .call("Decommission", "", |mut c| async move {
                c.decommission(req).await
            })
            .await
            .map_err(|e| match e {
                Error::Server { message } if message.is_empty() => Error::NotFound {
                    path: node.to_string(),
                },
                other => other,
            })?;
        Ok(())
    }

    /// Reads ([`SafeModeAction::Get`]), enters or leaves the namenode's
    /// safe mode, as HDFS's `dfsadmin -safemode`; returns where it stands
    /// afterwards. While on, namespace changes and new blocks are refused
    /// and no replica is copied or deleted; reads go on.
    pub async fn set_safe_mode(&self, action: SafeModeAction) -> Result<SafeModeState> {
        let action = match action {
            SafeModeAction::Get => dfs_proto::SafeModeAction::SafeModeGet,
            SafeModeAction::Enter => dfs_proto::SafeModeAction::SafeModeEnter,
            SafeModeAction::Leave => dfs_proto::SafeModeAction::SafeModeLeave,
        };
        let req = dfs_proto::SetSafeModeRequest {
            action: action as i32,
        };
        let resp = self
            .nn()
            .call("SetSafeMode", "", |mut c| async move {
                c.set_safe_mode(req).await
            })
            .await?;
        Ok(SafeModeState {
            on: resp.on,
            status: resp.status,
        })
    }

    /// Starts the namenode's balancer with `start` (percentage points of
    /// distance from the average use every node should end within; a run
    /// going on takes the new value), stops it (`stop`), or with neither
    /// only reports. Replicas move from nodes fuller than the average to
    /// emptier ones, never lowering a block's replication or racks.
    pub async fn balance(&self, start: Option<f64>, stop: bool) -> Result<BalancerStatus> {
        let start_threshold = match start {
            None => 0.0,
            Some(pct) if pct > 0.0 && pct < 100.0 => pct / 100.0,
            Some(pct) => {
                return Err(Error::InvalidArgument {
                    message: format!("threshold {pct} is out of range (above 0 and below 100)"),
                })
            }
        };
        let req = dfs_proto::BalanceRequest {
            start_threshold,
            stop,
        };
        let r = self
            .nn()
            .call("Balance", "", |mut c| async move { c.balance(req).await })
            .await?;
        Ok(BalancerStatus {
            running: r.running,
            outcome: r.outcome,
            threshold_pct: r.threshold * 100.0,
            blocks_moved: r.blocks_moved,
            bytes_moved: r.bytes_moved,
            moves_in_flight: r.moves_in_flight,
            average_pct: r.average * 100.0,
            nodes: r
                .nodes
                .into_iter()
                .map(|n| (n.address, n.utilization * 100.0))
                .collect(),
        })
    }
}

fn check_replication(r: u32) -> Result<()> {
    if r == 0 || r > defaults::MAX_REPLICATION {
        return Err(Error::InvalidArgument {
            message: format!(
                "replication {r} is out of range (1 to {})",
                defaults::MAX_REPLICATION
            ),
        });
    }
    Ok(())
}

fn check_block_size(bs: u64) -> Result<()> {
    if bs < defaults::MIN_BLOCK_SIZE || bs % defaults::BYTES_PER_CHECKSUM as u64 != 0 {
        return Err(Error::InvalidArgument {
            message: format!(
                "block size {bs} must be at least {} and a multiple of {}",
                defaults::MIN_BLOCK_SIZE,
                defaults::BYTES_PER_CHECKSUM
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_checks() {
        assert!(check_replication(0).is_err());
        assert!(check_replication(3).is_ok());
        assert!(check_replication(defaults::MAX_REPLICATION + 1).is_err());
        assert!(check_block_size(1 << 20).is_ok());
        assert!(check_block_size(1000).is_err());
        assert!(check_block_size(4096 + 100).is_err());
    }

    /// A namenode that refuses connections is waited for (it may be
    /// restarting) up to 5 s or the RPC timeout, then named in the error.
    #[tokio::test]
    async fn unreachable_namenode_fails_within_the_rpc_timeout_naming_the_address() {
        // A port nobody listens on (bound then released).
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        let start = std::time::Instant::now();
        let opts = ClientOptions {
            rpc_timeout: Duration::from_secs(1),
            ..Default::default()
        };
        let err = Client::connect_with(&addr, opts).await.unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(matches!(err, Error::Unreachable { .. }));
        assert!(err.to_string().contains(&addr), "{err}");
    }
}
