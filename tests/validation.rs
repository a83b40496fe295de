//! Collection validators through the Rust driver: `create`/`collMod` options, enforcement on
//! every write path, `validationLevel`, `validationAction`, `bypassDocumentValidation`, and
//! 121 DocumentValidationFailure with mongod's `errInfo`.

#![expect(clippy::expect_used, reason = "a failed test step must fail the test loudly")]

mod common;

use std::time::Duration;

use common::TestServer;
use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};

fn command_error(error: &mongodb::error::Error) -> (i32, String) {
    match error.kind.as_ref() {
        ErrorKind::Command(e) => (e.code, e.message.clone()),
        other => panic!("expected a command error, got {other:?}"),
    }
}

/// The first entry of a reply's `writeErrors`.
fn first_write_error(reply: &Document) -> Document {
    reply
        .get_array("writeErrors")
        .ok()
        .and_then(|errors| errors.first())
        .and_then(Bson::as_document)
        .cloned()
        .unwrap_or_else(|| panic!("no writeErrors in {reply}"))
}

/// Sends `command` on a raw connection and returns the whole reply, error fields included
/// (the driver keeps only code and message of a command error).
fn raw_command(server: &TestServer, db: &str, mut command: Document) -> Document {
    command.insert("$db", db);
    let mut raw = server.raw();
    raw.send(&common::op_msg(1, 0, &command));
    common::reply_body(&raw.receive().expect("reply"))
}

async fn count(db: &Database, coll: &str, filter: Document) -> u64 {
    db.collection::<Document>(coll).count_documents(filter).await.expect("count")
}

/// A `$jsonSchema` validator for a `people` collection.
fn person_schema() -> Document {
    doc! { "$jsonSchema": {
        "bsonType": "object",
        "required": ["name", "age"],
        "properties": {
            "_id": {},
            "name": { "bsonType": "string", "description": "must be a string" },
            "age": { "bsonType": "int", "minimum": 0 },
            "tags": { "items": { "enum": ["a", "b"] } },
        },
        "additionalProperties": false,
    } }
}

