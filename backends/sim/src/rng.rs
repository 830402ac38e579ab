//! `SimRng`: the simulation's only source of randomness. Either seeded (xoshiro256** through
//! SplitMix64, written out here so that its output can never change under a dependency update:
//! a seed printed today replays the same run after any `cargo update`), or a tape of recorded
//! *choices* (a shrunk failure, or a fuzzer's input), where every draw's zero is its simplest
//! outcome: no fault, no delay, no short read, first-come order.

/// One draw's value on a choice tape. A seeded run can record its draws as choices
/// ([`SimRng::recording`]); replaying them ([`SimRng::from_choices`]) takes every decision the
/// seed took, and a shrinker may then delete or lower them.
pub type Choice = u64;

#[derive(Debug, Clone)]
enum Source {
    Seeded([u64; 4]),
    /// Choices to replay; past the end every choice is 0.
    Tape {
        choices: Vec<Choice>,
        next: usize,
    },
}

/// The simulation's generator: seeded (xoshiro256**) or replaying a choice tape.
#[derive(Debug, Clone)]
pub struct SimRng {
    source: Source,
    /// Every draw's choice, when recording.
    recorded: Option<Vec<Choice>>,
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SimRng {
    /// A generator for `seed`; the same seed always gives the same sequence.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        let mut state = seed;
        SimRng {
            source: Source::Seeded([
                splitmix64(&mut state),
                splitmix64(&mut state),
                splitmix64(&mut state),
                splitmix64(&mut state),
            ]),
            recorded: None,
        }
    }

    /// A generator for `seed` that records every draw as a [`Choice`] ([`choices`](Self::choices)).
    #[must_use]
    pub fn recording(seed: u64) -> Self {
        SimRng {
            recorded: Some(Vec::new()),
            ..SimRng::new(seed)
        }
    }

    /// A generator that replays `choices` (then 0s): the recorded draws of a seeded run
    /// replay it exactly.
    #[must_use]
    pub fn from_choices(choices: Vec<Choice>) -> Self {
        SimRng {
            source: Source::Tape { choices, next: 0 },
            recorded: Some(Vec::new()),
        }
    }

    /// A generator whose choices come from arbitrary bytes (a fuzzer's input): each 4 bytes,
    /// little-endian, are one choice; missing bytes are 0.
    #[must_use]
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let choices = bytes
            .chunks(4)
            .map(|chunk| {
                let mut word = [0u8; 4];
                word[..chunk.len()].copy_from_slice(chunk);
                u64::from(u32::from_le_bytes(word))
            })
            .collect();
        SimRng::from_choices(choices)
    }

    /// The choices drawn so far (recording or replaying generators; empty otherwise).
    #[must_use]
    pub fn choices(&self) -> &[Choice] {
        self.recorded.as_deref().unwrap_or(&[])
    }

    /// The next raw choice: from the seed, or from the tape.
    fn draw(&mut self) -> u64 {
        match &mut self.source {
            Source::Seeded(s) => {
                let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
                let t = s[1] << 17;
                s[2] ^= s[0];
                s[3] ^= s[1];
                s[1] ^= s[2];
                s[0] ^= s[3];
                s[2] ^= t;
                s[3] = s[3].rotate_left(45);
                result
            }
            Source::Tape { choices, next } => {
                let choice = choices.get(*next).copied().unwrap_or(0);
                *next += 1;
                choice
            }
        }
    }

    fn is_tape(&self) -> bool {
        matches!(self.source, Source::Tape { .. })
    }

    fn record(&mut self, choice: Choice) {
        if let Some(recorded) = &mut self.recorded {
            recorded.push(choice);
        }
    }

    /// The next 64 random bits (on a tape: the choice itself).
    pub fn next_u64(&mut self) -> u64 {
        let value = self.draw();
        self.record(value);
        value
    }

    /// A number in `0..n` (0 when `n` is 0; on a tape: the choice modulo `n`, so 0 is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let raw = self.draw();
        let value = if self.is_tape() {
            raw % n
        } else {
            // Multiply-shift: unbiased enough for a simulator, and stable.
            let product = u128::from(raw) * u128::from(n);
            u64::try_from(product >> 64).unwrap_or(0)
        };
        self.record(value);
        value
    }

    /// A size in `1..=max` (1 when `max` is 0 or 1). On a tape the choice counts down from
    /// `max`: 0 is the whole size (no short read or write).
    pub fn size(&mut self, max: usize) -> usize {
        let max = u64::try_from(max.max(1)).unwrap_or(u64::MAX);
        let raw = self.draw();
        let value = if self.is_tape() {
            max - raw % max
        } else {
            let product = u128::from(raw) * u128::from(max);
            u64::try_from(product >> 64).unwrap_or(0) + 1
        };
        self.record(max - value);
        usize::try_from(value).unwrap_or(1)
    }

    /// True with probability `per_million` / 1,000,000 (no draw when it is 0). On a tape, 0
    /// is "no".
    pub fn chance(&mut self, per_million: u32) -> bool {
        if per_million == 0 {
            return false;
        }
        let threshold = 1_000_000 - u64::from(per_million.min(1_000_000));
        let raw = self.draw();
        let yes = if self.is_tape() {
            raw % 1_000_000 >= threshold
        } else {
            let product = u128::from(raw) * 1_000_000;
            u64::try_from(product >> 64).unwrap_or(0) < u64::from(per_million)
        };
        self.record(if yes { threshold } else { 0 });
        yes
    }
}

