//! Read commands: `find`, `getMore`, `killCursors`, `count`, `distinct`, and `aggregate` for
//! the pipelines drivers build themselves (`countDocuments`). Each parses its arguments once
//! into a typed struct (its [`Target`] and the [`Query`] it hands to the executor) and builds
//! its reply from what the executor returns.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bson::raw::cstr;
use bson::{Bson, Document, RawBsonRef, RawDocument, RawDocumentBuf, doc, rawdoc};

use super::aggregate::ViewRead;
use super::results::{CursorReply, cursor_reply, hint_arg, stream};
use super::target::Target;
use super::{Authorizer, CommandRequest, Reply, RequestCtx, count_value};
use crate::auth::action::ActionType;
use crate::auth::resource::Target as Resource;
use crate::error::{Error, ErrorCode, Result};
use crate::exec::change_stream;
use crate::exec::cursor::{self, Batch, FirstBatch};
use crate::exec::{Query, pipeline};
use crate::query::expr::Variables;
use crate::query::path::{self, Reached};
use crate::query::text::{TextScores, mentions_text_score};
use crate::query::{FieldPath, Filter, Projection, SortSpec, compare_collated, limits};
use crate::state::cursors::Tailing;
use crate::storage::Namespace;

fn usize_arg(req: &CommandRequest, key: &str) -> Result<Option<usize>> {
    Ok(req.count_arg(key)?.map(|n| usize::try_from(n).unwrap_or(usize::MAX)))
}

/// A `find`, parsed once.
pub(super) struct FindArgs {
    /// What it reads, under which collation and deadline.
    pub(super) target: Target,
    /// The query it runs.
    pub(super) query: Query,
    single_batch: bool,
    no_timeout: bool,
    batch_size: Option<usize>,
    /// `tailable` (with `awaitData`) on a capped collection.
    tailing: Option<Tailing>,
}

impl FindArgs {
    /// Parses `req` on `ns` (its namespace, already read), checking its arguments in mongod's
    /// order.
    ///
    /// # Errors
    /// The arguments' type and value errors, and the filter's, projection's and sort's parse
    /// errors.
    pub(super) fn parse(ctx: &RequestCtx<'_>, req: &CommandRequest, ns: Namespace) -> Result<Self> {
        let target = Target::resolve(ctx, ns, req.get("collation"), "find.collation")?;
        let collation = target.collation.clone();
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
        let mut filter = Filter::parse_query(&filter_doc)?;
        let mut vars = req.doc_arg("let")?.map(Variables::from_let).transpose()?.unwrap_or_default();
        filter = filter.with_variables(&vars);
        let filter = filter.with_collation(collation.as_ref());
        let projection = req.doc_arg("projection")?.filter(|p| !p.is_empty());
        let sort = req.doc_arg("sort")?;
        let text_scores = text_scores_for(&filter, projection, sort)?;
        vars.set_text_scores(text_scores.clone());
        let tailing = check_tailable(req, &target, &filter_doc, limit)?;
        if tailing.is_some() && filter.has_text() {
            return Err(Error::new(ErrorCode::BadValue, "text and tailable cursor not allowed in same query"));
        }
        let query = Query {
            projection: projection
                .map(|p| Projection::parse_with_query(p, &filter))
                .transpose()?
                .map(|p| p.with_collation(collation.as_ref()).with_variables(&vars)),
            projection_doc: projection.map(ToOwned::to_owned),
            filter,
            filter_doc,
            sort: sort
                .map(SortSpec::parse)
                .transpose()?
                .map(|s| s.with_collation(collation.as_ref()).with_text_scores(text_scores.as_ref()))
                .transpose()?,
            hint: hint_arg(req)?,
            skip: usize_arg(req, "skip")?.unwrap_or(0),
            limit,
            allow_disk_use: req.bool_arg("allowDiskUse")?.unwrap_or(ctx.state.params.allow_disk_use_by_default()),
            collation,
            min_max: (req.doc_arg("min")?.map(ToOwned::to_owned), req.doc_arg("max")?.map(ToOwned::to_owned)),
            return_key: req.bool_arg("returnKey")?.unwrap_or(false),
            show_record_id: req.bool_arg("showRecordId")?.unwrap_or(false),
            sort_context: crate::exec::stages::SortContext::Find,
            text_scores,
        };
        Ok(Self {
            target,
            query,
            single_batch: req.bool_arg("singleBatch")?.unwrap_or(false),
            no_timeout: req.bool_arg("noCursorTimeout")?.unwrap_or(false),
            batch_size: usize_arg(req, "batchSize")?,
            tailing,
        })
    }
}

