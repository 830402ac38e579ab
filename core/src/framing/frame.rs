//! `FrameCursor`: a transactional read of one frame made of several parts (a header and a
//! body, an array of bulk strings), as httparse makes "incomplete" a value. A parse either
//! completes the frame, which is then consumed, or answers `Ok(None)` and consumes nothing, so
//! a session keeps no partial-frame state of its own. See [`StreamReader::read_frame`].

use crate::FramingError;
use crate::StreamReader;

/// What the reader remembers between attempts at the same frame, so that repeated attempts
/// stay linear: every byte is scanned for a line end once, and an attempt runs only once the
/// bytes the last one lacked have arrived.
#[derive(Debug, Default)]
pub(crate) struct FrameNotes {
    /// `consumed_bytes()` when these notes were taken: they describe the frame starting there.
    base: u64,
    /// Buffered bytes the last incomplete attempt needed before it could go further.
    need: usize,
    /// Line ends found so far, as (where the line starts, where its `\n` is), from the frame's
    /// start, in the order found.
    line_ends: Vec<(usize, usize)>,
    /// The unfinished line search: where the line starts, and how far it looked.
    open_line: Option<(usize, usize)>,
}

/// A cursor over the bytes buffered for one frame. Reads advance the cursor, not the reader;
/// the frame is consumed only when the parse given to [`StreamReader::read_frame`] returns
/// `Ok(Some(_))`. Slices borrow the reader's buffer for the whole parse, so a parse can collect
/// several parts before it decides.
#[derive(Debug)]
pub struct FrameCursor<'b> {
    bytes: &'b [u8],
    pos: usize,
    at_eof: bool,
    max_line: usize,
    max_block: usize,
    notes: &'b mut FrameNotes,
    /// Buffered bytes this attempt would need to go further (when it ran out).
    need: usize,
    /// Lines read in this attempt: the next line's end is most likely the next one noted.
    lines: usize,
    /// Bytes this attempt examined looking for line ends (`StreamReader::scanned_bytes`).
    scanned: u64,
}

