//! Failover of the PostgreSQL engine's database (issue 20): Patroni runs a primary and a
//! synchronous standby (with etcd for its leader key), Monarch runs on them through a
//! multi-host `--pgUri`, and the primary is killed under `w: "majority"` writers. Two
//! deployments share the cluster, each on a database of its own: one Monarch node as a
//! replica set of one, and two nodes sharing their database (`--pgSharedNodes`) behind one
//! driver. Every acknowledged write must be there after Patroni promotes the standby, and the
//! writers must carry on through the same Monarch nodes.
//!
//! Needs Debian's `postgresql`, `patroni` and `etcd-server`, and root (PostgreSQL runs as the
//! `postgres` user): `.ci/postgres-tests` installs them and sets `MONARCH_TEST_PATRONI`.
//! Without it (a plain `cargo test`), the test says so and returns.

#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{TestServer, eventually};
use mongodb::bson::{Document, doc};
use mongodb::options::{Acknowledgment, WriteConcern};

/// Set by `.ci/postgres-tests`, which installs what the test runs.
const ENABLED: &str = "MONARCH_TEST_PATRONI";
/// How long Patroni's leader key lives without its holder renewing it: a dead primary is
/// replaced after about this long. 20 s is the least Patroni accepts.
const LEADER_TTL_SECONDS: u64 = 20;

/// The directory of PostgreSQL's programs, as Debian installs them (the newest version).
fn pg_bin() -> String {
    let mut versions: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("Debian's postgresql")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    format!("/usr/lib/postgresql/{}/bin", versions.last().expect("a PostgreSQL version"))
}

/// A free TCP port on the loopback interface.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

/// The uid and gid of the `postgres` user, which PostgreSQL must run as.
fn postgres_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    let line = passwd.lines().find(|line| line.starts_with("postgres:")).expect("a postgres user");
    let mut ids = line.split(':').skip(2).map(|id| id.parse().expect("a numeric id"));
    (ids.next().expect("uid"), ids.next().expect("gid"))
}

/// One PostgreSQL server under its Patroni.
struct Member {
    patroni: Child,
    pg_port: u16,
    rest_port: u16,
    data_dir: std::path::PathBuf,
}

impl Member {
    /// Kills Patroni and PostgreSQL at once (SIGKILL), as a lost machine would go: the leader
    /// key is left to expire.
    fn crash(&mut self) {
        let _ = self.patroni.kill();
        let _ = self.patroni.wait();
        if let Some(pid) = std::fs::read_to_string(self.data_dir.join("postmaster.pid"))
            .ok()
            .and_then(|pid| pid.lines().next().and_then(|line| line.trim().parse::<u32>().ok()))
        {
            // The backends first, so that no connection outlives its server.
            let pid = pid.to_string();
            let _ = Command::new("pkill").args(["-KILL", "-P", &pid]).stderr(Stdio::null()).status();
            let _ = Command::new("kill").args(["-KILL", &pid]).stderr(Stdio::null()).status();
        }
    }
}

/// etcd and two Patroni members in a temporary directory, stopped and removed when dropped.
struct PatroniCluster {
    etcd: Child,
    members: Vec<Member>,
    dir: tempfile::TempDir,
}

