//! When to checkpoint: as late as the measured cost of a checkpoint allows.
//!
//! The job task is stopped hard at `hard_stop` (the deadline less what cleanup and
//! the report keep back). Before each entry the writer asks [`Clock::should_checkpoint`]:
//! the cost of stopping now is the time to confirm the parts in flight at the output
//! rate measured in this invocation and to write the state object at the rate the
//! last one was read (assumed 16 MiB/s in the first invocation), plus a few
//! request round trips at the latency measured while indexing, plus the time the next
//! entry itself takes when it is large (a checkpoint is only ever taken between
//! entries), and never less than what the job's previous checkpoint was measured
//! to cost. The writer checkpoints when twice that cost, plus a quarter second,
//! would reach the hard stop.
//!
//! Invariant: no checkpoint before this invocation has written at least one entry,
//! so every invocation makes progress; a job that cannot even do that ends at the
//! hard stop with a failure naming the time budget.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upload rate assumed before any byte of this invocation is confirmed.
const FIRST_RATE: f64 = 16.0 * 1024.0 * 1024.0;
/// The slowest upload rate assumed (a stalled measurement must not hide the cost).
const MIN_RATE: f64 = 1024.0 * 1024.0;
/// Request round trips a checkpoint costs beyond its bytes: the last part's
/// confirmation, the state PUT, the report, slack.
const ROUND_TRIPS: u32 = 4;
/// Always kept on top of twice the estimate, whatever the measurements say.
const FLOOR: Duration = Duration::from_millis(250);

/// One invocation's time budget for checkpoints.
#[derive(Debug)]
pub struct Clock {
    hard_stop: Instant,
    latency: Mutex<Duration>,
    /// What the last checkpoint of this job cost (from deciding to stop to its state
    /// object written), as the previous invocation measured it.
    previous_cost: Mutex<Duration>,
    /// When this invocation decided to stop.
    stopping: Mutex<Option<Instant>>,
    /// Bytes per second a state object moved at, when measured.
    transfer_rate: Mutex<Option<f64>>,
    written: AtomicU64,
    /// When this invocation first wrote to an output (the rate is measured from then).
    first_write: std::sync::OnceLock<Instant>,
    progressed: AtomicBool,
}

impl Clock {
    /// A clock for an invocation whose job task is stopped at `hard_stop`.
    pub fn new(hard_stop: Instant) -> Self {
        Clock {
            hard_stop,
            latency: Mutex::new(Duration::from_millis(25)),
            previous_cost: Mutex::new(Duration::ZERO),
            stopping: Mutex::new(None),
            transfer_rate: Mutex::new(None),
            written: AtomicU64::new(0),
            first_write: std::sync::OnceLock::new(),
            progressed: AtomicBool::new(false),
        }
    }

    /// Records a measured request round trip.
    pub fn set_latency(&self, latency: Duration) {
        *self.latency.lock().unwrap() =
            latency.clamp(Duration::from_millis(5), Duration::from_secs(2));
    }

    /// Records a measured transfer: `bytes` read in `took` (the state object, on
    /// resume): the rate a state object of that size moves at.
    pub fn set_transfer(&self, bytes: u64, took: Duration) {
        let secs = took.as_secs_f64().max(1e-3);
        *self.transfer_rate.lock().unwrap() = Some((bytes as f64 / secs).max(MIN_RATE));
    }

    /// Records what the previous checkpoint of this job cost.
    pub fn set_previous_cost(&self, cost: Duration) {
        *self.previous_cost.lock().unwrap() = cost.min(Duration::from_secs(120));
    }

    /// What this invocation's checkpoint has cost so far (since it decided to stop).
    pub fn cost_so_far(&self) -> Option<Duration> {
        self.stopping.lock().unwrap().map(|t| t.elapsed())
    }

