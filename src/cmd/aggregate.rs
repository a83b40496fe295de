//! `aggregate`: a pipeline over a collection (or, with `aggregate: 1`, over a source of its
//! own), run by the pipeline runner of `exec` and answered as a cursor.

use std::sync::Arc;

use bson::{RawBsonRef, RawDocumentBuf};

use super::results::{cursor_reply, hint_arg, stream};
use super::target::Target;
use super::{Authorizer, CommandRequest, Reply, RequestCtx};
use crate::auth::action::ActionType;
use crate::auth::resource::Target as Resource;
use crate::error::{Error, ErrorCode, Result};
use crate::exec::change_stream::{self, ChangeStreamSpec, Scope};
use crate::exec::cursor::{self, FirstBatch};
use crate::exec::pipeline::{self, PipelineEnv};
use crate::exec::views::{self, ResolvedView};
use crate::op::ExecStats;
use crate::query::expr::Variables;
use crate::state::cursors::{DocumentStream, ResumeTokenSource};
use crate::state::plan_cache::PlanCache;
use crate::storage::Namespace;

/// `aggregate`: the stages of [`pipeline::registry`]; `$collStats` and `$currentOp` as the
/// first stage; with `aggregate: 1`, a pipeline starting with `$documents` or (on `admin`)
/// `$currentOp`.
pub(super) fn aggregate(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Reply> {
    let db_level = matches!(req.command_value(), Some(RawBsonRef::Int32(1) | RawBsonRef::Int64(1)))
        || matches!(req.command_value(), Some(RawBsonRef::Double(n)) if n == 1.0);
    let ns = if db_level {
        // Not a collection: `db.$cmd.aggregate`, the namespace mongod gives such cursors.
        Namespace { db: req.db().to_owned(), coll: "$cmd.aggregate".to_owned() }
    } else {
        req.namespace()?
    };
    let cursor_options = req.doc_arg("cursor")?.ok_or_else(|| {
        Error::new(
            ErrorCode::FailedToParse,
            "The 'cursor' option is required, except for aggregate with the explain argument",
        )
    })?;
    let batch_size = match cursor_options.get("batchSize").ok().flatten() {
        Some(RawBsonRef::Int32(n)) if n >= 0 => Some(n as usize),
        Some(RawBsonRef::Int64(n)) if n >= 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        _ => None,
    };
    let given = pipeline_arg(req)?;
    // As mongod, stage positions are checked before anything runs.
    pipeline::check_positions(&given)?;
    if let Some(spec) = change_stream_spec(&given) {
        return change_stream(ctx, req, db_level, ns, (spec, given.get(1..).unwrap_or_default()), batch_size);
    }
    // `$collStats` of a time-series collection reads its buckets' statistics, not its view.
    let timeseries_stats = !db_level
        && matches!(given.first(), Some(RawBsonRef::Document(d)) if d.get("$collStats").ok().flatten().is_some())
        && super::timeseries::buckets_of(&ctx.state.storage, &ns)?.is_some();
    let view = if db_level || timeseries_stats { None } else { ViewRead::of(ctx, req, &ns, "aggregate.collation")? };
    let stages: Vec<RawBsonRef<'_>> = match &view {
        Some(view) => view.stages().chain(given.iter().copied()).collect(),
        None => given,
    };
    let optimized = pipeline::optimize(&stages);
    let stages = rewritten(stages, optimized.as_deref());
    // A time-series collection's filter on time and meta also selects its buckets.
    let pushed = crate::query::timeseries::push_down(&stages);
    let stages = rewritten(stages, pushed.as_deref());
    let vars = req.doc_arg("let")?.map(Variables::from_let).transpose()?;
    let target = match &view {
        Some(view) => view.target(ctx)?,
        None => Target::resolve(ctx, ns, req.get("collation"), "aggregate.collation")?,
    };
    let allow_disk_use = req.bool_arg("allowDiskUse")?.unwrap_or(ctx.state.params.allow_disk_use_by_default());
    let mut text_scores = None;
    let (source, rest) = match stages.split_first() {
        Some((RawBsonRef::Document(first), rest)) if first.get("$currentOp").ok().flatten().is_some() => {
            if !db_level || req.db() != "admin" {
                return Err(Error::new(
                    ErrorCode::InvalidNamespace,
                    "$currentOp must be run against the 'admin' database with {aggregate: 1}",
                ));
            }
            ((super::operations::current_op_stage(ctx, first)?, Arc::default()), rest)
        }
        Some((RawBsonRef::Document(first), rest)) if first.get("$listLocalSessions").ok().flatten().is_some() => {
            if !db_level {
                return Err(Error::new(
                    ErrorCode::InvalidNamespace,
                    "$listLocalSessions must be run against the database with {aggregate: 1}, not a collection",
                ));
            }
            ((super::sessions::list_sessions_stage(ctx, first, true)?, Arc::default()), rest)
        }
        Some((RawBsonRef::Document(first), rest)) if first.get("$listSessions").ok().flatten().is_some() => {
            if db_level || target.ns.db != "config" || target.ns.coll != "system.sessions" {
                return Err(Error::new(
                    ErrorCode::InvalidNamespace,
                    "$listSessions may only be run against config.system.sessions",
                ));
            }
            ((super::sessions::list_sessions_stage(ctx, first, false)?, Arc::default()), rest)
        }
        Some((RawBsonRef::Document(first), _)) if db_level && first.get("$documents").ok().flatten().is_some() => {
            ((Box::new(std::iter::empty()) as DocumentStream, Arc::default()), &stages[..])
        }
        _ if db_level => {
            return Err(Error::new(
                ErrorCode::NotImplemented,
                "database-level aggregation is only supported with $documents, $currentOp and $listLocalSessions yet",
            ));
        }
        Some((RawBsonRef::Document(first), rest)) if first.get("$indexStats").ok().flatten().is_some() => {
            ((super::indexes::index_stats_stage(ctx, target.collection.as_ref(), first)?, Arc::default()), rest)
        }
        Some((RawBsonRef::Document(first), rest)) if first.get("$planCacheStats").ok().flatten().is_some() => {
            ((super::plan_cache::plan_cache_stats_stage(ctx, &target, first)?, Arc::default()), rest)
        }
        Some((RawBsonRef::Document(first), rest)) if first.get("$geoNear").ok().flatten().is_some() => {
            (super::geo_near::stage(ctx, &target, first)?, rest)
        }
        Some((RawBsonRef::Document(first), rest)) if first.get("$collStats").ok().flatten().is_some() => {
            ((super::collections::coll_stats_stage(ctx, &target, first)?, Arc::default()), rest)
        }
        _ => {
            let (mut query, consumed) = pipeline::leading_query(&stages, vars.as_ref(), target.collation.clone())?;
            text_scores.clone_from(&query.text_scores);
            query.allow_disk_use = allow_disk_use;
            query.hint = hint_arg(req)?;
            let rest = stages.get(consumed..).unwrap_or_default();
            // A count of the whole collection (`countDocuments({})`) reads the stored total.
            let counting = match rest {
                [group] if query.filter_doc.is_empty() && query.sort.is_none() && query.hint.is_none() => {
                    pipeline::CountOnlyGroup::of(*group)
                }
                _ => None,
            };
            match counting {
                Some(group) => {
                    let storage = &ctx.state.storage;
                    let total = target.collection.as_ref().map(|c| storage.collection_size(c)).transpose()?;
                    ((group.documents(total.map_or(0, |(_, n)| n))?, Arc::default()), &[][..])
                }
                None => (stream(ctx, &target, query)?, rest),
            }
        }
    };
    let (stream, stats) = source;
    let bypass = req.bool_arg("bypassDocumentValidation")?.unwrap_or(false);
    let mut vars = vars.unwrap_or_default();
    vars.set_text_scores(text_scores);
    let env = environment(ctx, req, &target, vars, stats.clone(), (allow_disk_use, bypass));
    let stream = pipeline::run(stream, rest, &env)?;
    // mongod names the aggregation in every error raised while it runs (not while it parses).
    let stream: DocumentStream =
        Box::new(stream.map(|document| document.map_err(|e| e.caused_by("PlanExecutor error during aggregation"))));
    let first = FirstBatch {
        size: Some(batch_size.unwrap_or(cursor::DEFAULT_FIRST_BATCH)),
        deadline: target.deadline,
        ..FirstBatch::default()
    };
    let reply_ns = view.map_or(target.ns, |v| v.ns);
    cursor_reply(ctx, &reply_ns, (stream, stats), first)
}

