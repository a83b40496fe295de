//! Observability through the Rust driver: the slow-query log, currentOp, killOp and maxTimeMS
//! interrupting a long scan.

#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::ErrorKind;

fn code(error: &mongodb::error::Error) -> Option<i32> {
    match error.kind.as_ref() {
        ErrorKind::Command(e) => Some(e.code),
        _ => None,
    }
}

/// A collection of `n` documents with a string field to run expensive filters on.
async fn seeded(server: &TestServer, n: i32) -> mongodb::Collection<Document> {
    let client = server.client("").await;
    let coll = client.database("obs").collection::<Document>("big");
    let docs: Vec<Document> = (0..n).map(|i| doc! { "_id": i, "s": format!("value-{i:06}"), "n": i }).collect();
    for chunk in docs.chunks(10_000) {
        coll.insert_many(chunk.to_vec()).await.expect("seed");
    }
    coll
}

/// A filter that matches nothing and costs many regex evaluations per document, so a scan
/// of a few thousand documents runs for seconds in a debug build.
fn slow_filter() -> Document {
    let clauses: Vec<Bson> =
        (0..300).map(|i| Bson::Document(doc! { "s": { "$regex": format!("^zz{i}.*q+$") } })).collect();
    doc! { "$or": clauses }
}

#[tokio::test]
async fn observability_slow_query_log_line_has_mongod_fields() {
    let server = TestServer::start(&["--slowms", "0"]);
    let coll = seeded(&server, 50).await;
    coll.find_one(doc! { "n": { "$gte": 10 }, "s": "value-000042" }).await.expect("find");
    // The line is written once the reply is: poll for it.
    assert!(server.wait_for_log("COLLSCAN", Duration::from_secs(5)));
    let line = server
        .log_lines()
        .into_iter()
        .rev()
        .find(|l| l.contains("\"Slow query\"") && l.contains("\"obs.big\"") && l.contains("COLLSCAN"))
        .expect("slow line for the find");
    let parsed: serde_json::Value = serde_json::from_str(&line).expect("json");
    assert_eq!(parsed["c"], "COMMAND");
    assert_eq!(parsed["id"], 51803);
    let attr = &parsed["attr"];
    assert_eq!(attr["type"], "command");
    assert_eq!(attr["ns"], "obs.big");
    assert_eq!(attr["planSummary"], "COLLSCAN");
    assert_eq!(attr["docsExamined"], 43, "find_one stops at the first match, the 43rd document");
    assert_eq!(attr["keysExamined"], 0);
    assert_eq!(attr["nreturned"], 1);
    assert!(attr["durationMillis"].is_u64());
    for phase in ["read", "parse", "plan", "execute", "storage", "journal", "encode", "write"] {
        assert!(attr["phasesMicros"][phase].is_u64(), "{phase} in {attr}");
    }
    assert_eq!(attr["queryShapeHash"].as_str().map(str::len), Some(16));
    // Values are redacted by default; the shape stays.
    assert_eq!(attr["command"]["filter"]["s"], "###");
    assert_eq!(attr["command"]["filter"]["n"]["$gte"], "###");
}

#[tokio::test]
async fn observability_slow_log_can_show_values_and_skips_fast_operations() {
    let server = TestServer::start(&["--slowms", "0", "--redactClientLogData", "false"]);
    let coll = seeded(&server, 10).await;
    coll.find_one(doc! { "s": "value-000007" }).await.expect("find");
    assert!(server.wait_for_log("value-000007", Duration::from_secs(5)));
    let quiet = TestServer::start(&["--slowms", "100000"]);
    seeded(&quiet, 10).await;
    // One connection: the find's slow-log decision is made once its reply is written, before
    // the server reads the next message, and the `profile` change after it logs a line of its
    // own. Once that line is in, a slow-query line for the find would be in before it.
    let client = quiet.client("maxPoolSize=1").await;
    let coll = client.database("obs").collection::<Document>("big");
    coll.find_one(doc! { "s": "value-000007" }).await.expect("find");
    client.database("obs").run_command(doc! { "profile": 0 }).await.expect("profile");
    assert!(quiet.wait_for_log("Profiler settings changed", Duration::from_secs(5)));
    assert!(!quiet.log_lines().iter().any(|l| l.contains("\"Slow query\"")), "a fast find was logged as slow");
}

