//! The memcache server under the simulator: C clients run a random get/set/delete/incr/cas mix
//! against one `MemcacheSession` server, each checking every reply against a model of the
//! store, with the network's faults on.
//!
//! Each client works on keys of its own, so its model is exact whatever the interleaving: a
//! reply that differs from the model is a violation. A connection lost with requests in flight
//! ends that client (what it had in flight may or may not have been applied); that is a fault,
//! not a violation. Expiry runs on the simulator's clock.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasherDefault, DefaultHasher};
use std::sync::Arc;
use std::time::Duration;

use concurrence_core::{
    Address, ConnectionConfig, EndKind, EndReason, Next, Session, SessionError, StreamReader,
    StreamWriter, Timestamp,
};
use concurrence_sim::{Faults, SimError, SimNetwork, SimRng};

use super::client_codec::{ClientCodec, MetaCode, MetaReply, MetaVerb, Reply, Request};
use super::command::StoreMode;
use super::server_session::{MemcacheSession, Shared};
use super::stats::ServerInfo;
use super::store::{StoreConfig, parse_counter};

/// The store's hasher in the simulator: fixed keys, so runs are reproducible.
pub type FixedHasher = BuildHasherDefault<DefaultHasher>;

/// Keys each client works on.
const KEYS_PER_CLIENT: u64 = 8;
/// Requests a client keeps in flight.
const PIPELINE_DEPTH: usize = 4;

/// What one item is, as a client believes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelItem {
    data: Vec<u8>,
    flags: u32,
    /// Bumped on every change the client sends.
    version: u64,
    /// The CAS unique learned from a `gets` answered at `version`.
    cas: Option<(u64, u64)>,
}

/// The reply a request must get.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// A `gets` of one key: this item (or none); learn its unique if `version` still holds.
    Value {
        key: usize,
        item: Option<(Vec<u8>, u32)>,
        version: u64,
    },
    Exactly(Reply),
    /// An `incr` of a non-numeric value.
    ClientError,
}

impl Expect {
    /// The same expectation for the meta form of the request: `mg` answers `VA` or `EN`,
    /// `ms` `HD`, `md` `HD` or `NF`, `ma` the new number as its value or `NF`.
    fn meta(self) -> Expect {
        match self {
            Expect::Exactly(reply) => Expect::Exactly(Reply::Meta(MetaReply {
                code: match &reply {
                    Reply::Stored | Reply::Deleted => MetaCode::Done,
                    Reply::Number(_) => MetaCode::Value,
                    _ => MetaCode::NotFound,
                },
                flags: Vec::new(),
                value: match reply {
                    Reply::Number(n) => Some(n.to_string().into_bytes()),
                    _ => None,
                },
            })),
            other => other,
        }
    }
}

/// One simulated client: `ops` random operations, pipelined, each reply checked.
#[derive(Debug)]
pub struct LoadClient {
    id: usize,
    rng: SimRng,
    ops_left: usize,
    codec: ClientCodec,
    expected: VecDeque<Expect>,
    model: BTreeMap<usize, ModelItem>,
    versions: u64,
    out: Vec<u8>,
    /// Replies checked.
    pub answered: u64,
    /// Replies that differ from the model, with the first few described.
    pub violations: u64,
    /// The first violations, described.
    pub notes: Vec<String>,
    /// How the connection ended.
    pub end: Option<EndKind>,
    /// When it ended (virtual time).
    pub ended_at: Timestamp,
}

