//! Collection and database management: `create`, `drop`, `dropDatabase`, `listDatabases`,
//! `listCollections`, `renameCollection`, `collMod`, `dbStats`, `collStats` and the
//! `$collStats` aggregation stage.

use bson::{Binary, Bson, Document, RawBsonRef, RawDocument, doc};

use super::options::is_generic_argument;
use super::target::Target;
use super::{Authorizer, CommandRequest, RequestCtx, count_value};
use crate::auth::action::ActionType;
use crate::auth::resource::{Target as Resource, is_normal_collection};
use crate::error::{Error, ErrorCode, Result};
use crate::exec::{pipeline, views};
use crate::obs::profiler::PROFILE_COLLECTION;
use crate::query::{Filter, ValidationAction, ValidationLevel, Validator};
use crate::state::cursors::DocumentStream;
use crate::storage::{Collection, Namespace, id_index_spec, validate_db_name};

/// `create`: an empty collection with options. The dispatcher has refused unknown fields
/// and the options that are not built (views, time-series, clustered collections), so every
/// other field is an option to store.
pub fn create(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let ns = req.namespace()?;
    check_system_namespace(&ns)?;
    if let Some(timeseries) = super::timeseries::parse_create(req, &ns)? {
        if ctx.txn.is_some() {
            // Its view is a document of `system.views`, written at once: not in a transaction.
            return Err(Error::new(
                ErrorCode::OperationNotSupportedInTransaction,
                "Cannot create a timeseries collection in a multi-document transaction.",
            ));
        }
        return super::timeseries::create(ctx, req, &ns, timeseries);
    }
    let clustered = super::clustered::parse_create(req, ctx.state.config.parameters.enable_test_commands)?;
    if req.get("viewOn").is_some() || req.get("pipeline").is_some() {
        if ctx.txn.is_some() {
            // A view is a document of `system.views`, written at once: not in a transaction.
            return Err(Error::new(
                ErrorCode::OperationNotSupportedInTransaction,
                "Cannot create a view in a multi-document transaction.",
            ));
        }
        return create_view(ctx, req, ns);
    }
    if req.get("expireAfterSeconds").is_some() && clustered.is_none() {
        return Err(Error::new(
            ErrorCode::InvalidOptions,
            "'expireAfterSeconds' is only supported on time-series collections or when the 'clusteredIndex' option \
             is specified",
        ));
    }
    let mut options = Document::new();
    for element in req.body().iter().skip(1) {
        let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        let key = key.as_str();
        if is_generic_argument(key) || matches!(key, "clusteredIndex" | "expireAfterSeconds") {
            continue;
        }
        if key == "collation" {
            // Stored resolved, every field filled in, as mongod reports it; the simple
            // collation is no default at all.
            if let Some(collation) = super::collation::resolve(Some(value), "create.collation", None)? {
                options.insert(key, collation.spec().to_document());
            }
            continue;
        }
        check_validation_option(req, key, value)?;
        if key == "validator" && matches!(value, RawBsonRef::Document(v) if v.is_empty()) {
            // `validator: {}` is no validator, and mongod lists none.
            continue;
        }
        options.insert(key, Bson::try_from(value).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?);
    }
    if let Some(RawBsonRef::Document(validator)) = req.get("validator")
        && !validator.is_empty()
    {
        check_validator_namespace(&ns, bson::Uuid::new())?;
        Validator::compile(validator)?;
    }
    capped_options(&mut options)?;
    if let Some((spec, expire_after_seconds)) = clustered {
        options.insert("clusteredIndex", spec);
        if let Some(seconds) = expire_after_seconds {
            options.insert("expireAfterSeconds", Bson::Int64(seconds));
        }
    }
    if views::definition(&ctx.state.storage, &ns)?.is_some() {
        // A view has the name: as mongod, no collection beside it.
        return Err(Error::new(ErrorCode::NamespaceExists, format!("Namespace {ns} already exists")));
    }
    match ctx.txn.as_deref_mut() {
        Some(txn) => ctx.state.storage.create_in_transaction(txn, &ns, options)?,
        None => ctx.state.storage.create_collection(&ns, options)?,
    };
    Ok(Document::new())
}