#[tokio::test]
async fn validation_json_schema_insert_reports_mongod_errinfo() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("app");
    db.run_command(doc! { "create": "people", "validator": person_schema() }).await.expect("create");

    // Ordered: the second document fails and the third is not tried.
    let reply = db
        .run_command(doc! { "insert": "people", "documents": [
            { "_id": 1, "name": "Ann", "age": 30 },
            { "_id": 2, "name": 7, "age": -1, "extra": true },
            { "_id": 3, "name": "Bob", "age": 40 },
        ] })
        .await
        .expect("insert");
    assert_eq!(reply.get_i32("n").ok(), Some(1), "{reply}");
    let error = first_write_error(&reply);
    assert_eq!(error.get_i32("index").ok(), Some(1));
    assert_eq!(error.get_i32("code").ok(), Some(121));
    assert_eq!(error.get_str("errmsg").ok(), Some("Document failed validation"));
    let expected = doc! {
        "failingDocumentId": 2,
        "details": {
            "operatorName": "$jsonSchema",
            "schemaRulesNotSatisfied": [
                { "operatorName": "properties", "propertiesNotSatisfied": [
                    { "propertyName": "name", "description": "must be a string", "details": [
                        { "operatorName": "bsonType", "specifiedAs": { "bsonType": "string" },
                          "reason": "type did not match", "consideredValue": 7, "consideredType": "int" },
                    ] },
                    { "propertyName": "age", "details": [
                        { "operatorName": "minimum", "specifiedAs": { "minimum": 0 },
                          "reason": "comparison failed", "consideredValue": -1 },
                    ] },
                ] },
                { "operatorName": "additionalProperties", "specifiedAs": { "additionalProperties": false },
                  "additionalProperties": ["extra"] },
            ],
        },
    };
    assert_eq!(error.get_document("errInfo").ok(), Some(&expected), "{error}");
    assert_eq!(count(&db, "people", doc! {}).await, 1);

    // Unordered: every document is tried; `required` and `items`/`enum` failures.
    let reply = db
        .run_command(doc! { "insert": "people", "ordered": false, "documents": [
            { "_id": 4, "name": "Cy" },
            { "_id": 5, "name": "Di", "age": 2 },
            { "_id": 6, "name": "Ed", "age": 3, "tags": ["a", "z"] },
        ] })
        .await
        .expect("insert");
    assert_eq!(reply.get_i32("n").ok(), Some(1), "{reply}");
    let errors = reply.get_array("writeErrors").expect("writeErrors");
    assert_eq!(errors.len(), 2, "{reply}");
    let required = errors[0].as_document().expect("error");
    assert_eq!(required.get_i32("index").ok(), Some(0));
    assert_eq!(
        required.get_document("errInfo").ok(),
        Some(&doc! { "failingDocumentId": 4, "details": { "operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [
            { "operatorName": "required", "specifiedAs": { "required": ["name", "age"] }, "missingProperties": ["age"] },
        ] } })
    );
    let items = errors[1].as_document().expect("error");
    assert_eq!(items.get_i32("index").ok(), Some(2));
    assert_eq!(
        items.get_document("errInfo").and_then(|i| i.get_document("details")).ok(),
        Some(&doc! { "operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [
            { "operatorName": "properties", "propertiesNotSatisfied": [{ "propertyName": "tags", "details": [
                { "operatorName": "items", "reason": "At least one item did not match the sub-schema", "itemIndex": 1,
                  "details": [{ "operatorName": "enum", "specifiedAs": { "enum": ["a", "b"] },
                                "reason": "value was not found in enum", "consideredValue": "z" }] },
            ] }] },
        ] })
    );

    // The driver hands the explanation over as the write error's details.
    let error = db
        .collection::<Document>("people")
        .insert_one(doc! { "_id": 7, "name": "Fay" })
        .await
        .expect_err("fails validation");
    match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => {
            assert_eq!((e.code, e.message.as_str()), (121, "Document failed validation"));
            assert_eq!(e.details.as_ref().and_then(|d| d.get_i32("failingDocumentId").ok()), Some(7));
        }
        other => panic!("expected a write error, got {other:?}"),
    }
}

