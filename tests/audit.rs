//! The audit log through a running server: one JSON line per event of each kind (startup,
//! authentication success and failure, user and role changes, collection, index and database
//! changes, refused commands, rotation, shutdown), each chained to the line before it; the
//! `monarchd audit verify` tool finds a changed line; an audit filter selects CRUD commands.

#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::TestServer;
use mongodb::Client;
use mongodb::bson::doc;
use serde_json::Value as Json;

fn lines(path: &Path) -> Vec<Json> {
    std::fs::read_to_string(path)
        .expect("audit log")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn verify(files: &[&Path]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_monarchd"))
        .args(["audit", "verify"])
        .args(files)
        .output()
        .expect("run monarchd audit verify");
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stdout).into_owned())
}

async fn client_as(server: &TestServer, user: &str, password: &str, db: &str) -> Client {
    let uri =
        server.uri(&format!("authSource={db}")).replacen("mongodb://", &format!("mongodb://{user}:{password}@"), 1);
    Client::with_uri_str(uri).await.expect("client")
}

#[tokio::test]
async fn every_event_kind_is_audited_and_the_chain_finds_tampering() {
    let logs = tempfile::tempdir().expect("temp dir");
    let audit_path = logs.path().join("audit.json");
    let audit_arg = audit_path.to_string_lossy().into_owned();
    let mut server = TestServer::start(&[
        "--auth",
        "--auditDestination",
        "file",
        "--auditFormat",
        "JSON",
        "--auditPath",
        &audit_arg,
    ]);
    server.admin(doc! { "createUser": "root", "pwd": "pw-root", "roles": ["root"] }).await.expect("first user");
    let root = client_as(&server, "root", "pw-root", "admin").await;
    let shop = root.database("shop");
    shop.run_command(doc! { "createUser": "clerk", "pwd": "pw-clerk", "roles": ["read"] }).await.expect("createUser");
    shop.run_command(doc! { "createRole": "auditor", "privileges": [], "roles": ["read"] }).await.expect("createRole");
    shop.run_command(doc! { "create": "orders" }).await.expect("create");
    shop.run_command(doc! { "createIndexes": "orders", "indexes": [{ "key": { "total": 1 }, "name": "total_1" }] })
        .await
        .expect("createIndexes");
    shop.run_command(doc! { "dropIndexes": "orders", "index": "total_1" }).await.expect("dropIndexes");
    root.database("admin")
        .run_command(doc! { "renameCollection": "shop.orders", "to": "shop.sales" })
        .await
        .expect("rename");
    shop.run_command(doc! { "drop": "sales" }).await.expect("drop");
    shop.run_command(doc! { "dropDatabase": 1 }).await.expect("dropDatabase");
    let wrong = client_as(&server, "clerk", "wrong", "shop").await;
    assert!(wrong.database("shop").run_command(doc! { "ping": 1 }).await.is_err());
    let clerk = client_as(&server, "clerk", "pw-clerk", "shop").await;
    assert!(clerk.database("shop").run_command(doc! { "insert": "x", "documents": [{}] }).await.is_err());
    root.database("admin").run_command(doc! { "logRotate": "audit" }).await.expect("logRotate");
    root.database("shop").run_command(doc! { "dropUser": "clerk" }).await.expect("dropUser");
    assert!(server.terminate().success());

    let rotated: PathBuf = std::fs::read_dir(logs.path())
        .expect("logs dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p != &audit_path)
        .expect("the rotated audit file");
    let events: Vec<Json> = lines(&rotated).into_iter().chain(lines(&audit_path)).collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["atype"].as_str()).collect();
    for kind in [
        "startup",
        "createUser",
        "authenticate",
        "createRole",
        "createCollection",
        "createIndex",
        "dropIndex",
        "renameCollection",
        "dropCollection",
        "dropDatabase",
        "authCheck",
        "rotateLog",
        "dropUser",
        "shutdown",
    ] {
        assert!(kinds.contains(&kind), "no {kind} event in {kinds:?}");
    }
    let find = |atype: &str, result: i64| {
        events.iter().find(|e| e["atype"] == atype && e["result"].as_i64() == Some(result)).cloned()
    };
    let failed = find("authenticate", 18).expect("a failed authentication");
    assert_eq!(failed["param"]["user"], "clerk");
    let succeeded = find("authenticate", 0).expect("a successful authentication");
    assert_eq!(succeeded["param"], serde_json::json!({ "user": "root", "db": "admin", "mechanism": "SCRAM-SHA-256" }));
    assert_eq!(succeeded["remote"]["ip"], "127.0.0.1");
    let refused = events
        .iter()
        .find(|e| e["atype"] == "authCheck" && e["param"]["command"] == "insert")
        .expect("the refused insert");
    assert_eq!(refused["result"], 13);
    assert_eq!(refused["users"], serde_json::json!([{ "user": "clerk", "db": "shop" }]));
    assert_eq!(refused["roles"], serde_json::json!([{ "role": "read", "db": "shop" }]));
    let created = find("createUser", 0).expect("createUser");
    assert!(!created.to_string().contains("pw-"), "a password reached the audit log: {created}");
    let rename = find("renameCollection", 0).expect("rename");
    assert_eq!(rename["param"], serde_json::json!({ "old": "shop.orders", "new": "shop.sales" }));
    // The rotated file and the current one verify as one chain.
    let (code, out) = verify(&[&rotated, &audit_path]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with(&format!("intact: {} lines", events.len())), "{out}");
    // A changed line breaks the chain at the next one, and the tool names it.
    let text = std::fs::read_to_string(&rotated).expect("rotated file");
    std::fs::write(&rotated, text.replacen("\"dropIndex\"", "\"createIndex\"", 1)).expect("tamper");
    let (code, out) = verify(&[&rotated, &audit_path]);
    assert_eq!(code, 1, "{out}");
    let tampered = text.lines().position(|l| l.contains("\"dropIndex\"")).expect("the dropIndex line") + 1;
    assert!(out.starts_with(&format!("broken: {}:{}:", rotated.display(), tampered + 1)), "{out}");
}

#[tokio::test]
async fn an_audit_filter_selects_crud_commands() {
    let logs = tempfile::tempdir().expect("temp dir");
    let audit_path = logs.path().join("audit.json");
    let audit_arg = audit_path.to_string_lossy().into_owned();
    let filter = r#"{"atype": "authCheck", "param.command": {"$in": ["insert", "find"]}}"#;
    let server = TestServer::start(&["--auditDestination", "file", "--auditPath", &audit_arg, "--auditFilter", filter]);
    let client = server.client("").await;
    let orders = client.database("shop").collection::<mongodb::bson::Document>("orders");
    orders.insert_one(doc! { "total": 5 }).await.expect("insert");
    orders.find_one(doc! {}).await.expect("find");
    orders.delete_many(doc! {}).await.expect("delete");
    let events = lines(&audit_path);
    let commands: Vec<&str> = events.iter().filter_map(|e| e["param"]["command"].as_str()).collect();
    assert_eq!(commands, ["insert", "find"]);
    assert!(events.iter().all(|e| e["atype"] == "authCheck" && e["result"] == 0));
}
