//! Query filters: parsed once into a tree of predicates, then matched against documents.
//!
//! Supported: implicit equality (regular expressions included), `$eq $ne $gt $gte $lt $lte
//! $in $nin $exists $regex $not $type $mod $size $all $elemMatch $bitsAllSet $bitsAnySet
//! $bitsAllClear $bitsAnyClear` on dotted paths, `$and $or $nor $comment`, `$expr` (an
//! aggregation [`Expression`]) and `$jsonSchema` (a [`JsonSchema`]). Operators mongod knows
//! but Monarch has not built yet (`$text`, geo) answer 238
//! NotImplemented; unknown ones answer mongod's 2 BadValue.
//!
//! The layers, each importing only those below it:
//! - [`regex`]: compiled regular expressions; [`argument`]: mongod's coercions of arguments;
//! - [`predicate`]: the leaf tests of one value (`$jsonSchema` builds on these and the above);
//! - `tree`: the logical nodes over predicates, `$expr` and `$jsonSchema`, and how they match;
//! - `parse`: filter documents into the tree; `seed`: an upsert's document from the tree;
//! - this module: [`Filter`], the compiled filter the rest of the server uses.

pub(super) mod argument;
mod parse;
pub(super) mod predicate;
pub(super) mod regex;
mod seed;
#[cfg(test)]
mod tests;
mod tree;

use std::sync::Arc;

use bson::{Document, RawDocument};

pub(crate) use argument::true_value;
pub(crate) use parse::is_operator_document;
pub(crate) use seed::move_id_first;

use super::collation::Collation;
use super::error::QueryError;
use super::expr::Variables;
use crate::error::ErrorCode;
use tree::Expr;

/// mongod's message for a geospatial sort where none can run (a validator, a `$match`).
pub(crate) const GEO_NEAR_NOT_ALLOWED: &str = "$geoNear, $near, and $nearSphere are not allowed in this context, as these \
                                    operators require sorting geospatial data. If you do not need sort, consider \
                                    using $geoWithin instead. Check out \
                                    https://dochub.mongodb.org/core/near-sort-operation and \
                                    https://dochub.mongodb.org/core/nearSphere-sort-operationfor more details.";

/// mongod's 5626500 for `$near`/`$nearSphere` where no nearness search runs.
fn near_not_allowed() -> QueryError {
    QueryError::new(ErrorCode::Location5626500, GEO_NEAR_NOT_ALLOWED)
}

/// A compiled query filter.
#[derive(Debug, Clone)]
pub struct Filter {
    root: Expr,
    /// Whether the filter has a `$text`, which only a text search can satisfy.
    has_text: bool,
    /// Whether it has a `$near` or `$nearSphere`, which only a nearness search satisfies.
    has_near: bool,
}

impl Filter {
    /// Compiles a filter document.
    ///
    /// # Errors
    /// 2 BadValue for unknown operators and malformed arguments (mongod's messages), 238
    /// NotImplemented for operators not built yet.
    pub fn parse(filter: &RawDocument) -> Result<Self, QueryError> {
        let parsed = Self::parse_query(filter)?;
        if parsed.has_text() {
            return Err(QueryError::bad_value("$text is not allowed in this context"));
        }
        if parsed.has_near {
            return Err(near_not_allowed());
        }
        Ok(parsed)
    }

    /// Compiles the filter of a query that the planner runs (`find`, `count`, `distinct`,
    /// writes, a pipeline's first `$match`), where `$text` may appear once, outside `$nor`
    /// and `$elemMatch`.
    ///
    /// # Errors
    /// As [`Filter::parse`], and 2 BadValue for misplaced or repeated `$text`.
    pub fn parse_query(filter: &RawDocument) -> Result<Self, QueryError> {
        let root = parse::parse_document(filter)?;
        let mut text = tree::TextNodes::default();
        root.text_nodes(false, &mut text);
        if text.in_elem_match {
            return Err(QueryError::bad_value("$text is not allowed in this context"));
        }
        if text.count > 1 {
            return Err(QueryError::bad_value("Too many text expressions"));
        }
        if text.under_nor {
            return Err(QueryError::bad_value("text expression not allowed in nor"));
        }
        if text.near > 1 {
            return Err(QueryError::bad_value("Too many geoNear expressions"));
        }
        if text.near_nested {
            return Err(QueryError::bad_value("geo $near must be top-level expr"));
        }
        if text.near == 1 && text.count == 1 {
            return Err(QueryError::bad_value("text and geoNear not allowed in same query"));
        }
        Ok(Self { root, has_text: text.count == 1, has_near: text.near == 1 })
    }