impl<'b> FrameCursor<'b> {
    /// How far into the frame the cursor is.
    #[must_use]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The buffered bytes after the cursor (they may not all belong to this frame).
    #[must_use]
    pub fn rest(&self) -> &'b [u8] {
        &self.bytes[self.pos..]
    }

    /// Not enough bytes: `Ok(None)`, remembering that `total` are needed; at end of stream,
    /// the frame can never complete.
    fn incomplete<T>(&mut self, total: usize, op: &'static str) -> Result<Option<T>, FramingError> {
        if self.at_eof {
            if self.bytes.is_empty() {
                // The stream ended cleanly between frames.
                return Ok(None);
            }
            return Err(FramingError::UnexpectedEof {
                op,
                buffered: self.bytes.len(),
            });
        }
        self.need = self.need.max(total);
        Ok(None)
    }

    /// The next line (to `\n`; a CR before it is stripped unless `include_separator`).
    ///
    /// # Errors
    /// [`FramingError::LineTooLong`] past `max_line`; [`FramingError::UnexpectedEof`] if the
    /// stream ended inside the frame. `Ok(None)`: the frame is not complete yet.
    pub fn read_line(&mut self, include_separator: bool) -> Result<Option<&'b [u8]>, FramingError> {
        let start = self.pos;
        let Some(newline) = self.find_newline(start)? else {
            return self.incomplete(self.bytes.len() + 1, "read_frame (line)");
        };
        self.pos = newline + 1;
        let mut end = if include_separator {
            newline + 1
        } else {
            newline
        };
        if !include_separator && end > start && self.bytes[end - 1] == b'\r' {
            end -= 1;
        }
        Ok(Some(&self.bytes[start..end]))
    }

    /// Where the `\n` ending the line that starts at `start` is, scanning each byte once
    /// across attempts.
    fn find_newline(&mut self, start: usize) -> Result<Option<usize>, FramingError> {
        // The same bytes parse the same way: the k-th line of this attempt is the k-th noted.
        if let Some(&(noted, end)) = self.notes.line_ends.get(self.lines) {
            if noted == start {
                self.lines += 1;
                return Ok(Some(end));
            }
        }
        if let Some(&(_, end)) = self.notes.line_ends.iter().find(|(s, _)| *s == start) {
            self.lines += 1;
            return Ok(Some(end));
        }
        let from = match self.notes.open_line {
            Some((s, scanned)) if s == start => scanned,
            _ => start,
        };
        let limit = start.saturating_add(self.max_line).saturating_add(2);
        let stop = self.bytes.len().min(limit);
        let from = from.min(stop);
        let found = memchr::memchr(b'\n', &self.bytes[from..stop]).map(|i| from + i);
        self.scanned += found.map_or(stop - from, |end| end + 1 - from) as u64;
        match found {
            Some(end) => {
                let line = end - start;
                let line = if line > 0 && self.bytes[end - 1] == b'\r' {
                    line - 1
                } else {
                    line
                };
                if line > self.max_line {
                    return Err(FramingError::LineTooLong {
                        limit: self.max_line,
                    });
                }
                self.notes.line_ends.push((start, end));
                self.notes.open_line = None;
                self.lines += 1;
                Ok(Some(end))
            }
            None if stop == limit => Err(FramingError::LineTooLong {
                limit: self.max_line,
            }),
            None => {
                self.notes.open_line = Some((start, stop));
                Ok(None)
            }
        }
    }

    /// The next `n` bytes.
    ///
    /// # Errors
    /// [`FramingError::BlockTooLarge`] past `max_block`; [`FramingError::UnexpectedEof`] if
    /// the stream ended inside the frame. `Ok(None)`: not all there yet.
    pub fn read_bytes(&mut self, n: usize) -> Result<Option<&'b [u8]>, FramingError> {
        if n > self.max_block {
            return Err(FramingError::BlockTooLarge {
                requested: n,
                limit: self.max_block,
            });
        }
        let end = self.pos.saturating_add(n);
        if end > self.bytes.len() {
            return self.incomplete(end, "read_frame (block)");
        }
        let block = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(Some(block))
    }

    fn read_array<const N: usize>(&mut self) -> Result<Option<[u8; N]>, FramingError> {
        Ok(self.read_bytes(N)?.map(|b| {
            let mut out = [0u8; N];
            out.copy_from_slice(b);
            out
        }))
    }

    /// One byte.
    ///
    /// # Errors
    /// [`FramingError::UnexpectedEof`] if the stream ended inside the frame.
    pub fn read_byte(&mut self) -> Result<Option<u8>, FramingError> {
        Ok(self.read_array::<1>()?.map(|[b]| b))
    }

    /// A big-endian (network order) `u16`.
    ///
    /// # Errors
    /// [`FramingError::UnexpectedEof`] if the stream ended inside the frame.
    pub fn read_u16_be(&mut self) -> Result<Option<u16>, FramingError> {
        Ok(self.read_array()?.map(u16::from_be_bytes))
    }

    /// A big-endian (network order) `u32`.
    ///
    /// # Errors
    /// [`FramingError::UnexpectedEof`] if the stream ended inside the frame.
    pub fn read_u32_be(&mut self) -> Result<Option<u32>, FramingError> {
        Ok(self.read_array()?.map(u32::from_be_bytes))
    }

    /// A little-endian `u16` (the seed's `read_short`).
    ///
    /// # Errors
    /// [`FramingError::UnexpectedEof`] if the stream ended inside the frame.
    pub fn read_short(&mut self) -> Result<Option<u16>, FramingError> {
        Ok(self.read_array()?.map(u16::from_le_bytes))
    }

    /// A little-endian `u32` (the seed's `read_int`).
    ///
    /// # Errors
    /// [`FramingError::UnexpectedEof`] if the stream ended inside the frame.
    pub fn read_int(&mut self) -> Result<Option<u32>, FramingError> {
        Ok(self.read_array()?.map(u32::from_le_bytes))
    }
}

