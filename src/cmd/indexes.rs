//! Index management: `createIndexes`, `listIndexes`, `dropIndexes`, and `collMod`'s `index`
//! option. Specifications are validated here with mongod's errors; storage builds them.

use bson::{Bson, Document, RawBsonRef, RawDocument, RawDocumentBuf, doc};

use super::clustered::{self, AgainstCluster};
use super::{CommandRequest, RequestCtx};
use crate::error::{Error, ErrorCode, Result};
use crate::query::Filter;
use crate::query::collation::Collation;
use crate::query::index_key::{KeyOrder, KeyPattern};
use crate::query::text;
use crate::storage::{Collection, IndexSelector};

/// Options an index specification may carry (besides `key` and `name`).
const INDEX_OPTIONS: &[&str] = &[
    "v",
    "unique",
    "sparse",
    "partialFilterExpression",
    "expireAfterSeconds",
    "hidden",
    "collation",
    "background",
    "dropDups",
    "ns",
    "storageEngine",
    "clustered",
    "wildcardProjection",
    "weights",
    "default_language",
    "language_override",
    "textIndexVersion",
    "2dsphereIndexVersion",
    "bits",
    "min",
    "max",
];

/// The options only a 2dsphere index takes.
const SPHERE_OPTIONS: &[&str] = &["2dsphereIndexVersion"];
/// The options only a 2d index takes.
const FLAT_OPTIONS: &[&str] = &["bits", "min", "max"];

/// The options only a text index takes.
const TEXT_OPTIONS: &[&str] = &["weights", "default_language", "language_override", "textIndexVersion"];

/// The largest `expireAfterSeconds` mongod accepts (its 32-bit limit).
const MAX_EXPIRE_AFTER_SECONDS: i64 = i32::MAX as i64;

/// `createIndexes`.
pub fn create_indexes(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let ns = req.namespace()?;
    crate::exec::views::refuse_view(&ctx.state.storage, &ns)?;
    check_commit_quorum(ctx, req)?;
    let specs = req.array_arg("indexes")?.ok_or_else(|| {
        Error::new(ErrorCode::Location40414, "BSON field 'createIndexes.indexes' is missing but a required field")
    })?;
    if specs.is_empty() {
        return Err(Error::new(ErrorCode::BadValue, "Must specify at least one index to create"));
    }
    let existing = ctx.collection(&ns);
    let default_collation = existing.as_ref().and_then(|c| c.options.get_document("collation").ok().cloned());
    let capped = existing.as_ref().is_some_and(|c| c.capped.is_some());
    let cluster = existing.as_ref().and_then(|c| c.options.get_document("clusteredIndex").ok().cloned());
    let mut validated = Vec::with_capacity(specs.len());
    for spec in specs {
        let RawBsonRef::Document(spec) = spec else {
            return Err(req.wrong_type("indexes", spec, "object"));
        };
        let ValidatedSpec { mut stored, collation } = validate_spec(spec)?;
        if existing.is_none() && clustered::wants_clustered(&stored) {
            return Err(Error::new(
                ErrorCode::Location6100900,
                "Cannot implicitly create a new collection with createIndex 'clustered' option",
            ));
        }
        let context =
            |e: Error| Error::new(e.code(), format!("Error in specification {stored} :: caused by :: {}", e.message()));
        if clustered::check_index(&stored, cluster.as_ref()).map_err(context)? == AgainstCluster::IsTheClusteredIndex {
            // mongod's IndexAlreadyExists: the clustered index is there, whatever the name.
            continue;
        }
        if capped && stored.contains_key("expireAfterSeconds") {
            // The TTL monitor would delete out of insertion order what trimming deletes in it.
            return Err(Error::new(
                ErrorCode::CannotCreateIndex,
                "TTL indexes are not supported for capped collections.",
            ));
        }
        let is_text = stored.get_document("key").is_ok_and(|key| key.contains_key(text::spec::TERM_FIELD));
        if let Some(collation) = collation.unwrap_or_else(|| default_collation.clone()) {
            if is_text {
                // The collection's default collation would apply: mongod refuses it the same.
                return Err(context(Error::new(
                    ErrorCode::CannotCreateIndex,
                    format!("Index type 'text' does not support collation: {collation}"),
                )));
            }
            stored.insert("collation", collation);
        }
        if is_text {
            check_one_text_index(&stored, existing.as_deref(), &validated)?;
        }
        validated.push(stored);
    }
    let outcome = match ctx.txn.as_deref_mut() {
        Some(txn) => ctx.state.storage.create_indexes_in_transaction(txn, &ns, validated)?,
        None => ctx.state.storage.create_indexes(&ns, validated)?,
    };
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let mut reply = doc! { "numIndexesBefore": count(outcome.before), "numIndexesAfter": count(outcome.after) };
    if outcome.before == outcome.after {
        reply.insert("note", "all indexes already exist");
    } else {
        reply.insert("createdCollectionAutomatically", outcome.created_collection);
    }
    Ok(reply)
}

