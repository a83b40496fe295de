//! Sort specifications and mongod's sort order for documents.
//!
//! Each key sorts by the value its path reaches; when the path reaches several values (an
//! array), ascending uses the smallest and descending the largest. Missing and null sort
//! alike, first when ascending; an empty array sorts below them. Documents equal on every key
//! compare equal, so a stable sort keeps record order for ties.

use std::cmp::Ordering;
use std::sync::Arc;

use bson::{RawBsonRef, RawDocument};

use super::collation::Collation;
use super::error::QueryError;
use super::order::compare_collated;
use super::path::{FieldPath, walk_sort_keys};
use super::render;
use super::text::TextScores;
use crate::error::ErrorCode;

/// A parsed sort specification.
#[derive(Debug, Clone)]
pub struct SortSpec {
    keys: Vec<SortKeyPart>,
    natural: Option<bool>,
    /// The collation strings sort under; `None` is the simple collation.
    collation: Option<Arc<Collation>>,
    /// The scores `{$meta: "textScore"}` keys sort by.
    text_scores: Option<Arc<TextScores>>,
}

#[derive(Debug, Clone)]
struct SortKeyPart {
    path: FieldPath,
    ascending: bool,
    /// `{$meta: "textScore"}`: the document's text score, highest first.
    text_score: bool,
}

/// The values one document sorts by, one per key of the spec.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey<'a>(Vec<RawBsonRef<'a>>);

impl<'a> SortKey<'a> {
    /// A key of these values, one per key of the spec (a key kept apart from its document).
    pub fn from_values(values: Vec<RawBsonRef<'a>>) -> Self {
        Self(values)
    }

    /// The values, one per key of the spec.
    pub fn values(&self) -> &[RawBsonRef<'a>] {
        &self.0
    }
}

impl SortSpec {
    /// Parses a sort spec: each value 1 or -1; `$natural` is accepted and reported by
    /// [`SortSpec::natural`].
    ///
    /// # Errors
    /// 15974 for a value that is not a number, 15975 for a number other than 1 or -1, 17312
    /// for an object other than `{$meta: ...}`, 238 for `$meta` sorts, and mongod's field path
    /// errors (40352, 40353, 15998, 16410).
    pub fn parse(spec: &RawDocument) -> Result<Self, QueryError> {
        let mut keys = Vec::new();
        let mut natural = None;
        for item in spec.iter() {
            let (key, value) = item.map_err(QueryError::invalid_bson)?;
            let key = key.as_str();
            let Some(ascending) = parse_direction(key, value)? else {
                keys.push(SortKeyPart { path: FieldPath::new(key), ascending: false, text_score: true });
                continue;
            };
            if key == "$natural" {
                natural = Some(ascending);
                continue;
            }
            super::path::checked_parts(key)?;
            keys.push(SortKeyPart { path: FieldPath::new(key), ascending, text_score: false });
        }
        Ok(Self { keys, natural, collation: None, text_scores: None })
    }

    /// Makes `{$meta: "textScore"}` keys sort by `scores` (a `$text` search's).
    ///
    /// # Errors
    /// 40218 when the spec sorts by text score and there is no search.
    pub fn with_text_scores(mut self, scores: Option<&Arc<TextScores>>) -> Result<Self, QueryError> {
        if scores.is_none() && self.keys.iter().any(|k| k.text_score) {
            return Err(QueryError::new(
                ErrorCode::Location40218,
                "query requires text score metadata, but it is not available",
            ));
        }
        self.text_scores = scores.cloned();
        Ok(self)
    }

    /// Sorts strings under `collation` (`None`: the simple collation).
    #[must_use]
    pub fn with_collation(mut self, collation: Option<&Arc<Collation>>) -> Self {
        self.collation = collation.cloned();
        self
    }

    /// `Some(ascending)` when the spec asks for `$natural` (record) order.
    pub fn natural(&self) -> Option<bool> {
        self.natural
    }

    /// The field keys in order: each path and whether it sorts ascending.
    pub fn fields(&self) -> impl Iterator<Item = (&str, bool)> {
        self.keys.iter().map(|k| (k.path.dotted(), k.ascending))
    }

