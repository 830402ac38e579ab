//! Line echo servers under the same load, in one run: concurrence-polling (one event loop),
//! concurrence-uring (one io_uring loop),
//! concurrence-smol (`serve_session` on one executor thread), the seed's handler API on smol
//! with and without the sockets' cooperative budget (`smol-h`, `smol-hu`) and tokio (a current-thread
//! runtime; per connection a read buffer and a `BufWriter` flushed when no more input is
//! buffered, the batching a careful tokio server does). Each serves 64-byte lines to 64
//! connections at pipeline depth 1 and 16; reported: requests/s and the server's CPU time per
//! request (the scheduler's run time of the server's own threads, from /proc/self/task/*/schedstat).
//!
//! Run: `cargo bench -p concurrence-stress --bench echo` (env `ECHO_CLIENTS`, `ECHO_REQUESTS`,
//! `ECHO_REPEATS`, `ECHO_DEPTHS=1,16`; `ECHO_ONLY=polling|uring|smol|tokio|smol-h|smol-hu` and `ECHO_HOLD=1` keep one server up for
//! `strace -c -p`).

#![allow(clippy::print_stdout)] // a report binary: printing is its job
#![allow(clippy::cast_precision_loss)] // figures for people

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use concurrence_testkit::LineEcho;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `clients` connections, each sending `depth` lines then reading `depth` replies, until
/// `requests` lines were answered in all. Returns requests per second.
fn load(addr: SocketAddr, clients: usize, depth: usize, requests: usize) -> f64 {
    let rounds = (requests / (clients * depth)).max(1);
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .expect("timeout");
                let mut line = [b'x'; 64];
                line[63] = b'\n';
                let batch = line.repeat(depth);
                let mut replies = vec![0u8; batch.len()];
                for _ in 0..rounds {
                    stream.write_all(&batch).expect("write");
                    stream.read_exact(&mut replies).expect("read");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("client thread");
    }
    (clients * rounds * depth) as f64 / started.elapsed().as_secs_f64()
}

/// CPU time in nanoseconds used so far by this process's threads whose name starts with one of
/// `prefixes` (`comm`, at most 15 bytes): the scheduler's run time from `schedstat`, precise to
/// the nanosecond (`stat`'s user and system times come in 10 ms ticks: a depth-16 run of
/// 128,000 requests was 7 ticks, so its figures were quantised to ±14 %). Falls back to the
/// ticks where `schedstat` is missing.
fn cpu_nanos(prefixes: &[&str]) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| prefixes.iter().any(|p| name.starts_with(p)))
        })
        .map(|task| {
            let schedstat = std::fs::read_to_string(task.path().join("schedstat")).ok();
            if let Some(ns) = schedstat
                .as_deref()
                .and_then(|s| s.split_whitespace().next())
                .and_then(|f| f.parse::<u64>().ok())
            {
                return ns;
            }
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let field = |n: usize| {
                fields
                    .get(n - 3)
                    .and_then(|f| f.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            (field(14) + field(15)) * 10_000_000
        })
        .sum()
}

fn polling_server() -> (SocketAddr, concurrence_polling::ServerHandle) {
    let server = concurrence_polling::serve(
        &"127.0.0.1:0".parse().expect("address"),
        concurrence_socket::ServerConfig::default(),
        |_| LineEcho,
    )
    .expect("polling server");
    (server.local_address().as_tcp().expect("tcp"), server)
}

fn uring_server() -> (SocketAddr, concurrence_uring::ServerHandle) {
    let server = concurrence_uring::serve(
        &"127.0.0.1:0".parse().expect("address"),
        concurrence_socket::ServerConfig::default(),
        |_| LineEcho,
    )
    .expect("uring server");
    (server.local_address().as_tcp().expect("tcp"), server)
}

fn smol_server() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("smol-server".into())
        .spawn(move || {
            let executor = Arc::new(smol::Executor::new());
            let spawner = Arc::clone(&executor);
            let mut server =
                concurrence_smol::SocketServer::new("127.0.0.1:0".parse().expect("address"))
                    .with_spawner(move |task| spawner.spawn(task).detach());
            server.listen(1024).expect("smol listen");
            tx.send(server.local_address().as_tcp().expect("tcp"))
                .expect("send address");
            smol::block_on(executor.run(server.serve_session(|_| LineEcho))).expect("serve");
        })
        .expect("smol thread");
    rx.recv().expect("smol address")
}

/// The seed's handler API on smol (`SocketServer::serve`, one `AsyncBufferedStream` per
/// connection, a flush once the input read so far is answered), on a thread named `name`;
/// `coop_budget` is each socket's cooperative budget (`usize::MAX`: never yields by itself).
fn smol_handler_server(name: &'static str, coop_budget: usize) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let executor = Arc::new(smol::Executor::new());
            let spawner = Arc::clone(&executor);
            let mut server =
                concurrence_smol::SocketServer::new("127.0.0.1:0".parse().expect("address"))
                    .with_spawner(move |task| spawner.spawn(task).detach());
            server.listen(1024).expect("smol listen");
            tx.send(server.local_address().as_tcp().expect("tcp"))
                .expect("send address");
            let serve = server.serve(move |mut socket: concurrence_smol::Socket| async move {
                socket.set_coop_budget(coop_budget);
                let mut stream = concurrence_core::AsyncBufferedStream::new(socket);
                while let Some(line) = stream.read_line().await? {
                    let mut line = line.to_vec();
                    line.push(b'\n');
                    stream.write_bytes(&line).await?;
                    if stream.reader().is_empty() {
                        stream.flush().await?;
                    }
                }
                Ok::<(), concurrence_core::StreamError>(())
            });
            smol::block_on(executor.run(serve)).expect("serve");
        })
        .expect("smol handler thread");
    rx.recv().expect("smol handler address")
}

