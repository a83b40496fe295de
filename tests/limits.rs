//! mongod's nesting and size limits through the Rust driver. Each input here used to abort the
//! server (a stack overflow drops every connection) or drive it to gigabytes of memory; now
//! each is refused with mongod's code and the server still answers `ping`.
#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use common::TestServer;
use mongodb::bson::{Bson, Document, RawDocumentBuf, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::UpdateOptions;
use mongodb::{Client, Collection};

/// The code of a failed command or of a single write's error.
fn code(error: &mongodb::error::Error) -> Option<i32> {
    match error.kind.as_ref() {
        ErrorKind::Command(e) => Some(e.code),
        ErrorKind::Write(WriteFailure::WriteError(e)) => Some(e.code),
        ErrorKind::InsertMany(e) => e.write_errors.as_ref().and_then(|w| w.first()).map(|w| w.code),
        _ => None,
    }
}

/// The message of a failed command or of a single write's error.
fn message(error: &mongodb::error::Error) -> String {
    match error.kind.as_ref() {
        ErrorKind::Command(e) => e.message.clone(),
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.message.clone(),
        other => format!("{other:?}"),
    }
}

/// `a.a. ... .a` with `parts` components.
fn path(parts: usize) -> String {
    vec!["a"; parts].join(".")
}

/// `{a: {a: ... {a: 1}}}` with `levels` documents in all.
fn nested(levels: usize) -> Document {
    let mut doc = doc! { "a": 1 };
    for _ in 1..levels {
        doc = doc! { "a": doc };
    }
    doc
}

/// `{a: {a: ... {a: 1}}}` with `levels` documents in all, written as bytes: deeper than any
/// request may nest, as only an older version could have stored it.
fn nested_bytes(levels: usize) -> RawDocumentBuf {
    let mut bytes = Vec::with_capacity(levels * 8 + 8);
    for outer in 1..levels {
        bytes.extend_from_slice(&i32::try_from(12 + 8 * (levels - outer)).expect("size").to_le_bytes());
        bytes.extend_from_slice(&[0x03, b'a', 0]);
    }
    bytes.extend_from_slice(&[12, 0, 0, 0, 0x10, b'a', 0, 1, 0, 0, 0, 0]);
    bytes.resize(bytes.len() + levels - 1, 0);
    RawDocumentBuf::from_bytes(bytes).expect("nested document")
}

async fn assert_alive(client: &Client) {
    let reply = client.database("admin").run_command(doc! { "ping": 1 }).await.expect("ping after the input");
    assert_eq!(reply.get_f64("ok").ok().or(reply.get_i32("ok").ok().map(f64::from)), Some(1.0), "{reply}");
}

#[tokio::test]
async fn limits_update_paths_past_the_storage_depth_are_overflow() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let coll = client.database("app").collection::<Document>("c");
    coll.insert_one(doc! { "_id": 0 }).await.expect("insert");

    // Creating a 5,000-level path is refused before the document is built.
    for op in ["$set", "$inc"] {
        let err = coll.update_one(doc! { "_id": 0 }, doc! { op: { path(5000): 1 } }).await.expect_err(op);
        assert_eq!(code(&err), Some(15), "{op}: {err}");
        assert_eq!(message(&err), "Document exceeds maximum nesting depth of 180");
    }
    // Removing a path that cannot exist changes nothing.
    let unset = coll.update_one(doc! { "_id": 0 }, doc! { "$unset": { path(5000): 1 } }).await.expect("$unset");
    assert_eq!((unset.matched_count, unset.modified_count), (1, 0));
    assert_alive(&client).await;

    // The limit is mongod's: a field at level 180 is stored, one at level 181 is not.
    let err = coll.update_one(doc! { "_id": 0 }, doc! { "$set": { path(181): 1 } }).await.expect_err("181");
    assert_eq!(code(&err), Some(15), "{err}");
    let err = coll.update_one(doc! { "_id": 0 }, doc! { "$set": { path(180): { "b": 1 } } }).await.expect_err("value");
    assert_eq!(code(&err), Some(15), "{err}");
    let set = coll.update_one(doc! { "_id": 0 }, doc! { "$set": { path(180): 1 } }).await.expect("180 levels");
    assert_eq!(set.modified_count, 1);
    let raw = client.database("app").collection::<RawDocumentBuf>("c");
    let stored = raw.find_one(doc! { "_id": 0 }).await.expect("find").expect("document");
    assert!(stored.get("a").expect("a").is_some());

    // An upsert that would create the path is refused too.
    let err = coll
        .update_one(doc! { "_id": 1 }, doc! { "$set": { path(5000): 1 } })
        .with_options(UpdateOptions::builder().upsert(true).build())
        .await
        .expect_err("upsert");
    assert_eq!(code(&err), Some(15), "{err}");
    assert_eq!(coll.count_documents(doc! {}).await.expect("count"), 1);
    assert_alive(&client).await;
}

