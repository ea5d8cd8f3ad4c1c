//! Command line flags and the datanode's configuration.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use dfs_proto::defaults;

/// Rack reported when `--rack` is not given.
pub const DEFAULT_RACK: &str = "/default-rack";
/// Default `--scan-rate`: 1 MiB/s, as HDFS's block scanner.
pub const DEFAULT_SCAN_RATE: u64 = 1024 * 1024;
/// Default `--socket-write-timeout`: HDFS's dfs.datanode.socket.write.timeout.
pub const DEFAULT_SOCKET_WRITE_TIMEOUT: Duration = Duration::from_secs(480);
/// Largest `--max-xceivers` accepted (far above what file descriptors
/// allow; keeps the count within what a semaphore can hold anywhere).
pub const MAX_XCEIVERS_LIMIT: u32 = 1 << 20;

/// `datanode` command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "datanode",
    version,
    about = "The dfs datanode: stores checksummed block replicas"
)]
pub struct Args {
    /// Namenode address (host:port).
    #[arg(long, default_value = defaults::NAMENODE_ADDR)]
    pub namenode: String,
    /// Address of this node's DataTransfer service; it is also the address the
    /// node advertises (with the real port when 0 is given).
    #[arg(long, default_value_t = format!("127.0.0.1:{}", defaults::DATANODE_PORT))]
    pub listen: String,
    /// Data directory (created if missing).
    #[arg(long)]
    pub data: PathBuf,
    /// Rack path such as /dc1/rack2.
    #[arg(long)]
    pub rack: Option<String>,
    /// Time between heartbeats, e.g. 3s.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub heartbeat_interval: Duration,
    /// Time between full block reports, e.g. 6h.
    #[arg(long, default_value = "6h", value_parser = humantime::parse_duration)]
    pub block_report_interval: Duration,
    /// Bytes of the disk kept free; the node reports itself full below it.
    #[arg(long, default_value_t = 0)]
    pub reserved: u64,
    /// Most bytes of replicas this node stores and reports as its capacity
    /// (0: the disk's size less --reserved), for datanodes that share a
    /// disk (HDFS's reserved space, the other way round).
    #[arg(long, default_value_t = 0)]
    pub capacity: u64,
    /// Block scanner rate in bytes per second (0 disables the scanner).
    #[arg(long, default_value_t = DEFAULT_SCAN_RATE)]
    pub scan_rate: u64,
    /// Replica copies ordered by the namenode that run at the same time.
    #[arg(long, default_value_t = defaults::MAX_REPLICATION_STREAMS)]
    pub max_transfers: u32,
    /// Block transfer protocol connections (block writes and reads)
    /// served at once; more are refused, so the client goes to another
    /// datanode (HDFS's dfs.datanode.max.transfer.threads).
    #[arg(long, default_value_t = defaults::MAX_XCEIVERS)]
    pub max_xceivers: u32,
    /// Replicas per full block report message; larger reports are sent in
    /// parts.
    #[arg(long, default_value_t = defaults::BLOCK_REPORT_PART)]
    pub block_report_part: usize,
    /// How long a block transfer peer may take no data (a reader that stopped
    /// reading, a writer that stopped taking acknowledgements) before the
    /// connection is closed and its transfer slot freed, e.g. 8m.
    #[arg(long, default_value = "8m", value_parser = humantime::parse_duration)]
    pub socket_write_timeout: Duration,
}

/// The datanode's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Namenode address (host:port).
    pub namenode: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Rack path.
    pub rack: String,
    /// Time between heartbeats.
    pub heartbeat_interval: Duration,
    /// Time between full block reports.
    pub block_report_interval: Duration,
    /// Bytes of the disk kept free.
    pub reserved: u64,
    /// Most bytes of replicas stored (0: no limit but the disk).
    pub capacity: u64,
    /// Scanner rate in bytes per second; 0 disables the scanner.
    pub scan_rate: u64,
    /// Concurrent namenode-ordered replica copies.
    pub max_transfers: u32,
    /// Block transfer connections served at once.
    pub max_xceivers: u32,
    /// Replicas per full block report message.
    pub block_report_part: usize,
    /// How long a block transfer peer may take no data.
    pub socket_write_timeout: Duration,
}

