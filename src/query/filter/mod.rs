//! Query filters: parsed once into a tree of predicates, then matched against documents.
//!
//! Supported: implicit equality (regular expressions included), `$eq $ne $gt $gte $lt $lte
//! $in $nin $exists $regex $not $type $mod $size $all $elemMatch $bitsAllSet $bitsAnySet
//! $bitsAllClear $bitsAnyClear` on dotted paths, `$and $or $nor $comment`, `$expr` (an
//! aggregation [`Expression`]) and `$jsonSchema` (a [`JsonSchema`]). Operators mongod knows
//! but Monarch has not built yet (`$text`, geo) answer 238
//! NotImplemented; unknown ones answer mongod's 2 BadValue. Leaf tests of one value are
//! [`Predicate`]s; operators that look at arrays as a whole or negate are [`Expr`] nodes.

use std::cmp::Ordering;

use std::ops::ControlFlow;
use std::sync::Arc;

use bson::spec::ElementType;
use bson::{Bson, Document, RawArray, RawBson, RawBsonRef, RawDocument};

use super::collation::Collation;
use super::error::QueryError;
use super::expr::{Expression, Variables};
use super::json_schema::JsonSchema;
use super::number::Number;
use super::order::{MISSING_BRACKET, NULL_BRACKET, canonical_type, compare_collated, compare_values};
use super::path::{self, FieldPath, Reached, items};
use super::render;
use crate::error::ErrorCode;

/// A compiled query filter.
#[derive(Debug, Clone)]
pub struct Filter {
    root: Expr,
}

/// A node of the filter tree.
#[derive(Debug, Clone)]
enum Expr {
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
}

/// mongod's message for `$where` when it has no JavaScript engine.
const NO_SCRIPT_ENGINE: &str = "no globalScriptEngine in $where parsing";

/// The two forms of `$elemMatch`.
#[derive(Debug, Clone)]
enum ElemMatch {
    /// `{$elemMatch: {$gt: 1, $lt: 5}}`: operators applied to each element itself, all by the
    /// same element. The children are pathless and evaluated with [`Expr::matches_single`].
    Value(Vec<Expr>),
    /// `{$elemMatch: {b: 1}}`: a filter applied to each document (or array) element.
    Object(Box<Expr>),
}

/// A test of one value reached at a path.
#[derive(Debug, Clone)]
enum Predicate {
    /// `$eq`, `$lt`, `$lte`, `$gt`, `$gte` against a value, strings under `collation`.
    Compare { op: CompareOp, rhs: RawBson, collation: Option<Arc<Collation>> },
    /// `$in`: equality with any of a sorted list.
    In(InList),
    /// `$exists: true`.
    Exists,
    /// `$regex`, or a regular expression as the value of an equality.
    Regex(Box<RegexPredicate>),
    /// `$type`.
    Type(TypeSet),
    /// `$mod: [divisor, remainder]`, both already truncated to int64.
    Mod { divisor: i64, remainder: i64 },
    /// `$size`: an array (not an element of one) of exactly this many elements.
    Size(i64),
    /// `$bitsAllSet` and friends, the mask turned into bit positions.
    Bits { test: BitTest, positions: Vec<u32> },
}

/// A compiled regular expression with the pattern and options as written, so that a BSON
/// regex value equal to it matches too (mongod compares those textually).
#[derive(Debug, Clone)]
pub(super) struct RegexPredicate {
    pattern: String,
    options: String,
    compiled: regex::Regex,
}

/// The types a `$type` accepts.
#[derive(Debug, Clone, Default)]
struct TypeSet {
    /// The alias "number": every numeric type.
    all_numbers: bool,
    types: Vec<ElementType>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BitTest {
    AllSet,
    AnySet,
    AllClear,
    AnyClear,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CompareOp {
    Eq,
    Lt,
    Lte,
    Gt,
    Gte,
}

#[derive(Debug, Clone)]
struct InList {
    /// Sorted in BSON order, for binary search.
    values: Vec<RawBson>,
    /// A null in the list also matches missing and undefined, as `{$eq: null}` does.
    has_null: bool,
    /// Regular expressions in the list match strings as `$regex` does.
    regexes: Vec<RegexPredicate>,
    /// The collation `values` are sorted and searched under.
    collation: Option<Arc<Collation>>,
}

impl Filter {
    /// Compiles a filter document.
    ///
    /// # Errors
    /// 2 BadValue for unknown operators and malformed arguments (mongod's messages), 238
    /// NotImplemented for operators not built yet.
    pub fn parse(filter: &RawDocument) -> Result<Self, QueryError> {
        Ok(Self { root: parse_document(filter)? })
    }

    /// Compiles the filter of an aggregation `$match` stage, where mongod refuses `$where`
    /// before it looks for a JavaScript engine.
    ///
    /// # Errors
    /// As [`Filter::parse`], with 2 BadValue for `$where`.
    pub fn parse_match_stage(filter: &RawDocument) -> Result<Self, QueryError> {
        Self::parse(filter).map_err(|err| {
            if err.code() == ErrorCode::Location6108304 {
                QueryError::bad_value("$where is not allowed in this context")
            } else {
                err
            }
        })
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
        let mut equalities: Vec<(&str, &RawBson)> = Vec::new();
        collect_equalities(&self.root, &mut equalities)?;
        // mongod keeps them in a map ordered by path and sets them in that order.
        equalities.sort_by(|a, b| a.0.cmp(b.0));
        let mut seed = Document::new();
        for (path, value) in equalities {
            let value = Bson::try_from(value.clone()).map_err(QueryError::invalid_bson)?;
            set_seed_path(&mut seed, path, value)?;
        }
        Ok(move_id_first(seed))
    }
}

impl Expr {
    fn matches(&self, doc: &RawDocument) -> bool {
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
        }
    }

    fn set_collation(&mut self, collation: &Arc<Collation>) {
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
            Expr::Nothing | Expr::Schema(_) => {}
        }
    }

    fn bind_variables(&mut self, vars: &Variables) {
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
            Expr::Path { .. } | Expr::ElemMatch { .. } | Expr::Nothing | Expr::Schema(_) => {}
        }
    }

    /// [`Expr::matches`] that reports a failing `$expr` instead of not matching. Only the
    /// logical nodes can hold an `$expr`, so the leaves fall back to [`Expr::matches`].
    fn try_matches(&self, doc: &RawDocument) -> Result<bool, QueryError> {
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
    fn record_key(&self, doc: &RawDocument, key: &mut Option<usize>, canonical: bool) {
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
            Expr::Nor(_) | Expr::Not(_) | Expr::Nothing | Expr::Aggregate(_) | Expr::Schema(_) => {}
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
            },
            Expr::Not(_) => 18,
            Expr::Nor(_) => 19,
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
            Expr::Nothing | Expr::Aggregate(_) | Expr::Schema(_) => false,
        }
    }

    fn has_path_with_prefix(&self, field: &str) -> bool {
        match self {
            Expr::And(children) | Expr::Or(children) | Expr::Nor(children) => {
                children.iter().any(|c| c.has_path_with_prefix(field))
            }
            Expr::Not(child) => child.has_path_with_prefix(field),
            Expr::Path { path, .. } | Expr::ElemMatch { path, .. } => {
                path.parts().first().is_some_and(|first| first == field)
            }
            Expr::Nothing | Expr::Aggregate(_) | Expr::Schema(_) => false,
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

impl Predicate {
    fn set_collation(&mut self, to: &Arc<Collation>) {
        match self {
            Predicate::Compare { collation, .. } => *collation = Some(Arc::clone(to)),
            Predicate::In(list) => {
                list.values.sort_by(|a, b| compare_collated(a.as_raw_bson_ref(), b.as_raw_bson_ref(), Some(to)));
                list.collation = Some(Arc::clone(to));
            }
            _ => {}
        }
    }

    fn matches(&self, reached: Reached<'_>) -> bool {
        let value = match reached {
            Reached::Missing => None,
            Reached::Value { value, .. } => Some(value),
        };
        match self {
            Predicate::Compare { op, rhs, collation } => {
                compare_matches(*op, value, rhs.as_raw_bson_ref(), collation.as_deref())
            }
            Predicate::In(list) => list.contains(value),
            Predicate::Exists => value.is_some(),
            Predicate::Regex(re) => value.is_some_and(|v| re.matches(v)),
            Predicate::Type(types) => value.is_some_and(|v| types.contains(v)),
            Predicate::Mod { divisor, remainder } => value
                .and_then(Number::from_raw)
                .and_then(truncate_to_i64)
                // wrapping_rem: i64::MIN % -1 is 0, as mongod's overflow-safe mod says.
                .is_some_and(|dividend| dividend.wrapping_rem(*divisor) == *remainder),
            Predicate::Size(n) => match reached {
                Reached::Value { value: RawBsonRef::Array(arr), array_element: false } => {
                    i64::try_from(items(arr).count()).is_ok_and(|len| len == *n)
                }
                _ => false,
            },
            Predicate::Bits { test, positions } => value.is_some_and(|v| bits_match(*test, positions, v)),
        }
    }
}

/// A number truncated toward zero, if it is finite and fits an int64 (mongod's `$mod`
/// dividend rule: anything else never matches).
fn truncate_to_i64(n: Number) -> Option<i64> {
    match n {
        Number::Int32(i) => Some(i64::from(i)),
        Number::Int64(i) => Some(i),
        Number::Double(d) => double_to_i64(d.trunc()),
        Number::Decimal(d) => d.to_string().parse::<f64>().ok().and_then(|d| double_to_i64(d.trunc())),
    }
}

/// An integral double as an int64, if it is one exactly.
fn double_to_i64(d: f64) -> Option<i64> {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if !d.is_finite() || !(-TWO_POW_63..TWO_POW_63).contains(&d) || d.fract() != 0.0 {
        return None;
    }
    // The range and integrality checks above make the cast exact.
    Some(d as i64)
}

/// mongod's `BitTestMatchExpression::matchesSingleElement`: numbers must be integral int64
/// values (bits past 63 read as the sign), BinData is read little-endian with missing bytes
/// clear, and everything else never matches.
fn bits_match(test: BitTest, positions: &[u32], value: RawBsonRef<'_>) -> bool {
    /// What the bits are read from.
    enum Bits<'a> {
        Number(i64),
        Binary(&'a [u8]),
    }
    let bits = match value {
        RawBsonRef::Binary(bin) => Bits::Binary(bin.bytes),
        other => match Number::from_raw(other) {
            Some(Number::Int32(i)) => Bits::Number(i64::from(i)),
            Some(Number::Int64(i)) => Bits::Number(i),
            Some(Number::Double(d)) => match double_to_i64(d) {
                Some(i) => Bits::Number(i),
                None => return false,
            },
            Some(Number::Decimal(d)) => match d.to_string().parse::<f64>().ok().and_then(double_to_i64) {
                Some(i) => Bits::Number(i),
                None => return false,
            },
            None => return false,
        },
    };
    let is_set = |p: u32| match bits {
        Bits::Number(n) if p >= 64 => n < 0,
        Bits::Number(n) => n >> p & 1 == 1,
        Bits::Binary(bytes) => {
            let byte = usize::try_from(p / 8).ok().and_then(|i| bytes.get(i)).copied().unwrap_or(0);
            byte >> (p % 8) & 1 == 1
        }
    };
    match test {
        BitTest::AllSet => positions.iter().all(|&p| is_set(p)),
        BitTest::AnySet => positions.iter().any(|&p| is_set(p)),
        BitTest::AllClear => positions.iter().all(|&p| !is_set(p)),
        BitTest::AnyClear => positions.iter().any(|&p| !is_set(p)),
    }
}

impl RegexPredicate {
    /// Compiles a BSON regular expression value.
    fn from_value(re: bson::RawRegexRef<'_>) -> Result<Self, QueryError> {
        Self::new(re.pattern.as_str(), re.options.as_str())
    }

    /// Compiles `pattern` with mongod's options `i m s x` (`u` is accepted: matching is always
    /// Unicode-aware here).
    pub(super) fn new(pattern: &str, options: &str) -> Result<Self, QueryError> {
        // mongod checks these before the options; `MaxPatternSize` is its length limit.
        if pattern.len() > 32_764 {
            return Err(QueryError::bad_value("Regular expression is too long"));
        }
        if pattern.contains('\0') {
            return Err(QueryError::bad_value("Regular expression cannot contain an embedded null byte"));
        }
        let mut builder = regex::RegexBuilder::new(&pcre_end_anchors(pattern, options.contains('m')));
        for flag in options.chars() {
            match flag {
                'i' => builder.case_insensitive(true),
                'm' => builder.multi_line(true),
                's' => builder.dot_matches_new_line(true),
                'x' => builder.ignore_whitespace(true),
                'u' => &mut builder,
                _ => {
                    // mongod prefixes the operator name, empty for a query `$regex`, and a
                    // space: the leading space is verbatim.
                    return Err(QueryError::new(
                        ErrorCode::Location51108,
                        format!(" invalid flag in regex options: {flag}"),
                    ));
                }
            };
        }
        let compiled = builder.build().map_err(|err| {
            // The regex crate explains syntax errors over several lines; the last one names
            // the problem. PCRE-only syntax (lookaround, backreferences) lands here too.
            let text = err.to_string();
            let detail = text.lines().rev().find_map(|l| l.strip_prefix("error: ")).unwrap_or(&text).to_owned();
            QueryError::new(ErrorCode::Location51091, format!("Regular expression is invalid: {detail}"))
        })?;
        Ok(Self { pattern: pattern.to_owned(), options: options.to_owned(), compiled })
    }

    pub(super) fn matches(&self, value: RawBsonRef<'_>) -> bool {
        match value {
            RawBsonRef::String(s) | RawBsonRef::Symbol(s) => self.compiled.is_match(s),
            RawBsonRef::RegularExpression(re) => {
                re.pattern.as_str() == self.pattern && re.options.as_str() == self.options
            }
            _ => false,
        }
    }
}

/// Rewrites PCRE's end anchors for the regex crate: without `m`, PCRE's `$` (and always its
/// `\Z`) also matches before a newline that ends the subject, where the regex crate's `$`
/// matches only at the very end. Escapes and character classes are copied as they are.
fn pcre_end_anchors(pattern: &str, multi_line: bool) -> String {
    const END_OR_FINAL_NEWLINE: &str = r"(?:\n?\z)";
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('Z') => out.push_str(END_OR_FINAL_NEWLINE),
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push('\\'),
            },
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                // A `]` first in a class (after an optional `^`) is a literal.
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    out.push(']');
                    chars.next();
                }
            }
            // A POSIX class such as `[:alpha:]` inside a class does not end it.
            '[' if chars.peek() == Some(&':') => {
                out.push('[');
                while let Some(inner) = chars.next() {
                    out.push(inner);
                    if inner == ':' && chars.peek() == Some(&']') {
                        out.push(']');
                        chars.next();
                        break;
                    }
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '$' if !in_class && !multi_line => out.push_str(END_OR_FINAL_NEWLINE),
            _ => out.push(c),
        }
    }
    out
}

