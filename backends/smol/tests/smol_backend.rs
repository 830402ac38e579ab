//! The smol backend on real loopback sockets, under three executors (smol, futures-lite's
//! `block_on` on a plain thread, tokio): echo over TCP and Unix, Sessions, large transfers with
//! a slow reader, timeouts, refused connects, resets, descriptor passing, 1,000 clients, and a
//! handler that panics.

mod common;

use common::unix_path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use concurrence_core::{
    Address, AsyncBufferedStream, Buffer, EndKind, Session, SocketState, WriterConfig,
};
use concurrence_smol::{Socket, SocketServer, Spawn, Task};
use concurrence_socket::{ServerConfig, SocketError};
use concurrence_testkit::{ByteEcho, LineEcho, ReportEnd, pattern};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

const SOON: Option<Duration> = Some(Duration::from_secs(5));

/// A handler-based echo server: reads lines with the core's AsyncBufferedStream, writes them
/// back. Returns the address and a handle that closes it.
fn start_handler_server(
    address: &str,
    spawner: impl Spawn + Clone,
) -> (Address, concurrence_smol::CloseHandle) {
    let mut server = SocketServer::new(address.parse().unwrap()).with_spawner(spawner.clone());
    server.listen(255).unwrap();
    let (bound, closer) = (server.local_address().clone(), server.close_handle());
    spawner.spawn(Box::pin(async move {
        server
            .serve(|socket: Socket| async move {
                let mut stream = AsyncBufferedStream::new(socket);
                while let Some(line) = stream.next_line().await? {
                    stream.write_bytes(&line).await?;
                    stream.write_bytes(b"\n").await?;
                    stream.flush().await?;
                }
                Ok::<(), concurrence_core::StreamError>(())
            })
            .await
            .unwrap();
    }));
    (bound, closer)
}

/// The client half of every executor test.
async fn echo_client(address: Address) {
    let socket = Socket::connect(&address, SOON).await.unwrap();
    assert_eq!(socket.state(), SocketState::Connected);
    let mut stream = AsyncBufferedStream::new(socket);
    for line in ["one", "two", "three"] {
        stream.write_bytes(line.as_bytes()).await.unwrap();
        stream.write_bytes(b"\r\n").await.unwrap();
    }
    stream.flush().await.unwrap();
    for line in ["one", "two", "three"] {
        assert_eq!(stream.read_line().await.unwrap(), Some(line.as_bytes()));
    }
}

fn smol_spawner() -> impl Spawn + Clone {
    |task: Task| smol::spawn(task).detach()
}

#[test]
fn echo_under_smol_block_on_tcp_and_unix() {
    smol::block_on(async {
        let path = unix_path("echo");
        for address in ["127.0.0.1:0".to_string(), path.display().to_string()] {
            let (bound, closer) = start_handler_server(&address, smol_spawner());
            echo_client(bound).await;
            closer.close();
        }
    });
}

#[test]
fn echo_under_futures_lite_block_on_on_a_plain_thread() {
    // The server's tasks run on smol's global executor; this thread only blocks on the client.
    let (bound, closer) = start_handler_server("127.0.0.1:0", smol_spawner());
    std::thread::spawn(move || futures_lite::future::block_on(echo_client(bound)))
        .join()
        .unwrap();
    closer.close();
}

#[test]
fn echo_under_a_tokio_runtime() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let handle = runtime.handle().clone();
    let spawner = move |task: Task| {
        handle.spawn(task);
    };
    runtime.block_on(async move {
        let (bound, closer) = start_handler_server("127.0.0.1:0", spawner);
        echo_client(bound).await;
        closer.close();
    });
}

fn start_session_server<S: Session + Send + 'static>(
    config: ServerConfig,
    factory: impl Fn(&Address) -> S + Send + Sync + 'static,
) -> (Address, concurrence_smol::CloseHandle) {
    let mut server = SocketServer::with_config("127.0.0.1:0".parse().unwrap(), config);
    server.listen(255).unwrap();
    let (bound, closer) = (server.local_address().clone(), server.close_handle());
    smol::spawn(async move { server.serve_session(factory).await.unwrap() }).detach();
    (bound, closer)
}

