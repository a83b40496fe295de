//! Change streams (`$changeStream`) on a replica set of one: events as mongod shapes them,
//! lookups and pre-/post-images, scopes (collection, database, cluster) and invalidation,
//! resume tokens (also across a restart, with no gap and no duplicate), `postBatchResumeToken`,
//! awaitData `getMore`s, and mongod's errors. Through the official driver (`watch()`) and raw
//! messages (to see exact replies).

mod common;

use common::{TestServer, code, command, op_msg, reply_body};
use futures_util::StreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::change_stream::event::OperationType;

fn cursor(reply: &Document) -> Document {
    reply.get_document("cursor").cloned().unwrap_or_default()
}

fn events(reply: &Document) -> Vec<Document> {
    let cursor = cursor(reply);
    let batch = cursor.get_array("firstBatch").or_else(|_| cursor.get_array("nextBatch")).cloned().unwrap_or_default();
    batch.into_iter().filter_map(|e| e.as_document().cloned()).collect()
}

/// Opens a change stream on `coll` (or the database with `aggregate: 1` when `None`).
fn watch(server: &TestServer, db: &str, coll: Option<&str>, spec: Document, stages: Vec<Document>) -> Document {
    let mut pipeline = vec![Bson::Document(doc! { "$changeStream": spec })];
    pipeline.extend(stages.into_iter().map(Bson::Document));
    let target = coll.map_or(Bson::Int32(1), |c| Bson::String(c.to_owned()));
    command(server, doc! { "aggregate": target, "pipeline": pipeline, "cursor": {}, "$db": db })
}

fn get_more(server: &TestServer, db: &str, coll: &str, id: i64) -> Document {
    command(server, doc! { "getMore": id, "collection": coll, "maxTimeMS": 200_i64, "$db": db })
}

fn write(server: &TestServer, body: Document) {
    let reply = command(server, body);
    assert_eq!(reply.get_f64("ok").ok(), Some(1.0), "{reply}");
}

#[tokio::test]
async fn change_stream_resumed_after_a_restart_continues_without_gap_or_duplicate() {
    let server = TestServer::member(&[]);
    let client = server.client("directConnection=true").await;
    let coll = client.database("app").collection::<Document>("orders");
    let mut stream = coll.watch().await.expect("watch");
    for n in 1..=5 {
        coll.insert_one(doc! { "_id": n, "qty": n }).await.expect("insert");
    }
    coll.update_one(doc! { "_id": 2 }, doc! { "$inc": { "qty": 10 } }).await.expect("update");
    coll.delete_one(doc! { "_id": 3 }).await.expect("delete");
    let mut seen = Vec::new();
    for _ in 0..3 {
        let event = stream.next().await.expect("an event").expect("no error");
        assert_eq!(event.operation_type, OperationType::Insert);
        assert_eq!(event.ns.as_ref().map(|ns| ns.coll.clone()), Some(Some("orders".to_owned())));
        seen.push(event.document_key.clone().unwrap_or_default());
    }
    let token = stream.resume_token().expect("a resume token");
    drop(stream);
    drop(client);

    let server = server.restart(&["--replSet", "rs0"]);
    let client = server.client("directConnection=true").await;
    let coll = client.database("app").collection::<Document>("orders");
    let mut resumed = coll.watch().resume_after(token).await.expect("resume");
    coll.insert_one(doc! { "_id": 6 }).await.expect("insert after restart");
    let mut rest = Vec::new();
    for _ in 0..5 {
        let event = resumed.next().await.expect("an event").expect("no error");
        rest.push((event.operation_type.clone(), event.document_key.clone().unwrap_or_default()));
        if let Some(update) = &event.update_description {
            assert_eq!(update.updated_fields, doc! { "qty": 12 });
        }
    }
    assert_eq!(seen, [doc! { "_id": 1 }, doc! { "_id": 2 }, doc! { "_id": 3 }]);
    assert_eq!(
        rest,
        [
            (OperationType::Insert, doc! { "_id": 4 }),
            (OperationType::Insert, doc! { "_id": 5 }),
            (OperationType::Update, doc! { "_id": 2 }),
            (OperationType::Delete, doc! { "_id": 3 }),
            (OperationType::Insert, doc! { "_id": 6 }),
        ],
        "every event after the token, once, in order"
    );
}

