//! Query filters: parsed once into a tree of predicates, then matched against documents.
//!
//! Supported now: implicit equality, `$eq $ne $gt $gte $lt $lte $in $nin $exists` on dotted
//! paths, and `$and $or $nor`. Operators mongod knows but Monarch has not built yet answer
//! 238 NotImplemented; unknown ones answer mongod's 2 BadValue. New leaf operators (`$regex`,
//! `$type`, `$size`, `$mod`, ...) become new [`Predicate`] variants; `$elemMatch` and `$not`
//! become new [`Expr`] variants next to `Not`.

use std::cmp::Ordering;

use bson::{Bson, Document, RawBson, RawBsonRef, RawDocument};

use super::error::QueryError;
use super::order::{MISSING_BRACKET, NULL_BRACKET, canonical_type, compare_values};
use super::path::{self, FieldPath, Reached};
use crate::error::ErrorCode;

/// A compiled query filter.
#[derive(Debug, Clone)]
pub struct Filter {
    root: Expr,
}

/// A node of the filter tree.
#[derive(Debug, Clone)]
enum Expr {
    /// Every child matches (an empty `And` matches everything).
    And(Vec<Expr>),
    /// Some child matches.
    Or(Vec<Expr>),
    /// No child matches.
    Nor(Vec<Expr>),
    /// The child does not match (`$ne`, `$nin`, `$exists: false`): negation over the whole
    /// path, so `{a: {$ne: 1}}` rejects `{a: [1, 2]}`.
    Not(Box<Expr>),
    /// Something reached at `path` satisfies `pred`.
    Path { path: FieldPath, pred: Predicate },
}

/// A test of one value reached at a path.
#[derive(Debug, Clone)]
enum Predicate {
    /// `$eq`, `$lt`, `$lte`, `$gt`, `$gte` against a value.
    Compare { op: CompareOp, rhs: RawBson },
    /// `$in`: equality with any of a sorted list.
    In(InList),
    /// `$exists: true`.
    Exists,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CompareOp {
    Eq,
    Lt,
    Lte,
    Gt,
    Gte,
}

#[derive(Debug, Clone)]
struct InList {
    /// Sorted in BSON order, for binary search.
    values: Vec<RawBson>,
    /// A null in the list also matches missing and undefined, as `{$eq: null}` does.
    has_null: bool,
}

impl Filter {
    /// Compiles a filter document.
    ///
    /// # Errors
    /// 2 BadValue for unknown operators and malformed arguments (mongod's messages), 238
    /// NotImplemented for operators not built yet.
    pub fn parse(filter: &RawDocument) -> Result<Self, QueryError> {
        Ok(Self { root: parse_document(filter)? })
    }

    /// Whether `doc` matches.
    pub fn matches(&self, doc: &RawDocument) -> bool {
        self.root.matches(doc)
    }

