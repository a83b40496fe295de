//! The running server: shared state, startup (bind, TLS, background tasks) and graceful
//! shutdown that lets in-flight requests finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU16, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cmd::COMMANDS;
use crate::config::{Config, TlsMode};
use crate::cursor::CursorRegistry;
use crate::failpoint::FailPoints;
use crate::net::{listener, tls};
use crate::obs::log::LogSink;
use crate::obs::stats::ServerStats;
use crate::session::SessionCatalog;
use crate::storage::{FLUSH_INTERVAL, MemoryBudget, Storage, StorageError};

/// How often idle cursors and sessions are looked for (mongod's
/// `clientCursorMonitorFrequencySecs`).
const REAP_INTERVAL: Duration = Duration::from_secs(4);

/// The stack of the runtime's threads, which run the command handlers (`block_in_place`).
/// Handlers recurse through documents, filters and expressions only up to mongod's nesting
/// limits (`query::limits`), but at several kilobytes a level in unoptimised builds that
/// needs more than tokio's 2 MiB default. It is a reservation: pages are used only when
/// touched.
pub const THREAD_STACK_BYTES: usize = 8 * 1024 * 1024;

/// State shared by every connection and handler.
pub struct Shared {
    /// The validated configuration.
    pub config: Config,
    /// Server parameters that `setParameter` changes while the server runs.
    pub params: crate::parameters::RuntimeParameters,
    /// Counters for `serverStatus`.
    pub stats: ServerStats,
    /// The log, for `getLog`.
    pub log: Arc<LogSink>,
    /// Logical sessions.
    pub sessions: SessionCatalog,
    /// The storage engine.
    pub storage: Arc<Storage>,
    /// Open cursors.
    pub cursors: CursorRegistry,
    /// Test fail points (`configureFailPoint`).
    pub failpoints: FailPoints,
    /// Cached query plans.
    pub plans: crate::cmd::planner::PlanCache,
    /// Operations in flight (`currentOp`, `killOp`).
    pub ops: crate::obs::tracker::OpRegistry,
    /// Prometheus metrics.
    pub metrics: crate::obs::metrics::Metrics,
    /// The slow-query log's settings.
    pub slow_log: crate::obs::slowlog::SlowLog,
    /// Latency histograms (`opLatencies`, `latencyStats`) and per-query-shape statistics.
    pub latency: crate::obs::latency::LatencyStats,
    /// The database profiler (`profile`, `system.profile`).
    pub profiler: crate::obs::profiler::Profiler,
    /// When the server started.
    pub started: Instant,
    next_connection_id: AtomicU64,
    next_request_id: AtomicI32,
    bound_port: AtomicU16,
}

/// Commands larger than this are kept in `currentOp`, logs and the profiler as their name
/// and size only, so tracking never copies a large insert batch.
const MAX_TRACKED_COMMAND: usize = 16 * 1024;

/// The command as the tracker keeps it: whole when small, else name, collection and size.
fn tracked_command(request: &crate::cmd::CommandRequest) -> bson::RawDocumentBuf {
    let body = request.body();
    let size = body.as_bytes().len();
    if size <= MAX_TRACKED_COMMAND {
        return body.to_owned();
    }
    let mut summary = bson::RawDocumentBuf::new();
    if let Ok(name) = <&bson::raw::CStr>::try_from(request.name()) {
        summary.append(name, request.collection_name().unwrap_or(""));
    }
    summary.append(bson::raw::cstr!("$truncated"), format!("command of {size} bytes"));
    summary
}