#[tokio::test]
async fn change_stream_events_lookups_and_images_as_mongod() {
    let server = TestServer::member(&[]);
    write(&server, doc! { "create": "c", "$db": "app" });
    let opened = watch(&server, "app", Some("c"), doc! { "fullDocument": "updateLookup" }, vec![]);
    let id = cursor(&opened).get_i64("id").unwrap_or(0);
    assert_ne!(id, 0, "{opened}");
    assert!(events(&opened).is_empty());
    let start = cursor(&opened).get_document("postBatchResumeToken").cloned();
    assert!(start.as_ref().is_ok_and(|t| t.get_str("_data").is_ok()), "{opened}");

    write(
        &server,
        doc! { "insert": "c", "documents": [{ "_id": 1, "a": 1, "xs": [1, 2, 3], "gone": true }], "$db": "app" },
    );
    let update = doc! { "q": { "_id": 1 }, "u": { "$set": { "a": 2, "b.c": 1 }, "$unset": { "gone": "" }, "$pop": { "xs": 1 } } };
    write(&server, doc! { "update": "c", "updates": [update], "$db": "app" });
    write(&server, doc! { "update": "c", "updates": [{ "q": { "_id": 1 }, "u": { "r": 1 } }], "$db": "app" });
    write(&server, doc! { "delete": "c", "deletes": [{ "q": { "_id": 1 }, "limit": 1 }], "$db": "app" });
    let more = get_more(&server, "app", "c", id);
    let got = events(&more);
    let kinds: Vec<_> = got.iter().map(|e| e.get_str("operationType").unwrap_or_default()).collect();
    assert_eq!(kinds, ["insert", "update", "replace", "delete"], "{more}");
    let shape = |e: &Document| e.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        shape(&got[0]),
        ["_id", "operationType", "clusterTime", "wallTime", "fullDocument", "ns", "documentKey"]
    );
    assert_eq!(got[0].get_document("ns").ok(), Some(&doc! { "db": "app", "coll": "c" }));
    assert_eq!(
        got[1].get_document("updateDescription").ok(),
        Some(&doc! {
            "updatedFields": { "a": 2, "b": { "c": 1 } },
            "removedFields": ["gone"],
            "truncatedArrays": [{ "field": "xs", "newSize": 2 }],
        })
    );
    // updateLookup reads the document as it is now: replaced, then deleted.
    assert_eq!(got[1].get("fullDocument"), Some(&Bson::Null), "deleted since: {}", got[1]);
    assert_eq!(got[2].get_document("fullDocument").ok(), Some(&doc! { "_id": 1, "r": 1 }));
    assert_eq!(got[3].get_document("documentKey").ok(), Some(&doc! { "_id": 1 }));
    // A batch's postBatchResumeToken is its last event's token.
    assert_eq!(cursor(&more).get_document("postBatchResumeToken").ok(), got[3].get_document("_id").ok());
    // A batch without events stands past everything read.
    let empty = get_more(&server, "app", "c", id);
    assert!(events(&empty).is_empty());
    assert!(cursor(&empty).get_document("postBatchResumeToken").is_ok(), "{empty}");

    // Pre- and post-images, once the collection keeps them.
    let required = doc! { "fullDocument": "required", "fullDocumentBeforeChange": "required" };
    let without = watch(&server, "app", Some("c"), required.clone(), vec![]);
    let without_id = cursor(&without).get_i64("id").unwrap_or(0);
    write(&server, doc! { "insert": "c", "documents": [{ "_id": 2, "n": 1 }], "$db": "app" });
    write(
        &server,
        doc! { "update": "c", "updates": [{ "q": { "_id": 2 }, "u": { "$inc": { "n": 1 } } }], "$db": "app" },
    );
    let failed = get_more(&server, "app", "c", without_id);
    assert_eq!((code(&failed), failed.get_str("codeName").ok()), (Some(47), Some("NoMatchingDocument")), "{failed}");
    write(&server, doc! { "collMod": "c", "changeStreamPreAndPostImages": { "enabled": true }, "$db": "app" });
    let with =
        watch(&server, "app", Some("c"), required, vec![doc! { "$match": { "operationType": { "$ne": "insert" } } }]);
    let with_id = cursor(&with).get_i64("id").unwrap_or(0);
    write(
        &server,
        doc! { "update": "c", "updates": [{ "q": { "_id": 2 }, "u": { "$inc": { "n": 1 } } }], "$db": "app" },
    );
    write(&server, doc! { "delete": "c", "deletes": [{ "q": { "_id": 2 }, "limit": 1 }], "$db": "app" });
    let imaged = events(&get_more(&server, "app", "c", with_id));
    assert_eq!(imaged.len(), 2, "{imaged:?}");
    assert_eq!(imaged[0].get_document("fullDocumentBeforeChange").ok(), Some(&doc! { "_id": 2, "n": 2 }));
    assert_eq!(imaged[0].get_document("fullDocument").ok(), Some(&doc! { "_id": 2, "n": 3 }));
    assert_eq!(imaged[1].get_document("fullDocumentBeforeChange").ok(), Some(&doc! { "_id": 2, "n": 3 }));
}

