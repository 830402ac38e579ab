//! Buggify: fault points in the user's own code, as FoundationDB's `BUGGIFY`. Outside a
//! running simulation they are always false (one thread-local look); inside one, each site is
//! switched on for the run with a seeded probability the first time it is reached, and a site
//! that is on fires with its own probability each time. Every draw comes from the run's
//! generator, so a failing run replays and its buggify choices shrink like the network's.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::SimRng;

/// The run's generator, shared by the world and the buggify sites.
pub(crate) type SharedRng = Rc<RefCell<SimRng>>;

/// The chance, per million, that a `buggify!()` site is switched on for a run (FoundationDB
/// uses 25 %).
pub const BUGGIFY_SITE_PER_MILLION: u32 = 250_000;

/// The chance, per million, that a switched-on `buggify!()` site fires when reached.
pub const BUGGIFY_FIRE_PER_MILLION: u32 = 250_000;

struct Active {
    rng: SharedRng,
    /// Whether each site reached so far is on for this run (ordered: no random hashing).
    sites: BTreeMap<&'static str, bool>,
}

thread_local! {
    static ACTIVE: RefCell<Option<Active>> = const { RefCell::new(None) };
}

/// While alive, buggify sites on this thread draw from `rng` (a simulation is running).
pub(crate) struct BuggifyScope {
    /// What was active before (restored on leaving); `None` inside once left.
    previous: Option<Option<Active>>,
}

impl BuggifyScope {
    pub(crate) fn enter(
        rng: &SharedRng,
        sites: &Rc<RefCell<BTreeMap<&'static str, bool>>>,
    ) -> Self {
        let active = Active {
            rng: Rc::clone(rng),
            sites: std::mem::take(&mut *sites.borrow_mut()),
        };
        let previous = ACTIVE.with(|a| a.borrow_mut().replace(active));
        BuggifyScope {
            previous: Some(previous),
        }
    }

    /// Leaves the scope, handing the sites' states back to the network for its next run call.
    pub(crate) fn leave(mut self, sites: &Rc<RefCell<BTreeMap<&'static str, bool>>>) {
        let previous = self.previous.take().flatten();
        let ours = ACTIVE.with(|a| std::mem::replace(&mut *a.borrow_mut(), previous));
        if let Some(ours) = ours {
            *sites.borrow_mut() = ours.sites;
        }
    }
}

impl Drop for BuggifyScope {
    fn drop(&mut self) {
        // Left by a panic: restore what was active before.
        if let Some(previous) = self.previous.take() {
            ACTIVE.with(|a| *a.borrow_mut() = previous);
        }
    }
}

/// True with probability `per_million` / 1,000,000 inside a running simulation (drawn from
/// the run's generator), always false outside one.
///
/// ```
/// // Outside a simulation: never.
/// assert!(!concurrence_sim::buggify_with(1_000_000));
/// ```
#[must_use]
pub fn buggify_with(per_million: u32) -> bool {
    ACTIVE.with(|a| {
        a.borrow()
            .as_ref()
            .is_some_and(|active| active.rng.borrow_mut().chance(per_million))
    })
}

/// The site `site` (a `file:line`, as `buggify!()` names it): switched on for this run with
/// [`BUGGIFY_SITE_PER_MILLION`] when first reached, then firing with
/// [`BUGGIFY_FIRE_PER_MILLION`] each time it is on. Always false outside a simulation.
#[must_use]
pub fn buggify_site(site: &'static str) -> bool {
    ACTIVE.with(|a| {
        let mut active = a.borrow_mut();
        let Some(active) = active.as_mut() else {
            return false;
        };
        let on = match active.sites.get(site) {
            Some(on) => *on,
            None => {
                let on = active.rng.borrow_mut().chance(BUGGIFY_SITE_PER_MILLION);
                active.sites.insert(site, on);
                on
            }
        };
        on && active.rng.borrow_mut().chance(BUGGIFY_FIRE_PER_MILLION)
    })
}

/// A fault point in your own code: false outside the simulator; inside it, true now and then
/// (the site is on for a quarter of the runs, and fires a quarter of the times it is reached
/// then), so that your code takes its rare paths: a slow disk, an early timeout, a dropped
/// cache entry.
///
/// ```
/// fn cache_lookup(key: &str) -> Option<String> {
///     if concurrence_sim::buggify!() {
///         return None; // pretend the entry was evicted
///     }
///     Some(key.to_uppercase())
/// }
/// assert_eq!(cache_lookup("a"), Some("A".to_owned())); // outside a simulation: never fires
/// ```
#[macro_export]
macro_rules! buggify {
    () => {
        $crate::buggify_site(concat!(file!(), ":", line!(), ":", column!()))
    };
}