/// A read of a view: its resolved stages, run over its backing collection under its
/// collation, answered under the view's name.
pub(super) struct ViewRead {
    /// The view's namespace.
    pub(super) ns: Namespace,
    resolved: ResolvedView,
    /// The collation to read under: the command's, which must equal the view's, or the view's.
    collation: Option<bson::RawDocumentBuf>,
}

impl ViewRead {
    /// The view at `ns`, when `ns` names one (and no collection).
    ///
    /// # Errors
    /// 167 OptionNotSupportedOnView for a command collation other than the view's; view
    /// resolution errors (165).
    pub(super) fn of(ctx: &RequestCtx<'_>, req: &CommandRequest, ns: &Namespace, field: &str) -> Result<Option<Self>> {
        if ctx.state.storage.collection(ns).is_some() {
            return Ok(None);
        }
        let Some(resolved) = views::resolve(&ctx.state.storage, ns)? else { return Ok(None) };
        let to_raw = |d: &bson::Document| {
            bson::RawDocumentBuf::try_from(d).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))
        };
        // The view's default collation; a view without one reads under the simple collation,
        // whatever its backing collection's default.
        let own = match &resolved.collation {
            Some(collation) => to_raw(collation)?,
            None => bson::rawdoc! { "locale": "simple" },
        };
        // An empty collation is none given: the view's applies.
        if let Some(given) = req.get("collation").filter(|g| !matches!(g, RawBsonRef::Document(d) if d.is_empty())) {
            let given = super::collation::resolve(Some(given), field, None)?;
            let own = super::collation::resolve(Some(RawBsonRef::Document(&own)), field, None)?;
            if given.as_ref().map(|c| c.spec().to_document()) != own.as_ref().map(|c| c.spec().to_document()) {
                return Err(Error::new(
                    ErrorCode::OptionNotSupportedOnView,
                    "Cannot override a view's default collation",
                ));
            }
        }
        Ok(Some(Self { ns: ns.clone(), resolved, collation: Some(own) }))
    }

    /// The view's stages, innermost view first.
    pub(super) fn stages(&self) -> impl Iterator<Item = RawBsonRef<'_>> {
        self.resolved.pipeline.iter().map(|stage| RawBsonRef::Document(stage))
    }

    /// The backing collection, under the view's collation.
    ///
    /// # Errors
    /// The collation's errors.
    pub(super) fn target(&self, ctx: &RequestCtx<'_>) -> Result<Target> {
        let collation = self.collation.as_deref().map(RawBsonRef::Document);
        Target::resolve(ctx, self.resolved.backing.clone(), collation, "collation")
    }

    /// Runs the view's stages and then `more` over the backing collection, with the
    /// command's `let` variables and `allowDiskUse`; returns the stream and its counters.
    ///
    /// # Errors
    /// The stages' errors.
    pub(super) fn run(
        &self,
        ctx: &RequestCtx<'_>,
        req: &CommandRequest,
        more: &[bson::RawDocumentBuf],
        (vars, allow_disk_use): (Variables, bool),
    ) -> Result<(Target, DocumentStream, Arc<ExecStats>)> {
        let stages: Vec<RawBsonRef<'_>> = self.stages().chain(more.iter().map(|d| RawBsonRef::Document(d))).collect();
        let optimized = pipeline::optimize(&stages);
        let stages = rewritten(stages, optimized.as_deref());
        // A time-series collection's filter on time and meta also selects its buckets.
        let pushed = crate::query::timeseries::push_down(&stages);
        let stages = rewritten(stages, pushed.as_deref());
        let target = self.target(ctx)?;
        let (query, consumed) = pipeline::leading_query(&stages, Some(&vars), target.collation.clone())?;
        let mut vars = vars;
        vars.set_text_scores(query.text_scores.clone());
        let (stream, stats) = stream(ctx, &target, query)?;
        let env = environment(ctx, req, &target, vars, stats.clone(), (allow_disk_use, false));
        let stream = pipeline::run(stream, stages.get(consumed..).unwrap_or_default(), &env)?;
        Ok((target, stream, stats))
    }
}

