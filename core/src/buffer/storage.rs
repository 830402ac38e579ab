//! Where a `Buffer`'s bytes live.
//!
//! A buffer owns its bytes outright (the common path: plain slice access) until the first
//! `duplicate()`, which moves them, without copying, behind an `Arc<Mutex<..>>` shared by every
//! duplicate. No `unsafe`: sharing mutable bytes costs a lock, paid only by
//! buffers that were duplicated.

use std::borrow::Cow;
use std::ops::{Deref, DerefMut, Range};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The bytes behind a buffer: `owned` holds them until the first duplicate moves them into
/// `shared` (leaving `owned` empty), so a hot path can try `owned` with one bounds check.
#[derive(Debug)]
pub(crate) struct Storage {
    pub(crate) owned: Box<[u8]>,
    shared: Option<Arc<Mutex<Box<[u8]>>>>,
}

/// Read access to the bytes, valid while it lives.
pub(crate) enum View<'a> {
    Owned(&'a [u8]),
    Shared(MutexGuard<'a, Box<[u8]>>),
}

/// Write access to the bytes, valid while it lives.
pub(crate) enum ViewMut<'a> {
    Owned(&'a mut [u8]),
    Shared(MutexGuard<'a, Box<[u8]>>),
}

fn lock(bytes: &Mutex<Box<[u8]>>) -> MutexGuard<'_, Box<[u8]>> {
    // Nothing panics while holding the lock, so poisoning cannot leave the bytes half-written
    // in a way we care about: a byte array has no invariant to break.
    bytes.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Storage {
    /// Zero-filled, owned storage of `capacity` bytes.
    pub(crate) fn zeroed(capacity: usize) -> Self {
        Storage {
            owned: vec![0; capacity].into_boxed_slice(),
            shared: None,
        }
    }

    /// The shared bytes' lock, if shared. The reference points into the `Arc`'s allocation,
    /// not into the buffer, which lets the optimiser keep the buffer's fields in registers
    /// across a call that takes it.
    pub(crate) fn shared_bytes(&self) -> Option<&Mutex<Box<[u8]>>> {
        self.shared.as_deref()
    }

    /// True once the bytes are shared with a duplicate.
    pub(crate) fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Read access.
    #[inline]
    pub(crate) fn view(&self) -> View<'_> {
        match &self.shared {
            None => View::Owned(&self.owned),
            Some(bytes) => View::Shared(lock(bytes)),
        }
    }

    /// Write access.
    #[inline]
    pub(crate) fn view_mut(&mut self) -> ViewMut<'_> {
        match &self.shared {
            None => ViewMut::Owned(&mut self.owned),
            Some(bytes) => ViewMut::Shared(lock(bytes)),
        }
    }

    /// Switches to shared storage (moving, not copying, the bytes) and returns a second handle.
    pub(crate) fn share(&mut self) -> Storage {
        let shared = match &self.shared {
            Some(bytes) => Arc::clone(bytes),
            None => {
                let bytes = Arc::new(Mutex::new(std::mem::take(&mut self.owned)));
                self.shared = Some(Arc::clone(&bytes));
                bytes
            }
        };
        Storage {
            owned: Box::default(),
            shared: Some(shared),
        }
    }

    /// True when both handles reach the same bytes (a buffer and one of its duplicates).
    pub(crate) fn same_bytes(&self, other: &Storage) -> bool {
        match (&self.shared, &other.shared) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// A deep copy: new, owned bytes with the same contents.
    pub(crate) fn deep_copy(&self) -> Storage {
        Storage {
            owned: Box::from(&*self.view()),
            shared: None,
        }
    }
}

impl<'a> View<'a> {
    /// The bytes in `range`: borrowed when owned, copied out when shared (the lock ends here).
    #[inline]
    pub(crate) fn into_cow(self, range: Range<usize>) -> Cow<'a, [u8]> {
        match self {
            View::Owned(bytes) => Cow::Borrowed(&bytes[range]),
            View::Shared(guard) => Cow::Owned(guard[range].to_vec()),
        }
    }
}

impl Deref for View<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            View::Owned(bytes) => bytes,
            View::Shared(guard) => guard,
        }
    }
}

impl Deref for ViewMut<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            ViewMut::Owned(bytes) => bytes,
            ViewMut::Shared(guard) => guard,
        }
    }
}

impl DerefMut for ViewMut<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            ViewMut::Owned(bytes) => bytes,
            ViewMut::Shared(guard) => guard,
        }
    }
}

/// One byte of shared bytes (the slow path of `read_byte`, kept out of line).
#[inline(never)]
pub(crate) fn shared_byte(bytes: &Mutex<Box<[u8]>>, index: usize) -> Option<u8> {
    lock(bytes).get(index).copied()
}

/// Sets one byte of shared bytes (the slow path of `write_byte`, kept out of line).
#[inline(never)]
pub(crate) fn set_shared_byte(bytes: &Mutex<Box<[u8]>>, index: usize, byte: u8) -> bool {
    match lock(bytes).get_mut(index) {
        Some(slot) => {
            *slot = byte;
            true
        }
        None => false,
    }
}
