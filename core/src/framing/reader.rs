//! `StreamReader`: the read half of the seed's `BufferedStream`, as a sans-IO state machine.
//!
//! It is *fed* bytes (received straight into [`StreamReader::spare`], or copied in with
//! [`StreamReader::feed`]) and answers framed reads with a value, `Ok(None)` for "need more
//! input", or a [`FramingError`].

use crate::scan::{BlockCache, Delims};

/// A reader shrinks back to `buffer_size` once it holds more than this many times that.
const SHRINK_FACTOR: usize = 4;

use super::{FramingError, ReaderConfig};

/// The read half of a buffered stream: bytes go in, lines, blocks and integers come out.
///
/// # Driving contract
///
/// 1. To receive, a driver calls [`spare`](Self::spare), reads from its socket straight into
///    that slice, and reports the count with [`filled`](Self::filled). (Or it copies bytes in
///    with [`feed`](Self::feed).) At end of stream it calls [`close`](Self::close).
/// 2. The protocol then calls `read_*` until one answers `Ok(None)`: the frame is not complete
///    yet and nothing was consumed. The driver receives more and the protocol tries again.
/// 3. `spare()` is empty only when the reader holds [`ReaderConfig::max_buffered`] bytes that
///    nobody consumed ([`wants_input`](Self::wants_input) is then false). That can only happen
///    when the first frame is past its bound, so the next `read_*` answers an error; a driver
///    must not treat the empty slice as end of stream.
///
/// # Bounds and memory
///
/// The reader starts with no buffer, allocates `buffer_size` on first use, grows (doubling)
/// only as bytes actually arrive, never past `max_buffered()`, and shrinks back to
/// `buffer_size` once a large frame has been consumed. Scanning for a delimiter resumes where
/// the last scan stopped, so a line arriving one byte at a time costs O(length), not O(length²).
///
/// A failed read consumes nothing: the same call fails the same way until more input or
/// consumption changes the picture.
///
/// ```
/// use concurrence_core::{ReaderConfig, StreamReader};
///
/// let mut reader = StreamReader::new(ReaderConfig::default());
/// reader.feed(b"PING\r\nda");
/// assert_eq!(reader.read_line(false)?, Some(&b"PING"[..]));
/// assert_eq!(reader.read_line(false)?, None); // "da" is not a line yet
/// reader.feed(b"ta\n");
/// assert_eq!(reader.read_line(true)?, Some(&b"data\n"[..]));
/// # Ok::<(), concurrence_core::FramingError>(())
/// ```
#[derive(Debug)]
pub struct StreamReader {
    config: ReaderConfig,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Where the next scan for `scan_delimiter` resumes (bytes before it hold no delimiter).
    scan_from: usize,
    scan_delims: Delims,
    /// Delimiter positions of the block where the last scan stopped.
    scan_cache: BlockCache,
    closed: bool,
    scanned_bytes: u64,
    /// Bytes consumed before the buffer's front: `consumed_bytes()` is this plus `start`
    /// (kept so, instead of a counter bumped on every frame).
    consumed_base: u64,
    /// Unread bytes moved inside the buffer (compaction, growth, shrinking), for a test hook.
    moved_bytes: u64,
    /// What `read_frame` learnt from its last incomplete attempt (boxed: most readers never
    /// use it, and an idle connection's size matters).
    frame_notes: Option<Box<super::FrameNotes>>,
}

/// What a stream wrapper waits for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FrameKind {
    Line {
        include_separator: bool,
    },
    Until(u8),
    Block(usize),
    /// Whatever is buffered, up to n bytes (at least one unless n is 0).
    UpTo(usize),
}

/// A complete frame found in the buffer: where it is and how far to consume.
pub(crate) struct Found {
    frame_end: usize,
    consume_to: usize,
}

impl StreamReader {
    /// An empty reader with the given bounds. Allocates nothing until the first input.
    #[must_use]
    pub fn new(config: ReaderConfig) -> Self {
        StreamReader {
            config,
            buf: Vec::new(),
            start: 0,
            end: 0,
            scan_from: 0,
            scan_delims: Delims::one(b'\n'),
            scan_cache: BlockCache::default(),
            closed: false,
            scanned_bytes: 0,
            consumed_base: 0,
            moved_bytes: 0,
            frame_notes: None,
        }
    }

    /// The buffered bytes and the frame notes, borrowed apart (for `read_frame`).
    pub(crate) fn frame_parts(&mut self) -> (&[u8], &mut super::FrameNotes) {
        let notes = self.frame_notes.get_or_insert_with(Box::default);
        (&self.buf[self.start..self.end], notes)
    }

