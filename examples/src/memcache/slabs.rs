//! memcached's slab classes, for what it reports of them (`me`'s `cls`, `stats items`,
//! `stats slabs`): this store allocates items with the system allocator, but reports the class
//! memcached 1.6 would put each in (defaults: `-n 48`, `-f 1.25`, 512 KiB largest chunk).

/// memcached's item header on a 64-bit machine, the first class's base.
const ITEM_HEADER: u32 = 48;
/// `-n`: the smallest value space of the first class.
const CHUNK_SIZE: u32 = 48;
/// `-f`: each class's chunks are this much larger than the previous one's.
const GROWTH_FACTOR: f64 = 1.25;
/// The largest chunk; larger items are chained from chunks of this class.
const SLAB_CHUNK_MAX: u32 = 512 * 1024;
/// memcached's limit on classes (its `MAX_NUMBER_OF_SLAB_CLASSES` is 64, with class 0 unused
/// and one kept for the largest chunk).
const MAX_CLASSES: usize = 63;

/// The chunk size of every class, from class 1 (memcached's `slabs_init`).
#[must_use]
pub fn slab_sizes() -> &'static [u32] {
    static SIZES: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();
    SIZES.get_or_init(compute_sizes)
}

fn compute_sizes() -> Vec<u32> {
    let mut sizes = Vec::new();
    let mut size = ITEM_HEADER + CHUNK_SIZE;
    while sizes.len() + 1 < MAX_CLASSES {
        if f64::from(size) >= f64::from(SLAB_CHUNK_MAX) / GROWTH_FACTOR {
            break;
        }
        if size % 8 != 0 {
            size += 8 - size % 8;
        }
        sizes.push(size);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // C's `size *= factor`
        {
            size = (f64::from(size) * GROWTH_FACTOR) as u32;
        }
    }
    sizes.push(SLAB_CHUNK_MAX);
    sizes
}

/// The class (from 1) of an item of `total` bytes (memcached's `slabs_clsid`); items larger
/// than the largest chunk are in the largest class.
#[must_use]
pub fn slab_class(total: usize) -> usize {
    let sizes = slab_sizes();
    sizes
        .iter()
        .position(|&size| total <= size as usize)
        .unwrap_or(sizes.len() - 1)
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_memcacheds() {
        let sizes = slab_sizes();
        // `memcached -vv` prints these for 1.6.18's defaults.
        assert_eq!(&sizes[..8], &[96, 120, 152, 192, 240, 304, 384, 480]);
        assert_eq!(sizes.len(), 39);
        assert_eq!(sizes[sizes.len() - 1], 512 * 1024);
        assert_eq!(slab_class(61), 1);
        assert_eq!(slab_class(365), 7);
        assert_eq!(slab_class(2_000_000), 39);
    }
}

/// What memcached reports per slab class: items held, and counters by the class of the item
/// they touched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)] // each field is the memcached stat of the same name
pub struct ClassStats {
    /// Items in the class's LRU.
    pub number: u64,
    /// Chunks the class has handed out (a large item takes chunks of several classes).
    pub used_chunks: u64,
    pub mem_requested: u64,
    /// The most chunks the class has lent at once: memcached's pages are never given back,
    /// so `stats slabs` keeps reporting them.
    pub most_used: u64,
    /// The class ever allocated a chunk (memcached allocates before it knows whether a
    /// storage command will store), so `stats slabs` lists it.
    pub allocated: bool,
    pub get_hits: u64,
    pub cmd_set: u64,
    pub delete_hits: u64,
    pub incr_hits: u64,
    pub decr_hits: u64,
    pub cas_hits: u64,
    pub cas_badval: u64,
    pub touch_hits: u64,
    pub evicted: u64,
    pub reclaimed: u64,
}

/// What memcached's allocator needs to know of an item: its key, value and flags sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemShape {
    /// Key bytes.
    pub key_len: usize,
    /// Value bytes (without the CRLF).
    pub value_len: usize,
    /// The client flags (zero flags take no space).
    pub flags: u32,
}

/// memcached's `item_chunk` header (64-bit).
const CHUNK_HEADER: usize = 48;