#[tokio::test]
async fn validation_query_validator_on_update_replace_upsert_and_find_and_modify() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("app");
    db.run_command(doc! { "create": "c", "validator": { "a": { "$type": "string" } } }).await.expect("create");
    db.run_command(doc! { "insert": "c", "documents": [{ "_id": 1, "a": "x" }] }).await.expect("insert");
    let type_error = |id: i32, considered: Bson, considered_type: &str| {
        doc! {
            "failingDocumentId": id,
            "details": { "operatorName": "$type", "specifiedAs": { "a": { "$type": "string" } },
                         "reason": "type did not match", "consideredValue": considered, "consideredType": considered_type },
        }
    };

    // An operator update.
    let reply = db
        .run_command(doc! { "update": "c", "updates": [{ "q": { "_id": 1 }, "u": { "$set": { "a": 5 } } }] })
        .await
        .expect("update");
    let error = first_write_error(&reply);
    assert_eq!((error.get_i32("index").ok(), error.get_i32("code").ok()), (Some(0), Some(121)), "{reply}");
    assert_eq!(error.get_document("errInfo").ok(), Some(&type_error(1, Bson::Int32(5), "int")));
    assert_eq!((reply.get_i32("n").ok(), reply.get_i32("nModified").ok()), (Some(0), Some(0)), "{reply}");

    // A replacement, and a missing field.
    let reply = db
        .run_command(doc! { "update": "c", "updates": [{ "q": { "_id": 1 }, "u": { "b": 1 } }] })
        .await
        .expect("replace");
    assert_eq!(
        first_write_error(&reply).get_document("errInfo").ok(),
        Some(&doc! { "failingDocumentId": 1, "details": {
        "operatorName": "$type", "specifiedAs": { "a": { "$type": "string" } }, "reason": "field was missing" } })
    );

    // An upsert that inserts is checked as an insert.
    let reply = db
        .run_command(doc! { "update": "c", "updates": [
            { "q": { "_id": 2 }, "u": { "$set": { "a": [1, 2] } }, "upsert": true },
        ] })
        .await
        .expect("upsert");
    assert_eq!(
        first_write_error(&reply).get_document("errInfo").ok(),
        Some(&doc! { "failingDocumentId": 2, "details": {
        "operatorName": "$type", "specifiedAs": { "a": { "$type": "string" } }, "reason": "type did not match",
        "consideredValues": [1, 2], "consideredType": "int" } })
    );

    // findAndModify fails the command, with the explanation beside the code.
    let error = db
        .run_command(doc! { "findAndModify": "c", "query": { "_id": 1 }, "update": { "$set": { "a": true } } })
        .await
        .expect_err("fails validation");
    assert_eq!(command_error(&error), (121, "Document failed validation".to_owned()));
    let raw = raw_command(
        &server,
        "app",
        doc! { "findAndModify": "c", "query": { "_id": 1 }, "update": { "$set": { "a": true } } },
    );
    assert_eq!(raw.get_str("codeName").ok(), Some("DocumentValidationFailure"), "{raw}");
    assert_eq!(raw.get_document("errInfo").ok(), Some(&type_error(1, Bson::Boolean(true), "bool")));
    let raw = raw_command(
        &server,
        "app",
        doc! { "findAndModify": "c", "query": { "_id": 3 }, "update": { "$set": { "a": 1 } }, "upsert": true },
    );
    assert_eq!(raw.get_document("errInfo").ok(), Some(&type_error(3, Bson::Int32(1), "int")), "{raw}");

    // Nothing failing was written; a passing update goes through.
    assert_eq!(count(&db, "c", doc! {}).await, 1);
    assert_eq!(count(&db, "c", doc! { "a": "x" }).await, 1);
    db.collection::<Document>("c").update_one(doc! { "_id": 1 }, doc! { "$set": { "a": "y" } }).await.expect("valid");
    assert_eq!(count(&db, "c", doc! { "a": "y" }).await, 1);
}

