//! One event loop: a `polling::Poller`, a listener, and the connections it accepted, each a
//! core `Connection` driving a `Session`. This file only moves bytes and waits.
//!
//! Interest is level-triggered and tracked per connection: after every turn the loop compares
//! what the connection's `Output::Wait` asks for (read / write) with what is armed and calls
//! `modify` only when that changed. That is how back-pressure reaches the kernel (a connection
//! over its high-water mark stops being watched for input), and it saves the `epoll_ctl` that
//! oneshot mode costs on every event. Never arming what is not wanted keeps level mode from
//! spinning. Timers (every deadline of a connection, from `Output::Wait::until`) live in an
//! ordered set keyed by deadline and are re-read after every turn. A session woken by the
//! application (`Notify`) queues its slot and wakes the poller; the loop gives it a turn.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use concurrence_core::{Address, BufferPool, Connection, Session, Timestamp};
use polling::{Event, Events, Poller};
use slab::Slab;

use concurrence_os::sockaddr::set_nodelay;
use concurrence_os::{
    IoCounts, LoopShared, LoopTimers, LoopWakes, accept_ready, clock, log_end, start_session,
};
use concurrence_socket::{AcceptGate, ServerConfig, SocketError, panic_message};

use crate::registration::Registered;
use crate::transfer::{Turn, close, pump, shut};

/// The listener's key (`usize::MAX` is reserved by `polling`).
const LISTENER: usize = usize::MAX - 1;

struct Slot<S> {
    socket: Registered<socket2::Socket>,
    peer: Address,
    conn: Connection<S>,
    /// What the poller watches for now: (readable, writable).
    armed: (bool, bool),
    /// Unique among this loop's connections (slots are reused): a late application wake-up
    /// for a finished connection must not reach the next one in its slot.
    id: u64,
}

pub(crate) struct EventLoop<S, F> {
    poller: Arc<Poller>,
    /// The listener, once `run` registered it (`None` once it stopped accepting).
    listener: Option<Registered<socket2::Socket>>,
    /// The listener until `run` registers it.
    unregistered: Option<socket2::Socket>,
    address: Address,
    /// The live connections by key (the poller key; a key is reused once its connection
    /// is gone, so application wake-ups carry the slot id too).
    slots: Slab<Slot<S>>,
    timers: LoopTimers,
    config: ServerConfig,
    shared: Arc<LoopShared>,
    factory: Arc<F>,
    draining_until: Option<Timestamp>,
    /// Whether the listener is watched for connections now.
    listener_armed: bool,
    /// The accept policy: the cap, and the rest after a failed accept (`EMFILE`...).
    gate: AcceptGate,
    /// Reads and sends since the counts were last published to `shared`.
    calls: IoCounts,
    /// Idle connections' buffers, for the next request (`ServerConfig::pooled_buffers`).
    pool: BufferPool,
    /// Woken by the application since the last turn.
    wakes: LoopWakes,
    next_id: u64,
}

