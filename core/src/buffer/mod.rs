//! `Buffer`: the seed's NIO-style byte buffer with a position and a limit.
//!
//! Relative reads and writes move `position` and stop at `limit`; absolute `get`/`set` do not
//! move anything. A failing call returns a [`BufferError`] and changes nothing.

mod error;
mod storage;

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

pub use error::BufferError;
use storage::Storage;

use crate::scan::{BlockCache, Delims};

/// A fixed-capacity byte array with Java-NIO `position` and `limit`.
///
/// Invariant: `0 <= position <= limit <= capacity`. A new buffer is zero-filled, with position
/// 0 and limit equal to its capacity: ready to be filled.
///
/// The usual cycle: write bytes in (`write_*`), [`flip`](Buffer::flip) to make what was
/// written readable, read it out (`read_*`), then [`clear`](Buffer::clear) or
/// [`compact`](Buffer::compact) to fill again.
///
/// Byte results are [`Cow<[u8]>`](Cow): borrowed from the buffer for a buffer that was never
/// duplicated, copied out for one whose bytes are shared with a duplicate.
///
/// ```
/// use concurrence_core::Buffer;
///
/// let mut buf = Buffer::new(64);
/// buf.write_bytes(b"GET /\r\nHost: x\n")?;
/// buf.write_short(7)?;
/// buf.flip();
/// assert_eq!(&*buf.read_line(false)?, b"GET /");
/// assert_eq!(&*buf.read_line(true)?, b"Host: x\n");
/// assert_eq!(buf.read_short()?, 7);
/// assert_eq!(buf.remaining(), 0);
/// # Ok::<(), concurrence_core::BufferError>(())
/// ```
pub struct Buffer {
    storage: Storage,
    capacity: usize,
    position: usize,
    limit: usize,
    /// Delimiter positions of the block where the last scan stopped (owned bytes only;
    /// invalidated by every write).
    scan: BlockCache,
}

/// What `read_*` results carry: the bytes, borrowed when possible.
pub type BufferBytes<'a> = Cow<'a, [u8]>;

#[cold]
fn overflow(op: &'static str, needed: usize, remaining: usize) -> BufferError {
    BufferError::Overflow {
        op,
        needed,
        remaining,
    }
}

#[cold]
fn underflow(op: &'static str, needed: usize, remaining: usize) -> BufferError {
    BufferError::Underflow {
        op,
        needed,
        remaining,
    }
}

#[cold]
fn invalid(op: &'static str, reason: String) -> BufferError {
    BufferError::InvalidArgument { op, reason }
}

/// `start..start + len` if it fits inside `0..bound`.
fn checked_range(start: usize, len: usize, bound: usize) -> Option<Range<usize>> {
    let end = start.checked_add(len)?;
    (end <= bound).then_some(start..end)
}

