//! Servers for the memcache tests: ours on either backend, and Debian's real `memcached`
//! (both started by `concurrence_examples::memcache::differential`, which the
//! `memcache-diff` program uses too).

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;

use concurrence_examples::memcache::differential::{Backend, Memcached, OurServer};

/// A running server; stopped when dropped.
pub enum Server {
    Ours(OurServer, Backend),
    Memcached(Memcached),
}

impl Server {
    pub fn address(&self) -> SocketAddr {
        match self {
            Server::Ours(server, _) => server.address(),
            Server::Memcached(server) => server.address(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Server::Ours(_, backend) => backend.name(),
            Server::Memcached(_) => "Debian memcached",
        }
    }
}

/// Our server on the polling backend, on a free loopback port.
pub fn polling() -> Server {
    Server::Ours(
        OurServer::start(Backend::Polling).expect("serve on polling"),
        Backend::Polling,
    )
}

/// Our server on the smol backend, on a free loopback port.
pub fn smol() -> Server {
    Server::Ours(
        OurServer::start(Backend::Smol).expect("serve on smol"),
        Backend::Smol,
    )
}

/// Debian's `memcached` on a free loopback port, or `None` (with a note) where it is not
/// installed. Under CI (`CI` set) its absence fails the test: `.ci/run` installs it.
pub fn memcached() -> Option<Server> {
    match Memcached::start("memcached", &[]) {
        Ok(server) => Some(Server::Memcached(server)),
        Err(error) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "memcached did not start ({error}); .ci/run installs it with apt"
            );
            eprintln!("memcached did not start ({error}): skipping the comparison with it");
            None
        }
    }
}

/// Every server the tests compare: ours on both backends, and memcached if installed.
pub fn all_servers() -> Vec<Server> {
    let mut servers = vec![polling(), smol()];
    servers.extend(memcached());
    servers
}
