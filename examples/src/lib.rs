//! concurrence's runnable programs as a library: the memcached-compatible server and client
//! (`memcache`), so that tests, fuzz targets and benchmarks use the very code the
//! `memcache-server` binary runs.

pub mod memcache;
