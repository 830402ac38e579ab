//! Async code on the simulated network: an echo handler over many seeds with every fault,
//! determinism, timeouts at the right virtual time, refusal, resets, crash, and the server's
//! failure isolation.

use std::time::Duration;

use concurrence_core::{Address, Buffer, SocketState};
use concurrence_sim::{Faults, SimNetwork, Socket, SocketServer, now, sleep, spawn};
use concurrence_socket::SocketError;
use futures_lite::{AsyncReadExt, AsyncWriteExt};

fn address() -> Address {
    "10.0.0.1:7000".parse().expect("address")
}

/// Echoes every byte until the peer closes its side, then closes.
async fn echo<T: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin>(
    mut stream: T,
) -> std::io::Result<u64> {
    let mut buf = [0u8; 512];
    let mut total = 0;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            stream.close().await?;
            return Ok(total);
        }
        stream.write_all(&buf[..n]).await?;
        total += n as u64;
    }
}

/// Sends `payload`, half-closes, reads everything back.
async fn round_trip(payload: Vec<u8>) -> Result<Vec<u8>, SocketError> {
    let mut socket = Socket::connect(&address(), Some(Duration::from_secs(5))).await?;
    let mut reader_side = Vec::new();
    socket
        .write_all(&payload)
        .await
        .map_err(|e| SocketError::io("write", address(), e))?;
    AsyncWriteExt::close(&mut socket)
        .await
        .map_err(|e| SocketError::io("close", address(), e))?;
    socket
        .read_to_end(&mut reader_side)
        .await
        .map_err(|e| SocketError::io("read", address(), e))?;
    Ok(reader_side)
}

/// One seed: a server and `clients` clients; returns (clients that got their bytes back
/// exactly, clients that failed with a network fault, trace hash).
fn echo_run(seed: u64, clients: usize, faults: Faults) -> (usize, usize, u64) {
    let mut sim = SimNetwork::new(seed, faults);
    let server = sim.host("server");
    sim.spawn(server, async {
        let mut server = SocketServer::new(address());
        server.serve(echo).await
    })
    .detach();
    let mut tasks = Vec::new();
    for i in 0..clients {
        let host = sim.host(&format!("client{i}"));
        let payload: Vec<u8> = (0..(i * 997) % 5000 + 1)
            .map(|b| u8::try_from((b * 31 + i) % 251).unwrap_or(0))
            .collect();
        let expected = payload.clone();
        tasks.push(sim.spawn(host, async move {
            match round_trip(payload).await {
                Ok(back) => Some(back == expected),
                Err(_) => None,
            }
        }));
    }
    sim.run().expect("settles");
    let mut exact = 0;
    let mut failed = 0;
    for task in tasks {
        assert!(task.is_finished(), "seed {seed}: a client never finished");
        match futures_lite::future::block_on(task) {
            Some(true) => exact += 1,
            Some(false) => panic!("seed {seed}: bytes lost, duplicated or reordered"),
            None => failed += 1,
        }
    }
    let hash = sim.trace().hash();
    (exact, failed, hash)
}

#[test]
fn echo_is_exact_under_every_fault_over_many_seeds() {
    let mut exact = 0;
    let mut failed = 0;
    for seed in 0..30 {
        let (e, f, _) = echo_run(seed, 6, Faults::all());
        exact += e;
        failed += f;
    }
    assert!(exact > 150, "{exact} exact, {failed} failed");
    for seed in 0..20 {
        let (e, f, _) = echo_run(seed, 6, Faults::short_io());
        assert_eq!((e, f), (6, 0), "short reads and writes lose nothing");
    }
}

#[test]
fn a_seed_replays_exactly() {
    assert_eq!(echo_run(5, 8, Faults::all()), echo_run(5, 8, Faults::all()));
    assert_ne!(
        echo_run(5, 8, Faults::all()).2,
        echo_run(6, 8, Faults::all()).2
    );
}

#[test]
fn timeouts_fire_at_the_virtual_time_they_name() {
    let mut sim = SimNetwork::new(1, Faults::none());
    let (server, client) = (sim.host("server"), sim.host("client"));
    sim.spawn(server, async {
        let mut listener = Socket::from_address(&address())?;
        listener.listen(16)?;
        let mut socket = listener.accept(None).await?;
        // Never answers; holds the connection open a long time.
        sleep(Duration::from_secs(3600)).await;
        socket.close()
    })
    .detach();
    let outcome = sim
        .block_on(client, async {
            let mut socket = Socket::connect(&address(), None).await?;
            let started = now();
            let mut buffer = Buffer::new(16);
            let result = socket
                .read(&mut buffer, Some(Duration::from_millis(1500)))
                .await;
            Ok::<_, SocketError>((
                result.map_err(|e| e.is_timeout()),
                now().saturating_duration_since(started),
            ))
        })
        .expect("finishes");
    let (result, waited) = outcome.expect("connected");
    assert_eq!(result, Err(true), "a read timeout");
    assert_eq!(waited, Duration::from_millis(1500));
}

