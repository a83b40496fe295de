//! The SASL authentication commands: `saslStart` and `saslContinue` (SCRAM-SHA-1 and
//! SCRAM-SHA-256 against the user catalog) and `logout`. Every failure of the exchange answers
//! 18 AuthenticationFailed with mongod's message, whatever went wrong (a missing user, a wrong
//! password, a malformed message), and the reason goes to the log only.

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document, RawBsonRef, doc};

use super::context::RequestCtx;
use super::request::CommandRequest;
use crate::auth::scram::{Mechanism, ServerConversation};
use crate::error::{Error, ErrorCode, Result};
use crate::exec::principals::{self, users};

/// The one conversation id a connection has (mongod numbers them from 1 per connection and
/// keeps one at a time).
const CONVERSATION_ID: i32 = 1;

fn failed() -> Error {
    Error::new(ErrorCode::AuthenticationFailed, "Authentication failed.")
}

/// A failed authentication from this connection's address: counted, and answered after the
/// address's growing delay.
fn failed_from(ctx: &mut RequestCtx<'_>) -> Error {
    let delay = ctx.state.abuse.auth_failed(ctx.client.remote.ip(), std::time::Instant::now());
    ctx.reply_after(delay);
    failed()
}

fn payload(req: &CommandRequest) -> Result<&[u8]> {
    match req.get("payload") {
        Some(RawBsonRef::Binary(b)) => Ok(b.bytes),
        Some(RawBsonRef::String(s)) => Ok(s.as_bytes()),
        Some(other) => Err(req.wrong_type("payload", other, "binData")),
        None => Err(Error::new(
            ErrorCode::Location40414,
            format!("BSON field '{}.payload' is missing but a required field", req.name()),
        )),
    }
}

fn binary(bytes: Vec<u8>) -> Bson {
    Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes })
}

/// `saslStart: 1, mechanism, payload`: the client's first SCRAM message; answers the server's.
pub fn sasl_start(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let name = req.str_arg("mechanism")?.ok_or_else(|| {
        Error::new(ErrorCode::Location40414, "BSON field 'saslStart.mechanism' is missing but a required field")
    })?;
    let db = req.db().to_owned();
    start(ctx, name, payload(req)?, db)
}

/// Begins a conversation for the user the client's first message names in `db`.
fn start(ctx: &mut RequestCtx<'_>, name: &str, client_first: &[u8], db: String) -> Result<Document> {
    let Some(mechanism) = Mechanism::from_name(name) else {
        return Err(Error::new(
            ErrorCode::MechanismUnavailable,
            format!("Received authentication for mechanism {name} which is not enabled"),
        ));
    };
    let storage = &ctx.state.storage;
    let mut lookup_error = None;
    let started = ServerConversation::start(mechanism, client_first, |user| match users::find(storage, &db, user) {
        Ok(found) => found.and_then(|u| u.credentials_for(mechanism).cloned()),
        Err(e) => {
            lookup_error = Some(e);
            None
        }
    });
    if let Some(error) = lookup_error {
        return Err(error);
    }
    let (conversation, reply) = match started {
        Ok(done) => done,
        Err(e) => {
            tracing::info!(target: "ACCESS", id = 20249, mechanism = name, db = %db, error = %e, "Authentication failed");
            super::audit::authentication(ctx, "", &db, name, ErrorCode::AuthenticationFailed.code());
            return Err(failed_from(ctx));
        }
    };
    ctx.client.auth.conversation = Some((db, conversation));
    Ok(doc! { "conversationId": CONVERSATION_ID, "done": false, "payload": binary(reply) })
}

