//! Write commands: `insert`, `update`, `delete`, `findAndModify`.
//!
//! Each statement is applied under the collection's write lock and committed atomically
//! (a document is never half-written); with `j: true` (or `w: "majority"`) the reply waits for
//! one journal sync covering the command's last batch.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bson::oid::ObjectId;
use bson::raw::{CStr, cstr};
use bson::{Document, RawBson, RawBsonRef, RawDocument, RawDocumentBuf, doc};

use super::authz::bypasses_validation;
use super::target::Target;
use super::{Authorizer, CommandRequest, Reply, ReplyBuilder, RequestCtx};
use crate::auth::action::ActionType;
use crate::error::{Error, ErrorCode, Result};
use crate::exec::insert::{check_size, prepare_for_insert};
use crate::exec::planner::hint_of;
use crate::exec::retryable::{RetryableWrite, StatementIds};
use crate::exec::validate::Validation;
use crate::exec::{WriteSelection, select_for_write};
use crate::op::{ExecStats, Operation};
use crate::query::expr::Variables;
use crate::query::{Collation, Filter, Projection, SortSpec, Update, limits};
use crate::state::plan_cache::PlanCache;
use crate::storage::{Collection, DurabilityTicket, Namespace, Storage, Transaction, Writer};

/// `insert`: insert on the namespace, and bypassDocumentValidation when asked for.
pub(super) fn authorize_insert(authz: &Authorizer<'_>, req: &CommandRequest) -> bool {
    authz.on_command_namespace(req, ActionType::Insert) && may_bypass(authz, req)
}

fn may_bypass(authz: &Authorizer<'_>, req: &CommandRequest) -> bool {
    !bypasses_validation(req) || authz.on_command_namespace(req, ActionType::BypassDocumentValidation)
}

/// `update`: update on the namespace, insert too when a statement upserts, and
/// bypassDocumentValidation when asked for.
pub(super) fn authorize_update(authz: &Authorizer<'_>, req: &CommandRequest) -> bool {
    let upserts = req.documents("updates").unwrap_or_default().iter().any(|s| s.get_bool("upsert").unwrap_or(false));
    authz.on_command_namespace(req, ActionType::Update)
        && (!upserts || authz.on_command_namespace(req, ActionType::Insert))
        && may_bypass(authz, req)
}

/// `findAndModify`: find, then update, insert (upsert) or remove as the command does, and
/// bypassDocumentValidation when asked for.
pub(super) fn authorize_find_and_modify(authz: &Authorizer<'_>, req: &CommandRequest) -> bool {
    let flag = |key: &str| matches!(req.get(key), Some(RawBsonRef::Boolean(true)));
    authz.on_command_namespace(req, ActionType::Find)
        && (req.get("update").is_none() || authz.on_command_namespace(req, ActionType::Update))
        && (!flag("upsert") || authz.on_command_namespace(req, ActionType::Insert))
        && (!flag("remove") || authz.on_command_namespace(req, ActionType::Remove))
        && may_bypass(authz, req)
}

/// Whether the command's write concern asks for a journal sync before the reply (the
/// dispatcher has validated it).
fn journaled(req: &CommandRequest) -> Result<bool> {
    Ok(super::generic::write_concern(req)?.journaled())
}

/// How a write command checks the documents it stores in `collection` (its validator, the
/// command's `bypassDocumentValidation`).
fn validation<'a>(ctx: &RequestCtx<'a>, collection: &'a crate::storage::Collection, bypass: bool) -> Validation<'a> {
    Validation::new(
        &ctx.state.log,
        ctx.state.config.redact_client_log_data,
        ctx.client.connection_id,
        collection,
        bypass,
    )
}

/// A writer of one statement on `collection`: in the request's transaction (`txn`, taken out
/// of its context for the command) when it runs in one.
fn open_writer<'a>(
    storage: &'a Storage,
    txn: &'a mut Option<Box<Transaction>>,
    collection: &'a Arc<Collection>,
) -> Result<Writer<'a>> {
    match txn {
        Some(txn) => txn.writer(storage, collection),
        None => storage.writer(collection),
    }
}

/// Commits `writer`, counting the time as the request's storage phase.
fn commit(op: &Operation, writer: Writer<'_>) -> Result<Option<DurabilityTicket>> {
    let started = std::time::Instant::now();
    let ticket = writer.commit();
    op.add_phase(|p| &mut p.storage, started.elapsed());
    ticket
}

/// Makes the reply wait for the last batch to be durable when the write concern asks for it
/// (after the handler returns, holding no thread).
fn acknowledge(ctx: &mut RequestCtx<'_>, journal: bool, last_ticket: Option<DurabilityTicket>) {
    if let (true, Some(ticket)) = (journal, last_ticket) {
        ctx.reply_after_sync(ticket);
    }
}

/// The retryable write a command is, when it carries `txnNumber` (the generic checks admitted
/// it: a replica-set member, with an `lsid`, outside a transaction).
/// `listed`: the command takes `stmtIds` (findAndModify has one statement and only `stmtId`).
fn retryable<'a>(ctx: &RequestCtx<'a>, req: &CommandRequest, listed: bool) -> Result<Option<RetryableWrite<'a>>> {
    if req.get("autocommit").is_some() {
        // A statement of a transaction: the transaction, not a record per statement, makes it
        // apply once.
        return Ok(None);
    }
    let (Some(RawBsonRef::Int64(txn)), Some(session)) = (req.get("txnNumber"), req.lsid()) else { return Ok(None) };
    let ids = match (listed.then(|| req.get("stmtIds")).flatten(), req.get("stmtId")) {
        (Some(RawBsonRef::Array(ids)), _) => StatementIds::Listed(
            ids.into_iter()
                .map(|id| match id {
                    Ok(RawBsonRef::Int32(id)) => Ok(id),
                    Ok(other) => Err(req.wrong_type("stmtIds", other, "int")),
                    Err(e) => Err(Error::new(ErrorCode::InvalidBSON, e.to_string())),
                })
                .collect::<Result<_>>()?,
        ),
        (Some(other), _) => return Err(req.wrong_type("stmtIds", other, "array")),
        (None, Some(RawBsonRef::Int32(first))) => StatementIds::From(first),
        (None, Some(other)) => return Err(req.wrong_type("stmtId", other, "int")),
        (None, None) => StatementIds::From(0),
    };
    RetryableWrite::start(ctx.state, session, txn, ids).map(Some)
}

