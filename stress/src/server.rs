//! `stress serve`: the server under test, in a process of its own (so that its descriptor
//! limit, CPU time, memory and descriptor count are its own): a line echo on any real-socket backend.

use std::io::Write;
use std::time::Duration;

use concurrence_core::Address;
use concurrence_testkit::LineEcho;

/// What `stress serve` is told.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// `polling`, `smol` or `uring`.
    #[arg(long)]
    pub(crate) backend: String,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub(crate) listen: String,
    /// The server's descriptor limit (RLIMIT_NOFILE); default: the hard limit.
    #[arg(long)]
    pub(crate) nofile: Option<u64>,
    /// Idle timeout, milliseconds.
    #[arg(long, default_value_t = 60_000)]
    pub(crate) idle_ms: u64,
    /// Frame timeout, milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub(crate) frame_ms: u64,
    /// Connections open at once.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) max_connections: usize,
}

/// Serves until SIGINT or SIGTERM. Prints `listening ADDRESS` on stdout once bound.
pub(crate) fn serve(args: &ServeArgs) -> Result<(), String> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let current = args.nofile.or(limit.maximum);
    rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current,
            maximum: limit.maximum,
        },
    )
    .map_err(|e| format!("cannot set the descriptor limit: {e}"))?;
    let address: Address = args
        .listen
        .parse()
        .map_err(|e| format!("cannot use --listen: {e}"))?;
    let idle = Some(Duration::from_millis(args.idle_ms));
    let frame = Some(Duration::from_millis(args.frame_ms));
    let (stop, stopped) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop.send(());
    })
    .map_err(|e| format!("cannot install the signal handler: {e}"))?;
    match args.backend.as_str() {
        "polling" | "uring" => {
            let config = concurrence_socket::ServerConfig::default()
                .with_idle_timeout(idle)
                .with_frame_timeout(frame)
                .with_max_connections(args.max_connections)
                .with_shutdown_grace(Duration::from_millis(100));
            let server = if args.backend == "polling" {
                concurrence_polling::serve(&address, config, |_| LineEcho)
            } else {
                concurrence_uring::serve(&address, config, |_| LineEcho)
            }
            .map_err(|e| format!("cannot serve on {address}: {e}"))?;
            announce(server.local_address());
            let _ = stopped.recv();
            server.shutdown();
            server.join().map_err(|e| e.to_string())
        }
        "smol" => {
            let mut config = concurrence_socket::ServerConfig::default();
            config.idle_timeout = idle;
            config.frame_timeout = frame;
            config.max_connections = args.max_connections;
            let mut server = concurrence_smol::SocketServer::with_config(address.clone(), config);
            server
                .listen(1024)
                .map_err(|e| format!("cannot listen on {address}: {e}"))?;
            announce(server.local_address());
            let closer = server.close_handle();
            std::thread::spawn(move || {
                let _ = stopped.recv();
                closer.close();
            });
            smol::block_on(server.serve_session(|_| LineEcho)).map_err(|e| e.to_string())
        }
        other => Err(format!(
            "unknown backend {other:?}: use polling, smol or uring"
        )),
    }
}

fn announce(address: &Address) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening {address}");
    let _ = out.flush();
}
