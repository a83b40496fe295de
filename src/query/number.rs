//! BSON numbers compared by exact value across int32, int64, double and decimal128, and
//! `$inc`/`$mul` arithmetic with mongod's type promotion (decimal arithmetic in [`decimal`]).
//!
//! mongod compares every pair of numeric types exactly: an int64 above 2^53 against a double,
//! and a decimal against a double (it converts rounding toward negative and looks at the
//! inexact flag). Here every finite number becomes `coefficient * 2^e2 * 5^e5` and two such
//! numbers are compared by magnitude estimate, falling back to big-integer arithmetic only
//! when the estimate is too close to call.

use std::cmp::Ordering;

use bson::{Bson, Decimal128, RawBsonRef};

use super::decimal;
use super::exact::{BigUint, Decimal, binary_parts, decode_decimal};

/// A number borrowed out of a BSON value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Number {
    Int32(i32),
    Int64(i64),
    Double(f64),
    Decimal(Decimal128),
}

impl Number {
    /// The number in `v`, if `v` is numeric.
    pub(crate) fn from_raw(v: RawBsonRef<'_>) -> Option<Self> {
        match v {
            RawBsonRef::Int32(i) => Some(Self::Int32(i)),
            RawBsonRef::Int64(i) => Some(Self::Int64(i)),
            RawBsonRef::Double(d) => Some(Self::Double(d)),
            RawBsonRef::Decimal128(d) => Some(Self::Decimal(d)),
            _ => None,
        }
    }

    /// The number in `v`, if `v` is numeric.
    pub(crate) fn from_bson(v: &Bson) -> Option<Self> {
        match v {
            Bson::Int32(i) => Some(Self::Int32(*i)),
            Bson::Int64(i) => Some(Self::Int64(*i)),
            Bson::Double(d) => Some(Self::Double(*d)),
            Bson::Decimal128(d) => Some(Self::Decimal(*d)),
            _ => None,
        }
    }

    /// The number as a BSON value of the same type.
    pub(crate) fn to_bson(self) -> Bson {
        match self {
            Self::Int32(i) => Bson::Int32(i),
            Self::Int64(i) => Bson::Int64(i),
            Self::Double(d) => Bson::Double(d),
            Self::Decimal(d) => Bson::Decimal128(d),
        }
    }

    /// NaN, as a double or a decimal.
    pub(crate) fn is_nan(self) -> bool {
        match self {
            Self::Double(d) => d.is_nan(),
            Self::Decimal(d) => matches!(decode_decimal(d), Decimal::NaN),
            Self::Int32(_) | Self::Int64(_) => false,
        }
    }

    /// The value as a 32-bit integer when it is one exactly (mongod's `Value::integral`).
    pub(crate) fn to_i32_exact(self) -> Option<i32> {
        match self {
            Self::Int32(i) => Some(i),
            Self::Int64(i) => i32::try_from(i).ok(),
            Self::Double(d) => {
                (d.fract() == 0.0 && (f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&d)).then_some(d as i32)
            }
            Self::Decimal(d) => {
                let rounded = decimal::to_i64(d)?;
                let integral = compare(self, Self::Int64(rounded)) == Ordering::Equal;
                if integral { i32::try_from(rounded).ok() } else { None }
            }
        }
    }

    /// The nearest double (mongod's `coerceToDouble`).
    pub(crate) fn to_f64(self) -> f64 {
        match self {
            Self::Int32(i) => f64::from(i),
            Self::Int64(i) => i as f64,
            Self::Double(d) => d,
            Self::Decimal(d) => decimal::to_f64(d),
        }
    }

    /// mongod's `SafeNum::debugString`, used in `$inc` overflow messages.
    pub(crate) fn debug_string(self) -> String {
        match self {
            Self::Int32(i) => format!("(NumberInt){i}"),
            Self::Int64(i) => format!("(NumberLong){i}"),
            Self::Double(d) => format!("(NumberDouble){d}"),
            Self::Decimal(d) => format!("(NumberDecimal){d}"),
        }
    }
}

