//! How the real-socket backends classify an `accept` error for the accept policy
//! (`concurrence_socket::AcceptGate`): rest the
//! listener only when a resource is exhausted (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`: a
//! level-triggered listener would report the same failure again at once and spin); retry at
//! once when the failure belongs to one connection that went away before it was accepted
//! (`ECONNABORTED`, `EPROTO` and the network errors accept(2) says to treat like `EAGAIN`).

use std::io;

pub use concurrence_socket::AcceptFailure;

/// Classifies an `accept` error.
#[must_use]
pub fn accept_failure(error: &io::Error) -> AcceptFailure {
    use rustix::io::Errno;
    if error.kind() == io::ErrorKind::Interrupted {
        return AcceptFailure::Retry;
    }
    let Some(code) = error.raw_os_error() else {
        return AcceptFailure::Rest;
    };
    let retry = [
        Errno::CONNABORTED,
        Errno::PROTO,
        Errno::PERM,
        Errno::NOPROTOOPT,
        Errno::HOSTDOWN,
        Errno::NONET,
        Errno::HOSTUNREACH,
        Errno::OPNOTSUPP,
        Errno::NETUNREACH,
        Errno::NETDOWN,
        Errno::TIMEDOUT,
    ];
    if retry.iter().any(|errno| errno.raw_os_error() == code) {
        AcceptFailure::Retry
    } else {
        AcceptFailure::Rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::io::Errno;

    fn of(errno: Errno) -> AcceptFailure {
        accept_failure(&io::Error::from_raw_os_error(errno.raw_os_error()))
    }

    #[test]
    fn exhaustion_rests_and_a_vanished_connection_retries() {
        for errno in [Errno::MFILE, Errno::NFILE, Errno::NOBUFS, Errno::NOMEM] {
            assert_eq!(of(errno), AcceptFailure::Rest, "{errno:?}");
        }
        for errno in [
            Errno::CONNABORTED,
            Errno::PROTO,
            Errno::NETDOWN,
            Errno::TIMEDOUT,
        ] {
            assert_eq!(of(errno), AcceptFailure::Retry, "{errno:?}");
        }
        assert_eq!(
            accept_failure(&io::ErrorKind::Interrupted.into()),
            AcceptFailure::Retry
        );
        assert_eq!(accept_failure(&io::Error::other("?")), AcceptFailure::Rest);
    }
}
