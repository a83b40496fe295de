//! Wildcard indexes (`{"$**": 1}`, `{"a.b.$**": 1}`, with `wildcardProjection`): which paths
//! one covers, and the keys a document gives it, as mongod's wildcard key generator makes
//! them.
//!
//! A key is a pair: the dotted path of a leaf value (array positions left out) and the value.
//! A subdocument is descended into (an empty one is a value of its own), an array's elements
//! each give a key under the array's path (a document element is descended into, a nested
//! array is a value as it is), and an empty array is a value. `_id` is left out of `$**`
//! unless the projection names it.

use bson::{Bson, RawBsonRef, RawDocument};

use super::QueryError;
use super::path;
use crate::error::ErrorCode;

/// A wildcard key: the value's path and the value.
pub type WildcardKey<'a> = (String, RawBsonRef<'a>);

/// What a wildcard index covers.
#[derive(Debug, Clone, PartialEq)]
pub struct Wildcard {
    /// `a.b` of `{"a.b.$**": 1}`; `None` for `{"$**": 1}`.
    root: Option<String>,
    projection: Projection,
}

/// `wildcardProjection`: the paths kept or the paths left out.
#[derive(Debug, Clone, PartialEq)]
enum Projection {
    /// Every path (but `_id` at the top of a `$**` index).
    All,
    /// These paths and what is under them (`_id` only when named).
    Include(Vec<String>),
    /// Every path but these and what is under them (`_id` too unless named with 1).
    Exclude { paths: Vec<String>, id: bool },
}

impl Wildcard {
    /// The wildcard index of key field `name` (`$**` or `<path>.$**`), without a projection.
    pub fn of_key(name: &str) -> Self {
        Self { root: name.strip_suffix(".$**").map(str::to_owned), projection: Projection::All }
    }

    /// Adds `wildcardProjection`, checked as mongod checks it.
    ///
    /// # Errors
    /// 9 FailedToParse for an empty projection or one on a `<path>.$**` index; 31253/31254
    /// for one mixing inclusions and exclusions; 31252 for a value that is not a number or a
    /// boolean.
    pub fn with_projection(mut self, projection: &bson::Document) -> Result<Self, QueryError> {
        if projection.is_empty() {
            return Err(QueryError::new(
                ErrorCode::FailedToParse,
                "The 'wildcardProjection' field can't be an empty object",
            ));
        }
        if self.root.is_some() {
            return Err(QueryError::new(
                ErrorCode::FailedToParse,
                "The field 'wildcardProjection' is only allowed when 'key' is {\"$**\": ±1}",
            ));
        }
        let mut included: Vec<String> = Vec::new();
        let mut excluded: Vec<String> = Vec::new();
        let mut id = None;
        let mut flatten = Vec::new();
        flatten_projection("", projection, &mut flatten);
        for (path, value) in flatten {
            let keep = match value {
                Bson::Boolean(b) => b,
                Bson::Int32(n) => n != 0,
                Bson::Int64(n) => n != 0,
                Bson::Double(n) => n != 0.0,
                _ => {
                    return Err(QueryError::new(
                        ErrorCode::Location31252,
                        format!("Cannot use an expression {path} in a wildcard projection"),
                    ));
                }
            };
            if path == "_id" {
                id = Some(keep);
            } else if keep {
                if !excluded.is_empty() {
                    return Err(QueryError::new(
                        ErrorCode::Location31253,
                        format!("Cannot do inclusion on field {path} in exclusion projection"),
                    ));
                }
                included.push(path);
            } else {
                if !included.is_empty() {
                    return Err(QueryError::new(
                        ErrorCode::Location31254,
                        format!("Cannot do exclusion on field {path} in inclusion projection"),
                    ));
                }
                excluded.push(path);
            }
        }
        self.projection = if excluded.is_empty() && (!included.is_empty() || id == Some(true)) {
            if id == Some(true) {
                included.push("_id".to_owned());
            }
            Projection::Include(included)
        } else {
            Projection::Exclude { paths: excluded, id: id == Some(true) }
        };
        Ok(self)
    }