impl Config {
    /// Settings with defaults for a data directory and a namenode address.
    pub fn new(namenode: impl Into<String>, data_dir: impl Into<PathBuf>) -> Config {
        Config {
            namenode: namenode.into(),
            data_dir: data_dir.into(),
            rack: DEFAULT_RACK.to_string(),
            heartbeat_interval: defaults::HEARTBEAT_INTERVAL,
            block_report_interval: defaults::BLOCK_REPORT_INTERVAL,
            reserved: 0,
            capacity: 0,
            scan_rate: DEFAULT_SCAN_RATE,
            max_transfers: defaults::MAX_REPLICATION_STREAMS,
            max_xceivers: defaults::MAX_XCEIVERS,
            block_report_part: defaults::BLOCK_REPORT_PART,
            socket_write_timeout: DEFAULT_SOCKET_WRITE_TIMEOUT,
        }
    }
}

impl TryFrom<Args> for Config {
    type Error = String;

    fn try_from(a: Args) -> Result<Config, String> {
        let rack = a.rack.unwrap_or_else(|| DEFAULT_RACK.to_string());
        if !rack.starts_with('/') || rack.contains('\0') {
            return Err(format!(
                "--rack '{rack}' must be a path starting with '/', like /dc1/rack2"
            ));
        }
        if a.heartbeat_interval.is_zero() {
            return Err("--heartbeat-interval must be longer than 0".to_string());
        }
        if a.block_report_interval.is_zero() {
            return Err("--block-report-interval must be longer than 0".to_string());
        }
        if a.max_transfers == 0 {
            return Err("--max-transfers must be at least 1".to_string());
        }
        if a.max_xceivers == 0 || a.max_xceivers > MAX_XCEIVERS_LIMIT {
            return Err(format!(
                "--max-xceivers must be between 1 and {MAX_XCEIVERS_LIMIT}"
            ));
        }
        if a.block_report_part == 0 {
            return Err("--block-report-part must be at least 1".to_string());
        }
        if a.socket_write_timeout.is_zero() {
            return Err("--socket-write-timeout must be longer than 0".to_string());
        }
        Ok(Config {
            namenode: a.namenode,
            data_dir: a.data,
            rack,
            heartbeat_interval: a.heartbeat_interval,
            block_report_interval: a.block_report_interval,
            reserved: a.reserved,
            capacity: a.capacity,
            scan_rate: a.scan_rate,
            max_transfers: a.max_transfers,
            max_xceivers: a.max_xceivers,
            block_report_part: a.block_report_part,
            socket_write_timeout: a.socket_write_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_with_defaults() {
        let a = Args::parse_from([
            "datanode",
            "--namenode",
            "127.0.0.1:9000",
            "--listen",
            "127.0.0.1:0",
            "--data",
            "/tmp/x",
            "--heartbeat-interval",
            "1s",
        ]);
        let c = Config::try_from(a).unwrap();
        assert_eq!(c.heartbeat_interval, Duration::from_secs(1));
        assert_eq!(c.block_report_interval, Duration::from_secs(6 * 3600));
        assert_eq!(c.rack, DEFAULT_RACK);
        assert_eq!(c.scan_rate, 1024 * 1024);
        assert_eq!(c.max_transfers, 2);
        assert_eq!(c.socket_write_timeout, Duration::from_secs(480));
    }

    #[test]
    fn bad_rack_is_refused() {
        let a = Args::parse_from(["datanode", "--data", "/tmp/x", "--rack", "rack1"]);
        assert!(Config::try_from(a).is_err());
    }
}
