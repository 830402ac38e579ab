//! The item store: keys to values with flags, expiry and CAS uniques, bounded in memory with
//! least-recently-used eviction, as memcached keeps them.
//!
//! Time is the caller's `now`, never a clock, so the simulator controls expiry. Items live in
//! a slab of nodes linked in LRU order; the map holds indexes, so nothing is iterated in hash
//! order and a fixed hasher makes the store fully deterministic.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use concurrence_core::Timestamp;

use super::command::{MAX_RELATIVE_EXPTIME, StoreMode};
use super::slabs::{ItemShape, SlabStats};

/// Default memory limit (memcached's `-m 64`).
pub const DEFAULT_MEMORY_LIMIT: usize = 64 * 1024 * 1024;
/// Default largest item (memcached's `-I 1m`).
pub const DEFAULT_ITEM_SIZE_MAX: usize = 1024 * 1024;
/// What an item costs beyond its key and value, in bytes, as memcached 1.6 counts it on a
/// 64-bit machine (`ITEM_ntotal`): its 48-byte header, the key's NUL, the value's CRLF and the
/// 8-byte CAS unique.
pub const ITEM_OVERHEAD: usize = 48 + 1 + 2 + 8;
/// What non-zero client flags add to an item (memcached keeps zero flags in no space).
pub const ITEM_FLAGS_SIZE: usize = 4;

/// The store's bounds and its tie to wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreConfig {
    /// Bytes of items (keys, values and [`ITEM_OVERHEAD`] each) kept before the least
    /// recently used are evicted (`limit_maxbytes`).
    pub memory_limit: usize,
    /// The largest item, overhead and key included; larger stores fail with
    /// `SERVER_ERROR object too large for cache`.
    pub item_size_max: usize,
    /// The Unix time, in seconds, at `Timestamp::ZERO`: how absolute expiry times (more than
    /// 30 days) map onto the sessions' `now`.
    pub unix_time_at_zero: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            memory_limit: DEFAULT_MEMORY_LIMIT,
            item_size_max: DEFAULT_ITEM_SIZE_MAX,
            unix_time_at_zero: 0,
        }
    }
}

/// One stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The data block.
    pub value: Vec<u8>,
    /// The client's flags.
    pub flags: u32,
    /// The CAS unique, new on every change.
    pub cas: u64,
    /// When it expires (`None`: never).
    pub expires: Option<Timestamp>,
    /// Fetched at least once since stored (`mg h`, `me`'s `fetch`).
    pub fetched: bool,
    /// Marked stale by `md I` or stored by `ms I` with an older CAS: `mg` says `X`.
    pub stale: bool,
    /// A client was told it won the right to recache it (`W`); later ones see `Z`.
    pub token_sent: bool,
    /// When it was stored, or last fetched after its first fetch (`mg l`, `me`'s `la`).
    pub last_access: Timestamp,
    /// Stored by `ms` with a base64 key (`b`): meta replies show its key in base64.
    pub key_binary: bool,
    stored_at: Timestamp,
}

/// What a storage command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    /// `STORED`.
    Stored,
    /// `NOT_STORED`: `add` found an item, or `replace`/`append`/`prepend` found none.
    NotStored,
    /// `EXISTS`: `cas` found the item changed since the client read it.
    Exists,
    /// `NOT_FOUND`: `cas` found no item.
    NotFound,
    /// `SERVER_ERROR out of memory storing object`: the item is larger than the memory limit,
    /// or an append made it larger than the item limit.
    OutOfMemory,
}

impl StoreOutcome {
    /// The reply line, CRLF included.
    #[must_use]
    pub fn reply(self) -> &'static [u8] {
        match self {
            StoreOutcome::Stored => b"STORED\r\n",
            StoreOutcome::NotStored => b"NOT_STORED\r\n",
            StoreOutcome::Exists => b"EXISTS\r\n",
            StoreOutcome::NotFound => b"NOT_FOUND\r\n",
            StoreOutcome::OutOfMemory => b"SERVER_ERROR out of memory storing object\r\n",
        }
    }
}

/// What `incr`/`decr` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithmeticOutcome {
    /// The new value.
    Value(u64),
    /// No such item.
    NotFound,
    /// The item's value is not a decimal number.
    NonNumeric,
    /// `ma C<cas>`: the item's CAS is another.
    CasMismatch,
}

/// A live item's place in the store, for the meta commands' several steps on one item; valid
/// until the store next changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(u32);

/// How a storage command's CAS value compared with the item's (memcached's `cas_result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CasCheck {
    /// No CAS value given (0).
    None,
    Match,
    /// Older than the item's, with `ms I`: stored, marked stale.
    Stale,
    BadValue,
}

