//! Time-series collections, as mongod 7.0 builds them: `create`'s `timeseries` option
//! (checked in mongod's order with its errors) makes a bucket collection
//! `system.buckets.<name>` (clustered by `_id`, with mongod's bucket validator) and a view
//! `<name>` over it whose one stage, `$_internalUnpackBucket`, unpacks buckets into
//! measurements; reads of the view therefore work as reads of any view. Inserts into the view
//! are bucketed here; `listCollections` lists the view as `type: "timeseries"`.

use std::sync::Arc;

use bson::{Bson, Document, RawBsonRef, RawDocument, doc};

use super::clustered::{safe_int64, wrong_type};
use super::options::is_generic_argument;
use super::{CommandRequest, RequestCtx};
use crate::error::{Error, ErrorCode, Result};
use crate::exec::views::{self, ViewDefinition};
use crate::query::timeseries::{BUCKETS_PREFIX, TimeseriesSpec};
use crate::storage::{Collection, Namespace, Storage};

/// The options `timeseries` may come with (mongod's `kAllowedCollectionCreationOptions`).
const ALLOWED_WITH_TIMESERIES: &[&str] =
    &["timeseries", "expireAfterSeconds", "storageEngine", "indexOptionDefaults", "collation", "temp"];

/// The largest `bucketMaxSpanSeconds` and `bucketRoundingSeconds` (a year, as mongod's IDL).
const MAX_BUCKET_SECONDS: i64 = 31_536_000;

/// mongod's granularities: name, `bucketMaxSpanSeconds`, `bucketRoundingSeconds`.
const GRANULARITIES: &[(&str, i64, i64)] =
    &[("seconds", 3_600, 60), ("minutes", 86_400, 3_600), ("hours", 2_592_000, 86_400)];

/// The bucket collection of the time-series collection `ns`.
pub fn buckets_namespace(ns: &Namespace) -> Namespace {
    Namespace { db: ns.db.clone(), coll: format!("{BUCKETS_PREFIX}{}", ns.coll) }
}

/// `create`'s `timeseries` option, checked as mongod's IDL parser, `create` command and
/// `validateAndSetBucketingParameters` check it: the canonical options to store
/// (`{timeField, metaField?, granularity?, bucketRoundingSeconds, bucketMaxSpanSeconds}`), or
/// `None` without the option.
///
/// # Errors
/// 14 TypeMismatch, 40414, 40415, 2 BadValue (granularity), 51024 (range), then 72
/// InvalidOptions for an option not allowed with `timeseries`, dotted or clashing fields and
/// bucketing parameters that do not agree.
pub fn parse_create(req: &CommandRequest, ns: &Namespace) -> Result<Option<Document>> {
    let Some(value) = req.get("timeseries") else { return Ok(None) };
    let RawBsonRef::Document(given) = value else {
        return Err(wrong_type("create.timeseries", value, "'object'", false));
    };
    let given = Given::parse(given)?;
    for element in req.body().iter().skip(1) {
        let (key, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        let key = key.as_str();
        if is_generic_argument(key) || ALLOWED_WITH_TIMESERIES.contains(&key) {
            continue;
        }
        // `capped: false` is the default, accepted as mongod does.
        if key == "capped" && matches!(value, RawBsonRef::Boolean(false)) {
            continue;
        }
        return Err(Error::new(ErrorCode::InvalidOptions, format!("{ns}: 'timeseries' is not allowed with '{key}'")));
    }
    let top_level = |field: &str| {
        Error::new(
            ErrorCode::InvalidOptions,
            format!("{ns}: '{field}' must be a top-level field and not contain a '.'"),
        )
    };
    if given.time_field.contains('.') {
        return Err(top_level("timeField"));
    }
    if let Some(meta) = &given.meta_field {
        if meta == "_id" {
            return Err(Error::new(ErrorCode::InvalidOptions, "'metaField' cannot be \"_id\""));
        }
        if *meta == given.time_field {
            return Err(Error::new(ErrorCode::InvalidOptions, "'metaField' cannot be the same as 'timeField'"));
        }
        if meta.contains('.') {
            return Err(top_level("metaField"));
        }
    }
    given.canonical().map(Some)
}

/// A `timeseries` option as given.
#[derive(Debug, Default)]
struct Given {
    time_field: String,
    meta_field: Option<String>,
    granularity: Option<&'static (&'static str, i64, i64)>,
    max_span: Option<i64>,
    rounding: Option<i64>,
}

