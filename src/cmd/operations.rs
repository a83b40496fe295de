//! Operations in flight: `currentOp` lists them, `killOp` interrupts one at its next check.

use std::sync::atomic::Ordering;

use bson::{Bson, Document, RawBsonRef, RawDocumentBuf, doc};

use super::options::is_generic_argument;
use super::{Authorizer, CommandRequest, RequestCtx};
use crate::auth::action::ActionType;
use crate::auth::resource::Target;
use crate::error::{Error, ErrorCode, Result};
use crate::op::Operation;
use crate::query::Filter;

/// `currentOp`: the operations running now, filtered by the command's other fields
/// (`{currentOp: 1, active: true, "command.find": "c"}`), in mongod's `inprog` shape.
pub fn current_op(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    if req.db() != "admin" {
        return Err(Error::new(ErrorCode::Unauthorized, "currentOp may only be run against the admin database."));
    }
    req.bool_arg("$all")?;
    let own_only = req.bool_arg("$ownOps")?.unwrap_or(false);
    let mut filter_doc = RawDocumentBuf::new();
    for element in req.body().iter().skip(1) {
        let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        // Every field but the generic arguments and the two switches is a filter.
        if !is_generic_argument(key.as_str()) && !matches!(key.as_str(), "$all" | "$ownOps") {
            filter_doc.append(key, value);
        }
    }
    let filter = Filter::parse(&filter_doc)?;
    let mut inprog = Vec::new();
    let authz = Authorizer::of(ctx);
    for op in ctx.state.ops.all() {
        if own_only && !authz.owns(&op.users) {
            continue;
        }
        let entry = describe(&op);
        let raw = RawDocumentBuf::try_from(&entry).map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))?;
        if filter.try_matches(&raw)? {
            inprog.push(Bson::Document(entry));
        }
    }
    Ok(doc! { "inprog": inprog })
}

/// `currentOp`: inprog on the cluster, unless only the user's own operations are asked for
/// (`$ownOps: true`).
pub(super) fn authorize_current_op(authz: &Authorizer<'_>, req: &CommandRequest) -> bool {
    matches!(req.get("$ownOps"), Some(RawBsonRef::Boolean(true))) || authz.allows(Target::Cluster, ActionType::Inprog)
}

/// `$currentOp` as the first stage of `aggregate: 1` on `admin` (what mongosh's
/// `db.currentOp()` sends): one document per operation in flight, in `currentOp`'s shape.
/// `allUsers` (else only the user's own operations; without authentication every operation
/// is the user's own), `idleConnections`, `truncateOps`, `localOps` and `backtrace` are
/// accepted; idle connections are not listed.
pub fn current_op_stage(
    ctx: &RequestCtx<'_>,
    stage: &bson::RawDocument,
) -> Result<crate::state::cursors::DocumentStream> {
    let Ok(Some(RawBsonRef::Document(spec))) = stage.get("$currentOp") else {
        return Err(Error::new(ErrorCode::FailedToParse, "$currentOp options must be specified in an object"));
    };
    for element in spec {
        let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        match (key.as_str(), value) {
            ("allUsers" | "idleConnections" | "truncateOps" | "localOps" | "backtrace", RawBsonRef::Boolean(_)) => {}
            ("allUsers" | "idleConnections" | "truncateOps" | "localOps" | "backtrace", other) => {
                return Err(Error::new(
                    ErrorCode::FailedToParse,
                    format!(
                        "The '{key}' parameter of the $currentOp stage must be a boolean value, but found: {}",
                        super::type_name(other.element_type())
                    ),
                ));
            }
            (other, _) => {
                return Err(Error::new(
                    ErrorCode::FailedToParse,
                    format!("Unrecognized option '{other}' in $currentOp stage."),
                ));
            }
        }
    }
    let all_users = spec.get_bool("allUsers").unwrap_or(false);
    let authz = Authorizer::of(ctx);
    let entries = ctx
        .state
        .ops
        .all()
        .iter()
        .filter(|op| all_users || authz.owns(&op.users))
        .map(|op| {
            RawDocumentBuf::try_from(&describe(op)).map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))
        })
        .collect::<Vec<_>>();
    Ok(Box::new(entries.into_iter()))
}

