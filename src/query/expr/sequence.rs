//! The array operators that build, search or reorder arrays: `$zip`, `$range`,
//! `$reverseArray`, `$indexOfArray` and `$sortArray`.

use std::cmp::Ordering;
use std::sync::Arc;

use bson::{Bson, RawBson, RawBsonRef, RawDocumentBuf, doc};

use super::args;
use super::ops::SequenceOp;
use super::syntax::{Expression, Operator};
use super::value::{Value, index_argument, nullish, type_of};
use crate::error::ErrorCode;
use crate::query::collation::Collation;
use crate::query::elements::fields;
use crate::query::error::QueryError;
use crate::query::number::Number;
use crate::query::order::compare_collated;
use crate::query::render;
use crate::query::sort::SortSpec;

fn error(code: ErrorCode, message: String) -> QueryError {
    QueryError::new(code, message)
}

fn shown(v: &Value) -> String {
    v.as_ref().map_or_else(|| "missing".to_owned(), render::owned_value)
}

/// mongod's `internalQueryMaxRangeBytes`: what one `$range` may build.
const MAX_RANGE_BYTES: usize = 64 * 1024 * 1024;
/// What mongod counts per element of a `$range` (its `Value`).
const RANGE_ELEMENT_BYTES: usize = 16;

/// Parses `{name: arg}` for an operator of this family.
pub(super) fn parse(op: SequenceOp, arg: RawBsonRef<'_>) -> Result<Expression, QueryError> {
    let name = op.name();
    let args = match op {
        SequenceOp::ReverseArray => args::positional(name, arg, 1, Some(1))?,
        SequenceOp::IndexOfArray => args::positional(name, arg, 2, Some(4))?,
        SequenceOp::Range => args::positional(name, arg, 2, Some(3))?,
        SequenceOp::Zip => parse_zip(arg)?,
        SequenceOp::SortArray => parse_sort_array(arg)?,
    };
    Ok(Expression::Operator { op: Operator::Sequence(op), args })
}

/// `$zip: {inputs, useLongestLength?, defaults?}` → `[useLongestLength, n, inputs..., defaults...]`.
fn parse_zip(arg: RawBsonRef<'_>) -> Result<Vec<Expression>, QueryError> {
    let RawBsonRef::Document(spec) = arg else {
        return Err(error(
            ErrorCode::Location34460,
            format!("$zip only supports an object as an argument, found {}", render::type_name(arg.element_type())),
        ));
    };
    let (mut inputs, mut defaults, mut longest) = (Vec::new(), Vec::new(), false);
    for (key, value) in fields(spec) {
        match (key, value) {
            ("inputs", RawBsonRef::Array(list)) => {
                for item in list {
                    inputs.push(Expression::parse(item.map_err(QueryError::invalid_bson)?)?);
                }
            }
            ("inputs", other) => {
                return Err(error(
                    ErrorCode::Location34461,
                    format!(
                        "inputs must be an array of expressions, found {}",
                        render::type_name(other.element_type())
                    ),
                ));
            }
            ("defaults", RawBsonRef::Array(list)) => {
                for item in list {
                    defaults.push(Expression::parse(item.map_err(QueryError::invalid_bson)?)?);
                }
            }
            ("defaults", other) => {
                return Err(error(
                    ErrorCode::Location34462,
                    format!(
                        "defaults must be an array of expressions, found {}",
                        render::type_name(other.element_type())
                    ),
                ));
            }
            ("useLongestLength", RawBsonRef::Boolean(b)) => longest = b,
            ("useLongestLength", other) => {
                return Err(error(
                    ErrorCode::Location34463,
                    format!("useLongestLength must be a bool, found {}", render::type_name(other.element_type())),
                ));
            }
            (other, _) => {
                return Err(error(ErrorCode::Location34464, format!("$zip found an unknown argument: {other}")));
            }
        }
    }
    if inputs.is_empty() {
        return Err(error(ErrorCode::Location34465, "$zip requires at least one input array".into()));
    }
    if !longest && !defaults.is_empty() {
        return Err(error(ErrorCode::Location34466, "cannot specify defaults unless useLongestLength is true".into()));
    }
    if !defaults.is_empty() && defaults.len() != inputs.len() {
        return Err(error(ErrorCode::Location34467, "defaults and inputs must have the same length".into()));
    }
    let n = i64::try_from(inputs.len()).unwrap_or(i64::MAX);
    let mut out = vec![Expression::Literal(Bson::Boolean(longest)), Expression::Literal(Bson::Int64(n))];
    out.extend(inputs);
    out.extend(defaults);
    Ok(out)
}

