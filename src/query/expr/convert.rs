//! Type conversions: `$convert` (with `onError` and `onNull`), its shorthands `$toBool
//! $toInt $toLong $toDouble $toDecimal $toString $toObjectId $toDate`, `$isNumber`, and
//! mongod's `coerceToString` that the string operators share.
//!
//! A conversion that fails on the value (not on the arguments) is 241 ConversionFailure,
//! which `onError` replaces.

use bson::oid::ObjectId;
use bson::{Bson, Decimal128, RawBsonRef};

use super::args::{self, NamedErrors};
use super::date::civil::civil_from_days;
use super::date::format::iso_utc;
use super::date::from_string::read_date;
use super::ops::ConvertOp;
use super::syntax::{Expression, Operator};
use super::value::{Value, nullish, type_of};
use crate::error::ErrorCode;
use crate::query::error::QueryError;
use crate::query::number::Number;
use crate::query::{decimal, render};

/// Parses `{name: arg}` for an operator of this family.
pub(super) fn parse(op: ConvertOp, arg: RawBsonRef<'_>) -> Result<Expression, QueryError> {
    let args = match op {
        ConvertOp::Convert => args::into_args(args::named(
            op.name(),
            arg,
            &["input", "to"],
            &["onError", "onNull"],
            &NamedErrors {
                not_object: (
                    ErrorCode::FailedToParse,
                    "$convert expects an object of named arguments but found: {type}",
                ),
                unknown: (ErrorCode::FailedToParse, "$convert found an unknown argument: {field}"),
                missing: &[
                    (ErrorCode::FailedToParse, "Missing '{field}' parameter to $convert"),
                    (ErrorCode::FailedToParse, "Missing '{field}' parameter to $convert"),
                ],
            },
        )?),
        _ => args::positional(op.name(), arg, 1, Some(1))?,
    };
    Ok(Expression::Operator { op: Operator::Convert(op), args })
}

/// The types `$convert` can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Double,
    String,
    ObjectId,
    Bool,
    Date,
    Int,
    Long,
    Decimal,
    /// A BSON type mongod knows but cannot convert to; named for the error.
    Other(&'static str),
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Self::Double => "double",
            Self::String => "string",
            Self::ObjectId => "objectId",
            Self::Bool => "bool",
            Self::Date => "date",
            Self::Int => "int",
            Self::Long => "long",
            Self::Decimal => "decimal",
            Self::Other(name) => name,
        }
    }

    fn from_alias(name: &str) -> Option<Self> {
        Some(match name {
            "double" => Self::Double,
            "string" => Self::String,
            "objectId" => Self::ObjectId,
            "bool" => Self::Bool,
            "date" => Self::Date,
            "int" => Self::Int,
            "long" => Self::Long,
            "decimal" => Self::Decimal,
            other => return TYPE_NAMES.iter().find(|n| **n == other).map(|n| Self::Other(n)),
        })
    }

    fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            1 => Self::Double,
            2 => Self::String,
            7 => Self::ObjectId,
            8 => Self::Bool,
            9 => Self::Date,
            16 => Self::Int,
            18 => Self::Long,
            19 => Self::Decimal,
            3 => Self::Other("object"),
            4 => Self::Other("array"),
            5 => Self::Other("binData"),
            6 => Self::Other("undefined"),
            10 => Self::Other("null"),
            11 => Self::Other("regex"),
            12 => Self::Other("dbPointer"),
            13 => Self::Other("javascript"),
            14 => Self::Other("symbol"),
            15 => Self::Other("javascriptWithScope"),
            17 => Self::Other("timestamp"),
            -1 => Self::Other("minKey"),
            127 => Self::Other("maxKey"),
            _ => return None,
        })
    }
}

const TYPE_NAMES: &[&str] = &[
    "object",
    "array",
    "binData",
    "undefined",
    "null",
    "regex",
    "dbPointer",
    "javascript",
    "symbol",
    "javascriptWithScope",
    "timestamp",
    "minKey",
    "maxKey",
];