/// A retryable write's statement result, as recorded.
fn statement_result(result: Document) -> Result<RawDocumentBuf> {
    RawDocumentBuf::try_from(&result).map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))
}

/// Encodes an update's result, refusing one nested deeper than mongod stores (before the
/// encoder, which recurses, walks it).
fn to_raw(document: &Document) -> Result<RawDocumentBuf> {
    limits::check_update_depth(document)?;
    let raw = RawDocumentBuf::try_from(document).map_err(|e| Error::new(ErrorCode::BadValue, e.to_string()))?;
    check_size(&raw)?;
    Ok(raw)
}

/// A stored document as an owned one; one nested deeper than mongod reads (stored by an older
/// version) is refused with 15 Overflow instead of being walked.
fn to_document(raw: &RawDocument) -> Result<Document> {
    Ok(limits::to_document(raw)?)
}

/// The namespace a write command names, which clients may write to (mongod's
/// `userAllowedWriteNS`): not `system.profile`, which only the profiler writes, nor
/// `system.views`, and no `system.*` collection clients may not use.
fn writable_namespace(req: &CommandRequest) -> Result<Namespace> {
    let ns = req.namespace()?;
    if ns.coll == crate::obs::profiler::PROFILE_COLLECTION || ns.coll == "system.views" {
        return Err(Error::new(ErrorCode::InvalidNamespace, format!("cannot write to {ns}")));
    }
    super::collections::check_system_namespace(&ns)?;
    if ns.coll == "system.js" && req.bool_arg("apiStrict")? == Some(true) {
        return Err(Error::new(
            ErrorCode::APIStrictError,
            format!("Provided apiStrict:true, but the command {} attempts to write to system.js", req.name()),
        ));
    }
    Ok(ns)
}

/// What every write command reads first, in mongod's order: its namespace (one a client may
/// write to), `ordered` and whether the write concern asks for a journal sync.
struct WriteCommon {
    ns: Namespace,
    ordered: bool,
    journal: bool,
}

impl WriteCommon {
    fn parse(req: &CommandRequest) -> Result<Self> {
        Ok(Self {
            ns: writable_namespace(req)?,
            ordered: req.bool_arg("ordered")?.unwrap_or(true),
            journal: journaled(req)?,
        })
    }
}

/// An `insert`, parsed once.
struct InsertArgs<'a> {
    common: WriteCommon,
    bypass: bool,
    documents: Vec<&'a RawDocument>,
}

impl<'a> InsertArgs<'a> {
    fn parse(req: &'a CommandRequest) -> Result<Self> {
        let common = WriteCommon::parse(req)?;
        let bypass = req.bool_arg("bypassDocumentValidation")?.unwrap_or(false);
        Ok(Self { common, bypass, documents: req.documents("documents")? })
    }
}

