//! Safe mode: read-only at start until enough complete blocks have a
//! reported replica, then an extension, then off; an administrator may
//! also enter it (it then lasts until they leave it) or leave it early
//! (`dfs admin safemode`, HDFS's `dfsadmin -safemode`).

use std::time::{Duration, Instant};

/// Where safe mode stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for block reports.
    Waiting,
    /// Threshold reached; leaves at the instant given.
    Extension(Instant),
    /// Entered by an administrator; only they end it.
    Manual,
    /// Left; entered again only by an administrator.
    Off,
}

/// The safe mode state machine.
#[derive(Debug, Clone)]
pub struct SafeMode {
    threshold: f64,
    extension: Duration,
    phase: Phase,
}

impl SafeMode {
    /// Safe mode as entered at start.
    pub fn new(threshold: f64, extension: Duration) -> SafeMode {
        SafeMode {
            threshold,
            extension,
            phase: Phase::Waiting,
        }
    }

    /// Safe mode already off (tests).
    pub fn off() -> SafeMode {
        SafeMode {
            threshold: 0.0,
            extension: Duration::ZERO,
            phase: Phase::Off,
        }
    }

    /// Whether mutations are refused.
    pub fn is_on(&self) -> bool {
        self.phase != Phase::Off
    }

    /// Whether an administrator entered it (it does not end by itself).
    pub fn by_admin(&self) -> bool {
        self.phase == Phase::Manual
    }

    /// Blocks with a replica needed to leave, of `total`.
    pub fn needed(&self, total: u64) -> u64 {
        // A small epsilon so that 0.999 × 1000 needs 999, not 1000.
        ((self.threshold * total as f64) - 1e-9).ceil().max(0.0) as u64
    }

    /// Enters safe mode by an administrator's order; it lasts until
    /// [`leave`](Self::leave). Returns false if it was entered by hand
    /// already.
    pub fn enter(&mut self) -> bool {
        let was = self.phase;
        self.phase = Phase::Manual;
        was != Phase::Manual
    }

    /// Leaves safe mode by an administrator's order, whatever its phase;
    /// returns false if it was off already.
    pub fn leave(&mut self) -> bool {
        let was = self.phase;
        self.phase = Phase::Off;
        was != Phase::Off
    }

    /// Moves the state machine on with the current counts; returns true the
    /// moment safe mode is left. With no blocks at all it is left at once.
    pub fn update(&mut self, safe: u64, total: u64, now: Instant) -> bool {
        match self.phase {
            Phase::Off | Phase::Manual => false,
            _ if total == 0 => {
                self.phase = Phase::Off;
                true
            }
            Phase::Waiting if safe >= self.needed(total) => {
                if self.extension.is_zero() {
                    self.phase = Phase::Off;
                    return true;
                }
                self.phase = Phase::Extension(now + self.extension);
                false
            }
            Phase::Waiting => false,
            Phase::Extension(_) if safe < self.needed(total) => {
                self.phase = Phase::Waiting;
                false
            }
            Phase::Extension(until) if now >= until => {
                self.phase = Phase::Off;
                true
            }
            Phase::Extension(_) => false,
        }
    }

    /// A one-line account of where safe mode stands.
    pub fn status(&self, safe: u64, total: u64, now: Instant) -> String {
        let pct = self.threshold * 100.0;
        match self.phase {
            Phase::Off => "safe mode is off".to_string(),
            Phase::Manual => "safe mode was entered by an administrator; \
                              `dfs admin safemode leave` ends it"
                .to_string(),
            Phase::Waiting => format!(
                "{safe} of {total} blocks have a reported replica, {} needed ({pct:.1}% threshold); \
                 waiting for datanode block reports, safe mode ends by itself",
                self.needed(total)
            ),
            Phase::Extension(until) => format!(
                "{safe} of {total} blocks have a reported replica (threshold {pct:.1}% reached); \
                 leaving safe mode in {:.1}s",
                until.saturating_duration_since(now).as_secs_f64()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_arithmetic() {
        let s = SafeMode::new(0.999, Duration::ZERO);
        assert_eq!(s.needed(1000), 999);
        assert_eq!(s.needed(20), 20);
        assert_eq!(s.needed(1), 1);
        assert_eq!(s.needed(0), 0);
        assert_eq!(SafeMode::new(0.5, Duration::ZERO).needed(3), 2);
        assert_eq!(SafeMode::new(0.0, Duration::ZERO).needed(3), 0);
        assert_eq!(SafeMode::new(1.0, Duration::ZERO).needed(7), 7);
    }

    #[test]
    fn empty_namespace_leaves_at_once() {
        let mut s = SafeMode::new(0.999, Duration::from_secs(30));
        assert!(s.update(0, 0, Instant::now()));
        assert!(!s.is_on());
    }

    #[test]
    fn extension_and_relapse() {
        let t = Instant::now();
        let mut s = SafeMode::new(1.0, Duration::from_secs(5));
        assert!(!s.update(1, 2, t));
        assert!(s.status(1, 2, t).contains("1 of 2 blocks"));
        assert!(!s.update(2, 2, t));
        assert!(s.status(2, 2, t).contains("leaving safe mode in"));
        assert!(!s.update(1, 2, t + Duration::from_secs(1)));
        assert!(!s.update(2, 2, t + Duration::from_secs(2)));
        assert!(!s.update(2, 2, t + Duration::from_secs(6)));
        assert!(s.update(2, 2, t + Duration::from_secs(7)));
        assert!(!s.is_on());
        assert!(!s.update(0, 2, t + Duration::from_secs(8)));
        assert!(!s.is_on());
    }

    #[test]
    fn an_administrator_enters_and_leaves_it_by_hand() {
        let t = Instant::now();
        let mut s = SafeMode::new(1.0, Duration::ZERO);
        // Leaving early, before the block reports.
        assert!(s.leave());
        assert!(!s.is_on());
        assert!(!s.leave());
        // Entered by hand: block counts do not end it, however complete.
        assert!(s.enter());
        assert!(!s.enter());
        assert!(!s.update(2, 2, t));
        assert!(!s.update(0, 0, t));
        assert!(s.is_on() && s.by_admin());
        assert!(s.status(2, 2, t).contains("administrator"));
        assert!(s.leave());
        assert!(!s.is_on());
    }
}
