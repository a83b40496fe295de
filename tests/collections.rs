//! Collection and database management through the Rust driver.

mod common;

use common::TestServer;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::ErrorKind;

fn code(error: &mongodb::error::Error) -> Option<i32> {
    match error.kind.as_ref() {
        ErrorKind::Command(e) => Some(e.code),
        _ => None,
    }
}

#[tokio::test]
async fn collections_create_list_drop() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("app");
    db.run_command(doc! { "create": "capped", "capped": true, "size": 4096, "max": 10 }).await.expect("capped");
    db.run_command(doc! { "create": "checked", "validator": { "a": { "$exists": true } } }).await.expect("create");
    db.create_collection("plain").await.expect("create");
    let error = db.create_collection("plain").await.expect_err("exists");
    assert_eq!(code(&error), Some(48));
    let error = db.run_command(doc! { "create": "bad$name" }).await.expect_err("invalid name");
    assert_eq!(code(&error), Some(73));

    let names = db.list_collection_names().await.expect("names");
    assert_eq!(names, vec!["capped".to_owned(), "checked".to_owned(), "plain".to_owned()]);
    let listed = db.run_command(doc! { "listCollections": 1, "filter": { "name": "checked" } }).await.expect("list");
    let batch = listed.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("batch");
    assert_eq!(batch.len(), 1);
    let entry = batch[0].as_document().expect("entry");
    assert_eq!(entry.get_str("type").ok(), Some("collection"));
    let options = entry.get_document("options").expect("options");
    assert_eq!(options.get_document("validator").ok(), Some(&doc! { "a": { "$exists": true } }));
    assert!(matches!(entry.get_document("info").ok().and_then(|i| i.get("uuid")), Some(Bson::Binary(_))), "{entry}");
    assert_eq!(entry.get_document("idIndex").and_then(|i| i.get_str("name")).ok(), Some("_id_"));
    let name_only = db
        .run_command(doc! { "listCollections": 1, "nameOnly": true, "authorizedCollections": true })
        .await
        .expect("list");
    let first = name_only.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("batch")[0].clone();
    assert_eq!(first.as_document().map(Document::len), Some(2), "{first}");

    let dropped = db.run_command(doc! { "drop": "plain" }).await.expect("drop");
    assert_eq!(dropped.get_i32("nIndexesWas").ok(), Some(1));
    // mongod 7.0: dropping a missing collection succeeds.
    db.run_command(doc! { "drop": "plain" }).await.expect("drop missing");
    assert_eq!(db.list_collection_names().await.expect("names"), vec!["capped".to_owned(), "checked".to_owned()]);
}

#[tokio::test]
async fn collections_databases_rename_stats() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let app = client.database("app");
    app.collection::<Document>("a").insert_many([doc! { "x": 1 }, doc! { "x": 2 }]).await.expect("insert");
    client.database("other").collection::<Document>("b").insert_one(doc! { "y": 1 }).await.expect("insert");

    let names = client.list_database_names().await.expect("databases");
    assert!(names.contains(&"app".to_owned()) && names.contains(&"other".to_owned()), "{names:?}");
    let listed = client.database("admin").run_command(doc! { "listDatabases": 1 }).await.expect("listDatabases");
    assert!(listed.get_i64("totalSize").is_ok_and(|n| n > 0), "{listed}");
    let filtered = client
        .database("admin")
        .run_command(doc! { "listDatabases": 1, "filter": { "name": "other" }, "nameOnly": true })
        .await
        .expect("filtered");
    assert_eq!(filtered.get_array("databases").map(Vec::len).ok(), Some(1), "{filtered}");

    let admin = client.database("admin");
    admin.run_command(doc! { "renameCollection": "app.a", "to": "app.renamed" }).await.expect("rename");
    admin.run_command(doc! { "renameCollection": "app.renamed", "to": "other.moved" }).await.expect("rename across");
    let moved = client.database("other").collection::<Document>("moved");
    assert_eq!(moved.count_documents(doc! {}).await.expect("count"), 2);
    let error = admin
        .run_command(doc! { "renameCollection": "other.moved", "to": "other.b" })
        .await
        .expect_err("target exists");
    assert_eq!(code(&error), Some(48));
    admin
        .run_command(doc! { "renameCollection": "other.moved", "to": "other.b", "dropTarget": true })
        .await
        .expect("dropTarget");
    assert_eq!(client.database("other").collection::<Document>("b").count_documents(doc! {}).await.expect("count"), 2);
    let error = app.run_command(doc! { "renameCollection": "other.b", "to": "other.c" }).await.expect_err("admin only");
    assert_eq!(code(&error), Some(13));

    let other = client.database("other");
    other
        .run_command(doc! { "collMod": "b", "validator": { "x": { "$exists": true } }, "validationLevel": "moderate" })
        .await
        .expect("collMod");
    let info = other.run_command(doc! { "listCollections": 1 }).await.expect("list");
    let text = format!("{info}");
    assert!(text.contains("validationLevel") && text.contains("moderate"), "{text}");

    let stats = other.run_command(doc! { "collStats": "b" }).await.expect("collStats");
    assert_eq!(stats.get_i64("count").ok(), Some(2));
    assert!(stats.get_i64("size").is_ok_and(|n| n > 0));
    assert_eq!(stats.get_i64("nindexes").ok(), Some(1));
    assert!(stats.contains_key("storageSize") && stats.contains_key("totalIndexSize"));
    let db_stats = other.run_command(doc! { "dbStats": 1 }).await.expect("dbStats");
    assert_eq!(db_stats.get_i64("collections").ok(), Some(1));
    assert_eq!(db_stats.get_i64("objects").ok(), Some(2));

    let dropped = other.run_command(doc! { "dropDatabase": 1 }).await.expect("dropDatabase");
    assert_eq!(dropped.get_str("dropped").ok(), Some("other"));
    let names = client.list_database_names().await.expect("databases");
    assert!(!names.contains(&"other".to_owned()), "{names:?}");
}

