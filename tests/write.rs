//! Write commands through the Rust driver: insert, update, delete, findAndModify.

mod common;

use common::TestServer;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ReturnDocument, UpdateOptions};

fn command_code(error: &mongodb::error::Error) -> Option<i32> {
    match error.kind.as_ref() {
        ErrorKind::Command(e) => Some(e.code),
        ErrorKind::Write(WriteFailure::WriteError(e)) => Some(e.code),
        ErrorKind::InsertMany(e) => e.write_errors.as_ref().and_then(|w| w.first()).map(|w| w.code),
        _ => None,
    }
}

#[tokio::test]
async fn write_insert_ordered_unordered_and_ids() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("app");

    // Ordered: stops at the duplicate; the index in writeErrors is the statement's.
    let reply = db
        .run_command(doc! { "insert": "c", "documents": [{ "_id": 1 }, { "_id": 2 }, { "_id": 1 }, { "_id": 3 }] })
        .await
        .expect("insert");
    assert_eq!(reply.get_i32("n").ok(), Some(2), "{reply}");
    let errors = reply.get_array("writeErrors").expect("writeErrors");
    let error = errors[0].as_document().expect("error");
    assert_eq!(error.get_i32("index").ok(), Some(2));
    assert_eq!(error.get_i32("code").ok(), Some(11000));
    assert_eq!(error.get_document("keyPattern").ok(), Some(&doc! { "_id": 1 }));
    assert_eq!(error.get_document("keyValue").ok(), Some(&doc! { "_id": 1 }));
    assert!(
        error
            .get_str("errmsg")
            .is_ok_and(|m| m.starts_with("E11000 duplicate key error collection: app.c index: _id_"))
    );

    // Unordered: keeps going.
    let reply = db
        .run_command(doc! { "insert": "c", "documents": [{ "_id": 3 }, { "_id": 1 }, { "_id": 4 }], "ordered": false })
        .await
        .expect("insert");
    assert_eq!(reply.get_i32("n").ok(), Some(2), "{reply}");

    // _id generated first when missing; moved first when present.
    let coll = db.collection::<Document>("gen");
    let result = coll.insert_one(doc! { "a": 1 }).await.expect("insert");
    assert!(matches!(result.inserted_id, Bson::ObjectId(_)));
    db.run_command(doc! { "insert": "gen", "documents": [{ "a": 2, "_id": "second" }] }).await.expect("insert");
    let stored = coll.find_one(doc! { "_id": "second" }).await.expect("find").expect("doc");
    assert_eq!(stored.keys().next().map(String::as_str), Some("_id"));
    let raw = db.run_command(doc! { "insert": "gen", "documents": [{ "x": 1 }] }).await.expect("insert");
    assert_eq!(raw.get_i32("n").ok(), Some(1));

    // _id of a forbidden type; 1 and 1.0 are the same _id.
    for bad in [
        Bson::Array(vec![Bson::Int32(1)]),
        Bson::RegularExpression(mongodb::bson::Regex {
            pattern: "a".try_into().expect("pattern"),
            options: "".try_into().expect("options"),
        }),
    ] {
        let reply = db.run_command(doc! { "insert": "c", "documents": [{ "_id": bad }] }).await.expect("insert");
        assert_eq!(reply.get_array("writeErrors").map(Vec::len).ok(), Some(1), "{reply}");
    }
    let reply = db.run_command(doc! { "insert": "c", "documents": [{ "_id": 1.0 }] }).await.expect("insert");
    assert_eq!(reply.get_array("writeErrors").map(Vec::len).ok(), Some(1), "{reply}");

    // Too large: sent raw, since the driver refuses to build such a command itself.
    let mut raw = server.raw();
    let big = "x".repeat(16 * 1024 * 1024);
    raw.send(&common::op_msg(1, 0, &doc! { "insert": "c", "documents": [{ "_id": 50, "big": big }], "$db": "app" }));
    let reply = common::reply_body(&raw.receive().expect("reply"));
    let errors = reply.get_array("writeErrors").expect("writeErrors");
    assert_eq!(errors[0].as_document().and_then(|e| e.get_i32("code").ok()), Some(10334), "{errors:?}");

    // `$`-prefixed and dotted field names are stored as mongod 5.0+ stores them.
    db.run_command(doc! { "insert": "c", "documents": [{ "_id": 60, "$price": 5, "a.b": 1, "n": { "$inc": true } }] })
        .await
        .expect("dollar fields");
    let stored = db.collection::<Document>("c").find_one(doc! { "_id": 60 }).await.expect("find").expect("doc");
    assert_eq!(stored.get_i32("$price").ok(), Some(5));
    assert_eq!(stored.get_i32("a.b").ok(), Some(1));
    let reply = db.run_command(doc! { "insert": "c", "documents": [{ "_id": { "$bad": 1 } }] }).await.expect("insert");
    assert_eq!(
        reply.get_array("writeErrors").ok().and_then(|e| e[0].as_document()).and_then(|e| e.get_i32("code").ok()),
        Some(52)
    );
    // The driver refuses such a replacement itself, so send the command as written.
    let reply = db
        .run_command(doc! { "update": "c", "updates": [{ "q": { "_id": 60 }, "u": { "x": 1, "$top": 1 } }] })
        .await
        .expect("update");
    let code =
        reply.get_array("writeErrors").ok().and_then(|e| e[0].as_document()).and_then(|e| e.get_i32("code").ok());
    assert_eq!(code, Some(52), "{reply}");
    db.collection::<Document>("c").delete_one(doc! { "_id": 60 }).await.expect("delete");
    assert_eq!(db.collection::<Document>("c").count_documents(doc! {}).await.expect("count"), 4);
}

