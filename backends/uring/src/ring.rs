//! The one module of this crate allowed `unsafe` (docs/architecture.md lists it): an io_uring
//! whose submissions name memory the kernel writes or reads after the call returns. `Ring`
//! owns every such piece of memory until the operation's last completion has been reaped:
//!
//! - the provided receive buffers (one registered buffer ring, [`BUFFER_GROUP`]): the kernel
//!   picks one per receive; it is ours again only once we give it back to the ring;
//! - the bytes of each send and the address of each connect, kept in `owned` under the
//!   operation's `user_data` until its completion;
//! - nothing else: polls, cancels and receives into provided buffers name no memory of ours.
//!
//! Dropping a `Ring` cancels every operation in flight and waits for their completions before
//! any of that memory is freed (or leaks it, should waiting fail: never frees it early).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use io_uring::{IoUring, cqueue, opcode, squeue, types};
use slab::Slab;

/// The provided-buffer group every receive selects from.
pub(crate) const BUFFER_GROUP: u16 = 0;

/// What an operation was, as its completion says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// A readiness poll (the listener, the wake-up fd).
    Poll,
    /// A receive into a provided buffer.
    Recv,
    /// A send of owned bytes.
    Send,
    /// A connect to an owned address.
    Connect,
    /// A cancellation (its completion carries nothing).
    Cancel,
}

impl Op {
    const fn code(self) -> u64 {
        match self {
            Op::Poll => 1,
            Op::Recv => 2,
            Op::Send => 3,
            Op::Connect => 4,
            Op::Cancel => 5,
        }
    }

    fn from_code(code: u64) -> Option<Op> {
        Some(match code {
            1 => Op::Poll,
            2 => Op::Recv,
            3 => Op::Send,
            4 => Op::Connect,
            5 => Op::Cancel,
            _ => return None,
        })
    }
}

/// Memory an operation names, held until its completion.
enum Owned {
    Send(Vec<u8>),
    /// Never read here: held so that the kernel can read it.
    #[allow(dead_code)]
    Address(Box<socket2::SockAddr>),
}

/// One completion, decoded.
#[derive(Debug)]
pub(crate) struct Completion {
    pub(crate) op: Op,
    /// The key the operation was submitted with (a connection's slot, or a loop's own key).
    pub(crate) key: u32,
    /// The result: bytes moved (or 0), or the OS error.
    pub(crate) result: io::Result<usize>,
    /// More completions follow for this operation (a multishot poll).
    pub(crate) more: bool,
    /// The provided buffer a receive filled: read it with [`Ring::received`], then
    /// [`Ring::give_back`].
    pub(crate) buffer: Option<u16>,
    /// A send's bytes, back to be reused.
    pub(crate) sent: Option<Vec<u8>>,
}

/// One page of the buffer ring's entries, page-aligned as the kernel requires.
#[repr(C, align(4096))]
struct RingPage([u8; 4096]);

/// Size of one `io_uring_buf` entry.
const ENTRY_SIZE: usize = 16;

/// The registered buffer ring and the memory of its buffers.
struct ProvidedBuffers {
    /// The ring of entries (`count` of them), shared with the kernel.
    entries: Box<[RingPage]>,
    /// `count` buffers of `size` bytes, one after another.
    data: Box<[u8]>,
    count: u16,
    size: usize,
    /// Our producer index (the ring's tail), wrapping.
    tail: u16,
}

impl ProvidedBuffers {
    fn new(count: u16, size: usize) -> ProvidedBuffers {
        let pages = (usize::from(count) * ENTRY_SIZE).div_ceil(4096).max(1);
        let entries = (0..pages).map(|_| RingPage([0; 4096])).collect();
        ProvidedBuffers {
            entries,
            data: vec![0; usize::from(count) * size].into_boxed_slice(),
            count,
            size,
            tail: 0,
        }
    }

    fn base(&mut self) -> *mut types::BufRingEntry {
        self.entries.as_mut_ptr().cast()
    }

