//! concurrence's io_uring backend (Linux): completion-based event loops that serve the core's
//! [`Session`](concurrence_core::Session)s through [`Connection`](concurrence_core::Connection)'s
//! one driving rule, as the polling backend does on readiness.
//!
//! - [`serve`] / [`SocketServer`]: one loop per thread, each with its own ring; receives into
//!   a registered ring of provided buffers (idle connections hold none), sends of owned
//!   bytes, every submission of a turn batched into the loop's one `io_uring_enter`, which
//!   also waits; the same `ServerConfig`, hostile-peer defences and log lines as polling.
//! - [`connect_session`]: the client driver, a one-connection loop on the calling thread.
//! - [`Socket`]: the seed's socket as `async fn`s (the same `AsyncSocket` type as the smol
//!   backend's and the simulator's), waiting for readiness and timers on an io_uring reactor
//!   thread; usable under any executor.
//!
//! io_uring that is missing, disabled or filtered is an error that says so (the operation
//! `"start io_uring"`, an `Unsupported` cause); nothing falls back to another backend.

// `unsafe` only in `ring` (submissions naming memory the kernel uses later; listed in
// docs/architecture.md).
#![deny(unsafe_code)]
#![deny(missing_docs)]

#[cfg(target_os = "linux")]
mod client;
#[cfg(target_os = "linux")]
mod event_loop;
#[cfg(target_os = "linux")]
mod handler_server;
mod inbox;
#[cfg(target_os = "linux")]
mod reactor;
#[cfg(target_os = "linux")]
mod ring;
#[cfg(target_os = "linux")]
mod server;
#[cfg(target_os = "linux")]
mod socket;
#[cfg(target_os = "linux")]
mod unavailable;

#[cfg(target_os = "linux")]
pub use client::connect_session;
pub use concurrence_os::{IoCounts, ServerHandle};
#[cfg(target_os = "linux")]
pub use reactor::UringTimer;
#[cfg(target_os = "linux")]
pub use server::{RECV_BUFFER_SIZE, RECV_BUFFERS, RING_ENTRIES, SocketServer, serve};
#[cfg(target_os = "linux")]
pub use socket::{Socket, UringListener, UringStream, UringTransport, Watched};
