//! Views through the Rust driver: creation, reads (find, aggregate, count, distinct), views on
//! views, listing, collMod, drop, persistence, and the writes and options they refuse.

#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use common::TestServer;
use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::ErrorKind;
use mongodb::{Collection, Database};

fn code(error: &mongodb::error::Error) -> Option<i32> {
    match error.kind.as_ref() {
        ErrorKind::Command(e) => Some(e.code),
        ErrorKind::Write(mongodb::error::WriteFailure::WriteError(e)) => Some(e.code),
        _ => None,
    }
}

async fn seeded(db: &Database) -> Collection<Document> {
    let people = db.collection::<Document>("people");
    people
        .insert_many((1..=6).map(|i| doc! { "_id": i, "name": format!("p{i}"), "age": i * 10, "city": if i % 2 == 0 { "Oslo" } else { "Rome" } }))
        .await
        .expect("insert");
    db.run_command(doc! { "create": "adults", "viewOn": "people", "pipeline": [{ "$match": { "age": { "$gte": 30 } } }, { "$project": { "city": 0 } }] })
        .await
        .expect("create view");
    people
}

async fn all(coll: &Collection<Document>, filter: Document) -> Vec<Document> {
    coll.find(filter).sort(doc! { "_id": 1 }).await.expect("find").try_collect().await.expect("collect")
}

#[tokio::test]
async fn reads_of_a_view_run_its_pipeline() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("app");
    seeded(&db).await;
    let adults = db.collection::<Document>("adults");
    assert_eq!(
        all(&adults, doc! { "age": { "$lt": 50 } }).await,
        vec![doc! { "_id": 3, "name": "p3", "age": 30 }, doc! { "_id": 4, "name": "p4", "age": 40 }]
    );
    let page: Vec<Document> = adults
        .find(doc! {})
        .sort(doc! { "age": -1 })
        .skip(1)
        .limit(2)
        .projection(doc! { "name": 1, "_id": 0 })
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("collect");
    assert_eq!(page, vec![doc! { "name": "p5" }, doc! { "name": "p4" }]);
    assert_eq!(adults.count_documents(doc! {}).await.expect("count"), 4);
    assert_eq!(adults.estimated_document_count().await.expect("estimate"), 4);
    assert_eq!(adults.count_documents(doc! { "age": 60 }).await.expect("count"), 1);
    let names = adults.distinct("name", doc! { "age": { "$gt": 40 } }).await.expect("distinct");
    assert_eq!(names, vec![Bson::from("p5"), Bson::from("p6")]);
    let total: Vec<Document> = adults
        .aggregate(vec![doc! { "$group": { "_id": null, "ages": { "$sum": "$age" } } }])
        .await
        .expect("aggregate")
        .try_collect()
        .await
        .expect("collect");
    assert_eq!(total, vec![doc! { "_id": Bson::Null, "ages": 180 }]);

    // A view on a view runs both pipelines, innermost first.
    db.run_command(doc! { "create": "old", "viewOn": "adults", "pipeline": [{ "$match": { "age": { "$gte": 50 } } }] })
        .await
        .expect("view on view");
    let old = db.collection::<Document>("old");
    assert_eq!(all(&old, doc! {}).await.len(), 2);
    assert_eq!(old.count_documents(doc! {}).await.expect("count"), 2);
}

