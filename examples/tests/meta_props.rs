//! The meta protocol's item states against a simple model: the recache win (`W`), the token
//! already sent (`Z`), stale items (`X`, from `md I` and from `ms I` with an older CAS),
//! vivify on miss (`mg N`), CAS comparison (`ms C`, `md C`) and the fetched mark (`h`). Random
//! command sequences on one key run through the server session (no sockets, a `Pair`), and
//! every reply must be the one the model predicts, as memcached 1.6.18's `proto_text.c` rules
//! them.

use std::hash::{BuildHasherDefault, DefaultHasher};
use std::sync::Arc;

use concurrence_core::Timestamp;
use concurrence_examples::memcache::sim_load::sim_store_config;
use concurrence_examples::memcache::stats::ServerInfo;
use concurrence_examples::memcache::{MemcacheSession, Shared};
use concurrence_testkit::{Pair, Script};
use proptest::prelude::*;

type Fixed = BuildHasherDefault<DefaultHasher>;

/// One command on the key `k`.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// `ms k 1 T0` (a plain set).
    Set(u8),
    /// `mg k v h` (a fetch).
    Get,
    /// `mg k v N30`: vivify on a miss.
    Vivify,
    /// `md k I`: mark stale.
    Invalidate,
    /// `md k` or `md k C<cas + offset>`.
    Delete(Option<i8>),
    /// `ms k 1 I C<cas + offset>`: compare (and with an older CAS, store stale).
    CasSet(u8, i8),
    /// `mg k s u`: a look without a bump.
    Peek,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..3).prop_map(Op::Set),
        Just(Op::Get),
        Just(Op::Vivify),
        Just(Op::Invalidate),
        prop::option::of(-1i8..=1).prop_map(Op::Delete),
        ((0u8..3), (-1i8..=1)).prop_map(|(v, o)| Op::CasSet(v, o)),
        Just(Op::Peek),
    ]
}

#[derive(Debug, Clone, Default)]
struct Item {
    value: Vec<u8>,
    cas: u64,
    fetched: bool,
    stale: bool,
    token_sent: bool,
}

/// The model: the key's item and the store's next CAS (one shard: uniques count up by one).
#[derive(Debug)]
struct Model {
    item: Option<Item>,
    next_cas: u64,
}

impl Model {
    fn new_cas(&mut self) -> u64 {
        let cas = self.next_cas;
        self.next_cas += 1;
        cas
    }

    fn cas_word(&self, offset: i8) -> u64 {
        let base = self.item.as_ref().map_or(self.next_cas, |i| i.cas);
        base.saturating_add_signed(i64::from(offset)).max(1)
    }

