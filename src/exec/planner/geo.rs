//! Plans of geospatial queries: `$near`/`$nearSphere` read a geo index nearest first (the
//! planner forces it, as mongod requires the index), and `$geoWithin`/`$geoIntersects` may
//! scan a 2dsphere index over the key ranges of the cells covering their area.

use std::sync::Arc;

use bson::{RawBsonRef, RawDocument};

use super::{Access, Plan, QueryShape};
use crate::error::{Error, ErrorCode, Result};
use crate::query::SortSpec;
use crate::query::bounds::{IndexBounds, Interval};
use crate::query::geo::{GeoPredicate, Near, Unit, cells};
use crate::query::index_key::KeyOrder;
use crate::storage::{Index, IndexSet};

/// A nearness search's access path.
#[derive(Debug, Clone)]
pub struct NearPlan {
    /// The geo index.
    pub index: Arc<Index>,
    /// The geo field's path.
    pub field: String,
    /// The search.
    pub near: Near,
}

impl NearPlan {
    /// The bounds of the index keys within `radians` of the point (a 2dsphere index), or of
    /// every key (a 2d index).
    pub fn bounds_within(&self, radians: f64) -> IndexBounds {
        let mut bounds = IndexBounds::all(&self.index.pattern);
        if let Some((position, _, KeyOrder::Sphere)) = self.index.pattern.geo_field()
            && let Some(intervals) = bounds.fields.get_mut(position)
        {
            let area = crate::query::geo::Area::Cap { center: self.near.point, radians };
            *intervals = key_intervals(&cells::ranges_for(&area));
            bounds.bounded = true;
        }
        bounds
    }
}

/// Intervals of int64 keys.
fn key_intervals(ranges: &[(i64, i64)]) -> Vec<Interval> {
    ranges
        .iter()
        .map(|(start, end)| Interval {
            start: bson::RawBson::Int64(*start),
            start_inclusive: true,
            end: bson::RawBson::Int64(*end),
            end_inclusive: true,
        })
        .collect()
}

/// The `$near`/`$nearSphere` plan of `shape`, whose filter has one (at its top, as the
/// filter's compiler requires).
///
/// # Errors
/// 291 NoQueryExecutionPlans without a geo index on the field (or with a hint), 2 BadValue
/// with a `$natural` sort.
pub(super) fn near_plan(indexes: &IndexSet, shape: &QueryShape<'_>) -> Result<Plan> {
    let Some((field, ops)) = near_clause(shape.filter) else {
        return Err(Error::new(ErrorCode::BadValue, "geo $near must be top-level expr"));
    };
    let near = Near::parse(ops)?;
    if shape.sort.and_then(SortSpec::natural).is_some() {
        return Err(Error::new(ErrorCode::BadValue, "$natural sort cannot be set with geo $near"));
    }
    let on_field = |order: KeyOrder| {
        indexes.iter().find(|index| {
            !index.hidden && index.pattern.geo_field().is_some_and(|(_, path, o)| o == order && path.dotted() == field)
        })
    };
    // A GeoJSON point needs a 2dsphere index; a legacy pair takes a 2d index first.
    let index = match near.unit {
        Unit::Meters => on_field(KeyOrder::Sphere),
        _ => on_field(KeyOrder::Flat).or_else(|| on_field(KeyOrder::Sphere)),
    };
    // A hint must name the index the search reads.
    let hinted = |index: &Index| match shape.hint {
        None => true,
        Some(RawBsonRef::String(name)) => index.name == name,
        Some(RawBsonRef::Document(spec)) => {
            bson::Document::try_from(spec).is_ok_and(|spec| *index.pattern.spec() == spec)
        }
        Some(_) => false,
    };
    let Some(index) = index.filter(|index| hinted(index)) else {
        return Err(Error::new(
            ErrorCode::NoQueryExecutionPlans,
            "error processing query: planner returned error :: caused by :: unable to find index for $geoNear query",
        ));
    };
    let near = match (near.unit, index.pattern.geo_field()) {
        // A legacy pair searched through a 2dsphere index measures in radians.
        (Unit::Flat, Some((_, _, KeyOrder::Sphere))) => Near { unit: Unit::Radians, ..near },
        _ => near,
    };
    Ok(Plan {
        access: Access::Near(Box::new(NearPlan { index: index.clone(), field: field.to_owned(), near })),
        sort_provided: shape.sort.is_none_or(SortSpec::is_empty),
        covered: false,
        candidates: 1,
    })
}

/// The field and operator document of a `$near`/`$nearSphere` at the top of `filter` or in a
/// top-level `$and`.
fn near_clause(filter: &RawDocument) -> Option<(&str, &RawDocument)> {
    filter.iter().flatten().find_map(|(key, value)| match (key.as_str(), value) {
        ("$and", RawBsonRef::Array(clauses)) => {
            clauses.into_iter().flatten().find_map(|clause| near_clause(clause.as_document()?))
        }
        (field, RawBsonRef::Document(ops))
            if !field.starts_with('$')
                && (ops.get("$near").ok().flatten().is_some() || ops.get("$nearSphere").ok().flatten().is_some()) =>
        {
            Some((field, ops))
        }
        _ => None,
    })
}

/// A 2dsphere index's plan for a `$geoWithin`/`$geoIntersects` on its geo field (at the top
/// of the filter or in a top-level `$and`): the keys of the cells covering the area.
pub(super) fn within_plan(index: &Arc<Index>, shape: &QueryShape<'_>) -> Option<Plan> {
    let (position, path, KeyOrder::Sphere) = index.pattern.geo_field()? else { return None };
    let predicate = geo_condition(shape.filter, path.dotted())?;
    let mut bounds = IndexBounds::all(&index.pattern);
    *bounds.fields.get_mut(position)? = key_intervals(&cells::ranges_for(&predicate.area()));
    bounds.bounded = true;
    Some(Plan {
        access: Access::IndexScan { index: index.clone(), bounds, reverse: false, limits: None },
        sort_provided: shape.sort.is_none_or(SortSpec::is_empty),
        covered: false,
        candidates: 1,
    })
}

/// The `$geoWithin`/`$geoIntersects` condition on `field`.
fn geo_condition(filter: &RawDocument, field: &str) -> Option<GeoPredicate> {
    filter.iter().flatten().find_map(|(key, value)| match (key.as_str(), value) {
        ("$and", RawBsonRef::Array(clauses)) => {
            clauses.into_iter().flatten().find_map(|clause| geo_condition(clause.as_document()?, field))
        }
        (key, RawBsonRef::Document(ops)) if key == field => {
            ops.iter().flatten().find_map(|(op, arg)| match op.as_str() {
                "$geoWithin" | "$within" => GeoPredicate::parse_within(arg).ok(),
                "$geoIntersects" => GeoPredicate::parse_intersects(arg).ok(),
                _ => None,
            })
        }
        _ => None,
    })
}
