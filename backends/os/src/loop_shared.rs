//! What a real-socket server's event loops share with each other and with its handle: the stop
//! flag, the live connection count (the cap, taken in one atomic step), the loops' wake-ups,
//! and the receive/send call counts. The polling and uring backends both serve through it.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// Wakes one event loop from another thread (its poller's notify, its ring's event fd).
pub type LoopWaker = Box<dyn Fn() + Send + Sync>;

/// State a server's loops and its [`ServerHandle`](crate::ServerHandle) share.
#[derive(Default)]
pub struct LoopShared {
    /// Set once the server is shutting down.
    pub stop: AtomicBool,
    /// Connections live (or being accepted) over all loops.
    pub live: AtomicUsize,
    wakers: Mutex<Vec<LoopWaker>>,
    reads: AtomicU64,
    empty_reads: AtomicU64,
    sends: AtomicU64,
}

impl std::fmt::Debug for LoopShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopShared")
            .field("stop", &self.stop)
            .field("live", &self.live)
            .finish_non_exhaustive()
    }
}

/// How many receive and send operations a server's loops made on connections, and how many
/// receives found nothing (`EAGAIN`): a check that the loops do not make calls that cannot
/// succeed. Published before each wait for events.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct IoCounts {
    /// Receives on connections (`recv` calls, or io_uring receive completions).
    pub reads: u64,
    /// Of those, the ones that found nothing to read.
    pub empty_reads: u64,
    /// Sends on connections (`send` calls, or io_uring send completions).
    pub sends: u64,
}

impl IoCounts {
    /// Whether nothing was counted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.reads + self.sends == 0
    }
}

impl LoopShared {
    /// Adds one loop's counts since its last report, and clears them.
    pub fn add_calls(&self, calls: &mut IoCounts) {
        if !calls.is_empty() {
            self.reads.fetch_add(calls.reads, Ordering::Relaxed);
            self.empty_reads
                .fetch_add(calls.empty_reads, Ordering::Relaxed);
            self.sends.fetch_add(calls.sends, Ordering::Relaxed);
            *calls = IoCounts::default();
        }
    }

    /// The counts so far, over all loops.
    #[must_use]
    pub fn calls(&self) -> IoCounts {
        IoCounts {
            reads: self.reads.load(Ordering::Relaxed),
            empty_reads: self.empty_reads.load(Ordering::Relaxed),
            sends: self.sends.load(Ordering::Relaxed),
        }
    }

    /// Adds a loop's wake-up, called on shutdown and when a slot frees at the cap.
    pub fn add_waker(&self, waker: LoopWaker) {
        self.wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(waker);
    }

    /// Takes a connection slot if fewer than `cap` are live (one atomic step: several loops
    /// accepting at once never overshoot the cap).
    pub fn reserve(&self, cap: usize) -> bool {
        self.live
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < cap).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives a connection slot back; one freed at the cap wakes every loop, so that a
    /// newcomer waiting on another loop's listener is let in promptly.
    pub fn release(&self, cap: usize) {
        if self.live.fetch_sub(1, Ordering::SeqCst) == cap {
            self.wake_all();
        }
    }

    /// Wakes every loop.
    pub fn wake_all(&self) {
        for wake in self
            .wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            wake();
        }
    }
}