#[tokio::test]
async fn observability_current_op_shows_a_long_scan_and_kill_op_stops_it() {
    let server = TestServer::start(&[]);
    let coll = seeded(&server, 20_000).await;
    let scan = tokio::spawn({
        let coll = coll.clone();
        async move { coll.count_documents(slow_filter()).await }
    });
    let admin = server.client("").await.database("admin");
    let started = Instant::now();
    let op = loop {
        let reply = admin.run_command(doc! { "currentOp": 1, "ns": "obs.big" }).await.expect("currentOp");
        let inprog = reply.get_array("inprog").expect("inprog").clone();
        if let Some(Bson::Document(op)) = inprog.into_iter().next() {
            break op;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the scan never showed in currentOp");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(op.get_bool("active").ok(), Some(true));
    assert_eq!(op.get_str("op").ok(), Some("command"));
    assert!(op.get_i64("microsecs_running").is_ok());
    assert!(op.get_i64("connectionId").is_ok());
    assert!(op.get_str("client").is_ok());
    assert_eq!(op.get_document("command").and_then(|c| c.get_str("aggregate")).ok(), Some("big"));
    let opid = op.get_i64("opid").expect("opid");
    let reply = admin.run_command(doc! { "killOp": 1, "op": opid }).await.expect("killOp");
    assert_eq!(reply.get_str("info").ok(), Some("attempting to kill op"));
    let err = scan.await.expect("task").expect_err("killed");
    assert_eq!(code(&err), Some(11601), "{err}");
    // The killed operation leaves the list once its reply is written.
    let mut listed = true;
    for _ in 0..100 {
        let reply = admin.run_command(doc! { "currentOp": 1, "ns": "obs.big" }).await.expect("currentOp");
        listed = !reply.get_array("inprog").expect("inprog").is_empty();
        if !listed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!listed, "the killed operation is still listed");
    // The server keeps serving.
    assert_eq!(coll.count_documents(doc! { "n": { "$lt": 5 } }).await.expect("count"), 5);
}

#[tokio::test]
async fn observability_max_time_ms_interrupts_a_scan_that_returns_nothing() {
    let server = TestServer::start(&[]);
    let coll = seeded(&server, 5_000).await;
    let started = Instant::now();
    let err = coll.find(slow_filter()).max_time(Duration::from_millis(50)).await.expect_err("maxTimeMS");
    assert_eq!(code(&err), Some(50), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Correlation IDs: an operation's opid, comment, application name and the trace id of a
/// `traceparent` in its comment are on the lines it logs, its slow-query line, its profiler
/// entry and its `currentOp` entry.
#[tokio::test]
async fn observability_correlation_ids_follow_an_operation_everywhere() {
    let server = TestServer::start(&[
        "--slowms",
        "0",
        "--redactClientLogData",
        "false",
        "--setParameter",
        "enableTestCommands=1",
    ]);
    let client = server.client("appName=checkout").await;
    let db = client.database("corr");
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    db.run_command(
        doc! { "create": "orders", "validator": { "total": { "$type": "int" } }, "validationAction": "warn" },
    )
    .await
    .expect("create");
    db.run_command(doc! { "profile": 2 }).await.expect("profile");
    // A line the insert's handler logs: validationAction warn lets the document through.
    db.run_command(doc! { "insert": "orders", "documents": [{ "_id": 1, "total": "x" }], "comment": { "traceparent": traceparent } })
        .await
        .expect("insert");
    assert!(server.wait_for_log("Document would fail validation", Duration::from_secs(5)));
    let parsed = |needle: &str| -> Vec<serde_json::Value> {
        server
            .log_lines()
            .iter()
            .filter(|l| l.contains(needle))
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect()
    };
    let warning = parsed("Document would fail validation").pop().expect("the warning");
    let attr = &warning["attr"];
    assert_eq!(attr["traceId"], trace_id, "{warning}");
    assert_eq!(attr["appName"], "checkout", "{warning}");
    assert_eq!(attr["comment"]["traceparent"], traceparent, "{warning}");
    let opid = attr["opid"].as_u64().expect("opid");
    assert!(warning["ctx"].as_str().is_some_and(|ctx| ctx.starts_with("conn")), "{warning}");
    // A line logged through tracing inside another operation: the `profile` command's.
    let profile = parsed("Profiler settings changed").pop().expect("the profile command's line");
    assert_eq!(profile["attr"]["appName"], "checkout", "{profile}");
    assert!(profile["attr"]["opid"].as_u64().is_some_and(|other| other != opid), "{profile}");
    assert_eq!(profile["ctx"], warning["ctx"], "{profile}");
    // The same operation's slow-query line.
    assert!(server.wait_for_log("\"corr.orders\"", Duration::from_secs(5)));
    let slow = common::eventually(Duration::from_secs(5), || {
        parsed("\"Slow query\"").iter().any(|line| line["attr"]["ns"] == "corr.orders" && line["attr"]["opid"] == opid)
    });
    assert!(slow, "no slow-query line with opid {opid}");
    let slow = parsed("\"Slow query\"").into_iter().find(|line| line["attr"]["opid"] == opid).expect("slow line");
    assert_eq!(slow["attr"]["traceId"], trace_id, "{slow}");
    assert_eq!(slow["attr"]["appName"], "checkout", "{slow}");
    // Its profiler entry.
    let entry = db
        .collection::<Document>("system.profile")
        .find_one(doc! { "op": "insert", "ns": "corr.orders" })
        .await
        .expect("profile")
        .expect("the insert's entry");
    assert_eq!(entry.get_i64("opid").ok(), i64::try_from(opid).ok(), "{entry}");
    assert_eq!(entry.get_str("traceId").ok(), Some(trace_id), "{entry}");
    assert_eq!(entry.get_str("appName").ok(), Some("checkout"), "{entry}");

    // currentOp of an operation held by a fail point.
    server
        .admin(doc! {
            "configureFailPoint": "failCommand",
            "mode": { "times": 1 },
            "data": { "failCommands": ["find"], "blockConnection": true, "blockTimeMS": 3000, "appName": "checkout" },
        })
        .await
        .expect("fail point");
    let held = tokio::spawn({
        let orders = db.collection::<Document>("orders");
        let comment = format!("cart 7 traceparent={traceparent}");
        async move { orders.find_one(doc! {}).comment(Bson::String(comment)).await.map(|_| ()) }
    });
    let admin = server.client("").await.database("admin");
    let started = Instant::now();
    let shown = loop {
        let reply = admin.run_command(doc! { "currentOp": 1, "ns": "corr.orders" }).await.expect("currentOp");
        if let Some(op) = reply.get_array("inprog").ok().and_then(|ops| ops.first()).and_then(Bson::as_document) {
            break op.clone();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the held find never showed in currentOp");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(shown.get_str("traceId").ok(), Some(trace_id), "{shown}");
    assert_eq!(shown.get_str("appName").ok(), Some("checkout"), "{shown}");
    assert!(shown.get_i64("opid").is_ok(), "{shown}");
    held.await.expect("join").expect("the held find");
}