/// `insert`: documents from the `documents` field or document sequence.
pub fn insert(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Reply> {
    let InsertArgs { common: WriteCommon { ns, ordered, journal }, bypass, documents } = InsertArgs::parse(req)?;
    let storage = &ctx.state.storage;
    if let Some((buckets, spec)) = super::timeseries::buckets_of(storage, &ns)? {
        return insert_measurements(ctx, req, (&buckets, &spec), &documents, (ordered, journal));
    }
    let collection = super::target::collection_or_create(storage, ctx.txn.as_deref_mut(), &ns)?;
    let validation = validation(ctx, &collection, bypass);
    let mut retry = retryable(ctx, req, true)?;
    let mut txn = ctx.txn.take();
    let mut writer = Some(open_writer(storage, &mut txn, &collection)?);
    // The journal ticket of documents committed early, before a wait for a transaction.
    let mut earlier_ticket = None;
    let mut inserted = 0i64;
    let mut errors = Vec::new();
    for (index, document) in documents.into_iter().enumerate() {
        if retry.as_mut().is_some_and(|retry| retry.previous(index).is_some()) {
            inserted += 1;
            continue;
        }
        let stored = loop {
            let since = storage.transaction_releases();
            let open = match &mut writer {
                Some(open) => open,
                // Outside a transaction only: reopened after a wait (below).
                slot => slot.insert(storage.writer(&collection)?),
            };
            let stored = prepare_for_insert(document).and_then(|doc| {
                validation.check_insert(&doc)?;
                open.insert(doc)?;
                match &mut retry {
                    Some(retry) => retry.record(open, index, &RawDocumentBuf::new()),
                    None => Ok(()),
                }
            });
            match stored {
                Err(error) if crate::storage::is_held_by_transaction(&error) => {
                    // An open transaction wrote this `_id` (or unique key): the documents
                    // before it commit now, so that the transaction's commit can take the
                    // collection's lock, and this one is inserted again once it has ended.
                    if let Some(earlier) = writer.take() {
                        if let Some(retry) = &mut retry {
                            retry.before_commit()?;
                        }
                        earlier_ticket = commit(ctx.op, earlier)?.or(earlier_ticket);
                    }
                    storage.wait_for_release(since, &|| ctx.op.interrupt.check())?;
                }
                stored => break stored,
            }
        };
        match stored {
            Ok(()) => inserted += 1,
            // As mongod: an interruption fails the whole command, not one statement.
            Err(error) if error.code() == ErrorCode::WriteConflict || error.code().is_interruption() => {
                return Err(error);
            }
            Err(error) => {
                errors.push(error.to_write_error(index));
                if ordered {
                    break;
                }
            }
        }
    }
    if let Some(retry) = &mut retry {
        let failed = retry.before_commit();
        ctx.client.close_requested |= retry.close_connection();
        failed?;
    }
    let ticket = writer.map(|writer| commit(ctx.op, writer)).transpose()?.flatten().or(earlier_ticket);
    ctx.txn = txn;
    insert_reply(ctx, (inserted, &errors), journal, ticket, retry.as_ref())
}

/// An `insert`'s reply, once its documents are written: counts them, waits for the journal
/// when asked, and reports `n` and the write errors.
fn insert_reply(
    ctx: &mut RequestCtx<'_>,
    (inserted, errors): (i64, &[Document]),
    journal: bool,
    ticket: Option<DurabilityTicket>,
    retry: Option<&RetryableWrite<'_>>,
) -> Result<Reply> {
    ctx.state.counters.opcounters.insert.fetch_add(u64::try_from(inserted).unwrap_or(0), Ordering::Relaxed);
    ctx.op.docs.inserted.fetch_add(u64::try_from(inserted).unwrap_or(0), Ordering::Relaxed);
    acknowledge(ctx, journal, ticket);
    let mut reply = WriteReply::new();
    // mongod's insert reply counts in an int32 whatever the number.
    reply.0.append(cstr!("n"), i32::try_from(inserted).unwrap_or(i32::MAX));
    reply.retried(retry);
    reply.finish(errors)
}

/// 238 NotImplemented for a time-series write (`what`) inside a transaction.
fn refuse_in_transaction(ctx: &RequestCtx<'_>, what: &str) -> Result<()> {
    match ctx.txn {
        Some(_) => {
            Err(Error::new(ErrorCode::NotImplemented, format!("{what} in a transaction are not built in this server")))
        }
        None => Ok(()),
    }
}

/// An `insert` into a time-series collection: its measurements bucketed into its bucket
/// collection (see [`super::timeseries::insert`]).
fn insert_measurements(
    ctx: &mut RequestCtx<'_>,
    req: &CommandRequest,
    buckets: (&Arc<Collection>, &crate::query::timeseries::TimeseriesSpec),
    documents: &[&RawDocument],
    (ordered, journal): (bool, bool),
) -> Result<Reply> {
    refuse_in_transaction(ctx, "inserts into a time-series collection")?;
    let mut retry = retryable(ctx, req, true)?;
    let outcome = super::timeseries::insert(&ctx.state.storage, buckets, documents, ordered, retry.as_mut());
    if let Some(retry) = &retry {
        ctx.client.close_requested |= retry.close_connection();
    }
    let (inserted, errors, ticket) = outcome?;
    insert_reply(ctx, (inserted, &errors), journal, ticket, retry.as_ref())
}

/// A `delete` on a time-series collection: each statement removes the measurements its
/// filter matches (see [`super::timeseries::delete`]); `limit: 1` answers 238 as that
/// statement's write error.
fn delete_measurements(
    ctx: &mut RequestCtx<'_>,
    buckets: (&Arc<Collection>, &crate::query::timeseries::TimeseriesSpec),
    statements: &[(&RawDocument, i64)],
    vars: Option<&Variables>,
    (ordered, journal, retryable): (bool, bool, bool),
) -> Result<Reply> {
    refuse_in_transaction(ctx, "deletes from a time-series collection")?;
    let storage = &ctx.state.storage;
    let (mut deleted, mut errors, mut ticket) = (0i64, Vec::new(), None);
    for (index, (statement, limit)) in statements.iter().enumerate() {
        let outcome = (|| {
            if retryable && *limit == 0 {
                return Err(Error::new(
                    ErrorCode::InvalidOptions,
                    "Cannot use (or request) retryable writes with limit=0",
                ));
            }
            super::timeseries::check_statement_fields(statement, "delete", &["q", "limit", "collation"])?;
            if *limit != 0 {
                return Err(Error::new(
                    ErrorCode::NotImplemented,
                    "a delete with limit: 1 on a time-series collection is not built in this server",
                ));
            }
            let query = match statement.get("q").ok().flatten() {
                Some(RawBsonRef::Document(q)) => q,
                other => return Err(statement_field_error("delete.deletes", "q", other, "object")),
            };
            let collation =
                super::collation::resolve(statement.get("collation").ok().flatten(), "delete.deletes.collation", None)?;
            let filter = parse_filter(query, vars, collation.as_ref())?;
            super::timeseries::delete(storage, buckets, query, &filter)
        })();
        ctx.state.counters.opcounters.delete.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Ok((n, committed)) => {
                deleted += n;
                ticket = committed.or(ticket);
            }
            Err(error) if error.code().is_interruption() => return Err(error),
            Err(error) => {
                errors.push(error.to_write_error(index));
                if ordered {
                    break;
                }
            }
        }
    }
    acknowledge(ctx, journal, ticket);
    let mut reply = WriteReply::new();
    reply.0.append(cstr!("n"), i32::try_from(deleted).unwrap_or(i32::MAX));
    reply.finish(&errors)
}

/// An `update` on a time-series collection: each statement updates the metaField of the
/// measurements it selects (see [`super::timeseries::update`]); a statement mongod 7.0 refuses
/// is that statement's write error.
fn update_measurements(
    ctx: &mut RequestCtx<'_>,
    buckets: (&Arc<Collection>, &crate::query::timeseries::TimeseriesSpec),
    statements: &[&RawDocument],
    vars: Option<&Variables>,
    (ordered, journal, retryable): (bool, bool, bool),
) -> Result<Reply> {
    refuse_in_transaction(ctx, "updates of a time-series collection")?;
    let storage = &ctx.state.storage;
    let (mut matched, mut modified, mut errors, mut ticket) = (0i64, 0i64, Vec::new(), None);
    for (index, statement) in statements.iter().enumerate() {
        ctx.state.counters.opcounters.update.fetch_add(1, Ordering::Relaxed);
        let multi = matches!(statement.get("multi"), Ok(Some(RawBsonRef::Boolean(true))));
        let outcome = if retryable && multi {
            Err(Error::new(ErrorCode::InvalidOptions, "Cannot use (or request) retryable writes with multi=true"))
        } else {
            super::timeseries::update(storage, buckets, statement, vars)
        };
        match outcome {
            Ok((n, changed, committed)) => {
                matched += n;
                modified += changed;
                ticket = committed.or(ticket);
            }
            Err(error) if error.code().is_interruption() => return Err(error),
            Err(error) => {
                errors.push(error.to_write_error(index));
                if ordered {
                    break;
                }
            }
        }
    }
    ctx.op.docs.updated.fetch_add(u64::try_from(modified).unwrap_or(0), Ordering::Relaxed);
    acknowledge(ctx, journal, ticket);
    let mut reply = WriteReply::new();
    reply.count(cstr!("n"), matched);
    reply.count(cstr!("nModified"), modified);
    reply.finish(&errors)
}

/// The reply of a write command, `{n, ..., upserted, writeErrors}`, built raw.
struct WriteReply(ReplyBuilder);

impl WriteReply {
    fn new() -> Self {
        Self(ReplyBuilder::new())
    }

    /// Appends a count as mongod does: an int32 when it fits, else an int64.
    fn count(&mut self, key: &CStr, n: i64) {
        match i32::try_from(n) {
            Ok(n) => self.0.append(key, n),
            Err(_) => self.0.append(key, n),
        }
    }

