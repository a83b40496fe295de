//! Collation through the Rust driver: find, sort, update, delete, count, distinct and
//! findAndModify under `en` collations, the collection default collation, and the errors for
//! unsupported locales and invalid specs.

#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use common::TestServer;
use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::ErrorKind;
use mongodb::options::{Collation, CollationStrength};

fn code(error: &mongodb::error::Error) -> Option<i32> {
    match error.kind.as_ref() {
        ErrorKind::Command(e) => Some(e.code),
        ErrorKind::Write(mongodb::error::WriteFailure::WriteError(e)) => Some(e.code),
        _ => None,
    }
}

fn en(strength: CollationStrength) -> Collation {
    Collation::builder().locale("en").strength(strength).build()
}

async fn seeded(server: &TestServer) -> mongodb::Collection<Document> {
    let client = server.client("").await;
    let coll = client.database("app").collection::<Document>("words");
    coll.insert_many(vec![
        doc! { "_id": 1, "w": "apple" },
        doc! { "_id": 2, "w": "Apple" },
        doc! { "_id": 3, "w": "APPLE" },
        doc! { "_id": 4, "w": "banana" },
        doc! { "_id": 5, "w": "Banana" },
        doc! { "_id": 6, "w": "éclair" },
        doc! { "_id": 7, "w": "eclair" },
    ])
    .await
    .expect("insert");
    coll
}

async fn ids(cursor: mongodb::Cursor<Document>) -> Vec<i32> {
    let docs: Vec<Document> = cursor.try_collect().await.expect("collect");
    docs.iter().map(|d| d.get_i32("_id").expect("_id")).collect()
}

#[tokio::test]
async fn collation_find_strength_2_matches_case_insensitively() {
    let server = TestServer::start(&[]);
    let coll = seeded(&server).await;
    let simple = ids(coll.find(doc! { "w": "apple" }).sort(doc! { "_id": 1 }).await.expect("find")).await;
    assert_eq!(simple, vec![1]);
    let secondary = ids(coll
        .find(doc! { "w": "apple" })
        .sort(doc! { "_id": 1 })
        .collation(en(CollationStrength::Secondary))
        .await
        .expect("find"))
    .await;
    assert_eq!(secondary, vec![1, 2, 3]);
    // Strength 1 also ignores accents; strength 2 does not.
    let primary = ids(coll
        .find(doc! { "w": { "$in": ["ECLAIR"] } })
        .sort(doc! { "_id": 1 })
        .collation(en(CollationStrength::Primary))
        .await
        .expect("find"))
    .await;
    assert_eq!(primary, vec![6, 7]);
    let ranged = ids(coll
        .find(doc! { "w": { "$gte": "B", "$lt": "C" } })
        .sort(doc! { "_id": 1 })
        .collation(en(CollationStrength::Secondary))
        .await
        .expect("find"))
    .await;
    assert_eq!(ranged, vec![4, 5]);
    // `$regex` ignores the collation, as in mongod.
    let regex = ids(coll
        .find(doc! { "w": { "$regex": "^apple$" } })
        .collation(en(CollationStrength::Primary))
        .await
        .expect("find"))
    .await;
    assert_eq!(regex, vec![1]);
}

#[tokio::test]
async fn collation_find_string_id_equality_skips_the_point_lookup() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let coll = client.database("app").collection::<Document>("ids");
    coll.insert_many(vec![doc! { "_id": "A" }, doc! { "_id": "b" }]).await.expect("insert");
    let found =
        ids_as_strings(coll.find(doc! { "_id": "a" }).collation(en(CollationStrength::Secondary)).await.expect("find"))
            .await;
    assert_eq!(found, vec!["A".to_owned()]);
    let deleted =
        coll.delete_one(doc! { "_id": "B" }).collation(en(CollationStrength::Secondary)).await.expect("delete");
    assert_eq!(deleted.deleted_count, 1);
}

async fn ids_as_strings(cursor: mongodb::Cursor<Document>) -> Vec<String> {
    let docs: Vec<Document> = cursor.try_collect().await.expect("collect");
    docs.iter().map(|d| d.get_str("_id").expect("_id").to_owned()).collect()
}

