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

/// Feeds a request whose reply is ready (not yet sent) to the profiler: mongod writes the
/// `system.profile` entry before it replies. Returns the slow-operation draw when the profiler
/// used one, for [`finish`] to reuse; `None` (and no work past one atomic load) while nothing
/// is profiled.
pub fn before_reply(shared: &Shared, summary: &tracker::OpSummary<'_>) -> Option<bool> {
    if !shared.profiler.active() || !shared.config.parameters.observability {
        return None;
    }
    let slow = shared.slow_log.is_slow_and_sampled(summary);
    shared.profiler.observe(slow, summary);
    Some(slow)
}

/// Feeds a finished request to every observer. `profiled` is what [`before_reply`] returned:
/// when it is set the profiler has seen this request already, and its slow-operation draw
/// decides for the log too.
pub fn finish(shared: &Shared, summary: &tracker::OpSummary<'_>, profiled: Option<bool>) {
    if !shared.config.parameters.observability {
        return;
    }
    shared.metrics.record(summary);
    // One draw decides for the log and the profiler's level 1, so with a sample rate below 1
    // both see the same operations, as in mongod.
    let slow = profiled.unwrap_or_else(|| shared.slow_log.is_slow_and_sampled(summary));
    if slow {
        shared.metrics.record_slow();
        shared.slow_log.write(&shared.log, summary);
    }
    shared.latency.record(summary);
    if profiled.is_none() {
        // A request that ended without a reply (moreToCome, a closed connection).
        shared.profiler.observe(slow, summary);
    }
}