/// The largest capped collection mongod makes: 1 PB.
const MAX_CAPPED_SIZE: i64 = 1 << 50;

/// A capped collection's `size` and `max`, checked and stored as mongod's
/// `CollectionOptions` keeps them: `size` required, at most 1 PB, rounded up to a multiple of
/// 256; `max` under 2^31, and no limit (left out) when 0 or negative. Without `capped`, the
/// two are not kept.
fn capped_options(options: &mut Document) -> Result<()> {
    let number = |options: &Document, key: &str| -> Result<Option<i64>> {
        match options.get(key) {
            None => Ok(None),
            Some(Bson::Int32(n)) => Ok(Some(i64::from(*n))),
            Some(Bson::Int64(n)) => Ok(Some(*n)),
            Some(Bson::Double(n)) => Ok(Some(*n as i64)),
            Some(Bson::Decimal128(_)) => Ok(Some(0)),
            Some(other) => Err(Error::new(
                ErrorCode::TypeMismatch,
                format!(
                    "BSON field 'create.{key}' is the wrong type '{}', expected types '[long, int, decimal, double]'",
                    crate::query::type_name(other.element_type())
                ),
            )),
        }
    };
    let size = number(options, "size")?;
    let max = number(options, "max")?;
    if !options.get_bool("capped").unwrap_or(false) {
        options.remove("capped");
        options.remove("size");
        options.remove("max");
        return Ok(());
    }
    let Some(size) = size else {
        return Err(Error::new(ErrorCode::InvalidOptions, "the 'size' field is required when 'capped' is true"));
    };
    if size < 0 {
        return Err(Error::new(ErrorCode::BadValue, "size has to be >= 0"));
    }
    if size > MAX_CAPPED_SIZE {
        return Err(Error::new(ErrorCode::BadValue, "size cannot exceed 1 PB"));
    }
    let rounded = (size + 0xff) & !0xff;
    let as_number = |n: i64| i32::try_from(n).map_or(Bson::Int64(n), Bson::Int32);
    options.insert("size", as_number(rounded));
    match max {
        Some(max) if max >= 1 << 31 => {
            return Err(Error::new(ErrorCode::BadValue, "max in a capped collection has to be < 2^31 or not set"));
        }
        Some(max) if max > 0 => {
            options.insert("max", as_number(max));
        }
        _ => {
            options.remove("max");
        }
    }
    Ok(())
}

/// `create`: a collection takes createCollection or insert (and convertToCapped when capped);
/// a view takes createCollection, and find on what it reads when its creator may read it.
pub(super) fn authorize_create(authz: &Authorizer<'_>, req: &CommandRequest) -> bool {
    if let Some(RawBsonRef::String(view_on)) = req.get("viewOn") {
        let db = req.db();
        let reads_view = authz.on_command_namespace(req, ActionType::Find);
        return authz.on_command_namespace(req, ActionType::CreateCollection)
            && (!reads_view || authz.on_namespace(db, view_on, ActionType::Find));
    }
    let capped = matches!(req.get("capped"), Some(RawBsonRef::Boolean(true)));
    (authz.on_command_namespace(req, ActionType::CreateCollection)
        || authz.on_command_namespace(req, ActionType::Insert))
        && (!capped || authz.on_command_namespace(req, ActionType::ConvertToCapped))
}

/// `listCollections`: listCollections on the database, or, for the names of the collections
/// the user has privileges on (`authorizedCollections` with `nameOnly`), any privilege there.
pub(super) fn authorize_list_collections(authz: &Authorizer<'_>, req: &CommandRequest) -> bool {
    let flag = |key: &str| matches!(req.get(key), Some(RawBsonRef::Boolean(true)));
    (flag("authorizedCollections") && flag("nameOnly") && authz.touches_database(req.db()))
        || authz.allows(Resource::Database(req.db()), ActionType::ListCollections)
}

