//! `Timestamp`: the core's notion of "now", a value the driver passes in.
//!
//! The core never reads a clock. A backend turns its own clock into `Timestamp`s (time since an
//! epoch it picked, e.g. when its loop started); the simulator creates them from virtual time.

use std::fmt;
use std::ops::{Add, AddAssign};
use std::time::Duration;

/// A point in time, measured from an epoch chosen by whoever drives the core.
///
/// Only differences between timestamps from the same driver mean anything. Arithmetic
/// saturates instead of overflowing, so a far deadline (`now + Duration::MAX`) is "never".
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(Duration);

impl Timestamp {
    /// The driver's epoch.
    pub const ZERO: Timestamp = Timestamp(Duration::ZERO);
    /// A moment later than any other: used for "no deadline" in arithmetic.
    pub const MAX: Timestamp = Timestamp(Duration::MAX);

    /// The timestamp `since_epoch` after the epoch.
    #[must_use]
    pub const fn from_duration(since_epoch: Duration) -> Self {
        Timestamp(since_epoch)
    }

    /// The timestamp `millis` milliseconds after the epoch.
    #[must_use]
    pub const fn from_millis(millis: u64) -> Self {
        Timestamp(Duration::from_millis(millis))
    }

    /// How long after the epoch this is.
    #[must_use]
    pub const fn since_epoch(self) -> Duration {
        self.0
    }

    /// `self - earlier`, or zero if `earlier` is later (time that went backwards is ignored).
    #[must_use]
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// `self + duration`, saturating at [`Timestamp::MAX`].
    #[must_use]
    pub fn saturating_add(self, duration: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(duration))
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, rhs: Duration) -> Timestamp {
        self.saturating_add(rhs)
    }
}

impl AddAssign<Duration> for Timestamp {
    fn add_assign(&mut self, rhs: Duration) {
        *self = self.saturating_add(rhs);
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t+{:?}", self.0)
    }
}

/// The deadline for an operation that starts at `now` with `timeout`; `None` (the seed's -1)
/// waits forever and has no deadline.
#[must_use]
pub fn deadline(now: Timestamp, timeout: Option<Duration>) -> Option<Timestamp> {
    timeout.map(|t| now + t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_and_ignores_backwards_time() {
        let t = Timestamp::from_millis(5);
        assert_eq!(t + Duration::from_millis(5), Timestamp::from_millis(10));
        assert_eq!(t + Duration::MAX, Timestamp::MAX);
        assert_eq!(Timestamp::ZERO.saturating_duration_since(t), Duration::ZERO);
        assert_eq!(
            t.saturating_duration_since(Timestamp::ZERO),
            Duration::from_millis(5)
        );
        let mut u = t;
        u += Duration::from_millis(1);
        assert_eq!(u.since_epoch(), Duration::from_millis(6));
        assert_eq!(format!("{u:?}"), "t+6ms");
    }

    #[test]
    fn deadlines_from_timeouts() {
        let now = Timestamp::from_millis(100);
        assert_eq!(deadline(now, None), None);
        assert_eq!(
            deadline(now, Some(Duration::from_millis(50))),
            Some(Timestamp::from_millis(150))
        );
    }
}
