//! The oplog of a replica-set member (`local.oplog.rs`): mongod's entry shapes for every kind
//! of change, its size limit (`--oplogSize`), tailing readers that seek by time and wake on new
//! entries, its protection from direct writes, and its survival across a restart.

mod common;

use common::{TestServer, code, command, eventually, op_msg, reply_body};
use mongodb::bson::{Bson, Document, Timestamp, doc};

/// A cursor reply's first (or next) batch.
fn batch(reply: &Document) -> Vec<Document> {
    let cursor = reply.get_document("cursor").cloned().unwrap_or_default();
    let docs = cursor.get_array("firstBatch").or_else(|_| cursor.get_array("nextBatch")).cloned().unwrap_or_default();
    docs.into_iter().filter_map(|d| d.as_document().cloned()).collect()
}

/// Every oplog entry, oldest first.
fn oplog(server: &TestServer) -> Vec<Document> {
    batch(&command(server, doc! { "find": "oplog.rs", "batchSize": 100_000, "$db": "local" }))
}

/// The entries recording changes to `ns`.
fn entries_of(server: &TestServer, ns: &str) -> Vec<Document> {
    oplog(server).into_iter().filter(|e| e.get_str("ns").ok() == Some(ns)).collect()
}

fn ts(entry: &Document) -> Timestamp {
    entry.get_timestamp("ts").unwrap_or(Timestamp { time: 0, increment: 0 })
}

#[tokio::test]
async fn oplog_records_every_change_with_mongod_entry_shape() {
    let server = TestServer::member(&[]);
    let first = oplog(&server);
    assert_eq!(
        first.first().map(|e| (e.get_str("op").ok(), e.get_document("o").ok().cloned())),
        Some((Some("n"), Some(doc! { "msg": "initiating set" })))
    );

    command(&server, doc! { "insert": "c", "documents": [{ "_id": 1, "a": 1, "xs": [1, 2, 3] }], "$db": "test" });
    let update = doc! { "update": "c", "updates": [{ "q": { "_id": 1 }, "u": { "$set": { "a": 2, "b.c": 1 }, "$pop": { "xs": 1 } } }], "$db": "test" };
    let updated = command(&server, update);
    command(&server, doc! { "update": "c", "updates": [{ "q": { "_id": 1 }, "u": { "r": 1 } }], "$db": "test" });
    command(&server, doc! { "delete": "c", "deletes": [{ "q": { "_id": 1 }, "limit": 1 }], "$db": "test" });
    // A write that changes nothing writes no entry.
    command(&server, doc! { "delete": "c", "deletes": [{ "q": { "_id": 99 }, "limit": 1 }], "$db": "test" });
    command(&server, doc! { "insert": "notes", "documents": [{ "_id": 1 }], "$db": "local" });

    let entries = entries_of(&server, "test.c");
    let ops: Vec<_> = entries.iter().map(|e| e.get_str("op").unwrap_or_default()).collect();
    assert_eq!(ops, ["i", "u", "u", "d"], "{entries:?}");
    let shape = |entry: &Document| entry.keys().cloned().collect::<Vec<_>>();
    assert_eq!(shape(&entries[0]), ["op", "ns", "ui", "o", "o2", "ts", "t", "v", "wall"]);
    assert_eq!(entries[0].get_document("o").ok(), Some(&doc! { "_id": 1, "a": 1, "xs": [1, 2, 3] }));
    assert_eq!(entries[0].get_document("o2").ok(), Some(&doc! { "_id": 1 }));
    assert_eq!((entries[0].get_i64("t").ok(), entries[0].get_i64("v").ok()), (Some(1), Some(2)));
    // An operator update is a `$v: 2` diff; a replacement is the whole new document.
    let diff = doc! { "$v": 2, "diff": { "u": { "a": 2 }, "i": { "b": { "c": 1 } }, "sxs": { "a": true, "l": 2 } } };
    assert_eq!(entries[1].get_document("o").ok(), Some(&diff));
    assert_eq!(entries[2].get_document("o").ok(), Some(&doc! { "_id": 1, "r": 1 }));
    assert_eq!(entries[3].get_document("o").ok(), Some(&doc! { "_id": 1 }));
    assert!(!entries[3].contains_key("o2"));
    assert!(entries.windows(2).all(|pair| ts(&pair[0]) < ts(&pair[1])), "times increase: {entries:?}");
    // The update's operationTime is its entry's time (or later), never earlier.
    let operation_time = updated.get_timestamp("operationTime").ok();
    assert!(operation_time >= Some(ts(&entries[1])), "{updated}");
    assert!(entries_of(&server, "local.notes").is_empty(), "the local database is not recorded");

    // Commands are recorded on `<db>.$cmd`.
    command(&server, doc! { "createIndexes": "c", "indexes": [{ "key": { "a": 1 }, "name": "a_1" }], "$db": "test" });
    command(&server, doc! { "renameCollection": "test.c", "to": "test.d", "$db": "admin" });
    command(&server, doc! { "drop": "d", "$db": "test" });
    command(&server, doc! { "insert": "e", "documents": [{ "_id": 1 }], "$db": "other" });
    command(&server, doc! { "dropDatabase": 1, "$db": "other" });
    let commands: Vec<Document> = oplog(&server)
        .into_iter()
        .filter(|e| e.get_str("op").ok() == Some("c"))
        .filter_map(|e| e.get_document("o").ok().cloned())
        .collect();
    let names: Vec<_> = commands.iter().filter_map(|o| o.keys().next().cloned()).collect();
    assert_eq!(names, ["create", "createIndexes", "renameCollection", "drop", "create", "drop", "dropDatabase"]);
    assert_eq!(commands[1], doc! { "createIndexes": "c", "v": 2, "key": { "a": 1 }, "name": "a_1" });
    assert_eq!(
        commands[2],
        doc! { "renameCollection": "test.c", "to": "test.d", "stayTemp": false, "dropTarget": false }
    );

    // A retryable write's entries carry its session, transaction number and statement ids.
    let session = doc! { "id": Bson::Binary(mongodb::bson::Binary { subtype: mongodb::bson::spec::BinarySubtype::Uuid, bytes: vec![7; 16] }) };
    let insert = doc! { "insert": "r", "documents": [{ "_id": 1 }, { "_id": 2 }], "lsid": session.clone(), "txnNumber": 4_i64, "$db": "test" };
    command(&server, insert);
    let entries = entries_of(&server, "test.r");
    let statements: Vec<_> = entries
        .iter()
        .map(|e| (e.get_document("lsid").ok(), e.get_i64("txnNumber").ok(), e.get_i32("stmtId").ok()))
        .collect();
    assert_eq!(statements, [(Some(&session), Some(4), Some(0)), (Some(&session), Some(4), Some(1))]);
    assert_eq!(
        entries[0].get_document("prevOpTime").ok(),
        Some(&doc! { "ts": Timestamp { time: 0, increment: 0 }, "t": -1_i64 })
    );
    // The second chains back to the first.
    let first = (entries[0].get_timestamp("ts").ok(), entries[0].get_i64("t").ok());
    let second = entries[1].get_document("prevOpTime").ok();
    assert_eq!(second.map(|p| (p.get_timestamp("ts").ok(), p.get_i64("t").ok())), Some(first), "{:?}", entries[1]);

    // A capped collection's dropped documents are deletes, as mongod logs them (FCV 5.0 on).
    command(&server, doc! { "create": "ring", "capped": true, "size": 4096, "max": 2, "$db": "test" });
    command(&server, doc! { "insert": "ring", "documents": [{ "_id": 1 }, { "_id": 2 }, { "_id": 3 }], "$db": "test" });
    command(&server, doc! { "insert": "ring", "documents": [{ "_id": 4 }], "$db": "test" });
    let ring: Vec<_> = entries_of(&server, "test.ring")
        .iter()
        .map(|e| {
            (
                e.get_str("op").unwrap_or_default().to_owned(),
                e.get_document("o").ok().and_then(|o| o.get_i32("_id").ok()),
            )
        })
        .collect();
    let expected = [("i", 1), ("i", 2), ("i", 3), ("d", 1), ("i", 4), ("d", 2)];
    assert_eq!(ring, expected.map(|(op, id)| (op.to_owned(), Some(id))));
}