#[tokio::test]
async fn collation_sort_en_differs_from_simple() {
    let server = TestServer::start(&[]);
    let coll = seeded(&server).await;
    let simple = ids(coll.find(doc! {}).sort(doc! { "w": 1, "_id": 1 }).await.expect("find")).await;
    // Binary order: capitals first, then lower case, then the accented letter.
    assert_eq!(simple, vec![3, 2, 5, 1, 4, 7, 6]);
    let english = ids(coll
        .find(doc! {})
        .sort(doc! { "w": 1, "_id": 1 })
        .collation(en(CollationStrength::Tertiary))
        .await
        .expect("find"))
    .await;
    // Alphabetical; lower case before upper case; the accent after the plain letter.
    assert_eq!(english, vec![1, 2, 3, 4, 5, 7, 6]);
    // The aggregate `$sort` (and `$match`) stages use the command's collation.
    let aggregated = ids(coll
        .aggregate(vec![doc! { "$match": { "w": { "$ne": "BANANA" } } }, doc! { "$sort": { "w": -1, "_id": -1 } }])
        .collation(en(CollationStrength::Secondary))
        .await
        .expect("aggregate"))
    .await;
    assert_eq!(aggregated, vec![6, 7, 3, 2, 1]);
    let numeric = client_numeric_sort(&server).await;
    assert_eq!(numeric, vec!["2", "9", "10", "100"]);
}

async fn client_numeric_sort(server: &TestServer) -> Vec<String> {
    let client = server.client("").await;
    let coll = client.database("app").collection::<Document>("numbers");
    coll.insert_many(["10", "9", "100", "2"].iter().map(|n| doc! { "n": *n })).await.expect("insert");
    let collation = Collation::builder().locale("en").numeric_ordering(true).build();
    let docs: Vec<Document> = coll
        .find(doc! {})
        .sort(doc! { "n": 1 })
        .collation(collation)
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("collect");
    docs.iter().map(|d| d.get_str("n").expect("n").to_owned()).collect()
}

#[tokio::test]
async fn collation_update_and_delete_match_under_collation() {
    let server = TestServer::start(&[]);
    let coll = seeded(&server).await;
    let updated = coll
        .update_many(doc! { "w": "APPLE" }, doc! { "$set": { "fruit": true } })
        .collation(en(CollationStrength::Secondary))
        .await
        .expect("update");
    assert_eq!((updated.matched_count, updated.modified_count), (3, 3));
    // `$addToSet` compares under the collation too.
    coll.update_one(doc! { "_id": 1 }, doc! { "$set": { "tags": ["Red"] } }).await.expect("set tags");
    coll.update_one(doc! { "_id": 1 }, doc! { "$addToSet": { "tags": "red" } })
        .collation(en(CollationStrength::Secondary))
        .await
        .expect("addToSet");
    let one = coll.find_one(doc! { "_id": 1 }).await.expect("find").expect("doc");
    assert_eq!(one.get_array("tags").expect("tags"), &vec![Bson::String("Red".into())]);
    let deleted =
        coll.delete_many(doc! { "w": "banana" }).collation(en(CollationStrength::Secondary)).await.expect("delete");
    assert_eq!(deleted.deleted_count, 2);
    let removed = coll
        .find_one_and_delete(doc! { "w": "ECLAIR" })
        .sort(doc! { "_id": -1 })
        .collation(en(CollationStrength::Primary))
        .await
        .expect("findAndModify")
        .expect("a document");
    assert_eq!(removed.get_i32("_id").expect("_id"), 7);
    assert_eq!(coll.count_documents(doc! {}).await.expect("count"), 4);
}

#[tokio::test]
async fn collation_count_and_distinct() {
    let server = TestServer::start(&[]);
    let coll = seeded(&server).await;
    let counted =
        coll.count_documents(doc! { "w": "apple" }).collation(en(CollationStrength::Secondary)).await.expect("count");
    assert_eq!(counted, 3);
    let db = server.client("").await.database("app");
    let reply = db
        .run_command(
            doc! { "count": "words", "query": { "w": "BANANA" }, "collation": { "locale": "en", "strength": 2 } },
        )
        .await
        .expect("count");
    assert_eq!(reply.get_i32("n").expect("n"), 2);
    let simple = coll.distinct("w", doc! {}).await.expect("distinct");
    assert_eq!(simple.len(), 7);
    let folded = coll.distinct("w", doc! {}).collation(en(CollationStrength::Primary)).await.expect("distinct");
    // apple, banana, eclair: the first value of each class, in collation order.
    assert_eq!(
        folded,
        vec![Bson::String("apple".into()), Bson::String("banana".into()), Bson::String("éclair".into())]
    );
}

