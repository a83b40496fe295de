//! Time-series collections through the Rust driver: creation and its checks, listing,
//! bucketed inserts, reads that unpack buckets (with time and meta filters reading few
//! buckets), the writes that are refused, drop and TTL.

mod common;

use std::time::Duration;

use common::{TestServer, eventually_async};
use mongodb::Database;
use mongodb::bson::{Bson, DateTime, Document, doc};
use mongodb::error::ErrorKind;

fn code(error: &mongodb::error::Error) -> Option<i32> {
    match error.kind.as_ref() {
        ErrorKind::Command(e) => Some(e.code),
        _ => None,
    }
}

fn first_batch(reply: &Document) -> Vec<Document> {
    let batch = reply.get_document("cursor").and_then(|c| c.get_array("firstBatch")).cloned().unwrap_or_default();
    batch.into_iter().filter_map(|d| d.as_document().cloned()).collect()
}

async fn run(db: &Database, command: Document) -> mongodb::error::Result<Document> {
    db.run_command(command).await
}

/// Every document of a cursor command (first batch and the getMores).
#[expect(clippy::expect_used, reason = "a test helper: a failed command fails the test")]
async fn all(db: &Database, command: Document) -> Vec<Document> {
    let reply = run(db, command).await.expect("command");
    let mut out = first_batch(&reply);
    let cursor = reply.get_document("cursor").expect("cursor");
    let mut id = cursor.get_i64("id").unwrap_or(0);
    let coll = cursor.get_str("ns").unwrap_or_default().split_once('.').map(|(_, c)| c.to_owned()).unwrap_or_default();
    while id != 0 {
        let more = run(db, doc! { "getMore": id, "collection": &coll }).await.expect("getMore");
        let cursor = more.get_document("cursor").expect("cursor");
        out.extend(cursor.get_array("nextBatch").expect("batch").iter().filter_map(|d| d.as_document().cloned()));
        id = cursor.get_i64("id").unwrap_or(0);
    }
    out
}

