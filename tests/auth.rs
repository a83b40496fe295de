//! Authentication through the Rust driver: users created with `createUser` authenticate with
//! SCRAM-SHA-1 and SCRAM-SHA-256 from a connection string, wrong passwords and unknown users
//! fail alike, and the SASL commands answer mongod's codes.

#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use common::TestServer;
use mongodb::Client;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::ErrorKind;

/// A client that authenticates as `user`/`password` against `admin`, with `mechanism` when
/// given.
async fn client_as(server: &TestServer, user: &str, password: &str, mechanism: Option<&str>) -> Client {
    let mut uri = server.uri("authSource=admin").replacen("mongodb://", &format!("mongodb://{user}:{password}@"), 1);
    if let Some(mechanism) = mechanism {
        uri.push_str(&format!("&authMechanism={mechanism}"));
    }
    Client::with_uri_str(uri).await.expect("client")
}

fn command_code(error: &mongodb::error::Error) -> Option<i32> {
    match error.kind.as_ref() {
        ErrorKind::Command(e) => Some(e.code),
        _ => None,
    }
}

#[tokio::test]
async fn a_created_user_authenticates_with_either_scram_mechanism() {
    let server = TestServer::start(&[]);
    server
        .admin(doc! { "createUser": "ann", "pwd": "s3cret pass", "roles": ["root", { "role": "read", "db": "shop" }] })
        .await
        .expect("createUser");
    for mechanism in [None, Some("SCRAM-SHA-1"), Some("SCRAM-SHA-256")] {
        let client = client_as(&server, "ann", "s3cret%20pass", mechanism).await;
        let status = client.database("admin").run_command(doc! { "connectionStatus": 1 }).await.expect("authenticated");
        let auth = status.get_document("authInfo").expect("authInfo");
        assert_eq!(
            auth.get_array("authenticatedUsers").ok(),
            Some(&vec![Bson::Document(doc! { "user": "ann", "db": "admin" })])
        );
        assert_eq!(
            auth.get_array("authenticatedUserRoles").ok(),
            Some(&vec![
                Bson::Document(doc! { "role": "root", "db": "admin" }),
                Bson::Document(doc! { "role": "read", "db": "shop" })
            ])
        );
    }
    // The stored user holds salts and keys, never the password.
    let stored = server
        .client("")
        .await
        .database("admin")
        .collection::<Document>("system.users")
        .find_one(doc! { "_id": "admin.ann" })
        .await
        .expect("find")
        .expect("the user document");
    let credentials = stored.get_document("credentials").expect("credentials");
    assert_eq!(credentials.get_document("SCRAM-SHA-1").and_then(|c| c.get_i32("iterationCount")).ok(), Some(10_000));
    assert_eq!(credentials.get_document("SCRAM-SHA-256").and_then(|c| c.get_i32("iterationCount")).ok(), Some(15_000));
    assert!(!format!("{stored}").contains("s3cret"), "{stored}");
}

#[tokio::test]
async fn wrong_passwords_and_unknown_users_fail_alike() {
    let server = TestServer::start(&[]);
    server.admin(doc! { "createUser": "bob", "pwd": "right", "roles": [] }).await.expect("createUser");
    for (user, password) in [("bob", "wrong"), ("nobody", "right")] {
        let client = client_as(&server, user, password, Some("SCRAM-SHA-256")).await;
        let error = client.database("admin").run_command(doc! { "ping": 1 }).await.expect_err("refused");
        let ErrorKind::Authentication { message, .. } = error.kind.as_ref() else { panic!("{error}") };
        assert!(message.contains("Authentication failed."), "{message}");
    }
    // The log says why; the client is not told.
    assert!(server.wait_for_log("Authentication failed", std::time::Duration::from_secs(5)));
    assert!(!server.log_lines().iter().any(|l| l.contains("right")), "no secret in the log");
}

