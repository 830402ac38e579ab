//! Scenarios on the seed's socket API as async code: echo, half-close, a large transfer to a
//! slow reader, read and connect timeouts, refused connects, wrong-state operations, fd
//! passing and 200 concurrent clients.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use concurrence_core::ConnectionConfig;
use concurrence_socket::{ServerConfig, SocketError};

use crate::Transcript;
use crate::backend::{AddressKind, LocalFuture, Net, SessionFactory};
use crate::sessions::ScenarioEcho;
use crate::steps::{
    STEP_TIMEOUT, describe, describe_end, describe_error, listen, read_pattern_to_end, read_to_end,
    read_until_suffix, show, spawn_joined, task_line, write_all,
};

const STEP: Option<Duration> = Some(STEP_TIMEOUT);

/// Echo: the server echoes until end of stream; the client sends two lines, half-closes and
/// reads to the end.
pub(crate) async fn echo(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    let (mut listener, address) = listen(net, kind, 16)?;
    let server = spawn_joined(net, async move {
        let mut conn = listener.accept(STEP).await?;
        let mut echoed = 0;
        loop {
            let chunk = conn.read(4096, STEP).await?;
            if chunk.is_empty() {
                break;
            }
            echoed += chunk.len();
            write_all(&mut *conn, &chunk, STEP).await?;
        }
        conn.close()?;
        Ok::<_, SocketError>(echoed)
    });
    let mut client = net.connect(&address, STEP).await?;
    t.line("client connected");
    for line in [&b"hello\n"[..], b"world\n"] {
        write_all(&mut *client, line, STEP).await?;
        let reply = read_until_suffix(&mut *client, line, STEP).await?;
        t.line(format!("client received {}", show(&reply)));
    }
    client.shutdown_write()?;
    let rest = read_to_end(&mut *client, 1024, STEP).await?;
    t.line(format!("client read end of stream after {}", show(&rest)));
    t.line(task_line("server", server.await, |n| {
        format!("server echoed {n} bytes, then saw end of stream")
    }));
    client.close()?;
    Ok(())
}

/// Half-close, client first: the client sends and shuts down its write side; the server reads
/// to the end, then answers and closes.
pub(crate) async fn half_close_client_first(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    let (mut listener, address) = listen(net, kind, 16)?;
    let server = spawn_joined(net, async move {
        let mut conn = listener.accept(STEP).await?;
        let request = read_to_end(&mut *conn, 1024, STEP).await?;
        write_all(&mut *conn, b"pong after your end", STEP).await?;
        conn.close()?;
        Ok::<_, SocketError>(request)
    });
    let mut client = net.connect(&address, STEP).await?;
    write_all(&mut *client, b"ping", STEP).await?;
    client.shutdown_write()?;
    t.line("client sent 'ping' and shut down its write side");
    let reply = read_to_end(&mut *client, 1024, STEP).await?;
    t.line(format!(
        "client received {} then end of stream",
        show(&reply)
    ));
    t.line(task_line("server", server.await, |request| {
        format!("server received {} then end of stream", show(&request))
    }));
    client.close()?;
    Ok(())
}

/// Bytes in the large transfer: more than loopback's socket buffers hold, so the writer must
/// wait for the reader.
const LARGE_TRANSFER: usize = 24 * 1024 * 1024;

/// The byte at offset `i` of the large transfer.
fn pattern(i: usize) -> u8 {
    u8::try_from(i % 251).unwrap_or(0)
}

/// A large transfer to a reader that does not read at first: a write times out (the sender
/// is held back, nothing grows without bound), then the reader takes everything, in order.
pub(crate) async fn large_transfer_slow_reader(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    let (mut listener, address) = listen(net, kind, 16)?;
    let (held_tx, held_rx) = async_channel::bounded::<String>(1);
    let server = spawn_joined(net, async move {
        let mut conn = listener.accept(STEP).await?;
        let (mut sent, mut held) = (0, false);
        let (mut chunk, mut offset) = (Vec::new(), 0);
        while sent < LARGE_TRANSFER {
            if offset == chunk.len() {
                chunk = (sent..LARGE_TRANSFER.min(sent + 8 * 1024))
                    .map(pattern)
                    .collect();
                offset = 0;
            }
            let timeout = if held {
                STEP
            } else {
                Some(Duration::from_millis(200))
            };
            match conn.write(chunk[offset..].to_vec(), timeout).await {
                Ok(n) => {
                    sent += n;
                    offset += n;
                }
                Err(e) if !held && e.is_timeout() => {
                    held = true;
                    let _ = held_tx.send(describe_error(&e)).await;
                }
                Err(e) => return Err(e),
            }
        }
        if !held {
            let _ = held_tx.send("never held back".to_owned()).await;
        }
        conn.close()?;
        Ok::<_, SocketError>(sent)
    });
    let mut client = net.connect(&address, STEP).await?;
    let held = held_rx
        .recv()
        .await
        .unwrap_or_else(|_| "server gone".to_owned());
    t.line(format!("the writer, with nobody reading: {held}"));
    let (received, in_order) = read_pattern_to_end(&mut *client, STEP).await?;
    t.line(format!(
        "client received {received} bytes, in order: {in_order}"
    ));
    t.line(task_line("server", server.await, |sent| {
        format!("server sent {sent} bytes")
    }));
    client.close()?;
    Ok(())
}

