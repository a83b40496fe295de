//! The numeric operators beyond the four operations: rounding (`$ceil $floor $round $trunc`),
//! powers and logarithms (`$sqrt $pow $exp $ln $log $log10`), trigonometry, angle units and
//! the bitwise operators, with mongod's result types and codes.
//!
//! Decimal128 operands give decimal results. Rounding and integral powers are exact; the
//! transcendental functions of a decimal are computed in double precision and converted back
//! (mongod computes them in decimal), which `docs/compat/aggregation.md` lists.

use bson::{Bson, Decimal128, RawBsonRef};

use super::args;
use super::ops::MathOp;
use super::syntax::{Expression, Operator};
use super::value::{Value, integral_i64, nullish, type_of};
use crate::error::ErrorCode;
use crate::query::decimal::{self, Rounding};
use crate::query::error::QueryError;
use crate::query::number::Number;
use crate::query::render;

/// Parses `{name: arg}` for an operator of this family.
pub(super) fn parse(op: MathOp, arg: RawBsonRef<'_>) -> Result<Expression, QueryError> {
    let name = op.name();
    let args = match op {
        MathOp::Round | MathOp::Trunc => args::positional(name, arg, 1, Some(2))?,
        MathOp::Pow | MathOp::Log | MathOp::Atan2 => args::positional(name, arg, 2, Some(2))?,
        MathOp::BitAnd | MathOp::BitOr | MathOp::BitXor => args::positional(name, arg, 0, None)?,
        _ => args::positional(name, arg, 1, Some(1))?,
    };
    Ok(Expression::Operator { op: Operator::Math(op), args })
}

fn error(code: ErrorCode, message: String) -> QueryError {
    QueryError::new(code, message)
}

/// A value as mongod's `Value` prints in messages (doubles as C++ streams write them).
fn shown(n: Number) -> String {
    match n {
        Number::Double(d) => render::format_g(d, 6),
        Number::Decimal(d) => d.to_string(),
        Number::Int32(i) => i.to_string(),
        Number::Int64(i) => i.to_string(),
    }
}

