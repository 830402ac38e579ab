//! The worked example of a third-party backend: tokio, through `tokio-util`'s compat layer
//! (tokio's sockets as `futures-io` streams), implementing the suite's traits and running the
//! whole suite on itself with one call. Sessions come from the suite's reference driver over
//! these streams (`serve_session_over_streams`, `connect_session_over_streams`).
//! `docs/conformance.md` walks through it.

use std::rc::Rc;
use std::time::{Duration, Instant};

use concurrence_conformance::{
    AddressKind, Backend, BoxSession, Capabilities, Listener, LocalFuture, Net, ScenarioBody,
    SessionFactory, SessionServer, Stream, Transcript, Verdict, connect_session_over_streams,
    run_suite, serve_session_over_streams, unix_socket_path,
};
use concurrence_core::{
    Address, ConnectionConfig, Ended, SocketState, SocketStateError, Timestamp,
};
use concurrence_socket::{ServerConfig, SocketError};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UnixListener, UnixStream};
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

/// tokio, as the suite runs it: a current-thread runtime and a `LocalSet` per scenario.
struct TokioBackend;

impl Backend for TokioBackend {
    fn name(&self) -> String {
        "tokio (example)".to_owned()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            tcp: true,
            unix: true,
            fd_passing: false,
            handler_server: false,
            seed_socket: true,
        }
    }

    fn run(&mut self, scenario: ScenarioBody) -> Result<Transcript, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;
        let local = tokio::task::LocalSet::new();
        let net: Rc<dyn Net> = Rc::new(TokioNet {
            start: Instant::now(),
        });
        local.block_on(&runtime, async {
            tokio::time::timeout(Duration::from_secs(60), scenario(net))
                .await
                .map_err(|_| "still running after 60 s".to_owned())
        })
    }
}

#[derive(Clone, Copy)]
struct TokioNet {
    start: Instant,
}

fn timed_out(op: &'static str, timeout: Duration) -> SocketError {
    SocketError::TimedOut {
        op,
        address: "-".to_owned(),
        timeout,
    }
}

fn wrong_state(op: &'static str, state: SocketState) -> SocketError {
    SocketError::State(SocketStateError::InvalidState { op, state })
}

/// Runs `io` for at most `timeout`.
async fn within<T>(
    op: &'static str,
    timeout: Option<Duration>,
    io: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, SocketError> {
    let result = match timeout {
        Some(limit) => tokio::time::timeout(limit, io)
            .await
            .map_err(|_| timed_out(op, limit))?,
        None => io.await,
    };
    result.map_err(|e| SocketError::io(op, "-", e))
}

impl Net for TokioNet {
    fn address(&self, kind: AddressKind) -> Address {
        match kind {
            AddressKind::Tcp => Address::Tcp(([127, 0, 0, 1], 0).into()),
            AddressKind::Unix => Address::Unix(unix_socket_path()),
        }
    }

    fn socket(&self, address: &Address) -> Result<Box<dyn Listener>, SocketError> {
        Ok(Box::new(TokioListener {
            address: address.clone(),
            state: ListenerState::Init(None),
        }))
    }

    fn connect(
        &self,
        address: &Address,
        timeout: Option<Duration>,
    ) -> LocalFuture<'static, Result<Box<dyn Stream>, SocketError>> {
        let address = address.clone();
        Box::pin(async move {
            let io = match &address {
                Address::Tcp(a) => Io::Tcp(
                    within("connect", timeout, TcpStream::connect(*a))
                        .await?
                        .compat(),
                ),
                Address::Unix(p) => Io::Unix(
                    within("connect", timeout, UnixStream::connect(p))
                        .await?
                        .compat(),
                ),
            };
            Ok(Box::new(TokioStream(Some(io))) as Box<dyn Stream>)
        })
    }

    fn spawn(&self, task: LocalFuture<'static, ()>) {
        tokio::task::spawn_local(task);
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_duration(self.start.elapsed())
    }

    fn sleep(&self, duration: Duration) -> LocalFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }

    fn serve_session(
        &self,
        address: &Address,
        config: ServerConfig,
        factory: SessionFactory,
    ) -> Result<Box<dyn SessionServer>, SocketError> {
        serve_session_over_streams(Rc::new(*self), address, config, factory)
    }

    fn connect_session(
        &self,
        address: &Address,
        session: BoxSession,
        config: ConnectionConfig,
    ) -> LocalFuture<'static, Ended<BoxSession>> {
        connect_session_over_streams(Rc::new(*self), address, session, config)
    }
}

/// A tokio stream seen through the compat layer as `futures-io`.
enum Io {
    Tcp(Compat<TcpStream>),
    Unix(Compat<UnixStream>),
}

/// A connected stream; `None` once closed (the descriptor is closed then).
struct TokioStream(Option<Io>);

impl TokioStream {
    fn open(&mut self, op: &'static str) -> Result<&mut Io, SocketError> {
        self.0
            .as_mut()
            .ok_or_else(|| wrong_state(op, SocketState::Closed))
    }
}

impl Io {
    fn sock_ref(&self) -> socket2::SockRef<'_> {
        match self {
            Io::Tcp(s) => socket2::SockRef::from(s.get_ref()),
            Io::Unix(s) => socket2::SockRef::from(s.get_ref()),
        }
    }
}

