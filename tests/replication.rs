//! Replica-set mode on one node (`--replSet`): initiation, `hello`, the member-state checks,
//! cluster times and `afterClusterTime`, write concerns, reconfiguration, step-down and
//! re-election, and a configuration that survives a restart. Through raw messages (to control
//! exactly what is sent) and the official driver (`?replicaSet=rs0`).

mod common;

use std::time::Duration;

use common::{TestServer, code, command, eventually_async};
use mongodb::bson::{Bson, Document, Timestamp, doc};
use mongodb::options::ReadConcern;

/// Initiates the set with this server as its one member, at `127.0.0.1:<port>`.
fn initiate(server: &TestServer) -> Document {
    let config =
        doc! { "_id": "rs0", "version": 1, "members": [{ "_id": 0, "host": format!("127.0.0.1:{}", server.port) }] };
    command(server, doc! { "replSetInitiate": config, "$db": "admin" })
}

#[tokio::test]
async fn replication_standalone_answers_replica_set_commands_as_mongod() {
    let server = TestServer::start(&[]);
    for name in ["replSetInitiate", "replSetGetStatus", "replSetGetConfig", "replSetReconfig", "replSetStepDown"] {
        let reply = command(&server, doc! { name: 1, "$db": "admin" });
        assert_eq!(code(&reply), Some(76), "{name}: {reply}");
    }
    let hello = command(&server, doc! { "hello": 1, "$db": "admin" });
    assert!(!hello.contains_key("setName") && !hello.contains_key("$clusterTime"), "{hello}");
    assert_eq!(hello.get_bool("isWritablePrimary").ok(), Some(true));
    let status = command(&server, doc! { "serverStatus": 1, "$db": "admin" });
    assert!(status.contains_key("uptime") && !status.contains_key("repl"), "a standalone has no repl section");
}

