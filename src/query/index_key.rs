//! Index key patterns (`{a: 1, "b.c": -1}`, `{h: "hashed"}`) and the keys a document gives
//! one, with mongod's rules: a missing field is a null key, each element of an array is its own
//! key (the index becomes *multikey*), an empty array is an undefined key, and a compound index
//! may meet an array in at most one of its fields per document.

use bson::{Bson, RawBsonRef, RawDocument};

use super::QueryError;
use super::order::compare_values;
use super::path::{self, FieldPath};
use super::text;
use super::wildcard::Wildcard;
use crate::error::ErrorCode;

/// mongod's limit on the fields of a compound index.
pub const MAX_KEY_FIELDS: usize = 32;

/// How one field of an index is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrder {
    /// `1` (any positive number).
    Ascending,
    /// `-1` (any negative number).
    Descending,
    /// `"hashed"`: the key is a 64-bit hash of the value, good for equality only.
    Hashed,
    /// A wildcard index's first key field: the value's dotted path, ascending and compared
    /// byte for byte (never under the index's collation).
    WildcardPath,
    /// A text index's `_fts: "text"`: the term, ascending and compared byte for byte.
    TextTerm,
    /// A text index's `_ftsx: 1`: the term's score, kept in the entry's value but not in its
    /// key (one entry per term and document).
    TextScore,
    /// `"2dsphere"`: the S2 cells of the field's geometry (see `geo::cells`).
    Sphere,
    /// `"2d"`: the geohash of the field's legacy point on a flat grid.
    Flat,
}

/// A validated index key pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyPattern {
    fields: Vec<(FieldPath, KeyOrder)>,
    /// The pattern as given, for replies and index names.
    spec: bson::Document,
    /// A wildcard index's paths (its fields are then the path and the value).
    wildcard: Option<Wildcard>,
}

/// The keys one document gives an index.
#[derive(Debug, Default, PartialEq)]
pub struct DocumentKeys<'a> {
    /// Distinct key tuples, one value per pattern field (hashed fields hold the value itself;
    /// storage hashes it).
    pub tuples: Vec<Vec<RawBsonRef<'a>>>,
    /// Whether an array was met on the way, which makes the index multikey.
    pub multikey: bool,
}

