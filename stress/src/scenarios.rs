//! The hostile-peer scenarios. Each starts its own server process, plays one kind of hostile
//! peer against it on loopback (every loop bounded in count and time), checks that the server
//! kept its promises, and returns one line of figures, or what went wrong.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::probe::ServerProcess;

/// How long any single wait may take before the scenario fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// A scenario's outcome: one line of figures, or what failed.
pub(crate) type Outcome = Result<String, String>;

/// A scenario: given the backend and whether to run the quick load.
pub(crate) type Scenario = fn(&str, bool) -> Outcome;

/// The scenarios, by name, in the order `stress run` runs them.
pub(crate) const ALL: [(&str, Scenario); 8] = [
    ("fairness", fairness),
    ("out-of-fds", out_of_fds),
    ("idle", idle),
    ("slowloris", slowloris),
    ("oversized-line", oversized_line),
    ("never-reads", never_reads),
    ("resets", resets),
    ("connections", connections),
];

fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect_timeout(&addr, PATIENCE)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(PATIENCE))
        .and_then(|()| stream.set_write_timeout(Some(PATIENCE)))
        .map_err(|e| format!("cannot set timeouts: {e}"))?;
    Ok(stream)
}

/// One line there and back; the round trip time.
fn round_trip(stream: &mut TcpStream, line: &str) -> Result<Duration, String> {
    let sent = Instant::now();
    stream
        .write_all(line.as_bytes())
        .map_err(|e| format!("write failed: {e}"))?;
    let mut reply = String::new();
    BufReader::new(&*stream)
        .read_line(&mut reply)
        .map_err(|e| format!("no reply to {line:?}: {e}"))?;
    if reply != line {
        return Err(format!("sent {line:?}, got back {reply:?}"));
    }
    Ok(sent.elapsed())
}

/// A fresh client's round trip works.
fn still_serves(addr: SocketAddr) -> Result<Duration, String> {
    let mut client = connect(addr)?;
    round_trip(&mut client, "still there?\n")
}

/// Reads until end of stream or an error; true for end of stream or a reset (the server
/// closed), false when the read timed out.
fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let _ = stream.set_read_timeout(Some(within.max(Duration::from_millis(1))));
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// Raises this process's descriptor limit to its hard limit (the clients need many).
pub(crate) fn raise_own_nofile() {
    if let Err(e) = concurrence_os::limits::raise_nofile_limit() {
        eprintln!("stress: could not raise RLIMIT_NOFILE ({e}); large loads may fail");
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let last = sorted.len() - 1;
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((last as f64) * p).round() as usize;
    sorted[index.min(last)]
}

fn ms(d: Duration) -> String {
    format!("{:.2}ms", d.as_secs_f64() * 1000.0)
}

/// (1) One client floods pipelined lines (and drains the replies); another's round trips must
/// stay fast.
fn fairness(backend: &str, quick: bool) -> Outcome {
    let server = ServerProcess::start(backend, &[])?;
    let stop = Arc::new(AtomicBool::new(false));
    let flood = connect(server.addr)?;
    let mut drain = flood
        .try_clone()
        .map_err(|e| format!("cannot clone: {e}"))?;
    let drainer = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        while let Ok(n) = drain.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        total
    });
    let flooder = {
        let stop = Arc::clone(&stop);
        let mut flood = flood;
        std::thread::spawn(move || {
            let lines = b"flood flood flood\n".repeat(1024);
            let started = Instant::now();
            while !stop.load(Ordering::SeqCst) && started.elapsed() < PATIENCE {
                if flood.write_all(&lines).is_err() {
                    break;
                }
            }
            let _ = flood.shutdown(std::net::Shutdown::Write);
        })
    };
    std::thread::sleep(Duration::from_millis(200)); // let the flood build up
    let mut other = connect(server.addr)?;
    let trips = if quick { 200 } else { 2_000 };
    let mut times = Vec::with_capacity(trips);
    let outcome = (0..trips).try_for_each(|i| {
        times.push(round_trip(&mut other, &format!("{i}\n"))?);
        Ok::<(), String>(())
    });
    stop.store(true, Ordering::SeqCst);
    let _ = flooder.join();
    let flooded = drainer.join().unwrap_or(0);
    outcome?;
    times.sort();
    let (p50, p99, max) = (
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        percentile(&times, 1.0),
    );
    if max > Duration::from_secs(1) {
        return Err(format!("a round trip next to the flood took {}", ms(max)));
    }
    Ok(format!(
        "round_trips={trips} p50={} p99={} max={} flood_echoed={}MiB",
        ms(p50),
        ms(p99),
        ms(max),
        flooded >> 20
    ))
}

