//! The readiness reactor under the uring backend's async `Socket`: one thread with a ring of
//! its own that waits for sockets to become ready (oneshot `POLL_ADD`s) and for timers (the
//! wait's timeout), and wakes the tasks waiting on them. Tasks on any thread ask it through a
//! queue and its event fd; the ring is only ever touched by the reactor's thread
//! (`SINGLE_ISSUER`).
//!
//! A socket is closed through the reactor ([`Reactor::close`]): its pending polls hold the
//! file open, so the reactor cancels them (by fd) and closes the descriptor once their
//! completions are reaped (the kernel has let go of the file), then tells the closing thread,
//! which waits for that: a closed socket is closed when `close` returns (a listener refuses,
//! a stream's peer reads the end or the reset), as on every other backend.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use concurrence_core::Timestamp;
use concurrence_os::clock;
use slab::Slab;

use crate::event_loop::LoopWake;
use crate::ring::{Op, Ring, RingSize};
use crate::unavailable::unavailable;

/// The reactor's wake-up fd's key in completions.
const WAKE: u32 = u32::MAX - 1;

/// One task's wait: set ready by the reactor, which wakes the task's waker.
#[derive(Debug, Default)]
pub(crate) struct Waiter {
    state: Mutex<(bool, Option<Waker>)>,
}

impl Waiter {
    fn new(waker: &Waker) -> Arc<Waiter> {
        Arc::new(Waiter {
            state: Mutex::new((false, Some(waker.clone()))),
        })
    }

    fn fire(&self) {
        let waker = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.0 = true;
            state.1.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Ready, or registers `cx`'s waker and answers `false`.
    fn poll(&self, cx: &Context<'_>) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.0 {
            return true;
        }
        if !state.1.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            state.1 = Some(cx.waker().clone());
        }
        false
    }
}

/// What tasks asked since the reactor last looked.
#[derive(Default)]
struct Requests {
    polls: Vec<(RawFd, u32, Arc<Waiter>)>,
    timers: Vec<(Timestamp, Arc<Waiter>)>,
    closes: Vec<(OwnedFd, Arc<Closed>)>,
}

/// Set once the reactor closed a descriptor it was asked to close.
#[derive(Debug, Default)]
struct Closed(Mutex<bool>, Condvar);

impl Closed {
    fn done(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.1.notify_all();
    }
}

/// Timers the reactor holds before it first drops those nobody awaits any more.
const PRUNE_MIN: usize = 1024;

/// How long a closing thread waits for the reactor before it gives up (and logs it): the
/// reactor answers in microseconds unless it died.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The process's reactor (started on first use).
pub(crate) struct Reactor {
    requests: Arc<Mutex<Requests>>,
    wake: LoopWake,
    /// Timers the reactor holds, and timers it was ever given, as of its last turn (what the
    /// tests check the pruning by).
    #[cfg_attr(not(test), allow(dead_code))]
    timers_held: Arc<[std::sync::atomic::AtomicUsize; 2]>,
}

static REACTOR: OnceLock<Result<Reactor, String>> = OnceLock::new();

/// The reactor, started on first use.
///
/// # Errors
/// io_uring is unavailable here (the text says why), or its thread could not start.
pub(crate) fn reactor() -> io::Result<&'static Reactor> {
    REACTOR
        .get_or_init(Reactor::start)
        .as_ref()
        .map_err(|why| io::Error::new(io::ErrorKind::Unsupported, why.clone()))
}

impl Reactor {
    fn start() -> Result<Reactor, String> {
        let wake = LoopWake::new().map_err(|e| format!("cannot create an event fd: {e}"))?;
        let (ready, started) = std::sync::mpsc::channel();
        let woken = wake.clone();
        let requests = Arc::new(Mutex::new(Requests::default()));
        let asked = Arc::clone(&requests);
        let timers_held = Arc::new([
            std::sync::atomic::AtomicUsize::new(0),
            std::sync::atomic::AtomicUsize::new(0),
        ]);
        let held = Arc::clone(&timers_held);
        std::thread::Builder::new()
            .name("concurrence-uring-reactor".into())
            .spawn(move || {
                let ring = Ring::new(RingSize {
                    entries: 256,
                    buffers: 1,
                    buffer_size: 64,
                });
                match ring {
                    Ok(ring) => {
                        let _ = ready.send(Ok(()));
                        run(ring, &woken, &asked, &held);
                    }
                    Err(e) => {
                        let _ = ready.send(Err(unavailable(&e).to_string()));
                    }
                }
            })
            .map_err(|e| format!("cannot start the io_uring reactor thread: {e}"))?;
        started
            .recv()
            .map_err(|_| "the io_uring reactor thread ended at once".to_owned())??;
        Ok(Reactor {
            requests,
            wake,
            timers_held,
        })
    }

