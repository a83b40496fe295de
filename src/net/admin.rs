//! The admin HTTP server (`--adminPort`, default 28017, on the loopback address and the
//! `--adminBindIp` addresses): `/metrics` for Prometheus, `/livez` and `/readyz` for
//! orchestrators' probes, `/health` for people, `/config` for the settings in use,
//! `/debug/tasks` and `/debug/pprof/{profile,heap}` for what the process is doing, and the
//! web console (`/ui/`, its data under `/api/`; see [`super::console`]). With
//! `--adminTokenFile`, every endpoint but the probes requires `Authorization: Bearer <token>`.
//! With `--adminTls` the port speaks HTTPS only, and when `--tlsCAFile` is set a client
//! certificate it verifies opens those endpoints as the token does. The bodies are described
//! in `openapi.yaml` at the repository root; `tests/admin.rs` holds the two together.
//!
//! HTTP/1.1 through `hyper`; every storage call runs on the blocking pool, so a slow disk
//! never stalls the async workers that serve clients.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::http::{query_param, response};
use crate::obs::Observers;
use crate::obs::metrics::ServerFigures;
use crate::state::State;
use crate::state::counters::ServerStats;

/// Admin connections served at once; more are closed on accept. Probes and scrapes are few,
/// so this only bounds what a misbehaving client can hold.
const MAX_CONNECTIONS: usize = 64;
/// A client must send its request headers within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The content type of Prometheus' text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const JSON: &str = "application/json";

/// What the admin handlers read.
struct AdminContext {
    state: Arc<State>,
    observers: Arc<Observers>,
    /// Cancelled when shutdown begins: `/readyz` turns 503 while connections drain.
    draining: CancellationToken,
    /// The web console's samples.
    console: super::console::Console,
}

/// The largest request body the admin port reads (the console's explain and killOp).
const MAX_BODY_BYTES: usize = 64 * 1024;

/// `/livez`'s body; also the `status` of the others.
#[derive(Serialize)]
struct Status {
    status: &'static str,
}

/// `/readyz`'s body when not ready, and the body of 404 and 405 answers.
#[derive(Serialize)]
struct Unavailable {
    status: &'static str,
    reason: String,
}

/// `/health`'s body.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Health {
    status: &'static str,
    version: HealthVersion,
    uptime_seconds: f64,
    connections: HealthConnections,
    storage: HealthStorage,
    ready: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HealthVersion {
    /// The mongod version reported to clients.
    mongodb: &'static str,
    /// Monarch's own version.
    monarch: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HealthConnections {
    current: u64,
    total_created: u64,
    rejected: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HealthStorage {
    writable: bool,
    /// Why writes are refused; empty while writable.
    reason: String,
    disk_bytes: u64,
}

/// Serves `listeners` until `stop` is cancelled. `draining` is the server's shutdown signal:
/// the admin server outlives it so that `/readyz` can report the drain.
pub async fn serve(
    listeners: Vec<TcpListener>,
    state: Arc<State>,
    observers: Arc<Observers>,
    draining: CancellationToken,
    stop: CancellationToken,
) {
    let console = super::console::Console::start(state.clone(), observers.clone(), stop.clone());
    let admin = Arc::new(AdminContext { state, observers, draining, console });
    let limiter = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let connections = TaskTracker::new();
    let loops: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            tokio::spawn(accept_loop(listener, admin.clone(), limiter.clone(), connections.clone(), stop.clone()))
        })
        .collect();
    for accept in loops {
        let _ = accept.await;
    }
    connections.close();
    connections.wait().await;
}

async fn accept_loop(
    listener: TcpListener,
    admin: Arc<AdminContext>,
    limiter: Arc<Semaphore>,
    connections: TaskTracker,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(target: "NETWORK", id = 22988, error = %error, "Error accepting admin HTTP connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = limiter.clone().try_acquire_owned() else {
            continue;
        };
        let admin = admin.clone();
        let stop = stop.clone();
        // Taken per connection, so that rotated certificates serve the next one.
        let acceptor = admin.state.tls.admin_acceptor();
        connections.spawn(async move {
            let _permit = permit;
            let Some(acceptor) = acceptor else {
                return serve_http(stream, admin, (remote, Peer::Uncertified), stop).await;
            };
            // A handshake that fails or stalls ends only this connection.
            let Ok(Ok(tls)) = tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await else {
                return;
            };
            // rustls has verified any certificate the client presented against --tlsCAFile.
            let certified = tls.get_ref().1.peer_certificates().is_some_and(|chain| !chain.is_empty());
            let peer = if certified { Peer::Certified } else { Peer::Uncertified };
            serve_http(tls, admin, (remote, peer), stop).await;
        });
    }
}