#[test]
fn connecting_to_nobody_is_refused_and_a_partition_times_out() {
    let mut sim = SimNetwork::new(2, Faults::none());
    let (server, client) = (sim.host("server"), sim.host("client"));
    let refused = sim
        .block_on(client, async {
            Socket::connect(&address(), Some(Duration::from_secs(1))).await
        })
        .expect("finishes");
    assert_eq!(
        refused.expect_err("nobody listens").io_kind(),
        Some(std::io::ErrorKind::ConnectionRefused)
    );
    sim.spawn(server, async {
        let mut server = SocketServer::new(address());
        server.serve(echo).await
    })
    .detach();
    sim.partition(client, server);
    let timed_out = sim
        .block_on(client, async {
            let started = now();
            let result = Socket::connect(&address(), Some(Duration::from_secs(2))).await;
            (result.map(|_| ()), now().saturating_duration_since(started))
        })
        .expect("finishes");
    assert!(timed_out.0.expect_err("partitioned").is_timeout());
    assert_eq!(timed_out.1, Duration::from_secs(2));
}

#[test]
fn closing_with_unread_input_resets_the_peer() {
    let mut sim = SimNetwork::new(3, Faults::none());
    let (server, client) = (sim.host("server"), sim.host("client"));
    sim.spawn(server, async {
        let mut listener = Socket::from_address(&address())?;
        listener.listen(16)?;
        let mut socket = listener.accept(None).await?;
        sleep(Duration::from_millis(100)).await;
        // The client's bytes are unread: closing resets.
        socket.close()
    })
    .detach();
    let error = sim
        .block_on(client, async {
            let mut socket = Socket::connect(&address(), None).await.expect("connect");
            socket.write_all(b"unread").await.expect("write");
            let mut rest = Vec::new();
            socket.read_to_end(&mut rest).await.expect_err("reset")
        })
        .expect("finishes");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
}

#[test]
fn a_failing_or_panicking_handler_ends_only_its_connection() {
    let mut sim = SimNetwork::new(4, Faults::none()).keep_trace();
    let (server, client) = (sim.host("server"), sim.host("client"));
    sim.spawn(server, async {
        let mut server = SocketServer::new(address());
        server
            .serve(|mut socket: Socket| async move {
                let mut first = [0u8; 1];
                socket.read_exact(&mut first).await?;
                match first[0] {
                    b'p' => panic!("planted panic"),
                    b'e' => Err(std::io::Error::other("planted error")),
                    _ => {
                        socket.write_all(b"ok").await?;
                        Ok(())
                    }
                }
            })
            .await
    })
    .detach();
    let replies = sim
        .block_on(client, async {
            let mut replies = Vec::new();
            for first in [b'p', b'e', b'x'] {
                let mut socket = Socket::connect(&address(), None).await.expect("connect");
                socket.write_all(&[first]).await.expect("write");
                let mut reply = Vec::new();
                let _ = socket.read_to_end(&mut reply).await;
                replies.push(reply);
            }
            replies
        })
        .expect("finishes");
    assert_eq!(replies, [b"".to_vec(), b"".to_vec(), b"ok".to_vec()]);
    let trace = sim.trace().lines().expect("kept").join("\n");
    assert!(trace.contains("panicked"), "{trace}");
    assert!(trace.contains("failed: planted error"), "{trace}");
}

#[test]
fn a_crashed_hosts_tasks_stop_and_its_peers_see_resets() {
    let mut sim = SimNetwork::new(5, Faults::none());
    let (server, client) = (sim.host("server"), sim.host("client"));
    sim.spawn(server, async {
        let mut server = SocketServer::new(address());
        server.serve(echo).await
    })
    .detach();
    let task = sim.spawn(client, async {
        let mut socket = Socket::connect(&address(), None).await?;
        socket
            .write_all(b"before the crash")
            .await
            .map_err(|e| SocketError::io("write", address(), e))?;
        let mut buffer = Buffer::new(64);
        // Echoed, then nothing: the server's host crashes meanwhile.
        socket.read(&mut buffer, None).await?;
        loop {
            if socket.read(&mut buffer, None).await? == 0 {
                return Ok::<SocketState, SocketError>(socket.state());
            }
            buffer.clear();
        }
    });
    sim.run_for(Duration::from_millis(10)).expect("runs");
    sim.crash(server);
    sim.run().expect("settles");
    let outcome = futures_lite::future::block_on(task);
    assert_eq!(
        outcome.expect_err("a reset").io_kind(),
        Some(std::io::ErrorKind::ConnectionReset)
    );
}

