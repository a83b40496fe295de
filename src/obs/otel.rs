//! Tracing: an OpenTelemetry span for each finished operation, with child spans for its
//! phases, exported over OTLP/HTTP to `--otlpEndpoint` by the SDK's batch processor (its own
//! thread, so a slow collector never holds a request worker; when its queue is full, spans
//! are dropped, never requests). `monarch_tracing_spans_total` counts spans recorded,
//! exported and failed; a failing collector is logged at most once a minute.
//!
//! Spans are built when the operation has finished, from its summary, with explicit times:
//! an operation the sampler leaves out costs one sampling decision at its end and nothing
//! while it runs. The tracker measures phases as durations, not as intervals, so the child
//! spans lay them out in the order they happen: parse, then execute (planning at its start,
//! the commit and then the journal wait at its end), then encode. A write that commits
//! several batches shows its commits as one storage span.
//!
//! Attributes follow OpenTelemetry's database semantic conventions (`db.*`, `server.*`,
//! `error.type`); Monarch's own are under `monarch.`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider, SpanData, SpanExporter};
use prometheus::{IntCounter, IntCounterVec};

use super::OpSummary;
use crate::config::TracingConfig;
use crate::op::Phases;
use crate::op::trace_parent::TraceParent;

/// How long shutdown waits for the last spans to reach the collector.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// The least time between two log lines about failed exports.
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Why tracing could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot export spans to {endpoint}: {reason}")]
pub struct TracingError {
    endpoint: String,
    reason: String,
}

/// The tracer of a server started with `--otlpEndpoint`.
pub struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    /// Spans sampled and handed to the exporter's queue.
    recorded: IntCounter,
    spans: IntCounterVec,
    /// `server.address`: the host name drivers reach.
    host: &'static str,
    /// `server.port`: the port the server listens on.
    port: i64,
}

