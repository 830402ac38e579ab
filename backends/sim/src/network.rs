//! `SimNetwork`: the deterministic world in one thread, and the loop that runs it. Hosts serve
//! and connect `Session`s, or run async tasks that use `Socket`s; every segment, handshake,
//! deadline and task poll is an event on a virtual clock, in an order the seeded RNG decides.
//!
//! The loop: poll every woken task (in an order drawn from the RNG) until none is runnable,
//! then take the next event off the clock, and again, until nothing is left or the time given
//! is up.

use std::cell::{Cell, Ref, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use concurrence_core::{Address, ConnectionConfig, EndKind, Ended, Session, Timestamp};

use crate::buggify::BuggifyScope;
use crate::executor::{RunQueue, Scope, SimTask, enter, spawn_in};
use crate::rng::Choice;
use crate::world::World;
use crate::{Client, Faults, HostId, SimError, SimRng, Trace};

/// The simulated network. See the crate docs and `docs/simulation.md` for a walk-through.
pub struct SimNetwork {
    world: Rc<RefCell<World>>,
    queue: RunQueue,
    tasks: Rc<Cell<u64>>,
    /// Each host's program, started again by `restart` after a `crash`.
    programs: Vec<(HostId, Program)>,
    /// Which `buggify!()` sites are on for this run, kept between `run*` calls.
    buggify_sites: Rc<RefCell<BTreeMap<&'static str, bool>>>,
    /// Told about the run when the network is dropped (a seed runner collects its choices,
    /// events and trace this way).
    on_finish: Option<FinishHook>,
}

/// What `on_finish` calls when the network is dropped.
type FinishHook = Box<dyn FnOnce(&SimNetwork)>;

/// A host's program: makes the future that is the program's main task.
type Program = Box<dyn Fn() -> Pin<Box<dyn Future<Output = ()>>>>;

impl std::fmt::Debug for SimNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimNetwork")
            .field("world", &*self.world.borrow())
            .field("runnable_tasks", &self.queue.len())
            .finish()
    }
}

impl Drop for SimNetwork {
    fn drop(&mut self) {
        if let Some(tell) = self.on_finish.take() {
            tell(self);
        }
        // Tasks hold the world and the world holds their wakers: drop the wakers and the
        // queued tasks (outside the world's borrow) so that nothing outlives the run.
        let wakers = self
            .world
            .try_borrow_mut()
            .map(|mut world| world.take_wakers())
            .unwrap_or_default();
        drop(wakers);
        self.queue.clear();
    }
}

impl SimNetwork {
    /// An empty world for `seed`, with the given faults.
    #[must_use]
    pub fn new(seed: u64, faults: Faults) -> Self {
        SimNetwork::with_rng(seed, SimRng::new(seed), faults)
    }

    /// As [`new`](Self::new), recording every random choice the run makes
    /// ([`choices`](Self::choices)): what a shrinker starts from.
    #[must_use]
    pub fn recording(seed: u64, faults: Faults) -> Self {
        SimNetwork::with_rng(seed, SimRng::recording(seed), faults)
    }

    /// A world whose every random choice (delivery splits, delays, faults, the order of
    /// tasks and events, [`choose`](Self::choose), `buggify!()`) is taken from `choices`, then
    /// 0s: the recorded choices of a seeded run replay it exactly; fewer or smaller ones make a
    /// simpler run (0 is no fault, no delay, no short read). [`seed`](Self::seed) is 0.
    #[must_use]
    pub fn from_choices(choices: Vec<Choice>, faults: Faults) -> Self {
        SimNetwork::with_rng(0, SimRng::from_choices(choices), faults)
    }

    /// As [`from_choices`](Self::from_choices), each 4 bytes of `bytes` one choice: how a
    /// fuzzer's input drives a run, so that coverage steers the search over interleavings and
    /// faults.
    #[must_use]
    pub fn from_bytes(bytes: &[u8], faults: Faults) -> Self {
        SimNetwork::with_rng(0, SimRng::from_bytes(bytes), faults)
    }