    /// Whether the index holds keys for the dotted `field` (a query's path): under the root,
    /// kept by the projection, not `_id` unless named.
    pub fn covers(&self, field: &str) -> bool {
        let under = |path: &str| field == path || field.starts_with(&format!("{path}."));
        if let Some(root) = &self.root {
            return under(root);
        }
        let is_id = under("_id");
        match &self.projection {
            Projection::All => !is_id,
            Projection::Include(paths) => paths.iter().any(|p| under(p)),
            Projection::Exclude { paths, id } => !paths.iter().any(|p| under(p)) && (!is_id || *id),
        }
    }

    /// Whether the index holds every key of `field`'s subtree (what `$exists: true` on it
    /// needs): no path under it is left out by the projection.
    pub fn covers_subtree(&self, field: &str) -> bool {
        let under = |path: &str| path.starts_with(&format!("{field}."));
        match (&self.root, &self.projection) {
            (Some(_), _) | (None, Projection::All) | (None, Projection::Include(_)) => self.covers(field),
            (None, Projection::Exclude { paths, .. }) => self.covers(field) && !paths.iter().any(|p| under(p)),
        }
    }

    /// Whether a walk must go into `prefix`: it is covered, or a covered path lies under it.
    fn may_hold(&self, prefix: &str) -> bool {
        let above = |path: &str| path.starts_with(&format!("{prefix}."));
        match (&self.root, &self.projection) {
            (Some(root), _) => self.covers(prefix) || above(root),
            (None, Projection::Include(paths)) => self.covers(prefix) || paths.iter().any(|p| above(p)),
            (None, _) => self.covers(prefix),
        }
    }

    /// The keys `doc` gives the index, in document order, and whether an array was met
    /// (the index is then multikey).
    pub fn keys<'a>(&self, doc: &'a RawDocument) -> (Vec<WildcardKey<'a>>, bool) {
        let mut keys = Vec::new();
        let mut multikey = false;
        self.walk_document(doc, "", &mut keys, &mut multikey);
        keys.dedup_by(|a, b| a.0 == b.0 && super::order::compare_values(a.1, b.1).is_eq() && same_type(a.1, b.1));
        (keys, multikey)
    }

    fn walk_document<'a>(
        &self,
        doc: &'a RawDocument,
        prefix: &str,
        keys: &mut Vec<WildcardKey<'a>>,
        multikey: &mut bool,
    ) {
        for (name, value) in path::fields(doc) {
            let full = if prefix.is_empty() { name.to_owned() } else { format!("{prefix}.{name}") };
            if !self.may_hold(&full) {
                continue;
            }
            self.walk_value(value, &full, keys, multikey);
        }
    }

    fn walk_value<'a>(&self, value: RawBsonRef<'a>, full: &str, keys: &mut Vec<WildcardKey<'a>>, multikey: &mut bool) {
        match value {
            RawBsonRef::Document(sub) if path::fields(sub).next().is_some() => {
                self.walk_document(sub, full, keys, multikey)
            }
            RawBsonRef::Array(items) => {
                *multikey = true;
                let mut any = false;
                for item in path::items(items) {
                    any = true;
                    match item {
                        RawBsonRef::Document(sub) if path::fields(sub).next().is_some() => {
                            self.walk_document(sub, full, keys, multikey);
                        }
                        other => self.push(full, other, keys),
                    }
                }
                if !any {
                    self.push(full, value, keys);
                }
            }
            other => self.push(full, other, keys),
        }
    }

    fn push<'a>(&self, full: &str, value: RawBsonRef<'a>, keys: &mut Vec<WildcardKey<'a>>) {
        if self.covers(full) {
            keys.push((full.to_owned(), value));
        }
    }
}

