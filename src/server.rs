//! The running server: startup (open storage, build the shared state and the observers, bind,
//! TLS, background tasks) and graceful shutdown that lets in-flight requests finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cmd::COMMANDS;
use crate::config::{Config, TlsMode};
use crate::log::LogSink;
use crate::net::{admin, listener};
use crate::obs::Observers;
use crate::state::State;
use crate::state::pool::BlockingPool;
use crate::state::tls::{TlsCertificates, TlsError};
use crate::storage::{EngineConfig, FLUSH_INTERVAL, MemoryBudget, Storage, StorageError};

/// How often idle cursors and sessions are looked for (mongod's
/// `clientCursorMonitorFrequencySecs`).
const REAP_INTERVAL: Duration = Duration::from_secs(4);

/// The stack of the runtime's threads (and the blocking pool's): see the constant's own
/// documentation.
pub use crate::state::pool::THREAD_STACK_BYTES;

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
    Tls(#[from] TlsError),
    /// The data directory could not be opened.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The user and role catalog could not be read or written.
    #[error("user catalog: {0}")]
    Catalog(String),
    /// The audit log could not be opened, or its filter is not a valid query.
    #[error("audit log: {0}")]
    Audit(String),
    /// The OTLP span exporter could not be built.
    #[error(transparent)]
    Tracing(#[from] crate::obs::otel::TracingError),
    /// The blocking pool's threads could not be started.
    #[error("cannot start the blocking pool's threads: {0}")]
    Threads(std::io::Error),
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
    // An empty data directory is a first start: where the official image creates its root user.
    let fresh = std::fs::read_dir(&config.dbpath).is_ok_and(|mut entries| entries.next().is_none());
    let certificates = TlsCertificates::load(&config.tls)?;
    let engine = match &config.postgres {
        Some(postgres) => EngineConfig::Postgres { target: Box::new(postgres.clone()), shared: config.pg_shared_nodes },
        None => {
            let budget = MemoryBudget::split(config.cache_size.bytes);
            log_memory_budget(&config.cache_size, &budget);
            EngineConfig::Fjall(budget)
        }
    };
    let storage = Arc::new(Storage::open_engine(&config.dbpath, &engine)?);
    let listeners = bind(&config.bind_ip, config.port).await?;
    let admin_listeners = match config.admin_port {
        Some(port) => bind(&config.admin_bind_ip, port).await?,
        None => Vec::new(),
    };
    let audit = match &config.audit {
        Some(audit) => Some(
            crate::obs::audit::AuditLog::open(audit.destination.clone(), audit.filter.as_ref())
                .map_err(StartError::Audit)?,
        ),
        None => None,
    };
    let port = listeners.first().and_then(|l| l.local_addr().ok()).map_or(config.port, |a| a.port());
    let observers = Arc::new(
        Observers::new(&config, log.clone(), storage.clone())
            .with_audit(audit)
            .with_tracing(config.tracing.as_ref(), port)?,
    );
    let pool = BlockingPool::for_host().map_err(StartError::Threads)?;
    let pool_size = pool.stats();
    tracing::info!(
        target: "CONTROL",
        id = 7_000_110,
        workers = pool_size.workers,
        queueCapacity = pool_size.capacity,
        "Blocking pool started"
    );
    let state = Arc::new(State::new(config, log, storage, pool, COMMANDS.len(), certificates));
    if let Some(port) = listeners.first().and_then(|l| l.local_addr().ok()).map(|a| a.port()) {
        state.set_port(port);
    }
    for warning in &state.config.warnings {
        tracing::warn!(target: "CONTROL", id = 20998, "{warning}");
    }
    // On PostgreSQL the data is not in the directory: a first start is a database without
    // users, and a node sharing it may create the root user at the same moment.
    let first_start = if state.storage.is_embedded() {
        fresh
    } else {
        !crate::exec::principals::any_defined(&state.storage).map_err(|e| StartError::Catalog(e.to_string()))?
    };
    if let (Some(root), true) = (&state.config.initdb_root, first_start) {
        match crate::exec::principals::users::create_root(&state, &root.name, root.password.expose()) {
            Ok(()) => tracing::info!(
                target: "ACCESS",
                id = 7_000_301,
                user = %root.name,
                db = "admin",
                "Created the root user from MONGO_INITDB_ROOT_USERNAME on an empty data directory"
            ),
            // Created by another node sharing the database meanwhile.
            Err(error) if error.code() == crate::error::ErrorCode::Location51003 && state.storage.is_shared() => {}
            Err(error) => return Err(StartError::Catalog(error.to_string())),
        }
    }
    state.repl.load(&state.storage).map_err(|e| StartError::Catalog(e.to_string()))?;
    let defined =
        crate::exec::principals::any_defined(&state.storage).map_err(|e| StartError::Catalog(e.to_string()))?;
    state.authz.changed(defined);
    if !state.config.auth {
        tracing::warn!(
            target: "CONTROL",
            id = 22120,
            "Access control is not enabled for the database. Read and write access to data and configuration is unrestricted"
        );
    } else if !defined {
        tracing::info!(
            target: "ACCESS",
            id = 20248,
            "note: no users configured in admin.system.users, allowing localhost access"
        );
    }
    if let Some(port) = admin_listeners.first().and_then(|l| l.local_addr().ok()).map(|a| a.port()) {
        let addresses: Vec<String> =
            admin_listeners.iter().filter_map(|l| l.local_addr().ok()).map(|a| a.to_string()).collect();
        let scheme = if state.tls.admin_acceptor().is_some() { "https" } else { "http" };
        tracing::info!(target: "NETWORK", id = 7_000_100, port, scheme, addresses = addresses.join(","), "Admin HTTP server listening");
    }
    // Registered before the server says it is up: a SIGHUP sent as soon as it is (an operator's
    // `kill -HUP` after start, a test) must reload, not meet the default action and end it.
    #[cfg(unix)]
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    #[cfg(not(unix))]
    let hangups = None;
    let addresses: Vec<String> =
        listeners.iter().filter_map(|l| l.local_addr().ok()).map(|a: SocketAddr| a.to_string()).collect();
    tracing::info!(
        target: "NETWORK",
        id = 23016,
        ctx = "listener",
        port = state.port(),
        addresses = addresses.join(","),
        ssl = if state.config.tls.mode == TlsMode::Disabled { "off" } else { "on" },
        "Waiting for connections"
    );
    state.log.startup_complete();
    if let Some(audit) = &observers.audit {
        let param = bson::doc! { "options": state.config.parsed() };
        audit.record(&crate::obs::audit::AuditEvent { atype: "startup", param, ..crate::obs::audit::server_event() });
    }

    let cancel = CancellationToken::new();
    let connections = TaskTracker::new();
    let limiter = Arc::new(Semaphore::new(state.config.max_conns));
    let mut accept_loops = Vec::new();
    for listener in listeners {
        let context = listener::AcceptContext {
            state: state.clone(),
            observers: observers.clone(),
            limiter: limiter.clone(),
            connections: connections.clone(),
            shutdown: cancel.clone(),
        };
        accept_loops.push(tokio::spawn(listener::accept_loop(listener, context)));
    }
    let reaper = tokio::spawn(reap_idle(state.clone(), cancel.clone()));
    let flusher = tokio::spawn(flush_journal(state.clone(), cancel.clone()));
    let ttl_monitor = tokio::spawn(monitor_ttl(state.clone(), cancel.clone()));
    let rotator = tokio::spawn(rotate_on_sigusr1(observers.clone(), cancel.clone()));
    let reloader = tokio::spawn(reload_on_sighup(hangups, state.clone(), observers.clone(), cancel.clone()));
    let elections = tokio::spawn(end_step_downs(state.clone(), cancel.clone()));
    let storage_follower = (state.repl.set_name().is_some() && !state.storage.is_embedded())
        .then(|| tokio::spawn(follow_storage(state.clone(), cancel.clone())));
    let principals_follower =
        state.storage.is_shared().then(|| tokio::spawn(follow_principals(state.clone(), cancel.clone())));
    let session_refresh = tokio::spawn(refresh_sessions(state.clone(), cancel.clone()));
    let noops = tokio::spawn(write_periodic_noops(state.clone(), cancel.clone()));
    let backups = state.config.backup_schedule.clone().map(|schedule| {
        tokio::spawn(crate::backup::scheduler::run_schedule(
            state.storage.clone(),
            schedule,
            state.config.backup_key.clone(),
            state.backups.clone(),
            cancel.clone(),
        ))
    });
    // Stopped after the connections finish, for a last run that archives their writes.
    let archive_stop = CancellationToken::new();
    let oplog_archive = state.config.backup_schedule.clone().map(|schedule| {
        tokio::spawn(crate::backup::scheduler::run_oplog_archive(
            state.storage.clone(),
            schedule,
            state.config.backup_key.clone(),
            state.backups.clone(),
            archive_stop.clone(),
        ))
    });
    // The admin server outlives `cancel` so `/readyz` reports the drain; it stops at the end.
    let admin_stop = CancellationToken::new();
    let admin = tokio::spawn(admin::serve(
        admin_listeners,
        state.clone(),
        observers.clone(),
        cancel.clone(),
        admin_stop.clone(),
    ));

    shutdown.await;
    // Awaitable hellos answer now (drivers' monitors learn the server is going), so no
    // connection waits out its maxAwaitTimeMS before the drain below.
    state.topology.begin_shutdown();
    tracing::info!(target: "CONTROL", id = 23377, "Received signal; shutting down");
    if let Some(audit) = &observers.audit {
        audit.record(&crate::obs::audit::AuditEvent { atype: "shutdown", ..crate::obs::audit::server_event() });
    }
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
    archive_stop.cancel();
    if let Some(oplog_archive) = oplog_archive {
        let _ = oplog_archive.await;
    }
    let _ = flusher.await;
    let _ = ttl_monitor.await;
    let _ = rotator.await;
    let _ = reloader.await;
    let _ = elections.await;
    if let Some(follower) = principals_follower {
        let _ = follower.await;
    }
    if let Some(follower) = storage_follower {
        let _ = follower.await;
    }
    let _ = session_refresh.await;
    let _ = noops.await;
    if let Some(backups) = backups {
        let _ = backups.await;
    }
    admin_stop.cancel();
    let _ = admin.await;
    let storage = state.storage.clone();
    let _ = tokio::task::spawn_blocking(move || storage.flush()).await;
    let _ = tokio::task::spawn_blocking(move || observers.flush_spans()).await;
    tracing::info!(target: "CONTROL", id = 23138, exitCode = 0, "Shutting down");
    Ok(())
}

/// The SIGHUP stream (registered at start, see `serve`).
#[cfg(unix)]
type HangupSignals = tokio::signal::unix::Signal;
/// No SIGHUP where there are no Unix signals.
#[cfg(not(unix))]
type HangupSignals = ();

/// On SIGHUP, reads the TLS certificates again when TLS is in use (new connections use the
/// new ones, open connections keep theirs; unusable files leave the old ones in place) and
/// reloads the configuration ([`crate::reload`]).
async fn reload_on_sighup(
    hangups: Option<HangupSignals>,
    state: Arc<State>,
    observers: Arc<Observers>,
    shutdown: CancellationToken,
) {
    #[cfg(unix)]
    {
        let Some(mut signals) = hangups else { return };
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                received = signals.recv() => if received.is_none() { return },
            }
            // Each outcome is logged where it happens; a failure keeps what is in effect.
            if state.tls.in_use() {
                let _ = crate::state::tls::reload_and_log(&state.tls, "SIGHUP");
            }
            let _ = crate::reload::reload(&state, &observers);
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (hangups, state, observers, shutdown);
    }
}

