//! A memcached-compatible server: one `MemcacheSession` served by the polling backend (the
//! default), the smol backend, the io_uring backend, or run under the simulator with checking
//! clients.
//!
//! `cargo run --release -p concurrence-examples --bin memcache-server -- -p 11211`, then
//! `printf 'set a 0 0 1\r\nx\r\nget a\r\n' | nc -q1 127.0.0.1 11211`.
//! `--backend sim --seed 7 --clients 20 --ops 500 --faults all` runs a simulated load instead.
//! Logs go to stderr through `tracing` (`RUST_LOG` works; `-v` raises the level).

#![allow(clippy::print_stdout)] // the sim report line is the program's output

use std::hash::RandomState;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use concurrence_core::Address;
use concurrence_examples::memcache::sim_history::history_check;
use concurrence_examples::memcache::sim_load::{load_scenario, sim_store_config};
use concurrence_examples::memcache::stats::ServerInfo;
use concurrence_examples::memcache::{MemcacheSession, Shared, StoreConfig};
use concurrence_os::ServerHandle;
use concurrence_os::clock;
use concurrence_sim::Faults;
use concurrence_sim_runner::RunnerArgs;
use concurrence_socket::{ServerConfig, SocketError};

/// A memcached-compatible server on concurrence.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Which backend serves the sessions.
    #[arg(long, value_enum, default_value_t = Backend::Polling)]
    backend: Backend,
    /// TCP port to listen on.
    #[arg(short, long, default_value_t = 11211)]
    port: u16,
    /// Interface to listen on (an IP), or a Unix socket path (then --port is ignored).
    #[arg(short, long, default_value = "127.0.0.1")]
    listen: String,
    /// Memory for items, in MiB.
    #[arg(short = 'm', long, default_value_t = 64)]
    memory_limit: usize,
    /// Largest item, in bytes, or with a k or m suffix (1k to 128m).
    #[arg(short = 'I', long, default_value = "1m", value_parser = parse_size)]
    max_item_size: usize,
    /// Connections served at once; newcomers wait in the backlog past it.
    #[arg(short = 'c', long, default_value_t = 1024)]
    conn_limit: usize,
    /// Threads: event loops (polling) or executor threads (smol).
    #[arg(short = 't', long, default_value_t = 4)]
    threads: usize,
    /// Seconds a connection may stay silent before it is closed (0: never, as memcached).
    #[arg(long, default_value_t = 0)]
    idle_timeout: u64,
    /// Let clients stop the server with the `shutdown` command (memcached's -A); without it
    /// `shutdown` answers `ERROR: shutdown not enabled`.
    #[arg(short = 'A', long)]
    enable_shutdown: bool,
    /// More logging (-v info for every connection end, -vv debug).
    #[arg(short, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Simulator: the seed runner's flags (`--seeds A..B`, `--seed S`, `--choices TEXT`,
    /// `--runner-threads N`, `--keep-going`, `--no-shrink`).
    #[command(flatten)]
    runner: RunnerArgs,
    /// Simulator: clients.
    #[arg(long, default_value_t = 10)]
    clients: usize,
    /// Simulator: operations per client.
    #[arg(long, default_value_t = 200)]
    ops: usize,
    /// Simulator: network faults, `none`, `short-io` or `all`.
    #[arg(long, default_value = "all")]
    faults: String,
    /// Simulator: instead of the per-client model check, record the history of clients
    /// sharing three keys (a partition, maybe a crash and a restart that forgets) and check
    /// it is linearizable against the per-key CAS register model.
    #[arg(long)]
    history: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// A raw `polling` event loop per thread.
    Polling,
    /// smol tasks on an executor.
    Smol,
    /// A completion-based io_uring event loop per thread (Linux; refused with the reason
    /// where the kernel does not allow io_uring).
    Uring,
    /// The deterministic simulator, with checking clients instead of real ones.
    Sim,
}