/// Whether the client proved itself with a certificate during the TLS handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    /// A client certificate signed by `--tlsCAFile` (`--adminTls` only).
    Certified,
    /// Plain HTTP, or HTTPS without a client certificate.
    Uncertified,
}

/// Serves HTTP/1.1 requests on `stream` from `peer` until the client hangs up or the server
/// stops.
async fn serve_http<S>(stream: S, admin: Arc<AdminContext>, peer: (SocketAddr, Peer), stop: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| handle(admin.clone(), peer, request));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        // A client that hangs up mid-request is its own business.
        _ = connection => {}
        () = stop.cancelled() => {}
    }
}

/// Query shapes `/queryStats` lists unless `?limit=` says otherwise.
const DEFAULT_QUERY_STATS: usize = 20;

/// Where RFC 9116 puts the security contact.
const SECURITY_TXT: &str = "/.well-known/security.txt";
/// What the runtime, the blocking pool and each operation in flight are doing.
const DEBUG_TASKS: &str = "/debug/tasks";
/// A CPU profile, and the allocator's heap profile.
const CPU_PROFILE: &str = "/debug/pprof/profile";
const HEAP_PROFILE: &str = "/debug/pprof/heap";

/// How long a served security.txt stays valid (RFC 9116 asks for less than a year).
const SECURITY_TXT_VALIDITY_DAYS: i64 = 364;

/// `/.well-known/security.txt` from `security.contact` and `security.policy`; 404 when no
/// contact is configured (a security.txt without one is not valid). Generated per request, so
/// `Expires` always lies ahead.
fn security_txt(config: &crate::config::Config) -> Response<Full<Bytes>> {
    if config.security_contacts.is_empty() {
        return json(
            StatusCode::NOT_FOUND,
            &Unavailable { status: "error", reason: "no security contact is configured (--securityContact)".into() },
        );
    }
    let expires_ms = bson::DateTime::now().timestamp_millis() + SECURITY_TXT_VALIDITY_DAYS * 86_400_000;
    let expires = bson::DateTime::from_millis(expires_ms).try_to_rfc3339_string().unwrap_or_default();
    let mut body = String::from("# Where to report a security vulnerability in this Monarch deployment.\n");
    for contact in &config.security_contacts {
        body.push_str(&format!("Contact: {contact}\n"));
    }
    body.push_str(&format!("Expires: {expires}\n"));
    if let Some(policy) = &config.security_policy {
        body.push_str(&format!("Policy: {policy}\n"));
    }
    body.push_str("Preferred-Languages: en\n");
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

async fn handle(
    admin: Arc<AdminContext>,
    (remote, peer): (SocketAddr, Peer),
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let path = path.as_str();
    let api = path.starts_with("/api/");
    if super::console::is_asset(path) && request.method() == Method::GET {
        return Ok(super::console::asset(path));
    }
    if !api
        && !matches!(
            path,
            "/metrics"
                | "/livez"
                | "/readyz"
                | "/health"
                | "/queryStats"
                | "/config"
                | DEBUG_TASKS
                | CPU_PROFILE
                | HEAP_PROFILE
                | SECURITY_TXT
        )
        && !super::console::is_asset(path)
    {
        return Ok(json(
            StatusCode::NOT_FOUND,
            &Unavailable { status: "error", reason: format!("no endpoint {path}") },
        ));
    }
    if request.method() != Method::GET && !api {
        let mut response = json(
            StatusCode::METHOD_NOT_ALLOWED,
            &Unavailable { status: "error", reason: format!("{} supports only GET", path) },
        );
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET"));
        return Ok(response);
    }
    // The probes and security.txt are public by design.
    if !matches!(path, "/livez" | "/readyz" | SECURITY_TXT) && !allowed(&admin, peer, &request) {
        let needs = match (admin.state.config.admin_token.is_some(), admin.state.tls.admin_client_certificates()) {
            (true, true) => "the bearer token (--adminTokenFile) or a client certificate (--adminTls)",
            (true, false) => "the bearer token (--adminTokenFile)",
            _ => "a client certificate signed by --tlsCAFile (--adminTls)",
        };
        let mut response = json(
            StatusCode::UNAUTHORIZED,
            &Unavailable { status: "error", reason: format!("{path} requires {needs}") },
        );
        response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"monarch\""));
        return Ok(response);
    }
    if api {
        return Ok(console_api(&admin, remote, request).await);
    }
    Ok(match path {
        "/metrics" => metrics(&admin).await,
        "/livez" => json(StatusCode::OK, &Status { status: "ok" }),
        "/readyz" => match readiness(&admin).await {
            Ok(()) => json(StatusCode::OK, &Status { status: "ok" }),
            Err(reason) => json(StatusCode::SERVICE_UNAVAILABLE, &Unavailable { status: "unavailable", reason }),
        },
        "/queryStats" => query_stats(&admin, request.uri().query()),
        DEBUG_TASKS => json(StatusCode::OK, &super::debug_tasks::tasks(&admin.state)),
        CPU_PROFILE => profile_answer(super::debug_pprof::cpu_profile(request.uri().query()).await),
        HEAP_PROFILE => profile_answer(super::debug_pprof::heap_profile().await),
        SECURITY_TXT => security_txt(&admin.state.config),
        // The settings in use, as `monarchd --validate-config` prints them (secrets masked).
        "/config" => {
            json(StatusCode::OK, &bson::Bson::Document(admin.state.config_in_effect.document()).into_relaxed_extjson())
        }
        _ => health(&admin).await,
    })
}

