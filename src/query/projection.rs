//! `find` projections: inclusion (`{a: 1}`) or exclusion (`{a: 0}`), dotted paths and
//! sub-documents, `_id` included unless `_id: 0`.
//!
//! The spec becomes a tree of paths; applying it walks the document once, keeping the
//! document's own field order (as mongod does) and reaching through arrays of documents.
//! `$slice`, `$elemMatch`, `$meta`, positional `a.$` and computed (literal) fields answer
//! 238 NotImplemented for now.

use bson::raw::CStr;
use bson::{RawArray, RawArrayBuf, RawBsonRef, RawDocument, RawDocumentBuf};

use super::error::QueryError;
use super::filter::true_value;
use super::path::{fields, items};
use crate::error::ErrorCode;

/// A parsed projection.
#[derive(Debug, Clone)]
pub struct Projection {
    mode: Mode,
    root: Children,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// An empty projection: the whole document.
    Whole,
    /// Only the listed paths (and `_id` unless excluded).
    Include,
    /// Everything but the listed paths.
    Exclude,
}

type Children = Vec<(String, Node)>;

#[derive(Debug, Clone)]
enum Node {
    /// A path named by the spec: included (`true`) or excluded.
    Leaf(bool),
    /// A prefix of longer paths.
    Inner(Children),
}

/// What parsing has learnt so far (mongod's `ParseContext`).
#[derive(Default)]
struct Context {
    mode: Option<Mode>,
    id_specified: bool,
    id_included: bool,
}

impl Projection {
    /// Parses a projection spec.
    ///
    /// # Errors
    /// mongod's codes: 31253/31254 for mixing inclusion and exclusion, 31249/31250 for path
    /// collisions, 51270 for an empty sub-projection, 40352/40353/15998/16410 for bad field
    /// paths; 238 NotImplemented for `$slice`, `$elemMatch`, `$meta`, positional and literal
    /// projections.
    pub fn parse(spec: &RawDocument) -> Result<Self, QueryError> {
        if spec.is_empty() {
            return Ok(Self { mode: Mode::Whole, root: Vec::new() });
        }
        let mut cx = Context::default();
        let mut root = Vec::new();
        for item in spec.iter() {
            let (key, value) = item.map_err(QueryError::invalid_bson)?;
            let key = key.as_str();
            cx.id_specified |= key == "_id" || key.starts_with("_id.");
            parse_element(&mut cx, key, value, &mut root, true)?;
        }
        // With no inclusion or exclusion but `_id`, `{_id: 1}` includes and `{_id: 0}` excludes.
        let mode = cx.mode.unwrap_or(if cx.id_included { Mode::Include } else { Mode::Exclude });
        if mode == Mode::Include && !cx.id_specified {
            root.push(("_id".to_owned(), Node::Leaf(true)));
        }
        if mode == Mode::Exclude {
            // `{_id: 1, a: 0}` is an exclusion that keeps `_id`: nothing to do for `_id`.
            root.retain(|(key, node)| !(key == "_id" && matches!(node, Node::Leaf(true))));
        }
        Ok(Self { mode, root })
    }

    /// Whether the projection returns documents unchanged.
    pub fn is_whole_document(&self) -> bool {
        self.mode == Mode::Whole
    }

    /// The projected copy of `doc`.
    pub fn apply(&self, doc: &RawDocument) -> RawDocumentBuf {
        match self.mode {
            Mode::Whole => doc.to_owned(),
            Mode::Include => include_document(doc, &self.root),
            Mode::Exclude => exclude_document(doc, &self.root),
        }
    }
}

fn parse_element(
    cx: &mut Context,
    key: &str,
    value: RawBsonRef<'_>,
    parent: &mut Children,
    at_root: bool,
) -> Result<(), QueryError> {
    if key.ends_with(".$") || key.contains(".$.") || key == "$" {
        return Err(QueryError::not_implemented("positional projection"));
    }
    match value {
        RawBsonRef::Document(sub) => parse_sub_object(cx, key, sub, parent),
        RawBsonRef::Boolean(_)
        | RawBsonRef::Int32(_)
        | RawBsonRef::Int64(_)
        | RawBsonRef::Double(_)
        | RawBsonRef::Decimal128(_) => {
            let include = true_value(value);
            add_node(parent, key, Node::Leaf(include))?;
            let top_level_id = at_root && key == "_id";
            if top_level_id {
                cx.id_included = include;
                return Ok(());
            }
            set_mode(cx, key, if include { Mode::Include } else { Mode::Exclude })
        }
        _ => Err(QueryError::not_implemented("projecting a literal value")),
    }
}