    /// Appends `upserted: [{index, _id}]` when a statement inserted.
    fn upserted(&mut self, upserted: &[(usize, RawBson)]) {
        if upserted.is_empty() {
            return;
        }
        self.0.open_array(cstr!("upserted"));
        for (index, id) in upserted {
            self.0.open_document(cstr!(""));
            self.0.append(cstr!("index"), i32::try_from(*index).unwrap_or(i32::MAX));
            self.0.append(cstr!("_id"), id);
            self.0.close();
        }
        self.0.close();
    }

    /// Appends `retriedStmtIds` when statements were answered from an earlier attempt.
    fn retried(&mut self, retry: Option<&RetryableWrite<'_>>) {
        let Some(ids) = retry.map(RetryableWrite::retried).filter(|ids| !ids.is_empty()) else { return };
        self.0.open_array(cstr!("retriedStmtIds"));
        for id in ids {
            self.0.append(cstr!(""), *id);
        }
        self.0.close();
    }

    /// Appends `writeErrors` when there are any, and ends the reply.
    fn finish(mut self, errors: &[Document]) -> Result<Reply> {
        if !errors.is_empty() {
            self.0.open_array(cstr!("writeErrors"));
            for error in errors {
                let error =
                    RawDocumentBuf::try_from(error).map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))?;
                self.0.push_document(&error);
            }
            self.0.close();
        }
        Ok(Reply::from(self.0.finish()?))
    }
}

/// Where a write finds its documents: the plan cache, and the execution stats of the request
/// (one for all its statements).
#[derive(Clone, Copy)]
struct Finder<'a> {
    plans: &'a PlanCache,
    stats: &'a Arc<ExecStats>,
}

impl<'a> Finder<'a> {
    /// Starts tracking `ctx`'s request with `stats`.
    fn new(ctx: &'a RequestCtx<'_>, stats: &'a Arc<ExecStats>) -> Self {
        ctx.op.track(stats);
        Self { plans: &ctx.state.plans, stats }
    }

    /// The documents a statement selects, read under `writer`'s lock through the executor (an
    /// `_id` lookup, an index scan or a collection scan).
    fn select(self, writer: &Writer<'_>, selection: &WriteSelection<'_>) -> Result<Vec<RawDocumentBuf>> {
        select_for_write(self.plans, writer, selection, self.stats)
    }
}

/// A statement's `hint` (an index name or key pattern; `{}` means none).
fn statement_hint<'a>(statement: &'a RawDocument, array: &str) -> Result<Option<RawBsonRef<'a>>> {
    hint_of(statement.get("hint").ok().flatten())
        .map_err(|other| statement_field_error(array, "hint", Some(other), "object or string"))
}

/// The outcome of one update statement.
#[derive(Default)]
struct UpdateOutcome {
    matched: i64,
    modified: i64,
    upserted: Option<RawBson>,
    /// The document before and after the change, kept for findAndModify only
    /// ([`UpdateOptions::keep_documents`]).
    before: Option<RawDocumentBuf>,
    after: Option<RawDocumentBuf>,
}

/// Applies one update statement inside `writer`, checking the documents it stores with
/// `validation`.
fn update_statement(
    writer: &mut Writer<'_>,
    query: &RawDocument,
    update: &Update,
    options: UpdateOptions<'_>,
    validation: &Validation<'_>,
) -> Result<UpdateOutcome> {
    let collation = options.collation;
    let filter = parse_filter(query, options.vars, collation)?;
    let selection = WriteSelection {
        query,
        filter: &filter,
        hint: options.hint,
        collation: collation.map(Arc::as_ref),
        multi: options.multi || options.sort.is_some(),
    };
    let mut candidates = options.finder.select(writer, &selection)?;
    if let Some(sort) = options.sort {
        if sort.natural() == Some(false) {
            candidates.reverse();
        }
        candidates.sort_by(|a, b| sort.compare(a, b));
        candidates.truncate(1);
    }
    let mut outcome = UpdateOutcome::default();
    for current in candidates {
        outcome.matched += 1;
        let mut document = to_document(&current)?;
        let changed = update.apply(&mut document, false)?;
        let after = if changed {
            let raw = to_raw(&document)?;
            validation.check_update(&current, &raw)?;
            outcome.modified += 1;
            // The oplog records an operator or pipeline update as a diff, a replacement whole.
            let store = |writer: &mut Writer<'_>, raw| match update.is_replacement() {
                true => writer.replace(raw),
                false => writer.update(raw),
            };
            if options.keep_documents {
                store(writer, raw.clone())?;
                Some(raw)
            } else {
                store(writer, raw)?;
                None
            }
        } else {
            options.keep_documents.then(|| current.clone())
        };
        if options.keep_documents {
            outcome.before.get_or_insert(current);
            outcome.after = outcome.after.or(after);
        }
    }
    if outcome.matched == 0 && options.upsert {
        let mut document = filter.equality_seed()?;
        update.apply(&mut document, true)?;
        if !document.contains_key("_id") {
            let mut with_id = doc! { "_id": ObjectId::new() };
            with_id.extend(document);
            document = with_id;
        }
        let raw = prepare_for_insert(&to_raw(&document)?)?;
        validation.check_insert(&raw)?;
        outcome.upserted = raw.get("_id").ok().flatten().map(RawBson::from);
        if options.keep_documents {
            writer.insert(raw.clone())?;
            outcome.after = Some(raw);
        } else {
            writer.insert(raw)?;
        }
    }
    Ok(outcome)
}

#[derive(Clone, Copy)]
struct UpdateOptions<'a> {
    /// Where the documents to update are found.
    finder: Finder<'a>,
    /// The statement's `hint`.
    hint: Option<RawBsonRef<'a>>,
    multi: bool,
    upsert: bool,
    sort: Option<&'a SortSpec>,
    /// The command's `let` variables, for `$expr` in the query.
    vars: Option<&'a Variables>,
    /// The statement's collation (`None`: simple).
    collation: Option<&'a Arc<Collation>>,
    /// Keep the document before and after the change (findAndModify returns one of them).
    keep_documents: bool,
}

/// A statement's query, with the command's `let` variables bound for its `$expr`s and its
/// comparisons under `collation`.
fn parse_filter(query: &RawDocument, vars: Option<&Variables>, collation: Option<&Arc<Collation>>) -> Result<Filter> {
    let filter = Filter::parse_query(query)?;
    let filter = match vars {
        Some(vars) => filter.with_variables(vars),
        None => filter,
    };
    Ok(filter.with_collation(collation))
}

