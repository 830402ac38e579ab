//! A line echo server on the polling backend: each line comes back as it came (LF or CRLF
//! kept). Runs until Ctrl-C or SIGTERM, then shuts down gracefully.
//!
//! `cargo run --release -p concurrence-polling --example echo-server -- --listen 127.0.0.1:7000`
//! (a Unix path such as `/tmp/echo.sock` or `echo.sock` works too), then `nc 127.0.0.1 7000`.
//! Logs go to stderr through `tracing`; `RUST_LOG=debug` shows every connection's end.

use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use clap::Parser;
use concurrence_core::Address;
// The protocol: echo every complete line, stop reading while the peer is not reading (the
// testkit's `LineEcho`, a dozen lines: see `testkit/src/sessions.rs`).
use concurrence_polling::serve;
use concurrence_socket::ServerConfig;
use concurrence_testkit::LineEcho;

/// A line echo server on concurrence's polling backend.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Where to listen: ip:port, or a Unix socket path.
    #[arg(short, long, default_value = "127.0.0.1:7000")]
    listen: String,
    /// Event loops (threads); TCP loops share the port with SO_REUSEPORT.
    #[arg(short, long, default_value_t = 1)]
    threads: usize,
    /// Connections open at once; newcomers wait in the backlog past it.
    #[arg(short = 'c', long, default_value_t = 10_000)]
    max_connections: usize,
    /// Seconds without a byte moved before a connection is closed (0: never).
    #[arg(long, default_value_t = 60)]
    idle_timeout: u64,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("echo-server: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let address: Address = args
        .listen
        .parse()
        .map_err(|e| format!("cannot use --listen: {e}"))?;
    let idle = (args.idle_timeout > 0).then(|| Duration::from_secs(args.idle_timeout));
    let config = ServerConfig::default()
        .with_threads(args.threads)
        .with_max_connections(args.max_connections)
        .with_idle_timeout(idle);
    let server = serve(&address, config, |_peer| LineEcho)
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    tracing::info!(address = %server.local_address(), "echo-server listening (Ctrl-C or SIGTERM to stop)");
    let (stop, stopped) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop.send(());
    })
    .map_err(|e| format!("cannot install the signal handler: {e}"))?;
    let _ = stopped.recv();
    tracing::info!("shutting down: live connections get the grace period to finish");
    server.shutdown();
    server
        .join()
        .map_err(|e| format!("the server stopped with an error: {e}"))
}
