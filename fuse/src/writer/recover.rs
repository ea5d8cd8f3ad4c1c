//! Files the mount gives up on (their close failed or timed out, or a
//! write failed): lease recovery closes them now, with the bytes their
//! replicas hold, rather than at the lease's hard limit.

use std::time::{Duration, Instant};

use dfs_client::Client;
use tracing::{debug, error, warn};

/// Longest wait between two asks of [`recover_in_background`].
const RECOVER_PAUSE_MAX: Duration = Duration::from_secs(30);
/// How long [`recover_in_background`] keeps asking (the namenode's own
/// hard limit is 20 minutes by default; a namenode away longer than this
/// recovers the file itself once this mount stops renewing).
const RECOVER_FOR: Duration = Duration::from_secs(3600);

/// Asks the namenode, until it is done, to recover the lease of file
/// `inode`, which this mount will not complete (its close failed or timed
/// out, or a write failed): lease recovery closes it with the bytes its
/// replicas hold. Otherwise it would stay under construction until the
/// lease's hard limit, which this mount's renewals for its other open
/// files put off for as long as it writes any.
pub(super) fn recover_in_background(client: Client, path: String, inode: u64) {
    tokio::spawn(async move {
        let target = dfs_proto::path::inode_path(inode, None);
        let started = Instant::now();
        let mut pause = Duration::from_secs(1);
        while started.elapsed() < RECOVER_FOR {
            let asked =
                tokio::time::timeout(RECOVER_PAUSE_MAX, client.recover_lease(&target, false)).await;
            match asked {
                Ok(Ok(true)) => {
                    warn!(path = %path, "closed by lease recovery with the bytes its datanodes hold");
                    return;
                }
                // Deleted, or closed by then.
                Ok(Err(dfs_client::Error::NotFound { .. })) => return,
                Ok(Ok(false)) => debug!(path = %path, "lease recovery under way"),
                Ok(Err(
                    e @ (dfs_client::Error::PermissionDenied { .. }
                    | dfs_client::Error::LeaseHeld { .. }),
                )) => {
                    warn!(path = %path, error = %e, "lease recovery refused; the namenode closes the file at the lease's hard limit");
                    return;
                }
                Ok(Err(e)) => debug!(path = %path, error = %e, "lease recovery not started yet"),
                Err(_) => debug!(path = %path, "lease recovery: no answer yet"),
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(RECOVER_PAUSE_MAX);
        }
        error!(path = %path, "gave up asking for lease recovery; the namenode closes the file at the lease's hard limit");
    });
}
