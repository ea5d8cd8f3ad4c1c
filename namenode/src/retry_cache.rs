//! The retry cache: a call that changes the namespace (create, delete,
//! rename, mkdir, add a block...) is run at most once per call id, as
//! HDFS's `RetryCache` does for its `@AtMostOnce` calls. (Add-block,
//! complete and update-pipeline are also idempotent by design: a retried
//! AddBlock gets the block it allocated, a retried Complete of a file it
//! closed succeeds. The others are not.)
//!
//! A client cannot tell whether a call caught by a broken connection ran:
//! the namenode may have applied it and died, or been slow, before
//! answering. The client sends such a call again with the same call id
//! ([`dfs_proto::call::CALL_ID_KEY`]); here the second one gets the first
//! one's answer (waiting for it if it is still running) instead of running
//! again and failing with "already exists" or "not found". A call that
//! failed is forgotten, so its retry runs afresh.
//!
//! The call runs in a task of its own, so it completes, and its answer is
//! kept, even when the connection that asked for it is gone. Answers are
//! kept for [`EXPIRY`] (HDFS's default too), at most [`CAPACITY`] of them,
//! oldest first out.
//!
//! A call that changes the namespace records its key in the edit it
//! commits ([`current_call`], [`crate::store::CallRecord`]), as HDFS logs
//! RPC ids with its edits. The namenode that replays the edit after a
//! restart knows the call ran, though not its answer
//! ([`RetryCache::restore`]): a retry then gets an answer made from the
//! namespace as it is (the file created, the path deleted), where running
//! it again would fail with "already exists" or "not found".

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::watch;
use tonic::Status;

use crate::store::CallRecord;

/// How long an answer is kept for a retry.
pub const EXPIRY: Duration = Duration::from_secs(600);

/// The most answers kept; the oldest go first. At 10,000 creates/s that
/// is about 6 s of answers: a client retries a call that broke at once,
/// within its RPC timeout (5 s by default); under such a load a longer
/// timeout may outlast the answer, and the retry then runs again. An
/// answer (a create's: the file's status and its first block with its
/// pipeline) and its keys take about 1 KiB, so this bounds the cache near
/// 64 MiB, as HDFS bounds its own by a share of the heap (3 %); at 2^18
/// it could take some 250 MiB.
pub const CAPACITY: usize = 1 << 16;

/// Identifies one call: the caller's user and the call id it sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallKey {
    user: String,
    id: String,
}

impl CallKey {
    /// The key of call `id` made by `user`. Keyed by user too, so nobody
    /// can read another user's answer by guessing a call id.
    pub fn new(user: impl Into<String>, id: impl Into<String>) -> CallKey {
        CallKey {
            user: user.into(),
            id: id.into(),
        }
    }

    /// The record of this call, of `kind`, for the edit log, made at `at_ms`.
    pub fn record(&self, kind: &str, at_ms: i64) -> CallRecord {
        CallRecord {
            user: self.user.clone(),
            id: self.id.clone(),
            kind: kind.to_string(),
            at_ms,
        }
    }
}