    fn ask(&self, add: impl FnOnce(&mut Requests)) {
        add(&mut self.requests.lock().unwrap_or_else(PoisonError::into_inner));
        self.wake.wake();
    }

    /// Closes `fd` once its pending polls are cancelled, and returns when it is closed.
    pub(crate) fn close(&self, fd: OwnedFd) {
        let closed = Arc::new(Closed::default());
        let signal = Arc::clone(&closed);
        self.ask(|r| r.closes.push((fd, signal)));
        let guard = closed.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (done, _) = closed
            .1
            .wait_timeout_while(guard, CLOSE_WAIT, |done| !*done)
            .unwrap_or_else(PoisonError::into_inner);
        if !*done {
            tracing::error!("the io_uring reactor did not close a socket within {CLOSE_WAIT:?}");
        }
    }
}

/// A task's interest in one readiness of one socket: at most one poll in flight at a time.
#[derive(Debug, Default)]
pub(crate) struct Interest(Mutex<Option<Arc<Waiter>>>);

impl Interest {
    /// Ready once `fd` reported `events` (or an error or hang-up) since the last readiness
    /// this returned; registers `cx`'s waker until then.
    pub(crate) fn poll_ready(
        &self,
        fd: RawFd,
        events: u32,
        cx: &Context<'_>,
    ) -> Poll<io::Result<()>> {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(waiter) = slot.as_ref() {
            if waiter.poll(cx) {
                *slot = None;
                return Poll::Ready(Ok(()));
            }
            return Poll::Pending;
        }
        let reactor = match reactor() {
            Ok(reactor) => reactor,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let waiter = Waiter::new(cx.waker());
        reactor.ask(|r| r.polls.push((fd, events, Arc::clone(&waiter))));
        *slot = Some(waiter);
        Poll::Pending
    }
}

/// A timer on the reactor's clock (the OS's monotonic clock).
#[derive(Debug)]
pub struct UringTimer {
    deadline: Timestamp,
    waiter: Option<Arc<Waiter>>,
}

impl UringTimer {
    pub(crate) fn at(deadline: Timestamp) -> UringTimer {
        UringTimer {
            deadline,
            waiter: None,
        }
    }
}

impl std::future::Future for UringTimer {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if clock::now() >= self.deadline {
            return Poll::Ready(());
        }
        match &self.waiter {
            Some(waiter) => {
                // Fired (or not yet): the clock above decides; keep the waker fresh.
                let _ = waiter.poll(cx);
            }
            None => match reactor() {
                Ok(reactor) => {
                    let waiter = Waiter::new(cx.waker());
                    let deadline = self.deadline;
                    reactor.ask(|r| r.timers.push((deadline, Arc::clone(&waiter))));
                    self.waiter = Some(waiter);
                }
                // No reactor: nothing could wake this task; end the wait rather than hang.
                Err(_) => return Poll::Ready(()),
            },
        }
        Poll::Pending
    }
}