fn set_mode(cx: &mut Context, key: &str, mode: Mode) -> Result<(), QueryError> {
    match (cx.mode, mode) {
        (Some(Mode::Exclude), Mode::Include) => Err(QueryError::new(
            ErrorCode::Location31253,
            format!("Cannot do inclusion on field {key} in exclusion projection"),
        )),
        (Some(Mode::Include), Mode::Exclude) => Err(QueryError::new(
            ErrorCode::Location31254,
            format!("Cannot do exclusion on field {key} in inclusion projection"),
        )),
        _ => {
            cx.mode = Some(mode);
            Ok(())
        }
    }
}

/// `{a: {...}}`: an expression such as `{$slice: 2}` when it has one `$` field, otherwise a
/// sub-projection whose paths are relative to `a`.
fn parse_sub_object(cx: &mut Context, key: &str, sub: &RawDocument, parent: &mut Children) -> Result<(), QueryError> {
    let mut sub_fields = fields(sub);
    let Some((first, _)) = sub_fields.next() else {
        return Err(QueryError::new(ErrorCode::Location51270, format!("Invalid empty sub-projection: {key}")));
    };
    if first.starts_with('$') && sub_fields.next().is_none() {
        return Err(QueryError::not_implemented(&format!("the {first} projection")));
    }
    let parts = split_field_path(key)?;
    if inner_at(parent, &parts).is_none() {
        add_node(parent, key, Node::Inner(Vec::new()))?;
    }
    let children = inner_at(parent, &parts)
        .ok_or_else(|| QueryError::new(ErrorCode::InternalError, format!("projection path {key} vanished")))?;
    for (child_key, child_value) in fields(sub) {
        parse_element(cx, child_key, child_value, children, false)?;
    }
    Ok(())
}

/// The inner node at `parts`, if every step exists and is inner.
fn inner_at<'a>(children: &'a mut Children, parts: &[&str]) -> Option<&'a mut Children> {
    let (first, rest) = parts.split_first()?;
    let (_, node) = children.iter_mut().find(|(name, _)| name == first)?;
    let Node::Inner(grandchildren) = node else { return None };
    if rest.is_empty() { Some(grandchildren) } else { inner_at(grandchildren, rest) }
}

/// Adds `node` at the dotted `path` below `children`, as mongod's `addNodeAtPath`.
fn add_node(children: &mut Children, path: &str, node: Node) -> Result<(), QueryError> {
    let parts = split_field_path(path)?;
    let tail = parts.get(1..).unwrap_or_default().join(".");
    add_node_at(children, &parts, path, &tail, node)
}

fn add_node_at(children: &mut Children, parts: &[&str], full: &str, tail: &str, node: Node) -> Result<(), QueryError> {
    let Some((first, rest)) = parts.split_first() else { return Ok(()) };
    let existing = children.iter().position(|(name, _)| name == first);
    if rest.is_empty() {
        if existing.is_some() {
            return Err(QueryError::new(ErrorCode::Location31250, format!("Path collision at {full}")));
        }
        children.push(((*first).to_owned(), node));
        return Ok(());
    }
    let index = match existing {
        Some(index) => index,
        None => {
            children.push(((*first).to_owned(), Node::Inner(Vec::new())));
            children.len() - 1
        }
    };
    match children.get_mut(index).map(|(_, n)| n) {
        Some(Node::Inner(grandchildren)) => add_node_at(grandchildren, rest, full, tail, node),
        _ => {
            Err(QueryError::new(ErrorCode::Location31249, format!("Path collision at {full} remaining portion {tail}")))
        }
    }
}

/// Splits a projection path, refusing what mongod's `FieldPath` refuses.
fn split_field_path(path: &str) -> Result<Vec<&str>, QueryError> {
    if path.is_empty() {
        return Err(QueryError::new(ErrorCode::Location40352, "FieldPath cannot be constructed with empty string"));
    }
    if path.ends_with('.') {
        return Err(QueryError::new(ErrorCode::Location40353, "FieldPath must not end with a '.'."));
    }
    let parts: Vec<&str> = path.split('.').collect();
    for part in &parts {
        if part.is_empty() {
            return Err(QueryError::new(ErrorCode::Location15998, "FieldPath field names may not be empty strings."));
        }
        if part.starts_with('$') {
            return Err(QueryError::new(
                ErrorCode::Location16410,
                "FieldPath field names may not start with '$'. Consider using $getField or $setField.",
            ));
        }
    }
    Ok(parts)
}

