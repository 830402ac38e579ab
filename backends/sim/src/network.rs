//! `SimNetwork`: a deterministic world in one thread. Hosts listen and connect; TCP-like
//! ordered byte streams (or Unix sockets: an address is only a name here) join them; every
//! segment, handshake and deadline is an event on a virtual clock; the seeded RNG decides
//! segment sizes, delays, faults and the order of events that fall on the same instant.
//!
//! Each endpoint is a core `Connection` driven by the core's drain rule, exactly as the socket
//! backends drive theirs, so a `Session` runs here unchanged.

use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use concurrence_core::{Address, Connection, ConnectionConfig, EndKind, Ended, Session, Timestamp};

use crate::{Faults, SimRng, Trace};

/// A session the network can own and, for clients, hand back with its type.
pub trait AnySession: Session + Any {
    /// The session as `Any`, to recover its type.
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<T: Session + Any> AnySession for T {
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

type Factory = Box<dyn FnMut(&Address) -> Box<dyn AnySession>>;
type SimConnection = Connection<Box<dyn AnySession>>;

/// A simulated machine: it listens, connects, crashes and restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostId(usize);

/// A client connection started by [`SimNetwork::connect_session`]; take its session back
/// with [`SimNetwork::take_client`] once it ended.
#[derive(Debug)]
pub struct Client<S> {
    id: usize,
    _session: PhantomData<fn() -> S>,
}

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// More events than the cap: a livelock, or a cap too low for the scenario.
    #[error(
        "seed {seed}: no quiescence after {events} events (virtual time {now:?}); raise SimNetwork::max_events if the scenario is that long"
    )]
    EventLimit {
        /// The seed of the run.
        seed: u64,
        /// The cap that was hit.
        events: u64,
        /// Virtual time when it was hit.
        now: Timestamp,
    },
}

struct Host {
    name: String,
    up: bool,
}

struct Listener {
    host: HostId,
    address: Address,
    factory: Factory,
    config: ConnectionConfig,
}

#[derive(Debug)]
enum Segment {
    Data(Vec<u8>),
    Fin,
    Rst,
}

/// One direction of a connection: segments in flight, oldest first.
#[derive(Default)]
struct Link {
    in_flight: VecDeque<(Timestamp, Segment)>,
    bytes_in_flight: usize,
    last_at: Timestamp,
}

struct Endpoint {
    host: HostId,
    conn: Option<SimConnection>,
    /// Bytes arrived and not yet taken by the connection (the kernel's receive buffer).
    rcvbuf: VecDeque<u8>,
    fin_in: bool,
    fin_told: bool,
    rst_in: bool,
    fin_sent: bool,
    /// The connection finished (or its host crashed): nothing more happens here.
    done: bool,
    /// The earliest deadline with a timer event in the queue.
    timer: Option<Timestamp>,
}

impl Endpoint {
    fn new(host: HostId, conn: SimConnection) -> Self {
        Endpoint {
            host,
            conn: Some(conn),
            rcvbuf: VecDeque::new(),
            fin_in: false,
            fin_told: false,
            rst_in: false,
            fin_sent: false,
            done: false,
            timer: None,
        }
    }
}

/// Client side 0, server side 1; link `d` carries bytes from side `d` to side `1 - d`.
struct SimConn {
    ends: [Option<Endpoint>; 2],
    links: [Link; 2],
    server_address: Address,
}

#[derive(Debug, Clone, Copy)]
enum Event {
    Syn(usize),
    SynAck(usize),
    Refuse(usize),
    Arrive(usize, usize),
    Timer(usize, usize),
}

/// The simulated network. See the crate docs for a walk-through.
pub struct SimNetwork {
    seed: u64,
    rng: SimRng,
    faults: Faults,
    now: Timestamp,
    hosts: Vec<Host>,
    listeners: Vec<Listener>,
    conns: Vec<SimConn>,
    queue: BTreeMap<(Timestamp, u64, u64), Event>,
    next_seq: u64,
    /// Blocked directions: (from, to).
    partitions: Vec<(HostId, HostId)>,
    trace: Trace,
    max_events: u64,
    server_ends: Vec<(Address, EndKind)>,
}

