//! The server session without sockets: a scripted peer in a `Pair` on virtual time, so expiry
//! runs on the session's `now`, every byte split is tried, and the end of stream mid-request
//! is exercised.

use std::hash::{BuildHasherDefault, DefaultHasher};
use std::sync::Arc;
use std::time::Duration;

use concurrence_core::{EndKind, Timestamp};
use concurrence_examples::memcache::sim_load::sim_store_config;
use concurrence_examples::memcache::stats::ServerInfo;
use concurrence_examples::memcache::{MemcacheSession, Shared, StoreConfig};
use concurrence_testkit::{Pair, Script};

type Fixed = BuildHasherDefault<DefaultHasher>;

fn shared(store: StoreConfig) -> Arc<Shared<Fixed>> {
    Arc::new(Shared::new(
        ServerInfo {
            started: Timestamp::ZERO,
            pid: 0,
            threads: 1,
            max_connections: 8,
            store,
            ..ServerInfo::default()
        },
        Fixed::default(),
    ))
}

fn run(script: Script, chunk: usize) -> (Vec<u8>, Option<EndKind>) {
    let shared = shared(sim_store_config());
    let (reader, writer) = shared.buffers();
    let mut pair = Pair::with_configs(script, MemcacheSession::new(shared), reader, writer)
        .with_chunk_size(chunk);
    pair.run().expect("the pair settles");
    let (_, server_end) = pair.end_kinds();
    (pair.a().session().received().to_vec(), server_end)
}

#[test]
fn expiry_follows_the_sessions_clock() {
    let script = Script::new()
        .send("set a 0 2 1\r\nx\r\nset b 0 10 1\r\ny\r\nget a b\r\n")
        .await_suffix("END\r\n")
        .wait(Duration::from_secs(3))
        .send("get a b\r\ntouch b 1\r\n")
        .await_suffix("TOUCHED\r\n")
        .wait(Duration::from_millis(1500))
        .send("get b\r\n")
        .await_suffix("END\r\n")
        .close();
    let (received, _) = run(script, usize::MAX);
    assert_eq!(
        String::from_utf8_lossy(&received),
        "STORED\r\nSTORED\r\nVALUE a 0 1\r\nx\r\nVALUE b 0 1\r\ny\r\nEND\r\n\
         VALUE b 0 1\r\ny\r\nEND\r\nTOUCHED\r\n\
         END\r\n"
    );
}

#[test]
fn every_split_of_a_pipeline_gives_the_same_replies() {
    let request = "set k 3 0 4\r\nab\r\n\r\nappend k 0 0 2\r\n!!\r\ngets k\r\nincr k 1\r\ndelete k\r\nget k\r\nversion\r\n";
    let script = || {
        Script::new()
            .send(request)
            .await_suffix("concurrence\r\n")
            .close()
    };
    let whole = run(script(), usize::MAX).0;
    assert!(
        whole.starts_with(b"STORED\r\nSTORED\r\nVALUE k 3 6 "),
        "{whole:?}"
    );
    for chunk in [1, 2, 3, 5, 7, 13] {
        let split = run(script(), chunk).0;
        assert_eq!(split, whole, "chunks of {chunk}");
    }
}

#[test]
fn a_long_multiget_waits_for_the_reader_instead_of_buffering_everything() {
    // 64 items of 16 KiB requested in one line: 1 MiB of replies, more than the writer's high
    // water mark, so the session pauses the get and resumes it as the peer reads.
    let mut setup = String::new();
    let value = "v".repeat(16 * 1024);
    for i in 0..64 {
        setup.push_str(&format!("set key{i} 0 0 {}\r\n{value}\r\n", value.len()));
    }
    let keys: Vec<String> = (0..64).map(|i| format!("key{i}")).collect();
    let script = Script::new()
        .send(setup)
        .send(format!("get {}\r\n", keys.join(" ")))
        .await_suffix("END\r\n")
        .close();
    let (received, _) = run(script, 4096);
    let text = String::from_utf8_lossy(&received);
    assert_eq!(text.matches("STORED\r\n").count(), 64);
    assert_eq!(text.matches("VALUE key").count(), 64);
    for (i, key) in keys.iter().enumerate() {
        let at = text
            .find(&format!("VALUE {key} "))
            .expect("each key answered");
        if i > 0 {
            assert!(
                at > text
                    .find(&format!("VALUE {} ", keys[i - 1]))
                    .expect("previous")
            );
        }
    }
    assert!(text.ends_with("END\r\n"));
}

#[test]
fn end_of_stream_inside_a_data_block_closes_quietly_after_earlier_replies() {
    let script = Script::new()
        .send("set a 0 0 1\r\nx\r\nset b 0 0 10\r\nabc")
        .close_write();
    let (received, server_end) = run(script, usize::MAX);
    assert_eq!(received, b"STORED\r\n");
    assert_eq!(server_end, Some(EndKind::PeerClosed));
}

#[test]
fn a_command_line_over_the_bound_is_refused_and_the_connection_closed() {
    let script = Script::new().send(format!("get {}\r\n", "k ".repeat(40_000)));
    let (received, server_end) = run(script, usize::MAX);
    assert_eq!(received, b"CLIENT_ERROR line too long\r\n");
    assert_eq!(server_end, Some(EndKind::Closed));
}
