//! concurrence's runnable programs as a library: the memcached-compatible server and client
//! (`memcache`), so that tests, fuzz targets and benchmarks use the very code the
//! `memcache-server` binary runs; and the seed's chat example (`chat`).

pub mod chat;
pub mod memcache;

/// The guide `docs/memcache.md`, compiled here so that every code block in it is a doc test.
#[doc = include_str!("../../docs/memcache.md")]
#[doc(hidden)]
pub mod memcache_guide {}