impl TypeSet {
    fn contains(&self, value: RawBsonRef<'_>) -> bool {
        (self.all_numbers && Number::from_raw(value).is_some()) || self.types.contains(&value.element_type())
    }
}

/// mongod's `ComparisonMatchExpression::matchesSingleElement`; `None` is a missing value.
pub(super) fn compare_matches(
    op: CompareOp,
    value: Option<RawBsonRef<'_>>,
    rhs: RawBsonRef<'_>,
    collation: Option<&Collation>,
) -> bool {
    let value_bracket = value.map_or(MISSING_BRACKET, canonical_type);
    let rhs_bracket = canonical_type(rhs);
    if value_bracket != rhs_bracket {
        // Null matches missing and undefined for the comparisons that include equality.
        if (value_bracket, rhs_bracket) == (MISSING_BRACKET, NULL_BRACKET) {
            return matches!(op, CompareOp::Eq | CompareOp::Lte | CompareOp::Gte);
        }
        return match rhs {
            RawBsonRef::MaxKey => matches!(op, CompareOp::Lt | CompareOp::Lte),
            RawBsonRef::MinKey => matches!(op, CompareOp::Gt | CompareOp::Gte),
            _ => false,
        };
    }
    // Same bracket and a missing value would mean rhs is undefined, which parse refuses.
    let Some(value) = value else { return false };
    if op != CompareOp::Eq {
        // NaN equals NaN but is neither below nor above anything.
        let (value_nan, rhs_nan) = (is_nan(value), is_nan(rhs));
        if value_nan || rhs_nan {
            return matches!(op, CompareOp::Lte | CompareOp::Gte) && value_nan && rhs_nan;
        }
    }
    let ord = compare_collated(value, rhs, collation);
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Lte => ord != Ordering::Greater,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Gte => ord != Ordering::Less,
    }
}

fn is_nan(v: RawBsonRef<'_>) -> bool {
    super::number::Number::from_raw(v).is_some_and(super::number::Number::is_nan)
}

impl InList {
    fn contains(&self, value: Option<RawBsonRef<'_>>) -> bool {
        match value {
            None | Some(RawBsonRef::Undefined) if self.has_null => true,
            None => false,
            Some(v) => {
                let collation = self.collation.as_deref();
                self.values.binary_search_by(|probe| compare_collated(probe.as_raw_bson_ref(), v, collation)).is_ok()
                    || self.regexes.iter().any(|re| re.matches(v))
            }
        }
    }
}

fn parse_document(doc: &RawDocument) -> Result<Expr, QueryError> {
    let mut children = Vec::new();
    for item in doc.iter() {
        let (key, value) = item.map_err(QueryError::invalid_bson)?;
        let key = key.as_str();
        if key.starts_with('$') {
            if let Some(expr) = parse_top_level(key, value)? {
                children.push(expr);
            }
        } else {
            parse_field(key, value, &mut children)?;
        }
    }
    Ok(if children.len() == 1 { children.remove(0) } else { Expr::And(children) })
}

/// A `$`-prefixed key at the top of a filter (or of an `$and`/`$or`/`$nor` entry).
fn parse_top_level(key: &str, value: RawBsonRef<'_>) -> Result<Option<Expr>, QueryError> {
    match key {
        "$and" => Ok(Some(Expr::And(parse_list(key, value)?))),
        "$or" => Ok(Some(Expr::Or(parse_list(key, value)?))),
        "$nor" => Ok(Some(Expr::Nor(parse_list(key, value)?))),
        "$comment" => Ok(None),
        // DBRef fields are matched as ordinary fields named "$ref", "$id" and "$db".
        "$ref" | "$id" | "$db" => Ok(Some(equality(key, value)?)),
        // Monarch has no JavaScript engine: mongod started with `--noscripting` answers this.
        "$where" => Err(QueryError::new(ErrorCode::Location6108304, NO_SCRIPT_ENGINE)),
        "$expr" => Ok(Some(Expr::Aggregate(Box::new((Expression::parse(value)?, Variables::new()))))),
        "$jsonSchema" => Ok(Some(Expr::Schema(Box::new(JsonSchema::parse(value)?)))),
        "$text" | "$alwaysTrue" | "$alwaysFalse" | "$sampleRate" => Err(QueryError::not_implemented(key)),
        _ => Err(QueryError::bad_value(format!(
            "unknown top level operator: {key}. If you have a field name that starts with a '$' symbol, consider \
             using $getField or $setField."
        ))),
    }
}

fn parse_list(key: &str, value: RawBsonRef<'_>) -> Result<Vec<Expr>, QueryError> {
    let RawBsonRef::Array(entries) = value else {
        return Err(QueryError::bad_value(format!("{key} must be an array")));
    };
    let mut children = Vec::new();
    for entry in entries {
        match entry.map_err(QueryError::invalid_bson)? {
            RawBsonRef::Document(doc) => children.push(parse_document(doc)?),
            _ => return Err(QueryError::bad_value("$or/$and/$nor entries need to be full objects")),
        }
    }
    if children.is_empty() {
        return Err(QueryError::bad_value("$and/$or/$nor must be a nonempty array"));
    }
    Ok(children)
}

/// `{path: value}`: operators when `value` is an operator document, equality otherwise.
fn parse_field(path: &str, value: RawBsonRef<'_>, out: &mut Vec<Expr>) -> Result<(), QueryError> {
    // mongod checks the length first, so no walk ever follows a path deeper than a stored
    // document can nest.
    super::limits::check_match_path_parts(path.split('.').count())?;
    match value {
        RawBsonRef::Document(ops) if is_operator_document(ops) => parse_operators(path, ops, out),
        RawBsonRef::RegularExpression(re) => {
            out.push(leaf(path, Predicate::Regex(Box::new(RegexPredicate::from_value(re)?))));
            Ok(())
        }
        _ => {
            out.push(equality(path, value)?);
            Ok(())
        }
    }
}

/// mongod's `isExpressionDocument`: a non-empty document whose first field starts with `$`,
/// unless it is a DBRef (`$ref` and `$id`), which is compared as a value.
pub(crate) fn is_operator_document(doc: &RawDocument) -> bool {
    let first_is_operator = path::fields(doc).next().is_some_and(|(key, _)| key.starts_with('$'));
    first_is_operator && !(has_field(doc, "$ref") && has_field(doc, "$id"))
}

fn has_field(doc: &RawDocument, key: &str) -> bool {
    matches!(doc.get(key), Ok(Some(_)))
}

/// The operators of one operator document, each a child of the implicit conjunction; `$regex`
/// and `$options` together make one.
fn parse_operators(path: &str, ops: &RawDocument, out: &mut Vec<Expr>) -> Result<(), QueryError> {
    for item in ops.iter() {
        let (op, arg) = item.map_err(QueryError::invalid_bson)?;
        match op.as_str() {
            "$regex" => out.push(leaf(path, parse_regex_document(ops)?)),
            "$options" => {
                // Handled with its `$regex`, which may come before or after it.
                if !has_field(ops, "$regex") {
                    return Err(QueryError::bad_value("$options needs a $regex"));
                }
            }
            op => out.push(parse_operator(path, op, arg)?),
        }
    }
    Ok(())
}

fn leaf(path: &str, pred: Predicate) -> Expr {
    Expr::Path { path: FieldPath::new(path), pred }
}

/// mongod's `parseRegexDocument`: `$regex` (a string or a regex without conflicting options)
/// and `$options`.
fn parse_regex_document(ops: &RawDocument) -> Result<Predicate, QueryError> {
    let mut pattern = "";
    let mut options = "";
    for (key, value) in path::fields(ops) {
        match (key, value) {
            ("$regex", RawBsonRef::String(s)) => pattern = s,
            ("$regex", RawBsonRef::RegularExpression(re)) => {
                pattern = re.pattern.as_str();
                if !re.options.as_str().is_empty() {
                    if !options.is_empty() {
                        return Err(QueryError::new(
                            ErrorCode::Location51074,
                            "options set in both $regex and $options",
                        ));
                    }
                    options = re.options.as_str();
                }
            }
            ("$regex", _) => return Err(QueryError::bad_value("$regex has to be a string")),
            ("$options", RawBsonRef::String(s)) => {
                if !options.is_empty() {
                    return Err(QueryError::new(ErrorCode::Location51075, "options set in both $regex and $options"));
                }
                options = s;
            }
            ("$options", _) => return Err(QueryError::bad_value("$options has to be a string")),
            _ => {}
        }
    }
    Ok(Predicate::Regex(Box::new(RegexPredicate::new(pattern, options)?)))
}

fn parse_operator(path: &str, op: &str, arg: RawBsonRef<'_>) -> Result<Expr, QueryError> {
    let leaf = |pred| leaf(path, pred);
    let compare = |op| compare_predicate(path, op, arg).map(leaf);
    match op {
        "$eq" => compare(CompareOp::Eq),
        "$lt" => compare(CompareOp::Lt),
        "$lte" => compare(CompareOp::Lte),
        "$gt" => compare(CompareOp::Gt),
        "$gte" => compare(CompareOp::Gte),
        "$ne" => {
            if matches!(arg, RawBsonRef::RegularExpression(_)) {
                return Err(QueryError::bad_value("Can't have regex as arg to $ne."));
            }
            Ok(Expr::Not(Box::new(compare(CompareOp::Eq)?)))
        }
        "$in" => Ok(leaf(Predicate::In(in_list("$in", arg)?))),
        "$nin" => Ok(Expr::Not(Box::new(leaf(Predicate::In(in_list("$nin", arg)?))))),
        "$exists" => {
            let exists = leaf(Predicate::Exists);
            Ok(if true_value(arg) { exists } else { Expr::Not(Box::new(exists)) })
        }
        "$where" => Err(QueryError::bad_value("$where cannot be applied to a field")),
        "$not" => parse_not(path, arg),
        "$type" => Ok(leaf(Predicate::Type(parse_type(path, arg)?))),
        "$mod" => parse_mod(arg).map(leaf),
        "$size" => parse_size(arg).map(leaf),
        "$all" => parse_all(path, arg),
        "$elemMatch" => parse_elem_match(path, arg),
        "$bitsAllSet" => parse_bits(op, BitTest::AllSet, arg).map(leaf),
        "$bitsAnySet" => parse_bits(op, BitTest::AnySet, arg).map(leaf),
        "$bitsAllClear" => parse_bits(op, BitTest::AllClear, arg).map(leaf),
        "$bitsAnyClear" => parse_bits(op, BitTest::AnyClear, arg).map(leaf),
        "$geoWithin" | "$geoIntersects" | "$near" | "$nearSphere" | "$within" | "$text" | "$expr" => {
            Err(QueryError::not_implemented(op))
        }
        _ => Err(QueryError::bad_value(format!("unknown operator: {op}"))),
    }
}

fn equality(path: &str, value: RawBsonRef<'_>) -> Result<Expr, QueryError> {
    Ok(Expr::Path { path: FieldPath::new(path), pred: compare_predicate(path, CompareOp::Eq, value)? })
}

fn compare_predicate(path: &str, op: CompareOp, rhs: RawBsonRef<'_>) -> Result<Predicate, QueryError> {
    if op != CompareOp::Eq && matches!(rhs, RawBsonRef::RegularExpression(_)) {
        return Err(QueryError::bad_value(format!("Can't have RegEx as arg to predicate over field '{path}'.")));
    }
    if rhs == RawBsonRef::Undefined {
        return Err(QueryError::bad_value("cannot compare to undefined"));
    }
    Ok(Predicate::Compare { op, rhs: RawBson::from(rhs), collation: None })
}