impl Shared {
    /// Registers `request` from `client` as an operation in flight (until the guard drops).
    pub fn begin_op(
        &self,
        client: &crate::cmd::ClientInfo,
        request: &crate::cmd::CommandRequest,
        started: Instant,
    ) -> crate::obs::tracker::OpGuard<'_> {
        self.ops.begin(
            crate::obs::tracker::OpStart {
                connection_id: client.connection_id,
                client: client.remote,
                app_name: client.app_name().map(str::to_owned),
                started,
                command_name: request.name(),
                db: request.db().to_owned(),
                collection: request.collection_name().map(str::to_owned),
                command: tracked_command(request),
            },
            self.config.parameters.observability,
        )
    }

    /// Fresh state for `config` over an opened `storage`.
    pub fn new(config: Config, log: Arc<LogSink>, storage: Arc<Storage>) -> Self {
        let metrics = crate::obs::metrics::Metrics::new();
        let journal_sync = metrics.journal_sync();
        storage.set_sync_observer(Box::new(move |elapsed| journal_sync.observe(elapsed.as_secs_f64())));
        let profiler = crate::obs::profiler::Profiler::new(config.profiling.level, storage.clone());
        Self {
            storage,
            cursors: CursorRegistry::default(),
            failpoints: FailPoints::default(),
            plans: crate::cmd::planner::PlanCache::default(),
            ops: crate::obs::tracker::OpRegistry::default(),
            metrics,
            slow_log: crate::obs::slowlog::SlowLog::new(&config.profiling, config.redact_client_log_data),
            latency: crate::obs::latency::LatencyStats::default(),
            profiler,
            bound_port: AtomicU16::new(config.port),
            params: crate::parameters::RuntimeParameters::new(&config),
            config,
            stats: ServerStats::new(COMMANDS.len()),
            log,
            sessions: SessionCatalog::default(),
            started: Instant::now(),
            next_connection_id: AtomicU64::new(1),
            next_request_id: AtomicI32::new(1),
        }
    }

    /// The port actually listened on (differs from the configured one when that was 0).
    pub fn port(&self) -> u16 {
        self.bound_port.load(Ordering::Relaxed)
    }

    /// A new connection number.
    pub fn next_connection_id(&self) -> u64 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A new id for an outgoing message.
    pub fn next_request_id(&self) -> i32 {
        self.next_request_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory could not be created.
    #[error("cannot create dbpath {path}: {source}")]
    DbPath {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS certificate or CA file is unusable.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The data directory could not be opened.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A listening socket could not be opened.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// Why.
        source: std::io::Error,
    },
}

impl StartError {
    /// mongod's exit code for this failure (48 for a network error, 100 otherwise).
    pub fn exit_code(&self) -> i32 {
        match self {
            StartError::Bind { .. } => 48,
            _ => 100,
        }
    }
}

