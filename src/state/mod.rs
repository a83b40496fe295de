//! The shared server state: what every connection and handler works with, below the network,
//! command, executor and observability layers and importing none of them.
//!
//! [`State`] holds the storage handle, the configuration and the registries, each a leaf module
//! here: [`counters`] (`serverStatus`), [`cursors`] (parked cursors), [`plan_cache`],
//! [`sessions`], [`failpoints`], [`parameters`] (what `setParameter` changes) and [`pool`]
//! (the threads storage work runs on). The
//! operations in flight live in [`crate::op`], whose types the executor and observability use
//! too; the log sink is [`crate::log`]. Observers (metrics, slow-query log, latency, profiler)
//! are not here: `obs` owns them, and the server hands them to the connections beside this.

pub mod abuse;
pub mod configured;
pub mod counters;
pub mod cursors;
pub mod failpoints;
pub mod parameters;
pub mod plan_cache;
pub mod pool;
pub mod sessions;
pub mod tls;
pub mod topology;
pub mod transactions;

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU16, AtomicU64, Ordering};
use std::time::Instant;

use crate::auth::Authorization;
use crate::config::Config;
use crate::log::LogSink;
use crate::op::OpRegistry;
use crate::repl::Replication;
use crate::storage::Storage;
use abuse::AbuseGuard;
use configured::ConfigInEffect;
use counters::ServerStats;
use cursors::CursorRegistry;
use failpoints::FailPoints;
use parameters::RuntimeParameters;
use plan_cache::PlanCache;
use pool::BlockingPool;
use sessions::SessionCatalog;
use tls::TlsCertificates;
use topology::Topology;

/// State shared by every connection and handler.
pub struct State {
    /// The validated configuration, as read at start.
    pub config: Config,
    /// The configuration in effect after SIGHUP reloads (`/config`).
    pub config_in_effect: ConfigInEffect,
    /// Server parameters that `setParameter` changes while the server runs.
    pub params: RuntimeParameters,
    /// Counters for `serverStatus` and `/metrics`.
    pub counters: ServerStats,
    /// The log, for `getLog` and the log lines handlers write themselves.
    pub log: Arc<LogSink>,
    /// Logical sessions.
    pub sessions: SessionCatalog,
    /// Each session's multi-document transaction.
    pub transactions: transactions::TransactionTable,
    /// The storage engine.
    pub storage: Arc<Storage>,
    /// Open cursors.
    pub cursors: CursorRegistry,
    /// Test fail points (`configureFailPoint`).
    pub failpoints: FailPoints,
    /// Cached query plans.
    pub plans: PlanCache,
    /// Operations in flight (`currentOp`, `killOp`).
    pub ops: OpRegistry,
    /// The threads every handler that may touch storage runs on.
    pub pool: BlockingPool,
    /// Whether authorization is enforced, and the generation of users and roles.
    pub authz: Authorization,
    /// Failed-authentication delays, per-address connection caps, request rate limits.
    pub abuse: AbuseGuard,
    /// The TLS certificates new connections are accepted with (reloadable).
    pub tls: TlsCertificates,
    /// `hello`'s topology version, which awaitable `hello`s wait on.
    pub topology: Topology,
    /// Replica-set mode: the member's state and configuration, and the cluster time.
    pub repl: Replication,
    /// When the server started.
    pub started: Instant,
    /// Backups taken and failed, for `/metrics` (the scheduler's and `createBackup`'s).
    pub backups: Arc<crate::backup::BackupStats>,
    next_connection_id: AtomicU64,
    next_request_id: AtomicI32,
    bound_port: AtomicU16,
}

impl State {
    /// Fresh state for `config` over an opened `storage`, running storage work on `pool`, with
    /// counters for a command table of `commands` rows.
    pub fn new(
        config: Config,
        log: Arc<LogSink>,
        storage: Arc<Storage>,
        pool: BlockingPool,
        commands: usize,
        tls: TlsCertificates,
    ) -> Self {
        storage.oplog.set_history_window(config.parameters.snapshot_history_window_secs);
        storage.set_transaction_lock_timeout_ms(config.parameters.transaction_lock_timeout_ms);
        storage.set_min_available_disk_space_mb(config.parameters.min_available_disk_space_mb);
        Self {
            tls,
            topology: Topology::new(),
            repl: Replication::new(config.repl_set.clone(), config.oplog_size_mb, Arc::clone(&storage.clock))
                .routing(config.pg_shared_nodes),
            storage,
            pool,
            cursors: CursorRegistry::default(),
            failpoints: FailPoints::default(),
            plans: PlanCache::default(),
            ops: OpRegistry::default(),
            bound_port: AtomicU16::new(config.port),
            params: RuntimeParameters::new(&config),
            authz: Authorization::new(config.auth, false),
            abuse: AbuseGuard::new(
                config.max_conns_per_ip,
                config.rate_limit_per_ip.map(f64::from),
                config.rate_limit_per_user.map(f64::from),
            ),
            config_in_effect: ConfigInEffect::new(config.clone()),
            config,
            counters: ServerStats::new(commands),
            log,
            sessions: SessionCatalog::default(),
            transactions: transactions::TransactionTable::default(),
            started: Instant::now(),
            backups: Arc::default(),
            next_connection_id: AtomicU64::new(1),
            next_request_id: AtomicI32::new(1),
        }
    }

    /// The port actually listened on (differs from the configured one when that was 0).
    pub fn port(&self) -> u16 {
        self.bound_port.load(Ordering::Relaxed)
    }

    /// Records the port the wire listener was bound to.
    pub fn set_port(&self, port: u16) {
        self.bound_port.store(port, Ordering::Relaxed);
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
