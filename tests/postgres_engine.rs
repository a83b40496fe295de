//! The PostgreSQL storage engine (issue 20) where it differs from the embedded one: the data
//! lives in the database, not in `--dbpath`; a second node is refused; data moves between the
//! engines with `monarchd dump` and `restore`; a read at an earlier cluster time gets
//! 239 SnapshotTooOld. Everything else is the rest of the suite, which `.ci/postgres-tests`
//! runs a second time on PostgreSQL.
//!
//! These tests need a PostgreSQL server: `.ci/postgres-tests` starts one and sets
//! `MONARCH_TEST_PG_URI`. Without it (a plain `cargo test`), each says so and returns.

#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use common::tools::{documents, indexes, path, stderr, tool};
use common::{TestServer, command, new_pg_database as new_database, run_to_exit};
use mongodb::bson::{Document, doc};

/// Sessions of the database at `uri` inside a transaction and waiting for its next statement.
fn idle_in_transaction(uri: &str) -> i64 {
    rows(uri, "pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'")
}

/// Rows of `table` in the database at `uri`.
fn rows(uri: &str, table: &str) -> i64 {
    let (uri, query) = (uri.to_owned(), format!("SELECT count(*) FROM {table}"));
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&uri, postgres::NoTls).expect("connect");
        client.query_one(&query, &[]).expect("count").get(0)
    })
    .join()
    .expect("count")
}

#[tokio::test]
async fn postgres_engine_keeps_the_data_in_the_database_and_allows_one_node() {
    let Some(uri) = new_database("one_node") else { return };
    let mut server = TestServer::start(&["--storageEngine", "postgres", "--pgUri", &uri]);
    let people = server.client("").await.database("app").collection::<Document>("people");
    let docs: Vec<Document> = (0..300).map(|i| doc! { "_id": i, "age": i % 90 }).collect();
    people.insert_many(docs).await.expect("insert");
    people.create_index(mongodb::IndexModel::builder().keys(doc! { "age": 1 }).build()).await.expect("index");
    // The documents and their index entries are rows of the engine's tables.
    assert_eq!(rows(&uri, "monarch_docs"), 300);
    assert_eq!(rows(&uri, "monarch_index"), 300);

    // A second node on the same database is refused at start: 14 DBPathInUse's exit code.
    let second = run_to_exit(&["--storageEngine", "postgres", "--pgUri", &uri]);
    assert_eq!(second.status.code(), Some(100), "{}", String::from_utf8_lossy(&second.stdout));
    let log = String::from_utf8_lossy(&second.stdout);
    assert!(log.contains("is in use by another monarchd"), "{log}");

    // Another data directory on the same database finds everything: nothing was in --dbpath.
    assert!(server.terminate().success(), "clean shutdown");
    let moved = TestServer::start(&["--storageEngine", "postgres", "--pgUri", &uri]);
    let people = moved.client("").await.database("app").collection::<Document>("people");
    assert_eq!(people.count_documents(doc! { "age": 5 }).await.expect("count"), 4);
    let plan = moved
        .client("")
        .await
        .database("app")
        .run_command(doc! { "explain": { "find": "people", "filter": { "age": 5 } }, "verbosity": "queryPlanner" })
        .await
        .expect("explain");
    let stage = plan.get_document("queryPlanner").and_then(|p| p.get_document("winningPlan")).expect("plan");
    assert_eq!(stage.get_document("inputStage").and_then(|s| s.get_str("indexName")).ok(), Some("age_1"), "{plan}");
}

