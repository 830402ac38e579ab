//! Starting and waking an event loop's sessions, written once for the polling and uring loops:
//! [`start_session`] runs the user's factory and the session's start with a panic contained to
//! that connection, and [`LoopWakes`] is the list of connections the application woke
//! (`Notify`) since the loop's last turn, each by slot key and a unique id (a slot is reused;
//! a late wake-up for a finished connection must not reach the next one in its slot).

use std::sync::{Arc, Mutex, PoisonError};

use concurrence_core::{Address, Connection, ConnectionConfig, Session, Timestamp};
use concurrence_socket::{SocketError, panic_message};

/// Makes the session for `peer` with `factory` and starts it at `now`. A panic in either (user
/// code) is this connection's error, not the loop's.
///
/// # Errors
/// The factory or the session's start panicked (the text carries the panic's message).
pub fn start_session<S, F>(
    factory: &F,
    peer: &Address,
    config: ConnectionConfig,
    now: Timestamp,
) -> Result<Connection<S>, SocketError>
where
    S: Session,
    F: Fn(&Address) -> S + ?Sized,
{
    let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut conn = Connection::with_config(factory(peer), config);
        conn.handle_start(now);
        conn
    }));
    started.map_err(|panic| {
        let message = format!("the session panicked: {}", panic_message(&*panic));
        SocketError::io("start session", peer, std::io::Error::other(message))
    })
}

/// The connections the application woke since the loop last looked.
#[derive(Debug, Clone, Default)]
pub struct LoopWakes(Arc<Mutex<Vec<(usize, u64)>>>);

impl LoopWakes {
    /// Makes `conn` (to be slot `key`, unique `id`) wake this loop: its waker records it here
    /// and calls `notify` (the loop's own wake-up). Nothing for a session without events.
    pub fn wire<S: Session>(
        &self,
        conn: &mut Connection<S>,
        key: usize,
        id: u64,
        notify: impl Fn() + Send + Sync + 'static,
    ) {
        if conn.takes_events() {
            let woken = Arc::clone(&self.0);
            conn.set_waker(move || {
                woken
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((key, id));
                notify();
            });
        }
    }

    /// Takes the connections woken so far, by (key, id).
    #[must_use]
    pub fn take(&self) -> Vec<(usize, u64)> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}
