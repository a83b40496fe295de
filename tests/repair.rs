//! `monarchd --repair`: a damaged journal is cut before its damaged batch, a damaged table
//! block costs only the documents it held, a healthy directory is left as it was, and a
//! repair never runs beside a server.

#![expect(clippy::expect_used, reason = "a failed test step must fail the test loudly")]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{TestServer, damage, eventually, files_under, run_to_exit};
use mongodb::IndexModel;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::WriteConcern;

fn journaled() -> WriteConcern {
    WriteConcern::builder().journal(true).build()
}

/// The data directory of a server's temporary directory.
fn dbpath(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("db")
}

/// Runs `monarchd --repair` on `dir`; returns whether it succeeded and its log lines, parsed.
fn repair(dir: &tempfile::TempDir, args: &[&str]) -> (bool, Vec<serde_json::Value>, String) {
    let path = dbpath(dir);
    let mut all = vec!["--dbpath", path.to_str().expect("utf-8 path"), "--repair"];
    all.extend_from_slice(args);
    let output = run_to_exit(&all);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let lines = stdout.lines().filter_map(|line| serde_json::from_str(line).ok()).collect();
    (output.status.success(), lines, stdout + &String::from_utf8_lossy(&output.stderr))
}

/// The log lines with `id`.
fn with_id(lines: &[serde_json::Value], id: u64) -> Vec<&serde_json::Value> {
    lines.iter().filter(|line| line["id"].as_u64() == Some(id)).collect()
}

/// The one line with `id`.
fn one(lines: &[serde_json::Value], id: u64) -> &serde_json::Value {
    let found = with_id(lines, id);
    assert_eq!(found.len(), 1, "one line with id {id}: {found:?}");
    found.first().copied().expect("the line")
}

/// The `repair-*` directories a repair left in `dir`'s data directory.
fn quarantines(dir: &tempfile::TempDir) -> Vec<PathBuf> {
    std::fs::read_dir(dbpath(dir))
        .expect("dbpath")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("repair-")))
        .collect()
}

/// `validate` on `collection`: whether it is valid, and its record count.
async fn validate(db: &mongodb::Database, collection: &str) -> (bool, i64) {
    let report = db.run_command(doc! { "validate": collection, "full": true }).await.expect("validate");
    let records = report.get_i64("nrecords").or_else(|_| report.get_i32("nrecords").map(i64::from)).expect("nrecords");
    (report.get_bool("valid").expect("valid"), records)
}

/// Every document of `collection` in `_id` order (in batches of 1,000: a getMore filling
/// 16 MiB of documents builds a reply over mongod's limit).
async fn all(coll: &mongodb::Collection<Document>) -> Vec<Document> {
    use futures_util::TryStreamExt;
    let cursor = coll.find(doc! {}).sort(doc! { "_id": 1 }).batch_size(1_000).await.expect("find");
    cursor.try_collect().await.expect("documents")
}

/// The `_id`s (int32) of `docs`.
fn ids(docs: &[Document]) -> Vec<i32> {
    docs.iter().map(|d| d.get_i32("_id").expect("int _id")).collect()
}

/// Where `needle` first occurs in `file`.
fn find_bytes(file: &Path, needle: &[u8]) -> Option<u64> {
    let bytes = std::fs::read(file).expect("read");
    bytes.windows(needle.len()).position(|w| w == needle).map(|at| at as u64)
}

/// A document of the `kept` collection.
fn kept_doc(i: i32) -> Document {
    doc! { "_id": i, "a": i % 10, "s": format!("kept-{i}") }
}