fn parse_size(text: &str) -> Result<usize, String> {
    let (digits, unit) = match text.char_indices().last() {
        Some((i, 'k' | 'K')) => (&text[..i], 1024),
        Some((i, 'm' | 'M')) => (&text[..i], 1024 * 1024),
        _ => (text, 1),
    };
    let size = digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| format!("{text:?} is not a size such as 1048576, 512k or 1m"))?;
    if !(1024..=128 * 1024 * 1024).contains(&size) {
        return Err(format!("{text:?} is outside 1k..128m"));
    }
    Ok(size)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let default_level = match args.verbose {
        0 => "warn,memcache_server=info",
        1 => "info",
        _ => "debug",
    };
    concurrence_examples::init_logging(default_level);
    let result = match args.backend {
        Backend::Sim => return run_sim(&args),
        Backend::Polling => run_event_loops(&args, "polling", concurrence_polling::serve),
        Backend::Uring => run_event_loops(&args, "uring", concurrence_uring::serve),
        Backend::Smol => run_smol(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("memcache-server: {message}");
            ExitCode::FAILURE
        }
    }
}

fn address(args: &Args) -> Result<Address, String> {
    let text = if args.listen.contains('/') {
        args.listen.clone()
    } else if args.listen.contains(':') && !args.listen.starts_with('[') {
        // An IPv6 address without brackets.
        format!("[{}]:{}", args.listen, args.port)
    } else {
        format!("{}:{}", args.listen, args.port)
    };
    text.parse()
        .map_err(|e| format!("cannot listen on {text:?}: {e}"))
}

fn store_config(args: &Args) -> Result<StoreConfig, String> {
    let memory_limit = args
        .memory_limit
        .checked_mul(1024 * 1024)
        .filter(|&m| m > 0)
        .ok_or_else(|| format!("-m {} is not a usable memory limit", args.memory_limit))?;
    // Absolute expiry times are Unix times: tie them to the backends' clock once.
    let unix_now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "the system clock is before 1970".to_owned())?;
    let unix_time_at_zero = unix_now
        .saturating_sub(clock::now().since_epoch())
        .as_secs();
    Ok(StoreConfig {
        memory_limit,
        item_size_max: args.max_item_size,
        unix_time_at_zero,
    })
}

fn shared(args: &Args) -> Result<Arc<Shared<RandomState>>, String> {
    let info = ServerInfo {
        started: clock::now(),
        pid: std::process::id(),
        threads: args.threads.max(1),
        max_connections: args.conn_limit,
        store: store_config(args)?,
        tcp_port: if args.listen.contains('/') {
            0
        } else {
            args.port
        },
        interface: (!args.listen.contains('/')).then(|| args.listen.clone()),
        socket_path: args.listen.contains('/').then(|| args.listen.clone()),
        shutdown_enabled: args.enable_shutdown,
        idle_timeout: args.idle_timeout,
    };
    Ok(Arc::new(Shared::new(info, RandomState::new())))
}

fn server_config(args: &Args, shared: &Shared<RandomState>) -> ServerConfig {
    let (reader, writer) = shared.buffers();
    let idle = (args.idle_timeout > 0).then(|| Duration::from_secs(args.idle_timeout));
    ServerConfig::default()
        .with_threads(args.threads.max(1))
        .with_max_connections(args.conn_limit)
        .with_idle_timeout(idle)
        .with_buffers(reader, writer)
}

/// Makes the session of each connection.
type Factory = Box<dyn Fn(&Address) -> MemcacheSession<RandomState> + Send + Sync>;

/// A backend's `serve` (polling's and uring's have the same signature and handle).
type Serve = fn(&Address, ServerConfig, Factory) -> Result<ServerHandle, SocketError>;

