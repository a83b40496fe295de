//! Dotted paths and what they reach in a document, with mongod's implicit array traversal.
//!
//! Two walks live here because mongod has two:
//! - [`walk`] is the matcher's (filters). `a.b` reaches into every document element of an
//!   array at `a`; a numeric component both indexes an array (`a.0.b`) and names a field
//!   called `"0"` in document elements; an array at the end of the path yields each element
//!   and then the array itself. It keeps mongod 7.0's dotted-path null rules: scalars inside
//!   an array are skipped, so `{"a.b": null}` does not match `{a: [1]}` or `{a: []}`.
//! - [`walk_sort_keys`] is the sort-key generator's (index keys): scalars inside an array
//!   yield null, a numeric component after an array only indexes it, and an empty array at
//!   the end yields undefined so it sorts below null.

use std::ops::ControlFlow;

use bson::{RawArray, RawBsonRef, RawDocument};

use super::QueryError;
use crate::error::ErrorCode;

/// The fields of a document. Raw documents reaching the query layer were validated by the
/// request layer, so a malformed tail simply ends the iteration.
pub(crate) fn fields(doc: &RawDocument) -> impl Iterator<Item = (&str, RawBsonRef<'_>)> {
    doc.iter().map_while(Result::ok).map(|(key, value)| (key.as_str(), value))
}

/// The elements of an array; see [`fields`] for malformed input.
pub(crate) fn items(arr: &RawArray) -> impl Iterator<Item = RawBsonRef<'_>> {
    arr.into_iter().map_while(Result::ok)
}

/// A dotted field path, split once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    dotted: String,
    parts: Vec<String>,
}

impl FieldPath {
    /// Splits `dotted` on `.`; empty components are kept (they never match anything).
    pub fn new(dotted: &str) -> Self {
        Self { dotted: dotted.to_owned(), parts: dotted.split('.').map(str::to_owned).collect() }
    }

    /// The path as written.
    pub fn dotted(&self) -> &str {
        &self.dotted
    }

    /// The components.
    pub fn parts(&self) -> &[String] {
        &self.parts
    }
}

/// One thing a path reaches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reached<'a> {
    /// Nothing on this branch (mongod's EOO): the field is absent, or the path continues
    /// through a scalar.
    Missing,
    /// A value.
    Value {
        /// The value found.
        value: RawBsonRef<'a>,
        /// True for an element of an array that ends the path; the array itself is reached
        /// as well, after its elements.
        array_element: bool,
    },
}

