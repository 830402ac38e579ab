//! One completion-based event loop: an io_uring ([`Ring`]), maybe a listener, and the
//! connections it serves, each a core `Connection` driving a `Session`. This file only moves
//! bytes and waits; the driving rule is the core's `poll_output`, drained until `Wait`.
//!
//! How the rule meets completions: `Output::Receive` with no receive armed arms a multishot
//! receive (each arrival fills a buffer the kernel picks from the provided ring) and tells the
//! connection the read side is blocked; each completion `feed`s its bytes in (what the
//! connection does not take now waits in the slot's `input`, in order, for the next turn) and
//! gives the buffer back. The first turn that ends in `Wait` without wanting input
//! (back-pressure) cancels the multishot receive, and the connection is *paced* from then on:
//! single-shot receives of at most the room it offers (first waiting for data when the last
//! one drained the socket), so its input is bounded exactly as on the polling backend. Only
//! the bytes the multishot receive delivered before its cancellation took effect can exceed
//! the room; they wait in `input`, once per connection.
//! `Output::Transmit` with no send in flight copies the bytes into an owned send buffer and
//! submits it; its completion reports `handle_sent`. So a connection holds at most one receive
//! and one send in the kernel. A connection closes only once its operations completed
//! (cancelled if need be), so no slot is reused while the kernel may still name it. The listener is watched with a oneshot poll,
//! re-armed only while the accept gate allows (the cap, the rest after `EMFILE`). Timers are
//! the connections' `Wait::until`, in an ordered set; the wait for completions carries the
//! earliest as its timeout. Application wake-ups (`Notify`) and shutdown arrive on an event
//! fd watched by a multishot poll.

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use concurrence_core::{
    Address, BufferPool, Connection, Direction, EndReason, Output, Session, Timestamp,
};
use slab::Slab;

use concurrence_os::sockaddr::set_nodelay;
use concurrence_os::{
    IoCounts, LoopShared, LoopTimers, LoopWakes, accept_ready, clock, log_end, start_session,
};
use concurrence_socket::{AcceptGate, ServerConfig, SocketError, panic_message};

use crate::inbox::Inbox;
use crate::ring::{Completion, Op, Ring};

/// The listener's key in completions.
const LISTENER: u32 = u32::MAX;
/// The wake-up fd's key in completions.
const WAKE: u32 = u32::MAX - 1;
/// The most bytes one send submission carries (the rest goes in the next).
const MAX_SEND: usize = 256 * 1024;
/// Send buffers a loop keeps for reuse.
const SPARE_SEND_BUFFERS: usize = 64;

struct Slot<S> {
    socket: socket2::Socket,
    peer: Address,
    conn: Connection<S>,
    /// Unique among this loop's connections: a late application wake-up for a finished
    /// connection must not reach the next one in its slot.
    id: u64,
    /// The multishot receive armed (its `user_data`, to cancel), and whether a cancellation
    /// of it is on its way.
    recv: Option<u64>,
    recv_cancelling: bool,
    /// Back-pressure stopped this connection's input once: from then on it receives with
    /// single-shot receives of at most its room (exact back-pressure), not the multishot one.
    paced: bool,
    /// The last single-shot receive asked for this many bytes...
    recv_asked: usize,
    /// ...and got fewer: the socket was drained, so the next one waits for data first.
    drained: bool,
    send: bool,
    connecting: bool,
    /// Received bytes the connection did not take yet, in order, and an end of stream behind
    /// them.
    input: Inbox,
    /// Finished: waiting for its operations' completions before the socket closes (with a
    /// reset?, and why: `None` after a panic, which was logged already).
    closing: Option<(bool, Option<EndReason>)>,
}

impl<S> Slot<S> {
    fn busy(&self) -> bool {
        self.recv.is_some() || self.send || self.connecting
    }
}

/// Wakes a loop from another thread: its event fd, which a multishot poll watches.
#[derive(Clone)]
pub(crate) struct LoopWake(Arc<OwnedFd>);

