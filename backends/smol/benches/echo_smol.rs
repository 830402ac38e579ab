//! Echo throughput of the smol backend beside the polling backend and tokio, same run: N
//! blocking clients x M round trips of 64 bytes over loopback, requests/s.
//! Run: `cargo bench -p concurrence-smol --bench echo_smol` (env ECHO_CLIENTS, ECHO_ROUNDS).

#![allow(clippy::print_stdout)] // a report binary: printing is its job

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use concurrence_core::testing::ByteEcho;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn load(addr: SocketAddr, clients: usize, rounds: usize) -> f64 {
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .expect("timeout");
                let (request, mut reply) = ([b'x'; 64], [0u8; 64]);
                for _ in 0..rounds {
                    stream.write_all(&request).expect("write");
                    stream.read_exact(&mut reply).expect("read");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("client");
    }
    (clients * rounds) as f64 / started.elapsed().as_secs_f64()
}

fn tokio_server() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        runtime.block_on(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().expect("addr")).expect("send");
            loop {
                let (mut socket, _) = listener.accept().await.expect("accept");
                socket.set_nodelay(true).expect("nodelay");
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    while let Ok(n) = socket.read(&mut buf).await {
                        if n == 0 || socket.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
    });
    rx.recv().expect("tokio address")
}

fn smol_server() -> SocketAddr {
    let mut server = concurrence_smol::SocketServer::new("127.0.0.1:0".parse().expect("address"));
    server.listen(255).expect("listen");
    let addr = server.local_addr().as_tcp().expect("tcp");
    // One executor thread, like the other two servers' single loop.
    std::thread::spawn(move || {
        let executor = std::sync::Arc::new(smol::Executor::new());
        let spawner = {
            let executor = std::sync::Arc::clone(&executor);
            move |task: concurrence_smol::Task| executor.spawn(task).detach()
        };
        let mut server = server.with_spawner(spawner);
        futures_lite::future::block_on(executor.run(async move {
            server
                .serve_session(|_| ByteEcho::default())
                .await
                .expect("serve");
        }));
    });
    addr
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let clients = env("ECHO_CLIENTS", if quick { 2 } else { 16 });
    let rounds = env("ECHO_ROUNDS", if quick { 100 } else { 5_000 });
    let repeats = if quick { 1 } else { 5 };

    let polling = concurrence_polling::serve(
        &"127.0.0.1:0".parse().expect("address"),
        concurrence_polling::ServerConfig::default(),
        |_| ByteEcho::default(),
    )
    .expect("polling server");
    let polling_addr = polling.local_addr().as_tcp().expect("tcp");
    let smol_addr = smol_server();
    let tokio_addr = tokio_server();

    let (mut s, mut p, mut t) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..repeats {
        s.push(load(smol_addr, clients, rounds));
        p.push(load(polling_addr, clients, rounds));
        t.push(load(tokio_addr, clients, rounds));
    }
    let (s, p, t) = (median(s), median(p), median(t));
    println!(
        "echo 64 B, {clients} clients x {rounds} round trips, 1 server thread each, median of {repeats}:"
    );
    println!("  concurrence-smol     {s:>10.0} req/s");
    println!("  concurrence-polling  {p:>10.0} req/s");
    println!("  tokio                {t:>10.0} req/s");
    println!("  ratio smol/polling   {:>10.2}", s / p);
    println!("  ratio smol/tokio     {:>10.2}", s / t);
}
