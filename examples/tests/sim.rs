//! The memcache server under the simulator: checking clients over many seeds with faults on,
//! determinism by seed, and proof that the checker catches a server that loses writes.

use concurrence_examples::memcache::StoreConfig;
use concurrence_examples::memcache::sim_load::{load_run, load_run_with, sim_store_config};
use concurrence_sim::Faults;

fn quiet(_: usize, _: concurrence_core::Timestamp) {}

#[test]
fn no_violation_over_many_seeds_with_every_fault() {
    for (name, faults) in [("all", Faults::all()), ("short-io", Faults::short_io())] {
        let mut failed = 0;
        for seed in 0..15 {
            let report = load_run(seed, 8, 150, faults, &mut quiet).expect("settles");
            assert_eq!(
                report.violations, 0,
                "faults {name}: {report}\n{:#?}",
                report.notes
            );
            assert!(report.answered > 0, "{report}");
            failed += report.failed;
        }
        if name == "short-io" {
            assert_eq!(failed, 0, "short reads and writes lose nothing");
        }
    }
}

#[test]
fn a_seed_replays_exactly_and_seeds_differ() {
    let a = load_run(11, 6, 100, Faults::all(), &mut quiet).expect("settles");
    let b = load_run(11, 6, 100, Faults::all(), &mut quiet).expect("settles");
    assert_eq!(a, b);
    let c = load_run(12, 6, 100, Faults::all(), &mut quiet).expect("settles");
    assert_ne!(a.trace_hash, c.trace_hash);
}

#[test]
fn the_checker_catches_a_server_that_drops_writes() {
    // A store of 4 KiB evicts: clients read back less than they wrote.
    let tiny = StoreConfig {
        memory_limit: 4096,
        item_size_max: 4096,
        ..sim_store_config()
    };
    let report = load_run_with(3, 8, 200, Faults::none(), tiny, &mut quiet).expect("settles");
    assert!(report.violations > 0, "{report}");
    assert!(
        report.notes.iter().any(|n| n.contains("gets")),
        "{:#?}",
        report.notes
    );
}