tokio::task_local! {
    /// The at-most-once call the current task runs, and its kind.
    static CALL: (CallKey, &'static str);
}

/// The at-most-once call this task runs, and its kind, if any: the edits
/// it commits record it.
pub fn current_call() -> Option<(CallKey, &'static str)> {
    CALL.try_with(Clone::clone).ok()
}

/// What a retry runs when its call ran before the namenode restarted: an
/// answer made from the namespace as it is now, or `None` to run the call
/// again (for a call that is safe to repeat).
pub type Replayed<T> = Option<BoxFuture<T>>;

type BoxFuture<T> = std::pin::Pin<Box<dyn Future<Output = Result<T, Status>> + Send>>;

enum Slot {
    /// The first call is running; its end is announced by dropping the
    /// sender of this channel.
    Running(watch::Receiver<()>),
    /// Its answer.
    Done(Arc<dyn Any + Send + Sync>),
    /// It ran before the namenode restarted (its edit was replayed); its
    /// answer is not known. The call's kind.
    Replayed(String),
}

#[derive(Default)]
struct Entries {
    slots: HashMap<CallKey, Slot>,
    /// Finished calls, oldest first, for expiry.
    order: VecDeque<(Instant, CallKey)>,
}

impl Entries {
    fn expire(&mut self, now: Instant) {
        while let Some((at, key)) = self.order.front() {
            if now.duration_since(*at) < EXPIRY && self.order.len() <= CAPACITY {
                break;
            }
            if matches!(self.slots.get(key), Some(Slot::Done(_) | Slot::Replayed(_))) {
                self.slots.remove(key);
            }
            self.order.pop_front();
        }
    }
}

/// Answers of at-most-once calls, by call.
#[derive(Default)]
pub struct RetryCache {
    entries: Mutex<Entries>,
}

impl RetryCache {
    /// An empty cache.
    pub fn new() -> RetryCache {
        RetryCache::default()
    }

    /// Restores the calls the edit log recorded (oldest first), those
    /// within [`EXPIRY`] of `now_ms`.
    pub fn restore(&self, calls: Vec<CallRecord>, now_ms: i64) {
        let mut e = self.entries.lock();
        let now = Instant::now();
        let expiry = EXPIRY.as_millis() as i64;
        for c in calls {
            // (A record from the future: the clock stepped back.)
            let age = now_ms.saturating_sub(c.at_ms).max(0);
            if age >= expiry {
                continue;
            }
            let key = CallKey::new(c.user, c.id);
            if e.slots
                .insert(key.clone(), Slot::Replayed(c.kind))
                .is_none()
            {
                let at = now
                    .checked_sub(Duration::from_millis(age as u64))
                    .unwrap_or(now);
                e.order.push_back((at, key));
            }
        }
        e.expire(now);
    }

    /// Runs `op`, a call of `kind`, unless the call `key` already ran:
    /// then returns its answer, after waiting for it if it is still
    /// running; one that ran before a restart runs `replayed` instead (if
    /// given). Without a key (an older client) `op` just runs. `op` runs in
    /// a task of its own, in which [`current_call`] is `key` and `kind`.
    pub async fn run<T, F>(
        self: &Arc<Self>,
        key: Option<CallKey>,
        kind: &'static str,
        op: F,
        replayed: Replayed<T>,
    ) -> Result<T, Status>
    where
        T: Clone + Send + Sync + 'static,
        F: Future<Output = Result<T, Status>> + Send + 'static,
    {
        let Some(key) = key else {
            return join(tokio::spawn(op)).await;
        };
        let mut ran_before_restart = false;
        let done = loop {
            let mut running = {
                let mut e = self.entries.lock();
                e.expire(Instant::now());
                match e.slots.get(&key) {
                    Some(Slot::Done(answer)) => {
                        return match answer.downcast_ref::<T>() {
                            Some(a) => {
                                tracing::debug!(call = %key.id, "retried call answered with its first answer");
                                Ok(a.clone())
                            }
                            None => Err(Status::invalid_argument(format!(
                                "call id {} was already used for another kind of call",
                                key.id
                            ))),
                        };
                    }
                    // Its first run went away without an answer (its
                    // task panicked): this one runs it.
                    Some(Slot::Running(rx)) if rx.has_changed().is_ok() => rx.clone(),
                    Some(Slot::Replayed(k)) if k != kind => {
                        return Err(Status::invalid_argument(format!(
                            "call id {} was already used for another kind of call ({k})",
                            key.id
                        )));
                    }
                    Some(Slot::Replayed(_)) => {
                        ran_before_restart = true;
                        let (tx, rx) = watch::channel(());
                        e.slots.insert(key.clone(), Slot::Running(rx));
                        break tx;
                    }
                    _ => {
                        let (tx, rx) = watch::channel(());
                        e.slots.insert(key.clone(), Slot::Running(rx));
                        break tx;
                    }
                }
            };
            tracing::debug!(call = %key.id, "retried call waits for its first run");
            // Ends when the first run's sender is dropped.
            while running.changed().await.is_ok() {}
        };
        let cache = self.clone();
        let op: BoxFuture<T> = match replayed {
            Some(answer) if ran_before_restart => {
                tracing::info!(call = %key.id, user = %key.user,
                    "a call that ran before the namenode restarted was sent again: answered from the namespace, not run twice");
                answer
            }
            _ => Box::pin(op),
        };
        join(tokio::spawn(CALL.scope((key.clone(), kind), async move {
            let result = op.await;
            cache.finish(key, kind, &result, ran_before_restart);
            drop(done);
            result
        })))
        .await
    }

    /// Keeps a success for retries; forgets a failure, so a retry runs
    /// (one of a call that ran before a restart is kept as such). A call
    /// restored from the edit log expires when its record does.
    fn finish<T: Clone + Send + Sync + 'static>(
        &self,
        key: CallKey,
        kind: &str,
        result: &Result<T, Status>,
        ran_before_restart: bool,
    ) {
        let mut e = self.entries.lock();
        match result {
            Ok(answer) => {
                e.slots
                    .insert(key.clone(), Slot::Done(Arc::new(answer.clone())));
                if !ran_before_restart {
                    e.order.push_back((Instant::now(), key));
                }
            }
            Err(_) if ran_before_restart => {
                e.slots.insert(key, Slot::Replayed(kind.to_string()));
            }
            Err(_) => {
                e.slots.remove(&key);
            }
        }
    }

    /// Calls whose answer is kept or which are running.
    pub fn len(&self) -> usize {
        self.entries.lock().slots.len()
    }

    /// True when no call is kept or running.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

async fn join<T>(task: tokio::task::JoinHandle<Result<T, Status>>) -> Result<T, Status> {
    match task.await {
        Ok(r) => r,
        Err(e) => Err(Status::internal(format!("the call's task failed: {e}"))),
    }
}

#[cfg(test)]
mod tests;
