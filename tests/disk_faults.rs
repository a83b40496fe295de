//! Disk faults: a data directory on a small file system that fills up, a failed journal sync,
//! and damaged data files found at start. The file-system tests mount a tmpfs of their own
//! (the tests run as root, as CI does).

#![expect(clippy::expect_used, reason = "a failed test step must fail the test loudly")]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{TestServer, damage, error_code, eventually_async, files_under};
use mongodb::bson::{Document, doc};
use mongodb::options::WriteConcern;

/// mongod's 14031 OutOfDiskSpace.
const OUT_OF_DISK_SPACE: i32 = 14031;

/// A tmpfs of a given size mounted on a fresh temporary directory, unmounted when dropped
/// (after the server on it: declare it before the server).
struct SmallDisk {
    mount_point: PathBuf,
}

impl SmallDisk {
    /// Mounts a `size_mb` tmpfs; returns it and the directory to start a server in.
    fn mount(size_mb: u64) -> (Self, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let status = as_root("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mb}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a tmpfs needs root, or sudo without a password (as on CI runners)");
        // Writable by the server whoever runs it (under sudo the mount belongs to root).
        let _ = as_root("chmod").arg("1777").arg(dir.path()).status();
        (Self { mount_point: dir.path().to_path_buf() }, dir)
    }

    /// Bytes free for an unprivileged writer.
    fn available(&self) -> u64 {
        let output = Command::new("df").args(["--output=avail", "-B1"]).arg(&self.mount_point).output().expect("df");
        String::from_utf8_lossy(&output.stdout).lines().nth(1).and_then(|l| l.trim().parse().ok()).expect("df figure")
    }

    /// Writes a file of `bytes` zeros beside the data directory.
    fn fill(&self, bytes: u64) -> PathBuf {
        let path = self.mount_point.join("filler");
        let file = std::fs::File::create(&path).expect("filler");
        file.set_len(0).expect("truncate");
        let mut file = std::io::BufWriter::new(file);
        let mut left = bytes;
        while left > 0 {
            let n = left.min(1 << 20);
            std::io::Write::write_all(&mut file, &vec![0u8; n as usize]).expect("fill");
            left -= n;
        }
        std::io::Write::flush(&mut file).expect("flush filler");
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = as_root("umount").arg("-l").arg(&self.mount_point).status();
    }
}

/// `program` run as root: directly when the tests are root, else through `sudo -n`.
fn as_root(program: &str) -> Command {
    let root = Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.starts_with(b"0\n"));
    if root {
        Command::new(program)
    } else {
        let mut sudo = Command::new("sudo");
        sudo.args(["-n", program]);
        sudo
    }
}

fn journaled() -> WriteConcern {
    WriteConcern::builder().journal(true).build()
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).expect("JSON body")
}