    fn with_rng(seed: u64, rng: SimRng, faults: Faults) -> Self {
        SimNetwork {
            world: Rc::new(RefCell::new(World::new(seed, rng, faults))),
            queue: RunQueue::default(),
            tasks: Rc::new(Cell::new(0)),
            programs: Vec::new(),
            buggify_sites: Rc::default(),
            on_finish: None,
        }
    }

    /// Calls `tell` with the network when it is dropped, after the scenario is done with it:
    /// how a seed runner collects a run's choices, event count and trace without the scenario
    /// handing them over.
    #[must_use]
    pub fn on_finish(mut self, tell: impl FnOnce(&SimNetwork) + 'static) -> Self {
        self.on_finish = Some(Box::new(tell));
        self
    }

    /// The choices this run drew so far, when it records them ([`recording`](Self::recording),
    /// [`from_choices`](Self::from_choices)); empty for a plain seeded run.
    #[must_use]
    pub fn choices(&self) -> Vec<Choice> {
        self.world.borrow().rng().borrow().choices().to_vec()
    }

    /// A number in `0..n` drawn from the run's choices: let a scenario pick its clients,
    /// requests and values this way, and a shrunk run has fewer and smaller ones (0 is the
    /// simplest).
    pub fn choose(&mut self, n: u64) -> u64 {
        self.world.borrow_mut().draw(n)
    }