#[test]
fn the_same_session_the_polling_backend_serves() {
    let (bound, closer) = start_session_server(ServerConfig::default(), |_| LineEcho);
    smol::block_on(async {
        let mut socket = Socket::connect(&bound, SOON).await.unwrap();
        socket.write_all(b"a\r\nb\nQUIT\n").await.unwrap();
        let mut reply = Vec::new();
        socket.read_to_end(&mut reply).await.unwrap();
        assert_eq!(reply, b"a\r\nb\n", "echoed, then closed after QUIT");
    });
    closer.close();
}

#[test]
fn sixty_four_mib_through_a_session_with_a_slow_reader_keeps_memory_flat() {
    let most = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&most);
    let writer = WriterConfig::default().with_high_water(64 * 1024);
    let mut config = ServerConfig::default();
    config.writer = writer;
    let (bound, closer) = start_session_server(config, move |_| ByteEcho {
        max_pending: Arc::clone(&seen),
    });
    let total = 64 << 20;
    smol::block_on(async {
        let socket = Socket::connect(&bound, SOON).await.unwrap();
        let (mut reader, mut writer) = futures_lite::io::split(socket);
        let sending = smol::spawn(async move {
            let chunk: Vec<u8> = (0..256 * 1024).map(pattern).collect();
            let mut sent = 0;
            while sent < total {
                writer.write_all(&chunk).await.unwrap();
                sent += chunk.len();
            }
        });
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0;
        let mut pauses = 0;
        while got < total {
            let n = reader.read(&mut buf).await.unwrap();
            assert!(n > 0);
            assert!(
                buf[..n]
                    .iter()
                    .enumerate()
                    .all(|(k, &b)| b == pattern((got + k) % (256 * 1024)))
            );
            got += n;
            if pauses < 20 {
                pauses += 1;
                async_io::Timer::after(Duration::from_millis(5)).await;
            }
        }
        sending.await;
    });
    let most = most.load(Ordering::SeqCst);
    assert!(
        most < 64 * 1024 + 16 * 1024,
        "server kept {most} bytes pending"
    );
    closer.close();
}

#[test]
fn timeouts_refusals_and_resets_are_typed() {
    smol::block_on(async {
        let mut listener = common::listening(&"127.0.0.1:0".parse().unwrap(), 1).unwrap();
        let address = listener.address().clone();
        // accept timeout leaves the listener usable
        let err = listener
            .accept(Some(Duration::from_millis(50)))
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");
        let mut client = Socket::connect(&address, SOON).await.unwrap();
        let mut conn = listener.accept(SOON).await.unwrap();
        // read timeout leaves the socket usable
        let mut buffer = Buffer::new(16);
        let started = Instant::now();
        let err = conn
            .read(&mut buffer, Some(Duration::from_millis(100)))
            .await
            .unwrap_err();
        assert!(err.is_timeout() && started.elapsed() >= Duration::from_millis(100));
        assert_eq!(conn.state(), SocketState::Connected);
        let mut out = Buffer::new(4);
        out.write_bytes(b"late").unwrap();
        out.flip();
        assert_eq!(client.write(&mut out, SOON).await.unwrap(), 4);
        assert_eq!(conn.read(&mut buffer, SOON).await.unwrap(), 4);
        // end of stream, then reading again is a state error
        client.close().unwrap();
        assert_eq!(conn.read(&mut buffer, SOON).await.unwrap(), 0);
        assert!(matches!(
            conn.read(&mut buffer, SOON).await,
            Err(SocketError::State(_))
        ));
        // a peer that resets: the read is a typed ConnectionReset error
        let resetting = std::net::TcpStream::connect(address.as_tcp().unwrap()).unwrap();
        let mut victim = listener.accept(SOON).await.unwrap();
        socket2::SockRef::from(&resetting)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(resetting); // RST
        let err = victim.read(&mut Buffer::new(16), SOON).await.unwrap_err();
        assert_eq!(
            err.io_kind(),
            Some(std::io::ErrorKind::ConnectionReset),
            "{err}"
        );
        // refused
        drop(listener);
        let err = Socket::connect(&address, SOON).await.unwrap_err();
        assert_eq!(
            err.io_kind(),
            Some(std::io::ErrorKind::ConnectionRefused),
            "{err}"
        );
    });
}

