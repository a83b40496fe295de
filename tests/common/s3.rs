//! A real S3-compatible server for the tests: moto's server (PyPI's `moto[server]`), installed
//! on first use into a virtual environment under Cargo's test scratch directory and started
//! on a free port; and a TCP proxy in front of it that can cut every connection for a while,
//! to test that uploads resume.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::eventually;

/// A signature moto accepts without checking (it refuses anonymous reads of objects).
const AUTHORIZATION: &str = "Authorization: AWS4-HMAC-SHA256 Credential=testing/20261205/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0";

/// The pinned major version of moto this was written against.
const MOTO: &str = "moto[server]>=5,<6";

/// `moto_server`, installed if it is not yet (one install per target directory, serialised
/// by a lock file across test binaries).
fn moto_server() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("moto");
    let binary = root.join("venv/bin/moto_server");
    std::fs::create_dir_all(&root).expect("moto dir");
    let lock = std::fs::File::create(root.join("install.lock")).expect("lock file");
    lock.lock().expect("lock");
    if !binary.exists() {
        let venv = root.join("venv");
        let status = Command::new("python3").arg("-m").arg("venv").arg(&venv).status().expect("python3 -m venv");
        assert!(status.success(), "python3 -m venv failed");
        let status = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", MOTO])
            .status()
            .expect("pip install moto");
        assert!(status.success(), "pip install {MOTO} failed");
    }
    binary
}

/// A free local port (bound, then released for the server to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

/// A running moto server; killed when dropped.
pub struct S3Server {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl S3Server {
    /// Starts one and waits until it answers.
    pub fn start() -> Self {
        let port = free_port();
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let server = Self { child, port };
        assert!(
            eventually(Duration::from_secs(30), || TcpStream::connect(("127.0.0.1", port)).is_ok()),
            "moto_server did not start"
        );
        server
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sends one request (with a signature moto does not check) and returns the status.
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> u16 {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to moto");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n{AUTHORIZATION}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        );
        stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body)).expect("send");
        let mut reply = String::new();
        let _ = stream.read_to_string(&mut reply);
        reply.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    /// The keys of `bucket` under `prefix`, sorted (one ListObjectsV2 page: at most 1,000).
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let listing = String::from_utf8_lossy(&self.get(bucket, &format!("?list-type=2&prefix={prefix}"))).into_owned();
        let mut keys: Vec<String> = listing
            .split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</Key>").map(|(key, _)| key.to_owned()))
            .collect();
        keys.sort();
        keys
    }

    /// The object at `key` of `bucket`.
    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to moto");
        // A key of `?...` is a query on the bucket itself (a listing).
        let separator = if key.starts_with('?') { "" } else { "/" };
        let head = format!(
            "GET /{bucket}{separator}{key} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{AUTHORIZATION}\r\nConnection: close\r\n\r\n",
            self.port
        );
        stream.write_all(head.as_bytes()).expect("send");
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply);
        let body = reply.windows(4).position(|w| w == b"\r\n\r\n").map_or(0, |at| at + 4);
        reply.get(body..).unwrap_or_default().to_vec()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy to a local port that, once `cut_after` bytes have gone upstream, closes every
/// connection and refuses new ones for `outage`, once.
pub struct FlakyProxy {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Bytes sent upstream so far.
    pub upstream_bytes: Arc<AtomicU64>,
    /// Whether the outage happened.
    pub cut: Arc<AtomicBool>,
    /// Connections refused during the outage.
    pub refused: Arc<AtomicU64>,
}

impl FlakyProxy {
    /// Starts one in front of `target_port`.
    pub fn start(target_port: u16, cut_after: u64, outage: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let upstream_bytes = Arc::new(AtomicU64::new(0));
        let cut = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicU64::new(0));
        let down = Arc::new(AtomicBool::new(false));
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (bytes, cut_flag, refused_count) = (upstream_bytes.clone(), cut.clone(), refused.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if down.load(Ordering::SeqCst) {
                    refused_count.fetch_add(1, Ordering::SeqCst);
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) else { continue };
                for stream in [&client, &server] {
                    if let Ok(clone) = stream.try_clone() {
                        live.lock().expect("live").push(clone);
                    }
                }
                let (Ok(client_read), Ok(server_write)) = (client.try_clone(), server.try_clone()) else { continue };
                // Downstream: the server's replies, as they come.
                std::thread::spawn(move || {
                    let (mut from, mut to) = (server, client);
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(Shutdown::Write);
                });
                let (bytes, cut_flag, down, live) = (bytes.clone(), cut_flag.clone(), down.clone(), live.clone());
                std::thread::spawn(move || {
                    let (mut from, mut to) = (client_read, server_write);
                    let mut buffer = vec![0u8; 64 * 1024];
                    while let Ok(n) = from.read(&mut buffer) {
                        if n == 0 || to.write_all(buffer.get(..n).unwrap_or_default()).is_err() {
                            break;
                        }
                        let total = bytes.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                        if total >= cut_after && !cut_flag.swap(true, Ordering::SeqCst) {
                            down.store(true, Ordering::SeqCst);
                            for stream in live.lock().expect("live").drain(..) {
                                let _ = stream.shutdown(Shutdown::Both);
                            }
                            let down = down.clone();
                            std::thread::spawn(move || {
                                std::thread::sleep(outage);
                                down.store(false, Ordering::SeqCst);
                            });
                        }
                    }
                    let _ = to.shutdown(Shutdown::Write);
                });
            }
        });
        Self { port, upstream_bytes, cut, refused }
    }
}