#[tokio::test]
async fn timeseries_create_checks_options_and_lists_as_mongod() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("ts");
    let cases: Vec<(Document, i32, &str)> = vec![
        (doc! { "timeseries": {} }, 40414, "BSON field 'create.timeseries.timeField' is missing but a required field"),
        (doc! { "timeseries": { "timeField": 1 } }, 14, ""),
        (doc! { "timeseries": 1 }, 14, ""),
        (
            doc! { "timeseries": { "timeField": "t", "x": 1 } },
            40415,
            "BSON field 'create.timeseries.x' is an unknown field.",
        ),
        (doc! { "timeseries": { "timeField": "t", "metaField": "_id" } }, 72, "'metaField' cannot be \"_id\""),
        (
            doc! { "timeseries": { "timeField": "t", "metaField": "t" } },
            72,
            "'metaField' cannot be the same as 'timeField'",
        ),
        (
            doc! { "timeseries": { "timeField": "t", "metaField": "a.b" } },
            72,
            "ts.bad: 'metaField' must be a top-level field and not contain a '.'",
        ),
        (
            doc! { "timeseries": { "timeField": "a.t" } },
            72,
            "ts.bad: 'timeField' must be a top-level field and not contain a '.'",
        ),
        (
            doc! { "timeseries": { "timeField": "t", "granularity": "days" } },
            2,
            "Enumeration value 'days' for field 'create.timeseries.granularity' is not a valid value.",
        ),
        (
            doc! { "timeseries": { "timeField": "t", "granularity": "minutes", "bucketMaxSpanSeconds": 3600 } },
            72,
            "Timeseries 'bucketMaxSpanSeconds' is not configurable to a value other than the default of 86400 for the provided granularity",
        ),
        (
            doc! { "timeseries": { "timeField": "t", "granularity": "hours", "bucketRoundingSeconds": 60 } },
            72,
            "Timeseries 'bucketRoundingSeconds' is not configurable to a value other than the default of 86400 for the provided granularity",
        ),
        (
            doc! { "timeseries": { "timeField": "t", "bucketMaxSpanSeconds": 100 } },
            72,
            "Timeseries 'bucketMaxSpanSeconds' and 'bucketRoundingSeconds' need to be set alongside each other",
        ),
        (
            doc! { "timeseries": { "timeField": "t", "bucketMaxSpanSeconds": 100, "bucketRoundingSeconds": 50 } },
            72,
            "Timeseries 'bucketRoundingSeconds' needs to be equal to 'bucketMaxSpanSeconds'",
        ),
        (
            doc! { "timeseries": { "timeField": "t", "bucketMaxSpanSeconds": 0, "bucketRoundingSeconds": 0 } },
            51024,
            "BSON field 'bucketMaxSpanSeconds' value must be >= 1, actual value '0'",
        ),
        (
            doc! { "timeseries": { "timeField": "t" }, "capped": true, "size": 4096 },
            72,
            "ts.bad: 'timeseries' is not allowed with 'capped'",
        ),
        (
            doc! { "timeseries": { "timeField": "t" }, "validator": { "a": 1 } },
            72,
            "ts.bad: 'timeseries' is not allowed with 'validator'",
        ),
        (
            doc! { "timeseries": { "timeField": "t" }, "clusteredIndex": { "key": { "_id": 1 }, "unique": true } },
            72,
            "ts.bad: 'timeseries' is not allowed with 'clusteredIndex'",
        ),
        (
            doc! { "timeseries": { "timeField": "t" }, "expireAfterSeconds": -1 },
            72,
            "TTL index 'expireAfterSeconds' option cannot be less than 0",
        ),
    ];
    for (options, expected, message) in cases {
        let mut command = doc! { "create": "bad" };
        command.extend(options.clone());
        let error = run(&db, command).await.expect_err("refused");
        assert_eq!(code(&error), Some(expected), "{options}: {error}");
        if let (false, ErrorKind::Command(e)) = (message.is_empty(), error.kind.as_ref()) {
            assert_eq!(e.message, message, "{options}");
        }
    }
    assert!(db.list_collection_names().await.expect("names").is_empty(), "a refused create leaves nothing");

    run(&db, doc! { "create": "w", "timeseries": { "timeField": "t", "metaField": "m" }, "capped": false })
        .await
        .expect("create");
    // The same options again: nothing to do; other options: 48.
    run(&db, doc! { "create": "w", "timeseries": { "timeField": "t", "metaField": "m" } }).await.expect("again");
    let error = run(&db, doc! { "create": "w", "timeseries": { "timeField": "t" } }).await.expect_err("other");
    assert_eq!(code(&error), Some(48));
    let error = run(&db, doc! { "create": "w" }).await.expect_err("a collection");
    assert_eq!(code(&error), Some(48));
    run(&db, doc! { "create": "custom", "timeseries": { "timeField": "t", "bucketMaxSpanSeconds": 600, "bucketRoundingSeconds": 600 }, "expireAfterSeconds": 3600 })
        .await
        .expect("custom");

    let listed = first_batch(&run(&db, doc! { "listCollections": 1 }).await.expect("list"));
    let names: Vec<&str> = listed.iter().filter_map(|e| e.get_str("name").ok()).collect();
    assert_eq!(names, ["custom", "system.buckets.custom", "system.buckets.w", "system.views", "w"]);
    let w = listed.iter().find(|e| e.get_str("name").ok() == Some("w")).expect("w");
    assert_eq!(
        w,
        &doc! {
            "name": "w",
            "type": "timeseries",
            "options": { "timeseries": { "timeField": "t", "metaField": "m", "granularity": "seconds", "bucketRoundingSeconds": 60, "bucketMaxSpanSeconds": 3600 } },
            "info": { "readOnly": false },
        }
    );
    let custom = listed.iter().find(|e| e.get_str("name").ok() == Some("custom")).expect("custom");
    assert_eq!(
        custom.get_document("options").expect("options"),
        &doc! { "timeseries": { "timeField": "t", "bucketRoundingSeconds": 600, "bucketMaxSpanSeconds": 600 }, "expireAfterSeconds": 3600_i64 }
    );
    let buckets = listed.iter().find(|e| e.get_str("name").ok() == Some("system.buckets.w")).expect("buckets");
    assert_eq!(buckets.get_str("type").ok(), Some("collection"));
    let options = buckets.get_document("options").expect("options");
    assert_eq!(options.get_bool("clusteredIndex").ok(), Some(true));
    assert!(options.get_document("validator").is_ok_and(|v| v.contains_key("$jsonSchema")), "{options}");
    assert!(!buckets.contains_key("idIndex"));
    let typed = first_batch(
        &run(&db, doc! { "listCollections": 1, "filter": { "type": "timeseries" }, "nameOnly": true })
            .await
            .expect("list"),
    );
    assert_eq!(
        typed,
        vec![doc! { "name": "custom", "type": "timeseries" }, doc! { "name": "w", "type": "timeseries" }]
    );
}

