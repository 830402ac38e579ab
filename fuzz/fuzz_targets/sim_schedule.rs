//! Coverage-guided schedules: the simulator takes every random choice (how reads and writes
//! are split, delays, the order of tasks and events, the scenario's own choices) from the fuzz
//! input instead of a seed, so libFuzzer's coverage steers the search over interleavings and
//! faults. The scenario is `concurrence_sim::planted::split_frame_run`, a server with a planted
//! split-frame bug; with reads up to 4 KiB a zero input splits nothing, so the fuzzer has to
//! find a short read in the middle of a request. A crash input is a tape of choices: it replays
//! as the same simulation (`SimNetwork::from_bytes`).

#![no_main]

use concurrence_sim::planted::split_frame_run;
use concurrence_sim::{Faults, SimNetwork};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut faults = Faults::none();
    faults.max_read = 4096;
    faults.max_segment = 1460;
    let (_, verdict) = split_frame_run(SimNetwork::from_bytes(data, faults));
    if let Err(violation) = verdict {
        panic!("the planted split-frame bug: {violation}");
    }
});
