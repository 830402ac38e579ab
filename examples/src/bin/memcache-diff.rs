//! Differential testing of our memcache server against Debian's memcached: seeded command
//! streams from a grammar of the whole text and meta protocol go to both, and the first reply
//! stream that differs (after the normalisation `docs/memcache.md` describes) is printed as a
//! minimal transcript.
//!
//! `cargo run --release -p concurrence-examples --bin memcache-diff -- --seed 0 --cases 100000`
//! (`--backend polling|smol|all`). It exits with 1 on a divergence, 2 when it cannot run.

#![allow(clippy::print_stdout)] // the report is the program's output

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use concurrence_examples::memcache::differential::{
    Backend, Memcached, OurServer, case_rng, run, stream, transcript,
};

/// Compares our memcache server with Debian's memcached on generated command streams.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The seed of the streams.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// How many streams (cases 0..N of the seed).
    #[arg(long, default_value_t = 2_000)]
    cases: u64,
    /// Which of our backends to compare.
    #[arg(long, value_enum, default_value_t = Which::All)]
    backend: Which,
    /// The memcached program to compare with.
    #[arg(long, default_value = "memcached")]
    memcached: String,
    /// Print the stream of this case (of --seed) and exit, without running anything.
    #[arg(long)]
    print_case: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Which {
    Polling,
    Smol,
    Uring,
    All,
}

fn main() -> ExitCode {
    let args = Args::parse();
    concurrence_examples::init_logging("warn");
    if let Some(case) = args.print_case {
        let stream = stream(&mut case_rng(args.seed, case), case);
        print!("{}", transcript(&stream, &[]));
        return ExitCode::SUCCESS;
    }
    let backends = match args.backend {
        Which::Polling => vec![Backend::Polling],
        Which::Smol => vec![Backend::Smol],
        Which::Uring => vec![Backend::Uring],
        Which::All => vec![Backend::Polling, Backend::Smol, Backend::Uring],
    };
    let mut diverged = false;
    for backend in backends {
        // A fresh memcached per backend: both servers start empty and see the same streams.
        let reference = match Memcached::start(&args.memcached, &[]) {
            Ok(reference) => reference,
            Err(error) => {
                eprintln!(
                    "Could not start {} ({error}); install it with `apt-get install memcached`.",
                    args.memcached
                );
                return ExitCode::from(2);
            }
        };
        let ours = match OurServer::start(backend) {
            Ok(ours) => ours,
            Err(error) => {
                eprintln!("Could not start our server on {}: {error}.", backend.name());
                return ExitCode::from(2);
            }
        };
        let started = Instant::now();
        let outcome = run(
            args.seed,
            args.cases,
            reference.address(),
            ours.address(),
            backend.name(),
        );
        match outcome {
            Ok(None) => println!(
                "{}: {} streams of seed {}, no divergence ({:.1} s)",
                backend.name(),
                args.cases,
                args.seed,
                started.elapsed().as_secs_f64()
            ),
            Ok(Some(divergence)) => {
                diverged = true;
                println!(
                    "{}: case {} of seed {} diverges (replay: --seed {} --cases {}):\n{}",
                    backend.name(),
                    divergence.case,
                    args.seed,
                    args.seed,
                    divergence.case + 1,
                    divergence.transcript
                );
            }
            Err(error) => {
                eprintln!("The comparison stopped: {error}.");
                return ExitCode::from(2);
            }
        }
    }
    if diverged {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