/// A read that times out leaves the socket usable: the next read gets what came later.
pub(crate) async fn read_timeout(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    let (mut listener, address) = listen(net, kind, 16)?;
    let (timed_out_tx, timed_out_rx) = async_channel::bounded::<String>(1);
    let server = spawn_joined(net, async move {
        let mut conn = listener.accept(STEP).await?;
        let first = conn.read(100, Some(Duration::from_millis(100))).await;
        let _ = timed_out_tx
            .send(format!("{}; socket {:?}", describe(&first), conn.state()))
            .await;
        let late = read_until_suffix(&mut *conn, b"\n", STEP).await?;
        conn.close()?;
        Ok::<_, SocketError>(late)
    });
    let mut client = net.connect(&address, STEP).await?;
    let first = timed_out_rx
        .recv()
        .await
        .unwrap_or_else(|_| "server gone".to_owned());
    t.line(format!("server's first read: {first}"));
    write_all(&mut *client, b"late\n", STEP).await?;
    t.line(task_line("server", server.await, |late| {
        format!("server's next read: {}", show(&late))
    }));
    client.close()?;
    Ok(())
}

/// Connects to a listener whose backlog is full (it never accepts; the SYNs are dropped, as
/// Linux drops them) until one times out; a client session gets `ConnectTimedOut`.
pub(crate) async fn connect_timeout(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    let (listener, address) = listen(net, kind, 0)?;
    let mut held = Vec::new();
    let mut outcome = "every connect succeeded".to_owned();
    for _ in 0..16 {
        match net
            .connect(&address, Some(Duration::from_millis(300)))
            .await
        {
            Ok(stream) => held.push(stream),
            Err(e) => {
                outcome = describe_error(&e);
                break;
            }
        }
    }
    t.line(format!("connecting to a full backlog: {outcome}"));
    let config = ConnectionConfig::default().with_connect_timeout(Some(Duration::from_millis(300)));
    let session = Box::new(concurrence_testkit::Script::new().send("x\n"));
    let ended = net.connect_session(&address, session, config).await;
    t.line(format!(
        "client session end: {}",
        describe_end(&ended.reason)
    ));
    drop(held);
    drop(listener);
    Ok(())
}

/// Connecting where nobody listens (a closed listener's address) is refused, for a socket
/// and for a client session.
pub(crate) async fn connection_refused(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    let (mut listener, address) = listen(net, kind, 16)?;
    listener.close()?;
    let attempt = net.connect(&address, STEP).await;
    t.line(format!("connect: {}", describe(&attempt)));
    let session = Box::new(concurrence_testkit::Script::new().send("x\n"));
    let ended = net
        .connect_session(&address, session, ConnectionConfig::default())
        .await;
    t.line(format!(
        "client session end: {}",
        describe_end(&ended.reason)
    ));
    Ok(())
}

/// Operations in the wrong state give the same typed errors everywhere.
pub(crate) async fn wrong_state(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    let mut fresh = net.socket(&net.address(kind))?;
    let accept = fresh.accept(Some(Duration::from_millis(50))).await;
    t.line(format!("accept before listen: {}", describe(&accept)));
    let (mut listener, address) = listen(net, kind, 16)?;
    let mut client = net.connect(&address, STEP).await?;
    let mut server = listener.accept(STEP).await?;
    client.close()?;
    let write = client.write(b"x".to_vec(), STEP).await;
    t.line(format!("write after close: {}", describe(&write)));
    let read = client.read(16, STEP).await;
    t.line(format!("read after close: {}", describe(&read)));
    t.line(format!(
        "shutdown_write after close: {}",
        describe(&client.shutdown_write())
    ));
    t.line(format!("close again: {}", describe(&client.close())));
    t.line(format!("client state: {:?}", client.state()));
    let eof = server.read(16, STEP).await.map(|b| b.len());
    t.line(format!(
        "the peer reads: {}",
        match eof {
            Ok(0) => "end of stream".to_owned(),
            other => describe(&other),
        }
    ));
    server.close()?;
    listener.close()?;
    let accept = listener.accept(Some(Duration::from_millis(50))).await;
    t.line(format!("accept after close: {}", describe(&accept)));
    Ok(())
}