impl KeyPattern {
    /// Parses and validates a `key` document as mongod's `createIndexes` does.
    ///
    /// # Errors
    /// 67 CannotCreateIndex for empty or malformed patterns, 238 NotImplemented for text,
    /// geo and compound wildcard indexes, 31303 for two hashed fields.
    pub fn parse(spec: &RawDocument) -> Result<Self, QueryError> {
        let cannot = |message: String| QueryError::new(ErrorCode::CannotCreateIndex, message);
        let mut fields = Vec::new();
        for (name, value) in path::fields(spec) {
            if name.is_empty() {
                return Err(cannot("Index keys cannot be an empty field.".into()));
            }
            if name == "$**" || name.ends_with(".$**") {
                return Self::parse_wildcard(spec, name, value);
            }
            if name.split('.').any(|part| part.starts_with('$')) {
                return Err(cannot(format!(
                    "Index key contains an illegal field name: field name starts with '$'. {}",
                    render_spec(spec)
                )));
            }
            if name.split('.').any(str::is_empty) {
                return Err(cannot(format!("Index keys cannot contain an empty field. {}", render_spec(spec))));
            }
            let order = match value {
                RawBsonRef::Int32(_) | RawBsonRef::Int64(_) | RawBsonRef::Double(_) | RawBsonRef::Decimal128(_) => {
                    let nan = super::number::Number::from_raw(value).is_some_and(super::number::Number::is_nan);
                    match compare_values(value, RawBsonRef::Int32(0)) {
                        std::cmp::Ordering::Greater if !nan => KeyOrder::Ascending,
                        std::cmp::Ordering::Less if !nan => KeyOrder::Descending,
                        _ => {
                            return Err(cannot(format!(
                                "Values in the index key pattern can't be 0 or NaN. {}",
                                render_spec(spec)
                            )));
                        }
                    }
                }
                RawBsonRef::String("hashed") => KeyOrder::Hashed,
                // A stored text index's pattern (see `text::spec::normalize`, which turns the
                // text fields as given into these two).
                RawBsonRef::String("text") if name == text::spec::TERM_FIELD => KeyOrder::TextTerm,
                _ if name == text::spec::SCORE_FIELD => KeyOrder::TextScore,
                RawBsonRef::String("2dsphere") => KeyOrder::Sphere,
                RawBsonRef::String("2d") => KeyOrder::Flat,
                RawBsonRef::String(plugin @ ("text" | "geoHaystack")) => {
                    return Err(QueryError::not_implemented(&format!("'{plugin}' indexes")));
                }
                RawBsonRef::String(other) => return Err(cannot(format!("Unknown index plugin '{other}'"))),
                other => {
                    return Err(cannot(format!(
                        "Values in v:2 index key pattern cannot be of type {}. Only numbers > 0, numbers < 0, and \
                         strings are allowed.",
                        super::type_name(other.element_type())
                    )));
                }
            };
            if fields.iter().any(|(f, _): &(FieldPath, KeyOrder)| f.dotted() == name) {
                return Err(cannot(format!("Index key pattern has a duplicate field: {name}")));
            }
            fields.push((FieldPath::new(name), order));
        }
        if fields.is_empty() {
            return Err(cannot("Index keys cannot be empty.".into()));
        }
        if fields.len() > MAX_KEY_FIELDS {
            return Err(cannot(format!("Index key pattern has more than {MAX_KEY_FIELDS} fields")));
        }
        if fields.iter().skip(1).any(|(_, o)| *o == KeyOrder::Flat) {
            return Err(cannot("2d has to be first in index".into()));
        }
        if fields.iter().filter(|(_, o)| *o == KeyOrder::Flat).count() > 1 {
            return Err(cannot("Only one 2d field is allowed in an index".into()));
        }
        if fields.iter().filter(|(_, o)| *o == KeyOrder::Hashed).count() > 1 {
            return Err(QueryError::new(
                ErrorCode::Location31303,
                "A maximum of one index field is allowed to be hashed but found 2".to_owned(),
            ));
        }
        let spec = bson::Document::try_from(spec).map_err(QueryError::invalid_bson)?;
        Ok(Self { fields, spec, wildcard: None })
    }

    /// A wildcard pattern, `{"$**": 1}` or `{"<path>.$**": 1}`: its fields are the path and
    /// the value of each key.
    fn parse_wildcard(spec: &RawDocument, name: &str, value: RawBsonRef<'_>) -> Result<Self, QueryError> {
        if path::fields(spec).count() > 1 {
            return Err(QueryError::not_implemented("compound wildcard indexes"));
        }
        let root = name.strip_suffix("$**").unwrap_or_default().trim_end_matches('.');
        if root.split('.').any(|part| part.starts_with('$')) || (!root.is_empty() && root.split('.').any(str::is_empty))
        {
            return Err(QueryError::new(
                ErrorCode::CannotCreateIndex,
                format!("Index key contains an illegal field name: {}", render_spec(spec)),
            ));
        }
        match value {
            RawBsonRef::String("text") => return Err(QueryError::not_implemented("'text' indexes")),
            RawBsonRef::Int32(_) | RawBsonRef::Int64(_) | RawBsonRef::Double(_) | RawBsonRef::Decimal128(_)
                if compare_values(value, RawBsonRef::Int32(0)).is_gt() => {}
            _ => {
                return Err(QueryError::new(
                    ErrorCode::CannotCreateIndex,
                    format!("A numeric value in a $** index key pattern must be positive. {}", render_spec(spec)),
                ));
            }
        }
        Ok(Self {
            fields: vec![
                (FieldPath::new("$_path"), KeyOrder::WildcardPath),
                (FieldPath::new(name), KeyOrder::Ascending),
            ],
            spec: bson::Document::try_from(spec).map_err(QueryError::invalid_bson)?,
            wildcard: Some(Wildcard::of_key(name)),
        })
    }

