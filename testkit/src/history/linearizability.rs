//! The linearizability check: Wing & Gong's search for an order of the operations that
//! respects real time (an operation that completed before another was invoked comes first)
//! and that the sequential model accepts, with every visited (operations taken, model state)
//! pair remembered so that no state is searched twice (Lowe's optimisation, as in Porcupine).
//! Ambiguous operations may be placed anywhere after their invocation, with any effect the
//! model allows, or left out.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, DefaultHasher, Hash};

use super::Operation;

/// A sequential specification: the state of the object after each operation.
pub trait Model: Clone + Eq + Hash + fmt::Debug {
    /// An operation.
    type Op: fmt::Debug;
    /// An operation's result.
    type Ret: fmt::Debug;

    /// The state after `op` returned `ret` here, or `None` if this state cannot return it.
    fn step(&self, op: &Self::Op, ret: &Self::Ret) -> Option<Self>;

    /// The states an operation whose result was lost may have left: each effect it may have
    /// had (leaving it out of the order altogether is the checker's business).
    fn step_unknown(&self, op: &Self::Op) -> Vec<Self>;
}

/// No order of the history fits the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotLinearizable {
    /// Which part of the history (a key, for [`check_per_key`]; empty otherwise).
    pub part: String,
    /// The most operations any order placed before it got stuck.
    pub placed: usize,
    /// The completed operations of that part.
    pub completed: usize,
    /// The operations that could come next at the deepest point, none of which fits, and the
    /// model state there.
    pub stuck_at: String,
}

impl fmt::Display for NotLinearizable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not linearizable{}: at most {} of {} completed operations could be placed; then {}",
            if self.part.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.part)
            },
            self.placed,
            self.completed,
            self.stuck_at
        )
    }
}

impl std::error::Error for NotLinearizable {}

/// A keyed history: each operation is `(key, op)`.
pub type KeyedOperations<K, M> = [Operation<(K, <M as Model>::Op), <M as Model>::Ret>];

/// One key's part of a keyed history.
type Part<M> = Vec<Operation<<M as Model>::Op, <M as Model>::Ret>>;

/// Deterministic hashing for the visited set (no random seed: the same history searches the
/// same way every time).
type Visited<M> = HashSet<(Vec<u64>, M), BuildHasherDefault<DefaultHasher>>;

struct Search<'a, M: Model> {
    ops: &'a [Operation<M::Op, M::Ret>],
    visited: Visited<M>,
    completed: usize,
    deepest: usize,
    stuck_at: String,
}

/// Decides whether `history`, started from `initial`, is linearizable.
///
/// # Errors
/// [`NotLinearizable`] with how far the best order got.
pub fn check_linearizable<M: Model>(
    initial: &M,
    history: &[Operation<M::Op, M::Ret>],
) -> Result<(), NotLinearizable> {
    let completed = history.iter().filter(|o| o.completed.is_some()).count();
    let mut search = Search {
        ops: history,
        visited: Visited::default(),
        completed,
        deepest: 0,
        stuck_at: String::new(),
    };
    let taken = vec![0u64; history.len().div_ceil(64)];
    if search.from(&taken, 0, initial) {
        Ok(())
    } else {
        Err(NotLinearizable {
            part: String::new(),
            placed: search.deepest,
            completed,
            stuck_at: search.stuck_at,
        })
    }
}

/// [`check_linearizable`] on each key of a keyed history (operations `(key, op)`): the keys of
/// a key-value store are independent objects, so each is checked alone, a far smaller search.
///
/// # Errors
/// The first key, in key order, whose history is not linearizable.
pub fn check_per_key<M, K>(
    initial: &M,
    history: &KeyedOperations<K, M>,
) -> Result<(), NotLinearizable>
where
    M: Model,
    M::Op: Clone,
    M::Ret: Clone,
    K: Ord + Clone + fmt::Debug,
{
    let mut parts: BTreeMap<K, Part<M>> = BTreeMap::new();
    for operation in history {
        parts
            .entry(operation.op.0.clone())
            .or_default()
            .push(Operation {
                client: operation.client,
                op: operation.op.1.clone(),
                invoked_at: operation.invoked_at,
                invoked_seq: operation.invoked_seq,
                completed: operation.completed.clone(),
            });
    }
    for (key, part) in parts {
        check_linearizable(initial, &part).map_err(|mut e| {
            e.part = format!("key {key:?}");
            e
        })?;
    }
    Ok(())
}

fn is_taken(taken: &[u64], i: usize) -> bool {
    taken[i / 64] & (1 << (i % 64)) != 0
}

impl<M: Model> Search<'_, M> {
    /// Whether the operations not in `taken` (`placed` completed ones are) can follow, from
    /// `state`.
    fn from(&mut self, taken: &[u64], placed: usize, state: &M) -> bool {
        if placed == self.completed {
            return true;
        }
        if !self.visited.insert((taken.to_vec(), state.clone())) {
            return false;
        }
        // An operation may come next if it was invoked before every operation still to be
        // placed completed.
        let first_return = self
            .ops
            .iter()
            .enumerate()
            .filter(|(i, _)| !is_taken(taken, *i))
            .filter_map(|(_, o)| o.completed.as_ref().map(|(_, seq, _)| *seq))
            .min()
            .unwrap_or(u64::MAX);
        let candidates: Vec<usize> = (0..self.ops.len())
            .filter(|&i| !is_taken(taken, i) && self.ops[i].invoked_seq < first_return)
            .collect();
        for &i in &candidates {
            let operation = &self.ops[i];
            let (next_states, counts) = match &operation.completed {
                Some((_, _, ret)) => (state.step(&operation.op, ret).into_iter().collect(), 1),
                None => (state.step_unknown(&operation.op), 0),
            };
            let mut next = taken.to_vec();
            next[i / 64] |= 1 << (i % 64);
            for next_state in next_states {
                if self.from(&next, placed + counts, &next_state) {
                    return true;
                }
            }
        }
        if placed >= self.deepest {
            self.deepest = placed;
            let next: Vec<String> = candidates
                .iter()
                .filter(|&&i| self.ops[i].completed.is_some())
                .map(|&i| {
                    let o = &self.ops[i];
                    let ret = o.completed.as_ref().map(|(_, _, r)| r);
                    format!("client {} {:?} -> {:?}", o.client, o.op, ret)
                })
                .collect();
            self.stuck_at = format!("none of [{}] fits the state {state:?}", next.join(", "));
        }
        false
    }
}