impl LoopWake {
    pub(crate) fn new() -> io::Result<LoopWake> {
        let fd = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )?;
        Ok(LoopWake(Arc::new(fd)))
    }

    pub(crate) fn wake(&self) {
        let _ = rustix::io::write(&*self.0, &1u64.to_ne_bytes());
    }

    pub(crate) fn drain(&self) {
        let mut count = [0u8; 8];
        let _ = rustix::io::read(&*self.0, &mut count);
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Makes a server's session for each accepted connection.
pub(crate) type Factory<S> = Arc<dyn Fn(&Address) -> S + Send + Sync>;

pub(crate) struct EventLoop<S> {
    /// Declared first so that it drops first: it cancels and reaps every operation before
    /// the sockets and buffers below go away.
    ring: Ring,
    listener: Option<socket2::Socket>,
    /// The listener's poll in flight (its `user_data`, to cancel).
    listener_poll: Option<u64>,
    factory: Option<Factory<S>>,
    address: Address,
    slots: Slab<Slot<S>>,
    timers: LoopTimers,
    config: ServerConfig,
    shared: Arc<LoopShared>,
    draining_until: Option<Timestamp>,
    gate: AcceptGate,
    calls: IoCounts,
    pool: BufferPool,
    spare_sends: Vec<Vec<u8>>,
    wake: LoopWake,
    wake_armed: bool,
    wakes: LoopWakes,
    next_id: u64,
    /// Connections that finished (kept only by the client driver, to return the session).
    finished: Option<Vec<(Connection<S>, EndReason)>>,
}

impl<S: Session> EventLoop<S> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        ring: Ring,
        listener: Option<socket2::Socket>,
        factory: Option<Factory<S>>,
        address: Address,
        config: ServerConfig,
        shared: Arc<LoopShared>,
        wake: LoopWake,
    ) -> Self {
        EventLoop {
            ring,
            listener,
            listener_poll: None,
            factory,
            address,
            slots: Slab::new(),
            timers: LoopTimers::new(),
            gate: AcceptGate::new(&config),
            pool: BufferPool::new(config.pooled_buffers),
            config,
            shared,
            draining_until: None,
            calls: IoCounts::default(),
            spare_sends: Vec::new(),
            wake,
            wake_armed: false,
            wakes: LoopWakes::default(),
            next_id: 0,
            finished: None,
        }
    }

    /// Keeps finished connections (the client driver takes its session back).
    pub(crate) fn keep_finished(&mut self) {
        self.finished = Some(Vec::new());
    }

    pub(crate) fn take_finished(&mut self) -> Vec<(Connection<S>, EndReason)> {
        self.finished.take().unwrap_or_default()
    }

    /// Serves until shutdown, then until the connections finish or the grace period ends. A
    /// loop without a listener (the client) ends once its connections have.
    pub(crate) fn run(&mut self) -> Result<(), SocketError> {
        let address = self.address.clone();
        let io_err = move |op: &'static str, e: io::Error| SocketError::io(op, &address, e);
        loop {
            let now = clock::now();
            if self.shared.stop.load(Ordering::SeqCst) && self.draining_until.is_none() {
                self.stop_accepting();
                self.draining_until = Some(now + self.config.shutdown_grace);
            }
            let serving = self.listener.is_some() || self.listener_poll.is_some();
            if self.slots.is_empty() && (self.draining_until.is_some() || !serving) {
                self.shared.add_calls(&mut self.calls);
                return Ok(());
            }
            if let Some(until) = self.draining_until {
                if now >= until {
                    self.close_all(now);
                }
            }
            if !self.wake_armed {
                self.ring
                    .poll(self.wake.fd(), WAKE, libc::POLLIN as u32, true)
                    .map_err(|e| io_err("watch wake-ups", e))?;
                self.wake_armed = true;
            }
            self.update_listener(now);
            let wake_at = self
                .timers
                .first()
                .into_iter()
                // Past it, the connections are closing: what is left to wait for is their
                // cancelled operations' completions.
                .chain(self.draining_until.filter(|until| *until > now))
                .chain(self.gate.resting(now))
                .min();
            let timeout = wake_at.map(|t| t.saturating_duration_since(now));
            self.shared.add_calls(&mut self.calls);
            self.ring.wait(timeout).map_err(|e| io_err("wait", e))?;
            let now = clock::now();
            while let Some(completion) = self.ring.next() {
                self.complete(completion, now);
            }
            self.fire_timers(clock::now());
            self.serve_wakes(clock::now());
        }
    }

    /// Ends every connection with the loop's own failure (its ring failed): each is told the
    /// error, and its socket closes.
    pub(crate) fn fail_all(&mut self, error: &SocketError) {
        let now = clock::now();
        for (_, slot) in std::mem::take(&mut self.slots) {
            let mut conn = slot.conn;
            conn.handle_io_error(now, io::Error::other(error.to_string()));
            let (_, reason) = shut(&mut conn, now);
            log_end(&slot.peer, Some(&reason));
            match &mut self.finished {
                Some(finished) => finished.push((conn, reason)),
                None => self.shared.release(self.config.max_connections),
            }
        }
        self.timers.clear();
    }

    /// Handles one completion.
    fn complete(&mut self, completion: Completion, now: Timestamp) {
        match (completion.op, completion.key) {
            (Op::Cancel, _) => {}
            (Op::Poll, WAKE) => {
                self.wake.drain();
                if !completion.more {
                    self.wake_armed = false;
                }
            }
            (Op::Poll, LISTENER) => {
                self.listener_poll = None;
                if completion.result.is_ok() && self.listener.is_some() {
                    self.accept(now);
                }
            }
            (op, key) => {
                let key = key as usize;
                // Feeding input runs the session: a panic there is contained to its connection.
                self.guarded(key, |this| {
                    this.connection_completed(key, op, completion, now)
                });
            }
        }
    }

    fn connection_completed(&mut self, key: usize, op: Op, completion: Completion, now: Timestamp) {
        let Completion {
            result,
            buffer,
            sent,
            more: completion_more,
            ..
        } = completion;
        if let Some(mut bytes) = sent {
            if self.spare_sends.len() < SPARE_SEND_BUFFERS {
                bytes.clear();
                self.spare_sends.push(bytes);
            }
        }
        let Some(slot) = self.slots.get_mut(key) else {
            if let Some(bid) = buffer {
                self.ring.give_back(bid);
            }
            return;
        };
        let cancelled = |r: &io::Result<usize>| {
            r.as_ref()
                .is_err_and(|e| e.raw_os_error() == Some(libc::ECANCELED))
        };
        match op {
            Op::Recv => {
                if !completion_more {
                    slot.recv = None;
                    slot.recv_cancelling = false;
                }
                let closing = slot.closing.is_some();
                match (result, buffer) {
                    (Ok(n), Some(bid)) => {
                        self.calls.reads += 1;
                        slot.drained = n < slot.recv_asked;
                        if !closing {
                            let conn = &mut slot.conn;
                            slot.input
                                .arrived(self.ring.received(bid, n), |bytes| conn.feed(now, bytes));
                        }
                        self.ring.give_back(bid);
                    }
                    (Ok(_), None) => {
                        if !closing && slot.input.ended() {
                            slot.conn.handle_peer_closed(now);
                        }
                    }
                    (Err(e), _) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        // Every provided buffer is out: the next turn arms the receive again
                        // (they come back as this loop reaps their completions).
                        self.calls.empty_reads += 1;
                    }
                    (r, _) if cancelled(&r) => {}
                    (Err(e), _) => {
                        if !closing {
                            slot.conn.handle_io_error(now, e);
                        }
                    }
                }
            }
            Op::Send => {
                slot.send = false;
                self.calls.sends += 1;
                if slot.closing.is_none() {
                    match result {
                        Ok(n) => slot.conn.handle_sent(now, n),
                        r if cancelled(&r) => {}
                        Err(e) => slot.conn.handle_io_error(now, e),
                    }
                }
            }
            Op::Connect => {
                slot.connecting = false;
                if slot.closing.is_none() {
                    match result {
                        Ok(_) => {
                            if let Err(e) = set_nodelay(&slot.socket, &slot.peer) {
                                tracing::debug!(error = %e, "TCP_NODELAY not set on a connection");
                            }
                            slot.conn.handle_start(now);
                        }
                        Err(e) => slot.conn.handle_io_error(now, e),
                    }
                }
            }
            Op::Poll | Op::Cancel => {}
        }
        if slot.closing.is_some() {
            if !slot.busy() {
                self.finish_close(key);
            }
            return;
        }
        self.drive(key, now);
    }

    /// Gives a turn to every connection the application woke since the last one.
    fn serve_wakes(&mut self, now: Timestamp) {
        for (key, id) in self.wakes.take() {
            if self.slots.get(key).is_some_and(|s| s.id == id) {
                self.guarded(key, |this| this.drive(key, now));
            }
        }
    }

    fn stop_accepting(&mut self) {
        // The listener's file closes once its poll is cancelled too (a poll holds it open).
        if let Some(data) = self.listener_poll.take() {
            if let Err(e) = self.ring.cancel(data) {
                tracing::warn!(error = %e, "cannot cancel the listener's poll");
            }
        }
        self.listener = None;
    }

    /// Watches the listener (a oneshot poll) only while this server may accept.
    fn update_listener(&mut self, now: Timestamp) {
        let live = self.shared.live.load(Ordering::SeqCst);
        let want = self.gate.may_accept(now, live);
        let Some(listener) = &self.listener else {
            return;
        };
        if want && self.listener_poll.is_none() {
            match self
                .ring
                .poll(listener.as_raw_fd(), LISTENER, libc::POLLIN as u32, false)
            {
                Ok(data) => self.listener_poll = Some(data),
                Err(e) => {
                    tracing::warn!(address = %self.address, error = %e, "cannot watch the listener")
                }
            }
        }
        if !want && live >= self.config.max_connections && self.listener_poll.is_none() {
            tracing::debug!(address = %self.address, limit = self.config.max_connections,
                "max_connections reached: new connections wait in the backlog");
        }
    }

    /// Runs `work` for connection `key`, containing a panic from user session code to that
    /// connection: it is logged and the connection closed; the loop goes on.
    fn guarded(&mut self, key: usize, work: impl FnOnce(&mut Self)) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&mut *self)));
        if let Err(panic) = outcome {
            let peer = self
                .slots
                .get(key)
                .map(|slot| slot.peer.to_string())
                .unwrap_or_default();
            let message = panic_message(&*panic);
            tracing::error!(%peer, panic = %message, "session panicked; closing its connection");
            self.begin_close(key, false, None);
        }
    }

    fn close_all(&mut self, now: Timestamp) {
        let keys: Vec<usize> = self
            .slots
            .iter()
            .filter(|(_, slot)| slot.closing.is_none())
            .map(|(key, _)| key)
            .collect();
        for key in keys {
            let mut closing = (false, EndReason::Shutdown);
            self.guarded(key, |this| {
                if let Some(slot) = this.slots.get_mut(key) {
                    closing = shut(&mut slot.conn, now);
                }
            });
            self.begin_close(key, closing.0, Some(closing.1));
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
    }

    fn admit(
        &mut self,
        socket: socket2::Socket,
        peer: Address,
        now: Timestamp,
    ) -> Result<(), SocketError> {
        if let Err(e) = set_nodelay(&socket, &peer) {
            tracing::debug!(error = %e, "TCP_NODELAY not set on an accepted connection");
        }
        let Some(factory) = self.factory.clone() else {
            return Ok(());
        };
        // User code (the factory, `handle_start`) may panic: contained to this connection.
        let conn = start_session(&*factory, &peer, self.config.connection_config(), now)?;
        let key = self.insert(socket, peer, conn);
        self.guarded(key, |this| this.drive(key, now));
        Ok(())
    }

    /// Adds a connection (accepted, or the client's) and wires its application wake-ups.
    pub(crate) fn insert(
        &mut self,
        socket: socket2::Socket,
        peer: Address,
        mut conn: Connection<S>,
    ) -> usize {
        let key = self.slots.vacant_key();
        let id = self.next_id;
        self.next_id += 1;
        let wake = self.wake.clone();
        self.wakes.wire(&mut conn, key, id, move || wake.wake());
        let inserted = self.slots.insert(Slot {
            socket,
            peer,
            conn,
            id,
            recv: None,
            recv_cancelling: false,
            paced: false,
            recv_asked: 0,
            drained: false,
            send: false,
            connecting: false,
            input: Inbox::default(),
            closing: None,
        });
        debug_assert_eq!(inserted, key, "the slab's vacant key was taken in between");
        key
    }

    /// Starts connecting the client's connection `key` to `target`.
    pub(crate) fn connect(&mut self, key: usize, target: socket2::SockAddr, now: Timestamp) {
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };
        let fd = slot.socket.as_raw_fd();
        match self.ring.connect(fd, key_u32(key), target) {
            Ok(()) => slot.connecting = true,
            Err(e) => slot.conn.handle_io_error(now, e),
        }
        self.guarded(key, |this| this.drive(key, now));
    }

    /// One turn of the driving rule for connection `key`, then its next deadline.
    fn drive(&mut self, key: usize, now: Timestamp) {
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };
        if slot.closing.is_some() {
            return;
        }
        let fd = slot.socket.as_raw_fd();
        let ring = &mut self.ring;
        slot.conn.take_buffers_from(&mut self.pool);
        let turn = loop {
            match slot.conn.poll_output(now) {
                Output::Receive(room) => {
                    if !slot.input.is_empty() {
                        let (n, end_now) = slot.input.hand_over(room);
                        slot.conn.handle_received(now, n);
                        if end_now {
                            slot.conn.handle_peer_closed(now);
                        }
                    } else if slot.recv.is_some() || slot.connecting {
                        slot.conn.handle_blocked(Direction::Read);
                    } else {
                        let armed = if !slot.paced {
                            ring.recv_multishot(fd, key_u32(key))
                        } else {
                            slot.recv_asked = room.len().min(crate::RECV_BUFFER_SIZE);
                            ring.recv(fd, key_u32(key), slot.recv_asked, slot.drained)
                        };
                        match armed {
                            Ok(data) => {
                                slot.recv = Some(data);
                                slot.conn.handle_blocked(Direction::Read);
                            }
                            Err(e) => slot.conn.handle_io_error(now, e),
                        }
                    }
                }
                Output::Transmit(bytes) => {
                    if slot.send || slot.connecting {
                        slot.conn.handle_blocked(Direction::Write);
                    } else {
                        let mut owned = self.spare_sends.pop().unwrap_or_default();
                        owned.extend_from_slice(&bytes[..bytes.len().min(MAX_SEND)]);
                        match ring.send(fd, key_u32(key), owned) {
                            Ok(()) => {
                                slot.send = true;
                                slot.conn.handle_blocked(Direction::Write);
                            }
                            Err(e) => slot.conn.handle_io_error(now, e),
                        }
                    }
                }
                Output::ShutdownWrite => {
                    if let Err(e) = slot.socket.shutdown(Shutdown::Write) {
                        if e.kind() != io::ErrorKind::NotConnected {
                            slot.conn.handle_io_error(now, e);
                        }
                    }
                }
                Output::Wait { read, until, .. } => {
                    // Back-pressure: stop a multishot receive until the connection wants input
                    // again, and pace the connection from now on (a single-shot receive asks
                    // for no more than the room it was offered, so it needs no cancelling).
                    if let (false, Some(data), false, false) =
                        (read, slot.recv, slot.recv_cancelling, slot.paced)
                    {
                        slot.paced = true;
                        match ring.cancel(data) {
                            Ok(()) => slot.recv_cancelling = true,
                            Err(e) => tracing::warn!(error = %e, "cannot pause a receive"),
                        }
                    }
                    break Ok(until);
                }
                Output::Close { reset, reason } => break Err((reset, reason.clone())),
                Output::Ended(reason) => break Err((false, reason.clone())),
                // An output this driver does not know (a newer core): stop the connection
                // rather than ignore what it asks.
                _ => slot.conn.handle_shutdown(now),
            }
        };
        slot.conn.release_idle_buffers_to(&mut self.pool);
        match turn {
            Ok(until) => self.rearm_timer(key, until),
            Err((reset, reason)) => self.begin_close(key, reset, Some(reason)),
        }
    }

    /// Puts the connection's next deadline into `timers` (lazily: see `LoopTimers`).
    fn rearm_timer(&mut self, key: usize, until: Option<Timestamp>) {
        if self.slots.contains(key) {
            self.timers.rearm(key, until);
        }
    }

    /// Fires every deadline due at `now`, each once.
    fn fire_timers(&mut self, now: Timestamp) {
        for key in self.timers.take_due(now) {
            // The turn runs what is due (`poll_output` handles deadlines itself).
            self.guarded(key, |this| this.drive(key, now));
        }
    }

    /// The connection finished: cancel what it has in flight, close once that completed.
    fn begin_close(&mut self, key: usize, reset: bool, reason: Option<EndReason>) {
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };
        if slot.closing.is_some() {
            return;
        }
        self.timers.remove(key);
        if reset {
            let _ = slot.socket.set_linger(Some(std::time::Duration::ZERO));
        }
        slot.closing = Some((reset, reason));
        if slot.busy() {
            if let Err(e) = self.ring.cancel_fd(slot.socket.as_raw_fd()) {
                tracing::warn!(error = %e, "cannot cancel a finished connection's operations");
            }
        } else {
            self.finish_close(key);
        }
    }

    /// Drops connection `key` (its operations all completed) and closes its socket.
    fn finish_close(&mut self, key: usize) {
        let Some(slot) = self.slots.try_remove(key) else {
            return;
        };
        let reason = slot.closing.and_then(|(_, reason)| reason);
        log_end(&slot.peer, reason.as_ref());
        drop(slot.socket);
        match &mut self.finished {
            Some(finished) => finished.push((slot.conn, reason.unwrap_or(EndReason::Shutdown))),
            None => self.shared.release(self.config.max_connections),
        }
    }
}

/// A slot key as a completion key (slots never reach `u32::MAX - 1`: the cap is far lower,
/// and a larger key would be refused by `Slab` memory long before).
fn key_u32(key: usize) -> u32 {
    u32::try_from(key).unwrap_or(u32::MAX - 2)
}

/// Ends `conn` for the driver's own reason (shutdown) and returns what to close with.
fn shut<S: Session>(conn: &mut Connection<S>, now: Timestamp) -> (bool, EndReason) {
    conn.handle_shutdown(now);
    match conn.poll_output(now) {
        Output::Close { reset, reason } => (reset, reason.clone()),
        Output::Ended(reason) => (false, reason.clone()),
        _ => (false, EndReason::Shutdown),
    }
}