impl ItemShape {
    /// memcached's `ITEM_ntotal`: header, key and its NUL, value and CRLF, flags, CAS.
    #[must_use]
    pub fn total(self) -> usize {
        let flags = if self.flags == 0 { 0 } else { 4 };
        ITEM_HEADER as usize + self.key_len + 1 + self.value_len + 2 + flags + 8
    }

    /// The size of each chunk memcached allocates for it: one, or for an item larger than the
    /// largest chunk, a header and the value in chunks of at most the largest chunk, the last
    /// one sized to what remains (`do_item_alloc`, `do_item_alloc_chunk`).
    fn for_each_chunk(self, mut chunk: impl FnMut(usize)) {
        let total = self.total();
        let max = SLAB_CHUNK_MAX as usize;
        if total <= max {
            chunk(total);
            return;
        }
        let flags = if self.flags == 0 { 0 } else { 4 };
        chunk(self.key_len + 1 + flags + ITEM_HEADER as usize + CHUNK_HEADER + 8);
        let mut remaining = self.value_len + 2;
        while remaining > 0 {
            let size = (remaining + CHUNK_HEADER).min(max);
            chunk(size);
            remaining -= size - CHUNK_HEADER;
        }
    }
}

/// Every class's [`ClassStats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlabStats {
    classes: Vec<ClassStats>,
}

impl Default for SlabStats {
    fn default() -> Self {
        SlabStats {
            classes: vec![ClassStats::default(); slab_sizes().len()],
        }
    }
}

impl SlabStats {
    /// The stats of the class of an item of `total` bytes.
    pub fn class_mut(&mut self, total: usize) -> &mut ClassStats {
        let index = slab_class(total) - 1;
        &mut self.classes[index]
    }

    /// An item was allocated (whether or not it gets stored): its chunks' classes take pages.
    pub fn allocated(&mut self, item: ItemShape) {
        item.for_each_chunk(|total| {
            let class = self.class_mut(total);
            class.allocated = true;
            class.most_used = class.most_used.max(class.used_chunks + 1);
        });
    }

    /// An item was linked.
    pub fn linked(&mut self, item: ItemShape) {
        let lru = self.class_mut(item.total());
        lru.number += 1;
        lru.mem_requested += item.total() as u64;
        item.for_each_chunk(|total| {
            let class = self.class_mut(total);
            class.allocated = true;
            class.used_chunks += 1;
            class.most_used = class.most_used.max(class.used_chunks);
        });
    }

    /// An item was unlinked.
    pub fn unlinked(&mut self, item: ItemShape) {
        let lru = self.class_mut(item.total());
        lru.number = lru.number.saturating_sub(1);
        lru.mem_requested = lru.mem_requested.saturating_sub(item.total() as u64);
        item.for_each_chunk(|total| {
            let class = self.class_mut(total);
            class.used_chunks = class.used_chunks.saturating_sub(1);
        });
    }

    /// Adds `other`'s counts to these (the shards' sum).
    pub fn merge(&mut self, other: &SlabStats) {
        for (mine, theirs) in self.classes.iter_mut().zip(&other.classes) {
            mine.number += theirs.number;
            mine.used_chunks += theirs.used_chunks;
            mine.mem_requested += theirs.mem_requested;
            mine.most_used += theirs.most_used;
            mine.allocated |= theirs.allocated;
            mine.get_hits += theirs.get_hits;
            mine.cmd_set += theirs.cmd_set;
            mine.delete_hits += theirs.delete_hits;
            mine.incr_hits += theirs.incr_hits;
            mine.decr_hits += theirs.decr_hits;
            mine.cas_hits += theirs.cas_hits;
            mine.cas_badval += theirs.cas_badval;
            mine.touch_hits += theirs.touch_hits;
            mine.evicted += theirs.evicted;
            mine.reclaimed += theirs.reclaimed;
        }
    }

    /// `stats reset`: the counters, not what is held.
    pub fn reset(&mut self) {
        for class in &mut self.classes {
            *class = ClassStats {
                number: class.number,
                mem_requested: class.mem_requested,
                most_used: class.most_used,
                allocated: class.allocated,
                ..ClassStats::default()
            };
        }
    }

