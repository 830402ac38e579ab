//! `buggify!()` in session code: never outside the simulator; inside it, on for some runs and
//! off for others, firing the same way every time a seed is replayed.

use concurrence_core::{
    Address, ConnectionConfig, Next, Session, SessionError, StreamReader, StreamWriter, Timestamp,
};
use concurrence_sim::{Faults, SimNetwork, buggify};
use concurrence_testkit::Script;

/// Echoes lines, but a buggified one is answered `EVICTED` (a rare path made common).
struct MaybeEvicting;

impl Session for MaybeEvicting {
    fn handle_input(
        &mut self,
        _: Timestamp,
        reader: &mut StreamReader,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        while let Some(line) = reader.read_line(true)? {
            if buggify!() {
                writer.write_bytes(b"EVICTED\n")?;
            } else {
                writer.write_bytes(line)?;
            }
        }
        Ok(Next::Continue)
    }
}

/// How many of 20 lines came back `EVICTED` under `seed`.
fn evicted(seed: u64) -> usize {
    let mut sim = SimNetwork::new(seed, Faults::none());
    let (server, client) = (sim.host("server"), sim.host("client"));
    let address: Address = "10.0.0.1:7000".parse().unwrap();
    sim.serve_session(server, address.clone(), ConnectionConfig::default(), |_| {
        MaybeEvicting
    });
    let lines = "x\n".repeat(20);
    let script = Script::new().send(&lines).close_write();
    let handle = sim.connect_session(client, &address, script, ConnectionConfig::default());
    sim.run().unwrap();
    let ended = sim.take_client(&handle).unwrap();
    String::from_utf8_lossy(ended.session.received().as_bytes())
        .lines()
        .filter(|l| *l == "EVICTED")
        .count()
}

#[test]
fn buggify_never_fires_outside_a_simulation() {
    for _ in 0..1000 {
        assert!(!buggify!());
        assert!(!concurrence_sim::buggify_with(1_000_000));
    }
}

#[test]
fn a_buggify_site_is_on_in_some_runs_fires_now_and_then_and_replays_with_its_seed() {
    let counts: Vec<usize> = (0..100).map(evicted).collect();
    let on = counts.iter().filter(|&&n| n > 0).count();
    // On in about a quarter of the runs; when on, about a quarter of the 20 lines.
    assert!(
        (10..=45).contains(&on),
        "site on in {on} of 100 runs: {counts:?}"
    );
    assert!(counts.iter().all(|&n| n < 20), "{counts:?}");
    for seed in 0..20 {
        assert_eq!(
            evicted(seed),
            counts[usize::try_from(seed).unwrap()],
            "seed {seed}"
        );
    }
}
