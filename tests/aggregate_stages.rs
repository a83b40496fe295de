//! Aggregation stages through the Rust driver: `$group` with its accumulators, `$unwind`,
//! `$sortByCount`, `$bucket`, `$facet`, `$lookup`, `$unionWith`, `$documents`, their memory
//! limits and their errors.

#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use common::TestServer;
use common::pipeline::{code, run, run_err};
use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::ErrorKind;
use mongodb::{Collection, Database};

async fn orders(db: &Database) -> Collection<Document> {
    let orders = db.collection::<Document>("orders");
    orders
        .insert_many([
            doc! { "_id": 1, "cust": "ann", "amt": 10, "items": ["pen", "ink"], "day": 1 },
            doc! { "_id": 2, "cust": "bob", "amt": 2.5, "items": ["pen"], "day": 1 },
            doc! { "_id": 3, "cust": "ann", "amt": Bson::Int64(5), "items": [], "day": 2 },
            doc! { "_id": 4, "cust": "cy", "amt": "n/a", "day": 3 },
            doc! { "_id": 5, "cust": "bob", "amt": 7, "items": ["pad", "pen"], "day": 3 },
        ])
        .await
        .expect("insert orders");
    let customers = db.collection::<Document>("customers");
    customers
        .insert_many([
            doc! { "_id": "ann", "city": "Paris" },
            doc! { "_id": "bob", "city": "Oslo" },
            doc! { "_id": "dee", "city": "Rome" },
        ])
        .await
        .expect("insert customers");
    orders
}

/// [`orders`] with an index on `cust`.
async fn orders_by_cust(db: &Database) -> Collection<Document> {
    let orders = orders(db).await;
    db.run_command(doc! { "createIndexes": "orders", "indexes": [{ "key": { "cust": 1 }, "name": "cust_1" }] })
        .await
        .expect("index");
    orders
}

#[tokio::test]
async fn group_computes_every_accumulator_per_key() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("shop");
    let orders = orders(&db).await;
    let groups = run(
        &orders,
        vec![
            doc! { "$group": {
                "_id": "$cust",
                "total": { "$sum": "$amt" },
                "avg": { "$avg": "$amt" },
                "n": { "$count": {} },
                "min": { "$min": "$amt" },
                "max": { "$max": "$amt" },
                "first": { "$first": "$_id" },
                "last": { "$last": "$_id" },
                "days": { "$addToSet": "$day" },
                "ids": { "$push": "$_id" },
            } },
            doc! { "$sort": { "_id": 1 } },
        ],
    )
    .await;
    assert_eq!(
        groups,
        vec![
            doc! { "_id": "ann", "total": Bson::Int64(15), "avg": 7.5, "n": 2, "min": Bson::Int64(5), "max": 10,
            "first": 1, "last": 3, "days": [1, 2], "ids": [1, 3] },
            doc! { "_id": "bob", "total": 9.5, "avg": 4.75, "n": 2, "min": 2.5, "max": 7,
            "first": 2, "last": 5, "days": [1, 3], "ids": [2, 5] },
            doc! { "_id": "cy", "total": 0, "avg": Bson::Null, "n": 1, "min": "n/a", "max": "n/a",
            "first": 4, "last": 4, "days": [3], "ids": [4] },
        ]
    );
    // A compound key, and a key that is missing in every document (null).
    let by_day = run(
        &orders,
        vec![
            doc! { "$group": { "_id": { "d": "$day", "odd": { "$eq": [{ "$mod": ["$day", 2] }, 1] } }, "c": { "$sum": 1 } } },
            doc! { "$sort": { "_id.d": -1 } },
        ],
    )
    .await;
    assert_eq!(
        by_day,
        vec![
            doc! { "_id": { "d": 3, "odd": true }, "c": 2 },
            doc! { "_id": { "d": 2, "odd": false }, "c": 1 },
            doc! { "_id": { "d": 1, "odd": true }, "c": 2 },
        ]
    );
    let all = run(&orders, vec![doc! { "$group": { "_id": "$nope", "c": { "$sum": 1 } } }]).await;
    assert_eq!(all, vec![doc! { "_id": Bson::Null, "c": 5 }]);
    // An empty input gives no group at all.
    let none = run(
        &orders,
        vec![doc! { "$match": { "cust": "zed" } }, doc! { "$group": { "_id": null, "c": { "$sum": 1 } } }],
    )
    .await;
    assert!(none.is_empty());
}

#[tokio::test]
async fn unwind_sort_by_count_and_bucket() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("shop");
    let orders = orders(&db).await;
    let unwound = run(
        &orders,
        vec![
            doc! { "$match": { "_id": { "$lte": 3 } } },
            doc! { "$unwind": { "path": "$items", "includeArrayIndex": "i", "preserveNullAndEmptyArrays": true } },
            doc! { "$project": { "items": 1, "i": 1 } },
        ],
    )
    .await;
    assert_eq!(
        unwound,
        vec![
            doc! { "_id": 1, "items": "pen", "i": Bson::Int64(0) },
            doc! { "_id": 1, "items": "ink", "i": Bson::Int64(1) },
            doc! { "_id": 2, "items": "pen", "i": Bson::Int64(0) },
            doc! { "_id": 3, "i": Bson::Null },
        ]
    );
    let popular = run(&orders, vec![doc! { "$unwind": "$items" }, doc! { "$sortByCount": "$items" }]).await;
    assert_eq!(popular.first(), Some(&doc! { "_id": "pen", "count": 3 }));
    assert_eq!(popular.len(), 3);

    let buckets = run(
        &orders,
        vec![doc! { "$bucket": {
            "groupBy": "$day",
            "boundaries": [1, 2, 4],
            "default": "other",
            "output": { "n": { "$sum": 1 }, "ids": { "$push": "$_id" } },
        } }],
    )
    .await;
    assert_eq!(buckets, vec![doc! { "_id": 1, "n": 2, "ids": [1, 2] }, doc! { "_id": 2, "n": 3, "ids": [3, 4, 5] }]);
    // Outside every boundary and no default: mongod's $switch error.
    let error = run_err(&db, "orders", vec![doc! { "$bucket": { "groupBy": "$day", "boundaries": [1, 2] } }]).await;
    assert_eq!(error, Some((40066, "Location40066".to_owned())));
}

