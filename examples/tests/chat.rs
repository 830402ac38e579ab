//! The chat handler: real sockets on the smol backend, and the simulator over seeds.

use std::time::Duration;

use concurrence_core::Address;
use concurrence_examples::chat::{Room, chat_member, simulate};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

#[test]
fn lines_reach_every_other_member_and_quit_leaves_over_loopback() {
    smol::block_on(async {
        let mut server =
            concurrence_smol::SocketServer::new("127.0.0.1:0".parse().expect("address"));
        server.listen(16).expect("listen");
        let address: Address = server.local_address().clone();
        let closer = server.close_handle();
        let room = Room::default();
        let serving =
            smol::spawn(async move { server.serve(move |s| chat_member(s, room.clone())).await });
        let timeout = Some(Duration::from_secs(5));
        let mut a = concurrence_smol::Socket::connect(&address, timeout)
            .await
            .expect("a");
        let mut b = concurrence_smol::Socket::connect(&address, timeout)
            .await
            .expect("b");
        // Both are in the room once greeted.
        let mut line = [0u8; 64];
        for socket in [&mut a, &mut b] {
            let n = AsyncReadExt::read(socket, &mut line)
                .await
                .expect("greeted");
            assert!(line[..n].starts_with(b"welcome user"), "{:?}", &line[..n]);
        }
        a.write_all(b"ping\n").await.expect("a speaks");
        let n = AsyncReadExt::read(&mut b, &mut line)
            .await
            .expect("b hears");
        assert!(
            line[..n].ends_with(b": ping\n"),
            "{:?}",
            String::from_utf8_lossy(&line[..n])
        );
        b.write_all(b"pong\nquit\n")
            .await
            .expect("b speaks and leaves");
        let mut rest = Vec::new();
        b.read_to_end(&mut rest)
            .await
            .expect("b is closed after quit");
        let n = AsyncReadExt::read(&mut a, &mut line)
            .await
            .expect("a hears");
        assert!(line[..n].ends_with(b": pong\n"));
        a.write_all(b"quit\n").await.expect("a leaves");
        a.read_to_end(&mut rest)
            .await
            .expect("a is closed after quit");
        closer.close();
        serving.await.expect("server");
    });
}

#[test]
fn every_client_hears_every_other_under_the_simulator() {
    for seed in 0..5 {
        let report = simulate(seed, 6).expect("settles");
        assert!(
            report.heard.iter().all(|&n| n == report.expected),
            "seed {seed}: {report:?}"
        );
        assert_eq!(
            simulate(seed, 6).expect("settles"),
            report,
            "seed {seed} replays"
        );
    }
}

/// The session chat, served on a real backend: a `ChatRoom` and its address.
mod session_chat {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    use std::sync::Arc;
    use std::time::Duration;

    use concurrence_core::{ReaderConfig, WriterConfig};
    use concurrence_examples::chat_session::{ChatRoom, MAX_LINE, simulate};
    use concurrence_socket::ServerConfig;

    fn config() -> ServerConfig {
        ServerConfig::default()
            .with_buffers(
                ReaderConfig::default().with_max_line(MAX_LINE),
                WriterConfig::default()
                    .with_high_water(4096)
                    .with_max_pending(64 * 1024),
            )
            .with_idle_timeout(None)
    }

    fn member(address: &concurrence_core::Address) -> (BufReader<TcpStream>, TcpStream) {
        member_with_receive_buffer(address, None)
    }