/// A deterministic pseudo-random sequence (no dependency, same data every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

#[tokio::test]
async fn timeseries_inserts_bucket_and_reads_unpack_with_pushdown() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("ts");
    run(&db, doc! { "create": "w", "timeseries": { "timeField": "t", "metaField": "m" } }).await.expect("create");
    let base = 1_700_000_000_000_i64;
    let mut rng = Lcg(7);
    let sensors = ["a", "b", "c"];
    let inserted: Vec<Document> = (0..1000)
        .map(|i| {
            doc! {
                "_id": i,
                "t": DateTime::from_millis(base + i64::try_from(rng.next(6 * 3_600_000)).unwrap_or(0)),
                "m": { "sensor": sensors[usize::try_from(rng.next(3)).unwrap_or(0)] },
                "v": i64::try_from(rng.next(100)).unwrap_or(0),
            }
        })
        .collect();
    for chunk in inserted.chunks(250) {
        let reply = run(&db, doc! { "insert": "w", "documents": chunk.to_vec() }).await.expect("insert");
        assert_eq!(reply.get_i32("n").ok(), Some(250));
    }

    // The buckets: mongod's v1 shape, _id time the rounded minimum, spans within an hour.
    let buckets = all(&db, doc! { "find": "system.buckets.w", "batchSize": 10 }).await;
    let mut unpacked_total = 0;
    for bucket in &buckets {
        let control = bucket.get_document("control").expect("control");
        assert_eq!(control.get_i32("version").ok(), Some(1));
        let min = control.get_document("min").and_then(|m| m.get_datetime("t")).expect("min").timestamp_millis();
        let max = control.get_document("max").and_then(|m| m.get_datetime("t")).expect("max").timestamp_millis();
        assert_eq!(min % 60_000, 0, "the minimum is rounded to the minute");
        assert!(max - min < 3_600_000, "{bucket}");
        let id_time = bucket.get_object_id("_id").expect("_id").timestamp().timestamp_millis();
        assert_eq!(id_time, min);
        let times = bucket.get_document("data").and_then(|d| d.get_document("t")).expect("times");
        assert_eq!(times.keys().next().map(String::as_str), Some("0"));
        unpacked_total += times.len();
        assert!(bucket.get_document("meta").is_ok_and(|m| m.contains_key("sensor")));
    }
    assert_eq!(unpacked_total, 1000);
    assert!(buckets.len() >= 18, "at least one bucket per sensor and hour: {}", buckets.len());

    // A one-hour range for one sensor, sorted by _id, as computed here.
    let (from, to) = (base + 2 * 3_600_000, base + 3 * 3_600_000);
    let expected: Vec<Document> = {
        let mut expected: Vec<Document> = inserted
            .iter()
            .filter(|d| {
                let t = d.get_datetime("t").map(|t| t.timestamp_millis()).unwrap_or(0);
                t >= from && t < to && d.get_document("m").and_then(|m| m.get_str("sensor")).ok() == Some("b")
            })
            .map(|d| {
                // mongod's measurement order: time, meta, then the other fields.
                doc! { "t": d.get("t").cloned().unwrap_or(Bson::Null), "m": d.get("m").cloned().unwrap_or(Bson::Null), "_id": d.get("_id").cloned().unwrap_or(Bson::Null), "v": d.get("v").cloned().unwrap_or(Bson::Null) }
            })
            .collect();
        expected.sort_by_key(|d| d.get_i32("_id").unwrap_or(0));
        expected
    };
    assert!(expected.len() > 20, "the range holds data: {}", expected.len());
    let filter =
        doc! { "t": { "$gte": DateTime::from_millis(from), "$lt": DateTime::from_millis(to) }, "m.sensor": "b" };
    run(&db, doc! { "profile": 2 }).await.expect("profile");
    let found = all(&db, doc! { "find": "w", "filter": filter.clone(), "sort": { "_id": 1 }, "batchSize": 7 }).await;
    let aggregated = all(
        &db,
        doc! { "aggregate": "w", "pipeline": [{ "$match": filter.clone() }, { "$sort": { "_id": 1 } }], "cursor": {} },
    )
    .await;
    run(&db, doc! { "profile": 0 }).await.expect("profile off");
    assert_eq!(found, expected);
    assert_eq!(aggregated, expected);
    let profiled =
        all(&db, doc! { "find": "system.profile", "filter": { "ns": "ts.w", "op": { "$in": ["query", "command"] } } })
            .await;
    let examined_of = |p: &Document| p.get_i64("docsExamined").ok().or(p.get_i32("docsExamined").ok().map(i64::from));
    assert_eq!(profiled.len(), 2, "{profiled:?}");
    let examined = examined_of(&profiled[0]).expect("docsExamined");
    assert_eq!(examined_of(&profiled[1]), Some(examined), "aggregate reads the same buckets");
    // Only the buckets whose `_id` time (their rounded minimum) lies within one bucket span
    // before the range, up to its end, are read.
    let candidates = buckets
        .iter()
        .filter(|b| {
            let id_time = b.get_object_id("_id").map(|id| id.timestamp().timestamp_millis()).unwrap_or(0);
            id_time >= from - 3_600_000 && id_time < to
        })
        .count();
    assert!(
        i64::try_from(candidates).unwrap_or(0) >= examined && examined * 2 < i64::try_from(buckets.len()).unwrap_or(0),
        "a one-hour range reads {examined} of {} buckets ({candidates} candidates)",
        buckets.len()
    );

    // Projection, skip and limit after unpacking.
    let projected = all(&db, doc! { "find": "w", "filter": filter.clone(), "sort": { "_id": 1 }, "projection": { "_id": 0, "v": 1 }, "skip": 2, "limit": 5 }).await;
    let expected_values: Vec<Document> =
        expected.iter().skip(2).take(5).map(|d| doc! { "v": d.get("v").cloned().unwrap_or(Bson::Null) }).collect();
    assert_eq!(projected, expected_values);

    // collStats: the buckets' statistics under the collection's name.
    let stats = run(&db, doc! { "collStats": "w" }).await.expect("collStats");
    assert_eq!(stats.get_str("ns").ok(), Some("ts.w"));
    assert!(!stats.contains_key("count"), "{stats}");
    let timeseries = stats.get_document("timeseries").expect("timeseries");
    assert_eq!(timeseries.get_str("bucketsNs").ok(), Some("ts.system.buckets.w"));
    assert_eq!(timeseries.get_i64("bucketCount").ok(), Some(i64::try_from(buckets.len()).unwrap_or(0)));
    let staged =
        all(&db, doc! { "aggregate": "w", "pipeline": [{ "$collStats": { "storageStats": {} } }], "cursor": {} }).await;
    let staged = staged.first().and_then(|s| s.get_document("storageStats").ok()).expect("storageStats");
    assert_eq!(staged.get_document("timeseries").ok(), Some(timeseries));

    // count, distinct and aggregate read the measurements.
    let counted = run(&db, doc! { "count": "w", "query": filter.clone() }).await.expect("count");
    assert_eq!(
        counted.get_i32("n").ok().map(i64::from).or(counted.get_i64("n").ok()),
        Some(i64::try_from(expected.len()).unwrap_or(0))
    );
    let distinct = run(&db, doc! { "distinct": "w", "key": "m.sensor" }).await.expect("distinct");
    assert_eq!(distinct.get_array("values").expect("values"), &vec![Bson::from("a"), Bson::from("b"), Bson::from("c")]);
    let grouped = all(&db, doc! { "aggregate": "w", "pipeline": [{ "$group": { "_id": "$m.sensor", "n": { "$sum": 1 }, "total": { "$sum": "$v" } } }, { "$sort": { "_id": 1 } }], "cursor": {} }).await;
    for sensor in sensors {
        let mine: Vec<&Document> = inserted
            .iter()
            .filter(|d| d.get_document("m").and_then(|m| m.get_str("sensor")).ok() == Some(sensor))
            .collect();
        let total: i64 = mine.iter().map(|d| d.get_i64("v").unwrap_or(0)).sum();
        let row = grouped.iter().find(|g| g.get_str("_id").ok() == Some(sensor)).expect("row");
        assert_eq!(row.get_i32("n").ok(), Some(i32::try_from(mine.len()).unwrap_or(0)), "{row}");
        assert_eq!(row.get_i64("total").ok(), Some(total), "{row}");
    }
}

