//! Update documents: a replacement, or operators applied to a document.
//!
//! Operator updates are parsed into a tree keyed by path component, as mongod's
//! `UpdateObjectNode` is: two operators on the same or overlapping paths fail at parse time
//! (40 ConflictingUpdateOperators), and the tree is applied in field-name order, which is why
//! mongod appends new fields in that order. Supported now: `$set $setOnInsert $unset $inc
//! $push $pull`; the other modifiers answer 238 NotImplemented, and new ones slot in as
//! [`Modifier`] variants.

use std::collections::BTreeMap;

use bson::raw::CStr;
use bson::{Bson, Document, RawBson, RawBsonRef, RawDocument, RawDocumentBuf};

use super::error::QueryError;
use super::filter::{Filter, is_operator_document, move_id_first};
use super::number::{self, AddError, Number};
use super::order::compare_values;
use super::path::fields;
use super::render::{self, type_name};
use crate::error::ErrorCode;

/// mongod refuses to pad an array by more than this many nulls.
const MAX_PADDING: usize = 1_500_000;

/// A parsed update.
#[derive(Debug, Clone)]
pub struct Update {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Replacement(Document),
    Operators(Tree),
}

type Tree = BTreeMap<String, UpdateNode>;

#[derive(Debug, Clone)]
enum UpdateNode {
    Leaf(Modifier),
    Inner(Tree),
}

/// What one operator does at one path.
#[derive(Debug, Clone)]
enum Modifier {
    Set(Bson),
    SetOnInsert(Bson),
    Unset,
    Inc(Number),
    Push(Vec<Bson>),
    Pull(PullCondition),
}

/// Which array elements `$pull` removes.
#[derive(Debug, Clone)]
enum PullCondition {
    /// Elements equal to a value (in BSON order, so 1 also pulls 1.0).
    Equals(RawBson),
    /// Document elements matching a query (`{$pull: {a: {b: 1}}}`).
    Query(Filter),
    /// Elements whose value matches operators (`{$pull: {a: {$gte: 5}}}`), matched as the
    /// field `""` of a wrapper document.
    Value(Filter),
}

#[derive(Debug, Clone, Copy)]
enum Operator {
    Set,
    SetOnInsert,
    Unset,
    Inc,
    Push,
    Pull,
}

impl Update {
    /// Parses an update: operators when its first field starts with `$`, a replacement
    /// otherwise (an empty document is an empty replacement).
    ///
    /// # Errors
    /// 9 FailedToParse for an unknown modifier or a modifier whose argument is not a document,
    /// 52 DollarPrefixedFieldName for `$` fields in a replacement or an update path, 56
    /// EmptyFieldName, 40 ConflictingUpdateOperators, 14 TypeMismatch for a non-numeric
    /// `$inc`, 238 NotImplemented for modifiers not built yet.
    pub fn parse(spec: &RawDocument) -> Result<Self, QueryError> {
        match fields(spec).next() {
            Some((first, _)) if first.starts_with('$') => parse_operators(spec),
            _ => parse_replacement(spec),
        }
    }

    /// Whether this update replaces the whole document.
    pub fn is_replacement(&self) -> bool {
        matches!(self.kind, Kind::Replacement(_))
    }

    /// Applies the update to `doc`; `inserting` is true for an upsert's new document (it
    /// enables `$setOnInsert` and creating paths under `_id`). Returns whether `doc` changed:
    /// an update that leaves every value identical reports false, so nModified stays 0.
    ///
    /// # Errors
    /// mongod's errors: 14 TypeMismatch (`$inc` on a non-number), 2 BadValue (`$push`/`$pull`
    /// on a non-array, int64 overflow), 28 PathNotViable, 34 CannotBackfillArray, 66
    /// ImmutableField. On error `doc` may be partly updated: apply to a copy and drop it.
    pub fn apply(&self, doc: &mut Document, inserting: bool) -> Result<bool, QueryError> {
        match &self.kind {
            Kind::Replacement(replacement) => {
                let next = replace(doc, replacement)?;
                let changed = !documents_identical(doc, &next);
                *doc = next;
                Ok(changed)
            }
            Kind::Operators(tree) => {
                let mut cx = ApplyCx { inserting, changed: false, id: doc.get("_id").cloned(), path: Vec::new() };
                apply_in_document(tree, doc, &mut cx)?;
                if inserting {
                    *doc = move_id_first(std::mem::take(doc));
                }
                Ok(cx.changed)
            }
        }
    }
}