/// The environment of a pipeline a request runs on `target`, with its `allowDiskUse` and
/// `bypassDocumentValidation`.
pub(super) fn environment(
    ctx: &RequestCtx<'_>,
    req: &CommandRequest,
    target: &Target,
    vars: Variables,
    stats: Arc<ExecStats>,
    (allow_disk_use, bypass_validation): (bool, bool),
) -> Arc<PipelineEnv> {
    Arc::new(PipelineEnv {
        storage: ctx.state.storage.clone(),
        view: ctx.read_view(),
        own_collections: ctx.txn.as_ref().map(|txn| txn.created_collections().to_vec()).unwrap_or_default(),
        db: req.db().to_owned(),
        vars,
        collation: target.collation.clone(),
        allow_disk_use,
        max_memory_bytes: ctx.state.params.max_blocking_sort_bytes(),
        stats,
        plans: Arc::new(PlanCache::default()),
        log: ctx.state.log.clone(),
        redact_log: ctx.state.config.redact_client_log_data,
        connection_id: ctx.client.connection_id,
        bypass_validation,
    })
}

/// The stages to run: `optimized` (mongod's rewrites of `stages`, see
/// [`pipeline::optimize`]) when there is one.
pub(super) fn rewritten<'a>(
    stages: Vec<RawBsonRef<'a>>,
    optimized: Option<&'a [RawDocumentBuf]>,
) -> Vec<RawBsonRef<'a>> {
    match optimized {
        Some(optimized) => optimized.iter().map(|d| RawBsonRef::Document(d)).collect(),
        None => stages,
    }
}

