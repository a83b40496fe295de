//! The stages that write their input into a collection: `$out` (replaces the target with the
//! pipeline's output, all at once) and `$merge` (merges each output document into the target).
//! Both are blocking, come last, and return no documents.

use std::sync::Arc;

use bson::{Bson, Document, RawBsonRef, RawDocument, RawDocumentBuf, doc};

use super::{PipelineEnv, StageArgs, deferred};
use crate::error::{Error, ErrorCode, Result};
use crate::exec::insert::{BatchedWriter, prepare_for_insert};
use crate::exec::{WriteSelection, select_for_write};
use crate::query::expr::{LetBindings, Variables};
use crate::query::{Filter, UpdatePipeline, limits, render};
use crate::state::cursors::DocumentStream;
use crate::storage::{Collection, Namespace, TEMPORARY_PREFIX};

fn invalid_bson(error: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::InvalidBSON, error.to_string())
}

fn type_name(value: RawBsonRef<'_>) -> &'static str {
    render::type_name(value.element_type())
}

/// `coll` or `{db, coll}`: the namespace a writing stage targets, checked as mongod does.
fn target(stage: &str, spec: RawBsonRef<'_>, db: &str) -> Result<Namespace> {
    let (db, coll) = match spec {
        RawBsonRef::String(coll) => (db.to_owned(), coll.to_owned()),
        RawBsonRef::Document(d) => {
            let db = match d.get("db").map_err(invalid_bson)? {
                Some(RawBsonRef::String(db)) => db.to_owned(),
                None => db.to_owned(),
                Some(other) => {
                    return Err(Error::new(
                        ErrorCode::TypeMismatch,
                        format!(
                            "BSON field '{stage}.db' is the wrong type '{}', expected type 'string'",
                            type_name(other)
                        ),
                    ));
                }
            };
            match d.get("coll").map_err(invalid_bson)? {
                Some(RawBsonRef::String(coll)) => (db, coll.to_owned()),
                _ => {
                    return Err(super::missing_field(&format!("{stage}.coll")));
                }
            }
        }
        other => {
            return Err(Error::new(
                ErrorCode::TypeMismatch,
                format!("{stage} stage requires a string or object argument, but found {}", type_name(other)),
            ));
        }
    };
    let ns = Namespace::new(&db, &coll).map_err(|_| {
        Error::new(ErrorCode::InvalidNamespace, format!("Invalid {stage} target namespace, {db}.{coll}"))
    })?;
    if coll.starts_with("system.") {
        let (code, verb) = if stage == "$out" {
            (ErrorCode::Location17385, "Can't $out")
        } else {
            (ErrorCode::Location31319, "Cannot $merge")
        };
        return Err(Error::new(code, format!("{verb} to special collection: {coll}")));
    }
    if matches!(db.as_str(), "admin" | "local" | "config") && stage == "$merge" {
        return Err(Error::new(ErrorCode::Location31320, format!("Cannot $merge to internal database: {db}")));
    }
    Ok(ns)
}

/// Checks that `collection` may receive a writing stage's output.
fn check_not_capped(stage: &str, ns: &Namespace, collection: Option<&Arc<Collection>>) -> Result<()> {
    if collection.is_some_and(|c| c.options.get_bool("capped").unwrap_or(false)) {
        return Err(Error::new(
            ErrorCode::Location17152,
            format!("namespace '{ns}' is capped so it can't be used for {stage}"),
        ));
    }
    Ok(())
}

/// `$out`.
pub(super) fn out(stream: DocumentStream, args: &StageArgs<'_>) -> Result<DocumentStream> {
    let target = target("$out", args.spec, &args.env.db)?;
    let env = args.env.clone();
    Ok(deferred(move || {
        write_out(stream, &target, &env)?;
        Ok(Box::new(std::iter::empty()))
    }))
}

/// Writes `stream` into a new temporary collection with the target's options and indexes,
/// then puts it in the target's place in one step; on failure the temporary goes and the
/// target is as it was.
fn write_out(stream: DocumentStream, target: &Namespace, env: &PipelineEnv) -> Result<()> {
    let storage = &env.storage;
    let existing = storage.collection(target);
    check_not_capped("$out", target, existing.as_ref())?;
    let options = existing.as_ref().map(|c| c.options.clone()).unwrap_or_default();
    let temp = Namespace { db: target.db.clone(), coll: format!("{TEMPORARY_PREFIX}{}", bson::Uuid::new()) };
    storage.create_collection(&temp, options)?;
    let written = (|| {
        if let Some(existing) = &existing {
            let specs: Vec<Document> =
                existing.indexes().iter().filter(|i| i.name != "_id_").map(|i| i.spec.clone()).collect();
            if !specs.is_empty() {
                storage.create_indexes(&temp, specs)?;
            }
        }
        let collection = storage.existing_collection(&temp)?;
        let validation = env.validation(&collection);
        let mut batch = BatchedWriter::new(storage, &collection);
        for document in stream {
            let document = prepare_for_insert(&document?)?;
            validation.check_insert(&document)?;
            batch.insert(document)?;
        }
        batch.flush()?;
        storage.replace_collection(&temp, target)
    })();
    if written.is_err() {
        // The temporary never became the target: dropping it leaves the target untouched.
        if let Err(error) = storage.drop_collection(&temp) {
            tracing::warn!(target: "QUERY", id = 20316, namespace = %temp, %error, "Cannot drop the temporary collection of a failed $out");
        }
    }
    written
}

/// `whenMatched` of `$merge`.
#[derive(Debug, Clone)]
enum WhenMatched {
    Replace,
    KeepExisting,
    Merge,
    Fail,
    Pipeline(UpdatePipeline),
}

/// `whenNotMatched` of `$merge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WhenNotMatched {
    Insert,
    Discard,
    Fail,
}