    /// Puts buffer `bid` at the tail (not yet published: see [`publish`](Self::publish)).
    fn push(&mut self, bid: u16) {
        let mask = self.count - 1;
        let index = usize::from(self.tail & mask);
        let addr = self.data[usize::from(bid) * self.size..].as_mut_ptr() as u64;
        let len = u32::try_from(self.size).unwrap_or(u32::MAX);
        let base = self.base();
        // SAFETY: `index < count`, and `entries` holds at least `count` 16-byte entries
        // (`new` sized it so), so the pointer stays inside the allocation; `BufRingEntry` is
        // `repr(transparent)` over the kernel's 16-byte `io_uring_buf`. The kernel only reads
        // entries between its head and our published tail, and this one is past the tail
        // until `publish`. Writing `addr`, `len` and `bid` leaves `resv` alone, which in entry
        // 0 is the shared tail. Exercised by every test that receives
        // (`conformance/tests/event_loop_servers.rs` on uring, the conformance suite).
        let entry = unsafe { &mut *base.add(index) };
        entry.set_addr(addr);
        entry.set_len(len);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Publishes the tail: the kernel may take every buffer pushed so far.
    fn publish(&mut self) {
        let base = self.base();
        // SAFETY: the tail is the `resv` field of entry 0, inside `entries`, 2-byte aligned;
        // the kernel reads it with an acquire load, and we are its only writer, so a release
        // store through an `AtomicU16` view publishes the entries written before it.
        let tail = unsafe {
            &*types::BufRingEntry::tail(base)
                .cast_mut()
                .cast::<std::sync::atomic::AtomicU16>()
        };
        tail.store(self.tail, std::sync::atomic::Ordering::Release);
    }
}

/// An io_uring with its provided receive buffers and the memory its operations name.
pub(crate) struct Ring {
    uring: IoUring,
    buffers: ProvidedBuffers,
    /// Send bytes and connect addresses, by `user_data`'s owned index.
    owned: Slab<Owned>,
    /// Operations submitted (or queued) whose last completion has not been reaped.
    in_flight: usize,
    /// Operations queued and not yet submitted.
    queued: usize,
}

/// How a ring is sized.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RingSize {
    /// Submission queue entries.
    pub(crate) entries: u32,
    /// Provided receive buffers (a power of two, at most 32,768).
    pub(crate) buffers: u16,
    /// Bytes per provided buffer.
    pub(crate) buffer_size: usize,
}

fn user_data(op: Op, key: u32, owned: usize) -> u64 {
    ((owned as u64) << 40) | (u64::from(key) << 8) | op.code()
}

impl Ring {
    /// A ring with its buffer ring registered.
    ///
    /// # Errors
    /// The kernel refused io_uring or the buffer ring (the caller says which is missing).
    pub(crate) fn new(size: RingSize) -> io::Result<Ring> {
        let count = size.buffers.clamp(1, 32_768).next_power_of_two();
        let uring = IoUring::builder()
            .setup_cqsize(size.entries.saturating_mul(8))
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(size.entries)?;
        let mut buffers = ProvidedBuffers::new(count, size.buffer_size.max(1));
        let addr = buffers.base() as u64;
        // SAFETY: `entries` holds `count` entries, page-aligned, and lives in this `Ring`
        // until after the ring fd is closed (`Drop` waits for every operation first; the
        // fields drop after it, `uring` before `buffers` by declaration order).
        unsafe {
            uring
                .submitter()
                .register_buf_ring_with_flags(addr, count, BUFFER_GROUP, 0)?;
        }
        for bid in 0..count {
            buffers.push(bid);
        }
        buffers.publish();
        Ok(Ring {
            uring,
            buffers,
            owned: Slab::new(),
            in_flight: 0,
            queued: 0,
        })
    }

