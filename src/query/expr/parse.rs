//! Expressions parsed from BSON, with mongod's checks on operators, arguments, field paths and
//! variable names.

use bson::{Bson, RawBsonRef, RawDocument};

use super::args;
use super::names::validate_variable_name;
use super::ops::{AccumulateOp, ConvertOp, MathOp, MiscOp, ObjectOp, SequenceOp, SetOp, StringOp};
use super::syntax::{Expression, Operator, Variable};
use super::{accumulate, convert, date, math, misc, object, sequence, set, string};
use crate::error::ErrorCode;
use crate::query::elements::fields;
use crate::query::error::QueryError;
use crate::query::{limits, path, render};

impl Expression {
    /// Parses an expression.
    ///
    /// # Errors
    /// mongod's codes and messages: 168 InvalidPipelineOperator for an unknown `$`-operator,
    /// 15983 for an operator object with more than one field, 16020 for a wrong number of
    /// arguments, the FieldPath codes for malformed paths.
    pub fn parse(value: RawBsonRef<'_>) -> Result<Self, QueryError> {
        match value {
            RawBsonRef::String(s) if s.starts_with('$') => parse_field_path(s),
            RawBsonRef::Document(doc) => parse_object(doc),
            RawBsonRef::Array(arr) => {
                let mut out = Vec::new();
                for item in arr {
                    out.push(Self::parse(item.map_err(QueryError::invalid_bson)?)?);
                }
                Ok(Self::Array(out))
            }
            other => Ok(Self::Literal(to_bson(other)?)),
        }
    }
}

/// A value of the document (or a variable) as an owned one; see [`limits::to_bson`].
fn to_bson(v: RawBsonRef<'_>) -> Result<Bson, QueryError> {
    limits::to_bson(v)
}

fn parse_field_path(s: &str) -> Result<Expression, QueryError> {
    if let Some(rest) = s.strip_prefix("$$") {
        let mut parts = rest.split('.');
        let name = parts.next().unwrap_or_default();
        let var = match name {
            "ROOT" => Variable::Root,
            "CURRENT" => Variable::Current,
            "REMOVE" => Variable::Remove,
            "NOW" => Variable::Now,
            _ => {
                validate_variable_name(name, false)?;
                Variable::User(name.to_owned())
            }
        };
        let path = match rest.split_once('.') {
            Some((_, below)) => validate_path(below)?,
            None => Vec::new(),
        };
        return Ok(Expression::FieldPath { var, path });
    }
    let below = s.strip_prefix('$').unwrap_or(s);
    if below.is_empty() {
        return Err(QueryError::new(ErrorCode::Location16872, "'$' by itself is not a valid FieldPath"));
    }
    Ok(Expression::FieldPath { var: Variable::Current, path: validate_path(below)? })
}

/// mongod's `FieldPath` checks on the part after `$`.
fn validate_path(path: &str) -> Result<Vec<String>, QueryError> {
    if path.ends_with('.') {
        return Err(QueryError::new(ErrorCode::Location40353, "FieldPath must not end with a '.'."));
    }
    limits::check_field_path_parts(path.split('.').count())?;
    path.split('.').map(validate_field_name).collect()
}

fn validate_field_name(part: &str) -> Result<String, QueryError> {
    path::check_field_name(part).map(|()| part.to_owned())
}

fn parse_object(doc: &RawDocument) -> Result<Expression, QueryError> {
    let entries: Vec<(&str, RawBsonRef<'_>)> = fields(doc).collect();
    let Some(&(first, first_value)) = entries.first() else { return Ok(Expression::Object(Vec::new())) };
    if first.starts_with('$') {
        if entries.len() != 1 {
            let shown: Vec<String> = entries.iter().map(|(k, v)| render::element(k, *v)).collect();
            return Err(QueryError::new(
                ErrorCode::Location15983,
                format!("An object representing an expression must have exactly one field: {{ {} }}", shown.join(", ")),
            ));
        }
        return parse_operator(first, first_value);
    }
    let mut out = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        if key.contains('.') {
            return Err(QueryError::new(ErrorCode::Location16412, "FieldPath field names may not contain '.'."));
        }
        out.push((validate_field_name(key)?, Expression::parse(value)?));
    }
    Ok(Expression::Object(out))
}