/// A parsed `$merge`.
struct Merge {
    into: Namespace,
    on: Vec<String>,
    lets: Option<LetBindings>,
    when_matched: WhenMatched,
    when_not_matched: WhenNotMatched,
}

impl Merge {
    fn parse(spec: RawBsonRef<'_>, db: &str, vars: &Variables) -> Result<Self> {
        let spec = match spec {
            RawBsonRef::String(_) => return Self::simple(target("$merge", spec, db)?),
            RawBsonRef::Document(spec) => spec,
            other => {
                return Err(Error::new(
                    ErrorCode::Location51182,
                    format!("$merge requires a string or object argument, but found {}", type_name(other)),
                ));
            }
        };
        let mut into = None;
        let mut on = vec!["_id".to_owned()];
        let mut lets = None;
        let mut when_matched = None;
        let mut when_not_matched = WhenNotMatched::Insert;
        for element in spec {
            let (key, value) = element.map_err(invalid_bson)?;
            match (key.as_str(), value) {
                ("into", value) => into = Some(target("$merge", value, db)?),
                ("on", RawBsonRef::String(field)) => on = vec![field.to_owned()],
                ("on", RawBsonRef::Array(fields)) => {
                    on = Vec::new();
                    for field in fields {
                        let RawBsonRef::String(field) = field.map_err(invalid_bson)? else {
                            return Err(Error::new(
                                ErrorCode::Location51134,
                                "$merge 'on' array elements must be strings",
                            ));
                        };
                        if on.iter().any(|f| f == field) {
                            return Err(Error::new(
                                ErrorCode::Location31465,
                                format!("Found a duplicate field '{field}'"),
                            ));
                        }
                        on.push(field.to_owned());
                    }
                    if on.is_empty() {
                        return Err(Error::new(
                            ErrorCode::Location51187,
                            "If explicitly specifying $merge 'on', must include at least one field",
                        ));
                    }
                }
                ("let", RawBsonRef::Document(d)) => lets = Some(LetBindings::parse(d)?),
                ("whenMatched", RawBsonRef::String(mode)) => {
                    when_matched = Some(match mode {
                        "replace" => WhenMatched::Replace,
                        "keepExisting" => WhenMatched::KeepExisting,
                        "merge" => WhenMatched::Merge,
                        "fail" => WhenMatched::Fail,
                        other => return Err(bad_enum("whenMatched", other)),
                    });
                }
                ("whenMatched", RawBsonRef::Array(stages)) => {
                    when_matched = Some(WhenMatched::Pipeline(UpdatePipeline::parse(stages, vars)?));
                }
                ("whenNotMatched", RawBsonRef::String(mode)) => {
                    when_not_matched = match mode {
                        "insert" => WhenNotMatched::Insert,
                        "discard" => WhenNotMatched::Discard,
                        "fail" => WhenNotMatched::Fail,
                        other => return Err(bad_enum("whenNotMatched", other)),
                    };
                }
                (field @ ("on" | "let" | "whenMatched" | "whenNotMatched"), other) => {
                    return Err(Error::new(
                        ErrorCode::TypeMismatch,
                        format!("BSON field '$merge.{field}' is the wrong type '{}'", type_name(other)),
                    ));
                }
                (other, _) => {
                    return Err(super::unknown_field(&format!("$merge.{other}")));
                }
            }
        }
        let into = into.ok_or_else(|| super::missing_field("$merge.into"))?;
        let when_matched = when_matched.unwrap_or(WhenMatched::Merge);
        let supported = matches!(
            (&when_matched, when_not_matched),
            (WhenMatched::Replace | WhenMatched::Merge | WhenMatched::Pipeline(_), _)
                | (WhenMatched::KeepExisting | WhenMatched::Fail, WhenNotMatched::Insert)
        );
        if !supported {
            return Err(Error::new(
                ErrorCode::Location51181,
                format!(
                    "Combination of $merge modes 'whenMatched: {}' and 'whenNotMatched: {}' is not supported",
                    mode_name(&when_matched),
                    match when_not_matched {
                        WhenNotMatched::Insert => "insert",
                        WhenNotMatched::Discard => "discard",
                        WhenNotMatched::Fail => "fail",
                    }
                ),
            ));
        }
        if lets.is_some() && !matches!(when_matched, WhenMatched::Pipeline(_)) {
            return Err(Error::new(
                ErrorCode::Location51199,
                format!("Cannot use 'let' variables with 'whenMatched: {}' mode", mode_name(&when_matched)),
            ));
        }
        Ok(Self { into, on, lets, when_matched, when_not_matched })
    }

