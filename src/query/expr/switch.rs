//! `$switch`: the `then` of the first branch whose `case` is true, else `default`.
//!
//! Parsed into `[case, then, case, then, ..., default?]`: an odd count means a default.

use bson::RawBsonRef;

use super::budget::Budget;
use super::syntax::{Expression, Operator, Variables};
use super::value::{Value, truthy};
use crate::error::ErrorCode;
use crate::query::elements::fields;
use crate::query::error::QueryError;
use crate::query::render;

fn shown(value: RawBsonRef<'_>) -> String {
    render::element("", value).trim_start_matches(": ").to_owned()
}

/// Parses `{branches: [{case, then}, ...], default?}`.
///
/// # Errors
/// mongod's 40060-40068 for a malformed specification.
pub(super) fn parse(arg: RawBsonRef<'_>) -> Result<Expression, QueryError> {
    let RawBsonRef::Document(spec) = arg else {
        return Err(QueryError::new(
            ErrorCode::Location40060,
            format!("$switch requires an object as an argument, found: {}", shown(arg)),
        ));
    };
    let mut branches = Vec::new();
    let mut default = None;
    for (key, value) in fields(spec) {
        match key {
            "branches" => {
                let RawBsonRef::Array(list) = value else {
                    return Err(QueryError::new(
                        ErrorCode::Location40061,
                        format!("$switch expected an array for 'branches', found: {}", shown(value)),
                    ));
                };
                for branch in list {
                    let branch = branch.map_err(QueryError::invalid_bson)?;
                    let RawBsonRef::Document(branch) = branch else {
                        return Err(QueryError::new(
                            ErrorCode::Location40062,
                            format!("$switch expected each branch to be an object, found: {}", shown(branch)),
                        ));
                    };
                    let (mut case, mut then) = (None, None);
                    for (name, part) in fields(branch) {
                        match name {
                            "case" => case = Some(Expression::parse(part)?),
                            "then" => then = Some(Expression::parse(part)?),
                            other => {
                                return Err(QueryError::new(
                                    ErrorCode::Location40063,
                                    format!("$switch found an unknown argument to a branch: {other}"),
                                ));
                            }
                        }
                    }
                    let case = case.ok_or_else(|| {
                        QueryError::new(
                            ErrorCode::Location40064,
                            "$switch requires each branch have a 'case' expression",
                        )
                    })?;
                    let then = then.ok_or_else(|| {
                        QueryError::new(
                            ErrorCode::Location40065,
                            "$switch requires each branch have a 'then' expression.",
                        )
                    })?;
                    branches.push(case);
                    branches.push(then);
                }
            }
            "default" => default = Some(Expression::parse(value)?),
            other => {
                return Err(QueryError::new(
                    ErrorCode::Location40067,
                    format!("$switch found an unknown argument: {other}"),
                ));
            }
        }
    }
    if branches.is_empty() {
        return Err(QueryError::new(ErrorCode::Location40068, "$switch requires at least one branch."));
    }
    branches.extend(default);
    Ok(Expression::Operator { op: Operator::Switch, args: branches })
}

/// Evaluates a parsed `$switch`.
///
/// # Errors
/// 40066 when no branch matches and there is no default; the branches' errors.
pub(super) fn evaluate(
    args: &[Expression],
    root: &bson::RawDocument,
    vars: &Variables,
    budget: &mut Budget,
) -> Result<Value, QueryError> {
    let mut pairs = args.chunks_exact(2);
    for pair in pairs.by_ref() {
        if let [case, then] = pair
            && truthy(&case.evaluate_in(root, vars, budget)?)
        {
            return then.evaluate_in(root, vars, budget);
        }
    }
    match pairs.remainder() {
        [default] => default.evaluate_in(root, vars, budget),
        _ => Err(QueryError::new(
            ErrorCode::Location40066,
            "$switch could not find a matching branch for an input, and no default was specified.",
        )),
    }
}