impl Tracing {
    /// Starts exporting to `config.endpoint`, sampling as `config` says: an operation whose
    /// comment carries a `traceparent` is traced when its caller samples it (OpenTelemetry's
    /// parent-based sampling), any other by the ratio over its trace id. `port` is the
    /// server's, for `server.port`; `spans` is `monarch_tracing_spans_total`. The exporter
    /// also honours the SDK's `OTEL_BSP_*` batch settings and `OTEL_EXPORTER_OTLP_HEADERS`
    /// (collector credentials) from the environment.
    pub fn start(config: &TracingConfig, port: u16, spans: IntCounterVec) -> Result<Self, TracingError> {
        let otlp = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(config.endpoint.clone())
            .build()
            .map_err(|error| TracingError { endpoint: config.endpoint.clone(), reason: error.to_string() })?;
        let exporter = CountingExporter {
            inner: otlp,
            exported: spans.with_label_values(&["exported"]),
            failed: spans.with_label_values(&["failed"]),
            endpoint: config.endpoint.clone(),
            failure_log: Mutex::new(None),
            failed_unlogged: AtomicU64::new(0),
        };
        let host = crate::host::hostname();
        let resource = Resource::builder()
            .with_service_name("monarchd")
            .with_attributes([
                KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
                KeyValue::new("service.instance.id", format!("{host}:{port}")),
            ])
            .build();
        let provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sampling_ratio))))
            .with_resource(resource)
            .with_batch_exporter(exporter)
            .build();
        let scope = InstrumentationScope::builder("monarch").with_version(env!("CARGO_PKG_VERSION")).build();
        let tracer = provider.tracer_with_scope(scope);
        let recorded = spans.with_label_values(&["recorded"]);
        Ok(Self { provider, tracer, recorded, spans, host, port: i64::from(port) })
    }

    /// Exports the spans of the finished operation `summary`, if it is sampled.
    pub fn record(&self, summary: &OpSummary<'_>) {
        let op = summary.op;
        let parent = op
            .trace
            .as_ref()
            .and_then(remote_parent)
            .map_or_else(Context::new, |remote| Context::new().with_remote_span_context(remote));
        let end = SystemTime::now();
        let start = end.checked_sub(op.started.elapsed()).unwrap_or(end);
        let mut root = self
            .tracer
            .span_builder(summary.command)
            .with_kind(SpanKind::Server)
            .with_start_time(start)
            .start_with_context(&self.tracer, &parent);
        if !root.is_recording() {
            return;
        }
        let collection =
            op.ns.strip_prefix(op.db.as_str()).and_then(|ns| ns.strip_prefix('.')).filter(|c| *c != "$cmd");
        // The conventions' span name: the operation and its target.
        root.update_name(format!("{} {}", summary.command, collection.unwrap_or(&op.db)));
        root.set_attributes(self.attributes(summary, collection));
        if let Some(code) = summary.error {
            root.set_status(Status::error(code.name()));
        }
        self.recorded.inc();
        let operation = parent.with_span(root);
        phase_spans(&self.tracer, &self.recorded, &operation, start, &summary.phases);
        operation.span().end_with_timestamp(end);
    }

    /// The operation span's attributes.
    fn attributes(&self, summary: &OpSummary<'_>, collection: Option<&str>) -> Vec<KeyValue> {
        let op = summary.op;
        let mut attributes = vec![
            // `db.system` as the issue and older conventions name it; `db.system.name` is its
            // name since the conventions' 1.33.
            KeyValue::new("db.system", "mongodb"),
            KeyValue::new("db.system.name", "mongodb"),
            KeyValue::new("db.operation.name", summary.command),
            KeyValue::new("db.namespace", op.db.clone()),
            KeyValue::new("server.address", self.host),
            KeyValue::new("server.port", self.port),
            KeyValue::new("client.address", op.client.ip().to_string()),
            KeyValue::new("client.port", i64::from(op.client.port())),
            KeyValue::new("db.response.returned_rows", i64::try_from(summary.returned()).unwrap_or(i64::MAX)),
            KeyValue::new("monarch.opid", i64::from(op.op_id)),
            KeyValue::new("monarch.keys_examined", i64::try_from(summary.keys_examined).unwrap_or(i64::MAX)),
            KeyValue::new("monarch.docs_examined", i64::try_from(summary.docs_examined).unwrap_or(i64::MAX)),
        ];
        if let Some(collection) = collection {
            attributes.push(KeyValue::new("db.collection.name", collection.to_owned()));
        }
        if let Some(code) = summary.error {
            // The conventions: the database's own code, as a string, and the error's class.
            attributes.push(KeyValue::new("db.response.status_code", code.code().to_string()));
            attributes.push(KeyValue::new("error.type", code.name()));
        }
        if let Some(plan) = &summary.plan {
            attributes.push(KeyValue::new("monarch.plan_summary", plan.summary.clone()));
        }
        if let Some(app) = &op.app_name {
            attributes.push(KeyValue::new("monarch.app_name", app.clone()));
        }
        attributes
    }

    /// Exports what is still queued, waiting at most five seconds, and logs the spans that
    /// never reached the collector; blocking.
    pub fn shutdown(&self) {
        if let Err(error) = self.provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
            tracing::warn!(target: "CONTROL", id = 7_000_140, %error, "The span exporter did not shut down cleanly");
        }
        let count = |outcome: &str| self.spans.with_label_values(&[outcome]).get();
        let (recorded, exported, failed) = (count("recorded"), count("exported"), count("failed"));
        if exported < recorded {
            tracing::warn!(
                target: "CONTROL",
                id = 7_000_141,
                recorded,
                exported,
                failed,
                dropped = recorded.saturating_sub(exported + failed),
                "Not every span reached the collector: failed exports, or dropped from a full queue"
            );
        }
    }
}

