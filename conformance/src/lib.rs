//! concurrence's conformance suite: one set of scenarios, written once against a small
//! backend trait, run on every backend, so that "the same inputs give the same observable
//! behaviour everywhere" is checked, not claimed.
//!
//! - [`Backend`] / [`Net`] / [`Stream`] / [`Listener`] / [`SessionServer`]: what a backend
//!   offers (listen, connect, accept, read, write, half-close, pass a socket, spawn, sleep,
//!   serve and connect a `Session`), object-safe and without `Send` bounds on futures.
//! - [`scenarios::all`]: echo, a line protocol at and past its bound, length-prefixed
//!   blocks, a large transfer to a slow reader, half-close both ways, a reset mid-frame,
//!   read / connect / idle timeouts, refused connects, wrong-state operations, a failing and
//!   a panicking session and factory, `max_connections` (one loop and several), fairness
//!   beside a flood (session and handler paths), shutdown grace, a large session transfer, fd
//!   passing, 200 concurrent clients, sessions on both ends. Each produces a [`Transcript`] (timing-free) compared with the expected one.
//! - [`run_suite`] runs them on a backend; [`Table`] prints the scenario × backend table.
//! - [`PollingBackend`], [`SmolBackend`], [`SimBackend`]: concurrence's own backends. A
//!   third-party backend implements the traits (see `tests/tokio_backend.rs` and
//!   `docs/conformance.md`) and calls [`run_suite`] on itself.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod backend;
mod backends;
mod scenario;
pub mod scenarios;
mod session_over_streams;
pub mod sessions;
pub mod steps;
mod suite;
mod thread_flood;
mod transcript;

/// The guide `docs/conformance.md`, compiled here so that every code block in it is a doc test.
#[doc = include_str!("../../docs/conformance.md")]
#[cfg(doctest)]
pub mod conformance_guide {}

pub use backend::{
    AddressKind, Backend, BoxSession, Capabilities, Listener, LocalFuture, Net, ScenarioBody,
    SessionFactory, SessionServer, Stream,
};
pub use backends::{PollingBackend, SimBackend, SmolBackend, UringBackend, unix_socket_path};
pub use scenario::{Scenario, ScenarioFn};
pub use session_over_streams::{
    DRIVER_SLICE, ServerStop, connect_session_over_streams, drive_session,
    serve_session_over_streams,
};
pub use suite::{Outcome, Table, Verdict, run_scenario, run_suite};
pub use transcript::{Difference, Transcript};
