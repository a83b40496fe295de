//! The `$geoNear` aggregation stage: the first stage of a pipeline, a nearness search on the
//! collection's geo index (the one named by `key`, or its only one) with `query` as the rest
//! of the filter, each document given its distance (`distanceField`, times
//! `distanceMultiplier`) and, with `includeLocs`, its location.

use bson::{Bson, Document, RawBsonRef, RawDocument, RawDocumentBuf, doc};

use super::RequestCtx;
use super::results::stream;
use super::target::Target;
use crate::error::{Error, ErrorCode, Result};
use crate::exec::Query;
use crate::op::ExecStats;
use crate::query::Filter;
use crate::query::geo::region::shape_at;
use crate::query::geo::{Near, Unit};
use crate::query::index_key::KeyOrder;
use crate::state::cursors::DocumentStream;

/// The stage's arguments.
struct GeoNear {
    near: Near,
    near_value: Bson,
    spherical: bool,
    distance_field: String,
    multiplier: f64,
    include_locs: Option<String>,
    key: Option<String>,
    query: Document,
}

fn bad(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::BadValue, message)
}

fn parse(spec: RawBsonRef<'_>) -> Result<GeoNear> {
    let RawBsonRef::Document(spec) = spec else { return Err(bad("$geoNear argument must be an object")) };
    let spec = Document::try_from(spec).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
    let number = |field: &str| -> Result<Option<f64>> {
        match spec.get(field) {
            None => Ok(None),
            Some(value) => value
                .as_f64()
                .or_else(|| value.as_i32().map(f64::from))
                .or_else(|| value.as_i64().map(|n| n as f64))
                .map(Some)
                .ok_or_else(|| bad(format!("{field} must be a number"))),
        }
    };
    let string = |field: &str| -> Result<Option<String>> {
        match spec.get(field) {
            None => Ok(None),
            Some(Bson::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad(format!("$geoNear requires that '{field}' option is a String"))),
        }
    };
    for field in spec.keys() {
        if !matches!(
            field.as_str(),
            "near"
                | "distanceField"
                | "spherical"
                | "maxDistance"
                | "minDistance"
                | "query"
                | "distanceMultiplier"
                | "includeLocs"
                | "key"
                | "uniqueDocs"
        ) {
            return Err(Error::new(
                ErrorCode::Location40415,
                format!("BSON field '$geoNear.{field}' is an unknown field."),
            ));
        }
    }
    let spherical = match spec.get("spherical") {
        None => false,
        Some(Bson::Boolean(b)) => *b,
        Some(_) => return Err(bad("spherical must be a boolean")),
    };
    let near_value = spec.get("near").cloned().ok_or_else(|| bad("$geoNear requires a 'near' option as an Array"))?;
    let raw_near = bson::RawBson::try_from(near_value.clone()).map_err(|e| bad(e.to_string()))?;
    let mut near = Near::point(raw_near.as_raw_bson_ref(), spherical)?;
    near.max = number("maxDistance")?;
    near.min = number("minDistance")?;
    if near.max.is_some_and(|m| m < 0.0) || near.min.is_some_and(|m| m < 0.0) {
        return Err(bad("maxDistance and minDistance must be non-negative"));
    }
    let distance_field =
        string("distanceField")?.ok_or_else(|| bad("$geoNear requires a 'distanceField' option as a String"))?;
    let query = match spec.get("query") {
        None => Document::new(),
        Some(Bson::Document(query)) => query.clone(),
        Some(_) => return Err(bad("query must be an object")),
    };
    Ok(GeoNear {
        spherical: spherical || near.unit == Unit::Meters,
        near,
        near_value,
        distance_field,
        multiplier: number("distanceMultiplier")?.unwrap_or(1.0),
        include_locs: string("includeLocs")?,
        key: string("key")?,
        query,
    })
}

