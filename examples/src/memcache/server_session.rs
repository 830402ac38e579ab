//! `MemcacheSession`: the memcached text protocol as one core `Session`, served unchanged by
//! the polling loop, the smol backend and the simulator.
//!
//! Each connection parses command lines, waits for data blocks, and answers from the shared
//! [`Store`]; it honours back-pressure (a long multi-get continues when the writer drains) and
//! answers every complete request before it closes.

use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, MutexGuard};

use concurrence_core::{
    Address, EndReason, FramingError, Next, ReaderConfig, Session, SessionError, StreamReader,
    StreamWriter, Timestamp, WriterConfig,
};

use super::command::ShutdownMode;
use super::command::{Command, StatsGroup, StoreHeader, StoreMode, parse_command};
use super::meta::MetaCommand;
use super::meta_reply::{MetaClock, meta_arithmetic, meta_debug, meta_delete, meta_get, meta_set};
use super::slabs;
use super::stats::{self, ConnectionEntry, ConnectionStats, ConnectionTable, ServerInfo, VERSION};
use super::store::{ArithmeticOutcome, Store};
use super::store_shards::ShardedStore;

/// The longest command line accepted (a multi-get of about 250 full-length keys). Past it the
/// server answers `CLIENT_ERROR line too long` and closes, as memcached does.
pub const MAX_COMMAND_LINE: usize = 64 * 1024;

/// What a `shutdown` command calls, when enabled (`-A`).
pub type ShutdownHook = Box<dyn Fn(ShutdownMode) + Send + Sync>;

/// What every connection of one server shares: the store, the counters, the settings.
pub struct Shared<H = RandomState> {
    /// The items, in shards.
    pub store: ShardedStore<H>,
    /// Connection counters.
    pub connections: ConnectionStats,
    /// The open connections (`stats conns`).
    pub table: ConnectionTable,
    /// Settings reported by `stats`.
    pub info: ServerInfo,
    shutdown: std::sync::OnceLock<ShutdownHook>,
}

impl<H> std::fmt::Debug for Shared<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("connections", &self.connections)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl<H: BuildHasher + Clone> Shared<H> {
    /// The shared state of a server with an empty store (sharded for `info.threads`).
    pub fn new(info: ServerInfo, hasher: H) -> Self {
        Shared {
            store: ShardedStore::new(info.store, info.threads, hasher),
            connections: ConnectionStats::default(),
            table: ConnectionTable::default(),
            info,
            shutdown: std::sync::OnceLock::new(),
        }
    }
}

impl<H: BuildHasher> Shared<H> {
    /// What a `shutdown` command does when the server enables it (`ServerInfo::
    /// shutdown_enabled`, memcached's `-A`): the program stops its server here. Set once.
    pub fn on_shutdown(&self, hook: impl Fn(ShutdownMode) + Send + Sync + 'static) {
        let _ = self.shutdown.set(Box::new(hook));
    }

    /// The shard holding `key`, locked.
    pub fn store_for(&self, key: &[u8]) -> MutexGuard<'_, Store<H>> {
        self.store.shard(key)
    }

    /// The buffer bounds a server of this store needs: a reader that holds a storage
    /// command's line together with its whole data block (the two are read as one frame), a
    /// writer that holds one whole reply.
    #[must_use]
    pub fn buffers(&self) -> (ReaderConfig, WriterConfig) {
        let item = self.info.store.item_size_max;
        let reader = ReaderConfig::default()
            .with_max_line(MAX_COMMAND_LINE)
            .with_max_block(item.saturating_add(2).saturating_add(MAX_COMMAND_LINE + 2));
        let default_writer = WriterConfig::default();
        let writer =
            default_writer.with_max_pending(default_writer.max_pending.max(item.saturating_mul(2)));
        (reader, writer)
    }
}

