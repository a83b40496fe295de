//! Query shapes: a query's fields and operators without their values, the key of the plan
//! cache and the hash logs and the profiler show (`queryShapeHash`).

use bson::{RawBsonRef, RawDocument};

use crate::query::{Collation, SortSpec};
use crate::storage::index::fnv1a;
use crate::storage::{IndexSet, Namespace};

/// What a query asks, as far as planning goes.
#[derive(Debug, Clone, Copy)]
pub struct QueryShape<'a> {
    /// The filter document.
    pub filter: &'a RawDocument,
    /// The sort, if any.
    pub sort: Option<&'a SortSpec>,
    /// The projection, if any.
    pub projection: Option<&'a RawDocument>,
    /// `hint`, if any.
    pub hint: Option<RawBsonRef<'a>>,
    /// `min` (inclusive) and `max` (exclusive) key values, which need a `hint`.
    pub min: Option<&'a RawDocument>,
    /// See `min`.
    pub max: Option<&'a RawDocument>,
    /// The query's non-simple collation. Index keys compare strings by their bytes, so a
    /// collated query reads no index (mongod would use only indexes with its collation).
    pub collation: Option<&'a Collation>,
}

/// Identifies an index set for the plan cache: its index ids and hidden flags (ids are never
/// reused, so a dropped and recreated index has another id).
pub(super) fn index_set_signature(indexes: &IndexSet) -> u64 {
    let bytes: Vec<u8> =
        indexes.iter().flat_map(|index| (index.id << 1 | u64::from(index.hidden)).to_be_bytes()).collect();
    fnv1a(&bytes)
}

/// A query shape on a namespace: the plan cache's key, and what the shape hash hashes.
pub(super) fn cache_key(ns: &Namespace, shape: &QueryShape<'_>) -> String {
    format!("{ns}|{}", shape_key(shape))
}

/// The hash of a query shape on a namespace, 16 hex digits.
pub(super) fn shape_hash(ns: &Namespace, shape: &QueryShape<'_>) -> String {
    format!("{:016X}", fnv1a(cache_key(ns, shape).as_bytes()))
}

/// A query's shape: fields and operators with values replaced by their type, then the sort
/// and projection.
fn shape_key(shape: &QueryShape<'_>) -> String {
    fn value_shape(value: RawBsonRef<'_>, out: &mut String) {
        match value {
            RawBsonRef::Document(doc) => {
                out.push('{');
                for (name, value) in crate::query::path::fields(doc) {
                    out.push_str(name);
                    out.push(':');
                    value_shape(value, out);
                    out.push(',');
                }
                out.push('}');
            }
            RawBsonRef::Array(items) => {
                out.push('[');
                for item in crate::query::path::items(items) {
                    value_shape(item, out);
                    out.push(',');
                }
                out.push(']');
            }
            other => out.push_str(crate::query::type_name(other.element_type())),
        }
    }
    let mut out = String::new();
    value_shape(RawBsonRef::Document(shape.filter), &mut out);
    out.push('|');
    if let Some(sort) = shape.sort {
        for (name, ascending) in sort.fields() {
            out.push_str(name);
            out.push(if ascending { '+' } else { '-' });
        }
    }
    out.push('|');
    if let Some(projection) = shape.projection {
        value_shape(RawBsonRef::Document(projection), &mut out);
    }
    out
}
