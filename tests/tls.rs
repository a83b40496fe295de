//! TLS through the Rust driver, with certificates made in the test.
#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::TestServer;
use mongodb::bson::{Document, doc};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

struct Pki {
    ca: PathBuf,
    server: PathBuf,
    /// Subject `CN=client,OU=apps,O=Shop`.
    client: PathBuf,
    /// Subject `CN=intruder,OU=apps,O=Shop`, signed by the same CA.
    intruder: PathBuf,
}

/// A CA, a server certificate for localhost/127.0.0.1 and a client certificate, as PEM files
/// (certificate followed by key, as mongod's `tlsCertificateKeyFile` expects).
/// Two certificate authorities with their server certificates (in `dir/a` and `dir/b`), and
/// `dir/current.pem` holding the first one's: the file a rotation test points the server at.
fn rotating_pkis(dir: &Path) -> (Pki, Pki, PathBuf) {
    for sub in ["a", "b"] {
        std::fs::create_dir(dir.join(sub)).expect("mkdir");
    }
    let (first, second) = (make_pki(&dir.join("a")), make_pki(&dir.join("b")));
    let current = dir.join("current.pem");
    std::fs::copy(&first.server, &current).expect("copy");
    (first, second, current)
}

fn make_pki(dir: &Path) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key")).expect("ca");
    let leaf = |names: Vec<String>, common_name: &str| {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(names).expect("params");
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::OrganizationName, "Shop");
        params.distinguished_name.push(DnType::OrganizationalUnitName, "apps");
        params.distinguished_name.push(DnType::CommonName, common_name);
        let cert = params.signed_by(&key, &ca).expect("sign");
        format!("{}{}", cert.pem(), key.serialize_pem())
    };
    let pki = Pki {
        ca: dir.join("ca.pem"),
        server: dir.join("server.pem"),
        client: dir.join("client.pem"),
        intruder: dir.join("intruder.pem"),
    };
    std::fs::write(&pki.ca, ca.pem()).expect("write ca");
    std::fs::write(&pki.server, leaf(vec!["localhost".into(), "127.0.0.1".into()], "localhost")).expect("write server");
    std::fs::write(&pki.client, leaf(vec!["client".into()], "client")).expect("write client");
    std::fs::write(&pki.intruder, leaf(vec!["intruder".into()], "intruder")).expect("write intruder");
    pki
}

fn tls_uri(server: &TestServer, pki: &Pki, client_cert: bool) -> String {
    let mut uri = format!(
        "mongodb://localhost:{}/?serverSelectionTimeoutMS=3000&tls=true&tlsCAFile={}",
        server.port,
        pki.ca.display()
    );
    if client_cert {
        uri.push_str(&format!("&tlsCertificateKeyFile={}", pki.client.display()));
    }
    uri
}

/// How a TLS client's `hello` ended.
#[derive(Debug)]
enum Outcome {
    /// The session was set up and the server answered.
    Served(Document),
    /// The server ended the attempt (a TLS alert, a reset or EOF): the text says how.
    Refused(String),
    /// Nothing came back in time: neither served nor refused, so a test failure.
    TimedOut,
}