/// Visits everything `path` reaches in `doc` under the matcher's rules (see the module docs),
/// stopping when `visit` breaks.
pub fn walk<'a, F>(doc: &'a RawDocument, path: &FieldPath, visit: &mut F) -> ControlFlow<()>
where
    F: FnMut(Reached<'a>) -> ControlFlow<()>,
{
    walk_document(doc, path.parts(), None, &mut |reached, _| visit(reached))
}

/// Like [`walk`], and also hands `visit` the position, in the outermost array the path went
/// through, of the element that led to the value (mongod's `elemMatchKey`, which positional
/// projection uses); `None` when no array was traversed.
pub fn walk_positions<'a, F>(doc: &'a RawDocument, path: &FieldPath, visit: &mut F) -> ControlFlow<()>
where
    F: FnMut(Reached<'a>, Option<usize>) -> ControlFlow<()>,
{
    walk_document(doc, path.parts(), None, visit)
}

/// Whether anything `path` reaches in `doc` satisfies `pred`.
pub fn any<'a>(doc: &'a RawDocument, path: &FieldPath, mut pred: impl FnMut(Reached<'a>) -> bool) -> bool {
    walk(doc, path, &mut |reached| if pred(reached) { ControlFlow::Break(()) } else { ControlFlow::Continue(()) })
        .is_break()
}

fn walk_document<'a, F>(doc: &'a RawDocument, parts: &[String], at: Option<usize>, visit: &mut F) -> ControlFlow<()>
where
    F: FnMut(Reached<'a>, Option<usize>) -> ControlFlow<()>,
{
    let Some((first, rest)) = parts.split_first() else { return ControlFlow::Continue(()) };
    match doc.get(first) {
        Ok(Some(value)) => walk_value(value, rest, at, visit),
        _ => visit(Reached::Missing, at),
    }
}

fn walk_value<'a, F>(value: RawBsonRef<'a>, rest: &[String], at: Option<usize>, visit: &mut F) -> ControlFlow<()>
where
    F: FnMut(Reached<'a>, Option<usize>) -> ControlFlow<()>,
{
    if rest.is_empty() {
        if let RawBsonRef::Array(arr) = value {
            for (position, element) in items(arr).enumerate() {
                visit(Reached::Value { value: element, array_element: true }, at.or(Some(position)))?;
            }
        }
        return visit(Reached::Value { value, array_element: false }, at);
    }
    match value {
        RawBsonRef::Document(doc) => walk_document(doc, rest, at, visit),
        RawBsonRef::Array(arr) => walk_array(arr, rest, at, visit),
        _ => visit(Reached::Missing, at),
    }
}

/// An array with path left over: each document element is searched for the rest (so a
/// numeric component names a field there), and the element whose position is the next
/// component continues past that component. An element reached by position at the end of the
/// path is yielded as it is, not expanded.
fn walk_array<'a, F>(arr: &'a RawArray, rest: &[String], at: Option<usize>, visit: &mut F) -> ControlFlow<()>
where
    F: FnMut(Reached<'a>, Option<usize>) -> ControlFlow<()>,
{
    let index = rest.first().map(String::as_str).and_then(array_index);
    let after = rest.get(1..).unwrap_or_default();
    for (position, element) in items(arr).enumerate() {
        let here = at.or(Some(position));
        if let RawBsonRef::Document(doc) = element {
            walk_document(doc, rest, here, visit)?;
        }
        if index != Some(position) {
            continue;
        }
        match element {
            _ if after.is_empty() => visit(Reached::Value { value: element, array_element: false }, at)?,
            RawBsonRef::Document(doc) => walk_document(doc, after, at, visit)?,
            RawBsonRef::Array(nested) => walk_array(nested, after, at, visit)?,
            _ => {}
        }
    }
    ControlFlow::Continue(())
}

/// The array position a path component names: digits only, no leading zero (mongod matches
/// the component against the element's field name, which is written without one).
pub(crate) fn array_index(component: &str) -> Option<usize> {
    let digits = !component.is_empty() && component.bytes().all(|b| b.is_ascii_digit());
    if !digits || (component.len() > 1 && component.starts_with('0')) {
        return None;
    }
    component.parse().ok()
}

/// Visits the values a sort (or index key) on `path` sees in `doc`: at least one, with null
/// for a missing field and undefined for an empty array at the end of the path.
pub fn walk_sort_keys<'a>(doc: &'a RawDocument, path: &FieldPath, visit: &mut impl FnMut(RawBsonRef<'a>)) {
    walk_index_keys(doc, path, visit);
}

/// [`walk_sort_keys`], returning whether an array was met on the way (which makes an index on
/// `path` multikey).
pub fn walk_index_keys<'a>(doc: &'a RawDocument, path: &FieldPath, visit: &mut impl FnMut(RawBsonRef<'a>)) -> bool {
    let mut saw_array = false;
    sort_keys_in_document(doc, path.parts(), &mut saw_array, visit);
    saw_array
}

fn sort_keys_in_document<'a>(
    doc: &'a RawDocument,
    parts: &[String],
    saw_array: &mut bool,
    visit: &mut impl FnMut(RawBsonRef<'a>),
) {
    let Some((first, rest)) = parts.split_first() else { return };
    match doc.get(first) {
        Ok(Some(value)) => sort_keys_in_value(value, rest, saw_array, visit),
        _ => visit(RawBsonRef::Null),
    }
}

fn sort_keys_in_value<'a>(
    value: RawBsonRef<'a>,
    rest: &[String],
    saw_array: &mut bool,
    visit: &mut impl FnMut(RawBsonRef<'a>),
) {
    match value {
        RawBsonRef::Array(arr) if rest.is_empty() => {
            *saw_array = true;
            let mut any = false;
            for element in items(arr) {
                any = true;
                visit(element);
            }
            if !any {
                visit(RawBsonRef::Undefined);
            }
        }
        _ if rest.is_empty() => visit(value),
        RawBsonRef::Document(doc) => sort_keys_in_document(doc, rest, saw_array, visit),
        RawBsonRef::Array(arr) => {
            *saw_array = true;
            // A position after an array picks that element and nothing else.
            if let Some(index) = rest.first().map(String::as_str).and_then(array_index) {
                match items(arr).nth(index) {
                    Some(element) => sort_keys_in_value(element, rest.get(1..).unwrap_or_default(), saw_array, visit),
                    None => visit(RawBsonRef::Null),
                }
                return;
            }
            let mut any = false;
            for element in items(arr) {
                any = true;
                match element {
                    RawBsonRef::Document(doc) => sort_keys_in_document(doc, rest, saw_array, visit),
                    _ => visit(RawBsonRef::Null),
                }
            }
            if !any {
                visit(RawBsonRef::Null);
            }
        }
        _ => visit(RawBsonRef::Null),
    }
}

/// Splits `path` after mongod's `FieldPath` checks: not empty (40352), no trailing dot
/// (40353), and every component valid for [`check_field_name`].
///
/// # Errors
/// The first rule `path` breaks, with mongod's code and message.
pub fn checked_parts(path: &str) -> Result<Vec<&str>, QueryError> {
    if path.is_empty() {
        return Err(QueryError::new(ErrorCode::Location40352, "FieldPath cannot be constructed with empty string"));
    }
    if path.ends_with('.') {
        return Err(QueryError::new(ErrorCode::Location40353, "FieldPath must not end with a '.'."));
    }
    path.split('.').map(|part| check_field_name(part).map(|()| part)).collect()
}

/// mongod's `FieldPath` rule for one component: not empty (15998), no leading `$` (16410).
///
/// # Errors
/// As above.
pub fn check_field_name(part: &str) -> Result<(), QueryError> {
    if part.is_empty() {
        return Err(QueryError::new(ErrorCode::Location15998, "FieldPath field names may not be empty strings."));
    }
    if part.starts_with('$') {
        return Err(QueryError::new(
            ErrorCode::Location16410,
            "FieldPath field names may not start with '$'. Consider using $getField or $setField.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{RawBson, rawdoc};

    fn reached(doc: &RawDocument, path: &str) -> Vec<Option<RawBson>> {
        let mut out = Vec::new();
        let _ = walk(doc, &FieldPath::new(path), &mut |r| {
            out.push(match r {
                Reached::Missing => None,
                Reached::Value { value, .. } => Some(RawBson::from(value)),
            });
            ControlFlow::Continue(())
        });
        out
    }

    fn keys(doc: &RawDocument, path: &str) -> Vec<RawBson> {
        let mut out = Vec::new();
        walk_sort_keys(doc, &FieldPath::new(path), &mut |v| out.push(RawBson::from(v)));
        out
    }

    #[test]
    fn path_walk_top_level_and_missing() {
        let doc = rawdoc! { "a": 1 };
        assert_eq!(reached(&doc, "a"), vec![Some(RawBson::Int32(1))]);
        assert_eq!(reached(&doc, "b"), vec![None]);
        assert_eq!(reached(&doc, "a.b"), vec![None]);
    }

    #[test]
    fn path_walk_leaf_array_yields_elements_then_array() {
        let doc = rawdoc! { "a": [1, 2] };
        let got = reached(&doc, "a");
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], Some(RawBson::Int32(1)));
        assert!(matches!(got[2], Some(RawBson::Array(_))));
    }

    #[test]
    fn path_walk_array_of_documents() {
        let doc = rawdoc! { "a": [ { "b": 1 }, { "c": 2 }, 5, { "b": [3] } ] };
        let got = reached(&doc, "a.b");
        assert_eq!(got[0], Some(RawBson::Int32(1)));
        assert_eq!(got[1], None, "a document element without b is missing");
        assert_eq!(got[2], Some(RawBson::Int32(3)));
        assert_eq!(got.len(), 4, "the scalar 5 is skipped; [3] yields 3 and itself");
    }

    #[test]
    fn path_walk_numeric_component_indexes_and_names_fields() {
        let doc = rawdoc! { "a": [ { "b": 1 }, { "0": { "b": 2 } } ] };
        // Element 0 is searched for a field "0" (missing) and indexed; element 1 has one.
        let got = reached(&doc, "a.0.b");
        assert_eq!(got, vec![None, Some(RawBson::Int32(1)), Some(RawBson::Int32(2))]);
        let nested = rawdoc! { "a": [[1, 2]] };
        assert_eq!(reached(&nested, "a.0").len(), 1, "an element reached by position is not expanded");
        let doc = rawdoc! { "a": { "0": 7 } };
        assert_eq!(reached(&doc, "a.0"), vec![Some(RawBson::Int32(7))]);
        let doc = rawdoc! { "a": [7, 8] };
        assert_eq!(reached(&doc, "a.1"), vec![Some(RawBson::Int32(8))]);
        assert_eq!(reached(&doc, "a.01"), Vec::<Option<RawBson>>::new());
    }

    #[test]
    fn path_walk_empty_and_scalar_arrays_reach_nothing_below() {
        assert!(reached(&rawdoc! { "a": [] }, "a.b").is_empty());
        assert!(reached(&rawdoc! { "a": [1, null] }, "a.b").is_empty());
        assert!(reached(&rawdoc! { "a": [[{ "b": 1 }]] }, "a.b").is_empty());
    }

    #[test]
    fn path_walk_positions_report_the_outermost_array() {
        let positions = |doc: &RawDocument, path: &str| {
            let mut out = Vec::new();
            let _ = walk_positions(doc, &FieldPath::new(path), &mut |r, at| {
                out.push((matches!(r, Reached::Value { .. }), at));
                ControlFlow::Continue(())
            });
            out
        };
        assert_eq!(positions(&rawdoc! { "a": 1 }, "a"), vec![(true, None)]);
        assert_eq!(positions(&rawdoc! { "a": [7, 8] }, "a"), vec![(true, Some(0)), (true, Some(1)), (true, None)]);
        let nested = rawdoc! { "a": [ { "b": 1 }, { "b": [2, 3] } ] };
        assert_eq!(
            positions(&nested, "a.b"),
            vec![(true, Some(0)), (true, Some(1)), (true, Some(1)), (true, Some(1))],
            "elements of the inner array keep the outer position"
        );
        assert_eq!(positions(&rawdoc! { "a": [5, 6] }, "a.1"), vec![(true, None)], "an explicit index is no traversal");
    }

    #[test]
    fn path_sort_keys_null_for_missing_and_scalars() {
        assert_eq!(keys(&rawdoc! {}, "a"), vec![RawBson::Null]);
        assert_eq!(keys(&rawdoc! { "a": [1, { "b": 2 }] }, "a.b"), vec![RawBson::Null, RawBson::Int32(2)]);
        assert_eq!(keys(&rawdoc! { "a": [] }, "a"), vec![RawBson::Undefined]);
        assert_eq!(keys(&rawdoc! { "a": [3, 1] }, "a"), vec![RawBson::Int32(3), RawBson::Int32(1)]);
        assert_eq!(keys(&rawdoc! { "a": [{ "b": 1 }, { "b": 2 }] }, "a.1.b"), vec![RawBson::Int32(2)]);
    }
}
