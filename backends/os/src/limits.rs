//! Process limits a server meets first: the descriptor table. A server meant for 10,000
//! connections (or a test that opens 1,000 clients beside its server) needs more descriptors
//! than a common soft limit of 1,024.

use std::io;

/// Raises this process's descriptor limit (`RLIMIT_NOFILE`) to its hard limit and returns the
/// new soft limit (`None`: unlimited).
///
/// # Errors
/// The OS refused.
pub fn raise_nofile_limit() -> io::Result<Option<u64>> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    )?;
    Ok(limit.maximum)
}
