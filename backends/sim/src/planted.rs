//! Protocols with planted bugs, for showing (and testing) that a search finds them: the seed
//! runner and its shrinker, the coverage-guided `sim_schedule` fuzz target, the guide. Not for
//! production use, obviously.

use concurrence_core::{
    Address, ConnectionConfig, Next, Session, SessionError, StreamReader, StreamWriter, Timestamp,
};

use crate::SimNetwork;

/// The split-frame bug: a server session that takes every read as one whole request and
/// answers it `OK`. Right as long as no request is ever split across reads.
#[derive(Debug, Default, Clone, Copy)]
pub struct OneReadOneRequest;

impl Session for OneReadOneRequest {
    fn handle_input(
        &mut self,
        _: Timestamp,
        reader: &mut StreamReader,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        if !reader.read_available().is_empty() {
            writer.write_bytes(b"OK\n")?;
        }
        Ok(Next::Continue)
    }
}

/// A client that sends `requests` requests one at a time (the next after an `OK`), then
/// half-closes and counts the `OK` lines until the server closes. One at a time, so that two
/// requests never share a read: only a request split across reads shows the bug.
#[derive(Debug, Clone, Copy)]
pub struct Requester {
    /// Requests to send.
    pub requests: u64,
    /// Requests sent so far.
    pub sent: u64,
    /// `OK` lines received.
    pub oks: u64,
}

impl Requester {
    /// A client that will send `requests` requests.
    #[must_use]
    pub fn new(requests: u64) -> Self {
        Requester {
            requests,
            sent: 0,
            oks: 0,
        }
    }
}

const REQUEST: &[u8] = b"GET some-longer-key-name\n";

impl Session for Requester {
    fn handle_start(&mut self, _: Timestamp, w: &mut StreamWriter) -> Result<Next, SessionError> {
        w.write_bytes(REQUEST)?;
        self.sent = 1;
        Ok(if self.requests <= 1 {
            Next::CloseWrite
        } else {
            Next::Continue
        })
    }

    fn handle_input(
        &mut self,
        _: Timestamp,
        r: &mut StreamReader,
        w: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        while r.read_line(false)?.is_some() {
            self.oks += 1;
            if self.sent < self.requests {
                w.write_bytes(REQUEST)?;
                self.sent += 1;
                if self.sent == self.requests {
                    return Ok(Next::CloseWrite);
                }
            }
        }
        Ok(Next::Continue)
    }
}

/// One run of the split-frame scenario on `sim`: 1 to 4 clients (drawn with
/// [`SimNetwork::choose`]), each sending 1 to 5 requests to a [`OneReadOneRequest`] server;
/// `Err` names the first client that got a different number of `OK`s than it sent requests.
/// Returns the clients' request counts too, so that a test can see what a shrunk run kept.
///
/// # Errors
/// The planted bug showed (or the run did not settle).
pub fn split_frame_run(mut sim: SimNetwork) -> (Vec<u64>, Result<(), String>) {
    let (server, client_host) = (sim.host("server"), sim.host("clients"));
    let address = Address::Tcp(([10, 0, 0, 1], 7000).into());
    sim.serve_session(server, address.clone(), ConnectionConfig::default(), |_| {
        OneReadOneRequest
    });
    let clients = 1 + sim.choose(4);
    let requests: Vec<u64> = (0..clients).map(|_| 1 + sim.choose(5)).collect();
    let handles: Vec<_> = requests
        .iter()
        .map(|&n| {
            let session = Requester::new(n);
            sim.connect_session(client_host, &address, session, ConnectionConfig::default())
        })
        .collect();
    let verdict = (|| {
        sim.run().map_err(|e| e.to_string())?;
        for (k, handle) in handles.iter().enumerate() {
            let ended = sim.take_client(handle).ok_or("a client never ended")?;
            let Requester { requests, oks, .. } = ended.session;
            if oks != requests {
                return Err(format!(
                    "client {k} sent {requests} requests, got {oks} OKs"
                ));
            }
        }
        Ok(())
    })();
    (requests, verdict)
}