#[tokio::test]
async fn views_are_listed_modified_dropped_and_kept_across_restarts() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("app");
    seeded(&db).await;
    let reply = db.run_command(doc! { "listCollections": 1, "filter": { "type": "view" } }).await.expect("list");
    let listed = reply.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("batch").clone();
    assert_eq!(
        listed,
        vec![Bson::Document(doc! {
            "name": "adults",
            "type": "view",
            "options": { "viewOn": "people", "pipeline": [{ "$match": { "age": { "$gte": 30 } } }, { "$project": { "city": 0 } }] },
            "info": { "readOnly": true },
        })]
    );

    db.run_command(doc! { "collMod": "adults", "viewOn": "people", "pipeline": [{ "$match": { "city": "Oslo" } }] })
        .await
        .expect("collMod");
    let adults = db.collection::<Document>("adults");
    assert_eq!(adults.count_documents(doc! {}).await.expect("count"), 3);
    let error = db.run_command(doc! { "collMod": "adults", "viewOn": "people" }).await.expect_err("half a change");
    assert_eq!(code(&error), Some(72));

    let server = server.restart(&[]);
    let db = server.client("").await.database("app");
    let adults = db.collection::<Document>("adults");
    assert_eq!(adults.count_documents(doc! {}).await.expect("count after restart"), 3);
    adults.drop().await.expect("drop view");
    let names = db.list_collection_names().await.expect("list");
    assert!(!names.contains(&"adults".to_owned()), "{names:?}");
    assert!(names.contains(&"people".to_owned()));
}

#[tokio::test]
async fn views_refuse_writes_indexes_cycles_and_foreign_options() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("app");
    seeded(&db).await;
    let adults = db.collection::<Document>("adults");
    assert_eq!(adults.insert_one(doc! { "_id": 9 }).await.err().as_ref().and_then(code), Some(166));
    assert_eq!(adults.update_one(doc! {}, doc! { "$set": { "a": 1 } }).await.err().as_ref().and_then(code), Some(166));
    assert_eq!(adults.delete_many(doc! {}).await.err().as_ref().and_then(code), Some(166));
    let index =
        db.run_command(doc! { "createIndexes": "adults", "indexes": [{ "key": { "a": 1 }, "name": "a_1" }] }).await;
    assert_eq!(index.err().as_ref().and_then(code), Some(166));

    let exists = db.run_command(doc! { "create": "adults", "viewOn": "people" }).await;
    assert_eq!(exists.err().as_ref().and_then(code), Some(48));
    // Nor a collection of a view's name.
    let collection = db.run_command(doc! { "create": "adults" }).await;
    assert_eq!(collection.err().as_ref().and_then(code), Some(48));
    db.run_command(doc! { "create": "a", "viewOn": "b" }).await.expect("a view on a missing collection");
    let cycle = db.run_command(doc! { "create": "b", "viewOn": "a" }).await;
    assert_eq!(cycle.err().as_ref().and_then(code), Some(5));
    let writes = db.run_command(doc! { "create": "w", "viewOn": "people", "pipeline": [{ "$out": "x" }] }).await;
    assert_eq!(writes.err().as_ref().and_then(code), Some(167));
    let collated = db.run_command(doc! { "find": "adults", "collation": { "locale": "en", "strength": 2 } }).await;
    assert_eq!(collated.err().as_ref().and_then(code), Some(167));
    let min = db.run_command(doc! { "find": "adults", "min": { "_id": 1 } }).await;
    assert_eq!(min.err().as_ref().and_then(code), Some(168));
}

#[tokio::test]
async fn joins_read_views_through_their_pipelines() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("app");
    let people = seeded(&db).await;
    let joined: Vec<Document> = people
        .aggregate(vec![
            doc! { "$match": { "_id": { "$in": [1, 4] } } },
            doc! { "$lookup": { "from": "adults", "localField": "_id", "foreignField": "_id", "as": "adult" } },
            doc! { "$project": { "adult": 1 } },
        ])
        .await
        .expect("aggregate")
        .try_collect()
        .await
        .expect("collect");
    assert_eq!(
        joined,
        vec![doc! { "_id": 1, "adult": [] }, doc! { "_id": 4, "adult": [{ "_id": 4, "name": "p4", "age": 40 }] }]
    );
    let unioned: Vec<Document> = people
        .aggregate(vec![doc! { "$match": { "_id": 1 } }, doc! { "$unionWith": "adults" }, doc! { "$count": "n" }])
        .await
        .expect("aggregate")
        .try_collect()
        .await
        .expect("collect");
    assert_eq!(unioned, vec![doc! { "n": 5 }]);
}
