//! `SimRunner`: sweeps a seed range over a scenario on several threads, collects failures,
//! shrinks the first, and says how to replay each. Environment overrides for replaying from
//! `cargo test`: `CONCURRENCE_SEED=S` (one seed), `CONCURRENCE_SEEDS=A..B`,
//! `CONCURRENCE_CHOICES=TEXT` (a shrunk run, as printed).

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use concurrence_sim::Choice;

use crate::case::{CaseSource, SimCase};
use crate::report::{Failure, RunReport, Shrunk};
use crate::shrink::shrink;

/// What a scenario says about one run: `Ok(())`, or the first violation it saw.
pub type Verdict = Result<(), String>;

/// Sweeps seeds over a scenario. See the crate docs.
#[derive(Debug, Clone)]
pub struct SimRunner {
    name: String,
    seeds: Range<u64>,
    threads: usize,
    keep_going: bool,
    shrink: bool,
    max_shrink_runs: usize,
    replay: Option<Vec<Choice>>,
    command: Option<String>,
}

impl SimRunner {
    /// A runner whose replay commands name `name` (your test's name): seeds `0..100`, one
    /// thread per core, stop at the first failure, shrink it. `CONCURRENCE_SEED`,
    /// `CONCURRENCE_SEEDS` and `CONCURRENCE_CHOICES` in the environment override the seeds.
    #[must_use]
    pub fn new(name: &str) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        SimRunner {
            name: name.to_owned(),
            seeds: 0..100,
            threads,
            keep_going: false,
            shrink: true,
            max_shrink_runs: 2_000,
            replay: None,
            command: None,
        }
    }

    /// For a program rather than a test: the command line that reruns it; replay commands
    /// then add `--seed N` or `--choices TEXT` (as [`RunnerArgs`](crate::RunnerArgs) parses).
    #[must_use]
    pub fn command(mut self, command: &str) -> Self {
        self.command = Some(command.to_owned());
        self
    }

    /// The seeds to run (`A..B`, B excluded), unless the environment names others.
    #[must_use]
    pub fn seeds(mut self, seeds: Range<u64>) -> Self {
        self.seeds = seeds;
        self
    }

    /// Threads running seeds at once (at least 1).
    #[must_use]
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Run every seed even after a failure (default: stop at the first).
    #[must_use]
    pub fn keep_going(mut self, keep_going: bool) -> Self {
        self.keep_going = keep_going;
        self
    }

    /// Shrink the first failure (default: on).
    #[must_use]
    pub fn shrink(mut self, shrink: bool) -> Self {
        self.shrink = shrink;
        self
    }

    /// Runs the shrinker may make (default 2,000).
    #[must_use]
    pub fn max_shrink_runs(mut self, runs: usize) -> Self {
        self.max_shrink_runs = runs;
        self
    }

    /// Replay one tape of choices instead of sweeping seeds.
    #[must_use]
    pub fn replay_choices(mut self, choices: Vec<Choice>) -> Self {
        self.replay = Some(choices);
        self
    }

    /// The seeds and tape the environment asks for, over the configured ones.
    fn seeds_and_replay(&self) -> (Range<u64>, Option<Vec<Choice>>) {
        let mut seeds = self.seeds.clone();
        if let Some(seed) = env("CONCURRENCE_SEED").and_then(|s| s.parse::<u64>().ok()) {
            seeds = seed..seed.saturating_add(1);
        } else if let Some(range) =
            env("CONCURRENCE_SEEDS").and_then(|s| concurrence_sim::parse_seed_range(&s))
        {
            seeds = range;
        }
        let replay = env("CONCURRENCE_CHOICES")
            .and_then(|text| crate::choices_from_text(&text))
            .or_else(|| self.replay.clone());
        (seeds, replay)
    }

    /// Runs `scenario` on every seed (or the one tape being replayed) and reports.
    pub fn run<F>(&self, scenario: F) -> RunReport
    where
        F: Fn(&SimCase) -> Verdict + Sync,
    {
        let (seeds, replay) = self.seeds_and_replay();
        let started = Instant::now();
        if let Some(choices) = replay {
            let case = SimCase::new(CaseSource::Choices(choices.clone()), true, true);
            let verdict = run_case(&scenario, &case);
            let outcome = case.outcome();
            let failures = verdict
                .err()
                .map(|message| Failure {
                    seed: 0,
                    message: message.clone(),
                    shrunk: Some(Shrunk {
                        original_len: choices.len(),
                        choices,
                        message,
                        trace: outcome.trace,
                        runs: 0,
                    }),
                })
                .into_iter()
                .collect();
            return RunReport {
                name: self.name.clone(),
                command: self.command.clone(),
                seeds_run: 1,
                events: outcome.events,
                elapsed: started.elapsed(),
                failures,
            };
        }
        let next = AtomicU64::new(seeds.start);
        let stop = AtomicBool::new(false);
        let (events, ran) = (AtomicU64::new(0), AtomicU64::new(0));
        let failures = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..self.threads {
                scope.spawn(|| {
                    while !stop.load(Ordering::SeqCst) {
                        let seed = next.fetch_add(1, Ordering::SeqCst);
                        if seed >= seeds.end {
                            break;
                        }
                        let case = SimCase::new(CaseSource::Seed(seed), false, false);
                        let verdict = run_case(&scenario, &case);
                        events.fetch_add(case.outcome().events, Ordering::Relaxed);
                        ran.fetch_add(1, Ordering::Relaxed);
                        if let Err(message) = verdict {
                            failures
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .push(Failure {
                                    seed,
                                    message,
                                    shrunk: None,
                                });
                            if !self.keep_going {
                                stop.store(true, Ordering::SeqCst);
                            }
                        }
                    }
                });
            }
        });
        let elapsed = started.elapsed();
        let mut failures = failures
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        failures.sort_by_key(|f| f.seed);
        if self.shrink {
            if let Some(first) = failures.first_mut() {
                first.shrunk = self.shrink_seed(&scenario, first.seed);
            }
        }
        RunReport {
            name: self.name.clone(),
            command: self.command.clone(),
            seeds_run: ran.into_inner(),
            events: events.into_inner(),
            elapsed,
            failures,
        }
    }

    /// Records the failing seed's choices, shrinks them, and replays the shrunk run with its
    /// trace; `None` if the seed does not fail again when replayed (a scenario that is not
    /// deterministic).
    fn shrink_seed<F>(&self, scenario: &F, seed: u64) -> Option<Shrunk>
    where
        F: Fn(&SimCase) -> Verdict + Sync,
    {
        let recorded = SimCase::new(CaseSource::Seed(seed), true, false);
        run_case(scenario, &recorded).err()?;
        let original = recorded.outcome().choices;
        let replays = |choices: &[Choice]| {
            let case = SimCase::new(CaseSource::Choices(choices.to_vec()), false, false);
            run_case(scenario, &case).is_err()
        };
        if !replays(&original) {
            return None;
        }
        let (choices, runs) = shrink(original.clone(), self.max_shrink_runs, replays);
        let last = SimCase::new(CaseSource::Choices(choices.clone()), false, true);
        let message = run_case(scenario, &last).err()?;
        Some(Shrunk {
            original_len: original.len(),
            choices,
            message,
            trace: last.outcome().trace,
            runs,
        })
    }
}

thread_local! {
    /// Set while this thread runs a case: its panics are failures the report shows, not
    /// noise for stderr (a shrink makes hundreds).
    static IN_CASE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs, once, a panic hook that stays quiet for panics inside a case and hands every
/// other panic to the hook that was there before.
fn quiet_case_panics() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_CASE.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Runs one case; a panic is a failure with its message.
fn run_case<F>(scenario: &F, case: &SimCase) -> Verdict
where
    F: Fn(&SimCase) -> Verdict,
{
    quiet_case_panics();
    IN_CASE.with(|c| c.set(true));
    let outcome = catch_unwind(AssertUnwindSafe(|| scenario(case)));
    IN_CASE.with(|c| c.set(false));
    match outcome {
        Ok(verdict) => verdict,
        Err(panic) => Err(format!("panicked: {}", panic_text(&*panic))),
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}