#[tokio::test]
async fn replication_member_waits_for_initiate_then_is_primary() {
    let server = TestServer::start(&["--replSet", "rs0"]);
    let hello = command(&server, doc! { "hello": 1, "$db": "admin" });
    assert_eq!(hello.get_bool("isWritablePrimary").ok(), Some(false), "{hello}");
    assert_eq!(hello.get_bool("isreplicaset").ok(), Some(true));
    assert_eq!(hello.get_str("info").ok(), Some("Does not have a valid replica set config"));
    assert!(!hello.contains_key("$clusterTime"), "no cluster time before initiate: {hello}");
    let counter = hello.get_document("topologyVersion").and_then(|v| v.get_i64("counter")).ok();

    // Before initiate: writes are not primary's, reads need secondaryOk and then a readable member.
    let insert = command(&server, doc! { "insert": "c", "documents": [{ "_id": 1 }], "$db": "test" });
    assert_eq!((code(&insert), insert.get_str("errmsg").ok()), (Some(10107), Some("not primary")));
    assert!(insert.contains_key("topologyVersion"), "a state-change error carries topologyVersion: {insert}");
    let find = command(&server, doc! { "find": "c", "$db": "test" });
    assert_eq!(code(&find), Some(13435), "{find}");
    let secondary_ok = doc! { "find": "c", "$readPreference": { "mode": "secondaryPreferred" }, "$db": "test" };
    assert_eq!(code(&command(&server, secondary_ok)), Some(13436));
    // The member's own database is always writable, as in mongod.
    let local = command(&server, doc! { "insert": "notes", "documents": [{ "_id": 1 }], "$db": "local" });
    assert_eq!(local.get_f64("ok").ok(), Some(1.0), "{local}");
    assert_eq!(code(&command(&server, doc! { "replSetGetStatus": 1, "$db": "admin" })), Some(94));
    assert_eq!(code(&command(&server, doc! { "replSetGetConfig": 1, "$db": "admin" })), Some(94));

    // A configuration naming another set, another server or two members is refused.
    let other =
        doc! { "_id": "rs1", "version": 1, "members": [{ "_id": 0, "host": format!("127.0.0.1:{}", server.port) }] };
    assert_eq!(code(&command(&server, doc! { "replSetInitiate": other, "$db": "admin" })), Some(93));
    let elsewhere = doc! { "_id": "rs0", "version": 1, "members": [{ "_id": 0, "host": "192.0.2.1:27017" }] };
    assert_eq!(code(&command(&server, doc! { "replSetInitiate": elsewhere, "$db": "admin" })), Some(74));
    let two = doc! { "_id": "rs0", "version": 1, "members": [
        { "_id": 0, "host": format!("127.0.0.1:{}", server.port) }, { "_id": 1, "host": "192.0.2.1:27017" },
    ] };
    assert_eq!(code(&command(&server, doc! { "replSetInitiate": two, "$db": "admin" })), Some(74));

    let initiated = initiate(&server);
    assert_eq!(initiated.get_f64("ok").ok(), Some(1.0), "{initiated}");
    assert!(initiated.get_timestamp("operationTime").is_ok(), "{initiated}");
    let again = initiate(&server);
    assert_eq!((code(&again), again.get_str("codeName").ok()), (Some(23), Some("AlreadyInitialized")));

    let me = format!("127.0.0.1:{}", server.port);
    let hello = command(&server, doc! { "hello": 1, "$db": "admin" });
    assert_eq!(hello.get_bool("isWritablePrimary").ok(), Some(true), "{hello}");
    assert_eq!(hello.get_bool("secondary").ok(), Some(false));
    assert_eq!(hello.get_str("setName").ok(), Some("rs0"));
    assert_eq!(hello.get_i32("setVersion").ok(), Some(1));
    assert_eq!(hello.get_array("hosts").ok(), Some(&vec![Bson::String(me.clone())]));
    assert_eq!(hello.get_str("primary").ok(), Some(me.as_str()));
    assert_eq!(hello.get_str("me").ok(), Some(me.as_str()));
    assert_eq!(
        hello.get_object_id("electionId").map(|id| id.to_hex()).ok().as_deref(),
        Some("7fffffff0000000000000001")
    );
    assert!(hello.get_document("lastWrite").and_then(|w| w.get_document("opTime")).is_ok(), "{hello}");
    let moved = hello.get_document("topologyVersion").and_then(|v| v.get_i64("counter")).ok();
    assert!(moved > counter, "initiate changes the topology: {counter:?} then {moved:?}");
    let cluster = hello.get_document("$clusterTime").expect("$clusterTime");
    assert!(cluster.get_timestamp("clusterTime").is_ok(), "{cluster}");
    let signature = cluster.get_document("signature").expect("signature");
    assert_eq!(signature.get_i64("keyId").ok(), Some(0));

    let status = command(&server, doc! { "replSetGetStatus": 1, "$db": "admin" });
    assert_eq!((status.get_str("set").ok(), status.get_i32("myState").ok()), (Some("rs0"), Some(1)), "{status}");
    let server_status = command(&server, doc! { "serverStatus": 1, "$db": "admin" });
    let repl = server_status.get_document("repl").cloned().unwrap_or_default();
    assert_eq!(
        (repl.get_str("setName").ok(), repl.get_bool("isWritablePrimary").ok()),
        (Some("rs0"), Some(true)),
        "{repl}"
    );
    assert_eq!(status.get_i64("term").ok(), Some(1));
    let members = status.get_array("members").expect("members");
    let member = members.first().and_then(Bson::as_document).expect("one member");
    assert_eq!(member.get_str("stateStr").ok(), Some("PRIMARY"));
    assert_eq!(member.get_bool("self").ok(), Some(true));
    let config = command(&server, doc! { "replSetGetConfig": 1, "$db": "admin" });
    let config = config.get_document("config").expect("config");
    assert_eq!((config.get_i32("version").ok(), config.get_i64("term").ok()), (Some(1), Some(1)), "{config}");

    // A write's operationTime is later than what came before; afterClusterTime up to it reads.
    let before = hello.get_document("$clusterTime").and_then(|c| c.get_timestamp("clusterTime")).expect("time");
    let insert = command(&server, doc! { "insert": "c", "documents": [{ "_id": 1 }], "$db": "test" });
    let written = insert.get_timestamp("operationTime").expect("operationTime");
    assert!((written.time, written.increment) > (before.time, before.increment), "{before:?} then {written:?}");
    let read = command(
        &server,
        doc! {
            "find": "c", "readConcern": { "level": "majority", "afterClusterTime": written }, "$db": "test"
        },
    );
    let batch = read.get_document("cursor").and_then(|c| c.get_array("firstBatch")).map(Vec::len).ok();
    assert_eq!(batch, Some(1), "{read}");
    let future = Timestamp { time: written.time + 3600, increment: 1 };
    let too_late = command(
        &server,
        doc! {
            "find": "c", "readConcern": { "afterClusterTime": future }, "$db": "test"
        },
    );
    assert_eq!(code(&too_late), Some(72), "{too_late}");
    assert!(
        too_late
            .get_str("errmsg")
            .is_ok_and(|m| m.starts_with("readConcern afterClusterTime value must not be greater"))
    );
    let linearizable =
        command(&server, doc! { "find": "c", "readConcern": { "level": "linearizable" }, "$db": "test" });
    assert_eq!(linearizable.get_f64("ok").ok(), Some(1.0), "{linearizable}");

    // Write concerns: a majority of one is this member; more members or an unknown mode are not.
    let majority = command(
        &server,
        doc! {
            "insert": "c", "documents": [{ "_id": 2 }], "writeConcern": { "w": "majority" }, "$db": "test"
        },
    );
    assert_eq!(majority.get_i32("n").ok(), Some(1), "{majority}");
    let two_nodes = command(
        &server,
        doc! { "insert": "c", "documents": [{ "_id": 3 }], "writeConcern": { "w": 2 }, "$db": "test" },
    );
    assert_eq!(code(&two_nodes), Some(100), "{two_nodes}");
    let mode = command(
        &server,
        doc! { "insert": "c", "documents": [{ "_id": 3 }], "writeConcern": { "w": "dc" }, "$db": "test" },
    );
    assert_eq!(code(&mode), Some(79), "{mode}");
    // An index build's commit quorum: this member is all of them.
    let index = |quorum: Bson| {
        doc! {
            "createIndexes": "c", "indexes": [{ "key": { "q": 1 }, "name": "q_1" }], "commitQuorum": quorum, "$db": "test"
        }
    };
    assert_eq!(command(&server, index(Bson::String("majority".into()))).get_f64("ok").ok(), Some(1.0));
    assert_eq!(command(&server, index(Bson::String("votingMembers".into()))).get_f64("ok").ok(), Some(1.0));
    assert_eq!(code(&command(&server, index(Bson::Int32(2)))), Some(278));

    // The driver discovers the set from `?replicaSet=rs0` and reads and writes through it,
    // with retryable writes (its default) and without.
    let client = server.client("replicaSet=rs0&retryWrites=false").await;
    let collection = client.database("test").collection::<Document>("c");
    collection.insert_one(doc! { "_id": 4 }).await.expect("insert through the set");
    let session = client.start_session().await;
    let mut session = session.expect("session");
    collection.insert_one(doc! { "_id": 5 }).session(&mut session).await.expect("insert in session");
    let found = collection
        .find_one(doc! { "_id": 5 })
        .read_concern(ReadConcern::majority())
        .session(&mut session)
        .await
        .expect("causally consistent read");
    assert!(found.is_some());
    let retrying = server.client("replicaSet=rs0").await.database("test").collection::<Document>("c");
    retrying.insert_one(doc! { "_id": 6 }).await.expect("a retryable insert");
    retrying.update_one(doc! { "_id": 6 }, doc! { "$set": { "x": 1 } }).await.expect("a retryable update");
    let changed = retrying.find_one_and_update(doc! { "_id": 6 }, doc! { "$inc": { "x": 1 } }).await.expect("fam");
    assert_eq!(changed.and_then(|d| d.get_i32("x").ok()), Some(1));
    retrying.delete_one(doc! { "_id": 6 }).await.expect("a retryable delete");
}

