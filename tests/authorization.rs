//! Authorization with `--auth`, through the Rust driver: unauthenticated clients may only
//! handshake and authenticate, the localhost exception creates the first user, each built-in
//! role is allowed and refused what mongod allows and refuses it, custom roles grant what
//! they name (and a change reaches connections already open), and a user sees only its own
//! databases, collections and cursors.

#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use common::TestServer;
use mongodb::Client;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::ErrorKind;

/// A client authenticated as `user` (password `pw-<user>`) against `admin`.
async fn client_as(server: &TestServer, user: &str) -> Client {
    let uri = server.uri("authSource=admin").replacen("mongodb://", &format!("mongodb://{user}:pw-{user}@"), 1);
    Client::with_uri_str(uri).await.expect("client")
}

/// The server with `--auth`, its first user `root` (created through the localhost
/// exception), and a client authenticated as that user.
async fn secured() -> (TestServer, Client) {
    let server = TestServer::start(&["--auth"]);
    server
        .admin(doc! { "createUser": "root", "pwd": "pw-root", "roles": ["root"] })
        .await
        .expect("the localhost exception lets the first user be created");
    let root = client_as(&server, "root").await;
    (server, root)
}

async fn create_user(root: &Client, user: &str, roles: Bson) {
    root.database("admin")
        .run_command(doc! { "createUser": user, "pwd": format!("pw-{user}"), "roles": roles })
        .await
        .expect("createUser");
}

fn code_and_message(error: &mongodb::error::Error) -> (i32, String) {
    match error.kind.as_ref() {
        ErrorKind::Command(e) => (e.code, e.message.clone()),
        other => panic!("not a command error: {other:?}"),
    }
}

async fn run(client: &Client, db: &str, command: Document) -> Result<Document, (i32, String)> {
    client.database(db).run_command(command).await.map_err(|e| code_and_message(&e))
}

/// Asserts `command` on `db` is refused with 13 and mongod's message for a missing privilege.
async fn refused(client: &Client, db: &str, command: Document) {
    let name = command.keys().next().cloned().unwrap_or_default();
    match run(client, db, command).await {
        Err((code, message)) => {
            assert_eq!(code, 13, "{message}");
            assert!(
                message.starts_with(&format!("not authorized on {db} to execute command {{ {name}: ")),
                "{message}"
            );
        }
        Ok(reply) => panic!("{name} on {db} was allowed: {reply}"),
    }
}

async fn allowed(client: &Client, db: &str, command: Document) -> Document {
    let name = command.keys().next().cloned().unwrap_or_default();
    run(client, db, command).await.unwrap_or_else(|e| panic!("{name} on {db} refused: {e:?}"))
}

#[tokio::test]
async fn unauthenticated_clients_may_only_handshake_and_authenticate() {
    let (server, _root) = secured().await;
    let anonymous = server.client("").await;
    for open in [doc! { "ping": 1 }, doc! { "hello": 1 }, doc! { "buildInfo": 1 }, doc! { "connectionStatus": 1 }] {
        allowed(&anonymous, "admin", open).await;
    }
    for (db, command, name) in [
        ("shop", doc! { "find": "orders" }, "find"),
        ("shop", doc! { "insert": "orders", "documents": [{ "a": 1 }] }, "insert"),
        ("admin", doc! { "listDatabases": 1 }, "listDatabases"),
        ("admin", doc! { "serverStatus": 1 }, "serverStatus"),
        ("admin", doc! { "createUser": "eve", "pwd": "x", "roles": ["root"] }, "createUser"),
        ("admin", doc! { "logout": 1 }, "logout"),
    ] {
        assert_eq!(
            run(&anonymous, db, command).await.err(),
            Some((13, format!("Command {name} requires authentication"))),
            "{name}"
        );
    }
    let list = allowed(&anonymous, "admin", doc! { "listCommands": 1 }).await;
    let find = list.get_document("commands").and_then(|c| c.get_document("find")).expect("find listed");
    assert_eq!(find.get_bool("requiresAuth").ok(), Some(true));
}

