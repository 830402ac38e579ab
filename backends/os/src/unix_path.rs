//! Unix socket files left behind: a server that died without removing its socket file would
//! make the next bind on that path fail with `AddrInUse`. Before binding, a socket file nobody
//! listens on (connect refused) is removed; a live one is a clear error.

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

/// Removes `path` if it is a socket file that refuses connections (its server is gone).
///
/// # Errors
/// `AddrInUse` naming the path when a server still accepts connections there.
pub fn clear_stale_socket(path: &Path) -> io::Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Ok(());
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("a live server already listens on {}", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "removing a stale Unix socket file (nobody listens on it)");
            std::fs::remove_file(path)
        }
        Err(_) => Ok(()),
    }
}
