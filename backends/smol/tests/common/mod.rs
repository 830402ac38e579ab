//! Helpers the smol backend's test files share (each file uses some of them).
#![allow(dead_code)]

use concurrence_core::Address;
use concurrence_smol::Socket;
use concurrence_socket::SocketError;

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

/// Raises this process's descriptor limit to its hard limit: a test that opens 1,000 clients
/// holds 2,000 descriptors here (both ends), past a common soft limit of 1,024.
pub(crate) fn raise_nofile() {
    concurrence_os::limits::raise_nofile_limit().expect("raise RLIMIT_NOFILE");
}

/// Waits (bounded, 5 s) until `check` holds.
pub(crate) fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !check() {
        assert!(
            std::time::Instant::now() < until,
            "timed out waiting for: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}
