//! Sessions and the cursors opened in them: a `getMore` must run in its cursor's session
//! (mongod's 50736, 50737, 50738), and killing a session (`killSessions`, `killAllSessions`)
//! closes its cursors, through raw commands and the driver.

mod common;

use common::{TestServer, code, command};
use futures_util::TryStreamExt;
use mongodb::bson::{Binary, Document, doc, spec::BinarySubtype};

fn lsid() -> Document {
    doc! { "id": Binary { subtype: BinarySubtype::Uuid, bytes: mongodb::bson::Uuid::new().bytes().to_vec() } }
}

fn with_session(mut body: Document, session: Option<&Document>) -> Document {
    if let Some(session) = session {
        body.insert("lsid", session.clone());
    }
    body
}

/// Opens a cursor over `s.c` with batches of 2, in `session`; returns its id.
fn open(server: &TestServer, session: Option<&Document>) -> i64 {
    let reply = command(server, with_session(doc! { "find": "c", "batchSize": 2, "$db": "s" }, session));
    let id = reply.get_document("cursor").and_then(|c| c.get_i64("id")).unwrap_or_default();
    assert_ne!(id, 0, "{reply}");
    id
}

fn get_more(server: &TestServer, id: i64, session: Option<&Document>) -> Document {
    command(server, with_session(doc! { "getMore": id, "collection": "c", "batchSize": 2, "$db": "s" }, session))
}

#[tokio::test]
async fn sessions_own_their_cursors_and_killing_a_session_closes_them() {
    let server = TestServer::start(&[]);
    let documents: Vec<Document> = (0..10).map(|n| doc! { "_id": n }).collect();
    command(&server, doc! { "insert": "c", "documents": documents, "$db": "s" });
    let (one, two) = (lsid(), lsid());

    let id = open(&server, Some(&one));
    for (session, expected) in [(None, 50737), (Some(&two), 50738)] {
        let reply = get_more(&server, id, session);
        assert_eq!(code(&reply), Some(expected), "{reply}");
        let message = reply.get_str("errmsg").unwrap_or_default();
        let opened = format!("Cannot run getMore on cursor {id}, which was created in session ");
        assert!(message.starts_with(&opened) && message.contains(" -  - "), "{message}");
    }
    let same = get_more(&server, id, Some(&one));
    assert_eq!(same.get_f64("ok").ok(), Some(1.0), "the refused getMores left the cursor open: {same}");
    let outside = open(&server, None);
    assert_eq!(code(&get_more(&server, outside, Some(&one))), Some(50736));

    // killSessions closes the session's cursors, not the others.
    let kill = command(&server, doc! { "killSessions": [one.clone()], "$db": "admin" });
    assert_eq!(kill.get_f64("ok").ok(), Some(1.0), "{kill}");
    assert_eq!(code(&get_more(&server, id, Some(&one))), Some(43));
    let other = get_more(&server, outside, None);
    assert_eq!(other.get_f64("ok").ok(), Some(1.0), "{other}");

    // killAllSessions closes every cursor opened in a session.
    let in_two = open(&server, Some(&two));
    command(&server, doc! { "killAllSessions": [], "$db": "admin" });
    assert_eq!(code(&get_more(&server, in_two, Some(&two))), Some(43));

    // Through the driver: a cursor of a session killed meanwhile fails with 43.
    let client = server.client("").await;
    let coll = client.database("s").collection::<Document>("c");
    let mut session = client.start_session().await.expect("session");
    let mut cursor = coll.find(doc! {}).batch_size(2).session(&mut session).await.expect("find");
    let first = cursor.next(&mut session).await.expect("a document").expect("no error");
    assert_eq!(first, doc! { "_id": 0 });
    let id = session.id().clone();
    client.database("admin").run_command(doc! { "killSessions": [id] }).await.expect("killSessions");
    let rest: Result<Vec<Document>, _> = cursor.stream(&mut session).try_collect().await;
    let error = rest.expect_err("the cursor was closed with its session");
    assert!(matches!(*error.kind, mongodb::error::ErrorKind::Command(ref e) if e.code == 43), "{error:?}");
}