impl PatroniCluster {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (uid, gid) = postgres_user();
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown");
        let (etcd_port, peer_port) = (free_port(), free_port());
        let etcd = Command::new("etcd")
            .args(["--name", "e1", "--enable-v2=true", "--data-dir"])
            .arg(dir.path().join("etcd"))
            .args(["--listen-client-urls", &format!("http://127.0.0.1:{etcd_port}")])
            .args(["--advertise-client-urls", &format!("http://127.0.0.1:{etcd_port}")])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer_port}")])
            .args(["--initial-advertise-peer-urls", &format!("http://127.0.0.1:{peer_port}")])
            .args(["--initial-cluster", &format!("e1=http://127.0.0.1:{peer_port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn etcd");
        let mut cluster = Self { etcd, members: Vec::new(), dir };
        assert!(
            eventually(Duration::from_secs(30), || http_get(etcd_port, "/version").is_some()),
            "etcd did not start"
        );
        for name in ["pg1", "pg2"] {
            let member = cluster.start_member(name, etcd_port, uid, gid);
            cluster.members.push(member);
            // The first member bootstraps the cluster; the second joins it as a standby.
            let rest_port = cluster.members.first().expect("a member").rest_port;
            let expected = cluster.members.len();
            let running = eventually(Duration::from_secs(90), || {
                cluster_members(rest_port).iter().filter(|(_, role)| role != "unknown").count() == expected
                    && cluster_members(rest_port).iter().any(|(_, role)| role == "leader")
            });
            assert!(
                running,
                "Patroni member {name} did not start: {:?}\n{}",
                cluster_members(rest_port),
                cluster.log(name)
            );
        }
        cluster
    }

    fn start_member(&self, name: &str, etcd_port: u16, uid: u32, gid: u32) -> Member {
        let (pg_port, rest_port) = (free_port(), free_port());
        let data_dir = self.dir.path().join(name);
        let config = format!(
            "scope: monarch-failover\n\
             name: {name}\n\
             restapi: {{listen: '127.0.0.1:{rest_port}', connect_address: '127.0.0.1:{rest_port}'}}\n\
             etcd: {{host: '127.0.0.1:{etcd_port}'}}\n\
             bootstrap:\n  \
               dcs:\n    \
                 ttl: {LEADER_TTL_SECONDS}\n    \
                 loop_wait: 1\n    \
                 retry_timeout: 5\n    \
                 synchronous_mode: true\n    \
                 postgresql:\n      \
                   use_pg_rewind: true\n      \
                   parameters: {{max_connections: 200, wal_log_hints: 'on'}}\n  \
               initdb: [{{auth: trust}}, {{encoding: UTF8}}]\n  \
               pg_hba: ['local all all trust', 'host all all 127.0.0.1/32 trust', 'host replication all 127.0.0.1/32 trust']\n\
             postgresql:\n  \
               listen: '127.0.0.1:{pg_port}'\n  \
               connect_address: '127.0.0.1:{pg_port}'\n  \
               data_dir: '{data}'\n  \
               bin_dir: '{bin}'\n  \
               pgpass: '{dir}/{name}.pgpass'\n  \
               authentication: {{superuser: {{username: postgres}}, replication: {{username: postgres}}}}\n  \
               parameters: {{unix_socket_directories: '{dir}'}}\n",
            data = data_dir.display(),
            bin = pg_bin(),
            dir = self.dir.path().display(),
        );
        let config_file = self.dir.path().join(format!("{name}.yml"));
        std::fs::write(&config_file, config).expect("Patroni configuration");
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).expect("log file");
        let patroni = Command::new("patroni")
            .arg(&config_file)
            .uid(uid)
            .gid(gid)
            .env("HOME", self.dir.path())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("spawn patroni");
        Member { patroni, pg_port, rest_port, data_dir }
    }

    /// The end of a member's Patroni log, for a failure's message.
    fn log(&self, name: &str) -> String {
        let log = std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default();
        log.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// The libpq URI naming both members, for the primary wherever it is, of `database`.
    fn uri(&self, database: &str) -> String {
        let hosts: Vec<String> = self.members.iter().map(|member| format!("127.0.0.1:{}", member.pg_port)).collect();
        format!("postgresql://postgres@{}/{database}?target_session_attrs=read-write", hosts.join(","))
    }

    /// The member with `role` (`leader`, `sync_standby`), as the REST API on `rest_port` says.
    fn with_role(rest_port: u16, role: &str) -> Option<String> {
        cluster_members(rest_port).into_iter().find(|(_, r)| r == role).map(|(name, _)| name)
    }
}

impl Drop for PatroniCluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            member.crash();
        }
        let _ = self.etcd.kill();
        let _ = self.etcd.wait();
    }
}