    /// The document an upsert starts from: the filter's equalities (also inside `$and`, and a
    /// one-element `$in` or `$or`), dotted paths turned into nested documents, `_id` first.
    ///
    /// # Errors
    /// 54 NotSingleValueField when two equalities claim the same path or one path and its
    /// prefix; 28 PathNotViable when a dotted equality runs through another one's scalar.
    pub fn equality_seed(&self) -> Result<Document, QueryError> {
        let mut equalities: Vec<(&str, &RawBson)> = Vec::new();
        collect_equalities(&self.root, &mut equalities)?;
        // mongod keeps them in a map ordered by path and sets them in that order.
        equalities.sort_by(|a, b| a.0.cmp(b.0));
        let mut seed = Document::new();
        for (path, value) in equalities {
            let value = Bson::try_from(value.clone()).map_err(QueryError::invalid_bson)?;
            set_seed_path(&mut seed, path, value)?;
        }
        Ok(move_id_first(seed))
    }
}

impl Expr {
    fn matches(&self, doc: &RawDocument) -> bool {
        match self {
            Expr::And(children) => children.iter().all(|c| c.matches(doc)),
            Expr::Or(children) => children.iter().any(|c| c.matches(doc)),
            Expr::Nor(children) => !children.iter().any(|c| c.matches(doc)),
            Expr::Not(child) => !child.matches(doc),
            Expr::Path { path, pred } => path::any(doc, path, |reached| pred.matches(reached)),
        }
    }
}

impl Predicate {
    fn matches(&self, reached: Reached<'_>) -> bool {
        let value = match reached {
            Reached::Missing => None,
            Reached::Value { value, .. } => Some(value),
        };
        match self {
            Predicate::Compare { op, rhs } => compare_matches(*op, value, rhs.as_raw_bson_ref()),
            Predicate::In(list) => list.contains(value),
            Predicate::Exists => value.is_some(),
        }
    }
}

/// mongod's `ComparisonMatchExpression::matchesSingleElement`; `None` is a missing value.
fn compare_matches(op: CompareOp, value: Option<RawBsonRef<'_>>, rhs: RawBsonRef<'_>) -> bool {
    let value_bracket = value.map_or(MISSING_BRACKET, canonical_type);
    let rhs_bracket = canonical_type(rhs);
    if value_bracket != rhs_bracket {
        // Null matches missing and undefined for the comparisons that include equality.
        if (value_bracket, rhs_bracket) == (MISSING_BRACKET, NULL_BRACKET) {
            return matches!(op, CompareOp::Eq | CompareOp::Lte | CompareOp::Gte);
        }
        return match rhs {
            RawBsonRef::MaxKey => matches!(op, CompareOp::Lt | CompareOp::Lte),
            RawBsonRef::MinKey => matches!(op, CompareOp::Gt | CompareOp::Gte),
            _ => false,
        };
    }
    // Same bracket and a missing value would mean rhs is undefined, which parse refuses.
    let Some(value) = value else { return false };
    if op != CompareOp::Eq {
        // NaN equals NaN but is neither below nor above anything.
        let (value_nan, rhs_nan) = (is_nan(value), is_nan(rhs));
        if value_nan || rhs_nan {
            return matches!(op, CompareOp::Lte | CompareOp::Gte) && value_nan && rhs_nan;
        }
    }
    let ord = compare_values(value, rhs);
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Lte => ord != Ordering::Greater,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Gte => ord != Ordering::Less,
    }
}

fn is_nan(v: RawBsonRef<'_>) -> bool {
    super::number::Number::from_raw(v).is_some_and(super::number::Number::is_nan)
}

impl InList {
    fn contains(&self, value: Option<RawBsonRef<'_>>) -> bool {
        match value {
            None | Some(RawBsonRef::Undefined) if self.has_null => true,
            None => false,
            Some(v) => self.values.binary_search_by(|probe| compare_values(probe.as_raw_bson_ref(), v)).is_ok(),
        }
    }
}

fn parse_document(doc: &RawDocument) -> Result<Expr, QueryError> {
    let mut children = Vec::new();
    for item in doc.iter() {
        let (key, value) = item.map_err(QueryError::invalid_bson)?;
        let key = key.as_str();
        if key.starts_with('$') {
            if let Some(expr) = parse_top_level(key, value)? {
                children.push(expr);
            }
        } else {
            parse_field(key, value, &mut children)?;
        }
    }
    Ok(if children.len() == 1 { children.remove(0) } else { Expr::And(children) })
}

/// A `$`-prefixed key at the top of a filter (or of an `$and`/`$or`/`$nor` entry).
fn parse_top_level(key: &str, value: RawBsonRef<'_>) -> Result<Option<Expr>, QueryError> {
    match key {
        "$and" => Ok(Some(Expr::And(parse_list(key, value)?))),
        "$or" => Ok(Some(Expr::Or(parse_list(key, value)?))),
        "$nor" => Ok(Some(Expr::Nor(parse_list(key, value)?))),
        "$comment" => Ok(None),
        // DBRef fields are matched as ordinary fields named "$ref", "$id" and "$db".
        "$ref" | "$id" | "$db" => Ok(Some(equality(key, value)?)),
        "$expr" | "$where" | "$text" | "$jsonSchema" | "$alwaysTrue" | "$alwaysFalse" | "$sampleRate" => {
            Err(QueryError::not_implemented(key))
        }
        _ => Err(QueryError::bad_value(format!("unknown top level operator: {key}"))),
    }
}

