//! The array operators: `$arrayElemAt`, `$first`, `$last`, `$concatArrays`, `$isArray`, and
//! the ones that bind a variable per element or per name: `$filter`, `$map`, `$reduce`, `$let`.
//!
//! The binding operators keep their variable names in the tree as string literals in fixed
//! argument slots (see each parser), so the tree keeps one shape for every operator.

use bson::{Bson, RawBsonRef, RawDocument};

use super::budget::Budget;
use super::names::validate_variable_name;
use super::syntax::{Expression, Operator, Variables};
use super::value::{Value, nullish, truthy, type_of};
use crate::error::ErrorCode;
use crate::query::elements::fields;
use crate::query::error::QueryError;
use crate::query::number::Number;

fn error(code: ErrorCode, message: String) -> QueryError {
    QueryError::new(code, message)
}

/// A variable name argument (`as`, a `$let` name), kept as a string literal.
fn name_literal(name: &str) -> Expression {
    Expression::Literal(Bson::String(name.to_owned()))
}

/// The named arguments of an object-form operator, checked against `known`.
fn named<'a>(
    spec: RawBsonRef<'a>,
    op: &str,
    known: &[&str],
    (not_object, unknown): (ErrorCode, ErrorCode),
) -> Result<Vec<(&'a str, RawBsonRef<'a>)>, QueryError> {
    let RawBsonRef::Document(spec) = spec else {
        return Err(error(not_object, format!("{op} only supports an object as its argument")));
    };
    let entries: Vec<(&str, RawBsonRef<'_>)> = fields(spec).collect();
    if let Some((other, _)) = entries.iter().find(|(k, _)| !known.contains(k)) {
        return Err(error(unknown, format!("Unrecognized parameter to {op}: {other}")));
    }
    Ok(entries)
}

fn get<'a>(entries: &[(&'a str, RawBsonRef<'a>)], name: &str) -> Option<RawBsonRef<'a>> {
    entries.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

fn variable_name(value: Option<RawBsonRef<'_>>, default: &str) -> Result<String, QueryError> {
    let name = match value {
        None => default.to_owned(),
        Some(RawBsonRef::String(name)) => name.to_owned(),
        Some(other) => {
            return Err(QueryError::failed_to_parse(format!(
                "'as' must be a string, found {:?}",
                other.element_type()
            )));
        }
    };
    validate_variable_name(&name, true)?;
    Ok(name)
}

/// Parses the object-form operators of this family; `None` for other operators.
pub(super) fn parse(op: Operator, arg: RawBsonRef<'_>) -> Option<Result<Expression, QueryError>> {
    let parsed = match op {
        Operator::Filter => parse_filter(arg),
        Operator::Map => parse_map(arg),
        Operator::Reduce => parse_reduce(arg),
        Operator::Let => parse_let(arg),
        _ => return None,
    };
    Some(parsed)
}

/// `$filter: {input, as?, cond, limit?}` → `[input, as, cond, limit?]`.
fn parse_filter(arg: RawBsonRef<'_>) -> Result<Expression, QueryError> {
    let entries =
        named(arg, "$filter", &["input", "as", "cond", "limit"], (ErrorCode::Location28646, ErrorCode::Location28647))?;
    let input = get(&entries, "input")
        .ok_or_else(|| error(ErrorCode::Location28648, "Missing 'input' parameter to $filter".into()))?;
    let cond = get(&entries, "cond")
        .ok_or_else(|| error(ErrorCode::Location28650, "Missing 'cond' parameter to $filter".into()))?;
    let mut args = vec![
        Expression::parse(input)?,
        name_literal(&variable_name(get(&entries, "as"), "this")?),
        Expression::parse(cond)?,
    ];
    if let Some(limit) = get(&entries, "limit") {
        args.push(Expression::parse(limit)?);
    }
    Ok(Expression::Operator { op: Operator::Filter, args })
}

/// `$map: {input, as?, in}` → `[input, as, in]`.
fn parse_map(arg: RawBsonRef<'_>) -> Result<Expression, QueryError> {
    let entries = named(arg, "$map", &["input", "as", "in"], (ErrorCode::Location16878, ErrorCode::Location16879))?;
    let input = get(&entries, "input")
        .ok_or_else(|| error(ErrorCode::Location16880, "Missing 'input' parameter to $map".into()))?;
    let body =
        get(&entries, "in").ok_or_else(|| error(ErrorCode::Location16882, "Missing 'in' parameter to $map".into()))?;
    let args = vec![
        Expression::parse(input)?,
        name_literal(&variable_name(get(&entries, "as"), "this")?),
        Expression::parse(body)?,
    ];
    Ok(Expression::Operator { op: Operator::Map, args })
}

/// `$reduce: {input, initialValue, in}` → `[input, initialValue, in]`.
fn parse_reduce(arg: RawBsonRef<'_>) -> Result<Expression, QueryError> {
    let entries =
        named(arg, "$reduce", &["input", "initialValue", "in"], (ErrorCode::Location40075, ErrorCode::Location40076))?;
    let missing = |field: &str, code| error(code, format!("$reduce requires '{field}' to be specified"));
    let input = get(&entries, "input").ok_or_else(|| missing("input", ErrorCode::Location40077))?;
    let initial = get(&entries, "initialValue").ok_or_else(|| missing("initialValue", ErrorCode::Location40078))?;
    let body = get(&entries, "in").ok_or_else(|| missing("in", ErrorCode::Location40079))?;
    let args = vec![Expression::parse(input)?, Expression::parse(initial)?, Expression::parse(body)?];
    Ok(Expression::Operator { op: Operator::Reduce, args })
}

/// `$let: {vars: {name: expr, ...}, in}` → `[in, name1, expr1, name2, expr2, ...]`.
fn parse_let(arg: RawBsonRef<'_>) -> Result<Expression, QueryError> {
    let entries = named(arg, "$let", &["vars", "in"], (ErrorCode::Location16874, ErrorCode::Location16875))?;
    let Some(RawBsonRef::Document(bound)) = get(&entries, "vars") else {
        return Err(error(ErrorCode::Location16876, "Missing 'vars' parameter to $let".into()));
    };
    let body =
        get(&entries, "in").ok_or_else(|| error(ErrorCode::Location16877, "Missing 'in' parameter to $let".into()))?;
    let mut args = vec![Expression::parse(body)?];
    for (name, value) in fields(bound) {
        validate_variable_name(name, true)?;
        args.push(name_literal(name));
        args.push(Expression::parse(value)?);
    }
    Ok(Expression::Operator { op: Operator::Let, args })
}

fn slot_name(args: &[Expression], i: usize) -> &str {
    match args.get(i) {
        Some(Expression::Literal(Bson::String(name))) => name,
        _ => "this",
    }
}

/// Evaluates an operator of this family.
pub(super) fn evaluate(
    op: Operator,
    args: &[Expression],
    root: &RawDocument,
    vars: &Variables,
    budget: &mut Budget,
) -> Result<Value, QueryError> {
    let eval = |i: usize, vars: &Variables, budget: &mut Budget| -> Result<Value, QueryError> {
        match args.get(i) {
            Some(e) => e.evaluate_in(root, vars, budget),
            None => Ok(None),
        }
    };
    match op {
        Operator::IsArray => Ok(Some(Bson::Boolean(matches!(eval(0, vars, budget)?, Some(Bson::Array(_)))))),
        Operator::ArrayElemAt => {
            let (array, index) = (eval(0, vars, budget)?, eval(1, vars, budget)?);
            if nullish(&array) || nullish(&index) {
                return Ok(Some(Bson::Null));
            }
            let Some(Bson::Array(items)) = array else {
                return Err(error(
                    ErrorCode::Location28689,
                    format!("$arrayElemAt's first argument must be an array, but is {}", type_of(&array)),
                ));
            };
            let Some(n) = index.as_ref().and_then(Number::from_bson) else {
                return Err(error(
                    ErrorCode::Location28690,
                    format!("$arrayElemAt's second argument must be a numeric value, but is {}", type_of(&index)),
                ));
            };
            let Some(i) = n.to_i32_exact() else {
                return Err(error(
                    ErrorCode::Location28691,
                    "$arrayElemAt's second argument must be representable as a 32-bit integer".into(),
                ));
            };
            Ok(element_at(items, i64::from(i)))
        }
        Operator::First | Operator::Last => {
            let array = eval(0, vars, budget)?;
            let name = if op == Operator::First { "$first" } else { "$last" };
            match array {
                v if nullish(&v) => Ok(Some(Bson::Null)),
                Some(Bson::Array(items)) => Ok(element_at(items, if op == Operator::First { 0 } else { -1 })),
                other => Err(error(
                    ErrorCode::Location28689,
                    format!("{name}'s argument must be an array, but is {}", type_of(&other)),
                )),
            }
        }
        Operator::ConcatArrays => {
            let mut out = Vec::new();
            for i in 0..args.len() {
                match eval(i, vars, budget)? {
                    v if nullish(&v) => return Ok(Some(Bson::Null)),
                    Some(Bson::Array(items)) => out.extend(items),
                    other => {
                        return Err(error(
                            ErrorCode::Location28664,
                            format!("$concatArrays only supports arrays, not {}", type_of(&other)),
                        ));
                    }
                }
            }
            Ok(Some(Bson::Array(out)))
        }
        Operator::Filter => {
            let Some(items) =
                input_array(eval(0, vars, budget)?, ErrorCode::Location28651, "input to $filter must be an array not")?
            else {
                return Ok(Some(Bson::Null));
            };
            let limit = match args.get(3) {
                None => usize::MAX,
                Some(_) => match eval(3, vars, budget)? {
                    v if nullish(&v) => usize::MAX,
                    Some(v) => match Number::from_bson(&v).and_then(Number::to_i32_exact) {
                        Some(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
                        Some(n) => {
                            return Err(error(
                                ErrorCode::Location327391,
                                format!("$filter: limit must be greater than 0: {n}"),
                            ));
                        }
                        None => {
                            return Err(error(
                                ErrorCode::Location327392,
                                format!("$filter: limit must be represented as a 32-bit integral value: {v}"),
                            ));
                        }
                    },
                    None => usize::MAX,
                },
            };
            let name = slot_name(args, 1);
            let mut out = Vec::new();
            for item in items {
                if out.len() >= limit {
                    break;
                }
                let mut scope = vars.clone();
                scope.bind(name, item.clone())?;
                if truthy(&eval(2, &scope, budget)?) {
                    out.push(item);
                }
            }
            Ok(Some(Bson::Array(out)))
        }
        Operator::Map => {
            let Some(items) =
                input_array(eval(0, vars, budget)?, ErrorCode::Location16883, "input to $map must be an array not")?
            else {
                return Ok(Some(Bson::Null));
            };
            let name = slot_name(args, 1);
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let mut scope = vars.clone();
                scope.bind(name, item)?;
                out.push(eval(2, &scope, budget)?.unwrap_or(Bson::Null));
            }
            Ok(Some(Bson::Array(out)))
        }
        Operator::Reduce => {
            let Some(items) = input_array(
                eval(0, vars, budget)?,
                ErrorCode::Location40080,
                "$reduce requires that 'input' be an array, found:",
            )?
            else {
                return Ok(Some(Bson::Null));
            };
            let mut value = eval(1, vars, budget)?;
            for item in items {
                let mut scope = vars.clone();
                scope.bind_value("value", value)?;
                scope.bind("this", item)?;
                value = eval(2, &scope, budget)?;
            }
            Ok(value)
        }
        Operator::Let => {
            let mut scope = vars.clone();
            let mut i = 1;
            while i + 1 < args.len() {
                // Each value is evaluated in the outer scope, as mongod does.
                let value = eval(i + 1, vars, budget)?;
                scope.bind_value(slot_name(args, i), value)?;
                i += 2;
            }
            eval(0, &scope, budget)
        }
        _ => Ok(None),
    }
}

/// The array an operator iterates: `None` for null or missing (the operator answers null),
/// else `code` with `message` and the type found.
fn input_array(input: Value, code: ErrorCode, message: &str) -> Result<Option<Vec<Bson>>, QueryError> {
    match input {
        v if nullish(&v) => Ok(None),
        Some(Bson::Array(items)) => Ok(Some(items)),
        other => Err(error(code, format!("{message} {}", type_of(&other)))),
    }
}

/// The element at `index` (negative counts from the end); missing when out of range.
fn element_at(mut items: Vec<Bson>, index: i64) -> Value {
    let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
    let at = if index < 0 { len + index } else { index };
    if at < 0 || at >= len {
        return None;
    }
    let at = usize::try_from(at).ok()?;
    Some(items.swap_remove(at))
}