/// `GET path` on a local HTTP port: the body of a 200 reply.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    (head.split(' ').nth(1) == Some("200")).then(|| body.to_owned())
}

/// The members and roles Patroni's REST API on `port` reports.
fn cluster_members(port: u16) -> Vec<(String, String)> {
    let Some(body) = http_get(port, "/cluster") else { return Vec::new() };
    let parsed: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let members = parsed.get("members").and_then(serde_json::Value::as_array).cloned().unwrap_or_default();
    members
        .iter()
        .filter_map(|member| {
            let name = member.get("name")?.as_str()?.to_owned();
            let running = member.get("state").and_then(serde_json::Value::as_str) == Some("running");
            let role = if running { member.get("role")?.as_str()?.to_owned() } else { "unknown".to_owned() };
            Some((name, role))
        })
        .collect()
}

/// How many sessions hold Monarch's node lock (advisory lock `'mnrc'`) on the database at `uri`.
fn node_locks_held(uri: &str) -> i64 {
    let uri = uri.to_owned();
    // On a thread of its own: the blocking client runs a runtime of its own.
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&uri, postgres::NoTls).ok()?;
        let sql = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 1835954787 AND granted \
                   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";
        client.query_one(sql, &[]).ok()?.try_get(0).ok()
    })
    .join()
    .ok()
    .flatten()
    .unwrap_or(-1)
}

/// Creates `database` through the URI `uri` (of another database on the same server).
fn create_database(uri: &str, database: &str) {
    let (uri, sql) = (uri.to_owned(), format!("CREATE DATABASE {database}"));
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&uri, postgres::NoTls).expect("connect");
        client.batch_execute(&sql).expect("create database");
    })
    .join()
    .expect("create database");
}

/// Starts two writers inserting into `writes` with `concern` until `stop`, each retrying a
/// document until it is acknowledged (a duplicate key means an earlier attempt was applied);
/// what they see goes to `seen`.
fn spawn_writers(
    writes: &mongodb::Collection<Document>,
    concern: &WriteConcern,
    seen: &Arc<Mutex<Seen>>,
    stop: &Arc<std::sync::atomic::AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..2)
        .map(|writer| {
            let (writes, concern, seen, stop) = (writes.clone(), concern.clone(), seen.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Acquire) {
                    let id = format!("w{writer}-{n}");
                    let outcome = writes.insert_one(doc! { "_id": &id }).write_concern(concern.clone()).await;
                    let failed = match outcome {
                        Ok(_) => None,
                        Err(error) if common::error_code(&error) == Some(11000) => None,
                        Err(error) => Some(common::error_code(&error).unwrap_or(-1)),
                    };
                    {
                        let mut seen = seen.lock().expect("seen");
                        match failed {
                            Some(code) => seen.errors.push(code),
                            None => {
                                seen.acknowledged.insert(id);
                                seen.acknowledged_at.push(Instant::now());
                            }
                        }
                    }
                    if failed.is_some() {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                    n += 1;
                }
            })
        })
        .collect()
}

/// Checks that every write `seen` acknowledged is in `writes`, and that every error was one of
/// `allowed`; returns a line of figures for the log.
async fn check_writes(writes: &mongodb::Collection<Document>, seen: &Mutex<Seen>, allowed: &[i32]) -> String {
    let stored: BTreeSet<String> = {
        use futures_util::TryStreamExt;
        let found: Vec<Document> = writes.find(doc! {}).await.expect("find").try_collect().await.expect("documents");
        found.iter().filter_map(|document| document.get_str("_id").ok().map(str::to_owned)).collect()
    };
    let seen = seen.lock().expect("seen");
    let lost: Vec<&String> = seen.acknowledged.difference(&stored).collect();
    assert!(lost.is_empty(), "{} acknowledged writes lost, first: {:?}", lost.len(), lost.first());
    let codes: BTreeSet<i32> = seen.errors.iter().copied().collect();
    assert!(codes.iter().all(|code| allowed.contains(code)), "other errors: {codes:?}");
    let mut times = seen.acknowledged_at.clone();
    times.sort();
    let outage =
        times.iter().zip(times.iter().skip(1)).map(|(earlier, later)| *later - *earlier).max().unwrap_or_default();
    format!(
        "longest gap between acknowledged writes {:.1} s; {} acknowledged, {} stored, {} errors seen by the \
         writers ({codes:?})",
        outage.as_secs_f64(),
        seen.acknowledged.len(),
        stored.len(),
        seen.errors.len(),
    )
}

