//! Process-level behaviour: connection cap, graceful shutdown, configuration and logging.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{TestServer, op_msg, reply_body};
use mongodb::bson::doc;

fn ping(conn: &mut common::RawConnection, id: i32) -> bool {
    conn.send(&op_msg(id, 0, &doc! { "ping": 1, "$db": "admin" }));
    conn.receive().is_some_and(|m| reply_body(&m).get_f64("ok").ok() == Some(1.0))
}

#[test]
fn server_max_conns_refuses_the_extra_connection() {
    let server = TestServer::start(&["--maxConns", "2"]);
    let mut first = server.raw();
    let mut second = server.raw();
    assert!(ping(&mut first, 1) && ping(&mut second, 2));
    let mut third = server.raw();
    assert!(third.is_closed(), "the third connection must be refused");
    assert!(server.wait_for_log("too many open connections", Duration::from_secs(5)));
    // mongod's line: id 22942 in NETWORK, its message verbatim, the count at the time.
    let refused = server
        .log_lines()
        .into_iter()
        .find(|line| line.contains("too many open connections"))
        .and_then(|line| serde_json::from_str::<serde_json::Value>(&line).ok())
        .unwrap_or_default();
    assert_eq!(refused["id"].as_i64(), Some(22942), "{refused}");
    assert_eq!(refused["c"].as_str(), Some("NETWORK"), "{refused}");
    assert_eq!(refused["msg"].as_str(), Some("Connection refused because there are too many open connections"));
    assert_eq!(refused["attr"]["connectionCount"].as_i64(), Some(2), "{refused}");

    // The slot frees once the server has seen the close: wait for that through the first
    // connection (each poll there is one more request, never one more connection).
    drop(second);
    let current = |conn: &mut common::RawConnection| {
        conn.send(&op_msg(9, 0, &doc! { "serverStatus": 1, "$db": "admin" }));
        let status = reply_body(&conn.receive().expect("serverStatus"));
        status.get_document("connections").and_then(|c| c.get_i64("current")).expect("current")
    };
    assert!(common::eventually(Duration::from_secs(5), || current(&mut first) == 1), "the closed slot is freed");
    let mut again = server.raw();
    again.send(&op_msg(3, 0, &doc! { "serverStatus": 1, "$db": "admin" }));
    let status = reply_body(&again.receive().expect("serverStatus"));
    let connections = status.get_document("connections").expect("connections");
    assert_eq!(connections.get_i64("rejected").ok(), Some(1), "{connections}");
    assert_eq!(connections.get_i64("current").ok(), Some(2), "{connections}");
}

#[test]
fn server_sigterm_shuts_down_cleanly() {
    let mut server = TestServer::start(&[]);
    let mut idle = server.raw();
    assert!(ping(&mut idle, 1));
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    let lines = server.log_lines();
    let position = |needle: &str| lines.iter().position(|l| l.contains(needle));
    let received = position("Received signal").expect("signal line");
    let finished = position("\"Shutting down\"").expect("shutdown line");
    assert!(received < finished);
    assert!(idle.is_closed(), "open connections are closed at shutdown");
}

