//! Test-only commands (registered with `enableTestCommands`): `configureFailPoint`, and how
//! an armed `failCommand` fail point changes a command's outcome.

use bson::raw::cstr;
use bson::{Bson, Document, RawBsonRef, doc};

use super::{CommandRequest, CommandSpec, OwnedCtx, Reply, RequestCtx, run};
use crate::error::{Error, ErrorCode, Result};
use crate::state::failpoints::FailCommand;

/// `configureFailPoint: "failCommand", mode, data`.
pub fn configure_fail_point(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let name = match req.command_value() {
        Some(RawBsonRef::String(name)) => name,
        Some(other) => return Err(req.wrong_type("configureFailPoint", other, "string")),
        None => return Err(Error::new(ErrorCode::FailedToParse, "configureFailPoint requires a fail point name")),
    };
    if name == "failJournalSync" {
        // Makes journal syncs fail as a disk error would, so tests can see the server turn
        // unwritable and unready. Not in mongod; only `alwaysOn` and `off`.
        let on = match req.get("mode") {
            Some(RawBsonRef::String("alwaysOn")) => true,
            Some(RawBsonRef::String("off")) => false,
            _ => return Err(Error::new(ErrorCode::BadValue, "failJournalSync supports only mode alwaysOn or off")),
        };
        ctx.state.storage.fail_journal_syncs(on);
        return Ok(doc! { "count": 0_i64 });
    }
    let count = ctx.state.failpoints.configure(name, req.get("mode"), req.doc_arg("data")?)?;
    Ok(doc! { "count": i64::try_from(count).unwrap_or(i64::MAX) })
}

/// Applies a fired `failCommand`: stall, then close the connection, fail with its error, or
/// run the command and attach its write concern error. The stall (`blockConnection`) is an
/// async sleep of this connection's task, as mongod blocks only the connection's own thread:
/// it holds no thread here.
pub async fn fail_command(
    ctx: &OwnedCtx,
    spec: &'static CommandSpec,
    req: &std::sync::Arc<CommandRequest>,
    action: &FailCommand,
) -> Reply {
    if let Some(block) = action.block {
        tokio::time::sleep(block).await;
    }
    if action.close_connection {
        ctx.lock_client().close_requested = true;
        return Reply::from(Document::new());
    }
    // As mongod's fail point: `errorLabels` as given (even empty); without them, the labels
    // the server gives (the dispatcher adds RetryableWriteError to a top-level error).
    let labels = || action.error_labels.clone().map(Bson::Array);
    if let Some(code) = action.error_code {
        let mut reply = doc! {
            "ok": 0.0,
            "errmsg": "Failing command via 'failCommand' failpoint",
            "code": code,
            "codeName": ErrorCode::from_code(code).map_or_else(|| format!("Location{code}"), |c| c.name().to_owned()),
        };
        if let Some(labels) = labels() {
            reply.insert("errorLabels", labels);
        }
        return Reply::from(reply);
    }
    let mut reply = match run(ctx, spec, req).await {
        Ok(reply) => reply.with_ok(),
        Err(error) => return Reply::from(error.to_reply()),
    };
    if let Some(error) = &action.write_concern_error {
        let mut appended = reply.append(cstr!("writeConcernError"), Bson::Document(error.clone()));
        let implied = || {
            let code = error.get_i32("code").ok().and_then(ErrorCode::from_code)?;
            (super::generic::is_retryable_write(req) && super::is_retryable_error(code))
                .then(|| Bson::Array(vec![Bson::String("RetryableWriteError".to_owned())]))
        };
        if let Some(labels) = labels().or_else(implied) {
            appended = appended.and_then(|()| reply.append(cstr!("errorLabels"), labels));
        }
        if let Err(error) = appended {
            return Reply::from(error.to_reply());
        }
    }
    reply
}