/// Runs a pipeline's first stage `$geoNear` on `target`.
///
/// # Errors
/// 2 BadValue for malformed arguments, 27 IndexNotFound without a geo index (or with several
/// and no `key`), and the search's errors.
pub(super) fn stage(
    ctx: &RequestCtx<'_>,
    target: &Target,
    spec: &RawDocument,
) -> Result<(DocumentStream, std::sync::Arc<ExecStats>)> {
    let args = parse(spec.get("$geoNear").ok().flatten().unwrap_or(RawBsonRef::Null))?;
    let indexes = target.collection.as_ref().map(|c| c.indexes()).unwrap_or_default();
    let geo: Vec<(String, KeyOrder)> = indexes
        .iter()
        .filter_map(|index| index.pattern.geo_field().map(|(_, path, order)| (path.dotted().to_owned(), order)))
        .filter(|(path, _)| args.key.as_ref().is_none_or(|key| key == path))
        .collect();
    let (key, order) = match geo.as_slice() {
        [] if args.key.is_some() => {
            return Err(Error::new(
                ErrorCode::BadValue,
                "$geoNear's 'key' must name a field with a 2d or 2dsphere index",
            ));
        }
        [] => {
            return Err(Error::new(
                ErrorCode::IndexNotFound,
                "$geoNear requires a 2d or 2dsphere index, but none were found",
            ));
        }
        [one] => one.clone(),
        _ => {
            return Err(Error::new(
                ErrorCode::IndexNotFound,
                format!(
                    "There is more than one 2d or 2dsphere index on {}; unsure which to use for $geoNear",
                    target.ns.full()
                ),
            ));
        }
    };
    let operator = if args.spherical { "$nearSphere" } else { "$near" };
    let mut near_ops = doc! { operator: args.near_value.clone() };
    if let Some(max) = args.near.max {
        near_ops.insert("$maxDistance", max);
    }
    if let Some(min) = args.near.min {
        near_ops.insert("$minDistance", min);
    }
    let filter_doc = doc! { "$and": [Bson::Document(args.query.clone()), doc! { key.as_str(): near_ops }] };
    let raw = RawDocumentBuf::try_from(&filter_doc).map_err(|e| bad(e.to_string()))?;
    if Filter::parse_query(&RawDocumentBuf::try_from(&args.query).map_err(|e| bad(e.to_string()))?)?.has_near() {
        return Err(bad("$near is not allowed inside of a $geoNear query"));
    }
    let query = Query::filtered(Some(&raw), target.collation.clone())?;
    let (documents, stats) = stream(ctx, target, query)?;
    // As the planner measures: a legacy pair through a 2dsphere index in radians.
    let mut near = args.near.clone();
    if args.spherical && near.unit == Unit::Flat {
        near.unit = Unit::Radians;
    }
    if order == KeyOrder::Sphere && near.unit == Unit::Flat {
        near.unit = Unit::Radians;
    }
    let (distance_field, multiplier, include_locs) = (args.distance_field, args.multiplier, args.include_locs);
    let annotated = documents.map(move |doc| {
        let doc = doc?;
        let mut out =
            Document::try_from(doc.as_ref()).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        let distance = shape_at(&doc, &key).map_or(0.0, |shape| near.distance_to(&shape)) * multiplier;
        set_path(&mut out, &distance_field, Bson::Double(distance));
        if let Some(field) = &include_locs
            && let Some(location) = crate::query::index_key::value_through_documents(&doc, &key)
        {
            set_path(&mut out, field, Bson::try_from(location).unwrap_or(Bson::Null));
        }
        RawDocumentBuf::try_from(&out).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))
    });
    Ok((Box::new(annotated), stats))
}

/// Sets a dotted path in `doc`, making subdocuments on the way.
fn set_path(doc: &mut Document, path: &str, value: Bson) {
    match path.split_once('.') {
        None => _ = doc.insert(path, value),
        Some((first, rest)) => {
            if !matches!(doc.get(first), Some(Bson::Document(_))) {
                doc.insert(first, Document::new());
            }
            if let Some(Bson::Document(inner)) = doc.get_mut(first) {
                set_path(inner, rest, value);
            }
        }
    }
}
