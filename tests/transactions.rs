//! Multi-document transactions on a replica set of one: atomic commit across collections,
//! reads of the transaction's own writes, isolation from other clients until commit, abort,
//! write conflicts (112 with `TransientTransactionError`, the first writer wins), the
//! transaction state machine's errors, one `applyOps` oplog entry per transaction and its change
//! events, the lifetime limit, and the driver's `with_transaction`-style retry.

mod common;

use common::{TestServer, code, command, eventually};
use mongodb::bson::{Binary, Bson, Document, doc, spec::BinarySubtype};

fn labels(reply: &Document) -> Vec<String> {
    reply
        .get_array("errorLabels")
        .map(|labels| labels.iter().filter_map(|l| l.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// A session (`lsid`) of its own.
fn session() -> Document {
    doc! { "id": Binary { subtype: BinarySubtype::Uuid, bytes: mongodb::bson::Uuid::new().bytes().to_vec() } }
}

/// `body` as a statement of transaction `txn` of `lsid` (the first one starts it).
fn statement(server: &TestServer, mut body: Document, lsid: &Document, txn: i64, first: bool) -> Document {
    body.insert("lsid", lsid.clone());
    body.insert("txnNumber", txn);
    body.insert("autocommit", false);
    if first {
        body.insert("startTransaction", true);
    }
    command(server, body)
}

fn finish(server: &TestServer, name: &str, lsid: &Document, txn: i64) -> Document {
    statement(server, doc! { name: 1, "$db": "admin" }, lsid, txn, false)
}

fn documents(reply: &Document) -> Vec<Document> {
    let batch = reply.get_document("cursor").and_then(|c| c.get_array("firstBatch")).cloned().unwrap_or_default();
    batch.into_iter().filter_map(|d| d.as_document().cloned()).collect()
}

fn find(server: &TestServer, coll: &str) -> Vec<Document> {
    documents(&command(server, doc! { "find": coll, "sort": { "_id": 1 }, "$db": "bank" }))
}

#[tokio::test]
async fn transaction_commits_atomically_and_reads_its_own_writes() {
    let server = TestServer::member(&[]);
    command(
        &server,
        doc! { "insert": "accounts", "documents": [{ "_id": "a", "balance": 100 }, { "_id": "b", "balance": 0 }], "$db": "bank" },
    );
    command(&server, doc! { "create": "ledger", "$db": "bank" });
    let lsid = session();
    let debit = doc! { "update": "accounts", "updates": [{ "q": { "_id": "a" }, "u": { "$inc": { "balance": -30 } } }], "$db": "bank" };
    let first = statement(&server, debit, &lsid, 1, true);
    assert_eq!((first.get_i32("n").ok(), first.get_i32("nModified").ok()), (Some(1), Some(1)), "{first}");
    let credit = doc! { "update": "accounts", "updates": [{ "q": { "_id": "b" }, "u": { "$inc": { "balance": 30 } } }], "$db": "bank" };
    statement(&server, credit, &lsid, 1, false);
    statement(
        &server,
        doc! { "insert": "ledger", "documents": [{ "_id": 1, "from": "a", "to": "b", "amount": 30 }], "$db": "bank" },
        &lsid,
        1,
        false,
    );
    // Inside: its own writes. Outside: nothing yet.
    let inside = documents(&statement(
        &server,
        doc! { "find": "accounts", "sort": { "_id": 1 }, "$db": "bank" },
        &lsid,
        1,
        false,
    ));
    assert_eq!(inside, [doc! { "_id": "a", "balance": 70 }, doc! { "_id": "b", "balance": 30 }]);
    let by_index = documents(&statement(
        &server,
        doc! { "find": "ledger", "filter": { "_id": 1 }, "$db": "bank" },
        &lsid,
        1,
        false,
    ));
    assert_eq!(by_index.len(), 1, "an _id lookup sees the transaction's insert");
    assert_eq!(find(&server, "accounts"), [doc! { "_id": "a", "balance": 100 }, doc! { "_id": "b", "balance": 0 }]);
    assert!(find(&server, "ledger").is_empty());

    let committed = finish(&server, "commitTransaction", &lsid, 1);
    assert_eq!(committed.get_f64("ok").ok(), Some(1.0), "{committed}");
    assert_eq!(find(&server, "accounts"), [doc! { "_id": "a", "balance": 70 }, doc! { "_id": "b", "balance": 30 }]);
    assert_eq!(find(&server, "ledger").len(), 1);
    let count = command(&server, doc! { "count": "accounts", "$db": "bank" });
    assert_eq!(count.get_i32("n").ok(), Some(2), "the stored totals moved with the commit");
    // Committing again answers as the first time; aborting a committed transaction is 256.
    assert_eq!(finish(&server, "commitTransaction", &lsid, 1).get_f64("ok").ok(), Some(1.0));
    assert_eq!(code(&finish(&server, "abortTransaction", &lsid, 1)), Some(256));

    // One applyOps entry, carrying the session, records the three changes.
    let oplog = documents(&command(
        &server,
        doc! { "find": "oplog.rs", "filter": { "o.applyOps": { "$exists": true } }, "$db": "local" },
    ));
    assert_eq!(oplog.len(), 1, "{oplog:?}");
    let entry = &oplog[0];
    assert_eq!((entry.get_str("ns").ok(), entry.get_i64("txnNumber").ok()), (Some("admin.$cmd"), Some(1)));
    assert_eq!(entry.get_document("lsid").ok(), Some(&lsid));
    let ops = entry.get_document("o").and_then(|o| o.get_array("applyOps")).cloned().unwrap_or_default();
    let kinds: Vec<_> = ops.iter().filter_map(|op| op.as_document()?.get_str("op").ok()).collect();
    assert_eq!(kinds, ["u", "u", "i"]);
}

#[tokio::test]
async fn transaction_abort_and_failed_statements_discard_everything() {
    let server = TestServer::member(&[]);
    command(&server, doc! { "insert": "accounts", "documents": [{ "_id": "a", "balance": 100 }], "$db": "bank" });
    let lsid = session();
    statement(&server, doc! { "insert": "accounts", "documents": [{ "_id": "b" }], "$db": "bank" }, &lsid, 1, true);
    assert_eq!(finish(&server, "abortTransaction", &lsid, 1).get_f64("ok").ok(), Some(1.0));
    assert_eq!(find(&server, "accounts").len(), 1, "the aborted insert is gone");
    let gone = finish(&server, "commitTransaction", &lsid, 1);
    assert_eq!(code(&gone), Some(251), "{gone}");
    assert_eq!(labels(&gone), ["TransientTransactionError"]);

    // A statement that fails (a duplicate key) aborts its transaction, as mongod's.
    statement(&server, doc! { "insert": "accounts", "documents": [{ "_id": "c" }], "$db": "bank" }, &lsid, 2, true);
    let duplicate = statement(
        &server,
        doc! { "insert": "accounts", "documents": [{ "_id": "a" }], "$db": "bank" },
        &lsid,
        2,
        false,
    );
    let error = duplicate.get_array("writeErrors").ok().and_then(|e| e.first()).and_then(Bson::as_document).cloned();
    assert_eq!(error.and_then(|e| e.get_i32("code").ok()), Some(11000), "{duplicate}");
    let next = statement(&server, doc! { "find": "accounts", "$db": "bank" }, &lsid, 2, false);
    assert_eq!((code(&next), labels(&next)), (Some(251), vec!["TransientTransactionError".to_owned()]), "{next}");
    assert_eq!(find(&server, "accounts").len(), 1, "nothing of the failed transaction");

    // The state machine's refusals.
    let older = statement(&server, doc! { "find": "accounts", "$db": "bank" }, &lsid, 1, true);
    assert_eq!(code(&older), Some(225), "{older}");
    let unknown = statement(&server, doc! { "find": "accounts", "$db": "bank" }, &lsid, 9, false);
    assert_eq!(code(&unknown), Some(251));
    statement(
        &server,
        doc! { "find": "accounts", "readConcern": { "level": "snapshot" }, "$db": "bank" },
        &lsid,
        3,
        true,
    );
    let late = statement(
        &server,
        doc! { "find": "accounts", "readConcern": { "level": "local" }, "$db": "bank" },
        &lsid,
        3,
        false,
    );
    assert_eq!(code(&late), Some(72), "{late}");
    let count = statement(&server, doc! { "count": "accounts", "$db": "bank" }, &lsid, 4, true);
    assert_eq!((code(&count), count.get_str("codeName").ok()), (Some(263), Some("OperationNotSupportedInTransaction")));
}

#[tokio::test]
async fn transaction_concurrent_writers_of_one_document_first_wins() {
    let server = TestServer::member(&[]);
    command(&server, doc! { "insert": "stock", "documents": [{ "_id": "widget", "qty": 10 }], "$db": "bank" });
    let take = |n: i32| doc! { "update": "stock", "updates": [{ "q": { "_id": "widget" }, "u": { "$inc": { "qty": -n } } }], "$db": "bank" };
    let (one, two) = (session(), session());
    let first = statement(&server, take(1), &one, 1, true);
    assert_eq!(first.get_i32("nModified").ok(), Some(1), "{first}");
    // The second writer of the same document loses at once, with the label drivers retry on.
    let second = statement(&server, take(2), &two, 1, true);
    assert_eq!((code(&second), second.get_str("codeName").ok()), (Some(112), Some("WriteConflict")), "{second}");
    assert_eq!(labels(&second), ["TransientTransactionError"]);
    assert_eq!(finish(&server, "commitTransaction", &one, 1).get_f64("ok").ok(), Some(1.0));
    // Retried as a new transaction, it succeeds on the committed value.
    statement(&server, take(2), &two, 2, true);
    assert_eq!(finish(&server, "commitTransaction", &two, 2).get_f64("ok").ok(), Some(1.0));
    assert_eq!(find(&server, "stock"), [doc! { "_id": "widget", "qty": 7 }]);

    // A write outside any transaction after its snapshot makes its own write conflict.
    let three = session();
    statement(&server, doc! { "find": "stock", "$db": "bank" }, &three, 1, true);
    command(&server, take(1));
    let stale = statement(&server, take(1), &three, 1, false);
    assert_eq!(code(&stale), Some(112), "{stale}");
    assert_eq!(find(&server, "stock"), [doc! { "_id": "widget", "qty": 6 }]);
}

#[tokio::test]
async fn transaction_past_its_lifetime_is_aborted() {
    let server = TestServer::member(&[]);
    let set = command(&server, doc! { "setParameter": 1, "transactionLifetimeLimitSeconds": 1, "$db": "admin" });
    assert_eq!(set.get_f64("ok").ok(), Some(1.0), "{set}");
    let lsid = session();
    statement(&server, doc! { "insert": "c", "documents": [{ "_id": 1 }], "$db": "bank" }, &lsid, 1, true);
    let aborted = eventually(std::time::Duration::from_secs(15), || {
        code(&statement(&server, doc! { "find": "c", "$db": "bank" }, &lsid, 1, false)) == Some(251)
    });
    assert!(aborted, "aborted once past transactionLifetimeLimitSeconds");
    assert!(find(&server, "c").is_empty());
}

fn collection_names(server: &TestServer) -> Vec<String> {
    let reply = command(server, doc! { "listCollections": 1, "nameOnly": true, "$db": "bank" });
    let mut names: Vec<String> =
        documents(&reply).iter().filter_map(|c| c.get_str("name").ok().map(str::to_owned)).collect();
    names.sort();
    names
}

#[tokio::test]
async fn transaction_creates_collections_and_indexes_seen_by_others_only_once_committed() {
    let server = TestServer::member(&["--setParameter", "transactionLifetimeLimitSeconds=120"]);
    let shown = command(
        &server,
        doc! { "getParameter": 1, "transactionLifetimeLimitSeconds": 1, "maxTransactionLockRequestTimeoutMillis": 1, "$db": "admin" },
    );
    assert_eq!(shown.get_i32("transactionLifetimeLimitSeconds").ok(), Some(120), "{shown}");
    assert_eq!(shown.get_i32("maxTransactionLockRequestTimeoutMillis").ok(), Some(5), "mongod's default: {shown}");
    let set =
        command(&server, doc! { "setParameter": 1, "maxTransactionLockRequestTimeoutMillis": -1, "$db": "admin" });
    assert_eq!(set.get_i32("was").ok(), Some(5), "{set}");
    let lsid = session();
    // Implicitly (an insert), then explicitly, then an index on it over the inserted documents.
    let inserted = statement(
        &server,
        doc! { "insert": "orders", "documents": [{ "_id": 1, "sku": "a" }, { "_id": 2, "sku": "b" }], "$db": "bank" },
        &lsid,
        1,
        true,
    );
    assert_eq!(inserted.get_i32("n").ok(), Some(2), "{inserted}");
    let created = statement(&server, doc! { "create": "audit", "$db": "bank" }, &lsid, 1, false);
    assert_eq!(created.get_f64("ok").ok(), Some(1.0), "{created}");
    let indexed = statement(
        &server,
        doc! { "createIndexes": "orders", "indexes": [{ "key": { "sku": 1 }, "name": "sku_1", "unique": true }], "$db": "bank" },
        &lsid,
        1,
        false,
    );
    assert_eq!(
        (indexed.get_i32("numIndexesBefore").ok(), indexed.get_i32("numIndexesAfter").ok()),
        (Some(1), Some(2)),
        "{indexed}"
    );
    assert_eq!(indexed.get_bool("createdCollectionAutomatically").ok(), Some(false), "{indexed}");
    // Inside: its collections, and its index serves its reads.
    let inside = statement(
        &server,
        doc! { "find": "orders", "filter": { "sku": "b" }, "hint": "sku_1", "$db": "bank" },
        &lsid,
        1,
        false,
    );
    assert_eq!(documents(&inside), [doc! { "_id": 2, "sku": "b" }], "{inside}");
    let duplicate = statement(
        &server,
        doc! { "insert": "orders", "documents": [{ "_id": 3, "sku": "a" }], "$db": "bank" },
        &lsid,
        1,
        false,
    );
    let error = duplicate.get_array("writeErrors").ok().and_then(|e| e.first()).and_then(Bson::as_document);
    assert_eq!(error.and_then(|e| e.get_i32("code").ok()), Some(11000), "{duplicate}");
    // The failed statement aborted it: nothing is left, and nothing was ever seen outside.
    assert!(collection_names(&server).is_empty(), "{:?}", collection_names(&server));
    let gone = finish(&server, "commitTransaction", &lsid, 1);
    assert_eq!(code(&gone), Some(251), "{gone}");

    // The same again without the duplicate, committed.
    let lsid = session();
    statement(
        &server,
        doc! { "insert": "orders", "documents": [{ "_id": 1, "sku": "a" }, { "_id": 2, "sku": "b" }], "$db": "bank" },
        &lsid,
        1,
        true,
    );
    statement(&server, doc! { "create": "audit", "$db": "bank" }, &lsid, 1, false);
    statement(
        &server,
        doc! { "createIndexes": "orders", "indexes": [{ "key": { "sku": 1 }, "name": "sku_1", "unique": true }], "$db": "bank" },
        &lsid,
        1,
        false,
    );
    assert!(collection_names(&server).is_empty(), "not before the commit");
    let committed = finish(&server, "commitTransaction", &lsid, 1);
    assert_eq!(committed.get_f64("ok").ok(), Some(1.0), "{committed}");
    assert_eq!(collection_names(&server), ["audit", "orders"]);
    let by_index =
        command(&server, doc! { "find": "orders", "filter": { "sku": "a" }, "hint": "sku_1", "$db": "bank" });
    assert_eq!(documents(&by_index), [doc! { "_id": 1, "sku": "a" }], "{by_index}");
    let count = command(&server, doc! { "count": "orders", "$db": "bank" });
    assert_eq!(count.get_i32("n").ok(), Some(2), "{count}");
    // The oplog has the creations inside the transaction's applyOps, before its inserts.
    let entry = command(
        &server,
        doc! { "find": "oplog.rs", "filter": { "o.applyOps": { "$exists": true } }, "sort": { "$natural": -1 }, "limit": 1, "$db": "local" },
    );
    let ops = documents(&entry)
        .first()
        .and_then(|e| e.get_document("o").ok())
        .and_then(|o| o.get_array("applyOps").ok())
        .cloned()
        .unwrap_or_default();
    let kinds: Vec<String> = ops
        .iter()
        .filter_map(Bson::as_document)
        .map(|op| {
            let kind = op.get_str("op").unwrap_or_default();
            let o = op.get_document("o").cloned().unwrap_or_default();
            let command = if kind == "c" { o.keys().next().cloned().unwrap_or_default() } else { String::new() };
            format!("{kind}:{command}")
        })
        .collect();
    assert_eq!(kinds, ["c:create", "c:createIndexes", "c:create", "i:", "i:"], "{entry}");

    // An index on a collection that existed before the transaction: 263, which aborts it.
    let lsid = session();
    let refused = statement(
        &server,
        doc! { "createIndexes": "orders", "indexes": [{ "key": { "x": 1 }, "name": "x_1" }], "$db": "bank" },
        &lsid,
        1,
        true,
    );
    assert_eq!(code(&refused), Some(263), "{refused}");
    let exists = statement(&server, doc! { "create": "orders", "$db": "bank" }, &session(), 1, true);
    assert_eq!(code(&exists), Some(48), "{exists}");
    let capped =
        statement(&server, doc! { "create": "log", "capped": true, "size": 4096, "$db": "bank" }, &session(), 1, true);
    assert_eq!(code(&capped), Some(263), "{capped}");
    let view = statement(
        &server,
        doc! { "create": "v", "viewOn": "orders", "pipeline": [], "$db": "bank" },
        &session(),
        1,
        true,
    );
    assert_eq!(code(&view), Some(263), "{view}");
    assert_eq!(collection_names(&server), ["audit", "orders"], "no view was made");
}

#[tokio::test]
async fn transaction_abort_drops_the_collections_it_created_and_joins_read_its_writes() {
    let server = TestServer::member(&[]);
    command(&server, doc! { "insert": "customers", "documents": [{ "_id": "c1" }], "$db": "bank" });
    let lsid = session();
    statement(
        &server,
        doc! { "insert": "visits", "documents": [{ "_id": 1, "customer": "c1" }], "$db": "bank" },
        &lsid,
        1,
        true,
    );
    statement(&server, doc! { "insert": "customers", "documents": [{ "_id": "c2" }], "$db": "bank" }, &lsid, 1, false);
    statement(
        &server,
        doc! { "insert": "visits", "documents": [{ "_id": 2, "customer": "c2" }], "$db": "bank" },
        &lsid,
        1,
        false,
    );
    // $lookup from a collection the transaction wrote: its own writes, in the joined side too.
    let joined = statement(
        &server,
        doc! {
            "aggregate": "customers",
            "pipeline": [
                { "$lookup": { "from": "visits", "localField": "_id", "foreignField": "customer", "as": "visits" } },
                { "$project": { "n": { "$size": "$visits" } } },
            ],
            "cursor": {}, "$db": "bank",
        },
        &lsid,
        1,
        false,
    );
    assert_eq!(documents(&joined), [doc! { "_id": "c1", "n": 1 }, doc! { "_id": "c2", "n": 1 }], "{joined}");
    let aborted = finish(&server, "abortTransaction", &lsid, 1);
    assert_eq!(aborted.get_f64("ok").ok(), Some(1.0), "{aborted}");
    assert_eq!(collection_names(&server), ["customers"], "the implicitly created collection is gone");
    assert_eq!(find(&server, "customers"), [doc! { "_id": "c1" }]);
}

/// Polls `currentOp` until an operation of `op` on `ns` is in progress (waiting).
fn wait_in_progress(server: &TestServer, op: &str, ns: &str) {
    let waiting = eventually(std::time::Duration::from_secs(10), || {
        let reply = command(server, doc! { "currentOp": 1, "op": op, "ns": ns, "$db": "admin" });
        reply.get_array("inprog").is_ok_and(|ops| !ops.is_empty())
    });
    assert!(waiting, "no {op} on {ns} in progress");
}

#[tokio::test]
async fn transaction_holds_what_it_wrote_and_writes_outside_wait_for_it_to_end() {
    let server = TestServer::member(&[]);
    command(&server, doc! { "insert": "stock", "documents": [{ "_id": "widget", "qty": 10 }], "$db": "bank" });
    let index = doc! { "createIndexes": "stock", "indexes": [{ "key": { "sku": 1 }, "name": "sku_1", "unique": true }], "$db": "bank" };
    assert_eq!(command(&server, index).get_f64("ok").ok(), Some(1.0));
    let take = |n: i32| doc! { "update": "stock", "updates": [{ "q": { "_id": "widget" }, "u": { "$inc": { "qty": -n } } }], "$db": "bank" };
    let txn = session();
    statement(&server, take(1), &txn, 1, true);
    let added = doc! { "insert": "stock", "documents": [{ "_id": "gadget", "sku": "G-1" }], "$db": "bank" };
    assert_eq!(statement(&server, added, &txn, 1, false).get_i32("n").ok(), Some(1));

    // A write outside the transaction to a document it wrote waits (with its time limit, 50)...
    let limited = doc! { "update": "stock", "updates": [{ "q": { "_id": "widget" }, "u": { "$set": { "x": 1 } } }], "maxTimeMS": 100, "$db": "bank" };
    let timed_out = command(&server, limited);
    assert_eq!(
        (code(&timed_out), timed_out.get_str("codeName").ok()),
        (Some(50), Some("MaxTimeMSExpired")),
        "{timed_out}"
    );
    std::thread::scope(|scope| {
        let plain = scope.spawn(|| command(&server, take(5)));
        let same_id = scope.spawn(|| command(&server, added_plain("gadget", "G-2")));
        let same_key = scope.spawn(|| command(&server, added_plain("other", "G-1")));
        wait_in_progress(&server, "update", "bank.stock");
        let inserts_wait = eventually(std::time::Duration::from_secs(10), || {
            let reply = command(&server, doc! { "currentOp": 1, "op": "insert", "ns": "bank.stock", "$db": "admin" });
            reply.get_array("inprog").is_ok_and(|ops| ops.len() == 2)
        });
        assert!(inserts_wait, "both inserts wait for the transaction");
        // ...so the transaction, the first writer, commits...
        assert_eq!(finish(&server, "commitTransaction", &txn, 1).get_f64("ok").ok(), Some(1.0));
        // ...and the waiting writes then apply to what it committed.
        let plain = plain.join().unwrap_or_default();
        assert_eq!(plain.get_i32("nModified").ok(), Some(1), "{plain}");
        for (waited, key) in [(same_id, "_id"), (same_key, "sku")] {
            let waited = waited.join().unwrap_or_default();
            let error = waited.get_array("writeErrors").ok().and_then(|e| e.first()?.as_document().cloned());
            let error = error.unwrap_or_default();
            assert_eq!(error.get_i32("code").ok(), Some(11000), "{waited}");
            assert!(error.get_document("keyPattern").is_ok_and(|p| p.contains_key(key)), "{waited}");
        }
    });
    let stock = find(&server, "stock");
    assert_eq!(stock, [doc! { "_id": "gadget", "sku": "G-1" }, doc! { "_id": "widget", "qty": 4 }]);

    // An aborted transaction's writes were never there: the waiting insert succeeds.
    let txn = session();
    statement(&server, added_plain("spare", "S-1"), &txn, 1, true);
    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| command(&server, added_plain("spare", "S-2")));
        wait_in_progress(&server, "insert", "bank.stock");
        assert_eq!(finish(&server, "abortTransaction", &txn, 1).get_f64("ok").ok(), Some(1.0));
        assert_eq!(waiting.join().unwrap_or_default().get_i32("n").ok(), Some(1));
    });
    assert_eq!(find(&server, "stock").get(1), Some(&doc! { "_id": "spare", "sku": "S-2" }));
}

fn added_plain(id: &str, sku: &str) -> Document {
    doc! { "insert": "stock", "documents": [{ "_id": id, "sku": sku }], "$db": "bank" }
}