    /// With a wildcard index's `wildcardProjection`.
    ///
    /// # Errors
    /// 2 BadValue when this is not a wildcard pattern; the projection's errors.
    pub fn with_wildcard_projection(mut self, projection: &bson::Document) -> Result<Self, QueryError> {
        let Some(wildcard) = self.wildcard.take() else {
            return Err(QueryError::new(
                ErrorCode::BadValue,
                "The field 'wildcardProjection' is only allowed in an 'wildcard' index",
            ));
        };
        self.wildcard = Some(wildcard.with_projection(projection)?);
        Ok(self)
    }

    /// A wildcard index's paths, if this is one.
    pub fn wildcard(&self) -> Option<&Wildcard> {
        self.wildcard.as_ref()
    }

    /// The pattern's fields in order.
    pub fn fields(&self) -> &[(FieldPath, KeyOrder)] {
        &self.fields
    }

    /// The pattern as given (`{a: 1, b: -1}`).
    pub fn spec(&self) -> &bson::Document {
        &self.spec
    }

    /// Whether this is a text index's pattern (`_fts: "text", _ftsx: 1` among its fields).
    pub fn is_text(&self) -> bool {
        self.fields.iter().any(|(_, o)| *o == KeyOrder::TextTerm)
    }

    /// The values of a text index's other fields in `doc`, before and after the text: each
    /// field's value reached through subdocuments only (null when missing).
    ///
    /// # Errors
    /// 16675 for an array in a field before the text.
    pub fn text_extras<'a>(
        &self,
        doc: &'a RawDocument,
    ) -> Result<(Vec<RawBsonRef<'a>>, Vec<RawBsonRef<'a>>), QueryError> {
        let (mut before, mut after) = (Vec::new(), Vec::new());
        let mut passed_text = false;
        for (field, order) in &self.fields {
            if matches!(order, KeyOrder::TextTerm | KeyOrder::TextScore) {
                passed_text = true;
                continue;
            }
            let value = value_through_documents(doc, field.dotted()).unwrap_or(RawBsonRef::Null);
            if passed_text {
                after.push(value);
            } else if matches!(value, RawBsonRef::Array(_)) {
                return Err(QueryError::new(
                    ErrorCode::Location16675,
                    "cannot have a multi-key as a prefix to a text index",
                ));
            } else {
                before.push(value);
            }
        }
        Ok((before, after))
    }

    /// The geo field of a 2dsphere or 2d index: its position, path and kind.
    pub fn geo_field(&self) -> Option<(usize, &FieldPath, KeyOrder)> {
        self.fields
            .iter()
            .enumerate()
            .find(|(_, (_, o))| matches!(o, KeyOrder::Sphere | KeyOrder::Flat))
            .map(|(i, (path, order))| (i, path, *order))
    }

    /// The values of the fields of a geo index's pattern in `doc` other than the geo field
    /// (reached through subdocuments only, null when missing), one per field in order, with
    /// `None` at the geo field's position.
    pub fn geo_extras<'a>(&self, doc: &'a RawDocument) -> Vec<Option<RawBsonRef<'a>>> {
        self.fields
            .iter()
            .map(|(field, order)| match order {
                KeyOrder::Sphere | KeyOrder::Flat => None,
                _ => Some(value_through_documents(doc, field.dotted()).unwrap_or(RawBsonRef::Null)),
            })
            .collect()
    }

    /// Whether a field is hashed.
    pub fn is_hashed(&self) -> bool {
        self.fields.iter().any(|(_, o)| *o == KeyOrder::Hashed)
    }

    /// mongod's generated index name: each field and its value joined by `_` (`a_1_b_-1`).
    pub fn default_name(&self) -> String {
        let mut parts = Vec::with_capacity(self.spec.len() * 2);
        for (field, value) in &self.spec {
            parts.push(field.clone());
            parts.push(match value {
                Bson::String(s) => s.clone(),
                Bson::Int32(n) => n.to_string(),
                Bson::Int64(n) => n.to_string(),
                Bson::Double(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
                other => other.to_string(),
            });
        }
        parts.join("_")
    }

    /// The keys `doc` gives this index.
    ///
    /// # Errors
    /// 171 CannotIndexParallelArrays when two fields meet arrays; 16766 when a hashed field
    /// holds an array.
    pub fn keys<'a>(&self, doc: &'a RawDocument) -> Result<DocumentKeys<'a>, QueryError> {
        let mut per_field: Vec<Vec<RawBsonRef<'a>>> = Vec::with_capacity(self.fields.len());
        let mut array_field: Option<usize> = None;
        let mut multikey = false;
        for (position, (field, order)) in self.fields.iter().enumerate() {
            let mut values: Vec<RawBsonRef<'a>> = Vec::with_capacity(1);
            let saw_array = path::walk_index_keys(doc, field, &mut |value| {
                if !values.iter().any(|seen| compare_values(*seen, value).is_eq() && same_kind(*seen, value)) {
                    values.push(value);
                }
            });
            if saw_array {
                if *order == KeyOrder::Hashed {
                    return Err(QueryError::new(
                        ErrorCode::Location16766,
                        "Error: hashed indexes do not currently support array values",
                    ));
                }
                if let Some(first) = array_field {
                    let name = |i: usize| self.fields.get(i).map_or("", |(f, _)| f.dotted()).to_owned();
                    return Err(QueryError::new(
                        ErrorCode::CannotIndexParallelArrays,
                        format!("cannot index parallel arrays [{}] [{}]", name(position), name(first)),
                    ));
                }
                array_field = Some(position);
                multikey = true;
            }
            per_field.push(values);
        }
        // At most one field has several values: the tuples are its values with the others fixed.
        let mut tuples = vec![Vec::with_capacity(self.fields.len())];
        for values in per_field {
            if let [single] = values.as_slice() {
                for tuple in &mut tuples {
                    tuple.push(*single);
                }
            } else {
                tuples = tuples
                    .into_iter()
                    .flat_map(|prefix| {
                        values.iter().map(move |v| {
                            let mut tuple = prefix.clone();
                            tuple.push(*v);
                            tuple
                        })
                    })
                    .collect();
            }
        }
        Ok(DocumentKeys { tuples, multikey })
    }

    /// Whether every field of the pattern is missing from `doc` (a sparse index skips it).
    pub fn all_missing(&self, doc: &RawDocument) -> bool {
        self.fields.iter().all(|(field, _)| !path::any(doc, field, |r| !matches!(r, path::Reached::Missing)))
    }
}

