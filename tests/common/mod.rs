//! Starts a real `monarchd` on a free port with its own temporary data directory, and stops it
//! (and removes the directory) when dropped.

#![allow(dead_code, reason = "each test binary uses a different part of this helper")]
#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

pub mod otlp_receiver;
pub mod pipeline;
pub mod s3;
pub mod tools;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mongodb::Client;
use mongodb::bson::Document;

/// How long a raw connection waits for a reply.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`RawConnection::is_closed`] waits for the server to close: a close follows a bad
/// frame at once, so this only bounds how long a hanging server takes to fail a test.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A running server process.
pub struct TestServer {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    /// The admin HTTP server's port (`None` when started with `--adminPort disabled`).
    pub admin_port: Option<u16>,
    /// Its data and scratch directory.
    pub dir: tempfile::TempDir,
    lines: Arc<Mutex<Vec<String>>>,
}

impl TestServer {
    /// Starts a server with `args` added to `--port 0 --dbpath <tmp>` (and `--adminPort 0`
    /// unless `args` set it: many servers run at once).
    pub fn start(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, args)
    }

    /// Starts a server in an existing directory (for tests that put files there first).
    pub fn start_in(dir: tempfile::TempDir, args: &[&str]) -> Self {
        Self::start_with_env(dir, &[], args)
    }

    /// Starts a server with extra environment variables.
    pub fn start_with_env(dir: tempfile::TempDir, env: &[(&str, &str)], args: &[&str]) -> Self {
        let dbpath = dir.path().join("db");
        let admin_port: &[&str] = if args.contains(&"--adminPort") { &[] } else { &["--adminPort", "0"] };
        let engine = postgres_engine_args(&dbpath, args);
        let mut child = Command::new(env!("CARGO_BIN_EXE_monarchd"))
            .envs(env.iter().copied())
            .args(["--port", "0", "--dbpath"])
            .arg(&dbpath)
            .args(admin_port)
            .args(&engine)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn monarchd");
        let stdout = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let sink = lines.clone();
        std::thread::spawn(move || {
            // The admin server's line comes first; both ports are sent together.
            let mut admin_port = None;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("\"Admin HTTP server listening\"") {
                    let parsed: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                    admin_port = parsed.pointer("/attr/port").and_then(serde_json::Value::as_u64).map(|p| p as u16);
                }
                if line.contains("\"Waiting for connections\"") {
                    let parsed: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                    let port = parsed.pointer("/attr/port").and_then(serde_json::Value::as_u64).unwrap_or(0);
                    let _ = port_tx.send((port as u16, admin_port));
                }
                sink.lock().expect("log lines").push(line);
            }
        });
        let (port, admin_port) = match port_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(ports) => ports,
            Err(_) => {
                let _ = child.kill();
                panic!("server did not start; log: {:?}", lines.lock().expect("log lines"));
            }
        };
        Self { child, port, admin_port, dir, lines }
    }

    /// `mongodb://127.0.0.1:<port>/?<options>`.
    pub fn uri(&self, options: &str) -> String {
        let separator = if options.is_empty() { "" } else { "&" };
        format!("mongodb://127.0.0.1:{}/?serverSelectionTimeoutMS=5000{separator}{options}", self.port)
    }

    /// A replica set of one: started with `--replSet rs0` and `args`, and initiated with this
    /// server (`127.0.0.1:<port>`) as its member.
    pub fn member(args: &[&str]) -> Self {
        Self::member_with_env(&[], args)
    }

    /// As [`TestServer::member`], with extra environment variables.
    pub fn member_with_env(env: &[(&str, &str)], args: &[&str]) -> Self {
        let mut all = vec!["--replSet", "rs0"];
        all.extend_from_slice(args);
        let server = Self::start_with_env(tempfile::tempdir().expect("temp dir"), env, &all);
        let config = mongodb::bson::doc! {
            "_id": "rs0", "version": 1, "members": [{ "_id": 0, "host": format!("127.0.0.1:{}", server.port) }],
        };
        let reply = command(&server, mongodb::bson::doc! { "replSetInitiate": config, "$db": "admin" });
        assert_eq!(reply.get_f64("ok").ok(), Some(1.0), "replSetInitiate: {reply}");
        server
    }

    /// A driver client with `options` in its URI.
    pub async fn client(&self, options: &str) -> Client {
        Client::with_uri_str(self.uri(options)).await.expect("client")
    }

    /// Runs `command` on `admin` through a fresh default client.
    pub async fn admin(&self, command: Document) -> mongodb::error::Result<Document> {
        self.client("").await.database("admin").run_command(command).await
    }

    /// The log lines written so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.lines.lock().expect("log lines").clone()
    }

    /// Waits until a log line contains `needle`, up to `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log_lines().iter().any(|l| l.contains(needle)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Stops the server with SIGTERM and starts a new one on the same data directory.
    pub fn restart(mut self, args: &[&str]) -> Self {
        assert!(self.terminate().success(), "clean shutdown");
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        Self::start_in(dir, args)
    }

    /// Kills the server with SIGKILL (a crash) and starts a new one on the same directory.
    pub fn crash_and_restart(self, args: &[&str]) -> Self {
        Self::start_in(self.crash(), args)
    }

    /// Kills the server with SIGKILL (a crash), waits for it to be gone and hands back its
    /// directory, for a restart once the test has seen its clients fail.
    pub fn crash(mut self) -> tempfile::TempDir {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait");
        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"))
    }

    /// Sends SIGTERM without waiting (the server begins its drain).
    pub fn signal_terminate(&self) {
        self.signal("TERM");
    }

    /// Sends the server signal `name` (`HUP`, `USR1`, ...).
    pub fn signal(&self, name: &str) {
        let _ = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status();
    }

    /// Waits for the process to exit, up to 20 s.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `GET path` on the admin HTTP port: the status code and the body.
    pub fn http_get(&self, path: &str) -> (u16, String) {
        let port = self.admin_port.expect("the admin HTTP port is enabled");
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the admin port");
        stream.set_read_timeout(Some(READ_TIMEOUT)).expect("timeout");
        write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").expect("request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("response");
        let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status line");
        let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
        (status, body)
    }

    /// The server's peak resident memory so far (`VmHWM` in `/proc`), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("process status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory now (`VmRSS` in `/proc`), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("process status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// The server's open file descriptors now (entries of `/proc/<pid>/fd`).
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).expect("fd directory").count()
    }

    /// The value of the unlabeled metric `name` in `/metrics`, if present.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = self.http_get("/metrics");
        body.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// A raw TCP connection to the server.
    pub fn raw(&self) -> RawConnection {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream.set_read_timeout(Some(READ_TIMEOUT)).expect("timeout");
        RawConnection { stream }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The PostgreSQL server the suite runs against instead of the embedded engine, when set
/// (`.ci/run` starts one and runs the suite a second time with it).
pub const TEST_PG_URI: &str = "MONARCH_TEST_PG_URI";

/// With [`TEST_PG_URI`] set, the flags that put a server's data in a database of its own on
/// that PostgreSQL server: named after `dbpath` (a restart on the same directory finds its
/// data again) and created if missing. Nothing when the variable is unset, when `args` choose
/// the engine themselves, or when `dbpath` holds an embedded engine already (what `monarchd
/// restore --from` writes: a backup taken on PostgreSQL restores to such a directory).
fn postgres_engine_args(dbpath: &std::path::Path, args: &[&str]) -> Vec<String> {
    let Ok(server) = std::env::var(TEST_PG_URI) else { return Vec::new() };
    if args.contains(&"--storageEngine") || dbpath.join("engine").exists() {
        return Vec::new();
    }
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&dbpath, &mut hasher);
    let name = format!("monarch_test_{:016x}", std::hash::Hasher::finish(&hasher));
    // On a thread of its own: the blocking client runs a runtime, which an async test's
    // thread must not start.
    let (admin_uri, database) = (server.clone(), name.clone());
    std::thread::spawn(move || {
        let mut admin = postgres::Client::connect(&admin_uri, postgres::NoTls).expect("connect to the test PostgreSQL");
        let exists =
            admin.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&database]).expect("pg_database");
        if exists.is_none() {
            admin.batch_execute(&format!("CREATE DATABASE {database}")).expect("create the test database");
        }
    })
    .join()
    .expect("the test database");
    // The URI names a database last (postgresql://user@host:port/database): this one instead.
    let (server, _) = server.rsplit_once('/').expect("a database in MONARCH_TEST_PG_URI");
    vec!["--storageEngine".into(), "postgres".into(), "--pgUri".into(), format!("{server}/{name}")]
}

