//! Read commands: `find`, `getMore`, `killCursors`, `count`, `distinct`, and `aggregate` for
//! the pipelines drivers build themselves (`countDocuments`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bson::{Bson, Document, RawBsonRef, RawDocument, RawDocumentBuf, doc};

use super::collation;
use super::{CommandRequest, RequestCtx, count_value};
use crate::error::{Error, ErrorCode, Result};
use crate::exec::cursor::DEFAULT_FIRST_BATCH;
use crate::exec::planner::{self, ExecStats, Plan, QueryShape};
use crate::query::expr::Variables;
use crate::query::path::{self, Reached};
use crate::query::{Collation, DocumentStage, FieldPath, Filter, Projection, SortSpec, compare_collated, limits};
use crate::state::State;
use crate::state::cursors::{Cursor, DocumentStream};
use crate::storage::Namespace;

/// What a query reads and how: the parts of `find` that shape the document stream.
pub(super) struct QueryPlan {
    pub(super) filter: Filter,
    pub(super) filter_doc: RawDocumentBuf,
    pub(super) sort: Option<SortSpec>,
    pub(super) projection_doc: Option<RawDocumentBuf>,
    pub(super) projection: Option<Projection>,
    pub(super) hint: Option<bson::RawBson>,
    pub(super) skip: usize,
    pub(super) limit: Option<usize>,
    /// `allowDiskUse` (or `allowDiskUseByDefault`): lifts the in-memory sort limit. The sort
    /// still runs in memory: Monarch does not spill to disk yet.
    pub(super) allow_disk_use: bool,
    /// The collation the filter and sort use (`None`: simple).
    pub(super) collation: Option<Arc<Collation>>,
    /// `min` and `max` key values of a hinted index scan.
    pub(super) min_max: (Option<RawDocumentBuf>, Option<RawDocumentBuf>),
    /// `returnKey`: return the index key of each document (`{}` without an index) instead of
    /// the document.
    pub(super) return_key: bool,
    /// `showRecordId`: add each document's `$recordId`.
    pub(super) show_record_id: bool,
}

impl QueryPlan {
    /// A plan that only filters, by `filter_doc` (or everything when `None`) under `collation`.
    pub(super) fn filtered(filter_doc: Option<&RawDocument>, collation: Option<Arc<Collation>>) -> Result<Self> {
        let filter_doc = filter_doc.map_or_else(RawDocumentBuf::new, ToOwned::to_owned);
        Ok(Self {
            filter: Filter::parse(&filter_doc)?.with_collation(collation.as_ref()),
            filter_doc,
            sort: None,
            projection_doc: None,
            projection: None,
            hint: None,
            skip: 0,
            limit: None,
            allow_disk_use: false,
            collation,
            min_max: (None, None),
            return_key: false,
            show_record_id: false,
        })
    }

    /// The documents of `ns` this plan produces, from one storage snapshot.
    fn stream(self, ctx: &RequestCtx<'_>, ns: &Namespace) -> Result<(DocumentStream, Arc<ExecStats>)> {
        let stats = Arc::new(ExecStats::default());
        ctx.op.track(&stats);
        Ok((self.run(ctx.state, ns, stats.clone())?.1, stats))
    }

