//! The blocking `Socket` on real loopback sockets: the seed's API over TCP and Unix, timeouts
//! that leave the socket usable, refused and timed-out connects, resets, and descriptor
//! passing of a live TCP connection.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use concurrence_core::{Address, Buffer, SocketState};
use concurrence_polling::{Socket, SocketServer};
use concurrence_socket::{ServerConfig, SocketError};
use concurrence_testkit::LineEcho;

fn listener(address: &str) -> Socket {
    let mut socket = Socket::from_address(&address.parse().unwrap()).unwrap();
    socket.set_reuse_address(true).unwrap();
    socket.bind().unwrap();
    socket.listen(16).unwrap();
    socket
}

fn filled(bytes: &[u8]) -> Buffer {
    let mut buffer = Buffer::new(bytes.len());
    buffer.write_bytes(bytes).unwrap();
    buffer.flip();
    buffer
}

#[test]
fn seed_api_round_trip_over_tcp_and_unix() {
    let path = unix_path("seed-api");
    for address in ["127.0.0.1:0".to_string(), path.display().to_string()] {
        let mut server = listener(&address);
        assert_eq!(server.state(), SocketState::Listening);
        let bound = server.address().clone();
        let client = std::thread::spawn(move || {
            let mut socket = Socket::connect(&bound, SOON).unwrap();
            assert_eq!(socket.state(), SocketState::Connected);
            let mut out = filled(b"ping");
            assert_eq!(socket.write(&mut out, SOON).unwrap(), 4);
            assert_eq!(out.position(), 4, "position moves by what was sent");
            let mut reply = Buffer::new(16);
            let n = socket.read(&mut reply, SOON).unwrap();
            reply.flip();
            assert_eq!(reply.read_bytes(n).unwrap().as_ref(), b"pong");
            socket.close().unwrap();
            socket.close().unwrap(); // idempotent
            assert_eq!(socket.state(), SocketState::Closed);
        });
        let mut conn = server.accept(SOON).unwrap();
        let mut buffer = Buffer::new(16);
        let mut got = 0;
        while got < 4 {
            got += conn.read(&mut buffer, SOON).unwrap();
        }
        buffer.flip();
        assert_eq!(buffer.read_remaining().as_ref(), b"ping");
        conn.write(&mut filled(b"pong"), SOON).unwrap();
        client.join().unwrap();
        let mut rest = Buffer::new(4);
        assert_eq!(
            conn.read(&mut rest, SOON).unwrap(),
            0,
            "0 means end of stream"
        );
        assert!(
            matches!(conn.read(&mut rest, SOON), Err(SocketError::State(_))),
            "reading past end of stream is a state error"
        );
    }
    let _ = std::fs::remove_file(path);
}

#[test]
fn read_timeout_is_typed_and_leaves_the_socket_usable() {
    let mut server = listener("127.0.0.1:0");
    let mut client = TcpStream::connect(server.address().as_tcp().unwrap()).unwrap();
    let mut conn = server.accept(SOON).unwrap();
    let mut buffer = Buffer::new(8);
    let started = Instant::now();
    let err = conn
        .read(&mut buffer, Some(Duration::from_millis(100)))
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(err.to_string().contains("read on 127.0.0.1:"), "{err}");
    assert_eq!(conn.state(), SocketState::Connected);
    client.write_all(b"late").unwrap();
    assert_eq!(conn.read(&mut buffer, SOON).unwrap(), 4);
    // A full buffer is refused rather than read as end of stream.
    buffer.set_limit(4).unwrap();
    assert!(matches!(
        conn.read(&mut buffer, SOON),
        Err(SocketError::Buffer(_))
    ));
}

#[test]
fn accept_timeout_leaves_the_listener_usable() {
    let mut server = listener("127.0.0.1:0");
    let err = server.accept(Some(Duration::from_millis(50))).unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(server.state(), SocketState::Listening);
    let _client = TcpStream::connect(server.address().as_tcp().unwrap()).unwrap();
    server.accept(SOON).unwrap();
}

#[test]
fn connect_refused_names_the_address() {
    // A port that was just free: bind, note it, close.
    let free = {
        let s = listener("127.0.0.1:0");
        s.address().clone()
    };
    let err = Socket::connect(&free, SOON).unwrap_err();
    assert_eq!(err.io_kind(), Some(ErrorKind::ConnectionRefused), "{err}");
    assert!(err.to_string().contains(&free.to_string()));
    let missing = Address::Unix(unix_path("nobody-here"));
    assert!(Socket::connect(&missing, SOON).is_err());
}