/// The value at a dotted path, descending through subdocuments only.
pub fn value_through_documents<'a>(doc: &'a RawDocument, dotted: &str) -> Option<RawBsonRef<'a>> {
    let mut parts = dotted.split('.');
    let mut value = doc.get(parts.next()?).ok().flatten()?;
    for part in parts {
        let RawBsonRef::Document(inner) = value else { return None };
        value = inner.get(part).ok().flatten()?;
    }
    Some(value)
}

/// Equal values of different kinds that a key keeps apart: mongod's keys keep `1` and `1.0`
/// as one key, but null and undefined (an empty array) as two.
fn same_kind(a: RawBsonRef<'_>, b: RawBsonRef<'_>) -> bool {
    matches!(a, RawBsonRef::Undefined) == matches!(b, RawBsonRef::Undefined)
}

fn render_spec(spec: &RawDocument) -> String {
    bson::Document::try_from(spec).map(|d| d.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use bson::{RawBson, rawdoc};

    use super::*;

    fn pattern(spec: RawDocumentBuf) -> KeyPattern {
        KeyPattern::parse(&spec).unwrap()
    }

    use bson::RawDocumentBuf;

    fn owned(keys: &DocumentKeys<'_>) -> Vec<Vec<RawBson>> {
        keys.tuples.iter().map(|t| t.iter().map(|v| RawBson::from(*v)).collect()).collect()
    }

    #[test]
    fn index_key_names_follow_mongod() {
        let cases = [
            (rawdoc! { "a": 1 }, "a_1"),
            (rawdoc! { "a": 1, "b": -1 }, "a_1_b_-1"),
            (rawdoc! { "a.b": 1.0 }, "a.b_1"),
            (rawdoc! { "h": "hashed" }, "h_hashed"),
            (rawdoc! { "x": 1_i64, "y": -1.0 }, "x_1_y_-1"),
        ];
        for (spec, name) in cases {
            assert_eq!(pattern(spec).default_name(), name);
        }
    }

    #[test]
    fn index_key_patterns_are_validated() {
        let cases = [
            (rawdoc! {}, 67),
            (rawdoc! { "a": 0 }, 67),
            (rawdoc! { "a": "nope" }, 67),
            (rawdoc! { "a": true }, 67),
            (rawdoc! { "$a": 1 }, 67),
            (rawdoc! { "a..b": 1 }, 67),
            (rawdoc! { "a": "text" }, 238),
            (rawdoc! { "$**": 1, "a": 1 }, 238),
            (rawdoc! { "$**": -1 }, 67),
            (rawdoc! { "$**": "text" }, 238),
            (rawdoc! { "a": "hashed", "b": "hashed" }, 31303),
        ];
        for (spec, code) in cases {
            let err = KeyPattern::parse(&spec).unwrap_err();
            assert_eq!(err.code().code(), code, "{spec:?}: {err}");
        }
    }

    #[test]
    fn index_keys_from_documents() {
        let p = pattern(rawdoc! { "a": 1, "b": -1 });
        let cases: Vec<(RawDocumentBuf, Vec<Vec<RawBson>>, bool)> = vec![
            (rawdoc! { "a": 1, "b": 2 }, vec![vec![RawBson::Int32(1), RawBson::Int32(2)]], false),
            (rawdoc! { "b": 2 }, vec![vec![RawBson::Null, RawBson::Int32(2)]], false),
            (
                rawdoc! { "a": [1, 2, 1], "b": "x" },
                vec![
                    vec![RawBson::Int32(1), RawBson::String("x".into())],
                    vec![RawBson::Int32(2), RawBson::String("x".into())],
                ],
                true,
            ),
            (rawdoc! { "a": [], "b": 1 }, vec![vec![RawBson::Undefined, RawBson::Int32(1)]], true),
            (rawdoc! { "a": [5], "b": 1 }, vec![vec![RawBson::Int32(5), RawBson::Int32(1)]], true),
        ];
        for (doc, expected, multikey) in cases {
            let keys = p.keys(&doc).unwrap();
            assert_eq!(owned(&keys), expected, "{doc:?}");
            assert_eq!(keys.multikey, multikey, "{doc:?}");
        }
    }

    #[test]
    fn index_keys_through_arrays_of_documents() {
        let p = pattern(rawdoc! { "a.b": 1 });
        let doc = rawdoc! { "a": [{ "b": 1 }, { "c": 2 }, { "b": [3, 1] }] };
        let keys = p.keys(&doc).unwrap();
        assert_eq!(owned(&keys), vec![vec![RawBson::Int32(1)], vec![RawBson::Null], vec![RawBson::Int32(3)]]);
        assert!(keys.multikey);
    }

    #[test]
    fn index_keys_refuse_parallel_arrays_and_hashed_arrays() {
        let p = pattern(rawdoc! { "a": 1, "b": 1 });
        let err = p.keys(&rawdoc! { "a": [1], "b": [2] }).unwrap_err();
        assert_eq!(err.code().code(), 171);
        assert_eq!(err.message(), "cannot index parallel arrays [b] [a]");
        let hashed = pattern(rawdoc! { "h": "hashed" });
        assert_eq!(hashed.keys(&rawdoc! { "h": [1] }).unwrap_err().code().code(), 16766);
    }

    #[test]
    fn index_key_sparse_skips_documents_missing_every_field() {
        let p = pattern(rawdoc! { "a": 1, "b": 1 });
        assert!(p.all_missing(&rawdoc! { "c": 1 }));
        assert!(!p.all_missing(&rawdoc! { "b": null }));
        assert!(!p.all_missing(&rawdoc! { "a": { "x": 1 } }));
    }
}
