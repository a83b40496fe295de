//! Secondary indexes through the Rust driver: createIndexes/listIndexes/dropIndexes and their
//! errors, each index kind, the planner's choices seen through explain, hint, covered queries
//! and TTL expiry.

#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use std::time::Duration;

use common::TestServer;
use futures_util::TryStreamExt;
use mongodb::IndexModel;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::ErrorKind;
use mongodb::options::IndexOptions;

fn code(error: &mongodb::error::Error) -> Option<i32> {
    match error.kind.as_ref() {
        ErrorKind::Command(e) => Some(e.code),
        ErrorKind::Write(mongodb::error::WriteFailure::WriteError(e)) => Some(e.code),
        ErrorKind::InsertMany(e) => e.write_errors.as_ref().and_then(|w| w.first()).map(|w| w.code),
        _ => None,
    }
}

async fn run(db: &mongodb::Database, command: Document) -> Result<Document, mongodb::error::Error> {
    db.run_command(command).await
}

async fn explain(db: &mongodb::Database, command: Document) -> Document {
    run(db, doc! { "explain": command, "verbosity": "executionStats" }).await.expect("explain")
}

fn stats(explained: &Document) -> (i64, i64, i64) {
    let stats = explained.get_document("executionStats").expect("executionStats");
    let n = |k: &str| stats.get_i64(k).expect(k);
    (n("nReturned"), n("totalKeysExamined"), n("totalDocsExamined"))
}

fn winning_stages(explained: &Document) -> Vec<String> {
    let mut stages = Vec::new();
    let mut stage = explained.get_document("queryPlanner").and_then(|q| q.get_document("winningPlan")).ok();
    while let Some(s) = stage {
        stages.push(s.get_str("stage").unwrap_or_default().to_owned());
        stage = s.get_document("inputStage").ok();
    }
    stages
}

#[tokio::test]
async fn indexes_create_list_drop_and_their_errors() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("ix");
    let reply = run(
        &db,
        doc! { "createIndexes": "c", "indexes": [
            { "key": { "a": 1 }, "name": "a_1" },
            { "key": { "b": 1, "c": -1 }, "name": "b_1_c_-1", "unique": true },
        ] },
    )
    .await
    .expect("createIndexes");
    assert_eq!(reply.get_i32("numIndexesBefore").ok(), Some(1));
    assert_eq!(reply.get_i32("numIndexesAfter").ok(), Some(3));
    assert_eq!(reply.get_bool("createdCollectionAutomatically").ok(), Some(true));
    // The driver names indexes as mongod would.
    let coll = db.collection::<Document>("c");
    let name = coll.create_index(IndexModel::builder().keys(doc! { "d": 1, "e": -1 }).build()).await.expect("create");
    assert_eq!(name.index_name, "d_1_e_-1");
    let again = run(&db, doc! { "createIndexes": "c", "indexes": [{ "key": { "a": 1 }, "name": "a_1" }] })
        .await
        .expect("same index again");
    assert_eq!(again.get_str("note").ok(), Some("all indexes already exist"));
    let names: Vec<String> = coll.list_index_names().await.expect("names");
    assert_eq!(names, ["_id_", "a_1", "b_1_c_-1", "d_1_e_-1"]);
    let raw = run(&db, doc! { "listIndexes": "c" }).await.expect("listIndexes");
    let first = raw.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("batch");
    let unique = first
        .iter()
        .filter_map(Bson::as_document)
        .find(|d| d.get_str("name").ok() == Some("b_1_c_-1"))
        .expect("b_1_c_-1");
    assert_eq!(unique.get_i32("v").ok(), Some(2));
    assert_eq!(unique.get_bool("unique").ok(), Some(true));
    assert_eq!(unique.get_document("key").ok(), Some(&doc! { "b": 1, "c": -1 }));

    let conflicts = [
        (doc! { "key": { "a": 1 }, "name": "other" }, 85),
        (doc! { "key": { "a": 1 }, "name": "a_1", "unique": true }, 85),
        (doc! { "key": { "z": 1 }, "name": "a_1" }, 86),
        (doc! { "key": { "a": 0 }, "name": "bad" }, 67),
        (doc! { "key": { "a": 1 }, "name": "x", "bogus": true }, 197),
        (doc! { "key": { "a": 1, "b": 1 }, "name": "ttl", "expireAfterSeconds": 5 }, 67),
        (doc! { "key": { "h": "hashed" }, "name": "h", "unique": true }, 16764),
        (doc! { "key": { "a.$b": 1 }, "name": "dollar" }, 67),
        (doc! { "key": { "q": 1 }, "name": "*" }, 2),
    ];
    for (spec, expected) in conflicts {
        let err = run(&db, doc! { "createIndexes": "c", "indexes": [spec.clone()] }).await.expect_err("conflict");
        assert_eq!(code(&err), Some(expected), "{spec}: {err}");
    }
    let err = run(&db, doc! { "dropIndexes": "c", "index": "_id_" }).await.expect_err("_id_");
    assert_eq!(code(&err), Some(72));
    let err = run(&db, doc! { "dropIndexes": "c", "index": "nope" }).await.expect_err("missing");
    assert_eq!(code(&err), Some(27));
    run(&db, doc! { "dropIndexes": "c", "index": { "b": 1, "c": -1 } }).await.expect("by key pattern");
    run(&db, doc! { "dropIndexes": "c", "index": ["a_1"] }).await.expect("by list");
    let reply = run(&db, doc! { "dropIndexes": "c", "index": "*" }).await.expect("all");
    assert_eq!(reply.get_i32("nIndexesWas").ok(), Some(2));
    assert_eq!(coll.list_index_names().await.expect("names"), ["_id_"]);

    // At most 64 indexes, `_id_` included; a command that would pass the limit builds nothing.
    let many: Vec<Document> =
        (0..62).map(|i| doc! { "key": { format!("f{i}"): 1 }, "name": format!("f{i}") }).collect();
    run(&db, doc! { "createIndexes": "many", "indexes": many }).await.expect("63 indexes");
    let two = vec![doc! { "key": { "g": 1 }, "name": "g" }, doc! { "key": { "h": 1 }, "name": "h" }];
    let err = run(&db, doc! { "createIndexes": "many", "indexes": two }).await.expect_err("65 indexes");
    assert_eq!(code(&err), Some(67), "{err}");
    assert_eq!(db.collection::<Document>("many").list_index_names().await.expect("names").len(), 63);
    run(&db, doc! { "createIndexes": "many", "indexes": [{ "key": { "g": 1 }, "name": "g" }] }).await.expect("64th");
}