/// The store's counters, as `stats` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)] // each field is the memcached stat of the same name
pub struct StoreStats {
    pub cmd_get: u64,
    pub cmd_set: u64,
    pub cmd_flush: u64,
    pub cmd_touch: u64,
    pub get_hits: u64,
    pub get_misses: u64,
    pub get_expired: u64,
    pub get_flushed: u64,
    pub delete_hits: u64,
    pub delete_misses: u64,
    pub incr_hits: u64,
    pub incr_misses: u64,
    pub decr_hits: u64,
    pub decr_misses: u64,
    pub cas_hits: u64,
    pub cas_misses: u64,
    pub cas_badval: u64,
    pub touch_hits: u64,
    pub touch_misses: u64,
    pub cmd_meta: u64,
    pub store_too_large: u64,
    pub store_no_memory: u64,
    pub total_items: u64,
    pub evictions: u64,
    pub reclaimed: u64,
}

impl StoreStats {
    /// Adds `other`'s counts to these (the shards' sum).
    pub fn merge(&mut self, other: &StoreStats) {
        self.cmd_get += other.cmd_get;
        self.cmd_set += other.cmd_set;
        self.cmd_flush += other.cmd_flush;
        self.cmd_touch += other.cmd_touch;
        self.get_hits += other.get_hits;
        self.get_misses += other.get_misses;
        self.get_expired += other.get_expired;
        self.get_flushed += other.get_flushed;
        self.delete_hits += other.delete_hits;
        self.delete_misses += other.delete_misses;
        self.incr_hits += other.incr_hits;
        self.incr_misses += other.incr_misses;
        self.decr_hits += other.decr_hits;
        self.decr_misses += other.decr_misses;
        self.cas_hits += other.cas_hits;
        self.cas_misses += other.cas_misses;
        self.cas_badval += other.cas_badval;
        self.touch_hits += other.touch_hits;
        self.touch_misses += other.touch_misses;
        self.cmd_meta += other.cmd_meta;
        self.store_too_large += other.store_too_large;
        self.store_no_memory += other.store_no_memory;
        self.total_items += other.total_items;
        self.evictions += other.evictions;
        self.reclaimed += other.reclaimed;
    }
}

/// When a new expiry time says an item dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    Never,
    At(Timestamp),
    Already,
}

const NIL: u32 = u32::MAX;

#[derive(Debug)]
struct Node {
    key: Box<[u8]>,
    item: Item,
    /// Toward the most recently used end.
    newer: u32,
    /// Toward the least recently used end.
    older: u32,
}

impl Node {
    fn shape(&self) -> ItemShape {
        ItemShape {
            key_len: self.key.len(),
            value_len: self.item.value.len(),
            flags: self.item.flags,
        }
    }
}

/// Why a lookup missed, for the stats.
enum Miss {
    Absent,
    Expired,
    Flushed,
}

/// The items, bounded by [`StoreConfig::memory_limit`].
#[derive(Debug)]
pub struct Store<H = RandomState> {
    config: StoreConfig,
    index: HashMap<Box<[u8]>, u32, H>,
    nodes: Vec<Option<Node>>,
    free: Vec<u32>,
    newest: u32,
    oldest: u32,
    bytes: usize,
    next_cas: u64,
    /// The counter CAS uniques come from when this store is one shard of several: one for all
    /// the shards, so that uniques grow in store order as memcached's one counter does (a
    /// residue class per shard made a fresh shard's first unique 1, which a client's guessed
    /// `C1` matched).
    shared_cas: Option<Arc<AtomicU64>>,
    /// Items stored at or before this time are invalid once it has passed.
    flushed_before: Option<Timestamp>,
    stats: StoreStats,
    slabs: SlabStats,
}

impl Store<RandomState> {
    /// An empty store with randomly seeded hashing (hash-flooding resistant).
    #[must_use]
    pub fn new(config: StoreConfig) -> Self {
        Store::with_hasher(config, RandomState::new())
    }
}

impl<H: BuildHasher> Store<H> {
    /// An empty store hashing with `hasher` (a fixed one for deterministic simulation).
    pub fn with_hasher(config: StoreConfig, hasher: H) -> Self {
        Store {
            config,
            index: HashMap::with_hasher(hasher),
            nodes: Vec::new(),
            free: Vec::new(),
            newest: NIL,
            oldest: NIL,
            bytes: 0,
            next_cas: 1,
            shared_cas: None,
            flushed_before: None,
            stats: StoreStats::default(),
            slabs: SlabStats::default(),
        }
    }

