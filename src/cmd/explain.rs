//! `explain`: the plan a command would run (`queryPlanner`), and what running it cost
//! (`executionStats`, `allPlansExecution`), in mongod's shape. Writes are planned and their
//! reads counted, but nothing is written, as in mongod.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bson::{Bson, Document, RawBsonRef, RawDocument, doc};

use super::read::{QueryPlan, count_plan, distinct_plan, find_plan, hint_arg, pipeline_query};
use super::{CommandRequest, RequestCtx};
use crate::error::{Error, ErrorCode, Result};
use crate::exec::planner::{Access, ExecStats, Plan};
use crate::query::bounds::{IndexBounds, Interval};
use crate::query::index_key::KeyOrder;
use crate::query::limits::{self, MAX_INTERNAL_SIZE, MAX_USER_SIZE};
use crate::storage::index::hash_value;
use crate::storage::{ID_INDEX_ID, Index};

/// How much `explain` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verbosity {
    QueryPlanner,
    ExecutionStats,
    AllPlansExecution,
}

/// `aggregate`: with `explain: true`, the plan, as the `explain` command gives it at
/// `queryPlanner` verbosity (mongod answers both the same way); otherwise the pipeline runs.
pub fn aggregate(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    if !req.bool_arg("explain")?.unwrap_or(false) {
        return super::read::aggregate(ctx, req);
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
    explain(ctx, &req.nested(&body)?)
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
    // For aggregate: the stages after those the query answers (`$match`, `$sort`).
    let mut later_stages: Vec<Bson> = Vec::new();
    let (plan, write_stage) = match inner_req.name() {
        "find" => (find_plan(&inner_req, ctx.state)?, None),
        "aggregate" => {
            let (plan, rest) = aggregate_plan(&inner_req, ctx.state)?;
            later_stages = rest;
            (plan, None)
        }
        "count" => (count_plan(&inner_req, ctx.state)?, Some("COUNT")),
        "distinct" => (distinct_plan(&inner_req, ctx.state)?, Some("DISTINCT")),
        "delete" => (statement_plan(&inner_req, "deletes", ctx.state)?, Some("DELETE")),
        "update" => (statement_plan(&inner_req, "updates", ctx.state)?, Some("UPDATE")),
        "findAndModify" | "findandmodify" => {
            let stage = if inner_req.bool_arg("remove")?.unwrap_or(false) { "DELETE" } else { "UPDATE" };
            let collation =
                write_collation(&inner_req, inner_req.get("collation"), "findAndModify.collation", ctx.state)?;
            (QueryPlan::filtered(inner_req.doc_arg("query")?, collation)?, Some(stage))
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
    let (chosen, stream) = plan.run(ctx.state, &ns, stats.clone())?;
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
    if verbosity != Verbosity::QueryPlanner {
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
            "namespace": ns.full(),
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
        if let Some(execution) = execution_stats {
            cursor.insert("executionStats", execution);
        }
        let mut stages = vec![Bson::Document(doc! { "$cursor": cursor })];
        stages.extend(later_stages);
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

/// The least a rendered index interval adds to a reply: an array element (type, a one-digit
/// key) holding the shortest interval string, `[x, x]`.
const MIN_RENDERED_INTERVAL: usize = 1 + 2 + 4 + "[x, x]".len() + 1;

/// A floor on the size of the explain reply of `plan`: the filter as `parsedQuery`, and in
/// each stage tree (the winning plan, and again as `executionStages` with execution stats)
/// the filter of the stage that applies it and the rendered index bounds.
fn reply_size_floor(filter_len: usize, plan: Option<&Plan>, with_execution: bool) -> usize {
    // An empty filter is not shown in a stage.
    let filter_len = if filter_len <= 5 { 0 } else { filter_len };
    let in_stages = match plan {
        Some(Plan { access: Access::CollScan { .. }, .. }) => filter_len,
        Some(Plan { access: Access::IndexScan { index, bounds, .. }, covered, .. }) => {
            let fetch_filter = if *covered || index.id == ID_INDEX_ID { 0 } else { filter_len };
            let intervals: usize = bounds.fields.iter().map(Vec::len).sum();
            fetch_filter.saturating_add(intervals.saturating_mul(MIN_RENDERED_INTERVAL))
        }
        _ => 0,
    };
    let copies = if with_execution { 2 } else { 1 };
    filter_len.saturating_add(in_stages.saturating_mul(copies))
}

/// The query an `aggregate` pipeline starts with, and the stages after it.
fn aggregate_plan(req: &CommandRequest, state: &crate::state::State) -> Result<(QueryPlan, Vec<Bson>)> {
    let stages = req.array_arg("pipeline")?.ok_or_else(|| {
        Error::new(ErrorCode::FailedToParse, "BSON field 'aggregate.pipeline' is missing but a required field")
    })?;
    let ns = req.namespace()?;
    let collation = super::collation::resolve(
        req.get("collation"),
        "aggregate.collation",
        state.storage.collection(&ns).as_deref(),
    )?;
    let vars = req.doc_arg("let")?.map(crate::query::expr::Variables::from_let).transpose()?;
    let (mut plan, consumed) = pipeline_query(&stages, vars.as_ref(), collation)?;
    plan.hint = hint_arg(req)?;
    let rest = stages
        .get(consumed..)
        .unwrap_or_default()
        .iter()
        .map(|stage| match stage {
            RawBsonRef::Document(stage) => Document::try_from(*stage).map(Bson::Document).unwrap_or(Bson::Null),
            _ => Bson::Null,
        })
        .collect();
    Ok((plan, rest))
}

/// The collation a write would run under: its own, else the collection's default, so the
/// explained plan is the one the write would use.
fn write_collation(
    req: &CommandRequest,
    spec: Option<RawBsonRef<'_>>,
    field: &str,
    state: &crate::state::State,
) -> Result<Option<Arc<crate::query::Collation>>> {
    let ns = req.namespace()?;
    super::collation::resolve(spec, field, state.storage.collection(&ns).as_deref())
}

/// The plan of the first statement of an `update` or `delete` (its read side: every match
/// is counted, as mongod's explain of a multi-statement write shows the first).
fn statement_plan(req: &CommandRequest, array: &str, state: &crate::state::State) -> Result<QueryPlan> {
    let statements = req.documents(array)?;
    let first = statements.first().ok_or_else(|| {
        Error::new(ErrorCode::InvalidLength, format!("Write commands must have at least one {array} entry"))
    })?;
    let query = match first.get("q").ok().flatten() {
        Some(RawBsonRef::Document(q)) => Some(q),
        _ => None,
    };
    let collation = write_collation(
        req,
        first.get("collation").ok().flatten(),
        &format!("{}.{array}.collation", req.name()),
        state,
    )?;
    let mut plan = QueryPlan::filtered(query, collation)?;
    plan.hint = crate::exec::planner::hint_of(first.get("hint").ok().flatten()).ok().flatten().map(bson::RawBson::from);
    Ok(plan)
}

/// The parts of a query that add stages above the access path.
struct StageShape<'a> {
    sort: Option<&'a RawDocument>,
    projection: Option<&'a RawDocument>,
    skip: usize,
    limit: Option<usize>,
}

/// Work counted while running, for per-stage statistics.
struct Counts {
    keys: u64,
    docs: u64,
    matched: u64,
    returned: u64,
}

fn to_long(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The stage tree of `plan`, innermost (the access path) first, then SORT, SKIP, LIMIT and
/// the projection, as mongod's classic engine builds it.
fn plan_stages(
    plan: &Plan,
    filter: &Document,
    shape: &StageShape<'_>,
    counts: Option<&Counts>,
    memory_limit: u64,
) -> Document {
    let with_stats = |mut stage: Document, returned: u64, keys: Option<u64>, docs: Option<u64>| {
        if let Some(_counts) = counts {
            stage.insert("nReturned", to_long(returned));
            if let Some(keys) = keys {
                stage.insert("keysExamined", to_long(keys));
            }
            if let Some(docs) = docs {
                stage.insert("docsExamined", to_long(docs));
            }
        }
        stage
    };
    let (keys, docs, matched, returned) = counts.map_or((0, 0, 0, 0), |c| (c.keys, c.docs, c.matched, c.returned));
    let mut stage = match &plan.access {
        Access::CollScan { reverse } => {
            let mut stage = doc! { "stage": "COLLSCAN" };
            if !filter.is_empty() {
                stage.insert("filter", filter.clone());
            }
            stage.insert("direction", if *reverse { "backward" } else { "forward" });
            with_stats(stage, matched, None, Some(docs))
        }
        Access::IdPoint(_) => with_stats(doc! { "stage": "IDHACK" }, matched, Some(keys), Some(docs)),
        Access::IndexScan { index, bounds, reverse, .. } => {
            let pattern = index.pattern.spec().clone();
            let multikey_paths: Document =
                pattern.keys().map(|k| (k.clone(), Bson::Array(Vec::new()))).collect::<Document>();
            let ixscan = with_stats(
                doc! {
                    "stage": "IXSCAN",
                    "keyPattern": pattern,
                    "indexName": &index.name,
                    "isMultiKey": index.is_multikey(),
                    "multiKeyPaths": multikey_paths,
                    "isUnique": index.unique,
                    "isSparse": index.sparse,
                    "isPartial": index.partial.is_some(),
                    "indexVersion": index.spec.get_i32("v").unwrap_or(2),
                    "direction": if *reverse { "backward" } else { "forward" },
                    "indexBounds": render_bounds(index, bounds, *reverse),
                },
                keys,
                Some(keys),
                None,
            );
            if plan.covered {
                ixscan
            } else {
                let mut fetch = doc! { "stage": "FETCH" };
                if !filter.is_empty() && index.id != ID_INDEX_ID {
                    fetch.insert("filter", filter.clone());
                }
                fetch.insert("inputStage", ixscan);
                with_stats(fetch, matched, None, Some(docs))
            }
        }
    };
    if let Some(sort) = shape.sort.filter(|_| !plan.sort_provided) {
        let mut sort_stage = doc! {
            "stage": "SORT",
            "sortPattern": Document::try_from(sort).unwrap_or_default(),
            "memLimit": to_long(memory_limit),
            "type": "simple",
        };
        if let Some(limit) = shape.limit {
            sort_stage.insert("limitAmount", to_long((limit + shape.skip) as u64));
        }
        sort_stage.insert("inputStage", stage);
        stage = with_stats(sort_stage, matched, None, None);
    }
    if shape.skip > 0 {
        stage = with_stats(
            doc! { "stage": "SKIP", "skipAmount": to_long(shape.skip as u64), "inputStage": stage },
            returned,
            None,
            None,
        );
    }
    if let Some(limit) = shape.limit {
        stage = with_stats(
            doc! { "stage": "LIMIT", "limitAmount": to_long(limit as u64), "inputStage": stage },
            returned,
            None,
            None,
        );
    }
    if let Some(projection) = shape.projection {
        let kind = if plan.covered {
            "PROJECTION_COVERED"
        } else if is_simple_projection(projection) {
            "PROJECTION_SIMPLE"
        } else {
            "PROJECTION_DEFAULT"
        };
        stage = with_stats(
            doc! {
                "stage": kind,
                "transformBy": Document::try_from(projection).unwrap_or_default(),
                "inputStage": stage,
            },
            returned,
            None,
            None,
        );
    }
    stage
}

/// Whether a projection only includes or excludes top-level fields (mongod's
/// PROJECTION_SIMPLE).
fn is_simple_projection(projection: &RawDocument) -> bool {
    crate::query::path::fields(projection).all(|(name, value)| {
        !name.contains('.')
            && matches!(
                value,
                RawBsonRef::Int32(_) | RawBsonRef::Int64(_) | RawBsonRef::Double(_) | RawBsonRef::Boolean(_)
            )
    })
}

/// The bounds as mongod's explain shows them: a hashed field's points are the hashes the
/// index holds (in key order), not the values the query named.
fn render_bounds(index: &Index, bounds: &IndexBounds, reverse: bool) -> Document {
    let mut rendered = bounds.render(&index.pattern, reverse);
    for ((field, order), intervals) in index.pattern.fields().iter().zip(&bounds.fields) {
        if *order != KeyOrder::Hashed || !intervals.iter().all(Interval::is_point) {
            continue;
        }
        let collation = index.collation.as_deref();
        let mut hashes: Vec<i64> = intervals.iter().map(|i| hash_value(i.start.as_raw_bson_ref(), collation)).collect();
        hashes.sort_unstable();
        hashes.dedup();
        if reverse {
            hashes.reverse();
        }
        let points = hashes.into_iter().map(|h| Bson::String(format!("[{h}, {h}]"))).collect::<Vec<_>>();
        rendered.insert(field.dotted(), points);
    }
    rendered
}