/// A TLS session to 127.0.0.1:`port` as "localhost", trusting `ca`, presenting the certificate
/// and key in `client` if given.
fn tls_session(
    port: u16,
    ca: &Path,
    client: Option<&Path>,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("read CA") {
        roots.add(cert.expect("CA certificate")).expect("trust CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots);
    let config = match client {
        Some(pem) => {
            let chain: Vec<_> = CertificateDer::pem_file_iter(pem).expect("read").map(|c| c.expect("cert")).collect();
            builder.with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(pem).expect("key")).expect("client auth")
        }
        None => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from("localhost").expect("server name");
    let session = rustls::ClientConnection::new(Arc::new(config), name).expect("client session");
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    rustls::StreamOwned::new(session, tcp)
}

/// Sends `command` as raw OP_MSG over `tls` and reads the reply's body.
fn exchange(
    tls: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    command: &Document,
) -> std::io::Result<Document> {
    tls.write_all(&common::op_msg(1, 0, command))?;
    let mut length = [0u8; 4];
    tls.read_exact(&mut length)?;
    let mut message = length.to_vec();
    message.resize(i32::from_le_bytes(length) as usize, 0);
    tls.read_exact(message.get_mut(4..).expect("a length prefix"))?;
    Ok(common::reply_body(&message))
}

/// Opens a TLS session (see [`tls_session`]) and sends `hello`. rustls's client sees the
/// server's alert, so a refusal is told apart from a hang.
fn tls_hello(port: u16, ca: &Path, client: Option<&Path>) -> Outcome {
    let mut tls = tls_session(port, ca, client);
    match exchange(&mut tls, &doc! { "hello": 1, "$db": "admin" }) {
        Ok(reply) => Outcome::Served(reply),
        Err(error) => match error.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Outcome::TimedOut,
            _ => Outcome::Refused(error.to_string()),
        },
    }
}

/// Asserts `outcome` is a refusal by a TLS alert (not a timeout, not a reply).
fn assert_alert(outcome: &Outcome, why: &str) {
    assert!(matches!(outcome, Outcome::Refused(text) if text.contains("alert")), "{why}: {outcome:?}");
}

async fn ping(uri: &str) -> mongodb::error::Result<()> {
    let client = mongodb::Client::with_uri_str(uri).await?;
    client.database("admin").run_command(doc! { "ping": 1 }).await.map(|_| ())
}

#[tokio::test]
async fn tls_require_accepts_tls_and_refuses_plain() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = make_pki(dir.path());
    let server_pem = pki.server.to_str().expect("path").to_owned();
    let server = TestServer::start_in(dir, &["--tlsMode", "requireTLS", "--tlsCertificateKeyFile", &server_pem]);
    ping(&tls_uri(&server, &pki, false)).await.expect("TLS ping");
    assert!(matches!(tls_hello(server.port, &pki.ca, None), Outcome::Served(_)));
    // A plain client is closed on, not left waiting.
    let mut plain = server.raw();
    plain.send(&common::op_msg(1, 0, &doc! { "hello": 1, "$db": "admin" }));
    assert!(plain.is_closed(), "plain must be refused");
    assert!(server.wait_for_log("requires TLS", Duration::from_secs(5)));
}

#[tokio::test]
async fn tls_allow_serves_plain_and_tls_on_one_port() {
    for mode in ["allowTLS", "preferTLS"] {
        let dir = tempfile::tempdir().expect("dir");
        let pki = make_pki(dir.path());
        let server_pem = pki.server.to_str().expect("path").to_owned();
        let server = TestServer::start_in(dir, &["--tlsMode", mode, "--tlsCertificateKeyFile", &server_pem]);
        ping(&tls_uri(&server, &pki, false)).await.expect("TLS ping");
        ping(&server.uri("")).await.expect("plain ping");
    }
}

#[tokio::test]
async fn tls_ca_file_requires_client_certificate() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = make_pki(dir.path());
    let server_pem = pki.server.to_str().expect("path").to_owned();
    let ca_pem = pki.ca.to_str().expect("path").to_owned();
    let server = TestServer::start_in(
        dir,
        &["--tlsMode", "requireTLS", "--tlsCertificateKeyFile", &server_pem, "--tlsCAFile", &ca_pem],
    );
    ping(&tls_uri(&server, &pki, true)).await.expect("ping with a client certificate");
    let served = tls_hello(server.port, &pki.ca, Some(&pki.client));
    assert!(matches!(&served, Outcome::Served(hello) if hello.get_bool("isWritablePrimary").ok() == Some(true)));
    assert_alert(&tls_hello(server.port, &pki.ca, None), "no client certificate must be refused");
    // A certificate from another CA is refused just the same.
    let elsewhere = tempfile::tempdir().expect("dir");
    let other = make_pki(elsewhere.path());
    assert_alert(&tls_hello(server.port, &pki.ca, Some(&other.client)), "a certificate of another CA must be refused");
    assert!(server.wait_for_log("TLS handshake failed", Duration::from_secs(5)));
}

#[test]
fn tls_bad_certificate_file_stops_startup() {
    let dir = tempfile::tempdir().expect("dir");
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").expect("write");
    let bogus = bogus.to_str().expect("utf-8 path");
    let output = common::run_to_exit(&["--tlsMode", "requireTLS", "--tlsCertificateKeyFile", bogus]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("bogus.pem"));
}