/// Equal values of different kinds that keys keep apart (`null` and an empty array).
fn same_type(a: RawBsonRef<'_>, b: RawBsonRef<'_>) -> bool {
    std::mem::discriminant(&a) == std::mem::discriminant(&b)
}

/// `{a: {b: 1}}` as `[("a.b", 1)]`: a projection's nested form read as dotted paths.
fn flatten_projection(prefix: &str, projection: &bson::Document, out: &mut Vec<(String, Bson)>) {
    for (name, value) in projection {
        let full = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        match value {
            Bson::Document(nested) if !nested.keys().any(|k| k.starts_with('$')) => {
                flatten_projection(&full, nested, out);
            }
            other => out.push((full, other.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use bson::{RawBson, doc, rawdoc};

    use super::*;

    fn keys(wildcard: &Wildcard, doc: &RawDocument) -> Vec<(String, RawBson)> {
        wildcard.keys(doc).0.into_iter().map(|(p, v)| (p, RawBson::from(v))).collect()
    }

    #[test]
    fn wildcard_keys_follow_mongods_generator() {
        let all = Wildcard::of_key("$**");
        let doc = rawdoc! { "_id": 1, "a": 1, "b": { "c": "x", "d": {} }, "e": [1, { "f": 2 }, [3]], "g": [] };
        let expected = vec![
            ("a".to_owned(), RawBson::Int32(1)),
            ("b.c".to_owned(), RawBson::String("x".into())),
            ("b.d".to_owned(), RawBson::Document(rawdoc! {})),
            ("e".to_owned(), RawBson::Int32(1)),
            ("e.f".to_owned(), RawBson::Int32(2)),
            ("e".to_owned(), bson::rawbson!([3])),
            ("g".to_owned(), bson::rawbson!([])),
        ];
        assert_eq!(keys(&all, &doc), expected);
        assert!(all.keys(&doc).1, "an array makes it multikey");
        assert!(!all.covers("_id") && all.covers("b.c"));

        let under = Wildcard::of_key("b.$**");
        assert_eq!(
            keys(&under, &doc),
            vec![("b.c".to_owned(), RawBson::String("x".into())), ("b.d".to_owned(), RawBson::Document(rawdoc! {}))]
        );
        assert!(under.covers("b.c") && !under.covers("a") && !under.covers("bc"));
        let scalar = rawdoc! { "b": 5 };
        assert_eq!(keys(&under, &scalar), vec![("b".to_owned(), RawBson::Int32(5))]);
    }

    #[test]
    fn wildcard_projections_keep_or_leave_out_paths() {
        let doc = rawdoc! { "_id": 1, "a": { "x": 1, "y": 2 }, "b": 3 };
        let include = Wildcard::of_key("$**").with_projection(&doc! { "a.x": 1, "_id": 1 }).unwrap();
        assert_eq!(
            keys(&include, &doc),
            vec![("_id".to_owned(), RawBson::Int32(1)), ("a.x".to_owned(), RawBson::Int32(1))]
        );
        let exclude = Wildcard::of_key("$**").with_projection(&doc! { "a": { "y": 0 } }).unwrap();
        assert_eq!(
            keys(&exclude, &doc),
            vec![("a.x".to_owned(), RawBson::Int32(1)), ("b".to_owned(), RawBson::Int32(3))]
        );
        assert!(!exclude.covers("a.y") && exclude.covers("b"));
        let code = |w: Wildcard, p: bson::Document| w.with_projection(&p).err().map(|e| e.code().code());
        assert_eq!(code(Wildcard::of_key("$**"), doc! {}), Some(9));
        assert_eq!(code(Wildcard::of_key("a.$**"), doc! { "a": 1 }), Some(9));
        assert_eq!(code(Wildcard::of_key("$**"), doc! { "a": 1, "b": 0 }), Some(31254));
        assert_eq!(code(Wildcard::of_key("$**"), doc! { "a": 0, "b": 1 }), Some(31253));
    }
}
