//! Capped collections through the driver: `size` and `max` keep the newest documents in
//! insertion order (`$natural`), whatever their `_id`s, across restarts; `_id` lookups,
//! updates, deletes and secondary indexes work on them as on mongod 7.0.

mod common;

use common::{TestServer, header_field};
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::ErrorKind;
use mongodb::options::FindOptions;

fn code(error: &mongodb::error::Error) -> Option<i32> {
    match error.kind.as_ref() {
        ErrorKind::Command(e) => Some(e.code),
        ErrorKind::Write(mongodb::error::WriteFailure::WriteError(e)) => Some(e.code),
        ErrorKind::InsertMany(e) => e.write_errors.as_ref().and_then(|w| w.first()).map(|w| w.code),
        _ => None,
    }
}

#[expect(clippy::expect_used, reason = "a failed query must fail the test")]
async fn ids(collection: &mongodb::Collection<Document>, natural: i32) -> Vec<i32> {
    let mut cursor = collection
        .find(doc! {})
        .with_options(FindOptions::builder().sort(doc! { "$natural": natural }).build())
        .await
        .expect("find");
    let mut out = Vec::new();
    while cursor.advance().await.expect("advance") {
        out.push(cursor.deserialize_current().expect("document").get_i32("_id").expect("_id"));
    }
    out
}

#[tokio::test]
async fn capped_keeps_the_newest_documents_in_insertion_order() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("capped");

    let missing = db.run_command(doc! { "create": "c", "capped": true }).await.expect_err("size is required");
    assert_eq!(code(&missing), Some(72));
    db.run_command(doc! { "create": "recent", "capped": true, "size": 100_000, "max": 5 }).await.expect("create");
    let listed = db.run_command(doc! { "listCollections": 1, "filter": { "name": "recent" } }).await.expect("list");
    let options = listed
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .ok()
        .and_then(|b| b.first())
        .and_then(Bson::as_document)
        .and_then(|c| c.get_document("options").ok())
        .cloned()
        .unwrap_or_default();
    assert_eq!(options, doc! { "capped": true, "size": 100_096, "max": 5 }, "size rounded up to 256 bytes");

    // Inserted in descending `_id` order: insertion order is not `_id` order.
    let recent = db.collection::<Document>("recent");
    for id in (0..10).rev() {
        recent.insert_one(doc! { "_id": id, "v": "x" }).await.expect("insert");
    }
    assert_eq!(ids(&recent, 1).await, [4, 3, 2, 1, 0], "the newest five, oldest first");
    assert_eq!(ids(&recent, -1).await, [0, 1, 2, 3, 4]);
    // A batch larger than `max` keeps its own last documents.
    recent.insert_many((100..108).map(|id| doc! { "_id": id })).await.expect("insert_many");
    assert_eq!(ids(&recent, 1).await, [103, 104, 105, 106, 107]);

    // `_id` lookups, duplicates, updates that change the size and deletes, as mongod 7.0.
    assert!(recent.find_one(doc! { "_id": 105 }).await.ok().flatten().is_some());
    let duplicate = recent.insert_one(doc! { "_id": 105 }).await.expect_err("duplicate _id");
    assert_eq!(code(&duplicate), Some(11000));
    recent.update_one(doc! { "_id": 104 }, doc! { "$set": { "grown": "y".repeat(100) } }).await.expect("grow");
    recent.delete_one(doc! { "_id": 106 }).await.expect("delete");
    assert_eq!(ids(&recent, 1).await, [103, 104, 105, 107]);
    recent.create_index(mongodb::IndexModel::builder().keys(doc! { "v": 1 }).build()).await.expect("index");
    let ttl = db
        .run_command(doc! { "createIndexes": "recent", "indexes": [{ "key": { "at": 1 }, "name": "ttl", "expireAfterSeconds": 5 }] })
        .await;
    assert_eq!(ttl.as_ref().err().and_then(code), Some(67), "no TTL index on a capped collection");
    recent.insert_one(doc! { "_id": 200, "v": "z" }).await.expect("insert");
    let by_index = recent.find_one(doc! { "v": "z" }).hint(mongodb::options::Hint::Keys(doc! { "v": 1 })).await;
    assert_eq!(by_index.ok().flatten().and_then(|d| d.get_i32("_id").ok()), Some(200));

    // `size`: 3,000 documents of about 130 bytes in 100,000 bytes keep only the newest.
    db.run_command(doc! { "create": "log", "capped": true, "size": 100_000 }).await.expect("create");
    let log = db.collection::<Document>("log");
    log.insert_many((0..3000).map(|i| doc! { "_id": i, "line": format!("{i:0>100}") })).await.expect("insert_many");
    let kept = ids(&log, 1).await;
    assert!(kept.len() < 3000 && kept.len() > 600, "kept {}", kept.len());
    let first = kept.first().copied().unwrap_or(0);
    assert_eq!(kept, (first..3000).collect::<Vec<_>>(), "the newest, in insertion order");
    let stats = db.run_command(doc! { "collStats": "log" }).await.expect("collStats");
    assert_eq!((stats.get_bool("capped").ok(), stats.get_i64("maxSize").ok()), (Some(true), Some(100_096)));
    assert!(stats.get_i64("size").is_ok_and(|size| size <= 100_096), "{stats}");
    let too_big = log.insert_one(doc! { "_id": -1, "line": "z".repeat(200_000) }).await.expect_err("too big");
    assert_eq!(code(&too_big), Some(2));
    let validated = db.run_command(doc! { "validate": "recent" }).await.expect("validate");
    assert_eq!(validated.get_bool("valid").ok(), Some(true), "{validated}");

    // After a restart the order and the limits hold, and new records come after the old.
    drop(client);
    let server = server.restart(&[]);
    let client = server.client("").await;
    let recent = client.database("capped").collection::<Document>("recent");
    recent.insert_one(doc! { "_id": 1 }).await.expect("insert after restart");
    assert_eq!(ids(&recent, 1).await, [104, 105, 107, 200, 1]);
}

