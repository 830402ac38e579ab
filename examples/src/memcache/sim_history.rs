//! The memcache server's linearizability check in the simulator: clients share a few keys and
//! run `gets`, `set`, `delete` and `cas` on them, pipelined, recording every invocation and
//! reply in a [`History`]; the network injects every fault (short I/O, delays, resets, refused
//! connects), a partition that heals, and a crash of the server host with a restart that
//! forgets everything. The history must be linearizable against the per-key
//! [`CasRegister`] model: the cache may forget keys, never invent or resurrect values.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use concurrence_core::{
    Address, ConnectionConfig, EndKind, EndReason, Next, Session, SessionError, StreamReader,
    StreamWriter, Timestamp,
};
use concurrence_sim::{SimError, SimNetwork, SimRng};
use concurrence_testkit::history::{
    CasRegister, History, OperationId, RegisterOp, RegisterRet, check_per_key,
};

use super::client_codec::{ClientCodec, Reply, Request};
use super::command::StoreMode;
use super::server_session::{MemcacheSession, Shared};
use super::sim_load::{FixedHasher, server_address, sim_store_config};
use super::stats::ServerInfo;

/// The keys the clients share.
pub const KEYS: [&[u8]; 3] = [b"k0", b"k1", b"k2"];

/// A history of operations on the shared keys: `(key index, operation)` and the reply.
pub type KeyHistory = History<(usize, RegisterOp), RegisterRet>;

/// Requests a client keeps in flight at most.
const PIPELINE: usize = 2;

/// A client that runs `ops` random operations on the shared keys and records them.
#[derive(Debug)]
pub struct HistoryClient {
    id: usize,
    rng: SimRng,
    ops_left: usize,
    codec: ClientCodec,
    in_flight: VecDeque<OperationId>,
    /// The CAS unique this client last saw for each key.
    seen_cas: [Option<u64>; KEYS.len()],
    history: KeyHistory,
    out: Vec<u8>,
    written: u64,
    /// Replies that are not memcached replies to the request (a protocol violation).
    pub protocol_errors: Vec<String>,
    /// How the connection ended.
    pub end: Option<EndKind>,
}

impl HistoryClient {
    /// Client `id`, `ops` operations drawn from `seed`, recording into `history`.
    #[must_use]
    pub fn new(id: usize, seed: u64, ops: usize, history: KeyHistory) -> Self {
        HistoryClient {
            id,
            rng: SimRng::new(seed ^ (id as u64).wrapping_mul(0xA076_1D64_78BD_642F)),
            ops_left: ops,
            codec: ClientCodec::new(),
            in_flight: VecDeque::new(),
            seen_cas: [None; KEYS.len()],
            history,
            out: Vec::new(),
            written: 0,
            protocol_errors: Vec::new(),
            end: None,
        }
    }

    fn send_some(
        &mut self,
        now: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        while self.in_flight.len() < PIPELINE && self.ops_left > 0 {
            self.ops_left -= 1;
            let k = usize::try_from(self.rng.below(KEYS.len() as u64)).unwrap_or(0);
            let key = KEYS[k];
            let roll = self.rng.below(100);
            self.out.clear();
            let op = match (roll, self.seen_cas[k]) {
                (0..35, _) | (80.., None) => {
                    let keys = [key];
                    self.codec
                        .encode(
                            &Request::Get {
                                keys: &keys,
                                with_cas: true,
                            },
                            &mut self.out,
                        )
                        .map_err(|e| SessionError::Protocol(e.to_string()))?;
                    RegisterOp::Get
                }
                (35..65, _) => {
                    self.written += 1;
                    let value = format!("c{}-{}", self.id, self.written).into_bytes();
                    self.store(StoreMode::Set, key, &value)?;
                    RegisterOp::Set(value)
                }
                (65..80, _) => {
                    self.codec
                        .encode(&Request::Delete { key }, &mut self.out)
                        .map_err(|e| SessionError::Protocol(e.to_string()))?;
                    RegisterOp::Delete
                }
                (80.., Some(cas)) => {
                    self.written += 1;
                    let value = format!("c{}-{}", self.id, self.written).into_bytes();
                    self.store(StoreMode::Cas(cas), key, &value)?;
                    RegisterOp::Cas(value, cas)
                }
            };
            // Recorded before the request leaves: invocation precedes any effect.
            let id = self.history.invoke(self.id, (k, op), now);
            self.in_flight.push_back(id);
            writer.write_bytes(&self.out)?;
        }
        Ok(if self.ops_left == 0 && self.in_flight.is_empty() {
            Next::Close
        } else {
            Next::Continue
        })
    }

    fn store(&mut self, mode: StoreMode, key: &[u8], value: &[u8]) -> Result<(), SessionError> {
        let request = Request::Store {
            mode,
            key,
            flags: 0,
            exptime: 0,
            data: value,
        };
        self.codec
            .encode(&request, &mut self.out)
            .map_err(|e| SessionError::Protocol(e.to_string()))
    }
}

impl Session for HistoryClient {
    fn handle_start(
        &mut self,
        now: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        self.send_some(now, writer)
    }

