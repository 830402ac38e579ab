//! The event queue and the links: scheduling, delays, segments sent, and dispatching each
//! event that comes due.

use super::*;

impl World {
    /// Takes the next event due at or before `end` off the queue and moves the clock to it;
    /// `None` when there is none. Timers of finished endpoints are dropped on the way.
    pub(crate) fn next_event(&mut self, end: Timestamp) -> Option<Event> {
        let woken = std::mem::take(
            &mut *self
                .wakes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for (id, side) in woken {
            self.schedule(self.now, Event::Notify(id, side));
        }
        loop {
            let key = self.queue.peek()?.key;
            if key.0 > end {
                return None;
            }
            let event = self.queue.pop()?.event;
            if self.is_stale(event) {
                // A timer of a finished endpoint: nothing happens, and time does not move.
                continue;
            }
            self.now = self.now.max(key.0);
            return Some(event);
        }
    }

    /// Moves the clock forward to `at` (never back).
    pub(crate) fn advance_to(&mut self, at: Timestamp) {
        self.now = self.now.max(at);
    }

    /// The run's generator (for `buggify` and the recorded choices).
    pub(crate) fn rng(&self) -> &SharedRng {
        &self.rng
    }

    /// A draw from the run's RNG, below `n` (the executor's choice of the next task).
    pub(crate) fn draw(&mut self, n: u64) -> u64 {
        self.rng.borrow_mut().below(n)
    }

    /// Records a line in the trace.
    pub(crate) fn record(&mut self, line: std::fmt::Arguments<'_>) {
        self.trace.record(self.now, line, &[]);
    }

    /// Records that task `task` was polled on host `host` (the hottest event: no formatting
    /// unless lines are kept).
    pub(crate) fn record_poll(&mut self, task: u64, host: usize) {
        self.trace
            .record_fields(self.now, "poll", &[task, host as u64], &[], || {
                format!("t{task} polled on h{host}")
            });
    }

    pub(super) fn is_stale(&self, event: Event) -> bool {
        match event {
            Event::Timer(id, side) => self.conns[id].ends[side].as_ref().is_none_or(|e| e.done),
            Event::Wake(sleep) => !self.sleeps.contains_key(&sleep),
            Event::Notify(id, side) => self.conns[id].ends[side].as_ref().is_none_or(|e| e.done),
            _ => false,
        }
    }

    pub(super) fn delay(&mut self) -> Duration {
        let jitter = u64::try_from(self.faults.jitter.as_nanos()).unwrap_or(u64::MAX);
        self.faults.latency
            + Duration::from_nanos(self.rng.borrow_mut().below(jitter.saturating_add(1)))
    }

    pub(super) fn schedule(&mut self, at: Timestamp, event: Event) {
        // Events on the same instant run in an order drawn from the RNG.
        let tiebreak = self.rng.borrow_mut().next_u64();
        self.next_seq += 1;
        self.queue.push(Queued {
            key: (at, tiebreak, self.next_seq),
            event,
        });
    }

    pub(super) fn blocked(&self, id: usize, from_side: usize) -> bool {
        let conn = &self.conns[id];
        let host_of = |side: usize| conn.ends[side].as_ref().map(|e| e.host);
        match (host_of(from_side), host_of(1 - from_side)) {
            (Some(a), Some(b)) => self.partitions.contains(&(a, b)),
            _ => false,
        }
    }

    /// Puts a segment on the link from `side`: it leaves once the link has sent what was
    /// before it (at the link's bandwidth) and arrives after the link's delay, in order.
    pub(super) fn send_segment(&mut self, id: usize, side: usize, segment: Segment) {
        let hosts = (
            self.conns[id].ends[side].as_ref().map(|e| e.host),
            self.conns[id].ends[1 - side].as_ref().map(|e| e.host),
        );
        let profile = match hosts {
            (Some(from), Some(to)) => self.links.get(&(from, to)).copied(),
            _ => None,
        }
        .unwrap_or(LinkProfile {
            latency: self.faults.latency,
            jitter: self.faults.jitter,
            bandwidth: self.faults.bandwidth,
        });
        let jitter = u64::try_from(profile.jitter.as_nanos()).unwrap_or(u64::MAX);
        let delay = profile.latency
            + Duration::from_nanos(self.rng.borrow_mut().below(jitter.saturating_add(1)));
        let len = match &segment {
            Segment::Data(bytes) => bytes.len(),
            Segment::Fin | Segment::Rst | Segment::Fd(_) => 0,
        };
        let now = self.now;
        let link = &mut self.conns[id].links[side];
        let departs = match profile.bandwidth {
            Some(bytes_per_second) if bytes_per_second > 0 => {
                let nanos = (len as u128 * 1_000_000_000) / u128::from(bytes_per_second);
                let start = now.max(link.busy_until);
                let done = start.saturating_add(Duration::from_nanos(
                    u64::try_from(nanos).unwrap_or(u64::MAX),
                ));
                link.busy_until = done;
                done
            }
            _ => now,
        };
        let at = (departs + delay).max(link.last_at);
        link.last_at = at;
        link.bytes_in_flight += len;
        link.in_flight.push_back((at, segment));
        self.schedule(at, Event::Arrive(id, side));
    }

    pub(crate) fn handle(&mut self, event: Event) {
        self.handle_event(event);
        if !self.session_waiters.is_empty() {
            let conns = &self.conns;
            self.session_waiters.retain(|id, waker| {
                let done = conns[*id].ends[0].as_ref().is_none_or(|e| e.done);
                if done {
                    waker.wake_by_ref();
                }
                !done
            });
        }
    }

    pub(super) fn handle_event(&mut self, event: Event) {
        match event {
            Event::Syn(id) => self.on_syn(id),
            Event::SynAck(id) => {
                self.trace
                    .record(self.now, format_args!("c{id} established"), &[]);
                let local = self.conns[id].ends[0]
                    .as_ref()
                    .map_or(self.now, |e| self.host_now(e.host));
                let client = self.conns[id].ends[0].as_mut();
                match client {
                    Some(end) if !end.done => {
                        if let Some(raw) = end.driver.raw_mut() {
                            raw.connect = ConnectState::Established;
                            raw.wake_all();
                        }
                        self.guarded(id, 0, |world| {
                            if let Some(conn) = world.conns[id].ends[0]
                                .as_mut()
                                .and_then(|e| e.driver.conn_mut())
                            {
                                conn.handle_start(local);
                            }
                        });
                        self.pump(id, 0);
                    }
                    // The client gave up meanwhile: its kernel answers with a reset.
                    _ => self.send_segment(id, 0, Segment::Rst),
                }
            }
            Event::Refuse(id) => {
                self.trace
                    .record(self.now, format_args!("c{id} refused"), &[]);
                let local = self.conns[id].ends[0]
                    .as_ref()
                    .map_or(self.now, |e| self.host_now(e.host));
                if let Some(end) = self.conns[id].ends[0].as_mut() {
                    if let Some(conn) = end.driver.conn_mut() {
                        conn.handle_io_error(local, std::io::ErrorKind::ConnectionRefused.into());
                    }
                    if let Some(raw) = end.driver.raw_mut() {
                        raw.connect = ConnectState::Refused;
                        end.done = true;
                        raw.wake_all();
                    }
                }
                self.pump(id, 0);
            }
            Event::Arrive(id, from) => self.on_arrive(id, from),
            Event::Wake(sleep) => {
                if let Some(slot) = self.sleeps.get_mut(&sleep) {
                    slot.fired = true;
                    if let Some(waker) = slot.waker.take() {
                        waker.wake();
                    }
                }
            }
            Event::Notify(id, side) => {
                self.trace
                    .record(self.now, format_args!("c{id} side {side} woken"), &[]);
                self.pump(id, side);
            }
            Event::ShutDown(index) => self.on_shut_down(index),
            Event::Timer(id, side) => {
                let now = self.conns[id].ends[side]
                    .as_ref()
                    .map_or(self.now, |e| self.host_now(e.host));
                if let Some(end) = self.conns[id].ends[side].as_mut() {
                    if end.timer.is_some_and(|t| t <= now) {
                        end.timer = None;
                    }
                }
                // The pump's `poll_output` runs what is due.
                self.pump(id, side);
            }
        }
    }

    /// Takes every waker the world holds, so that the tasks they keep alive can be dropped
    /// (outside the world's borrow) when the network is.
    pub(crate) fn take_wakers(&mut self) -> Vec<Waker> {
        let mut wakers = Vec::new();
        for conn in &mut self.conns {
            for end in conn.ends.iter_mut().flatten() {
                if let Some(raw) = end.driver.raw_mut() {
                    wakers.extend(raw.reader.take());
                    wakers.extend(raw.writer.take());
                }
            }
        }
        for listener in &mut self.listeners {
            if let ListenerKind::Sockets(backlog) = &mut listener.kind {
                wakers.extend(backlog.waker.take());
            }
        }
        for slot in self.sleeps.values_mut() {
            wakers.extend(slot.waker.take());
        }
        wakers
    }
}
