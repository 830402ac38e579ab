//! Plain reference models of the core's state machines, for property tests and fuzz targets.
//!
//! The proptest suites in `core/tests` and the targets in `fuzz/` share these, so every checker
//! runs against one copy of each model; a protocol author can run the same checks on a
//! connection of their own (`model::connection` is the pattern for a hostile-peer harness).

pub mod buffer;
pub mod connection;
pub mod framing;
