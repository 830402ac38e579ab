//! The io_uring backend under the suite: its async seed `Socket` (on its io_uring reactor),
//! its event-loop session servers and its client driver, on real loopback TCP and Unix
//! sockets, and its seed handler server (`SocketServer::serve(handler)`, on the server's own
//! thread); scenario tasks on a local executor.

use std::rc::Rc;
use std::time::Duration;

use async_executor::LocalExecutor;
use concurrence_core::{Address, ConnectionConfig, Ended, Timestamp};
use concurrence_os::ServerHandle;
use concurrence_socket::Transport;
use concurrence_socket::{ServerConfig, SocketError};
use concurrence_uring::{Socket, UringTransport};

use super::socket_adapter::{AsyncListener, AsyncStream, echo_handler};
use super::{bounded_run, unix_socket_path};
use crate::Transcript;
use crate::backend::{
    AddressKind, Backend, BoxSession, Capabilities, Listener, LocalFuture, Net, ScenarioBody,
    SessionFactory, SessionServer, Stream,
};

/// The uring backend, as the suite runs it.
#[derive(Debug, Clone)]
pub struct UringBackend {
    /// A scenario still running after this long is reported as hung.
    pub run_limit: Duration,
}

impl Default for UringBackend {
    fn default() -> Self {
        UringBackend {
            run_limit: Duration::from_secs(60),
        }
    }
}

impl UringBackend {
    /// Why io_uring cannot run on this machine, if it cannot (the suite skips the column then,
    /// printing this).
    #[must_use]
    pub fn unavailable() -> Option<String> {
        let probe = concurrence_uring::serve(
            &Address::Tcp(([127, 0, 0, 1], 0).into()),
            ServerConfig::default(),
            |_| concurrence_testkit::LineEcho,
        );
        match probe {
            Ok(server) => {
                server.shutdown();
                server.join().err().map(|e| e.to_string())
            }
            Err(e) => Some(e.to_string()),
        }
    }
}

impl Backend for UringBackend {
    fn name(&self) -> String {
        "uring".to_owned()
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
        let net: Rc<dyn Net> = Rc::new(UringNet {
            executor: Rc::clone(&executor),
        });
        futures_lite::future::block_on(bounded_run(executor, scenario(net), self.run_limit))
    }
}

struct UringNet {
    executor: Rc<LocalExecutor<'static>>,
}

impl Net for UringNet {
    fn address(&self, kind: AddressKind) -> Address {
        match kind {
            AddressKind::Tcp => Address::Tcp(([127, 0, 0, 1], 0).into()),
            AddressKind::Unix => Address::Unix(unix_socket_path()),
        }
    }

    fn socket(&self, address: &Address) -> Result<Box<dyn Listener>, SocketError> {
        Ok(Box::new(AsyncListener(Socket::from_address(address)?)))
    }

    fn connect(
        &self,
        address: &Address,
        timeout: Option<Duration>,
    ) -> LocalFuture<'static, Result<Box<dyn Stream>, SocketError>> {
        let address = address.clone();
        Box::pin(async move {
            let socket = Socket::connect(&address, timeout).await?;
            Ok(Box::new(AsyncStream::new(socket)) as Box<dyn Stream>)
        })
    }

    fn spawn(&self, task: LocalFuture<'static, ()>) {
        self.executor.spawn(task).detach();
    }

    fn now(&self) -> Timestamp {
        concurrence_os::clock::now()
    }

    fn sleep(&self, duration: Duration) -> LocalFuture<'static, ()> {
        // The backend's own timer, on its reactor.
        Box::pin(<UringTransport as Transport>::timer(duration))
    }

    fn serve_session(
        &self,
        address: &Address,
        config: ServerConfig,
        factory: SessionFactory,
    ) -> Result<Box<dyn SessionServer>, SocketError> {
        let handle = concurrence_uring::serve(address, config, move |peer| factory(peer))?;
        Ok(Box::new(UringServer(handle)))
    }

    fn serve_echo_handler(
        &self,
        address: &Address,
        config: ServerConfig,
    ) -> Result<Box<dyn SessionServer>, SocketError> {
        let mut server = concurrence_uring::SocketServer::with_config(address.clone(), config);
        server.serve(echo_handler)?;
        Ok(Box::new(UringHandlerServer(server)))
    }

    fn connect_session(
        &self,
        address: &Address,
        session: BoxSession,
        config: ConnectionConfig,
    ) -> LocalFuture<'static, Ended<BoxSession>> {
        let address = address.clone();
        Box::pin(blocking::unblock(move || {
            concurrence_uring::connect_session(&address, session, config)
        }))
    }
}

struct UringServer(ServerHandle);

impl SessionServer for UringServer {
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

/// A running handler server (`SocketServer::serve`), as the suite's `SessionServer`.
struct UringHandlerServer(concurrence_uring::SocketServer);

impl SessionServer for UringHandlerServer {
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