/// The document a replacement produces: `replacement`'s fields with `current`'s `_id` first.
///
/// # Errors
/// 66 ImmutableField when `replacement` has an `_id` of a different value.
pub fn replace(current: &Document, replacement: &Document) -> Result<Document, QueryError> {
    let mut out = Document::new();
    match (current.get("_id"), replacement.get("_id")) {
        (Some(old), Some(new)) => {
            if !values_equal(old, new)? {
                return Err(QueryError::new(
                    ErrorCode::ImmutableField,
                    format!(
                        "After applying the update, the (immutable) field '_id' was found to have been altered to {}",
                        render::owned_element("_id", new)
                    ),
                ));
            }
            out.insert("_id", old.clone());
        }
        (Some(id), None) | (None, Some(id)) => {
            out.insert("_id", id.clone());
        }
        (None, None) => {}
    }
    for (key, value) in replacement {
        if key != "_id" {
            out.insert(key.clone(), value.clone());
        }
    }
    Ok(out)
}

fn parse_replacement(spec: &RawDocument) -> Result<Update, QueryError> {
    let mut doc = Document::new();
    for item in spec.iter() {
        let (key, value) = item.map_err(QueryError::invalid_bson)?;
        let key = key.as_str();
        if key.starts_with('$') {
            return Err(dollar_prefixed(key, key));
        }
        doc.insert(key, to_bson(value)?);
    }
    Ok(Update { kind: Kind::Replacement(doc) })
}

fn parse_operators(spec: &RawDocument) -> Result<Update, QueryError> {
    let mut tree = Tree::new();
    for item in spec.iter() {
        let (op, arg) = item.map_err(QueryError::invalid_bson)?;
        let op = op.as_str();
        let operator = parse_operator_name(op)?;
        let RawBsonRef::Document(args) = arg else {
            return Err(QueryError::failed_to_parse(format!(
                "Modifiers operate on fields but we found type {} instead. For example: {{$mod: {{<field>: ...}}}} not {{{}}}",
                type_name(arg.element_type()),
                render::element(op, arg)
            )));
        };
        for item in args.iter() {
            let (path, value) = item.map_err(QueryError::invalid_bson)?;
            let path = path.as_str();
            let parts = check_update_path(path)?;
            let modifier = parse_modifier(operator, path, value)?;
            insert(&mut tree, &parts, path, modifier)?;
        }
    }
    Ok(Update { kind: Kind::Operators(tree) })
}

fn parse_operator_name(op: &str) -> Result<Operator, QueryError> {
    match op {
        "$set" => Ok(Operator::Set),
        "$setOnInsert" => Ok(Operator::SetOnInsert),
        "$unset" => Ok(Operator::Unset),
        "$inc" => Ok(Operator::Inc),
        "$push" => Ok(Operator::Push),
        "$pull" => Ok(Operator::Pull),
        "$addToSet" | "$pop" | "$pullAll" | "$rename" | "$min" | "$max" | "$mul" | "$currentDate" | "$bit" => {
            Err(QueryError::not_implemented(op))
        }
        _ => Err(QueryError::failed_to_parse(format!(
            "Unknown modifier: {op}. Expected a valid update modifier or pipeline-style update specified as an array"
        ))),
    }
}

/// Splits an update path, refusing empty components, positional operators (not built yet)
/// and other `$`-prefixed components.
fn check_update_path(path: &str) -> Result<Vec<&str>, QueryError> {
    if path.is_empty() {
        return Err(QueryError::new(ErrorCode::EmptyFieldName, "An empty update path is not valid."));
    }
    let parts: Vec<&str> = path.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(QueryError::new(
            ErrorCode::EmptyFieldName,
            format!("The update path '{path}' contains an empty field name, which is not allowed."),
        ));
    }
    if parts.iter().any(|p| *p == "$" || p.starts_with("$[")) {
        return Err(QueryError::not_implemented("the positional update operator"));
    }
    if let Some(part) = parts.iter().find(|p| p.starts_with('$')) {
        return Err(dollar_prefixed(part, path));
    }
    Ok(parts)
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

fn parse_modifier(operator: Operator, path: &str, value: RawBsonRef<'_>) -> Result<Modifier, QueryError> {
    match operator {
        Operator::Set => Ok(Modifier::Set(to_bson(value)?)),
        Operator::SetOnInsert => Ok(Modifier::SetOnInsert(to_bson(value)?)),
        Operator::Unset => Ok(Modifier::Unset),
        Operator::Inc => Number::from_raw(value).map(Modifier::Inc).ok_or_else(|| {
            QueryError::new(
                ErrorCode::TypeMismatch,
                format!("Cannot increment with non-numeric argument: {{{}}}", render::element(path, value)),
            )
        }),
        Operator::Push => parse_push(value).map(Modifier::Push),
        Operator::Pull => parse_pull(value).map(Modifier::Pull),
    }
}

