//! The data directory records the key format (`storage/keys.rs`'s `KEY_FORMAT_VERSION`): a
//! directory written with another one is refused at start, one written before the format was
//! recorded opens as the first format.
//!
//! The test edits the engine's `meta` keyspace directly, as only a different build would
//! write it.

#![expect(clippy::expect_used, reason = "a failed test step must fail the test loudly")]

mod common;

use std::path::{Path, PathBuf};

use common::TestServer;
use mongodb::bson::{Document, doc};

/// Where the key format version is kept in `meta`.
const KEY_FORMAT_KEY: &[u8] = b"k";

/// Sets (or, with `None`, removes) the recorded key format of the stopped server's directory.
fn set_key_format(dbpath: &Path, version: Option<u32>) {
    let db = fjall::Database::builder(dbpath.join("engine")).open().expect("open the engine");
    let meta = db.keyspace("meta", fjall::KeyspaceCreateOptions::default).expect("meta keyspace");
    match version {
        Some(version) => meta.insert(KEY_FORMAT_KEY, version.to_be_bytes()).expect("write the version"),
        None => meta.remove(KEY_FORMAT_KEY).expect("remove the version"),
    }
    db.persist(fjall::PersistMode::SyncAll).expect("sync");
}

fn key_format(dbpath: &Path) -> Option<Vec<u8>> {
    let db = fjall::Database::builder(dbpath.join("engine")).open().expect("open the engine");
    let meta = db.keyspace("meta", fjall::KeyspaceCreateOptions::default).expect("meta keyspace");
    meta.get(KEY_FORMAT_KEY).expect("read the version").map(|v| v.to_vec())
}

/// A server that stored `{_id: 1}` in `d.c` and stopped, and its data directory.
async fn stopped_server_with_a_document() -> (TestServer, PathBuf) {
    let mut server = TestServer::start(&[]);
    let client = server.client("").await;
    client.database("d").collection::<Document>("c").insert_one(doc! { "_id": 1 }).await.expect("insert");
    assert!(server.terminate().success());
    let dbpath = server.dir.path().join("db");
    (server, dbpath)
}

#[tokio::test]
async fn storage_format_another_key_format_is_refused_at_start() {
    // `_server` owns the temporary directory: it must live to the end.
    let (_server, dbpath) = stopped_server_with_a_document().await;
    assert_eq!(key_format(&dbpath), Some(1u32.to_be_bytes().to_vec()), "a new directory records format 1");

    set_key_format(&dbpath, Some(9));
    let output = common::run_to_exit(&["--dbpath", dbpath.to_str().expect("path")]);
    let log = String::from_utf8_lossy(&output.stdout);
    // mongod's exit code when the storage cannot start.
    assert_eq!(output.status.code(), Some(100), "{log}");
    let failure = log.lines().find(|l| l.contains("\"Server failed to start\"")).expect("failure line");
    assert!(
        failure.contains("data files use key format version 9, this server reads key format version 1"),
        "{failure}"
    );
    assert!(!log.contains("Waiting for connections"), "{log}");
}

#[tokio::test]
async fn storage_format_directory_from_before_the_key_format_opens_as_format_1() {
    let (server, dbpath) = stopped_server_with_a_document().await;
    set_key_format(&dbpath, None);

    let server = server.restart(&[]);
    let found = server.client("").await.database("d").collection::<Document>("c").find_one(doc! { "_id": 1 }).await;
    assert_eq!(found.expect("find"), Some(doc! { "_id": 1 }));
    let mut server = server;
    assert!(server.terminate().success());
    assert_eq!(key_format(&server.dir.path().join("db")), Some(1u32.to_be_bytes().to_vec()), "recorded at open");
}