fn parse_operator(name: &str, arg: RawBsonRef<'_>) -> Result<Expression, QueryError> {
    if name == "$literal" {
        return Ok(Expression::Literal(to_bson(arg)?));
    }
    if let Some(parsed) = date::parse(name, arg) {
        return parsed;
    }
    if let Some(parsed) = parse_family(name, arg) {
        return parsed;
    }
    if name == "$unsetField" {
        return parse_field_operator(Operator::SetField, name, arg);
    }
    let Some(op) = Operator::from_name(name) else {
        if name == "$function" {
            return Err(QueryError::no_javascript());
        }
        if name == "$meta" {
            return parse_meta(arg);
        }
        if UNBUILT_OPERATORS.contains(&name) {
            return Err(QueryError::not_implemented(&format!("the {name} expression")));
        }
        return Err(QueryError::new(ErrorCode::InvalidPipelineOperator, format!("Unrecognized expression '{name}'")));
    };
    if op == Operator::Rand {
        return parse_rand(arg);
    }
    if let Some(parsed) = super::array::parse(op, arg) {
        return parsed;
    }
    if op == Operator::Switch {
        return super::switch::parse(arg);
    }
    if let (Operator::Cond, RawBsonRef::Document(spec)) = (op, arg) {
        return parse_cond_object(spec);
    }
    if matches!(op, Operator::GetField | Operator::SetField) {
        return parse_field_operator(op, name, arg);
    }
    let (min, max) = match (op, op.arity()) {
        (Operator::Slice, _) => (2, Some(3)),
        (_, Some(n)) => (n, Some(n)),
        (_, None) => (0, None),
    };
    let args = args::positional(name, arg, min, max)?;
    if op == Operator::IfNull && args.len() < 2 {
        return Err(QueryError::new(
            ErrorCode::Location1257300,
            format!("$ifNull needs at least two arguments, had: {}", args.len()),
        ));
    }
    Ok(Expression::Operator { op, args })
}

/// `$rand` takes no arguments: an empty document or an empty array.
fn parse_rand(arg: RawBsonRef<'_>) -> Result<Expression, QueryError> {
    match arg {
        RawBsonRef::Document(d) if d.is_empty() => {}
        RawBsonRef::Array(a) if a.is_empty() => {}
        RawBsonRef::Document(_) | RawBsonRef::Array(_) => {
            return Err(QueryError::new(ErrorCode::Location3040501, "$rand does not currently accept arguments"));
        }
        _ => {
            return Err(QueryError::new(ErrorCode::Location10065, "invalid parameter: expected an object ($rand)"));
        }
    }
    Ok(Expression::Operator { op: Operator::Rand, args: Vec::new() })
}

/// Parses `{name: arg}` when `name` belongs to one of the operator families that have their
/// own module; `None` for other names.
fn parse_family(name: &str, arg: RawBsonRef<'_>) -> Option<Result<Expression, QueryError>> {
    if let Some(op) = StringOp::from_name(name) {
        return Some(string::parse(op, arg));
    }
    if let Some(op) = MathOp::from_name(name) {
        return Some(math::parse(op, arg));
    }
    if let Some(op) = ConvertOp::from_name(name) {
        return Some(convert::parse(op, arg));
    }
    if let Some(op) = SetOp::from_name(name) {
        return Some(set::parse(op, arg));
    }
    if let Some(op) = ObjectOp::from_name(name) {
        return Some(object::parse(op, arg));
    }
    if let Some(op) = SequenceOp::from_name(name) {
        return Some(sequence::parse(op, arg));
    }
    if let Some(op) = AccumulateOp::from_name(name) {
        return Some(accumulate::parse(op, arg));
    }
    MiscOp::from_name(name).map(|op| misc::parse(op, arg))
}

fn is_family_name(name: &str) -> bool {
    StringOp::from_name(name).is_some()
        || MathOp::from_name(name).is_some()
        || ConvertOp::from_name(name).is_some()
        || SetOp::from_name(name).is_some()
        || ObjectOp::from_name(name).is_some()
        || SequenceOp::from_name(name).is_some()
        || MiscOp::from_name(name).is_some()
        || AccumulateOp::from_name(name).is_some()
}

/// Whether `name` is an expression operator mongod 7.0 knows (built here or not): a
/// projection reads `{a: {$name: ...}}` as an expression exactly when this holds.
pub fn is_expression_name(name: &str) -> bool {
    name == "$literal"
        || name == "$meta"
        || Operator::from_name(name).is_some()
        || date::is_date_operator(name)
        || is_family_name(name)
        || name == "$unsetField"
        || name == "$function"
        || UNBUILT_OPERATORS.contains(&name)
}

/// mongod 7.0's expression operators that this evaluator does not build yet: they answer 238
/// NotImplemented, where a name mongod does not know answers 168.
const UNBUILT_OPERATORS: &[&str] = &["$sampleRate"];

