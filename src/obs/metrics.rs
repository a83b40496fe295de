//! Prometheus metrics, fed from each finished request's [`OpSummary`] and, at scrape time,
//! from the server's own counters (so no figure is counted twice). No label carries a user
//! value: commands are the command table's names (or `unknown`), results are error code
//! names.

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

use super::tracker::OpSummary;

/// Latency buckets of `monarch_command_duration_seconds`: 50 µs to 10 s.
const DURATION_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The server's metrics registry.
pub struct Metrics {
    registry: Registry,
    command_duration: HistogramVec,
    errors: IntCounterVec,
    documents: IntCounterVec,
    examined: IntCounterVec,
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
        for collector in [
            Box::new(command_duration.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(errors.clone()),
            Box::new(documents.clone()),
            Box::new(examined.clone()),
        ] {
            // Names are fixed and distinct: registration cannot fail.
            let _ = registry.register(collector);
        }
        Self { registry, command_duration, errors, documents, examined }
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
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
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
}