#[tokio::test]
async fn timeseries_insert_errors_are_per_document_and_ids_may_repeat() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("ts");
    run(&db, doc! { "create": "w", "timeseries": { "timeField": "t" } }).await.expect("create");
    let now = DateTime::from_millis(1_700_000_000_000);
    let ordered =
        run(&db, doc! { "insert": "w", "documents": [{ "_id": 1, "t": now }, { "_id": 2 }, { "_id": 3, "t": now }] })
            .await
            .expect("reply");
    assert_eq!(ordered.get_i32("n").ok(), Some(1));
    let errors = ordered.get_array("writeErrors").expect("errors");
    assert_eq!(errors.len(), 1);
    let error = errors[0].as_document().expect("error");
    assert_eq!(error.get_i32("index").ok(), Some(1));
    assert_eq!(error.get_i32("code").ok(), Some(2));
    assert_eq!(error.get_str("errmsg").ok(), Some("'t' must be present and contain a valid BSON UTC datetime value"));
    let unordered = run(&db, doc! { "insert": "w", "ordered": false, "documents": [{ "_id": 1, "t": "no date" }, { "_id": 1, "t": now }, { "_id": 1, "t": now }] })
        .await
        .expect("reply");
    assert_eq!(unordered.get_i32("n").ok(), Some(2));
    assert_eq!(unordered.get_array("writeErrors").map(Vec::len).ok(), Some(1));
    // Duplicate _ids are kept: three measurements with _id 1; the ordered insert stopped before _id 3.
    let found = all(&db, doc! { "find": "w", "projection": { "_id": 1 } }).await;
    let mut ids: Vec<i32> = found.iter().filter_map(|d| d.get_i32("_id").ok()).collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 1, 1]);
}

