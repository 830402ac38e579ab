//! `CasRegister`: one key of a cache with compare-and-swap (memcached's `get`/`gets`, `set`,
//! `delete`, `cas`), with a cache's documented semantics: the key may be forgotten at any time
//! (eviction, a restart), so a miss is always possible, but a value is never invented and
//! never comes back once overwritten, deleted or forgotten. CAS ids are the server's: the
//! model learns each version's id when a `gets` shows it.

use super::Model;

/// An operation on one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RegisterOp {
    /// `get` / `gets`.
    Get,
    /// `set` to a value.
    Set(Vec<u8>),
    /// `delete`.
    Delete,
    /// `cas` to a value if the item's CAS id is still the one given.
    Cas(Vec<u8>, u64),
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RegisterRet {
    /// A hit: the value and its CAS id.
    Value(Vec<u8>, u64),
    /// A miss (`END` alone), or `NOT_FOUND` for `delete` / `cas`.
    Missing,
    /// `STORED`.
    Stored,
    /// `DELETED`.
    Deleted,
    /// `EXISTS`: the CAS id did not match.
    Exists,
}

/// The key's state: absent, or a value with the CAS id a `gets` showed for this version (if
/// one did).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct CasRegister {
    /// The value and its CAS id, if known.
    pub item: Option<(Vec<u8>, Option<u64>)>,
}

impl Model for CasRegister {
    type Op = RegisterOp;
    type Ret = RegisterRet;

    fn step(&self, op: &RegisterOp, ret: &RegisterRet) -> Option<Self> {
        let absent = CasRegister { item: None };
        match (op, ret) {
            // A miss is always possible: the key may have been forgotten.
            (RegisterOp::Get, RegisterRet::Missing) => Some(absent),
            (RegisterOp::Get, RegisterRet::Value(value, cas)) => match &self.item {
                Some((held, known)) if held == value && known.is_none_or(|k| k == *cas) => {
                    Some(CasRegister {
                        item: Some((held.clone(), Some(*cas))),
                    })
                }
                _ => None,
            },
            (RegisterOp::Set(value), RegisterRet::Stored) => Some(CasRegister {
                item: Some((value.clone(), None)),
            }),
            (RegisterOp::Delete, RegisterRet::Deleted) => self.item.as_ref().map(|_| absent),
            (RegisterOp::Delete | RegisterOp::Cas(..), RegisterRet::Missing) => Some(absent),
            // A CAS id no `gets` showed for this version cannot be this version's (ids are
            // unique per modification), so only a known, equal id stores.
            (RegisterOp::Cas(value, cas), RegisterRet::Stored) => match &self.item {
                Some((_, Some(known))) if known == cas => Some(CasRegister {
                    item: Some((value.clone(), None)),
                }),
                _ => None,
            },
            (RegisterOp::Cas(_, cas), RegisterRet::Exists) => match &self.item {
                Some((_, known)) if *known != Some(*cas) => Some(self.clone()),
                _ => None,
            },
            _ => None,
        }
    }