#[tokio::test]
async fn user_and_sasl_commands_answer_mongods_codes() {
    let server = TestServer::start(&[]);
    let admin = server.client("").await.database("admin");
    admin.run_command(doc! { "createUser": "cy", "pwd": "pw", "roles": ["readWrite"] }).await.expect("createUser");
    let code = |r: mongodb::error::Result<Document>| r.err().as_ref().and_then(command_code);
    assert_eq!(code(admin.run_command(doc! { "createUser": "cy", "pwd": "pw", "roles": [] }).await), Some(51003));
    assert_eq!(code(admin.run_command(doc! { "createUser": "dee", "pwd": "pw", "roles": ["wizard"] }).await), Some(31));
    assert_eq!(
        code(admin.run_command(doc! { "createUser": "dee", "pwd": "pw", "roles": [], "mechanisms": ["PLAIN"] }).await),
        Some(2)
    );
    assert_eq!(code(admin.run_command(doc! { "createUser": "dee", "pwd": "pw" }).await), Some(40414));
    assert_eq!(code(admin.run_command(doc! { "dropUser": "nobody" }).await), Some(11));
    let payload = Bson::Binary(mongodb::bson::Binary {
        subtype: mongodb::bson::spec::BinarySubtype::Generic,
        bytes: b"n,,n=cy,r=abc".to_vec(),
    });
    assert_eq!(
        code(admin.run_command(doc! { "saslStart": 1, "mechanism": "PLAIN", "payload": payload.clone() }).await),
        Some(334)
    );
    assert_eq!(
        code(admin.run_command(doc! { "saslContinue": 1, "conversationId": 1, "payload": payload.clone() }).await),
        Some(17)
    );
    // On one connection, a conversation id that is not the conversation's is refused too.
    let one = Client::with_uri_str(server.uri("maxPoolSize=1")).await.expect("client").database("admin");
    one.run_command(doc! { "saslStart": 1, "mechanism": "SCRAM-SHA-1", "payload": payload.clone() })
        .await
        .expect("saslStart");
    let mismatched = one
        .run_command(doc! { "saslContinue": 1, "conversationId": 7, "payload": payload.clone() })
        .await
        .expect_err("mismatched id");
    let ErrorKind::Command(failure) = mismatched.kind.as_ref() else { panic!("{mismatched}") };
    assert_eq!((failure.code, failure.message.as_str()), (17, "sasl: Mismatched conversation id"));
    // A first message is answered as for any user: a nonce, a salt and an iteration count.
    let first = admin
        .run_command(doc! { "saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": payload })
        .await
        .expect("saslStart");
    assert_eq!(first.get_bool("done").ok(), Some(false));
    let Some(Bson::Binary(reply)) = first.get("payload") else { panic!("{first}") };
    let reply = String::from_utf8(reply.bytes.clone()).expect("UTF-8");
    assert!(reply.starts_with("r=abc") && reply.contains(",s=") && reply.ends_with(",i=15000"), "{reply}");
    admin.run_command(doc! { "dropUser": "cy" }).await.expect("dropUser");
    assert_eq!(code(admin.run_command(doc! { "dropUser": "cy" }).await), Some(11));
}

#[tokio::test]
async fn logout_forgets_the_user() {
    let server = TestServer::start(&[]);
    server.admin(doc! { "createUser": "eve", "pwd": "pw", "roles": [] }).await.expect("createUser");
    // One connection in the pool, so the logout and the status run on the same connection.
    let uri = server.uri("authSource=admin&maxPoolSize=1").replacen("mongodb://", "mongodb://eve:pw@", 1);
    let admin = Client::with_uri_str(uri).await.expect("client").database("admin");
    let users = |status: &Document| {
        status.get_document("authInfo").and_then(|a| a.get_array("authenticatedUsers")).map(Vec::len).ok()
    };
    let before = admin.run_command(doc! { "connectionStatus": 1 }).await.expect("status");
    assert_eq!(users(&before), Some(1), "{before}");
    admin.run_command(doc! { "logout": 1 }).await.expect("logout");
    let after = admin.run_command(doc! { "connectionStatus": 1 }).await.expect("status");
    assert_eq!(users(&after), Some(0), "{after}");
}

