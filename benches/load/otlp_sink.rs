//! `--otlp-sink`: an OTLP/HTTP receiver inside the harness for measuring tracing's cost. It
//! answers every export at once and counts the spans, so the collector is never what limits
//! the server; the count shows whether the server's exporter kept up (its batch processor
//! drops spans, never requests, when its queue is full).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::BenchResult;
use crate::otlp_receiver::{self, Export};

/// A running receiver: its port and what it has received so far.
pub(crate) struct OtlpSink {
    pub(crate) port: u16,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    /// Requests to another path than OTLP's traces path (a misdirected exporter).
    other_paths: AtomicU64,
    spans: AtomicU64,
    bytes: AtomicU64,
}

impl OtlpSink {
    /// Listens on a free loopback port.
    pub(crate) fn start() -> BenchResult<Self> {
        let counts = Arc::new(Counts::default());
        let shared = counts.clone();
        let port = otlp_receiver::start(move |export: Export| {
            let spans = export.request.map_or(0, |request| {
                request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum::<usize>()
            });
            shared.requests.fetch_add(1, Ordering::Relaxed);
            if export.path != "/v1/traces" {
                shared.other_paths.fetch_add(1, Ordering::Relaxed);
            }
            shared.spans.fetch_add(spans as u64, Ordering::Relaxed);
            shared.bytes.fetch_add(export.bytes as u64, Ordering::Relaxed);
        })?;
        Ok(Self { port, counts })
    }

    /// The monarchd arguments that send spans here.
    pub(crate) fn server_args(&self) -> [String; 2] {
        ["--otlpEndpoint".to_owned(), format!("http://127.0.0.1:{}", self.port)]
    }

    /// Export requests, spans and body bytes received so far, for the report.
    pub(crate) fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "export_requests": self.counts.requests.load(Ordering::Relaxed),
            "requests_to_other_paths": self.counts.other_paths.load(Ordering::Relaxed),
            "spans": self.counts.spans.load(Ordering::Relaxed),
            "bytes": self.counts.bytes.load(Ordering::Relaxed),
        })
    }
}