impl std::fmt::Debug for SimNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimNetwork")
            .field("seed", &self.seed)
            .field("now", &self.now)
            .field("faults", &self.faults)
            .field("connections", &self.conns.len())
            .finish_non_exhaustive()
    }
}

fn reset_error() -> std::io::Error {
    std::io::ErrorKind::ConnectionReset.into()
}

impl SimNetwork {
    /// An empty world for `seed`, with the given faults.
    #[must_use]
    pub fn new(seed: u64, faults: Faults) -> Self {
        SimNetwork {
            seed,
            rng: SimRng::new(seed),
            faults,
            now: Timestamp::ZERO,
            hosts: Vec::new(),
            listeners: Vec::new(),
            conns: Vec::new(),
            queue: BTreeMap::new(),
            next_seq: 0,
            partitions: Vec::new(),
            trace: Trace::new(false),
            max_events: 50_000_000,
            server_ends: Vec::new(),
        }
    }

    /// Keeps the trace's readable lines (memory grows with the run).
    #[must_use]
    pub fn keep_trace(mut self) -> Self {
        self.trace = Trace::new(true);
        self
    }

    /// Caps the events one `run*` call may process (default 50 million).
    #[must_use]
    pub fn max_events(mut self, events: u64) -> Self {
        self.max_events = events;
        self
    }

    /// The seed of this run.
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Virtual time now.
    #[must_use]
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The run's trace so far.
    #[must_use]
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// The faults in force.
    #[must_use]
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Changes the faults from now on.
    pub fn set_faults(&mut self, faults: Faults) {
        self.faults = faults;
    }

    /// A new host named `name`.
    pub fn host(&mut self, name: &str) -> HostId {
        self.hosts.push(Host {
            name: name.to_owned(),
            up: true,
        });
        HostId(self.hosts.len() - 1)
    }

    /// Serves one `Session` per connection to `address` on `host` (from `factory`, given the
    /// peer's address), each with the connection settings `config`.
    pub fn serve_session<S, F>(
        &mut self,
        host: HostId,
        address: Address,
        config: ConnectionConfig,
        mut factory: F,
    ) where
        S: Session + 'static,
        F: FnMut(&Address) -> S + 'static,
    {
        self.listeners.push(Listener {
            host,
            address,
            factory: Box::new(move |peer| Box::new(factory(peer)) as Box<dyn AnySession>),
            config,
        });
    }