#[test]
fn connect_times_out_against_a_full_backlog() {
    let mut server = Socket::from_address(&"127.0.0.1:0".parse().unwrap()).unwrap();
    server.listen(1).unwrap();
    let address = server.address().clone();
    let mut parked = Vec::new();
    let mut timed_out = None;
    // Nobody accepts: once the queue is full, the kernel drops SYNs and connects hang.
    for _ in 0..32 {
        match Socket::connect(&address, Some(Duration::from_millis(200))) {
            Ok(socket) => parked.push(socket),
            Err(e) => {
                timed_out = Some(e);
                break;
            }
        }
    }
    let err = timed_out.expect("a connect against a full backlog should time out");
    assert!(err.is_timeout(), "{err}");
    assert!(err.to_string().contains("connect"), "{err}");
}

#[test]
fn reset_mid_transfer_is_a_typed_error() {
    let mut server = listener("127.0.0.1:0");
    let client = TcpStream::connect(server.address().as_tcp().unwrap()).unwrap();
    let mut conn = server.accept(SOON).unwrap();
    let raw = socket2::Socket::from(client);
    (&raw).write_all(b"partial").unwrap();
    // Unread data in the peer's receive queue + linger 0: its close sends RST.
    conn.write(&mut filled(b"unread by the peer"), SOON)
        .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    raw.set_linger(Some(Duration::ZERO)).unwrap();
    drop(raw);
    std::thread::sleep(Duration::from_millis(20));
    let mut buffer = Buffer::new(64);
    // The bytes that arrived before the reset may still be read; then the reset shows.
    let mut outcome = conn.read(&mut buffer, SOON);
    if let Ok(n) = outcome {
        assert!(n <= 7);
        outcome = conn.read(&mut buffer, SOON);
    }
    let err = outcome.unwrap_err();
    assert_eq!(err.io_kind(), Some(ErrorKind::ConnectionReset), "{err}");
}

#[test]
fn a_live_tcp_connection_is_passed_over_a_unix_socket_and_continues() {
    // A TCP conversation: client <-> echo server.
    let echo = serve_tcp(ServerConfig::default(), |_| LineEcho);
    let mut tcp = Socket::connect(echo.local_address(), SOON).unwrap();
    tcp.write(&mut filled(b"before\n"), SOON).unwrap();
    let mut reply = Buffer::new(7);
    while reply.remaining() > 0 {
        tcp.read(&mut reply, SOON).unwrap();
    }

    // Hand the TCP socket to another thread over a Unix socket.
    let path = unix_path("fd-passing");
    let mut control = listener(&path.display().to_string());
    let control_address = control.address().clone();
    let receiver = std::thread::spawn(move || {
        let mut channel = Socket::connect(&control_address, SOON).unwrap();
        let mut passed = channel.read_socket(SOON).unwrap();
        assert_eq!(passed.state(), SocketState::Connected);
        assert!(matches!(passed.address(), Address::Tcp(_)));
        passed.write(&mut filled(b"after\n"), SOON).unwrap();
        let mut reply = Buffer::new(6);
        while reply.remaining() > 0 {
            passed.read(&mut reply, SOON).unwrap();
        }
        reply.flip();
        reply.read_remaining().into_owned()
    });
    let mut channel = control.accept(SOON).unwrap();
    channel.write_socket(&tcp, SOON).unwrap();
    tcp.close().unwrap(); // the receiver's copy keeps the connection open
    assert_eq!(receiver.join().unwrap(), b"after\n");

    // The receiver is gone: its end of the channel closed, and reading a descriptor from a
    // closed channel is a typed error, not a descriptor.
    let err = channel.read_socket(SOON).unwrap_err();
    assert_eq!(err.io_kind(), Some(ErrorKind::UnexpectedEof), "{err}");
    // A TCP socket cannot carry descriptors: a typed error on both ends.
    let mut other = Socket::connect(echo.local_address(), SOON).unwrap();
    assert!(matches!(
        other.read_socket(SOON),
        Err(SocketError::WrongKind {
            op: "read_socket",
            ..
        })
    ));
    assert!(matches!(
        other.write_socket(&channel, SOON),
        Err(SocketError::WrongKind {
            op: "write_socket",
            ..
        })
    ));
    let _ = std::fs::remove_file(path);
}

#[test]
fn wrong_state_calls_are_errors_not_panics() {
    let mut server = listener("127.0.0.1:0");
    let mut buffer = Buffer::new(4);
    let err = server.read(&mut buffer, SOON).unwrap_err();
    assert_eq!(err.to_string(), "cannot read a socket that is listening");
    assert!(server.listen(4).is_err(), "listen twice");
    let mut fresh = Socket::from_address(&"127.0.0.1:0".parse().unwrap()).unwrap();
    assert!(fresh.accept(SOON).is_err(), "accept before listen");
    fresh.close().unwrap();
    assert!(fresh.write(&mut filled(b"x"), SOON).is_err());
}