/// Rotates the audit log on SIGUSR1, as mongod rotates its logs.
async fn rotate_on_sigusr1(observers: Arc<Observers>, shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Some(audit) = observers.audit.as_ref() else { return };
        let Ok(mut signals) = signal(SignalKind::user_defined1()) else { return };
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                received = signals.recv() => if received.is_none() { return },
            }
            match audit.rotate() {
                Ok(aside) => {
                    tracing::info!(target: "CONTROL", id = 23166, rotated = %aside.display(), "Log rotation initiated")
                }
                Err(error) => tracing::warn!(target: "CONTROL", id = 23168, %error, "Audit log rotation failed"),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (observers, shutdown);
    }
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

/// Has the journal synced every [`FLUSH_INTERVAL`] so writes without `j: true` are durable
/// within about 100 ms, as with mongod's default journal commit interval. The journal's own
/// thread syncs; this only asks.
async fn flush_journal(state: Arc<State>, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(FLUSH_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => state.storage.request_flush(),
        }
    }
}

/// mongod's session cache refresh, every `logicalSessionRefreshMillis` (five minutes): the
/// sessions used and ended since the last one are recorded in `config.system.sessions`, and
/// the records of retryable writes of sessions unused for the session timeout go (a driver
/// never retries after that long).
async fn refresh_sessions(state: Arc<State>, shutdown: CancellationToken) {
    let period = Duration::from_millis(state.config.parameters.session_refresh_millis);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(period) => {
                let job = state.clone();
                let refresh = move || {
                    let refreshed = crate::exec::session_records::refresh(&job);
                    let timeout = i64::try_from(crate::state::sessions::SESSION_TIMEOUT.as_millis()).unwrap_or(i64::MAX);
                    let cutoff = bson::DateTime::from_millis(bson::DateTime::now().timestamp_millis().saturating_sub(timeout));
                    (refreshed, job.storage.expire_retryable(cutoff, &|session| job.sessions.contains(&session)))
                };
                let Ok((refreshed, expired)) = tokio::task::spawn_blocking(refresh).await else { continue };
                if let Err(error) = refreshed {
                    tracing::warn!(target: "CONTROL", id = 20714, error = %error, "Failed to refresh session cache, will try again at the next refresh interval");
                }
                match expired {
                    Ok(0) => {}
                    Ok(sessions) => tracing::debug!(target: "REPL", id = 7_000_340, sessions, "Expired the records of retryable writes"),
                    Err(error) => tracing::warn!(target: "REPL", id = 7_000_341, error = %error, "Could not expire the records of retryable writes"),
                }
            }
        }
    }
}

