//! Update documents: a replacement, or operators applied to a document.
//!
//! Operator updates are parsed into a tree keyed by path component, as mongod's
//! `UpdateObjectNode` is: two operators on the same or overlapping paths fail at parse time
//! (40 ConflictingUpdateOperators), and the tree is applied in field-name order, which is why
//! mongod appends new fields in that order. Every field modifier of mongod 7.0 is built:
//! `$set $setOnInsert $unset $inc $mul $min $max $rename $currentDate $push $addToSet $pop
//! $pull $pullAll $bit`.
//!
//! Paths may pick array elements: `$` (the element the statement's query matched), `$[]`
//! (every element) and `$[<identifier>]` (the elements matching that `arrayFilters` entry).
//! [`Update::parse_statement`] takes the query and the filters with the update. mongod's
//! matcher records which element matched; Monarch's [`Filter`] does not, so the query's
//! conditions (top level and `$and`) are kept and re-evaluated on the array's elements when
//! the update is applied.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bson::raw::CStr;
use bson::{Bson, Document, RawArray, RawBson, RawBsonRef, RawDocument, RawDocumentBuf};

use super::collation::Collation;
use super::error::QueryError;
use super::expr::Variables;
use super::filter::{Filter, is_operator_document, move_id_first};
use super::limits::{MAX_STORAGE_DEPTH, update_too_deep};
use super::number::{self, AddError, BitOp, Number};
use super::order::{compare_collated, compare_values};
use super::elements::fields;
use super::pipeline::UpdatePipeline;
use super::render::{self, type_name};
use crate::error::ErrorCode;

/// mongod refuses to pad an array by more than this many nulls.
const MAX_PADDING: usize = 1_500_000;

/// A parsed update.
#[derive(Debug, Clone)]
pub struct Update {
    kind: Kind,
    /// `arrayFilters` by identifier, for `$[<identifier>]` path components.
    array_filters: BTreeMap<String, Filter>,
    /// The statement's query, kept when a path uses `$`: its `elemMatchKey` on the matched
    /// document is the element `$` stands for.
    positional: Option<Filter>,
    /// The collation of `$min`/`$max`, `$addToSet`, `$pull`, `$pullAll` and `$push`'s `$sort`
    /// comparisons; `None` is the simple collation.
    collation: Option<Arc<Collation>>,
}

#[derive(Debug, Clone)]
enum Kind {
    Replacement(Document),
    Operators {
        tree: Tree,
        renames: Vec<Rename>,
    },
    /// A pipeline-style update (`u: [stage, ...]`).
    Pipeline(UpdatePipeline),
}

/// One `$rename`: both paths also sit in the tree as [`Modifier::Renamed`] placeholders, so
/// conflicts with other operators are found at parse time as mongod's
/// `ConflictPlaceholderNode` finds them.
#[derive(Debug, Clone)]
struct Rename {
    from: Vec<String>,
    to: Vec<String>,
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
struct PushSpec {
    values: Vec<Bson>,
    slice: Option<i64>,
    sort: Option<PushSort>,
    /// Where the values go; `None` appends.
    position: Option<i64>,
}

/// `$push`'s `$sort`.
#[derive(Debug, Clone)]
enum PushSort {
    /// `$sort: 1` or `-1`: whole elements in BSON order (true ascending).
    Whole(bool),
    /// `$sort: {field: 1, ...}`: by fields of document elements.
    Fields(Vec<(Vec<String>, bool)>),
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
    Mul,
    Min,
    Max,
    CurrentDate,
    Push,
    AddToSet,
    Pop,
    Pull,
    PullAll,
    Bit,
    Rename,
}

impl Update {
    /// Parses an update: operators when its first field starts with `$`, a replacement
    /// otherwise (an empty document is an empty replacement).
    ///
    /// # Errors
    /// 9 FailedToParse for an unknown modifier or a modifier whose argument is not a document,
    /// 2 BadValue for a positional `$` or `$[...]` first in a path, 56
    /// EmptyFieldName, 40 ConflictingUpdateOperators, 14 TypeMismatch for a non-numeric
    /// `$inc`, 238 NotImplemented for modifiers not built yet.
    pub fn parse(spec: &RawDocument) -> Result<Self, QueryError> {
        Self::parse_statement(spec, &RawDocumentBuf::new(), None)
    }

    /// Parses a pipeline-style update: `$set`/`$addFields`, `$unset`, `$replaceWith`/
    /// `$replaceRoot` and `$project` stages, whose expressions see the command's `let` `vars`.
    ///
    /// # Errors
    /// 40323 for a malformed stage, 40324 for an unknown one, 72 InvalidOptions for a stage
    /// not allowed in an update, and expression and projection errors.
    pub fn parse_pipeline(stages: &RawArray, vars: &Variables) -> Result<Self, QueryError> {
        Ok(Self {
            kind: Kind::Pipeline(UpdatePipeline::parse(stages, vars)?),
            array_filters: BTreeMap::new(),
            positional: None,
            collation: None,
        })
    }

    /// Parses the update of a statement with its query (for the positional `$`) and its
    /// `arrayFilters` (for `$[<identifier>]`).
    ///
    /// # Errors
    /// Those of [`Update::parse`]; for array filters, 9 FailedToParse (no or several top-level
    /// fields, a repeated identifier, an identifier the update does not use) and 2 BadValue (an
    /// identifier that is not a lowercase-led alphanumeric word, a path naming an identifier
    /// with no filter, more than one `$` in a path); the filters' own parse errors.
    pub fn parse_statement(
        spec: &RawDocument,
        query: &RawDocument,
        array_filters: Option<&RawArray>,
    ) -> Result<Self, QueryError> {
        let filters = match array_filters {
            Some(list) => parse_array_filters(list)?,
            None => BTreeMap::new(),
        };
        let mut used = BTreeSet::new();
        let mut update = match fields(spec).next() {
            Some((first, _)) if first.starts_with('$') => parse_operators(spec, &filters, &mut used)?,
            _ => parse_replacement(spec)?,
        };
        // mongod checks identifiers only for operator updates; a replacement ignores them.
        let unused = if update.is_replacement() { None } else { filters.keys().find(|id| !used.contains(*id)) };
        if let Some(unused) = unused {
            return Err(QueryError::failed_to_parse(format!(
                "The array filter for identifier '{unused}' was not used in the update {}",
                render::element("", RawBsonRef::Document(spec)).trim_start_matches(": ")
            )));
        }
        if used.contains("$") {
            update.positional = Some(Filter::parse(query)?);
        }
        update.array_filters = filters;
        Ok(update)
    }

    /// Applies `collation` to the update's comparisons as mongod's update nodes do: `$min`
    /// and `$max`, `$addToSet` (its own values deduplicated again), `$pull`, `$pullAll`,
    /// `$push`'s `$sort`, `arrayFilters`, the positional `$` match and the expressions of a
    /// pipeline update. `None` keeps the simple collation.
    ///
    /// # Errors
    /// 22 InvalidBSON for an `$addToSet` value that cannot be encoded.
    pub fn with_collation(mut self, collation: Option<&Arc<Collation>>) -> Result<Self, QueryError> {
        let Some(collation) = collation else { return Ok(self) };
        for filter in self.array_filters.values_mut() {
            filter.set_collation(collation);
        }
        if let Some(filter) = self.positional.as_mut() {
            filter.set_collation(collation);
        }
        match &mut self.kind {
            Kind::Operators { tree, .. } => collate_tree(tree, collation)?,
            Kind::Pipeline(pipeline) => pipeline.set_collation(collation),
            Kind::Replacement(_) => {}
        }
        self.collation = Some(Arc::clone(collation));
        Ok(self)
    }

    /// Whether this update replaces the whole document.
    pub fn is_replacement(&self) -> bool {
        matches!(self.kind, Kind::Replacement(_))
    }

