//! Backups in S3-compatible object storage (issue 19, point 5), against a real S3 server
//! (moto's, installed from PyPI and started here): `createBackup` to an `s3://` location,
//! through a proxy that cuts every connection mid-upload, completes by resending the part in
//! flight rather than the file; `monarchd backup verify` and `monarchd restore --from` read
//! it back with keys from a shared credentials file; a changed object fails verify; scheduled
//! backups to an `s3://` path are verified, counted and pruned by retention, and what an
//! interrupted one left is removed; a replica-set member archives its oplog beside them, and
//! a point-in-time restore reads the backup and the archive from the bucket.

#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::s3::{FlakyProxy, S3Server};
use common::tools::{path, stderr, stdout};
use common::{TestServer, error_code};
use mongodb::bson::{Document, doc};

const BUCKET: &str = "backups";
/// The server's keys, from the environment (moto takes any).
const KEYS: [(&str, &str); 3] =
    [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_REGION", "us-east-1")];

/// Runs a `monarchd` tool with its keys from the shared credentials file `credentials` only.
fn tool_with_credentials_file(credentials: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_monarchd"))
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_SHARED_CREDENTIALS_FILE", credentials)
        .env("AWS_REGION", "us-east-1")
        .args(args)
        .output()
        .expect("run monarchd")
}

#[tokio::test]
async fn backups_go_to_s3_resume_after_an_outage_and_restore_from_there() {
    let s3 = S3Server::start();
    assert_eq!(s3.request("PUT", &format!("/{BUCKET}"), b""), 200);
    // Connections cut 12 MiB in: the data file's second 8 MiB part is in flight.
    let proxy = FlakyProxy::start(s3.port, 12 << 20, Duration::from_millis(1500));
    let server = TestServer::start_with_env(tempfile::tempdir().expect("temp dir"), &KEYS, &[]);
    let client = server.client("").await;
    let big = client.database("app").collection::<Document>("big");
    // About 20 MB: three parts.
    for chunk in 0..4 {
        let documents: Vec<Document> = (0..500)
            .map(|i| {
                let n = chunk * 500 + i;
                doc! { "_id": n, "email": format!("u{n}@x"), "pad": format!("{n:0>10000}") }
            })
            .collect();
        big.insert_many(documents).await.expect("insert");
    }
    client
        .database("app")
        .run_command(
            doc! { "createIndexes": "big", "indexes": [{ "key": { "email": 1 }, "name": "email_1", "unique": true }] },
        )
        .await
        .expect("createIndexes");

    let location = format!("s3://{BUCKET}/nightly/one?endpoint=http://127.0.0.1:{}", proxy.port);
    let reply = server.admin(doc! { "createBackup": 1, "backupDir": &location }).await.expect("createBackup");
    assert_eq!(reply.get_str("backupDir").ok(), Some("s3://backups/nightly/one"));
    assert_eq!(reply.get_i64("documents").ok(), Some(2000));
    assert!(proxy.cut.load(Ordering::SeqCst), "the outage did not happen");
    // Resumed, not restarted: what went upstream is the backup plus the part cut short
    // (4 MiB) and the requests' own bytes; a file sent again from its start would add 12 MiB.
    let backup_bytes = reply.get_i64("bytes").expect("bytes") as u64;
    let upstream = proxy.upstream_bytes.load(Ordering::SeqCst);
    assert!(upstream < backup_bytes + (8 << 20), "sent {upstream} bytes upstream for a backup of {backup_bytes}");

    // The prefix now holds a backup: another one there is refused.
    let again = server.admin(doc! { "createBackup": 1, "backupDir": &location }).await;
    assert_eq!(again.as_ref().err().and_then(error_code), Some(20), "{again:?}");

    // Verify and restore from the bucket itself, with keys from a shared credentials file.
    let scratch = tempfile::tempdir().expect("temp dir");
    let credentials = scratch.path().join("credentials");
    std::fs::write(
        &credentials,
        "[other]\naws_access_key_id = x\n\n[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
    )
    .expect("credentials");
    let direct = format!("s3://{BUCKET}/nightly/one?endpoint={}", s3.endpoint());
    let verified = tool_with_credentials_file(&credentials, &["backup", "verify", &direct]);
    assert_eq!(verified.status.code(), Some(0), "{}", stderr(&verified));
    assert!(stdout(&verified).contains("(1 collections, 2000 documents"), "{}", stdout(&verified));

    let target = tempfile::tempdir().expect("temp dir");
    let dbpath = target.path().join("db");
    let restored = tool_with_credentials_file(&credentials, &["restore", "--from", &direct, "--dbpath", path(&dbpath)]);
    assert_eq!(restored.status.code(), Some(0), "{}", stderr(&restored));
    let leftovers: Vec<String> = std::fs::read_dir(target.path())
        .expect("read_dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    assert_eq!(leftovers, ["db"], "the downloaded copy is removed");
    let copy = TestServer::start_in(target, &[]);
    let copy_client = copy.client("").await;
    let copied = copy_client.database("app").collection::<Document>("big");
    assert_eq!(copied.count_documents(doc! {}).await.expect("count"), 2000);
    let one = copied
        .find_one(doc! { "email": "u1999@x" })
        .hint(mongodb::options::Hint::Keys(doc! { "email": 1 }))
        .await
        .expect("find");
    assert_eq!(one.and_then(|d| d.get_i32("_id").ok()), Some(1999));

    // A changed object in the bucket is found, by file and offset.
    let key = "nightly/one/app/big.bson";
    let mut bytes = s3.get(BUCKET, key);
    assert!(bytes.len() > 16 << 20, "{}", bytes.len());
    if let Some(byte) = bytes.get_mut(5_000_000) {
        *byte ^= 0x01;
    }
    assert_eq!(s3.request("PUT", &format!("/{BUCKET}/{key}"), &bytes), 200);
    let damaged = tool_with_credentials_file(&credentials, &["backup", "verify", &direct]);
    assert_eq!(damaged.status.code(), Some(1), "{}", stderr(&damaged));
    assert!(stderr(&damaged).contains("app/big.bson: at byte offset 4194304"), "{}", stderr(&damaged));
}

/// The scheduled backups (prefixes holding a manifest) under `prefix`.
fn complete_backups(s3: &S3Server, prefix: &str) -> Vec<String> {
    s3.keys(BUCKET, prefix)
        .iter()
        .filter_map(|key| key.strip_prefix(prefix)?.strip_suffix("/manifest.json").map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn scheduled_backups_to_s3_are_verified_and_pruned_by_retention() {
    let s3 = S3Server::start();
    assert_eq!(s3.request("PUT", &format!("/{BUCKET}"), b""), 200);
    // What a backup cut off by a crash leaves (objects, no manifest): removed at start.
    let interrupted = "sched/backup-20200101T000000.000Z/app/c.bson";
    assert_eq!(s3.request("PUT", &format!("/{BUCKET}/{interrupted}"), b"x"), 200);
    let path = format!("s3://{BUCKET}/sched?endpoint={}", s3.endpoint());
    let server = TestServer::start_with_env(
        tempfile::tempdir().expect("temp dir"),
        &KEYS,
        &["--backupSchedule", "1s", "--backupRetention", "2", "--backupPath", &path],
    );
    let client = server.client("").await;
    client.database("app").collection::<Document>("c").insert_one(doc! { "_id": 1 }).await.expect("insert");
    let completed = |n: f64| server.metric("monarch_backups_total{result=\"ok\"}").is_some_and(|c| c >= n);
    assert!(common::eventually(Duration::from_secs(60), || completed(1.0)), "no first backup");
    let first = complete_backups(&s3, "sched/").into_iter().next().expect("the first backup");
    assert!(!s3.keys(BUCKET, "sched/").iter().any(|k| k == interrupted), "the interrupted backup is still there");
    assert!(common::eventually(Duration::from_secs(60), || completed(4.0)), "fewer than 4 backups");
    assert!(
        common::eventually(Duration::from_secs(20), || complete_backups(&s3, "sched/").len() == 2),
        "{:?}",
        complete_backups(&s3, "sched/")
    );
    let kept = complete_backups(&s3, "sched/");
    assert!(kept.iter().all(|name| name.as_str() > first.as_str()), "{kept:?} after {first}");
    assert_eq!(server.metric("monarch_backups_total{result=\"failed\"}"), Some(0.0));
}

#[tokio::test]
async fn encrypted_backups_in_s3_verify_only_with_their_key() {
    use base64::Engine as _;
    let s3 = S3Server::start();
    assert_eq!(s3.request("PUT", &format!("/{BUCKET}"), b""), 200);
    let scratch = tempfile::tempdir().expect("temp dir");
    let key = scratch.path().join("key");
    std::fs::write(&key, base64::engine::general_purpose::STANDARD.encode([7u8; 32])).expect("key");
    let other = scratch.path().join("other");
    std::fs::write(&other, base64::engine::general_purpose::STANDARD.encode([8u8; 32])).expect("key");
    let server = TestServer::start_with_env(
        tempfile::tempdir().expect("temp dir"),
        &KEYS,
        &["--backupEncryptionKeyFile", path(&key)],
    );
    let client = server.client("").await;
    client
        .database("app")
        .collection::<Document>("c")
        .insert_one(doc! { "_id": 1, "secret": "plain text" })
        .await
        .expect("insert");
    let location = format!("s3://{BUCKET}/enc?endpoint={}", s3.endpoint());
    let reply = server.admin(doc! { "createBackup": 1, "backupDir": &location }).await.expect("createBackup");
    assert_eq!(reply.get_bool("encrypted").ok(), Some(true));
    // What the bucket holds is not the documents.
    let keys = s3.keys(BUCKET, "enc/");
    let stored = s3.get(BUCKET, "enc/app/c.bson");
    assert!(keys.iter().any(|k| k == "enc/app/c.bson"), "{keys:?}");
    assert!(stored.starts_with(b"MNRCAES1"), "{stored:?}");
    assert!(!stored.windows(10).any(|w| w == b"plain text"));

    let credentials = scratch.path().join("credentials");
    std::fs::write(&credentials, "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
        .expect("credentials");
    let verify = |key: Option<&Path>| {
        let mut args = vec!["backup", "verify", location.as_str()];
        if let Some(key) = key {
            args.extend(["--encryptionKeyFile", path(key)]);
        }
        tool_with_credentials_file(&credentials, &args)
    };
    let verified = verify(Some(&key));
    assert_eq!(verified.status.code(), Some(0), "{}", stderr(&verified));
    let wrong = verify(Some(&other));
    assert_eq!(wrong.status.code(), Some(2), "{}", stderr(&wrong));
    assert!(stderr(&wrong).contains("is not the key this backup was encrypted with"), "{}", stderr(&wrong));
    let keyless = verify(None);
    assert_eq!(keyless.status.code(), Some(2), "{}", stderr(&keyless));
    assert!(
        stderr(&keyless).contains("the backup is encrypted: give its key with --encryptionKeyFile"),
        "{}",
        stderr(&keyless)
    );
}

/// The newest time archived under `prefix` (from the chunks' manifests' keys).
fn archived_through(s3: &S3Server, prefix: &str) -> Option<(u32, u32)> {
    s3.keys(BUCKET, prefix)
        .iter()
        .filter_map(|key| {
            let name = key.strip_prefix(prefix)?.strip_suffix("/manifest.json")?;
            let (t, i) = name.strip_prefix("oplog-")?.split_once('-')?;
            Some((t.parse().ok()?, i.parse().ok()?))
        })
        .max()
}

#[tokio::test]
async fn oplog_archived_in_s3_restores_to_a_point_in_time() {
    let s3 = S3Server::start();
    assert_eq!(s3.request("PUT", &format!("/{BUCKET}"), b""), 200);
    let backup_path = format!("s3://{BUCKET}/pitr?endpoint={}", s3.endpoint());
    let server = TestServer::member_with_env(
        &KEYS,
        &["--backupSchedule", "1d", "--backupPath", &backup_path, "--backupOplogInterval", "1s"],
    );
    let client = server.client("").await;
    let app = client.database("app");
    let c = app.collection::<Document>("c");
    c.insert_many((0..10).map(|i| doc! { "_id": i, "n": i })).await.expect("insert");
    let backup = format!("s3://{BUCKET}/pitr/manual?endpoint={}", s3.endpoint());
    server.admin(doc! { "createBackup": 1, "backupDir": &backup }).await.expect("createBackup");
    c.update_many(doc! {}, doc! { "$inc": { "n": 100 } }).await.expect("update");
    let reply = app.run_command(doc! { "insert": "c", "documents": [{ "_id": 10 }] }).await.expect("insert");
    let point = reply.get_timestamp("operationTime").expect("operationTime");
    c.delete_many(doc! {}).await.expect("the accident");
    let reply = app.run_command(doc! { "insert": "c", "documents": [{ "_id": 11 }] }).await.expect("insert");
    let last = reply.get_timestamp("operationTime").expect("operationTime");
    assert!(
        common::eventually(Duration::from_secs(30), || archived_through(&s3, "pitr/oplog/")
            >= Some((last.time, last.increment))),
        "{:?}",
        s3.keys(BUCKET, "pitr/oplog/")
    );

    // The archive is found beside the backup (`oplog` in the same prefix).
    let scratch = tempfile::tempdir().expect("temp dir");
    let credentials = scratch.path().join("credentials");
    std::fs::write(&credentials, "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
        .expect("credentials");
    let dbpath = scratch.path().join("db");
    let limit = format!("{}:{}", point.time, point.increment + 1);
    let restored = tool_with_credentials_file(
        &credentials,
        &["restore", "--from", &backup, "--dbpath", path(&dbpath), "--oplogReplay", "--oplogLimit", &limit],
    );
    assert_eq!(restored.status.code(), Some(0), "{}", stderr(&restored));
    assert!(stdout(&restored).contains("oplog replayed: 11 entries"), "{}", stdout(&restored));
    let server = TestServer::start_in(scratch, &[]);
    let client = server.client("").await;
    let found = common::tools::documents(&client, "app", "c").await;
    let expected: Vec<Document> =
        (0..10).map(|i| doc! { "_id": i, "n": i + 100 }).chain(std::iter::once(doc! { "_id": 10 })).collect();
    assert_eq!(found, expected);
}