/// A connected socket passed over a Unix socket still reaches its peer after the sender
/// closed its own copy.
pub(crate) async fn fd_passing(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    let (mut listener, address) = listen(net, kind, 16)?;
    let mut channel_client = net.connect(&address, STEP).await?;
    let mut channel_server = listener.accept(STEP).await?;
    let mut far_client = net.connect(&address, STEP).await?;
    let mut passed = listener.accept(STEP).await?;
    channel_server.send_stream(&*passed, STEP).await?;
    passed.close()?;
    t.line("server passed its connection and closed its own copy");
    let mut received = channel_client.recv_stream(STEP).await?;
    write_all(&mut *received, b"through the passed socket\n", STEP).await?;
    received.close()?;
    let got = read_to_end(&mut *far_client, 1024, STEP).await?;
    t.line(format!(
        "the far client received {} then end of stream",
        show(&got)
    ));
    for stream in [&mut channel_client, &mut channel_server, &mut far_client] {
        stream.close()?;
    }
    Ok(())
}

/// Clients served at once by a session server in the concurrency scenario.
const CONCURRENT_CLIENTS: usize = 200;

/// 200 clients at once, each getting its own line back from a session server.
pub(crate) async fn concurrent_clients(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    let factory: SessionFactory = Arc::new(|_: &_| Box::new(ScenarioEcho));
    let mut server = net.serve_session(&net.address(kind), ServerConfig::default(), factory)?;
    let address = server.local_address();
    let mut clients = Vec::new();
    for i in 0..CONCURRENT_CLIENTS {
        let net2 = Rc::clone(net);
        let address = address.clone();
        clients.push(spawn_joined(net, async move {
            let mut stream = net2.connect(&address, STEP).await?;
            let line = format!("client {i}\n");
            write_all(&mut *stream, line.as_bytes(), STEP).await?;
            let reply = read_until_suffix(&mut *stream, b"\n", STEP).await?;
            stream.close()?;
            Ok::<_, SocketError>(reply == line.as_bytes())
        }));
    }
    let mut right = 0;
    let mut failures = Vec::new();
    for client in clients {
        match client.await {
            Some(Ok(true)) => right += 1,
            Some(Ok(false)) => failures.push("a wrong reply".to_owned()),
            Some(Err(e)) => failures.push(describe_error(&e)),
            None => failures.push("hung".to_owned()),
        }
    }
    t.line(format!(
        "{right} of {CONCURRENT_CLIENTS} clients got their own line back"
    ));
    failures.sort();
    failures.dedup();
    for failure in failures {
        t.line(format!("a client failed: {failure}"));
    }
    server.close();
    Ok(())
}

/// At `max_connections`, a newcomer waits (in the backlog) and is served once a connection
/// ends; it is not refused or reset.
pub(crate) async fn max_connections(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    max_connections_with(net, kind, t, ServerConfig::default()).await
}

/// The body of `max_connections`, with `config`'s other settings (its cap is set to 2).
async fn max_connections_with(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
    mut config: ServerConfig,
) -> Result<(), SocketError> {
    let started = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&started);
    let factory: SessionFactory = Arc::new(move |_: &_| {
        counted.fetch_add(1, Ordering::SeqCst);
        Box::new(ScenarioEcho)
    });
    config.max_connections = 2;
    let mut server = net.serve_session(&net.address(kind), config, factory)?;
    let address = server.local_address();
    let mut first = Vec::new();
    for i in 1..=2 {
        let mut stream = net.connect(&address, STEP).await?;
        write_all(&mut *stream, format!("{i}\n").as_bytes(), STEP).await?;
        let reply = read_until_suffix(&mut *stream, b"\n", STEP).await?;
        t.line(format!("client {i} served: {}", show(&reply)));
        first.push(stream);
    }
    let left = Rc::new(Cell::new(false));
    let (waiting_tx, waiting_rx) = async_channel::bounded::<()>(1);
    let third = {
        let (net2, address, left) = (Rc::clone(net), address.clone(), Rc::clone(&left));
        spawn_joined(net, async move {
            // The connect completes (the handshake is the kernel's), the request is sent,
            // and the connection waits in the backlog.
            let mut stream = net2.connect(&address, STEP).await?;
            write_all(&mut *stream, b"3\n", STEP).await?;
            let _ = waiting_tx.send(()).await;
            let reply = read_until_suffix(&mut *stream, b"\n", STEP).await?;
            let served_after_a_slot_freed = left.get();
            stream.close()?;
            Ok::<_, SocketError>((reply, served_after_a_slot_freed))
        })
    };
    t.line(match waiting_rx.recv().await {
        Ok(()) => format!(
            "client 3 connected and sent; sessions started: {}",
            started.load(Ordering::SeqCst)
        ),
        Err(_) => "client 3 could not connect and send".to_owned(),
    });
    left.set(true);
    first[0].close()?;
    t.line("client 1 left");
    t.line(task_line("client 3", third.await, |(reply, after)| {
        format!(
            "client 3 served: {}, only after client 1 left: {after}",
            show(&reply)
        )
    }));
    first[1].close()?;
    server.close();
    Ok(())
}

