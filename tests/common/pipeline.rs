//! Running pipelines in tests: the documents an aggregation returns, or the code of the error
//! it fails with.

use futures_util::TryStreamExt;
use mongodb::bson::{Document, doc};
use mongodb::error::ErrorKind;
use mongodb::{Collection, Database};

/// The code and codeName of a command error.
pub fn code(error: &mongodb::error::Error) -> Option<(i32, String)> {
    match error.kind.as_ref() {
        ErrorKind::Command(e) => Some((e.code, e.code_name.clone())),
        _ => None,
    }
}

/// The documents `pipeline` returns over `coll`.
pub async fn run(coll: &Collection<Document>, pipeline: Vec<Document>) -> Vec<Document> {
    coll.aggregate(pipeline).await.expect("aggregate").try_collect().await.expect("collect")
}

/// The code and codeName `pipeline` fails with over the collection `coll`.
pub async fn run_err(db: &Database, coll: &str, pipeline: Vec<Document>) -> Option<(i32, String)> {
    let command = doc! { "aggregate": coll, "pipeline": pipeline, "cursor": {} };
    code(&db.run_command(command).await.expect_err("the pipeline must fail"))
}