/// The command's `let` document as variables.
fn let_variables(req: &CommandRequest) -> Result<Option<Variables>> {
    Ok(req.doc_arg("let")?.map(Variables::from_let).transpose()?)
}

/// An `update`, parsed once: its statements are parsed one by one as they run, since a bad
/// statement is a write error of its own ([`UpdateStatement`]).
struct UpdateArgs<'a> {
    common: WriteCommon,
    bypass: bool,
    statements: Vec<&'a RawDocument>,
    vars: Option<Variables>,
}

impl<'a> UpdateArgs<'a> {
    fn parse(req: &'a CommandRequest) -> Result<Self> {
        let common = WriteCommon::parse(req)?;
        let bypass = req.bool_arg("bypassDocumentValidation")?.unwrap_or(false);
        let statements = req.documents("updates")?;
        check_statement_fields("update", "updates", &statements, UPDATE_STATEMENT_FIELDS)?;
        Ok(Self { common, bypass, statements, vars: let_variables(req)? })
    }
}

/// `update`: statements from `updates`.
pub fn update(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Reply> {
    let UpdateArgs { common: WriteCommon { ns, ordered, journal }, bypass, statements, vars } = UpdateArgs::parse(req)?;
    let mut target = Target::for_write(ctx, ns);
    if target.collection.is_none()
        && let Some((buckets, spec)) = super::timeseries::buckets_of(&ctx.state.storage, &target.ns)?
    {
        let retryable = req.get("txnNumber").is_some();
        return update_measurements(ctx, (&buckets, &spec), &statements, vars.as_ref(), (ordered, journal, retryable));
    }
    let mut txn = ctx.txn.take();
    let stats = Arc::new(ExecStats::default());
    let finder = Finder::new(ctx, &stats);
    let mut retry = retryable(ctx, req, true)?;
    let outcomes = run_statements(ctx, statements.into_iter().enumerate(), ordered, |(index, statement)| {
        if let Some(result) = retry.as_mut().and_then(|retry| retry.previous(index)) {
            return Ok((recorded_update(&result), None));
        }
        let statement = UpdateStatement::parse(statement, &target, vars.as_ref())?;
        let retry = retry.as_mut().map(|retry| (retry, index));
        let place = Place { target: &mut target, txn: &mut txn };
        run_update_statement(ctx, finder, place, &statement, vars.as_ref(), bypass, retry)
    })?;
    ctx.txn = txn;
    acknowledge(ctx, journal, outcomes.last_ticket);
    ctx.client.close_requested |= retry.as_ref().is_some_and(RetryableWrite::close_connection);
    let (mut matched, mut modified) = (0i64, 0i64);
    let mut upserted = Vec::new();
    for (index, outcome) in outcomes.results {
        matched += outcome.matched;
        modified += outcome.modified;
        if let Some(id) = outcome.upserted {
            upserted.push((index, id));
        }
    }
    let docs = &ctx.op.docs;
    docs.updated.fetch_add(u64::try_from(modified).unwrap_or(0), Ordering::Relaxed);
    docs.inserted.fetch_add(upserted.len() as u64, Ordering::Relaxed);
    let mut reply = WriteReply::new();
    reply.count(cstr!("n"), matched + upserted.len() as i64);
    reply.count(cstr!("nModified"), modified);
    reply.upserted(&upserted);
    reply.retried(retry.as_ref());
    reply.finish(&outcomes.errors)
}

/// mongod's IDL error for a statement field that is missing (9) or of the wrong type (14).
fn statement_field_error(path: &str, key: &str, value: Option<RawBsonRef<'_>>, expected: &str) -> Error {
    match value {
        None => {
            Error::new(ErrorCode::FailedToParse, format!("BSON field '{path}.{key}' is missing but a required field"))
        }
        Some(other) => Error::new(
            ErrorCode::TypeMismatch,
            format!(
                "BSON field '{path}.{key}' is the wrong type '{}', expected type '{expected}'",
                crate::query::type_name(other.element_type())
            ),
        ),
    }
}

/// Fields an update statement may carry in mongod 7.0 (`sort` arrived in 8.0).
const UPDATE_STATEMENT_FIELDS: &[&str] =
    &["q", "u", "upsert", "multi", "arrayFilters", "hint", "collation", "c", "upsertSupplied"];
/// Fields a delete statement may carry.
const DELETE_STATEMENT_FIELDS: &[&str] = &["q", "limit", "hint", "collation"];

/// Refuses unknown statement fields with mongod's IDL error. mongod parses the whole command
/// before running any statement, so this fails the command, not one statement.
fn check_statement_fields(command: &str, array: &str, statements: &[&RawDocument], allowed: &[&str]) -> Result<()> {
    for element in statements.iter().flat_map(|statement| statement.iter()) {
        let (key, _) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        if !allowed.contains(&key.as_str()) {
            return Err(Error::new(
                ErrorCode::Location40415,
                format!("BSON field '{command}.{array}.{}' is an unknown field.", key.as_str()),
            ));
        }
    }
    Ok(())
}

/// One statement of `updates`, parsed once.
struct UpdateStatement<'a> {
    query: &'a RawDocument,
    update: Update,
    /// Its own collation, else the collection's.
    collation: Option<Arc<Collation>>,
    hint: Option<RawBsonRef<'a>>,
    multi: bool,
    upsert: bool,
}

impl<'a> UpdateStatement<'a> {
    /// Parses `statement` of a command on `target`, in mongod's order.
    fn parse(statement: &'a RawDocument, target: &Target, vars: Option<&Variables>) -> Result<Self> {
        let field = |key: &str| statement.get(key).ok().flatten();
        let query = match field("q") {
            Some(RawBsonRef::Document(q)) => q,
            other => return Err(statement_field_error("update.updates", "q", other, "object")),
        };
        let array_filters = match field("arrayFilters") {
            None => None,
            Some(RawBsonRef::Array(filters)) => Some(filters),
            other => return Err(statement_field_error("update.updates", "arrayFilters", other, "array")),
        };
        let update = match field("u") {
            Some(RawBsonRef::Document(u)) => Update::parse_statement(u, query, array_filters)?,
            Some(RawBsonRef::Array(stages)) => Update::parse_pipeline(stages, &vars.cloned().unwrap_or_default())?,
            other => return Err(statement_field_error("update.updates", "u", other, "object")),
        };
        let collation = target.statement_collation(field("collation"), "update.updates.collation")?;
        let update = update.with_collation(collation.as_ref())?;
        let flag = |key: &str| matches!(field(key), Some(RawBsonRef::Boolean(true)));
        let (multi, upsert) = (flag("multi"), flag("upsert"));
        let hint = statement_hint(statement, "update.updates")?;
        if multi && update.is_replacement() {
            return Err(Error::new(
                ErrorCode::FailedToParse,
                "multi update is not supported for replacement-style update",
            ));
        }
        Ok(Self { query, update, collation, hint, multi, upsert })
    }
}

