//! `CoopBudget`: a socket's cooperative budget, as tokio's coop budget, but kept in the socket
//! so it works under any executor. A task whose socket stays ready never gets `Pending` from
//! it (the operation completes at once), so it would hold its executor forever; after a
//! bounded amount of work the socket makes the task yield once.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

/// The work, in bytes, a socket does for its task before it makes the task yield.
pub const COOP_BUDGET: usize = 64 * 1024;

/// What one operation costs against [`COOP_BUDGET`] at least (so that many tiny reads, or
/// accepts, also yield): 64 operations per turn at most.
pub const COOP_OPERATION_COST: usize = 1024;

/// A socket's cooperative budget. Atomic, so that a socket shared by reference (`&Socket`
/// reads beside writes) keeps one budget.
#[derive(Debug)]
pub struct CoopBudget {
    spent: AtomicUsize,
    limit: usize,
}

impl Default for CoopBudget {
    fn default() -> Self {
        CoopBudget::new()
    }
}

impl CoopBudget {
    /// A fresh budget.
    #[must_use]
    pub const fn new() -> Self {
        CoopBudget::with_limit(COOP_BUDGET)
    }

    /// A budget of `limit` bytes per turn; `usize::MAX` never yields (as tokio's
    /// `unconstrained`: only for a task that yields by itself, or to measure the budget's
    /// cost).
    #[must_use]
    pub const fn with_limit(limit: usize) -> Self {
        CoopBudget {
            spent: AtomicUsize::new(0),
            limit,
        }
    }

    /// The bytes of work per turn before the task yields.
    #[must_use]
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Before an operation: `Ready` while budget remains; once it is spent, wakes the task and
    /// answers `Pending` once (the task goes to the back of its executor's queue), with the
    /// budget renewed.
    pub fn poll_proceed(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.spent.load(Ordering::Relaxed) < self.limit {
            return Poll::Ready(());
        }
        self.spent.store(0, Ordering::Relaxed);
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// [`poll_proceed`](Self::poll_proceed) for an `async fn`.
    pub async fn proceed(&self) {
        poll_fn(|cx| self.poll_proceed(cx)).await;
    }

    /// Runs an `async` socket operation under the budget: yields first if the budget is spent;
    /// charges the operation (`bytes` of its output) if it completed without waiting, renews
    /// the budget if it waited.
    pub async fn budgeted<F: Future>(
        &self,
        operation: F,
        bytes: impl FnOnce(&F::Output) -> usize,
    ) -> F::Output {
        self.proceed().await;
        let mut waited = false;
        let mut operation = pin!(operation);
        let output = poll_fn(|cx| {
            let polled = operation.as_mut().poll(cx);
            waited |= polled.is_pending();
            polled
        })
        .await;
        if waited {
            self.renew();
        } else {
            self.charge(bytes(&output));
        }
        output
    }

    /// After an operation that completed at once, moving `bytes`.
    pub fn charge(&self, bytes: usize) {
        self.spent
            .fetch_add(bytes.max(COOP_OPERATION_COST), Ordering::Relaxed);
    }

    /// The operation had to wait (it returned `Pending` on its own): the task yields anyway,
    /// so the budget starts over.
    pub fn renew(&self) {
        self.spent.store(0, Ordering::Relaxed);
    }

    /// Charges or renews by how an operation's poll ended.
    pub fn account<T>(&self, polled: &Poll<std::io::Result<T>>, bytes: impl FnOnce(&T) -> usize) {
        match polled {
            Poll::Pending => self.renew(),
            Poll::Ready(Ok(value)) => self.charge(bytes(value)),
            Poll::Ready(Err(_)) => self.charge(0),
        }
    }
}

/// The bytes a timed I/O operation moved (`None`: it timed out), for
/// [`CoopBudget::budgeted`].
#[must_use]
#[allow(clippy::ref_option)] // the shape `budgeted` hands its output in
pub fn bytes_moved(outcome: &Option<std::io::Result<usize>>) -> usize {
    match outcome {
        Some(Ok(n)) => *n,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_ready_socket_yields_once_per_budget_and_waking_reschedules_the_task() {
        let wakes = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&wakes));
        let mut cx = Context::from_waker(&waker);
        let budget = CoopBudget::new();
        let mut yields = 0;
        let mut ops = 0;
        for _ in 0..1000 {
            if budget.poll_proceed(&mut cx).is_pending() {
                yields += 1;
                continue;
            }
            ops += 1;
            budget.charge(100); // tiny reads cost the minimum
        }
        assert_eq!(ops, 1000 - yields);
        assert_eq!(yields, 1000 / (COOP_BUDGET / COOP_OPERATION_COST + 1));
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            yields,
            "each yield reschedules"
        );
        // An operation that waited on its own renews the budget.
        budget.charge(COOP_BUDGET);
        budget.account::<usize>(&Poll::Pending, |n| *n);
        assert!(budget.poll_proceed(&mut cx).is_ready());
    }
}