/// mongod's rule of one text index per collection: a text index spec is refused when the
/// collection (or an earlier spec of the same command) has a text index with another key
/// pattern, or another one under the same name (the same spec again is left to the catalog,
/// which reports it as existing, or as a conflict under another name).
fn check_one_text_index(stored: &Document, existing: Option<&Collection>, earlier: &[Document]) -> Result<()> {
    let key_of = |spec: &Document| spec.get_document("key").ok().cloned();
    let name_of = |spec: &Document| spec.get_str("name").unwrap_or_default().to_owned();
    let name = name_of(stored);
    let others = existing
        .into_iter()
        .flat_map(|collection| {
            collection.indexes().iter().filter(|i| i.text.is_some()).map(|i| i.spec.clone()).collect::<Vec<_>>()
        })
        .chain(
            earlier.iter().filter(|spec| key_of(spec).is_some_and(|k| k.contains_key(text::spec::TERM_FIELD))).cloned(),
        );
    // Every text index has the key `{_fts: "text", _ftsx: 1}` (around any other fields): what
    // the text covers is in its options.
    let text_options = |spec: &Document| {
        let mut options: Vec<Option<Bson>> = TEXT_OPTIONS.iter().map(|o| spec.get(*o).cloned()).collect();
        options.push(key_of(spec).map(Bson::Document));
        options
    };
    for other in others {
        let same_spec = without_version(&other) == without_version(stored);
        if same_spec || (text_options(&other) == text_options(stored) && name_of(&other) != name) {
            continue;
        }
        return Err(Error::new(
            ErrorCode::CannotCreateIndex,
            format!("only one text index per collection allowed, found existing text index \"{}\"", name_of(&other)),
        ));
    }
    Ok(())
}

/// An index spec without `v` (which mongod fills in when the request leaves it out).
fn without_version(spec: &Document) -> Document {
    let mut spec = spec.clone();
    spec.remove("v");
    spec
}

/// `commitQuorum`: a standalone refuses it; a replica set of one member builds every index at
/// once on its only member, which satisfies `votingMembers`, `majority` and 0 or 1 members;
/// more members, or a tag mode its configuration does not define, it cannot satisfy.
fn check_commit_quorum(ctx: &RequestCtx<'_>, req: &CommandRequest) -> Result<()> {
    let Some(quorum) = req.get("commitQuorum") else { return Ok(()) };
    if ctx.state.repl.set_name().is_none() {
        return Err(Error::new(ErrorCode::BadValue, "Standalones can't specify commitQuorum"));
    }
    match quorum {
        RawBsonRef::String("votingMembers" | "majority") => Ok(()),
        RawBsonRef::String(mode) => Err(Error::new(
            ErrorCode::UnknownReplWriteConcern,
            format!("No write concern mode named '{mode}' found in replica set configuration"),
        )),
        RawBsonRef::Int32(n) if (0..=1).contains(&n) => Ok(()),
        RawBsonRef::Int64(n) if (0..=1).contains(&n) => Ok(()),
        RawBsonRef::Int32(_) | RawBsonRef::Int64(_) => Err(Error::new(
            ErrorCode::UnsatisfiableCommitQuorum,
            "Not enough data-bearing nodes to satisfy commit quorum",
        )),
        other => Err(req.wrong_type("commitQuorum", other, "string or int")),
    }
}