/// One `inprog` entry.
fn describe(op: &Operation) -> Document {
    let running = op.started.elapsed();
    let mut entry = doc! {
        "type": "op",
        "host": format!("{}", crate::host::hostname()),
        "desc": format!("conn{}", op.connection_id),
        "connectionId": i64::try_from(op.connection_id).unwrap_or(i64::MAX),
        "client": op.client.to_string(),
    };
    if let Some(app) = &op.app_name {
        entry.insert("appName", app.as_str());
    }
    entry.insert("active", true);
    entry.insert("currentOpTime", bson::DateTime::now().try_to_rfc3339_string().unwrap_or_default());
    if !op.users.is_empty() {
        let users: Vec<Bson> =
            op.users.iter().map(|(user, db)| Bson::Document(doc! { "user": user, "db": db })).collect();
        entry.insert("effectiveUsers", users);
    }
    entry.insert("opid", i64::from(op.op_id));
    if let Some(trace) = &op.trace {
        // Monarch's own: the trace of a `traceparent` in the comment (crate::obs::correlation).
        entry.insert("traceId", trace.trace_id.as_str());
    }
    entry.insert("secs_running", i64::try_from(running.as_secs()).unwrap_or(i64::MAX));
    entry.insert("microsecs_running", i64::try_from(running.as_micros()).unwrap_or(i64::MAX));
    entry.insert("op", op.kind.name());
    entry.insert("ns", op.ns.as_str());
    let mut command = Document::try_from(op.command.as_ref()).unwrap_or_default();
    command.remove("lsid");
    if command.contains_key("pwd") {
        // mongod's sensitive field: never shown.
        command.insert("pwd", "xxx");
    }
    entry.insert("command", command);
    let (keys, docs, plan) = op.examined();
    if let Some(plan) = plan {
        entry.insert("planSummary", plan.summary);
        entry.insert("queryShapeHash", plan.shape_hash);
    }
    entry.insert("keysExamined", i64::try_from(keys).unwrap_or(i64::MAX));
    entry.insert("docsExamined", i64::try_from(docs).unwrap_or(i64::MAX));
    entry.insert("nreturned", i64::try_from(op.docs.returned.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
    entry.insert("numYields", 0);
    entry.insert("killPending", op.interrupt.is_killed());
    entry.insert("waitingForLock", false);
    entry.insert("locks", Document::new());
    entry
}

/// `killOp: 1, op: <opid>`: marks the operation killed; it stops with 11601 Interrupted at its
/// next check (every 128 keys or documents read).
pub fn kill_op(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    if req.db() != "admin" {
        return Err(Error::new(ErrorCode::Unauthorized, "killOp may only be run against the admin database."));
    }
    let op_id = match req.get("op") {
        Some(RawBsonRef::Int32(n)) => i64::from(n),
        Some(RawBsonRef::Int64(n)) => n,
        Some(RawBsonRef::Double(n)) if n.fract() == 0.0 => n as i64,
        Some(other) => return Err(req.wrong_type("op", other, "number")),
        None => return Err(Error::new(ErrorCode::FailedToParse, "Did not provide \"op\" field")),
    };
    if let Ok(op_id) = u32::try_from(op_id) {
        // Another user's operation takes killop on the cluster.
        let authz = Authorizer::of(ctx);
        let target = ctx.state.ops.all().into_iter().find(|op| op.op_id == op_id);
        if let Some(op) = target
            && !authz.owns(&op.users)
            && !authz.allows(Target::Cluster, ActionType::Killop)
        {
            return Err(super::authz::refused(ctx, req));
        }
        ctx.state.ops.kill(op_id);
    }
    tracing::info!(target: "COMMAND", id = 20482, op = op_id, "Going to kill op");
    Ok(doc! { "info": "attempting to kill op" })
}