#[tokio::test]
async fn facet_runs_each_sub_pipeline_over_the_same_input() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("shop");
    let orders = orders(&db).await;
    let faceted = run(
        &orders,
        vec![
            doc! { "$match": { "amt": { "$type": "number" } } },
            doc! { "$facet": {
                "count": [{ "$count": "n" }],
                "page": [{ "$sort": { "_id": -1 } }, { "$skip": 1 }, { "$limit": 2 }, { "$project": { "_id": 1 } }],
                "byCust": [{ "$sortByCount": "$cust" }],
            } },
        ],
    )
    .await;
    assert_eq!(
        faceted,
        vec![doc! {
            "count": [{ "n": 4 }],
            "page": [{ "_id": 3 }, { "_id": 2 }],
            "byCust": [{ "_id": "ann", "count": 2 }, { "_id": "bob", "count": 2 }],
        }]
    );
    let error =
        run_err(&db, "orders", vec![doc! { "$facet": { "a": [{ "$facet": { "b": [{ "$limit": 1 }] } }] } }]).await;
    assert_eq!(error, Some((40600, "Location40600".to_owned())));
    let error = run_err(&db, "orders", vec![doc! { "$facet": { "a": 1 } }]).await;
    assert_eq!(error.map(|e| e.0), Some(40170));
    let error = run_err(&db, "orders", vec![doc! { "$facet": {} }]).await;
    assert_eq!(error.map(|e| e.0), Some(40169));
}

#[tokio::test]
async fn lookup_joins_by_equality_and_through_a_pipeline_with_let() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("shop");
    let orders = orders(&db).await;
    let joined = run(
        &orders,
        vec![
            doc! { "$match": { "_id": { "$in": [1, 4] } } },
            doc! { "$lookup": { "from": "customers", "localField": "cust", "foreignField": "_id", "as": "c" } },
            doc! { "$project": { "c": 1 } },
        ],
    )
    .await;
    assert_eq!(joined, vec![doc! { "_id": 1, "c": [{ "_id": "ann", "city": "Paris" }] }, doc! { "_id": 4, "c": [] }]);
    // From the customers' side, with let variables and a sub-pipeline that groups.
    let customers = db.collection::<Document>("customers");
    let spent = run(
        &customers,
        vec![
            doc! { "$lookup": {
                "from": "orders",
                "let": { "who": "$_id" },
                "pipeline": [
                    { "$match": { "$expr": { "$eq": ["$cust", "$$who"] } } },
                    { "$group": { "_id": null, "total": { "$sum": "$amt" } } },
                ],
                "as": "spent",
            } },
            doc! { "$project": { "spent.total": 1 } },
        ],
    )
    .await;
    assert_eq!(
        spent,
        vec![
            doc! { "_id": "ann", "spent": [{ "total": Bson::Int64(15) }] },
            doc! { "_id": "bob", "spent": [{ "total": 9.5 }] },
            doc! { "_id": "dee", "spent": [] },
        ]
    );
    // The combined form: equality first, then the sub-pipeline over the matches.
    let combined = run(
        &customers,
        vec![
            doc! { "$match": { "_id": "bob" } },
            doc! { "$lookup": {
                "from": "orders", "localField": "_id", "foreignField": "cust",
                "pipeline": [{ "$sort": { "_id": -1 } }, { "$project": { "_id": 1 } }],
                "as": "orders",
            } },
        ],
    )
    .await;
    assert_eq!(combined, vec![doc! { "_id": "bob", "city": "Oslo", "orders": [{ "_id": 5 }, { "_id": 2 }] }]);
    // An array local field joins each element; a missing one joins null and missing fields.
    let union = run(
        &customers,
        vec![
            doc! { "$match": { "_id": "dee" } },
            doc! { "$unionWith": { "coll": "orders", "pipeline": [{ "$match": { "_id": 2 } }, { "$project": { "cust": 1 } }] } },
        ],
    )
    .await;
    assert_eq!(union, vec![doc! { "_id": "dee", "city": "Rome" }, doc! { "_id": 2, "cust": "bob" }]);

    let error =
        run_err(&db, "orders", vec![doc! { "$lookup": { "from": "customers", "as": "c", "localField": "cust" } }])
            .await;
    assert_eq!(error.map(|e| e.0), Some(9));
    let error = run_err(
        &db,
        "orders",
        vec![doc! { "$lookup": { "from": "customers", "localField": "a", "foreignField": "b" } }],
    )
    .await;
    assert_eq!(error.map(|e| e.0), Some(9));
    let error = run_err(
        &db,
        "orders",
        vec![doc! { "$lookup": { "from": "customers", "pipeline": [{ "$out": "x" }], "as": "c" } }],
    )
    .await;
    assert_eq!(error, Some((51047, "Location51047".to_owned())));
}

#[tokio::test]
async fn documents_and_stage_errors_have_mongods_codes() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("shop");
    orders(&db).await;
    let listed: Vec<Document> = db
        .aggregate(vec![doc! { "$documents": [{ "x": 1 }, { "x": 2 }] }, doc! { "$match": { "x": 2 } }])
        .await
        .expect("aggregate")
        .try_collect()
        .await
        .expect("collect");
    assert_eq!(listed, vec![doc! { "x": 2 }]);

    let cases: Vec<(Document, i32, &str)> = vec![
        (doc! { "$bogus": 1 }, 40324, "Location40324"),
        (doc! { "$group": { "n": { "$sum": 1 } } }, 15955, "Location15955"),
        (doc! { "$group": 1 }, 15947, "Location15947"),
        (doc! { "$group": { "_id": null, "n": { "$sumo": 1 } } }, 15952, "Location15952"),
        (doc! { "$group": { "_id": null, "n": 1 } }, 40234, "Location40234"),
        (doc! { "$unwind": 1 }, 15981, "Location15981"),
        (doc! { "$unwind": "items" }, 28818, "Location28818"),
        (doc! { "$sortByCount": "cust" }, 40148, "Location40148"),
        (doc! { "$replaceRoot": {} }, 40231, "Location40231"),
        (doc! { "$setWindowFields": {} }, 40414, "Location40414"),
        (doc! { "$bucketAuto": {} }, 40246, "Location40246"),
        (doc! { "$densify": {} }, 40414, "Location40414"),
        (doc! { "$listCatalog": {} }, 238, "NotImplemented"),
    ];
    for (stage, expected, name) in cases {
        let error = run_err(&db, "orders", vec![stage.clone()]).await;
        assert_eq!(error, Some((expected, name.to_owned())), "{stage}");
    }
    let two_fields = doc! { "$match": {}, "$limit": 1 };
    assert_eq!(run_err(&db, "orders", vec![two_fields]).await.map(|e| e.0), Some(40323));
}

