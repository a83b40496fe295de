//! Applying an operator update: the tree walked over a document, array operators resolved to
//! positions, `$rename` moved, and mongod's storage rules checked on what the update made.

use std::collections::BTreeMap;

use bson::raw::CStr;
use bson::{Bson, Document, RawBsonRef, RawDocumentBuf};

use super::component::{ArrayOperator, array_operator, update_index};
use super::modifier::{Action, ApplyCx, Modifier, identical, to_raw};
use super::tree::{Rename, Tree, UpdateNode, insert};
use crate::error::ErrorCode;
use crate::query::collation::Collation;
use crate::query::error::QueryError;
use crate::query::filter::Filter;
use crate::query::filter::move_id_first;
use crate::query::limits::{MAX_STORAGE_DEPTH, update_too_deep};
use crate::query::render::{self, type_name};

/// mongod refuses to pad an array by more than this many nulls.
const MAX_PADDING: usize = 1_500_000;

/// Applies an operator update's `tree` and `renames` to `doc` (see [`super::Update::apply`]),
/// with the statement's `array_filters`, its query for the positional `$` and the collation
/// of the modifiers' comparisons. Returns whether `doc` changed.
pub(super) fn apply_operators(
    tree: &Tree,
    renames: &[Rename],
    array_filters: &BTreeMap<String, Filter>,
    positional: Option<&Filter>,
    collation: Option<&Collation>,
    doc: &mut Document,
    inserting: bool,
) -> Result<bool, QueryError> {
    // The top-level `$` fields the operators reach, as they were before.
    let dollar_fields: Vec<(&String, Option<Bson>)> = if inserting {
        Vec::new()
    } else {
        tree.keys().filter(|name| name.starts_with('$')).map(|name| (name, doc.get(name).cloned())).collect()
    };
    let positional = match positional {
        // An inserted document matched nothing, so `$` has no element to stand for.
        Some(_) if inserting => return Err(positional_not_found()),
        Some(query) => {
            let raw = RawDocumentBuf::try_from(&*doc).map_err(QueryError::invalid_bson)?;
            query.match_key(&raw)
        }
        None => None,
    };
    let mut cx = ApplyCx {
        inserting,
        changed: false,
        id: doc.get("_id").cloned(),
        path: Vec::new(),
        array_filters,
        positional,
        collation,
    };
    for (name, node) in tree {
        // mongod moves a renamed value when its walk reaches the source path, so
        // the destination field lands among the fields other operators create in
        // path order. Moving it when the walk reaches the source's top-level field
        // is exact for top-level sources.
        for rename in renames.iter().filter(|r| r.from.first() == Some(name)) {
            apply_rename(rename, doc, &mut cx)?;
        }
        apply_entry(name, node, doc, &mut cx)?;
    }
    if inserting {
        *doc = move_id_first(std::mem::take(doc));
    }
    // mongod validates for storage each element an update creates or sets, at its
    // depth, and refuses `$` names at the top level only: a top-level `$` field
    // created, or set whole, fails; one changed deeper inside does not.
    let stored: Vec<&String> = dollar_fields
        .into_iter()
        .filter(|(name, before)| match (before, doc.get(*name)) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(before), Some(after)) => {
                matches!(tree.get(*name), Some(UpdateNode::Leaf(_))) && !identical(before, after)
            }
        })
        .map(|(name, _)| name)
        .collect();
    check_top_level_dollar_fields(doc, stored.into_iter())?;
    Ok(cx.changed)
}

