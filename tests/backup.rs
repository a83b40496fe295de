//! Backups end to end (issue 19, points 1 to 3): `createBackup` while writers run restores to
//! one consistent point; `monarchd backup verify` names damaged files and offsets and
//! `monarchd restore` refuses them, leaving nothing behind; a restore gives back the same
//! collections, options, indexes and documents; mongorestore's namespace options select and
//! rename; the command's privilege and fields; the command-line tools and their exit codes.

#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::tools::{collections, documents, every_type, indexes, names, path, run, stderr, stdout, tool};
use common::{TestServer, error_code};
use mongodb::Client;
use mongodb::bson::{Bson, Document, doc};

/// Asks `server` for a backup into `dir` through the driver.
async fn create_backup(server: &TestServer, dir: &Path) -> Document {
    server.admin(doc! { "createBackup": 1, "backupDir": path(dir) }).await.expect("createBackup")
}

/// Restores `from` into `<scratch>/db` with `extra` options and starts a server on it.
fn restore_and_start(from: &Path, extra: &[&str]) -> TestServer {
    let scratch = tempfile::tempdir().expect("temp dir");
    let dbpath = scratch.path().join("db");
    let mut args = vec!["restore", "--from", path(from), "--dbpath", path(&dbpath)];
    args.extend_from_slice(extra);
    let output = tool(&args);
    assert_eq!(output.status.code(), Some(0), "restore: {}", stderr(&output));
    TestServer::start_in(scratch, &[])
}

