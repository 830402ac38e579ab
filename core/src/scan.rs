//! Finding delimiter bytes: 64-byte block masks (safe SIMD through `wide`), a cache of the last
//! block's mask, SWAR for one-off short searches, and `memchr` for long stretches.
//!
//! Lines in protocols are mostly short. A reader that finds one line usually looks for the
//! next one a few bytes further: [`BlockCache`] keeps the bit mask of every delimiter in the
//! 64-byte block where the last search stopped, so the next search is a shift and a
//! `trailing_zeros`, not a new scan. A block without a delimiter hands the rest of a long line
//! to `memchr` (whose AVX2 loop beats 16-byte blocks on long haystacks).

use wide::u8x16;

/// Bytes per cached block (one bit each in a `u64`).
pub(crate) const BLOCK: usize = 64;

/// Up to three delimiter bytes searched for at once (any of them ends a frame).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delims {
    bytes: [u8; 3],
    len: u8,
    /// `bytes` and `len` packed, so that comparing two sets is one compare.
    key: u32,
}

impl PartialEq for Delims {
    #[inline(always)]
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Delims {}

impl Delims {
    const fn new(bytes: [u8; 3], len: u8) -> Self {
        Delims {
            bytes,
            len,
            key: u32::from_le_bytes([bytes[0], bytes[1], bytes[2], len]),
        }
    }

    /// One delimiter.
    pub(crate) const fn one(byte: u8) -> Self {
        Delims::new([byte; 3], 1)
    }

    /// One to three delimiters (`None` for none or more than three).
    pub(crate) fn any(bytes: &[u8]) -> Option<Self> {
        match *bytes {
            [a] => Some(Delims::one(a)),
            [a, b] => Some(Delims::new([a, b, b], 2)),
            [a, b, c] => Some(Delims::new([a, b, c], 3)),
            _ => None,
        }
    }

    /// True when `byte` is one of them.
    #[cfg(test)]
    pub(crate) fn contains(self, byte: u8) -> bool {
        self.bytes[..usize::from(self.len)].contains(&byte)
    }

    /// The bit mask of delimiter positions in one 16-byte chunk.
    #[inline(always)]
    fn mask16(self, chunk: [u8; 16]) -> u64 {
        let v = u8x16::new(chunk);
        let mut hits = v.cmp_eq(u8x16::splat(self.bytes[0]));
        if self.len > 1 {
            // Repeating a delimiter (`len` 2) makes the extra compare harmless.
            hits = hits
                | v.cmp_eq(u8x16::splat(self.bytes[1]))
                | v.cmp_eq(u8x16::splat(self.bytes[2]));
        }
        // The low 16 bits are the lanes; `to_le_bytes` keeps them without a sign cast.
        let [lo, hi, _, _] = hits.move_mask().to_le_bytes();
        u64::from(u16::from_le_bytes([lo, hi]))
    }

    /// The bit mask of delimiter positions in `block` (at most [`BLOCK`] bytes; bit `i` is
    /// `block[i]`).
    #[inline]
    pub(crate) fn block_mask(self, block: &[u8]) -> u64 {
        if let Some(full) = block.first_chunk::<BLOCK>() {
            return self.full_block_mask(full);
        }
        let mut mask = 0u64;
        let mut chunks = block.chunks_exact(16);
        let mut shift = 0;
        for chunk in &mut chunks {
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(chunk);
            mask |= self.mask16(bytes) << shift;
            shift += 16;
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            let mut bytes = [0u8; 16];
            bytes[..tail.len()].copy_from_slice(tail);
            // Padding may equal a delimiter: keep only the real bytes' bits.
            let real = (1u64 << tail.len()) - 1;
            mask |= (self.mask16(bytes) & real) << shift;
        }
        mask
    }

    /// [`block_mask`](Self::block_mask) of a whole block: four fixed 16-byte lanes, no
    /// bounds checks and no loop left after inlining.
    #[inline(always)]
    fn full_block_mask(self, block: &[u8; BLOCK]) -> u64 {
        let lane = |at: usize| {
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&block[at..at + 16]);
            self.mask16(bytes)
        };
        lane(0) | (lane(16) << 16) | (lane(32) << 32) | (lane(48) << 48)
    }

