//! The connection lifecycle on real loopback sockets, smol backend: replies survive a session
//! error at end of stream, client sessions over TCP and Unix, half-close, resets, and refused
//! or timed-out connects told to the session as end reasons.

mod common;

use common::unix_path;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::mpsc;
use std::time::Duration;

use concurrence_core::{Address, ConnectionConfig, EndKind};
use concurrence_smol::{CloseHandle, Socket, SocketServer, connect_session};
use concurrence_socket::ServerConfig;
use concurrence_testkit::Script;
use concurrence_testkit::{
    LineEcho, ReportEnd, lines_with_a_partial_tail, send_all_then_read_to_end,
};

const WAIT: Duration = Duration::from_secs(10);

/// A line echo server on `address` (smol's global executor) whose sessions report their ends
/// on the returned channel.
fn echo_server(address: &Address) -> (Address, CloseHandle, mpsc::Receiver<EndKind>) {
    let (ends, server_ends) = mpsc::channel();
    let mut server = SocketServer::with_config(address.clone(), ServerConfig::default());
    server.listen(255).unwrap();
    let (bound, closer) = (server.local_address().clone(), server.close_handle());
    smol::spawn(async move {
        server
            .serve_session(move |_| ReportEnd {
                inner: LineEcho,
                ends: ends.clone(),
            })
            .await
            .unwrap();
    })
    .detach();
    (bound, closer, server_ends)
}

#[test]
fn replies_to_complete_lines_survive_a_partial_last_line_at_end_of_stream() {
    let (tcp, tcp_closer, _) = echo_server(&"127.0.0.1:0".parse().unwrap());
    let (unix, unix_closer, _) = echo_server(&Address::Unix(unix_path("partial")));
    let sizes = (8_180..=8_200).chain([16_384, 65_536]);
    for (address, total) in sizes
        .map(|n| (&tcp, n))
        .chain([(&unix, 8_185), (&unix, 65_536)])
    {
        let (input, expected) = lines_with_a_partial_tail(total);
        let got = match address {
            Address::Tcp(addr) => {
                let mut stream = std::net::TcpStream::connect(addr).unwrap();
                stream.set_read_timeout(Some(WAIT)).unwrap();
                send_all_then_read_to_end(&mut stream, &input, |s| s.shutdown(Shutdown::Write))
                    .unwrap()
            }
            Address::Unix(path) => {
                let mut stream = std::os::unix::net::UnixStream::connect(path).unwrap();
                stream.set_read_timeout(Some(WAIT)).unwrap();
                send_all_then_read_to_end(&mut stream, &input, |s| s.shutdown(Shutdown::Write))
                    .unwrap()
            }
        };
        assert_eq!(got.len(), expected.len(), "{total} bytes sent to {address}");
        assert!(
            got == expected,
            "{total} bytes sent to {address}: the echo differs"
        );
    }
    tcp_closer.close();
    unix_closer.close();
}

#[test]
fn a_client_session_talks_to_a_server_session_over_tcp_and_unix() {
    for address in [
        "127.0.0.1:0".parse::<Address>().unwrap(),
        Address::Unix(unix_path("client")),
    ] {
        let (bound, closer, server_ends) = echo_server(&address);
        let script = Script::new()
            .send("hello\nworld\n")
            .await_suffix("world\n")
            .close();
        let ended = smol::block_on(connect_session(&bound, script, ConnectionConfig::default()));
        assert_eq!(ended.reason.kind(), EndKind::Closed, "{address}");
        assert_eq!(ended.session.received(), b"hello\nworld\n");
        assert_eq!(ended.session.end_kind(), Some(EndKind::Closed));
        assert_eq!(server_ends.recv_timeout(WAIT).unwrap(), EndKind::PeerClosed);
        closer.close();
    }
}

#[test]
fn a_client_half_close_still_gets_every_reply_under_any_executor() {
    let (bound, closer, server_ends) = echo_server(&"127.0.0.1:0".parse().unwrap());
    let script = Script::new().send("a\nb\n").close_write();
    // futures-lite's block_on on a plain thread: async-io runs its own reactor.
    let ended = futures_lite::future::block_on(connect_session(
        &bound,
        script,
        ConnectionConfig::default(),
    ));
    assert_eq!(ended.session.received(), b"a\nb\n");
    assert!(ended.session.saw_peer_close());
    assert_eq!(
        ended.reason.kind(),
        EndKind::Closed,
        "the client closed first"
    );
    assert_eq!(server_ends.recv_timeout(WAIT).unwrap(), EndKind::PeerClosed);
    closer.close();
}

#[test]
fn a_client_abort_is_a_reset_for_the_server_session() {
    let (bound, closer, server_ends) = echo_server(&"127.0.0.1:0".parse().unwrap());
    let script = Script::new().send("x\n").await_suffix("x\n").reset();
    let ended = smol::block_on(connect_session(&bound, script, ConnectionConfig::default()));
    assert_eq!(ended.reason.kind(), EndKind::Aborted);
    assert_eq!(server_ends.recv_timeout(WAIT).unwrap(), EndKind::Reset);
    closer.close();
}

