//! Read commands through the Rust driver: find, getMore, killCursors, count, distinct,
//! aggregate (the pipelines drivers build), and their errors.

#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use common::TestServer;
use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::ErrorKind;

fn code(error: &mongodb::error::Error) -> Option<i32> {
    match error.kind.as_ref() {
        ErrorKind::Command(e) => Some(e.code),
        _ => None,
    }
}

async fn seeded(server: &TestServer) -> mongodb::Collection<Document> {
    let client = server.client("").await;
    let coll = client.database("app").collection::<Document>("people");
    let docs = (0..250).map(|i| {
        doc! { "_id": i, "age": i % 50, "name": format!("p{i:03}"), "city": if i % 3 == 0 { "paris" } else { "oslo" }, "tags": [i % 5, "t"] }
    });
    coll.insert_many(docs).await.expect("insert");
    coll
}

#[tokio::test]
async fn read_find_filter_sort_skip_limit_projection() {
    let server = TestServer::start(&[]);
    let coll = seeded(&server).await;
    let found: Vec<Document> = coll
        .find(doc! { "city": "paris", "age": { "$gte": 10, "$lt": 20 } })
        .sort(doc! { "age": -1, "_id": 1 })
        .skip(1)
        .limit(3)
        .projection(doc! { "name": 1, "age": 1, "_id": 0 })
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("collect");
    assert_eq!(
        found,
        vec![
            doc! { "age": 19, "name": "p219" },
            doc! { "age": 18, "name": "p018" },
            doc! { "age": 18, "name": "p168" },
        ]
    );
    // `$natural: -1` walks the records backwards.
    let last: Vec<Document> = coll
        .find(doc! { "_id": { "$lt": 3 } })
        .sort(doc! { "$natural": -1 })
        .projection(doc! { "_id": 1 })
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("collect");
    assert_eq!(last, vec![doc! { "_id": 2 }, doc! { "_id": 1 }, doc! { "_id": 0 }]);
    let excluded = coll.find_one(doc! { "_id": 7 }).projection(doc! { "tags": 0, "city": 0 }).await.expect("find");
    assert_eq!(excluded, Some(doc! { "_id": 7, "age": 7, "name": "p007" }));
    let any = coll.count_documents(doc! { "$or": [{ "tags": 4 }, { "age": { "$in": [1, 2] } }] }).await.expect("count");
    assert_eq!(any, 50 + 10);
    let missing: Vec<Document> = server
        .client("")
        .await
        .database("app")
        .collection::<Document>("nothing")
        .find(doc! {})
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("collect");
    assert!(missing.is_empty());
}