#[tokio::test]
async fn capped_conversions_keep_the_newest_documents() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("convert");
    let events = db.collection::<Document>("events");
    events.insert_many((0..100).map(|i| doc! { "_id": i, "pad": "p".repeat(50) })).await.expect("insert");
    events.create_index(mongodb::IndexModel::builder().keys(doc! { "pad": 1 }).build()).await.expect("index");

    db.run_command(doc! { "cloneCollectionAsCapped": "events", "toCollection": "recent", "size": 1024 })
        .await
        .expect("clone");
    let recent = db.collection::<Document>("recent");
    let kept = ids(&recent, 1).await;
    assert!(!kept.is_empty() && kept.len() < 100, "{kept:?}");
    let first = kept.first().copied().unwrap_or(0);
    assert_eq!(kept, (first..100).collect::<Vec<_>>(), "the newest that fit, in order");
    assert_eq!(events.count_documents(doc! {}).await.ok(), Some(100), "the source is untouched");
    let exists =
        db.run_command(doc! { "cloneCollectionAsCapped": "events", "toCollection": "recent", "size": 1024 }).await;
    assert_eq!(exists.as_ref().err().and_then(code), Some(48));
    let missing =
        db.run_command(doc! { "cloneCollectionAsCapped": "nothing", "toCollection": "x", "size": 1024 }).await;
    assert_eq!(missing.as_ref().err().and_then(code), Some(26));

    db.run_command(doc! { "convertToCapped": "events", "size": 2048 }).await.expect("convert");
    let stats = db.run_command(doc! { "collStats": "events" }).await.expect("collStats");
    assert_eq!(stats.get_bool("capped").ok(), Some(true), "{stats}");
    let indexes = events.list_index_names().await.expect("indexes");
    assert_eq!(indexes, ["_id_"], "as mongod, only the _id index is kept");
    events.insert_one(doc! { "_id": 1000, "pad": "p".repeat(50) }).await.expect("insert");
    let kept = ids(&events, 1).await;
    assert_eq!(kept.last(), Some(&1000));
    assert!(kept.len() < 40, "{}", kept.len());
    let no_size = db.run_command(doc! { "convertToCapped": "events" }).await;
    assert_eq!(no_size.as_ref().err().and_then(code), Some(40414));
}

/// `cursor.id` and the batch of a find or getMore reply.
fn cursor_of(reply: &Document, batch: &str) -> (i64, Vec<i32>) {
    let cursor = reply.get_document("cursor").cloned().unwrap_or_default();
    let ids = cursor
        .get_array(batch)
        .map(|b| b.iter().filter_map(Bson::as_document).filter_map(|d| d.get_i32("_id").ok()).collect())
        .unwrap_or_default();
    (cursor.get_i64("id").unwrap_or(0), ids)
}