/// `{lsid, txnNumber}` of a retryable write.
fn retryable(session: &Document, txn: i64) -> Document {
    doc! { "lsid": session.clone(), "txnNumber": txn }
}

fn new_session() -> Document {
    doc! { "id": mongodb::bson::Binary { subtype: mongodb::bson::spec::BinarySubtype::Uuid, bytes: mongodb::bson::Uuid::new().bytes().to_vec() } }
}

/// Sends `body` with the session and transaction number added.
fn send(server: &TestServer, mut body: Document, session: &Document, txn: i64) -> Document {
    body.extend(retryable(session, txn));
    command(server, body)
}

#[tokio::test]
async fn replication_retried_writes_apply_once_also_across_a_restart() {
    let server = TestServer::start(&["--replSet", "rs0"]);
    assert_eq!(initiate(&server).get_f64("ok").ok(), Some(1.0));
    let session = new_session();

    // An insert whose reply was lost is sent again: answered from its record, applied once.
    let insert = doc! { "insert": "c", "documents": [{ "_id": 1 }, { "_id": 2 }], "$db": "test" };
    let first = send(&server, insert.clone(), &session, 1);
    assert_eq!(first.get_i32("n").ok(), Some(2), "{first}");
    assert!(!first.contains_key("retriedStmtIds"));
    let again = send(&server, insert.clone(), &session, 1);
    assert_eq!(again.get_i32("n").ok(), Some(2), "{again}");
    assert!(!again.contains_key("writeErrors"), "no duplicate key: the statements did not run again: {again}");
    assert_eq!(again.get_array("retriedStmtIds").ok(), Some(&vec![Bson::Int32(0), Bson::Int32(1)]));

    let increment =
        doc! { "update": "c", "updates": [{ "q": { "_id": 1 }, "u": { "$inc": { "x": 1 } } }], "$db": "test" };
    for _ in 0..3 {
        let reply = send(&server, increment.clone(), &session, 2);
        assert_eq!((reply.get_i32("n").ok(), reply.get_i32("nModified").ok()), (Some(1), Some(1)), "{reply}");
    }
    let fam = doc! { "findAndModify": "c", "query": { "_id": 2 }, "update": { "$inc": { "x": 10 } }, "new": true, "$db": "test" };
    let first = send(&server, fam.clone(), &session, 3);
    let again = send(&server, fam.clone(), &session, 3);
    assert_eq!(first.get_document("value").ok(), again.get_document("value").ok(), "{again}");
    assert_eq!(again.get_i32("retriedStmtId").ok(), Some(0), "{again}");

    // An older transaction number than the session's latest is refused.
    let old = send(&server, increment.clone(), &session, 2);
    assert_eq!((code(&old), old.get_str("codeName").ok()), (Some(225), Some("TransactionTooOld")), "{old}");
    // A statement that may change many documents cannot be retried from one record.
    let multi =
        doc! { "update": "c", "updates": [{ "q": {}, "u": { "$inc": { "y": 1 } }, "multi": true }], "$db": "test" };
    let refused = send(&server, multi, &session, 4);
    let error = refused.get_array("writeErrors").ok().and_then(|e| e.first()).and_then(Bson::as_document).cloned();
    assert_eq!(error.and_then(|e| e.get_i32("code").ok()), Some(72), "{refused}");
    // txnNumber on a command that is not a retryable write; a transaction takes the next number,
    // after which an older retryable write is too old.
    assert_eq!(code(&send(&server, doc! { "find": "c", "$db": "test" }, &session, 5)), Some(50768));
    let transaction = doc! { "find": "c", "autocommit": false, "startTransaction": true, "$db": "test" };
    assert_eq!(send(&server, transaction, &session, 6).get_f64("ok").ok(), Some(1.0));
    assert_eq!(code(&send(&server, increment.clone(), &session, 5)), Some(225));

    // After a restart the records are still there: the retry is answered, not applied.
    let delete = doc! { "delete": "c", "deletes": [{ "q": { "_id": 1 }, "limit": 1 }], "$db": "test" };
    assert_eq!(send(&server, delete.clone(), &session, 7).get_i32("n").ok(), Some(1));
    let server = server.restart(&["--replSet", "rs0"]);
    let insert_again = send(&server, insert, &session, 1);
    assert_eq!(code(&insert_again), Some(225), "a newer transaction ran since: {insert_again}");
    let deleted_again = send(&server, delete, &session, 7);
    assert_eq!(deleted_again.get_i32("n").ok(), Some(1), "the first answer, from the record: {deleted_again}");
    assert_eq!(deleted_again.get_array("retriedStmtIds").ok(), Some(&vec![Bson::Int32(0)]));
    let x = command(&server, doc! { "find": "c", "filter": { "_id": 2 }, "$db": "test" });
    let x = x
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .ok()
        .and_then(|b| b.first())
        .and_then(Bson::as_document)
        .and_then(|d| d.get_i32("x").ok());
    assert_eq!(x, Some(10), "findAndModify applied once");
    let count = command(&server, doc! { "count": "c", "$db": "test" });
    assert_eq!(count.get_i32("n").ok(), Some(1));
}

