//! `seed_range`: the `A..B` seed ranges the simulation programs take on their command line
//! (`--seeds 0..300`), parsed in one place.

use std::ops::Range;

/// Parses `A..B` (B excluded, A < B) into a range of seeds; `None` for anything else.
///
/// ```
/// assert_eq!(concurrence_sim::parse_seed_range("3..7"), Some(3..7));
/// assert_eq!(concurrence_sim::parse_seed_range("7..3"), None);
/// ```
#[must_use]
pub fn parse_seed_range(text: &str) -> Option<Range<u64>> {
    let (a, b) = text.split_once("..")?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a < b).then_some(a..b)
}