#[tokio::test]
async fn indexes_unique_rejects_duplicates_and_failed_builds_leave_nothing() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let coll = client.database("ix").collection::<Document>("u");
    coll.insert_many([doc! { "_id": 1, "k": 1 }, doc! { "_id": 2, "k": 1 }]).await.expect("seed");
    let unique =
        IndexModel::builder().keys(doc! { "k": 1 }).options(IndexOptions::builder().unique(true).build()).build();
    let err = coll.create_index(unique.clone()).await.expect_err("duplicates exist");
    assert_eq!(code(&err), Some(11000), "{err}");
    assert_eq!(coll.list_index_names().await.expect("names"), ["_id_"]);
    coll.delete_one(doc! { "_id": 2 }).await.expect("delete");
    coll.create_index(unique).await.expect("unique index");
    let err = coll.insert_one(doc! { "_id": 3, "k": 1.0 }).await.expect_err("dup 1.0 == 1");
    assert_eq!(code(&err), Some(11000));
    let ErrorKind::Write(mongodb::error::WriteFailure::WriteError(write)) = err.kind.as_ref() else {
        panic!("write error expected: {err}")
    };
    assert!(write.message.contains("index: k_1 dup key: { k: 1"), "{}", write.message);
    // An update into a taken key fails too, and changes nothing.
    coll.insert_one(doc! { "_id": 4, "k": 2 }).await.expect("insert");
    let err = coll.update_one(doc! { "_id": 4 }, doc! { "$set": { "k": 1 } }).await.expect_err("dup via update");
    assert_eq!(code(&err), Some(11000));
    assert_eq!(coll.find_one(doc! { "_id": 4 }).await.expect("find"), Some(doc! { "_id": 4, "k": 2 }));
    // Moving a key away frees it in the same batch.
    coll.update_one(doc! { "_id": 1 }, doc! { "$set": { "k": 9 } }).await.expect("move");
    coll.insert_one(doc! { "_id": 5, "k": 1 }).await.expect("freed key");
    // Missing fields are one null key: a second document without `k` collides.
    coll.insert_one(doc! { "_id": 6 }).await.expect("first null");
    assert_eq!(code(&coll.insert_one(doc! { "_id": 7 }).await.expect_err("second null")), Some(11000));

    // Concurrent inserts of one key: exactly one wins.
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let coll = coll.clone();
            tokio::spawn(async move { coll.insert_one(doc! { "_id": 100 + i, "k": "race" }).await.is_ok() })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.expect("task"));
    }
    assert_eq!(winners, 1);
    assert_eq!(coll.count_documents(doc! { "k": "race" }).await.expect("count"), 1);
}

#[tokio::test]
async fn indexes_multikey_sparse_partial_and_hashed_answer_like_a_scan() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("ix");
    let coll = db.collection::<Document>("kinds");
    let docs: Vec<Document> = (0..200)
        .map(|i| {
            let mut d = doc! { "_id": i, "n": i, "tags": [i % 7, i % 11], "s": format!("s{:03}", i % 50) };
            if i % 4 == 0 {
                d.insert("opt", i);
            }
            d
        })
        .collect();
    coll.insert_many(docs).await.expect("seed");
    let queries = [
        doc! { "tags": 3 },
        doc! { "tags": { "$gt": 5, "$lt": 7 } },
        doc! { "opt": { "$gte": 100 } },
        doc! { "n": { "$gt": 150 }, "s": { "$regex": "^s0" } },
        doc! { "s": "s042" },
        doc! { "n": { "$in": [3, 99, 1000] } },
        doc! { "opt": null },
    ];
    let mut expected = Vec::new();
    for query in &queries {
        let found: Vec<Document> =
            coll.find(query.clone()).sort(doc! { "_id": 1 }).await.expect("find").try_collect().await.expect("docs");
        expected.push(found);
    }
    run(
        &db,
        doc! { "createIndexes": "kinds", "indexes": [
            { "key": { "tags": 1 }, "name": "tags_1" },
            { "key": { "opt": 1 }, "name": "opt_1", "sparse": true },
            { "key": { "n": -1 }, "name": "n_partial", "partialFilterExpression": { "n": { "$gt": 100 } } },
            { "key": { "s": "hashed" }, "name": "s_hashed" },
            { "key": { "n": 1 }, "name": "n_1" },
        ] },
    )
    .await
    .expect("indexes");
    for (query, expected) in queries.iter().zip(&expected) {
        let found: Vec<Document> =
            coll.find(query.clone()).sort(doc! { "_id": 1 }).await.expect("find").try_collect().await.expect("docs");
        assert_eq!(&found, expected, "{query}");
    }
    let explained = explain(&db, doc! { "find": "kinds", "filter": { "tags": 3 } }).await;
    assert_eq!(winning_stages(&explained), ["FETCH", "IXSCAN"]);
    let ixscan = explained
        .get_document("queryPlanner")
        .and_then(|q| q.get_document("winningPlan"))
        .and_then(|w| w.get_document("inputStage"))
        .expect("ixscan");
    assert_eq!(ixscan.get_bool("isMultiKey").ok(), Some(true));
    // The sparse index must not answer a query that matches documents missing the field.
    let explained = explain(&db, doc! { "find": "kinds", "filter": { "opt": null } }).await;
    assert_eq!(winning_stages(&explained), ["COLLSCAN"]);
    // Hashed indexes serve equality.
    let explained = explain(&db, doc! { "find": "kinds", "filter": { "s": "s042" } }).await;
    assert_eq!(stats(&explained).0, 4);
    assert_eq!(stats(&explained).1, 4, "one key per match");
    // A partial index serves a query whose range lies inside its filter's (mongod's subset
    // check of comparisons), not one that reaches past it.
    let partial = doc! { "createIndexes": "partial", "indexes": [{ "key": { "x": 1 }, "name": "x_1", "partialFilterExpression": { "a": { "$lte": 1.5 } } }] };
    run(&db, partial).await.expect("partial index");
    db.collection::<Document>("partial")
        .insert_many([doc! { "x": 5, "a": 2 }, doc! { "x": 6, "a": 1 }])
        .await
        .expect("insert");
    for (a, stages) in [(doc! { "$lte": 1 }, vec!["FETCH", "IXSCAN"]), (doc! { "$lte": 1.6 }, vec!["COLLSCAN"])] {
        let explained = explain(&db, doc! { "find": "partial", "filter": { "x": 6, "a": a.clone() } }).await;
        assert_eq!(winning_stages(&explained), stages, "{a}");
        assert_eq!(stats(&explained).0, 1, "{a}");
    }
    // Parallel arrays in a compound index are refused.
    run(&db, doc! { "createIndexes": "kinds", "indexes": [{ "key": { "tags": 1, "more": 1 }, "name": "tm" }] })
        .await
        .expect("compound");
    let err = coll.insert_one(doc! { "_id": 1000, "tags": [1], "more": [2] }).await.expect_err("parallel");
    assert_eq!(code(&err), Some(171));
}

