//! Query shapes: a query's fields and operators without their values, the key of the plan
//! cache and the hash logs and the profiler show (`queryShapeHash`).

use std::hash::Hasher;

use bson::{RawBsonRef, RawDocument};

use crate::query::{Collation, SortSpec};
use crate::storage::index::{Fnv1a, fnv1a};
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
    /// The search the filter asks for (`$text` or `$near`), which decides the access path.
    pub search: Option<Search>,
}

/// A search only one access path answers: the planner forces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Search {
    /// `$text`: the collection's text index.
    Text,
    /// `$near`/`$nearSphere`: a geo index, nearest first.
    Near,
}

impl Search {
    /// The search `filter` asks for, as its compiler found it.
    pub fn of(filter: &crate::query::Filter) -> Option<Self> {
        if filter.has_text() {
            Some(Self::Text)
        } else if filter.has_near() {
            Some(Self::Near)
        } else {
            None
        }
    }
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
    let mut key = String::new();
    write_cache_key(ns, shape, &mut key);
    key
}

/// The hash of a query shape on a namespace, 16 hex digits: the FNV-1a of [`cache_key`],
/// hashed as it is written (every operation records its shape, so no key string is built).
pub(super) fn shape_hash(ns: &Namespace, shape: &QueryShape<'_>) -> String {
    let mut hash = Fnv1a::default();
    write_cache_key(ns, shape, &mut hash);
    format!("{:016X}", hash.finish())
}

/// The query a shape was taken from, as `$planCacheStats` shows it: `{query, sort,
/// projection}`, each an empty document when not given.
pub(super) fn created_from(shape: &QueryShape<'_>) -> bson::Document {
    let document = |raw: Option<&RawDocument>| raw.and_then(|r| bson::Document::try_from(r).ok()).unwrap_or_default();
    let mut sort = bson::Document::new();
    for (field, ascending) in shape.sort.map(|s| s.fields().collect::<Vec<_>>()).unwrap_or_default() {
        sort.insert(field, if ascending { 1 } else { -1 });
    }
    bson::doc! { "query": document(Some(shape.filter)), "sort": sort, "projection": document(shape.projection) }
}

/// Where a shape key is written: a string (the plan cache's key) or a running hash.
trait KeySink {
    fn put(&mut self, text: &str);
}

impl KeySink for String {
    fn put(&mut self, text: &str) {
        self.push_str(text);
    }
}

impl KeySink for Fnv1a {
    fn put(&mut self, text: &str) {
        self.write(text.as_bytes());
    }
}

/// `db.coll|` then the query's shape: fields and operators with values replaced by their
/// type, then the sort and projection.
fn write_cache_key(ns: &Namespace, shape: &QueryShape<'_>, out: &mut impl KeySink) {
    fn value_shape(value: RawBsonRef<'_>, out: &mut impl KeySink) {
        match value {
            RawBsonRef::Document(doc) => {
                out.put("{");
                for (name, value) in crate::query::path::fields(doc) {
                    out.put(name);
                    out.put(":");
                    value_shape(value, out);
                    out.put(",");
                }
                out.put("}");
            }
            RawBsonRef::Array(items) => {
                out.put("[");
                for item in crate::query::path::items(items) {
                    value_shape(item, out);
                    out.put(",");
                }
                out.put("]");
            }
            other => out.put(crate::query::type_name(other.element_type())),
        }
    }
    out.put(&ns.db);
    out.put(".");
    out.put(&ns.coll);
    out.put("|");
    value_shape(RawBsonRef::Document(shape.filter), out);
    out.put("|");
    if let Some(sort) = shape.sort {
        for (name, ascending) in sort.fields() {
            out.put(name);
            out.put(if ascending { "+" } else { "-" });
        }
    }
    out.put("|");
    if let Some(projection) = shape.projection {
        value_shape(RawBsonRef::Document(projection), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::SortSpec;
    use bson::rawdoc;

    #[test]
    fn the_shape_hash_is_the_hash_of_the_cache_key() -> Result<(), Box<dyn std::error::Error>> {
        let ns = Namespace::new("db", "coll")?;
        let filter = rawdoc! { "a": { "$gt": 1 }, "b": [1, "x"] };
        let projection = rawdoc! { "a": 1 };
        let sort = SortSpec::parse(&rawdoc! { "a": -1 })?;
        let shape = QueryShape {
            filter: &filter,
            sort: Some(&sort),
            projection: Some(&projection),
            hint: None,
            min: None,
            max: None,
            collation: None,
            search: None,
        };
        let key = cache_key(&ns, &shape);
        assert_eq!(key, "db.coll|{a:{$gt:int,},b:[int,string,],}|a-|{a:int,}");
        assert_eq!(shape_hash(&ns, &shape), format!("{:016X}", fnv1a(key.as_bytes())));
        Ok(())
    }
}
