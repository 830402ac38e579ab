//! `LoopTimers`: an event loop's connection deadlines (each connection's `Wait::until`), in
//! deadline order, re-armed lazily. The polling and uring loops both keep theirs here.
//!
//! Lazily: a deadline that moved later (the idle deadline moves with every byte) keeps its
//! earlier entry; that entry fires, the connection's turn finds nothing due, and the real
//! deadline is entered then. Only an earlier deadline moves the entry at once. So a request
//! costs no removal and insertion in the ordered set.

use std::collections::BTreeSet;

use concurrence_core::Timestamp;

/// Deadlines by connection key (a loop's slab key).
#[derive(Debug, Default)]
pub struct LoopTimers {
    order: BTreeSet<(Timestamp, usize)>,
    /// The entry each key has in `order`, by key.
    armed: Vec<Option<Timestamp>>,
}

impl LoopTimers {
    /// No deadlines.
    #[must_use]
    pub fn new() -> Self {
        LoopTimers::default()
    }

    fn armed_mut(&mut self, key: usize) -> &mut Option<Timestamp> {
        if self.armed.len() <= key {
            self.armed.resize(key + 1, None);
        }
        &mut self.armed[key]
    }

    /// Connection `key` wants a turn at `until` (`None`: it has no deadline now; an entry it
    /// has stays and fires harmlessly).
    pub fn rearm(&mut self, key: usize, until: Option<Timestamp>) {
        let Some(wanted) = until else {
            return;
        };
        let armed = *self.armed_mut(key);
        match armed {
            Some(at) if wanted >= at => {}
            _ => {
                if let Some(old) = armed {
                    self.order.remove(&(old, key));
                }
                self.order.insert((wanted, key));
                *self.armed_mut(key) = Some(wanted);
            }
        }
    }

    /// Forgets connection `key` (it closed; its key may be reused).
    pub fn remove(&mut self, key: usize) {
        if let Some(at) = self.armed.get_mut(key).and_then(Option::take) {
            self.order.remove(&(at, key));
        }
    }

    /// The earliest deadline.
    #[must_use]
    pub fn first(&self) -> Option<Timestamp> {
        self.order.first().map(|(at, _)| *at)
    }

    /// Takes every deadline due at `now`, each once, and returns their keys in deadline
    /// order: a connection that sets its deadline in the past again is served on the next
    /// turn, after the other connections' events.
    pub fn take_due(&mut self, now: Timestamp) -> Vec<usize> {
        let mut due = Vec::new();
        while let Some(&(at, key)) = self.order.first() {
            if at > now {
                break;
            }
            self.order.remove(&(at, key));
            if let Some(armed) = self.armed.get_mut(key) {
                *armed = None;
            }
            due.push(key);
        }
        due
    }

    /// Forgets every deadline.
    pub fn clear(&mut self) {
        self.order.clear();
        self.armed.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(ms: u64) -> Timestamp {
        Timestamp::ZERO + Duration::from_millis(ms)
    }

    #[test]
    fn a_later_deadline_keeps_the_earlier_entry_and_an_earlier_one_moves_it() {
        let mut timers = LoopTimers::new();
        timers.rearm(3, Some(at(10)));
        timers.rearm(3, Some(at(50)));
        assert_eq!(timers.first(), Some(at(10)), "lazily kept");
        timers.rearm(3, Some(at(5)));
        assert_eq!(timers.first(), Some(at(5)));
        assert_eq!(timers.take_due(at(9)), [3]);
        assert_eq!(timers.first(), None, "the moved entry left no other");
        timers.rearm(3, Some(at(50)));
        assert_eq!(timers.first(), Some(at(50)), "entered again after it fired");
    }

    #[test]
    fn due_keys_come_in_deadline_order_once_and_removed_keys_never() {
        let mut timers = LoopTimers::new();
        timers.rearm(1, Some(at(30)));
        timers.rearm(2, Some(at(10)));
        timers.rearm(7, Some(at(20)));
        timers.remove(7);
        timers.rearm(4, None);
        assert_eq!(timers.take_due(at(30)), [2, 1]);
        assert!(timers.take_due(at(100)).is_empty());
    }
}
