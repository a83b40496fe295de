//! Durability and concurrency: write concerns, a crash during journaled inserts, racing
//! updates and racing inserts of the same `_id`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::TestServer;
use mongodb::bson::{Document, doc};
use mongodb::options::WriteConcern;

fn journaled() -> WriteConcern {
    WriteConcern::builder().journal(true).build()
}

#[tokio::test]
async fn durability_write_concerns() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let db = client.database("app");
    let coll = db.collection::<Document>("wc");
    coll.insert_one(doc! { "_id": 1 }).write_concern(journaled()).await.expect("j: true");
    coll.insert_one(doc! { "_id": 2 }).write_concern(WriteConcern::majority()).await.expect("majority");
    let error = db
        .run_command(doc! { "insert": "wc", "documents": [{ "_id": 3 }], "writeConcern": { "w": 2 } })
        .await
        .expect_err("w: 2 on a standalone");
    match error.kind.as_ref() {
        mongodb::error::ErrorKind::Command(e) => {
            assert_eq!((e.code, e.message.as_str()), (2, "cannot use 'w' > 1 when a host is not replicated"));
        }
        other => panic!("expected mongod's BadValue command error, got {other:?}"),
    }

    // w: 0 is sent with moreToCome and gets no reply (the Rust driver refuses w: 0, so this
    // speaks raw OP_MSG); the write still happens.
    let mut raw = server.raw();
    let insert = doc! { "insert": "wc", "documents": [{ "_id": 4 }], "writeConcern": { "w": 0 }, "$db": "app" };
    raw.send(&common::op_msg(1, 2, &insert));
    raw.send(&common::op_msg(2, 0, &doc! { "ping": 1, "$db": "admin" }));
    let reply = raw.receive().expect("reply to the ping");
    assert_eq!(i32::from_le_bytes(reply[8..12].try_into().expect("responseTo")), 2, "the insert got no reply");
    let mut found = None;
    for _ in 0..100 {
        found = coll.find_one(doc! { "_id": 4 }).await.expect("find");
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(found.is_some(), "the w: 0 insert happened");
}

#[tokio::test]
async fn durability_crash_keeps_acknowledged_journaled_inserts() {
    let server = TestServer::start(&[]);
    let client = server.client("maxPoolSize=8").await;
    let coll = client.database("crash").collection::<Document>("log");
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for writer in 0..8 {
        let coll = coll.clone();
        let acknowledged = acknowledged.clone();
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let id = format!("{writer}-{i}");
                if coll
                    .insert_one(doc! { "_id": &id, "payload": "x".repeat(100) })
                    .write_concern(journaled())
                    .await
                    .is_err()
                {
                    break;
                }
                acknowledged.lock().expect("lock").push(id);
                i += 1;
            }
        }));
    }
    // Let a stream of writes build up, then crash the server in the middle of it.
    while acknowledged.lock().expect("lock").len() < 400 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let server = server.crash_and_restart(&[]);
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        let _ = writer.await;
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(acknowledged.len() >= 400);

    let client = server.client("").await;
    let coll = client.database("crash").collection::<Document>("log");
    let stored = coll.count_documents(doc! {}).await.expect("readable after crash");
    assert!(stored as usize >= acknowledged.len(), "{stored} stored < {} acknowledged", acknowledged.len());
    for id in &acknowledged {
        assert!(coll.find_one(doc! { "_id": id }).await.expect("find").is_some(), "acknowledged {id} lost");
    }
}

#[tokio::test]
async fn durability_concurrent_increments_are_not_lost() {
    let server = TestServer::start(&[]);
    let client = server.client("maxPoolSize=16").await;
    let coll = client.database("app").collection::<Document>("counter");
    coll.insert_one(doc! { "_id": "c", "n": 0 }).await.expect("insert");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let coll = coll.clone();
            tokio::spawn(async move {
                for _ in 0..1000 {
                    coll.update_one(doc! { "_id": "c" }, doc! { "$inc": { "n": 1 } }).await.expect("inc");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let counter = coll.find_one(doc! { "_id": "c" }).await.expect("find").expect("doc");
    assert_eq!(counter.get_i32("n").ok(), Some(16_000));
}

#[tokio::test]
async fn durability_racing_inserts_of_one_id_succeed_once() {
    let server = TestServer::start(&[]);
    let client = server.client("maxPoolSize=16").await;
    let coll = client.database("app").collection::<Document>("race");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let coll = coll.clone();
            tokio::spawn(async move {
                let mut wins = 0;
                for id in 0..200 {
                    if coll.insert_one(doc! { "_id": id }).await.is_ok() {
                        wins += 1;
                    }
                }
                wins
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        wins += task.await.expect("task");
    }
    assert_eq!(wins, 200);
    assert_eq!(coll.count_documents(doc! {}).await.expect("count"), 200);
}
