//! Test commands: `configureFailPoint` with `failCommand`, only with enableTestCommands.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use mongodb::bson::{Document, doc};
use mongodb::error::ErrorKind;

fn code(error: &mongodb::error::Error) -> Option<i32> {
    match error.kind.as_ref() {
        ErrorKind::Command(e) => Some(e.code),
        _ => None,
    }
}

#[tokio::test]
async fn failpoint_refused_without_enable_test_commands() {
    let server = TestServer::start(&[]);
    let error = server
        .admin(doc! { "configureFailPoint": "failCommand", "mode": "alwaysOn", "data": { "failCommands": ["ping"] } })
        .await
        .expect_err("no test commands");
    assert_eq!(code(&error), Some(59));
}

#[tokio::test]
async fn failpoint_fail_command_error_times_block_close() {
    let server = TestServer::start(&["--setParameter", "enableTestCommands=1"]);
    let client = server.client("appName=fp-test&retryWrites=false").await;
    let admin = client.database("admin");
    let coll = client.database("app").collection::<Document>("c");

    let armed = admin
        .run_command(doc! {
            "configureFailPoint": "failCommand",
            "mode": { "times": 1 },
            "data": { "failCommands": ["insert"], "errorCode": 91, "errorLabels": ["SomeLabel"], "appName": "fp-test" },
        })
        .await
        .expect("configure");
    assert_eq!(armed.get_i64("count").ok(), Some(0));
    let error = coll.insert_one(doc! { "_id": 1 }).await.expect_err("fails once");
    assert_eq!(code(&error), Some(91));
    assert!(error.contains_label("SomeLabel"), "{error}");
    coll.insert_one(doc! { "_id": 1 }).await.expect("then succeeds");

    admin
        .run_command(doc! {
            "configureFailPoint": "failCommand",
            "mode": "alwaysOn",
            "data": { "failCommands": ["find"], "blockConnection": true, "blockTimeMS": 300 },
        })
        .await
        .expect("configure block");
    let started = Instant::now();
    coll.find_one(doc! {}).await.expect("blocked find");
    assert!(started.elapsed() >= Duration::from_millis(300), "the find was held back");
    let off = admin.run_command(doc! { "configureFailPoint": "failCommand", "mode": "off" }).await.expect("off");
    assert_eq!(off.get_i64("count").ok(), Some(1));

    admin
        .run_command(doc! {
            "configureFailPoint": "failCommand",
            "mode": { "times": 1 },
            "data": { "failCommands": ["count"], "closeConnection": true },
        })
        .await
        .expect("configure close");
    let error = client.database("app").run_command(doc! { "count": "c" }).await.expect_err("connection closed");
    assert!(matches!(error.kind.as_ref(), ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. }), "{error}");
    client.database("app").run_command(doc! { "count": "c" }).await.expect("works again");

    admin
        .run_command(doc! {
            "configureFailPoint": "failCommand",
            "mode": { "times": 1 },
            "data": { "failCommands": ["insert"], "writeConcernError": { "code": 64, "errmsg": "waiting for replication timed out" } },
        })
        .await
        .expect("configure wce");
    // Raw, so the reply is seen as sent: `ok: 1`, the insert done, and the write concern
    // error exactly as the fail point's data gave it.
    let mut raw = server.raw();
    raw.send(&common::op_msg(1, 0, &doc! { "insert": "c", "documents": [{ "_id": 2 }], "$db": "app" }));
    let reply = common::reply_body(&raw.receive().expect("insert reply"));
    assert_eq!(reply.get_f64("ok").ok(), Some(1.0), "{reply}");
    assert_eq!(reply.get_i32("n").ok(), Some(1), "{reply}");
    assert_eq!(
        reply.get_document("writeConcernError").ok(),
        Some(&doc! { "code": 64, "errmsg": "waiting for replication timed out" }),
        "{reply}"
    );
    assert_eq!(
        coll.count_documents(doc! {}).await.expect("count"),
        2,
        "the insert ran despite its write concern error"
    );
}

#[test]
fn state_change_errors_carry_the_topology_version_as_mongod() {
    let server = TestServer::start(&["--setParameter", "enableTestCommands=1"]);
    let mut conn = server.raw();
    conn.send(&common::op_msg(1, 0, &doc! { "hello": 1, "$db": "admin" }));
    let hello = common::reply_body(&conn.receive().expect("hello"));
    let version = hello.get_document("topologyVersion").expect("topologyVersion").clone();
    let armed = doc! {
        "configureFailPoint": "failCommand", "mode": { "times": 2 },
        "data": { "failCommands": ["ping", "count"], "errorCode": 91 }, "$db": "admin",
    };
    conn.send(&common::op_msg(2, 0, &armed));
    conn.receive().expect("configureFailPoint");
    conn.send(&common::op_msg(3, 0, &doc! { "ping": 1, "$db": "admin" }));
    let shutdown = common::reply_body(&conn.receive().expect("ping"));
    assert_eq!(shutdown.get_i32("code").ok(), Some(91), "{shutdown}");
    assert_eq!(shutdown.get_document("topologyVersion").ok(), Some(&version), "the driver can tell it is stale");
    conn.send(&common::op_msg(4, 0, &doc! { "count": "c", "$db": "app" }));
    conn.receive().expect("count");
    // Other errors carry none, as in mongod.
    conn.send(&common::op_msg(5, 0, &doc! { "nosuchcommand": 1, "$db": "admin" }));
    let unknown = common::reply_body(&conn.receive().expect("reply"));
    assert_eq!(unknown.get_i32("code").ok(), Some(59));
    assert!(!unknown.contains_key("topologyVersion"), "{unknown}");
}
