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
    let config = match Config::from_args(std::env::args_os()) {
        Ok(config) => config,
        Err(ConfigError::Flags(error)) => error.exit(),
        Err(error) => {
            eprintln!("monarchd: {error}");
            return ExitCode::from(error.exit_code());
        }
    };
    let sink = match log::install(&config.log) {
        Ok(sink) => sink,
        Err(error) => {
            eprintln!("monarchd: cannot open the log: {error}");
            return ExitCode::from(2);
        }
    };
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
    match runtime.block_on(server::serve(config, sink, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(target: "CONTROL", id = 20557, %error, "Server failed to start");
            ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(100))
        }
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
