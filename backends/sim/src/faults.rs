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
    /// Each new host's clock is set ahead of the network's by an offset drawn from
    /// `0..=2 × clock_skew`, so two hosts' clocks differ by up to `2 × clock_skew`, each
    /// `clock_skew` either side of their middle (as TigerBeetle's VOPR skews its replicas'
    /// clocks); what a host's sessions and tasks see as `now` is its own clock. (Offsets are
    /// never negative: a clock behind the network's would read zero, standing still, until the
    /// network's passed its offset.) Zero: every clock agrees.
    pub clock_skew: Duration,
    /// Bytes per second each direction of a connection carries (`None`: no limit); a
    /// segment leaves once the ones before it have, and then takes the latency to arrive.
    pub bandwidth: Option<u64>,
}

/// Latency, jitter and bandwidth of the segments from one host to another, overriding the
/// [`Faults`] for that link (`SimNetwork::set_link`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkProfile {
    /// One-way delay of every segment.
    pub latency: Duration,
    /// Extra delay drawn from `0..=jitter` per segment (order kept).
    pub jitter: Duration,
    /// Bytes per second (`None`: no limit).
    pub bandwidth: Option<u64>,
}

impl LinkProfile {
    /// A link with this latency, no jitter and no bandwidth limit.
    #[must_use]
    pub fn with_latency(latency: Duration) -> Self {
        LinkProfile {
            latency,
            jitter: Duration::ZERO,
            bandwidth: None,
        }
    }

    /// This link with `jitter`.
    #[must_use]
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// This link limited to `bytes_per_second`.
    #[must_use]
    pub fn bandwidth(mut self, bytes_per_second: u64) -> Self {
        self.bandwidth = Some(bytes_per_second);
        self
    }
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
            clock_skew: Duration::ZERO,
            bandwidth: None,
        }
    }

    /// Every fault on: 1 ms latency with 2 ms jitter, writes cut to 1..=64 bytes, reads of
    /// 1..=32 bytes, an 8 KiB receive window, 1 % of connects refused, and 1 segment in 20,000
    /// resetting its connection, 2 % of socket reads and writes answering "would block", and host
    /// clocks up to 500 ms apart. (No bandwidth limit: set one per link with `set_link`.)
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
            clock_skew: Duration::from_millis(500),
            bandwidth: None,
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