    /// Makes this store one shard of several: its CAS uniques come from `counter`, which
    /// every shard shares (the next unique is the counter's value, then it goes up by one).
    #[must_use]
    pub fn sharing_cas(mut self, counter: Arc<AtomicU64>) -> Self {
        self.shared_cas = Some(counter);
        self
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// `cache_memlimit`: a new memory limit, refused (false) below what the items hold now,
    /// as memcached refuses a limit below the memory it has taken.
    pub fn set_memory_limit(&mut self, bytes: usize) -> bool {
        if bytes < self.bytes {
            return false;
        }
        self.config.memory_limit = bytes;
        true
    }

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    /// What `stats slabs` and `stats items` report.
    #[must_use]
    pub fn slabs(&self) -> &SlabStats {
        &self.slabs
    }

    /// Seconds since the least recently used item was last used (`stats items`' `age`).
    #[must_use]
    pub fn oldest_age(&self, now: Timestamp) -> u64 {
        if self.oldest == NIL {
            return 0;
        }
        now.saturating_duration_since(self.node(self.oldest).item.last_access)
            .as_secs()
    }

    /// Zeroes the counters `stats reset` zeroes (all but the item totals).
    pub fn reset_stats(&mut self) {
        self.stats = StoreStats::default();
        self.slabs.reset();
    }

    /// `stats cachedump`: the keys of slab class `class`, most recently used first, at most
    /// `limit` of them (0: all), each with its value length and expiry as a Unix time (0:
    /// never).
    #[must_use]
    pub fn cachedump(&self, class: usize, limit: usize) -> Vec<(Vec<u8>, usize, u64)> {
        let mut out = Vec::new();
        let mut at = self.newest;
        while at != NIL && (limit == 0 || out.len() < limit) {
            let node = self.node(at);
            let size = Self::item_size(node.key.len(), node.item.value.len(), node.item.flags);
            if super::slabs::slab_class(size) == class {
                let expires = node.item.expires.map_or(0, |at| {
                    self.config.unix_time_at_zero + at.since_epoch().as_secs()
                });
                out.push((node.key.to_vec(), node.item.value.len(), expires));
            }
            at = node.older;
        }
        out
    }

    /// Counts something against the slab class of the item at `slot`.
    fn count_class(&mut self, slot: u32, count: impl FnOnce(&mut super::slabs::ClassStats)) {
        let node = self.node(slot);
        let size = Self::item_size(node.key.len(), node.item.value.len(), node.item.flags);
        count(self.slabs.class_mut(size));
    }

    /// Items held (some may have expired unseen).
    #[must_use]
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when no item is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Bytes the held items count against the memory limit.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// What an item of this key, value length and flags costs (memcached's `ITEM_ntotal`).
    #[must_use]
    pub fn item_size(key_len: usize, value_len: usize, flags: u32) -> usize {
        let flags_size = if flags == 0 { 0 } else { ITEM_FLAGS_SIZE };
        key_len
            .saturating_add(value_len)
            .saturating_add(ITEM_OVERHEAD + flags_size)
    }

    /// False when an item this size exceeds the item limit: the server then answers
    /// `SERVER_ERROR object too large for cache` and discards the data block unread. As
    /// memcached does, a refused `set` (`unlink_old`) also removes the key's old item, so a
    /// client never reads the value it meant to replace.
    pub fn admits(
        &mut self,
        key: &[u8],
        value_len: usize,
        flags: u32,
        unlink_old: bool,
        now: Timestamp,
    ) -> bool {
        let size = Self::item_size(key.len(), value_len, flags);
        let fits = size <= self.config.item_size_max;
        if !fits {
            self.stats.cmd_set += 1;
            self.stats.store_too_large += 1;
            if unlink_old {
                if let Ok(slot) = self.live(key, now) {
                    self.remove(slot);
                }
            }
        }
        fits
    }

    /// An admitted storage command's data block has arrived: memcached allocated the item
    /// (before knowing whether it will be stored), so its slab class counts it.
    pub fn allocate(&mut self, key: &[u8], value_len: usize, flags: u32) {
        let shape = ItemShape {
            key_len: key.len(),
            value_len,
            flags,
        };
        self.slabs.allocated(shape);
        self.slabs.class_mut(shape.total()).cmd_set += 1;
    }

    /// Looks `key` up for `get`/`gets`, or for `gat`/`gats` when `touch` carries the new
    /// expiry; a hit becomes the most recently used.
    pub fn get(&mut self, key: &[u8], touch: Option<i64>, now: Timestamp) -> Option<&Item> {
        self.stats.cmd_get += 1;
        if touch.is_some() {
            self.stats.cmd_touch += 1;
        }
        match self.live(key, now) {
            Ok(slot) => {
                self.stats.get_hits += 1;
                self.count_class(slot, |c| c.get_hits += 1);
                if touch.is_some() {
                    self.stats.touch_hits += 1;
                    self.count_class(slot, |c| c.touch_hits += 1);
                }
                if let Some(exptime) = touch {
                    match self.expiry(exptime, now) {
                        // Returned this once, then gone at the next lookup, as memcached does.
                        Expiry::Already => self.node_mut(slot).item.expires = Some(now),
                        Expiry::Never => self.node_mut(slot).item.expires = None,
                        Expiry::At(at) => self.node_mut(slot).item.expires = Some(at),
                    }
                }
                self.fetch_bump(Slot(slot), now);
                Some(&self.node(slot).item)
            }
            Err(miss) => {
                self.stats.get_misses += 1;
                if touch.is_some() {
                    self.stats.touch_misses += 1;
                }
                match miss {
                    Miss::Expired => self.stats.get_expired += 1,
                    Miss::Flushed => self.stats.get_flushed += 1,
                    Miss::Absent => {}
                }
                None
            }
        }
    }

    /// Runs a storage command with its data block (without the CRLF).
    pub fn store(
        &mut self,
        mode: StoreMode,
        key: &[u8],
        flags: u32,
        exptime: i64,
        data: &[u8],
        now: Timestamp,
    ) -> StoreOutcome {
        let (mode, cas) = match mode {
            StoreMode::Cas(unique) => (StoreMode::Cas(unique), unique),
            mode => (mode, 0),
        };
        self.store_item(mode, key, flags, exptime, data, cas, false, now)
            .0
    }

    /// memcached's `do_store_item`, for the classic storage commands and `ms`: `cas` is the
    /// client's CAS value (0: none), `set_stale` is `ms I` (a CAS older than the item's stores
    /// anyway, marked stale). Returns the outcome and, when stored, the new item's CAS.
    #[allow(clippy::too_many_arguments)] // the protocol's fields, each needed
    pub fn store_item(
        &mut self,
        mode: StoreMode,
        key: &[u8],
        flags: u32,
        exptime: i64,
        data: &[u8],
        cas: u64,
        set_stale: bool,
        now: Timestamp,
    ) -> (StoreOutcome, u64) {
        self.stats.cmd_set += 1;
        let Ok(slot) = self.live(key, now) else {
            return match mode {
                StoreMode::Set | StoreMode::Add => {
                    let expires = self.expiry(exptime, now);
                    self.insert(key, data.to_vec(), flags, expires, now)
                }
                StoreMode::Cas(_) => {
                    self.stats.cas_misses += 1;
                    (StoreOutcome::NotFound, 0)
                }
                StoreMode::Replace | StoreMode::Append | StoreMode::Prepend => {
                    (StoreOutcome::NotStored, 0)
                }
            };
        };
        let old = &self.node(slot).item;
        let (old_expires, old_flags, old_token_sent) = (old.expires, old.flags, old.token_sent);
        let check = if cas == 0 {
            CasCheck::None
        } else if cas == old.cas {
            CasCheck::Match
        } else if set_stale && cas < old.cas {
            CasCheck::Stale
        } else {
            CasCheck::BadValue
        };
        match mode {
            StoreMode::Add => {
                // memcached bumps the existing item on a failed add.
                self.bump(slot);
                (StoreOutcome::NotStored, 0)
            }
            StoreMode::Cas(_) => match check {
                CasCheck::Match => {
                    self.stats.cas_hits += 1;
                    self.count_class(slot, |c| c.cas_hits += 1);
                    let expires = self.expiry(exptime, now);
                    self.insert(key, data.to_vec(), flags, expires, now)
                }
                CasCheck::Stale => {
                    // The value is replaced; the TTL, and a recache token already sent, stay.
                    self.stats.cas_hits += 1;
                    self.count_class(slot, |c| c.cas_hits += 1);
                    let expires = old_expires.map_or(Expiry::Never, Expiry::At);
                    let token_sent = old_token_sent;
                    let outcome = self.insert(key, data.to_vec(), flags, expires, now);
                    if let Some(&slot) = self.index.get(key) {
                        let item = &mut self.node_mut(slot).item;
                        item.stale = true;
                        item.token_sent = token_sent;
                    }
                    outcome
                }
                CasCheck::None | CasCheck::BadValue => {
                    self.stats.cas_badval += 1;
                    self.count_class(slot, |c| c.cas_badval += 1);
                    (StoreOutcome::Exists, 0)
                }
            },
            StoreMode::Append | StoreMode::Prepend => {
                if !matches!(check, CasCheck::None | CasCheck::Match) {
                    return (StoreOutcome::Exists, 0);
                }
                let old = &self.node(slot).item;
                let mut value = Vec::with_capacity(old.value.len() + data.len());
                if mode == StoreMode::Append {
                    value.extend_from_slice(&old.value);
                    value.extend_from_slice(data);
                } else {
                    value.extend_from_slice(data);
                    value.extend_from_slice(&old.value);
                }
                let flags = old_flags;
                // memcached cannot allocate the joined item: NOT_STORED.
                if Self::item_size(key.len(), value.len(), flags) > self.config.item_size_max {
                    return (StoreOutcome::NotStored, 0);
                }
                let expires = old_expires.map_or(Expiry::Never, Expiry::At);
                self.insert(key, value, flags, expires, now)
            }
            StoreMode::Set | StoreMode::Replace => {
                let expires = self.expiry(exptime, now);
                self.insert(key, data.to_vec(), flags, expires, now)
            }
        }
    }

    /// `delete`: true if a live item was removed.
    pub fn delete(&mut self, key: &[u8], now: Timestamp) -> bool {
        match self.live(key, now) {
            Ok(slot) => {
                self.count_class(slot, |c| c.delete_hits += 1);
                self.remove(slot);
                self.stats.delete_hits += 1;
                true
            }
            Err(_) => {
                self.stats.delete_misses += 1;
                false
            }
        }
    }

    /// `incr`/`decr`: increments wrap at 2^64, decrements stop at 0. As memcached does, a
    /// result shorter than the old value is padded with spaces to the old length.
    pub fn arithmetic(
        &mut self,
        incr: bool,
        key: &[u8],
        delta: u64,
        now: Timestamp,
    ) -> ArithmeticOutcome {
        self.arithmetic_if(incr, key, delta, 0, now)
    }

    /// [`arithmetic`](Self::arithmetic) that, given a CAS value (`ma C`, 0 for none), changes
    /// only an item whose CAS is that value.
    pub fn arithmetic_if(
        &mut self,
        incr: bool,
        key: &[u8],
        delta: u64,
        cas: u64,
        now: Timestamp,
    ) -> ArithmeticOutcome {
        let Ok(slot) = self.live(key, now) else {
            if incr {
                self.stats.incr_misses += 1;
            } else {
                self.stats.decr_misses += 1;
            }
            return ArithmeticOutcome::NotFound;
        };
        let item = &self.node(slot).item;
        if item.value.is_empty() {
            return ArithmeticOutcome::NonNumeric;
        }
        if cas != 0 && item.cas != cas {
            return ArithmeticOutcome::CasMismatch;
        }
        let Some(old) = parse_counter(&item.value) else {
            return ArithmeticOutcome::NonNumeric;
        };
        let new = if incr {
            self.stats.incr_hits += 1;
            self.count_class(slot, |c| c.incr_hits += 1);
            old.wrapping_add(delta)
        } else {
            self.stats.decr_hits += 1;
            self.count_class(slot, |c| c.decr_hits += 1);
            old.saturating_sub(delta)
        };
        let mut digits = itoa::Buffer::new();
        let text = digits.format(new).as_bytes();
        let cas = self.new_cas();
        let old_len = self.node(slot).item.value.len();
        let new_len = text.len().max(old_len);
        let grows = new_len > old_len;
        if grows {
            self.bytes += new_len - old_len;
            let node = self.node(slot);
            let (key_len, flags) = (node.key.len(), node.item.flags);
            let shape = |value_len| ItemShape {
                key_len,
                value_len,
                flags,
            };
            self.slabs.unlinked(shape(old_len));
            self.slabs.linked(shape(new_len));
        }
        let item = &mut self.node_mut(slot).item;
        item.value.clear();
        item.value.extend_from_slice(text);
        item.value.resize(new_len, b' ');
        item.cas = cas;
        if grows {
            // memcached links a new item for a longer number: its marks start afresh.
            item.fetched = false;
            item.stale = false;
            item.token_sent = false;
            item.key_binary = false;
            item.last_access = now;
        }
        self.bump(slot);
        if grows {
            self.evict_for(0, slot);
        }
        ArithmeticOutcome::Value(new)
    }

    /// `touch`: sets a new expiry; true if the item was there.
    pub fn touch(&mut self, key: &[u8], exptime: i64, now: Timestamp) -> bool {
        self.stats.cmd_touch += 1;
        let Ok(slot) = self.live(key, now) else {
            self.stats.touch_misses += 1;
            return false;
        };
        self.stats.touch_hits += 1;
        self.count_class(slot, |c| c.touch_hits += 1);
        match self.expiry(exptime, now) {
            Expiry::Already => self.remove(slot),
            Expiry::Never => {
                self.node_mut(slot).item.expires = None;
                self.fetch_bump(Slot(slot), now);
            }
            Expiry::At(at) => {
                self.node_mut(slot).item.expires = Some(at);
                self.fetch_bump(Slot(slot), now);
            }
        }
        true
    }

    // ----- single steps on one item, for the meta commands

    /// The live item under `key`, without bumping it or counting anything (an expired or
    /// flushed one is removed).
    pub fn find(&mut self, key: &[u8], now: Timestamp) -> Option<Slot> {
        self.live(key, now).ok().map(Slot)
    }

    /// The item at `slot`.
    #[must_use]
    pub fn item(&self, slot: Slot) -> &Item {
        &self.node(slot.0).item
    }

    /// A fetch's bump (memcached's `do_item_bump`): most recently used, marked fetched; a
    /// fetch after the first also updates the last access time.
    pub fn fetch_bump(&mut self, slot: Slot, now: Timestamp) {
        let item = &mut self.node_mut(slot.0).item;
        if item.fetched {
            item.last_access = now;
        }
        item.fetched = true;
        self.bump(slot.0);
    }

    /// Sets the item's expiry from a protocol exptime; an exptime already past leaves it
    /// readable by the command at hand and gone at the next lookup.
    pub fn set_exptime(&mut self, slot: Slot, exptime: i64, now: Timestamp) {
        let expires = match self.expiry(exptime, now) {
            Expiry::Never => None,
            Expiry::At(at) => Some(at),
            Expiry::Already => Some(now),
        };
        self.node_mut(slot.0).item.expires = expires;
    }

    /// Whole seconds until the item expires, rounded up (`None`: never; 0: expired now).
    #[must_use]
    pub fn ttl_seconds(&self, slot: Slot, now: Timestamp) -> Option<u64> {
        self.item(slot).expires.map(|at| {
            let left = at.saturating_duration_since(now);
            left.as_secs() + u64::from(left.subsec_nanos() > 0)
        })
    }

    /// Whole seconds from now until a protocol exptime, as [`ttl_seconds`](Self::ttl_seconds)
    /// counts them (`None`: never; 0: already).
    #[must_use]
    pub fn exptime_seconds(&self, exptime: i64, now: Timestamp) -> Option<u64> {
        match self.expiry(exptime, now) {
            Expiry::Never => None,
            Expiry::Already => Some(0),
            Expiry::At(at) => {
                let left = at.saturating_duration_since(now);
                Some(left.as_secs() + u64::from(left.subsec_nanos() > 0))
            }
        }
    }

    /// `mg N` on a miss: links an empty item (no flags) that expires at `exptime`.
    pub fn vivify(&mut self, key: &[u8], exptime: i64, now: Timestamp) -> Option<Slot> {
        let expires = self.expiry(exptime, now);
        let expires = if expires == Expiry::Already {
            // memcached links it (expiring at its start), so this command still sees it.
            Expiry::At(now)
        } else {
            expires
        };
        self.insert(key, Vec::new(), 0, expires, now);
        self.index.get(key).map(|&slot| Slot(slot))
    }

    /// `md I`: marks the item stale with a new CAS, so the next fetch may win its recache.
    pub fn invalidate(&mut self, slot: Slot) {
        let cas = self.new_cas();
        let item = &mut self.node_mut(slot.0).item;
        item.stale = true;
        item.token_sent = false;
        item.cas = cas;
    }

    /// Marks the item under `key` as stored with a base64 key (`ms b`).
    pub fn mark_key_binary(&mut self, key: &[u8]) {
        if let Some(&slot) = self.index.get(key) {
            self.node_mut(slot).item.key_binary = true;
        }
    }

    /// Records that a client was told it won the item's recache (`W`).
    pub fn mark_token_sent(&mut self, slot: Slot) {
        self.node_mut(slot.0).item.token_sent = true;
    }

    /// Removes the item at `slot` (`md` without `I`), counted as a delete hit.
    pub fn remove_at(&mut self, slot: Slot) {
        self.count_class(slot.0, |c| c.delete_hits += 1);
        self.remove(slot.0);
        self.stats.delete_hits += 1;
    }

    /// The counters, to count what a meta command did.
    pub fn stats_mut(&mut self) -> &mut StoreStats {
        &mut self.stats
    }

    /// `flush_all [delay]`: every item stored so far becomes invalid, now (delay 0) or at the
    /// given time.
    pub fn flush_all(&mut self, delay: i64, now: Timestamp) {
        self.stats.cmd_flush += 1;
        match self.expiry(delay, now) {
            Expiry::Never | Expiry::Already => {
                for node in self.nodes.iter().flatten() {
                    self.slabs.unlinked(node.shape());
                }
                self.index.clear();
                self.nodes.clear();
                self.free.clear();
                self.newest = NIL;
                self.oldest = NIL;
                self.bytes = 0;
                self.flushed_before = None;
            }
            Expiry::At(at) => self.flushed_before = Some(at),
        }
    }

    /// Checks the store's own bookkeeping: the LRU list holds exactly the indexed items in
    /// both directions, the byte count is their sum, and it is within the memory limit.
    ///
    /// # Errors
    /// A description of the first inconsistency.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut seen = 0usize;
        let mut bytes = 0usize;
        let mut prev = NIL;
        let mut at = self.newest;
        while at != NIL {
            let Some(node) = self.nodes.get(at as usize).and_then(Option::as_ref) else {
                return Err(format!("LRU list points at empty slot {at}"));
            };
            if node.newer != prev {
                return Err(format!("slot {at}: back link {} != {prev}", node.newer));
            }
            if self.index.get(&node.key) != Some(&at) {
                return Err(format!("slot {at} is not indexed under its key"));
            }
            seen += 1;
            bytes += Self::item_size(node.key.len(), node.item.value.len(), node.item.flags);
            prev = at;
            at = node.older;
        }
        if prev != self.oldest {
            return Err("the oldest pointer is not the list's end".into());
        }
        if seen != self.index.len() {
            return Err(format!("{seen} items listed, {} indexed", self.index.len()));
        }
        if bytes != self.bytes {
            return Err(format!("{bytes} bytes listed, {} counted", self.bytes));
        }
        if self.bytes > self.config.memory_limit {
            return Err(format!("{} bytes over the limit", self.bytes));
        }
        Ok(())
    }