/// `renameCollection`: within a database between normal collections, renameCollectionSameDB
/// there (with dropCollection on the target when it replaces one, and no read of the target
/// the source could not give); otherwise find and dropCollection on the source, insert and
/// createIndex (and dropCollection with `dropTarget`) on the target.
pub(super) fn authorize_rename(authz: &Authorizer<'_>, req: &CommandRequest) -> bool {
    let (Some(RawBsonRef::String(from)), Ok(Some(to))) = (req.command_value(), req.str_arg("to")) else {
        return true;
    };
    let (Some((from_db, from_coll)), Some((to_db, to_coll))) = (from.split_once('.'), to.split_once('.')) else {
        return true;
    };
    let drop_target = matches!(req.get("dropTarget"), Some(RawBsonRef::Boolean(true)));
    let source = Resource::Namespace(from_db, from_coll);
    let target = Resource::Namespace(to_db, to_coll);
    let drops_target = !drop_target || authz.allows(target, ActionType::DropCollection);
    if from_db == to_db && is_normal_collection(from_db, from_coll) && is_normal_collection(to_db, to_coll) {
        let reads_target = authz.allows(target, ActionType::Find);
        return authz.allows(Resource::Database(from_db), ActionType::RenameCollectionSameDB)
            && drops_target
            && (authz.allows(source, ActionType::Find) || !reads_target);
    }
    authz.allows_all(source, &[ActionType::Find, ActionType::DropCollection])
        && authz.allows_all(target, &[ActionType::Insert, ActionType::CreateIndex])
        && drops_target
}

/// `create` with `viewOn`: a view, with `pipeline` (default none) and `collation`; no other
/// collection option applies to a view.
fn create_view(ctx: &RequestCtx<'_>, req: &CommandRequest, ns: Namespace) -> Result<Document> {
    let view_on = match req.get("viewOn") {
        Some(RawBsonRef::String(on)) if !on.is_empty() => on.to_owned(),
        Some(RawBsonRef::String(_)) => {
            return Err(Error::new(ErrorCode::BadValue, "'viewOn' cannot be empty"));
        }
        Some(other) => return Err(req.wrong_type("viewOn", other, "string")),
        None => return Err(Error::new(ErrorCode::BadValue, "'pipeline' requires 'viewOn' to also be specified")),
    };
    let pipeline = view_pipeline(req)?;
    for element in req.body().iter().skip(1) {
        let (key, _) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        let key = key.as_str();
        if !is_generic_argument(key) && !matches!(key, "viewOn" | "pipeline" | "collation") {
            return Err(Error::new(ErrorCode::InvalidOptions, format!("option not supported on a view: {key}")));
        }
    }
    if view_on.starts_with(crate::query::timeseries::BUCKETS_PREFIX) {
        return Err(Error::new(
            ErrorCode::InvalidNamespace,
            "Cannot create view on a system.buckets namespace except by creating a time-series collection",
        ));
    }
    let collation =
        super::collation::resolve(req.get("collation"), "create.collation", None)?.map(|c| c.spec().to_document());
    let view = views::ViewDefinition { ns, view_on, pipeline, collation };
    views::store(&ctx.state.storage, &view, false)?;
    Ok(Document::new())
}

/// A view's `pipeline`: an array of stage documents, checked as an aggregate's.
fn view_pipeline(req: &CommandRequest) -> Result<Vec<bson::RawDocumentBuf>> {
    let stages = match req.get("pipeline") {
        None => Vec::new(),
        Some(RawBsonRef::Array(stages)) => stages
            .into_iter()
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?,
        Some(other) => return Err(req.wrong_type("pipeline", other, "array")),
    };
    pipeline::check_positions(&stages)?;
    stages
        .into_iter()
        .map(|stage| match stage {
            RawBsonRef::Document(stage) => Ok(stage.to_owned()),
            _ => Err(Error::new(ErrorCode::TypeMismatch, "Each element of the 'pipeline' array must be an object")),
        })
        .collect()
}

/// The `system.*` collections clients may create and write, as mongod's
/// `isLegalClientSystemNS` (every database: `system.js`, `system.users`, `system.views`,
/// `system.buckets.*`; plus a few in `admin`, `config` and `local`).
fn legal_system_collection(ns: &Namespace) -> bool {
    let coll = ns.coll.as_str();
    match (ns.db.as_str(), coll) {
        (_, "system.js" | "system.users" | "system.views" | "system.profile") => true,
        ("admin", "system.roles" | "system.version" | "system.keys" | "system.backup_users" | "system.new_users") => {
            true
        }
        ("config", "system.sessions" | "system.indexBuilds") => true,
        ("local", "system.replset" | "system.healthlog") => true,
        _ => coll.strip_prefix("system.buckets.").is_some_and(|rest| !rest.is_empty()),
    }
}