/// How a statement takes part in a retryable write: the write and the statement's index.
type RetryStatement<'r, 'a> = Option<(&'r mut RetryableWrite<'a>, usize)>;

/// mongod's refusal of a statement that may change many documents in a retryable write:
/// it could not be answered from one recorded result.
fn refuse_multi_retry(retry: &RetryStatement<'_, '_>, multi: bool, what: &str) -> Result<()> {
    if retry.is_some() && multi {
        return Err(Error::new(
            ErrorCode::InvalidOptions,
            format!("Cannot use (or request) retryable writes with {what}"),
        ));
    }
    Ok(())
}

/// Where an update statement writes: its command's target, in the request's transaction
/// (when it runs in one).
struct Place<'a> {
    target: &'a mut Target,
    txn: &'a mut Option<Box<Transaction>>,
}

fn run_update_statement(
    ctx: &RequestCtx<'_>,
    finder: Finder<'_>,
    Place { target, txn }: Place<'_>,
    statement: &UpdateStatement<'_>,
    vars: Option<&Variables>,
    bypass: bool,
    retry: RetryStatement<'_, '_>,
) -> Result<(UpdateOutcome, Option<DurabilityTicket>)> {
    refuse_multi_retry(&retry, statement.multi, "multi=true")?;
    let storage = &ctx.state.storage;
    let options = UpdateOptions {
        finder,
        hint: statement.hint,
        multi: statement.multi,
        upsert: statement.upsert,
        sort: None,
        vars,
        collation: statement.collation.as_ref(),
        keep_documents: false,
    };
    let Some(collection) = target.collection_for_write(storage, txn.as_deref_mut(), options.upsert)? else {
        return Ok((UpdateOutcome::default(), None));
    };
    let validation = validation(ctx, &collection, bypass);
    let mut writer = open_writer(storage, txn, &collection)?;
    let outcome = update_statement(&mut writer, statement.query, &statement.update, options, &validation)?;
    if let Some((retry, index)) = retry {
        let mut result = doc! { "n": outcome.matched, "nModified": outcome.modified };
        if let Some(id) = &outcome.upserted {
            result.insert("upserted", bson::Bson::try_from(id.clone()).unwrap_or(bson::Bson::Null));
        }
        retry.record(&mut writer, index, &statement_result(result)?)?;
        retry.before_commit()?;
    }
    let ticket = commit(ctx.op, writer)?;
    ctx.state.counters.opcounters.update.fetch_add(1, Ordering::Relaxed);
    Ok((outcome, ticket))
}

/// An update statement's outcome as an earlier attempt recorded it.
fn recorded_update(result: &RawDocument) -> UpdateOutcome {
    UpdateOutcome {
        matched: result.get_i64("n").unwrap_or(0),
        modified: result.get_i64("nModified").unwrap_or(0),
        upserted: result.get("upserted").ok().flatten().map(RawBson::from),
        ..UpdateOutcome::default()
    }
}

/// What a command's statements produced: each success with its index, the `writeErrors`
/// entries, and the journal ticket of the last committed batch.
struct StatementOutcomes<T> {
    results: Vec<(usize, T)>,
    errors: Vec<Document>,
    last_ticket: Option<DurabilityTicket>,
}

/// Runs statements in order. A failed statement becomes a `writeErrors` entry with its
/// index; with `ordered`, the statements after it are not run, as in mongod.
///
/// Outside a transaction, a statement that meets a document an open transaction wrote is run
/// again once a transaction has ended (see [`Storage::retry_while_held`]): `run` commits
/// nothing when it fails.
fn run_statements<S: Copy, T>(
    ctx: &RequestCtx<'_>,
    statements: impl IntoIterator<Item = S>,
    ordered: bool,
    mut run: impl FnMut(S) -> Result<(T, Option<DurabilityTicket>)>,
) -> Result<StatementOutcomes<T>> {
    let mut outcomes = StatementOutcomes { results: Vec::new(), errors: Vec::new(), last_ticket: None };
    for (index, statement) in statements.into_iter().enumerate() {
        match ctx.state.storage.retry_while_held(|| ctx.op.interrupt.check(), || run(statement)) {
            Ok((result, ticket)) => {
                outcomes.results.push((index, result));
                outcomes.last_ticket = ticket.or(outcomes.last_ticket);
            }
            // As mongod: a write conflict fails a transaction's whole command, not one statement,
            // and so does an interruption.
            Err(error) if error.code() == ErrorCode::WriteConflict || error.code().is_interruption() => {
                return Err(error);
            }
            Err(error) => {
                outcomes.errors.push(error.to_write_error(index));
                if ordered {
                    break;
                }
            }
        }
    }
    Ok(outcomes)
}

/// A delete statement's `limit`: 0 (every match) or 1 (the first), as mongod's
/// `readMultiDeleteProperty` reads it (as a double, so 0.5 is refused too).
fn delete_limit(statement: &RawDocument) -> Result<i64> {
    let limit = match statement.get("limit").ok().flatten() {
        Some(RawBsonRef::Int32(n)) => f64::from(n),
        Some(RawBsonRef::Int64(n)) => n as f64,
        Some(RawBsonRef::Double(n)) => n,
        other => return Err(statement_field_error("delete.deletes", "limit", other, "long")),
    };
    if limit == 0.0 {
        Ok(0)
    } else if limit == 1.0 {
        Ok(1)
    } else {
        Err(Error::new(
            ErrorCode::FailedToParse,
            format!("The limit field in delete objects must be 0 or 1. Got {limit}"),
        ))
    }
}

/// A `delete`, parsed once. mongod reads each statement's `limit` while parsing the command
/// (a bad one fails the whole command); the rest of a statement is a write error of its own.
struct DeleteArgs<'a> {
    common: WriteCommon,
    /// Each statement with its `limit`: 0 = every match, 1 = the first.
    statements: Vec<(&'a RawDocument, i64)>,
    vars: Option<Variables>,
}

