//! `accept_ready`: what an event loop does when its listener is readable, written once for the
//! polling and uring loops: accept up to `accept_budget` connections, each only after taking a
//! slot under `max_connections` (newcomers past the cap wait in the backlog), and follow the
//! accept gate on failure (retry at once, or rest the listener after `EMFILE` and friends
//! instead of spinning on the same failure).

use std::io;

use concurrence_core::{Address, Timestamp};
use concurrence_socket::{AcceptGate, AcceptStep, ServerConfig};

use crate::accept_failure;
use crate::loop_shared::LoopShared;
use crate::sockaddr::address_of;

/// Accepts what `listener` (bound to `address`) has ready, within the budget and the cap.
/// Each connection returned holds a slot in `shared`: the caller gives it back
/// (`shared.release`) if it cannot set the connection up, and when the connection ends.
pub fn accept_ready(
    listener: &socket2::Socket,
    address: &Address,
    config: &ServerConfig,
    shared: &LoopShared,
    gate: &mut AcceptGate,
    now: Timestamp,
) -> Vec<(socket2::Socket, Address)> {
    let cap = config.max_connections;
    let mut accepted = Vec::new();
    for _ in 0..config.accept_budget.max(1) {
        if !shared.reserve(cap) {
            break;
        }
        match listener.accept() {
            Ok((socket, peer)) => {
                gate.accepted();
                accepted.push((socket, address_of(&peer, address)));
            }
            Err(e) => {
                shared.release(cap);
                if e.kind() == io::ErrorKind::WouldBlock {
                    break;
                }
                match gate.failed(accept_failure(&e), &e, now) {
                    // That one connection went away (or a signal came): accept the next.
                    AcceptStep::Retry => {}
                    // EMFILE and friends: the listener rests (the loop stops watching it).
                    AcceptStep::Rest { .. } | AcceptStep::Stop => break,
                }
            }
        }
    }
    accepted
}