/// A new, empty database on the test PostgreSQL server (named after `name` and this
/// process), as a `--pgUri`; `None` without [`TEST_PG_URI`] (the caller's test skips).
pub fn new_pg_database(name: &str) -> Option<String> {
    let Ok(server) = std::env::var(TEST_PG_URI) else {
        eprintln!("skipped: {TEST_PG_URI} is not set (.ci/postgres-tests sets it)");
        return None;
    };
    let database = format!("monarch_{name}_{}", std::process::id());
    let admin_uri = server.clone();
    let created = database.clone();
    // On a thread of its own: the blocking client runs a runtime of its own.
    std::thread::spawn(move || {
        let mut admin = postgres::Client::connect(&admin_uri, postgres::NoTls).expect("connect");
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {created}")).expect("drop");
        admin.batch_execute(&format!("CREATE DATABASE {created}")).expect("create");
    })
    .join()
    .expect("the test database");
    let (base, _) = server.rsplit_once('/').expect("a database in MONARCH_TEST_PG_URI");
    Some(format!("{base}/{database}"))
}

/// Polls `check` every 20 ms until it holds, up to `timeout`; returns whether it held.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`eventually`] for an async check.
pub async fn eventually_async<F: Future<Output = bool>>(timeout: Duration, mut check: impl FnMut() -> F) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How long a `monarchd` expected to stop at startup may take before the test fails.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `monarchd` with `args` until it exits, for tests of a startup that must fail. Unless
/// `args` set them, it gets `--port 0`, `--adminPort 0` and a `--dbpath` in a temporary
/// directory, so a startup that wrongly succeeds binds no fixed port and writes nothing into
/// the working directory; it is killed, and the test fails, if it is still running after
/// [`EXIT_TIMEOUT`].
pub fn run_to_exit(args: &[&str]) -> Output {
    let scratch = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_monarchd"));
    if !args.contains(&"--port") {
        command.args(["--port", "0"]);
    }
    if !args.contains(&"--adminPort") {
        command.args(["--adminPort", "0"]);
    }
    match args.iter().position(|arg| *arg == "--dbpath").and_then(|at| args.get(at + 1)) {
        // A server's own directory: on the engine that server used.
        Some(given) => {
            command.args(postgres_engine_args(std::path::Path::new(given), args));
        }
        // A startup refused for its options, on the default engine.
        None => {
            command.arg("--dbpath").arg(scratch.path().join("db"));
        }
    }
    let mut child = command.args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn monarchd");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + EXIT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let out = stdout.join().unwrap_or_default();
            panic!("monarchd {args:?} was still running after {EXIT_TIMEOUT:?}: {}", String::from_utf8_lossy(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: stdout.join().unwrap_or_default(), stderr: stderr.join().unwrap_or_default() }
}

/// Files under `dir` (recursively) whose names pass `wanted`.
pub fn files_under(dir: &std::path::Path, wanted: &dyn Fn(&std::path::Path) -> bool) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if wanted(&path) {
                found.push(path);
            }
        }
    }
    found
}

