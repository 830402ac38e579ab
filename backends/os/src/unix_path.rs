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
    // A non-blocking probe: a live server whose backlog is full answers `EAGAIN` at once
    // instead of blocking the caller (an async `bind` on smol's executor among them).
    let probe = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
    probe.set_nonblocking(true)?;
    match probe.connect(&socket2::SockAddr::unix(path)?) {
        Ok(()) => Err(in_use(path)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(in_use(path)),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "removing a stale Unix socket file (nobody listens on it)");
            std::fs::remove_file(path)
        }
        Err(_) => Ok(()),
    }
}

fn in_use(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("a live server already listens on {}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("concurrence-os-{}-{name}.sock", std::process::id()))
    }

    #[test]
    fn a_live_server_with_a_full_backlog_is_in_use_and_the_probe_does_not_block() {
        let path = temp_path("full-backlog");
        let _ = std::fs::remove_file(&path);
        let listener =
            socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).unwrap();
        listener
            .bind(&socket2::SockAddr::unix(&path).unwrap())
            .unwrap();
        listener.listen(0).unwrap();
        // Fill the backlog (nobody accepts) until a non-blocking connect is refused for now.
        let mut queued = Vec::new();
        loop {
            let client =
                socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).unwrap();
            client.set_nonblocking(true).unwrap();
            match client.connect(&socket2::SockAddr::unix(&path).unwrap()) {
                Ok(()) => queued.push(client),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("filling the backlog: {e}"),
            }
            assert!(queued.len() < 1000, "the backlog never filled");
        }
        let (done, result) = std::sync::mpsc::channel();
        let probed = path.clone();
        std::thread::spawn(move || {
            let _ = done.send(clear_stale_socket(&probed).map_err(|e| e.kind()));
        });
        let outcome = result
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("the probe returned at once (a blocking connect would wait for an accept)");
        assert_eq!(outcome, Err(io::ErrorKind::AddrInUse));
        assert!(path.exists(), "a live server's socket file stays");
        drop(listener);
        assert_eq!(clear_stale_socket(&path).map_err(|e| e.kind()), Ok(()));
        assert!(!path.exists(), "a dead server's socket file is removed");
    }
}
