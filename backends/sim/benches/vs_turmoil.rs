//! The simulator against turmoil on the same scenario, in the same run: C clients each make R
//! round trips of a 64-byte line to one echo server (write the line, read the echo, again),
//! async code on simulated TCP in both (`read_until` + `write_all`). Reports seeds per second,
//! round trips per second and the cost per round trip as the clients grow.
//!
//! `cargo bench -p concurrence-sim --bench vs_turmoil` (add `-- --quick` for a short run,
//! `-- --ours-only` to skip turmoil, whose 100-client run takes one to two minutes).
//! One core: both simulators are single-threaded.

#![allow(clippy::print_stdout, missing_docs)]

use std::time::{Duration, Instant};

use concurrence_core::Address;
use concurrence_sim::{Faults, SimNetwork, Socket, SocketServer};
use futures_lite::io::BufReader;
use futures_lite::{AsyncBufReadExt, AsyncWriteExt};

const LINE: usize = 64;

fn line(client: usize) -> Vec<u8> {
    let mut line: Vec<u8> = (0..LINE - 1)
        .map(|i| b'a' + u8::try_from((client + i) % 26).unwrap_or(0))
        .collect();
    line.push(b'\n');
    line
}

thread_local! {
    /// Events the last concurrence-sim run processed (network events and task polls).
    static EVENTS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// One seed on concurrence-sim; returns the round trips checked.
fn ours(seed: u64, clients: usize, rounds: usize) -> usize {
    let mut sim = SimNetwork::new(seed, Faults::none());
    let server = sim.host("server");
    let address: Address = "10.0.0.1:7000".parse().expect("address");
    let at = address.clone();
    sim.spawn(server, async move {
        let mut server = SocketServer::new(at);
        server
            .serve(|socket: Socket| async move {
                let mut stream = BufReader::new(socket);
                let mut buf = Vec::with_capacity(LINE);
                loop {
                    buf.clear();
                    if stream.read_until(b'\n', &mut buf).await? == 0 {
                        return Ok::<(), std::io::Error>(());
                    }
                    stream.get_mut().write_all(&buf).await?;
                }
            })
            .await
    })
    .detach();
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let host = sim.host(&format!("client{i}"));
            let address = address.clone();
            sim.spawn(host, async move {
                let socket = Socket::connect(&address, None).await.expect("connect");
                let mut stream = BufReader::new(socket);
                let line = line(i);
                let mut back = Vec::with_capacity(LINE);
                for _ in 0..rounds {
                    stream.get_mut().write_all(&line).await.expect("write");
                    back.clear();
                    stream.read_until(b'\n', &mut back).await.expect("read");
                    assert_eq!(back, line);
                }
                rounds
            })
        })
        .collect();
    sim.run().expect("settles");
    EVENTS.with(|events| events.set(events.get() + sim.trace().events()));
    tasks.into_iter().map(futures_lite::future::block_on).sum()
}

/// One seed on turmoil, the same scenario with tokio's I/O traits.
fn turmoil_run(seed: u64, clients: usize, rounds: usize) -> usize {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
    let mut builder = turmoil::Builder::new();
    builder
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(1_000_000));
    let mut sim = builder.build();
    sim.host("server", || async {
        let listener = turmoil::net::TcpListener::bind(("0.0.0.0", 7000)).await?;
        loop {
            let (socket, _) = listener.accept().await?;
            tokio::spawn(async move {
                let mut stream = BufReader::new(socket);
                let mut buf = Vec::with_capacity(LINE);
                loop {
                    buf.clear();
                    match stream.read_until(b'\n', &mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if stream.get_mut().write_all(&buf).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    for i in 0..clients {
        sim.client(format!("client{i}"), async move {
            let socket = turmoil::net::TcpStream::connect(("server", 7000)).await?;
            let mut stream = BufReader::new(socket);
            let line = line(i);
            let mut back = Vec::with_capacity(LINE);
            for _ in 0..rounds {
                stream.get_mut().write_all(&line).await?;
                back.clear();
                stream.read_until(b'\n', &mut back).await?;
                assert_eq!(back, line);
            }
            Ok(())
        });
    }
    sim.run().expect("turmoil run");
    clients * rounds
}

struct Row {
    who: &'static str,
    clients: usize,
    rounds: usize,
    seeds: u64,
    seconds: f64,
}

impl Row {
    fn seeds_per_second(&self) -> f64 {
        self.seeds as f64 / self.seconds
    }
    fn ns_per_round_trip(&self) -> f64 {
        self.seconds * 1e9 / (self.seeds as f64 * (self.clients * self.rounds) as f64)
    }
}

fn measure(
    who: &'static str,
    clients: usize,
    rounds: usize,
    seeds: u64,
    run: fn(u64, usize, usize) -> usize,
) -> Row {
    // One untimed run first, for both simulators alike: the first run of a process pays for
    // growing the allocator's heap and cold caches (it made single 10-client figures vary by
    // a third).
    run(seeds, clients, rounds);
    EVENTS.with(|events| events.set(0));
    let started = Instant::now();
    for seed in 0..seeds {
        let done = run(seed, clients, rounds);
        assert_eq!(done, clients * rounds);
    }
    let row = Row {
        who,
        clients,
        rounds,
        seeds,
        seconds: started.elapsed().as_secs_f64(),
    };
    println!(
        "{:<16} {:>5} clients x {:>5} round trips, {:>3} seeds: {:>9.3} seeds/s, {:>10.0} round trips/s, {:>8.0} ns per round trip",
        row.who,
        clients,
        rounds,
        seeds,
        row.seeds_per_second(),
        1e9 / row.ns_per_round_trip(),
        row.ns_per_round_trip()
    );
    let events = EVENTS.with(std::cell::Cell::get);
    if events > 0 {
        println!(
            "{:<16} {:>10.0} simulated events per second ({} events per seed)",
            "",
            events as f64 / row.seconds,
            events / seeds
        );
    }
    row
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let ours_only = std::env::args().any(|a| a == "--ours-only");
    let (rounds, big) = if quick { (100, 100) } else { (1000, 1000) };
    let mut rows = Vec::new();
    for clients in [10, 100, big] {
        let seeds = if clients * rounds >= 100_000 { 3 } else { 30 };
        rows.push(measure("concurrence-sim", clients, rounds, seeds, ours));
    }
    if !ours_only {
        for clients in [10, 100] {
            rows.push(measure("turmoil 0.7", clients, rounds, 1, turmoil_run));
        }
    }
    println!();
    for clients in [10, 100] {
        let find = |who: &str| {
            rows.iter()
                .find(|r| r.who.starts_with(who) && r.clients == clients)
                .map(Row::seeds_per_second)
        };
        if let (Some(ours), Some(theirs)) = (find("concurrence"), find("turmoil")) {
            println!(
                "{clients} clients x {rounds}: concurrence-sim runs {:.0}x turmoil's seeds per second",
                ours / theirs
            );
        }
    }
}
