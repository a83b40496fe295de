//! Several Monarch nodes on one PostgreSQL database (`--pgSharedNodes`, issue 20): each
//! answers as mongos; a catalog change made through one node is used by the others at once;
//! a unique index and read-modify-write updates hold across nodes; a retried write sent to
//! another node applies once; transactions on different nodes conflict, the first to commit
//! winning; a change stream on one node sees the writes made through the
//! others, and resumes on another; users and roles changed through one node hold on the
//! others; one node at a time makes the TTL pass; killing a node loses nothing acknowledged and a driver given
//! every node carries on through the others.
//!
//! These tests need a PostgreSQL server: `.ci/postgres-tests` starts one and sets
//! `MONARCH_TEST_PG_URI`. Without it (a plain `cargo test`), each says so and returns.

#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};

use common::{TestServer, code, command, error_code, new_pg_database, run_to_exit};
use mongodb::bson::{Bson, Document, doc};
use mongodb::{Client, IndexModel};

/// Three nodes sharing the database at `uri`.
fn three_nodes(uri: &str) -> Vec<TestServer> {
    (0..3).map(|_| TestServer::start(&["--storageEngine", "postgres", "--pgUri", uri, "--pgSharedNodes"])).collect()
}

/// A client of one node only.
async fn direct(node: &TestServer) -> Client {
    node.client("directConnection=true").await
}

/// The winning plan's stages of `filter` on `people`, outermost first.
async fn plan_stages(client: &Client, filter: Document) -> Vec<String> {
    let explain = client
        .database("app")
        .run_command(doc! { "explain": { "find": "people", "filter": filter }, "verbosity": "queryPlanner" })
        .await
        .expect("explain");
    let mut stages = Vec::new();
    let mut plan = explain.get_document("queryPlanner").and_then(|q| q.get_document("winningPlan")).ok();
    while let Some(stage) = plan {
        stages.push(stage.get_str("stage").unwrap_or_default().to_owned());
        plan = stage.get_document("inputStage").ok();
    }
    stages
}

#[tokio::test]
async fn shared_nodes_answer_as_mongos_and_use_each_others_catalog_changes_at_once() {
    let Some(uri) = new_pg_database("nodes_catalog") else { return };
    let nodes = three_nodes(&uri);
    let hello = command(&nodes[1], doc! { "hello": 1, "$db": "admin" });
    assert_eq!(hello.get_str("msg").ok(), Some("isdbgrid"), "{hello}");
    assert_eq!(hello.get_bool("isWritablePrimary").ok(), Some(true), "{hello}");
    assert!(!hello.contains_key("setName"), "{hello}");

    let (a, b, c) = (direct(&nodes[0]).await, direct(&nodes[1]).await, direct(&nodes[2]).await);
    let people = a.database("app").collection::<Document>("people");
    people.insert_many((0..300).map(|i| doc! { "_id": i, "age": i % 90 })).await.expect("insert");
    // Node B planned this shape before the index existed; its plan cache must not keep it.
    assert_eq!(plan_stages(&b, doc! { "age": 5 }).await, ["COLLSCAN"]);

    people.create_index(IndexModel::builder().keys(doc! { "age": 1 }).build()).await.expect("index on A");
    assert_eq!(plan_stages(&b, doc! { "age": 5 }).await, ["FETCH", "IXSCAN"], "B uses A's new index at once");
    // B's writes maintain the index it learned of: C finds them through it.
    b.database("app").collection::<Document>("people").insert_one(doc! { "_id": 1000, "age": 5 }).await.expect("B");
    let found = c.database("app").collection::<Document>("people").count_documents(doc! { "age": 5 }).await;
    assert_eq!(found.expect("count on C"), 5);
    assert_eq!(plan_stages(&c, doc! { "age": 5 }).await, ["FETCH", "IXSCAN"]);

    c.database("app").collection::<Document>("people").drop_index("age_1").await.expect("drop on C");
    assert_eq!(plan_stages(&b, doc! { "age": 5 }).await, ["COLLSCAN"], "B forgets C's dropped index at once");

    // A validator set through A is enforced by B: 121 DocumentValidationFailure.
    a.database("app")
        .run_command(doc! { "collMod": "people", "validator": { "age": { "$type": "int" } } })
        .await
        .expect("collMod on A");
    let refused = b.database("app").collection::<Document>("people").insert_one(doc! { "_id": 2000, "age": "x" }).await;
    assert_eq!(refused.as_ref().err().and_then(error_code), Some(121), "{refused:?}");

    // A collection dropped through C is gone for A, and a write through B creates a new one.
    c.database("app").collection::<Document>("people").drop().await.expect("drop on C");
    let names = a.database("app").list_collection_names().await.expect("list on A");
    assert!(!names.contains(&"people".to_owned()), "{names:?}");
    b.database("app").collection::<Document>("people").insert_one(doc! { "_id": 1, "age": "any" }).await.expect("B");
    let left = a.database("app").collection::<Document>("people").count_documents(doc! {}).await;
    assert_eq!(left.expect("count on A"), 1, "the old documents went with the drop; the new one has no validator");

    // Collections created through different nodes get different ids: neither sees the other's
    // documents.
    for (i, node) in [&a, &b, &c].iter().enumerate() {
        let collection = node.database("ids").collection::<Document>(&format!("c{i}"));
        collection.insert_one(doc! { "_id": 0, "node": i as i32 }).await.expect("create");
    }
    for i in 0..3 {
        let only = a.database("ids").collection::<Document>(&format!("c{i}")).find_one(doc! {}).await;
        assert_eq!(only.expect("find").and_then(|d| d.get_i32("node").ok()), Some(i));
    }
}