#[tokio::test]
async fn change_stream_scopes_invalidation_and_resume_points() {
    let server = TestServer::member(&["--oplogSize", "1"]);
    let on_db = watch(&server, "shop", None, doc! {}, vec![]);
    let db_id = cursor(&on_db).get_i64("id").unwrap_or(0);
    assert_eq!(cursor(&on_db).get_str("ns").ok(), Some("shop.$cmd.aggregate"));
    let on_cluster = watch(&server, "admin", None, doc! { "allChangesForCluster": true }, vec![]);
    let cluster_id = cursor(&on_cluster).get_i64("id").unwrap_or(0);
    let on_coll = watch(&server, "shop", Some("a"), doc! {}, vec![]);
    let coll_id = cursor(&on_coll).get_i64("id").unwrap_or(0);

    write(&server, doc! { "insert": "a", "documents": [{ "_id": 1 }], "$db": "shop" });
    write(&server, doc! { "insert": "b", "documents": [{ "_id": 1 }], "$db": "shop" });
    write(&server, doc! { "insert": "x", "documents": [{ "_id": 1 }], "$db": "elsewhere" });
    write(&server, doc! { "renameCollection": "shop.a", "to": "shop.a2", "$db": "admin" });
    write(&server, doc! { "dropDatabase": 1, "$db": "shop" });

    let kinds = |reply: &Document| {
        events(reply).iter().map(|e| e.get_str("operationType").unwrap_or_default().to_owned()).collect::<Vec<_>>()
    };
    let coll_events = get_more(&server, "shop", "a", coll_id);
    assert_eq!(kinds(&coll_events), ["insert", "rename", "invalidate"], "{coll_events}");
    assert_eq!(cursor(&coll_events).get_i64("id").ok(), Some(0), "an invalidated stream is closed");
    let rename = events(&coll_events).get(1).cloned().unwrap_or_default();
    assert_eq!(rename.get_document("to").ok(), Some(&doc! { "db": "shop", "coll": "a2" }));
    let db_events = get_more(&server, "shop", "$cmd.aggregate", db_id);
    assert_eq!(kinds(&db_events), ["insert", "insert", "rename", "drop", "drop", "dropDatabase", "invalidate"]);
    let cluster_events = get_more(&server, "admin", "$cmd.aggregate", cluster_id);
    assert_eq!(kinds(&cluster_events), ["insert", "insert", "insert", "rename", "drop", "drop", "dropDatabase"]);
    assert_ne!(cursor(&cluster_events).get_i64("id").ok(), Some(0), "a cluster stream is not invalidated");

    // After an invalidate: startAfter its token opens a new stream, resumeAfter is refused.
    let invalidate = events(&coll_events).last().and_then(|e| e.get_document("_id").ok().cloned()).unwrap_or_default();
    let refused = watch(&server, "shop", Some("a"), doc! { "resumeAfter": invalidate.clone() }, vec![]);
    assert_eq!(code(&refused), Some(260), "{refused}");
    let after = watch(&server, "shop", Some("a"), doc! { "startAfter": invalidate }, vec![]);
    assert_eq!(after.get_f64("ok").ok(), Some(1.0), "{after}");
    assert!(events(&after).is_empty(), "nothing after the invalidate yet: {after}");

    // startAtOperationTime includes the changes at that time.
    let insert_time = events(&db_events).first().and_then(|e| e.get_timestamp("clusterTime").ok());
    let at = watch(
        &server,
        "shop",
        None,
        doc! { "startAtOperationTime": insert_time.map_or(Bson::Null, Bson::Timestamp) },
        vec![],
    );
    assert_eq!(kinds(&at).first().map(String::as_str), Some("insert"), "{at}");

    // Once the oplog has rolled past a token, resuming from it loses history.
    let first_token = events(&db_events).first().and_then(|e| e.get_document("_id").ok().cloned()).unwrap_or_default();
    let padding = "x".repeat(100_000);
    for n in 0..15 {
        write(&server, doc! { "insert": "big", "documents": [{ "_id": n, "p": &padding }], "$db": "other" });
    }
    let lost = watch(&server, "shop", None, doc! { "resumeAfter": first_token }, vec![]);
    assert_eq!((code(&lost), lost.get_str("codeName").ok()), (Some(286), Some("ChangeStreamHistoryLost")), "{lost}");
}

