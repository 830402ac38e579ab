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

mod delivery;
mod events;
mod hosts;
mod listeners;
mod raw_sockets;
mod sessions;
mod sleeps;

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

/// Who drives an endpoint: the core's `Connection` of a session, an async task through a raw
/// socket, or nobody (a session ended and was dropped, or a raw socket becoming a session).
#[allow(clippy::large_enum_variant)] // most endpoints are sessions: boxing one would allocate per connection
enum Driver {
    Session(SimConnection),
    Raw(RawSocket),
    Nobody,
}

struct Endpoint {
    host: HostId,
    driver: Driver,
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

impl Driver {
    fn conn_mut(&mut self) -> Option<&mut SimConnection> {
        match self {
            Driver::Session(conn) => Some(conn),
            _ => None,
        }
    }

    fn raw_ref(&self) -> Option<&RawSocket> {
        match self {
            Driver::Raw(raw) => Some(raw),
            _ => None,
        }
    }

    fn raw_mut(&mut self) -> Option<&mut RawSocket> {
        match self {
            Driver::Raw(raw) => Some(raw),
            _ => None,
        }
    }

    fn is_raw(&self) -> bool {
        matches!(self, Driver::Raw(_))
    }
}

impl Endpoint {
    fn take_session(&mut self) -> Option<SimConnection> {
        match std::mem::replace(&mut self.driver, Driver::Nobody) {
            Driver::Session(conn) => Some(conn),
            other => {
                self.driver = other;
                None
            }
        }
    }

    /// Drops the session (its buffers with it); a raw socket stays.
    fn drop_session(&mut self) {
        if matches!(self.driver, Driver::Session(_)) {
            self.driver = Driver::Nobody;
        }
    }

    fn raw_socket(host: HostId, connect: ConnectState) -> Self {
        Endpoint::driven_by(host, Driver::Raw(RawSocket::new(connect)))
    }

    fn new(host: HostId, conn: SimConnection) -> Self {
        Endpoint::driven_by(host, Driver::Session(conn))
    }

    fn driven_by(host: HostId, driver: Driver) -> Self {
        Endpoint {
            host,
            driver,
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
    /// Boxed: a finished connection keeps two empty slots, not two endpoints' worth.
    ends: [Option<Box<Endpoint>>; 2],
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

/// An event in the queue, ordered so that the heap's top is the earliest: by time, then the
/// tiebreak drawn for events of the same instant, then the order of scheduling.
pub(crate) struct Queued {
    key: (Timestamp, u64, u64),
    event: Event,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.key.cmp(&self.key)
    }
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
    queue: std::collections::BinaryHeap<Queued>,
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
            queue: std::collections::BinaryHeap::new(),
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
}
