//! Raw sockets: what the async `Socket` calls from inside a task (connect, listen, accept,
//! read, write, shut down, close) and descriptor passing over Unix streams.

use super::*;

impl World {
    /// Starts a connect from `host` to `address` for a task; returns the connection's id.
    pub(crate) fn raw_connect(&mut self, host: HostId, address: &Address) -> usize {
        let id = self.conns.len();
        self.conns.push(SimConn {
            ends: [
                Some(Box::new(Endpoint::raw_socket(
                    host,
                    ConnectState::Connecting,
                ))),
                None,
            ],
            links: [Link::default(), Link::default()],
            server_address: address.clone(),
        });
        self.trace.record(
            self.now,
            format_args!(
                "c{id} connect {} -> {address} (socket)",
                self.hosts[host.0].name
            ),
            &[],
        );
        let at = self.now + self.delay();
        self.schedule(at, Event::Syn(id));
        id
    }

    /// Whether connection `id`'s connect finished.
    pub(crate) fn poll_connected(
        &mut self,
        id: usize,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let Some(end) = self.conns.get_mut(id).and_then(|c| c.ends[0].as_mut()) else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        let Some(raw) = end.driver.raw_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        match raw.connect {
            ConnectState::Established => Poll::Ready(Ok(())),
            ConnectState::Refused => Poll::Ready(Err(io::ErrorKind::ConnectionRefused.into())),
            ConnectState::Connecting if end.rst_in => {
                Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()))
            }
            ConnectState::Connecting => {
                raw.reader = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// A listening socket on `host` at `address`, holding up to `backlog` established
    /// connections; returns the listener's index.
    pub(crate) fn raw_listen(
        &mut self,
        host: HostId,
        address: Address,
        backlog: usize,
    ) -> io::Result<usize> {
        if self
            .listeners
            .iter()
            .any(|l| l.open && l.address == address)
        {
            return Err(io::ErrorKind::AddrInUse.into());
        }
        self.trace.record(
            self.now,
            format_args!("h{} listens on {address}", host.0),
            &[],
        );
        self.listeners.push(Listener {
            host,
            address,
            kind: ListenerKind::Sockets(Backlog {
                queue: VecDeque::new(),
                limit: backlog.max(1),
                waker: None,
            }),
            open: true,
            handles: 1,
        });
        Ok(self.listeners.len() - 1)
    }

    /// The next established connection of listener `index`: its id and the peer's address.
    pub(crate) fn poll_accept(
        &mut self,
        index: usize,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(usize, Address)>> {
        let Some(listener) = self.listeners.get_mut(index) else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        if !listener.open || !self.hosts[listener.host.0].up {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        }
        let ListenerKind::Sockets(backlog) = &mut listener.kind else {
            return Poll::Ready(Err(io::ErrorKind::InvalidInput.into()));
        };
        match backlog.queue.pop_front() {
            Some(accepted) => Poll::Ready(Ok(accepted)),
            None => {
                backlog.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Closes listener `index`: later connects are refused, queued ones are reset.
    pub(crate) fn close_listener(&mut self, index: usize) {
        let Some(listener) = self.listeners.get_mut(index) else {
            return;
        };
        listener.handles = listener.handles.saturating_sub(1);
        if listener.handles > 0 {
            return;
        }
        listener.open = false;
        let queued: Vec<usize> = match &mut listener.kind {
            ListenerKind::Sockets(backlog) => backlog.queue.drain(..).map(|(id, _)| id).collect(),
            ListenerKind::Sessions { .. } => Vec::new(),
        };
        for id in queued {
            self.close_socket(id, 1);
        }
    }

    /// Reads what has arrived for endpoint (`id`, `side`): at most what the faults' short
    /// reads allow; 0 at the peer's end of stream; a reset as an error.
    pub(crate) fn poll_read(
        &mut self,
        id: usize,
        side: usize,
        buf: &mut [u8],
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let max_read = self.faults.max_read;
        let would_block = self
            .rng
            .borrow_mut()
            .chance(self.faults.would_block_per_million);
        let Some(end) = self.conns.get_mut(id).and_then(|c| c.ends[side].as_mut()) else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        let Some(raw) = end.driver.raw_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        if end.rst_in {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if end.rcvbuf.is_empty() {
            if end.fin_in {
                return Poll::Ready(Ok(0));
            }
            raw.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        if would_block {
            // A spurious "would block": the task must cope with being woken for nothing.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let n = buf
            .len()
            .min(end.rcvbuf.len())
            .min(self.rng.borrow_mut().size(max_read));
        take_front(&mut end.rcvbuf, &mut buf[..n]);
        // What was taken opened the window: the peer may send more.
        self.pump(id, 1 - side);
        Poll::Ready(Ok(n))
    }

    /// Hands bytes to endpoint (`id`, `side`)'s send buffer: at most what the faults' short
    /// writes allow and the buffer has room for.
    pub(crate) fn poll_write(
        &mut self,
        id: usize,
        side: usize,
        buf: &[u8],
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let max_segment = self.faults.max_segment;
        let would_block = self
            .rng
            .borrow_mut()
            .chance(self.faults.would_block_per_million);
        let Some(end) = self.conns.get_mut(id).and_then(|c| c.ends[side].as_mut()) else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        let Some(raw) = end.driver.raw_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        if end.rst_in {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        if raw.shutdown || raw.closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let room = SEND_BUFFER.saturating_sub(raw.sndbuf.len());
        if room == 0 || would_block {
            if would_block {
                cx.waker().wake_by_ref();
            } else {
                raw.writer = Some(cx.waker().clone());
            }
            return Poll::Pending;
        }
        let n = buf
            .len()
            .min(room)
            .min(self.rng.borrow_mut().size(max_segment));
        raw.sndbuf.extend(&buf[..n]);
        self.pump(id, side);
        Poll::Ready(Ok(n))
    }

    /// The task shut down its write side: a FIN follows what is buffered.
    pub(crate) fn shutdown_write(&mut self, id: usize, side: usize) {
        if let Some(raw) = self
            .conns
            .get_mut(id)
            .and_then(|c| c.ends[side].as_mut())
            .and_then(|e| e.driver.raw_mut())
        {
            raw.shutdown = true;
        }
        self.pump(id, side);
    }

    /// The task closed (or dropped) its socket: buffered bytes are still sent, then a FIN; a
    /// reset instead if input was left unread, as a real stack does.
    /// The task aborts its socket: the close that follows sends a reset.
    pub(crate) fn abort_socket(&mut self, id: usize, side: usize) {
        if let Some(raw) = self
            .conns
            .get_mut(id)
            .and_then(|c| c.ends[side].as_mut())
            .and_then(|e| e.driver.raw_mut())
        {
            raw.abort = true;
        }
    }

    pub(crate) fn close_socket(&mut self, id: usize, side: usize) {
        if let Some(raw) = self
            .conns
            .get_mut(id)
            .and_then(|c| c.ends[side].as_mut())
            .and_then(|e| e.driver.raw_mut())
        {
            raw.handles = raw.handles.saturating_sub(1);
            if raw.handles > 0 {
                // Another socket (a passed copy) still refers to it.
                return;
            }
            raw.closed = true;
        }
        self.pump(id, side);
    }

    /// Passes `fd` over the Unix stream (`id`, `side`); the receiver gets it from
    /// `read_socket`. The passed socket stays open here too.
    pub(crate) fn send_fd(&mut self, id: usize, side: usize, fd: PassedFd) -> io::Result<()> {
        let Some(end) = self.conns.get(id).and_then(|c| c.ends[side].as_ref()) else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        let Some(raw) = end.driver.raw_ref() else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        if end.rst_in {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        if raw.shutdown || raw.closed || raw.connect != ConnectState::Established {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        match &fd {
            PassedFd::Stream { id, side, .. } => {
                if let Some(raw) = self
                    .conns
                    .get_mut(*id)
                    .and_then(|c| c.ends[*side].as_mut())
                    .and_then(|e| e.driver.raw_mut())
                {
                    raw.handles += 1;
                }
            }
            PassedFd::Listener { index, .. } => {
                if let Some(listener) = self.listeners.get_mut(*index) {
                    listener.handles += 1;
                }
            }
        }
        self.send_segment(id, side, Segment::Fd(fd));
        Ok(())
    }

    /// The next socket passed to (`id`, `side`); `None` at end of stream.
    pub(crate) fn poll_recv_fd(
        &mut self,
        id: usize,
        side: usize,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<Option<PassedFd>>> {
        let Some(end) = self.conns.get_mut(id).and_then(|c| c.ends[side].as_mut()) else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        let Some(raw) = end.driver.raw_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        if end.rst_in {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        if let Some(fd) = raw.fds_in.pop_front() {
            return Poll::Ready(Ok(Some(fd)));
        }
        if end.fin_in {
            return Poll::Ready(Ok(None));
        }
        raw.reader = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Drops one reference to a passed socket (a message that could not be delivered).
    pub(super) fn release_fd(&mut self, fd: &PassedFd) {
        match fd {
            PassedFd::Stream { id, side, .. } => self.close_socket(*id, *side),
            PassedFd::Listener { index, .. } => self.close_listener(*index),
        }
    }

    /// The drain rule for a raw endpoint: segment the send buffer within the window, send the
    /// FIN or reset the task asked for, wake the task where it can make progress.
    pub(super) fn pump_raw(&mut self, id: usize, side: usize) {
        let (max_segment, window) = (self.faults.max_segment, self.faults.receive_window);
        let peer_buffered = self.conns[id].ends[1 - side]
            .as_ref()
            .map_or(0, |e| e.rcvbuf.len());
        let mut outgoing: Vec<Segment> = Vec::new();
        let mut finished = false;
        {
            let SimConn { ends, links, .. } = &mut self.conns[id];
            let Some(end) = ends[side].as_mut() else {
                return;
            };
            let Some(raw) = end.driver.raw_mut() else {
                return;
            };
            if end.done || raw.connect != ConnectState::Established {
                if raw.closed {
                    end.done = true;
                }
                return;
            }
            if raw.closed && (!end.rcvbuf.is_empty() || end.rst_in || raw.abort) {
                // Closed with unread input (or already reset): a reset, nothing more.
                if !end.rst_in {
                    outgoing.push(Segment::Rst);
                }
                raw.sndbuf.clear();
                end.done = true;
                finished = true;
            } else {
                let mut in_flight = links[side].bytes_in_flight;
                while !raw.sndbuf.is_empty() && !end.rst_in {
                    let room = window.saturating_sub(in_flight + peer_buffered);
                    if room == 0 {
                        break;
                    }
                    let n = raw
                        .sndbuf
                        .len()
                        .min(room)
                        .min(self.rng.borrow_mut().size(max_segment));
                    let mut segment = vec![0; n];
                    take_front(&mut raw.sndbuf, &mut segment);
                    outgoing.push(Segment::Data(segment));
                    in_flight += n;
                }
                if (raw.shutdown || raw.closed)
                    && raw.sndbuf.is_empty()
                    && !end.fin_sent
                    && !end.rst_in
                {
                    outgoing.push(Segment::Fin);
                    end.fin_sent = true;
                }
                if raw.closed && (end.fin_sent || end.rst_in) {
                    end.done = true;
                    finished = true;
                }
                if raw.sndbuf.len() < SEND_BUFFER || end.rst_in {
                    if let Some(waker) = raw.writer.take() {
                        waker.wake();
                    }
                }
                if !end.rcvbuf.is_empty() || !raw.fds_in.is_empty() || end.fin_in || end.rst_in {
                    if let Some(waker) = raw.reader.take() {
                        waker.wake();
                    }
                }
            }
        }
        for segment in outgoing {
            self.send_segment(id, side, segment);
        }
        if finished {
            self.trace.record(
                self.now,
                format_args!("c{id} side {side} socket closed"),
                &[],
            );
        }
    }
}