#[tokio::test]
async fn read_cursor_batches_get_more_kill() {
    let server = TestServer::start(&[]);
    let coll = seeded(&server).await;
    let all: Vec<Document> =
        coll.find(doc! {}).batch_size(7).await.expect("find").try_collect().await.expect("collect");
    assert_eq!(all.len(), 250);
    let ids: Vec<i32> = all.iter().filter_map(|d| d.get_i32("_id").ok()).collect();
    assert_eq!(ids, (0..250).collect::<Vec<_>>());

    let db = server.client("").await.database("app");
    let first = db.run_command(doc! { "find": "people", "batchSize": 2 }).await.expect("find");
    let cursor = first.get_document("cursor").expect("cursor");
    assert_eq!(cursor.get_array("firstBatch").map(Vec::len).ok(), Some(2));
    assert_eq!(cursor.get_str("ns").ok(), Some("app.people"));
    let id = cursor.get_i64("id").expect("id");
    assert_ne!(id, 0);
    let more = db.run_command(doc! { "getMore": id, "collection": "people", "batchSize": 3 }).await.expect("getMore");
    assert_eq!(more.get_document("cursor").and_then(|c| c.get_array("nextBatch")).map(Vec::len).ok(), Some(3));
    let error = db.run_command(doc! { "getMore": id, "collection": "other" }).await.expect_err("wrong ns");
    assert_eq!(code(&error), Some(13));
    let killed = db.run_command(doc! { "killCursors": "people", "cursors": [id, 12345_i64] }).await.expect("kill");
    assert_eq!(killed.get_array("cursorsKilled").ok(), Some(&vec![Bson::Int64(id)]));
    assert_eq!(killed.get_array("cursorsNotFound").ok(), Some(&vec![Bson::Int64(12345)]));
    let error = db.run_command(doc! { "getMore": id, "collection": "people" }).await.expect_err("dead cursor");
    assert_eq!(code(&error), Some(43));

    let single = db.run_command(doc! { "find": "people", "batchSize": 2, "singleBatch": true }).await.expect("find");
    assert_eq!(single.get_document("cursor").and_then(|c| c.get_i64("id")).ok(), Some(0));
    let limited = db.run_command(doc! { "find": "people", "limit": 5 }).await.expect("find");
    let cursor = limited.get_document("cursor").expect("cursor");
    assert_eq!((cursor.get_array("firstBatch").map(Vec::len).ok(), cursor.get_i64("id").ok()), (Some(5), Some(0)));
    db.run_command(doc! { "find": "people", "hint": "_id_", "comment": "c", "maxTimeMS": 1000, "let": { "x": 1 } })
        .await
        .expect("options");
    let error = db.run_command(doc! { "find": "people", "hint": "nope_1" }).await.expect_err("bad hint");
    assert_eq!(code(&error), Some(2));
}

#[tokio::test]
async fn read_count_distinct_aggregate() {
    let server = TestServer::start(&[]);
    let coll = seeded(&server).await;
    assert_eq!(coll.count_documents(doc! { "city": "paris" }).await.expect("count"), 84);
    assert_eq!(coll.count_documents(doc! {}).skip(10).limit(5).await.expect("count"), 5);
    assert_eq!(coll.estimated_document_count().await.expect("estimate"), 250);
    let db = server.client("").await.database("app");
    let counted = db.run_command(doc! { "count": "people", "query": { "age": 3 } }).await.expect("count");
    assert_eq!(counted.get_i32("n").ok(), Some(5), "count replies an int, as mongod");

    let cities = coll.distinct("city", doc! {}).await.expect("distinct");
    assert_eq!(cities, vec![Bson::from("oslo"), Bson::from("paris")]);
    let tags = coll.distinct("tags", doc! { "_id": { "$lt": 10 } }).await.expect("distinct");
    assert_eq!(tags.len(), 6, "{tags:?}");

    let grouped: Vec<Document> = coll
        .aggregate([
            doc! { "$match": { "city": "oslo" } },
            doc! { "$skip": 6 },
            doc! { "$limit": 100 },
            doc! { "$group": { "_id": 1, "n": { "$sum": 1 } } },
        ])
        .await
        .expect("aggregate")
        .try_collect()
        .await
        .expect("collect");
    assert_eq!(grouped, vec![doc! { "_id": 1, "n": 100 }]);
    let error = db
        .run_command(doc! { "aggregate": "people", "pipeline": [{ "$bogus": 1 }], "cursor": {} })
        .await
        .expect_err("bad stage");
    assert_eq!(code(&error), Some(40324));
    let error = db.run_command(doc! { "aggregate": "people", "pipeline": [] }).await.expect_err("no cursor");
    assert_eq!(code(&error), Some(9));
}