impl Given {
    /// Parses the fields as mongod's IDL does.
    fn parse(spec: &RawDocument) -> Result<Self> {
        let mut given = Self::default();
        let mut time_field = None;
        for element in spec {
            let (field, value) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
            let path = format!("create.timeseries.{field}");
            match field.as_str() {
                "timeField" | "metaField" => {
                    let RawBsonRef::String(text) = value else {
                        return Err(wrong_type(&path, value, "'string'", false));
                    };
                    if field.as_str() == "timeField" {
                        time_field = Some(text.to_owned());
                    } else {
                        given.meta_field = Some(text.to_owned());
                    }
                }
                "granularity" => {
                    let RawBsonRef::String(text) = value else {
                        return Err(wrong_type(&path, value, "'string'", false));
                    };
                    given.granularity =
                        Some(GRANULARITIES.iter().find(|(name, ..)| *name == text).ok_or_else(|| {
                            Error::new(
                                ErrorCode::BadValue,
                                format!("Enumeration value '{text}' for field '{path}' is not a valid value."),
                            )
                        })?);
                }
                "bucketMaxSpanSeconds" | "bucketRoundingSeconds" => {
                    let seconds = safe_int64(value)
                        .ok_or_else(|| wrong_type(&path, value, "'[long, int, decimal, double]'", true))?;
                    let bound = if seconds < 1 {
                        Some(">= 1")
                    } else if seconds > MAX_BUCKET_SECONDS {
                        Some("<= 31536000")
                    } else {
                        None
                    };
                    if let Some(bound) = bound {
                        return Err(Error::new(
                            ErrorCode::Location51024,
                            format!("BSON field '{field}' value must be {bound}, actual value '{seconds}'"),
                        ));
                    }
                    if field.as_str() == "bucketMaxSpanSeconds" {
                        given.max_span = Some(seconds);
                    } else {
                        given.rounding = Some(seconds);
                    }
                }
                _ => {
                    return Err(Error::new(
                        ErrorCode::Location40415,
                        format!("BSON field '{path}' is an unknown field."),
                    ));
                }
            }
        }
        given.time_field = time_field.ok_or_else(|| {
            Error::new(
                ErrorCode::Location40414,
                "BSON field 'create.timeseries.timeField' is missing but a required field",
            )
        })?;
        Ok(given)
    }

    /// mongod's `validateAndSetBucketingParameters`, then the options as mongod stores them.
    fn canonical(&self) -> Result<Document> {
        let (granularity, max_span, rounding) = match (self.granularity, self.max_span, self.rounding) {
            (Some(&(name, span, round)), max_span, rounding) => {
                if max_span.is_some_and(|given| given != span) {
                    return Err(Error::new(
                        ErrorCode::InvalidOptions,
                        format!(
                            "Timeseries 'bucketMaxSpanSeconds' is not configurable to a value other than the default \
                             of {span} for the provided granularity"
                        ),
                    ));
                }
                if rounding.is_some_and(|given| given != round) {
                    return Err(Error::new(
                        ErrorCode::InvalidOptions,
                        format!(
                            "Timeseries 'bucketRoundingSeconds' is not configurable to a value other than the \
                             default of {round} for the provided granularity"
                        ),
                    ));
                }
                (Some(name), span, round)
            }
            (None, Some(span), Some(round)) => {
                if span != round {
                    return Err(Error::new(
                        ErrorCode::InvalidOptions,
                        "Timeseries 'bucketRoundingSeconds' needs to be equal to 'bucketMaxSpanSeconds'",
                    ));
                }
                (None, span, round)
            }
            (None, Some(_), None) | (None, None, Some(_)) => {
                return Err(Error::new(
                    ErrorCode::InvalidOptions,
                    "Timeseries 'bucketMaxSpanSeconds' and 'bucketRoundingSeconds' need to be set alongside each other",
                ));
            }
            (None, None, None) => (Some("seconds"), 3_600, 60),
        };
        let mut options = doc! { "timeField": &self.time_field };
        if let Some(meta) = &self.meta_field {
            options.insert("metaField", meta);
        }
        if let Some(granularity) = granularity {
            options.insert("granularity", granularity);
        }
        options.insert("bucketRoundingSeconds", i32::try_from(rounding).unwrap_or(i32::MAX));
        options.insert("bucketMaxSpanSeconds", i32::try_from(max_span).unwrap_or(i32::MAX));
        Ok(options)
    }
}

