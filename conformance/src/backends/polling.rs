//! The polling backend under the suite: its blocking `Socket`s and its event-loop session
//! servers, on real loopback TCP and Unix sockets. The backend has no futures, so each
//! blocking call runs on a thread of the `blocking` pool (the socket moves there and back)
//! while the scenario's tasks run on a local executor; the suite's sleeps use async-io's
//! timer, a clock outside the backend under test.

use std::rc::Rc;
use std::time::Duration;

use async_executor::LocalExecutor;
use async_io::Timer;
use concurrence_core::{
    Address, Buffer, ConnectionConfig, Ended, SocketState, SocketStateError, Timestamp,
};
use concurrence_polling::{ServerHandle, Socket};
use concurrence_socket::{ServerConfig, SocketError};

use super::{bounded_run, unix_socket_path};
use crate::Transcript;
use crate::backend::{
    AddressKind, Backend, BoxSession, Capabilities, Listener, LocalFuture, Net, ScenarioBody,
    SessionFactory, SessionServer, Stream,
};

/// The polling backend, as the suite runs it.
#[derive(Debug, Clone)]
pub struct PollingBackend {
    /// A scenario still running after this long is reported as hung.
    pub run_limit: Duration,
}

impl Default for PollingBackend {
    fn default() -> Self {
        PollingBackend {
            run_limit: Duration::from_secs(60),
        }
    }
}

impl Backend for PollingBackend {
    fn name(&self) -> String {
        "polling".to_owned()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            tcp: true,
            unix: true,
            fd_passing: true,
            handler_server: true,
            seed_socket: true,
        }
    }

    fn run(&mut self, scenario: ScenarioBody) -> Result<Transcript, String> {
        let executor = Rc::new(LocalExecutor::new());
        let net: Rc<dyn Net> = Rc::new(PollingNet {
            executor: Rc::clone(&executor),
        });
        futures_lite::future::block_on(bounded_run(executor, scenario(net), self.run_limit))
    }
}

struct PollingNet {
    executor: Rc<LocalExecutor<'static>>,
}

/// The socket of a stream or listener whose blocking call is still running on a pool thread
/// (its future was dropped): every later call fails as on a closed socket.
fn in_flight(op: &'static str) -> SocketError {
    SocketError::State(SocketStateError::InvalidState {
        op,
        state: SocketState::Closed,
    })
}

/// Runs `call` with the socket in `slot` on a blocking thread, and puts the socket back.
async fn on_thread<T: Send + 'static>(
    slot: &mut Option<Socket>,
    op: &'static str,
    call: impl FnOnce(&mut Socket) -> Result<T, SocketError> + Send + 'static,
) -> Result<T, SocketError> {
    let mut socket = slot.take().ok_or_else(|| in_flight(op))?;
    let (socket, result) = blocking::unblock(move || {
        let result = call(&mut socket);
        (socket, result)
    })
    .await;
    *slot = Some(socket);
    result
}

impl Net for PollingNet {
    fn address(&self, kind: AddressKind) -> Address {
        match kind {
            AddressKind::Tcp => Address::Tcp(([127, 0, 0, 1], 0).into()),
            AddressKind::Unix => Address::Unix(unix_socket_path()),
        }
    }

    fn socket(&self, address: &Address) -> Result<Box<dyn Listener>, SocketError> {
        Ok(Box::new(PollingListener(Some(Socket::from_address(
            address,
        )?))))
    }

    fn connect(
        &self,
        address: &Address,
        timeout: Option<Duration>,
    ) -> LocalFuture<'static, Result<Box<dyn Stream>, SocketError>> {
        let address = address.clone();
        Box::pin(async move {
            let socket = blocking::unblock(move || Socket::connect(&address, timeout)).await?;
            Ok(Box::new(PollingStream(Some(socket))) as Box<dyn Stream>)
        })
    }

    fn spawn(&self, task: LocalFuture<'static, ()>) {
        self.executor.spawn(task).detach();
    }

    fn now(&self) -> Timestamp {
        concurrence_os::clock::now()
    }

    fn sleep(&self, duration: Duration) -> LocalFuture<'static, ()> {
        Box::pin(async move {
            Timer::after(duration).await;
        })
    }

    fn serve_session(
        &self,
        address: &Address,
        config: ServerConfig,
        factory: SessionFactory,
    ) -> Result<Box<dyn SessionServer>, SocketError> {
        let handle = concurrence_polling::serve(address, config, move |peer| factory(peer))?;
        Ok(Box::new(PollingServer(handle)))
    }

    fn serve_echo_handler(
        &self,
        address: &Address,
        config: ServerConfig,
    ) -> Result<Box<dyn SessionServer>, SocketError> {
        let mut server = concurrence_polling::SocketServer::with_config(address.clone(), config);
        // The seed's line echo as a user writes it on blocking sockets: one flush per line.
        server.serve(|socket: Socket| {
            let mut stream = concurrence_core::BufferedStream::new(socket);
            while let Some(line) = stream.read_line()?.map(<[u8]>::to_vec) {
                stream.write_bytes(&line)?;
                stream.write_bytes(b"\n")?;
                stream.flush()?;
            }
            Ok::<(), concurrence_core::StreamError>(())
        })?;
        Ok(Box::new(PollingHandlerServer(server)))
    }

    fn connect_session(
        &self,
        address: &Address,
        session: BoxSession,
        config: ConnectionConfig,
    ) -> LocalFuture<'static, Ended<BoxSession>> {
        let address = address.clone();
        Box::pin(blocking::unblock(move || {
            concurrence_polling::connect_session(&address, session, config)
        }))
    }
}

