//! The server's TLS certificates: the acceptor new connections take, built from mongod-style
//! PEM files and rebuilt on SIGHUP or `rotateCertificates` (connections already open keep
//! their sessions; a reload that fails keeps the old certificates), the protocol versions
//! (`--tlsDisabledProtocols`; TLS 1.2 is the floor, as rustls offers nothing older), and the
//! server certificate's expiry for `/metrics`. With `--adminTls` the admin HTTP port has an
//! acceptor of its own from the same files, where a client certificate is optional.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::{TlsConfig, TlsMode, TlsProtocol};

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

/// The certificates in use, and what reloading them has done.
pub struct TlsCertificates {
    config: TlsConfig,
    current: RwLock<Acceptors>,
    /// Reloads that succeeded and failed.
    pub reloads: AtomicU64,
    /// Reloads that failed (the old certificates stayed).
    pub reload_failures: AtomicU64,
}

/// What one reading of the certificate files built.
#[derive(Default)]
struct Acceptors {
    /// The wire port's (`None`: TLS disabled there).
    wire: Option<TlsAcceptor>,
    /// The admin port's (`None`: it speaks plain HTTP).
    admin: Option<TlsAcceptor>,
    /// The server certificate's `notAfter`, in seconds since the epoch (0: no certificate).
    not_after: i64,
}

impl std::fmt::Debug for TlsCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsCertificates").field("mode", &self.config.mode).finish_non_exhaustive()
    }
}

impl TlsCertificates {
    /// Loads the certificates `config` names (nothing when TLS is disabled).
    ///
    /// # Errors
    /// [`TlsError`] for unreadable or inconsistent certificate files.
    pub fn load(config: &TlsConfig) -> Result<Self, TlsError> {
        let loaded = Self { config: config.clone(), ..Self::disabled() };
        loaded.install()?;
        Ok(loaded)
    }

    /// No TLS (the server without certificates; unit tests).
    pub fn disabled() -> Self {
        let config = TlsConfig {
            mode: TlsMode::Disabled,
            certificate_key_file: None,
            ca_file: None,
            disabled_protocols: Vec::new(),
            admin: false,
        };
        Self {
            config,
            current: RwLock::new(Acceptors::default()),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
        }
    }

    fn install(&self) -> Result<(), TlsError> {
        let built = build(&self.config)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = built;
        Ok(())
    }

    /// What new connections are accepted with (`None` when TLS is disabled).
    pub fn acceptor(&self) -> Option<TlsAcceptor> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).wire.clone()
    }

    /// What new admin HTTP connections are accepted with (`None`: plain HTTP, no `--adminTls`).
    pub fn admin_acceptor(&self) -> Option<TlsAcceptor> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).admin.clone()
    }

    /// Whether a client certificate verified against `--tlsCAFile` opens the admin port's
    /// guarded endpoints.
    pub fn admin_client_certificates(&self) -> bool {
        self.config.admin && self.config.ca_file.is_some()
    }

    /// Whether any port serves the certificate files (the wire port's TLS, or `--adminTls`):
    /// then SIGHUP and `rotateCertificates` reload them.
    pub fn in_use(&self) -> bool {
        self.config.mode != TlsMode::Disabled || self.config.admin
    }

    /// Reads the PEM files again; new connections use them, open ones keep theirs.
    ///
    /// # Errors
    /// The new files are unusable: the old certificates stay in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.reloads.fetch_add(1, Ordering::Relaxed);
        self.install().inspect_err(|_| {
            self.reload_failures.fetch_add(1, Ordering::Relaxed);
        })
    }

    /// The server certificate's expiry in seconds since the epoch, when TLS is on.
    pub fn not_after(&self) -> Option<i64> {
        Some(self.current.read().unwrap_or_else(PoisonError::into_inner).not_after).filter(|t| *t != 0)
    }
}

