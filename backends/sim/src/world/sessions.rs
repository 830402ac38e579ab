//! Session endpoints: serving and connecting `Session`s, driving each endpoint's `Connection`
//! with the one driving rule, and containing a session's panic to its connection.

use super::*;

impl World {
    /// Serves one `Session` per connection to `address` on `host` (from `factory`, given the
    /// peer's address), each with the connection settings `config`.
    pub(crate) fn serve_session<S, F>(
        &mut self,
        host: HostId,
        address: Address,
        config: ConnectionConfig,
        max_connections: usize,
        backlog: usize,
        mut factory: F,
    ) -> usize
    where
        S: Session + 'static,
        F: FnMut(&Address) -> S + 'static,
    {
        if let Some(old) = self
            .listeners
            .iter_mut()
            .find(|l| l.open && l.address == address)
        {
            // The newest server of an address takes it over.
            old.open = false;
        }
        self.listeners.push(Listener {
            host,
            address,
            kind: ListenerKind::Sessions {
                factory: Box::new(move |peer| Box::new(factory(peer)) as Box<dyn AnySession>),
                config,
                max_connections,
                waiting: VecDeque::new(),
                backlog: backlog.max(1),
            },
            open: true,
            handles: 1,
        });
        self.listeners.len() - 1
    }

