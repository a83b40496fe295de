//! The plan of a `$text` query: the collection's text index, the equalities that fix its
//! leading fields, and mongod's refusals (no text index, a hint, a `$natural` sort, `$text`
//! under `$or`).

use std::sync::Arc;

use bson::{RawBson, RawBsonRef, RawDocument};

use super::{Access, Plan, QueryShape, TextPlan};
use crate::error::{Error, ErrorCode, Result};
use crate::query::SortSpec;
use crate::query::index_key::KeyOrder;
use crate::query::text::{TextScores, TextSearch};
use crate::storage::IndexSet;

/// The `$text` plan of `shape`, whose filter has a `$text`.
///
/// # Errors
/// 2 BadValue with a hint or a `$natural` sort, 27 IndexNotFound without a text index, 291
/// NoQueryExecutionPlans for `$text` under `$or` or without equalities on the text index's
/// leading fields.
pub(super) fn plan(indexes: &IndexSet, shape: &QueryShape<'_>) -> Result<Plan> {
    // Not at the top (nor in a top-level `$and`): under an `$or`.
    let Some(clause) = top_level_text(shape.filter) else {
        return Err(Error::new(
            ErrorCode::NoQueryExecutionPlans,
            "error processing query: planner returned error :: caused by :: Failed to produce a solution for TEXT \
             under OR - other non-TEXT clauses under OR have to be indexed as well.",
        ));
    };
    if shape.hint.is_some() {
        return Err(Error::new(ErrorCode::BadValue, "text and hint not allowed in same query"));
    }
    if shape.sort.and_then(SortSpec::natural).is_some() {
        return Err(Error::new(ErrorCode::BadValue, "text expression not allowed with $natural sort order"));
    }
    let index = indexes
        .iter()
        .find(|index| index.text.is_some() && !index.hidden)
        .ok_or_else(|| Error::new(ErrorCode::IndexNotFound, "text index required for $text query"))?;
    let search = TextSearch::parse(clause)?;
    let default_language = index.text.as_ref().map(|text| text.default_language()).unwrap_or_default();
    let mut prefix = Vec::new();
    for (field, order) in index.pattern.fields() {
        if *order == KeyOrder::TextTerm {
            break;
        }
        let value = equality_of(shape.filter, field.dotted()).ok_or_else(|| {
            Error::new(
                ErrorCode::NoQueryExecutionPlans,
                "error processing query: planner returned error :: caused by :: failed to use text index to satisfy \
                 $text query (if text index is compound, are equality predicates given for all prefix fields?)",
            )
        })?;
        prefix.push(value);
    }
    Ok(Plan {
        access: Access::Text(Box::new(TextPlan {
            index: index.clone(),
            prefix,
            query: Arc::new(search.query(default_language)),
            scores: TextScores::shared(),
        })),
        sort_provided: shape.sort.is_none_or(SortSpec::is_empty),
        covered: false,
        candidates: 1,
    })
}

/// The argument of a `$text` at the top of `filter` or in a top-level `$and`.
pub fn top_level_text(filter: &RawDocument) -> Option<RawBsonRef<'_>> {
    filter.iter().flatten().find_map(|(key, value)| match (key.as_str(), value) {
        ("$text", _) => Some(value),
        ("$and", RawBsonRef::Array(clauses)) => {
            clauses.into_iter().flatten().find_map(|clause| top_level_text(clause.as_document()?))
        }
        _ => None,
    })
}

/// The value `filter` fixes `field` to (`{field: v}` or `{field: {$eq: v}}`, at the top or in
/// a top-level `$and`), as mongod's `getIndexPrefix` reads it.
fn equality_of(filter: &RawDocument, field: &str) -> Option<RawBson> {
    filter.iter().flatten().find_map(|(key, value)| match (key.as_str(), value) {
        ("$and", RawBsonRef::Array(clauses)) => {
            clauses.into_iter().flatten().find_map(|clause| equality_of(clause.as_document()?, field))
        }
        (key, RawBsonRef::Document(condition)) if key == field => {
            let first = condition.iter().flatten().next();
            match first {
                Some((op, value)) if op.as_str() == "$eq" => Some(RawBson::from(value)),
                Some((op, _)) if op.as_str().starts_with('$') => None,
                _ => Some(RawBson::from(RawBsonRef::Document(condition))),
            }
        }
        (key, RawBsonRef::RegularExpression(_)) if key == field => None,
        (key, value) if key == field => Some(RawBson::from(value)),
        _ => None,
    })
}