/// The validator mongod gives a bucket collection: the structure of a bucket.
fn bucket_validator(time_field: &str) -> Document {
    let bound = doc! {
        "bsonType": "object",
        "required": [time_field],
        "properties": { time_field: { "bsonType": "date" } },
    };
    doc! {
        "$jsonSchema": {
            "bsonType": "object",
            "required": ["_id", "control", "data"],
            "properties": {
                "_id": { "bsonType": "objectId" },
                "control": {
                    "bsonType": "object",
                    "required": ["version", "min", "max"],
                    "properties": {
                        "version": { "bsonType": "number" },
                        "min": bound.clone(),
                        "max": bound,
                        "closed": { "bsonType": "bool" },
                        "count": { "bsonType": "number", "minimum": 1 },
                    },
                    "additionalProperties": false,
                },
                "data": { "bsonType": "object" },
                "meta": {},
            },
            "additionalProperties": false,
        }
    }
}

/// `create` of a time-series collection `ns` with checked `timeseries` options: its bucket
/// collection, then its view. Creating it again with the same options succeeds, as mongod's.
///
/// # Errors
/// 48 NamespaceExists when a collection, a view or a time-series collection with other
/// options has the name; the collation's errors; storage errors.
pub fn create(ctx: &RequestCtx<'_>, req: &CommandRequest, ns: &Namespace, timeseries: Document) -> Result<Document> {
    let expire_after_seconds = match req.get("expireAfterSeconds") {
        None => None,
        Some(value) => {
            let seconds = safe_int64(value).ok_or_else(|| {
                wrong_type("create.expireAfterSeconds", value, "'[long, int, decimal, double]'", true)
            })?;
            super::clustered::check_expire_after_seconds(seconds)?;
            Some(seconds)
        }
    };
    let mut options = doc! {
        "validator": bucket_validator(timeseries.get_str("timeField").unwrap_or_default()),
        "clusteredIndex": true,
        "timeseries": timeseries.clone(),
    };
    let collation = super::collation::resolve(req.get("collation"), "create.collation", None)?
        .map(|collation| collation.spec().to_document());
    if let Some(collation) = &collation {
        options.insert("collation", collation.clone());
    }
    if let Some(seconds) = expire_after_seconds {
        options.insert("expireAfterSeconds", Bson::Int64(seconds));
    }
    let storage = &ctx.state.storage;
    if let Some((existing, _)) = buckets_of(storage, ns)? {
        if existing.options == options {
            return Ok(Document::new());
        }
        return Err(Error::new(
            ErrorCode::NamespaceExists,
            format!("A timeseries collection already exists. NS: {ns}"),
        ));
    }
    if storage.collection(ns).is_some() {
        return Err(Error::new(ErrorCode::NamespaceExists, format!("Collection {ns} already exists.")));
    }
    if views::definition(storage, ns)?.is_some() {
        return Err(Error::new(ErrorCode::NamespaceExists, format!("A view already exists. NS: {ns}")));
    }
    let buckets = buckets_namespace(ns);
    if storage.collection(&buckets).is_some() {
        return Err(Error::new(ErrorCode::NamespaceExists, format!("Collection {buckets} already exists.")));
    }
    storage.create_collection(&buckets, options)?;
    let mut stage = doc! { "timeField": timeseries.get_str("timeField").unwrap_or_default() };
    if let Ok(meta) = timeseries.get_str("metaField") {
        stage.insert("metaField", meta);
    }
    stage.insert("bucketMaxSpanSeconds", timeseries.get("bucketMaxSpanSeconds").cloned().unwrap_or(Bson::Int32(3600)));
    let view = ViewDefinition {
        ns: ns.clone(),
        view_on: buckets.coll.clone(),
        pipeline: vec![crate::exec::pipeline::raw(&doc! { "$_internalUnpackBucket": stage })?],
        collation,
    };
    if let Err(error) = views::store(storage, &view, false) {
        // No bucket collection without its view.
        storage.drop_collection(&buckets)?;
        return Err(error);
    }
    Ok(Document::new())
}