/// mongod's `computeTargetType`: a type alias or a type number.
fn target(to: &Bson) -> Result<Target, QueryError> {
    match to {
        Bson::String(name) => {
            Target::from_alias(name).ok_or_else(|| QueryError::bad_value(format!("Unknown type name: {name}")))
        }
        other => match Number::from_bson(other) {
            Some(n) => {
                let Some(code) = n.to_i32_exact() else {
                    return Err(QueryError::failed_to_parse("In $convert, numeric 'to' argument is not an integer"));
                };
                Target::from_code(i64::from(code)).ok_or_else(|| {
                    QueryError::failed_to_parse(format!(
                        "In $convert, numeric value for 'to' does not correspond to a BSON type: {code}"
                    ))
                })
            }
            None => Err(QueryError::failed_to_parse(format!(
                "$convert's 'to' argument must be a string or number, but is {}",
                render::type_name(other.element_type())
            ))),
        },
    }
}

/// Evaluates an operator of this family; `eval(i)` evaluates its `i`th argument.
pub(super) fn evaluate(
    op: ConvertOp,
    args: &[Expression],
    eval: &mut dyn FnMut(usize) -> Result<Value, QueryError>,
) -> Result<Value, QueryError> {
    let shorthand = match op {
        ConvertOp::IsNumber => {
            let v = eval(0)?;
            return Ok(Some(Bson::Boolean(v.as_ref().and_then(Number::from_bson).is_some())));
        }
        ConvertOp::Convert => None,
        ConvertOp::ToBool => Some(Target::Bool),
        ConvertOp::ToInt => Some(Target::Int),
        ConvertOp::ToLong => Some(Target::Long),
        ConvertOp::ToDouble => Some(Target::Double),
        ConvertOp::ToDecimal => Some(Target::Decimal),
        ConvertOp::ToString => Some(Target::String),
        ConvertOp::ToObjectId => Some(Target::ObjectId),
        ConvertOp::ToDate => Some(Target::Date),
    };
    if let Some(target) = shorthand {
        let input = eval(0)?;
        let Some(input) = input.filter(|v| !matches!(v, Bson::Null | Bson::Undefined)) else {
            return Ok(Some(Bson::Null));
        };
        return convert(input, target).map(Some);
    }
    let to = eval(1)?;
    let input = eval(0)?;
    let target = match &to {
        v if nullish(v) => None,
        Some(to) => Some(target(to)?),
        None => None,
    };
    let Some(input) = input.filter(|v| !matches!(v, Bson::Null | Bson::Undefined)) else {
        return if args::is_absent(args.get(3)) { Ok(Some(Bson::Null)) } else { eval(3) };
    };
    let Some(target) = target else { return Ok(Some(Bson::Null)) };
    match convert(input, target) {
        Err(e) if e.code() == ErrorCode::ConversionFailure && !args::is_absent(args.get(2)) => eval(2),
        other => other.map(Some),
    }
}

fn failure(message: String) -> QueryError {
    QueryError::new(ErrorCode::ConversionFailure, message)
}

fn unsupported(input: &Bson, target: Target) -> QueryError {
    failure(format!(
        "Unsupported conversion from {} to {} in $convert with no onError value",
        render::type_name(input.element_type()),
        target.name()
    ))
}

fn overflow(input: &Bson) -> QueryError {
    failure(format!(
        "Conversion would overflow target type in $convert with no onError value: {}",
        render::owned_value(input)
    ))
}

/// mongod's `performConversion` of a value that is not nullish.
fn convert(input: Bson, target: Target) -> Result<Bson, QueryError> {
    if render::type_name(input.element_type()) == target.name() {
        return Ok(input);
    }
    match target {
        Target::Double => to_double(input),
        Target::String => match input {
            Bson::Boolean(b) => Ok(Bson::String(b.to_string())),
            Bson::ObjectId(oid) => Ok(Bson::String(oid.to_hex())),
            Bson::Double(_) | Bson::Int32(_) | Bson::Int64(_) | Bson::Decimal128(_) | Bson::DateTime(_) => {
                coerce_to_string(Some(input)).map(Bson::String)
            }
            other => Err(unsupported(&other, target)),
        },
        Target::ObjectId => match input {
            Bson::String(s) => parse_object_id(&s).map(Bson::ObjectId),
            other => Err(unsupported(&other, target)),
        },
        Target::Bool => match &input {
            Bson::Double(d) => Ok(Bson::Boolean(*d != 0.0)),
            Bson::Int32(i) => Ok(Bson::Boolean(*i != 0)),
            Bson::Int64(i) => Ok(Bson::Boolean(*i != 0)),
            Bson::Decimal128(d) => Ok(Bson::Boolean(!decimal::is_zero(*d))),
            Bson::String(_) | Bson::ObjectId(_) | Bson::DateTime(_) => Ok(Bson::Boolean(true)),
            other => Err(unsupported(other, target)),
        },
        Target::Date => to_date(input),
        Target::Int => {
            let long = to_long(input.clone())?;
            match long {
                Bson::Int64(l) => i32::try_from(l).map(Bson::Int32).map_err(|_| overflow(&input)),
                other => Ok(other),
            }
        }
        Target::Long => to_long(input),
        Target::Decimal => match input {
            Bson::Double(d) => Ok(Bson::Decimal128(decimal::from_f64_15(d))),
            Bson::Int32(i) => Ok(Bson::Decimal128(decimal::from_i64(i64::from(i)))),
            Bson::Int64(i) => Ok(Bson::Decimal128(decimal::from_i64(i))),
            Bson::Boolean(b) => Ok(Bson::Decimal128(decimal::from_i64(i64::from(b)))),
            Bson::DateTime(d) => Ok(Bson::Decimal128(decimal::from_i64(d.timestamp_millis()))),
            Bson::String(s) => parse_decimal(&s).map(Bson::Decimal128),
            other => Err(unsupported(&other, target)),
        },
        Target::Other(_) => Err(unsupported(&input, target)),
    }
}