/// An `aggregate`'s `pipeline`, which it requires.
///
/// # Errors
/// 9 FailedToParse when missing, 14 TypeMismatch when not an array.
pub(super) fn pipeline_arg<'a>(req: &'a CommandRequest) -> Result<Vec<RawBsonRef<'a>>> {
    req.array_arg("pipeline")?.ok_or_else(|| {
        Error::new(ErrorCode::FailedToParse, "BSON field 'aggregate.pipeline' is missing but a required field")
    })
}

/// `aggregate`: find on the namespace unless the first stage is a source of its own, and what
/// each stage needs (find on what `$lookup`, `$graphLookup` and `$unionWith` read, insert and
/// remove where `$out` writes, insert and update where `$merge` writes, the statistics
/// stages' own actions), through sub-pipelines. A pipeline the handler will refuse needs find.
pub(super) fn authorize(authz: &Authorizer<'_>, req: &CommandRequest) -> bool {
    let db = req.db();
    let coll = match req.command_value() {
        Some(RawBsonRef::String(coll)) => Some(coll),
        _ => None,
    };
    let Ok(Some(stages)) = req.array_arg("pipeline") else {
        return authz.on_command_namespace(req, ActionType::Find);
    };
    let bypass = super::authz::bypasses_validation(req);
    pipeline_allowed(authz, db, coll, &stages, bypass)
}

/// The argument of a pipeline's first stage when it is `$changeStream`.
fn change_stream_spec<'a>(stages: &[RawBsonRef<'a>]) -> Option<RawBsonRef<'a>> {
    let (name, spec) = stages.first()?.as_document()?.into_iter().next()?.ok()?;
    (name.as_str() == "$changeStream").then_some(spec)
}

/// An `aggregate` whose first stage is `$changeStream`: a change stream over the collection
/// `ns`, its database (`aggregate: 1`) or, on `admin` with `allChangesForCluster`, every
/// database; `stages` run on each event. Answered with a tailable, awaitData cursor whose
/// batches carry `postBatchResumeToken`.
fn change_stream(
    ctx: &mut RequestCtx<'_>,
    req: &CommandRequest,
    db_level: bool,
    ns: Namespace,
    (spec, stages): (RawBsonRef<'_>, &[RawBsonRef<'_>]),
    batch_size: Option<usize>,
) -> Result<Reply> {
    if ctx.state.repl.set_name().is_none() && !ctx.state.repl.is_router() {
        return Err(Error::new(ErrorCode::Location40573, "The $changeStream stage is only supported on replica sets"));
    }
    let spec = ChangeStreamSpec::parse(spec)?;
    change_stream::check_stages(stages)?;
    // A change stream reads majority-committed changes only, as mongod's.
    if let Some(level) = req.doc_arg("readConcern")?.and_then(|rc| rc.get_str("level").ok())
        && level != "majority"
    {
        return Err(Error::new(
            ErrorCode::InvalidOptions,
            format!("Command does not support read concern {{ level: \"{level}\" }}"),
        ));
    }
    let internal = |what: String| {
        Error::new(ErrorCode::InvalidNamespace, format!("$changeStream may not be opened on the internal {what}"))
    };
    if spec.all_changes_for_cluster && !(db_level && ns.db == "admin") {
        return Err(Error::new(
            ErrorCode::InvalidOptions,
            format!(
                "A $changeStream with 'allChangesForCluster:true' may only be opened on the 'admin' database, and with no collection name; found {ns}"
            ),
        ));
    }
    let scope = match (db_level, spec.all_changes_for_cluster) {
        (true, true) => Scope::Cluster,
        _ if matches!(ns.db.as_str(), "admin" | "config" | "local") => {
            return Err(internal(format!("{} database", ns.db)));
        }
        (true, false) => Scope::Database(ns.db.clone()),
        (false, _) if ns.coll.starts_with("system.") => return Err(internal(format!("{ns} collection"))),
        (false, _) => Scope::Collection { db: ns.db.clone(), coll: ns.coll.clone() },
    };
    if !db_level && ctx.state.storage.collection(&ns).is_none() && views::resolve(&ctx.state.storage, &ns)?.is_some() {
        return Err(Error::new(
            ErrorCode::CommandNotSupportedOnView,
            format!("Namespace {ns} is a view, not a collection"),
        ));
    }
    let target = Target::resolve(ctx, ns, req.get("collation"), "aggregate.collation")?;
    let vars = req.doc_arg("let")?.map(Variables::from_let).transpose()?.unwrap_or_default();
    let stats = Arc::new(ExecStats::default());
    let env = environment(ctx, req, &target, vars, stats.clone(), (false, false));
    let stages = stages.iter().filter_map(|stage| stage.as_document().map(ToOwned::to_owned)).collect();
    let stream = change_stream::open(&ctx.state.storage, scope, spec, stages, env).map_err(change_stream::labelled)?;
    let mark = stream.high_water_mark.clone();
    let resume_token: ResumeTokenSource =
        Arc::new(move || mark.lock().unwrap_or_else(std::sync::PoisonError::into_inner).to_document());
    let first = FirstBatch {
        size: Some(batch_size.unwrap_or(cursor::DEFAULT_FIRST_BATCH)),
        deadline: target.deadline,
        tailing: Some(stream.tailing),
        resume_token: Some(resume_token),
        ..FirstBatch::default()
    };
    cursor_reply(ctx, &target.ns, (stream.events, stats), first).map_err(change_stream::labelled)
}