impl StreamReader {
    /// Reads one frame of several parts, all or nothing: `parse` reads the parts through a
    /// [`FrameCursor`] and returns `Ok(Some(value))` once the frame is complete (the bytes it
    /// read are consumed), or `Ok(None)` as soon as a cursor read answers `None` (nothing is
    /// consumed). The session keeps no partial-frame state: the next call parses the frame
    /// again from its start.
    ///
    /// Repeated attempts stay cheap: each byte is scanned for a line end once across attempts
    /// (the reader remembers the line ends it found and how far an unfinished search looked),
    /// so an attempt costs the number of parts it reads, not the bytes; and `parse` is not run
    /// again until the bytes the last attempt lacked have arrived. A frame can never outgrow the reader: one that needs more than
    /// [`ReaderConfig::max_buffered`](crate::ReaderConfig::max_buffered) bytes fails with
    /// [`FramingError::FrameTooLarge`] instead of stalling the connection.
    ///
    /// ```
    /// use concurrence_core::{FramingError, ReaderConfig, StreamReader};
    ///
    /// /// A RESP array of bulk strings: `*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`.
    /// fn command(reader: &mut StreamReader) -> Result<Option<Vec<Vec<u8>>>, FramingError> {
    ///     reader.read_frame(|frame| {
    ///         let Some(header) = frame.read_line(false)? else { return Ok(None) };
    ///         let count: usize = parse(header.strip_prefix(b"*"))?;
    ///         let mut parts = Vec::with_capacity(count.min(64));
    ///         for _ in 0..count {
    ///             let Some(len) = frame.read_line(false)? else { return Ok(None) };
    ///             let len: usize = parse(len.strip_prefix(b"$"))?;
    ///             let Some(body) = frame.read_bytes(len)? else { return Ok(None) };
    ///             let Some(_crlf) = frame.read_bytes(2)? else { return Ok(None) };
    ///             parts.push(body.to_vec());
    ///         }
    ///         Ok(Some(parts))
    ///     })
    /// }
    ///
    /// fn parse(text: Option<&[u8]>) -> Result<usize, FramingError> {
    ///     // A real server answers a protocol error here; the example keeps to framing errors.
    ///     Ok(text.and_then(|t| std::str::from_utf8(t).ok()?.parse().ok()).unwrap_or(0))
    /// }
    ///
    /// let mut reader = StreamReader::new(ReaderConfig::default());
    /// let request = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    /// for (i, byte) in request.iter().enumerate() {
    ///     reader.feed(&[*byte]);
    ///     let parsed = command(&mut reader)?;
    ///     // Incomplete until the last byte: nothing consumed meanwhile.
    ///     assert_eq!(parsed.is_some(), i + 1 == request.len());
    /// }
    /// assert!(reader.is_empty());
    /// # Ok::<(), FramingError>(())
    /// ```
    ///
    /// # Errors
    /// Whatever `parse` returns (the cursor's [`FramingError`]s convert into `E`), and
    /// [`FramingError::FrameTooLarge`].
    pub fn read_frame<T, E: From<FramingError>>(
        &mut self,
        parse: impl FnOnce(&mut FrameCursor<'_>) -> Result<Option<T>, E>,
    ) -> Result<Option<T>, E> {
        let base = self.consumed_bytes();
        let buffered = self.len();
        let closed = self.is_closed();
        let max_buffered = self.config().max_buffered();
        let (max_line, max_block) = (self.config().max_line, self.config().max_block);
        let (bytes, notes) = self.frame_parts();
        if notes.base != base {
            notes.base = base;
            notes.need = 0;
            notes.line_ends.clear();
            notes.open_line = None;
        }
        if !closed && buffered < notes.need {
            // The bytes the last attempt lacked have not all arrived: it would end the same.
            return Ok(None);
        }
        let mut cursor = FrameCursor {
            bytes,
            pos: 0,
            at_eof: closed,
            max_line,
            max_block,
            notes,
            need: 0,
            lines: 0,
            scanned: 0,
        };
        let parsed = parse(&mut cursor);
        let (used, need, scanned) = (cursor.pos, cursor.need, cursor.scanned);
        self.count_scanned(scanned);
        let parsed = parsed?;
        match parsed {
            Some(value) => {
                let _ = self.read_up_to(used);
                Ok(Some(value))
            }
            None => {
                if need > max_buffered {
                    return Err(FramingError::FrameTooLarge {
                        needed: need,
                        limit: max_buffered,
                    }
                    .into());
                }
                self.frame_parts().1.need = need.max(buffered + 1);
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{FramingError, ReaderConfig, StreamReader};

    /// Parses `<n>\n` then n lines; counts the attempts.
    fn lines_frame(
        reader: &mut StreamReader,
        attempts: &mut usize,
    ) -> Result<Option<Vec<Vec<u8>>>, FramingError> {
        reader.read_frame(|frame| {
            *attempts += 1;
            let Some(count) = frame.read_line(false)? else {
                return Ok(None);
            };
            let count: usize = std::str::from_utf8(count).unwrap().parse().unwrap();
            let mut lines = Vec::new();
            for _ in 0..count {
                let Some(line) = frame.read_line(false)? else {
                    return Ok(None);
                };
                lines.push(line.to_vec());
            }
            Ok(Some(lines))
        })
    }

    #[test]
    fn a_frame_fed_byte_by_byte_completes_once_and_each_byte_is_scanned_once() {
        let mut input = b"50\n".to_vec();
        for i in 0..50 {
            input.extend_from_slice(format!("line {i:03}\r\n").as_bytes());
        }
        input.extend_from_slice(b"3\nnext");
        let mut reader = StreamReader::new(ReaderConfig::default());
        let mut attempts = 0;
        let mut frames = Vec::new();
        for byte in &input {
            reader.feed(&[*byte]);
            if let Some(lines) = lines_frame(&mut reader, &mut attempts).unwrap() {
                frames.push(lines);
            }
        }
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].len(), 50);
        assert_eq!(frames[0][49], b"line 049");
        assert_eq!(
            reader.scanned_bytes(),
            input.len() as u64,
            "every byte examined exactly once across {attempts} attempts"
        );
        // The second frame is incomplete: its bytes stay, nothing of it was consumed.
        assert_eq!(reader.buffered(), b"3\nnext");
        let (_, notes) = reader.frame_parts();
        assert_eq!(
            notes.line_ends.len(),
            1,
            "the second frame's count line, noted once"
        );
        // One attempt per byte at most (each byte could complete a line); never more.
        assert!(
            attempts <= input.len(),
            "{attempts} attempts for {} bytes",
            input.len()
        );
    }

    #[test]
    fn an_attempt_waits_until_the_bytes_it_lacked_arrived() {
        let mut reader = StreamReader::new(ReaderConfig::default());
        let mut attempts = 0;
        let parse = |reader: &mut StreamReader, attempts: &mut usize| {
            reader.read_frame(|frame| {
                *attempts += 1;
                let Some(len) = frame.read_u32_be()? else {
                    return Ok(None);
                };
                let Some(body) = frame.read_bytes(len as usize)? else {
                    return Ok(None);
                };
                Ok::<_, FramingError>(Some(body.to_vec()))
            })
        };
        reader.feed(&100u32.to_be_bytes());
        assert_eq!(parse(&mut reader, &mut attempts).unwrap(), None);
        for _ in 0..99 {
            reader.feed(b"x");
            assert_eq!(parse(&mut reader, &mut attempts).unwrap(), None);
        }
        assert_eq!(
            attempts, 1,
            "no attempt before the 100-byte body is all there"
        );
        reader.feed(b"y");
        let body = parse(&mut reader, &mut attempts).unwrap().unwrap();
        assert_eq!(body.len(), 100);
        assert_eq!(attempts, 2);
        assert!(reader.is_empty());
    }

    #[test]
    fn bounds_and_the_end_of_stream_are_errors_not_stalls() {
        let config = ReaderConfig::default()
            .with_buffer_size(64)
            .with_max_line(16)
            .with_max_block(32);
        let block = |reader: &mut StreamReader, n| {
            reader.read_frame(|frame| Ok::<_, FramingError>(frame.read_bytes(n)?.map(<[u8]>::len)))
        };
        let mut reader = StreamReader::new(config);
        reader.feed(b"0123456789abcdefghij");
        assert!(matches!(
            reader.read_frame(|f| Ok::<_, FramingError>(f.read_line(false)?.map(<[u8]>::len))),
            Err(FramingError::LineTooLong { limit: 16 })
        ));
        assert!(matches!(
            block(&mut reader, 33),
            Err(FramingError::BlockTooLarge { .. })
        ));
        // Parts each within bounds, but together more than the reader ever holds.
        let two_blocks = |reader: &mut StreamReader| {
            reader.read_frame(|frame| {
                let Some(_) = frame.read_bytes(32)? else {
                    return Ok(None);
                };
                let Some(_) = frame.read_bytes(32)? else {
                    return Ok(None);
                };
                let Some(_) = frame.read_bytes(32)? else {
                    return Ok(None);
                };
                Ok::<_, FramingError>(Some(()))
            })
        };
        reader.feed(&[0; 44]);
        assert!(matches!(
            two_blocks(&mut reader),
            Err(FramingError::FrameTooLarge {
                needed: 96,
                limit: 64
            })
        ));
        // End of stream inside a frame: an error; the partial bytes stay readable.
        let mut reader = StreamReader::new(config);
        reader.feed(b"abc");
        reader.close();
        assert!(matches!(
            block(&mut reader, 5),
            Err(FramingError::UnexpectedEof { buffered: 3, .. })
        ));
        assert_eq!(reader.read_available(), b"abc");
        // End of stream between frames: nothing more, no error.
        assert_eq!(block(&mut reader, 5).unwrap(), None);
    }
}