/// The caller's span as the parent of an operation's span.
fn remote_parent(trace: &TraceParent) -> Option<SpanContext> {
    let trace_id = TraceId::from_hex(&trace.trace_id).ok()?;
    let span_id = SpanId::from_hex(&trace.parent_id).ok()?;
    let flags = if trace.sampled { TraceFlags::SAMPLED } else { TraceFlags::NOT_SAMPLED };
    Some(SpanContext::new(trace_id, span_id, flags, true, TraceState::default()))
}

/// The phase spans under `operation`, which started at `start` (see the module's comment for
/// how they are laid out), each counted in `recorded`. Phases that took no time get no span.
fn phase_spans(tracer: &SdkTracer, recorded: &IntCounter, operation: &Context, start: SystemTime, phases: &Phases) {
    let begin = |parent: &Context, name: &'static str, from: SystemTime| {
        recorded.inc();
        tracer.span_builder(name).with_kind(SpanKind::Internal).with_start_time(from).start_with_context(tracer, parent)
    };
    let child = |parent: &Context, name: &'static str, from: SystemTime, spent: Duration| {
        if !spent.is_zero() {
            begin(parent, name, from).end_with_timestamp(from + spent);
        }
    };
    child(operation, "parse", start, phases.parse);
    let execute_start = start + phases.parse;
    let execute_end = execute_start + phases.execute;
    if !phases.execute.is_zero() {
        let execution = operation.with_span(begin(operation, "execute", execute_start));
        child(&execution, "plan", execute_start, phases.plan);
        let journal_start = execute_end.checked_sub(phases.journal).unwrap_or(execute_start).max(execute_start);
        let storage_start = journal_start.checked_sub(phases.storage).unwrap_or(execute_start).max(execute_start);
        child(&execution, "storage", storage_start, journal_start.duration_since(storage_start).unwrap_or_default());
        child(&execution, "journal wait", journal_start, phases.journal.min(phases.execute));
        execution.span().end_with_timestamp(execute_end);
    }
    child(operation, "encode", execute_end, phases.encode);
}

/// The OTLP exporter, counting the spans it exports and fails to, and logging failures at
/// most once a minute (a collector that is down fails every batch).
#[derive(Debug)]
struct CountingExporter {
    inner: opentelemetry_otlp::SpanExporter,
    exported: IntCounter,
    failed: IntCounter,
    endpoint: String,
    /// When the last failure was logged.
    failure_log: Mutex<Option<Instant>>,
    /// Spans failed since that line.
    failed_unlogged: AtomicU64,
}

impl CountingExporter {
    fn note_failure(&self, spans: u64, error: &dyn std::fmt::Display) {
        self.failed.inc_by(spans);
        let failed = self.failed_unlogged.fetch_add(spans, Ordering::Relaxed) + spans;
        let mut last = self.failure_log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|at| at.elapsed() < FAILURE_LOG_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        self.failed_unlogged.fetch_sub(failed, Ordering::Relaxed);
        tracing::warn!(
            target: "CONTROL",
            id = 7_000_142,
            endpoint = %self.endpoint,
            %error,
            spansLost = failed,
            "Cannot export spans to the OTLP collector; logged at most once a minute"
        );
    }
}

impl SpanExporter for CountingExporter {
    fn export(&self, batch: Vec<SpanData>) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let spans = batch.len() as u64;
        let export = self.inner.export(batch);
        async move {
            let outcome = export.await;
            match &outcome {
                Ok(()) => self.exported.inc_by(spans),
                Err(error) => self.note_failure(spans, error),
            }
            outcome
        }
    }

    fn shutdown_with_timeout(&mut self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&mut self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_parents_keep_the_callers_ids_and_sampled_flag() {
        let parent = TraceParent {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            parent_id: "00f067aa0ba902b7".into(),
            sampled: false,
        };
        let remote = remote_parent(&parent).expect("a valid parent");
        assert_eq!(remote.trace_id().to_string(), parent.trace_id);
        assert_eq!(remote.span_id().to_string(), parent.parent_id);
        assert!(remote.is_remote() && !remote.is_sampled());
    }
}