#[tokio::test]
async fn a_unique_index_and_updates_hold_across_nodes() {
    let Some(uri) = new_pg_database("nodes_unique") else { return };
    let nodes = three_nodes(&uri);
    let (a, b) = (direct(&nodes[0]).await, direct(&nodes[1]).await);
    let unique = IndexModel::builder()
        .keys(doc! { "k": 1 })
        .options(mongodb::options::IndexOptions::builder().unique(true).build())
        .build();
    a.database("app").collection::<Document>("u").create_index(unique).await.expect("unique index");
    a.database("app").collection::<Document>("counter").insert_one(doc! { "_id": 1, "n": 0 }).await.expect("counter");

    const KEYS: i32 = 150;
    // Both nodes insert every key, and increment the counter, at the same time.
    let race = |client: Client| async move {
        let (u, counter) =
            (client.database("app").collection("u"), client.database("app").collection::<Document>("counter"));
        let mut accepted = Vec::new();
        for k in 0..KEYS {
            match u.insert_one(doc! { "k": k }).await {
                Ok(_) => accepted.push(k),
                Err(error) => assert_eq!(error_code(&error), Some(11000), "{error}"),
            }
            counter.update_one(doc! { "_id": 1 }, doc! { "$inc": { "n": 1 } }).await.expect("increment");
        }
        accepted
    };
    let (from_a, from_b) = tokio::join!(tokio::spawn(race(a.clone())), tokio::spawn(race(b.clone())));
    let (from_a, from_b) = (from_a.expect("A's writer"), from_b.expect("B's writer"));
    assert_eq!(from_a.len() + from_b.len(), KEYS as usize, "each key accepted once: A {from_a:?}, B {from_b:?}");
    let stored: Vec<Document> = a
        .database("app")
        .collection::<Document>("u")
        .find(doc! {})
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("documents");
    let keys: BTreeSet<i32> = stored.iter().filter_map(|d| d.get_i32("k").ok()).collect();
    assert_eq!((stored.len(), keys.len()), (KEYS as usize, KEYS as usize));
    let counter = b.database("app").collection::<Document>("counter").find_one(doc! {}).await.expect("counter");
    assert_eq!(counter.and_then(|d| d.get_i32("n").ok()), Some(2 * KEYS), "no increment lost");
}

