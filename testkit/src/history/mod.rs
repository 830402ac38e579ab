//! Histories of client operations and a linearizability checker, as Porcupine and Knossos
//! check them: clients record each operation's invocation and completion ([`History`]); an
//! operation whose reply was lost to a fault stays *ambiguous* (it may or may not have taken
//! effect); [`check_linearizable`] decides whether some order of the operations, consistent
//! with real time, is a legal run of a sequential [`Model`] (Wing & Gong's search with the
//! usual memoization of visited states). [`CasRegister`] is the model of one key of a cache with
//! compare-and-swap that may forget keys but never invents values.

mod cas_register;
mod linearizability;

pub use cas_register::{CasRegister, RegisterOp, RegisterRet};
pub use linearizability::{
    KeyedOperations, Model, NotLinearizable, check_linearizable, check_per_key,
};

use std::sync::{Arc, Mutex, PoisonError};

use concurrence_core::Timestamp;

/// One recorded operation: who, what, when it was invoked and, unless its reply was lost,
/// when it completed and with what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation<Op, Ret> {
    /// The client that invoked it.
    pub client: usize,
    /// The operation.
    pub op: Op,
    /// When it was invoked (for reports; the order is [`invoked_seq`](Self::invoked_seq)).
    pub invoked_at: Timestamp,
    /// Its place in the order of all recorded events.
    pub invoked_seq: u64,
    /// Its completion: the time, the place in the order of events, the result. `None`: the
    /// reply never came (the connection reset, the host crashed): ambiguous.
    pub completed: Option<(Timestamp, u64, Ret)>,
}

/// The recorder clients share (clone it freely; it is `Send`): every invocation and
/// completion gets the next place in one order of events, which is the real-time order the
/// checker respects (an operation precedes another if it completed before the other was
/// invoked).
#[derive(Debug)]
pub struct History<Op, Ret> {
    inner: Arc<Mutex<Recorded<Op, Ret>>>,
}

impl<Op, Ret> Clone for History<Op, Ret> {
    fn clone(&self) -> Self {
        History {
            inner: Arc::clone(&self.inner),
        }
    }
}

#[derive(Debug)]
struct Recorded<Op, Ret> {
    operations: Vec<Operation<Op, Ret>>,
    next_seq: u64,
}

/// An invoked operation's handle, to complete it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationId(usize);

impl<Op: Clone, Ret: Clone> Default for History<Op, Ret> {
    fn default() -> Self {
        History::new()
    }
}

impl<Op: Clone, Ret: Clone> History<Op, Ret> {
    /// An empty history.
    #[must_use]
    pub fn new() -> Self {
        History {
            inner: Arc::new(Mutex::new(Recorded {
                operations: Vec::new(),
                next_seq: 0,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded<Op, Ret>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `client` invokes `op` at `now` (record it before the request is sent).
    pub fn invoke(&self, client: usize, op: Op, now: Timestamp) -> OperationId {
        let mut recorded = self.lock();
        let seq = recorded.next_seq;
        recorded.next_seq += 1;
        recorded.operations.push(Operation {
            client,
            op,
            invoked_at: now,
            invoked_seq: seq,
            completed: None,
        });
        OperationId(recorded.operations.len() - 1)
    }

    /// Operation `id` completed at `now` with `ret` (record it after the reply arrived).
    pub fn complete(&self, id: OperationId, ret: Ret, now: Timestamp) {
        let mut recorded = self.lock();
        let seq = recorded.next_seq;
        recorded.next_seq += 1;
        if let Some(operation) = recorded.operations.get_mut(id.0) {
            operation.completed = Some((now, seq, ret));
        }
    }

    /// Every operation recorded so far, in invocation order.
    #[must_use]
    pub fn operations(&self) -> Vec<Operation<Op, Ret>> {
        self.lock().operations.clone()
    }
}
