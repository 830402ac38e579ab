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
