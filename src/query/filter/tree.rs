//! The filter tree: logical nodes (`$and`, `$or`, `$nor`, negation, `$elemMatch`, `$expr`,
//! `$jsonSchema`) over [`Predicate`]s, matched against documents, and the array position a
//! match went through (mongod's `elemMatchKey`).

use std::cmp::Ordering;
use std::ops::ControlFlow;
use std::sync::Arc;

use bson::{RawArray, RawBson, RawBsonRef, RawDocument};

use super::predicate::{BitTest, CompareOp, Predicate};
use crate::query::collation::Collation;
use crate::query::elements::items;
use crate::query::error::QueryError;
use crate::query::expr::{Expression, Variables};
use crate::query::json_schema::JsonSchema;
use crate::query::path::{self, FieldPath, Reached};

/// A node of the filter tree.
#[derive(Debug, Clone)]
pub(super) enum Expr {
    /// Every child matches (an empty `And` matches everything).
    And(Vec<Expr>),
    /// Some child matches.
    Or(Vec<Expr>),
    /// No child matches.
    Nor(Vec<Expr>),
    /// The child does not match (`$ne`, `$nin`, `$exists: false`): negation over the whole
    /// path, so `{a: {$ne: 1}}` rejects `{a: [1, 2]}`.
    Not(Box<Expr>),
    /// Something reached at `path` satisfies `pred`.
    Path { path: FieldPath, pred: Predicate },
    /// `$elemMatch`: an array reached at `path` (itself, not its elements: mongod does not
    /// expand a leaf array here) has an element satisfying `elem`.
    ElemMatch { path: FieldPath, elem: ElemMatch },
    /// Matches nothing (`$all: []`).
    Nothing,
    /// `$expr`: the aggregation expression's result is truthy for the whole document, with
    /// the command's `let` variables.
    Aggregate(Box<(Expression, Variables)>),
    /// `$jsonSchema`: the whole document satisfies the schema.
    Schema(Box<JsonSchema>),
    /// `$text`: matched by the text search that reads the collection (the planner forces
    /// it), so every document it hands on passes here.
    Text,
    /// `$near`/`$nearSphere`: as `$text`, satisfied by the nearness search the planner
    /// forces (which also orders the documents).
    Near,
}

/// The two forms of `$elemMatch`.
#[derive(Debug, Clone)]
pub(super) enum ElemMatch {
    /// `{$elemMatch: {$gt: 1, $lt: 5}}`: operators applied to each element itself, all by the
    /// same element. The children are pathless and evaluated with [`Expr::matches_single`].
    Value(Vec<Expr>),
    /// `{$elemMatch: {b: 1}}`: a filter applied to each document (or array) element.
    Object(Box<Expr>),
}

impl Expr {
    pub(super) fn matches(&self, doc: &RawDocument) -> bool {
        match self {
            Expr::And(children) => children.iter().all(|c| c.matches(doc)),
            Expr::Or(children) => children.iter().any(|c| c.matches(doc)),
            Expr::Nor(children) => !children.iter().any(|c| c.matches(doc)),
            Expr::Not(child) => !child.matches(doc),
            Expr::Path { path, pred } => path::any(doc, path, |reached| pred.matches(reached)),
            Expr::ElemMatch { path, elem } => path::any(doc, path, |reached| match reached {
                Reached::Value { value: RawBsonRef::Array(arr), array_element: false } => {
                    elem.first_match(arr).is_some()
                }
                _ => false,
            }),
            Expr::Nothing => false,
            // A failing expression does not match here; `try_matches` reports the error.
            Expr::Aggregate(expr) => expr.0.evaluate_truthy(doc, &expr.1).unwrap_or(false),
            Expr::Schema(schema) => schema.matches(doc),
            Expr::Text | Expr::Near => true,
        }
    }

    pub(super) fn set_collation(&mut self, collation: &Arc<Collation>) {
        match self {
            Expr::And(children) | Expr::Or(children) | Expr::Nor(children) => {
                children.iter_mut().for_each(|c| c.set_collation(collation));
            }
            Expr::Not(child) => child.set_collation(collation),
            Expr::Path { pred, .. } => pred.set_collation(collation),
            Expr::ElemMatch { elem: ElemMatch::Value(children), .. } => {
                children.iter_mut().for_each(|c| c.set_collation(collation));
            }
            Expr::ElemMatch { elem: ElemMatch::Object(filter), .. } => filter.set_collation(collation),
            Expr::Aggregate(expr) => expr.1.set_collation(Some(Arc::clone(collation))),
            // `$jsonSchema` compares with the simple collation, as in mongod.
            Expr::Nothing | Expr::Schema(_) | Expr::Text | Expr::Near => {}
        }
    }

