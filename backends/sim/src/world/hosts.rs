//! Hosts and their clocks, links between them, partitions, crashes and restarts.

use super::*;

impl World {
    /// A new host named `name`.
    pub(crate) fn host(&mut self, name: &str) -> HostId {
        let max = i64::try_from(self.faults.clock_skew.as_nanos()).unwrap_or(i64::MAX);
        let skew_ns = if max == 0 {
            0
        } else {
            // Ahead only: a clock behind the network's would stand still at zero at first.
            let span = u64::try_from(max).unwrap_or(u64::MAX).saturating_mul(2);
            i64::try_from(self.rng.borrow_mut().below(span.saturating_add(1))).unwrap_or(i64::MAX)
        };
        self.hosts.push(Host {
            name: name.to_owned(),
            up: true,
            skew_ns,
            incarnation: 0,
        });
        HostId(self.hosts.len() - 1)
    }

    /// Sets how far `host`'s clock runs ahead of the network's (negative: behind).
    pub(crate) fn set_clock_skew(&mut self, host: HostId, skew_ns: i64) {
        if let Some(h) = self.hosts.get_mut(host.0) {
            h.skew_ns = skew_ns;
        }
        self.trace.record(
            self.now,
            format_args!("h{} clock skew {skew_ns} ns", host.0),
            &[],
        );
    }

    /// `at` (network time) on `host`'s clock.
    pub(super) fn local(&self, host: HostId, at: Timestamp) -> Timestamp {
        let skew = self.hosts.get(host.0).map_or(0, |h| h.skew_ns);
        shift(at, skew)
    }

    /// `at` on `host`'s clock, in network time.
    pub(super) fn global(&self, host: HostId, at: Timestamp) -> Timestamp {
        let skew = self.hosts.get(host.0).map_or(0, |h| h.skew_ns);
        shift(at, skew.saturating_neg())
    }

    /// Now, as `host`'s clock says.
    pub(crate) fn host_now(&self, host: HostId) -> Timestamp {
        self.local(host, self.now)
    }

    /// Overrides latency, jitter and bandwidth for segments from `from` to `to`.
    pub(crate) fn set_link(&mut self, from: HostId, to: HostId, link: LinkProfile) {
        self.links.insert((from, to), link);
    }

    /// Blocks the link from `from` to `to` (one way); segments wait and are retried every
    /// `Faults::retransmit` until [`heal`](Self::heal).
    pub(crate) fn partition_one_way(&mut self, from: HostId, to: HostId) {
        if !self.partitions.contains(&(from, to)) {
            self.partitions.push((from, to));
        }
        self.trace.record(
            self.now,
            format_args!("partition h{} -> h{}", from.0, to.0),
            &[],
        );
    }

    /// Blocks both directions between `a` and `b`.
    pub(crate) fn partition(&mut self, a: HostId, b: HostId) {
        self.partition_one_way(a, b);
        self.partition_one_way(b, a);
    }

    /// Lifts every partition.
    pub(crate) fn heal(&mut self) {
        self.partitions.clear();
        self.trace.record(self.now, format_args!("heal"), &[]);
    }

    /// The host's program dies: its connections vanish without a word to their sessions (the
    /// peers see resets) and its listeners stop (connects are refused) until
    /// [`restart`](Self::restart).
    pub(crate) fn crash(&mut self, host: HostId) {
        self.hosts[host.0].up = false;
        self.hosts[host.0].incarnation += 1;
        // Its listening sockets die with it (a restarted program listens anew).
        for listener in &mut self.listeners {
            if listener.host == host {
                if let ListenerKind::Sockets(backlog) = &mut listener.kind {
                    listener.open = false;
                    backlog.queue.clear();
                    if let Some(waker) = backlog.waker.take() {
                        waker.wake();
                    }
                }
            }
        }
        self.trace
            .record(self.now, format_args!("crash h{}", host.0), &[]);
        for id in 0..self.conns.len() {
            for side in 0..2 {
                let hit = self.conns[id].ends[side]
                    .as_ref()
                    .is_some_and(|e| e.host == host && !e.done);
                if hit {
                    if let Some(end) = self.conns[id].ends[side].as_mut() {
                        end.done = true;
                        end.drop_session();
                        if let Some(raw) = end.driver.raw_mut() {
                            // The host's program is gone: its task sees a reset if it runs on.
                            end.rst_in = true;
                            raw.wake_all();
                        }
                    }
                    self.send_segment(id, side, Segment::Rst);
                }
            }
        }
    }

    /// The host's program starts again: its listeners accept anew.
    pub(crate) fn restart(&mut self, host: HostId) {
        self.hosts[host.0].up = true;
        self.trace
            .record(self.now, format_args!("restart h{}", host.0), &[]);
    }

    /// A port for a socket bound to port 0 (a fresh one each time, in order).
    pub(crate) fn ephemeral_port(&mut self) -> u16 {
        self.next_port = self.next_port.wrapping_add(1).max(32_768);
        self.next_port
    }

    /// Whether `host` is up (a task of a crashed host is not run).
    pub(crate) fn host_up(&self, host: HostId) -> bool {
        self.hosts.get(host.0).is_some_and(|h| h.up)
    }

    /// How many times `host` has crashed: a task spawned in an earlier incarnation is dead.
    pub(crate) fn incarnation(&self, host: HostId) -> u64 {
        self.hosts.get(host.0).map_or(0, |h| h.incarnation)
    }
}