    fn step_unknown(&self, op: &RegisterOp) -> Vec<Self> {
        let absent = CasRegister { item: None };
        match op {
            RegisterOp::Get => vec![self.clone()],
            RegisterOp::Set(value) => vec![CasRegister {
                item: Some((value.clone(), None)),
            }],
            RegisterOp::Delete => vec![absent],
            RegisterOp::Cas(value, cas) => match &self.item {
                Some((_, Some(known))) if known == cas => vec![CasRegister {
                    item: Some((value.clone(), None)),
                }],
                _ => vec![self.clone()],
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{History, check_linearizable};
    use concurrence_core::Timestamp;

    type H = History<RegisterOp, RegisterRet>;

    fn set(v: &str) -> RegisterOp {
        RegisterOp::Set(v.as_bytes().to_vec())
    }

    fn value(v: &str, cas: u64) -> RegisterRet {
        RegisterRet::Value(v.as_bytes().to_vec(), cas)
    }

    /// Records `ops` one after another (each completes before the next is invoked).
    fn sequential(ops: &[(RegisterOp, Option<RegisterRet>)]) -> H {
        let history = H::new();
        for (op, ret) in ops {
            let id = history.invoke(0, op.clone(), Timestamp::ZERO);
            if let Some(ret) = ret {
                history.complete(id, ret.clone(), Timestamp::ZERO);
            }
        }
        history
    }

    fn check(history: &H) -> Result<(), crate::history::NotLinearizable> {
        check_linearizable(&CasRegister::default(), &history.operations())
    }

    #[test]
    fn a_sequential_run_of_the_cache_is_linearizable_and_a_miss_is_always_allowed() {
        let history = sequential(&[
            (set("a"), Some(RegisterRet::Stored)),
            (RegisterOp::Get, Some(value("a", 7))),
            (RegisterOp::Cas(b"b".to_vec(), 7), Some(RegisterRet::Stored)),
            (RegisterOp::Get, Some(value("b", 8))),
            (RegisterOp::Get, Some(RegisterRet::Missing)), // forgotten: allowed
            (RegisterOp::Delete, Some(RegisterRet::Missing)),
        ]);
        assert_eq!(check(&history), Ok(()));
    }

    #[test]
    fn a_stale_read_an_invented_value_and_a_value_back_from_the_dead_are_caught() {
        let stale = sequential(&[
            (set("1"), Some(RegisterRet::Stored)),
            (set("2"), Some(RegisterRet::Stored)),
            (RegisterOp::Get, Some(value("1", 3))),
        ]);
        let e = check(&stale).unwrap_err();
        assert_eq!((e.placed, e.completed), (2, 3), "{e}");
        let invented = sequential(&[(RegisterOp::Get, Some(value("x", 1)))]);
        assert!(check(&invented).is_err());
        let resurrected = sequential(&[
            (set("1"), Some(RegisterRet::Stored)),
            (RegisterOp::Get, Some(RegisterRet::Missing)),
            (RegisterOp::Get, Some(value("1", 3))),
        ]);
        assert!(check(&resurrected).is_err());
    }

    #[test]
    fn a_cas_id_stores_once_per_version() {
        let twice = sequential(&[
            (set("a"), Some(RegisterRet::Stored)),
            (RegisterOp::Get, Some(value("a", 5))),
            (RegisterOp::Cas(b"b".to_vec(), 5), Some(RegisterRet::Stored)),
            (RegisterOp::Cas(b"c".to_vec(), 5), Some(RegisterRet::Stored)),
        ]);
        assert!(check(&twice).is_err());
        let unseen = sequential(&[
            (set("a"), Some(RegisterRet::Stored)),
            (RegisterOp::Cas(b"b".to_vec(), 5), Some(RegisterRet::Stored)),
        ]);
        assert!(
            check(&unseen).is_err(),
            "no gets showed id 5 for this version"
        );
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order_and_a_lost_reply_either_way() {
        // Two overlapping sets, then a read of either value: both fine.
        for read in ["1", "2"] {
            let history = H::new();
            let a = history.invoke(0, set("1"), Timestamp::ZERO);
            let b = history.invoke(1, set("2"), Timestamp::ZERO);
            history.complete(a, RegisterRet::Stored, Timestamp::ZERO);
            history.complete(b, RegisterRet::Stored, Timestamp::ZERO);
            let g = history.invoke(0, RegisterOp::Get, Timestamp::ZERO);
            history.complete(g, value(read, 9), Timestamp::ZERO);
            assert_eq!(check(&history), Ok(()), "read {read}");
        }
        // A set whose reply was lost may have happened, or not.
        for read in [Some(value("lost", 4)), Some(value("kept", 4))] {
            let history = sequential(&[
                (set("kept"), Some(RegisterRet::Stored)),
                (set("lost"), None),
                (RegisterOp::Get, read.clone()),
            ]);
            assert_eq!(check(&history), Ok(()), "{read:?}");
        }
        // But an operation that completed before another was invoked comes first.
        let history = H::new();
        let a = history.invoke(0, set("1"), Timestamp::ZERO);
        history.complete(a, RegisterRet::Stored, Timestamp::ZERO);
        let b = history.invoke(1, set("2"), Timestamp::ZERO);
        history.complete(b, RegisterRet::Stored, Timestamp::ZERO);
        let g = history.invoke(0, RegisterOp::Get, Timestamp::ZERO);
        history.complete(g, value("1", 9), Timestamp::ZERO);
        assert!(check(&history).is_err());
    }
}
