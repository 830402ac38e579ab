//! Waking a session from outside its connection: [`Notify`], a cloneable `Send` flag a driver
//! binds to its own wake-up (a poller notification, a task waker, a simulator event), and
//! [`Mailbox`], a bounded queue of typed application events built on it.
//!
//! A session that wants application events keeps a `Notify` (or a `Mailbox`) and returns it
//! from [`Session::notify_handle`](crate::Session::notify_handle); the application keeps clones
//! (or [`MailboxSender`]s) and calls [`Notify::notify`] from any thread or task. The session's
//! [`handle_event`](crate::Session::handle_event) runs on its driver's next turn.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// What a driver runs to schedule a turn for the notified connection.
type WakeFn = Box<dyn Fn() + Send + Sync>;

struct NotifyInner {
    pending: AtomicBool,
    /// Set by the driver (once the connection runs); `None` until then and after it ended.
    wake: Mutex<Option<WakeFn>>,
}

/// A wake-up flag for one session, shared between the session (which hands it to its driver
/// through [`Session::notify_handle`](crate::Session::notify_handle)) and the application (which
/// calls [`notify`](Notify::notify)). Cloning shares the flag. Notifications coalesce: many
/// calls before the session's turn give one [`handle_event`](crate::Session::handle_event).
#[derive(Clone)]
pub struct Notify {
    inner: Arc<NotifyInner>,
}

impl fmt::Debug for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notify")
            .field("pending", &self.inner.pending.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Default for Notify {
    fn default() -> Self {
        Notify::new()
    }
}

impl Notify {
    /// A new flag, not yet bound to a driver (notifications before the binding are kept and
    /// delivered once the connection runs).
    #[must_use]
    pub fn new() -> Self {
        Notify {
            inner: Arc::new(NotifyInner {
                pending: AtomicBool::new(false),
                wake: Mutex::new(None),
            }),
        }
    }

    /// Wakes the session: its `handle_event` runs on the driver's next turn. Callable from any
    /// thread; cheap when a wake-up is already pending.
    pub fn notify(&self) {
        if !self.inner.pending.swap(true, Ordering::AcqRel) {
            let wake = self
                .inner
                .wake
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(wake) = wake.as_ref() {
                wake();
            }
        }
    }

    /// True while a notification waits for the session's turn.
    #[must_use]
    pub fn is_pending(&self) -> bool {
        self.inner.pending.load(Ordering::Acquire)
    }

    /// Binds the driver's wake-up; runs it at once if a notification already waits.
    pub(crate) fn bind(&self, wake: WakeFn) {
        let mut slot = self
            .inner
            .wake
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *slot = Some(wake);
        if self.inner.pending.load(Ordering::Acquire) {
            if let Some(wake) = slot.as_ref() {
                wake();
            }
        }
    }

    /// Drops the driver's wake-up (the connection ended): later notifications only set the flag.
    pub(crate) fn unbind(&self) {
        *self
            .inner
            .wake
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Takes the pending notification, if any.
    pub(crate) fn take(&self) -> bool {
        self.inner.pending.load(Ordering::Acquire)
            && self.inner.pending.swap(false, Ordering::AcqRel)
    }
}

/// Why [`MailboxSender::send`] gave the event back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MailboxError<E> {
    /// The mailbox holds its capacity of events: the session is not keeping up. The event is
    /// returned; drop it, count it, or retry later.
    #[error("the session's mailbox is full (capacity {capacity}); the event was not delivered")]
    Full {
        /// The event that was not delivered.
        event: E,
        /// The mailbox's capacity.
        capacity: usize,
    },
    /// The session's mailbox was dropped (its connection ended).
    #[error("the session is gone; the event was not delivered")]
    Closed(E),
}

struct MailboxShared<E> {
    queue: Mutex<VecDeque<E>>,
    capacity: usize,
    open: AtomicBool,
}

/// A bounded queue of application events of type `E` for one session: the session keeps the
/// `Mailbox`, returns [`notify_handle`](Mailbox::notify_handle) from
/// [`Session::notify_handle`](crate::Session::notify_handle) and drains it with
/// [`try_recv`](Mailbox::try_recv) in [`handle_event`](crate::Session::handle_event); the
/// application sends through [`MailboxSender`]s.
pub struct Mailbox<E> {
    shared: Arc<MailboxShared<E>>,
    notify: Notify,
}

impl<E> fmt::Debug for Mailbox<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailbox")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

/// The application's end of a [`Mailbox`]: cloneable, `Send` when `E` is.
pub struct MailboxSender<E> {
    shared: Arc<MailboxShared<E>>,
    notify: Notify,
}

impl<E> Clone for MailboxSender<E> {
    fn clone(&self) -> Self {
        MailboxSender {
            shared: Arc::clone(&self.shared),
            notify: self.notify.clone(),
        }
    }
}

impl<E> fmt::Debug for MailboxSender<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailboxSender")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

impl<E> Mailbox<E> {
    /// A mailbox that holds at most `capacity` undelivered events (at least 1): the bound on
    /// what a session that does not keep up can cost.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Mailbox {
            shared: Arc::new(MailboxShared {
                queue: Mutex::new(VecDeque::new()),
                capacity: capacity.max(1),
                open: AtomicBool::new(true),
            }),
            notify: Notify::new(),
        }
    }

    /// A sender for the application.
    #[must_use]
    pub fn sender(&self) -> MailboxSender<E> {
        MailboxSender {
            shared: Arc::clone(&self.shared),
            notify: self.notify.clone(),
        }
    }

    /// The wake-up flag to return from `Session::notify_handle`.
    #[must_use]
    pub fn notify_handle(&self) -> &Notify {
        &self.notify
    }

    /// The next event, oldest first.
    pub fn try_recv(&mut self) -> Option<E> {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }
}