impl Stream for TokioStream {
    fn read(
        &mut self,
        max: usize,
        timeout: Option<Duration>,
    ) -> LocalFuture<'_, Result<Vec<u8>, SocketError>> {
        Box::pin(async move {
            let io = self.open("read")?;
            let mut buffer = vec![0u8; max];
            let n = match io {
                Io::Tcp(s) => within("read", timeout, s.read(&mut buffer)).await?,
                Io::Unix(s) => within("read", timeout, s.read(&mut buffer)).await?,
            };
            buffer.truncate(n);
            Ok(buffer)
        })
    }

    fn write(
        &mut self,
        bytes: Vec<u8>,
        timeout: Option<Duration>,
    ) -> LocalFuture<'_, Result<usize, SocketError>> {
        Box::pin(async move {
            match self.open("write")? {
                Io::Tcp(s) => within("write", timeout, s.write(&bytes)).await,
                Io::Unix(s) => within("write", timeout, s.write(&bytes)).await,
            }
        })
    }

    fn shutdown_write(&mut self) -> Result<(), SocketError> {
        self.open("shutdown_write")?
            .sock_ref()
            .shutdown(std::net::Shutdown::Write)
            .map_err(|e| SocketError::io("shutdown_write", "-", e))
    }

    fn close(&mut self) -> Result<(), SocketError> {
        // Dropping the stream closes the descriptor (a reset if input was left unread).
        self.0 = None;
        Ok(())
    }

    fn abort(&mut self) -> Result<(), SocketError> {
        if let Some(io) = self.0.take() {
            let _ = io.sock_ref().set_linger(Some(Duration::ZERO));
        }
        Ok(())
    }

    fn state(&self) -> SocketState {
        if self.0.is_some() {
            SocketState::Connected
        } else {
            SocketState::Closed
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

enum ListenerState {
    /// New; bound (TCP only) once `bind` ran.
    Init(Option<TcpSocket>),
    Tcp(TcpListener),
    Unix(UnixListener),
    Closed,
}

struct TokioListener {
    address: Address,
    state: ListenerState,
}

impl TokioListener {
    fn state_name(&self) -> SocketState {
        match self.state {
            ListenerState::Init(_) => SocketState::Init,
            ListenerState::Tcp(_) | ListenerState::Unix(_) => SocketState::Listening,
            ListenerState::Closed => SocketState::Closed,
        }
    }
}

impl Listener for TokioListener {
    fn bind(&mut self) -> Result<(), SocketError> {
        let ListenerState::Init(bound) = &mut self.state else {
            return Err(wrong_state("bind", self.state_name()));
        };
        if let (None, Address::Tcp(address)) = (&bound, &self.address) {
            let socket = TcpSocket::new_v4().map_err(|e| SocketError::io("bind", address, e))?;
            socket
                .set_reuseaddr(true)
                .and_then(|()| socket.bind(*address))
                .map_err(|e| SocketError::io("bind", address, e))?;
            *bound = Some(socket);
        }
        Ok(())
    }

    fn listen(&mut self, backlog: i32) -> Result<(), SocketError> {
        self.bind()?;
        let state = std::mem::replace(&mut self.state, ListenerState::Closed);
        self.state = match (state, &self.address) {
            (ListenerState::Init(Some(socket)), Address::Tcp(_)) => ListenerState::Tcp(
                socket
                    .listen(u32::try_from(backlog).unwrap_or(0))
                    .map_err(|e| SocketError::io("listen", &self.address, e))?,
            ),
            (ListenerState::Init(None), Address::Unix(path)) => ListenerState::Unix(
                UnixListener::bind(path)
                    .map_err(|e| SocketError::io("listen", &self.address, e))?,
            ),
            (other, _) => other,
        };
        Ok(())
    }

    fn local_address(&self) -> Result<Address, SocketError> {
        match &self.state {
            ListenerState::Tcp(l) => l
                .local_addr()
                .map(Address::Tcp)
                .map_err(|e| SocketError::io("local_address", &self.address, e)),
            ListenerState::Closed => Err(wrong_state("local_address", SocketState::Closed)),
            _ => Ok(self.address.clone()),
        }
    }

    fn accept(
        &mut self,
        timeout: Option<Duration>,
    ) -> LocalFuture<'_, Result<Box<dyn Stream>, SocketError>> {
        Box::pin(async move {
            let io = match &self.state {
                ListenerState::Tcp(l) => {
                    let (stream, _) = within("accept", timeout, l.accept()).await?;
                    Io::Tcp(stream.compat())
                }
                ListenerState::Unix(l) => {
                    let (stream, _) = within("accept", timeout, l.accept()).await?;
                    Io::Unix(stream.compat())
                }
                _ => return Err(wrong_state("accept", self.state_name())),
            };
            Ok(Box::new(TokioStream(Some(io))) as Box<dyn Stream>)
        })
    }

    fn close(&mut self) -> Result<(), SocketError> {
        self.state = ListenerState::Closed;
        Ok(())
    }
}

#[test]
fn tokio_through_the_compat_layer_conforms() {
    let outcomes = run_suite(&mut TokioBackend, None);
    let failures: Vec<String> = outcomes
        .iter()
        .filter(|o| matches!(o.verdict, Verdict::Fail(_)))
        .map(ToString::to_string)
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let not_applicable: Vec<&str> = outcomes
        .iter()
        .filter(|o| matches!(o.verdict, Verdict::NotApplicable(_)))
        .map(|o| o.scenario.as_str())
        .collect();
    // No fd passing here, and no seed handler server (`SocketServer::serve` is ours).
    assert_eq!(
        not_applicable,
        ["fairness (handler) (tcp)", "fd passing (unix)"]
    );
}