#[tokio::test]
async fn blocking_stages_keep_their_memory_limit_without_allow_disk_use() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("shop");
    let coll = db.collection::<Document>("big");
    let filler = "x".repeat(1000);
    coll.insert_many((0..200).map(|i| doc! { "_id": i, "s": &filler })).await.expect("insert");
    server
        .admin(doc! { "setParameter": 1, "internalQueryMaxBlockingSortMemoryUsageBytes": 50_000 })
        .await
        .expect("setParameter");
    let group = doc! { "$group": { "_id": "$_id", "s": { "$first": "$s" } } };
    let sort = doc! { "$sort": { "s": 1, "_id": -1 } };
    let messages = [
        "PlanExecutor error during aggregation :: caused by :: Exceeded memory limit for $group",
        "PlanExecutor error during aggregation :: caused by :: Sort exceeded memory limit of 50000 bytes",
    ];
    for (stage, message) in [group, sort].into_iter().zip(messages) {
        let command = doc! { "aggregate": "big", "pipeline": [stage.clone()], "cursor": {}, "allowDiskUse": false };
        let error = db.run_command(command).await.expect_err("over the limit");
        assert_eq!(code(&error), Some((292, "QueryExceededMemoryLimitNoDiskUseAllowed".to_owned())), "{stage}");
        let ErrorKind::Command(failure) = error.kind.as_ref() else { panic!("{error}") };
        assert!(failure.message.starts_with(message), "{}", failure.message);
        // With allowDiskUse (the default) the stage runs to the end.
        let all = run(&coll, vec![stage, doc! { "$count": "n" }]).await;
        assert_eq!(all, vec![doc! { "n": 200 }]);
    }
}

#[tokio::test]
async fn out_replaces_the_target_at_once_with_its_indexes_and_validator() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("shop");
    let orders = orders(&db).await;
    let report = db.collection::<Document>("report");
    report.insert_one(doc! { "_id": "old" }).await.expect("insert");
    db.run_command(doc! { "createIndexes": "report", "indexes": [{ "key": { "total": -1 }, "name": "total_-1" }] })
        .await
        .expect("index");
    let written = run(
        &orders,
        vec![
            doc! { "$group": { "_id": "$cust", "total": { "$sum": 1 } } },
            doc! { "$sort": { "_id": 1 } },
            doc! { "$out": "report" },
        ],
    )
    .await;
    assert!(written.is_empty(), "$out returns no documents");
    let stored: Vec<Document> =
        report.find(doc! {}).sort(doc! { "_id": 1 }).await.expect("find").try_collect().await.expect("collect");
    assert_eq!(
        stored,
        vec![doc! { "_id": "ann", "total": 2 }, doc! { "_id": "bob", "total": 2 }, doc! { "_id": "cy", "total": 1 }]
    );
    let names = report.list_index_names().await.expect("indexes");
    assert_eq!(names, vec!["_id_".to_owned(), "total_-1".to_owned()]);
    let collections = db.list_collection_names().await.expect("list");
    assert!(!collections.iter().any(|c| c.starts_with("tmp.agg_out.")), "{collections:?}");

    // A failure half-way (a duplicate _id) leaves the old target whole and no temporary.
    let error = run_err(&db, "orders", vec![doc! { "$project": { "_id": "$cust" } }, doc! { "$out": "report" }]).await;
    assert_eq!(error.map(|e| e.0), Some(11000));
    assert_eq!(report.count_documents(doc! {}).await.expect("count"), 3);
    let collections = db.list_collection_names().await.expect("list");
    assert!(!collections.iter().any(|c| c.starts_with("tmp.agg_out.")), "{collections:?}");

    // The target's validator applies unless bypassDocumentValidation.
    db.run_command(doc! { "collMod": "report", "validator": { "total": { "$type": "int" } } }).await.expect("collMod");
    let bad = vec![doc! { "$project": { "total": "$cust" } }, doc! { "$out": "report" }];
    assert_eq!(run_err(&db, "orders", bad.clone()).await.map(|e| e.0), Some(121));
    let bypass = doc! { "aggregate": "orders", "pipeline": bad, "cursor": {}, "bypassDocumentValidation": true };
    db.run_command(bypass).await.expect("bypassed");
    assert_eq!(report.count_documents(doc! { "total": "ann" }).await.expect("count"), 2);

    let error = run_err(&db, "orders", vec![doc! { "$out": "report" }, doc! { "$match": {} }]).await;
    assert_eq!(error, Some((40601, "Location40601".to_owned())));
    let error = run_err(&db, "orders", vec![doc! { "$out": "system.x" }]).await;
    assert_eq!(error.map(|e| e.0), Some(17385));
}

