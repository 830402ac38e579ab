//! The seed's chat server: lines from one client go to all others; `quit` leaves. One
//! `Session` (`concurrence_examples::chat_session::ChatMember`, woken by the room through its
//! mailbox) runs on the polling loop (the default), on io_uring, on smol, or in the simulator (`--backend sim
//! --seed 3 --clients 8`, where checking clients count what reached whom). `--backend
//! smol-handler` serves the seed's async handler API instead (`chat::chat_member`). Try it with
//! `nc 127.0.0.1 7001` from several terminals.

#![allow(clippy::print_stdout)] // the sim report line is the program's output

use clap::{Parser, ValueEnum};
use concurrence_core::{Address, ReaderConfig, WriterConfig};
use concurrence_examples::chat::{Room, chat_member};
use concurrence_examples::chat_session::{ChatMember, ChatRoom, MAX_LINE};
use concurrence_socket::ServerConfig;
use std::process::ExitCode;
use std::sync::mpsc;

/// A chat server on concurrence.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Which backend runs the chat session: polling, uring or smol (real sockets), sim (simulated
    /// clients); smol-handler runs the seed's async handler version on smol.
    #[arg(long, value_enum, default_value_t = Backend::Polling)]
    backend: Backend,
    /// Where to listen: ip:port or a Unix socket path.
    #[arg(short, long, default_value = "127.0.0.1:7001")]
    listen: String,
    /// Simulator: the seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Simulator: clients, each saying three lines.
    #[arg(long, default_value_t = 5)]
    clients: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    Polling,
    Uring,
    Smol,
    Sim,
    SmolHandler,
}

fn main() -> ExitCode {
    concurrence_examples::init_logging("info");
    let args = Args::parse();
    let result = match args.backend {
        Backend::Polling => serve_event_loops(&args, "polling", concurrence_polling::serve),
        Backend::Uring => serve_event_loops(&args, "uring", concurrence_uring::serve),
        Backend::Smol => serve_smol_sessions(&args),
        Backend::Sim => simulate(&args),
        Backend::SmolHandler => serve_smol(&args),
    };
    result.map_or_else(
        |message| {
            eprintln!("chat: {message}");
            ExitCode::FAILURE
        },
        |()| ExitCode::SUCCESS,
    )
}

fn listen_address(args: &Args) -> Result<Address, String> {
    args.listen
        .parse()
        .map_err(|e| format!("cannot use --listen: {e}"))
}

fn server_config() -> ServerConfig {
    ServerConfig::default()
        .with_buffers(
            ReaderConfig::default().with_max_line(MAX_LINE),
            WriterConfig::default(),
        )
        // A chat member may stay quiet for long: no idle timeout.
        .with_idle_timeout(None)
}

/// A backend's `serve` (polling's and uring's have the same signature and handle).
type Serve = fn(
    &Address,
    ServerConfig,
    Box<dyn Fn(&Address) -> ChatMember + Send + Sync>,
) -> Result<concurrence_os::ServerHandle, concurrence_socket::SocketError>;

fn serve_event_loops(args: &Args, name: &str, serve: Serve) -> Result<(), String> {
    let address = listen_address(args)?;
    let room = ChatRoom::new();
    let server = serve(&address, server_config(), Box::new(move |_| room.member()))
        .map_err(|e| format!("cannot serve on {address}: {e}"))?;
    tracing::info!(address = %server.local_address(), backend = name, "chat listening; Ctrl-C or SIGTERM stops it");
    let (stop, stopped) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop.send(());
    })
    .map_err(|e| format!("cannot install the signal handler: {e}"))?;
    let _ = stopped.recv();
    server.shutdown();
    server
        .join()
        .map_err(|e| format!("the server stopped with an error: {e}"))
}

fn serve_smol_sessions(args: &Args) -> Result<(), String> {
    let address = listen_address(args)?;
    let mut server = concurrence_smol::SocketServer::with_config(address.clone(), server_config());
    server
        .listen(255)
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    tracing::info!(address = %server.local_address(), "chat (smol) listening; Ctrl-C or SIGTERM stops it");
    let closer = server.close_handle();
    ctrlc::set_handler(move || closer.close())
        .map_err(|e| format!("cannot install the signal handler: {e}"))?;
    let room = ChatRoom::new();
    smol::block_on(server.serve_session(move |_| room.member()))
        .map_err(|e| format!("the server stopped with an error: {e}"))
}

fn serve_smol(args: &Args) -> Result<(), String> {
    let address: Address = args
        .listen
        .parse()
        .map_err(|e| format!("cannot use --listen: {e}"))?;
    let mut server = concurrence_smol::SocketServer::new(address.clone());
    server
        .listen(255)
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    tracing::info!(address = %server.local_address(), "chat listening; Ctrl-C or SIGTERM stops it");
    let closer = server.close_handle();
    ctrlc::set_handler(move || closer.close())
        .map_err(|e| format!("cannot install the signal handler: {e}"))?;
    let room = Room::default();
    smol::block_on(server.serve(move |socket| chat_member(socket, room.clone())))
        .map_err(|e| format!("the server stopped with an error: {e}"))
}

/// The simulated scenario of `concurrence_examples::chat::simulate`, as one line.
fn simulate(args: &Args) -> Result<(), String> {
    let report = concurrence_examples::chat_session::simulate(args.seed, args.clients)
        .map_err(|e| e.to_string())?;
    let short = report
        .heard
        .iter()
        .filter(|&&n| n != report.expected)
        .count();
    println!(
        "seed={} clients={} lines_each_expected={} clients_short={short} trace_hash={:016x}",
        args.seed, args.clients, report.expected, report.trace_hash
    );
    if short == 0 {
        Ok(())
    } else {
        Err(format!(
            "{short} clients did not hear every line: {:?}",
            report.heard
        ))
    }
}
