//! The memcache server session under arbitrary client bytes and arbitrary chunking, with a
//! small store so eviction and the item limit are reached: never a panic, every reply
//! well-framed, the store's bookkeeping consistent, and the same replies however the input
//! was split.

#![no_main]

use std::hash::{BuildHasherDefault, DefaultHasher};
use std::sync::Arc;

use arbitrary::{Result, Unstructured};
use concurrence_core::Timestamp;
use concurrence_examples::memcache::reply_framing::check_replies;
use concurrence_examples::memcache::stats::ServerInfo;
use concurrence_examples::memcache::{MemcacheSession, Shared, StoreConfig};
use concurrence_testkit::{Pair, Script};
use libfuzzer_sys::fuzz_target;

type Fixed = BuildHasherDefault<DefaultHasher>;

fn serve(input: &[u8], chunk: usize) -> (Vec<u8>, Arc<Shared<Fixed>>) {
    let shared = Arc::new(Shared::new(
        ServerInfo {
            started: Timestamp::ZERO,
            pid: 0,
            threads: 1,
            max_connections: 1,
            store: StoreConfig {
                memory_limit: 2048,
                item_size_max: 512,
                unix_time_at_zero: 1_700_000_000,
            },
            ..ServerInfo::default()
        },
        Fixed::default(),
    ));
    let (reader, writer) = shared.buffers();
    let script = Script::new().send(input).close_write();
    let mut pair = Pair::with_configs(
        script,
        MemcacheSession::new(Arc::clone(&shared)),
        reader,
        writer,
    )
    .with_chunk_size(chunk);
    pair.run().expect("the pair settles");
    (pair.a().session().received().to_vec(), shared)
}

/// The replies without `STAT bytes_read`/`bytes_written`, which count per read and so
/// legitimately depend on the split.
fn without_traffic_stats(replies: &[u8]) -> Vec<u8> {
    let mut kept = Vec::with_capacity(replies.len());
    let mut rest = replies;
    while !rest.is_empty() {
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(rest.len(), |i| i + 2);
        let line = &rest[..end];
        if !(line.starts_with(b"STAT bytes_read ") || line.starts_with(b"STAT bytes_written ")) {
            kept.extend_from_slice(line);
        }
        rest = &rest[end..];
    }
    kept
}

fn run(mut u: Unstructured<'_>) -> Result<()> {
    let chunk = usize::from(u.int_in_range(1u8..=64)?);
    let input = u.take_rest();
    let (whole, shared) = serve(input, usize::MAX);
    if let Err(problem) = check_replies(&whole) {
        panic!("broken reply framing: {problem}");
    }
    if let Err(problem) = shared.store.check_invariants() {
        panic!("store inconsistent: {problem}");
    }
    let (split, _) = serve(input, chunk);
    assert_eq!(
        without_traffic_stats(&split),
        without_traffic_stats(&whole),
        "replies depend on the split (chunks of {chunk})"
    );
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(Unstructured::new(data));
});