/// mongod's periodic no-op writer: a primary whose oplog has not moved for
/// `periodicNoopIntervalSecs` (10) writes a no-op entry, so that on an idle set the cluster
/// time, change streams' resume points and the oplog's last time still move on.
async fn write_periodic_noops(state: Arc<State>, shutdown: CancellationToken) {
    let period = Duration::from_secs(state.config.parameters.periodic_noop_interval_secs);
    let mut seen = state.repl.cluster_time();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(period) => {
                let now = state.repl.cluster_time();
                let idle_primary = state.repl.state() == Some(crate::repl::MemberState::Primary)
                    && state.storage.oplog.is_on()
                    && now == seen;
                if idle_primary {
                    let job = state.clone();
                    let write = move || job.storage.log(crate::storage::OplogEntry::noop("periodic noop")?);
                    match tokio::task::spawn_blocking(write).await {
                        Ok(Ok(())) | Err(_) => {}
                        Ok(Err(error)) => tracing::warn!(target: "REPL", id = 7_000_342, error = %error, "Could not write the periodic no-op"),
                    }
                }
                seen = state.repl.cluster_time();
            }
        }
    }
}

/// Ends replica-set step-down periods: when one is over, the only member wins the next
/// election, and awaitable `hello`s learn it has a primary again.
async fn end_step_downs(state: Arc<State>, shutdown: CancellationToken) {
    /// How long to wait before trying again when the new term could not be stored.
    const RETRY: Duration = Duration::from_secs(1);
    loop {
        let woken = state.repl.wake.notified();
        let until = state
            .repl
            .next_election()
            .map_or(Duration::from_secs(3600), |at| at.saturating_duration_since(Instant::now()));
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = woken => continue,
            () = tokio::time::sleep(until) => {
                let job = state.clone();
                match tokio::task::spawn_blocking(move || job.repl.elect_if_due(&job.storage, Instant::now())).await {
                    Ok(Ok(true)) => state.topology.advance(),
                    Ok(Ok(false)) | Err(_) => {}
                    Ok(Err(error)) => {
                        tracing::warn!(target: "REPL", id = 21441, error = %error, "Could not store the new term; standing for election again shortly");
                        tokio::time::sleep(RETRY).await;
                    }
                }
            }
        }
    }
}

