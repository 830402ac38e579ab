//! The item store split into shards, each behind its own lock, so that one connection's
//! multi-get of a hundred keys does not hold every other connection's keys.
//!
//! A key's shard is its hash modulo the shard count; each shard has an equal part of the memory
//! limit and evicts by its own LRU (memcached's LRU is per slab class, not global, either).
//! CAS uniques stay unique across shards and grow in store order (one counter for all shards).

use std::hash::BuildHasher;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use concurrence_core::Timestamp;

use super::slabs::SlabStats;
use super::store::{Store, StoreConfig, StoreStats};

/// Shards per server thread: enough that two threads rarely want the same one.
const SHARDS_PER_THREAD: usize = 8;
/// At most this many shards.
const MAX_SHARDS: usize = 64;

/// The store, in shards.
#[derive(Debug)]
pub struct ShardedStore<H> {
    shards: Box<[Mutex<Store<H>>]>,
    seed: u64,
    _hasher: std::marker::PhantomData<H>,
}

impl<H: BuildHasher + Clone> ShardedStore<H> {
    /// A store for a server of `threads` threads: one shard when single-threaded (nothing to
    /// contend for), else up to 8 per thread while each shard's memory still holds two of the
    /// largest items.
    pub fn new(config: StoreConfig, threads: usize, hasher: H) -> Self {
        let mut count = if threads <= 1 {
            1
        } else {
            (threads * SHARDS_PER_THREAD).min(MAX_SHARDS)
        };
        while count > 1 && config.memory_limit / count < config.item_size_max.saturating_mul(2) {
            count /= 2;
        }
        let shard_config = StoreConfig {
            memory_limit: config.memory_limit / count,
            ..config
        };
        let cas = Arc::new(AtomicU64::new(1));
        let shards = (0..count)
            .map(|_| {
                Mutex::new(
                    Store::with_hasher(shard_config, hasher.clone()).sharing_cas(Arc::clone(&cas)),
                )
            })
            .collect();
        ShardedStore {
            shards,
            seed: hasher.hash_one(0x5eed_u64),
            _hasher: std::marker::PhantomData,
        }
    }
}

impl<H: BuildHasher> ShardedStore<H> {
    /// How many shards.
    #[must_use]
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The shard holding `key`, locked. (A panic elsewhere while it was held does not make it
    /// unusable: every store operation leaves it consistent before it can panic.)
    pub fn shard(&self, key: &[u8]) -> MutexGuard<'_, Store<H>> {
        let index = if self.shards.len() == 1 {
            0
        } else {
            usize::try_from(self.spread(key) % self.shards.len() as u64).unwrap_or(0)
        };
        lock(&self.shards[index])
    }

    /// Which shard a key goes to: FNV-1a of the key mixed with this store's seed (drawn from
    /// its hasher, so random per server unless the hasher is fixed). Cheaper than the map's
    /// SipHash; a client that aims all its keys at one shard only makes them share a lock,
    /// the map inside stays flooding-resistant.
    fn spread(&self, key: &[u8]) -> u64 {
        let mut hash = self.seed ^ 0xcbf2_9ce4_8422_2325;
        for &byte in key {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // FNV's low bits mix poorly: fold the high half in.
        hash ^ (hash >> 32)
    }

    /// Runs `f` on every shard in turn, each locked only while `f` runs on it.
    pub fn for_each(&self, mut f: impl FnMut(&mut Store<H>)) {
        for shard in &*self.shards {
            f(&mut lock(shard));
        }
    }

    /// The counters of all shards, summed.
    #[must_use]
    pub fn stats(&self) -> StoreStats {
        let mut total = StoreStats::default();
        self.for_each(|store| total.merge(store.stats()));
        total
    }

    /// Items held and the bytes they count, over all shards.
    #[must_use]
    pub fn items(&self) -> (usize, usize) {
        let mut items = (0, 0);
        self.for_each(|store| {
            items.0 += store.len();
            items.1 += store.bytes();
        });
        items
    }

    /// The slab classes of all shards, summed.
    #[must_use]
    pub fn slabs(&self) -> SlabStats {
        let mut total = SlabStats::default();
        self.for_each(|store| total.merge(store.slabs()));
        total
    }

    /// Seconds since the least recently used item (of any shard) was used.
    #[must_use]
    pub fn oldest_age(&self, now: Timestamp) -> u64 {
        let mut oldest = 0;
        self.for_each(|store| oldest = oldest.max(store.oldest_age(now)));
        oldest
    }

    /// `cache_memlimit`: the new limit split over the shards; refused (nothing changed) when
    /// a shard already holds more than its part.
    pub fn set_memory_limit(&self, bytes: usize) -> bool {
        let part = bytes / self.shards.len();
        let mut fits = true;
        self.for_each(|store| fits &= store.bytes() <= part);
        if fits {
            self.for_each(|store| {
                store.set_memory_limit(part);
            });
        }
        fits
    }

    /// Checks every shard's bookkeeping.
    ///
    /// # Errors
    /// The first inconsistency, with its shard.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut result = Ok(());
        let mut index = 0;
        self.for_each(|store| {
            if result.is_ok() {
                result = store
                    .check_invariants()
                    .map_err(|e| format!("shard {index}: {e}"));
            }
            index += 1;
        });
        result
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