    /// Runs `f` with this run's generator behind `buggify!()`.
    fn with_buggify<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let rng = Rc::clone(self.world.borrow().rng());
        let scope = BuggifyScope::enter(&rng, &self.buggify_sites);
        let out = f(self);
        scope.leave(&self.buggify_sites);
        out
    }

    /// Keeps the trace's readable lines (memory grows with the run).
    #[must_use]
    pub fn keep_trace(self) -> Self {
        self.world.borrow_mut().set_keep_trace();
        self
    }

    /// Caps the events (and task polls) one `run*` call may process (default 50 million).
    #[must_use]
    pub fn max_events(self, events: u64) -> Self {
        self.world.borrow_mut().set_max_events(events);
        self
    }

    /// The seed of this run.
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.world.borrow().seed()
    }

    /// Virtual time now.
    #[must_use]
    pub fn now(&self) -> Timestamp {
        self.world.borrow().now()
    }

    /// The run's trace so far.
    #[must_use]
    pub fn trace(&self) -> Ref<'_, Trace> {
        Ref::map(self.world.borrow(), World::trace)
    }

    /// The faults in force.
    #[must_use]
    pub fn faults(&self) -> Faults {
        *self.world.borrow().faults()
    }

    /// Changes the faults from now on.
    pub fn set_faults(&mut self, faults: Faults) {
        self.world.borrow_mut().set_faults(faults);
    }

    /// A new host named `name`.
    pub fn host(&mut self, name: &str) -> HostId {
        self.world.borrow_mut().host(name)
    }

    /// Serves one `Session` per connection to `address` on `host` (from `factory`, given the
    /// peer's address), each with the connection settings `config`.
    pub fn serve_session<S, F>(
        &mut self,
        host: HostId,
        address: Address,
        config: ConnectionConfig,
        factory: F,
    ) where
        S: Session + 'static,
        F: FnMut(&Address) -> S + 'static,
    {
        self.world.borrow_mut().serve_session(
            host,
            address,
            config,
            usize::MAX,
            usize::MAX,
            factory,
        );
    }

    /// Connects from `host` to `address` and runs `session` as the client, with the same
    /// lifecycle as on real sockets (connect timeout and refusal are end reasons).
    pub fn connect_session<S: Session + 'static>(
        &mut self,
        host: HostId,
        address: &Address,
        session: S,
        config: ConnectionConfig,
    ) -> Client<S> {
        self.world
            .borrow_mut()
            .connect_session(host, address, session, config)
    }

    /// The client's session and end reason, once its connection ended (taken once).
    pub fn take_client<S: Session + 'static>(&mut self, client: &Client<S>) -> Option<Ended<S>> {
        self.world.borrow_mut().take_client(client)
    }

    /// How each server-side connection ended so far: (the listener's address, the kind).
    #[must_use]
    pub fn server_ends(&self) -> Vec<(Address, EndKind)> {
        self.world.borrow().server_ends().to_vec()
    }

    /// Sets `host`'s clock `offset_ms` milliseconds ahead of the network's (negative: behind).
    /// Its sessions and tasks see that clock as `now`; deadlines run on it.
    pub fn set_clock_skew(&mut self, host: HostId, offset_ms: i64) {
        self.world
            .borrow_mut()
            .set_clock_skew(host, offset_ms.saturating_mul(1_000_000));
    }

    /// Now, as `host`'s clock says.
    #[must_use]
    pub fn host_now(&self, host: HostId) -> Timestamp {
        self.world.borrow().host_now(host)
    }

    /// Latency, jitter and bandwidth for the segments from `from` to `to`, instead of the
    /// [`Faults`]' (handshakes keep the faults' latency).
    pub fn set_link(&mut self, from: HostId, to: HostId, link: crate::LinkProfile) {
        self.world.borrow_mut().set_link(from, to, link);
    }

    /// Blocks the link from `from` to `to` (one way); segments wait and are retried every
    /// `Faults::retransmit` until [`heal`](Self::heal).
    pub fn partition_one_way(&mut self, from: HostId, to: HostId) {
        self.world.borrow_mut().partition_one_way(from, to);
    }

    /// Blocks both directions between `a` and `b`.
    pub fn partition(&mut self, a: HostId, b: HostId) {
        self.world.borrow_mut().partition(a, b);
    }

    /// Lifts every partition.
    pub fn heal(&mut self) {
        self.world.borrow_mut().heal();
    }

    /// The host's program dies: its connections vanish without a word to their sessions (the
    /// peers see resets), its listeners stop (connects are refused) and its tasks are dropped
    /// when next woken, until [`restart`](Self::restart).
    pub fn crash(&mut self, host: HostId) {
        self.world.borrow_mut().crash(host);
    }

    /// The host's program starts again: its session listeners accept anew, and every
    /// [`program`](Self::program) of the host is started afresh (its old tasks died with the
    /// crash).
    pub fn restart(&mut self, host: HostId) {
        self.world.borrow_mut().restart(host);
        let starts: Vec<_> = self
            .programs
            .iter()
            .filter(|(h, _)| *h == host)
            .map(|(_, program)| program())
            .collect();
        for future in starts {
            self.spawn(host, future).detach();
        }
    }

    /// Runs `program()` as a task on `host` now, and again each time the host
    /// [`restart`](Self::restart)s after a [`crash`](Self::crash): a server that comes back
    /// with empty memory, as a restarted process does.
    pub fn program<F, Fut>(&mut self, host: HostId, program: F)
    where
        F: Fn() -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let program: Program = Box::new(move || Box::pin(program()));
        self.spawn(host, program()).detach();
        self.programs.push((host, program));
    }

    /// Spawns `future` as a task on `host`. It runs when the network runs; inside it,
    /// [`Socket`](crate::Socket), [`SocketServer`](crate::SocketServer), [`sleep`](crate::sleep),
    /// [`spawn`](crate::spawn) and [`now`](crate::now) work on this network.
    pub fn spawn<F>(&mut self, host: HostId, future: F) -> SimTask<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let scope = self.scope(host);
        spawn_in(&scope, host, future)
    }

    /// Runs `future` as a task on `host` and the network until the task finishes; returns its
    /// output.
    ///
    /// # Errors
    /// [`SimError::Stuck`] when nothing is left to happen and the task has not finished (it
    /// waits for something that never comes: a deadlock), or [`SimError::EventLimit`].
    pub fn block_on<F>(&mut self, host: HostId, future: F) -> Result<F::Output, SimError>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.with_buggify(|this| this.block_on_inner(host, future))
    }

    fn block_on_inner<F>(&mut self, host: HostId, future: F) -> Result<F::Output, SimError>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let task = self.spawn(host, future);
        let mut processed = 0u64;
        loop {
            self.run_tasks(&mut processed)?;
            if task.is_finished() {
                break;
            }
            if !self.step(Timestamp::MAX, &mut processed)? {
                self.run_tasks(&mut processed)?;
                if task.is_finished() {
                    break;
                }
                return Err(SimError::Stuck {
                    seed: self.seed(),
                    now: self.now(),
                });
            }
        }
        let mut task = pin!(task);
        match task.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(output) => Ok(output),
            Poll::Pending => Err(SimError::Stuck {
                seed: self.seed(),
                now: self.now(),
            }),
        }
    }

    /// Runs until nothing more can happen (no event left, no task runnable).
    ///
    /// # Errors
    /// [`SimError::EventLimit`] past [`max_events`](Self::max_events).
    pub fn run(&mut self) -> Result<(), SimError> {
        self.run_until(Timestamp::MAX)
    }

    /// Runs for `duration` of virtual time, or until nothing more can happen.
    ///
    /// # Errors
    /// [`SimError::EventLimit`] past [`max_events`](Self::max_events).
    pub fn run_for(&mut self, duration: Duration) -> Result<(), SimError> {
        let end = self.now().saturating_add(duration);
        self.run_until(end)?;
        self.world.borrow_mut().advance_to(end);
        Ok(())
    }

    fn run_until(&mut self, end: Timestamp) -> Result<(), SimError> {
        self.with_buggify(|this| this.run_until_inner(end))
    }

    fn run_until_inner(&mut self, end: Timestamp) -> Result<(), SimError> {
        let mut processed = 0u64;
        loop {
            self.run_tasks(&mut processed)?;
            if !self.step(end, &mut processed)? {
                return Ok(());
            }
        }
    }

    /// Handles the next event due by `end`; false when there is none.
    fn step(&mut self, end: Timestamp, processed: &mut u64) -> Result<bool, SimError> {
        let event = self.world.borrow_mut().next_event(end);
        let Some(event) = event else {
            return Ok(false);
        };
        self.count(processed)?;
        self.world.borrow_mut().handle(event);
        Ok(true)
    }

    /// Polls woken tasks, one at a time in an order drawn from the RNG, until none is left.
    fn run_tasks(&mut self, processed: &mut u64) -> Result<(), SimError> {
        loop {
            let world = &self.world;
            let Some(runnable) = self.queue.take_picked(|waiting| {
                let index = world.borrow_mut().draw(waiting as u64);
                usize::try_from(index).unwrap_or_default()
            }) else {
                return Ok(());
            };
            let info = *runnable.metadata();
            let alive = {
                let world = self.world.borrow();
                world.host_up(info.host) && world.incarnation(info.host) == info.incarnation
            };
            if !alive {
                // Its host crashed (maybe restarted since): the task died with it.
                drop(runnable);
                continue;
            }
            self.count(processed)?;
            self.world
                .borrow_mut()
                .record_poll(info.number, info.host.index());
            enter(self.scope(info.host), || runnable.run());
        }
    }

    fn count(&self, processed: &mut u64) -> Result<(), SimError> {
        *processed += 1;
        let cap = self.world.borrow().max_events();
        if *processed > cap {
            return Err(SimError::EventLimit {
                seed: self.seed(),
                events: cap,
                now: self.now(),
            });
        }
        Ok(())
    }

    fn scope(&self, host: HostId) -> Scope {
        Scope {
            world: Rc::clone(&self.world),
            queue: self.queue.clone(),
            tasks: Rc::clone(&self.tasks),
            host,
        }
    }
}