impl Buffer {
    /// A zero-filled buffer of `capacity` bytes, position 0, limit `capacity`.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Buffer {
            storage: Storage::zeroed(capacity),
            capacity,
            position: 0,
            limit: capacity,
            scan: BlockCache::default(),
        }
    }

    /// How many bytes the buffer holds in all; never changes.
    #[inline]
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Where the next relative read or write happens.
    #[inline]
    #[must_use]
    pub fn position(&self) -> usize {
        self.position
    }

    /// Moves the position to `position`.
    ///
    /// # Errors
    /// [`BufferError::InvalidArgument`] if `position > limit`.
    pub fn set_position(&mut self, position: usize) -> Result<(), BufferError> {
        if position > self.limit {
            return Err(invalid(
                "set_position",
                format!("position {position} is past the limit {}", self.limit),
            ));
        }
        self.position = position;
        Ok(())
    }

    /// The first index that relative operations may not touch.
    #[inline]
    #[must_use]
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Moves the limit to `limit`.
    ///
    /// # Errors
    /// [`BufferError::InvalidArgument`] if `limit > capacity`, or if `limit < position` (the
    /// seed refuses that too: "limit must be >= position"; NIO would pull the position back).
    /// Nothing changes then.
    pub fn set_limit(&mut self, limit: usize) -> Result<(), BufferError> {
        if limit > self.capacity {
            return Err(invalid(
                "set_limit",
                format!("limit {limit} is past the capacity {}", self.capacity),
            ));
        }
        if limit < self.position {
            return Err(invalid(
                "set_limit",
                format!(
                    "limit must be >= position: limit {limit} is below the position {}",
                    self.position
                ),
            ));
        }
        self.limit = limit;
        Ok(())
    }

    /// `limit - position`: how many bytes relative operations may still read or write.
    #[inline]
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.limit - self.position
    }

    /// Ready to be filled: position 0, limit = capacity. The bytes are not touched.
    pub fn clear(&mut self) {
        self.position = 0;
        self.limit = self.capacity;
    }

    /// Ready to be drained: limit = position, position 0.
    pub fn flip(&mut self) {
        self.limit = self.position;
        self.position = 0;
    }

    /// Position back to 0; the limit stays.
    pub fn rewind(&mut self) {
        self.position = 0;
    }

    /// Moves the unread bytes (`position..limit`) to the start, then makes the buffer ready to
    /// be filled after them: position = what was unread, limit = capacity.
    pub fn compact(&mut self) {
        let unread = self.position..self.limit;
        let len = unread.len();
        if unread.start != 0 && len != 0 {
            self.bytes_mut().copy_within(unread, 0);
        }
        self.position = len;
        self.limit = self.capacity;
    }

    /// A second buffer over the same bytes, with its own position and limit (starting as this
    /// one's). Bytes written through either are read through both; the bytes live as long as
    /// any buffer over them.
    ///
    /// Takes `&mut self` because the first duplicate moves the bytes (without copying them)
    /// into shared storage; from then on every access to them takes a short lock.
    #[must_use]
    pub fn duplicate(&mut self) -> Buffer {
        Buffer {
            storage: self.storage.share(),
            capacity: self.capacity,
            position: self.position,
            limit: self.limit,
            scan: BlockCache::default(),
        }
    }

    /// True if `self` and `other` share their bytes (one is a duplicate of the other).
    #[must_use]
    pub fn shares_bytes_with(&self, other: &Buffer) -> bool {
        self.storage.same_bytes(&other.storage)
    }

    /// Copies `len` bytes of `src`, starting at index `src_start`, into this buffer at index
    /// `dst_start` (the seed's `copy`). Absolute: indices are checked against the capacities,
    /// no position or limit moves. `src` may be a duplicate of `self`; overlapping ranges are
    /// copied as if through a temporary.
    ///
    /// # Errors
    /// [`BufferError::InvalidArgument`] if either range falls outside its buffer's capacity.
    pub fn copy_from(
        &mut self,
        src: &Buffer,
        src_start: usize,
        dst_start: usize,
        len: usize,
    ) -> Result<(), BufferError> {
        let src_range = checked_range(src_start, len, src.capacity).ok_or_else(|| {
            invalid(
                "copy_from",
                format!(
                    "source range {src_start}+{len} is past the source capacity {}",
                    src.capacity
                ),
            )
        })?;
        let dst_range = checked_range(dst_start, len, self.capacity).ok_or_else(|| {
            invalid(
                "copy_from",
                format!(
                    "destination range {dst_start}+{len} is past the capacity {}",
                    self.capacity
                ),
            )
        })?;
        if self.storage.same_bytes(&src.storage) {
            self.bytes_mut().copy_within(src_range, dst_start);
        } else {
            let from = src.storage.view();
            self.bytes_mut()[dst_range].copy_from_slice(&from[src_range]);
        }
        Ok(())
    }

    /// Moves the position `n` bytes forward.
    ///
    /// # Errors
    /// [`BufferError::Underflow`] if fewer than `n` bytes remain.
    pub fn skip(&mut self, n: usize) -> Result<(), BufferError> {
        if n > self.remaining() {
            return Err(underflow("skip", n, self.remaining()));
        }
        self.position += n;
        Ok(())
    }

    /// Reads one byte.
    ///
    /// # Errors
    /// [`BufferError::Underflow`] if no byte remains.
    #[inline]
    pub fn read_byte(&mut self) -> Result<u8, BufferError> {
        if self.position >= self.limit {
            return Err(underflow("read_byte", 1, 0));
        }
        // Owned bytes: one bounds check; shared bytes (owned is empty): take the lock, out of
        // line. (`position < limit <= capacity`, so the index is in range either way.)
        let byte = match self.storage.owned.get(self.position) {
            Some(&byte) => byte,
            None => match self.storage.shared_bytes() {
                Some(shared) => storage::shared_byte(shared, self.position).unwrap_or(0),
                None => return Err(underflow("read_byte", 1, 0)),
            },
        };
        self.position += 1;
        Ok(byte)
    }

    /// Reads exactly `n` bytes.
    ///
    /// # Errors
    /// [`BufferError::Underflow`] if fewer than `n` bytes remain.
    pub fn read_bytes(&mut self, n: usize) -> Result<BufferBytes<'_>, BufferError> {
        self.take("read_bytes", n)
    }

    /// Reads every remaining byte (the seed's `read_bytes(-1)`); empty when none remain.
    pub fn read_remaining(&mut self) -> BufferBytes<'_> {
        let range = self.position..self.limit;
        self.position = self.limit;
        self.storage.view().into_cow(range)
    }

    /// Reads up to the first `byte` at or after the position, returns what came before it and
    /// leaves the position just past it (the delimiter is consumed, not returned).
    ///
    /// # Errors
    /// [`BufferError::Underflow`] if `byte` does not occur before the limit; nothing moves.
    #[inline]
    pub fn read_bytes_until(&mut self, byte: u8) -> Result<BufferBytes<'_>, BufferError> {
        let start = self.position;
        let Some(at) = self.find(Delims::one(byte), start) else {
            let remaining = self.limit - start;
            return Err(underflow("read_bytes_until", remaining + 1, remaining));
        };
        self.position = at + 1;
        Ok(self.storage.view().into_cow(start..at))
    }

    /// Reads up to the first of `delimiters` (one to three bytes) at or after the position;
    /// returns what came before it and which delimiter it was, and leaves the position just
    /// past it.
    ///
    /// # Errors
    /// [`BufferError::InvalidArgument`] for no or more than three delimiters;
    /// [`BufferError::Underflow`] if none occurs before the limit. Nothing moves then.
    pub fn read_bytes_until_any(
        &mut self,
        delimiters: &[u8],
    ) -> Result<(BufferBytes<'_>, u8), BufferError> {
        let Some(delims) = Delims::any(delimiters) else {
            return Err(invalid(
                "read_bytes_until_any",
                format!("takes 1 to 3 delimiter bytes, got {}", delimiters.len()),
            ));
        };
        let start = self.position;
        let Some(at) = self.find(delims, start) else {
            let remaining = self.limit - start;
            return Err(underflow("read_bytes_until_any", remaining + 1, remaining));
        };
        self.position = at + 1;
        let view = self.storage.view();
        let which = view[at];
        Ok((view.into_cow(start..at), which))
    }

    /// The first of `delims` in `from..limit`: through the block cache on owned bytes, a plain
    /// search on shared ones (another handle may write them).
    #[inline(always)]
    fn find(&mut self, delims: Delims, from: usize) -> Option<usize> {
        if self.storage.is_shared() {
            let view = self.storage.view();
            return delims.find(&view[from..self.limit]).map(|i| from + i);
        }
        self.scan
            .search(delims, &self.storage.owned, from, self.limit, &mut 0)
            .at
    }

    /// Write access to the bytes; forgets the scan cache.
    #[inline]
    fn bytes_mut(&mut self) -> storage::ViewMut<'_> {
        self.scan.invalidate();
        self.storage.view_mut()
    }

    /// Reads one line ending in LF or CRLF. The separator is consumed; it is returned only when
    /// `include_separator` is true. A CR not followed by LF is data. An empty line is empty.
    ///
    /// # Errors
    /// [`BufferError::Underflow`] if no LF occurs before the limit; nothing moves.
    #[inline]
    pub fn read_line(&mut self, include_separator: bool) -> Result<BufferBytes<'_>, BufferError> {
        let start = self.position;
        let Some(lf) = self.find(Delims::one(b'\n'), start) else {
            let remaining = self.limit - start;
            return Err(underflow("read_line", remaining + 1, remaining));
        };
        self.position = lf + 1;
        if !self.storage.is_shared() {
            // Owned bytes: borrow them straight, no view and no lock.
            let bytes = &self.storage.owned;
            if include_separator {
                return Ok(Cow::Borrowed(&bytes[start..=lf]));
            }
            let line = &bytes[start..lf];
            // One bounds check for the slice; the CR test needs none.
            return Ok(Cow::Borrowed(match line {
                [head @ .., b'\r'] => head,
                _ => line,
            }));
        }
        let view = self.storage.view();
        let end = if include_separator {
            lf + 1
        } else if lf > start && view[lf - 1] == b'\r' {
            lf - 1
        } else {
            lf
        };
        Ok(view.into_cow(start..end))
    }

    /// Reads a little-endian `u16` (the seed's `read_short`).
    ///
    /// # Errors
    /// [`BufferError::Underflow`] if fewer than 2 bytes remain.
    pub fn read_short(&mut self) -> Result<u16, BufferError> {
        self.read_array("read_short").map(u16::from_le_bytes)
    }

    /// Reads a little-endian `u32` (the seed's `read_int`).
    ///
    /// # Errors
    /// [`BufferError::Underflow`] if fewer than 4 bytes remain.
    pub fn read_int(&mut self) -> Result<u32, BufferError> {
        self.read_array("read_int").map(u32::from_le_bytes)
    }

    /// Reads a little-endian `u64`.
    ///
    /// # Errors
    /// [`BufferError::Underflow`] if fewer than 8 bytes remain.
    pub fn read_u64(&mut self) -> Result<u64, BufferError> {
        self.read_array("read_u64").map(u64::from_le_bytes)
    }

    /// Reads a big-endian (network order) `u16`.
    ///
    /// # Errors
    /// [`BufferError::Underflow`] if fewer than 2 bytes remain.
    pub fn read_u16_be(&mut self) -> Result<u16, BufferError> {
        self.read_array("read_u16_be").map(u16::from_be_bytes)
    }

    /// Reads a big-endian (network order) `u32`.
    ///
    /// # Errors
    /// [`BufferError::Underflow`] if fewer than 4 bytes remain.
    pub fn read_u32_be(&mut self) -> Result<u32, BufferError> {
        self.read_array("read_u32_be").map(u32::from_be_bytes)
    }

    /// Reads a big-endian (network order) `u64`.
    ///
    /// # Errors
    /// [`BufferError::Underflow`] if fewer than 8 bytes remain.
    pub fn read_u64_be(&mut self) -> Result<u64, BufferError> {
        self.read_array("read_u64_be").map(u64::from_be_bytes)
    }

    /// Writes one byte.
    ///
    /// # Errors
    /// [`BufferError::Overflow`] if no room remains.
    #[inline]
    pub fn write_byte(&mut self, byte: u8) -> Result<(), BufferError> {
        if self.position >= self.limit {
            return Err(overflow("write_byte", 1, 0));
        }
        self.scan.invalidate();
        match self.storage.owned.get_mut(self.position) {
            Some(slot) => *slot = byte,
            None => {
                let stored = self
                    .storage
                    .shared_bytes()
                    .is_some_and(|shared| storage::set_shared_byte(shared, self.position, byte));
                if !stored {
                    return Err(overflow("write_byte", 1, 0));
                }
            }
        }
        self.position += 1;
        Ok(())
    }

    /// Writes all of `bytes`.
    ///
    /// # Errors
    /// [`BufferError::Overflow`] if they do not all fit before the limit; nothing is written.
    #[inline]
    pub fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), BufferError> {
        self.put("write_bytes", bytes)
    }

    /// Writes a little-endian `u16` (the seed's `write_short`).
    ///
    /// # Errors
    /// [`BufferError::Overflow`] if fewer than 2 bytes of room remain.
    pub fn write_short(&mut self, value: u16) -> Result<(), BufferError> {
        self.put("write_short", &value.to_le_bytes())
    }

    /// Writes a little-endian `u32` (the seed's `write_int`).
    ///
    /// # Errors
    /// [`BufferError::Overflow`] if fewer than 4 bytes of room remain.
    pub fn write_int(&mut self, value: u32) -> Result<(), BufferError> {
        self.put("write_int", &value.to_le_bytes())
    }

    /// Writes a little-endian `u64`.
    ///
    /// # Errors
    /// [`BufferError::Overflow`] if fewer than 8 bytes of room remain.
    pub fn write_u64(&mut self, value: u64) -> Result<(), BufferError> {
        self.put("write_u64", &value.to_le_bytes())
    }

    /// Writes a big-endian (network order) `u16`.
    ///
    /// # Errors
    /// [`BufferError::Overflow`] if fewer than 2 bytes of room remain.
    pub fn write_u16_be(&mut self, value: u16) -> Result<(), BufferError> {
        self.put("write_u16_be", &value.to_be_bytes())
    }

    /// Writes a big-endian (network order) `u32`.
    ///
    /// # Errors
    /// [`BufferError::Overflow`] if fewer than 4 bytes of room remain.
    pub fn write_u32_be(&mut self, value: u32) -> Result<(), BufferError> {
        self.put("write_u32_be", &value.to_be_bytes())
    }

    /// Writes a big-endian (network order) `u64`.
    ///
    /// # Errors
    /// [`BufferError::Overflow`] if fewer than 8 bytes of room remain.
    pub fn write_u64_be(&mut self, value: u64) -> Result<(), BufferError> {
        self.put("write_u64_be", &value.to_be_bytes())
    }

    /// Writes the remaining bytes of `other` (its `position..limit`) and moves both positions
    /// past them. `other` may be a duplicate of `self`.
    ///
    /// # Errors
    /// [`BufferError::Overflow`] if `other.remaining() > self.remaining()`; neither buffer
    /// changes.
    pub fn write_buffer(&mut self, other: &mut Buffer) -> Result<(), BufferError> {
        let len = other.remaining();
        if len > self.remaining() {
            return Err(overflow("write_buffer", len, self.remaining()));
        }
        let src = other.position..other.limit;
        let at = self.position;
        if self.storage.same_bytes(&other.storage) {
            self.bytes_mut().copy_within(src, at);
        } else {
            let from = other.storage.view();
            self.bytes_mut()[at..at + len].copy_from_slice(&from[src]);
        }
        self.position += len;
        other.position += len;
        Ok(())
    }

    /// The byte at absolute index `index`; the position does not move.
    ///
    /// # Errors
    /// [`BufferError::InvalidArgument`] if `index >= limit`.
    pub fn get(&self, index: usize) -> Result<u8, BufferError> {
        if index >= self.limit {
            return Err(invalid(
                "get",
                format!("index {index} is not below the limit {}", self.limit),
            ));
        }
        Ok(self.storage.view()[index])
    }

    /// Sets the byte at absolute index `index`; the position does not move.
    ///
    /// # Errors
    /// [`BufferError::InvalidArgument`] if `index >= limit`.
    pub fn set(&mut self, index: usize, byte: u8) -> Result<(), BufferError> {
        if index >= self.limit {
            return Err(invalid(
                "set",
                format!("index {index} is not below the limit {}", self.limit),
            ));
        }
        self.bytes_mut()[index] = byte;
        Ok(())
    }

    /// The bytes at absolute indices `range`; the position does not move.
    ///
    /// # Errors
    /// [`BufferError::InvalidArgument`] if the range is reversed or ends past the limit.
    pub fn get_range(&self, range: Range<usize>) -> Result<BufferBytes<'_>, BufferError> {
        self.check_range("get_range", &range)?;
        Ok(self.storage.view().into_cow(range))
    }

    /// Overwrites the bytes at absolute indices `range` with `bytes`; the position does not
    /// move.
    ///
    /// # Errors
    /// [`BufferError::InvalidArgument`] if the range is reversed, ends past the limit, or its
    /// length differs from `bytes.len()`.
    pub fn set_range(&mut self, range: Range<usize>, bytes: &[u8]) -> Result<(), BufferError> {
        self.check_range("set_range", &range)?;
        if range.len() != bytes.len() {
            return Err(invalid(
                "set_range",
                format!(
                    "range {}..{} holds {} bytes but {} were given",
                    range.start,
                    range.end,
                    range.len(),
                    bytes.len()
                ),
            ));
        }
        self.bytes_mut()[range].copy_from_slice(bytes);
        Ok(())
    }

    /// Lets `fill` write into the room between position and limit, then moves the position by
    /// the count it returns (the seed's `recv`, for any byte source). A count larger than the
    /// room offered is treated as the whole room. `fill` must not touch a duplicate of this
    /// buffer: for shared bytes it runs while they are locked.
    ///
    /// # Errors
    /// Whatever `fill` returns; the position then stays.
    pub fn fill_with<E>(
        &mut self,
        fill: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        let room = self.position..self.limit;
        let len = room.len();
        let n = fill(&mut self.bytes_mut()[room])?.min(len);
        self.position += n;
        Ok(n)
    }

    /// Lets `drain` take bytes from between position and limit, then moves the position by the
    /// count it returns (the seed's `send`, for any byte sink). A count larger than the bytes
    /// offered is treated as all of them. `drain` must not touch a duplicate of this buffer:
    /// for shared bytes it runs while they are locked.
    ///
    /// # Errors
    /// Whatever `drain` returns; the position then stays.
    pub fn drain_with<E>(
        &mut self,
        drain: impl FnOnce(&[u8]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        let unread = self.position..self.limit;
        let len = unread.len();
        let n = drain(&self.storage.view()[unread])?.min(len);
        self.position += n;
        Ok(n)
    }

    fn check_range(&self, op: &'static str, range: &Range<usize>) -> Result<(), BufferError> {
        if range.start > range.end || range.end > self.limit {
            return Err(invalid(
                op,
                format!(
                    "range {}..{} is not within 0..{} (the limit)",
                    range.start, range.end, self.limit
                ),
            ));
        }
        Ok(())
    }

    #[inline]
    fn take(&mut self, op: &'static str, n: usize) -> Result<BufferBytes<'_>, BufferError> {
        let range = checked_range(self.position, n, self.limit)
            .ok_or_else(|| underflow(op, n, self.remaining()))?;
        self.position = range.end;
        Ok(self.storage.view().into_cow(range))
    }

    #[inline]
    fn read_array<const N: usize>(&mut self, op: &'static str) -> Result<[u8; N], BufferError> {
        let range = checked_range(self.position, N, self.limit)
            .ok_or_else(|| underflow(op, N, self.remaining()))?;
        let mut out = [0; N];
        out.copy_from_slice(&self.storage.view()[range.clone()]);
        self.position = range.end;
        Ok(out)
    }

    #[inline]
    fn put(&mut self, op: &'static str, bytes: &[u8]) -> Result<(), BufferError> {
        let range = checked_range(self.position, bytes.len(), self.limit)
            .ok_or_else(|| overflow(op, bytes.len(), self.remaining()))?;
        self.position = range.end;
        self.bytes_mut()[range].copy_from_slice(bytes);
        Ok(())
    }
}

impl Clone for Buffer {
    /// A deep copy: new bytes with the same contents, position and limit, shared with nobody.
    fn clone(&self) -> Self {
        Buffer {
            storage: self.storage.deep_copy(),
            capacity: self.capacity,
            position: self.position,
            limit: self.limit,
            scan: BlockCache::default(),
        }
    }
}

impl fmt::Debug for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer")
            .field("capacity", &self.capacity)
            .field("position", &self.position)
            .field("limit", &self.limit)
            .field("shared", &self.storage.is_shared())
            .finish()
    }
}

#[cfg(test)]
mod tests;