impl LoadClient {
    /// Client `id` doing `ops` operations drawn from `seed`.
    #[must_use]
    pub fn new(id: usize, seed: u64, ops: usize) -> Self {
        LoadClient {
            id,
            rng: SimRng::new(seed ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            ops_left: ops,
            codec: ClientCodec::new(),
            expected: VecDeque::new(),
            model: BTreeMap::new(),
            versions: 0,
            out: Vec::new(),
            answered: 0,
            violations: 0,
            notes: Vec::new(),
            end: None,
            ended_at: Timestamp::ZERO,
        }
    }

    /// True when every operation was sent and answered.
    #[must_use]
    pub fn finished(&self) -> bool {
        self.ops_left == 0 && self.expected.is_empty()
    }

    fn key(&self, index: usize) -> Vec<u8> {
        format!("c{}:k{index}", self.id).into_bytes()
    }

    fn violation(&mut self, what: String) {
        self.violations += 1;
        if self.notes.len() < 5 {
            self.notes.push(format!("client {}: {what}", self.id));
        }
    }

    fn next_version(&mut self) -> u64 {
        self.versions += 1;
        self.versions
    }

    /// Draws one operation, encodes it and records the reply the model predicts.
    fn send_one(&mut self) {
        let index = usize::try_from(self.rng.below(KEYS_PER_CLIENT)).unwrap_or(0);
        let key = self.key(index);
        let roll = self.rng.below(100);
        let current = self.model.get(&index).cloned();
        let (request_owned, expect) = match roll {
            0..=39 => (
                Owned::Get,
                Expect::Value {
                    key: index,
                    item: current.as_ref().map(|i| (i.data.clone(), i.flags)),
                    version: current.as_ref().map_or(0, |i| i.version),
                },
            ),
            40..=64 => {
                let data = self.random_value();
                let flags = u32::try_from(self.rng.below(1 << 16)).unwrap_or(0);
                let version = self.next_version();
                self.model.insert(
                    index,
                    ModelItem {
                        data: data.clone(),
                        flags,
                        version,
                        cas: None,
                    },
                );
                (Owned::Set(data, flags), Expect::Exactly(Reply::Stored))
            }
            65..=74 => {
                let existed = self.model.remove(&index).is_some();
                (
                    Owned::Delete,
                    Expect::Exactly(if existed {
                        Reply::Deleted
                    } else {
                        Reply::NotFound
                    }),
                )
            }
            75..=84 => {
                let delta = self.rng.below(1000);
                let expect = match self.model.get_mut(&index) {
                    None => Expect::Exactly(Reply::NotFound),
                    Some(item) => match parse_counter(&item.data) {
                        Some(old) => {
                            let new = old.wrapping_add(delta);
                            let mut text = new.to_string().into_bytes();
                            if text.len() < item.data.len() {
                                text.resize(item.data.len(), b' ');
                            }
                            item.data = text;
                            item.cas = None;
                            Expect::Exactly(Reply::Number(new))
                        }
                        None => Expect::ClientError,
                    },
                };
                if matches!(expect, Expect::Exactly(Reply::Number(_))) {
                    let version = self.next_version();
                    if let Some(item) = self.model.get_mut(&index) {
                        item.version = version;
                    }
                }
                (Owned::Incr(delta), expect)
            }
            _ => {
                let data = self.random_value();
                let flags = 7;
                let known = current
                    .as_ref()
                    .and_then(|i| i.cas.filter(|&(_, at)| at == i.version));
                let (unique, expect) = match (&current, known) {
                    (None, _) => (1, Reply::NotFound),
                    (Some(_), Some((unique, _))) => (unique, Reply::Stored),
                    // Unique 0 is never issued: the item exists but "changed".
                    (Some(_), None) => (0, Reply::Exists),
                };
                if expect == Reply::Stored {
                    let version = self.next_version();
                    self.model.insert(
                        index,
                        ModelItem {
                            data: data.clone(),
                            flags,
                            version,
                            cas: None,
                        },
                    );
                }
                (Owned::Cas(data, unique), Expect::Exactly(expect))
            }
        };
        let keys = [key.as_slice()];
        let form = if self.rng.below(3) == 0 && !matches!(request_owned, Owned::Cas(..)) {
            Form::Meta
        } else {
            Form::Classic
        };
        let expect = if form == Form::Meta {
            expect.meta()
        } else {
            expect
        };
        let flag_words: Vec<Vec<u8>> = match &request_owned {
            Owned::Get => vec![b"v".to_vec(), b"f".to_vec(), b"c".to_vec()],
            Owned::Set(_, flags) => vec![format!("F{flags}").into_bytes(), b"T0".to_vec()],
            Owned::Incr(delta) => vec![format!("D{delta}").into_bytes(), b"v".to_vec()],
            _ => Vec::new(),
        };
        let flag_refs: Vec<&[u8]> = flag_words.iter().map(Vec::as_slice).collect();
        let meta = |command, data: &'static [u8]| Request::Meta {
            command,
            key: &key,
            flags: &flag_refs,
            data,
        };
        let request = match (&request_owned, form) {
            (Owned::Get, Form::Meta) => meta(MetaVerb::Get, b""),
            (Owned::Set(data, _), Form::Meta) => Request::Meta {
                command: MetaVerb::Set,
                key: &key,
                flags: &flag_refs,
                data,
            },
            (Owned::Delete, Form::Meta) => meta(MetaVerb::Delete, b""),
            (Owned::Incr(_), Form::Meta) => meta(MetaVerb::Arithmetic, b""),
            _ => match &request_owned {
                Owned::Get => Request::Get {
                    keys: &keys,
                    with_cas: true,
                },
                Owned::Set(data, flags) => Request::Store {
                    mode: StoreMode::Set,
                    key: &key,
                    flags: *flags,
                    exptime: 0,
                    data,
                },
                Owned::Delete => Request::Delete { key: &key },
                Owned::Incr(delta) => Request::Arithmetic {
                    incr: true,
                    key: &key,
                    delta: *delta,
                },
                Owned::Cas(data, unique) => Request::Store {
                    mode: StoreMode::Cas(*unique),
                    key: &key,
                    flags: 7,
                    exptime: 0,
                    data,
                },
            },
        };
        if self.codec.encode(&request, &mut self.out).is_ok() {
            self.expected.push_back(expect);
        }
        self.ops_left -= 1;
    }