fn parse_list(key: &str, value: RawBsonRef<'_>) -> Result<Vec<Expr>, QueryError> {
    let RawBsonRef::Array(entries) = value else {
        return Err(QueryError::bad_value(format!("{key} must be an array")));
    };
    let mut children = Vec::new();
    for entry in entries {
        match entry.map_err(QueryError::invalid_bson)? {
            RawBsonRef::Document(doc) => children.push(parse_document(doc)?),
            _ => return Err(QueryError::bad_value("$or/$and/$nor entries need to be full objects")),
        }
    }
    if children.is_empty() {
        return Err(QueryError::bad_value("$and/$or/$nor must be a nonempty array"));
    }
    Ok(children)
}

/// `{path: value}`: operators when `value` is an operator document, equality otherwise.
fn parse_field(path: &str, value: RawBsonRef<'_>, out: &mut Vec<Expr>) -> Result<(), QueryError> {
    match value {
        RawBsonRef::Document(ops) if is_operator_document(ops) => {
            for item in ops.iter() {
                let (op, arg) = item.map_err(QueryError::invalid_bson)?;
                out.push(parse_operator(path, op.as_str(), arg)?);
            }
            Ok(())
        }
        RawBsonRef::RegularExpression(_) => Err(QueryError::not_implemented("$regex")),
        _ => {
            out.push(equality(path, value)?);
            Ok(())
        }
    }
}

/// mongod's `isExpressionDocument`: a non-empty document whose first field starts with `$`,
/// unless it is a DBRef (`$ref` and `$id`), which is compared as a value.
pub(crate) fn is_operator_document(doc: &RawDocument) -> bool {
    let first_is_operator = path::fields(doc).next().is_some_and(|(key, _)| key.starts_with('$'));
    first_is_operator && !(has_field(doc, "$ref") && has_field(doc, "$id"))
}

fn has_field(doc: &RawDocument, key: &str) -> bool {
    matches!(doc.get(key), Ok(Some(_)))
}

fn parse_operator(path: &str, op: &str, arg: RawBsonRef<'_>) -> Result<Expr, QueryError> {
    let leaf = |pred| Expr::Path { path: FieldPath::new(path), pred };
    let compare = |op| compare_predicate(path, op, arg).map(leaf);
    match op {
        "$eq" => compare(CompareOp::Eq),
        "$lt" => compare(CompareOp::Lt),
        "$lte" => compare(CompareOp::Lte),
        "$gt" => compare(CompareOp::Gt),
        "$gte" => compare(CompareOp::Gte),
        "$ne" => {
            if matches!(arg, RawBsonRef::RegularExpression(_)) {
                return Err(QueryError::bad_value("Can't have regex as arg to $ne."));
            }
            Ok(Expr::Not(Box::new(compare(CompareOp::Eq)?)))
        }
        "$in" => Ok(leaf(Predicate::In(in_list("$in", arg)?))),
        "$nin" => Ok(Expr::Not(Box::new(leaf(Predicate::In(in_list("$nin", arg)?))))),
        "$exists" => {
            let exists = leaf(Predicate::Exists);
            Ok(if true_value(arg) { exists } else { Expr::Not(Box::new(exists)) })
        }
        "$where" => Err(QueryError::bad_value("$where cannot be applied to a field")),
        "$not" | "$regex" | "$options" | "$type" | "$elemMatch" | "$all" | "$size" | "$mod" | "$bitsAllSet"
        | "$bitsAllClear" | "$bitsAnySet" | "$bitsAnyClear" | "$geoWithin" | "$geoIntersects" | "$near"
        | "$nearSphere" | "$within" | "$text" | "$expr" => Err(QueryError::not_implemented(op)),
        _ => Err(QueryError::bad_value(format!("unknown operator: {op}"))),
    }
}

fn equality(path: &str, value: RawBsonRef<'_>) -> Result<Expr, QueryError> {
    Ok(Expr::Path { path: FieldPath::new(path), pred: compare_predicate(path, CompareOp::Eq, value)? })
}