fn in_list(op: &str, arg: RawBsonRef<'_>) -> Result<InList, QueryError> {
    let RawBsonRef::Array(entries) = arg else {
        return Err(QueryError::bad_value(format!("{op} needs an array")));
    };
    let mut list = InList { values: Vec::new(), has_null: false, regexes: Vec::new(), collation: None };
    for entry in entries {
        match entry.map_err(QueryError::invalid_bson)? {
            RawBsonRef::Document(doc) if is_operator_document(doc) => {
                return Err(QueryError::bad_value("cannot nest $ under $in"));
            }
            RawBsonRef::RegularExpression(re) => {
                list.regexes.push(RegexPredicate::from_value(re)?);
            }
            RawBsonRef::Undefined => {
                return Err(QueryError::bad_value("InMatchExpression equality cannot be undefined"));
            }
            value => {
                list.has_null |= value == RawBsonRef::Null;
                list.values.push(RawBson::from(value));
            }
        }
    }
    list.values.sort_by(|a, b| compare_values(a.as_raw_bson_ref(), b.as_raw_bson_ref()));
    Ok(list)
}

/// `$not`: a regex, or an operator document whose conjunction is negated over the whole path.
fn parse_not(path: &str, arg: RawBsonRef<'_>) -> Result<Expr, QueryError> {
    let inner = match arg {
        RawBsonRef::RegularExpression(re) => leaf(path, Predicate::Regex(Box::new(RegexPredicate::from_value(re)?))),
        RawBsonRef::Document(ops) => {
            if ops.is_empty() {
                return Err(QueryError::bad_value("$not cannot be empty"));
            }
            let mut children = Vec::new();
            parse_operators(path, ops, &mut children)?;
            if children.len() == 1 { children.remove(0) } else { Expr::And(children) }
        }
        _ => return Err(QueryError::bad_value("$not needs a regex or a document")),
    };
    Ok(Expr::Not(Box::new(inner)))
}

/// `$type`: an alias, a numeric code, or an array of them (mongod's `MatcherTypeSet::parse`).
fn parse_type(path: &str, arg: RawBsonRef<'_>) -> Result<TypeSet, QueryError> {
    let mut set = TypeSet::default();
    match arg {
        RawBsonRef::Array(entries) => {
            for entry in items(entries) {
                add_type(&mut set, entry)?;
            }
        }
        single => add_type(&mut set, single)?,
    }
    if !set.all_numbers && set.types.is_empty() {
        return Err(QueryError::failed_to_parse(format!("{path} must match at least one type")));
    }
    Ok(set)
}

fn add_type(set: &mut TypeSet, spec: RawBsonRef<'_>) -> Result<(), QueryError> {
    if let RawBsonRef::String(alias) = spec {
        if alias == "number" {
            set.all_numbers = true;
            return Ok(());
        }
        let found = ALL_TYPES.iter().find(|t| render::type_name(**t) == alias);
        let Some(found) = found else {
            return Err(QueryError::bad_value(format!("Unknown type name alias: {alias}")));
        };
        set.types.push(*found);
        return Ok(());
    }
    let Some(number) = Number::from_raw(spec) else {
        return Err(QueryError::new(ErrorCode::TypeMismatch, "type must be represented as a number or a string"));
    };
    let shown = match number {
        Number::Int32(i) => i.to_string(),
        Number::Int64(i) => i.to_string(),
        Number::Double(d) => d.to_string(),
        Number::Decimal(d) => d.to_string(),
    };
    let invalid = || QueryError::bad_value(format!("Invalid numerical type code: {shown}"));
    let code = match number {
        Number::Int32(i) => i64::from(i),
        Number::Int64(i) => i,
        Number::Double(d) => double_to_i64(d).ok_or_else(invalid)?,
        Number::Decimal(d) => d.to_string().parse::<f64>().ok().and_then(double_to_i64).ok_or_else(invalid)?,
    };
    // MinKey is -1 in mongod's numbering and 0xFF on the wire.
    let tag = match code {
        -1 => 0xFF,
        0x01..=0x13 | 0x7F => u8::try_from(code).map_err(|_| invalid())?,
        _ => return Err(invalid()),
    };
    set.types.push(ElementType::from(tag).ok_or_else(invalid)?);
    Ok(())
}

/// Every BSON type `$type` can name, for the alias lookup.
pub(super) const ALL_TYPES: [ElementType; 21] = [
    ElementType::Double,
    ElementType::String,
    ElementType::EmbeddedDocument,
    ElementType::Array,
    ElementType::Binary,
    ElementType::Undefined,
    ElementType::ObjectId,
    ElementType::Boolean,
    ElementType::DateTime,
    ElementType::Null,
    ElementType::RegularExpression,
    ElementType::DbPointer,
    ElementType::JavaScriptCode,
    ElementType::Symbol,
    ElementType::JavaScriptCodeWithScope,
    ElementType::Int32,
    ElementType::Timestamp,
    ElementType::Int64,
    ElementType::Decimal128,
    ElementType::MinKey,
    ElementType::MaxKey,
];

/// `$mod: [divisor, remainder]` with mongod 7.0's checks; doubles are truncated.
fn parse_mod(arg: RawBsonRef<'_>) -> Result<Predicate, QueryError> {
    let RawBsonRef::Array(entries) = arg else {
        return Err(QueryError::bad_value("malformed mod, needs to be an array"));
    };
    let mut it = items(entries);
    let divisor = it.next().ok_or_else(|| QueryError::bad_value("malformed mod, not enough elements"))?;
    let divisor =
        Number::from_raw(divisor).ok_or_else(|| QueryError::bad_value("malformed mod, divisor not a number"))?;
    let remainder = it.next().ok_or_else(|| QueryError::bad_value("malformed mod, not enough elements"))?;
    let remainder =
        Number::from_raw(remainder).ok_or_else(|| QueryError::bad_value("malformed mod, remainder not a number"))?;
    if it.next().is_some() {
        return Err(QueryError::bad_value("malformed mod, too many elements"));
    }
    let divisor = coerce_to_i64(divisor, "divisor")?;
    let remainder = coerce_to_i64(remainder, "remainder")?;
    if divisor == 0 {
        return Err(QueryError::bad_value("divisor cannot be 0"));
    }
    Ok(Predicate::Mod { divisor, remainder })
}

/// mongod's `BSONElement::tryCoerce` to a long, with `withContext` on failure.
fn coerce_to_i64(n: Number, what: &str) -> Result<i64, QueryError> {
    let fail =
        |why: &str| QueryError::bad_value(format!("malformed mod, {what} value is invalid :: caused by :: {why}"));
    let d = match n {
        Number::Int32(i) => return Ok(i64::from(i)),
        Number::Int64(i) => return Ok(i),
        Number::Double(d) => d,
        Number::Decimal(d) => d.to_string().parse::<f64>().unwrap_or(f64::NAN),
    };
    if !d.is_finite() {
        return Err(fail("Unable to coerce NaN/Inf to integral type"));
    }
    double_to_i64(d.trunc()).ok_or_else(|| fail("Out of bounds coercing to integral value"))
}

/// `$size`: a whole, non-negative number that fits an int32.
fn parse_size(arg: RawBsonRef<'_>) -> Result<Predicate, QueryError> {
    let size = match arg {
        RawBsonRef::Int32(i) => i64::from(i),
        RawBsonRef::Int64(i) => {
            if i32::try_from(i).is_err() {
                return Err(QueryError::bad_value("$size must be representable as a 32-bit integer"));
            }
            i
        }
        RawBsonRef::Double(d) => match double_to_i64(d).filter(|i| i32::try_from(*i).is_ok()) {
            Some(i) => i,
            None => return Err(QueryError::bad_value("$size must be a whole number")),
        },
        _ => return Err(QueryError::bad_value("$size needs a number")),
    };
    if size < 0 {
        return Err(QueryError::bad_value("$size may not be negative"));
    }
    Ok(Predicate::Size(size))
}

/// `$all`: a conjunction of equalities (regexes for regex entries), or of `$elemMatch`es when
/// the first entry is one; an empty list matches nothing.
fn parse_all(path: &str, arg: RawBsonRef<'_>) -> Result<Expr, QueryError> {
    let RawBsonRef::Array(entries) = arg else {
        return Err(QueryError::bad_value("$all needs an array"));
    };
    let first_key = |v: RawBsonRef<'_>| match v {
        RawBsonRef::Document(d) => path::fields(d).next().map(|(k, _)| k.to_owned()),
        _ => None,
    };
    let mut children = Vec::new();
    if items(entries).next().and_then(first_key).as_deref() == Some("$elemMatch") {
        for entry in items(entries) {
            let RawBsonRef::Document(d) = entry else {
                return Err(QueryError::bad_value("$all/$elemMatch has to be consistent"));
            };
            match path::fields(d).next() {
                Some(("$elemMatch", inner)) => children.push(parse_elem_match(path, inner)?),
                _ => return Err(QueryError::bad_value("$all/$elemMatch has to be consistent")),
            }
        }
    } else {
        for entry in items(entries) {
            match entry {
                RawBsonRef::RegularExpression(re) => {
                    children.push(leaf(path, Predicate::Regex(Box::new(RegexPredicate::from_value(re)?))))
                }
                RawBsonRef::Document(_) if first_key(entry).is_some_and(|k| is_path_operator(&k)) => {
                    return Err(QueryError::bad_value("no $ expressions in $all"));
                }
                value => children.push(equality(path, value)?),
            }
        }
    }
    Ok(if children.is_empty() { Expr::Nothing } else { Expr::And(children) })
}

/// mongod's `parsePathAcceptingKeyword`: the operators that apply to a path.
fn is_path_operator(key: &str) -> bool {
    matches!(
        key,
        "$eq"
            | "$ne"
            | "$gt"
            | "$gte"
            | "$lt"
            | "$lte"
            | "$in"
            | "$nin"
            | "$exists"
            | "$regex"
            | "$options"
            | "$not"
            | "$type"
            | "$mod"
            | "$size"
            | "$all"
            | "$elemMatch"
            | "$bitsAllSet"
            | "$bitsAnySet"
            | "$bitsAllClear"
            | "$bitsAnyClear"
            | "$geoWithin"
            | "$geoIntersects"
            | "$near"
            | "$nearSphere"
            | "$within"
            | "$geoNear"
    )
}

/// `$elemMatch`: the value form when the argument is an operator document whose first key is
/// not a top-level operator (`$and`, `$or`, ...), the object form otherwise.
fn parse_elem_match(path: &str, arg: RawBsonRef<'_>) -> Result<Expr, QueryError> {
    let RawBsonRef::Document(spec) = arg else {
        return Err(QueryError::bad_value("$elemMatch needs an Object"));
    };
    let first = path::fields(spec).next().map(|(k, _)| k);
    let top_level = matches!(
        first,
        Some(
            "$and"
                | "$or"
                | "$nor"
                | "$expr"
                | "$where"
                | "$text"
                | "$comment"
                | "$jsonSchema"
                | "$alwaysTrue"
                | "$alwaysFalse"
                | "$sampleRate"
        )
    );
    // Here even part of a DBRef (`$ref`, `$id` or `$db` alone) makes a document to match
    // (mongod's `isDBRefDocument` with incomplete DBRefs allowed).
    let dbref = ["$ref", "$id", "$db"].iter().any(|k| has_field(spec, k));
    let is_value_form = first.is_some_and(|k| k.starts_with('$')) && !dbref && !top_level;
    let elem = if is_value_form {
        let mut children = Vec::new();
        parse_operators("", spec, &mut children)?;
        ElemMatch::Value(children)
    } else {
        // mongod refuses `$where` here only after parsing it, which without JavaScript fails
        // first; so that parse error is the answer.
        ElemMatch::Object(Box::new(parse_document(spec)?))
    };
    Ok(Expr::ElemMatch { path: FieldPath::new(path), elem })
}

/// `$bitsAllSet` and friends: a non-negative int64 mask, an array of bit positions, or BinData.
fn parse_bits(op: &str, test: BitTest, arg: RawBsonRef<'_>) -> Result<Predicate, QueryError> {
    let positions = match arg {
        RawBsonRef::Array(entries) => {
            let mut positions = Vec::new();
            for (index, entry) in items(entries).enumerate() {
                positions.push(parse_bit_position(&index.to_string(), entry)?);
            }
            positions
        }
        RawBsonRef::Binary(bin) => (0u32..)
            .zip(bin.bytes.iter().flat_map(|byte| (0..8).map(move |bit| byte >> bit & 1 == 1)))
            .filter_map(|(position, set)| set.then_some(position))
            .collect(),
        value if Number::from_raw(value).is_some() => {
            let mask = parse_non_negative_long(op, value)?;
            (0u32..64).filter(|bit| mask >> bit & 1 == 1).collect()
        }
        other => {
            return Err(QueryError::bad_value(format!(
                "{op} takes an Array, a number, or a BinData but received: {}",
                render::element(op, other)
            )));
        }
    };
    Ok(Predicate::Bits { test, positions })
}

/// mongod's `parseBitPositionsArray` for one entry.
fn parse_bit_position(key: &str, entry: RawBsonRef<'_>) -> Result<u32, QueryError> {
    let shown = || render::element(key, entry);
    let value = match entry {
        RawBsonRef::Int32(i) => i64::from(i),
        RawBsonRef::Int64(i) => {
            if i32::try_from(i).is_err() {
                return Err(QueryError::bad_value(format!(
                    "bit positions cannot be represented as a 32-bit signed integer: {}",
                    shown()
                )));
            }
            i
        }
        RawBsonRef::Double(d) => {
            if d.is_nan() {
                return Err(QueryError::bad_value(format!("bit positions cannot take a NaN: {}", shown())));
            }
            if d > f64::from(i32::MAX) || d < f64::from(i32::MIN) {
                return Err(QueryError::bad_value(format!(
                    "bit positions cannot be represented as a 32-bit signed integer: {}",
                    shown()
                )));
            }
            match double_to_i64(d) {
                Some(i) => i,
                None => {
                    return Err(QueryError::bad_value(format!(
                        "bit positions must be an integer but got: {}",
                        shown()
                    )));
                }
            }
        }
        RawBsonRef::Decimal128(d) => match d.to_string().parse::<f64>().ok().and_then(double_to_i64) {
            Some(i) => i,
            None => {
                return Err(QueryError::bad_value(format!("bit positions must be an integer but got: {}", shown())));
            }
        },
        _ => return Err(QueryError::bad_value(format!("bit positions must be an integer but got: {}", shown()))),
    };
    u32::try_from(value).map_err(|_| QueryError::bad_value(format!("bit positions must be >= 0 but got: {}", shown())))
}