/// A copy of the backup `from` at `to`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Whether anything named `<name>...` (the target or a temporary sibling) exists next to
/// `dbpath`.
fn leftovers(dbpath: &Path) -> Vec<String> {
    let name = dbpath.file_name().and_then(|n| n.to_str()).expect("name").to_owned();
    std::fs::read_dir(dbpath.parent().expect("parent"))
        .expect("read_dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&name))
        .collect()
}

/// One writer's record: for each write, when it was sent and when it was acknowledged.
#[derive(Default)]
struct WriterLog {
    /// `(sent, acknowledged)` of the insert of sequence number `i`.
    inserts: Vec<(Instant, Instant)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_during_eight_writers_restores_one_consistent_point() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("app");
    run(&client, "app", doc! { "createIndexes": "events", "indexes": [{ "key": { "w": 1, "seq": 1 }, "name": "w_seq", "unique": true }] }).await;
    let counters = db.collection::<Document>("counters");
    for w in 0..8 {
        counters.insert_one(doc! { "_id": w, "n": -1 }).await.expect("counter");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..8_i32 {
        let events = db.collection::<Document>("events");
        let counters = counters.clone();
        let stop = stop.clone();
        // Each writer inserts event `seq`, then sets its counter to `seq`, one after the
        // other: any consistent point holds events 0..=m of it and a counter of m or m - 1.
        writers.push(tokio::spawn(async move {
            let mut log = WriterLog::default();
            let mut seq = 0_i32;
            while !stop.load(Ordering::Acquire) {
                let sent = Instant::now();
                events
                    .insert_one(doc! { "_id": format!("{w}-{seq}"), "w": w, "seq": seq, "pad": "x".repeat(200) })
                    .await
                    .expect("insert");
                log.inserts.push((sent, Instant::now()));
                counters.update_one(doc! { "_id": w }, doc! { "$set": { "n": seq } }).await.expect("update");
                seq += 1;
            }
            log
        }));
    }
    // Let every writer get going before the backup.
    assert!(
        common::eventually_async(Duration::from_secs(60), || {
            let events = db.collection::<Document>("events");
            async move { events.count_documents(doc! {}).await.unwrap_or(0) >= 400 }
        })
        .await
    );
    let scratch = tempfile::tempdir().expect("temp dir");
    let backup_dir = scratch.path().join("backup");
    let backup_started = Instant::now();
    let reply = create_backup(&server, &backup_dir).await;
    let backup_returned = Instant::now();
    // Writers go on after the reply, so "nothing written after it" is a real check.
    let acked_after = |count: u64| {
        let events = db.collection::<Document>("events");
        async move { events.count_documents(doc! {}).await.unwrap_or(0) >= count }
    };
    let total_now = db.collection::<Document>("events").count_documents(doc! {}).await.expect("count");
    assert!(common::eventually_async(Duration::from_secs(60), || acked_after(total_now + 400)).await);
    stop.store(true, Ordering::Release);
    let mut logs = Vec::new();
    for writer in writers {
        logs.push(writer.await.expect("writer"));
    }
    assert_eq!(reply.get_str("backupDir").ok(), Some(path(&backup_dir)));
    let backed_up = reply.get_i64("documents").expect("documents");

    let restored = restore_and_start(&backup_dir, &[]);
    let restored_client = restored.client("").await;
    let events = documents(&restored_client, "app", "events").await;
    let counters = documents(&restored_client, "app", "counters").await;
    assert_eq!(backed_up, (events.len() + counters.len()) as i64);
    for (w, log) in logs.iter().enumerate() {
        let mut present: Vec<i32> = events
            .iter()
            .filter(|d| d.get_i32("w").ok() == Some(w as i32))
            .filter_map(|d| d.get_i32("seq").ok())
            .collect();
        present.sort_unstable();
        let kept = present.len();
        // A prefix of the writer's inserts: 0..kept, with no gap.
        assert_eq!(present, (0..kept as i32).collect::<Vec<_>>(), "writer {w}");
        let acked_before = log.inserts.iter().filter(|(_, acked)| *acked < backup_started).count();
        let sent_before_return = log.inserts.iter().filter(|(sent, _)| *sent < backup_returned).count();
        assert!(kept >= acked_before, "writer {w}: {kept} restored, {acked_before} acknowledged before the backup");
        assert!(
            kept <= sent_before_return,
            "writer {w}: {kept} restored, {sent_before_return} sent before it returned"
        );
        assert!(log.inserts.len() > sent_before_return, "writer {w} wrote after the backup returned");
        // The other collection, at the same point.
        let n = counters.iter().find(|d| d.get_i32("_id").ok() == Some(w as i32)).and_then(|d| d.get_i32("n").ok());
        let m = kept as i32 - 1;
        assert!(n == Some(m) || n == Some(m - 1), "writer {w}: counter {n:?} with events 0..={m}");
    }
    let validated = run(&restored_client, "app", doc! { "validate": "events" }).await;
    assert_eq!(validated.get_bool("valid").ok(), Some(true), "{validated}");
    assert_eq!(
        validated.get_i64("nrecords").ok().or(validated.get_i32("nrecords").ok().map(i64::from)),
        Some(events.len() as i64)
    );
    assert_eq!(indexes(&restored_client, "app", "events").await, indexes(&client, "app", "events").await);
}

/// A server with `app.big` (3000 documents of exactly 1024 bytes: 3,072,000 bytes, three
/// hash blocks) and `app.small`, backed up into `<scratch>/backup`.
async fn backed_up_big() -> (tempfile::TempDir, PathBuf) {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let big = client.database("app").collection::<Document>("big");
    let docs: Vec<Document> = (0..3000).map(|i| doc! { "_id": i, "pad": "x".repeat(1000) }).collect();
    big.insert_many(docs).await.expect("insert");
    client.database("app").collection::<Document>("small").insert_one(doc! { "_id": 1 }).await.expect("insert");
    let scratch = tempfile::tempdir().expect("temp dir");
    let dir = scratch.path().join("backup");
    create_backup(&server, &dir).await;
    assert_eq!(std::fs::metadata(dir.join("app/big.bson")).expect("big.bson").len(), 3_072_000);
    (scratch, dir)
}

#[tokio::test]
async fn backup_verify_names_the_damage_and_restore_refuses_it() {
    let (scratch, pristine) = backed_up_big().await;
    let verified = tool(&["backup", "verify", path(&pristine)]);
    assert_eq!(verified.status.code(), Some(0), "{}", stderr(&verified));
    assert!(
        stdout(&verified).starts_with(&format!("verified: {} (2 collections, 3001 documents, ", path(&pristine))),
        "{}",
        stdout(&verified)
    );

    type Damage = fn(&Path);
    let cases: [(&str, Damage, String); 5] = [
        (
            // Inside document 1464's string: still parses, so only the hashes see it.
            "flipped byte in a value",
            |dir| flip(&dir.join("app/big.bson"), 1_500_000),
            "app/big.bson: at byte offset 1048576: bytes 1048576..2097152 differ from the backup as written".to_owned(),
        ),
        (
            // The low byte of document 2's length: 1024 becomes 1279.
            "flipped byte in a length",
            |dir| flip_to(&dir.join("app/big.bson"), 2048, 0xFF),
            "app/big.bson: at byte offset 2048: the document does not parse".to_owned(),
        ),
        (
            "truncated file",
            |dir| truncate(&dir.join("app/big.bson"), 1_000_000),
            "app/big.bson: at byte offset 999424: truncated: the document declares 1024 bytes, 576 remain".to_owned(),
        ),
        (
            "missing manifest",
            |dir| std::fs::remove_file(dir.join("manifest.json")).expect("rm"),
            "no manifest.json: not a complete backup".to_owned(),
        ),
        (
            "manifest that does not match",
            |dir| {
                let manifest = dir.join("manifest.json");
                let text = std::fs::read_to_string(&manifest).expect("manifest");
                std::fs::write(&manifest, text.replacen("\"documents\": 3000", "\"documents\": 2999", 1))
                    .expect("write");
            },
            "app/big.bson: at byte offset 3072000: holds 3000 documents, the manifest says 2999".to_owned(),
        ),
    ];
    for (what, damage, expected) in cases {
        let dir = scratch.path().join(what.replace(' ', "-"));
        copy_tree(&pristine, &dir);
        damage(&dir);
        let verified = tool(&["backup", "verify", path(&dir)]);
        assert_eq!(verified.status.code(), Some(1), "{what}: {}", stderr(&verified));
        assert!(stderr(&verified).contains(&expected), "{what}: {}", stderr(&verified));
        let target = scratch.path().join(format!("restored-{}", what.replace(' ', "-")));
        let restored = tool(&["restore", "--from", path(&dir), "--dbpath", path(&target)]);
        assert_eq!(restored.status.code(), Some(1), "{what}: {}", stderr(&restored));
        assert!(stderr(&restored).contains(&expected), "{what}: {}", stderr(&restored));
        assert_eq!(leftovers(&target), Vec::<String>::new(), "{what}");
    }
}

fn flip(file: &Path, at: usize) {
    let mut bytes = std::fs::read(file).expect("read");
    let byte = bytes.get_mut(at).expect("offset");
    *byte ^= 0x01;
    std::fs::write(file, bytes).expect("write");
}

fn flip_to(file: &Path, at: usize, value: u8) {
    let mut bytes = std::fs::read(file).expect("read");
    *bytes.get_mut(at).expect("offset") = value;
    std::fs::write(file, bytes).expect("write");
}

fn truncate(file: &Path, len: u64) {
    std::fs::OpenOptions::new().write(true).open(file).expect("open").set_len(len).expect("truncate");
}

#[tokio::test]
async fn restore_gives_back_options_indexes_and_documents() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = "shop";
    run(&client, db, doc! {
        "create": "validated",
        "validator": { "$jsonSchema": { "required": ["name"], "properties": { "name": { "bsonType": "string" } } } },
        "validationLevel": "moderate",
        "validationAction": "error",
    }).await;
    run(&client, db, doc! { "create": "collated", "collation": { "locale": "en", "strength": 2 } }).await;
    run(&client, db, doc! { "create": "log", "capped": true, "size": 4096, "max": 10 }).await;
    run(&client, db, doc! { "create": "people" }).await;
    run(
        &client,
        db,
        doc! { "createIndexes": "people", "indexes": [
            { "key": { "email": 1 }, "name": "email_1", "unique": true },
            { "key": { "last": 1, "first": -1 }, "name": "last_1_first_-1" },
            { "key": { "at": 1 }, "name": "at_1", "expireAfterSeconds": 3600 },
        ] },
    )
    .await;
    run(
        &client,
        db,
        doc! { "create": "adults", "viewOn": "people", "pipeline": [{ "$match": { "age": { "$gte": 18 } } }] },
    )
    .await;
    let shop = client.database(db);
    shop.collection::<Document>("validated")
        .insert_many(vec![doc! { "_id": 1, "name": "a" }, doc! { "_id": 2, "name": "b" }])
        .await
        .expect("insert");
    shop.collection::<Document>("collated")
        .insert_many(vec![doc! { "_id": "É" }, doc! { "_id": "e2" }])
        .await
        .expect("insert");
    for i in 0..15 {
        shop.collection::<Document>("log")
            .insert_one(doc! { "_id": i, "line": format!("line {i}") })
            .await
            .expect("insert");
    }
    let people: Vec<Document> = (0..5)
        .map(|i| doc! { "_id": i, "email": format!("p{i}@x"), "last": "L", "first": format!("F{i}"), "age": 15 + i, "at": mongodb::bson::DateTime::now() })
        .collect();
    shop.collection::<Document>("people").insert_many(people).await.expect("insert");
    let scratch = tempfile::tempdir().expect("temp dir");
    let dir = scratch.path().join("backup");
    create_backup(&server, &dir).await;

    let restored = restore_and_start(&dir, &[]);
    let restored_client = restored.client("").await;
    let listed = collections(&restored_client, db).await;
    assert_eq!(listed, collections(&client, db).await);
    assert_eq!(
        listed.iter().filter_map(|c| c.get_str("name").ok()).collect::<Vec<_>>(),
        ["adults", "collated", "log", "people", "system.views", "validated"]
    );
    // Compared as printed: a `Document`'s equality ignores field order, and a compound index's
    // key order is the index.
    let printed = |values: Vec<Bson>| values.iter().map(ToString::to_string).collect::<Vec<_>>();
    for coll in ["validated", "collated", "log", "people"] {
        assert_eq!(
            printed(indexes(&restored_client, db, coll).await),
            printed(indexes(&client, db, coll).await),
            "{coll}"
        );
        let restored_documents = documents(&restored_client, db, coll).await;
        let original_documents = documents(&client, db, coll).await;
        assert_eq!(
            printed(restored_documents.into_iter().map(Bson::Document).collect()),
            printed(original_documents.into_iter().map(Bson::Document).collect()),
            "{coll}"
        );
    }
    // The capped collection kept its last 10 in insertion order; the view still answers.
    let log: Vec<i32> =
        documents(&restored_client, db, "log").await.iter().filter_map(|d| d.get_i32("_id").ok()).collect();
    assert_eq!(log, (5..15).collect::<Vec<_>>());
    assert_eq!(documents(&restored_client, db, "adults").await.len(), 2);
    // The validator and the unique index are in force again.
    let refused = restored_client.database(db).collection::<Document>("validated").insert_one(doc! { "_id": 3 }).await;
    assert_eq!(refused.as_ref().err().and_then(error_code), Some(121));
    let duplicate = restored_client
        .database(db)
        .collection::<Document>("people")
        .insert_one(doc! { "_id": 9, "email": "p1@x" })
        .await;
    assert_eq!(duplicate.as_ref().err().and_then(error_code), Some(11000));
}

#[tokio::test]
async fn restore_selects_and_renames_namespaces_as_mongorestore() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    for (db, coll) in [("sales", "orders"), ("sales", "tmp_x"), ("hr", "staff")] {
        client
            .database(db)
            .collection::<Document>(coll)
            .insert_one(doc! { "_id": 1, "from": format!("{db}.{coll}") })
            .await
            .expect("insert");
    }
    let scratch = tempfile::tempdir().expect("temp dir");
    let dir = scratch.path().join("backup");
    create_backup(&server, &dir).await;

    let selected = restore_and_start(&dir, &["--nsInclude", "sales.*", "--nsExclude", "sales.tmp*"]);
    let selected_client = selected.client("").await;
    assert_eq!(names(&selected_client, "sales").await, ["orders"]);
    assert_eq!(names(&selected_client, "hr").await, Vec::<String>::new());

    let renamed = restore_and_start(&dir, &["--nsFrom", "sales.$coll$", "--nsTo", "archive.$coll$_2026"]);
    let renamed_client = renamed.client("").await;
    assert_eq!(names(&renamed_client, "archive").await, ["orders_2026", "tmp_x_2026"]);
    assert_eq!(names(&renamed_client, "sales").await, Vec::<String>::new());
    assert_eq!(names(&renamed_client, "hr").await, ["staff"]);
    assert_eq!(
        documents(&renamed_client, "archive", "orders_2026").await,
        vec![doc! { "_id": 1, "from": "sales.orders" }]
    );
}