/// The records in `config.system.sessions`, by `_id.id`.
fn records(server: &TestServer) -> Vec<Document> {
    let reply = command(server, doc! { "find": "system.sessions", "$db": "config" });
    let batch = reply.get_document("cursor").and_then(|c| c.get_array("firstBatch")).cloned().unwrap_or_default();
    batch.into_iter().filter_map(|d| d.as_document().cloned()).collect()
}

fn recorded(server: &TestServer, session: &Document) -> bool {
    let id = session.get("id");
    records(server).iter().any(|r| r.get_document("_id").ok().and_then(|i| i.get("id")) == id)
}

fn refresh(server: &TestServer) {
    let reply = command(server, doc! { "refreshLogicalSessionCacheNow": 1, "$db": "admin" });
    assert_eq!(reply.get_f64("ok").ok(), Some(1.0), "{reply}");
}

#[tokio::test]
async fn sessions_are_recorded_in_config_system_sessions_at_each_refresh() {
    let server = TestServer::start(&["--setParameter", "enableTestCommands=1"]);
    let documents: Vec<Document> = (0..10).map(|n| doc! { "_id": n }).collect();
    command(&server, doc! { "insert": "c", "documents": documents, "$db": "s" });
    let one = lsid();
    let cursor = open(&server, Some(&one));
    // As mongod's session cache: recorded at the next refresh, which sets up the collection.
    assert!(!recorded(&server, &one));
    refresh(&server);
    let record = records(&server).into_iter().next().unwrap_or_default();
    assert_eq!(record.keys().collect::<Vec<_>>(), ["_id", "lastUse"], "{record}");
    assert_eq!(
        record.get_document("_id").ok().map(|i| i.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["id".to_owned(), "uid".to_owned()])
    );
    assert!(record.get_datetime("lastUse").is_ok(), "{record}");
    let indexes = command(&server, doc! { "listIndexes": "system.sessions", "$db": "config" });
    let ttl = indexes.get_document("cursor").and_then(|c| c.get_array("firstBatch")).ok().and_then(|batch| {
        batch.iter().filter_map(|i| i.as_document()).find(|i| i.get_str("name").ok() == Some("lsidTTLIndex")).cloned()
    });
    let ttl = ttl.unwrap_or_default();
    assert_eq!(
        (ttl.get_document("key").ok(), ttl.get_i32("expireAfterSeconds").ok()),
        (Some(&doc! { "lastUse": 1 }), Some(1800)),
        "{indexes}"
    );
    let listed = command(
        &server,
        doc! { "aggregate": "system.sessions", "pipeline": [{ "$listSessions": {} }], "cursor": {}, "$db": "config" },
    );
    let listed =
        listed.get_document("cursor").and_then(|c| c.get_array("firstBatch")).map(Vec::len).unwrap_or_default();
    assert_eq!(listed, 1);

    // An ended session keeps its record and cursors until the next refresh removes them.
    command(&server, doc! { "endSessions": [one.clone()], "$db": "admin" });
    assert!(recorded(&server, &one));
    assert_eq!(get_more(&server, cursor, Some(&one)).get_f64("ok").ok(), Some(1.0));
    refresh(&server);
    assert!(!recorded(&server, &one));
    assert_eq!(code(&get_more(&server, cursor, Some(&one))), Some(43));

    // The refresh runs on its own every logicalSessionRefreshMillis (test-only command refused without enableTestCommands).
    let periodic = TestServer::start(&["--setParameter", "logicalSessionRefreshMillis=100"]);
    let two = lsid();
    command(&periodic, with_session(doc! { "ping": 1, "$db": "admin" }, Some(&two)));
    assert!(common::eventually(std::time::Duration::from_secs(10), || recorded(&periodic, &two)));
    let refused = command(&periodic, doc! { "refreshLogicalSessionCacheNow": 1, "$db": "admin" });
    assert_eq!(code(&refused), Some(59), "{refused}");
}