struct PollingStream(Option<Socket>);

impl Stream for PollingStream {
    fn read(
        &mut self,
        max: usize,
        timeout: Option<Duration>,
    ) -> LocalFuture<'_, Result<Vec<u8>, SocketError>> {
        Box::pin(on_thread(&mut self.0, "read", move |socket| {
            let mut buffer = Buffer::new(max);
            socket.read(&mut buffer, timeout)?;
            buffer.flip();
            Ok(buffer.read_remaining().into_owned())
        }))
    }

    fn write(
        &mut self,
        bytes: Vec<u8>,
        timeout: Option<Duration>,
    ) -> LocalFuture<'_, Result<usize, SocketError>> {
        Box::pin(on_thread(&mut self.0, "write", move |socket| {
            let mut buffer = Buffer::new(bytes.len());
            buffer.write_bytes(&bytes)?;
            buffer.flip();
            socket.write(&mut buffer, timeout)
        }))
    }

    fn shutdown_write(&mut self) -> Result<(), SocketError> {
        self.0
            .as_ref()
            .ok_or_else(|| in_flight("shutdown_write"))?
            .shutdown_write()
    }

    fn close(&mut self) -> Result<(), SocketError> {
        self.0.as_mut().ok_or_else(|| in_flight("close"))?.close()
    }

    fn abort(&mut self) -> Result<(), SocketError> {
        self.0.as_mut().ok_or_else(|| in_flight("abort"))?.abort()
    }

    fn state(&self) -> SocketState {
        self.0.as_ref().map_or(SocketState::Closed, Socket::state)
    }

    fn send_stream<'a>(
        &'a mut self,
        other: &'a dyn Stream,
        timeout: Option<Duration>,
    ) -> LocalFuture<'a, Result<(), SocketError>> {
        // Passing a descriptor over a connected Unix socket does not wait in practice; it runs
        // here, with the other socket borrowed.
        let result = match (
            self.0.as_mut(),
            other.as_any().downcast_ref::<PollingStream>(),
        ) {
            (Some(channel), Some(PollingStream(Some(passed)))) => {
                channel.write_socket(passed, timeout)
            }
            (None, _) => Err(in_flight("write_socket")),
            _ => Err(SocketError::WrongKind {
                op: "write_socket",
                needs: "this backend's",
                address: "the stream to pass".to_owned(),
            }),
        };
        Box::pin(async move { result })
    }

    fn recv_stream(
        &mut self,
        timeout: Option<Duration>,
    ) -> LocalFuture<'_, Result<Box<dyn Stream>, SocketError>> {
        Box::pin(async move {
            let socket = on_thread(&mut self.0, "read_socket", move |socket| {
                socket.read_socket(timeout)
            })
            .await?;
            Ok(Box::new(PollingStream(Some(socket))) as Box<dyn Stream>)
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

struct PollingListener(Option<Socket>);

impl Listener for PollingListener {
    fn bind(&mut self) -> Result<(), SocketError> {
        self.0.as_mut().ok_or_else(|| in_flight("bind"))?.bind()
    }

    fn listen(&mut self, backlog: i32) -> Result<(), SocketError> {
        self.0
            .as_mut()
            .ok_or_else(|| in_flight("listen"))?
            .listen(backlog)
    }

    fn local_address(&self) -> Result<Address, SocketError> {
        self.0
            .as_ref()
            .ok_or_else(|| in_flight("local_address"))?
            .local_address()
    }

    fn accept(
        &mut self,
        timeout: Option<Duration>,
    ) -> LocalFuture<'_, Result<Box<dyn Stream>, SocketError>> {
        Box::pin(async move {
            let socket =
                on_thread(&mut self.0, "accept", move |socket| socket.accept(timeout)).await?;
            Ok(Box::new(PollingStream(Some(socket))) as Box<dyn Stream>)
        })
    }

    fn close(&mut self) -> Result<(), SocketError> {
        self.0.as_mut().ok_or_else(|| in_flight("close"))?.close()
    }
}

/// A running handler server (`SocketServer::serve`), as the suite's `SessionServer`.
struct PollingHandlerServer(concurrence_polling::SocketServer);

impl SessionServer for PollingHandlerServer {
    fn local_address(&self) -> Address {
        self.0.local_address().clone()
    }

    fn connections(&self) -> usize {
        self.0.handle().map_or(0, ServerHandle::connections)
    }

    fn close(&mut self) {
        let _ = self.0.close();
    }
}

struct PollingServer(ServerHandle);

impl SessionServer for PollingServer {
    fn local_address(&self) -> Address {
        self.0.local_address().clone()
    }

    fn connections(&self) -> usize {
        self.0.connections()
    }

    fn close(&mut self) {
        self.0.shutdown();
    }
}