    pub(super) fn bind_variables(&mut self, vars: &Variables) {
        match self {
            Expr::And(children) | Expr::Or(children) | Expr::Nor(children) => {
                children.iter_mut().for_each(|c| c.bind_variables(vars));
            }
            Expr::Not(child) => child.bind_variables(vars),
            Expr::Aggregate(expr) => {
                let collation = expr.1.collation().cloned();
                expr.1 = vars.clone();
                expr.1.set_collation(collation);
            }
            Expr::Path { .. } | Expr::ElemMatch { .. } | Expr::Nothing | Expr::Schema(_) | Expr::Text | Expr::Near => {}
        }
    }

    /// [`Expr::matches`] that reports a failing `$expr` instead of not matching. Only the
    /// logical nodes can hold an `$expr`, so the leaves fall back to [`Expr::matches`].
    pub(super) fn try_matches(&self, doc: &RawDocument) -> Result<bool, QueryError> {
        match self {
            Expr::And(children) => {
                for child in children {
                    if !child.try_matches(doc)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Expr::Or(children) | Expr::Nor(children) => {
                let mut any = false;
                for child in children {
                    if child.try_matches(doc)? {
                        any = true;
                        break;
                    }
                }
                Ok(any == matches!(self, Expr::Or(_)))
            }
            Expr::Not(child) => Ok(!child.try_matches(doc)?),
            Expr::Aggregate(expr) => expr.0.evaluate_truthy(doc, &expr.1),
            _ => Ok(self.matches(doc)),
        }
    }

    /// Records mongod's `elemMatchKey` for a matching document (see [`Filter::match_key`]);
    /// `canonical` visits conjunctions in the canonical query's order.
    pub(super) fn record_key(&self, doc: &RawDocument, key: &mut Option<usize>, canonical: bool) {
        match self {
            Expr::And(children) => {
                let mut ordered: Vec<&Expr> = Vec::new();
                flatten_and(children, &mut ordered);
                if canonical {
                    ordered.sort_by(|a, b| a.canonical_cmp(b));
                }
                ordered.into_iter().for_each(|c| c.record_key(doc, key, canonical));
            }
            Expr::Or(children) => match or_shape(children) {
                OrShape::Single(only) => only.record_key(doc, key, canonical),
                OrShape::In(path, preds) => {
                    record_path_key(doc, path, |reached| preds.iter().any(|p| p.matches(reached)), key);
                }
                OrShape::Plain => {}
            },
            Expr::Path { path, pred } => record_path_key(doc, path, |reached| pred.matches(reached), key),
            Expr::ElemMatch { path, elem } => {
                let _ = path::walk_positions(doc, path, &mut |reached, at| {
                    if let Reached::Value { value: RawBsonRef::Array(arr), array_element: false } = reached
                        && let Some(position) = elem.first_match(arr)
                    {
                        // An array above the matched one takes precedence, as in mongod.
                        *key = Some(at.unwrap_or(position));
                        return ControlFlow::Break(());
                    }
                    ControlFlow::Continue(())
                });
            }
            Expr::Nor(_)
            | Expr::Not(_)
            | Expr::Nothing
            | Expr::Aggregate(_)
            | Expr::Schema(_)
            | Expr::Text
            | Expr::Near => {}
        }
    }

    /// mongod's `matchExpressionComparator`, which sorts a canonical query: by operator (in
    /// the order of its `MatchType` enum), then path, then children.
    fn canonical_cmp(&self, other: &Expr) -> Ordering {
        self.match_type().cmp(&other.match_type()).then_with(|| self.path_name().cmp(other.path_name())).then_with(
            || {
                let (mine, theirs) = (self.children(), other.children());
                mine.iter()
                    .zip(theirs)
                    .map(|(a, b)| a.canonical_cmp(b))
                    .find(|o| o.is_ne())
                    .unwrap_or_else(|| mine.len().cmp(&theirs.len()))
            },
        )
    }

    /// The rank of mongod's `MatchType` for this node.
    fn match_type(&self) -> u8 {
        match self {
            Expr::And(_) | Expr::Schema(_) => 0,
            Expr::Or(children) => match or_shape(children) {
                OrShape::Single(only) => only.match_type(),
                OrShape::In(..) => 13,
                OrShape::Plain => 1,
            },
            Expr::ElemMatch { elem: ElemMatch::Object(_), .. } => 2,
            Expr::ElemMatch { elem: ElemMatch::Value(_), .. } => 3,
            Expr::Path { pred, .. } => match pred {
                Predicate::Size(_) => 4,
                Predicate::Compare { op, .. } => match op {
                    CompareOp::Eq => 5,
                    CompareOp::Lte => 6,
                    CompareOp::Lt => 7,
                    CompareOp::Gt => 8,
                    CompareOp::Gte => 9,
                },
                Predicate::Regex(_) => 10,
                Predicate::Mod { .. } => 11,
                Predicate::Exists => 12,
                Predicate::In(_) => 13,
                Predicate::Bits { test, .. } => match test {
                    BitTest::AllSet => 14,
                    BitTest::AllClear => 15,
                    BitTest::AnySet => 16,
                    BitTest::AnyClear => 17,
                },
                Predicate::Type(_) => 20,
                Predicate::Geo(_) => 21,
            },
            Expr::Not(_) => 18,
            Expr::Nor(_) => 19,
            Expr::Text | Expr::Near => 21,
            Expr::Aggregate(_) => 23,
            Expr::Nothing => 24,
        }
    }

    fn path_name(&self) -> &str {
        match self {
            Expr::Path { path, .. } | Expr::ElemMatch { path, .. } => path.dotted(),
            Expr::Or(children) => match or_shape(children) {
                OrShape::Single(only) => only.path_name(),
                OrShape::In(path, _) => path.dotted(),
                OrShape::Plain => "",
            },
            _ => "",
        }
    }

    fn children(&self) -> &[Expr] {
        match self {
            Expr::And(children) | Expr::Or(children) | Expr::Nor(children) => children,
            Expr::Not(child) => std::slice::from_ref(child.as_ref()),
            _ => &[],
        }
    }

    /// Evaluates a pathless expression (a child of a value-form `$elemMatch`) against one value,
    /// without expanding arrays: mongod's `matchesSingleElement`.
    fn matches_single(&self, value: RawBsonRef<'_>) -> bool {
        match self {
            Expr::And(children) => children.iter().all(|c| c.matches_single(value)),
            Expr::Or(children) => children.iter().any(|c| c.matches_single(value)),
            Expr::Nor(children) => !children.iter().any(|c| c.matches_single(value)),
            Expr::Not(child) => !child.matches_single(value),
            Expr::Path { pred, .. } => pred.matches(Reached::Value { value, array_element: false }),
            Expr::ElemMatch { elem, .. } => match value {
                RawBsonRef::Array(arr) => elem.first_match(arr).is_some(),
                _ => false,
            },
            // `$expr` and `$jsonSchema` are top-level operators: never among pathless children.
            Expr::Nothing | Expr::Aggregate(_) | Expr::Schema(_) | Expr::Text | Expr::Near => false,
        }
    }

    pub(super) fn has_path_with_prefix(&self, field: &str) -> bool {
        match self {
            Expr::And(children) | Expr::Or(children) | Expr::Nor(children) => {
                children.iter().any(|c| c.has_path_with_prefix(field))
            }
            Expr::Not(child) => child.has_path_with_prefix(field),
            Expr::Path { path, .. } | Expr::ElemMatch { path, .. } => {
                path.parts().first().is_some_and(|first| first == field)
            }
            Expr::Nothing | Expr::Aggregate(_) | Expr::Schema(_) | Expr::Text | Expr::Near => false,
        }
    }
}

/// Records the position of the first array element through which `test` holds at `path`.
fn record_path_key(
    doc: &RawDocument,
    path: &FieldPath,
    mut test: impl FnMut(Reached<'_>) -> bool,
    key: &mut Option<usize>,
) {
    let _ = path::walk_positions(doc, path, &mut |reached, at| {
        if test(reached) {
            if at.is_some() {
                *key = at;
            }
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
}

/// What mongod's optimizer makes of an `$or`.
enum OrShape<'e> {
    /// One clause (after absorbing nested `$or`s): the `$or` is that clause.
    Single(&'e Expr),
    /// Equalities and regexes on one path: an `$in`.
    In(&'e FieldPath, Vec<&'e Predicate>),
    /// A disjunction that stays one.
    Plain,
}

fn or_shape(children: &[Expr]) -> OrShape<'_> {
    let mut clauses = Vec::new();
    flatten_or(children, &mut clauses);
    if let [only] = clauses.as_slice() {
        return OrShape::Single(only);
    }
    match in_list_rewrite(&clauses) {
        Some((path, preds)) => OrShape::In(path, preds),
        None => OrShape::Plain,
    }
}

/// The children of a conjunction as mongod's optimizer leaves them: a one-clause disjunction
/// becomes its clause in place, and nested conjunctions are absorbed, their children
/// appended after the others (as `ListOfMatchExpression::getOptimizer` does).
fn flatten_and<'e>(children: &'e [Expr], out: &mut Vec<&'e Expr>) {
    let mut absorbed = Vec::new();
    for child in children {
        let optimized = match child {
            Expr::Or(clauses) => match or_shape(clauses) {
                OrShape::Single(only) => only,
                _ => child,
            },
            other => other,
        };
        match optimized {
            Expr::And(grandchildren) => flatten_and(grandchildren, &mut absorbed),
            other => out.push(other),
        }
    }
    out.extend(absorbed);
}

/// The clauses of nested `$or`s, as mongod's optimizer absorbs them.
fn flatten_or<'e>(children: &'e [Expr], out: &mut Vec<&'e Expr>) {
    for child in children {
        match child {
            Expr::Or(grandchildren) => flatten_or(grandchildren, out),
            other => out.push(other),
        }
    }
}

/// mongod's rewrite of an `$or` whose every clause is an equality (not to a regex) or a
/// regex on the same path into one `$in`: the path and the clauses' tests.
fn in_list_rewrite<'e>(clauses: &[&'e Expr]) -> Option<(&'e FieldPath, Vec<&'e Predicate>)> {
    let mut path = None;
    let mut preds = Vec::new();
    for clause in clauses {
        let Expr::Path { path: p, pred } = clause else { return None };
        let eligible = match pred {
            Predicate::Compare { op: CompareOp::Eq, rhs, .. } => !matches!(rhs, RawBson::RegularExpression(_)),
            Predicate::Regex(_) => true,
            _ => false,
        };
        if !eligible || path.is_some_and(|seen: &FieldPath| seen.parts() != p.parts()) {
            return None;
        }
        path = Some(p);
        preds.push(pred);
    }
    path.map(|p| (p, preds))
}

impl ElemMatch {
    /// The position of the first element of `arr` that satisfies this `$elemMatch`.
    fn first_match(&self, arr: &RawArray) -> Option<usize> {
        items(arr).position(|element| match self {
            ElemMatch::Value(children) => children.iter().all(|c| c.matches_single(element)),
            ElemMatch::Object(filter) => match element {
                RawBsonRef::Document(doc) => filter.matches(doc),
                // An array element is matched as a document whose fields are "0", "1", ...
                RawBsonRef::Array(nested) => {
                    RawDocument::from_bytes(nested.as_bytes()).is_ok_and(|doc| filter.matches(doc))
                }
                _ => false,
            },
        })
    }
}

impl Expr {
    /// How many `$text` nodes the tree holds, and whether one is under a `$nor` or inside an
    /// `$elemMatch`, where mongod refuses it.
    pub(super) fn text_nodes(&self, under_nor: bool, found: &mut TextNodes) {
        self.special_nodes(under_nor, false, found);
    }