#[test]
fn server_rejects_bad_configuration_with_named_key() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("monarch.toml");
    std::fs::write(&config, "[net]\nport = 1\nbindIpp = \"x\"\n").expect("write config");
    let config = config.to_str().expect("utf-8 path");
    let output = common::run_to_exit(&["--config", config]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bindIpp"), "{stderr}");

    let output = common::run_to_exit(&["--setParameter", "noSuchParameter=1"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("noSuchParameter"));
}

#[test]
fn server_config_file_and_environment_apply() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("monarch.toml");
    std::fs::write(&config, "[systemLog]\nquiet = true\n[setParameter]\nenableTestCommands = true\n").expect("write");
    let config = config.to_str().expect("utf-8 path").to_owned();
    let server = TestServer::start_in(dir, &["--config", &config, "--wiredTigerJournalCompressor", "zstd"]);
    let mut conn = server.raw();
    conn.send(&op_msg(1, 0, &doc! { "getParameter": 1, "enableTestCommands": 1, "quiet": 1, "$db": "admin" }));
    let reply = reply_body(&conn.receive().expect("reply"));
    assert_eq!(reply.get_bool("enableTestCommands").ok(), Some(true), "{reply}");
    assert_eq!(reply.get_bool("quiet").ok(), Some(true), "{reply}");
    conn.send(&op_msg(2, 0, &doc! { "getLog": "startupWarnings", "$db": "admin" }));
    let warnings = reply_body(&conn.receive().expect("reply"));
    let text = format!("{warnings}");
    assert!(text.contains("wiredTigerJournalCompressor"), "{text}");
    // Quiet: no connection lines.
    assert!(!server.log_lines().iter().any(|l| l.contains("Connection accepted") || l.contains("client metadata")));
}

#[test]
fn server_environment_variables_apply_below_flags() {
    let dir = tempfile::tempdir().expect("dir");
    let env = [("MONARCH_SET_PARAMETER", "enableTestCommands=1"), ("MONARCH_MAX_CONNS", "7"), ("MONARCH_PORT", "1")];
    // `--port 0` (a flag) beats MONARCH_PORT; the other variables apply.
    let server = TestServer::start_with_env(dir, &env, &[]);
    let mut conn = server.raw();
    conn.send(&op_msg(1, 0, &doc! { "getCmdLineOpts": 1, "$db": "admin" }));
    let reply = reply_body(&conn.receive().expect("reply"));
    let parsed = reply.get_document("parsed").expect("parsed");
    let net = parsed.get_document("net").expect("net");
    assert_eq!(net.get_i64("maxIncomingConnections").ok(), Some(7), "{parsed}");
    assert_eq!(net.get_i32("port").ok(), Some(0), "{parsed}");
    let parameters = parsed.get_document("setParameter").expect("setParameter");
    assert_eq!(parameters.get_str("enableTestCommands").ok(), Some("1"), "{parsed}");
}

/// `.env.example` as a compose `env_file:` or `docker run --env-file` passes it: every line
/// that sets a variable. The server must start with it (flags still choose the port, the data
/// directory and the admin port), as it would in a container.
#[test]
fn server_starts_with_every_variable_of_the_env_example() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example")).expect(".env.example");
    let env: Vec<(&str, &str)> =
        text.lines().filter(|line| !line.starts_with('#')).filter_map(|line| line.split_once('=')).collect();
    assert!(env.len() > 15, "{env:?}");
    let server = TestServer::start_with_env(tempfile::tempdir().expect("dir"), &env, &[]);
    let mut conn = server.raw();
    conn.send(&op_msg(1, 0, &doc! { "ping": 1, "$db": "admin" }));
    let reply = reply_body(&conn.receive().expect("reply"));
    assert_eq!(reply.get_f64("ok").ok(), Some(1.0), "{reply}");
}

#[test]
fn server_logpath_writes_json_lines() {
    let dir = tempfile::tempdir().expect("dir");
    let logpath = dir.path().join("monarch.log");
    std::fs::write(&logpath, "old contents\n").expect("old log");
    let dbpath = dir.path().join("db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_monarchd"))
        .args(["--port", "0", "--adminPort", "0", "--dbpath"])
        .arg(&dbpath)
        .arg("--logpath")
        .arg(&logpath)
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut text = String::new();
    while std::time::Instant::now() < deadline && !text.contains("Waiting for connections") {
        std::thread::sleep(Duration::from_millis(50));
        text = std::fs::read_to_string(&logpath).unwrap_or_default();
    }
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let status = child.wait().expect("wait");
    assert!(status.success());
    let text = std::fs::read_to_string(&logpath).expect("log");
    assert!(!text.contains("old contents"), "the old log is renamed aside without --logappend");
    for line in text.lines() {
        let parsed: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
        for field in ["t", "s", "c", "id", "ctx", "msg"] {
            assert!(parsed.get(field).is_some(), "{field} missing in {line}");
        }
    }
    let aside = std::fs::read_dir(dir.path()).expect("dir").filter_map(Result::ok);
    assert!(aside.into_iter().any(|e| e.file_name().to_string_lossy().starts_with("monarch.log.")));
}