#[tokio::test]
async fn postgres_engine_takes_data_dumped_from_the_embedded_engine() {
    let Some(uri) = new_database("moved") else { return };
    let embedded = TestServer::start(&["--storageEngine", "fjall"]);
    let client = embedded.client("").await;
    let orders = client.database("shop").collection::<Document>("orders");
    let docs: Vec<Document> = (0..2500).map(|i| doc! { "_id": i, "sku": format!("s{}", i % 40), "qty": i }).collect();
    orders.insert_many(docs).await.expect("insert");
    orders
        .create_index(
            mongodb::IndexModel::builder()
                .keys(doc! { "sku": 1, "qty": -1 })
                .options(mongodb::options::IndexOptions::builder().unique(true).build())
                .build(),
        )
        .await
        .expect("index");
    let dump = tempfile::tempdir().expect("temp dir");
    let source = format!("mongodb://127.0.0.1:{}", embedded.port);
    let dumped = tool(&["dump", "--uri", &source, "--out", path(dump.path())]);
    assert!(dumped.status.success(), "{}", stderr(&dumped));

    let on_postgres = TestServer::start(&["--storageEngine", "postgres", "--pgUri", &uri]);
    let target = format!("mongodb://127.0.0.1:{}", on_postgres.port);
    let restored = tool(&["restore", "--uri", &target, "--dir", path(dump.path())]);
    assert!(restored.status.success(), "{}", stderr(&restored));
    let moved = on_postgres.client("").await;
    assert_eq!(documents(&moved, "shop", "orders").await, documents(&client, "shop", "orders").await);
    assert_eq!(indexes(&moved, "shop", "orders").await, indexes(&client, "shop", "orders").await);
    // The unique index holds on the new engine.
    let duplicate = moved
        .database("shop")
        .collection::<Document>("orders")
        .insert_one(doc! { "_id": -1, "sku": "s0", "qty": 0 })
        .await
        .expect_err("a duplicate key");
    assert_eq!(common::error_code(&duplicate), Some(11000), "{duplicate}");
}

#[tokio::test]
async fn postgres_engine_refuses_a_read_at_an_earlier_cluster_time() {
    let Some(uri) = new_database("history") else { return };
    let member = TestServer::member(&["--storageEngine", "postgres", "--pgUri", &uri]);
    let client = member.client("").await;
    let db = client.database("app");
    let inserted = db.run_command(doc! { "insert": "c", "documents": [{ "_id": 1 }] }).await.expect("insert");
    let at = inserted.get_timestamp("operationTime").expect("operationTime");
    db.run_command(doc! { "insert": "c", "documents": [{ "_id": 2 }] }).await.expect("insert");
    let error = db
        .run_command(doc! { "find": "c", "readConcern": { "level": "snapshot", "atClusterTime": at } })
        .await
        .expect_err("no history on PostgreSQL");
    assert_eq!(common::error_code(&error), Some(239), "{error}");
    // A snapshot read at the current time is served.
    let now = db.run_command(doc! { "find": "c", "readConcern": { "level": "snapshot" } }).await.expect("find");
    let batch = now.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("batch");
    assert_eq!(batch.len(), 2, "{now}");
}

/// A parked cursor keeps no PostgreSQL transaction (nor connection) between its batches: its
/// next batch reads from a new snapshot, after the last key it returned.
#[tokio::test]
async fn a_parked_cursor_holds_no_transaction_between_batches() {
    let Some(uri) = new_database("cursor_bound") else { return };
    let server = TestServer::start(&["--storageEngine", "postgres", "--pgUri", &uri]);
    let coll = server.client("").await.database("app").collection::<Document>("c");
    coll.insert_many((0..100).map(|i| doc! { "_id": i })).await.expect("insert");
    let first = command(&server, doc! { "find": "c", "batchSize": 2, "$db": "app" });
    let cursor = first.get_document("cursor").expect("a cursor");
    assert_eq!(cursor.get_array("firstBatch").map(Vec::len).ok(), Some(2), "{first}");
    let id = cursor.get_i64("id").expect("a parked cursor");
    assert_eq!(idle_in_transaction(&uri), 0, "the cursor's transaction ended with its batch");

    // Its next batch reads as of then: a document inserted past the rows it had fetched
    // (its first round trip fetched 16) comes too.
    coll.insert_one(doc! { "_id": 100 }).await.expect("insert");
    let more = command(&server, doc! { "getMore": id, "collection": "c", "$db": "app" });
    let batch = more.get_document("cursor").and_then(|c| c.get_array("nextBatch")).expect("next batch");
    let ids: Vec<i32> = batch.iter().filter_map(|d| d.as_document().and_then(|d| d.get_i32("_id").ok())).collect();
    assert_eq!(ids, (2..=100).collect::<Vec<_>>(), "{more}");
}

/// Connections of the database at `uri`'s backends, as (with TLS, without TLS).
fn sessions_by_tls(uri: &str) -> (i64, i64) {
    let uri = uri.to_owned();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&uri, postgres::NoTls).expect("connect");
        let row = client
            .query_one(
                "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) FROM pg_stat_ssl s \
                 JOIN pg_stat_activity a USING (pid) WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()",
                &[],
            )
            .expect("pg_stat_ssl");
        (row.get(0), row.get(1))
    })
    .join()
    .expect("sessions")
}

