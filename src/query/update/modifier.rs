//! The field modifiers (`$set`, `$inc`, `$push`, ...) as parsed, and what each does to the
//! value at its path; [`ApplyCx`] is the state of the update being applied that they read.

use std::collections::BTreeMap;

use bson::raw::CStr;
use bson::{Bson, Document, RawBson, RawBsonRef, RawDocumentBuf};

use super::component::update_index;
use crate::error::ErrorCode;
use crate::query::collation::Collation;
use crate::query::error::QueryError;
use crate::query::filter::Filter;
use crate::query::limits;
use crate::query::number::{self, AddError, BitOp, Number};
use crate::query::order::compare_collated;
use crate::query::render::{self, type_name};

/// What one operator does at one path.
#[derive(Debug, Clone)]
pub(super) enum Modifier {
    Set(Bson),
    SetOnInsert(Bson),
    Unset,
    Inc(Number),
    Mul(Number),
    /// `$min` (`max` false) or `$max`: the value replaces the field when it sorts beyond it.
    Bound {
        max: bool,
        value: Bson,
    },
    CurrentDate {
        timestamp: bool,
    },
    Push(PushSpec),
    /// `$addToSet`, its values already deduplicated.
    AddToSet(Vec<Bson>),
    Pop {
        front: bool,
    },
    Pull(PullCondition),
    PullAll(Vec<RawBson>),
    Bit(Vec<(BitOp, Number)>),
    /// Either end of a `$rename`; the move itself is done before the tree is applied.
    Renamed,
}

/// `$push` with its optional `$each` clauses.
#[derive(Debug, Clone)]
pub(super) struct PushSpec {
    pub(super) values: Vec<Bson>,
    pub(super) slice: Option<i64>,
    pub(super) sort: Option<PushSort>,
    /// Where the values go; `None` appends.
    pub(super) position: Option<i64>,
}

/// `$push`'s `$sort`.
#[derive(Debug, Clone)]
pub(super) enum PushSort {
    /// `$sort: 1` or `-1`: whole elements in BSON order (true ascending).
    Whole(bool),
    /// `$sort: {field: 1, ...}`: by fields of document elements.
    Fields(Vec<(Vec<String>, bool)>),
}

/// Which array elements `$pull` removes.
#[derive(Debug, Clone)]
pub(super) enum PullCondition {
    /// Elements equal to a value (in BSON order, so 1 also pulls 1.0).
    Equals(RawBson),
    /// Document elements matching a query (`{$pull: {a: {b: 1}}}`).
    Query(Filter),
    /// Elements whose value matches operators (`{$pull: {a: {$gte: 5}}}`), matched as the
    /// field `""` of a wrapper document.
    Value(Filter),
}

/// State shared while one update is applied.
pub(super) struct ApplyCx<'u> {
    pub(super) inserting: bool,
    pub(super) changed: bool,
    /// The document's `_id`, for error messages.
    pub(super) id: Option<Bson>,
    /// The path being applied, component by component, with array operators resolved to
    /// the positions they picked.
    pub(super) path: Vec<String>,
    /// `arrayFilters` by identifier.
    pub(super) array_filters: &'u BTreeMap<String, Filter>,
    /// The array position the query matched, for `$`.
    pub(super) positional: Option<usize>,
    /// The collation of the operators' comparisons.
    pub(super) collation: Option<&'u Collation>,
}

