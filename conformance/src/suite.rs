//! Running the suite on a backend, and the report: one verdict per scenario, failures naming
//! the scenario, the backend and the first difference, and the scenario × backend table.

use std::fmt;

use crate::backend::Backend;
use crate::scenario::Scenario;
use crate::scenarios;

/// How one scenario went on one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The transcript matched.
    Pass,
    /// It did not, or the run failed; the text says where.
    Fail(String),
    /// The backend lacks what the scenario needs.
    NotApplicable(&'static str),
}

/// A scenario's verdict on a backend.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The scenario's title ("echo (tcp)").
    pub scenario: String,
    /// The backend's name.
    pub backend: String,
    /// How it went.
    pub verdict: Verdict,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.verdict {
            Verdict::Pass => write!(f, "{} on {}: pass", self.scenario, self.backend),
            Verdict::NotApplicable(why) => {
                write!(
                    f,
                    "{} on {}: not applicable ({why})",
                    self.scenario, self.backend
                )
            }
            Verdict::Fail(why) => write!(f, "{} on {}: FAIL: {why}", self.scenario, self.backend),
        }
    }
}

/// Runs one scenario on `backend`.
pub fn run_scenario(backend: &mut dyn Backend, scenario: &Scenario) -> Outcome {
    let verdict = if let Some(why) = scenario.unsupported_by(backend.capabilities()) {
        Verdict::NotApplicable(why)
    } else {
        let (body, kind) = (scenario.body, scenario.kind);
        match backend.run(Box::new(move |net| body(net, kind))) {
            Err(error) => Verdict::Fail(format!("the run failed: {error}")),
            Ok(transcript) => match transcript.first_difference(&scenario.expected_lines()) {
                None => Verdict::Pass,
                Some(difference) => {
                    Verdict::Fail(format!("{difference}; the whole transcript:\n{transcript}"))
                }
            },
        }
    };
    Outcome {
        scenario: scenario.title(),
        backend: backend.name(),
        verdict,
    }
}

/// Runs every scenario (or those whose title contains `filter`) on `backend`.
pub fn run_suite(backend: &mut dyn Backend, filter: Option<&str>) -> Vec<Outcome> {
    scenarios::all()
        .iter()
        .filter(|s| filter.is_none_or(|f| s.title().contains(f)))
        .map(|scenario| run_scenario(backend, scenario))
        .collect()
}

/// The scenario × backend table of pass marks, built from outcomes.
#[derive(Debug, Default)]
pub struct Table {
    columns: Vec<String>,
    rows: Vec<(String, Vec<Option<Verdict>>)>,
}

impl Table {
    /// An empty table.
    #[must_use]
    pub fn new() -> Self {
        Table::default()
    }

    /// Adds a column `name` from `outcomes`; several runs of one backend (simulator seeds)
    /// go in one column, failing if any run failed.
    pub fn add(&mut self, name: &str, outcomes: &[Outcome]) {
        let column = match self.columns.iter().position(|c| c == name) {
            Some(i) => i,
            None => {
                self.columns.push(name.to_owned());
                for (_, cells) in &mut self.rows {
                    cells.push(None);
                }
                self.columns.len() - 1
            }
        };
        for outcome in outcomes {
            let row = match self.rows.iter().position(|(s, _)| *s == outcome.scenario) {
                Some(i) => i,
                None => {
                    self.rows
                        .push((outcome.scenario.clone(), vec![None; self.columns.len()]));
                    self.rows.len() - 1
                }
            };
            let cell = &mut self.rows[row].1[column];
            *cell = match (cell.take(), &outcome.verdict) {
                (Some(Verdict::Fail(old)), _) => Some(Verdict::Fail(old)),
                (_, Verdict::Fail(new)) => Some(Verdict::Fail(new.clone())),
                (_, verdict) => Some(verdict.clone()),
            };
        }
    }

    /// Whether no cell failed.
    #[must_use]
    pub fn all_passed(&self) -> bool {
        self.rows
            .iter()
            .all(|(_, cells)| !cells.iter().any(|c| matches!(c, Some(Verdict::Fail(_)))))
    }

    /// The table in Markdown: `pass`, `FAIL`, `n/a` (not applicable) or blank (not run).
    #[must_use]
    pub fn to_markdown(&self) -> String {
        let mut out = format!("| scenario | {} |\n", self.columns.join(" | "));
        out.push_str(&format!("|---|{}\n", "---|".repeat(self.columns.len())));
        for (scenario, cells) in &self.rows {
            let marks: Vec<&str> = cells
                .iter()
                .map(|cell| match cell {
                    Some(Verdict::Pass) => "pass",
                    Some(Verdict::Fail(_)) => "FAIL",
                    Some(Verdict::NotApplicable(_)) => "n/a",
                    None => "",
                })
                .collect();
            out.push_str(&format!("| {scenario} | {} |\n", marks.join(" | ")));
        }
        out
    }
}
