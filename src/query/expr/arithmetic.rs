//! Arithmetic expressions (`$add`, `$subtract`, `$multiply`, `$divide`, `$mod`, `$abs`) on
//! evaluated values, with mongod's type promotion and date arithmetic; decimal128 operands
//! are computed exactly.

use bson::{Bson, Decimal128};

use super::value::{Value, nullish, type_mismatch, type_of};
use crate::error::ErrorCode;
use crate::query::decimal;
use crate::query::error::QueryError;
use crate::query::number::Number;

fn as_f64(n: Number) -> f64 {
    n.to_f64()
}

fn as_i64(n: Number) -> Option<i64> {
    match n {
        Number::Int32(i) => Some(i64::from(i)),
        Number::Int64(i) => Some(i),
        Number::Double(_) | Number::Decimal(_) => None,
    }
}

fn any_decimal(a: Number, b: Number) -> bool {
    matches!(a, Number::Decimal(_)) || matches!(b, Number::Decimal(_))
}

/// A date plus or minus a decimal number of milliseconds, rounded half to even.
fn decimal_to_millis(total: Decimal128) -> Result<i64, QueryError> {
    decimal::to_i64(total).ok_or_else(date_overflow)
}

/// The widest numeric type seen so far by `$add` or `$multiply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Widest {
    Int,
    Long,
    Double,
}

fn widest_of(n: Number) -> Widest {
    match n {
        Number::Int32(_) => Widest::Int,
        Number::Int64(_) => Widest::Long,
        Number::Double(_) | Number::Decimal(_) => Widest::Double,
    }
}

/// An int64 result as mongod's `createIntOrLong` makes it for an int-typed total.
fn int_or_long(total: i64, widest: Widest) -> Bson {
    match widest {
        Widest::Int => i32::try_from(total).map_or(Bson::Int64(total), Bson::Int32),
        _ => Bson::Int64(total),
    }
}

fn date_overflow() -> QueryError {
    QueryError::new(ErrorCode::Overflow, "date overflow")
}

/// A double as whole milliseconds (mongod's `llround`), if it is inside the int64 range.
fn double_to_millis(d: f64) -> Option<i64> {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    // The range check makes the cast exact after rounding.
    (d.is_finite() && (-TWO_POW_63..TWO_POW_63).contains(&d)).then(|| d.round() as i64)
}

/// mongod's `AddState`: an int64 total while the operands are integers (an int64 overflow
/// switches to a double total), a double total from the first double on, a decimal total
/// from the first decimal on (the total so far converted exactly, or a double to 34 digits);
/// a date operand makes the result a date, doubles rounded to whole milliseconds.
pub(super) fn add(values: &[Value]) -> Result<Value, QueryError> {
    let (mut widest, mut long_total, mut double_total) = (Widest::Int, 0i64, 0f64);
    let mut decimal_total: Option<Decimal128> = None;
    let mut date = false;
    for v in values {
        if nullish(v) {
            return Ok(Some(Bson::Null));
        }
        let n = match v {
            Some(Bson::DateTime(d)) => {
                if date {
                    return Err(QueryError::new(
                        ErrorCode::Location16612,
                        "only one date allowed in an $add expression",
                    ));
                }
                date = true;
                Number::Int64(d.timestamp_millis())
            }
            Some(b) => match Number::from_bson(b) {
                Some(n) => n,
                None => {
                    return Err(type_mismatch(format!("$add only supports numeric or date types, not {}", type_of(v))));
                }
            },
            None => return Ok(Some(Bson::Null)),
        };
        if decimal_total.is_some() || matches!(n, Number::Decimal(_)) {
            let so_far = decimal_total.unwrap_or_else(|| match widest {
                Widest::Double if !date => decimal::from_f64(double_total),
                _ => decimal::from_i64(long_total),
            });
            decimal_total = Some(decimal::add(so_far, n.to_decimal()));
            continue;
        }
        if date {
            // Once there is a date, everything adds up in int64 milliseconds.
            let add = match n {
                Number::Double(d) => double_to_millis(d).ok_or_else(date_overflow)?,
                n => as_i64(n).unwrap_or(0),
            };
            let base = if widest == Widest::Double {
                double_to_millis(double_total).ok_or_else(date_overflow)?
            } else {
                long_total
            };
            long_total = base.checked_add(add).ok_or_else(date_overflow)?;
            widest = Widest::Long;
            continue;
        }
        let next = widest.max(widest_of(n));
        if next == Widest::Double && widest != Widest::Double {
            double_total = long_total as f64;
        }
        widest = next;
        match widest {
            Widest::Double => double_total += as_f64(n),
            _ => match long_total.checked_add(as_i64(n).unwrap_or(0)) {
                Some(t) => long_total = t,
                None => {
                    widest = Widest::Double;
                    double_total = long_total as f64 + as_f64(n);
                }
            },
        }
    }
    Ok(Some(match (decimal_total, date) {
        (Some(total), true) => Bson::DateTime(bson::DateTime::from_millis(decimal_to_millis(total)?)),
        (Some(total), false) => Bson::Decimal128(total),
        (None, _) => add_result(widest, long_total, double_total, date),
    }))
}