/// mongod's `userAllowedCreateNS`: a `system.*` collection must be one clients may use.
///
/// # Errors
/// 73 InvalidNamespace "Invalid system namespace: <ns>".
pub fn check_system_namespace(ns: &Namespace) -> Result<()> {
    if ns.coll.starts_with("system.") && !legal_system_collection(ns) {
        return Err(Error::new(ErrorCode::InvalidNamespace, format!("Invalid system namespace: {ns}")));
    }
    Ok(())
}

/// Checks the type and value of `validator`, `validationLevel` and `validationAction` as
/// mongod's IDL parser does for `create` and `collMod`; other keys pass.
fn check_validation_option(req: &CommandRequest, key: &str, value: RawBsonRef<'_>) -> Result<()> {
    let known = match (key, value) {
        ("validator", RawBsonRef::Document(_)) => true,
        ("validator", other) => return Err(req.wrong_type(key, other, "object")),
        ("validationLevel", RawBsonRef::String(level)) => ValidationLevel::parse(level).is_some(),
        ("validationAction", RawBsonRef::String(action)) => ValidationAction::parse(action).is_some(),
        ("validationLevel" | "validationAction", other) => return Err(req.wrong_type(key, other, "string")),
        _ => true,
    };
    if known {
        return Ok(());
    }
    let shown = match value {
        RawBsonRef::String(s) => s,
        _ => "",
    };
    Err(Error::new(
        ErrorCode::BadValue,
        format!("Enumeration value '{shown}' for field '{}.{key}' is not a valid value.", req.name()),
    ))
}

/// mongod refuses validators on `system.*` collections and in the `admin`, `local` and
/// `config` databases (72 InvalidOptions).
fn check_validator_namespace(ns: &Namespace, uuid: bson::Uuid) -> Result<()> {
    if ns.coll.starts_with("system.") {
        return Err(Error::new(
            ErrorCode::InvalidOptions,
            format!("Document validators not allowed on system collection {ns} with UUID {uuid}"),
        ));
    }
    if matches!(ns.db.as_str(), "admin" | "local" | "config") {
        return Err(Error::new(
            ErrorCode::InvalidOptions,
            format!(
                "Document validators are not allowed on collection {ns} with UUID {uuid} in the {} internal database",
                ns.db
            ),
        ));
    }
    Ok(())
}

/// `drop`: removes a collection; dropping a missing one succeeds, as in mongod 7.0.
pub fn drop(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let ns = req.namespace()?;
    if ns.coll == PROFILE_COLLECTION && ctx.observers.profiler.settings(&ns.db).level > 0 {
        return Err(Error::new(
            ErrorCode::IllegalOperation,
            "turn off profiling before dropping system.profile collection",
        ));
    }
    let indexes = ctx.state.storage.collection(&ns).map(|c| c.indexes().len());
    if indexes.is_none() && super::timeseries::buckets_of(&ctx.state.storage, &ns)?.is_some() {
        // A time-series collection: its view, then its buckets.
        views::remove(&ctx.state.storage, &ns)?;
        ctx.state.storage.drop_collection(&super::timeseries::buckets_namespace(&ns))?;
        return Ok(doc! { "ns": ns.full() });
    }
    if indexes.is_none() && views::remove(&ctx.state.storage, &ns)? {
        return Ok(doc! { "ns": ns.full() });
    }
    ctx.state.storage.drop_collection(&ns)?;
    Ok(match indexes {
        Some(n) => doc! { "nIndexesWas": i32::try_from(n).unwrap_or(i32::MAX), "ns": ns.full() },
        None => Document::new(),
    })
}

/// `dropDatabase`: drops every collection of the database.
pub fn drop_database(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    validate_db_name(req.db())?;
    let storage = &ctx.state.storage;
    if req.db() == "local" && storage.oplog.is_on() {
        return Err(Error::new(
            ErrorCode::IllegalOperation,
            "Cannot drop 'local' database while replication is active",
        ));
    }
    let collections = storage.collections_in(req.db());
    for collection in &collections {
        storage.drop_collection(&collection.ns)?;
    }
    if !collections.is_empty() {
        storage.log_command(req.db(), &doc! { "dropDatabase": 1 })?;
    }
    Ok(doc! { "dropped": req.db() })
}

