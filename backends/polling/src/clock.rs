//! The backend's clock: the OS monotonic clock as the core's `Timestamp`.
//!
//! The core never reads a clock; this is where the polling backend reads one. Timestamps are
//! measured from the first use in the process, so every loop and socket shares one epoch.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use concurrence_core::Timestamp;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Now, as a core `Timestamp`.
pub(crate) fn now() -> Timestamp {
    Timestamp::from_duration(epoch().elapsed())
}

/// How long from now until `deadline` (zero once passed).
pub(crate) fn until(deadline: Timestamp) -> Duration {
    deadline.saturating_duration_since(now())
}
