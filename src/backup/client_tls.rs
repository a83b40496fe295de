//! TLS for the command line's client (`monarchd backup`, `dump`, `restore --dir`, `export`,
//! `import`): the URI options `tls=true` (or `ssl=true`), `tlsCAFile` (the CA that signed
//! the server's certificate; without it, the system's roots) and `tlsCertificateKeyFile` (the
//! client's certificate and key, for a server that requires one), as drivers take them. The
//! server's certificate is always verified, host name included.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::error::BackupError;

/// The TLS settings of a `mongodb://` URI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// `tlsCAFile`: the roots to verify the server with; the system's when absent.
    pub ca_file: Option<PathBuf>,
    /// `tlsCertificateKeyFile`: the client's certificate chain and key, PEM, in one file.
    pub certificate_key_file: Option<PathBuf>,
}

/// A TLS connection over TCP.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// Wraps `tcp` in TLS to `host` with `options` (the handshake completes on first use).
///
/// # Errors
/// [`BackupError::BadArgument`] for a file that holds no certificate or key, a host that is
/// not a valid server name, or no root to verify with.
pub fn connect(tcp: TcpStream, host: &str, options: &TlsOptions) -> Result<TlsStream, BackupError> {
    let bad = |what: String| BackupError::BadArgument(what);
    let mut roots = RootCertStore::empty();
    match &options.ca_file {
        Some(path) => {
            for certificate in certificates(path)? {
                roots.add(certificate).map_err(|e| bad(format!("tlsCAFile {}: {e}", path.display())))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
            if roots.is_empty() {
                return Err(bad("no system CA certificates to verify the server with: give tlsCAFile".to_owned()));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| BackupError::Internal(e.to_string()))?
        .with_root_certificates(roots);
    let config = match &options.certificate_key_file {
        Some(path) => {
            let key = PrivateKeyDer::from_pem_file(path)
                .map_err(|e| bad(format!("tlsCertificateKeyFile {}: no private key: {e}", path.display())))?;
            builder
                .with_client_auth_cert(certificates(path)?, key)
                .map_err(|e| bad(format!("tlsCertificateKeyFile {}: {e}", path.display())))?
        }
        None => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from(host.to_owned()).map_err(|e| bad(format!("{host}: not a TLS server name: {e}")))?;
    let connection =
        ClientConnection::new(Arc::new(config), name).map_err(|e| BackupError::Internal(format!("TLS: {e}")))?;
    Ok(StreamOwned::new(connection, tcp))
}

/// Completes the TLS handshake of `stream` (within the socket's timeouts), so a server that
/// does not speak TLS, or is not trusted, fails here.
///
/// # Errors
/// The handshake's errors ("invalid peer certificate: ...", a reset, a timeout).
pub fn handshake(stream: &mut TlsStream) -> std::io::Result<()> {
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(())
}

/// The certificates in the PEM file at `path` (at least one).
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, BackupError> {
    crate::pem::certificates(path).map_err(|e| BackupError::BadArgument(format!("{}: {e}", path.display())))
}
