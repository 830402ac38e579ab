//! concurrence's `polling` backend: moves bytes and waits, nothing else.
//!
//! - [`serve`] / [`SocketServer`]: event loops on the `polling` crate that accept connections
//!   and drive the core's [`Session`](concurrence_core::Session)s through
//!   [`Connection`](concurrence_core::Connection), with back-pressure, timers, idle timeouts,
//!   a connection cap, `SO_REUSEPORT` loops and graceful shutdown. No futures on this path.
//! - [`connect_session`]: the client driver: connect and run a `Session` as the client,
//!   blocking until the connection ends; connect failures are end reasons.
//! - [`Socket`]: the seed's blocking socket (connect, bind, listen, accept, read and write a
//!   `Buffer`, pass descriptors), every call with its own timeout, over TCP or Unix.
//!
//! All framing, state and deadlines come from `concurrence-core`. Unix only (as the seed).

// `unsafe` only in `registration` (polling 3's `Poller::add`; docs/architecture.md lists it).
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod event_loop;
mod handler_server;
mod registration;
mod server;
mod socket;
mod transfer;
mod wait;

/// The guide `docs/sessions.md`, compiled here so that every code block in it is a doc test.
#[doc = include_str!("../../../docs/sessions.md")]
#[cfg(doctest)]
pub mod sessions_guide {}

pub use client::connect_session;
pub use concurrence_os::{IoCounts, ServerHandle};
pub use server::{SocketServer, serve};
pub use socket::Socket;