#[tokio::test]
async fn oplog_idle_primary_writes_periodic_noops() {
    let server = TestServer::member(&["--setParameter", "periodicNoopIntervalSecs=1"]);
    let shown = command(&server, doc! { "getParameter": 1, "periodicNoopIntervalSecs": 1, "$db": "admin" });
    assert_eq!(shown.get_i32("periodicNoopIntervalSecs").ok(), Some(1), "{shown}");
    let noop = || {
        let reply = command(
            &server,
            doc! { "find": "oplog.rs", "filter": { "op": "n", "o.msg": "periodic noop" }, "$db": "local" },
        );
        batch(&reply).len()
    };
    assert!(eventually(std::time::Duration::from_secs(10), || noop() > 0), "an idle primary writes a no-op");
    let refused = command(&server, doc! { "setParameter": 1, "periodicNoopIntervalSecs": 5, "$db": "admin" });
    assert_eq!(code(&refused), Some(20), "startup only, as in mongod: {refused}");
}

#[tokio::test]
async fn oplog_standalone_has_none_and_the_member_protects_its_own() {
    let standalone = TestServer::start(&[]);
    command(&standalone, doc! { "insert": "c", "documents": [{ "_id": 1 }], "$db": "test" });
    let listed = command(&standalone, doc! { "listCollections": 1, "nameOnly": true, "$db": "local" });
    assert!(batch(&listed).is_empty(), "a standalone keeps no oplog: {listed}");
    drop(standalone);

    let server = TestServer::member(&[]);
    let insert = command(&server, doc! { "insert": "oplog.rs", "documents": [{ "op": "n" }], "$db": "local" });
    assert_eq!(
        (code(&insert), insert.get_str("errmsg").ok()),
        (Some(73), Some("cannot write to local.oplog.rs")),
        "{insert}"
    );
    let drop_oplog = command(&server, doc! { "drop": "oplog.rs", "$db": "local" });
    assert_eq!(
        (code(&drop_oplog), drop_oplog.get_str("errmsg").ok()),
        (Some(20), Some("can't drop live oplog while replicating"))
    );
    assert_eq!(code(&command(&server, doc! { "dropDatabase": 1, "$db": "local" })), Some(20));
    let indexes = command(&server, doc! { "listIndexes": "oplog.rs", "$db": "local" });
    assert!(batch(&indexes).is_empty(), "the oplog has no _id index: {indexes}");

    // After a restart: the entries are kept, the new term's no-op comes after them.
    command(&server, doc! { "insert": "c", "documents": [{ "_id": 1 }], "$db": "test" });
    let before = oplog(&server);
    let server = server.restart(&["--replSet", "rs0"]);
    let after = oplog(&server);
    assert_eq!(after.get(..before.len()), Some(before.as_slice()));
    let election = after.get(before.len()).cloned().unwrap_or_default();
    assert_eq!(election.get_document("o").ok(), Some(&doc! { "msg": "new primary" }));
    assert_eq!(election.get_i64("t").ok(), Some(2));
    assert!(before.last().map(ts) < Some(ts(&election)), "{election}");
    command(&server, doc! { "insert": "c", "documents": [{ "_id": 2 }], "$db": "test" });
    assert!(entries_of(&server, "test.c").last().map(ts) > Some(ts(&election)));
}

