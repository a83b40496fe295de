//! The database profiler (`profile`, `system.profile`) and latency statistics
//! (`serverStatus.opLatencies`, `$collStats.latencyStats`, `monarchQueryStats`), through the
//! Rust driver.

#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::ErrorKind;
use mongodb::{Client, Database};

/// The server's code and message for a command error.
fn command_error(error: &mongodb::error::Error) -> Option<(i32, String)> {
    match error.kind.as_ref() {
        ErrorKind::Command(e) => Some((e.code, e.message.clone())),
        ErrorKind::Write(mongodb::error::WriteFailure::WriteError(e)) => Some((e.code, e.message.clone())),
        _ => None,
    }
}

/// The profile entries `filter` matches. mongod writes an entry before it replies, so no
/// waiting: an entry that is not there now is missing.
async fn entries(db: &Database, filter: Document) -> Vec<Document> {
    db.collection::<Document>("system.profile")
        .find(filter)
        .await
        .expect("find system.profile")
        .try_collect()
        .await
        .expect("read system.profile")
}

async fn collection_names(db: &Database) -> Vec<String> {
    db.list_collection_names().await.expect("listCollections")
}

#[tokio::test]
async fn profile_level_0_writes_no_entries() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("prof0");
    let status = db.run_command(doc! { "profile": -1 }).await.expect("profile -1");
    assert_eq!(status.get_i32("was").expect("was"), 0);
    assert_eq!(status.get_i32("slowms").expect("slowms"), 100);
    assert_eq!(status.get_f64("sampleRate").expect("sampleRate"), 1.0);
    let coll = db.collection::<Document>("c");
    coll.insert_one(doc! { "a": 1 }).await.expect("insert");
    coll.find_one(doc! { "a": 1 }).await.expect("find");
    assert!(!collection_names(&db).await.contains(&"system.profile".to_owned()));
}

#[tokio::test]
async fn profile_level_2_records_every_operation_in_mongod_shape() {
    let server = TestServer::start(&[]);
    let client = server.client("appName=profiler-test").await;
    let db = client.database("prof2");
    let reply = db.run_command(doc! { "profile": 2 }).await.expect("profile 2");
    assert_eq!(reply.get_i32("was").expect("was"), 0);
    let info = db
        .run_command(doc! { "listCollections": 1, "filter": { "name": "system.profile" } })
        .await
        .expect("listCollections");
    let listed = info.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("batch");
    let options = listed[0].as_document().and_then(|d| d.get_document("options").ok()).expect("options");
    assert_eq!(options.get_bool("capped").ok(), Some(true));
    assert_eq!(options.get_i64("size").ok(), Some(1024 * 1024));
    let dropped = db.collection::<Document>("system.profile").drop().await.map(|_| ());
    let error = dropped.expect_err("drop while profiling");
    assert_eq!(
        command_error(&error),
        Some((20, "turn off profiling before dropping system.profile collection".into())),
        "mongod's IllegalOperation"
    );

    let coll = db.collection::<Document>("c");
    coll.insert_many(vec![doc! { "_id": 1, "a": 1 }, doc! { "_id": 2, "a": 2 }]).await.expect("insert");
    coll.find(doc! { "a": { "$gte": 1 } }).await.expect("find").try_collect::<Vec<_>>().await.expect("docs");
    coll.update_one(doc! { "_id": 1 }, doc! { "$set": { "b": 1 } }).await.expect("update");
    coll.delete_one(doc! { "_id": 2 }).await.expect("delete");

    let insert = entries(&db, doc! { "op": "insert", "ns": "prof2.c" }).await;
    assert_eq!(insert.len(), 1, "one insert entry");
    assert_eq!(insert[0].get_i64("ninserted").ok(), Some(2));
    assert_eq!(insert[0].get_document("command").and_then(|c| c.get_str("insert")).ok(), Some("c"));

    let query = entries(&db, doc! { "op": "query", "ns": "prof2.c" }).await;
    let query = query.first().expect("query entry");
    let filter = query.get_document("command").and_then(|c| c.get_document("filter")).expect("command.filter");
    assert_eq!(filter, &doc! { "a": { "$gte": 1 } }, "the profiler keeps values, as mongod's");
    assert_eq!(query.get_i64("nreturned").ok(), Some(2));
    assert_eq!(query.get_i64("docsExamined").ok(), Some(2));
    assert!(query.get_i64("keysExamined").is_ok());
    assert_eq!(query.get_str("planSummary").ok(), Some("COLLSCAN"));
    assert!(query.get_str("queryShapeHash").is_ok());
    assert!(query.get_i64("millis").is_ok());
    assert!(query.get_i64("responseLength").expect("responseLength") > 0);
    assert!(matches!(query.get("ts"), Some(Bson::DateTime(_))));
    assert_eq!(query.get_str("client").ok(), Some("127.0.0.1"));
    assert_eq!(query.get_str("appName").ok(), Some("profiler-test"));
    assert_eq!(query.get_str("protocol").ok(), Some("op_msg"));
    assert_eq!(query.get_str("user").ok(), Some(""));
    assert_eq!(query.get_i32("numYield").ok(), Some(0));
    assert!(query.get_document("locks").is_ok());

    let update = entries(&db, doc! { "op": "update", "ns": "prof2.c" }).await;
    assert_eq!(update.first().and_then(|u| u.get_i64("nModified").ok()), Some(1));
    let remove = entries(&db, doc! { "op": "remove", "ns": "prof2.c" }).await;
    assert_eq!(remove.first().and_then(|r| r.get_i64("ndeleted").ok()), Some(1));

    let write = db.collection::<Document>("system.profile").insert_one(doc! { "x": 1 }).await;
    let error = write.map(|_| ()).expect_err("clients cannot write to system.profile");
    assert_eq!(command_error(&error), Some((73, "cannot write to prof2.system.profile".into())), "{error}");

    // Another database keeps its own level.
    let other = client.database("prof2other");
    other.collection::<Document>("c").insert_one(doc! { "a": 1 }).await.expect("insert other");
    assert!(!collection_names(&other).await.contains(&"system.profile".to_owned()));
}

