//! What `stats` reports: the store's counters, the connection counters every session updates,
//! and the server's settings, written in memcached's `STAT <name> <value>` form with memcached
//! 1.6.18's names in its order (clients and monitoring read them by name). Stats of machinery
//! this server does not have (libevent, extstore, TLS, the slab rebalancer) report memcached's
//! idle values: zero, `no`, its defaults.

use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering};

use concurrence_core::{Address, FramingError, StreamWriter, Timestamp};

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
    verbosity: AtomicU64,
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

    /// `verbosity <level>`: the level `stats settings` reports (memcached caps it at 2).
    pub fn set_verbosity(&self, level: u64) {
        self.verbosity.store(level.min(2), Ordering::Relaxed);
    }

    /// `stats reset`: zeroes the totals (not the connections open now).
    pub fn reset(&self) {
        self.total_connections.store(0, Ordering::Relaxed);
        self.bytes_read.store(0, Ordering::Relaxed);
        self.bytes_written.store(0, Ordering::Relaxed);
    }
}

/// One open connection as `stats conns` lists it: its slot in the table, its peer and the time
/// of its last command. A session holds its entry (one small allocation per connection).
#[derive(Debug)]
pub struct ConnectionEntry {
    id: AtomicU64,
    address: Address,
    /// Seconds (on the sessions' clock) of its last command.
    last_command: AtomicU64,
}

impl ConnectionEntry {
    /// An entry for a connection from `address`, not yet in a table.
    #[must_use]
    pub fn new(address: Address) -> Self {
        ConnectionEntry {
            id: AtomicU64::new(0),
            address,
            last_command: AtomicU64::new(0),
        }
    }

    /// A command arrived at `seconds`.
    pub fn touch(&self, seconds: u64) {
        self.last_command.store(seconds, Ordering::Relaxed);
    }

    /// Its number in `stats conns` (the listener is 0).
    #[must_use]
    pub fn id(&self) -> u64 {
        self.id.load(Ordering::Relaxed)
    }
}

/// The open connections, for `stats conns`: a session registers its entry when it starts and
/// removes it when it ends (one lock each time); per command it only stores a time in its own
/// entry. Numbers are reused after a connection ends, as memcached's file descriptors are.
#[derive(Debug, Default)]
pub struct ConnectionTable {
    open: std::sync::Mutex<slab::Slab<std::sync::Arc<ConnectionEntry>>>,
}

impl ConnectionTable {
    /// Registers `entry`, started at `seconds`.
    pub fn open(&self, entry: &std::sync::Arc<ConnectionEntry>, seconds: u64) {
        entry.touch(seconds);
        let slot = self.lock().insert(std::sync::Arc::clone(entry));
        entry.id.store(slot as u64 + 1, Ordering::Relaxed);
    }

