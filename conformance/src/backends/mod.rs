//! The suite's implementations of the backend trait for concurrence's own backends: polling
//! (blocking sockets and event loops), smol (async sockets under any executor), the
//! simulator (seeded, with faults) and uring (io_uring session loops). A third-party backend writes the same few adapters.

mod polling;
mod sim;
mod smol;
mod socket_adapter;
mod uring;

pub use polling::PollingBackend;
pub use sim::SimBackend;
pub use smol::SmolBackend;
pub use uring::UringBackend;

use std::future::Future;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_executor::LocalExecutor;
use async_io::Timer;
use futures_lite::future::or;

use crate::Transcript;
use crate::backend::LocalFuture;

/// A scenario's body run on `executor` (which its tasks are spawned on), reported as hung once
/// it has run for `limit` (the harness clock is async-io's timer): what the real-socket
/// adapters hand to their `block_on`.
pub(crate) fn bounded_run(
    executor: Rc<LocalExecutor<'static>>,
    body: LocalFuture<'static, Transcript>,
    limit: Duration,
) -> impl Future<Output = Result<Transcript, String>> {
    let hung = async move {
        Timer::after(limit).await;
        Err(format!("still running after {limit:?}"))
    };
    async move { executor.run(or(async { Ok(body.await) }, hung)).await }
}

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