/// Checks one index specification as mongod's `index_key_validate` does and returns it in
/// the stored shape: `v`, `key`, `name`, then the options as given.
fn validate_spec(spec: &RawDocument) -> Result<ValidatedSpec> {
    let given = Document::try_from(spec).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
    let text = matches!(spec.get("key"), Ok(Some(RawBsonRef::Document(key))) if text::spec::is_text_pattern(key));
    // A text index is checked and stored in mongod's normalized shape (`_fts`/`_ftsx` keys,
    // every text option filled in).
    let shown = match text {
        true => text::spec::normalize(&given).map_err(|e| {
            Error::new(e.code(), format!("Error in specification {given} :: caused by :: {}", e.message()))
        })?,
        false => given,
    };
    let normalized = match text {
        true => Some(RawDocumentBuf::try_from(&shown).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?),
        false => None,
    };
    let spec = normalized.as_deref().unwrap_or(spec);
    let in_spec =
        |code: ErrorCode, why: &str| Error::new(code, format!("Error in specification {shown} :: caused by :: {why}"));
    let geo = match spec.get("key") {
        Ok(Some(RawBsonRef::Document(key))) => {
            KeyPattern::parse(key).ok().and_then(|p| p.geo_field().map(|(_, _, o)| o))
        }
        _ => None,
    };
    for key in shown.keys() {
        let text_only = (!text && TEXT_OPTIONS.contains(&key.as_str()))
            || (geo != Some(KeyOrder::Sphere) && SPHERE_OPTIONS.contains(&key.as_str()))
            || (geo != Some(KeyOrder::Flat) && FLAT_OPTIONS.contains(&key.as_str()));
        if key != "key" && key != "name" && (!INDEX_OPTIONS.contains(&key.as_str()) || text_only) {
            return Err(Error::new(
                ErrorCode::InvalidIndexSpecificationOption,
                format!("The field '{key}' is not valid for an index specification. Specification: {shown}"),
            ));
        }
    }
    let key = match spec.get("key").ok().flatten() {
        Some(RawBsonRef::Document(key)) => key,
        Some(_) => return Err(in_spec(ErrorCode::TypeMismatch, "The field 'key' must be an object")),
        None => {
            return Err(in_spec(
                ErrorCode::FailedToParse,
                "The 'key' field is a required property of an index specification",
            ));
        }
    };
    let pattern = KeyPattern::parse(key).map_err(|e| in_spec(e.code(), e.message()))?;
    let name = match shown.get("name") {
        Some(Bson::String(name)) if name.is_empty() => {
            return Err(in_spec(ErrorCode::CannotCreateIndex, "index name cannot be empty"));
        }
        Some(Bson::String(name)) if name == "*" => {
            return Err(in_spec(ErrorCode::BadValue, "The index name '*' is not valid."));
        }
        Some(Bson::String(name)) => name.clone(),
        Some(_) => return Err(in_spec(ErrorCode::TypeMismatch, "The field 'name' must be a string")),
        None => {
            return Err(in_spec(
                ErrorCode::FailedToParse,
                "The 'name' field is a required property of an index specification",
            ));
        }
    };
    clustered::check_clustered_option(&shown)?;
    let is_id_index = pattern.spec() == &doc! { "_id": 1 };
    let version = match shown.get("v") {
        None => 2,
        Some(Bson::Int32(v @ (1 | 2))) => *v,
        Some(Bson::Int64(v @ (1 | 2))) => i32::try_from(*v).unwrap_or(2),
        Some(Bson::Double(v)) if *v == 1.0 || *v == 2.0 => *v as i32,
        Some(other) => {
            return Err(in_spec(ErrorCode::CannotCreateIndex, &format!("Invalid index specification version {other}")));
        }
    };
    let flag = |field: &str| -> Result<bool> {
        match shown.get(field) {
            None => Ok(false),
            Some(Bson::Boolean(b)) => Ok(*b),
            Some(Bson::Int32(n)) => Ok(*n != 0),
            Some(Bson::Int64(n)) => Ok(*n != 0),
            Some(Bson::Double(n)) => Ok(*n != 0.0),
            Some(_) => Err(in_spec(ErrorCode::TypeMismatch, &format!("The field '{field}' must be a boolean"))),
        }
    };
    // mongod keeps these as given (listIndexes echoes them) once they read as booleans;
    // `background` is a creation-time option and `dropDups` has been ignored since 3.0.
    for field in ["unique", "sparse", "background", "dropDups"] {
        if let Some(value) = shown.get(field)
            && !matches!(
                value,
                Bson::Boolean(_) | Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_)
            )
        {
            // mongod's message, with its unclosed quote.
            return Err(in_spec(
                ErrorCode::TypeMismatch,
                &format!("The field '{field} has value {field}: {value}, which is not convertible to bool"),
            ));
        }
    }
    let unique = flag("unique")?;
    let sparse = flag("sparse")?;
    let hidden = flag("hidden")?;
    check_wildcard(&shown, &pattern, unique, sparse).map_err(|(code, why)| in_spec(code, &why))?;
    if unique && pattern.is_hashed() {
        return Err(in_spec(
            ErrorCode::Location16764,
            "Currently hashed indexes cannot guarantee uniqueness. Use a regular index.",
        ));
    }
    if hidden && is_id_index {
        return Err(in_spec(ErrorCode::BadValue, "can't hide _id index"));
    }
    if let Some(partial) = shown.get("partialFilterExpression") {
        let Bson::Document(partial) = partial else {
            return Err(in_spec(ErrorCode::TypeMismatch, "The field 'partialFilterExpression' must be an object"));
        };
        if sparse {
            return Err(in_spec(
                ErrorCode::CannotCreateIndex,
                "cannot mix \"partialFilterExpression\" and \"sparse\" options",
            ));
        }
        let raw = RawDocumentBuf::try_from(partial).map_err(|e| Error::new(ErrorCode::BadValue, e.to_string()))?;
        Filter::parse(&raw).map_err(|e| in_spec(e.code(), e.message()))?;
    }
    if let Some(seconds) = shown.get("expireAfterSeconds") {
        expire_after_seconds(seconds).map_err(|why| in_spec(ErrorCode::CannotCreateIndex, &why))?;
        if is_id_index {
            return Err(Error::new(
                ErrorCode::InvalidIndexSpecificationOption,
                format!(
                    "The field 'expireAfterSeconds' is not valid for an _id index specification. Specification: {shown}"
                ),
            ));
        }
        if pattern.fields().len() > 1 {
            return Err(in_spec(
                ErrorCode::CannotCreateIndex,
                "TTL indexes are single-field indexes, compound indexes do not support TTL",
            ));
        }
    }
    // The collation as mongod stores it: every field filled in, nothing for `simple`; a spec
    // without one takes the collection's default.
    let collation = match spec.get("collation").ok().flatten() {
        Some(RawBsonRef::Document(collation)) => {
            let parsed = Collation::parse(collation).map_err(|e| in_spec(e.code(), e.message()))?;
            if text && let Some(collation) = &parsed {
                return Err(in_spec(
                    ErrorCode::CannotCreateIndex,
                    &format!("Index type 'text' does not support collation: {}", collation.spec().to_document()),
                ));
            }
            Some(parsed.map(|c| c.spec().to_document()))
        }
        Some(_) => return Err(in_spec(ErrorCode::TypeMismatch, "The field 'collation' must be an object")),
        None => None,
    };
    let mut stored = doc! { "v": version, "key": pattern.spec().clone(), "name": name };
    for (field, value) in &shown {
        if !matches!(field.as_str(), "v" | "key" | "name" | "ns" | "collation") {
            stored.insert(field.clone(), value.clone());
        }
    }
    match geo {
        // mongod records the version of the 2dsphere key format it builds.
        Some(KeyOrder::Sphere) => match stored.get("2dsphereIndexVersion") {
            None => _ = stored.insert("2dsphereIndexVersion", 3),
            Some(Bson::Int32(3) | Bson::Int64(3)) => {}
            Some(Bson::Double(v)) if *v == 3.0 => {}
            Some(other) => {
                return Err(in_spec(
                    ErrorCode::CannotCreateIndex,
                    &format!("unsupported 2dsphereIndexVersion {other}; only 3 is built"),
                ));
            }
        },
        Some(KeyOrder::Flat) => {
            crate::storage::index::FlatGrid::of_spec(&stored).map_err(|e| in_spec(e.code(), e.message()))?;
        }
        _ => {}
    }
    Ok(ValidatedSpec { stored, collation })
}

