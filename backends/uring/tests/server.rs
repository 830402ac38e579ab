//! The io_uring loops on real loopback sockets, for what is particular to completions: bytes
//! the kernel delivered past a connection's room (multishot receive under back-pressure) stay
//! in order; a request costs one receive and one send completion; a loop dropped with
//! operations in flight (a send the peer never reads, receives armed on idle connections)
//! cancels and reaps them before it frees their buffers; 1,000 clients on two loops; the
//! client driver. The behaviour every backend shares is the conformance suite's
//! (`cargo run --release -p concurrence-conformance -- --backends uring`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use concurrence_core::{Address, ConnectionConfig, EndKind, WriterConfig};
use concurrence_socket::ServerConfig;
use concurrence_testkit::{ByteEcho, LineEcho, Producer, Script, pattern};
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
fn line_echo_over_tcp_and_unix() {
    let server = serve_tcp(ServerConfig::default(), |_| LineEcho);
    let mut client = tcp_client(&server);
    client.write_all(b"hello\r\nworld\n").expect("write");
    let mut reply = [0u8; 13];
    client.read_exact(&mut reply).expect("read");
    assert_eq!(&reply, b"hello\r\nworld\n");

    let path = std::env::temp_dir().join(format!("concurrence-uring-{}.sock", std::process::id()));
    let unix = serve(
        &Address::Unix(path.clone()),
        ServerConfig::default(),
        |_| LineEcho,
    )
    .expect("serve unix");
    let mut client = UnixStream::connect(&path).expect("connect unix");
    client.set_read_timeout(SOON).expect("timeout");
    client.write_all(b"over unix\nQUIT\n").expect("write");
    let mut reply = Vec::new();
    client
        .read_to_end(&mut reply)
        .expect("read to the server's close");
    assert_eq!(reply, b"over unix\n");
    drop(unix); // shuts down, joins, removes the socket file
    assert!(!path.exists());
}

/// Pipelines `total` bytes through a byte echo whose writer stops input at 64 KiB: the
/// multishot receive is cancelled and re-armed again and again, and the bytes the kernel
/// delivered past the connection's room must come back in order, every one.
fn echo_in_order(total: usize) {
    let max_pending = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&max_pending);
    let writer = WriterConfig::default().with_high_water(64 * 1024);
    let config = ServerConfig::default().with_buffers(Default::default(), writer);
    let server = serve_tcp(config, move |_| ByteEcho {
        max_pending: Arc::clone(&seen),
    });
    let mut client = tcp_client(&server);
    let mut reader = client.try_clone().expect("clone");
    let check = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0;
        while got < total {
            let n = reader.read(&mut buf).expect("read");
            assert!(n > 0, "early end of stream at {got}");
            for (k, &b) in buf[..n].iter().enumerate() {
                assert_eq!(b, pattern(got + k), "byte {}", got + k);
            }
            got += n;
        }
    });
    let mut chunk = vec![0u8; 256 * 1024];
    let mut sent = 0;
    while sent < total {
        let n = chunk.len().min(total - sent);
        for (k, b) in chunk[..n].iter_mut().enumerate() {
            *b = pattern(sent + k);
        }
        client.write_all(&chunk[..n]).expect("write");
        sent += n;
    }
    check.join().expect("every byte back, in order");
    let most = max_pending.load(Ordering::SeqCst);
    assert!(
        most < 64 * 1024 + 16 * 1024,
        "server kept {most} bytes pending"
    );
}

#[test]
fn sixty_four_mib_echo_under_back_pressure_comes_back_in_order() {
    echo_in_order(64 << 20);
}

#[test]
fn sixty_four_mib_to_a_slow_client() {
    let max_pending = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&max_pending);
    let total = 64 << 20;
    let server = serve_tcp(ServerConfig::default(), move |_| Producer {
        total,
        sent: 0,
        max_pending: Arc::clone(&seen),
    });
    let mut client = tcp_client(&server);
    let mut buf = vec![0u8; 256 * 1024];
    let (mut got, mut pauses) = (0, 0);
    loop {
        let n = client.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        assert!(
            buf[..n]
                .iter()
                .enumerate()
                .all(|(k, &b)| b == pattern(got + k))
        );
        got += n;
        if pauses < 20 {
            pauses += 1;
            std::thread::sleep(Duration::from_millis(5)); // slow at first: the server must wait
        }
    }
    assert_eq!(got, total, "every byte, then end of stream");
    let most = max_pending.load(Ordering::SeqCst);
    assert!(
        most < 64 * 1024 + 16 * 1024,
        "server kept {most} bytes pending"
    );
}

