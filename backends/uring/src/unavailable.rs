//! Telling a user why io_uring cannot run here: the kernel has none (`ENOSYS`), it is
//! disabled (`/proc/sys/kernel/io_uring_disabled`) or a seccomp filter refuses it (`EPERM`),
//! or the kernel is too old for what this backend needs (provided buffer rings, 5.19; the
//! flags `SINGLE_ISSUER` and `DEFER_TASKRUN`, 6.1: `EINVAL`). Nothing falls back silently.

use std::io;

use concurrence_core::Address;
use concurrence_socket::SocketError;

/// The error for a ring that could not be set up: an `Unsupported` I/O error whose text says
/// what is missing and what to do, for [`SocketError::Io`] with the operation
/// `"start io_uring"`.
pub(crate) fn unavailable(cause: &io::Error) -> io::Error {
    let why = match cause.raw_os_error() {
        Some(libc::ENOSYS) => "this kernel has none (Linux 6.1 or newer is needed)",
        Some(libc::EPERM | libc::EACCES) => {
            "it is disabled (see /proc/sys/kernel/io_uring_disabled) or refused by a seccomp filter (containers often block it)"
        }
        Some(libc::EINVAL) => {
            "this kernel lacks an io_uring feature this backend needs (provided buffer rings, SINGLE_ISSUER, DEFER_TASKRUN: Linux 6.1 or newer)"
        }
        Some(libc::ENOMEM) => {
            "the kernel could not lock memory for the ring (raise RLIMIT_MEMLOCK, or run fewer loops)"
        }
        _ => "the kernel refused to set up an io_uring",
    };
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "io_uring is unavailable here: {why} ({cause}); use another backend (polling, smol)"
        ),
    )
}

/// [`unavailable`] as the error `serve` and `SocketServer` return.
pub(crate) fn unavailable_error(address: &Address, cause: &io::Error) -> SocketError {
    SocketError::io("start io_uring", address, unavailable(cause))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_says_what_is_missing() {
        let disabled = unavailable(&io::Error::from_raw_os_error(libc::EPERM));
        assert_eq!(disabled.kind(), io::ErrorKind::Unsupported);
        assert!(
            disabled.to_string().contains("io_uring_disabled"),
            "{disabled}"
        );
        let old = unavailable(&io::Error::from_raw_os_error(libc::ENOSYS));
        assert!(old.to_string().contains("this kernel has none"), "{old}");
        let error = unavailable_error(
            &"127.0.0.1:1".parse().expect("an address"),
            &io::Error::from_raw_os_error(libc::EINVAL),
        );
        assert!(
            error
                .to_string()
                .starts_with("start io_uring on 127.0.0.1:1 failed: io_uring is unavailable"),
            "{error}"
        );
        assert_eq!(error.io_kind(), Some(io::ErrorKind::Unsupported));
    }
}