#[tokio::test]
async fn profile_level_1_records_only_slow_operations() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("prof1");
    let coll = db.collection::<Document>("c");
    coll.insert_one(doc! { "a": 1 }).await.expect("insert");
    db.run_command(doc! { "profile": 1, "slowms": 1_000_000 }).await.expect("profile 1");
    coll.find_one(doc! { "fast": 1 }).await.expect("fast find");
    assert!(entries(&db, doc! { "command.filter.fast": 1 }).await.is_empty(), "nothing is that slow");

    let reply = db.run_command(doc! { "profile": 1, "slowms": 0 }).await.expect("profile 1, slowms 0");
    assert_eq!(reply.get_i32("was").ok(), Some(1));
    assert_eq!(reply.get_i32("slowms").ok(), Some(1_000_000), "the reply holds the previous threshold");
    coll.find_one(doc! { "slow": 1 }).await.expect("slow find");
    let found = entries(&db, doc! { "command.filter.slow": 1 }).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].get_str("op").ok(), Some("query"));

    // With a filter, the filter alone decides.
    db.run_command(doc! { "profile": 1, "slowms": 1_000_000, "filter": { "op": "insert" } })
        .await
        .expect("profile with filter");
    let status = db.run_command(doc! { "profile": -1 }).await.expect("status");
    assert_eq!(status.get_document("filter").ok(), Some(&doc! { "op": "insert" }));
    assert!(status.get_str("note").is_ok());
    coll.insert_one(doc! { "filtered": 1 }).await.expect("insert");
    coll.find_one(doc! { "filtered": 1 }).await.expect("find");
    // The driver sends the documents as a document sequence, outside the command body the
    // entry shows (as mongod's does).
    let found = entries(&db, doc! { "op": "insert", "ns": "prof1.c" }).await;
    assert_eq!(found.len(), 1);
    assert!(entries(&db, doc! { "op": "query", "command.filter.filtered": 1 }).await.is_empty());
}

#[tokio::test]
async fn profile_collection_is_capped_at_one_mebibyte() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("profcap");
    db.run_command(doc! { "profile": 2 }).await.expect("profile 2");
    let coll = db.collection::<Document>("c");
    // Each entry holds its command's filter: about 10 KB (commands over 16 KB are kept as
    // their name and size only).
    let pad = "x".repeat(10_000);
    for n in 0..150 {
        coll.find_one(doc! { "n": n, "pad": &pad }).await.expect("find");
    }
    let last = entries(&db, doc! { "op": "query", "command.filter.n": 149 }).await;
    assert_eq!(last.len(), 1, "the newest entry is kept");
    assert!(entries(&db, doc! { "op": "query", "command.filter.n": 0 }).await.is_empty(), "the oldest went");
    let stats: Vec<Document> = db
        .collection::<Document>("system.profile")
        .aggregate(vec![doc! { "$collStats": { "storageStats": {} } }])
        .await
        .expect("collStats")
        .try_collect()
        .await
        .expect("stats");
    let size = stats[0].get_document("storageStats").and_then(|s| s.get_i64("size")).expect("size");
    assert!(size <= 1024 * 1024, "{size}");
}