fn child<'a>(children: &'a Children, key: &str) -> Option<&'a Node> {
    children.iter().find(|(name, _)| name == key).map(|(_, node)| node)
}

fn include_document(doc: &RawDocument, children: &Children) -> RawDocumentBuf {
    let mut out = RawDocumentBuf::new();
    for item in doc.iter().map_while(Result::ok) {
        let (key, value): (&CStr, RawBsonRef<'_>) = item;
        match (child(children, key.as_str()), value) {
            (Some(Node::Leaf(true)), _) => out.append(key, value),
            (Some(Node::Inner(sub)), RawBsonRef::Document(d)) => out.append(key, include_document(d, sub)),
            (Some(Node::Inner(sub)), RawBsonRef::Array(a)) => out.append(key, include_array(a, sub)),
            // Unlisted fields, excluded `_id`, and scalars under a sub-path are dropped.
            _ => {}
        }
    }
    out
}

fn include_array(arr: &RawArray, children: &Children) -> RawArrayBuf {
    let mut out = RawArrayBuf::new();
    for value in items(arr) {
        match value {
            RawBsonRef::Document(d) => out.push(include_document(d, children)),
            RawBsonRef::Array(a) => out.push(include_array(a, children)),
            _ => {}
        }
    }
    out
}

fn exclude_document(doc: &RawDocument, children: &Children) -> RawDocumentBuf {
    let mut out = RawDocumentBuf::new();
    for item in doc.iter().map_while(Result::ok) {
        let (key, value): (&CStr, RawBsonRef<'_>) = item;
        match (child(children, key.as_str()), value) {
            (Some(Node::Leaf(false)), _) => {}
            (Some(Node::Inner(sub)), RawBsonRef::Document(d)) => out.append(key, exclude_document(d, sub)),
            (Some(Node::Inner(sub)), RawBsonRef::Array(a)) => out.append(key, exclude_array(a, sub)),
            _ => out.append(key, value),
        }
    }
    out
}

fn exclude_array(arr: &RawArray, children: &Children) -> RawArrayBuf {
    let mut out = RawArrayBuf::new();
    for value in items(arr) {
        match value {
            RawBsonRef::Document(d) => out.push(exclude_document(d, children)),
            RawBsonRef::Array(a) => out.push(exclude_array(a, children)),
            _ => out.push(value),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::rawdoc;

    fn project(spec: RawDocumentBuf, doc: RawDocumentBuf) -> RawDocumentBuf {
        Projection::parse(&spec).unwrap().apply(&doc)
    }

    fn parse_err(spec: RawDocumentBuf) -> (i32, String) {
        let err = Projection::parse(&spec).unwrap_err();
        (err.code().code(), err.message().to_owned())
    }

    #[test]
    fn projection_empty_returns_whole_document() {
        let doc = rawdoc! { "_id": 1, "a": 2 };
        assert!(Projection::parse(&rawdoc! {}).unwrap().is_whole_document());
        assert_eq!(project(rawdoc! {}, doc.clone()), doc);
    }

    #[test]
    fn projection_include_keeps_id_and_document_order() {
        let doc = rawdoc! { "_id": 1, "a": 2, "b": 3, "c": 4 };
        assert_eq!(project(rawdoc! { "c": 1, "a": true }, doc), rawdoc! { "_id": 1, "a": 2, "c": 4 });
    }

    #[test]
    fn projection_include_without_id() {
        let doc = rawdoc! { "_id": 1, "a": 2, "b": 3 };
        assert_eq!(project(rawdoc! { "_id": 0, "a": 1 }, doc), rawdoc! { "a": 2 });
    }

    #[test]
    fn projection_include_only_id() {
        let doc = rawdoc! { "_id": 1, "a": 2 };
        assert_eq!(project(rawdoc! { "_id": 1 }, doc), rawdoc! { "_id": 1 });
    }

    #[test]
    fn projection_exclude_fields_and_id() {
        let doc = rawdoc! { "_id": 1, "a": 2, "b": 3 };
        assert_eq!(project(rawdoc! { "a": 0 }, doc.clone()), rawdoc! { "_id": 1, "b": 3 });
        assert_eq!(project(rawdoc! { "_id": 0 }, doc.clone()), rawdoc! { "a": 2, "b": 3 });
        assert_eq!(project(rawdoc! { "_id": 1, "a": 0 }, doc), rawdoc! { "_id": 1, "b": 3 });
    }

    #[test]
    fn projection_include_dotted_keeps_only_subfield() {
        let doc = rawdoc! { "_id": 1, "a": { "b": 1, "c": 2 }, "d": 3 };
        assert_eq!(project(rawdoc! { "a.b": 1 }, doc), rawdoc! { "_id": 1, "a": { "b": 1 } });
    }

    #[test]
    fn projection_include_dotted_through_arrays() {
        let doc = rawdoc! { "a": [ { "b": 1, "c": 2 }, 5, [ { "b": 3 }, 6 ], {} ] };
        assert_eq!(project(rawdoc! { "_id": 0, "a.b": 1 }, doc), rawdoc! { "a": [ { "b": 1 }, [ { "b": 3 } ], {} ] });
    }

    #[test]
    fn projection_include_dotted_missing_or_scalar_parent() {
        assert_eq!(project(rawdoc! { "_id": 0, "a.b": 1 }, rawdoc! { "a": 4 }), rawdoc! {});
        assert_eq!(project(rawdoc! { "_id": 0, "a.b": 1 }, rawdoc! { "a": {} }), rawdoc! { "a": {} });
        assert_eq!(project(rawdoc! { "_id": 0, "a.b": 1 }, rawdoc! { "a": [1, 2] }), rawdoc! { "a": [] });
    }

    #[test]
    fn projection_sub_object_equals_dotted_path() {
        let doc = rawdoc! { "a": { "b": 1, "c": 2 } };
        assert_eq!(project(rawdoc! { "_id": 0, "a": { "c": 1 } }, doc), rawdoc! { "a": { "c": 2 } });
    }

    #[test]
    fn projection_exclude_dotted_through_arrays() {
        let doc = rawdoc! { "_id": 1, "a": [ { "b": 1, "c": 2 }, 5 ], "x": { "b": 1 } };
        assert_eq!(project(rawdoc! { "a.b": 0 }, doc), rawdoc! { "_id": 1, "a": [ { "c": 2 }, 5 ], "x": { "b": 1 } });
    }

    #[test]
    fn projection_mixing_inclusion_and_exclusion_is_31254_or_31253() {
        assert_eq!(
            parse_err(rawdoc! { "a": 1, "b": 0 }),
            (31254, "Cannot do exclusion on field b in inclusion projection".into())
        );
        assert_eq!(
            parse_err(rawdoc! { "a": 0, "b": 1 }),
            (31253, "Cannot do inclusion on field b in exclusion projection".into())
        );
        assert_eq!(parse_err(rawdoc! { "a": 1, "_id.x": 0 }).0, 31254);
    }

    #[test]
    fn projection_path_collisions() {
        assert_eq!(parse_err(rawdoc! { "a.b": 1, "a": 1 }), (31250, "Path collision at a".into()));
        assert_eq!(
            parse_err(rawdoc! { "a": 1, "a.b.c": 1 }),
            (31249, "Path collision at a.b.c remaining portion b.c".into())
        );
    }

    #[test]
    fn projection_field_path_errors() {
        assert_eq!(parse_err(rawdoc! { "": 1 }).0, 40352);
        assert_eq!(parse_err(rawdoc! { "a.": 1 }).0, 40353);
        assert_eq!(parse_err(rawdoc! { "a..b": 1 }).0, 15998);
        assert_eq!(parse_err(rawdoc! { "$a": 1 }).0, 16410);
        assert_eq!(parse_err(rawdoc! { "a": {} }), (51270, "Invalid empty sub-projection: a".into()));
    }

    #[test]
    fn projection_operators_not_implemented() {
        assert_eq!(parse_err(rawdoc! { "a": { "$slice": 1 } }).0, 238);
        assert_eq!(parse_err(rawdoc! { "a": { "$elemMatch": { "b": 1 } } }).0, 238);
        assert_eq!(parse_err(rawdoc! { "a.$": 1 }).0, 238);
        assert_eq!(parse_err(rawdoc! { "a": "literal" }).0, 238);
    }
}
