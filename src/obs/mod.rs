//! Observability: mongod-shaped logs, the counters behind `serverStatus`, the request
//! tracker, Prometheus metrics, the slow-query log and the admin HTTP server.
//!
//! Every finished request goes through [`finish`] once, with its [`tracker::OpSummary`]:
//! metrics, the slow-query log (and, later, the profiler) all read that one record.

pub mod admin;
pub mod log;
pub mod metrics;
pub mod process;
pub mod slowlog;
pub mod stats;
pub mod tracker;

use crate::server::Shared;

/// Feeds a finished request to every observer.
pub fn finish(shared: &Shared, summary: &tracker::OpSummary<'_>) {
    if !shared.config.parameters.observability {
        return;
    }
    shared.metrics.record(summary);
    shared.slow_log.observe(&shared.log, summary);
}