    /// Plans and starts the query; returns the plan (`None` when the collection does not
    /// exist) and the stream, counting work into `stats`.
    pub(super) fn run(
        self,
        state: &State,
        ns: &Namespace,
        stats: Arc<ExecStats>,
    ) -> Result<(Option<Plan>, DocumentStream)> {
        let storage = &state.storage;
        let Some(collection) = storage.collection(ns) else {
            return Ok((None, Box::new(std::iter::empty())));
        };
        // IMPORTANT: indexes before the snapshot, so every listed index is complete in it.
        let indexes = collection.indexes();
        let view = storage.snapshot();
        let QueryPlan {
            filter,
            filter_doc,
            sort,
            projection_doc,
            projection,
            hint,
            skip,
            limit,
            allow_disk_use,
            collation,
            min_max: (min, max),
            return_key,
            show_record_id,
        } = self;
        let shape = QueryShape {
            filter: &filter_doc,
            sort: sort.as_ref(),
            projection: projection_doc.as_deref(),
            hint: hint.as_ref().map(bson::RawBson::as_raw_bson_ref),
            collation: collation.as_deref(),
            min: min.as_deref(),
            max: max.as_deref(),
        };
        let planning = Instant::now();
        let plan = planner::choose(&state.plans, &collection, &indexes, &shape, &view)?;
        stats.add_plan_time(planning.elapsed());
        stats.set_plan(plan.note(ns, &shape));
        let counted = stats.clone();
        let matched = planner::execute(&plan, view, &collection, filter, stats)?
            .inspect(move |_| _ = counted.matched.fetch_add(1, Ordering::Relaxed));
        let matched: DocumentStream = Box::new(matched);
        let ordered: DocumentStream = match sort {
            Some(sort) if !plan.sort_provided => {
                let mut all = Vec::new();
                let mut bytes = 0usize;
                let memory_limit = usize::try_from(state.params.max_blocking_sort_bytes()).unwrap_or(usize::MAX);
                for doc in matched {
                    let doc = doc?;
                    bytes += doc.as_bytes().len();
                    if bytes > memory_limit && !allow_disk_use {
                        return Err(Error::new(
                            ErrorCode::QueryExceededMemoryLimitNoDiskUseAllowed,
                            format!(
                                "Executor error during find command :: caused by :: Sort exceeded memory limit of \
                                 {memory_limit} bytes, but did not opt in to external sorting."
                            ),
                        ));
                    }
                    all.push(doc);
                }
                // Stable: ties keep record order, as mongod.
                all.sort_by(|a, b| sort.compare(a, b));
                Box::new(all.into_iter().map(Ok))
            }
            _ => matched,
        };
        let windowed = ordered.skip(skip).take(limit.unwrap_or(usize::MAX));
        // With `returnKey`, mongod returns the key alone, `showRecordId` or not.
        if show_record_id && !return_key {
            // The record id comes from the stored document, before the projection replaces it.
            let shaped = windowed.map(move |doc| {
                let doc = doc?;
                let record_id = doc.get("_id").ok().flatten().map(crate::storage::record_id);
                let mut out = match &projection {
                    Some(projection) => projection.apply(&doc)?,
                    None => doc,
                };
                if let Some(bytes) = record_id {
                    out.append(
                        bson::raw::cstr!("$recordId"),
                        bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes },
                    );
                }
                Ok(out)
            });
            return Ok((Some(plan), Box::new(shaped)));
        }
        if return_key {
            let chosen = plan.clone();
            let keys = windowed.map(move |doc| doc.and_then(|d| planner::index_key(&chosen, &d)));
            return Ok((Some(plan), Box::new(keys)));
        }
        let stream: DocumentStream = match projection {
            Some(projection) => Box::new(windowed.map(move |doc| doc.and_then(|d| Ok(projection.apply(&d)?)))),
            None => Box::new(windowed),
        };
        Ok((Some(plan), stream))
    }
}

/// The deadline of `maxTimeMS`, if given.
fn deadline(req: &CommandRequest) -> Result<Option<Instant>> {
    Ok(req.count_arg("maxTimeMS")?.filter(|&ms| ms > 0).map(|ms| Instant::now() + Duration::from_millis(ms as u64)))
}

fn usize_arg(req: &CommandRequest, key: &str) -> Result<Option<usize>> {
    Ok(req.count_arg(key)?.map(|n| usize::try_from(n).unwrap_or(usize::MAX)))
}

/// The documents of a batch as reply values; a stored document nested deeper than mongod
/// reads (written by an older version) fails the batch with 15 Overflow naming its `_id`.
fn batch_to_bson(batch: Vec<RawDocumentBuf>) -> Result<Vec<Bson>> {
    batch.into_iter().map(|doc| Ok(Bson::Document(limits::to_document(&doc)?))).collect()
}

/// The `hint` argument: an index name or key pattern (checked against the indexes when the
/// query is planned).
pub(super) fn hint_arg(req: &CommandRequest) -> Result<Option<bson::RawBson>> {
    planner::hint_of(req.get("hint"))
        .map(|hint| hint.map(bson::RawBson::from))
        .map_err(|other| req.wrong_type("hint", other, "object or string"))
}

/// Builds a first-batch cursor reply, parking the cursor when documents remain.
fn cursor_reply(
    ctx: &RequestCtx<'_>,
    ns: &Namespace,
    (stream, stats): (DocumentStream, Arc<ExecStats>),
    first_batch: Option<usize>,
    single_batch: bool,
    no_timeout: bool,
    deadline: Option<Instant>,
) -> Result<Document> {
    let mut cursor = Cursor::new(ns.full(), stream, no_timeout, stats);
    let (batch, done) = cursor.next_batch(Some(first_batch.unwrap_or(DEFAULT_FIRST_BATCH)), deadline)?;
    ctx.op.docs.returned.fetch_add(batch.len() as u64, Ordering::Relaxed);
    let id = if done || single_batch { 0 } else { ctx.state.cursors.insert(cursor) };
    Ok(doc! { "cursor": { "firstBatch": batch_to_bson(batch)?, "id": id, "ns": ns.full() } })
}

