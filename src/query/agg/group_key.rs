//! Grouping by value: a table from `$group` keys to group numbers, where two keys are the same
//! group exactly when mongod's comparison calls them equal (numbers by value across types,
//! strings under the collation, documents and arrays element by element).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use bson::{RawBson, RawBsonRef};

use crate::query::Collation;
use crate::query::number::Number;
use crate::query::order::{canonical_type, compare_collated};

/// The keys seen so far, each with the number of its group (in order of first appearance).
#[derive(Debug, Default)]
pub struct GroupKeys {
    /// Groups by hash; a hash shared by unequal keys holds several.
    by_hash: HashMap<u64, Vec<usize>>,
    keys: Vec<RawBson>,
    collation: Option<std::sync::Arc<Collation>>,
}

impl GroupKeys {
    /// An empty table comparing strings under `collation` (`None`: simple).
    pub fn new(collation: Option<std::sync::Arc<Collation>>) -> Self {
        Self { collation, ..Self::default() }
    }

    /// The group of `key`, and whether it is new (then `key` is stored as the group's `_id`).
    pub fn group_of(&mut self, key: RawBson) -> (usize, bool) {
        let hash = hash_value(key.as_raw_bson_ref(), self.collation.as_deref());
        let collation = self.collation.as_deref();
        let bucket = self.by_hash.entry(hash).or_default();
        for &group in bucket.iter() {
            if let Some(known) = self.keys.get(group)
                && compare_collated(known.as_raw_bson_ref(), key.as_raw_bson_ref(), collation).is_eq()
            {
                return (group, false);
            }
        }
        let group = self.keys.len();
        bucket.push(group);
        self.keys.push(key);
        (group, true)
    }

    /// The key of group `group`.
    pub fn key(&self, group: usize) -> Option<&RawBson> {
        self.keys.get(group)
    }

    /// Every key, in group order.
    pub fn into_keys(self) -> Vec<RawBson> {
        self.keys
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key was seen.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A hash that agrees with [`compare_collated`]: values it calls equal hash alike.
pub fn hash_value(value: RawBsonRef<'_>, collation: Option<&Collation>) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    feed(value, collation, &mut hasher);
    hasher.finish()
}

fn feed(value: RawBsonRef<'_>, collation: Option<&Collation>, hasher: &mut impl Hasher) {
    canonical_type(value).hash(hasher);
    match value {
        RawBsonRef::Double(_) | RawBsonRef::Int32(_) | RawBsonRef::Int64(_) | RawBsonRef::Decimal128(_) => {
            // Equal numbers of different types meet at the same double; numbers that only
            // round to it share a hash and are told apart by the comparison.
            let d = Number::from_raw(value).map_or(0.0, Number::to_f64);
            let d = if d.is_nan() { f64::NAN } else { d + 0.0 };
            d.to_bits().hash(hasher);
        }
        RawBsonRef::String(s) | RawBsonRef::Symbol(s) => match collation {
            Some(collation) => {
                let mut key = Vec::with_capacity(s.len() * 2);
                collation.write_sort_key(s, &mut key);
                key.hash(hasher);
            }
            None => s.hash(hasher),
        },
        RawBsonRef::Document(doc) => {
            for (name, v) in doc.iter().flatten() {
                name.as_str().hash(hasher);
                feed(v, collation, hasher);
            }
        }
        RawBsonRef::Array(items) => {
            for v in items.into_iter().flatten() {
                feed(v, collation, hasher);
            }
        }
        RawBsonRef::Boolean(b) => b.hash(hasher),
        RawBsonRef::DateTime(d) => d.timestamp_millis().hash(hasher),
        RawBsonRef::ObjectId(id) => id.bytes().hash(hasher),
        RawBsonRef::Timestamp(ts) => (ts.time, ts.increment).hash(hasher),
        RawBsonRef::Binary(b) => b.bytes.hash(hasher),
        RawBsonRef::RegularExpression(re) => (re.pattern.as_str(), re.options.as_str()).hash(hasher),
        RawBsonRef::JavaScriptCode(code) => code.hash(hasher),
        // The type alone: rare as keys, told apart by the comparison.
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use bson::{RawBson, rawdoc};

    use super::*;

    #[test]
    fn numbers_of_every_type_with_one_value_are_one_group() {
        let mut keys = GroupKeys::new(None);
        assert_eq!(keys.group_of(RawBson::Int32(1)), (0, true));
        assert_eq!(keys.group_of(RawBson::Int64(1)), (0, false));
        assert_eq!(keys.group_of(RawBson::Double(1.0)), (0, false));
        assert_eq!(keys.group_of(RawBson::Double(1.5)), (1, true));
        assert_eq!(keys.group_of(RawBson::String("1".into())), (2, true));
        assert_eq!(keys.group_of(RawBson::Document(rawdoc! {"a": 1})), (3, true));
        assert_eq!(keys.group_of(RawBson::Document(rawdoc! {"a": 1.0})), (3, false));
        assert_eq!(keys.group_of(RawBson::Document(rawdoc! {"b": 1})), (4, true));
        assert_eq!(keys.len(), 5);
    }

    #[test]
    fn strings_group_under_the_collation() {
        let spec = rawdoc! {"locale": "en", "strength": 2};
        let collation = Collation::parse(&spec).ok().flatten().map(std::sync::Arc::new);
        assert!(collation.is_some());
        let mut keys = GroupKeys::new(collation);
        assert_eq!(keys.group_of(RawBson::String("abc".into())), (0, true));
        assert_eq!(keys.group_of(RawBson::String("ABC".into())), (0, false));
        let mut simple = GroupKeys::new(None);
        simple.group_of(RawBson::String("abc".into()));
        assert_eq!(simple.group_of(RawBson::String("ABC".into())), (1, true));
    }
}
