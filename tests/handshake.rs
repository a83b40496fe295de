//! Handshake and admin commands through the official Rust driver.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, header_field, op_msg, reply_body};
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
    let version = hello.get_document("topologyVersion").expect("topologyVersion, as mongod");
    assert!(version.get_object_id("processId").is_ok() && version.get_i64("counter").ok() == Some(0), "{version}");

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

/// `hello` with `extra` fields over a raw connection, and its reply.
#[expect(clippy::expect_used, reason = "a closed connection must fail the test loudly")]
fn raw_hello(conn: &mut common::RawConnection, id: i32, extra: mongodb::bson::Document) -> mongodb::bson::Document {
    let mut body = doc! { "hello": 1, "$db": "admin" };
    body.extend(extra);
    conn.send(&op_msg(id, 0, &body));
    reply_body(&conn.receive().expect("reply"))
}

#[test]
fn awaitable_hello_waits_then_answers_and_checks_its_arguments_as_mongod() {
    let server = TestServer::start(&["--slowms", "50"]);
    let mut conn = server.raw();
    let version = raw_hello(&mut conn, 1, doc! {}).get_document("topologyVersion").expect("version").clone();

    // The same process and counter: the reply waits for maxAwaitTimeMS (no change comes).
    let started = Instant::now();
    let waited = raw_hello(&mut conn, 2, doc! { "topologyVersion": version.clone(), "maxAwaitTimeMS": 300 });
    assert_eq!(waited.get_f64("ok").ok(), Some(1.0), "{waited}");
    assert!(started.elapsed() >= Duration::from_millis(250), "answered after {:?}", started.elapsed());
    // The wait is the client's, not slow work: no slow-query line for it (ping orders the log).
    conn.send(&op_msg(3, 0, &doc! { "ping": 1, "$db": "admin" }));
    conn.receive().expect("ping");
    assert!(
        !server.log_lines().iter().any(|l| l.contains("Slow query") && l.contains("hello")),
        "slow-query line for the wait"
    );

    // Another process's id (the server restarted): answered at once, even with a larger counter.
    let other = doc! { "processId": mongodb::bson::oid::ObjectId::new(), "counter": 7_i64 };
    let started = Instant::now();
    let reply = raw_hello(&mut conn, 4, doc! { "topologyVersion": other, "maxAwaitTimeMS": 60_000 });
    assert_eq!(reply.get_f64("ok").ok(), Some(1.0), "{reply}");
    assert!(started.elapsed() < Duration::from_secs(30), "waited for another process's counter");

    let process = version.get_object_id("processId").expect("processId");
    let cases: Vec<(mongodb::bson::Document, i32)> = vec![
        (doc! { "topologyVersion": { "processId": process, "counter": 1_i64 }, "maxAwaitTimeMS": 0 }, 31382),
        (doc! { "topologyVersion": "topology_version_string", "maxAwaitTimeMS": 0 }, 10065),
        (doc! { "topologyVersion": { "processId": "pid1", "counter": 0_i64 }, "maxAwaitTimeMS": 0 }, 14),
        (doc! { "topologyVersion": { "processId": process, "counter": 0 }, "maxAwaitTimeMS": 0 }, 14),
        (doc! { "topologyVersion": { "processId": process }, "maxAwaitTimeMS": 0 }, 40414),
        (doc! { "topologyVersion": { "counter": 0_i64 }, "maxAwaitTimeMS": 0 }, 40414),
        (doc! { "topologyVersion": { "processId": process, "counter": -1_i64 }, "maxAwaitTimeMS": 0 }, 31372),
        (
            doc! { "topologyVersion": { "processId": process, "counter": 0_i64, "randomField": 1 }, "maxAwaitTimeMS": 0 },
            40415,
        ),
        (doc! { "topologyVersion": version.clone() }, 31368),
        (doc! { "maxAwaitTimeMS": 0 }, 31368),
        (doc! { "topologyVersion": version.clone(), "maxAwaitTimeMS": "string" }, 14),
        (doc! { "topologyVersion": version.clone(), "maxAwaitTimeMS": -1 }, 31373),
        (doc! { "awaitable": true }, 5135800),
        (doc! { "awaitable": true, "topologyVersion": version.clone() }, 5135801),
        (doc! { "awaitable": true, "maxAwaitTimeMS": 0 }, 5135800),
    ];
    for (id, (extra, code)) in (10..).zip(cases) {
        let shown = format!("{extra}");
        let reply = raw_hello(&mut conn, id, extra);
        assert_eq!(reply.get_i32("code").ok(), Some(code), "{shown}: {reply}");
    }
    let fine = raw_hello(&mut conn, 99, doc! { "awaitable": true, "topologyVersion": version, "maxAwaitTimeMS": 0 });
    assert_eq!(fine.get_f64("ok").ok(), Some(1.0), "{fine}");
}