#[tokio::test]
async fn the_localhost_exception_creates_only_the_first_user_in_admin() {
    let server = TestServer::start(&["--auth"]);
    assert!(server.log_lines().iter().any(|l| l.contains("allowing localhost access")));
    let local = server.client("").await;
    // Under the exception, nothing but creating a user in admin.
    refused(&local, "shop", doc! { "find": "orders" }).await;
    refused(&local, "shop", doc! { "createUser": "shopper", "pwd": "pw", "roles": ["readWrite"] }).await;
    refused(&local, "admin", doc! { "createUser": "x", "pwd": "pw", "roles": [{ "role": "read", "db": "shop" }] })
        .await;
    allowed(&local, "admin", doc! { "createUser": "root", "pwd": "pw-root", "roles": ["root"] }).await;
    // The exception ends with the first user, for this connection too.
    assert_eq!(
        run(&local, "admin", doc! { "createUser": "second", "pwd": "pw", "roles": ["root"] }).await.err(),
        Some((13, "Command createUser requires authentication".to_owned()))
    );
    let root = client_as(&server, "root").await;
    allowed(&root, "shop", doc! { "insert": "orders", "documents": [{ "_id": 1 }] }).await;
}

#[tokio::test]
async fn built_in_roles_allow_and_refuse_what_mongod_does() {
    let (server, root) = secured().await;
    allowed(&root, "shop", doc! { "insert": "orders", "documents": [{ "_id": 1, "total": 5 }] }).await;
    allowed(&root, "other", doc! { "insert": "things", "documents": [{ "_id": 1 }] }).await;
    for (user, roles) in [
        ("reader", Bson::Array(vec![Bson::Document(doc! { "role": "read", "db": "shop" })])),
        ("writer", Bson::Array(vec![Bson::Document(doc! { "role": "readWrite", "db": "shop" })])),
        ("dba", Bson::Array(vec![Bson::Document(doc! { "role": "dbAdmin", "db": "shop" })])),
        ("owner", Bson::Array(vec![Bson::Document(doc! { "role": "dbOwner", "db": "shop" })])),
        ("useradmin", Bson::Array(vec![Bson::Document(doc! { "role": "userAdmin", "db": "shop" })])),
        ("monitor", Bson::Array(vec![Bson::from("clusterMonitor")])),
        ("anyreader", Bson::Array(vec![Bson::from("readAnyDatabase")])),
        ("hostman", Bson::Array(vec![Bson::from("hostManager")])),
    ] {
        create_user(&root, user, roles).await;
    }
    let find = || doc! { "find": "orders" };
    let insert = || doc! { "insert": "orders", "documents": [{ "total": 1 }] };

    let reader = client_as(&server, "reader").await;
    allowed(&reader, "shop", find()).await;
    allowed(&reader, "shop", doc! { "count": "orders" }).await;
    refused(&reader, "shop", insert()).await;
    refused(&reader, "other", doc! { "find": "things" }).await;
    refused(&reader, "shop", doc! { "createIndexes": "orders", "indexes": [{ "key": { "a": 1 }, "name": "a" }] }).await;
    refused(&reader, "admin", doc! { "serverStatus": 1 }).await;

    let writer = client_as(&server, "writer").await;
    allowed(&writer, "shop", insert()).await;
    allowed(&writer, "shop", doc! { "update": "orders", "updates": [{ "q": {}, "u": { "$set": { "x": 1 } } }] }).await;
    allowed(&writer, "shop", doc! { "delete": "orders", "deletes": [{ "q": { "x": 9 }, "limit": 0 }] }).await;
    refused(&writer, "shop", doc! { "dropDatabase": 1 }).await;
    refused(&writer, "shop", doc! { "createUser": "x", "pwd": "pw", "roles": [] }).await;

    let dba = client_as(&server, "dba").await;
    allowed(&dba, "shop", doc! { "createIndexes": "orders", "indexes": [{ "key": { "total": 1 }, "name": "total" }] })
        .await;
    allowed(&dba, "shop", doc! { "collStats": "orders" }).await;
    allowed(&dba, "shop", doc! { "find": "system.profile" }).await;
    refused(&dba, "shop", find()).await;
    refused(&dba, "shop", insert()).await;

    let owner = client_as(&server, "owner").await;
    allowed(&owner, "shop", find()).await;
    allowed(&owner, "shop", doc! { "createUser": "clerk", "pwd": "pw-clerk", "roles": ["read"] }).await;
    refused(&owner, "other", doc! { "find": "things" }).await;

    let useradmin = client_as(&server, "useradmin").await;
    allowed(&useradmin, "shop", doc! { "usersInfo": 1 }).await;
    allowed(&useradmin, "shop", doc! { "grantRolesToUser": "clerk", "roles": ["readWrite"] }).await;
    refused(&useradmin, "shop", find()).await;
    // Granting a role of another database takes grantRole there.
    refused(&useradmin, "shop", doc! { "grantRolesToUser": "clerk", "roles": [{ "role": "read", "db": "other" }] })
        .await;

    let monitor = client_as(&server, "monitor").await;
    allowed(&monitor, "admin", doc! { "serverStatus": 1 }).await;
    allowed(&monitor, "admin", doc! { "currentOp": 1 }).await;
    allowed(&monitor, "admin", doc! { "getLog": "global" }).await;
    refused(&monitor, "shop", find()).await;
    refused(&monitor, "admin", doc! { "setParameter": 1, "cursorTimeoutMillis": 1000 }).await;

    let anyreader = client_as(&server, "anyreader").await;
    allowed(&anyreader, "shop", find()).await;
    allowed(&anyreader, "other", doc! { "find": "things" }).await;
    refused(&anyreader, "other", doc! { "insert": "things", "documents": [{}] }).await;
    refused(&anyreader, "admin", doc! { "find": "system.users" }).await;

    let hostman = client_as(&server, "hostman").await;
    allowed(&hostman, "admin", doc! { "setParameter": 1, "cursorTimeoutMillis": 600_000 }).await;
    refused(&hostman, "admin", doc! { "serverStatus": 1 }).await;

    allowed(&root, "admin", doc! { "setParameter": 1, "cursorTimeoutMillis": 600_000 }).await;
    allowed(&root, "shop", doc! { "dropDatabase": 1 }).await;
}