#[tokio::test]
async fn indexes_explain_hint_hidden_sort_and_covered() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("ix");
    let coll = db.collection::<Document>("plan");
    let docs: Vec<Document> = (0..1000).map(|i| doc! { "_id": i, "a": i % 100, "b": i }).collect();
    coll.insert_many(docs).await.expect("seed");
    let before = explain(&db, doc! { "find": "plan", "filter": { "a": 7 } }).await;
    assert_eq!(winning_stages(&before), ["COLLSCAN"]);
    assert_eq!(stats(&before), (10, 0, 1000));
    coll.create_index(IndexModel::builder().keys(doc! { "a": 1 }).build()).await.expect("a_1");
    let after = explain(&db, doc! { "find": "plan", "filter": { "a": 7 } }).await;
    assert_eq!(winning_stages(&after), ["FETCH", "IXSCAN"]);
    assert_eq!(stats(&after), (10, 10, 10), "an equality examines exactly the matches");
    let bounds = after
        .get_document("queryPlanner")
        .and_then(|q| q.get_document("winningPlan"))
        .and_then(|w| w.get_document("inputStage"))
        .and_then(|i| i.get_document("indexBounds"))
        .expect("bounds");
    assert_eq!(bounds, &doc! { "a": ["[7, 7]"] });
    // Covered: no documents read.
    let covered =
        explain(&db, doc! { "find": "plan", "filter": { "a": { "$gte": 98 } }, "projection": { "a": 1, "_id": 0 } })
            .await;
    assert_eq!(winning_stages(&covered), ["PROJECTION_COVERED", "IXSCAN"]);
    assert_eq!(stats(&covered), (20, 20, 0));
    let values: Vec<Document> = coll
        .find(doc! { "a": { "$gte": 98 } })
        .projection(doc! { "a": 1, "_id": 0 })
        .limit(2)
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("docs");
    assert_eq!(values, [doc! { "a": 98 }, doc! { "a": 98 }]);
    // An index-backed sort needs no SORT stage, in either direction.
    let sorted =
        explain(&db, doc! { "find": "plan", "filter": { "a": { "$gt": 50 } }, "sort": { "a": -1 }, "limit": 3 }).await;
    assert!(!winning_stages(&sorted).contains(&"SORT".to_owned()), "{:?}", winning_stages(&sorted));
    let top: Vec<Document> = coll
        .find(doc! { "a": { "$gt": 50 } })
        .sort(doc! { "a": -1 })
        .limit(3)
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("docs");
    assert!(top.iter().all(|d| d.get_i32("a").ok() == Some(99)));
    // hint forces an index (by name or pattern); an unknown hint is an error.
    let hinted = explain(&db, doc! { "find": "plan", "filter": { "b": 5 }, "hint": "a_1" }).await;
    assert_eq!(stats(&hinted).1, 1000, "full index scan");
    let hinted: Vec<Document> = coll
        .find(doc! { "b": 5 })
        .hint(mongodb::options::Hint::Keys(doc! { "a": 1 }))
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("docs");
    assert_eq!(hinted, [doc! { "_id": 5, "a": 5, "b": 5 }]);
    let err = coll.find_one(doc! {}).hint(mongodb::options::Hint::Name("nope".into())).await.expect_err("bad hint");
    assert_eq!(code(&err), Some(2));
    // Hidden: maintained but not used, and not hintable.
    let reply = run(&db, doc! { "collMod": "plan", "index": { "name": "a_1", "hidden": true } }).await.expect("hide");
    assert_eq!(reply.get_bool("hidden_old").ok(), Some(false));
    assert_eq!(reply.get_bool("hidden_new").ok(), Some(true));
    let hidden = explain(&db, doc! { "find": "plan", "filter": { "a": 7 } }).await;
    assert_eq!(winning_stages(&hidden), ["COLLSCAN"]);
    coll.insert_one(doc! { "_id": 5000, "a": 7 }).await.expect("insert while hidden");
    run(&db, doc! { "collMod": "plan", "index": { "name": "a_1", "hidden": false } }).await.expect("unhide");
    let shown = explain(&db, doc! { "find": "plan", "filter": { "a": 7 } }).await;
    assert_eq!(stats(&shown), (11, 11, 11), "the hidden index was kept up to date");
    // Two candidates: the trial picks the more selective one.
    coll.create_index(IndexModel::builder().keys(doc! { "b": 1 }).build()).await.expect("b_1");
    let both = explain(&db, doc! { "find": "plan", "filter": { "a": 7, "b": 507 } }).await;
    assert_eq!(stats(&both), (1, 1, 1));
    // Writes use indexes too.
    let update =
        explain(&db, doc! { "update": "plan", "updates": [{ "q": { "b": 3 }, "u": { "$set": { "x": 1 } } }] }).await;
    assert_eq!(winning_stages(&update), ["UPDATE", "FETCH", "IXSCAN"]);
    let count = explain(&db, doc! { "count": "plan", "query": { "a": 3 } }).await;
    assert_eq!(stats(&count).2, 10);
    // explain of an aggregation: the query alone has mongod's find shape; with more stages it
    // is the first stage, `$cursor`.
    let pushed = explain(&db, doc! { "aggregate": "plan", "pipeline": [{ "$match": { "a": 7 } }], "cursor": {} }).await;
    assert_eq!(winning_stages(&pushed), ["FETCH", "IXSCAN"]);
    let staged = explain(
        &db,
        doc! { "aggregate": "plan", "pipeline": [{ "$match": { "a": 7 } }, { "$group": { "_id": null, "n": { "$sum": 1 } } }], "cursor": {} },
    )
    .await;
    let stages = staged.get_array("stages").expect("stages");
    let cursor = stages[0].as_document().and_then(|s| s.get_document("$cursor").ok()).expect("$cursor");
    assert_eq!(winning_stages(cursor), ["FETCH", "IXSCAN"]);
    assert!(stages[1].as_document().is_some_and(|s| s.contains_key("$group")));
    // Aggregations hand their leading $match and $sort to the planner.
    assert_eq!(coll.count_documents(doc! { "a": 7 }).await.expect("countDocuments"), 11);
    let pipeline =
        [doc! { "$match": { "a": { "$gte": 98 } } }, doc! { "$sort": { "a": -1, "b": 1 } }, doc! { "$limit": 2 }];
    let top: Vec<Document> = coll.aggregate(pipeline).await.expect("aggregate").try_collect().await.expect("docs");
    assert_eq!(top.iter().map(|d| d.get_i32("b").ok()).collect::<Vec<_>>(), [Some(99), Some(199)]);
    // A plain in-memory sort works (its limit is tested with a small limit elsewhere).
    let sorted: Vec<Document> =
        coll.find(doc! {}).sort(doc! { "b": -1 }).limit(1).await.expect("find").try_collect().await.expect("docs");
    assert_eq!(sorted[0].get_i32("b").ok(), Some(999));
}

