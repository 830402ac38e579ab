//! Helpers the smol backend's test files share (each file uses some of them).
#![allow(dead_code)]

use concurrence_core::Address;
use concurrence_smol::{Socket, SocketError};

/// A fresh Unix socket path in the temp dir, unique to this process and `name`.
pub(crate) fn unix_path(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "concurrence-smol-{}-{name}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    path
}

/// A socket listening on `address`: the seed's `from_address`, `bind`, `listen(backlog)`.
pub(crate) fn listening(address: &Address, backlog: i32) -> Result<Socket, SocketError> {
    let mut socket = Socket::from_address(address)?;
    socket.listen(backlog)?;
    Ok(socket)
}
