//! Aggregation stages through the Rust driver: `$group` with its accumulators, `$unwind`,
//! `$sortByCount`, `$bucket`, `$facet`, `$lookup`, `$unionWith`, `$documents`, their memory
//! limits and their errors.

#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use common::TestServer;
use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::ErrorKind;
use mongodb::{Collection, Database};

/// The code and codeName of a command error.
fn code(error: &mongodb::error::Error) -> Option<(i32, String)> {
    match error.kind.as_ref() {
        ErrorKind::Command(e) => Some((e.code, e.code_name.clone())),
        _ => None,
    }
}

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

async fn run(coll: &Collection<Document>, pipeline: Vec<Document>) -> Vec<Document> {
    coll.aggregate(pipeline).await.expect("aggregate").try_collect().await.expect("collect")
}

async fn run_err(db: &Database, coll: &str, pipeline: Vec<Document>) -> Option<(i32, String)> {
    let command = doc! { "aggregate": coll, "pipeline": pipeline, "cursor": {} };
    code(&db.run_command(command).await.expect_err("the pipeline must fail"))
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
        (doc! { "$setWindowFields": {} }, 238, "NotImplemented"),
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
    for stage in [group, sort] {
        let command = doc! { "aggregate": "big", "pipeline": [stage.clone()], "cursor": {}, "allowDiskUse": false };
        let error = db.run_command(command).await.expect_err("over the limit");
        assert_eq!(code(&error), Some((292, "QueryExceededMemoryLimitNoDiskUseAllowed".to_owned())), "{stage}");
        // With allowDiskUse (the default) the stage runs to the end.
        let all = run(&coll, vec![stage, doc! { "$count": "n" }]).await;
        assert_eq!(all, vec![doc! { "n": 200 }]);
    }
}