#[tokio::test]
async fn x509_clients_authenticate_as_their_certificate_subject() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = make_pki(dir.path());
    let server_pem = pki.server.to_str().expect("path").to_owned();
    let ca_pem = pki.ca.to_str().expect("path").to_owned();
    let server = TestServer::start_in(
        dir,
        &["--auth", "--tlsMode", "requireTLS", "--tlsCertificateKeyFile", &server_pem, "--tlsCAFile", &ca_pem],
    );
    let base = tls_uri(&server, &pki, true);
    // The first user through the localhost exception, then the certificate's user in $external.
    let local = mongodb::Client::with_uri_str(&base).await.expect("client");
    local
        .database("admin")
        .run_command(doc! { "createUser": "root", "pwd": "pw", "roles": ["root"] })
        .await
        .expect("first user");
    let root =
        mongodb::Client::with_uri_str(base.replacen("mongodb://", "mongodb://root:pw@", 1) + "&authSource=admin")
            .await
            .expect("client");
    let subject = "CN=client,OU=apps,O=Shop";
    root.database("$external")
        .run_command(doc! { "createUser": subject, "roles": [{ "role": "readWrite", "db": "shop" }] })
        .await
        .expect("an $external user");
    let refused = root
        .database("$external")
        .run_command(doc! { "createUser": "CN=other", "pwd": "x", "roles": [] })
        .await
        .expect_err("no password in $external");
    assert!(matches!(refused.kind.as_ref(), mongodb::error::ErrorKind::Command(e) if e.code == 2), "{refused}");
    // The driver authenticates with MONGODB-X509 (speculatively, in its hello).
    let x509 = |cert: &Path| {
        format!(
            "mongodb://localhost:{}/?tls=true&tlsCAFile={}&tlsCertificateKeyFile={}&authMechanism=MONGODB-X509",
            server.port,
            pki.ca.display(),
            cert.display()
        )
    };
    let client = mongodb::Client::with_uri_str(x509(&pki.client)).await.expect("client");
    let status = client.database("admin").run_command(doc! { "connectionStatus": 1 }).await.expect("authenticated");
    let users = status.get_document("authInfo").and_then(|a| a.get_array("authenticatedUsers")).expect("users");
    assert_eq!(users, &vec![mongodb::bson::Bson::Document(doc! { "user": subject, "db": "$external" })]);
    client
        .database("shop")
        .collection::<Document>("orders")
        .insert_one(doc! { "total": 5 })
        .await
        .expect("readWrite on shop");
    let info = root.database("$external").run_command(doc! { "usersInfo": subject }).await.expect("usersInfo");
    let listed = info.get_array("users").ok().and_then(|u| u.first()).and_then(|u| u.as_document()).expect("user");
    assert_eq!(listed.get_array("mechanisms").ok(), Some(&vec![mongodb::bson::Bson::from("external")]));
    // The authenticate command, naming the subject or not; another mechanism is not enabled.
    let authenticate = |user: Option<&str>, mechanism: &str| {
        let mut command = doc! { "authenticate": 1, "mechanism": mechanism, "$db": "$external" };
        if let Some(user) = user {
            command.insert("user", user);
        }
        exchange(&mut tls_session(server.port, &pki.ca, Some(&pki.client)), &command).expect("reply")
    };
    let done = authenticate(None, "MONGODB-X509");
    assert_eq!(done.get_str("user").ok(), Some(subject), "{done}");
    assert_eq!(done.get_str("dbname").ok(), Some("$external"));
    assert_eq!(authenticate(Some(subject), "MONGODB-X509").get_str("user").ok(), Some(subject));
    let mismatch = authenticate(Some("CN=someone else"), "MONGODB-X509");
    assert_eq!(
        (mismatch.get_i32("code").ok(), mismatch.get_str("errmsg").ok()),
        (Some(18), Some("Authentication failed."))
    );
    assert_eq!(authenticate(None, "SCRAM-SHA-256").get_i32("code").ok(), Some(334));
    // A certificate of the same CA whose subject is no user is refused.
    let intruder = mongodb::Client::with_uri_str(x509(&pki.intruder)).await.expect("client");
    let error = intruder.database("admin").run_command(doc! { "ping": 1 }).await.expect_err("no such user");
    assert!(matches!(error.kind.as_ref(), mongodb::error::ErrorKind::Authentication { .. }), "{error}");
}