#[tokio::test]
async fn limits_documents_nested_past_180_levels_are_overflow() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("app");
    let coll = db.collection::<Document>("c");

    let mut at_limit = nested(180);
    at_limit.insert("_id", 1);
    coll.insert_one(at_limit).await.expect("180 levels");
    let mut past = nested(181);
    past.insert("_id", 2);
    let err = coll.insert_one(past).await.expect_err("181 levels");
    assert_eq!(code(&err), Some(15), "{err}");
    assert_eq!(message(&err), "cannot insert document because it exceeds 180 levels of nesting");

    // A request nested past 200 levels is refused whole, as mongod's BSON validation does.
    let ok = db.run_command(doc! { "ping": 1, "x": nested(200) }).await;
    assert!(ok.is_ok(), "{ok:?}");
    let err = db.run_command(doc! { "ping": 1, "x": nested(201) }).await.expect_err("201 levels");
    assert_eq!(code(&err), Some(15), "{err}");
    assert_eq!(message(&err), "BSONObj exceeds maximum nested object depth");
    assert_alive(&client).await;
}

#[tokio::test]
async fn limits_paths_longer_than_mongods_field_paths_are_refused() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("app");
    let coll = db.collection::<Document>("c");
    coll.insert_one(doc! { "_id": 0, "a": 1 }).await.expect("insert");

    let err = coll.find(doc! {}).projection(doc! { path(50_000): 1 }).await.expect_err("projection");
    assert_eq!((code(&err), message(&err)), (Some(15), "FieldPath is too long".to_owned()));
    let err = coll.aggregate([doc! { "$project": { path(50_000): 1 } }]).await.expect_err("$project");
    assert_eq!((code(&err), message(&err)), (Some(15), "FieldPath is too long".to_owned()));
    let err = coll.aggregate([doc! { "$set": { "x": format!("${}", path(201)) } }]).await.expect_err("$set");
    assert_eq!(code(&err), Some(15), "{err}");
    let err = coll.find(doc! {}).sort(doc! { path(201): 1 }).await.expect_err("sort");
    assert_eq!(code(&err), Some(15), "{err}");
    coll.find(doc! {}).projection(doc! { path(200): 1 }).await.expect("200 components");

    // Filters allow 180 components (mongod's code 5729100 past that).
    let err = coll.find(doc! { path(181): 1 }).await.expect_err("filter");
    assert_eq!((code(&err), message(&err)), (Some(5_729_100), "FieldPath is too long".to_owned()));
    coll.find(doc! { path(180): 1 }).await.expect("180 components");
    let err = coll
        .update_one(doc! { path(10_000): 1 }, doc! { "$set": { "x": 1 } })
        .with_options(UpdateOptions::builder().upsert(true).build())
        .await
        .expect_err("upsert");
    assert_eq!(code(&err), Some(5_729_100), "{err}");
    assert_eq!(coll.count_documents(doc! {}).await.expect("count"), 1);
    assert_alive(&client).await;
}

