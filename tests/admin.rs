//! The admin HTTP server: each endpoint's status, content type and body, the JSON bodies
//! checked property for property against `openapi.yaml`, metrics that move with commands, and
//! `/readyz` turning 503 when storage is unwritable or the server drains.

#![expect(clippy::expect_used, reason = "a failed test step must fail the test loudly")]

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{TestServer, eventually};
use futures_util::TryStreamExt;
use mongodb::bson::doc;
use serde_json::Value as Json;
use serde_norway::Value as Yaml;

/// One HTTP answer.
struct Answer {
    status: u16,
    content_type: String,
    body: String,
    /// The body as sent (`body` is it as text, lossily).
    bytes: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Json {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Sends one request over a fresh connection (`Connection: close`) and reads the answer.
fn request(port: u16, method: &str, path: &str) -> Answer {
    request_with(port, method, path, "")
}

/// [`request`] with extra header lines (each ending in `\r\n`).
fn request_with(port: u16, method: &str, path: &str, headers: &str) -> Answer {
    send(port, method, path, headers, "")
}

/// [`request_with`] with a body.
fn send(port: u16, method: &str, path: &str, headers: &str, body: &str) -> Answer {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect admin port");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let length = body.len();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Connection: close\r\nContent-Length: {length}\r\n\r\n{body}"
    )
    .expect("send request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read answer");
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("header end");
    let (head, rest) = raw.split_at(end);
    let (head, bytes) = (String::from_utf8_lossy(head).into_owned(), rest.get(4..).unwrap_or_default().to_vec());
    let body = String::from_utf8_lossy(&bytes).into_owned();
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("status line");
    let content_type = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map(|(_, value)| value.trim().to_owned())
        .unwrap_or_default();
    Answer { status, content_type, body, bytes }
}

fn get(port: u16, path: &str) -> Answer {
    request(port, "GET", path)
}

fn admin_port(server: &TestServer) -> u16 {
    server.admin_port.expect("admin server port in the log")
}

/// The repository's `openapi.yaml`.
fn openapi() -> Yaml {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).expect("openapi.yaml");
    serde_norway::from_str(&text).expect("openapi.yaml parses")
}

/// The schema of `path`'s `status` answer to GET with `content_type`, with `$ref`s resolved.
fn response_schema<'a>(spec: &'a Yaml, path: &str, status: &str, content_type: &str) -> &'a Yaml {
    operation_schema(spec, path, "get", status, content_type)
}

/// [`response_schema`] for `method` (lower case, as openapi.yaml spells it).
#[allow(clippy::indexing_slicing)] // YAML indexing by key never panics (Null when missing)
fn operation_schema<'a>(spec: &'a Yaml, path: &str, method: &str, status: &str, content_type: &str) -> &'a Yaml {
    let schema = &spec["paths"][path][method]["responses"][status]["content"][content_type]["schema"];
    assert!(!schema.is_null(), "openapi.yaml has no {content_type} schema for {status} {method} {path}");
    resolve(spec, schema)
}