    /// Connects from `host` to `address` and runs `session` as the client, with the same
    /// lifecycle as on real sockets (connect timeout and refusal are end reasons).
    pub(crate) fn connect_session<S: Session + 'static>(
        &mut self,
        host: HostId,
        address: &Address,
        session: S,
        config: ConnectionConfig,
    ) -> Client<S> {
        let id = self.conns.len();
        let mut conn: SimConnection =
            Connection::with_config(Box::new(session) as Box<dyn AnySession>, config);
        self.bind_wake(&mut conn, id, 0);
        conn.handle_connecting(self.host_now(host));
        self.conns.push(SimConn {
            ends: [Some(Box::new(Endpoint::new(host, conn))), None],
            links: [Link::default(), Link::default()],
            server_address: address.clone(),
        });
        self.trace.record(
            self.now,
            format_args!("c{id} connect {} -> {address}", self.hosts[host.0].name),
            &[],
        );
        let at = self.now + self.delay();
        self.schedule(at, Event::Syn(id));
        self.pump(id, 0);
        Client {
            id,
            _session: PhantomData,
        }
    }

    /// The client's session and end reason, once its connection ended (taken once).
    pub(crate) fn take_client<S: Session + 'static>(
        &mut self,
        client: &Client<S>,
    ) -> Option<Ended<S>> {
        let end = self.conns.get_mut(client.id)?.ends[0].as_mut()?;
        if !end.done {
            return None;
        }
        let (session, reason) = end.take_session()?.into_parts();
        // The finished client endpoint is not needed any more: reclaim it.
        self.conns[client.id].ends[0] = None;
        let session = session.into_any().downcast::<S>().ok()?;
        Some(Ended {
            session: *session,
            reason: reason?,
        })
    }

    /// How each server-side connection ended so far: (the listener's address, the kind).
    #[must_use]
    pub(crate) fn server_ends(&self) -> &[(Address, EndKind)] {
        &self.server_ends
    }

    /// Binds a session's `Notify` (if it has one) to a turn of endpoint `side` of `id`.
    pub(super) fn bind_wake(&self, conn: &mut SimConnection, id: usize, side: usize) {
        if conn.takes_events() {
            let wakes = std::sync::Arc::clone(&self.wakes);
            conn.set_waker(move || {
                wakes
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((id, side));
            });
        }
    }

    /// The client session of connection `id` with its end reason once it ended; until then
    /// the task is woken when it does (`concurrence_sim::connect_session`).
    pub(crate) fn poll_client<S: Session + 'static>(
        &mut self,
        client: &Client<S>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Ended<S>>> {
        let done = self.conns[client.id].ends[0]
            .as_ref()
            .is_none_or(|e| e.done);
        if done {
            Poll::Ready(self.take_client(client))
        } else {
            self.session_waiters.insert(client.id, cx.waker().clone());
            Poll::Pending
        }
    }

    /// The drain rule for one endpoint: receive, send, shut down, finish, re-arm its timer.
    /// Runs `work` (which calls into the session of connection `id`, side `side`) with a
    /// panic contained to that connection, as the socket backends contain it: the session is
    /// dropped and its socket closed (a reset if input was left unread), and the run goes on.
    pub(super) fn guarded(&mut self, id: usize, side: usize, work: impl FnOnce(&mut World)) {
        let outcome = catch_unwind(AssertUnwindSafe(|| work(&mut *self)));
        let Err(panic) = outcome else {
            return;
        };
        let message = concurrence_socket::panic_message(&*panic);
        self.trace.record(
            self.now,
            format_args!("c{id} side {side} session panicked: {message}"),
            &[],
        );
        let Some(end) = self.conns[id].ends[side].as_mut() else {
            return;
        };
        if end.done {
            return;
        }
        end.done = true;
        end.drop_session();
        let segment = if end.rst_in {
            None
        } else if !end.rcvbuf.is_empty() {
            Some(Segment::Rst)
        } else if !end.fin_sent {
            end.fin_sent = true;
            Some(Segment::Fin)
        } else {
            None
        };
        if let Some(segment) = segment {
            self.send_segment(id, side, segment);
        }
        if side == 1 {
            let address = self.conns[id].server_address.clone();
            self.admit_waiting(&address);
        }
    }

    pub(super) fn pump(&mut self, id: usize, side: usize) {
        if self.conns[id].ends[side]
            .as_ref()
            .is_some_and(|e| e.driver.is_raw())
        {
            self.pump_raw(id, side);
            return;
        }
        self.guarded(id, side, |world| world.pump_session(id, side));
    }

    pub(super) fn pump_session(&mut self, id: usize, side: usize) {
        let Some(host) = self.conns[id].ends[side].as_ref().map(|e| e.host) else {
            return;
        };
        let now = self.host_now(host);
        let (max_read, max_segment, window) = (
            self.faults.max_read,
            self.faults.max_segment,
            self.faults.receive_window,
        );
        let peer_buffered = self.conns[id].ends[1 - side]
            .as_ref()
            .map_or(0, |e| e.rcvbuf.len());
        let mut outgoing: Vec<Segment> = Vec::new();
        let mut ended: Option<(EndKind, bool)> = None;
        let mut arm_timer: Option<Timestamp> = None;
        {
            let SimConn { ends, links, .. } = &mut self.conns[id];
            let Some(end) = ends[side].as_mut() else {
                return;
            };
            if end.done {
                return;
            }
            let Some(conn) = end.driver.conn_mut() else {
                return;
            };
            if end.rst_in {
                conn.handle_io_error(now, reset_error());
            }
            let mut in_flight = links[side].bytes_in_flight;
            // The one driving rule: drain `poll_output` until it waits or closes.
            let closed_with = loop {
                match conn.poll_output(now) {
                    Output::Receive(room) => {
                        if end.rcvbuf.is_empty() {
                            if end.fin_in && !end.fin_told {
                                end.fin_told = true;
                                conn.handle_peer_closed(now);
                            } else {
                                conn.handle_blocked(Direction::Read);
                            }
                            continue;
                        }
                        let n = room
                            .len()
                            .min(end.rcvbuf.len())
                            .min(self.rng.borrow_mut().size(max_read));
                        take_front(&mut end.rcvbuf, &mut room[..n]);
                        if self.trace.lines().is_some() {
                            // How the session got its input (kept traces only: a shrunk
                            // run's trace shows the split that broke a parser).
                            self.trace.record(
                                self.now,
                                format_args!(
                                    "c{id} side {side} session reads {n} bytes at {}: {}",
                                    end.delivered,
                                    crate::trace::escaped(&room[..n])
                                ),
                                &[],
                            );
                        }
                        end.delivered += n as u64;
                        conn.handle_received(now, n);
                    }
                    Output::Transmit(pending) => {
                        let room = window.saturating_sub(in_flight + peer_buffered);
                        if room == 0 {
                            conn.handle_blocked(Direction::Write);
                            continue;
                        }
                        let n = pending
                            .len()
                            .min(room)
                            .min(self.rng.borrow_mut().size(max_segment));
                        outgoing.push(Segment::Data(pending[..n].to_vec()));
                        in_flight += n;
                        conn.handle_sent(now, n);
                    }
                    Output::ShutdownWrite => {
                        outgoing.push(Segment::Fin);
                        end.fin_sent = true;
                    }
                    Output::Wait { until, .. } => {
                        if let Some(at) = until {
                            // Lazily: a deadline that moved later keeps the earlier timer,
                            // which fires, finds nothing due, and the real one is armed then.
                            if end.timer.is_none_or(|t| at < t) {
                                end.timer = Some(at);
                                arm_timer = Some(at);
                            }
                        }
                        break None;
                    }
                    Output::Close { reset, reason } => break Some((reset, reason.kind())),
                    Output::Ended(reason) => break Some((false, reason.kind())),
                    _ => conn.handle_shutdown(now),
                }
            };
            if let Some((aborted, kind)) = closed_with {
                end.done = true;
                // Unread input turns a close into a reset, as on a real stack.
                let reset = aborted || !end.rcvbuf.is_empty() || end.rst_in;
                ended = Some((kind, reset));
                if reset && !end.rst_in {
                    outgoing.push(Segment::Rst);
                } else if !end.fin_sent && !end.rst_in {
                    outgoing.push(Segment::Fin);
                }
            }
        }
        for segment in outgoing {
            self.send_segment(id, side, segment);
        }
        if let Some(at) = arm_timer {
            // The deadline is on the host's clock; the event queue runs on the network's.
            let at = self.global(host, at).max(self.now);
            self.schedule(at, Event::Timer(id, side));
        }
        if let Some((kind, reset)) = ended {
            self.trace.record(
                self.now,
                format_args!(
                    "c{id} side {side} ended {kind}{}",
                    if reset { " (rst)" } else { "" }
                ),
                &[],
            );
            if side == 1 {
                let address = self.conns[id].server_address.clone();
                self.server_ends.push((address.clone(), kind));
                self.admit_waiting(&address);
            }
        }
    }
}