/// `find`.
pub fn find(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let ns = req.namespace()?;
    let deadline = deadline(req)?;
    let plan = find_plan(req, ctx.state)?;
    let limit = plan.limit;
    let single_batch = req.bool_arg("singleBatch")?.unwrap_or(false);
    let no_timeout = req.bool_arg("noCursorTimeout")?.unwrap_or(false);
    let batch_size = usize_arg(req, "batchSize")?;
    ctx.state.counters.opcounters.query.fetch_add(1, Ordering::Relaxed);
    let first_batch = match (batch_size, limit) {
        (Some(b), Some(l)) => Some(b.min(l)),
        (b, l) => b.or(l.filter(|&l| l < DEFAULT_FIRST_BATCH)),
    };
    let stream = plan.stream(ctx, &ns)?;
    cursor_reply(ctx, &ns, stream, first_batch, single_batch, no_timeout, deadline)
}

/// The query a `find` command describes.
pub(super) fn find_plan(req: &CommandRequest, state: &State) -> Result<QueryPlan> {
    let ns = req.namespace()?;
    let collation =
        collation::resolve(req.get("collation"), "find.collation", state.storage.collection(&ns).as_deref())?;
    let empty = RawDocumentBuf::new();
    let filter_doc = req.doc_arg("filter")?.unwrap_or(&empty).to_owned();
    let limit = match req.get("limit") {
        Some(RawBsonRef::Int32(n)) if n < 0 => {
            return Err(Error::new(
                ErrorCode::BadValue,
                format!("limit value must be non-negative, but received: {n}"),
            ));
        }
        _ => usize_arg(req, "limit")?.filter(|&n| n > 0),
    };
    let mut filter = Filter::parse(&filter_doc)?;
    let vars = req.doc_arg("let")?.map(Variables::from_let).transpose()?.unwrap_or_default();
    filter = filter.with_variables(&vars);
    let filter = filter.with_collation(collation.as_ref());
    let projection = req.doc_arg("projection")?.filter(|p| !p.is_empty());
    check_tailable(req, state, &ns, &filter_doc)?;
    Ok(QueryPlan {
        projection: projection
            .map(|p| Projection::parse_with_query(p, &filter))
            .transpose()?
            .map(|p| p.with_collation(collation.as_ref()).with_variables(&vars)),
        projection_doc: projection.map(ToOwned::to_owned),
        filter,
        filter_doc,
        sort: req.doc_arg("sort")?.map(SortSpec::parse).transpose()?.map(|s| s.with_collation(collation.as_ref())),
        hint: hint_arg(req)?,
        skip: usize_arg(req, "skip")?.unwrap_or(0),
        limit,
        allow_disk_use: req.bool_arg("allowDiskUse")?.unwrap_or(state.params.allow_disk_use_by_default()),
        collation,
        min_max: (req.doc_arg("min")?.map(ToOwned::to_owned), req.doc_arg("max")?.map(ToOwned::to_owned)),
        return_key: req.bool_arg("returnKey")?.unwrap_or(false),
        show_record_id: req.bool_arg("showRecordId")?.unwrap_or(false),
    })
}

