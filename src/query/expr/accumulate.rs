//! The accumulators used as expressions: `$sum $avg $min $max $stdDevPop $stdDevSamp` over
//! their arguments (or over the elements of a single array argument), `$firstN $lastN $maxN
//! $minN` over an array, and `$median`/`$percentile`; plus the argument checks that `$group`'s
//! forms of the same operators share (`n`, `p` and `method`).

use bson::{Bson, RawBson, RawBsonRef};

use super::args::{self, NamedErrors};
use super::ops::AccumulateOp;
use super::syntax::{Expression, Operator};
use super::value::Value;
use crate::error::ErrorCode;
use crate::query::collation::Collation;
use crate::query::elements::fields;
use crate::query::error::QueryError;
use crate::query::number::Number;
use crate::query::order::compare_collated;
use crate::query::render;
use crate::query::summation::{Deviation, Sum, pick_percentile};

fn error(code: ErrorCode, message: String) -> QueryError {
    QueryError::new(code, message)
}

fn shown(v: RawBsonRef<'_>) -> String {
    render::element("", v).trim_start_matches(": ").to_owned()
}

/// Parses `{name: arg}` for an operator of this family.
pub(super) fn parse(op: AccumulateOp, arg: RawBsonRef<'_>) -> Result<Expression, QueryError> {
    let name = op.name();
    let args = match op {
        AccumulateOp::FirstN | AccumulateOp::LastN | AccumulateOp::MaxN | AccumulateOp::MinN => {
            let (n, input) = parse_n_spec(name, arg, matches!(op, AccumulateOp::MaxN | AccumulateOp::MinN))?;
            vec![n, input]
        }
        AccumulateOp::Median | AccumulateOp::Percentile => {
            let (input, p) = parse_percentile_spec(name, arg, op == AccumulateOp::Median, true)?;
            let mut out = vec![input];
            out.extend(p.into_iter().map(|q| Expression::Literal(Bson::Double(q))));
            out
        }
        _ => args::positional(name, arg, 0, None)?,
    };
    Ok(Expression::Operator { op: Operator::Accumulate(op), args })
}

/// `{n, input}` of `$firstN $lastN $maxN $minN`, as an accumulator or an expression: `n`
/// and `input`.
///
/// # Errors
/// 5787801 (5787900 for `$maxN`/`$minN`) for a non-object, 5787901 for an unknown field,
/// 5787906 without `n`, 5787907 without `input`.
pub(crate) fn parse_n_spec(
    name: &str,
    arg: RawBsonRef<'_>,
    min_max: bool,
) -> Result<(Expression, Expression), QueryError> {
    let not_object = if min_max { ErrorCode::Location5787900 } else { ErrorCode::Location5787801 };
    let slots = args::into_args(args::named(
        name,
        arg,
        &["n", "input"],
        &[],
        &NamedErrors {
            not_object: (not_object, "specification must be an object; found {name}: {type}"),
            unknown: (ErrorCode::Location5787901, "Unknown argument for 'n' operator: {field}"),
            missing: &[
                (ErrorCode::Location5787906, "Missing value for '{field}'"),
                (ErrorCode::Location5787907, "Missing value for '{field}'"),
            ],
        },
    )?);
    let mut slots = slots.into_iter();
    match (slots.next(), slots.next()) {
        (Some(n), Some(input)) => Ok((n, input)),
        _ => Err(QueryError::new(ErrorCode::Location5787906, "Missing value for 'n'")),
    }
}

