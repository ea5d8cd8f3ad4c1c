//! Call ids: how a client marks a namenode call that must run at most once,
//! so its retry after a broken connection is recognised (HDFS's client id
//! and call id).

/// Metadata key of a call's id: `CLIENT_NAME:SEQUENCE`, unique per client
/// process. A retry of the call sends the same id; the namenode's retry
/// cache then answers it with the first run's answer.
pub const CALL_ID_KEY: &str = "dfs-call-id";