#[tokio::test]
async fn read_bad_arguments_are_errors() {
    let server = TestServer::start(&[]);
    seeded(&server).await;
    let db = server.client("").await.database("app");
    for (command, expected) in [
        (doc! { "find": "people", "filter": 1 }, 14),
        (doc! { "find": "people", "filter": { "a": { "$bogus": 1 } } }, 2),
        (doc! { "find": "people", "sort": { "a": 0 } }, 15975),
        (doc! { "find": "people", "sort": { "a": "asc" } }, 15974),
        (doc! { "find": 12 }, 73),
        (doc! { "find": "people", "skip": -1 }, 2),
        (doc! { "getMore": 1_i64, "collection": "people" }, 43),
        (doc! { "getMore": "x", "collection": "people" }, 14),
        (doc! { "count": "people", "query": "x" }, 14),
    ] {
        let error = db.run_command(command.clone()).await.expect_err("must fail");
        assert_eq!(code(&error), Some(expected), "{command}: {error}");
    }
    assert!(db.run_command(doc! { "ping": 1 }).await.is_ok());
}

#[tokio::test]
async fn read_idle_cursor_times_out_unless_no_cursor_timeout() {
    let server = TestServer::start(&["--setParameter", "cursorTimeoutMillis=300"]);
    seeded(&server).await;
    let db = server.client("").await.database("app");
    let open = |no_timeout: bool| {
        let db = db.clone();
        async move {
            let reply = db
                .run_command(doc! { "find": "people", "batchSize": 1, "noCursorTimeout": no_timeout })
                .await
                .expect("find");
            reply.get_document("cursor").and_then(|c| c.get_i64("id")).expect("cursor id")
        }
    };
    let (idle, kept) = (open(false).await, open(true).await);
    // Wait for the reaper to time the idle cursor out (it counts what it reaps), then check
    // which cursor is gone.
    let reaped = common::eventually(std::time::Duration::from_secs(10), || {
        let (_, metrics) = server.http_get("/metrics");
        metrics.lines().any(|l| l.strip_prefix("monarch_cursors_timed_out_total ").is_some_and(|n| n.trim() != "0"))
    });
    assert!(reaped, "no cursor timed out");
    let error = db.run_command(doc! { "getMore": idle, "collection": "people" }).await.expect_err("timed out");
    assert_eq!(code(&error), Some(43));
    db.run_command(doc! { "getMore": kept, "collection": "people" }).await.expect("noCursorTimeout cursor lives");
}

#[tokio::test]
async fn read_cursor_sees_one_snapshot() {
    let server = TestServer::start(&[]);
    let coll = seeded(&server).await;
    let mut cursor = coll.find(doc! {}).batch_size(10).await.expect("find");
    let mut seen = 0;
    // Read the first batch, then change the collection under the open cursor.
    while seen < 10 {
        assert!(cursor.advance().await.expect("advance"));
        seen += 1;
    }
    coll.insert_many((1000..1010).map(|i| doc! { "_id": i })).await.expect("insert");
    coll.delete_many(doc! { "_id": { "$gte": 200, "$lt": 250 } }).await.expect("delete");
    while cursor.advance().await.expect("advance") {
        seen += 1;
    }
    assert_eq!(seen, 250, "the cursor reads the collection as it was when the query started");
}

#[tokio::test]
async fn read_find_operators_and_array_projections() {
    let server = TestServer::start(&[]);
    let coll = seeded(&server).await;
    let regex = mongodb::bson::Regex {
        pattern: "^P00[12]$".try_into().expect("pattern"),
        options: "i".try_into().expect("options"),
    };
    let named =
        coll.count_documents(doc! { "name": regex, "tags": { "$size": 2, "$all": ["t"] } }).await.expect("count");
    assert_eq!(named, 2);
    let typed = coll
        .count_documents(
            doc! { "tags": { "$elemMatch": { "$type": "number", "$gte": 4 } }, "age": { "$mod": [10, 4] } },
        )
        .await
        .expect("count");
    assert_eq!(typed, 25, "_id % 5 == 4 and _id % 10 == 4");
    let projected = coll
        .find_one(doc! { "_id": 3, "tags": "t" })
        .projection(doc! { "tags.$": 1, "name": { "$slice": 1 } })
        .await
        .expect("find");
    assert_eq!(projected, Some(doc! { "_id": 3, "tags": ["t"], "name": "p003" }));
    let elem = coll
        .find_one(doc! { "_id": 4 })
        .projection(doc! { "_id": 0, "tags": { "$elemMatch": { "$type": "string" } } })
        .await
        .expect("find");
    assert_eq!(elem, Some(doc! { "tags": ["t"] }));
    let unknown = coll.find_one(doc! { "age": { "$foo": 1 } }).await.expect_err("unknown operator");
    assert_eq!(code(&unknown), Some(2));
    let unresolved = coll.find_one(doc! { "_id": 3 }).projection(doc! { "tags.$": 1 }).await.expect_err("positional");
    assert_eq!(code(&unresolved), Some(31277));
}