#[tokio::test]
async fn certificates_reload_without_dropping_connections() {
    let dir = tempfile::tempdir().expect("dir");
    let (first, second, current) = rotating_pkis(dir.path());
    let current_arg = current.to_str().expect("path").to_owned();
    let server = TestServer::start(&["--tlsMode", "requireTLS", "--tlsCertificateKeyFile", &current_arg]);
    let mut open = tls_session(server.port, &first.ca, None);
    exchange(&mut open, &doc! { "ping": 1, "$db": "admin" }).expect("ping before the reload");
    let expiry = |server: &TestServer| {
        let (_, body) = server.http_get("/metrics");
        body.lines()
            .find_map(|l| l.strip_prefix("monarch_tls_certificate_expiry_timestamp_seconds "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    assert!(expiry(&server).is_some_and(|t| t > 1.7e9), "the expiry gauge");

    // SIGHUP: new sessions get the new certificate, the open one stays up.
    std::fs::copy(&second.server, &current).expect("copy");
    server.signal("HUP");
    assert!(server.wait_for_log("Rotated the TLS certificates", Duration::from_secs(5)));
    assert!(matches!(tls_hello(server.port, &second.ca, None), Outcome::Served(_)));
    assert!(matches!(tls_hello(server.port, &first.ca, None), Outcome::Refused(_)), "the old certificate is gone");
    exchange(&mut open, &doc! { "ping": 1, "$db": "admin" }).expect("the open session survives");

    // rotateCertificates with unusable files fails and keeps the certificate in use.
    std::fs::write(&current, "not a certificate").expect("write");
    let mut admin = tls_session(server.port, &second.ca, None);
    let refused =
        exchange(&mut admin, &doc! { "rotateCertificates": 1, "message": "test", "$db": "admin" }).expect("reply");
    assert_eq!(refused.get_i32("code").ok(), Some(140), "{refused}");
    assert!(matches!(tls_hello(server.port, &second.ca, None), Outcome::Served(_)));
    std::fs::copy(&first.server, &current).expect("copy");
    let done = exchange(&mut admin, &doc! { "rotateCertificates": 1, "$db": "admin" }).expect("reply");
    assert_eq!(done.get_f64("ok").ok(), Some(1.0), "{done}");
    assert!(matches!(tls_hello(server.port, &first.ca, None), Outcome::Served(_)));
    let (_, metrics) = server.http_get("/metrics");
    assert!(metrics.contains("monarch_tls_certificate_reloads_total{result=\"ok\"} 2"), "{metrics}");
    assert!(metrics.contains("monarch_tls_certificate_reloads_total{result=\"failed\"} 1"), "{metrics}");
}

#[test]
fn disabled_protocols_are_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = make_pki(dir.path());
    let server_pem = pki.server.to_str().expect("path").to_owned();
    let server = TestServer::start_in(
        dir,
        &["--tlsMode", "requireTLS", "--tlsCertificateKeyFile", &server_pem, "--tlsDisabledProtocols", "TLS1_2"],
    );
    let only = |version: &'static rustls::SupportedProtocolVersion| {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&pki.ca).expect("read CA") {
            roots.add(cert.expect("CA certificate")).expect("trust CA");
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[version])
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let session = rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").expect("name"))
            .expect("session");
        let tcp = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        exchange(&mut rustls::StreamOwned::new(session, tcp), &doc! { "ping": 1, "$db": "admin" })
    };
    assert!(only(&rustls::version::TLS13).is_ok(), "TLS 1.3 is still served");
    assert!(only(&rustls::version::TLS12).is_err(), "TLS 1.2 was disabled");
}

/// GET `path` on the admin port over HTTPS (trusting `ca`, presenting `client` if given) with
/// extra header lines; the status and body, or the error that ended the exchange.
fn https_get(port: u16, ca: &Path, client: Option<&Path>, path: &str, headers: &str) -> std::io::Result<(u16, String)> {
    let mut tls = tls_session(port, ca, client);
    write!(tls, "GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        // A peer that closes without close_notify after the whole answer still answered.
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        other => {
            other?;
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, body.to_owned()))
}

