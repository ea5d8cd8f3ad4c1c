//! Options for connecting, creating files and changing attributes.

use std::time::Duration;

use dfs_proto::defaults;

/// How a [`Client`](crate::Client) talks to the cluster.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// How long to wait for one namenode call, and for the next message of a
    /// datanode stream, before giving up. `dfs-fuse` sets a few seconds.
    pub rpc_timeout: Duration,
    /// How long to wait for a TCP connection to any server.
    pub connect_timeout: Duration,
    /// The host this client runs on, for data locality (placement puts the
    /// first replica there if it is a datanode, reads prefer it). `None`
    /// lets the namenode use the connection's peer address.
    pub client_host: Option<String>,
    /// Connections to the namenode that the clones of one client share,
    /// round robin (at least one). A few let many concurrent tasks of one
    /// process make calls in parallel; one HTTP/2 connection is driven by a
    /// single task at each end.
    pub namenode_connections: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            rpc_timeout: defaults::RPC_TIMEOUT,
            connect_timeout: defaults::CONNECT_TIMEOUT,
            client_host: None,
            namenode_connections: defaults::NAMENODE_CONNECTIONS,
        }
    }
}

impl ClientOptions {
    /// The base of a writer's ack timeouts, sent to its pipeline (each node
    /// adds [`defaults::ACK_TIMEOUT_PER_NODE`] per node after it).
    pub(crate) fn ack_timeout_base(&self) -> Duration {
        self.rpc_timeout.max(Duration::from_secs(20))
    }

    /// How long a writer waits for a packet's ack from a pipeline of
    /// `nodes` datanodes before it takes one of them for failed.
    pub(crate) fn ack_timeout(&self, nodes: usize) -> Duration {
        let base = u64::try_from(self.ack_timeout_base().as_millis()).unwrap_or(u64::MAX);
        defaults::ack_timeout(base, nodes)
    }

    /// How long a writer waits for a pipeline to be set up.
    pub(crate) fn setup_timeout(&self) -> Duration {
        self.rpc_timeout.max(Duration::from_secs(10))
    }

    /// How long a write may wait when a datanode of a pipeline of `nodes`
    /// stops answering without closing its connection (a hung process or
    /// host): until the writer's ack timeout gives up on it, then a
    /// pipeline recovery (namenode calls and a new pipeline's setup). A
    /// caller that bounds its own wait on a writer (as `dfs-fuse` does)
    /// should wait at least this long, or it fails writes the writer would
    /// have finished.
    ///
    /// ```
    /// use std::time::Duration;
    /// let opts = dfs_client::ClientOptions {
    ///     rpc_timeout: Duration::from_secs(5),
    ///     ..Default::default()
    /// };
    /// // 20 s + 5 s per node to notice, 10 s to set up, 5 s of calls.
    /// assert_eq!(opts.pipeline_stall_limit(3), Duration::from_secs(50));
    /// ```
    pub fn pipeline_stall_limit(&self, nodes: usize) -> Duration {
        self.ack_timeout(nodes) + self.setup_timeout() + self.rpc_timeout
    }
}

/// How [`Client::create`](crate::Client::create) makes a file. Unset fields
/// take the namenode's defaults.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Replace an existing file (never a directory).
    pub overwrite: bool,
    /// Create missing parent directories.
    pub create_parents: bool,
    /// Replicas per block (namenode default: 3).
    pub replication: Option<u32>,
    /// Block size in bytes, a multiple of 512 (namenode default: 128 MiB).
    pub block_size: Option<u64>,
    /// Permission bits such as `0o644`.
    pub mode: Option<u32>,
    /// Owner name.
    pub owner: Option<String>,
    /// Group name.
    pub group: Option<String>,
    /// Allocate the first block at the first write instead of with the
    /// create. By default the namenode allocates it with the create (one
    /// call and one flush less) and the writer opens its pipeline at once;
    /// a file that stays empty then gives the block back at close. Set
    /// this for files that usually stay empty.
    pub lazy_first_block: bool,
}

/// Attributes to change with [`Client::set_attr`](crate::Client::set_attr);
/// `None` leaves an attribute as it is.
#[derive(Debug, Clone, Default)]
pub struct SetAttr {
    /// Permission bits such as `0o755`.
    pub mode: Option<u32>,
    /// Owner name.
    pub owner: Option<String>,
    /// Group name.
    pub group: Option<String>,
    /// Modification time, milliseconds since the Unix epoch.
    pub mtime: Option<i64>,
    /// Access time, milliseconds since the Unix epoch.
    pub atime: Option<i64>,
}

impl SetAttr {
    /// True if no attribute is given.
    pub fn is_empty(&self) -> bool {
        self.mode.is_none()
            && self.owner.is_none()
            && self.group.is_none()
            && self.mtime.is_none()
            && self.atime.is_none()
    }

    /// Adds `newer` on top: each attribute it gives replaces this one's.
    pub fn merge(&mut self, newer: SetAttr) {
        self.mode = newer.mode.or(self.mode);
        self.owner = newer.owner.or(self.owner.take());
        self.group = newer.group.or(self.group.take());
        self.mtime = newer.mtime.or(self.mtime);
        self.atime = newer.atime.or(self.atime);
    }

    /// The wire form (permission bits only), `None` when empty.
    pub(crate) fn to_proto(&self) -> Option<dfs_proto::FileAttrs> {
        (!self.is_empty()).then(|| dfs_proto::FileAttrs {
            mode: self.mode.map(|m| m & 0o7777),
            owner: self.owner.clone(),
            group: self.group.clone(),
            mtime_ms: self.mtime,
            atime_ms: self.atime,
        })
    }
}

/// Checks the names of `attrs` by the namenode's rule
/// ([`dfs_proto::principal::check_principal`]), before anything is sent.
pub(crate) fn check_attrs(path: &str, attrs: &SetAttr) -> crate::Result<()> {
    for (what, name) in [("owner", &attrs.owner), ("group", &attrs.group)] {
        if let Some(n) = name {
            dfs_proto::principal::check_principal(what, n, false).map_err(|e| {
                crate::Error::InvalidArgument {
                    message: format!("set {what} of {path}: {e}"),
                }
            })?;
        }
    }
    Ok(())
}
