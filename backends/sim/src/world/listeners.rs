//! Handshakes and session listeners: SYNs, the backlog at `max_connections`, serving a
//! connection with a session, the live count per address and the shutdown grace.

use super::*;

impl World {
    /// Turns the established server end of connection `id` into a session of the listener
    /// `index` (from its factory) and starts it; bytes that arrived meanwhile are its first
    /// input.
    pub(super) fn serve(&mut self, index: usize, id: usize, peer: &Address) {
        let Some(end) = self.conns[id].ends[1].as_mut() else {
            return;
        };
        end.driver = Driver::Nobody;
        let host = end.host;
        let now = self.host_now(host);
        let address = self.conns[id].server_address.clone();
        self.serving.entry(address).or_default().push(id);
        // The factory is user code too: a panic there ends only this connection.
        self.guarded(id, 1, |world| {
            let ListenerKind::Sessions {
                factory, config, ..
            } = &mut world.listeners[index].kind
            else {
                return;
            };
            let mut conn: SimConnection = Connection::with_config(factory(peer), *config);
            world.bind_wake(&mut conn, id, 1);
            if let Some(end) = world.conns[id].ends[1].as_mut() {
                end.driver = Driver::Session(conn);
            }
            if let Some(conn) = world.conns[id].ends[1]
                .as_mut()
                .and_then(|e| e.driver.conn_mut())
            {
                conn.handle_start(now);
            }
        });
    }

    /// A served connection of the listener at `address` ended: serve the connections waiting
    /// in its backlog while there is room.
    pub(super) fn admit_waiting(&mut self, address: &Address) {
        let Some(index) = self.listeners.iter().position(|l| {
            l.open && &l.address == address && matches!(l.kind, ListenerKind::Sessions { .. })
        }) else {
            return;
        };
        loop {
            self.prune_serving(address);
            let live = self.live_sessions(address);
            let ListenerKind::Sessions {
                max_connections,
                waiting,
                ..
            } = &mut self.listeners[index].kind
            else {
                return;
            };
            if live >= *max_connections {
                return;
            }
            let Some((id, peer)) = waiting.pop_front() else {
                return;
            };
            self.trace
                .record(self.now, format_args!("c{id} served from the backlog"), &[]);
            self.serve(index, id, &peer);
            self.pump(id, 1);
        }
    }

    /// A server closed session listener `index` (already not accepting): its live sessions
    /// may go on for `grace`, then end with `EndReason::Shutdown`, as on the socket backends.
    pub(crate) fn shut_down_sessions_after(&mut self, index: usize, grace: Duration) {
        let at = self.now + grace;
        self.schedule(at, Event::ShutDown(index));
    }

    pub(super) fn on_shut_down(&mut self, index: usize) {
        let Some(address) = self.listeners.get(index).map(|l| l.address.clone()) else {
            return;
        };
        self.trace.record(
            self.now,
            format_args!("shutdown grace of {address} over"),
            &[],
        );
        self.prune_serving(&address);
        let ids = self.serving.get(&address).cloned().unwrap_or_default();
        for id in ids {
            let Some(end) = self.conns[id].ends[1].as_ref() else {
                continue;
            };
            if end.done || end.driver.is_raw() {
                continue;
            }
            let now = self.host_now(end.host);
            if let Some(end) = self.conns[id].ends[1].as_mut() {
                if let Some(conn) = end.driver.conn_mut() {
                    conn.handle_shutdown(now);
                }
            }
            self.pump(id, 1);
        }
    }

    pub(super) fn is_live_session(&self, id: usize) -> bool {
        self.conns[id].ends[1]
            .as_ref()
            .is_some_and(|e| !e.driver.is_raw() && !e.done)
    }

