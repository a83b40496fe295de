//! Parsing an operator's arguments as mongod does: a positional list with its arity checks,
//! or an object of named arguments mapped onto fixed slots.

use bson::RawBsonRef;

use super::syntax::Expression;
use crate::error::ErrorCode;
use crate::query::elements::fields;
use crate::query::error::QueryError;
use crate::query::render;

/// mongod's `parseArguments`: an array is the argument list, anything else one argument;
/// then its arity check: exactly `min` (16020) when `min == max`, else between `min` and
/// `max` (28667); `max` of `None` is unbounded.
pub(super) fn positional(
    name: &str,
    arg: RawBsonRef<'_>,
    min: usize,
    max: Option<usize>,
) -> Result<Vec<Expression>, QueryError> {
    let args = match arg {
        RawBsonRef::Array(arr) => {
            let mut out = Vec::new();
            for item in arr {
                out.push(Expression::parse(item.map_err(QueryError::invalid_bson)?)?);
            }
            out
        }
        other => vec![Expression::parse(other)?],
    };
    let n = args.len();
    match max {
        Some(max) if max == min && n != min => Err(QueryError::new(
            ErrorCode::Location16020,
            format!("Expression {name} takes exactly {min} arguments. {n} were passed in."),
        )),
        Some(max) if n < min || n > max => Err(QueryError::new(
            ErrorCode::Location28667,
            format!("Expression {name} takes at least {min} arguments, and at most {max}, but {n} were passed in."),
        )),
        None if n < min => Err(QueryError::new(
            ErrorCode::Location28667,
            format!("Expression {name} takes at least {min} arguments, but {n} were passed in."),
        )),
        _ => Ok(args),
    }
}

/// mongod's codes for an object-form operator: the argument is not an object, it has an
/// unknown field, or it lacks a required one (one code per required field, in slot order).
pub(super) struct NamedErrors<'a> {
    /// Code and message (`{name}` and `{type}` substituted) for a non-object argument.
    pub not_object: (ErrorCode, &'a str),
    /// Code and message (`{name}` and `{field}` substituted) for an unknown field.
    pub unknown: (ErrorCode, &'a str),
    /// Code and message (`{name}` and `{field}` substituted) per required field.
    pub missing: &'a [(ErrorCode, &'a str)],
}

/// Parses `{field: expr, ...}` onto `slots`: the required fields first (each must be there),
/// then the optional ones, whose absence is kept as `None` so that "not given" and "evaluates
/// to null" stay apart.
pub(super) fn named(
    name: &str,
    arg: RawBsonRef<'_>,
    required: &[&str],
    optional: &[&str],
    errors: &NamedErrors<'_>,
) -> Result<Vec<Option<Expression>>, QueryError> {
    let RawBsonRef::Document(spec) = arg else {
        let (code, message) = errors.not_object;
        let type_name = render::type_name(arg.element_type());
        return Err(QueryError::new(code, message.replace("{name}", name).replace("{type}", type_name)));
    };
    let mut slots: Vec<Option<Expression>> = vec![None; required.len() + optional.len()];
    for (key, value) in fields(spec) {
        let Some(i) = required.iter().chain(optional).position(|f| *f == key) else {
            let (code, message) = errors.unknown;
            return Err(QueryError::new(code, message.replace("{name}", name).replace("{field}", key)));
        };
        if let Some(slot) = slots.get_mut(i) {
            *slot = Some(Expression::parse(value)?);
        }
    }
    for (i, field) in required.iter().enumerate() {
        if slots.get(i).is_some_and(Option::is_none) {
            let (code, message) = errors.missing.get(i).copied().unwrap_or((ErrorCode::FailedToParse, ""));
            return Err(QueryError::new(code, message.replace("{name}", name).replace("{field}", field)));
        }
    }
    Ok(slots)
}

/// The slots of [`named`] as the operator's argument list: an absent optional slot becomes
/// [`absent`], which evaluates to missing and which [`is_absent`] recognises.
pub(super) fn into_args(slots: Vec<Option<Expression>>) -> Vec<Expression> {
    slots.into_iter().map(|s| s.unwrap_or_else(absent)).collect()
}

/// The marker of an optional argument the user did not give.
pub(super) fn absent() -> Expression {
    Expression::FieldPath { var: super::syntax::Variable::Remove, path: vec![ABSENT.to_owned()] }
}

/// Whether `e` is the marker of an absent argument.
pub(super) fn is_absent(e: Option<&Expression>) -> bool {
    match e {
        None => true,
        Some(Expression::FieldPath { var: super::syntax::Variable::Remove, path }) => {
            path.first().is_some_and(|p| p == ABSENT)
        }
        Some(_) => false,
    }
}

/// A path component no user can write (it holds a NUL), so the marker never collides with
/// `$$REMOVE.x`.
const ABSENT: &str = "\0absent";