#[tokio::test]
async fn collections_survive_restart() {
    let server = TestServer::start(&[]);
    {
        let client = server.client("").await;
        let coll = client.database("keep").collection::<Document>("docs");
        coll.insert_many((0..100).map(|i| doc! { "_id": i, "v": format!("value {i}") })).await.expect("insert");
        client
            .database("keep")
            .run_command(doc! { "create": "empty", "validator": { "a": { "$exists": true } } })
            .await
            .expect("create");
        client.shutdown().await;
    }
    let server = server.restart(&[]);
    let client = server.client("").await;
    let db = client.database("keep");
    assert_eq!(db.list_collection_names().await.expect("names"), vec!["docs".to_owned(), "empty".to_owned()]);
    let coll = db.collection::<Document>("docs");
    assert_eq!(coll.count_documents(doc! {}).await.expect("count"), 100);
    let doc = coll.find_one(doc! { "_id": 42 }).await.expect("find").expect("doc 42");
    assert_eq!(doc.get_str("v").ok(), Some("value 42"));
}

#[test]
fn collections_second_server_cannot_share_dbpath() {
    let server = TestServer::start(&[]);
    let dbpath = server.dir.path().join("db");
    let output = common::run_to_exit(&["--adminPort", "disabled", "--dbpath", dbpath.to_str().expect("utf-8 path")]);
    assert!(!output.status.success());
    let log = String::from_utf8_lossy(&output.stdout);
    assert!(log.contains("Unable to lock the lock file"), "{log}");
}

/// The first batch of a cursor reply.
fn first_batch(reply: &Document) -> Vec<Document> {
    let batch = reply.get_document("cursor").and_then(|c| c.get_array("firstBatch")).cloned().unwrap_or_default();
    batch.into_iter().filter_map(|d| d.as_document().cloned()).collect()
}