/// `listDatabases`: databases holding at least one collection, with sizes.
pub fn list_databases(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let name_only = req.bool_arg("nameOnly")?.unwrap_or(false);
    let filter = req.doc_arg("filter")?.map(Filter::parse).transpose()?;
    let authz = Authorizer::of(ctx);
    let may_list_all = authz.allows(Resource::Cluster, ActionType::ListDatabases);
    let authorized_only = match req.bool_arg("authorizedDatabases")? {
        Some(false) if !may_list_all => {
            return Err(Error::new(ErrorCode::Unauthorized, "Insufficient permissions to list all databases"));
        }
        Some(only) => only,
        None => !may_list_all,
    };
    let storage = &ctx.state.storage;
    let mut databases: Vec<(String, i64)> = Vec::new();
    for collection in storage.all_collections() {
        let (bytes, _) = storage.collection_size(&collection)?;
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        match databases.last_mut() {
            Some((name, size)) if *name == collection.ns.db => *size += bytes,
            _ => databases.push((collection.ns.db.clone(), bytes)),
        }
    }
    let mut list = Vec::new();
    let mut total = 0i64;
    for (name, size) in databases {
        if authorized_only && !authz.touches_database(&name) {
            continue;
        }
        let entry = if name_only {
            doc! { "name": &name }
        } else {
            doc! { "name": &name, "sizeOnDisk": size, "empty": false }
        };
        if let Some(filter) = &filter {
            let raw = bson::RawDocumentBuf::try_from(&entry)
                .map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))?;
            if !filter.matches(&raw) {
                continue;
            }
        }
        total += size;
        list.push(Bson::Document(entry));
    }
    if name_only {
        return Ok(doc! { "databases": list });
    }
    Ok(doc! { "databases": list, "totalSize": total, "totalSizeMb": total / (1024 * 1024) })
}

/// `listCollections`: a cursor over the database's collections.
pub fn list_collections(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    validate_db_name(req.db())?;
    let name_only = req.bool_arg("nameOnly")?.unwrap_or(false);
    let authorized_only = req.bool_arg("authorizedCollections")?.unwrap_or(false);
    let authz = Authorizer::of(ctx);
    let filter = req.doc_arg("filter")?.map(Filter::parse).transpose()?;
    let mut batch = Vec::new();
    let collections = ctx
        .state
        .storage
        .collections_in(req.db())
        .into_iter()
        .map(|c| (c.ns.coll.clone(), "collection", collection_entry(&c)));
    let storage = &ctx.state.storage;
    let views = views::list(storage, req.db())?.into_iter().map(|v| {
        if let Some((buckets, _)) = super::timeseries::buckets_of(storage, &v.ns)? {
            return Ok((v.ns.coll.clone(), "timeseries", super::timeseries::list_entry(&v.ns.coll, &buckets)));
        }
        let entry = doc! { "name": &v.ns.coll, "type": "view", "options": v.options()?, "info": { "readOnly": true } };
        Ok((v.ns.coll, "view", entry))
    });
    let mut entries: Vec<(String, &str, Document)> = collections.map(Ok).chain(views).collect::<Result<_>>()?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, kind, full) in entries {
        if authorized_only && !authz.touches_namespace(req.db(), &name) {
            continue;
        }
        let raw =
            bson::RawDocumentBuf::try_from(&full).map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))?;
        if filter.as_ref().is_some_and(|f| !f.matches(&raw)) {
            continue;
        }
        batch.push(if name_only {
            doc! { "name": name, "type": kind }
        } else {
            full
        });
    }
    super::listing::first_batch(ctx, req, format!("{}.$cmd.listCollections", req.db()), batch)
}

