//! concurrence's `smol` / `async-io` backend: the seed's socket API as `async fn`s, usable under
//! any executor (smol, `futures_lite::future::block_on`, tokio: async-io keeps its own reactor).
//!
//! - [`Socket`]: connect, listen, accept, read and write a `Buffer`, pass descriptors, each with
//!   a timeout; implements `futures_io::AsyncRead + AsyncWrite` for the core's
//!   `AsyncBufferedStream`.
//! - [`SocketServer`]: one task per connection, running an async handler (`serve`) or a core
//!   `Session` (`serve_session`), on smol's global executor or any [`Spawn`].
//!
//! - [`connect_session`]: the client driver: connect and run a `Session` as the client;
//!   connect failures are end reasons.
//!
//! Framing, state and deadlines come from `concurrence-core`; this crate moves bytes and waits.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod server;
mod session_driver;
mod socket;
mod spawn;

pub use client::connect_session;
pub use server::{CloseHandle, SocketServer};
pub use socket::{SmolListener, SmolStream, SmolTransport, SmolUnbound, Socket};
pub use spawn::{SmolGlobal, Spawn, Task};