    /// Applies the update to `doc`; `inserting` is true for an upsert's new document (it
    /// enables `$setOnInsert` and creating paths under `_id`). Returns whether `doc` changed:
    /// an update whose every operator is a no-op in mongod's sense reports false, so
    /// nModified stays 0 (`$currentDate`, `$rename` of an existing field and `$push` with
    /// `$sort` always count as changes, as in mongod).
    ///
    /// # Errors
    /// mongod's errors: 52 DollarPrefixedFieldName (and 55 InvalidDBRef) for a top-level
    /// `$`-prefixed field an update of an existing document (`inserting` false) would store,
    /// 14 TypeMismatch (`$inc`/`$mul` on a non-number, `$pop` on a non-array), 2 BadValue (array operators on a non-array, int64 overflow, `$bit` on a
    /// non-integer, `$rename` through arrays, `$` without a matched element, `$[]` on a
    /// missing path), 28 PathNotViable, 34 CannotBackfillArray, 66 ImmutableField, 238
    /// NotImplemented for decimal128 arithmetic. On error `doc` may be partly updated: apply
    /// to a copy and drop it.
    pub fn apply(&self, doc: &mut Document, inserting: bool) -> Result<bool, QueryError> {
        match &self.kind {
            Kind::Pipeline(pipeline) => {
                // `replace` keeps `_id` first and refuses a changed one, as for a replacement.
                // Unlike a replacement document, a pipeline may store top-level `$` fields
                // (mongod's advice for them is `$replaceWith`).
                let next = replace(doc, &pipeline.apply(doc)?)?;
                let changed = !documents_identical(doc, &next);
                *doc = next;
                Ok(changed)
            }
            Kind::Replacement(replacement) => {
                let next = replace(doc, replacement)?;
                if !inserting {
                    check_top_level_dollar_fields(&next, next.keys())?;
                }
                let changed = !documents_identical(doc, &next);
                *doc = next;
                Ok(changed)
            }
            Kind::Operators { tree, renames } => {
                // The top-level `$` fields the operators reach, as they were before.
                let dollar_fields: Vec<(&String, Option<Bson>)> = if inserting {
                    Vec::new()
                } else {
                    tree.keys()
                        .filter(|name| name.starts_with('$'))
                        .map(|name| (name, doc.get(name).cloned()))
                        .collect()
                };
                let positional = match &self.positional {
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
                    array_filters: &self.array_filters,
                    positional,
                    collation: self.collation.as_deref(),
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

/// mongod's storage rule for the top-level fields `names` of `doc`, which an update of an
/// existing document stores: a `$`-prefixed name is refused unless it is part of a DBRef
/// (`$ref` then `$id`, then an optional `$db`) in that order and with string `$ref`/`$db`.
fn check_top_level_dollar_fields<'a>(
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

/// A replacement document. Its `$`-prefixed top-level fields are refused when it replaces an
/// existing document, not here: an upsert that inserts it accepts them, as in mongod 5.0+.
fn parse_replacement(spec: &RawDocument) -> Result<Update, QueryError> {
    let mut doc = Document::new();
    for item in spec.iter() {
        let (key, value) = item.map_err(QueryError::invalid_bson)?;
        doc.insert(key.as_str(), to_bson(value)?);
    }
    Ok(Update { kind: Kind::Replacement(doc), array_filters: BTreeMap::new(), positional: None, collation: None })
}

fn parse_operators(
    spec: &RawDocument,
    filters: &BTreeMap<String, Filter>,
    used: &mut BTreeSet<String>,
) -> Result<Update, QueryError> {
    let mut tree = Tree::new();
    let mut renames = Vec::new();
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
            let parts = check_update_path(path, filters, used)?;
            if let Operator::Rename = operator {
                let to = parse_rename(path, value)?;
                let to_parts = check_update_path(&to, filters, used)?;
                insert(&mut tree, &parts, path, Modifier::Renamed)?;
                insert(&mut tree, &to_parts, &to, Modifier::Renamed)?;
                renames.push(Rename {
                    from: parts.iter().map(|p| (*p).to_owned()).collect(),
                    to: to_parts.iter().map(|p| (*p).to_owned()).collect(),
                });
                continue;
            }
            let modifier = parse_modifier(operator, path, value)?;
            insert(&mut tree, &parts, path, modifier)?;
        }
    }
    Ok(Update {
        kind: Kind::Operators { tree, renames },
        array_filters: BTreeMap::new(),
        positional: None,
        collation: None,
    })
}

fn parse_operator_name(op: &str) -> Result<Operator, QueryError> {
    match op {
        "$set" => Ok(Operator::Set),
        "$setOnInsert" => Ok(Operator::SetOnInsert),
        "$unset" => Ok(Operator::Unset),
        "$inc" => Ok(Operator::Inc),
        "$mul" => Ok(Operator::Mul),
        "$min" => Ok(Operator::Min),
        "$max" => Ok(Operator::Max),
        "$currentDate" => Ok(Operator::CurrentDate),
        "$push" => Ok(Operator::Push),
        "$addToSet" => Ok(Operator::AddToSet),
        "$pop" => Ok(Operator::Pop),
        "$pull" => Ok(Operator::Pull),
        "$pullAll" => Ok(Operator::PullAll),
        "$bit" => Ok(Operator::Bit),
        "$rename" => Ok(Operator::Rename),
        _ => Err(QueryError::failed_to_parse(format!(
            "Unknown modifier: {op}. Expected a valid update modifier or pipeline-style update specified as an array"
        ))),
    }
}

/// Splits an update path, refusing empty components, more than one positional `$`, a
/// positional `$`, `$[]` or `$[<identifier>]` first, and identifiers naming none of
/// `filters`. Other `$`-prefixed components are field names (mongod 5.0+), checked when the
/// update is applied. Records the identifiers used, and `"$"` when the path has a positional
/// `$`.
fn check_update_path<'p>(
    path: &'p str,
    filters: &BTreeMap<String, Filter>,
    used: &mut BTreeSet<String>,
) -> Result<Vec<&'p str>, QueryError> {
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
    if parts.iter().filter(|part| **part == "$").count() > 1 {
        return Err(QueryError::bad_value(format!("Too many positional (i.e. '$') elements found in path '{path}'")));
    }
    if let Some((first, rest)) = parts.split_first() {
        match array_operator(first) {
            Some(ArrayOperator::First) => {
                return Err(QueryError::bad_value(format!(
                    "Cannot have positional (i.e. '$') element in the first position in path '{path}'"
                )));
            }
            Some(ArrayOperator::All | ArrayOperator::Filtered(_)) => {
                return Err(QueryError::bad_value(format!(
                    "Cannot have array filter identifier (i.e. '$[<id>]') element in the first position in path \
                     '{path}'"
                )));
            }
            None => {}
        }
        for part in rest {
            match array_operator(part) {
                Some(ArrayOperator::First) => {
                    used.insert("$".to_owned());
                }
                Some(ArrayOperator::All) => {}
                Some(ArrayOperator::Filtered(id)) => {
                    if !filters.contains_key(id) {
                        return Err(QueryError::bad_value(format!(
                            "No array filter found for identifier '{id}' in path '{path}'"
                        )));
                    }
                    used.insert(id.to_owned());
                }
                None => {}
            }
        }
    }
    Ok(parts)
}

/// A path component that picks array elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArrayOperator<'a> {
    /// `$`: the element the query matched.
    First,
    /// `$[]`: every element.
    All,
    /// `$[id]`: the elements matching the array filter `id`.
    Filtered(&'a str),
}

fn array_operator(part: &str) -> Option<ArrayOperator<'_>> {
    if part == "$" {
        return Some(ArrayOperator::First);
    }
    match part.strip_prefix("$[").and_then(|p| p.strip_suffix(']')) {
        Some("") => Some(ArrayOperator::All),
        Some(id) => Some(ArrayOperator::Filtered(id)),
        None => None,
    }
}

/// Parses `arrayFilters` into filters keyed by their one top-level identifier.
fn parse_array_filters(list: &RawArray) -> Result<BTreeMap<String, Filter>, QueryError> {
    let mut filters = BTreeMap::new();
    for item in super::elements::items(list) {
        let RawBsonRef::Document(spec) = item else {
            return Err(QueryError::new(
                ErrorCode::TypeMismatch,
                format!("Each array filter must be an object, found {}", type_name(item.element_type())),
            ));
        };
        let filter = Filter::parse(spec)?;
        let mut names = BTreeSet::new();
        top_level_names(spec, &mut names);
        let mut names = names.into_iter();
        let Some(id) = names.next() else {
            return Err(QueryError::failed_to_parse(
                "Cannot use an expression without a top-level field name in arrayFilters",
            ));
        };
        if let Some(other) = names.next() {
            return Err(QueryError::failed_to_parse(format!(
                "Error parsing array filter :: caused by :: Expected a single top-level field name, found '{id}' and '{other}'"
            )));
        }
        let mut chars = id.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase()) && chars.all(|c| c.is_ascii_alphanumeric());
        if !valid {
            return Err(QueryError::bad_value(format!(
                "Error parsing array filter :: caused by :: The top-level field name must be an alphanumeric string \
                 beginning with a lowercase letter, found '{id}'"
            )));
        }
        if filters.contains_key(&id) {
            return Err(QueryError::failed_to_parse(format!(
                "Found multiple array filters with the same top-level field name {id}"
            )));
        }
        filters.insert(id, filter);
    }
    Ok(filters)
}

/// The first components of the paths a filter tests, looking inside `$and`, `$or`, `$nor`.
fn top_level_names(spec: &RawDocument, names: &mut BTreeSet<String>) {
    for (key, value) in fields(spec) {
        if let Some(operator) = key.strip_prefix('$') {
            if let ("and" | "or" | "nor", RawBsonRef::Array(children)) = (operator, value) {
                for child in super::elements::items(children) {
                    if let RawBsonRef::Document(child) = child {
                        top_level_names(child, names);
                    }
                }
            }
            continue;
        }
        names.insert(key.split('.').next().unwrap_or_default().to_owned());
    }
}

/// `{name: value}`.
fn wrap_as(name: &str, value: RawBsonRef<'_>) -> Result<RawDocumentBuf, QueryError> {
    let key = <&CStr>::try_from(name).map_err(QueryError::invalid_bson)?;
    let mut doc = RawDocumentBuf::new();
    doc.append(key, value);
    Ok(doc)
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
        Operator::Mul => Number::from_raw(value).map(Modifier::Mul).ok_or_else(|| {
            QueryError::new(
                ErrorCode::TypeMismatch,
                format!("Cannot multiply with non-numeric argument: {{{}}}", render::element(path, value)),
            )
        }),
        Operator::Min => Ok(Modifier::Bound { max: false, value: to_bson(value)? }),
        Operator::Max => Ok(Modifier::Bound { max: true, value: to_bson(value)? }),
        Operator::CurrentDate => parse_current_date(value),
        Operator::Push => parse_push(value).map(Modifier::Push),
        Operator::AddToSet => parse_add_to_set(value).map(Modifier::AddToSet),
        Operator::Pop => parse_pop(path, value),
        Operator::Pull => parse_pull(value).map(Modifier::Pull),
        Operator::PullAll => match value {
            RawBsonRef::Array(values) => Ok(Modifier::PullAll(super::elements::items(values).map(RawBson::from).collect())),
            other => Err(QueryError::bad_value(format!(
                "$pullAll requires an array argument but was given a {}",
                type_name(other.element_type())
            ))),
        },
        Operator::Bit => parse_bit(value).map(Modifier::Bit),
        // Handled by the caller, which needs both paths.
        Operator::Rename => Ok(Modifier::Renamed),
    }
}

/// The destination of `{$rename: {from: "to"}}`, with mongod's checks on the pair.
fn parse_rename(from: &str, value: RawBsonRef<'_>) -> Result<String, QueryError> {
    let RawBsonRef::String(to) = value else {
        return Err(QueryError::bad_value(format!(
            "The 'to' field for $rename must be a string: {}",
            render::element(from, value)
        )));
    };
    if to.contains('\0') {
        return Err(QueryError::bad_value("The 'to' field for $rename cannot contain an embedded null byte"));
    }
    if from == to {
        return Err(QueryError::bad_value(format!(
            "The source and target field for $rename must differ: {}",
            render::element(from, value)
        )));
    }
    let prefix_of = |a: &str, b: &str| b.strip_prefix(a).is_some_and(|rest| rest.starts_with('.'));
    if prefix_of(from, to) || prefix_of(to, from) {
        return Err(QueryError::bad_value(format!(
            "The source and target field for $rename must not be on the same path: {}",
            render::element(from, value)
        )));
    }
    let dynamic = |path: &str| path.split('.').any(|p| p == "$" || (p.starts_with("$[") && p.ends_with(']')));
    if dynamic(from) {
        return Err(QueryError::bad_value(format!("The source field for $rename may not be dynamic: {from}")));
    }
    if dynamic(to) {
        return Err(QueryError::bad_value(format!("The destination field for $rename may not be dynamic: {to}")));
    }
    Ok(to.to_owned())
}

fn parse_current_date(value: RawBsonRef<'_>) -> Result<Modifier, QueryError> {
    match value {
        RawBsonRef::Boolean(_) => Ok(Modifier::CurrentDate { timestamp: false }),
        RawBsonRef::Document(options) => {
            let mut timestamp = None;
            for (key, option) in fields(options) {
                if key != "$type" {
                    return Err(QueryError::bad_value(format!("Unrecognized $currentDate option: {key}")));
                }
                match option {
                    RawBsonRef::String("date") => timestamp = Some(false),
                    RawBsonRef::String("timestamp") => timestamp = Some(true),
                    _ => {}
                }
            }
            timestamp.map(|timestamp| Modifier::CurrentDate { timestamp }).ok_or_else(|| {
                QueryError::bad_value(
                    "The '$type' string field is required to be 'date' or 'timestamp': \
                     {$currentDate: {field : {$type: 'date'}}}",
                )
            })
        }
        other => Err(QueryError::bad_value(format!(
            "{} is not valid type for $currentDate. Please use a boolean ('true') or a $type expression \
             ({{$type: 'timestamp/date'}}).",
            type_name(other.element_type())
        ))),
    }
}