fn tokio_server() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("tokio-server".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                loop {
                    let (socket, _) = listener.accept().await.expect("accept");
                    socket.set_nodelay(true).expect("nodelay");
                    tokio::task::spawn_local(async move {
                        let (mut rd, wr) = socket.into_split();
                        let mut out = BufWriter::with_capacity(8192, wr);
                        let mut buf = vec![0u8; 8192];
                        let mut filled = 0;
                        loop {
                            match rd.read(&mut buf[filled..]).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => filled += n,
                            }
                            // Echo every complete line; keep a partial one.
                            let mut start = 0;
                            while let Some(at) = memchr(b'\n', &buf[start..filled]) {
                                let end = start + at + 1;
                                if out.write_all(&buf[start..end]).await.is_err() {
                                    return;
                                }
                                start = end;
                            }
                            buf.copy_within(start..filled, 0);
                            filled -= start;
                            if filled == buf.len() {
                                return; // a line longer than the buffer: not this load
                            }
                            // Flush when no more input is buffered (the read above drained
                            // what was there).
                            if out.flush().await.is_err() {
                                return;
                            }
                        }
                    });
                }
            });
        })
        .expect("tokio thread");
    rx.recv().expect("tokio address")
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo test --benches` runs this without --bench; keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let clients = env("ECHO_CLIENTS", if quick { 4 } else { 64 });
    let requests = env("ECHO_REQUESTS", if quick { 2_000 } else { 128_000 });
    let repeats = env("ECHO_REPEATS", if quick { 1 } else { 5 });
    let only = std::env::var("ECHO_ONLY").ok();
    let depths: Vec<usize> = std::env::var("ECHO_DEPTHS").map_or_else(
        |_| vec![1, 16],
        |v| v.split(',').filter_map(|d| d.trim().parse().ok()).collect(),
    );

    let (polling_addr, polling) = polling_server();
    let (uring_addr, uring) = uring_server();
    let servers: Vec<(&str, SocketAddr, &[&str])> = vec![
        ("polling", polling_addr, &["concurrence-loo"]),
        // The loop's thread, and io_uring's kernel workers should it punt work to them.
        (
            "uring",
            uring_addr,
            &["concurrence-uri", "iou-wrk", "iou-sqp"],
        ),
        ("smol", smol_server(), &["smol-server", "async-io"]),
        ("tokio", tokio_server(), &["tokio-server"]),
        (
            "smol-h",
            smol_handler_server("smol-handler", concurrence_socket::COOP_BUDGET),
            &["smol-handler", "async-io"],
        ),
        (
            "smol-hu",
            smol_handler_server("smol-unbudget", usize::MAX),
            &["smol-unbudget", "async-io"],
        ),
    ];
    if std::env::var_os("ECHO_HOLD").is_some() {
        for (name, addr, _) in &servers {
            println!("{name} listening on {addr}");
        }
        println!("holding the servers for 10 minutes (ECHO_HOLD)");
        std::thread::sleep(Duration::from_secs(600));
    }
    println!(
        "line echo, 64-byte lines, {clients} connections, {requests} requests x depth per run, median of {repeats} runs, one server thread each"
    );
    println!("depth  server   req/s       server CPU per request");
    let chosen: Vec<_> = servers
        .iter()
        .filter(|(name, _, _)| only.as_deref().is_none_or(|o| o == *name))
        .collect();
    for &depth in &depths {
        // Runs interleave the servers (polling, smol, tokio, polling, ...) so that drift in
        // the machine's speed spreads over all of them; each figure is a median over runs.
        let mut rates = vec![Vec::new(); chosen.len()];
        let mut micros = vec![Vec::new(); chosen.len()];
        // The same number of round trips at every depth, so that each run lasts about as
        // long (a depth-16 run of 128,000 requests took a tenth of a second).
        let requests = requests * depth;
        let answered = (requests / (clients * depth)).max(1) * clients * depth;
        for _ in 0..repeats {
            for (i, (_, addr, threads)) in chosen.iter().enumerate() {
                let before = cpu_nanos(threads);
                rates[i].push(load(*addr, clients, depth, requests));
                let nanos = cpu_nanos(threads) - before;
                micros[i].push(nanos as f64 / 1_000.0 / answered as f64);
            }
        }
        let mut cpu_per_request = Vec::new();
        for (i, (name, _, _)) in chosen.iter().enumerate() {
            let cpu = median(micros[i].clone());
            cpu_per_request.push((*name, cpu));
            println!(
                "{depth:>5}  {name:<7} {:>9.0}   {cpu:>7.3} µs",
                median(rates[i].clone())
            );
        }
        let of = |n: &str| cpu_per_request.iter().find(|(m, _)| *m == n).map(|x| x.1);
        if let (Some(p), Some(t)) = (of("polling"), of("tokio")) {
            println!("       CPU per request, polling / tokio: {:.2}", p / t);
        }
        if let (Some(u), Some(t)) = (of("uring"), of("tokio")) {
            println!("       CPU per request, uring / tokio:   {:.2}", u / t);
        }
        if let (Some(u), Some(p)) = (of("uring"), of("polling")) {
            println!("       CPU per request, uring / polling: {:.2}", u / p);
        }
        if let (Some(s), Some(p)) = (of("smol"), of("polling")) {
            println!("       CPU per request, smol / polling:  {:.2}", s / p);
        }
        if let (Some(b), Some(u)) = (of("smol-h"), of("smol-hu")) {
            println!(
                "       CPU per request, handler path with / without the coop budget: {:.3}",
                b / u
            );
        }
    }
    polling.shutdown();
    polling.join().expect("join");
    uring.shutdown();
    uring.join().expect("join");
}
