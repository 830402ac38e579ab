//! Scenarios on `Session`s, served and connected by the backend: a line protocol at and past
//! its bound, length-prefixed blocks, a server that half-closes first, a peer reset
//! mid-frame, the idle timeout, a failing session, a panicking one, and sessions on both ends.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use concurrence_core::{ConnectionConfig, ReaderConfig};
use concurrence_socket::{ServerConfig, SocketError};
use concurrence_testkit::{Producer, Script};

use crate::Transcript;
use crate::backend::{AddressKind, BoxSession, Net, SessionFactory};
use crate::sessions::{BlockSum, GreetAndHalfClose, Observed, Reported, Reports, ScenarioEcho};
use crate::steps::{
    STEP_TIMEOUT, describe, describe_error, next_report, read_pattern_to_end, read_to_end,
    read_until_suffix, show, write_all,
};

const STEP: Option<Duration> = Some(STEP_TIMEOUT);

/// A factory serving `make()` reported as "server".
fn reported_factory<S>(reports: &Reports, make: fn() -> S) -> SessionFactory
where
    S: concurrence_core::Session + Observed + Send + 'static,
{
    let reports = reports.clone();
    Arc::new(move |_: &_| -> BoxSession {
        Box::new(Reported::new("server", make(), reports.clone()))
    })
}

/// Connects `script` as a reported client session to a server of `make()` sessions, and
/// records both end reports (sorted: which side ends first is timing).
async fn script_against<S>(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    config: ServerConfig,
    make: fn() -> S,
    script: Script,
    t: &mut Transcript,
) -> Result<(), SocketError>
where
    S: concurrence_core::Session + Observed + Send + 'static,
{
    let (reports, received) = async_channel::unbounded();
    let mut server =
        net.serve_session(&net.address(kind), config, reported_factory(&reports, make))?;
    let client = Box::new(Reported::new("client", script, reports.clone()));
    let ended = net
        .connect_session(&server.local_address(), client, ConnectionConfig::default())
        .await;
    drop(ended);
    let mut lines = vec![
        next_report(net, &received).await,
        next_report(net, &received).await,
    ];
    lines.sort();
    for line in lines {
        t.line(line);
    }
    server.close();
    Ok(())
}

/// The line bound of the line-protocol scenario.
const MAX_LINE: usize = 48;

/// Lines ending in LF and CRLF, an empty line, a line just under the bound, then one past it:
/// the echoes of the complete lines reach the client, then the session fails.
pub(crate) async fn line_protocol(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    let mut config = ServerConfig::default();
    config.reader = ReaderConfig::default().with_max_line(MAX_LINE);
    let long = format!("{}\n", "x".repeat(MAX_LINE - 8));
    let too_long = format!("{}\n", "y".repeat(MAX_LINE * 2));
    let script = Script::new()
        .send("one\n")
        .send("two\r\n")
        .send("\n")
        .send(long)
        .send(too_long)
        .close_write();
    script_against(net, kind, config, || ScenarioEcho, script, t).await
}

/// Length-prefixed blocks (4-byte big-endian length): two fit, the third is past the bound.
pub(crate) async fn length_prefixed_blocks(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    let mut config = ServerConfig::default();
    config.reader = ReaderConfig::default().with_max_block(1024);
    let block = |payload: &[u8]| {
        let mut framed = u32::try_from(payload.len())
            .unwrap_or(0)
            .to_be_bytes()
            .to_vec();
        framed.extend_from_slice(payload);
        framed
    };
    let second = block(&[1u8; 1000]);
    let script = Script::new()
        .send(block(b"abc"))
        .send(&second[..3])
        .send(&second[3..])
        .send(5000u32.to_be_bytes())
        .send([7u8; 100])
        .close_write();
    script_against(net, kind, config, || BlockSum, script, t).await
}

/// Sessions on both ends: a scripted client against the line echo, closed by the client.
pub(crate) async fn sessions_both_ends(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    let script = Script::new().send("a\nb\r\n").await_suffix("b\r\n").close();
    script_against(
        net,
        kind,
        ServerConfig::default(),
        || ScenarioEcho,
        script,
        t,
    )
    .await
}

