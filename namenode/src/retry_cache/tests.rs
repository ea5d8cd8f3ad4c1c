use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

fn key(id: &str) -> Option<CallKey> {
    Some(CallKey::new("alice", id))
}

/// An op that counts its runs and answers `answer` after `delay`.
fn op(
    runs: &Arc<AtomicUsize>,
    delay: Duration,
    answer: Result<u64, Status>,
) -> impl Future<Output = Result<u64, Status>> + Send + 'static {
    let runs = runs.clone();
    async move {
        runs.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(delay).await;
        answer
    }
}

#[tokio::test]
async fn a_retried_call_gets_the_first_answer_without_running_again() {
    let cache = Arc::new(RetryCache::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let a = cache
        .run(key("c1:1"), "op", op(&runs, Duration::ZERO, Ok(7)), None)
        .await;
    assert_eq!(a.unwrap(), 7);
    let b = cache
        .run(key("c1:1"), "op", op(&runs, Duration::ZERO, Ok(8)), None)
        .await;
    assert_eq!(b.unwrap(), 7, "the retry must get the first answer");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // Another call id, or the same id from another user, is another call.
    let c = cache
        .run(key("c1:2"), "op", op(&runs, Duration::ZERO, Ok(9)), None)
        .await;
    assert_eq!(c.unwrap(), 9);
    let d = cache
        .run(
            Some(CallKey::new("bob", "c1:1")),
            "op",
            op(&runs, Duration::ZERO, Ok(10)),
            None,
        )
        .await;
    assert_eq!(d.unwrap(), 10);
    // No key: always runs.
    cache
        .run(None, "op", op(&runs, Duration::ZERO, Ok(1)), None)
        .await
        .unwrap();
    cache
        .run(None, "op", op(&runs, Duration::ZERO, Ok(1)), None)
        .await
        .unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn a_retry_during_the_first_run_waits_for_its_answer() {
    let cache = Arc::new(RetryCache::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let first = {
        let cache = cache.clone();
        let op = op(&runs, Duration::from_millis(200), Ok(1));
        tokio::spawn(async move { cache.run(key("c:1"), "op", op, None).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = cache
        .run(key("c:1"), "op", op(&runs, Duration::ZERO, Ok(2)), None)
        .await;
    assert_eq!(second.unwrap(), 1);
    assert_eq!(first.await.unwrap().unwrap(), 1);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_call_whose_caller_went_away_still_completes_and_answers_its_retry() {
    let cache = Arc::new(RetryCache::new());
    let runs = Arc::new(AtomicUsize::new(0));
    // The first caller gives up (its connection broke) while the call runs.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        cache.run(
            key("c:1"),
            "op",
            op(&runs, Duration::from_millis(200), Ok(1)),
            None,
        ),
    )
    .await;
    assert!(gave_up.is_err());
    let retry = cache
        .run(key("c:1"), "op", op(&runs, Duration::ZERO, Ok(2)), None)
        .await;
    assert_eq!(retry.unwrap(), 1);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failed_call_is_forgotten_so_its_retry_runs() {
    let cache = Arc::new(RetryCache::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let a = cache
        .run(
            key("c:1"),
            "op",
            op(&runs, Duration::ZERO, Err(Status::unavailable("safe mode"))),
            None,
        )
        .await;
    assert!(a.is_err());
    let b = cache
        .run(key("c:1"), "op", op(&runs, Duration::ZERO, Ok(3)), None)
        .await;
    assert_eq!(b.unwrap(), 3);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_first_run_that_panicked_lets_the_retry_run() {
    let cache = Arc::new(RetryCache::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let a = cache
        .run(
            key("c:1"),
            "op",
            async {
                if true {
                    panic!("test panic in a call");
                }
                Ok(0u64)
            },
            None,
        )
        .await;
    assert_eq!(a.unwrap_err().code(), tonic::Code::Internal);
    let b = tokio::time::timeout(
        Duration::from_secs(5),
        cache.run(key("c:1"), "op", op(&runs, Duration::ZERO, Ok(4)), None),
    )
    .await
    .expect("the retry must not wait for a run that is gone");
    assert_eq!(b.unwrap(), 4);
}

#[tokio::test]
async fn an_id_reused_for_another_kind_of_call_is_refused() {
    let cache = Arc::new(RetryCache::new());
    cache
        .run(key("c:1"), "op", async { Ok(1u64) }, None)
        .await
        .unwrap();
    let err = cache
        .run(key("c:1"), "op", async { Ok("text".to_string()) }, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}

#[test]
fn answers_expire_oldest_first_beyond_the_capacity_or_the_expiry() {
    let mut e = Entries::default();
    let start = Instant::now();
    for i in 0..CAPACITY + 10 {
        let k = CallKey::new("u", i.to_string());
        e.slots.insert(k.clone(), Slot::Done(Arc::new(i)));
        e.order.push_back((start, k));
    }
    e.expire(start);
    assert_eq!(e.slots.len(), CAPACITY);
    assert!(!e.slots.contains_key(&CallKey::new("u", "9")));
    assert!(e.slots.contains_key(&CallKey::new("u", "10")));
    e.expire(start + EXPIRY);
    assert!(e.slots.is_empty());
    assert!(e.order.is_empty());
}

/// A call that ran before a restart (its edit replayed) is answered by its
/// `replayed` answer, not run again, and that answer is kept; without a
/// `replayed` answer it runs again. Records past the expiry are dropped.
#[tokio::test]
async fn a_call_that_ran_before_a_restart_gets_the_replayed_answer() {
    let cache = Arc::new(RetryCache::new());
    let now = crate::namespace::now_ms();
    let old = EXPIRY.as_millis() as i64 + 1000;
    cache.restore(
        vec![
            CallKey::new("alice", "c:1").record("op", now - 2000),
            CallKey::new("alice", "c:2").record("op", now - 2000),
            CallKey::new("alice", "c:3").record("op", now - old),
            CallKey::new("alice", "c:4").record("other", now + 5000),
        ],
        now,
    );
    assert_eq!(cache.len(), 3);
    let runs = Arc::new(AtomicUsize::new(0));
    let replayed = || -> Replayed<u64> { Some(Box::pin(async { Ok(42) })) };
    let a = cache
        .run(
            key("c:1"),
            "op",
            op(&runs, Duration::ZERO, Ok(1)),
            replayed(),
        )
        .await;
    assert_eq!(a.unwrap(), 42);
    let b = cache
        .run(
            key("c:1"),
            "op",
            op(&runs, Duration::ZERO, Ok(2)),
            replayed(),
        )
        .await;
    assert_eq!(b.unwrap(), 42);
    assert_eq!(runs.load(Ordering::SeqCst), 0, "ran a call twice");
    // Safe to repeat: runs.
    let c = cache
        .run(key("c:2"), "op", op(&runs, Duration::ZERO, Ok(3)), None)
        .await;
    assert_eq!(c.unwrap(), 3);
    // Expired: an unknown call, which runs.
    let d = cache
        .run(
            key("c:3"),
            "op",
            op(&runs, Duration::ZERO, Ok(4)),
            replayed(),
        )
        .await;
    assert_eq!(d.unwrap(), 4);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    // Kept (its clock ran ahead), and of another kind: refused.
    let e = cache
        .run(
            key("c:4"),
            "op",
            op(&runs, Duration::ZERO, Ok(5)),
            replayed(),
        )
        .await;
    assert_eq!(e.unwrap_err().code(), tonic::Code::InvalidArgument);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

/// The call a task runs is visible to what it commits, and only there.
#[tokio::test]
async fn the_running_call_is_known_to_its_task() {
    let cache = Arc::new(RetryCache::new());
    assert!(current_call().is_none());
    let seen = cache
        .run(
            key("c:9"),
            "op",
            async { Ok(current_call().map(|(k, kind)| k.record(kind, 0))) },
            None,
        )
        .await
        .unwrap();
    assert_eq!(seen, Some(CallKey::new("alice", "c:9").record("op", 0)));
    let none = cache
        .run(None, "op", async { Ok(current_call().is_none()) }, None)
        .await
        .unwrap();
    assert!(none);
}