/// Evaluates an operator of this family; `eval(i)` evaluates its `i`th argument.
pub(super) fn evaluate(
    op: MathOp,
    args: &[Expression],
    eval: &mut dyn FnMut(usize) -> Result<Value, QueryError>,
) -> Result<Value, QueryError> {
    let name = op.name();
    match op {
        MathOp::Round | MathOp::Trunc => round(op, eval(0)?, if args.len() > 1 { Some(eval(1)?) } else { None }),
        MathOp::Pow => pow(eval(0)?, eval(1)?),
        MathOp::Log => {
            let (x, base) = (eval(0)?, eval(1)?);
            if nullish(&x) || nullish(&base) {
                return Ok(Some(Bson::Null));
            }
            let Some(xn) = x.as_ref().and_then(Number::from_bson) else {
                return Err(error(
                    ErrorCode::Location28756,
                    format!("$log's argument must be numeric, not {}", type_of(&x)),
                ));
            };
            let Some(bn) = base.as_ref().and_then(Number::from_bson) else {
                return Err(error(
                    ErrorCode::Location28757,
                    format!("$log's base must be numeric, not {}", type_of(&base)),
                ));
            };
            let (xf, bf) = (xn.to_f64(), bn.to_f64());
            if !(xf > 0.0 || xf.is_nan()) {
                return Err(error(
                    ErrorCode::Location28758,
                    format!("$log's argument must be a positive number, but is {}", shown(xn)),
                ));
            }
            if !((bf > 0.0 && bf != 1.0) || bf.is_nan()) {
                return Err(error(
                    ErrorCode::Location28759,
                    format!("$log's base must be a positive number not equal to 1, but is {}", shown(bn)),
                ));
            }
            Ok(Some(result_like(is_decimal(xn) || is_decimal(bn), xf.ln() / bf.ln())))
        }
        MathOp::Atan2 => {
            let (y, x) = (eval(0)?, eval(1)?);
            if nullish(&y) || nullish(&x) {
                return Ok(Some(Bson::Null));
            }
            match (y.as_ref().and_then(Number::from_bson), x.as_ref().and_then(Number::from_bson)) {
                (Some(yn), Some(xn)) => {
                    Ok(Some(result_like(is_decimal(yn) || is_decimal(xn), yn.to_f64().atan2(xn.to_f64()))))
                }
                _ => Err(error(
                    ErrorCode::Location51044,
                    format!("$atan2 only supports numeric types, not {} and {}", type_of(&y), type_of(&x)),
                )),
            }
        }
        MathOp::BitAnd | MathOp::BitOr | MathOp::BitXor => {
            let (mut acc, mut long): (i64, bool) = (if op == MathOp::BitAnd { -1 } else { 0 }, false);
            for i in 0..args.len() {
                let v = eval(i)?;
                let n = match v {
                    Some(Bson::Int32(n)) => i64::from(n),
                    Some(Bson::Int64(n)) => {
                        long = true;
                        n
                    }
                    v if nullish(&v) => return Ok(Some(Bson::Null)),
                    _ => {
                        return Err(error(
                            ErrorCode::TypeMismatch,
                            format!("{name} only supports int and long operands."),
                        ));
                    }
                };
                acc = match op {
                    MathOp::BitAnd => acc & n,
                    MathOp::BitOr => acc | n,
                    _ => acc ^ n,
                };
            }
            Ok(Some(if long { Bson::Int64(acc) } else { Bson::Int32(i32::try_from(acc).unwrap_or_default()) }))
        }
        MathOp::BitNot => match eval(0)? {
            Some(Bson::Int32(n)) => Ok(Some(Bson::Int32(!n))),
            Some(Bson::Int64(n)) => Ok(Some(Bson::Int64(!n))),
            v if nullish(&v) => Ok(Some(Bson::Null)),
            v => Err(error(
                ErrorCode::TypeMismatch,
                format!("$bitNot only supports int and long, not: {}.", type_of(&v)),
            )),
        },
        _ => unary(op, eval(0)?),
    }
}

fn is_decimal(n: Number) -> bool {
    matches!(n, Number::Decimal(_))
}

/// A double result, as a decimal when an operand was one.
fn result_like(decimal_result: bool, x: f64) -> Bson {
    if decimal_result { Bson::Decimal128(decimal::from_f64(x)) } else { Bson::Double(x) }
}

