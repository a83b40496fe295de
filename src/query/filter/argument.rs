//! How operators read their numeric and boolean arguments: mongod's coercions, shared by the
//! filter parser, the predicates and `$jsonSchema`.

use bson::RawBsonRef;

use crate::query::decimal;
use crate::query::error::QueryError;
use crate::query::render;

/// An integral double as an int64, if it is one exactly.
pub(super) fn double_to_i64(d: f64) -> Option<i64> {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if !d.is_finite() || !(-TWO_POW_63..TWO_POW_63).contains(&d) || d.fract() != 0.0 {
        return None;
    }
    // The range and integrality checks above make the cast exact.
    Some(d as i64)
}

/// mongod's `parseIntegerElementToNonNegativeLong` (9 FailedToParse on failure).
pub(in crate::query) fn parse_non_negative_long(op: &str, value: RawBsonRef<'_>) -> Result<i64, QueryError> {
    let shown = || render::element(op, value);
    let n = match value {
        RawBsonRef::Int32(i) => i64::from(i),
        RawBsonRef::Int64(i) => i,
        other => {
            let d = match other {
                RawBsonRef::Double(d) => d,
                RawBsonRef::Decimal128(d) => d.to_string().parse::<f64>().unwrap_or(f64::NAN),
                _ => return Err(QueryError::failed_to_parse(format!("Expected a number in: {}", shown()))),
            };
            if d.is_nan() {
                return Err(QueryError::failed_to_parse(format!("Expected an integer, but found NaN in: {}", shown())));
            }
            if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&d) {
                return Err(QueryError::failed_to_parse(format!("Cannot represent as a 64-bit integer: {}", shown())));
            }
            double_to_i64(d).ok_or_else(|| QueryError::failed_to_parse(format!("Expected an integer: {}", shown())))?
        }
    };
    if n < 0 {
        return Err(QueryError::failed_to_parse(format!("Expected a positive number in: {}", shown())));
    }
    Ok(n)
}

/// mongod's `BSONElement::trueValue`: false for false, zero, null and undefined.
pub(crate) fn true_value(v: RawBsonRef<'_>) -> bool {
    match v {
        RawBsonRef::Boolean(b) => b,
        RawBsonRef::Null | RawBsonRef::Undefined => false,
        RawBsonRef::Int32(i) => i != 0,
        RawBsonRef::Int64(i) => i != 0,
        RawBsonRef::Double(d) => d != 0.0,
        RawBsonRef::Decimal128(d) => !decimal::is_zero(d),
        _ => true,
    }
}