fn to_double(input: Bson) -> Result<Bson, QueryError> {
    Ok(Bson::Double(match &input {
        Bson::Int32(i) => f64::from(*i),
        Bson::Int64(i) => *i as f64,
        Bson::Boolean(b) => f64::from(u8::from(*b)),
        Bson::DateTime(d) => d.timestamp_millis() as f64,
        Bson::Decimal128(d) => {
            let x = decimal::to_f64(*d);
            // A finite decimal past the double range overflows; infinities and NaN carry over.
            if x.is_infinite()
                && !matches!(crate::query::exact::decode_decimal(*d), crate::query::exact::Decimal::Infinity { .. })
            {
                return Err(overflow(&input));
            }
            x
        }
        Bson::String(s) => parse_double(s)?,
        other => return Err(unsupported(other, Target::Double)),
    }))
}

/// `to_long`'s result is an int64 except for an int input, which it keeps for `$toInt`.
fn to_long(input: Bson) -> Result<Bson, QueryError> {
    let target = Target::Long;
    let l = match &input {
        Bson::Int32(i) => return Ok(Bson::Int64(i64::from(*i))),
        Bson::Boolean(b) => i64::from(*b),
        Bson::DateTime(d) => d.timestamp_millis(),
        Bson::Double(d) => double_to_long(*d, &input)?,
        Bson::Decimal128(d) => {
            let x = decimal::to_f64(*d);
            if x.is_nan() || x.is_infinite() {
                return Err(non_finite(x));
            }
            // Truncation toward zero: the decimal's integral part must fit.
            let truncated = truncate_decimal(*d);
            truncated.ok_or_else(|| overflow(&input))?
        }
        Bson::String(s) => parse_long(s)?,
        other => return Err(unsupported(other, target)),
    };
    Ok(Bson::Int64(l))
}

fn non_finite(x: f64) -> QueryError {
    let what = if x.is_nan() { "NaN" } else { "infinity" };
    let shown = if x.is_nan() { "NaN".to_owned() } else { render::double(x) };
    failure(format!("Attempt to convert {what} value to integer type in $convert with no onError value: {shown}"))
}

fn double_to_long(d: f64, input: &Bson) -> Result<i64, QueryError> {
    if d.is_nan() || d.is_infinite() {
        return Err(non_finite(d));
    }
    let t = d.trunc();
    // 2^63 is the first double past the int64 range.
    if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&t) {
        return Err(overflow(input));
    }
    Ok(t as i64)
}