    /// Queues `entry` (submitting what is queued first when the queue is full).
    ///
    /// # Safety
    /// Every piece of memory `entry` names must stay valid until its last completion.
    unsafe fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: passed on from the caller.
            if unsafe { self.uring.submission().push(entry) }.is_ok() {
                self.in_flight += 1;
                self.queued += 1;
                return Ok(());
            }
            self.submit()?;
        }
    }

    fn submit(&mut self) -> io::Result<()> {
        match self.uring.submit() {
            Ok(_) => {
                self.queued = 0;
                Ok(())
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A poll for `events` on `fd` (multishot if `multi`). Returns its `user_data`, to cancel.
    pub(crate) fn poll(
        &mut self,
        fd: RawFd,
        key: u32,
        events: u32,
        multi: bool,
    ) -> io::Result<u64> {
        let data = user_data(Op::Poll, key, 0);
        let entry = opcode::PollAdd::new(types::Fd(fd), events)
            .multi(multi)
            .build()
            .user_data(data);
        // SAFETY: a poll names no memory.
        unsafe { self.push(&entry) }?;
        Ok(data)
    }

    /// One receive of at most `max` bytes on `fd` into a provided buffer; `poll_first` skips
    /// the first attempt (the socket was drained: wait for data before trying). Returns its
    /// `user_data`, to cancel.
    pub(crate) fn recv(
        &mut self,
        fd: RawFd,
        key: u32,
        max: usize,
        poll_first: bool,
    ) -> io::Result<u64> {
        let data = user_data(Op::Recv, key, 0);
        let len = u32::try_from(max.min(self.buffers.size)).unwrap_or(u32::MAX);
        let ioprio = if poll_first { 1 } else { 0 }; // IORING_RECVSEND_POLL_FIRST
        let entry = opcode::Recv::new(types::Fd(fd), std::ptr::null_mut(), len)
            .buf_group(BUFFER_GROUP)
            .ioprio(ioprio)
            .build()
            .flags(squeue::Flags::BUFFER_SELECT)
            .user_data(data);
        // SAFETY: the kernel writes only into a buffer of the registered ring, which `self`
        // owns until its drop has reaped every completion; the buffer it picks stays out of
        // the ring until `give_back`.
        unsafe { self.push(&entry) }?;
        Ok(data)
    }

    /// A multishot receive on `fd`: a completion (flagged `more`) each time data arrives, in
    /// a buffer the kernel picks from the provided ring, until end of stream, an error, the
    /// ring running dry (`ENOBUFS`) or [`cancel`](Self::cancel) ends it. Returns its
    /// `user_data`, to cancel.
    pub(crate) fn recv_multishot(&mut self, fd: RawFd, key: u32) -> io::Result<u64> {
        let data = user_data(Op::Recv, key, 0);
        let entry = opcode::RecvMulti::new(types::Fd(fd), BUFFER_GROUP)
            .build()
            .user_data(data);
        // SAFETY: the kernel writes only into buffers of the registered ring, which `self`
        // owns until its drop has reaped every completion; a buffer it picks stays out of the
        // ring until `give_back`.
        unsafe { self.push(&entry) }?;
        Ok(data)
    }

    /// A send of `bytes` on `fd` (no `SIGPIPE`); the bytes come back with the completion.
    pub(crate) fn send(&mut self, fd: RawFd, key: u32, bytes: Vec<u8>) -> io::Result<()> {
        let (ptr, len) = (
            bytes.as_ptr(),
            u32::try_from(bytes.len()).unwrap_or(u32::MAX),
        );
        let index = self.owned.insert(Owned::Send(bytes)) + 1;
        let entry = opcode::Send::new(types::Fd(fd), ptr, len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(user_data(Op::Send, key, index));
        // SAFETY: the bytes (a heap allocation: moving the `Vec` into `owned` does not move
        // them) stay in `owned` until this operation's completion is reaped in `next`.
        let pushed = unsafe { self.push(&entry) };
        if pushed.is_err() {
            self.owned.remove(index - 1);
        }
        pushed
    }

    /// A connect of `fd` to `address`.
    pub(crate) fn connect(
        &mut self,
        fd: RawFd,
        key: u32,
        address: socket2::SockAddr,
    ) -> io::Result<()> {
        let address = Box::new(address);
        let (ptr, len) = (address.as_ptr().cast::<libc::sockaddr>(), address.len());
        let index = self.owned.insert(Owned::Address(address)) + 1;
        let entry = opcode::Connect::new(types::Fd(fd), ptr, len)
            .build()
            .user_data(user_data(Op::Connect, key, index));
        // SAFETY: the address is boxed (it does not move) and stays in `owned` until this
        // operation's completion is reaped in `next`.
        let pushed = unsafe { self.push(&entry) };
        if pushed.is_err() {
            self.owned.remove(index - 1);
        }
        pushed
    }

    /// Cancels every operation on `fd`.
    pub(crate) fn cancel_fd(&mut self, fd: RawFd) -> io::Result<()> {
        let entry = opcode::AsyncCancel2::new(types::CancelBuilder::fd(types::Fd(fd)).all())
            .build()
            .user_data(user_data(Op::Cancel, 0, 0));
        // SAFETY: a cancellation names no memory.
        unsafe { self.push(&entry) }
    }

    /// Cancels the operation submitted with `data`.
    pub(crate) fn cancel(&mut self, data: u64) -> io::Result<()> {
        let entry = opcode::AsyncCancel::new(data)
            .build()
            .user_data(user_data(Op::Cancel, 0, 0));
        // SAFETY: a cancellation names no memory.
        unsafe { self.push(&entry) }
    }

    /// Submits what is queued and waits for at least one completion or `timeout` (`None`:
    /// no limit; zero: do not wait). Always asks for events: with `DEFER_TASKRUN` the kernel
    /// posts completions only then (a plain submit would leave them pending for ever).
    ///
    /// # Errors
    /// The kernel refused the submission.
    pub(crate) fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let result = match timeout {
            Some(t) => {
                let ts = types::Timespec::from(t);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.uring.submitter().submit_with_args(1, &args)
            }
            None => self.uring.submit_and_wait(1),
        };
        match result {
            Ok(_) => {
                self.queued = 0;
                Ok(())
            }
            Err(e) => match e.raw_os_error() {
                // The time passed, a signal came, or completions wait to be reaped: all
                // mean "look at the completion queue".
                Some(libc::ETIME | libc::EINTR | libc::EBUSY) => Ok(()),
                _ => Err(e),
            },
        }
    }

    /// The next completion, if any.
    pub(crate) fn next(&mut self) -> Option<Completion> {
        loop {
            let cqe = self.uring.completion().next()?;
            let data = cqe.user_data();
            let flags = cqe.flags();
            let more = cqueue::more(flags);
            if !more {
                self.in_flight -= 1;
            }
            let owned = usize::try_from(data >> 40).unwrap_or(0);
            let sent = if owned > 0 && !more {
                match self.owned.try_remove(owned - 1) {
                    Some(Owned::Send(bytes)) => Some(bytes),
                    Some(Owned::Address(_)) | None => None,
                }
            } else {
                None
            };
            let Some(op) = Op::from_code(data & 0xff) else {
                continue;
            };
            let result = cqe.result();
            return Some(Completion {
                op,
                key: u32::try_from((data >> 8) & 0xffff_ffff).unwrap_or(u32::MAX),
                result: if result < 0 {
                    Err(io::Error::from_raw_os_error(-result))
                } else {
                    Ok(usize::try_from(result).unwrap_or(0))
                },
                more,
                buffer: cqueue::buffer_select(flags),
                sent,
            });
        }
    }

    /// The first `len` bytes of provided buffer `bid` (from a receive's completion).
    pub(crate) fn received(&self, bid: u16, len: usize) -> &[u8] {
        let start = usize::from(bid) * self.buffers.size;
        let len = len.min(self.buffers.size);
        self.buffers.data.get(start..start + len).unwrap_or(&[])
    }

    /// Gives provided buffer `bid` back to the kernel.
    pub(crate) fn give_back(&mut self, bid: u16) {
        if bid < self.buffers.count {
            self.buffers.push(bid);
            self.buffers.publish();
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        if self.in_flight == 0 {
            return;
        }
        let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::any())
            .build()
            .user_data(user_data(Op::Cancel, 0, 0));
        // SAFETY: a cancellation names no memory.
        if unsafe { self.push(&cancel) }.is_ok() {
            while self.in_flight > 0 {
                if self.wait(None).is_err() {
                    break;
                }
                while let Some(completion) = self.next() {
                    if let Some(bid) = completion.buffer {
                        self.give_back(bid);
                    }
                }
            }
        }
        if self.in_flight > 0 {
            // The kernel may still write into these: never free them.
            tracing::error!(
                in_flight = self.in_flight,
                "io_uring operations could not be cancelled; leaking their buffers"
            );
            std::mem::forget(std::mem::take(&mut self.owned));
            std::mem::forget(std::mem::replace(&mut self.buffers.data, Box::new([])));
            std::mem::forget(std::mem::replace(&mut self.buffers.entries, Box::new([])));
        }
    }
}