/// A stream mongod refuses: its spec, its stages, where it is opened (collection or `None` for
/// the database, and database) and mongod's code.
type Refused = (Document, Vec<Document>, Option<&'static str>, &'static str, i32);

#[tokio::test]
async fn change_stream_refuses_what_mongod_refuses() {
    let standalone = TestServer::start(&[]);
    assert_eq!(code(&watch(&standalone, "app", Some("c"), doc! {}, vec![])), Some(40573));
    drop(standalone);

    let server = TestServer::member(&[]);
    let cases: Vec<Refused> = vec![
        (doc! { "bogus": 1 }, vec![], Some("c"), "app", 40415),
        (doc! { "fullDocument": "sometimes" }, vec![], Some("c"), "app", 2),
        (doc! { "fullDocument": 1 }, vec![], Some("c"), "app", 14),
        (doc! { "resumeAfter": { "_data": "00" }, "startAfter": { "_data": "00" } }, vec![], Some("c"), "app", 260),
        (doc! { "resumeAfter": { "x": 1 } }, vec![], Some("c"), "app", 40647),
        (doc! {}, vec![doc! { "$group": { "_id": null } }], Some("c"), "app", 20),
        (doc! {}, vec![], Some("system.views"), "app", 73),
        (doc! {}, vec![], Some("oplog.rs"), "local", 73),
        (doc! {}, vec![], None, "admin", 73),
        (doc! { "allChangesForCluster": true }, vec![], None, "app", 72),
    ];
    for (spec, stages, coll, db, expected) in cases {
        let reply = watch(&server, db, coll, spec.clone(), stages.clone());
        assert_eq!(code(&reply), Some(expected), "{spec} {stages:?} on {db}.{coll:?}: {reply}");
    }
    // Both resume options at once, with valid tokens.
    let opened = watch(&server, "app", Some("c"), doc! {}, vec![]);
    let token = cursor(&opened).get_document("postBatchResumeToken").cloned().unwrap_or_default();
    let both =
        watch(&server, "app", Some("c"), doc! { "resumeAfter": token.clone(), "startAfter": token.clone() }, vec![]);
    assert_eq!(code(&both), Some(50865), "{both}");
    let mixed =
        doc! { "resumeAfter": token, "startAtOperationTime": mongodb::bson::Timestamp { time: 1, increment: 0 } };
    assert_eq!(code(&watch(&server, "app", Some("c"), mixed, vec![])), Some(40674));

    // A stage that removes the resume token fails the stream when an event comes.
    let stripped = watch(&server, "app", Some("c"), doc! {}, vec![doc! { "$project": { "_id": 0 } }]);
    let id = cursor(&stripped).get_i64("id").unwrap_or(0);
    write(&server, doc! { "insert": "c", "documents": [{ "_id": 1 }], "$db": "app" });
    let failed = get_more(&server, "app", "c", id);
    assert_eq!(code(&failed), Some(280), "{failed}");
    // On a view: mongod's 166.
    write(&server, doc! { "create": "v", "viewOn": "c", "pipeline": [], "$db": "app" });
    assert_eq!(code(&watch(&server, "app", Some("v"), doc! {}, vec![])), Some(166));
}