/// mongod's storage rule for the top-level fields `names` of `doc`, which an update of an
/// existing document stores: a `$`-prefixed name is refused unless it is part of a DBRef
/// (`$ref` then `$id`, then an optional `$db`) in that order and with string `$ref`/`$db`.
pub(super) fn check_top_level_dollar_fields<'a>(
    doc: &Document,
    names: impl Iterator<Item = &'a String>,
) -> Result<(), QueryError> {
    let keys: Vec<&String> = doc.keys().collect();
    for name in names.filter(|name| name.starts_with('$')) {
        let Some(mut at) = keys.iter().position(|k| *k == name) else { continue };
        let dbref = |message: String| QueryError::new(ErrorCode::InvalidDBRef, message);
        let key_at = |i: Option<usize>| i.and_then(|i| keys.get(i)).map(|k| k.as_str());
        let mut current = name.as_str();
        if current == "$db" {
            if let Some(value) = doc.get(current).filter(|v| !matches!(v, Bson::String(_))) {
                return Err(dbref(format!(
                    "The DBRef $db field must be a String, not a {}",
                    type_name(value.element_type())
                )));
            }
            if key_at(at.checked_sub(1)) != Some("$id") {
                return Err(dbref("Found $db field without a $id before it, which is invalid.".into()));
            }
            at -= 1;
            current = "$id";
        }
        if current == "$id" {
            if key_at(at.checked_sub(1)) != Some("$ref") {
                return Err(dbref("Found $id field without a $ref before it, which is invalid.".into()));
            }
            at -= 1;
            current = "$ref";
        }
        if current != "$ref" {
            return Err(dollar_prefixed(name, name));
        }
        if let Some(value) = doc.get("$ref").filter(|v| !matches!(v, Bson::String(_))) {
            return Err(dbref(format!(
                "The DBRef $ref field must be a String, not a {}",
                type_name(value.element_type())
            )));
        }
        if key_at(at.checked_add(1)) != Some("$id") {
            return Err(dbref("The DBRef $ref field must be followed by a $id field".into()));
        }
    }
    Ok(())
}

fn dollar_prefixed(field: &str, path: &str) -> QueryError {
    QueryError::new(
        ErrorCode::DollarPrefixedFieldName,
        format!(
            "The dollar ($) prefixed field '{field}' in '{path}' is not allowed in the context of an update's \
             replacement document. Consider using an aggregation pipeline with $replaceWith."
        ),
    )
}

/// `{name: value}`.
fn wrap_as(name: &str, value: RawBsonRef<'_>) -> Result<RawDocumentBuf, QueryError> {
    let key = <&CStr>::try_from(name).map_err(QueryError::invalid_bson)?;
    let mut doc = RawDocumentBuf::new();
    doc.append(key, value);
    Ok(doc)
}

impl ApplyCx<'_> {
    /// The component `name` stands for: `$` becomes the position the query matched.
    fn resolve<'n>(&self, name: &'n str) -> Result<std::borrow::Cow<'n, str>, QueryError> {
        if name != "$" {
            return Ok(std::borrow::Cow::Borrowed(name));
        }
        match self.positional {
            Some(index) => Ok(std::borrow::Cow::Owned(index.to_string())),
            None => Err(positional_not_found()),
        }
    }

    /// The positions of `items` an array operator picks.
    fn targets(&self, operator: ArrayOperator<'_>, items: &[Bson]) -> Result<Vec<usize>, QueryError> {
        match operator {
            ArrayOperator::First => Ok(self.positional.into_iter().collect()),
            ArrayOperator::All => Ok((0..items.len()).collect()),
            ArrayOperator::Filtered(id) => {
                let Some(filter) = self.array_filters.get(id) else { return Ok(Vec::new()) };
                let mut picked = Vec::new();
                for (index, item) in items.iter().enumerate() {
                    let wrapped = wrap_as(id, to_raw(item)?.as_raw_bson_ref())?;
                    if filter.matches(&wrapped) {
                        picked.push(index);
                    }
                }
                Ok(picked)
            }
        }
    }
}

/// Moves the value at `rename.from` to `rename.to` (mongod's `RenameNode`): a missing source
/// is a no-op; neither path may run through an array.
fn apply_rename(rename: &Rename, doc: &mut Document, cx: &mut ApplyCx<'_>) -> Result<(), QueryError> {
    let from = rename.from.join(".");
    let Some(value) = rename_source(doc, &rename.from, &from, cx)? else { return Ok(()) };
    check_rename_destination(doc, &rename.to, cx)?;

    let parts: Vec<&str> = rename.to.iter().map(String::as_str).collect();
    let mut tree = Tree::new();
    insert(&mut tree, &parts, &rename.to.join("."), Modifier::Set(value))?;
    let mut set_cx = ApplyCx {
        inserting: cx.inserting,
        changed: false,
        id: cx.id.clone(),
        path: Vec::new(),
        array_filters: cx.array_filters,
        positional: None,
        collation: cx.collation,
    };
    apply_in_document(&tree, doc, &mut set_cx)?;

    if rename.from.first().map(String::as_str) == Some("_id") {
        return Err(QueryError::new(
            ErrorCode::ImmutableField,
            format!("Unsetting the path '{from}' using $rename would modify the immutable field '_id'"),
        ));
    }
    let Some((last, parents)) = rename.from.split_last() else { return Ok(()) };
    let mut current = doc;
    for part in parents {
        match current.get_mut(part) {
            Some(Bson::Document(sub)) => current = sub,
            _ => return Ok(()),
        }
    }
    current.remove(last);
    cx.changed = true;
    Ok(())
}

