//! `sim-echo`: C clients against a line-echo server session in the simulator, each checking
//! every reply against what it sent. One line per seed:
//! `seed=N clients=C events=E virtual_ms=T trace_hash=H violations=V`; exit 0 when every
//! seed had no violation, else 1 with the replay command on stderr.
//!
//! `cargo run --release -p concurrence-sim --example sim-echo -- --seed 7 --clients 100 --faults all`
//! `cargo run --release -p concurrence-sim --example sim-echo -- --seeds 0..1000 --clients 10`

#![allow(clippy::print_stdout)] // the report is the program's output

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use concurrence_sim::{Faults, echo_audit, echo_run};

/// Line-echo clients against a server session in the deterministic simulator.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The seed to run (same seed, same run).
    #[arg(long, default_value_t = 0, conflicts_with = "seeds")]
    seed: u64,
    /// A range of seeds, `A..B` (B excluded): one line each, then a summary.
    #[arg(long)]
    seeds: Option<String>,
    /// Clients.
    #[arg(long, default_value_t = 10)]
    clients: usize,
    /// Lines each client sends.
    #[arg(long, default_value_t = 100)]
    lines: usize,
    /// Fault preset: none, short-io or all.
    #[arg(long, default_value = "all")]
    faults: String,
    /// Determinism audit: every Nth seed runs twice and the traces must agree (0: never).
    /// On a difference the first diverging event is printed and the run fails.
    #[arg(long, default_value_t = 20)]
    audit_every: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let Some(faults) = Faults::preset(&args.faults) else {
        eprintln!(
            "sim-echo: unknown --faults {:?}: use none, short-io or all",
            args.faults
        );
        return ExitCode::FAILURE;
    };
    let seeds = match &args.seeds {
        None => args.seed..args.seed + 1,
        Some(range) => match concurrence_sim::parse_seed_range(range) {
            Some(seeds) => seeds,
            None => {
                eprintln!("sim-echo: --seeds takes A..B with A < B, e.g. 0..100");
                return ExitCode::FAILURE;
            }
        },
    };
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let (mut runs, mut audited, mut failing) = (0u64, 0u64, Vec::new());
    for seed in seeds.clone() {
        match echo_run(seed, args.clients, args.lines, faults) {
            Ok(report) => {
                println!("{report}");
                if report.violations > 0 {
                    failing.push(seed);
                }
            }
            Err(error) => {
                println!("seed={seed} clients={} error=\"{error}\"", args.clients);
                failing.push(seed);
            }
        }
        if args.audit_every > 0 && seed % args.audit_every == 0 {
            match echo_audit(seed, args.clients, args.lines, faults) {
                Ok(None) => audited += 1,
                Ok(Some(divergence)) => {
                    eprintln!("sim-echo: seed {seed} is not deterministic: {divergence}");
                    failing.push(seed);
                }
                Err(error) => {
                    eprintln!("sim-echo: seed {seed}: the audit run failed: {error}");
                    failing.push(seed);
                }
            }
        }
        runs += 1;
        if last_progress.elapsed().as_secs() >= 5 {
            eprintln!(
                "sim-echo: {runs} seeds done, {} failing so far",
                failing.len()
            );
            last_progress = Instant::now();
        }
    }
    if args.seeds.is_some() {
        let secs = started.elapsed().as_secs_f64();
        println!(
            "seeds={} failing={} audited={audited} seconds={secs:.2} seeds_per_second={:.1}",
            runs,
            failing.len(),
            runs as f64 / secs.max(1e-9)
        );
    }
    for seed in &failing {
        eprintln!(
            "replay: cargo run --release -p concurrence-sim --example sim-echo -- --seed {seed} --clients {} --lines {} --faults {}",
            args.clients, args.lines, args.faults
        );
    }
    if failing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
