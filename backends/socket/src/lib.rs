//! What every backend's seed socket API shares and the pure core must not hold: the one error
//! type of sockets and servers ([`SocketError`], which wraps `std::io::Error` and the
//! descriptor-passing errors) and the server settings ([`ServerConfig`]: threads, backlog,
//! accept budget, pooled buffers, caps and timeouts), and the async sockets' cooperative
//! budget ([`CoopBudget`]). No system calls: the simulator uses it as the two socket backends
//! do.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod coop;
mod panic_message;
mod server_config;
mod socket_error;

pub use coop::{COOP_BUDGET, COOP_OPERATION_COST, CoopBudget, bytes_moved};
pub use panic_message::panic_message;
pub use server_config::{DEFAULT_BACKLOG, ServerConfig};
pub use socket_error::SocketError;
