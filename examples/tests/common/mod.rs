//! Servers for the memcache tests: ours on either backend, and Debian's real `memcached`.

#![allow(dead_code, unreachable_pub)]

use std::hash::RandomState;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use concurrence_core::Address;
use concurrence_examples::memcache::stats::ServerInfo;
use concurrence_examples::memcache::{MemcacheSession, Shared, StoreConfig};
use concurrence_os::clock;
use concurrence_socket::ServerConfig;

/// A running server and how to stop it.
pub enum Server {
    Polling(concurrence_polling::ServerHandle, SocketAddr),
    Smol(concurrence_smol::CloseHandle, SocketAddr),
    Memcached(Child, SocketAddr),
}

impl Server {
    pub fn address(&self) -> SocketAddr {
        match self {
            Server::Polling(_, a) | Server::Smol(_, a) | Server::Memcached(_, a) => *a,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Server::Polling(..) => "concurrence (polling)",
            Server::Smol(..) => "concurrence (smol)",
            Server::Memcached(..) => "Debian memcached",
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        match self {
            Server::Polling(handle, _) => handle.shutdown(),
            Server::Smol(close, _) => close.close(),
            Server::Memcached(child, _) => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn shared() -> Arc<Shared<RandomState>> {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    let info = ServerInfo {
        started: clock::now(),
        pid: std::process::id(),
        threads: 2,
        max_connections: 64,
        store: StoreConfig {
            unix_time_at_zero: unix.saturating_sub(clock::now().since_epoch()).as_secs(),
            ..StoreConfig::default()
        },
    };
    Arc::new(Shared::new(info, RandomState::new()))
}

fn config(shared: &Shared<RandomState>) -> ServerConfig {
    let (reader, writer) = shared.buffers();
    ServerConfig::default()
        .with_threads(2)
        .with_max_connections(64)
        .with_buffers(reader, writer)
}

/// Our server on the polling backend, on a free loopback port.
pub fn polling() -> Server {
    let shared = shared();
    let config = config(&shared);
    let handle = concurrence_polling::serve(
        &"127.0.0.1:0".parse().expect("address"),
        config,
        move |_| MemcacheSession::new(Arc::clone(&shared)),
    )
    .expect("serve");
    let Address::Tcp(address) = handle.local_address().clone() else {
        panic!("a TCP address");
    };
    Server::Polling(handle, address)
}

/// Our server on the smol backend, on a free loopback port.
pub fn smol() -> Server {
    let shared = shared();
    let config = config(&shared);
    let mut server = concurrence_smol::SocketServer::with_config(
        "127.0.0.1:0".parse().expect("address"),
        config,
    );
    server.listen(64).expect("listen");
    let Address::Tcp(address) = server.local_address().clone() else {
        panic!("a TCP address");
    };
    let close = server.close_handle();
    std::thread::spawn(move || {
        smol::block_on(server.serve_session(move |_| MemcacheSession::new(Arc::clone(&shared))))
    });
    Server::Smol(close, address)
}

/// Debian's `memcached` on a free loopback port, or `None` (with a note) where it is not
/// installed. Under CI (`CI` set) its absence fails the test: `.ci/run` installs it.
pub fn memcached() -> Option<Server> {
    let which = Command::new("memcached").arg("-V").output();
    if which.is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "memcached is not installed; .ci/run installs it with apt"
        );
        eprintln!("memcached is not installed: skipping the comparison with the real server");
        return None;
    }
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").expect("probe a free port");
        probe.local_addr().expect("probe address").port()
    };
    // `-vv` makes memcached say "server listening" on stderr once it accepts: the event to
    // wait for. The rest of its (verbose) log is drained by a thread so it never blocks.
    let mut child = Command::new("memcached")
        .args([
            "-l",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "0",
            "-t",
            "2",
            "-vv",
        ])
        .args(["-u", "root"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start memcached");
    let mut log = BufReader::new(child.stderr.take().expect("memcached's stderr"));
    let mut line = String::new();
    loop {
        line.clear();
        let n = log.read_line(&mut line).expect("read memcached's log");
        assert!(n > 0, "memcached exited before listening");
        if line.contains("server listening") {
            break;
        }
    }
    std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
    let address: SocketAddr = ([127, 0, 0, 1], port).into();
    Some(Server::Memcached(child, address))
}

/// Every server the tests compare: ours on both backends, and memcached if installed.
pub fn all_servers() -> Vec<Server> {
    let mut servers = vec![polling(), smol()];
    servers.extend(memcached());
    servers
}
