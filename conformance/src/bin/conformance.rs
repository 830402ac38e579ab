//! Runs the conformance suite on concurrence's backends and prints the scenario × backend
//! table (Markdown, as `docs/conformance.md` carries it) and every failure in full.
//!
//! ```text
//! cargo run --release -p concurrence-conformance -- --seeds 0..8
//! ```

use std::process::ExitCode;

use clap::Parser;
use concurrence_conformance::{
    Backend, Outcome, PollingBackend, SimBackend, SmolBackend, Table, UringBackend, Verdict,
    run_suite,
};

/// Run the conformance suite and print the scenario × backend table.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Backends to run, comma-separated: polling, smol, sim, uring (uring is skipped, with
    /// the reason printed, where the kernel refuses io_uring).
    #[arg(long, default_value = "polling,smol,sim,uring", value_delimiter = ',')]
    backends: Vec<String>,
    /// Simulator seeds, as `A..B` (each seed is one run of every scenario, with faults).
    #[arg(long, default_value = "0..8")]
    seeds: String,
    /// Only scenarios whose title contains this.
    #[arg(long)]
    filter: Option<String>,
}

#[allow(clippy::print_stdout)]
fn main() -> ExitCode {
    let args = Args::parse();
    let seeds = match concurrence_sim::parse_seed_range(&args.seeds) {
        Some(seeds) => seeds,
        None => {
            eprintln!(
                "error: --seeds takes a range A..B with A < B, not {:?}",
                args.seeds
            );
            return ExitCode::FAILURE;
        }
    };
    let mut table = Table::new();
    let mut failures: Vec<Outcome> = Vec::new();
    let filter = args.filter.as_deref();
    for name in &args.backends {
        let mut backends: Vec<Box<dyn Backend>> = match name.as_str() {
            "polling" => vec![Box::new(PollingBackend::default())],
            "smol" => vec![Box::new(SmolBackend::default())],
            "uring" => match UringBackend::unavailable() {
                None => vec![Box::new(UringBackend::default())],
                Some(why) => {
                    eprintln!("skipping uring: {why}");
                    continue;
                }
            },
            "sim" => seeds
                .clone()
                .map(|seed| Box::new(SimBackend::with_seed(seed)) as Box<dyn Backend>)
                .collect(),
            other => {
                eprintln!(
                    "error: there is no backend called {other:?} (polling, smol, sim, uring)"
                );
                return ExitCode::FAILURE;
            }
        };
        let column = if name == "sim" {
            format!("sim (seeds {}, faults)", args.seeds)
        } else {
            name.clone()
        };
        for backend in &mut backends {
            let outcomes = run_suite(backend.as_mut(), filter);
            failures.extend(
                outcomes
                    .iter()
                    .filter(|o| matches!(o.verdict, Verdict::Fail(_)))
                    .cloned(),
            );
            table.add(&column, &outcomes);
        }
    }
    println!("{}", table.to_markdown());
    for failure in &failures {
        println!("{failure}\n");
    }
    if table.all_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
