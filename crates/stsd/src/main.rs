//! The `stsd` binary.

use clap::{CommandFactory, FromArgMatches};
use stsd::cli::{Cli, Command};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc's allocator: a request allocates some fifty small, short-lived buffers
/// (hyper's header map, parameters, the signature's canonical form, the XML body), and glibc's
/// malloc/free took about a sixth of the server's user-space instructions per GetSessionToken
/// (callgrind; see bench/README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // Every file stsd creates (the SQLite database and its -wal/-shm files, the audit log, key files) is
    // private to its user: nothing it writes is meant for other local users.
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    // mimalloc asks the kernel for transparent huge pages, and a 2 MiB page counts whole in the resident
    // set however little of it is used: a burst at 64 connections took peak RSS from 26 to 55-60 MiB,
    // for no gain in speed (bench/README.md, issue 20 fourth round). Off for this process, unless
    // MIMALLOC_ALLOW_THP is set, which mimalloc then follows.
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        let _ = rustix::thread::disable_transparent_huge_pages(true);
    }
    let matches = Cli::command().get_matches();
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    if let (Command::Serve(args), Some(m)) = (&mut cli.command, matches.subcommand_matches("serve"))
        && let Err(e) = stsd::config::load_into(args, m)
    {
        eprintln!("stsd: error: {e:#}");
        return std::process::ExitCode::FAILURE;
    }
    // The server logs what it does; admin commands print their results and log only problems.
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        Command::Admin(_) | Command::Migrate(_) => "warn",
    };
    let filter =
        EnvFilter::try_from_env("STSD_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    let json = matches!(&cli.command, Command::Serve(a) if a.log_format == "json");
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        fmt.json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        fmt.init();
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .enable_all()
        .event_interval(stsd::http::EVENT_INTERVAL);
    if let Command::Serve(args) = &cli.command
        && let Some(n) = args.workers
    {
        builder.worker_threads(usize::from(n));
    }
    let runtime = match builder.build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("stsd: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => stsd::cli::serve(args).await,
            Command::Admin(args) => stsd::admin::run(args).await,
            Command::Migrate(args) => stsd::cli::migrate(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stsd: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