/// The one-argument operators: null for null, 28765 for a non-number.
fn unary(op: MathOp, v: Value) -> Result<Value, QueryError> {
    let name = op.name();
    if nullish(&v) {
        return Ok(Some(Bson::Null));
    }
    let Some(n) = v.as_ref().and_then(Number::from_bson) else {
        return Err(error(
            ErrorCode::Location28765,
            format!("{name} only supports numeric types, not {}", type_of(&v)),
        ));
    };
    let x = n.to_f64();
    let as_decimal = is_decimal(n);
    match op {
        MathOp::Ceil | MathOp::Floor => Ok(Some(match n {
            Number::Int32(_) | Number::Int64(_) => n.to_bson(),
            Number::Double(d) => Bson::Double(if op == MathOp::Ceil { d.ceil() } else { d.floor() }),
            Number::Decimal(d) => Bson::Decimal128(decimal::quantize(
                d,
                0,
                if op == MathOp::Ceil { Rounding::Ceiling } else { Rounding::Floor },
            )),
        })),
        MathOp::Sqrt => {
            if x < 0.0 {
                return Err(error(
                    ErrorCode::Location28714,
                    "$sqrt's argument must be greater than or equal to 0".into(),
                ));
            }
            Ok(Some(result_like(as_decimal, x.sqrt())))
        }
        MathOp::Exp => Ok(Some(result_like(as_decimal, x.exp()))),
        MathOp::Ln | MathOp::Log10 => {
            if !(x > 0.0 || x.is_nan()) {
                let code = if op == MathOp::Ln { ErrorCode::Location28766 } else { ErrorCode::Location28761 };
                return Err(error(code, format!("{name}'s argument must be a positive number, but is {}", shown(n))));
            }
            Ok(Some(result_like(as_decimal, if op == MathOp::Ln { x.ln() } else { x.log10() })))
        }
        MathOp::DegreesToRadians => Ok(Some(result_like(as_decimal, x.to_radians()))),
        MathOp::RadiansToDegrees => Ok(Some(result_like(as_decimal, x.to_degrees()))),
        _ => {
            let (low, high, open) = bounds(op);
            let inside = x.is_nan() || if open { x > low && x < high } else { x >= low && x <= high };
            if !inside {
                let (left, right) = if open { ('(', ')') } else { ('[', ']') };
                return Err(error(
                    ErrorCode::Location50989,
                    format!(
                        "cannot apply {name} to {}, value must in {left}{},{}{right}",
                        shown(n),
                        render::format_g(low, 6),
                        render::format_g(high, 6)
                    ),
                ));
            }
            let y = match op {
                MathOp::Sin => x.sin(),
                MathOp::Cos => x.cos(),
                MathOp::Tan => x.tan(),
                MathOp::Asin => x.asin(),
                MathOp::Acos => x.acos(),
                MathOp::Atan => x.atan(),
                MathOp::Sinh => x.sinh(),
                MathOp::Cosh => x.cosh(),
                MathOp::Tanh => x.tanh(),
                MathOp::Asinh => x.asinh(),
                MathOp::Acosh => x.acosh(),
                _ => x.atanh(),
            };
            Ok(Some(result_like(as_decimal, y)))
        }
    }
}

/// The domain of a trigonometric operator: bounds and whether they are excluded.
fn bounds(op: MathOp) -> (f64, f64, bool) {
    match op {
        MathOp::Sin | MathOp::Cos | MathOp::Tan => (f64::NEG_INFINITY, f64::INFINITY, true),
        MathOp::Asin | MathOp::Acos | MathOp::Atanh => (-1.0, 1.0, false),
        MathOp::Acosh => (1.0, f64::INFINITY, false),
        _ => (f64::NEG_INFINITY, f64::INFINITY, false),
    }
}

/// mongod's `$round`/`$trunc`: `place` in [-20, 100]; integers kept when `place` is not
/// negative; doubles rounded through a 15-digit decimal, ties to even.
fn round(op: MathOp, v: Value, place: Option<Value>) -> Result<Value, QueryError> {
    let name = op.name();
    let place = match place {
        None => 0,
        Some(p) if nullish(&p) => return Ok(Some(Bson::Null)),
        Some(p) => {
            let integral = p.as_ref().and_then(Number::from_bson).and_then(integral_i64);
            let Some(place) = integral else {
                return Err(error(
                    ErrorCode::Location51082,
                    format!("precision argument to  {name} must be a integral value"),
                ));
            };
            if !(-20..=100).contains(&place) {
                return Err(error(
                    ErrorCode::Location51083,
                    format!("cannot apply {name} with precision value {place} value must be in [-20, 100]"),
                ));
            }
            place
        }
    };
    if nullish(&v) {
        return Ok(Some(Bson::Null));
    }
    let Some(n) = v.as_ref().and_then(Number::from_bson) else {
        return Err(error(
            ErrorCode::Location51081,
            format!("{name} only supports numeric types, not {}", type_of(&v)),
        ));
    };
    let mode = if op == MathOp::Round { Rounding::HalfEven } else { Rounding::TowardZero };
    Ok(Some(match n {
        Number::Int32(_) | Number::Int64(_) if place >= 0 => n.to_bson(),
        Number::Int32(_) | Number::Int64(_) => {
            let whole = matches!(n, Number::Int64(_));
            let rounded = decimal::quantize(n.to_decimal(), place, mode);
            let Some(l) = decimal::to_i64(rounded) else {
                return Err(error(
                    ErrorCode::Location51080,
                    format!(
                        "invalid conversion from Decimal128 result in {name} resulting from arguments: [{}, {place}]",
                        shown(n)
                    ),
                ));
            };
            match (whole, i32::try_from(l)) {
                (false, Ok(i)) => Bson::Int32(i),
                _ => Bson::Int64(l),
            }
        }
        Number::Double(d) if !d.is_finite() => Bson::Double(d),
        Number::Double(d) => Bson::Double(decimal::to_f64(decimal::quantize(decimal::from_f64_15(d), place, mode))),
        Number::Decimal(d) => Bson::Decimal128(decimal::quantize(d, place, mode)),
    }))
}