fn add_result(widest: Widest, long_total: i64, double_total: f64, date: bool) -> Bson {
    if date {
        Bson::DateTime(bson::DateTime::from_millis(long_total))
    } else if widest == Widest::Double {
        Bson::Double(double_total)
    } else {
        int_or_long(long_total, widest)
    }
}

/// mongod's `evaluateSubtract`: the widest numeric type decides; an int64 overflow gives a
/// double; a date minus a date is int64 milliseconds, a date minus a number a date.
pub(super) fn subtract(a: Value, b: Value) -> Result<Value, QueryError> {
    let (na, nb) = (a.as_ref().and_then(Number::from_bson), b.as_ref().and_then(Number::from_bson));
    if let (Some(x), Some(y)) = (na, nb) {
        if any_decimal(x, y) {
            return Ok(Some(Bson::Decimal128(decimal::sub(x.to_decimal(), y.to_decimal()))));
        }
        let widest = widest_of(x).max(widest_of(y));
        return Ok(Some(match widest {
            Widest::Double => Bson::Double(as_f64(x) - as_f64(y)),
            _ => {
                let (l, r) = (as_i64(x).unwrap_or(0), as_i64(y).unwrap_or(0));
                match l.checked_sub(r) {
                    Some(d) => int_or_long(d, widest),
                    None => Bson::Double(as_f64(x) - as_f64(y)),
                }
            }
        }));
    }
    if nullish(&a) || nullish(&b) {
        return Ok(Some(Bson::Null));
    }
    if let Some(Bson::DateTime(lhs)) = &a {
        let lhs = lhs.timestamp_millis();
        return match (&b, nb) {
            (Some(Bson::DateTime(rhs)), _) => Ok(Some(Bson::Int64(lhs.wrapping_sub(rhs.timestamp_millis())))),
            (_, Some(n)) => {
                let offset = match n {
                    Number::Double(d) => double_to_millis(d).ok_or_else(date_overflow)?,
                    Number::Decimal(d) => decimal_to_millis(d)?,
                    n => as_i64(n).unwrap_or(0),
                };
                let ms = lhs.checked_sub(offset).ok_or_else(date_overflow)?;
                Ok(Some(Bson::DateTime(bson::DateTime::from_millis(ms))))
            }
            _ => Err(type_mismatch(format!("can't $subtract {} from Date", type_of(&b)))),
        };
    }
    Err(type_mismatch(format!("can't $subtract {} from {}", type_of(&b), type_of(&a))))
}

/// mongod's `MultiplyState`: a double product kept alongside an int64 one, which is given up
/// on overflow or a non-finite factor.
pub(super) fn multiply(values: &[Value]) -> Result<Value, QueryError> {
    let (mut widest, mut long_product, mut double_product) = (Widest::Int, 1i64, 1f64);
    let mut decimal_product: Option<Decimal128> = None;
    for v in values {
        if nullish(v) {
            return Ok(Some(Bson::Null));
        }
        let Some(n) = v.as_ref().and_then(Number::from_bson) else {
            return Err(type_mismatch(format!("$multiply only supports numeric types, not {}", type_of(v))));
        };
        if decimal_product.is_some() || matches!(n, Number::Decimal(_)) {
            // From the first decimal on, the product so far converts (a double to 15 digits).
            let so_far = decimal_product.unwrap_or_else(|| match widest {
                Widest::Double => decimal::from_f64_15(double_product),
                _ => decimal::from_i64(long_product),
            });
            decimal_product = Some(decimal::mul(so_far, n.to_decimal()));
            continue;
        }
        widest = widest.max(widest_of(n));
        double_product *= as_f64(n);
        if widest != Widest::Double {
            match long_product.checked_mul(as_i64(n).unwrap_or(0)) {
                Some(p) => long_product = p,
                None => widest = Widest::Double,
            }
        }
    }
    Ok(Some(match decimal_product {
        Some(product) => Bson::Decimal128(product),
        None if widest == Widest::Double => Bson::Double(double_product),
        None => int_or_long(long_product, widest),
    }))
}