#[test]
fn validate_config_prints_the_effective_settings_masks_secrets_and_names_a_bad_key() {
    let dir = tempfile::tempdir().expect("dir");
    let token = dir.path().join("token");
    std::fs::write(&token, "admin-token-secret\n").expect("token");
    let config = dir.path().join("monarch.toml");
    std::fs::write(&config, "[net]\nport = 27999\n\n[operationProfiling]\nslowOpThresholdMs = 250\n").expect("config");
    let dbpath = dir.path().join("never-created");
    let output = Command::new(env!("CARGO_BIN_EXE_monarchd"))
        .env("MONGO_INITDB_ROOT_USERNAME", "admin")
        .env("MONGO_INITDB_ROOT_PASSWORD", "root-password-secret")
        .arg("--validate-config")
        .arg("--config")
        .arg(&config)
        .arg("--dbpath")
        .arg(&dbpath)
        .arg("--adminTokenFile")
        .arg(&token)
        .args(["--maxConnsPerIP", "5"])
        .output()
        .expect("run monarchd");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout} {}", String::from_utf8_lossy(&output.stderr));
    let effective: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    // The file, the flags, the variables and the defaults, merged.
    assert_eq!(effective.pointer("/net/port"), Some(&serde_json::json!(27999)), "{effective}");
    assert_eq!(effective.pointer("/operationProfiling/slowOpThresholdMs"), Some(&serde_json::json!(250)));
    assert_eq!(effective.pointer("/net/maxConnsPerIP"), Some(&serde_json::json!(5)));
    assert_eq!(effective.pointer("/storage/dbPath").and_then(|v| v.as_str()), dbpath.to_str());
    assert_eq!(effective.pointer("/security/authorization"), Some(&serde_json::json!("enabled")));
    assert_eq!(effective.pointer("/security/initdbRootUser/user"), Some(&serde_json::json!("admin")));
    assert_eq!(effective.pointer("/net/compression/compressors"), Some(&serde_json::json!("snappy,zstd,zlib")));
    // Secrets are masked; nothing is started or created.
    assert!(!stdout.contains("secret"), "{stdout}");
    assert_eq!(effective.pointer("/net/adminToken"), Some(&serde_json::json!("********")));
    assert!(!dbpath.exists(), "--validate-config created the data directory");

    let bad = Command::new(env!("CARGO_BIN_EXE_monarchd"))
        .args(["--validate-config", "--profile", "7"])
        .output()
        .expect("run monarchd");
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr).trim(),
        "monarchd: invalid value for operationProfiling.mode: profile level 7 is not 0, 1 or 2"
    );
    assert!(bad.stdout.is_empty());
}

