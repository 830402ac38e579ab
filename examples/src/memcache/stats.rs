//! What `stats` reports: the store's counters, the connection counters every session updates,
//! and the server's settings, written in memcached's `STAT <name> <value>` form.

use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering};

use concurrence_core::{FramingError, StreamWriter, Timestamp};

use super::store::{StoreConfig, StoreStats};

/// The version `version` and `stats` report: memcached's protocol level, then ours.
pub const VERSION: &str = "1.6.18-concurrence";

/// Counters shared by every connection of one server (atomics: sessions run on many threads).
#[derive(Debug, Default)]
pub struct ConnectionStats {
    curr_connections: AtomicU64,
    total_connections: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
}

impl ConnectionStats {
    /// A connection started.
    pub fn opened(&self) {
        self.curr_connections.fetch_add(1, Ordering::Relaxed);
        self.total_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection ended.
    pub fn closed(&self) {
        self.curr_connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// Bytes moved on some connection.
    pub fn add_traffic(&self, read: u64, written: u64) {
        if read > 0 {
            self.bytes_read.fetch_add(read, Ordering::Relaxed);
        }
        if written > 0 {
            self.bytes_written.fetch_add(written, Ordering::Relaxed);
        }
    }

    /// Connections open now.
    #[must_use]
    pub fn current(&self) -> u64 {
        self.curr_connections.load(Ordering::Relaxed)
    }

    /// `stats reset`: zeroes the totals (not the connections open now).
    pub fn reset(&self) {
        self.total_connections.store(0, Ordering::Relaxed);
        self.bytes_read.store(0, Ordering::Relaxed);
        self.bytes_written.store(0, Ordering::Relaxed);
    }
}

/// Fixed facts about the server, reported by `stats` and `stats settings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// When the server started, on the sessions' clock.
    pub started: Timestamp,
    /// The process id (0 in the simulator).
    pub pid: u32,
    /// Event loops or executor threads.
    pub threads: usize,
    /// The `-c` limit.
    pub max_connections: usize,
    /// The store's bounds.
    pub store: StoreConfig,
}

/// One `STAT` line.
fn stat(writer: &mut StreamWriter, name: &str, value: impl Display) -> Result<(), FramingError> {
    writer.write_bytes(format!("STAT {name} {value}\r\n").as_bytes())
}

/// Writes the reply to `stats`, `END` included.
///
/// # Errors
/// The writer is full or closed.
pub fn write_general(
    writer: &mut StreamWriter,
    info: &ServerInfo,
    connections: &ConnectionStats,
    store: &StoreStats,
    items: (usize, usize),
    now: Timestamp,
) -> Result<(), FramingError> {
    let uptime = now.saturating_duration_since(info.started).as_secs();
    let time = info.store.unix_time_at_zero + now.since_epoch().as_secs();
    stat(writer, "pid", info.pid)?;
    stat(writer, "uptime", uptime)?;
    stat(writer, "time", time)?;
    stat(writer, "version", VERSION)?;
    stat(writer, "pointer_size", usize::BITS)?;
    stat(writer, "max_connections", info.max_connections)?;
    stat(writer, "curr_connections", connections.current())?;
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    stat(
        writer,
        "total_connections",
        load(&connections.total_connections),
    )?;
    for (name, value) in [
        ("cmd_get", store.cmd_get),
        ("cmd_set", store.cmd_set),
        ("cmd_flush", store.cmd_flush),
        ("cmd_touch", store.cmd_touch),
        ("get_hits", store.get_hits),
        ("get_misses", store.get_misses),
        ("get_expired", store.get_expired),
        ("get_flushed", store.get_flushed),
        ("delete_misses", store.delete_misses),
        ("delete_hits", store.delete_hits),
        ("incr_misses", store.incr_misses),
        ("incr_hits", store.incr_hits),
        ("decr_misses", store.decr_misses),
        ("decr_hits", store.decr_hits),
        ("cas_misses", store.cas_misses),
        ("cas_hits", store.cas_hits),
        ("cas_badval", store.cas_badval),
        ("touch_hits", store.touch_hits),
        ("touch_misses", store.touch_misses),
        ("store_too_large", store.store_too_large),
        ("store_no_memory", store.store_no_memory),
        ("bytes_read", load(&connections.bytes_read)),
        ("bytes_written", load(&connections.bytes_written)),
    ] {
        stat(writer, name, value)?;
    }
    stat(writer, "limit_maxbytes", info.store.memory_limit)?;
    stat(writer, "threads", info.threads)?;
    stat(writer, "bytes", items.1)?;
    stat(writer, "curr_items", items.0)?;
    stat(writer, "total_items", store.total_items)?;
    stat(writer, "evictions", store.evictions)?;
    stat(writer, "reclaimed", store.reclaimed)?;
    writer.write_bytes(b"END\r\n")
}

/// Writes the reply to `stats settings`, `END` included.
///
/// # Errors
/// The writer is full or closed.
pub fn write_settings(writer: &mut StreamWriter, info: &ServerInfo) -> Result<(), FramingError> {
    stat(writer, "maxbytes", info.store.memory_limit)?;
    stat(writer, "maxconns", info.max_connections)?;
    stat(writer, "evictions", "on")?;
    stat(writer, "num_threads", info.threads)?;
    stat(writer, "cas_enabled", "yes")?;
    stat(writer, "item_size_max", info.store.item_size_max)?;
    writer.write_bytes(b"END\r\n")
}
