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