    /// A member whose socket's receive buffer is `rcvbuf` bytes (set before connecting, so
    /// that the kernel cannot absorb what a member that never reads is sent).
    fn member_with_receive_buffer(
        address: &concurrence_core::Address,
        rcvbuf: Option<usize>,
    ) -> (BufReader<TcpStream>, TcpStream) {
        let concurrence_core::Address::Tcp(addr) = address else {
            panic!("a TCP address");
        };
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(*addr),
            socket2::Type::STREAM,
            None,
        )
        .expect("socket");
        if let Some(size) = rcvbuf {
            socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
        }
        socket.connect(&(*addr).into()).expect("connect");
        let stream: TcpStream = socket.into();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut welcome = String::new();
        reader.read_line(&mut welcome).expect("welcome");
        assert!(welcome.starts_with("welcome user"), "{welcome:?}");
        (reader, stream)
    }

    fn line(reader: &mut BufReader<TcpStream>) -> String {
        let mut line = String::new();
        reader.read_line(&mut line).expect("a line");
        line
    }

    /// Two members hear each other; a message the application injects from another thread
    /// reaches both; a member that never reads loses messages past its bound and does not
    /// stall the room; `quit` leaves.
    fn two_members_and_a_silent_one(address: &concurrence_core::Address, room: &ChatRoom) {
        let (mut a_in, mut a) = member(address);
        let (mut b_in, mut b) = member(address);
        // The silent member joins and never reads (with a small receive buffer, so that what it
        // is sent piles up on the server's side, not in the kernel).
        let (_silent_in, _silent) = member_with_receive_buffer(address, Some(4096));
        a.write_all(b"ping\n").expect("a speaks");
        assert!(line(&mut b_in).ends_with(": ping\n"));
        b.write_all(b"pong\n").expect("b speaks");
        assert!(line(&mut a_in).ends_with(": pong\n"));
        // An application event from another thread.
        let injector = room.clone();
        std::thread::spawn(move || injector.broadcast(0, &Arc::from(&b"news\n"[..])))
            .join()
            .expect("injector");
        assert_eq!(line(&mut a_in), "news\n");
        assert_eq!(line(&mut b_in), "news\n");
        // 4 MiB said in the room: far past the silent member's bounds and its socket buffers.
        let chunk = format!("{}\n", "x".repeat(1000));
        for _ in 0..4096 {
            a.write_all(chunk.as_bytes()).expect("a floods");
            let heard = line(&mut b_in);
            assert_eq!(
                heard.len(),
                chunk.len() + "userN: ".len(),
                "b keeps hearing"
            );
        }
        assert!(room.dropped() > 0, "the silent member lost messages");
        b.write_all(b"quit\n").expect("b leaves");
        let mut rest = Vec::new();
        b_in.read_to_end(&mut rest).expect("b is closed after quit");
        a.write_all(b"quit\n").expect("a leaves");
        a_in.read_to_end(&mut rest).expect("a is closed after quit");
    }

    /// Makes each connection's chat member.
    type Members = Box<
        dyn Fn(&concurrence_core::Address) -> concurrence_examples::chat_session::ChatMember
            + Send
            + Sync,
    >;

    /// A backend's `serve` (polling's and uring's have one signature).
    type Serve = fn(
        &concurrence_core::Address,
        ServerConfig,
        Members,
    ) -> Result<concurrence_os::ServerHandle, concurrence_socket::SocketError>;

    /// Serves the room with a backend's `serve`.
    fn members_hear_each_other_on(serve: Serve) {
        let room = ChatRoom::new();
        let factory_room = room.clone();
        let server = serve(
            &"127.0.0.1:0".parse().expect("address"),
            config(),
            Box::new(move |_| factory_room.member()),
        )
        .expect("serve");
        two_members_and_a_silent_one(server.local_address(), &room);
        server.shutdown();
        server.join().expect("join");
    }

    #[test]
    fn members_hear_each_other_and_events_on_polling() {
        members_hear_each_other_on(concurrence_polling::serve);
    }

    #[test]
    fn members_hear_each_other_and_events_on_uring() {
        // Application events (`Notify`) wake the io_uring loop through its event fd.
        members_hear_each_other_on(concurrence_uring::serve);
    }

    #[test]
    fn members_hear_each_other_and_events_on_smol() {
        let room = ChatRoom::new();
        let factory_room = room.clone();
        let mut server = concurrence_smol::SocketServer::with_config(
            "127.0.0.1:0".parse().expect("address"),
            config(),
        );
        server.listen(64).expect("listen");
        let address = server.local_address().clone();
        let closer = server.close_handle();
        let serving = std::thread::spawn(move || {
            smol::block_on(server.serve_session(move |_| factory_room.member()))
        });
        two_members_and_a_silent_one(&address, &room);
        closer.close();
        serving.join().expect("thread").expect("served");
    }

    #[test]
    fn every_member_hears_every_other_under_the_simulator_and_a_seed_replays() {
        for seed in 0..5 {
            let report = simulate(seed, 6).expect("settles");
            assert!(
                report.heard.iter().all(|&n| n == report.expected),
                "seed {seed}: {report:?}"
            );
            assert_eq!(
                simulate(seed, 6).expect("settles"),
                report,
                "seed {seed} replays"
            );
        }
        assert_ne!(
            simulate(0, 6).expect("settles").trace_hash,
            simulate(1, 6).expect("settles").trace_hash,
            "the seed changes the run"
        );
    }
}