/// What the writers saw: the acknowledged `_id`s, and when each acknowledgement came.
#[derive(Default)]
struct Seen {
    acknowledged: BTreeSet<String>,
    acknowledged_at: Vec<Instant>,
    errors: Vec<i32>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn majority_writes_survive_a_patroni_failover() {
    if std::env::var_os(ENABLED).is_none() {
        eprintln!("skipped: {ENABLED} is not set (.ci/postgres-tests sets it)");
        return;
    }
    let mut cluster = PatroniCluster::start();
    // The standby's REST API answers for the cluster throughout.
    let rest = cluster.members.get(1).expect("pg2").rest_port;
    assert!(
        eventually(Duration::from_secs(60), || PatroniCluster::with_role(rest, "sync_standby").as_deref()
            == Some("pg2")),
        "pg2 did not become the synchronous standby: {:?}",
        cluster_members(rest)
    );
    assert_eq!(PatroniCluster::with_role(rest, "leader").as_deref(), Some("pg1"));
    let server = TestServer::member(&["--storageEngine", "postgres", "--pgUri", &cluster.uri("postgres")]);
    let ports: Vec<u16> = cluster.members.iter().map(|member| member.pg_port).collect();
    let primary = |member: usize, database: &str| {
        format!("postgresql://postgres@127.0.0.1:{}/{database}", ports.get(member).expect("a member"))
    };
    assert_eq!(node_locks_held(&primary(0, "postgres")), 1, "the node lock on pg1");
    // Two nodes sharing a database of their own, behind one driver.
    create_database(&primary(0, "postgres"), "shared");
    let shared_uri = cluster.uri("shared");
    let shared_args = ["--storageEngine", "postgres", "--pgUri", &shared_uri, "--pgSharedNodes"];
    let shared: Vec<TestServer> = (0..2).map(|_| TestServer::start(&shared_args)).collect();
    let hosts: Vec<String> = shared.iter().map(|node| format!("127.0.0.1:{}", node.port)).collect();
    let shared_client =
        mongodb::Client::with_uri_str(format!("mongodb://{}/?serverSelectionTimeoutMS=30000", hosts.join(",")))
            .await
            .expect("client of the shared nodes");
    let shared_writes = shared_client.database("app").collection::<Document>("writes");
    // The driver waits out the outage in server selection rather than failing at once.
    let uri = format!("mongodb://127.0.0.1:{}/?replicaSet=rs0&serverSelectionTimeoutMS=30000", server.port);
    let client = mongodb::Client::with_uri_str(uri).await.expect("client");
    let majority = WriteConcern::builder().w(Acknowledgment::Majority).build();
    let writes = client.database("app").collection::<Document>("writes");

    // The engine's figures: its connections, and the synchronous standby's lag.
    let (_, metrics) = server.http_get("/metrics");
    assert!(
        metrics.lines().any(|line| line.starts_with("monarch_postgres_replication_lag_bytes{")
            && line.contains("standby=\"pg2\"")
            && line.contains("sync_state=\"sync\"")),
        "the synchronous standby in /metrics"
    );
    assert!(server.metric("monarch_postgres_connections").is_some_and(|open| open >= 1.0));
    assert!(server.metric("monarch_postgres_connections_idle").is_some());
    assert!(server.metric("monarch_postgres_connections_opened_total").is_some_and(|opened| opened >= 1.0));
    assert!(server.metric("monarch_postgres_requests_total").is_some_and(|requests| requests > 0.0));
    assert_eq!(server.metric("monarch_postgres_connections_lost_total"), Some(0.0));

    let seen = Arc::new(Mutex::new(Seen::default()));
    let shared_seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = spawn_writers(&writes, &majority, &seen, &stop);
    writers.extend(spawn_writers(&shared_writes, &majority, &shared_seen, &stop));
    let acknowledged = || seen.lock().expect("seen").acknowledged.len();
    let shared_acknowledged = || shared_seen.lock().expect("seen").acknowledged.len();
    assert!(eventually(Duration::from_secs(30), || acknowledged() >= 200), "writes before the failover");
    assert!(eventually(Duration::from_secs(30), || shared_acknowledged() >= 200), "shared writes before");

    let killed_at = Instant::now();
    let (before, shared_before) = (acknowledged(), shared_acknowledged());
    cluster.members.first_mut().expect("pg1").crash();
    // Monarch steps down while its database is unreachable, so drivers wait for a primary.
    let writable = || {
        let reply = common::command(&server, doc! { "hello": 1, "$db": "admin" });
        reply.get_bool("isWritablePrimary").unwrap_or(false)
    };
    assert!(eventually(Duration::from_secs(10), || !writable()), "Monarch did not step down");
    let stepped_down_after = killed_at.elapsed();
    let promoted =
        eventually(Duration::from_secs(90), || PatroniCluster::with_role(rest, "leader").as_deref() == Some("pg2"));
    assert!(promoted, "Patroni did not promote pg2: {:?}", cluster_members(rest));
    let promoted_after = killed_at.elapsed();
    assert!(eventually(Duration::from_secs(30), writable), "Monarch did not step up on the new primary");
    // The writers carry on through the same Monarch nodes, on the new primary.
    let resumed = eventually(Duration::from_secs(60), || acknowledged() >= before + 200);
    let shared_resumed = eventually(Duration::from_secs(60), || shared_acknowledged() >= shared_before + 200);
    stop.store(true, std::sync::atomic::Ordering::Release);
    for writer in writers {
        writer.await.expect("writer");
    }
    assert!(resumed, "writes did not resume after the failover");
    assert!(shared_resumed, "writes through the shared nodes did not resume after the failover");

    // The node lock went with pg1's session: Monarch took it again on pg2, so a second node
    // is still refused.
    assert!(
        eventually(Duration::from_secs(10), || node_locks_held(&primary(1, "postgres")) == 1),
        "the node lock was not taken again on the new primary"
    );
    assert!(
        eventually(Duration::from_secs(10), || node_locks_held(&primary(1, "shared")) == 2),
        "the shared nodes did not take their node lock again on the new primary"
    );
    assert!(server.wait_for_log("Took the PostgreSQL node lock again", Duration::from_secs(1)));
    let lost = server.metric("monarch_postgres_connections_lost_total").unwrap_or_default();
    assert!(lost >= 1.0, "lost connections counted: {lost}");
    let second = common::run_to_exit(&["--storageEngine", "postgres", "--pgUri", &cluster.uri("postgres")]);
    assert_eq!(second.status.code(), Some(100), "a second node after the failover: {}", common::tools::stderr(&second));

    // Every error the writers saw was a state change drivers retry: 11602 before Monarch
    // stepped down, 10107 for a write that reached it after. The shared nodes have no replica
    // set to step down from: each operation meets the lost database (11602).
    let figures = check_writes(&writes, &seen, &[11602, 10107]).await;
    let shared_figures = check_writes(&shared_writes, &shared_seen, &[11602]).await;
    eprintln!(
        "failover: Monarch stepped down {:.1} s and pg2 was promoted {:.1} s after pg1 was killed; one node \
         (replica set): {figures}; two shared nodes: {shared_figures}",
        stepped_down_after.as_secs_f64(),
        promoted_after.as_secs_f64(),
    );
    drop(shared);
    drop(server);
    drop(cluster);
}
