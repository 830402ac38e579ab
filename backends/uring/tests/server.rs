//! The io_uring loops on real loopback sockets, for what is particular to completions: a loop
//! dropped with operations in flight (a send the peer never reads, receives armed on idle
//! connections) cancels and reaps them before it frees their buffers; the client driver.
//! What every event-loop server must do (echo in order under back-pressure, which cancels and
//! re-arms uring's multishot receive thousands of times; 1,000 clients; one receive and one
//! send per request; the cap; shutdown) runs on polling and uring alike in
//! `conformance/tests/event_loop_servers.rs`, and the conformance suite's uring column.

use std::io::Read;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use concurrence_core::{Address, ConnectionConfig, EndKind};
use concurrence_socket::ServerConfig;
use concurrence_testkit::{LineEcho, Producer, Script};
use concurrence_uring::{ServerHandle, connect_session, serve};

const SOON: Option<Duration> = Some(Duration::from_secs(10));

fn serve_tcp<S: concurrence_core::Session + 'static>(
    config: ServerConfig,
    factory: impl Fn(&Address) -> S + Send + Sync + 'static,
) -> ServerHandle {
    serve(&"127.0.0.1:0".parse().expect("address"), config, factory).expect("serve on loopback")
}

fn tcp_client(server: &ServerHandle) -> TcpStream {
    let stream =
        TcpStream::connect(server.local_address().as_tcp().expect("tcp")).expect("connect");
    stream.set_read_timeout(SOON).expect("timeout");
    stream
}

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < until, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_loop_dropped_with_operations_in_flight_cancels_and_reaps_them() {
    // 51 producers whose peers never read: once the socket buffers are full, each has a send
    // waiting in the kernel, and a multishot receive armed. Shutting down with a short grace
    // must close them all and return: the ring cancels every operation and reaps its
    // completion before the send bytes and receive buffers are freed.
    let config = ServerConfig::default().with_shutdown_grace(Duration::from_millis(100));
    let backed_up = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&backed_up);
    let server = serve_tcp(
        config,
        move |peer: &Address| -> Box<dyn concurrence_core::Session + Send> {
            let _ = peer;
            Box::new(Producer {
                total: 1 << 30,
                sent: 0,
                max_pending: Arc::clone(&seen),
            })
        },
    );
    let silent = tcp_client(&server);
    let idle: Vec<TcpStream> = (0..50).map(|_| tcp_client(&server)).collect();
    eventually("all connected", || server.connections() == 51);
    // A writer holding output means the kernel took no more: sends wait in it.
    eventually("a producer's send waits in the kernel", || {
        backed_up.load(Ordering::SeqCst) >= 16 * 1024
    });
    let started = Instant::now();
    server.shutdown();
    server.join().expect("the loops end cleanly");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    for mut client in idle {
        let mut rest = Vec::new();
        let _ = client.read_to_end(&mut rest);
    }
    drop(silent);
}

#[test]
fn the_client_driver_runs_a_session_to_a_server_and_reports_refusal() {
    let server = serve_tcp(ServerConfig::default(), |_| LineEcho);
    let script = Script::new()
        .send("one\ntwo\n")
        .await_suffix("two\n")
        .close();
    let ended = connect_session(server.local_address(), script, ConnectionConfig::default());
    assert_eq!(ended.reason.kind(), EndKind::Closed, "{:?}", ended.reason);
    assert_eq!(ended.session.received(), b"one\ntwo\n");
    let address = server.local_address().clone();
    server.shutdown();
    server.join().expect("join");
    let ended = connect_session(
        &address,
        Script::new().send("x\n"),
        ConnectionConfig::default(),
    );
    assert_eq!(
        ended.reason.kind(),
        EndKind::ConnectRefused,
        "{:?}",
        ended.reason
    );
}
