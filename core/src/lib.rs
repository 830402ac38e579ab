//! The sans-IO core of concurrence: everything about network I/O that can be pure.
//!
//! - [`Buffer`]: the seed's NIO-style byte buffer (position, limit, `flip`, `compact`, ...).
//! - [`StreamReader`] / [`StreamWriter`]: the framing halves of the seed's `BufferedStream`,
//!   fed and drained by a driver, bounded by [`ReaderConfig`] / [`WriterConfig`].
//! - [`Session`]: a protocol as a state machine; [`Connection`] drives one for a backend;
//!   `concurrence-testkit`'s `Pair` and `Script` run sessions in memory on virtual time.
//! - [`SocketStateMachine`]: the seed's socket states, with deadlines from a passed-in `now`.
//! - [`Address`]: TCP or Unix, parsed from text.
//! - [`BufferedStream`] (blocking, over `std::io::Read + Write`) and, with the default
//!   `futures-io` feature, [`AsyncBufferedStream`] (over `AsyncRead + AsyncWrite`).
//! - [`Timestamp`]: "now", always passed in by the driver.
//!
//! Nothing in this crate makes a system call, reads a clock, spawns a thread or draws a random
//! number: backends move the bytes and pass the time in. See `docs/architecture.md` for the
//! driving contract and who calls what.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod address;
mod buffer;
mod buffer_pool;
mod connection;
mod connection_config;
mod end_reason;
mod framing;
mod notify;
mod output;
mod scan;
mod session;
mod socket_state;
mod stream;
mod time;

pub use address::{Address, AddressError};
pub use buffer::{Buffer, BufferBytes, BufferError};
pub use buffer_pool::BufferPool;
pub use connection::Connection;
pub use connection_config::{
    ConnectionConfig, DEFAULT_CONNECT_TIMEOUT, DEFAULT_LINGER, DEFAULT_SERVER_FRAME_TIMEOUT,
    DEFAULT_SERVER_IDLE_TIMEOUT,
};
pub use end_reason::{EndKind, EndReason, Ended};
pub use framing::{
    DEFAULT_BUFFER_SIZE, FrameCursor, FramingError, ReaderConfig, StreamReader, StreamWriter,
    WriterConfig,
};
pub use notify::{Mailbox, MailboxError, MailboxSender, Notify};
pub use output::{Direction, Output};
pub use session::{Next, Session, SessionError};
pub use socket_state::{
    SocketEvent, SocketState, SocketStateError, SocketStateMachine, transition,
};
#[cfg(feature = "futures-io")]
pub use stream::{AsyncBufferedStream, AsyncLines};
pub use stream::{BufferedStream, Lines, StreamError};
pub use time::{Timestamp, deadline};