/// `$addToSet` takes a value, or `{$each: [...]}` (and nothing after `$each`).
fn parse_add_to_set(value: RawBsonRef<'_>) -> Result<Vec<Bson>, QueryError> {
    let mut values = Vec::new();
    match value {
        RawBsonRef::Document(clauses) if fields(clauses).next().is_some_and(|(k, _)| k == "$each") => {
            let mut clause_iter = fields(clauses);
            if let Some((_, each)) = clause_iter.next() {
                let RawBsonRef::Array(each) = each else {
                    return Err(QueryError::new(
                        ErrorCode::TypeMismatch,
                        format!(
                            "The argument to $each in $addToSet must be an array but it was of type {}",
                            type_name(each.element_type())
                        ),
                    ));
                };
                if clause_iter.next().is_some() {
                    return Err(QueryError::bad_value(format!(
                        "Found unexpected fields after $each in $addToSet: {}",
                        render::element("", value).trim_start_matches(": ")
                    )));
                }
                for v in super::elements::items(each) {
                    values.push(v);
                }
            }
        }
        other => values.push(other),
    }
    // Duplicates among the arguments are added once, the first one winning.
    let mut unique: Vec<Bson> = Vec::with_capacity(values.len());
    let mut seen: Vec<RawBsonRef<'_>> = Vec::with_capacity(values.len());
    for v in values {
        if !seen.iter().any(|s| compare_values(*s, v).is_eq()) {
            seen.push(v);
            unique.push(to_bson(v)?);
        }
    }
    Ok(unique)
}

/// `$pop` takes 1 or -1, read as mongod's `parseIntegerElementToLong` reads integers.
fn parse_pop(path: &str, value: RawBsonRef<'_>) -> Result<Modifier, QueryError> {
    let element = || render::element(path, value);
    if Number::from_raw(value).is_none() {
        return Err(QueryError::failed_to_parse(format!("Expected a number in: {}", element())));
    }
    let Some(n) = integer_argument(value) else {
        let integral = matches!(value, RawBsonRef::Double(d) if d.fract() == 0.0);
        return Err(QueryError::failed_to_parse(if integral {
            format!("Cannot represent as a 64-bit integer: {}", element())
        } else {
            format!("Expected an integer: {}", element())
        }));
    };
    match n {
        1 => Ok(Modifier::Pop { front: false }),
        -1 => Ok(Modifier::Pop { front: true }),
        other => Err(QueryError::failed_to_parse(format!("$pop expects 1 or -1, found: {other}"))),
    }
}

fn parse_bit(value: RawBsonRef<'_>) -> Result<Vec<(BitOp, Number)>, QueryError> {
    let RawBsonRef::Document(ops) = value else {
        return Err(QueryError::bad_value(format!(
            "The $bit modifier is not compatible with a {}. You must pass in an embedded document: \
             {{$bit: {{field: {{and/or/xor: #}}}}",
            type_name(value.element_type())
        )));
    };
    let mut list = Vec::new();
    for (name, operand) in fields(ops) {
        let op = match name {
            "and" => BitOp::And,
            "or" => BitOp::Or,
            "xor" => BitOp::Xor,
            _ => {
                return Err(QueryError::bad_value(format!(
                    "The $bit modifier only supports 'and', 'or', and 'xor', not '{name}' which is an unknown \
                     operator: {{{}}}",
                    render::element(name, operand)
                )));
            }
        };
        let operand = match operand {
            RawBsonRef::Int32(i) => Number::Int32(i),
            RawBsonRef::Int64(i) => Number::Int64(i),
            other => {
                return Err(QueryError::bad_value(format!(
                    "The $bit modifier field must be an Integer(32/64 bit); a '{}' is not supported here: {{{}}}",
                    type_name(other.element_type()),
                    render::element(name, other)
                )));
            }
        };
        list.push((op, operand));
    }
    if list.is_empty() {
        return Err(QueryError::bad_value(
            "You must pass in at least one bitwise operation. The format is: {$bit: {field: {and/or/xor: #}}",
        ));
    }
    Ok(list)
}

/// `$push` takes a value, or `{$each: [...]}` with optional `$slice`, `$sort`, `$position`.
fn parse_push(value: RawBsonRef<'_>) -> Result<PushSpec, QueryError> {
    let plain = |v| Ok(PushSpec { values: vec![to_bson(v)?], slice: None, sort: None, position: None });
    let RawBsonRef::Document(clauses) = value else { return plain(value) };
    if !matches!(clauses.get("$each"), Ok(Some(_))) {
        return plain(value);
    }
    let mut spec = PushSpec { values: Vec::new(), slice: None, sort: None, position: None };
    let mut seen: Vec<&str> = Vec::new();
    for (clause, arg) in fields(clauses) {
        if !matches!(clause, "$each" | "$slice" | "$sort" | "$position") {
            return Err(QueryError::bad_value(format!("Unrecognized clause in $push: {clause}")));
        }
        if seen.contains(&clause) {
            return Err(QueryError::bad_value(format!("Only one {clause} is supported.")));
        }
        seen.push(clause);
        match (clause, arg) {
            ("$each", RawBsonRef::Array(each)) => {
                for v in super::elements::items(each) {
                    spec.values.push(to_bson(v)?);
                }
            }
            ("$each", other) => {
                return Err(QueryError::bad_value(format!(
                    "The argument to $each in $push must be an array but it was of type: {}",
                    type_name(other.element_type())
                )));
            }
            ("$slice", arg) => {
                spec.slice = Some(integer_argument(arg).ok_or_else(|| {
                    QueryError::bad_value(format!(
                        "The value for $slice must be an integer value but was given type: {}",
                        type_name(arg.element_type())
                    ))
                })?);
            }
            ("$position", arg) => {
                spec.position = Some(integer_argument(arg).ok_or_else(|| {
                    QueryError::bad_value(format!(
                        "The value for $position must be an integer value, not of type: {}",
                        type_name(arg.element_type())
                    ))
                })?);
            }
            (_, arg) => spec.sort = Some(parse_push_sort(arg)?),
        }
    }
    Ok(spec)
}

/// 2^63, the first double above the int64 range.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// mongod's `parseIntegerElementToLong`: a number with an integral value that fits an int64.
fn integer_argument(value: RawBsonRef<'_>) -> Option<i64> {
    match value {
        RawBsonRef::Int32(i) => Some(i64::from(i)),
        RawBsonRef::Int64(i) => Some(i),
        RawBsonRef::Double(d) if d.fract() == 0.0 && (-TWO_POW_63..TWO_POW_63).contains(&d) => Some(d as i64),
        RawBsonRef::Decimal128(d) => d.to_string().parse().ok(),
        _ => None,
    }
}

fn sort_direction(value: RawBsonRef<'_>) -> Option<bool> {
    let n = match value {
        RawBsonRef::Int32(i) => f64::from(i),
        RawBsonRef::Int64(i) => i as f64,
        RawBsonRef::Double(d) => d,
        RawBsonRef::Decimal128(d) => d.to_string().parse().ok()?,
        _ => return None,
    };
    if n == 1.0 {
        Some(true)
    } else if n == -1.0 {
        Some(false)
    } else {
        None
    }
}

fn parse_push_sort(value: RawBsonRef<'_>) -> Result<PushSort, QueryError> {
    let bad_direction = || QueryError::bad_value("The $sort element value must be either 1 or -1");
    match value {
        RawBsonRef::Document(pattern) => {
            let mut keys = Vec::new();
            for (field, direction) in fields(pattern) {
                let ascending = sort_direction(direction).ok_or_else(bad_direction)?;
                if field.is_empty() {
                    return Err(QueryError::bad_value("The $sort field cannot be empty"));
                }
                if field.split('.').any(str::is_empty) {
                    return Err(QueryError::bad_value(format!(
                        "The $sort field is a dotted field but has an empty part: {field}"
                    )));
                }
                keys.push((field.split('.').map(str::to_owned).collect(), ascending));
            }
            if keys.is_empty() {
                return Err(QueryError::bad_value("The $sort pattern is empty when it should be a set of fields."));
            }
            Ok(PushSort::Fields(keys))
        }
        v if Number::from_raw(v).is_some() => sort_direction(v).map(PushSort::Whole).ok_or_else(bad_direction),
        _ => Err(QueryError::bad_value(
            "The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} to sort embedded fields",
        )),
    }
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
    super::limits::to_bson(value)
}

fn to_raw(value: &Bson) -> Result<RawBson, QueryError> {
    RawBson::try_from(value.clone()).map_err(QueryError::invalid_bson)
}

/// Puts `collation` into the `$pull` filters of `tree` and deduplicates `$addToSet` values
/// under it.
fn collate_tree(tree: &mut Tree, collation: &Arc<Collation>) -> Result<(), QueryError> {
    for node in tree.values_mut() {
        match node {
            UpdateNode::Inner(children) => collate_tree(children, collation)?,
            UpdateNode::Leaf(Modifier::Pull(PullCondition::Value(filter) | PullCondition::Query(filter))) => {
                filter.set_collation(collation);
            }
            UpdateNode::Leaf(Modifier::AddToSet(values)) => {
                let mut unique: Vec<Bson> = Vec::with_capacity(values.len());
                let mut seen: Vec<RawBson> = Vec::with_capacity(values.len());
                for value in values.drain(..) {
                    let raw = to_raw(&value)?;
                    let duplicate = seen
                        .iter()
                        .any(|s| compare_collated(s.as_raw_bson_ref(), raw.as_raw_bson_ref(), Some(collation)).is_eq());
                    if !duplicate {
                        seen.push(raw);
                        unique.push(value);
                    }
                }
                *values = unique;
            }
            UpdateNode::Leaf(_) => {}
        }
    }
    Ok(())
}

fn values_equal(a: &Bson, b: &Bson) -> Result<bool, QueryError> {
    Ok(compare_values(to_raw(a)?.as_raw_bson_ref(), to_raw(b)?.as_raw_bson_ref()).is_eq())
}