impl<'a> DeleteArgs<'a> {
    fn parse(req: &'a CommandRequest) -> Result<Self> {
        let common = WriteCommon::parse(req)?;
        let statements = req.documents("deletes")?;
        check_statement_fields("delete", "deletes", &statements, DELETE_STATEMENT_FIELDS)?;
        let statements =
            statements.into_iter().map(|statement| Ok((statement, delete_limit(statement)?))).collect::<Result<_>>()?;
        Ok(Self { common, statements, vars: let_variables(req)? })
    }
}

/// `delete`: statements from `deletes` (`limit` 0 = all matches, 1 = the first).
pub fn delete(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Reply> {
    let DeleteArgs { common: WriteCommon { ns, ordered, journal }, statements, vars } = DeleteArgs::parse(req)?;
    let target = Target::for_write(ctx, ns);
    let storage = &ctx.state.storage;
    if target.collection.is_none() {
        if let Some((buckets, spec)) = super::timeseries::buckets_of(storage, &target.ns)? {
            let retryable = req.get("txnNumber").is_some();
            return delete_measurements(
                ctx,
                (&buckets, &spec),
                &statements,
                vars.as_ref(),
                (ordered, journal, retryable),
            );
        }
        crate::exec::views::refuse_view(storage, &target.ns)?;
    }
    let mut txn = ctx.txn.take();
    let stats = Arc::new(ExecStats::default());
    let finder = Finder::new(ctx, &stats);
    let mut retry = retryable(ctx, req, true)?;
    let outcomes = run_statements(
        ctx,
        statements.into_iter().enumerate(),
        ordered,
        |(index, (statement, limit))| -> Result<(i64, Option<DurabilityTicket>)> {
            if let Some(result) = retry.as_mut().and_then(|retry| retry.previous(index)) {
                return Ok((result.get_i64("n").unwrap_or(0), None));
            }
            refuse_multi_retry(&retry.as_mut().map(|retry| (retry, index)), limit == 0, "limit=0")?;
            let query = match statement.get("q").ok().flatten() {
                Some(RawBsonRef::Document(q)) => q,
                other => return Err(statement_field_error("delete.deletes", "q", other, "object")),
            };
            let collation =
                target.statement_collation(statement.get("collation").ok().flatten(), "delete.deletes.collation")?;
            let filter = parse_filter(query, vars.as_ref(), collation.as_ref())?;
            let Some(collection) = &target.collection else { return Ok((0, None)) };
            let mut writer = open_writer(storage, &mut txn, collection)?;
            let hint = statement_hint(statement, "delete.deletes")?;
            let selection =
                WriteSelection { query, filter: &filter, hint, collation: collation.as_deref(), multi: limit == 0 };
            let victims = finder.select(&writer, &selection)?;
            for victim in &victims {
                if let Some(id) = victim.get("_id").ok().flatten() {
                    writer.delete(id)?;
                }
            }
            let deleted = victims.len() as i64;
            if let Some(retry) = &mut retry {
                retry.record(&mut writer, index, &statement_result(doc! { "n": deleted })?)?;
                retry.before_commit()?;
            }
            ctx.state.counters.opcounters.delete.fetch_add(1, Ordering::Relaxed);
            Ok((deleted, commit(ctx.op, writer)?))
        },
    )?;
    ctx.txn = txn;
    acknowledge(ctx, journal, outcomes.last_ticket);
    ctx.client.close_requested |= retry.as_ref().is_some_and(RetryableWrite::close_connection);
    let deleted: i64 = outcomes.results.iter().map(|(_, n)| n).sum();
    ctx.op.docs.deleted.fetch_add(u64::try_from(deleted).unwrap_or(0), Ordering::Relaxed);
    let mut reply = WriteReply::new();
    reply.count(cstr!("n"), deleted);
    reply.retried(retry.as_ref());
    reply.finish(&outcomes.errors)
}

/// A `findAndModify`, parsed once.
struct FindAndModifyArgs<'a> {
    /// Where it writes, under which collation (its own, else the collection's).
    target: Target,
    journal: bool,
    /// The query selecting the document (`{}` when absent).
    query: Cow<'a, RawDocument>,
    vars: Option<Variables>,
    sort: Option<SortSpec>,
    /// `fields`: the projection of the returned document.
    fields: Option<Projection>,
    hint: Option<RawBsonRef<'a>>,
    /// `new`: return the document after the update.
    return_new: bool,
    upsert: bool,
    bypass: bool,
    /// The update; `None` for `remove: true`.
    update: Option<Update>,
}

impl<'a> FindAndModifyArgs<'a> {
    /// Parses `req`, checking its arguments in mongod's order.
    fn parse(ctx: &RequestCtx<'_>, req: &'a CommandRequest) -> Result<Self> {
        let ns = writable_namespace(req)?;
        let journal = journaled(req)?;
        let query = req.doc_arg("query")?.map_or_else(|| Cow::Owned(RawDocumentBuf::new()), Cow::Borrowed);
        let vars = let_variables(req)?;
        let target = Target::resolve(ctx, ns, req.get("collation"), "findAndModify.collation")?;
        let collation = target.collation.as_ref();
        let sort = req.doc_arg("sort")?.map(SortSpec::parse).transpose()?.map(|s| s.with_collation(collation));
        let fields = match req.doc_arg("fields")? {
            Some(fields) => Some(
                Projection::parse_with_query(fields, &Filter::parse_query(&query)?.with_collation(collation))?
                    .with_collation(collation)
                    .with_variables(&vars.clone().unwrap_or_default()),
            ),
            None => None,
        };
        let remove = req.bool_arg("remove")?.unwrap_or(false);
        let hint = hint_of(req.get("hint")).map_err(|other| req.wrong_type("hint", other, "object or string"))?;
        let return_new = req.bool_arg("new")?.unwrap_or(false);
        let upsert = req.bool_arg("upsert")?.unwrap_or(false);
        let bypass = req.bool_arg("bypassDocumentValidation")?.unwrap_or(false);
        let array_filters = match req.get("arrayFilters") {
            None => None,
            Some(RawBsonRef::Array(filters)) => Some(filters),
            Some(other) => return Err(req.wrong_type("arrayFilters", other, "array")),
        };
        let update = match req.get("update") {
            None => None,
            Some(RawBsonRef::Document(u)) => Some(Update::parse_statement(u, &query, array_filters)?),
            Some(RawBsonRef::Array(stages)) => Some(Update::parse_pipeline(stages, &vars.clone().unwrap_or_default())?),
            Some(other) => return Err(req.wrong_type("update", other, "object")),
        };
        let update = update.map(|u| u.with_collation(collation)).transpose()?;
        match (&update, remove) {
            (Some(_), true) => {
                return Err(Error::new(ErrorCode::FailedToParse, "Cannot specify both an update and remove=true"));
            }
            (None, false) => {
                return Err(Error::new(ErrorCode::FailedToParse, "Either an update or remove=true must be specified"));
            }
            _ => {}
        }
        if remove && (upsert || return_new) {
            return Err(Error::new(
                ErrorCode::FailedToParse,
                "Cannot specify both upsert=true and remove=true or new=true and remove=true",
            ));
        }
        Ok(Self { target, journal, query, vars, sort, fields, hint, return_new, upsert, bypass, update })
    }
}

