//! A scenario: a name, the address kind it runs on, what it needs from a backend, its body
//! (written once against the backend trait) and the transcript every backend must produce.

use std::rc::Rc;

use crate::Transcript;
use crate::backend::{AddressKind, Capabilities, LocalFuture, Net};

/// The body of a scenario, given the run's network and the address kind to use.
pub type ScenarioFn = fn(Rc<dyn Net>, AddressKind) -> LocalFuture<'static, Transcript>;

/// One scenario of the suite.
#[derive(Clone)]
pub struct Scenario {
    /// Its name, without the address kind ("echo").
    pub name: &'static str,
    /// The address kind it runs on.
    pub kind: AddressKind,
    /// Whether it passes descriptors.
    pub needs_fd_passing: bool,
    /// Whether it needs the seed's handler server.
    pub needs_handler_server: bool,
    /// Whether its subject is the seed's socket API (`Net::socket`, `Net::connect` as the
    /// backend's own sockets), rather than sessions with plain peers.
    pub needs_seed_socket: bool,
    /// The transcript every backend must produce.
    pub expected: &'static [&'static str],
    /// What it does.
    pub body: ScenarioFn,
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scenario")
            .field("name", &self.title())
            .finish()
    }
}

impl Scenario {
    /// `name (kind)`, as reports show it.
    #[must_use]
    pub fn title(&self) -> String {
        format!("{} ({})", self.name, self.kind)
    }

    /// Why a backend with `capabilities` cannot run it, if it cannot.
    #[must_use]
    pub fn unsupported_by(&self, capabilities: Capabilities) -> Option<&'static str> {
        match self.kind {
            AddressKind::Tcp if !capabilities.tcp => return Some("no TCP"),
            AddressKind::Unix if !capabilities.unix => return Some("no Unix sockets"),
            _ => {}
        }
        if self.needs_seed_socket && !capabilities.seed_socket {
            return Some("no seed socket API");
        }
        if self.needs_handler_server && !capabilities.handler_server {
            return Some("no handler server");
        }
        (self.needs_fd_passing && !capabilities.fd_passing).then_some("no fd passing")
    }

    /// The expected transcript as owned lines.
    #[must_use]
    pub fn expected_lines(&self) -> Vec<String> {
        self.expected.iter().map(|s| (*s).to_owned()).collect()
    }
}

/// Turns `async fn f(&Rc<dyn Net>, AddressKind, &mut Transcript) -> Result<(), SocketError>`
/// into a [`ScenarioFn`]: an unexpected error ends the transcript with a line naming it.
macro_rules! body {
    ($f:path) => {
        |net: std::rc::Rc<dyn $crate::backend::Net>,
         kind: $crate::backend::AddressKind|
         -> $crate::backend::LocalFuture<'static, $crate::Transcript> {
            Box::pin(async move {
                let mut transcript = $crate::Transcript::new();
                if let Err(error) = $f(&net, kind, &mut transcript).await {
                    transcript.line(format!(
                        "unexpected error: {}",
                        $crate::steps::describe_error(&error)
                    ));
                }
                transcript
            })
        }
    };
}
pub(crate) use body;