#[tokio::test]
async fn timeseries_refused_writes_rename_and_drop() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("ts");
    run(&db, doc! { "create": "w", "timeseries": { "timeField": "t", "metaField": "m" } }).await.expect("create");
    run(&db, doc! { "insert": "w", "documents": [{ "t": DateTime::now(), "m": 1 }] }).await.expect("insert");
    let delete_one = run(&db, doc! { "delete": "w", "deletes": [{ "q": {}, "limit": 1 }] }).await.expect("reply");
    let errors = delete_one.get_array("writeErrors").expect("errors");
    assert_eq!(errors[0].as_document().and_then(|e| e.get_i32("code").ok()), Some(238));
    let hinted = run(&db, doc! { "delete": "w", "deletes": [{ "q": {}, "limit": 0, "hint": { "_id": 1 } }] })
        .await
        .expect("reply");
    assert_eq!(
        hinted.get_array("writeErrors").ok().and_then(|e| e[0].as_document()).and_then(|e| e.get_i32("code").ok()),
        Some(238)
    );
    let collmod = run(&db, doc! { "collMod": "w", "validator": { "a": 1 } }).await.expect_err("collMod");
    assert_eq!(code(&collmod), Some(238));
    let view = run(&db, doc! { "create": "v", "viewOn": "system.buckets.w", "pipeline": [] }).await.expect_err("view");
    assert_eq!(code(&view), Some(73));
    let rename = server.admin(doc! { "renameCollection": "ts.w", "to": "ts.v" }).await.expect_err("rename");
    assert_eq!(code(&rename), Some(166));
    let count = run(&db, doc! { "count": "w" }).await.expect("count");
    assert_eq!(count.get_i32("n").ok(), Some(1), "nothing was written or removed");

    run(&db, doc! { "drop": "w" }).await.expect("drop");
    let names = db.list_collection_names().await.expect("names");
    assert_eq!(names, ["system.views"], "the buckets went with the collection");
}