#[tokio::test]
async fn write_update_operators_upsert_multi() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let coll = client.database("app").collection::<Document>("u");
    coll.insert_many((1..=5).map(|i| doc! { "_id": i, "n": i, "tags": ["a"] })).await.expect("insert");

    let result = coll
        .update_many(doc! { "n": { "$gt": 2 } }, doc! { "$inc": { "n": 10 }, "$set": { "hit": true } })
        .await
        .expect("update");
    assert_eq!((result.matched_count, result.modified_count), (3, 3));
    let result = coll.update_one(doc! { "_id": 1 }, doc! { "$set": { "n": 1 } }).await.expect("no-op");
    assert_eq!((result.matched_count, result.modified_count), (1, 0));
    coll.update_one(doc! { "_id": 1 }, doc! { "$push": { "tags": "b" }, "$unset": { "n": "" } }).await.expect("push");
    coll.update_one(doc! { "_id": 2 }, doc! { "$pull": { "tags": "a" } }).await.expect("pull");
    let one = coll.find_one(doc! { "_id": 1 }).await.expect("find").expect("doc");
    assert_eq!(one, doc! { "_id": 1, "tags": ["a", "b"] });
    let two = coll.find_one(doc! { "_id": 2 }).await.expect("find").expect("doc");
    assert_eq!(two.get_array("tags").map(Vec::len).ok(), Some(0));

    // Upsert seeds from the filter's equalities.
    let options = UpdateOptions::builder().upsert(true).build();
    let result = coll
        .update_one(doc! { "name": "new", "kind": { "$eq": "k" } }, doc! { "$set": { "v": 1 } })
        .with_options(options)
        .await
        .expect("upsert");
    let id = result.upserted_id.expect("upserted id");
    let created = coll.find_one(doc! { "_id": id }).await.expect("find").expect("doc");
    assert_eq!(created.get_str("name").ok(), Some("new"));
    assert_eq!(created.get_str("kind").ok(), Some("k"));
    assert_eq!(created.get_i32("v").ok(), Some(1));

    // Replacement keeps _id; changing _id is 66 ImmutableField; $inc on a string is 14.
    coll.replace_one(doc! { "_id": 3 }, doc! { "replaced": true }).await.expect("replace");
    assert_eq!(coll.find_one(doc! { "_id": 3 }).await.expect("find"), Some(doc! { "_id": 3, "replaced": true }));
    let error = coll.update_one(doc! { "_id": 4 }, doc! { "$set": { "_id": 40 } }).await.expect_err("immutable");
    assert_eq!(command_code(&error), Some(66));
    coll.update_one(doc! { "_id": 4 }, doc! { "$set": { "s": "text" } }).await.expect("set");
    let error = coll.update_one(doc! { "_id": 4 }, doc! { "$inc": { "s": 1 } }).await.expect_err("type");
    assert_eq!(command_code(&error), Some(14));
    let error = coll
        .update_one(doc! { "_id": 4 }, doc! { "$set": { "a": 1 }, "$inc": { "a": 1 } })
        .await
        .expect_err("conflict");
    assert_eq!(command_code(&error), Some(40));

    // Raw command: upserted array and nModified.
    let reply = client
        .database("app")
        .run_command(doc! { "update": "u", "updates": [
            { "q": { "_id": 100 }, "u": { "$set": { "x": 1 } }, "upsert": true },
            { "q": { "n": { "$gte": 0 } }, "u": { "$set": { "all": 1 } }, "multi": true },
        ] })
        .await
        .expect("update");
    assert_eq!(reply.get_array("upserted").map(Vec::len).ok(), Some(1), "{reply}");
    assert!(reply.get_i32("nModified").is_ok(), "nModified is an int, as mongod: {reply}");
}