/// `$sortArray: {input, sortBy}` → `[input, sortBy]`, `sortBy` a checked literal.
fn parse_sort_array(arg: RawBsonRef<'_>) -> Result<Vec<Expression>, QueryError> {
    let RawBsonRef::Document(spec) = arg else {
        return Err(error(
            ErrorCode::Location2942500,
            format!("$sortArray requires an object as an argument, found: {}", render::type_name(arg.element_type())),
        ));
    };
    let (mut input, mut sort_by) = (None, None);
    for (key, value) in fields(spec) {
        match key {
            "input" => input = Some(Expression::parse(value)?),
            "sortBy" => sort_by = Some(parse_sort_by(value)?),
            other => {
                return Err(error(
                    ErrorCode::Location2942501,
                    format!("$sortArray found an unknown argument: {other}"),
                ));
            }
        }
    }
    let input =
        input.ok_or_else(|| error(ErrorCode::Location2942502, "$sortArray requires 'input' to be specified".into()))?;
    let sort_by = sort_by
        .ok_or_else(|| error(ErrorCode::Location2942503, "$sortArray requires 'sortBy' to be specified".into()))?;
    Ok(vec![input, sort_by])
}

/// `1`/`-1` sorts whole values; a document is a sort pattern over document elements.
fn parse_sort_by(value: RawBsonRef<'_>) -> Result<Expression, QueryError> {
    match value {
        RawBsonRef::Document(spec) => {
            SortSpec::parse(spec)?;
            Ok(Expression::Literal(Bson::Document(bson::Document::try_from(spec).map_err(QueryError::invalid_bson)?)))
        }
        other => match Number::from_raw(other).and_then(Number::to_i32_exact) {
            Some(d @ (1 | -1)) => Ok(Expression::Literal(Bson::Int32(d))),
            _ => Err(error(
                ErrorCode::Location2942505,
                "$sortArray requires sortBy to be either 1, -1 or an object with field names and 1 or -1 as values"
                    .to_owned(),
            )),
        },
    }
}

