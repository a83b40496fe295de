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
    for phase in ["read", "parse", "plan", "execute", "encode", "write"] {
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