#[tokio::test]
async fn collation_collection_default_applies_and_is_listed() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("app");
    db.create_collection("folded").collation(en(CollationStrength::Secondary)).await.expect("create");
    let coll = db.collection::<Document>("folded");
    coll.insert_many(vec![doc! { "_id": 1, "w": "a" }, doc! { "_id": 2, "w": "A" }]).await.expect("insert");
    assert_eq!(coll.count_documents(doc! { "w": "a" }).await.expect("count"), 2);
    // An explicit simple collation overrides the default.
    let simple = Collation::builder().locale("simple").build();
    assert_eq!(coll.count_documents(doc! { "w": "a" }).collation(simple).await.expect("count"), 1);
    let listed =
        db.run_command(doc! { "listCollections": 1, "filter": { "name": "folded" } }).await.expect("listCollections");
    let first = listed.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("batch");
    let Some(Bson::Document(info)) = first.first() else { panic!("no collection listed: {listed}") };
    let collation = info.get_document("options").and_then(|o| o.get_document("collation")).expect("collation");
    assert_eq!(
        collation,
        &doc! {
            "locale": "en", "caseLevel": false, "caseFirst": "off", "strength": 2,
            "numericOrdering": false, "alternate": "non-ignorable", "maxVariable": "punct",
            "normalization": false, "backwards": false, "version": "57.1",
        }
    );
}

#[tokio::test]
async fn collation_unsupported_locale_and_invalid_spec_errors() {
    let server = TestServer::start(&[]);
    let coll = seeded(&server).await;
    let french = Collation::builder().locale("fr").build();
    let err = coll.find(doc! {}).collation(french).await.expect_err("fr is not supported");
    assert_eq!(code(&err), Some(238));
    assert!(err.to_string().contains("'fr'"), "{err}");
    let db = server.client("").await.database("app");
    let rows = [
        (doc! { "strength": 2 }, 40414),
        (doc! { "locale": "en", "bogus": 1 }, 40415),
        (doc! { "locale": "en", "strength": 9 }, 51024),
        (doc! { "locale": "en", "caseFirst": "sideways" }, 2),
        (doc! { "locale": "en", "version": "1.0" }, 161),
    ];
    for (spec, expected) in rows {
        let err = db
            .run_command(doc! { "find": "words", "filter": {}, "collation": spec.clone() })
            .await
            .expect_err("invalid collation");
        assert_eq!(code(&err), Some(expected), "{spec}: {err}");
    }
    let err = db
        .run_command(doc! { "delete": "words", "deletes": [{ "q": {}, "limit": 0, "collation": { "locale": "xx" } }] })
        .await;
    // A statement's collation error is that statement's write error; nothing was deleted.
    let reply = err.expect("delete replies ok with writeErrors");
    let errors = reply.get_array("writeErrors").expect("writeErrors");
    let Some(Bson::Document(first)) = errors.first() else { panic!("no write error: {reply}") };
    assert_eq!(first.get_i32("code").expect("code"), 238);
    assert_eq!(coll.count_documents(doc! {}).await.expect("count"), 7);
}

#[tokio::test]
async fn collation_empty_is_none_given_and_the_default_applies() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("app");
    let default = doc! { "locale": "en", "strength": 2 };
    db.run_command(doc! { "create": "folded", "collation": default }).await.expect("create");
    let folded = db.collection::<Document>("folded");
    folded.insert_many([doc! { "_id": 1, "w": "apple" }, doc! { "_id": 2, "w": "APPLE" }]).await.expect("insert");
    // `collation: {}` (as pymongo sends a helper's empty collation) is no collation: the
    // collection's default decides, in reads and writes alike.
    let found =
        db.run_command(doc! { "find": "folded", "filter": { "w": "Apple" }, "collation": {} }).await.expect("find");
    let batch = found.get_document("cursor").and_then(|c| c.get_array("firstBatch")).map(Vec::len).ok();
    assert_eq!(batch, Some(2), "{found}");
    let deleted = db
        .run_command(doc! { "delete": "folded", "deletes": [{ "q": { "w": "Apple" }, "limit": 0, "collation": {} }] })
        .await
        .expect("delete");
    assert_eq!(deleted.get_i32("n").ok(), Some(2), "{deleted}");
    let plain = db.collection::<Document>("plain");
    plain.insert_one(doc! { "_id": 1, "w": "apple" }).await.expect("insert");
    let updated = db
        .run_command(doc! { "update": "plain", "updates": [{ "q": { "w": "APPLE" }, "u": { "$set": { "x": 1 } }, "collation": {} }] })
        .await
        .expect("update");
    assert_eq!(updated.get_i32("n").ok(), Some(0), "simple, the plain collection's: {updated}");
}