#[allow(clippy::indexing_slicing)] // YAML indexing by key never panics (Null when missing)
fn resolve<'a>(spec: &'a Yaml, schema: &'a Yaml) -> &'a Yaml {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.strip_prefix("#/components/schemas/").expect("local schema reference");
            &spec["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// Checks that `value` has exactly the properties `schema` declares (all required, no
/// others), with the declared types and enum values, recursively.
fn check(spec: &Yaml, schema: &Yaml, value: &Json, at: &str) {
    let schema = resolve(spec, schema);
    // `type: [string, "null"]`: null, or the other type.
    let kind = match &schema["type"] {
        Yaml::Sequence(kinds) => {
            if value.is_null() && kinds.iter().any(|kind| kind.as_str() == Some("null")) {
                return;
            }
            kinds.iter().filter_map(Yaml::as_str).find(|kind| *kind != "null").expect("schema type")
        }
        kind => kind.as_str().expect("schema type"),
    };
    match kind {
        // An open object (an example command): any properties.
        "object" if schema["properties"].is_null() => {
            assert!(value.is_object(), "{at}: expected an object, got {value}");
        }
        "array" => {
            let items = value.as_array().unwrap_or_else(|| panic!("{at}: expected an array, got {value}"));
            for (i, item) in items.iter().enumerate() {
                check(spec, &schema["items"], item, &format!("{at}[{i}]"));
            }
        }
        "object" => {
            let object = value.as_object().unwrap_or_else(|| panic!("{at}: expected an object, got {value}"));
            let properties = schema["properties"].as_mapping().expect("object schema has properties");
            let declared: BTreeSet<&str> = properties.keys().filter_map(Yaml::as_str).collect();
            let present: BTreeSet<&str> = object.keys().map(String::as_str).collect();
            assert_eq!(present, declared, "{at}: properties differ from openapi.yaml");
            let required: BTreeSet<&str> =
                schema["required"].as_sequence().expect("required list").iter().filter_map(Yaml::as_str).collect();
            assert_eq!(required, declared, "{at}: openapi.yaml should require every property");
            assert_eq!(schema["additionalProperties"].as_bool(), Some(false), "{at}: closed schema");
            for (name, property) in properties {
                let name = name.as_str().expect("property name");
                check(spec, property, &object[name], &format!("{at}.{name}"));
            }
        }
        "string" => {
            let text = value.as_str().unwrap_or_else(|| panic!("{at}: expected a string, got {value}"));
            if let Some(allowed) = schema["enum"].as_sequence() {
                assert!(allowed.iter().any(|a| a.as_str() == Some(text)), "{at}: {text} not in {allowed:?}");
            }
        }
        "integer" => assert!(value.is_u64() || value.is_i64(), "{at}: expected an integer, got {value}"),
        "number" => assert!(value.is_number(), "{at}: expected a number, got {value}"),
        "boolean" => assert!(value.is_boolean(), "{at}: expected a boolean, got {value}"),
        other => panic!("{at}: schema type {other} not handled by this check"),
    }
}

/// A sample's value in Prometheus text (`name{labels} value`), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The server's error code, for a command error.
fn code(error: &mongodb::error::Error) -> Option<i32> {
    match error.kind.as_ref() {
        mongodb::error::ErrorKind::Command(e) => Some(e.code),
        mongodb::error::ErrorKind::Write(mongodb::error::WriteFailure::WriteError(e)) => Some(e.code),
        _ => None,
    }
}

#[tokio::test]
async fn admin_endpoints_match_openapi() {
    let server = TestServer::start(&[]);
    let port = admin_port(&server);
    assert_ne!(port, server.port);
    let spec = openapi();

    for (path, status) in [("/livez", "200"), ("/readyz", "200"), ("/health", "200"), ("/config", "200")] {
        let answer = get(port, path);
        assert_eq!(answer.status.to_string(), status, "{path}: {}", answer.body);
        assert_eq!(answer.content_type, "application/json", "{path}");
        check(&spec, response_schema(&spec, path, status, "application/json"), &answer.json(), path);
    }
    // /queryStats lists the shapes the server has run, in the declared shape.
    let client = server.client("").await;
    let coll = client.database("qs").collection::<mongodb::bson::Document>("c");
    coll.insert_one(mongodb::bson::doc! { "a": 1 }).await.expect("insert");
    for _ in 0..3 {
        coll.find_one(mongodb::bson::doc! { "a": 1 }).await.expect("find");
    }
    // A request is counted once its reply is sent: poll until the last find is in.
    let counted = |json: &Json| {
        json["queryStats"]
            .as_array()
            .is_some_and(|shapes| shapes.iter().any(|s| s["ns"] == "qs.c" && s["count"].as_u64() >= Some(3)))
    };
    assert!(eventually(Duration::from_secs(10), || counted(&get(port, "/queryStats?limit=5").json())));
    let stats = get(port, "/queryStats?limit=5");
    assert_eq!(stats.status, 200);
    let stats_json = stats.json();
    check(&spec, response_schema(&spec, "/queryStats", "200", "application/json"), &stats_json, "/queryStats");
    assert!(counted(&stats_json), "{stats_json}");

    let health = get(port, "/health").json();
    assert_eq!(health["ready"], Json::Bool(true));
    assert_eq!(health["storage"]["writable"], Json::Bool(true));
    assert_eq!(health["version"]["monarch"], Json::from(env!("CARGO_PKG_VERSION")));
    assert!(health["connections"]["totalCreated"].as_u64().is_some());

    let metrics = get(port, "/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics.content_type.starts_with("text/plain; version=0.0.4"), "{}", metrics.content_type);
    // A fresh server has no database: the families after the empty per-database one remain.
    assert!(metrics.body.contains("\nmonarch_process_threads "), "{}", metrics.body);
    assert!(!spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]["text/plain; version=0.0.4"].is_null());

    let problem = &spec["components"]["schemas"]["Problem"];
    let missing = get(port, "/nope");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.content_type, "application/json");
    check(&spec, problem, &missing.json(), "404");
    let wrong_method = request(port, "POST", "/livez");
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.content_type, "application/json");
    check(&spec, problem, &wrong_method.json(), "405");
}

#[test]
fn admin_port_disabled_serves_nothing() {
    let server = TestServer::start(&["--adminPort", "disabled"]);
    assert_eq!(server.admin_port, None);
    assert!(!server.log_lines().iter().any(|l| l.contains("Admin HTTP server listening")));
}

#[test]
fn admin_port_in_use_stops_startup() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let output = common::run_to_exit(&["--adminPort", &port]);
    // mongod's exit code for a socket it cannot listen on.
    assert_eq!(output.status.code(), Some(48), "{}", String::from_utf8_lossy(&output.stdout));
}

