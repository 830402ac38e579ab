//! `Trace`: what happened in a run, as a hash (always) and as lines people can read (when
//! asked). Two runs of one seed must give the same hash; the lines show where they part.

use std::fmt::Write;

use concurrence_core::Timestamp;

/// FNV-1a, 64 bits: a stable hash with no seed of its own.
#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    /// FNV-1a over 8-byte words (then the tail byte by byte): the same mixing, an eighth of
    /// the multiplications on a data segment.
    fn bytes(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            self.0 ^= u64::from_le_bytes(w);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
        for &b in words.remainder() {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    fn word(&mut self, word: u64) {
        self.0 ^= word;
        self.0 = self.0.wrapping_mul(Self::PRIME);
    }
}

/// Hashes what is written to it, formatting nothing into memory.
impl Write for Fnv {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}

/// The record of a run.
#[derive(Debug, Clone)]
pub struct Trace {
    hash: Fnv,
    events: u64,
    lines: Option<Vec<String>>,
    /// The line being recorded, reused: recording allocates nothing unless lines are kept.
    scratch: String,
}

impl Trace {
    pub(crate) fn new(keep_lines: bool) -> Self {
        Trace {
            hash: Fnv::new(),
            events: 0,
            lines: keep_lines.then(Vec::new),
            scratch: String::new(),
        }
    }

    /// Records one event at `now`: `what` names it, `data` is hashed too (not printed). The
    /// hash takes the time as a number and `what` as it formats, without building a line;
    /// the line is built only when lines are kept.
    pub(crate) fn record(&mut self, now: Timestamp, what: std::fmt::Arguments<'_>, data: &[u8]) {
        self.events += 1;
        let nanos = u64::try_from(now.since_epoch().as_nanos()).unwrap_or(u64::MAX);
        self.hash.word(nanos);
        let _ = self.hash.write_fmt(what);
        self.hash.bytes(data);
        if let Some(lines) = &mut self.lines {
            self.scratch.clear();
            let _ = write!(
                self.scratch,
                "{:>12.6}s {what}",
                now.since_epoch().as_secs_f64()
            );
            lines.push(self.scratch.clone());
        }
    }

    /// Records a frequent event by its fields (a tag and numbers, hashed as they are, with
    /// `data`), formatting its line with `line` only when lines are kept: the hot events
    /// (task polls, segments) cost no formatting.
    pub(crate) fn record_fields(
        &mut self,
        now: Timestamp,
        tag: &'static str,
        fields: &[u64],
        data: &[u8],
        line: impl FnOnce() -> String,
    ) {
        self.events += 1;
        let nanos = u64::try_from(now.since_epoch().as_nanos()).unwrap_or(u64::MAX);
        self.hash.word(nanos);
        self.hash.bytes(tag.as_bytes());
        for &field in fields {
            self.hash.word(field);
        }
        self.hash.bytes(data);
        if let Some(lines) = &mut self.lines {
            lines.push(format!(
                "{:>12.6}s {}",
                now.since_epoch().as_secs_f64(),
                line()
            ));
        }
    }

    /// The hash of everything recorded so far.
    #[must_use]
    pub fn hash(&self) -> u64 {
        self.hash.0
    }

    /// How many events were recorded.
    #[must_use]
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The readable lines, if the network was built to keep them
    /// ([`SimNetwork::keep_trace`](crate::SimNetwork::keep_trace)).
    #[must_use]
    pub fn lines(&self) -> Option<&[String]> {
        self.lines.as_deref()
    }

    /// Where two runs that should be the same part: `None` when their hashes agree, else the
    /// first event that differs (both traces must keep their lines to name it).
    #[must_use]
    pub fn first_difference(&self, other: &Trace) -> Option<Divergence> {
        if self.hash() == other.hash() && self.events == other.events {
            return None;
        }
        let (Some(ours), Some(theirs)) = (self.lines(), other.lines()) else {
            return Some(Divergence {
                event: 0,
                first: None,
                second: None,
            });
        };
        let event = ours
            .iter()
            .zip(theirs)
            .position(|(a, b)| a != b)
            .unwrap_or(ours.len().min(theirs.len()));
        Some(Divergence {
            event,
            first: ours.get(event).cloned(),
            second: theirs.get(event).cloned(),
        })
    }
}

/// The first event where two runs of one seed differ (a determinism bug).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// Its index among the recorded events.
    pub event: usize,
    /// The event in the first run (`None`: it ended there, or lines were not kept).
    pub first: Option<String>,
    /// The event in the second run.
    pub second: Option<String>,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |line: &Option<String>| line.clone().unwrap_or_else(|| "(nothing)".to_owned());
        write!(
            f,
            "the runs part at event {}: first run `{}`, second run `{}`",
            self.event,
            show(&self.first),
            show(&self.second)
        )
    }
}

/// `bytes` as a quoted, escaped string of at most 40 bytes (then `…`), for trace lines.
pub(crate) fn escaped(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(40)];
    let mut text: String = shown.escape_ascii().to_string();
    if bytes.len() > shown.len() {
        text.push('…');
    }
    format!("\"{text}\"")
}

#[cfg(test)]
mod tests {
    use super::Trace;
    use concurrence_core::Timestamp;

    #[test]
    fn the_first_differing_event_is_named() {
        let (mut a, mut b) = (Trace::new(true), Trace::new(true));
        for (trace, last) in [(&mut a, "x"), (&mut b, "y")] {
            trace.record(Timestamp::ZERO, format_args!("same"), &[]);
            trace.record(Timestamp::ZERO, format_args!("{last}"), &[]);
        }
        assert_eq!(a.first_difference(&a.clone()), None);
        let divergence = a.first_difference(&b).expect("they differ");
        assert_eq!(divergence.event, 1);
        assert!(divergence.to_string().contains("x"), "{divergence}");
    }
}