#[tokio::test]
async fn write_delete_and_find_and_modify() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let coll = client.database("app").collection::<Document>("d");
    coll.insert_many((1..=6).map(|i| doc! { "_id": i, "even": i % 2 == 0 })).await.expect("insert");
    assert_eq!(coll.delete_one(doc! { "even": true }).await.expect("delete").deleted_count, 1);
    assert_eq!(coll.delete_many(doc! { "even": true }).await.expect("delete").deleted_count, 2);
    assert_eq!(coll.count_documents(doc! {}).await.expect("count"), 3);

    let before = coll
        .find_one_and_update(doc! { "_id": 1 }, doc! { "$set": { "seen": true } })
        .await
        .expect("fam")
        .expect("doc");
    assert!(!before.contains_key("seen"));
    let after = coll
        .find_one_and_update(doc! { "even": false }, doc! { "$inc": { "count": 1 } })
        .sort(doc! { "_id": -1 })
        .return_document(ReturnDocument::After)
        .projection(doc! { "count": 1 })
        .await
        .expect("fam")
        .expect("doc");
    assert_eq!(after, doc! { "_id": 5, "count": 1 });
    let upserted = coll
        .find_one_and_update(doc! { "_id": 99 }, doc! { "$set": { "new": true } })
        .upsert(true)
        .return_document(ReturnDocument::After)
        .await
        .expect("fam upsert")
        .expect("doc");
    assert_eq!(upserted, doc! { "_id": 99, "new": true });
    let removed = coll.find_one_and_delete(doc! { "_id": 3 }).await.expect("fam remove").expect("doc");
    assert_eq!(removed.get_i32("_id").ok(), Some(3));
    let replaced = coll
        .find_one_and_replace(doc! { "_id": 1 }, doc! { "r": 1 })
        .return_document(ReturnDocument::After)
        .await
        .expect("fam replace")
        .expect("doc");
    assert_eq!(replaced, doc! { "_id": 1, "r": 1 });

    let raw = client
        .database("app")
        .run_command(
            doc! { "findAndModify": "d", "query": { "_id": 12345 }, "update": { "$set": { "a": 1 } }, "upsert": true },
        )
        .await
        .expect("raw fam");
    let last = raw.get_document("lastErrorObject").expect("lastErrorObject");
    assert_eq!(last.get_bool("updatedExisting").ok(), Some(false));
    assert_eq!(last.get_i32("upserted").ok(), Some(12345), "{raw}");
    assert_eq!(raw.get("value"), Some(&Bson::Null));
    let error = client
        .database("app")
        .run_command(doc! { "findAndModify": "d", "query": {}, "remove": true, "update": { "$set": { "a": 1 } } })
        .await
        .expect_err("both");
    assert_eq!(command_code(&error), Some(9));
}

#[tokio::test]
async fn write_bad_arguments_are_errors_and_write_nothing() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("app");
    for (command, expected) in [
        (doc! { "insert": "c", "documents": 1 }, 14),
        (doc! { "insert": "c", "documents": [1] }, 14),
        (doc! { "insert": "c" }, 9),
        (doc! { "insert": "c", "documents": [{}], "ordered": "yes" }, 14),
        (doc! { "update": "c" }, 9),
        (doc! { "delete": "c", "deletes": [{ "q": {}, "limit": 5 }] }, 9),
        (doc! { "update": "c", "updates": [{ "q": {}, "u": { "$set": { "a": 1 } }, "sort": { "_id": 1 } }] }, 40415),
        (doc! { "findAndModify": "c", "query": {} }, 9),
        // A standalone has no replica-set modes: mongod answers 2 BadValue.
        (doc! { "insert": "c", "documents": [{}], "writeConcern": { "w": "fancy" } }, 2),
    ] {
        // Each is refused whole, as a command error (mongod's IDL parsing and write concern
        // checks), never as a per-statement write error.
        let outcome = db.run_command(command.clone()).await;
        let code = match &outcome {
            Err(error) => match error.kind.as_ref() {
                ErrorKind::Command(e) => Some(e.code),
                _ => None,
            },
            Ok(_) => None,
        };
        assert_eq!(code, Some(expected), "{command}: {outcome:?}");
    }
    assert_eq!(
        db.collection::<Document>("c").count_documents(doc! {}).await.expect("count"),
        0,
        "nothing half-written"
    );
}