fn collection_entry(collection: &Collection) -> Document {
    let mut entry = doc! {
        "name": &collection.ns.coll,
        "type": "collection",
        "options": collection.options.clone(),
        "info": { "readOnly": false, "uuid": Binary::from_uuid(collection.uuid) },
    };
    // mongod builds no `_id` index on the profile collection, and lists none; a clustered
    // collection lists its `clusteredIndex` instead.
    if collection.ns.coll != PROFILE_COLLECTION && !collection.is_clustered() {
        entry.insert("idIndex", id_index_spec());
    }
    entry
}

/// `collMod` of a view: a new `viewOn` and `pipeline`, given together, as mongod requires.
fn modify_view(ctx: &RequestCtx<'_>, req: &CommandRequest, mut view: views::ViewDefinition) -> Result<Document> {
    for element in req.body().iter().skip(1) {
        let (key, _) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        let key = key.as_str();
        if !is_generic_argument(key) && !matches!(key, "viewOn" | "pipeline") {
            return Err(Error::new(ErrorCode::InvalidOptions, format!("option not supported on a view: {key}")));
        }
    }
    match (req.get("viewOn"), req.get("pipeline")) {
        (Some(RawBsonRef::String(on)), Some(_)) => view.view_on = on.to_owned(),
        (Some(RawBsonRef::String(_)) | None, None) | (None, Some(_)) => {
            return Err(Error::new(
                ErrorCode::InvalidOptions,
                "must specify both 'viewOn' and 'pipeline' when modifying a view",
            ));
        }
        (Some(other), _) => return Err(req.wrong_type("viewOn", other, "string")),
    }
    view.pipeline = view_pipeline(req)?;
    views::store(&ctx.state.storage, &view, true)?;
    Ok(Document::new())
}

/// `renameCollection: "db.a", to: "db.b"`, run on `admin`.
pub fn rename_collection(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    if req.db() != "admin" {
        return Err(Error::new(
            ErrorCode::Unauthorized,
            "renameCollection may only be run against the admin database.",
        ));
    }
    let from = match req.command_value() {
        Some(RawBsonRef::String(full)) => Namespace::parse(full)?,
        Some(other) => return Err(req.wrong_type("renameCollection", other, "string")),
        None => return Err(Error::new(ErrorCode::FailedToParse, "renameCollection requires a source namespace")),
    };
    let to = req.str_arg("to")?.ok_or_else(|| {
        Error::new(ErrorCode::FailedToParse, "BSON field 'renameCollection.to' is missing but a required field")
    })?;
    let to = Namespace::parse(to)?;
    let drop_target = req.bool_arg("dropTarget")?.unwrap_or(false);
    if super::timeseries::buckets_of(&ctx.state.storage, &from)?.is_some() {
        // A time-series collection is a view over its buckets, and views are not renamed.
        return Err(Error::new(ErrorCode::CommandNotSupportedOnView, format!("cannot rename view: {from}")));
    }
    ctx.state.storage.rename_collection(&from, &to, drop_target)?;
    Ok(Document::new())
}

/// `collMod`: changes stored options (validator, validation level and action).
pub fn coll_mod(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let mut ns = req.namespace()?;
    if ctx.state.storage.collection(&ns).is_none() && super::timeseries::buckets_of(&ctx.state.storage, &ns)?.is_some()
    {
        // A time-series collection's options live on its buckets; only its expiry is built.
        super::timeseries::check_coll_mod(req)?;
        ns = super::timeseries::buckets_namespace(&ns);
    } else if ctx.state.storage.collection(&ns).is_none()
        && let Some(view) = views::definition(&ctx.state.storage, &ns)?
    {
        return modify_view(ctx, req, view);
    }
    if req.get("viewOn").is_some() || req.get("pipeline").is_some() {
        return Err(Error::new(
            ErrorCode::InvalidOptions,
            format!(
                "option only supported on a view: {}",
                if req.get("viewOn").is_some() { "viewOn" } else { "pipeline" }
            ),
        ));
    }
    let collection = ctx.state.storage.existing_collection(&ns)?;
    let mut options = collection.options.clone();
    let mut index_reply = Document::new();
    for element in req.body().iter().skip(1) {
        let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        let key = key.as_str();
        if is_generic_argument(key) {
            continue;
        }
        match key {
            "validator" | "validationLevel" | "validationAction" | "changeStreamPreAndPostImages" => {
                check_validation_option(req, key, value)?;
                if let RawBsonRef::Document(validator) = value {
                    if validator.is_empty() {
                        // `validator: {}` removes the validator.
                        options.remove(key);
                        continue;
                    }
                    check_validator_namespace(&ns, collection.uuid)?;
                    Validator::compile(validator).map_err(|e| {
                        Error::new(
                            e.code(),
                            format!("Parsing of collection validator failed :: caused by :: {}", e.message()),
                        )
                    })?;
                }
                options
                    .insert(key, Bson::try_from(value).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?);
            }
            "index" => match value {
                RawBsonRef::Document(spec) => index_reply = super::indexes::modify_index(ctx, &collection, spec)?,
                other => return Err(req.wrong_type("index", other, "object")),
            },
            "expireAfterSeconds" => options = super::clustered::modify_expiry(&options, value)?,
            // The dispatcher refused the options that are not built yet and unknown ones.
            _ => {}
        }
    }
    // A collMod that changes nothing but an index has been recorded by the index change; any
    // other (even an empty one, as mongod) is recorded as the collection's.
    if options != collection.options || req.get("index").is_none() {
        ctx.state.storage.set_options(&ns, options)?;
    }
    Ok(index_reply)
}