#[tokio::test]
async fn indexes_ttl_monitor_deletes_expired_documents() {
    let server = TestServer::start(&["--setParameter", "ttlMonitorSleepSecs=1"]);
    let client = server.client("").await;
    let db = client.database("ix");
    let coll = db.collection::<Document>("ttl");
    let now = mongodb::bson::DateTime::now();
    let old = mongodb::bson::DateTime::from_millis(now.timestamp_millis() - 3_600_000);
    coll.insert_many([
        doc! { "_id": 1, "at": old },
        doc! { "_id": 2, "at": now },
        doc! { "_id": 3, "at": [now, old] },
        doc! { "_id": 4, "at": "not a date" },
        doc! { "_id": 5 },
    ])
    .await
    .expect("seed");
    let ttl = IndexModel::builder()
        .keys(doc! { "at": 1 })
        .options(IndexOptions::builder().expire_after(Duration::from_secs(60)).build())
        .build();
    coll.create_index(ttl).await.expect("ttl index");
    let mut remaining = Vec::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        remaining = coll.find(doc! {}).await.expect("find").try_collect::<Vec<_>>().await.expect("docs");
        if remaining.len() == 3 {
            break;
        }
    }
    let ids: Vec<i32> = remaining.iter().filter_map(|d| d.get_i32("_id").ok()).collect();
    assert_eq!(ids, [2, 4, 5]);
    let status = run(&client.database("admin"), doc! { "serverStatus": 1 }).await.expect("serverStatus");
    let ttl = status.get_document("metrics").and_then(|m| m.get_document("ttl")).expect("metrics.ttl");
    assert_eq!(ttl.get_i64("deletedDocuments").ok(), Some(2), "{ttl}");
    assert!(ttl.get_i64("passes").is_ok_and(|passes| passes >= 1), "{ttl}");
    let reply = run(&db, doc! { "collMod": "ttl", "index": { "keyPattern": { "at": 1 }, "expireAfterSeconds": 7200 } })
        .await
        .expect("collMod");
    assert_eq!(reply.get_i64("expireAfterSeconds_old").ok(), Some(60));
    assert_eq!(reply.get_i64("expireAfterSeconds_new").ok(), Some(7200));
}

#[tokio::test]
async fn indexes_find_return_key_shows_the_index_key_the_plan_read() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("ix");
    let coll = db.collection::<Document>("rk");
    coll.insert_many((1..=5).map(|i| doc! { "_id": i, "x": i * 11, "tags": [i, i + 10], "s": format!("s{i}") }))
        .await
        .expect("seed");
    let batch = |reply: Document| -> Vec<Document> {
        let batch = reply.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("batch");
        batch.iter().filter_map(Bson::as_document).cloned().collect()
    };
    // The driver spec test: a sort on _id reads the _id index (showRecordId adds nothing then).
    let reply =
        run(&db, doc! { "find": "rk", "filter": {}, "sort": { "_id": 1 }, "showRecordId": true, "returnKey": true })
            .await
            .expect("find");
    assert_eq!(batch(reply), (1..=5).map(|i| doc! { "_id": i }).collect::<Vec<_>>());
    // A collection scan has no key.
    let reply = run(&db, doc! { "find": "rk", "filter": { "x": 22 }, "returnKey": true }).await.expect("find");
    assert_eq!(batch(reply), [doc! {}]);
    coll.create_index(IndexModel::builder().keys(doc! { "x": -1 }).build()).await.expect("x_-1");
    coll.create_index(IndexModel::builder().keys(doc! { "tags": 1 }).build()).await.expect("tags_1");
    coll.create_index(IndexModel::builder().keys(doc! { "s": "hashed" }).build()).await.expect("s_hashed");
    let reply =
        run(&db, doc! { "find": "rk", "filter": { "x": { "$gt": 30 } }, "projection": { "s": 1 }, "returnKey": true })
            .await
            .expect("find");
    assert_eq!(batch(reply), [doc! { "x": 55 }, doc! { "x": 44 }, doc! { "x": 33 }], "index order, projection ignored");
    // A multikey index: the key within the bounds, not the document's first.
    let reply = run(&db, doc! { "find": "rk", "filter": { "tags": 13 }, "returnKey": true }).await.expect("find");
    assert_eq!(batch(reply), [doc! { "tags": 13 }]);
    let reply = run(&db, doc! { "find": "rk", "filter": { "s": "s2" }, "returnKey": true }).await.expect("find");
    let keys = batch(reply);
    assert_eq!(keys.len(), 1);
    assert!(matches!(keys[0].get("s"), Some(Bson::Int64(_))), "a hashed key is its hash: {keys:?}");
}

#[tokio::test]
async fn indexes_aggregate_honours_hint_and_plans_a_leading_match() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("ix");
    let coll = db.collection::<Document>("agg");
    coll.insert_many([doc! { "_id": 1, "a": 1 }, doc! { "_id": 2, "b": 1 }, doc! { "_id": 3, "a": null }])
        .await
        .expect("seed");
    coll.create_index(
        IndexModel::builder().keys(doc! { "a": 1 }).options(IndexOptions::builder().sparse(true).build()).build(),
    )
    .await
    .expect("sparse");
    // countDocuments is an aggregate: a hint names an existing index or fails, as in find.
    let err = coll.count_documents(doc! {}).hint(mongodb::options::Hint::Name("nope".into())).await.expect_err("hint");
    assert_eq!(code(&err), Some(2), "{err}");
    // Hinting a sparse index reads only its documents (mongod's documented caveat).
    let n = coll.count_documents(doc! {}).hint(mongodb::options::Hint::Name("a_1".into())).await.expect("count");
    assert_eq!(n, 2);
    // A leading $match gives the same answers with or without the index, `let` included.
    for (filter, expected) in [(doc! { "a": 1 }, 1), (doc! { "a": null }, 2), (doc! { "a": { "$exists": false } }, 1)] {
        assert_eq!(coll.count_documents(filter.clone()).await.expect("count"), expected, "{filter}");
    }
    let reply = run(
        &db,
        doc! { "aggregate": "agg", "pipeline": [{ "$match": { "$expr": { "$eq": ["$a", "$$v"] } } }], "cursor": {}, "let": { "v": 1 } },
    )
    .await
    .expect("let");
    let batch = reply.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("batch");
    assert_eq!(batch.len(), 1);
}

#[tokio::test]
async fn indexes_validate_reports_keys_per_index() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("ix");
    let coll = db.collection::<Document>("val");
    coll.insert_many((0..50).map(|i| doc! { "_id": i, "a": [i, i + 1], "b": i % 5 })).await.expect("seed");
    coll.create_index(IndexModel::builder().keys(doc! { "a": 1 }).build()).await.expect("a_1");
    coll.create_index(IndexModel::builder().keys(doc! { "b": -1 }).build()).await.expect("b_-1");
    coll.delete_many(doc! { "b": 0 }).await.expect("delete");
    coll.update_many(doc! { "b": 1 }, doc! { "$push": { "a": 1000 } }).await.expect("update");
    let report = run(&db, doc! { "validate": "val", "full": true }).await.expect("validate");
    assert_eq!(report.get_bool("valid").ok(), Some(true), "{report}");
    assert_eq!(report.get_i64("nrecords").ok(), Some(40));
    let keys = report.get_document("keysPerIndex").expect("keysPerIndex");
    assert_eq!(keys.get_i64("_id_").ok(), Some(40));
    assert_eq!(keys.get_i64("a_1").ok(), Some(90), "two keys per document, three for the ten updated");
    assert_eq!(keys.get_i64("b_-1").ok(), Some(40));
    assert_eq!(report.get_array("errors").map(Vec::len).ok(), Some(0));
    let err = run(&db, doc! { "validate": "missing" }).await.expect_err("missing collection");
    assert_eq!(code(&err), Some(26));
}