    /// Whether the spec has no field keys (an empty spec, or only `$natural`).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key `doc` sorts by; compute it once per document when sorting many.
    pub fn key<'a>(&self, doc: &'a RawDocument) -> SortKey<'a> {
        let collation = self.collation.as_deref();
        SortKey(
            self.keys
                .iter()
                .map(|part| match (&self.text_scores, part.text_score) {
                    (Some(scores), true) => RawBsonRef::Double(scores.score_of(doc).unwrap_or_default()),
                    _ => key_value(doc, part, collation),
                })
                .collect(),
        )
    }

    /// Compares two keys made by [`SortSpec::key`].
    pub fn compare_keys(&self, a: &SortKey<'_>, b: &SortKey<'_>) -> Ordering {
        for ((part, x), y) in self.keys.iter().zip(&a.0).zip(&b.0) {
            let ord = compare_collated(*x, *y, self.collation.as_deref());
            let ord = if part.ascending { ord } else { ord.reverse() };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    }

    /// Compares two documents in this sort's order.
    pub fn compare(&self, a: &RawDocument, b: &RawDocument) -> Ordering {
        self.compare_keys(&self.key(a), &self.key(b))
    }
}

/// mongod's rule: a number, truncated to an integer, must be 1 or -1 (`Some(ascending)`);
/// `{$meta: "textScore"}` is `None`.
fn parse_direction(key: &str, value: RawBsonRef<'_>) -> Result<Option<bool>, QueryError> {
    let direction = match value {
        RawBsonRef::Document(meta) => {
            let mut fields = super::elements::fields(meta);
            let (first, second) = (fields.next(), fields.next());
            return match (first, second) {
                (Some(("$meta", RawBsonRef::String("textScore"))), None) => Ok(None),
                (Some(("$meta", RawBsonRef::String(other))), None) => match other {
                    "randVal" | "searchScore" | "geoNearDistance" | "vectorSearchScore" | "score" => {
                        Err(QueryError::not_implemented(&format!("$meta sort by \"{other}\"")))
                    }
                    _ => Err(QueryError::new(
                        ErrorCode::Location17308,
                        format!("Unsupported argument to $meta: {other}"),
                    )),
                },
                (Some(("$meta", _)), None) => {
                    Err(QueryError::new(ErrorCode::Location17307, "$meta only supports string arguments"))
                }
                _ => Err(QueryError::new(
                    ErrorCode::Location17312,
                    "$meta is the only expression supported by $sort right now",
                )),
            };
        }
        RawBsonRef::Int32(i) => i64::from(i),
        RawBsonRef::Int64(i) => i,
        // Saturating, NaN to 0: C++'s `safeNumberLong`.
        RawBsonRef::Double(d) => d as i64,
        RawBsonRef::Decimal128(d) => decimal_direction(d),
        _ => {
            return Err(QueryError::new(
                ErrorCode::Location15974,
                format!("Illegal key in $sort specification: {}", render::element(key, value)),
            ));
        }
    };
    match direction {
        1 => Ok(Some(true)),
        -1 => Ok(Some(false)),
        _ => Err(QueryError::new(
            ErrorCode::Location15975,
            "$sort key ordering must be 1 (for ascending) or -1 (for descending)",
        )),
    }
}

/// A decimal direction truncated toward zero; only 1 and -1 matter, so anything else is 0.
fn decimal_direction(d: bson::Decimal128) -> i64 {
    use super::number::{Number, compare};
    let cmp = |x: f64| compare(Number::Decimal(d), Number::Double(x));
    if cmp(1.0).is_ge() && cmp(2.0).is_lt() {
        1
    } else if cmp(-2.0).is_gt() && cmp(-1.0).is_le() {
        -1
    } else {
        0
    }
}

