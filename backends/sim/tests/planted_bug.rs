//! A planted bug is found: a server session that assumes one read holds one whole request
//! passes with a perfect network and fails with short reads on, and the failing seed replays
//! to the same trace.

use concurrence_core::{
    Address, ConnectionConfig, EndKind, EndReason, Next, Session, SessionError, StreamReader,
    StreamWriter, Timestamp,
};
use concurrence_sim::planted::OneReadOneRequest;
use concurrence_sim::{Faults, SimNetwork};

/// Sends `PING n` one at a time, each after exactly one `OK`.
#[derive(Default)]
struct Pinger {
    sent: usize,
    wrong: bool,
    end: Option<EndKind>,
}

impl Session for Pinger {
    fn handle_start(&mut self, _: Timestamp, w: &mut StreamWriter) -> Result<Next, SessionError> {
        w.write_bytes(b"PING 0 with a longer body\n")?;
        self.sent = 1;
        Ok(Next::Continue)
    }
    fn handle_input(
        &mut self,
        _: Timestamp,
        r: &mut StreamReader,
        w: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        while let Some(line) = r.read_line(false)? {
            if line != b"OK" || !r.is_empty() {
                self.wrong = true;
                return Ok(Next::Close);
            }
            if self.sent == 5 {
                return Ok(Next::Close);
            }
            w.write_bytes(format!("PING {} with a longer body\n", self.sent).as_bytes())?;
            self.sent += 1;
        }
        Ok(Next::Continue)
    }
    fn handle_end(&mut self, _: Timestamp, reason: &EndReason) {
        self.end = Some(reason.kind());
    }
}

/// Runs one seed; true when the client saw something wrong. Returns the trace hash too.
fn run(seed: u64, faults: Faults) -> (bool, u64) {
    let mut sim = SimNetwork::new(seed, faults);
    let (server, client) = (sim.host("server"), sim.host("client"));
    let address = Address::Tcp(([10, 0, 0, 1], 9).into());
    sim.serve_session(server, address.clone(), ConnectionConfig::default(), |_| {
        OneReadOneRequest
    });
    let handle = sim.connect_session(
        client,
        &address,
        Pinger::default(),
        ConnectionConfig::default(),
    );
    sim.run().unwrap();
    let ended = sim.take_client(&handle).unwrap();
    let wrong = ended.session.wrong || ended.session.sent < 5;
    (wrong, sim.trace().hash())
}

#[test]
fn a_perfect_network_hides_the_bug() {
    for seed in 0..300 {
        assert!(!run(seed, Faults::none()).0, "seed {seed}");
    }
}

#[test]
fn short_reads_find_it_and_the_seed_replays() {
    let found = (0..300).find(|&seed| run(seed, Faults::short_io()).0);
    let seed = found.expect("300 seeds with short reads did not find the planted bug");
    eprintln!(
        "planted bug found at seed {seed}; replay: SimNetwork::new({seed}, Faults::short_io())"
    );
    let (first, hash) = run(seed, Faults::short_io());
    let (again, hash_again) = run(seed, Faults::short_io());
    assert!(first && again);
    assert_eq!(hash, hash_again, "the replay is the same run");
}

/// A tape of choices from bytes (a fuzzer's input) replays as the same simulation, and the
/// all-zero tape is the simplest run: with 4 KiB reads nothing is split, so the planted
/// split-frame bug does not show; one short read in the middle of a request shows it.
#[test]
fn a_byte_tape_replays_and_only_a_split_shows_the_split_frame_bug() {
    use concurrence_sim::planted::split_frame_run;
    let mut faults = Faults::none();
    faults.max_read = 4096;
    faults.max_segment = 1460;
    let (requests, verdict) = split_frame_run(SimNetwork::from_bytes(&[], faults));
    assert_eq!(requests, [1]);
    assert_eq!(verdict, Ok(()));
    // Choices 0 and 1 are the scenario's (1 client, 1 request); a later read of 4096 - 4080
    // = 16 bytes splits the 25-byte request.
    let mut tape = vec![0u8; 4 * 40];
    for choice in 2..40 {
        tape[4 * choice..4 * choice + 4].copy_from_slice(&4080u32.to_le_bytes());
    }
    let run = |tape: &[u8]| {
        let sim = SimNetwork::from_bytes(tape, faults).keep_trace();
        split_frame_run(sim).1
    };
    let first = run(&tape);
    assert!(first.is_err(), "a split request shows the bug");
    assert_eq!(run(&tape), first, "the same tape, the same run");
}
