//! The execution layer: storage work on the blocking pool and journal waits that hold no
//! thread. Many concurrent `j: true` writes all succeed and the pool's figures show in
//! `serverStatus` and `/metrics`; commands stalled in flight hold back neither `ping` nor
//! `hello` nor storage commands on other connections, even with one runtime worker.

mod common;

use std::time::Duration;

use common::{TestServer, eventually_async};
use mongodb::bson::{Document, doc};
use mongodb::options::WriteConcern;

/// How long the stalled commands wait: far longer than the checks made meanwhile need.
const STALL_MS: i32 = 5_000;

fn figure(document: &Document, name: &str) -> i64 {
    document.get_i64(name).unwrap_or_else(|e| panic!("{name}: {e} in {document}"))
}

#[tokio::test]
async fn pool_concurrent_journaled_inserts_all_succeed() {
    const WRITERS: i32 = 64;
    let server = TestServer::start(&[]);
    let client = server.client("maxPoolSize=64").await;
    let coll = client.database("app").collection::<Document>("journaled");
    let journaled = WriteConcern::builder().journal(true).build();
    let writers: Vec<_> = (0..WRITERS)
        .map(|n| {
            let (coll, journaled) = (coll.clone(), journaled.clone());
            tokio::spawn(async move { coll.insert_one(doc! { "_id": n }).write_concern(journaled).await })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer task").expect("j: true insert");
    }
    assert_eq!(coll.count_documents(doc! {}).await.expect("count"), u64::try_from(WRITERS).expect("count"));

    let status = client.database("admin").run_command(doc! { "serverStatus": 1 }).await.expect("serverStatus");
    let pool = status.get_document("monarchPool").expect("serverStatus.monarchPool");
    let workers = figure(pool, "workers");
    assert!(workers >= 4, "{pool}");
    assert!(figure(pool, "queueCapacity") >= workers, "{pool}");
    // `serverStatus` itself runs on the pool: one worker is busy with it.
    assert!(figure(pool, "busy") >= 1, "{pool}");
    // The inserts, the count and this command at least.
    assert!(figure(pool, "jobs") >= i64::from(WRITERS) + 2, "{pool}");
    for field in ["queued", "waiting", "queueFullWaits"] {
        assert!(figure(pool, field) >= 0, "{field} in {pool}");
    }
    let engine = status.get_document("storageEngine").expect("storageEngine");
    assert!(figure(engine, "journalSyncs") >= 1, "{engine}");

    let (code, metrics) = server.http_get("/metrics");
    assert_eq!(code, 200);
    for series in
        ["monarch_pool_workers ", "monarch_pool_queue_depth ", "monarch_pool_busy_workers ", "monarch_pool_jobs_total "]
    {
        assert!(metrics.lines().any(|l| l.starts_with(series)), "{series} missing from /metrics");
    }
}

#[tokio::test]
async fn pool_stalled_commands_hold_back_no_other_connection() {
    const STALLED: usize = 8;
    let dir = tempfile::tempdir().expect("temp dir");
    // One async worker: a command that blocked it would hold back every other connection.
    let server =
        TestServer::start_with_env(dir, &[("TOKIO_WORKER_THREADS", "1")], &["--setParameter", "enableTestCommands=1"]);
    let admin = server.client("appName=admin").await;
    admin.database("app").collection::<Document>("c").insert_one(doc! { "_id": 1 }).await.expect("insert");
    admin
        .database("admin")
        .run_command(doc! {
            "configureFailPoint": "failCommand",
            "mode": "alwaysOn",
            "data": { "failCommands": ["find"], "blockConnection": true, "blockTimeMS": STALL_MS, "appName": "stalled" },
        })
        .await
        .expect("configure the stall");

    let stalled = server.client("appName=stalled&maxPoolSize=16").await;
    let finds: Vec<_> = (0..STALLED)
        .map(|_| {
            let coll = stalled.database("app").collection::<Document>("c");
            tokio::spawn(async move { coll.find_one(doc! {}).await })
        })
        .collect();
    // Until every stalled find is in flight (this `serverStatus` is active too).
    let in_flight = eventually_async(Duration::from_secs(10), || {
        let admin = admin.clone();
        async move {
            let status = admin.database("admin").run_command(doc! { "serverStatus": 1 }).await.expect("serverStatus");
            let active = status.get_document("connections").and_then(|c| c.get_i64("active")).unwrap_or(0);
            active > i64::try_from(STALLED).unwrap_or(i64::MAX)
        }
    })
    .await;
    assert!(in_flight, "the stalled finds never started");

    let other = server.client("appName=other").await;
    other.database("admin").run_command(doc! { "ping": 1 }).await.expect("ping");
    let hello = other.database("admin").run_command(doc! { "hello": 1 }).await.expect("hello");
    assert_eq!(hello.get_bool("isWritablePrimary").ok(), Some(true));
    let found = other.database("app").collection::<Document>("c").find_one(doc! {}).await.expect("find");
    assert_eq!(found, Some(doc! { "_id": 1 }));
    assert!(finds.iter().all(|f| !f.is_finished()), "ping, hello and find completed while the stall was active");

    admin
        .database("admin")
        .run_command(doc! { "configureFailPoint": "failCommand", "mode": "off" })
        .await
        .expect("stall off");
    for find in finds {
        assert_eq!(find.await.expect("find task").expect("stalled find"), Some(doc! { "_id": 1 }));
    }
}
