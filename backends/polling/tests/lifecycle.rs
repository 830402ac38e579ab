//! The connection lifecycle on real loopback sockets, polling backend: replies survive a
//! session error at end of stream, client sessions over TCP and Unix, half-close, resets, and
//! refused or timed-out connects told to the session as end reasons.

mod common;

use common::{serve_tcp, unix_path};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::time::Duration;

use concurrence_core::{Address, ConnectionConfig, EndKind};
use concurrence_polling::{Socket, connect_session, serve};
use concurrence_socket::ServerConfig;
use concurrence_testkit::Script;
use concurrence_testkit::{
    LineEcho, ReportEnd, lines_with_a_partial_tail, send_all_then_read_to_end,
};

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn replies_to_complete_lines_survive_a_partial_last_line_at_end_of_stream() {
    let server = serve_tcp(ServerConfig::default(), |_| LineEcho);
    let Address::Tcp(addr) = server.local_address().clone() else {
        unreachable!()
    };
    for total in (8_180..=8_200).chain([16_384, 65_536]) {
        let (input, expected) = lines_with_a_partial_tail(total);
        assert_eq!(input.len(), total);
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let got = send_all_then_read_to_end(&mut stream, &input, |s| s.shutdown(Shutdown::Write))
            .unwrap();
        assert_eq!(got.len(), expected.len(), "{total} bytes sent");
        assert!(got == expected, "{total} bytes sent: the echo differs");
    }
    let path = unix_path("partial");
    let server = serve(
        &Address::Unix(path.clone()),
        ServerConfig::default(),
        |_| LineEcho,
    )
    .unwrap();
    for total in [8_185, 65_536] {
        let (input, expected) = lines_with_a_partial_tail(total);
        let mut stream = UnixStream::connect(&path).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let got = send_all_then_read_to_end(&mut stream, &input, |s| s.shutdown(Shutdown::Write))
            .unwrap();
        assert!(
            got == expected,
            "{total} bytes sent over Unix: the echo differs"
        );
    }
    drop(server);
}

/// A line echo server on `address` whose sessions report their ends on the returned channel.
fn echo_server(address: &Address) -> (concurrence_polling::ServerHandle, mpsc::Receiver<EndKind>) {
    let (ends, server_ends) = mpsc::channel();
    let server = serve(address, ServerConfig::default(), move |_| ReportEnd {
        inner: LineEcho,
        ends: ends.clone(),
    })
    .unwrap();
    (server, server_ends)
}

#[test]
fn a_client_session_talks_to_a_server_session_over_tcp_and_unix() {
    for address in [
        "127.0.0.1:0".parse::<Address>().unwrap(),
        Address::Unix(unix_path("client")),
    ] {
        let (server, server_ends) = echo_server(&address);
        let script = Script::new()
            .send("hello\nworld\n")
            .await_suffix("world\n")
            .close();
        let ended = connect_session(server.local_address(), script, ConnectionConfig::default());
        assert_eq!(ended.reason.kind(), EndKind::Closed, "{address}");
        assert_eq!(ended.session.received(), b"hello\nworld\n");
        assert_eq!(
            ended.session.end_kind(),
            Some(EndKind::Closed),
            "told to the session"
        );
        assert_eq!(
            server_ends.recv_timeout(WAIT).unwrap(),
            EndKind::PeerClosed,
            "{address}"
        );
    }
}

#[test]
fn a_client_half_close_still_gets_every_reply() {
    let (server, server_ends) = echo_server(&"127.0.0.1:0".parse().unwrap());
    // The client sends its requests and its FIN at once; the server answers both lines, then
    // closes on the client's end of stream.
    let script = Script::new().send("a\nb\n").close_write();
    let ended = connect_session(server.local_address(), script, ConnectionConfig::default());
    assert_eq!(ended.session.received(), b"a\nb\n");
    assert!(ended.session.saw_peer_close());
    assert_eq!(
        ended.reason.kind(),
        EndKind::Closed,
        "the client closed first"
    );
    assert_eq!(server_ends.recv_timeout(WAIT).unwrap(), EndKind::PeerClosed);
}

#[test]
fn a_client_abort_is_a_reset_for_the_server_session() {
    let (server, server_ends) = echo_server(&"127.0.0.1:0".parse().unwrap());
    let script = Script::new().send("x\n").await_suffix("x\n").reset();
    let ended = connect_session(server.local_address(), script, ConnectionConfig::default());
    assert_eq!(ended.reason.kind(), EndKind::Aborted);
    assert_eq!(server_ends.recv_timeout(WAIT).unwrap(), EndKind::Reset);
}

#[test]
fn refused_and_timed_out_connects_are_told_to_the_client_session() {
    // Nobody listens on a port that was just freed, nor on a missing Unix path.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for address in [Address::Tcp(free), Address::Unix(unix_path("nobody"))] {
        let ended = connect_session(
            &address,
            Script::new().send("x"),
            ConnectionConfig::default(),
        );
        assert_eq!(ended.reason.kind(), EndKind::ConnectRefused, "{address}");
        assert_eq!(ended.session.end_kind(), Some(EndKind::ConnectRefused));
    }
    // A listener that never accepts, with its backlog full, leaves new connects hanging.
    let mut listener = Socket::from_address(&"127.0.0.1:0".parse().unwrap()).unwrap();
    listener.listen(1).unwrap();
    let address = listener.local_address().unwrap();
    let quick = ConnectionConfig::default().with_connect_timeout(Some(Duration::from_millis(200)));
    let mut parked = Vec::new();
    for _ in 0..32 {
        match Socket::connect(&address, Some(Duration::from_millis(200))) {
            Ok(socket) => parked.push(socket),
            Err(err) => {
                assert!(err.is_timeout(), "{err}");
                let ended = connect_session(&address, Script::new(), quick);
                assert_eq!(ended.reason.kind(), EndKind::ConnectTimedOut);
                assert_eq!(ended.session.end_kind(), Some(EndKind::ConnectTimedOut));
                return;
            }
        }
    }
    panic!("no connect timed out against a full backlog");
}

#[test]
fn a_client_session_is_woken_by_the_application_from_another_thread() {
    let server = serve_tcp(ServerConfig::default(), |_| LineEcho);
    let address = server.local_address().clone();
    let (relay, sender, progress) = concurrence_testkit::Relay::new(12);
    let client =
        // The idle timeout turns a client that is never woken into a failure, not a hang.
        std::thread::spawn(move || connect_session(&address, relay, idle_after(WAIT)));
    sender.send(b"first\n".to_vec()).unwrap();
    // The echo came back: the client now waits on its socket with nothing to send, nothing
    // to read and no deadline; only the application's event can move it.
    while progress.recv_timeout(WAIT).expect("the first echo") < 6 {}
    std::thread::spawn(move || sender.send(b"again\n".to_vec()).unwrap())
        .join()
        .unwrap();
    let ended = client.join().unwrap();
    assert_eq!(ended.session.received, b"first\nagain\n");
    assert_eq!(ended.reason.kind(), EndKind::Closed);
}

fn idle_after(idle: Duration) -> ConnectionConfig {
    ConnectionConfig::default().with_idle_timeout(Some(idle))
}
