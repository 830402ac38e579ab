//! The linearizability checker against the plainest possible model of it: try every order of
//! the operations (every subset of the ambiguous ones, every effect the model allows) that
//! respects real time. On small random histories of the CAS register both must agree.

use concurrence_core::Timestamp;
use concurrence_testkit::history::{
    CasRegister, History, Model, Operation, RegisterOp, RegisterRet, check_linearizable,
};
use proptest::prelude::*;

type Op = Operation<RegisterOp, RegisterRet>;

/// Every order, by brute force: extend `order` with any operation not yet used whose
/// invocation precedes the completion of every completed operation not yet used.
fn brute_force(ops: &[Op], used: &mut Vec<bool>, state: &CasRegister) -> bool {
    let pending_completed: Vec<usize> = (0..ops.len())
        .filter(|&i| !used[i] && ops[i].completed.is_some())
        .collect();
    if pending_completed.is_empty() {
        return true;
    }
    let first_return = pending_completed
        .iter()
        .filter_map(|&i| ops[i].completed.as_ref().map(|(_, seq, _)| *seq))
        .min()
        .unwrap_or(u64::MAX);
    for i in 0..ops.len() {
        if used[i] || ops[i].invoked_seq >= first_return {
            continue;
        }
        let next: Vec<CasRegister> = match &ops[i].completed {
            Some((_, _, ret)) => state.step(&ops[i].op, ret).into_iter().collect(),
            None => state.step_unknown(&ops[i].op),
        };
        used[i] = true;
        let found = next.iter().any(|s| brute_force(ops, used, s));
        used[i] = false;
        if found {
            return true;
        }
    }
    false
}

/// An event of a generated history: a client invokes an op, or completes its oldest one.
#[derive(Debug, Clone)]
enum Step {
    Invoke(usize, RegisterOp),
    Complete(usize, RegisterRet),
}

fn op() -> impl Strategy<Value = RegisterOp> {
    prop_oneof![
        Just(RegisterOp::Get),
        (0u8..3).prop_map(|v| RegisterOp::Set(vec![b'a' + v])),
        Just(RegisterOp::Delete),
        ((0u8..3), (1u64..4)).prop_map(|(v, c)| RegisterOp::Cas(vec![b'a' + v], c)),
    ]
}

fn ret() -> impl Strategy<Value = RegisterRet> {
    prop_oneof![
        ((0u8..3), (1u64..4)).prop_map(|(v, c)| RegisterRet::Value(vec![b'a' + v], c)),
        Just(RegisterRet::Missing),
        Just(RegisterRet::Stored),
        Just(RegisterRet::Deleted),
        Just(RegisterRet::Exists),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        ((0usize..3), op()).prop_map(|(c, o)| Step::Invoke(c, o)),
        ((0usize..3), ret()).prop_map(|(c, r)| Step::Complete(c, r)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn the_checker_agrees_with_trying_every_order(steps in prop::collection::vec(step(), 0..14)) {
        let history = History::<RegisterOp, RegisterRet>::new();
        let mut open: Vec<Vec<_>> = vec![Vec::new(); 3];
        for step in steps {
            match step {
                Step::Invoke(c, o) if open[c].len() < 2 => {
                    open[c].push(history.invoke(c, o, Timestamp::ZERO));
                }
                Step::Complete(c, r) if !open[c].is_empty() => {
                    let id = open[c].remove(0);
                    history.complete(id, r, Timestamp::ZERO);
                }
                _ => {}
            }
        }
        let ops = history.operations();
        let mut used = vec![false; ops.len()];
        let expected = brute_force(&ops, &mut used, &CasRegister::default());
        let got = check_linearizable(&CasRegister::default(), &ops);
        prop_assert_eq!(got.is_ok(), expected, "{:?}\n{:?}", ops, got);
    }
}