/// Starts the server and serves until `shutdown` completes; then stops accepting, lets each
/// connection finish the request it is running, and returns once all have closed.
///
/// # Errors
/// A [`StartError`] if the server could not start.
pub async fn serve(config: Config, log: Arc<LogSink>, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    std::fs::create_dir_all(&config.dbpath)
        .map_err(|source| StartError::DbPath { path: config.dbpath.display().to_string(), source })?;
    let acceptor = tls::acceptor(&config.tls)?;
    let budget = MemoryBudget::split(config.cache_size.bytes);
    log_memory_budget(&config.cache_size, &budget);
    let storage = Arc::new(Storage::open_with_budget(&config.dbpath, budget)?);
    let listeners = bind(&config.bind_ip, config.port).await?;
    let admin_listeners = match config.admin_port {
        Some(port) => bind(&config.bind_ip, port).await?,
        None => Vec::new(),
    };
    let shared = Arc::new(Shared::new(config, log, storage));
    if let Some(port) = listeners.first().and_then(|l| l.local_addr().ok()).map(|a| a.port()) {
        shared.bound_port.store(port, Ordering::Relaxed);
    }
    for warning in &shared.config.warnings {
        tracing::warn!(target: "CONTROL", id = 20998, "{warning}");
    }
    tracing::warn!(
        target: "CONTROL",
        id = 22120,
        "Access control is not enabled for the database. Read and write access to data and configuration is unrestricted"
    );
    if let Some(port) = admin_listeners.first().and_then(|l| l.local_addr().ok()).map(|a| a.port()) {
        let addresses: Vec<String> =
            admin_listeners.iter().filter_map(|l| l.local_addr().ok()).map(|a| a.to_string()).collect();
        tracing::info!(target: "NETWORK", id = 7_000_100, port, addresses = addresses.join(","), "Admin HTTP server listening");
    }
    let addresses: Vec<String> =
        listeners.iter().filter_map(|l| l.local_addr().ok()).map(|a: SocketAddr| a.to_string()).collect();
    tracing::info!(
        target: "NETWORK",
        id = 23016,
        ctx = "listener",
        port = shared.port(),
        addresses = addresses.join(","),
        ssl = if shared.config.tls.mode == TlsMode::Disabled { "off" } else { "on" },
        "Waiting for connections"
    );
    shared.log.startup_complete();

    let cancel = CancellationToken::new();
    let connections = TaskTracker::new();
    let limiter = Arc::new(Semaphore::new(shared.config.max_conns));
    let mut accept_loops = Vec::new();
    for listener in listeners {
        let context = listener::AcceptContext {
            shared: shared.clone(),
            tls: acceptor.clone(),
            limiter: limiter.clone(),
            connections: connections.clone(),
            shutdown: cancel.clone(),
        };
        accept_loops.push(tokio::spawn(listener::accept_loop(listener, context)));
    }
    let reaper = tokio::spawn(reap_idle(shared.clone(), cancel.clone()));
    let flusher = tokio::spawn(flush_journal(shared.clone(), cancel.clone()));
    let ttl_monitor = tokio::spawn(monitor_ttl(shared.clone(), cancel.clone()));
    // The admin server outlives `cancel` so `/readyz` reports the drain; it stops at the end.
    let admin_stop = CancellationToken::new();
    let admin =
        tokio::spawn(crate::obs::admin::serve(admin_listeners, shared.clone(), cancel.clone(), admin_stop.clone()));

    shutdown.await;
    tracing::info!(target: "CONTROL", id = 23377, "Received signal; shutting down");
    cancel.cancel();
    for accept_loop in accept_loops {
        let _ = accept_loop.await;
    }
    let _ = reaper.await;
    connections.close();
    tracing::info!(
        target: "NETWORK",
        id = 4784923,
        open = connections.len(),
        "Waiting for open connections to finish their requests"
    );
    connections.wait().await;
    let _ = flusher.await;
    let _ = ttl_monitor.await;
    admin_stop.cancel();
    let _ = admin.await;
    let storage = shared.storage.clone();
    let _ = tokio::task::spawn_blocking(move || storage.flush()).await;
    tracing::info!(target: "CONTROL", id = 23138, exitCode = 0, "Shutting down");
    Ok(())
}

/// Logs the storage engine's memory budget and its split before the engine opens, as mongod
/// logs its cache size when it opens WiredTiger.
fn log_memory_budget(cache_size: &crate::config::CacheSize, budget: &MemoryBudget) {
    let source = match cache_size.configured_gb {
        Some(_) => "cacheSizeGB",
        None => "default: 50% of (memory - 1 GiB), at least 256 MiB",
    };
    tracing::info!(
        target: "STORAGE",
        id = 22315,
        cacheSizeBytes = budget.total_bytes,
        blockCacheBytes = budget.block_cache_bytes,
        writeBufferBytes = budget.write_buffer_bytes,
        memtableBytes = budget.memtable_bytes,
        memoryBytes = cache_size.memory_bytes,
        source,
        "Opening the storage engine"
    );
}

/// Listens on `port` on every `--bind_ip` address (port 0: a free port, the same one for
/// every address after the first).
async fn bind(hosts: &[String], mut port: u16) -> Result<Vec<TcpListener>, StartError> {
    let mut listeners = Vec::new();
    for host in hosts {
        let address = format!("{host}:{port}");
        let resolved = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|source| StartError::Bind { address: address.clone(), source })?;
        for addr in resolved {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { address: addr.to_string(), source })?;
            if port == 0 {
                port = listener.local_addr().map_or(0, |a| a.port());
            }
            listeners.push(listener);
        }
    }
    Ok(listeners)
}

/// Syncs the journal every [`FLUSH_INTERVAL`] so writes without `j: true` are durable within
/// about 100 ms, as with mongod's default journal commit interval.
async fn flush_journal(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(FLUSH_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {
                let storage = shared.storage.clone();
                let _ = tokio::task::spawn_blocking(move || storage.flush()).await;
            }
        }
    }
}

