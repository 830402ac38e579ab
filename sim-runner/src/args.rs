//! `RunnerArgs`: the runner's command-line flags, for a program to flatten into its own
//! `clap` parser (`#[command(flatten)] runner: RunnerArgs`).

use std::ops::Range;

use concurrence_sim::parse_seed_range;

use crate::SimRunner;

/// `--seeds A..B`, `--seed S`, `--choices TEXT`, `--runner-threads N`, `--keep-going`,
/// `--no-shrink`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunnerArgs {
    /// Seeds to run, as `A..B` (B excluded).
    #[arg(long, default_value = "0..100", value_parser = parse_seeds)]
    pub seeds: Range<u64>,
    /// Run this one seed (replaying a failure); overrides --seeds.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Replay a tape of choices as the runner printed it (`LEN:INDEX=HEX,…`).
    #[arg(long)]
    pub choices: Option<String>,
    /// Threads running seeds (default: the machine's parallelism).
    #[arg(long)]
    pub runner_threads: Option<usize>,
    /// Run every seed, even after a failure.
    #[arg(long)]
    pub keep_going: bool,
    /// Do not shrink the first failure.
    #[arg(long)]
    pub no_shrink: bool,
}

fn parse_seeds(text: &str) -> Result<Range<u64>, String> {
    parse_seed_range(text).ok_or_else(|| format!("`{text}` is not a seed range like 0..100"))
}

impl RunnerArgs {
    /// A runner named `name` with these flags.
    ///
    /// # Errors
    /// `--choices` is not a tape the runner printed.
    pub fn runner(&self, name: &str) -> Result<SimRunner, String> {
        let mut runner = SimRunner::new(name)
            .seeds(self.seed.map_or(self.seeds.clone(), |s| s..s + 1))
            .keep_going(self.keep_going)
            .shrink(!self.no_shrink);
        if let Some(threads) = self.runner_threads {
            runner = runner.threads(threads);
        }
        if let Some(text) = &self.choices {
            let choices = crate::choices_from_text(text)
                .ok_or_else(|| format!("--choices: `{text}` is not a tape of choices"))?;
            runner = runner.replay_choices(choices);
        }
        Ok(runner)
    }
}