/// The value a `$rename` moves, or `None` when the source path is missing.
fn rename_source(doc: &Document, parts: &[String], dotted: &str, cx: &ApplyCx<'_>) -> Result<Option<Bson>, QueryError> {
    let mut current = doc;
    let mut through_array: Option<&str> = None;
    let mut value: Option<&Bson> = None;
    let mut container: Option<(&str, &Bson)> = None;
    for (i, part) in parts.iter().enumerate() {
        let found = match (value, container) {
            (None, _) => current.get(part),
            (Some(Bson::Document(sub)), _) => {
                current = sub;
                current.get(part)
            }
            (Some(Bson::Array(items)), Some((name, array))) => match update_index(part) {
                Some(index) => {
                    through_array.get_or_insert(name);
                    items.get(index)
                }
                None => return Err(rename_not_viable(parts, i, name, array)),
            },
            (Some(scalar), Some((name, _))) => return Err(rename_not_viable(parts, i, name, scalar)),
            (Some(_), None) => None,
        };
        let Some(found) = found else { return Ok(None) };
        container = Some((part.as_str(), found));
        value = Some(found);
    }
    if let Some(array) = through_array {
        return Err(QueryError::bad_value(format!(
            "The source field cannot be an array element, '{dotted}' in doc with {} has an array field called '{array}'",
            cx.id_text_bare()
        )));
    }
    Ok(value.cloned())
}

fn rename_not_viable(parts: &[String], i: usize, name: &str, element: &Bson) -> QueryError {
    QueryError::new(
        ErrorCode::PathNotViable,
        format!(
            "cannot use the part ({} of {}) to traverse the element ({{{}}})",
            parts.get(i).map(String::as_str).unwrap_or_default(),
            parts.join("."),
            render::owned_element(name, element)
        ),
    )
}

/// A `$rename` may not write into an array: every existing container on the destination path
/// (the destination itself excepted) must be a document.
fn check_rename_destination(doc: &Document, parts: &[String], cx: &ApplyCx<'_>) -> Result<(), QueryError> {
    let mut current: Option<(&str, &Bson)> = None;
    for (i, part) in parts.iter().enumerate() {
        let next = match current {
            None => doc.get(part),
            Some((_, Bson::Document(sub))) => sub.get(part),
            Some((_, Bson::Array(items))) => update_index(part).and_then(|index| items.get(index)),
            Some(_) => None,
        };
        let is_last = i + 1 == parts.len();
        match (current, next) {
            // Arrays above an existing destination, or the deepest existing element when the
            // rest of the path must be created.
            (Some((name, Bson::Array(_))), _) => return Err(rename_destination_array(parts, name, cx)),
            (_, Some(found)) if !is_last => current = Some((part.as_str(), found)),
            _ => return Ok(()),
        }
    }
    Ok(())
}

fn rename_destination_array(parts: &[String], array: &str, cx: &ApplyCx<'_>) -> QueryError {
    QueryError::bad_value(format!(
        "The destination field cannot be an array element, '{}' in doc with {} has an array field called '{array}'",
        parts.join("."),
        cx.id_text_bare()
    ))
}

fn apply_in_document(tree: &Tree, doc: &mut Document, cx: &mut ApplyCx<'_>) -> Result<(), QueryError> {
    for (name, node) in tree {
        apply_entry(name, node, doc, cx)?;
    }
    Ok(())
}

/// Applies the subtree at field `name` of `doc`.
fn apply_entry(name: &str, node: &UpdateNode, doc: &mut Document, cx: &mut ApplyCx<'_>) -> Result<(), QueryError> {
    // In a document, `$` names the field spelled like the matched position, as in mongod.
    let name = cx.resolve(name)?;
    cx.path.push(name.to_string());
    let result = if cx.path.len() > MAX_STORAGE_DEPTH {
        beyond_storage_depth(node, doc.contains_key(&*name), cx)
    } else {
        match node {
            UpdateNode::Leaf(modifier) => leaf_in_document(modifier, doc, &name, cx),
            UpdateNode::Inner(children) => inner_in_document(children, doc, &name, cx),
        }
    };
    cx.path.pop();
    result
}