/// `tailable` and `awaitData`, as mongod checks them. Tailable cursors on capped collections
/// are not built yet (238); on other collections mongod refuses them.
fn check_tailable(req: &CommandRequest, state: &State, ns: &Namespace, filter: &RawDocument) -> Result<()> {
    let tailable = req.bool_arg("tailable")?.unwrap_or(false);
    if req.bool_arg("awaitData")?.unwrap_or(false) && !tailable {
        return Err(Error::new(ErrorCode::FailedToParse, "Cannot set 'awaitData' without also setting 'tailable'"));
    }
    // mongod answers an empty batch for a missing collection before it looks at `tailable`.
    let Some(collection) = state.storage.collection(ns).filter(|_| tailable) else { return Ok(()) };
    if collection.options.get_bool("capped").unwrap_or(false) {
        return Err(Error::new(ErrorCode::NotImplemented, "tailable cursors are not supported yet"));
    }
    // mongod prints its canonical query here: exact for an empty filter (`$and`), close for
    // others (mongod prints its parsed expression tree).
    let shown = |doc: Option<&RawDocument>| {
        doc.and_then(|d| Document::try_from(d).ok()).map_or_else(|| "{}".to_owned(), |d| d.to_string())
    };
    let tree = if filter.is_empty() { "$and".to_owned() } else { shown(Some(filter)) };
    let mut options = String::new();
    for key in ["batchSize", "limit", "skip"] {
        if let Some(n) = req.count_arg(key)?.filter(|&n| n > 0) {
            options.push_str(&format!(" {key}={n}"));
        }
    }
    let (sort, projection) = (shown(req.doc_arg("sort")?), shown(req.doc_arg("projection")?));
    Err(Error::new(
        ErrorCode::BadValue,
        format!(
            "error processing query: ns={ns}{options}Tree: {tree}\nSort: {sort}\nProj: {projection}\n tailable cursor \
             requested on non capped collection"
        ),
    ))
}

/// `getMore`.
pub fn get_more(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let id = match req.command_value() {
        Some(RawBsonRef::Int64(id)) => id,
        Some(other) => return Err(req.wrong_type("getMore", other, "long")),
        None => return Err(Error::new(ErrorCode::FailedToParse, "getMore requires a cursor id")),
    };
    let collection = req.str_arg("collection")?.ok_or_else(|| {
        Error::new(ErrorCode::FailedToParse, "BSON field 'getMore.collection' is missing but a required field")
    })?;
    let ns = cursor_namespace(req.db(), collection)?;
    let batch_size = usize_arg(req, "batchSize")?.filter(|&n| n > 0);
    let deadline = deadline(req)?;
    let cursors = &ctx.state.cursors;
    if let Some(owner) = cursors.namespace(id)
        && owner != ns.full()
    {
        return Err(Error::new(
            ErrorCode::Unauthorized,
            format!("Requested getMore on namespace '{ns}', but cursor belongs to a different namespace {owner}"),
        ));
    }
    let mut cursor = cursors.take(id)?;
    if req.get("maxTimeMS").is_some() {
        // Only awaitData cursors take a time limit per getMore in mongod, and Monarch has none
        // yet; the cursor stays open, as in mongod.
        cursors.restore(id, cursor);
        return Err(Error::new(
            ErrorCode::BadValue,
            "cannot set maxTimeMS on getMore command for a non-awaitData cursor",
        ));
    }
    ctx.state.counters.opcounters.getmore.fetch_add(1, Ordering::Relaxed);
    ctx.op.track(cursor.stats());
    // A cursor whose batch failed is not put back: mongod kills it too.
    let (batch, done) = cursor.next_batch(batch_size, deadline)?;
    ctx.op.docs.returned.fetch_add(batch.len() as u64, Ordering::Relaxed);
    let id = if done {
        0
    } else {
        cursors.restore(id, cursor);
        id
    };
    Ok(doc! { "cursor": { "nextBatch": batch_to_bson(batch)?, "id": id, "ns": ns.full() } })
}

/// The namespace of a cursor named by `getMore` or `killCursors`: a collection, or the
/// `<db>.$cmd.<command>` namespace of a listCollections, listIndexes or database aggregate
/// cursor, as in mongod.
fn cursor_namespace(db: &str, collection: &str) -> Result<Namespace> {
    if collection.starts_with("$cmd.") {
        crate::storage::validate_db_name(db)?;
        return Ok(Namespace { db: db.to_owned(), coll: collection.to_owned() });
    }
    Namespace::new(db, collection)
}

/// `killCursors`.
pub fn kill_cursors(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    match req.command_value() {
        Some(RawBsonRef::String(collection)) => cursor_namespace(req.db(), collection)?,
        _ => req.namespace()?,
    };
    let ids = req.array_arg("cursors")?.ok_or_else(|| {
        Error::new(ErrorCode::FailedToParse, "BSON field 'killCursors.cursors' is missing but a required field")
    })?;
    let (mut killed, mut not_found) = (Vec::new(), Vec::new());
    for id in ids {
        let RawBsonRef::Int64(id) = id else {
            return Err(req.wrong_type("cursors", id, "long"));
        };
        if ctx.state.cursors.kill(id) {
            killed.push(id);
        } else {
            not_found.push(id);
        }
    }
    Ok(doc! {
        "cursorsKilled": killed,
        "cursorsNotFound": not_found,
        "cursorsAlive": Vec::<i64>::new(),
        "cursorsUnknown": Vec::<i64>::new(),
    })
}

