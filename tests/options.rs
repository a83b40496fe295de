//! Options and generic arguments answered as a standalone mongod 7.0 answers them: unknown
//! fields, duplicates, transactions and retryable writes (`txnNumber`), read and write
//! concerns, `system.*` namespaces, tailable cursors, `commitQuorum`, `setParameter` and the
//! `maxTimeAlwaysTimeOut` fail point.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, reply_body};
use mongodb::bson::{Bson, Document, Timestamp, doc};
use mongodb::error::ErrorKind;

/// The code and message of a command error.
fn failure(outcome: mongodb::error::Result<Document>) -> (i32, String) {
    match outcome {
        Ok(reply) => panic!("expected an error, got {reply}"),
        Err(error) => match error.kind.as_ref() {
            ErrorKind::Command(e) => (e.code, e.message.clone()),
            other => panic!("expected a command error, got {other:?}"),
        },
    }
}

/// An OP_MSG with a body section and one kind-1 document sequence.
#[expect(clippy::expect_used, reason = "a document that cannot be encoded is a broken test")]
fn op_msg_with_sequence(request_id: i32, body: &Document, identifier: &str, documents: &[Document]) -> Vec<u8> {
    let documents: Vec<Vec<u8>> = documents.iter().map(|d| d.to_vec().expect("document")).collect();
    common::op_msg_with_raw_sequence(request_id, body, identifier, &documents)
}

#[tokio::test]
async fn options_transaction_numbers_are_refused_and_nothing_is_applied() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("app");
    db.collection::<Document>("c").insert_one(doc! { "_id": 1, "n": 0 }).await.expect("seed");
    let mut session = client.start_session().await.expect("session");
    // The exact reply, on a raw connection (the driver rewrites this error's message into
    // advice about retryWrites).
    let mut raw = server.raw();
    let lsid = doc! { "id": Bson::Binary(mongodb::bson::Binary {
        subtype: mongodb::bson::spec::BinarySubtype::Uuid,
        bytes: vec![1; 16],
    }) };
    raw.send(&common::op_msg(
        1,
        0,
        &doc! { "insert": "c", "documents": [{ "_id": 3 }], "lsid": lsid, "txnNumber": 1_i64, "$db": "app" },
    ));
    let reply = reply_body(&raw.receive().expect("reply"));
    assert_eq!(reply.get_i32("code").ok(), Some(20), "{reply}");
    assert_eq!(reply.get_str("codeName").ok(), Some("IllegalOperation"));
    assert_eq!(
        reply.get_str("errmsg").ok(),
        Some("Transaction numbers are only allowed on a replica set member or mongos")
    );
    // A driver's first statement of a transaction.
    let outcome = db
        .run_command(doc! {
            "insert": "c", "documents": [{ "_id": 2 }],
            "txnNumber": 1_i64, "startTransaction": true, "autocommit": false,
        })
        .session(&mut session)
        .await;
    assert_eq!(failure(outcome).0, 20);
    // A retryable write, sent twice with one number: neither is applied.
    for _ in 0..2 {
        let outcome = db
            .run_command(doc! { "update": "c", "updates": [{ "q": { "_id": 1 }, "u": { "$inc": { "n": 1 } } }], "txnNumber": 7_i64 })
            .session(&mut session)
            .await;
        assert_eq!(failure(outcome).0, 20);
    }
    let docs: Vec<Document> = {
        use futures_util::TryStreamExt;
        db.collection::<Document>("c").find(doc! {}).await.expect("find").try_collect().await.expect("docs")
    };
    assert_eq!(docs, [doc! { "_id": 1, "n": 0 }], "nothing of the refused writes was applied");
    // Without a session the number is refused first for its missing lsid.
    let outcome = db.run_command(doc! { "insert": "c", "documents": [{}], "txnNumber": 1_i64 }).await;
    // The driver adds an implicit session to run_command, so the standalone refusal comes first.
    assert_eq!(failure(outcome).0, 20);
    // Commands that take no session refuse the number themselves; ending a transaction that
    // cannot exist is refused as mongod refuses it outside one.
    let outcome = db.run_command(doc! { "ping": 1, "txnNumber": 1_i64 }).session(&mut session).await;
    assert_eq!(failure(outcome), (50889, "It is illegal to provide a txnNumber for this command".to_owned()));
    let admin = client.database("admin");
    let outcome = admin.run_command(doc! { "commitTransaction": 1 }).await;
    assert_eq!(failure(outcome), (125, "commitTransaction must be run within a transaction".to_owned()));
    let outcome = admin.run_command(doc! { "abortTransaction": 1 }).await;
    assert_eq!(failure(outcome), (125, "abortTransaction must be run within a transaction".to_owned()));
    let outcome = admin
        .run_command(doc! { "commitTransaction": 1, "txnNumber": 1_i64, "autocommit": false })
        .session(&mut session)
        .await;
    assert_eq!(failure(outcome).0, 20);
}

