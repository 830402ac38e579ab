//! concurrence's runnable programs as a library: the memcached-compatible server and client
//! (`memcache`), so that tests, fuzz targets and benchmarks use the very code the
//! `memcache-server` binary runs; and the seed's chat example (`chat`).

#![forbid(unsafe_code)]

pub mod chat;
pub mod chat_session;
pub mod memcache;

/// Installs the programs' `tracing` subscriber: to stderr, filtered by `RUST_LOG` when set,
/// else by `default_filter` (e.g. `"info"`).
pub fn init_logging(default_filter: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// The guide `docs/memcache.md`, compiled here so that every code block in it is a doc test.
#[doc = include_str!("../../docs/memcache.md")]
#[cfg(doctest)]
pub mod memcache_guide {}
