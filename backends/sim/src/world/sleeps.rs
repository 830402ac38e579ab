//! Sleeps: the timers of tasks waiting on virtual time.

use super::*;

impl World {
    /// A timer for a task on `host` sleeping `duration` (on the host's clock, which runs at the
    /// network's rate: the wait is the same); returns its id.
    pub(crate) fn sleep_for(&mut self, host: HostId, duration: Duration) -> u64 {
        let local = self.host_now(host).saturating_add(duration);
        let at = self.global(host, local).max(self.now);
        self.sleep_until(at)
    }

    /// A timer for a sleeping task, due at `at` (network time); returns its id.
    pub(crate) fn sleep_until(&mut self, at: Timestamp) -> u64 {
        let id = self.next_sleep;
        self.next_sleep += 1;
        self.sleeps.insert(
            id,
            SleepSlot {
                fired: at <= self.now,
                waker: None,
            },
        );
        if at > self.now {
            self.schedule(at, Event::Wake(id));
        }
        id
    }

    /// Whether sleep `id` is over.
    pub(crate) fn poll_sleep(&mut self, id: u64, cx: &mut Context<'_>) -> Poll<()> {
        match self.sleeps.get_mut(&id) {
            Some(slot) if !slot.fired => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
            _ => {
                self.sleeps.remove(&id);
                Poll::Ready(())
            }
        }
    }

    /// Forgets sleep `id` (its future was dropped).
    pub(crate) fn cancel_sleep(&mut self, id: u64) {
        self.sleeps.remove(&id);
    }
}
