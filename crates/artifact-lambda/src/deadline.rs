//! The time an invocation has, from the runtime's `Lambda-Runtime-Deadline-Ms`.
//!
//! AWS sends an absolute epoch time in milliseconds, in the future. Local emulators
//! differ: `cargo lambda watch` sends a relative `600000`, others send nothing (0)
//! or the invoke time (already past on arrival). Such an implausible deadline is
//! replaced by the configured timeout (`ARTIFACT_WORKER_TIMEOUT_S`, default 900, the
//! Lambda maximum) and logged as a warning once per process, so the emulators work
//! and a real deployment with a broken clock is still visible in the logs.
//!
//! Invariant: [`time_left`] never returns a duration the runtime did not give
//! unless it names why ([`Implausible`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

/// Deadlines below this are not absolute epoch milliseconds (2001-09-09T01:46:40Z).
const EPOCH_MS_FLOOR: u64 = 1_000_000_000_000;

/// Lambda's longest timeout: the fallback when none is configured.
const DEFAULT_TIMEOUT_S: u64 = 900;

/// Why the runtime's deadline was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implausible {
    /// No deadline (header absent or 0).
    Missing,
    /// A value before 2001: not an epoch time (e.g. a relative one).
    BeforeEpochFloor(u64),
    /// Already past when the invocation arrived, by this many milliseconds.
    Past(u64),
}

impl std::fmt::Display for Implausible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Implausible::Missing => write!(f, "the runtime sent no deadline"),
            Implausible::BeforeEpochFloor(ms) => write!(
                f,
                "the runtime's deadline {ms} is not epoch milliseconds (before 2001)"
            ),
            Implausible::Past(ms) => write!(
                f,
                "the runtime's deadline was {ms} ms in the past when the invocation arrived"
            ),
        }
    }
}

/// The time left in this invocation for a runtime deadline of `deadline_ms`,
/// or why that deadline is implausible.
pub fn time_left(deadline_ms: u64, now: SystemTime) -> Result<Duration, Implausible> {
    let now_ms = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64;
    match deadline_ms {
        0 => Err(Implausible::Missing),
        ms if ms < EPOCH_MS_FLOOR => Err(Implausible::BeforeEpochFloor(ms)),
        ms if ms <= now_ms => Err(Implausible::Past(now_ms - ms)),
        ms => Ok(Duration::from_millis(ms - now_ms)),
    }
}

/// The configured timeout: `ARTIFACT_WORKER_TIMEOUT_S` (seconds, fractions allowed),
/// else 900.
pub fn fallback_timeout() -> Duration {
    std::env::var("ARTIFACT_WORKER_TIMEOUT_S")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(DEFAULT_TIMEOUT_S))
}

/// [`time_left`], with an implausible deadline replaced by [`fallback_timeout`] and
/// logged as a warning the first time in this process.
pub fn invocation_time(deadline_ms: u64, now: SystemTime) -> Duration {
    static WARNED: AtomicBool = AtomicBool::new(false);
    time_left(deadline_ms, now).unwrap_or_else(|why| {
        let fallback = fallback_timeout();
        if !WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                deadline_ms,
                fallback_s = fallback.as_secs_f64(),
                "{why}; using ARTIFACT_WORKER_TIMEOUT_S instead (logged once)"
            );
        }
        fallback
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_from_aws_and_emulators() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_000_000_000);
        // AWS: absolute, 14 minutes ahead.
        assert_eq!(
            time_left(1_764_000_840_000, now),
            Ok(Duration::from_secs(840))
        );
        // cargo lambda watch: a relative 600000.
        assert_eq!(
            time_left(600_000, now),
            Err(Implausible::BeforeEpochFloor(600_000))
        );
        // No header, or the invoke time (already past).
        assert_eq!(time_left(0, now), Err(Implausible::Missing));
        assert_eq!(
            time_left(1_763_999_999_000, now),
            Err(Implausible::Past(1_000))
        );
        assert_eq!(time_left(1_764_000_000_000, now), Err(Implausible::Past(0)));
    }
}