/// `count`.
pub fn count(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let ns = req.namespace()?;
    let plan = count_plan(req, ctx.state)?;
    // Without a filter, skip, limit or hint, the stored total answers, as mongod's collection
    // metadata does for estimatedDocumentCount.
    if plan.filter_doc.is_empty() && plan.skip == 0 && plan.limit.is_none() && plan.hint.is_none() {
        let storage = &ctx.state.storage;
        let total = storage.collection(&ns).map(|c| storage.collection_size(&c)).transpose()?.map_or(0, |(_, n)| n);
        return Ok(doc! { "n": count_value(i64::try_from(total).unwrap_or(i64::MAX)) });
    }
    Ok(doc! { "n": count_value(count_stream(plan.stream(ctx, &ns)?.0)?) })
}

/// The query a `count` command describes.
pub(super) fn count_plan(req: &CommandRequest, state: &State) -> Result<QueryPlan> {
    let ns = req.namespace()?;
    let collation =
        collation::resolve(req.get("collation"), "count.collation", state.storage.collection(&ns).as_deref())?;
    Ok(QueryPlan {
        skip: usize_arg(req, "skip")?.unwrap_or(0),
        limit: usize_arg(req, "limit")?.filter(|&n| n > 0),
        hint: hint_arg(req)?,
        ..QueryPlan::filtered(req.doc_arg("query")?, collation)?
    })
}

/// The query a `distinct` command describes.
pub(super) fn distinct_plan(req: &CommandRequest, state: &State) -> Result<QueryPlan> {
    let ns = req.namespace()?;
    let collation =
        collation::resolve(req.get("collation"), "distinct.collation", state.storage.collection(&ns).as_deref())?;
    QueryPlan::filtered(req.doc_arg("query")?, collation)
}

/// `distinct`: the distinct values at `key` (array values contribute their elements).
pub fn distinct(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let ns = req.namespace()?;
    let key = req
        .str_arg("key")?
        .ok_or_else(|| {
            Error::new(ErrorCode::FailedToParse, "BSON field 'distinct.key' is missing but a required field")
        })?
        .to_owned();
    let plan = distinct_plan(req, ctx.state)?;
    let collation = plan.collation.clone();
    let collation = collation.as_deref();
    let path = FieldPath::new(&key);
    let mut values: Vec<bson::RawBson> = Vec::new();
    for document in plan.stream(ctx, &ns)?.0 {
        let document = document?;
        let _ = path::walk(&document, &path, &mut |reached| {
            // Arrays contribute their elements, not themselves (nested arrays stay whole).
            if let Reached::Value { value, array_element } = reached {
                let is_array = matches!(value, RawBsonRef::Array(_));
                if (array_element || !is_array)
                    && !values.iter().any(|seen| compare_collated(seen.as_raw_bson_ref(), value, collation).is_eq())
                {
                    values.push(bson::RawBson::from(value));
                }
            }
            std::ops::ControlFlow::Continue(())
        });
    }
    values.sort_by(|a, b| compare_collated(a.as_raw_bson_ref(), b.as_raw_bson_ref(), collation));
    let values = values.into_iter().map(|v| Ok(limits::to_bson(v.as_raw_bson_ref())?)).collect::<Result<Vec<_>>>()?;
    Ok(doc! { "values": values })
}