/// Round trips the fairness scenarios time beside the flood.
const ROUND_TRIPS: usize = 20;

/// The longest one of those round trips may take (real time on the socket backends, virtual
/// on the simulator).
const FAIR_BOUND: Duration = Duration::from_millis(250);

/// How long one flood step waits for the socket before it moves on.
const FLOOD_STEP: Option<Duration> = Some(Duration::from_millis(1));

/// Fairness on the session path: a client floods a `ScenarioEcho` server (writing pipelined
/// lines and reading the echoes as fast as it can) while another client's round trips each
/// stay under 250 ms.
pub(crate) async fn fairness_session(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    let factory: SessionFactory = Arc::new(|_: &_| Box::new(ScenarioEcho));
    let server = net.serve_session(&net.address(kind), ServerConfig::default(), factory)?;
    round_trips_beside_a_flood(net, server, t).await
}

/// Fairness on the handler path: the same flood and round trips against the backend's
/// `SocketServer::serve` with an echo handler that never yields on its own (on smol and the
/// simulator the socket's cooperative budget makes it).
pub(crate) async fn fairness_handler(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    let server = net.serve_echo_handler(&net.address(kind), ServerConfig::default())?;
    round_trips_beside_a_flood(net, server, t).await
}

async fn round_trips_beside_a_flood(
    net: &Rc<dyn Net>,
    mut server: Box<dyn crate::backend::SessionServer>,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    let address = server.local_address();
    let stop = Arc::new(AtomicBool::new(false));
    let (started_tx, started_rx) = async_channel::bounded::<()>(1);
    let flood = match net.flood(&address, Arc::clone(&stop)) {
        // Real sockets: the flood comes from OS threads (another process, in effect); give
        // it a moment to fill the pipe.
        Some(flood) => {
            net.sleep(Duration::from_millis(50)).await;
            let _ = started_tx.try_send(());
            Box::pin(spawn_joined(net, flood)) as LocalFuture<'static, _>
        }
        None => {
            let (net2, address, stop) = (Rc::clone(net), address.clone(), Arc::clone(&stop));
            Box::pin(spawn_joined(net, async move {
                let mut stream = net2.connect(&address, STEP).await?;
                let lines = b"flood\n".repeat(8 * 1024);
                let (mut sent, mut echoed) = (0usize, 0usize);
                while !stop.load(Ordering::SeqCst) {
                    match stream.write(lines.clone(), FLOOD_STEP).await {
                        Ok(n) => sent += n,
                        Err(e) if e.is_timeout() => {}
                        Err(e) => return Err(e),
                    }
                    match stream.read(256 * 1024, FLOOD_STEP).await {
                        Ok(bytes) => echoed += bytes.len(),
                        Err(e) if e.is_timeout() => {}
                        Err(e) => return Err(e),
                    }
                    if sent > 0 {
                        let _ = started_tx.try_send(());
                    }
                }
                stream.abort()?;
                Ok::<_, SocketError>(echoed)
            }))
        }
    };
    let _ = started_rx.recv().await;
    let mut client = net.connect(&address, STEP).await?;
    let (mut answered, mut worst) = (0, Duration::ZERO);
    for i in 0..ROUND_TRIPS {
        let started = net.now();
        let ping = format!("ping {i}\n");
        write_all(&mut *client, ping.as_bytes(), STEP).await?;
        let reply = read_until_suffix(&mut *client, b"\n", STEP).await?;
        worst = worst.max(net.now().saturating_duration_since(started));
        answered += usize::from(reply == ping.as_bytes());
    }
    stop.store(true, Ordering::SeqCst);
    t.line(format!(
        "{answered} of {ROUND_TRIPS} round trips answered beside the flood, each within {} ms: {}",
        FAIR_BOUND.as_millis(),
        worst < FAIR_BOUND
    ));
    t.line(task_line("the flood", flood.await, |echoed| {
        format!("the flood was echoed meanwhile: {}", echoed > 0)
    }));
    client.close()?;
    server.close();
    Ok(())
}

/// `max_connections` with two event loops (polling: two listeners on one port, one shared
/// live count): the cap holds across loops, and a slot freed on one loop lets a newcomer
/// waiting on the other in. Backends with one accept loop run it as `max_connections`.
pub(crate) async fn cap_with_several_loops(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    let mut config = ServerConfig::default();
    config.threads = 2;
    max_connections_with(net, kind, t, config).await
}