/// mongod's checks of a wildcard index's options: a `wildcardProjection` only on one, never
/// sparse, unique or TTL.
fn check_wildcard(
    shown: &Document,
    pattern: &KeyPattern,
    unique: bool,
    sparse: bool,
) -> std::result::Result<(), (ErrorCode, String)> {
    if let Some(projection) = shown.get("wildcardProjection") {
        let Bson::Document(projection) = projection else {
            return Err((
                ErrorCode::TypeMismatch,
                format!("The field 'wildcardProjection' must be a non-empty object, but got {}", type_of(projection)),
            ));
        };
        pattern.clone().with_wildcard_projection(projection).map_err(|e| (e.code(), e.message().to_owned()))?;
    }
    if pattern.wildcard().is_none() {
        return Ok(());
    }
    let refused = if sparse {
        "does not support the sparse option"
    } else if unique {
        "does not support the unique option"
    } else if shown.contains_key("expireAfterSeconds") {
        "cannot be a TTL index"
    } else {
        return Ok(());
    };
    Err((ErrorCode::CannotCreateIndex, format!("Index type 'wildcard' {refused}")))
}

/// A checked index specification, and its collation: `None` when the spec has none (the
/// collection's default applies), `Some(None)` for an explicit `simple`.
struct ValidatedSpec {
    stored: Document,
    collation: Option<Option<Document>>,
}