#[test]
fn a_task_can_spawn_and_sleep() {
    let mut sim = SimNetwork::new(6, Faults::none());
    let host = sim.host("solo");
    let order = sim
        .block_on(host, async {
            let a = spawn(async {
                sleep(Duration::from_secs(2)).await;
                now()
            });
            let b = spawn(async {
                sleep(Duration::from_secs(1)).await;
                now()
            });
            (a.await, b.await)
        })
        .expect("finishes");
    assert_eq!(order.0.since_epoch(), Duration::from_secs(2));
    assert_eq!(order.1.since_epoch(), Duration::from_secs(1));
}

#[test]
fn a_skewed_host_sees_its_own_clock() {
    let mut sim = SimNetwork::new(7, Faults::none());
    let (ahead, behind) = (sim.host("ahead"), sim.host("behind"));
    sim.set_clock_skew(ahead, 5_000);
    sim.set_clock_skew(behind, -500);
    sim.run_for(Duration::from_secs(1)).expect("runs");
    assert_eq!(sim.host_now(ahead).since_epoch(), Duration::from_secs(6));
    assert_eq!(
        sim.host_now(behind).since_epoch(),
        Duration::from_millis(500)
    );
    let seen = sim
        .block_on(ahead, async {
            let before = now();
            sleep(Duration::from_secs(2)).await;
            (before, now())
        })
        .expect("finishes");
    // A sleep lasts as long on every clock; only the reading differs.
    assert_eq!(seen.0.since_epoch(), Duration::from_secs(6));
    assert_eq!(seen.1.since_epoch(), Duration::from_secs(8));
    assert_eq!(sim.now().since_epoch(), Duration::from_secs(3));
}

#[test]
fn a_slow_link_takes_as_long_as_its_bandwidth_says() {
    let mut sim = SimNetwork::new(8, Faults::none());
    let (server, client) = (sim.host("server"), sim.host("client"));
    sim.set_link(
        client,
        server,
        concurrence_sim::LinkProfile::with_latency(Duration::from_millis(10)).bandwidth(1_000),
    );
    let received = sim.spawn(server, async {
        let mut listener = Socket::from_address(&address())?;
        listener.listen(4)?;
        let mut socket = listener.accept(None).await?;
        let mut all = Vec::new();
        socket
            .read_to_end(&mut all)
            .await
            .map_err(|e| SocketError::io("read", address(), e))?;
        Ok::<_, SocketError>((all.len(), now()))
    });
    sim.spawn(client, async {
        let mut socket = Socket::connect(&address(), None).await?;
        socket
            .write_all(&[7u8; 10_000])
            .await
            .map_err(|e| SocketError::io("write", address(), e))?;
        AsyncWriteExt::close(&mut socket)
            .await
            .map_err(|e| SocketError::io("close", address(), e))
    })
    .detach();
    sim.run().expect("settles");
    let (len, at) = futures_lite::future::block_on(received).expect("received");
    assert_eq!(len, 10_000);
    // 10,000 bytes at 1,000 bytes a second: ten seconds, plus the latency.
    assert!(at.since_epoch() >= Duration::from_secs(10), "{at:?}");
    assert!(at.since_epoch() < Duration::from_millis(10_100), "{at:?}");
}

#[test]
fn a_restarted_host_runs_its_program_again() {
    let mut sim = SimNetwork::new(9, Faults::none());
    let (server, client) = (sim.host("server"), sim.host("client"));
    sim.program(server, || async {
        let mut server = SocketServer::new(address());
        let _ = server.serve(echo).await;
    });
    let ask = |sim: &mut SimNetwork| {
        sim.block_on(client, async {
            match round_trip(b"ping".to_vec()).await {
                Ok(back) => back == b"ping",
                Err(_) => false,
            }
        })
        .expect("finishes")
    };
    assert!(ask(&mut sim), "served before the crash");
    sim.crash(server);
    assert!(!ask(&mut sim), "refused while down");
    sim.restart(server);
    assert!(ask(&mut sim), "served again after the restart");
}