/// Reloads `certificates` (asked for by `why`) and logs the outcome.
///
/// # Errors
/// As [`TlsCertificates::reload`].
pub fn reload_and_log(certificates: &TlsCertificates, why: &str) -> Result<(), TlsError> {
    match certificates.reload() {
        Ok(()) => {
            let expiry = certificates.not_after().unwrap_or_default();
            tracing::info!(target: "NETWORK", id = 4913400, trigger = why, notAfter = expiry, "Rotated the TLS certificates");
            Ok(())
        }
        Err(error) => {
            tracing::warn!(target: "NETWORK", id = 4913401, trigger = why, %error, "TLS certificate rotation failed; the old certificates stay in use");
            Err(error)
        }
    }
}

/// The protocol versions left after `disabled` (rustls speaks only TLS 1.2 and 1.3).
fn versions(disabled: &[TlsProtocol]) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsError> {
    let mut out = Vec::new();
    if !disabled.contains(&TlsProtocol::Tls1_3) {
        out.push(&rustls::version::TLS13);
    }
    if !disabled.contains(&TlsProtocol::Tls1_2) {
        out.push(&rustls::version::TLS12);
    }
    if out.is_empty() {
        return Err(TlsError::Config(
            "net.tls.disabledProtocols leaves no protocol (TLS 1.2 and 1.3 are the only ones)".into(),
        ));
    }
    Ok(out)
}

/// Builds the acceptors the configuration asks for and reads the server certificate's expiry.
fn build(config: &TlsConfig) -> Result<Acceptors, TlsError> {
    let wire_tls = config.mode != TlsMode::Disabled;
    if !wire_tls && !config.admin {
        return Ok(Acceptors::default());
    }
    let Some(path) = &config.certificate_key_file else {
        return Err(TlsError::Config("net.tls.certificateKeyFile is required".into()));
    };
    let certificates = read_certificates(path)?;
    let not_after = certificates
        .first()
        .and_then(|leaf| x509_parser::parse_x509_certificate(leaf).ok())
        .map_or(0, |(_, cert)| cert.validity().not_after.timestamp());
    let key = PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error("private key", path, e))?;
    let roots = match &config.ca_file {
        Some(ca_path) => {
            let mut roots = RootCertStore::empty();
            for ca in read_certificates(ca_path)? {
                roots.add(ca).map_err(|e| TlsError::Config(format!("CA file {}: {e}", ca_path.display())))?;
            }
            Some(Arc::new(roots))
        }
        None => None,
    };
    let acceptor = |client_certificate: ClientCertificate| {
        server_config(config, roots.clone(), client_certificate, certificates.clone(), key.clone_key())
    };
    Ok(Acceptors {
        // mongod requires a client certificate once it has a CA to check it against.
        wire: wire_tls.then(|| acceptor(ClientCertificate::Required)).transpose()?,
        // The probes come from orchestrators that present none.
        admin: config.admin.then(|| acceptor(ClientCertificate::Optional)).transpose()?,
        not_after,
    })
}

/// Whether a TLS client must present a certificate when there is a CA to verify it with.
#[derive(Clone, Copy)]
enum ClientCertificate {
    Required,
    Optional,
}

fn server_config(
    config: &TlsConfig,
    roots: Option<Arc<RootCertStore>>,
    client_certificate: ClientCertificate,
    certificates: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<TlsAcceptor, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(&config.disabled_protocols)?)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match roots {
        Some(roots) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let verifier = match client_certificate {
                ClientCertificate::Required => verifier,
                ClientCertificate::Optional => verifier.allow_unauthenticated(),
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| TlsError::Config(e.to_string()))?)
        }
        None => builder.with_no_client_auth(),
    };
    let server_config = builder.with_single_cert(certificates, key).map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(server_config)))
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    crate::pem::certificates(path).map_err(|message| TlsError::Pem {
        what: "certificates",
        path: path.to_owned(),
        message,
    })
}

fn pem_error(what: &'static str, path: &Path, error: impl std::fmt::Display) -> TlsError {
    TlsError::Pem { what, path: path.to_owned(), message: error.to_string() }
}
