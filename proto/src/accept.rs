//! Accepting TCP connections when the process runs out of descriptors.
//!
//! `accept` fails with EMFILE (or ENFILE) while the process (or the
//! system) is at its descriptor limit, and fails again at once until a
//! descriptor is freed. A loop that retries straight away spins a core;
//! tonic's own accept loop does, logging only at trace level, so a
//! namenode out of descriptors burned a CPU and said nothing. An
//! [`Acceptor`] waits [`ACCEPT_RETRY`] between tries and says what happens
//! in one warning per [`WARN_EVERY`], with the count of failures; clients
//! wait in the listen backlog meanwhile.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

/// Pause after a failed accept.
pub const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// Failed accepts are logged at most this often.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// A listener whose [`accept`](Acceptor::accept) retries failures with a
/// pause and a rate-limited warning.
#[derive(Debug)]
pub struct Acceptor {
    listener: TcpListener,
    /// Failures since the last connection accepted.
    failures: u64,
    /// When a failure was last logged.
    warned: Option<Instant>,
}

impl Acceptor {
    /// Accepts on `listener`.
    pub fn new(listener: TcpListener) -> Acceptor {
        Acceptor {
            listener,
            failures: 0,
            warned: None,
        }
    }

    /// The address listened on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The next connection, with `TCP_NODELAY` set (small replies must not
    /// wait for Nagle's algorithm). Never fails: a failed accept is retried
    /// after [`ACCEPT_RETRY`].
    pub async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok((stream, peer)) => {
                    if self.failures > 0 {
                        tracing::info!(failed = self.failures, "accepting connections again");
                        self.failures = 0;
                        self.warned = None;
                    }
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(node = %peer, error = %e, "cannot set TCP_NODELAY");
                    }
                    return (stream, peer);
                }
                // A connection that died before it was accepted: nothing
                // to wait for.
                Err(e) if per_connection(&e) => {
                    tracing::debug!(error = %e, "a connection failed before it was accepted");
                }
                Err(e) => {
                    self.failures += 1;
                    if self.warned.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                        self.warned = Some(Instant::now());
                        tracing::warn!(
                            error = %e,
                            failed = self.failures,
                            "cannot accept a connection (out of file descriptors? see ulimit -n); \
                             new clients wait until one is freed"
                        );
                    }
                    tokio::time::sleep(ACCEPT_RETRY).await;
                }
            }
        }
    }
}

/// Whether a failed accept concerns only the connection it would have
/// returned (reset or aborted by the peer, a protocol error), rather than
/// the process (out of descriptors or memory).
fn per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    ) || e.raw_os_error() == Some(EPROTO)
}

/// `EPROTO` on Linux (not in `std::io::ErrorKind`).
const EPROTO: i32 = 71;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_process_wide_failures_pause() {
        assert!(per_connection(&io::Error::from(
            io::ErrorKind::ConnectionAborted
        )));
        assert!(per_connection(&io::Error::from_raw_os_error(EPROTO)));
        // EMFILE
        assert!(!per_connection(&io::Error::from_raw_os_error(24)));
    }

    #[tokio::test]
    async fn accepts_with_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut a = Acceptor::new(listener);
        let addr = a.local_addr().unwrap();
        let client = tokio::spawn(async move { TcpStream::connect(addr).await.unwrap() });
        let (stream, peer) = a.accept().await;
        assert!(stream.nodelay().unwrap());
        assert_eq!(peer, client.await.unwrap().local_addr().unwrap());
    }
}
