//! Plain reference models of the core's state machines, for property tests and fuzz targets.
//!
//! Not part of the supported API (hidden from the docs): the proptest suites in `core/tests`
//! and the targets in `fuzz/` share these, so every checker runs against one copy of each model.

pub mod buffer;
pub mod connection;
pub mod framing;