#[tokio::test]
async fn timeseries_delete_removes_matching_measurements_and_keeps_the_rest() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("ts");
    run(&db, doc! { "create": "w", "timeseries": { "timeField": "t", "metaField": "m" } }).await.expect("create");
    let base = 1_700_000_000_000_i64;
    let inserted: Vec<Document> = (0..300)
        .map(|i: i64| doc! { "_id": i, "t": DateTime::from_millis(base + i * 60_000), "m": i % 3, "v": i % 10 })
        .collect();
    run(&db, doc! { "insert": "w", "documents": inserted.clone() }).await.expect("insert");
    // Any filter: measurements with v < 3 in meta 1, and everything of meta 2 in the first hour.
    let reply = run(
        &db,
        doc! { "delete": "w", "deletes": [
            { "q": { "m": 1, "v": { "$lt": 3 } }, "limit": 0 },
            { "q": { "m": 2, "t": { "$lt": DateTime::from_millis(base + 3_600_000) } }, "limit": 0 },
        ] },
    )
    .await
    .expect("delete");
    let gone = |d: &Document| {
        let (m, v, t) =
            (d.get_i64("m").unwrap_or(0), d.get_i64("v").unwrap_or(0), d.get_i64("_id").unwrap_or(0) * 60_000);
        (m == 1 && v < 3) || (m == 2 && t < 3_600_000)
    };
    let expected_deleted = inserted.iter().filter(|d| gone(d)).count();
    assert_eq!(reply.get_i32("n").ok(), Some(i32::try_from(expected_deleted).unwrap_or(0)));
    let mut left: Vec<i64> = all(&db, doc! { "find": "w", "projection": { "_id": 1 } })
        .await
        .iter()
        .filter_map(|d| d.get_i64("_id").ok())
        .collect();
    left.sort_unstable();
    let expected: Vec<i64> = inserted.iter().filter(|d| !gone(d)).filter_map(|d| d.get_i64("_id").ok()).collect();
    assert_eq!(left, expected);
    // deleteMany({}) empties it, buckets and all.
    let reply = run(&db, doc! { "delete": "w", "deletes": [{ "q": {}, "limit": 0 }] }).await.expect("delete all");
    assert_eq!(reply.get_i32("n").ok(), Some(i32::try_from(expected.len()).unwrap_or(0)));
    let buckets = run(&db, doc! { "count": "system.buckets.w" }).await.expect("count");
    assert_eq!(buckets.get_i32("n").ok(), Some(0));
}

