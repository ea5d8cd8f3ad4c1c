//! The dfs client: an async library for reading and writing a dfs cluster,
//! and the `dfs` command line built on it.
//!
//! A [`Client`] talks to the namenode for metadata (where blocks are, who
//! writes what) and streams data directly to and from the datanodes:
//!
//! * [`Client::create`] returns a [`FileWriter`] (`tokio::io::AsyncWrite`)
//!   that cuts the data into 64 KiB packets with a CRC per 512-byte chunk
//!   and pushes them down a pipeline of datanodes, rebuilding the pipeline
//!   if a datanode fails mid-write;
//! * [`Client::open`] returns a [`FileReader`] (`AsyncRead` + `AsyncSeek`
//!   and positional [`FileReader::read_at`]) that verifies every chunk and
//!   fails over between replicas, never returning bytes that failed their
//!   checksum;
//! * the namespace calls (`status`, `list`, `mkdirs`, `delete`, `rename`, ...)
//!   and [`Client::block_locations`] for scheduling work near the data.
//!
//! ```no_run
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # async fn example() -> dfs_client::Result<()> {
//! let client = dfs_client::Client::connect("127.0.0.1:9000").await?;
//! client.mkdirs("/demo", true).await?;
//!
//! let mut w = client.create("/demo/hello.txt", Default::default()).await?;
//! w.write_all(b"hello, dfs\n").await?;
//! w.close().await?;
//!
//! let mut text = String::new();
//! client.open("/demo/hello.txt").await?.read_to_string(&mut text).await?;
//! assert_eq!(text, "hello, dfs\n");
//!
//! for loc in client.block_locations("/demo/hello.txt", 0, 0).await? {
//!     println!("block {} on {:?}", loc.block_id, loc.hosts);
//! }
//! # Ok(()) }
//! ```
//!
//! Errors are one [`Error`] enum whose messages name the path, block or
//! node and the reason; [`Error::kind`] gives the server's
//! [`ErrorKind`](dfs_proto::error_kind::ErrorKind).

mod block_reader;
mod client;
mod conn;
mod error;
mod lease;
mod namenode;
mod options;
mod packet;
mod pipeline;
mod reader;
mod small;
mod streamer;
mod types;
mod user;
mod writer;

pub mod cli;

/// The byte buffer [`Client::read_small_files`] returns (re-exported from `bytes`).
pub use bytes::Bytes;
pub use client::{Client, LocatedStatus};
pub use error::{Error, Result};
pub use options::{ClientOptions, CreateOptions, SetAttr};
pub use reader::FileReader;
pub use types::{
    BalancerStatus, BlockLocation, ClusterReport, ContentSummary, DatanodeStatus, FileStatus,
    FileType, FsStats, FsckBlock, FsckFile, FsckReplica, FsckReport, FsckStatus, NodeState,
    SafeModeAction, SafeModeState,
};
pub use writer::FileWriter;