#[tokio::test]
async fn limits_documents_stored_too_deep_by_older_versions_are_reported() {
    // Older versions stored whatever an update built; write such documents under the server.
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let storage = monarch::storage::Storage::open(&dir.path().join("db")).expect("storage");
        let ns = monarch::storage::Namespace::new("app", "c").expect("namespace");
        let collection = storage.collection_or_create(&ns).expect("collection");
        let mut writer = storage.writer(&collection).expect("writer");
        let mut poison = RawDocumentBuf::new();
        poison.append(mongodb::bson::raw::cstr!("_id"), 1);
        poison.append(mongodb::bson::raw::cstr!("a"), nested_bytes(2_000));
        writer.insert(poison).expect("insert");
        let mut deep = RawDocumentBuf::new();
        deep.append(mongodb::bson::raw::cstr!("_id"), 3);
        deep.append(mongodb::bson::raw::cstr!("a"), nested_bytes(190));
        writer.insert(deep).expect("insert");
        let mut plain = RawDocumentBuf::new();
        plain.append(mongodb::bson::raw::cstr!("_id"), 2);
        writer.insert(plain).expect("insert");
        writer.commit().expect("commit");
        storage.flush();
    }
    let mut server = TestServer::start_in(dir, &[]);
    for round in 0..2 {
        let client = server.client("").await;
        let db = client.database("app");
        let coll = db.collection::<RawDocumentBuf>("c");
        let err = coll.find_one(doc! { "_id": 1 }).await.expect_err("too deep to return");
        assert_eq!(code(&err), Some(15), "{err}");
        assert_eq!(message(&err), "BSONObj exceeds maximum nested object depth in object with _id: 1");
        let err = coll.find(doc! {}).sort(doc! { "a": 1 }).await.expect_err("find");
        assert_eq!(code(&err), Some(15), "{err}");
        let err = coll.aggregate([doc! { "$project": { "a": 1 } }]).await.expect_err("aggregate");
        assert_eq!(code(&err), Some(15), "{err}");
        let err = db
            .collection::<Document>("c")
            .update_one(doc! { "_id": 1 }, doc! { "$set": { "b": 1 } })
            .await
            .expect_err("update");
        assert_eq!(code(&err), Some(15), "{err}");
        // 190 levels still read back, but no update may store them again.
        assert!(coll.find_one(doc! { "_id": 3 }).await.expect("find").is_some());
        let err = db
            .collection::<Document>("c")
            .update_one(doc! { "_id": 3 }, doc! { "$set": { "b": 1 } })
            .await
            .expect_err("update");
        assert_eq!(code(&err), Some(15), "{err}");
        // Filters and counts walk it without harm.
        assert_eq!(coll.count_documents(doc! { path(150): 1 }).await.expect("count"), 0);
        assert_eq!(coll.count_documents(doc! {}).await.expect("count"), 3);
        let report = db.run_command(doc! { "validate": "c" }).await.expect("validate");
        assert_eq!(report.get_bool("valid").ok(), Some(false), "{report}");
        let errors = report.get_array("errors").expect("errors");
        assert!(errors.iter().any(|e| e.as_str().is_some_and(|e| e.contains("_id: 1"))), "{report}");
        assert_alive(&client).await;
        if round == 0 {
            server = server.restart(&[]);
        }
    }
    let client = server.client("").await;
    let coll = client.database("app").collection::<RawDocumentBuf>("c");
    assert_eq!(coll.delete_one(doc! { "_id": 1 }).await.expect("delete").deleted_count, 1);
    let all: Vec<RawDocumentBuf> = {
        let mut cursor = coll.find(doc! {}).await.expect("find");
        let mut out = Vec::new();
        while cursor.advance().await.expect("advance") {
            out.push(cursor.current().to_owned());
        }
        out
    };
    assert_eq!(all.len(), 2);
    assert_alive(&client).await;
}