fn compare_predicate(path: &str, op: CompareOp, rhs: RawBsonRef<'_>) -> Result<Predicate, QueryError> {
    if op != CompareOp::Eq && matches!(rhs, RawBsonRef::RegularExpression(_)) {
        return Err(QueryError::bad_value(format!("Can't have RegEx as arg to predicate over field '{path}'.")));
    }
    if rhs == RawBsonRef::Undefined {
        return Err(QueryError::bad_value("cannot compare to undefined"));
    }
    Ok(Predicate::Compare { op, rhs: RawBson::from(rhs) })
}

fn in_list(op: &str, arg: RawBsonRef<'_>) -> Result<InList, QueryError> {
    let RawBsonRef::Array(entries) = arg else {
        return Err(QueryError::bad_value(format!("{op} needs an array")));
    };
    let mut list = InList { values: Vec::new(), has_null: false };
    for entry in entries {
        match entry.map_err(QueryError::invalid_bson)? {
            RawBsonRef::Document(doc) if is_operator_document(doc) => {
                return Err(QueryError::bad_value("cannot nest $ under $in"));
            }
            RawBsonRef::RegularExpression(_) => return Err(QueryError::not_implemented("$regex inside $in")),
            RawBsonRef::Undefined => {
                return Err(QueryError::bad_value("InMatchExpression equality cannot be undefined"));
            }
            value => {
                list.has_null |= value == RawBsonRef::Null;
                list.values.push(RawBson::from(value));
            }
        }
    }
    list.values.sort_by(|a, b| compare_values(a.as_raw_bson_ref(), b.as_raw_bson_ref()));
    Ok(list)
}

/// mongod's `BSONElement::trueValue`: false for false, zero, null and undefined.
pub(crate) fn true_value(v: RawBsonRef<'_>) -> bool {
    match v {
        RawBsonRef::Boolean(b) => b,
        RawBsonRef::Null | RawBsonRef::Undefined => false,
        RawBsonRef::Int32(i) => i != 0,
        RawBsonRef::Int64(i) => i != 0,
        RawBsonRef::Double(d) => d != 0.0,
        RawBsonRef::Decimal128(d) => {
            !matches!(super::number::decode_decimal(d), super::number::Decimal::Finite { coefficient: 0, .. })
        }
        _ => true,
    }
}