impl ApplyCx<'_> {
    /// `{_id: ...}` as mongod writes it in messages.
    pub(super) fn id_text(&self) -> String {
        match &self.id {
            Some(id) => format!("{{{}}}", render::owned_element("_id", id)),
            None => "{no id}".to_owned(),
        }
    }

    /// `_id: ...` without braces, as mongod's `idElem.toString()` in `$bit` and `$rename`
    /// messages.
    pub(super) fn id_text_bare(&self) -> String {
        match &self.id {
            Some(id) => render::owned_element("_id", id),
            None => "no id".to_owned(),
        }
    }

    /// Changing an existing value under `_id` is refused.
    pub(super) fn check_modify(&self) -> Result<(), QueryError> {
        if self.path.first().map(String::as_str) == Some("_id") {
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
    pub(super) fn check_create(&self) -> Result<(), QueryError> {
        if self.inserting { Ok(()) } else { self.check_modify() }
    }
}

/// What a modifier does to a value that exists.
pub(super) enum Action {
    Keep,
    Set(Bson),
    Remove,
}

impl Modifier {
    /// Whether the modifier creates its path when the path is missing.
    pub(super) fn creates(&self, inserting: bool) -> bool {
        match self {
            Modifier::Set(_)
            | Modifier::Inc(_)
            | Modifier::Mul(_)
            | Modifier::Bound { .. }
            | Modifier::CurrentDate { .. }
            | Modifier::Push(_)
            | Modifier::AddToSet(_)
            | Modifier::Bit(_) => true,
            Modifier::SetOnInsert(_) => inserting,
            Modifier::Unset | Modifier::Pop { .. } | Modifier::Pull(_) | Modifier::PullAll(_) | Modifier::Renamed => {
                false
            }
        }
    }

    /// The value a missing path gets, if the modifier creates it.
    pub(super) fn created_value(&self, inserting: bool) -> Result<Option<Bson>, QueryError> {
        Ok(match self {
            Modifier::Set(v) | Modifier::Bound { value: v, .. } => Some(v.clone()),
            Modifier::SetOnInsert(v) if inserting => Some(v.clone()),
            Modifier::Inc(n) => Some(n.to_bson()),
            // A zero of the multiplier's type, as mongod's `SafeNum(0) * value`.
            Modifier::Mul(n) => match number::mul(Number::Int32(0), *n) {
                Ok(product) => Some(product.to_bson()),
                // 0 times anything fits every type.
                Err(AddError::Overflow) => Some(Number::Int32(0).to_bson()),
            },
            Modifier::CurrentDate { timestamp } => Some(current_date(*timestamp)),
            Modifier::Push(spec) => Some(Bson::Array(spec.apply(&[], None))),
            Modifier::AddToSet(values) => Some(Bson::Array(values.clone())),
            Modifier::Bit(ops) => Some(apply_bits(Number::Int32(0), ops).to_bson()),
            Modifier::SetOnInsert(_)
            | Modifier::Unset
            | Modifier::Pop { .. }
            | Modifier::Pull(_)
            | Modifier::PullAll(_)
            | Modifier::Renamed => None,
        })
    }

    /// What the modifier does to `existing`, the value of the field named `field`.
    pub(super) fn action(&self, existing: &Bson, field: &str, cx: &ApplyCx<'_>) -> Result<Action, QueryError> {
        match self {
            Modifier::Set(v) => Ok(set_action(existing, v)),
            Modifier::SetOnInsert(v) if cx.inserting => Ok(set_action(existing, v)),
            Modifier::SetOnInsert(_) | Modifier::Renamed => Ok(Action::Keep),
            Modifier::Unset => Ok(Action::Remove),
            Modifier::Inc(by) => arithmetic_action("$inc", number::add, *by, existing, field, cx),
            Modifier::Mul(by) => arithmetic_action("$mul", number::mul, *by, existing, field, cx),
            Modifier::Bound { max, value } => {
                let order = compare_collated(
                    to_raw(value)?.as_raw_bson_ref(),
                    to_raw(existing)?.as_raw_bson_ref(),
                    cx.collation,
                );
                // Equal values (1 and 1.0 too) leave the field as it is.
                let replace = if *max { order.is_gt() } else { order.is_lt() };
                Ok(if replace { Action::Set(value.clone()) } else { Action::Keep })
            }
            Modifier::CurrentDate { timestamp } => Ok(Action::Set(current_date(*timestamp))),
            Modifier::Push(spec) => match existing {
                // mongod's `PushNode` counts any `$sort` as a modification, even one that
                // leaves the order as it was; nModified follows it.
                Bson::Array(items) if spec.sort.is_some() => {
                    Ok(Action::Set(Bson::Array(spec.apply(items, cx.collation))))
                }
                Bson::Array(items) => Ok(changed_array(items, spec.apply(items, cx.collation))),
                // mongod names the whole path here, not just the field.
                other => Err(QueryError::bad_value(format!(
                    "The field '{}' must be an array but is of type {} in document {}",
                    cx.path.join("."),
                    type_name(other.element_type()),
                    cx.id_text()
                ))),
            },
            Modifier::AddToSet(values) => match existing {
                Bson::Array(items) => {
                    let mut next = items.clone();
                    for value in values {
                        let raw = to_raw(value)?;
                        let mut present = false;
                        for item in items {
                            if compare_collated(to_raw(item)?.as_raw_bson_ref(), raw.as_raw_bson_ref(), cx.collation)
                                .is_eq()
                            {
                                present = true;
                                break;
                            }
                        }
                        if !present {
                            next.push(value.clone());
                        }
                    }
                    Ok(changed_array(items, next))
                }
                other => Err(QueryError::bad_value(format!(
                    "Cannot apply $addToSet to non-array field. Field named '{field}' has non-array type {}",
                    type_name(other.element_type())
                ))),
            },
            Modifier::Pop { front } => match existing {
                Bson::Array(items) if items.is_empty() => Ok(Action::Keep),
                Bson::Array(items) => {
                    let next = if *front { items.get(1..) } else { items.get(..items.len() - 1) };
                    Ok(Action::Set(Bson::Array(next.unwrap_or_default().to_vec())))
                }
                other => Err(QueryError::new(
                    ErrorCode::TypeMismatch,
                    format!(
                        "Path '{}' contains an element of non-array type '{}'",
                        cx.path.join("."),
                        type_name(other.element_type())
                    ),
                )),
            },
            Modifier::Pull(cond) => match existing {
                Bson::Array(items) => pull_action(items, cond, cx.collation),
                _ => Err(QueryError::bad_value("Cannot apply $pull to a non-array value")),
            },
            Modifier::PullAll(values) => match existing {
                Bson::Array(items) => {
                    let mut kept = Vec::with_capacity(items.len());
                    for item in items {
                        let raw = to_raw(item)?;
                        let collation = cx.collation;
                        if !values
                            .iter()
                            .any(|v| compare_collated(raw.as_raw_bson_ref(), v.as_raw_bson_ref(), collation).is_eq())
                        {
                            kept.push(item.clone());
                        }
                    }
                    Ok(changed_array(items, kept))
                }
                _ => Err(QueryError::bad_value("Cannot apply $pull to a non-array value")),
            },
            Modifier::Bit(ops) => match existing {
                Bson::Int32(_) | Bson::Int64(_) => {
                    let current = Number::from_bson(existing).unwrap_or(Number::Int32(0));
                    let next = apply_bits(current, ops);
                    Ok(if number::identical(next, current) { Action::Keep } else { Action::Set(next.to_bson()) })
                }
                other => Err(QueryError::bad_value(format!(
                    "Cannot apply $bit to a value of non-integral type.{} has the field {field} of non-integer type {}",
                    cx.id_text_bare(),
                    type_name(other.element_type())
                ))),
            },
        }
    }
}

/// A new value for an array, or `Keep` when it came out identical.
fn changed_array(items: &[Bson], next: Vec<Bson>) -> Action {
    if next.len() == items.len() && next.iter().zip(items).all(|(a, b)| identical(a, b)) {
        Action::Keep
    } else {
        Action::Set(Bson::Array(next))
    }
}

/// Applies `$bit`'s operations in order; the operands are integers, so each step has a result.
fn apply_bits(start: Number, ops: &[(BitOp, Number)]) -> Number {
    ops.iter().fold(start, |value, (op, operand)| number::bit(*op, value, *operand).unwrap_or(value))
}

/// The value `$currentDate` writes: now, as a date or as a timestamp.
fn current_date(timestamp: bool) -> Bson {
    use std::sync::atomic::{AtomicU32, Ordering};
    /// Distinguishes timestamps taken within one second, as mongod's logical clock ticks.
    static TICKS: AtomicU32 = AtomicU32::new(0);
    let now = bson::DateTime::now();
    if timestamp {
        let seconds = u32::try_from(now.timestamp_millis() / 1000).unwrap_or(u32::MAX);
        let increment = TICKS.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        Bson::Timestamp(bson::Timestamp { time: seconds, increment })
    } else {
        Bson::DateTime(now)
    }
}

impl PushSpec {
    /// The array `$push` makes of `items` (mongod's `PushNode::performPush`).
    fn apply(&self, items: &[Bson], collation: Option<&Collation>) -> Vec<Bson> {
        let mut out = items.to_vec();
        if !self.values.is_empty() {
            let len = i64::try_from(out.len()).unwrap_or(i64::MAX);
            let position = self.position.unwrap_or(i64::MAX);
            let at = if position >= len {
                len
            } else if position >= 0 {
                position
            } else {
                // Negative positions count from the end; beyond the start means the front.
                len.saturating_add(position).max(0)
            };
            let at = usize::try_from(at).unwrap_or(out.len()).min(out.len());
            out.splice(at..at, self.values.iter().cloned());
        }
        if let Some(sort) = &self.sort {
            out.sort_by(|a, b| sort.compare(a, b, collation));
        }
        if let Some(slice) = self.slice {
            let keep = usize::try_from(slice.unsigned_abs()).unwrap_or(usize::MAX);
            if out.len() > keep {
                if slice >= 0 {
                    out.truncate(keep);
                } else {
                    out.drain(..out.len() - keep);
                }
            }
        }
        out
    }
}

impl PushSort {
    fn compare(&self, a: &Bson, b: &Bson, collation: Option<&Collation>) -> std::cmp::Ordering {
        match self {
            PushSort::Whole(ascending) => {
                let order = compare_owned(a, b, collation);
                if *ascending { order } else { order.reverse() }
            }
            PushSort::Fields(keys) => {
                for (path, ascending) in keys {
                    let order = compare_owned(&sort_field(a, path), &sort_field(b, path), collation);
                    let order = if *ascending { order } else { order.reverse() };
                    if order.is_ne() {
                        return order;
                    }
                }
                std::cmp::Ordering::Equal
            }
        }
    }
}

/// The value a `$push` `$sort` field pattern sees in an element: a dotted lookup without
/// array expansion (mongod's `extractElementsBasedOnTemplate`), null when missing, so
/// non-document elements sort as null.
fn sort_field(element: &Bson, path: &[String]) -> Bson {
    let mut current = element;
    for part in path {
        let next = match current {
            Bson::Document(doc) => doc.get(part),
            Bson::Array(items) => update_index(part).and_then(|i| items.get(i)),
            _ => None,
        };
        match next {
            Some(value) => current = value,
            None => return Bson::Null,
        }
    }
    current.clone()
}

/// BSON order of two owned values; a value that cannot be encoded sorts as equal.
fn compare_owned(a: &Bson, b: &Bson, collation: Option<&Collation>) -> std::cmp::Ordering {
    match (to_raw(a), to_raw(b)) {
        (Ok(x), Ok(y)) => compare_collated(x.as_raw_bson_ref(), y.as_raw_bson_ref(), collation),
        _ => std::cmp::Ordering::Equal,
    }
}

fn set_action(existing: &Bson, value: &Bson) -> Action {
    if identical(existing, value) { Action::Keep } else { Action::Set(value.clone()) }
}

/// `$inc` and `$mul`: numbers only, `SafeNum` promotion, no change when the result is
/// identical (same type and value) to the current value.
fn arithmetic_action(
    name: &str,
    op: fn(Number, Number) -> Result<Number, AddError>,
    by: Number,
    existing: &Bson,
    field: &str,
    cx: &ApplyCx<'_>,
) -> Result<Action, QueryError> {
    let Some(current) = Number::from_bson(existing) else {
        return Err(QueryError::new(
            ErrorCode::TypeMismatch,
            format!(
                "Cannot apply {name} to a value of non-numeric type. {} has the field '{field}' of non-numeric type {}",
                cx.id_text(),
                type_name(existing.element_type())
            ),
        ));
    };
    match op(current, by) {
        Ok(result) if number::identical(result, current) => Ok(Action::Keep),
        Ok(result) => Ok(Action::Set(result.to_bson())),
        Err(AddError::Overflow) => Err(QueryError::bad_value(format!(
            "Failed to apply {name} operations to current value ({}) for document {}",
            current.debug_string(),
            cx.id_text()
        ))),
    }
}

fn pull_action(items: &[Bson], cond: &PullCondition, collation: Option<&Collation>) -> Result<Action, QueryError> {
    let mut kept = Vec::with_capacity(items.len());
    for item in items {
        if !cond.matches(item, collation)? {
            kept.push(item.clone());
        }
    }
    Ok(if kept.len() == items.len() { Action::Keep } else { Action::Set(Bson::Array(kept)) })
}

impl PullCondition {
    fn matches(&self, element: &Bson, collation: Option<&Collation>) -> Result<bool, QueryError> {
        match self {
            PullCondition::Equals(target) => {
                Ok(compare_collated(to_raw(element)?.as_raw_bson_ref(), target.as_raw_bson_ref(), collation).is_eq())
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

/// Byte-for-byte equality, as mongod's `binaryEqualValues`: 1 and 1.0 differ, field order
/// matters, NaN equals an identical NaN.
pub(super) fn identical(a: &Bson, b: &Bson) -> bool {
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

pub(super) fn documents_identical(a: &Document, b: &Document) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|((ka, va), (kb, vb))| ka == kb && identical(va, vb))
}

/// `{"": value}`, so a value can be matched by a filter on the path `""`.
pub(super) fn wrap(value: RawBsonRef<'_>) -> Result<RawDocumentBuf, QueryError> {
    let key = <&CStr>::try_from("").map_err(QueryError::invalid_bson)?;
    let mut doc = RawDocumentBuf::new();
    doc.append(key, value);
    Ok(doc)
}

pub(super) fn to_bson(value: RawBsonRef<'_>) -> Result<Bson, QueryError> {
    limits::to_bson(value)
}

pub(super) fn to_raw(value: &Bson) -> Result<RawBson, QueryError> {
    RawBson::try_from(value.clone()).map_err(QueryError::invalid_bson)
}