/// The client sends a line and part of the next, waits for the first echo (the server is
/// reading), and resets in the middle of the second line: the server is told `Reset`.
pub(crate) async fn reset_mid_frame(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    let script = Script::new()
        .send("first\nhalf a li")
        .await_suffix("first\n")
        .reset();
    script_against(
        net,
        kind,
        ServerConfig::default(),
        || ScenarioEcho,
        script,
        t,
    )
    .await
}

/// A session that fails on its second request: the reply to the first still arrives.
pub(crate) async fn session_failure(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    let script = Script::new().send("ok\nbad\n").close_write();
    script_against(
        net,
        kind,
        ServerConfig::default(),
        || ScenarioEcho,
        script,
        t,
    )
    .await
}

/// The server half-closes first (greeting, then end of stream); the client answers after
/// reading to the end; the server gets the answer and ends `Closed`.
pub(crate) async fn half_close_server_first(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    let (reports, received) = async_channel::unbounded();
    let mut server = net.serve_session(
        &net.address(kind),
        ServerConfig::default(),
        reported_factory(&reports, GreetAndHalfClose::default),
    )?;
    let mut client = net.connect(&server.local_address(), STEP).await?;
    let greeting = read_to_end(&mut *client, 1024, STEP).await?;
    t.line(format!(
        "client received {} then end of stream",
        show(&greeting)
    ));
    write_all(&mut *client, b"bye\n", STEP).await?;
    client.close()?;
    t.line(next_report(net, &received).await);
    server.close();
    Ok(())
}

/// A client that goes quiet is closed by the server's idle timeout.
pub(crate) async fn idle_timeout(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    let mut config = ServerConfig::default();
    config.idle_timeout = Some(Duration::from_millis(200));
    ended_by_the_server(net, kind, t, config, b"", "the silent client").await
}

/// A peer that starts a request and never finishes it (slowloris) is ended by the frame
/// timeout, even though bytes came recently enough for the idle timeout.
pub(crate) async fn frame_timeout(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    let mut config = ServerConfig::default();
    config.idle_timeout = Some(Duration::from_secs(30));
    config.frame_timeout = Some(Duration::from_millis(200));
    ended_by_the_server(
        net,
        kind,
        t,
        config,
        b"a request that never e",
        "the trickling client",
    )
    .await
}

/// A client sends `sent` (maybe nothing) to a `config` server and reads until the server
/// ends the connection; the transcript has what `who` read and the server's end.
async fn ended_by_the_server(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
    config: ServerConfig,
    sent: &[u8],
    who: &str,
) -> Result<(), SocketError> {
    let (reports, received) = async_channel::unbounded();
    let mut server = net.serve_session(
        &net.address(kind),
        config,
        reported_factory(&reports, || ScenarioEcho),
    )?;
    let mut client = net.connect(&server.local_address(), STEP).await?;
    if !sent.is_empty() {
        write_all(&mut *client, sent, STEP).await?;
    }
    let got = read_to_end(&mut *client, 1024, STEP).await;
    t.line(format!(
        "{who} reads: {}",
        match got {
            Ok(bytes) if bytes.is_empty() => "end of stream".to_owned(),
            Ok(bytes) => show(&bytes),
            Err(e) => describe_error(&e),
        }
    ));
    t.line(next_report(net, &received).await);
    client.close()?;
    server.close();
    Ok(())
}

/// A session factory that panics (user code, before any session exists) ends only that
/// connection: the client sees end of stream and the next client is served.
pub(crate) async fn panicking_factory(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let factory: SessionFactory = Arc::new(move |_: &_| -> BoxSession {
        assert!(
            !first.swap(false, std::sync::atomic::Ordering::SeqCst),
            "the scenario asked this factory to panic once"
        );
        Box::new(ScenarioEcho)
    });
    let mut server = net.serve_session(&net.address(kind), ServerConfig::default(), factory)?;
    let outcome = victim_then_next(
        net,
        &server.local_address(),
        b"",
        "the client whose factory call panicked",
        t,
    )
    .await;
    server.close();
    outcome
}