#[tokio::test]
async fn create_backup_needs_the_backup_privilege_an_empty_dir_and_known_fields() {
    let server = TestServer::start(&["--auth"]);
    server.admin(doc! { "createUser": "root", "pwd": "pw-root", "roles": ["root"] }).await.expect("first user");
    let as_user = |user: &str| {
        let uri = server.uri("authSource=admin").replacen("mongodb://", &format!("mongodb://{user}:pw-{user}@"), 1);
        async move { Client::with_uri_str(uri).await.expect("client") }
    };
    let root = as_user("root").await;
    for (user, role) in [("reader", "readAnyDatabase"), ("backer", "backup")] {
        run(&root, "admin", doc! { "createUser": user, "pwd": format!("pw-{user}"), "roles": [role] }).await;
    }
    let scratch = tempfile::tempdir().expect("temp dir");
    let dir = scratch.path().join("backup");
    let command = doc! { "createBackup": 1, "backupDir": path(&dir) };

    let refused = as_user("reader").await.database("admin").run_command(command.clone()).await;
    assert_eq!(refused.as_ref().err().and_then(error_code), Some(13));
    assert!(!dir.exists());

    let backer = as_user("backer").await;
    let reply = backer.database("admin").run_command(command.clone()).await.expect("createBackup");
    assert_eq!(reply.get_str("backupDir").ok(), Some(path(&dir)));
    // root.system.users and the user documents: admin.system.users (and its version).
    assert!(dir.join("admin/system.users.bson").exists());

    let again = backer.database("admin").run_command(command.clone()).await;
    assert_eq!(again.as_ref().err().and_then(error_code), Some(20));
    let unknown = backer
        .database("admin")
        .run_command(doc! { "createBackup": 1, "backupDir": path(&scratch.path().join("b2")), "compress": true })
        .await;
    assert_eq!(unknown.as_ref().err().and_then(error_code), Some(40415));
    let missing = backer.database("admin").run_command(doc! { "createBackup": 1 }).await;
    assert_eq!(missing.as_ref().err().and_then(error_code), Some(40414));
    let relative = backer.database("admin").run_command(doc! { "createBackup": 1, "backupDir": "relative/dir" }).await;
    assert_eq!(relative.as_ref().err().and_then(error_code), Some(2));
    let inside = server.dir.path().join("db").join("backups");
    let refused = backer.database("admin").run_command(doc! { "createBackup": 1, "backupDir": path(&inside) }).await;
    assert_eq!(refused.as_ref().err().and_then(error_code), Some(2));
    assert!(!inside.exists());
    assert!(!scratch.path().join("b2").exists());
}

