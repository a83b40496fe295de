//! Handshake and admin commands through the official Rust driver.

mod common;

use common::TestServer;
use mongodb::bson::{Bson, doc};
use mongodb::error::ErrorKind;

fn command_error(error: &mongodb::error::Error) -> Option<(i32, String, String)> {
    match error.kind.as_ref() {
        ErrorKind::Command(e) => Some((e.code, e.code_name.clone(), e.message.clone())),
        _ => None,
    }
}

#[tokio::test]
async fn handshake_ping_hello_build_info() {
    let server = TestServer::start(&[]);
    assert_eq!(server.admin(doc! { "ping": 1 }).await.expect("ping").get_f64("ok").ok(), Some(1.0));

    let hello = server.admin(doc! { "hello": 1 }).await.expect("hello");
    assert_eq!(hello.get_bool("isWritablePrimary").ok(), Some(true));
    assert_eq!(hello.get_i32("maxBsonObjectSize").ok(), Some(16 * 1024 * 1024));
    assert_eq!(hello.get_i32("maxMessageSizeBytes").ok(), Some(48_000_000));
    assert_eq!(hello.get_i32("maxWriteBatchSize").ok(), Some(100_000));
    assert_eq!(hello.get_i32("logicalSessionTimeoutMinutes").ok(), Some(30));
    assert_eq!(hello.get_i32("minWireVersion").ok(), Some(0));
    assert_eq!(hello.get_i32("maxWireVersion").ok(), Some(21));
    assert_eq!(hello.get_bool("readOnly").ok(), Some(false));
    assert!(hello.get_datetime("localTime").is_ok(), "{hello}");
    assert!(hello.get_i32("connectionId").is_ok_and(|id| id > 0), "{hello}");
    assert!(!hello.contains_key("topologyVersion"));

    let legacy = server.admin(doc! { "isMaster": 1, "helloOk": true }).await.expect("isMaster");
    assert_eq!(legacy.get_bool("ismaster").ok(), Some(true));
    assert_eq!(legacy.get_bool("helloOk").ok(), Some(true));

    let build = server.admin(doc! { "buildInfo": 1 }).await.expect("buildInfo");
    assert!(build.get_str("version").is_ok_and(|v| v.starts_with("7.0.")), "{build}");
    assert_eq!(build.get_array("versionArray").map(Vec::len).ok(), Some(4));
    assert!(build.get_document("monarch").and_then(|m| m.get_str("version")).is_ok(), "{build}");
}

#[tokio::test]
async fn handshake_list_commands_and_unknown_command() {
    let server = TestServer::start(&[]);
    let list = server.admin(doc! { "listCommands": 1 }).await.expect("listCommands");
    let commands = list.get_document("commands").expect("commands");
    for name in ["hello", "isMaster", "ping", "buildInfo", "serverStatus", "endSessions", "listCommands"] {
        assert!(commands.contains_key(name), "listCommands lacks {name}");
    }

    // One connection throughout: the error must leave it open and serving.
    let client = server.client("maxPoolSize=1").await;
    let admin = client.database("admin");
    let connection_id = |hello: mongodb::bson::Document| hello.get_i32("connectionId").expect("connectionId");
    let before = connection_id(admin.run_command(doc! { "hello": 1 }).await.expect("hello"));
    let error = admin.run_command(doc! { "atlasVersion": 1 }).await.expect_err("atlasVersion must fail");
    let (code, name, message) = command_error(&error).expect("command error");
    assert_eq!((code, name.as_str(), message.as_str()), (59, "CommandNotFound", "no such command: 'atlasVersion'"));
    let after = connection_id(admin.run_command(doc! { "hello": 1 }).await.expect("hello after the error"));
    assert_eq!(after, before, "the same connection answers after the error");
}

#[tokio::test]
async fn handshake_each_compressor_connects() {
    let server = TestServer::start(&[]);
    for compressor in ["snappy", "zlib", "zstd"] {
        let client = server.client(&format!("compressors={compressor}")).await;
        let reply = client.database("admin").run_command(doc! { "ping": 1 }).await;
        assert!(reply.is_ok(), "{compressor}: {reply:?}");
        // A larger reply goes through the compressor too.
        let status = client.database("admin").run_command(doc! { "serverStatus": 1 }).await.expect("serverStatus");
        let stats = status
            .get_document("network")
            .and_then(|n| n.get_document("compression"))
            .and_then(|c| c.get_document(compressor))
            .expect("compression stats")
            .clone();
        // The ping request was decompressed and its reply compressed with this compressor.
        let count = |side: &str, field: &str| stats.get_document(side).and_then(|d| d.get_i64(field)).unwrap_or(0);
        assert!(count("decompressor", "bytesOut") > 0, "{compressor}: {stats}");
        assert!(count("compressor", "bytesIn") > 0, "{compressor}: {stats}");
    }
}