/// Steps a replica-set member down while the storage engine's database is unreachable (the
/// PostgreSQL engine during a restart or a failover), and has it stand for election once the
/// database is back: drivers wait for a primary instead of failing every operation meanwhile.
async fn follow_storage(state: Arc<State>, shutdown: CancellationToken) {
    /// How often the engine's reachability (an atomic its own watcher sets) is read.
    const CHECK: Duration = Duration::from_millis(100);
    let mut stepped_down = false;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(CHECK) => {}
        }
        let reachable = state.storage.engine_reachable();
        if !reachable && !stepped_down && state.repl.step_down_for_storage() {
            stepped_down = true;
            state.topology.advance();
        } else if reachable && stepped_down {
            stepped_down = false;
            state.repl.storage_returned();
        }
    }
}

/// On a node sharing its database: every `userCacheInvalidationIntervalSecs`, looks whether
/// another node changed a user or role (the storage's principals mark) and, if so, has every
/// connection resolve its privileges again, as mongos refreshes its user cache.
async fn follow_principals(state: Arc<State>, shutdown: CancellationToken) {
    let period = Duration::from_secs(state.config.parameters.user_cache_invalidation_secs.max(1));
    let mut seen = None;
    let mut first = true;
    loop {
        // The first look at once: a change before it would otherwise pass unseen.
        if !std::mem::take(&mut first) {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(period) => {}
            }
        }
        let job = state.clone();
        let read = tokio::task::spawn_blocking(move || {
            let mark = job.storage.principals_mark()?;
            let defined = crate::exec::principals::any_defined(&job.storage)?;
            Ok::<_, crate::error::Error>((mark, defined))
        });
        match read.await {
            Ok(Ok((mark, defined))) => {
                if seen.as_ref().is_some_and(|seen| *seen != mark) {
                    state.authz.changed(defined || state.authz.any_defined());
                }
                seen = Some(mark);
            }
            Ok(Err(error)) => {
                tracing::warn!(target: "ACCESS", id = 7_000_438, %error, "Could not read the user and role changes of other nodes")
            }
            Err(_) => {}
        }
    }
}

