//! TLS termination with rustls: building the acceptor from mongod-style PEM files, and telling
//! a TLS client from a plain one on a shared port.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::config::{TlsConfig, TlsMode};

/// The first byte of a TLS record carrying a handshake (the ClientHello).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("cannot read {what} from {path}: {message}")]
    Pem {
        /// What was being read.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// rustls refused the configuration (e.g. the key does not match the certificate).
    #[error("invalid TLS configuration: {0}")]
    Config(String),
}

/// Builds the acceptor, or `None` when TLS is disabled.
///
/// # Errors
/// [`TlsError`] for unreadable or inconsistent certificate files.
pub fn acceptor(config: &TlsConfig) -> Result<Option<TlsAcceptor>, TlsError> {
    if config.mode == TlsMode::Disabled {
        return Ok(None);
    }
    let Some(path) = &config.certificate_key_file else {
        return Err(TlsError::Config("net.tls.certificateKeyFile is required".into()));
    };
    let certificates = read_certificates(path)?;
    let key = PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error("private key", path, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match &config.ca_file {
        Some(ca_path) => {
            let mut roots = RootCertStore::empty();
            for ca in read_certificates(ca_path)? {
                roots.add(ca).map_err(|e| TlsError::Config(format!("CA file {}: {e}", ca_path.display())))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let server_config = builder.with_single_cert(certificates, key).map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Some(TlsAcceptor::from(Arc::new(server_config))))
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error("certificates", path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error("certificates", path, e))?;
    if certificates.is_empty() {
        return Err(TlsError::Pem {
            what: "certificates",
            path: path.to_owned(),
            message: "no certificate found".into(),
        });
    }
    Ok(certificates)
}

fn pem_error(what: &'static str, path: &Path, error: impl std::fmt::Display) -> TlsError {
    TlsError::Pem { what, path: path.to_owned(), message: error.to_string() }
}

/// Whether the client opened with a TLS handshake, judged from its first byte without
/// consuming it (how mongod serves plain and TLS clients on one port).
///
/// # Errors
/// The socket's error, or `UnexpectedEof` when the client closed before sending anything.
pub async fn starts_with_tls(stream: &TcpStream) -> std::io::Result<bool> {
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await? {
        0 => Err(std::io::ErrorKind::UnexpectedEof.into()),
        _ => Ok(first[0] == TLS_HANDSHAKE_RECORD),
    }
}