    /// Adds a frame cursor's examined bytes to [`scanned_bytes`](Self::scanned_bytes).
    pub(crate) fn count_scanned(&mut self, n: u64) {
        self.scanned_bytes += n;
    }

    /// The bounds this reader enforces.
    #[must_use]
    pub fn config(&self) -> &ReaderConfig {
        &self.config
    }

    /// Room to receive into; report what was written with [`filled`](Self::filled).
    ///
    /// Makes room first (compacting, growing up to the bound, or shrinking back after a large
    /// frame). Empty only when `max_buffered()` unconsumed bytes are held, or after `close()`.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.closed {
            return &mut [];
        }
        self.make_room(self.buf.len() / 4);
        &mut self.buf[self.end..]
    }

    /// Records that the first `n` bytes of the last [`spare`](Self::spare) slice were filled.
    /// A count past that slice is clamped to it; input after `close()` is ignored.
    pub fn filled(&mut self, n: usize) {
        if !self.closed {
            self.end = self.end.saturating_add(n).min(self.buf.len());
        }
    }

    /// Copies in as much of `data` as the bounds allow and returns how much that was (all of
    /// it unless the reader is full or closed).
    pub fn feed(&mut self, mut data: &[u8]) -> usize {
        let mut taken = 0;
        if !self.closed && !data.is_empty() {
            // Room for all of `data` now, while only the unread leftover has to move: filling
            // a short tail first would mean moving the bytes just copied in.
            self.make_room(data.len());
        }
        while !data.is_empty() {
            let spare = self.spare();
            let n = spare.len().min(data.len());
            if n == 0 {
                break;
            }
            spare[..n].copy_from_slice(&data[..n]);
            self.filled(n);
            data = &data[n..];
            taken += n;
        }
        taken
    }

    /// Gives the buffer back when it holds no bytes, so an idle connection holds no read
    /// buffer (memcached's way: a buffer only while a request is partial). The next
    /// [`spare`](Self::spare) allocates `buffer_size` again. Drivers call it (through
    /// `Connection::release_idle_buffers`) before they wait for input.
    pub fn release_if_empty(&mut self) {
        if self.start == self.end && self.buf.capacity() > 0 {
            self.buf = Vec::new();
            self.consumed_base += self.start as u64;
            self.start = 0;
            self.end = 0;
            self.scan_from = 0;
            self.scan_cache.invalidate();
        }
    }

    /// Hands out the buffer when it holds no bytes and has its configured size (for a
    /// [`BufferPool`](crate::BufferPool)); the reader then holds none, as after
    /// [`release_if_empty`](Self::release_if_empty).
    pub(crate) fn lend_buffer(&mut self) -> Option<Vec<u8>> {
        if self.start != self.end || self.buf.len() != self.config.buffer_size.max(1) {
            return None;
        }
        let buf = std::mem::take(&mut self.buf);
        self.consumed_base += self.start as u64;
        self.start = 0;
        self.end = 0;
        self.scan_from = 0;
        self.scan_cache.invalidate();
        Some(buf)
    }

    /// Takes `buf` (a lent buffer of the configured size) as its buffer if it holds none;
    /// otherwise gives it back.
    pub(crate) fn adopt_buffer(&mut self, buf: Vec<u8>) -> Option<Vec<u8>> {
        if !self.buf.is_empty() || self.closed || buf.len() != self.config.buffer_size.max(1) {
            return Some(buf);
        }
        self.buf = buf;
        self.scan_cache.invalidate();
        None
    }

    /// True while it holds a buffer.
    pub(crate) fn has_buffer(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Marks end of stream: no more input will come. Reads of a partial frame now fail with
    /// `UnexpectedEof`; the partial bytes stay readable through
    /// [`read_available`](Self::read_available).
    pub fn close(&mut self) {
        self.closed = true;
    }

    /// True after [`close`](Self::close).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// True when closed and every byte has been consumed: nothing more will ever be read.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.closed && self.start == self.end
    }

    /// True when the reader can take more input now (not closed, not full).
    #[must_use]
    pub fn wants_input(&self) -> bool {
        !self.closed && self.len() < self.config.max_buffered()
    }

    /// Bytes received and not yet consumed.
    #[must_use]
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True when no unconsumed bytes are held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The unconsumed bytes, without consuming them.
    #[must_use]
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Bytes currently allocated for buffering.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// How many bytes were consumed (read as frames) in all: a driver can tell from it
    /// whether a session made progress.
    #[must_use]
    pub fn consumed_bytes(&self) -> u64 {
        self.consumed_base + self.start as u64
    }

    /// Test hook: how many bytes delimiter scans have examined in all. Linear framing keeps
    /// this proportional to the input, however it was split.
    #[doc(hidden)]
    #[must_use]
    pub fn scanned_bytes(&self) -> u64 {
        self.scanned_bytes
    }

    /// Test hook: how many unread bytes compaction and reallocation have moved in all. Feeding
    /// chunks larger than the buffer keeps this to the leftovers of partial frames.
    #[doc(hidden)]
    #[must_use]
    pub fn moved_bytes(&self) -> u64 {
        self.moved_bytes
    }

    /// Reads one line ending in LF or CRLF; the separator is consumed and returned only when
    /// `include_separator` is true. A lone CR is data.
    ///
    /// # Errors
    /// [`FramingError::LineTooLong`] once the line is known to exceed `max_line`;
    /// [`FramingError::UnexpectedEof`] if the stream ended inside a line.
    /// `Ok(None)`: no complete line yet (or the stream ended cleanly between lines).
    #[inline]
    pub fn read_line(&mut self, include_separator: bool) -> Result<Option<&[u8]>, FramingError> {
        let found = self.find_line(include_separator)?;
        Ok(found.map(|f| self.take(f)))
    }

    /// Reads up to the first `delimiter`, consuming it and returning what came before.
    ///
    /// # Errors
    /// [`FramingError::LineTooLong`] once the frame is known to exceed `max_line`;
    /// [`FramingError::UnexpectedEof`] if the stream ended before the delimiter.
    #[inline]
    pub fn read_bytes_until(&mut self, delimiter: u8) -> Result<Option<&[u8]>, FramingError> {
        let found = self.find_delimited(delimiter)?;
        Ok(found.map(|f| self.take(f)))
    }

    /// Reads up to the first of `delimiters` (one to three bytes, as tokio-util's
    /// `AnyDelimiterCodec` offers, but scanned a block at a time): the frame without its
    /// delimiter, and which delimiter ended it. The delimiter is consumed.
    ///
    /// # Errors
    /// [`FramingError::InvalidDelimiters`] for none or more than three;
    /// [`FramingError::LineTooLong`] once the frame is known to exceed `max_line`;
    /// [`FramingError::UnexpectedEof`] if the stream ended inside a frame.
    #[inline]
    pub fn read_until_any(
        &mut self,
        delimiters: &[u8],
    ) -> Result<Option<(&[u8], u8)>, FramingError> {
        let delims = Delims::any(delimiters).ok_or(FramingError::InvalidDelimiters {
            given: delimiters.len(),
        })?;
        let limit = self.config.max_line;
        match self.scan(delims) {
            Some(at) if at - self.start > limit => Err(FramingError::LineTooLong { limit }),
            Some(at) => {
                let which = self.buf[at];
                let found = Found {
                    frame_end: at,
                    consume_to: at + 1,
                };
                Ok(Some((self.take(found), which)))
            }
            None if self.len() > limit => Err(FramingError::LineTooLong { limit }),
            None => self.incomplete("read_until_any"),
        }
    }

    /// Reads exactly `n` bytes.
    ///
    /// # Errors
    /// [`FramingError::BlockTooLarge`] if `n > max_block`;
    /// [`FramingError::UnexpectedEof`] if the stream ended with fewer than `n` bytes left.
    pub fn read_bytes(&mut self, n: usize) -> Result<Option<&[u8]>, FramingError> {
        let found = self.find_block(n)?;
        Ok(found.map(|f| self.take(f)))
    }

    /// Reads one byte.
    ///
    /// # Errors
    /// [`FramingError::UnexpectedEof`] never (a byte is never partial); kept for symmetry.
    pub fn read_byte(&mut self) -> Result<Option<u8>, FramingError> {
        Ok(self.read_array::<1>("read_byte")?.map(|[b]| b))
    }

    /// Reads a little-endian `u16` (the seed's `read_short`).
    ///
    /// # Errors
    /// [`FramingError::UnexpectedEof`] if the stream ended inside it.
    pub fn read_short(&mut self) -> Result<Option<u16>, FramingError> {
        Ok(self.read_array("read_short")?.map(u16::from_le_bytes))
    }

    /// Reads a little-endian `u32` (the seed's `read_int`).
    ///
    /// # Errors
    /// [`FramingError::UnexpectedEof`] if the stream ended inside it.
    pub fn read_int(&mut self) -> Result<Option<u32>, FramingError> {
        Ok(self.read_array("read_int")?.map(u32::from_le_bytes))
    }

    /// Reads a big-endian (network order) `u16`.
    ///
    /// # Errors
    /// [`FramingError::UnexpectedEof`] if the stream ended inside it.
    pub fn read_u16_be(&mut self) -> Result<Option<u16>, FramingError> {
        Ok(self.read_array("read_u16_be")?.map(u16::from_be_bytes))
    }

    /// Reads a big-endian (network order) `u32`.
    ///
    /// # Errors
    /// [`FramingError::UnexpectedEof`] if the stream ended inside it.
    pub fn read_u32_be(&mut self) -> Result<Option<u32>, FramingError> {
        Ok(self.read_array("read_u32_be")?.map(u32::from_be_bytes))
    }

    /// Takes up to `n` buffered bytes, whatever framing they have (the file-compat `read(n)`).
    /// Empty when nothing is buffered.
    pub fn read_up_to(&mut self, n: usize) -> &[u8] {
        let take = n.min(self.len());
        self.take(Found {
            frame_end: self.start + take,
            consume_to: self.start + take,
        })
    }

    /// Takes every buffered byte: after end of stream, the partial tail of a frame.
    pub fn read_available(&mut self) -> &[u8] {
        self.read_up_to(usize::MAX)
    }

    // ----- the searches; crate-visible so `BufferedStream` can wait on them without
    // ----- holding a borrow across its receive loop.

    #[inline(always)]
    pub(crate) fn find_line(
        &mut self,
        include_separator: bool,
    ) -> Result<Option<Found>, FramingError> {
        let limit = self.config.max_line;
        match self.scan(Delims::one(b'\n')) {
            Some(lf) => {
                let has_cr = lf > self.start && self.buf[lf - 1] == b'\r';
                let content_end = if has_cr { lf - 1 } else { lf };
                if content_end - self.start > limit {
                    return Err(FramingError::LineTooLong { limit });
                }
                Ok(Some(Found {
                    frame_end: if include_separator {
                        lf + 1
                    } else {
                        content_end
                    },
                    consume_to: lf + 1,
                }))
            }
            None => {
                // A trailing CR may still turn out to be half of a CRLF.
                let pending_cr =
                    usize::from(self.end > self.start && self.buf[self.end - 1] == b'\r');
                if self.len() - pending_cr > limit {
                    return Err(FramingError::LineTooLong { limit });
                }
                self.incomplete("read_line")
            }
        }
    }

    #[inline(always)]
    pub(crate) fn find_delimited(&mut self, delimiter: u8) -> Result<Option<Found>, FramingError> {
        let limit = self.config.max_line;
        match self.scan(Delims::one(delimiter)) {
            Some(at) if at - self.start > limit => Err(FramingError::LineTooLong { limit }),
            Some(at) => Ok(Some(Found {
                frame_end: at,
                consume_to: at + 1,
            })),
            None if self.len() > limit => Err(FramingError::LineTooLong { limit }),
            None => self.incomplete("read_bytes_until"),
        }
    }

    pub(crate) fn find_block(&mut self, n: usize) -> Result<Option<Found>, FramingError> {
        if n > self.config.max_block {
            return Err(FramingError::BlockTooLarge {
                requested: n,
                limit: self.config.max_block,
            });
        }
        if self.len() >= n {
            let end = self.start + n;
            return Ok(Some(Found {
                frame_end: end,
                consume_to: end,
            }));
        }
        self.incomplete("read_bytes")
    }

    pub(crate) fn take_found(&mut self, found: Found) -> &[u8] {
        self.take(found)
    }

    /// One search for any kind of frame, for the stream wrappers' receive loops.
    pub(crate) fn find(&mut self, kind: FrameKind) -> Result<Option<Found>, FramingError> {
        match kind {
            FrameKind::Line { include_separator } => self.find_line(include_separator),
            FrameKind::Until(delimiter) => self.find_delimited(delimiter),
            FrameKind::Block(n) => self.find_block(n),
            FrameKind::UpTo(n) => Ok((!self.is_empty() || n == 0).then(|| {
                let end = self.start + n.min(self.len());
                Found {
                    frame_end: end,
                    consume_to: end,
                }
            })),
        }
    }

    fn read_array<const N: usize>(
        &mut self,
        op: &'static str,
    ) -> Result<Option<[u8; N]>, FramingError> {
        if self.len() < N {
            return self.incomplete(op);
        }
        let mut out = [0; N];
        out.copy_from_slice(&self.buf[self.start..self.start + N]);
        self.consume_to(self.start + N);
        Ok(Some(out))
    }

    /// "Need more input", unless the stream has ended: then a clean end between frames is
    /// `Ok(None)` and a partial frame is `UnexpectedEof`.
    fn incomplete<T>(&self, op: &'static str) -> Result<Option<T>, FramingError> {
        if self.closed && !self.is_empty() {
            return Err(FramingError::UnexpectedEof {
                op,
                buffered: self.len(),
            });
        }
        Ok(None)
    }

    /// Finds the first of `delims` in the unconsumed bytes, resuming the previous scan (bytes
    /// before `scan_from` hold none) and reusing the cached mask of the last block.
    #[inline(always)]
    fn scan(&mut self, delims: Delims) -> Option<usize> {
        if delims != self.scan_delims || self.scan_from < self.start {
            self.scan_delims = delims;
            self.scan_from = self.start;
        }
        let hit = self.scan_cache.search(
            delims,
            &self.buf,
            self.scan_from,
            self.end,
            &mut self.scanned_bytes,
        );
        self.scan_from = hit.resume;
        hit.at
    }

    #[inline(always)]
    fn take(&mut self, found: Found) -> &[u8] {
        let start = self.start;
        self.consume_to(found.consume_to);
        &self.buf[start..found.frame_end]
    }

    #[inline(always)]
    fn consume_to(&mut self, to: usize) {
        self.start = to;
        self.scan_from = self.scan_from.max(to);
        if self.start == self.end {
            // Empty: start over at the front, so the next receive has the whole buffer.
            self.scan_cache.invalidate();
            self.consumed_base += self.start as u64;
            self.start = 0;
            self.end = 0;
            self.scan_from = 0;
        }
    }

    /// Makes `buf[end..]` non-empty if the bounds allow; when fewer than `want` bytes are free
    /// at the tail and little is unread (a quarter of the buffer at most), moves that little
    /// to the front first, so the next receive or copy gets the whole room.
    fn make_room(&mut self, want: usize) {
        let size = self.config.buffer_size.max(1);
        let len = self.len();
        if self.buf.len() > size.saturating_mul(SHRINK_FACTOR) && len <= size / 2 {
            // A large frame has been consumed: give the memory back. Not for a buffer only a
            // few times the configured size: a caller feeding chunks somewhat larger than the
            // buffer would make it grow and shrink again around every chunk.
            self.relocate(size);
            return;
        }
        if self.start > 0 && self.buf.len() - self.end < want && len <= self.buf.len() / 4 {
            // Cheap now (a leftover partial frame), dear later (a tail filled with unread
            // bytes that then have to move): at most a quarter of the buffer moves here.
            self.shift_to_front();
            return;
        }
        if self.end < self.buf.len() {
            return;
        }
        let max = self.config.max_buffered();
        if self.buf.is_empty() {
            self.buf = vec![0; size];
        } else if self.start > 0 && (len <= self.buf.len() / 4 * 3 || self.buf.len() >= max) {
            // Compacting moves `len` bytes and leaves at least a quarter of the buffer free:
            // at most three bytes moved per byte of room, so each byte moves O(1) times.
            // Growing at half full instead made a reader fed chunks larger than itself grow
            // past the shrink bound and shrink again around every chunk.
            self.shift_to_front();
        } else if self.buf.len() < max {
            let grown = self.buf.len().saturating_mul(2).min(max);
            self.relocate(grown);
        } else if self.start > 0 {
            self.shift_to_front();
        }
    }

    fn shift_to_front(&mut self) {
        self.scan_cache.invalidate();
        let shift = self.start;
        self.consumed_base += shift as u64;
        self.moved_bytes += (self.end - self.start) as u64;
        self.buf.copy_within(self.start..self.end, 0);
        self.start = 0;
        self.end -= shift;
        self.scan_from -= shift;
    }

    /// Moves the unconsumed bytes to the front of a new buffer of `size` bytes.
    fn relocate(&mut self, size: usize) {
        self.scan_cache.invalidate();
        let mut buf = vec![0; size.max(self.len())];
        let len = self.len();
        self.consumed_base += self.start as u64;
        self.moved_bytes += len as u64;
        buf[..len].copy_from_slice(&self.buf[self.start..self.end]);
        self.scan_from -= self.start;
        self.start = 0;
        self.end = len;
        self.buf = buf;
    }
}