    /// Records `bytes` written to an output in this invocation.
    pub fn wrote(&self, bytes: u64) {
        self.first_write.get_or_init(Instant::now);
        self.written.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Records that an entry was written in this invocation.
    pub fn entry_written(&self) {
        self.progressed.store(true, Ordering::Relaxed);
    }

    /// Output bytes per second in this invocation, since its first write (so the
    /// indexing before it does not count); before half a second of writing, the
    /// measured state-object rate or an assumed one.
    fn rate(&self) -> f64 {
        let assumed = self.transfer_rate.lock().unwrap().unwrap_or(FIRST_RATE);
        let Some(first) = self.first_write.get() else {
            return assumed;
        };
        let secs = first.elapsed().as_secs_f64();
        if secs < 0.5 {
            return assumed;
        }
        (self.written.load(Ordering::Relaxed) as f64 / secs).max(MIN_RATE)
    }

    /// What stopping now would cost: `in_flight` bytes of parts to confirm, `state`
    /// bytes to save, after an entry of `next_entry` bytes.
    pub fn checkpoint_cost(&self, in_flight: u64, state: u64, next_entry: u64) -> Duration {
        let rate = self.rate();
        let transfer = self.transfer_rate.lock().unwrap().unwrap_or(rate);
        let latency = *self.latency.lock().unwrap();
        let estimate = Duration::from_secs_f64(
            (in_flight + next_entry) as f64 / rate + state as f64 / transfer,
        ) + latency * ROUND_TRIPS;
        estimate.max(*self.previous_cost.lock().unwrap())
    }

    /// Whether to stop before the next entry (see the module doc).
    pub fn should_checkpoint(&self, in_flight: u64, state: u64, next_entry: u64) -> bool {
        self.should_checkpoint_after(in_flight, state, next_entry, Duration::ZERO)
    }

    /// As [`Self::should_checkpoint`], when the next step also takes `extra`.
    pub fn should_checkpoint_after(
        &self,
        in_flight: u64,
        state: u64,
        next_entry: u64,
        extra: Duration,
    ) -> bool {
        if !self.progressed.load(Ordering::Relaxed) {
            return false;
        }
        let cost = self.checkpoint_cost(in_flight, state, next_entry) + extra;
        let now = Instant::now();
        let stop = now + cost * 2 + FLOOR >= self.hard_stop;
        if stop {
            *self.stopping.lock().unwrap() = Some(now);
            tracing::info!(
                cost_ms = cost.as_millis() as u64,
                left_ms = self.hard_stop.saturating_duration_since(now).as_millis() as u64,
                rate_mib_s = self.rate() / 1048576.0,
                in_flight,
                state,
                next_entry,
                "stopping for a checkpoint"
            );
        }
        stop
    }

    /// The least time a checkpoint is given.
    pub fn minimum(&self) -> Duration {
        self.checkpoint_cost(0, 0, 0) * 2 + FLOOR
    }

    /// Whether there is time to make any progress and still checkpoint.
    pub fn can_start(&self) -> bool {
        Instant::now() + self.minimum() < self.hard_stop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_checkpoint_before_progress_and_one_near_the_stop() {
        let clock = Clock::new(Instant::now() + Duration::from_millis(400));
        assert!(!clock.should_checkpoint(0, 0, 0), "no progress yet");
        clock.entry_written();
        assert!(
            clock.should_checkpoint(0, 0, 0),
            "2 × 100 ms + 250 ms reaches the stop"
        );
        let far = Clock::new(Instant::now() + Duration::from_secs(60));
        far.entry_written();
        assert!(!far.should_checkpoint(1 << 20, 1 << 20, 0));
        assert!(
            far.should_checkpoint(0, 0, 1 << 30),
            "a 1 GiB entry takes longer"
        );
        far.set_transfer(1 << 20, Duration::from_secs(1));
        assert!(
            far.should_checkpoint(0, 40 << 20, 0),
            "40 MiB of state at 1 MiB/s"
        );
        assert!(far.can_start());
    }
}