#[tokio::test]
async fn limits_strings_and_arrays_built_by_expressions_are_bounded() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let coll: Collection<Document> = client.database("app").collection("c");
    coll.insert_one(doc! { "_id": 0, "s": "x".repeat(1 << 20) }).await.expect("insert");
    let concat = |n: usize| doc! { "$expr": { "$eq": [{ "$concat": vec![Bson::from("$s"); n] }, "x"] } };

    // mongod's string builder gives up past 64 MiB, long before 1,000 MiB are built. The count
    // is an aggregate, whose runtime errors mongod names as the aggregation's.
    let err = coll.count_documents(concat(1000)).await.expect_err("1000 MiB");
    assert_eq!(code(&err), Some(13548), "{err}");
    assert_eq!(
        message(&err),
        "PlanExecutor error during aggregation :: caused by :: BufBuilder attempted to grow() to 68157440 bytes, past \
         the 64MB limit."
    );
    // A string value stays under 16 MiB.
    let err = coll.count_documents(concat(16)).await.expect_err("16 MiB");
    assert_eq!(
        (code(&err), message(&err)),
        (
            Some(16493),
            "PlanExecutor error during aggregation :: caused by :: Tried to create string longer than 16MB".to_owned()
        )
    );
    assert_eq!(coll.count_documents(concat(15)).await.expect("15 MiB"), 0);

    // An array naming a large field many times copies it each time: bounded as well.
    let copies = doc! { "$expr": { "$gt": [{ "$size": [vec![Bson::from("$s"); 200]] }, 0] } };
    let err = coll.count_documents(copies).await.expect_err("200 copies");
    assert_eq!(code(&err), Some(146), "{err}");
    let err = coll
        .find(doc! {})
        .projection((0..200).map(|i| (format!("f{i}"), Bson::from("$s"))).collect::<Document>())
        .await
        .expect_err("200 computed fields");
    assert_eq!(code(&err), Some(146), "{err}");
    assert_alive(&client).await;
    // Before, the 1,000-way $concat alone drove the server past 2 GB.
    let peak = server.peak_rss_kib();
    assert!(peak < 512 * 1024, "peak RSS {peak} KiB");
}

#[tokio::test]
async fn limits_explain_larger_than_16mb_is_bson_object_too_large() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("app");
    db.collection::<Document>("c").insert_many((0..10).map(|i| doc! { "a": i })).await.expect("insert");
    let values: Vec<Bson> = (0..1_000_000).map(Bson::Int32).collect();
    let explain = doc! { "explain": { "find": "c", "filter": { "a": { "$in": values } } } };

    for indexed in [false, true] {
        if indexed {
            db.run_command(doc! { "createIndexes": "c", "indexes": [{ "key": { "a": 1 }, "name": "a_1" }] })
                .await
                .expect("createIndexes");
        }
        let err = db.run_command(explain.clone()).await.expect_err("explain");
        assert_eq!(code(&err), Some(10334), "indexed {indexed}: {err}");
        let text = message(&err);
        assert!(text.starts_with("BSONObj size: "), "{text}");
        assert!(
            text.ends_with(
                "is invalid. Size must be between 0 and 16793600(16MB) First element: explainVersion: \"1\""
            ),
            "{text}"
        );
        assert_alive(&client).await;
    }
    // Before, the indexed explain peaked near 1 GB building the reply it then could not send.
    let peak = server.peak_rss_kib();
    assert!(peak < 640 * 1024, "peak RSS {peak} KiB");
}

/// `levels` applications of `wrap` around `leaf`.
fn wrapped(levels: usize, leaf: Bson, wrap: impl Fn(Bson) -> Bson) -> Bson {
    (0..levels).fold(leaf, |inner, _| wrap(inner))
}

