//! `echo_run`: a ready-made scenario, used by the `sim-echo` example, the tests and the
//! benchmark: C clients each send lines to a line-echo server session, check every reply
//! against what they sent, and close. Any byte lost, duplicated or reordered, or a reply to a
//! line never sent, is a violation.

use std::time::Duration;

use concurrence_core::{
    Address, ConnectionConfig, EndKind, EndReason, Next, Session, SessionError, StreamReader,
    StreamWriter, Timestamp,
};

use concurrence_testkit::LineEcho;

use crate::{Divergence, Faults, SimError, SimNetwork, SimRng, Trace};

/// A client: sends `lines` lines of its own (a few at a time, pipelined), checks each reply
/// in order, then closes; counts what did not match.
#[derive(Debug)]
pub struct EchoClient {
    sent: Vec<Vec<u8>>,
    to_send: Vec<Vec<u8>>,
    answered: usize,
    /// Replies that were not the next line sent.
    pub violations: u64,
    /// How the connection ended.
    pub end: Option<EndKind>,
}

impl EchoClient {
    /// A client with `lines` random lines drawn from `rng`.
    pub fn new(rng: &mut SimRng, lines: usize) -> Self {
        let to_send = (0..lines)
            .map(|_| {
                let len = rng.size(60);
                let mut line: Vec<u8> = (0..len)
                    .map(|_| b'a' + u8::try_from(rng.below(26)).unwrap_or(0))
                    .collect();
                line.push(b'\n');
                line
            })
            .rev()
            .collect();
        EchoClient {
            sent: Vec::new(),
            to_send,
            answered: 0,
            violations: 0,
            end: None,
        }
    }

    /// True when every line was sent and answered.
    #[must_use]
    pub fn finished(&self) -> bool {
        self.to_send.is_empty() && self.answered == self.sent.len()
    }

    fn send_some(&mut self, writer: &mut StreamWriter) -> Result<(), SessionError> {
        // Keep up to 4 lines in flight.
        while self.sent.len() - self.answered < 4 {
            let Some(line) = self.to_send.pop() else {
                break;
            };
            writer.write_bytes(&line)?;
            self.sent.push(line);
        }
        Ok(())
    }
}

impl Session for EchoClient {
    fn handle_start(
        &mut self,
        _: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        self.send_some(writer)?;
        Ok(Next::Continue)
    }

    fn handle_input(
        &mut self,
        _: Timestamp,
        reader: &mut StreamReader,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        while let Some(line) = reader.read_line(true)? {
            match self.sent.get(self.answered) {
                Some(expected) if expected.as_slice() == line => {}
                _ => self.violations += 1,
            }
            self.answered += 1;
        }
        self.send_some(writer)?;
        Ok(if self.finished() {
            Next::Close
        } else {
            Next::Continue
        })
    }

    fn handle_end(&mut self, _: Timestamp, reason: &EndReason) {
        self.end = Some(reason.kind());
    }
}

/// What one `echo_run` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoReport {
    /// The seed.
    pub seed: u64,
    /// Clients run.
    pub clients: usize,
    /// Events the network processed.
    pub events: u64,
    /// Virtual time at the end, milliseconds.
    pub virtual_ms: u128,
    /// The trace hash.
    pub trace_hash: u64,
    /// Replies that did not match, plus clients that ended in order without every reply.
    pub violations: u64,
    /// Clients whose connection failed (refused, reset): not violations under faults.
    pub failed: usize,
}

impl std::fmt::Display for EchoReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed={} clients={} events={} virtual_ms={} trace_hash={:016x} violations={}",
            self.seed, self.clients, self.events, self.virtual_ms, self.trace_hash, self.violations
        )
    }
}

/// Runs `clients` echo clients of `lines` lines each against one server, under `faults`.
///
/// # Errors
/// [`SimError::EventLimit`] if the run does not settle.
pub fn echo_run(
    seed: u64,
    clients: usize,
    lines: usize,
    faults: Faults,
) -> Result<EchoReport, SimError> {
    echo_world(SimNetwork::new(seed, faults), clients, lines).map(|(report, _)| report)
}

/// [`echo_run`] on a network you built (a seed runner's case, a replayed tape of choices).
///
/// # Errors
/// [`SimError::EventLimit`] if the run does not settle.
pub fn echo_scenario(
    sim: SimNetwork,
    clients: usize,
    lines: usize,
) -> Result<EchoReport, SimError> {
    echo_world(sim, clients, lines).map(|(report, _)| report)
}

/// The determinism audit of one seed: runs it twice with readable traces and compares them;
/// `Some` names the first event where the two runs part.
///
/// # Errors
/// [`SimError::EventLimit`] if a run does not settle.
pub fn echo_audit(
    seed: u64,
    clients: usize,
    lines: usize,
    faults: Faults,
) -> Result<Option<Divergence>, SimError> {
    let (_, first) = echo_world(SimNetwork::new(seed, faults).keep_trace(), clients, lines)?;
    let (_, second) = echo_world(SimNetwork::new(seed, faults).keep_trace(), clients, lines)?;
    Ok(first.first_difference(&second))
}

fn echo_world(
    mut sim: SimNetwork,
    clients: usize,
    lines: usize,
) -> Result<(EchoReport, Trace), SimError> {
    let seed = sim.seed();
    let server = sim.host("server");
    let address: Address = Address::Tcp(([10, 0, 0, 1], 7000).into());
    let config = ConnectionConfig::default()
        .with_idle_timeout(Some(Duration::from_secs(30)))
        .with_connect_timeout(Some(Duration::from_secs(5)));
    sim.serve_session(server, address.clone(), config, |_| LineEcho);
    let mut rng = SimRng::new(seed ^ 0x5EED);
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let host = sim.host(&format!("client{i}"));
            let client = EchoClient::new(&mut rng, lines);
            sim.connect_session(host, &address, client, config)
        })
        .collect();
    sim.run()?;
    let mut violations = 0;
    let mut failed = 0;
    for handle in &handles {
        match sim.take_client(handle) {
            Some(ended) => {
                violations += ended.session.violations;
                match ended.reason.kind() {
                    EndKind::Closed => {
                        if !ended.session.finished() {
                            violations += 1;
                        }
                    }
                    EndKind::Reset | EndKind::ConnectRefused => failed += 1,
                    // Anything else (a timeout, a session error) is a bug in this scenario.
                    _ => violations += 1,
                }
            }
            None => violations += 1, // never ended
        }
    }
    let report = EchoReport {
        seed,
        clients,
        events: sim.trace().events(),
        virtual_ms: sim.now().since_epoch().as_millis(),
        trace_hash: sim.trace().hash(),
        violations,
        failed,
    };
    let trace = sim.trace().clone();
    Ok((report, trace))
}
