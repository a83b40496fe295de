//! Point-in-time recovery end to end (issue 19, point 9): a replica-set member with scheduled
//! backups archives its oplog every second; `monarchd restore --oplogReplay --oplogLimit`
//! rebuilds the data as it was at a chosen operation time (driver updates with operators,
//! deletes, a transaction, an index, a view, a capped collection), and without a limit as it
//! is now; the options it cannot honour are refused. The archive carries on across a clean
//! shutdown (which archives the last writes) and a crash (a chunk left half-written is
//! removed, and the chain resumes where it ended).

#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use std::path::Path;
use std::time::Duration;

use common::tools::{collections, documents, indexes, names, path, stderr, stdout, tool};
use common::{TestServer, eventually};
use mongodb::Client;
use mongodb::bson::{Document, Timestamp, doc};

/// Every collection of `shop`: its listing, indexes and documents.
async fn state(client: &Client) -> Vec<(String, Document, Vec<mongodb::bson::Bson>, Vec<Document>)> {
    let listed = collections(client, "shop").await;
    let mut all = Vec::new();
    for name in names(client, "shop").await {
        let entry = listed.iter().find(|c| c.get_str("name").ok() == Some(name.as_str())).cloned().unwrap_or_default();
        let is_collection = entry.get_str("type").ok() == Some("collection");
        let indexes = if is_collection { indexes(client, "shop", &name).await } else { Vec::new() };
        all.push((name.clone(), entry, indexes, documents(client, "shop", &name).await));
    }
    all
}

/// The operation time of an insert into `<db>.marks`: a point between two phases.
async fn mark_in(client: &Client, db: &str, id: i32) -> Timestamp {
    let reply =
        client.database(db).run_command(doc! { "insert": "marks", "documents": [{ "_id": id }] }).await.expect("mark");
    reply.get_timestamp("operationTime").expect("operationTime")
}

/// The newest time archived under `oplog` (from the chunks' names).
fn archived_through(oplog: &Path) -> Option<(u32, u32)> {
    let entries = std::fs::read_dir(oplog).ok()?;
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| !name.ends_with(".partial"))
        .filter_map(|name| {
            let (t, i) = name.strip_prefix("oplog-")?.split_once('-')?;
            Some((t.parse().ok()?, i.parse().ok()?))
        })
        .max()
}