#[tokio::test]
async fn write_update_positional_array_filters_and_upsert_seed() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("app");
    let coll = db.collection::<Document>("p");
    coll.insert_one(doc! { "_id": 1, "a": [1, 5, 2, 7], "g": [ { "k": "x", "n": 1 }, { "k": "y", "n": 1 } ] })
        .await
        .expect("insert");

    // `$` is the element the query matched.
    coll.update_one(doc! { "_id": 1, "g.k": "y" }, doc! { "$inc": { "g.$.n": 5 } }).await.expect("positional");
    // arrayFilters through the update command.
    let reply = db
        .run_command(doc! { "update": "p", "updates": [
            { "q": { "_id": 1 }, "u": { "$set": { "a.$[big]": 0 } }, "arrayFilters": [ { "big": { "$gt": 4 } } ] },
        ] })
        .await
        .expect("update");
    assert_eq!(reply.get_i32("nModified").ok(), Some(1), "{reply}");
    let doc = coll.find_one(doc! { "_id": 1 }).await.expect("find").expect("doc");
    assert_eq!(doc, doc! { "_id": 1, "a": [1, 0, 2, 0], "g": [ { "k": "x", "n": 1 }, { "k": "y", "n": 6 } ] });

    // An unused array filter is 9 FailedToParse, in findAndModify too.
    let reply = db
        .run_command(doc! { "update": "p", "updates": [
            { "q": { "_id": 1 }, "u": { "$set": { "a.$[i]": 0 } }, "arrayFilters": [ { "i": 1 }, { "j": 1 } ] },
        ] })
        .await
        .expect("update");
    let code =
        reply.get_array("writeErrors").ok().and_then(|e| e[0].as_document()).and_then(|e| e.get_i32("code").ok());
    assert_eq!(code, Some(9), "{reply}");
    let modified = db
        .run_command(doc! { "findAndModify": "p", "query": { "_id": 1 }, "update": { "$set": { "a.$[i]": 9 } },
        "arrayFilters": [ { "i": 2 } ], "new": true })
        .await
        .expect("findAndModify");
    assert_eq!(
        modified.get_document("value").ok().and_then(|v| v.get_array("a").ok()).map(|a| a[2].clone()),
        Some(Bson::Int32(9))
    );

    // Upsert: equalities (inside $and, dotted) seed the document, then $setOnInsert and $set.
    let options = UpdateOptions::builder().upsert(true).build();
    let result = coll
        .update_one(
            doc! { "$and": [ { "_id": 7 }, { "m.k": "v" } ], "n": { "$gt": 1 } },
            doc! { "$setOnInsert": { "born": true }, "$set": { "s": 1 } },
        )
        .with_options(options)
        .await
        .expect("upsert");
    assert_eq!(result.upserted_id, Some(Bson::Int32(7)));
    let created = coll.find_one(doc! { "_id": 7 }).await.expect("find").expect("doc");
    assert_eq!(created, doc! { "_id": 7, "m": { "k": "v" }, "born": true, "s": 1 });
}

#[tokio::test]
async fn write_update_pipeline_and_let() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let coll = client.database("app").collection::<Document>("p");
    coll.insert_many((1..=4).map(|i| doc! { "_id": i, "a": i, "b": 10 })).await.expect("insert");

    let pipeline = vec![doc! { "$set": { "sum": { "$add": ["$a", "$b"] } } }, doc! { "$unset": "b" }];
    let result = coll
        .update_many(doc! { "$expr": { "$gt": ["$a", "$$min"] } }, pipeline)
        .let_vars(doc! { "min": 2 })
        .await
        .expect("pipeline update");
    assert_eq!((result.matched_count, result.modified_count), (2, 2));
    assert_eq!(coll.find_one(doc! { "_id": 4 }).await.expect("find"), Some(doc! { "_id": 4, "a": 4, "sum": 14 }));
    assert_eq!(coll.find_one(doc! { "_id": 1 }).await.expect("find"), Some(doc! { "_id": 1, "a": 1, "b": 10 }));

    // An upsert runs the pipeline over the query's equalities.
    let upserted = coll
        .update_one(doc! { "_id": 9, "a": 5 }, vec![doc! { "$set": { "double": { "$multiply": ["$a", 2] } } }])
        .upsert(true)
        .await
        .expect("pipeline upsert");
    assert_eq!(upserted.upserted_id, Some(Bson::Int32(9)));
    assert_eq!(coll.find_one(doc! { "_id": 9 }).await.expect("find"), Some(doc! { "_id": 9, "a": 5, "double": 10 }));

    let after = coll
        .find_one_and_update(doc! { "_id": 2 }, vec![doc! { "$replaceWith": { "only": "$a" } }])
        .return_document(ReturnDocument::After)
        .await
        .expect("fam pipeline")
        .expect("doc");
    assert_eq!(after, doc! { "_id": 2, "only": 2 });

    let err = coll.update_one(doc! {}, vec![doc! { "$match": {} }]).await.expect_err("stage refused");
    assert_eq!(command_code(&err), Some(72));
}

