//! `Faults`: what the simulated network does to the bytes, each a named knob with its unit.
//! `Faults::none()` is a perfect network (zero latency, whole writes, no failures);
//! `Faults::all()` turns every knob to a value that finds bugs without drowning the run.

use std::time::Duration;

/// The fault knobs of a [`SimNetwork`](crate::SimNetwork).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Faults {
    /// One-way delay of every segment and handshake.
    pub latency: Duration,
    /// Extra delay drawn uniformly from `0..=jitter` per segment (order within a stream is
    /// kept, as TCP keeps it).
    pub jitter: Duration,
    /// Largest segment a write is cut into; each write takes `1..=max_segment` bytes, drawn
    /// per write (short writes). `usize::MAX`: writes are taken whole.
    pub max_segment: usize,
    /// Largest read; each delivery to a session hands over `1..=max_read` bytes (short reads).
    /// `usize::MAX`: everything that arrived.
    pub max_read: usize,
    /// Bytes a receiver's kernel buffer holds before the sender must wait (flow control).
    pub receive_window: usize,
    /// Chance, per million connects, that a connect is refused although a server listens.
    pub refuse_per_million: u32,
    /// Chance, per million segments delivered, that the connection is reset instead (both
    /// ends see a reset; bytes in flight are lost, as with a real RST).
    pub reset_per_million: u32,
    /// While a link is partitioned, how often a held segment is tried again (TCP's
    /// retransmission, simplified).
    pub retransmit: Duration,
    /// Chance, per million reads or writes by an async task on a `Socket`, that the socket
    /// says "would block" although it could proceed (the task is woken again at once): code
    /// that assumes a ready socket always makes progress is caught.
    pub would_block_per_million: u32,
}

impl Faults {
    /// A perfect network: no delay, whole reads and writes, nothing refused or reset.
    #[must_use]
    pub fn none() -> Self {
        Faults {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            max_segment: usize::MAX,
            max_read: usize::MAX,
            receive_window: 256 * 1024,
            refuse_per_million: 0,
            reset_per_million: 0,
            retransmit: Duration::from_millis(200),
            would_block_per_million: 0,
        }
    }

    /// Every fault on: 1 ms latency with 2 ms jitter, writes cut to 1..=64 bytes, reads of
    /// 1..=32 bytes, an 8 KiB receive window, 1 % of connects refused, and 1 segment in 20,000
    /// resetting its connection, and 2 % of socket reads and writes answering "would block".
    #[must_use]
    pub fn all() -> Self {
        Faults {
            latency: Duration::from_millis(1),
            jitter: Duration::from_millis(2),
            max_segment: 64,
            max_read: 32,
            receive_window: 8 * 1024,
            refuse_per_million: 10_000,
            reset_per_million: 50,
            retransmit: Duration::from_millis(200),
            would_block_per_million: 20_000,
        }
    }

    /// Short reads and writes only (down to one byte), nothing lost: for protocol parsers.
    #[must_use]
    pub fn short_io() -> Self {
        Faults {
            max_segment: 7,
            max_read: 3,
            ..Faults::none()
        }
    }

    /// The preset called `name`: `none`, `all` or `short-io`.
    #[must_use]
    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "none" => Some(Faults::none()),
            "all" => Some(Faults::all()),
            "short-io" => Some(Faults::short_io()),
            _ => None,
        }
    }
}

impl Default for Faults {
    fn default() -> Self {
        Faults::none()
    }
}