#[cfg(test)]
mod tests {
    use super::SimRng;

    #[test]
    fn the_sequence_for_a_seed_never_changes() {
        // Pinned outputs: if these change, every printed replay command breaks.
        let mut rng = SimRng::new(42);
        let first: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        let mut again = SimRng::new(42);
        let second: Vec<u64> = (0..3).map(|_| again.next_u64()).collect();
        assert_eq!(first, second);
        assert_eq!(first, PINNED);
        assert_ne!(SimRng::new(43).next_u64(), first[0]);
    }

    const PINNED: [u64; 3] = [
        1_546_998_764_402_558_742,
        6_990_951_692_964_543_102,
        12_544_586_762_248_559_009,
    ];

    #[test]
    fn bounded_draws_stay_in_range() {
        let mut rng = SimRng::new(7);
        for _ in 0..10_000 {
            assert!(rng.below(10) < 10);
            let s = rng.size(5);
            assert!((1..=5).contains(&s));
        }
        assert!(!rng.chance(0));
        assert!(rng.chance(1_000_000));
    }

    #[test]
    fn recorded_choices_replay_every_draw_and_zero_is_the_simplest_outcome() {
        let mut seeded = SimRng::recording(9);
        let drawn: Vec<u64> = (0..500)
            .map(|i| match i % 4 {
                0 => seeded.below(17),
                1 => seeded.size(4096) as u64,
                2 => u64::from(seeded.chance(300_000)),
                _ => seeded.next_u64(),
            })
            .collect();
        let mut replay = SimRng::from_choices(seeded.choices().to_vec());
        let again: Vec<u64> = (0..500)
            .map(|i| match i % 4 {
                0 => replay.below(17),
                1 => replay.size(4096) as u64,
                2 => u64::from(replay.chance(300_000)),
                _ => replay.next_u64(),
            })
            .collect();
        assert_eq!(drawn, again);
        assert_eq!(replay.choices(), seeded.choices());
        // Past the tape's end every draw is its simplest outcome.
        let mut empty = SimRng::from_bytes(&[]);
        assert_eq!(empty.below(10), 0);
        assert_eq!(empty.size(1460), 1460);
        assert!(!empty.chance(999_999));
        assert_eq!(empty.next_u64(), 0);
    }
}