/// `$median: {input, method}` and `$percentile: {input, p, method}` as mongod's IDL checks
/// them: the input expression and the percentiles (`[0.5]` for `$median`). `expression` is
/// the expression form, whose non-object argument has codes of its own.
///
/// # Errors
/// 7436100/7429703 (accumulator) or 7436201/7436200 (expression) for a non-object, 40415 for
/// an unknown field, 14 for a `method` that is not a string, 2 for one other than
/// "approximate", 40414 for a missing field, then the input's parse errors, then 7750300 for
/// a `p` that is not constant and 7750301-7750303 for one that is not a non-empty array of
/// numbers in [0, 1].
pub(crate) fn parse_percentile_spec(
    name: &str,
    arg: RawBsonRef<'_>,
    median: bool,
    expression: bool,
) -> Result<(Expression, Vec<f64>), QueryError> {
    let RawBsonRef::Document(spec) = arg else {
        let code = match (median, expression) {
            (true, false) => ErrorCode::Location7436100,
            (false, false) => ErrorCode::Location7429703,
            (true, true) => ErrorCode::Location7436201,
            (false, true) => ErrorCode::Location7436200,
        };
        return Err(error(code, format!("specification must be an object; found {name}: {}", shown(arg))));
    };
    // mongod's IDL parser checks each field as it meets it (so `method` before any missing
    // field), then the required ones; the expressions are parsed after that.
    let (mut input, mut p, mut method) = (None, None, false);
    for (key, value) in fields(spec) {
        match key {
            "input" => input = Some(value),
            "p" if !median => p = Some(value),
            "method" => {
                let RawBsonRef::String(m) = value else {
                    return Err(error(
                        ErrorCode::TypeMismatch,
                        format!(
                            "BSON field '{name}.method' is the wrong type '{}', expected type 'string'",
                            render::type_name(value.element_type())
                        ),
                    ));
                };
                if m != "approximate" {
                    return Err(QueryError::bad_value(
                        "Currently only 'approximate' can be used as percentile 'method'.",
                    ));
                }
                method = true;
            }
            other => {
                return Err(error(
                    ErrorCode::Location40415,
                    format!("BSON field '{name}.{other}' is an unknown field."),
                ));
            }
        }
    }
    let missing = |field: &str| {
        error(ErrorCode::Location40414, format!("BSON field '{name}.{field}' is missing but a required field"))
    };
    let input = input.ok_or_else(|| missing("input"))?;
    if !median && p.is_none() {
        return Err(missing("p"));
    }
    if !method {
        return Err(missing("method"));
    }
    let input = Expression::parse(input)?;
    let Some(p) = p else { return Ok((input, vec![0.5])) };
    Ok((input, parse_p(p)?))
}

/// `p`: an expression mongod folds to a constant at parse time (plain values and operators
/// of them), which must be a non-empty array of numbers in [0, 1].
fn parse_p(p: RawBsonRef<'_>) -> Result<Vec<f64>, QueryError> {
    let expr = Expression::parse(p)?;
    if !is_constant(&expr) {
        return Err(error(
            ErrorCode::Location7750300,
            format!("The $percentile 'p' field must be an array of constant values, but found value: {}.", shown(p)),
        ));
    }
    let value = expr.evaluate(&bson::RawDocumentBuf::new(), &super::Variables::new())?;
    let invalid = |code, what: String| {
        error(code, format!("The $percentile 'p' field must be an array of numbers from [0.0, 1.0], but found: {what}"))
    };
    let shown_value = |v: &Option<Bson>| v.as_ref().map_or_else(|| "MISSING".to_owned(), render::owned_value);
    let list = match &value {
        Some(Bson::Array(list)) if !list.is_empty() => list,
        _ => return Err(invalid(ErrorCode::Location7750301, shown_value(&value))),
    };
    let mut out = Vec::with_capacity(list.len());
    for item in list {
        let Some(x) = Number::from_bson(item).map(Number::to_f64) else {
            return Err(invalid(ErrorCode::Location7750302, render::owned_value(item)));
        };
        if !(0.0..=1.0).contains(&x) {
            return Err(invalid(ErrorCode::Location7750303, render::double(x)));
        }
        out.push(x);
    }
    Ok(out)
}

/// Whether `expr` reads nothing of the document or the variables and draws no random number:
/// what mongod's parse-time optimisation turns into a constant.
fn is_constant(expr: &Expression) -> bool {
    match expr {
        Expression::Literal(_) => true,
        Expression::FieldPath { .. } => false,
        Expression::Array(items) => items.iter().all(is_constant),
        Expression::Object(entries) => entries.iter().all(|(_, e)| is_constant(e)),
        Expression::Operator { op, args } => *op != Operator::Rand && args.iter().all(is_constant),
    }
}

/// mongod's checks of an evaluated `n`: a number with an integral value above 0.
///
/// # Errors
/// 5787902 for a non-number, 31109 for an infinite or NaN one, 5787903 for a fraction,
/// 5787908 for one not above 0.
pub(crate) fn validate_n(n: Value) -> Result<usize, QueryError> {
    let value = n.unwrap_or(Bson::Null);
    let integral = || format!("Value for 'n' must be of integral type, but found {}", render::owned_value(&value));
    let Some(number) = Number::from_bson(&value) else {
        return Err(error(ErrorCode::Location5787902, integral()));
    };
    let x = number.to_f64();
    if !x.is_finite() {
        return Err(error(
            ErrorCode::Location31109,
            format!("Can't coerce out of range value {} to long", render::owned_value(&value)),
        ));
    }
    if x.fract() != 0.0 {
        return Err(error(ErrorCode::Location5787903, integral()));
    }
    if x <= 0.0 {
        return Err(error(ErrorCode::Location5787908, format!("'n' must be greater than 0, found {}", x as i64)));
    }
    Ok(if x >= usize::MAX as f64 { usize::MAX } else { x as usize })
}