/// `serverStatus` once its class's ops counter is past `at_least`.
async fn op_latencies(client: &Client, class: &str, at_least: i64, histograms: bool) -> Document {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = client
            .database("admin")
            .run_command(doc! { "serverStatus": 1, "opLatencies": { "histograms": histograms } })
            .await
            .expect("serverStatus");
        let latencies = status.get_document("opLatencies").expect("opLatencies").clone();
        let ops = latencies.get_document(class).and_then(|c| c.get_i64("ops")).expect("ops");
        if ops >= at_least || Instant::now() > deadline {
            return latencies;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn server_status_op_latencies_move_and_show_histograms() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let before = op_latencies(&client, "reads", 0, false).await;
    for class in ["reads", "writes", "commands", "transactions"] {
        let stats = before.get_document(class).expect(class);
        assert!(stats.get_i64("latency").is_ok() && stats.get_i64("ops").is_ok(), "{class}: {stats}");
        assert!(!stats.contains_key("histogram"));
    }
    let count = |d: &Document, class: &str| d.get_document(class).and_then(|c| c.get_i64("ops")).expect("ops");
    let coll = client.database("lat").collection::<Document>("c");
    coll.insert_one(doc! { "a": 1 }).await.expect("insert");
    coll.find_one(doc! { "a": 1 }).await.expect("find");
    client.database("admin").run_command(doc! { "ping": 1 }).await.expect("ping");
    let after = op_latencies(&client, "reads", count(&before, "reads") + 1, true).await;
    assert!(count(&after, "reads") > count(&before, "reads"));
    assert!(count(&after, "writes") > count(&before, "writes"));
    assert!(count(&after, "commands") > count(&before, "commands"));
    let reads = after.get_document("reads").expect("reads");
    assert!(reads.get_i64("latency").expect("latency") > 0);
    let histogram = reads.get_array("histogram").expect("histogram");
    assert!(!histogram.is_empty());
    let total: i64 = histogram.iter().filter_map(|b| b.as_document()).map(|b| b.get_i64("count").expect("count")).sum();
    assert_eq!(total, count(&after, "reads"), "every read lands in a bucket");
    let first = histogram[0].as_document().expect("bucket");
    assert!(first.get_i64("micros").is_ok());
}

#[tokio::test]
async fn coll_stats_latency_stats_per_collection() {
    let server = TestServer::start(&[]);
    // One connection: a request's latency is recorded once its reply is written, before the
    // server reads the next message on that connection, so `$collStats` below sees all three
    // finds without waiting.
    let client = server.client("maxPoolSize=1").await;
    let coll = client.database("lat").collection::<Document>("c");
    coll.insert_one(doc! { "a": 1 }).await.expect("insert");
    for _ in 0..3 {
        coll.find_one(doc! { "a": 1 }).await.expect("find");
    }
    let stats: Vec<Document> = coll
        .aggregate(vec![doc! { "$collStats": { "latencyStats": { "histograms": true } } }])
        .await
        .expect("collStats")
        .try_collect()
        .await
        .expect("stats");
    let latency = stats[0].get_document("latencyStats").expect("latencyStats");
    let reads = latency.get_document("reads").expect("reads");
    assert_eq!(reads.get_i64("ops").ok(), Some(3));
    assert!(!reads.get_array("histogram").expect("histogram").is_empty());
    assert_eq!(latency.get_document("writes").and_then(|w| w.get_i64("ops")).ok(), Some(1));
    assert_eq!(latency.get_document("transactions").and_then(|w| w.get_i64("ops")).ok(), Some(0));
}

#[tokio::test]
async fn monarch_query_stats_lists_a_repeated_shape() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let coll = client.database("qs").collection::<Document>("c");
    coll.insert_many((0..10).map(|i| doc! { "a": i }).collect::<Vec<_>>()).await.expect("insert");
    for i in 0..20 {
        coll.find_one(doc! { "a": i % 10 }).await.expect("find");
    }
    let admin = client.database("admin");
    let deadline = Instant::now() + Duration::from_secs(5);
    let row = loop {
        let reply = admin.run_command(doc! { "monarchQueryStats": 1, "limit": 5 }).await.expect("query stats");
        let rows = reply.get_array("queryStats").expect("queryStats").clone();
        let row = rows
            .iter()
            .filter_map(|r| r.as_document())
            .find(|r| r.get_str("ns").ok() == Some("qs.c") && r.get_i64("count").unwrap_or(0) >= 20)
            .cloned();
        match row {
            Some(row) => break row,
            None if Instant::now() > deadline => panic!("no shape with 20 runs: {rows:?}"),
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    assert_eq!(row.get_i64("count").ok(), Some(20));
    assert_eq!(row.get_str("queryShapeHash").map(str::len).ok(), Some(16));
    let p50 = row.get_i64("p50Micros").expect("p50");
    let p99 = row.get_i64("p99Micros").expect("p99");
    let max = row.get_i64("maxMicros").expect("max");
    assert!(0 < p50 && p50 <= p99 && p99 <= max, "{row}");
    assert!(row.get_f64("totalMillis").expect("totalMillis") > 0.0);
    assert!(row.get_f64("docsExaminedPerReturned").expect("ratio") >= 1.0);
    let filter = row.get_document("command").and_then(|c| c.get_document("filter")).expect("command.filter");
    assert_eq!(filter.get_str("a").ok(), Some("###"), "the example is redacted");
    let wrong_db = client.database("qs").run_command(doc! { "monarchQueryStats": 1 }).await;
    let error = wrong_db.expect_err("monarchQueryStats outside admin");
    assert_eq!(command_error(&error).map(|(code, _)| code), Some(13), "{error}");
}

#[tokio::test]
async fn current_op_stage_lists_operations_in_flight() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let admin = client.database("admin");
    let ops: Vec<Document> = admin
        .aggregate(vec![
            doc! { "$currentOp": { "allUsers": true, "idleConnections": false, "truncateOps": false } },
            doc! { "$match": {} },
        ])
        .await
        .expect("$currentOp")
        .try_collect()
        .await
        .expect("ops");
    assert!(
        ops.iter().any(|op| op.get_document("command").is_ok_and(|c| c.contains_key("aggregate"))),
        "the aggregate itself is in flight: {ops:?}"
    );
    let elsewhere = client
        .database("test")
        .aggregate(vec![doc! { "$currentOp": {} }])
        .await
        .map(|_| ())
        .expect_err("$currentOp outside admin");
    // mongod: 73 InvalidNamespace, "$currentOp must be run against the 'admin' database with
    // {aggregate: 1}".
    assert_eq!(command_error(&elsewhere).map(|(code, _)| code), Some(73), "{elsewhere}");
}

#[tokio::test]
async fn profile_start_level_applies_to_every_database() {
    let server = TestServer::start(&["--profile", "2"]);
    let client = server.client("").await;
    for name in ["startA", "startB"] {
        let db = client.database(name);
        db.collection::<Document>("c").find_one(doc! { "x": 1 }).await.expect("find");
        let found = entries(&db, doc! { "op": "query", "ns": format!("{name}.c") }).await;
        assert_eq!(found.len(), 1, "{name}");
        assert_eq!(db.run_command(doc! { "profile": -1 }).await.expect("status").get_i32("was").ok(), Some(2));
    }
}

#[tokio::test]
async fn profile_entry_exists_when_the_reply_arrives() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let other = server.client("").await;
    let db = client.database("profnow");
    db.run_command(doc! { "profile": 2 }).await.expect("profile 2");
    let coll = db.collection::<Document>("c");
    coll.insert_one(doc! { "a": 1 }).await.expect("insert");
    // No polling here: mongod writes the entry before it replies, and tools read
    // `system.profile` right after an operation. Several rounds, so a writer that merely
    // tends to be quick enough does not pass by luck. First through one raw connection with both messages in one write: the server reads
    // the count only after it has answered the find, with no network round trip between them
    // for a late writer to hide in.
    let mut raw = server.raw();
    for n in 0..20 {
        let find = doc! { "find": "c", "filter": { "raw": n }, "$db": "profnow" };
        let count = doc! { "count": "system.profile", "query": { "command.filter.raw": n }, "$db": "profnow" };
        let mut both = common::op_msg(1, 0, &find);
        both.extend(common::op_msg(2, 0, &count));
        raw.send(&both);
        let found = raw.receive().map(|m| common::reply_body(&m)).expect("find reply");
        assert_eq!(found.get_f64("ok").ok(), Some(1.0), "{found}");
        let counted = raw.receive().map(|m| common::reply_body(&m)).expect("count reply");
        assert_eq!(counted.get_i32("n").ok(), Some(1), "round {n}: {counted}");
    }

    // Then through the driver, reading with the same client and with another one.
    for n in 0..20 {
        coll.find_one(doc! { "round": n }).await.expect("find");
        let filter = doc! { "op": "query", "command.filter.round": n };
        for (who, reader) in [("same client", &client), ("another client", &other)] {
            let found = reader
                .database("profnow")
                .collection::<Document>("system.profile")
                .count_documents(filter.clone())
                .await
                .expect("count system.profile");
            assert_eq!(found, 1, "round {n}: the entry is visible through {who} once the find replied");
        }
    }
}
