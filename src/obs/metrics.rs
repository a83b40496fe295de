//! Prometheus metrics, fed from each finished request's [`OpSummary`] and, at scrape time,
//! from the server's own counters (so no figure is counted twice). No label carries a user
//! value: commands are the command table's names (or `unknown`), results are error code
//! names. The one exception is `monarch_database_data_bytes{db}`: database names, bounded by
//! the databases that exist.
//!
//! Figures kept elsewhere (the server's counters and cursors as [`ServerFigures`], the engine,
//! `/proc/self`) are read at scrape time into fresh, unregistered metrics
//! ([`Metrics::encode_with`]), never mirrored into counters of their own.

use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{
    Counter, Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts,
    Registry, TextEncoder,
};

use std::path::Path;
use std::time::Duration;

use super::process::ProcessStats;
use super::summary::OpSummary;
use crate::storage::Storage;
use crate::version::COMPATIBLE_VERSION;

/// Latency buckets of `monarch_command_duration_seconds`: 50 µs to 10 s.
const DURATION_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets of `monarch_journal_sync_duration_seconds`: 100 µs to 5 s (a healthy fsync takes
/// about a millisecond; seconds mean a failing or saturated disk).
const SYNC_BUCKETS: &[f64] =
    &[0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// The server's metrics registry.
pub struct Metrics {
    registry: Registry,
    journal_sync: Histogram,
    command_duration: HistogramVec,
    errors: IntCounterVec,
    documents: IntCounterVec,
    examined: IntCounterVec,
    slow_queries: prometheus::IntCounter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every request metric registered.
    pub fn new() -> Self {
        let registry = Registry::new();
        let command_duration = HistogramVec::new(
            HistogramOpts::new(
                "monarch_command_duration_seconds",
                "Command latency, from decoded request to written reply",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["command", "result"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        let errors =
            counter("monarch_command_errors_total", "Commands answered with an error, by error code name", &["code"]);
        let documents =
            counter("monarch_documents_total", "Documents inserted, updated, deleted and returned to clients", &["op"]);
        let examined = counter("monarch_examined_total", "Index keys and documents read to answer queries", &["kind"]);
        let slow_queries = prometheus::IntCounter::new(
            "monarch_slow_queries_total",
            "Operations at least slowms long (and sampled): the lines of the slow-query log",
        )
        .unwrap_or_else(|_| unreachable_metric());
        let journal_sync = Histogram::with_opts(
            HistogramOpts::new("monarch_journal_sync_duration_seconds", "Journal fsyncs and their latency")
                .buckets(SYNC_BUCKETS.to_vec()),
        )
        .unwrap_or_else(|_| unreachable_metric());
        for collector in [
            Box::new(journal_sync.clone()) as Box<dyn Collector>,
            Box::new(command_duration.clone()),
            Box::new(errors.clone()),
            Box::new(documents.clone()),
            Box::new(examined.clone()),
            Box::new(slow_queries.clone()),
        ] {
            // Names are fixed and distinct: registration cannot fail.
            let _ = registry.register(collector);
        }
        Self { registry, journal_sync, command_duration, errors, documents, examined, slow_queries }
    }

    /// The journal sync histogram, handed to storage as its sync observer.
    pub fn journal_sync(&self) -> Histogram {
        self.journal_sync.clone()
    }

    /// `monarch_tracing_spans_total`, registered now: exported only by a server that traces
    /// (`--otlpEndpoint`), so its absence says tracing is off.
    pub fn tracing_spans(&self) -> IntCounterVec {
        let spans = counter(
            "monarch_tracing_spans_total",
            "OpenTelemetry spans by outcome: recorded (sampled), exported (accepted by the collector), failed (export failed); recorded minus the others is queued or dropped from a full queue",
            &["outcome"],
        );
        // Registered once per server, under a name no other family has: cannot fail.
        let _ = self.registry.register(Box::new(spans.clone()));
        spans
    }

    /// Counts a slow (logged) operation.
    pub fn record_slow(&self) {
        self.slow_queries.inc();
    }

    /// Records a finished request.
    pub fn record(&self, summary: &OpSummary<'_>) {
        let result = summary.error.map_or("ok", |code| code.name());
        self.command_duration.with_label_values(&[summary.command, result]).observe(summary.duration.as_secs_f64());
        if let Some(code) = summary.error {
            self.errors.with_label_values(&[code.name()]).inc();
        }
        let docs = &summary.op.docs;
        let load = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
        for (op, n) in [
            ("inserted", load(&docs.inserted)),
            ("updated", load(&docs.updated)),
            ("deleted", load(&docs.deleted)),
            ("returned", load(&docs.returned)),
        ] {
            if n > 0 {
                self.documents.with_label_values(&[op]).inc_by(n);
            }
        }
        if summary.keys_examined > 0 {
            self.examined.with_label_values(&["keys"]).inc_by(summary.keys_examined);
        }
        if summary.docs_examined > 0 {
            self.examined.with_label_values(&["documents"]).inc_by(summary.docs_examined);
        }
    }

    /// The registry, for collectors registered elsewhere (server, storage and process
    /// metrics read at scrape time).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Everything in the Prometheus text format.
    pub fn encode(&self) -> String {
        self.encode_with(Vec::new())
    }

    /// The registry's metrics and `extra` families, in the Prometheus text format.
    pub fn encode_with(&self, extra: Vec<MetricFamily>) -> String {
        let mut families = self.registry.gather();
        // IMPORTANT: the text encoder stops at a family without samples (a labeled gauge with
        // no rows, e.g. no database yet) and drops everything after it.
        families.extend(extra.into_iter().filter(|family| !family.get_metric().is_empty()));
        let mut out = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&families, &mut out) {
            // Families are built here from fixed definitions; a failure is a bug to see.
            tracing::warn!(target: "FTDC", id = 7_000_003, error = %error, "Cannot encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The server's own figures at scrape time, read by the caller from its counters and
/// registries: observability does not reach into the shared state.
#[derive(Debug, Clone, Default)]
pub struct ServerFigures {
    /// Time since the server started.
    pub uptime: Duration,
    /// Client connections open now.
    pub connections_current: u64,
    /// Client connections running a request now.
    pub connections_active: u64,
    /// Client connections accepted since start.
    pub connections_created: u64,
    /// Client connections refused at the `maxConns` limit.
    pub connections_rejected: u64,
    /// Client connections refused at the `maxConnsPerIP` limit.
    pub connections_rejected_per_ip: u64,
    /// Failed authentications.
    pub auth_failures: u64,
    /// Failed authentications answered after a delay.
    pub auth_delayed: u64,
    /// Requests refused by the per-address rate limit.
    pub rate_limited_ip: u64,
    /// Requests refused by the per-user rate limit.
    pub rate_limited_user: u64,
    /// The server certificate's expiry (seconds since the epoch), when TLS is on.
    pub tls_not_after: Option<i64>,
    /// Certificate reloads (SIGHUP, `rotateCertificates`) that succeeded.
    pub tls_reloads_ok: u64,
    /// Certificate reloads that failed (the old certificates stayed).
    pub tls_reloads_failed: u64,
    /// Message bytes received, as if uncompressed.
    pub bytes_in: u64,
    /// Message bytes sent, as if uncompressed.
    pub bytes_out: u64,
    /// Bytes read from client sockets.
    pub physical_bytes_in: u64,
    /// Bytes written to client sockets.
    pub physical_bytes_out: u64,
    /// Messages received.
    pub requests: u64,
    /// Cursors open now.
    pub cursors_open: usize,
    /// Cursors closed for being idle too long, since start.
    pub cursors_timed_out: u64,
    /// The blocking pool's worker threads.
    pub pool_workers: u64,
    /// Of them, running a job now.
    pub pool_busy: u64,
    /// Jobs queued for a worker.
    pub pool_queued: u64,
    /// The queue's slots.
    pub pool_queue_capacity: u64,
    /// Requests waiting for a queue slot (the queue was full).
    pub pool_waiting: u64,
    /// Jobs run since start.
    pub pool_jobs: u64,
    /// Submissions that found the queue full, since start.
    pub pool_queue_full: u64,
    /// Tasks alive in the async runtime (one per connection, plus the listeners and the
    /// background tasks); `None` when read outside the runtime. A count that stays above its
    /// idle level after clients leave is a task leak.
    pub runtime_tasks: Option<u64>,
    /// Whether the server takes scheduled backups (`--backupSchedule`).
    pub backup_scheduled: bool,
    /// Backups completed since start (scheduled and `createBackup`).
    pub backups_completed: u64,
    /// Backups that failed since start.
    pub backups_failed: u64,
    /// When the newest successful backup was taken, milliseconds since the epoch (0: none).
    pub backup_last_success_unix_millis: u64,
    /// How long the last successful backup took, in milliseconds.
    pub backup_last_duration_millis: u64,
    /// The last successful backup's size in bytes.
    pub backup_last_bytes: u64,
    /// The time (seconds since the epoch) of the newest oplog entry archived for
    /// point-in-time recovery; 0 before the first.
    pub oplog_archived_through_seconds: u64,
    /// Oplog entries archived since start.
    pub oplog_archived_entries: u64,
    /// Oplog archive runs that failed since start.
    pub oplog_archive_failures: u64,
    /// Gaps since start: oplog entries dropped before they were archived.
    pub oplog_archive_gaps: u64,
}

/// Everything `/metrics` serves: the registry plus `figures`, the engine's figures and the
/// process's, read now. Blocking (engine calls): run it off the async workers.
pub fn scrape(metrics: &Metrics, figures: &ServerFigures, storage: &Storage, dbpath: &Path) -> String {
    let mut out = Families::default();
    out.gauge_labeled(
        "monarch_build_info",
        "Always 1; the labels carry the reported mongod version and Monarch's own",
        &["version", "monarch_version"],
        [(vec![COMPATIBLE_VERSION, env!("CARGO_PKG_VERSION")], 1.0)],
    );
    out.gauge("monarch_uptime_seconds", "Seconds since the server started", figures.uptime.as_secs_f64());
    out.gauge("monarch_connections_current", "Client connections open now", figures.connections_current as f64);
    if let Some(tasks) = figures.runtime_tasks {
        out.gauge("monarch_runtime_alive_tasks", "Tasks alive in the async runtime", tasks as f64);
    }
    out.gauge(
        "monarch_connections_active",
        "Client connections running a request now",
        figures.connections_active as f64,
    );
    for (name, help, value) in [
        ("monarch_connections_created_total", "Client connections accepted since start", figures.connections_created),
        (
            "monarch_connections_rejected_total",
            "Client connections refused at the maxConns limit",
            figures.connections_rejected,
        ),
        (
            "monarch_connections_rejected_per_ip_total",
            "Client connections refused at the maxConnsPerIP limit",
            figures.connections_rejected_per_ip,
        ),
        ("monarch_auth_failures_total", "Failed authentications", figures.auth_failures),
        (
            "monarch_auth_delayed_total",
            "Failed authentications answered after a delay (repeated failures from one address)",
            figures.auth_delayed,
        ),
        ("monarch_network_received_bytes_total", "Message bytes received, as if uncompressed", figures.bytes_in),
        ("monarch_network_sent_bytes_total", "Message bytes sent, as if uncompressed", figures.bytes_out),
        ("monarch_network_physical_received_bytes_total", "Bytes read from client sockets", figures.physical_bytes_in),
        ("monarch_network_physical_sent_bytes_total", "Bytes written to client sockets", figures.physical_bytes_out),
        ("monarch_network_requests_total", "Messages received", figures.requests),
    ] {
        out.counter(name, help, value);
    }
    out.counter_labeled(
        "monarch_requests_rate_limited_total",
        "Requests refused by a rate limit (--rateLimitPerIP, --rateLimitPerUser), by limit",
        &["scope"],
        [(vec!["address"], figures.rate_limited_ip), (vec!["user"], figures.rate_limited_user)],
    );
    if let Some(not_after) = figures.tls_not_after {
        out.gauge(
            "monarch_tls_certificate_expiry_timestamp_seconds",
            "When the server's TLS certificate expires, in seconds since the epoch",
            not_after as f64,
        );
    }
    out.counter_labeled(
        "monarch_tls_certificate_reloads_total",
        "TLS certificate reloads (SIGHUP, rotateCertificates), by result",
        &["result"],
        [(vec!["ok"], figures.tls_reloads_ok), (vec!["failed"], figures.tls_reloads_failed)],
    );
    out.gauge("monarch_cursors_open", "Cursors open now", figures.cursors_open as f64);
    out.counter("monarch_cursors_timed_out_total", "Cursors closed for being idle too long", figures.cursors_timed_out);
    pool_families(&mut out, figures);
    backup_families(&mut out, figures);
    storage_families(&mut out, storage, dbpath);
    process_families(&mut out, ProcessStats::read());
    metrics.encode_with(out.0)
}

/// The blocking pool that runs storage work: a growing queue depth (or waiting requests) with
/// every worker busy means storage cannot keep up.
fn pool_families(out: &mut Families, figures: &ServerFigures) {
    for (name, help, value) in [
        ("monarch_pool_workers", "Worker threads of the blocking pool that runs storage work", figures.pool_workers),
        ("monarch_pool_busy_workers", "Blocking pool workers running a job now", figures.pool_busy),
        ("monarch_pool_queue_depth", "Jobs queued for a blocking pool worker", figures.pool_queued),
        ("monarch_pool_queue_capacity", "Slots of the blocking pool's queue", figures.pool_queue_capacity),
        ("monarch_pool_waiting", "Requests waiting for a slot in the blocking pool's full queue", figures.pool_waiting),
    ] {
        out.gauge(name, help, value as f64);
    }
    out.counter("monarch_pool_jobs_total", "Jobs run on the blocking pool", figures.pool_jobs);
    out.counter(
        "monarch_pool_queue_full_total",
        "Blocking pool submissions that found the queue full and waited",
        figures.pool_queue_full,
    );
}

/// The PostgreSQL engine's connections and its database's standbys.
fn postgres_families(out: &mut Families, postgres: &crate::storage::PostgresStats) {
    out.counter(
        "monarch_postgres_requests_total",
        "Requests sent to PostgreSQL: a point read, a scan's chunk, a snapshot's start, a batch's transaction",
        postgres.requests,
    );
    out.counter(
        "monarch_postgres_connections_opened_total",
        "Connections to PostgreSQL opened",
        postgres.connections_opened,
    );
    out.counter(
        "monarch_postgres_connections_lost_total",
        "Connections to PostgreSQL found lost (a restart or a failover); their operations got 11602",
        postgres.connections_lost,
    );
    out.gauge("monarch_postgres_connections", "Connections to PostgreSQL open now", postgres.connections_open as f64);
    out.gauge(
        "monarch_postgres_connections_idle",
        "Connections to PostgreSQL idle in the pool now",
        postgres.connections_idle as f64,
    );
    // One series per standby: a handful at most.
    out.gauge_labeled(
        "monarch_postgres_replication_lag_bytes",
        "Bytes of WAL each standby of the PostgreSQL primary has yet to replay",
        &["standby", "sync_state"],
        postgres.standbys.iter().map(|(name, sync, lag)| (vec![name.as_str(), sync.as_str()], *lag as f64)),
    );
}

fn storage_families(out: &mut Families, storage: &Storage, dbpath: &Path) {
    out.gauge(
        "monarch_storage_writable",
        "1 while the storage accepts writes; 0 after a failed journal sync or engine write, and while the disk is below its free-space reserve",
        f64::from(u8::from(storage.is_writable())),
    );
    match storage.engine_stats() {
        Ok(engine) => {
            out.gauge(
                "monarch_storage_disk_bytes",
                "Bytes the storage engine occupies on disk",
                engine.disk_bytes as f64,
            );
            out.gauge(
                "monarch_storage_journal_disk_bytes",
                "Bytes of the engine's journal",
                engine.journal_disk_bytes as f64,
            );
            out.gauge("monarch_storage_journal_files", "Journal files on disk", engine.journal_files as f64);
            out.gauge(
                "monarch_storage_write_buffer_bytes",
                "Bytes in memtables not yet flushed to disk",
                engine.write_buffer_bytes as f64,
            );
            let budget = storage.memory_budget();
            let usage = storage.memory_usage();
            out.gauge(
                "monarch_storage_cache_size_bytes",
                "The storage engine's memory budget (--cacheSizeGB): block cache and write buffers together",
                budget.total_bytes as f64,
            );
            out.gauge(
                "monarch_storage_cache_bytes",
                "Bytes in the block cache and the write buffers now",
                usage.total_bytes() as f64,
            );
            out.gauge(
                "monarch_storage_block_cache_capacity_bytes",
                "The block cache's share of the memory budget",
                budget.block_cache_bytes as f64,
            );
            out.gauge(
                "monarch_storage_block_cache_bytes",
                "Bytes of table blocks in the block cache",
                usage.block_cache_bytes as f64,
            );
            out.gauge(
                "monarch_storage_write_buffer_limit_bytes",
                "The write buffers' share of the memory budget",
                budget.write_buffer_bytes as f64,
            );
            out.gauge("monarch_storage_flushes_pending", "Memtable flushes queued", engine.pending_flushes as f64);
            out.counter(
                "monarch_storage_compactions_total",
                "Compactions finished since start",
                engine.compactions_completed as u64,
            );
            out.gauge(
                "monarch_storage_compactions_running",
                "Compactions running now",
                engine.compactions_running as f64,
            );
            out.counter_f64(
                "monarch_storage_compaction_seconds_total",
                "Time spent compacting since start",
                engine.compaction_time.as_secs_f64(),
            );
            // The keyspace label is one of three fixed names.
            out.gauge_labeled(
                "monarch_storage_keyspace_disk_bytes",
                "Bytes on disk of each engine keyspace",
                &["keyspace"],
                engine.keyspaces.iter().map(|k| (vec![k.name], k.disk_bytes as f64)),
            );
            out.gauge_labeled(
                "monarch_storage_l0_tables",
                "Level-0 tables per keyspace; the engine slows, then stalls, writes as they pile up",
                &["keyspace"],
                engine.keyspaces.iter().map(|k| (vec![k.name], k.l0_tables as f64)),
            );
            out.gauge_labeled(
                "monarch_storage_tables",
                "Tables in all levels per keyspace",
                &["keyspace"],
                engine.keyspaces.iter().map(|k| (vec![k.name], k.tables as f64)),
            );
            if let Some(postgres) = &engine.postgres {
                postgres_families(out, postgres);
            }
        }
        Err(error) => {
            tracing::warn!(target: "STORAGE", id = 7_000_001, error = %error, "Cannot read storage engine figures for metrics")
        }
    }
    match rustix::fs::statvfs(dbpath) {
        Ok(fs) => {
            let block = fs.f_frsize as f64;
            out.gauge(
                "monarch_storage_filesystem_size_bytes",
                "Size of the filesystem holding --dbpath",
                fs.f_blocks as f64 * block,
            );
            out.gauge(
                "monarch_storage_filesystem_available_bytes",
                "Bytes still available to the server on the filesystem holding --dbpath",
                fs.f_bavail as f64 * block,
            );
        }
        Err(error) => {
            tracing::warn!(target: "STORAGE", id = 7_000_003, error = %error, "Cannot read the dbpath filesystem's size for metrics")
        }
    }
    match storage.database_sizes() {
        // Database names as a label: bounded by the databases that exist, and the only way
        // to see which database grows.
        Ok(sizes) => {
            out.gauge_labeled(
                "monarch_database_data_bytes",
                "BSON bytes of the documents stored in each database (databases share the engine's files; monarch_storage_disk_bytes is the total on disk)",
                &["db"],
                sizes.iter().map(|(db, bytes)| (vec![db.as_str()], *bytes as f64)),
            );
        }
        Err(error) => {
            tracing::warn!(target: "STORAGE", id = 7_000_002, error = %error, "Cannot read database sizes for metrics")
        }
    }
}

fn process_families(out: &mut Families, process: ProcessStats) {
    if let Some(bytes) = process.resident_bytes {
        out.gauge("monarch_process_resident_memory_bytes", "Resident set size of the server process", bytes as f64);
    }
    if let Some(seconds) = process.cpu_seconds {
        out.counter_f64("monarch_process_cpu_seconds_total", "User and system CPU time of the server process", seconds);
    }
    if let Some(fds) = process.open_fds {
        out.gauge("monarch_process_open_fds", "Open file descriptors of the server process", fds as f64);
    }
    if let Some(threads) = process.threads {
        out.gauge("monarch_process_threads", "OS threads of the server process", threads as f64);
    }
}

/// The backups' figures: exported whether or not backups are scheduled, so the alert on a
/// missing backup can say "scheduled and none recent" (see grafana/alerts.yml).
fn backup_families(out: &mut Families, figures: &ServerFigures) {
    out.gauge(
        "monarch_backup_scheduled",
        "1 when the server takes scheduled backups (--backupSchedule), else 0",
        if figures.backup_scheduled { 1.0 } else { 0.0 },
    );
    out.counter_labeled(
        "monarch_backups_total",
        "Backups since start (scheduled ones and createBackup), by result",
        &["result"],
        [(vec!["ok"], figures.backups_completed), (vec!["failed"], figures.backups_failed)],
    );
    out.gauge(
        "monarch_backup_last_success_timestamp_seconds",
        "When the newest successful backup was taken (at start, the newest in --backupPath), in seconds since the epoch; 0 when none is known",
        figures.backup_last_success_unix_millis as f64 / 1000.0,
    );
    out.gauge(
        "monarch_backup_last_duration_seconds",
        "How long the last successful backup took",
        figures.backup_last_duration_millis as f64 / 1000.0,
    );
    out.gauge(
        "monarch_backup_last_size_bytes",
        "The size of the last successful backup",
        figures.backup_last_bytes as f64,
    );
    out.gauge(
        "monarch_backup_oplog_archived_timestamp_seconds",
        "The time of the newest oplog entry archived for point-in-time recovery, in seconds since the epoch; 0 before the first",
        figures.oplog_archived_through_seconds as f64,
    );
    out.counter(
        "monarch_backup_oplog_archived_entries_total",
        "Oplog entries archived for point-in-time recovery since start",
        figures.oplog_archived_entries,
    );
    out.counter(
        "monarch_backup_oplog_archive_failures_total",
        "Oplog archive runs that failed since start",
        figures.oplog_archive_failures,
    );
    out.counter(
        "monarch_backup_oplog_archive_gaps_total",
        "Oplog entries dropped (the oplog is capped) before the archive took them, since start: point-in-time recovery cannot cross such a gap",
        figures.oplog_archive_gaps,
    );
}

/// Metric families built at scrape time from values read now: each is a fresh metric, never
/// registered, so nothing is kept between scrapes.
#[derive(Default)]
struct Families(Vec<MetricFamily>);

impl Families {
    fn counter(&mut self, name: &str, help: &str, value: u64) {
        let metric = IntCounter::new(name, help).unwrap_or_else(|_| unreachable_metric());
        metric.inc_by(value);
        self.0.extend(metric.collect());
    }

    fn counter_f64(&mut self, name: &str, help: &str, value: f64) {
        let metric = Counter::new(name, help).unwrap_or_else(|_| unreachable_metric());
        metric.inc_by(value);
        self.0.extend(metric.collect());
    }

    fn gauge(&mut self, name: &str, help: &str, value: f64) {
        let metric = Gauge::new(name, help).unwrap_or_else(|_| unreachable_metric());
        metric.set(value);
        self.0.extend(metric.collect());
    }

    fn gauge_labeled<'a>(
        &mut self,
        name: &str,
        help: &str,
        labels: &[&str],
        rows: impl IntoIterator<Item = (Vec<&'a str>, f64)>,
    ) {
        let metric = GaugeVec::new(Opts::new(name, help), labels).unwrap_or_else(|_| unreachable_metric());
        for (values, value) in rows {
            // A label count mismatch is a programming error; the unit tests cover every call.
            if let Ok(gauge) = metric.get_metric_with_label_values(&values) {
                gauge.set(value);
            }
        }
        self.0.extend(metric.collect());
    }

    fn counter_labeled<'a>(
        &mut self,
        name: &str,
        help: &str,
        labels: &[&str],
        rows: impl IntoIterator<Item = (Vec<&'a str>, u64)>,
    ) {
        let metric = counter(name, help, labels);
        for (values, value) in rows {
            // A label count mismatch is a programming error; the unit tests cover every call.
            if let Ok(counter) = metric.get_metric_with_label_values(&values) {
                counter.inc_by(value);
            }
        }
        self.0.extend(metric.collect());
    }
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|_| unreachable_metric())
}

/// Metric definitions are constants; a malformed one is a programming error caught by the
/// unit tests below, never by a request.
fn unreachable_metric<T>() -> T {
    panic!("invalid metric definition")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_define_and_encode() {
        let metrics = Metrics::new();
        metrics.command_duration.with_label_values(&["find", "ok"]).observe(0.001);
        let text = metrics.encode();
        assert!(
            text.contains("monarch_command_duration_seconds_bucket{command=\"find\",result=\"ok\",le=\"0.00005\"}"),
            "{text}"
        );
    }

    #[test]
    fn metrics_scrape_without_databases_keeps_later_families() {
        let server = crate::testkit::TestServer::new();
        let text = server.metrics_text();
        assert!(!text.contains("monarch_database_data_bytes"), "{text}");
        assert!(text.contains("monarch_process_threads"), "{text}");
    }

    #[test]
    fn metrics_scrape_reads_server_figures() {
        let server = crate::testkit::TestServer::new();
        server.counters.connections.rejected.fetch_add(3, std::sync::atomic::Ordering::Relaxed);
        server.run_command(bson::doc! { "insert": "c", "documents": [{ "_id": 1 }], "$db": "shop" });
        server.storage.flush();
        let text = server.metrics_text();
        for needle in [
            "monarch_connections_rejected_total 3",
            "# TYPE monarch_connections_rejected_total counter",
            "# TYPE monarch_connections_current gauge",
            "monarch_database_data_bytes{db=\"shop\"}",
            "monarch_storage_keyspace_disk_bytes{keyspace=\"docs\"}",
            "monarch_storage_l0_tables{keyspace=\"index\"}",
            "monarch_storage_writable 1",
            "monarch_journal_sync_duration_seconds_count",
            "monarch_build_info{monarch_version=",
            "monarch_cursors_timed_out_total 0",
            "monarch_storage_cache_size_bytes 268435456",
            "monarch_storage_block_cache_capacity_bytes 201326592",
            "monarch_storage_write_buffer_limit_bytes 67108864",
            "# TYPE monarch_storage_block_cache_bytes gauge",
            "# TYPE monarch_storage_cache_bytes gauge",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
    }
}