#[tokio::test]
async fn indexes_in_memory_sort_is_limited_when_allow_disk_use_is_false() {
    let server = TestServer::start(&["--setParameter", "internalQueryMaxBlockingSortMemoryUsageBytes=4096"]);
    let client = server.client("").await;
    let db = client.database("ix");
    let coll = db.collection::<Document>("sorts");
    coll.insert_many((0..200).map(|i| doc! { "_id": i, "n": 200 - i, "pad": "x".repeat(50) })).await.expect("seed");
    let err = coll.find(doc! {}).sort(doc! { "n": 1 }).allow_disk_use(false).await.expect_err("over the limit");
    assert_eq!(code(&err), Some(292), "{err}");
    // mongod 6.0+ allows disk use by default (allowDiskUseByDefault).
    let sorted: Vec<Document> =
        coll.find(doc! {}).sort(doc! { "n": 1 }).await.expect("find").try_collect().await.expect("docs");
    assert_eq!(sorted.first().and_then(|d| d.get_i32("n").ok()), Some(1));
    // An index delivers the order without an in-memory sort: with disk use refused and the
    // same memory limit, the sort that failed above now succeeds, and explain has no SORT.
    coll.create_index(IndexModel::builder().keys(doc! { "n": 1 }).build()).await.expect("n_1");
    let sorted: Vec<Document> = coll
        .find(doc! {})
        .sort(doc! { "n": 1 })
        .allow_disk_use(false)
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("docs");
    let order: Vec<i32> = sorted.iter().map(|d| d.get_i32("n").expect("n")).collect();
    assert_eq!(order, (1..=200).collect::<Vec<_>>());
    let explained =
        explain(&db, doc! { "find": "sorts", "filter": {}, "sort": { "n": 1 }, "allowDiskUse": false }).await;
    assert!(!winning_stages(&explained).contains(&"SORT".to_owned()), "{:?}", winning_stages(&explained));
}

#[tokio::test]
async fn indexes_min_max_need_a_hint_and_bound_the_scan() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("ix");
    let coll = db.collection::<Document>("minmax");
    coll.insert_many((0..20).map(|i| doc! { "_id": i, "a": i % 10, "b": i })).await.expect("seed");
    coll.create_index(IndexModel::builder().keys(doc! { "a": 1, "b": 1 }).build()).await.expect("a_1_b_1");
    let found =
        run(&db, doc! { "find": "minmax", "hint": "a_1_b_1", "min": { "a": 3, "b": 13 }, "max": { "a": 5, "b": 0 } })
            .await
            .expect("min/max");
    let ids: Vec<i32> = found
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .expect("batch")
        .iter()
        .filter_map(|d| d.as_document().and_then(|d| d.get_i32("_id").ok()))
        .collect();
    assert_eq!(ids, [13, 4, 14], "from (3, 13) inclusive to (5, 0) exclusive, in index order");
    let err = run(&db, doc! { "find": "minmax", "min": { "a": 3, "b": 0 } }).await.expect_err("no hint");
    assert_eq!(code(&err), Some(51173));
    let err = run(&db, doc! { "find": "minmax", "hint": "a_1_b_1", "min": { "b": 3 } }).await.expect_err("mismatch");
    assert_eq!(code(&err), Some(51174));
}

#[tokio::test]
async fn indexes_return_key_shows_the_index_key() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("ix");
    let coll = db.collection::<Document>("keys");
    coll.insert_many((0..5).map(|i| doc! { "_id": i, "a": i * 10, "b": "x" })).await.expect("seed");
    coll.create_index(IndexModel::builder().keys(doc! { "a": -1 }).build()).await.expect("a_-1");
    let batch = |reply: Document| -> Vec<Document> {
        reply
            .get_document("cursor")
            .and_then(|c| c.get_array("firstBatch"))
            .expect("batch")
            .iter()
            .filter_map(|d| d.as_document().cloned())
            .collect()
    };
    let keys = batch(
        run(&db, doc! { "find": "keys", "filter": { "a": { "$gte": 30 } }, "returnKey": true, "showRecordId": true })
            .await
            .expect("returnKey"),
    );
    assert_eq!(keys, [doc! { "a": 40 }, doc! { "a": 30 }]);
    let ids = batch(run(&db, doc! { "find": "keys", "sort": { "_id": 1 }, "returnKey": true }).await.expect("by _id"));
    assert_eq!(ids.first(), Some(&doc! { "_id": 0 }));
    let none = batch(run(&db, doc! { "find": "keys", "filter": { "b": "x" }, "returnKey": true }).await.expect("scan"));
    assert_eq!(none, vec![Document::new(); 5], "no index, empty keys");
}

#[tokio::test]
async fn indexes_with_a_collation_serve_queries_with_the_same_collation() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("ix");
    let coll = db.collection::<Document>("collated");
    coll.insert_many([
        doc! { "_id": 1, "name": "Zoë" },
        doc! { "_id": 2, "name": "zoe" },
        doc! { "_id": 3, "name": "adam" },
    ])
    .await
    .expect("seed");
    let strength2 = doc! { "locale": "en", "strength": 2 };
    run(
        &db,
        doc! { "createIndexes": "collated", "indexes": [
            { "key": { "name": 1 }, "name": "name_ci", "collation": strength2.clone() },
        ] },
    )
    .await
    .expect("collated index");
    let listed = run(&db, doc! { "listIndexes": "collated" }).await.expect("listIndexes");
    let specs = listed.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("batch");
    let spec =
        specs.iter().filter_map(Bson::as_document).find(|s| s.get_str("name").ok() == Some("name_ci")).expect("spec");
    let collation = spec.get_document("collation").expect("collation");
    assert_eq!(collation.get_str("locale").ok(), Some("en"));
    assert_eq!(collation.get_i32("strength").ok(), Some(2));
    assert_eq!(collation.get_str("version").ok(), Some("57.1"), "stored in full, as mongod");
    // Same collation: the index bounds the query; strength 2 ignores case, not accents.
    let explained =
        explain(&db, doc! { "find": "collated", "filter": { "name": "ZOE" }, "collation": strength2.clone() }).await;
    assert_eq!(winning_stages(&explained), ["FETCH", "IXSCAN"]);
    assert_eq!(stats(&explained), (1, 1, 1));
    // Another collation (here simple) cannot use its string keys.
    let simple = explain(&db, doc! { "find": "collated", "filter": { "name": "zoe" } }).await;
    assert_eq!(winning_stages(&simple), ["COLLSCAN"]);
    // Writes are explained under their own collation too.
    let delete = explain(
        &db,
        doc! { "delete": "collated", "deletes": [{ "q": { "name": "ZOE" }, "limit": 1, "collation": strength2.clone() }] },
    )
    .await;
    assert_eq!(winning_stages(&delete), ["DELETE", "FETCH", "IXSCAN"]);
    // A sort under the index's collation comes from the index.
    let sorted =
        explain(&db, doc! { "find": "collated", "filter": {}, "sort": { "name": 1 }, "collation": strength2.clone() })
            .await;
    assert!(!winning_stages(&sorted).contains(&"SORT".to_owned()));
    // Uniqueness follows the collation.
    run(&db, doc! { "createIndexes": "u", "indexes": [{ "key": { "k": 1 }, "name": "k_ci", "unique": true, "collation": strength2.clone() }] })
        .await
        .expect("unique collated");
    let u = db.collection::<Document>("u");
    u.insert_one(doc! { "k": "Hello" }).await.expect("first");
    let err = u.insert_one(doc! { "k": "hello" }).await.expect_err("equal under strength 2");
    assert_eq!(code(&err), Some(11000));
    // An index without its own collation takes the collection's default.
    db.create_collection("defaulted")
        .collation(
            mongodb::options::Collation::builder()
                .locale("en")
                .strength(mongodb::options::CollationStrength::Secondary)
                .build(),
        )
        .await
        .expect("create");
    run(&db, doc! { "createIndexes": "defaulted", "indexes": [{ "key": { "x": 1 }, "name": "x_1" }] })
        .await
        .expect("index");
    let listed = run(&db, doc! { "listIndexes": "defaulted" }).await.expect("listIndexes");
    let specs = listed.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("batch");
    let x = specs.iter().filter_map(Bson::as_document).find(|s| s.get_str("name").ok() == Some("x_1")).expect("x_1");
    assert_eq!(x.get_document("collation").and_then(|c| c.get_i32("strength")).ok(), Some(2));
}

