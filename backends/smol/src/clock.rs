//! The backend's clock: the OS monotonic clock as the core's `Timestamp`, and back.
//!
//! Timestamps count from the first use in the process, so every task shares one epoch.

use std::sync::OnceLock;
use std::time::Instant;

use concurrence_core::Timestamp;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Now, as a core `Timestamp`.
pub(crate) fn now() -> Timestamp {
    Timestamp::from_duration(epoch().elapsed())
}

/// The `Instant` a core `Timestamp` stands for (saturating far in the future).
pub(crate) fn instant(at: Timestamp) -> Instant {
    epoch()
        .checked_add(at.since_epoch())
        .unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(86_400 * 365))
}
