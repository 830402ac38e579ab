//! System calls per request on the event loop, counted by the kernel (`syscr` in
//! `/proc/self/task/<loop thread>/io`: read-family calls). At pipeline depth 1 the loop must
//! make one `read` per request: no second read that is sure to find nothing after each send.
//! A file of its own, so that this process has exactly one event loop thread.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use concurrence_core::testing::LineEcho;
use concurrence_polling::{ServerConfig, serve};

/// The read-family system calls made so far by the thread named `name` (`comm`: the first 15
/// bytes of the name, so `concurrence-loop-0` is `concurrence-loo`).
fn reads_by_thread(name: &str) -> Option<u64> {
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
        if comm.trim() == name {
            let io = std::fs::read_to_string(task.path().join("io")).ok()?;
            return io
                .lines()
                .find_map(|l| l.strip_prefix("syscr:"))
                .and_then(|v| v.trim().parse().ok());
        }
    }
    None
}

#[test]
fn one_read_per_request_at_depth_one() {
    let server = serve(
        &"127.0.0.1:0".parse().unwrap(),
        ServerConfig::default(),
        |_| LineEcho,
    )
    .unwrap();
    let mut client = TcpStream::connect(server.local_address().as_tcp().unwrap()).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client.set_nodelay(true).unwrap();
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut round_trip = |i: usize| {
        let line = format!("request {i}\n");
        client.write_all(line.as_bytes()).unwrap();
        let mut reply = String::new();
        reader.read_line(&mut reply).unwrap();
        assert_eq!(reply, line);
    };
    for i in 0..20 {
        round_trip(i); // the connection is accepted and warmed up
    }
    let Some(before) = reads_by_thread("concurrence-loo") else {
        // /proc/<pid>/task/<tid>/io needs task I/O accounting; say so rather than pass blindly.
        panic!("no syscr for the event loop thread: is /proc/self/task/*/io readable here?");
    };
    const REQUESTS: u64 = 500;
    for i in 0..REQUESTS {
        round_trip(usize::try_from(i).unwrap());
    }
    let after = reads_by_thread("concurrence-loo").unwrap();
    let reads = after - before;
    assert!(
        reads <= REQUESTS + REQUESTS / 20,
        "{reads} read calls for {REQUESTS} requests: more than one per request"
    );
}
