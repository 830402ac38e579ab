//! A line echo server on the polling backend: each line comes back as it came (LF or CRLF
//! kept). Runs until Ctrl-C.
//!
//! `cargo run --release -p concurrence-polling --example echo-server -- --listen 127.0.0.1:7000`
//! (a Unix path such as `/tmp/echo.sock` works too), then `nc 127.0.0.1 7000`.

use std::sync::mpsc;

use concurrence_core::{
    Address, Next, Session, SessionError, StreamReader, StreamWriter, Timestamp,
};
use concurrence_polling::{ServerConfig, serve};

/// The protocol: echo every complete line, stop reading while the peer is not reading.
struct LineEcho;

impl Session for LineEcho {
    fn handle_input(
        &mut self,
        _now: Timestamp,
        reader: &mut StreamReader,
        writer: &mut StreamWriter,
    ) -> Result<Next, SessionError> {
        while !writer.is_backpressured() {
            let Some(line) = reader.read_line(true)? else {
                break;
            };
            writer.write_bytes(line)?;
        }
        Ok(Next::Continue)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut listen = String::from("127.0.0.1:7000");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().ok_or("--listen needs an address")?,
            "--help" | "-h" => {
                eprintln!("usage: echo-server [--listen ADDRESS]   (ip:port or a Unix path)");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}; try --help").into()),
        }
    }
    let address: Address = listen.parse()?;
    let server = serve(&address, ServerConfig::default(), |_peer| LineEcho)?;
    eprintln!(
        "echo-server listening on {} (Ctrl-C to stop)",
        server.local_addr()
    );

    let (stop, stopped) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop.send(());
    })?;
    stopped.recv()?;
    eprintln!("shutting down");
    server.shutdown();
    server.join()?;
    Ok(())
}
