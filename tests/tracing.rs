//! OpenTelemetry tracing (`--otlpEndpoint`): the spans of operations reach an OTLP/HTTP
//! receiver started here (`common::otlp_receiver`), which decodes them with OpenTelemetry's
//! own protobuf types.

#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestServer;
use common::otlp_receiver::{self, Export};
use mongodb::bson::{Bson, Document, doc};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind, status::StatusCode};

/// The client's trace: the ids of a `traceparent` its comment carries.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// The spans an OTLP/HTTP receiver took, with each export's path and resource.
struct Receiver {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

#[derive(Clone)]
struct Received {
    path: String,
    service_name: Option<String>,
    span: Span,
}

impl Receiver {
    fn start() -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        let port = otlp_receiver::start(move |export: Export| {
            let request = export.request.expect("an OTLP trace export");
            for resource_spans in request.resource_spans {
                let service_name = resource_spans
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| string_value(kv.value.as_ref()?.value.as_ref()?));
                for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
                    let (path, service_name) = (export.path.clone(), service_name.clone());
                    sink.lock().expect("received spans").push(Received { path, service_name, span });
                }
            }
        })
        .expect("start the receiver");
        Self { port, received }
    }

    fn spans(&self) -> Vec<Received> {
        self.received.lock().expect("received spans").clone()
    }

    /// Waits for a span that `wanted` picks.
    fn wait_for(&self, wanted: impl Fn(&Span) -> bool) -> Option<Span> {
        let mut found = None;
        common::eventually(Duration::from_secs(20), || {
            found = self.spans().into_iter().map(|r| r.span).find(|s| wanted(s));
            found.is_some()
        });
        found
    }
}

fn string_value(value: &Value) -> Option<String> {
    match value {
        Value::StringValue(text) => Some(text.clone()),
        _ => None,
    }
}

/// The attribute `key` of `span`, as a string or an integer's decimal text.
fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span.attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()?;
    match value {
        Value::IntValue(n) => Some(n.to_string()),
        other => string_value(other),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The children of `parent`, by name.
fn children<'a>(spans: &'a [Received], parent: &Span) -> Vec<&'a Span> {
    spans.iter().map(|r| &r.span).filter(|s| s.parent_span_id == parent.span_id).collect()
}

/// A server exporting its spans to `endpoint`, with `args` besides, and a short batch delay
/// (the SDK's `OTEL_BSP_SCHEDULE_DELAY`, in ms) so that spans arrive within a test's polls.
fn traced_server(endpoint: &str, args: &[&str]) -> TestServer {
    let dir = tempfile::tempdir().expect("dir");
    let args: Vec<&str> = ["--otlpEndpoint", endpoint].into_iter().chain(args.iter().copied()).collect();
    TestServer::start_with_env(dir, &[("OTEL_BSP_SCHEDULE_DELAY", "100")], &args)
}

fn traceparent(trace_id: &str, flags: &str) -> String {
    format!("00-{trace_id}-{PARENT_ID}-{flags}")
}