    /// The first delimiter in `haystack` (any of them).
    pub(crate) fn find(self, haystack: &[u8]) -> Option<usize> {
        match self.len {
            1 => memchr::memchr(self.bytes[0], haystack),
            2 => memchr::memchr2(self.bytes[0], self.bytes[1], haystack),
            _ => memchr::memchr3(self.bytes[0], self.bytes[1], self.bytes[2], haystack),
        }
    }
}

/// Whole blocks masked one after another before a search hands the rest of a long stretch to
/// `memchr`: lines up to this many blocks long (256 bytes) cost a few masks and no call.
const MASKED_BLOCKS: usize = 4;

/// The mask of the block where the last search stopped: positions are absolute indexes into
/// the searched storage, which must not change under a valid cache (its owner invalidates it
/// whenever bytes move or are overwritten).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BlockCache {
    /// The cached delimiter set's key, or 0 when nothing is cached (a real key's length byte
    /// is never 0), so that one compare checks both.
    key: u32,
    start: usize,
    len: usize,
    mask: u64,
}

/// What a cached search found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScanHit {
    /// Absolute index of the delimiter, if one was found.
    pub(crate) at: Option<usize>,
    /// Bytes examined for the first time by this search (for the linear-scan accounting).
    pub(crate) examined: usize,
    /// Where the next search need not look before (everything before it holds no delimiter).
    pub(crate) resume: usize,
}

impl BlockCache {
    /// Forgets the cached block (its bytes moved or changed).
    #[inline]
    pub(crate) fn invalidate(&mut self) {
        self.key = 0;
    }

    /// The first delimiter of `delims` in `storage[from..end]`, using and refreshing the
    /// cached block; bytes examined for the first time are added to `examined` (the hit says
    /// how many too). The common case (the next delimiter is in the cached block) is a shift
    /// and a `trailing_zeros` and touches no counter.
    #[inline(always)]
    pub(crate) fn search(
        &mut self,
        delims: Delims,
        storage: &[u8],
        from: usize,
        end: usize,
        examined: &mut u64,
    ) -> ScanHit {
        let offset = from.wrapping_sub(self.start);
        if self.key == delims.key && offset < self.len {
            // `len` is at most 64, so the shift is in range.
            let rest = self.mask >> offset;
            if rest != 0 {
                let at = from + rest.trailing_zeros() as usize;
                if at < end {
                    return ScanHit {
                        at: Some(at),
                        examined: 0,
                        resume: at,
                    };
                }
            } else if self.len == BLOCK {
                // Nothing more in this block: the next whole block, here, without a call.
                let next = self.start + BLOCK;
                if let Some(block) = storage
                    .get(next..end)
                    .and_then(<[u8]>::first_chunk::<BLOCK>)
                {
                    let mask = delims.full_block_mask(block);
                    *self = BlockCache {
                        key: delims.key,
                        start: next,
                        len: BLOCK,
                        mask,
                    };
                    *examined += BLOCK as u64;
                    if mask != 0 {
                        let at = next + mask.trailing_zeros() as usize;
                        return ScanHit {
                            at: Some(at),
                            examined: BLOCK,
                            resume: at,
                        };
                    }
                    let hit = self.search_slow(delims, storage, next + BLOCK, end);
                    *examined += hit.examined as u64;
                    return ScanHit {
                        examined: hit.examined + BLOCK,
                        ..hit
                    };
                }
            }
        }
        let hit = self.search_slow(delims, storage, from, end);
        *examined += hit.examined as u64;
        hit
    }

