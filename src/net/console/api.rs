//! The console's JSON endpoints under `/api/`: what each page draws. Everything a page shows
//! about the data comes from the server's own commands (run by [`super::commands`]), so the
//! console never disagrees with what a driver would be told.

use std::net::SocketAddr;
use std::sync::Arc;

use bson::{Bson, Document, doc};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{ALLOW, HeaderValue};
use hyper::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::Console;
use super::commands::{self, Answer, Rights};
use super::plan_hint;
use crate::net::http::query_param;
use crate::obs::Observers;
use crate::state::State;

/// Query shapes `/api/shapes` lists unless `?limit=` says otherwise.
const DEFAULT_SHAPES: usize = 100;
/// Log lines `/api/log` returns unless `?limit=` says otherwise, and at most.
const DEFAULT_LOG_LINES: usize = 200;
const MAX_LOG_LINES: usize = 1024;
/// Collections `/api/collections` describes at most (each takes two commands).
const MAX_COLLECTIONS: usize = 200;
/// A collection's storage figures the collections page shows (null for a view).
const FIGURES: [&str; 5] = ["count", "size", "storageSize", "avgObjSize", "totalIndexSize"];
/// The explain verbosities a page may ask for.
const VERBOSITIES: [&str; 3] = ["queryPlanner", "executionStats", "allPlansExecution"];
/// The commands the plan page may explain: reads only.
const EXPLAINABLE: [&str; 4] = ["find", "aggregate", "count", "distinct"];

/// One request to the API, as the admin server received it.
pub struct ApiCall<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub body: Bytes,
    pub peer: SocketAddr,
    pub rights: Rights,
    /// `/readyz`'s answer now: `Err(reason)` when not ready.
    pub ready: Result<(), String>,
}

/// The server, as the API reads it.
pub struct Server<'a> {
    pub state: &'a Arc<State>,
    pub observers: &'a Arc<Observers>,
    pub console: &'a Console,
}

/// The endpoints and the methods each accepts.
const ENDPOINTS: [(&str, &Method); 7] = [
    ("/api/overview", &Method::GET),
    ("/api/shapes", &Method::GET),
    ("/api/explain", &Method::POST),
    ("/api/operations", &Method::GET),
    ("/api/killOp", &Method::POST),
    ("/api/collections", &Method::GET),
    ("/api/log", &Method::GET),
];

/// Answers `call`.
pub async fn answer(server: &Server<'_>, call: ApiCall<'_>) -> Response<Full<Bytes>> {
    let shape = call.path.strip_prefix("/api/shapes/").filter(|hash| !hash.is_empty());
    let expected = match shape {
        Some(_) => Some(&Method::GET),
        None => ENDPOINTS.iter().find(|(path, _)| *path == call.path).map(|(_, method)| *method),
    };
    let Some(expected) = expected else {
        return status(StatusCode::NOT_FOUND, format!("no endpoint {}", call.path));
    };
    if call.method != expected {
        let mut response = status(StatusCode::METHOD_NOT_ALLOWED, format!("{} supports only {expected}", call.path));
        if let Ok(allow) = HeaderValue::from_str(expected.as_str()) {
            response.headers_mut().insert(ALLOW, allow);
        }
        return response;
    }
    if let Some(hash) = shape {
        return shape_detail(server, hash);
    }
    match call.path {
        "/api/overview" => overview(server, &call),
        "/api/shapes" => {
            let limit = query_param(call.query, "limit").and_then(|n| n.parse().ok()).unwrap_or(DEFAULT_SHAPES);
            ok(json!({ "shapes": server.observers.latency.top_shapes_json(limit) }))
        }
        "/api/explain" => explain(server, &call).await,
        "/api/operations" => operations(server, &call).await,
        "/api/killOp" => kill_op(server, &call).await,
        "/api/collections" => collections(server, &call).await,
        _ => log_tail(server, call.query),
    }
}

fn overview(server: &Server<'_>, call: &ApiCall<'_>) -> Response<Full<Bytes>> {
    let state = server.state;
    let config = &state.config;
    let ready_reason = call.ready.as_ref().err().cloned().unwrap_or_default();
    ok(json!({
        "server": {
            "host": format!("{}:{}", crate::host::hostname(), config.port),
            "version": crate::version::COMPATIBLE_VERSION,
            "monarchVersion": env!("CARGO_PKG_VERSION"),
            "engine": if config.postgres.is_some() { "postgres" } else { "fjall" },
            "uptimeSeconds": state.started.elapsed().as_secs_f64(),
            "ready": call.ready.is_ok(),
            "readyReason": ready_reason,
            "writable": state.storage.write_refusal().is_none(),
            "replicaSet": state.repl.set_name(),
            "operator": call.rights == Rights::Operator,
        },
        "sampleIntervalSeconds": super::overview::SAMPLE_INTERVAL.as_secs(),
        "samples": server.console.history.samples(),
    }))
}