impl<S, F> EventLoop<S, F>
where
    S: Session,
    F: Fn(&Address) -> S,
{
    pub(crate) fn new(
        poller: Arc<Poller>,
        listener: socket2::Socket,
        address: Address,
        config: ServerConfig,
        shared: Arc<LoopShared>,
        factory: Arc<F>,
    ) -> Self {
        EventLoop {
            poller,
            listener: None,
            unregistered: Some(listener),
            address,
            slots: Slab::new(),
            timers: LoopTimers::new(),
            shared,
            factory,
            draining_until: None,
            listener_armed: false,
            gate: AcceptGate::new(&config),
            calls: IoCounts::default(),
            pool: BufferPool::new(config.pooled_buffers),
            config,
            wakes: LoopWakes::default(),
            next_id: 0,
        }
    }

    /// Serves until shutdown, then until the connections finish or the grace period ends.
    pub(crate) fn run(mut self) -> Result<(), SocketError> {
        let address = self.address.clone();
        let io_err = move |op: &'static str, e: io::Error| SocketError::io(op, &address, e);
        if let Some(listener) = self.unregistered.take() {
            let registered = Registered::new(&self.poller, listener, Event::none(LISTENER))
                .map_err(|(_, e)| io_err("register listener", e))?;
            self.listener = Some(registered);
        }
        let mut events = Events::new();
        loop {
            let now = clock::now();
            if self.shared.stop.load(Ordering::SeqCst) && self.draining_until.is_none() {
                self.stop_accepting();
                self.draining_until = Some(now + self.config.shutdown_grace);
            }
            if let Some(until) = self.draining_until {
                if self.live() == 0 {
                    self.shared.add_calls(&mut self.calls);
                    return Ok(());
                }
                if now >= until {
                    self.close_all(now);
                    self.shared.add_calls(&mut self.calls);
                    return Ok(());
                }
            }
            self.update_listener(now);
            let wake = self
                .timers
                .first()
                .into_iter()
                .chain(self.draining_until)
                .chain(self.gate.resting(now))
                .min();
            let timeout = wake.map(|t| t.saturating_duration_since(now));
            self.shared.add_calls(&mut self.calls);
            events.clear();
            match self.poller.wait(&mut events, timeout) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err("wait", e)),
            }
            let now = clock::now();
            for event in events.iter() {
                if event.key == LISTENER {
                    self.accept(now);
                } else {
                    self.guarded(event.key, |this| this.drive(event.key, now));
                }
            }
            self.fire_timers(clock::now());
            self.serve_wakes(clock::now());
        }
    }

    /// Gives a turn to every connection the application woke since the last one.
    fn serve_wakes(&mut self, now: Timestamp) {
        for (key, id) in self.wakes.take() {
            if self.slots.get(key).is_some_and(|s| s.id == id) {
                self.guarded(key, |this| this.drive(key, now));
            }
        }
    }

    fn live(&self) -> usize {
        self.slots.len()
    }

    fn stop_accepting(&mut self) {
        // Dropping it deletes it from the poller, then closes it.
        self.listener = None;
        self.listener_armed = false;
    }

    /// Watches the listener only while this server may accept: below `max_connections`
    /// (newcomers wait in the kernel's backlog meanwhile, instead of being accepted and
    /// reset) and outside the pause after a failed accept (a level-triggered listener would
    /// report the same `EMFILE` again at once: a spinning loop).
    fn update_listener(&mut self, now: Timestamp) {
        let live = self.shared.live.load(Ordering::SeqCst);
        let want = self.gate.may_accept(now, live);
        let Some(listener) = &self.listener else {
            return;
        };
        if want == self.listener_armed {
            return;
        }
        let interest = if want {
            Event::readable(LISTENER)
        } else {
            Event::none(LISTENER)
        };
        match listener.modify(interest) {
            Ok(()) => self.listener_armed = want,
            Err(e) => {
                tracing::warn!(address = %self.address, error = %e, "cannot change the listener's interest")
            }
        }
        if !want && live >= self.config.max_connections {
            tracing::warn!(address = %self.address, limit = self.config.max_connections,
                "max_connections reached: new connections wait in the backlog");
        }
    }

    /// Runs `work` for connection `key`, containing a panic from user session code to that
    /// connection: it is logged and the connection dropped; the loop and the other
    /// connections go on.
    fn guarded(&mut self, key: usize, work: impl FnOnce(&mut Self)) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&mut *self)));
        if let Err(panic) = outcome {
            let peer = self
                .slots
                .get(key)
                .map(|slot| slot.peer.to_string())
                .unwrap_or_default();
            tracing::error!(%peer, panic = %panic_message(&*panic), "session panicked; closing its connection");
            self.remove(key, None);
        }
    }

    fn close_all(&mut self, now: Timestamp) {
        let keys: Vec<usize> = self.slots.iter().map(|(key, _)| key).collect();
        for key in keys {
            let mut closing = None;
            self.guarded(key, |this| {
                if let Some(slot) = this.slots.get_mut(key) {
                    closing = Some(shut(&mut slot.conn, now));
                }
            });
            self.remove(key, closing);
        }
    }

    fn accept(&mut self, now: Timestamp) {
        let Some(listener) = &self.listener else {
            return;
        };
        let accepted = accept_ready(
            listener,
            &self.address,
            &self.config,
            &self.shared,
            &mut self.gate,
            now,
        );
        for (socket, peer) in accepted {
            if let Err(e) = self.admit(socket, peer, now) {
                self.shared.release(self.config.max_connections);
                tracing::warn!(error = %e, "could not set up an accepted connection");
            }
        }
        self.update_listener(now);
    }

    fn admit(
        &mut self,
        socket: socket2::Socket,
        peer: Address,
        now: Timestamp,
    ) -> Result<(), SocketError> {
        socket
            .set_nonblocking(true)
            .map_err(|e| SocketError::io("accept", &peer, e))?;
        // Not an accept failure: the connection works without it (and a Unix one has none).
        if let Err(e) = set_nodelay(&socket, &peer) {
            tracing::debug!(error = %e, "TCP_NODELAY not set on an accepted connection");
        }
        // User code (the factory, `handle_start`) may panic: contained to this connection.
        let config = self.config.connection_config();
        let mut conn = start_session(&*self.factory, &peer, config, now)?;
        // The key the slot will have (nothing is inserted before it is).
        let key = self.slots.vacant_key();
        let id = self.next_id;
        self.next_id += 1;
        let poller = Arc::clone(&self.poller);
        self.wakes.wire(&mut conn, key, id, move || {
            let _ = poller.notify();
        });
        let socket = match Registered::new(&self.poller, socket, Event::none(key)) {
            Ok(socket) => socket,
            Err((_, e)) => return Err(SocketError::io("register connection", &peer, e)),
        };
        let slot = Slot {
            socket,
            peer,
            conn,
            armed: (false, false),
            id,
        };
        let inserted = self.slots.insert(slot);
        debug_assert_eq!(inserted, key, "the slab's vacant key was taken in between");
        self.guarded(key, |this| this.drive(key, now));
        Ok(())
    }

    /// One turn for one connection (the core's driving rule), then re-arms its interest and
    /// timer from the connection's `Wait`, or closes it once finished.
    fn drive(&mut self, key: usize, now: Timestamp) {
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };
        let turn = pump(
            &slot.socket,
            &mut slot.conn,
            now,
            self.config.read_budget,
            &mut self.calls,
            &mut self.pool,
        );
        let (wanted, until) = match turn {
            Turn::Closed { reset, reason } => {
                self.remove(key, Some((reset, reason)));
                return;
            }
            Turn::Wait { read, write, until } => ((read, write), until),
        };
        if wanted != slot.armed {
            let interest = Event::new(key, wanted.0, wanted.1);
            if let Err(e) = slot.socket.modify(interest) {
                tracing::warn!(peer = %slot.peer, error = %e, "changing interest failed; closing");
                let closing = shut(&mut slot.conn, now);
                self.remove(key, Some(closing));
                return;
            }
            slot.armed = wanted;
        }
        self.rearm_timer(key, until);
    }

    /// Puts the connection's next deadline into `timers` (lazily: see `LoopTimers`).
    fn rearm_timer(&mut self, key: usize, until: Option<Timestamp>) {
        if self.slots.contains(key) {
            self.timers.rearm(key, until);
        }
    }

    /// Fires every deadline due at `now`, each once: a session that sets its deadline in the
    /// past again is served on the next turn, after the other connections' events.
    fn fire_timers(&mut self, now: Timestamp) {
        for key in self.timers.take_due(now) {
            // The turn runs what is due (`poll_output` handles deadlines itself).
            self.guarded(key, |this| this.drive(key, now));
        }
    }

    /// Drops connection `key` and closes its socket, logging why it ended (`closing`: reset
    /// and reason; `None` after a panic, which was logged already).
    fn remove(&mut self, key: usize, closing: Option<(bool, concurrence_core::EndReason)>) {
        let Some(slot) = self.slots.try_remove(key) else {
            return;
        };
        self.timers.remove(key);
        let reset = closing.as_ref().is_some_and(|(reset, _)| *reset);
        log_end(&slot.peer, closing.as_ref().map(|(_, reason)| reason));
        // Deleted from the poller first, then closed.
        close(slot.socket.into_inner(), reset);
        self.shared.release(self.config.max_connections);
    }
}