/// Evaluates an operator of this family; `eval(i)` evaluates its `i`th argument.
pub(super) fn evaluate(
    op: SequenceOp,
    args: &[Expression],
    collation: Option<&Arc<Collation>>,
    eval: &mut dyn FnMut(usize) -> Result<Value, QueryError>,
) -> Result<Value, QueryError> {
    match op {
        SequenceOp::ReverseArray => match eval(0)? {
            v if nullish(&v) => Ok(Some(Bson::Null)),
            Some(Bson::Array(mut items)) => {
                items.reverse();
                Ok(Some(Bson::Array(items)))
            }
            other => Err(error(
                ErrorCode::Location34435,
                format!("The argument to $reverseArray must be an array, but was of type: {}", type_of(&other)),
            )),
        },
        SequenceOp::IndexOfArray => {
            let items = match eval(0)? {
                v if nullish(&v) => return Ok(Some(Bson::Null)),
                Some(Bson::Array(items)) => items,
                other => {
                    return Err(error(
                        ErrorCode::Location40090,
                        format!("$indexOfArray requires an array as a first argument, found: {}", type_of(&other)),
                    ));
                }
            };
            let needle = raw(eval(1)?.unwrap_or(Bson::Undefined))?;
            let start = if args.len() > 2 { index_argument("$indexOfArray", eval(2)?, "starting index")? } else { 0 };
            let end = if args.len() > 3 {
                index_argument("$indexOfArray", eval(3)?, "ending index")?.min(items.len())
            } else {
                items.len()
            };
            for (i, item) in items.into_iter().enumerate().take(end).skip(start) {
                let item = raw(item)?;
                if compare_collated(item.as_raw_bson_ref(), needle.as_raw_bson_ref(), collation.map(AsRef::as_ref))
                    .is_eq()
                {
                    return Ok(Some(Bson::Int32(i32::try_from(i).unwrap_or(i32::MAX))));
                }
            }
            Ok(Some(Bson::Int32(-1)))
        }
        SequenceOp::Range => range(eval(0)?, eval(1)?, if args.len() > 2 { Some(eval(2)?) } else { None }),
        SequenceOp::Zip => zip(args, eval),
        SequenceOp::SortArray => {
            let items = match eval(0)? {
                v if nullish(&v) => return Ok(Some(Bson::Null)),
                Some(Bson::Array(items)) => items,
                other => {
                    return Err(error(
                        ErrorCode::Location2942504,
                        format!(
                            "The input argument to $sortArray must be an array, but was of type: {}",
                            type_of(&other)
                        ),
                    ));
                }
            };
            sort_array(items, args.get(1), collation).map(Some)
        }
    }
}

fn raw(value: Bson) -> Result<RawBson, QueryError> {
    RawBson::try_from(value).map_err(QueryError::invalid_bson)
}

/// mongod's `ExpressionRange`: 32-bit start, end and step; the array may not pass 64 MiB.
fn range(start: Value, end: Value, step: Option<Value>) -> Result<Value, QueryError> {
    let int = |v: &Value, numeric: (ErrorCode, &str), fits: (ErrorCode, &str)| -> Result<i64, QueryError> {
        let Some(n) = v.as_ref().and_then(Number::from_bson) else {
            return Err(error(numeric.0, format!("{}{}", numeric.1, type_of(v))));
        };
        n.to_i32_exact().map(i64::from).ok_or_else(|| error(fits.0, format!("{}{}", fits.1, shown(v))))
    };
    let start = int(
        &start,
        (ErrorCode::Location34443, "$range requires a numeric starting value, found value of type: "),
        (
            ErrorCode::Location34444,
            "$range requires a starting value that can be represented as a 32-bit integer, found value: ",
        ),
    )?;
    let end = int(
        &end,
        (ErrorCode::Location34445, "$range requires a numeric ending value, found value of type: "),
        (
            ErrorCode::Location34446,
            "$range requires an ending value that can be represented as a 32-bit integer, found value: ",
        ),
    )?;
    let step = match step {
        None => 1,
        Some(step) => int(
            &step,
            (ErrorCode::Location34447, "$range requires a numeric step value, found value of type:"),
            (
                ErrorCode::Location34448,
                "$range requires a step value that can be represented as a 32-bit integer, found value: ",
            ),
        )?,
    };
    if step == 0 {
        return Err(error(ErrorCode::Location34449, "$range requires a non-zero step value".into()));
    }
    let count = if (step > 0 && end > start) || (step < 0 && end < start) {
        usize::try_from((end - start).abs().saturating_add(step.abs() - 1) / step.abs()).unwrap_or(usize::MAX)
    } else {
        0
    };
    let bytes = count.saturating_mul(RANGE_ELEMENT_BYTES);
    if bytes > MAX_RANGE_BYTES {
        return Err(error(
            ErrorCode::ExceededMemoryLimit,
            format!(
                "$range would use too much memory ({bytes} bytes) and cannot spill to disk. Memory limit: {MAX_RANGE_BYTES} bytes"
            ),
        ));
    }
    let mut out = Vec::with_capacity(count);
    let mut at = start;
    for _ in 0..count {
        out.push(Bson::Int32(i32::try_from(at).unwrap_or_default()));
        at += step;
    }
    Ok(Some(Bson::Array(out)))
}