#[tokio::test]
async fn merge_applies_each_mode_pair() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("shop");
    let orders = orders(&db).await;
    let totals = db.collection::<Document>("totals");
    totals
        .insert_many([doc! { "_id": "ann", "total": 0, "note": "vip" }, doc! { "_id": "zed", "total": 1 }])
        .await
        .expect("insert");
    let group = doc! { "$group": { "_id": "$cust", "total": { "$sum": 1 } } };
    let all = |c: &Collection<Document>| {
        let c = c.clone();
        async move {
            c.find(doc! {})
                .sort(doc! { "_id": 1 })
                .await
                .expect("find")
                .try_collect::<Vec<Document>>()
                .await
                .expect("collect")
        }
    };

    // Defaults: merge into matches, insert the rest.
    run(&orders, vec![group.clone(), doc! { "$merge": "totals" }]).await;
    assert_eq!(
        all(&totals).await,
        vec![
            doc! { "_id": "ann", "total": 2, "note": "vip" },
            doc! { "_id": "bob", "total": 2 },
            doc! { "_id": "cy", "total": 1 },
            doc! { "_id": "zed", "total": 1 },
        ]
    );
    // replace + discard: matches are replaced, the rest dropped.
    let merge = doc! { "$merge": { "into": "totals", "whenMatched": "replace", "whenNotMatched": "discard" } };
    run(&orders, vec![doc! { "$match": { "cust": "ann" } }, group.clone(), merge]).await;
    assert_eq!(all(&totals).await.first(), Some(&doc! { "_id": "ann", "total": 2 }));
    // A pipeline whenMatched with $$new.
    let merge = doc! { "$merge": { "into": "totals", "whenMatched": [{ "$set": { "total": { "$add": ["$total", "$$new.total"] } } }] } };
    run(&orders, vec![group.clone(), merge]).await;
    assert_eq!(all(&totals).await.first(), Some(&doc! { "_id": "ann", "total": 4 }));
    // keepExisting keeps, fail fails on the first match with a DuplicateKey.
    let keep = doc! { "$merge": { "into": "totals", "whenMatched": "keepExisting" } };
    run(&orders, vec![group.clone(), keep]).await;
    assert_eq!(all(&totals).await.first(), Some(&doc! { "_id": "ann", "total": 4 }));
    let fail = doc! { "$merge": { "into": "totals", "whenMatched": "fail" } };
    assert_eq!(run_err(&db, "orders", vec![group.clone(), fail]).await.map(|e| e.0), Some(11000));
    let no_match = doc! { "$merge": { "into": "totals", "whenNotMatched": "fail" } };
    let error = run_err(&db, "orders", vec![doc! { "$project": { "_id": "new" } }, no_match]).await;
    assert_eq!(error, Some((13113, "MergeStageNoMatchingDocument".to_owned())));

    // Other `on` fields need a unique index over exactly them.
    let by_name = doc! { "$merge": { "into": "totals", "on": "name" } };
    assert_eq!(run_err(&db, "orders", vec![by_name.clone()]).await.map(|e| e.0), Some(51183));
    db.run_command(doc! { "createIndexes": "totals", "indexes": [{ "key": { "name": 1 }, "name": "name_1", "unique": true, "partialFilterExpression": { "name": { "$exists": true } } }] })
        .await
        .expect("index");
    assert_eq!(
        run_err(&db, "orders", vec![by_name]).await.map(|e| e.0),
        Some(51183),
        "a partial index does not qualify"
    );
    let bad_pair = doc! { "$merge": { "into": "totals", "whenMatched": "keepExisting", "whenNotMatched": "discard" } };
    assert_eq!(run_err(&db, "orders", vec![bad_pair]).await.map(|e| e.0), Some(51181));
    let let_without_pipeline = doc! { "$merge": { "into": "totals", "let": { "x": 1 } } };
    assert_eq!(run_err(&db, "orders", vec![let_without_pipeline]).await.map(|e| e.0), Some(51199));
}

#[tokio::test]
async fn a_temporary_out_collection_left_by_a_crash_is_dropped_at_restart() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("shop");
    // What a crash in the middle of `$out` leaves: a temporary collection with documents.
    let temp = db.collection::<Document>("tmp.agg_out.crashed");
    temp.insert_many((0..50).map(|i| doc! { "_id": i })).await.expect("insert");
    db.collection::<Document>("kept").insert_one(doc! { "_id": 1 }).await.expect("insert");
    let server = server.crash_and_restart(&[]);
    let db = server.client("").await.database("shop");
    let names = db.list_collection_names().await.expect("list");
    assert_eq!(names, vec!["kept".to_owned()]);
}

#[tokio::test]
async fn list_local_sessions_lists_the_sessions_drivers_used() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let mut session = client.start_session().await.expect("session");
    let db = client.database("shop");
    db.run_command(doc! { "ping": 1 }).session(&mut session).await.expect("ping");
    let id = session.id().get("id").cloned().expect("lsid");
    let listed: Vec<Document> = db
        .aggregate(vec![doc! { "$listLocalSessions": { "allUsers": true } }, doc! { "$match": { "_id.id": id } }])
        .await
        .expect("aggregate")
        .try_collect()
        .await
        .expect("collect");
    assert_eq!(listed.len(), 1, "{listed:?}");
    let entry = listed.first().expect("one session");
    assert!(entry.get_datetime("lastUse").is_ok(), "{entry}");
    let error = run_err(&db, "orders", vec![doc! { "$listLocalSessions": {} }]).await;
    assert_eq!(error.map(|e| e.0), Some(73));
}

#[tokio::test]
async fn explain_shows_each_stage_with_its_counts() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("shop");
    orders_by_cust(&db).await;
    let pipeline = vec![
        doc! { "$match": { "cust": { "$in": ["ann", "bob"] } } },
        doc! { "$group": { "_id": "$cust", "n": { "$sum": 1 } } },
        doc! { "$match": { "n": { "$gte": 2 } } },
    ];
    let explained = db
        .run_command(doc! { "explain": { "aggregate": "orders", "pipeline": pipeline.clone(), "cursor": {} }, "verbosity": "executionStats" })
        .await
        .expect("explain");
    let stages = explained.get_array("stages").expect("stages");
    assert_eq!(stages.len(), 3, "{explained}");
    let cursor = stages.first().and_then(Bson::as_document).expect("$cursor");
    assert_eq!(cursor.get_i64("nReturned").ok(), Some(4));
    let winning = cursor
        .get_document("$cursor")
        .and_then(|c| c.get_document("queryPlanner"))
        .and_then(|q| q.get_document("winningPlan"))
        .expect("plan");
    assert_eq!(winning.get_document("inputStage").and_then(|i| i.get_str("stage")).ok(), Some("IXSCAN"), "{winning}");
    let group = stages.get(1).and_then(Bson::as_document).expect("$group");
    assert!(group.contains_key("$group"));
    assert_eq!(group.get_i64("nReturned").ok(), Some(2));
    assert!(group.get_i64("executionTimeMillisEstimate").is_ok(), "{group}");
    let last = stages.get(2).and_then(Bson::as_document).expect("$match");
    assert_eq!(last.get_i64("nReturned").ok(), Some(2));
    // At queryPlanner verbosity nothing runs and no stage has counts.
    let planned = db
        .run_command(doc! { "explain": { "aggregate": "orders", "pipeline": pipeline, "cursor": {} }, "verbosity": "queryPlanner" })
        .await
        .expect("explain");
    let group = planned.get_array("stages").ok().and_then(|s| s.get(1)).and_then(Bson::as_document).expect("$group");
    assert!(!group.contains_key("nReturned"), "{group}");
}

