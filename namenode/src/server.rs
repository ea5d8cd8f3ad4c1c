//! The gRPC services: thin adapters from ClientProtocol and
//! DatanodeProtocol to the [`Namesystem`], one span per call.

use std::future::Future;
use std::sync::Arc;

use dfs_proto::call::CALL_ID_KEY;
use dfs_proto::error_kind::ErrorKind;
use dfs_proto::namenode::{ClientProtocol, DatanodeProtocol};
use dfs_proto::principal::USER_KEY;
use dfs_proto::*;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::error::Error;
use crate::namesystem::Namesystem;
use crate::permission::Caller;
use crate::retry_cache::{CallKey, RetryCache};

/// Both namenode services over one namesystem.
#[derive(Clone)]
pub struct NamenodeService {
    fs: Arc<Namesystem>,
    /// Answers of the calls that run at most once.
    retries: Arc<RetryCache>,
}

impl NamenodeService {
    /// Services over `fs`.
    pub fn new(fs: Arc<Namesystem>) -> NamenodeService {
        let retries = RetryCache::new();
        retries.restore(fs.take_replayed_calls(), crate::namespace::now_ms());
        NamenodeService {
            fs,
            retries: Arc::new(retries),
        }
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// Maps an error to a status, logging server-side failures.
fn fail(e: Error) -> Status {
    if e.kind() == ErrorKind::Internal {
        tracing::error!(error = %e, "request failed");
    } else {
        tracing::debug!(error = %e, "request refused");
    }
    e.into()
}

fn ok<T>(r: Result<T, Error>) -> Reply<T> {
    r.map(Response::new).map_err(fail)
}

impl NamenodeService {
    /// The caller a request acts for: the user its metadata names
    /// ([`USER_KEY`]), resolved to groups and superuser.
    fn caller<T>(&self, req: &Request<T>) -> Caller {
        self.fs.caller(&user_of(req))
    }
}

/// The user a request's metadata names ([`USER_KEY`]); empty if none.
fn user_of<T>(req: &Request<T>) -> String {
    req.metadata()
        .get_bin(USER_KEY)
        .and_then(|v| v.to_bytes().ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The longest call id kept in the retry cache.
const MAX_CALL_ID_LEN: usize = 128;

/// The retry-cache key of a call: its user and the call id the client
/// sent ([`CALL_ID_KEY`]), if it sent one.
fn call_key<T>(req: &Request<T>) -> Option<CallKey> {
    let id = req.metadata().get(CALL_ID_KEY)?.to_str().ok()?;
    // A client name and a number; a longer id would only fill the cache.
    if id.len() > MAX_CALL_ID_LEN {
        return None;
    }
    Some(CallKey::new(user_of(req), id))
}

impl NamenodeService {
    /// Runs a call that must run at most once through the retry cache: a
    /// retry with the same call id gets the first run's answer. A call
    /// that is idempotent by design runs again when its first run was
    /// before a restart (its answer was lost with the namenode).
    async fn at_most_once<T, F>(&self, key: Option<CallKey>, kind: &'static str, op: F) -> Reply<T>
    where
        T: Clone + Send + Sync + 'static,
        F: Future<Output = Result<T, Error>> + Send + 'static,
    {
        self.retries
            .run(key, kind, async move { op.await.map_err(fail) }, None)
            .await
            .map(Response::new)
    }

    /// The status of `path` when awaited: the answer to a mkdir or a
    /// set-attributes that ran before a restart.
    fn status_now(
        &self,
        caller: &Caller,
        path: &str,
    ) -> impl Future<Output = Result<FileStatus, Error>> + Send + 'static {
        let (fs, caller, path) = (self.fs.clone(), caller.clone(), path.to_string());
        async move { fs.get_file_info(&caller, &path) }
    }

    /// [`at_most_once`](Self::at_most_once) for a call that must not run
    /// again after a restart: `replayed` makes its answer from the
    /// namespace as it is then (see [`crate::retry_cache`]).
    async fn at_most_once_or<T, F, R>(
        &self,
        key: Option<CallKey>,
        kind: &'static str,
        op: F,
        replayed: R,
    ) -> Reply<T>
    where
        T: Clone + Send + Sync + 'static,
        F: Future<Output = Result<T, Error>> + Send + 'static,
        R: Future<Output = Result<T, Error>> + Send + 'static,
    {
        let replayed = Box::pin(async move { replayed.await.map_err(fail) });
        self.retries
            .run(
                key,
                kind,
                async move { op.await.map_err(fail) },
                Some(replayed),
            )
            .await
            .map(Response::new)
    }
}

fn peer_host<T>(req: &Request<T>) -> String {
    req.remote_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
}

#[tonic::async_trait]
impl ClientProtocol for NamenodeService {
    async fn get_file_info(
        &self,
        request: Request<GetFileInfoRequest>,
    ) -> Reply<GetFileInfoResponse> {
        let caller = self.caller(&request);
        if request.get_ref().with_locations {
            let peer = peer_host(&request);
            let r = request.into_inner();
            let _s = tracing::debug_span!("get_file_info", path = %r.path).entered();
            return ok(self
                .fs
                .located_file_info(&caller, &r.path, &r.client_host, &peer)
                .map(|(s, locations)| GetFileInfoResponse {
                    status: Some(s),
                    locations,
                }));
        }
        let r = request.into_inner();
        let _s = tracing::debug_span!("get_file_info", path = %r.path).entered();
        ok(self
            .fs
            .get_file_info(&caller, &r.path)
            .map(|s| GetFileInfoResponse {
                status: Some(s),
                locations: None,
            }))
    }

    async fn list_status(&self, request: Request<ListStatusRequest>) -> Reply<ListStatusResponse> {
        let caller = self.caller(&request);
        let peer = peer_host(&request);
        let r = request.into_inner();
        let _s = tracing::debug_span!("list_status", path = %r.path, located = r.with_locations)
            .entered();
        if r.with_locations {
            return ok(self
                .fs
                .list_located(
                    &caller,
                    &r.path,
                    &r.start_after,
                    r.limit,
                    &r.client_host,
                    &peer,
                )
                .map(|(entries, locations, has_more)| ListStatusResponse {
                    entries,
                    has_more,
                    locations,
                }));
        }
        ok(self
            .fs
            .list_status(&caller, &r.path, &r.start_after, r.limit)
            .map(|(entries, has_more)| ListStatusResponse {
                entries,
                has_more,
                locations: Vec::new(),
            }))
    }

    async fn mkdirs(&self, request: Request<MkdirsRequest>) -> Reply<MkdirsResponse> {
        let caller = self.caller(&request);
        let key = call_key(&request);
        let r = request.into_inner();
        let span = tracing::info_span!("mkdirs", path = %r.path, user = %caller.user);
        let fs = self.fs.clone();
        let now = self.status_now(&caller, &r.path);
        self.at_most_once_or(
            key,
            "mkdirs",
            async move {
                let s = fs.mkdirs(&caller, r).instrument(span).await?;
                Ok(MkdirsResponse { status: Some(s) })
            },
            async move {
                Ok(MkdirsResponse {
                    status: Some(now.await?),
                })
            },
        )
        .await
    }

    async fn delete(&self, request: Request<DeleteRequest>) -> Reply<DeleteResponse> {
        let caller = self.caller(&request);
        let key = call_key(&request);
        let r = request.into_inner();
        let span = tracing::info_span!("delete", path = %r.path, user = %caller.user);
        let fs = self.fs.clone();
        self.at_most_once_or(
            key,
            "delete",
            async move {
                let expect = EntryKind::try_from(r.expect).unwrap_or(EntryKind::Any);
                fs.delete(&caller, &r.path, r.recursive, expect)
                    .instrument(span)
                    .await?;
                Ok(DeleteResponse {})
            },
            async { Ok(DeleteResponse {}) },
        )
        .await
    }

    async fn rename(&self, request: Request<RenameRequest>) -> Reply<RenameResponse> {
        let caller = self.caller(&request);
        let key = call_key(&request);
        let r = request.into_inner();
        let span = tracing::info_span!("rename", src = %r.src, dst = %r.dst, user = %caller.user);
        let fs = self.fs.clone();
        self.at_most_once_or(
            key,
            "rename",
            async move {
                fs.rename(&caller, &r.src, &r.dst, r.overwrite)
                    .instrument(span)
                    .await?;
                Ok(RenameResponse {})
            },
            async { Ok(RenameResponse {}) },
        )
        .await
    }

    async fn set_attr(&self, request: Request<SetAttrRequest>) -> Reply<SetAttrResponse> {
        let caller = self.caller(&request);
        let key = call_key(&request);
        let r = request.into_inner();
        let span = tracing::info_span!("set_attr", path = %r.path, user = %caller.user);
        let fs = self.fs.clone();
        let now = self.status_now(&caller, &r.path);
        self.at_most_once_or(
            key,
            "set_attr",
            async move {
                let s = fs.set_attr(&caller, r).instrument(span).await?;
                Ok(SetAttrResponse { status: Some(s) })
            },
            async move {
                Ok(SetAttrResponse {
                    status: Some(now.await?),
                })
            },
        )
        .await
    }

    async fn set_replication(
        &self,
        request: Request<SetReplicationRequest>,
    ) -> Reply<SetReplicationResponse> {
        let caller = self.caller(&request);
        let r = request.into_inner();
        let span =
            tracing::info_span!("set_replication", path = %r.path, replication = r.replication);
        ok(self
            .fs
            .set_replication(&caller, &r.path, r.replication)
            .instrument(span)
            .await
            .map(|_| SetReplicationResponse {}))
    }

    async fn content_summary(
        &self,
        request: Request<ContentSummaryRequest>,
    ) -> Reply<ContentSummaryResponse> {
        let caller = self.caller(&request);
        let r = request.into_inner();
        let _s = tracing::debug_span!("content_summary", path = %r.path).entered();
        ok(self
            .fs
            .content_summary(&caller, &r.path)
            .map(|s| ContentSummaryResponse {
                length: s.length,
                files: s.files,
                directories: s.directories,
                space_consumed: s.space_consumed,
            }))
    }

    async fn create(&self, request: Request<CreateRequest>) -> Reply<CreateResponse> {
        let caller = self.caller(&request);
        let peer = peer_host(&request);
        let key = call_key(&request);
        let r = request.into_inner();
        let span = tracing::debug_span!("create", path = %r.path, client = %r.client_name);
        let fs = self.fs.clone();
        let now = (
            self.fs.clone(),
            caller.clone(),
            r.path.clone(),
            r.client_name.clone(),
        );
        self.at_most_once_or(
            key,
            "create",
            async move {
                let (s, block) = fs
                    .create_located(&caller, r, &peer)
                    .instrument(span)
                    .await?;
                Ok(CreateResponse {
                    status: Some(s),
                    block,
                })
            },
            // The file the create made, with the block it allocated, if
            // the client still holds it.
            async move {
                let (fs, caller, path, client) = now;
                let (s, block) = fs.created(&caller, &path, &client)?;
                Ok(CreateResponse {
                    status: Some(s),
                    block,
                })
            },
        )
        .await
    }

    async fn add_block(&self, request: Request<AddBlockRequest>) -> Reply<AddBlockResponse> {
        let peer = peer_host(&request);
        let key = call_key(&request);
        let r = request.into_inner();
        let span = tracing::debug_span!("add_block", path = %r.path, client = %r.client_name);
        let fs = self.fs.clone();
        self.at_most_once(key, "add_block", async move {
            let b = fs.add_block(r, &peer).instrument(span).await?;
            Ok(AddBlockResponse { block: Some(b) })
        })
        .await
    }

    async fn get_additional_datanodes(
        &self,
        request: Request<GetAdditionalDatanodesRequest>,
    ) -> Reply<GetAdditionalDatanodesResponse> {
        let r = request.into_inner();
        let _s = tracing::info_span!("get_additional_datanodes", path = %r.path, client = %r.client_name).entered();
        ok(self
            .fs
            .get_additional_datanodes(r)
            .map(|nodes| GetAdditionalDatanodesResponse { nodes }))
    }

    async fn update_block_for_pipeline(
        &self,
        request: Request<UpdateBlockForPipelineRequest>,
    ) -> Reply<UpdateBlockForPipelineResponse> {
        let r = request.into_inner();
        let span = tracing::info_span!("update_block_for_pipeline", client = %r.client_name);
        ok(self
            .fs
            .update_block_for_pipeline(&r.client_name, r.block)
            .instrument(span)
            .await
            .map(|gs| UpdateBlockForPipelineResponse {
                new_generation_stamp: gs,
            }))
    }

    async fn update_pipeline(
        &self,
        request: Request<UpdatePipelineRequest>,
    ) -> Reply<UpdatePipelineResponse> {
        let key = call_key(&request);
        let r = request.into_inner();
        let span = tracing::info_span!("update_pipeline", client = %r.client_name);
        let fs = self.fs.clone();
        self.at_most_once(key, "update_pipeline", async move {
            fs.update_pipeline(r).instrument(span).await?;
            Ok(UpdatePipelineResponse {})
        })
        .await
    }

    async fn fsync(&self, request: Request<FsyncRequest>) -> Reply<FsyncResponse> {
        let r = request.into_inner();
        let span = tracing::debug_span!("fsync", path = %r.path, client = %r.client_name);
        ok(self
            .fs
            .fsync(r)
            .instrument(span)
            .await
            .map(|_| FsyncResponse {}))
    }

    async fn complete(&self, request: Request<CompleteRequest>) -> Reply<CompleteResponse> {
        let caller = self.caller(&request);
        let key = call_key(&request);
        let r = request.into_inner();
        let span = tracing::debug_span!("complete", path = %r.path, client = %r.client_name);
        let fs = self.fs.clone();
        self.at_most_once(key, "complete", async move {
            let completed = fs.complete(&caller, r).instrument(span).await?;
            Ok(CompleteResponse { completed })
        })
        .await
    }

    async fn abandon_block(
        &self,
        request: Request<AbandonBlockRequest>,
    ) -> Reply<AbandonBlockResponse> {
        let r = request.into_inner();
        let span = tracing::info_span!("abandon_block", path = %r.path, client = %r.client_name);
        ok(self
            .fs
            .abandon_block(r)
            .instrument(span)
            .await
            .map(|_| AbandonBlockResponse {}))
    }

    async fn renew_lease(&self, request: Request<RenewLeaseRequest>) -> Reply<RenewLeaseResponse> {
        let r = request.into_inner();
        ok(self
            .fs
            .renew_lease(&r.client_name)
            .map(|_| RenewLeaseResponse {}))
    }

    async fn recover_lease(
        &self,
        request: Request<RecoverLeaseRequest>,
    ) -> Reply<RecoverLeaseResponse> {
        let caller = self.caller(&request);
        let r = request.into_inner();
        let span = tracing::info_span!("recover_lease", path = %r.path, client = %r.client_name, force = r.force);
        ok(self
            .fs
            .recover_lease(&caller, r)
            .instrument(span)
            .await
            .map(|closed| RecoverLeaseResponse { closed }))
    }

    async fn get_block_locations(
        &self,
        request: Request<GetBlockLocationsRequest>,
    ) -> Reply<GetBlockLocationsResponse> {
        let caller = self.caller(&request);
        let peer = peer_host(&request);
        let r = request.into_inner();
        let _s = tracing::debug_span!("get_block_locations", path = %r.path).entered();
        ok(self.fs.get_block_locations(&caller, &r, &peer))
    }

    async fn report_bad_blocks(
        &self,
        request: Request<ReportBadBlocksRequest>,
    ) -> Reply<ReportBadBlocksResponse> {
        let r = request.into_inner();
        let _s = tracing::info_span!("report_bad_blocks", replicas = r.replicas.len()).entered();
        ok(self
            .fs
            .report_bad_blocks(r)
            .map(|_| ReportBadBlocksResponse {}))
    }

    async fn cluster_report(
        &self,
        request: Request<ClusterReportRequest>,
    ) -> Reply<ClusterReportResponse> {
        self.caller(&request)
            .require_superuser("read the datanode report")
            .map_err(fail)?;
        Ok(Response::new(self.fs.cluster_report()))
    }

    async fn fsck(&self, request: Request<FsckRequest>) -> Reply<FsckResponse> {
        let caller = self.caller(&request);
        let r = request.into_inner();
        let path = if r.path.is_empty() {
            "/".to_string()
        } else {
            r.path
        };
        let _s = tracing::info_span!("fsck", path = %path).entered();
        ok(self.fs.fsck(&caller, &path, &r.start_after))
    }

    async fn decommission(
        &self,
        request: Request<DecommissionRequest>,
    ) -> Reply<DecommissionResponse> {
        self.caller(&request)
            .require_superuser("decommission or recommission a datanode")
            .map_err(fail)?;
        let r = request.into_inner();
        let _s = tracing::info_span!("decommission", node = %r.node, decommission = r.decommission)
            .entered();
        ok(self
            .fs
            .decommission(&r.node, r.decommission)
            .map(|n| DecommissionResponse { node: Some(n) }))
    }

    async fn set_safe_mode(
        &self,
        request: Request<SetSafeModeRequest>,
    ) -> Reply<SetSafeModeResponse> {
        let caller = self.caller(&request);
        let action = request.into_inner().action();
        let _s = tracing::info_span!("set_safe_mode", action = action.as_str_name()).entered();
        let enter = match action {
            SafeModeAction::SafeModeGet => None,
            SafeModeAction::SafeModeEnter => Some(true),
            SafeModeAction::SafeModeLeave => Some(false),
        };
        if enter.is_some() {
            caller
                .require_superuser("enter or leave safe mode")
                .map_err(fail)?;
        }
        let (on, status) = self.fs.set_safe_mode(enter);
        Ok(Response::new(SetSafeModeResponse { on, status }))
    }

    async fn balance(&self, request: Request<BalanceRequest>) -> Reply<BalanceResponse> {
        self.caller(&request)
            .require_superuser("run the balancer")
            .map_err(fail)?;
        let r = request.into_inner();
        let _s =
            tracing::info_span!("balance", threshold = r.start_threshold, stop = r.stop).entered();
        let start = match r.start_threshold {
            0.0 => None,
            t if t.is_finite() && t > 0.0 && t < 1.0 => Some(t),
            t => {
                return Err(Error::InvalidArgument {
                    message: format!(
                        "balancer threshold {t} is out of range (above 0 and below 1)"
                    ),
                }
                .into())
            }
        };
        ok(self.fs.balance(start, r.stop))
    }

    async fn stat_fs(&self, _request: Request<StatFsRequest>) -> Reply<StatFsResponse> {
        Ok(Response::new(self.fs.statfs()))
    }
}

#[tonic::async_trait]
impl DatanodeProtocol for NamenodeService {
    async fn register(&self, request: Request<RegisterRequest>) -> Reply<RegisterResponse> {
        let r = request.into_inner();
        let node = r.node.as_ref().map(|n| n.id.clone()).unwrap_or_default();
        let span = tracing::info_span!("register", node = %node);
        let holder_gone = self.fs.id_holder_gone(&r).instrument(span.clone()).await;
        let _s = span.entered();
        ok(self.fs.register_datanode(r, holder_gone))
    }

    async fn heartbeat(&self, request: Request<HeartbeatRequest>) -> Reply<HeartbeatResponse> {
        let r = request.into_inner();
        let _s = tracing::debug_span!("heartbeat", node = %r.node_id).entered();
        Ok(Response::new(self.fs.heartbeat(r)))
    }

    async fn block_report(
        &self,
        request: Request<BlockReportRequest>,
    ) -> Reply<BlockReportResponse> {
        let r = request.into_inner();
        let _s = tracing::info_span!("block_report", node = %r.node_id).entered();
        ok(self.fs.block_report(r).map(|_| BlockReportResponse {}))
    }

    async fn incremental_block_report(
        &self,
        request: Request<IncrementalBlockReportRequest>,
    ) -> Reply<IncrementalBlockReportResponse> {
        let r = request.into_inner();
        let _s = tracing::debug_span!("incremental_block_report", node = %r.node_id).entered();
        ok(self
            .fs
            .incremental_block_report(r)
            .map(|_| IncrementalBlockReportResponse {}))
    }

    async fn commit_block_synchronization(
        &self,
        request: Request<CommitBlockSynchronizationRequest>,
    ) -> Reply<CommitBlockSynchronizationResponse> {
        let r = request.into_inner();
        let span = tracing::info_span!("commit_block_synchronization");
        ok(self
            .fs
            .commit_block_synchronization(r)
            .instrument(span)
            .await
            .map(|_| CommitBlockSynchronizationResponse {}))
    }
}
