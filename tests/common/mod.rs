//! Starts a real `monarchd` on a free port with its own temporary data directory, and stops it
//! (and removes the directory) when dropped.

#![allow(dead_code, reason = "each test binary uses a different part of this helper")]
#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mongodb::Client;
use mongodb::bson::Document;

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
        let mut child = Command::new(env!("CARGO_BIN_EXE_monarchd"))
            .envs(env.iter().copied())
            .args(["--port", "0", "--dbpath"])
            .arg(&dbpath)
            .args(admin_port)
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
                    admin_port = parsed["attr"]["port"].as_u64().map(|p| p as u16);
                }
                if line.contains("\"Waiting for connections\"") {
                    let parsed: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                    let _ = port_tx.send((parsed["attr"]["port"].as_u64().unwrap_or(0) as u16, admin_port));
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
    pub fn crash_and_restart(mut self, args: &[&str]) -> Self {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait");
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        Self::start_in(dir, args)
    }

    /// Sends SIGTERM without waiting (the server begins its drain).
    pub fn signal_terminate(&self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
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

    /// The server's peak resident memory so far (`VmHWM` in `/proc`), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("process status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }

    /// A raw TCP connection to the server.
    pub fn raw(&self) -> RawConnection {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        RawConnection { stream }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
        self.stream.read_exact(&mut message[4..]).ok()?;
        Some(message)
    }

    /// Whether the server has closed the connection (reads EOF or a reset).
    pub fn is_closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(self.stream.read(&mut buf), Ok(0) | Err(_))
    }
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

/// The body document of an OP_MSG reply.
pub fn reply_body(message: &[u8]) -> Document {
    assert_eq!(i32::from_le_bytes(message[12..16].try_into().expect("op code")), 2013, "expected OP_MSG");
    Document::from_reader(&message[21..]).expect("reply body")
}
