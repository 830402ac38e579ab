//! Helpers shared by the polling backend's tests; the sessions come from `concurrence_core::testing`.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::time::Duration;

use concurrence_core::{Address, Session};
use concurrence_polling::{ServerHandle, serve};
use concurrence_socket::ServerConfig;

/// A generous bound for anything that should happen "at once" on loopback.
pub const SOON: Option<Duration> = Some(Duration::from_secs(5));

/// Serves `factory` on a fresh loopback TCP port.
pub fn serve_tcp<S: Session + 'static>(
    config: ServerConfig,
    factory: impl Fn(&Address) -> S + Send + Sync + 'static,
) -> ServerHandle {
    serve(&"127.0.0.1:0".parse().unwrap(), config, factory).expect("serve on loopback")
}

/// A Unix socket path unique to this test process and `name`.
pub fn unix_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("concurrence-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// Waits (bounded) until `check` holds.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(
            std::time::Instant::now() < until,
            "timed out waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Raises this process's descriptor limit to its hard limit: a test that opens 1,000 clients
/// holds 2,000 descriptors here (both ends), past a common soft limit of 1,024.
pub fn raise_nofile() {
    concurrence_os::limits::raise_nofile_limit().expect("raise RLIMIT_NOFILE");
}

/// A TCP client of `server`, with a read timeout.
pub fn connect(server: &ServerHandle) -> std::net::TcpStream {
    let addr = server.local_address().as_tcp().expect("a TCP server");
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(SOON).unwrap();
    stream
}

/// Sends one line and returns the line that comes back (empty at end of stream).
pub fn round_trip(stream: &mut std::net::TcpStream, line: &str) -> String {
    use std::io::{BufRead, Write};
    stream.write_all(line.as_bytes()).unwrap();
    let mut reply = String::new();
    std::io::BufReader::new(&*stream)
        .read_line(&mut reply)
        .unwrap();
    reply
}