/// mongod's `ExpressionPow`: integers stay integers while the result fits an int64 (an int
/// while both are ints and it fits one), a double operand gives a double, a decimal one a
/// decimal.
fn pow(base: Value, exponent: Value) -> Result<Value, QueryError> {
    if nullish(&base) || nullish(&exponent) {
        return Ok(Some(Bson::Null));
    }
    let Some(b) = base.as_ref().and_then(Number::from_bson) else {
        return Err(error(ErrorCode::Location28762, format!("$pow's base must be numeric, not {}", type_of(&base))));
    };
    let Some(e) = exponent.as_ref().and_then(Number::from_bson) else {
        return Err(error(
            ErrorCode::Location28763,
            format!("$pow's exponent must be numeric, not {}", type_of(&exponent)),
        ));
    };
    let (bf, ef) = (b.to_f64(), e.to_f64());
    if bf == 0.0 && ef < 0.0 {
        return Err(error(ErrorCode::Location28764, "$pow cannot take a base of 0 and a negative exponent".into()));
    }
    if is_decimal(b) || is_decimal(e) {
        return Ok(Some(Bson::Decimal128(decimal_pow(b.to_decimal(), e))));
    }
    if matches!(b, Number::Double(_)) || matches!(e, Number::Double(_)) {
        return Ok(Some(Bson::Double(bf.powf(ef))));
    }
    let (Some(bl), Some(el)) = (integer(b), integer(e)) else { return Ok(Some(Bson::Double(bf.powf(ef)))) };
    let exact = if el < 0 {
        match bl {
            1 => Some(1),
            -1 => Some(if el % 2 == 0 { 1 } else { -1 }),
            _ => None,
        }
    } else {
        u32::try_from(el).ok().and_then(|el| bl.checked_pow(el))
    };
    let Some(result) = exact else { return Ok(Some(Bson::Double(bf.powf(ef)))) };
    Ok(Some(match (b, e, i32::try_from(result)) {
        (Number::Int32(_), Number::Int32(_), Ok(i)) => Bson::Int32(i),
        _ => Bson::Int64(result),
    }))
}

fn integer(n: Number) -> Option<i64> {
    match n {
        Number::Int32(i) => Some(i64::from(i)),
        Number::Int64(i) => Some(i),
        _ => None,
    }
}

/// A decimal power: exact squaring for a whole exponent up to 4096, double precision else.
fn decimal_pow(base: Decimal128, exponent: Number) -> Decimal128 {
    match integral_i64(exponent) {
        Some(k) if (0..=4096).contains(&k) => {
            let (mut result, mut square, mut k) = (decimal::from_i64(1), base, k);
            while k > 0 {
                if k & 1 == 1 {
                    result = decimal::mul(result, square);
                }
                square = decimal::mul(square, square);
                k >>= 1;
            }
            result
        }
        _ => decimal::from_f64(decimal::to_f64(base).powf(exponent.to_f64())),
    }
}
