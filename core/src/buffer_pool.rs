//! `BufferPool`: the read and write buffers idle connections gave back, kept for the next
//! connection that needs one, so that a request on a warm server costs no allocation and no
//! zeroing. One pool per driver thread (an event loop); bounded by a count.

/// Buffers given back by idle connections ([`Connection::release_idle_buffers_to`]) and lent
/// to connections that have none ([`Connection::take_buffers_from`]).
///
/// An idle connection still holds no buffer; the pool holds at most `max_buffers` read buffers
/// of one connection's configured size and `max_buffers` write buffers of at most twice its
/// `high_water` (a write buffer that grew for a run of replies is kept, so the next large reply
/// costs no reallocation; one that grew past that for a single large reply, and a read buffer
/// that grew for a large frame, go back to the allocator). A read buffer lent again still holds a
/// former peer's bytes in the room a receive overwrites; nothing reads there.
///
/// [`Connection::release_idle_buffers_to`]: crate::Connection::release_idle_buffers_to
/// [`Connection::take_buffers_from`]: crate::Connection::take_buffers_from
#[derive(Debug, Default)]
pub struct BufferPool {
    reads: Vec<Vec<u8>>,
    writes: Vec<Vec<u8>>,
    max_buffers: usize,
}

impl BufferPool {
    /// An empty pool keeping up to `max_buffers` buffers of each kind (0: keep none).
    #[must_use]
    pub fn new(max_buffers: usize) -> Self {
        BufferPool {
            reads: Vec::new(),
            writes: Vec::new(),
            max_buffers,
        }
    }

    /// Buffers held now (read and write).
    #[must_use]
    pub fn len(&self) -> usize {
        self.reads.len() + self.writes.len()
    }

    /// True when it holds no buffer.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn put_read(&mut self, buf: Vec<u8>) {
        if self.reads.len() < self.max_buffers {
            self.reads.push(buf);
        }
    }

    pub(crate) fn take_read(&mut self) -> Option<Vec<u8>> {
        self.reads.pop()
    }

    pub(crate) fn put_write(&mut self, buf: Vec<u8>) {
        if self.writes.len() < self.max_buffers {
            self.writes.push(buf);
        }
    }

    pub(crate) fn take_write(&mut self) -> Option<Vec<u8>> {
        self.writes.pop()
    }
}