#[tokio::test]
async fn hello_lists_a_users_mechanisms_and_answers_speculative_authentication() {
    let server = TestServer::start(&[]);
    let admin = server.client("").await.database("admin");
    admin.run_command(doc! { "createUser": "fay", "pwd": "pw", "roles": [] }).await.expect("createUser");
    admin
        .run_command(doc! { "createUser": "gus", "pwd": "pw", "roles": [], "mechanisms": ["SCRAM-SHA-256"] })
        .await
        .expect("createUser");
    let mechs = |reply: &Document| reply.get_array("saslSupportedMechs").ok().cloned();
    let hello = admin.run_command(doc! { "hello": 1, "saslSupportedMechs": "admin.fay" }).await.expect("hello");
    assert_eq!(mechs(&hello), Some(vec![Bson::from("SCRAM-SHA-1"), Bson::from("SCRAM-SHA-256")]));
    let hello = admin.run_command(doc! { "hello": 1, "saslSupportedMechs": "admin.gus" }).await.expect("hello");
    assert_eq!(mechs(&hello), Some(vec![Bson::from("SCRAM-SHA-256")]));
    let hello = admin.run_command(doc! { "hello": 1, "saslSupportedMechs": "admin.nobody" }).await.expect("hello");
    assert_eq!(mechs(&hello), None);
    // A user with SCRAM-SHA-256 only: the driver picks it from the list and authenticates.
    let client = client_as(&server, "gus", "pw", None).await;
    client.database("admin").run_command(doc! { "ping": 1 }).await.expect("authenticated with SCRAM-SHA-256");
    // The first SCRAM step rides in the handshake.
    let payload = Bson::Binary(mongodb::bson::Binary {
        subtype: mongodb::bson::spec::BinarySubtype::Generic,
        bytes: b"n,,n=fay,r=clientnonce".to_vec(),
    });
    let hello = admin
        .run_command(doc! { "hello": 1, "speculativeAuthenticate": { "saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": payload, "db": "admin" } })
        .await
        .expect("hello");
    let answer = hello.get_document("speculativeAuthenticate").expect("answered");
    assert_eq!(answer.get_i32("conversationId").ok(), Some(1));
    let Some(Bson::Binary(first)) = answer.get("payload") else { panic!("{answer}") };
    assert!(first.bytes.starts_with(b"r=clientnonce"), "{answer}");
}

#[tokio::test]
async fn users_are_updated_granted_revoked_listed_and_dropped() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let admin = client.database("admin");
    let shop = client.database("shop");
    admin
        .run_command(doc! { "createUser": "hal", "pwd": "old", "roles": ["read"], "customData": { "team": 1 } })
        .await
        .expect("createUser");
    shop.run_command(doc! { "createUser": "ida", "pwd": "pw", "roles": ["readWrite"] }).await.expect("createUser");
    shop.run_command(doc! { "createUser": "jo", "pwd": "pw", "roles": [] }).await.expect("createUser");
    // A new password replaces the credentials: the old one fails, the new one works.
    admin
        .run_command(doc! { "updateUser": "hal", "pwd": "new", "mechanisms": ["SCRAM-SHA-256"] })
        .await
        .expect("updateUser");
    let old = client_as(&server, "hal", "old", None).await;
    assert!(old.database("admin").run_command(doc! { "ping": 1 }).await.is_err());
    client_as(&server, "hal", "new", None)
        .await
        .database("admin")
        .run_command(doc! { "ping": 1 })
        .await
        .expect("new password");
    admin
        .run_command(doc! { "grantRolesToUser": "hal", "roles": ["readWrite", { "role": "read", "db": "shop" }] })
        .await
        .expect("grant");
    admin.run_command(doc! { "revokeRolesFromUser": "hal", "roles": ["read"] }).await.expect("revoke");
    let info = admin.run_command(doc! { "usersInfo": "hal", "showCredentials": true }).await.expect("usersInfo");
    let users = info.get_array("users").expect("users");
    let hal = users.first().and_then(Bson::as_document).expect("hal");
    assert_eq!(hal.get_str("_id").ok(), Some("admin.hal"));
    assert_eq!(hal.get_document("customData").ok(), Some(&doc! { "team": 1 }));
    assert_eq!(
        hal.get_array("roles").ok(),
        Some(&vec![
            Bson::Document(doc! { "role": "readWrite", "db": "admin" }),
            Bson::Document(doc! { "role": "read", "db": "shop" })
        ])
    );
    assert_eq!(hal.get_array("mechanisms").ok(), Some(&vec![Bson::from("SCRAM-SHA-256")]));
    let shown = hal.get_document("credentials").and_then(|c| c.get_document("SCRAM-SHA-256")).expect("credentials");
    assert!(
        shown.contains_key("salt") && !shown.contains_key("storedKey") && !shown.contains_key("serverKey"),
        "{shown}"
    );
    // The other forms.
    let names = |reply: Document| -> Vec<String> {
        reply
            .get_array("users")
            .expect("users")
            .iter()
            .filter_map(|u| u.as_document()?.get_str("_id").ok().map(str::to_owned))
            .collect()
    };
    assert_eq!(names(shop.run_command(doc! { "usersInfo": 1 }).await.expect("usersInfo")), ["shop.ida", "shop.jo"]);
    assert_eq!(
        names(admin.run_command(doc! { "usersInfo": { "user": "jo", "db": "shop" } }).await.expect("usersInfo")),
        ["shop.jo"]
    );
    assert_eq!(
        names(
            admin.run_command(doc! { "usersInfo": ["hal", { "user": "ida", "db": "shop" }] }).await.expect("usersInfo")
        ),
        ["admin.hal", "shop.ida"]
    );
    assert_eq!(
        names(admin.run_command(doc! { "usersInfo": { "forAllDBs": true } }).await.expect("usersInfo")),
        ["admin.hal", "shop.ida", "shop.jo"]
    );
    // Privileges are shown for exact names only, as mongod.
    let refused = admin.run_command(doc! { "usersInfo": 1, "showPrivileges": true }).await.expect_err("not exact");
    assert_eq!(command_code(&refused), Some(20));
    let shown = admin
        .run_command(doc! { "usersInfo": { "user": "ida", "db": "shop" }, "showPrivileges": true })
        .await
        .expect("usersInfo with privileges");
    let ida = shown.get_array("users").ok().and_then(|u| u.first()).and_then(Bson::as_document).expect("ida");
    assert!(ida.get_array("inheritedPrivileges").is_ok_and(|p| !p.is_empty()), "{ida}");
    let updated = admin.run_command(doc! { "updateUser": "nobody", "roles": [] }).await.expect_err("no such user");
    assert_eq!(command_code(&updated), Some(11));
    let dropped = shop.run_command(doc! { "dropAllUsersFromDatabase": 1 }).await.expect("dropAll");
    assert_eq!(dropped.get_i32("n").ok(), Some(2));
    assert_eq!(
        names(admin.run_command(doc! { "usersInfo": { "forAllDBs": true } }).await.expect("usersInfo")),
        ["admin.hal"]
    );
}