/// The reactor's thread: submit what was asked, wait, wake who is ready.
fn run(
    mut ring: Ring,
    wake: &LoopWake,
    requests: &Mutex<Requests>,
    held: &[std::sync::atomic::AtomicUsize; 2],
) {
    let mut waiters: Slab<(RawFd, Arc<Waiter>)> = Slab::new();
    // Polls in flight per descriptor, and the descriptors waiting for theirs to end.
    let mut polls_on: HashMap<RawFd, usize> = HashMap::new();
    let mut closing: HashMap<RawFd, (OwnedFd, Arc<Closed>)> = HashMap::new();
    let mut timers: BTreeMap<(Timestamp, u64), Arc<Waiter>> = BTreeMap::new();
    let mut next_timer = 0u64;
    let mut prune_at = PRUNE_MIN;
    let mut wake_armed = false;
    loop {
        if !wake_armed {
            match ring.poll(wake.fd(), WAKE, libc::POLLIN as u32, true) {
                Ok(_) => wake_armed = true,
                Err(e) => {
                    tracing::error!(error = %e, "the io_uring reactor cannot watch its wake-ups");
                    return;
                }
            }
        }
        let asked = std::mem::take(&mut *requests.lock().unwrap_or_else(PoisonError::into_inner));
        for (fd, events, waiter) in asked.polls {
            let key = waiters.insert((fd, waiter));
            if ring
                .poll(fd, u32::try_from(key).unwrap_or(WAKE - 1), events, false)
                .is_ok()
            {
                *polls_on.entry(fd).or_default() += 1;
            } else {
                // Could not ask the kernel: let the task try (and find out) at once.
                waiters.remove(key).1.fire();
            }
        }
        for (deadline, waiter) in asked.timers {
            timers.insert((deadline, next_timer), waiter);
            next_timer += 1;
        }
        // A timer whose future was dropped (a read that finished before its timeout) is held
        // only here: drop those whenever the set has doubled, so it stays within twice the
        // timers still awaited instead of growing with every timed operation.
        if timers.len() > prune_at {
            timers.retain(|_, waiter| Arc::strong_count(waiter) > 1);
            prune_at = (timers.len() * 2).max(PRUNE_MIN);
        }
        held[0].store(timers.len(), std::sync::atomic::Ordering::Relaxed);
        held[1].store(
            usize::try_from(next_timer).unwrap_or(usize::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
        for (fd, closed) in asked.closes {
            let raw = fd.as_raw_fd();
            if polls_on.get(&raw).copied().unwrap_or(0) == 0 {
                drop(fd);
                closed.done();
                continue;
            }
            if let Err(e) = ring.cancel_fd(raw) {
                tracing::warn!(error = %e, "cannot cancel a closing socket's polls");
            }
            closing.insert(raw, (fd, closed));
        }
        let now = clock::now();
        let timeout = timers
            .first_key_value()
            .map(|((deadline, _), _)| deadline.saturating_duration_since(now));
        if let Err(e) = ring.wait(timeout) {
            tracing::error!(error = %e, "the io_uring reactor cannot wait");
            return;
        }
        while let Some(completion) = ring.next() {
            match (completion.op, completion.key) {
                (Op::Poll, WAKE) => {
                    wake.drain();
                    wake_armed = completion.more;
                }
                (Op::Poll, key) => {
                    let Some((fd, waiter)) = waiters.try_remove(key as usize) else {
                        continue;
                    };
                    waiter.fire();
                    let left = polls_on.get_mut(&fd).map_or(0, |n| {
                        *n = n.saturating_sub(1);
                        *n
                    });
                    if left == 0 {
                        polls_on.remove(&fd);
                        // The kernel let go of the file: close it, and say so.
                        if let Some((fd, closed)) = closing.remove(&fd) {
                            drop(fd);
                            closed.done();
                        }
                    }
                }
                _ => {}
            }
        }
        let now = clock::now();
        while let Some(entry) = timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            entry.remove().fire();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::sync::atomic::Ordering;

    #[test]
    fn timers_nobody_awaits_any_more_do_not_pile_up() {
        // 20,000 operations with a minute's timeout that finished at once: each registered a
        // timer and dropped it. The reactor must not hold them all for the minute.
        let reactor = reactor().expect("io_uring here");
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let given = reactor.timers_held[1].load(Ordering::Relaxed);
        for _ in 0..20_000 {
            let mut timer = UringTimer::at(clock::now() + Duration::from_secs(60));
            assert!(std::pin::Pin::new(&mut timer).poll(&mut cx).is_pending());
        }
        // One more kept alive, then a wake-up so that the reactor takes a turn after all.
        let mut kept = UringTimer::at(clock::now() + Duration::from_secs(60));
        let _ = std::pin::Pin::new(&mut kept).poll(&mut cx);
        let until = std::time::Instant::now() + Duration::from_secs(10);
        // Once the reactor took all of them (and any other test's), it holds at most the
        // prune threshold, not 20,000.
        while reactor.timers_held[1].load(Ordering::Relaxed) < given + 20_001 {
            reactor.wake.wake();
            assert!(
                std::time::Instant::now() < until,
                "the reactor did not take the timers"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let held = reactor.timers_held[0].load(Ordering::Relaxed);
        assert!(
            (1..=PRUNE_MIN).contains(&held),
            "the reactor holds {held} timers"
        );
        drop(kept);
    }
}
