//! Observability: the observers every finished request feeds (Prometheus metrics, the
//! slow-query log, the profiler, latency statistics), owned together by [`Observers`].
//!
//! Observers see a request only through its [`OpSummary`], built once by the connection: they
//! never reach into the shared state or the command layer. Server-wide figures for `/metrics`
//! come in the same way, as a [`metrics::ServerFigures`] the caller reads.

pub mod audit;
pub mod correlation;
pub mod latency;
pub mod metrics;
pub mod otel;
pub mod process;
pub mod profiler;
pub mod slowlog;
pub mod summary;

use std::path::Path;
use std::sync::Arc;

pub use summary::OpSummary;

use crate::config::Config;
use crate::log::LogSink;
use crate::storage::Storage;
use latency::LatencyStats;
use metrics::{Metrics, ServerFigures};
use profiler::{ProfileEntry, Profiler};
use slowlog::SlowLog;

/// Every observer of finished requests. Handlers may read and change the settings and
/// statistics commands expose (`profile`, `monarchQueryStats`, `opLatencies`); the metrics
/// registry stays private, fed only here and read only by [`Observers::metrics_text`].
pub struct Observers {
    metrics: Metrics,
    /// The slow-query log's threshold and sample rate.
    pub slow_log: SlowLog,
    /// Latency histograms (`opLatencies`, `latencyStats`) and per-query-shape statistics.
    pub latency: LatencyStats,
    /// The database profiler (`profile`, `system.profile`).
    pub profiler: Profiler,
    /// Where slow-query lines go.
    log: Arc<LogSink>,
    /// `monarchObservability`: off only to measure what the observers cost.
    enabled: bool,
    /// The audit log, when configured.
    pub audit: Option<audit::AuditLog>,
    /// Operations' spans, when tracing is on (`--otlpEndpoint`).
    tracing: Option<otel::Tracing>,
}

impl Observers {
    /// Observers configured by `config`, logging to `log`; the profiler writes through
    /// `storage`, whose journal syncs are timed into the metrics.
    pub fn new(config: &Config, log: Arc<LogSink>, storage: Arc<Storage>) -> Self {
        let metrics = Metrics::new();
        let journal_sync = metrics.journal_sync();
        storage.set_sync_observer(Box::new(move |elapsed| journal_sync.observe(elapsed.as_secs_f64())));
        Self {
            metrics,
            slow_log: SlowLog::new(&config.profiling, config.redact_client_log_data),
            latency: LatencyStats::default(),
            profiler: Profiler::new(config.profiling.level, storage),
            log,
            enabled: config.parameters.observability,
            audit: None,
            tracing: None,
        }
    }

    /// The observers with `audit` as their audit log.
    #[must_use]
    pub fn with_audit(mut self, audit: Option<audit::AuditLog>) -> Self {
        self.audit = audit;
        self
    }

    /// The observers, exporting operations' spans as `config` says when it says to (`port`:
    /// the server's, for the spans' `server.port`).
    ///
    /// # Errors
    /// When the exporter cannot be built.
    pub fn with_tracing(
        mut self,
        config: Option<&crate::config::TracingConfig>,
        port: u16,
    ) -> Result<Self, otel::TracingError> {
        if let Some(config) = config {
            self.tracing = Some(otel::Tracing::start(config, port, self.metrics.tracing_spans())?);
        }
        Ok(self)
    }

    /// Sends the spans still queued to the collector (at shutdown); blocking.
    pub fn flush_spans(&self) {
        if let Some(tracing) = &self.tracing {
            tracing.shutdown();
        }
    }

    /// The journal-sync histogram now: `(upper bound in seconds, syncs at or below it)`,
    /// cumulative, ending with `(+∞, all syncs)`.
    pub fn journal_sync_buckets(&self) -> Vec<(f64, u64)> {
        use prometheus::core::Collector;
        let mut buckets = Vec::new();
        for family in self.metrics.journal_sync().collect() {
            for metric in family.get_metric() {
                let histogram = metric.get_histogram();
                buckets.extend(histogram.get_bucket().iter().map(|b| (b.upper_bound(), b.cumulative_count())));
                buckets.push((f64::INFINITY, histogram.get_sample_count()));
            }
        }
        buckets
    }

    /// Whether the profiler may want a request before its reply is sent: one atomic load, so
    /// a request pays nothing more while no database is profiled.
    pub fn profiling(&self) -> bool {
        self.enabled && self.profiler.active()
    }

    /// Feeds a request whose reply is ready (not yet sent) to the profiler: mongod writes the
    /// `system.profile` entry before it replies. Returns the slow-operation draw when the
    /// profiler used one, for [`Observers::finish`] to reuse (`None` while nothing is
    /// profiled), and the entry the caller must store with [`Profiler::write`] before replying.
    pub fn before_reply(&self, summary: &OpSummary<'_>) -> (Option<bool>, Option<ProfileEntry>) {
        if !self.profiling() {
            return (None, None);
        }
        let slow = self.slow_log.is_slow_and_sampled(summary);
        (Some(slow), self.profiler.observe(slow, summary))
    }

    /// Feeds a finished request to every observer. `profiled` is what
    /// [`Observers::before_reply`] returned: when it is set the profiler has seen this request
    /// already, and its slow-operation draw decides for the log too. Returns a profile entry
    /// for a request that ended without a reply, for the caller to store with
    /// [`Profiler::write`].
    #[must_use]
    pub fn finish(&self, summary: &OpSummary<'_>, profiled: Option<bool>) -> Option<ProfileEntry> {
        // Before the switch below: `monarchObservability` measures the built-in observers;
        // tracing is asked for on its own (`--otlpEndpoint`).
        if let Some(tracing) = &self.tracing {
            tracing.record(summary);
        }
        if !self.enabled {
            return None;
        }
        self.metrics.record(summary);
        // One draw decides for the log and the profiler's level 1, so with a sample rate below 1
        // both see the same operations, as in mongod.
        let slow = profiled.unwrap_or_else(|| self.slow_log.is_slow_and_sampled(summary));
        if slow {
            self.metrics.record_slow();
            self.slow_log.write(&self.log, summary);
        }
        self.latency.record(summary);
        // A request that ended without a reply (moreToCome, a closed connection).
        profiled.is_none().then(|| self.profiler.observe(slow, summary)).flatten()
    }

    /// Everything `/metrics` serves, in the Prometheus text format: the request metrics, then
    /// `figures`, the engine's figures from `storage` and the filesystem holding `dbpath`, and
    /// the process's. Blocking (engine calls): run it off the async workers.
    pub fn metrics_text(&self, figures: &ServerFigures, storage: &Storage, dbpath: &Path) -> String {
        metrics::scrape(&self.metrics, figures, storage, dbpath)
    }
}