/// `validate`: checks a collection's documents and indexes, in mongod's reply shape.
pub fn validate(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let ns = req.namespace()?;
    for flag in ["full", "background", "checkBSONConformance", "metadata", "repair", "enforceFastCount"] {
        req.bool_arg(flag)?;
    }
    if req.bool_arg("repair")?.unwrap_or(false) {
        return Err(Error::new(ErrorCode::NotImplemented, "validate with repair is not implemented yet"));
    }
    let storage = &ctx.state.storage;
    let collection = storage.collection(&ns).ok_or_else(|| {
        Error::new(ErrorCode::NamespaceNotFound, format!("Collection '{ns}' does not exist to validate."))
    })?;
    let report = storage.validate_collection(&collection)?;
    let to_long = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let entries = |list: &[(String, String)]| -> Vec<Bson> {
        list.iter().map(|(index, key)| Bson::Document(doc! { "indexName": index, "key": key })).collect()
    };
    Ok(doc! {
        "ns": ns.full(),
        "uuid": Binary::from_uuid(collection.uuid),
        "nInvalidDocuments": to_long(report.invalid_documents),
        "nNonCompliantDocuments": 0_i64,
        "nrecords": to_long(report.records),
        "nIndexes": i32::try_from(report.keys_per_index.len()).unwrap_or(i32::MAX),
        "keysPerIndex": report.keys_per_index.iter().map(|(name, n)| (name.clone(), Bson::Int64(to_long(*n)))).collect::<Document>(),
        "indexDetails": report.index_valid.iter().map(|(name, valid)| (name.clone(), Bson::Document(doc! { "valid": *valid }))).collect::<Document>(),
        "valid": report.is_valid(),
        "repaired": false,
        "warnings": report.warnings.clone(),
        "errors": report.errors.clone(),
        "extraIndexEntries": entries(&report.extra_entries),
        "missingIndexEntries": entries(&report.missing_entries),
        "corruptRecords": Vec::<Bson>::new(),
    })
}

/// `dbStats`.
pub fn db_stats(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    validate_db_name(req.db())?;
    let scale = scale_arg(req)?;
    let storage = &ctx.state.storage;
    let collections = storage.collections_in(req.db());
    let (mut bytes, mut objects, mut indexes) = (0u64, 0u64, 0usize);
    for collection in &collections {
        let (size, count) = storage.collection_size(collection)?;
        bytes += size;
        objects += count;
        indexes += collection.indexes().len();
    }
    let to_long = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let scaled = |n: u64| to_long(n / scale);
    let mut reply = doc! {
        "db": req.db(),
        "collections": to_long(collections.len() as u64),
        "views": 0_i64,
        "objects": to_long(objects),
        "avgObjSize": if objects == 0 { 0.0 } else { bytes as f64 / objects as f64 },
        "dataSize": scaled(bytes),
        "storageSize": scaled(bytes),
        "indexes": to_long(indexes as u64),
        "indexSize": 0_i64,
        "totalSize": scaled(bytes),
        "scaleFactor": to_long(scale),
        "fsUsedSize": scaled(storage.disk_space()),
        "fsTotalSize": scaled(storage.disk_space()),
    };
    if req.bool_arg("freeStorage")?.unwrap_or(false) {
        // Space freed by deletes is reused by the engine's compactions; none sits reserved.
        for key in ["freeStorageSize", "indexFreeStorageSize", "totalFreeStorageSize"] {
            reply.insert(key, 0_i64);
        }
    }
    Ok(reply)
}