/// `aggregate`, for the stages drivers generate themselves: `$match`, `$sort`, `$skip`,
/// `$limit`, `$project` (with computed fields), `$addFields`/`$set`, `$unset`,
/// `$replaceWith`/`$replaceRoot`, `$count`, and `$group` with a constant `_id` and `$sum`
/// accumulators.
pub fn aggregate(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
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
    let stages = req.array_arg("pipeline")?.ok_or_else(|| {
        Error::new(ErrorCode::FailedToParse, "BSON field 'aggregate.pipeline' is missing but a required field")
    })?;
    // As mongod, stage positions are checked before anything runs.
    for stage in stages.iter().skip(1) {
        if let RawBsonRef::Document(stage) = stage
            && let Some((name, _)) = crate::query::path::fields(stage).next()
            && FIRST_STAGE_ONLY.contains(&name)
        {
            return Err(Error::new(
                ErrorCode::Location40602,
                format!("{name} is only valid as the first stage in a pipeline."),
            ));
        }
    }
    let deadline = deadline(req)?;
    let vars = req.doc_arg("let")?.map(Variables::from_let).transpose()?;
    let collation =
        collation::resolve(req.get("collation"), "aggregate.collation", ctx.state.storage.collection(&ns).as_deref())?;
    let ((mut stream, stats), rest) = match stages.split_first() {
        Some((RawBsonRef::Document(first), rest)) if first.get("$currentOp").ok().flatten().is_some() => {
            if !db_level || req.db() != "admin" {
                return Err(Error::new(
                    ErrorCode::InvalidNamespace,
                    "$currentOp must be run against the 'admin' database with {aggregate: 1}",
                ));
            }
            ((super::operations::current_op_stage(ctx, first)?, Arc::default()), rest)
        }
        _ if db_level => {
            return Err(Error::new(
                ErrorCode::NotImplemented,
                "database-level aggregation is only supported with $currentOp yet",
            ));
        }
        Some((RawBsonRef::Document(first), rest)) if first.get("$collStats").ok().flatten().is_some() => {
            ((coll_stats_stage(ctx, &ns, first)?, Arc::default()), rest)
        }
        _ => {
            let (mut plan, consumed) = pipeline_query(&stages, vars.as_ref(), collation.clone())?;
            plan.allow_disk_use = req.bool_arg("allowDiskUse")?.unwrap_or(ctx.state.params.allow_disk_use_by_default());
            plan.hint = hint_arg(req)?;
            (plan.stream(ctx, &ns)?, stages.get(consumed..).unwrap_or_default())
        }
    };
    for &stage in rest {
        let RawBsonRef::Document(stage) = stage else {
            return Err(Error::new(ErrorCode::TypeMismatch, "Each element of the 'pipeline' array must be an object"));
        };
        stream = apply_stage(stream, stage, vars.as_ref(), collation.as_ref())?;
    }
    cursor_reply(ctx, &ns, (stream, stats), batch_size, false, false, deadline)
}

/// The query that a pipeline's leading `$match` and `$sort` stages describe, so the planner
/// can serve them from an index; returns it and how many stages it took.
pub(super) fn pipeline_query(
    stages: &[RawBsonRef<'_>],
    vars: Option<&Variables>,
    collation: Option<Arc<Collation>>,
) -> Result<(QueryPlan, usize)> {
    let single = |stage: Option<&RawBsonRef<'_>>, name: &str| -> Option<RawDocumentBuf> {
        let Some(RawBsonRef::Document(stage)) = stage else { return None };
        let mut fields = stage.iter();
        match (fields.next(), fields.next()) {
            (Some(Ok((key, RawBsonRef::Document(spec)))), None) if key.as_str() == name => Some(spec.to_owned()),
            _ => None,
        }
    };
    let mut plan = QueryPlan::filtered(None, collation.clone())?;
    let mut consumed = 0;
    if let Some(filter_doc) = single(stages.first(), "$match") {
        let mut filter = Filter::parse_match_stage(&filter_doc)?;
        if let Some(vars) = vars {
            filter = filter.with_variables(vars);
        }
        plan.filter = filter.with_collation(collation.as_ref());
        plan.filter_doc = filter_doc;
        consumed = 1;
    }
    if let Some(sort) = single(stages.get(consumed), "$sort") {
        plan.sort = Some(SortSpec::parse(&sort)?.with_collation(collation.as_ref()));
        consumed += 1;
    }
    Ok((plan, consumed))
}

