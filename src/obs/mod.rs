//! Observability: mongod-shaped logs, the counters behind `serverStatus`, the request
//! tracker, Prometheus metrics, the slow-query log, the profiler, latency statistics and the
//! admin HTTP server.
//!
//! Every finished request goes through [`finish`] once, with its [`tracker::OpSummary`]:
//! metrics, the slow-query log, the profiler and the latency histograms all read that one
//! record.

pub mod admin;
pub mod latency;
pub mod log;
pub mod metrics;
pub mod process;
pub mod profiler;
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
    // One draw decides for the log and the profiler's level 1, so with a sample rate below 1
    // both see the same operations, as in mongod.
    let slow = shared.slow_log.is_slow_and_sampled(summary);
    if slow {
        shared.metrics.record_slow();
        shared.slow_log.write(&shared.log, summary);
    }
    shared.latency.record(summary);
    shared.profiler.observe(slow, summary);
}
