//! Values while an expression is evaluated: a missing value kept apart from null, mongod's
//! type names and truthiness.

use bson::Bson;

use crate::error::ErrorCode;
use crate::query::decimal;
use crate::query::error::QueryError;
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