/// Overwrites `length` bytes of `file` at `at` with 0xA5 (a damaged sector, as a checksum
/// sees it).
pub fn damage(file: &std::path::Path, at: u64, length: usize) {
    use std::io::{Seek, SeekFrom};
    let mut handle = std::fs::OpenOptions::new().write(true).open(file).expect("open to damage");
    handle.seek(SeekFrom::Start(at)).expect("seek");
    handle.write_all(&vec![0xA5; length]).expect("damage");
    handle.sync_all().expect("sync");
}

/// A plain socket speaking raw wire-protocol bytes.
pub struct RawConnection {
    /// The socket.
    pub stream: TcpStream,
}

impl RawConnection {
    /// Writes bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads one whole message (header included), or `None` if the server closed the socket.
    pub fn receive(&mut self) -> Option<Vec<u8>> {
        let mut length = [0u8; 4];
        self.stream.read_exact(&mut length).ok()?;
        let total = i32::from_le_bytes(length) as usize;
        let mut message = length.to_vec();
        message.resize(total, 0);
        self.stream.read_exact(message.get_mut(4..)?).ok()?;
        Some(message)
    }

    /// Whether the server closes the connection without answering: the next read sees EOF or
    /// a reset within [`CLOSE_TIMEOUT`]. Silence until then (a server that hangs instead of
    /// closing) and a reply both count as not closed.
    pub fn is_closed(&mut self) -> bool {
        self.stream.set_read_timeout(Some(CLOSE_TIMEOUT)).expect("timeout");
        let mut buf = [0u8; 1];
        let closed = loop {
            match self.stream.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => break false,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
                    break matches!(e.kind(), ConnectionReset | ConnectionAborted | BrokenPipe);
                }
            }
        };
        self.stream.set_read_timeout(Some(READ_TIMEOUT)).expect("timeout");
        closed
    }
}

