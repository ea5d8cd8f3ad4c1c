//! Cluster integration tests: every test starts real `namenode`, `datanode`
//! (and `dfs-fuse`) processes on loopback through `dfs_tests::Cluster`.
//! One test binary, so the workspace links it once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chaos;
mod commands;
mod faults;
mod fuse;
mod limits;
mod namespace;
mod replication;
mod roundtrip;
mod safety;