#[test]
fn exhaust_hello_streams_replies_with_more_to_come_until_the_server_shuts_down() {
    const EXHAUST_ALLOWED: u32 = 1 << 16;
    const MORE_TO_COME: i32 = 1 << 1;
    let mut server = TestServer::start(&[]);
    let mut conn = server.raw();
    let version = raw_hello(&mut conn, 1, doc! {}).get_document("topologyVersion").expect("version").clone();
    let body = doc! { "hello": 1, "$db": "admin", "topologyVersion": version, "maxAwaitTimeMS": 100 };
    conn.send(&op_msg(2, EXHAUST_ALLOWED, &body));
    let first = conn.receive().expect("first reply");
    assert_eq!(header_field(&first, 8), 2, "the first reply answers the request");
    assert_eq!(header_field(&first, 16) & MORE_TO_COME, MORE_TO_COME, "moreToCome: a stream");
    // The next ones come without a request, each answering the one before.
    let mut previous = first;
    for _ in 0..2 {
        let next = conn.receive().expect("streamed reply");
        assert_eq!(header_field(&next, 8), header_field(&previous, 4), "responseTo is the previous reply");
        assert_eq!(header_field(&next, 16) & MORE_TO_COME, MORE_TO_COME);
        assert_eq!(reply_body(&next).get_f64("ok").ok(), Some(1.0));
        previous = next;
    }

    // An awaitable hello waiting for a minute answers at shutdown, and the server exits.
    let mut waiting = server.raw();
    let version = raw_hello(&mut waiting, 1, doc! {}).get_document("topologyVersion").expect("version").clone();
    waiting.send(&op_msg(
        2,
        0,
        &doc! { "hello": 1, "$db": "admin", "topologyVersion": version, "maxAwaitTimeMS": 60_000 },
    ));
    let mut observer = server.raw();
    let in_wait = common::eventually(Duration::from_secs(10), || {
        observer.send(&op_msg(1, 0, &doc! { "currentOp": 1, "$all": true, "$db": "admin" }));
        let ops = reply_body(&observer.receive().expect("currentOp"));
        ops.get_array("inprog").is_ok_and(|ops| {
            ops.iter().any(|op| {
                op.as_document()
                    .and_then(|op| op.get_document("command").ok())
                    .is_some_and(|command| command.get_i32("maxAwaitTimeMS").ok() == Some(60_000))
            })
        })
    });
    assert!(in_wait, "the awaitable hello is waiting");
    let stopping = Instant::now();
    server.signal_terminate();
    let answer = reply_body(&waiting.receive().expect("an answer at shutdown"));
    assert_eq!(answer.get_i32("code").ok(), Some(91), "ShutdownInProgress: {answer}");
    assert!(answer.get_document("topologyVersion").is_ok_and(|v| v.get_i64("counter").ok() == Some(1)), "{answer}");
    assert!(server.wait_exit().success());
    assert!(stopping.elapsed() < Duration::from_secs(30), "shutdown waited out maxAwaitTimeMS");
}