#[tokio::test]
async fn backup_cli_takes_verifies_and_restores_with_exit_codes() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    client
        .database("app")
        .collection::<Document>("c")
        .insert_many(vec![doc! { "_id": 1 }, doc! { "_id": 2 }, doc! { "_id": 3 }])
        .await
        .expect("insert");
    let scratch = tempfile::tempdir().expect("temp dir");
    let dir = scratch.path().join("backup");
    let uri = format!("mongodb://127.0.0.1:{}", server.port);

    let taken = tool(&["backup", "--uri", &uri, "--out", path(&dir)]);
    assert_eq!(taken.status.code(), Some(0), "{}", stderr(&taken));
    assert!(
        stdout(&taken).starts_with(&format!("backup complete: {} (1 collections, 3 documents, ", path(&dir))),
        "{}",
        stdout(&taken)
    );
    let again = tool(&["backup", "--uri", &uri, "--out", path(&dir)]);
    assert_eq!(again.status.code(), Some(3));
    assert!(stderr(&again).contains("the server answered IllegalOperation (20)"), "{}", stderr(&again));
    // Credentials and TLS are taken (command_line_tools_log_in_with_scram_from_the_uri, and
    // tests/tls.rs); an option the client would not honour is refused. TLS asked of a plain
    // server fails within the setup timeout instead of hanging.
    let insecure = tool(&["backup", "--uri", &format!("{uri}/?tlsInsecure=true"), "--out", path(&dir)]);
    assert_eq!(insecure.status.code(), Some(2));
    assert_eq!(stderr(&insecure), "monarchd backup: the URI option tlsInsecure=true is not supported yet\n");
    let started = Instant::now();
    let tls = tool(&["backup", "--uri", &format!("{uri}/?tls=true"), "--out", path(&dir)]);
    assert_eq!(tls.status.code(), Some(3), "{}", stderr(&tls));
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());

    let verified = tool(&["backup", "verify", path(&dir)]);
    assert_eq!(verified.status.code(), Some(0), "{}", stderr(&verified));
    assert!(stdout(&verified).starts_with(&format!("verified: {} (1 collections, 3 documents, ", path(&dir))));
    assert_eq!(tool(&["backup", "verify"]).status.code(), Some(2));

    let dbpath = scratch.path().join("db");
    let restored = tool(&["restore", "--from", path(&dir), "--dbpath", path(&dbpath)]);
    assert_eq!(restored.status.code(), Some(0), "{}", stderr(&restored));
    assert!(stdout(&restored).starts_with(&format!("restored: {} (1 collections, 3 documents, ", path(&dbpath))));
    let refused = tool(&["restore", "--from", path(&dir), "--dbpath", path(&dbpath)]);
    assert_eq!(refused.status.code(), Some(2));
    assert_eq!(
        stderr(&refused),
        format!("monarchd restore: {} is not empty (pass --drop to replace the whole directory)\n", path(&dbpath))
    );
    let dropped = tool(&["restore", "--from", path(&dir), "--dbpath", path(&dbpath), "--drop"]);
    assert_eq!(dropped.status.code(), Some(0), "{}", stderr(&dropped));
    assert_eq!(leftovers(&dbpath), ["db"]);
    let unpaired =
        tool(&["restore", "--from", path(&dir), "--dbpath", path(&scratch.path().join("x")), "--nsFrom", "a.b"]);
    assert_eq!(unpaired.status.code(), Some(2));

    let restored = TestServer::start_in(scratch, &[]);
    let restored_client = restored.client("").await;
    assert_eq!(
        documents(&restored_client, "app", "c").await,
        vec![doc! { "_id": 1 }, doc! { "_id": 2 }, doc! { "_id": 3 }]
    );
}