/// A console endpoint: read-only unless the request proved itself to a configured guard.
async fn console_api(admin: &AdminContext, remote: SocketAddr, request: Request<Incoming>) -> Response<Full<Bytes>> {
    use super::console::{ApiCall, Rights, Server};
    use http_body_util::BodyExt;
    // Past the guard, a request to a guarded port proved itself: it may stop operations.
    let guarded = admin.state.config.admin_token.is_some() || admin.state.tls.admin_client_certificates();
    let rights = if guarded { Rights::Operator } else { Rights::Viewer };
    let (parts, body) = request.into_parts();
    let body = match http_body_util::Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            let reason = format!("cannot read the request body (at most {MAX_BODY_BYTES} bytes): {error}");
            return json(StatusCode::PAYLOAD_TOO_LARGE, &Unavailable { status: "error", reason });
        }
    };
    let call = ApiCall {
        method: &parts.method,
        path: parts.uri.path(),
        query: parts.uri.query(),
        body,
        peer: remote,
        rights,
        // The probe writes through the engine: only the overview shows it.
        ready: if parts.uri.path() == "/api/overview" { readiness(admin).await } else { Ok(()) },
    };
    let server = Server { state: &admin.state, observers: &admin.observers, console: &admin.console };
    super::console::answer(&server, call).await
}

/// Whether `request` may read the guarded endpoints: nothing guards them, or its client
/// certificate does when certificates are accepted, or it carries the bearer token (compared
/// in constant time).
fn allowed(admin: &AdminContext, peer: Peer, request: &Request<Incoming>) -> bool {
    use subtle::ConstantTimeEq;
    let certificates = admin.state.tls.admin_client_certificates();
    if certificates && peer == Peer::Certified {
        return true;
    }
    let Some(token) = &admin.state.config.admin_token else { return !certificates };
    let given = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    bool::from(given.as_bytes().ct_eq(token.expose().as_bytes()))
}

/// A profile, or the admin server's `{status: "error", reason}` with the status that says why not.
fn profile_answer(profile: Result<Response<Full<Bytes>>, super::debug_pprof::ProfileError>) -> Response<Full<Bytes>> {
    profile.unwrap_or_else(|e| json(e.status, &Unavailable { status: "error", reason: e.reason }))
}

/// Query shapes that took the most total time (`?limit=N`, default 20): the same list as the
/// `monarchQueryStats` command.
fn query_stats(admin: &AdminContext, query: Option<&str>) -> Response<Full<Bytes>> {
    let limit = query_param(query, "limit").and_then(|n| n.parse::<usize>().ok()).unwrap_or(DEFAULT_QUERY_STATS);
    let body = serde_json::json!({ "queryStats": admin.observers.latency.top_shapes_json(limit) });
    response(StatusCode::OK, "application/json", Bytes::from(body.to_string()))
}

async fn metrics(admin: &AdminContext) -> Response<Full<Bytes>> {
    let (server, observers) = (admin.state.clone(), admin.observers.clone());
    let scrape = move || observers.metrics_text(&figures(&server), &server.storage, &server.config.dbpath);
    match tokio::task::spawn_blocking(scrape).await {
        Ok(text) => response(StatusCode::OK, PROMETHEUS_TEXT, Bytes::from(text)),
        Err(error) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &Unavailable { status: "error", reason: format!("metrics collection failed: {error}") },
        ),
    }
}