#[test]
fn admin_port_over_tls_takes_a_client_certificate_in_place_of_the_token() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = make_pki(dir.path());
    std::fs::create_dir(dir.path().join("other")).expect("mkdir");
    let other = make_pki(&dir.path().join("other"));
    let token = dir.path().join("admin-token");
    std::fs::write(&token, "s3cret\n").expect("token");
    let [server_pem, ca, token] = [&pki.server, &pki.ca, &token].map(|p| p.to_str().expect("path").to_owned());
    let server = TestServer::start(&[
        "--tlsMode",
        "requireTLS",
        "--tlsCertificateKeyFile",
        &server_pem,
        "--tlsCAFile",
        &ca,
        "--adminTls",
        "--adminTokenFile",
        &token,
    ]);
    let port = server.admin_port.expect("admin port");
    let listening = server.log_lines().into_iter().find(|l| l.contains("Admin HTTP server listening")).expect("log");
    assert!(listening.contains("\"scheme\":\"https\""), "{listening}");

    // Plain HTTP gets no answer: the port speaks TLS only.
    let mut plain = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    plain.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(plain, "GET /livez HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").expect("send");
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"HTTP/"), "plain HTTP was answered: {}", String::from_utf8_lossy(&answer));

    // Probes need neither a certificate nor the token; the rest needs one of them.
    for probe in ["/livez", "/readyz"] {
        let (status, body) = https_get(port, &pki.ca, None, probe, "").expect("probe");
        assert_eq!(status, 200, "{probe}: {body}");
    }
    for path in ["/metrics", "/health", "/queryStats"] {
        let (status, body) = https_get(port, &pki.ca, None, path, "").expect("no credentials");
        assert_eq!(status, 401, "{path}: {body}");
        assert!(body.contains("the bearer token (--adminTokenFile) or a client certificate (--adminTls)"), "{body}");
        let (status, _) = https_get(port, &pki.ca, None, path, "Authorization: Bearer wrong\r\n").expect("bad token");
        assert_eq!(status, 401, "{path} with a wrong token");
        let (status, body) = https_get(port, &pki.ca, None, path, "Authorization: Bearer s3cret\r\n").expect("token");
        assert_eq!(status, 200, "{path} with the token: {body}");
        let (status, body) = https_get(port, &pki.ca, Some(&pki.client), path, "").expect("certificate");
        assert_eq!(status, 200, "{path} with a client certificate: {body}");
    }
    let (_, metrics) = https_get(port, &pki.ca, Some(&pki.client), "/metrics", "").expect("metrics");
    assert!(metrics.contains("monarch_tls_certificate_expiry_timestamp_seconds"), "{metrics}");

    // A certificate from another CA ends the handshake.
    let foreign = https_get(port, &pki.ca, Some(&other.client), "/metrics", "");
    assert!(foreign.is_err(), "a foreign client certificate was accepted: {foreign:?}");
}

#[test]
fn admin_tls_alone_rotates_its_certificate_on_sighup() {
    // The wire port stays plain; only the admin port serves the certificate, and SIGHUP must
    // still reload it.
    let dir = tempfile::tempdir().expect("dir");
    let (first, second, current) = rotating_pkis(dir.path());
    let current_arg = current.to_str().expect("path").to_owned();
    let server = TestServer::start(&["--adminTls", "--tlsCertificateKeyFile", &current_arg]);
    let port = server.admin_port.expect("admin port");
    let probe = |ca: &Path| https_get(port, ca, None, "/livez", "").map(|(status, _)| status).ok();
    assert_eq!(probe(&first.ca), Some(200));

    std::fs::copy(&second.server, &current).expect("copy");
    server.signal("HUP");
    assert!(server.wait_for_log("Rotated the TLS certificates", Duration::from_secs(5)));
    assert_eq!(probe(&second.ca), Some(200), "the new certificate serves");
    assert_eq!(probe(&first.ca), None, "the old certificate is gone");
}

/// `serverStatus.connections.current`, asked on a fresh plain connection (counted itself).
fn current_connections(server: &TestServer) -> i64 {
    let status = common::command(server, doc! { "serverStatus": 1, "$db": "admin" });
    let connections = status.get_document("connections").expect("connections");
    connections.get_i32("current").map(i64::from).or_else(|_| connections.get_i64("current")).expect("current")
}

