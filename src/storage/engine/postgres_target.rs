//! Where the PostgreSQL engine connects and how: the `--pgUri`'s connection settings and its
//! TLS, after libpq's `sslmode`, `sslrootcert`, `sslcert` and `sslkey`.
//!
//! - `disable`: plain TCP.
//! - `prefer` (libpq's default): TLS when the server offers it, plain otherwise; the
//!   certificate is not checked (libpq checks none either).
//! - `require`: TLS or no connection; the certificate is checked against `sslrootcert` when
//!   one is given (libpq then behaves as `verify-ca`), and not at all otherwise.
//! - `verify-ca`: TLS with a certificate signed by a root of `sslrootcert`.
//! - `verify-full`: as `verify-ca`, and the certificate names the host connected to.
//!
//! `sslrootcert=system` takes the system's roots. With TLS, SCRAM authentication binds to the
//! channel (`SCRAM-SHA-256-PLUS`) where the server offers it, as libpq does.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use postgres::Client;
use postgres::config::SslMode;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The URI options this module takes out before the rest goes to the client's parser.
const TLS_OPTIONS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// libpq's `sslmode`, as far as Monarch takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// No TLS.
    Disable,
    /// TLS when offered, unchecked.
    Prefer,
    /// TLS always; checked only against a given `sslrootcert`.
    Require,
    /// TLS with a certificate chain to a trusted root.
    VerifyCa,
    /// TLS with a trusted chain that names the host.
    VerifyFull,
}

impl TlsMode {
    fn parse(text: &str) -> Result<Self, String> {
        Ok(match text {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            // libpq's "allow" tries plain first: a connection that could have been encrypted
            // would silently not be.
            "allow" => return Err("sslmode=allow is not supported: use prefer, require or verify-full".into()),
            other => {
                return Err(format!("sslmode={other}: not one of disable, prefer, require, verify-ca, verify-full"));
            }
        })
    }

    /// The name libpq gives it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// The database the PostgreSQL engine connects to, and the TLS it connects with.
#[derive(Clone)]
pub struct PostgresTarget {
    config: postgres::Config,
    mode: TlsMode,
    tls: MakeRustlsConnect,
}

impl fmt::Debug for PostgresTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresTarget").field("config", &self.config).field("mode", &self.mode).finish()
    }
}

impl PostgresTarget {
    /// Parses a `postgresql://` URI (or libpq's `key=value` form, which takes no TLS option
    /// but `sslmode` = `disable`, `prefer` or `require`), reading the certificate files it
    /// names.
    ///
    /// # Errors
    /// A text that is not a connection string, an unknown or unsupported option, a certificate
    /// or key file that cannot be read or holds none.
    pub fn parse(uri: &str) -> Result<Self, String> {
        let (rest, options) = take_tls_options(uri)?;
        let mut config: postgres::Config = rest.parse().map_err(|error| format!("not a PostgreSQL URI: {error}"))?;
        // An empty value is no value, as for libpq.
        let given = |name: &str| {
            options.iter().find(|(key, value)| key == name && !value.is_empty()).map(|(_, value)| value.as_str())
        };
        let mut mode = match given("sslmode") {
            Some(text) => TlsMode::parse(text)?,
            // The client's parser read the key=value form's own sslmode.
            None => match config.get_ssl_mode() {
                SslMode::Disable => TlsMode::Disable,
                SslMode::Require => TlsMode::Require,
                _ => TlsMode::Prefer,
            },
        };
        let root = given("sslrootcert").map(PathBuf::from);
        if mode == TlsMode::Require && root.is_some() {
            mode = TlsMode::VerifyCa;
        }
        config.ssl_mode(match mode {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
        });
        let client_files = match (given("sslcert"), given("sslkey")) {
            (Some(cert), Some(key)) => Some((Path::new(cert), Path::new(key))),
            (None, None) => None,
            _ => return Err("sslcert and sslkey go together: the client's certificate and its key".into()),
        };
        let tls = client_config(mode, root.as_deref(), client_files)?;
        Ok(Self { config, mode, tls: MakeRustlsConnect::new(tls) })
    }

    /// The connection settings (hosts, database, user, password).
    pub fn config(&self) -> &postgres::Config {
        &self.config
    }

    /// The connection settings, to change (the database, a password from a file).
    pub fn config_mut(&mut self) -> &mut postgres::Config {
        &mut self.config
    }

    /// The TLS mode.
    pub fn mode(&self) -> TlsMode {
        self.mode
    }

    /// Opens a connection (a blocking call: see the engine's `blocking`).
    ///
    /// # Errors
    /// No host answers, the TLS handshake or authentication fails.
    pub fn connect(&self) -> Result<Client, postgres::Error> {
        self.config.connect(self.tls.clone())
    }
}

/// Splits the TLS options off a URI's query: the rest, and the options with their decoded
/// values. The key=value form is returned whole.
fn take_tls_options(uri: &str) -> Result<(String, Vec<(String, String)>), String> {
    let is_uri = uri.starts_with("postgresql://") || uri.starts_with("postgres://");
    let Some((base, query)) = uri.split_once('?').filter(|_| is_uri) else {
        return Ok((uri.to_owned(), Vec::new()));
    };
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if TLS_OPTIONS.contains(&key) {
            taken.push((key.to_owned(), percent_decode(value)?));
        } else {
            kept.push(pair);
        }
    }
    let rest = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    Ok((rest, taken))
}