/// `GET /api/shapes/<hash>`: one shape in full, with the command the page may explain to draw
/// its plan.
fn shape_detail(server: &Server<'_>, hash: &str) -> Response<Full<Bytes>> {
    let Some(detail) = server.observers.latency.shape_detail(hash) else {
        return status(StatusCode::NOT_FOUND, format!("no query shape {hash}"));
    };
    let explainable = plan_hint::explainable(&detail.report.ns, &detail.report.command)
        .map(|(db, command)| json!({ "db": db, "command": relaxed(command) }));
    ok(json!({
        "shape": detail.report.to_json(),
        "histogram": detail.histogram.iter().map(|(micros, count)| json!({ "micros": micros, "count": count })).collect::<Vec<_>>(),
        "plans": detail.plans.iter().map(|(summary, count, last)| json!({
            "summary": summary,
            "count": count,
            "lastSeen": Bson::DateTime(*last).into_relaxed_extjson(),
        })).collect::<Vec<_>>(),
        "samples": detail.slowest.into_iter().map(|(micros, command)| json!({
            "micros": micros,
            "command": relaxed(command),
        })).collect::<Vec<_>>(),
        "explainable": explainable,
    }))
}

/// `POST /api/explain`: `{db, command, verbosity}`, a read explained as `explain` does, with a
/// hint when a collection scan examined far more than it returned.
async fn explain(server: &Server<'_>, call: &ApiCall<'_>) -> Response<Full<Bytes>> {
    let request = match explain_request(&call.body) {
        Ok(request) => request,
        Err(message) => return refused(&message),
    };
    let (db, command, verbosity) = request;
    let filter = plan_hint::query_of(&command);
    let body = doc! { "explain": command, "verbosity": verbosity, "$db": db };
    match commands::run(server.state, server.observers, call.peer, call.rights, body).await {
        Answer::Ok(reply) => {
            let hint = plan_hint::hint(&reply, filter.as_ref());
            ok(json!({ "ok": 1, "explain": relaxed(reply), "hint": hint }))
        }
        Answer::Failed(reply) => failed(reply),
    }
}

/// The database, command and verbosity of an explain request, or why it is refused.
fn explain_request(body: &[u8]) -> Result<(String, Document, String), String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("the request is not JSON: {e}"))?;
    let db = value.get("db").and_then(Value::as_str).filter(|db| !db.is_empty()).ok_or("db must be a database name")?;
    let verbosity = value.get("verbosity").and_then(Value::as_str).unwrap_or("queryPlanner");
    if !VERBOSITIES.contains(&verbosity) {
        return Err(format!("verbosity must be one of {}", VERBOSITIES.join(", ")));
    }
    let command = match value.get("command").cloned().map(Bson::try_from) {
        Some(Ok(Bson::Document(command))) => command,
        Some(Err(error)) => return Err(format!("the command is not extended JSON: {error}")),
        _ => return Err("command must be a document".to_owned()),
    };
    let name = command.keys().next().map(String::as_str).unwrap_or_default();
    if !EXPLAINABLE.contains(&name) {
        return Err(format!("the console explains only {}; not '{name}'", EXPLAINABLE.join(", ")));
    }
    let writes = command.get_array("pipeline").is_ok_and(|stages| {
        stages
            .iter()
            .any(|stage| matches!(stage, Bson::Document(s) if s.contains_key("$out") || s.contains_key("$merge")))
    });
    if writes {
        return Err("the console does not explain a pipeline that writes ($out, $merge)".to_owned());
    }
    Ok((db.to_owned(), command, verbosity.to_owned()))
}

/// `GET /api/operations`: the active operations of every client, as `currentOp` lists them.
async fn operations(server: &Server<'_>, call: &ApiCall<'_>) -> Response<Full<Bytes>> {
    let body = doc! { "currentOp": 1, "$db": "admin" };
    match commands::run(server.state, server.observers, call.peer, call.rights, body).await {
        Answer::Ok(reply) => {
            let inprog = reply.get_array("inprog").cloned().unwrap_or_default();
            ok(json!({ "inprog": relaxed_value(Bson::Array(inprog)) }))
        }
        Answer::Failed(reply) => failed(reply),
    }
}