/// The `opid` of the `createBackup` in progress, once `currentOp` shows it.
async fn backup_in_progress(admin: &mongodb::Database) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = admin.run_command(doc! { "currentOp": 1 }).await.expect("currentOp");
        let opid = reply.get_array("inprog").expect("inprog").iter().find_map(|op| {
            let op = op.as_document()?;
            op.get_document("command").ok()?.contains_key("createBackup").then(|| op.get_i64("opid").ok())?
        });
        if let Some(opid) = opid {
            return opid;
        }
        assert!(Instant::now() < deadline, "the backup never showed in currentOp");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn create_backup_stopped_by_kill_op_or_max_time_leaves_nothing() {
    let server = TestServer::start(&["--setParameter", "enableTestCommands=1"]);
    let client = server.client("").await;
    let docs: Vec<Document> = (0..5000).map(|i| doc! { "_id": i, "pad": "x".repeat(100) }).collect();
    client.database("app").collection::<Document>("c").insert_many(docs).await.expect("insert");
    let admin = client.database("admin");
    let scratch = tempfile::tempdir().expect("temp dir");
    // The fail point holds the command before it runs, so the stop (a kill, or a deadline
    // already passed) is what the backup's own interruption checks meet.
    let hold = |ms: i32| {
        doc! {
            "configureFailPoint": "failCommand",
            "mode": { "times": 1 },
            "data": { "failCommands": ["createBackup"], "blockConnection": true, "blockTimeMS": ms },
        }
    };

    admin.run_command(hold(500)).await.expect("fail point");
    let killed_dir = scratch.path().join("killed");
    let command = doc! { "createBackup": 1, "backupDir": path(&killed_dir) };
    let backup = tokio::spawn({
        let admin = admin.clone();
        async move { admin.run_command(command).await }
    });
    let opid = backup_in_progress(&admin).await;
    admin.run_command(doc! { "killOp": 1, "op": opid }).await.expect("killOp");
    let killed = backup.await.expect("join");
    assert_eq!(killed.as_ref().err().and_then(error_code), Some(11601), "{killed:?}");

    admin.run_command(hold(200)).await.expect("fail point");
    let timed_dir = scratch.path().join("timed");
    let timed = admin.run_command(doc! { "createBackup": 1, "backupDir": path(&timed_dir), "maxTimeMS": 50 }).await;
    assert_eq!(timed.as_ref().err().and_then(error_code), Some(50), "{timed:?}");

    let mut left: Vec<String> = std::fs::read_dir(scratch.path())
        .expect("scratch")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert!(left.is_empty(), "{left:?}");
    // The server goes on: a backup without a stop completes.
    create_backup(&server, &scratch.path().join("after")).await;
}

