//! Namenode settings: the command line and the [`Config`] it produces.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use dfs_proto::defaults;

/// Command line of the `namenode` binary.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "namenode",
    version,
    about = "The dfs namenode: namespace, block map, placement, replication and leases."
)]
pub struct Args {
    /// Address to serve ClientProtocol and DatanodeProtocol on.
    #[arg(long, default_value = defaults::NAMENODE_ADDR)]
    pub listen: SocketAddr,
    /// Directory of the metadata store (created if missing).
    #[arg(long)]
    pub data: PathBuf,
    /// Default block size of new files, in bytes.
    #[arg(long, default_value_t = defaults::BLOCK_SIZE)]
    pub block_size: u64,
    /// Default replication of new files.
    #[arg(long, default_value_t = defaults::REPLICATION)]
    pub replication: u32,
    /// Topology file: lines `ADDRESS_OR_HOST RACK`, overriding the datanodes' own --rack.
    #[arg(long)]
    pub topology: Option<PathBuf>,
    /// A datanode without heartbeat this long is stale.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub stale_after: Duration,
    /// A datanode without heartbeat this long is dead; its blocks are re-replicated.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10m30s")]
    pub dead_after: Duration,
    /// The datanodes' heartbeat interval (paces the replication monitor).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "3s")]
    pub heartbeat_interval: Duration,
    /// Fraction of complete blocks that must have a reported replica to leave safe mode.
    #[arg(long, default_value_t = defaults::SAFEMODE_THRESHOLD)]
    pub safemode_threshold: f64,
    /// How long safe mode lasts after the threshold is reached.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub safemode_extension: Duration,
    /// Concurrent replication copies one datanode takes part in.
    #[arg(long, default_value_t = defaults::MAX_REPLICATION_STREAMS)]
    pub max_replication_streams: u32,
    /// After this long without renewal another client may recover a file's lease.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub lease_soft_limit: Duration,
    /// After this long without renewal the namenode recovers the file by itself.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "20m")]
    pub lease_hard_limit: Duration,
    /// Check permissions (mode bits, owners, the sticky bit, superuser-only
    /// administration), as HDFS's dfs.permissions.enabled.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub permissions: bool,
    /// The superuser, who passes every permission check [default: the user
    /// the namenode runs as].
    #[arg(long, value_name = "USER")]
    pub superuser: Option<String>,
    /// Members of this group (on the namenode's host) are superusers too.
    #[arg(long, default_value = "supergroup", value_name = "GROUP")]
    pub supergroup: String,
}

/// Everything the namenode needs to run, besides its listener.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory of the metadata store.
    pub data_dir: PathBuf,
    /// Default block size of new files.
    pub block_size: u64,
    /// Default replication of new files.
    pub replication: u32,
    /// Optional topology file.
    pub topology: Option<PathBuf>,
    /// Heartbeat silence after which a node is stale.
    pub stale_after: Duration,
    /// Heartbeat silence after which a node is dead.
    pub dead_after: Duration,
    /// The datanodes' heartbeat interval.
    pub heartbeat_interval: Duration,
    /// Safe mode threshold (fraction of complete blocks with a replica).
    pub safemode_threshold: f64,
    /// Safe mode extension after the threshold is reached.
    pub safemode_extension: Duration,
    /// Concurrent replication copies per datanode.
    pub max_replication_streams: u32,
    /// Lease soft limit.
    pub lease_soft_limit: Duration,
    /// Lease hard limit.
    pub lease_hard_limit: Duration,
    /// A scheduled copy not confirmed within this time is scheduled again.
    pub replication_timeout: Duration,
    /// A lease recovery not committed within this time is started again.
    pub recovery_timeout: Duration,
    /// Most blocks one `DeleteBlocks` command carries.
    pub deletes_per_heartbeat: usize,
    /// Least time between two balancer steps (each looks at every
    /// replica under the namespace lock).
    pub balance_every: Duration,
    /// Whether permissions are checked.
    pub permissions: bool,
    /// The superuser's name.
    pub superuser: String,
    /// The group whose members are superusers.
    pub supergroup: String,
}