#[test]
fn a_live_tcp_connection_is_passed_over_a_unix_socket_and_served_on() {
    let mut sim = SimNetwork::new(10, Faults::short_io());
    let (server, client) = (sim.host("server"), sim.host("client"));
    let channel: Address = "/run/worker.sock".parse().expect("unix path");
    let at = channel.clone();
    // The worker: receives connections over the Unix channel and echoes on them.
    sim.spawn(server, async move {
        let mut listener = Socket::from_address(&at)?;
        listener.listen(4)?;
        let mut from_front = listener.accept(None).await?;
        let passed = from_front.read_socket(None).await?;
        assert_eq!(passed.state(), SocketState::Connected);
        echo(passed)
            .await
            .map_err(|e| SocketError::io("echo", at.clone(), e))?;
        Ok::<(), SocketError>(())
    })
    .detach();
    // The front: accepts TCP, hands each connection to the worker, forgets it.
    let front_channel = channel.clone();
    sim.spawn(server, async move {
        let mut listener = Socket::from_address(&address())?;
        listener.listen(4)?;
        let mut to_worker = Socket::connect(&front_channel, None).await?;
        let mut accepted = listener.accept(None).await?;
        // A TCP channel cannot carry it.
        let mut tcp_channel = Socket::connect(&address(), None).await?;
        assert!(matches!(
            tcp_channel.write_socket(&accepted, None).await,
            Err(SocketError::WrongKind { .. })
        ));
        to_worker.write_socket(&accepted, None).await?;
        accepted.close()?; // the worker's copy keeps the connection open
        Ok::<(), SocketError>(())
    })
    .detach();
    let back = sim
        .block_on(client, async {
            round_trip(b"served by the worker".to_vec()).await
        })
        .expect("finishes")
        .expect("round trip");
    assert_eq!(back, b"served by the worker");
}

#[test]
fn a_listener_is_passed_and_accepts_on_the_other_side() {
    let mut sim = SimNetwork::new(11, Faults::none());
    let (server, client) = (sim.host("server"), sim.host("client"));
    let channel: Address = "/run/handover.sock".parse().expect("unix path");
    let at = channel.clone();
    sim.spawn(server, async move {
        let mut handover = Socket::from_address(&at)?;
        handover.listen(1)?;
        let mut peer = handover.accept(None).await?;
        let mut listener = peer.read_socket(None).await?;
        assert_eq!(listener.state(), SocketState::Listening);
        let socket = listener.accept(None).await?;
        echo(socket)
            .await
            .map_err(|e| SocketError::io("echo", at.clone(), e))?;
        Ok::<(), SocketError>(())
    })
    .detach();
    sim.spawn(server, async move {
        let mut listener = Socket::from_address(&address())?;
        listener.listen(4)?;
        let mut channel = Socket::connect(&channel, None).await?;
        channel.write_socket(&listener, None).await?;
        listener.close()?;
        Ok::<(), SocketError>(())
    })
    .detach();
    let back = sim
        .block_on(client, async { round_trip(b"handed over".to_vec()).await })
        .expect("finishes")
        .expect("round trip");
    assert_eq!(back, b"handed over");
}

/// The testkit's line echo, telling the test when its connection ended.
struct SignalsEnd(async_channel::Sender<()>);

impl concurrence_core::Session for SignalsEnd {
    fn handle_input(
        &mut self,
        now: concurrence_core::Timestamp,
        reader: &mut concurrence_core::StreamReader,
        writer: &mut concurrence_core::StreamWriter,
    ) -> Result<concurrence_core::Next, concurrence_core::SessionError> {
        concurrence_testkit::LineEcho.handle_input(now, reader, writer)
    }

    fn handle_end(&mut self, _: concurrence_core::Timestamp, _: &concurrence_core::EndReason) {
        let _ = self.0.try_send(());
    }
}

#[test]
fn a_session_server_counts_its_live_connections() {
    let mut sim = SimNetwork::new(5, Faults::none());
    let (server, client) = (sim.host("server"), sim.host("client"));
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let (ended_tx, ended) = async_channel::unbounded();
    sim.spawn(server, async move {
        let mut server = SocketServer::new(address());
        handle_tx.send(server.close_handle()).expect("handle");
        server
            .serve_session(move |_| SignalsEnd(ended_tx.clone()))
            .await
    })
    .detach();
    let counts = sim
        .block_on(client, async move {
            let handle = handle_rx.recv().expect("the server task ran first");
            let mut counts = vec![handle.connections()];
            let mut first = Socket::connect(&address(), None).await.expect("connect");
            let mut second = Socket::connect(&address(), None).await.expect("connect");
            for socket in [&mut first, &mut second] {
                socket.write_all(b"hi\n").await.expect("write");
                let mut reply = [0u8; 3];
                socket.read_exact(&mut reply).await.expect("echo");
            }
            counts.push(handle.connections());
            first.write_all(b"QUIT\n").await.expect("quit");
            let mut rest = Vec::new();
            let _ = first.read_to_end(&mut rest).await;
            drop(first);
            // The server's session for `first` has ended (its lingering close saw our FIN).
            ended.recv().await.expect("an end");
            counts.push(handle.connections());
            handle.close();
            counts
        })
        .expect("finishes");
    assert_eq!(counts, [0, 2, 1]);
}
