//! The backends' clock: the OS monotonic clock as the core's `Timestamp`, and back.
//!
//! The core never reads a clock; the backends read this one. Timestamps count from the first
//! use in the process, so every loop, task and socket shares one epoch.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use concurrence_core::Timestamp;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Now, as a core `Timestamp`.
#[must_use]
pub fn now() -> Timestamp {
    Timestamp::from_duration(epoch().elapsed())
}

/// How long from now until `deadline` (zero once passed).
#[must_use]
pub fn until(deadline: Timestamp) -> Duration {
    deadline.saturating_duration_since(now())
}

/// The `Instant` a core `Timestamp` stands for (a year from now when it is too far out).
#[must_use]
pub fn instant(at: Timestamp) -> Instant {
    epoch()
        .checked_add(at.since_epoch())
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365))
}