/// `find`.
pub fn find(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Reply> {
    let ns = req.namespace()?;
    if let Some(view) = ViewRead::of(ctx, req, &ns, "find.collation")? {
        return find_on_view(ctx, req, &view);
    }
    let FindArgs { target, query, single_batch, no_timeout, batch_size, tailing } = FindArgs::parse(ctx, req, ns)?;
    ctx.state.counters.opcounters.query.fetch_add(1, Ordering::Relaxed);
    let size = Some(cursor::find_first_batch(batch_size, query.limit));
    let (Some(tailing), Some(collection)) = (tailing, &target.collection) else {
        let first = FirstBatch { size, single_batch, no_timeout, deadline: target.deadline, ..FirstBatch::default() };
        let stream = stream(ctx, &target, query)?;
        return cursor_reply(ctx, &target.ns, stream, first);
    };
    let stats = std::sync::Arc::new(crate::op::ExecStats::default());
    ctx.op.track(&stats);
    let tail = query.tail(ctx.state, collection, stats.clone(), tailing.batches.clone());
    // As mongod, a tailable cursor is kept at the end of a collection that has documents; on
    // an empty one it is closed.
    let (_, count) = ctx.state.storage.collection_size(collection)?;
    let tailing = (count > 0).then_some(tailing);
    let first = FirstBatch { size, single_batch, no_timeout, deadline: target.deadline, tailing, resume_token: None };
    cursor_reply(ctx, &target.ns, (tail, stats), first)
}

/// The options of `find` a view cannot run, as mongod's `asAggregationCommand` refuses them.
const NOT_ON_VIEWS: &[&str] =
    &["min", "max", "returnKey", "showRecordId", "noCursorTimeout", "allowPartialResults", "readOnce", "awaitData"];

/// `find` on a view: an aggregation of the view's stages and the find's `$match`, `$sort`,
/// `$skip`, `$limit` and `$project`, as mongod rewrites it.
fn find_on_view(ctx: &mut RequestCtx<'_>, req: &CommandRequest, view: &ViewRead) -> Result<Reply> {
    for option in NOT_ON_VIEWS {
        if req.get(option).is_some_and(|v| !matches!(v, RawBsonRef::Boolean(false))) {
            return Err(Error::new(
                ErrorCode::InvalidPipelineOperator,
                format!("Option {option} not supported in aggregation."),
            ));
        }
    }
    if req.bool_arg("tailable")?.unwrap_or(false) {
        return Err(Error::new(
            ErrorCode::InvalidPipelineOperator,
            "Tailable cursors are not supported in aggregation.",
        ));
    }
    let mut stages = Vec::new();
    let mut add = |name: &str, value: Bson| stages.push(doc! { name: value });
    if let Some(filter) = req.doc_arg("filter")?.filter(|f| !f.is_empty()) {
        add("$match", Bson::Document(limits::to_document(filter)?));
    }
    if let Some(sort) = req.doc_arg("sort")?.filter(|s| !s.is_empty()) {
        add("$sort", Bson::Document(limits::to_document(sort)?));
    }
    if let Some(skip) = req.count_arg("skip")?.filter(|n| *n > 0) {
        add("$skip", Bson::Int64(skip));
    }
    let limit = req.count_arg("limit")?.filter(|n| *n > 0);
    if let Some(limit) = limit {
        add("$limit", Bson::Int64(limit));
    }
    if let Some(projection) = req.doc_arg("projection")?.filter(|p| !p.is_empty()) {
        add("$project", Bson::Document(limits::to_document(projection)?));
    }
    let stages = stages
        .iter()
        .map(|d| RawDocumentBuf::try_from(d).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string())))
        .collect::<Result<Vec<_>>>()?;
    let allow_disk_use = req.bool_arg("allowDiskUse")?.unwrap_or(ctx.state.params.allow_disk_use_by_default());
    let vars = req.doc_arg("let")?.map(Variables::from_let).transpose()?.unwrap_or_default();
    let (target, stream, stats) = view.run(ctx, req, &stages, (vars, allow_disk_use))?;
    ctx.state.counters.opcounters.query.fetch_add(1, Ordering::Relaxed);
    let batch_size = req.count_arg("batchSize")?.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let first = FirstBatch {
        size: Some(cursor::find_first_batch(batch_size, limit.map(|n| usize::try_from(n).unwrap_or(usize::MAX)))),
        single_batch: req.bool_arg("singleBatch")?.unwrap_or(false),
        no_timeout: false,
        deadline: target.deadline,
        ..FirstBatch::default()
    };
    cursor_reply(ctx, &view.ns, (stream, stats), first)
}

