//! Sessions and helpers shared by the polling backend's tests (one copy, used by every file).

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use concurrence_core::{
    Address, Next, Session, SessionError, StreamReader, StreamWriter, Timestamp,
};
use concurrence_polling::{ServerConfig, ServerHandle, serve};

/// A generous bound for anything that should happen "at once" on loopback.
pub const SOON: Option<Duration> = Some(Duration::from_secs(5));

/// Echoes each line back as it came (LF or CRLF kept); closes on "QUIT".
pub struct LineEcho;

impl Session for LineEcho {
    fn handle_input(
        &mut self,
        _: Timestamp,
        reader: &mut StreamReader,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        while !writer.is_backpressured() {
            match reader.read_line(true)? {
                Some(b"QUIT\r\n" | b"QUIT\n") => return Ok(Next::Close),
                Some(line) => writer.write_bytes(line)?,
                None => break,
            }
        }
        Ok(Next::Continue)
    }
}

/// Echoes raw bytes, honouring back-pressure, and records the most bytes it ever left pending.
pub struct ByteEcho {
    pub max_pending: Arc<AtomicUsize>,
}

impl Session for ByteEcho {
    fn handle_input(
        &mut self,
        _: Timestamp,
        reader: &mut StreamReader,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        while !writer.is_backpressured() && !reader.is_empty() {
            let chunk = reader.read_up_to(16 * 1024);
            writer.write_bytes(chunk)?;
        }
        self.max_pending
            .fetch_max(writer.pending_len(), Ordering::SeqCst);
        Ok(Next::Continue)
    }
}

/// Streams `total` bytes of a known pattern as fast as the peer reads, then closes.
pub struct Producer {
    pub total: usize,
    pub sent: usize,
    pub max_pending: Arc<AtomicUsize>,
}

/// The byte at offset `i` of every test stream.
pub fn pattern(i: usize) -> u8 {
    u8::try_from(i % 251).unwrap_or(0)
}

impl Producer {
    fn produce(&mut self, writer: &mut StreamWriter) -> Result<Next, SessionError> {
        let mut chunk = [0u8; 16 * 1024];
        while self.sent < self.total && !writer.is_backpressured() {
            let n = chunk.len().min(self.total - self.sent);
            for (k, b) in chunk[..n].iter_mut().enumerate() {
                *b = pattern(self.sent + k);
            }
            writer.write_bytes(&chunk[..n])?;
            self.sent += n;
        }
        self.max_pending
            .fetch_max(writer.pending_len(), Ordering::SeqCst);
        Ok(if self.sent == self.total {
            Next::Close
        } else {
            Next::Continue
        })
    }
}

impl Session for Producer {
    fn handle_start(
        &mut self,
        _: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        self.produce(writer)
    }
    fn handle_input(
        &mut self,
        _: Timestamp,
        _: &mut StreamReader,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        self.produce(writer)
    }
}

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
