//! `World`: the simulated network's state, in one thread. Hosts listen and connect; TCP-like
//! ordered byte streams (or Unix sockets: an address is only a name here) join them; every
//! segment, handshake and deadline is an event on a virtual clock; the seeded RNG decides
//! segment sizes, delays, faults and the order of events that fall on the same instant.
//!
//! An endpoint is either a core `Connection` driven by the core's drain rule, exactly as the
//! socket backends drive theirs (so a `Session` runs here unchanged), or a raw socket that an
//! async task reads and writes (the `Socket` API). `SimNetwork` owns the world and runs it.

use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use concurrence_core::{
    Address, Connection, ConnectionConfig, Direction, EndKind, Ended, Output, Session, Timestamp,
};

use std::cell::RefCell;
use std::rc::Rc;

use crate::buggify::SharedRng;
use crate::{Faults, LinkProfile, SimRng, Trace};

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

impl HostId {
    /// The host's number, in the order hosts were made.
    pub(crate) fn index(self) -> usize {
        self.0
    }
}

/// A client connection started by [`SimNetwork::connect_session`](crate::SimNetwork::connect_session); take its session back
/// with [`SimNetwork::take_client`](crate::SimNetwork::take_client) once it ended.
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
    /// `block_on`'s task had not finished when nothing was left to happen: it waits for
    /// something that never comes.
    #[error(
        "seed {seed}: the task is stuck at virtual time {now:?}: no event and no runnable task is left, and it has not finished"
    )]
    Stuck {
        /// The seed of the run.
        seed: u64,
        /// Virtual time when the network ran dry.
        now: Timestamp,
    },
}

struct Host {
    name: String,
    up: bool,
    /// How far this host's clock runs ahead (positive) or behind (negative), nanoseconds.
    skew_ns: i64,
    /// Bumped by every crash: tasks of an earlier incarnation never run again.
    incarnation: u64,
}

struct Listener {
    host: HostId,
    address: Address,
    kind: ListenerKind,
    /// False once its socket was closed: connects are refused.
    open: bool,
    /// Sockets referring to it (passing it over a Unix socket adds one).
    handles: usize,
}

enum ListenerKind {
    /// `serve_session`: every connection gets a session from the factory.
    Sessions {
        factory: Factory,
        config: ConnectionConfig,
        /// At most this many of its connections are served at once; later ones complete
        /// their handshake and wait in `waiting` (a real server's backlog) until one ends.
        max_connections: usize,
        /// Established connections not served yet (connection id, peer): the kernel's accept
        /// queue while the server is at `max_connections`. Past `backlog` of them, SYNs are
        /// dropped and retried every `Faults::retransmit`, as Linux drops them.
        waiting: VecDeque<(usize, Address)>,
        backlog: usize,
    },
    /// A listening `Socket`: connections queue until `accept` takes them.
    Sockets(Backlog),
}

/// Established connections waiting for `accept`.
struct Backlog {
    queue: VecDeque<(usize, Address)>,
    limit: usize,
    waker: Option<Waker>,
}

/// What a connecting raw socket knows so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectState {
    Connecting,
    Established,
    Refused,
}

/// How many bytes a raw socket's send buffer holds before writes wait (the kernel's send
/// buffer).
pub(crate) const SEND_BUFFER: usize = 64 * 1024;

/// The application side of an endpoint driven by an async task through `Socket`.
struct RawSocket {
    /// Written by the task, not yet cut into segments.
    sndbuf: VecDeque<u8>,
    connect: ConnectState,
    /// The task shut down its write side.
    shutdown: bool,
    /// The task closed (or dropped) the socket.
    closed: bool,
    /// The task aborted it: the close is a reset (`SO_LINGER` 0), buffered output dropped.
    abort: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
    /// Sockets (tasks' handles, or messages in flight) that refer to this endpoint: passing it
    /// over a Unix socket adds one; it closes when the last is closed.
    handles: usize,
    /// Sockets passed to this endpoint, waiting for `read_socket`.
    fds_in: VecDeque<PassedFd>,
}

impl RawSocket {
    fn new(connect: ConnectState) -> Self {
        RawSocket {
            sndbuf: VecDeque::new(),
            connect,
            shutdown: false,
            closed: false,
            abort: false,
            handles: 1,
            fds_in: VecDeque::new(),
            reader: None,
            writer: None,
        }
    }