/// `tailable` and `awaitData`, as mongod checks them: a tailable cursor reads a capped
/// collection in insertion order (a sort other than `{$natural: 1}` is 2 BadValue, as is a
/// collection that is not capped). Returns the cursor's tailing state.
fn check_tailable(
    req: &CommandRequest,
    target: &Target,
    filter: &RawDocument,
    limit: Option<usize>,
) -> Result<Option<Tailing>> {
    let ns = &target.ns;
    let tailable = req.bool_arg("tailable")?.unwrap_or(false);
    let await_data = req.bool_arg("awaitData")?.unwrap_or(false);
    if await_data && !tailable {
        return Err(Error::new(ErrorCode::FailedToParse, "Cannot set 'awaitData' without also setting 'tailable'"));
    }
    if !tailable {
        return Ok(None);
    }
    if let Some(sort) = req.doc_arg("sort")?
        && !sort.is_empty()
        && !SortSpec::parse(sort).is_ok_and(|spec| spec.natural() == Some(true) && spec.is_empty())
    {
        return Err(Error::new(ErrorCode::BadValue, "cannot use tailable option with a sort other than {$natural: 1}"));
    }
    let tailing =
        Tailing { await_data, remaining: limit, batches: std::sync::Arc::default(), ended: std::sync::Arc::default() };
    // mongod answers an empty batch for a missing collection before it looks at `tailable`.
    let Some(collection) = target.collection.as_ref() else { return Ok(Some(tailing)) };
    if collection.capped.is_some() {
        return Ok(Some(tailing));
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

/// How long an awaitData `getMore` without `maxTimeMS` waits for documents (mongod's default).
const DEFAULT_AWAIT_MS: u64 = 1000;

/// A `getMore`, parsed once.
struct GetMoreArgs {
    id: i64,
    ns: Namespace,
    batch_size: Option<usize>,
}

impl GetMoreArgs {
    fn parse(req: &CommandRequest) -> Result<Self> {
        let id = match req.command_value() {
            Some(RawBsonRef::Int64(id)) => id,
            Some(other) => return Err(req.wrong_type("getMore", other, "long")),
            None => return Err(Error::new(ErrorCode::FailedToParse, "getMore requires a cursor id")),
        };
        let collection = req.str_arg("collection")?.ok_or_else(|| {
            Error::new(ErrorCode::FailedToParse, "BSON field 'getMore.collection' is missing but a required field")
        })?;
        let ns = cursor_namespace(req.db(), collection)?;
        Ok(Self { id, ns, batch_size: usize_arg(req, "batchSize")?.filter(|&n| n > 0) })
    }
}

/// A session as mongod's messages show an `lsid`: its id, its owner's digest (of `users`),
/// and the (empty) parts of an internal session.
fn shown_lsid(id: bson::Uuid, users: &[(String, String)]) -> String {
    use base64::Engine as _;
    let uid = crate::state::sessions::user_digest(users);
    format!("{id} - {} -  - ", base64::engine::general_purpose::STANDARD.encode(uid))
}

/// mongod's error for a `getMore` outside the session its cursor was opened in (`opened`,
/// with the cursor's owners; `request` with the caller's users): 50736 for a cursor opened
/// outside any session, 50737 for a request without one, 50738 for another session. Only
/// built on a mismatch: the digests in the message are not computed per `getMore`.
fn session_mismatch(
    id: i64,
    opened: (Option<bson::Uuid>, &[(String, String)]),
    request: (Option<bson::Uuid>, &[(String, String)]),
) -> Error {
    let (code, message) = match (opened.0, request.0) {
        (Some(opened_id), None) => (
            ErrorCode::Location50737,
            format!(
                "Cannot run getMore on cursor {id}, which was created in session {}, without an lsid",
                shown_lsid(opened_id, opened.1)
            ),
        ),
        (Some(opened_id), Some(request_id)) => (
            ErrorCode::Location50738,
            format!(
                "Cannot run getMore on cursor {id}, which was created in session {}, in session {}",
                shown_lsid(opened_id, opened.1),
                shown_lsid(request_id, request.1)
            ),
        ),
        (None, request_id) => (
            ErrorCode::Location50736,
            format!(
                "Cannot run getMore on cursor {id}, which was not created in a session, in session {}",
                request_id.map(|request_id| shown_lsid(request_id, request.1)).unwrap_or_default()
            ),
        ),
    };
    Error::new(code, message)
}

/// `getMore`.
pub fn get_more(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Reply> {
    let GetMoreArgs { id, ns, batch_size } = GetMoreArgs::parse(req)?;
    let cursors = &ctx.state.cursors;
    if let Some((cursor_ns, owners, session)) = cursors.describe(id) {
        if !Authorizer::of(ctx).owns(&owners) {
            return Err(Error::new(
                ErrorCode::Unauthorized,
                format!("cursor id {id} was not created by the authenticated user"),
            ));
        }
        if cursor_ns != ns.full() {
            return Err(Error::new(
                ErrorCode::Unauthorized,
                format!(
                    "Requested getMore on namespace '{ns}', but cursor belongs to a different namespace {cursor_ns}"
                ),
            ));
        }
        // After the user's checks, as mongod: only then may the error show the cursor's session.
        if session != ctx.session {
            return Err(session_mismatch(id, (session, &owners), (ctx.session, &ctx.client.auth.names)));
        }
    }
    let parked = cursors.take(id)?;
    let change_stream = parked.resume_token.is_some();
    let labelled = |error: Error| if change_stream { change_stream::labelled(error) } else { error };
    if let Some(code) = ctx.state.failpoints.get_more_after_checkout() {
        // As mongod's fail point: the getMore fails with its cursor checked out, which goes.
        let code = ErrorCode::from_code(code).unwrap_or(ErrorCode::InternalError);
        return Err(labelled(Error::new(code, "Failing getMore via 'failGetMoreAfterCursorCheckout' fail point")));
    }
    let await_data = parked.tailing.as_ref().is_some_and(|t| t.await_data);
    if req.get("maxTimeMS").is_some() && !await_data {
        // Only awaitData cursors take a time limit per getMore in mongod; the cursor stays
        // open, as in mongod.
        cursors.restore(id, parked);
        return Err(Error::new(
            ErrorCode::BadValue,
            "cannot set maxTimeMS on getMore command for a non-awaitData cursor",
        ));
    }
    // An awaitData getMore's maxTimeMS is how long it waits for documents (one second by
    // default), not a limit on its work, as in mongod.
    let await_until = if await_data {
        ctx.op.interrupt.set_deadline(None);
        let wait = super::generic::max_time_ms(req)?.unwrap_or(DEFAULT_AWAIT_MS);
        Some(ctx.op.started + std::time::Duration::from_millis(wait))
    } else {
        None
    };
    // Read before the batch: an insert after it moves the count past this.
    let inserts = ctx.state.storage.capped_inserts.count();
    ctx.state.counters.opcounters.getmore.fetch_add(1, Ordering::Relaxed);
    let resume_token = parked.resume_token.clone();
    let mut reply = CursorReply::start(cstr!("nextBatch"), resume_token.clone());
    let Batch { count, cursor_id } =
        cursor::get_more(cursors, id, parked, ctx.op, batch_size, |doc| reply.take(doc)).map_err(labelled)?;
    if let Some(deadline) = await_until
        && count == 0
        && cursor_id != 0
        && std::time::Instant::now() < deadline
    {
        // Nothing yet: the cursor is parked again; the handler runs again after an insert.
        ctx.reply_after_capped_insert(inserts, deadline);
        return Ok(Reply::from(Document::new()));
    }
    ctx.op.docs.returned.fetch_add(count as u64, Ordering::Relaxed);
    reply.finish(cursor_id, &ns.full())
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
    let authz = Authorizer::of(ctx);
    let mut ids_checked = Vec::with_capacity(ids.len());
    for id in ids {
        let RawBsonRef::Int64(id) = id else {
            return Err(req.wrong_type("cursors", id, "long"));
        };
        // Another user's cursor takes killAnyCursor, on the cluster or its namespace; the
        // whole command is refused before any cursor goes, as mongod checks first.
        if let Some((ns, owners, _)) = ctx.state.cursors.describe(id) {
            let (db, coll) = ns.split_once('.').unwrap_or((ns.as_str(), ""));
            let may = authz.owns(&owners)
                || authz.allows(Resource::Cluster, ActionType::KillAnyCursor)
                || authz.on_namespace(db, coll, ActionType::KillAnyCursor);
            if !may {
                return Err(super::authz::refused(ctx, req));
            }
        }
        ids_checked.push(id);
    }
    for id in ids_checked {
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

/// A `count`, parsed once.
pub(super) struct CountArgs {
    /// What it counts, under which collation.
    pub(super) target: Target,
    /// The query whose documents it counts.
    pub(super) query: Query,
}

impl CountArgs {
    /// Parses `req` on `ns`.
    ///
    /// # Errors
    /// The arguments' type and value errors and the query's parse errors.
    pub(super) fn parse(ctx: &RequestCtx<'_>, req: &CommandRequest, ns: Namespace) -> Result<Self> {
        let target = Target::resolve(ctx, ns, req.get("collation"), "count.collation")?;
        let query = Query {
            skip: usize_arg(req, "skip")?.unwrap_or(0),
            limit: usize_arg(req, "limit")?.filter(|&n| n > 0),
            hint: hint_arg(req)?,
            ..Query::filtered(req.doc_arg("query")?, target.collation.clone())?
        };
        Ok(Self { target, query })
    }
}

/// `count`.
pub fn count(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let ns = req.namespace()?;
    if let Some(view) = ViewRead::of(ctx, req, &ns, "count.collation")? {
        let mut stages = Vec::new();
        if let Some(query) = req.doc_arg("query")?.filter(|q| !q.is_empty()) {
            stages.push(rawdoc! { "$match": query.to_owned() });
        }
        if let Some(skip) = req.count_arg("skip")?.filter(|n| *n > 0) {
            stages.push(rawdoc! { "$skip": skip });
        }
        if let Some(limit) = req.count_arg("limit")?.filter(|n| *n != 0) {
            stages.push(rawdoc! { "$limit": limit.saturating_abs() });
        }
        let (_, stream, _) =
            view.run(ctx, req, &stages, (Variables::new(), ctx.state.params.allow_disk_use_by_default()))?;
        return Ok(doc! { "n": count_value(pipeline::count(stream)?) });
    }
    let CountArgs { target, query } = CountArgs::parse(ctx, req, ns)?;
    // Without a filter, skip, limit or hint, the stored total answers, as mongod's collection
    // metadata does for estimatedDocumentCount.
    if query.filter_doc.is_empty() && query.skip == 0 && query.limit.is_none() && query.hint.is_none() {
        let storage = &ctx.state.storage;
        let total = target.collection.as_ref().map(|c| storage.collection_size(c)).transpose()?.map_or(0, |(_, n)| n);
        return Ok(doc! { "n": count_value(i64::try_from(total).unwrap_or(i64::MAX)) });
    }
    Ok(doc! { "n": count_value(pipeline::count(stream(ctx, &target, query)?.0)?) })
}

/// The target and query of a `distinct` command on `ns` (its `key` apart).
///
/// # Errors
/// The collation's and the query's errors.
pub(super) fn distinct_query(ctx: &RequestCtx<'_>, req: &CommandRequest, ns: Namespace) -> Result<(Target, Query)> {
    let target = Target::resolve(ctx, ns, req.get("collation"), "distinct.collation")?;
    let query = Query::filtered(req.doc_arg("query")?, target.collation.clone())?;
    Ok((target, query))
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
    let (collation, documents) = match ViewRead::of(ctx, req, &ns, "distinct.collation")? {
        Some(view) => {
            let stages = match req.doc_arg("query")?.filter(|q| !q.is_empty()) {
                Some(query) => vec![rawdoc! { "$match": query.to_owned() }],
                None => Vec::new(),
            };
            let (target, stream, _) =
                view.run(ctx, req, &stages, (Variables::new(), ctx.state.params.allow_disk_use_by_default()))?;
            (target.collation, stream)
        }
        None => {
            let (target, query) = distinct_query(ctx, req, ns)?;
            (target.collation.clone(), stream(ctx, &target, query)?.0)
        }
    };
    let collation = collation.as_deref();
    let path = FieldPath::new(&key);
    let mut values: Vec<bson::RawBson> = Vec::new();
    for document in documents {
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
    let mut reply = doc! { "values": values };
    if let Some(at) = ctx.snapshot_time() {
        reply.insert("atClusterTime", at);
    }
    Ok(reply)
}

/// The scores a query's `$text` search hands its projection and sort, if it has one.
///
/// # Errors
/// 40218 when the projection or sort asks for `{$meta: "textScore"}` without `$text`, as
/// mongod refuses before running.
pub(super) fn text_scores_for(
    filter: &Filter,
    projection: Option<&RawDocument>,
    sort: Option<&RawDocument>,
) -> Result<Option<Arc<TextScores>>> {
    if filter.has_text() {
        return Ok(Some(TextScores::shared()));
    }
    if projection.into_iter().chain(sort).any(mentions_text_score) {
        return Err(Error::new(
            ErrorCode::Location40218,
            "query requires text score metadata, but it is not available",
        ));
    }
    Ok(None)
}