#[test]
fn connect_times_out_against_a_full_backlog() {
    smol::block_on(async {
        let _listener = common::listening(&"127.0.0.1:0".parse().unwrap(), 1).unwrap();
        let address = _listener.address().clone();
        let mut parked = Vec::new();
        for _ in 0..32 {
            match Socket::connect(&address, Some(Duration::from_millis(200))).await {
                Ok(socket) => parked.push(socket),
                Err(err) => {
                    assert!(err.is_timeout(), "{err}");
                    return;
                }
            }
        }
        panic!("no connect timed out against a full backlog");
    });
}

#[test]
fn a_live_tcp_connection_is_passed_over_a_unix_socket() {
    let (echo, closer) = start_session_server(ServerConfig::default(), |_| LineEcho);
    smol::block_on(async {
        let tcp = Socket::connect(&echo, SOON).await.unwrap();
        let path = unix_path("fd");
        let mut control = common::listening(&Address::Unix(path.clone()), 4).unwrap();
        let receiver = smol::spawn(async move {
            let mut channel = Socket::connect(&Address::Unix(path), SOON).await.unwrap();
            let mut passed = channel.read_socket(SOON).await.unwrap();
            assert!(matches!(passed.address(), Address::Tcp(_)));
            passed.write_all(b"via fd\n").await.unwrap();
            let mut reply = [0u8; 7];
            passed.read_exact(&mut reply).await.unwrap();
            reply
        });
        let mut channel = control.accept(SOON).await.unwrap();
        channel.write_socket(&tcp, SOON).await.unwrap();
        drop(tcp);
        assert_eq!(&receiver.await, b"via fd\n");
        // Passing over TCP is a typed error.
        let mut not_unix = Socket::connect(&echo, SOON).await.unwrap();
        let other = Socket::connect(&echo, SOON).await.unwrap();
        assert!(matches!(
            not_unix.write_socket(&other, SOON).await,
            Err(SocketError::WrongKind { .. })
        ));
    });
    closer.close();
}

#[test]
fn a_thousand_concurrent_clients() {
    common::raise_nofile();
    let (bound, closer) = start_session_server(ServerConfig::default(), |_| LineEcho);
    smol::block_on(async {
        let clients: Vec<_> = (0..1000)
            .map(|i| {
                let bound = bound.clone();
                smol::spawn(async move {
                    let mut socket = Socket::connect(&bound, SOON).await.unwrap();
                    let line = format!("client {i:04}\n");
                    socket.write_all(line.as_bytes()).await.unwrap();
                    let mut reply = vec![0u8; line.len()];
                    socket.read_exact(&mut reply).await.unwrap();
                    assert_eq!(reply, line.as_bytes());
                    socket
                })
            })
            .collect();
        let mut open = Vec::new();
        for client in clients {
            open.push(client.await);
        }
        assert_eq!(closer.connections(), 1000, "all 1,000 open at once");
        drop(open);
    });
    common::eventually("every connection closed", || closer.connections() == 0);
    closer.close();
}

#[test]
fn a_panicking_or_failing_handler_does_not_stop_the_server() {
    let served = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&served);
    let mut server = SocketServer::new("127.0.0.1:0".parse().unwrap());
    server.listen(16).unwrap();
    let (bound, closer) = (server.local_address().clone(), server.close_handle());
    smol::spawn(async move {
        server
            .serve(move |mut socket: Socket| {
                let n = count.fetch_add(1, Ordering::SeqCst);
                async move {
                    match n {
                        0 => panic!("handler bug on the first connection"),
                        1 => Err("handler error on the second".to_string()),
                        _ => {
                            socket
                                .write_all(b"fine\n")
                                .await
                                .map_err(|e| e.to_string())?;
                            Ok(())
                        }
                    }
                }
            })
            .await
            .unwrap();
    })
    .detach();
    smol::block_on(async {
        for _ in 0..2 {
            let mut socket = Socket::connect(&bound, SOON).await.unwrap();
            let mut rest = Vec::new();
            socket.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty(), "the failed handler's socket was closed");
        }
        let mut socket = Socket::connect(&bound, SOON).await.unwrap();
        let mut reply = Vec::new();
        socket.read_to_end(&mut reply).await.unwrap();
        assert_eq!(reply, b"fine\n", "still serving after a panic and an error");
    });
    closer.close();
    // After close, new connections are refused once the accept loop has dropped the listener.
    let until = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(bound.as_tcp().unwrap()).is_ok() {
        assert!(Instant::now() < until, "listener still open after close");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_reset_peer_is_dropped_and_the_server_keeps_serving() {
    let (bound, closer) = start_session_server(ServerConfig::default(), |_| LineEcho);
    let addr = bound.as_tcp().unwrap();
    {
        use std::io::Write;
        let client = std::net::TcpStream::connect(addr).unwrap();
        let raw = std::net::TcpStream::try_clone(&client).unwrap();
        (&raw).write_all(&vec![b'x'; 100_000]).unwrap();
        common::eventually("the connection is served", || closer.connections() == 1);
        // SO_LINGER 0 through rustix: closing with unread data sends RST.
        rustix::net::sockopt::set_socket_linger(&client, Some(Duration::ZERO)).unwrap();
    }
    common::eventually("the reset connection is gone", || closer.connections() == 0);
    smol::block_on(async {
        let mut socket = Socket::connect(&bound, SOON).await.unwrap();
        socket.write_all(b"after reset\n").await.unwrap();
        let mut reply = [0u8; 12];
        socket.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply, b"after reset\n");
    });
    closer.close();
}

