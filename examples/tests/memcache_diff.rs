//! Differential testing against Debian's memcached (`concurrence_examples::memcache::
//! differential`): seeded command streams from a grammar of the whole text and meta protocol
//! go to memcached and to our server on each backend, split into writes at random points; the
//! reply streams must match after the normalisation `docs/memcache.md` documents.
//!
//! `cargo test` runs 2,000 streams against each backend (`MEMCACHE_DIFF_SEED`,
//! `MEMCACHE_DIFF_CASES` change that); the `memcache-diff` program runs more and prints a
//! divergence as a minimal transcript: `cargo run --release -p concurrence-examples --bin
//! memcache-diff -- --seed 0 --cases 100000`.

use concurrence_examples::memcache::differential::{Backend, Memcached, OurServer, run};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn compare(backend: Backend) {
    let reference = match Memcached::start("memcached", &[]) {
        Ok(reference) => reference,
        Err(error) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "memcached did not start ({error}); .ci/run installs it with apt"
            );
            eprintln!("memcached did not start ({error}): skipping the comparison");
            return;
        }
    };
    let ours = OurServer::start(backend).expect("start our server");
    let (seed, cases) = (
        env("MEMCACHE_DIFF_SEED", 0),
        env("MEMCACHE_DIFF_CASES", 2_000),
    );
    let divergence = run(
        seed,
        cases,
        reference.address(),
        ours.address(),
        backend.name(),
    )
    .expect("both servers reachable");
    if let Some(divergence) = divergence {
        panic!(
            "case {} of seed {seed} diverges on {}:\n{}",
            divergence.case,
            backend.name(),
            divergence.transcript
        );
    }
}

#[test]
fn reply_streams_match_memcached_on_polling() {
    compare(Backend::Polling);
}

#[test]
fn reply_streams_match_memcached_on_smol() {
    compare(Backend::Smol);
}

#[test]
fn reply_streams_match_memcached_on_uring() {
    compare(Backend::Uring);
}