    /// Connects from `host` to `address` and runs `session` as the client, with the same
    /// lifecycle as on real sockets (connect timeout and refusal are end reasons).
    pub fn connect_session<S: Session + 'static>(
        &mut self,
        host: HostId,
        address: &Address,
        session: S,
        config: ConnectionConfig,
    ) -> Client<S> {
        let id = self.conns.len();
        let mut conn: SimConnection =
            Connection::with_config(Box::new(session) as Box<dyn AnySession>, config);
        conn.handle_connecting(self.now);
        self.conns.push(SimConn {
            ends: [Some(Endpoint::new(host, conn)), None],
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
    pub fn take_client<S: Session + 'static>(&mut self, client: &Client<S>) -> Option<Ended<S>> {
        let end = self.conns.get_mut(client.id)?.ends[0].as_mut()?;
        if !end.done {
            return None;
        }
        let (session, reason) = end.conn.take()?.into_parts();
        let session = session.into_any().downcast::<S>().ok()?;
        Some(Ended {
            session: *session,
            reason: reason?,
        })
    }

    /// How each server-side connection ended so far: (the listener's address, the kind).
    #[must_use]
    pub fn server_ends(&self) -> &[(Address, EndKind)] {
        &self.server_ends
    }

    /// Blocks the link from `from` to `to` (one way); segments wait and are retried every
    /// `Faults::retransmit` until [`heal`](Self::heal).
    pub fn partition_one_way(&mut self, from: HostId, to: HostId) {
        if !self.partitions.contains(&(from, to)) {
            self.partitions.push((from, to));
        }
        self.trace.record(
            self.now,
            format_args!("partition h{} -> h{}", from.0, to.0),
            &[],
        );
    }

    /// Blocks both directions between `a` and `b`.
    pub fn partition(&mut self, a: HostId, b: HostId) {
        self.partition_one_way(a, b);
        self.partition_one_way(b, a);
    }

    /// Lifts every partition.
    pub fn heal(&mut self) {
        self.partitions.clear();
        self.trace.record(self.now, format_args!("heal"), &[]);
    }

    /// The host's program dies: its connections vanish without a word to their sessions (the
    /// peers see resets) and its listeners stop (connects are refused) until
    /// [`restart`](Self::restart).
    pub fn crash(&mut self, host: HostId) {
        self.hosts[host.0].up = false;
        self.trace
            .record(self.now, format_args!("crash h{}", host.0), &[]);
        for id in 0..self.conns.len() {
            for side in 0..2 {
                let hit = self.conns[id].ends[side]
                    .as_ref()
                    .is_some_and(|e| e.host == host && !e.done);
                if hit {
                    if let Some(end) = self.conns[id].ends[side].as_mut() {
                        end.done = true;
                        end.conn = None;
                    }
                    self.send_segment(id, side, Segment::Rst);
                }
            }
        }
    }

    /// The host's program starts again: its listeners accept anew.
    pub fn restart(&mut self, host: HostId) {
        self.hosts[host.0].up = true;
        self.trace
            .record(self.now, format_args!("restart h{}", host.0), &[]);
    }

    /// Runs until nothing more can happen (no event left).
    ///
    /// # Errors
    /// [`SimError::EventLimit`] past [`max_events`](Self::max_events).
    pub fn run(&mut self) -> Result<(), SimError> {
        self.run_until(Timestamp::MAX)
    }

    /// Runs for `duration` of virtual time, or until nothing more can happen.
    ///
    /// # Errors
    /// [`SimError::EventLimit`] past [`max_events`](Self::max_events).
    pub fn run_for(&mut self, duration: Duration) -> Result<(), SimError> {
        let end = self.now.saturating_add(duration);
        self.run_until(end)?;
        self.now = self.now.max(end);
        Ok(())
    }

    fn run_until(&mut self, end: Timestamp) -> Result<(), SimError> {
        let mut processed = 0u64;
        while let Some((&key, _)) = self.queue.first_key_value() {
            if key.0 > end {
                return Ok(());
            }
            processed += 1;
            if processed > self.max_events {
                return Err(SimError::EventLimit {
                    seed: self.seed,
                    events: self.max_events,
                    now: self.now,
                });
            }
            let Some(event) = self.queue.remove(&key) else {
                break;
            };
            if self.is_stale(event) {
                // A timer of a finished endpoint: nothing happens, and time does not move.
                processed -= 1;
                continue;
            }
            self.now = self.now.max(key.0);
            self.handle(event);
        }
        Ok(())
    }

    fn is_stale(&self, event: Event) -> bool {
        match event {
            Event::Timer(id, side) => self.conns[id].ends[side].as_ref().is_none_or(|e| e.done),
            _ => false,
        }
    }

    fn delay(&mut self) -> Duration {
        let jitter = u64::try_from(self.faults.jitter.as_nanos()).unwrap_or(u64::MAX);
        self.faults.latency + Duration::from_nanos(self.rng.below(jitter.saturating_add(1)))
    }

    fn schedule(&mut self, at: Timestamp, event: Event) {
        // Events on the same instant run in an order drawn from the RNG.
        let tiebreak = self.rng.next_u64();
        self.next_seq += 1;
        self.queue.insert((at, tiebreak, self.next_seq), event);
    }

    fn blocked(&self, id: usize, from_side: usize) -> bool {
        let conn = &self.conns[id];
        let host_of = |side: usize| conn.ends[side].as_ref().map(|e| e.host);
        match (host_of(from_side), host_of(1 - from_side)) {
            (Some(a), Some(b)) => self.partitions.contains(&(a, b)),
            _ => false,
        }
    }

    /// Puts a segment on the link from `side`, arriving after a delay (in order).
    fn send_segment(&mut self, id: usize, side: usize, segment: Segment) {
        let delay = self.delay();
        let link = &mut self.conns[id].links[side];
        let at = (self.now + delay).max(link.last_at);
        link.last_at = at;
        if let Segment::Data(bytes) = &segment {
            link.bytes_in_flight += bytes.len();
        }
        link.in_flight.push_back((at, segment));
        self.schedule(at, Event::Arrive(id, side));
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Syn(id) => self.on_syn(id),
            Event::SynAck(id) => {
                self.trace
                    .record(self.now, format_args!("c{id} established"), &[]);
                let client = self.conns[id].ends[0].as_mut();
                match client {
                    Some(end) if !end.done => {
                        if let Some(conn) = end.conn.as_mut() {
                            conn.handle_start(self.now);
                        }
                        self.pump(id, 0);
                    }
                    // The client gave up meanwhile: its kernel answers with a reset.
                    _ => self.send_segment(id, 0, Segment::Rst),
                }
            }
            Event::Refuse(id) => {
                self.trace
                    .record(self.now, format_args!("c{id} refused"), &[]);
                if let Some(end) = self.conns[id].ends[0].as_mut() {
                    if let Some(conn) = end.conn.as_mut() {
                        conn.handle_io_error(
                            self.now,
                            std::io::ErrorKind::ConnectionRefused.into(),
                        );
                    }
                }
                self.pump(id, 0);
            }
            Event::Arrive(id, from) => self.on_arrive(id, from),
            Event::Timer(id, side) => {
                let now = self.now;
                if let Some(end) = self.conns[id].ends[side].as_mut() {
                    if end.timer.is_some_and(|t| t <= now) {
                        end.timer = None;
                    }
                    if let Some(conn) = end.conn.as_mut() {
                        conn.handle_timeout(now);
                    }
                }
                self.pump(id, side);
            }
        }
    }

    fn on_syn(&mut self, id: usize) {
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
            .position(|l| l.address == address && self.hosts[l.host.0].up);
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
        if self.rng.chance(self.faults.refuse_per_million) {
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
        let listener = &mut self.listeners[index];
        let session = (listener.factory)(&peer);
        let mut conn: SimConnection = Connection::with_config(session, listener.config);
        conn.handle_start(self.now);
        self.conns[id].ends[1] = Some(Endpoint::new(server_host, conn));
        self.trace.record(
            self.now,
            format_args!("c{id} accepted by h{}", server_host.0),
            &[],
        );
        self.pump(id, 1);
        let at = self.now + self.delay();
        self.schedule(at, Event::SynAck(id));
    }

    fn on_arrive(&mut self, id: usize, from: usize) {
        let to = 1 - from;
        if self.blocked(id, from) {
            // Held by a partition: try again later (the head of the link keeps the order).
            let at = self.now + self.faults.retransmit;
            if let Some(head) = self.conns[id].links[from].in_flight.front_mut() {
                head.0 = at;
            }
            let link = &mut self.conns[id].links[from];
            link.last_at = link.last_at.max(at);
            self.schedule(at, Event::Arrive(id, from));
            return;
        }
        let Some((_, segment)) = self.conns[id].links[from].in_flight.pop_front() else {
            return;
        };
        if let Segment::Data(bytes) = &segment {
            self.conns[id].links[from].bytes_in_flight -= bytes.len();
        }
        let receiver_gone = self.conns[id].ends[to].as_ref().is_none_or(|e| e.done);
        match segment {
            Segment::Data(bytes) => {
                self.trace.record(
                    self.now,
                    format_args!("c{id} {from}->{to} data {}", bytes.len()),
                    &bytes,
                );
                if receiver_gone {
                    // Bytes for a closed socket: the answer is a reset.
                    self.send_segment(id, to, Segment::Rst);
                    return;
                }
                if self.rng.chance(self.faults.reset_per_million) {
                    self.trace
                        .record(self.now, format_args!("c{id} reset (fault)"), &[]);
                    if let Some(end) = self.conns[id].ends[to].as_mut() {
                        end.rst_in = true;
                    }
                    self.send_segment(id, to, Segment::Rst);
                    self.pump(id, to);
                    return;
                }
                if let Some(end) = self.conns[id].ends[to].as_mut() {
                    end.rcvbuf.extend(bytes);
                }
            }
            Segment::Fin => {
                self.trace
                    .record(self.now, format_args!("c{id} {from}->{to} fin"), &[]);
                if let Some(end) = self.conns[id].ends[to].as_mut() {
                    end.fin_in = true;
                }
            }
            Segment::Rst => {
                self.trace
                    .record(self.now, format_args!("c{id} {from}->{to} rst"), &[]);
                if let Some(end) = self.conns[id].ends[to].as_mut() {
                    end.rst_in = true;
                }
            }
        }
        self.pump(id, to);
        // What the receiver took opened the window: the sender may send more.
        self.pump(id, from);
    }

    /// The drain rule for one endpoint: receive, send, shut down, finish, re-arm its timer.
    fn pump(&mut self, id: usize, side: usize) {
        let now = self.now;
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
            let Some(conn) = end.conn.as_mut() else {
                return;
            };
            if end.rst_in {
                conn.handle_io_error(now, reset_error());
            }
            let mut in_flight = links[side].bytes_in_flight;
            loop {
                let mut progress = false;
                while !end.rcvbuf.is_empty() && conn.wants_read() {
                    let room = conn.recv_buffer();
                    let n = room
                        .len()
                        .min(end.rcvbuf.len())
                        .min(self.rng.size(max_read));
                    if n == 0 {
                        break;
                    }
                    for (slot, byte) in room[..n].iter_mut().zip(end.rcvbuf.drain(..n)) {
                        *slot = byte;
                    }
                    conn.handle_received(now, n);
                    progress = true;
                }
                if end.rcvbuf.is_empty() && end.fin_in && !end.fin_told {
                    end.fin_told = true;
                    conn.handle_peer_closed(now);
                    progress = true;
                }
                while conn.wants_write() {
                    let room = window.saturating_sub(in_flight + peer_buffered);
                    if room == 0 {
                        break;
                    }
                    let pending = conn.poll_transmit();
                    let n = pending.len().min(room).min(self.rng.size(max_segment));
                    outgoing.push(Segment::Data(pending[..n].to_vec()));
                    in_flight += n;
                    conn.handle_sent(now, n);
                    progress = true;
                }
                if conn.poll_shutdown_write() {
                    outgoing.push(Segment::Fin);
                    end.fin_sent = true;
                    progress = true;
                }
                if !progress || conn.is_closed() {
                    break;
                }
            }
            if conn.is_closed() {
                end.done = true;
                // Unread input turns a close into a reset, as on a real stack.
                let reset = conn.wants_reset() || !end.rcvbuf.is_empty() || end.rst_in;
                if let Some(kind) = conn.end_kind() {
                    ended = Some((kind, reset));
                }
                if reset && !end.rst_in {
                    outgoing.push(Segment::Rst);
                } else if !end.fin_sent && !end.rst_in {
                    outgoing.push(Segment::Fin);
                }
            } else if let Some(at) = conn.poll_timeout() {
                // Lazily: a deadline that moved later keeps the earlier timer, which fires,
                // finds nothing due, and the real deadline is armed then.
                if end.timer.is_none_or(|t| at < t) {
                    end.timer = Some(at);
                    arm_timer = Some(at);
                }
            }
        }
        for segment in outgoing {
            self.send_segment(id, side, segment);
        }
        if let Some(at) = arm_timer {
            self.schedule(at, Event::Timer(id, side));
        }
        if let Some((kind, reset)) = ended {
            self.trace.record(
                now,
                format_args!(
                    "c{id} side {side} ended {kind}{}",
                    if reset { " (rst)" } else { "" }
                ),
                &[],
            );
            if side == 1 {
                let address = self.conns[id].server_address.clone();
                self.server_ends.push((address, kind));
            }
        }
    }
}