    fn simple(into: Namespace) -> Result<Self> {
        Ok(Self {
            into,
            on: vec!["_id".to_owned()],
            lets: None,
            when_matched: WhenMatched::Merge,
            when_not_matched: WhenNotMatched::Insert,
        })
    }

    /// Checks that the `on` fields identify at most one target document: `_id`, or the
    /// fields of a unique index.
    fn check_on_fields(&self, collection: Option<&Arc<Collection>>) -> Result<()> {
        if self.on == ["_id"] {
            return Ok(());
        }
        let unique = collection.is_some_and(|c| {
            c.indexes().iter().any(|index| {
                let fields: Vec<&str> = index.pattern.fields().iter().map(|(f, _)| f.dotted()).collect();
                index.unique
                    && index.partial.is_none()
                    && index.collation.is_none()
                    && fields.len() == self.on.len()
                    && self.on.iter().all(|f| fields.contains(&f.as_str()))
            })
        });
        if !unique {
            return Err(Error::new(
                ErrorCode::Location51183,
                "Cannot find index to verify that join fields will be unique",
            ));
        }
        Ok(())
    }

    /// The equality filter on the `on` fields of `document`.
    fn on_filter(&self, document: &RawDocument) -> Result<RawDocumentBuf> {
        let mut filter = RawDocumentBuf::new();
        for field in &self.on {
            let value = value_at(document, field);
            match value {
                None | Some(RawBsonRef::Null | RawBsonRef::Undefined) => {
                    return Err(Error::new(
                        ErrorCode::Location51132,
                        "$merge write error: 'on' field cannot be missing, null, undefined or an array",
                    ));
                }
                Some(RawBsonRef::Array(_)) => {
                    return Err(Error::new(
                        ErrorCode::Location51185,
                        "$merge write error: 'on' field cannot be missing, null, undefined or an array",
                    ));
                }
                Some(value) => {
                    let key = <&bson::raw::CStr>::try_from(field.as_str()).map_err(invalid_bson)?;
                    let mut eq = RawDocumentBuf::new();
                    eq.append(bson::raw::cstr!("$eq"), value);
                    filter.append(key, eq);
                }
            }
        }
        Ok(filter)
    }
}

fn bad_enum(field: &str, value: &str) -> Error {
    Error::new(
        ErrorCode::BadValue,
        format!("Enumeration value '{value}' for field '$merge.{field}' is not a valid value."),
    )
}

fn mode_name(mode: &WhenMatched) -> &'static str {
    match mode {
        WhenMatched::Replace => "replace",
        WhenMatched::KeepExisting => "keepExisting",
        WhenMatched::Merge => "merge",
        WhenMatched::Fail => "fail",
        WhenMatched::Pipeline(_) => "pipeline",
    }
}

/// `$merge`.
pub(super) fn merge(stream: DocumentStream, args: &StageArgs<'_>) -> Result<DocumentStream> {
    let merge = Merge::parse(args.spec, &args.env.db, &args.env.vars)?;
    check_not_capped("$merge", &merge.into, args.env.storage.collection(&merge.into).as_ref())?;
    merge.check_on_fields(args.env.storage.collection(&merge.into).as_ref())?;
    let env = args.env.clone();
    Ok(deferred(move || {
        write_merge(stream, &merge, &env)?;
        Ok(Box::new(std::iter::empty()))
    }))
}

/// Merges each document of `stream` into the target. Writes are not atomic: the documents
/// merged before an error stay, as in mongod.
fn write_merge(stream: DocumentStream, merge: &Merge, env: &PipelineEnv) -> Result<()> {
    let storage = &env.storage;
    let collection = storage.collection_or_create(&merge.into)?;
    let validation = env.validation(&collection);
    let by_id = merge.on == ["_id"];
    let mut batch = BatchedWriter::new(storage, &collection);
    for document in stream {
        let mut document = document?;
        if by_id && document.get("_id").map_err(invalid_bson)?.is_none() {
            document = prepare_for_insert(&document)?;
        }
        // As mongod's write-conflict retries: again, after the transaction, when the document
        // it would change is held by an open one.
        batch.retry_while_held(
            || env.stats.check(),
            |batch| merge_document(batch, &document, merge, env, &validation),
        )?;
    }
    batch.flush()
}

