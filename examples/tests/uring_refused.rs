//! Where the kernel refuses io_uring, `memcache-server --backend uring` says so and exits: a
//! seccomp filter (what a container applies) makes `io_uring_setup` fail with `EPERM`, and the
//! server prints one sentence naming the cause and the other backends, with no fallback.
//! The filter comes from `pyseccomp` (libseccomp through Python, installed by `.ci/run`); under
//! CI (`CI` set) its absence fails the test.

use std::process::Command;

/// Installs a filter that refuses `io_uring_setup` (`EPERM`), then runs `program` with `args`.
const REFUSE_IO_URING: &str = "
import os, sys, pyseccomp as seccomp
f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
f.add_rule(seccomp.ERRNO(1), 'io_uring_setup')
f.load()
os.execv(sys.argv[1], sys.argv[1:])
";

#[test]
fn a_seccomp_filter_that_refuses_io_uring_gets_a_sentence_not_a_fallback() {
    let available = Command::new("python3")
        .args(["-c", "import pyseccomp"])
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        assert!(
            std::env::var_os("CI").is_none(),
            "pyseccomp is not installed; .ci/run installs it with pip"
        );
        eprintln!("pyseccomp is not installed: skipping");
        return;
    }
    let output = Command::new("python3")
        .args([
            "-c",
            REFUSE_IO_URING,
            env!("CARGO_BIN_EXE_memcache-server"),
            "--backend",
            "uring",
            "-l",
            "127.0.0.1",
            "-p",
            "0",
        ])
        .output()
        .expect("run python3");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("io_uring is unavailable here: it is disabled")
            && stderr.contains("seccomp")
            && stderr.contains("use another backend (polling, smol)"),
        "stderr: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one sentence: {stderr}");
    // The same program on polling serves under the same filter (it needs no io_uring): it
    // starts, and the filter is what refused uring.
    let mut polling = Command::new("python3")
        .args([
            "-c",
            REFUSE_IO_URING,
            env!("CARGO_BIN_EXE_memcache-server"),
            "--backend",
            "polling",
            "-l",
            "127.0.0.1",
            "-p",
            "0",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python3");
    // It logs that it listens once it does (or its stderr ends, if it died).
    let stderr = polling.stderr.take().expect("piped stderr");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let listening = lines.find(|line| line.as_ref().is_ok_and(|l| l.contains("listening")));
    assert!(
        listening.is_some(),
        "the polling server should start under the same filter"
    );
    let _ = polling.kill();
    let _ = polling.wait();
}
