//! PEM files of certificates, read one way for the three TLS users: the server's listeners
//! (`state::tls`), the backup client (`backup::client_tls`) and the PostgreSQL engine's
//! connections (`storage::engine::postgres_target`). Each names the file in its own errors.

use std::path::Path;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// The certificates in the PEM file at `path`, in order: at least one, else why not (without
/// the path, which the caller names).
///
/// # Errors
/// The file cannot be read, holds a malformed PEM section, or holds no certificate.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let found = CertificateDer::pem_file_iter(path)
        .map_err(|error| error.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| error.to_string())?;
    if found.is_empty() {
        return Err("no certificate found".into());
    }
    Ok(found)
}
