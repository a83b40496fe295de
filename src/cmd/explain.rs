//! `explain`: the plan a command would run (`queryPlanner`), and what running it cost
//! (`executionStats`, `allPlansExecution`), in mongod's shape. Writes are planned and their
//! reads counted, but nothing is written, as in mongod.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bson::{Bson, Document, RawBsonRef, doc};

use super::aggregate::{pipeline_arg, rewritten};
use super::read::{CountArgs, FindArgs, distinct_query};
use super::results::hint_arg;
use super::target::Target;
use super::{Authorizer, CommandRequest, Reply, RequestCtx};
use crate::error::{Error, ErrorCode, Result};
use crate::exec::explain::{Counts, StageShape, plan_stages, reply_size_floor, to_long};
use crate::exec::{Query, pipeline};
use crate::op::ExecStats;
use crate::query::expr::Variables;
use crate::query::limits::{self, MAX_INTERNAL_SIZE, MAX_USER_SIZE};
use crate::storage::Namespace;

/// How much `explain` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verbosity {
    QueryPlanner,
    ExecutionStats,
    AllPlansExecution,
}

/// `aggregate`: with `explain: true`, the plan, as the `explain` command gives it at
/// `queryPlanner` verbosity (mongod answers both the same way); otherwise the pipeline runs.
pub fn aggregate(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Reply> {
    if !req.bool_arg("explain")?.unwrap_or(false) {
        return super::aggregate::aggregate(ctx, req);
    }
    let mut inner = bson::RawDocumentBuf::new();
    for element in req.body() {
        let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        if key.as_str() != "explain" && !super::options::is_generic_argument(key.as_str()) {
            inner.append(key, value);
        }
    }
    let mut body = bson::RawDocumentBuf::new();
    body.append(bson::raw::cstr!("explain"), inner);
    body.append(bson::raw::cstr!("verbosity"), "queryPlanner");
    explain(ctx, &req.nested(&body)?).map(Reply::from)
}

/// `explain`: what the explained command needs. One the handler refuses (not a document, an
/// unknown command) is left to it.
pub(super) fn authorize(authz: &Authorizer<'_>, req: &CommandRequest) -> bool {
    let Some(RawBsonRef::Document(inner)) = req.command_value() else { return true };
    let Ok(inner) = req.nested(inner) else { return true };
    super::lookup(inner.name()).is_none_or(|(_, spec)| super::authz::allowed(spec.access, authz, &inner))
}

/// `explain: {<command>}, verbosity`.
pub fn explain(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let inner = match req.command_value() {
        Some(RawBsonRef::Document(inner)) => inner,
        Some(other) => return Err(req.wrong_type("explain", other, "object")),
        None => return Err(Error::new(ErrorCode::FailedToParse, "explain requires a command")),
    };
    let verbosity = match req.str_arg("verbosity")? {
        None | Some("allPlansExecution") => Verbosity::AllPlansExecution,
        Some("executionStats") => Verbosity::ExecutionStats,
        Some("queryPlanner") => Verbosity::QueryPlanner,
        Some(other) => {
            return Err(Error::new(
                ErrorCode::BadValue,
                format!(
                    "verbosity string must be one of {{'queryPlanner', 'executionStats', 'allPlansExecution'}}, but got {other}"
                ),
            ));
        }
    };
    let inner_req = req.nested(inner)?;
    // mongod parses the explained command as that command, with its unknown-field errors.
    if let Some((_, spec)) = super::lookup(inner_req.name()) {
        super::options::check_fields(spec, &inner_req)?;
    }
    let ns = inner_req.namespace()?;
    // For aggregate: the stages after those the query answers (`$match`, `$sort`), and the
    // command's variables they run with.
    let mut later_stages: Vec<bson::RawDocumentBuf> = Vec::new();
    let mut vars = Variables::new();
    let ((target, plan), write_stage) = match inner_req.name() {
        "find" => {
            let FindArgs { target, query, .. } = FindArgs::parse(ctx, &inner_req, ns)?;
            ((target, query), None)
        }
        "aggregate" => {
            let (target, plan, rest, let_vars) = aggregate_plan(ctx, &inner_req, ns)?;
            later_stages = rest;
            vars = let_vars;
            ((target, plan), None)
        }
        "count" => {
            let CountArgs { target, query } = CountArgs::parse(ctx, &inner_req, ns)?;
            ((target, query), Some("COUNT"))
        }
        "distinct" => (distinct_query(ctx, &inner_req, ns)?, Some("DISTINCT")),
        "delete" => (statement_plan(ctx, &inner_req, ns, "deletes")?, Some("DELETE")),
        "update" => (statement_plan(ctx, &inner_req, ns, "updates")?, Some("UPDATE")),
        "findAndModify" | "findandmodify" => {
            let stage = if inner_req.bool_arg("remove")?.unwrap_or(false) { "DELETE" } else { "UPDATE" };
            let target = Target::resolve(ctx, ns, inner_req.get("collation"), "findAndModify.collation")?;
            let query = Query::filtered(inner_req.doc_arg("query")?, target.collation.clone())?;
            ((target, query), Some(stage))
        }
        other => {
            return Err(Error::new(
                ErrorCode::CommandNotFound,
                format!("Explain failed due to unknown command: {other}"),
            ));
        }
    };
    let filter_doc = plan.filter_doc.clone();
    let sort = plan.sort.clone();
    let projection_doc = plan.projection_doc.clone();
    let (skip, limit) = (plan.skip, plan.limit);
    let stats = Arc::new(ExecStats::default());
    ctx.op.track(&stats);
    let started = Instant::now();
    let (chosen, stream) = plan.run(ctx.state, target.collection.as_ref(), stats.clone(), None)?;
    // mongod builds the whole reply, then refuses it past its internal object size (10334).
    // The raw pieces copied into it verbatim give a floor on its size before anything is
    // built: past the limit the answer is known, and a huge filter (a `$in` of a million
    // values) is neither executed nor copied into several owned documents first.
    let floor = reply_size_floor(filter_doc.as_bytes().len(), chosen.as_ref(), verbosity != Verbosity::QueryPlanner);
    if floor > MAX_INTERNAL_SIZE {
        return Err(limits::object_too_large(floor, "explainVersion: \"1\"").into());
    }
    let parsed_query = limits::to_document(&filter_doc).unwrap_or_default();
    drop(filter_doc);
    let mut returned = 0u64;
    // The pipeline's own stages, each counted when the pipeline runs.
    let cursor_counter = Arc::new(pipeline::StageCounter::default());
    let mut stage_counters = Vec::new();
    if verbosity != Verbosity::QueryPlanner {
        let mut stream = stream;
        if !later_stages.is_empty() {
            if later_stages
                .iter()
                .any(|s| s.get("$out").ok().flatten().is_some() || s.get("$merge").ok().flatten().is_some())
            {
                return Err(Error::new(
                    ErrorCode::NotImplemented,
                    "explain at executionStats of a pipeline that writes ($out, $merge) is not supported yet",
                ));
            }
            let default = ctx.state.params.allow_disk_use_by_default();
            let allow_disk_use = inner_req.bool_arg("allowDiskUse")?.unwrap_or(default);
            let env =
                super::aggregate::environment(ctx, &inner_req, &target, vars, stats.clone(), (allow_disk_use, false));
            let raw_stages: Vec<RawBsonRef<'_>> = later_stages.iter().map(|s| RawBsonRef::Document(s)).collect();
            let (counted, counters) =
                pipeline::run_counted(pipeline::counted(stream, &cursor_counter), &raw_stages, &env)?;
            stream = counted;
            stage_counters = counters;
        }
        for doc in stream {
            doc?;
            returned += 1;
        }
    }
    let elapsed = started.elapsed().as_millis();
    let shape = StageShape {
        sort: sort.as_ref().filter(|s| !s.is_empty()).map(|_| inner_req.doc_arg("sort")).transpose()?.flatten(),
        projection: projection_doc.as_deref(),
        skip,
        limit,
    };
    let memory_limit = ctx.state.params.max_blocking_sort_bytes();
    let counts = (verbosity != Verbosity::QueryPlanner).then(|| Counts {
        keys: stats.keys_examined.load(Ordering::Relaxed),
        docs: stats.docs_examined.load(Ordering::Relaxed),
        matched: stats.matched.load(Ordering::Relaxed),
        returned,
    });
    let mut winning = match &chosen {
        Some(plan) => plan_stages(plan, &parsed_query, &shape, counts.as_ref(), memory_limit),
        None => doc! { "stage": "EOF" },
    };
    if let Some(stage) = write_stage {
        winning = doc! { "stage": stage, "inputStage": winning };
    }
    let query_planner = doc! {
            "namespace": target.ns.full(),
            "indexFilterSet": false,
            "parsedQuery": parsed_query,
            "planCacheUsed": false,
            "maxIndexedOrSolutionsReached": false,
            "maxIndexedAndSolutionsReached": false,
            "maxScansToExplodeReached": false,
            "winningPlan": winning.clone(),
            "rejectedPlans": [],
    };
    let mut reply = doc! { "explainVersion": "1" };
    let mut execution_stats = None;
    if let Some(counts) = &counts {
        let mut execution = doc! {
            "executionSuccess": true,
            "nReturned": to_long(if write_stage.is_some() { counts.matched } else { counts.returned }),
            "executionTimeMillis": i64::try_from(elapsed).unwrap_or(i64::MAX),
            "totalKeysExamined": to_long(counts.keys),
            "totalDocsExamined": to_long(counts.docs),
            "executionStages": winning,
        };
        if verbosity == Verbosity::AllPlansExecution {
            execution.insert("allPlansExecution", Vec::<Bson>::new());
        }
        execution_stats = Some(execution);
    }
    if later_stages.is_empty() {
        reply.insert("queryPlanner", query_planner);
        if let Some(execution) = execution_stats {
            reply.insert("executionStats", execution);
        }
    } else {
        // mongod's shape when a pipeline goes on past its query: the query as a `$cursor`
        // stage, then the other stages as given.
        let mut cursor = doc! { "queryPlanner": query_planner };
        let counted = execution_stats.is_some();
        if let Some(execution) = execution_stats {
            cursor.insert("executionStats", execution);
        }
        let mut cursor = doc! { "$cursor": cursor };
        if counted {
            cursor.insert("nReturned", to_long(cursor_counter.returned.load(Ordering::Relaxed)));
            cursor.insert("executionTimeMillisEstimate", cursor_counter.millis());
        }
        let mut stages = vec![Bson::Document(cursor)];
        for (i, stage) in later_stages.iter().enumerate() {
            let mut shown = limits::to_document(stage).unwrap_or_default();
            if let Some(counter) = stage_counters.get(i) {
                shown.insert("nReturned", to_long(counter.returned.load(Ordering::Relaxed)));
                shown.insert("executionTimeMillisEstimate", counter.millis());
            }
            stages.push(Bson::Document(shown));
        }
        reply.insert("stages", stages);
    }
    // mongod's `appendIfRoom`: the command is echoed only when the reply has room for it.
    if floor.saturating_add(inner.as_bytes().len()) < MAX_USER_SIZE {
        reply.insert("command", limits::to_document(inner).unwrap_or_default());
    } else {
        reply.insert("warning", "'command' has been omitted due to BSON size limit");
    }
    reply.insert(
        "serverInfo",
        doc! {
            "host": crate::host::hostname(),
            "port": i32::from(ctx.state.port()),
            "version": crate::version::COMPATIBLE_VERSION,
            "gitVersion": crate::version::GIT_VERSION,
        },
    );
    reply.insert(
        "serverParameters",
        doc! { "internalQueryMaxBlockingSortMemoryUsageBytes": i64::try_from(memory_limit).unwrap_or(i64::MAX) },
    );
    Ok(reply)
}

/// The target and query an `aggregate` pipeline on `ns` starts with, the stages after it,
/// and its `let` variables.
fn aggregate_plan(
    ctx: &RequestCtx<'_>,
    req: &CommandRequest,
    ns: Namespace,
) -> Result<(Target, Query, Vec<bson::RawDocumentBuf>, Variables)> {
    let stages = pipeline_arg(req)?;
    pipeline::check_positions(&stages)?;
    let optimized = pipeline::optimize(&stages);
    let stages = rewritten(stages, optimized.as_deref());
    let target = Target::resolve(ctx, ns, req.get("collation"), "aggregate.collation")?;
    let vars = req.doc_arg("let")?.map(Variables::from_let).transpose()?.unwrap_or_default();
    let (mut query, consumed) = pipeline::leading_query(&stages, Some(&vars), target.collation.clone())?;
    query.hint = hint_arg(req)?;
    let rest = stages
        .get(consumed..)
        .unwrap_or_default()
        .iter()
        .map(|stage| match stage {
            RawBsonRef::Document(stage) => Ok((*stage).to_owned()),
            _ => Err(Error::new(ErrorCode::TypeMismatch, "Each element of the 'pipeline' array must be an object")),
        })
        .collect::<Result<_>>()?;
    Ok((target, query, rest, vars))
}

/// The target and query of the first statement of an `update` or `delete` on `ns` (its read
/// side: every match is counted, as mongod's explain of a multi-statement write shows the
/// first), under the collation the write would run under, so the explained plan is the one
/// it would use.
fn statement_plan(ctx: &RequestCtx<'_>, req: &CommandRequest, ns: Namespace, array: &str) -> Result<(Target, Query)> {
    let statements = req.documents(array)?;
    let first = statements.first().ok_or_else(|| {
        Error::new(ErrorCode::InvalidLength, format!("Write commands must have at least one {array} entry"))
    })?;
    let query = match first.get("q").ok().flatten() {
        Some(RawBsonRef::Document(q)) => Some(q),
        _ => None,
    };
    let field = format!("{}.{array}.collation", req.name());
    let target = Target::resolve(ctx, ns, first.get("collation").ok().flatten(), &field)?;
    let mut plan = Query::filtered(query, target.collation.clone())?;
    plan.hint = crate::exec::planner::hint_of(first.get("hint").ok().flatten()).ok().flatten().map(bson::RawBson::from);
    Ok((target, plan))
}