#[tokio::test]
async fn options_read_concern_as_a_standalone_mongod() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("app");
    db.collection::<Document>("c").insert_one(doc! { "_id": 1 }).await.expect("seed");
    let find = |concern: Document| doc! { "find": "c", "readConcern": concern };
    assert_eq!(
        failure(db.run_command(find(doc! { "level": "bogus" })).await),
        (9, "readConcern.level must be either 'local', 'majority', 'linearizable', 'available', or 'snapshot'".into())
    );
    assert_eq!(
        failure(db.run_command(find(doc! { "level": "snapshot" })).await),
        (123, "node needs to be a replica set member to use readConcern: snapshot".into())
    );
    assert_eq!(
        failure(db.run_command(find(doc! { "level": "linearizable" })).await),
        (123, "node needs to be a replica set member to use read concern".into())
    );
    let after = doc! { "level": "majority", "afterClusterTime": Timestamp { time: 1, increment: 1 } };
    assert_eq!(
        failure(db.run_command(find(after)).await),
        (20, "Cannot specify afterClusterTime readConcern without replication enabled".into())
    );
    let at = doc! { "level": "snapshot", "atClusterTime": Timestamp { time: 1, increment: 1 } };
    assert_eq!(failure(db.run_command(find(at)).await).0, 123);
    assert_eq!(
        failure(db.run_command(doc! { "count": "c", "readConcern": { "level": "snapshot" } }).await),
        (
            72,
            "Command count does not support { readConcern: { level: \"snapshot\", provenance: \"clientSupplied\" } } \
             :: caused by :: read concern not supported"
                .into()
        )
    );
    for level in ["local", "available", "majority"] {
        let reply = db.run_command(find(doc! { "level": level })).await.expect(level);
        let batch = reply.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("batch");
        assert_eq!(batch.len(), 1, "{level}");
    }
}

#[tokio::test]
async fn options_write_concern_as_a_standalone_mongod() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("app");
    let insert = |concern: Document| doc! { "insert": "c", "documents": [{ "a": 1 }], "writeConcern": concern };
    assert_eq!(
        failure(db.run_command(insert(doc! { "w": 2 })).await),
        (2, "cannot use 'w' > 1 when a host is not replicated".into())
    );
    assert_eq!(
        failure(db.run_command(insert(doc! { "w": -1 })).await),
        (9, "w has to be a non-negative number and not greater than 50; found: -1".into())
    );
    assert_eq!(
        failure(db.run_command(insert(doc! { "w": "dc1" })).await),
        (2, "cannot use non-majority 'w' mode dc1 when a host is not a member of a replica set".into())
    );
    assert_eq!(
        failure(db.run_command(doc! { "find": "c", "writeConcern": { "w": 1 } }).await),
        (72, "Command does not support writeConcern".into())
    );
    assert_eq!(db.collection::<Document>("c").count_documents(doc! {}).await.expect("count"), 0, "nothing inserted");
    let reply = db.run_command(insert(doc! { "w": "majority", "wtimeout": 100 })).await.expect("majority");
    assert_eq!(reply.get_i32("n").ok(), Some(1));
}