/// Gathers `(path, value)` for every equality an upsert can take, checking as mongod does
/// that no path is claimed twice and no path lies under an earlier one.
fn collect_equalities<'a>(expr: &'a Expr, out: &mut Vec<(&'a str, &'a RawBson)>) -> Result<(), QueryError> {
    match expr {
        Expr::And(children) => {
            for child in children {
                collect_equalities(child, out)?;
            }
        }
        Expr::Or(children) if children.len() == 1 => {
            for child in children {
                collect_equalities(child, out)?;
            }
        }
        Expr::Path { path, pred: Predicate::Compare { op: CompareOp::Eq, rhs } } => {
            add_equality(path.dotted(), rhs, out)?;
        }
        Expr::Path { path, pred: Predicate::In(list) } if list.values.len() == 1 => {
            for rhs in &list.values {
                add_equality(path.dotted(), rhs, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn add_equality<'a>(path: &'a str, rhs: &'a RawBson, out: &mut Vec<(&'a str, &'a RawBson)>) -> Result<(), QueryError> {
    for (seen, _) in out.iter() {
        let message = if *seen == path {
            format!("cannot infer query fields to set, path '{path}' is matched twice")
        } else if path.strip_prefix(seen).is_some_and(|rest| rest.starts_with('.')) {
            format!("cannot infer query fields to set, both paths '{path}' and '{seen}' are matched")
        } else {
            continue;
        };
        return Err(QueryError::new(ErrorCode::NotSingleValueField, message));
    }
    out.push((path, rhs));
    Ok(())
}

/// Sets `path` in the seed, creating documents on the way (mongod's `setElementAtPath`).
fn set_seed_path(seed: &mut Document, path: &str, value: Bson) -> Result<(), QueryError> {
    let mut parts = path.split('.').peekable();
    let mut current = seed;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            current.insert(part, value);
            return Ok(());
        }
        let next = current.entry(part.to_owned()).or_insert_with(|| Bson::Document(Document::new()));
        match next {
            Bson::Document(doc) => current = doc,
            other => {
                let element = super::render::owned_element(part, other);
                return Err(QueryError::new(
                    ErrorCode::PathNotViable,
                    format!("cannot use the part ({part} of {path}) to traverse the element ({{{element}}})"),
                ));
            }
        }
    }
    Ok(())
}

/// `doc` with `_id` moved to the front, where mongod keeps it in stored documents.
pub(crate) fn move_id_first(doc: Document) -> Document {
    if doc.keys().next().is_none_or(|k| k == "_id") || !doc.contains_key("_id") {
        return doc;
    }
    let mut out = Document::new();
    let mut rest = Vec::new();
    for (key, value) in doc {
        if key == "_id" {
            out.insert(key, value);
        } else {
            rest.push((key, value));
        }
    }
    out.extend(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, rawdoc};

    fn filter(spec: bson::RawDocumentBuf) -> Filter {
        Filter::parse(&spec).unwrap()
    }

    fn matches(spec: bson::RawDocumentBuf, doc: bson::RawDocumentBuf) -> bool {
        filter(spec).matches(&doc)
    }

    fn parse_err(spec: bson::RawDocumentBuf) -> (i32, String) {
        let err = Filter::parse(&spec).unwrap_err();
        (err.code().code(), err.message().to_owned())
    }

    #[test]
    fn filter_empty_matches_everything() {
        assert!(matches(rawdoc! {}, rawdoc! { "a": 1 }));
    }

    #[test]
    fn filter_eq_implicit_scalar() {
        assert!(matches(rawdoc! { "a": 1 }, rawdoc! { "a": 1 }));
        assert!(!matches(rawdoc! { "a": 1 }, rawdoc! { "a": 2 }));
        assert!(!matches(rawdoc! { "a": 1 }, rawdoc! {}));
    }

    #[test]
    fn filter_eq_mixed_numeric_types() {
        assert!(matches(rawdoc! { "a": 1 }, rawdoc! { "a": 1.0 }));
        assert!(matches(rawdoc! { "a": { "$eq": 2_i64 } }, rawdoc! { "a": 2 }));
        let dec: bson::Decimal128 = "3.0".parse().unwrap();
        assert!(matches(rawdoc! { "a": 3 }, rawdoc! { "a": dec }));
    }

    #[test]
    fn filter_eq_array_element_or_whole_array() {
        assert!(matches(rawdoc! { "a": 2 }, rawdoc! { "a": [1, 2, 3] }));
        assert!(matches(rawdoc! { "a": [1, 2] }, rawdoc! { "a": [1, 2] }));
        assert!(!matches(rawdoc! { "a": [2, 1] }, rawdoc! { "a": [1, 2] }));
        assert!(matches(rawdoc! { "a": [1, 2] }, rawdoc! { "a": [[1, 2], 3] }));
    }

    #[test]
    fn filter_eq_whole_document_is_order_sensitive() {
        assert!(matches(rawdoc! { "a": { "b": 1, "c": 2 } }, rawdoc! { "a": { "b": 1, "c": 2 } }));
        assert!(!matches(rawdoc! { "a": { "b": 1, "c": 2 } }, rawdoc! { "a": { "c": 2, "b": 1 } }));
    }

    #[test]
    fn filter_eq_dotted_through_array_of_documents() {
        let doc = rawdoc! { "a": [ { "b": 1 }, { "b": 2 } ] };
        assert!(matches(rawdoc! { "a.b": 2 }, doc.clone()));
        assert!(matches(rawdoc! { "a.1.b": 2 }, doc.clone()));
        assert!(!matches(rawdoc! { "a.0.b": 2 }, doc));
    }

    #[test]
    fn filter_eq_embedded_document_mixed_numbers() {
        assert!(matches(rawdoc! { "a": { "b": 1 } }, rawdoc! { "a": { "b": 1.0 } }));
        assert!(matches(rawdoc! { "a.b": 2_i64 }, rawdoc! { "a": { "b": 2.0 } }));
        assert!(!matches(rawdoc! { "a": { "b": 1 } }, rawdoc! { "a": { "b": 1, "c": 1 } }));
    }

    #[test]
    fn filter_in_whole_array_value() {
        let f = filter(rawdoc! { "a": { "$in": [[1, 2], "x"] } });
        assert!(f.matches(&rawdoc! { "a": [1, 2] }));
        assert!(f.matches(&rawdoc! { "a": ["x"] }));
        assert!(!f.matches(&rawdoc! { "a": [2, 1] }));
    }

    #[test]
    fn filter_eq_numeric_path_names_field_and_index() {
        assert!(matches(rawdoc! { "a.0": 5 }, rawdoc! { "a": [5, 6] }));
        assert!(matches(rawdoc! { "a.0": 5 }, rawdoc! { "a": { "0": 5 } }));
        assert!(!matches(rawdoc! { "a.1": 5 }, rawdoc! { "a": [5, 6] }));
    }

    #[test]
    fn filter_eq_null_matches_missing() {
        assert!(matches(rawdoc! { "a": null }, rawdoc! {}));
        assert!(matches(rawdoc! { "a": null }, rawdoc! { "a": null }));
        assert!(matches(rawdoc! { "a": null }, rawdoc! { "a": bson::RawBson::Undefined }));
        assert!(matches(rawdoc! { "a": null }, rawdoc! { "a": [1, null] }));
        assert!(!matches(rawdoc! { "a": null }, rawdoc! { "a": 0 }));
        assert!(!matches(rawdoc! { "a": null }, rawdoc! { "a": [] }));
    }

    #[test]
    fn filter_eq_null_dotted_legacy_semantics() {
        let f = filter(rawdoc! { "a.b": null });
        assert!(f.matches(&rawdoc! { "a": 4 }));
        assert!(f.matches(&rawdoc! { "a": {} }));
        assert!(f.matches(&rawdoc! { "a": [ { "b": 3 }, {} ] }));
        assert!(!f.matches(&rawdoc! { "a": [] }));
        assert!(!f.matches(&rawdoc! { "a": [1, 2] }));
        assert!(!f.matches(&rawdoc! { "a": [null] }));
        assert!(!f.matches(&rawdoc! { "a": { "b": "hi" } }));
    }

    #[test]
    fn filter_ne_null_is_the_opposite() {
        let f = filter(rawdoc! { "a": { "$ne": null } });
        assert!(!f.matches(&rawdoc! {}));
        assert!(!f.matches(&rawdoc! { "a": null }));
        assert!(!f.matches(&rawdoc! { "a": bson::RawBson::Undefined }));
        assert!(f.matches(&rawdoc! { "a": 4 }));
        assert!(f.matches(&rawdoc! { "a": [] }));
    }

    #[test]
    fn filter_ne_rejects_arrays_containing_the_value() {
        let f = filter(rawdoc! { "a": { "$ne": 1 } });
        assert!(!f.matches(&rawdoc! { "a": [1, 2] }));
        assert!(f.matches(&rawdoc! { "a": [2, 3] }));
        assert!(f.matches(&rawdoc! {}));
    }

    #[test]
    fn filter_gt_type_bracketing() {
        let f = filter(rawdoc! { "a": { "$gt": 5 } });
        assert!(f.matches(&rawdoc! { "a": 6 }));
        assert!(f.matches(&rawdoc! { "a": 5.5 }));
        assert!(!f.matches(&rawdoc! { "a": "zzz" }));
        assert!(!f.matches(&rawdoc! { "a": {} }));
        assert!(!f.matches(&rawdoc! {}));
        let s = filter(rawdoc! { "a": { "$lt": "b" } });
        assert!(s.matches(&rawdoc! { "a": "a" }));
        assert!(!s.matches(&rawdoc! { "a": 1 }));
    }

    #[test]
    fn filter_gt_any_array_element() {
        let f = filter(rawdoc! { "a": { "$gt": 5, "$lt": 10 } });
        // Each operator may be satisfied by a different element.
        assert!(f.matches(&rawdoc! { "a": [1, 20] }));
        assert!(!f.matches(&rawdoc! { "a": [1, 2] }));
    }

    #[test]
    fn filter_gte_lte_null_match_missing() {
        assert!(matches(rawdoc! { "a": { "$gte": null } }, rawdoc! {}));
        assert!(matches(rawdoc! { "a": { "$lte": null } }, rawdoc! { "a": null }));
        assert!(!matches(rawdoc! { "a": { "$gt": null } }, rawdoc! {}));
        assert!(!matches(rawdoc! { "a": { "$lt": null } }, rawdoc! { "a": null }));
    }

    #[test]
    fn filter_lt_maxkey_matches_everything_even_missing() {
        assert!(matches(rawdoc! { "a": { "$lt": bson::RawBson::MaxKey } }, rawdoc! {}));
        assert!(matches(rawdoc! { "a": { "$gt": bson::RawBson::MinKey } }, rawdoc! { "a": "x" }));
        assert!(!matches(rawdoc! { "a": { "$eq": bson::RawBson::MinKey } }, rawdoc! { "a": 1 }));
    }

    #[test]
    fn filter_lte_nan_only_matches_nan() {
        assert!(matches(rawdoc! { "a": { "$lte": f64::NAN } }, rawdoc! { "a": f64::NAN }));
        assert!(!matches(rawdoc! { "a": { "$lt": f64::NAN } }, rawdoc! { "a": 1 }));
        assert!(!matches(rawdoc! { "a": { "$gt": 1 } }, rawdoc! { "a": f64::NAN }));
        assert!(matches(rawdoc! { "a": f64::NAN }, rawdoc! { "a": f64::NAN }));
    }

    #[test]
    fn filter_lt_int64_against_double_exact() {
        let f = filter(rawdoc! { "a": { "$lt": 9.223372036854776e18 } });
        assert!(f.matches(&rawdoc! { "a": i64::MAX }));
        let g = filter(rawdoc! { "a": { "$gte": 9.223372036854776e18 } });
        assert!(!g.matches(&rawdoc! { "a": i64::MAX }));
    }

    #[test]
    fn filter_in_values_and_null() {
        let f = filter(rawdoc! { "a": { "$in": [null, 4] } });
        assert!(f.matches(&rawdoc! { "a": 4.0 }));
        assert!(f.matches(&rawdoc! {}));
        assert!(f.matches(&rawdoc! { "a": [7, 4] }));
        assert!(!f.matches(&rawdoc! { "a": 5 }));
        assert!(!filter(rawdoc! { "a": { "$in": [] } }).matches(&rawdoc! { "a": 1 }));
    }

    #[test]
    fn filter_nin_is_negated_in() {
        let f = filter(rawdoc! { "a": { "$nin": [null, 4] } });
        assert!(!f.matches(&rawdoc! {}));
        assert!(!f.matches(&rawdoc! { "a": [1, 4] }));
        assert!(f.matches(&rawdoc! { "a": 5 }));
    }

    #[test]
    fn filter_exists_true_and_false() {
        assert!(matches(rawdoc! { "a": { "$exists": true } }, rawdoc! { "a": null }));
        assert!(matches(rawdoc! { "a": { "$exists": 1 } }, rawdoc! { "a": [] }));
        assert!(!matches(rawdoc! { "a": { "$exists": true } }, rawdoc! {}));
        assert!(matches(rawdoc! { "a": { "$exists": false } }, rawdoc! {}));
        assert!(matches(rawdoc! { "a.b": { "$exists": false } }, rawdoc! { "a": [] }));
        assert!(!matches(rawdoc! { "a.b": { "$exists": false } }, rawdoc! { "a": [ { "b": 1 } ] }));
    }

    #[test]
    fn filter_and_or_nor() {
        let doc = rawdoc! { "a": 1, "b": 2 };
        assert!(matches(rawdoc! { "$and": [ { "a": 1 }, { "b": 2 } ] }, doc.clone()));
        assert!(matches(rawdoc! { "$or": [ { "a": 5 }, { "b": 2 } ] }, doc.clone()));
        assert!(!matches(rawdoc! { "$nor": [ { "a": 5 }, { "b": 2 } ] }, doc.clone()));
        assert!(matches(rawdoc! { "$nor": [ { "a": 5 } ], "b": 2 }, doc));
    }

    #[test]
    fn filter_dbref_document_is_a_value() {
        let f = filter(rawdoc! { "r": { "$ref": "c", "$id": 1 } });
        assert!(f.matches(&rawdoc! { "r": { "$ref": "c", "$id": 1 } }));
    }

    #[test]
    fn filter_unknown_operator_is_bad_value() {
        assert_eq!(parse_err(rawdoc! { "a": { "$foo": 1 } }), (2, "unknown operator: $foo".into()));
        assert_eq!(parse_err(rawdoc! { "a": { "$gt": 1, "b": 1 } }), (2, "unknown operator: b".into()));
        assert_eq!(parse_err(rawdoc! { "$foo": 1 }), (2, "unknown top level operator: $foo".into()));
    }

    #[test]
    fn filter_and_requires_nonempty_array_of_objects() {
        assert_eq!(parse_err(rawdoc! { "$and": 1 }), (2, "$and must be an array".into()));
        assert_eq!(parse_err(rawdoc! { "$or": [] }), (2, "$and/$or/$nor must be a nonempty array".into()));
        assert_eq!(parse_err(rawdoc! { "$nor": [1] }), (2, "$or/$and/$nor entries need to be full objects".into()));
    }

    #[test]
    fn filter_in_argument_errors() {
        assert_eq!(parse_err(rawdoc! { "a": { "$in": 1 } }), (2, "$in needs an array".into()));
        assert_eq!(parse_err(rawdoc! { "a": { "$nin": {} } }), (2, "$nin needs an array".into()));
        assert_eq!(parse_err(rawdoc! { "a": { "$in": [ { "$gt": 1 } ] } }), (2, "cannot nest $ under $in".into()));
    }

    #[test]
    fn filter_compare_argument_errors() {
        let re = bson::Regex { pattern: "x".try_into().unwrap(), options: "".try_into().unwrap() };
        assert_eq!(
            parse_err(rawdoc! { "a": { "$gt": re.clone() } }),
            (2, "Can't have RegEx as arg to predicate over field 'a'.".into())
        );
        assert_eq!(parse_err(rawdoc! { "a": { "$ne": re } }), (2, "Can't have regex as arg to $ne.".into()));
        assert_eq!(parse_err(rawdoc! { "a": bson::RawBson::Undefined }), (2, "cannot compare to undefined".into()));
    }

    #[test]
    fn filter_later_operators_are_not_implemented() {
        assert_eq!(parse_err(rawdoc! { "a": { "$elemMatch": {} } }).0, 238);
        assert_eq!(parse_err(rawdoc! { "$expr": {} }).0, 238);
        let re = bson::Regex { pattern: "x".try_into().unwrap(), options: "".try_into().unwrap() };
        assert_eq!(parse_err(rawdoc! { "a": re }).0, 238);
    }

    #[test]
    fn filter_comment_is_ignored() {
        assert!(matches(rawdoc! { "$comment": "hi", "a": 1 }, rawdoc! { "a": 1 }));
    }

    #[test]
    fn filter_seed_equalities_nested_and_id_first() {
        let f = filter(rawdoc! {
            "x.y": 1, "$and": [ { "a": { "$eq": 2 } }, { "b": { "$gt": 3 } } ], "_id": 7, "c": { "$in": [4] }
        });
        assert_eq!(f.equality_seed().unwrap(), doc! { "_id": 7, "a": 2, "c": 4, "x": { "y": 1 } });
    }

    #[test]
    fn filter_seed_skips_non_equalities() {
        let f = filter(rawdoc! { "a": { "$in": [1, 2] }, "$or": [ { "b": 1 }, { "c": 1 } ], "d": { "$ne": 1 } });
        assert_eq!(f.equality_seed().unwrap(), doc! {});
        let single = filter(rawdoc! { "$or": [ { "b": 1 } ] });
        assert_eq!(single.equality_seed().unwrap(), doc! { "b": 1 });
    }

    #[test]
    fn filter_seed_conflicting_paths_are_54() {
        let err = filter(rawdoc! { "a": 1, "$and": [ { "a": 2 } ] }).equality_seed().unwrap_err();
        assert_eq!(err.code().code(), 54);
        assert_eq!(err.message(), "cannot infer query fields to set, path 'a' is matched twice");
        let err = filter(rawdoc! { "a": 1, "a.b": 2 }).equality_seed().unwrap_err();
        assert_eq!(err.message(), "cannot infer query fields to set, both paths 'a.b' and 'a' are matched");
    }
}