    /// A value: often a small counter, else random bytes of up to 3,000 (CR and LF inside
    /// included: values are binary).
    fn random_value(&mut self) -> Vec<u8> {
        if self.rng.below(3) == 0 {
            return self.rng.below(10_000).to_string().into_bytes();
        }
        let max = if self.rng.below(10) == 0 { 3000 } else { 40 };
        let len = self.rng.size(max);
        (0..len)
            .map(|_| u8::try_from(self.rng.below(256)).unwrap_or(0))
            .collect()
    }

    fn check(&mut self, reply: Reply) {
        self.answered += 1;
        let Some(expect) = self.expected.pop_front() else {
            self.violation(format!("reply {reply:?} with nothing in flight"));
            return;
        };
        match (expect, reply) {
            (Expect::Value { key, item, version }, Reply::Values(values)) => {
                let got = values.first().map(|v| (v.data.clone(), v.flags));
                if values.len() > 1 || got != item {
                    let brief = |item: Option<(Vec<u8>, u32)>| {
                        item.map(|(data, flags)| format!("{} bytes, flags {flags}", data.len()))
                    };
                    let got = brief(got);
                    let expected = brief(item);
                    self.violation(format!(
                        "gets k{key}: expected {expected:?}, got {got:?} ({} values)",
                        values.len()
                    ));
                    return;
                }
                if let (Some(value), Some(model)) = (values.first(), self.model.get_mut(&key))
                    && model.version == version
                {
                    model.cas = value.cas.map(|c| (c, version));
                }
            }
            (Expect::Value { key, item, version }, Reply::Meta(reply)) => {
                let got = reply.value.clone().map(|data| {
                    (
                        data,
                        u32::try_from(reply.number(b'f').unwrap_or(0)).unwrap_or(0),
                    )
                });
                let expected_code = if item.is_some() {
                    MetaCode::Value
                } else {
                    MetaCode::Miss
                };
                if got != item || reply.code != expected_code {
                    self.violation(format!("mg k{key}: expected {item:?}, got {reply:?}"));
                    return;
                }
                if let Some(model) = self.model.get_mut(&key)
                    && model.version == version
                {
                    model.cas = reply
                        .number(b'c')
                        .and_then(|c| u64::try_from(c).ok())
                        .map(|c| (c, version));
                }
            }
            (Expect::ClientError, Reply::Error(line)) if line.starts_with("CLIENT_ERROR") => {}
            (Expect::Exactly(expected), reply) if expected == reply => {}
            (expect, reply) => self.violation(format!("expected {expect:?}, got {reply:?}")),
        }
    }

    fn top_up(&mut self, writer: &mut StreamWriter) -> Result<(), SessionError> {
        while self.ops_left > 0 && self.expected.len() < PIPELINE_DEPTH {
            self.send_one();
        }
        if !self.out.is_empty() {
            writer.write_bytes(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }
}

/// An operation's owned arguments, before it is borrowed into a `Request`.
enum Owned {
    Get,
    Set(Vec<u8>, u32),
    Delete,
    Incr(u64),
    Cas(Vec<u8>, u64),
}

/// Whether an operation goes out as its classic command or its meta form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Classic,
    Meta,
}

impl Session for LoadClient {
    fn handle_start(
        &mut self,
        _now: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        self.top_up(writer)?;
        Ok(Next::Continue)
    }

    fn handle_input(
        &mut self,
        _now: Timestamp,
        reader: &mut StreamReader,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        loop {
            match self.codec.decode(reader) {
                Ok(Some(reply)) => self.check(reply),
                Ok(None) => break,
                Err(error) => {
                    self.violation(format!("undecodable reply: {error}"));
                    return Ok(Next::Abort);
                }
            }
        }
        self.top_up(writer)?;
        Ok(if self.finished() {
            Next::Close
        } else {
            Next::Continue
        })
    }

    fn handle_end(&mut self, now: Timestamp, reason: &EndReason) {
        self.end = Some(reason.kind());
        self.ended_at = now;
    }
}

/// What one simulated run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// The seed.
    pub seed: u64,
    /// Clients run.
    pub clients: usize,
    /// Operations per client.
    pub ops: usize,
    /// Replies checked, over all clients.
    pub answered: u64,
    /// Virtual time at the end, milliseconds.
    pub virtual_ms: u128,
    /// The trace hash.
    pub trace_hash: u64,
    /// Replies that differ from the model, plus clients that closed without every reply.
    pub violations: u64,
    /// Clients whose connection was refused or reset (faults, not violations).
    pub failed: usize,
    /// The first violations, described.
    pub notes: Vec<String>,
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed={} clients={} ops={} virtual_ms={} trace_hash={:016x} violations={}",
            self.seed, self.clients, self.ops, self.virtual_ms, self.trace_hash, self.violations
        )
    }
}

