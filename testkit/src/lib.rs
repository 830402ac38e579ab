//! Test support for protocols written on concurrence: what a user needs to test their own
//! `Session`s, in memory and on virtual time, with no sockets.
//!
//! - [`Pair`] connects two sessions through the core's driving rule and runs them on virtual
//!   time (every split with [`Pair::with_chunk_size`], deadlines jumped to, a step cap, a stall
//!   told apart from the end); [`Script`] is a scripted peer that records its transcript.
//! - Small sessions the workspace's own tests share ([`LineEcho`], [`ByteEcho`], [`Producer`],
//!   [`ReportEnd`], ...).
//! - [`history`]: operation histories and a linearizability checker (Wing & Gong, with a
//!   per-key register-with-CAS model), for checking a store's clients under faults.
//! - [`model`]: plain reference models of the core's state machines and a hostile-peer harness
//!   for `Connection`, used by the property tests and the fuzz targets.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod history;
pub mod model;
mod pair;
mod script;
mod sessions;

pub use pair::{PAIR_IN_FLIGHT, Pair, PairError, Settled};
pub use script::{Received, Script, ScriptStep};
pub use sessions::{
    ByteEcho, LineEcho, PanicsOnBoom, Producer, Relay, ReportEnd, StaleDeadline,
    lines_with_a_partial_tail, pattern, send_all_then_read_to_end,
};
