//! The steps scenarios are made of, on top of the backend trait: write all, read to the end,
//! wait for a spawned task, and describe an error or an end reason the same way everywhere.

use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use concurrence_core::{Address, EndReason, SocketStateError};
use concurrence_socket::SocketError;
use futures_lite::future::or;

use crate::backend::{AddressKind, Listener, Net, Stream};

/// How long any single step may wait before the scenario calls it a hang (real time on the
/// socket backends, virtual on the simulator). Generous: CI machines are slow.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Writes all of `bytes`.
///
/// # Errors
/// The first write that failed.
pub async fn write_all(
    stream: &mut dyn Stream,
    bytes: &[u8],
    timeout: Option<Duration>,
) -> Result<(), SocketError> {
    let mut sent = 0;
    while sent < bytes.len() {
        sent += stream.write(bytes[sent..].to_vec(), timeout).await?;
    }
    Ok(())
}

/// Reads until end of stream or until `limit` bytes arrived.
///
/// # Errors
/// The first read that failed (what arrived before it is lost to the caller).
pub async fn read_to_end(
    stream: &mut dyn Stream,
    limit: usize,
    timeout: Option<Duration>,
) -> Result<Vec<u8>, SocketError> {
    let mut all = Vec::new();
    while all.len() < limit {
        let chunk = stream
            .read((limit - all.len()).min(64 * 1024), timeout)
            .await?;
        if chunk.is_empty() {
            break;
        }
        all.extend_from_slice(&chunk);
    }
    Ok(all)
}

/// Reads until `suffix` ends what arrived, or end of stream.
///
/// # Errors
/// The first read that failed.
pub async fn read_until_suffix(
    stream: &mut dyn Stream,
    suffix: &[u8],
    timeout: Option<Duration>,
) -> Result<Vec<u8>, SocketError> {
    let mut all = Vec::new();
    while !all.ends_with(suffix) {
        let chunk = stream.read(64 * 1024, timeout).await?;
        if chunk.is_empty() {
            break;
        }
        all.extend_from_slice(&chunk);
    }
    Ok(all)
}

/// Creates, binds and listens on a fresh address of `kind`; returns the listener and the
/// address to connect to.
///
/// # Errors
/// As the backend's `bind` / `listen`.
pub fn listen(
    net: &Rc<dyn Net>,
    kind: AddressKind,
    backlog: i32,
) -> Result<(Box<dyn Listener>, Address), SocketError> {
    let mut listener = net.socket(&net.address(kind))?;
    listener.listen(backlog)?;
    let address = listener.local_address()?;
    Ok((listener, address))
}

/// Runs `task` on the backend and returns a future of its output (`None` if it did not
/// finish within [`STEP_TIMEOUT`]).
pub fn spawn_joined<T: 'static>(
    net: &Rc<dyn Net>,
    task: impl Future<Output = T> + 'static,
) -> impl Future<Output = Option<T>> + 'static {
    let (tx, rx) = async_channel::bounded(1);
    net.spawn(Box::pin(async move {
        let _ = tx.send(task.await).await;
    }));
    let timer = net.sleep(STEP_TIMEOUT);
    async move {
        or(async { rx.recv().await.ok() }, async {
            timer.await;
            None
        })
        .await
    }
}

/// Receives one report line from sessions (`None` after [`STEP_TIMEOUT`]).
pub async fn next_report(net: &Rc<dyn Net>, reports: &async_channel::Receiver<String>) -> String {
    let timer = net.sleep(STEP_TIMEOUT);
    or(async { reports.recv().await.ok() }, async {
        timer.await;
        None
    })
    .await
    .unwrap_or_else(|| "no report from the session (hung?)".to_owned())
}

/// An error as the transcript records it: its class and operation, without addresses or
/// timings, so that every backend writes the same line for the same failure.
#[must_use]
pub fn describe_error(error: &SocketError) -> String {
    use std::io::ErrorKind as K;
    match error {
        SocketError::TimedOut { op, .. } => format!("timed out ({op})"),
        SocketError::Io { op, source, .. } => match source.kind() {
            // No socket file at a Unix path is "nobody listens" too (as the core's
            // `EndReason::ConnectRefused` says).
            K::ConnectionRefused | K::NotFound => format!("refused ({op})"),
            K::ConnectionReset | K::BrokenPipe | K::ConnectionAborted => format!("reset ({op})"),
            K::Unsupported => format!("unsupported ({op})"),
            other => format!("io error {other:?} ({op})"),
        },
        SocketError::State(SocketStateError::InvalidState { op, state }) => {
            format!("wrong state: {op} when {state:?}")
        }
        SocketError::Buffer(_) => "buffer error".to_owned(),
        SocketError::WrongKind { op, needs, .. } => format!("wrong kind: {op} needs {needs}"),
        SocketError::NoDescriptor { .. } => "no descriptor".to_owned(),
        other => format!("other error: {other}"),
    }
}

/// A result as the transcript records it.
#[must_use]
pub fn describe<T>(result: &Result<T, SocketError>) -> String {
    match result {
        Ok(_) => "ok".to_owned(),
        Err(e) => describe_error(e),
    }
}

/// An end reason as the transcript records it: its kind, and for a session error its text.
#[must_use]
pub fn describe_end(reason: &EndReason) -> String {
    match reason {
        EndReason::Session(error) => format!("Session ({error})"),
        other => format!("{:?}", other.kind()),
    }
}

/// Bytes as the transcript shows them (escaped; long runs summarised).
#[must_use]
pub fn show(bytes: &[u8]) -> String {
    if bytes.len() > 80 {
        return format!("{} bytes", bytes.len());
    }
    format!("'{}'", bytes.escape_ascii())
}

/// A spawned task's outcome as the transcript records it: `done(value)` when it finished,
/// else that `who` failed (and how) or hung.
pub fn task_line<T>(
    who: &str,
    outcome: Option<Result<T, SocketError>>,
    done: impl FnOnce(T) -> String,
) -> String {
    match outcome {
        Some(Ok(value)) => done(value),
        Some(Err(e)) => format!("{who} failed: {}", describe_error(&e)),
        None => format!("{who} hung"),
    }
}

/// Reads to end of stream a stream of `concurrence_testkit::pattern` bytes: how many arrived,
/// and whether each was the pattern's byte at its offset.
///
/// # Errors
/// The first read that failed.
pub async fn read_pattern_to_end(
    stream: &mut dyn Stream,
    timeout: Option<Duration>,
) -> Result<(usize, bool), SocketError> {
    let (mut received, mut in_order) = (0usize, true);
    loop {
        let chunk = stream.read(64 * 1024, timeout).await?;
        if chunk.is_empty() {
            return Ok((received, in_order));
        }
        in_order &= chunk
            .iter()
            .enumerate()
            .all(|(k, &b)| b == concurrence_testkit::pattern(received + k));
        received += chunk.len();
    }
}
