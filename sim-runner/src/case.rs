//! `SimCase`: one run the runner asks for (a seed, or a tape of choices to replay) and what
//! the run leaves behind for the runner (its choices, events and trace), collected when the
//! scenario drops its network.

use std::sync::{Arc, Mutex, PoisonError};

use concurrence_sim::{Choice, Faults, SimNetwork};

/// What one run left behind.
#[derive(Debug, Default, Clone)]
pub(crate) struct CaseOutcome {
    pub(crate) events: u64,
    pub(crate) choices: Vec<Choice>,
    pub(crate) trace: Vec<String>,
}

/// How a case makes its network's random choices.
#[derive(Debug, Clone)]
pub(crate) enum CaseSource {
    Seed(u64),
    Choices(Vec<Choice>),
}

/// One run of a scenario: build the network with [`network`](SimCase::network) (every random
/// choice then comes from the case: a seed, or a recorded tape when replaying or shrinking).
#[derive(Debug)]
pub struct SimCase {
    source: CaseSource,
    record: bool,
    keep_trace: bool,
    outcome: Arc<Mutex<CaseOutcome>>,
}

impl SimCase {
    pub(crate) fn new(source: CaseSource, record: bool, keep_trace: bool) -> Self {
        SimCase {
            source,
            record,
            keep_trace,
            outcome: Arc::default(),
        }
    }

    /// The seed of this run (0 when it replays a tape of choices).
    #[must_use]
    pub fn seed(&self) -> u64 {
        match self.source {
            CaseSource::Seed(seed) => seed,
            CaseSource::Choices(_) => 0,
        }
    }

    /// The run's network with `faults`. Build one per case; the runner collects its choices,
    /// events and trace when it is dropped.
    #[must_use]
    pub fn network(&self, faults: Faults) -> SimNetwork {
        let sim = match (&self.source, self.record) {
            (CaseSource::Seed(seed), false) => SimNetwork::new(*seed, faults),
            (CaseSource::Seed(seed), true) => SimNetwork::recording(*seed, faults),
            (CaseSource::Choices(choices), _) => SimNetwork::from_choices(choices.clone(), faults),
        };
        let sim = if self.keep_trace {
            sim.keep_trace()
        } else {
            sim
        };
        let outcome = Arc::clone(&self.outcome);
        sim.on_finish(move |sim| {
            let mut outcome = outcome.lock().unwrap_or_else(PoisonError::into_inner);
            outcome.events += sim.trace().events();
            outcome.choices = sim.choices();
            if let Some(lines) = sim.trace().lines() {
                outcome.trace = lines.to_vec();
            }
        })
    }

    pub(crate) fn outcome(&self) -> CaseOutcome {
        self.outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