#[tokio::test]
async fn handshake_admin_commands_report_real_values() {
    let server = TestServer::start(&["--setParameter", "enableTestCommands=1"]);
    let client = server.client("appName=handshake-test").await;
    let admin = client.database("admin");
    admin.run_command(doc! { "ping": 1 }).await.expect("ping");

    let status = admin.run_command(doc! { "serverStatus": 1 }).await.expect("serverStatus");
    assert_eq!(status.get_str("process").ok(), Some("mongod"));
    assert_eq!(status.get_i64("pid").ok(), Some(i64::from(status.get_i64("pid").unwrap_or(-1) as i32)));
    let connections = status.get_document("connections").expect("connections");
    assert!(connections.get_i64("current").is_ok_and(|n| n >= 1), "{connections}");
    assert!(connections.get_i64("totalCreated").is_ok_and(|n| n >= 1), "{connections}");
    let network = status.get_document("network").expect("network");
    assert!(network.get_i64("bytesIn").is_ok_and(|n| n > 0), "{network}");
    assert!(network.get_i64("bytesOut").is_ok_and(|n| n > 0), "{network}");
    assert!(network.get_i64("numRequests").is_ok_and(|n| n >= 2), "{network}");
    let commands = status.get_document("opcounters").and_then(|o| o.get_i64("command")).expect("opcounters");
    assert!(commands >= 2, "{status}");

    let parameters = admin.run_command(doc! { "getParameter": "*" }).await.expect("getParameter");
    assert_eq!(parameters.get_bool("enableTestCommands").ok(), Some(true));
    let fcv = admin.run_command(doc! { "getParameter": 1, "featureCompatibilityVersion": 1 }).await.expect("fcv");
    assert_eq!(fcv.get_document("featureCompatibilityVersion").and_then(|f| f.get_str("version")).ok(), Some("7.0"));
    let error = admin.run_command(doc! { "getParameter": 1, "noSuchThing": 1 }).await.expect_err("unknown parameter");
    assert_eq!(command_error(&error).map(|e| e.0), Some(72));

    let opts = admin.run_command(doc! { "getCmdLineOpts": 1 }).await.expect("getCmdLineOpts");
    assert!(opts.get_array("argv").is_ok_and(|argv| argv.contains(&Bson::from("--setParameter"))), "{opts}");
    assert!(opts.get_document("parsed").and_then(|p| p.get_document("net")).is_ok(), "{opts}");

    let log = admin.run_command(doc! { "getLog": "global" }).await.expect("getLog");
    let lines = log.get_array("log").expect("log lines");
    assert!(log.get_i64("totalLinesWritten").is_ok_and(|n| n as usize >= lines.len()));
    // The connection's own client metadata line is there, in mongod's JSON shape.
    let metadata_line = lines
        .iter()
        .filter_map(Bson::as_str)
        .find(|l| l.contains("\"client metadata\"") && l.contains("handshake-test"))
        .expect("client metadata line");
    let parsed: serde_json::Value = serde_json::from_str(metadata_line).expect("JSON log line");
    assert_eq!(parsed["c"], "NETWORK");
    assert_eq!(parsed["s"], "I");
    let warnings = admin.run_command(doc! { "getLog": "startupWarnings" }).await.expect("startupWarnings");
    assert!(warnings.get_array("log").is_ok_and(|l| !l.is_empty()), "{warnings}");

    let uri = admin.run_command(doc! { "whatsmyuri": 1 }).await.expect("whatsmyuri");
    assert!(uri.get_str("you").is_ok_and(|you| you.starts_with("127.0.0.1:")), "{uri}");
    let status = admin.run_command(doc! { "connectionStatus": 1 }).await.expect("connectionStatus");
    assert!(status.get_document("authInfo").is_ok(), "{status}");
    let host = admin.run_command(doc! { "hostInfo": 1 }).await.expect("hostInfo");
    assert!(host.get_document("system").and_then(|s| s.get_i32("numCores")).is_ok_and(|n| n >= 1), "{host}");
}

#[tokio::test]
async fn handshake_session_commands() {
    let server = TestServer::start(&[]);
    let client = server.client("").await;
    let admin = client.database("admin");
    let started = admin.run_command(doc! { "startSession": 1 }).await.expect("startSession");
    let id = started.get_document("id").expect("id").clone();
    assert_eq!(started.get_i32("timeoutMinutes").ok(), Some(30));
    admin.run_command(doc! { "refreshSessions": [id.clone()] }).await.expect("refreshSessions");
    admin.run_command(doc! { "killSessions": [id.clone()] }).await.expect("killSessions");
    admin.run_command(doc! { "endSessions": [id] }).await.expect("endSessions");
    admin.run_command(doc! { "killAllSessions": [] }).await.expect("killAllSessions");
    // A driver-side session is accepted and ended on shutdown of the client.
    let mut session = client.start_session().await.expect("session");
    admin.run_command(doc! { "ping": 1 }).session(&mut session).await.expect("ping in session");
    drop(session);
    client.shutdown().await;
    let error = server.admin(doc! { "endSessions": "x" }).await.expect_err("wrong type");
    assert_eq!(command_error(&error).map(|e| e.1), Some("TypeMismatch".to_owned()));
}