fn echo_once(address: &Address, line: &[u8]) -> Vec<u8> {
    let mut client = TcpStream::connect(address.as_tcp().unwrap()).unwrap();
    client.set_read_timeout(SOON).unwrap();
    client.write_all(line).unwrap();
    let mut reply = vec![0u8; line.len()];
    client.read_exact(&mut reply).unwrap();
    reply
}

#[test]
fn socket_server_seed_api_sessions_then_close_then_serve_again() {
    let mut server = SocketServer::new("127.0.0.1:0".parse().unwrap());
    server.bind().unwrap();
    server.listen(255).unwrap();
    server.serve_session(|_: &Address| LineEcho).unwrap();
    let address = server.local_address().clone();
    assert_eq!(echo_once(&address, b"seed\n"), b"seed\n");
    server.close().unwrap();
    assert!(TcpStream::connect(address.as_tcp().unwrap()).is_err());
    // Serving again after close binds and listens anew (on the same port).
    server.serve_session(|_: &Address| LineEcho).unwrap();
    assert_eq!(server.local_address(), &address);
    assert_eq!(echo_once(&address, b"again\n"), b"again\n");
    server.close().unwrap();
}

#[test]
fn socket_server_blocking_handlers_survive_failing_and_panicking_ones() {
    let mut server = SocketServer::new("127.0.0.1:0".parse().unwrap());
    server.listen(255).unwrap();
    server
        .serve(|mut socket: Socket| {
            let mut buffer = Buffer::new(64);
            socket.read(&mut buffer, SOON)?;
            buffer.flip();
            match buffer.get(0) {
                Ok(b'!') => {
                    return Err(SocketError::NoDescriptor {
                        address: "a failing handler".into(),
                    });
                }
                Ok(b'?') => panic!("a panicking handler"),
                _ => {}
            }
            socket.write(&mut buffer, SOON)?;
            Ok::<(), SocketError>(())
        })
        .unwrap();
    let address = server.local_address().clone();
    assert_eq!(echo_once(&address, b"one"), b"one");
    for bad in [b"!", b"?"] {
        let mut client = TcpStream::connect(address.as_tcp().unwrap()).unwrap();
        client.set_read_timeout(SOON).unwrap();
        client.write_all(bad).unwrap();
        let mut rest = Vec::new();
        assert_eq!(
            client.read_to_end(&mut rest).unwrap(),
            0,
            "closed after the handler"
        );
    }
    assert_eq!(echo_once(&address, b"two"), b"two", "the server goes on");
    server.close().unwrap();
    assert!(TcpStream::connect(address.as_tcp().unwrap()).is_err());
}

#[test]
fn the_handler_server_runs_at_most_max_handler_threads_at_once() {
    let config = ServerConfig::default().with_max_handler_threads(2);
    let mut server = SocketServer::with_config("127.0.0.1:0".parse().unwrap(), config);
    server.listen(255).unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (now_running, most_seen) = (Arc::clone(&running), Arc::clone(&most));
    server
        .serve(move |mut socket: Socket| {
            let n = now_running.fetch_add(1, Ordering::SeqCst) + 1;
            most_seen.fetch_max(n, Ordering::SeqCst);
            // Echo one message, then wait for the client to close.
            let mut buffer = Buffer::new(64);
            socket.read(&mut buffer, SOON)?;
            buffer.flip();
            socket.write(&mut buffer, SOON)?;
            let mut rest = Buffer::new(64);
            let _ = socket.read(&mut rest, SOON);
            now_running.fetch_sub(1, Ordering::SeqCst);
            Ok::<(), SocketError>(())
        })
        .unwrap();
    let address = server.local_address().as_tcp().unwrap();
    let mut clients: Vec<TcpStream> = (0..3)
        .map(|_| {
            let client = TcpStream::connect(address).unwrap();
            client.set_read_timeout(SOON).unwrap();
            client
        })
        .collect();
    for client in &mut clients {
        client.write_all(b"x").unwrap();
    }
    let mut reply = [0u8; 1];
    clients[0].read_exact(&mut reply).unwrap();
    clients[1].read_exact(&mut reply).unwrap();
    // The third waits in the backlog: two threads run.
    clients[2]
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let early = clients[2].read(&mut reply);
    assert!(
        matches!(&early, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "no third handler while two run: {early:?}"
    );
    drop(clients.remove(0));
    clients[1].set_read_timeout(SOON).unwrap();
    clients[1].read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"x", "the third is served once a thread ends");
    assert_eq!(most.load(Ordering::SeqCst), 2);
    server.close().unwrap();
}