impl Config {
    /// A configuration with every default and the given data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            block_size: defaults::BLOCK_SIZE,
            replication: defaults::REPLICATION,
            topology: None,
            stale_after: defaults::STALE_AFTER,
            dead_after: defaults::DEAD_AFTER,
            heartbeat_interval: defaults::HEARTBEAT_INTERVAL,
            safemode_threshold: defaults::SAFEMODE_THRESHOLD,
            safemode_extension: Duration::from_secs(5),
            max_replication_streams: defaults::MAX_REPLICATION_STREAMS,
            lease_soft_limit: defaults::LEASE_SOFT_LIMIT,
            lease_hard_limit: defaults::LEASE_HARD_LIMIT,
            replication_timeout: Duration::from_secs(60),
            recovery_timeout: Duration::from_secs(30),
            deletes_per_heartbeat: 1000,
            balance_every: defaults::HEARTBEAT_INTERVAL,
            permissions: true,
            superuser: dfs_proto::principal::process_user(),
            supergroup: "supergroup".into(),
        }
    }

    /// Checks the values for consistency.
    pub fn validate(&self) -> Result<(), String> {
        if self.block_size < defaults::MIN_BLOCK_SIZE
            || self.block_size % defaults::BYTES_PER_CHECKSUM as u64 != 0
        {
            return Err(format!(
                "--block-size {} must be a multiple of {} and at least {}",
                self.block_size,
                defaults::BYTES_PER_CHECKSUM,
                defaults::MIN_BLOCK_SIZE
            ));
        }
        if self.replication == 0 || self.replication > defaults::MAX_REPLICATION {
            return Err(format!(
                "--replication {} must be between 1 and {}",
                self.replication,
                defaults::MAX_REPLICATION
            ));
        }
        if !(0.0..=1.0).contains(&self.safemode_threshold) {
            return Err(format!(
                "--safemode-threshold {} must be between 0 and 1",
                self.safemode_threshold
            ));
        }
        if self.dead_after <= self.stale_after {
            return Err(format!(
                "--dead-after {} must be longer than --stale-after {}",
                humantime::format_duration(self.dead_after),
                humantime::format_duration(self.stale_after)
            ));
        }
        if self.heartbeat_interval.is_zero() {
            return Err("--heartbeat-interval must not be zero".into());
        }
        if self.max_replication_streams == 0 {
            return Err("--max-replication-streams must be at least 1".into());
        }
        if self.lease_hard_limit < self.lease_soft_limit {
            return Err("--lease-hard-limit must not be shorter than --lease-soft-limit".into());
        }
        Ok(())
    }
}

impl From<Args> for Config {
    fn from(a: Args) -> Config {
        let hb = a.heartbeat_interval;
        Config {
            data_dir: a.data,
            block_size: a.block_size,
            replication: a.replication,
            topology: a.topology,
            stale_after: a.stale_after,
            dead_after: a.dead_after,
            heartbeat_interval: hb,
            safemode_threshold: a.safemode_threshold,
            safemode_extension: a.safemode_extension,
            max_replication_streams: a.max_replication_streams,
            lease_soft_limit: a.lease_soft_limit,
            lease_hard_limit: a.lease_hard_limit,
            // Long enough for a block copy, short enough that a lost copy is
            // retried soon (HDFS: 5 min).
            replication_timeout: (hb * 20).clamp(Duration::from_secs(20), Duration::from_secs(300)),
            // Longer than a recovery that waits out one hung replica (the
            // primary gives each replica an RPC timeout): shorter, the
            // namenode gave up on a recovery about to succeed and started
            // another, which met the same hung node.
            recovery_timeout: (hb * 10)
                .clamp(Duration::from_secs(10), Duration::from_secs(120))
                .max(defaults::RPC_TIMEOUT + Duration::from_secs(15)),
            deletes_per_heartbeat: 1000,
            balance_every: hb,
            permissions: a.permissions,
            superuser: a
                .superuser
                .unwrap_or_else(dfs_proto::principal::process_user),
            supergroup: a.supergroup,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_and_defaults() {
        let a = Args::try_parse_from([
            "namenode",
            "--listen",
            "127.0.0.1:0",
            "--data",
            "/tmp/x",
            "--dead-after",
            "10m30s",
            "--stale-after",
            "3s",
        ])
        .unwrap();
        let c = Config::from(a);
        assert_eq!(c.dead_after, Duration::from_secs(630));
        assert_eq!(c.stale_after, Duration::from_secs(3));
        assert_eq!(c.block_size, defaults::BLOCK_SIZE);
        assert_eq!(c.lease_hard_limit, Duration::from_secs(1200));
        c.validate().unwrap();
    }

    #[test]
    fn rejects_bad_block_size() {
        let mut c = Config::new("/tmp/x");
        c.block_size = 1000;
        assert!(c.validate().is_err());
    }
}