/// Where a connection is in the protocol. A storage command and its data block are read as one
/// frame (`StreamReader::read_frame`): no state is kept between its line and its block.
#[derive(Debug)]
enum State {
    /// Waiting for a command (with its data block, for a storage command).
    Command,
    /// Discarding the data block of a refused storage command (an item too large, an `ms`
    /// with bad flags), streamed, never buffered; its reply is already written.
    Swallow { remaining: usize },
    /// A multi-get paused by back-pressure: the keys not yet answered.
    /// (Boxed: rare, and it would triple the size of every idle connection's state.)
    GetRest(Box<GetRest>),
}

/// The keys of a multi-get not yet answered.
#[derive(Debug)]
struct GetRest {
    keys: Vec<u8>,
    with_cas: bool,
    touch: Option<i64>,
}

/// One memcached connection.
#[derive(Debug)]
pub struct MemcacheSession<H = RandomState> {
    shared: Arc<Shared<H>>,
    state: State,
    consumed: u64,
    /// This connection's entry in `stats conns` (its peer and last command time).
    entry: Option<Arc<ConnectionEntry>>,
}

impl<H: BuildHasher> MemcacheSession<H> {
    /// A session serving `shared`'s store.
    pub fn new(shared: Arc<Shared<H>>) -> Self {
        MemcacheSession {
            shared,
            state: State::Command,
            consumed: 0,
            entry: None,
        }
    }

    /// A session serving `shared`'s store to the peer at `peer` (as a server's session
    /// factory is given it), which `stats conns` lists.
    pub fn with_peer(shared: Arc<Shared<H>>, peer: &Address) -> Self {
        let mut session = Self::new(shared);
        session.entry = Some(Arc::new(ConnectionEntry::new(peer.clone())));
        session
    }