#[tokio::test]
async fn replication_retryable_errors_are_labelled_and_the_driver_retries() {
    let server = TestServer::start(&["--replSet", "rs0", "--setParameter", "enableTestCommands=1"]);
    assert_eq!(initiate(&server).get_f64("ok").ok(), Some(1.0));
    let fail_once = |code: i32| {
        doc! {
            "configureFailPoint": "failCommand", "mode": { "times": 1 },
            "data": { "failCommands": ["insert"], "errorCode": code }, "$db": "admin"
        }
    };
    command(&server, fail_once(189));
    let session = new_session();
    let reply = send(&server, doc! { "insert": "c", "documents": [{ "_id": 1 }], "$db": "test" }, &session, 1);
    assert_eq!(code(&reply), Some(189));
    assert_eq!(reply.get_array("errorLabels").ok(), Some(&vec![Bson::String("RetryableWriteError".into())]), "{reply}");
    // Without txnNumber, the same error carries no label; nor does a non-retryable error.
    command(&server, fail_once(189));
    let plain = command(&server, doc! { "insert": "c", "documents": [{ "_id": 1 }], "$db": "test" });
    assert!(!plain.contains_key("errorLabels"), "{plain}");
    command(&server, fail_once(2));
    let other = send(&server, doc! { "insert": "c", "documents": [{ "_id": 1 }], "$db": "test" }, &session, 2);
    assert!(!other.contains_key("errorLabels"), "{other}");

    // The driver retries a write that failed with a labelled error, once, and it applies once.
    command(&server, fail_once(91));
    let client = server.client("replicaSet=rs0").await;
    let collection = client.database("test").collection::<Document>("d");
    collection.insert_one(doc! { "_id": 1 }).await.expect("retried by the driver");
    assert_eq!(collection.count_documents(doc! {}).await.ok(), Some(1));

    // The connection drops after the write has committed (mongod's onPrimaryTransactionalWrite
    // fail point): the driver sends it again, the record answers, and it applies once.
    let drop_after_commit =
        doc! { "configureFailPoint": "onPrimaryTransactionalWrite", "mode": { "times": 1 }, "$db": "admin" };
    command(&server, drop_after_commit.clone());
    collection.insert_one(doc! { "_id": 2, "n": 0 }).await.expect("insert, retried after the drop");
    command(&server, drop_after_commit.clone());
    collection
        .update_one(doc! { "_id": 2 }, doc! { "$inc": { "n": 1 } })
        .await
        .expect("update, retried after the drop");
    command(&server, drop_after_commit);
    let before = collection.find_one_and_update(doc! { "_id": 2 }, doc! { "$inc": { "n": 10 } }).await.expect("fam");
    assert_eq!(before.and_then(|d| d.get_i32("n").ok()), Some(1), "the first attempt's answer");
    let stored = collection.find_one(doc! { "_id": 2 }).await.ok().flatten().and_then(|d| d.get_i32("n").ok());
    assert_eq!(stored, Some(11), "each write applied exactly once");
    assert_eq!(collection.count_documents(doc! {}).await.ok(), Some(2));
    // Failing before the commit: nothing applied the first time, the retry applies it.
    command(
        &server,
        doc! {
            "configureFailPoint": "onPrimaryTransactionalWrite", "mode": { "times": 1 },
            "data": { "failBeforeCommitExceptionCode": 1 }, "$db": "admin"
        },
    );
    collection.delete_one(doc! { "_id": 1 }).await.expect("delete, retried");
    assert_eq!(collection.count_documents(doc! {}).await.ok(), Some(1));
}