/// `collStats` (deprecated in mongod but still sent by tools).
pub fn coll_stats(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let ns = req.namespace()?;
    let scale = scale_arg(req)?;
    let storage = &ctx.state.storage;
    if storage.collection(&ns).is_none()
        && let Some((buckets, _)) = super::timeseries::buckets_of(storage, &ns)?
    {
        return super::timeseries::storage_stats(storage, &ns, &buckets, scale);
    }
    let collection = storage
        .collection(&ns)
        .ok_or_else(|| Error::new(ErrorCode::NamespaceNotFound, format!("Collection [{ns}] not found.")))?;
    storage_stats(storage, &collection, scale)
}

/// A collection's sizes in the shape of `collStats` (and `$collStats.storageStats`), sizes
/// divided by `scale`.
///
/// # Errors
/// Storage errors.
pub fn storage_stats(storage: &crate::storage::Storage, collection: &Collection, scale: u64) -> Result<Document> {
    let ns = &collection.ns;
    let (bytes, count) = storage.collection_size(collection)?;
    let to_long = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let scaled = |n: u64| to_long(n / scale);
    let mut index_sizes = Document::new();
    for index in collection.indexes().iter() {
        index_sizes.insert(index.name.clone(), 0_i64);
    }
    Ok(doc! {
        "ns": ns.full(),
        "size": scaled(bytes),
        "count": to_long(count),
        "avgObjSize": bytes.checked_div(count).map_or(0, to_long),
        "storageSize": scaled(bytes),
        "nindexes": to_long(collection.indexes().len() as u64),
        "totalIndexSize": 0_i64,
        "indexSizes": index_sizes,
        "totalSize": scaled(bytes),
        "scaleFactor": to_long(scale),
        "capped": collection.capped.is_some(),
    })
    .map(|mut stats| {
        // As mongod: a capped collection's limits (`max` 0 when it has none).
        if let Some(capped) = collection.capped {
            stats.insert("max", to_long(capped.max.unwrap_or(0)));
            stats.insert("maxSize", scaled(capped.size));
        }
        stats
    })
}

fn scale_arg(req: &CommandRequest) -> Result<u64> {
    match req.count_arg("scale")? {
        None => Ok(1),
        Some(0) => Err(Error::new(ErrorCode::BadValue, "Scale factor must be greater than zero")),
        Some(n) => Ok(u64::try_from(n).unwrap_or(1)),
    }
}

/// `$collStats` as the first stage: one document with `storageStats`, `count` and/or
/// `latencyStats` (`{histograms: true}` adds the histograms), as mongosh's
/// `db.collection.stats()` and `db.collection.latencyStats()` ask.
pub(super) fn coll_stats_stage(ctx: &RequestCtx<'_>, target: &Target, stage: &RawDocument) -> Result<DocumentStream> {
    let ns = &target.ns;
    let Ok(Some(RawBsonRef::Document(spec))) = stage.get("$collStats") else {
        return Err(Error::new(ErrorCode::FailedToParse, "$collStats must take a nested object"));
    };
    let storage = &ctx.state.storage;
    // A time-series collection's statistics are its buckets'.
    let timeseries = match &target.collection {
        None => super::timeseries::buckets_of(storage, ns)?.map(|(buckets, _)| buckets),
        Some(_) => None,
    };
    let collection = target.collection.as_ref().or(timeseries.as_ref()).ok_or_else(|| {
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
                let stats = match &timeseries {
                    Some(buckets) => super::timeseries::storage_stats(storage, ns, buckets, scale)?,
                    None => storage_stats(storage, collection, scale)?,
                };
                out.insert("storageStats", stats);
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
                let (_, count) = storage.collection_size(collection)?;
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
    Ok(Box::new(std::iter::once(pipeline::raw(&out))))
}
