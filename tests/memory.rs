//! The storage engine's memory budget: `--cacheSizeGB` (and mongod's spellings) sizes it,
//! `serverStatus`, `/metrics`, `getCmdLineOpts` and the startup log report it exactly, and a
//! value outside mongod's range stops the server at start.

#![expect(clippy::expect_used, reason = "a failed test step must fail the test loudly")]

mod common;

use std::time::Duration;

use common::{TestServer, eventually_async};
use mongodb::bson::{Document, doc};

/// 0.3 GiB in whole MiB, as mongod sizes its cache: 307 MiB.
const BYTES_0_3_GB: i64 = 307 * 1024 * 1024;

fn cache_of(status: &Document) -> Document {
    status.get_document("wiredTiger").and_then(|w| w.get_document("cache")).expect("wiredTiger.cache").clone()
}

fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn memory_cache_size_is_reported_exactly() {
    let server = TestServer::start(&["--cacheSizeGB", "0.3"]);
    let status = server.admin(doc! { "serverStatus": 1 }).await.expect("serverStatus");
    let cache = cache_of(&status);
    assert_eq!(cache.get_i64("maximum bytes configured").ok(), Some(BYTES_0_3_GB), "{cache}");

    let (code, metrics) = server.http_get("/metrics");
    assert_eq!(code, 200);
    assert_eq!(sample(&metrics, "monarch_storage_cache_size_bytes"), Some(BYTES_0_3_GB as f64));
    let shares = sample(&metrics, "monarch_storage_block_cache_capacity_bytes").expect("block cache share")
        + sample(&metrics, "monarch_storage_write_buffer_limit_bytes").expect("write buffer share");
    assert_eq!(shares, BYTES_0_3_GB as f64, "the shares add up to the budget");

    let opts = server.admin(doc! { "getCmdLineOpts": 1 }).await.expect("getCmdLineOpts");
    let parsed = opts.get_document("parsed").expect("parsed");
    let configured = parsed
        .get_document("storage")
        .and_then(|s| s.get_document("wiredTiger"))
        .and_then(|w| w.get_document("engineConfig"))
        .and_then(|e| e.get_f64("cacheSizeGB"));
    assert_eq!(configured.ok(), Some(0.3), "{parsed}");

    let opening = server
        .log_lines()
        .into_iter()
        .find(|line| line.contains("\"Opening the storage engine\""))
        .expect("the startup line with the cache size");
    let opening: serde_json::Value = serde_json::from_str(&opening).expect("JSON log line");
    assert_eq!(opening["attr"]["cacheSizeBytes"].as_i64(), Some(BYTES_0_3_GB), "{opening}");
    assert_eq!(opening["attr"]["source"].as_str(), Some("cacheSizeGB"), "{opening}");
}

#[tokio::test]
async fn memory_cache_usage_counts_unflushed_writes() {
    let server = TestServer::start(&["--wiredTigerCacheSizeGB", "1"]);
    let client = server.client("").await;
    let status = client.database("admin").run_command(doc! { "serverStatus": 1 }).await.expect("serverStatus");
    assert_eq!(cache_of(&status).get_i64("maximum bytes configured").ok(), Some(1 << 30));
    assert!(!server.log_lines().iter().any(|l| l.contains("has no meaning")), "mongod's flag is not ignored");

    let docs: Vec<Document> = (0..100).map(|n| doc! { "_id": n, "pad": "x".repeat(1000) }).collect();
    client.database("d").collection::<Document>("c").insert_many(docs).await.expect("insert");
    // 100 KB of documents stay in the active memtable (16 MiB and more) until a flush.
    let status = |client: mongodb::Client| async move {
        let status = client.database("admin").run_command(doc! { "serverStatus": 1 }).await.expect("serverStatus");
        cache_of(&status)
    };
    let dirty = |cache: &Document| cache.get_i64("tracked dirty bytes in the cache").expect("dirty bytes");
    assert!(
        eventually_async(Duration::from_secs(5), || {
            let client = client.clone();
            async move { dirty(&status(client).await) >= 100 * 1000 }
        })
        .await,
        "the inserted documents are counted as dirty"
    );
    let cache = status(client.clone()).await;
    let current = cache.get_i64("bytes currently in the cache").expect("current bytes");
    assert!(current >= dirty(&cache), "{cache}");
}

#[test]
fn memory_cache_size_outside_mongods_range_stops_startup() {
    // mongod's texts; out of range is a failed initialization (exit code 1), not a number is
    // a bad option (2).
    for (value, code, message) in [
        ("0.2", 1, "storage.wiredTiger.engineConfig.cacheSizeGB must be greater than or equal to 0.25"),
        ("10001", 1, "storage.wiredTiger.engineConfig.cacheSizeGB must be less than or equal to 10000"),
        ("half", 2, "invalid value for storage.wiredTiger.engineConfig.cacheSizeGB: 'half' is not a number"),
    ] {
        let output = common::run_to_exit(&["--cacheSizeGB", value]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{value}: {stderr}");
        assert!(stderr.contains(message), "{value}: {stderr}");
    }
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("monarch.toml");
    std::fs::write(&config, "[storage.wiredTiger.engineConfig]\ncacheSizeGB = 0.1\n").expect("config file");
    let output = common::run_to_exit(&["--config", config.to_str().expect("path")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("greater than or equal to 0.25"));
}