/// Every metric the server exports: the list dashboards and alert rules are built from.
const METRICS: &[&str] = &[
    "monarch_command_duration_seconds_bucket",
    "monarch_command_duration_seconds_count",
    "monarch_command_duration_seconds_sum",
    "monarch_command_errors_total",
    "monarch_documents_total",
    "monarch_examined_total",
    "monarch_slow_queries_total",
    "monarch_build_info",
    "monarch_uptime_seconds",
    "monarch_connections_current",
    "monarch_runtime_alive_tasks",
    "monarch_connections_active",
    "monarch_connections_created_total",
    "monarch_connections_rejected_total",
    "monarch_network_received_bytes_total",
    "monarch_network_sent_bytes_total",
    "monarch_network_physical_received_bytes_total",
    "monarch_network_physical_sent_bytes_total",
    "monarch_network_requests_total",
    "monarch_cursors_open",
    "monarch_cursors_timed_out_total",
    "monarch_pool_workers",
    "monarch_pool_busy_workers",
    "monarch_pool_queue_depth",
    "monarch_pool_queue_capacity",
    "monarch_pool_waiting",
    "monarch_pool_jobs_total",
    "monarch_pool_queue_full_total",
    "monarch_storage_writable",
    "monarch_storage_disk_bytes",
    "monarch_storage_filesystem_size_bytes",
    "monarch_storage_filesystem_available_bytes",
    "monarch_storage_journal_disk_bytes",
    "monarch_storage_journal_files",
    "monarch_storage_write_buffer_bytes",
    "monarch_storage_write_buffer_limit_bytes",
    "monarch_storage_cache_size_bytes",
    "monarch_storage_cache_bytes",
    "monarch_storage_block_cache_capacity_bytes",
    "monarch_storage_block_cache_bytes",
    "monarch_storage_flushes_pending",
    "monarch_storage_compactions_total",
    "monarch_storage_compactions_running",
    "monarch_storage_compaction_seconds_total",
    "monarch_storage_keyspace_disk_bytes",
    "monarch_storage_l0_tables",
    "monarch_storage_tables",
    "monarch_database_data_bytes",
    "monarch_journal_sync_duration_seconds_bucket",
    "monarch_journal_sync_duration_seconds_count",
    "monarch_process_resident_memory_bytes",
    "monarch_process_cpu_seconds_total",
    "monarch_process_open_fds",
    "monarch_process_threads",
    "monarch_connections_rejected_per_ip_total",
    "monarch_auth_failures_total",
    "monarch_auth_delayed_total",
    "monarch_requests_rate_limited_total",
    "monarch_tls_certificate_reloads_total",
    "monarch_backup_scheduled",
    "monarch_backups_total",
    "monarch_backup_last_success_timestamp_seconds",
    "monarch_backup_last_duration_seconds",
    "monarch_backup_last_size_bytes",
    "monarch_backup_oplog_archived_timestamp_seconds",
    "monarch_backup_oplog_archived_entries_total",
    "monarch_backup_oplog_archive_failures_total",
    "monarch_backup_oplog_archive_gaps_total",
];

/// Families exported only by a server with TLS on (tests/tls.rs checks them there).
const TLS_ONLY: &[&str] = &["monarch_tls_certificate_expiry_timestamp_seconds"];

/// Families exported only on the PostgreSQL engine (tests/postgres_failover.rs checks them).
const POSTGRES_ONLY: &[&str] = &[
    "monarch_postgres_requests_total",
    "monarch_postgres_connections_opened_total",
    "monarch_postgres_connections_lost_total",
    "monarch_postgres_connections",
    "monarch_postgres_connections_idle",
    "monarch_postgres_replication_lag_bytes",
];

#[tokio::test]
async fn admin_metrics_move_with_commands() {
    let server = TestServer::start(&["--slowms", "0"]);
    let port = admin_port(&server);
    let before = get(port, "/metrics").body;
    let client = server.client("").await;
    let coll = client.database("shop").collection::<mongodb::bson::Document>("orders");
    coll.insert_many([doc! { "_id": 1, "n": 1 }, doc! { "_id": 2, "n": 2 }]).await.expect("insert");
    let found: Vec<_> = coll.find(doc! { "n": { "$gte": 1 } }).await.expect("find").try_collect().await.expect("docs");
    assert_eq!(found.len(), 2);
    let error = client
        .database("shop")
        .run_command(doc! { "find": "orders", "filter": { "$nope": 1 } })
        .await
        .expect_err("unknown top-level operator");
    assert_eq!(code(&error), Some(2), "mongod's BadValue: {error}");
    // Wait out the 100 ms background flush so a journal sync is recorded too.
    let after = {
        let mut text = String::new();
        assert!(eventually(Duration::from_secs(5), || {
            text = get(port, "/metrics").body;
            sample(&text, "monarch_journal_sync_duration_seconds_count").is_some_and(|n| n > 0.0)
        }));
        text
    };

    for series in [
        "monarch_command_duration_seconds_count{command=\"insert\",result=\"ok\"}",
        "monarch_command_duration_seconds_count{command=\"find\",result=\"ok\"}",
        "monarch_command_duration_seconds_bucket{command=\"find\",result=\"ok\",le=\"+Inf\"}",
        "monarch_documents_total{op=\"inserted\"}",
        "monarch_documents_total{op=\"returned\"}",
        "monarch_command_errors_total{code=\"BadValue\"}",
        "monarch_command_duration_seconds_count{command=\"find\",result=\"BadValue\"}",
        "monarch_examined_total{kind=\"documents\"}",
        "monarch_slow_queries_total",
    ] {
        let old = sample(&before, series).unwrap_or(0.0);
        let new = sample(&after, series).unwrap_or_else(|| panic!("{series} missing after commands:\n{after}"));
        assert!(new > old, "{series}: {old} -> {new}");
    }
    assert_eq!(sample(&after, "monarch_documents_total{op=\"inserted\"}"), Some(2.0));
    assert!(sample(&after, "monarch_connections_current").is_some_and(|n| n >= 1.0));
    assert!(sample(&after, "monarch_database_data_bytes{db=\"shop\"}").is_some_and(|n| n > 0.0));
    assert_eq!(sample(&after, "monarch_storage_writable"), Some(1.0));
    assert!(sample(&after, "monarch_process_resident_memory_bytes").is_some_and(|n| n > 0.0));
    for name in METRICS {
        assert!(after.lines().any(|l| l.starts_with(name)), "{name} missing from /metrics:\n{after}");
    }
    // Every exported family is in the list above, so the list stays the reference.
    for line in after.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let name = line.split(' ').next().unwrap_or_default();
        let listed = METRICS.iter().chain(TLS_ONLY).chain(POSTGRES_ONLY).any(|m| m.starts_with(name));
        assert!(listed, "{name} is exported but not listed");
        assert!(name.starts_with("monarch_"), "{name}");
    }
}

