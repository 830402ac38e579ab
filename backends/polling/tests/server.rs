//! The polling event-loop server with the backend's own blocking `Socket` as the client. The
//! checks every event-loop server passes (echo, large transfers, resets, 1,000 clients,
//! shutdown, idle timeout, the cap, calls per request) run on polling and uring in
//! `conformance/tests/event_loop_servers.rs`.

mod common;

use common::*;
use concurrence_core::BufferedStream;
use concurrence_polling::Socket;
use concurrence_socket::ServerConfig;
use concurrence_testkit::LineEcho;

#[test]
fn line_echo_over_tcp_with_the_blocking_socket_client() {
    let server = serve_tcp(ServerConfig::default(), |_| LineEcho);
    let socket = Socket::connect(server.local_address(), SOON).unwrap();
    let mut stream = BufferedStream::new(socket);
    stream.write_bytes(b"hello\r\nworld\n").unwrap();
    stream.flush().unwrap();
    assert_eq!(stream.readline().unwrap(), b"hello\r\n");
    assert_eq!(stream.readline().unwrap(), b"world\n");
    stream.write_bytes(b"QUIT\r\n").unwrap();
    stream.flush().unwrap();
    assert_eq!(
        stream.read_line().unwrap(),
        None,
        "server closed after QUIT"
    );
    server.shutdown();
    server.join().unwrap();
}