/// The simulated server's address.
#[must_use]
pub fn server_address() -> Address {
    Address::Tcp(([10, 0, 0, 1], 11211).into())
}

/// The store settings in the simulator: the defaults, and Unix time 1.7e9 at virtual zero.
#[must_use]
pub fn sim_store_config() -> StoreConfig {
    StoreConfig {
        unix_time_at_zero: 1_700_000_000,
        ..StoreConfig::default()
    }
}

/// Runs `clients` load clients of `ops` operations each against one memcache server under
/// `faults`; `progress(clients_done, virtual_now)` is called after every simulated second.
///
/// # Errors
/// [`SimError::EventLimit`] if the run does not settle.
pub fn load_run(
    seed: u64,
    clients: usize,
    ops: usize,
    faults: Faults,
    progress: &mut dyn FnMut(usize, Timestamp),
) -> Result<LoadReport, SimError> {
    load_run_with(seed, clients, ops, faults, sim_store_config(), progress)
}

/// [`load_run`] with the server's store bounds given (a small memory limit makes the server
/// evict, which the clients' models see as lost writes: how the checker is shown to catch a
/// server that drops data).
///
/// # Errors
/// [`SimError::EventLimit`] if the run does not settle.
pub fn load_run_with(
    seed: u64,
    clients: usize,
    ops: usize,
    faults: Faults,
    store: StoreConfig,
    progress: &mut dyn FnMut(usize, Timestamp),
) -> Result<LoadReport, SimError> {
    load_scenario(SimNetwork::new(seed, faults), clients, ops, store, progress)
}

/// The load of [`load_run`] on a network you built (a seed runner's case, a replayed tape of
/// choices); the clients' own choices come from the network's seed.
///
/// # Errors
/// [`SimError::EventLimit`] if the run does not settle.
pub fn load_scenario(
    mut sim: SimNetwork,
    clients: usize,
    ops: usize,
    store: StoreConfig,
    progress: &mut dyn FnMut(usize, Timestamp),
) -> Result<LoadReport, SimError> {
    let seed = sim.seed();
    let server = sim.host("server");
    let address = server_address();
    let config = ConnectionConfig::default()
        .with_idle_timeout(Some(Duration::from_secs(30)))
        .with_connect_timeout(Some(Duration::from_secs(5)));
    let shared = Arc::new(Shared::new(
        ServerInfo {
            started: Timestamp::ZERO,
            pid: 0,
            threads: 1,
            max_connections: clients.max(1),
            store,
            ..ServerInfo::default()
        },
        FixedHasher::default(),
    ));
    let (reader, writer) = shared.buffers();
    let server_config = config.with_buffers(reader, writer);
    sim.serve_session(server, address.clone(), server_config, move |_| {
        MemcacheSession::new(Arc::clone(&shared))
    });
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let host = sim.host(&format!("client{i}"));
            sim.connect_session(host, &address, LoadClient::new(i, seed, ops), config)
        })
        .collect();
    let mut ended: Vec<Option<LoadClient>> = (0..clients).map(|_| None).collect();
    let mut done = 0;
    // An hour of virtual time is far past any run that settles (idle timeouts are 30 s).
    while done < clients && sim.now() < Timestamp::from_millis(3_600_000) {
        sim.run_for(Duration::from_secs(1))?;
        for (slot, handle) in ended.iter_mut().zip(&handles) {
            if slot.is_none()
                && let Some(end) = sim.take_client(handle)
            {
                *slot = Some(end.session);
                done += 1;
            }
        }
        progress(done, sim.now());
    }
    let mut report = LoadReport {
        seed,
        clients,
        ops,
        answered: 0,
        virtual_ms: 0,
        trace_hash: sim.trace().hash(),
        violations: 0,
        failed: 0,
        notes: Vec::new(),
    };
    for (i, client) in ended.into_iter().enumerate() {
        let Some(client) = client else {
            report.violations += 1;
            report.notes.push(format!("client {i} never ended"));
            continue;
        };
        report.answered += client.answered;
        report.virtual_ms = report
            .virtual_ms
            .max(client.ended_at.since_epoch().as_millis());
        report.violations += client.violations;
        report.notes.extend(client.notes.iter().cloned());
        match client.end {
            Some(EndKind::Closed) if client.finished() => {}
            Some(EndKind::Reset | EndKind::ConnectRefused) => report.failed += 1,
            end => {
                report.violations += 1;
                report.notes.push(format!(
                    "client {i} ended {end:?} with {} replies",
                    client.answered
                ));
            }
        }
    }
    Ok(report)
}
