//! `stress`: hostile-peer runs against concurrence's socket backends, on loopback only.
//!
//! `stress run [--backend polling|smol|uring] [--quick] [--scenario NAME]` starts a server process
//! per scenario (`stress serve`, a line echo on the chosen backend), plays one kind of hostile
//! peer against it, checks what must hold, and prints one line of figures per scenario.
//! It exits non-zero if any check failed. Every loop is bounded in count and time.

#![forbid(unsafe_code)]
// The report is the program's output.
#![allow(clippy::print_stdout)]

mod probe;
mod scenarios;
mod server;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Hostile-peer stress runs against concurrence's socket backends (loopback only).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the scenarios and print one line of figures each.
    Run {
        /// Only this backend (`polling`, `smol` or `uring`); default all three.
        #[arg(long)]
        backend: Option<String>,
        /// Only this scenario.
        #[arg(long)]
        scenario: Option<String>,
        /// Smaller loads (what CI runs).
        #[arg(long)]
        quick: bool,
    },
    /// Serve a line echo (the server under test; `run` starts it).
    Serve(server::ServeArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve(args) => match server::serve(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("stress serve: {message}");
                ExitCode::FAILURE
            }
        },
        Command::Run {
            backend,
            scenario,
            quick,
        } => run(backend.as_deref(), scenario.as_deref(), quick),
    }
}

fn run(backend: Option<&str>, only: Option<&str>, quick: bool) -> ExitCode {
    let backends: Vec<&str> = match backend {
        Some(b) => vec![b],
        None => vec!["polling", "smol", "uring"],
    };
    if let Some(name) = only {
        if !scenarios::ALL.iter().any(|(n, _)| *n == name) {
            let names: Vec<&str> = scenarios::ALL.iter().map(|(n, _)| *n).collect();
            eprintln!(
                "stress: no scenario {name:?}; there are: {}",
                names.join(", ")
            );
            return ExitCode::FAILURE;
        }
    }
    let (mut passed, mut failed) = (0, 0);
    for (name, scenario) in scenarios::ALL {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        for backend in &backends {
            let started = std::time::Instant::now();
            let outcome = scenario(backend, quick);
            let took = started.elapsed().as_secs_f64();
            match outcome {
                Ok(figures) => {
                    passed += 1;
                    println!("ok   {name:<15} {backend:<8} {figures} ({took:.1}s)");
                }
                Err(why) => {
                    failed += 1;
                    println!("FAIL {name:<15} {backend:<8} {why} ({took:.1}s)");
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