#[tokio::test]
async fn a_retried_write_sent_to_another_node_applies_once() {
    let Some(uri) = new_pg_database("nodes_retry") else { return };
    let nodes = three_nodes(&uri);
    let session = doc! { "id": Bson::Binary(mongodb::bson::Binary {
        subtype: mongodb::bson::spec::BinarySubtype::Uuid,
        bytes: vec![7; 16],
    }) };
    let retryable = |body: Document| {
        let mut body = body;
        body.insert("lsid", session.clone());
        body.insert("txnNumber", 5_i64);
        body.insert("$db", "app");
        body
    };
    command(&nodes[0], doc! { "insert": "r", "documents": [{ "_id": 1, "n": 0 }], "$db": "app" });
    let update = retryable(doc! { "update": "r", "updates": [{ "q": { "_id": 1 }, "u": { "$inc": { "n": 1 } } }] });
    let first = command(&nodes[0], update.clone());
    assert_eq!((first.get_i32("n").ok(), first.get_i32("nModified").ok()), (Some(1), Some(1)), "{first}");
    // The driver's retry after a lost reply, sent to another node: answered from the record.
    let retried = command(&nodes[1], update);
    assert_eq!(retried.get_i32("n").ok(), Some(1), "{retried}");
    assert_eq!(retried.get_array("retriedStmtIds").ok().map(Vec::len), Some(1), "{retried}");
    let stored = command(&nodes[2], doc! { "find": "r", "filter": { "_id": 1 }, "$db": "app" });
    let n = stored
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .ok()
        .and_then(|batch| batch.first().and_then(Bson::as_document).and_then(|d| d.get_i32("n").ok()));
    assert_eq!(n, Some(1), "applied once: {stored}");

    // An older number is refused on every node: 225 TransactionTooOld.
    let older = {
        let mut body = retryable(doc! { "insert": "r", "documents": [{ "_id": 2 }] });
        body.insert("txnNumber", 4_i64);
        body
    };
    assert_eq!(code(&command(&nodes[2], older)), Some(225));
}

/// Whether `error` is 112 WriteConflict labelled `TransientTransactionError`.
fn is_transient_write_conflict(error: &mongodb::error::Error) -> bool {
    error_code(error) == Some(112) && error.contains_label("TransientTransactionError")
}