/// The bucket collection and bucketing spec of `ns` when it is a time-series collection (a
/// view over a `system.buckets` collection that has `timeseries` options).
///
/// # Errors
/// Storage errors.
pub fn buckets_of(storage: &Storage, ns: &Namespace) -> Result<Option<(Arc<Collection>, TimeseriesSpec)>> {
    // A collection of that name is never a time-series collection: writes to ordinary
    // collections pay for no view lookup.
    if ns.coll.starts_with("system.") || storage.collection(ns).is_some() {
        return Ok(None);
    }
    let Some(view) = views::definition(storage, ns)? else { return Ok(None) };
    let buckets = buckets_namespace(ns);
    if view.view_on != buckets.coll {
        return Ok(None);
    }
    let Some(collection) = storage.collection(&buckets) else { return Ok(None) };
    let Some(spec) = collection.options.get_document("timeseries").ok().and_then(TimeseriesSpec::from_options) else {
        return Ok(None);
    };
    Ok(Some((collection, spec)))
}

/// `listCollections`' entry of the time-series collection whose bucket collection is
/// `buckets`: `{name, type: "timeseries", options: {timeseries, expireAfterSeconds?,
/// collation?}, info: {readOnly: false}}`, as mongod lists it (no `uuid`).
pub fn list_entry(name: &str, buckets: &Collection) -> Document {
    let options: Document = buckets
        .options
        .iter()
        .filter(|(key, _)| ALLOWED_WITH_TIMESERIES.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    doc! { "name": name, "type": "timeseries", "options": options, "info": { "readOnly": false } }
}

/// An `insert` into the time-series collection whose buckets are `buckets`: each measurement
/// is checked (its timeField must be a date: 2 BadValue, a write error at its index); with
/// `ordered`, the measurements before the first failure are stored, else every valid one; the
/// stored ones are bucketed and written in one batch, so nothing is half-written. A retryable
/// write (`retry`) skips the statements it already ran and records the others in the same
/// batch. Returns how many were inserted (with those a retry skipped), the write errors and
/// the batch's durability ticket.
///
/// # Errors
/// Storage errors (the batch is not written).
pub fn insert(
    storage: &Storage,
    (buckets, spec): (&Arc<Collection>, &TimeseriesSpec),
    documents: &[&RawDocument],
    ordered: bool,
    mut retry: Option<&mut crate::exec::retryable::RetryableWrite<'_>>,
) -> Result<(i64, Vec<Document>, Option<crate::storage::DurabilityTicket>)> {
    let mut accepted = Vec::with_capacity(documents.len());
    let mut errors = Vec::new();
    let mut done_before = 0i64;
    for (index, document) in documents.iter().enumerate() {
        if retry.as_mut().is_some_and(|retry| retry.previous(index).is_some()) {
            done_before += 1;
            continue;
        }
        let checked = crate::query::timeseries::measurement_time(spec, document)
            .and_then(|_| crate::exec::insert::prepare_for_insert(document));
        match checked {
            Ok(measurement) => accepted.push((index, measurement)),
            Err(error) => {
                errors.push(error.to_write_error(index));
                if ordered {
                    break;
                }
            }
        }
    }
    let measurements: Vec<&RawDocument> = accepted.iter().map(|(_, m)| m.as_ref()).collect();
    // Read under the buckets' write lock, so the reopened buckets are the latest.
    let mut writer = storage.writer(buckets)?;
    let stored = reopen_candidates(storage, buckets, spec, &measurements)?;
    for (replaces, bucket) in crate::query::timeseries::fill_buckets(spec, &stored, &measurements)? {
        let bucket = crate::exec::pipeline::raw(&bucket)?;
        if replaces {
            writer.replace(bucket)?;
        } else {
            writer.insert(bucket)?;
        }
    }
    if let Some(retry) = retry {
        for (index, _) in &accepted {
            retry.record(&mut writer, *index, &bson::RawDocumentBuf::new())?;
        }
        retry.before_commit()?;
    }
    let ticket = writer.commit()?;
    Ok((done_before + i64::try_from(accepted.len()).unwrap_or(i64::MAX), errors, ticket))
}

/// The most stored buckets one insert considers reopening: beyond them, new buckets open.
const MAX_REOPEN_CANDIDATES: usize = 1000;

/// The stored buckets `measurements` might join: those whose `_id` time (their rounded
/// minimum) lies within one bucket span before the earliest measurement, up to the latest.
///
/// # Errors
/// Storage errors.
fn reopen_candidates(
    storage: &Storage,
    buckets: &Collection,
    spec: &TimeseriesSpec,
    measurements: &[&RawDocument],
) -> Result<Vec<bson::RawDocumentBuf>> {
    let times: Vec<i64> = measurements
        .iter()
        .filter_map(|m| crate::query::timeseries::measurement_time(spec, m).ok())
        .map(|t| t.timestamp_millis().div_euclid(1000))
        .collect();
    let (Some(earliest), Some(latest)) = (times.iter().min(), times.iter().max()) else { return Ok(Vec::new()) };
    let indexes = buckets.indexes();
    let Some(id_index) = indexes.iter().find(|index| index.is_id_index()) else { return Ok(Vec::new()) };
    let mut bounds = crate::query::bounds::IndexBounds::all(&id_index.pattern);
    bounds.fields = vec![vec![crate::query::bounds::Interval {
        start: bson::RawBson::ObjectId(crate::query::timeseries::id_bound(earliest - spec.max_span_secs, 0)),
        start_inclusive: true,
        end: bson::RawBson::ObjectId(crate::query::timeseries::id_bound(*latest, 0xff)),
        end_inclusive: true,
    }]];
    let view = storage.snapshot();
    let mut out = Vec::new();
    for entry in view.index_scan(buckets, id_index, &bounds, crate::storage::Direction::Forward, None) {
        if let Some(bucket) = view.fetch(buckets, entry?)? {
            out.push(bucket);
        }
        if out.len() >= MAX_REOPEN_CANDIDATES {
            break;
        }
    }
    Ok(out)
}

/// 238 NotImplemented for a statement field this server does not apply on a time-series
/// collection (`allowed`: those it does), so no option is taken and ignored.
///
/// # Errors
/// That error, naming the field.
pub fn check_statement_fields(statement: &RawDocument, command: &str, allowed: &[&str]) -> Result<()> {
    for element in statement {
        let (key, _) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        if !allowed.contains(&key.as_str()) {
            return Err(Error::new(
                ErrorCode::NotImplemented,
                format!("'{}' in a {command} of a time-series collection is not built in this server", key.as_str()),
            ));
        }
    }
    Ok(())
}

/// `collMod` of a time-series collection: `expireAfterSeconds` is built (applied to its
/// buckets); any other option answers 238.
///
/// # Errors
/// 238 NotImplemented naming the option.
pub fn check_coll_mod(req: &CommandRequest) -> Result<()> {
    for element in req.body().iter().skip(1) {
        let (key, _) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        if is_generic_argument(key.as_str()) || key.as_str() == "expireAfterSeconds" {
            continue;
        }
        return Err(Error::new(
            ErrorCode::NotImplemented,
            format!("collMod '{}' of a time-series collection is not built in this server", key.as_str()),
        ));
    }
    Ok(())
}

/// `collStats` (and `$collStats`' `storageStats`) of the time-series collection `ns`: its
/// buckets' storage statistics under its name, without `count` and `avgObjSize` (which would
/// count buckets), and a `timeseries` document with what this server counts: `bucketsNs`,
/// `bucketCount` and `avgBucketSize`.
///
/// # Errors
/// Storage errors.
pub fn storage_stats(storage: &Storage, ns: &Namespace, buckets: &Collection, scale: u64) -> Result<Document> {
    let mut stats = super::collections::storage_stats(storage, buckets, scale)?;
    let (bytes, count) = storage.collection_size(buckets)?;
    stats.insert("ns", ns.full());
    stats.remove("count");
    stats.remove("avgObjSize");
    let to_long = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    stats.insert(
        "timeseries",
        doc! {
            "bucketsNs": buckets.ns.full(),
            "bucketCount": to_long(count),
            "avgBucketSize": bytes.checked_div(count).map_or(0, to_long),
        },
    );
    Ok(stats)
}

/// Deletes the measurements `filter` (parsed from `query`) matches, as mongod 7.0 allows on a
/// time-series collection (any filter): under the bucket collection's write lock, each bucket
/// the pushed-down filter can match is unpacked; a bucket with matches is removed, and its
/// other measurements are written back into new buckets, all in one batch. Returns how many
/// measurements went and the batch's durability ticket.
///
/// # Errors
/// Corrupt buckets; storage errors (nothing is written then).
pub fn delete(
    storage: &Storage,
    (buckets, spec): (&Arc<Collection>, &TimeseriesSpec),
    query: &RawDocument,
    filter: &crate::query::Filter,
) -> Result<(i64, Option<crate::storage::DurabilityTicket>)> {
    let pushed = Document::try_from(query)
        .ok()
        .and_then(|query| crate::query::timeseries::bucket_filter(spec, &query))
        .map(|pushed| crate::exec::pipeline::raw(&pushed).and_then(|raw| Ok(crate::query::Filter::parse(&raw)?)))
        .transpose()?;
    let mut writer = storage.writer(buckets)?;
    let mut deleted = 0i64;
    let mut rewrite = Vec::new();
    for bucket in storage.snapshot().scan(buckets, crate::storage::Direction::Forward) {
        let bucket = bucket?;
        if pushed.as_ref().is_some_and(|pushed| !pushed.matches(&bucket)) {
            continue;
        }
        let measurements = crate::query::timeseries::unpack(spec, &bucket)?;
        let before = measurements.len();
        let kept: Vec<_> = measurements.into_iter().filter(|m| !filter.matches(m)).collect();
        if kept.len() == before {
            continue;
        }
        deleted += i64::try_from(before - kept.len()).unwrap_or(i64::MAX);
        let id = bucket
            .get("_id")
            .ok()
            .flatten()
            .ok_or_else(|| Error::new(ErrorCode::InternalError, "invalid time-series bucket: no _id"))?;
        writer.delete(id)?;
        rewrite.extend(kept);
    }
    let kept: Vec<&RawDocument> = rewrite.iter().map(|m| m.as_ref()).collect();
    for bucket in crate::query::timeseries::build_buckets(spec, &kept)? {
        writer.insert(crate::exec::pipeline::raw(&bucket)?)?;
    }
    Ok((deleted, writer.commit()?))
}

/// 72 InvalidOptions with `message`.
fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidOptions, message)
}