    /// Whether the filter has a `$text` (only [`Filter::parse_query`] allows one).
    pub fn has_text(&self) -> bool {
        self.has_text
    }

    /// Whether the filter has a `$near` or `$nearSphere` (only [`Filter::parse_query`]
    /// allows one).
    pub fn has_near(&self) -> bool {
        self.has_near
    }

    /// Compiles the filter of an aggregation `$match` stage, where mongod refuses `$where`
    /// before it looks for a JavaScript engine.
    ///
    /// # Errors
    /// As [`Filter::parse`], with 2 BadValue for `$where`.
    pub fn parse_match_stage(filter: &RawDocument) -> Result<Self, QueryError> {
        let parsed = Self::parse_query(filter).map_err(|err| {
            if err.code() == ErrorCode::Location6108304 {
                QueryError::bad_value("$where is not allowed in this context")
            } else {
                err
            }
        })?;
        // A pipeline sorts by distance only in `$geoNear`.
        if parsed.has_near {
            return Err(near_not_allowed());
        }
        Ok(parsed)
    }

    /// Binds a command's `let` variables for every `$expr` of the filter.
    #[must_use]
    pub fn with_variables(mut self, vars: &Variables) -> Self {
        self.root.bind_variables(vars);
        self
    }

    /// Makes the filter's comparisons (`$eq`, ranges, `$in`, and those of `$expr`) compare
    /// strings under `collation`; `None` keeps the simple collation. `$regex` ignores the
    /// collation, as in mongod.
    #[must_use]
    pub fn with_collation(mut self, collation: Option<&Arc<Collation>>) -> Self {
        if let Some(collation) = collation {
            self.set_collation(collation);
        }
        self
    }

    /// [`Filter::with_collation`] in place.
    pub(crate) fn set_collation(&mut self, collation: &Arc<Collation>) {
        self.root.set_collation(collation);
    }

    /// Whether `doc` matches. An `$expr` whose evaluation fails (a `$divide` by zero, say)
    /// does not match; use [`Filter::try_matches`] where mongod would fail the command.
    pub fn matches(&self, doc: &RawDocument) -> bool {
        self.root.matches(doc)
    }

    /// Whether `doc` matches, failing as mongod does when an `$expr` fails to evaluate.
    ///
    /// # Errors
    /// The evaluation error of an `$expr`.
    pub fn try_matches(&self, doc: &RawDocument) -> Result<bool, QueryError> {
        self.root.try_matches(doc)
    }

    /// Matches `doc` and, when it matches through an array, returns the position in the
    /// outermost array traversed of the element that made it match (mongod's `elemMatchKey`,
    /// which a positional projection `a.$` uses). `None` when `doc` does not match or matched
    /// without reaching into an array.
    pub fn first_array_match(&self, doc: &RawDocument) -> Option<usize> {
        let mut key = None;
        if self.root.matches(doc) {
            self.root.record_key(doc, &mut key, false);
        }
        key
    }

    /// mongod's `elemMatchKey` for a document already known to match (the array position the
    /// positional `$` of an update stands for); `$expr` is not evaluated again, so the
    /// command's `let` variables are not needed here.
    ///
    /// As in mongod's matcher: a conjunction keeps the last key a child records; `$or`,
    /// `$nor` and negations record none, except an `$or` that mongod's optimizer turns into
    /// something else (one clause, or equalities and regexes on one path, which become an
    /// `$in`). An update matches with mongod's canonical query, whose conjunctions are sorted
    /// by operator and path, so "last" is in that order, not the query's.
    pub fn match_key(&self, doc: &RawDocument) -> Option<usize> {
        let mut key = None;
        self.root.record_key(doc, &mut key, true);
        key
    }

    /// Whether some leaf of the filter has a path whose first component is `field`: mongod's
    /// check that a positional projection on `field` can be resolved by this query.
    pub fn has_path_with_prefix(&self, field: &str) -> bool {
        self.root.has_path_with_prefix(field)
    }

    /// The document an upsert starts from: the filter's equalities (also inside `$and`, and a
    /// one-element `$in` or `$or`), dotted paths turned into nested documents, `_id` first.
    ///
    /// # Errors
    /// 54 NotSingleValueField when two equalities claim the same path or one path and its
    /// prefix; 28 PathNotViable when a dotted equality runs through another one's scalar.
    pub fn equality_seed(&self) -> Result<Document, QueryError> {
        seed::equality_seed(&self.root)
    }
}
