//! Shrinking a failing run's choices, as Hypothesis shrinks its choice sequences: cut the
//! tape's tail, delete runs of choices, zero them, then lower each one that is left; keep a
//! change whenever the run still fails. Every candidate is a whole deterministic run.

use concurrence_sim::Choice;

/// Shrinks `choices` while `fails` holds, in at most `budget` calls of `fails`; returns the
/// smallest failing tape found and the calls made.
pub(crate) fn shrink(
    mut choices: Vec<Choice>,
    budget: usize,
    mut fails: impl FnMut(&[Choice]) -> bool,
) -> (Vec<Choice>, usize) {
    let mut runs = 0usize;
    let mut attempt = |candidate: &[Choice], runs: &mut usize| -> bool {
        if *runs >= budget {
            return false;
        }
        *runs += 1;
        fails(candidate)
    };
    loop {
        let before = (
            choices.len(),
            nonzero(&choices),
            choices.iter().map(|&c| u128::from(c)).sum::<u128>(),
        );
        // 1. The shortest failing prefix (what is cut off reads as 0s).
        let (mut lo, mut hi) = (0, choices.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if attempt(&choices[..mid], &mut runs) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        choices.truncate(hi);
        // 2. Delete, then zero, runs of choices: long runs first.
        let mut width = (choices.len() / 2).max(1);
        while width >= 1 && !choices.is_empty() {
            let mut start = 0;
            while start < choices.len() {
                let end = (start + width).min(choices.len());
                let mut deleted = choices.clone();
                deleted.drain(start..end);
                if attempt(&deleted, &mut runs) {
                    choices = deleted;
                    continue;
                }
                if choices[start..end].iter().any(|c| *c != 0) {
                    let mut zeroed = choices.clone();
                    zeroed[start..end].fill(0);
                    if attempt(&zeroed, &mut runs) {
                        choices = zeroed;
                    }
                }
                start = end;
            }
            if width == 1 {
                break;
            }
            width /= 2;
        }
        // 3. Lower what is left: the smallest value of each choice that still fails (a binary
        //    search, as if failing were monotone in it).
        for i in 0..choices.len() {
            let (mut lo, mut hi) = (0, choices[i]);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                let mut lowered = choices.clone();
                lowered[i] = mid;
                if attempt(&lowered, &mut runs) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            choices[i] = hi;
        }
        let after = (
            choices.len(),
            nonzero(&choices),
            choices.iter().map(|&c| u128::from(c)).sum::<u128>(),
        );
        if after == before || runs >= budget {
            return (choices, runs);
        }
    }
}

fn nonzero(choices: &[Choice]) -> usize {
    choices.iter().filter(|c| **c != 0).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_that_needs_two_choices_shrinks_to_exactly_them() {
        // Fails when some choice is at least 7 and a later one is odd.
        let fails = |c: &[Choice]| {
            c.iter()
                .position(|&x| x >= 7)
                .is_some_and(|i| c[i + 1..].iter().any(|&y| y % 2 == 1))
        };
        let start: Vec<Choice> = (0..200).map(|i| (i * 7919) % 1000).collect();
        assert!(fails(&start));
        let (shrunk, runs) = shrink(start, 10_000, fails);
        assert!(fails(&shrunk));
        assert_eq!(shrunk, vec![7, 1], "after {runs} runs");
    }
}
