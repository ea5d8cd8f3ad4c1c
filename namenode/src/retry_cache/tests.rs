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
        .run(key("c1:1"), op(&runs, Duration::ZERO, Ok(7)))
        .await;
    assert_eq!(a.unwrap(), 7);
    let b = cache
        .run(key("c1:1"), op(&runs, Duration::ZERO, Ok(8)))
        .await;
    assert_eq!(b.unwrap(), 7, "the retry must get the first answer");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // Another call id, or the same id from another user, is another call.
    let c = cache
        .run(key("c1:2"), op(&runs, Duration::ZERO, Ok(9)))
        .await;
    assert_eq!(c.unwrap(), 9);
    let d = cache
        .run(
            Some(CallKey::new("bob", "c1:1")),
            op(&runs, Duration::ZERO, Ok(10)),
        )
        .await;
    assert_eq!(d.unwrap(), 10);
    // No key: always runs.
    cache
        .run(None, op(&runs, Duration::ZERO, Ok(1)))
        .await
        .unwrap();
    cache
        .run(None, op(&runs, Duration::ZERO, Ok(1)))
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
        tokio::spawn(async move { cache.run(key("c:1"), op).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = cache
        .run(key("c:1"), op(&runs, Duration::ZERO, Ok(2)))
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
        cache.run(key("c:1"), op(&runs, Duration::from_millis(200), Ok(1))),
    )
    .await;
    assert!(gave_up.is_err());
    let retry = cache
        .run(key("c:1"), op(&runs, Duration::ZERO, Ok(2)))
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
            op(&runs, Duration::ZERO, Err(Status::unavailable("safe mode"))),
        )
        .await;
    assert!(a.is_err());
    let b = cache
        .run(key("c:1"), op(&runs, Duration::ZERO, Ok(3)))
        .await;
    assert_eq!(b.unwrap(), 3);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_first_run_that_panicked_lets_the_retry_run() {
    let cache = Arc::new(RetryCache::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let a = cache
        .run(key("c:1"), async {
            if true {
                panic!("test panic in a call");
            }
            Ok(0u64)
        })
        .await;
    assert_eq!(a.unwrap_err().code(), tonic::Code::Internal);
    let b = tokio::time::timeout(
        Duration::from_secs(5),
        cache.run(key("c:1"), op(&runs, Duration::ZERO, Ok(4))),
    )
    .await
    .expect("the retry must not wait for a run that is gone");
    assert_eq!(b.unwrap(), 4);
}

#[tokio::test]
async fn an_id_reused_for_another_kind_of_call_is_refused() {
    let cache = Arc::new(RetryCache::new());
    cache.run(key("c:1"), async { Ok(1u64) }).await.unwrap();
    let err = cache
        .run(key("c:1"), async { Ok("text".to_string()) })
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
