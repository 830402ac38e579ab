//! The client driver inside a simulated task: `connect_session` connects from the task's host
//! and runs a core `Session` as the client, as the smol backend's function of the same name
//! does on real sockets (connect failures and timeouts are end reasons).

use concurrence_core::{Address, ConnectionConfig, Ended, Session};
use futures_lite::future::poll_fn;

use crate::executor::current;

/// Connects from the current task's host to `address` and runs `session` as the client of
/// the connection until it ends; returns the session and why the connection ended (also told
/// to [`Session::handle_end`]). The simulator's session engine drives it, with the network's
/// faults.
///
/// # Panics
/// Called outside a simulated task, or the session itself panicked (the panic is contained
/// to its connection and logged in the trace; the caller gets no session back).
pub async fn connect_session<S: Session + 'static>(
    address: &Address,
    session: S,
    config: ConnectionConfig,
) -> Ended<S> {
    let Some(scope) = current() else {
        panic!("concurrence_sim::connect_session is called outside a simulated task");
    };
    let client = scope
        .world
        .borrow_mut()
        .connect_session(scope.host, address, session, config);
    let ended = poll_fn(|cx| scope.world.borrow_mut().poll_client(&client, cx)).await;
    match ended {
        Some(ended) => ended,
        None => panic!("the client session to {address} panicked (see the simulation trace)"),
    }
}
