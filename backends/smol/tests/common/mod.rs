//! Helpers the smol backend's test files share.

/// A fresh Unix socket path in the temp dir, unique to this process and `name`.
pub(crate) fn unix_path(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "concurrence-smol-{}-{name}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    path
}
