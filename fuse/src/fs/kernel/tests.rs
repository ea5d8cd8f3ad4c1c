//! Unit tests of how a request is run: on the worker thread, as a task, or
//! answered after a panic.

use std::sync::atomic::{AtomicBool, Ordering};

use super::*;

/// Stands for a fuser reply, which answers EIO when dropped unsent.
struct Reply(Arc<AtomicBool>);

impl Drop for Reply {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime for the test")
}

#[test]
fn a_request_answered_at_once_runs_on_the_calling_thread() {
    let (rt, tasks) = (runtime(), TaskTracker::new());
    let caller = std::thread::current().id();
    let ran_on = Arc::new(parking_lot::Mutex::new(None));
    let seen = ran_on.clone();
    run_request(
        async move { *seen.lock() = Some(std::thread::current().id()) },
        rt.handle(),
        &tasks,
    );
    assert_eq!(*ran_on.lock(), Some(caller));
    assert!(tasks.is_empty(), "no task for a request that did not wait");
}

#[test]
fn a_request_that_waits_continues_as_a_task_and_ends() {
    let (rt, tasks) = (runtime(), TaskTracker::new());
    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    run_request(
        async move {
            let _ = wait.await;
            let _ = done.send(());
        },
        rt.handle(),
        &tasks,
    );
    assert_eq!(tasks.len(), 1, "the waiting request became a task");
    go.send(()).expect("the task holds the receiver");
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), finished)
            .await
            .expect("the task ended within 10 s")
            .expect("the task finished its work");
    });
}

#[test]
fn a_request_that_panics_is_answered_and_the_thread_goes_on() {
    let (rt, tasks) = (runtime(), TaskTracker::new());
    let answered = Arc::new(AtomicBool::new(false));
    let reply = Reply(answered.clone());
    run_request(
        async move {
            let _reply = reply;
            panic!("a handler bug, on purpose");
        },
        rt.handle(),
        &tasks,
    );
    assert!(
        answered.load(Ordering::SeqCst),
        "the reply was dropped, so answered EIO"
    );
    assert!(tasks.is_empty());
    // The thread is still here to serve the next request.
    let next = Arc::new(AtomicBool::new(false));
    let flag = next.clone();
    run_request(
        async move { flag.store(true, Ordering::SeqCst) },
        rt.handle(),
        &tasks,
    );
    assert!(next.load(Ordering::SeqCst));
}