    /// Forgets the ended sessions of `address` and reclaims their endpoints (session, buffers,
    /// state): a long run keeps only what is live, and an empty slot per finished connection.
    pub(super) fn prune_serving(&mut self, address: &Address) {
        let Some(ids) = self.serving.get(address) else {
            return;
        };
        let (live, ended): (Vec<usize>, Vec<usize>) =
            ids.iter().partition(|&&id| self.is_live_session(id));
        for id in ended {
            // Reclaimed: the endpoint (its session, buffers, state) goes; the connection
            // keeps an empty slot, which every event treats as a closed endpoint.
            self.conns[id].ends[1] = None;
        }
        self.serving.insert(address.clone(), live);
    }

    /// Server-side session connections of the listener at `address` that have not ended.
    pub(crate) fn live_sessions(&self, address: &Address) -> usize {
        self.serving.get(address).map_or(0, |ids| {
            ids.iter().filter(|&&id| self.is_live_session(id)).count()
        })
    }

    pub(super) fn on_syn(&mut self, id: usize) {
        let client_done = self.conns[id].ends[0].as_ref().is_none_or(|e| e.done);
        if client_done {
            return;
        }
        let address = self.conns[id].server_address.clone();
        let client_host = self.conns[id].ends[0]
            .as_ref()
            .map_or(HostId(0), |e| e.host);
        let listener = self
            .listeners
            .iter()
            .position(|l| l.open && l.address == address && self.hosts[l.host.0].up);
        let Some(index) = listener else {
            let at = self.now + self.delay();
            self.schedule(at, Event::Refuse(id));
            return;
        };
        let server_host = self.listeners[index].host;
        if self.partitions.contains(&(client_host, server_host)) {
            let at = self.now + self.faults.retransmit;
            self.schedule(at, Event::Syn(id));
            return;
        }
        if self.rng.borrow_mut().chance(self.faults.refuse_per_million) {
            let at = self.now + self.delay();
            self.schedule(at, Event::Refuse(id));
            return;
        }
        let peer = match &address {
            Address::Tcp(_) => Address::Tcp(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(
                    10,
                    0,
                    0,
                    u8::try_from(client_host.0 % 250).unwrap_or(0) + 1,
                )),
                u16::try_from(40_000 + id % 20_000).unwrap_or(40_000),
            )),
            Address::Unix(_) => address.clone(),
        };
        self.prune_serving(&address);
        let live = self.live_sessions(&address);
        let listener = &mut self.listeners[index];
        match &mut listener.kind {
            ListenerKind::Sessions {
                max_connections,
                waiting,
                backlog,
                ..
            } if live >= *max_connections || !waiting.is_empty() => {
                if waiting.len() >= *backlog {
                    // A full backlog drops the SYN, as Linux does.
                    let at = self.now + self.faults.retransmit;
                    self.schedule(at, Event::Syn(id));
                    return;
                }
                // At the cap: the handshake completes and the connection waits, unserved, in
                // the backlog (its bytes queue in the receive buffer) until a slot frees.
                waiting.push_back((id, peer));
                self.conns[id].ends[1] = Some(Box::new(Endpoint::raw_socket(
                    server_host,
                    ConnectState::Established,
                )));
            }
            ListenerKind::Sessions { .. } => {
                self.conns[id].ends[1] = Some(Box::new(Endpoint::raw_socket(
                    server_host,
                    ConnectState::Established,
                )));
                self.serve(index, id, &peer);
            }
            ListenerKind::Sockets(backlog) => {
                if backlog.queue.len() >= backlog.limit {
                    // A full backlog drops the SYN, as Linux does: the client tries again
                    // (every `Faults::retransmit`) until there is room or its connect times
                    // out.
                    let at = self.now + self.faults.retransmit;
                    self.schedule(at, Event::Syn(id));
                    return;
                }
                backlog.queue.push_back((id, peer));
                if let Some(waker) = backlog.waker.take() {
                    waker.wake();
                }
                self.conns[id].ends[1] = Some(Box::new(Endpoint::raw_socket(
                    server_host,
                    ConnectState::Established,
                )));
            }
        }
        self.trace.record(
            self.now,
            format_args!("c{id} accepted by h{}", server_host.0),
            &[],
        );
        self.pump(id, 1);
        let at = self.now + self.delay();
        self.schedule(at, Event::SynAck(id));
    }
}
