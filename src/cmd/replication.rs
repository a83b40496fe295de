//! The replica-set commands of a single member: `replSetInitiate`, `replSetGetStatus`,
//! `replSetGetConfig`, `replSetReconfig` and `replSetStepDown`. On a standalone each answers
//! 76 NoReplicationEnabled, as mongod does.

use std::time::Duration;

use bson::{DateTime, Document, RawBsonRef, doc};

use super::{CommandRequest, RequestCtx};
use crate::error::{Error, ErrorCode, Result};
use crate::repl::set_config::{Previous, SetConfig};
use crate::repl::{MemberState, default_host, is_self};

/// mongod's `replSetStepDown` defaults: seconds stepped down, and seconds to wait for a
/// secondary to catch up.
const STEP_DOWN_SECS: i64 = 60;
const CATCH_UP_SECS: i64 = 10;

/// The set name, or mongod's error on a standalone.
fn set_name<'a>(ctx: &RequestCtx<'a>, message: &str) -> Result<&'a str> {
    ctx.state.repl.set_name().ok_or_else(|| Error::new(ErrorCode::NoReplicationEnabled, message.to_owned()))
}

fn is_this_server(ctx: &RequestCtx<'_>) -> impl Fn(&str) -> bool + use<> {
    let port = ctx.state.port();
    move |host: &str| is_self(host, port)
}

/// `replSetInitiate: <config> | {}`: with no configuration, this server alone under the set
/// name; then primary in term 1.
pub fn repl_set_initiate(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let name = set_name(ctx, "This node was not started with replication enabled.")?;
    if ctx.state.repl.is_initiated() {
        return Err(Error::new(ErrorCode::AlreadyInitialized, "already initialized")
            .with_info(doc! { "info": "try querying local.system.replset to see current configuration" }));
    }
    let (config, defaulted) = match req.command_value() {
        Some(RawBsonRef::Document(given)) if !given.is_empty() => {
            (SetConfig::parse(given, name, None, &is_this_server(ctx))?, false)
        }
        _ => (SetConfig::default_for(name, &default_host(&ctx.state.config.bind_ip, ctx.state.port())), true),
    };
    let host = config.host.clone();
    ctx.state.repl.initiate(&ctx.state.storage, config)?;
    ctx.state.topology.advance();
    Ok(if defaulted {
        doc! { "info2": "no configuration specified. Using a default configuration for the set", "me": host }
    } else {
        Document::new()
    })
}

/// `replSetGetStatus`.
pub fn repl_set_get_status(ctx: &mut RequestCtx<'_>, _req: &CommandRequest) -> Result<Document> {
    set_name(ctx, "not running with --replSet")?;
    ctx.state.repl.status()
}

/// `replSetGetConfig`, with `commitmentStatus` (a single member commits every configuration
/// at once).
pub fn repl_set_get_config(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    set_name(ctx, "not running with --replSet")?;
    let mut reply = doc! { "config": ctx.state.repl.config_document()? };
    if req.bool_arg("commitmentStatus")? == Some(true) {
        if ctx.state.repl.state() != Some(MemberState::Primary) {
            return Err(Error::new(ErrorCode::NotWritablePrimary, "commitmentStatus is only supported on primary."));
        }
        reply.insert("commitmentStatus", true);
    }
    Ok(reply)
}

/// `replSetReconfig: <config>, force?`: a new configuration of the one member, with a higher
/// version.
pub fn repl_set_reconfig(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let name = set_name(ctx, "not running with --replSet")?;
    let given = match req.command_value() {
        Some(RawBsonRef::Document(given)) => given,
        Some(other) => return Err(req.wrong_type("replSetReconfig", other, "object")),
        None => return Err(Error::new(ErrorCode::InvalidReplicaSetConfig, "no configuration specified")),
    };
    let force = req.bool_arg("force")?.unwrap_or(false);
    let (current, term) = ctx.state.repl.current()?;
    let config = SetConfig::parse(given, name, Some(Previous { config: &current, term }), &is_this_server(ctx))?;
    ctx.state.repl.reconfig(&ctx.state.storage, config, force)?;
    ctx.state.topology.advance();
    Ok(Document::new())
}

/// Seconds from a numeric argument, as mongod reads them (`numberLong`: a fraction is cut).
fn seconds(req: &CommandRequest, value: Option<RawBsonRef<'_>>, key: &str) -> Result<Option<i64>> {
    match value {
        None | Some(RawBsonRef::Null) => Ok(None),
        Some(RawBsonRef::Int32(n)) => Ok(Some(i64::from(n))),
        Some(RawBsonRef::Int64(n)) => Ok(Some(n)),
        Some(RawBsonRef::Double(n)) if n.is_finite() => Ok(Some(n as i64)),
        Some(other) => Err(req.wrong_type(key, other, "long")),
    }
}

/// `replSetStepDown: <secs>, secondaryCatchUpPeriodSecs?, force?`. A single member has no
/// secondary to catch up, so, as mongod, it waits out the catch-up period (without holding a
/// thread) and then refuses, unless `force` steps it down anyway. Primary again in a new term
/// once the step-down period ends.
pub fn repl_set_step_down(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    set_name(ctx, "not running with --replSet")?;
    let step_down = seconds(req, req.command_value(), "replSetStepDown")?.filter(|s| *s != 0).unwrap_or(STEP_DOWN_SECS);
    let catch_up =
        seconds(req, req.get("secondaryCatchUpPeriodSecs"), "secondaryCatchUpPeriodSecs")?.unwrap_or(CATCH_UP_SECS);
    let force = req.bool_arg("force")?.unwrap_or(false);
    if step_down < 0 || catch_up < 0 {
        return Err(Error::new(ErrorCode::BadValue, "stepdown period must be a positive integer"));
    }
    if catch_up > step_down {
        return Err(Error::new(ErrorCode::BadValue, "stepdown period must be longer than secondaryCatchUpPeriodSecs"));
    }
    if ctx.state.repl.state() != Some(MemberState::Primary) {
        return Err(Error::new(ErrorCode::NotWritablePrimary, "not primary so can't step down"));
    }
    if !ctx.awaited && catch_up > 0 {
        let deadline = ctx.op.started + Duration::from_secs(catch_up.unsigned_abs());
        ctx.reply_after_topology_change(ctx.state.topology.counter(), deadline);
        return Ok(Document::new());
    }
    if !force {
        return Err(Error::new(
            ErrorCode::ExceededTimeLimit,
            format!(
                "No electable secondaries caught up as of {}. Please use the replSetStepDown command with the argument {{force: true}} to force node to step down.",
                DateTime::now().try_to_rfc3339_string().unwrap_or_default()
            ),
        ));
    }
    let until = std::time::Instant::now() + Duration::from_secs(step_down.unsigned_abs());
    ctx.state.repl.step_down(until)?;
    ctx.state.topology.advance();
    Ok(Document::new())
}