    /// The request for `op` and the reply the model predicts.
    fn apply(&mut self, op: Op) -> (Vec<u8>, Vec<u8>) {
        match op {
            Op::Set(v) => {
                let cas = self.new_cas();
                self.item = Some(Item {
                    value: vec![b'a' + v],
                    cas,
                    ..Item::default()
                });
                (
                    format!("ms k 1 T0\r\n{}\r\n", char::from(b'a' + v)).into(),
                    b"HD\r\n".to_vec(),
                )
            }
            Op::Get | Op::Vivify => {
                let request: &[u8] = if matches!(op, Op::Get) {
                    b"mg k v h\r\n"
                } else {
                    b"mg k v N30\r\n"
                };
                let mut created = false;
                if self.item.is_none() && matches!(op, Op::Vivify) {
                    let cas = self.new_cas();
                    self.item = Some(Item {
                        cas,
                        ..Item::default()
                    });
                    created = true;
                }
                let Some(item) = self.item.as_mut() else {
                    return (request.to_vec(), b"EN\r\n".to_vec());
                };
                let mut line = format!("VA {}", item.value.len());
                if matches!(op, Op::Get) {
                    line.push_str(if item.fetched { " h1" } else { " h0" });
                }
                let mut won = created;
                if item.token_sent {
                    line.push_str(" Z");
                }
                if item.stale {
                    line.push_str(" X");
                    won |= !item.token_sent;
                }
                if won {
                    line.push_str(" W");
                    item.token_sent = true;
                }
                item.fetched = true;
                let mut reply = line.into_bytes();
                reply.extend_from_slice(b"\r\n");
                reply.extend_from_slice(&item.value);
                reply.extend_from_slice(b"\r\n");
                (request.to_vec(), reply)
            }
            Op::Peek => {
                let reply = match &self.item {
                    Some(item) => format!("HD s{}\r\n", item.value.len()).into_bytes(),
                    None => b"EN\r\n".to_vec(),
                };
                let mut reply = reply;
                if let Some(item) = &self.item {
                    // No bump: the fetched mark stays as it was; Z and X still show.
                    reply.truncate(reply.len() - 2);
                    if item.token_sent {
                        reply.extend_from_slice(b" Z");
                    }
                    if item.stale {
                        reply.extend_from_slice(b" X");
                        if !item.token_sent {
                            reply.extend_from_slice(b" W");
                        }
                    }
                    reply.extend_from_slice(b"\r\n");
                }
                if let Some(item) = self.item.as_mut() {
                    if item.stale && !item.token_sent {
                        item.token_sent = true;
                    }
                }
                (b"mg k s u\r\n".to_vec(), reply)
            }
            Op::Invalidate => {
                if self.item.is_none() {
                    return (b"md k I\r\n".to_vec(), b"NF\r\n".to_vec());
                }
                let cas = self.new_cas();
                let item = self.item.as_mut().expect("checked");
                item.stale = true;
                item.token_sent = false;
                item.cas = cas;
                (b"md k I\r\n".to_vec(), b"HD\r\n".to_vec())
            }
            Op::Delete(offset) => {
                let request = match offset {
                    None => b"md k\r\n".to_vec(),
                    Some(o) => format!("md k C{}\r\n", self.cas_word(o)).into_bytes(),
                };
                let reply: &[u8] = match (&self.item, offset) {
                    (None, _) => b"NF\r\n",
                    (Some(item), Some(o)) if self.cas_word(o) != item.cas => b"EX\r\n",
                    (Some(_), _) => {
                        self.item = None;
                        b"HD\r\n"
                    }
                };
                (request, reply.to_vec())
            }
            Op::CasSet(v, offset) => {
                let compare = self.cas_word(offset);
                let request =
                    format!("ms k 1 I C{compare}\r\n{}\r\n", char::from(b'a' + v)).into_bytes();
                let Some(old) = self.item.clone() else {
                    return (request, b"NF\r\n".to_vec());
                };
                if compare <= old.cas {
                    let stale = compare < old.cas;
                    let cas = self.new_cas();
                    self.item = Some(Item {
                        value: vec![b'a' + v],
                        cas,
                        fetched: false,
                        stale,
                        token_sent: stale && old.token_sent,
                    });
                    (request, b"HD\r\n".to_vec())
                } else {
                    (request, b"EX\r\n".to_vec())
                }
            }
        }
    }
}

fn serve(input: &[u8], chunk: usize) -> Vec<u8> {
    let shared = Arc::new(Shared::new(
        ServerInfo {
            started: Timestamp::ZERO,
            threads: 1,
            max_connections: 1,
            store: sim_store_config(),
            ..ServerInfo::default()
        },
        Fixed::default(),
    ));
    let (reader, writer) = shared.buffers();
    let script = Script::new().send(input).close_write();
    let mut pair = Pair::with_configs(script, MemcacheSession::new(shared), reader, writer)
        .with_chunk_size(chunk);
    pair.run().expect("the pair settles");
    pair.a().session().received().to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn meta_item_states_follow_the_model(
        ops in prop::collection::vec(op(), 1..40),
        chunk in 1usize..64,
    ) {
        let mut model = Model { item: None, next_cas: 1 };
        let mut input = Vec::new();
        let mut expected = Vec::new();
        for op in ops {
            let (request, reply) = model.apply(op);
            input.extend_from_slice(&request);
            expected.extend_from_slice(&reply);
        }
        let got = serve(&input, chunk);
        prop_assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected),
            "sent {:?}",
            String::from_utf8_lossy(&input)
        );
    }
}
