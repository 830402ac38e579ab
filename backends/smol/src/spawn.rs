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
}

/// smol's global executor (`smol::spawn(..).detach()`): threads of its own, no setup.
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolGlobal;

impl Spawn for SmolGlobal {
    fn spawn(&self, task: Task) {
        smol::spawn(task).detach();
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