/// `path` with the metaField `meta` renamed to the buckets' `meta` (`m.a` becomes `meta.a`),
/// or `None` when `path` is not the metaField or under it.
fn meta_path(path: &str, meta: &str) -> Option<String> {
    if path == meta {
        return Some("meta".to_owned());
    }
    path.strip_prefix(meta).and_then(|rest| rest.strip_prefix('.')).map(|rest| format!("meta.{rest}"))
}

/// A time-series update's query as a query on buckets, mongod 7.0's `translateQuery`: every
/// field it names must be the metaField (or under it), through `$and`, `$or` and `$nor`.
fn translate_query(query: &Document, meta: &str) -> Result<Document> {
    let not_meta = || {
        invalid(format!(
            "Cannot perform an update or delete on a time-series collection when querying on a field that is not \
             the metaField '{meta}'"
        ))
    };
    let mut out = Document::new();
    for (key, value) in query {
        if matches!(key.as_str(), "$and" | "$or" | "$nor") {
            let Bson::Array(parts) = value else { return Err(not_meta()) };
            let mut translated = Vec::with_capacity(parts.len());
            for part in parts {
                let Bson::Document(part) = part else { return Err(not_meta()) };
                translated.push(Bson::Document(translate_query(part, meta)?));
            }
            out.insert(key.clone(), translated);
        } else {
            out.insert(meta_path(key, meta).ok_or_else(not_meta)?, value.clone());
        }
    }
    Ok(out)
}

