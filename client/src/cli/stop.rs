//! Stop requests: SIGINT (Ctrl-C), SIGTERM (`kill`, `timeout`, systemd)
//! and SIGHUP (a closed terminal) ask a command to stop. A copy in
//! progress then removes its partial file, and a command working through
//! several paths starts no other.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

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

/// Starts watching for the stop signals (once per process; needs a tokio
/// runtime). A second signal ends the process at once. A signal that
/// cannot be watched keeps its default action, which ends the process.
pub(crate) fn watch() {
    STOP.get_or_init(|| {
        let (tx, rx) = watch::channel(None);
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
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    let first = tx.send_if_modified(|s| {
                        let first = s.is_none();
                        if first {
                            *s = Some(which);
                        }
                        first
                    });
                    if !first {
                        std::process::exit(i32::from(which.exit_code()));
                    }
                }
            });
        }
        rx
    });
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
