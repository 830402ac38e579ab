//! The store against a simple model: every command, expiry on a moving clock, CAS, counters,
//! and under memory pressure the LRU bookkeeping and the memory bound.

use std::collections::BTreeMap;
use std::time::Duration;

use concurrence_core::Timestamp;
use concurrence_examples::memcache::command::StoreMode;
use concurrence_examples::memcache::store::{ArithmeticOutcome, StoreOutcome, parse_counter};
use concurrence_examples::memcache::{Store, StoreConfig};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Store(u8, usize, Vec<u8>, i64),
    CasCurrent(usize, Vec<u8>),
    CasStale(usize, Vec<u8>),
    Delete(usize),
    Arithmetic(bool, usize, u64),
    Touch(usize, i64),
    Get(usize),
    Advance(u64),
    FlushAll,
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..6usize;
    let data = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        (0u64..1000).prop_map(|n| n.to_string().into_bytes()),
    ];
    let exptime = prop_oneof![Just(0i64), Just(-1), 1i64..5, Just(2_592_001)];
    prop_oneof![
        4 => (0u8..5, key.clone(), data.clone(), exptime.clone()).prop_map(|(m, k, d, e)| Op::Store(m, k, d, e)),
        1 => (key.clone(), data.clone()).prop_map(|(k, d)| Op::CasCurrent(k, d)),
        1 => (key.clone(), data).prop_map(|(k, d)| Op::CasStale(k, d)),
        1 => key.clone().prop_map(Op::Delete),
        2 => (any::<bool>(), key.clone(), 0u64..100).prop_map(|(i, k, d)| Op::Arithmetic(i, k, d)),
        1 => (key.clone(), exptime).prop_map(|(k, e)| Op::Touch(k, e)),
        3 => key.prop_map(Op::Get),
        1 => (0u64..3000).prop_map(Op::Advance),
        1 => Just(Op::FlushAll),
    ]
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelItem {
    data: Vec<u8>,
    flags: u32,
    /// Milliseconds; `None` never.
    expires: Option<u64>,
}

/// Unix time at the store's zero, so 2,592,001 s (just past 30 days) is an absolute time in
/// the past: expired at once.
const UNIX_AT_ZERO: u64 = 1_700_000_000;

fn expiry(exptime: i64, now_ms: u64) -> Result<Option<u64>, ()> {
    match exptime {
        e if e < 0 => Err(()),
        0 => Ok(None),
        e if e <= 2_592_000 => Ok(Some(now_ms + e.unsigned_abs() * 1000)),
        _ => Err(()),
    }
}