#[tokio::test]
async fn options_unknown_fields_are_refused_where_mongod_is_strict() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("app");
    assert_eq!(
        failure(db.run_command(doc! { "find": "c", "foo": 1 }).await),
        (40415, "BSON field 'find.foo' is an unknown field.".into())
    );
    assert_eq!(
        failure(db.run_command(doc! { "insert": "c", "documents": [{}], "foo": 1 }).await),
        (40415, "BSON field 'insert.foo' is an unknown field.".into())
    );
    assert_eq!(
        failure(db.run_command(doc! { "explain": { "find": "c", "foo": 1 } }).await),
        (40415, "BSON field 'find.foo' is an unknown field.".into())
    );
    assert_eq!(db.collection::<Document>("c").count_documents(doc! {}).await.expect("count"), 0);
    // Commands mongod parses leniently stay lenient.
    db.run_command(doc! { "ping": 1, "foo": 1 }).await.expect("ping ignores other fields");
    db.run_command(doc! { "hello": 1, "foo": 1 }).await.expect("hello is not strict");
    // Internal fields and features not built yet are refused, not ignored.
    assert_eq!(failure(db.run_command(doc! { "find": "c", "term": 1_i64 }).await).0, 40415);
    assert_eq!(failure(db.run_command(doc! { "create": "t", "encryptedFields": { "fields": [] } }).await).0, 238);
}

#[test]
fn options_documents_in_body_and_sequence_are_a_duplicate_field() {
    let server = TestServer::start(&[]);
    let mut raw = server.raw();
    let body = doc! { "insert": "c", "documents": [{ "_id": 1 }], "$db": "app" };
    raw.send(&op_msg_with_sequence(1, &body, "documents", &[doc! { "_id": 2 }]));
    let reply = reply_body(&raw.receive().expect("reply"));
    assert_eq!(reply.get_i32("code").ok(), Some(40413), "{reply}");
    assert_eq!(reply.get_str("errmsg").ok(), Some("BSON field 'insert.documents' is a duplicate field"));
    // A sequence the command does not take.
    let body = doc! { "insert": "c", "documents": [{ "_id": 1 }], "$db": "app" };
    raw.send(&op_msg_with_sequence(2, &body, "updates", &[doc! {}]));
    let reply = reply_body(&raw.receive().expect("reply"));
    assert_eq!(reply.get_i32("code").ok(), Some(40415), "{reply}");
    // Hand-written commands take none at all.
    raw.send(&op_msg_with_sequence(3, &doc! { "ping": 1, "$db": "admin" }, "documents", &[doc! {}]));
    let reply = reply_body(&raw.receive().expect("reply"));
    assert_eq!(reply.get_i32("code").ok(), Some(40472), "{reply}");
    assert_eq!(reply.get_str("errmsg").ok(), Some("The ping command does not support document sequences."));
    // Nothing was inserted.
    raw.send(&common::op_msg(4, 0, &doc! { "count": "c", "$db": "app" }));
    let reply = reply_body(&raw.receive().expect("reply"));
    assert_eq!(reply.get_i32("n").ok(), Some(0), "{reply}");
}

#[tokio::test]
async fn options_system_namespaces_as_mongod() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("app");
    assert_eq!(
        failure(db.run_command(doc! { "insert": "system.foo", "documents": [{}] }).await),
        (73, "Invalid system namespace: app.system.foo".into())
    );
    assert_eq!(
        failure(db.run_command(doc! { "insert": "system.views", "documents": [{}] }).await),
        (73, "cannot write to app.system.views".into())
    );
    let reply = db.run_command(doc! { "insert": "system.js", "documents": [{ "_id": "f" }] }).await.expect("js");
    assert_eq!(reply.get_i32("n").ok(), Some(1));
    let names = db.list_collection_names().await.expect("names");
    assert!(!names.iter().any(|n| n == "system.foo"), "{names:?}");
}