#[tokio::test]
async fn read_coll_stats_stage_for_mongosh_stats() {
    let server = TestServer::start(&[]);
    let coll = seeded(&server).await;
    let stats: Vec<Document> = coll
        .aggregate([doc! { "$collStats": { "storageStats": {}, "count": {} } }])
        .await
        .expect("aggregate")
        .try_collect()
        .await
        .expect("collect");
    let stats = &stats[0];
    assert_eq!(stats.get_str("ns").ok(), Some("app.people"));
    assert_eq!(stats.get_i32("count").ok(), Some(250));
    let storage = stats.get_document("storageStats").expect("storageStats");
    assert_eq!(storage.get_i64("count").ok(), Some(250));
    assert!(storage.get_i64("size").is_ok_and(|n| n > 0), "{storage}");
    let error = coll.aggregate([doc! { "$match": {} }, doc! { "$collStats": {} }]).await.expect_err("not first");
    // mongod: "$collStats is only valid as the first stage in a pipeline".
    assert_eq!(code(&error), Some(40602), "{error}");
}

#[tokio::test]
async fn read_find_expr_with_let_and_runtime_error() {
    let server = TestServer::start(&[]);
    let coll = seeded(&server).await;
    let filter = doc! { "$expr": { "$and": [
        { "$lt": ["$_id", "$$limit"] },
        { "$eq": [{ "$mod": ["$_id", 2] }, 0] },
    ] } };
    let found: Vec<Document> = coll
        .find(filter)
        .let_vars(doc! { "limit": { "$add": [3, 2] } })
        .sort(doc! { "_id": 1 })
        .projection(doc! { "_id": 1 })
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("collect");
    assert_eq!(found, vec![doc! { "_id": 0 }, doc! { "_id": 2 }, doc! { "_id": 4 }]);
    let err = coll.find(doc! { "$expr": { "$divide": ["$age", 0] } }).await.expect_err("divide by zero");
    assert_eq!(code(&err), Some(2));
    let err = coll.find(doc! { "$expr": { "$bogus": 1 } }).await.expect_err("unknown operator");
    assert_eq!(code(&err), Some(168));
    let deleted = coll
        .delete_many(doc! { "$expr": { "$gte": ["$_id", "$$from"] } })
        .let_vars(doc! { "from": 240 })
        .await
        .expect("delete");
    assert_eq!(deleted.deleted_count, 10);
    let matched: Vec<Document> = coll
        .aggregate(vec![
            doc! { "$match": { "$expr": { "$eq": ["$_id", "$$pick"] } } },
            doc! { "$project": { "_id": 1 } },
        ])
        .let_vars(doc! { "pick": 7 })
        .await
        .expect("aggregate")
        .try_collect()
        .await
        .expect("collect");
    assert_eq!(matched, vec![doc! { "_id": 7 }]);
}