/// A number for `$median`/`$percentile` (NaN and non-numbers are left out).
pub(crate) fn percentile_input(value: Option<&Bson>) -> Option<f64> {
    value.and_then(Number::from_bson).map(Number::to_f64).filter(|x| !x.is_nan())
}

/// Evaluates an operator of this family; `eval(i)` evaluates its `i`th argument.
pub(super) fn evaluate(
    op: AccumulateOp,
    args: &[Expression],
    collation: Option<&Collation>,
    eval: &mut dyn FnMut(usize) -> Result<Value, QueryError>,
) -> Result<Value, QueryError> {
    match op {
        AccumulateOp::FirstN | AccumulateOp::LastN | AccumulateOp::MaxN | AccumulateOp::MinN => {
            let n = validate_n(eval(0)?)?;
            let input = eval(1)?;
            // mongod refuses anything but an array here, null and missing included.
            let Some(Bson::Array(items)) = input else {
                return Err(error(ErrorCode::Location5788200, "Input must be an array".into()));
            };
            Ok(Some(Bson::Array(match op {
                AccumulateOp::FirstN => items.into_iter().take(n).collect(),
                AccumulateOp::LastN => {
                    let skip = items.len().saturating_sub(n);
                    items.into_iter().skip(skip).collect()
                }
                _ => extremes(items, n, op == AccumulateOp::MaxN, collation)?,
            })))
        }
        AccumulateOp::Median | AccumulateOp::Percentile => {
            let input = eval(0)?;
            let mut values: Vec<f64> = match &input {
                Some(Bson::Array(items)) => items.iter().filter_map(|v| percentile_input(Some(v))).collect(),
                v => percentile_input(v.as_ref()).into_iter().collect(),
            };
            values.sort_by(f64::total_cmp);
            let at = |q: f64| pick_percentile(&values, q).map_or(Bson::Null, Bson::Double);
            if op == AccumulateOp::Median {
                return Ok(Some(at(0.5)));
            }
            let ps = args.iter().skip(1).filter_map(|a| match a {
                Expression::Literal(Bson::Double(q)) => Some(*q),
                _ => None,
            });
            Ok(Some(Bson::Array(ps.map(at).collect())))
        }
        _ => {
            // One argument that is an array: its elements; otherwise each argument's value.
            let values: Vec<Bson> = if args.len() == 1 {
                match eval(0)? {
                    Some(Bson::Array(items)) => items,
                    Some(v) => vec![v],
                    None => Vec::new(),
                }
            } else {
                (0..args.len()).filter_map(|i| eval(i).transpose()).collect::<Result<_, _>>()?
            };
            Ok(Some(summarize(op, values, collation)?))
        }
    }
}

/// `$sum $avg $min $max $stdDevPop $stdDevSamp` of `values`, as their accumulators give it.
fn summarize(op: AccumulateOp, values: Vec<Bson>, collation: Option<&Collation>) -> Result<Bson, QueryError> {
    let numbers = values.iter().filter_map(Number::from_bson);
    Ok(match op {
        AccumulateOp::Sum => {
            let mut sum = Sum::default();
            numbers.for_each(|n| sum.add(n));
            sum.total()
        }
        AccumulateOp::Avg => {
            let mut sum = Sum::default();
            let mut count = 0u64;
            for n in numbers {
                sum.add(n);
                count += 1;
            }
            sum.average(count)
        }
        AccumulateOp::StdDevPop | AccumulateOp::StdDevSamp => {
            let mut deviation = Deviation::default();
            numbers.for_each(|n| deviation.add(n.to_f64()));
            deviation.result(op == AccumulateOp::StdDevSamp)
        }
        _ => {
            let kept = extremes(values, 1, op == AccumulateOp::Max, collation)?;
            kept.into_iter().next().unwrap_or(Bson::Null)
        }
    })
}

/// The `n` largest (or smallest) non-null values, largest (or smallest) first; equal values
/// keep their order.
fn extremes(
    values: Vec<Bson>,
    n: usize,
    largest: bool,
    collation: Option<&Collation>,
) -> Result<Vec<Bson>, QueryError> {
    let mut keyed = Vec::with_capacity(values.len());
    for v in values {
        if matches!(v, Bson::Null | Bson::Undefined) {
            continue;
        }
        let raw = RawBson::try_from(v.clone()).map_err(QueryError::invalid_bson)?;
        keyed.push((raw, v));
    }
    keyed.sort_by(|(a, _), (b, _)| {
        let order = compare_collated(a.as_raw_bson_ref(), b.as_raw_bson_ref(), collation);
        if largest { order.reverse() } else { order }
    });
    Ok(keyed.into_iter().take(n).map(|(_, v)| v).collect())
}