/// `--pgUri`'s `sslmode` as libpq's: `verify-full` connects over TLS to a server whose
/// certificate names the host and is signed by `sslrootcert`, and refuses one that is not;
/// `verify-ca` checks only the signature; `disable` connects in the clear. Needs the test
/// server's CA (`MONARCH_TEST_PG_TLS_CA`, set by `.ci/postgres-tests`, whose certificate names
/// `localhost` only).
#[tokio::test]
async fn postgres_engine_connects_with_tls_as_sslmode_says() {
    let Some(uri) = new_database("tls") else { return };
    let Ok(ca) = std::env::var("MONARCH_TEST_PG_TLS_CA") else {
        eprintln!("skipped: MONARCH_TEST_PG_TLS_CA is not set (.ci/postgres-tests sets it)");
        return;
    };
    let by_name = uri.replacen("@127.0.0.1:", "@localhost:", 1);
    assert_ne!(by_name, uri, "MONARCH_TEST_PG_URI names 127.0.0.1");
    let with = |uri: &str, options: &str| format!("{uri}?{options}");

    let verified = with(&by_name, &format!("sslmode=verify-full&sslrootcert={ca}"));
    let mut server = TestServer::start(&["--storageEngine", "postgres", "--pgUri", &verified]);
    let coll = server.client("").await.database("app").collection::<Document>("c");
    coll.insert_one(doc! { "_id": 1 }).await.expect("insert");
    assert_eq!(coll.count_documents(doc! {}).await.expect("count"), 1);
    let (encrypted, clear) = sessions_by_tls(&uri);
    assert!(
        encrypted >= 2 && clear == 0,
        "the node lock's session and the pool's: {encrypted} with TLS, {clear} without"
    );
    assert!(server.terminate().success(), "clean shutdown");

    // The certificate names localhost, not 127.0.0.1.
    let wrong_name = run_to_exit(&[
        "--storageEngine",
        "postgres",
        "--pgUri",
        &with(&uri, &format!("sslmode=verify-full&sslrootcert={ca}")),
    ]);
    let log = String::from_utf8_lossy(&wrong_name.stdout);
    assert!(!wrong_name.status.success() && log.contains("certificate not valid for name \\\"127.0.0.1\\\""), "{log}");
    // Signed by another CA.
    let other_ca = tempfile::NamedTempFile::new().expect("temp file");
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    std::fs::write(other_ca.path(), params.self_signed(&key).expect("CA").pem()).expect("write CA");
    let other = format!("sslmode=verify-full&sslrootcert={}", other_ca.path().display());
    let wrong_ca = run_to_exit(&["--storageEngine", "postgres", "--pgUri", &with(&by_name, &other)]);
    let log = String::from_utf8_lossy(&wrong_ca.stdout);
    assert!(!wrong_ca.status.success() && log.contains("UnknownIssuer"), "{log}");

    // verify-ca takes the address: the chain is all it checks.
    let chain_only = with(&uri, &format!("sslmode=verify-ca&sslrootcert={ca}"));
    let mut server = TestServer::start(&["--storageEngine", "postgres", "--pgUri", &chain_only]);
    let coll = server.client("").await.database("app").collection::<Document>("c");
    assert_eq!(coll.count_documents(doc! {}).await.expect("count"), 1);
    assert!(server.terminate().success(), "clean shutdown");

    // require without a root checks nothing but the handshake: encrypted, not authenticated.
    let unchecked = with(&uri, "sslmode=require");
    let mut server = TestServer::start(&["--storageEngine", "postgres", "--pgUri", &unchecked]);
    let coll = server.client("").await.database("app").collection::<Document>("c");
    assert_eq!(coll.count_documents(doc! {}).await.expect("count"), 1);
    assert_eq!(sessions_by_tls(&uri).1, 0, "every session over TLS");
    assert!(server.terminate().success(), "clean shutdown");

    let clear = with(&uri, "sslmode=disable");
    let server = TestServer::start(&["--storageEngine", "postgres", "--pgUri", &clear]);
    let coll = server.client("").await.database("app").collection::<Document>("c");
    assert_eq!(coll.count_documents(doc! {}).await.expect("count"), 1);
    let (encrypted, clear) = sessions_by_tls(&uri);
    assert!(encrypted == 0 && clear >= 2, "{encrypted} with TLS, {clear} without");
}
