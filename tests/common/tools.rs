//! The command-line tools (`monarchd backup`, `restore`, `dump`, `export`, `import`) run to
//! their exit, and what the tests compare through the driver afterwards.

use std::path::Path;
use std::process::{Command, Output};

use futures_util::TryStreamExt;
use mongodb::Client;
use mongodb::bson::{Bson, Document, doc};

/// Runs a `monarchd` tool (`backup ...`, `restore ...`) to its exit.
pub fn tool(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_monarchd")).args(args).output().expect("run monarchd")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

pub async fn run(client: &Client, db: &str, command: Document) -> Document {
    client.database(db).run_command(command).await.expect("command")
}

/// `listCollections` of `db`, sorted by name, without the UUIDs (a restore makes new ones,
/// as mongorestore does without `--preserveUUID`).
pub async fn collections(client: &Client, db: &str) -> Vec<Document> {
    let reply = run(client, db, doc! { "listCollections": 1 }).await;
    let mut listed: Vec<Document> = reply
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .expect("firstBatch")
        .iter()
        .filter_map(Bson::as_document)
        .cloned()
        .map(|mut entry| {
            if let Ok(info) = entry.get_document_mut("info") {
                info.remove("uuid");
            }
            entry
        })
        .collect();
    listed.sort_by(|a, b| a.get_str("name").unwrap_or("").cmp(b.get_str("name").unwrap_or("")));
    listed
}

pub async fn indexes(client: &Client, db: &str, coll: &str) -> Vec<Bson> {
    let reply = run(client, db, doc! { "listIndexes": coll }).await;
    reply.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("firstBatch").clone()
}

pub async fn documents(client: &Client, db: &str, coll: &str) -> Vec<Document> {
    let collection = client.database(db).collection::<Document>(coll);
    collection.find(doc! {}).await.expect("find").try_collect().await.expect("documents")
}

pub async fn names(client: &Client, db: &str) -> Vec<String> {
    let mut names = client.database(db).list_collection_names().await.expect("listCollections");
    names.sort();
    names
}

/// A document holding every BSON type, built from canonical Extended JSON (the deprecated
/// types have no other constructor).
pub fn every_type() -> Document {
    let json = serde_json::json!({
        "_id": { "$oid": "5f43a1b2c3d4e5f6a7b8c9d0" },
        "double": { "$numberDouble": "1.5" },
        "negativeZero": { "$numberDouble": "-0.0" },
        "infinity": { "$numberDouble": "Infinity" },
        "nan": { "$numberDouble": "NaN" },
        "string": "text é \u{1F600}",
        "document": { "b": { "$numberInt": "1" }, "a": { "$numberInt": "2" } },
        "array": [{ "$numberInt": "1" }, "x", { "y": null }],
        "binary": { "$binary": { "base64": "AAEC/w==", "subType": "00" } },
        "uuid": { "$binary": { "base64": "c//SZESzTGmQ6OfR38A11A==", "subType": "04" } },
        "undefined": { "$undefined": true },
        "true": true,
        "dateBefore1970": { "$date": { "$numberLong": "-1000" } },
        "dateAfter9999": { "$date": { "$numberLong": "253402300800000" } },
        "null": null,
        "regex": { "$regularExpression": { "pattern": "^a.*b$", "options": "imx" } },
        "dbPointer": { "$dbPointer": { "$ref": "db.c", "$id": { "$oid": "5f43a1b2c3d4e5f6a7b8c9d1" } } },
        "code": { "$code": "function() { return 1; }" },
        "symbol": { "$symbol": "sym" },
        "codeWithScope": { "$code": "x", "$scope": { "x": { "$numberInt": "1" } } },
        "int32": { "$numberInt": "-2147483648" },
        "timestamp": { "$timestamp": { "t": 4_294_967_295_u64, "i": 1 } },
        "int64": { "$numberLong": "9223372036854775807" },
        "decimal": { "$numberDecimal": "1.000E-6176" },
        "minKey": { "$minKey": 1 },
        "maxKey": { "$maxKey": 1 },
    });
    match Bson::try_from(json).expect("canonical Extended JSON") {
        Bson::Document(document) => document,
        other => panic!("not a document: {other:?}"),
    }
}