    /// [`Expr::text_nodes`], also counting `$near` nodes and whether one is below the top
    /// (under anything but the top-level conjunction).
    fn special_nodes(&self, under_nor: bool, nested: bool, found: &mut TextNodes) {
        match self {
            Expr::Text => {
                found.count += 1;
                found.under_nor |= under_nor;
            }
            Expr::Near => {
                found.near += 1;
                found.near_nested |= nested;
            }
            Expr::And(children) => children.iter().for_each(|c| c.special_nodes(under_nor, nested, found)),
            Expr::Or(children) => children.iter().for_each(|c| c.special_nodes(under_nor, true, found)),
            Expr::Nor(children) => children.iter().for_each(|c| c.special_nodes(true, true, found)),
            Expr::Not(child) => child.special_nodes(under_nor, true, found),
            Expr::ElemMatch { elem: ElemMatch::Object(inner), .. } => {
                let mut inside = TextNodes::default();
                inner.special_nodes(under_nor, true, &mut inside);
                found.count += inside.count;
                found.near += inside.near;
                found.near_nested |= inside.near > 0;
                found.in_elem_match |= inside.count > 0;
            }
            Expr::ElemMatch { elem: ElemMatch::Value(_), .. }
            | Expr::Path { .. }
            | Expr::Nothing
            | Expr::Aggregate(_)
            | Expr::Schema(_) => {}
        }
    }
}

/// What [`Expr::text_nodes`] found.
#[derive(Debug, Default)]
pub(super) struct TextNodes {
    pub(super) count: usize,
    pub(super) under_nor: bool,
    pub(super) in_elem_match: bool,
    /// `$near` nodes, and whether one is below the top-level conjunction.
    pub(super) near: usize,
    pub(super) near_nested: bool,
}