/// `$push` takes a value, or `{$each: [...]}`; `$slice`, `$sort` and `$position` are not
/// built yet.
fn parse_push(value: RawBsonRef<'_>) -> Result<Vec<Bson>, QueryError> {
    let RawBsonRef::Document(clauses) = value else { return Ok(vec![to_bson(value)?]) };
    if !matches!(clauses.get("$each"), Ok(Some(_))) {
        return Ok(vec![to_bson(value)?]);
    }
    let mut values = Vec::new();
    for (clause, arg) in fields(clauses) {
        match (clause, arg) {
            ("$each", RawBsonRef::Array(each)) => {
                for v in each {
                    values.push(to_bson(v.map_err(QueryError::invalid_bson)?)?);
                }
            }
            ("$each", other) => {
                return Err(QueryError::bad_value(format!(
                    "The argument to $each in $push must be an array but it was of type: {}",
                    type_name(other.element_type())
                )));
            }
            ("$slice" | "$sort" | "$position", _) => {
                return Err(QueryError::not_implemented(&format!("$push with {clause}")));
            }
            _ => return Err(QueryError::bad_value(format!("Unrecognized clause in $push: {clause}"))),
        }
    }
    Ok(values)
}

fn parse_pull(value: RawBsonRef<'_>) -> Result<PullCondition, QueryError> {
    match value {
        RawBsonRef::Document(cond) if is_operator_document(cond) && !starts_with_logical(cond) => {
            Ok(PullCondition::Value(Filter::parse(&wrap(value)?)?))
        }
        RawBsonRef::Document(cond) => Ok(PullCondition::Query(Filter::parse(cond)?)),
        other => Ok(PullCondition::Equals(RawBson::from(other))),
    }
}

/// `$and`, `$or`, `$nor` and friends make a `$pull` condition a query on document elements.
fn starts_with_logical(cond: &RawDocument) -> bool {
    fields(cond).next().is_some_and(|(key, _)| {
        matches!(key, "$and" | "$or" | "$nor" | "$expr" | "$where" | "$text" | "$comment" | "$jsonSchema")
    })
}

/// `{"": value}`, so a value can be matched by a filter on the path `""`.
fn wrap(value: RawBsonRef<'_>) -> Result<RawDocumentBuf, QueryError> {
    let key = <&CStr>::try_from("").map_err(QueryError::invalid_bson)?;
    let mut doc = RawDocumentBuf::new();
    doc.append(key, value);
    Ok(doc)
}

fn to_bson(value: RawBsonRef<'_>) -> Result<Bson, QueryError> {
    Bson::try_from(value).map_err(QueryError::invalid_bson)
}

fn to_raw(value: &Bson) -> Result<RawBson, QueryError> {
    RawBson::try_from(value.clone()).map_err(QueryError::invalid_bson)
}

fn values_equal(a: &Bson, b: &Bson) -> Result<bool, QueryError> {
    Ok(compare_values(to_raw(a)?.as_raw_bson_ref(), to_raw(b)?.as_raw_bson_ref()).is_eq())
}

/// Adds a modifier at `parts`, refusing a path that equals, extends or prefixes one already
/// in the tree.
fn insert(tree: &mut Tree, parts: &[&str], dotted: &str, modifier: Modifier) -> Result<(), QueryError> {
    let Some((last, prefix)) = parts.split_last() else { return Ok(()) };
    let mut current = tree;
    for (i, part) in prefix.iter().enumerate() {
        match current.entry((*part).to_owned()).or_insert_with(|| UpdateNode::Inner(Tree::new())) {
            UpdateNode::Inner(children) => current = children,
            UpdateNode::Leaf(_) => return Err(conflict(dotted, &parts.get(..=i).unwrap_or_default().join("."))),
        }
    }
    if current.contains_key(*last) {
        return Err(conflict(dotted, dotted));
    }
    current.insert((*last).to_owned(), UpdateNode::Leaf(modifier));
    Ok(())
}

fn conflict(path: &str, at: &str) -> QueryError {
    QueryError::new(
        ErrorCode::ConflictingUpdateOperators,
        format!("Updating the path '{path}' would create a conflict at '{at}'"),
    )
}

/// State shared while one update is applied.
struct ApplyCx<'u> {
    inserting: bool,
    changed: bool,
    /// The document's `_id`, for error messages.
    id: Option<Bson>,
    /// The path being applied, component by component.
    path: Vec<&'u str>,
}

impl ApplyCx<'_> {
    /// `{_id: ...}` as mongod writes it in messages.
    fn id_text(&self) -> String {
        match &self.id {
            Some(id) => format!("{{{}}}", render::owned_element("_id", id)),
            None => "{no id}".to_owned(),
        }
    }

    /// Changing an existing value under `_id` is refused.
    fn check_modify(&self) -> Result<(), QueryError> {
        if self.path.first() == Some(&"_id") {
            return Err(QueryError::new(
                ErrorCode::ImmutableField,
                format!(
                    "Performing an update on the path '{}' would modify the immutable field '_id'",
                    self.path.join(".")
                ),
            ));
        }
        Ok(())
    }

    /// Creating a path under `_id` is allowed only in a document being inserted.
    fn check_create(&self) -> Result<(), QueryError> {
        if self.inserting { Ok(()) } else { self.check_modify() }
    }
}