/// The TTL monitor: every `ttlMonitorSleepSecs`, deletes documents whose TTL index date is
/// older than its `expireAfterSeconds`.
async fn monitor_ttl(shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        // Registered before the period is read, so a new `ttlMonitorSleepSecs` set meanwhile
        // wakes this sleep and the next one uses it.
        let changed = shared.params.changed();
        let period = Duration::from_secs(shared.params.ttl_monitor_sleep_secs().max(1));
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = changed => continue,
            () = tokio::time::sleep(period) => {
                let storage = shared.storage.clone();
                match tokio::task::spawn_blocking(move || storage.delete_expired(bson::DateTime::now())).await {
                    Ok(Ok(0)) => {}
                    Ok(Ok(deleted)) => tracing::debug!(target: "INDEX", id = 5479200, deleted, "Deleted expired documents using index"),
                    Ok(Err(error)) => tracing::warn!(target: "INDEX", id = 22540, error = %error, "TTL monitor pass failed"),
                    Err(_) => {}
                }
            }
        }
    }
}

/// Closes cursors and sessions that have been idle too long.
async fn reap_idle(shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        // The timeout is read every pass: `setParameter` may change `cursorTimeoutMillis`
        // (and wakes this wait when it does).
        let changed = shared.params.changed();
        let cursor_timeout = Duration::from_millis(shared.params.cursor_timeout_millis());
        let period = REAP_INTERVAL.min(cursor_timeout / 2).max(Duration::from_millis(10));
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = changed => continue,
            () = tokio::time::sleep(period) => {
                let now = Instant::now();
                let cursors = shared.cursors.reap(now, cursor_timeout);
                let sessions = shared.sessions.reap(now);
                if cursors + sessions > 0 {
                    tracing::debug!(target: "QUERY", id = 20529, cursors, sessions, "Closed idle cursors and sessions");
                }
            }
        }
    }
}

/// Test state that owns its temporary data directory.
#[cfg(test)]
pub(crate) struct TestShared {
    shared: Shared,
    _dir: tempfile::TempDir,
}

#[cfg(test)]
impl std::ops::Deref for TestShared {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.shared
    }
}

#[cfg(test)]
impl Shared {
    /// State with default configuration, a silent log and storage in a temporary directory
    /// (removed when the returned guard drops), for handler tests.
    pub(crate) fn for_tests() -> TestShared {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let config = Config::from_args(["monarchd"]).unwrap_or_else(|e| panic!("default config: {e}"));
        let storage = Storage::open(dir.path()).unwrap_or_else(|e| panic!("storage: {e}"));
        let shared = Self::new(config, LogSink::new(Box::new(std::io::sink())), Arc::new(storage));
        TestShared { shared, _dir: dir }
    }

    /// A client on loopback, for handler tests.
    pub(crate) fn test_client(&self) -> crate::cmd::ClientInfo {
        let addr = SocketAddr::from(([127, 0, 0, 1], 50000));
        crate::cmd::ClientInfo {
            connection_id: self.next_connection_id(),
            remote: addr,
            local: addr,
            tls: false,
            metadata: None,
            compressors: Vec::new(),
            close_requested: false,
        }
    }

    /// Runs the command `body` (an `OP_MSG` body) through the dispatcher as `client`.
    pub(crate) fn run_command_as(&self, client: &mut crate::cmd::ClientInfo, body: bson::Document) -> bson::Document {
        let bytes = monarch_wire::DocumentBytes::try_from(&body).unwrap_or_else(|e| panic!("test body: {e}"));
        let request = crate::cmd::CommandRequest::from_msg(monarch_wire::OpMsg::new(bytes))
            .unwrap_or_else(|e| panic!("test request: {e}"));
        let op = self.begin_op(client, &request, std::time::Instant::now());
        crate::cmd::execute(&mut crate::cmd::RequestCtx { server: self, client, op: op.op() }, &request).reply
    }

    /// Runs the command `body` on a fresh test connection.
    pub(crate) fn run_command(&self, body: bson::Document) -> bson::Document {
        let mut client = self.test_client();
        self.run_command_as(&mut client, body)
    }
}