#[tokio::test]
async fn read_computed_projection_in_find_and_aggregate() {
    let server = TestServer::start(&[]);
    let coll = seeded(&server).await;
    let found = coll
        .find_one(doc! { "_id": 12 })
        .projection(doc! {
            "next": { "$add": ["$age", 1] },
            "name": 1,
            "label": "$city",
            "lit": { "$literal": 5 },
            "first": { "$slice": ["$tags", 1] },
            "v": "$$v",
        })
        .let_vars(doc! { "v": "bound" })
        .await
        .expect("find")
        .expect("a document");
    assert_eq!(
        found,
        doc! { "_id": 12, "name": "p012", "next": 13, "label": "paris", "lit": 5, "first": [2], "v": "bound" }
    );
    let err = coll.find_one(doc! {}).projection(doc! { "a": 0, "b": "$age" }).await.expect_err("exclusion");
    assert_eq!(code(&err), Some(31310));

    let aggregated: Vec<Document> = coll
        .aggregate(vec![
            doc! { "$match": { "$expr": { "$eq": ["$_id", "$$id"] } } },
            doc! { "$project": { "_id": 0, "x": "$$x", "y": "$$y", "double": { "$multiply": ["$age", 2] } } },
            doc! { "$addFields": { "z": { "$concat": ["$x", "!"] }, "nested.w": 1 } },
            doc! { "$set": { "double": { "$add": ["$double", 1] } } },
            doc! { "$unset": "y" },
        ])
        .let_vars(doc! { "id": 12, "x": "foo", "y": { "$literal": "$bar" } })
        .await
        .expect("aggregate")
        .try_collect()
        .await
        .expect("collect");
    assert_eq!(aggregated, vec![doc! { "x": "foo", "double": 25, "z": "foo!", "nested": { "w": 1 } }]);
}

#[tokio::test]
async fn read_find_json_schema() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let coll = client.database("app").collection::<Document>("schema");
    coll.insert_many(vec![
        doc! { "_id": 1, "name": "ann", "age": 31, "tags": ["a", "b"] },
        doc! { "_id": 2, "name": "bob", "age": "unknown" },
        doc! { "_id": 3, "age": 40 },
        doc! { "_id": 4, "name": "cy", "age": 17, "tags": ["a", "a"] },
    ])
    .await
    .expect("insert");
    let schema = doc! { "$jsonSchema": {
        "bsonType": "object",
        "required": ["name"],
        "properties": {
            "age": { "bsonType": "int", "minimum": 18 },
            "tags": { "bsonType": "array", "uniqueItems": true },
        },
    } };
    let found: Vec<Document> =
        coll.find(schema).projection(doc! { "_id": 1 }).await.expect("find").try_collect().await.expect("collect");
    assert_eq!(found, vec![doc! { "_id": 1 }]);
    let negated = doc! { "$nor": [ { "$jsonSchema": { "required": ["name"] } } ] };
    assert_eq!(coll.count_documents(negated).await.expect("count"), 1);
    let err = coll.find_one(doc! { "$jsonSchema": { "type": "integer" } }).await.expect_err("integer");
    assert_eq!(code(&err), Some(9));
    let err = coll.find_one(doc! { "$jsonSchema": { "$ref": "#/definitions/x" } }).await.expect_err("$ref");
    assert_eq!(code(&err), Some(9));
}