    /// Reads and runs one command, all or nothing: a storage command waits (consuming
    /// nothing) until its data block is buffered too. `Ok(None)`: incomplete;
    /// `Ok(Some(Some(next)))` ends the input loop.
    fn next_command(
        &mut self,
        reader: &mut StreamReader,
        now: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Option<Option<Next>>, FramingError> {
        reader.read_frame(|frame| {
            let Some(line) = frame.read_line(false)? else {
                return Ok(None);
            };
            let command = match parse_command(line) {
                Ok(command) => command,
                Err(failure) => {
                    if !failure.noreply {
                        writer.write_bytes(failure.error.reply())?;
                    }
                    if failure.swallow > 0 {
                        self.state = State::Swallow {
                            remaining: failure.swallow,
                        };
                    }
                    return Ok(Some(None));
                }
            };
            // A storage command's data block is read with its line, when the item can be
            // stored; otherwise the block is swallowed as it arrives.
            let stored = match &command {
                Command::Store(header) => Some((
                    header.key,
                    header.bytes,
                    header.flags,
                    header.mode == StoreMode::Set,
                    header.noreply,
                )),
                Command::Meta(MetaCommand::Set { request, bytes, .. }) => Some((
                    request.key.as_bytes(),
                    *bytes,
                    request.flags.client_flags,
                    true,
                    false,
                )),
                _ => None,
            };
            if let Some((key, bytes, flags, unlink_old, noreply)) = stored {
                if !self
                    .shared
                    .store_for(key)
                    .admits(key, bytes, flags, unlink_old, now)
                {
                    if !noreply {
                        writer.write_bytes(b"SERVER_ERROR object too large for cache\r\n")?;
                    }
                    self.state = State::Swallow {
                        remaining: bytes.saturating_add(2),
                    };
                    return Ok(Some(None));
                }
                let Some(block) = frame.read_bytes(bytes.saturating_add(2))? else {
                    return Ok(None);
                };
                self.shared.store_for(key).allocate(key, bytes, flags);
                match &command {
                    Command::Store(header) => self.store(header, block, now, writer)?,
                    Command::Meta(MetaCommand::Set { request, mode, .. }) => {
                        let clock = self.clock(now);
                        meta_set(
                            &mut self.shared.store_for(request.key.as_bytes()),
                            request,
                            *mode,
                            block,
                            clock,
                            writer,
                        )?;
                    }
                    _ => {}
                }
                return Ok(Some(None));
            }
            self.execute(command, now, writer).map(Some)
        })
    }

    /// Runs one parsed command; `Some(next)` ends the input loop.
    fn execute(
        &mut self,
        command: Command<'_>,
        now: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<Option<Next>, FramingError> {
        match command {
            // Read with their data blocks, in `next_command`.
            Command::Store(_) | Command::Meta(MetaCommand::Set { .. }) => {}
            Command::Meta(meta) => {
                let clock = self.clock(now);
                let key = match &meta {
                    MetaCommand::Get(request)
                    | MetaCommand::Delete(request)
                    | MetaCommand::Set { request, .. }
                    | MetaCommand::Arithmetic { request, .. } => request.key,
                    MetaCommand::Debug(key) => *key,
                };
                let mut store = self.shared.store_for(key.as_bytes());
                match meta {
                    MetaCommand::Get(request) => meta_get(&mut store, &request, clock, writer)?,
                    MetaCommand::Delete(request) => {
                        meta_delete(&mut store, &request, clock, writer)?;
                    }
                    MetaCommand::Arithmetic { request, incr } => {
                        meta_arithmetic(&mut store, &request, incr, clock, writer)?;
                    }
                    MetaCommand::Debug(key) => meta_debug(&mut store, &key, clock, writer)?,
                    MetaCommand::Set { .. } => {}
                }
            }
            Command::Get {
                keys,
                with_cas,
                touch,
            } => self.get(keys.as_bytes(), with_cas, touch, now, writer)?,
            Command::Delete { key, noreply } => {
                let deleted = self.shared.store_for(key).delete(key, now);
                if !noreply {
                    writer.write_bytes(if deleted {
                        b"DELETED\r\n"
                    } else {
                        b"NOT_FOUND\r\n"
                    })?;
                }
            }
            Command::Arithmetic {
                incr,
                key,
                delta,
                noreply,
            } => {
                let outcome = self.shared.store_for(key).arithmetic(incr, key, delta, now);
                if !noreply {
                    match outcome {
                        ArithmeticOutcome::Value(value) => {
                            writer.write_bytes(itoa::Buffer::new().format(value).as_bytes())?;
                            writer.write_bytes(b"\r\n")?;
                        }
                        ArithmeticOutcome::NotFound | ArithmeticOutcome::CasMismatch => {
                            writer.write_bytes(b"NOT_FOUND\r\n")?;
                        }
                        ArithmeticOutcome::NonNumeric => writer.write_bytes(
                            b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
                        )?,
                    }
                }
            }
            Command::Touch {
                key,
                exptime,
                noreply,
            } => {
                let touched = self.shared.store_for(key).touch(key, exptime, now);
                if !noreply {
                    writer.write_bytes(if touched {
                        b"TOUCHED\r\n"
                    } else {
                        b"NOT_FOUND\r\n"
                    })?;
                }
            }
            Command::FlushAll { delay, noreply } => {
                self.shared
                    .store
                    .for_each(|store| store.flush_all(delay, now));
                if !noreply {
                    writer.write_bytes(b"OK\r\n")?;
                }
            }
            Command::Version => {
                writer.write_bytes(format!("VERSION {VERSION}\r\n").as_bytes())?;
            }
            Command::Verbosity { level, noreply } => {
                self.shared.connections.set_verbosity(level);
                if !noreply {
                    writer.write_bytes(b"OK\r\n")?;
                }
            }
            Command::Stats(group) => self.stats(group, now, writer)?,
            Command::CacheMemlimit { megabytes, noreply } => {
                let reply: &[u8] = if megabytes < 8 {
                    b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n"
                } else if megabytes > 1_000_000_000 {
                    b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n"
                } else if self
                    .shared
                    .store
                    .set_memory_limit(megabytes as usize * 1024 * 1024)
                {
                    b"OK\r\n"
                } else {
                    b"MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust\r\n"
                };
                if !noreply {
                    writer.write_bytes(reply)?;
                }
            }
            Command::MetaNoop => writer.write_bytes(b"MN\r\n")?,
            Command::Shutdown(mode) => match (self.shared.info.shutdown_enabled, mode) {
                (false, _) => writer.write_bytes(b"ERROR: shutdown not enabled\r\n")?,
                (true, ShutdownMode::Invalid) => {
                    writer.write_bytes(b"CLIENT_ERROR invalid shutdown mode\r\n")?;
                }
                (true, mode) => {
                    tracing::info!(?mode, "shutdown command");
                    if let Some(hook) = self.shared.shutdown.get() {
                        hook(mode);
                    }
                    return Ok(Some(Next::Close));
                }
            },
            Command::Quit => return Ok(Some(Next::Close)),
        }
        Ok(None)
    }

    fn store(
        &mut self,
        header: &StoreHeader<'_>,
        block: &[u8],
        now: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<(), FramingError> {
        let Some(data) = block.strip_suffix(b"\r\n") else {
            if !header.noreply {
                writer.write_bytes(b"CLIENT_ERROR bad data chunk\r\n")?;
            }
            return Ok(());
        };
        let outcome = self.shared.store_for(header.key).store(
            header.mode,
            header.key,
            header.flags,
            header.exptime,
            data,
            now,
        );
        if !header.noreply {
            writer.write_bytes(outcome.reply())?;
        }
        Ok(())
    }

    /// Answers the keys of a retrieval command until done or the writer is back-pressured;
    /// then the rest waits in `State::GetRest`.
    fn get(
        &mut self,
        keys: &[u8],
        with_cas: bool,
        touch: Option<i64>,
        now: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<(), FramingError> {
        let mut rest = keys;
        {
            let mut digits = itoa::Buffer::new();
            loop {
                let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
                rest = &rest[start..];
                if rest.is_empty() {
                    break;
                }
                if writer.is_backpressured() {
                    break;
                }
                let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
                let key = &rest[..end];
                rest = &rest[end..];
                // One key's shard at a time: a long multi-get never holds the others.
                let mut store = self.shared.store_for(key);
                let Some(item) = store.get(key, touch, now) else {
                    continue;
                };
                writer.write_bytes(b"VALUE ")?;
                writer.write_bytes(key)?;
                writer.write_bytes(b" ")?;
                writer.write_bytes(digits.format(item.flags).as_bytes())?;
                writer.write_bytes(b" ")?;
                writer.write_bytes(digits.format(item.value.len()).as_bytes())?;
                if with_cas {
                    writer.write_bytes(b" ")?;
                    writer.write_bytes(digits.format(item.cas).as_bytes())?;
                }
                writer.write_bytes(b"\r\n")?;
                writer.write_bytes(&item.value)?;
                writer.write_bytes(b"\r\n")?;
            }
        }
        if rest.is_empty() {
            writer.write_bytes(b"END\r\n")?;
            self.state = State::Command;
        } else {
            self.state = State::GetRest(Box::new(GetRest {
                keys: rest.to_vec(),
                with_cas,
                touch,
            }));
        }
        Ok(())
    }

    fn stats(
        &mut self,
        group: StatsGroup,
        now: Timestamp,
        writer: &mut StreamWriter,
    ) -> Result<(), FramingError> {
        let shared = &*self.shared;
        match group {
            StatsGroup::General => {
                let (counters, items) = (shared.store.stats(), shared.store.items());
                stats::write_general(
                    writer,
                    &shared.info,
                    &shared.connections,
                    &counters,
                    items,
                    now,
                )
            }
            StatsGroup::Settings => {
                stats::write_settings(writer, &shared.info, &shared.connections)
            }
            StatsGroup::Items => {
                slabs::write_items(writer, &shared.store.slabs(), shared.store.oldest_age(now))
            }
            StatsGroup::Slabs => slabs::write_slabs(writer, &shared.store.slabs()),
            StatsGroup::Conns => shared.table.write(
                writer,
                &shared.info,
                self.entry.as_ref().map_or(0, |entry| entry.id()),
                now.since_epoch().as_secs(),
            ),
            StatsGroup::CacheDump { class, limit } => {
                let mut items = Vec::new();
                shared.store.for_each(|store| {
                    items.extend(store.cachedump(class as usize, limit as usize));
                });
                if limit > 0 {
                    items.truncate(limit as usize);
                }
                for (key, bytes, expires) in items {
                    writer.write_bytes(b"ITEM ")?;
                    writer.write_bytes(&key)?;
                    writer.write_bytes(format!(" [{bytes} b; {expires} s]\r\n").as_bytes())?;
                }
                writer.write_bytes(b"END\r\n")
            }
            StatsGroup::Refused(reply) => writer.write_bytes(reply),
            StatsGroup::Reset => {
                shared.store.for_each(Store::reset_stats);
                shared.connections.reset();
                writer.write_bytes(b"RESET\r\n")
            }
            StatsGroup::Empty => writer.write_bytes(b"END\r\n"),
            StatsGroup::DetailSwitch => writer.write_bytes(b"OK\r\n"),
            StatsGroup::DetailUsage => {
                writer.write_bytes(b"CLIENT_ERROR usage: stats detail on|off|dump\r\n")
            }
            StatsGroup::Sizes => writer.write_bytes(b"STAT sizes_status disabled\r\nEND\r\n"),
        }
    }

    /// The clock the meta commands report times on.
    fn clock(&self, now: Timestamp) -> MetaClock {
        MetaClock {
            now,
            started: self.shared.info.started,
        }
    }

    fn account(&mut self, reader: &StreamReader, written: usize) {
        let consumed = reader.consumed_bytes();
        let read = consumed - self.consumed;
        self.consumed = consumed;
        self.shared.connections.add_traffic(read, written as u64);
    }
}

impl<H: BuildHasher> Session for MemcacheSession<H> {
    fn handle_start(
        &mut self,
        now: Timestamp,
        _writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        self.shared.connections.opened();
        let entry = self.entry.get_or_insert_with(|| {
            Arc::new(ConnectionEntry::new(Address::Tcp(([0, 0, 0, 0], 0).into())))
        });
        self.shared.table.open(entry, now.since_epoch().as_secs());
        Ok(Next::Continue)
    }

    fn handle_input(
        &mut self,
        now: Timestamp,
        reader: &mut StreamReader,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        let pending_before = writer.pending_len();
        if let Some(entry) = &self.entry {
            entry.touch(now.since_epoch().as_secs());
        }
        let next = self.serve(now, reader, writer);
        let written = writer.pending_len().saturating_sub(pending_before);
        self.account(reader, written);
        next
    }

    fn handle_end(&mut self, _now: Timestamp, _reason: &EndReason) {
        self.shared.connections.closed();
        if let Some(entry) = self.entry.take() {
            self.shared.table.close(&entry);
        }
    }
}

impl<H: BuildHasher> MemcacheSession<H> {
    fn serve(
        &mut self,
        now: Timestamp,
        reader: &mut StreamReader,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        while !writer.is_backpressured() {
            match std::mem::replace(&mut self.state, State::Command) {
                State::Command => match self.next_command(reader, now, writer) {
                    Ok(Some(Some(next))) => return Ok(next),
                    Ok(Some(None)) => {}
                    Ok(None) => break,
                    Err(FramingError::LineTooLong { .. }) => {
                        writer.write_bytes(b"CLIENT_ERROR line too long\r\n")?;
                        return Ok(Next::Close);
                    }
                    // A partial command at end of stream: memcached closes without a word.
                    Err(FramingError::UnexpectedEof { .. }) => return Ok(Next::Close),
                    Err(error) => return Err(error.into()),
                },
                State::Swallow { remaining } => {
                    let remaining = remaining - reader.read_up_to(remaining).len();
                    if remaining > 0 {
                        if reader.is_closed() {
                            return Ok(Next::Close);
                        }
                        self.state = State::Swallow { remaining };
                        break;
                    }
                }
                State::GetRest(rest) => {
                    self.get(&rest.keys, rest.with_cas, rest.touch, now, writer)?;
                }
            }
        }
        Ok(Next::Continue)
    }
}
