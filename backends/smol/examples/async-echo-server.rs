//! A line echo server on the smol backend (the complete example from docs/backends.md), with
//! an async handler per connection. Runs until Ctrl-C or SIGTERM.
//!
//! `cargo run -p concurrence-smol --example async-echo-server -- --listen 127.0.0.1:7000`
//! (or a Unix path such as `/tmp/echo.sock`). `RUST_LOG=debug` for more logs.

use std::process::ExitCode;

use clap::Parser;
use concurrence_core::{Address, AsyncBufferedStream, StreamError};
use concurrence_smol::{Socket, SocketServer};

/// A line echo server on concurrence's smol backend.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Where to listen: ip:port, or a Unix socket path.
    #[arg(short, long, default_value = "127.0.0.1:7000")]
    listen: String,
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
    match smol::block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("async-echo-server: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<(), String> {
    let address: Address = args
        .listen
        .parse()
        .map_err(|e| format!("cannot use --listen: {e}"))?;
    let mut server = SocketServer::new(address.clone());
    server
        .listen(255)
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    tracing::info!(address = %server.local_address(), "async-echo-server listening (Ctrl-C or SIGTERM to stop)");
    let closer = server.close_handle();
    ctrlc::set_handler(move || closer.close())
        .map_err(|e| format!("cannot install the signal handler: {e}"))?;
    server
        .serve(|socket: Socket| async move {
            let mut stream = AsyncBufferedStream::new(socket);
            while let Some(line) = stream.next_line().await? {
                stream.write_bytes(&line).await?;
                stream.write_bytes(b"\r\n").await?;
                stream.flush().await?;
            }
            Ok::<(), StreamError>(())
        })
        .await
        .map_err(|e| format!("the server stopped with an error: {e}"))?;
    tracing::info!("stopped accepting; bye");
    Ok(())
}