#[tokio::test]
async fn users_see_only_their_databases_and_collections() {
    let (server, root) = secured().await;
    allowed(&root, "shop", doc! { "insert": "orders", "documents": [{}] }).await;
    allowed(&root, "shop", doc! { "insert": "stock", "documents": [{}] }).await;
    allowed(&root, "hr", doc! { "insert": "staff", "documents": [{}] }).await;
    allowed(
        &root,
        "shop",
        doc! {
            "createRole": "ordersOnly",
            "privileges": [{ "resource": { "db": "shop", "collection": "orders" }, "actions": ["find"] }],
            "roles": [],
        },
    )
    .await;
    create_user(&root, "clerk", Bson::Array(vec![Bson::Document(doc! { "role": "ordersOnly", "db": "shop" })])).await;
    let clerk = client_as(&server, "clerk").await;
    let names = clerk.list_database_names().await.expect("listDatabases without the privilege");
    assert_eq!(names, ["shop"]);
    let all = run(&clerk, "admin", doc! { "listDatabases": 1, "authorizedDatabases": false }).await;
    assert_eq!(all.err(), Some((13, "Insufficient permissions to list all databases".to_owned())));
    assert_eq!(root.list_database_names().await.expect("root lists all"), ["admin", "hr", "shop"]);
    // listCollections takes its privilege, unless only the authorized names are asked for.
    refused(&clerk, "shop", doc! { "listCollections": 1 }).await;
    let listed =
        allowed(&clerk, "shop", doc! { "listCollections": 1, "nameOnly": true, "authorizedCollections": true }).await;
    let batch = listed.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("firstBatch");
    assert_eq!(batch, &vec![Bson::Document(doc! { "name": "orders", "type": "collection" })]);
    allowed(&clerk, "shop", doc! { "find": "orders" }).await;
    refused(&clerk, "shop", doc! { "find": "stock" }).await;
}