#[tokio::test]
async fn transactions_on_different_nodes_conflict_and_the_first_to_commit_wins() {
    let Some(uri) = new_pg_database("nodes_txn") else { return };
    let nodes = three_nodes(&uri);
    let (a, b, c) = (direct(&nodes[0]).await, direct(&nodes[1]).await, direct(&nodes[2]).await);
    let through = |client: &Client| client.database("app").collection::<Document>("accounts");
    through(&a).insert_one(doc! { "_id": 1, "n": 0 }).await.expect("an account");
    let n = || async { through(&c).find_one(doc! { "_id": 1 }).await.expect("find").and_then(|d| d.get_i32("n").ok()) };

    // A transaction on A, then a plain update of its document through B: the update commits
    // first, so the transaction's commit is the conflict, and neither change is lost.
    let mut on_a = a.start_session().await.expect("session on A");
    on_a.start_transaction().await.expect("start on A");
    through(&a).update_one(doc! { "_id": 1 }, doc! { "$inc": { "n": 1 } }).session(&mut on_a).await.expect("in A");
    through(&b).update_one(doc! { "_id": 1 }, doc! { "$inc": { "n": 10 } }).await.expect("plain on B");
    let refused = on_a.commit_transaction().await.expect_err("A's commit after B's write");
    assert!(is_transient_write_conflict(&refused), "{refused}");
    assert_eq!(n().await, Some(10));

    // Two transactions on A and B writing one document: the first commit wins.
    let mut on_b = b.start_session().await.expect("session on B");
    on_a.start_transaction().await.expect("start on A");
    on_b.start_transaction().await.expect("start on B");
    through(&a).update_one(doc! { "_id": 1 }, doc! { "$inc": { "n": 1 } }).session(&mut on_a).await.expect("in A");
    through(&b).update_one(doc! { "_id": 1 }, doc! { "$inc": { "n": 100 } }).session(&mut on_b).await.expect("in B");
    on_a.commit_transaction().await.expect("A commits first");
    let refused = on_b.commit_transaction().await.expect_err("B's commit after A's");
    assert!(is_transient_write_conflict(&refused), "{refused}");
    assert_eq!(n().await, Some(11));

    // A unique key inserted by transactions on two nodes: the second commit is the conflict.
    let unique = IndexModel::builder()
        .keys(doc! { "k": 1 })
        .options(mongodb::options::IndexOptions::builder().unique(true).build())
        .build();
    through(&a).create_index(unique).await.expect("unique index");
    on_a.start_transaction().await.expect("start on A");
    on_b.start_transaction().await.expect("start on B");
    through(&a).insert_one(doc! { "_id": 2, "k": 5 }).session(&mut on_a).await.expect("in A");
    through(&b).insert_one(doc! { "_id": 3, "k": 5 }).session(&mut on_b).await.expect("in B");
    on_b.commit_transaction().await.expect("B commits first");
    let refused = on_a.commit_transaction().await.expect_err("A's commit of the same key");
    assert!(is_transient_write_conflict(&refused), "{refused}");

    // An index built through C while a transaction on A is open: A's entries would miss it,
    // so its commit is a conflict; run again, it commits, and C finds the document by it.
    let tags = |client: &Client| client.database("app").collection::<Document>("tags");
    tags(&a).insert_one(doc! { "_id": 0, "tag": "y" }).await.expect("the collection");
    on_a.start_transaction().await.expect("start on A");
    tags(&a).insert_one(doc! { "_id": 4, "tag": "x" }).session(&mut on_a).await.expect("in A");
    tags(&c).create_index(IndexModel::builder().keys(doc! { "tag": 1 }).build()).await.expect("index on C");
    let refused = on_a.commit_transaction().await.expect_err("A's commit across the index build");
    assert!(is_transient_write_conflict(&refused), "{refused}");
    on_a.start_transaction().await.expect("start on A again");
    tags(&a).insert_one(doc! { "_id": 4, "tag": "x" }).session(&mut on_a).await.expect("in A");
    on_a.commit_transaction().await.expect("A's second attempt");
    let tagged = tags(&c)
        .find(doc! { "tag": "x" })
        .hint(mongodb::options::Hint::Keys(doc! { "tag": 1 }))
        .await
        .expect("find by the index");
    let tagged: Vec<Document> = tagged.try_collect().await.expect("documents");
    assert_eq!(tagged.len(), 1, "the committed document is in C's index");
}

#[tokio::test]
async fn a_change_stream_on_one_node_sees_writes_made_through_the_others_and_resumes_on_another() {
    use mongodb::change_stream::event::{ChangeStreamEvent, OperationType};
    let Some(uri) = new_pg_database("nodes_stream") else { return };
    let nodes = three_nodes(&uri);
    let (a, b, c) = (direct(&nodes[0]).await, direct(&nodes[1]).await, direct(&nodes[2]).await);
    let through = |client: &Client| client.database("app").collection::<Document>("events");
    let mut stream = through(&a).watch().await.expect("a change stream on A");

    through(&b).insert_one(doc! { "_id": 1 }).await.expect("insert through B");
    through(&c).insert_one(doc! { "_id": 2 }).await.expect("insert through C");
    through(&b).update_one(doc! { "_id": 1 }, doc! { "$set": { "x": 1 } }).await.expect("update through B");
    through(&c).delete_one(doc! { "_id": 2 }).await.expect("delete through C");

    let mut seen: Vec<(OperationType, Option<Bson>)> = Vec::new();
    let mut token_after_second = None;
    while seen.len() < 4 {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.next()).await;
        let event: ChangeStreamEvent<Document> =
            next.expect("the event within 10 s").expect("an event").expect("a readable event");
        seen.push((event.operation_type, event.document_key.and_then(|key| key.get("_id").cloned())));
        if seen.len() == 2 {
            token_after_second = Some(event.id);
        }
    }
    let expected = [
        (OperationType::Insert, Some(Bson::Int32(1))),
        (OperationType::Insert, Some(Bson::Int32(2))),
        (OperationType::Update, Some(Bson::Int32(1))),
        (OperationType::Delete, Some(Bson::Int32(2))),
    ];
    assert_eq!(seen, expected, "every node's writes, in the order they were made");

    // A's resume token is valid on C: the stream goes on after the second event.
    let token = token_after_second.expect("the second event's token");
    let mut resumed = through(&c).watch().resume_after(token).await.expect("resume on C");
    let mut after: Vec<OperationType> = Vec::new();
    while after.len() < 2 {
        let next = tokio::time::timeout(Duration::from_secs(10), resumed.next()).await;
        after.push(next.expect("the event within 10 s").expect("an event").expect("readable").operation_type);
    }
    assert_eq!(after, [OperationType::Update, OperationType::Delete]);
}