#[tokio::test]
async fn capped_tailable_cursors_follow_inserts() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("tail");
    db.run_command(doc! { "create": "feed", "capped": true, "size": 4096, "max": 3 }).await.expect("create");
    db.run_command(doc! { "create": "plain" }).await.expect("create");
    let feed = db.collection::<Document>("feed");

    // Refused as mongod refuses them; on an empty capped collection the cursor is closed.
    let plain = db.run_command(doc! { "find": "plain", "tailable": true }).await;
    assert_eq!(plain.as_ref().err().and_then(code), Some(2));
    let sorted = db.run_command(doc! { "find": "feed", "tailable": true, "sort": { "_id": 1 } }).await;
    assert_eq!(sorted.as_ref().err().and_then(code), Some(2));
    let empty = db.run_command(doc! { "find": "feed", "tailable": true }).await.expect("find");
    assert_eq!(cursor_of(&empty, "firstBatch"), (0, vec![]));

    feed.insert_many((1..=3).map(|id| doc! { "_id": id })).await.expect("insert");
    let first = db.run_command(doc! { "find": "feed", "tailable": true, "batchSize": 2 }).await.expect("find");
    let (id, batch) = cursor_of(&first, "firstBatch");
    assert!(id != 0 && batch == [1, 2], "{first}");
    let more = |max_time: Option<i64>| {
        let mut body = doc! { "getMore": id, "collection": "feed" };
        if let Some(ms) = max_time {
            body.insert("maxTimeMS", ms);
        }
        body
    };
    let next = db.run_command(more(None)).await.expect("getMore");
    assert_eq!(cursor_of(&next, "nextBatch"), (id, vec![3]));
    // At the end: an empty batch at once, and the cursor stays open for what comes next.
    let at_end = db.run_command(more(None)).await.expect("getMore");
    assert_eq!(cursor_of(&at_end, "nextBatch"), (id, vec![]));
    let timed = db.run_command(more(Some(100))).await;
    assert_eq!(timed.as_ref().err().and_then(code), Some(2), "maxTimeMS needs awaitData");
    feed.insert_one(doc! { "_id": 4 }).await.expect("insert");
    let next = db.run_command(more(None)).await.expect("getMore");
    assert_eq!(cursor_of(&next, "nextBatch"), (id, vec![4]));

    // awaitData: the getMore waits for an insert, without blocking other requests.
    let awaiting = db.run_command(doc! { "find": "feed", "tailable": true, "awaitData": true }).await.expect("find");
    let (waiting_id, batch) = cursor_of(&awaiting, "firstBatch");
    assert_eq!(batch, [2, 3, 4]);
    let started = std::time::Instant::now();
    let quiet =
        db.run_command(doc! { "getMore": waiting_id, "collection": "feed", "maxTimeMS": 200 }).await.expect("getMore");
    assert_eq!(cursor_of(&quiet, "nextBatch"), (waiting_id, vec![]));
    assert!(started.elapsed() >= std::time::Duration::from_millis(200), "it waited its maxTimeMS");
    let waiter = {
        let db = db.clone();
        tokio::spawn(async move {
            db.run_command(doc! { "getMore": waiting_id, "collection": "feed", "maxTimeMS": 10_000 }).await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let inserted = std::time::Instant::now();
    feed.insert_one(doc! { "_id": 5 }).await.expect("insert while a getMore waits");
    let woke = waiter.await.expect("join").expect("getMore");
    assert!(inserted.elapsed() < std::time::Duration::from_secs(5), "woken by the insert, not the timeout");
    assert_eq!(cursor_of(&woke, "nextBatch"), (waiting_id, vec![5]));

    // A reader that falls behind the trimming loses its place (136), as in mongod.
    let behind = db.run_command(doc! { "find": "feed", "tailable": true, "batchSize": 1 }).await.expect("find");
    let (behind_id, _) = cursor_of(&behind, "firstBatch");
    feed.insert_many((6..=9).map(|id| doc! { "_id": id })).await.expect("insert");
    let lost = db.run_command(doc! { "getMore": behind_id, "collection": "feed" }).await;
    assert_eq!(lost.as_ref().err().and_then(code), Some(136));
}

#[test]
fn capped_exhaust_get_more_streams_batches_until_the_cursor_ends() {
    const EXHAUST_ALLOWED: u32 = 1 << 16;
    const MORE_TO_COME: i32 = 1 << 1;
    let server = TestServer::start(&[]);
    let mut conn = server.raw();
    let send = |conn: &mut common::RawConnection, id: i32, flags: u32, body: Document| {
        conn.send(&common::op_msg(id, flags, &body));
        conn.receive().unwrap_or_default()
    };
    let docs: Vec<Bson> = (1..=5).map(|id| Bson::Document(doc! { "_id": id })).collect();
    send(&mut conn, 1, 0, doc! { "insert": "c", "documents": docs, "$db": "exhaust" });
    let found = common::reply_body(&send(&mut conn, 2, 0, doc! { "find": "c", "batchSize": 2, "$db": "exhaust" }));
    let (id, first) = cursor_of(&found, "firstBatch");
    assert_eq!(first, [1, 2]);

    // One getMore with exhaustAllowed: the batches come on their own, each answering the
    // previous reply, moreToCome on all but the last (the cursor's end).
    let get_more = doc! { "getMore": id, "collection": "c", "batchSize": 2, "$db": "exhaust" };
    let reply = send(&mut conn, 3, EXHAUST_ALLOWED, get_more);
    assert_eq!(header_field(&reply, 8), 3);
    assert_eq!(header_field(&reply, 16) & MORE_TO_COME, MORE_TO_COME, "a stream");
    assert_eq!(cursor_of(&common::reply_body(&reply), "nextBatch"), (id, vec![3, 4]));
    let last = conn.receive().unwrap_or_default();
    assert_eq!(header_field(&last, 8), header_field(&reply, 4), "responseTo is the previous reply");
    assert_eq!(header_field(&last, 16) & MORE_TO_COME, 0, "the last reply ends the stream");
    assert_eq!(cursor_of(&common::reply_body(&last), "nextBatch"), (0, vec![5]));
    // The connection serves requests again.
    let ping = common::reply_body(&send(&mut conn, 4, 0, doc! { "ping": 1, "$db": "admin" }));
    assert_eq!(ping.get_f64("ok").ok(), Some(1.0));
}
