//! `Inbox`: the bytes a connection was not ready for. A multishot receive keeps delivering
//! after the connection's reader filled (until its cancellation takes effect), so what the
//! connection did not take waits here, in order, with an end of stream that arrived behind
//! those bytes, to be handed over on the connection's next turns.

/// Received bytes waiting for their connection, and whether the end of stream is behind them.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    bytes: Vec<u8>,
    /// Bytes before this were handed over (compacted away once all were).
    start: usize,
    eof: bool,
}

impl Inbox {
    /// Whether no bytes wait.
    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.bytes.len()
    }

    /// `data` arrived: with nothing waiting, `take` offers it to the connection (and says how
    /// much it took); the rest waits, after anything already waiting.
    pub(crate) fn arrived(&mut self, data: &[u8], take: impl FnOnce(&[u8]) -> usize) {
        let taken = if self.is_empty() && !self.eof {
            take(data).min(data.len())
        } else {
            0
        };
        if taken < data.len() {
            if self.is_empty() {
                self.bytes.clear();
                self.start = 0;
            }
            self.bytes.extend_from_slice(&data[taken..]);
        }
    }

    /// The peer's end of stream arrived: `true` if it is due now (no bytes wait before it);
    /// otherwise [`hand_over`](Self::hand_over) reports it after the last byte.
    pub(crate) fn ended(&mut self) -> bool {
        if self.is_empty() {
            true
        } else {
            self.eof = true;
            false
        }
    }

    /// Moves waiting bytes into `room`: how many, and whether the end of stream is due now
    /// (it was behind them, and they are all handed over).
    pub(crate) fn hand_over(&mut self, room: &mut [u8]) -> (usize, bool) {
        let waiting = &self.bytes[self.start..];
        let n = room.len().min(waiting.len());
        room[..n].copy_from_slice(&waiting[..n]);
        self.start += n;
        if self.is_empty() {
            self.bytes.clear();
            self.start = 0;
            // Nothing waits: give the memory back rather than hold a burst's worth.
            if self.bytes.capacity() > 64 * 1024 {
                self.bytes = Vec::new();
            }
            return (n, std::mem::take(&mut self.eof));
        }
        (n, false)
    }
}

#[cfg(test)]
mod tests {
    use super::Inbox;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        /// `len` bytes arrive; the connection takes at most `takes` of them if offered.
        Arrive { len: usize, takes: usize },
        /// The connection's turn offers a room of `room` bytes (taken from the inbox while
        /// bytes wait there).
        Turn { room: usize },
        /// End of stream arrives.
        End,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (1usize..300, 0usize..400).prop_map(|(len, takes)| Step::Arrive { len, takes }),
            4 => (0usize..300).prop_map(|room| Step::Turn { room }),
            1 => Just(Step::End),
        ]
    }

    proptest! {
        /// Against the simplest model (the connection's input is the concatenation of every
        /// arrival, then one end of stream): every byte reaches the connection once, in
        /// order, and the end of stream is told exactly once, after the last byte.
        #[test]
        fn bytes_reach_the_connection_in_order_and_the_end_after_them(
            steps in proptest::collection::vec(step(), 0..60)
        ) {
            let mut inbox = Inbox::default();
            let (mut sent, mut got): (Vec<u8>, Vec<u8>) = (Vec::new(), Vec::new());
            let (mut ended, mut told_end) = (false, 0);
            let mut next = 0u8;
            for step in steps {
                match step {
                    Step::Arrive { len, takes } => {
                        if ended {
                            continue; // nothing arrives after the end of stream
                        }
                        let data: Vec<u8> = (0..len).map(|_| { next = next.wrapping_add(1); next }).collect();
                        sent.extend_from_slice(&data);
                        let mut offered_after_end = false;
                        inbox.arrived(&data, |offered| {
                            offered_after_end = told_end > 0;
                            let n = takes.min(offered.len());
                            got.extend_from_slice(&offered[..n]);
                            n
                        });
                        prop_assert!(!offered_after_end, "bytes after the end of stream");
                    }
                    Step::Turn { room } => {
                        // The loop hands over only while bytes wait (else it receives).
                        if inbox.is_empty() {
                            continue;
                        }
                        let mut buf = vec![0u8; room];
                        let (n, end_now) = inbox.hand_over(&mut buf);
                        prop_assert_eq!(told_end, 0, "a turn after the end of stream was told");
                        got.extend_from_slice(&buf[..n]);
                        if end_now {
                            told_end += 1;
                            prop_assert!(inbox.is_empty());
                        }
                    }
                    Step::End => {
                        if ended {
                            continue;
                        }
                        ended = true;
                        if inbox.ended() {
                            told_end += 1;
                        }
                    }
                }
                prop_assert!(sent.starts_with(&got), "out of order or invented bytes");
            }
            // Drain: turns with room until nothing waits.
            while !inbox.is_empty() {
                let mut buf = vec![0u8; 97];
                let (n, end_now) = inbox.hand_over(&mut buf);
                got.extend_from_slice(&buf[..n]);
                told_end += usize::from(end_now);
            }
            prop_assert_eq!(&got, &sent, "every byte, once, in order");
            prop_assert_eq!(told_end, usize::from(ended), "the end of stream told once, if it came");
        }
    }

    #[test]
    fn an_end_behind_waiting_bytes_is_told_after_the_last_of_them() {
        let mut inbox = Inbox::default();
        inbox.arrived(b"abcdef", |_| 2);
        assert!(!inbox.ended(), "four bytes still wait");
        let mut room = [0u8; 3];
        assert_eq!(inbox.hand_over(&mut room), (3, false));
        assert_eq!(&room, b"cde");
        assert_eq!(inbox.hand_over(&mut room), (1, true));
        assert_eq!(room[0], b'f');
    }
}