    fn wake_all(&mut self) {
        if let Some(waker) = self.reader.take() {
            waker.wake();
        }
        if let Some(waker) = self.writer.take() {
            waker.wake();
        }
    }
}

/// A sleeping task's timer.
struct SleepSlot {
    fired: bool,
    waker: Option<Waker>,
}

#[derive(Debug)]
enum Segment {
    Data(Vec<u8>),
    Fin,
    Rst,
    /// A socket passed over a Unix stream (`SCM_RIGHTS`): it arrives in order with the others.
    Fd(PassedFd),
}

/// A socket in flight over a Unix stream, or queued for `read_socket`.
#[derive(Debug, Clone)]
pub(crate) enum PassedFd {
    /// Endpoint `side` of connection `id`, whose peer is `address`.
    Stream {
        id: usize,
        side: usize,
        address: Address,
    },
    /// Listener `index`, bound to `address`.
    Listener { index: usize, address: Address },
}

/// One direction of a connection: segments in flight, oldest first.
#[derive(Default)]
struct Link {
    in_flight: VecDeque<(Timestamp, Segment)>,
    bytes_in_flight: usize,
    last_at: Timestamp,
    /// Until when the link is busy sending earlier segments (bandwidth).
    busy_until: Timestamp,
}

struct Endpoint {
    host: HostId,
    conn: Option<SimConnection>,
    /// Set instead of `conn` for an endpoint an async task drives.
    raw: Option<RawSocket>,
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
    /// Bytes handed to the session so far (its position in the stream).
    delivered: u64,
}

impl Endpoint {
    fn raw(host: HostId, connect: ConnectState) -> Self {
        Endpoint {
            host,
            conn: None,
            raw: Some(RawSocket::new(connect)),
            rcvbuf: VecDeque::new(),
            fin_in: false,
            fin_told: false,
            rst_in: false,
            fin_sent: false,
            done: false,
            timer: None,
            delivered: 0,
        }
    }