#[test]
fn refused_and_timed_out_connects_are_told_to_the_client_session() {
    smol::block_on(async {
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        for address in [Address::Tcp(free), Address::Unix(unix_path("nobody"))] {
            let ended = connect_session(
                &address,
                Script::new().send("x"),
                ConnectionConfig::default(),
            )
            .await;
            assert_eq!(ended.reason.kind(), EndKind::ConnectRefused, "{address}");
            assert_eq!(ended.session.end_kind(), Some(EndKind::ConnectRefused));
        }
        // A listener that never accepts, with its backlog full, leaves new connects hanging.
        let listener = common::listening(&"127.0.0.1:0".parse().unwrap(), 1).unwrap();
        let address = listener.address().clone();
        let quick =
            ConnectionConfig::default().with_connect_timeout(Some(Duration::from_millis(200)));
        let mut parked = Vec::new();
        for _ in 0..32 {
            match Socket::connect(&address, Some(Duration::from_millis(200))).await {
                Ok(socket) => parked.push(socket),
                Err(err) => {
                    assert!(err.is_timeout(), "{err}");
                    let ended = connect_session(&address, Script::new(), quick).await;
                    assert_eq!(ended.reason.kind(), EndKind::ConnectTimedOut);
                    assert_eq!(ended.session.end_kind(), Some(EndKind::ConnectTimedOut));
                    return;
                }
            }
        }
        panic!("no connect timed out against a full backlog");
    });
}

#[test]
fn a_client_session_is_woken_by_the_application_from_another_thread() {
    let (address, closer, _ends) = echo_server(&"127.0.0.1:0".parse().unwrap());
    let (relay, sender, progress) = concurrence_testkit::Relay::new(12);
    // The idle timeout turns a client that is never woken into a failure, not a hang.
    let config = ConnectionConfig::default().with_idle_timeout(Some(Duration::from_secs(10)));
    let client =
        std::thread::spawn(move || smol::block_on(connect_session(&address, relay, config)));
    sender.send(b"first\n".to_vec()).unwrap();
    // The echo came back: the client task now waits with nothing to send, nothing to read and
    // no deadline but the idle one; only the application's event can move it.
    while progress
        .recv_timeout(Duration::from_secs(10))
        .expect("the first echo")
        < 6
    {}
    std::thread::spawn(move || sender.send(b"again\n".to_vec()).unwrap())
        .join()
        .unwrap();
    let ended = client.join().unwrap();
    assert_eq!(ended.session.received, b"first\nagain\n");
    assert_eq!(ended.reason.kind(), EndKind::Closed);
    closer.close();
}

#[test]
fn closing_the_server_gives_live_sessions_the_grace_period_then_ends_them() {
    let grace = Duration::from_millis(300);
    let (ends, server_ends) = mpsc::channel();
    let config = ServerConfig::default()
        .with_shutdown_grace(grace)
        .with_idle_timeout(None);
    let mut server = SocketServer::with_config("127.0.0.1:0".parse().unwrap(), config);
    server.listen(16).unwrap();
    let (address, closer) = (server.local_address().clone(), server.close_handle());
    let serving = std::thread::spawn(move || {
        smol::block_on(server.serve_session(move |_| ReportEnd {
            inner: LineEcho,
            ends: ends.clone(),
        }))
    });
    let Address::Tcp(addr) = address else {
        unreachable!()
    };
    let mut finishing = std::net::TcpStream::connect(addr).unwrap();
    let mut lingering = std::net::TcpStream::connect(addr).unwrap();
    for stream in [&mut finishing, &mut lingering] {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(b"hi\n").unwrap();
        let mut reply = [0u8; 3];
        stream.read_exact(&mut reply).unwrap();
    }
    closer.close();
    serving.join().unwrap().unwrap();
    // During the grace period a live connection still works and may finish by itself.
    finishing.write_all(b"last words\nQUIT\n").unwrap();
    let mut reply = Vec::new();
    finishing.read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"last words\n");
    drop(finishing); // our FIN ends its lingering close
    assert_eq!(
        server_ends.recv_timeout(Duration::from_secs(10)).unwrap(),
        EndKind::Closed
    );
    // The other is ended when the grace period is over (it has no idle timeout).
    let mut rest = Vec::new();
    assert_eq!(lingering.read_to_end(&mut rest).unwrap(), 0);
    assert_eq!(
        server_ends.recv_timeout(Duration::from_secs(10)).unwrap(),
        EndKind::Shutdown
    );
}

#[test]
fn a_closed_server_serves_again() {
    let mut server = SocketServer::new("127.0.0.1:0".parse().unwrap());
    server.listen(16).unwrap();
    let Address::Tcp(addr) = server.local_address().clone() else {
        unreachable!()
    };
    let closer = server.close_handle();
    let (listening_tx, listening) = mpsc::channel();
    let served = std::thread::spawn(move || {
        smol::block_on(async {
            for round in 0..2 {
                // Listening before the serve call starts: a client may connect at once.
                server.listen(16).unwrap();
                listening_tx.send(round).unwrap();
                server
                    .serve_session(|_| LineEcho)
                    .await
                    .unwrap_or_else(|e| panic!("serve round {round}: {e}"));
            }
        });
    });
    for round in 0..2 {
        assert_eq!(
            listening.recv_timeout(Duration::from_secs(10)).unwrap(),
            round
        );
        let mut client = std::net::TcpStream::connect(addr).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        client.write_all(b"round\n").unwrap();
        let mut reply = [0u8; 6];
        client.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"round\n", "round {round}");
        closer.close();
    }
    served.join().unwrap();
}