#[tokio::test]
async fn write_update_inc_and_mul_decimal() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let coll = client.database("app").collection::<Document>("money");
    let dec = |s: &str| Bson::Decimal128(s.parse().expect("decimal literal"));
    coll.insert_one(doc! { "_id": 1, "balance": dec("10.10"), "count": 2 }).await.expect("insert");
    let result = coll
        .update_one(doc! { "_id": 1 }, doc! { "$inc": { "balance": dec("0.20"), "count": dec("0.5") } })
        .await
        .expect("update");
    assert_eq!(result.modified_count, 1);
    coll.update_one(doc! { "_id": 1 }, doc! { "$mul": { "balance": 3 } }).await.expect("mul");
    let found = coll.find_one(doc! { "_id": 1 }).await.expect("find").expect("document");
    assert_eq!(found, doc! { "_id": 1, "balance": dec("30.90"), "count": dec("2.5") });
    // The sum is exact where a double would not be.
    let exact = coll.find_one(doc! { "$expr": { "$eq": [{ "$add": [dec("0.1"), dec("0.2")] }, dec("0.3")] } }).await;
    assert!(exact.expect("find").is_some());
}

#[tokio::test]
async fn write_update_positional_from_elem_match_and_or() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let coll = client.database("app").collection::<Document>("grades");
    coll.insert_one(doc! { "_id": 5, "grades": [
        { "grade": 80, "mean": 75 }, { "grade": 85, "mean": 90 }, { "grade": 90, "mean": 85 },
    ] })
    .await
    .expect("insert");
    // The element that meets both conditions at once.
    let filter = doc! { "_id": 5, "grades": { "$elemMatch": { "grade": { "$lte": 90 }, "mean": { "$gt": 80 } } } };
    coll.update_one(filter, doc! { "$set": { "grades.$.std": 6 } }).await.expect("elemMatch");
    // An $or of equalities on one path is an $in to mongod: its first matching element.
    coll.update_one(
        doc! { "$or": [ { "grades.grade": 90 }, { "grades.grade": 80 } ] },
        doc! { "$set": { "grades.$.first": true } },
    )
    .await
    .expect("$or as $in");
    let found = coll.find_one(doc! { "_id": 5 }).await.expect("find").expect("document");
    assert_eq!(
        found,
        doc! { "_id": 5, "grades": [
            { "grade": 80, "mean": 75, "first": true }, { "grade": 85, "mean": 90, "std": 6 }, { "grade": 90, "mean": 85 },
        ] }
    );
    // An $or over different paths leaves `$` without an element.
    let err = coll
        .update_one(doc! { "$or": [ { "grades.grade": 90 }, { "_id": 0 } ] }, doc! { "$set": { "grades.$.x": 1 } })
        .await
        .expect_err("no element for $");
    assert_eq!(command_code(&err), Some(2));
    // mongod's manual, "update with multiple array matches": the canonical query sorts the
    // conditions by operator and path, and the last one to reach an array (grades) decides.
    let deans = client.database("app").collection::<Document>("deans");
    deans
        .insert_one(doc! { "_id": 8, "activity_ids": [1, 2], "grades": [90, 95], "deans_list": [2021, 2020] })
        .await
        .expect("insert");
    deans
        .update_one(
            doc! { "activity_ids": 1, "grades": 95, "deans_list": 2021 },
            doc! { "$set": { "deans_list.$": 2022 } },
        )
        .await
        .expect("update");
    let updated = deans.find_one(doc! { "_id": 8 }).await.expect("find").expect("document");
    assert_eq!(updated.get_array("deans_list").ok(), Some(&vec![Bson::Int32(2021), Bson::Int32(2022)]));
    // A find projection takes the same element.
    let projected = coll
        .find_one(doc! { "grades": { "$elemMatch": { "mean": { "$gt": 80 }, "grade": { "$gt": 85 } } } })
        .projection(doc! { "grades.$": 1 })
        .await
        .expect("find")
        .expect("document");
    assert_eq!(projected, doc! { "_id": 5, "grades": [ { "grade": 90, "mean": 85 } ] });
}