/// A victim client sends `sent` (maybe nothing) and reads until its connection ends; then
/// the next client must still be served.
async fn victim_then_next(
    net: &Rc<dyn Net>,
    address: &concurrence_core::Address,
    sent: &[u8],
    who: &str,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    let mut victim = net.connect(address, STEP).await?;
    if !sent.is_empty() {
        write_all(&mut *victim, sent, STEP).await?;
    }
    let seen = read_to_end(&mut *victim, 1024, STEP).await.map(|b| b.len());
    t.line(format!(
        "{who} reads: {}",
        match seen {
            Ok(0) => "end of stream".to_owned(),
            other => describe(&other),
        }
    ));
    victim.close()?;
    let mut next = net.connect(address, STEP).await?;
    write_all(&mut *next, b"still serving\n", STEP).await?;
    let reply = read_until_suffix(&mut *next, b"\n", STEP).await?;
    t.line(format!("the next client received {}", show(&reply)));
    next.close()?;
    Ok(())
}

/// A session that panics is contained to its connection: the next client is served.
pub(crate) async fn panic_isolation(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    let (reports, _received) = async_channel::unbounded();
    let mut server = net.serve_session(
        &net.address(kind),
        ServerConfig::default(),
        reported_factory(&reports, || ScenarioEcho),
    )?;
    let outcome = victim_then_next(
        net,
        &server.local_address(),
        b"boom\n",
        "the client whose session panicked",
        t,
    )
    .await;
    server.close();
    outcome
}

/// The shutdown grace of `shutdown_grace`.
const GRACE: Duration = Duration::from_millis(300);

/// A server closed with a connection open: the connection is still served during
/// `ServerConfig::shutdown_grace`, then ends with `Shutdown`; a newcomer afterwards is refused.
pub(crate) async fn shutdown_grace(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    let (reports, received) = async_channel::unbounded();
    let mut config = ServerConfig::default();
    config.shutdown_grace = GRACE;
    let mut server = net.serve_session(
        &net.address(kind),
        config,
        reported_factory(&reports, || ScenarioEcho),
    )?;
    let address = server.local_address();
    let mut client = net.connect(&address, STEP).await?;
    write_all(&mut *client, b"before\n", STEP).await?;
    let before = read_until_suffix(&mut *client, b"\n", STEP).await?;
    t.line(format!("before the close: {}", show(&before)));
    let closed_at = net.now();
    server.close();
    write_all(&mut *client, b"during the grace\n", STEP).await?;
    let during = read_until_suffix(&mut *client, b"\n", STEP).await?;
    t.line(format!("during the grace: {}", show(&during)));
    let rest = read_to_end(&mut *client, 1024, STEP).await;
    let after_grace = net.now().saturating_duration_since(closed_at) >= GRACE;
    t.line(match rest {
        Ok(bytes) if bytes.is_empty() => {
            format!("then end of stream, not before the grace ended: {after_grace}")
        }
        Ok(bytes) => format!("then {}", show(&bytes)),
        Err(e) => format!("then {}", describe_error(&e)),
    });
    t.line(next_report(net, &received).await);
    client.close()?;
    t.line(match net.connect(&address, STEP).await {
        Ok(_) => "a newcomer after the shutdown: connected".to_owned(),
        Err(e) => format!("a newcomer after the shutdown: {}", describe_error(&e)),
    });
    Ok(())
}

/// Bytes the producing session of `large_session_transfer` sends.
const PRODUCED: usize = 8 << 20;

/// A session that sends 8 MiB at once to a client that reads slowly: the server's connection
/// keeps at most its writer's high-water mark plus one chunk buffered (back-pressure, not
/// growth), and every byte arrives in order.
pub(crate) async fn large_session_transfer(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    t: &mut Transcript,
) -> Result<(), SocketError> {
    let (reports, received) = async_channel::unbounded();
    let reports2 = reports.clone();
    let factory: SessionFactory = Arc::new(move |_: &_| -> BoxSession {
        Box::new(Reported::new(
            "server",
            Producer {
                total: PRODUCED,
                ..Producer::default()
            },
            reports2.clone(),
        ))
    });
    drop(reports);
    let mut server = net.serve_session(&net.address(kind), ServerConfig::default(), factory)?;
    let mut client = net.connect(&server.local_address(), STEP).await?;
    // Read slowly at first, so that the producer meets back-pressure.
    net.sleep(Duration::from_millis(100)).await;
    let (got, in_order) = read_pattern_to_end(&mut *client, STEP).await?;
    t.line(format!("client received {got} bytes, in order: {in_order}"));
    t.line(next_report(net, &received).await);
    client.close()?;
    server.close();
    Ok(())
}