    fn new(host: HostId, conn: SimConnection) -> Self {
        Endpoint {
            host,
            conn: Some(conn),
            raw: None,
            rcvbuf: VecDeque::new(),
            fin_in: false,
            fin_told: false,
            rst_in: false,
            fin_sent: false,
            done: false,
            timer: None,
            delivered: 0,
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
pub(crate) enum Event {
    Syn(usize),
    SynAck(usize),
    Refuse(usize),
    Arrive(usize, usize),
    Timer(usize, usize),
    /// A sleeping task's deadline.
    Wake(u64),
    /// The application woke a session (`Notify`): give it a turn.
    Notify(usize, usize),
    /// The shutdown grace of session listener `index` ended: its live sessions end with
    /// `EndReason::Shutdown`.
    ShutDown(usize),
}

/// Sessions the application woke since the last event, as (connection, side): filled by the
/// wake-ups bound to their `Notify`, turned into events in the order drawn from the RNG.
type Wakes = std::sync::Arc<std::sync::Mutex<Vec<(usize, usize)>>>;

/// The simulated network's state; [`SimNetwork`](crate::SimNetwork) owns and runs it.
pub(crate) struct World {
    seed: u64,
    /// Shared with `buggify` while the network runs (a session calls it while the world is
    /// borrowed).
    rng: SharedRng,
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
    sleeps: BTreeMap<u64, SleepSlot>,
    next_sleep: u64,
    next_port: u16,
    /// Tasks waiting in `connect_session` for their client connection to end, by id.
    session_waiters: BTreeMap<usize, Waker>,
    /// Per-link overrides of latency, jitter and bandwidth: (from, to).
    links: BTreeMap<(HostId, HostId), LinkProfile>,
    /// Per server address, the connections whose server end became a session: counted for
    /// `max_connections` (ended ones are pruned, and their sessions dropped, as SYNs come),
    /// so a SYN costs the live sessions, not every connection the run ever made.
    serving: BTreeMap<Address, Vec<usize>>,
    wakes: Wakes,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("seed", &self.seed)
            .field("now", &self.now)
            .field("faults", &self.faults)
            .field("connections", &self.conns.len())
            .finish_non_exhaustive()
    }
}

/// `at` moved by `nanos` (either way), clamped at zero.
fn shift(at: Timestamp, nanos: i64) -> Timestamp {
    let magnitude = Duration::from_nanos(nanos.unsigned_abs());
    if nanos >= 0 {
        at.saturating_add(magnitude)
    } else {
        Timestamp::from_duration(at.since_epoch().saturating_sub(magnitude))
    }
}

/// Moves the first `out.len()` bytes of `buf` into `out` (at most two slice copies, not a
/// byte at a time).
fn take_front(buf: &mut VecDeque<u8>, out: &mut [u8]) {
    let n = out.len().min(buf.len());
    let (a, b) = buf.as_slices();
    let from_a = n.min(a.len());
    out[..from_a].copy_from_slice(&a[..from_a]);
    out[from_a..n].copy_from_slice(&b[..n - from_a]);
    buf.drain(..n);
}

fn reset_error() -> std::io::Error {
    std::io::ErrorKind::ConnectionReset.into()
}

impl World {
    /// An empty world for `seed`, with the given faults.
    #[must_use]
    pub(crate) fn new(seed: u64, rng: SimRng, faults: Faults) -> Self {
        World {
            seed,
            rng: Rc::new(RefCell::new(rng)),
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
            sleeps: BTreeMap::new(),
            next_sleep: 0,
            next_port: 32_767,
            links: BTreeMap::new(),
            serving: BTreeMap::new(),
            session_waiters: BTreeMap::new(),
            wakes: Wakes::default(),
        }
    }

    /// Keeps the trace's readable lines (memory grows with the run).
    pub(crate) fn set_keep_trace(&mut self) {
        self.trace = Trace::new(true);
    }

    /// Caps the events one `run*` call may process.
    pub(crate) fn set_max_events(&mut self, events: u64) {
        self.max_events = events;
    }

    /// The cap on events per `run*` call.
    pub(crate) fn max_events(&self) -> u64 {
        self.max_events
    }

    /// The seed of this run.
    #[must_use]
    pub(crate) fn seed(&self) -> u64 {
        self.seed
    }

    /// Virtual time now.
    #[must_use]
    pub(crate) fn now(&self) -> Timestamp {
        self.now
    }

    /// The run's trace so far.
    #[must_use]
    pub(crate) fn trace(&self) -> &Trace {
        &self.trace
    }

    /// The faults in force.
    #[must_use]
    pub(crate) fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Changes the faults from now on.
    pub(crate) fn set_faults(&mut self, faults: Faults) {
        self.faults = faults;
    }

    /// A new host named `name`.
    pub(crate) fn host(&mut self, name: &str) -> HostId {
        let max = i64::try_from(self.faults.clock_skew.as_nanos()).unwrap_or(i64::MAX);
        let skew_ns = if max == 0 {
            0
        } else {
            // Ahead only: a clock behind the network's would stand still at zero at first.
            let span = u64::try_from(max).unwrap_or(u64::MAX).saturating_mul(2);
            i64::try_from(self.rng.borrow_mut().below(span.saturating_add(1))).unwrap_or(i64::MAX)
        };
        self.hosts.push(Host {
            name: name.to_owned(),
            up: true,
            skew_ns,
            incarnation: 0,
        });
        HostId(self.hosts.len() - 1)
    }

    /// Sets how far `host`'s clock runs ahead of the network's (negative: behind).
    pub(crate) fn set_clock_skew(&mut self, host: HostId, skew_ns: i64) {
        if let Some(h) = self.hosts.get_mut(host.0) {
            h.skew_ns = skew_ns;
        }
        self.trace.record(
            self.now,
            format_args!("h{} clock skew {skew_ns} ns", host.0),
            &[],
        );
    }

    /// `at` (network time) on `host`'s clock.
    fn local(&self, host: HostId, at: Timestamp) -> Timestamp {
        let skew = self.hosts.get(host.0).map_or(0, |h| h.skew_ns);
        shift(at, skew)
    }

    /// `at` on `host`'s clock, in network time.
    fn global(&self, host: HostId, at: Timestamp) -> Timestamp {
        let skew = self.hosts.get(host.0).map_or(0, |h| h.skew_ns);
        shift(at, skew.saturating_neg())
    }

    /// Now, as `host`'s clock says.
    pub(crate) fn host_now(&self, host: HostId) -> Timestamp {
        self.local(host, self.now)
    }

    /// Overrides latency, jitter and bandwidth for segments from `from` to `to`.
    pub(crate) fn set_link(&mut self, from: HostId, to: HostId, link: LinkProfile) {
        self.links.insert((from, to), link);
    }

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
    pub(crate) fn take_client<S: Session + 'static>(
        &mut self,
        client: &Client<S>,
    ) -> Option<Ended<S>> {
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
    pub(crate) fn server_ends(&self) -> &[(Address, EndKind)] {
        &self.server_ends
    }

    /// Blocks the link from `from` to `to` (one way); segments wait and are retried every
    /// `Faults::retransmit` until [`heal`](Self::heal).
    pub(crate) fn partition_one_way(&mut self, from: HostId, to: HostId) {
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
    pub(crate) fn partition(&mut self, a: HostId, b: HostId) {
        self.partition_one_way(a, b);
        self.partition_one_way(b, a);
    }

    /// Lifts every partition.
    pub(crate) fn heal(&mut self) {
        self.partitions.clear();
        self.trace.record(self.now, format_args!("heal"), &[]);
    }

    /// The host's program dies: its connections vanish without a word to their sessions (the
    /// peers see resets) and its listeners stop (connects are refused) until
    /// [`restart`](Self::restart).
    pub(crate) fn crash(&mut self, host: HostId) {
        self.hosts[host.0].up = false;
        self.hosts[host.0].incarnation += 1;
        // Its listening sockets die with it (a restarted program listens anew).
        for listener in &mut self.listeners {
            if listener.host == host {
                if let ListenerKind::Sockets(backlog) = &mut listener.kind {
                    listener.open = false;
                    backlog.queue.clear();
                    if let Some(waker) = backlog.waker.take() {
                        waker.wake();
                    }
                }
            }
        }
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
                        if let Some(raw) = end.raw.as_mut() {
                            // The host's program is gone: its task sees a reset if it runs on.
                            end.rst_in = true;
                            raw.wake_all();
                        }
                    }
                    self.send_segment(id, side, Segment::Rst);
                }
            }
        }
    }

    /// The host's program starts again: its listeners accept anew.
    pub(crate) fn restart(&mut self, host: HostId) {
        self.hosts[host.0].up = true;
        self.trace
            .record(self.now, format_args!("restart h{}", host.0), &[]);
    }

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
            let (&key, _) = self.queue.first_key_value()?;
            if key.0 > end {
                return None;
            }
            let event = self.queue.remove(&key)?;
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

    /// Binds a session's `Notify` (if it has one) to a turn of endpoint `side` of `id`.
    fn bind_wake(&self, conn: &mut SimConnection, id: usize, side: usize) {
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

    fn is_stale(&self, event: Event) -> bool {
        match event {
            Event::Timer(id, side) => self.conns[id].ends[side].as_ref().is_none_or(|e| e.done),
            Event::Wake(sleep) => !self.sleeps.contains_key(&sleep),
            Event::Notify(id, side) => self.conns[id].ends[side].as_ref().is_none_or(|e| e.done),
            _ => false,
        }
    }

    fn delay(&mut self) -> Duration {
        let jitter = u64::try_from(self.faults.jitter.as_nanos()).unwrap_or(u64::MAX);
        self.faults.latency
            + Duration::from_nanos(self.rng.borrow_mut().below(jitter.saturating_add(1)))
    }

    fn schedule(&mut self, at: Timestamp, event: Event) {
        // Events on the same instant run in an order drawn from the RNG.
        let tiebreak = self.rng.borrow_mut().next_u64();
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

    /// Puts a segment on the link from `side`: it leaves once the link has sent what was
    /// before it (at the link's bandwidth) and arrives after the link's delay, in order.
    fn send_segment(&mut self, id: usize, side: usize, segment: Segment) {
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

    fn handle_event(&mut self, event: Event) {
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
                        if let Some(raw) = end.raw.as_mut() {
                            raw.connect = ConnectState::Established;
                            raw.wake_all();
                        }
                        self.guarded(id, 0, |world| {
                            if let Some(conn) = world.conns[id].ends[0]
                                .as_mut()
                                .and_then(|e| e.conn.as_mut())
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
                    if let Some(conn) = end.conn.as_mut() {
                        conn.handle_io_error(local, std::io::ErrorKind::ConnectionRefused.into());
                    }
                    if let Some(raw) = end.raw.as_mut() {
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

    /// Turns the established server end of connection `id` into a session of the listener
    /// `index` (from its factory) and starts it; bytes that arrived meanwhile are its first
    /// input.
    fn serve(&mut self, index: usize, id: usize, peer: &Address) {
        let Some(end) = self.conns[id].ends[1].as_mut() else {
            return;
        };
        end.raw = None;
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
                end.conn = Some(conn);
            }
            if let Some(conn) = world.conns[id].ends[1]
                .as_mut()
                .and_then(|e| e.conn.as_mut())
            {
                conn.handle_start(now);
            }
        });
    }

    /// A served connection of the listener at `address` ended: serve the connections waiting
    /// in its backlog while there is room.
    fn admit_waiting(&mut self, address: &Address) {
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

    fn on_shut_down(&mut self, index: usize) {
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
            if end.done || end.raw.is_some() {
                continue;
            }
            let now = self.host_now(end.host);
            if let Some(end) = self.conns[id].ends[1].as_mut() {
                if let Some(conn) = end.conn.as_mut() {
                    conn.handle_shutdown(now);
                }
            }
            self.pump(id, 1);
        }
    }

    fn is_live_session(&self, id: usize) -> bool {
        self.conns[id].ends[1]
            .as_ref()
            .is_some_and(|e| e.raw.is_none() && !e.done)
    }

    /// Forgets the ended sessions of `address` and drops them (with their buffers): a long
    /// run keeps only what is live.
    fn prune_serving(&mut self, address: &Address) {
        let Some(ids) = self.serving.get(address) else {
            return;
        };
        let (live, ended): (Vec<usize>, Vec<usize>) =
            ids.iter().partition(|&&id| self.is_live_session(id));
        for id in ended {
            if let Some(end) = self.conns[id].ends[1].as_mut() {
                end.conn = None;
                end.rcvbuf = VecDeque::new();
            }
        }
        self.serving.insert(address.clone(), live);
    }

    /// Server-side session connections of the listener at `address` that have not ended.
    pub(crate) fn live_sessions(&self, address: &Address) -> usize {
        self.serving.get(address).map_or(0, |ids| {
            ids.iter().filter(|&&id| self.is_live_session(id)).count()
        })
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
                self.conns[id].ends[1] =
                    Some(Endpoint::raw(server_host, ConnectState::Established));
            }
            ListenerKind::Sessions { .. } => {
                self.conns[id].ends[1] =
                    Some(Endpoint::raw(server_host, ConnectState::Established));
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
                self.conns[id].ends[1] =
                    Some(Endpoint::raw(server_host, ConnectState::Established));
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
                let n = bytes.len();
                self.trace.record_fields(
                    self.now,
                    "data",
                    &[id as u64, from as u64, n as u64],
                    &bytes,
                    || format!("c{id} {from}->{to} data {n}"),
                );
                if receiver_gone {
                    // Bytes for a closed socket: the answer is a reset.
                    self.send_segment(id, to, Segment::Rst);
                    return;
                }
                if self.rng.borrow_mut().chance(self.faults.reset_per_million) {
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
            Segment::Fd(fd) => {
                self.trace
                    .record(self.now, format_args!("c{id} {from}->{to} fd"), &[]);
                let queued = match self.conns[id].ends[to].as_mut() {
                    Some(end) if !end.done => match end.raw.as_mut() {
                        Some(raw) => {
                            raw.fds_in.push_back(fd.clone());
                            true
                        }
                        None => false,
                    },
                    _ => false,
                };
                if !queued {
                    // Nobody to receive it: the reference in flight is dropped.
                    self.release_fd(&fd);
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
    /// Runs `work` (which calls into the session of connection `id`, side `side`) with a
    /// panic contained to that connection, as the socket backends contain it: the session is
    /// dropped and its socket closed (a reset if input was left unread), and the run goes on.
    fn guarded(&mut self, id: usize, side: usize, work: impl FnOnce(&mut World)) {
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
        end.conn = None;
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

    fn pump(&mut self, id: usize, side: usize) {
        if self.conns[id].ends[side]
            .as_ref()
            .is_some_and(|e| e.raw.is_some())
        {
            self.pump_raw(id, side);
            return;
        }
        self.guarded(id, side, |world| world.pump_session(id, side));
    }

    fn pump_session(&mut self, id: usize, side: usize) {
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
            let Some(conn) = end.conn.as_mut() else {
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

/// The raw sockets' side: what `Socket` and `sleep` call, from inside a task.
impl World {
    /// Starts a connect from `host` to `address` for a task; returns the connection's id.
    pub(crate) fn raw_connect(&mut self, host: HostId, address: &Address) -> usize {
        let id = self.conns.len();
        self.conns.push(SimConn {
            ends: [Some(Endpoint::raw(host, ConnectState::Connecting)), None],
            links: [Link::default(), Link::default()],
            server_address: address.clone(),
        });
        self.trace.record(
            self.now,
            format_args!(
                "c{id} connect {} -> {address} (socket)",
                self.hosts[host.0].name
            ),
            &[],
        );
        let at = self.now + self.delay();
        self.schedule(at, Event::Syn(id));
        id
    }

    /// Whether connection `id`'s connect finished.
    pub(crate) fn poll_connected(
        &mut self,
        id: usize,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let Some(end) = self.conns.get_mut(id).and_then(|c| c.ends[0].as_mut()) else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        let Some(raw) = end.raw.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        match raw.connect {
            ConnectState::Established => Poll::Ready(Ok(())),
            ConnectState::Refused => Poll::Ready(Err(io::ErrorKind::ConnectionRefused.into())),
            ConnectState::Connecting if end.rst_in => {
                Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()))
            }
            ConnectState::Connecting => {
                raw.reader = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// A listening socket on `host` at `address`, holding up to `backlog` established
    /// connections; returns the listener's index.
    pub(crate) fn raw_listen(
        &mut self,
        host: HostId,
        address: Address,
        backlog: usize,
    ) -> io::Result<usize> {
        if self
            .listeners
            .iter()
            .any(|l| l.open && l.address == address)
        {
            return Err(io::ErrorKind::AddrInUse.into());
        }
        self.trace.record(
            self.now,
            format_args!("h{} listens on {address}", host.0),
            &[],
        );
        self.listeners.push(Listener {
            host,
            address,
            kind: ListenerKind::Sockets(Backlog {
                queue: VecDeque::new(),
                limit: backlog.max(1),
                waker: None,
            }),
            open: true,
            handles: 1,
        });
        Ok(self.listeners.len() - 1)
    }

    /// The next established connection of listener `index`: its id and the peer's address.
    pub(crate) fn poll_accept(
        &mut self,
        index: usize,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(usize, Address)>> {
        let Some(listener) = self.listeners.get_mut(index) else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        if !listener.open || !self.hosts[listener.host.0].up {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        }
        let ListenerKind::Sockets(backlog) = &mut listener.kind else {
            return Poll::Ready(Err(io::ErrorKind::InvalidInput.into()));
        };
        match backlog.queue.pop_front() {
            Some(accepted) => Poll::Ready(Ok(accepted)),
            None => {
                backlog.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Closes listener `index`: later connects are refused, queued ones are reset.
    pub(crate) fn close_listener(&mut self, index: usize) {
        let Some(listener) = self.listeners.get_mut(index) else {
            return;
        };
        listener.handles = listener.handles.saturating_sub(1);
        if listener.handles > 0 {
            return;
        }
        listener.open = false;
        let queued: Vec<usize> = match &mut listener.kind {
            ListenerKind::Sockets(backlog) => backlog.queue.drain(..).map(|(id, _)| id).collect(),
            ListenerKind::Sessions { .. } => Vec::new(),
        };
        for id in queued {
            self.close_socket(id, 1);
        }
    }

    /// Reads what has arrived for endpoint (`id`, `side`): at most what the faults' short
    /// reads allow; 0 at the peer's end of stream; a reset as an error.
    pub(crate) fn poll_read(
        &mut self,
        id: usize,
        side: usize,
        buf: &mut [u8],
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let max_read = self.faults.max_read;
        let would_block = self
            .rng
            .borrow_mut()
            .chance(self.faults.would_block_per_million);
        let Some(end) = self.conns.get_mut(id).and_then(|c| c.ends[side].as_mut()) else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        let Some(raw) = end.raw.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        if end.rst_in {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if end.rcvbuf.is_empty() {
            if end.fin_in {
                return Poll::Ready(Ok(0));
            }
            raw.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        if would_block {
            // A spurious "would block": the task must cope with being woken for nothing.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let n = buf
            .len()
            .min(end.rcvbuf.len())
            .min(self.rng.borrow_mut().size(max_read));
        take_front(&mut end.rcvbuf, &mut buf[..n]);
        // What was taken opened the window: the peer may send more.
        self.pump(id, 1 - side);
        Poll::Ready(Ok(n))
    }

    /// Hands bytes to endpoint (`id`, `side`)'s send buffer: at most what the faults' short
    /// writes allow and the buffer has room for.
    pub(crate) fn poll_write(
        &mut self,
        id: usize,
        side: usize,
        buf: &[u8],
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let max_segment = self.faults.max_segment;
        let would_block = self
            .rng
            .borrow_mut()
            .chance(self.faults.would_block_per_million);
        let Some(end) = self.conns.get_mut(id).and_then(|c| c.ends[side].as_mut()) else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        let Some(raw) = end.raw.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        if end.rst_in {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        if raw.shutdown || raw.closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let room = SEND_BUFFER.saturating_sub(raw.sndbuf.len());
        if room == 0 || would_block {
            if would_block {
                cx.waker().wake_by_ref();
            } else {
                raw.writer = Some(cx.waker().clone());
            }
            return Poll::Pending;
        }
        let n = buf
            .len()
            .min(room)
            .min(self.rng.borrow_mut().size(max_segment));
        raw.sndbuf.extend(&buf[..n]);
        self.pump(id, side);
        Poll::Ready(Ok(n))
    }

    /// The task shut down its write side: a FIN follows what is buffered.
    pub(crate) fn shutdown_write(&mut self, id: usize, side: usize) {
        if let Some(raw) = self
            .conns
            .get_mut(id)
            .and_then(|c| c.ends[side].as_mut())
            .and_then(|e| e.raw.as_mut())
        {
            raw.shutdown = true;
        }
        self.pump(id, side);
    }

    /// The task closed (or dropped) its socket: buffered bytes are still sent, then a FIN; a
    /// reset instead if input was left unread, as a real stack does.
    /// The task aborts its socket: the close that follows sends a reset.
    pub(crate) fn abort_socket(&mut self, id: usize, side: usize) {
        if let Some(raw) = self
            .conns
            .get_mut(id)
            .and_then(|c| c.ends[side].as_mut())
            .and_then(|e| e.raw.as_mut())
        {
            raw.abort = true;
        }
    }

    pub(crate) fn close_socket(&mut self, id: usize, side: usize) {
        if let Some(raw) = self
            .conns
            .get_mut(id)
            .and_then(|c| c.ends[side].as_mut())
            .and_then(|e| e.raw.as_mut())
        {
            raw.handles = raw.handles.saturating_sub(1);
            if raw.handles > 0 {
                // Another socket (a passed copy) still refers to it.
                return;
            }
            raw.closed = true;
        }
        self.pump(id, side);
    }

    /// Passes `fd` over the Unix stream (`id`, `side`); the receiver gets it from
    /// `read_socket`. The passed socket stays open here too.
    pub(crate) fn send_fd(&mut self, id: usize, side: usize, fd: PassedFd) -> io::Result<()> {
        let Some(end) = self.conns.get(id).and_then(|c| c.ends[side].as_ref()) else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        let Some(raw) = end.raw.as_ref() else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        if end.rst_in {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        if raw.shutdown || raw.closed || raw.connect != ConnectState::Established {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        match &fd {
            PassedFd::Stream { id, side, .. } => {
                if let Some(raw) = self
                    .conns
                    .get_mut(*id)
                    .and_then(|c| c.ends[*side].as_mut())
                    .and_then(|e| e.raw.as_mut())
                {
                    raw.handles += 1;
                }
            }
            PassedFd::Listener { index, .. } => {
                if let Some(listener) = self.listeners.get_mut(*index) {
                    listener.handles += 1;
                }
            }
        }
        self.send_segment(id, side, Segment::Fd(fd));
        Ok(())
    }

    /// The next socket passed to (`id`, `side`); `None` at end of stream.
    pub(crate) fn poll_recv_fd(
        &mut self,
        id: usize,
        side: usize,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<Option<PassedFd>>> {
        let Some(end) = self.conns.get_mut(id).and_then(|c| c.ends[side].as_mut()) else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        let Some(raw) = end.raw.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        if end.rst_in {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        if let Some(fd) = raw.fds_in.pop_front() {
            return Poll::Ready(Ok(Some(fd)));
        }
        if end.fin_in {
            return Poll::Ready(Ok(None));
        }
        raw.reader = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Drops one reference to a passed socket (a message that could not be delivered).
    fn release_fd(&mut self, fd: &PassedFd) {
        match fd {
            PassedFd::Stream { id, side, .. } => self.close_socket(*id, *side),
            PassedFd::Listener { index, .. } => self.close_listener(*index),
        }
    }

    /// The drain rule for a raw endpoint: segment the send buffer within the window, send the
    /// FIN or reset the task asked for, wake the task where it can make progress.
    fn pump_raw(&mut self, id: usize, side: usize) {
        let (max_segment, window) = (self.faults.max_segment, self.faults.receive_window);
        let peer_buffered = self.conns[id].ends[1 - side]
            .as_ref()
            .map_or(0, |e| e.rcvbuf.len());
        let mut outgoing: Vec<Segment> = Vec::new();
        let mut finished = false;
        {
            let SimConn { ends, links, .. } = &mut self.conns[id];
            let Some(end) = ends[side].as_mut() else {
                return;
            };
            let Some(raw) = end.raw.as_mut() else {
                return;
            };
            if end.done || raw.connect != ConnectState::Established {
                if raw.closed {
                    end.done = true;
                }
                return;
            }
            if raw.closed && (!end.rcvbuf.is_empty() || end.rst_in || raw.abort) {
                // Closed with unread input (or already reset): a reset, nothing more.
                if !end.rst_in {
                    outgoing.push(Segment::Rst);
                }
                raw.sndbuf.clear();
                end.done = true;
                finished = true;
            } else {
                let mut in_flight = links[side].bytes_in_flight;
                while !raw.sndbuf.is_empty() && !end.rst_in {
                    let room = window.saturating_sub(in_flight + peer_buffered);
                    if room == 0 {
                        break;
                    }
                    let n = raw
                        .sndbuf
                        .len()
                        .min(room)
                        .min(self.rng.borrow_mut().size(max_segment));
                    let mut segment = vec![0; n];
                    take_front(&mut raw.sndbuf, &mut segment);
                    outgoing.push(Segment::Data(segment));
                    in_flight += n;
                }
                if (raw.shutdown || raw.closed)
                    && raw.sndbuf.is_empty()
                    && !end.fin_sent
                    && !end.rst_in
                {
                    outgoing.push(Segment::Fin);
                    end.fin_sent = true;
                }
                if raw.closed && (end.fin_sent || end.rst_in) {
                    end.done = true;
                    finished = true;
                }
                if raw.sndbuf.len() < SEND_BUFFER || end.rst_in {
                    if let Some(waker) = raw.writer.take() {
                        waker.wake();
                    }
                }
                if !end.rcvbuf.is_empty() || !raw.fds_in.is_empty() || end.fin_in || end.rst_in {
                    if let Some(waker) = raw.reader.take() {
                        waker.wake();
                    }
                }
            }
        }
        for segment in outgoing {
            self.send_segment(id, side, segment);
        }
        if finished {
            self.trace.record(
                self.now,
                format_args!("c{id} side {side} socket closed"),
                &[],
            );
        }
    }

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

    /// A port for a socket bound to port 0 (a fresh one each time, in order).
    pub(crate) fn ephemeral_port(&mut self) -> u16 {
        self.next_port = self.next_port.wrapping_add(1).max(32_768);
        self.next_port
    }

    /// Takes every waker the world holds, so that the tasks they keep alive can be dropped
    /// (outside the world's borrow) when the network is.
    pub(crate) fn take_wakers(&mut self) -> Vec<Waker> {
        let mut wakers = Vec::new();
        for conn in &mut self.conns {
            for end in conn.ends.iter_mut().flatten() {
                if let Some(raw) = end.raw.as_mut() {
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

    /// Whether `host` is up (a task of a crashed host is not run).
    pub(crate) fn host_up(&self, host: HostId) -> bool {
        self.hosts.get(host.0).is_some_and(|h| h.up)
    }

    /// How many times `host` has crashed: a task spawned in an earlier incarnation is dead.
    pub(crate) fn incarnation(&self, host: HostId) -> u64 {
        self.hosts.get(host.0).map_or(0, |h| h.incarnation)
    }
}