/// Whether the pipeline ends in `$out` or `$merge`: it writes, so only a primary runs it.
pub(super) fn writes_output(req: &CommandRequest) -> bool {
    let Ok(Some(stages)) = req.array_arg("pipeline") else { return false };
    let last = stages.last().and_then(|s| s.as_document()).and_then(|s| s.into_iter().next()?.ok());
    last.is_some_and(|(name, _)| matches!(name.as_str(), "$out" | "$merge"))
}

/// The stages that produce documents of their own: a pipeline starting with one of them reads
/// nothing from its collection through `find`.
const SOURCES: &[&str] = &[
    "$documents",
    "$collStats",
    "$indexStats",
    "$currentOp",
    "$listSessions",
    "$listLocalSessions",
    "$planCacheStats",
];

fn pipeline_allowed(
    authz: &Authorizer<'_>,
    db: &str,
    coll: Option<&str>,
    stages: &[RawBsonRef<'_>],
    bypass: bool,
) -> bool {
    let first = stages.first().and_then(|s| s.as_document()).and_then(|s| s.into_iter().next()?.ok());
    let starts_with_source = first.is_some_and(|(name, _)| SOURCES.contains(&name.as_str()));
    let reads = match coll {
        Some(coll) => authz.on_namespace(db, coll, ActionType::Find),
        None => authz.allows(Resource::Database(db), ActionType::Find),
    };
    (starts_with_source || reads) && stages_allowed(authz, db, coll, stages, bypass)
}

/// Whether every stage's own needs are met.
fn stages_allowed(
    authz: &Authorizer<'_>,
    db: &str,
    coll: Option<&str>,
    stages: &[RawBsonRef<'_>],
    bypass: bool,
) -> bool {
    stages.iter().all(|stage| {
        let Some(Ok((name, spec))) = stage.as_document().and_then(|s| s.into_iter().next()) else { return true };
        stage_allowed(authz, db, coll, name.as_str(), spec, bypass)
    })
}

/// `{db, coll}` or a collection name in `db`.
fn foreign<'a>(db: &'a str, spec: RawBsonRef<'a>, coll_key: &str) -> Option<(&'a str, &'a str)> {
    match spec {
        RawBsonRef::String(coll) => Some((db, coll)),
        RawBsonRef::Document(d) => {
            let coll = d.get_str(coll_key).ok()?;
            Some((d.get_str("db").unwrap_or(db), coll))
        }
        _ => None,
    }
}

fn sub_pipeline<'a>(spec: &'a bson::RawDocument) -> Vec<RawBsonRef<'a>> {
    spec.get_array("pipeline").map(|a| a.into_iter().filter_map(|s| s.ok()).collect()).unwrap_or_default()
}