#[tokio::test]
async fn sighup_reloads_runtime_settings_lists_the_rest_and_keeps_all_on_a_bad_file() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("monarch.toml");
    std::fs::write(&config, "[operationProfiling]\nslowOpThresholdMs = 100\n").expect("config");
    let config_arg = config.to_str().expect("path").to_owned();
    let server = TestServer::start_in(dir, &["--config", &config_arg]);
    let reloads = |server: &TestServer, word: &str| server.log_lines().iter().filter(|l| l.contains(word)).count();
    let parameter = |name: &'static str| {
        let server = &server;
        async move {
            let reply = server.admin(doc! { "getParameter": 1, name: 1 }).await.expect("getParameter");
            reply.get(name).cloned().expect("the parameter")
        }
    };

    std::fs::write(
        &config,
        "[systemLog]\nverbosity = 2\n[systemLog.component.storage.journal]\nverbosity = 3\n\
         [operationProfiling]\nmode = \"slowOp\"\nslowOpThresholdMs = 5\nslowOpSampleRate = 0.5\n\
         [setParameter]\ncursorTimeoutMillis = 1234\n[net]\nmaxIncomingConnections = 50\n",
    )
    .expect("config");
    server.signal("HUP");
    assert!(common::eventually(Duration::from_secs(5), || reloads(&server, "Configuration reloaded") == 1));
    let line = server.log_lines().into_iter().find(|l| l.contains("Configuration reloaded")).expect("the line");
    let line: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(
        line.pointer("/attr/needsRestart").and_then(|v| v.as_str()),
        Some("net.maxIncomingConnections"),
        "{line}"
    );
    let changed = line.pointer("/attr/changed").and_then(|v| v.as_str()).unwrap_or_default();
    for key in [
        "systemLog.verbosity",
        "systemLog.component.storage.journal.verbosity",
        "operationProfiling.mode",
        "operationProfiling.slowOpThresholdMs",
        "operationProfiling.slowOpSampleRate",
        "setParameter.cursorTimeoutMillis",
    ] {
        assert!(changed.contains(key), "{key} missing from {changed}");
    }
    assert_eq!(parameter("logLevel").await, mongodb::bson::Bson::Int32(2));
    let components = parameter("logComponentVerbosity").await;
    let journal = components.as_document().and_then(|d| d.get_document("storage").ok()).expect("storage");
    assert_eq!(journal.get_document("journal").expect("journal").get_i32("verbosity").ok(), Some(3));
    assert_eq!(parameter("cursorTimeoutMillis").await, mongodb::bson::Bson::Int64(1234));
    let client = server.client("").await;
    let profile = client.database("app").run_command(doc! { "profile": -1 }).await.expect("profile");
    assert_eq!(profile.get_i32("was").ok(), Some(1), "{profile}");
    assert_eq!(profile.get_i32("slowms").ok(), Some(5), "{profile}");
    assert_eq!(profile.get_f64("sampleRate").ok(), Some(0.5), "{profile}");
    let (status, body) = server.http_get("/config");
    assert_eq!(status, 200);
    let shown: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(shown.pointer("/operationProfiling/slowOpThresholdMs"), Some(&serde_json::json!(5)), "{shown}");
    assert_eq!(shown.pointer("/net/maxIncomingConnections"), Some(&serde_json::json!(1_000_000)), "still the start's");
    assert_eq!(shown.pointer("/pendingRestart"), Some(&serde_json::json!(["net.maxIncomingConnections"])));

    // A file that no longer validates changes nothing.
    std::fs::write(&config, "[operationProfiling]\nmode = \"sometimes\"\n").expect("config");
    server.signal("HUP");
    assert!(common::eventually(Duration::from_secs(5), || reloads(&server, "Configuration reload failed") == 1));
    assert_eq!(parameter("logLevel").await, mongodb::bson::Bson::Int32(2));

    // Keys the file no longer names return to their defaults; a component inherits again.
    std::fs::write(&config, "").expect("config");
    server.signal("HUP");
    assert!(common::eventually(Duration::from_secs(5), || reloads(&server, "Configuration reloaded") == 2));
    assert_eq!(parameter("logLevel").await, mongodb::bson::Bson::Int32(0));
    let components = parameter("logComponentVerbosity").await;
    let journal = components.as_document().and_then(|d| d.get_document("storage").ok()).expect("storage");
    assert_eq!(journal.get_document("journal").expect("journal").get_i32("verbosity").ok(), Some(-1));
    let profile = client.database("app").run_command(doc! { "profile": -1 }).await.expect("profile");
    assert_eq!(profile.get_i32("was").ok(), Some(0), "{profile}");
    assert_eq!(profile.get_i32("slowms").ok(), Some(100), "{profile}");
}