/// mongod's `parseIntegerElementToNonNegativeLong` (9 FailedToParse on failure).
pub(super) fn parse_non_negative_long(op: &str, value: RawBsonRef<'_>) -> Result<i64, QueryError> {
    let shown = || render::element(op, value);
    let n = match value {
        RawBsonRef::Int32(i) => i64::from(i),
        RawBsonRef::Int64(i) => i,
        other => {
            let d = match other {
                RawBsonRef::Double(d) => d,
                RawBsonRef::Decimal128(d) => d.to_string().parse::<f64>().unwrap_or(f64::NAN),
                _ => return Err(QueryError::failed_to_parse(format!("Expected a number in: {}", shown()))),
            };
            if d.is_nan() {
                return Err(QueryError::failed_to_parse(format!("Expected an integer, but found NaN in: {}", shown())));
            }
            if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&d) {
                return Err(QueryError::failed_to_parse(format!("Cannot represent as a 64-bit integer: {}", shown())));
            }
            double_to_i64(d).ok_or_else(|| QueryError::failed_to_parse(format!("Expected an integer: {}", shown())))?
        }
    };
    if n < 0 {
        return Err(QueryError::failed_to_parse(format!("Expected a positive number in: {}", shown())));
    }
    Ok(n)
}

/// mongod's `BSONElement::trueValue`: false for false, zero, null and undefined.
pub(crate) fn true_value(v: RawBsonRef<'_>) -> bool {
    match v {
        RawBsonRef::Boolean(b) => b,
        RawBsonRef::Null | RawBsonRef::Undefined => false,
        RawBsonRef::Int32(i) => i != 0,
        RawBsonRef::Int64(i) => i != 0,
        RawBsonRef::Double(d) => d != 0.0,
        RawBsonRef::Decimal128(d) => {
            !super::decimal::is_zero(d)
        }
        _ => true,
    }
}