fn stage_allowed(
    authz: &Authorizer<'_>,
    db: &str,
    coll: Option<&str>,
    name: &str,
    spec: RawBsonRef<'_>,
    bypass: bool,
) -> bool {
    let on_coll = |action| coll.is_none_or(|coll| authz.on_namespace(db, coll, action));
    let document = spec.as_document();
    match name {
        "$collStats" => on_coll(ActionType::CollStats),
        // mongod's: changeStream (with find) on the collection, the database, or every
        // normal collection for a whole-deployment stream.
        "$changeStream" => {
            let cluster = document.and_then(|d| d.get_bool("allChangesForCluster").ok()).unwrap_or(false);
            match (coll, cluster) {
                (_, true) => authz.allows_all(Resource::AnyNormal, &[ActionType::ChangeStream, ActionType::Find]),
                (Some(coll), false) => authz.on_namespace(db, coll, ActionType::ChangeStream),
                (None, false) => authz.allows(Resource::Database(db), ActionType::ChangeStream),
            }
        }
        // Other users' sessions take listSessions on the cluster, as mongod's.
        "$listSessions" | "$listLocalSessions" => {
            let all_users = document.and_then(|d| d.get_bool("allUsers").ok()).unwrap_or(false);
            let others = document.and_then(|d| d.get_array("users").ok()).is_some_and(|users| {
                users.into_iter().filter_map(|u| u.ok()?.as_document()).any(|user| {
                    let (name, db) = (user.get_str("user").unwrap_or_default(), user.get_str("db").unwrap_or_default());
                    !authz.owns(&[(name.to_owned(), db.to_owned())])
                })
            });
            !(all_users || others) || authz.allows(Resource::Cluster, ActionType::ListSessions)
        }
        "$indexStats" => on_coll(ActionType::IndexStats),
        "$planCacheStats" => on_coll(ActionType::PlanCacheRead),
        "$currentOp" => {
            let all_users = document.and_then(|d| d.get_bool("allUsers").ok()).unwrap_or(false);
            !all_users || authz.allows(Resource::Cluster, ActionType::Inprog)
        }
        "$lookup" | "$graphLookup" | "$unionWith" => {
            let key = if name == "$unionWith" { "coll" } else { "from" };
            let source = match (name, spec) {
                ("$unionWith", _) => foreign(db, spec, "coll"),
                (_, RawBsonRef::Document(d)) => d.get(key).ok().flatten().and_then(|from| foreign(db, from, "coll")),
                _ => None,
            };
            let nested = document.map(sub_pipeline).unwrap_or_default();
            match source {
                Some((db, coll)) => pipeline_allowed(authz, db, Some(coll), &nested, bypass),
                // `$lookup` with only a pipeline (of `$documents`) reads no collection.
                None => nested.is_empty() || pipeline_allowed(authz, db, None, &nested, bypass),
            }
        }
        "$facet" => document.is_none_or(|facets| {
            facets.into_iter().filter_map(|f| f.ok()).all(|(_, sub)| {
                let stages: Vec<RawBsonRef<'_>> =
                    sub.as_array().map(|a| a.into_iter().filter_map(|s| s.ok()).collect()).unwrap_or_default();
                stages_allowed(authz, db, coll, &stages, bypass)
            })
        }),
        "$out" => {
            let Some((db, coll)) = foreign(db, spec, "coll") else { return true };
            let mut needed = vec![ActionType::Insert, ActionType::Remove];
            if bypass {
                needed.push(ActionType::BypassDocumentValidation);
            }
            authz.allows_all(Resource::Namespace(db, coll), &needed)
        }
        "$merge" => {
            let into = match document {
                Some(d) => d.get("into").ok().flatten().and_then(|into| foreign(db, into, "coll")),
                None => foreign(db, spec, "coll"),
            };
            let Some((db, coll)) = into else { return true };
            let when_matched = document.and_then(|d| d.get("whenMatched").ok().flatten());
            let when_not_matched = document.and_then(|d| d.get_str("whenNotMatched").ok()).unwrap_or("insert");
            let mut needed = Vec::new();
            if when_not_matched == "insert" {
                needed.push(ActionType::Insert);
            }
            if !matches!(when_matched, Some(RawBsonRef::String("fail"))) {
                needed.push(ActionType::Update);
            }
            if bypass {
                needed.push(ActionType::BypassDocumentValidation);
            }
            authz.allows_all(Resource::Namespace(db, coll), &needed)
        }
        _ => true,
    }
}
