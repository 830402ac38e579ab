//! Where a server runs its per-connection tasks: any executor, through one small trait.
//!
//! The default is smol's global executor; a tokio runtime, an `async_executor::Executor` or a
//! thread pool plug in by implementing [`Spawn`].

use std::future::Future;
use std::pin::Pin;

/// A task a server hands to its executor.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Something that runs tasks in the background (detached).
pub trait Spawn: Send + Sync + 'static {
    /// Starts `task`; the server never waits for it.
    fn spawn(&self, task: Task);

    /// Called once before a server accepts: an executor that starts lazily starts now, while
    /// descriptors are surely available (default: nothing).
    fn start(&self) {}
}

/// smol's global executor (`smol::spawn(..).detach()`): threads of its own, no setup.
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolGlobal;

impl Spawn for SmolGlobal {
    fn spawn(&self, task: Task) {
        smol::spawn(task).detach();
    }

    /// smol starts its global executor's threads with the first task, and each creates a
    /// `SIGCHLD` pipe for `async-process`: started at the first connection of a server that is
    /// out of descriptors, that pipe fails and the thread panics (smol restarts it). Starting
    /// it before the first accept avoids that.
    fn start(&self) {
        smol::spawn(async {}).detach();
    }
}

impl<F> Spawn for F
where
    F: Fn(Task) + Send + Sync + 'static,
{
    fn spawn(&self, task: Task) {
        self(task);
    }
}