#[tokio::test]
async fn options_tailable_and_commit_quorum_as_a_standalone_mongod() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("app");
    db.collection::<Document>("plain").insert_one(doc! { "a": 1 }).await.expect("seed");
    assert_eq!(
        failure(db.run_command(doc! { "find": "plain", "tailable": true }).await),
        (
            2,
            "error processing query: ns=app.plainTree: $and\nSort: {}\nProj: {}\n tailable cursor requested on non \
             capped collection"
                .into()
        )
    );
    assert_eq!(
        failure(db.run_command(doc! { "find": "plain", "awaitData": true }).await),
        (9, "Cannot set 'awaitData' without also setting 'tailable'".into())
    );
    assert_eq!(
        failure(
            db.run_command(doc! { "createIndexes": "plain", "indexes": [{ "key": { "a": 1 }, "name": "a_1" }], "commitQuorum": "majority" })
                .await
        ),
        (2, "Standalones can't specify commitQuorum".into())
    );
    let indexes = db.run_command(doc! { "listIndexes": "plain" }).await.expect("listIndexes");
    let batch = indexes.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("batch");
    assert_eq!(batch.len(), 1, "no index was built: {batch:?}");
}

#[tokio::test]
async fn options_set_parameter_changes_the_running_server() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let admin = client.database("admin");
    let db = client.database("app");
    let coll = db.collection::<Document>("c");
    coll.insert_many((0..5).map(|i| doc! { "_id": i })).await.expect("seed");

    // cursorTimeoutMillis: the reaper closes an idle cursor under the new timeout.
    let reply = db.run_command(doc! { "find": "c", "batchSize": 1 }).await.expect("find");
    let id = reply.get_document("cursor").and_then(|c| c.get_i64("id")).expect("cursor id");
    assert_ne!(id, 0);
    let reply = admin.run_command(doc! { "setParameter": 1, "cursorTimeoutMillis": 300 }).await.expect("set");
    assert_eq!(reply.get_i64("was").ok(), Some(600_000), "{reply}");
    let reply = admin.run_command(doc! { "getParameter": 1, "cursorTimeoutMillis": 1 }).await.expect("get");
    assert_eq!(reply.get_i64("cursorTimeoutMillis").ok(), Some(300));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(Duration::from_millis(400)).await;
        match db.run_command(doc! { "getMore": id, "collection": "c", "batchSize": 1 }).await {
            Err(error) if matches!(error.kind.as_ref(), ErrorKind::Command(e) if e.code == 43) => break,
            _ => assert!(Instant::now() < deadline, "the idle cursor was never reaped"),
        }
    }

    // logLevel: debug lines (a failed command's) appear once the level is 1.
    admin.run_command(doc! { "setParameter": 1, "logLevel": 1 }).await.expect("logLevel");
    let reply = admin.run_command(doc! { "getParameter": 1, "logLevel": 1 }).await.expect("get");
    assert_eq!(reply.get_i32("logLevel").ok(), Some(1));
    let _ = db.run_command(doc! { "find": "c", "marker": "setParameter-logLevel" }).await;
    assert!(server.wait_for_log("\"Command failed\"", Duration::from_secs(10)), "no debug line at logLevel 1");

    // ttlMonitorSleepSecs: the TTL monitor wakes at the new period instead of in 60 s.
    let ttl = db.collection::<Document>("ttl");
    ttl.create_index(
        mongodb::IndexModel::builder()
            .keys(doc! { "at": 1 })
            .options(mongodb::options::IndexOptions::builder().expire_after(Duration::from_secs(0)).build())
            .build(),
    )
    .await
    .expect("ttl index");
    ttl.insert_one(doc! { "at": mongodb::bson::DateTime::from_millis(0) }).await.expect("expired doc");
    admin.run_command(doc! { "setParameter": 1, "ttlMonitorSleepSecs": 1 }).await.expect("ttl");
    let deadline = Instant::now() + Duration::from_secs(15);
    while ttl.count_documents(doc! {}).await.expect("count") > 0 {
        assert!(Instant::now() < deadline, "the TTL monitor kept its 60 s period");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Unknown and startup-only parameters.
    assert_eq!(
        failure(admin.run_command(doc! { "setParameter": 1, "noSuchParameter": 1 }).await),
        (72, "attempted to set unrecognized parameter [noSuchParameter], use help:true to see options ".into())
    );
    assert_eq!(
        failure(admin.run_command(doc! { "setParameter": 1, "enableTestCommands": 1 }).await),
        (20, "not allowed to change [enableTestCommands] at runtime".into())
    );
}

