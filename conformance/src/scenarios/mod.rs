//! Every scenario of the suite, with the address kinds it runs on and its expected
//! transcript: the specification every backend is held to.

mod session_api;
mod socket_api;

use crate::backend::AddressKind::{self, Tcp, Unix};
use crate::scenario::{Scenario, ScenarioFn, body};

/// One entry of the list: name, kinds, fd passing, body, expected lines.
struct Entry {
    name: &'static str,
    kinds: &'static [AddressKind],
    fd: bool,
    /// Needs the seed's handler server (`Capabilities::handler_server`).
    handler: bool,
    /// Tests the seed's socket API itself (`Capabilities::seed_socket`).
    socket: bool,
    body: ScenarioFn,
    expected: &'static [&'static str],
}

const ENTRIES: &[Entry] = &[
    Entry {
        name: "echo",
        kinds: &[Tcp, Unix],
        fd: false,
        socket: true,
        handler: false,
        body: body!(socket_api::echo),
        expected: &[
            "client connected",
            "client received 'hello\\n'",
            "client received 'world\\n'",
            "client read end of stream after ''",
            "server echoed 12 bytes, then saw end of stream",
        ],
    },
    Entry {
        name: "line protocol",
        kinds: &[Tcp, Unix],
        fd: false,
        socket: false,
        handler: false,
        body: body!(session_api::line_protocol),
        expected: &[
            "client end: Closed; received 'one\\ntwo\\r\\n\\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\n'",
            "server end: Session (line longer than the limit of 48 bytes (ReaderConfig::max_line))",
        ],
    },
    Entry {
        name: "length-prefixed blocks",
        kinds: &[Tcp],
        fd: false,
        socket: false,
        handler: false,
        body: body!(session_api::length_prefixed_blocks),
        expected: &[
            "client end: Closed; received 'block 3 294\\nblock 1000 1000\\n'",
            "server end: Session (block of 5000 bytes is larger than the limit of 1024 bytes (ReaderConfig::max_block))",
        ],
    },
    Entry {
        name: "large transfer, slow reader",
        kinds: &[Tcp, Unix],
        fd: false,
        socket: true,
        handler: false,
        body: body!(socket_api::large_transfer_slow_reader),
        expected: &[
            "the writer, with nobody reading: timed out (write)",
            "client received 25165824 bytes, in order: true",
            "server sent 25165824 bytes",
        ],
    },
    Entry {
        name: "half-close, client first",
        kinds: &[Tcp, Unix],
        fd: false,
        socket: true,
        handler: false,
        body: body!(socket_api::half_close_client_first),
        expected: &[
            "client sent 'ping' and shut down its write side",
            "client received 'pong after your end' then end of stream",
            "server received 'ping' then end of stream",
        ],
    },
    Entry {
        name: "half-close, server first",
        kinds: &[Tcp, Unix],
        fd: false,
        socket: false,
        handler: false,
        body: body!(session_api::half_close_server_first),
        expected: &[
            "client received 'greeting\\n' then end of stream",
            "server end: Closed; received 'bye\\n'",
        ],
    },
    Entry {
        name: "peer reset mid-frame",
        kinds: &[Tcp],
        fd: false,
        socket: false,
        handler: false,
        body: body!(session_api::reset_mid_frame),
        expected: &[
            "client end: Aborted; received 'first\\n'",
            "server end: Reset",
        ],
    },
    Entry {
        name: "read timeout",
        kinds: &[Tcp],
        fd: false,
        socket: true,
        handler: false,
        body: body!(socket_api::read_timeout),
        expected: &[
            "server's first read: timed out (read); socket Connected",
            "server's next read: 'late\\n'",
        ],
    },
    Entry {
        name: "connect timeout",
        kinds: &[Tcp],
        fd: false,
        socket: false,
        handler: false,
        body: body!(socket_api::connect_timeout),
        expected: &[
            "connecting to a full backlog: timed out (connect)",
            "client session end: ConnectTimedOut",
        ],
    },
    Entry {
        name: "connection refused",
        kinds: &[Tcp, Unix],
        fd: false,
        socket: false,
        handler: false,
        body: body!(socket_api::connection_refused),
        expected: &[
            "connect: refused (connect)",
            "client session end: ConnectRefused",
        ],
    },
    Entry {
        name: "idle timeout",
        kinds: &[Tcp],
        fd: false,
        socket: false,
        handler: false,
        body: body!(session_api::idle_timeout),
        expected: &[
            "the silent client reads: end of stream",
            "server end: IdleTimeout",
        ],
    },
    Entry {
        name: "frame timeout",
        kinds: &[Tcp],
        fd: false,
        socket: false,
        handler: false,
        body: body!(session_api::frame_timeout),
        expected: &[
            "the trickling client reads: end of stream",
            "server end: FrameTimeout",
        ],
    },
    Entry {
        name: "wrong-state operations",
        kinds: &[Tcp],
        fd: false,
        socket: true,
        handler: false,
        body: body!(socket_api::wrong_state),
        expected: &[
            "accept before listen: wrong state: accept when Init",
            "write after close: wrong state: write when Closed",
            "read after close: wrong state: read when Closed",
            "shutdown_write after close: wrong state: shutdown_write when Closed",
            "close again: ok",
            "client state: Closed",
            "the peer reads: end of stream",
            "accept after close: wrong state: accept when Closed",
        ],
    },
    Entry {
        name: "session failure",
        kinds: &[Tcp],
        fd: false,
        socket: false,
        handler: false,
        body: body!(session_api::session_failure),
        expected: &[
            "client end: Closed; received 'ok\\n'",
            "server end: Session (protocol violation: the line was `bad`)",
        ],
    },
    Entry {
        name: "panic isolation",
        kinds: &[Tcp],
        fd: false,
        socket: false,
        handler: false,
        body: body!(session_api::panic_isolation),
        expected: &[
            "the client whose session panicked reads: end of stream",
            "the next client received 'still serving\\n'",
        ],
    },
    Entry {
        name: "panicking factory",
        kinds: &[Tcp],
        fd: false,
        socket: false,
        handler: false,
        body: body!(session_api::panicking_factory),
        expected: &[
            "the client whose factory call panicked reads: end of stream",
            "the next client received 'still serving\\n'",
        ],
    },
    Entry {
        name: "max_connections",
        kinds: &[Tcp],
        fd: false,
        socket: false,
        handler: false,
        body: body!(socket_api::max_connections),
        expected: &[
            "client 1 served: '1\\n'",
            "client 2 served: '2\\n'",
            "client 3 connected and sent; sessions started: 2",
            "client 1 left",
            "client 3 served: '3\\n', only after client 1 left: true",
        ],
    },
    Entry {
        name: "cap with several loops",
        kinds: &[Tcp],
        fd: false,
        socket: false,
        handler: false,
        body: body!(socket_api::cap_with_several_loops),
        expected: &[
            "client 1 served: '1\\n'",
            "client 2 served: '2\\n'",
            "client 3 connected and sent; sessions started: 2",
            "client 1 left",
            "client 3 served: '3\\n', only after client 1 left: true",
        ],
    },
    Entry {
        name: "fairness (session)",
        kinds: &[Tcp],
        fd: false,
        socket: false,
        handler: false,
        body: body!(socket_api::fairness_session),
        expected: &[
            "20 of 20 round trips answered beside the flood, each within 250 ms: true",
            "the flood was echoed meanwhile: true",
        ],
    },
    Entry {
        name: "fairness (handler)",
        kinds: &[Tcp],
        fd: false,
        socket: true,
        handler: true,
        body: body!(socket_api::fairness_handler),
        expected: &[
            "20 of 20 round trips answered beside the flood, each within 250 ms: true",
            "the flood was echoed meanwhile: true",
        ],
    },
    Entry {
        name: "shutdown grace",
        kinds: &[Tcp],
        fd: false,
        socket: false,
        handler: false,
        body: body!(session_api::shutdown_grace),
        expected: &[
            "before the close: 'before\\n'",
            "during the grace: 'during the grace\\n'",
            "then end of stream, not before the grace ended: true",
            "server end: Shutdown",
            "a newcomer after the shutdown: refused (connect)",
        ],
    },
    Entry {
        name: "large session transfer",
        kinds: &[Tcp, Unix],
        fd: false,
        socket: false,
        handler: false,
        body: body!(session_api::large_session_transfer),
        expected: &[
            "client received 8388608 bytes, in order: true",
            "server end: Closed; sent 8388608 bytes, never more than high water + one chunk buffered: true",
        ],
    },
    Entry {
        name: "fd passing",
        kinds: &[Unix],
        fd: true,
        socket: true,
        handler: false,
        body: body!(socket_api::fd_passing),
        expected: &[
            "server passed its connection and closed its own copy",
            "the far client received 'through the passed socket\\n' then end of stream",
        ],
    },
    Entry {
        name: "200 concurrent clients",
        kinds: &[Tcp],
        fd: false,
        socket: false,
        handler: false,
        body: body!(socket_api::concurrent_clients),
        expected: &["200 of 200 clients got their own line back"],
    },
    Entry {
        name: "sessions on both ends",
        kinds: &[Tcp, Unix],
        fd: false,
        socket: false,
        handler: false,
        body: body!(session_api::sessions_both_ends),
        expected: &[
            "client end: Closed; received 'a\\nb\\r\\n'",
            "server end: PeerClosed",
        ],
    },
];

/// Every scenario, one per (name, address kind), in the order reports list them.
#[must_use]
pub fn all() -> Vec<Scenario> {
    ENTRIES
        .iter()
        .flat_map(|entry| {
            entry.kinds.iter().map(|&kind| Scenario {
                name: entry.name,
                kind,
                needs_fd_passing: entry.fd,
                needs_handler_server: entry.handler,
                needs_seed_socket: entry.socket,
                expected: entry.expected,
                body: entry.body,
            })
        })
        .collect()
}
