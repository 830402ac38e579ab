//! The seed runner for simulated scenarios, yours or ours: give it a closure that builds a
//! [`SimNetwork`](concurrence_sim::SimNetwork) for a [`SimCase`] and returns a verdict (or
//! panics); it sweeps a seed range across threads (each run deterministic), stops at the first
//! failure or keeps going, reports seeds/s and events/s, and for a failure prints the seed, the
//! first violation and the command that replays it, then **shrinks** the failing run's
//! recorded choices (delivery splits, delays, faults, scheduling, the scenario's own
//! [`choose`](concurrence_sim::SimNetwork::choose) calls, `buggify!()`) to a minimal set and
//! prints the shrunk run's trace, each read as the session got it.
//!
//! Outside the deterministic simulator on purpose: it spawns threads and reads the wall clock
//! (for seeds per second), which `concurrence-sim` must not.
//!
//! ```
//! use concurrence_sim::Faults;
//! use concurrence_sim_runner::SimRunner;
//!
//! let report = SimRunner::new("doc_example").seeds(0..20).run(|case| {
//!     let mut sim = case.network(Faults::short_io());
//!     let clients = 1 + sim.choose(3);
//!     assert!(clients <= 3);
//!     sim.run().map_err(|e| e.to_string())
//! });
//! assert!(report.failures.is_empty(), "{report}");
//! assert_eq!(report.seeds_run, 20);
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod args;
mod case;
mod choices_text;
mod report;
mod runner;
mod shrink;

pub use args::RunnerArgs;
pub use case::SimCase;
pub use choices_text::{choices_from_text, choices_to_text};
pub use report::{Failure, RunReport, Shrunk};
pub use runner::{SimRunner, Verdict};
