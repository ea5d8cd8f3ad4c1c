//! The lease renewer: while a client has files open for writing, it renews
//! its lease (held by client name, for all its files at once) in the
//! background, so a slow writer never loses its file to lease recovery.

use std::sync::Arc;
use std::time::Duration;

use dfs_proto::RenewLeaseRequest;
use parking_lot::Mutex;

use crate::namenode::NameNode;

/// How often the lease is renewed: well inside the soft limit (60 s by
/// default), and short enough for test clusters that configure a soft
/// limit of a few seconds.
pub(crate) const RENEW_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct State {
    open_writers: usize,
    running: bool,
}

/// One per [`Client`](crate::Client); counts open writers and runs the
/// renewal task while there is at least one.
#[derive(Debug, Clone)]
pub(crate) struct LeaseRenewer {
    state: Arc<Mutex<State>>,
    namenode: NameNode,
    client_name: String,
}

impl LeaseRenewer {
    pub(crate) fn new(namenode: NameNode, client_name: String) -> Self {
        LeaseRenewer {
            state: Arc::new(Mutex::new(State::default())),
            namenode,
            client_name,
        }
    }

    /// Registers an open writer; renewal goes on until the returned guard
    /// (and every other one) is dropped.
    pub(crate) fn register(&self) -> LeaseGuard {
        let spawn = {
            let mut st = self.state.lock();
            st.open_writers += 1;
            let spawn = !st.running;
            st.running = true;
            spawn
        };
        if spawn {
            tokio::spawn(self.clone().run());
        }
        LeaseGuard {
            state: self.state.clone(),
        }
    }

    async fn run(self) {
        loop {
            tokio::time::sleep(RENEW_INTERVAL).await;
            {
                let mut st = self.state.lock();
                if st.open_writers == 0 {
                    st.running = false;
                    return;
                }
            }
            let req = RenewLeaseRequest {
                client_name: self.client_name.clone(),
            };
            let res = self
                .namenode
                .call(
                    "RenewLease",
                    "",
                    |mut c| async move { c.renew_lease(req).await },
                )
                .await;
            match res {
                Ok(_) => tracing::trace!(client = %self.client_name, "lease renewed"),
                Err(e) => tracing::warn!(
                    client = %self.client_name,
                    error = %e,
                    "could not renew the lease; open files may be recovered by another client if this lasts past the soft limit"
                ),
            }
        }
    }
}

/// Keeps the lease renewed while alive.
#[derive(Debug)]
pub(crate) struct LeaseGuard {
    state: Arc<Mutex<State>>,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        let mut st = self.state.lock();
        st.open_writers = st.open_writers.saturating_sub(1);
    }
}
