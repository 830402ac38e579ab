//! Delivery: a segment arriving at its endpoint (data, FIN, RST, a passed socket), with the
//! faults that strike on arrival.

use super::*;

impl World {
    pub(super) fn on_arrive(&mut self, id: usize, from: usize) {
        let to = 1 - from;
        if self.blocked(id, from) {
            // Held by a partition: try again later (the head of the link keeps the order).
            let at = self.now + self.faults.retransmit;
            if let Some(head) = self.conns[id].links[from].in_flight.front_mut() {
                head.0 = at;
            }
            let link = &mut self.conns[id].links[from];
            link.last_at = link.last_at.max(at);
            self.schedule(at, Event::Arrive(id, from));
            return;
        }
        let Some((_, segment)) = self.conns[id].links[from].in_flight.pop_front() else {
            return;
        };
        if let Segment::Data(bytes) = &segment {
            self.conns[id].links[from].bytes_in_flight -= bytes.len();
        }
        let receiver_gone = self.conns[id].ends[to].as_ref().is_none_or(|e| e.done);
        match segment {
            Segment::Data(bytes) => {
                let n = bytes.len();
                self.trace.record_fields(
                    self.now,
                    "data",
                    &[id as u64, from as u64, n as u64],
                    &bytes,
                    || format!("c{id} {from}->{to} data {n}"),
                );
                if receiver_gone {
                    // Bytes for a closed socket: the answer is a reset.
                    self.send_segment(id, to, Segment::Rst);
                    return;
                }
                if self.rng.borrow_mut().chance(self.faults.reset_per_million) {
                    self.trace
                        .record(self.now, format_args!("c{id} reset (fault)"), &[]);
                    if let Some(end) = self.conns[id].ends[to].as_mut() {
                        end.rst_in = true;
                    }
                    self.send_segment(id, to, Segment::Rst);
                    self.pump(id, to);
                    return;
                }
                if let Some(end) = self.conns[id].ends[to].as_mut() {
                    end.rcvbuf.extend(bytes);
                }
            }
            Segment::Fin => {
                self.trace
                    .record(self.now, format_args!("c{id} {from}->{to} fin"), &[]);
                if let Some(end) = self.conns[id].ends[to].as_mut() {
                    end.fin_in = true;
                }
            }
            Segment::Fd(fd) => {
                self.trace
                    .record(self.now, format_args!("c{id} {from}->{to} fd"), &[]);
                let queued = match self.conns[id].ends[to].as_mut() {
                    Some(end) if !end.done => match end.driver.raw_mut() {
                        Some(raw) => {
                            raw.fds_in.push_back(fd.clone());
                            true
                        }
                        None => false,
                    },
                    _ => false,
                };
                if !queued {
                    // Nobody to receive it: the reference in flight is dropped.
                    self.release_fd(&fd);
                }
            }
            Segment::Rst => {
                self.trace
                    .record(self.now, format_args!("c{id} {from}->{to} rst"), &[]);
                if let Some(end) = self.conns[id].ends[to].as_mut() {
                    end.rst_in = true;
                }
            }
        }
        self.pump(id, to);
        // What the receiver took opened the window: the sender may send more.
        self.pump(id, from);
    }
}
