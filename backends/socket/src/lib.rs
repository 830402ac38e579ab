//! What every backend's seed socket API shares and the pure core must not hold: the one error
//! type of sockets and servers ([`SocketError`], which wraps `std::io::Error` and the
//! descriptor-passing errors) and the server settings ([`ServerConfig`]: threads, backlog,
//! accept budget, pooled buffers, caps and timeouts). No system calls: the simulator uses it
//! as the two socket backends do.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod server_config;
mod socket_error;

pub use server_config::{DEFAULT_BACKLOG, ServerConfig};
pub use socket_error::SocketError;