/// `POST /api/killOp`: `{op}`, for an operator only.
async fn kill_op(server: &Server<'_>, call: &ApiCall<'_>) -> Response<Full<Bytes>> {
    if call.rights != Rights::Operator {
        return status(
            StatusCode::FORBIDDEN,
            "the console is read-only: killOp needs the admin token (--adminTokenFile) or a client certificate (--adminTls)"
                .to_owned(),
        );
    }
    let op = serde_json::from_slice::<Value>(&call.body).ok().and_then(|v| v.get("op").and_then(Value::as_i64));
    let Some(op) = op else { return refused("the request must be {\"op\": <opid>}") };
    let body = doc! { "killOp": 1, "op": op, "$db": "admin" };
    match commands::run(server.state, server.observers, call.peer, call.rights, body).await {
        Answer::Ok(_) => ok(json!({ "ok": 1 })),
        Answer::Failed(reply) => failed(reply),
    }
}

/// `GET /api/collections`: each database's collections with their sizes and indexes, from
/// `listDatabases`, `listCollections`, `$collStats` and `$indexStats`.
async fn collections(server: &Server<'_>, call: &ApiCall<'_>) -> Response<Full<Bytes>> {
    let run = |body: Document| commands::run(server.state, server.observers, call.peer, call.rights, body);
    let databases = match run(doc! { "listDatabases": 1, "$db": "admin" }).await {
        Answer::Ok(reply) => reply.get_array("databases").cloned().unwrap_or_default(),
        Answer::Failed(reply) => return failed(reply),
    };
    let mut described = 0;
    let mut out = Vec::new();
    for database in databases.iter().filter_map(Bson::as_document) {
        let Ok(db) = database.get_str("name") else { continue };
        let listed = match run(doc! { "listCollections": 1, "$db": db }).await {
            Answer::Ok(reply) => first_batch(&reply),
            Answer::Failed(reply) => return failed(reply),
        };
        let mut collections = Vec::new();
        for listing in &listed {
            let (Ok(name), kind) = (listing.get_str("name"), listing.get_str("type").unwrap_or("collection")) else {
                continue;
            };
            let mut entry = doc! { "name": name, "type": kind };
            if kind != "view" && described < MAX_COLLECTIONS {
                described += 1;
                describe(&run, db, name, &mut entry).await;
            } else {
                for field in FIGURES {
                    entry.insert(field, Bson::Null);
                }
                entry.insert("indexes", Vec::<Bson>::new());
            }
            collections.push(Bson::Document(entry));
        }
        out.push(doc! {
            "name": db,
            "sizeOnDisk": database.get("sizeOnDisk").cloned().unwrap_or(Bson::Int64(0)),
            "collections": collections,
        });
    }
    ok(json!({ "databases": relaxed_value(Bson::Array(out.into_iter().map(Bson::Document).collect())) }))
}

/// Adds a collection's storage figures and its indexes (with their use) to `entry`.
async fn describe<F, Fut>(run: &F, db: &str, name: &str, entry: &mut Document)
where
    F: Fn(Document) -> Fut,
    Fut: std::future::Future<Output = Answer>,
{
    let stats =
        doc! { "aggregate": name, "pipeline": [{ "$collStats": { "storageStats": {} } }], "cursor": {}, "$db": db };
    let storage = match run(stats).await {
        Answer::Ok(reply) => {
            first_batch(&reply).into_iter().next().and_then(|s| s.get_document("storageStats").ok().cloned())
        }
        Answer::Failed(_) => None,
    };
    let storage = storage.unwrap_or_default();
    for field in FIGURES {
        entry.insert(field, storage.get(field).cloned().unwrap_or(Bson::Int32(0)));
    }
    let sizes = storage.get_document("indexSizes").cloned().unwrap_or_default();
    let usage = doc! { "aggregate": name, "pipeline": [{ "$indexStats": {} }], "cursor": {}, "$db": db };
    let indexes: Vec<Bson> = match run(usage).await {
        Answer::Ok(reply) => first_batch(&reply)
            .into_iter()
            .map(|index| {
                let index_name = index.get_str("name").unwrap_or_default().to_owned();
                Bson::Document(doc! {
                    "name": &index_name,
                    "key": index.get("key").cloned().unwrap_or(Bson::Document(Document::new())),
                    "size": sizes.get(&index_name).cloned().unwrap_or(Bson::Int32(0)),
                    "accesses": index.get("accesses").cloned().unwrap_or(Bson::Document(Document::new())),
                })
            })
            .collect(),
        Answer::Failed(_) => Vec::new(),
    };
    entry.insert("indexes", indexes);
}