    /// Every class with its number (from 1), chunk size and stats.
    pub fn iter(&self) -> impl Iterator<Item = (usize, u32, &ClassStats)> {
        self.classes
            .iter()
            .zip(slab_sizes())
            .enumerate()
            .map(|(index, (stats, &size))| (index + 1, size, stats))
    }
}

/// memcached's slab page size: each class takes memory a page at a time.
const SLAB_PAGE_SIZE: u64 = 1024 * 1024;

/// Writes the reply to `stats slabs` (memcached's names and order), `END` included.
///
/// # Errors
/// The writer is full or closed.
pub fn write_slabs(
    writer: &mut concurrence_core::StreamWriter,
    slabs: &SlabStats,
) -> Result<(), concurrence_core::FramingError> {
    let mut active = 0u64;
    let mut malloced = 0u64;
    for (id, size, class) in slabs.iter().filter(|(_, _, c)| c.allocated) {
        let per_page = SLAB_PAGE_SIZE / u64::from(size);
        let pages = class.most_used.div_ceil(per_page).max(1);
        let total = pages * per_page;
        active += 1;
        malloced += pages * SLAB_PAGE_SIZE;
        for (name, value) in [
            ("chunk_size", u64::from(size)),
            ("chunks_per_page", per_page),
            ("total_pages", pages),
            ("total_chunks", total),
            ("used_chunks", class.used_chunks),
            ("free_chunks", total.saturating_sub(class.used_chunks)),
            ("free_chunks_end", 0),
            ("get_hits", class.get_hits),
            ("cmd_set", class.cmd_set),
            ("delete_hits", class.delete_hits),
            ("incr_hits", class.incr_hits),
            ("decr_hits", class.decr_hits),
            ("cas_hits", class.cas_hits),
            ("cas_badval", class.cas_badval),
            ("touch_hits", class.touch_hits),
        ] {
            writer.write_bytes(format!("STAT {id}:{name} {value}\r\n").as_bytes())?;
        }
    }
    writer.write_bytes(format!("STAT active_slabs {active}\r\n").as_bytes())?;
    writer.write_bytes(format!("STAT total_malloced {malloced}\r\nEND\r\n").as_bytes())
}

/// Writes the reply to `stats items` (memcached's names and order): the classes holding
/// items. This store keeps one LRU, so every item counts as hot and the segment stats are 0.
///
/// # Errors
/// The writer is full or closed.
pub fn write_items(
    writer: &mut concurrence_core::StreamWriter,
    slabs: &SlabStats,
    oldest_age: u64,
) -> Result<(), concurrence_core::FramingError> {
    for (id, _, class) in slabs.iter().filter(|(_, _, c)| c.number > 0) {
        for (name, value) in [
            ("number", class.number),
            ("number_hot", class.number),
            ("number_warm", 0),
            ("number_cold", 0),
            ("age_hot", oldest_age),
            ("age_warm", 0),
            ("age", oldest_age),
            ("mem_requested", class.mem_requested),
            ("evicted", class.evicted),
            ("evicted_nonzero", 0),
            ("evicted_time", 0),
            ("outofmemory", 0),
            ("tailrepairs", 0),
            ("reclaimed", class.reclaimed),
            ("expired_unfetched", 0),
            ("evicted_unfetched", 0),
            ("evicted_active", 0),
            ("crawler_reclaimed", 0),
            ("crawler_items_checked", 0),
            ("lrutail_reflocked", 0),
            ("moves_to_cold", 0),
            ("moves_to_warm", 0),
            ("moves_within_lru", 0),
            ("direct_reclaims", 0),
            ("hits_to_hot", class.get_hits),
            ("hits_to_warm", 0),
            ("hits_to_cold", 0),
            ("hits_to_temp", 0),
        ] {
            writer.write_bytes(format!("STAT items:{id}:{name} {value}\r\n").as_bytes())?;
        }
    }
    writer.write_bytes(b"END\r\n")
}
