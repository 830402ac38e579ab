//! The suite's implementations of the backend trait for concurrence's own backends: polling
//! (blocking sockets and event loops), smol (async sockets under any executor) and the
//! simulator (seeded, with faults). A third-party backend writes the same few adapters.

mod polling;
mod sim;
mod smol;
mod socket_adapter;

pub use polling::PollingBackend;
pub use sim::SimBackend;
pub use smol::SmolBackend;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// A Unix socket path in the temporary directory that no other run of this process uses
/// (and no stale file occupies): for backends on real sockets.
#[must_use]
pub fn unix_socket_path() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!(
        "concurrence-conformance-{}-{n}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    path
}