/// The TTL monitor: every `ttlMonitorSleepSecs`, deletes documents whose TTL index date is
/// older than its `expireAfterSeconds`.
async fn monitor_ttl(state: Arc<State>, shutdown: CancellationToken) {
    loop {
        // Registered before the period is read, so a new `ttlMonitorSleepSecs` set meanwhile
        // wakes this sleep and the next one uses it.
        let changed = state.params.changed();
        let period = Duration::from_secs(state.params.ttl_monitor_sleep_secs().max(1));
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = changed => continue,
            () = tokio::time::sleep(period) => {
                let storage = state.storage.clone();
                let pass = tokio::task::spawn_blocking(move || storage.delete_expired(bson::DateTime::now())).await;
                if let Ok(Ok(Some(deleted))) = pass {
                    state.counters.ttl_passes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    state.counters.ttl_deleted.fetch_add(deleted, std::sync::atomic::Ordering::Relaxed);
                }
                match pass {
                    // Nothing expired, or another node sharing the database made this pass.
                    Ok(Ok(Some(0) | None)) => {}
                    Ok(Ok(Some(deleted))) => tracing::debug!(target: "INDEX", id = 5479200, deleted, "Deleted expired documents using index"),
                    Ok(Err(error)) => tracing::warn!(target: "INDEX", id = 22540, error = %error, "TTL monitor pass failed"),
                    Err(_) => {}
                }
            }
        }
    }
}

/// Closes cursors and sessions that have been idle too long, and aborts transactions open for
/// longer than `transactionLifetimeLimitSeconds`.
async fn reap_idle(state: Arc<State>, shutdown: CancellationToken) {
    loop {
        // The timeout is read every pass: `setParameter` may change `cursorTimeoutMillis`
        // (and wakes this wait when it does).
        let changed = state.params.changed();
        let cursor_timeout = Duration::from_millis(state.params.cursor_timeout_millis());
        let period = REAP_INTERVAL.min(cursor_timeout / 2).max(Duration::from_millis(10));
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = changed => continue,
            () = tokio::time::sleep(period) => {
                let now = Instant::now();
                let cursors = state.cursors.reap(now, cursor_timeout);
                // As mongod's session reaper: an expired session's cursors close with it.
                let expired = state.sessions.reap(now);
                let sessions = expired.len();
                if !expired.is_empty() {
                    state.cursors.kill_sessions(Some(&expired));
                }
                let transactions = state.transactions.abort_expired(now, state.params.transaction_lifetime());
                if transactions > 0 {
                    tracing::info!(target: "TXN", id = 5_352_201, transactions, "Aborted transactions past their lifetime limit");
                }
                if cursors + sessions > 0 {
                    tracing::debug!(target: "QUERY", id = 20529, cursors, sessions, "Closed idle cursors and sessions");
                }
            }
        }
    }
}