#[tokio::test]
async fn iteration_counts_are_settable_at_startup_and_at_runtime() {
    let server = TestServer::start(&["--setParameter", "scramIterationCount=6000"]);
    let admin = server.client("").await.database("admin");
    let got = admin
        .run_command(doc! { "getParameter": 1, "scramIterationCount": 1, "scramSHA256IterationCount": 1 })
        .await
        .expect("get");
    assert_eq!(
        (got.get_i32("scramIterationCount").ok(), got.get_i32("scramSHA256IterationCount").ok()),
        (Some(6000), Some(15_000))
    );
    admin.run_command(doc! { "setParameter": 1, "scramSHA256IterationCount": 20_000 }).await.expect("set");
    let refused =
        admin.run_command(doc! { "setParameter": 1, "scramIterationCount": 100 }).await.expect_err("below the floor");
    assert_eq!(command_code(&refused), Some(2));
    admin.run_command(doc! { "createUser": "kim", "pwd": "pw", "roles": [] }).await.expect("createUser");
    let info = admin.run_command(doc! { "usersInfo": "kim", "showCredentials": true }).await.expect("usersInfo");
    let credentials = info
        .get_array("users")
        .ok()
        .and_then(|u| u.first())
        .and_then(Bson::as_document)
        .and_then(|u| u.get_document("credentials").ok())
        .expect("credentials");
    let iterations = |m: &str| credentials.get_document(m).and_then(|c| c.get_i32("iterationCount")).ok();
    assert_eq!((iterations("SCRAM-SHA-1"), iterations("SCRAM-SHA-256")), (Some(6000), Some(20_000)));
    client_as(&server, "kim", "pw", None)
        .await
        .database("admin")
        .run_command(doc! { "ping": 1 })
        .await
        .expect("authenticated");
}

