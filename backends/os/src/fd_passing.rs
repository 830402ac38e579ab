//! Passing an open descriptor over a Unix socket (`SCM_RIGHTS`), through rustix's safe API.
//!
//! One byte of payload carries the descriptor, so the receiver can tell a message from end of
//! stream.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// Sends `fd` with one payload byte. Returns the bytes sent (1).
///
/// # Errors
/// What the OS said (`WouldBlock` on a full non-blocking socket, ...).
pub fn send_fd(socket: impl AsFd, fd: BorrowedFd<'_>) -> io::Result<usize> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [fd];
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other(
            "control buffer too small for one descriptor",
        ));
    }
    let sent = rustix::net::sendmsg(
        &socket,
        &[IoSlice::new(b"F")],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    Ok(sent)
}

/// Receives one message; its descriptor, if it carried one.
///
/// # Errors
/// End of stream is `UnexpectedEof`; otherwise what the OS said.
pub fn recv_fd(socket: impl AsFd) -> io::Result<Option<OwnedFd>> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    let received = rustix::net::recvmsg(
        &socket,
        &mut [IoSliceMut::new(&mut byte)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    if received.bytes == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the peer closed before sending a descriptor",
        ));
    }
    let mut descriptor = None;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            for fd in fds {
                // Keep the first; any extra descriptors are closed as they drop.
                if descriptor.is_none() {
                    descriptor = Some(fd);
                }
            }
        }
    }
    Ok(descriptor)
}

/// What a received descriptor is, as far as a socket API cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdKind {
    /// A listening stream socket (`SO_ACCEPTCONN`).
    Listener {
        /// A Unix-domain socket (else TCP/IP).
        unix: bool,
    },
    /// A connected (or connectable) stream socket.
    Stream {
        /// A Unix-domain socket (else TCP/IP).
        unix: bool,
    },
}

/// Tells a listener from a stream, and Unix from TCP, for a descriptor received with
/// [`recv_fd`].
///
/// # Errors
/// The descriptor is not a socket, or the OS refused to say.
pub fn fd_kind(fd: impl std::os::fd::AsFd) -> io::Result<FdKind> {
    let unix = rustix::net::sockopt::socket_domain(&fd)? == rustix::net::AddressFamily::UNIX;
    Ok(if rustix::net::sockopt::socket_acceptconn(&fd)? {
        FdKind::Listener { unix }
    } else {
        FdKind::Stream { unix }
    })
}
