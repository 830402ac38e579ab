//! The seed's async `Socket` on the uring backend's reactor, on real loopback sockets: a round
//! trip over TCP and Unix under a plain `block_on`, typed timeouts that leave the socket
//! usable, and a close that is done when it returns (the reactor cancels the socket's pending
//! polls before the descriptor closes, and the closing call waits for it). The rest of the
//! seed API runs in the conformance suite's uring column.

use std::time::{Duration, Instant};

use concurrence_core::{Address, Buffer, SocketState};
use concurrence_uring::Socket;
use futures_lite::future::block_on;

const SOON: Option<Duration> = Some(Duration::from_secs(5));

fn listening(address: &str) -> (Socket, Address) {
    let mut listener = Socket::from_address(&address.parse().expect("address")).expect("socket");
    listener.listen(16).expect("listen");
    let address = listener.local_address().expect("bound");
    (listener, address)
}

fn round_trip(address: &str) {
    let (mut listener, address) = listening(address);
    block_on(async {
        let mut client = Socket::connect(&address, SOON).await.expect("connect");
        let mut server = listener.accept(SOON).await.expect("accept");
        let mut out = Buffer::new(5);
        out.write_bytes(b"hello").expect("fits");
        out.flip();
        assert_eq!(client.write(&mut out, SOON).await.expect("write"), 5);
        let mut got = Buffer::new(16);
        server.read(&mut got, SOON).await.expect("read");
        got.flip();
        assert_eq!(&*got.read_remaining(), b"hello");
        client.close().expect("close");
        let mut rest = Buffer::new(16);
        server.read(&mut rest, SOON).await.expect("read the end");
        assert_eq!(rest.position(), 0, "end of stream after the close");
    });
}

#[test]
fn a_round_trip_over_tcp_and_unix() {
    round_trip("127.0.0.1:0");
    let path = std::env::temp_dir().join(format!(
        "concurrence-uring-socket-{}.sock",
        std::process::id()
    ));
    round_trip(path.to_str().expect("utf-8 path"));
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_read_times_out_at_its_timeout_and_the_socket_stays_usable() {
    let (mut listener, address) = listening("127.0.0.1:0");
    block_on(async {
        let mut client = Socket::connect(&address, SOON).await.expect("connect");
        let mut server = listener.accept(SOON).await.expect("accept");
        let started = Instant::now();
        let mut buffer = Buffer::new(8);
        let error = server
            .read(&mut buffer, Some(Duration::from_millis(100)))
            .await
            .expect_err("nothing to read");
        assert!(error.is_timeout(), "{error}");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(100) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
        assert_eq!(server.state(), SocketState::Connected);
        let mut late = Buffer::new(4);
        late.write_bytes(b"late").expect("fits");
        late.flip();
        client.write(&mut late, SOON).await.expect("write");
        server
            .read(&mut buffer, SOON)
            .await
            .expect("the late bytes");
        buffer.flip();
        assert_eq!(&*buffer.read_remaining(), b"late");
    });
}

#[test]
fn a_listener_with_an_accept_pending_refuses_connections_once_close_returns() {
    // A pending accept leaves a poll in the kernel that holds the listener's file open: the
    // close must cancel it before it returns, or connects would still land in the backlog.
    let (mut listener, address) = listening("127.0.0.1:0");
    block_on(async {
        let timed_out = listener.accept(Some(Duration::from_millis(20))).await;
        assert!(timed_out.is_err_and(|e| e.is_timeout()));
    });
    listener.close().expect("close");
    let refused = std::net::TcpStream::connect(address.as_tcp().expect("tcp"));
    assert_eq!(
        refused.map(drop).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionRefused),
        "the listener is gone when close returns"
    );
}

#[test]
fn a_failing_or_panicking_handler_ends_only_its_connection() {
    use std::io::{Read, Write};
    let mut server = concurrence_uring::SocketServer::new("127.0.0.1:0".parse().expect("address"));
    server
        .serve(|mut socket: Socket| async move {
            let mut buffer = Buffer::new(16);
            socket.read(&mut buffer, SOON).await?;
            buffer.flip();
            match buffer.read_remaining().first() {
                Some(b'p') => panic!("asked to panic"),
                Some(b'f') => Err(concurrence_socket::SocketError::io(
                    "handle",
                    "-",
                    std::io::Error::other("asked to fail"),
                )),
                _ => {
                    buffer.rewind();
                    socket.write(&mut buffer, SOON).await?;
                    Ok(())
                }
            }
        })
        .expect("serve");
    let address = server.local_address().as_tcp().expect("tcp");
    for ask in [&b"p"[..], b"f"] {
        let mut client = std::net::TcpStream::connect(address).expect("connect");
        client.set_read_timeout(SOON).expect("timeout");
        client.write_all(ask).expect("write");
        let mut rest = Vec::new();
        let _ = client.read_to_end(&mut rest);
        assert!(rest.is_empty(), "the connection just closes");
    }
    let mut client = std::net::TcpStream::connect(address).expect("connect");
    client.set_read_timeout(SOON).expect("timeout");
    client.write_all(b"echo").expect("write");
    let mut reply = [0u8; 4];
    client
        .read_exact(&mut reply)
        .expect("the server still serves");
    assert_eq!(&reply, b"echo");
    server.close().expect("close");
}