#[tokio::test]
async fn custom_roles_grant_what_they_name_and_changes_reach_open_connections() {
    let (server, root) = secured().await;
    allowed(
        &root,
        "shop",
        doc! {
            "createRole": "orderReader",
            "privileges": [{ "resource": { "db": "shop", "collection": "orders" }, "actions": ["find"] }],
            "roles": [],
        },
    )
    .await;
    allowed(&root, "shop", doc! { "createRole": "orderClerk", "privileges": [], "roles": ["orderReader"] }).await;
    create_user(&root, "clerk", Bson::Array(vec![Bson::Document(doc! { "role": "orderClerk", "db": "shop" })])).await;
    let clerk = client_as(&server, "clerk").await;
    allowed(&clerk, "shop", doc! { "find": "orders" }).await;
    refused(&clerk, "shop", doc! { "insert": "orders", "documents": [{}] }).await;
    // A grant reaches the open connection at its next command.
    allowed(
        &root,
        "shop",
        doc! {
            "grantPrivilegesToRole": "orderReader",
            "privileges": [{ "resource": { "db": "shop", "collection": "orders" }, "actions": ["insert"] }],
        },
    )
    .await;
    allowed(&clerk, "shop", doc! { "insert": "orders", "documents": [{}] }).await;
    // A cycle is refused.
    assert_eq!(
        run(&root, "shop", doc! { "grantRolesToRole": "orderReader", "roles": ["orderClerk"] }).await.err(),
        Some((49, "Granting roles to orderReader@shop would introduce a cycle in the role graph".to_owned()))
    );
    // rolesInfo shows what a role inherits.
    let info = allowed(&root, "shop", doc! { "rolesInfo": "orderClerk", "showPrivileges": true }).await;
    let role = info.get_array("roles").ok().and_then(|r| r.first()).and_then(Bson::as_document).expect("the role");
    assert_eq!(
        role.get_array("inheritedRoles").ok(),
        Some(&vec![Bson::Document(doc! { "role": "orderReader", "db": "shop" })])
    );
    assert_eq!(role.get_bool("isBuiltin").ok(), Some(false));
    let inherited = role.get_array("inheritedPrivileges").expect("inheritedPrivileges");
    assert_eq!(
        inherited,
        &vec![Bson::Document(doc! {
            "resource": { "db": "shop", "collection": "orders" },
            "actions": ["find", "insert"],
        })]
    );
    // Dropping the role takes it from the user, and the connection loses what it granted.
    allowed(&root, "shop", doc! { "dropRole": "orderReader" }).await;
    refused(&clerk, "shop", doc! { "find": "orders" }).await;
    // A dropped user's connection is no longer authenticated.
    allowed(&root, "admin", doc! { "dropUser": "clerk" }).await;
    assert_eq!(
        run(&clerk, "shop", doc! { "find": "orders" }).await.err(),
        Some((13, "Command find requires authentication".to_owned()))
    );
}