#[tokio::test]
async fn killing_a_node_loses_nothing_acknowledged_and_drivers_carry_on() {
    let Some(uri) = new_pg_database("nodes_kill") else { return };
    let mut nodes = three_nodes(&uri);
    let hosts: Vec<String> = nodes.iter().map(|node| format!("127.0.0.1:{}", node.port)).collect();
    let client = Client::with_uri_str(format!("mongodb://{}/?serverSelectionTimeoutMS=10000", hosts.join(",")))
        .await
        .expect("client of every node");
    let writes = client.database("app").collection::<Document>("w");

    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let (acknowledged, errors, writes) = (acknowledged.clone(), errors.clone(), writes.clone());
        tokio::spawn(async move {
            for id in 0..400 {
                // Each document until it is acknowledged: a duplicate key means an earlier
                // attempt was applied.
                loop {
                    match writes.insert_one(doc! { "_id": id }).await {
                        Ok(_) => break,
                        Err(error) if error_code(&error) == Some(11000) => break,
                        Err(error) => errors.lock().expect("errors").push(error.to_string()),
                    }
                }
                acknowledged.lock().expect("acknowledged").push((id, std::time::Instant::now()));
            }
        })
    };
    assert!(
        common::eventually_async(Duration::from_secs(30), || {
            let done = acknowledged.lock().expect("acknowledged").len();
            async move { done >= 100 }
        })
        .await,
        "writes did not start"
    );
    nodes.remove(0).crash();
    writer.await.expect("the writer carried on after the kill");

    let acknowledged = acknowledged.lock().expect("acknowledged").clone();
    assert_eq!(acknowledged.len(), 400);
    let longest_gap = acknowledged.windows(2).map(|pair| pair[1].1 - pair[0].1).max().unwrap_or_default();
    let survivor = direct(&nodes[1]).await;
    let stored = survivor.database("app").collection::<Document>("w").count_documents(doc! {}).await;
    assert_eq!(stored.expect("count"), 400, "every acknowledged write is stored");
    let errors = errors.lock().expect("errors").clone();
    eprintln!("after the kill: {} errors, longest gap between acknowledged writes {longest_gap:?}", errors.len());
    assert!(errors.len() < 20, "the driver moved to the other nodes: {errors:?}");
}