/// A path reaching below [`MAX_STORAGE_DEPTH`] levels (`cx.path` is that deep): creating
/// anything there would make a document mongod refuses to store, so it is refused before it
/// is built; a value already there (a document stored too deep by an older version) is not
/// walked into; otherwise nothing changes, as the path is missing.
fn beyond_storage_depth(node: &UpdateNode, exists: bool, cx: &ApplyCx<'_>) -> Result<(), QueryError> {
    if exists || blocking(node, cx.inserting).is_some_and(|(_, creates)| creates) {
        return Err(update_too_deep());
    }
    Ok(())
}

/// Whether a tree has `$[]` or `$[<identifier>]` children, which need an array.
fn has_array_updates(children: &Tree) -> bool {
    children.keys().any(|k| matches!(array_operator(k), Some(ArrayOperator::All | ArrayOperator::Filtered(_))))
}

fn non_array_element(name: &str, value: &Bson) -> QueryError {
    QueryError::bad_value(format!(
        "Cannot apply array updates to non-array element {}",
        render::owned_element(name, value)
    ))
}

fn leaf_in_document(
    modifier: &Modifier,
    doc: &mut Document,
    name: &str,
    cx: &mut ApplyCx<'_>,
) -> Result<(), QueryError> {
    match doc.get(name) {
        Some(existing) => match modifier.action(existing, name, cx)? {
            Action::Keep => return Ok(()),
            Action::Set(value) => {
                cx.check_modify()?;
                doc.insert(name, value);
            }
            Action::Remove => {
                cx.check_modify()?;
                doc.remove(name);
            }
        },
        None => match modifier.created_value(cx.inserting)? {
            Some(value) => {
                cx.check_create()?;
                doc.insert(name, value);
            }
            None => return Ok(()),
        },
    }
    cx.changed = true;
    Ok(())
}

fn inner_in_document(children: &Tree, doc: &mut Document, name: &str, cx: &mut ApplyCx<'_>) -> Result<(), QueryError> {
    let array_updates = has_array_updates(children);
    match doc.get_mut(name) {
        Some(Bson::Array(items)) => apply_in_array(children, name, items, cx),
        Some(other) if array_updates => Err(non_array_element(name, other)),
        Some(Bson::Document(sub)) => apply_in_document(children, sub, cx),
        Some(other) => blocked(children, name, other, cx),
        None if array_updates => Err(missing_array(cx)),
        None => {
            // Build the missing document aside; it is attached only if something was created.
            let mut fresh = Document::new();
            apply_in_document(children, &mut fresh, cx)?;
            if !fresh.is_empty() {
                doc.insert(name, fresh);
            }
            Ok(())
        }
    }
}

pub(super) fn positional_not_found() -> QueryError {
    QueryError::bad_value("The positional operator did not find the match needed from the query.")
}

fn missing_array(cx: &ApplyCx<'_>) -> QueryError {
    QueryError::bad_value(format!(
        "The path '{}' must exist in the document in order to apply array updates.",
        cx.path.join(".")
    ))
}

fn apply_in_array(
    tree: &Tree,
    array_name: &str,
    items: &mut Vec<Bson>,
    cx: &mut ApplyCx<'_>,
) -> Result<(), QueryError> {
    for (name, node) in tree {
        let result = match array_operator(name) {
            Some(operator) => {
                if operator == ArrayOperator::First && cx.positional.is_none() {
                    return Err(positional_not_found());
                }
                let mut result = Ok(());
                for index in cx.targets(operator, items)? {
                    let position = index.to_string();
                    cx.path.push(position.clone());
                    result = node_in_array(node, &position, array_name, items, cx);
                    cx.path.pop();
                    if result.is_err() {
                        break;
                    }
                }
                result
            }
            None => {
                cx.path.push(name.clone());
                let result = node_in_array(node, name, array_name, items, cx);
                cx.path.pop();
                result
            }
        };
        result?;
    }
    Ok(())
}