#[tokio::test]
async fn repair_damaged_journal_keeps_the_batches_before_the_damage() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("d");
    let kept = db.collection::<Document>("kept");
    kept.create_index(IndexModel::builder().keys(doc! { "a": 1 }).build()).await.expect("index");
    kept.insert_many((0..200).map(kept_doc)).write_concern(journaled()).await.expect("kept");
    // One journal batch per insert, each marked so its bytes can be found in the journal.
    let recent = db.collection::<Document>("recent");
    for i in 0..100 {
        let marked = doc! { "_id": i, "m": format!("RECENT-{i:04}-MARK") };
        recent.insert_one(marked).write_concern(journaled()).await.expect("recent");
    }
    drop(client);
    let dir = server.crash();

    let journals = files_under(&dbpath(&dir), &|p| p.extension().is_some_and(|e| e == "jnl"));
    let (journal, at) = journals
        .iter()
        .find_map(|j| find_bytes(j, b"RECENT-0050-MARK").map(|at| (j.clone(), at)))
        .expect("the 51st recent write is in a journal file");
    let original_size = std::fs::metadata(&journal).expect("journal").len();
    // Inside the document's bytes: the batch's checksum no longer matches.
    damage(&journal, at + 4, 8);
    // fjall preallocates journal files with zeros: what was written ends before.
    let written = std::fs::read(&journal).expect("journal").iter().rposition(|&b| b != 0).expect("written") as u64 + 1;

    let path = dbpath(&dir);
    let refused = run_to_exit(&["--dbpath", path.to_str().expect("utf-8 path")]);
    let refusal = String::from_utf8_lossy(&refused.stdout);
    assert!(!refused.status.success(), "the server started on a damaged journal");
    assert!(
        refusal.contains("Server failed to start") && refusal.contains(&journal.display().to_string()),
        "{refusal}"
    );

    let (ok, lines, output) = repair(&dir, &[]);
    assert!(ok, "{output}");
    let cut = one(&lines, 7_000_421);
    assert_eq!(cut["attr"]["file"].as_str(), Some(journal.display().to_string().as_str()), "{cut}");
    assert_eq!(cut["attr"]["bytes"].as_u64(), Some(original_size), "{cut}");
    assert_eq!(cut["attr"]["newest"].as_bool(), Some(true), "{cut}");
    let kept_bytes = cut["attr"]["bytesKept"].as_u64().expect("bytesKept");
    assert!(kept_bytes > 0 && kept_bytes <= at, "the cut ({kept_bytes}) is before the damage ({at})");
    assert_eq!(cut["attr"]["bytesLost"].as_u64(), Some(written - kept_bytes), "{cut}");
    // The original is kept, byte for byte.
    let [quarantine] = quarantines(&dir).try_into().expect("one quarantine directory");
    let original = quarantine.join("journal").join(journal.file_name().expect("name"));
    assert_eq!(std::fs::metadata(&original).expect("the original journal is kept").len(), original_size);
    let finished = one(&lines, 7_000_430);
    assert_eq!(finished["attr"]["dataLost"].as_bool(), Some(true), "{finished}");

    // The server starts; what was written before the damaged batch is all there, and nothing
    // after it.
    let server = TestServer::start_in(dir, &[]);
    let client = server.client("").await;
    let db = client.database("d");
    let kept = db.collection::<Document>("kept");
    assert_eq!(all(&kept).await, (0..200).map(kept_doc).collect::<Vec<_>>());
    let recent = all(&db.collection::<Document>("recent")).await;
    assert_eq!(ids(&recent), (0..50).collect::<Vec<_>>());
    assert_eq!(
        kept.count_documents(doc! { "a": 3 }).hint(mongodb::options::Hint::Name("a_1".into())).await.expect("count"),
        20
    );
    assert_eq!(validate(&db, "kept").await, (true, 200));
    assert_eq!(validate(&db, "recent").await, (true, 50));
}

/// A 256 MB cache makes 16 MB memtables: 20 MB of documents reach a table file.
const SMALL_CACHE: [&str; 2] = ["--wiredTigerCacheSizeGB", "0.25"];
/// The documents [`with_a_table`] writes.
const TABLE_DOCUMENTS: i32 = 7_000;

/// The `s` field of every document [`with_a_table`] writes.
fn table_value() -> String {
    "v".repeat(3_000)
}

/// Writes [`TABLE_DOCUMENTS`] documents of 3 kB (indexed on `a`) into `d.big`, waits until a
/// memtable has been flushed to a table file, and stops the server cleanly; returns its
/// directory and its largest table file.
async fn with_a_table() -> (tempfile::TempDir, PathBuf) {
    let mut server = TestServer::start(&SMALL_CACHE);
    let client = server.client("").await;
    let big = client.database("d").collection::<Document>("big");
    big.create_index(IndexModel::builder().keys(doc! { "a": 1 }).build()).await.expect("index");
    let value = table_value();
    for chunk in (0..TABLE_DOCUMENTS).collect::<Vec<i32>>().chunks(1_000) {
        big.insert_many(chunk.iter().map(|&i| doc! { "_id": i, "a": i % 100, "s": &value })).await.expect("insert");
    }
    let engine = dbpath(&server.dir).join("engine");
    let tables = || files_under(&engine, &|p| p.parent().is_some_and(|d| d.ends_with("tables")));
    let table_bytes = || -> u64 { tables().iter().map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)).sum() };
    assert!(eventually(Duration::from_secs(60), || table_bytes() > 4 << 20), "no memtable was flushed to a table");
    drop(client);
    assert!(server.terminate().success(), "clean shutdown");
    let dir = std::mem::replace(&mut server.dir, tempfile::tempdir().expect("temp dir"));
    drop(server);
    let tables = files_under(&dbpath(&dir), &|p| p.parent().is_some_and(|d| d.ends_with("tables")));
    let table = tables.iter().max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)).expect("a table");
    (dir, table.clone())
}