/// The scheduled backups' directory names in `path`, sorted (oldest first).
fn scheduled_names(path: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(path)
        .map(|entries| entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn scheduled_backups_are_verified_counted_and_pruned_by_retention() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let backups = scratch.path().join("backups");
    // What a backup cut off by a crash leaves: removed when the scheduler starts.
    let interrupted = backups.join("backup-20200101T000000.000Z.partial");
    std::fs::create_dir_all(interrupted.join("app")).expect("interrupted backup");
    let server =
        TestServer::start(&["--backupSchedule", "1s", "--backupRetention", "2", "--backupPath", path(&backups)]);
    let client = server.client("").await;
    client.database("app").collection::<Document>("c").insert_one(doc! { "_id": 1 }).await.expect("insert");

    // The first backup runs at once (no earlier one), the next a second after each.
    let completed = |n: f64| server.metric("monarch_backups_total{result=\"ok\"}").is_some_and(|c| c >= n);
    assert!(common::eventually(Duration::from_secs(30), || completed(1.0)), "no first backup");
    let first = scheduled_names(&backups).into_iter().next().expect("the first backup");
    assert!(!interrupted.exists(), "the interrupted backup is still there");
    assert!(common::eventually(Duration::from_secs(30), || completed(4.0)), "fewer than 4 backups");
    // Retention runs after each backup: two are kept, the first is gone.
    assert!(
        common::eventually(Duration::from_secs(10), || scheduled_names(&backups).len() == 2),
        "{:?}",
        scheduled_names(&backups)
    );
    let kept = scheduled_names(&backups);
    assert!(!kept.contains(&first), "{first} outlived the retention: {kept:?}");
    assert!(kept.iter().all(|name| name.as_str() > first.as_str()), "{kept:?} after {first}");
    for name in &kept {
        let output = tool(&["backup", "verify", path(&backups.join(name))]);
        // A backup being removed by retention right now is the only allowed miss.
        if backups.join(name).exists() {
            assert_eq!(output.status.code(), Some(0), "{name}: {}", stderr(&output));
        }
    }
    assert_eq!(server.metric("monarch_backup_scheduled"), Some(1.0));
    assert_eq!(server.metric("monarch_backups_total{result=\"failed\"}"), Some(0.0));
    assert!(server.metric("monarch_backup_last_size_bytes").is_some_and(|b| b > 0.0));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs_f64();
    let last = server.metric("monarch_backup_last_success_timestamp_seconds").expect("last success");
    assert!((now - 30.0..=now + 1.0).contains(&last), "last success {last}, now {now}");
}

#[test]
fn scheduled_backups_refuse_a_path_inside_the_data_directory() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let dbpath = scratch.path().join("db");
    let output = common::run_to_exit(&[
        "--dbpath",
        path(&dbpath),
        "--backupSchedule",
        "1h",
        "--backupPath",
        path(&dbpath.join("backups")),
    ]);
    let said = format!("{}{}", stdout(&output), stderr(&output));
    // mongod's exit code for bad options.
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(said.contains("backup.path") && said.contains("outside the data directory"), "{said}");
}

/// Writes a base64 key file of 32 `byte`s.
fn key_file(dir: &Path, name: &str, byte: u8) -> PathBuf {
    use base64::Engine as _;
    let file = dir.join(name);
    std::fs::write(&file, format!("{}\n", base64::engine::general_purpose::STANDARD.encode([byte; 32])))
        .expect("key file");
    file
}