/// mongod's `ExpressionZip`: tuples up to the shortest input (the longest with
/// `useLongestLength`, padded with the defaults or null); a null input gives null.
fn zip(args: &[Expression], eval: &mut dyn FnMut(usize) -> Result<Value, QueryError>) -> Result<Value, QueryError> {
    let longest = matches!(args.first(), Some(Expression::Literal(Bson::Boolean(true))));
    let n = match args.get(1) {
        Some(Expression::Literal(Bson::Int64(n))) => usize::try_from(*n).unwrap_or(0),
        _ => 0,
    };
    let mut inputs = Vec::with_capacity(n);
    for i in 0..n {
        match eval(i + 2)? {
            v if nullish(&v) => return Ok(Some(Bson::Null)),
            Some(Bson::Array(items)) => inputs.push(items),
            other => {
                return Err(error(
                    ErrorCode::Location34468,
                    format!("$zip found a non-array expression in input: {}", shown(&other)),
                ));
            }
        }
    }
    let mut defaults = Vec::with_capacity(n);
    for i in 0..n {
        defaults.push(if args.len() > 2 + n { eval(2 + n + i)?.unwrap_or(Bson::Null) } else { Bson::Null });
    }
    let lengths = inputs.iter().map(Vec::len);
    let length = if longest { lengths.max() } else { lengths.min() }.unwrap_or(0);
    let mut out = Vec::with_capacity(length);
    for row in 0..length {
        let tuple = inputs
            .iter()
            .zip(&defaults)
            .map(|(input, default)| input.get(row).cloned().unwrap_or_else(|| default.clone()))
            .collect();
        out.push(Bson::Array(tuple));
    }
    Ok(Some(Bson::Array(out)))
}

/// `$sortArray`: a stable sort of whole values (`1`/`-1`), or of document elements by a
/// sort pattern, other elements reading as documents without the pattern's fields.
fn sort_array(
    items: Vec<Bson>,
    sort_by: Option<&Expression>,
    collation: Option<&Arc<Collation>>,
) -> Result<Bson, QueryError> {
    let mut keyed = Vec::with_capacity(items.len());
    for item in items {
        let key = match (&item, sort_by) {
            (Bson::Document(d), Some(Expression::Literal(Bson::Document(_)))) => {
                RawDocumentBuf::try_from(d).map_err(QueryError::invalid_bson)?
            }
            (_, Some(Expression::Literal(Bson::Document(_)))) => RawDocumentBuf::new(),
            _ => RawDocumentBuf::try_from(&doc! { "v": item.clone() }).map_err(QueryError::invalid_bson)?,
        };
        keyed.push((key, item));
    }
    let order = |a: &RawDocumentBuf, b: &RawDocumentBuf| -> Ordering {
        match sort_by {
            Some(Expression::Literal(Bson::Int32(direction))) => {
                let (a, b) = (a.get("v").ok().flatten(), b.get("v").ok().flatten());
                let o = match (a, b) {
                    (Some(a), Some(b)) => compare_collated(a, b, collation.map(AsRef::as_ref)),
                    _ => Ordering::Equal,
                };
                if *direction < 0 { o.reverse() } else { o }
            }
            _ => Ordering::Equal,
        }
    };
    match sort_by {
        Some(Expression::Literal(Bson::Document(pattern))) => {
            let pattern = RawDocumentBuf::try_from(pattern).map_err(QueryError::invalid_bson)?;
            let spec = SortSpec::parse(&pattern)?.with_collation(collation);
            keyed.sort_by(|(a, _), (b, _)| spec.compare(a, b));
        }
        _ => keyed.sort_by(|(a, _), (b, _)| order(a, b)),
    }
    Ok(Bson::Array(keyed.into_iter().map(|(_, item)| item).collect()))
}
