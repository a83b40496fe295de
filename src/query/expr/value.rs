//! Values while an expression is evaluated: a missing value kept apart from null, mongod's
//! type names and truthiness.

use bson::Bson;

use crate::error::ErrorCode;
use crate::query::decimal;
use crate::query::error::QueryError;
use crate::query::number::Number;
use crate::query::render;

/// A value while evaluating: `None` is missing.
pub(super) type Value = Option<Bson>;

/// The BSON type name of a value, "missing" for a missing one.
pub(super) fn type_of(v: &Value) -> &'static str {
    v.as_ref().map_or("missing", |b| render::type_name(b.element_type()))
}

/// Missing, null or undefined: what most operators answer null for.
pub(super) fn nullish(v: &Value) -> bool {
    matches!(v, None | Some(Bson::Null | Bson::Undefined))
}

/// mongod's `Value::coerceToBool`: false, null, undefined, missing and numeric zero are false;
/// everything else (NaN, empty strings and arrays included) is true.
pub fn truthy(value: &Option<Bson>) -> bool {
    match value {
        None | Some(Bson::Null | Bson::Undefined | Bson::Boolean(false)) => false,
        Some(Bson::Int32(i)) => *i != 0,
        Some(Bson::Int64(i)) => *i != 0,
        Some(Bson::Double(d)) => *d != 0.0,
        Some(Bson::Decimal128(d)) => !decimal::is_zero(*d),
        Some(_) => true,
    }
}

pub(super) fn type_mismatch(message: String) -> QueryError {
    QueryError::new(ErrorCode::TypeMismatch, message)
}

/// The number as an int64 when its value is integral (mongod's `Value::integral64Bit`).
pub(super) fn integral_i64(n: Number) -> Option<i64> {
    match n {
        Number::Int32(i) => Some(i64::from(i)),
        Number::Int64(i) => Some(i),
        Number::Double(d) if d.fract() == 0.0 && d >= i64::MIN as f64 && d < i64::MAX as f64 => Some(d as i64),
        Number::Decimal(d) => {
            let f = decimal::to_f64(d);
            (f.fract() == 0.0 && f.is_finite()).then(|| decimal::to_i64(d)).flatten()
        }
        Number::Double(_) => None,
    }
}

/// mongod's `uassertIfNotIntegralAndNonNegative` for the search operators (`$indexOfBytes`,
/// `$indexOfCP`, `$indexOfArray`): 40096 for a value that is not an integral number, 40097
/// for a negative one.
pub(super) fn index_argument(name: &str, v: Value, what: &str) -> Result<usize, QueryError> {
    let Some(i) = v.as_ref().and_then(Number::from_bson).and_then(integral_i64) else {
        let shown = v.as_ref().map_or_else(|| "missing".to_owned(), render::owned_value);
        return Err(QueryError::new(
            ErrorCode::Location40096,
            format!("{name} requires an integral {what}, found a value of type: {}, with value: {shown}", type_of(&v)),
        ));
    };
    usize::try_from(i).map_err(|_| {
        QueryError::new(ErrorCode::Location40097, format!("{name} requires a nonnegative {what}, found: {i}"))
    })
}
