//! Stop requests: SIGINT (Ctrl-C), SIGTERM (`kill`, `timeout`, systemd)
//! and SIGHUP (a closed terminal) ask a command to stop. A copy in
//! progress then removes its partial file, and a command working through
//! several paths starts no other.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// The signal that asked the command to stop, once one came.
static STOP: OnceLock<watch::Receiver<Option<Signal>>> = OnceLock::new();

/// A signal that stops a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Ctrl-C.
    Interrupt,
    /// `kill`, `timeout`, a service manager.
    Terminate,
    /// The terminal went away.
    Hangup,
}

impl Signal {
    /// Its name, as `kill -l` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
            Signal::Hangup => "SIGHUP",
        }
    }

    /// The exit code of a command it stopped (128 + its number, as a
    /// shell reports a process the signal killed).
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
            Signal::Hangup => 129,
        }
    }
}

/// How long after the first stop signal another one means "exit now".
/// Closer ones are the same request: GNU `timeout` signals the command
/// and then its process group, so the command gets two within
/// microseconds, and a shell's Ctrl-C may reach it twice too.
const REPEAT_AFTER: Duration = Duration::from_secs(1);

/// Whether a stop signal at `now` ends the process at once, the first
/// having come at `first`.
fn exits_now(first: Instant, now: Instant) -> bool {
    now.saturating_duration_since(first) >= REPEAT_AFTER
}

/// Starts watching for the stop signals (once per process; needs a tokio
/// runtime) for `command` (its name, for messages). A second signal at
/// least [`REPEAT_AFTER`] after the first ends the process at once,
/// naming the partial files left behind. A signal that cannot be watched
/// keeps its default action, which ends the process.
pub(crate) fn watch(command: &'static str) {
    STOP.get_or_init(|| {
        let (tx, rx) = watch::channel(None);
        let first_at: Arc<OnceLock<Instant>> = Arc::default();
        let kinds = [
            (SignalKind::interrupt(), Signal::Interrupt),
            (SignalKind::terminate(), Signal::Terminate),
            (SignalKind::hangup(), Signal::Hangup),
        ];
        for (kind, which) in kinds {
            let Ok(mut stream) = signal(kind) else {
                continue;
            };
            let tx = tx.clone();
            let first_at = Arc::clone(&first_at);
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    let now = Instant::now();
                    let first = *first_at.get_or_init(|| now);
                    tx.send_if_modified(|s| {
                        let first = s.is_none();
                        if first {
                            *s = Some(which);
                        }
                        first
                    });
                    if exits_now(first, now) {
                        exit_now(command, which);
                    }
                }
            });
        }
        rx
    });
}

/// Ends the process at once (a second stop request), naming the partial
/// files the copies in progress leave behind.
fn exit_now(command: &str, which: Signal) -> ! {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    for p in partial_copies() {
        // Never panic on a closed stderr.
        let _ = writeln!(
            stderr,
            "dfs: {command}: {p}: partial copy left behind (stopped at once by a second {}); \
             remove it with dfs rm",
            which.name()
        );
    }
    std::process::exit(i32::from(which.exit_code()));
}

/// The signal that asked to stop, if one came.
pub(crate) fn requested() -> Option<Signal> {
    STOP.get().and_then(|rx| *rx.borrow())
}

/// Resolves when a stop signal comes (never, if none is watched).
pub(crate) async fn requested_wait() -> Signal {
    if let Some(rx) = STOP.get() {
        let mut rx = rx.clone();
        let seen = rx.wait_for(Option::is_some).await.ok().and_then(|s| *s);
        if let Some(s) = seen {
            return s;
        }
    }
    std::future::pending().await
}

/// Copies between the creation of their temporary file and its rename or
/// removal.
static COPIES: AtomicUsize = AtomicUsize::new(0);

/// The temporary files of the copies in progress, to name those a stop
/// could not wait for.
static PARTIAL: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Marks a copy in progress while it lives, from the creation of its
/// temporary file to its rename or removal: a stop signal then lets the
/// command finish (the copy sees the signal and removes the partial
/// file; see [`copies_running`]).
pub(crate) struct CopyGuard(Option<String>);

impl CopyGuard {
    /// A command step a stop should let finish (no file of its own).
    pub(crate) fn new() -> CopyGuard {
        COPIES.fetch_add(1, Ordering::SeqCst);
        CopyGuard(None)
    }

    /// A copy through the temporary file `partial`.
    pub(crate) fn copy(partial: String) -> CopyGuard {
        COPIES.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut p) = PARTIAL.lock() {
            p.push(partial.clone());
        }
        CopyGuard(Some(partial))
    }
}

impl Drop for CopyGuard {
    fn drop(&mut self) {
        if let (Some(name), Ok(mut p)) = (&self.0, PARTIAL.lock()) {
            if let Some(i) = p.iter().position(|x| x == name) {
                p.swap_remove(i);
            }
        }
        COPIES.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The temporary files of copies still in progress.
pub(crate) fn partial_copies() -> Vec<String> {
    PARTIAL.lock().map(|p| p.clone()).unwrap_or_default()
}

/// Whether a copy is in progress (its cleanup is worth waiting for).
pub(crate) fn copies_running() -> bool {
    COPIES.load(Ordering::SeqCst) > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_together_are_one_request_and_a_later_one_exits() {
        let first = Instant::now();
        // The first signal itself, and `timeout`'s second to the group.
        assert!(!exits_now(first, first));
        assert!(!exits_now(first, first + Duration::from_micros(50)));
        assert!(!exits_now(first, first + Duration::from_millis(900)));
        // A user pressing Ctrl-C again.
        assert!(exits_now(first, first + REPEAT_AFTER));
        assert!(exits_now(first, first + Duration::from_secs(5)));
    }
}
