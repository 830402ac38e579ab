//! The promise, checked: one async handler generic over `AsyncRead + AsyncWrite`, and one
//! `Session` type, each run unchanged under the smol backend on loopback TCP and under the
//! simulator with every fault on; the client code is shared too.

use std::time::Duration;

use concurrence_core::Address;
use concurrence_testkit::LineEcho;
use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

/// The handler: echoes every byte until the peer closes its side, then closes.
async fn echo<T: AsyncRead + AsyncWrite + Unpin>(mut stream: T) -> std::io::Result<()> {
    let mut buf = [0u8; 256];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return stream.close().await;
        }
        stream.write_all(&buf[..n]).await?;
    }
}

/// The client: sends `payload`, half-closes, returns everything that came back.
async fn exchange<T: AsyncRead + AsyncWrite + Unpin>(
    mut stream: T,
    payload: &[u8],
) -> std::io::Result<Vec<u8>> {
    stream.write_all(payload).await?;
    stream.close().await?;
    let mut back = Vec::new();
    stream.read_to_end(&mut back).await?;
    Ok(back)
}

fn payload() -> Vec<u8> {
    (0..20_000u32)
        .map(|i| {
            if i % 41 == 40 {
                b'\n'
            } else {
                b'a' + u8::try_from(i % 26).unwrap_or(0)
            }
        })
        .chain(std::iter::once(b'\n'))
        .collect()
}

#[test]
fn the_same_handler_and_session_under_smol() {
    let payload = payload();
    smol::block_on(async {
        for with_session in [false, true] {
            let mut server =
                concurrence_smol::SocketServer::new("127.0.0.1:0".parse().expect("address"));
            server.listen(16).expect("listen");
            let address = server.local_address().clone();
            let closer = server.close_handle();
            let serving = smol::spawn(async move {
                if with_session {
                    server.serve_session(|_| LineEcho).await
                } else {
                    server.serve(echo).await
                }
            });
            let socket = concurrence_smol::Socket::connect(&address, Some(Duration::from_secs(5)))
                .await
                .expect("connect");
            let back = exchange(socket, &payload).await.expect("exchange");
            assert_eq!(back, payload, "smol, session: {with_session}");
            closer.close();
            serving.await.expect("server");
        }
    });
}

#[test]
fn the_same_handler_and_session_under_the_simulator() {
    let payload = payload();
    for seed in 0..4 {
        for with_session in [false, true] {
            let mut sim =
                concurrence_sim::SimNetwork::new(seed, concurrence_sim::Faults::short_io())
                    .max_events(2_000_000);
            let (server_host, client_host) = (sim.host("server"), sim.host("client"));
            let address: Address = "10.0.0.1:7000".parse().expect("address");
            let serve_at = address.clone();
            sim.spawn(server_host, async move {
                let mut server = concurrence_sim::SocketServer::new(serve_at);
                if with_session {
                    server.serve_session(|_| LineEcho).await
                } else {
                    server.serve(echo).await
                }
            })
            .detach();
            let sent = payload.clone();
            let back = sim
                .block_on(client_host, async move {
                    let socket =
                        concurrence_sim::Socket::connect(&address, Some(Duration::from_secs(5)))
                            .await
                            .expect("connect");
                    exchange(socket, &sent).await
                })
                .expect("finishes")
                .expect("exchange");
            assert_eq!(back, payload, "seed {seed}, session: {with_session}");
        }
    }
}