#[tokio::test]
async fn change_stream_get_more_waits_for_the_next_change() {
    let server = TestServer::member(&[]);
    let opened = watch(&server, "app", Some("c"), doc! {}, vec![]);
    let id = cursor(&opened).get_i64("id").unwrap_or(0);
    let mut waiting = server.raw();
    waiting.send(&op_msg(2, 0, &doc! { "getMore": id, "collection": "c", "maxTimeMS": 10_000_i64, "$db": "app" }));
    write(&server, doc! { "insert": "c", "documents": [{ "_id": "woken" }], "$db": "app" });
    let woken = reply_body(&waiting.receive().unwrap_or_default());
    let keys: Vec<_> = events(&woken).iter().filter_map(|e| e.get_document("documentKey").ok().cloned()).collect();
    assert_eq!(keys, [doc! { "_id": "woken" }], "{woken}");
}

#[tokio::test]
async fn change_stream_sees_a_transactions_images_and_the_collections_it_created() {
    let server = TestServer::member(&[]);
    write(&server, doc! { "create": "c", "changeStreamPreAndPostImages": { "enabled": true }, "$db": "app" });
    write(&server, doc! { "insert": "c", "documents": [{ "_id": 1, "n": 1 }, { "_id": 2, "n": 1 }], "$db": "app" });
    let required = doc! { "fullDocument": "required", "fullDocumentBeforeChange": "required" };
    let imaged = watch(&server, "app", Some("c"), required, vec![]);
    let imaged_id = cursor(&imaged).get_i64("id").unwrap_or(0);
    let expanded = watch(&server, "app", None, doc! { "showExpandedEvents": true }, vec![]);
    let expanded_id = cursor(&expanded).get_i64("id").unwrap_or(0);

    // One transaction: an update and a delete on `c`, and a new collection with an index.
    let lsid = doc! {
        "id": mongodb::bson::Binary { subtype: mongodb::bson::spec::BinarySubtype::Uuid, bytes: mongodb::bson::Uuid::new().bytes().to_vec() },
    };
    let statement = |mut body: Document, first: bool| {
        body.insert("lsid", lsid.clone());
        body.insert("txnNumber", 1_i64);
        body.insert("autocommit", false);
        if first {
            body.insert("startTransaction", true);
        }
        write(&server, body);
    };
    statement(
        doc! { "update": "c", "updates": [{ "q": { "_id": 1 }, "u": { "$inc": { "n": 10 } } }], "$db": "app" },
        true,
    );
    statement(doc! { "delete": "c", "deletes": [{ "q": { "_id": 2 }, "limit": 1 }], "$db": "app" }, false);
    statement(
        doc! { "createIndexes": "fresh", "indexes": [{ "key": { "k": 1 }, "name": "k_1" }], "$db": "app" },
        false,
    );
    statement(doc! { "commitTransaction": 1, "$db": "admin" }, false);

    let seen = events(&get_more(&server, "app", "c", imaged_id));
    let kinds: Vec<&str> = seen.iter().filter_map(|e| e.get_str("operationType").ok()).collect();
    assert_eq!(kinds, ["update", "delete"], "{seen:?}");
    assert_eq!(seen[0].get_document("fullDocumentBeforeChange").ok(), Some(&doc! { "_id": 1, "n": 1 }), "{seen:?}");
    assert_eq!(seen[0].get_document("fullDocument").ok(), Some(&doc! { "_id": 1, "n": 11 }), "{seen:?}");
    assert_eq!(seen[1].get_document("fullDocumentBeforeChange").ok(), Some(&doc! { "_id": 2, "n": 1 }), "{seen:?}");
    assert!(seen.iter().all(|e| e.get_i64("txnNumber").ok() == Some(1)), "{seen:?}");

    let all = events(&get_more(&server, "app", "$cmd.aggregate", expanded_id));
    let kinds: Vec<&str> = all.iter().filter_map(|e| e.get_str("operationType").ok()).collect();
    assert_eq!(kinds, ["create", "createIndexes", "update", "delete"], "{all:?}");
    assert_eq!(all[0].get_document("ns").ok(), Some(&doc! { "db": "app", "coll": "fresh" }), "{all:?}");
    // Every event of the transaction, its DDL too, carries its session.
    assert!(
        all.iter().all(|e| e.get_i64("txnNumber").ok() == Some(1)
            && e.get_document("lsid").ok().and_then(|l| l.get("id")) == lsid.get("id")),
        "{all:?}"
    );
}