/// Compares two numbers by exact value. NaN equals NaN and sorts below every other number;
/// -0 equals 0.
pub(crate) fn compare(a: Number, b: Number) -> Ordering {
    use Number::{Double, Int32, Int64};
    match (a, b) {
        (Int32(x), Int32(y)) => x.cmp(&y),
        (Int32(x), Int64(y)) => i64::from(x).cmp(&y),
        (Int64(x), Int32(y)) => x.cmp(&i64::from(y)),
        (Int64(x), Int64(y)) => x.cmp(&y),
        (Double(x), Double(y)) => compare_doubles(x, y),
        (Int32(x), Double(y)) => compare_doubles(f64::from(x), y),
        (Double(x), Int32(y)) => compare_doubles(x, f64::from(y)),
        (Int64(x), Double(y)) => compare_long_to_double(x, y),
        (Double(x), Int64(y)) => compare_long_to_double(y, x).reverse(),
        _ => Exact::of(a).cmp(&Exact::of(b)),
    }
}

fn compare_doubles(x: f64, y: f64) -> Ordering {
    match x.partial_cmp(&y) {
        Some(ord) => ord,
        None => match (x.is_nan(), y.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            _ => Ordering::Greater,
        },
    }
}

/// An int64 against a double without rounding the int64: below 2^53 both are exact doubles;
/// above it a double has no fraction, so truncating it to an int64 keeps the order.
fn compare_long_to_double(l: i64, d: f64) -> Ordering {
    const PRECISE: i64 = 1 << 53;
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if d.is_nan() {
        return Ordering::Greater;
    }
    if (-PRECISE..=PRECISE).contains(&l) {
        return compare_doubles(l as f64, d);
    }
    if d >= TWO_POW_63 {
        return Ordering::Less;
    }
    if d < -TWO_POW_63 {
        return Ordering::Greater;
    }
    l.cmp(&(d as i64))
}

/// Whether two numbers are the same type and value, as mongod's `SafeNum::isIdentical` asks
/// before it calls an `$inc` a no-op (so 0 and -0.0 doubles are identical, NaN never is).
pub(crate) fn identical(a: Number, b: Number) -> bool {
    match (a, b) {
        (Number::Int32(x), Number::Int32(y)) => x == y,
        (Number::Int64(x), Number::Int64(y)) => x == y,
        (Number::Double(x), Number::Double(y)) => x == y,
        // mongod's `Decimal128::isEqual`: numeric equality, which NaN never has.
        (Number::Decimal(_), Number::Decimal(_)) => !a.is_nan() && compare(a, b) == Ordering::Equal,
        _ => false,
    }
}

/// Why an addition has no result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddError {
    /// An int64 sum left the int64 range (mongod fails the update rather than widen).
    Overflow,
}

impl Number {
    /// The value as a decimal128, as mongod's `SafeNum` and `Value::coerceToDecimal` convert:
    /// integers exactly, doubles to 15 significant digits.
    pub(crate) fn to_decimal(self) -> Decimal128 {
        match self {
            Self::Int32(i) => decimal::from_i64(i64::from(i)),
            Self::Int64(i) => decimal::from_i64(i),
            Self::Double(d) => decimal::from_f64_15(d),
            Self::Decimal(d) => d,
        }
    }
}

/// `a + b` with mongod's promotion: int32 overflow widens to int64, int64 overflow is an
/// error, any double makes the sum a double, and any decimal makes it a decimal.
pub(crate) fn add(a: Number, b: Number) -> Result<Number, AddError> {
    use Number::{Decimal, Double, Int32, Int64};
    match (a, b) {
        (Decimal(_), _) | (_, Decimal(_)) => Ok(Decimal(decimal::add(a.to_decimal(), b.to_decimal()))),
        (Int32(x), Int32(y)) => Ok(x.checked_add(y).map_or_else(|| Int64(i64::from(x) + i64::from(y)), Int32)),
        (Int32(_) | Int64(_), Int32(_) | Int64(_)) => {
            as_i64(a).checked_add(as_i64(b)).map(Int64).ok_or(AddError::Overflow)
        }
        _ => Ok(Double(as_f64(a) + as_f64(b))),
    }
}