/// `findAndModify`: updates or removes one document and returns it (before or after).
pub fn find_and_modify(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Reply> {
    let FindAndModifyArgs { mut target, journal, query, vars, sort, fields, hint, return_new, upsert, bypass, update } =
        FindAndModifyArgs::parse(ctx, req)?;
    let query: &RawDocument = &query;
    let collation = target.collation.clone();
    let storage = &ctx.state.storage;
    let mut retry = retryable(ctx, req, false)?;
    if let Some(retry) = &mut retry
        && let Some(mut reply) = retry.previous(0)
    {
        // As mongod: the first attempt's answer, and which statement it was.
        reply.append(cstr!("retriedStmtId"), retry.retried().first().copied().unwrap_or(0));
        return Ok(Reply::from(reply));
    }
    let Some(collection) = target.collection_for_write(storage, ctx.txn.as_deref_mut(), upsert)? else {
        return find_and_modify_reply(LastError { n: 0, updated_existing: Some(false), upserted: None }, None)
            .map(Reply::from);
    };
    let mut txn = ctx.txn.take();
    let stats = Arc::new(ExecStats::default());
    let finder = Finder::new(ctx, &stats);
    let validation = validation(ctx, &collection, bypass);
    let filter = parse_filter(query, vars.as_ref(), collation.as_ref())?;
    let project = |doc: Option<RawDocumentBuf>| -> Result<Option<RawDocumentBuf>> {
        match (doc, &fields) {
            (Some(doc), Some(fields)) => Ok(Some(fields.apply(&doc)?)),
            (doc, _) => Ok(doc),
        }
    };
    let mut closes = false;
    // Runs again, from the selection, when it meets a document an open transaction wrote.
    let mut attempt = || -> Result<(RawDocumentBuf, Option<DurabilityTicket>)> {
        let mut writer = open_writer(storage, &mut txn, &collection)?;
        let (last_error, value) = match &update {
            None => {
                let selection = WriteSelection {
                    query,
                    filter: &filter,
                    hint,
                    collation: collation.as_deref(),
                    multi: sort.is_some(),
                };
                let mut found = finder.select(&writer, &selection)?;
                if let Some(sort) = &sort {
                    if sort.natural() == Some(false) {
                        found.reverse();
                    }
                    found.sort_by(|a, b| sort.compare(a, b));
                }
                let victim = found.into_iter().next();
                if let Some(id) = victim.as_ref().and_then(|v| v.get("_id").ok().flatten()) {
                    writer.delete(id)?;
                }
                ctx.op.docs.deleted.fetch_add(u64::from(victim.is_some()), Ordering::Relaxed);
                let last_error = LastError { n: i32::from(victim.is_some()), updated_existing: None, upserted: None };
                (last_error, project(victim)?)
            }
            Some(update) => {
                let outcome = update_statement(
                    &mut writer,
                    query,
                    update,
                    UpdateOptions {
                        finder,
                        hint,
                        multi: false,
                        upsert,
                        sort: sort.as_ref(),
                        vars: vars.as_ref(),
                        collation: collation.as_ref(),
                        keep_documents: true,
                    },
                    &validation,
                )?;
                ctx.op.docs.updated.fetch_add(u64::try_from(outcome.modified).unwrap_or(0), Ordering::Relaxed);
                ctx.op.docs.inserted.fetch_add(u64::from(outcome.upserted.is_some()), Ordering::Relaxed);
                let n = i32::from(outcome.matched > 0 || outcome.upserted.is_some());
                let last_error =
                    LastError { n, updated_existing: Some(outcome.matched > 0), upserted: outcome.upserted };
                let value = if return_new { outcome.after } else { outcome.before };
                (last_error, project(value)?)
            }
        };
        let reply = find_and_modify_reply(last_error, value.as_deref())?;
        if let Some(retry) = &mut retry {
            retry.record(&mut writer, 0, &reply)?;
            let failed = retry.before_commit();
            closes |= retry.close_connection();
            failed?;
        }
        Ok((reply, commit(ctx.op, writer)?))
    };
    let attempted = storage.retry_while_held(|| ctx.op.interrupt.check(), &mut attempt);
    ctx.client.close_requested |= closes;
    let (reply, ticket) = attempted?;
    ctx.txn = txn;
    acknowledge(ctx, journal, ticket);
    Ok(Reply::from(reply))
}

/// findAndModify's `lastErrorObject`.
struct LastError {
    n: i32,
    /// Absent for a remove.
    updated_existing: Option<bool>,
    upserted: Option<RawBson>,
}

/// `{lastErrorObject, value}`, the document (or null) copied into the reply as it is.
fn find_and_modify_reply(last_error: LastError, value: Option<&RawDocument>) -> Result<RawDocumentBuf> {
    let mut reply = ReplyBuilder::new();
    reply.open_document(cstr!("lastErrorObject"));
    reply.append(cstr!("n"), last_error.n);
    if let Some(updated_existing) = last_error.updated_existing {
        reply.append(cstr!("updatedExisting"), updated_existing);
    }
    if let Some(id) = &last_error.upserted {
        reply.append(cstr!("upserted"), id);
    }
    reply.close();
    match value {
        Some(value) => {
            // A document stored too deep by an older version is refused, as mongod does.
            limits::check_read_depth(value)?;
            reply.append_document(cstr!("value"), value);
        }
        None => reply.append(cstr!("value"), RawBsonRef::Null),
    }
    reply.finish()
}