#[tokio::test]
async fn timeseries_update_changes_the_meta_field_only_as_mongod_allows() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("ts");
    run(&db, doc! { "create": "w", "timeseries": { "timeField": "t", "metaField": "m" } }).await.expect("create");
    let base = 1_700_000_000_000_i64;
    let documents: Vec<Document> = (0..30)
        .map(|i: i64| doc! { "_id": i, "t": DateTime::from_millis(base + i * 1000), "m": { "k": i % 3 }, "v": i })
        .collect();
    run(&db, doc! { "insert": "w", "documents": documents }).await.expect("insert");
    let refusals = [
        (
            doc! { "q": { "m.k": 1 }, "u": { "$set": { "m.k": 5 } } },
            "Cannot perform a non-multi update on a time-series collection",
        ),
        (
            doc! { "q": { "m.k": 1 }, "u": { "$set": { "m.k": 5 } }, "multi": true, "upsert": true },
            "Cannot perform an upsert on a time-series collection",
        ),
        (
            doc! { "q": { "v": 1 }, "u": { "$set": { "m.k": 5 } }, "multi": true },
            "Cannot perform an update or delete on a time-series collection when querying on a field that is not the metaField 'm'",
        ),
        (
            doc! { "q": { "m.k": 1 }, "u": { "$set": { "v": 5 } }, "multi": true },
            "Cannot perform an update on a time-series collection which updates a field that is not the metaField 'm'",
        ),
    ];
    for (statement, message) in refusals {
        let reply = run(&db, doc! { "update": "w", "updates": [statement.clone()] }).await.expect("reply");
        let error = reply.get_array("writeErrors").ok().and_then(|e| e[0].as_document().cloned()).expect("error");
        assert_eq!(error.get_i32("code").ok(), Some(72), "{statement}");
        assert_eq!(error.get_str("errmsg").ok(), Some(message), "{statement}");
    }
    // Ordered: a refused statement stops the rest; unordered: the rest run.
    let refused = doc! { "q": { "m.k": 1 }, "u": { "$set": { "m.k": 5 } } };
    let valid = doc! { "q": { "m.k": 2 }, "u": { "$set": { "m.k": 8 } }, "multi": true };
    let ordered = run(&db, doc! { "update": "w", "updates": [refused.clone(), valid.clone()] }).await.expect("reply");
    assert_eq!((ordered.get_i32("n").ok(), ordered.get_array("writeErrors").map(Vec::len).ok()), (Some(0), Some(1)));
    let unordered =
        run(&db, doc! { "update": "w", "updates": [refused, valid], "ordered": false }).await.expect("reply");
    assert_eq!(
        (unordered.get_i32("n").ok(), unordered.get_array("writeErrors").map(Vec::len).ok()),
        (Some(10), Some(1))
    );
    let reply = run(
        &db,
        doc! { "update": "w", "updates": [{ "q": { "m.k": 1 }, "u": { "$set": { "m.k": 7 } }, "multi": true }] },
    )
    .await
    .expect("update");
    assert_eq!(reply.get_i32("n").ok(), Some(10));
    assert_eq!(reply.get_i32("nModified").ok(), Some(10));
    let mut moved: Vec<i64> = all(&db, doc! { "find": "w", "filter": { "m.k": 7 } })
        .await
        .iter()
        .filter_map(|d| d.get_i64("_id").ok())
        .collect();
    moved.sort_unstable();
    assert_eq!(moved, (0..30).filter(|i| i % 3 == 1).collect::<Vec<i64>>());
    let none_left = run(&db, doc! { "count": "w", "query": { "m.k": 1 } }).await.expect("count");
    assert_eq!(none_left.get_i32("n").ok(), Some(0));
}

#[tokio::test]
async fn timeseries_retryable_inserts_on_a_replica_set_apply_once() {
    let server = TestServer::member(&[]);
    let client = server.client("directConnection=true").await;
    let db = client.database("ts");
    run(&db, doc! { "create": "w", "timeseries": { "timeField": "t", "metaField": "m" } }).await.expect("create");
    // The driver makes these retryable writes (txnNumber).
    let coll = db.collection::<Document>("w");
    let now = DateTime::from_millis(1_700_000_000_000);
    coll.insert_many([doc! { "t": now, "m": 1 }, doc! { "t": now, "m": 2 }]).await.expect("insert_many");
    coll.insert_one(doc! { "t": now, "m": 3 }).await.expect("insert_one");
    // The same retryable insert sent twice is applied once.
    let session = mongodb::bson::Binary { subtype: mongodb::bson::spec::BinarySubtype::Uuid, bytes: vec![7; 16] };
    let insert = doc! {
        "insert": "w", "documents": [{ "t": now, "m": 4 }], "lsid": { "id": session }, "txnNumber": 1_i64, "$db": "ts",
    };
    let first = common::command(&server, insert.clone());
    assert_eq!(first.get_i32("n").ok(), Some(1), "{first}");
    let again = common::command(&server, insert);
    assert_eq!(again.get_i32("n").ok(), Some(1), "{again}");
    assert!(again.contains_key("retriedStmtIds"), "{again}");
    let count = run(&db, doc! { "count": "w" }).await.expect("count");
    assert_eq!(count.get_i32("n").ok(), Some(4));
    // A multi delete cannot be retryable, as in mongod.
    let delete = common::command(
        &server,
        doc! {
            "delete": "w", "deletes": [{ "q": {}, "limit": 0 }], "lsid": { "id": mongodb::bson::Binary { subtype: mongodb::bson::spec::BinarySubtype::Uuid, bytes: vec![8; 16] } }, "txnNumber": 1_i64, "$db": "ts",
        },
    );
    let error = delete.get_array("writeErrors").ok().and_then(|e| e.first()).and_then(|e| e.as_document().cloned());
    assert_eq!(error.and_then(|e| e.get_i32("code").ok()), Some(72), "{delete}");
}