/// What a modifier does to a value that exists.
enum Action {
    Keep,
    Set(Bson),
    Remove,
}

impl Modifier {
    /// Whether the modifier creates its path when the path is missing.
    fn creates(&self, inserting: bool) -> bool {
        match self {
            Modifier::Set(_) | Modifier::Inc(_) | Modifier::Push(_) => true,
            Modifier::SetOnInsert(_) => inserting,
            Modifier::Unset | Modifier::Pull(_) => false,
        }
    }

    /// The value a missing path gets, if the modifier creates it.
    fn created_value(&self, inserting: bool) -> Option<Bson> {
        match self {
            Modifier::Set(v) => Some(v.clone()),
            Modifier::SetOnInsert(v) if inserting => Some(v.clone()),
            Modifier::Inc(n) => Some(n.to_bson()),
            Modifier::Push(values) => Some(Bson::Array(values.clone())),
            Modifier::SetOnInsert(_) | Modifier::Unset | Modifier::Pull(_) => None,
        }
    }

    /// What the modifier does to `existing`, the value of the field named `field`.
    fn action(&self, existing: &Bson, field: &str, cx: &ApplyCx<'_>) -> Result<Action, QueryError> {
        match self {
            Modifier::Set(v) => Ok(set_action(existing, v)),
            Modifier::SetOnInsert(v) if cx.inserting => Ok(set_action(existing, v)),
            Modifier::SetOnInsert(_) => Ok(Action::Keep),
            Modifier::Unset => Ok(Action::Remove),
            Modifier::Inc(by) => inc_action(*by, existing, field, cx),
            Modifier::Push(values) => match existing {
                Bson::Array(_) if values.is_empty() => Ok(Action::Keep),
                Bson::Array(items) => Ok(Action::Set(Bson::Array(items.iter().chain(values).cloned().collect()))),
                other => Err(QueryError::bad_value(format!(
                    "The field '{field}' must be an array but is of type {} in document {}",
                    type_name(other.element_type()),
                    cx.id_text()
                ))),
            },
            Modifier::Pull(cond) => match existing {
                Bson::Array(items) => pull_action(items, cond),
                _ => Err(QueryError::bad_value("Cannot apply $pull to a non-array value")),
            },
        }
    }
}

fn set_action(existing: &Bson, value: &Bson) -> Action {
    if identical(existing, value) { Action::Keep } else { Action::Set(value.clone()) }
}

fn inc_action(by: Number, existing: &Bson, field: &str, cx: &ApplyCx<'_>) -> Result<Action, QueryError> {
    let Some(current) = Number::from_bson(existing) else {
        return Err(QueryError::new(
            ErrorCode::TypeMismatch,
            format!(
                "Cannot apply $inc to a value of non-numeric type. {} has the field '{field}' of non-numeric type {}",
                cx.id_text(),
                type_name(existing.element_type())
            ),
        ));
    };
    match number::add(current, by) {
        Ok(sum) if number::identical(sum, current) => Ok(Action::Keep),
        Ok(sum) => Ok(Action::Set(sum.to_bson())),
        Err(AddError::Overflow) => Err(QueryError::bad_value(format!(
            "Failed to apply $inc operations to current value ({}) for document {}",
            current.debug_string(),
            cx.id_text()
        ))),
        Err(AddError::Decimal) => Err(QueryError::not_implemented("$inc with decimal128 values")),
    }
}

fn pull_action(items: &[Bson], cond: &PullCondition) -> Result<Action, QueryError> {
    let mut kept = Vec::with_capacity(items.len());
    for item in items {
        if !cond.matches(item)? {
            kept.push(item.clone());
        }
    }
    Ok(if kept.len() == items.len() { Action::Keep } else { Action::Set(Bson::Array(kept)) })
}

impl PullCondition {
    fn matches(&self, element: &Bson) -> Result<bool, QueryError> {
        match self {
            PullCondition::Equals(target) => {
                Ok(compare_values(to_raw(element)?.as_raw_bson_ref(), target.as_raw_bson_ref()).is_eq())
            }
            PullCondition::Query(filter) => match element {
                Bson::Document(doc) => {
                    let raw = RawDocumentBuf::try_from(doc).map_err(QueryError::invalid_bson)?;
                    Ok(filter.matches(&raw))
                }
                _ => Ok(false),
            },
            PullCondition::Value(filter) => Ok(filter.matches(&wrap(to_raw(element)?.as_raw_bson_ref())?)),
        }
    }
}