/// Sends `body` on a fresh connection to `server` and returns the reply's body.
pub fn command(server: &TestServer, body: Document) -> Document {
    let mut connection = server.raw();
    connection.send(&op_msg(1, 0, &body));
    reply_body(&connection.receive().unwrap_or_default())
}

/// A reply's error `code`, if it is an error.
pub fn code(reply: &Document) -> Option<i32> {
    reply.get_i32("code").ok()
}

/// The server's error code in a driver error: a command error's, or the first write error's.
pub fn error_code(error: &mongodb::error::Error) -> Option<i32> {
    use mongodb::error::{ErrorKind, WriteFailure};
    match error.kind.as_ref() {
        ErrorKind::Command(e) => Some(e.code),
        ErrorKind::Write(WriteFailure::WriteError(e)) => Some(e.code),
        ErrorKind::InsertMany(e) => e.write_errors.as_ref().and_then(|w| w.first()).map(|w| w.code),
        _ => None,
    }
}

/// The specification `listIndexes` shows for the index `name` of `collection`.
pub async fn index_spec(db: &mongodb::Database, collection: &str, name: &str) -> Document {
    let listed = db.run_command(mongodb::bson::doc! { "listIndexes": collection }).await.expect("listIndexes");
    let batch = listed.get_document("cursor").and_then(|c| c.get_array("firstBatch")).expect("firstBatch");
    batch
        .iter()
        .filter_map(mongodb::bson::Bson::as_document)
        .find(|spec| spec.get_str("name").ok() == Some(name))
        .cloned()
        .expect("the index is listed")
}

/// Encodes an OP_MSG with a single body section.
pub fn op_msg(request_id: i32, flags: u32, body: &Document) -> Vec<u8> {
    let body = body.to_vec().expect("encode body");
    op_msg_raw(request_id, flags, &body)
}

/// Encodes an OP_MSG whose body bytes are given as is (possibly malformed).
pub fn op_msg_raw(request_id: i32, flags: u32, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::new();
    message.extend_from_slice(&((16 + 4 + 1 + body.len()) as i32).to_le_bytes());
    message.extend_from_slice(&request_id.to_le_bytes());
    message.extend_from_slice(&0i32.to_le_bytes());
    message.extend_from_slice(&2013i32.to_le_bytes());
    message.extend_from_slice(&flags.to_le_bytes());
    message.push(0);
    message.extend_from_slice(body);
    message
}

/// Encodes an OP_MSG with a body section and one kind-1 document sequence whose
/// documents' bytes are given as they are (possibly malformed).
pub fn op_msg_with_raw_sequence(request_id: i32, body: &Document, identifier: &str, documents: &[Vec<u8>]) -> Vec<u8> {
    let body = body.to_vec().expect("encode body");
    let sequence = documents.concat();
    let section_len = 4 + identifier.len() + 1 + sequence.len();
    let mut message = Vec::new();
    let total = 16 + 4 + 1 + body.len() + 1 + section_len;
    message.extend_from_slice(&(total as i32).to_le_bytes());
    message.extend_from_slice(&request_id.to_le_bytes());
    message.extend_from_slice(&0i32.to_le_bytes());
    message.extend_from_slice(&2013i32.to_le_bytes());
    message.extend_from_slice(&0u32.to_le_bytes());
    message.push(0);
    message.extend_from_slice(&body);
    message.push(1);
    message.extend_from_slice(&(section_len as i32).to_le_bytes());
    message.extend_from_slice(identifier.as_bytes());
    message.push(0);
    message.extend_from_slice(&sequence);
    message
}

/// The little-endian int32 of a message's header at byte `at` (4: requestID, 8: responseTo,
/// 16: an OP_MSG's flags).
pub fn header_field(message: &[u8], at: usize) -> i32 {
    i32::from_le_bytes(message.get(at..at + 4).and_then(|b| b.try_into().ok()).expect("header"))
}

/// The body document of an OP_MSG reply.
pub fn reply_body(message: &[u8]) -> Document {
    let op_code = message.get(12..16).and_then(|b| b.try_into().ok()).map(i32::from_le_bytes);
    assert_eq!(op_code, Some(2013), "expected OP_MSG");
    Document::from_reader(message.get(21..).expect("reply body")).expect("reply body")
}