#[test]
fn sessions_over_unix_and_idle_timeout() {
    let path = unix_path("sessions");
    let mut config = ServerConfig::default();
    config.idle_timeout = Some(Duration::from_millis(150));
    let mut server = SocketServer::with_config(Address::Unix(path.clone()), config);
    server.listen(16).unwrap();
    let closer = server.close_handle();
    smol::spawn(async move { server.serve_session(|_| LineEcho).await.unwrap() }).detach();
    smol::block_on(async {
        let mut socket = Socket::connect(&Address::Unix(path.clone()), SOON)
            .await
            .unwrap();
        socket.write_all(b"unix line\n").await.unwrap();
        let mut reply = [0u8; 10];
        socket.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply, b"unix line\n");
        // Then silence: the idle timeout closes the connection.
        let started = Instant::now();
        let mut rest = Vec::new();
        socket.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        assert!(
            started.elapsed() >= Duration::from_millis(100),
            "closed after {:?}",
            started.elapsed()
        );
    });
    closer.close();
}

#[test]
fn a_peer_that_stops_reading_is_closed_by_the_idle_timeout() {
    let mut config = ServerConfig::default();
    config.idle_timeout = Some(Duration::from_millis(200));
    let (ends, ended) = std::sync::mpsc::channel();
    let (bound, closer) = start_session_server(config, move |_| ReportEnd {
        inner: concurrence_testkit::Producer {
            total: 1 << 30,
            ..Default::default()
        },
        ends: ends.clone(),
    });
    smol::block_on(async {
        let mut socket = Socket::connect(&bound, SOON).await.unwrap();
        // Read nothing until the server gave up (it fills the kernel buffers, then idles).
        let end = ended.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(end, EndKind::IdleTimeout);
        let mut got = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match AsyncReadExt::read(&mut socket, &mut buf).await {
                Ok(0) => break,
                Err(e) => panic!("the idle server should close in order, not fail: {e}"),
                Ok(n) => got += n,
            }
        }
        assert!(
            got < 1 << 30,
            "the server gave up on the stalled peer after {got} bytes"
        );
    });
    closer.close();
}

#[test]
fn an_async_buffered_stream_read_times_out_and_end_of_stream_moves_the_state() {
    smol::block_on(async {
        let mut listener = common::listening(&"127.0.0.1:0".parse().unwrap(), 4).unwrap();
        let address = listener.address().clone();
        let mut socket = Socket::connect(&address, SOON).await.unwrap();
        let mut peer = listener.accept(SOON).await.unwrap();
        socket.set_timeouts(Some(Duration::from_millis(100)), SOON);
        let mut stream = AsyncBufferedStream::new(socket);
        // The peer sends nothing: the read gives up after its timeout, as a typed error.
        let started = Instant::now();
        let err = stream.read_line().await.unwrap_err();
        assert!(err.is_timeout(), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // The stream stays usable: a line sent now is read.
        let mut line = Buffer::new(8);
        line.write_bytes(b"late\n").unwrap();
        line.flip();
        peer.write(&mut line, SOON).await.unwrap();
        assert_eq!(stream.read_line().await.unwrap(), Some(&b"late"[..]));
        // End of stream moves the socket's state, as `Socket::read` does.
        peer.close().unwrap();
        assert_eq!(stream.read_line().await.unwrap(), None);
        assert_eq!(stream.get_ref().state(), SocketState::Closing);
    });
}