#[tokio::test]
async fn hostile_credentials_and_payloads_get_clear_errors_and_the_server_keeps_serving() {
    let server = TestServer::start(&[]);
    let admin = server.client("").await.database("admin");
    let code = |r: mongodb::error::Result<Document>| r.err().as_ref().and_then(command_code);
    // A password of 1 MB is stored as keys and authenticates; it never reaches the log.
    let huge = "p".repeat(1 << 20);
    admin.run_command(doc! { "createUser": "big", "pwd": huge.as_str(), "roles": ["root"] }).await.expect("createUser");
    let mut options = mongodb::options::ClientOptions::parse(server.uri("")).await.expect("options");
    options.credential = Some(
        mongodb::options::Credential::builder()
            .username("big".to_owned())
            .password(huge.clone())
            .source("admin".to_owned())
            .mechanism(mongodb::options::AuthMechanism::ScramSha256)
            .build(),
    );
    let big = Client::with_options(options).expect("client");
    big.database("admin").run_command(doc! { "ping": 1 }).await.expect("the 1 MB password authenticates");
    assert!(!server.log_lines().iter().any(|l| l.contains("pppppppppppppppp")), "no password in the log");
    // Names and passwords of the wrong shape.
    assert_eq!(code(admin.run_command(doc! { "createUser": "x", "pwd": 5, "roles": [] }).await), Some(14));
    assert_eq!(code(admin.run_command(doc! { "createUser": 5, "pwd": "pw", "roles": [] }).await), Some(14));
    assert_eq!(code(admin.run_command(doc! { "createUser": "", "pwd": "pw", "roles": [] }).await), Some(2));
    assert_eq!(code(admin.run_command(doc! { "createUser": "x", "pwd": "", "roles": [] }).await), Some(2));
    // Privileges naming an unknown action or a malformed resource.
    let unknown_action = admin
        .run_command(doc! { "createRole": "r", "roles": [],
        "privileges": [{ "resource": { "db": "a", "collection": "" }, "actions": ["fly"] }] })
        .await
        .expect_err("unknown action");
    let ErrorKind::Command(failure) = unknown_action.kind.as_ref() else { panic!("{unknown_action}") };
    assert_eq!((failure.code, failure.message.as_str()), (2, "Unknown action type in privilege set: 'fly'"));
    assert_eq!(
        code(
            admin
                .run_command(doc! { "createRole": "r", "roles": [],
                "privileges": [{ "resource": { "db": 5 }, "actions": ["find"] }] })
                .await
        ),
        Some(2)
    );
    // A malformed first message, and a final message whose nonce is not the conversation's,
    // fail as a wrong password does: the client learns nothing about which part was wrong.
    let binary = |bytes: &[u8]| {
        Bson::Binary(mongodb::bson::Binary {
            subtype: mongodb::bson::spec::BinarySubtype::Generic,
            bytes: bytes.to_vec(),
        })
    };
    let failed = |r: mongodb::error::Result<Document>| match r.map_err(|e| e.kind) {
        Err(kind) => match *kind {
            ErrorKind::Command(e) => Some((e.code, e.message)),
            _ => None,
        },
        Ok(_) => None,
    };
    let expected = Some((18, "Authentication failed.".to_owned()));
    assert_eq!(
        failed(
            admin
                .run_command(doc! { "saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": binary(b"garbage") })
                .await
        ),
        expected
    );
    let one = Client::with_uri_str(server.uri("maxPoolSize=1")).await.expect("client").database("admin");
    let first = one
        .run_command(doc! { "saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": binary(b"n,,n=big,r=abc") })
        .await
        .expect("saslStart");
    let id = first.get("conversationId").cloned().expect("conversationId");
    let foreign = binary(b"c=biws,r=someone-elses-nonce,p=AAAA");
    assert_eq!(
        failed(one.run_command(doc! { "saslContinue": 1, "conversationId": id, "payload": foreign }).await),
        expected
    );
    // The server still serves every client.
    admin.run_command(doc! { "ping": 1 }).await.expect("still serving");
    big.database("admin").run_command(doc! { "ping": 1 }).await.expect("still serving");
}

#[tokio::test]
async fn drivers_authenticate_under_the_strict_stable_api() {
    let server = TestServer::start(&[]);
    server.admin(doc! { "createUser": "api", "pwd": "pw", "roles": ["root"] }).await.expect("createUser");
    let uri = server.uri("authSource=admin").replacen("mongodb://", "mongodb://api:pw@", 1);
    for mechanism in [mongodb::options::AuthMechanism::ScramSha1, mongodb::options::AuthMechanism::ScramSha256] {
        let mut options = mongodb::options::ClientOptions::parse(&uri).await.expect("options");
        if let Some(credential) = options.credential.as_mut() {
            credential.mechanism = Some(mechanism);
        }
        options.server_api = Some(
            mongodb::options::ServerApi::builder().version(mongodb::options::ServerApiVersion::V1).strict(true).build(),
        );
        let client = Client::with_options(options).expect("client");
        client
            .database("admin")
            .run_command(doc! { "ping": 1 })
            .await
            .expect("saslStart and saslContinue are in version 1");
    }
}