/// Adds one pipeline stage; `vars` are the command's `let` variables, `collation` the
/// collation `$match` and `$sort` compare strings under.
fn apply_stage(
    stream: DocumentStream,
    stage: &RawDocument,
    vars: Option<&Variables>,
    collation: Option<&Arc<Collation>>,
) -> Result<DocumentStream> {
    let mut fields = stage.iter();
    let (name, spec) = match (fields.next(), fields.next()) {
        (Some(Ok((name, spec))), None) => (name.as_str(), spec),
        _ => {
            return Err(Error::new(
                ErrorCode::FailedToParse,
                "A pipeline stage specification object must contain exactly one field.",
            ));
        }
    };
    let stage_doc = |spec: RawBsonRef<'_>| match spec {
        RawBsonRef::Document(d) => Ok(d.to_owned()),
        _ => Err(Error::new(ErrorCode::FailedToParse, format!("the {name} stage specification must be an object"))),
    };
    let stage_count = |spec: RawBsonRef<'_>| match spec {
        RawBsonRef::Int32(n) if n >= 0 => Ok(n as usize),
        RawBsonRef::Int64(n) if n >= 0 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        RawBsonRef::Double(n) if n >= 0.0 && n.fract() == 0.0 => Ok(n as usize),
        _ => Err(Error::new(
            ErrorCode::FailedToParse,
            format!("invalid argument to {name} stage: expected a non-negative number"),
        )),
    };
    Ok(match name {
        "$match" => {
            let mut filter = Filter::parse_match_stage(&stage_doc(spec)?)?;
            if let Some(vars) = vars {
                filter = filter.with_variables(vars);
            }
            let filter = filter.with_collation(collation);
            Box::new(stream.filter_map(move |doc| planner::keep(&filter, doc)))
        }
        "$skip" => Box::new(stream.skip(stage_count(spec)?)),
        "$limit" => match stage_count(spec)? {
            0 => return Err(Error::new(ErrorCode::FailedToParse, "the limit must be positive")),
            n => Box::new(stream.take(n)),
        },
        "$sort" => {
            let sort = SortSpec::parse(&stage_doc(spec)?)?.with_collation(collation);
            let mut all = stream.collect::<Result<Vec<_>>>()?;
            all.sort_by(|a, b| sort.compare(a, b));
            Box::new(all.into_iter().map(Ok))
        }
        "$project" => {
            let RawBsonRef::Document(spec) = spec else {
                return Err(Error::new(ErrorCode::Location15969, "$project specification must be an object"));
            };
            let mut projection = Projection::parse_aggregate(spec)?;
            if let Some(vars) = vars {
                projection = projection.with_variables(vars);
            }
            Box::new(stream.map(move |doc| doc.and_then(|d| Ok(projection.apply(&d)?))))
        }
        "$addFields" | "$set" | "$unset" | "$replaceWith" | "$replaceRoot" => {
            let vars = vars.cloned().unwrap_or_default();
            let stage = DocumentStage::parse(name, spec, &vars)?;
            Box::new(stream.map(move |doc| {
                let doc = limits::to_document(&doc?)?;
                raw(&stage.apply(doc, &vars)?)
            }))
        }
        "$count" => {
            let RawBsonRef::String(field) = spec else {
                return Err(Error::new(ErrorCode::FailedToParse, "the count field must be a non-empty string"));
            };
            let field = field.to_owned();
            let n = count_stream(stream)?;
            if n == 0 {
                Box::new(std::iter::empty())
            } else {
                Box::new(std::iter::once(raw(&doc! { field: count_value(n) })))
            }
        }
        "$group" => group(stream, &stage_doc(spec)?)?,
        other if other.starts_with('$') && KNOWN_STAGES.contains(&other) => {
            return Err(Error::new(
                ErrorCode::NotImplemented,
                format!("aggregation stage {other} is not supported yet"),
            ));
        }
        other => {
            return Err(Error::new(
                ErrorCode::UnrecognizedPipelineStage,
                format!("Unrecognized pipeline stage name: '{other}'"),
            ));
        }
    })
}

/// `$collStats` as the first stage: one document with `storageStats`, `count` and/or
/// `latencyStats` (`{histograms: true}` adds the histograms), as mongosh's
/// `db.collection.stats()` and `db.collection.latencyStats()` ask.
fn coll_stats_stage(ctx: &RequestCtx<'_>, ns: &Namespace, stage: &RawDocument) -> Result<DocumentStream> {
    let Ok(Some(RawBsonRef::Document(spec))) = stage.get("$collStats") else {
        return Err(Error::new(ErrorCode::FailedToParse, "$collStats must take a nested object"));
    };
    let storage = &ctx.state.storage;
    let collection = storage.collection(ns).ok_or_else(|| {
        Error::new(
            ErrorCode::NamespaceNotFound,
            format!("Unable to retrieve storageStats in $collStats stage :: caused by :: Collection [{ns}] not found."),
        )
    })?;
    let mut out = doc! {
        "ns": ns.full(),
        "host": format!("{}:{}", crate::host::hostname(), ctx.state.port()),
        "localTime": bson::DateTime::now(),
    };
    for element in spec {
        let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        match key.as_str() {
            "storageStats" => {
                let scale = match value {
                    RawBsonRef::Document(options) => match options.get("scale").ok().flatten() {
                        Some(RawBsonRef::Int32(n)) if n > 0 => n as u64,
                        Some(RawBsonRef::Int64(n)) if n > 0 => n as u64,
                        Some(RawBsonRef::Double(n)) if n >= 1.0 => n as u64,
                        None => 1,
                        Some(_) => return Err(Error::new(ErrorCode::BadValue, "scale has to be > 0")),
                    },
                    _ => 1,
                };
                out.insert("storageStats", super::collections::storage_stats(storage, &collection, scale)?);
            }
            "latencyStats" => {
                let histograms = match value {
                    RawBsonRef::Document(options) => {
                        matches!(options.get("histograms"), Ok(Some(RawBsonRef::Boolean(true))))
                    }
                    _ => false,
                };
                out.insert("latencyStats", ctx.observers.latency.collection_document(&ns.full(), histograms));
            }
            "count" => {
                let (_, count) = storage.collection_size(&collection)?;
                out.insert("count", count_value(i64::try_from(count).unwrap_or(i64::MAX)));
            }
            other => {
                return Err(Error::new(
                    ErrorCode::NotImplemented,
                    format!("$collStats option '{other}' is not supported yet"),
                ));
            }
        }
    }
    Ok(Box::new(std::iter::once(raw(&out))))
}