#[tokio::test]
async fn users_and_roles_changed_through_one_node_hold_on_the_others() {
    let Some(uri) = new_pg_database("nodes_auth") else { return };
    let args = [
        "--storageEngine",
        "postgres",
        "--pgUri",
        &uri,
        "--pgSharedNodes",
        "--auth",
        "--setParameter",
        "userCacheInvalidationIntervalSecs=1",
    ];
    let (a, b) = (TestServer::start(&args), TestServer::start(&args));
    // The first user, through A's localhost exception, closes B's at once.
    let created = command(&a, doc! { "createUser": "root", "pwd": "root-pw", "roles": ["root"], "$db": "admin" });
    assert_eq!(created.get_f64("ok").ok(), Some(1.0), "{created}");
    let second = doc! { "createUser": "second", "pwd": "pw", "roles": ["root"], "$db": "admin" };
    assert_eq!(code(&command(&b, second)), Some(13), "B's localhost exception is closed");

    let as_user = |node: &TestServer, user: &str, pwd: &str| {
        format!("mongodb://{user}:{pwd}@127.0.0.1:{}/?authSource=admin&directConnection=true", node.port)
    };
    let root = Client::with_uri_str(as_user(&a, "root", "root-pw")).await.expect("root on A");
    let app_role = doc! { "role": "readWrite", "db": "app" };
    root.database("admin")
        .run_command(doc! { "createUser": "app", "pwd": "app-pw", "roles": [app_role.clone()] })
        .await
        .expect("a user made through A");
    let app = Client::with_uri_str(as_user(&b, "app", "app-pw")).await.expect("app on B");
    let orders = app.database("app").collection::<Document>("orders");
    orders.insert_one(doc! { "_id": 1 }).await.expect("the user made through A writes through B");

    // Its role revoked through A: B's open connections lose it within the interval (1 s here).
    root.database("admin")
        .run_command(doc! { "revokeRolesFromUser": "app", "roles": [app_role] })
        .await
        .expect("revoke through A");
    let revoked = common::eventually_async(Duration::from_secs(10), || {
        let orders = orders.clone();
        async move { orders.insert_one(doc! { "_id": 2 }).await.err().as_ref().and_then(error_code) == Some(13) }
    })
    .await;
    assert!(revoked, "B still let the revoked user write");
}

#[test]
fn a_node_that_does_not_share_is_refused_beside_shared_ones_and_the_other_way() {
    let Some(uri) = new_pg_database("nodes_modes") else { return };
    let shared = TestServer::start(&["--storageEngine", "postgres", "--pgUri", &uri, "--pgSharedNodes"]);
    let alone = run_to_exit(&["--storageEngine", "postgres", "--pgUri", &uri]);
    assert_eq!(alone.status.code(), Some(100), "{}", String::from_utf8_lossy(&alone.stdout));
    drop(shared);

    let alone = TestServer::start(&["--storageEngine", "postgres", "--pgUri", &uri]);
    let shared = run_to_exit(&["--storageEngine", "postgres", "--pgUri", &uri, "--pgSharedNodes"]);
    assert_eq!(shared.status.code(), Some(100), "{}", String::from_utf8_lossy(&shared.stdout));
    drop(alone);

    // Refused at start where it cannot mean anything: 2 (bad options), as mongod's.
    let embedded = run_to_exit(&["--pgSharedNodes"]);
    assert_eq!(embedded.status.code(), Some(2), "{}", String::from_utf8_lossy(&embedded.stderr));
    let member = run_to_exit(&["--storageEngine", "postgres", "--pgUri", &uri, "--pgSharedNodes", "--replSet", "rs0"]);
    assert_eq!(member.status.code(), Some(2), "{}", String::from_utf8_lossy(&member.stderr));
}

/// `metrics.ttl` of `node`: (passes, deletedDocuments).
async fn ttl_metrics(node: &Client) -> (i64, i64) {
    let status = node.database("admin").run_command(doc! { "serverStatus": 1 }).await.expect("serverStatus");
    let ttl = status.get_document("metrics").and_then(|m| m.get_document("ttl")).expect("metrics.ttl");
    (ttl.get_i64("passes").expect("passes"), ttl.get_i64("deletedDocuments").expect("deletedDocuments"))
}

