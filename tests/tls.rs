//! TLS through the Rust driver, with certificates made in the test.
#![expect(clippy::expect_used, reason = "a failed setup step must fail the test loudly")]

mod common;

use std::path::{Path, PathBuf};

use common::TestServer;
use mongodb::bson::doc;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

struct Pki {
    ca: PathBuf,
    server: PathBuf,
    client: PathBuf,
}

/// A CA, a server certificate for localhost/127.0.0.1 and a client certificate, as PEM files
/// (certificate followed by key, as mongod's `tlsCertificateKeyFile` expects).
fn make_pki(dir: &Path) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key")).expect("ca");
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(names).expect("params").signed_by(&key, &ca).expect("sign");
        format!("{}{}", cert.pem(), key.serialize_pem())
    };
    let pki = Pki { ca: dir.join("ca.pem"), server: dir.join("server.pem"), client: dir.join("client.pem") };
    std::fs::write(&pki.ca, ca.pem()).expect("write ca");
    std::fs::write(&pki.server, leaf(vec!["localhost".into(), "127.0.0.1".into()])).expect("write server");
    std::fs::write(&pki.client, leaf(vec!["client".into()])).expect("write client");
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
    let plain = format!("mongodb://127.0.0.1:{}/?serverSelectionTimeoutMS=1500", server.port);
    assert!(ping(&plain).await.is_err(), "plain must be refused");
    assert!(server.wait_for_log("requires TLS", std::time::Duration::from_secs(5)));
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
    assert!(ping(&tls_uri(&server, &pki, false)).await.is_err(), "no client certificate must be refused");
}

#[test]
fn tls_bad_certificate_file_stops_startup() {
    let dir = tempfile::tempdir().expect("dir");
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").expect("write");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_monarchd"))
        .args(["--port", "0", "--adminPort", "disabled", "--dbpath"])
        .arg(dir.path().join("db"))
        .args(["--tlsMode", "requireTLS", "--tlsCertificateKeyFile"])
        .arg(&bogus)
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("bogus.pem"));
}
