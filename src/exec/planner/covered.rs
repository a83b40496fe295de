//! Covered queries: when an index alone answers a query, so no document is fetched.

use bson::{RawBson, RawBsonRef, RawDocument};

use super::shape::QueryShape;
use crate::query::bounds::{IndexBounds, Interval};
use crate::storage::Index;

/// Whether the index alone answers the query, as mongod decides it: a plain inclusion
/// projection of top-level index fields (`_id` excluded unless the index holds it), a filter
/// on those fields only, an index that is neither multikey nor hashed, and for each projected
/// field:
/// - a predicate on it must have bounds that exclude null: the index stores null for a missing
///   field, so only then is the key value the document's own (a field the filter does not name
///   comes back as the key holds it, null when missing, as mongod's covered projection does);
/// - under a collation its bounds must not reach strings, documents or arrays, whose keys are
///   collation keys in mongod (its `getFieldsWithStringBounds`).
///
/// Key order plays no part: entries keep the values themselves, whatever the field's direction.
pub(super) fn is_covered(index: &Index, bounds: &IndexBounds, shape: &QueryShape<'_>) -> bool {
    let Some(projection) = shape.projection else { return false };
    if index.is_multikey() || index.pattern.is_hashed() || index.is_id_index() {
        return false;
    }
    let fields = index.pattern.fields();
    let position = |name: &str| fields.iter().position(|(f, _)| f.dotted() == name && !name.contains('.'));
    let filtered = filter_fields(shape.filter);
    if !filtered.iter().all(|name| position(name).is_some()) {
        return false;
    }
    let provided = |name: &str| {
        let Some(i) = position(name) else { return false };
        let exact = bounds.excludes_null.get(i) == Some(&true) || !filtered.iter().any(|f| f == name);
        let collated = index.collation.is_some() && bounds.fields.get(i).is_none_or(|f| may_hold_strings(f));
        exact && !collated
    };
    let mut includes_id = true;
    let mut any = false;
    for (name, value) in crate::query::path::fields(projection) {
        let truthy = match value {
            RawBsonRef::Int32(n) => n != 0,
            RawBsonRef::Int64(n) => n != 0,
            RawBsonRef::Double(n) => n != 0.0,
            RawBsonRef::Boolean(b) => b,
            _ => return false,
        };
        if name == "_id" {
            includes_id = truthy;
            continue;
        }
        if !truthy || !provided(name) {
            return false;
        }
        any = true;
    }
    any && (!includes_id || provided("_id"))
}

/// Whether `intervals` reach a string, a document or an array: the brackets from the empty
/// string up to the smallest binary value, in BSON order.
fn may_hold_strings(intervals: &[Interval]) -> bool {
    let low = RawBsonRef::String("");
    let high = RawBson::Binary(bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: Vec::new() });
    intervals.iter().any(|i| {
        let starts_below_high = crate::query::compare_values(i.start.as_raw_bson_ref(), high.as_raw_bson_ref()).is_lt();
        let ends = crate::query::compare_values(i.end.as_raw_bson_ref(), low);
        starts_below_high && (ends.is_gt() || ends.is_eq() && i.end_inclusive)
    })
}

/// The top-level field names a filter tests (through `$and`); `$or` and other operators
/// count as a field that no index holds.
fn filter_fields(filter: &RawDocument) -> Vec<String> {
    let mut out = Vec::new();
    for (name, value) in crate::query::path::fields(filter) {
        match (name, value) {
            ("$and", RawBsonRef::Array(children)) => {
                for child in crate::query::path::items(children) {
                    match child {
                        RawBsonRef::Document(child) => out.extend(filter_fields(child)),
                        _ => out.push("$".into()),
                    }
                }
            }
            (name, _) => out.push(name.to_owned()),
        }
    }
    out
}