#[tokio::test]
async fn indexes_covered_projection_with_a_descending_field() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("ix");
    let coll = db.collection::<Document>("cover");
    // Fifty documents with a: 3, their b numbers of each type, strings and nested documents,
    // the rest spread over other values of a.
    let b_of = |i: i32| match i % 5 {
        0 => Bson::Int32(i),
        1 => Bson::Int64(i64::from(i) * 1_000_000_000_000),
        2 => Bson::Double(f64::from(i) + 0.5),
        3 => Bson::String(format!("s{i:03}")),
        _ => Bson::Document(doc! { "n": i, "t": "x" }),
    };
    let docs: Vec<Document> = (0..250).map(|i| doc! { "_id": i, "a": i / 50 + 1, "b": b_of(i) }).collect();
    coll.insert_many(docs.clone()).await.expect("seed");
    coll.create_index(IndexModel::builder().keys(doc! { "a": 1, "b": -1 }).build()).await.expect("a_1_b_-1");
    let find = |projection: Document| doc! { "find": "cover", "filter": { "a": 3 }, "projection": projection };

    // Both projections are covered, as mongod: the index holds every projected field.
    for projection in [doc! { "a": 1, "_id": 0 }, doc! { "a": 1, "b": 1, "_id": 0 }, doc! { "b": 1, "_id": 0 }] {
        let explained = explain(&db, find(projection.clone())).await;
        assert_eq!(winning_stages(&explained), ["PROJECTION_COVERED", "IXSCAN"], "{projection}");
        assert_eq!(stats(&explained), (50, 50, 0), "{projection}");
    }
    // The values come back as stored (types kept), in the index's order (b descending).
    let covered: Vec<Document> = coll
        .find(doc! { "a": 3 })
        .projection(doc! { "a": 1, "b": 1, "_id": 0 })
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("docs");
    let mut expected: Vec<Document> = docs
        .iter()
        .filter(|d| d.get_i32("a").ok() == Some(3))
        .map(|d| doc! { "a": 3, "b": d.get("b").cloned() })
        .collect();
    let fetched: Vec<Document> = coll
        .find(doc! { "a": 3 })
        .projection(doc! { "a": 1, "b": 1, "_id": 0 })
        .sort(doc! { "b": -1 })
        .hint(mongodb::options::Hint::Keys(doc! { "$natural": 1 }))
        .await
        .expect("find by scan")
        .try_collect()
        .await
        .expect("docs");
    assert_eq!(covered, fetched, "the covered read returns what a scan and sort return");
    expected.sort_by_key(|d| d.get("b").map(ToString::to_string));
    let mut sorted_covered = covered.clone();
    sorted_covered.sort_by_key(|d| d.get("b").map(ToString::to_string));
    assert_eq!(sorted_covered, expected);

    // A document without b: the key holds null, and a covered read returns it (mongod's
    // covered projection copies the key's elements).
    coll.insert_one(doc! { "_id": 1000, "a": 3 }).await.expect("no b");
    let without_b: Vec<Document> = coll
        .find(doc! { "a": 3, "b": { "$exists": false } })
        .projection(doc! { "a": 1, "_id": 0 })
        .hint(mongodb::options::Hint::Keys(doc! { "$natural": 1 }))
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("docs");
    assert_eq!(without_b, [doc! { "a": 3 }]);
    let nulls = coll
        .find(doc! { "a": 3 })
        .projection(doc! { "a": 1, "b": 1, "_id": 0 })
        .await
        .expect("find")
        .try_collect::<Vec<Document>>()
        .await
        .expect("docs");
    assert!(nulls.contains(&doc! { "a": 3, "b": Bson::Null }), "{nulls:?}");

    // A predicate on a projected field whose bounds hold null needs the document: the index
    // cannot tell null from missing (mongod's cover_null_queries).
    let null_eq =
        explain(&db, doc! { "find": "cover", "filter": { "a": 3, "b": null }, "projection": { "b": 1, "_id": 0 } })
            .await;
    assert_eq!(winning_stages(&null_eq), ["PROJECTION_SIMPLE", "FETCH", "IXSCAN"]);
    // `_id` is not in the index: including it needs the document.
    let with_id = explain(&db, doc! { "find": "cover", "filter": { "a": 3 }, "projection": { "a": 1 } }).await;
    assert_eq!(winning_stages(&with_id), ["PROJECTION_SIMPLE", "FETCH", "IXSCAN"]);

    // Under a collation the keys of strings are collation keys: a field whose bounds may hold
    // strings (or documents and arrays, which hold strings) is not covered, one bounded to
    // numbers is (mongod's getFieldsWithStringBounds).
    let collated = db.collection::<Document>("cover_collated");
    coll.delete_one(doc! { "_id": 1000 }).await.expect("delete");
    collated.insert_many(docs).await.expect("seed collated");
    let strength2 = doc! { "locale": "en", "strength": 2 };
    run(
        &db,
        doc! { "createIndexes": "cover_collated", "indexes": [
            { "key": { "a": 1, "b": -1 }, "name": "a_b_ci", "collation": strength2.clone() },
        ] },
    )
    .await
    .expect("collated index");
    let collated_find = |projection: Document| {
        doc! { "find": "cover_collated", "filter": { "a": 3 }, "projection": projection, "collation": strength2.clone() }
    };
    let only_a = explain(&db, collated_find(doc! { "a": 1, "_id": 0 })).await;
    assert_eq!(winning_stages(&only_a), ["PROJECTION_COVERED", "IXSCAN"]);
    assert_eq!(stats(&only_a), (50, 50, 0));
    let with_b = explain(&db, collated_find(doc! { "a": 1, "b": 1, "_id": 0 })).await;
    assert_eq!(winning_stages(&with_b), ["PROJECTION_SIMPLE", "FETCH", "IXSCAN"]);
    assert_eq!(stats(&with_b), (50, 50, 50));
    let numeric_b = explain(
        &db,
        doc! { "find": "cover_collated", "filter": { "a": 3, "b": { "$gt": 0 } }, "projection": { "b": 1, "_id": 0 }, "collation": strength2.clone() },
    )
    .await;
    assert_eq!(winning_stages(&numeric_b), ["PROJECTION_COVERED", "IXSCAN"]);
}

