//! The client driver: `connect_session` connects to an address and runs a core `Session` as
//! the client of that connection, as one `async fn` under any executor. Connect failures and
//! timeouts reach the session as end reasons, like every other end.

use async_io::Timer;
use concurrence_core::{Address, Connection, ConnectionConfig, EndReason, Ended, Output, Session};
use futures_lite::future::{or, pending};

use concurrence_os::{clock, log_end};

use crate::session_driver::drive;
use concurrence_socket::Transport;

use crate::socket::SmolTransport;

/// Bytes moved per turn before the client task yields to its executor.
const CLIENT_TURN_BUDGET: usize = 64 * 1024;

/// Connects to `address` (TCP for `ip:port`, Unix for a path) and runs `session` as the client
/// of the connection until it ends; returns the session and why the connection ended (also
/// told to [`Session::handle_end`]).
///
/// The connect is bounded by `config.connect_timeout`
/// ([`EndReason::ConnectTimedOut`]); nobody listening is [`EndReason::ConnectRefused`]. Once
/// connected, the session runs exactly as a served one. The polling backend has the same
/// function, blocking.
///
/// ```no_run
/// use concurrence_core::{ConnectionConfig, EndKind};
/// use concurrence_testkit::{Script};
/// use concurrence_smol::connect_session;
///
/// smol::block_on(async {
///     let request = Script::new().send("version\r\n").await_suffix("\r\n").close();
///     let address = "127.0.0.1:11211".parse()?;
///     let ended = connect_session(&address, request, ConnectionConfig::default()).await;
///     assert_eq!(ended.reason.kind(), EndKind::Closed);
///     Ok::<(), Box<dyn std::error::Error>>(())
/// })
/// # .unwrap();
/// ```
pub async fn connect_session<S: Session>(
    address: &Address,
    session: S,
    config: ConnectionConfig,
) -> Ended<S> {
    let mut conn = Connection::with_config(session, config);
    conn.handle_connecting(clock::now());
    let connect = async { Some(SmolTransport::connect(address).await) };
    let deadline = match conn.poll_output(clock::now()) {
        Output::Wait { until, .. } => until,
        _ => None,
    };
    let timeout = async {
        match deadline {
            Some(at) => Timer::at(clock::instant(at)).await,
            None => pending().await,
        };
        None
    };
    let reason = match or(connect, timeout).await {
        Some(Ok(socket)) => Some(drive(&socket, &mut conn, CLIENT_TURN_BUDGET, None).await),
        Some(Err(e)) => {
            conn.handle_io_error(clock::now(), e);
            None
        }
        // The next look at the connection ends a connect that took too long.
        None => None,
    };
    let reason = reason.or_else(|| match conn.poll_output(clock::now()) {
        Output::Close { reason, .. } | Output::Ended(reason) => Some(reason.clone()),
        _ => None,
    });
    log_end(address, reason.as_ref());
    let (session, reason) = conn.into_parts();
    Ended {
        session,
        // Every branch above finishes the connection.
        reason: reason.unwrap_or(EndReason::Shutdown),
    }
}
