//! The polling server under hostile or buggy peers and sessions, on loopback: a panicking
//! session, a session whose deadline never moves, and running out of file descriptors. In
//! each case the other connections are still served and the loop does not spin.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{connect, round_trip, serve_tcp};
use concurrence_core::Address;
use concurrence_polling::serve;
use concurrence_socket::ServerConfig;
use concurrence_testkit::{LineEcho, PanicsOnBoom, StaleDeadline};

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn a_panicking_session_costs_only_its_own_connection() {
    let server = serve_tcp(ServerConfig::default(), |_| PanicsOnBoom);
    let mut bystander = connect(&server);
    assert_eq!(round_trip(&mut bystander, "before\n"), "before\n");
    let mut victim = connect(&server);
    assert_eq!(
        round_trip(&mut victim, "boom\n"),
        "",
        "the panicking connection is closed"
    );
    assert_eq!(
        round_trip(&mut bystander, "after\n"),
        "after\n",
        "the loop lives on"
    );
    let mut newcomer = connect(&server);
    assert_eq!(round_trip(&mut newcomer, "new\n"), "new\n");
}

#[test]
fn a_deadline_that_never_moves_does_not_pin_the_loop() {
    let server = serve_tcp(ServerConfig::default(), |_| StaleDeadline);
    let mut stale = connect(&server);
    assert_eq!(round_trip(&mut stale, "x\n"), "x\n");
    // The loop keeps firing the stale deadline, once per turn, and still serves others.
    let mut other = connect(&server);
    let started = Instant::now();
    for i in 0..20 {
        assert_eq!(round_trip(&mut other, &format!("{i}\n")), format!("{i}\n"));
    }
    assert!(started.elapsed() < WAIT);
    // And shutdown is still seen.
    server.shutdown();
    server.join().unwrap();
}

/// Re-runs one test of this binary in a child process (for settings, like a descriptor limit,
/// that must not touch the other tests).
fn run_child(test: &str) {
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("CONCURRENCE_HOSTILE_CHILD", "1")
        .status()
        .unwrap();
    assert!(status.success(), "the child run of {test} failed");
}

#[test]
fn out_of_descriptors_the_loop_rests_and_recovers() {
    if std::env::var_os("CONCURRENCE_HOSTILE_CHILD").is_none() {
        run_child("out_of_descriptors_the_loop_rests_and_recovers");
        return;
    }
    // In the child: few descriptors, so that accepting runs out of them.
    let limit = rustix::process::Rlimit {
        current: Some(64),
        maximum: rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum,
    };
    rustix::process::setrlimit(rustix::process::Resource::Nofile, limit).unwrap();
    let server = serve_tcp(ServerConfig::default(), |_| LineEcho);
    let Address::Tcp(addr) = server.local_address().clone() else {
        unreachable!()
    };
    // Clients are in this process too: each costs a descriptor here and one in the server,
    // so the server's accepts fail with EMFILE once the table is full.
    let mut clients = Vec::new();
    while let Ok(stream) = TcpStream::connect(addr) {
        clients.push(stream);
        if clients.len() > 200 {
            break;
        }
    }
    assert!(clients.len() < 200, "the descriptor limit was not reached");
    // Out of descriptors, with connections pending in the backlog: the loop must rest, not
    // spin. Measure the process's CPU time over half a second of that.
    let cpu = || {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        Duration::new(
            u64::try_from(t.tv_sec).unwrap(),
            u32::try_from(t.tv_nsec).unwrap(),
        )
    };
    let (cpu_before, wall) = (cpu(), Instant::now());
    std::thread::sleep(Duration::from_millis(500));
    let busy = (cpu() - cpu_before).as_secs_f64() / wall.elapsed().as_secs_f64();
    assert!(
        busy < 0.2,
        "the loop spins while out of descriptors: {busy:.2} CPU"
    );
    // Free descriptors: the server accepts the waiting connections and serves them.
    let mut keep = clients.split_off(clients.len() - 4);
    drop(clients);
    for stream in &mut keep {
        stream.set_read_timeout(Some(WAIT)).unwrap();
    }
    for stream in &mut keep {
        assert_eq!(round_trip(stream, "back\n"), "back\n");
    }
}

#[test]
fn a_stale_unix_socket_file_is_replaced_and_a_live_one_is_a_clear_error() {
    let path = std::env::temp_dir().join(format!(
        "concurrence-polling-stale-{}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    // A server that died without cleaning up: the file stays, nobody listens.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let address = Address::Unix(path.clone());
    let server = serve(&address, ServerConfig::default(), |_| LineEcho).unwrap();
    let mut client = std::os::unix::net::UnixStream::connect(&path).unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    client.write_all(b"hi\n").unwrap();
    let mut reply = String::new();
    BufReader::new(&client).read_line(&mut reply).unwrap();
    assert_eq!(reply, "hi\n");
    // A second server on the live path is refused with a sentence, and the first goes on.
    let err = serve(&address, ServerConfig::default(), |_| LineEcho).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("a live server already listens"),
        "{message}"
    );
    drop(server);
}