    // ----- internals

    fn expiry(&self, exptime: i64, now: Timestamp) -> Expiry {
        if exptime < 0 {
            return Expiry::Already;
        }
        if exptime == 0 {
            return Expiry::Never;
        }
        let seconds = exptime.unsigned_abs();
        if exptime <= MAX_RELATIVE_EXPTIME {
            return Expiry::At(now.saturating_add(Duration::from_secs(seconds)));
        }
        match seconds.checked_sub(self.config.unix_time_at_zero) {
            Some(since_zero) if since_zero > 0 => {
                let at = Timestamp::from_duration(Duration::from_secs(since_zero));
                if at <= now {
                    Expiry::Already
                } else {
                    Expiry::At(at)
                }
            }
            _ => Expiry::Already,
        }
    }

    /// The slot of `key` if it holds a live item; expired or flushed items are removed.
    fn live(&mut self, key: &[u8], now: Timestamp) -> Result<u32, Miss> {
        let slot = *self.index.get(key).ok_or(Miss::Absent)?;
        let item = &self.node(slot).item;
        let miss = if item.expires.is_some_and(|at| at <= now) {
            Miss::Expired
        } else if self
            .flushed_before
            .is_some_and(|f| f <= now && item.stored_at <= f)
        {
            Miss::Flushed
        } else {
            return Ok(slot);
        };
        self.count_class(slot, |c| c.reclaimed += 1);
        self.remove(slot);
        self.stats.reclaimed += 1;
        Err(miss)
    }

