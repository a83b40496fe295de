//! Snapshot reads outside transactions on a replica set of one (`readConcern: {level:
//! "snapshot"}`, with and without `atClusterTime`): the driver's snapshot sessions see one
//! point in time across `find`, `aggregate` and `distinct` while others write; replies report
//! `atClusterTime`; a time the history no longer keeps is 239 SnapshotTooOld, a future one 72;
//! a transaction can start at a time; an index built after the time is not used to read it;
//! `minSnapshotHistoryWindowInSeconds` bounds the history.

mod common;

use common::{TestServer, code, command, eventually};
use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, Timestamp, doc};
use mongodb::options::SessionOptions;

fn first_batch(reply: &Document) -> Vec<Document> {
    let batch = reply.get_document("cursor").and_then(|c| c.get_array("firstBatch")).cloned().unwrap_or_default();
    batch.into_iter().filter_map(|d| d.as_document().cloned()).collect()
}

fn write(server: &TestServer, body: Document) {
    let reply = command(server, body);
    assert_eq!(reply.get_f64("ok").ok(), Some(1.0), "{reply}");
}

fn set_x(server: &TestServer, id: i32, x: i32) {
    write(
        server,
        doc! { "update": "c", "updates": [{ "q": { "_id": id }, "u": { "$set": { "x": x } } }], "$db": "snap" },
    );
}

fn snapshot_find(server: &TestServer, filter: Document, at: Option<Timestamp>) -> Document {
    let mut concern = doc! { "level": "snapshot" };
    if let Some(at) = at {
        concern.insert("atClusterTime", at);
    }
    command(server, doc! { "find": "c", "filter": filter, "sort": { "_id": 1 }, "readConcern": concern, "$db": "snap" })
}

fn at_cluster_time(reply: &Document) -> Timestamp {
    let at = reply.get_document("cursor").ok().and_then(|c| c.get_timestamp("atClusterTime").ok());
    at.unwrap_or_else(|| panic!("no cursor.atClusterTime in {reply}"))
}

#[tokio::test]
async fn snapshot_session_reads_one_point_in_time_across_find_aggregate_and_distinct() {
    let server = TestServer::member(&[]);
    let client = server.client("directConnection=true").await;
    let coll = client.database("snap").collection::<Document>("c");
    coll.insert_many([doc! { "_id": 1, "x": 11 }, doc! { "_id": 2, "x": 11 }]).await.expect("insert");

    let options = SessionOptions::builder().snapshot(true).build();
    let mut session = client.start_session().with_options(options).await.expect("snapshot session");
    let mut cursor = coll.find(doc! {}).session(&mut session).await.expect("find");
    let first: Vec<Document> = cursor.stream(&mut session).try_collect().await.expect("batch");
    assert_eq!(first, [doc! { "_id": 1, "x": 11 }, doc! { "_id": 2, "x": 11 }]);
    assert!(session.snapshot_time().is_some(), "the driver took atClusterTime from the reply");

    // Others write; the session still reads its point in time.
    coll.update_one(doc! { "_id": 1 }, doc! { "$inc": { "x": 1 } }).await.expect("update");
    coll.insert_one(doc! { "_id": 3, "x": 30 }).await.expect("insert");
    coll.delete_one(doc! { "_id": 2 }).await.expect("delete");

    let mut cursor = coll.find(doc! {}).session(&mut session).await.expect("find again");
    let again: Vec<Document> = cursor.stream(&mut session).try_collect().await.expect("batch");
    assert_eq!(again, first, "a snapshot read sees no later write");
    let mut cursor = coll.aggregate([doc! { "$match": { "_id": 1 } }]).session(&mut session).await.expect("aggregate");
    let aggregated: Vec<Document> = cursor.stream(&mut session).try_collect().await.expect("batch");
    assert_eq!(aggregated, [doc! { "_id": 1, "x": 11 }]);
    let distinct = coll.distinct("x", doc! {}).session(&mut session).await.expect("distinct");
    assert_eq!(distinct, [Bson::Int32(11)]);
    let count = coll.count_documents(doc! {}).session(&mut session).await.expect("countDocuments");
    assert_eq!(count, 2);

    // Outside the session: the latest data.
    let now: Vec<Document> = coll.find(doc! {}).await.expect("find").try_collect().await.expect("batch");
    assert_eq!(now, [doc! { "_id": 1, "x": 12 }, doc! { "_id": 3, "x": 30 }]);
}