#[tokio::test]
async fn indexes_hashed_keys_are_mongods_hashes() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("ix");
    let coll = db.collection::<Document>("hashed");
    // Expected hashes: mongod's hasher_test.cpp (BSONElementHasher::hash64, seed 0).
    let cases = [
        (Bson::Int32(42), -944_302_157_085_130_861_i64),
        (Bson::Double(42.123), -944_302_157_085_130_861),
        (Bson::String("abc".into()), 8_478_485_326_885_698_097),
        (Bson::Document(doc! { "a": "abc", "b": 123_i64 }), 4_771_603_801_758_380_216),
        (Bson::Null, 2_338_878_944_348_059_895),
    ];
    // mongod bounds `k: null` by the hash of null too; Monarch's planner does not use a hashed
    // index for null yet, so that case checks returnKey only.
    let bounded = cases.len() - 1;
    for (i, (value, _)) in cases.iter().enumerate() {
        coll.insert_one(doc! { "_id": i as i32, "k": value.clone() }).await.expect("insert");
    }
    coll.create_index(IndexModel::builder().keys(doc! { "k": "hashed" }).build()).await.expect("k_hashed");
    for (i, (value, hash)) in cases.iter().enumerate() {
        let reply = run(&db, doc! { "find": "hashed", "filter": { "_id": i as i32, "k": value.clone() }, "returnKey": true, "hint": "k_hashed" })
            .await
            .expect("find");
        let batch = reply.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("batch");
        assert_eq!(batch.as_slice(), [Bson::Document(doc! { "k": *hash })], "returnKey of {value}");
        if i >= bounded {
            continue;
        }
        let explained = explain(&db, doc! { "find": "hashed", "filter": { "k": value.clone() } }).await;
        let bounds = explained
            .get_document("queryPlanner")
            .and_then(|q| q.get_document("winningPlan"))
            .and_then(|w| w.get_document("inputStage"))
            .and_then(|i| i.get_document("indexBounds"))
            .expect("bounds");
        assert_eq!(bounds, &doc! { "k": [format!("[{hash}, {hash}]")] }, "explain bounds of {value}");
    }
}

#[tokio::test]
async fn indexes_keep_background_and_drop_dups_as_mongod() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("ix");
    run(
        &db,
        doc! { "createIndexes": "c", "indexes": [
            { "key": { "a": 1 }, "name": "a_1", "background": true },
            { "key": { "b": 1 }, "name": "b_1", "unique": true, "dropDups": true },
        ] },
    )
    .await
    .expect("createIndexes");
    let listed = run(&db, doc! { "listIndexes": "c" }).await.expect("listIndexes");
    let batch = listed.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("batch");
    assert_eq!(
        batch.iter().skip(1).cloned().collect::<Vec<_>>(),
        vec![
            Bson::Document(doc! { "v": 2, "key": { "a": 1 }, "name": "a_1", "background": true }),
            Bson::Document(doc! { "v": 2, "key": { "b": 1 }, "name": "b_1", "unique": true, "dropDups": true }),
        ]
    );
    // Neither makes an index different: asking again without them finds the same indexes.
    let reply = run(
        &db,
        doc! { "createIndexes": "c", "indexes": [
            { "key": { "a": 1 }, "name": "a_1" },
            { "key": { "b": 1 }, "name": "b_1", "unique": true, "background": false },
        ] },
    )
    .await
    .expect("createIndexes again");
    assert_eq!(reply.get_str("note").ok(), Some("all indexes already exist"), "{reply}");
    // dropDups is ignored: a unique index build still fails on duplicates.
    db.collection::<Document>("d").insert_many([doc! { "x": 1 }, doc! { "x": 1 }]).await.expect("insert");
    let error = run(
        &db,
        doc! { "createIndexes": "d", "indexes": [{ "key": { "x": 1 }, "name": "x_1", "unique": true, "dropDups": true }] },
    )
    .await
    .expect_err("duplicates");
    assert_eq!(code(&error), Some(11000));
    // They must read as booleans.
    let error =
        run(&db, doc! { "createIndexes": "c", "indexes": [{ "key": { "e": 1 }, "name": "e_1", "background": "yes" }] })
            .await
            .expect_err("not a boolean");
    assert_eq!(code(&error), Some(14));
    let ErrorKind::Command(command) = error.kind.as_ref() else { panic!("command error expected") };
    assert!(
        command.message.ends_with(
            ":: caused by :: The field 'background has value background: \"yes\", which is not convertible to bool"
        ),
        "{}",
        command.message
    );
}

/// The IXSCAN stage of a winning plan (FETCH over IXSCAN).
fn ixscan(explained: &Document) -> Document {
    let plan =
        explained.get_document("queryPlanner").and_then(|q| q.get_document("winningPlan")).cloned().unwrap_or_default();
    plan.get_document("inputStage").cloned().unwrap_or(plan)
}