/// Gathers `(path, value)` for every equality an upsert can take, checking as mongod does
/// that no path is claimed twice and no path lies under an earlier one.
fn collect_equalities<'a>(expr: &'a Expr, out: &mut Vec<(&'a str, &'a RawBson)>) -> Result<(), QueryError> {
    match expr {
        Expr::And(children) => {
            for child in children {
                collect_equalities(child, out)?;
            }
        }
        Expr::Or(children) if children.len() == 1 => {
            for child in children {
                collect_equalities(child, out)?;
            }
        }
        Expr::Path { path, pred: Predicate::Compare { op: CompareOp::Eq, rhs, .. } } => {
            add_equality(path.dotted(), rhs, out)?;
        }
        Expr::Path { path, pred: Predicate::In(list) } if list.values.len() == 1 => {
            for rhs in &list.values {
                add_equality(path.dotted(), rhs, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn add_equality<'a>(path: &'a str, rhs: &'a RawBson, out: &mut Vec<(&'a str, &'a RawBson)>) -> Result<(), QueryError> {
    for (seen, _) in out.iter() {
        let message = if *seen == path {
            format!("cannot infer query fields to set, path '{path}' is matched twice")
        } else if path.strip_prefix(seen).is_some_and(|rest| rest.starts_with('.')) {
            format!("cannot infer query fields to set, both paths '{path}' and '{seen}' are matched")
        } else {
            continue;
        };
        return Err(QueryError::new(ErrorCode::NotSingleValueField, message));
    }
    out.push((path, rhs));
    Ok(())
}

/// Sets `path` in the seed, creating documents on the way (mongod's `setElementAtPath`).
fn set_seed_path(seed: &mut Document, path: &str, value: Bson) -> Result<(), QueryError> {
    let mut parts = path.split('.').peekable();
    let mut current = seed;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            current.insert(part, value);
            return Ok(());
        }
        let next = current.entry(part.to_owned()).or_insert_with(|| Bson::Document(Document::new()));
        match next {
            Bson::Document(doc) => current = doc,
            other => {
                let element = super::render::owned_element(part, other);
                return Err(QueryError::new(
                    ErrorCode::PathNotViable,
                    format!("cannot use the part ({part} of {path}) to traverse the element ({{{element}}})"),
                ));
            }
        }
    }
    Ok(())
}

/// `doc` with `_id` moved to the front, where mongod keeps it in stored documents.
pub(crate) fn move_id_first(doc: Document) -> Document {
    if doc.keys().next().is_none_or(|k| k == "_id") || !doc.contains_key("_id") {
        return doc;
    }
    let mut out = Document::new();
    let mut rest = Vec::new();
    for (key, value) in doc {
        if key == "_id" {
            out.insert(key, value);
        } else {
            rest.push((key, value));
        }
    }
    out.extend(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, rawdoc};

    fn filter(spec: bson::RawDocumentBuf) -> Filter {
        Filter::parse(&spec).unwrap()
    }

    fn matches(spec: bson::RawDocumentBuf, doc: bson::RawDocumentBuf) -> bool {
        filter(spec).matches(&doc)
    }

    fn parse_err(spec: bson::RawDocumentBuf) -> (i32, String) {
        let err = Filter::parse(&spec).unwrap_err();
        (err.code().code(), err.message().to_owned())
    }

    #[test]
    fn filter_comparisons_under_collation() {
        let collation = |spec: bson::RawDocumentBuf| Arc::new(Collation::parse(&spec).unwrap().unwrap());
        let secondary = collation(rawdoc! { "locale": "en", "strength": 2 });
        let primary = collation(rawdoc! { "locale": "en", "strength": 1 });
        let numeric = collation(rawdoc! { "locale": "en", "numericOrdering": true });
        // (collation, filter, document, matches)
        let rows = [
            (&secondary, rawdoc! { "a": "abc" }, rawdoc! { "a": "ABC" }, true),
            (&secondary, rawdoc! { "a": "abc" }, rawdoc! { "a": "ábc" }, false),
            (&primary, rawdoc! { "a": "abc" }, rawdoc! { "a": "ÁBC" }, true),
            (&secondary, rawdoc! { "a": { "$ne": "abc" } }, rawdoc! { "a": "Abc" }, false),
            (&secondary, rawdoc! { "a": { "$in": ["x", "ABC"] } }, rawdoc! { "a": "abc" }, true),
            (&secondary, rawdoc! { "a": { "$nin": ["x", "ABC"] } }, rawdoc! { "a": "abc" }, false),
            (&secondary, rawdoc! { "a": { "$gt": "B" } }, rawdoc! { "a": "b" }, false),
            (&secondary, rawdoc! { "a": { "$gte": "B" } }, rawdoc! { "a": "b" }, true),
            (&numeric, rawdoc! { "a": { "$gt": "9" } }, rawdoc! { "a": "10" }, true),
            (&secondary, rawdoc! { "a.b": "X" }, rawdoc! { "a": [{ "b": "x" }] }, true),
            (&secondary, rawdoc! { "a": { "$elemMatch": { "$eq": "X" } } }, rawdoc! { "a": ["x"] }, true),
            (&secondary, rawdoc! { "a": { "b": "X" } }, rawdoc! { "a": { "b": "x" } }, true),
            (&secondary, rawdoc! { "$expr": { "$eq": ["$a", "ABC"] } }, rawdoc! { "a": "abc" }, true),
            // Regular expressions ignore the collation.
            (&primary, rawdoc! { "a": { "$regex": "^abc$" } }, rawdoc! { "a": "ABC" }, false),
            // Numbers are untouched.
            (&primary, rawdoc! { "a": 1 }, rawdoc! { "a": 1.0 }, true),
        ];
        for (collation, spec, doc, expected) in rows {
            let filter = Filter::parse(&spec).unwrap().with_collation(Some(collation));
            assert_eq!(filter.matches(&doc), expected, "{spec:?} on {doc:?}");
        }
        // Without a collation the same filter is binary.
        assert!(!filter(rawdoc! { "a": "abc" }).matches(&rawdoc! { "a": "ABC" }));
    }

    #[test]
    fn filter_empty_matches_everything() {
        assert!(matches(rawdoc! {}, rawdoc! { "a": 1 }));
    }

    #[test]
    fn filter_eq_implicit_scalar() {
        assert!(matches(rawdoc! { "a": 1 }, rawdoc! { "a": 1 }));
        assert!(!matches(rawdoc! { "a": 1 }, rawdoc! { "a": 2 }));
        assert!(!matches(rawdoc! { "a": 1 }, rawdoc! {}));
    }

    #[test]
    fn filter_eq_mixed_numeric_types() {
        assert!(matches(rawdoc! { "a": 1 }, rawdoc! { "a": 1.0 }));
        assert!(matches(rawdoc! { "a": { "$eq": 2_i64 } }, rawdoc! { "a": 2 }));
        let dec: bson::Decimal128 = "3.0".parse().unwrap();
        assert!(matches(rawdoc! { "a": 3 }, rawdoc! { "a": dec }));
    }

    #[test]
    fn filter_eq_array_element_or_whole_array() {
        assert!(matches(rawdoc! { "a": 2 }, rawdoc! { "a": [1, 2, 3] }));
        assert!(matches(rawdoc! { "a": [1, 2] }, rawdoc! { "a": [1, 2] }));
        assert!(!matches(rawdoc! { "a": [2, 1] }, rawdoc! { "a": [1, 2] }));
        assert!(matches(rawdoc! { "a": [1, 2] }, rawdoc! { "a": [[1, 2], 3] }));
    }

    #[test]
    fn filter_eq_whole_document_is_order_sensitive() {
        assert!(matches(rawdoc! { "a": { "b": 1, "c": 2 } }, rawdoc! { "a": { "b": 1, "c": 2 } }));
        assert!(!matches(rawdoc! { "a": { "b": 1, "c": 2 } }, rawdoc! { "a": { "c": 2, "b": 1 } }));
    }

    #[test]
    fn filter_eq_dotted_through_array_of_documents() {
        let doc = rawdoc! { "a": [ { "b": 1 }, { "b": 2 } ] };
        assert!(matches(rawdoc! { "a.b": 2 }, doc.clone()));
        assert!(matches(rawdoc! { "a.1.b": 2 }, doc.clone()));
        assert!(!matches(rawdoc! { "a.0.b": 2 }, doc));
    }

    #[test]
    fn filter_eq_embedded_document_mixed_numbers() {
        assert!(matches(rawdoc! { "a": { "b": 1 } }, rawdoc! { "a": { "b": 1.0 } }));
        assert!(matches(rawdoc! { "a.b": 2_i64 }, rawdoc! { "a": { "b": 2.0 } }));
        assert!(!matches(rawdoc! { "a": { "b": 1 } }, rawdoc! { "a": { "b": 1, "c": 1 } }));
    }

    #[test]
    fn filter_in_whole_array_value() {
        let f = filter(rawdoc! { "a": { "$in": [[1, 2], "x"] } });
        assert!(f.matches(&rawdoc! { "a": [1, 2] }));
        assert!(f.matches(&rawdoc! { "a": ["x"] }));
        assert!(!f.matches(&rawdoc! { "a": [2, 1] }));
    }

    #[test]
    fn filter_eq_numeric_path_names_field_and_index() {
        assert!(matches(rawdoc! { "a.0": 5 }, rawdoc! { "a": [5, 6] }));
        assert!(matches(rawdoc! { "a.0": 5 }, rawdoc! { "a": { "0": 5 } }));
        assert!(!matches(rawdoc! { "a.1": 5 }, rawdoc! { "a": [5, 6] }));
    }

    #[test]
    fn filter_eq_null_matches_missing() {
        assert!(matches(rawdoc! { "a": null }, rawdoc! {}));
        assert!(matches(rawdoc! { "a": null }, rawdoc! { "a": null }));
        assert!(matches(rawdoc! { "a": null }, rawdoc! { "a": bson::RawBson::Undefined }));
        assert!(matches(rawdoc! { "a": null }, rawdoc! { "a": [1, null] }));
        assert!(!matches(rawdoc! { "a": null }, rawdoc! { "a": 0 }));
        assert!(!matches(rawdoc! { "a": null }, rawdoc! { "a": [] }));
    }

    #[test]
    fn filter_eq_null_dotted_legacy_semantics() {
        let f = filter(rawdoc! { "a.b": null });
        assert!(f.matches(&rawdoc! { "a": 4 }));
        assert!(f.matches(&rawdoc! { "a": {} }));
        assert!(f.matches(&rawdoc! { "a": [ { "b": 3 }, {} ] }));
        assert!(!f.matches(&rawdoc! { "a": [] }));
        assert!(!f.matches(&rawdoc! { "a": [1, 2] }));
        assert!(!f.matches(&rawdoc! { "a": [null] }));
        assert!(!f.matches(&rawdoc! { "a": { "b": "hi" } }));
    }

    #[test]
    fn filter_ne_null_is_the_opposite() {
        let f = filter(rawdoc! { "a": { "$ne": null } });
        assert!(!f.matches(&rawdoc! {}));
        assert!(!f.matches(&rawdoc! { "a": null }));
        assert!(!f.matches(&rawdoc! { "a": bson::RawBson::Undefined }));
        assert!(f.matches(&rawdoc! { "a": 4 }));
        assert!(f.matches(&rawdoc! { "a": [] }));
    }

    #[test]
    fn filter_ne_rejects_arrays_containing_the_value() {
        let f = filter(rawdoc! { "a": { "$ne": 1 } });
        assert!(!f.matches(&rawdoc! { "a": [1, 2] }));
        assert!(f.matches(&rawdoc! { "a": [2, 3] }));
        assert!(f.matches(&rawdoc! {}));
    }

    #[test]
    fn filter_gt_type_bracketing() {
        let f = filter(rawdoc! { "a": { "$gt": 5 } });
        assert!(f.matches(&rawdoc! { "a": 6 }));
        assert!(f.matches(&rawdoc! { "a": 5.5 }));
        assert!(!f.matches(&rawdoc! { "a": "zzz" }));
        assert!(!f.matches(&rawdoc! { "a": {} }));
        assert!(!f.matches(&rawdoc! {}));
        let s = filter(rawdoc! { "a": { "$lt": "b" } });
        assert!(s.matches(&rawdoc! { "a": "a" }));
        assert!(!s.matches(&rawdoc! { "a": 1 }));
    }

    #[test]
    fn filter_gt_any_array_element() {
        let f = filter(rawdoc! { "a": { "$gt": 5, "$lt": 10 } });
        // Each operator may be satisfied by a different element.
        assert!(f.matches(&rawdoc! { "a": [1, 20] }));
        assert!(!f.matches(&rawdoc! { "a": [1, 2] }));
    }

    #[test]
    fn filter_gte_lte_null_match_missing() {
        assert!(matches(rawdoc! { "a": { "$gte": null } }, rawdoc! {}));
        assert!(matches(rawdoc! { "a": { "$lte": null } }, rawdoc! { "a": null }));
        assert!(!matches(rawdoc! { "a": { "$gt": null } }, rawdoc! {}));
        assert!(!matches(rawdoc! { "a": { "$lt": null } }, rawdoc! { "a": null }));
    }

    #[test]
    fn filter_lt_maxkey_matches_everything_even_missing() {
        assert!(matches(rawdoc! { "a": { "$lt": bson::RawBson::MaxKey } }, rawdoc! {}));
        assert!(matches(rawdoc! { "a": { "$gt": bson::RawBson::MinKey } }, rawdoc! { "a": "x" }));
        assert!(!matches(rawdoc! { "a": { "$eq": bson::RawBson::MinKey } }, rawdoc! { "a": 1 }));
    }

    #[test]
    fn filter_lte_nan_only_matches_nan() {
        assert!(matches(rawdoc! { "a": { "$lte": f64::NAN } }, rawdoc! { "a": f64::NAN }));
        assert!(!matches(rawdoc! { "a": { "$lt": f64::NAN } }, rawdoc! { "a": 1 }));
        assert!(!matches(rawdoc! { "a": { "$gt": 1 } }, rawdoc! { "a": f64::NAN }));
        assert!(matches(rawdoc! { "a": f64::NAN }, rawdoc! { "a": f64::NAN }));
    }

    #[test]
    fn filter_lt_int64_against_double_exact() {
        let f = filter(rawdoc! { "a": { "$lt": 9.223372036854776e18 } });
        assert!(f.matches(&rawdoc! { "a": i64::MAX }));
        let g = filter(rawdoc! { "a": { "$gte": 9.223372036854776e18 } });
        assert!(!g.matches(&rawdoc! { "a": i64::MAX }));
    }

    #[test]
    fn filter_in_values_and_null() {
        let f = filter(rawdoc! { "a": { "$in": [null, 4] } });
        assert!(f.matches(&rawdoc! { "a": 4.0 }));
        assert!(f.matches(&rawdoc! {}));
        assert!(f.matches(&rawdoc! { "a": [7, 4] }));
        assert!(!f.matches(&rawdoc! { "a": 5 }));
        assert!(!filter(rawdoc! { "a": { "$in": [] } }).matches(&rawdoc! { "a": 1 }));
    }

    #[test]
    fn filter_nin_is_negated_in() {
        let f = filter(rawdoc! { "a": { "$nin": [null, 4] } });
        assert!(!f.matches(&rawdoc! {}));
        assert!(!f.matches(&rawdoc! { "a": [1, 4] }));
        assert!(f.matches(&rawdoc! { "a": 5 }));
    }

    #[test]
    fn filter_exists_true_and_false() {
        assert!(matches(rawdoc! { "a": { "$exists": true } }, rawdoc! { "a": null }));
        assert!(matches(rawdoc! { "a": { "$exists": 1 } }, rawdoc! { "a": [] }));
        assert!(!matches(rawdoc! { "a": { "$exists": true } }, rawdoc! {}));
        assert!(matches(rawdoc! { "a": { "$exists": false } }, rawdoc! {}));
        assert!(matches(rawdoc! { "a.b": { "$exists": false } }, rawdoc! { "a": [] }));
        assert!(!matches(rawdoc! { "a.b": { "$exists": false } }, rawdoc! { "a": [ { "b": 1 } ] }));
    }

    #[test]
    fn filter_and_or_nor() {
        let doc = rawdoc! { "a": 1, "b": 2 };
        assert!(matches(rawdoc! { "$and": [ { "a": 1 }, { "b": 2 } ] }, doc.clone()));
        assert!(matches(rawdoc! { "$or": [ { "a": 5 }, { "b": 2 } ] }, doc.clone()));
        assert!(!matches(rawdoc! { "$nor": [ { "a": 5 }, { "b": 2 } ] }, doc.clone()));
        assert!(matches(rawdoc! { "$nor": [ { "a": 5 } ], "b": 2 }, doc));
    }

    #[test]
    fn filter_dbref_document_is_a_value() {
        let f = filter(rawdoc! { "r": { "$ref": "c", "$id": 1 } });
        assert!(f.matches(&rawdoc! { "r": { "$ref": "c", "$id": 1 } }));
    }

    #[test]
    fn filter_unknown_operator_is_bad_value() {
        assert_eq!(parse_err(rawdoc! { "a": { "$foo": 1 } }), (2, "unknown operator: $foo".into()));
        assert_eq!(parse_err(rawdoc! { "a": { "$gt": 1, "b": 1 } }), (2, "unknown operator: b".into()));
        assert_eq!(
            parse_err(rawdoc! { "$foo": 1 }),
            (
                2,
                "unknown top level operator: $foo. If you have a field name that starts with a '$' symbol, \
                 consider using $getField or $setField."
                    .into()
            )
        );
    }

    #[test]
    fn filter_and_requires_nonempty_array_of_objects() {
        assert_eq!(parse_err(rawdoc! { "$and": 1 }), (2, "$and must be an array".into()));
        assert_eq!(parse_err(rawdoc! { "$or": [] }), (2, "$and/$or/$nor must be a nonempty array".into()));
        assert_eq!(parse_err(rawdoc! { "$nor": [1] }), (2, "$or/$and/$nor entries need to be full objects".into()));
    }

    #[test]
    fn filter_in_argument_errors() {
        assert_eq!(parse_err(rawdoc! { "a": { "$in": 1 } }), (2, "$in needs an array".into()));
        assert_eq!(parse_err(rawdoc! { "a": { "$nin": {} } }), (2, "$nin needs an array".into()));
        assert_eq!(parse_err(rawdoc! { "a": { "$in": [ { "$gt": 1 } ] } }), (2, "cannot nest $ under $in".into()));
    }

    #[test]
    fn filter_compare_argument_errors() {
        let re = bson::Regex { pattern: "x".try_into().unwrap(), options: "".try_into().unwrap() };
        assert_eq!(
            parse_err(rawdoc! { "a": { "$gt": re.clone() } }),
            (2, "Can't have RegEx as arg to predicate over field 'a'.".into())
        );
        assert_eq!(parse_err(rawdoc! { "a": { "$ne": re } }), (2, "Can't have regex as arg to $ne.".into()));
        assert_eq!(parse_err(rawdoc! { "a": bson::RawBson::Undefined }), (2, "cannot compare to undefined".into()));
    }

    #[test]
    fn filter_later_operators_are_not_implemented() {
        assert_eq!(parse_err(rawdoc! { "$text": { "$search": "x" } }).0, 238);
        assert_eq!(parse_err(rawdoc! { "a": { "$near": [0, 0] } }).0, 238);
    }

    #[test]
    fn filter_json_schema_with_other_operators() {
        let schema = rawdoc! { "$jsonSchema": { "required": ["a"], "properties": { "a": { "bsonType": "int" } } } };
        assert!(matches(schema.clone(), rawdoc! { "a": 1 }));
        assert!(!matches(schema.clone(), rawdoc! { "a": "x" }));
        assert!(!matches(schema, rawdoc! { "b": 1 }));
        let combined = rawdoc! { "$or": [ { "$jsonSchema": { "required": ["z"] } }, { "a": 2 } ] };
        assert!(matches(combined.clone(), rawdoc! { "a": 2 }));
        assert!(matches(combined.clone(), rawdoc! { "z": 0 }));
        assert!(!matches(combined, rawdoc! { "a": 1 }));
        let in_elem_match = rawdoc! { "arr": { "$elemMatch": { "$jsonSchema": { "required": ["k"] } } } };
        assert!(matches(in_elem_match.clone(), rawdoc! { "arr": [ { "j": 1 }, { "k": 1 } ] }));
        assert!(!matches(in_elem_match, rawdoc! { "arr": [ { "j": 1 } ] }));
        assert_eq!(parse_err(rawdoc! { "$jsonSchema": 1 }).0, 14);
        assert_eq!(parse_err(rawdoc! { "$jsonSchema": { "bogus": 1 } }).0, 9);
    }

    #[test]
    fn filter_expr_compares_fields_of_one_document() {
        let spec = rawdoc! { "$expr": { "$gt": ["$a", "$b"] } };
        assert!(matches(spec.clone(), rawdoc! { "a": 2, "b": 1 }));
        assert!(!matches(spec.clone(), rawdoc! { "a": 1, "b": 1 }));
        // No type bracketing: a string is above every number.
        assert!(matches(spec.clone(), rawdoc! { "a": "x", "b": 5 }));
        // Missing sorts below null, so a missing `a` is not above a null `b`.
        assert!(!matches(spec, rawdoc! { "b": null }));
    }

    #[test]
    fn filter_expr_truthiness_and_logic() {
        assert!(matches(rawdoc! { "$expr": "$a" }, rawdoc! { "a": "" }));
        assert!(!matches(rawdoc! { "$expr": "$a" }, rawdoc! { "a": 0.0 }));
        assert!(!matches(rawdoc! { "$expr": "$a" }, rawdoc! {}));
        assert!(matches(rawdoc! { "$expr": true, "a": 1 }, rawdoc! { "a": 1 }));
        assert!(!matches(rawdoc! { "$expr": false, "a": 1 }, rawdoc! { "a": 1 }));
        let either = rawdoc! { "$or": [ { "$expr": { "$eq": ["$a", 1] } }, { "b": 2 } ] };
        assert!(matches(either.clone(), rawdoc! { "a": 1 }));
        assert!(matches(either.clone(), rawdoc! { "b": 2 }));
        assert!(!matches(either, rawdoc! { "a": 2 }));
        let neither = rawdoc! { "$nor": [ { "$expr": { "$eq": ["$a", 1] } } ] };
        assert!(matches(neither, rawdoc! { "a": 2 }));
    }

    #[test]
    fn filter_expr_root_variable_and_errors() {
        let spec = rawdoc! { "$expr": { "$eq": [ { "$size": { "$literal": [1, 2] } }, "$$ROOT.n" ] } };
        assert!(matches(spec, rawdoc! { "n": 2 }));
        assert_eq!(parse_err(rawdoc! { "$expr": { "$foo": 1 } }).0, 168);
        let failing = Filter::parse(&rawdoc! { "$expr": { "$divide": ["$a", 0] } }).unwrap();
        let doc = rawdoc! { "a": 1 };
        assert!(!failing.matches(&doc));
        assert_eq!(failing.try_matches(&doc).unwrap_err().code().code(), 2);
        let with_let = Filter::parse(&rawdoc! { "$or": [ { "$expr": { "$eq": ["$a", "$$want"] } } ] }).unwrap();
        let unbound = with_let.clone();
        let with_let = with_let.with_variables(&Variables::from_let(&rawdoc! { "want": 1 }).unwrap());
        assert!(with_let.matches(&doc));
        assert!(!with_let.matches(&rawdoc! { "a": 2 }));
        assert_eq!(unbound.try_matches(&doc).unwrap_err().code().code(), 17276);
        let ok = Filter::parse(&rawdoc! { "a": 1, "$expr": { "$lt": ["$a", 5] } }).unwrap();
        assert_eq!(ok.try_matches(&doc), Ok(true));
        assert_eq!(ok.try_matches(&rawdoc! { "a": 7 }), Ok(false));
    }

    fn re(pattern: &str, options: &str) -> bson::Regex {
        bson::Regex { pattern: pattern.try_into().unwrap(), options: options.try_into().unwrap() }
    }

    /// Runs `(filter, document, expected)` rows, naming the failing row.
    fn table(rows: &[(bson::RawDocumentBuf, bson::RawDocumentBuf, bool)]) {
        for (i, (spec, doc, expected)) in rows.iter().enumerate() {
            let got = Filter::parse(spec).unwrap_or_else(|e| panic!("row {i}: {e}")).matches(doc);
            assert_eq!(got, *expected, "row {i}: filter {spec:?} on {doc:?}");
        }
    }

    #[test]
    fn filter_regex_operator_and_options() {
        table(&[
            (rawdoc! { "a": { "$regex": "^ab" } }, rawdoc! { "a": "abc" }, true),
            (rawdoc! { "a": { "$regex": "^ab" } }, rawdoc! { "a": "xab" }, false),
            (rawdoc! { "a": { "$regex": "^AB", "$options": "i" } }, rawdoc! { "a": "abc" }, true),
            (rawdoc! { "a": { "$options": "i", "$regex": "^AB" } }, rawdoc! { "a": "abc" }, true),
            (rawdoc! { "a": { "$regex": re("^AB", "i") } }, rawdoc! { "a": "abc" }, true),
            (rawdoc! { "a": { "$regex": re("^b", ""), "$options": "m" } }, rawdoc! { "a": "a\nb" }, true),
            (rawdoc! { "a": { "$regex": "^b" } }, rawdoc! { "a": "a\nb" }, false),
            (rawdoc! { "a": { "$regex": "a.b", "$options": "s" } }, rawdoc! { "a": "a\nb" }, true),
            (rawdoc! { "a": { "$regex": "a.b" } }, rawdoc! { "a": "a\nb" }, false),
            (rawdoc! { "a": { "$regex": "a b # comment", "$options": "x" } }, rawdoc! { "a": "ab" }, true),
            (rawdoc! { "a": { "$regex": "b" } }, rawdoc! { "a": ["x", "abc"] }, true),
            (rawdoc! { "a": { "$regex": "1" } }, rawdoc! { "a": 1 }, false),
            (rawdoc! { "a": { "$regex": "" } }, rawdoc! {}, false),
            (rawdoc! { "a": { "$regex": "" } }, rawdoc! { "a": null }, false),
            (rawdoc! { "a": { "$regex": "^x" } }, rawdoc! { "a": bson::RawBson::Symbol("xy".into()) }, true),
            (rawdoc! { "a.b": { "$regex": "é" } }, rawdoc! { "a": [ { "b": "café" } ] }, true),
        ]);
    }

    #[test]
    fn filter_regex_end_anchor_is_pcre() {
        table(&[
            (rawdoc! { "a": re("abc$", "") }, rawdoc! { "a": "abc\n" }, true),
            (rawdoc! { "a": re("abc$", "") }, rawdoc! { "a": "abc\nx" }, false),
            (rawdoc! { "a": re("abc$", "m") }, rawdoc! { "a": "abc\nx" }, true),
            (rawdoc! { "a": re("abc\\Z", "") }, rawdoc! { "a": "abc\n" }, true),
            (rawdoc! { "a": re("abc\\z", "") }, rawdoc! { "a": "abc\n" }, false),
            (rawdoc! { "a": re("a[$]b", "") }, rawdoc! { "a": "a$b" }, true),
            (rawdoc! { "a": re("a[]$]b", "") }, rawdoc! { "a": "a]b" }, true),
            (rawdoc! { "a": re("a\\$b", "") }, rawdoc! { "a": "a$b" }, true),
            (rawdoc! { "a": re("a[[:digit:]$]b", "") }, rawdoc! { "a": "a$b" }, true),
        ]);
    }

    #[test]
    fn filter_regex_value_is_implicit_regex_or_equal_regex() {
        table(&[
            (rawdoc! { "a": re("^x", "") }, rawdoc! { "a": "xyz" }, true),
            (rawdoc! { "a": re("^x", "i") }, rawdoc! { "a": "XYZ" }, true),
            (rawdoc! { "a": re("^x", "") }, rawdoc! { "a": re("^x", "") }, true),
            (rawdoc! { "a": re("^x", "") }, rawdoc! { "a": re("^x", "i") }, false),
            (rawdoc! { "a": re("^x", "") }, rawdoc! { "a": 5 }, false),
        ]);
    }

    #[test]
    fn filter_in_and_nin_with_regexes() {
        table(&[
            (rawdoc! { "a": { "$in": [re("^x", ""), 5] } }, rawdoc! { "a": "xa" }, true),
            (rawdoc! { "a": { "$in": [re("^x", ""), 5] } }, rawdoc! { "a": 5.0 }, true),
            (rawdoc! { "a": { "$in": [re("^x", ""), 5] } }, rawdoc! { "a": "ya" }, false),
            (rawdoc! { "a": { "$in": [re("^x", "")] } }, rawdoc! { "a": ["y", "xx"] }, true),
            (rawdoc! { "a": { "$nin": [re("^x", "")] } }, rawdoc! { "a": "xa" }, false),
            (rawdoc! { "a": { "$nin": [re("^x", "")] } }, rawdoc! { "a": "ya" }, true),
            (rawdoc! { "a": { "$nin": [re("^x", "")] } }, rawdoc! {}, true),
        ]);
    }

    #[test]
    fn filter_regex_errors() {
        assert_eq!(parse_err(rawdoc! { "a": { "$regex": 1 } }), (2, "$regex has to be a string".into()));
        assert_eq!(parse_err(rawdoc! { "a": { "$options": "i" } }), (2, "$options needs a $regex".into()));
        assert_eq!(
            parse_err(rawdoc! { "a": { "$regex": "x", "$options": 1 } }),
            (2, "$options has to be a string".into())
        );
        assert_eq!(
            parse_err(rawdoc! { "a": { "$regex": re("x", "i"), "$options": "m" } }),
            (51075, "options set in both $regex and $options".into())
        );
        assert_eq!(
            parse_err(rawdoc! { "a": { "$options": "m", "$regex": re("x", "i") } }),
            (51074, "options set in both $regex and $options".into())
        );
        assert_eq!(
            parse_err(rawdoc! { "a": { "$regex": "x", "$options": "z" } }),
            (51108, " invalid flag in regex options: z".into())
        );
        let (code, message) = parse_err(rawdoc! { "a": { "$regex": "(" } });
        assert_eq!(code, 51091);
        assert!(message.starts_with("Regular expression is invalid: "), "{message}");
        assert_eq!(parse_err(rawdoc! { "a": { "$regex": "(?=x)" } }).0, 51091, "lookahead is PCRE-only");
        let long = "a".repeat(32_765);
        assert_eq!(
            parse_err(rawdoc! { "a": { "$regex": long.as_str(), "$options": "z" } }),
            (2, "Regular expression is too long".into())
        );
        assert!(Filter::parse(&rawdoc! { "a": { "$regex": &long[1..] } }).is_ok());
    }

    #[test]
    fn filter_not_with_regex_and_operators() {
        table(&[
            (rawdoc! { "a": { "$not": re("^x", "") } }, rawdoc! { "a": "xa" }, false),
            (rawdoc! { "a": { "$not": re("^x", "") } }, rawdoc! { "a": "ya" }, true),
            (rawdoc! { "a": { "$not": re("^x", "") } }, rawdoc! {}, true),
            (rawdoc! { "a": { "$not": { "$gt": 5 } } }, rawdoc! { "a": 3 }, true),
            (rawdoc! { "a": { "$not": { "$gt": 5 } } }, rawdoc! { "a": 6 }, false),
            (rawdoc! { "a": { "$not": { "$gt": 5 } } }, rawdoc! { "a": "x" }, true),
            (rawdoc! { "a": { "$not": { "$gt": 5 } } }, rawdoc! {}, true),
            (rawdoc! { "a": { "$not": { "$gt": 5 } } }, rawdoc! { "a": [1, 6] }, false),
            (rawdoc! { "a": { "$not": { "$gt": 1, "$lt": 5 } } }, rawdoc! { "a": 3 }, false),
            (rawdoc! { "a": { "$not": { "$gt": 1, "$lt": 5 } } }, rawdoc! { "a": 7 }, true),
            (rawdoc! { "a": { "$not": { "$regex": "^x" } } }, rawdoc! { "a": "xa" }, false),
            (rawdoc! { "a": { "$not": { "$size": 2 } } }, rawdoc! { "a": [1] }, true),
        ]);
    }

    #[test]
    fn filter_not_errors() {
        assert_eq!(parse_err(rawdoc! { "a": { "$not": 5 } }), (2, "$not needs a regex or a document".into()));
        assert_eq!(parse_err(rawdoc! { "a": { "$not": {} } }), (2, "$not cannot be empty".into()));
        assert_eq!(parse_err(rawdoc! { "a": { "$not": { "b": 1 } } }), (2, "unknown operator: b".into()));
    }

    #[test]
    fn filter_type_names_codes_and_arrays() {
        let dec: bson::Decimal128 = "1.5".parse().unwrap();
        table(&[
            (rawdoc! { "a": { "$type": "string" } }, rawdoc! { "a": "x" }, true),
            (rawdoc! { "a": { "$type": 2 } }, rawdoc! { "a": "x" }, true),
            (rawdoc! { "a": { "$type": 2.0 } }, rawdoc! { "a": "x" }, true),
            (rawdoc! { "a": { "$type": "string" } }, rawdoc! { "a": 1 }, false),
            (rawdoc! { "a": { "$type": "number" } }, rawdoc! { "a": 1_i64 }, true),
            (rawdoc! { "a": { "$type": "number" } }, rawdoc! { "a": dec }, true),
            (rawdoc! { "a": { "$type": "number" } }, rawdoc! { "a": "1" }, false),
            (rawdoc! { "a": { "$type": "int" } }, rawdoc! { "a": 1.0 }, false),
            (rawdoc! { "a": { "$type": "double" } }, rawdoc! { "a": 1.0 }, true),
            (rawdoc! { "a": { "$type": ["string", 16] } }, rawdoc! { "a": 3 }, true),
            (rawdoc! { "a": { "$type": "null" } }, rawdoc! { "a": null }, true),
            (rawdoc! { "a": { "$type": "null" } }, rawdoc! {}, false),
            (rawdoc! { "a": { "$type": "array" } }, rawdoc! { "a": [] }, true),
            (rawdoc! { "a": { "$type": "array" } }, rawdoc! { "a": [[1]] }, true),
            (rawdoc! { "a": { "$type": "array" } }, rawdoc! { "a": 1 }, false),
            (rawdoc! { "a": { "$type": "string" } }, rawdoc! { "a": [1, "x"] }, true),
            (rawdoc! { "a": { "$type": "object" } }, rawdoc! { "a": { "b": 1 } }, true),
            (rawdoc! { "a": { "$type": "minKey" } }, rawdoc! { "a": bson::RawBson::MinKey }, true),
            (rawdoc! { "a": { "$type": -1 } }, rawdoc! { "a": bson::RawBson::MinKey }, true),
            (rawdoc! { "a": { "$type": 127 } }, rawdoc! { "a": bson::RawBson::MaxKey }, true),
            (rawdoc! { "a": { "$type": "regex" } }, rawdoc! { "a": re("x", "") }, true),
            (rawdoc! { "a.b": { "$type": "int" } }, rawdoc! { "a": [ { "b": "x" }, { "b": 2 } ] }, true),
        ]);
    }

    #[test]
    fn filter_type_errors() {
        assert_eq!(parse_err(rawdoc! { "a": { "$type": "foo" } }), (2, "Unknown type name alias: foo".into()));
        assert_eq!(parse_err(rawdoc! { "a": { "$type": 99 } }), (2, "Invalid numerical type code: 99".into()));
        assert_eq!(parse_err(rawdoc! { "a": { "$type": 1.5 } }), (2, "Invalid numerical type code: 1.5".into()));
        assert_eq!(
            parse_err(rawdoc! { "a": { "$type": {} } }),
            (14, "type must be represented as a number or a string".into())
        );
        assert_eq!(parse_err(rawdoc! { "a": { "$type": [] } }), (9, "a must match at least one type".into()));
    }

    #[test]
    fn filter_mod_matches_truncated_numbers() {
        let dec: bson::Decimal128 = "10.7".parse().unwrap();
        table(&[
            (rawdoc! { "a": { "$mod": [4, 0] } }, rawdoc! { "a": 8 }, true),
            (rawdoc! { "a": { "$mod": [4, 0] } }, rawdoc! { "a": 9 }, false),
            (rawdoc! { "a": { "$mod": [4, 1] } }, rawdoc! { "a": 9_i64 }, true),
            (rawdoc! { "a": { "$mod": [4, 1] } }, rawdoc! { "a": 9.9 }, true),
            (rawdoc! { "a": { "$mod": [4, -1] } }, rawdoc! { "a": -9 }, true),
            (rawdoc! { "a": { "$mod": [4.5, 2.9] } }, rawdoc! { "a": 10 }, true),
            (rawdoc! { "a": { "$mod": [4, 2] } }, rawdoc! { "a": dec }, true),
            (rawdoc! { "a": { "$mod": [4, 0] } }, rawdoc! { "a": f64::NAN }, false),
            (rawdoc! { "a": { "$mod": [4, 0] } }, rawdoc! { "a": f64::INFINITY }, false),
            (rawdoc! { "a": { "$mod": [4, 0] } }, rawdoc! { "a": 1e300 }, false),
            (rawdoc! { "a": { "$mod": [4, 0] } }, rawdoc! { "a": "8" }, false),
            (rawdoc! { "a": { "$mod": [4, 0] } }, rawdoc! {}, false),
            (rawdoc! { "a": { "$mod": [4, 0] } }, rawdoc! { "a": [1, 12] }, true),
            (rawdoc! { "a": { "$mod": [-1, 0] } }, rawdoc! { "a": i64::MIN }, true),
        ]);
    }

    #[test]
    fn filter_mod_errors() {
        let rows: [(bson::RawDocumentBuf, &str); 9] = [
            (rawdoc! { "a": { "$mod": 4 } }, "malformed mod, needs to be an array"),
            (rawdoc! { "a": { "$mod": [] } }, "malformed mod, not enough elements"),
            (rawdoc! { "a": { "$mod": [4] } }, "malformed mod, not enough elements"),
            (rawdoc! { "a": { "$mod": [4, 1, 2] } }, "malformed mod, too many elements"),
            (rawdoc! { "a": { "$mod": ["4", 1] } }, "malformed mod, divisor not a number"),
            (rawdoc! { "a": { "$mod": [4, "1"] } }, "malformed mod, remainder not a number"),
            (rawdoc! { "a": { "$mod": [0, 1] } }, "divisor cannot be 0"),
            (
                rawdoc! { "a": { "$mod": [f64::NAN, 1] } },
                "malformed mod, divisor value is invalid :: caused by :: Unable to coerce NaN/Inf to integral type",
            ),
            (
                rawdoc! { "a": { "$mod": [4, 1e19] } },
                "malformed mod, remainder value is invalid :: caused by :: Out of bounds coercing to integral value",
            ),
        ];
        for (spec, message) in rows {
            assert_eq!(parse_err(spec), (2, message.to_owned()));
        }
        assert_eq!(parse_err(rawdoc! { "a": { "$mod": [0.5, 1] } }), (2, "divisor cannot be 0".into()));
    }

    #[test]
    fn filter_size_counts_arrays_only() {
        table(&[
            (rawdoc! { "a": { "$size": 2 } }, rawdoc! { "a": [1, 2] }, true),
            (rawdoc! { "a": { "$size": 2.0 } }, rawdoc! { "a": [1, 2] }, true),
            (rawdoc! { "a": { "$size": 2_i64 } }, rawdoc! { "a": [1, 2] }, true),
            (rawdoc! { "a": { "$size": 1 } }, rawdoc! { "a": [1, 2] }, false),
            (rawdoc! { "a": { "$size": 0 } }, rawdoc! { "a": [] }, true),
            (rawdoc! { "a": { "$size": 0 } }, rawdoc! {}, false),
            (rawdoc! { "a": { "$size": 0 } }, rawdoc! { "a": null }, false),
            (rawdoc! { "a": { "$size": 1 } }, rawdoc! { "a": "x" }, false),
            (rawdoc! { "a": { "$size": 2 } }, rawdoc! { "a": [[1, 2]] }, false),
            (rawdoc! { "a.b": { "$size": 2 } }, rawdoc! { "a": [ { "b": [1] }, { "b": [1, 2] } ] }, true),
        ]);
    }

    #[test]
    fn filter_size_errors() {
        assert_eq!(parse_err(rawdoc! { "a": { "$size": "2" } }), (2, "$size needs a number".into()));
        assert_eq!(parse_err(rawdoc! { "a": { "$size": 1.5 } }), (2, "$size must be a whole number".into()));
        assert_eq!(parse_err(rawdoc! { "a": { "$size": -1 } }), (2, "$size may not be negative".into()));
        assert_eq!(
            parse_err(rawdoc! { "a": { "$size": 1_i64 << 40 } }),
            (2, "$size must be representable as a 32-bit integer".into())
        );
    }

    #[test]
    fn filter_all_values_regexes_and_elem_match() {
        table(&[
            (rawdoc! { "a": { "$all": [1, 2] } }, rawdoc! { "a": [2, 3, 1] }, true),
            (rawdoc! { "a": { "$all": [1, 2] } }, rawdoc! { "a": [1, 3] }, false),
            (rawdoc! { "a": { "$all": [1] } }, rawdoc! { "a": 1 }, true),
            (rawdoc! { "a": { "$all": [] } }, rawdoc! { "a": [] }, false),
            (rawdoc! { "a": { "$all": [[1, 2]] } }, rawdoc! { "a": [1, 2] }, true),
            (rawdoc! { "a": { "$all": [[1, 2]] } }, rawdoc! { "a": [[1, 2], 3] }, true),
            (rawdoc! { "a": { "$all": [re("^x", ""), "yy"] } }, rawdoc! { "a": ["xa", "yy"] }, true),
            (rawdoc! { "a": { "$all": [re("^x", ""), "yy"] } }, rawdoc! { "a": ["ya", "yy"] }, false),
            (rawdoc! { "a": { "$all": [null] } }, rawdoc! {}, true),
            (rawdoc! { "a": { "$all": [ { "b": 1 } ] } }, rawdoc! { "a": [ { "b": 1 } ] }, true),
            (
                rawdoc! { "a": { "$all": [ { "$elemMatch": { "b": 1 } }, { "$elemMatch": { "c": 2 } } ] } },
                rawdoc! { "a": [ { "b": 1 }, { "c": 2 } ] },
                true,
            ),
            (
                rawdoc! { "a": { "$all": [ { "$elemMatch": { "b": 1 } }, { "$elemMatch": { "c": 3 } } ] } },
                rawdoc! { "a": [ { "b": 1 }, { "c": 2 } ] },
                false,
            ),
        ]);
    }

    #[test]
    fn filter_all_errors() {
        assert_eq!(parse_err(rawdoc! { "a": { "$all": 1 } }), (2, "$all needs an array".into()));
        assert_eq!(parse_err(rawdoc! { "a": { "$all": [ { "$gt": 1 } ] } }), (2, "no $ expressions in $all".into()));
        assert_eq!(
            parse_err(rawdoc! { "a": { "$all": [ { "$elemMatch": { "b": 1 } }, 5 ] } }),
            (2, "$all/$elemMatch has to be consistent".into())
        );
    }

    #[test]
    fn filter_elem_match_value_form() {
        table(&[
            (rawdoc! { "a": { "$elemMatch": { "$gt": 1, "$lt": 5 } } }, rawdoc! { "a": [0, 3] }, true),
            // Without $elemMatch each bound may be met by a different element; with it, not.
            (rawdoc! { "a": { "$elemMatch": { "$gt": 1, "$lt": 5 } } }, rawdoc! { "a": [0, 6] }, false),
            (rawdoc! { "a": { "$gt": 1, "$lt": 5 } }, rawdoc! { "a": [0, 6] }, true),
            (rawdoc! { "a": { "$elemMatch": { "$gt": 1 } } }, rawdoc! { "a": 3 }, false),
            (rawdoc! { "a": { "$elemMatch": { "$gt": 1 } } }, rawdoc! { "a": [[3]] }, false),
            (rawdoc! { "a": { "$elemMatch": { "$regex": "^x" } } }, rawdoc! { "a": ["y", "xz"] }, true),
            (rawdoc! { "a": { "$elemMatch": { "$not": { "$gt": 1 } } } }, rawdoc! { "a": [5, 0] }, true),
            (rawdoc! { "a": { "$elemMatch": { "$not": { "$gt": 1 } } } }, rawdoc! { "a": [5, 6] }, false),
            (rawdoc! { "a": { "$elemMatch": { "$size": 1 } } }, rawdoc! { "a": [[1]] }, true),
            (rawdoc! { "a": { "$elemMatch": { "$elemMatch": { "$gt": 2 } } } }, rawdoc! { "a": [[1], [3]] }, true),
            (rawdoc! { "a": { "$elemMatch": { "$eq": null } } }, rawdoc! { "a": [null] }, true),
            (rawdoc! { "a": { "$elemMatch": { "$eq": null } } }, rawdoc! { "a": [] }, false),
            (rawdoc! { "a": { "$elemMatch": { "$exists": true } } }, rawdoc! { "a": [1] }, true),
        ]);
    }

    #[test]
    fn filter_elem_match_object_form() {
        let doc = rawdoc! { "a": [ { "b": 1, "c": 2 }, { "b": 2, "c": 1 } ] };
        table(&[
            (rawdoc! { "a": { "$elemMatch": { "b": 1, "c": 2 } } }, doc.clone(), true),
            (rawdoc! { "a": { "$elemMatch": { "b": 1, "c": 1 } } }, doc.clone(), false),
            (rawdoc! { "a.b": 1, "a.c": 1 }, doc.clone(), true),
            (rawdoc! { "a": { "$elemMatch": { "$or": [ { "b": 5 }, { "c": 1 } ] } } }, doc.clone(), true),
            (rawdoc! { "a": { "$elemMatch": { "b": { "$gte": 2 } } } }, doc.clone(), true),
            (rawdoc! { "a": { "$elemMatch": {} } }, doc.clone(), true),
            (rawdoc! { "a": { "$elemMatch": {} } }, rawdoc! { "a": [1] }, false),
            (rawdoc! { "a": { "$elemMatch": {} } }, rawdoc! { "a": [] }, false),
            (rawdoc! { "a": { "$elemMatch": { "b": 1 } } }, rawdoc! { "a": { "b": 1 } }, false),
            (rawdoc! { "a": { "$elemMatch": { "0": 7 } } }, rawdoc! { "a": [[7]] }, true),
            (rawdoc! { "a": { "$elemMatch": { "$id": 7 } } }, rawdoc! { "a": [ { "$ref": "c", "$id": 7 } ] }, true),
            (rawdoc! { "x.a": { "$elemMatch": { "b": 1 } } }, rawdoc! { "x": [ { "a": [ { "b": 1 } ] } ] }, true),
        ]);
    }

    #[test]
    fn filter_elem_match_errors() {
        assert_eq!(parse_err(rawdoc! { "a": { "$elemMatch": 1 } }), (2, "$elemMatch needs an Object".into()));
        assert_eq!(
            parse_err(rawdoc! { "a": { "$elemMatch": { "b": 1, "$where": "x" } } }),
            (6108304, "no globalScriptEngine in $where parsing".into())
        );
        assert_eq!(
            parse_err(rawdoc! { "a": { "$elemMatch": { "$gt": 1, "b": 1 } } }),
            (2, "unknown operator: b".into())
        );
    }

    #[test]
    fn filter_bits_masks_positions_and_bindata() {
        let bin = |bytes: Vec<u8>| bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes };
        table(&[
            (rawdoc! { "a": { "$bitsAllSet": 5 } }, rawdoc! { "a": 7 }, true),
            (rawdoc! { "a": { "$bitsAllSet": 5 } }, rawdoc! { "a": 6 }, false),
            (rawdoc! { "a": { "$bitsAllSet": [0, 2] } }, rawdoc! { "a": 5_i64 }, true),
            (rawdoc! { "a": { "$bitsAnySet": [1, 3] } }, rawdoc! { "a": 8.0 }, true),
            (rawdoc! { "a": { "$bitsAnySet": [1, 3] } }, rawdoc! { "a": 5 }, false),
            (rawdoc! { "a": { "$bitsAllClear": [1, 3] } }, rawdoc! { "a": 5 }, true),
            (rawdoc! { "a": { "$bitsAnyClear": [0, 1] } }, rawdoc! { "a": 1 }, true),
            (rawdoc! { "a": { "$bitsAnyClear": [0, 1] } }, rawdoc! { "a": 3 }, false),
            // Bits past 63 take the sign.
            (rawdoc! { "a": { "$bitsAllSet": [100] } }, rawdoc! { "a": -1 }, true),
            (rawdoc! { "a": { "$bitsAllClear": [100] } }, rawdoc! { "a": 1 }, true),
            (rawdoc! { "a": { "$bitsAllSet": 1 } }, rawdoc! { "a": 1.5 }, false),
            (rawdoc! { "a": { "$bitsAllClear": 1 } }, rawdoc! { "a": 1e19 }, false),
            (rawdoc! { "a": { "$bitsAllClear": 1 } }, rawdoc! { "a": "x" }, false),
            (rawdoc! { "a": { "$bitsAllClear": 1 } }, rawdoc! {}, false),
            (rawdoc! { "a": { "$bitsAllSet": bin(vec![0x05]) } }, rawdoc! { "a": 5 }, true),
            (rawdoc! { "a": { "$bitsAllSet": [8] } }, rawdoc! { "a": bin(vec![0x00, 0x01]) }, true),
            (rawdoc! { "a": { "$bitsAllClear": [20] } }, rawdoc! { "a": bin(vec![0xff]) }, true),
            (rawdoc! { "a": { "$bitsAllSet": [] } }, rawdoc! { "a": 0 }, true),
            (rawdoc! { "a": { "$bitsAnySet": [] } }, rawdoc! { "a": 0 }, false),
            (rawdoc! { "a": { "$bitsAnySet": 2 } }, rawdoc! { "a": [1, 2] }, true),
        ]);
    }

    #[test]
    fn filter_bits_errors() {
        assert_eq!(
            parse_err(rawdoc! { "a": { "$bitsAllSet": "x" } }),
            (2, "$bitsAllSet takes an Array, a number, or a BinData but received: $bitsAllSet: \"x\"".into())
        );
        assert_eq!(
            parse_err(rawdoc! { "a": { "$bitsAllSet": -1 } }),
            (9, "Expected a positive number in: $bitsAllSet: -1".into())
        );
        assert_eq!(
            parse_err(rawdoc! { "a": { "$bitsAnySet": 1.5 } }),
            (9, "Expected an integer: $bitsAnySet: 1.5".into())
        );
        assert_eq!(
            parse_err(rawdoc! { "a": { "$bitsAnySet": 1e19 } }),
            (9, "Cannot represent as a 64-bit integer: $bitsAnySet: 1e+19.0".into())
        );
        assert_eq!(
            parse_err(rawdoc! { "a": { "$bitsAllClear": [-1] } }),
            (2, "bit positions must be >= 0 but got: 0: -1".into())
        );
        assert_eq!(
            parse_err(rawdoc! { "a": { "$bitsAllClear": ["x"] } }),
            (2, "bit positions must be an integer but got: 0: \"x\"".into())
        );
    }

    #[test]
    fn filter_where_and_unknown_operators() {
        assert_eq!(
            parse_err(rawdoc! { "$where": "true" }),
            (6108304, "no globalScriptEngine in $where parsing".into())
        );
        assert_eq!(
            parse_err(rawdoc! { "$or": [ { "a": 1 }, { "$where": "true" } ] }),
            (6108304, "no globalScriptEngine in $where parsing".into())
        );
        let in_match = Filter::parse_match_stage(&rawdoc! { "$where": "true" }).unwrap_err();
        assert_eq!((in_match.code().code(), in_match.message()), (2, "$where is not allowed in this context"));
        assert!(Filter::parse_match_stage(&rawdoc! { "a": 1 }).is_ok());
        assert_eq!(parse_err(rawdoc! { "a": { "$where": "x" } }), (2, "$where cannot be applied to a field".into()));
        assert_eq!(
            parse_err(rawdoc! { "$foo": 1 }),
            (
                2,
                "unknown top level operator: $foo. If you have a field name that starts with a '$' symbol, \
                 consider using $getField or $setField."
                    .into()
            )
        );
        assert_eq!(parse_err(rawdoc! { "a": { "$foo": 1 } }), (2, "unknown operator: $foo".into()));
    }

    #[test]
    fn filter_comment_any_type_and_nor() {
        table(&[
            (rawdoc! { "$comment": { "x": [1] }, "a": 1 }, rawdoc! { "a": 1 }, true),
            (rawdoc! { "$comment": 5 }, rawdoc! {}, true),
            (rawdoc! { "$nor": [ { "a": 1 }, { "b": 2 } ] }, rawdoc! { "a": 2 }, true),
            (rawdoc! { "$nor": [ { "a": { "$exists": false } } ] }, rawdoc! {}, false),
        ]);
    }

    #[test]
    fn filter_first_array_match_positions() {
        let key = |spec: bson::RawDocumentBuf, doc: bson::RawDocumentBuf| filter(spec).first_array_match(&doc);
        assert_eq!(key(rawdoc! { "a": 6 }, rawdoc! { "a": [5, 6] }), Some(1));
        assert_eq!(key(rawdoc! { "a": 7 }, rawdoc! { "a": [5, 6] }), None);
        assert_eq!(key(rawdoc! { "a": 5 }, rawdoc! { "a": 5 }), None);
        assert_eq!(key(rawdoc! { "a.b": 2 }, rawdoc! { "a": [ { "b": 1 }, { "b": [0, 2] } ] }), Some(1));
        assert_eq!(
            key(rawdoc! { "a": { "$elemMatch": { "b": 2 } } }, rawdoc! { "a": [ { "b": 1 }, { "b": 2 } ] }),
            Some(1)
        );
        assert_eq!(key(rawdoc! { "x": 1, "a": { "$gt": 4 } }, rawdoc! { "x": 1, "a": [1, 9] }), Some(1));
        assert_eq!(key(rawdoc! { "a": 7 }, rawdoc! { "a": [5, 6] }), None, "no match, no key");
    }

    /// mongod's `elemMatchKey` as `$` sees it, by the shape of the query: for a projection
    /// (conjunctions in query order) and for an update (canonical order: operator, then path).
    #[test]
    fn filter_match_key_follows_mongod_matcher() {
        let grades = rawdoc! { "_id": 1, "grades": [ { "grade": 80, "mean": 75 }, { "grade": 85, "mean": 90 }, { "grade": 85, "mean": 85 } ] };
        let scores = rawdoc! { "_id": 1, "s": [80, 85, 90], "t": [1, 2] };
        let deans = rawdoc! { "_id": 8, "activity_ids": [1, 2], "grades": [90, 95], "deans_list": [2021, 2020] };
        // (query, document, projection key, update key)
        type Row<'d> = (bson::RawDocumentBuf, &'d bson::RawDocumentBuf, Option<usize>, Option<usize>);
        let rows: Vec<Row<'_>> = vec![
            (rawdoc! { "s": 85 }, &scores, Some(1), Some(1)),
            (rawdoc! { "_id": 1, "s": { "$gte": 85 } }, &scores, Some(1), Some(1)),
            (rawdoc! { "grades.grade": 85 }, &grades, Some(1), Some(1)),
            // `$elemMatch`: the element that satisfies every condition at once.
            (
                rawdoc! { "grades": { "$elemMatch": { "grade": { "$lte": 90 }, "mean": { "$gt": 80 } } } },
                &grades,
                Some(1),
                Some(1),
            ),
            (rawdoc! { "grades": { "$elemMatch": { "grade": 85, "mean": 85 } } }, &grades, Some(2), Some(2)),
            // Without `$elemMatch` each condition records its own element and the last one wins:
            // in query order for a projection, by operator then path for an update.
            (rawdoc! { "grades.grade": 85, "grades.mean": 85 }, &grades, Some(2), Some(2)),
            (rawdoc! { "grades.mean": 85, "grades.grade": 85 }, &grades, Some(1), Some(2)),
            (rawdoc! { "grades.mean": { "$gt": 80 }, "grades.grade": 80 }, &grades, Some(0), Some(1)),
            // mongod's manual: deans_list.$ is set at grades' position.
            (rawdoc! { "activity_ids": 1, "grades": 95, "deans_list": 2021 }, &deans, Some(0), Some(1)),
            (rawdoc! { "$and": [ { "s": 90 }, { "t": 1 } ] }, &scores, Some(0), Some(0)),
            (rawdoc! { "$and": [ { "t": 1 }, { "s": 90 } ] }, &scores, Some(2), Some(0)),
            // A condition that reaches no array leaves the key of an earlier one.
            (rawdoc! { "s": 90, "_id": 1 }, &scores, Some(2), Some(2)),
            // `$or` records nothing, unless the optimizer makes it one clause or an `$in`.
            (rawdoc! { "$or": [ { "s": 90 }, { "t": 2 } ] }, &scores, None, None),
            (rawdoc! { "$or": [ { "s": 90 } ] }, &scores, Some(2), Some(2)),
            (rawdoc! { "$or": [ { "$or": [ { "s": 90 } ] } ] }, &scores, Some(2), Some(2)),
            (rawdoc! { "$or": [ { "s": 90 }, { "s": 85 } ] }, &scores, Some(1), Some(1)),
            (rawdoc! { "$or": [ { "s": 90 }, { "s": { "$gt": 80 } } ] }, &scores, None, None),
            (rawdoc! { "s": 80, "$or": [ { "t": 2 }, { "t": 5 } ] }, &scores, Some(1), Some(1)),
            (rawdoc! { "s": 80, "$or": [ { "t": 2 }, { "_id": 5 } ] }, &scores, Some(0), Some(0)),
            (rawdoc! { "s": { "$in": [90, 85] } }, &scores, Some(1), Some(1)),
            // Negations record nothing.
            (rawdoc! { "s": { "$ne": 1 } }, &scores, None, None),
            (rawdoc! { "$nor": [ { "s": 1 } ] }, &scores, None, None),
            (rawdoc! { "s": { "$not": { "$lt": 50 } } }, &scores, None, None),
            // `$size` tests the array itself; a value `$elemMatch` records its element.
            (rawdoc! { "s": { "$size": 3 } }, &scores, None, None),
            (rawdoc! { "s": { "$elemMatch": { "$gt": 82 } } }, &scores, Some(1), Some(1)),
            // The optimizer moves the children of a nested conjunction after the others.
            (rawdoc! { "$and": [ { "s": 90 }, { "_id": 1 } ], "t": 2 }, &scores, Some(2), Some(1)),
            (rawdoc! { "$or": [ { "$and": [ { "s": 90 }, { "_id": 1 } ] } ], "t": 2 }, &scores, Some(2), Some(1)),
        ];
        for (spec, doc, projection, update) in rows {
            let f = filter(spec.clone());
            assert!(f.matches(doc), "{spec:?} must match");
            assert_eq!(f.first_array_match(doc), projection, "projection {spec:?}");
            assert_eq!(f.match_key(doc), update, "update {spec:?}");
        }
    }

    #[test]
    fn filter_comment_is_ignored() {
        assert!(matches(rawdoc! { "$comment": "hi", "a": 1 }, rawdoc! { "a": 1 }));
    }

    #[test]
    fn filter_seed_equalities_nested_and_id_first() {
        let f = filter(rawdoc! {
            "x.y": 1, "$and": [ { "a": { "$eq": 2 } }, { "b": { "$gt": 3 } } ], "_id": 7, "c": { "$in": [4] }
        });
        assert_eq!(f.equality_seed().unwrap(), doc! { "_id": 7, "a": 2, "c": 4, "x": { "y": 1 } });
    }

    #[test]
    fn filter_seed_skips_non_equalities() {
        let f = filter(rawdoc! { "a": { "$in": [1, 2] }, "$or": [ { "b": 1 }, { "c": 1 } ], "d": { "$ne": 1 } });
        assert_eq!(f.equality_seed().unwrap(), doc! {});
        let single = filter(rawdoc! { "$or": [ { "b": 1 } ] });
        assert_eq!(single.equality_seed().unwrap(), doc! { "b": 1 });
    }

    #[test]
    fn filter_seed_conflicting_paths_are_54() {
        let err = filter(rawdoc! { "a": 1, "$and": [ { "a": 2 } ] }).equality_seed().unwrap_err();
        assert_eq!(err.code().code(), 54);
        assert_eq!(err.message(), "cannot infer query fields to set, path 'a' is matched twice");
        let err = filter(rawdoc! { "a": 1, "a.b": 2 }).equality_seed().unwrap_err();
        assert_eq!(err.message(), "cannot infer query fields to set, both paths 'a.b' and 'a' are matched");
    }

    mod comparison_properties {
        use super::*;
        use proptest::prelude::*;

        /// Scalars of every comparable kind, numbers of all four types clustered around a few
        /// values so that cross-type ties are common. NaN is left out: it is the one value
        /// where filters and the sort order disagree on purpose (tested above).
        fn arb_scalar() -> impl Strategy<Value = RawBson> {
            let small = -3i64..3;
            prop_oneof![
                small.clone().prop_map(|i| RawBson::Int32(i32::try_from(i).unwrap_or_default())),
                small.clone().prop_map(RawBson::Int64),
                small.clone().prop_map(|i| RawBson::Double(i as f64)),
                (small.clone(), 0u8..4).prop_map(|(i, q)| RawBson::Double(i as f64 + f64::from(q) / 4.0)),
                small.prop_map(|i| RawBson::Decimal128(i.to_string().parse().unwrap())),
                any::<i64>().prop_map(RawBson::Int64),
                any::<f64>().prop_filter("no NaN", |d| !d.is_nan()).prop_map(RawBson::Double),
                "[a-c]{0,3}".prop_map(RawBson::String),
                any::<bool>().prop_map(RawBson::Boolean),
                Just(RawBson::Null),
                (0i64..3).prop_map(|ms| RawBson::DateTime(bson::DateTime::from_millis(ms))),
            ]
        }

        fn expected(op: &str, doc: &RawBson, rhs: &RawBson) -> bool {
            let (a, b) = (doc.as_raw_bson_ref(), rhs.as_raw_bson_ref());
            if canonical_type(a) != canonical_type(b) {
                return false;
            }
            let ord = compare_values(a, b);
            match op {
                "$eq" => ord.is_eq(),
                "$lt" => ord.is_lt(),
                "$lte" => ord.is_le(),
                "$gt" => ord.is_gt(),
                _ => ord.is_ge(),
            }
        }

        proptest! {
            #[test]
            fn filter_comparison_agrees_with_compare_values(
                value in arb_scalar(),
                rhs in arb_scalar(),
                op in prop::sample::select(vec!["$eq", "$lt", "$lte", "$gt", "$gte"]),
            ) {
                let mut doc = bson::RawDocumentBuf::new();
                doc.append(bson::raw::cstr!("a"), value.clone());
                let mut ops = bson::RawDocumentBuf::new();
                ops.append(<&bson::raw::CStr>::try_from(op).unwrap(), rhs.clone());
                let mut spec = bson::RawDocumentBuf::new();
                spec.append(bson::raw::cstr!("a"), ops);
                let got = Filter::parse(&spec).unwrap().matches(&doc);
                prop_assert_eq!(got, expected(op, &value, &rhs), "{:?} {} {:?}", value, op, rhs);
                // Implicit equality is `$eq`.
                if op == "$eq" {
                    let mut implicit = bson::RawDocumentBuf::new();
                    implicit.append(bson::raw::cstr!("a"), rhs.clone());
                    prop_assert_eq!(Filter::parse(&implicit).unwrap().matches(&doc), got);
                }
            }
        }
    }

    #[test]
    fn filter_paths_past_180_components_are_5729100() {
        let spec = |n: usize| {
            let mut spec = bson::RawDocumentBuf::new();
            spec.append(<&bson::raw::CStr>::try_from(vec!["a"; n].join(".").as_str()).unwrap(), 1);
            spec
        };
        assert_eq!(parse_err(spec(181)), (5_729_100, "FieldPath is too long".to_owned()));
        assert_eq!(parse_err(spec(10_000)).0, 5_729_100);
        assert!(Filter::parse(&spec(180)).is_ok());
        let mut elem_match = bson::RawDocumentBuf::new();
        elem_match.append(bson::raw::cstr!("x"), bson::rawdoc! { "$elemMatch": spec(181) });
        assert_eq!(parse_err(elem_match).0, 5_729_100);
    }
}
