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

mod apply;
mod component;
pub mod diff;
mod modifier;
mod parse;
#[cfg(test)]
mod tests;
mod tree;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bson::{Bson, Document, RawArray, RawBsonRef, RawDocument, RawDocumentBuf};

use super::collation::Collation;
use super::elements::fields;
use super::error::QueryError;
use super::expr::Variables;
use super::filter::Filter;
use super::order::compare_values;
use super::pipeline::UpdatePipeline;
use super::render;
use crate::error::ErrorCode;
use apply::check_top_level_dollar_fields;
use modifier::{documents_identical, to_bson, to_raw};
use tree::{Rename, Tree, collate_tree};

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
        Ok(Self::unbound(Kind::Pipeline(UpdatePipeline::parse(stages, vars)?)))
    }

    /// An update of `kind` with no array filters, no positional query and the simple
    /// collation, which [`Update::parse_statement`] and [`Update::with_collation`] then set.
    fn unbound(kind: Kind) -> Self {
        Self { kind, array_filters: BTreeMap::new(), positional: None, collation: None }
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
            Some(list) => parse::parse_array_filters(list)?,
            None => BTreeMap::new(),
        };
        let mut used = BTreeSet::new();
        let mut update = match fields(spec).next() {
            Some((first, _)) if first.starts_with('$') => {
                let (tree, renames) = parse::parse_operators(spec, &filters, &mut used)?;
                Self::unbound(Kind::Operators { tree, renames })
            }
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
            Kind::Operators { tree, renames } => apply::apply_operators(
                tree,
                renames,
                &self.array_filters,
                self.positional.as_ref(),
                self.collation.as_deref(),
                doc,
                inserting,
            ),
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

fn values_equal(a: &Bson, b: &Bson) -> Result<bool, QueryError> {
    Ok(compare_values(to_raw(a)?.as_raw_bson_ref(), to_raw(b)?.as_raw_bson_ref()).is_eq())
}

/// A replacement document. Its `$`-prefixed top-level fields are refused when it replaces an
/// existing document, not here: an upsert that inserts it accepts them, as in mongod 5.0+.
fn parse_replacement(spec: &RawDocument) -> Result<Update, QueryError> {
    let mut doc = Document::new();
    for item in spec.iter() {
        let (key, value) = item.map_err(QueryError::invalid_bson)?;
        doc.insert(key.as_str(), to_bson(value)?);
    }
    Ok(Update::unbound(Kind::Replacement(doc)))
}