/// `a * b` with mongod's `SafeNum` promotion: int32 overflow widens to int64, int64 overflow
/// is an error, any double makes the product a double, and any decimal makes it a decimal.
pub(crate) fn mul(a: Number, b: Number) -> Result<Number, AddError> {
    use Number::{Decimal, Double, Int32, Int64};
    match (a, b) {
        (Decimal(_), _) | (_, Decimal(_)) => Ok(Decimal(decimal::mul(a.to_decimal(), b.to_decimal()))),
        (Int32(x), Int32(y)) => Ok(x.checked_mul(y).map_or_else(|| Int64(i64::from(x) * i64::from(y)), Int32)),
        (Int32(_) | Int64(_), Int32(_) | Int64(_)) => {
            as_i64(a).checked_mul(as_i64(b)).map(Int64).ok_or(AddError::Overflow)
        }
        _ => Ok(Double(as_f64(a) * as_f64(b))),
    }
}

/// A bitwise operator of `$bit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BitOp {
    And,
    Or,
    Xor,
}

/// `a op b` on integers as `SafeNum` does it: two int32s stay int32, an int64 on either side
/// makes the result int64. `None` when either side is not an integer.
pub(crate) fn bit(op: BitOp, a: Number, b: Number) -> Option<Number> {
    let apply = |x: i64, y: i64| match op {
        BitOp::And => x & y,
        BitOp::Or => x | y,
        BitOp::Xor => x ^ y,
    };
    match (a, b) {
        // Bitwise results of two sign-extended int32s always fit an int32.
        (Number::Int32(x), Number::Int32(y)) => {
            i32::try_from(apply(i64::from(x), i64::from(y))).ok().map(Number::Int32)
        }
        (Number::Int32(_) | Number::Int64(_), Number::Int32(_) | Number::Int64(_)) => {
            Some(Number::Int64(apply(as_i64(a), as_i64(b))))
        }
        _ => None,
    }
}

fn as_i64(n: Number) -> i64 {
    match n {
        Number::Int32(i) => i64::from(i),
        Number::Int64(i) => i,
        Number::Double(_) | Number::Decimal(_) => 0,
    }
}
fn as_f64(n: Number) -> f64 {
    match n {
        Number::Int32(i) => f64::from(i),
        Number::Int64(i) => i as f64,
        Number::Double(d) => d,
        Number::Decimal(_) => 0.0,
    }
}

/// A number as an exact value: `coefficient * 2^exp2 * 5^exp5` with a sign.
#[derive(Debug, Clone, Copy)]
enum Exact {
    NaN,
    NegInfinity,
    Finite { negative: bool, coefficient: u128, exp2: i32, exp5: i32 },
    PosInfinity,
}

impl Exact {
    fn of(n: Number) -> Self {
        match n {
            Number::Int32(i) => Self::integer(i64::from(i)),
            Number::Int64(i) => Self::integer(i),
            Number::Double(d) => Self::double(d),
            Number::Decimal(d) => match decode_decimal(d) {
                Decimal::NaN => Self::NaN,
                Decimal::Infinity { negative: true } => Self::NegInfinity,
                Decimal::Infinity { negative: false } => Self::PosInfinity,
                Decimal::Finite { negative, coefficient, exponent } => {
                    Self::Finite { negative, coefficient, exp2: exponent, exp5: exponent }
                }
            },
        }
    }

    fn integer(i: i64) -> Self {
        Self::Finite { negative: i < 0, coefficient: u128::from(i.unsigned_abs()), exp2: 0, exp5: 0 }
    }

    fn double(d: f64) -> Self {
        if d.is_nan() {
            return Self::NaN;
        }
        if d.is_infinite() {
            return if d < 0.0 { Self::NegInfinity } else { Self::PosInfinity };
        }
        let (coefficient, exp2) = binary_parts(d);
        Self::Finite { negative: d < 0.0, coefficient: u128::from(coefficient), exp2, exp5: 0 }
    }

