//! Bulk data and long runs in the simulator: one session sends 24 MiB to a client session over
//! a link cut into 1,460-byte segments (and reads of at most 64 KiB), the whole transfer checked
//! byte for byte (seconds per seed, simulated megabytes per second); and waves of 1,000 short
//! connections to one server, 10 and then 20 waves in one run (the cost per connection must
//! not grow with the connections made before: ended ones are reclaimed).
//!
//! `cargo bench -p concurrence-sim --bench bulk`

#![allow(clippy::print_stdout, missing_docs)]

use std::time::Instant;

use concurrence_core::{
    Address, ConnectionConfig, EndReason, Next, Session, SessionError, StreamReader, StreamWriter,
    Timestamp,
};
use concurrence_sim::{Faults, SimNetwork};
use concurrence_testkit::{Producer, pattern};

const TOTAL: usize = 24 << 20;

/// Reads everything and checks it against the pattern.
#[derive(Default)]
struct Checker {
    received: usize,
    wrong: usize,
    ended: bool,
}

impl Session for Checker {
    fn handle_input(
        &mut self,
        _: Timestamp,
        reader: &mut StreamReader,
        _: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        let bytes = reader.read_available();
        for (k, &b) in bytes.iter().enumerate() {
            if b != pattern(self.received + k) {
                self.wrong += 1;
            }
        }
        self.received += bytes.len();
        Ok(Next::Continue)
    }

    fn handle_end(&mut self, _: Timestamp, _: &EndReason) {
        self.ended = true;
    }
}

fn run(seed: u64) -> (usize, usize) {
    let mut faults = Faults::none();
    faults.max_segment = 1460;
    faults.max_read = 64 * 1024;
    let mut sim = SimNetwork::new(seed, faults);
    let (server, client) = (sim.host("server"), sim.host("client"));
    let address: Address = "10.0.0.1:7000".parse().expect("address");
    sim.serve_session(server, address.clone(), ConnectionConfig::default(), |_| {
        Producer {
            total: TOTAL,
            ..Producer::default()
        }
    });
    let handle = sim.connect_session(
        client,
        &address,
        Checker::default(),
        ConnectionConfig::default(),
    );
    sim.run().expect("settles");
    let ended = sim.take_client(&handle).expect("the client ended");
    (ended.session.received, ended.session.wrong)
}

/// `waves` waves of 1,000 clients, each sending one line to a line echo and closing.
fn waves(waves: usize) -> usize {
    let mut sim = SimNetwork::new(1, Faults::none());
    let (server, client) = (sim.host("server"), sim.host("client"));
    let address: Address = "10.0.0.1:7000".parse().expect("address");
    sim.serve_session(server, address.clone(), ConnectionConfig::default(), |_| {
        concurrence_testkit::LineEcho
    });
    let mut served = 0;
    for _ in 0..waves {
        let handles: Vec<_> = (0..1000)
            .map(|_| {
                let script = concurrence_testkit::Script::new()
                    .send("ping\n")
                    .await_suffix("ping\n")
                    .close();
                sim.connect_session(client, &address, script, ConnectionConfig::default())
            })
            .collect();
        sim.run().expect("settles");
        served += handles
            .iter()
            .filter(|h| {
                sim.take_client(h)
                    .is_some_and(|e| e.session.received() == b"ping\n")
            })
            .count();
    }
    served
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let seeds = if quick { 1 } else { 3 };
    let started = Instant::now();
    for seed in 0..seeds {
        let (received, wrong) = run(seed);
        assert_eq!((received, wrong), (TOTAL, 0), "seed {seed}");
    }
    let per_seed = started.elapsed().as_secs_f64() / f64::from(u32::try_from(seeds).unwrap_or(1));
    println!(
        "24 MiB session transfer, 1,460-byte segments: {per_seed:.3} s per seed, {:.0} simulated MB/s",
        (TOTAL as f64 / 1e6) / per_seed
    );
    for count in [10, 20] {
        let started = Instant::now();
        assert_eq!(waves(count), count * 1000);
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{count} waves of 1,000 connections: {seconds:.3} s, {:.2} us per connection",
            seconds * 1e6 / (count * 1000) as f64
        );
    }
}