#[tokio::test]
async fn repair_damaged_table_block_salvages_the_rest() {
    let (args, total, value) = (SMALL_CACHE, TABLE_DOCUMENTS, table_value());
    let (dir, table) = with_a_table().await;
    let length = std::fs::metadata(&table).expect("table size").len();
    // The middle of the largest table is a data block (its index and metadata are at the end).
    damage(&table, length / 2, 32);

    let (ok, lines, output) = repair(&dir, &args);
    assert!(ok, "{output}");
    let unreadable = with_id(&lines, 7_000_423);
    assert_eq!(unreadable.len(), 1, "one damaged block: {unreadable:?}");
    assert_eq!(unreadable[0]["attr"]["keyspace"].as_str(), Some("docs"), "{}", unreadable[0]);
    assert!(
        unreadable[0]["attr"]["error"].as_str().is_some_and(|e| e.contains("ChecksumMismatch")),
        "{}",
        unreadable[0]
    );
    let summary = one(&lines, 7_000_429);
    assert_eq!(summary["attr"]["namespace"].as_str(), Some("d.big"), "{summary}");
    let kept = summary["attr"]["documentsKept"].as_u64().expect("documentsKept");
    assert!(kept > 0 && kept < total as u64, "{summary}");
    assert_eq!(summary["attr"]["countBefore"].as_u64(), Some(total as u64), "{summary}");
    assert_eq!(summary["attr"]["countAfter"].as_u64(), Some(kept), "{summary}");
    assert_eq!(summary["attr"]["indexesRebuilt"].as_u64(), Some(1), "{summary}");
    let [quarantine] = quarantines(&dir).try_into().expect("one quarantine directory");
    assert!(quarantine.join("engine").join("version").exists(), "the damaged engine is kept");

    let server = TestServer::start_in(dir, &args);
    let client = server.client("").await;
    let db = client.database("d");
    let big = db.collection::<Document>("big");
    let docs = all(&big).await;
    let present = ids(&docs);
    assert_eq!(present.len() as u64, kept);
    assert!(docs.iter().all(|d| d.get_str("s").ok() == Some(value.as_str())), "the salvaged documents are intact");
    // One block lost: one run of consecutive `_id`s is missing, and the log names its edges.
    let gap: Vec<i32> = (0..total).filter(|i| present.binary_search(i).is_err()).collect();
    let (first, last) = (*gap.first().expect("a gap"), *gap.last().expect("a gap"));
    assert_eq!(gap, (first..=last).collect::<Vec<_>>(), "one run of documents is missing");
    assert!(first > 0 && last < total - 1, "documents on both sides of the damaged block are kept ({first}..={last})");
    let lost = one(&lines, 7_000_431);
    let edge = |i: i32| if i < 0 || i >= total { None } else { Some(format!("_id: {i}")) };
    assert_eq!(lost["attr"]["namespace"].as_str(), Some("d.big"), "{lost}");
    if let Some(after) = edge(first - 1) {
        assert_eq!(lost["attr"]["after"].as_str(), Some(after.as_str()), "{lost}");
    }
    if let Some(before) = edge(last + 1) {
        assert_eq!(lost["attr"]["before"].as_str(), Some(before.as_str()), "{lost}");
    }
    // Counts and indexes agree with the documents.
    assert_eq!(big.estimated_document_count().await.expect("count"), kept);
    let by_index =
        big.count_documents(doc! { "a": { "$gte": 0 } }).hint(mongodb::options::Hint::Name("a_1".into())).await;
    assert_eq!(by_index.expect("count through the index"), kept);
    assert_eq!(validate(&db, "big").await, (true, kept as i64));
}