#[tokio::test]
async fn encrypted_backups_restore_only_with_their_key() {
    let secrets = tempfile::tempdir().expect("temp dir");
    let key = key_file(secrets.path(), "key", 1);
    let wrong = key_file(secrets.path(), "wrong", 2);
    let server = TestServer::start(&["--backupEncryptionKeyFile", path(&key)]);
    let client = server.client("").await;
    let marker = "plaintext-marker-that-must-not-be-in-the-backup";
    let docs: Vec<Document> = (0..3000).map(|i| doc! { "_id": i, "secret": marker, "pad": "y".repeat(500) }).collect();
    client.database("app").collection::<Document>("c").insert_many(docs).await.expect("insert");
    let scratch = tempfile::tempdir().expect("temp dir");
    let dir = scratch.path().join("backup");
    let reply = create_backup(&server, &dir).await;
    assert_eq!(reply.get_bool("encrypted").ok(), Some(true));
    let data = std::fs::read(dir.join("app/c.bson")).expect("data file");
    assert!(data.starts_with(b"MNRCAES1"));
    assert!(!data.windows(marker.len()).any(|w| w == marker.as_bytes()), "the data file holds plaintext");
    let metadata = std::fs::read(dir.join("app/c.metadata.json")).expect("metadata file");
    assert!(!metadata.windows(5).any(|w| w == b"_id_\""), "the metadata file holds plaintext");
    let manifest = std::fs::read_to_string(dir.join("manifest.json")).expect("manifest");
    assert!(
        !manifest.contains(&std::fs::read_to_string(&key).expect("key").trim().to_owned()),
        "the key is in the manifest"
    );

    let without = tool(&["backup", "verify", path(&dir)]);
    assert_eq!(without.status.code(), Some(2), "{}", stderr(&without));
    assert!(
        stderr(&without).contains("the backup is encrypted: give its key with --encryptionKeyFile"),
        "{}",
        stderr(&without)
    );
    let mistaken = tool(&["backup", "verify", path(&dir), "--encryptionKeyFile", path(&wrong)]);
    assert_eq!(mistaken.status.code(), Some(2), "{}", stderr(&mistaken));
    assert!(stderr(&mistaken).contains("is not the key this backup was encrypted with"), "{}", stderr(&mistaken));
    let verified = tool(&["backup", "verify", path(&dir), "--encryptionKeyFile", path(&key)]);
    assert_eq!(verified.status.code(), Some(0), "{}", stderr(&verified));
    assert!(stdout(&verified).contains("3000 documents"), "{}", stdout(&verified));

    let restore_target = scratch.path().join("restored");
    let refused = tool(&[
        "restore",
        "--from",
        path(&dir),
        "--dbpath",
        path(&restore_target),
        "--encryptionKeyFile",
        path(&wrong),
    ]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(!restore_target.exists());
    let restored = restore_and_start(&dir, &["--encryptionKeyFile", path(&key)]);
    let back = restored.client("").await.database("app").collection::<Document>("c");
    assert_eq!(back.count_documents(doc! { "secret": marker }).await.expect("count"), 3000);

    // A changed byte of ciphertext is named by its chunk, and refused.
    flip(&dir.join("app/c.bson"), 100);
    let damaged = tool(&["backup", "verify", path(&dir), "--encryptionKeyFile", path(&key)]);
    assert_eq!(damaged.status.code(), Some(1), "{}", stderr(&damaged));
    assert!(
        stderr(&damaged)
            .contains("app/c.bson: at byte offset 15: the encrypted chunk at bytes 15..1048607 does not decrypt"),
        "{}",
        stderr(&damaged)
    );
}

/// `monarchd export` or `import` of `app.<collection>` on `uri`, with `extra` arguments.
fn transfer(verb: &str, uri: &str, collection: &str, extra: &[&str]) -> Output {
    let mut args = vec![verb, "--uri", uri, "-d", "app", "-c", collection];
    args.extend_from_slice(extra);
    tool(&args)
}

#[tokio::test]
async fn export_then_import_round_trips_every_bson_type_through_canonical_extended_json() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("app");
    let original = every_type();
    db.collection::<Document>("types").insert_one(original.clone()).await.expect("insert");
    db.collection::<Document>("types").insert_one(doc! { "_id": 2, "plain": 1 }).await.expect("insert");
    let scratch = tempfile::tempdir().expect("temp dir");
    let file = scratch.path().join("types.json");
    let uri = server.uri("");
    let uri = uri.split('?').next().unwrap_or(&uri).trim_end_matches('/');
    let exported = tool(&[
        "export",
        "--uri",
        uri,
        "--db",
        "app",
        "--collection",
        "types",
        "--jsonFormat",
        "canonical",
        "--out",
        path(&file),
        "--sort",
        "{\"_id\": -1}",
    ]);
    assert_eq!(exported.status.code(), Some(0), "{}", stderr(&exported));
    let text = std::fs::read_to_string(&file).expect("export file");
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.starts_with("{\"_id\":{\"$oid\":\"5f43a1b2c3d4e5f6a7b8c9d0\"},\"double\":{\"$numberDouble\":\"1.5\"}"),
        "{text}"
    );

    let imported = tool(&["import", "--uri", uri, "--db", "copy", "--collection", "types", "--file", path(&file)]);
    assert_eq!(imported.status.code(), Some(0), "{}", stderr(&imported));
    assert!(stderr(&imported).contains("2 document(s) imported successfully. 0 document(s) failed to import."));
    let back = documents(&client, "copy", "types").await;
    let original_printed = Bson::Document(original).to_string();
    let back_printed: Vec<String> = back.into_iter().map(|d| Bson::Document(d).to_string()).collect();
    assert!(back_printed.contains(&original_printed), "{back_printed:?}\nwanted {original_printed}");

    // Relaxed (the default), as an array, with a query.
    let relaxed = transfer("export", uri, "types", &["--query", "{\"_id\": 2}", "--jsonArray"]);
    assert_eq!(stdout(&relaxed), "[{\"_id\":2,\"plain\":1}]\n", "{}", stderr(&relaxed));
    // The same documents again: refused one by one as duplicates, and counted.
    let again = tool(&["import", "--uri", uri, "--db", "copy", "--collection", "types", "--file", path(&file)]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("0 document(s) imported successfully. 2 document(s) failed to import."),
        "{}",
        stderr(&again)
    );
    let stopped = tool(&[
        "import",
        "--uri",
        uri,
        "--db",
        "copy",
        "--collection",
        "types",
        "--file",
        path(&file),
        "--stopOnError",
    ]);
    assert_eq!(stopped.status.code(), Some(3), "{}", stderr(&stopped));
    assert!(stderr(&stopped).contains("DuplicateKey (11000)"), "{}", stderr(&stopped));
}