#[tokio::test]
async fn a_match_after_a_set_or_unwind_moves_ahead_and_uses_the_index() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("shop");
    let orders = orders_by_cust(&db).await;
    let pipeline = vec![
        doc! { "$set": { "double": { "$multiply": ["$day", 2] } } },
        doc! { "$unwind": "$items" },
        doc! { "$match": { "cust": "bob", "items": "pen", "double": { "$gte": 2 } } },
        doc! { "$project": { "_id": 1, "items": 1, "double": 1 } },
    ];
    let got = run(&orders, pipeline.clone()).await;
    assert_eq!(
        got,
        vec![doc! { "_id": 2, "items": "pen", "double": 2 }, doc! { "_id": 5, "items": "pen", "double": 6 }]
    );
    let explained = db
        .run_command(doc! { "explain": { "aggregate": "orders", "pipeline": pipeline, "cursor": {} }, "verbosity": "queryPlanner" })
        .await
        .expect("explain");
    let stages = explained.get_array("stages").expect("stages");
    let cursor =
        stages.first().and_then(Bson::as_document).and_then(|c| c.get_document("$cursor").ok()).expect("$cursor");
    let planner = cursor.get_document("queryPlanner").expect("queryPlanner");
    let winning = planner.get_document("winningPlan").expect("plan");
    assert_eq!(winning.get_document("inputStage").and_then(|i| i.get_str("stage")).ok(), Some("IXSCAN"), "{winning}");
    assert_eq!(winning.get_document("inputStage").and_then(|i| i.get_str("indexName")).ok(), Some("cust_1"));
    // The rest of the filter waits only for the stage that writes its field.
    let shown: Vec<&Document> = stages.iter().skip(1).filter_map(Bson::as_document).collect();
    assert_eq!(
        shown,
        vec![
            &doc! { "$set": { "double": { "$multiply": ["$day", 2] } } },
            &doc! { "$match": { "double": { "$gte": 2 } } },
            &doc! { "$unwind": "$items" },
            &doc! { "$match": { "items": "pen" } },
            &doc! { "$project": { "_id": 1, "items": 1, "double": 1 } },
        ]
    );
}

#[tokio::test]
async fn a_group_past_its_memory_limit_spills_with_allow_disk_use_and_merges_exactly() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("shop");
    let coll = db.collection::<Document>("big");
    let filler = "y".repeat(200);
    coll.insert_many((0..600).map(|i| {
        doc! { "_id": i, "k": format!("{}{filler}", i % 37), "v": i, "half": f64::from(i) / 2.0, "t": i % 3 }
    }))
    .await
    .expect("insert");
    server
        .admin(doc! { "setParameter": 1, "internalQueryMaxBlockingSortMemoryUsageBytes": 20_000 })
        .await
        .expect("setParameter");
    let group = doc! { "$group": {
        "_id": "$k",
        "n": { "$sum": 1 },
        "total": { "$sum": "$v" },
        "avg": { "$avg": "$half" },
        "first": { "$first": "$v" },
        "last": { "$last": "$v" },
        "all": { "$push": "$v" },
        "kinds": { "$addToSet": "$t" },
        "top": { "$max": "$v" },
    } };
    assert_eq!(without_disk_use(&db, &group).await, Some((292, "QueryExceededMemoryLimitNoDiskUseAllowed".to_owned())));
    let got = run(
        &coll,
        vec![
            group,
            doc! { "$set": { "kinds": { "$sortArray": { "input": "$kinds", "sortBy": 1 } } } },
            doc! { "$sort": { "first": 1 } },
        ],
    )
    .await;
    let expected: Vec<Document> = (0..37)
        .map(|g: i32| {
            let members: Vec<i32> = (0..600).filter(|i| i % 37 == g).collect();
            let total: i32 = members.iter().sum();
            let avg = members.iter().map(|&i| f64::from(i) / 2.0).sum::<f64>() / members.len() as f64;
            let kinds: Vec<i32> =
                if members.len() >= 3 { vec![0, 1, 2] } else { members.iter().map(|i| i % 3).collect() };
            doc! {
                "_id": format!("{g}{filler}"), "n": members.len() as i32, "total": total, "avg": avg,
                "first": members.first().copied(), "last": members.last().copied(), "all": members.clone(),
                "kinds": kinds, "top": members.last().copied(),
            }
        })
        .collect();
    assert_eq!(got, expected);
    assert_eq!(spill_files(&server), 0, "the group's runs are deleted");
    // $bucketAuto sorts its input the same way: it spills too.
    let buckets = doc! { "$bucketAuto": { "groupBy": "$v", "buckets": 4, "output": { "n": { "$sum": 1 }, "k": { "$first": "$t" } } } };
    assert_eq!(
        without_disk_use(&db, &buckets).await,
        Some((292, "QueryExceededMemoryLimitNoDiskUseAllowed".to_owned()))
    );
    assert_eq!(
        run(&coll, vec![buckets]).await,
        vec![
            doc! { "_id": { "min": 0, "max": 150 }, "n": 150, "k": 0 },
            doc! { "_id": { "min": 150, "max": 300 }, "n": 150, "k": 0 },
            doc! { "_id": { "min": 300, "max": 450 }, "n": 150, "k": 0 },
            doc! { "_id": { "min": 450, "max": 599 }, "n": 150, "k": 0 },
        ]
    );
    assert_eq!(spill_files(&server), 0, "the sort's runs are deleted");
    // $setWindowFields sorts by partition and sortBy the same way, one partition in memory.
    let windows = doc! { "$setWindowFields": {
        "partitionBy": "$t",
        "sortBy": { "v": -1 },
        "output": {
            "run": { "$sum": "$v", "window": { "documents": ["unbounded", "current"] } },
            "rank": { "$rank": {} },
        },
    } };
    assert_eq!(
        without_disk_use(&db, &windows).await,
        Some((292, "QueryExceededMemoryLimitNoDiskUseAllowed".to_owned()))
    );
    let got = run(&coll, vec![windows, doc! { "$project": { "_id": 0, "t": 1, "v": 1, "run": 1, "rank": 1 } }]).await;
    let mut expected = Vec::new();
    for t in 0..3 {
        let mut total = 0;
        for (rank, v) in (0..600).rev().filter(|v| v % 3 == t).enumerate() {
            total += v;
            expected.push(doc! { "v": v, "t": t, "run": total, "rank": rank as i32 + 1 });
        }
    }
    assert_eq!(got, expected);
    assert_eq!(spill_files(&server), 0, "the window's sort runs are deleted");
}

