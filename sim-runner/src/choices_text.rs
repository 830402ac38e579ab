//! A tape of choices as text, for a replay command: `LEN:INDEX=HEX,INDEX=HEX,…` (only the
//! nonzero choices are written; a shrunk run has few).

use concurrence_sim::Choice;

/// `choices` as `LEN:INDEX=HEX,…`.
///
/// ```
/// use concurrence_sim_runner::{choices_from_text, choices_to_text};
/// let text = choices_to_text(&[0, 3, 0, 255]);
/// assert_eq!(text, "4:1=3,3=ff");
/// assert_eq!(choices_from_text(&text), Some(vec![0, 3, 0, 255]));
/// ```
#[must_use]
pub fn choices_to_text(choices: &[Choice]) -> String {
    let nonzero: Vec<String> = choices
        .iter()
        .enumerate()
        .filter(|(_, c)| **c != 0)
        .map(|(i, c)| format!("{i}={c:x}"))
        .collect();
    format!("{}:{}", choices.len(), nonzero.join(","))
}

/// Parses what [`choices_to_text`] wrote; `None` for anything else.
#[must_use]
pub fn choices_from_text(text: &str) -> Option<Vec<Choice>> {
    let (len, rest) = text.trim().split_once(':')?;
    let len: usize = len.parse().ok()?;
    let mut choices = vec![0; len];
    for pair in rest.split(',').filter(|p| !p.is_empty()) {
        let (index, value) = pair.split_once('=')?;
        let index: usize = index.parse().ok()?;
        *choices.get_mut(index)? = Choice::from_str_radix(value, 16).ok()?;
    }
    Some(choices)
}
