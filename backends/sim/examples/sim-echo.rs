//! `sim-echo`: C clients against a line-echo server session in the simulator, each checking
//! every reply against what it sent, swept over seeds by the seed runner
//! (`concurrence-sim-runner`: threads, replay commands, shrinking of a failure). The last line
//! is the summary: `seeds=N failing=F audited=A seconds=S seeds_per_second=R events_per_second=E`;
//! exit 0 when every seed passed, else 1 with the report (replay commands, the shrunk run) on
//! stderr.
//!
//! `cargo run --release -p concurrence-sim --example sim-echo -- --seed 7 --clients 100 --faults all`
//! `cargo run --release -p concurrence-sim --example sim-echo -- --seeds 0..1000 --clients 10`

#![allow(clippy::print_stdout)] // the report is the program's output

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::Parser;
use concurrence_sim::{Faults, echo_audit, echo_scenario};
use concurrence_sim_runner::RunnerArgs;

/// Line-echo clients against a server session in the deterministic simulator.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    runner: RunnerArgs,
    /// Clients.
    #[arg(long, default_value_t = 10)]
    clients: usize,
    /// Lines each client sends.
    #[arg(long, default_value_t = 100)]
    lines: usize,
    /// Fault preset: none, short-io or all.
    #[arg(long, default_value = "all")]
    faults: String,
    /// Determinism audit: every Nth seed runs twice more with readable traces, which must
    /// agree (0: never). On a difference the first diverging event is the violation.
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
    let command = format!(
        "cargo run --release -p concurrence-sim --example sim-echo -- --clients {} --lines {} --faults {}",
        args.clients, args.lines, args.faults
    );
    let runner = match args.runner.runner("sim-echo") {
        Ok(runner) => runner.command(&command),
        Err(message) => {
            eprintln!("sim-echo: {message}");
            return ExitCode::FAILURE;
        }
    };
    let audited = AtomicU64::new(0);
    let report = runner.run(|case| {
        let seed = case.seed();
        let run = echo_scenario(case.network(faults), args.clients, args.lines)
            .map_err(|e| e.to_string())?;
        if run.violations > 0 {
            return Err(format!("{} violations ({run})", run.violations));
        }
        if args.audit_every > 0 && seed % args.audit_every == 0 {
            match echo_audit(seed, args.clients, args.lines, faults) {
                Ok(None) => {
                    audited.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Some(divergence)) => {
                    return Err(format!("seed {seed} is not deterministic: {divergence}"));
                }
                Err(error) => return Err(format!("the audit run failed: {error}")),
            }
        }
        Ok(())
    });
    if !report.failures.is_empty() {
        eprintln!("{report}");
    }
    println!(
        "seeds={} failing={} audited={} seconds={:.2} seeds_per_second={:.1} events_per_second={:.0}",
        report.seeds_run,
        report.failures.len(),
        audited.load(Ordering::Relaxed),
        report.elapsed.as_secs_f64(),
        report.seeds_per_second(),
        report.events_per_second()
    );
    if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