/// Serves on `name`'s event loops (`serve`) until SIGINT, SIGTERM or `shutdown`.
fn run_event_loops(args: &Args, name: &str, serve: Serve) -> Result<(), String> {
    let address = address(args)?;
    let shared = shared(args)?;
    let config = server_config(args, &shared);
    let (stop, stopped) = mpsc::channel();
    let on_command = stop.clone();
    shared.on_shutdown(move |_| {
        let _ = on_command.send(());
    });
    let server = serve(
        &address,
        config,
        Box::new(move |peer| MemcacheSession::with_peer(Arc::clone(&shared), peer)),
    )
    .map_err(|e| format!("cannot serve on {address}: {e}"))?;
    tracing::info!(
        address = %server.local_address(),
        threads = config.threads,
        backend = name,
        "memcache-server listening; Ctrl-C or SIGTERM stops it"
    );
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

fn run_smol(args: &Args) -> Result<(), String> {
    let address = address(args)?;
    let shared = shared(args)?;
    let config = server_config(args, &shared);
    let executor = Arc::new(smol::Executor::<'static>::new());
    let (finish, finished) = smol::channel::bounded::<()>(1);
    for i in 0..config.threads {
        let (executor, finished) = (Arc::clone(&executor), finished.clone());
        std::thread::Builder::new()
            .name(format!("memcache-smol-{i}"))
            .spawn(move || smol::block_on(executor.run(finished.recv())))
            .map_err(|e| format!("cannot start an executor thread: {e}"))?;
    }
    let spawner = {
        let executor = Arc::clone(&executor);
        move |task| executor.spawn(task).detach()
    };
    let mut server =
        concurrence_smol::SocketServer::with_config(address.clone(), config).with_spawner(spawner);
    server
        .listen(config.backlog)
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    tracing::info!(
        address = %server.local_address(),
        threads = config.threads,
        "memcache-server (smol) listening; Ctrl-C or SIGTERM stops it"
    );
    let closer = server.close_handle();
    let on_command = closer.clone();
    shared.on_shutdown(move |_| on_command.close());
    let on_signal = closer.clone();
    ctrlc::set_handler(move || on_signal.close())
        .map_err(|e| format!("cannot install the signal handler: {e}"))?;
    smol::block_on(
        server.serve_session(move |peer| MemcacheSession::with_peer(Arc::clone(&shared), peer)),
    )
    .map_err(|e| format!("the server stopped with an error: {e}"))?;
    // Stopped accepting: give live connections the grace period to finish, then leave.
    let grace_end = Instant::now() + config.shutdown_grace;
    tracing::info!(
        live = closer.connections(),
        "shutting down: live connections get the grace period to finish"
    );
    while closer.connections() > 0 && Instant::now() < grace_end {
        smol::block_on(smol::Timer::after(Duration::from_millis(20)));
    }
    drop(finish);
    Ok(())
}

fn run_sim(args: &Args) -> ExitCode {
    let Some(faults) = Faults::preset(&args.faults) else {
        eprintln!(
            "memcache-server: unknown --faults {:?}; use none, short-io or all",
            args.faults
        );
        return ExitCode::FAILURE;
    };
    let runner = match args.runner.runner("memcache-server") {
        Ok(runner) => runner.command(&replay_command(args)),
        Err(message) => {
            eprintln!("memcache-server: {message}");
            return ExitCode::FAILURE;
        }
    };
    let answered = AtomicU64::new(0);
    let (ambiguous, crashes) = (AtomicU64::new(0), AtomicU64::new(0));
    let report = runner.run(|case| {
        if args.history {
            let run = history_check(case.network(faults), args.clients, args.ops)?;
            answered.fetch_add(run.operations as u64, Ordering::Relaxed);
            ambiguous.fetch_add(run.ambiguous as u64, Ordering::Relaxed);
            crashes.fetch_add(u64::from(run.crashed), Ordering::Relaxed);
            return Ok(());
        }
        let run = load_scenario(
            case.network(faults),
            args.clients,
            args.ops,
            sim_store_config(),
            &mut |_, _| {},
        )
        .map_err(|error| format!("did not settle: {error}"))?;
        answered.fetch_add(run.answered, Ordering::Relaxed);
        if run.violations > 0 {
            return Err(format!("{run}: {}", run.notes.join("; ")));
        }
        Ok(())
    });
    if !report.failures.is_empty() {
        eprintln!("{report}");
    }
    if args.history {
        print!(
            "operations={} ambiguous={} crashes={} ",
            answered.load(Ordering::Relaxed),
            ambiguous.load(Ordering::Relaxed),
            crashes.load(Ordering::Relaxed)
        );
    }
    println!(
        "seeds={} failing={} answered={} seconds={:.2} seeds_per_second={:.1} events_per_second={:.0}",
        report.seeds_run,
        report.failures.len(),
        answered.load(Ordering::Relaxed),
        report.elapsed.as_secs_f64(),
        report.seeds_per_second(),
        report.events_per_second()
    );
    if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn replay_command(args: &Args) -> String {
    format!(
        "cargo run --release -p concurrence-examples --bin memcache-server -- --backend sim --clients {} --ops {} --faults {}{}",
        args.clients,
        args.ops,
        args.faults,
        if args.history { " --history" } else { "" }
    )
}