#[tokio::test]
async fn admin_readyz_unavailable_when_storage_unwritable() {
    let server = TestServer::start(&["--setParameter", "enableTestCommands=1"]);
    let port = admin_port(&server);
    assert_eq!(get(port, "/readyz").status, 200);
    server.admin(doc! { "configureFailPoint": "failJournalSync", "mode": "alwaysOn" }).await.expect("fail point");
    let client = server.client("").await;
    let coll = client.database("db").collection::<mongodb::bson::Document>("c");
    let write = coll
        .insert_one(doc! { "x": 1 })
        .with_options(
            mongodb::options::InsertOneOptions::builder()
                .write_concern(mongodb::options::WriteConcern::builder().journal(true).build())
                .build(),
        )
        .await;
    // mongod has no reply for this (it stops the process after a failed fsync); Monarch keeps
    // serving reads and answers writes with 1 InternalError, saying why.
    let error = write.expect_err("a journaled write must fail once syncs fail");
    assert_eq!(code(&error), Some(1), "{error:?}");
    assert!(error.to_string().contains("writes are disabled after a failed journal sync"), "{error}");

    let ready = get(port, "/readyz");
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(ready.content_type, "application/json");
    let spec = openapi();
    check(&spec, response_schema(&spec, "/readyz", "503", "application/json"), &ready.json(), "/readyz 503");
    assert_eq!(ready.json()["status"], Json::from("unavailable"));
    assert!(ready.json()["reason"].as_str().is_some_and(|r| r.contains("journal sync")), "{}", ready.body);

    let health = get(port, "/health").json();
    assert_eq!(health["ready"], Json::Bool(false));
    assert_eq!(health["storage"]["writable"], Json::Bool(false));
    assert_eq!(sample(&get(port, "/metrics").body, "monarch_storage_writable"), Some(0.0));
    // Alive all the same: the orchestrator should stop routing, not restart in a loop.
    assert_eq!(get(port, "/livez").status, 200);
}

#[tokio::test]
async fn admin_readyz_unavailable_while_draining() {
    let mut server = TestServer::start(&["--setParameter", "enableTestCommands=1"]);
    let port = admin_port(&server);
    server
        .admin(doc! {
            "configureFailPoint": "failCommand",
            "mode": { "times": 1 },
            "data": { "failCommands": ["find"], "blockConnection": true, "blockTimeMS": 4000 },
        })
        .await
        .expect("fail point");
    let client = server.client("").await;
    let coll = client.database("db").collection::<mongodb::bson::Document>("c");
    // A request in flight keeps the server draining after SIGTERM.
    let slow = tokio::spawn(async move { coll.find_one(doc! {}).await.map(|_| ()) });
    // Wait until the find is in flight (held by the fail point), so SIGTERM finds it there.
    let admin = client.database("admin");
    let in_flight = common::eventually_async(Duration::from_secs(10), || async {
        let reply = admin.run_command(doc! { "currentOp": 1, "ns": "db.c" }).await.expect("currentOp");
        !reply.get_array("inprog").expect("inprog").is_empty()
    })
    .await;
    assert!(in_flight, "the find never showed in currentOp");
    assert_eq!(get(port, "/readyz").status, 200);
    server.signal_terminate();
    let mut last = String::new();
    let drained = eventually(Duration::from_secs(3), || {
        let answer = get(port, "/readyz");
        last = answer.body.clone();
        answer.status == 503 && last.contains("shutting down")
    });
    assert!(drained, "readyz during the drain: {last}");
    assert_eq!(get(port, "/livez").status, 200, "alive while draining");
    slow.await.expect("join").expect("the in-flight find finishes");
    assert!(server.wait_exit().success());
}

/// The `monarch_*` names a PromQL text uses.
fn metric_names(text: &str) -> BTreeSet<String> {
    let pattern = regex::Regex::new(r"\bmonarch_[a-z0-9_]+").expect("pattern");
    pattern.find_iter(text).map(|m| m.as_str().to_owned()).collect()
}