    fn handle_input(
        &mut self,
        now: Timestamp,
        reader: &mut StreamReader,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        while let Some(reply) = self
            .codec
            .decode(reader)
            .map_err(|e| SessionError::Protocol(e.to_string()))?
        {
            let Some(id) = self.in_flight.pop_front() else {
                self.protocol_errors
                    .push(format!("a reply with nothing in flight: {reply:?}"));
                return Ok(Next::Close);
            };
            let ret = match reply {
                Reply::Values(values) => match values.as_slice() {
                    [] => RegisterRet::Missing,
                    [value] => {
                        let cas = value.cas.unwrap_or(0);
                        if let Some(k) = KEYS.iter().position(|key| *key == value.key.as_slice()) {
                            self.seen_cas[k] = Some(cas);
                        }
                        RegisterRet::Value(value.data.clone(), cas)
                    }
                    more => {
                        self.protocol_errors
                            .push(format!("{} items for one key", more.len()));
                        return Ok(Next::Close);
                    }
                },
                Reply::Stored => RegisterRet::Stored,
                Reply::NotFound => RegisterRet::Missing,
                Reply::Deleted => RegisterRet::Deleted,
                Reply::Exists => RegisterRet::Exists,
                other => {
                    self.protocol_errors
                        .push(format!("unexpected reply {other:?}"));
                    return Ok(Next::Close);
                }
            };
            self.history.complete(id, ret, now);
        }
        self.send_some(now, writer)
    }

    fn handle_end(&mut self, _: Timestamp, reason: &EndReason) {
        self.end = Some(reason.kind());
    }
}

/// What a history run did.
#[derive(Debug, Clone)]
pub struct HistoryReport {
    /// Operations recorded.
    pub operations: usize,
    /// Of which ambiguous (their reply lost to a fault).
    pub ambiguous: usize,
    /// Whether the server host crashed and restarted during the run.
    pub crashed: bool,
    /// Protocol violations the clients saw.
    pub protocol_errors: Vec<String>,
}

fn memcache_shared(clients: usize) -> Arc<Shared<FixedHasher>> {
    Arc::new(Shared::new(
        ServerInfo {
            started: Timestamp::ZERO,
            pid: 0,
            threads: 1,
            max_connections: clients.max(1) * 2,
            store: sim_store_config(),
            ..ServerInfo::default()
        },
        FixedHasher::default(),
    ))
}

/// Serves a fresh memcache server (an empty store) at `address` on `host`.
fn serve_fresh(
    sim: &mut SimNetwork,
    host: concurrence_sim::HostId,
    address: &Address,
    clients: usize,
    config: ConnectionConfig,
) {
    let shared = memcache_shared(clients);
    let (reader, writer) = shared.buffers();
    sim.serve_session(
        host,
        address.clone(),
        config.with_buffers(reader, writer),
        move |_| MemcacheSession::new(Arc::clone(&shared)),
    );
}

/// Runs two waves of `clients` history clients (`ops` operations each) against the memcache
/// server on `sim`: the first wave meets a partition that heals and, when the run's choices
/// say so, a crash of the server host and a restart with an empty store; the second wave
/// starts after that. Returns the history and what happened.
///
/// # Errors
/// [`SimError::EventLimit`] if the run does not settle.
pub fn history_run(
    mut sim: SimNetwork,
    clients: usize,
    ops: usize,
) -> Result<(KeyHistory, HistoryReport), SimError> {
    let seed = sim.seed();
    let server = sim.host("server");
    let address = server_address();
    let config = ConnectionConfig::default()
        .with_idle_timeout(Some(Duration::from_secs(30)))
        .with_connect_timeout(Some(Duration::from_secs(5)));
    serve_fresh(&mut sim, server, &address, clients, config);
    let history = KeyHistory::new();
    let mut handles = Vec::new();
    let hosts: Vec<_> = (0..clients)
        .map(|i| sim.host(&format!("client{i}")))
        .collect();
    for (i, host) in hosts.iter().enumerate() {
        let client = HistoryClient::new(i, seed, ops, history.clone());
        handles.push(sim.connect_session(*host, &address, client, config));
    }
    // A partition between the server and one client, healed a little later.
    let cut = hosts[usize::try_from(sim.choose(hosts.len() as u64)).unwrap_or(0)];
    {
        let ms = sim.choose(20);
        sim.run_for(Duration::from_millis(ms))?;
    }
    sim.partition(server, cut);
    {
        let ms = 1 + sim.choose(200);
        sim.run_for(Duration::from_millis(ms))?;
    }
    sim.heal();
    // Maybe a crash: everything in flight at the server is lost, and the restarted server
    // starts with an empty store (a cache may forget; it must not invent).
    let crashed = sim.choose(2) == 1;
    if crashed {
        {
            let ms = sim.choose(30);
            sim.run_for(Duration::from_millis(ms))?;
        }
        sim.crash(server);
        {
            let ms = 1 + sim.choose(100);
            sim.run_for(Duration::from_millis(ms))?;
        }
        sim.restart(server);
        serve_fresh(&mut sim, server, &address, clients, config);
    }
    sim.run()?;
    for (i, host) in hosts.iter().enumerate() {
        let client = HistoryClient::new(clients + i, seed, ops, history.clone());
        handles.push(sim.connect_session(*host, &address, client, config));
    }
    sim.run()?;
    let mut protocol_errors = Vec::new();
    for handle in &handles {
        if let Some(ended) = sim.take_client(handle) {
            protocol_errors.extend(ended.session.protocol_errors);
        }
    }
    let operations = history.operations();
    let report = HistoryReport {
        operations: operations.len(),
        ambiguous: operations.iter().filter(|o| o.completed.is_none()).count(),
        crashed,
        protocol_errors,
    };
    Ok((history, report))
}

/// [`history_run`] and its verdict: the protocol errors, or the linearizability check.
///
/// # Errors
/// The first violation, described.
pub fn history_check(sim: SimNetwork, clients: usize, ops: usize) -> Result<HistoryReport, String> {
    let (history, report) =
        history_run(sim, clients, ops).map_err(|e| format!("the run did not settle: {e}"))?;
    if let Some(first) = report.protocol_errors.first() {
        return Err(format!("protocol violation: {first}"));
    }
    check_per_key(&CasRegister::default(), &history.operations()).map_err(|e| e.to_string())?;
    Ok(report)
}
