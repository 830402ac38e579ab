//! A widely used client library from another language drives our server: Python's
//! `pymemcache` (installed by `.ci/run` from PyPI) runs get/set/add/replace/append/prepend,
//! gets/cas, incr/decr, touch, delete, pipelined 100-key multi-gets, noreply and stats against
//! our server on both backends, and against Debian's memcached to check the script itself.

mod common;

use std::process::Command;

/// Whether `python3` can import `pymemcache`; under CI (`CI` set) its absence fails the test.
fn pymemcache_installed() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import pymemcache"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "pymemcache is not installed; .ci/run installs it with pip"
        );
        eprintln!("pymemcache is not installed: skipping the Python client test");
    }
    ok
}

#[test]
fn pymemcache_runs_against_every_server() {
    if !pymemcache_installed() {
        return;
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/pymemcache_check.py"
    );
    for (i, server) in common::all_servers().iter().enumerate() {
        let out = Command::new("python3")
            .arg(script)
            .arg(server.address().port().to_string())
            .arg(format!("py{i}-"))
            .output()
            .expect("run python3");
        assert!(
            out.status.success() && out.stdout.starts_with(b"ok"),
            "{}: pymemcache failed:\n{}{}",
            server.name(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