/// Restores `backup` with `extra` options into a new directory and starts a server on it.
fn restore(backup: &Path, extra: &[&str]) -> (TestServer, String) {
    let scratch = tempfile::tempdir().expect("temp dir");
    let dbpath = scratch.path().join("db");
    let mut args = vec!["restore", "--from", path(backup), "--dbpath", path(&dbpath), "--oplogReplay"];
    args.extend_from_slice(extra);
    let output = tool(&args);
    assert_eq!(output.status.code(), Some(0), "restore: {}", stderr(&output));
    (TestServer::start_in(scratch, &[]), stdout(&output))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_replays_the_archived_oplog_to_a_point_in_time() {
    let backups = tempfile::tempdir().expect("temp dir");
    let server = TestServer::member(&[
        "--backupSchedule",
        "1d",
        "--backupPath",
        path(backups.path()),
        "--backupOplogInterval",
        "1s",
    ]);
    let client = server.client("").await;
    let shop = client.database("shop");
    let orders = shop.collection::<Document>("orders");
    let seed: Vec<Document> = (0..20)
        .map(
            |i| doc! { "_id": i, "qty": i, "items": ["a", "b"], "status": "new", "ship": { "city": "Oslo", "zip": i } },
        )
        .collect();
    orders.insert_many(seed).await.expect("seed");
    shop.run_command(
        doc! { "create": "big", "viewOn": "orders", "pipeline": [{ "$match": { "qty": { "$gt": 10 } } }] },
    )
    .await
    .expect("view");
    shop.run_command(doc! { "create": "log", "capped": true, "size": 4096, "max": 5 }).await.expect("capped");

    let backup = backups.path().join("manual");
    let taken = server.admin(doc! { "createBackup": 1, "backupDir": path(&backup) }).await.expect("createBackup");
    let backup_time = taken.get_timestamp("oplogTime").expect("a member's backup has its oplog time");

    // Phase A, after the backup: what the restore to the mark must give back.
    orders
        .update_one(doc! { "_id": 1 }, doc! { "$set": { "status": "paid", "ship.city": "Bergen" }, "$push": { "items": "c" }, "$inc": { "qty": 5 } })
        .await
        .expect("update");
    orders
        .update_many(doc! { "qty": { "$lt": 5 } }, doc! { "$unset": { "status": "" }, "$pop": { "items": 1 } })
        .await
        .expect("update_many");
    orders.replace_one(doc! { "_id": 2 }, doc! { "replaced": true }).await.expect("replace");
    orders.delete_one(doc! { "_id": 3 }).await.expect("delete");
    orders.create_index(mongodb::IndexModel::builder().keys(doc! { "status": 1 }).build()).await.expect("index");
    let log = shop.collection::<Document>("log");
    for i in 0..8 {
        log.insert_one(doc! { "_id": i, "line": format!("entry {i}") }).await.expect("log");
    }
    shop.run_command(doc! { "create": "paid", "viewOn": "orders", "pipeline": [{ "$match": { "status": "paid" } }] })
        .await
        .expect("second view");
    shop.run_command(doc! { "create": "metrics", "timeseries": { "timeField": "at", "metaField": "host" } })
        .await
        .expect("timeseries");
    let at = mongodb::bson::DateTime::from_millis(1_764_000_000_000);
    shop.collection::<Document>("metrics")
        .insert_one(doc! { "at": at, "host": "a", "cpu": 0.5 })
        .await
        .expect("measurement");
    shop.run_command(
        doc! { "collMod": "orders", "validator": { "qty": { "$gte": 0 } }, "validationLevel": "moderate" },
    )
    .await
    .expect("collMod");
    shop.run_command(doc! { "collMod": "orders", "index": { "name": "status_1", "hidden": true } })
        .await
        .expect("hide");
    orders.create_index(mongodb::IndexModel::builder().keys(doc! { "qty": -1 }).build()).await.expect("index");
    orders.drop_index("qty_-1").await.expect("drop index");
    let mut session = client.start_session().await.expect("session");
    session.start_transaction().await.expect("start");
    shop.collection::<Document>("payments")
        .insert_one(doc! { "_id": 1, "order": 4 })
        .session(&mut session)
        .await
        .expect("txn insert");
    orders
        .update_one(doc! { "_id": 4 }, doc! { "$set": { "status": "paid" } })
        .session(&mut session)
        .await
        .expect("txn update");
    session.commit_transaction().await.expect("commit");
    let point = mark_in(&client, "shop", 1).await;
    let at_point = state(&client).await;

    // Phase B, the "accident" and what came after it.
    orders.drop().await.expect("drop");
    client
        .database("admin")
        .run_command(doc! { "renameCollection": "shop.payments", "to": "shop.settled" })
        .await
        .expect("rename");
    shop.collection::<Document>("settled").insert_one(doc! { "_id": 2, "order": 9 }).await.expect("insert");
    let last = mark_in(&client, "shop", 2).await;
    let now = state(&client).await;

    let oplog = backups.path().join("oplog");
    assert!(
        eventually(Duration::from_secs(30), || archived_through(&oplog) >= Some((last.time, last.increment))),
        "the archive reaches the last write: {:?}",
        archived_through(&oplog)
    );
    // The chunk is visible a moment before the figures move.
    assert!(eventually(Duration::from_secs(10), || {
        server.metric("monarch_backup_oplog_archived_entries_total").unwrap_or(0.0) > 0.0
    }));
    assert_eq!(server.metric("monarch_backup_oplog_archive_gaps_total"), Some(0.0));
    assert!(backup_time < point);

    // To the mark: the limit is exclusive, so the mark's own insert is in with its successor.
    let limit = format!("{}:{}", point.time, point.increment + 1);
    let (restored, said) = restore(&backup, &["--oplogLimit", &limit]);
    assert!(said.contains(&format!("through {}:{}", point.time, point.increment)), "{said}");
    assert_eq!(state(&restored.client("").await).await, at_point);
    drop(restored);

    // Just before the mark: everything but the mark's own insert.
    let before = format!("{}:{}", point.time, point.increment);
    let (restored, _) = restore(&backup, &["--oplogLimit", &before]);
    let restored_client = restored.client("").await;
    assert_eq!(documents(&restored_client, "shop", "marks").await, Vec::<Document>::new());
    drop(restored);

    // Without a limit: everything archived, the drop and the rename included.
    let (restored, _) = restore(&backup, &[]);
    assert_eq!(state(&restored.client("").await).await, now);
    drop(restored);

    // A selection or renaming cannot be replayed faithfully: refused, nothing written.
    let dbpath = backups.path().join("refused");
    let output = tool(&[
        "restore",
        "--from",
        path(&backup),
        "--dbpath",
        path(&dbpath),
        "--oplogReplay",
        "--nsInclude",
        "shop.orders",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--oplogReplay restores every namespace under its own name"),
        "{}",
        stderr(&output)
    );
    let output =
        tool(&["restore", "--from", path(&backup), "--dbpath", path(&dbpath), "--oplogReplay", "--oplogLimit", "soon"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("--oplogLimit \"soon\" is not a time"), "{}", stderr(&output));
    assert!(!dbpath.exists());
}

#[tokio::test]
async fn oplog_replay_needs_a_backup_with_an_oplog_time() {
    let server = TestServer::start(&[]);
    let backups = tempfile::tempdir().expect("temp dir");
    let backup = backups.path().join("standalone");
    let taken = server.admin(doc! { "createBackup": 1, "backupDir": path(&backup) }).await.expect("createBackup");
    assert!(!taken.contains_key("oplogTime"), "{taken}");
    let dbpath = backups.path().join("db");
    let output = tool(&["restore", "--from", path(&backup), "--dbpath", path(&dbpath), "--oplogReplay"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("has no oplog time"), "{}", stderr(&output));
    assert!(!dbpath.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oplog_archive_carries_on_across_shutdown_and_crash() {
    let backups = tempfile::tempdir().expect("temp dir");
    let oplog = backups.path().join("oplog");
    // An hour between runs: only shutdown and the restarts below archive anything.
    let args = |interval: &'static str| {
        vec![
            "--replSet",
            "rs0",
            "--backupSchedule",
            "1d",
            "--backupPath",
            path(backups.path()),
            "--backupOplogInterval",
            interval,
        ]
    };
    let server = TestServer::member(&args("1h")[2..]);
    let client = server.client("journal=true").await;
    let c = client.database("app").collection::<Document>("c");
    c.insert_one(doc! { "_id": 0 }).await.expect("insert");
    let backup = backups.path().join("manual");
    server.admin(doc! { "createBackup": 1, "backupDir": path(&backup) }).await.expect("createBackup");
    c.insert_one(doc! { "_id": 1 }).await.expect("insert");
    let before_shutdown = mark_in(&client, "app", 1).await;
    assert_eq!(archived_through(&oplog), None, "nothing archived before the first interval");
    drop(client);

    // A clean shutdown archives what was acknowledged before it.
    let server = server.restart(&args("1h"));
    assert!(archived_through(&oplog) >= Some((before_shutdown.time, before_shutdown.increment)));
    // The set's configuration names the first port: the driver talks to this one directly.
    let client = server.client("directConnection=true&journal=true").await;
    let c = client.database("app").collection::<Document>("c");
    c.update_one(doc! { "_id": 1 }, doc! { "$set": { "after": "restart" } }).await.expect("update");
    let before_crash = mark_in(&client, "app", 2).await;
    drop(client);

    // A crash: nothing archived since; a chunk an interrupted run left is removed at start.
    let dir = server.crash();
    let partial = oplog.join("oplog-0000000001-0000000001.partial");
    std::fs::create_dir_all(&partial).expect("partial chunk");
    let server = TestServer::start_in(dir, &args("1s"));
    assert!(
        eventually(Duration::from_secs(30), || archived_through(&oplog)
            >= Some((before_crash.time, before_crash.increment))),
        "{:?}",
        archived_through(&oplog)
    );
    assert!(!partial.exists(), "the half-written chunk is removed");
    assert_eq!(server.metric("monarch_backup_oplog_archive_gaps_total"), Some(0.0));

    let (restored, said) = restore(&backup, &[]);
    assert!(said.contains("oplog replayed"), "{said}");
    let now = state_of_app(&server.client("directConnection=true").await).await;
    assert_eq!(state_of_app(&restored.client("").await).await, now);
    assert_eq!(now.len(), 2, "app.c and app.marks");
}

/// `app`'s collections and their documents.
async fn state_of_app(client: &Client) -> Vec<(String, Vec<Document>)> {
    let mut all = Vec::new();
    for name in names(client, "app").await {
        all.push((name.clone(), documents(client, "app", &name).await));
    }
    all
}