#[tokio::test]
async fn oplog_keeps_its_size_and_serves_tailing_readers() {
    let server = TestServer::member(&["--oplogSize", "1"]);
    let padding = "x".repeat(10_000);
    for start in (0..300).step_by(50) {
        let documents: Vec<Document> = (start..start + 50).map(|i| doc! { "_id": i, "p": &padding }).collect();
        command(&server, doc! { "insert": "c", "documents": documents, "$db": "test" });
    }
    let stats = command(&server, doc! { "collStats": "oplog.rs", "$db": "local" });
    assert_eq!(stats.get_bool("capped").ok(), Some(true));
    assert_eq!(
        stats.get_i64("maxSize").ok().or(stats.get_i32("maxSize").ok().map(i64::from)),
        Some(1024 * 1024),
        "{stats}"
    );
    let size = stats.get_i32("size").map(i64::from).or(stats.get_i64("size")).unwrap_or(i64::MAX);
    assert!(size <= 1024 * 1024, "trimmed to its size: {size}");
    let entries = entries_of(&server, "test.c");
    let ids: Vec<i32> = entries.iter().filter_map(|e| e.get_document("o").ok()?.get_i32("_id").ok()).collect();
    assert_eq!(ids.last(), Some(&299));
    assert!(ids.len() < 110 && ids.windows(2).all(|w| w[1] == w[0] + 1), "the newest, in order: {} entries", ids.len());
    assert!(oplog(&server).iter().all(|e| e.get_str("op").ok() != Some("n")), "the initiating no-op is gone");

    // A reader resuming from a time gets exactly the entries after it ($gt) or from it ($gte).
    let last = entries.last().map(ts).unwrap_or(Timestamp { time: 0, increment: 0 });
    let previous = entries.get(entries.len() - 2).map(ts).unwrap_or(last);
    let from = |op: &str, at: Timestamp| {
        let find = doc! { "find": "oplog.rs", "filter": { "ts": { op: at } }, "tailable": true, "awaitData": true, "$db": "local" };
        command(&server, find)
    };
    assert_eq!(batch(&from("$gte", previous)).iter().map(ts).collect::<Vec<_>>(), [previous, last]);
    assert_eq!(batch(&from("$gt", previous)).iter().map(ts).collect::<Vec<_>>(), [last]);

    // A tailing reader waits for the next entry and wakes when it is written.
    let mut tail = server.raw();
    let find = doc! { "find": "oplog.rs", "filter": { "ts": { "$gt": last }, "ns": "test.c" }, "tailable": true, "awaitData": true, "$db": "local" };
    tail.send(&op_msg(1, 0, &find));
    let opened = reply_body(&tail.receive().unwrap_or_default());
    assert!(batch(&opened).is_empty(), "{opened}");
    let id = opened.get_document("cursor").and_then(|c| c.get_i64("id")).unwrap_or(0);
    assert_ne!(id, 0, "the tailable cursor stays open");
    tail.send(&op_msg(
        2,
        0,
        &doc! { "getMore": id, "collection": "oplog.rs", "maxTimeMS": 10_000_i64, "$db": "local" },
    ));
    command(&server, doc! { "insert": "c", "documents": [{ "_id": "new" }], "$db": "test" });
    let woken = reply_body(&tail.receive().unwrap_or_default());
    let got: Vec<_> = batch(&woken).iter().filter_map(|e| e.get_document("o").ok().cloned()).collect();
    assert_eq!(got, [doc! { "_id": "new" }], "{woken}");
}
