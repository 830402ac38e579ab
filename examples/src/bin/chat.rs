//! The seed's chat server: lines from one client go to all others; `quit` leaves. The same
//! handler (`concurrence_examples::chat::chat_member`) runs on smol's sockets (`nc 127.0.0.1
//! 7001` from several terminals) or in the simulator (`--backend sim --seed 3 --clients 8`),
//! where checking clients count what reached whom.

#![allow(clippy::print_stdout)] // the sim report line is the program's output

use clap::{Parser, ValueEnum};
use concurrence_core::Address;
use concurrence_examples::chat::{Room, chat_member};
use std::process::ExitCode;

/// A chat server on concurrence.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Which backend runs it: smol (real sockets) or sim (simulated clients).
    #[arg(long, value_enum, default_value_t = Backend::Smol)]
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
    Smol,
    Sim,
}

fn main() -> ExitCode {
    concurrence_examples::init_logging("info");
    let args = Args::parse();
    let result = match args.backend {
        Backend::Smol => serve_smol(&args),
        Backend::Sim => simulate(&args),
    };
    result.map_or_else(
        |message| {
            eprintln!("chat: {message}");
            ExitCode::FAILURE
        },
        |()| ExitCode::SUCCESS,
    )
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
    let report =
        concurrence_examples::chat::simulate(args.seed, args.clients).map_err(|e| e.to_string())?;
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