/// The TTL monitor makes one pass at a time among the nodes: while the pass's advisory lock is
/// held elsewhere (here by the test's own session, as by a node in the middle of a pass), no
/// node deletes; once it is free, one node's pass deletes every expired document once, using
/// an index created through another node.
#[tokio::test]
async fn shared_nodes_take_turns_at_the_ttl_pass() {
    let Some(uri) = new_pg_database("nodes_ttl") else { return };
    let args =
        ["--storageEngine", "postgres", "--pgUri", &uri, "--pgSharedNodes", "--setParameter", "ttlMonitorSleepSecs=1"];
    let nodes = [TestServer::start(&args), TestServer::start(&args)];
    let (a, b) = (direct(&nodes[0]).await, direct(&nodes[1]).await);
    // The TTL pass's lock ('mntt'), taken from a session of the test's own.
    let (hold, held) = (std::sync::mpsc::channel::<()>(), std::sync::mpsc::channel::<()>());
    let (release, lock_uri) = (hold.1, uri.clone());
    let holder = std::thread::spawn(move || {
        let mut session = postgres::Client::connect(&lock_uri, postgres::NoTls).expect("connect");
        session.execute("SELECT pg_advisory_lock($1)", &[&0x6d6e_7474_i64]).expect("lock");
        held.0.send(()).expect("held");
        let _ = release.recv();
    });
    held.1.recv().expect("the lock is held");

    let events = a.database("app").collection::<Document>("events");
    let expiry = IndexModel::builder()
        .keys(doc! { "at": 1 })
        .options(mongodb::options::IndexOptions::builder().expire_after(Duration::from_secs(0)).build())
        .build();
    events.create_index(expiry).await.expect("TTL index through A");
    let old = mongodb::bson::DateTime::from_millis(mongodb::bson::DateTime::now().timestamp_millis() - 60_000);
    let through_b = b.database("app").collection::<Document>("events");
    through_b.insert_many((0..50).map(|i| doc! { "_id": i, "at": old })).await.expect("insert through B");
    // Three of each node's one-second periods: every pass is skipped.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(through_b.count_documents(doc! {}).await.expect("count"), 50, "deleted while the pass was held");
    assert_eq!((ttl_metrics(&a).await.0, ttl_metrics(&b).await.0), (0, 0), "no node made a pass");

    hold.0.send(()).expect("release");
    holder.join().expect("holder");
    let gone = common::eventually_async(Duration::from_secs(30), || {
        let events = through_b.clone();
        async move { events.count_documents(doc! {}).await.is_ok_and(|n| n == 0) }
    })
    .await;
    assert!(gone, "the expired documents were not deleted once the pass was free");
    let (on_a, on_b) = (ttl_metrics(&a).await, ttl_metrics(&b).await);
    assert_eq!(on_a.1 + on_b.1, 50, "each document deleted once: A {on_a:?}, B {on_b:?}");
}

/// Sessions of the database at `uri` holding a collection's write lock across nodes (the
/// advisory locks tagged 'MC' in their top 16 bits).
fn collection_locks_held(uri: &str) -> i64 {
    let uri = uri.to_owned();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&uri, postgres::NoTls).expect("connect");
        let sql = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
                   AND classid = x'4d430000'::int::oid AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";
        client.query_one(sql, &[]).expect("pg_locks").get(0)
    })
    .join()
    .expect("pg_locks")
}

/// A write through B that waits for the collection's lock while A builds an index commits
/// with the catalog as A left it: its document is in the new index.
#[tokio::test]
async fn a_write_waiting_behind_another_nodes_index_build_maintains_the_index() {
    let Some(uri) = new_pg_database("nodes_waiting_writer") else { return };
    let args = ["--storageEngine", "postgres", "--pgUri", &uri, "--pgSharedNodes"];
    let nodes = [TestServer::start(&args), TestServer::start(&args)];
    let (a, b) = (direct(&nodes[0]).await, direct(&nodes[1]).await);
    let big = a.database("app").collection::<Document>("big");
    big.insert_many((0..30_000).map(|i| doc! { "_id": i, "v": i })).await.expect("insert through A");
    let build = {
        let big = big.clone();
        tokio::spawn(async move { big.create_index(IndexModel::builder().keys(doc! { "v": 1 }).build()).await })
    };
    let building =
        common::eventually_async(Duration::from_secs(30), || async { collection_locks_held(&uri) > 0 }).await;
    assert!(building, "A's index build never held the collection's lock");
    let through_b = b.database("app").collection::<Document>("big");
    through_b.insert_one(doc! { "_id": -1, "v": -1 }).await.expect("insert through B");
    build.await.expect("join").expect("index on A");
    let hinted = big.count_documents(doc! { "v": -1 }).hint(mongodb::options::Hint::Keys(doc! { "v": 1 })).await;
    assert_eq!(hinted.expect("count through the index"), 1, "B's document is missing from A's index");
}