fn apply_in_document<'u>(tree: &'u Tree, doc: &mut Document, cx: &mut ApplyCx<'u>) -> Result<(), QueryError> {
    for (name, node) in tree {
        cx.path.push(name);
        let result = match node {
            UpdateNode::Leaf(modifier) => leaf_in_document(modifier, doc, name, cx),
            UpdateNode::Inner(children) => inner_in_document(children, doc, name, cx),
        };
        cx.path.pop();
        result?;
    }
    Ok(())
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
        None => match modifier.created_value(cx.inserting) {
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

fn inner_in_document<'u>(
    children: &'u Tree,
    doc: &mut Document,
    name: &str,
    cx: &mut ApplyCx<'u>,
) -> Result<(), QueryError> {
    match doc.get_mut(name) {
        Some(Bson::Document(sub)) => apply_in_document(children, sub, cx),
        Some(Bson::Array(items)) => apply_in_array(children, name, items, cx),
        Some(other) => blocked(children, name, other, cx),
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

fn apply_in_array<'u>(
    tree: &'u Tree,
    array_name: &str,
    items: &mut Vec<Bson>,
    cx: &mut ApplyCx<'u>,
) -> Result<(), QueryError> {
    for (name, node) in tree {
        cx.path.push(name);
        let result = node_in_array(node, name, array_name, items, cx);
        cx.path.pop();
        result?;
    }
    Ok(())
}

fn node_in_array<'u>(
    node: &'u UpdateNode,
    name: &str,
    array_name: &str,
    items: &mut Vec<Bson>,
    cx: &mut ApplyCx<'u>,
) -> Result<(), QueryError> {
    let Some(index) = update_index(name) else {
        // A field name cannot address an array element.
        if node_creates(node, cx.inserting) {
            return Err(not_viable(name, &render::owned_element(array_name, &Bson::Array(items.clone()))));
        }
        return Ok(());
    };
    match node {
        UpdateNode::Leaf(modifier) => leaf_in_array(modifier, items, index, name, cx),
        UpdateNode::Inner(children) => match items.get_mut(index) {
            Some(Bson::Document(sub)) => apply_in_document(children, sub, cx),
            Some(Bson::Array(inner)) => apply_in_array(children, name, inner, cx),
            Some(other) => blocked(children, name, other, cx),
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
        None => match modifier.created_value(cx.inserting) {
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

/// The path continues through a scalar: creating modifiers fail, the others do nothing.
fn blocked(children: &Tree, name: &str, value: &Bson, cx: &ApplyCx<'_>) -> Result<(), QueryError> {
    match children.iter().find(|(_, node)| node_creates(node, cx.inserting)) {
        Some((field, _)) => Err(not_viable(field, &render::owned_element(name, value))),
        None => Ok(()),
    }
}

fn node_creates(node: &UpdateNode, inserting: bool) -> bool {
    match node {
        UpdateNode::Leaf(modifier) => modifier.creates(inserting),
        UpdateNode::Inner(children) => children.values().any(|child| node_creates(child, inserting)),
    }
}

fn not_viable(field: &str, element: &str) -> QueryError {
    QueryError::new(ErrorCode::PathNotViable, format!("Cannot create field '{field}' in element {{{element}}}"))
}

/// An update path component addresses an array element when it is all digits (mongod's
/// update path support accepts leading zeros here, unlike the matcher).
fn update_index(name: &str) -> Option<usize> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(name.parse().unwrap_or(usize::MAX))
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

/// Byte-for-byte equality, as mongod's `binaryEqualValues`: 1 and 1.0 differ, field order
/// matters, NaN equals an identical NaN.
fn identical(a: &Bson, b: &Bson) -> bool {
    match (a, b) {
        (Bson::Double(x), Bson::Double(y)) => x.to_bits() == y.to_bits(),
        (Bson::Document(x), Bson::Document(y)) => documents_identical(x, y),
        (Bson::Array(x), Bson::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| identical(p, q)),
        (Bson::JavaScriptCodeWithScope(x), Bson::JavaScriptCodeWithScope(y)) => {
            x.code == y.code && documents_identical(&x.scope, &y.scope)
        }
        _ => a.element_type() == b.element_type() && a == b,
    }
}

fn documents_identical(a: &Document, b: &Document) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|((ka, va), (kb, vb))| ka == kb && identical(va, vb))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, rawdoc};

    fn update(spec: RawDocumentBuf) -> Update {
        Update::parse(&spec).unwrap()
    }

    /// Applies `spec` to `doc`, returning the new document and whether it changed.
    fn run(spec: RawDocumentBuf, mut doc: Document) -> (Document, bool) {
        let changed = update(spec).apply(&mut doc, false).unwrap();
        (doc, changed)
    }

    fn run_err(spec: RawDocumentBuf, mut doc: Document) -> (i32, String) {
        let err = update(spec).apply(&mut doc, false).unwrap_err();
        (err.code().code(), err.message().to_owned())
    }

    fn parse_err(spec: RawDocumentBuf) -> (i32, String) {
        let err = Update::parse(&spec).unwrap_err();
        (err.code().code(), err.message().to_owned())
    }

    #[test]
    fn update_replacement_keeps_id_first() {
        let u = update(rawdoc! { "b": 2, "a": 1 });
        assert!(u.is_replacement());
        let mut doc = doc! { "_id": 1, "x": 0 };
        assert!(u.apply(&mut doc, false).unwrap());
        assert_eq!(doc, doc! { "_id": 1, "b": 2, "a": 1 });
    }

    #[test]
    fn update_replacement_same_document_is_unchanged() {
        let (doc, changed) = run(rawdoc! { "_id": 1, "a": 1 }, doc! { "_id": 1, "a": 1 });
        assert!(!changed);
        assert_eq!(doc, doc! { "_id": 1, "a": 1 });
    }

    #[test]
    fn update_replacement_changing_id_is_66() {
        let (code, message) = run_err(rawdoc! { "_id": 2 }, doc! { "_id": 1 });
        assert_eq!(code, 66);
        assert_eq!(
            message,
            "After applying the update, the (immutable) field '_id' was found to have been altered to _id: 2"
        );
        assert!(replace(&doc! { "_id": 1 }, &doc! { "_id": 1.0, "a": 1 }).is_ok());
    }

    #[test]
    fn update_replacement_with_operator_field_is_52() {
        assert_eq!(
            parse_err(rawdoc! { "a": 1, "$set": { "b": 1 } }),
            (
                52,
                "The dollar ($) prefixed field '$set' in '$set' is not allowed in the context of an update's \
                 replacement document. Consider using an aggregation pipeline with $replaceWith."
                    .into()
            )
        );
    }

    #[test]
    fn update_unknown_modifier_is_9() {
        assert_eq!(
            parse_err(rawdoc! { "$foo": { "a": 1 } }),
            (9, "Unknown modifier: $foo. Expected a valid update modifier or pipeline-style update specified as an array".into())
        );
        assert_eq!(
            parse_err(rawdoc! { "$set": { "a": 1 }, "obj": 1 }).1,
            "Unknown modifier: obj. Expected a valid update modifier or pipeline-style update specified as an array"
        );
        assert_eq!(
            parse_err(rawdoc! { "$set": "string" }),
            (9, r#"Modifiers operate on fields but we found type string instead. For example: {$mod: {<field>: ...}} not {$set: "string"}"#.into())
        );
        assert_eq!(parse_err(rawdoc! { "$addToSet": { "a": 1 } }).0, 238);
    }

    #[test]
    fn update_set_creates_nested_documents() {
        let (doc, changed) = run(rawdoc! { "$set": { "a.b.c": 1 } }, doc! { "_id": 1 });
        assert!(changed);
        assert_eq!(doc, doc! { "_id": 1, "a": { "b": { "c": 1 } } });
    }

    #[test]
    fn update_set_new_fields_in_name_order() {
        let (doc, _) = run(rawdoc! { "$set": { "z": 1, "b": 2 }, "$inc": { "a": 1 } }, doc! { "_id": 1 });
        assert_eq!(doc, doc! { "_id": 1, "a": 1, "b": 2, "z": 1 });
    }

    #[test]
    fn update_set_same_value_is_unchanged() {
        let (_, changed) =
            run(rawdoc! { "$set": { "a": 1, "b.c": "x" } }, doc! { "_id": 1, "a": 1, "b": { "c": "x" } });
        assert!(!changed);
        // 1.0 is a different type from 1, so it is a change.
        let (doc, changed) = run(rawdoc! { "$set": { "a": 1.0 } }, doc! { "_id": 1, "a": 1 });
        assert!(changed);
        assert_eq!(doc, doc! { "_id": 1, "a": 1.0 });
    }

    #[test]
    fn update_set_keeps_field_position() {
        let (doc, _) = run(rawdoc! { "$set": { "a": 9 } }, doc! { "_id": 1, "a": 1, "b": 2 });
        assert_eq!(doc, doc! { "_id": 1, "a": 9, "b": 2 });
    }

    #[test]
    fn update_set_allows_dollar_fields_inside_values() {
        let (doc, _) = run(rawdoc! { "$set": { "a": { "$b": 1 } } }, doc! { "_id": 1 });
        assert_eq!(doc, doc! { "_id": 1, "a": { "$b": 1 } });
    }

    #[test]
    fn update_set_dollar_path_component_is_52() {
        assert_eq!(parse_err(rawdoc! { "$set": { "$a": 1 } }).0, 52);
        assert_eq!(parse_err(rawdoc! { "$set": { "a.$b": 1 } }).0, 52);
        assert_eq!(parse_err(rawdoc! { "$set": { "a.$": 1 } }).0, 238);
    }

    #[test]
    fn update_set_empty_path_component_is_56() {
        assert_eq!(
            parse_err(rawdoc! { "$set": { "a..b": 1 } }),
            (56, "The update path 'a..b' contains an empty field name, which is not allowed.".into())
        );
        assert_eq!(parse_err(rawdoc! { "$set": { "": 1 } }).0, 56);
    }

    #[test]
    fn update_set_through_scalar_is_28() {
        assert_eq!(
            run_err(rawdoc! { "$set": { "a.b": 1 } }, doc! { "_id": 1, "a": 5 }),
            (28, "Cannot create field 'b' in element {a: 5}".into())
        );
        assert_eq!(
            run_err(rawdoc! { "$set": { "v.foo": 1 } }, doc! { "_id": 1, "v": [ { "foo": [ { "bar": "hello" } ] } ] })
                .1,
            r#"Cannot create field 'foo' in element {v: [ { foo: [ { bar: "hello" } ] } ]}"#
        );
    }

    #[test]
    fn update_set_array_index_and_padding() {
        let (doc, _) = run(rawdoc! { "$set": { "a.1": 9, "a.4": 7 } }, doc! { "_id": 1, "a": [1, 2] });
        assert_eq!(doc, doc! { "_id": 1, "a": [1, 9, null, null, 7] });
        let (doc, _) = run(rawdoc! { "$set": { "a.0.b": 9 } }, doc! { "_id": 1, "a": [ { "b": 1 } ] });
        assert_eq!(doc, doc! { "_id": 1, "a": [ { "b": 9 } ] });
        assert_eq!(run_err(rawdoc! { "$set": { "a.2000000": 1 } }, doc! { "_id": 1, "a": [] }).0, 34);
    }

    #[test]
    fn update_set_id_is_immutable() {
        assert_eq!(
            run_err(rawdoc! { "$set": { "_id": 2 } }, doc! { "_id": 1 }),
            (66, "Performing an update on the path '_id' would modify the immutable field '_id'".into())
        );
        let (_, changed) = run(rawdoc! { "$set": { "_id": 1 } }, doc! { "_id": 1 });
        assert!(!changed);
        assert_eq!(run_err(rawdoc! { "$set": { "_id.x": 2 } }, doc! { "_id": { "x": 1 } }).0, 66);
        assert_eq!(run_err(rawdoc! { "$unset": { "_id": 1 } }, doc! { "_id": 1 }).0, 66);
    }

    #[test]
    fn update_unset_removes_and_nulls_array_elements() {
        let (doc, changed) = run(
            rawdoc! { "$unset": { "a": "", "b.c": 1, "d.1": 1 } },
            doc! {
                "_id": 1, "a": 1, "b": { "c": 1, "e": 2 }, "d": [1, 2]
            },
        );
        assert!(changed);
        assert_eq!(doc, doc! { "_id": 1, "b": { "e": 2 }, "d": [1, null] });
    }

    #[test]
    fn update_unset_missing_is_unchanged() {
        let (doc, changed) = run(rawdoc! { "$unset": { "x": 1, "a.b": 1, "n.m": 1 } }, doc! { "_id": 1, "a": 5 });
        assert!(!changed);
        assert_eq!(doc, doc! { "_id": 1, "a": 5 });
    }

    #[test]
    fn update_inc_types_and_promotion() {
        let (doc, _) = run(
            rawdoc! { "$inc": { "a": 1, "b": 2_147_483_647, "c": 0.5, "d": 1_i64, "new": 3 } },
            doc! {
                "_id": 1, "a": 1, "b": 1, "c": 1, "d": 1
            },
        );
        assert_eq!(doc, doc! { "_id": 1, "a": 2, "b": 2_147_483_648_i64, "c": 1.5, "d": 2_i64, "new": 3 });
    }

    #[test]
    fn update_inc_zero_is_unchanged() {
        let (_, changed) = run(rawdoc! { "$inc": { "a": 0 } }, doc! { "_id": 1, "a": 5 });
        assert!(!changed);
    }

    #[test]
    fn update_inc_non_number_is_14() {
        assert_eq!(
            run_err(rawdoc! { "$inc": { "a": 1 } }, doc! { "_id": 1, "a": "x" }),
            (14, "Cannot apply $inc to a value of non-numeric type. {_id: 1} has the field 'a' of non-numeric type string".into())
        );
        assert_eq!(
            parse_err(rawdoc! { "$inc": { "a": "x" } }),
            (14, r#"Cannot increment with non-numeric argument: {a: "x"}"#.into())
        );
    }

    #[test]
    fn update_inc_int64_overflow_is_bad_value() {
        assert_eq!(
            run_err(rawdoc! { "$inc": { "v": i64::MAX } }, doc! { "_id": "int64-max", "v": i64::MAX }),
            (
                2,
                r#"Failed to apply $inc operations to current value ((NumberLong)9223372036854775807) for document {_id: "int64-max"}"#
                    .into()
            )
        );
    }

    #[test]
    fn update_push_appends_and_creates() {
        let (doc, _) = run(
            rawdoc! { "$push": { "a": 3, "b": { "x": 1 }, "c": { "$each": [1, 2] } } },
            doc! {
                "_id": 1, "a": [1, 2]
            },
        );
        assert_eq!(doc, doc! { "_id": 1, "a": [1, 2, 3], "b": [ { "x": 1 } ], "c": [1, 2] });
    }

    #[test]
    fn update_push_to_non_array_is_bad_value() {
        assert_eq!(
            run_err(rawdoc! { "$push": { "a": 1 } }, doc! { "_id": "test_object", "a": 1 }),
            (2, r#"The field 'a' must be an array but is of type int in document {_id: "test_object"}"#.into())
        );
        assert_eq!(parse_err(rawdoc! { "$push": { "a": { "$each": [1], "$slice": 1 } } }).0, 238);
    }

    #[test]
    fn update_pull_exact_value_mixed_numbers() {
        let (doc, changed) = run(rawdoc! { "$pull": { "a": 1 } }, doc! { "_id": 1, "a": [1, 1.0, 2, [1]] });
        assert!(changed);
        assert_eq!(doc, doc! { "_id": 1, "a": [2, [1]] });
        let (_, changed) = run(rawdoc! { "$pull": { "a": 9, "missing": 1 } }, doc! { "_id": 1, "a": [1] });
        assert!(!changed);
    }

    #[test]
    fn update_pull_condition_on_values_and_documents() {
        let (doc, _) = run(rawdoc! { "$pull": { "a": { "$gte": 5 } } }, doc! { "_id": 1, "a": [1, 5, 9, "x"] });
        assert_eq!(doc, doc! { "_id": 1, "a": [1, "x"] });
        let (doc, _) = run(
            rawdoc! { "$pull": { "a": { "b": 1 } } },
            doc! {
                "_id": 1, "a": [ { "b": 1, "c": 2 }, { "b": 2 }, 1 ]
            },
        );
        assert_eq!(doc, doc! { "_id": 1, "a": [ { "b": 2 }, 1 ] });
    }

    #[test]
    fn update_pull_non_array_is_bad_value() {
        assert_eq!(run_err(rawdoc! { "$pull": { "a": 1 } }, doc! { "_id": 1, "a": 1 }).0, 2);
    }

    #[test]
    fn update_set_on_insert_only_when_inserting() {
        let u = update(rawdoc! { "$set": { "a": 1 }, "$setOnInsert": { "b": 2 } });
        let mut existing = doc! { "_id": 1 };
        u.apply(&mut existing, false).unwrap();
        assert_eq!(existing, doc! { "_id": 1, "a": 1 });
        let mut inserted = doc! { "x": 0 };
        u.apply(&mut inserted, true).unwrap();
        assert_eq!(inserted, doc! { "x": 0, "a": 1, "b": 2 });
    }

    #[test]
    fn update_set_on_insert_may_set_id_when_inserting() {
        let u = update(rawdoc! { "$setOnInsert": { "_id": 5 }, "$set": { "a": 1 } });
        let mut seed = doc! { "q": 1 };
        u.apply(&mut seed, true).unwrap();
        assert_eq!(seed, doc! { "_id": 5, "q": 1, "a": 1 });
    }

    #[test]
    fn update_conflicting_paths_are_40() {
        assert_eq!(
            parse_err(rawdoc! { "$set": { "a": 1 }, "$inc": { "a": 1 } }),
            (40, "Updating the path 'a' would create a conflict at 'a'".into())
        );
        assert_eq!(
            parse_err(rawdoc! { "$set": { "a": 1, "a.b": 1 } }).1,
            "Updating the path 'a.b' would create a conflict at 'a'"
        );
        assert_eq!(
            parse_err(rawdoc! { "$set": { "a.b": 1 }, "$unset": { "a": 1 } }).1,
            "Updating the path 'a' would create a conflict at 'a'"
        );
        assert!(Update::parse(&rawdoc! { "$set": { "a.b": 1, "a.c": 1 } }).is_ok());
    }

    #[test]
    fn update_empty_modifier_is_noop() {
        let (_, changed) = run(rawdoc! { "$set": {} }, doc! { "_id": 1 });
        assert!(!changed);
    }
}