#[tokio::test]
async fn replication_initiate_without_config_uses_the_bound_address() {
    let server = TestServer::start(&["--replSet", "rs0"]);
    let reply = command(&server, doc! { "replSetInitiate": {}, "$db": "admin" });
    assert_eq!(
        reply.get_str("info2").ok(),
        Some("no configuration specified. Using a default configuration for the set")
    );
    assert_eq!(reply.get_str("me").ok(), Some(format!("127.0.0.1:{}", server.port).as_str()), "{reply}");
    let hello = command(&server, doc! { "isMaster": 1, "$db": "admin" });
    assert_eq!(hello.get_bool("ismaster").ok(), Some(true), "{hello}");
}

#[tokio::test]
async fn replication_reconfig_step_down_and_reelection() {
    let server = TestServer::start(&["--replSet", "rs0"]);
    assert_eq!(initiate(&server).get_f64("ok").ok(), Some(1.0));
    let me = format!("127.0.0.1:{}", server.port);

    let next =
        doc! { "_id": "rs0", "version": 2, "members": [{ "_id": 0, "host": me.clone(), "tags": { "dc": "a" } }] };
    let reply = command(&server, doc! { "replSetReconfig": next, "$db": "admin" });
    assert_eq!(reply.get_f64("ok").ok(), Some(1.0), "{reply}");
    let hello = command(&server, doc! { "hello": 1, "$db": "admin" });
    assert_eq!(hello.get_i32("setVersion").ok(), Some(2), "{hello}");
    let same = doc! { "_id": "rs0", "version": 2, "members": [{ "_id": 0, "host": me.clone() }] };
    assert_eq!(code(&command(&server, doc! { "replSetReconfig": same, "$db": "admin" })), Some(103));
    let added = doc! { "_id": "rs0", "version": 3, "members": [{ "_id": 0, "host": me.clone() }, { "_id": 1, "host": "192.0.2.1:27017" }] };
    assert_eq!(code(&command(&server, doc! { "replSetReconfig": added, "$db": "admin" })), Some(74));

    // No secondary can catch up: refused after the catch-up period unless forced.
    let refused = command(&server, doc! { "replSetStepDown": 5, "secondaryCatchUpPeriodSecs": 0, "$db": "admin" });
    assert_eq!(code(&refused), Some(262), "{refused}");
    let longer = command(&server, doc! { "replSetStepDown": 5, "secondaryCatchUpPeriodSecs": 10, "$db": "admin" });
    assert_eq!(code(&longer), Some(2), "{longer}");

    let counter = hello.get_document("topologyVersion").and_then(|v| v.get_i64("counter")).expect("counter");
    let process = hello.get_document("topologyVersion").and_then(|v| v.get_object_id("processId")).expect("id");
    let forced = command(
        &server,
        doc! {
            "replSetStepDown": 1, "secondaryCatchUpPeriodSecs": 0, "force": true, "$db": "admin"
        },
    );
    assert_eq!(forced.get_f64("ok").ok(), Some(1.0), "{forced}");
    let hello = command(&server, doc! { "hello": 1, "$db": "admin" });
    assert_eq!((hello.get_bool("isWritablePrimary").ok(), hello.get_bool("secondary").ok()), (Some(false), Some(true)));
    assert!(!hello.contains_key("primary") && !hello.contains_key("electionId"), "{hello}");
    let insert = command(&server, doc! { "insert": "c", "documents": [{}], "$db": "test" });
    assert_eq!(code(&insert), Some(10107));
    let read = command(&server, doc! { "find": "c", "$readPreference": { "mode": "secondary" }, "$db": "test" });
    assert_eq!(read.get_f64("ok").ok(), Some(1.0), "a secondary serves reads that allow it: {read}");

    // An awaitable hello from before the step-down answers at once; one from after it answers
    // when the member is primary again, in term 2.
    let stale = command(
        &server,
        doc! {
            "hello": 1, "topologyVersion": { "processId": process, "counter": counter }, "maxAwaitTimeMS": 10_000, "$db": "admin"
        },
    );
    let now = stale.get_document("topologyVersion").and_then(|v| v.get_i64("counter")).expect("counter");
    assert!(now > counter, "{stale}");
    let started = std::time::Instant::now();
    let woken = command(
        &server,
        doc! {
            "hello": 1, "topologyVersion": { "processId": process, "counter": now }, "maxAwaitTimeMS": 10_000, "$db": "admin"
        },
    );
    assert!(started.elapsed() < Duration::from_secs(9), "woken by the election, not the timeout");
    assert_eq!(woken.get_bool("isWritablePrimary").ok(), Some(true), "{woken}");
    assert_eq!(
        woken.get_object_id("electionId").map(|id| id.to_hex()).ok().as_deref(),
        Some("7fffffff0000000000000002")
    );
    let client = server.client("replicaSet=rs0&retryWrites=false").await;
    let collection = client.database("test").collection::<Document>("c");
    let written =
        eventually_async(Duration::from_secs(10), || async { collection.insert_one(doc! {}).await.is_ok() }).await;
    assert!(written, "writes resume on the new primary");
}