/// The smallest (ascending) or largest (descending) value the path reaches.
fn key_value<'a>(doc: &'a RawDocument, part: &SortKeyPart, collation: Option<&Collation>) -> RawBsonRef<'a> {
    let mut best: Option<RawBsonRef<'a>> = None;
    walk_sort_keys(doc, &part.path, &mut |value| {
        let better = best.is_none_or(|current| {
            let ord = compare_collated(value, current, collation);
            if part.ascending { ord.is_lt() } else { ord.is_gt() }
        });
        if better {
            best = Some(value);
        }
    });
    best.unwrap_or(RawBsonRef::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{RawDocumentBuf, rawdoc};

    fn spec(s: RawDocumentBuf) -> SortSpec {
        SortSpec::parse(&s).unwrap()
    }

    fn sorted(s: RawDocumentBuf, docs: Vec<RawDocumentBuf>) -> Vec<i32> {
        let spec = spec(s);
        let mut docs = docs;
        docs.sort_by(|a, b| spec.compare(a, b));
        docs.iter().map(|d| d.get_i32("n").unwrap()).collect()
    }

    fn parse_err(s: RawDocumentBuf) -> (i32, String) {
        let err = SortSpec::parse(&s).unwrap_err();
        (err.code().code(), err.message().to_owned())
    }

    #[test]
    fn sort_strings_under_collation() {
        let collation = Arc::new(Collation::parse(&rawdoc! { "locale": "en" }).unwrap().unwrap());
        let docs = vec![
            rawdoc! { "n": 1, "a": "b" },
            rawdoc! { "n": 2, "a": "B" },
            rawdoc! { "n": 3, "a": "a" },
            rawdoc! { "n": 4, "a": ["C", "A"] },
        ];
        let english = spec(rawdoc! { "a": 1 }).with_collation(Some(&collation));
        let mut sorted_en = docs.clone();
        sorted_en.sort_by(|x, y| english.compare(x, y));
        let order: Vec<i32> = sorted_en.iter().map(|d| d.get_i32("n").unwrap()).collect();
        // The array sorts by its smallest element under the collation ("A", after "a").
        assert_eq!(order, vec![3, 4, 1, 2]);
        assert_eq!(sorted(rawdoc! { "a": 1 }, docs), vec![4, 2, 3, 1]);
    }

    #[test]
    fn sort_ascending_and_descending_numbers() {
        let docs = vec![rawdoc! { "n": 1, "a": 3 }, rawdoc! { "n": 2, "a": 1.5 }, rawdoc! { "n": 3, "a": 2_i64 }];
        assert_eq!(sorted(rawdoc! { "a": 1 }, docs.clone()), vec![2, 3, 1]);
        assert_eq!(sorted(rawdoc! { "a": -1 }, docs), vec![1, 3, 2]);
    }

    #[test]
    fn sort_missing_and_null_equal_and_first() {
        let docs = vec![rawdoc! { "n": 1, "a": 1 }, rawdoc! { "n": 2 }, rawdoc! { "n": 3, "a": null }];
        assert_eq!(sorted(rawdoc! { "a": 1 }, docs.clone()), vec![2, 3, 1]);
        assert_eq!(sorted(rawdoc! { "a": -1 }, docs), vec![1, 2, 3]);
    }

    #[test]
    fn sort_array_by_min_ascending_max_descending() {
        let docs = vec![rawdoc! { "n": 1, "a": [1, 10] }, rawdoc! { "n": 2, "a": 5 }, rawdoc! { "n": 3, "a": [] }];
        assert_eq!(sorted(rawdoc! { "a": 1 }, docs.clone()), vec![3, 1, 2]);
        assert_eq!(sorted(rawdoc! { "a": -1 }, docs), vec![1, 2, 3]);
    }

    #[test]
    fn sort_mixed_types_by_bracket() {
        let docs = vec![rawdoc! { "n": 1, "a": "s" }, rawdoc! { "n": 2, "a": 5 }, rawdoc! { "n": 3, "a": {} }];
        assert_eq!(sorted(rawdoc! { "a": 1 }, docs), vec![2, 1, 3]);
    }

    #[test]
    fn sort_multi_key_and_ties_equal() {
        let docs = vec![
            rawdoc! { "n": 1, "a": 1, "b": 1 },
            rawdoc! { "n": 2, "a": 1, "b": 2 },
            rawdoc! { "n": 3, "a": 0, "b": 9 },
            rawdoc! { "n": 4, "a": 1, "b": 2 },
        ];
        assert_eq!(sorted(rawdoc! { "a": -1, "b": -1 }, docs), vec![2, 4, 1, 3]);
    }

    #[test]
    fn sort_dotted_through_array_of_documents() {
        let docs = vec![rawdoc! { "n": 1, "a": [ { "b": 5 }, { "b": 1 } ] }, rawdoc! { "n": 2, "a": { "b": 3 } }];
        assert_eq!(sorted(rawdoc! { "a.b": 1 }, docs.clone()), vec![1, 2]);
        assert_eq!(sorted(rawdoc! { "a.b": -1 }, docs), vec![1, 2]);
    }

    #[test]
    fn sort_natural_is_reported() {
        let s = spec(rawdoc! { "$natural": -1 });
        assert_eq!(s.natural(), Some(false));
        assert!(s.is_empty());
    }

    #[test]
    fn sort_direction_errors() {
        let bad_order = "$sort key ordering must be 1 (for ascending) or -1 (for descending)";
        assert_eq!(parse_err(rawdoc! { "a": 0 }), (15975, bad_order.into()));
        assert_eq!(parse_err(rawdoc! { "a": 42.12 }).0, 15975);
        assert_eq!(parse_err(rawdoc! { "a": i64::MAX }).0, 15975);
        assert_eq!(
            parse_err(rawdoc! { "asc": "123" }),
            (15974, r#"Illegal key in $sort specification: asc: "123""#.into())
        );
        assert_eq!(parse_err(rawdoc! { "a": null }).1, "Illegal key in $sort specification: a: null");
        assert_eq!(parse_err(rawdoc! { "a": { "b": 1 } }).0, 17312);
        assert_eq!(parse_err(rawdoc! { "a": { "$meta": "randVal" } }).0, 238);
        assert_eq!(parse_err(rawdoc! { "a": { "$meta": "other" } }).0, 17308);
        let text = spec(rawdoc! { "s": { "$meta": "textScore" } });
        assert_eq!(text.clone().with_text_scores(None).unwrap_err().code().code(), 40218);
        // By score, highest first.
        let scores = crate::query::text::TextScores::shared();
        for (id, score) in [(1, 0.5), (2, 2.0), (3, 1.0)] {
            scores.record(bson::RawBsonRef::Int32(id), score);
        }
        let text = text.with_text_scores(Some(&scores)).unwrap();
        let mut docs = [rawdoc! { "_id": 1, "n": 1 }, rawdoc! { "_id": 2, "n": 2 }, rawdoc! { "_id": 3, "n": 3 }];
        docs.sort_by(|a, b| text.compare(a, b));
        assert_eq!(docs.iter().map(|d| d.get_i32("n").unwrap()).collect::<Vec<_>>(), [2, 3, 1]);
        assert_eq!(parse_err(rawdoc! { "$a": 1 }).0, 16410);
        assert!(spec(rawdoc! { "a": 1.5, "b": -1.0 }).keys[0].ascending);
    }

    #[test]
    fn sort_array_element_without_field_sorts_as_null() {
        // {b: 5} and {c: 1} give the keys 5 and null: ascending uses null, descending 5.
        let docs = vec![
            rawdoc! { "n": 1, "a": [ { "b": 5 }, { "c": 1 } ] },
            rawdoc! { "n": 2, "a": { "b": 1 } },
            rawdoc! { "n": 3, "a": [ { "b": 3 } ] },
        ];
        assert_eq!(sorted(rawdoc! { "a.b": 1 }, docs.clone()), vec![1, 2, 3]);
        assert_eq!(sorted(rawdoc! { "a.b": -1 }, docs), vec![1, 3, 2]);
    }

    #[test]
    fn sort_equal_numbers_of_different_types_keep_record_order() {
        let docs = vec![
            rawdoc! { "n": 1, "a": 1.0 },
            rawdoc! { "n": 2, "a": 1_i64 },
            rawdoc! { "n": 3, "a": 0 },
            rawdoc! { "n": 4, "a": 1 },
        ];
        assert_eq!(sorted(rawdoc! { "a": 1 }, docs.clone()), vec![3, 1, 2, 4]);
        assert_eq!(sorted(rawdoc! { "a": -1 }, docs), vec![1, 2, 4, 3]);
    }

    #[test]
    fn sort_nested_array_element_is_one_value() {
        // An array inside the array is not expanded: it compares as an array, above numbers.
        let docs = vec![rawdoc! { "n": 1, "a": [[0]] }, rawdoc! { "n": 2, "a": [5] }];
        assert_eq!(sorted(rawdoc! { "a": 1 }, docs), vec![2, 1]);
    }
}
