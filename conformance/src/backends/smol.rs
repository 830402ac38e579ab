//! The smol backend under the suite: async sockets and session servers from
//! `concurrence-smol`, scenario tasks on a local executor, connection tasks on smol's global
//! one, real loopback TCP and Unix sockets.

use std::rc::Rc;
use std::time::Duration;

use async_executor::LocalExecutor;
use async_io::Timer;
use concurrence_core::{Address, ConnectionConfig, Ended, Timestamp};
use concurrence_smol::{CloseHandle, Socket, SocketServer};
use concurrence_socket::{ServerConfig, SocketError};

use super::socket_adapter::{AsyncListener, AsyncStream, close_handle_server, echo_handler};
use super::{bounded_run, unix_socket_path};
use crate::Transcript;
use crate::backend::{
    AddressKind, Backend, BoxSession, Capabilities, Listener, LocalFuture, Net, ScenarioBody,
    SessionFactory, SessionServer, Stream,
};

close_handle_server!(SmolServer, CloseHandle);

/// The smol backend, as the suite runs it.
#[derive(Debug, Clone)]
pub struct SmolBackend {
    /// A scenario still running after this long is reported as hung.
    pub run_limit: Duration,
}

impl Default for SmolBackend {
    fn default() -> Self {
        SmolBackend {
            run_limit: Duration::from_secs(60),
        }
    }
}

impl Backend for SmolBackend {
    fn name(&self) -> String {
        "smol".to_owned()
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
        let net: Rc<dyn Net> = Rc::new(SmolNet {
            executor: Rc::clone(&executor),
        });
        async_io::block_on(bounded_run(executor, scenario(net), self.run_limit))
    }
}

struct SmolNet {
    executor: Rc<LocalExecutor<'static>>,
}

impl Net for SmolNet {
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
        let mut server = SocketServer::with_config(address.clone(), config);
        // Listen now, so that a client may connect as soon as this returns.
        server.listen(config.backlog)?;
        let local = server.local_address().clone();
        let handle = server.close_handle();
        self.executor
            .spawn(async move {
                let _ = server.serve_session(move |peer| factory(peer)).await;
            })
            .detach();
        Ok(Box::new(SmolServer { local, handle }))
    }

    fn serve_echo_handler(
        &self,
        address: &Address,
        config: ServerConfig,
    ) -> Result<Box<dyn SessionServer>, SocketError> {
        let mut server = SocketServer::with_config(address.clone(), config);
        server.listen(config.backlog)?;
        let local = server.local_address().clone();
        let handle = server.close_handle();
        self.executor
            .spawn(async move {
                let _ = server.serve(echo_handler).await;
            })
            .detach();
        Ok(Box::new(SmolServer { local, handle }))
    }

    fn connect_session(
        &self,
        address: &Address,
        session: BoxSession,
        config: ConnectionConfig,
    ) -> LocalFuture<'static, Ended<BoxSession>> {
        let address = address.clone();
        Box::pin(async move { concurrence_smol::connect_session(&address, session, config).await })
    }
}
