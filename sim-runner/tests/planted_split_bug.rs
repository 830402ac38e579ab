//! A planted split-frame bug, as a protocol author would meet it: a server that takes every
//! read as one whole request. The runner finds it with short reads on, and shrinks the
//! failing run to one client, one request and a handful of choices, with a trace that shows
//! the read that split the request.

use std::sync::Mutex;

use concurrence_core::{
    Address, ConnectionConfig, Next, Session, SessionError, StreamReader, StreamWriter, Timestamp,
};
use concurrence_sim::Faults;
use concurrence_sim_runner::SimRunner;

/// The bug: each read is answered `OK`, as if it held exactly one request.
struct OneReadOneRequest;

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

/// Sends `requests` requests, half-closes, and counts the `OK`s until the server closes.
struct Requester {
    requests: u64,
    oks: u64,
}

impl Session for Requester {
    fn handle_start(&mut self, _: Timestamp, w: &mut StreamWriter) -> Result<Next, SessionError> {
        for _ in 0..self.requests {
            w.write_bytes(b"GET some-longer-key-name\n")?;
        }
        Ok(Next::CloseWrite)
    }
    fn handle_input(
        &mut self,
        _: Timestamp,
        r: &mut StreamReader,
        _: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        while r.read_line(false)?.is_some() {
            self.oks += 1;
        }
        Ok(Next::Continue)
    }
}

/// What the last run used: (clients, requests of each).
static LAST: Mutex<(u64, Vec<u64>)> = Mutex::new((0, Vec::new()));

#[test]
fn a_split_frame_bug_is_found_and_shrinks_to_one_client_and_one_request() {
    let report = SimRunner::new("a_split_frame_bug_is_found_and_shrinks")
        .seeds(0..200)
        .threads(2)
        .run(|case| {
            let mut sim = case.network(Faults::short_io());
            let (server, client_host) = (sim.host("server"), sim.host("clients"));
            let address: Address = "10.0.0.1:7000".parse().expect("address");
            sim.serve_session(server, address.clone(), ConnectionConfig::default(), |_| {
                OneReadOneRequest
            });
            let clients = 1 + sim.choose(4);
            let requests: Vec<u64> = (0..clients).map(|_| 1 + sim.choose(5)).collect();
            *LAST.lock().unwrap() = (clients, requests.clone());
            let handles: Vec<_> = requests
                .iter()
                .map(|&n| {
                    let session = Requester {
                        requests: n,
                        oks: 0,
                    };
                    sim.connect_session(client_host, &address, session, ConnectionConfig::default())
                })
                .collect();
            sim.run().map_err(|e| e.to_string())?;
            for (k, handle) in handles.iter().enumerate() {
                let ended = sim.take_client(handle).ok_or("a client did not end")?;
                let Requester { requests, oks } = ended.session;
                if oks != requests {
                    return Err(format!(
                        "client {k} sent {requests} requests, got {oks} OKs"
                    ));
                }
            }
            Ok(())
        });
    assert!(!report.failures.is_empty(), "{report}");
    let failure = &report.failures[0];
    let shrunk = failure.shrunk.as_ref().expect("the failure shrinks");
    let (clients, requests) = LAST.lock().unwrap().clone();
    assert_eq!((clients, requests), (1, vec![1]), "{report}");
    assert!(shrunk.nonzero() <= 4, "{report}");
    assert!(
        shrunk
            .trace
            .iter()
            .any(|line| line.contains("session reads") && !line.contains("\\n\"")),
        "the trace shows the read that split the request:\n{report}"
    );
    eprintln!("{report}");
}