/// Ready: not shutting down, storage writable, and a write and read through the engine
/// succeed. Otherwise the reason.
async fn readiness(admin: &AdminContext) -> Result<(), String> {
    if admin.draining.is_cancelled() {
        return Err("shutting down: draining connections".into());
    }
    let storage = admin.state.storage.clone();
    if let Some(reason) = storage.write_refusal() {
        return Err(format!("storage is not writable: {reason}"));
    }
    match tokio::task::spawn_blocking(move || storage.probe()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(format!("storage probe failed: {error}")),
        Err(error) => Err(format!("storage probe did not finish: {error}")),
    }
}

async fn health(admin: &AdminContext) -> Response<Full<Bytes>> {
    let ready = readiness(admin).await.is_ok();
    let state = &admin.state;
    let storage = state.storage.clone();
    let disk_bytes = match tokio::task::spawn_blocking(move || storage.engine_stats()).await {
        Ok(Ok(engine)) => engine.disk_bytes,
        Ok(Err(error)) => {
            tracing::warn!(target: "STORAGE", id = 7_000_001, error = %error, "Cannot read storage engine figures for /health");
            0
        }
        Err(_) => 0,
    };
    let load = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
    let connections = &state.counters.connections;
    let body = Health {
        status: "ok",
        version: HealthVersion { mongodb: crate::version::COMPATIBLE_VERSION, monarch: env!("CARGO_PKG_VERSION") },
        uptime_seconds: state.started.elapsed().as_secs_f64(),
        connections: HealthConnections {
            current: load(&connections.current),
            total_created: load(&connections.total_created),
            rejected: load(&connections.rejected),
        },
        storage: {
            let reason = state.storage.write_refusal();
            HealthStorage { writable: reason.is_none(), reason: reason.unwrap_or_default(), disk_bytes }
        },
        ready,
    };
    json(StatusCode::OK, &body)
}

/// The server's figures `/metrics` exports, read now from its counters and cursors.
pub(crate) fn figures(state: &State) -> ServerFigures {
    let ServerStats { connections, network, .. } = &state.counters;
    let load = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
    let pool = state.pool.stats();
    let backups = state.backups.figures();
    ServerFigures {
        uptime: state.started.elapsed(),
        connections_current: load(&connections.current),
        connections_active: load(&connections.active),
        connections_created: load(&connections.total_created),
        connections_rejected: load(&connections.rejected),
        connections_rejected_per_ip: load(&state.abuse.counters.connections_refused_per_ip),
        auth_failures: load(&state.abuse.counters.auth_failures),
        auth_delayed: load(&state.abuse.counters.auth_delayed),
        rate_limited_ip: load(&state.abuse.counters.rate_limited_ip),
        rate_limited_user: load(&state.abuse.counters.rate_limited_user),
        tls_not_after: state.tls.not_after(),
        tls_reloads_ok: load(&state.tls.reloads).saturating_sub(load(&state.tls.reload_failures)),
        tls_reloads_failed: load(&state.tls.reload_failures),
        bytes_in: load(&network.bytes_in),
        bytes_out: load(&network.bytes_out),
        physical_bytes_in: load(&network.physical_bytes_in),
        physical_bytes_out: load(&network.physical_bytes_out),
        requests: load(&network.num_requests),
        cursors_open: state.cursors.len(),
        cursors_timed_out: state.cursors.timed_out(),
        pool_workers: pool.workers as u64,
        pool_busy: pool.busy as u64,
        pool_queued: pool.queued as u64,
        pool_queue_capacity: pool.capacity as u64,
        pool_waiting: pool.waiting as u64,
        pool_jobs: pool.jobs,
        pool_queue_full: pool.queue_full,
        runtime_tasks: tokio::runtime::Handle::try_current()
            .ok()
            .map(|runtime| runtime.metrics().num_alive_tasks() as u64),
        backup_scheduled: backups.scheduled,
        backups_completed: backups.completed,
        backups_failed: backups.failed,
        backup_last_success_unix_millis: backups.last_success_unix_millis,
        backup_last_duration_millis: backups.last_duration_millis,
        backup_last_bytes: backups.last_bytes,
        oplog_archived_through_seconds: backups.oplog.archived_through_seconds,
        oplog_archived_entries: backups.oplog.entries,
        oplog_archive_failures: backups.oplog.failures,
        oplog_archive_gaps: backups.oplog.gaps,
    }
}

fn json(status: StatusCode, body: &impl Serialize) -> Response<Full<Bytes>> {
    // These bodies are plain structs of strings, numbers and booleans: serializing cannot fail.
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    response(status, JSON, Bytes::from(bytes))
}
