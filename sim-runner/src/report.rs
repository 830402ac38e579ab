//! What a sweep found: seeds run, speed, and each failure with its replay command and, for
//! the first, the shrunk run.

use std::fmt;
use std::time::Duration;

use concurrence_sim::Choice;

use crate::choices_to_text;

/// A failing seed.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// The first violation: the scenario's error, or its panic message.
    pub message: String,
    /// The shrunk run (the first failure only, when shrinking is on).
    pub shrunk: Option<Shrunk>,
}

/// A failing run shrunk to fewer, smaller choices that still fail.
#[derive(Debug, Clone)]
pub struct Shrunk {
    /// The choices of the shrunk run (replay with `CONCURRENCE_CHOICES`).
    pub choices: Vec<Choice>,
    /// How many choices the original failing run made.
    pub original_len: usize,
    /// The violation the shrunk run reports.
    pub message: String,
    /// The shrunk run's trace (every event, each read as the session got it).
    pub trace: Vec<String>,
    /// Runs the shrinker made.
    pub runs: usize,
}

impl Shrunk {
    /// Choices that are not 0 (each a decision away from the simplest run: a fault, a delay,
    /// a short read, another order, a scenario's `choose`).
    #[must_use]
    pub fn nonzero(&self) -> usize {
        self.choices.iter().filter(|c| **c != 0).count()
    }
}

/// The result of [`SimRunner::run`](crate::SimRunner::run).
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The name replay commands use (a test's name).
    pub name: String,
    /// For a program: the command line that reruns it, to which `--seed N` or `--choices
    /// TEXT` is added (`None`: replay through `cargo test` and the environment).
    pub command: Option<String>,
    /// Seeds run.
    pub seeds_run: u64,
    /// Events the runs processed, together.
    pub events: u64,
    /// Wall-clock time of the sweep (shrinking not included).
    pub elapsed: Duration,
    /// Failing seeds, lowest first.
    pub failures: Vec<Failure>,
}

impl RunReport {
    /// Seeds per second of wall-clock time.
    #[must_use]
    pub fn seeds_per_second(&self) -> f64 {
        per_second(self.seeds_run, self.elapsed)
    }

    /// Events per second of wall-clock time.
    #[must_use]
    pub fn events_per_second(&self) -> f64 {
        per_second(self.events, self.elapsed)
    }

    /// The command that replays `seed`.
    #[must_use]
    pub fn replay_seed(&self, seed: u64) -> String {
        match &self.command {
            Some(command) => format!("{command} --seed {seed}"),
            None => format!("CONCURRENCE_SEED={seed} cargo test {}", self.name),
        }
    }

    /// The command that replays a tape of choices written as `text`.
    #[must_use]
    pub fn replay_choices(&self, text: &str) -> String {
        match &self.command {
            Some(command) => format!("{command} --choices {text}"),
            None => format!("CONCURRENCE_CHOICES={text} cargo test {}", self.name),
        }
    }

    /// Panics with the whole report when a seed failed: the end of a `#[test]`.
    ///
    /// # Panics
    /// When [`failures`](Self::failures) is not empty.
    pub fn assert_ok(&self) {
        assert!(self.failures.is_empty(), "{self}");
    }
}

#[allow(clippy::cast_precision_loss)] // a rate for people to read
fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// The lines a shrunk trace is cut to, at its end.
const TRACE_TAIL: usize = 60;

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} seeds, {} failed; {:.0} seeds/s, {:.0} events/s",
            self.name,
            self.seeds_run,
            self.failures.len(),
            self.seeds_per_second(),
            self.events_per_second()
        )?;
        for failure in &self.failures {
            writeln!(f, "seed {} failed: {}", failure.seed, failure.message)?;
            writeln!(f, "  replay: {}", self.replay_seed(failure.seed))?;
            let Some(shrunk) = &failure.shrunk else {
                continue;
            };
            writeln!(
                f,
                "  shrunk in {} runs to {} choices ({} not 0; the failing run made {}): {}",
                shrunk.runs,
                shrunk.choices.len(),
                shrunk.nonzero(),
                shrunk.original_len,
                shrunk.message
            )?;
            writeln!(
                f,
                "  replay the shrunk run: {}",
                self.replay_choices(&choices_to_text(&shrunk.choices))
            )?;
            let skip = shrunk.trace.len().saturating_sub(TRACE_TAIL);
            writeln!(
                f,
                "  its trace ({} events{}):",
                shrunk.trace.len(),
                if skip > 0 { ", the last ones" } else { "" }
            )?;
            for line in &shrunk.trace[skip..] {
                writeln!(f, "    {line}")?;
            }
        }
        Ok(())
    }
}