#[test]
fn a_request_costs_one_receive_and_one_send_completion() {
    const CLIENTS: usize = 16;
    const REQUESTS: usize = 200;
    let server = serve_tcp(ServerConfig::default(), |_| LineEcho);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let mut stream = tcp_client(&server);
            std::thread::spawn(move || {
                let mut line = [b'x'; 64];
                line[63] = b'\n';
                let mut reply = [0u8; 64];
                for _ in 0..REQUESTS {
                    stream.write_all(&line).expect("write");
                    stream.read_exact(&mut reply).expect("read");
                    assert_eq!(reply, line);
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client");
    }
    let requests = (CLIENTS * REQUESTS) as u64;
    let calls = server.io_counts();
    let slack = 2 * CLIENTS as u64;
    assert!(
        calls.reads >= requests - slack && calls.reads <= requests + slack,
        "{calls:?} for {requests} requests"
    );
    assert_eq!(
        calls.empty_reads, 0,
        "no receive found the buffer ring empty: {calls:?}"
    );
    assert!(
        calls.sends >= requests - slack && calls.sends <= requests + slack,
        "{calls:?} for {requests} requests"
    );
}

#[test]
fn a_loop_dropped_with_operations_in_flight_cancels_and_reaps_them() {
    // A producer whose peer never reads: its send stays in the kernel (the socket buffers
    // are full); 50 idle connections each hold an armed multishot receive. Shutting down with
    // a short grace must close them all and return: the ring cancels every operation and
    // reaps its completion before the send bytes and receive buffers are freed.
    let config = ServerConfig::default().with_shutdown_grace(Duration::from_millis(100));
    let server = serve_tcp(
        config,
        |peer: &Address| -> Box<dyn concurrence_core::Session + Send> {
            let _ = peer;
            Box::new(Producer {
                total: 1 << 30,
                ..Producer::default()
            })
        },
    );
    let silent = tcp_client(&server);
    let idle: Vec<TcpStream> = (0..50).map(|_| tcp_client(&server)).collect();
    eventually("all connected", || server.connections() == 51);
    // Let the producer fill the socket buffers so that its send waits in the kernel.
    std::thread::sleep(Duration::from_millis(200));
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
fn two_loops_serve_a_thousand_concurrent_clients() {
    concurrence_os::limits::raise_nofile_limit().expect("raise RLIMIT_NOFILE");
    let server = serve_tcp(ServerConfig::default().with_threads(2), |_| LineEcho);
    let addr = server.local_address().as_tcp().expect("tcp");
    let all_answered = Arc::new(std::sync::Barrier::new(5));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let all_answered = Arc::clone(&all_answered);
            std::thread::spawn(move || {
                let mut clients: Vec<TcpStream> = (0..250)
                    .map(|_| {
                        let c = TcpStream::connect(addr).expect("connect");
                        c.set_read_timeout(SOON).expect("timeout");
                        c
                    })
                    .collect();
                for (i, c) in clients.iter_mut().enumerate() {
                    writeln!(c, "client {w}-{i:03}").expect("write");
                }
                for (i, c) in clients.iter_mut().enumerate() {
                    let want = format!("client {w}-{i:03}\n");
                    let mut got = vec![0u8; want.len()];
                    c.read_exact(&mut got).expect("read");
                    assert_eq!(got, want.as_bytes());
                }
                all_answered.wait();
                all_answered.wait();
                clients.len()
            })
        })
        .collect();
    all_answered.wait();
    assert_eq!(server.connections(), 1000, "all 1,000 open at once");
    all_answered.wait();
    let served: usize = workers.into_iter().map(|w| w.join().expect("worker")).sum();
    assert_eq!(served, 1000);
    eventually("every connection closed", || server.connections() == 0);
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
