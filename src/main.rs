//! `monarchd`: parse the configuration, start logging and the runtime, serve until SIGINT or
//! SIGTERM.

use std::process::ExitCode;

use monarch::config::{Config, ConfigError};
use monarch::log;
use monarch::server;

/// jemalloc instead of the system allocator: the request path allocates small buffers on one
/// thread and frees them on another (the runtime and the blocking pool), which glibc's malloc
/// handles poorly.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "audit") {
        return audit_tool(args.get(2..).unwrap_or_default());
    }
    if args.get(1).is_some_and(|a| a == "backup") {
        return monarch::backup::cli::backup_tool(args.get(2..).unwrap_or_default());
    }
    if args.get(1).is_some_and(|a| a == "dump") {
        return monarch::backup::cli::dump_tool(args.get(2..).unwrap_or_default());
    }
    if args.get(1).is_some_and(|a| a == "export") {
        return monarch::backup::cli::export_tool(args.get(2..).unwrap_or_default());
    }
    if args.get(1).is_some_and(|a| a == "import") {
        return monarch::backup::cli::import_tool(args.get(2..).unwrap_or_default());
    }
    if args.get(1).is_some_and(|a| a == "restore") {
        return monarch::backup::cli::restore_tool(args.get(2..).unwrap_or_default());
    }
    let config = match Config::from_args(std::env::args_os()) {
        Ok(config) => config,
        Err(ConfigError::Flags(error)) => error.exit(),
        Err(error) => {
            eprintln!("monarchd: {error}");
            return ExitCode::from(error.exit_code());
        }
    };
    if config.validate_only {
        return validate_config(&config);
    }
    let sink = match log::install(&config.log) {
        Ok(sink) => sink,
        Err(error) => {
            eprintln!("monarchd: cannot open the log: {error}");
            return ExitCode::from(2);
        }
    };
    if config.repair {
        return repair(&config);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(server::THREAD_STACK_BYTES)
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(target: "CONTROL", id = 1, %error, "Cannot start the async runtime");
            return ExitCode::from(100);
        }
    };
    let shutdown = {
        let _inside_runtime = runtime.enter();
        shutdown_signal()
    };
    match runtime.block_on(server::serve(config, sink, shutdown)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(target: "CONTROL", id = 20557, %error, "Server failed to start");
            ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(100))
        }
    }
}

/// `monarchd --validate-config`: the configuration parsed (its errors were reported before
/// this), then the certificate files read as startup would; prints the effective settings as
/// JSON on success.
fn validate_config(config: &Config) -> ExitCode {
    if let Err(error) = monarch::state::tls::TlsCertificates::load(&config.tls) {
        eprintln!("monarchd: invalid value for net.tls: {error}");
        return ExitCode::from(1);
    }
    let effective = bson::Bson::Document(config.effective()).into_relaxed_extjson();
    match serde_json::to_string_pretty(&effective) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("monarchd: cannot print the configuration: {error}");
            ExitCode::from(1)
        }
    }
}

/// `monarchd --repair`: repairs the data directory, logs what it did and exits, as mongod's
/// `--repair` does: 0 when the repair completed (losses included), 100 when it could not.
fn repair(config: &Config) -> ExitCode {
    let budget = monarch::storage::MemoryBudget::split(config.cache_size.bytes);
    match monarch::storage::repair(&config.dbpath, budget) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(target: "STORAGE", id = 7_000_419, %error, "Repair could not complete");
            eprintln!("monarchd --repair: {error}");
            ExitCode::from(100)
        }
    }
}

/// `monarchd audit verify FILE...` (oldest first): checks the audit log's hash chain and names
/// the first line that breaks it. Exit 0 when intact, 1 when broken, 2 on bad usage or an
/// unreadable file.
fn audit_tool(args: &[std::ffi::OsString]) -> ExitCode {
    use monarch::obs::audit::{Verdict, verify};
    let Some((command, files)) = args.split_first() else {
        eprintln!("usage: monarchd audit verify FILE... (rotated files first, the current file last)");
        return ExitCode::from(2);
    };
    if command != "verify" || files.is_empty() {
        eprintln!("usage: monarchd audit verify FILE... (rotated files first, the current file last)");
        return ExitCode::from(2);
    }
    let files: Vec<std::path::PathBuf> = files.iter().map(std::path::PathBuf::from).collect();
    match verify(&files) {
        Ok(Verdict::Intact { lines, head }) => {
            println!("intact: {lines} lines; last line's hash {head}");
            ExitCode::SUCCESS
        }
        Ok(Verdict::Broken { file, line, reason }) => {
            println!("broken: {}:{line}: {reason}", file.display());
            ExitCode::from(1)
        }
        Err(error) => {
            eprintln!("monarchd audit verify: {error}");
            ExitCode::from(2)
        }
    }
}

/// Registers for SIGINT and SIGTERM now, inside the runtime, and returns a future that
/// completes on the first of them. Registering before `serve` binds its ports matters: the
/// future is first polled only after the listeners accept, and a SIGTERM arriving in between
/// would otherwise take the default action and kill the process without a clean shutdown.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let wait = |registered: std::io::Result<tokio::signal::unix::Signal>| async move {
            match registered {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        let interrupt = wait(signal(SignalKind::interrupt()));
        let terminate = wait(signal(SignalKind::terminate()));
        async move {
            tokio::select! {
                () = interrupt => {}
                () = terminate => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
