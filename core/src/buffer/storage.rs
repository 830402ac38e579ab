//! Where a `Buffer`'s bytes live.
//!
//! A buffer owns its bytes outright (`Owned`, the common path: plain slice access) until the
//! first `duplicate()`, which moves them, without copying, behind an `Arc<Mutex<..>>` shared by
//! every duplicate (`Shared`). No `unsafe`: sharing mutable bytes costs a lock, paid only by
//! buffers that were duplicated.

use std::borrow::Cow;
use std::ops::{Deref, DerefMut, Range};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The bytes behind a buffer.
#[derive(Debug)]
pub(crate) enum Storage {
    /// Bytes owned by exactly one buffer.
    Owned(Box<[u8]>),
    /// Bytes shared by a buffer and its duplicates.
    Shared(Arc<Mutex<Box<[u8]>>>),
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
        Storage::Owned(vec![0; capacity].into_boxed_slice())
    }

    /// Read access.
    #[inline]
    pub(crate) fn view(&self) -> View<'_> {
        match self {
            Storage::Owned(bytes) => View::Owned(bytes),
            Storage::Shared(bytes) => View::Shared(lock(bytes)),
        }
    }

    /// Write access.
    #[inline]
    pub(crate) fn view_mut(&mut self) -> ViewMut<'_> {
        match self {
            Storage::Owned(bytes) => ViewMut::Owned(bytes),
            Storage::Shared(bytes) => ViewMut::Shared(lock(bytes)),
        }
    }

    /// Switches to shared storage (moving, not copying, the bytes) and returns a second handle.
    pub(crate) fn share(&mut self) -> Storage {
        let shared = match self {
            Storage::Shared(bytes) => Arc::clone(bytes),
            Storage::Owned(bytes) => {
                let shared = Arc::new(Mutex::new(std::mem::take(bytes)));
                *self = Storage::Shared(Arc::clone(&shared));
                shared
            }
        };
        Storage::Shared(shared)
    }

    /// True when both handles reach the same bytes (a buffer and one of its duplicates).
    pub(crate) fn same_bytes(&self, other: &Storage) -> bool {
        match (self, other) {
            (Storage::Shared(a), Storage::Shared(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// A deep copy: new, owned bytes with the same contents.
    pub(crate) fn deep_copy(&self) -> Storage {
        Storage::Owned(Box::from(&*self.view()))
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