#[tokio::test]
async fn write_update_dollar_prefixed_fields_as_mongod_5() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("app");
    let coll = db.collection::<Document>("d");
    db.run_command(doc! { "insert": "d", "documents": [
        { "_id": 1, "preferences": {}, "nested": { "data": { "$*": { "_id": 1, "k": 2 } } } },
    ] })
    .await
    .expect("insert");
    // Sent as written: the driver refuses some of these shapes itself.
    let update = |statement: Document| {
        let db = db.clone();
        async move { db.run_command(doc! { "update": "d", "updates": [statement] }).await.expect("update") }
    };
    let write_error = |reply: &Document| {
        let error = reply.get_array("writeErrors").ok().and_then(|e| e.first()).and_then(Bson::as_document);
        error.map(|e| (e.get_i32("code").unwrap_or_default(), e.get_str("errmsg").unwrap_or_default().to_owned()))
    };

    // Nested `$` fields may be set and unset on an existing document.
    let reply = update(doc! { "q": { "_id": 1 }, "u": { "$set": { "preferences.$each": 42 } } }).await;
    assert_eq!((reply.get_i32("nModified").ok(), write_error(&reply)), (Some(1), None), "{reply}");
    let reply = update(doc! { "q": { "_id": 1 }, "u": { "$unset": { "nested.data.$*._id": 1 } } }).await;
    assert_eq!((reply.get_i32("nModified").ok(), write_error(&reply)), (Some(1), None), "{reply}");
    let stored = coll.find_one(doc! { "_id": 1 }).await.expect("find").expect("doc");
    assert_eq!(stored, doc! { "_id": 1, "preferences": { "$each": 42 }, "nested": { "data": { "$*": { "k": 2 } } } });

    // An upsert that inserts is validated as an insert: top-level `$` fields are stored.
    let reply = update(doc! { "q": { "_id": 2 }, "u": { "$set": { "$myKey": 1 } }, "upsert": true }).await;
    assert_eq!((reply.get_i32("n").ok(), write_error(&reply)), (Some(1), None), "{reply}");
    let reply = update(doc! { "q": { "_id": 3 }, "u": { "a": 1, "$top": 2 }, "upsert": true }).await;
    assert_eq!((reply.get_i32("n").ok(), write_error(&reply)), (Some(1), None), "{reply}");
    assert_eq!(coll.find_one(doc! { "_id": 2 }).await.expect("find"), Some(doc! { "_id": 2, "$myKey": 1 }));
    assert_eq!(coll.find_one(doc! { "_id": 3 }).await.expect("find"), Some(doc! { "_id": 3, "a": 1, "$top": 2 }));

    // Setting a top-level `$` field of an existing document is refused.
    let refused = |field: &str| {
        format!(
            "The dollar ($) prefixed field '{field}' in '{field}' is not allowed in the context of an update's \
             replacement document. Consider using an aggregation pipeline with $replaceWith."
        )
    };
    let reply = update(doc! { "q": { "_id": 1 }, "u": { "$set": { "$myKey": 1 } } }).await;
    assert_eq!(write_error(&reply), Some((52, refused("$myKey"))), "{reply}");
    let reply = update(doc! { "q": { "_id": 2 }, "u": { "$set": { "$myKey": 5 } } }).await;
    assert_eq!(write_error(&reply), Some((52, refused("$myKey"))), "{reply}");
    let error = db
        .run_command(doc! { "findAndModify": "d", "query": { "_id": 1 }, "update": { "$set": { "$x": 1 } } })
        .await
        .expect_err("refused");
    assert_eq!(command_code(&error), Some(52));
    // A positional `$` first in a path is a parse error of the statement.
    let reply = update(doc! { "q": { "_id": 1 }, "u": { "$set": { "$": 1 } } }).await;
    assert_eq!(
        write_error(&reply),
        Some((2, "Cannot have positional (i.e. '$') element in the first position in path '$'".to_owned()))
    );
    assert_eq!(coll.find_one(doc! { "_id": 1 }).await.expect("find"), Some(stored));
}
