//! The simulator's executor: async tasks, each on a host, polled one at a time in an order
//! drawn from the run's RNG; and the context (`spawn`, `sleep`, `now`) a task reaches through
//! a thread-local while it runs, the way sockets find the simulated network.
//!
//! Tasks are `async-task` tasks; waking one puts it on the run queue, and the network runs the
//! queue to empty (in random order) before it takes the next event off its clock.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use async_task::Runnable;
use concurrence_core::Timestamp;

use crate::HostId;
use crate::world::World;

/// What the executor knows of a task: where it runs and its number (for the trace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TaskInfo {
    pub(crate) host: HostId,
    pub(crate) number: u64,
    /// The host's incarnation when the task was spawned (a crash ends it).
    pub(crate) incarnation: u64,
}

/// Tasks woken and waiting to be polled. (`async-task` wants a `Send` scheduler; the
/// simulator itself is one thread.)
#[derive(Clone, Default)]
pub(crate) struct RunQueue(Arc<Mutex<Vec<Runnable<TaskInfo>>>>);

impl RunQueue {
    fn push(&self, runnable: Runnable<TaskInfo>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(runnable);
    }

    /// How many tasks wait.
    pub(crate) fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Takes the task at the index `pick` chooses among the waiting ones (given how many wait),
    /// under one lock; `None` when none waits.
    pub(crate) fn take_picked(
        &self,
        pick: impl FnOnce(usize) -> usize,
    ) -> Option<Runnable<TaskInfo>> {
        let mut queue = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.is_empty() {
            return None;
        }
        let index = pick(queue.len());
        (index < queue.len()).then(|| queue.swap_remove(index))
    }

    /// Drops every waiting task (the run is over).
    pub(crate) fn clear(&self) {
        let drained: Vec<_> = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        drop(drained);
    }
}

/// Everything a running task reaches: the world, the run queue, and its host.
#[derive(Clone)]
pub(crate) struct Scope {
    pub(crate) world: Rc<RefCell<World>>,
    pub(crate) queue: RunQueue,
    pub(crate) tasks: Rc<Cell<u64>>,
    pub(crate) host: HostId,
}

thread_local! {
    static CURRENT: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

/// Runs `f` with `scope` as the current one (restored afterwards, also on a panic).
pub(crate) fn enter<R>(scope: Scope, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Scope>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|current| *current.borrow_mut() = previous);
        }
    }
    let previous = CURRENT.with(|current| current.borrow_mut().replace(scope));
    let _restore = Restore(previous);
    f()
}

/// The scope of the running task.
pub(crate) fn current() -> Option<Scope> {
    CURRENT.with(|current| current.borrow().clone())
}

fn current_or_panic(what: &str) -> Scope {
    current().unwrap_or_else(|| {
        panic!("concurrence_sim::{what} called outside a simulated task (use SimNetwork::spawn)")
    })
}

/// A task of the simulator: await it for its output, or [`detach`](SimTask::detach) it to let
/// it run on its own. Dropping it cancels the task.
#[must_use = "a dropped task is cancelled; detach it to let it run"]
#[derive(Debug)]
pub struct SimTask<T>(async_task::Task<T, TaskInfo>);

impl<T> SimTask<T> {
    /// Lets the task run to its end without anyone awaiting it.
    pub fn detach(self) {
        self.0.detach();
    }

    /// True once the task has finished (its output is ready).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

impl<T> Future for SimTask<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// Spawns `future` as a task on `host` of the simulation `scope` belongs to.
pub(crate) fn spawn_in<F>(scope: &Scope, host: HostId, future: F) -> SimTask<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let number = scope.tasks.get();
    scope.tasks.set(number + 1);
    let incarnation = scope.world.borrow().incarnation(host);
    let queue = scope.queue.clone();
    let (runnable, task) = async_task::Builder::new()
        .metadata(TaskInfo {
            host,
            number,
            incarnation,
        })
        .spawn_local(move |_| future, move |runnable| queue.push(runnable));
    runnable.schedule();
    SimTask(task)
}

/// Spawns `future` as a new task on the current task's host.
///
/// # Panics
/// Outside a simulated task.
pub fn spawn<F>(future: F) -> SimTask<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let scope = current_or_panic("spawn");
    let host = scope.host;
    spawn_in(&scope, host, future)
}

/// Virtual time now, as the current task's host sees it (its clock may be skewed).
///
/// # Panics
/// Outside a simulated task.
#[must_use]
pub fn now() -> Timestamp {
    let scope = current_or_panic("now");
    scope.world.borrow().host_now(scope.host)
}

/// Waits `duration` of virtual time.
///
/// # Panics
/// When polled outside a simulated task.
pub fn sleep(duration: Duration) -> Sleep {
    Sleep {
        duration,
        timer: None,
    }
}

/// The future of [`sleep`].
#[derive(Debug)]
#[must_use = "a sleep does nothing unless awaited"]
pub struct Sleep {
    duration: Duration,
    /// The world's timer id, once first polled.
    timer: Option<(u64, Rc<RefCell<World>>)>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.timer.is_none() {
            let scope = current_or_panic("sleep");
            let id = scope
                .world
                .borrow_mut()
                .sleep_for(scope.host, self.duration);
            self.timer = Some((id, scope.world));
        }
        let Some((id, world)) = &self.timer else {
            return Poll::Ready(());
        };
        let polled = world.borrow_mut().poll_sleep(*id, cx);
        if polled.is_ready() {
            self.timer = None;
        }
        polled
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some((id, world)) = self.timer.take() {
            if let Ok(mut world) = world.try_borrow_mut() {
                world.cancel_sleep(id);
            }
        }
    }
}