/// Reads `expireAfterSeconds`: a number from 0 to mongod's 32-bit limit.
fn expire_after_seconds(value: &Bson) -> std::result::Result<i64, String> {
    let seconds = match value {
        Bson::Int32(n) => i64::from(*n),
        Bson::Int64(n) => *n,
        Bson::Double(n) if n.is_finite() => *n as i64,
        other => {
            return Err(format!(
                "TTL index 'expireAfterSeconds' option must be numeric, but received a type of '{}'",
                type_of(other)
            ));
        }
    };
    if !(0..=MAX_EXPIRE_AFTER_SECONDS).contains(&seconds) {
        return Err(format!(
            "TTL index 'expireAfterSeconds' option must be within an acceptable range, try a lower number. \
             expireAfterSeconds: {seconds}"
        ));
    }
    Ok(seconds)
}

fn type_of(value: &Bson) -> &'static str {
    crate::query::type_name(value.element_type())
}

/// `listIndexes`: a cursor over the collection's index specifications.
pub fn list_indexes(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let ns = req.namespace()?;
    crate::exec::views::refuse_view(&ctx.state.storage, &ns)?;
    let collection = ctx.state.storage.existing_collection(&ns)?;
    let specs: Vec<Document> = collection.indexes().iter().map(|index| index.spec.clone()).collect();
    super::listing::first_batch(ctx, req, format!("{}.$cmd.listIndexes.{}", ns.db, ns.coll), specs)
}

/// `dropIndexes` (alias `deleteIndexes`): by name, names, key pattern or `"*"`.
pub fn drop_indexes(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let ns = req.namespace()?;
    crate::exec::views::refuse_view(&ctx.state.storage, &ns)?;
    let selector = match req.get("index") {
        Some(RawBsonRef::String("*")) => IndexSelector::All,
        Some(RawBsonRef::String(name)) => IndexSelector::Names(vec![name.to_owned()]),
        Some(RawBsonRef::Document(pattern)) => IndexSelector::KeyPattern(
            Document::try_from(pattern).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?,
        ),
        Some(RawBsonRef::Array(names)) => {
            let mut list = Vec::new();
            for name in names {
                match name.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))? {
                    RawBsonRef::String("*") => {
                        return Err(Error::new(
                            ErrorCode::BadValue,
                            "'*' is not a valid index name when dropping multiple indexes",
                        ));
                    }
                    RawBsonRef::String(name) => list.push(name.to_owned()),
                    other => return Err(req.wrong_type("index", other, "string")),
                }
            }
            IndexSelector::Names(list)
        }
        Some(other) => return Err(req.wrong_type("index", other, "string, array or object")),
        None => {
            return Err(Error::new(
                ErrorCode::Location40414,
                "BSON field 'dropIndexes.index' is missing but a required field",
            ));
        }
    };
    let before = ctx.state.storage.drop_indexes(&ns, &selector)?;
    Ok(doc! { "nIndexesWas": i32::try_from(before).unwrap_or(i32::MAX) })
}

