//! The memcache server's history under every fault (short I/O, delays, resets, refused
//! connects, a partition that heals, a crash and a restart that forgets) is linearizable
//! against the per-key CAS register model, over 200 seeds; and the check catches a planted
//! stale read in a small copy of the store.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use concurrence_core::{
    ConnectionConfig, FrameCursor, FramingError, Next, Session, SessionError, StreamReader,
    StreamWriter, Timestamp,
};
use concurrence_examples::memcache::sim_history::{HistoryClient, KeyHistory, history_check};
use concurrence_examples::memcache::sim_load::server_address;
use concurrence_sim::Faults;
use concurrence_sim_runner::SimRunner;
use concurrence_testkit::history::{CasRegister, check_per_key};

#[test]
fn the_memcache_server_is_linearizable_under_every_fault_over_200_seeds() {
    let report = SimRunner::new("the_memcache_server_is_linearizable_under_every_fault")
        .seeds(0..200)
        .run(|case| history_check(case.network(Faults::all()), 4, 40).map(drop));
    report.assert_ok();
}

/// The store of the planted server: value and CAS unique per key, and the next unique.
#[derive(Default)]
struct Items {
    items: BTreeMap<Vec<u8>, (Vec<u8>, u64)>,
    next_cas: u64,
}

/// A small copy of the store's logic with a planted bug: each connection caches what it read
/// and answers later reads of the key from its cache (a stale read once another client
/// changed the key).
struct StaleReadCache {
    shared: Rc<RefCell<Items>>,
    cache: BTreeMap<Vec<u8>, Option<(Vec<u8>, u64)>>,
}

/// One parsed request.
enum Request {
    Get(Vec<u8>),
    Set(Vec<u8>, Vec<u8>, Option<u64>),
    Delete(Vec<u8>),
}

fn parse(cursor: &mut FrameCursor<'_>) -> Result<Option<Request>, FramingError> {
    let Some(line) = cursor.read_line(false)? else {
        return Ok(None);
    };
    let line = String::from_utf8_lossy(line).trim_end().to_owned();
    let words: Vec<&str> = line.split(' ').collect();
    let key = |i: usize| {
        words
            .get(i)
            .map_or_else(Vec::new, |k| k.as_bytes().to_vec())
    };
    match words.first().copied() {
        Some("gets" | "get") => Ok(Some(Request::Get(key(1)))),
        Some("delete") => Ok(Some(Request::Delete(key(1)))),
        Some(command @ ("set" | "cas")) => {
            let bytes: usize = words.get(4).and_then(|n| n.parse().ok()).unwrap_or(0);
            let cas =
                (command == "cas").then(|| words.get(5).and_then(|c| c.parse().ok()).unwrap_or(0));
            let Some(block) = cursor.read_bytes(bytes + 2)? else {
                return Ok(None);
            };
            Ok(Some(Request::Set(key(1), block[..bytes].to_vec(), cas)))
        }
        _ => Ok(Some(Request::Get(Vec::new()))),
    }
}

impl Session for StaleReadCache {
    fn handle_input(
        &mut self,
        _: Timestamp,
        reader: &mut StreamReader,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        while let Some(request) = reader.read_frame(parse)? {
            let mut shared = self.shared.borrow_mut();
            match request {
                Request::Get(key) => {
                    let item = match self.cache.get(&key) {
                        Some(cached) => cached.clone(), // the planted bug
                        None => {
                            let item = shared.items.get(&key).cloned();
                            self.cache.insert(key.clone(), item.clone());
                            item
                        }
                    };
                    if let Some((value, cas)) = item {
                        let k = String::from_utf8_lossy(&key);
                        writer.write_bytes(
                            format!("VALUE {k} 0 {} {cas}\r\n", value.len()).as_bytes(),
                        )?;
                        writer.write_bytes(&value)?;
                        writer.write_bytes(b"\r\n")?;
                    }
                    writer.write_bytes(b"END\r\n")?;
                }
                Request::Set(key, value, cas) => {
                    let reply: &[u8] = match (cas, shared.items.get(&key)) {
                        (Some(_), None) => b"NOT_FOUND\r\n",
                        (Some(want), Some((_, have))) if want != *have => b"EXISTS\r\n",
                        _ => {
                            shared.next_cas += 1;
                            let unique = shared.next_cas;
                            shared.items.insert(key.clone(), (value.clone(), unique));
                            self.cache.insert(key, Some((value, unique)));
                            b"STORED\r\n"
                        }
                    };
                    writer.write_bytes(reply)?;
                }
                Request::Delete(key) => {
                    let reply: &[u8] = if shared.items.remove(&key).is_some() {
                        b"DELETED\r\n"
                    } else {
                        b"NOT_FOUND\r\n"
                    };
                    self.cache.insert(key, None);
                    writer.write_bytes(reply)?;
                }
            }
        }
        Ok(Next::Continue)
    }
}

#[test]
fn a_planted_stale_read_in_a_copy_of_the_store_is_caught() {
    let report = SimRunner::new("a_planted_stale_read_in_a_copy_of_the_store_is_caught")
        .seeds(0..50)
        .shrink(false)
        .run(|case| {
            let mut sim = case.network(Faults::short_io());
            let server = sim.host("server");
            let address = server_address();
            let shared = Rc::new(RefCell::new(Items::default()));
            sim.serve_session(
                server,
                address.clone(),
                ConnectionConfig::default(),
                move |_| StaleReadCache {
                    shared: Rc::clone(&shared),
                    cache: BTreeMap::new(),
                },
            );
            let history = KeyHistory::new();
            for i in 0..4 {
                let host = sim.host(&format!("client{i}"));
                let client = HistoryClient::new(i, case.seed(), 40, history.clone());
                sim.connect_session(host, &address, client, ConnectionConfig::default());
            }
            sim.run().map_err(|e| e.to_string())?;
            check_per_key(&CasRegister::default(), &history.operations()).map_err(|e| e.to_string())
        });
    let failure = report
        .failures
        .first()
        .unwrap_or_else(|| panic!("not caught: {report}"));
    assert!(failure.message.contains("not linearizable"), "{report}");
}