#[tokio::test]
async fn indexes_wildcard_serve_any_path_and_answer_like_a_scan() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("ix");
    let coll = db.collection::<Document>("wild");
    let docs: Vec<Document> = (0..200)
        .map(|i| {
            doc! {
                "_id": i,
                "attrs": { "color": if i % 2 == 0 { "red" } else { "blue" }, "size": i % 10, "dims": [i % 7, { "w": i % 5 }] },
                "name": format!("item{i:03}"),
                "tags": if i % 3 == 0 { Bson::Array(vec!["x".into(), "y".into()]) } else { Bson::Null },
                "nested": [[i % 4]],
            }
        })
        .collect();
    coll.insert_many(docs).await.expect("seed");
    let queries = vec![
        doc! { "attrs.color": "red" },
        doc! { "attrs.size": { "$gte": 7 } },
        doc! { "attrs.size": { "$gt": 2, "$lt": 4 } },
        doc! { "attrs.dims": 3 },
        doc! { "attrs.dims.w": { "$in": [1, 4] } },
        doc! { "name": { "$regex": "^item01" } },
        doc! { "tags": "y" },
        doc! { "tags": null },
        doc! { "nested": 1 },
        doc! { "nested": [1] },
        doc! { "attrs.dims.0": 3 },
        doc! { "attrs": { "$exists": true }, "attrs.color": "blue", "attrs.size": 5 },
        doc! { "_id": { "$lt": 5 } },
        doc! { "attrs": { "$exists": true } },
        doc! { "tags": { "$exists": true } },
        doc! { "attrs.dims.w": { "$exists": 1 } },
        doc! { "missing": { "$exists": true } },
    ];
    let mut expected = Vec::new();
    for query in &queries {
        let found: Vec<Document> =
            coll.find(query.clone()).sort(doc! { "_id": 1 }).await.expect("find").try_collect().await.expect("docs");
        expected.push(found);
    }
    let created =
        run(&db, doc! { "createIndexes": "wild", "indexes": [{ "key": { "$**": 1 }, "name": "$**_1" }] }).await;
    assert!(created.is_ok(), "{created:?}");
    for (query, expected) in queries.iter().zip(&expected) {
        let found: Vec<Document> =
            coll.find(query.clone()).sort(doc! { "_id": 1 }).await.expect("find").try_collect().await.expect("docs");
        assert_eq!(&found, expected, "{query}");
    }
    // An equality on any path is a point scan of the path and the value.
    let explained = explain(&db, doc! { "find": "wild", "filter": { "attrs.color": "red" } }).await;
    assert_eq!(winning_stages(&explained), ["FETCH", "IXSCAN"]);
    let scan = ixscan(&explained);
    assert_eq!(scan.get_document("keyPattern").ok(), Some(&doc! { "$_path": 1, "attrs.color": 1 }), "{scan}");
    assert_eq!(scan.get_str("indexName").ok(), Some("$**_1"));
    assert_eq!(
        scan.get_document("indexBounds").ok(),
        Some(&doc! { "$_path": ["[\"attrs.color\", \"attrs.color\"]"], "attrs.color": ["[\"red\", \"red\"]"] })
    );
    assert_eq!(stats(&explained), (100, 100, 100), "exactly the matches");
    // `$exists: true` scans the path and every path under it, each document once.
    let explained = explain(&db, doc! { "find": "wild", "filter": { "attrs": { "$exists": true } } }).await;
    let scan = ixscan(&explained);
    assert_eq!(
        scan.get_document("indexBounds").ok(),
        Some(&doc! { "$_path": ["[\"attrs\", \"attrs\"]", "[\"attrs.\", \"attrs/\")"], "attrs": ["[MinKey, MaxKey]"] }),
        "{scan}"
    );
    assert_eq!(stats(&explained).0, 200, "each document once");
    // Also where no array made the index multikey: two keys under `a.`, one document.
    let flat = db.collection::<Document>("flat");
    flat.insert_many([doc! { "_id": 1, "a": { "x": 1, "y": 2 } }, doc! { "_id": 2, "b": 1 }]).await.expect("flat");
    run(&db, doc! { "createIndexes": "flat", "indexes": [{ "key": { "$**": 1 }, "name": "all" }] })
        .await
        .expect("index");
    let explained = explain(&db, doc! { "find": "flat", "filter": { "a": { "$exists": true } } }).await;
    assert_eq!(ixscan(&explained).get_bool("isMultiKey").ok(), Some(false));
    assert_eq!(stats(&explained).0, 1, "{explained}");
    // Paths with no keys (null, missing), positions and _id are not served by it.
    for filter in [doc! { "tags": null }, doc! { "attrs.dims.0": 3 }, doc! { "nested": [1] }] {
        let explained = explain(&db, doc! { "find": "wild", "filter": filter.clone() }).await;
        assert_eq!(winning_stages(&explained), ["COLLSCAN"], "{filter}");
    }
    let by_id = explain(&db, doc! { "find": "wild", "filter": { "_id": { "$lt": 5 } } }).await;
    assert_eq!(ixscan(&by_id).get_str("indexName").ok(), Some("_id_"), "_id is not in $**");

    // A subtree index and a projection keep to their paths.
    let sub = doc! { "createIndexes": "wild", "indexes": [{ "key": { "attrs.$**": 1 }, "name": "attrs" }] };
    run(&db, sub).await.expect("attrs.$**");
    let hinted = explain(&db, doc! { "find": "wild", "filter": { "attrs.size": 3 }, "hint": "attrs" }).await;
    assert_eq!(stats(&hinted).0, 20);
    let not_covered = run(&db, doc! { "find": "wild", "filter": { "name": "item001" }, "hint": "attrs" }).await;
    assert_eq!(not_covered.err().as_ref().and_then(code), Some(291), "a path outside the subtree");
    let projected = doc! { "createIndexes": "wild", "indexes": [{ "key": { "$**": 1 }, "name": "names", "wildcardProjection": { "name": 1 } }] };
    run(&db, projected).await.expect("projection");
    let listed = run(&db, doc! { "listIndexes": "wild" }).await.expect("listIndexes");
    let names: Vec<String> = listed
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .map(|b| b.iter().filter_map(|i| i.as_document()?.get_str("name").ok().map(str::to_owned)).collect())
        .unwrap_or_default();
    assert_eq!(names, ["_id_", "$**_1", "attrs", "names"]);

    // mongod's refusals.
    let refused = [
        (doc! { "key": { "$**": 1 }, "name": "u", "unique": true }, 67),
        (doc! { "key": { "$**": 1 }, "name": "s", "sparse": true }, 67),
        (doc! { "key": { "$**": 1 }, "name": "t", "expireAfterSeconds": 5 }, 67),
        (doc! { "key": { "$**": -1 }, "name": "n" }, 67),
        (doc! { "key": { "a": 1 }, "name": "p", "wildcardProjection": { "a": 1 } }, 2),
        (doc! { "key": { "a.$**": 1 }, "name": "q", "wildcardProjection": { "a": 1 } }, 9),
        (doc! { "key": { "$**": 1 }, "name": "e", "wildcardProjection": {} }, 9),
        (doc! { "key": { "$**": 1 }, "name": "m", "wildcardProjection": { "a": 1, "b": 0 } }, 31254),
        (doc! { "key": { "$**": 1, "a": 1 }, "name": "c" }, 238),
    ];
    for (spec, expected) in refused {
        let result = run(&db, doc! { "createIndexes": "wild", "indexes": [spec.clone()] }).await;
        assert_eq!(result.err().as_ref().and_then(code), Some(expected), "{spec}");
    }
    // Writes keep it consistent.
    coll.update_one(doc! { "_id": 0 }, doc! { "$set": { "attrs.color": "green" } }).await.expect("update");
    let green = explain(&db, doc! { "find": "wild", "filter": { "attrs.color": "green" } }).await;
    assert_eq!(stats(&green).0, 1);
    let valid = run(&db, doc! { "validate": "wild" }).await.expect("validate");
    assert_eq!(valid.get_bool("valid").ok(), Some(true), "{valid}");
}