#[tokio::test]
async fn disk_full_refuses_writes_keeps_reads_and_recovers_without_a_restart() {
    let (disk, dir) = SmallDisk::mount(64);
    let mut server = TestServer::start_in(dir, &["--setParameter", "monarchMinAvailableDiskSpaceMB=8"]);
    let client = server.client("").await;
    let coll = client.database("fill").collection::<Document>("docs");
    coll.insert_one(doc! { "_id": 0 }).write_concern(journaled()).await.expect("first insert");
    // Leave about 24 MB: the server reaches its 8 MB reserve after some 16 MB of writes.
    let filler = disk.fill(disk.available().saturating_sub(24 << 20));
    let payload = "x".repeat(100_000);
    let mut acknowledged = 1;
    let refusal = loop {
        let insert =
            coll.insert_one(doc! { "_id": acknowledged, "payload": &payload }).write_concern(journaled()).await;
        match insert {
            Ok(_) => acknowledged += 1,
            Err(error) => break error,
        }
        assert!(acknowledged < 1_000, "64 MB cannot hold 1,000 documents of 100 kB");
    };
    assert_eq!(error_code(&refusal), Some(OUT_OF_DISK_SPACE), "{refusal:?}");
    assert!(refusal.to_string().contains("No space left on device"), "{refusal}");
    assert!(acknowledged > 10, "only {acknowledged} writes before the disk filled");

    // Reads go on, and every acknowledged write is there.
    assert_eq!(coll.count_documents(doc! {}).await.expect("count"), acknowledged as u64);
    let last = coll.find_one(doc! { "_id": acknowledged - 1 }).await.expect("read").expect("the last write");
    assert_eq!(last.get_str("payload").ok().map(str::len), Some(100_000));
    // Other writes are refused the same way, not only large ones.
    let small = coll.update_one(doc! { "_id": 0 }, doc! { "$set": { "x": 1 } }).await.expect_err("an update");
    assert_eq!(error_code(&small), Some(OUT_OF_DISK_SPACE), "{small:?}");

    // One state everywhere: /readyz, /health, the metrics and serverStatus.
    let (status, body) = server.http_get("/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(json(&body)["reason"].as_str().is_some_and(|r| r.contains("No space left on device")), "{body}");
    let health = json(&server.http_get("/health").1);
    assert_eq!(health["storage"]["writable"], serde_json::Value::Bool(false), "{health}");
    assert!(health["storage"]["reason"].as_str().is_some_and(|r| r.contains("No space left on device")), "{health}");
    assert!(server.http_get("/metrics").1.lines().any(|l| l == "monarch_storage_writable 0"));
    let status = server.admin(doc! { "serverStatus": 1 }).await.expect("serverStatus");
    assert_eq!(status.get_document("storageEngine").and_then(|e| e.get_bool("writable")).ok(), Some(false));
    // The cause is logged once, at error level, however many writes are refused.
    let logged = server.log_lines().iter().filter(|l| l.contains("\"id\":7000411")).count();
    assert_eq!(logged, 1, "{:?}", server.log_lines().iter().rev().take(5).collect::<Vec<_>>());

    // Freed space brings writes back, without a restart.
    std::fs::remove_file(&filler).expect("remove the filler");
    let resumed = eventually_async(Duration::from_secs(10), || async {
        coll.insert_one(doc! { "_id": -1 }).write_concern(journaled()).await.is_ok()
    })
    .await;
    assert!(resumed, "writes did not resume once space was freed");
    assert_eq!(server.http_get("/readyz").0, 200);
    assert!(server.wait_for_log("\"id\":7000412", Duration::from_secs(5)), "the recovery is logged");

    // And nothing acknowledged was lost across a restart.
    drop(client);
    server = server.restart(&["--setParameter", "monarchMinAvailableDiskSpaceMB=8"]);
    let coll = server.client("").await.database("fill").collection::<Document>("docs");
    assert_eq!(coll.count_documents(doc! {}).await.expect("count after restart"), acknowledged as u64 + 1);
    drop(server);
    drop(disk);
}

/// Without a reserve the engine itself meets the full disk: fjall stops after a failed journal
/// write, so writes stay refused until a restart, and the restart keeps every `j: true` write.
#[tokio::test]
async fn disk_full_without_a_reserve_stops_writes_until_a_restart_and_loses_nothing() {
    let (disk, dir) = SmallDisk::mount(64);
    let mut server = TestServer::start_in(dir, &["--setParameter", "monarchMinAvailableDiskSpaceMB=0"]);
    let client = server.client("").await;
    let coll = client.database("fill").collection::<Document>("docs");
    coll.insert_one(doc! { "_id": 0 }).write_concern(journaled()).await.expect("first insert");
    let filler = disk.fill(disk.available().saturating_sub(16 << 20));
    let payload = "x".repeat(100_000);
    let mut acknowledged = 1;
    let refusal = loop {
        match coll.insert_one(doc! { "_id": acknowledged, "payload": &payload }).write_concern(journaled()).await {
            Ok(_) => acknowledged += 1,
            Err(error) => break error,
        }
        assert!(acknowledged < 1_000, "64 MB cannot hold 1,000 documents of 100 kB");
    };
    // The first refusal names the cause: the write's own error, or the engine's background
    // flush's, which stopped the engine first (logged through the engine's log bridge).
    assert!(refusal.to_string().contains("No space left on device"), "{refusal}");
    let logged =
        || server.log_lines().iter().any(|l| l.contains("\"s\":\"E\"") && l.contains("No space left on device"));
    assert!(common::eventually(Duration::from_secs(5), logged), "the cause is logged at error level");
    std::fs::remove_file(&filler).expect("remove the filler");
    let again = coll.insert_one(doc! { "_id": -1 }).write_concern(journaled()).await.expect_err("still refused");
    assert_eq!(error_code(&again), Some(1), "{again:?}");
    let message = again.to_string();
    assert!(message.contains("writes are disabled after") && message.contains("No space left on device"), "{message}");
    let health = json(&server.http_get("/health").1);
    assert!(health["storage"]["reason"].as_str().is_some_and(|r| r.contains("No space left on device")), "{health}");
    // The refused write may be visible: it was applied, and then its journal write failed.
    let visible = coll.count_documents(doc! {}).await.expect("reads go on");
    assert!(visible == acknowledged as u64 || visible == acknowledged as u64 + 1, "{visible} of {acknowledged}");
    drop(client);
    server = server.restart(&["--setParameter", "monarchMinAvailableDiskSpaceMB=0"]);
    let coll = server.client("").await.database("fill").collection::<Document>("docs");
    let ids: Vec<i32> = coll.distinct("_id", doc! {}).await.expect("ids").iter().filter_map(|v| v.as_i32()).collect();
    // Every acknowledged write; at most the refused one besides (if its bytes reached the disk).
    assert_eq!(ids[..acknowledged as usize], (0..acknowledged).collect::<Vec<_>>(), "every acknowledged write");
    assert!(ids.len() <= acknowledged as usize + 1, "{} ids for {acknowledged} writes", ids.len());
    coll.insert_one(doc! { "_id": -1 }).write_concern(journaled()).await.expect("writes after the restart");
    drop(server);
    drop(disk);
}

#[tokio::test]
async fn disk_full_reserve_is_a_runtime_parameter() {
    let server = TestServer::start(&[]);
    let get = server.admin(doc! { "getParameter": 1, "monarchMinAvailableDiskSpaceMB": 1 }).await.expect("get");
    assert_eq!(get.get_i64("monarchMinAvailableDiskSpaceMB").ok(), Some(100));
    // No disk has an exbibyte free: every write is refused, reads are not.
    let client = server.client("").await;
    let coll = client.database("d").collection::<Document>("c");
    coll.insert_one(doc! { "_id": 1 }).await.expect("insert");
    server.admin(doc! { "setParameter": 1, "monarchMinAvailableDiskSpaceMB": 1_i64 << 40 }).await.expect("set");
    let refused = coll.insert_one(doc! { "_id": 2 }).await.expect_err("below the reserve");
    assert_eq!(error_code(&refused), Some(OUT_OF_DISK_SPACE));
    let refused = client.database("d").create_collection("other").await.expect_err("a catalog write");
    assert_eq!(error_code(&refused), Some(OUT_OF_DISK_SPACE));
    assert_eq!(coll.count_documents(doc! {}).await.expect("reads go on"), 1);
    server.admin(doc! { "setParameter": 1, "monarchMinAvailableDiskSpaceMB": 0 }).await.expect("reset");
    coll.insert_one(doc! { "_id": 2 }).await.expect("writes resume");
    let negative = server.admin(doc! { "setParameter": 1, "monarchMinAvailableDiskSpaceMB": -1 }).await;
    assert_eq!(negative.as_ref().err().and_then(error_code), Some(2), "{negative:?}");
}

#[tokio::test]
async fn disk_failed_sync_stops_every_write_and_never_acknowledges() {
    let server = TestServer::start(&["--setParameter", "enableTestCommands=1"]);
    let client = server.client("").await;
    let coll = client.database("d").collection::<Document>("c");
    coll.insert_one(doc! { "_id": 1 }).write_concern(journaled()).await.expect("before the fault");
    server.admin(doc! { "configureFailPoint": "failJournalSync", "mode": "alwaysOn" }).await.expect("fail point");
    let journaled_write = coll.insert_one(doc! { "_id": 2 }).write_concern(journaled()).await.expect_err("j: true");
    assert_eq!(error_code(&journaled_write), Some(1), "{journaled_write:?}");
    // Once the sync failed, unjournaled writes are refused too (nothing past the last good sync
    // can be trusted), and so are catalog changes; the fail point being off changes nothing.
    server.admin(doc! { "configureFailPoint": "failJournalSync", "mode": "off" }).await.expect("fail point off");
    for write in [
        coll.insert_one(doc! { "_id": 3 }).await.map(drop),
        coll.delete_one(doc! { "_id": 1 }).await.map(drop),
        client.database("d").create_collection("new").await,
    ] {
        let error = write.expect_err("writes stay refused");
        assert_eq!(error_code(&error), Some(1), "{error:?}");
        assert!(error.to_string().contains("writes are disabled after a failed journal sync"), "{error}");
    }
    assert_eq!(coll.find_one(doc! { "_id": 1 }).await.expect("reads go on"), Some(doc! { "_id": 1 }));
    assert_eq!(server.http_get("/readyz").0, 503);
}

/// Starts a server, writes `documents` documents of about 300 bytes, and stops it cleanly;
/// returns the data directory's parent.
async fn written(documents: i32, args: &[&str]) -> tempfile::TempDir {
    let mut server = TestServer::start(args);
    let coll = server.client("").await.database("d").collection::<Document>("c");
    let value = "v".repeat(300);
    for chunk in (0..documents).collect::<Vec<_>>().chunks(5_000) {
        let docs: Vec<Document> = chunk.iter().map(|&i| doc! { "_id": i, "s": &value }).collect();
        coll.insert_many(docs).await.expect("insert");
    }
    assert!(server.terminate().success(), "clean shutdown");
    std::mem::replace(&mut server.dir, tempfile::tempdir().expect("temp dir"))
}

/// Starts a server on `dir` expecting it to refuse; returns what it logged.
fn refused_start(dir: &tempfile::TempDir, args: &[&str]) -> String {
    let dbpath = dir.path().join("db");
    let mut all = vec!["--dbpath", dbpath.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    let output = common::run_to_exit(&all);
    assert!(!output.status.success(), "the server started on damaged data");
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

#[tokio::test]
async fn disk_damaged_journal_stops_the_start_naming_the_file() {
    let dir = written(5_000, &[]).await;
    let journals = files_under(&dir.path().join("db"), &|p| p.extension().is_some_and(|e| e == "jnl"));
    // The journal holding the writes: the one with the most bytes before its zeroed tail.
    let (journal, written) = journals
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path).expect("read journal");
            (path.clone(), bytes.iter().rposition(|&b| b != 0).unwrap_or(0) as u64)
        })
        .max_by_key(|(_, written)| *written)
        .expect("a journal file");
    assert!(written > 1 << 20, "1.5 MB of documents are in the journal ({written} bytes)");
    damage(&journal, written / 2, 32);
    let log = refused_start(&dir, &[]);
    let name = journal.display().to_string();
    assert!(log.contains("Server failed to start") && log.contains(&name), "{log}");
    assert!(log.contains("a batch's checksum does not match its bytes in the journal"), "{log}");
}

#[tokio::test]
async fn disk_damaged_table_stops_the_start() {
    // A 256 MB cache makes 16 MB memtables: 20 MB of documents reach table files.
    let args = ["--wiredTigerCacheSizeGB", "0.25"];
    let dir = written(70_000, &args).await;
    let tables = files_under(&dir.path().join("db"), &|p| p.parent().is_some_and(|d| d.ends_with("tables")));
    let table = tables.iter().max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)).expect("a table");
    let length = std::fs::metadata(table).expect("table size").len();
    // The end of a table holds its table of contents, read when the engine opens it.
    damage(table, length - 200, 32);
    let log = refused_start(&dir, &args);
    assert!(log.contains("Server failed to start"), "{log}");
    assert!(log.contains("corrupt data files: a table file under") && log.contains("keyspaces"), "{log}");
}
