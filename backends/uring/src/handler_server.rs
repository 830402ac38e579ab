//! The seed's handler server on uring (`SocketServer::serve(handler)`): one thread with a local
//! executor accepts connections (the accept loop written once in `concurrence-socket`, with its
//! gate: the cap, the rest after `EMFILE`) and runs `handler(socket)` as a task per connection,
//! at most `max_connections` at once (newcomers wait in the backlog). A handler that fails or
//! panics is logged and ends only its connection. On shutdown the server stops accepting, gives
//! live handlers `shutdown_grace`, then drops them (closing their sockets).

use std::fmt::Display;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Poll, Waker};

use concurrence_core::Address;
use concurrence_os::{LoopShared, ServerHandle, clock};
use concurrence_socket::{
    AcceptGate, ServerConfig, SocketError, accept_until_stopped, panic_message,
};
use futures_lite::FutureExt;

use crate::reactor::{UringTimer, reactor};
use crate::socket::{Socket, Watched};

/// Wakes the accept loop: on shutdown, and whenever a connection ends.
#[derive(Default)]
struct Signals {
    /// Connections ended so far.
    freed: AtomicU64,
    waker: Mutex<Option<Waker>>,
}

impl Signals {
    fn wake(&self) {
        let waker = self
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Completes once `done()` holds, woken through `wake`.
    async fn until(&self, done: impl Fn() -> bool) {
        std::future::poll_fn(|cx| {
            if done() {
                return Poll::Ready(());
            }
            *self.waker.lock().unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
            // Set after the waker was stored: the wake-up is not lost.
            if done() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
}

/// A live connection, counted until its task ends or is dropped.
struct LiveSlot {
    shared: Arc<LoopShared>,
    signals: Arc<Signals>,
    cap: usize,
}

impl Drop for LiveSlot {
    fn drop(&mut self) {
        self.shared.release(self.cap);
        self.signals.freed.fetch_add(1, Ordering::SeqCst);
        self.signals.wake();
    }
}

/// Starts the server's thread on `listener` (bound and listening at `address`).
pub(crate) fn start<H, Fut, E>(
    listener: socket2::Socket,
    address: Address,
    config: ServerConfig,
    handler: H,
) -> Result<ServerHandle, SocketError>
where
    H: Fn(Socket) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), E>> + 'static,
    E: Display,
{
    // Say now, not from the thread, when io_uring cannot run here.
    reactor().map_err(|e| SocketError::io("start io_uring", &address, e))?;
    let unix = matches!(address, Address::Unix(_));
    let listener =
        Watched::new(listener, unix).map_err(|e| SocketError::io("listen", &address, e))?;
    let shared = Arc::new(LoopShared::default());
    let signals = Arc::new(Signals::default());
    let woken = Arc::clone(&signals);
    shared.add_waker(Box::new(move || woken.wake()));
    let (loop_shared, endpoint) = (Arc::clone(&shared), address.clone());
    let thread = std::thread::Builder::new()
        .name("concurrence-uring-handlers".into())
        .spawn(move || {
            let listener = Socket::from_listener(listener, endpoint.clone());
            serve_on_this_thread(
                listener,
                &endpoint,
                config,
                &loop_shared,
                &signals,
                &handler,
            )
        })
        .map_err(|e| SocketError::io("spawn the handler server", &address, e))?;
    Ok(ServerHandle::new(address, shared, vec![thread]))
}

fn serve_on_this_thread<H, Fut, E>(
    mut listener: Socket,
    address: &Address,
    config: ServerConfig,
    shared: &Arc<LoopShared>,
    signals: &Arc<Signals>,
    handler: &H,
) -> Result<(), SocketError>
where
    H: Fn(Socket) -> Fut,
    Fut: Future<Output = Result<(), E>> + 'static,
    E: Display,
{
    let executor = async_executor::LocalExecutor::new();
    let cap = config.max_connections;
    let mut gate = AcceptGate::new(&config);
    let stopped = || shared.stop.load(Ordering::SeqCst);
    let accepting = accept_until_stopped(
        &mut listener,
        &mut gate,
        || shared.live.load(Ordering::SeqCst),
        || {
            let seen = signals.freed.load(Ordering::SeqCst);
            signals.until(move || signals.freed.load(Ordering::SeqCst) != seen)
        },
        || signals.until(stopped),
        |socket| {
            // Counted from here: the gate let it in below the cap.
            shared.live.fetch_add(1, Ordering::SeqCst);
            let slot = LiveSlot {
                shared: Arc::clone(shared),
                signals: Arc::clone(signals),
                cap,
            };
            let peer = socket.address().clone();
            let task = AssertUnwindSafe(handler(socket)).catch_unwind();
            executor
                .spawn(async move {
                    let _slot = slot;
                    match task.await {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) => tracing::warn!(%peer, %error, "connection handler failed"),
                        Err(panic) => {
                            let what = panic_message(&*panic);
                            tracing::error!(%peer, panic = %what, "connection handler panicked; closing its connection");
                        }
                    }
                })
                .detach();
        },
    );
    let served = futures_lite::future::block_on(executor.run(accepting));
    // Stopped accepting (or the listener failed): close it, then give live handlers the grace.
    drop(listener);
    let grace_end = clock::now() + config.shutdown_grace;
    let grace = async {
        signals
            .until(|| shared.live.load(Ordering::SeqCst) == 0)
            .or(async {
                UringTimer::at(grace_end).await;
            })
            .await;
    };
    futures_lite::future::block_on(executor.run(grace));
    // Dropping the executor drops the handlers left, closing their sockets.
    drop(executor);
    if let Err(error) = &served {
        tracing::error!(%address, %error, "the handler server stopped accepting");
    }
    served
}
