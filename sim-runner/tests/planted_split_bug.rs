//! A planted split-frame bug, as a protocol author would meet it: a server that takes every
//! read as one whole request. The runner finds it with short reads on, and shrinks the
//! failing run to one client, one request and a handful of choices, with a trace that shows
//! the read that split the request.

use std::sync::Mutex;

use concurrence_sim::Faults;
use concurrence_sim::planted::split_frame_run;
use concurrence_sim_runner::SimRunner;

/// What the last run used: (clients, requests of each).
static LAST: Mutex<(u64, Vec<u64>)> = Mutex::new((0, Vec::new()));

#[test]
fn a_split_frame_bug_is_found_and_shrinks_to_one_client_and_one_request() {
    let report = SimRunner::new("a_split_frame_bug_is_found_and_shrinks")
        .seeds(0..200)
        .threads(2)
        .run(|case| {
            // Reads and segments of up to 64 bytes: a request may be split, but the simplest
            // run (every choice 0) splits nothing, so the shrunk run keeps the split.
            let mut faults = Faults::short_io();
            faults.max_read = 64;
            faults.max_segment = 64;
            let (requests, verdict) = split_frame_run(case.network(faults));
            *LAST.lock().unwrap() = (requests.len() as u64, requests);
            verdict
        });
    assert!(!report.failures.is_empty(), "{report}");
    let failure = &report.failures[0];
    let shrunk = failure.shrunk.as_ref().expect("the failure shrinks");
    let (clients, requests) = LAST.lock().unwrap().clone();
    assert_eq!((clients, requests), (1, vec![1]), "{report}");
    assert!((1..=4).contains(&shrunk.nonzero()), "{report}");
    assert!(
        shrunk
            .trace
            .iter()
            .any(|line| line.contains("session reads") && !line.contains("\\n\"")),
        "the trace shows the read that split the request:\n{report}"
    );
    eprintln!("{report}");
}