/// A stored document holding every BSON type, `_id` first.
fn every_type(id: i32) -> mongodb::bson::RawDocumentBuf {
    use mongodb::bson::{Binary, DateTime, Decimal128, JavaScriptCodeWithScope, Regex, Timestamp, oid::ObjectId};
    let doc = doc! {
        "_id": id,
        "double": -0.0,
        "string": "é\u{1F600}",
        "doc": { "a": { "b": [] } },
        "array": [1, "two", { "three": 3.5 }, []],
        "binary": Binary { subtype: mongodb::bson::spec::BinarySubtype::UserDefined(0x80), bytes: vec![0, 1, 2] },
        "undefined": Bson::Undefined,
        "oid": ObjectId::from_bytes([9; 12]),
        "bool": false,
        "date": DateTime::from_millis(-1),
        "null": Bson::Null,
        "regex": Regex { pattern: mongodb::bson::raw::cstr!("^a.c$").into(), options: mongodb::bson::raw::cstr!("imx").into() },
        "code": Bson::JavaScriptCode("f()".into()),
        "symbol": Bson::Symbol("s".into()),
        "scope": JavaScriptCodeWithScope { code: "g()".into(), scope: doc! { "x": 1 } },
        "int": i32::MIN,
        "timestamp": Timestamp { time: 7, increment: 9 },
        "long": i64::MAX,
        "decimal": Decimal128::from_bytes([3; 16]),
        "min": Bson::MinKey,
        "max": Bson::MaxKey,
    };
    let mut raw = mongodb::bson::RawDocumentBuf::try_from(&doc).expect("encode");
    // No public constructor makes a DBPointer: `{p: DBPointer("db.c", ObjectId)}` by hand.
    let mut pointer = Vec::new();
    pointer.extend_from_slice(&29i32.to_le_bytes());
    pointer.extend_from_slice(&[0x0c, b'p', 0]);
    pointer.extend_from_slice(&5i32.to_le_bytes());
    pointer.extend_from_slice(b"db.c\0");
    pointer.extend_from_slice(&[1; 12]);
    pointer.push(0);
    let pointer = mongodb::bson::RawDocumentBuf::from_bytes(pointer).expect("pointer");
    raw.append(mongodb::bson::raw::cstr!("dbPointer"), pointer.get("p").expect("p").expect("p"));
    raw
}

#[tokio::test]
async fn read_every_bson_type_comes_back_byte_identical() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let coll = client.database("app").collection::<mongodb::bson::RawDocumentBuf>("types");
    let stored: Vec<_> = (1..=3).map(every_type).collect();
    coll.insert_many(&stored).await.expect("insert");
    // First batch, getMore batches, aggregate and findAndModify all carry the stored bytes.
    let found: Vec<_> = coll
        .find(doc! {})
        .sort(doc! { "_id": 1 })
        .batch_size(1)
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("collect");
    let bytes = |docs: &[mongodb::bson::RawDocumentBuf]| docs.iter().map(|d| d.as_bytes().to_vec()).collect::<Vec<_>>();
    assert_eq!(bytes(&found), bytes(&stored));
    let aggregated: Vec<_> = coll
        .aggregate([doc! { "$match": { "_id": { "$gte": 2 } } }])
        .with_type::<mongodb::bson::RawDocumentBuf>()
        .await
        .expect("aggregate")
        .try_collect()
        .await
        .expect("collect");
    assert_eq!(bytes(&aggregated), bytes(&stored[1..]));
    let deleted = coll.find_one_and_delete(doc! { "_id": 3 }).await.expect("findAndModify");
    assert_eq!(deleted.map(|d| d.as_bytes().to_vec()), Some(stored[2].as_bytes().to_vec()));
}

#[tokio::test]
async fn read_batch_stops_before_16_mib() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("app");
    // Three documents of 6 MiB: two fit a batch's 16 MiB, the third waits for getMore.
    let big = |id: i32| {
        doc! { "_id": id, "b": mongodb::bson::Binary { subtype: mongodb::bson::spec::BinarySubtype::Generic, bytes: vec![id as u8; 6 << 20] } }
    };
    db.collection::<Document>("big").insert_many((1..=3).map(big)).await.expect("insert");
    let first = db.run_command(doc! { "find": "big", "sort": { "_id": 1 } }).await.expect("find");
    let cursor = first.get_document("cursor").expect("cursor");
    let batch = cursor.get_array("firstBatch").expect("firstBatch");
    assert_eq!(batch.len(), 2);
    assert_eq!(batch.first().and_then(Bson::as_document), Some(&big(1)));
    let id = cursor.get_i64("id").expect("id");
    assert_ne!(id, 0);
    let more = db.run_command(doc! { "getMore": id, "collection": "big" }).await.expect("getMore");
    let cursor = more.get_document("cursor").expect("cursor");
    assert_eq!(cursor.get_array("nextBatch").expect("nextBatch"), &vec![Bson::Document(big(3))]);
    assert_eq!(cursor.get_i64("id").expect("id"), 0);
}
