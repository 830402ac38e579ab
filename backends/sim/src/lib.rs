//! concurrence's simulation backend: a deterministic network in one thread, driving the same
//! `Session`s the socket backends serve.
//!
//! - [`SimNetwork`]: hosts, listeners, TCP-like ordered streams (and Unix sockets: an address
//!   is only a name here), a virtual clock that jumps to the next event, and a seeded RNG
//!   ([`SimRng`]) that decides segment sizes, delays, faults and the order of events on the
//!   same instant. Same seed, same run, byte for byte; the [`Trace`] hash proves it.
//! - [`Faults`]: latency and jitter, short reads and writes down to one byte, a small receive
//!   window (back-pressure), refused connects, resets, partitions (one-way too) and heals, host
//!   crash and restart, spurious "would block" on sockets. Presets `none`, `short-io`, `all`.
//! - Async code: [`Socket`] and [`SocketServer`] with the smol backend's names and signatures,
//!   `futures_io::AsyncRead + AsyncWrite` on sockets, and [`spawn`], [`sleep`], [`now`], run
//!   as tasks on hosts ([`SimNetwork::spawn`], [`SimNetwork::block_on`]) by an executor whose
//!   every choice of the next task is drawn from the seed.
//!
//! ```
//! use concurrence_testkit::LineEcho;
//! use concurrence_core::{ConnectionConfig, EndKind};
//! use concurrence_testkit::{Script};
//! use concurrence_sim::{Faults, SimNetwork};
//!
//! let mut sim = SimNetwork::new(7, Faults::all());
//! let (server, client) = (sim.host("server"), sim.host("client"));
//! let address: concurrence_core::Address = "10.0.0.1:7000".parse()?;
//! sim.serve_session(server, address.clone(), ConnectionConfig::default(), |_peer| LineEcho);
//! let script = Script::new().send("hello\nworld\n").await_suffix("world\n").close();
//! let handle = sim.connect_session(client, &address, script, ConnectionConfig::default());
//! sim.run()?;
//! if let Some(ended) = sim.take_client(&handle) {
//!     // With `Faults::all()` a connect may be refused: that is an end reason too.
//!     if ended.reason.kind() == EndKind::Closed {
//!         assert_eq!(ended.session.received(), b"hello\nworld\n");
//!     }
//! }
//! println!("seed 7: {} events, trace {:016x}", sim.trace().events(), sim.trace().hash());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Nothing here reads the wall clock, spawns a thread, or iterates a randomly seeded map.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod buggify;
mod client;
mod echo_run;
mod executor;
mod faults;
mod network;
pub mod planted;
mod rng;
mod seed_range;
mod server;
mod socket;
mod trace;
mod world;

/// The guide `docs/simulation.md`, compiled here so that every code block in it is a doc test.
#[doc = include_str!("../../../docs/simulation.md")]
#[cfg(doctest)]
pub mod simulation_guide {}

pub use buggify::{BUGGIFY_FIRE_PER_MILLION, BUGGIFY_SITE_PER_MILLION, buggify_site, buggify_with};
pub use client::connect_session;
pub use echo_run::{EchoClient, EchoReport, echo_audit, echo_run, echo_scenario};
pub use executor::{SimTask, Sleep, now, sleep, spawn};
pub use faults::{Faults, LinkProfile};
pub use network::SimNetwork;
pub use rng::{Choice, SimRng};
pub use seed_range::parse_seed_range;
pub use server::{CloseHandle, SocketServer};
pub use socket::{SimListener, SimStream, SimTransport, SimUnbound, Socket};
pub use trace::{Divergence, Trace};
pub use world::{AnySession, Client, HostId, SimError};
