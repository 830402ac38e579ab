//! The simulator against itself: echo under every fault preset over many seeds, determinism
//! (same seed, same trace), and the lifecycle on simulated links (refused connects, partitions,
//! crashes, timeouts at the right virtual time).

use std::time::Duration;

use concurrence_core::{Address, ConnectionConfig, EndKind, Timestamp};
use concurrence_sim::{Faults, SimNetwork, echo_run};
use concurrence_testkit::LineEcho;
use concurrence_testkit::Script;

fn address() -> Address {
    Address::Tcp(([10, 0, 0, 1], 7000).into())
}

#[test]
fn echo_loses_nothing_under_every_fault_preset() {
    for preset in ["none", "short-io", "all"] {
        let faults = Faults::preset(preset).unwrap();
        let mut failed = 0;
        for seed in 0..40 {
            let report = echo_run(seed, 8, 20, faults).unwrap();
            assert_eq!(
                report.violations, 0,
                "{preset}: {report}\nreplay: cargo run -p concurrence-sim --example sim-echo -- --seed {seed} --clients 8 --faults {preset}"
            );
            failed += report.failed;
        }
        if preset != "all" {
            assert_eq!(failed, 0, "{preset}: no connection may fail without faults");
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_run_and_other_seeds_differ() {
    for seed in [1, 99, 12_345] {
        let first = echo_run(seed, 5, 30, Faults::all()).unwrap();
        let second = echo_run(seed, 5, 30, Faults::all()).unwrap();
        assert_eq!(first, second, "seed {seed} is not deterministic");
        let other = echo_run(seed + 1, 5, 30, Faults::all()).unwrap();
        assert_ne!(first.trace_hash, other.trace_hash);
    }
}

#[test]
fn a_refused_connect_and_a_partition_are_end_reasons() {
    let mut sim = SimNetwork::new(3, Faults::none());
    let (a, b) = (sim.host("a"), sim.host("b"));
    // Nobody listens: refused.
    let lonely = sim.connect_session(
        a,
        &address(),
        Script::new().send("x"),
        ConnectionConfig::default(),
    );
    sim.run().unwrap();
    let ended = sim.take_client(&lonely).unwrap();
    assert_eq!(ended.reason.kind(), EndKind::ConnectRefused);
    assert_eq!(ended.session.end_kind(), Some(EndKind::ConnectRefused));
    // A partition: the connect times out at exactly its deadline.
    sim.serve_session(b, address(), ConnectionConfig::default(), |_| LineEcho);
    sim.partition(a, b);
    let started = sim.now();
    let timeout = Duration::from_secs(3);
    let config = ConnectionConfig::default().with_connect_timeout(Some(timeout));
    let cut_off = sim.connect_session(a, &address(), Script::new().send("x"), config);
    sim.run_for(Duration::from_secs(10)).unwrap();
    let ended = sim.take_client(&cut_off).unwrap();
    assert_eq!(ended.reason.kind(), EndKind::ConnectTimedOut);
    // Healed: it works again.
    sim.heal();
    let script = Script::new().send("hi\n").await_suffix("hi\n").close();
    let healed = sim.connect_session(a, &address(), script, ConnectionConfig::default());
    sim.run().unwrap();
    let ended = sim.take_client(&healed).unwrap();
    assert_eq!(ended.reason.kind(), EndKind::Closed);
    assert_eq!(ended.session.received(), b"hi\n");
    assert!(started <= sim.now());
}

#[test]
fn an_idle_timeout_fires_at_its_virtual_time() {
    let mut sim = SimNetwork::new(5, Faults::none());
    let (a, b) = (sim.host("a"), sim.host("b"));
    let idle = Duration::from_secs(60);
    sim.serve_session(
        b,
        address(),
        ConnectionConfig::default().with_idle_timeout(Some(idle)),
        |_| LineEcho,
    );
    // The client says one line, then waits far longer than the server's idle timeout.
    let script = Script::new().send("one\n").wait(Duration::from_secs(3_600));
    let quiet = sim.connect_session(a, &address(), script, ConnectionConfig::default());
    sim.run().unwrap();
    let ended = sim.take_client(&quiet).unwrap();
    assert_eq!(ended.session.received(), b"one\n");
    assert_eq!(sim.server_ends(), &[(address(), EndKind::IdleTimeout)]);
    // Zero latency: the idle clock started with the echo at t = 0.
    assert!(sim.trace().events() > 0);
    assert!(sim.now() >= Timestamp::from_duration(idle));
}

#[test]
fn a_crashed_server_resets_its_peers_and_serves_again_after_restart() {
    let mut sim = SimNetwork::new(11, Faults::none());
    let (a, b) = (sim.host("a"), sim.host("b"));
    sim.serve_session(b, address(), ConnectionConfig::default(), |_| LineEcho);
    let waiting = Script::new().send("x\n").await_suffix("never\n");
    let victim = sim.connect_session(a, &address(), waiting, ConnectionConfig::default());
    sim.run_for(Duration::from_secs(1)).unwrap();
    sim.crash(b);
    sim.run_for(Duration::from_secs(1)).unwrap();
    let ended = sim.take_client(&victim).unwrap();
    assert_eq!(ended.reason.kind(), EndKind::Reset);
    let refused = sim.connect_session(a, &address(), Script::new(), ConnectionConfig::default());
    sim.run_for(Duration::from_secs(1)).unwrap();
    assert_eq!(
        sim.take_client(&refused).unwrap().reason.kind(),
        EndKind::ConnectRefused
    );
    sim.restart(b);
    let script = Script::new().send("back\n").await_suffix("back\n").close();
    let again = sim.connect_session(a, &address(), script, ConnectionConfig::default());
    sim.run().unwrap();
    assert_eq!(
        sim.take_client(&again).unwrap().session.received(),
        b"back\n"
    );
}

#[test]
fn the_determinism_audit_finds_no_divergence_on_a_sample_of_seeds() {
    for seed in (0..200).step_by(20) {
        let divergence = concurrence_sim::echo_audit(seed, 6, 20, concurrence_sim::Faults::all())
            .expect("settles");
        assert_eq!(divergence, None, "seed {seed}");
    }
}