#[tokio::test]
async fn options_max_time_always_time_out_fail_point() {
    let server = TestServer::start(&["--setParameter", "enableTestCommands=1"]);
    let client = server.client("").await;
    let admin = client.database("admin");
    let db = client.database("app");
    db.collection::<Document>("c").insert_one(doc! { "a": 1 }).await.expect("seed");
    admin
        .run_command(doc! { "configureFailPoint": "maxTimeAlwaysTimeOut", "mode": "alwaysOn" })
        .await
        .expect("configure");
    for command in [
        doc! { "find": "c", "maxTimeMS": 10_000 },
        doc! { "count": "c", "maxTimeMS": 10_000 },
        doc! { "insert": "c", "documents": [{}], "maxTimeMS": 10_000 },
    ] {
        assert_eq!(
            failure(db.run_command(command.clone()).await),
            (50, "operation exceeded time limit".into()),
            "{command}"
        );
    }
    db.run_command(doc! { "find": "c" }).await.expect("no time limit, no timeout");
    let reply =
        admin.run_command(doc! { "configureFailPoint": "maxTimeAlwaysTimeOut", "mode": "off" }).await.expect("off");
    assert!(reply.get_i64("count").is_ok_and(|n| n >= 3), "it fired for each timed command: {reply}");
    db.run_command(doc! { "find": "c", "maxTimeMS": 10_000 }).await.expect("off again");
    assert_eq!(db.collection::<Document>("c").count_documents(doc! {}).await.expect("count"), 1);
}

#[tokio::test]
async fn options_api_and_listing_batches() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("app");
    assert_eq!(failure(db.run_command(doc! { "listCommands": 1, "apiVersion": "1", "apiStrict": true }).await).0, 323);
    assert_eq!(
        failure(db.run_command(doc! { "ping": 1, "apiVersion": "2" }).await),
        (322, "API version must be \"1\"".into())
    );
    db.run_command(doc! { "ping": 1, "apiVersion": "1", "apiStrict": true }).await.expect("ping is in version 1");
    for name in ["a", "b", "c"] {
        db.create_collection(name).await.expect("create");
    }
    let reply = db
        .run_command(doc! { "listCollections": 1, "nameOnly": true, "cursor": { "batchSize": 1 } })
        .await
        .expect("list");
    let cursor = reply.get_document("cursor").expect("cursor");
    assert_eq!(cursor.get_array("firstBatch").map(Vec::len).ok(), Some(1));
    let id = cursor.get_i64("id").expect("id");
    assert_ne!(id, 0, "the rest is a cursor");
    let more = db.run_command(doc! { "getMore": id, "collection": "$cmd.listCollections" }).await.expect("getMore");
    let rest = more.get_document("cursor").and_then(|c| c.get_array("nextBatch")).expect("next");
    assert_eq!(rest.len(), 2);
    assert!(rest.iter().all(|d| matches!(d, Bson::Document(_))));
    // A listing cursor left open is killed as any other.
    let reply = db.run_command(doc! { "listIndexes": "a", "cursor": { "batchSize": 0 } }).await.expect("listIndexes");
    let id = reply.get_document("cursor").and_then(|c| c.get_i64("id")).expect("id");
    assert_ne!(id, 0);
    let killed = db.run_command(doc! { "killCursors": "$cmd.listIndexes.a", "cursors": [id] }).await.expect("kill");
    assert_eq!(killed.get_array("cursorsKilled").map(Vec::len).ok(), Some(1), "{killed}");
}