    /// Links a new item (replacing the key's old one); returns the outcome and its CAS.
    fn insert(
        &mut self,
        key: &[u8],
        value: Vec<u8>,
        flags: u32,
        expires: Expiry,
        now: Timestamp,
    ) -> (StoreOutcome, u64) {
        let size = Self::item_size(key.len(), value.len(), flags);
        if size > self.config.memory_limit {
            self.stats.store_no_memory += 1;
            return (StoreOutcome::OutOfMemory, 0);
        }
        if let Some(&slot) = self.index.get(key) {
            self.remove(slot);
        }
        self.stats.total_items += 1;
        let expires = match expires {
            // Stored already expired: gone at once, though it took a CAS value.
            Expiry::Already => {
                self.slabs.allocated(ItemShape {
                    key_len: key.len(),
                    value_len: value.len(),
                    flags,
                });
                return (StoreOutcome::Stored, self.new_cas());
            }
            Expiry::Never => None,
            Expiry::At(at) => Some(at),
        };
        self.evict_for(size, NIL);
        let cas = self.new_cas();
        let node = Node {
            key: key.into(),
            item: Item {
                value,
                flags,
                cas,
                expires,
                fetched: false,
                stale: false,
                token_sent: false,
                last_access: now,
                key_binary: false,
                stored_at: now,
            },
            newer: NIL,
            older: NIL,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.nodes[slot as usize] = Some(node);
                slot
            }
            None => {
                self.nodes.push(Some(node));
                u32::try_from(self.nodes.len() - 1).unwrap_or(NIL)
            }
        };
        self.index.insert(key.into(), slot);
        self.bytes += size;
        let shape = self.node(slot).shape();
        self.slabs.linked(shape);
        self.link_newest(slot);
        (StoreOutcome::Stored, cas)
    }

    /// Evicts least recently used items (never `keep`) until `extra` more bytes fit.
    fn evict_for(&mut self, extra: usize, keep: u32) {
        while self.bytes + extra > self.config.memory_limit && self.oldest != NIL {
            let victim = if self.oldest == keep {
                self.node(keep).newer
            } else {
                self.oldest
            };
            if victim == NIL {
                break;
            }
            self.count_class(victim, |c| c.evicted += 1);
            self.remove(victim);
            self.stats.evictions += 1;
        }
    }

    fn new_cas(&mut self) -> u64 {
        match &self.shared_cas {
            Some(counter) => counter.fetch_add(1, Ordering::Relaxed),
            None => {
                let cas = self.next_cas;
                self.next_cas += 1;
                cas
            }
        }
    }

    fn node(&self, slot: u32) -> &Node {
        self.nodes[slot as usize]
            .as_ref()
            .unwrap_or_else(|| unreachable!("slot {slot} is linked"))
    }

    fn node_mut(&mut self, slot: u32) -> &mut Node {
        self.nodes[slot as usize]
            .as_mut()
            .unwrap_or_else(|| unreachable!("slot {slot} is linked"))
    }

    fn remove(&mut self, slot: u32) {
        let node = self.unlink(slot);
        self.free.push(slot);
        drop(node);
    }

    /// Takes `slot` out of the list and the index, leaving the slot empty (not yet free).
    fn unlink(&mut self, slot: u32) -> Node {
        let node = self.nodes[slot as usize]
            .take()
            .unwrap_or_else(|| unreachable!("slot {slot} is linked"));
        self.detach(node.newer, node.older);
        self.index.remove(&node.key);
        let size = Self::item_size(node.key.len(), node.item.value.len(), node.item.flags);
        self.bytes -= size;
        self.slabs.unlinked(node.shape());
        node
    }

    fn detach(&mut self, newer: u32, older: u32) {
        if newer == NIL {
            self.newest = older;
        } else if let Some(n) = self.nodes[newer as usize].as_mut() {
            n.older = older;
        }
        if older == NIL {
            self.oldest = newer;
        } else if let Some(n) = self.nodes[older as usize].as_mut() {
            n.newer = newer;
        }
    }

    fn link_newest(&mut self, slot: u32) {
        let old_newest = self.newest;
        {
            let node = self.node_mut(slot);
            node.newer = NIL;
            node.older = old_newest;
        }
        if old_newest == NIL {
            self.oldest = slot;
        } else {
            self.node_mut(old_newest).newer = slot;
        }
        self.newest = slot;
    }

    fn bump(&mut self, slot: u32) {
        if self.newest == slot {
            return;
        }
        let (newer, older) = {
            let node = self.node(slot);
            (node.newer, node.older)
        };
        self.detach(newer, older);
        self.link_newest(slot);
    }
}

/// The value of a counter item, as memcached 1.6 reads it for `incr`/`decr` (its
/// `safe_strtoull`): optional leading white space and sign, decimal digits that fit 64 bits,
/// then the end of the value or white space (what follows is ignored: `1235 0123` counts as
/// 1235, as after an `append` to a value a `decr` padded); a negative number is refused unless
/// it is zero. `None` for anything else.
#[must_use]
pub fn parse_counter(value: &[u8]) -> Option<u64> {
    let is_space = |b: u8| b.is_ascii_whitespace() || b == 0x0b;
    let start = value.iter().position(|&b| !is_space(b))?;
    let value = &value[start..];
    let (negative, unsigned) = match value.first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    let digits = unsigned.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || unsigned.get(digits).is_some_and(|&b| !is_space(b)) {
        return None;
    }
    let number: u64 = std::str::from_utf8(&unsigned[..digits])
        .ok()?
        .parse()
        .ok()?;
    match (negative, number) {
        (false, n) | (true, n @ 0) => Some(n),
        (true, _) => None,
    }
}