#[tokio::test]
async fn validation_levels_actions_and_bypass() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("app");
    db.run_command(doc! { "create": "c" }).await.expect("create");
    // Documents written before the validator may break it.
    db.run_command(doc! { "insert": "c", "documents": [{ "_id": 1, "a": 1 }, { "_id": 2, "a": 2 }] })
        .await
        .expect("insert");
    db.run_command(doc! { "collMod": "c", "validator": { "a": 1 }, "validationLevel": "moderate" })
        .await
        .expect("collMod");

    // moderate: a failing document may be updated to another failing one; a passing one may
    // not start failing; inserts are always checked.
    db.run_command(doc! { "insert": "c", "documents": [{ "_id": 3, "a": 1 }] }).await.expect("insert valid");
    let reply = db
        .run_command(doc! { "update": "c", "updates": [{ "q": { "_id": 2 }, "u": { "$set": { "a": 5 } } }] })
        .await
        .expect("bad to bad");
    assert!(reply.get("writeErrors").is_none(), "{reply}");
    assert_eq!(reply.get_i32("nModified").ok(), Some(1));
    let reply = db
        .run_command(doc! { "update": "c", "updates": [{ "q": { "_id": 3 }, "u": { "$set": { "a": 5 } } }] })
        .await
        .expect("good to bad");
    assert_eq!(first_write_error(&reply).get_i32("code").ok(), Some(121), "{reply}");
    let reply = db.run_command(doc! { "insert": "c", "documents": [{ "_id": 4, "a": 4 }] }).await.expect("insert");
    assert_eq!(first_write_error(&reply).get_i32("code").ok(), Some(121), "{reply}");

    // strict (changed alone): the failing document may no longer be updated to fail.
    db.run_command(doc! { "collMod": "c", "validationLevel": "strict" }).await.expect("collMod level");
    let reply = db
        .run_command(doc! { "update": "c", "updates": [{ "q": { "_id": 2 }, "u": { "$set": { "a": 6 } } }] })
        .await
        .expect("strict");
    assert_eq!(first_write_error(&reply).get_i32("code").ok(), Some(121), "{reply}");

    // bypassDocumentValidation on insert, update and findAndModify.
    let reply = db
        .run_command(doc! { "insert": "c", "documents": [{ "_id": 5, "a": 5 }], "bypassDocumentValidation": true })
        .await
        .expect("bypass insert");
    assert_eq!((reply.get_i32("n").ok(), reply.get("writeErrors")), (Some(1), None), "{reply}");
    let reply = db
        .run_command(doc! { "update": "c", "updates": [{ "q": { "_id": 3 }, "u": { "$set": { "a": 7 } } }],
        "bypassDocumentValidation": true })
        .await
        .expect("bypass update");
    assert_eq!(reply.get_i32("nModified").ok(), Some(1), "{reply}");
    db.run_command(doc! { "findAndModify": "c", "query": { "_id": 3 }, "update": { "$set": { "a": 8 } },
    "bypassDocumentValidation": true })
        .await
        .expect("bypass findAndModify");
    assert_eq!(count(&db, "c", doc! { "_id": 3, "a": 8 }).await, 1);

    // off: nothing is checked.
    db.run_command(doc! { "collMod": "c", "validationLevel": "off" }).await.expect("off");
    db.run_command(doc! { "insert": "c", "documents": [{ "_id": 6, "a": 6 }] }).await.expect("insert");
    assert_eq!(count(&db, "c", doc! { "_id": 6 }).await, 1);

    // warn: the write goes through and mongod's warning names the document and the reason.
    db.run_command(doc! { "collMod": "c", "validationLevel": "strict", "validationAction": "warn" })
        .await
        .expect("warn");
    let reply = db.run_command(doc! { "insert": "c", "documents": [{ "_id": 7, "a": 9 }] }).await.expect("insert");
    assert_eq!((reply.get_i32("n").ok(), reply.get("writeErrors")), (Some(1), None), "{reply}");
    assert!(server.wait_for_log("\"id\":20294", Duration::from_secs(5)), "no warning logged");
    let line = server.log_lines().into_iter().find(|l| l.contains("\"id\":20294")).expect("line");
    let line: serde_json::Value = serde_json::from_str(&line).expect("json line");
    assert_eq!(line["s"], "W");
    assert_eq!(line["c"], "STORAGE");
    assert_eq!(line["msg"], "Document would fail validation");
    assert_eq!(line["attr"]["namespace"], "app.c");
    assert_eq!(
        line["attr"]["errInfo"],
        serde_json::json!({ "failingDocumentId": 7, "details": {
            "operatorName": "$eq", "specifiedAs": { "a": 1 }, "reason": "comparison failed", "consideredValue": 9 } })
    );
    let listed = db.run_command(doc! { "listCollections": 1, "filter": { "name": "c" } }).await.expect("list");
    let options = listed
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .ok()
        .and_then(|b| b.first())
        .and_then(Bson::as_document)
        .and_then(|e| e.get_document("options").ok())
        .cloned()
        .expect("options");
    assert_eq!(options, doc! { "validator": { "a": 1 }, "validationLevel": "strict", "validationAction": "warn" });
}