#[tokio::test]
async fn plan_cache_stats_lists_the_shapes_the_planner_cached() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("shop");
    let orders = orders(&db).await;
    db.run_command(doc! { "createIndexes": "orders", "indexes": [
        { "key": { "cust": 1 }, "name": "cust_1" },
        { "key": { "day": 1 }, "name": "day_1" },
    ] })
    .await
    .expect("indexes");
    // One candidate index: nothing competes, nothing is cached.
    orders.find_one(doc! { "amt": 10, "cust": "ann" }).await.expect("find");
    assert_eq!(run(&orders, vec![doc! { "$planCacheStats": {} }]).await, Vec::<Document>::new());
    // Two candidates: the trial's winner is cached under the shape.
    orders.find_one(doc! { "cust": "bob", "day": 3 }).await.expect("find");
    let entries =
        run(&orders, vec![doc! { "$planCacheStats": {} }, doc! { "$project": { "timeOfCreation": 0, "host": 0 } }])
            .await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = entries.first().expect("entry");
    assert_eq!(
        entry.get_document("createdFromQuery").ok(),
        Some(&doc! { "query": { "cust": "bob", "day": 3 }, "sort": {}, "projection": {} })
    );
    assert_eq!(entry.get_bool("isActive").ok(), Some(true));
    assert!(entry.get_i64("estimatedSizeBytes").is_ok_and(|n| n > 0), "{entry}");
    let index = entry
        .get_document("cachedPlan")
        .and_then(|p| p.get_document("inputStage"))
        .and_then(|i| i.get_str("indexName"));
    assert!(matches!(index, Ok("cust_1" | "day_1")), "{entry}");
    assert_eq!(entry.get_str("queryHash").map(str::len).ok(), Some(16), "{entry}");
    let error = run_err(&db, "orders", vec![doc! { "$planCacheStats": { "x": 1 } }]).await;
    assert_eq!(error, Some((9, "FailedToParse".to_owned())));
    let error = run_err(&db, "orders", vec![doc! { "$match": {} }, doc! { "$planCacheStats": {} }]).await;
    assert_eq!(error.map(|e| e.0), Some(40602));
}

/// The error `stage` fails with over the collection `big` without `allowDiskUse`.
async fn without_disk_use(db: &Database, stage: &Document) -> Option<(i32, String)> {
    let command = doc! { "aggregate": "big", "pipeline": [stage.clone()], "cursor": {}, "allowDiskUse": false };
    code(&db.run_command(command).await.expect_err("over the limit"))
}

/// The spill files under the server's `_tmp`.
fn spill_files(server: &TestServer) -> usize {
    std::fs::read_dir(server.dir.path().join("db").join("_tmp")).map_or(0, |entries| entries.count())
}

#[tokio::test]
async fn a_sort_past_its_memory_limit_spills_with_allow_disk_use_and_cleans_up() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("shop");
    let coll = db.collection::<Document>("big");
    let filler = "x".repeat(500);
    coll.insert_many((0..400).map(|i| doc! { "_id": i, "k": (i * 7919) % 397, "s": &filler })).await.expect("insert");
    server
        .admin(doc! { "setParameter": 1, "internalQueryMaxBlockingSortMemoryUsageBytes": 20_000 })
        .await
        .expect("setParameter");
    let sorted = run(&coll, vec![doc! { "$sort": { "k": -1, "_id": 1 } }, doc! { "$project": { "k": 1 } }]).await;
    assert_eq!(sorted.len(), 400);
    let keys: Vec<i32> = sorted.iter().filter_map(|d| d.get_i32("k").ok()).collect();
    assert!(keys.windows(2).all(|w| w[0] >= w[1]), "sorted descending");
    assert_eq!(sorted.first(), Some(&doc! { "_id": 208, "k": 396 }));
    assert_eq!(spill_files(&server), 0, "the runs are deleted once read");
    // A cursor left half-read keeps its runs until it is killed.
    let mut cursor = coll.aggregate(vec![doc! { "$sort": { "k": 1 } }]).batch_size(10).await.expect("aggregate");
    assert!(cursor.try_next().await.expect("first").is_some());
    assert!(spill_files(&server) > 0, "runs exist while the cursor lives");
    drop(cursor);
    let gone =
        common::eventually_async(std::time::Duration::from_secs(5), || std::future::ready(spill_files(&server) == 0))
            .await;
    assert!(gone, "killCursors deletes them");
    // find spills the same way.
    let found: Vec<Document> = coll
        .find(doc! {})
        .sort(doc! { "k": 1, "_id": 1 })
        .allow_disk_use(true)
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("collect");
    assert_eq!(found.len(), 400);
    let error = db
        .run_command(doc! { "find": "big", "sort": { "k": 1 }, "allowDiskUse": false })
        .await
        .expect_err("over the limit");
    assert_eq!(code(&error).map(|e| e.0), Some(292));
}

#[tokio::test]
async fn spill_files_left_by_a_crash_are_deleted_at_start() {
    let dir = tempfile::tempdir().expect("dir");
    let tmp = dir.path().join("db").join("_tmp");
    std::fs::create_dir_all(&tmp).expect("mkdir");
    std::fs::write(tmp.join("sort-1-1.bson"), b"left over").expect("write");
    let server = TestServer::start_in(dir, &[]);
    server.client("").await.database("x").run_command(doc! { "ping": 1 }).await.expect("ping");
    assert_eq!(spill_files(&server), 0);
}

#[tokio::test]
async fn sample_bucket_auto_and_graph_lookup() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("shop");
    let numbers = db.collection::<Document>("numbers");
    numbers.insert_many((0..100).map(|i| doc! { "_id": i, "v": i / 10 })).await.expect("insert");
    let sampled = run(&numbers, vec![doc! { "$sample": { "size": 7 } }]).await;
    assert_eq!(sampled.len(), 7);
    let mut ids: Vec<i32> = sampled.iter().filter_map(|d| d.get_i32("_id").ok()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 7, "seven distinct documents");
    assert_eq!(run(&numbers, vec![doc! { "$sample": { "size": 500 } }]).await.len(), 100);
    assert_eq!(run_err(&db, "numbers", vec![doc! { "$sample": { "size": -1 } }]).await.map(|e| e.0), Some(28747));
    assert_eq!(run_err(&db, "numbers", vec![doc! { "$sample": {} }]).await.map(|e| e.0), Some(28749));

    // Ten values, ten documents each: three buckets keep equal values together.
    let buckets = run(&numbers, vec![doc! { "$bucketAuto": { "groupBy": "$v", "buckets": 3 } }]).await;
    assert_eq!(
        buckets,
        vec![
            doc! { "_id": { "min": 0, "max": 4 }, "count": 40 },
            doc! { "_id": { "min": 4, "max": 8 }, "count": 40 },
            doc! { "_id": { "min": 8, "max": 9 }, "count": 20 },
        ]
    );
    assert_eq!(
        run_err(&db, "numbers", vec![doc! { "$bucketAuto": { "groupBy": "$v" } }]).await.map(|e| e.0),
        Some(40246)
    );

    let staff = db.collection::<Document>("staff");
    staff
        .insert_many([
            doc! { "_id": 1, "name": "Dev" },
            doc! { "_id": 2, "name": "Eliot", "reportsTo": "Dev" },
            doc! { "_id": 3, "name": "Ron", "reportsTo": "Eliot" },
            doc! { "_id": 4, "name": "Andrew", "reportsTo": "Eliot" },
            doc! { "_id": 5, "name": "Asya", "reportsTo": "Ron" },
        ])
        .await
        .expect("insert staff");
    let limited = run(
        &staff,
        vec![
            doc! { "$match": { "name": "Asya" } },
            doc! { "$graphLookup": {
                "from": "staff", "startWith": "$reportsTo", "connectFromField": "reportsTo",
                "connectToField": "name", "as": "chain", "maxDepth": 1, "depthField": "d",
            } },
            doc! { "$unwind": "$chain" },
            doc! { "$sort": { "chain.d": 1 } },
            doc! { "$project": { "_id": 0, "name": "$chain.name", "d": "$chain.d" } },
        ],
    )
    .await;
    assert_eq!(
        limited,
        vec![doc! { "name": "Ron", "d": Bson::Int64(0) }, doc! { "name": "Eliot", "d": Bson::Int64(1) }]
    );
    let error = run_err(&db, "staff", vec![doc! { "$graphLookup": { "from": "staff", "as": "x" } }]).await;
    assert_eq!(error.map(|e| e.0), Some(40105));
}