#[tokio::test]
async fn admin_dashboard_and_alert_rules_use_only_exported_metrics() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dashboard = std::fs::read_to_string(root.join("grafana/dashboards/monarch.json")).expect("dashboard");
    let parsed: Json = serde_json::from_str(&dashboard).expect("dashboard JSON");
    let mut exprs = String::new();
    for panel in parsed["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push_str(target["expr"].as_str().unwrap_or_default());
            exprs.push('\n');
        }
    }
    let rules: Yaml =
        serde_norway::from_str(&std::fs::read_to_string(root.join("grafana/alerts.yml")).expect("alert rules"))
            .expect("alert rules YAML");
    for group in rules["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            exprs.push_str(rule["expr"].as_str().expect("expr"));
            exprs.push('\n');
        }
    }
    let used = metric_names(&exprs);
    assert!(used.len() >= 20, "the dashboard and rules cover the metrics: {used:?}");

    // A server that has stored data and synced its journal exports every family.
    let server = TestServer::start(&["--slowms", "0"]);
    let port = admin_port(&server);
    let client = server.client("").await;
    let coll = client.database("d").collection::<mongodb::bson::Document>("c");
    coll.insert_one(doc! { "a": 1 }).await.expect("insert");
    coll.find_one(doc! { "a": 1 }).await.expect("find");
    // Labelled counters export series once they have one: make an error happen.
    let failed = client.database("d").run_command(doc! { "find": "c", "filter": { "$nope": 1 } }).await;
    assert_eq!(failed.as_ref().map_err(code).err(), Some(Some(2)), "mongod's BadValue: {failed:?}");
    let mut text = String::new();
    assert!(eventually(Duration::from_secs(5), || {
        text = get(port, "/metrics").body;
        sample(&text, "monarch_journal_sync_duration_seconds_count").is_some_and(|n| n > 0.0)
    }));
    for name in used.iter().filter(|n| !TLS_ONLY.contains(&n.as_str()) && !POSTGRES_ONLY.contains(&n.as_str())) {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{name} ")) || l.starts_with(&format!("{name}{{"))),
            "{name} is used by grafana/ but not exported"
        );
    }
}

#[test]
fn admin_endpoints_stay_on_loopback_and_need_the_bearer_token_when_configured() {
    let secrets = tempfile::tempdir().expect("temp dir");
    let token_file = secrets.path().join("admin-token");
    std::fs::write(&token_file, "s3cret-token\n").expect("token file");
    let token_path = token_file.to_string_lossy().into_owned();
    let server = TestServer::start(&["--bind_ip_all", "--adminTokenFile", &token_path]);
    let port = admin_port(&server);
    // --bind_ip_all opens the wire port everywhere, not the admin port.
    let listening = server.log_lines().into_iter().find(|l| l.contains("Admin HTTP server listening")).expect("log");
    let parsed: Json = serde_json::from_str(&listening).expect("json log line");
    assert_eq!(parsed.pointer("/attr/addresses").and_then(Json::as_str), Some(format!("127.0.0.1:{port}").as_str()));
    let spec = openapi();
    for path in ["/metrics", "/health", "/queryStats", "/config", "/debug/tasks", "/debug/pprof/heap"] {
        for headers in ["", "Authorization: Bearer wrong\r\n", "Authorization: s3cret-token\r\n"] {
            let answer = request_with(port, "GET", path, headers);
            assert_eq!(answer.status, 401, "{path} with {headers:?}");
            check(&spec, response_schema(&spec, path, "401", "application/json"), &answer.json(), path);
        }
        let answer = request_with(port, "GET", path, "Authorization: Bearer s3cret-token\r\n");
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
    }
    for probe in ["/livez", "/readyz"] {
        assert_eq!(get(port, probe).status, 200, "{probe}");
    }
    // /config shows that a token is set, never the token.
    let config = request_with(port, "GET", "/config", "Authorization: Bearer s3cret-token\r\n");
    assert!(!config.body.contains("s3cret"), "{}", config.body);
    assert_eq!(config.json()["net"]["adminToken"], Json::from("********"));
    assert_eq!(config.json()["net"]["bindIp"], Json::from("0.0.0.0"), "--bind_ip_all");
}

