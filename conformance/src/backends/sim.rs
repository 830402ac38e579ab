//! The simulator under the suite: one seeded `SimNetwork` per run, with the faults the
//! backend was made with; the scenario runs as a task on one host, and everything it waits
//! for is virtual time. A deadlock is reported, not hung on.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use concurrence_core::{Address, ConnectionConfig, Ended, Timestamp};
use concurrence_sim::{CloseHandle, Faults, SimNetwork, Socket, SocketServer};
use concurrence_socket::{ServerConfig, SocketError};

use super::socket_adapter::{AsyncListener, AsyncStream, close_handle_server, echo_handler};
use crate::Transcript;
use crate::backend::{
    AddressKind, Backend, BoxSession, Capabilities, Listener, LocalFuture, Net, ScenarioBody,
    SessionFactory, SessionServer, Stream,
};

close_handle_server!(SimServer, CloseHandle);

/// The simulator, as the suite runs it: `seed` and `faults` for every run.
#[derive(Debug, Clone)]
pub struct SimBackend {
    /// The seed of every run.
    pub seed: u64,
    /// The faults of every run.
    pub faults: Faults,
}

impl SimBackend {
    /// Faults that change timing and chunking but not outcomes (latency and jitter, short
    /// reads and writes, a small receive window, spurious "would block", skewed clocks):
    /// every scenario's transcript must be the same under them. Resets and refused
    /// connects change outcomes; the simulator's own tests cover those.
    #[must_use]
    pub fn transparent_faults() -> Faults {
        let mut faults = Faults::short_io();
        // Short writes and reads cut anywhere (each size drawn from 1..=max), at sizes that
        // keep a 24 MiB transfer to a few thousand events.
        faults.max_segment = 16 * 1024;
        faults.max_read = 4096;
        faults.latency = Duration::from_millis(1);
        faults.jitter = Duration::from_millis(2);
        faults.would_block_per_million = 20_000;
        faults.clock_skew = Duration::from_millis(500);
        faults
    }

    /// The simulator with `seed` and [`transparent_faults`](Self::transparent_faults).
    #[must_use]
    pub fn with_seed(seed: u64) -> Self {
        SimBackend {
            seed,
            faults: SimBackend::transparent_faults(),
        }
    }
}

impl Backend for SimBackend {
    fn name(&self) -> String {
        format!("sim seed {}", self.seed)
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
        let mut sim = SimNetwork::new(self.seed, self.faults);
        let host = sim.host("conformance");
        let net: Rc<dyn Net> = Rc::new(SimNet {
            next_path: Cell::new(0),
        });
        sim.block_on(host, scenario(net)).map_err(|e| e.to_string())
    }
}

struct SimNet {
    next_path: Cell<u64>,
}

impl Net for SimNet {
    fn address(&self, kind: AddressKind) -> Address {
        match kind {
            AddressKind::Tcp => Address::Tcp(([10, 0, 0, 1], 0).into()),
            AddressKind::Unix => {
                let n = self.next_path.get();
                self.next_path.set(n + 1);
                Address::Unix(format!("/sim/conformance-{n}.sock").into())
            }
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
        concurrence_sim::spawn(task).detach();
    }

    fn now(&self) -> Timestamp {
        concurrence_sim::now()
    }

    fn sleep(&self, duration: Duration) -> LocalFuture<'static, ()> {
        Box::pin(concurrence_sim::sleep(duration))
    }

    fn serve_session(
        &self,
        address: &Address,
        config: ServerConfig,
        factory: SessionFactory,
    ) -> Result<Box<dyn SessionServer>, SocketError> {
        let mut server = SocketServer::with_config(address.clone(), config);
        server.bind()?;
        let local = server.local_address().clone();
        let handle = server.close_handle();
        concurrence_sim::spawn(async move {
            let _ = server.serve_session(move |peer| factory(peer)).await;
        })
        .detach();
        Ok(Box::new(SimServer { local, handle }))
    }

    /// Every peer on the simulator is a task: the scenario floods from one.
    fn flood(
        &self,
        _address: &Address,
        _stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> Option<LocalFuture<'static, Result<usize, SocketError>>> {
        None
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
        concurrence_sim::spawn(async move {
            let _ = server.serve(echo_handler).await;
        })
        .detach();
        Ok(Box::new(SimServer { local, handle }))
    }

    fn connect_session(
        &self,
        address: &Address,
        session: BoxSession,
        config: ConnectionConfig,
    ) -> LocalFuture<'static, Ended<BoxSession>> {
        let address = address.clone();
        Box::pin(async move { concurrence_sim::connect_session(&address, session, config).await })
    }
}
