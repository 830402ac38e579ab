//! The suite on concurrence's backends: every scenario passes on polling, smol and uring (real
//! loopback TCP and Unix sockets) and on the simulator under four seeds with faults.

use concurrence_conformance::{
    Backend, PollingBackend, SimBackend, SmolBackend, UringBackend, Verdict, run_suite, scenarios,
};

/// Runs the suite on `backend` and fails with every failure in full.
fn assert_conforms(backend: &mut dyn Backend) {
    let outcomes = run_suite(backend, None);
    assert_eq!(outcomes.len(), scenarios::all().len());
    let failures: Vec<String> = outcomes
        .iter()
        .filter(|o| matches!(o.verdict, Verdict::Fail(_)))
        .map(ToString::to_string)
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let applicable = outcomes
        .iter()
        .filter(|o| o.verdict == Verdict::Pass)
        .count();
    assert_eq!(
        applicable,
        outcomes.len(),
        "every scenario applies to {}",
        backend.name()
    );
}

#[test]
fn polling_conforms() {
    assert_conforms(&mut PollingBackend::default());
}

#[test]
fn smol_conforms() {
    assert_conforms(&mut SmolBackend::default());
}

#[test]
fn uring_conforms() {
    // Skipped, with the reason, only where the kernel refuses io_uring.
    if let Some(why) = UringBackend::unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    assert_conforms(&mut UringBackend::default());
}

#[test]
fn the_simulator_conforms_under_faults_on_four_seeds() {
    for seed in 0..4 {
        assert_conforms(&mut SimBackend::with_seed(seed));
    }
}

#[test]
fn a_wrong_transcript_is_reported_with_the_scenario_the_backend_and_the_first_difference() {
    // A backend that answers every scenario with the same one line must fail all of them,
    // each failure naming the scenario, the backend and the line that differs.
    struct Liar;
    impl Backend for Liar {
        fn name(&self) -> String {
            "liar".to_owned()
        }
        fn capabilities(&self) -> concurrence_conformance::Capabilities {
            concurrence_conformance::Capabilities {
                tcp: true,
                unix: false,
                fd_passing: false,
                handler_server: false,
                seed_socket: true,
            }
        }
        fn run(
            &mut self,
            _: concurrence_conformance::ScenarioBody,
        ) -> Result<concurrence_conformance::Transcript, String> {
            let mut t = concurrence_conformance::Transcript::new();
            t.line("client connected");
            Ok(t)
        }
    }
    let outcomes = run_suite(&mut Liar, Some("echo (tcp)"));
    assert_eq!(outcomes.len(), 1);
    let report = outcomes[0].to_string();
    assert!(
        report.starts_with(
            "echo (tcp) on liar: FAIL: line 2: expected `client received 'hello\\n'`, got nothing"
        ),
        "{report}"
    );
    let unix = run_suite(&mut Liar, Some("echo (unix)"));
    assert_eq!(unix[0].verdict, Verdict::NotApplicable("no Unix sockets"));
}
