//! What every backend's seed socket API shares and the pure core must not hold: the one error
//! type of sockets and servers ([`SocketError`], which wraps `std::io::Error` and the
//! descriptor-passing errors) and the server settings ([`ServerConfig`]: threads, backlog,
//! accept budget, pooled buffers, caps and timeouts), the async sockets' cooperative
//! budget ([`CoopBudget`]), and the seed socket API written once: its bookkeeping
//! ([`SocketLedger`], used by the blocking socket too), the async socket over a backend's
//! [`Transport`] ([`AsyncSocket`]) and the accept policy ([`AcceptGate`]). No system calls:
//! the simulator uses it as the two socket backends do.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod accept_gate;
mod accept_loop;
mod async_socket;
mod coop;
mod ledger;
mod panic_message;
mod server_config;
mod server_listener;
mod socket_error;
mod transport;

pub use accept_gate::{AcceptFailure, AcceptGate, AcceptStep};
pub use accept_loop::accept_until_stopped;
pub use async_socket::{AsyncSocket, within};
pub use coop::{COOP_BUDGET, COOP_OPERATION_COST, CoopBudget, bytes_moved};
pub use ledger::{SocketLedger, not_connected};
pub use panic_message::panic_message;
pub use server_config::{DEFAULT_BACKLOG, ServerConfig};
pub use server_listener::ServerListener;
pub use socket_error::SocketError;
pub use transport::{Endpoint, Transport, poll_until_done};