#[tokio::test]
async fn limits_requests_nested_to_the_limit_are_answered() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("app");
    let coll = db.collection::<RawDocumentBuf>("c");
    db.collection::<Document>("c").insert_one(doc! { "_id": 1, "a": 1 }).await.expect("insert");
    let as_doc = |b: Bson| b.as_document().cloned().expect("document");

    // Each filter, expression and projection nests as deep as a request may (the command and
    // `filter` take the first levels); each recursion over them must fit the server's stack.
    let filters = [
        wrapped(97, Bson::Document(doc! { "a": 1 }), |x| Bson::Document(doc! { "$and": [x] })),
        wrapped(97, Bson::Document(doc! { "a": 1 }), |x| Bson::Document(doc! { "$or": [x, { "b": 1 }] })),
        wrapped(97, Bson::Document(doc! { "a": 1 }), |x| Bson::Document(doc! { "a": { "$elemMatch": x } })),
        Bson::Document(
            doc! { "a": wrapped(98, Bson::Document(doc! { "$gt": 1 }), |x| Bson::Document(doc! { "$not": x })) },
        ),
        Bson::Document(doc! { "$expr": wrapped(96, Bson::Int32(1), |x| Bson::Document(doc! { "$add": [x, 1] })) }),
        Bson::Document(
            doc! { "$expr": { "$eq": [wrapped(195, Bson::Int32(1), |x| Bson::Document(doc! { "a": x })), 1] } },
        ),
        Bson::Document(doc! { "$expr": { "$eq": [wrapped(195, Bson::Int32(1), |x| Bson::Array(vec![x])), 1] } }),
        Bson::Document(doc! {
            "$jsonSchema": wrapped(48, Bson::Document(doc! { "bsonType": "int" }), |x| {
                Bson::Document(doc! { "properties": { "a": x } })
            })
        }),
        Bson::Document(doc! { "a": wrapped(197, Bson::Int32(1), |x| Bson::Document(doc! { "a": x })) }),
    ];
    for filter in filters {
        let found = coll.find(as_doc(filter)).await;
        assert!(found.is_ok(), "{found:?}");
        assert_alive(&client).await;
    }
    let projection = as_doc(wrapped(197, Bson::Int32(1), |x| Bson::Document(doc! { "a": x })));
    coll.find(doc! {}).projection(projection).await.expect("projection");

    // A document at the storage limit is written, read, sorted and reshaped by a pipeline.
    let mut deep = as_doc(wrapped(180, Bson::Int32(1), |x| Bson::Document(doc! { "a": x })));
    deep.insert("_id", 2);
    db.collection::<Document>("c").insert_one(deep).await.expect("180 levels");
    let mut cursor = coll.find(doc! {}).sort(doc! { "a": 1 }).await.expect("sort");
    while cursor.advance().await.expect("advance") {}
    let pipeline = [doc! { "$set": { "b": "$a" } }, doc! { "$set": { "c": { "d": "$b" } } }];
    let mut cursor = coll.aggregate(pipeline).await.expect("aggregate");
    while cursor.advance().await.expect("advance") {}
    let err = db
        .collection::<Document>("c")
        .update_one(doc! { "_id": 2 }, vec![doc! { "$set": { "b": { "c": "$a" } } }])
        .await
        .expect_err("an update nesting it further");
    assert_eq!(code(&err), Some(15), "{err}");
    assert_alive(&client).await;
}

#[tokio::test]
async fn limits_runaway_regular_expressions_give_up_as_mongods_do() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let coll = client.database("app").collection::<Document>("c");
    coll.insert_one(doc! { "_id": 1, "s": "a".repeat(64) }).await.expect("insert");
    // A backreference puts the pattern on the backtracking engine; on 64 `a`s its search
    // explodes and gives up at the backtracking limit.
    let explosive = r"^(a|aa)+(?=b)\1c$";

    // mongod's filter counts a match that gives up as none.
    let found = coll.count_documents(doc! { "s": { "$regex": explosive } }).await.expect("find");
    assert_eq!(found, 0);

    // Its aggregation operators fail the operation.
    for op in ["$regexMatch", "$regexFind", "$regexFindAll"] {
        let pipeline = [doc! { "$project": { "r": { op: { "input": "$s", "regex": explosive } } } }];
        let err = coll.aggregate(pipeline).await.expect_err(op);
        assert_eq!(code(&err), Some(51156), "{op}: {err}");
        assert_eq!(
            message(&err),
            format!(
                "PlanExecutor error during aggregation :: caused by :: Error occurred while executing the regular \
                 expression in {op}. Result code: match limit exceeded"
            )
        );
    }

    // A pattern whose compiled form outgrows the linear engine's size limit is refused when
    // it is parsed.
    let huge = "((((a{1000}){1000}){1000}){1000})";
    let err = coll.count_documents(doc! { "s": { "$regex": huge } }).await.expect_err("huge");
    assert_eq!(code(&err), Some(51091), "{err}");
    assert!(message(&err).starts_with("Regular expression is invalid: "), "{err}");
    assert_alive(&client).await;
}
