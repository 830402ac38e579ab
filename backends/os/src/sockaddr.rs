//! `Address` <-> `socket2::SockAddr`, new non-blocking sockets, and the socket options both
//! backends set (through `socket2`, one way for both).

use std::io;

use concurrence_core::Address;
use socket2::{Domain, SockAddr, Type};

use concurrence_socket::SocketError;

/// The socket domain for `address`'s family.
#[must_use]
pub fn domain_of(address: &Address) -> Domain {
    match address {
        Address::Tcp(addr) => Domain::for_address(*addr),
        Address::Unix(_) => Domain::UNIX,
    }
}

/// The `SockAddr` for `address`.
///
/// # Errors
/// A Unix path too long for `sockaddr_un`.
pub fn sock_addr(address: &Address) -> io::Result<SockAddr> {
    match address {
        Address::Tcp(addr) => Ok(SockAddr::from(*addr)),
        Address::Unix(path) => SockAddr::unix(path),
    }
}

/// The `Address` a `SockAddr` names; `fallback` for an unnamed Unix peer.
#[must_use]
pub fn address_of(addr: &SockAddr, fallback: &Address) -> Address {
    if let Some(inet) = addr.as_socket() {
        Address::Tcp(inet)
    } else if let Some(path) = addr.as_pathname() {
        Address::Unix(path.to_path_buf())
    } else {
        fallback.clone()
    }
}

/// A new non-blocking, close-on-exec stream socket for `address`'s family.
///
/// # Errors
/// The OS refused (`EMFILE`, ...), named as `op` on `address`.
pub fn new_socket(address: &Address, op: &'static str) -> Result<socket2::Socket, SocketError> {
    let socket = socket2::Socket::new(domain_of(address), Type::STREAM, None)
        .map_err(|e| SocketError::io(op, address, e))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| SocketError::io(op, address, e))?;
    Ok(socket)
}

/// Turns on `TCP_NODELAY` for TCP sockets (a no-op for Unix ones).
///
/// # Errors
/// The OS refused.
pub fn set_nodelay(socket: &socket2::Socket, address: &Address) -> Result<(), SocketError> {
    if matches!(address, Address::Tcp(_)) {
        socket
            .set_tcp_nodelay(true)
            .map_err(|e| SocketError::io("set TCP_NODELAY", address, e))?;
    }
    Ok(())
}

/// A bound, listening, non-blocking socket for `address`: `SO_REUSEADDR` on (and
/// `SO_REUSEPORT` when `reuse_port`), a stale Unix socket file removed first (see
/// [`crate::unix_path`]). Returns it with the address it is bound to (the real port when port
/// 0 was asked for).
///
/// # Errors
/// The address is in use or not available, or the OS refused to listen.
pub fn listener(
    address: &Address,
    backlog: i32,
    reuse_port: bool,
) -> Result<(socket2::Socket, Address), SocketError> {
    let socket = bind(address, reuse_port)?;
    socket
        .listen(backlog)
        .map_err(|e| SocketError::io("listen", address, e))?;
    let local = socket
        .local_addr()
        .map_err(|e| SocketError::io("listen", address, e))?;
    Ok((socket, address_of(&local, address)))
}

/// Binds `socket` (made for `address` by [`new_socket`]) as the seed's `bind` does:
/// `SO_REUSEADDR`, a stale Unix socket file removed first. Returns the address bound (the port
/// picked, for port 0).
///
/// # Errors
/// The address is in use or not available.
pub fn bind_to(socket: &socket2::Socket, address: &Address) -> io::Result<Address> {
    socket.set_reuse_address(true)?;
    if let Address::Unix(path) = address {
        crate::unix_path::clear_stale_socket(path)?;
    }
    socket.bind(&sock_addr(address)?)?;
    Ok(match socket.local_addr() {
        Ok(local) => address_of(&local, address),
        Err(_) => address.clone(),
    })
}

/// A bound, non-blocking socket for `address` (see [`listener`]), not yet listening.
///
/// # Errors
/// The address is in use or not available.
pub fn bind(address: &Address, reuse_port: bool) -> Result<socket2::Socket, SocketError> {
    let socket = new_socket(address, "bind")?;
    let fail = |e| SocketError::io("bind", address, e);
    socket.set_reuse_address(true).map_err(fail)?;
    if reuse_port && matches!(address, Address::Tcp(_)) {
        socket.set_reuse_port(true).map_err(fail)?;
    }
    if let Address::Unix(path) = address {
        crate::unix_path::clear_stale_socket(path).map_err(fail)?;
    }
    socket
        .bind(&sock_addr(address).map_err(fail)?)
        .map_err(fail)?;
    Ok(socket)
}
