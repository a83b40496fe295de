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

use bson::{RawBsonRef, RawDocument};

use super::QueryError;
use crate::error::ErrorCode;

// Paths were the first home of these readers; code outside the query layer still names
// them here.
pub(crate) use super::elements::{fields, items};

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

/// One step of a walk still to take, kept on an explicit stack so that a deep document
/// costs heap, not call stack.
enum Step<'a> {
    /// `parts[from..]` looked up in a document.
    Document { doc: &'a RawDocument, from: usize, at: Option<usize> },
    /// An array with `parts[from..]` left over, resumed at its next element.
    Array { iter: bson::raw::RawArrayIter<'a>, position: usize, from: usize, at: Option<usize> },
    /// A value to hand to the visitor once the steps pushed after it are done.
    Visit(Reached<'a>, Option<usize>),
}

fn walk_document<'a, F>(doc: &'a RawDocument, parts: &[String], at: Option<usize>, visit: &mut F) -> ControlFlow<()>
where
    F: FnMut(Reached<'a>, Option<usize>) -> ControlFlow<()>,
{
    let mut steps = vec![Step::Document { doc, from: 0, at }];
    while let Some(step) = steps.last_mut() {
        match step {
            Step::Document { doc, from, at } => {
                let (doc, from, at) = (*doc, *from, *at);
                steps.pop();
                let Some(first) = parts.get(from) else { continue };
                match doc.get(first) {
                    Ok(Some(value)) => walk_value(value, parts, from + 1, at, &mut steps, visit)?,
                    _ => visit(Reached::Missing, at)?,
                }
            }
            Step::Array { iter, position, from, at } => {
                // An array with path left over: each document element is searched for the
                // rest (so a numeric component names a field there), and the element whose
                // position is the next component continues past that component. An element
                // reached by position at the end of the path is yielded as it is.
                let Some(Ok(element)) = iter.next() else {
                    steps.pop();
                    continue;
                };
                let (here, index_from, at) = (*position, *from, *at);
                *position += 1;
                let index = parts.get(index_from).map(String::as_str).and_then(array_index);
                let after = index_from + 1;
                // Pushed in reverse: the document search runs first, then the positional step.
                if index == Some(here) {
                    match element {
                        _ if after >= parts.len() => {
                            steps.push(Step::Visit(Reached::Value { value: element, array_element: false }, at));
                        }
                        RawBsonRef::Document(doc) => steps.push(Step::Document { doc, from: after, at }),
                        RawBsonRef::Array(nested) => {
                            steps.push(Step::Array { iter: nested.into_iter(), position: 0, from: after, at });
                        }
                        _ => {}
                    }
                }
                if let RawBsonRef::Document(doc) = element {
                    steps.push(Step::Document { doc, from: index_from, at: at.or(Some(here)) });
                }
            }
            Step::Visit(reached, at) => {
                let (reached, at) = (*reached, *at);
                steps.pop();
                visit(reached, at)?;
            }
        }
    }
    ControlFlow::Continue(())
}

/// `value` reached with `parts[from..]` left: the end of the path visits it (an array's
/// elements first), a document or array continues the walk, anything else is missing.
fn walk_value<'a, F>(
    value: RawBsonRef<'a>,
    parts: &[String],
    from: usize,
    at: Option<usize>,
    steps: &mut Vec<Step<'a>>,
    visit: &mut F,
) -> ControlFlow<()>
where
    F: FnMut(Reached<'a>, Option<usize>) -> ControlFlow<()>,
{
    if from >= parts.len() {
        if let RawBsonRef::Array(arr) = value {
            for (position, element) in items(arr).enumerate() {
                visit(Reached::Value { value: element, array_element: true }, at.or(Some(position)))?;
            }
        }
        return visit(Reached::Value { value, array_element: false }, at);
    }
    match value {
        RawBsonRef::Document(doc) => steps.push(Step::Document { doc, from, at }),
        RawBsonRef::Array(arr) => steps.push(Step::Array { iter: arr.into_iter(), position: 0, from, at }),
        _ => return visit(Reached::Missing, at),
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
    /// A step of the sort-key walk, on an explicit stack as in [`walk_document`].
    enum KeyStep<'a> {
        /// `parts[from..]` looked up in a document.
        Document(&'a RawDocument, usize),
        /// `parts[from..]` searched in each document element of an array (null for the
        /// others, and once for an empty array).
        Elements { iter: bson::raw::RawArrayIter<'a>, from: usize, any: bool },
    }
    let parts = path.parts();
    let mut saw_array = false;
    let mut steps = vec![KeyStep::Document(doc, 0)];
    while let Some(step) = steps.last_mut() {
        let (doc, from) = match step {
            KeyStep::Document(doc, from) => {
                let found = (*doc, *from);
                steps.pop();
                found
            }
            KeyStep::Elements { iter, from, any } => {
                let from = *from;
                match iter.next() {
                    Some(Ok(RawBsonRef::Document(element))) => {
                        *any = true;
                        steps.push(KeyStep::Document(element, from));
                    }
                    Some(Ok(_)) => {
                        *any = true;
                        visit(RawBsonRef::Null);
                    }
                    _ => {
                        if !*any {
                            visit(RawBsonRef::Null);
                        }
                        steps.pop();
                    }
                }
                continue;
            }
        };
        let Some(first) = parts.get(from) else { continue };
        let Ok(Some(mut value)) = doc.get(first) else {
            visit(RawBsonRef::Null);
            continue;
        };
        let mut from = from + 1;
        // Positions after arrays pick one element each, without a new step.
        loop {
            let rest_empty = from >= parts.len();
            match value {
                RawBsonRef::Array(arr) if rest_empty => {
                    saw_array = true;
                    let mut any = false;
                    for element in items(arr) {
                        any = true;
                        visit(element);
                    }
                    if !any {
                        visit(RawBsonRef::Undefined);
                    }
                }
                _ if rest_empty => visit(value),
                RawBsonRef::Document(doc) => steps.push(KeyStep::Document(doc, from)),
                RawBsonRef::Array(arr) => {
                    saw_array = true;
                    // A position after an array picks that element and nothing else.
                    if let Some(index) = parts.get(from).map(String::as_str).and_then(array_index) {
                        match items(arr).nth(index) {
                            Some(element) => {
                                value = element;
                                from += 1;
                                continue;
                            }
                            None => visit(RawBsonRef::Null),
                        }
                    } else {
                        steps.push(KeyStep::Elements { iter: arr.into_iter(), from, any: false });
                    }
                }
                _ => visit(RawBsonRef::Null),
            }
            break;
        }
    }
    saw_array
}

/// Splits `path` after mongod's `FieldPath` checks: not empty (40352), no trailing dot
/// (40353), at most 200 components (15 Overflow), and every component valid for
/// [`check_field_name`].
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
    super::limits::check_field_path_parts(path.split('.').count())?;
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

    #[test]
    fn path_walks_documents_deeper_than_any_stack_without_recursion() {
        // 100,000 levels (an older version could store such a document): a recursive walk
        // would overflow the test thread's stack long before the bottom.
        let levels = 100_000;
        let doc = crate::query::limits::nested_for_tests(levels);
        let path = FieldPath::new(&vec!["a"; levels].join("."));
        let mut found = Vec::new();
        let _ = walk(&doc, &path, &mut |r| {
            found.push(r);
            ControlFlow::Continue(())
        });
        assert_eq!(found, vec![Reached::Value { value: RawBsonRef::Int32(1), array_element: false }]);
        let mut keys = Vec::new();
        assert!(!walk_index_keys(&doc, &path, &mut |v| keys.push(RawBson::from(v))));
        assert_eq!(keys, vec![RawBson::Int32(1)]);
    }
}
