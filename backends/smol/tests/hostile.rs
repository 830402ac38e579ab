//! The smol server under hostile or buggy peers and sessions, on loopback: a client that
//! floods pipelined lines, a session whose deadline never moves, and `max_connections`. In
//! each case the other connections are still served.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use concurrence_core::{Address, Session};
use concurrence_smol::{CloseHandle, SocketServer};
use concurrence_socket::ServerConfig;
use concurrence_testkit::{LineEcho, StaleDeadline};

const WAIT: Duration = Duration::from_secs(10);

/// Serves `factory`'s sessions on smol's global executor (one thread unless `SMOL_THREADS`
/// says otherwise: the harshest case for fairness).
fn start<S: Session + Send + 'static>(
    config: ServerConfig,
    factory: impl Fn(&Address) -> S + Send + Sync + 'static,
) -> (std::net::SocketAddr, CloseHandle) {
    let mut server = SocketServer::with_config("127.0.0.1:0".parse().unwrap(), config);
    server.bind().unwrap();
    assert_ne!(
        server.local_address().as_tcp().unwrap().port(),
        0,
        "bind picks the port"
    );
    server.listen(255).unwrap();
    let (bound, closer) = (server.local_address().clone(), server.close_handle());
    smol::spawn(async move { server.serve_session(factory).await.unwrap() }).detach();
    let Address::Tcp(addr) = bound else {
        unreachable!()
    };
    (addr, closer)
}

fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
}

/// Sends one line and returns the line that comes back (empty at end of stream).
fn round_trip(stream: &mut TcpStream, line: &str) -> String {
    stream.write_all(line.as_bytes()).unwrap();
    let mut reply = String::new();
    BufReader::new(&*stream).read_line(&mut reply).unwrap();
    reply
}

/// While one client floods `addr` with pipelined lines (replies drained by a second thread),
/// another client makes 20 round trips: the slowest of them.
fn worst_round_trip_beside_a_flood(addr: std::net::SocketAddr) -> Duration {
    let stop = Arc::new(AtomicBool::new(false));
    // The flood: pipelined short lines as fast as the socket takes them, replies drained by a
    // second thread, for at most 20 s (stopped as soon as the measurement is done).
    let flood = connect(addr);
    let mut drain = flood.try_clone().unwrap();
    let (flowing_tx, flowing) = std::sync::mpsc::channel();
    let drainer = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut told = false;
        while let Ok(n) = drain.read(&mut buf) {
            if n == 0 {
                break;
            }
            if !told {
                let _ = flowing_tx.send(());
                told = true;
            }
        }
    });
    let flooder = {
        let stop = Arc::clone(&stop);
        let mut flood = flood;
        std::thread::spawn(move || {
            let lines = b"flood\n".repeat(4096);
            let started = Instant::now();
            while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(20) {
                if flood.write_all(&lines).is_err() {
                    break;
                }
            }
            let _ = flood.shutdown(std::net::Shutdown::Both);
        })
    };
    flowing.recv_timeout(WAIT).expect("the flood is answered");
    // Meanwhile another client's round trips stay fast.
    let mut other = connect(addr);
    let mut worst = Duration::ZERO;
    for i in 0..20 {
        let sent = Instant::now();
        let reply = round_trip(&mut other, &format!("{i}\n"));
        assert_eq!(reply.trim_end(), i.to_string());
        worst = worst.max(sent.elapsed());
    }
    stop.store(true, Ordering::SeqCst);
    flooder.join().unwrap();
    drainer.join().unwrap();
    worst
}

#[test]
fn a_flooding_client_does_not_freeze_the_others() {
    let (addr, closer) = start(ServerConfig::default(), |_| LineEcho);
    let worst = worst_round_trip_beside_a_flood(addr);
    closer.close();
    assert!(
        worst < Duration::from_millis(250),
        "a round trip next to the flood took {worst:?}"
    );
}

#[test]
fn a_flooding_client_does_not_freeze_the_others_on_the_handler_path() {
    // The seed's handler API, as the `async-echo-server` example serves it: an async handler
    // that never yields by itself. The socket's cooperative budget makes it yield.
    let mut server = SocketServer::new("127.0.0.1:0".parse().unwrap());
    server.listen(255).unwrap();
    let (bound, closer) = (server.local_address().clone(), server.close_handle());
    smol::spawn(async move {
        server
            .serve(|socket: concurrence_smol::Socket| async move {
                let mut stream = concurrence_core::AsyncBufferedStream::new(socket);
                while let Some(line) = stream.next_line().await? {
                    stream.write_bytes(&line).await?;
                    stream.write_bytes(b"\r\n").await?;
                    stream.flush().await?;
                }
                Ok::<(), concurrence_core::StreamError>(())
            })
            .await
            .unwrap();
    })
    .detach();
    let Address::Tcp(addr) = bound else {
        unreachable!()
    };
    let worst = worst_round_trip_beside_a_flood(addr);
    closer.close();
    assert!(
        worst < Duration::from_millis(250),
        "a round trip next to the flood took {worst:?}"
    );
}

#[test]
fn a_deadline_that_never_moves_does_not_starve_the_executor() {
    let (addr, closer) = start(ServerConfig::default(), |_| StaleDeadline);
    let mut stale = connect(addr);
    assert_eq!(round_trip(&mut stale, "x\n"), "x\n");
    let mut other = connect(addr);
    for i in 0..20 {
        assert_eq!(round_trip(&mut other, &format!("{i}\n")), format!("{i}\n"));
    }
    closer.close();
}

#[test]
fn at_the_cap_newcomers_wait_in_the_backlog_until_a_slot_frees() {
    let mut config = ServerConfig::default();
    config.max_connections = 2;
    let (addr, closer) = start(config, |_| LineEcho);
    let mut first = connect(addr);
    let mut second = connect(addr);
    assert_eq!(round_trip(&mut first, "1\n"), "1\n");
    assert_eq!(round_trip(&mut second, "2\n"), "2\n");
    let mut third = connect(addr);
    third.write_all(b"3\n").unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut reply = [0u8; 2];
    let early = third.read(&mut reply);
    assert!(
        matches!(&early, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "no answer and no reset while at the cap: {early:?}"
    );
    drop(first);
    third.set_read_timeout(Some(WAIT)).unwrap();
    third.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"3\n");
    closer.close();
}

#[test]
fn a_stale_unix_socket_file_is_replaced_and_a_live_one_is_a_clear_error() {
    let path = std::env::temp_dir().join(format!(
        "concurrence-smol-stale-{}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let address = Address::Unix(path.clone());
    let live = common::listening(&address, 16).unwrap();
    let err = common::listening(&address, 16).unwrap_err();
    assert!(
        err.to_string().contains("a live server already listens"),
        "{err}"
    );
    drop(live);
}

#[test]
fn a_panicking_session_factory_ends_only_its_connection() {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let (addr, closer) = start(ServerConfig::default(), move |_| {
        assert!(
            counted.fetch_add(1, Ordering::SeqCst) != 0,
            "the factory panics for the first connection"
        );
        LineEcho
    });
    let mut first = connect(addr);
    first.write_all(b"hello\n").unwrap();
    let mut rest = Vec::new();
    // Closed without a reply (a reset is fine too: the server never read the line).
    let _ = first.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{rest:?}");
    let mut second = connect(addr);
    assert_eq!(
        round_trip(&mut second, "still serving\n"),
        "still serving\n"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    closer.close();
}