#[tokio::test]
async fn tracing_exports_a_find_span_whose_parent_is_the_comments_traceparent() {
    let receiver = Receiver::start();
    let endpoint = format!("http://127.0.0.1:{}", receiver.port);
    let server = traced_server(&endpoint, &[]);
    let client = server.client("").await;
    let db = client.database("tracing");
    let orders = db.collection::<Document>("orders");
    let docs: Vec<Document> = (0..20).map(|i| doc! { "_id": i, "x": i }).collect();
    orders.insert_many(docs).await.expect("seed");

    // Not sampled by its caller: no span, even at the default ratio of 1.
    let unsampled = "1af92f3577b34da6a3ce929d0e0e4736";
    let comment = Bson::String(traceparent(unsampled, "00"));
    orders.find_one(doc! { "x": 1 }).comment(comment).await.expect("find");
    let comment = Bson::String(format!("checkout page; traceparent={}", traceparent(TRACE_ID, "01")));
    let found: Vec<Document> = {
        use futures_util::TryStreamExt as _;
        let cursor = orders.find(doc! { "x": { "$gte": 15 } }).comment(comment).await.expect("find");
        cursor.try_collect().await.expect("results")
    };
    assert_eq!(found.len(), 5);

    let find = receiver
        .wait_for(|s| s.name == "find orders" && hex(&s.trace_id) == TRACE_ID)
        .expect("the find's span reaches the receiver");
    assert_eq!(hex(&find.parent_span_id), PARENT_ID, "the comment's span is the parent");
    assert_eq!(find.kind, SpanKind::Server as i32);
    for (key, value) in [
        ("db.system", "mongodb"),
        ("db.system.name", "mongodb"),
        ("db.operation.name", "find"),
        ("db.namespace", "tracing"),
        ("db.collection.name", "orders"),
        ("server.port", &server.port.to_string()),
        ("db.response.returned_rows", "5"),
        ("monarch.docs_examined", "20"),
        ("monarch.plan_summary", "COLLSCAN"),
    ] {
        assert_eq!(attribute(&find, key).as_deref(), Some(value), "{key}");
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("host name");
    assert_eq!(attribute(&find, "server.address").as_deref(), Some(host.trim()));
    assert_eq!(attribute(&find, "db.response.status_code"), None, "no code on success");
    assert_ne!(find.status.as_ref().map(|s| s.code), Some(StatusCode::Error as i32));

    // The phases, as children inside the operation's interval; planning under execution.
    let spans = receiver.spans();
    let phases = children(&spans, &find);
    let named = |name: &str| phases.iter().find(|s| s.name == name).copied();
    for name in ["parse", "execute", "encode"] {
        let phase = named(name).unwrap_or_else(|| panic!("a {name} span"));
        assert_eq!(phase.kind, SpanKind::Internal as i32, "{name}");
        assert!(phase.start_time_unix_nano >= find.start_time_unix_nano, "{name} starts inside");
        assert!(phase.end_time_unix_nano <= find.end_time_unix_nano, "{name} ends inside");
    }
    let execute = named("execute").expect("execute");
    assert!(named("parse").expect("parse").end_time_unix_nano <= execute.start_time_unix_nano);
    assert!(execute.end_time_unix_nano <= named("encode").expect("encode").start_time_unix_nano);
    let plan = children(&spans, execute).into_iter().find(|s| s.name == "plan").expect("a plan span under execute");
    assert_eq!(plan.start_time_unix_nano, execute.start_time_unix_nano);

    let all = receiver.spans();
    assert!(all.iter().all(|r| hex(&r.span.trace_id) != unsampled), "the unsampled trace has no span");
    assert!(all.iter().all(|r| r.path == "/v1/traces"), "a bare endpoint gets OTLP's traces path");
    assert!(all.iter().all(|r| r.service_name.as_deref() == Some("monarchd")));
    // With no traceparent, an operation starts its own trace (the seed's insert).
    let insert = all.iter().find(|r| r.span.name == "insert orders").expect("the seed's insert span");
    assert!(insert.span.parent_span_id.is_empty());
    assert_ne!(hex(&insert.span.trace_id), TRACE_ID);
    // The spans the receiver took are counted as exported.
    let exported = || server.metric("monarch_tracing_spans_total{outcome=\"exported\"}").unwrap_or(0.0);
    let received = all.len() as f64;
    assert!(
        common::eventually(Duration::from_secs(5), || exported() >= received),
        "{} exported, {received} received",
        exported()
    );
    assert_eq!(server.metric("monarch_tracing_spans_total{outcome=\"failed\"}"), Some(0.0));
}

#[tokio::test]
async fn tracing_to_an_unreachable_collector_logs_once_and_counts_the_lost_spans() {
    // A port nothing listens on: every export is refused.
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port();
    let endpoint = format!("http://127.0.0.1:{closed}");
    let server = traced_server(&endpoint, &[]);
    let client = server.client("").await;
    let coll = client.database("tracing").collection::<Document>("lost");
    let failed = || server.metric("monarch_tracing_spans_total{outcome=\"failed\"}").unwrap_or(0.0);
    // Several failed batches, each after more operations.
    for round in 0..3 {
        coll.insert_one(doc! { "round": round }).await.expect("the server serves on");
        let before = failed();
        assert!(common::eventually(Duration::from_secs(20), || failed() > before), "round {round}: spans fail");
    }
    let lines: Vec<String> = server.log_lines().into_iter().filter(|l| l.contains("\"id\":7000142")).collect();
    assert_eq!(lines.len(), 1, "one line a minute at most: {lines:?}");
    let line: serde_json::Value = serde_json::from_str(&lines[0]).expect("a JSON line");
    assert_eq!(line["s"], "W");
    assert_eq!(line["attr"]["endpoint"], format!("{endpoint}/v1/traces"));
    assert!(line["attr"]["spansLost"].as_u64().is_some_and(|n| n > 0), "{line}");
    assert_eq!(server.metric("monarch_tracing_spans_total{outcome=\"exported\"}"), Some(0.0));
    assert!(server.metric("monarch_tracing_spans_total{outcome=\"recorded\"}").is_some_and(|n| n >= failed()));
}

#[tokio::test]
async fn tracing_shows_a_writes_commit_and_journal_wait_and_a_failures_code() {
    let receiver = Receiver::start();
    let endpoint = format!("http://127.0.0.1:{}/v1/traces", receiver.port);
    let server = traced_server(&endpoint, &[]);
    let client = server.client("").await;
    let db = client.database("tracing");
    let journaled = mongodb::options::WriteConcern::builder().journal(true).build();
    let trace_id = "5cf92f3577b34da6a3ce929d0e0e4736";
    db.collection::<Document>("events")
        .insert_one(doc! { "_id": 1 })
        .write_concern(journaled)
        .comment(Bson::Document(doc! { "traceparent": traceparent(trace_id, "01") }))
        .await
        .expect("insert");
    let insert =
        receiver.wait_for(|s| s.name == "insert events" && hex(&s.trace_id) == trace_id).expect("the insert's span");
    let spans = receiver.spans();
    let execute = children(&spans, &insert).into_iter().find(|s| s.name == "execute").expect("execute");
    let mut under_execute: Vec<&str> = children(&spans, execute).iter().map(|s| s.name.as_str()).collect();
    under_execute.sort_unstable();
    // The commit, then the wait for its journal sync (`j: true`; on PostgreSQL, its durable
    // commit), at the end of the execution.
    assert_eq!(under_execute, ["journal wait", "storage"]);

    let failing_trace = "6df92f3577b34da6a3ce929d0e0e4736";
    let failed = db
        .run_command(doc! { "find": "events", "filter": { "$bogus": 1 }, "comment": traceparent(failing_trace, "01") })
        .await
        .expect_err("an unknown operator");
    assert_eq!(common::error_code(&failed), Some(2));
    let find = receiver
        .wait_for(|s| s.name == "find events" && hex(&s.trace_id) == failing_trace)
        .expect("the failed find's span");
    assert_eq!(find.kind, SpanKind::Server as i32);
    assert_eq!(attribute(&find, "db.response.status_code").as_deref(), Some("2"));
    assert_eq!(attribute(&find, "error.type").as_deref(), Some("BadValue"));
    let status = find.status.as_ref().expect("a status");
    assert_eq!((status.code, status.message.as_str()), (StatusCode::Error as i32, "BadValue"));
}

#[tokio::test]
async fn tracing_at_ratio_zero_follows_only_sampled_callers() {
    let receiver = Receiver::start();
    let endpoint = format!("http://127.0.0.1:{}", receiver.port);
    let server = traced_server(&endpoint, &["--otlpSamplingRatio", "0"]);
    let client = server.client("").await;
    let coll = client.database("tracing").collection::<Document>("ratio");
    for _ in 0..50 {
        coll.find_one(doc! {}).await.expect("find");
    }
    let trace_id = "7ef92f3577b34da6a3ce929d0e0e4736";
    coll.find_one(doc! {}).comment(Bson::String(traceparent(trace_id, "01"))).await.expect("find");
    receiver.wait_for(|s| hex(&s.trace_id) == trace_id).expect("the sampled caller's span");
    let traced: Vec<String> = receiver.spans().iter().map(|r| hex(&r.span.trace_id)).collect();
    assert!(traced.iter().all(|t| t == trace_id), "only the sampled caller's trace: {traced:?}");
}