    /// Removes `entry`.
    pub fn close(&self, entry: &ConnectionEntry) {
        let Ok(slot) = usize::try_from(entry.id().saturating_sub(1)) else {
            return;
        };
        let mut open = self.lock();
        if open.contains(slot) {
            open.remove(slot);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, slab::Slab<std::sync::Arc<ConnectionEntry>>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes the reply to `stats conns` for connection `asking` at `seconds`: the listener
    /// (as id 0), then every open connection with its address, the listener's, its state (the
    /// one asking is parsing a command, the others wait) and its idle seconds; `END` included.
    ///
    /// # Errors
    /// The writer is full or closed.
    pub fn write(
        &self,
        writer: &mut StreamWriter,
        info: &ServerInfo,
        asking: u64,
        seconds: u64,
    ) -> Result<(), FramingError> {
        let listen = info.listen_address();
        let started = info.started.since_epoch().as_secs();
        writer.write_bytes(
            format!(
                "STAT 0:addr {listen}\r\nSTAT 0:state conn_listening\r\nSTAT 0:secs_since_last_cmd {}\r\n",
                seconds.saturating_sub(started)
            )
            .as_bytes(),
        )?;
        let open: Vec<std::sync::Arc<ConnectionEntry>> = self
            .lock()
            .iter()
            .map(|(_, e)| std::sync::Arc::clone(e))
            .collect();
        for entry in open {
            let id = entry.id();
            let state = if id == asking {
                "conn_parse_cmd"
            } else {
                "conn_waiting"
            };
            let idle = seconds.saturating_sub(entry.last_command.load(Ordering::Relaxed));
            let address = match &entry.address {
                Address::Tcp(address) => format!("tcp:{address}"),
                other => format!("{other}"),
            };
            writer.write_bytes(
                format!(
                    "STAT {id}:addr {address}\r\nSTAT {id}:listen_addr {listen}\r\nSTAT {id}:state {state}\r\nSTAT {id}:secs_since_last_cmd {idle}\r\n"
                )
                .as_bytes(),
            )?;
        }
        writer.write_bytes(b"END\r\n")
    }
}

/// Fixed facts about the server, reported by `stats` and `stats settings`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
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
    /// The TCP port (`-p`; 0 when serving a Unix socket or in the simulator).
    pub tcp_port: u16,
    /// The interface listened on (`-l`), if an IP address.
    pub interface: Option<String>,
    /// The Unix socket path, when serving one.
    pub socket_path: Option<String>,
    /// `-A`: the `shutdown` command stops the server.
    pub shutdown_enabled: bool,
    /// Seconds a silent connection is kept (0: forever).
    pub idle_timeout: u64,
}

impl ServerInfo {
    /// The listening address as memcached writes it (`tcp:127.0.0.1:11211`, `unix:/path`).
    #[must_use]
    pub fn listen_address(&self) -> String {
        match (&self.socket_path, &self.interface) {
            (Some(path), _) => format!("unix:{path}"),
            (None, Some(interface)) => format!("tcp:{interface}:{}", self.tcp_port),
            (None, None) => format!("tcp:0.0.0.0:{}", self.tcp_port),
        }
    }
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
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    stat(writer, "pid", info.pid)?;
    stat(writer, "uptime", uptime)?;
    stat(writer, "time", time)?;
    stat(writer, "version", VERSION)?;
    stat(writer, "libevent", "none")?;
    stat(writer, "pointer_size", usize::BITS)?;
    stat(writer, "rusage_user", "0.000000")?;
    stat(writer, "rusage_system", "0.000000")?;
    stat(writer, "max_connections", info.max_connections)?;
    stat(writer, "curr_connections", connections.current())?;
    stat(
        writer,
        "total_connections",
        load(&connections.total_connections),
    )?;
    for (name, value) in [
        ("rejected_connections", 0),
        ("connection_structures", connections.current()),
        ("response_obj_oom", 0),
        ("response_obj_count", 0),
        ("response_obj_bytes", 0),
        ("read_buf_count", 0),
        ("read_buf_bytes", 0),
        ("read_buf_bytes_free", 0),
        ("read_buf_oom", 0),
        ("reserved_fds", 0),
        ("cmd_get", store.cmd_get),
        ("cmd_set", store.cmd_set),
        ("cmd_flush", store.cmd_flush),
        ("cmd_touch", store.cmd_touch),
        ("cmd_meta", store.cmd_meta),
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
        ("auth_cmds", 0),
        ("auth_errors", 0),
        ("bytes_read", load(&connections.bytes_read)),
        ("bytes_written", load(&connections.bytes_written)),
        ("limit_maxbytes", info.store.memory_limit as u64),
        ("accepting_conns", 1),
        ("listen_disabled_num", 0),
        ("time_in_listen_disabled_us", 0),
        ("threads", info.threads as u64),
        ("conn_yields", 0),
        ("hash_power_level", 16),
        ("hash_bytes", 524_288),
        ("hash_is_expanding", 0),
        ("slab_reassign_rescues", 0),
        ("slab_reassign_chunk_rescues", 0),
        ("slab_reassign_evictions_nomem", 0),
        ("slab_reassign_inline_reclaim", 0),
        ("slab_reassign_busy_items", 0),
        ("slab_reassign_busy_deletes", 0),
        ("slab_reassign_running", 0),
        ("slabs_moved", 0),
        ("lru_crawler_running", 0),
        ("lru_crawler_starts", 0),
        ("lru_maintainer_juggles", 0),
        ("malloc_fails", 0),
        ("log_worker_dropped", 0),
        ("log_worker_written", 0),
        ("log_watcher_skipped", 0),
        ("log_watcher_sent", 0),
        ("log_watchers", 0),
        ("unexpected_napi_ids", 0),
        ("round_robin_fallback", 0),
        ("bytes", items.1 as u64),
        ("curr_items", items.0 as u64),
        ("total_items", store.total_items),
        ("slab_global_page_pool", 0),
        ("expired_unfetched", 0),
        ("evicted_unfetched", 0),
        ("evicted_active", 0),
        ("evictions", store.evictions),
        ("reclaimed", store.reclaimed),
        ("crawler_reclaimed", 0),
        ("crawler_items_checked", 0),
        ("lrutail_reflocked", 0),
        ("moves_to_cold", 0),
        ("moves_to_warm", 0),
        ("moves_within_lru", 0),
        ("direct_reclaims", 0),
        ("lru_bumps_dropped", 0),
    ] {
        stat(writer, name, value)?;
    }
    writer.write_bytes(b"END\r\n")
}

/// Writes the reply to `stats settings`, `END` included: memcached 1.6.18's settings, ours
/// where we have the setting, memcached's defaults for what this server does the same way.
///
/// # Errors
/// The writer is full or closed.
pub fn write_settings(
    writer: &mut StreamWriter,
    info: &ServerInfo,
    connections: &ConnectionStats,
) -> Result<(), FramingError> {
    let yes_no = |on: bool| if on { "yes" } else { "no" };
    stat(writer, "maxbytes", info.store.memory_limit)?;
    stat(writer, "maxconns", info.max_connections)?;
    stat(writer, "tcpport", info.tcp_port)?;
    stat(writer, "udpport", 0)?;
    stat(writer, "inter", info.interface.as_deref().unwrap_or("NULL"))?;
    stat(
        writer,
        "verbosity",
        connections.verbosity.load(Ordering::Relaxed),
    )?;
    stat(writer, "oldest", 0)?;
    stat(writer, "evictions", "on")?;
    stat(
        writer,
        "domain_socket",
        info.socket_path.as_deref().unwrap_or("NULL"),
    )?;
    stat(writer, "umask", 700)?;
    stat(writer, "shutdown_command", yes_no(info.shutdown_enabled))?;
    stat(writer, "growth_factor", "1.25")?;
    stat(writer, "chunk_size", 48)?;
    stat(writer, "num_threads", info.threads)?;
    stat(writer, "num_threads_per_udp", info.threads)?;
    stat(writer, "stat_key_prefix", ":")?;
    stat(writer, "detail_enabled", "no")?;
    stat(writer, "reqs_per_event", 20)?;
    stat(writer, "cas_enabled", "yes")?;
    stat(writer, "tcp_backlog", 1024)?;
    stat(writer, "binding_protocol", "ascii")?;
    stat(writer, "auth_enabled_sasl", "no")?;
    stat(writer, "auth_enabled_ascii", "no")?;
    stat(writer, "item_size_max", info.store.item_size_max)?;
    stat(writer, "maxconns_fast", "yes")?;
    stat(writer, "hashpower_init", 0)?;
    stat(writer, "slab_reassign", "no")?;
    stat(writer, "slab_automove", 0)?;
    stat(writer, "slab_automove_ratio", "0.80")?;
    stat(writer, "slab_automove_window", 30)?;
    stat(writer, "slab_chunk_max", 524_288)?;
    stat(writer, "lru_crawler", "no")?;
    stat(writer, "lru_crawler_sleep", 100)?;
    stat(writer, "lru_crawler_tocrawl", 0)?;
    stat(writer, "tail_repair_time", 0)?;
    stat(writer, "flush_enabled", "yes")?;
    stat(writer, "dump_enabled", "yes")?;
    stat(writer, "hash_algorithm", "siphash")?;
    stat(writer, "lru_maintainer_thread", "no")?;
    stat(writer, "lru_segmented", "no")?;
    stat(writer, "hot_lru_pct", 20)?;
    stat(writer, "warm_lru_pct", 40)?;
    stat(writer, "hot_max_factor", "0.20")?;
    stat(writer, "warm_max_factor", "2.00")?;
    stat(writer, "temp_lru", "no")?;
    stat(writer, "temporary_ttl", 61)?;
    stat(writer, "idle_timeout", info.idle_timeout)?;
    stat(writer, "watcher_logbuf_size", 262_144)?;
    stat(writer, "worker_logbuf_size", 65_536)?;
    stat(writer, "read_buf_mem_limit", 0)?;
    stat(writer, "track_sizes", "no")?;
    stat(writer, "inline_ascii_response", "no")?;
    for (name, value) in [
        ("ext_item_size", "512"),
        ("ext_item_age", "4294967295"),
        ("ext_low_ttl", "0"),
        ("ext_recache_rate", "2000"),
        ("ext_wbuf_size", "4194304"),
        ("ext_compact_under", "0"),
        ("ext_drop_under", "0"),
        ("ext_max_sleep", "1000000"),
        ("ext_max_frag", "0.80"),
        ("slab_automove_freeratio", "0.010"),
        ("ext_drop_unread", "no"),
        ("ssl_enabled", "no"),
        ("ssl_chain_cert", "(null)"),
        ("ssl_key", "(null)"),
        ("ssl_verify_mode", "0"),
        ("ssl_keyformat", "1"),
        ("ssl_ciphers", "NULL"),
        ("ssl_ca_cert", "NULL"),
        ("ssl_wbuf_size", "16384"),
        ("ssl_session_cache", "no"),
        ("ssl_kernel_tls", "no"),
        ("ssl_min_version", "tlsv1.2"),
        ("num_napi_ids", "(null)"),
        ("memory_file", "(null)"),
    ] {
        stat(writer, name, value)?;
    }
    writer.write_bytes(b"END\r\n")
}