#[tokio::test]
async fn snapshot_reads_at_a_cluster_time_as_mongod() {
    let server = TestServer::member(&[]);
    write(&server, doc! { "insert": "c", "documents": [{ "_id": 1, "x": 1 }, { "_id": 2, "x": 1 }], "$db": "snap" });
    let first = snapshot_find(&server, doc! {}, None);
    let at = at_cluster_time(&first);
    set_x(&server, 1, 2);

    // The same time, from a fresh request: the data as it was.
    let then = snapshot_find(&server, doc! {}, Some(at));
    assert_eq!(first_batch(&then), [doc! { "_id": 1, "x": 1 }, doc! { "_id": 2, "x": 1 }], "{then}");
    assert_eq!(at_cluster_time(&then), at);
    // A write's own operationTime names the data right after it.
    let update = command(
        &server,
        doc! { "update": "c", "updates": [{ "q": { "_id": 2 }, "u": { "$set": { "x": 3 } } }], "$db": "snap" },
    );
    let after_update = update.get_timestamp("operationTime").unwrap_or_else(|_| panic!("no operationTime in {update}"));
    set_x(&server, 1, 4);
    let at_update = snapshot_find(&server, doc! {}, Some(after_update));
    assert_eq!(first_batch(&at_update), [doc! { "_id": 1, "x": 2 }, doc! { "_id": 2, "x": 3 }], "{at_update}");

    // distinct reports the time at the top level.
    let distinct = command(
        &server,
        doc! { "distinct": "c", "key": "x", "readConcern": { "level": "snapshot", "atClusterTime": at }, "$db": "snap" },
    );
    assert_eq!(distinct.get_array("values").ok(), Some(&vec![Bson::Int32(1)]), "{distinct}");
    assert_eq!(distinct.get("atClusterTime"), Some(&Bson::Timestamp(at)), "{distinct}");

    // Before the history: 239. After the cluster time: 72.
    let old = snapshot_find(&server, doc! {}, Some(Timestamp { time: 1, increment: 1 }));
    assert_eq!((code(&old), old.get_str("codeName").ok()), (Some(239), Some("SnapshotTooOld")), "{old}");
    let future = snapshot_find(&server, doc! {}, Some(Timestamp { time: u32::MAX - 1, increment: 1 }));
    assert_eq!(code(&future), Some(72), "{future}");
    assert!(
        future.get_str("errmsg").unwrap_or_default().starts_with("readConcern atClusterTime value must not be greater"),
        "{future}"
    );
    // Commands that do not take the level outside a transaction: 72.
    for body in [
        doc! { "count": "c", "readConcern": { "level": "snapshot" }, "$db": "snap" },
        doc! { "insert": "c", "documents": [{ "_id": 9 }], "readConcern": { "level": "snapshot" }, "$db": "snap" },
    ] {
        let reply = command(&server, body.clone());
        assert_eq!(code(&reply), Some(72), "{body}: {reply}");
    }
    // A plain read reports no time in its cursor.
    let plain = command(&server, doc! { "find": "c", "$db": "snap" });
    assert!(plain.get_document("cursor").is_ok_and(|c| !c.contains_key("atClusterTime")), "{plain}");
}