/// Adds a modifier at `parts`, refusing a path that equals, extends or prefixes one already
/// in the tree.
///
/// A path longer than [`MAX_STORAGE_DEPTH`] components addresses a level no stored document
/// reaches: it is kept only to the first level beyond, where [`apply_entry`] refuses to create
/// anything (mongod's storage validation would refuse the result) and finds nothing to
/// change. So the tree, and every walk over it, stays within that depth. (Two such paths
/// that differ only beyond it count as one for conflict checks.)
fn insert(tree: &mut Tree, parts: &[&str], dotted: &str, modifier: Modifier) -> Result<(), QueryError> {
    let parts = parts.get(..parts.len().min(MAX_STORAGE_DEPTH + 1)).unwrap_or(parts);
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
    /// The path being applied, component by component, with array operators resolved to
    /// the positions they picked.
    path: Vec<String>,
    /// `arrayFilters` by identifier.
    array_filters: &'u BTreeMap<String, Filter>,
    /// The array position the query matched, for `$`.
    positional: Option<usize>,
    /// The collation of the operators' comparisons.
    collation: Option<&'u Collation>,
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

    /// `{_id: ...}` as mongod writes it in messages.
    fn id_text(&self) -> String {
        match &self.id {
            Some(id) => format!("{{{}}}", render::owned_element("_id", id)),
            None => "{no id}".to_owned(),
        }
    }

    /// `_id: ...` without braces, as mongod's `idElem.toString()` in `$bit` and `$rename`
    /// messages.
    fn id_text_bare(&self) -> String {
        match &self.id {
            Some(id) => render::owned_element("_id", id),
            None => "no id".to_owned(),
        }
    }

    /// Changing an existing value under `_id` is refused.
    fn check_modify(&self) -> Result<(), QueryError> {
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
    fn created_value(&self, inserting: bool) -> Result<Option<Bson>, QueryError> {
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
    fn action(&self, existing: &Bson, field: &str, cx: &ApplyCx<'_>) -> Result<Action, QueryError> {
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

fn positional_not_found() -> QueryError {
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

/// The path continues through a scalar: creating modifiers fail, the others do nothing.
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
    fn update_operators_compare_under_collation() {
        let collation = Arc::new(
            crate::query::Collation::parse(&bson::rawdoc! { "locale": "en", "strength": 2 }).unwrap().unwrap(),
        );
        // (update, document before, document after)
        let rows = [
            (bson::rawdoc! { "$addToSet": { "t": "RED" } }, doc! { "t": ["red"] }, doc! { "t": ["red"] }),
            (bson::rawdoc! { "$addToSet": { "t": { "$each": ["B", "b"] } } }, doc! { "t": [] }, doc! { "t": ["B"] }),
            (bson::rawdoc! { "$pull": { "t": "RED" } }, doc! { "t": ["red", "blue"] }, doc! { "t": ["blue"] }),
            (
                bson::rawdoc! { "$pull": { "t": { "$in": ["BLUE"] } } },
                doc! { "t": ["red", "blue"] },
                doc! { "t": ["red"] },
            ),
            (bson::rawdoc! { "$pullAll": { "t": ["RED"] } }, doc! { "t": ["red", "blue"] }, doc! { "t": ["blue"] }),
            // "B" sorts after "a" in English, before it in bytes.
            (bson::rawdoc! { "$max": { "s": "B" } }, doc! { "s": "a" }, doc! { "s": "B" }),
            (bson::rawdoc! { "$min": { "s": "A" } }, doc! { "s": "a" }, doc! { "s": "a" }),
            (
                bson::rawdoc! { "$push": { "t": { "$each": [], "$sort": 1 } } },
                doc! { "t": ["b", "C", "a"] },
                doc! { "t": ["a", "b", "C"] },
            ),
        ];
        for (spec, before, after) in rows {
            let update = Update::parse(&spec).unwrap().with_collation(Some(&collation)).unwrap();
            let mut doc = before.clone();
            update.apply(&mut doc, false).unwrap();
            assert_eq!(doc, after, "{spec:?} on {before}");
        }
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
    fn update_replacement_with_top_level_dollar_field_is_52_on_existing_documents_only() {
        let replacement = rawdoc! { "a": 1, "$set": { "b": 1 } };
        assert_eq!(
            run_err(replacement.clone(), doc! { "_id": 1 }),
            (
                52,
                "The dollar ($) prefixed field '$set' in '$set' is not allowed in the context of an update's \
                 replacement document. Consider using an aggregation pipeline with $replaceWith."
                    .into()
            )
        );
        // An upsert that inserts is checked as an insert.
        let mut inserted = Document::new();
        update(replacement).apply(&mut inserted, true).unwrap();
        assert_eq!(inserted, doc! { "a": 1, "$set": { "b": 1 } });
        // Nested `$` fields and DBRefs are storable.
        let (doc, _) = run(rawdoc! { "a": { "$b": 1 }, "r": { "$ref": "c", "$id": 1 } }, doc! { "_id": 1 });
        assert_eq!(doc, doc! { "_id": 1, "a": { "$b": 1 }, "r": { "$ref": "c", "$id": 1 } });
        let (doc, _) = run(rawdoc! { "a": 1, "$ref": "c", "$id": 1, "$db": "d" }, doc! { "_id": 1 });
        assert_eq!(doc, doc! { "_id": 1, "a": 1, "$ref": "c", "$id": 1, "$db": "d" });
        assert_eq!(
            run_err(rawdoc! { "a": 1, "$id": 1 }, doc! { "_id": 1 }),
            (55, "Found $id field without a $ref before it, which is invalid.".into())
        );
        assert_eq!(
            run_err(rawdoc! { "a": 1, "$ref": 1, "$id": 1 }, doc! { "_id": 1 }),
            (55, "The DBRef $ref field must be a String, not a int".into())
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
    fn update_dollar_path_components_follow_mongod_5() {
        // Nested `$` fields may be set and unset on existing documents.
        let (doc, _) = run(rawdoc! { "$set": { "preferences.$each": 42 } }, doc! { "_id": 1, "preferences": {} });
        assert_eq!(doc, doc! { "_id": 1, "preferences": { "$each": 42 } });
        let (doc, changed) = run(
            rawdoc! { "$unset": { "nested.data.$*._id": 1 } },
            doc! { "_id": 1, "nested": { "data": { "$*": { "_id": 1, "k": 2 } } } },
        );
        assert!(changed);
        assert_eq!(doc, doc! { "_id": 1, "nested": { "data": { "$*": { "k": 2 } } } });
        // Inside an existing top-level `$` field too; creating or setting one is refused.
        let (doc, _) = run(rawdoc! { "$set": { "$a.b": 2 } }, doc! { "_id": 1, "$a": { "b": 1 } });
        assert_eq!(doc, doc! { "_id": 1, "$a": { "b": 2 } });
        let refused = (
            52,
            "The dollar ($) prefixed field '$myKey' in '$myKey' is not allowed in the context of an update's \
             replacement document. Consider using an aggregation pipeline with $replaceWith."
                .to_owned(),
        );
        assert_eq!(run_err(rawdoc! { "$set": { "$myKey": 1 } }, doc! { "_id": 1 }), refused);
        assert_eq!(run_err(rawdoc! { "$set": { "$myKey": 2 } }, doc! { "_id": 1, "$myKey": 1 }), refused);
        assert_eq!(run_err(rawdoc! { "$set": { "$myKey.x": 2 } }, doc! { "_id": 1 }), refused);
        assert_eq!(run_err(rawdoc! { "$rename": { "a": "$myKey" } }, doc! { "_id": 1, "a": 1 }), refused);
        // Setting it to the value it has is no change, so nothing is stored or checked.
        let (_, changed) = run(rawdoc! { "$set": { "$myKey": 1 } }, doc! { "_id": 1, "$myKey": 1 });
        assert!(!changed);
        // An upsert that inserts accepts them.
        let mut inserted = Document::new();
        update(rawdoc! { "$set": { "$myKey": 1 } }).apply(&mut inserted, true).unwrap();
        assert_eq!(inserted, doc! { "$myKey": 1 });
        // A pipeline may store them (mongod's advice for them).
        let stages = bson::rawdoc! { "s": [
            { "$replaceWith": { "$setField": { "field": { "$literal": "$a" }, "value": 1, "input": "$$ROOT" } } },
        ] };
        let Ok(Some(RawBsonRef::Array(stages))) = stages.get("s") else { panic!("stages") };
        let mut doc = doc! { "_id": 1 };
        Update::parse_pipeline(stages, &Variables::default()).unwrap().apply(&mut doc, false).unwrap();
        assert_eq!(doc, doc! { "_id": 1, "$a": 1 });
        // The positional forms may not come first.
        assert_eq!(
            parse_err(rawdoc! { "$set": { "$": 1 } }),
            (2, "Cannot have positional (i.e. '$') element in the first position in path '$'".into())
        );
        assert_eq!(
            parse_err(rawdoc! { "$set": { "$[].a": 1 } }),
            (
                2,
                "Cannot have array filter identifier (i.e. '$[<id>]') element in the first position in path '$[].a'"
                    .into()
            )
        );
        assert_eq!(
            parse_err(rawdoc! { "$set": { "$.a.$": 1 } }).1,
            "Too many positional (i.e. '$') elements found in path '$.a.$'"
        );
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
    fn update_inc_and_mul_with_decimals() {
        let dec = |s: &str| s.parse::<bson::Decimal128>().unwrap();
        table(vec![
            (
                rawdoc! { "$inc": { "a": dec("0.1") } },
                doc! { "_id": 1, "a": dec("0.2") },
                doc! { "_id": 1, "a": dec("0.3") },
                true,
            ),
            (
                rawdoc! { "$inc": { "a": dec("1.5") } },
                doc! { "_id": 1, "a": 2 },
                doc! { "_id": 1, "a": dec("3.5") },
                true,
            ),
            (
                rawdoc! { "$inc": { "a": 1 } },
                doc! { "_id": 1, "a": dec("1.10") },
                doc! { "_id": 1, "a": dec("2.10") },
                true,
            ),
            // A double converts to 15 significant digits, as in mongod's `SafeNum`.
            (
                rawdoc! { "$inc": { "a": 0.1 } },
                doc! { "_id": 1, "a": dec("0") },
                doc! { "_id": 1, "a": dec("0.100000000000000") },
                true,
            ),
            // Numerically equal is identical for decimals: 5 + 0.00 leaves 5 as it is.
            (
                rawdoc! { "$inc": { "a": dec("0.00") } },
                doc! { "_id": 1, "a": dec("5") },
                doc! { "_id": 1, "a": dec("5") },
                false,
            ),
            (rawdoc! { "$inc": { "a": dec("2") } }, doc! { "_id": 1 }, doc! { "_id": 1, "a": dec("2") }, true),
            (
                rawdoc! { "$inc": { "a": i64::MAX } },
                doc! { "_id": 1, "a": dec("1") },
                doc! { "_id": 1, "a": dec("9223372036854775808") },
                true,
            ),
            (
                rawdoc! { "$mul": { "a": dec("1.5") } },
                doc! { "_id": 1, "a": 4 },
                doc! { "_id": 1, "a": dec("6.0") },
                true,
            ),
            (
                rawdoc! { "$mul": { "a": 3 } },
                doc! { "_id": 1, "a": dec("0.1") },
                doc! { "_id": 1, "a": dec("0.3") },
                true,
            ),
            (rawdoc! { "$mul": { "a": dec("2.5") } }, doc! { "_id": 1 }, doc! { "_id": 1, "a": dec("0.0") }, true),
            (
                rawdoc! { "$inc": { "a": dec("0") } },
                doc! { "_id": 1, "a": dec("5") },
                doc! { "_id": 1, "a": dec("5") },
                false,
            ),
        ]);
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

    /// Runs table rows: (update, input, expected output, expected `changed`).
    fn table(rows: Vec<(RawDocumentBuf, Document, Document, bool)>) {
        for (spec, input, expected, expected_changed) in rows {
            let label = format!("{spec:?} on {input}");
            let (doc, changed) = run(spec, input);
            assert_eq!(doc, expected, "{label}");
            assert_eq!(changed, expected_changed, "changed flag of {label}");
        }
    }

    /// Runs error rows: (update, input, code, message).
    fn error_table(rows: Vec<(RawDocumentBuf, Document, i32, &str)>) {
        for (spec, input, code, message) in rows {
            let label = format!("{spec:?} on {input}");
            assert_eq!(run_err(spec, input), (code, message.to_owned()), "{label}");
        }
    }

    #[test]
    fn update_mul_table() {
        table(vec![
            (rawdoc! { "$mul": { "a": 2 } }, doc! { "_id": 1, "a": 3 }, doc! { "_id": 1, "a": 6 }, true),
            (rawdoc! { "$mul": { "a": 2.5 } }, doc! { "_id": 1, "a": 2 }, doc! { "_id": 1, "a": 5.0 }, true),
            (rawdoc! { "$mul": { "a": 2_i64 } }, doc! { "_id": 1, "a": 2 }, doc! { "_id": 1, "a": 4_i64 }, true),
            (
                rawdoc! { "$mul": { "a": 2 } },
                doc! { "_id": 1, "a": i32::MAX },
                doc! { "_id": 1, "a": i64::from(i32::MAX) * 2 },
                true,
            ),
            // Missing fields become a zero of the multiplier's type.
            (rawdoc! { "$mul": { "a": 5 } }, doc! { "_id": 1 }, doc! { "_id": 1, "a": 0 }, true),
            (rawdoc! { "$mul": { "a": 5_i64 } }, doc! { "_id": 1 }, doc! { "_id": 1, "a": 0_i64 }, true),
            (rawdoc! { "$mul": { "b.c": 1.5 } }, doc! { "_id": 1 }, doc! { "_id": 1, "b": { "c": 0.0 } }, true),
            (rawdoc! { "$mul": { "a.1": 3 } }, doc! { "_id": 1, "a": [1, 2] }, doc! { "_id": 1, "a": [1, 6] }, true),
            // Multiplying by one of the same type changes nothing; another type does.
            (rawdoc! { "$mul": { "a": 1 } }, doc! { "_id": 1, "a": 7 }, doc! { "_id": 1, "a": 7 }, false),
            (rawdoc! { "$mul": { "a": 1.0 } }, doc! { "_id": 1, "a": 7 }, doc! { "_id": 1, "a": 7.0 }, true),
        ]);
        error_table(vec![
            (
                rawdoc! { "$mul": { "a": 2 } },
                doc! { "_id": 1, "a": "x" },
                14,
                "Cannot apply $mul to a value of non-numeric type. {_id: 1} has the field 'a' of non-numeric type string",
            ),
            (
                rawdoc! { "$mul": { "a": 2 } },
                doc! { "_id": 1, "a": i64::MAX },
                2,
                "Failed to apply $mul operations to current value ((NumberLong)9223372036854775807) for document {_id: 1}",
            ),
            (
                rawdoc! { "$mul": { "a": 2 } },
                doc! { "_id": 1, "a": null },
                14,
                "Cannot apply $mul to a value of non-numeric type. {_id: 1} has the field 'a' of non-numeric type null",
            ),
        ]);
        assert_eq!(
            parse_err(rawdoc! { "$mul": { "a": "x" } }),
            (14, r#"Cannot multiply with non-numeric argument: {a: "x"}"#.into())
        );
    }

    #[test]
    fn update_min_max_table() {
        table(vec![
            (rawdoc! { "$min": { "a": 1 } }, doc! { "_id": 1, "a": 5 }, doc! { "_id": 1, "a": 1 }, true),
            (rawdoc! { "$min": { "a": 9 } }, doc! { "_id": 1, "a": 5 }, doc! { "_id": 1, "a": 5 }, false),
            (rawdoc! { "$max": { "a": 9 } }, doc! { "_id": 1, "a": 5 }, doc! { "_id": 1, "a": 9 }, true),
            (rawdoc! { "$max": { "a": 1 } }, doc! { "_id": 1, "a": 5 }, doc! { "_id": 1, "a": 5 }, false),
            // Equal across numeric types is no change.
            (rawdoc! { "$min": { "a": 5.0 } }, doc! { "_id": 1, "a": 5 }, doc! { "_id": 1, "a": 5 }, false),
            (rawdoc! { "$max": { "a": 5_i64 } }, doc! { "_id": 1, "a": 5.0 }, doc! { "_id": 1, "a": 5.0 }, false),
            // BSON order across types: numbers sort below strings, null below numbers.
            (rawdoc! { "$max": { "a": "s" } }, doc! { "_id": 1, "a": 5 }, doc! { "_id": 1, "a": "s" }, true),
            (rawdoc! { "$min": { "a": null } }, doc! { "_id": 1, "a": 5 }, doc! { "_id": 1, "a": null }, true),
            (rawdoc! { "$max": { "a": 1 } }, doc! { "_id": 1, "a": null }, doc! { "_id": 1, "a": 1 }, true),
            // Missing fields are set.
            (rawdoc! { "$min": { "a.b": 3 } }, doc! { "_id": 1 }, doc! { "_id": 1, "a": { "b": 3 } }, true),
            (rawdoc! { "$max": { "a.0": 3 } }, doc! { "_id": 1, "a": [1] }, doc! { "_id": 1, "a": [3] }, true),
        ]);
    }

    #[test]
    fn update_current_date_sets_date_or_timestamp() {
        let (doc, changed) = run(
            rawdoc! { "$currentDate": { "d": true, "t": { "$type": "timestamp" }, "e.f": { "$type": "date" } } },
            doc! { "_id": 1, "d": 1 },
        );
        assert!(changed);
        assert!(matches!(doc.get("d"), Some(Bson::DateTime(_))));
        assert!(matches!(doc.get("t"), Some(Bson::Timestamp(_))));
        assert!(matches!(doc.get_document("e").unwrap().get("f"), Some(Bson::DateTime(_))));
        // `false` still sets a date, as mongod does.
        let (doc, _) = run(rawdoc! { "$currentDate": { "d": false } }, doc! { "_id": 1 });
        assert!(matches!(doc.get("d"), Some(Bson::DateTime(_))));
    }

    #[test]
    fn update_current_date_bad_arguments_are_bad_value() {
        assert_eq!(
            parse_err(rawdoc! { "$currentDate": { "d": 1 } }),
            (
                2,
                "int is not valid type for $currentDate. Please use a boolean ('true') or a $type expression \
                 ({$type: 'timestamp/date'})."
                    .into()
            )
        );
        assert_eq!(
            parse_err(rawdoc! { "$currentDate": { "d": { "$type": "x" } } }),
            (
                2,
                "The '$type' string field is required to be 'date' or 'timestamp': {$currentDate: {field : {$type: 'date'}}}"
                    .into()
            )
        );
        assert_eq!(
            parse_err(rawdoc! { "$currentDate": { "d": { "x": 1 } } }),
            (2, "Unrecognized $currentDate option: x".into())
        );
    }

    #[test]
    fn update_push_modifiers_table() {
        table(vec![
            // $position, positive, beyond the end, negative, far negative.
            (
                rawdoc! { "$push": { "a": { "$each": [9, 8], "$position": 1 } } },
                doc! { "_id": 1, "a": [1, 2, 3] },
                doc! { "_id": 1, "a": [1, 9, 8, 2, 3] },
                true,
            ),
            (
                rawdoc! { "$push": { "a": { "$each": [9], "$position": 10 } } },
                doc! { "_id": 1, "a": [1, 2] },
                doc! { "_id": 1, "a": [1, 2, 9] },
                true,
            ),
            (
                rawdoc! { "$push": { "a": { "$each": [9], "$position": -1 } } },
                doc! { "_id": 1, "a": [1, 2, 3] },
                doc! { "_id": 1, "a": [1, 2, 9, 3] },
                true,
            ),
            (
                rawdoc! { "$push": { "a": { "$each": [9], "$position": -5 } } },
                doc! { "_id": 1, "a": [1, 2] },
                doc! { "_id": 1, "a": [9, 1, 2] },
                true,
            ),
            (
                rawdoc! { "$push": { "a": { "$each": [9], "$position": 0 } } },
                doc! { "_id": 1, "a": [1] },
                doc! { "_id": 1, "a": [9, 1] },
                true,
            ),
            // $slice keeps the front (positive) or the back (negative).
            (
                rawdoc! { "$push": { "a": { "$each": [4, 5], "$slice": 3 } } },
                doc! { "_id": 1, "a": [1, 2, 3] },
                doc! { "_id": 1, "a": [1, 2, 3] },
                false,
            ),
            (
                rawdoc! { "$push": { "a": { "$each": [4, 5], "$slice": -3 } } },
                doc! { "_id": 1, "a": [1, 2, 3] },
                doc! { "_id": 1, "a": [3, 4, 5] },
                true,
            ),
            (
                rawdoc! { "$push": { "a": { "$each": [], "$slice": 0 } } },
                doc! { "_id": 1, "a": [1, 2] },
                doc! { "_id": 1, "a": [] },
                true,
            ),
            (
                rawdoc! { "$push": { "a": { "$each": [1], "$slice": 1.0 } } },
                doc! { "_id": 1 },
                doc! { "_id": 1, "a": [1] },
                true,
            ),
            // $sort on whole values, mixed types in BSON order, then slice.
            (
                rawdoc! { "$push": { "a": { "$each": [3, "x", 1.5], "$sort": 1, "$slice": 3 } } },
                doc! { "_id": 1, "a": [2, null] },
                doc! { "_id": 1, "a": [null, 1.5, 2] },
                true,
            ),
            (
                rawdoc! { "$push": { "a": { "$each": [3], "$sort": -1 } } },
                doc! { "_id": 1, "a": [1, 5] },
                doc! { "_id": 1, "a": [5, 3, 1] },
                true,
            ),
            // $sort by fields of documents; missing fields and scalars sort as null; ties stable.
            (
                rawdoc! { "$push": { "a": { "$each": [ { "s": 2, "n": "c" } ], "$sort": { "s": 1 } } } },
                doc! { "_id": 1, "a": [ { "s": 3, "n": "a" }, { "n": "b" }, { "s": 2, "n": "d" } ] },
                doc! { "_id": 1, "a": [ { "n": "b" }, { "s": 2, "n": "d" }, { "s": 2, "n": "c" }, { "s": 3, "n": "a" } ] },
                true,
            ),
            (
                rawdoc! { "$push": { "a": { "$each": [], "$sort": { "x.y": -1 } } } },
                doc! { "_id": 1, "a": [ { "x": { "y": 1 } }, { "x": { "y": 5 } } ] },
                doc! { "_id": 1, "a": [ { "x": { "y": 5 } }, { "x": { "y": 1 } } ] },
                true,
            ),
            // As in mongod, a $sort counts as a change even when the order stays.
            (
                rawdoc! { "$push": { "a": { "$each": [], "$sort": 1 } } },
                doc! { "_id": 1, "a": [1, 2] },
                doc! { "_id": 1, "a": [1, 2] },
                true,
            ),
            // Without $sort, pushing nothing and slicing nothing off is no change.
            (
                rawdoc! { "$push": { "a": { "$each": [], "$slice": 5 } } },
                doc! { "_id": 1, "a": [1, 2] },
                doc! { "_id": 1, "a": [1, 2] },
                false,
            ),
        ]);
    }

    #[test]
    fn update_push_modifier_errors() {
        for (spec, message) in [
            (rawdoc! { "$push": { "a": { "$each": [1], "$foo": 1 } } }, "Unrecognized clause in $push: $foo"),
            (
                rawdoc! { "$push": { "a": { "$each": 1 } } },
                "The argument to $each in $push must be an array but it was of type: int",
            ),
            (
                rawdoc! { "$push": { "a": { "$each": [1], "$slice": "x" } } },
                "The value for $slice must be an integer value but was given type: string",
            ),
            (
                rawdoc! { "$push": { "a": { "$each": [1], "$slice": 1.5 } } },
                "The value for $slice must be an integer value but was given type: double",
            ),
            (
                rawdoc! { "$push": { "a": { "$each": [1], "$position": "x" } } },
                "The value for $position must be an integer value, not of type: string",
            ),
            (
                rawdoc! { "$push": { "a": { "$each": [1], "$sort": 2 } } },
                "The $sort element value must be either 1 or -1",
            ),
            (
                rawdoc! { "$push": { "a": { "$each": [1], "$sort": "x" } } },
                "The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} to sort embedded fields",
            ),
            (
                rawdoc! { "$push": { "a": { "$each": [1], "$sort": {} } } },
                "The $sort pattern is empty when it should be a set of fields.",
            ),
            (
                rawdoc! { "$push": { "a": { "$each": [1], "$sort": { "a..b": 1 } } } },
                "The $sort field is a dotted field but has an empty part: a..b",
            ),
        ] {
            assert_eq!(parse_err(spec), (2, message.to_owned()));
        }
        // Without $each, a document with $-fields is just a value to push.
        let (doc, _) = run(rawdoc! { "$push": { "a": { "$slice": 1 } } }, doc! { "_id": 1 });
        assert_eq!(doc, doc! { "_id": 1, "a": [ { "$slice": 1 } ] });
    }

    #[test]
    fn update_add_to_set_table() {
        table(vec![
            (
                rawdoc! { "$addToSet": { "a": 3 } },
                doc! { "_id": 1, "a": [1, 2] },
                doc! { "_id": 1, "a": [1, 2, 3] },
                true,
            ),
            (
                rawdoc! { "$addToSet": { "a": 2.0 } },
                doc! { "_id": 1, "a": [1, 2] },
                doc! { "_id": 1, "a": [1, 2] },
                false,
            ),
            (
                rawdoc! { "$addToSet": { "a": { "$each": [2, 3, 3, 4.0, 4] } } },
                doc! { "_id": 1, "a": [1, 2] },
                doc! { "_id": 1, "a": [1, 2, 3, 4.0] },
                true,
            ),
            (
                rawdoc! { "$addToSet": { "a": { "$each": [1, 1, null] } } },
                doc! { "_id": 1 },
                doc! { "_id": 1, "a": [1, null] },
                true,
            ),
            // Documents compare by field order too; arrays are values, not $each.
            (
                rawdoc! { "$addToSet": { "a": { "y": 1, "x": 1 } } },
                doc! { "_id": 1, "a": [ { "x": 1, "y": 1 } ] },
                doc! { "_id": 1, "a": [ { "x": 1, "y": 1 }, { "y": 1, "x": 1 } ] },
                true,
            ),
            (
                rawdoc! { "$addToSet": { "a": [1] } },
                doc! { "_id": 1, "a": [1] },
                doc! { "_id": 1, "a": [1, [1]] },
                true,
            ),
            (rawdoc! { "$addToSet": { "a": { "$each": [] } } }, doc! { "_id": 1 }, doc! { "_id": 1, "a": [] }, true),
        ]);
        error_table(vec![(
            rawdoc! { "$addToSet": { "a": 1 } },
            doc! { "_id": 1, "a": 1 },
            2,
            "Cannot apply $addToSet to non-array field. Field named 'a' has non-array type int",
        )]);
        assert_eq!(
            parse_err(rawdoc! { "$addToSet": { "a": { "$each": 1 } } }),
            (14, "The argument to $each in $addToSet must be an array but it was of type int".into())
        );
        assert_eq!(parse_err(rawdoc! { "$addToSet": { "a": { "$each": [1], "x": 1 } } }).0, 2);
    }

    #[test]
    fn update_pop_table() {
        table(vec![
            (rawdoc! { "$pop": { "a": 1 } }, doc! { "_id": 1, "a": [1, 2, 3] }, doc! { "_id": 1, "a": [1, 2] }, true),
            (rawdoc! { "$pop": { "a": -1 } }, doc! { "_id": 1, "a": [1, 2, 3] }, doc! { "_id": 1, "a": [2, 3] }, true),
            (rawdoc! { "$pop": { "a": 1.0 } }, doc! { "_id": 1, "a": [1] }, doc! { "_id": 1, "a": [] }, true),
            (rawdoc! { "$pop": { "a": 1 } }, doc! { "_id": 1, "a": [] }, doc! { "_id": 1, "a": [] }, false),
            (rawdoc! { "$pop": { "a": 1, "b.c": 1 } }, doc! { "_id": 1 }, doc! { "_id": 1 }, false),
            (
                rawdoc! { "$pop": { "a.b": -1 } },
                doc! { "_id": 1, "a": { "b": [1, 2] } },
                doc! { "_id": 1, "a": { "b": [2] } },
                true,
            ),
        ]);
        error_table(vec![(
            rawdoc! { "$pop": { "a.b": 1 } },
            doc! { "_id": 1, "a": { "b": 5 } },
            14,
            "Path 'a.b' contains an element of non-array type 'int'",
        )]);
        assert_eq!(parse_err(rawdoc! { "$pop": { "a": "x" } }), (9, r#"Expected a number in: a: "x""#.into()));
        assert_eq!(parse_err(rawdoc! { "$pop": { "a": 2 } }), (9, "$pop expects 1 or -1, found: 2".into()));
        assert_eq!(parse_err(rawdoc! { "$pop": { "a": -2.0 } }), (9, "$pop expects 1 or -1, found: -2".into()));
        assert_eq!(parse_err(rawdoc! { "$pop": { "a": 1.5 } }), (9, "Expected an integer: a: 1.5".into()));
        assert_eq!(parse_err(rawdoc! { "$pop": { "a": true } }), (9, "Expected a number in: a: true".into()));
    }

    #[test]
    fn update_pull_all_table() {
        table(vec![
            (
                rawdoc! { "$pullAll": { "a": [1, "x"] } },
                doc! { "_id": 1, "a": [1, 2, 1.0, "x", [1]] },
                doc! { "_id": 1, "a": [2, [1]] },
                true,
            ),
            (rawdoc! { "$pullAll": { "a": [9] } }, doc! { "_id": 1, "a": [1] }, doc! { "_id": 1, "a": [1] }, false),
            (rawdoc! { "$pullAll": { "a": [1] } }, doc! { "_id": 1 }, doc! { "_id": 1 }, false),
            (
                rawdoc! { "$pullAll": { "a": [ { "b": 1 } ] } },
                doc! { "_id": 1, "a": [ { "b": 1 }, { "b": 1, "c": 1 } ] },
                doc! { "_id": 1, "a": [ { "b": 1, "c": 1 } ] },
                true,
            ),
        ]);
        error_table(vec![(
            rawdoc! { "$pullAll": { "a": [1] } },
            doc! { "_id": 1, "a": 1 },
            2,
            "Cannot apply $pull to a non-array value",
        )]);
        assert_eq!(
            parse_err(rawdoc! { "$pullAll": { "a": 1 } }),
            (2, "$pullAll requires an array argument but was given a int".into())
        );
    }

    #[test]
    fn update_bit_table() {
        table(vec![
            (rawdoc! { "$bit": { "a": { "and": 3 } } }, doc! { "_id": 1, "a": 6 }, doc! { "_id": 1, "a": 2 }, true),
            (rawdoc! { "$bit": { "a": { "or": 1 } } }, doc! { "_id": 1, "a": 6 }, doc! { "_id": 1, "a": 7 }, true),
            (rawdoc! { "$bit": { "a": { "xor": 5 } } }, doc! { "_id": 1, "a": 6 }, doc! { "_id": 1, "a": 3 }, true),
            (
                rawdoc! { "$bit": { "a": { "or": 1_i64 } } },
                doc! { "_id": 1, "a": 6 },
                doc! { "_id": 1, "a": 7_i64 },
                true,
            ),
            (
                rawdoc! { "$bit": { "a": { "and": 1, "or": 8 } } },
                doc! { "_id": 1, "a": 3 },
                doc! { "_id": 1, "a": 9 },
                true,
            ),
            (rawdoc! { "$bit": { "a": { "or": 2 } } }, doc! { "_id": 1, "a": 2 }, doc! { "_id": 1, "a": 2 }, false),
            (rawdoc! { "$bit": { "a": { "or": 5 } } }, doc! { "_id": 1 }, doc! { "_id": 1, "a": 5 }, true),
            (rawdoc! { "$bit": { "a": { "and": 5_i64 } } }, doc! { "_id": 1 }, doc! { "_id": 1, "a": 0_i64 }, true),
        ]);
        error_table(vec![(
            rawdoc! { "$bit": { "a": { "and": 1 } } },
            doc! { "_id": 1, "a": 1.0 },
            2,
            "Cannot apply $bit to a value of non-integral type._id: 1 has the field a of non-integer type double",
        )]);
        for (spec, message) in [
            (
                rawdoc! { "$bit": { "a": 1 } },
                "The $bit modifier is not compatible with a int. You must pass in an embedded document: {$bit: {field: {and/or/xor: #}}",
            ),
            (
                rawdoc! { "$bit": { "a": {} } },
                "You must pass in at least one bitwise operation. The format is: {$bit: {field: {and/or/xor: #}}",
            ),
            (
                rawdoc! { "$bit": { "a": { "not": 1 } } },
                "The $bit modifier only supports 'and', 'or', and 'xor', not 'not' which is an unknown operator: {not: 1}",
            ),
            (
                rawdoc! { "$bit": { "a": { "and": 1.0 } } },
                "The $bit modifier field must be an Integer(32/64 bit); a 'double' is not supported here: {and: 1.0}",
            ),
        ] {
            assert_eq!(parse_err(spec), (2, message.to_owned()));
        }
    }

    #[test]
    fn update_rename_table() {
        table(vec![
            (
                rawdoc! { "$rename": { "a": "b" } },
                doc! { "_id": 1, "a": 1, "c": 2 },
                doc! { "_id": 1, "c": 2, "b": 1 },
                true,
            ),
            (rawdoc! { "$rename": { "a": "c" } }, doc! { "_id": 1, "a": 1, "c": 2 }, doc! { "_id": 1, "c": 1 }, true),
            (
                rawdoc! { "$rename": { "a.b": "c.d" } },
                doc! { "_id": 1, "a": { "b": [1], "x": 1 } },
                doc! { "_id": 1, "a": { "x": 1 }, "c": { "d": [1] } },
                true,
            ),
            (rawdoc! { "$rename": { "missing": "b" } }, doc! { "_id": 1, "b": 1 }, doc! { "_id": 1, "b": 1 }, false),
            (rawdoc! { "$rename": { "a.b": "c" } }, doc! { "_id": 1, "a": {} }, doc! { "_id": 1, "a": {} }, false),
        ]);
        error_table(vec![
            (
                rawdoc! { "$rename": { "a.0": "b" } },
                doc! { "_id": 1, "a": [1] },
                2,
                "The source field cannot be an array element, 'a.0' in doc with _id: 1 has an array field called 'a'",
            ),
            (
                rawdoc! { "$rename": { "a": "b.0" } },
                doc! { "_id": 1, "a": 1, "b": [1] },
                2,
                "The destination field cannot be an array element, 'b.0' in doc with _id: 1 has an array field called 'b'",
            ),
            (
                rawdoc! { "$rename": { "a": "b.c" } },
                doc! { "_id": 1, "a": 1, "b": [] },
                2,
                "The destination field cannot be an array element, 'b.c' in doc with _id: 1 has an array field called 'b'",
            ),
            (
                rawdoc! { "$rename": { "a": "b.c" } },
                doc! { "_id": 1, "a": 1, "b": 5 },
                28,
                "Cannot create field 'c' in element {b: 5}",
            ),
            (
                rawdoc! { "$rename": { "_id": "b" } },
                doc! { "_id": 1 },
                66,
                "Unsetting the path '_id' using $rename would modify the immutable field '_id'",
            ),
            (
                rawdoc! { "$rename": { "a": "_id" } },
                doc! { "_id": 1, "a": 2 },
                66,
                "Performing an update on the path '_id' would modify the immutable field '_id'",
            ),
        ]);
        for (spec, code, message) in [
            (rawdoc! { "$rename": { "a": 1 } }, 2, "The 'to' field for $rename must be a string: a: 1"),
            (rawdoc! { "$rename": { "a": "a" } }, 2, r#"The source and target field for $rename must differ: a: "a""#),
            (
                rawdoc! { "$rename": { "a": "b\0c" } },
                2,
                "The 'to' field for $rename cannot contain an embedded null byte",
            ),
            (
                rawdoc! { "$rename": { "a": "a.b" } },
                2,
                r#"The source and target field for $rename must not be on the same path: a: "a.b""#,
            ),
            (
                rawdoc! { "$rename": { "a.b": "a" } },
                2,
                r#"The source and target field for $rename must not be on the same path: a.b: "a""#,
            ),
            (
                rawdoc! { "$rename": { "a": "b" }, "$set": { "b": 1 } },
                40,
                "Updating the path 'b' would create a conflict at 'b'",
            ),
            (rawdoc! { "$rename": { "a": "" } }, 56, "An empty update path is not valid."),
        ] {
            assert_eq!(parse_err(spec), (code, message.to_owned()));
        }
        assert!(Update::parse(&rawdoc! { "$rename": { "a": "ab" } }).is_ok());
        // The destination lands where mongod's path-ordered walk puts it among new fields.
        let (doc, _) = run(rawdoc! { "$set": { "a": 1, "z": 1 }, "$rename": { "m": "n" } }, doc! { "_id": 1, "m": 2 });
        assert_eq!(doc, doc! { "_id": 1, "a": 1, "n": 2, "z": 1 });
    }

    /// Parses a statement with its query and array filters, applies it to `doc`.
    fn run_statement(
        spec: RawDocumentBuf,
        query: RawDocumentBuf,
        filters: Option<bson::RawArrayBuf>,
        mut doc: Document,
    ) -> Result<(Document, bool), (i32, String)> {
        let update = Update::parse_statement(&spec, &query, filters.as_deref())
            .map_err(|e| (e.code().code(), e.message().to_owned()))?;
        let changed = update.apply(&mut doc, false).map_err(|e| (e.code().code(), e.message().to_owned()))?;
        Ok((doc, changed))
    }

    fn filters(list: Vec<RawDocumentBuf>) -> Option<bson::RawArrayBuf> {
        let mut array = bson::RawArrayBuf::new();
        for doc in list {
            array.push(doc);
        }
        Some(array)
    }

    #[test]
    fn update_positional_first_match_table() {
        let rows = vec![
            // Scalar array matched by value.
            (
                rawdoc! { "$set": { "a.$": 9 } },
                rawdoc! { "a": 2 },
                doc! { "_id": 1, "a": [1, 2, 3, 2] },
                doc! { "_id": 1, "a": [1, 9, 3, 2] },
            ),
            // Documents matched through a dotted path, and an operator condition.
            (
                rawdoc! { "$inc": { "a.$.n": 1 } },
                rawdoc! { "a.k": { "$gte": 2 } },
                doc! { "_id": 1, "a": [ { "k": 1, "n": 0 }, { "k": 2, "n": 0 }, { "k": 3, "n": 0 } ] },
                doc! { "_id": 1, "a": [ { "k": 1, "n": 0 }, { "k": 2, "n": 1 }, { "k": 3, "n": 0 } ] },
            ),
            // Inside $and, next to a condition on another field.
            (
                rawdoc! { "$set": { "a.$.k": "x" } },
                rawdoc! { "_id": 1, "$and": [ { "a.k": 3 } ] },
                doc! { "_id": 1, "a": [ { "k": 1 }, { "k": 3 } ] },
                doc! { "_id": 1, "a": [ { "k": 1 }, { "k": "x" } ] },
            ),
            // A nested array under a document field.
            (
                rawdoc! { "$unset": { "d.a.$": 1 } },
                rawdoc! { "d.a": 5 },
                doc! { "_id": 1, "d": { "a": [4, 5] } },
                doc! { "_id": 1, "d": { "a": [4, null] } },
            ),
            // `$elemMatch`: the element meeting every condition at once (mongod's manual).
            (
                rawdoc! { "$set": { "g.$.std": 6 } },
                rawdoc! { "g": { "$elemMatch": { "grade": { "$lte": 90 }, "mean": { "$gt": 80 } } } },
                doc! { "_id": 1, "g": [ { "grade": 80, "mean": 75 }, { "grade": 85, "mean": 90 }, { "grade": 85, "mean": 85 } ] },
                doc! { "_id": 1, "g": [ { "grade": 80, "mean": 75 }, { "grade": 85, "mean": 90, "std": 6 }, { "grade": 85, "mean": 85 } ] },
            ),
            // Two conditions on the array without `$elemMatch`: the last one's element.
            (
                rawdoc! { "$set": { "g.$.std": 6 } },
                rawdoc! { "g.grade": { "$lte": 90 }, "g.mean": { "$gt": 80 } },
                doc! { "_id": 1, "g": [ { "grade": 80, "mean": 75 }, { "grade": 85, "mean": 90 } ] },
                doc! { "_id": 1, "g": [ { "grade": 80, "mean": 75 }, { "grade": 85, "mean": 90, "std": 6 } ] },
            ),
            (
                rawdoc! { "$set": { "a.$": 0 } },
                rawdoc! { "$and": [ { "a": { "$gt": 1 } }, { "a": { "$gt": 2 } } ] },
                doc! { "_id": 1, "a": [1, 2, 3] },
                doc! { "_id": 1, "a": [1, 2, 0] },
            ),
            // An `$or` of one clause, or of equalities on one path (mongod makes it an `$in`).
            (
                rawdoc! { "$set": { "a.$": 0 } },
                rawdoc! { "$or": [ { "a": 3 } ] },
                doc! { "_id": 1, "a": [1, 2, 3] },
                doc! { "_id": 1, "a": [1, 2, 0] },
            ),
            (
                rawdoc! { "$set": { "a.$": 0 } },
                rawdoc! { "$or": [ { "a": 3 }, { "a": 2 } ] },
                doc! { "_id": 1, "a": [1, 2, 3] },
                doc! { "_id": 1, "a": [1, 0, 3] },
            ),
            // An `$or` next to a condition on the array leaves that condition's element.
            (
                rawdoc! { "$set": { "a.$": 0 } },
                rawdoc! { "a": 2, "$or": [ { "_id": 1 }, { "b": 1 } ] },
                doc! { "_id": 1, "a": [1, 2, 3] },
                doc! { "_id": 1, "a": [1, 0, 3] },
            ),
        ];
        for (spec, query, input, expected) in rows {
            let label = format!("{spec:?} with {query:?}");
            let (doc, changed) = run_statement(spec, query, None, input).unwrap();
            assert_eq!(doc, expected, "{label}");
            assert!(changed, "{label}");
        }
    }

    #[test]
    fn update_positional_errors() {
        assert_eq!(
            run_statement(rawdoc! { "$set": { "a.$": 1 } }, rawdoc! { "_id": 1 }, None, doc! { "_id": 1, "a": [1] })
                .unwrap_err(),
            (2, "The positional operator did not find the match needed from the query.".into())
        );
        assert_eq!(
            parse_err(rawdoc! { "$set": { "a.$.b.$": 5 } }),
            (2, "Too many positional (i.e. '$') elements found in path 'a.$.b.$'".into())
        );
        // mongod's `$or` records no element: several clauses on different paths leave none.
        assert_eq!(
            run_statement(
                rawdoc! { "$set": { "a.$": 1 } },
                rawdoc! { "$or": [ { "a": 1 }, { "b": 1 } ] },
                None,
                doc! { "_id": 1, "a": [1] }
            )
            .unwrap_err()
            .0,
            2
        );
        // An upsert's new document matched nothing.
        let u = Update::parse_statement(&rawdoc! { "$set": { "a.$": 1 } }, &rawdoc! { "a": 1 }, None).unwrap();
        let mut seed = doc! { "a": 1 };
        assert_eq!(u.apply(&mut seed, true).unwrap_err().code().code(), 2);
    }

    #[test]
    fn update_all_positional_table() {
        table(vec![
            (rawdoc! { "$inc": { "a.$[]": 1 } }, doc! { "_id": 1, "a": [1, 2] }, doc! { "_id": 1, "a": [2, 3] }, true),
            (
                rawdoc! { "$set": { "a.$[].b": 0 } },
                doc! { "_id": 1, "a": [ { "b": 1 }, {} ] },
                doc! { "_id": 1, "a": [ { "b": 0 }, { "b": 0 } ] },
                true,
            ),
            (
                rawdoc! { "$set": { "a.$[].$[]": 0 } },
                doc! { "_id": 1, "a": [[1, 2], [3]] },
                doc! { "_id": 1, "a": [[0, 0], [0]] },
                true,
            ),
            (rawdoc! { "$set": { "a.$[]": 1 } }, doc! { "_id": 1, "a": [] }, doc! { "_id": 1, "a": [] }, false),
            (rawdoc! { "$set": { "a.$[]": 1 } }, doc! { "_id": 1, "a": [1, 1] }, doc! { "_id": 1, "a": [1, 1] }, false),
        ]);
        error_table(vec![
            (
                rawdoc! { "$set": { "a.$[]": 1 } },
                doc! { "_id": 1, "a": 5 },
                2,
                "Cannot apply array updates to non-array element a: 5",
            ),
            (
                rawdoc! { "$set": { "a.$[].c": 1 } },
                doc! { "_id": 1, "a": [1] },
                28,
                "Cannot create field 'c' in element {0: 1}",
            ),
            (
                rawdoc! { "$set": { "a.b.$[]": 1 } },
                doc! { "_id": 1, "a": {} },
                2,
                "The path 'a.b' must exist in the document in order to apply array updates.",
            ),
        ]);
    }

    #[test]
    fn update_filtered_positional_table() {
        let (doc, changed) = run_statement(
            rawdoc! { "$set": { "a.$[x]": 0 } },
            rawdoc! {},
            filters(vec![rawdoc! { "x": { "$gt": 2 } }]),
            doc! { "_id": 1, "a": [1, 5, 2, 7] },
        )
        .unwrap();
        assert!(changed);
        assert_eq!(doc, doc! { "_id": 1, "a": [1, 0, 2, 0] });

        let (doc, _) = run_statement(
            rawdoc! { "$inc": { "g.$[e].n": 10, "g.$[f].n": 1 } },
            rawdoc! {},
            filters(vec![rawdoc! { "e.k": "a" }, rawdoc! { "f.k": { "$in": ["b", "c"] } }]),
            doc! { "_id": 1, "g": [ { "k": "a", "n": 1 }, { "k": "b", "n": 1 }, { "k": "c", "n": 1 } ] },
        )
        .unwrap();
        assert_eq!(doc, doc! { "_id": 1, "g": [ { "k": "a", "n": 11 }, { "k": "b", "n": 2 }, { "k": "c", "n": 2 } ] });

        // Nested: outer and inner identifiers.
        let (doc, _) = run_statement(
            rawdoc! { "$set": { "m.$[r].v.$[c]": "x" } },
            rawdoc! {},
            filters(vec![rawdoc! { "r.id": 2 }, rawdoc! { "c": { "$lt": 0 } }]),
            doc! { "_id": 1, "m": [ { "id": 1, "v": [-1, 1] }, { "id": 2, "v": [-1, 1, -2] } ] },
        )
        .unwrap();
        assert_eq!(doc, doc! { "_id": 1, "m": [ { "id": 1, "v": [-1, 1] }, { "id": 2, "v": ["x", 1, "x"] } ] });

        // No element matches: unchanged.
        let (_, changed) = run_statement(
            rawdoc! { "$set": { "a.$[x]": 0 } },
            rawdoc! {},
            filters(vec![rawdoc! { "x": 99 }]),
            doc! { "_id": 1, "a": [1] },
        )
        .unwrap();
        assert!(!changed);
    }

    #[test]
    fn update_array_filter_errors() {
        let cases: Vec<(RawDocumentBuf, Vec<RawDocumentBuf>, i32, &str)> = vec![
            (
                rawdoc! { "$set": { "a.$[i]": 5.0 } },
                vec![rawdoc! { "i": 0 }, rawdoc! { "j": 0 }],
                9,
                "The array filter for identifier 'j' was not used in the update { $set: { a.$[i]: 5.0 } }",
            ),
            (
                rawdoc! { "$set": { "a.$[i]": 1 } },
                vec![],
                2,
                "No array filter found for identifier 'i' in path 'a.$[i]'",
            ),
            (
                rawdoc! { "$set": { "a.$[i]": 1 } },
                vec![rawdoc! { "i": 0 }, rawdoc! { "i": 1 }],
                9,
                "Found multiple array filters with the same top-level field name i",
            ),
            (
                rawdoc! { "$set": { "a.$[i]": 1 } },
                vec![rawdoc! { "i": 0, "j": 1 }],
                9,
                "Error parsing array filter :: caused by :: Expected a single top-level field name, found 'i' and 'j'",
            ),
            (
                rawdoc! { "$set": { "a.$[I]": 1 } },
                vec![rawdoc! { "I": 0 }],
                2,
                "Error parsing array filter :: caused by :: The top-level field name must be an alphanumeric string \
                 beginning with a lowercase letter, found 'I'",
            ),
            (
                rawdoc! { "$set": { "a.$[i]": 1 } },
                vec![rawdoc! {}],
                9,
                "Cannot use an expression without a top-level field name in arrayFilters",
            ),
        ];
        for (spec, list, code, message) in cases {
            let label = format!("{spec:?}");
            let err = Update::parse_statement(&spec, &rawdoc! {}, filters(list).as_deref()).unwrap_err();
            assert_eq!((err.code().code(), err.message()), (code, message), "{label}");
        }
        // A replacement ignores array filters, as mongod's UpdateDriver does.
        assert!(
            Update::parse_statement(&rawdoc! { "a": 1 }, &rawdoc! {}, filters(vec![rawdoc! { "i": 1 }]).as_deref())
                .is_ok()
        );
        // Filters that combine conditions on one identifier are fine.
        assert!(
            Update::parse_statement(
                &rawdoc! { "$set": { "a.$[i]": 1 } },
                &rawdoc! {},
                filters(vec![rawdoc! { "$or": [ { "i": 1 }, { "i.b": 2 } ] }]).as_deref(),
            )
            .is_ok()
        );
        assert_eq!(
            run_statement(
                rawdoc! { "$set": { "a.$[i]": 1 } },
                rawdoc! {},
                filters(vec![rawdoc! { "i": 1 }]),
                doc! { "_id": 1 }
            )
            .unwrap_err(),
            (2, "The path 'a' must exist in the document in order to apply array updates.".into())
        );
    }

    #[test]
    fn update_push_to_nested_non_array_names_the_path() {
        assert_eq!(
            run_err(rawdoc! { "$push": { "a.b": 1 } }, doc! { "_id": 1, "a": { "b": 1 } }),
            (2, "The field 'a.b' must be an array but is of type int in document {_id: 1}".into())
        );
    }

    #[test]
    fn update_creates_paths_and_pads_arrays() {
        table(vec![
            // A numeric component on a missing path names a field of a new document.
            (rawdoc! { "$set": { "a.0": 1 } }, doc! { "_id": 1 }, doc! { "_id": 1, "a": { "0": 1 } }, true),
            (
                rawdoc! { "$set": { "a.0.b": 1 } },
                doc! { "_id": 1, "a": {} },
                doc! { "_id": 1, "a": { "0": { "b": 1 } } },
                true,
            ),
            // On an array it is a position; beyond the end the gap is filled with nulls.
            (
                rawdoc! { "$inc": { "a.3": 1 } },
                doc! { "_id": 1, "a": [1] },
                doc! { "_id": 1, "a": [1, null, null, 1] },
                true,
            ),
            (
                rawdoc! { "$push": { "a.2": 5 } },
                doc! { "_id": 1, "a": [] },
                doc! { "_id": 1, "a": [null, null, [5]] },
                true,
            ),
            (
                rawdoc! { "$set": { "a.2.b": 1 } },
                doc! { "_id": 1, "a": [0] },
                doc! { "_id": 1, "a": [0, null, { "b": 1 }] },
                true,
            ),
            (rawdoc! { "$min": { "a.1": 1 } }, doc! { "_id": 1, "a": [0] }, doc! { "_id": 1, "a": [0, 1] }, true),
            // Non-creating operators leave missing positions alone.
            (
                rawdoc! { "$unset": { "a.5": 1 }, "$pop": { "b.3": 1 } },
                doc! { "_id": 1, "a": [0], "b": [] },
                doc! { "_id": 1, "a": [0], "b": [] },
                false,
            ),
        ]);
    }

    #[test]
    fn update_upsert_seed_then_set_on_insert_and_set() {
        let filter = Filter::parse(&rawdoc! { "$and": [ { "_id": 5 }, { "a.b": 1 } ], "c": { "$gt": 1 } }).unwrap();
        let mut seed = filter.equality_seed().unwrap();
        let u = update(rawdoc! { "$setOnInsert": { "n": 1 }, "$inc": { "a.c": 2 }, "$push": { "l": 1 } });
        assert!(u.apply(&mut seed, true).unwrap());
        assert_eq!(seed, doc! { "_id": 5, "a": { "b": 1, "c": 2 }, "l": [1], "n": 1 });
    }

    #[test]
    fn update_array_removers_need_a_traversable_path() {
        error_table(vec![
            (
                rawdoc! { "$pull": { "a.b": 1 } },
                doc! { "_id": 1, "a": 5 },
                28,
                "Cannot use the part (b) of (a.b) to traverse the element ({a: 5})",
            ),
            (
                rawdoc! { "$pop": { "a.b.c": 1 } },
                doc! { "_id": 1, "a": { "b": 1 } },
                28,
                "Cannot use the part (c) of (a.b.c) to traverse the element ({b: 1})",
            ),
            (
                rawdoc! { "$pullAll": { "a.b.c": [1] } },
                doc! { "_id": 1, "a": [1] },
                28,
                "Cannot use the part (b) of (a.b.c) to traverse the element ({a: [ 1 ]})",
            ),
        ]);
        // $unset is a no-op there, and missing documents or positions are no-ops for all.
        table(vec![
            (rawdoc! { "$unset": { "a.b": 1 } }, doc! { "_id": 1, "a": 5 }, doc! { "_id": 1, "a": 5 }, false),
            (rawdoc! { "$pull": { "a.b.c": 1 } }, doc! { "_id": 1, "a": {} }, doc! { "_id": 1, "a": {} }, false),
            (rawdoc! { "$pull": { "a.3.c": 1 } }, doc! { "_id": 1, "a": [1] }, doc! { "_id": 1, "a": [1] }, false),
        ]);
    }

    /// `{op: {path: value}}`.
    fn one(op: &str, path: &str, value: impl Into<RawBson>) -> RawDocumentBuf {
        let mut args = RawDocumentBuf::new();
        args.append(<&CStr>::try_from(path).unwrap(), value.into());
        let mut spec = RawDocumentBuf::new();
        spec.append(<&CStr>::try_from(op).unwrap(), args);
        spec
    }

    #[test]
    fn update_paths_past_the_storage_depth_create_nothing() {
        let long = |n: usize| vec!["a"; n].join(".");
        let too_deep = (15, "Document exceeds maximum nesting depth of 180".to_owned());
        // Creating any part of a 5,000-level path is refused before it is built.
        for op in ["$set", "$inc", "$max", "$push", "$addToSet"] {
            assert_eq!(run_err(one(op, &long(5000), 1), doc! { "_id": 0 }), too_deep, "{op}");
        }
        // Nothing can be there to remove or change.
        for op in ["$unset", "$pop", "$pull"] {
            assert_eq!(run(one(op, &long(5000), 1), doc! { "_id": 0 }), (doc! { "_id": 0 }, false), "{op}");
        }
        assert_eq!(run(one("$setOnInsert", &long(5000), 1), doc! { "_id": 0 }), (doc! { "_id": 0 }, false));
        let mut inserting = doc! {};
        let err = update(one("$setOnInsert", &long(5000), 1)).apply(&mut inserting, true).unwrap_err();
        assert_eq!((err.code().code(), err.message().to_owned()), too_deep);
        // The limit is mongod's: level 180 may be written, 181 not, also through arrays.
        assert_eq!(run_err(one("$set", &long(181), 1), doc! { "_id": 0 }), too_deep);
        let (done, changed) = run(one("$set", &long(180), 1), doc! { "_id": 0 });
        assert!(changed && !crate::query::limits::owned_depth_exceeds(&done, 180));
        let through_array = format!("a.0.{}", long(179));
        assert_eq!(run_err(one("$set", &through_array, 1), doc! { "_id": 0, "a": [{}] }), too_deep);
        // A rename to a path that deep is refused the same way.
        assert_eq!(run_err(one("$rename", "x", long(5000)), doc! { "_id": 0, "x": 1 }), too_deep);
        // Paths that deep still conflict with their prefixes.
        let mut spec = one("$set", &long(5000), 1);
        spec.append(bson::raw::cstr!("$unset"), rawdoc! { "a": 1 });
        assert_eq!(parse_err(spec).0, 40);
    }
}