/// `GET /api/log`: the newest lines of the in-memory log, parsed, filtered by `level` (that
/// severity or worse) and `component`.
fn log_tail(server: &Server<'_>, query: Option<&str>) -> Response<Full<Bytes>> {
    let limit =
        query_param(query, "limit").and_then(|n| n.parse().ok()).unwrap_or(DEFAULT_LOG_LINES).min(MAX_LOG_LINES);
    let level = query_param(query, "level").filter(|l| !l.is_empty()).map(severity_rank);
    let component = query_param(query, "component").filter(|c| !c.is_empty());
    let log = server.state.log.global();
    let mut lines: Vec<Value> = log
        .lines
        .iter()
        .rev()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| {
            let severity = line.get("s").and_then(Value::as_str).map_or(0, severity_rank);
            level.is_none_or(|least| severity >= least)
                && component.is_none_or(|c| line.get("c").and_then(Value::as_str) == Some(c))
        })
        .take(limit)
        .collect();
    lines.reverse();
    ok(json!({ "total": log.total_lines_written, "lines": lines }))
}

/// Orders mongod's severities: debug levels (`D1`..`D5`) below `I`, `W`, `E`, `F`.
fn severity_rank(severity: &str) -> u8 {
    match severity {
        "I" => 1,
        "W" => 2,
        "E" => 3,
        "F" => 4,
        _ => 0,
    }
}

fn first_batch(reply: &Document) -> Vec<Document> {
    let batch = reply.get_document("cursor").and_then(|cursor| cursor.get_array("firstBatch"));
    batch.map(|b| b.iter().filter_map(Bson::as_document).cloned().collect()).unwrap_or_default()
}

fn relaxed(reply: Document) -> Value {
    relaxed_value(Bson::Document(reply))
}

fn relaxed_value(value: Bson) -> Value {
    value.into_relaxed_extjson()
}

fn ok(body: Value) -> Response<Full<Bytes>> {
    super::super::http::response(StatusCode::OK, "application/json", Bytes::from(body.to_string()))
}

/// A command's error reply, as the page shows it (400).
fn failed(reply: Document) -> Response<Full<Bytes>> {
    let body = relaxed(reply).to_string();
    super::super::http::response(StatusCode::BAD_REQUEST, "application/json", Bytes::from(body))
}

/// A request the console refuses before running anything: mongod's `BadValue` (400).
fn refused(message: &str) -> Response<Full<Bytes>> {
    failed(commands::bad_value(message))
}

/// The admin server's `{status: "error", reason}` answer.
fn status(code: StatusCode, reason: String) -> Response<Full<Bytes>> {
    let body = json!({ "status": "error", "reason": reason }).to_string();
    super::super::http::response(code, "application/json", Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explain_requests_are_reads_with_a_known_verbosity() {
        let parse = |text: &str| explain_request(text.as_bytes());
        let (db, command, verbosity) =
            parse(r#"{"db":"t","command":{"find":"c","filter":{"x":{"$gt":{"$numberLong":"5"}}}},"verbosity":"executionStats"}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((db.as_str(), verbosity.as_str()), ("t", "executionStats"));
        assert_eq!(command.get_document("filter").ok(), Some(&doc! { "x": { "$gt": 5_i64 } }));
        assert!(parse(r#"{"db":"t","command":{"insert":"c","documents":[]}}"#).is_err_and(|e| e.contains("'insert'")));
        assert!(
            parse(r#"{"db":"t","command":{"aggregate":"c","pipeline":[{"$out":"d"}]}}"#)
                .is_err_and(|e| e.contains("$out"))
        );
        assert!(
            parse(r#"{"db":"t","command":{"find":"c"},"verbosity":"loud"}"#).is_err_and(|e| e.contains("verbosity"))
        );
        assert!(parse(r#"{"command":{"find":"c"}}"#).is_err_and(|e| e.contains("db")));
        assert!(parse("not json").is_err_and(|e| e.contains("not JSON")));
    }

    #[test]
    fn log_levels_order_as_mongod_severities() {
        assert!(severity_rank("D2") < severity_rank("I"));
        assert!(severity_rank("I") < severity_rank("W"));
        assert!(severity_rank("W") < severity_rank("E"));
        assert_eq!(query_param(Some("level=W&component=NETWORK"), "component"), Some("NETWORK"));
        assert_eq!(query_param(Some("levels=W"), "level"), None);
    }
}
