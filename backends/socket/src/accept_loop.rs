//! `accept_until_stopped`: the async accept loop of the seed's `SocketServer`, written once
//! for smol and the simulator: wait below the cap, accept or stop, hand each connection to the
//! server, and follow the [`AcceptGate`] on failure (retry, rest, stop), every wait
//! interruptible by the server's close.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;

use crate::{AcceptFailure, AcceptGate, AcceptStep, AsyncSocket, SocketError, Transport};

/// Whichever of `a` and `b` finishes first (`a` when both are ready).
async fn first<T>(a: impl Future<Output = T>, b: impl Future<Output = T>) -> T {
    let (mut a, mut b) = (pin!(a), pin!(b));
    poll_fn(|cx| {
        if let Poll::Ready(out) = a.as_mut().poll(cx) {
            return Poll::Ready(out);
        }
        b.as_mut().poll(cx)
    })
    .await
}

/// Accepts on `listener` until `stopped()` finishes, handing each connection to `serve`.
///
/// While `live()` is at the gate's cap it waits for `slot_freed()` (a connection ended) or the
/// stop, leaving newcomers in the backlog. A failed accept is classified by the transport and
/// handled as the gate says: retried at once, rested for `accept_error_pause` (interrupted by
/// the stop), or returned.
///
/// # Errors
/// An accept failure the transport calls fatal (the listener is gone).
pub async fn accept_until_stopped<T, Stopped, Freed>(
    listener: &mut AsyncSocket<T>,
    gate: &mut AcceptGate,
    live: impl Fn() -> usize,
    mut slot_freed: impl FnMut() -> Freed,
    stopped: impl Fn() -> Stopped,
    mut serve: impl FnMut(AsyncSocket<T>),
) -> Result<(), SocketError>
where
    T: Transport,
    Stopped: Future<Output = ()>,
    Freed: Future<Output = ()>,
{
    loop {
        while !gate.has_room(live()) {
            let stop = first(
                async {
                    stopped().await;
                    true
                },
                async {
                    slot_freed().await;
                    false
                },
            );
            if stop.await {
                return Ok(());
            }
        }
        // The stop is looked at first: a closed server accepts nothing more, even from a
        // full backlog.
        let accepted = first(
            async {
                stopped().await;
                None
            },
            async { Some(listener.accept(None).await) },
        )
        .await;
        let error = match accepted {
            None => return Ok(()),
            Some(Ok(socket)) => {
                gate.accepted();
                serve(socket);
                continue;
            }
            Some(Err(error)) => error,
        };
        let failure = match &error {
            SocketError::Io { source, .. } => T::accept_failure(source),
            _ => AcceptFailure::Rest,
        };
        match gate.failed(failure, &error, T::now()) {
            AcceptStep::Retry => {}
            AcceptStep::Stop => return Err(error),
            AcceptStep::Rest { pause, .. } => {
                let rest = first(
                    async {
                        stopped().await;
                        true
                    },
                    async {
                        T::timer(pause).await;
                        false
                    },
                );
                if rest.await {
                    return Ok(());
                }
            }
        }
    }
}