    fn rank(&self) -> u8 {
        match self {
            Self::NaN => 0,
            Self::NegInfinity => 1,
            Self::Finite { .. } => 2,
            Self::PosInfinity => 3,
        }
    }

    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (
                Self::Finite { negative: na, coefficient: ca, exp2: pa, exp5: qa },
                Self::Finite { negative: nb, coefficient: cb, exp2: pb, exp5: qb },
            ) => {
                // Zero has no sign in BSON comparison: -0 == 0.
                let sign_a = if *ca == 0 {
                    0
                } else if *na {
                    -1
                } else {
                    1
                };
                let sign_b = if *cb == 0 {
                    0
                } else if *nb {
                    -1
                } else {
                    1
                };
                if sign_a != sign_b || sign_a == 0 {
                    return sign_a.cmp(&sign_b);
                }
                let magnitude = compare_magnitudes((*ca, *pa, *qa), (*cb, *pb, *qb));
                if sign_a < 0 { magnitude.reverse() } else { magnitude }
            }
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

const LOG2_5: f64 = 2.321_928_094_887_362;

/// Compares `c * 2^p * 5^q` for two non-zero coefficients.
fn compare_magnitudes(a: (u128, i32, i32), b: (u128, i32, i32)) -> Ordering {
    let estimate = |(c, p, q): (u128, i32, i32)| {
        let c = c as f64;
        c.log2() + f64::from(p) + f64::from(q) * LOG2_5
    };
    let (ea, eb) = (estimate(a), estimate(b));
    // The estimate is off by far less than 1; a gap of 2 decides safely.
    if ea + 2.0 < eb {
        return Ordering::Less;
    }
    if eb + 2.0 < ea {
        return Ordering::Greater;
    }
    let (mut x, mut y) = (BigUint::from_u128(a.0), BigUint::from_u128(b.0));
    let q = a.2.min(b.2);
    x.mul_pow5(a.2.abs_diff(q));
    y.mul_pow5(b.2.abs_diff(q));
    let p = a.1.min(b.1);
    x.shl(u64::from(a.1.abs_diff(p)));
    y.shl(u64::from(b.1.abs_diff(p)));
    x.cmp(&y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Number {
        Number::Decimal(s.parse().unwrap())
    }

    #[test]
    fn number_add_promotes_like_safenum() {
        assert_eq!(add(Number::Int32(i32::MAX), Number::Int32(1)), Ok(Number::Int64(1 << 31)));
        assert_eq!(add(Number::Int64(i64::MAX), Number::Int32(1)), Err(AddError::Overflow));
        assert_eq!(add(Number::Int32(1), Number::Double(0.5)), Ok(Number::Double(1.5)));
        assert_eq!(add(Number::Int32(1), dec("1")), Ok(dec("2")));
        assert_eq!(add(Number::Double(0.5), dec("1.5")), Ok(dec("2.000000000000000")));
        assert_eq!(add(Number::Int64(i64::MAX), dec("1")), Ok(dec("9223372036854775808")));
    }

    #[test]
    fn number_mul_promotes_like_safenum() {
        assert_eq!(mul(Number::Int32(i32::MAX), Number::Int32(2)), Ok(Number::Int64(i64::from(i32::MAX) * 2)));
        assert_eq!(mul(Number::Int64(i64::MAX), Number::Int32(2)), Err(AddError::Overflow));
        assert_eq!(mul(Number::Int32(0), Number::Double(-2.0)), Ok(Number::Double(-0.0)));
        assert_eq!(mul(Number::Int32(3), Number::Int64(2)), Ok(Number::Int64(6)));
    }

    #[test]
    fn number_bit_keeps_int32_unless_int64() {
        assert_eq!(bit(BitOp::And, Number::Int32(6), Number::Int32(3)), Some(Number::Int32(2)));
        assert_eq!(bit(BitOp::Or, Number::Int32(4), Number::Int64(1)), Some(Number::Int64(5)));
        assert_eq!(bit(BitOp::Xor, Number::Int64(5), Number::Int32(1)), Some(Number::Int64(4)));
        assert_eq!(bit(BitOp::And, Number::Double(1.0), Number::Int32(1)), None);
    }

    #[test]
    fn number_compare_decimal_to_double_exactly() {
        // 0.1 as a double is slightly above decimal 0.1.
        assert_eq!(compare(dec("0.1"), Number::Double(0.1)), Ordering::Less);
        assert_eq!(compare(dec("0.5"), Number::Double(0.5)), Ordering::Equal);
        assert_eq!(compare(dec("1E+400"), Number::Double(f64::MAX)), Ordering::Greater);
        assert_eq!(compare(dec("-1E+400"), Number::Double(f64::MIN)), Ordering::Less);
        assert_eq!(compare(dec("1E-400"), Number::Double(5e-324)), Ordering::Less);
    }
}