/// A time-series update's modification as one on buckets, mongod 7.0's `translateUpdate`:
/// update operators whose every field is the metaField (or under it).
fn translate_update(update: &Document, meta: &str) -> Result<Document> {
    if !update.keys().next().is_some_and(|key| key.starts_with('$')) {
        return Err(invalid("Cannot perform an update on a time-series collection using a replacement document"));
    }
    let not_meta = || {
        invalid(format!(
            "Cannot perform an update on a time-series collection which updates a field that is not the metaField \
             '{meta}'"
        ))
    };
    let mut out = Document::new();
    for (operator, fields) in update {
        let Bson::Document(fields) = fields else { return Err(not_meta()) };
        let mut translated = Document::new();
        for (path, value) in fields {
            let value = match (operator.as_str(), value) {
                // `$rename`'s target is a field too.
                ("$rename", Bson::String(to)) => Bson::String(meta_path(to, meta).ok_or_else(not_meta)?),
                _ => value.clone(),
            };
            translated.insert(meta_path(path, meta).ok_or_else(not_meta)?, value);
        }
        out.insert(operator.clone(), translated);
    }
    Ok(out)
}

/// One `update` statement on a time-series collection, as mongod 7.0 allows it: `multi:
/// true`, no upsert, a query and an update-operator modification on the metaField only. The
/// buckets whose `meta` matches are updated, in one batch; returns how many measurements they
/// hold (matched, modified) and the batch's durability ticket.
///
/// # Errors
/// 72 InvalidOptions (mongod's messages) for anything else; the query's and update's parse
/// errors; storage errors.
pub fn update(
    storage: &Storage,
    (buckets, spec): (&Arc<Collection>, &TimeseriesSpec),
    statement: &RawDocument,
    vars: Option<&crate::query::expr::Variables>,
) -> Result<(i64, i64, Option<crate::storage::DurabilityTicket>)> {
    let Some(meta) = &spec.meta_field else {
        return Err(invalid("Cannot perform an update on a time-series collection that does not have a metaField"));
    };
    check_statement_fields(statement, "update", &["q", "u", "multi", "upsert"])?;
    if !matches!(statement.get("multi"), Ok(Some(RawBsonRef::Boolean(true)))) {
        return Err(invalid("Cannot perform a non-multi update on a time-series collection"));
    }
    if matches!(statement.get("upsert"), Ok(Some(RawBsonRef::Boolean(true)))) {
        return Err(invalid("Cannot perform an upsert on a time-series collection"));
    }
    let decode =
        |raw: &RawDocument| Document::try_from(raw).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()));
    let query = match statement.get("q") {
        Ok(Some(RawBsonRef::Document(q))) => decode(q)?,
        _ => Document::new(),
    };
    let modification = match statement.get("u") {
        Ok(Some(RawBsonRef::Document(u))) => decode(u)?,
        _ => return Err(invalid("Cannot perform an update on a time-series collection using a pipeline update")),
    };
    let query = crate::exec::pipeline::raw(&translate_query(&query, meta)?)?;
    let modification = crate::exec::pipeline::raw(&translate_update(&modification, meta)?)?;
    let mut filter = crate::query::Filter::parse(&query)?;
    if let Some(vars) = vars {
        filter = filter.with_variables(vars);
    }
    let modification = crate::query::Update::parse(&modification)?;
    let mut writer = storage.writer(buckets)?;
    let (mut matched, mut modified) = (0i64, 0i64);
    for bucket in storage.snapshot().scan(buckets, crate::storage::Direction::Forward) {
        let bucket = bucket?;
        if !filter.matches(&bucket) {
            continue;
        }
        let measurements = match bucket.get("data") {
            Ok(Some(RawBsonRef::Document(data))) => match data.get(&spec.time_field) {
                Ok(Some(RawBsonRef::Document(times))) => times.iter().count(),
                _ => 0,
            },
            _ => 0,
        };
        let measurements = i64::try_from(measurements).unwrap_or(i64::MAX);
        matched += measurements;
        let mut document = decode(&bucket)?;
        if modification.apply(&mut document, false)? {
            modified += measurements;
            writer.replace(crate::exec::pipeline::raw(&document)?)?;
        }
    }
    Ok((matched, modified, writer.commit()?))
}
