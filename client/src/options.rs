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
