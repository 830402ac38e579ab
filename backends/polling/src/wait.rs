//! Waiting for one descriptor to become ready, with a deadline: `poll(2)` through rustix.
//!
//! The blocking `Socket` keeps its descriptor non-blocking and waits here between attempts, so
//! every blocking call honours its own timeout without touching `SO_RCVTIMEO`.

use std::io;
use std::os::fd::AsFd;

use concurrence_core::Timestamp;
use rustix::event::{PollFd, PollFlags, Timespec};

use concurrence_os::clock;

/// Which readiness to wait for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Readiness {
    Readable,
    Writable,
    /// Either or both (`(readable, writable)`); neither waits for the deadline only (or for
    /// an error or hang-up on `fd`).
    Either(bool, bool),
}

/// Waits until `fd` is ready or `deadline` passes. `Ok(false)` means the deadline passed.
pub(crate) fn wait_ready(
    fd: impl AsFd,
    readiness: Readiness,
    deadline: Option<Timestamp>,
) -> io::Result<bool> {
    wait_ready_or_woken(fd, readiness, deadline, None)
}

/// As [`wait_ready`], and also returns (`Ok(true)`) when `wake` becomes readable: how a client
/// session driver wakes for an application event.
pub(crate) fn wait_ready_or_woken(
    fd: impl AsFd,
    readiness: Readiness,
    deadline: Option<Timestamp>,
    wake: Option<std::os::fd::BorrowedFd<'_>>,
) -> io::Result<bool> {
    let flags = match readiness {
        Readiness::Readable => PollFlags::IN,
        Readiness::Writable => PollFlags::OUT,
        Readiness::Either(read, write) => {
            let mut flags = PollFlags::empty();
            if read {
                flags |= PollFlags::IN;
            }
            if write {
                flags |= PollFlags::OUT;
            }
            flags
        }
    };
    loop {
        let timeout = match deadline {
            None => None,
            Some(deadline) => {
                let left = clock::until(deadline);
                if left.is_zero() {
                    return Ok(false);
                }
                Some(Timespec {
                    tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                    tv_nsec: i64::from(left.subsec_nanos()),
                })
            }
        };
        let polled = match wake {
            Some(wake) => {
                let mut fds = [PollFd::new(&fd, flags), PollFd::new(&wake, PollFlags::IN)];
                rustix::event::poll(&mut fds, timeout.as_ref())
            }
            None => {
                let mut fds = [PollFd::new(&fd, flags)];
                rustix::event::poll(&mut fds, timeout.as_ref())
            }
        };
        match polled {
            Ok(0) => continue, // re-check the deadline (poll rounds to milliseconds)
            Ok(_) => return Ok(true),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
