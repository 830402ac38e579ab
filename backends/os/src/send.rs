//! `send` without `SIGPIPE`: a vanished peer is an `EPIPE` error, not a dead process.

use std::io;
use std::os::fd::AsFd;

/// Sends `bytes` on a connected socket (`MSG_NOSIGNAL`); returns how many were taken.
///
/// # Errors
/// What the OS said (`WouldBlock` on a full non-blocking socket, `BrokenPipe`, ...).
pub fn send(socket: impl AsFd, bytes: &[u8]) -> io::Result<usize> {
    rustix::net::send(socket, bytes, rustix::net::SendFlags::NOSIGNAL).map_err(io::Error::from)
}
