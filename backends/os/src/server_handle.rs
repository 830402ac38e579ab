//! `ServerHandle`: a running real-socket server as its user holds it: where it listens, how
//! many connections it serves, and how to stop it and wait for its loops. One type for the
//! polling and uring backends, so the two cannot drift.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use concurrence_core::Address;
use concurrence_socket::SocketError;

use crate::loop_shared::{IoCounts, LoopShared};

/// A running server: where it listens, and how to stop it.
///
/// Dropping the handle shuts the server down and waits for its loops.
#[derive(Debug)]
pub struct ServerHandle {
    address: Address,
    shared: Arc<LoopShared>,
    threads: Vec<JoinHandle<Result<(), SocketError>>>,
    unix_path_to_remove: Option<std::path::PathBuf>,
}

impl ServerHandle {
    /// A handle on the loops running on `threads`, sharing `shared`, listening on `address`
    /// (a Unix socket file there is removed once the loops ended).
    #[must_use]
    pub fn new(
        address: Address,
        shared: Arc<LoopShared>,
        threads: Vec<JoinHandle<Result<(), SocketError>>>,
    ) -> Self {
        let unix_path_to_remove = address.as_unix().map(std::path::Path::to_path_buf);
        ServerHandle {
            address,
            shared,
            threads,
            unix_path_to_remove,
        }
    }

    /// The address the server listens on (with the real port when port 0 was asked for).
    #[must_use]
    pub fn local_address(&self) -> &Address {
        &self.address
    }

    /// Receive and send operations on connections so far, across the server's loops.
    #[must_use]
    pub fn io_counts(&self) -> IoCounts {
        self.shared.calls()
    }

    /// Connections open right now, over all loops.
    #[must_use]
    pub fn connections(&self) -> usize {
        self.shared.live.load(Ordering::SeqCst)
    }

    /// Stops accepting; live connections get `shutdown_grace` to finish, then are closed.
    /// Returns at once; [`join`](ServerHandle::join) waits.
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake_all();
    }

    /// Waits for every loop to end (after [`shutdown`](ServerHandle::shutdown)).
    ///
    /// # Errors
    /// The first error a loop ended with.
    pub fn join(mut self) -> Result<(), SocketError> {
        self.join_threads()
    }

    fn join_threads(&mut self) -> Result<(), SocketError> {
        let mut first = Ok(());
        for thread in self.threads.drain(..) {
            let result = thread.join().unwrap_or_else(|_| {
                Err(SocketError::io(
                    "event loop",
                    "server",
                    std::io::Error::other("an event loop panicked"),
                ))
            });
            if first.is_ok() {
                first = result;
            }
        }
        if let Some(path) = self.unix_path_to_remove.take() {
            let _ = std::fs::remove_file(path);
        }
        first
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.shutdown();
            let _ = self.join_threads();
        }
    }
}
