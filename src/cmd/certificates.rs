//! `rotateCertificates`: reads the TLS certificate files again, as SIGHUP does; new
//! connections use the new certificates, open ones keep their sessions.

use bson::Document;

use super::context::RequestCtx;
use super::request::CommandRequest;
use crate::error::{Error, ErrorCode, Result};

/// `rotateCertificates: 1, message?`: the message goes to the log.
pub fn rotate_certificates(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    if req.db() != "admin" {
        return Err(Error::new(
            ErrorCode::Unauthorized,
            "rotateCertificates may only be run against the admin database.",
        ));
    }
    let message = req.str_arg("message")?.unwrap_or("");
    if !ctx.state.tls.in_use() {
        return Err(Error::new(
            ErrorCode::InvalidSSLConfiguration,
            "TLS is not enabled; there are no certificates to rotate",
        ));
    }
    tracing::info!(target: "NETWORK", id = 4913401, message, "Rotating the TLS certificates");
    crate::state::tls::reload_and_log(&ctx.state.tls, "rotateCertificates")
        .map_err(|e| Error::new(ErrorCode::InvalidSSLConfiguration, format!("Certificate rotation failed: {e}")))?;
    Ok(Document::new())
}
