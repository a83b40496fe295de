//! The set operators: arrays read as sets of distinct values (equal under the collation),
//! `$setUnion $setIntersection $setDifference $setEquals $setIsSubset`, and the truth tests
//! `$allElementsTrue $anyElementTrue`.

use bson::{Bson, RawBson, RawBsonRef};

use super::args;
use super::ops::SetOp;
use super::syntax::{Expression, Operator};
use super::value::{Value, nullish, truthy, type_of};
use crate::error::ErrorCode;
use crate::query::collation::Collation;
use crate::query::error::QueryError;
use crate::query::order::compare_collated;

/// Parses `{name: arg}` for an operator of this family.
pub(super) fn parse(op: SetOp, arg: RawBsonRef<'_>) -> Result<Expression, QueryError> {
    let name = op.name();
    let args = match op {
        SetOp::Union | SetOp::Intersection => args::positional(name, arg, 0, None)?,
        SetOp::Difference | SetOp::IsSubset => args::positional(name, arg, 2, Some(2))?,
        SetOp::AllElementsTrue | SetOp::AnyElementTrue => args::positional(name, arg, 1, Some(1))?,
        SetOp::Equals => {
            let list = args::positional(name, arg, 0, None)?;
            if list.len() < 2 {
                return Err(QueryError::new(
                    ErrorCode::Location17045,
                    format!("$setEquals needs at least two arguments had: {}", list.len()),
                ));
            }
            list
        }
    };
    Ok(Expression::Operator { op: Operator::Set(op), args })
}

/// The distinct values of an array, first occurrences in order, each kept as raw BSON too
/// for the comparisons.
struct Set {
    items: Vec<(Bson, RawBson)>,
}

impl Set {
    fn new() -> Self {
        Self { items: Vec::new() }
    }

    fn contains(&self, raw: &RawBson, collation: Option<&Collation>) -> bool {
        self.items.iter().any(|(_, r)| compare_collated(r.as_raw_bson_ref(), raw.as_raw_bson_ref(), collation).is_eq())
    }

    fn insert(&mut self, value: Bson, collation: Option<&Collation>) -> Result<(), QueryError> {
        let raw = RawBson::try_from(value.clone()).map_err(QueryError::invalid_bson)?;
        if !self.contains(&raw, collation) {
            self.items.push((value, raw));
        }
        Ok(())
    }

    fn from_array(items: Vec<Bson>, collation: Option<&Collation>) -> Result<Self, QueryError> {
        let mut set = Self::new();
        for item in items {
            set.insert(item, collation)?;
        }
        Ok(set)
    }

    fn is_subset_of(&self, other: &Self, collation: Option<&Collation>) -> bool {
        self.items.iter().all(|(_, r)| other.contains(r, collation))
    }

    fn into_array(self) -> Bson {
        Bson::Array(self.items.into_iter().map(|(v, _)| v).collect())
    }
}

/// Evaluates an operator of this family; `eval(i)` evaluates its `i`th argument.
pub(super) fn evaluate(
    op: SetOp,
    args: &[Expression],
    collation: Option<&Collation>,
    eval: &mut dyn FnMut(usize) -> Result<Value, QueryError>,
) -> Result<Value, QueryError> {
    let name = op.name();
    match op {
        SetOp::AllElementsTrue | SetOp::AnyElementTrue => {
            let v = eval(0)?;
            let Some(Bson::Array(items)) = v else {
                let code =
                    if op == SetOp::AllElementsTrue { ErrorCode::Location17040 } else { ErrorCode::Location17041 };
                return Err(QueryError::new(
                    code,
                    format!("{name}'s argument must be an array, but is {}", type_of(&v)),
                ));
            };
            let mut truths = items.into_iter().map(|i| truthy(&Some(i)));
            Ok(Some(Bson::Boolean(if op == SetOp::AllElementsTrue { truths.all(|t| t) } else { truths.any(|t| t) })))
        }
        SetOp::Union | SetOp::Intersection => {
            let code = if op == SetOp::Union { ErrorCode::Location17043 } else { ErrorCode::Location17047 };
            let mut result: Option<Set> = None;
            let mut null = false;
            for i in 0..args.len() {
                let v = eval(i)?;
                let items = match v {
                    v if nullish(&v) => {
                        null = true;
                        continue;
                    }
                    Some(Bson::Array(items)) => items,
                    other => {
                        return Err(QueryError::new(
                            code,
                            format!(
                                "All operands of {name} must be arrays. One argument is of type: {}",
                                type_of(&other)
                            ),
                        ));
                    }
                };
                let set = Set::from_array(items, collation)?;
                result = Some(match result {
                    None => set,
                    Some(mut so_far) if op == SetOp::Union => {
                        for (value, _) in set.items {
                            so_far.insert(value, collation)?;
                        }
                        so_far
                    }
                    Some(so_far) => {
                        Set { items: so_far.items.into_iter().filter(|(_, r)| set.contains(r, collation)).collect() }
                    }
                });
            }
            if null {
                return Ok(Some(Bson::Null));
            }
            Ok(Some(result.unwrap_or_else(Set::new).into_array()))
        }
        SetOp::Difference | SetOp::IsSubset => {
            let (a, b) = (eval(0)?, eval(1)?);
            let (first, second) = if op == SetOp::Difference {
                (ErrorCode::Location17048, ErrorCode::Location17049)
            } else {
                (ErrorCode::Location17046, ErrorCode::Location17042)
            };
            if op == SetOp::Difference && (nullish(&a) || nullish(&b)) {
                return Ok(Some(Bson::Null));
            }
            let Some(Bson::Array(a)) = a else {
                return Err(QueryError::new(
                    first,
                    format!("both operands of {name} must be arrays. First argument is of type: {}", type_of(&a)),
                ));
            };
            let Some(Bson::Array(b)) = b else {
                return Err(QueryError::new(
                    second,
                    format!("both operands of {name} must be arrays. Second argument is of type: {}", type_of(&b)),
                ));
            };
            let (a, b) = (Set::from_array(a, collation)?, Set::from_array(b, collation)?);
            if op == SetOp::IsSubset {
                return Ok(Some(Bson::Boolean(a.is_subset_of(&b, collation))));
            }
            let kept = a.items.into_iter().filter(|(_, r)| !b.contains(r, collation)).collect();
            Ok(Some(Set { items: kept }.into_array()))
        }
        SetOp::Equals => {
            let mut first: Option<Set> = None;
            for i in 0..args.len() {
                let v = eval(i)?;
                let Some(Bson::Array(items)) = v else {
                    return Err(QueryError::new(
                        ErrorCode::Location17044,
                        format!("All operands of $setEquals must be arrays. One argument is of type: {}", type_of(&v)),
                    ));
                };
                let set = Set::from_array(items, collation)?;
                match &first {
                    None => first = Some(set),
                    Some(f) => {
                        if !(f.is_subset_of(&set, collation) && set.is_subset_of(f, collation)) {
                            return Ok(Some(Bson::Boolean(false)));
                        }
                    }
                }
            }
            Ok(Some(Bson::Boolean(true)))
        }
    }
}