#[tokio::test]
async fn change_stream_splits_events_too_large_for_a_reply() {
    let server = TestServer::member(&[]);
    write(&server, doc! { "create": "big", "changeStreamPreAndPostImages": { "enabled": true }, "$db": "app" });
    write(&server, doc! { "insert": "big", "documents": [{ "_id": 1, "value": "q".repeat(10 << 20) }], "$db": "app" });
    let split = vec![doc! { "$changeStreamSplitLargeEvent": {} }];
    let spec = doc! { "fullDocumentBeforeChange": "required" };
    let opened = watch(&server, "app", Some("big"), spec.clone(), split.clone());
    let id = cursor(&opened).get_i64("id").unwrap_or(0);
    write(
        &server,
        doc! { "update": "big", "updates": [{ "q": { "_id": 1 }, "u": { "$set": { "value": "z".repeat(10 << 20) } } }], "$db": "app" },
    );
    // 20 MB of event: two fragments, each in a batch of its own.
    let mut fragments = Vec::new();
    for _ in 0..4 {
        fragments.extend(events(&get_more(&server, "app", "big", id)));
        if fragments.len() == 2 {
            break;
        }
    }
    let parts: Vec<Option<&Document>> = fragments.iter().map(|f| f.get_document("splitEvent").ok()).collect();
    assert_eq!(parts, [Some(&doc! { "fragment": 1, "of": 2 }), Some(&doc! { "fragment": 2, "of": 2 })]);
    // Every field in one fragment or the other, smallest first (ties by name).
    let fields =
        |f: &Document| f.keys().filter(|k| !matches!(k.as_str(), "_id" | "splitEvent")).cloned().collect::<Vec<_>>();
    let first = ["wallTime", "clusterTime", "operationType", "documentKey", "ns", "fullDocumentBeforeChange"];
    assert_eq!(fields(&fragments[0]), first.map(str::to_owned));
    assert_eq!(fields(&fragments[1]), ["updateDescription"]);

    // Resumed after the first fragment: the second.
    let first_token = fragments[0].get_document("_id").cloned().unwrap_or_default();
    let mut resumed_spec = spec.clone();
    resumed_spec.insert("resumeAfter", first_token);
    let resumed = watch(&server, "app", Some("big"), resumed_spec.clone(), split.clone());
    let resumed_id = cursor(&resumed).get_i64("id").unwrap_or(0);
    let mut next = events(&resumed);
    if next.is_empty() {
        next = events(&get_more(&server, "app", "big", resumed_id));
    }
    assert_eq!(next.first().and_then(|f| f.get_document("splitEvent").ok()), Some(&doc! { "fragment": 2, "of": 2 }));
    assert_eq!(next.first().and_then(|f| f.get_document("_id").ok()), fragments[1].get_document("_id").ok());
    // Without the stage, resuming from a fragment cannot reproduce it: 280.
    let refused = watch(&server, "app", Some("big"), resumed_spec, vec![]);
    let refused = if code(&refused).is_some() {
        refused
    } else {
        get_more(&server, "app", "big", cursor(&refused).get_i64("id").unwrap_or(0))
    };
    assert_eq!(code(&refused), Some(280), "{refused}");

    // mongod's refusals.
    let not_last = watch(&server, "app", Some("big"), doc! {}, vec![split[0].clone(), doc! { "$match": {} }]);
    assert_eq!(code(&not_last), Some(7182802), "{not_last}");
    let with_spec =
        watch(&server, "app", Some("big"), doc! {}, vec![doc! { "$changeStreamSplitLargeEvent": { "x": 1 } }]);
    assert_eq!(code(&with_spec), Some(7182800), "{with_spec}");
    let plain = command(
        &server,
        doc! { "aggregate": "big", "pipeline": [{ "$changeStreamSplitLargeEvent": {} }], "cursor": {}, "$db": "app" },
    );
    assert_eq!(code(&plain), Some(20), "{plain}");
}