#[tokio::test]
async fn import_reads_csv_and_tsv_upserts_and_merges_and_names_bad_input() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let uri = server.uri("");
    let uri = uri.split('?').next().unwrap_or(&uri).trim_end_matches('/');
    let scratch = tempfile::tempdir().expect("temp dir");
    let csv = scratch.path().join("people.csv");
    std::fs::write(&csv, "_id,name,address.city,age,score\n1,\"Lovelace, Ada\",London,36,1.5\n2,Grace,,85,\n")
        .expect("csv");
    let imported =
        transfer("import", uri, "people", &["--type", "csv", "--headerline", "--ignoreBlanks", "--file", path(&csv)]);
    assert_eq!(imported.status.code(), Some(0), "{}", stderr(&imported));
    let people: Vec<String> =
        documents(&client, "app", "people").await.into_iter().map(|d| Bson::Document(d).to_string()).collect();
    assert_eq!(
        people,
        [
            "{ \"_id\": 1, \"name\": \"Lovelace, Ada\", \"address\": { \"city\": \"London\" }, \"age\": 36, \"score\": 1.5 }",
            "{ \"_id\": 2, \"name\": \"Grace\", \"age\": 85 }",
        ]
    );
    let exported = transfer("export", uri, "people", &["--type", "csv", "--fields", "_id,name,address.city"]);
    assert_eq!(
        stdout(&exported),
        "_id,name,address.city\n1,\"Lovelace, Ada\",London\n2,Grace,\n",
        "{}",
        stderr(&exported)
    );
    let no_fields = transfer("export", uri, "people", &["--type", "csv"]);
    assert_eq!(no_fields.status.code(), Some(2));

    // upsert replaces by name; merge sets fields and keeps the others.
    let tsv = scratch.path().join("people.tsv");
    std::fs::write(&tsv, "Grace\t86\nAlan\t41\n").expect("tsv");
    let upserted = transfer(
        "import",
        uri,
        "people",
        &["--type", "tsv", "--fields", "name,age", "--mode", "upsert", "--upsertFields", "name", "--file", path(&tsv)],
    );
    assert_eq!(upserted.status.code(), Some(0), "{}", stderr(&upserted));
    let people = client.database("app").collection::<Document>("people");
    let grace = people.find_one(doc! { "name": "Grace" }).await.expect("find").expect("Grace");
    assert_eq!((grace.get_i32("_id").ok(), grace.get_i32("age").ok()), (Some(2), Some(86)));
    assert_eq!(people.count_documents(doc! { "name": "Alan" }).await.expect("count"), 1);
    let json = scratch.path().join("merge.json");
    std::fs::write(&json, "{\"_id\": 1, \"age\": 37}\n{\"_id\": 9, \"name\": \"New\"}\n").expect("json");
    let merged = transfer("import", uri, "people", &["--mode", "merge", "--file", path(&json)]);
    assert_eq!(merged.status.code(), Some(0), "{}", stderr(&merged));
    let ada = people.find_one(doc! { "_id": 1 }).await.expect("find").expect("Ada");
    assert_eq!((ada.get_str("name").ok(), ada.get_i32("age").ok()), (Some("Lovelace, Ada"), Some(37)));
    assert_eq!(people.count_documents(doc! { "_id": 9, "name": "New" }).await.expect("count"), 1);

    // Bad input is named by file and line; the batch it is in (here, all) is not written.
    let broken = scratch.path().join("broken.csv");
    std::fs::write(&broken, "_id,name\n10,ok\n11,\"unterminated\n").expect("csv");
    let refused = transfer("import", uri, "broken", &["--type", "csv", "--headerline", "--file", path(&broken)]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(stderr(&refused).contains(&format!("{}: at byte offset", path(&broken))), "{}", stderr(&refused));
    let bad_json = scratch.path().join("bad.json");
    std::fs::write(&bad_json, "{\"_id\": 1}\n{\"_id\": 2,\n").expect("json");
    let refused = transfer("import", uri, "broken", &["--file", path(&bad_json)]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("line 3, column 0: EOF while parsing a value\n"), "{}", stderr(&refused));
    let wrong_type = scratch.path().join("wrong.json");
    std::fs::write(&wrong_type, "{\"_id\": {\"$numberInt\": \"x\"}}\n").expect("json");
    let refused = transfer("import", uri, "broken", &["--file", path(&wrong_type)]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("not Extended JSON"), "{}", stderr(&refused));
    assert_eq!(
        client.database("app").collection::<Document>("broken").count_documents(doc! {}).await.expect("count"),
        0
    );
}

#[tokio::test]
async fn command_line_tools_log_in_with_scram_from_the_uri() {
    let server = TestServer::start(&["--auth"]);
    server.admin(doc! { "createUser": "root", "pwd": "pw-root", "roles": ["root"] }).await.expect("first user");
    let root_uri = server.uri("authSource=admin").replacen("mongodb://", "mongodb://root:pw-root@", 1);
    let root = Client::with_uri_str(root_uri).await.expect("client");
    run(&root, "admin", doc! { "createUser": "backer", "pwd": "p@ss:w/rd", "roles": ["backup"] }).await;
    run(
        &root,
        "app",
        doc! { "createUser": "porter", "pwd": "pw", "roles": ["readWrite"], "mechanisms": ["SCRAM-SHA-1"] },
    )
    .await;
    root.database("app").collection::<Document>("c").insert_one(doc! { "_id": 1 }).await.expect("insert");
    let port = server.port;
    let scratch = tempfile::tempdir().expect("temp dir");
    let dir = scratch.path().join("backup");

    // A password with URI delimiters, percent-encoded; SCRAM-SHA-256 by negotiation.
    let backer = format!("mongodb://backer:p%40ss%3Aw%2Frd@127.0.0.1:{port}/?authSource=admin");
    let backed_up = tool(&["backup", "--uri", &backer, "--out", path(&dir)]);
    assert_eq!(backed_up.status.code(), Some(0), "{}", stderr(&backed_up));
    assert!(dir.join("app/c.bson").exists());
    let wrong = format!("mongodb://backer:guess@127.0.0.1:{port}/?authSource=admin");
    let refused = tool(&["backup", "--uri", &wrong, "--out", path(&scratch.path().join("b2"))]);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("AuthenticationFailed (18)"), "{}", stderr(&refused));
    let anonymous = tool(&["export", "--uri", &format!("mongodb://127.0.0.1:{port}"), "-d", "app", "-c", "c"]);
    assert_eq!(anonymous.status.code(), Some(3), "{}", stderr(&anonymous));
    assert!(stderr(&anonymous).contains("Unauthorized (13)"), "{}", stderr(&anonymous));
    // A user of `app` (the URI's database is the auth source), SCRAM-SHA-1 only.
    let porter = format!("mongodb://porter:pw@127.0.0.1:{port}/app");
    let exported = tool(&["export", "--uri", &porter, "-d", "app", "-c", "c"]);
    assert_eq!(stdout(&exported), "{\"_id\":1}\n", "{}", stderr(&exported));
    let forced = format!("mongodb://porter:pw@127.0.0.1:{port}/app?authMechanism=SCRAM-SHA-256");
    let mismatch = tool(&["export", "--uri", &forced, "-d", "app", "-c", "c"]);
    assert_eq!(mismatch.status.code(), Some(3), "{}", stderr(&mismatch));
}