impl<E> Drop for Mailbox<E> {
    fn drop(&mut self) {
        self.shared.open.store(false, Ordering::Release);
        self.shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl<E> MailboxSender<E> {
    /// Queues `event` for the session and wakes it.
    ///
    /// # Errors
    /// [`MailboxError::Full`] when the mailbox holds its capacity, [`MailboxError::Closed`]
    /// when the session is gone; the event is returned in both.
    pub fn send(&self, event: E) -> Result<(), MailboxError<E>> {
        if !self.shared.open.load(Ordering::Acquire) {
            return Err(MailboxError::Closed(event));
        }
        {
            let mut queue = self
                .shared
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if queue.len() >= self.shared.capacity {
                return Err(MailboxError::Full {
                    event,
                    capacity: self.shared.capacity,
                });
            }
            queue.push_back(event);
        }
        self.notify.notify();
        Ok(())
    }

    /// True once the session's mailbox was dropped.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        !self.shared.open.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_notification_before_binding_wakes_at_bind_and_coalesces() {
        let notify = Notify::new();
        notify.notify();
        notify.notify();
        let wakes = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&wakes);
        notify.bind(Box::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        }));
        assert_eq!(wakes.load(Ordering::SeqCst), 1);
        notify.notify();
        assert_eq!(wakes.load(Ordering::SeqCst), 1, "still pending: coalesced");
        assert!(notify.take());
        assert!(!notify.take());
        notify.notify();
        assert_eq!(wakes.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_full_mailbox_returns_the_event_and_a_dropped_one_says_closed() {
        let mut mailbox = Mailbox::new(2);
        let tx = mailbox.sender();
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        assert_eq!(
            tx.send(3),
            Err(MailboxError::Full {
                event: 3,
                capacity: 2
            })
        );
        assert_eq!(mailbox.try_recv(), Some(1));
        tx.send(4).unwrap();
        assert_eq!(mailbox.try_recv(), Some(2));
        assert_eq!(mailbox.try_recv(), Some(4));
        assert_eq!(mailbox.try_recv(), None);
        drop(mailbox);
        assert!(tx.is_closed());
        assert_eq!(tx.send(5), Err(MailboxError::Closed(5)));
    }
}