/// `collMod`'s `index: {name | keyPattern, hidden, expireAfterSeconds}`: returns the reply
/// fields (`hidden_old`, `hidden_new`, ...).
pub fn modify_index(ctx: &RequestCtx<'_>, collection: &Collection, spec: &RawDocument) -> Result<Document> {
    let spec = Document::try_from(spec).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
    let name = match (spec.get("name"), spec.get("keyPattern")) {
        (Some(Bson::String(name)), None) => name.clone(),
        (None, Some(Bson::Document(pattern))) => collection
            .indexes()
            .iter()
            .find(|i| i.pattern.spec() == pattern)
            .map(|i| i.name.clone())
            .ok_or_else(|| {
                Error::new(ErrorCode::IndexNotFound, format!("cannot find index {pattern} for ns {}", collection.ns))
            })?,
        _ => {
            return Err(Error::new(
                ErrorCode::InvalidOptions,
                "must specify either index name or key pattern for collMod",
            ));
        }
    };
    let hidden = match spec.get("hidden") {
        None => None,
        Some(Bson::Boolean(b)) => Some(*b),
        Some(_) => return Err(Error::new(ErrorCode::TypeMismatch, "BSON field 'hidden' must be a bool")),
    };
    let expire = spec
        .get("expireAfterSeconds")
        .map(|v| expire_after_seconds(v).map_err(|why| Error::new(ErrorCode::InvalidOptions, why)))
        .transpose()?;
    if hidden.is_none() && expire.is_none() {
        return Err(Error::new(ErrorCode::InvalidOptions, "no expireAfterSeconds or hidden field"));
    }
    let changes = ctx.state.storage.modify_index(collection, &name, hidden, expire)?;
    let mut reply = Document::new();
    for (option, old, new) in changes {
        reply.insert(format!("{option}_old"), old);
        reply.insert(format!("{option}_new"), new);
    }
    Ok(reply)
}

/// `$indexStats` as the first stage: one document per index with its name, key, host, the
/// queries that scanned it since it was created or the server started (`accesses`; `_id`
/// lookups by value do not scan the `_id_` index here and are not counted), and its spec.
///
/// # Errors
/// 40415 for an argument other than `{}`.
pub(super) fn index_stats_stage(
    ctx: &RequestCtx<'_>,
    collection: Option<&std::sync::Arc<crate::storage::Collection>>,
    stage: &bson::RawDocument,
) -> Result<crate::state::cursors::DocumentStream> {
    match stage.get("$indexStats") {
        Ok(Some(RawBsonRef::Document(spec))) if spec.is_empty() => {}
        Ok(Some(RawBsonRef::Document(spec))) => {
            let field = spec
                .iter()
                .next()
                .and_then(std::result::Result::ok)
                .map(|(k, _)| k.as_str().to_owned())
                .unwrap_or_default();
            return Err(Error::new(
                ErrorCode::Location40415,
                format!("BSON field '$indexStats.{field}' is an unknown field."),
            ));
        }
        _ => return Err(Error::new(ErrorCode::TypeMismatch, "$indexStats must take a nested object")),
    }
    let host = format!("{}:{}", crate::host::hostname(), ctx.state.port());
    let mut documents = Vec::new();
    for index in collection.map(|c| c.indexes()).unwrap_or_default().iter() {
        let (ops, since) = index.accesses();
        let document = doc! {
            "name": &index.name,
            "key": index.spec.get_document("key").cloned().unwrap_or_default(),
            "host": &host,
            "accesses": { "ops": i64::try_from(ops).unwrap_or(i64::MAX), "since": since },
            "spec": index.spec.clone(),
        };
        documents.push(crate::exec::pipeline::raw(&document));
    }
    Ok(Box::new(documents.into_iter()))
}