fn mode(m: u8) -> StoreMode {
    [
        StoreMode::Set,
        StoreMode::Add,
        StoreMode::Replace,
        StoreMode::Append,
        StoreMode::Prepend,
    ][usize::from(m)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn the_store_behaves_like_its_model(ops in proptest::collection::vec(op(), 1..80)) {
        let mut store = Store::new(StoreConfig { unix_time_at_zero: UNIX_AT_ZERO, ..StoreConfig::default() });
        let mut model: BTreeMap<usize, ModelItem> = BTreeMap::new();
        let mut now_ms = 1_000u64;
        for op in ops {
            let now = Timestamp::from_millis(now_ms);
            model.retain(|_, item| item.expires.is_none_or(|at| at > now_ms));
            match op {
                Op::Store(m, k, data, exptime) => {
                    let key = format!("k{k}");
                    let mode = mode(m);
                    let got = store.store(mode, key.as_bytes(), 7, exptime, &data, now);
                    let existing = model.get(&k).cloned();
                    let expected = match (mode, existing) {
                        (StoreMode::Add, Some(_)) | (StoreMode::Replace | StoreMode::Append | StoreMode::Prepend, None) => StoreOutcome::NotStored,
                        (StoreMode::Append | StoreMode::Prepend, Some(old)) => {
                            let data = if mode == StoreMode::Append { [old.data.as_slice(), &data].concat() } else { [data.as_slice(), &old.data].concat() };
                            model.insert(k, ModelItem { data, ..old });
                            StoreOutcome::Stored
                        }
                        _ => {
                            match expiry(exptime, now_ms) {
                                Ok(expires) => { model.insert(k, ModelItem { data, flags: 7, expires }); }
                                Err(()) => { model.remove(&k); }
                            }
                            StoreOutcome::Stored
                        }
                    };
                    prop_assert_eq!(got, expected);
                }
                Op::CasCurrent(k, data) | Op::CasStale(k, data) if !model.contains_key(&k) => {
                    let got = store.store(StoreMode::Cas(1), format!("k{k}").as_bytes(), 1, 0, &data, now);
                    prop_assert_eq!(got, StoreOutcome::NotFound);
                }
                Op::CasCurrent(k, data) => {
                    let key = format!("k{k}");
                    let unique = store.get(key.as_bytes(), None, now).map(|i| i.cas).expect("modelled as present");
                    let got = store.store(StoreMode::Cas(unique), key.as_bytes(), 1, 0, &data, now);
                    prop_assert_eq!(got, StoreOutcome::Stored);
                    model.insert(k, ModelItem { data, flags: 1, expires: None });
                }
                Op::CasStale(k, data) => {
                    let got = store.store(StoreMode::Cas(0), format!("k{k}").as_bytes(), 1, 0, &data, now);
                    prop_assert_eq!(got, StoreOutcome::Exists);
                }
                Op::Delete(k) => {
                    prop_assert_eq!(store.delete(format!("k{k}").as_bytes(), now), model.remove(&k).is_some());
                }
                Op::Arithmetic(incr, k, delta) => {
                    let got = store.arithmetic(incr, format!("k{k}").as_bytes(), delta, now);
                    let expected = match model.get_mut(&k) {
                        None => ArithmeticOutcome::NotFound,
                        Some(item) => match parse_counter(&item.data) {
                            None => ArithmeticOutcome::NonNumeric,
                            Some(old) => {
                                let new = if incr { old.wrapping_add(delta) } else { old.saturating_sub(delta) };
                                let mut text = new.to_string().into_bytes();
                                if text.len() < item.data.len() { text.resize(item.data.len(), b' '); }
                                item.data = text;
                                ArithmeticOutcome::Value(new)
                            }
                        },
                    };
                    prop_assert_eq!(got, expected);
                }
                Op::Touch(k, exptime) => {
                    let got = store.touch(format!("k{k}").as_bytes(), exptime, now);
                    prop_assert_eq!(got, model.contains_key(&k));
                    match expiry(exptime, now_ms) {
                        Ok(expires) => { if let Some(item) = model.get_mut(&k) { item.expires = expires; } }
                        Err(()) => { model.remove(&k); }
                    }
                }
                Op::Get(k) => {
                    let got = store.get(format!("k{k}").as_bytes(), None, now).map(|i| (i.value.clone(), i.flags));
                    prop_assert_eq!(got, model.get(&k).map(|i| (i.data.clone(), i.flags)));
                }
                Op::Advance(ms) => now_ms += ms,
                Op::FlushAll => {
                    store.flush_all(0, now);
                    model.clear();
                }
            }
            prop_assert!(store.check_invariants().is_ok(), "{:?}", store.check_invariants());
        }
    }

    #[test]
    fn under_memory_pressure_the_newest_item_stays_and_the_bound_holds(
        ops in proptest::collection::vec((0..40usize, 0..600usize), 1..300),
    ) {
        let limit = 4096;
        let mut store = Store::new(StoreConfig { memory_limit: limit, item_size_max: 1024, unix_time_at_zero: 0 });
        let now = Timestamp::from_millis(1);
        for (k, len) in ops {
            let key = format!("key{k}");
            let data = vec![b'v'; len];
            if store.admits(key.as_bytes(), len, 0, true, now) {
                prop_assert_eq!(store.store(StoreMode::Set, key.as_bytes(), 0, 0, &data, now), StoreOutcome::Stored);
                // The item just stored is the most recently used: never the one evicted.
                prop_assert_eq!(store.get(key.as_bytes(), None, now).map(|i| i.value.len()), Some(len));
            }
            prop_assert!(store.bytes() <= limit);
            prop_assert!(store.check_invariants().is_ok(), "{:?}", store.check_invariants());
        }
    }
}

#[test]
fn delayed_flush_invalidates_what_was_stored_before_it() {
    let mut store = Store::new(StoreConfig::default());
    let at = |s: u64| Timestamp::from_duration(Duration::from_secs(s));
    assert_eq!(
        store.store(StoreMode::Set, b"old", 0, 0, b"x", at(1)),
        StoreOutcome::Stored
    );
    store.flush_all(10, at(2));
    assert!(
        store.get(b"old", None, at(5)).is_some(),
        "valid until the flush time"
    );
    assert_eq!(
        store.store(StoreMode::Set, b"new", 0, 0, b"y", at(20)),
        StoreOutcome::Stored
    );
    assert!(store.get(b"old", None, at(12)).is_none(), "flushed at 12 s");
    assert!(
        store.get(b"new", None, at(21)).is_some(),
        "stored after the flush time"
    );
    assert_eq!(store.stats().get_flushed, 1);
}

#[test]
fn eviction_takes_the_least_recently_used() {
    let size = Store::<std::hash::RandomState>::item_size(2, 100, 0);
    let mut store = Store::new(StoreConfig {
        memory_limit: size * 3,
        ..StoreConfig::default()
    });
    let now = Timestamp::ZERO;
    for key in [b"k1", b"k2", b"k3"] {
        store.store(StoreMode::Set, key, 0, 0, &[0; 100], now);
    }
    assert!(store.get(b"k1", None, now).is_some()); // k2 is now the oldest
    store.store(StoreMode::Set, b"k4", 0, 0, &[0; 100], now);
    assert!(store.get(b"k2", None, now).is_none());
    assert!(store.get(b"k1", None, now).is_some());
    assert_eq!(store.stats().evictions, 1);
    // An item larger than all memory is refused rather than emptying the store.
    assert_eq!(
        store.store(StoreMode::Set, b"k5", 0, 0, &vec![0; size * 4], now),
        StoreOutcome::OutOfMemory
    );
    assert_eq!(store.len(), 3);
}
