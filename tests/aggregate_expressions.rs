//! Expression operators through the Rust driver: strings, conversions, numbers, sets,
//! objects and arrays in `$project`/`$addFields`, as an application's report uses them, and
//! their errors.

#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use common::TestServer;
use common::pipeline::{run, run_err};
use mongodb::bson::{Bson, Document, doc};
use mongodb::{Collection, Database};

async fn contacts(db: &Database) -> Collection<Document> {
    let contacts = db.collection::<Document>("contacts");
    contacts
        .insert_many([
            doc! { "_id": 1, "name": "  Ada Lovelace ", "phone": "+44-20-7946-0018", "score": "17.456", "tags": ["vip", "uk", "vip"], "addr": { "city": "London", "zip": "N1" } },
            doc! { "_id": 2, "name": "grace hopper", "phone": null, "score": 9, "tags": ["us"], "addr": { "city": "Arlington" } },
            doc! { "_id": 3, "name": "Édith", "score": "n/a", "tags": [], "addr": {} },
        ])
        .await
        .expect("insert contacts");
    contacts
}

#[tokio::test]
async fn a_cleaning_report_uses_strings_conversions_numbers_sets_and_objects() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("crm");
    let contacts = contacts(&db).await;
    let report = run(
        &contacts,
        vec![
            doc! { "$project": {
                "name": { "$trim": { "input": "$name" } },
                "first": { "$arrayElemAt": [{ "$split": [{ "$trim": { "input": "$name" } }, " "] }, 0] },
                "initial": { "$toUpper": { "$substrCP": [{ "$trim": { "input": "$name" } }, 0, 1] } },
                "letters": { "$strLenCP": { "$trim": { "input": "$name" } } },
                "country": { "$ifNull": [{ "$getField": { "field": "match", "input": { "$regexFind": { "input": "$phone", "regex": "^\\+(\\d+)" } } } }, "unknown"] },
                "score": { "$round": [{ "$convert": { "input": "$score", "to": "double", "onError": 0 } }, 1] },
                "tags": { "$sortArray": { "input": { "$setUnion": ["$tags"] }, "sortBy": 1 } },
                "fields": { "$map": { "input": { "$objectToArray": "$addr" }, "as": "f", "in": "$$f.k" } },
                "label": { "$concat": ["#", { "$toString": "$_id" }] },
            } },
            doc! { "$sort": { "_id": 1 } },
        ],
    )
    .await;
    assert_eq!(
        report,
        vec![
            doc! { "_id": 1, "name": "Ada Lovelace", "first": "Ada", "initial": "A", "letters": 12, "country": "+44",
            "score": 17.5, "tags": ["uk", "vip"], "fields": ["city", "zip"], "label": "#1" },
            doc! { "_id": 2, "name": "grace hopper", "first": "grace", "initial": "G", "letters": 12, "country": "unknown",
            "score": 9.0, "tags": ["us"], "fields": ["city"], "label": "#2" },
            doc! { "_id": 3, "name": "Édith", "first": "Édith", "initial": "É", "letters": 5, "country": "unknown",
            "score": 0, "tags": [], "fields": [], "label": "#3" },
        ]
    );
}

#[tokio::test]
async fn numbers_keep_mongods_types() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("crm");
    let coll = db.collection::<Document>("n");
    coll.insert_one(doc! { "_id": 1, "i": 7, "l": Bson::Int64(7), "d": 2.5 }).await.expect("insert");
    let got = run(
        &coll,
        vec![doc! { "$project": {
            "_id": 0,
            "pow": { "$pow": ["$i", 2] },
            "powLong": { "$pow": ["$l", 2] },
            "floor": { "$floor": "$d" },
            "trunc": { "$trunc": [{ "$divide": ["$i", 3] }, 2] },
            "bits": { "$bitXor": ["$i", 2] },
            "log": { "$log10": 1000 },
            "range": { "$range": [0, "$i", 3] },
            "zip": { "$zip": { "inputs": [[1, 2], ["a"]], "useLongestLength": true } },
            "idx": { "$indexOfArray": [[3, 7, 7], "$l"] },
            "obj": { "$arrayToObject": [[["k", "$d"]]] },
            "merged": { "$mergeObjects": [{ "a": 1 }, { "a": 2, "b": 3 }] },
            "size": { "$bsonSize": { "a": 1 } },
        } }],
    )
    .await;
    assert_eq!(
        got,
        vec![doc! {
            "pow": 49, "powLong": Bson::Int64(49), "floor": 2.0, "trunc": 2.33, "bits": 5, "log": 3.0,
            "range": [0, 3, 6], "zip": [[1, "a"], [2, Bson::Null]], "idx": 1, "obj": { "k": 2.5 },
            "merged": { "a": 2, "b": 3 }, "size": 12,
        }]
    );
}

#[tokio::test]
async fn bad_arguments_answer_mongods_codes() {
    let server = TestServer::start(&[]);
    let db = server.client("").await.database("crm");
    contacts(&db).await;
    let cases = [
        (doc! { "$project": { "x": { "$toInt": "$name" } } }, 241, "ConversionFailure"),
        (doc! { "$project": { "x": { "$strLenBytes": "$phone" } } }, 34473, "Location34473"),
        (doc! { "$project": { "x": { "$split": ["$name", ""] } } }, 40087, "Location40087"),
        (doc! { "$project": { "x": { "$sqrt": -1 } } }, 28714, "Location28714"),
        (doc! { "$project": { "x": { "$regexMatch": { "input": "$name", "regex": "(" } } } }, 51111, "Location51111"),
        (doc! { "$project": { "x": { "$setUnion": ["$tags", "$name"] } } }, 17043, "Location17043"),
        (doc! { "$project": { "x": { "$convert": { "input": 1 } } } }, 9, "FailedToParse"),
        (doc! { "$project": { "x": { "$substrCP": ["$name", 0] } } }, 16020, "Location16020"),
    ];
    for (stage, expected, name) in cases {
        assert_eq!(run_err(&db, "contacts", vec![stage.clone()]).await, Some((expected, name.to_owned())), "{stage}");
    }
}