#[test]
fn tls_handshake_that_never_completes_is_timed_out() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = make_pki(dir.path());
    let server_pem = pki.server.to_str().expect("path").to_owned();
    let server = TestServer::start_in(
        dir,
        &[
            "--tlsMode",
            "allowTLS",
            "--tlsCertificateKeyFile",
            &server_pem,
            "--setParameter",
            "monarchTLSHandshakeTimeoutMillis=1000",
        ],
    );
    // One peer never sends a byte; the other starts a TLS record and stops.
    let mut silent = server.raw();
    let mut halfway = server.raw();
    halfway.send(&[0x16, 0x03, 0x01, 0x00, 0x40]);
    assert!(
        common::eventually(Duration::from_secs(1), || current_connections(&server) == 3),
        "both stalled peers and the status connection are counted"
    );
    assert!(silent.is_closed(), "a silent peer is closed after the handshake timeout");
    assert!(halfway.is_closed(), "a stalled handshake is closed after the handshake timeout");
    assert!(
        common::eventually(Duration::from_secs(5), || current_connections(&server) == 1),
        "the stalled peers' slots are given back"
    );
    assert!(server.wait_for_log("the TLS handshake did not complete within 1000 ms", Duration::from_secs(5)));
    // A client that does the handshake is served, and stays served when idle past the limit:
    // the limit is the handshake's alone (mongod closes no idle connection).
    let mut tls = tls_session(server.port, &pki.ca, None);
    exchange(&mut tls, &doc! { "hello": 1, "$db": "admin" }).expect("TLS hello after the timeouts");
    std::thread::sleep(Duration::from_millis(1500));
    exchange(&mut tls, &doc! { "ping": 1, "$db": "admin" }).expect("an idle TLS connection is kept");
}

/// Runs a `monarchd` command-line tool to its exit.
fn monarchd_tool(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_monarchd")).args(args).output().expect("run monarchd")
}

#[tokio::test]
async fn command_line_tools_connect_over_tls_with_a_client_certificate() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = make_pki(dir.path());
    let (server_pem, ca_pem) =
        (pki.server.to_str().expect("path").to_owned(), pki.ca.to_str().expect("path").to_owned());
    let server = TestServer::start_in(
        dir,
        &["--tlsMode", "requireTLS", "--tlsCertificateKeyFile", &server_pem, "--tlsCAFile", &ca_pem],
    );
    let client = mongodb::Client::with_uri_str(tls_uri(&server, &pki, true)).await.expect("client");
    client.database("app").collection::<Document>("c").insert_one(doc! { "_id": 1 }).await.expect("insert");
    let base = format!("mongodb://localhost:{}/", server.port);
    let with = |options: &str| format!("{base}?{options}");
    let full = with(&format!("tls=true&tlsCAFile={ca_pem}&tlsCertificateKeyFile={}", pki.client.display()));
    let exported = monarchd_tool(&["export", "--uri", &full, "-d", "app", "-c", "c"]);
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(exported.status.code(), Some(0), "{}", stderr(&exported));
    assert_eq!(String::from_utf8_lossy(&exported.stdout), "{\"_id\":1}\n");
    // The TLS file options alone turn TLS on, as in drivers.
    let implied = with(&format!("tlsCAFile={ca_pem}&tlsCertificateKeyFile={}", pki.client.display()));
    let exported = monarchd_tool(&["export", "--uri", &implied, "-d", "app", "-c", "c"]);
    assert_eq!(exported.status.code(), Some(0), "{}", stderr(&exported));

    // Without the client certificate the server refuses the handshake; without the CA the
    // server's certificate is not trusted; without TLS the server closes the connection.
    let no_certificate =
        monarchd_tool(&["export", "--uri", &with(&format!("tls=true&tlsCAFile={ca_pem}")), "-d", "app", "-c", "c"]);
    assert_eq!(no_certificate.status.code(), Some(3), "{}", stderr(&no_certificate));
    let elsewhere = tempfile::tempdir().expect("dir");
    let other = make_pki(elsewhere.path());
    let untrusted =
        with(&format!("tls=true&tlsCAFile={}&tlsCertificateKeyFile={}", other.ca.display(), pki.client.display()));
    let refused = monarchd_tool(&["export", "--uri", &untrusted, "-d", "app", "-c", "c"]);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("invalid peer certificate"), "{}", stderr(&refused));
    let plain = monarchd_tool(&["export", "--uri", &base, "-d", "app", "-c", "c"]);
    assert_eq!(plain.status.code(), Some(3), "{}", stderr(&plain));
    let missing = monarchd_tool(&["export", "--uri", &with("tlsCAFile=/nonexistent.pem"), "-d", "app", "-c", "c"]);
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
}