#[tokio::test]
async fn a_sort_before_a_limit_keeps_only_the_top_documents() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("shop");
    let coll = db.collection::<Document>("big");
    let filler = "x".repeat(1000);
    coll.insert_many((0..200).map(|i| doc! { "_id": i, "k": (i * 37) % 200, "s": &filler })).await.expect("insert");
    server
        .admin(doc! { "setParameter": 1, "internalQueryMaxBlockingSortMemoryUsageBytes": 20_000 })
        .await
        .expect("setParameter");
    // 200 KB of input against a 20 KB limit: only the top three are held, so no 292.
    let top = vec![
        doc! { "$match": { "_id": { "$gte": 0 } } },
        doc! { "$project": { "k": 1 } },
        doc! { "$sort": { "k": -1 } },
        doc! { "$limit": 3 },
    ];
    let command = doc! { "aggregate": "big", "pipeline": [doc! { "$addFields": { "t": 1 } }, doc! { "$sort": { "k": -1 } }, doc! { "$limit": 3 }, doc! { "$project": { "k": 1 } }], "cursor": {}, "allowDiskUse": false };
    let reply = db.run_command(command).await.expect("top three");
    let batch = reply.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("batch").clone();
    assert_eq!(
        batch,
        vec![
            Bson::Document(doc! { "_id": 27, "k": 199 }),
            Bson::Document(doc! { "_id": 54, "k": 198 }),
            Bson::Document(doc! { "_id": 81, "k": 197 })
        ]
    );
    assert_eq!(run(&coll, top).await.len(), 3);
    // Without the limit the same sort passes the limit.
    let command = doc! { "aggregate": "big", "pipeline": [doc! { "$addFields": { "t": 1 } }, doc! { "$sort": { "k": -1 } }], "cursor": {}, "allowDiskUse": false };
    assert_eq!(code(&db.run_command(command).await.expect_err("over")).map(|e| e.0), Some(292));
}

#[tokio::test]
async fn a_whole_collection_count_reads_the_stored_total() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("shop");
    let orders = orders(&db).await;
    db.run_command(doc! { "profile": 2 }).await.expect("profile");
    // What countDocuments({}) sends.
    let counted = run(
        &orders,
        vec![doc! { "$match": {} }, doc! { "$group": { "_id": 1, "n": { "$sum": 1 }, "twice": { "$sum": 2.0 } } }],
    )
    .await;
    assert_eq!(counted, vec![doc! { "_id": 1, "n": 5, "twice": 10.0 }]);
    assert_eq!(orders.count_documents(doc! {}).await.expect("count"), 5);
    db.run_command(doc! { "profile": 0 }).await.expect("profile off");
    let profiled: Vec<Document> = db
        .collection::<Document>("system.profile")
        .find(doc! { "command.aggregate": "orders" })
        .await
        .expect("profile")
        .try_collect()
        .await
        .expect("collect");
    assert_eq!(profiled.len(), 2, "{profiled:?}");
    for entry in &profiled {
        // No document was read: the profile shows no scan at all.
        let examined = entry
            .get("docsExamined")
            .and_then(Bson::as_i64)
            .or_else(|| entry.get_i32("docsExamined").ok().map(i64::from));
        assert_eq!(examined.unwrap_or(0), 0, "{entry}");
    }
    // A filtered count reads the documents.
    assert_eq!(orders.count_documents(doc! { "cust": "ann" }).await.expect("count"), 2);
    let empty = db.collection::<Document>("nothing");
    assert_eq!(empty.count_documents(doc! {}).await.expect("count"), 0);
}

#[tokio::test]
async fn index_stats_count_the_queries_that_scanned_each_index() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("shop");
    let orders = orders_by_cust(&db).await;
    for _ in 0..3 {
        orders.find_one(doc! { "cust": "ann" }).await.expect("find");
    }
    let stats = run(&orders, vec![doc! { "$indexStats": {} }, doc! { "$sort": { "name": 1 } }]).await;
    assert_eq!(stats.len(), 2, "{stats:?}");
    let cust = stats.iter().find(|s| s.get_str("name").ok() == Some("cust_1")).expect("cust_1");
    assert_eq!(cust.get_document("accesses").and_then(|a| a.get_i64("ops")).ok(), Some(3), "{cust}");
    assert_eq!(cust.get_document("key").ok(), Some(&doc! { "cust": 1 }));
    assert!(cust.get_document("accesses").and_then(|a| a.get_datetime("since")).is_ok());
    let error = run_err(&db, "orders", vec![doc! { "$match": {} }, doc! { "$indexStats": {} }]).await;
    assert_eq!(error.map(|e| e.0), Some(40602));
}

