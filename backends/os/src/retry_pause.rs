//! `RetryPause`: how long to wait between attempts at an operation the kernel refuses for now
//! without any readiness event to wait for (a Unix `connect` to a listener whose backlog is
//! full answers `EAGAIN`, not "in progress"): 1 ms, doubling up to 64 ms, never past the
//! caller's deadline. A 10 s connect timeout then costs about 160 attempts, not 10,000.

use std::time::Duration;

use concurrence_core::Timestamp;

use crate::clock;

/// The first pause.
pub const RETRY_PAUSE_FIRST: Duration = Duration::from_millis(1);
/// The longest pause.
pub const RETRY_PAUSE_MAX: Duration = Duration::from_millis(64);

/// Exponential pauses between retries, bounded by a deadline.
#[derive(Debug, Clone)]
pub struct RetryPause {
    next: Duration,
}

impl Default for RetryPause {
    fn default() -> Self {
        RetryPause::new()
    }
}

impl RetryPause {
    /// Starts at [`RETRY_PAUSE_FIRST`].
    #[must_use]
    pub fn new() -> Self {
        RetryPause {
            next: RETRY_PAUSE_FIRST,
        }
    }

    /// The pause the next [`pause`](Self::pause) takes (before the deadline cuts it).
    #[must_use]
    pub fn next(&self) -> Duration {
        self.next
    }

    /// The pause before the next attempt, for a caller that waits by itself (an async timer);
    /// the one after it is twice as long.
    pub fn next_pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(RETRY_PAUSE_MAX);
        pause
    }

    /// Sleeps before the next attempt (up to the deadline) and doubles the next pause; false,
    /// without sleeping, once `deadline` has passed.
    pub fn pause(&mut self, deadline: Option<Timestamp>) -> bool {
        let left = deadline.map_or(Duration::MAX, clock::until);
        if left.is_zero() {
            return false;
        }
        std::thread::sleep(self.next.min(left));
        self.next = (self.next * 2).min(RETRY_PAUSE_MAX);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap() {
        let mut pause = RetryPause::new();
        let mut seen = Vec::new();
        for _ in 0..9 {
            assert_eq!(pause.next(), pause.clone().next_pause());
            seen.push(pause.next_pause().as_millis());
        }
        assert_eq!(seen, [1, 2, 4, 8, 16, 32, 64, 64, 64]);
    }

    #[test]
    fn a_passed_deadline_does_not_sleep() {
        let mut pause = RetryPause::new();
        assert!(!pause.pause(Some(Timestamp::ZERO)));
        assert_eq!(pause.next(), RETRY_PAUSE_FIRST, "nothing was spent");
    }
}