fn node_in_array(
    node: &UpdateNode,
    name: &str,
    array_name: &str,
    items: &mut Vec<Bson>,
    cx: &mut ApplyCx<'_>,
) -> Result<(), QueryError> {
    if cx.path.len() > MAX_STORAGE_DEPTH {
        let exists = update_index(name).is_some_and(|index| index < items.len());
        return beyond_storage_depth(node, exists, cx);
    }
    let Some(index) = update_index(name) else {
        // A field name cannot address an array element.
        let taken = cx.path.get(..cx.path.len().saturating_sub(1)).unwrap_or_default().join(".");
        return match blocking(node, cx.inserting) {
            Some((_, true)) => Err(not_viable(name, &render::owned_element(array_name, &Bson::Array(items.clone())))),
            Some((below, false)) => Err(untraversable(
                &taken,
                name,
                &below,
                &render::owned_element(array_name, &Bson::Array(items.clone())),
            )),
            None => Ok(()),
        };
    };
    match node {
        UpdateNode::Leaf(modifier) => leaf_in_array(modifier, items, index, name, cx),
        UpdateNode::Inner(children) => match items.get_mut(index) {
            Some(Bson::Array(inner)) => apply_in_array(children, name, inner, cx),
            Some(other) if has_array_updates(children) => Err(non_array_element(name, other)),
            Some(Bson::Document(sub)) => apply_in_document(children, sub, cx),
            Some(other) => blocked(children, name, other, cx),
            None if has_array_updates(children) => Err(missing_array(cx)),
            None => {
                let mut fresh = Document::new();
                apply_in_document(children, &mut fresh, cx)?;
                if !fresh.is_empty() {
                    pad_and_push(items, index, Bson::Document(fresh))?;
                }
                Ok(())
            }
        },
    }
}

fn leaf_in_array(
    modifier: &Modifier,
    items: &mut Vec<Bson>,
    index: usize,
    name: &str,
    cx: &mut ApplyCx<'_>,
) -> Result<(), QueryError> {
    match items.get_mut(index) {
        Some(existing) => match modifier.action(existing, name, cx)? {
            Action::Keep => return Ok(()),
            Action::Set(value) => {
                cx.check_modify()?;
                *existing = value;
            }
            // An array keeps its length: `$unset` of an element leaves null.
            Action::Remove => {
                cx.check_modify()?;
                *existing = Bson::Null;
            }
        },
        None => match modifier.created_value(cx.inserting)? {
            Some(value) => {
                cx.check_create()?;
                pad_and_push(items, index, value)?;
            }
            None => return Ok(()),
        },
    }
    cx.changed = true;
    Ok(())
}

/// The path continues through a scalar: creating modifiers fail, and so do `$pop`, `$pull`
/// and `$pullAll` (mongod's `checkViability`); the others do nothing. Children are tried in
/// path order, as mongod applies them.
fn blocked(children: &Tree, name: &str, value: &Bson, cx: &ApplyCx<'_>) -> Result<(), QueryError> {
    for (field, node) in children {
        match blocking(node, cx.inserting) {
            Some((_, true)) => return Err(not_viable(field, &render::owned_element(name, value))),
            Some((below, false)) => {
                return Err(untraversable(&cx.path.join("."), field, &below, &render::owned_element(name, value)));
            }
            None => {}
        }
    }
    Ok(())
}

/// The first leaf under `node` (in path order) that creates its path (`true`) or needs the
/// path to be traversable (`false`), with the components leading to it.
fn blocking(node: &UpdateNode, inserting: bool) -> Option<(Vec<&str>, bool)> {
    match node {
        UpdateNode::Leaf(modifier) if modifier.creates(inserting) => Some((Vec::new(), true)),
        UpdateNode::Leaf(Modifier::Pop { .. } | Modifier::Pull(_) | Modifier::PullAll(_)) => Some((Vec::new(), false)),
        UpdateNode::Leaf(_) => None,
        UpdateNode::Inner(children) => children.iter().find_map(|(name, child)| {
            blocking(child, inserting).map(|(mut below, creates)| {
                below.insert(0, name.as_str());
                (below, creates)
            })
        }),
    }
}

/// mongod's `UpdateLeafNode::checkViability` error.
fn untraversable(taken: &str, first: &str, below: &[&str], element: &str) -> QueryError {
    let mut rest = first.to_owned();
    for part in below {
        rest.push('.');
        rest.push_str(part);
    }
    QueryError::new(
        ErrorCode::PathNotViable,
        format!("Cannot use the part ({first}) of ({taken}.{rest}) to traverse the element ({{{element}}})"),
    )
}

fn not_viable(field: &str, element: &str) -> QueryError {
    QueryError::new(ErrorCode::PathNotViable, format!("Cannot create field '{field}' in element {{{element}}}"))
}

/// Sets element `index` of an array it lies beyond, padding with nulls as mongod does.
fn pad_and_push(items: &mut Vec<Bson>, index: usize, value: Bson) -> Result<(), QueryError> {
    if index.saturating_sub(items.len()) > MAX_PADDING {
        return Err(QueryError::new(
            ErrorCode::CannotBackfillArray,
            format!("can't backfill more than {MAX_PADDING} elements"),
        ));
    }
    items.resize(index, Bson::Null);
    items.push(value);
    Ok(())
}