/// A URI query value with its `%XX` escapes decoded.
fn percent_decode(value: &str) -> Result<String, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        if byte == b'%' {
            let hex = bytes
                .get(at + 1..at + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| format!("{value}: a bad %-escape"))?;
            out.push(hex);
            at += 3;
        } else {
            out.push(byte);
            at += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{value}: not UTF-8 once decoded"))
}

/// The rustls configuration of `mode`.
fn client_config(
    mode: TlsMode,
    root: Option<&Path>,
    client_files: Option<(&Path, &Path)>,
) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = match mode {
        TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => None,
        TlsMode::VerifyCa | TlsMode::VerifyFull => Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots(mode, root)?), provider.clone())
                .build()
                .map_err(|error| format!("sslrootcert: {error}"))?,
        ),
    };
    let verifier = Arc::new(Verifier {
        chain,
        name: mode == TlsMode::VerifyFull,
        algorithms: provider.signature_verification_algorithms,
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match client_files {
        Some((cert, key)) => {
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|error| format!("sslkey {}: no private key: {error}", key.display()))?;
            builder
                .with_client_auth_cert(certificates("sslcert", cert)?, key)
                .map_err(|error| format!("sslcert {}: {error}", cert.display()))
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

/// The roots to check the server's certificate with: `sslrootcert`'s file, the system's
/// (`sslrootcert=system`), or libpq's default file `~/.postgresql/root.crt`.
fn roots(mode: TlsMode, root: Option<&Path>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    if root == Some(Path::new("system")) {
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if roots.is_empty() {
            return Err("sslrootcert=system: the system has no CA certificates".into());
        }
        return Ok(roots);
    }
    let default = std::env::var_os("HOME").map(|home| Path::new(&home).join(".postgresql/root.crt"));
    let path = match (root, default) {
        (Some(path), _) => path.to_owned(),
        (None, Some(path)) if path.exists() => path,
        _ => {
            return Err(format!(
                "sslmode={} needs sslrootcert: the CA file that signed the server's certificate, or \
                 \"system\" for the system's roots",
                mode.name()
            ));
        }
    };
    for certificate in certificates("sslrootcert", &path)? {
        roots.add(certificate).map_err(|error| format!("sslrootcert {}: {error}", path.display()))?;
    }
    Ok(roots)
}

/// The certificates in the PEM file at `path` (at least one), named `option` in errors.
fn certificates(option: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    crate::pem::certificates(path).map_err(|error| format!("{option} {}: {error}", path.display()))
}

/// How the server's certificate is checked, after `sslmode`: not at all (`prefer`,
/// `require` without a root: the connection is encrypted, not authenticated), its chain to a
/// trusted root (`verify-ca`), or its chain and the host's name (`verify-full`). The
/// handshake's signatures are checked in every mode.
#[derive(Debug)]
struct Verifier {
    /// The chain's check; none in the unchecked modes.
    chain: Option<Arc<WebPkiServerVerifier>>,
    /// Whether the certificate must name the host.
    name: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else { return Ok(ServerCertVerified::assertion()) };
        // webpki compares the name only once the chain is good.
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.name => Ok(ServerCertVerified::assertion()),
            checked => checked,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_options_leave_the_query_and_modes_follow_libpq() -> Result<(), String> {
        let (rest, taken) = take_tls_options(
            "postgresql://u@db1,db2/app?target_session_attrs=read-write&sslmode=verify-ca&sslrootcert=%2Fetc%2Fca.pem",
        )?;
        assert_eq!(rest, "postgresql://u@db1,db2/app?target_session_attrs=read-write");
        assert_eq!(
            taken,
            vec![("sslmode".to_owned(), "verify-ca".to_owned()), ("sslrootcert".to_owned(), "/etc/ca.pem".to_owned())]
        );
        assert_eq!(take_tls_options("postgresql://db/app?sslmode=disable")?.0, "postgresql://db/app");
        assert_eq!(take_tls_options("host=db sslmode=require")?, ("host=db sslmode=require".to_owned(), vec![]));
        assert_eq!(percent_decode("%zz"), Err("%zz: a bad %-escape".to_owned()));

        let mode = |uri: &str| PostgresTarget::parse(uri).map(|target| target.mode());
        assert_eq!(mode("postgresql://db/app"), Ok(TlsMode::Prefer));
        assert_eq!(mode("postgresql://db/app?sslmode=disable"), Ok(TlsMode::Disable));
        assert_eq!(mode("postgresql://db/app?sslmode=require"), Ok(TlsMode::Require));
        assert_eq!(mode("host=db dbname=app sslmode=require"), Ok(TlsMode::Require));
        assert_eq!(
            mode("postgresql://db/app?sslmode=allow"),
            Err("sslmode=allow is not supported: use prefer, require or verify-full".to_owned())
        );
        assert_eq!(
            mode("postgresql://db/app?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"),
            Err("sslrootcert /nonexistent/ca.pem: I/O error: No such file or directory (os error 2)".to_owned())
        );
        assert_eq!(
            mode("postgresql://db/app?sslmode=require&sslcert=/c.pem"),
            Err("sslcert and sslkey go together: the client's certificate and its key".to_owned())
        );
        Ok(())
    }
}