#[tokio::test]
async fn collections_clustered_by_id_list_as_mongod_and_expire_by_id() {
    let server = TestServer::start(&["--setParameter", "ttlMonitorSleepSecs=1"]);
    let client = server.client("").await;
    let db = client.database("app");
    let run = |command: Document| {
        let db = db.clone();
        async move { db.run_command(command).await }
    };
    let clustered = doc! { "key": { "_id": 1 }, "unique": true, "name": "by id" };
    run(doc! { "create": "events", "clusteredIndex": clustered.clone() }).await.expect("create");
    let listed = first_batch(&run(doc! { "listCollections": 1, "filter": { "name": "events" } }).await.expect("list"));
    let entry = listed.first().cloned().unwrap_or_default();
    let canonical = doc! { "v": 2, "key": { "_id": 1 }, "name": "by id", "unique": true };
    assert_eq!(entry.get_document("options").ok(), Some(&doc! { "clusteredIndex": canonical }), "{entry}");
    assert!(!entry.contains_key("idIndex"), "a clustered collection lists no idIndex: {entry}");
    let indexes = first_batch(&run(doc! { "listIndexes": "events" }).await.expect("listIndexes"));
    let index = doc! { "v": 2, "key": { "_id": 1 }, "name": "by id", "unique": true, "clustered": true };
    assert_eq!(indexes, std::slice::from_ref(&index));

    // The cluster key exists already (any name); `clustered` elsewhere and its name on another key are refused.
    run(doc! { "createIndexes": "events", "indexes": [{ "key": { "_id": 1 }, "name": "again" }] })
        .await
        .expect("no-op");
    let elsewhere = doc! { "createIndexes": "events", "indexes": [{ "key": { "a": 1 }, "name": "a", "clustered": true, "unique": true }] };
    assert_eq!(run(elsewhere).await.err().as_ref().and_then(code), Some(6243700));
    let its_name = doc! { "createIndexes": "events", "indexes": [{ "key": { "b": 1 }, "name": "by id" }] };
    assert_eq!(run(its_name).await.err().as_ref().and_then(code), Some(6100906));
    let false_option =
        doc! { "createIndexes": "events", "indexes": [{ "key": { "c": 1 }, "name": "c", "clustered": false }] };
    assert_eq!(run(false_option).await.err().as_ref().and_then(code), Some(6492800));
    for index in [Bson::String("by id".into()), Bson::Document(doc! { "_id": 1 })] {
        let dropped = run(doc! { "dropIndexes": "events", "index": index }).await;
        assert_eq!(dropped.err().as_ref().and_then(code), Some(5979800));
    }
    run(doc! { "dropIndexes": "events", "index": "*" }).await.expect("drops the others");
    assert_eq!(first_batch(&run(doc! { "listIndexes": "events" }).await.expect("listIndexes")), [index]);

    // mongod's refusals, in its order.
    let refused = [
        (doc! { "clusteredIndex": 5 }, 5979702),
        (doc! { "clusteredIndex": true }, 5979703),
        (doc! { "clusteredIndex": { "key": { "_id": 1 } } }, 40414),
        (doc! { "clusteredIndex": { "key": { "_id": 1 }, "unique": false } }, 5979700),
        (doc! { "clusteredIndex": { "key": { "a": 1 }, "unique": true } }, 197),
        (doc! { "clusteredIndex": { "key": { "_id": 1 }, "unique": true, "v": 1 } }, 5979704),
        (doc! { "clusteredIndex": clustered.clone(), "size": 4096 }, 6049200),
        (doc! { "clusteredIndex": clustered.clone(), "capped": true }, 6127800),
        (doc! { "clusteredIndex": clustered.clone(), "viewOn": "events", "pipeline": [] }, 6026500),
        (doc! { "clusteredIndex": clustered.clone(), "autoIndexId": false }, 6026501),
        (doc! { "clusteredIndex": clustered.clone(), "expireAfterSeconds": -1 }, 72),
        (doc! { "expireAfterSeconds": 10 }, 72),
    ];
    for (options, expected) in refused {
        let mut command = doc! { "create": "other" };
        command.extend(options.clone());
        assert_eq!(run(command).await.err().as_ref().and_then(code), Some(expected), "{options}");
    }
    run(doc! { "create": "plain" }).await.expect("create");
    let on_plain = doc! { "createIndexes": "plain", "indexes": [{ "key": { "_id": 1 }, "name": "i", "clustered": true, "unique": true }] };
    assert_eq!(run(on_plain).await.err().as_ref().and_then(code), Some(6243700));
    let implicit = doc! { "createIndexes": "missing", "indexes": [{ "key": { "_id": 1 }, "name": "i", "clustered": true, "unique": true }] };
    assert_eq!(run(implicit).await.err().as_ref().and_then(code), Some(6100900));
    let ttl_on_plain = run(doc! { "collMod": "plain", "expireAfterSeconds": 5 }).await;
    assert_eq!(ttl_on_plain.err().as_ref().and_then(code), Some(72));

    // TTL by `_id`: a date older than expireAfterSeconds goes; later dates and other types stay.
    run(doc! { "collMod": "events", "expireAfterSeconds": 60 }).await.expect("collMod");
    let now = mongodb::bson::DateTime::now().timestamp_millis();
    let (old, recent) =
        (mongodb::bson::DateTime::from_millis(now - 3_600_000), mongodb::bson::DateTime::from_millis(now));
    let events = db.collection::<Document>("events");
    events.insert_many([doc! { "_id": old }, doc! { "_id": recent }, doc! { "_id": 7 }]).await.expect("insert");
    let duplicate = events.insert_one(doc! { "_id": 7 }).await.expect_err("duplicate _id");
    assert!(matches!(*duplicate.kind, ErrorKind::Write(_)), "{duplicate:?}");
    let expired = common::eventually_async(std::time::Duration::from_secs(15), || {
        let events = events.clone();
        async move { events.count_documents(doc! {}).await.ok() == Some(2) }
    })
    .await;
    assert!(expired, "the old date expired");
    assert_eq!(events.find_one(doc! { "_id": old }).await.ok().flatten(), None);
    let listed = first_batch(&run(doc! { "listCollections": 1, "filter": { "name": "events" } }).await.expect("list"));
    let options = listed.first().and_then(|e| e.get_document("options").ok().cloned()).unwrap_or_default();
    assert_eq!(options.get("expireAfterSeconds"), Some(&Bson::Int64(60)));
    run(doc! { "collMod": "events", "expireAfterSeconds": "off" }).await.expect("off");
    let listed = first_batch(&run(doc! { "listCollections": 1, "filter": { "name": "events" } }).await.expect("list"));
    let options = listed.first().and_then(|e| e.get_document("options").ok().cloned()).unwrap_or_default();
    assert!(!options.contains_key("expireAfterSeconds"), "{options}");
}