#[tokio::test]
async fn replication_configuration_survives_a_restart() {
    let server = TestServer::start(&["--replSet", "rs0"]);
    assert_eq!(initiate(&server).get_f64("ok").ok(), Some(1.0));
    command(&server, doc! { "insert": "c", "documents": [{ "_id": 1 }], "$db": "test" });
    let port = server.port;

    let server = server.restart(&["--replSet", "rs0"]);
    let hello = command(&server, doc! { "hello": 1, "$db": "admin" });
    assert_eq!(hello.get_bool("isWritablePrimary").ok(), Some(true), "primary again at start: {hello}");
    assert_eq!(hello.get_array("hosts").ok(), Some(&vec![Bson::String(format!("127.0.0.1:{port}"))]));
    let status = command(&server, doc! { "replSetGetStatus": 1, "$db": "admin" });
    assert_eq!(status.get_i64("term").ok(), Some(2), "a new term at each start: {status}");
    let count = command(&server, doc! { "count": "c", "$db": "test" });
    assert_eq!(count.get_i32("n").ok(), Some(1));

    // Started without --replSet over a member's data: a standalone, with mongod's warning.
    let mut server = server.restart(&[]);
    let hello = command(&server, doc! { "hello": 1, "$db": "admin" });
    assert!(!hello.contains_key("setName"), "{hello}");
    assert!(server.wait_for_log("\"id\":21558", Duration::from_secs(5)), "warned about system.replset");
    // Under another set name: refused at start, naming both.
    assert!(server.terminate().success());
    let output =
        common::run_to_exit(&["--replSet", "other", "--dbpath", &server.dir.path().join("db").to_string_lossy()]);
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("names the set rs0") && text.contains("other"), "{text}");
}