/// `hello`'s `saslSupportedMechs: "<db>.<user>"`: the mechanisms the user has credentials for;
/// `None` for a user that does not exist (mongod then leaves the field out).
///
/// # Errors
/// 2 BadValue for a name without a database; storage errors.
pub(super) fn supported_mechanisms(ctx: &RequestCtx<'_>, qualified: &str) -> Result<Option<Vec<&'static str>>> {
    let Some((db, user)) = qualified.split_once('.') else {
        return Err(Error::new(ErrorCode::BadValue, "UserName must contain a '.' separated database.user pair"));
    };
    let found = users::find(&ctx.state.storage, db, user)?;
    Ok(found.map(|u| u.credentials.iter().map(|(m, _)| m.name()).collect()))
}

/// `authenticate: 1, mechanism: "MONGODB-X509", user?` on `$external`: authenticates the
/// connection as the subject of its verified client certificate (the only mechanism mongod
/// 7.0 takes here).
pub fn authenticate(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let mechanism = req.str_arg("mechanism")?.ok_or_else(|| {
        Error::new(ErrorCode::Location40414, "BSON field 'authenticate.mechanism' is missing but a required field")
    })?;
    if mechanism != X509 {
        return Err(Error::new(
            ErrorCode::MechanismUnavailable,
            format!("Received authentication for mechanism {mechanism} which is not enabled"),
        ));
    }
    let db = req.db().to_owned();
    x509(ctx, &db, req.str_arg("user")?)
}

/// The X.509 mechanism's name.
const X509: &str = "MONGODB-X509";

/// Authenticates as the certificate's subject, a user of `$external` (`user`, when given, must
/// name the same subject). Every failure is 18 with the one message; the log says why.
fn x509(ctx: &mut RequestCtx<'_>, db: &str, user: Option<&str>) -> Result<Document> {
    let subject = ctx.client.certificate_subject.clone().unwrap_or_default();
    let reason = if db != "$external" {
        Some("X.509 authentication must always use the $external database")
    } else if subject.is_empty() {
        Some("No verified subject name available from client")
    } else if user.is_some_and(|u| u != subject) {
        Some("There is no x.509 client certificate matching the user")
    } else {
        None
    };
    let found = match reason {
        None => users::find(&ctx.state.storage, db, &subject)?,
        Some(_) => None,
    };
    if found.is_none() {
        let reason = reason.unwrap_or("no such user in $external");
        tracing::info!(target: "ACCESS", id = 20249, mechanism = X509, user = %subject, db, error = reason, "Authentication failed");
        super::audit::authentication(ctx, &subject, db, X509, ErrorCode::AuthenticationFailed.code());
        return Err(failed_from(ctx));
    }
    sign_in(ctx, &subject, db, X509)?;
    Ok(doc! { "dbname": db, "user": subject })
}

/// Adds `name` of `db` to the connection's users, with what all of them may do now.
fn sign_in(ctx: &mut RequestCtx<'_>, name: &str, db: &str, mechanism: &str) -> Result<()> {
    // The generation before the catalog is read: a change racing this one makes the next
    // command resolve again.
    let generation = ctx.state.authz.generation();
    let mut names: Vec<(String, String)> =
        ctx.client.auth.names.iter().filter(|(u, d)| !(u == name && d == db)).cloned().collect();
    names.push((name.to_owned(), db.to_owned()));
    let (authenticated, privileges) = principals::resolve_users(&ctx.state.storage, &names)?;
    if !authenticated.iter().any(|u| u.name == name && u.db == db) {
        // Dropped meanwhile.
        return Err(failed());
    }
    tracing::info!(target: "ACCESS", id = 5286306, mechanism, user = %name, db, "Successfully authenticated");
    ctx.client.auth.set_users(authenticated, privileges, generation);
    ctx.state.abuse.auth_succeeded(ctx.client.remote.ip());
    super::audit::authentication(ctx, name, db, mechanism, 0);
    Ok(())
}

/// `hello`'s `speculativeAuthenticate`: `{saslStart: 1, mechanism, payload, db}`, the first
/// step of a SCRAM exchange, or `{authenticate: 1, mechanism: "MONGODB-X509", db}`, the whole
/// X.509 one; `None` (the field left out, so the driver authenticates with the commands) when
/// it fails, as mongod.
pub(super) fn speculative(ctx: &mut RequestCtx<'_>, spec: &bson::RawDocument) -> Option<Document> {
    if spec.get("authenticate").ok().flatten().is_some() {
        let db = spec.get_str("db").unwrap_or("$external").to_owned();
        if spec.get_str("mechanism").ok()? != X509 {
            return None;
        }
        return x509(ctx, &db, spec.get_str("user").ok()).ok();
    }
    let mechanism = spec.get_str("mechanism").ok()?;
    let payload = match spec.get("payload").ok()?? {
        RawBsonRef::Binary(b) => b.bytes,
        _ => return None,
    };
    let db = spec.get_str("db").ok()?.to_owned();
    start(ctx, mechanism, payload, db).ok()
}

/// `saslContinue: 1, conversationId, payload`: the client's proof; answers the server's
/// signature and, when it matches, authenticates the connection.
pub fn sasl_continue(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let client_final = payload(req)?;
    let Some((db, conversation)) = ctx.client.auth.conversation.take() else {
        return Err(Error::new(ErrorCode::ProtocolError, "No SASL session state found"));
    };
    match req.get("conversationId") {
        Some(RawBsonRef::Int32(CONVERSATION_ID)) | None => {}
        Some(_) => return Err(Error::new(ErrorCode::ProtocolError, "sasl: Mismatched conversation id")),
    }
    let verified = conversation.finish(client_final);
    let reply = match verified {
        Ok(reply) => reply,
        Err(e) => {
            tracing::info!(
                target: "ACCESS", id = 20249, mechanism = conversation.mechanism().name(), user = conversation.user(),
                db = %db, error = %e, "Authentication failed"
            );
            let mechanism = conversation.mechanism().name();
            super::audit::authentication(
                ctx,
                conversation.user(),
                &db,
                mechanism,
                ErrorCode::AuthenticationFailed.code(),
            );
            return Err(failed_from(ctx));
        }
    };
    let name = conversation.user().to_owned();
    sign_in(ctx, &name, &db, conversation.mechanism().name())?;
    Ok(doc! { "conversationId": CONVERSATION_ID, "done": true, "payload": binary(reply) })
}

/// `logout`: forgets the users the connection authenticated as against this database.
pub fn logout(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let db = req.db();
    let before = ctx.client.auth.names.to_vec();
    if ctx.client.auth.users.iter().any(|u| u.db == db) {
        let remaining: Vec<(String, String)> = before.iter().filter(|(_, d)| d != db).cloned().collect();
        let generation = ctx.state.authz.generation();
        let (users, privileges) = principals::resolve_users(&ctx.state.storage, &remaining)?;
        ctx.client.auth.set_users(users, privileges, generation);
    }
    super::audit::logout(ctx, db, &before);
    Ok(Document::new())
}
