//! The aggregation pipeline runner: applies a pipeline's stages, one after the other, to a
//! document stream. What a stage does to one document is the query language's
//! ([`DocumentStage`], [`Filter`], [`Projection`], [`SortSpec`]); running it over a stream
//! (filtering, sorting, counting, grouping) is here. Stages that read from a source of their
//! own (`$collStats`, `$currentOp`) are built by their commands, which hand the rest here.

use std::sync::Arc;

use bson::{Bson, Document, RawBsonRef, RawDocument, RawDocumentBuf, doc};

use super::Query;
use super::stages::keep;
use crate::error::{Error, ErrorCode, Result};
use crate::query::expr::Variables;
use crate::query::{Collation, DocumentStage, Filter, Projection, SortSpec, limits};
use crate::state::cursors::DocumentStream;

/// Checks stage positions before anything runs, as mongod: a stage that reads from a source
/// of its own may only come first.
///
/// # Errors
/// 40602 for such a stage after the first.
pub fn check_positions(stages: &[RawBsonRef<'_>]) -> Result<()> {
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
    Ok(())
}

/// Runs `stages` over `stream`; `vars` are the command's `let` variables, `collation` the
/// collation `$match` and `$sort` compare strings under.
///
/// # Errors
/// 14 TypeMismatch for a stage that is not a document, and each stage's errors.
pub fn run(
    mut stream: DocumentStream,
    stages: &[RawBsonRef<'_>],
    vars: Option<&Variables>,
    collation: Option<&Arc<Collation>>,
) -> Result<DocumentStream> {
    for &stage in stages {
        let RawBsonRef::Document(stage) = stage else {
            return Err(Error::new(ErrorCode::TypeMismatch, "Each element of the 'pipeline' array must be an object"));
        };
        stream = apply_stage(stream, stage, vars, collation)?;
    }
    Ok(stream)
}

/// A count as mongod appends it (`appendNumber`): an int when it fits, else a long. Drivers
/// and shells compare these with plain numbers, so the type matters.
pub fn count_value(n: i64) -> Bson {
    i32::try_from(n).map_or(Bson::Int64(n), Bson::Int32)
}

/// The query that a pipeline's leading `$match` and `$sort` stages describe, so the planner
/// can serve them from an index; returns it and how many stages it took.
///
/// # Errors
/// The stages' parse errors.
pub fn leading_query(
    stages: &[RawBsonRef<'_>],
    vars: Option<&Variables>,
    collation: Option<Arc<Collation>>,
) -> Result<(Query, usize)> {
    let single = |stage: Option<&RawBsonRef<'_>>, name: &str| -> Option<RawDocumentBuf> {
        let Some(RawBsonRef::Document(stage)) = stage else { return None };
        let mut fields = stage.iter();
        match (fields.next(), fields.next()) {
            (Some(Ok((key, RawBsonRef::Document(spec)))), None) if key.as_str() == name => Some(spec.to_owned()),
            _ => None,
        }
    };
    let mut query = Query::filtered(None, collation.clone())?;
    let mut consumed = 0;
    if let Some(filter_doc) = single(stages.first(), "$match") {
        let mut filter = Filter::parse_match_stage(&filter_doc)?;
        if let Some(vars) = vars {
            filter = filter.with_variables(vars);
        }
        query.filter = filter.with_collation(collation.as_ref());
        query.filter_doc = filter_doc;
        consumed = 1;
    }
    if let Some(sort) = single(stages.get(consumed), "$sort") {
        query.sort = Some(SortSpec::parse(&sort)?.with_collation(collation.as_ref()));
        consumed += 1;
    }
    Ok((query, consumed))
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
            Box::new(stream.filter_map(move |doc| keep(&filter, doc)))
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
            let n = count(stream)?;
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

/// Counts the documents of `stream`.
///
/// # Errors
/// The stream's errors.
pub fn count(stream: DocumentStream) -> Result<i64> {
    let mut n = 0i64;
    for document in stream {
        document?;
        n += 1;
    }
    Ok(n)
}

/// `document` as raw BSON, for a stream.
///
/// # Errors
/// 1 InternalError if it does not encode.
pub fn raw(document: &Document) -> Result<RawDocumentBuf> {
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
    let n = count(stream)?;
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