pub(super) fn divide(a: Value, b: Value) -> Result<Value, QueryError> {
    match (a.as_ref().and_then(Number::from_bson), b.as_ref().and_then(Number::from_bson)) {
        (Some(x), Some(y)) if any_decimal(x, y) => {
            let denominator = y.to_decimal();
            if decimal::is_zero(denominator) {
                return Err(QueryError::bad_value("can't $divide by zero"));
            }
            Ok(Some(Bson::Decimal128(decimal::div(x.to_decimal(), denominator))))
        }
        (Some(x), Some(y)) => {
            let denominator = as_f64(y);
            if denominator == 0.0 {
                return Err(QueryError::bad_value("can't $divide by zero"));
            }
            Ok(Some(Bson::Double(as_f64(x) / denominator)))
        }
        _ if nullish(&a) || nullish(&b) => Ok(Some(Bson::Null)),
        _ => {
            Err(type_mismatch(format!("$divide only supports numeric types, not {} and {}", type_of(&a), type_of(&b))))
        }
    }
}

/// mongod's `evaluateMod`: a double on either side gives `fmod`; otherwise the integer
/// remainder, int64 when either side is one.
pub(super) fn modulo(a: Value, b: Value) -> Result<Value, QueryError> {
    let (x, y) = match (a.as_ref().and_then(Number::from_bson), b.as_ref().and_then(Number::from_bson)) {
        (Some(x), Some(y)) => (x, y),
        _ if nullish(&a) || nullish(&b) => return Ok(Some(Bson::Null)),
        _ => {
            return Err(QueryError::new(
                ErrorCode::Location16611,
                format!("$mod only supports numeric types, not {} and {}", type_of(&a), type_of(&b)),
            ));
        }
    };
    if any_decimal(x, y) {
        let divisor = y.to_decimal();
        if decimal::is_zero(divisor) {
            return Err(QueryError::new(ErrorCode::Location16610, "can't $mod by zero"));
        }
        return Ok(Some(Bson::Decimal128(decimal::rem(x.to_decimal(), divisor))));
    }
    let divisor = as_f64(y);
    if divisor == 0.0 {
        return Err(QueryError::new(ErrorCode::Location16610, "can't $mod by zero"));
    }
    Ok(Some(match (x, y) {
        (Number::Double(_), _) | (_, Number::Double(_)) => Bson::Double(as_f64(x) % divisor),
        // wrapping_rem: i64::MIN % -1 is 0, as mongod's overflow-safe mod says.
        (Number::Int32(l), Number::Int32(r)) => Bson::Int32(l.wrapping_rem(r)),
        _ => Bson::Int64(as_i64(x).unwrap_or(0).wrapping_rem(as_i64(y).unwrap_or(1))),
    }))
}

pub(super) fn abs(v: Value) -> Result<Value, QueryError> {
    Ok(Some(match v.as_ref().and_then(Number::from_bson) {
        Some(Number::Int32(i)) => i.checked_abs().map_or(Bson::Int64(-i64::from(i)), Bson::Int32),
        Some(Number::Int64(i)) => match i.checked_abs() {
            Some(a) => Bson::Int64(a),
            None => return Err(QueryError::new(ErrorCode::Location28680, "can't take $abs of long long min")),
        },
        Some(Number::Double(d)) => Bson::Double(d.abs()),
        Some(Number::Decimal(d)) => Bson::Decimal128(decimal::abs(d)),
        None if nullish(&v) => Bson::Null,
        None => {
            return Err(QueryError::new(
                ErrorCode::Location28765,
                format!("$abs only supports numeric types, not {}", type_of(&v)),
            ));
        }
    }))
}