    #[inline(always)]
    fn search_slow(
        &mut self,
        delims: Delims,
        storage: &[u8],
        mut from: usize,
        end: usize,
    ) -> ScanHit {
        if self.key == delims.key && from.wrapping_sub(self.start) < self.len {
            // Nothing more in the cached block: go on after it.
            from = self.start + self.len;
        }
        let first = from;
        // Whole blocks, a few of them: a line of a few blocks costs a few masks.
        for _ in 0..MASKED_BLOCKS {
            let Some(block) = storage
                .get(from..end)
                .and_then(<[u8]>::first_chunk::<BLOCK>)
            else {
                break;
            };
            let mask = delims.full_block_mask(block);
            if mask != 0 {
                *self = BlockCache {
                    key: delims.key,
                    start: from,
                    len: BLOCK,
                    mask,
                };
                let at = from + mask.trailing_zeros() as usize;
                return ScanHit {
                    at: Some(at),
                    examined: from + BLOCK - first,
                    resume: at,
                };
            }
            from += BLOCK;
        }
        if from >= end {
            return ScanHit {
                at: None,
                examined: from.saturating_sub(first),
                resume: end.max(from),
            };
        }
        if end - from < BLOCK {
            // The last bytes, less than a block: mask and cache them (more may follow them).
            let mask = delims.block_mask(&storage[from..end]);
            *self = BlockCache {
                key: delims.key,
                start: from,
                len: end - from,
                mask,
            };
            let at = (mask != 0).then(|| from + mask.trailing_zeros() as usize);
            return ScanHit {
                at,
                examined: end - first,
                resume: at.unwrap_or(end),
            };
        }
        // A long stretch without a delimiter: memchr from here on.
        match delims.find(&storage[from..end]) {
            Some(i) => ScanHit {
                at: Some(from + i),
                examined: from + i + 1 - first,
                resume: from + i,
            },
            None => ScanHit {
                at: None,
                examined: end - first,
                resume: end,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{BlockCache, Delims};

    #[test]
    fn cached_search_agrees_with_a_plain_search() {
        let mut data: Vec<u8> = (0..1000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        for i in (0..data.len()).step_by(7) {
            data[i] = b'\n';
        }
        for delims in [
            Delims::one(b'\n'),
            Delims::any(b"\r\n").unwrap(),
            Delims::any(b";:,").unwrap(),
        ] {
            let mut cache = BlockCache::default();
            let mut from = 0;
            // Search the growing prefix the way a reader does: resume after each find.
            for end in [5, 64, 65, 200, 1000] {
                loop {
                    let want = data[from..end]
                        .iter()
                        .position(|&b| delims.contains(b))
                        .map(|i| from + i);
                    let found = cache.search(delims, &data, from, end, &mut 0);
                    assert_eq!(found.at, want, "from {from} end {end}");
                    match found.at {
                        Some(at) => from = at + 1,
                        None => break,
                    }
                }
            }
        }
    }
    #[test]
    fn long_gaps_cross_whole_blocks_and_memchr_and_examine_each_byte_once() {
        // Gaps between delimiters from 0 to 700 bytes: inside one block, across up to
        // `MASKED_BLOCKS` whole blocks, and past them into the memchr stretch.
        let mut data = Vec::new();
        let mut gap = 0usize;
        while data.len() < 40_000 {
            data.extend(std::iter::repeat_n(b'x', gap));
            data.push(b'\n');
            gap = (gap * 7 + 13) % 701;
        }
        let delims = Delims::one(b'\n');
        // Ends grow the way a reader is fed: in uneven chunks.
        for step in [1usize, 63, 64, 65, 300, 4096] {
            let mut cache = BlockCache::default();
            let (mut from, mut examined, mut end) = (0usize, 0usize, 0usize);
            while end < data.len() {
                end = (end + step).min(data.len());
                loop {
                    let want = data[from..end]
                        .iter()
                        .position(|&b| b == b'\n')
                        .map(|i| from + i);
                    let hit = cache.search(delims, &data, from, end, &mut 0);
                    assert_eq!(hit.at, want, "step {step} from {from} end {end}");
                    examined += hit.examined;
                    match hit.at {
                        Some(at) => from = at + 1,
                        None => {
                            // Resume where the search says nothing lies before.
                            assert!(hit.resume >= from && hit.resume <= end);
                            from = hit.resume;
                            break;
                        }
                    }
                }
            }
            assert!(
                examined <= data.len(),
                "step {step}: examined {examined} of {}",
                data.len()
            );
        }
    }
}

#[cfg(test)]
mod block_tests {
    use super::Delims;

    #[test]
    fn block_masks_agree_with_a_plain_search_at_every_length_and_value() {
        for needle in [0u8, 1, b'\n', 0x7f, 0x80, 0xff] {
            for other in [0u8, 1, b'\n', 0x7f, 0x80, 0xff] {
                for len in 0..=64 {
                    for at in 0..len {
                        let mut block = vec![other; len];
                        block[at] = needle;
                        let mut want = 0u64;
                        for (i, &b) in block.iter().enumerate() {
                            if b == needle {
                                want |= 1 << i;
                            }
                        }
                        assert_eq!(Delims::one(needle).block_mask(&block), want);
                    }
                }
            }
        }
    }
}
