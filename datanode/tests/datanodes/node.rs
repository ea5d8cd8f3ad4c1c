//! A datanode started in this process with `run` on 127.0.0.1:0.

use std::path::PathBuf;
use std::time::Duration;

use dfs_datanode::{run, Config};
use dfs_proto::datanode::DataTransferClient;
use dfs_proto::*;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub(crate) struct TestNode {
    pub(crate) addr: String,
    pub(crate) id: String,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) stop: Option<oneshot::Sender<()>>,
    pub(crate) handle: Option<tokio::task::JoinHandle<dfs_datanode::Result<()>>>,
}

impl TestNode {
    pub(crate) async fn start(namenode: &str, tune: impl FnOnce(&mut Config)) -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(namenode, dir, tune).await
    }

    pub(crate) async fn start_in(
        namenode: &str,
        dir: tempfile::TempDir,
        tune: impl FnOnce(&mut Config),
    ) -> TestNode {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_test_writer()
            .try_init();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mut config = Config::new(namenode, dir.path());
        config.heartbeat_interval = Duration::from_millis(100);
        config.scan_rate = 0;
        tune(&mut config);
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(run(listener, config, async move {
            let _ = rx.await;
        }));
        let mut id = String::new();
        for _ in 0..100 {
            if let Ok(mut c) = DataTransferClient::connect(format!("http://{addr}")).await {
                if let Ok(r) = c.ping(PingRequest {}).await {
                    id = r.into_inner().node_id;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!id.is_empty(), "datanode did not start");
        TestNode {
            addr,
            id,
            dir,
            stop: Some(tx),
            handle: Some(handle),
        }
    }

    pub(crate) fn info(&self) -> DatanodeInfo {
        DatanodeInfo {
            id: self.id.clone(),
            address: self.addr.clone(),
            rack: "/r".into(),
        }
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub(crate) async fn client(&self) -> DataTransferClient<tonic::transport::Channel> {
        DataTransferClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap()
            .max_decoding_message_size(dfs_proto::defaults::MAX_MESSAGE_SIZE)
    }

    pub(crate) async fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(15), h)
                .await
                .expect("datanode stops")
                .unwrap()
                .unwrap();
        }
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }
}
