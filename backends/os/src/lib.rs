//! The OS layer under concurrence's real-socket backends (`concurrence-polling`,
//! `concurrence-smol`, `concurrence-uring`): everything they need and the pure core must not
//! have. Not a backend, and the simulator does not use it.
//!
//! - [`clock`]: the monotonic clock as the core's `Timestamp`, and back.
//! - [`accept_failure`]: which failed accepts rest the listener and which retry at once.
//! - [`sockaddr`]: `Address` <-> `socket2::SockAddr`, new non-blocking sockets, options.
//! - [`fd_passing`]: `SCM_RIGHTS` through rustix's safe API, and what a received fd is.
//! - [`unix_path`]: stale Unix socket files.
//! - [`send`]: `send` without `SIGPIPE`.
//! - [`limits`]: raising the descriptor limit.
//! - [`RetryPause`]: backing off between retries no readiness event announces.
//! - [`log_end`]: one log line per finished connection.
//! - [`LoopShared`], [`ServerHandle`], [`LoopListeners`], [`LoopTimers`]: what an event-loop
//!   server's loops share, the handle its user holds, its listening sockets, and a loop's
//!   connection deadlines; [`accept_ready`], what a loop does when its listener is ready;
//!   [`start_session`] and [`LoopWakes`], a loop's sessions started and woken.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod accept_policy;
pub mod clock;
mod end_log;
pub mod fd_passing;
pub mod limits;
mod loop_accept;
mod loop_listeners;
mod loop_sessions;
mod loop_shared;
mod loop_timers;
mod retry_pause;
mod send;
mod server_handle;
pub mod sockaddr;
pub mod unix_path;

pub use accept_policy::{AcceptFailure, accept_failure};
pub use end_log::log_end;
pub use loop_accept::accept_ready;
pub use loop_listeners::LoopListeners;
pub use loop_sessions::{LoopWakes, start_session};
pub use loop_shared::{IoCounts, LoopShared, LoopWaker};
pub use loop_timers::LoopTimers;
pub use retry_pause::{RETRY_PAUSE_FIRST, RETRY_PAUSE_MAX, RetryPause};
pub use send::send;
pub use server_handle::ServerHandle;