/// Stages that read from a source of their own, so mongod accepts them only first (its
/// `kFirst` position requirement).
const FIRST_STAGE_ONLY: &[&str] = &["$collStats", "$currentOp", "$geoNear", "$indexStats"];

/// Stages of mongod's aggregation framework that a later issue builds.
const KNOWN_STAGES: &[&str] = &[
    "$addFields",
    "$bucket",
    "$bucketAuto",
    "$collStats",
    "$densify",
    "$documents",
    "$facet",
    "$fill",
    "$geoNear",
    "$graphLookup",
    "$indexStats",
    "$lookup",
    "$merge",
    "$out",
    "$redact",
    "$replaceRoot",
    "$replaceWith",
    "$sample",
    "$set",
    "$setWindowFields",
    "$sortByCount",
    "$unionWith",
    "$unset",
    "$unwind",
    "$changeStream",
    "$currentOp",
    "$listSessions",
    "$search",
];

fn count_stream(stream: DocumentStream) -> Result<i64> {
    let mut n = 0i64;
    for document in stream {
        document?;
        n += 1;
    }
    Ok(n)
}

fn raw(document: &Document) -> Result<RawDocumentBuf> {
    RawDocumentBuf::try_from(document).map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))
}

/// `$group` with a constant `_id` (what `countDocuments` sends) and `$sum` of constants.
fn group(stream: DocumentStream, spec: &RawDocument) -> Result<DocumentStream> {
    let mut id = None;
    let mut sums: Vec<(String, f64, bool)> = Vec::new();
    for element in spec {
        let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        if key.as_str() == "_id" {
            if matches!(value, RawBsonRef::String(s) if s.starts_with('$')) || matches!(value, RawBsonRef::Document(_))
            {
                return Err(Error::new(
                    ErrorCode::NotImplemented,
                    "$group by a field path or expression is not supported yet",
                ));
            }
            id = Some(Bson::try_from(value).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?);
            continue;
        }
        let addend = match value {
            RawBsonRef::Document(acc) => match acc.get("$sum").ok().flatten() {
                Some(RawBsonRef::Int32(n)) => (f64::from(n), true),
                Some(RawBsonRef::Int64(n)) => (n as f64, true),
                Some(RawBsonRef::Double(n)) => (n, false),
                _ => {
                    return Err(Error::new(
                        ErrorCode::NotImplemented,
                        "only $sum of a constant is supported in $group yet",
                    ));
                }
            },
            _ => {
                return Err(Error::new(
                    ErrorCode::FailedToParse,
                    format!("The field '{}' must be an accumulator object", key.as_str()),
                ));
            }
        };
        sums.push((key.as_str().to_owned(), addend.0, addend.1));
    }
    let id = id.ok_or_else(|| Error::new(ErrorCode::FailedToParse, "a group specification must include an _id"))?;
    let n = count_stream(stream)?;
    if n == 0 {
        return Ok(Box::new(std::iter::empty()));
    }
    let mut out = doc! { "_id": id };
    for (field, addend, integral) in sums {
        let total = addend * n as f64;
        if integral && total.abs() < i32::MAX as f64 {
            out.insert(field, total as i32);
        } else if integral && total.abs() < 9.0e15 {
            out.insert(field, total as i64);
        } else {
            out.insert(field, total);
        }
    }
    Ok(Box::new(std::iter::once(raw(&out))))
}