#[tokio::test]
async fn cursors_and_operations_belong_to_their_user() {
    let (server, root) = secured().await;
    let documents: Vec<Document> = (0..10).map(|i| doc! { "_id": i }).collect();
    allowed(&root, "shop", doc! { "insert": "orders", "documents": documents }).await;
    create_user(&root, "ann", Bson::Array(vec![Bson::Document(doc! { "role": "read", "db": "shop" })])).await;
    create_user(&root, "bob", Bson::Array(vec![Bson::Document(doc! { "role": "read", "db": "shop" })])).await;
    let ann = client_as(&server, "ann").await;
    let bob = client_as(&server, "bob").await;
    let opened = allowed(&ann, "shop", doc! { "find": "orders", "batchSize": 2 }).await;
    let id = opened.get_document("cursor").and_then(|c| c.get_i64("id")).expect("cursor id");
    assert_eq!(
        run(&bob, "shop", doc! { "getMore": id, "collection": "orders" }).await.err(),
        Some((13, format!("cursor id {id} was not created by the authenticated user")))
    );
    refused(&bob, "shop", doc! { "killCursors": "orders", "cursors": [id] }).await;
    allowed(&ann, "shop", doc! { "getMore": id, "collection": "orders", "batchSize": 2 }).await;
    let killed = allowed(&ann, "shop", doc! { "killCursors": "orders", "cursors": [id] }).await;
    assert_eq!(killed.get_array("cursorsKilled").ok(), Some(&vec![Bson::Int64(id)]));
    // Without inprog, a user sees only its own operations.
    refused(&bob, "admin", doc! { "currentOp": 1 }).await;
    let own = allowed(&bob, "admin", doc! { "currentOp": 1, "$ownOps": true }).await;
    let inprog = own.get_array("inprog").expect("inprog");
    assert!(!inprog.is_empty());
    for op in inprog {
        let users = op.as_document().and_then(|o| o.get_array("effectiveUsers").ok()).expect("effectiveUsers");
        assert_eq!(users, &vec![Bson::Document(doc! { "user": "bob", "db": "admin" })]);
    }
    // Sessions likewise: its own without listSessions, every user's or another's with it.
    let list =
        |spec: Document| doc! { "aggregate": "system.sessions", "pipeline": [{ "$listSessions": spec }], "cursor": {} };
    allowed(&bob, "config", list(doc! {})).await;
    allowed(&bob, "config", list(doc! { "users": [{ "user": "bob", "db": "admin" }] })).await;
    refused(&bob, "config", list(doc! { "allUsers": true })).await;
    refused(&bob, "config", list(doc! { "users": [{ "user": "ann", "db": "admin" }] })).await;
    allowed(&root, "config", list(doc! { "allUsers": true })).await;
}

#[tokio::test]
async fn the_official_images_variables_create_the_root_user_on_an_empty_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let env = [("MONGO_INITDB_ROOT_USERNAME", "boss"), ("MONGO_INITDB_ROOT_PASSWORD", "pw-boss")];
    let server = TestServer::start_with_env(dir, &env, &[]);
    // Authentication is on, as the image turns it on.
    assert_eq!(
        run(&server.client("").await, "shop", doc! { "find": "orders" }).await.err(),
        Some((13, "Command find requires authentication".to_owned()))
    );
    let boss = client_as(&server, "boss").await;
    allowed(&boss, "shop", doc! { "insert": "orders", "documents": [{ "_id": 1 }] }).await;
    let lines = server.log_lines();
    assert!(lines.iter().any(|l| l.contains("Created the root user") && l.contains("\"boss\"")), "{lines:?}");
    assert!(lines.iter().all(|l| !l.contains("pw-boss")), "the password reached the log");
    // On a directory that holds data, the variables create nothing (the user is kept as is).
    let server = server.restart(&["--auth"]);
    assert!(server.log_lines().iter().all(|l| !l.contains("Created the root user")));
    let boss = client_as(&server, "boss").await;
    let found = allowed(&boss, "shop", doc! { "find": "orders" }).await;
    assert_eq!(found.get_document("cursor").and_then(|c| c.get_array("firstBatch")).map(Vec::len).ok(), Some(1));
}