#[test]
fn security_txt_names_the_configured_contact_without_a_token_and_is_absent_otherwise() {
    let dir = tempfile::tempdir().expect("dir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret-token\n").expect("token");
    let token_path = token_file.to_string_lossy().into_owned();
    let server = TestServer::start(&[
        "--adminTokenFile",
        &token_path,
        "--securityContact",
        "mailto:security@example.com, https://example.com/report",
        "--securityPolicy",
        "https://example.com/disclosure",
    ]);
    let answer = get(admin_port(&server), "/.well-known/security.txt");
    assert_eq!(answer.status, 200, "public, as the probes: {}", answer.body);
    let lines: Vec<&str> = answer.body.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.first().copied(), Some("Contact: mailto:security@example.com"));
    assert_eq!(lines.get(1).copied(), Some("Contact: https://example.com/report"));
    let expires = lines.get(2).and_then(|l| l.strip_prefix("Expires: ")).expect("Expires");
    let expires = mongodb::bson::DateTime::parse_rfc3339_str(expires).expect("RFC 3339");
    let days = (expires.timestamp_millis() - mongodb::bson::DateTime::now().timestamp_millis()) / 86_400_000;
    assert!((360..365).contains(&days), "expires in {days} days: less than a year, as RFC 9116 asks");
    assert_eq!(&lines[3..], ["Policy: https://example.com/disclosure", "Preferred-Languages: en"]);

    let bare = TestServer::start(&[]);
    let answer = get(admin_port(&bare), "/.well-known/security.txt");
    assert_eq!(answer.status, 404);
    check(
        &openapi(),
        response_schema(&openapi(), "/.well-known/security.txt", "404", "application/json"),
        &answer.json(),
        "security.txt",
    );

    let refused = common::run_to_exit(&["--securityContact", "security@example.com"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("'security@example.com' is not a mailto:, https:// or tel: URI"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// `/debug/tasks` lists the operations in flight, longest-running first, with their
/// correlation IDs, beside the runtime's and the blocking pool's figures.
// Multi-threaded: the polling below blocks its thread while the held find runs on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_debug_tasks_shows_what_the_server_is_doing() {
    let server = TestServer::start(&["--setParameter", "enableTestCommands=1"]);
    let port = admin_port(&server);
    let spec = openapi();
    let idle = get(port, "/debug/tasks");
    assert_eq!(idle.status, 200, "{}", idle.body);
    check(&spec, response_schema(&spec, "/debug/tasks", "200", "application/json"), &idle.json(), "/debug/tasks");
    assert!(idle.json()["runtime"]["workers"].as_u64() >= Some(1), "{}", idle.body);

    server
        .admin(doc! {
            "configureFailPoint": "failCommand",
            "mode": { "times": 1 },
            "data": { "failCommands": ["find"], "blockConnection": true, "blockTimeMS": 3000 },
        })
        .await
        .expect("fail point");
    let client = server.client("appName=reports").await;
    let coll = client.database("db").collection::<mongodb::bson::Document>("c");
    let held = tokio::spawn(async move {
        let comment = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        coll.find_one(doc! {}).comment(mongodb::bson::Bson::String(comment.into())).await.map(|_| ())
    });
    let mut answer = Json::Null;
    let shown = eventually(Duration::from_secs(10), || {
        answer = get(port, "/debug/tasks").json();
        answer["operations"].as_array().is_some_and(|ops| ops.iter().any(|op| op["ns"] == "db.c"))
    });
    assert!(shown, "the held find never showed: {answer}");
    check(&spec, response_schema(&spec, "/debug/tasks", "200", "application/json"), &answer, "/debug/tasks");
    let find = answer["operations"].as_array().and_then(|ops| ops.iter().find(|op| op["ns"] == "db.c")).expect("find");
    assert_eq!(find["op"], "query", "{find}");
    assert_eq!(find["appName"], "reports", "{find}");
    assert_eq!(find["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736", "{find}");
    assert!(find["opid"].as_u64().is_some(), "{find}");
    held.await.expect("join").expect("the held find");
}

/// Checks an answer's status and its JSON body against the schema `openapi.yaml` gives it.
fn checked(spec: &Yaml, answer: &Answer, path: &str, method: &str, status: u16) -> Json {
    assert_eq!(answer.status, status, "{method} {path}: {}", answer.body);
    assert_eq!(answer.content_type, "application/json", "{method} {path}");
    let schema = operation_schema(spec, path, method, &status.to_string(), "application/json");
    let json = answer.json();
    check(spec, schema, &json, path);
    json
}

#[tokio::test]
async fn console_pages_answer_from_the_servers_own_commands() {
    let server = TestServer::start(&[]);
    let port = admin_port(&server);
    let spec = openapi();
    // The page: / leads to it, every /ui/<page> is it, its files carry the policy.
    assert_eq!(get(port, "/").status, 302);
    let page = get(port, "/ui/queries");
    assert_eq!((page.status, page.content_type.as_str()), (200, "text/html; charset=utf-8"));
    assert!(page.body.contains("/ui/console.js"), "{}", page.body);
    assert_eq!(get(port, "/ui/vendor/uPlot.iife.min.js").status, 200);
    assert_eq!(get(port, "/ui/nope.js").status, 404);

    let client = server.client("").await;
    let things = client.database("consoletest").collection::<mongodb::bson::Document>("things");
    let docs: Vec<_> = (0..500).map(|x| doc! { "x": x }).collect();
    things.insert_many(docs).await.expect("insert");
    things.create_index(mongodb::IndexModel::builder().keys(doc! { "y": 1 }).build()).await.expect("index");
    for _ in 0..3 {
        let found: Vec<_> =
            things.find(doc! { "x": { "$gt": 495 } }).await.expect("find").try_collect().await.expect("batch");
        assert_eq!(found.len(), 4);
    }
    client
        .database("consoletest")
        .create_collection("recent")
        .pipeline(vec![doc! { "$match": { "x": 1 } }])
        .view_on("things".to_owned())
        .await
        .expect("view");

    // The overview fills once a second; the finds above show as reads.
    let mut overview = Json::Null;
    let sampled = eventually(Duration::from_secs(10), || {
        overview = checked(&spec, &get(port, "/api/overview"), "/api/overview", "get", 200);
        overview["samples"].as_array().is_some_and(|s| s.iter().any(|s| s["opsPerSecond"]["find"].as_f64() > Some(0.0)))
    });
    assert!(sampled, "no sample counted the finds: {overview}");
    // The suite runs a second time on PostgreSQL (.ci/postgres-tests).
    let engine = if std::env::var(common::TEST_PG_URI).is_ok() { "postgres" } else { "fjall" };
    assert_eq!(overview["server"]["engine"], engine);
    assert_eq!(overview["server"]["operator"], false, "nothing guards the port: read-only");
    let reads = overview["samples"]
        .as_array()
        .and_then(|s| s.iter().rev().find(|s| s["latencyMicros"]["reads"]["ops"].as_u64() > Some(0)));
    assert!(reads.is_some_and(|s| s["latencyMicros"]["reads"]["p99"].as_u64() > Some(0)), "{overview}");

    // The find's shape, in full, with the read that draws its plan.
    let mut shapes = Json::Null;
    let listed = eventually(Duration::from_secs(10), || {
        shapes = checked(&spec, &get(port, "/api/shapes"), "/api/shapes", "get", 200);
        shapes["shapes"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["ns"] == "consoletest.things" && s["count"] == 3))
    });
    assert!(listed, "{shapes}");
    let hash = shapes["shapes"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["count"] == 3))
        .map(|s| s["queryShapeHash"].clone())
        .expect("shape");
    let path = format!("/api/shapes/{}", hash.as_str().expect("hash"));
    let shape = checked(&spec, &get(port, &path), "/api/shapes/{queryShapeHash}", "get", 200);
    assert_eq!(shape["plans"][0]["summary"], "COLLSCAN");
    assert_eq!(shape["plans"][0]["count"], 3);
    assert_eq!(shape["samples"].as_array().map(Vec::len), Some(3));
    assert_eq!(shape["samples"][0]["command"]["filter"]["x"]["$gt"], "###", "redacted");
    assert_eq!(
        shape["explainable"]["command"],
        serde_json::json!({ "find": "things", "filter": { "x": { "$gt": "###" } } })
    );
    checked(&spec, &get(port, "/api/shapes/0000000000000000"), "/api/shapes/{queryShapeHash}", "get", 404);

    // Explain with the hint: a scan of 500 to return 4 wants an index on x.
    let body =
        r#"{"db":"consoletest","command":{"find":"things","filter":{"x":{"$gt":495}}},"verbosity":"executionStats"}"#;
    let explained = checked(&spec, &send(port, "POST", "/api/explain", "", body), "/api/explain", "post", 200);
    assert_eq!(explained["explain"]["executionStats"]["totalDocsExamined"], 500);
    assert_eq!(explained["hint"]["suggestedIndex"], serde_json::json!({ "x": 1 }));
    assert_eq!(explained["hint"]["returned"], 4);
    let indexed =
        r#"{"db":"consoletest","command":{"find":"things","filter":{"y":{"$gt":1}}},"verbosity":"executionStats"}"#;
    let explained = checked(&spec, &send(port, "POST", "/api/explain", "", indexed), "/api/explain", "post", 200);
    assert_eq!(explained["hint"], Json::Null, "an index scan earns no hint");
    let write = r#"{"db":"consoletest","command":{"delete":"things","deletes":[{"q":{},"limit":0}]}}"#;
    let refused = checked(&spec, &send(port, "POST", "/api/explain", "", write), "/api/explain", "post", 400);
    assert_eq!((refused["code"].as_i64(), refused["codeName"].as_str()), (Some(2), Some("BadValue")));
    let bad = r#"{"db":"consoletest","command":{"find":"things","filter":{"$bad":1}}}"#;
    let failed = checked(&spec, &send(port, "POST", "/api/explain", "", bad), "/api/explain", "post", 400);
    assert_eq!(failed["codeName"], "BadValue", "mongod's own error for the filter: {failed}");
    assert_eq!(things.count_documents(doc! {}).await.expect("count"), 500, "nothing was deleted");
    assert_eq!(get(port, "/api/explain").status, 405);

    // Collections with their indexes' use; the view without figures.
    let listing = checked(&spec, &get(port, "/api/collections"), "/api/collections", "get", 200);
    let collections = listing["databases"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["name"] == "consoletest"))
        .map(|d| d["collections"].clone())
        .expect("db");
    let named = |name: &str| {
        collections.as_array().and_then(|c| c.iter().find(|c| c["name"] == name)).cloned().expect("collection")
    };
    assert_eq!(named("things")["count"], 500);
    let indexes: Vec<_> =
        named("things")["indexes"].as_array().expect("indexes").iter().map(|i| i["name"].clone()).collect();
    assert_eq!(indexes, ["_id_", "y_1"]);
    assert_eq!((named("recent")["type"].as_str(), named("recent")["count"].is_null()), (Some("view"), true));
    // More collections than a find's first batch (101): listCollections answers them all in its
    // first batch, as mongod does without a batchSize, so all are listed and no cursor stays open.
    let many = client.database("consolemany");
    for i in 0..105 {
        many.create_collection(format!("c{i:03}")).await.expect("create");
    }
    let listing = checked(&spec, &get(port, "/api/collections"), "/api/collections", "get", 200);
    let listed = listing["databases"].as_array().and_then(|d| d.iter().find(|d| d["name"] == "consolemany")).cloned();
    assert_eq!(listed.and_then(|d| d["collections"].as_array().map(Vec::len)), Some(105));
    assert_eq!(server.metric("monarch_cursors_open"), Some(0.0), "the console closed its cursors");

    // The log tail, filtered.
    let log = checked(&spec, &get(port, "/api/log?level=W"), "/api/log", "get", 200);
    assert!(
        log["lines"].as_array().is_some_and(|l| !l.is_empty() && l.iter().all(|l| l["s"] == "W" || l["s"] == "E")),
        "{log}"
    );
    let network = checked(&spec, &get(port, "/api/log?component=NETWORK&limit=2"), "/api/log", "get", 200);
    assert_eq!(network["lines"].as_array().map(Vec::len), Some(2));

    checked(&spec, &get(port, "/api/operations"), "/api/operations", "get", 200);
    // Without a guard, nobody is an operator.
    let refused = send(port, "POST", "/api/killOp", "", r#"{"op":1}"#);
    checked(&spec, &refused, "/api/killOp", "post", 403);
}

// Multi-threaded: the scan's task runs while this one polls the admin port synchronously.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_operator_stops_an_operation_and_a_viewer_needs_the_token() {
    let secrets = tempfile::tempdir().expect("temp dir");
    let token_file = secrets.path().join("admin-token");
    std::fs::write(&token_file, "s3cret-token\n").expect("token file");
    let token_path = token_file.to_string_lossy().into_owned();
    let server = TestServer::start(&["--adminTokenFile", &token_path, "--auth"]);
    let port = admin_port(&server);
    let spec = openapi();
    let bearer = "Authorization: Bearer s3cret-token\r\n";
    // The page loads without the token; its data does not.
    assert_eq!(get(port, "/ui/").status, 200);
    for path in ["/api/overview", "/api/operations", "/api/collections"] {
        checked(&spec, &get(port, path), path, "get", 401);
    }
    let overview = checked(&spec, &request_with(port, "GET", "/api/overview", bearer), "/api/overview", "get", 200);
    assert_eq!(overview["server"]["operator"], true);

    // Under --auth the console's own client reads without a user of its own.
    server.admin(doc! { "createUser": "admin", "pwd": "pw", "roles": ["root"] }).await.expect("user");
    let mut options = mongodb::options::ClientOptions::parse(server.uri("appName=reports")).await.expect("options");
    let credential = mongodb::options::Credential::builder().username("admin".to_owned()).password("pw".to_owned());
    options.credential = Some(credential.source("admin".to_owned()).build());
    let client = mongodb::Client::with_options(options).expect("client");
    let coll = client.database("obs").collection::<mongodb::bson::Document>("big");
    let docs: Vec<_> = (0..20_000).map(|i| doc! { "s": format!("value-{i:06}") }).collect();
    coll.insert_many(docs).await.expect("seed");
    let listing =
        checked(&spec, &request_with(port, "GET", "/api/collections", bearer), "/api/collections", "get", 200);
    assert!(listing.to_string().contains("\"big\""), "{listing}");

    // A scan that runs for seconds, listed by the operations page, stopped by its killOp.
    let clauses: Vec<_> =
        (0..300).map(|i| mongodb::bson::Bson::Document(doc! { "s": { "$regex": format!("^zz{i}.*q+$") } })).collect();
    let scan = tokio::spawn(async move { coll.count_documents(doc! { "$or": clauses }).await });
    let mut opid = None;
    let listed = eventually(Duration::from_secs(20), || {
        let ops = checked(&spec, &request_with(port, "GET", "/api/operations", bearer), "/api/operations", "get", 200);
        opid = ops["inprog"]
            .as_array()
            .and_then(|ops| ops.iter().find(|op| op["ns"] == "obs.big" && op["appName"] == "reports"))
            .and_then(|op| op["opid"].as_i64());
        opid.is_some()
    });
    assert!(listed, "the scan never showed on the operations page");
    let body = format!(r#"{{"op":{}}}"#, opid.expect("opid"));
    checked(&spec, &send(port, "POST", "/api/killOp", bearer, &body), "/api/killOp", "post", 200);
    let error = scan.await.expect("join").expect_err("the scan was killed");
    assert_eq!(code(&error), Some(11601), "{error}");
    checked(&spec, &send(port, "POST", "/api/killOp", bearer, "{}"), "/api/killOp", "post", 400);
}

// Multi-threaded: the load's tasks run while this one waits on the admin port synchronously.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_pprof_profiles_name_monarchs_functions_under_load() {
    let server = TestServer::start(&[]);
    let port = admin_port(&server);
    let spec = openapi();
    let client = server.client("").await;
    let coll = client.database("prof").collection::<mongodb::bson::Document>("c");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = tokio::spawn({
        let stop = stop.clone();
        async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                coll.insert_one(doc! { "a": 1 }).await.expect("insert");
                coll.find_one(doc! { "a": 1 }).await.expect("find");
            }
        }
    });
    let svg = get(port, "/debug/pprof/profile?seconds=2&format=svg");
    assert_eq!((svg.status, svg.content_type.as_str()), (200, "image/svg+xml"), "{}", svg.body);
    assert!(svg.body.contains("monarch::cmd::"), "the flame graph names no command handling");

    // pprof's protobuf, gzipped; its string table holds the function names. Of two profiles
    // asked for at once, one is refused: the sampler is process-wide.
    let both: Vec<_> =
        (0..2).map(|_| std::thread::spawn(move || get(port, "/debug/pprof/profile?seconds=2"))).collect();
    let mut answers: Vec<Answer> = both.into_iter().map(|answer| answer.join().expect("profile")).collect();
    answers.sort_by_key(|answer| answer.status);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.await.expect("load");
    assert_eq!(answers.iter().map(|a| a.status).collect::<Vec<_>>(), [200, 409]);
    check(&spec, &spec["components"]["schemas"]["Problem"], &answers[1].json(), "409");
    let profile = &answers[0];
    assert_eq!(profile.content_type, "application/octet-stream");
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(profile.bytes.as_slice()).read_to_end(&mut decoded).expect("gzip");
    assert!(decoded.windows(13).any(|w| w == b"monarch::cmd:"), "the profile names no command handling");

    let bad = get(port, "/debug/pprof/profile?seconds=0");
    assert_eq!(bad.status, 400);
    check(&spec, &spec["components"]["schemas"]["Problem"], &bad.json(), "400");

    // jemalloc's heap profile: the sampled live allocations with their stacks.
    let heap = get(port, "/debug/pprof/heap");
    assert_eq!((heap.status, heap.content_type.as_str()), (200, "text/plain; charset=utf-8"), "{}", heap.body);
    assert!(heap.body.starts_with("heap_v2/524288"), "{}", heap.body.lines().next().unwrap_or_default());
    assert!(heap.body.contains("\n@ 0x"), "no sampled stack in the heap profile");
}