#[tokio::test]
async fn timeseries_inserts_one_at_a_time_fill_the_same_bucket() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("ts");
    run(&db, doc! { "create": "w", "timeseries": { "timeField": "t", "metaField": "m" } }).await.expect("create");
    let base = 1_700_000_000_000_i64;
    for i in 0..60_i64 {
        let measurement = doc! { "_id": i, "t": DateTime::from_millis(base + i * 30_000), "m": i % 2, "v": i };
        run(&db, doc! { "insert": "w", "documents": [measurement] }).await.expect("insert");
    }
    // 30 minutes of two sensors: one bucket each, as mongod's open buckets would hold them.
    let buckets = all(&db, doc! { "find": "system.buckets.w" }).await;
    assert_eq!(buckets.len(), 2);
    for bucket in &buckets {
        let times = bucket.get_document("data").and_then(|d| d.get_document("t")).expect("times");
        assert_eq!(times.len(), 30);
        assert_eq!(times.keys().last().map(String::as_str), Some("29"));
        let max = bucket.get_document("control").and_then(|c| c.get_document("max")).expect("max");
        assert_eq!(max.get_i64("v").ok(), Some(if bucket.get_i64("meta").ok() == Some(0) { 58 } else { 59 }));
    }
    let found = all(&db, doc! { "find": "w", "sort": { "_id": 1 }, "projection": { "_id": 1 } }).await;
    assert_eq!(found, (0..60_i64).map(|i| doc! { "_id": i }).collect::<Vec<_>>());
}

#[tokio::test]
async fn timeseries_expire_after_seconds_deletes_whole_buckets() {
    let server = TestServer::start(&["--setParameter", "ttlMonitorSleepSecs=1"]);
    let client = server.client("").await;
    let db = client.database("ts");
    run(&db, doc! { "create": "w", "timeseries": { "timeField": "t", "metaField": "m" }, "expireAfterSeconds": 60 })
        .await
        .expect("create");
    let now = DateTime::now().timestamp_millis();
    // Two hours old (past expiry plus the one-hour bucket span) and fresh.
    let old = DateTime::from_millis(now - 2 * 3_600_000 - 120_000);
    run(&db, doc! { "insert": "w", "documents": [{ "t": old, "m": "old" }, { "t": DateTime::from_millis(now), "m": "new" }] })
        .await
        .expect("insert");
    let gone = eventually_async(Duration::from_secs(20), || async {
        let reply = run(&db, doc! { "count": "system.buckets.w" }).await.expect("count");
        reply.get_i32("n").ok() == Some(1)
    })
    .await;
    assert!(gone, "the old bucket expired");
    let left = all(&db, doc! { "find": "w", "projection": { "_id": 0, "m": 1 } }).await;
    assert_eq!(left, vec![doc! { "m": "new" }]);

    // collMod's expireAfterSeconds applies to the buckets.
    run(&db, doc! { "collMod": "w", "expireAfterSeconds": 7200 }).await.expect("collMod");
    let listed = first_batch(&run(&db, doc! { "listCollections": 1, "filter": { "name": "w" } }).await.expect("list"));
    assert_eq!(
        listed.first().and_then(|e| e.get_document("options").ok()).and_then(|o| o.get_i64("expireAfterSeconds").ok()),
        Some(7200)
    );
}