/// Damage fjall reads when it opens a table (its table of contents, at the end) keeps the
/// engine closed: the repair says so and fails, leaving the files as they were.
#[tokio::test]
async fn repair_table_unreadable_at_open_fails_saying_why() {
    let (dir, table) = with_a_table().await;
    let length = std::fs::metadata(&table).expect("table size").len();
    damage(&table, length - 200, 32);
    let (ok, lines, output) = repair(&dir, &SMALL_CACHE);
    assert!(!ok, "{output}");
    let failed = one(&lines, 7_000_419);
    let error = failed["attr"]["error"].as_str().expect("error");
    assert!(error.contains("a table file under") && error.contains("--repair cannot go on"), "{failed}");
    assert!(output.contains("monarchd --repair: corrupt data files: a table file under"), "{output}");
    assert!(quarantines(&dir).is_empty(), "nothing was moved");
    assert_eq!(std::fs::metadata(&table).expect("the table is left in place").len(), length);
}

#[tokio::test]
async fn repair_healthy_directory_changes_nothing() {
    let mut server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("d");
    let kept = db.collection::<Document>("kept");
    kept.create_index(IndexModel::builder().keys(doc! { "a": 1 }).build()).await.expect("index");
    kept.insert_many((0..200).map(kept_doc)).await.expect("insert");
    db.collection::<Document>("tags").insert_one(doc! { "_id": "x", "t": ["a", "b"] }).await.expect("insert");
    db.collection::<Document>("tags")
        .create_index(IndexModel::builder().keys(doc! { "t": 1 }).build())
        .await
        .expect("multikey index");
    drop(client);
    assert!(server.terminate().success(), "clean shutdown");
    let dir = std::mem::replace(&mut server.dir, tempfile::tempdir().expect("temp dir"));
    drop(server);

    let (ok, lines, output) = repair(&dir, &[]);
    assert!(ok, "{output}");
    let finished = one(&lines, 7_000_430);
    assert_eq!(finished["attr"]["dataLost"].as_bool(), Some(false), "{finished}");
    assert_eq!(finished["attr"]["quarantine"].as_str(), Some("none"), "{finished}");
    for id in [7_000_421, 7_000_422, 7_000_423, 7_000_424, 7_000_425, 7_000_426, 7_000_427, 7_000_431, 7_000_432] {
        assert!(with_id(&lines, id).is_empty(), "nothing to report as {id}: {:?}", with_id(&lines, id));
    }
    let summaries: Vec<(String, u64, u64)> = with_id(&lines, 7_000_429)
        .iter()
        .map(|l| {
            let attr = &l["attr"];
            (
                attr["namespace"].as_str().expect("namespace").to_owned(),
                attr["documentsKept"].as_u64().expect("kept"),
                attr["documentsRemoved"].as_u64().expect("removed"),
            )
        })
        .collect();
    assert_eq!(summaries, vec![("d.kept".to_owned(), 200, 0), ("d.tags".to_owned(), 1, 0)]);
    assert!(quarantines(&dir).is_empty());

    let server = TestServer::start_in(dir, &[]);
    let client = server.client("").await;
    let db = client.database("d");
    assert_eq!(all(&db.collection::<Document>("kept")).await, (0..200).map(kept_doc).collect::<Vec<_>>());
    assert_eq!(validate(&db, "kept").await, (true, 200));
    assert_eq!(validate(&db, "tags").await, (true, 1));
    let spec = common::index_spec(&db, "tags", "t_1").await;
    assert_eq!(spec.get("key"), Some(&Bson::Document(doc! { "t": 1 })));
    let tags = db.collection::<Document>("tags");
    let by_index = tags.count_documents(doc! { "t": "b" }).hint(mongodb::options::Hint::Name("t_1".into())).await;
    assert_eq!(by_index.expect("count through the multikey index"), 1);
}

#[tokio::test]
async fn repair_refused_while_a_server_holds_the_dbpath() {
    let server = TestServer::start(&[]);
    let coll = server.client("").await.database("d").collection::<Document>("c");
    coll.insert_one(doc! { "_id": 1 }).await.expect("insert");
    let (ok, lines, output) = repair(&server.dir, &[]);
    assert!(!ok, "--repair ran beside a server: {output}");
    let failed = one(&lines, 7_000_419);
    let error = failed["attr"]["error"].as_str().expect("error");
    assert!(error.contains("Unable to lock the lock file") && error.contains("monarchd.lock"), "{failed}");
    assert!(with_id(&lines, 7_000_420).is_empty(), "the repair did not start: {output}");
    coll.insert_one(doc! { "_id": 2 }).await.expect("the server goes on");
    assert_eq!(coll.count_documents(doc! {}).await.expect("count"), 2);
}

#[test]
fn repair_refuses_replica_set_options() {
    let output = run_to_exit(&["--repair", "--replSet", "rs0"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "Cannot specify both repair and replSet at the same time (remove --replSet to be able to --repair)"
        ),
        "{stderr}"
    );
}