#[tokio::test]
async fn validation_options_refused_as_mongod_refuses_them() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("app");
    let refused = |command: Document| {
        let db = db.clone();
        async move { command_error(&db.run_command(command).await.expect_err("refused")) }
    };
    assert_eq!(
        refused(doc! { "create": "c", "validator": 7 }).await,
        (14, "BSON field 'create.validator' is the wrong type 'int', expected type 'object'".to_owned())
    );
    assert_eq!(
        refused(doc! { "create": "c", "validator": { "$where": "this.a == this.b" } }).await,
        (2, "$where is not allowed in this context".to_owned())
    );
    assert_eq!(refused(doc! { "create": "c", "validator": { "$text": { "$search": "bob" } } }).await.0, 2);
    assert_eq!(refused(doc! { "create": "c", "validator": { "loc": { "$near": [0, 0] } } }).await.0, 5626500);
    assert_eq!(
        refused(doc! { "create": "c", "validator": { "$expr": { "$eq": ["$a", "$$unbound"] } } }).await,
        (17276, "Use of undefined variable: unbound".to_owned())
    );
    assert_eq!(
        refused(doc! { "create": "c", "validator": { "$jsonSchema": { "invalid": 1 } } }).await,
        (9, "Unknown $jsonSchema keyword: invalid".to_owned())
    );
    assert_eq!(
        refused(doc! { "create": "c", "validator": { "a": 1 }, "validationLevel": "bogus" }).await,
        (2, "Enumeration value 'bogus' for field 'create.validationLevel' is not a valid value.".to_owned())
    );
    assert_eq!(
        refused(doc! { "create": "c", "validationAction": 1 }).await,
        (14, "BSON field 'create.validationAction' is the wrong type 'int', expected type 'string'".to_owned())
    );
    let admin = client.database("admin");
    let error = admin.run_command(doc! { "create": "c", "validator": { "a": 1 } }).await.expect_err("internal db");
    let (code, message) = command_error(&error);
    assert_eq!(code, 72);
    assert!(message.starts_with("Document validators are not allowed on collection admin.c with UUID "), "{message}");
    assert!(message.ends_with(" in the admin internal database"), "{message}");
    assert!(!admin.list_collection_names().await.expect("names").contains(&"c".to_owned()));

    // `validator: {}` is no validator; collMod refuses what create refuses, with mongod's
    // context for a validator that does not parse.
    db.run_command(doc! { "create": "c", "validator": {} }).await.expect("create");
    db.run_command(doc! { "insert": "c", "documents": [{ "_id": 1 }] }).await.expect("anything goes");
    assert_eq!(
        refused(doc! { "collMod": "c", "validator": { "$jsonSchema": { "invalid": 7 } } }).await,
        (9, "Parsing of collection validator failed :: caused by :: Unknown $jsonSchema keyword: invalid".to_owned())
    );
    assert_eq!(refused(doc! { "collMod": "c", "validator": { "$where": "this.a == this.b" } }).await.0, 2);
    assert_eq!(
        refused(doc! { "collMod": "c", "validationAction": "loud" }).await,
        (2, "Enumeration value 'loud' for field 'collMod.validationAction' is not a valid value.".to_owned())
    );
    assert_eq!(refused(doc! { "collMod": "c", "validator": "assert" }).await.0, 14);
    db.run_command(doc! { "collMod": "c", "validator": { "a": { "$exists": true } } }).await.expect("collMod");
    let reply = db.run_command(doc! { "insert": "c", "documents": [{ "_id": 2 }] }).await.expect("insert");
    assert_eq!(first_write_error(&reply).get_i32("code").ok(), Some(121), "{reply}");
    db.run_command(doc! { "collMod": "c", "validator": {} }).await.expect("remove validator");
    db.run_command(doc! { "insert": "c", "documents": [{ "_id": 2 }] }).await.expect("no validator");
    let listed = db.run_command(doc! { "listCollections": 1, "filter": { "name": "c" } }).await.expect("list");
    let batch = listed.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("batch");
    let options = batch.first().and_then(Bson::as_document).and_then(|e| e.get_document("options").ok());
    assert_eq!(options, Some(&doc! {}), "{listed}");
}