/// `$getField` (`"name"` or `{field, input}`) and `$setField` (`{field, input, value}`):
/// `field` must be a constant string, spelled directly or through `$literal`.
fn parse_field_operator(op: Operator, name: &str, arg: RawBsonRef<'_>) -> Result<Expression, QueryError> {
    let current = || Expression::FieldPath { var: Variable::Current, path: Vec::new() };
    let spec = match (op, arg) {
        (Operator::GetField, RawBsonRef::String(_)) => {
            let field = constant_field_name(name, arg)?;
            return Ok(Expression::Operator { op, args: vec![field, current()] });
        }
        (_, RawBsonRef::Document(spec)) => spec,
        _ => {
            let code = if op == Operator::GetField { ErrorCode::Location3041703 } else { ErrorCode::Location4161100 };
            return Err(QueryError::new(code, format!("{name} only supports an object as its argument")));
        }
    };
    let (mut field, mut input, mut value) = (None, None, None);
    let unset = name == "$unsetField";
    for (key, v) in fields(spec) {
        match key {
            "field" => field = Some(constant_field_name(name, v)?),
            "input" => input = Some(Expression::parse(v)?),
            "value" if op == Operator::SetField && !unset => value = Some(Expression::parse(v)?),
            _ => {
                let code =
                    if op == Operator::GetField { ErrorCode::Location3041701 } else { ErrorCode::Location4161101 };
                return Err(QueryError::new(code, format!("{name} found an unknown argument: {key}")));
            }
        }
    }
    let missing = |code, which: &str| QueryError::new(code, format!("{name} requires '{which}' to be specified"));
    if op == Operator::GetField {
        let field = field.ok_or_else(|| missing(ErrorCode::Location3041702, "field"))?;
        return Ok(Expression::Operator { op, args: vec![field, input.unwrap_or_else(current)] });
    }
    let field = field.ok_or_else(|| missing(ErrorCode::Location4161102, "field"))?;
    let input = input.ok_or_else(|| missing(ErrorCode::Location4161103, "input"))?;
    // `$unsetField` is `$setField` with `$$REMOVE` as the value, as mongod parses it.
    let value = if unset {
        Expression::FieldPath { var: Variable::Remove, path: Vec::new() }
    } else {
        value.ok_or_else(|| missing(ErrorCode::Location4161104, "value"))?
    };
    Ok(Expression::Operator { op, args: vec![field, input, value] })
}

/// The `field` of `$getField`/`$setField`: a string not starting with `$`, or any string
/// wrapped in `$literal`.
fn constant_field_name(name: &str, v: RawBsonRef<'_>) -> Result<Expression, QueryError> {
    let literal = match v {
        RawBsonRef::Document(doc) => match (fields(doc).next(), fields(doc).nth(1)) {
            (Some(("$literal", RawBsonRef::String(s))), None) => Some(s),
            _ => None,
        },
        RawBsonRef::String(s) if !s.starts_with('$') => Some(s),
        _ => None,
    };
    match literal {
        Some(s) => Ok(Expression::Literal(Bson::String(s.to_owned()))),
        None => Err(QueryError::new(
            ErrorCode::Location4161106,
            format!("{name} requires 'field' to evaluate to a constant, but got a non-constant argument"),
        )),
    }
}

/// `{$cond: {if, then, else}}`.
fn parse_cond_object(spec: &RawDocument) -> Result<Expression, QueryError> {
    let (mut if_, mut then, mut else_) = (None, None, None);
    for (key, value) in fields(spec) {
        let slot = match key {
            "if" => &mut if_,
            "then" => &mut then,
            "else" => &mut else_,
            _ => {
                return Err(QueryError::new(
                    ErrorCode::Location17083,
                    format!("Unrecognized parameter to $cond: {key}"),
                ));
            }
        };
        *slot = Some(Expression::parse(value)?);
    }
    let missing = |code, which: &str| QueryError::new(code, format!("Missing '{which}' parameter to $cond"));
    let if_ = if_.ok_or_else(|| missing(ErrorCode::Location17080, "if"))?;
    let then = then.ok_or_else(|| missing(ErrorCode::Location17081, "then"))?;
    let else_ = else_.ok_or_else(|| missing(ErrorCode::Location17082, "else"))?;
    Ok(Expression::Operator { op: Operator::Cond, args: vec![if_, then, else_] })
}

/// `{$meta: <name>}`: `textScore` is built; mongod's other metadata (index keys, record ids,
/// Atlas Search scores, geo distances) is 238 NotImplemented.
fn parse_meta(arg: RawBsonRef<'_>) -> Result<Expression, QueryError> {
    let RawBsonRef::String(name) = arg else {
        return Err(QueryError::new(ErrorCode::Location17307, "$meta only supports string arguments"));
    };
    match name {
        "textScore" => Ok(Expression::FieldPath { var: Variable::TextScore, path: Vec::new() }),
        "randVal"
        | "searchScore"
        | "searchHighlights"
        | "geoNearDistance"
        | "geoNearPoint"
        | "recordId"
        | "indexKey"
        | "sortKey"
        | "searchScoreDetails"
        | "searchSequenceToken"
        | "vectorSearchScore"
        | "score"
        | "scoreDetails" => Err(QueryError::not_implemented(&format!("$meta: \"{name}\""))),
        other => Err(QueryError::new(ErrorCode::Location17308, format!("Unsupported argument to $meta: {other}"))),
    }
}
