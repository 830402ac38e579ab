//! A scenario's transcript: what each side sent, observed and was told about the end, in
//! lines free of timing, so that every backend's run of the scenario can be compared.

use std::fmt;

/// The lines a scenario recorded, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transcript {
    lines: Vec<String>,
}

impl Transcript {
    /// An empty transcript.
    #[must_use]
    pub fn new() -> Self {
        Transcript::default()
    }

    /// Appends a line.
    pub fn line(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }

    /// The lines so far.
    #[must_use]
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Where this transcript first differs from `expected`, if it does.
    #[must_use]
    pub fn first_difference(&self, expected: &[String]) -> Option<Difference> {
        let longest = self.lines.len().max(expected.len());
        (0..longest).find_map(|i| {
            let (want, got) = (expected.get(i), self.lines.get(i));
            (want != got).then(|| Difference {
                line: i + 1,
                expected: want.cloned(),
                actual: got.cloned(),
            })
        })
    }
}

impl fmt::Display for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.lines {
            writeln!(f, "    {line}")?;
        }
        Ok(())
    }
}

/// The first line where a transcript differs from the expected one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// 1-based line number.
    pub line: usize,
    /// The expected line (`None`: the transcript is longer than expected).
    pub expected: Option<String>,
    /// The line the backend produced (`None`: the transcript ended early).
    pub actual: Option<String>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |line: &Option<String>| match line {
            Some(text) => format!("`{text}`"),
            None => "nothing (the transcript ended)".to_owned(),
        };
        write!(
            f,
            "line {}: expected {}, got {}",
            self.line,
            show(&self.expected),
            show(&self.actual)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[&str]) -> Vec<String> {
        text.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_first_difference_is_named_with_both_sides() {
        let mut t = Transcript::new();
        t.line("a");
        t.line("b");
        assert_eq!(t.first_difference(&lines(&["a", "b"])), None);
        let d = t.first_difference(&lines(&["a", "c"])).expect("differs");
        assert_eq!(d.to_string(), "line 2: expected `c`, got `b`");
        let d = t
            .first_difference(&lines(&["a", "b", "c"]))
            .expect("shorter");
        assert_eq!(d.line, 3);
        assert_eq!(d.actual, None);
        let d = t.first_difference(&lines(&["a"])).expect("longer");
        assert_eq!(d.expected, None);
        assert_eq!(d.actual.as_deref(), Some("b"));
    }
}