/// The integral part of a decimal as an int64, if it fits.
fn truncate_decimal(d: Decimal128) -> Option<i64> {
    let crate::query::exact::Decimal::Finite { negative, coefficient, exponent } =
        crate::query::exact::decode_decimal(d)
    else {
        return None;
    };
    let mut magnitude = coefficient;
    if exponent < 0 {
        for _ in 0..exponent.unsigned_abs().min(40) {
            magnitude /= 10;
        }
    } else {
        for _ in 0..exponent {
            magnitude = magnitude.checked_mul(10)?;
        }
    }
    let magnitude = i128::try_from(magnitude).ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

fn to_date(input: Bson) -> Result<Bson, QueryError> {
    let ms = match &input {
        Bson::Int64(i) => *i,
        Bson::Double(d) => double_to_long(*d, &input)?,
        Bson::Decimal128(d) => {
            let x = decimal::to_f64(*d);
            if x.is_nan() || x.is_infinite() {
                return Err(overflow(&input));
            }
            truncate_decimal(*d).ok_or_else(|| overflow(&input))?
        }
        Bson::String(s) => read_date(s)?,
        Bson::ObjectId(oid) => oid.timestamp().timestamp_millis(),
        Bson::Timestamp(ts) => i64::from(ts.time) * 1000,
        other => return Err(unsupported(other, Target::Date)),
    };
    Ok(Bson::DateTime(bson::DateTime::from_millis(ms)))
}

fn parse_failure(s: &str, reason: &str) -> QueryError {
    failure(format!("Failed to parse number '{s}' in $convert with no onError value: {reason}"))
}

/// mongod's `parseNumberFromStringWithBase(…, 10)`: optional sign and decimal digits only.
fn parse_long(s: &str) -> Result<i64, QueryError> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() {
        return Err(parse_failure(s, "No digits"));
    }
    if let Some(bad) = digits.chars().find(|c| !c.is_ascii_digit()) {
        return Err(parse_failure(s, &format!("Bad digit \"{bad}\" while parsing {s}")));
    }
    s.parse::<i64>().map_err(|_| parse_failure(s, "Overflow"))
}

/// A string read as a double: decimal or scientific notation, `Infinity` and `NaN`, and
/// nothing left over.
fn parse_double(s: &str) -> Result<f64, QueryError> {
    let trimmed = s.strip_prefix(['-', '+']).unwrap_or(s);
    let special = matches!(trimmed.to_ascii_lowercase().as_str(), "inf" | "infinity" | "nan");
    let plain =
        !trimmed.is_empty() && trimmed.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'));
    if !special && !plain {
        return Err(parse_failure(s, "Did not consume whole string."));
    }
    s.parse::<f64>().map_err(|_| parse_failure(s, "Did not consume whole string."))
}

fn parse_decimal(s: &str) -> Result<Decimal128, QueryError> {
    s.parse::<Decimal128>().map_err(|_| parse_failure(s, "Failed to parse string to decimal"))
}

fn parse_object_id(s: &str) -> Result<ObjectId, QueryError> {
    let fail =
        |reason: String| failure(format!("Failed to parse objectId '{s}' in $convert with no onError value: {reason}"));
    if s.len() != 24 {
        return Err(fail(format!("Invalid string length for parsing to OID, expected 24 but found {}", s.len())));
    }
    if let Some(bad) = s.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(fail(format!("Invalid character found in hex string: '{bad}'")));
    }
    ObjectId::parse_str(s).map_err(|e| fail(e.to_string()))
}

/// mongod's `Value::coerceToString`: strings as they are, null and missing as "", numbers as
/// C++ streams write them (doubles with six significant digits), dates in ISO 8601,
/// timestamps as `Mon d hh:mm:ss:inc`.
///
/// # Errors
/// 16007 for the other types.
pub(super) fn coerce_to_string(v: Value) -> Result<String, QueryError> {
    match v {
        Some(Bson::String(s) | Bson::Symbol(s) | Bson::JavaScriptCode(s)) => Ok(s),
        Some(Bson::Int32(i)) => Ok(i.to_string()),
        Some(Bson::Int64(i)) => Ok(i.to_string()),
        Some(Bson::Double(d)) => Ok(render::format_g(d, 6)),
        Some(Bson::Decimal128(d)) => Ok(d.to_string()),
        Some(Bson::DateTime(d)) => iso_utc(d.timestamp_millis()),
        Some(Bson::Timestamp(ts)) => Ok(timestamp_pretty(ts)),
        v if nullish(&v) => Ok(String::new()),
        v => Err(QueryError::new(
            ErrorCode::Location16007,
            format!("can't convert from BSON type {} to String", type_of(&v)),
        )),
    }
}

/// mongod's `Timestamp::toStringPretty`: the seconds as `ctime` writes them in UTC, without
/// the weekday and year, then the increment.
fn timestamp_pretty(ts: bson::Timestamp) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = i64::from(ts.time);
    let rem = secs.rem_euclid(86_400);
    let (_, month, day) = civil_from_days(secs.div_euclid(86_400));
    let name = usize::try_from(month - 1).ok().and_then(|m| MONTHS.get(m)).copied().unwrap_or("Jan");
    format!("{name} {day:>2} {:02}:{:02}:{:02}:{}", rem / 3600, rem % 3600 / 60, rem % 60, ts.increment)
}