#[tokio::test]
async fn redact_keeps_prunes_and_descends_level_by_level() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("shop");
    let docs = db.collection::<Document>("docs");
    docs.insert_many([
        doc! { "_id": 1, "level": 1, "a": { "level": 5, "x": 1 }, "b": [{ "level": 1, "y": 2 }, { "level": 9, "z": 3 }, 7] },
        doc! { "_id": 2, "level": 5 },
    ])
    .await
    .expect("insert");
    let redacted = run(
        &docs,
        vec![doc! { "$redact": { "$cond": { "if": { "$lte": ["$level", 3] }, "then": "$$DESCEND", "else": "$$PRUNE" } } }],
    )
    .await;
    assert_eq!(redacted, vec![doc! { "_id": 1, "level": 1, "b": [{ "level": 1, "y": 2 }, 7] }]);
    let kept = run(&docs, vec![doc! { "$redact": "$$KEEP" }, doc! { "$count": "n" }]).await;
    assert_eq!(kept, vec![doc! { "n": 2 }]);
    let error = run_err(&db, "docs", vec![doc! { "$redact": "$level" }]).await;
    assert_eq!(error.map(|e| e.0), Some(17053));
    // `$$ROOT` stays the whole document at every level: a level is kept while its own level
    // is at most the top one's.
    let by_root = run(
        &docs,
        vec![
            doc! { "$match": { "_id": 1 } },
            doc! { "$redact": { "$cond": { "if": { "$lte": ["$level", "$$ROOT.level"] }, "then": "$$DESCEND", "else": "$$PRUNE" } } },
        ],
    )
    .await;
    assert_eq!(by_root, vec![doc! { "_id": 1, "level": 1, "b": [{ "level": 1, "y": 2 }, 7] }]);
}

#[tokio::test]
async fn array_expressions_and_variable_scopes() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("shop");
    let coll = db.collection::<Document>("arrays");
    coll.insert_one(doc! { "_id": 1, "a": [1, 2, 3, 4], "b": [5], "n": Bson::Null }).await.expect("insert");
    let shaped = run(
        &coll,
        vec![doc! { "$project": {
            "_id": 0,
            "second": { "$arrayElemAt": ["$a", 1] },
            "fromEnd": { "$arrayElemAt": ["$a", -1] },
            "outside": { "$arrayElemAt": ["$a", 9] },
            "first": { "$first": "$a" },
            "last": { "$last": "$a" },
            "both": { "$concatArrays": ["$a", "$b"] },
            "nullCat": { "$concatArrays": ["$a", "$n"] },
            "isArray": { "$isArray": "$a" },
            "even": { "$filter": { "input": "$a", "as": "x", "cond": { "$eq": [{ "$mod": ["$$x", 2] }, 0] } } },
            "firstEven": { "$filter": { "input": "$a", "cond": { "$eq": [{ "$mod": ["$$this", 2] }, 0] }, "limit": 1 } },
            "doubled": { "$map": { "input": "$a", "in": { "$multiply": ["$$this", 2] } } },
            "sum": { "$reduce": { "input": "$a", "initialValue": 0, "in": { "$add": ["$$value", "$$this"] } } },
            "scoped": { "$let": { "vars": { "k": 10, "a": "$b" }, "in": { "$add": ["$$k", { "$first": "$$a" }] } } },
            "nullMap": { "$map": { "input": "$n", "in": 1 } },
        } }],
    )
    .await;
    assert_eq!(
        shaped,
        vec![doc! {
            "second": 2, "fromEnd": 4, "first": 1, "last": 4, "both": [1, 2, 3, 4, 5], "nullCat": Bson::Null,
            "isArray": true, "even": [2, 4], "firstEven": [2], "doubled": [2, 4, 6, 8], "sum": 10, "scoped": 15,
            "nullMap": Bson::Null,
        }]
    );
    let bad = |expression: Document| {
        let db = db.clone();
        async move { run_err(&db, "arrays", vec![doc! { "$project": { "x": expression } }]).await.map(|e| e.0) }
    };
    assert_eq!(bad(doc! { "$arrayElemAt": [1, 0] }).await, Some(28689));
    assert_eq!(bad(doc! { "$map": { "input": "$a" } }).await, Some(16882));
    assert_eq!(bad(doc! { "$filter": { "input": "$a", "cond": true, "bogus": 1 } }).await, Some(28647));
    assert_eq!(bad(doc! { "$reduce": { "input": "$a", "in": 1 } }).await, Some(40078));
    assert_eq!(bad(doc! { "$concatArrays": ["$a", 1] }).await, Some(28664));
    assert_eq!(bad(doc! { "$map": { "input": 5, "in": 1 } }).await, Some(16883));
}

#[tokio::test]
async fn sub_pipelines_nest_at_most_twenty_deep() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("shop");
    orders(&db).await;
    // Each level reads one document, so twenty levels stay cheap.
    let nest = |levels: usize| {
        let mut pipeline: Vec<Document> = vec![doc! { "$limit": 1 }];
        for _ in 0..levels {
            pipeline =
                vec![doc! { "$limit": 1 }, doc! { "$lookup": { "from": "orders", "pipeline": pipeline, "as": "x" } }];
        }
        pipeline
    };
    // Twenty levels run; twenty-one are refused before anything runs.
    let ran = run(&db.collection::<Document>("orders"), [nest(20), vec![doc! { "$count": "n" }]].concat()).await;
    assert_eq!(ran, vec![doc! { "n": 1 }]);
    let error = run_err(&db, "orders", nest(21)).await;
    assert_eq!(error, Some((232, "MaxSubPipelineDepthExceeded".to_owned())));
}

#[tokio::test]
async fn switch_takes_the_first_true_branch_or_the_default() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("shop");
    let orders = orders(&db).await;
    let sized = run(
        &orders,
        vec![
            doc! { "$match": { "amt": { "$type": "number" } } },
            doc! { "$project": { "size": { "$switch": {
                "branches": [
                    { "case": { "$gte": ["$amt", 10] }, "then": "big" },
                    { "case": { "$gte": ["$amt", 5] }, "then": "medium" },
                ],
                "default": "small",
            } } } },
        ],
    )
    .await;
    let sizes: Vec<&str> = sized.iter().filter_map(|d| d.get_str("size").ok()).collect();
    assert_eq!(sizes, vec!["big", "small", "medium", "medium"]);
    let no_default = doc! { "$project": { "s": { "$switch": { "branches": [{ "case": false, "then": 1 }] } } } };
    assert_eq!(run_err(&db, "orders", vec![no_default]).await.map(|e| e.0), Some(40066));
    let no_branch = doc! { "$project": { "s": { "$switch": { "branches": [] } } } };
    assert_eq!(run_err(&db, "orders", vec![no_branch]).await.map(|e| e.0), Some(40068));
    let no_then = doc! { "$project": { "s": { "$switch": { "branches": [{ "case": true }] } } } };
    assert_eq!(run_err(&db, "orders", vec![no_then]).await.map(|e| e.0), Some(40065));
}