#[tokio::test]
async fn snapshot_read_at_a_time_before_an_index_build_does_not_use_the_index() {
    let server = TestServer::member(&[]);
    write(&server, doc! { "insert": "c", "documents": [{ "_id": 1, "x": 5 }, { "_id": 2, "x": 6 }], "$db": "snap" });
    let at = at_cluster_time(&snapshot_find(&server, doc! {}, None));
    write(&server, doc! { "createIndexes": "c", "indexes": [{ "key": { "x": 1 }, "name": "x_1" }], "$db": "snap" });
    // Now the planner would choose x_1; at the earlier time its entries do not exist.
    let then = snapshot_find(&server, doc! { "x": 5 }, Some(at));
    assert_eq!(first_batch(&then), [doc! { "_id": 1, "x": 5 }], "{then}");
    let now = snapshot_find(&server, doc! { "x": 5 }, None);
    assert_eq!(first_batch(&now), [doc! { "_id": 1, "x": 5 }], "{now}");
    let explain = command(
        &server,
        doc! { "explain": { "find": "c", "filter": { "x": 5 } }, "verbosity": "queryPlanner", "$db": "snap" },
    );
    assert!(explain.to_string().contains("x_1"), "the index serves reads of now: {explain}");
}

#[tokio::test]
async fn transaction_starts_at_a_cluster_time() {
    let server = TestServer::member(&[]);
    write(&server, doc! { "insert": "c", "documents": [{ "_id": 1, "x": 1 }], "$db": "snap" });
    let at = at_cluster_time(&snapshot_find(&server, doc! {}, None));
    set_x(&server, 1, 2);
    let lsid = doc! { "id": mongodb::bson::Binary { subtype: mongodb::bson::spec::BinarySubtype::Uuid, bytes: mongodb::bson::Uuid::new().bytes().to_vec() } };
    let reply = command(
        &server,
        doc! {
            "find": "c", "readConcern": { "level": "snapshot", "atClusterTime": at },
            "lsid": lsid.clone(), "txnNumber": 1_i64, "autocommit": false, "startTransaction": true, "$db": "snap",
        },
    );
    assert_eq!(first_batch(&reply), [doc! { "_id": 1, "x": 1 }], "{reply}");
    // Writing the document changed since that time: the first writer won.
    let update = command(
        &server,
        doc! {
            "update": "c", "updates": [{ "q": { "_id": 1 }, "u": { "$set": { "x": 9 } } }],
            "lsid": lsid, "txnNumber": 1_i64, "autocommit": false, "$db": "snap",
        },
    );
    assert_eq!(code(&update), Some(112), "{update}");
}

#[tokio::test]
async fn snapshot_history_window_bounds_how_far_back_reads_go() {
    let server = TestServer::member(&["--setParameter", "minSnapshotHistoryWindowInSeconds=0"]);
    let shown = command(&server, doc! { "getParameter": 1, "minSnapshotHistoryWindowInSeconds": 1, "$db": "admin" });
    assert_eq!(shown.get_i32("minSnapshotHistoryWindowInSeconds").ok(), Some(0), "{shown}");
    write(&server, doc! { "insert": "c", "documents": [{ "_id": 1, "x": 0 }], "$db": "snap" });
    let at = at_cluster_time(&snapshot_find(&server, doc! {}, None));
    // With no window, the history keeps about the last second: writes move it past `at`.
    let mut x = 0;
    let gone = eventually(std::time::Duration::from_secs(10), || {
        x += 1;
        set_x(&server, 1, x);
        code(&snapshot_find(&server, doc! {}, Some(at))) == Some(239)
    });
    assert!(gone, "a time older than the window became unreadable");

    // With the default window back, a time stays readable.
    write(&server, doc! { "setParameter": 1, "minSnapshotHistoryWindowInSeconds": 300, "$db": "admin" });
    let at = at_cluster_time(&snapshot_find(&server, doc! {}, None));
    set_x(&server, 1, -1);
    let kept = snapshot_find(&server, doc! {}, Some(at));
    assert_eq!(first_batch(&kept), [doc! { "_id": 1, "x": x }], "{kept}");
    let refused = command(&server, doc! { "setParameter": 1, "minSnapshotHistoryWindowInSeconds": -1, "$db": "admin" });
    assert_eq!(code(&refused), Some(2), "{refused}");
}
