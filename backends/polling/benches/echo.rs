//! Echo throughput: N clients x M round trips of 64 bytes over loopback, requests/s, against
//! the polling backend and against a tokio echo server written here, in the same run.
//! Run: `cargo bench -p concurrence-polling --bench echo` (env ECHO_CLIENTS, ECHO_ROUNDS).

#![allow(clippy::print_stdout)] // a report binary: printing is its job

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use concurrence_core::testing::ByteEcho;
use concurrence_polling::{ServerConfig, serve};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs the load and returns requests per second.
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
                let request = [b'x'; 64];
                let mut reply = [0u8; 64];
                for _ in 0..rounds {
                    stream.write_all(&request).expect("write");
                    stream.read_exact(&mut reply).expect("read");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("client thread");
    }
    (clients * rounds) as f64 / started.elapsed().as_secs_f64()
}

fn tokio_server(threads: usize) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .expect("tokio runtime");
        runtime.block_on(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().expect("addr"))
                .expect("send addr");
            loop {
                let (mut socket, _) = listener.accept().await.expect("accept");
                socket.set_nodelay(true).expect("nodelay");
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    loop {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if socket.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
    });
    (rx.recv().expect("tokio address"), handle)
}

/// CPU time (user + system, in clock ticks of 10 ms) used so far by this process's threads
/// whose name starts with `prefix` (`comm`, at most 15 bytes), read from /proc. The polling
/// loop is `concurrence-loop-N`, tokio's workers `tokio-rt-worker`.
fn cpu_ticks(prefix: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.starts_with(prefix))
        })
        .filter_map(|task| std::fs::read_to_string(task.path().join("stat")).ok())
        .map(|stat| {
            // Fields after the parenthesised name: state is field 3; utime 14, stime 15.
            let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let field = |n: usize| {
                fields
                    .get(n - 3)
                    .and_then(|f| f.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            field(14) + field(15)
        })
        .sum()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo test --benches` runs this with --bench absent; keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let clients = env("ECHO_CLIENTS", if quick { 2 } else { 16 });
    let rounds = env("ECHO_ROUNDS", if quick { 100 } else { 5_000 });
    let repeats = if quick { 1 } else { 5 };
    let threads = 1;

    let server = serve(
        &"127.0.0.1:0".parse().expect("address"),
        ServerConfig::default().with_threads(threads),
        |_| ByteEcho::default(),
    )
    .expect("polling server");
    let polling_addr = server.local_addr().as_tcp().expect("tcp");
    let (tokio_addr, _tokio) = tokio_server(threads);

    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let (mut our_ticks, mut their_ticks) = (0, 0);
    for _ in 0..repeats {
        let before = cpu_ticks("concurrence-loo");
        ours.push(load(polling_addr, clients, rounds));
        our_ticks += cpu_ticks("concurrence-loo") - before;
        let before = cpu_ticks("tokio-rt-worker");
        theirs.push(load(tokio_addr, clients, rounds));
        their_ticks += cpu_ticks("tokio-rt-worker") - before;
    }
    let requests = (repeats * clients * rounds) as f64;
    let per_cpu = |ticks: u64| requests / (ticks.max(1) as f64 / 100.0);
    let (ours, theirs) = (median(ours), median(theirs));
    println!(
        "echo 64 B, {clients} clients x {rounds} round trips, {threads} server thread, median of {repeats}:"
    );
    println!("  concurrence-polling  {ours:>10.0} req/s");
    println!("  tokio                {theirs:>10.0} req/s");
    println!("  ratio polling/tokio  {:>10.2}", ours / theirs);
    println!("server CPU (user+system, 10 ms ticks): polling {our_ticks}, tokio {their_ticks}");
    println!(
        "  concurrence-polling  {:>10.0} req per server CPU-second",
        per_cpu(our_ticks)
    );
    println!(
        "  tokio                {:>10.0} req per server CPU-second",
        per_cpu(their_ticks)
    );
    println!(
        "  ratio polling/tokio  {:>10.2}",
        per_cpu(our_ticks) / per_cpu(their_ticks)
    );
    server.shutdown();
    server.join().expect("join");
}