/// Merges `document` into the target through `batch`.
fn merge_document(
    batch: &mut BatchedWriter<'_>,
    document: &RawDocumentBuf,
    merge: &Merge,
    env: &PipelineEnv,
    validation: &crate::exec::validate::Validation<'_>,
) -> Result<()> {
    let by_id = merge.on == ["_id"];
    let filter_doc = merge.on_filter(document)?;
    let existing = if by_id {
        let id = document.get("_id").map_err(invalid_bson)?.unwrap_or(RawBsonRef::Null);
        batch.writer()?.get(id)?
    } else {
        // A lookup by other fields reads committed documents: commit what is pending first.
        batch.flush()?;
        let filter = Filter::parse(&filter_doc)?;
        let selection =
            WriteSelection { query: &filter_doc, filter: &filter, hint: None, collation: None, multi: false };
        select_for_write(&env.plans, batch.writer()?, &selection, &env.stats)?.into_iter().next()
    };
    match existing {
        Some(existing) => {
            let Some(merged) = merge.matched(&existing, document, env)? else { return Ok(()) };
            validation.check_update(&existing, &merged)?;
            batch.writer()?.replace(merged)
        }
        None => match merge.when_not_matched {
            WhenNotMatched::Insert => {
                let document = prepare_for_insert(document)?;
                validation.check_insert(&document)?;
                batch.insert(document)
            }
            WhenNotMatched::Discard => Ok(()),
            WhenNotMatched::Fail => Err(Error::new(
                ErrorCode::MergeStageNoMatchingDocument,
                "$merge could not find a matching document in the target collection for at least one \
                 document in the source collection",
            )),
        },
    }
}

impl Merge {
    /// The document that replaces `existing` when `document` matches it (`None`: keep it).
    fn matched(
        &self,
        existing: &RawDocument,
        document: &RawDocument,
        env: &PipelineEnv,
    ) -> Result<Option<RawDocumentBuf>> {
        let id = existing.get("_id").map_err(invalid_bson)?.unwrap_or(RawBsonRef::Null);
        let result = match &self.when_matched {
            WhenMatched::KeepExisting => return Ok(None),
            WhenMatched::Fail => {
                let value = Bson::try_from(id).unwrap_or(Bson::Null);
                return Err(Error::new(
                    ErrorCode::DuplicateKey,
                    format!(
                        "E11000 duplicate key error collection: {} index: _id_ dup key: {{ _id: {} }}",
                        self.into,
                        render::owned_value(&value)
                    ),
                )
                .with_info(doc! { "keyPattern": { "_id": 1 }, "keyValue": { "_id": value } }));
            }
            WhenMatched::Replace => {
                let mut replaced = limits::to_document(document)?;
                replaced.insert("_id", Bson::try_from(id).map_err(invalid_bson)?);
                replaced
            }
            WhenMatched::Merge => {
                let mut merged = limits::to_document(existing)?;
                for (key, value) in limits::to_document(document)? {
                    merged.insert(key, value);
                }
                merged
            }
            WhenMatched::Pipeline(pipeline) => {
                // `$$new` is the output document unless `let` binds it otherwise.
                let mut outer = env.vars.clone();
                outer.bind("new", Bson::Document(limits::to_document(document)?))?;
                let vars = match &self.lets {
                    Some(lets) => lets.bind(document, &outer)?,
                    None => outer,
                };
                pipeline.apply_with(&limits::to_document(existing)?, &vars)?
            }
        };
        // The matched document keeps its `_id`, as mongod's update does.
        let mut out = RawDocumentBuf::new();
        out.append(bson::raw::cstr!("_id"), id);
        for (key, value) in &result {
            if key != "_id" {
                let key = <&bson::raw::CStr>::try_from(key.as_str()).map_err(invalid_bson)?;
                out.append(key, bson::RawBson::try_from(value.clone()).map_err(invalid_bson)?);
            }
        }
        Ok(Some(out))
    }
}

/// The value at the dotted `path` of `document`, through documents only.
fn value_at<'a>(document: &'a RawDocument, path: &str) -> Option<RawBsonRef<'a>> {
    let mut parts = path.split('.');
    let mut value = document.get(parts.next()?).ok().flatten()?;
    for part in parts {
        let RawBsonRef::Document(inner) = value else { return None };
        value = inner.get(part).ok().flatten()?;
    }
    Some(value)
}