/// (2) The server runs out of descriptors with connections waiting: it must rest, not spin,
/// and serve again once descriptors free up.
fn out_of_fds(backend: &str, quick: bool) -> Outcome {
    let server = ServerProcess::start(backend, &["--nofile", "256"])?;
    let total = if quick { 400 } else { 1_000 };
    let mut clients = Vec::with_capacity(total);
    for _ in 0..total {
        match TcpStream::connect_timeout(&server.addr, Duration::from_secs(2)) {
            Ok(stream) => clients.push(stream),
            Err(_) => break, // the backlog is full: enough
        }
    }
    std::thread::sleep(Duration::from_millis(300)); // let it run into the limit
    let (cpu0, wall0) = (server.cpu(), Instant::now());
    std::thread::sleep(Duration::from_secs(if quick { 1 } else { 3 }));
    let busy = (server.cpu() - cpu0).as_secs_f64() / wall0.elapsed().as_secs_f64();
    let fds = server.fds();
    if busy > 0.2 {
        return Err(format!(
            "the server burns {busy:.2} CPU while out of descriptors"
        ));
    }
    let held = clients.len();
    drop(clients);
    let started = Instant::now();
    loop {
        match still_serves(server.addr) {
            Ok(_) => break,
            Err(e) if started.elapsed() > PATIENCE => {
                return Err(format!("no recovery after freeing descriptors: {e}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    Ok(format!(
        "clients={held} server_fds={fds} cpu_while_out={busy:.3} recovered_in={}",
        ms(started.elapsed())
    ))
}

/// (5a) Connections that never send a byte are closed by the idle timeout; newcomers are
/// served meanwhile.
fn idle(backend: &str, quick: bool) -> Outcome {
    raise_own_nofile();
    let server = ServerProcess::start(backend, &["--idle-ms", "1000"])?;
    let n = if quick { 500 } else { 5_000 };
    let mut quiet = (0..n)
        .map(|_| connect(server.addr))
        .collect::<Result<Vec<_>, _>>()?;
    still_serves(server.addr)?;
    let started = Instant::now();
    let mut closed = 0;
    for stream in &mut quiet {
        let left = (Duration::from_secs(5)).saturating_sub(started.elapsed());
        if closed_by_server(stream, left) {
            closed += 1;
        }
    }
    if closed != n {
        return Err(format!(
            "{} of {n} idle connections still open after 5 s",
            n - closed
        ));
    }
    Ok(format!(
        "quiet={n} all_closed_after={} fds_after={}",
        ms(started.elapsed()),
        server.fds()
    ))
}

/// (5b) Slowloris: connections trickle a request a byte at a time; the frame timeout ends
/// them; newcomers are served meanwhile.
fn slowloris(backend: &str, quick: bool) -> Outcome {
    let server = ServerProcess::start(backend, &["--frame-ms", "1000", "--idle-ms", "60000"])?;
    let n = if quick { 100 } else { 300 };
    let mut slow = (0..n)
        .map(|_| connect(server.addr))
        .collect::<Result<Vec<_>, _>>()?;
    let started = Instant::now();
    let mut open = n;
    let mut served_meanwhile = 0;
    // One byte per connection every 100 ms, for at most 5 s, until the server closed them.
    while open > 0 && started.elapsed() < Duration::from_secs(5) {
        open = 0;
        for stream in &mut slow {
            if stream.write_all(b"x").is_ok() {
                open += 1;
            }
        }
        if still_serves(server.addr).is_ok() {
            served_meanwhile += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut closed = 0;
    for stream in &mut slow {
        if closed_by_server(stream, Duration::from_millis(500)) {
            closed += 1;
        }
    }
    if closed != n {
        return Err(format!(
            "{} of {n} slowloris connections still open",
            n - closed
        ));
    }
    Ok(format!(
        "slow={n} all_closed_within={} newcomers_served={served_meanwhile}",
        ms(started.elapsed())
    ))
}

/// (oversized) A line past `max_line` (64 KiB) ends that connection with an error, nobody
/// else's.
fn oversized_line(backend: &str, _quick: bool) -> Outcome {
    let server = ServerProcess::start(backend, &[])?;
    let mut big = connect(server.addr)?;
    let _ = big.write_all(&vec![b'a'; 70_000]);
    if !closed_by_server(&mut big, Duration::from_secs(5)) {
        return Err("a 70,000-byte line did not end its connection".into());
    }
    let trip = still_serves(server.addr)?;
    Ok(format!(
        "line=70000B closed=yes others_served_in={}",
        ms(trip)
    ))
}

/// (never reads) A client sends without ever reading: back-pressure must hold the server's
/// memory flat.
fn never_reads(backend: &str, quick: bool) -> Outcome {
    let server = ServerProcess::start(backend, &[])?;
    let rss0 = server.rss();
    let mut hog = connect(server.addr)?;
    hog.set_write_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let chunk = b"never read the replies to these lines\n".repeat(1700);
    let cap: usize = if quick { 64 << 20 } else { 256 << 20 };
    let mut sent = 0usize;
    while sent < cap {
        match hog.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break, // the server stopped reading: back-pressure reached us
        }
    }
    let grown = server.rss().saturating_sub(rss0);
    still_serves(server.addr)?;
    if sent >= cap {
        return Err(format!(
            "the server read all {} MiB without back-pressure",
            cap >> 20
        ));
    }
    if grown > 32 << 20 {
        return Err(format!("the server grew by {} MiB", grown >> 20));
    }
    Ok(format!(
        "sent_before_backpressure={}KiB server_rss_growth={}KiB",
        sent >> 10,
        grown >> 10
    ))
}

/// (resets) Many connections reset mid-stream: every descriptor comes back.
fn resets(backend: &str, quick: bool) -> Outcome {
    let server = ServerProcess::start(backend, &[])?;
    let baseline = settled_fds(&server, usize::MAX);
    let n = if quick { 1_000 } else { 5_000 };
    for i in 0..n {
        let mut stream = connect(server.addr)?;
        let _ = stream.write_all(format!("half a line {i}").as_bytes());
        socket2::SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .map_err(|e| format!("cannot set SO_LINGER: {e}"))?;
        drop(stream); // RST
    }
    // The server may still be accepting connections that are already reset: wait until its
    // descriptor count is back to the baseline and stays there.
    let after = settled_fds(&server, baseline);
    if after > baseline {
        return Err(format!(
            "{} descriptors leaked after {n} resets",
            after - baseline
        ));
    }
    still_serves(server.addr)?;
    Ok(format!(
        "resets={n} fds_baseline={baseline} fds_after={after}"
    ))
}

/// The server's descriptor count once it stopped changing (the same for 200 ms), waiting at
/// most 10 s for it to fall to `target` or below.
fn settled_fds(server: &ServerProcess, target: usize) -> usize {
    let started = Instant::now();
    let mut last = server.fds();
    let mut stable_since = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
        let now = server.fds();
        if now != last {
            last = now;
            stable_since = Instant::now();
        } else if stable_since.elapsed() >= Duration::from_millis(200) && now <= target {
            break;
        }
    }
    last
}

/// (connections) Many concurrent connections, each answered; memory per connection.
fn connections(backend: &str, quick: bool) -> Outcome {
    raise_own_nofile();
    let server = ServerProcess::start(backend, &[])?;
    still_serves(server.addr)?;
    let rss0 = server.rss();
    let n = if quick { 2_000 } else { 10_000 };
    let mut open = Vec::with_capacity(n);
    for i in 0..n {
        let mut stream = connect(server.addr)?;
        round_trip(&mut stream, &format!("hello {i}\n"))?;
        open.push(stream);
    }
    let rss = server.rss();
    let per = rss.saturating_sub(rss0) / n as u64;
    let fds = server.fds();
    for (i, stream) in open.iter_mut().enumerate().step_by(97) {
        round_trip(stream, &format!("again {i}\n"))?;
    }
    Ok(format!(
        "connections={n} server_rss={}MiB per_connection={:.1}KiB server_fds={fds}",
        rss >> 20,
        per as f64 / 1024.0
    ))
}
