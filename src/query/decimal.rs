//! IEEE 754-2008 decimal128 arithmetic on BSON's BID encoding: addition, subtraction,
//! multiplication, division and remainder, correctly rounded to 34 digits with
//! round-half-even (as mongod's Intel library does by default), and the conversions mongod
//! makes between decimals, integers and doubles.
//!
//! Values are decoded to a sign, an integer coefficient and a decimal exponent; an operation
//! computes its exact result (or, for a quotient, enough digits plus a "sticky" flag for the
//! remainder) on decimal digit strings, then rounds once. Results take IEEE's preferred
//! exponent: the smaller exponent for a sum, the sum of exponents for a product, and for an
//! exact quotient the difference of exponents when the coefficient allows.

use bson::Decimal128;

use super::exact::decimal128::{self, encode, infinity, nan};
use super::exact::{Decimal, binary_parts, decode_decimal};

/// Significant digits a decimal128 holds.
const PRECISION: usize = 34;
/// The exponent range of a coefficient, widened for the digit arithmetic here.
const MIN_EXPONENT: i64 = decimal128::MIN_EXPONENT as i64;
const MAX_EXPONENT: i64 = decimal128::MAX_EXPONENT as i64;

/// A finite decimal during a computation: digits most significant first.
#[derive(Debug, Clone)]
struct Finite {
    negative: bool,
    digits: Vec<u8>,
    exponent: i64,
}

fn digits_of(mut n: u128) -> Vec<u8> {
    let mut out = Vec::new();
    while n > 0 {
        out.push((n % 10) as u8);
        n /= 10;
    }
    out.reverse();
    out
}

fn strip_leading_zeros(mut digits: Vec<u8>) -> Vec<u8> {
    let zeros = digits.iter().take_while(|d| **d == 0).count();
    digits.drain(..zeros);
    digits
}

fn is_zero_digits(digits: &[u8]) -> bool {
    digits.iter().all(|d| *d == 0)
}

/// The coefficient as a number; callers pass at most 34 digits.
fn to_u128(digits: &[u8]) -> u128 {
    digits.iter().fold(0u128, |acc, d| acc.saturating_mul(10).saturating_add(u128::from(*d)))
}

/// `a + b` on digit strings.
fn add_digits(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len().max(b.len()) + 1);
    let (mut i, mut j, mut carry) = (a.len(), b.len(), 0u8);
    while i > 0 || j > 0 || carry > 0 {
        let x = if i > 0 { a.get(i - 1).copied().unwrap_or(0) } else { 0 };
        let y = if j > 0 { b.get(j - 1).copied().unwrap_or(0) } else { 0 };
        let s = x + y + carry;
        out.push(s % 10);
        carry = s / 10;
        i = i.saturating_sub(1);
        j = j.saturating_sub(1);
    }
    out.reverse();
    strip_leading_zeros(out)
}

/// Compares two digit strings without leading zeros.
fn cmp_digits(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// `a - b` on digit strings, `a >= b`.
fn sub_digits(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len());
    let (mut i, mut j, mut borrow) = (a.len(), b.len(), 0i8);
    while i > 0 {
        let x = a.get(i - 1).copied().map_or(0, |d| d as i8);
        let y = if j > 0 { b.get(j - 1).copied().map_or(0, |d| d as i8) } else { 0 };
        let mut d = x - y - borrow;
        borrow = 0;
        if d < 0 {
            d += 10;
            borrow = 1;
        }
        out.push(d as u8);
        i -= 1;
        j = j.saturating_sub(1);
    }
    out.reverse();
    strip_leading_zeros(out)
}

fn mul_digits(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut acc = vec![0u32; a.len() + b.len()];
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            if let Some(slot) = acc.get_mut(i + j + 1) {
                *slot += u32::from(*x) * u32::from(*y);
            }
        }
    }
    for k in (1..acc.len()).rev() {
        let carry = acc.get(k).copied().unwrap_or(0) / 10;
        if let Some(slot) = acc.get_mut(k) {
            *slot %= 10;
        }
        if let Some(slot) = acc.get_mut(k - 1) {
            *slot += carry;
        }
    }
    strip_leading_zeros(acc.into_iter().map(|d| d as u8).collect())
}

/// `digits / divisor` and whether a remainder is left; `divisor > 0`, below 10^35.
fn div_digits(digits: &[u8], divisor: u128) -> (Vec<u8>, u128) {
    let mut quotient = Vec::with_capacity(digits.len());
    let mut rem = 0u128;
    for d in digits {
        // rem < divisor < 10^35, so rem * 10 + 9 fits a u128.
        rem = rem * 10 + u128::from(*d);
        quotient.push((rem / divisor) as u8);
        rem %= divisor;
    }
    (strip_leading_zeros(quotient), rem)
}

fn with_zeros(mut digits: Vec<u8>, zeros: usize) -> Vec<u8> {
    if !digits.is_empty() {
        digits.resize(digits.len() + zeros, 0);
    }
    digits
}

/// Rounds an exact result (plus `sticky`: a non-zero remainder below the last digit) to a
/// decimal128: 34 digits, round-half-even, exponent in range (gradual underflow, clamping
/// and overflow to infinity).
fn round(value: Finite, sticky: bool) -> Decimal128 {
    let Finite { negative, digits, mut exponent } = value;
    let mut digits = strip_leading_zeros(digits);
    let len = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    let drop = (len - PRECISION as i64).max(MIN_EXPONENT - exponent).max(0);
    if drop > 0 {
        let (kept, round_up) = if drop > len {
            // Everything goes; what is dropped is below half a unit.
            (Vec::new(), false)
        } else {
            let split = usize::try_from(len - drop).unwrap_or(0);
            let dropped = digits.split_off(split);
            let first = dropped.first().copied().unwrap_or(0);
            let rest = sticky || !is_zero_digits(dropped.get(1..).unwrap_or_default());
            let odd = digits.last().is_some_and(|d| d % 2 == 1);
            (digits, first > 5 || (first == 5 && (rest || odd)))
        };
        digits = if round_up { add_digits(&kept, &[1]) } else { kept };
        exponent += drop;
        if digits.len() > PRECISION {
            // Rounding up 99...9 gave 10^34: one more zero goes.
            digits.pop();
            exponent += 1;
        }
    }
    let digits = strip_leading_zeros(digits);
    if exponent > MAX_EXPONENT {
        if digits.is_empty() {
            exponent = MAX_EXPONENT;
        } else {
            // Clamping: pad the coefficient with zeros while it has room.
            let room = i64::try_from(PRECISION - digits.len()).unwrap_or(0);
            let pad = (exponent - MAX_EXPONENT).min(room);
            let padded = with_zeros(digits, usize::try_from(pad).unwrap_or(0));
            exponent -= pad;
            if exponent > MAX_EXPONENT {
                return infinity(negative);
            }
            return encode(negative, to_u128(&padded), exponent);
        }
    }
    encode(negative, to_u128(&digits), exponent)
}

fn finite(negative: bool, coefficient: u128, exponent: i32) -> Finite {
    Finite { negative, digits: digits_of(coefficient), exponent: i64::from(exponent) }
}

/// `a + b`.
pub(crate) fn add(a: Decimal128, b: Decimal128) -> Decimal128 {
    match (decode_decimal(a), decode_decimal(b)) {
        (Decimal::NaN, _) | (_, Decimal::NaN) => nan(),
        (Decimal::Infinity { negative: x }, Decimal::Infinity { negative: y }) if x != y => nan(),
        (Decimal::Infinity { negative }, _) | (_, Decimal::Infinity { negative }) => infinity(negative),
        (
            Decimal::Finite { negative: na, coefficient: ca, exponent: ea },
            Decimal::Finite { negative: nb, coefficient: cb, exponent: eb },
        ) => add_finite(finite(na, ca, ea), finite(nb, cb, eb)),
    }
}

/// `a - b`.
pub(crate) fn sub(a: Decimal128, b: Decimal128) -> Decimal128 {
    add(a, negate(b))
}

/// `-a` (a NaN stays as it is).
pub(crate) fn negate(a: Decimal128) -> Decimal128 {
    if matches!(decode_decimal(a), Decimal::NaN) {
        return a;
    }
    Decimal128::from_bytes((u128::from_le_bytes(a.bytes()) ^ (1u128 << 127)).to_le_bytes())
}

/// `|a|` (a NaN stays as it is).
pub(crate) fn abs(a: Decimal128) -> Decimal128 {
    if matches!(decode_decimal(a), Decimal::NaN) {
        return a;
    }
    Decimal128::from_bytes((u128::from_le_bytes(a.bytes()) & !(1u128 << 127)).to_le_bytes())
}

fn add_finite(a: Finite, b: Finite) -> Decimal128 {
    // `a` has the larger exponent.
    let (a, b) = if a.exponent >= b.exponent { (a, b) } else { (b, a) };
    let a_zero = is_zero_digits(&a.digits);
    let b_zero = is_zero_digits(&b.digits);
    if b_zero && !a_zero {
        // The sum is `a` written with `b`'s exponent, padded as far as the precision allows.
        let room = PRECISION.saturating_sub(a.digits.len());
        let pad = usize::try_from(a.exponent - b.exponent).unwrap_or(usize::MAX).min(room);
        let exponent = a.exponent - i64::try_from(pad).unwrap_or(0);
        return round(Finite { negative: a.negative, digits: with_zeros(a.digits, pad), exponent }, false);
    }
    // Shift `a` far enough that rounding happens at least three digits above `b`'s units;
    // a `b` entirely below that acts as a one-unit stand-in (the sticky trick).
    let a_len = i64::try_from(a.digits.len()).unwrap_or(0);
    let b_len = i64::try_from(b.digits.len()).unwrap_or(0);
    let shift_needed = a.exponent - b.exponent;
    let max_shift = (PRECISION as i64 + 3 - a_len).max(0);
    let (a_digits, b_digits, exponent) = if a_zero || shift_needed <= max_shift + b_len {
        let shift = if a_zero { 0 } else { usize::try_from(shift_needed).unwrap_or(0) };
        (with_zeros(a.digits, shift), b.digits, b.exponent)
    } else {
        let shift = usize::try_from(max_shift).unwrap_or(0);
        (with_zeros(a.digits, shift + 1), vec![1], a.exponent - max_shift - 1)
    };
    let a_digits = if a_zero { Vec::new() } else { a_digits };
    let (negative, digits) = if a.negative == b.negative {
        (a.negative, add_digits(&a_digits, &b_digits))
    } else {
        match cmp_digits(&strip_leading_zeros(a_digits.clone()), &strip_leading_zeros(b_digits.clone())) {
            std::cmp::Ordering::Greater => (a.negative, sub_digits(&a_digits, &b_digits)),
            std::cmp::Ordering::Less => (b.negative, sub_digits(&b_digits, &a_digits)),
            // An exact zero of opposite signs is +0 when rounding to nearest.
            std::cmp::Ordering::Equal => (false, Vec::new()),
        }
    };
    let negative = if digits.is_empty() && a.negative == b.negative { a.negative } else { negative };
    round(Finite { negative, digits, exponent }, false)
}

/// `a * b`.
pub(crate) fn mul(a: Decimal128, b: Decimal128) -> Decimal128 {
    match (decode_decimal(a), decode_decimal(b)) {
        (Decimal::NaN, _) | (_, Decimal::NaN) => nan(),
        (Decimal::Infinity { negative: x }, Decimal::Infinity { negative: y }) => infinity(x != y),
        (Decimal::Infinity { negative: x }, Decimal::Finite { negative: y, coefficient, .. })
        | (Decimal::Finite { negative: y, coefficient, .. }, Decimal::Infinity { negative: x }) => {
            if coefficient == 0 {
                nan()
            } else {
                infinity(x != y)
            }
        }
        (
            Decimal::Finite { negative: na, coefficient: ca, exponent: ea },
            Decimal::Finite { negative: nb, coefficient: cb, exponent: eb },
        ) => {
            let digits = mul_digits(&digits_of(ca), &digits_of(cb));
            round(Finite { negative: na != nb, digits, exponent: i64::from(ea) + i64::from(eb) }, false)
        }
    }
}

/// `a / b`; a zero divisor gives an infinity (or NaN for `0 / 0`), as IEEE has it.
pub(crate) fn div(a: Decimal128, b: Decimal128) -> Decimal128 {
    match (decode_decimal(a), decode_decimal(b)) {
        (Decimal::NaN, _) | (_, Decimal::NaN) | (Decimal::Infinity { .. }, Decimal::Infinity { .. }) => nan(),
        (Decimal::Infinity { negative: x }, Decimal::Finite { negative: y, .. }) => infinity(x != y),
        (Decimal::Finite { negative: x, .. }, Decimal::Infinity { negative: y }) => encode(x != y, 0, MIN_EXPONENT),
        (
            Decimal::Finite { negative: na, coefficient: ca, exponent: ea },
            Decimal::Finite { negative: nb, coefficient: cb, exponent: eb },
        ) => {
            if cb == 0 {
                return if ca == 0 { nan() } else { infinity(na != nb) };
            }
            let ideal = i64::from(ea) - i64::from(eb);
            if ca == 0 {
                return round(Finite { negative: na != nb, digits: Vec::new(), exponent: ideal }, false);
            }
            let (da, db) = (digits_of(ca), digits_of(cb));
            // Enough digits that the quotient has at least 35: one to round on.
            let scale = (PRECISION + 1 + db.len()).saturating_sub(da.len());
            let (mut quotient, remainder) = div_digits(&with_zeros(da, scale), cb);
            let mut exponent = ideal - i64::try_from(scale).unwrap_or(0);
            if remainder == 0 {
                // Exact: give back trailing zeros down to the ideal exponent.
                while exponent < ideal && quotient.last() == Some(&0) {
                    quotient.pop();
                    exponent += 1;
                }
            }
            round(Finite { negative: na != nb, digits: quotient, exponent }, remainder != 0)
        }
    }
}

/// `a` modulo `b` with the sign of `a` (truncated division, as mongod's `Decimal128::modulo`):
/// always exact.
pub(crate) fn rem(a: Decimal128, b: Decimal128) -> Decimal128 {
    match (decode_decimal(a), decode_decimal(b)) {
        (Decimal::NaN, _) | (_, Decimal::NaN) | (Decimal::Infinity { .. }, _) => nan(),
        (Decimal::Finite { .. }, Decimal::Infinity { .. }) => a,
        (
            Decimal::Finite { negative: na, coefficient: ca, exponent: ea },
            Decimal::Finite { coefficient: cb, exponent: eb, .. },
        ) => {
            if cb == 0 {
                return nan();
            }
            let exponent = i64::from(ea.min(eb));
            let (da, db) = (digits_of(ca), digits_of(cb));
            let a_len = da.len() + usize::try_from(i64::from(ea) - exponent).unwrap_or(usize::MAX);
            let b_len = db.len() + usize::try_from(i64::from(eb) - exponent).unwrap_or(usize::MAX);
            if b_len > a_len {
                // |b| > |a|: the remainder is `a`, at the smaller exponent.
                let shifted = with_zeros(da, usize::try_from(i64::from(ea) - exponent).unwrap_or(0));
                return round(Finite { negative: na, digits: shifted, exponent }, false);
            }
            // Both at the smaller exponent; a divisor too long for a u128 takes the slow path.
            let divisor_digits = with_zeros(db, usize::try_from(i64::from(eb) - exponent).unwrap_or(0));
            if divisor_digits.len() > 35 {
                // Long divisor: remainder by repeated subtraction on digit strings.
                let mut r = with_zeros(da, usize::try_from(i64::from(ea) - exponent).unwrap_or(0));
                r = rem_long(r, &divisor_digits);
                return round(Finite { negative: na, digits: r, exponent }, false);
            }
            let divisor = to_u128(&divisor_digits);
            let dividend = with_zeros(da, usize::try_from(i64::from(ea) - exponent).unwrap_or(0));
            let (_, r) = div_digits(&dividend, divisor);
            round(Finite { negative: na, digits: digits_of(r), exponent }, false)
        }
    }
}

/// `a mod b` on digit strings by shifted subtraction; `b` non-zero.
fn rem_long(a: Vec<u8>, b: &[u8]) -> Vec<u8> {
    let mut r: Vec<u8> = Vec::new();
    for d in a {
        r.push(d);
        r = strip_leading_zeros(r);
        while cmp_digits(&r, b) != std::cmp::Ordering::Less {
            r = sub_digits(&r, b);
        }
    }
    r
}

/// An int64 exactly.
pub(crate) fn from_i64(i: i64) -> Decimal128 {
    encode(i < 0, u128::from(i.unsigned_abs()), 0)
}

/// A double as mongod's `Decimal128(double, kRoundTo34Digits)` (what `$add` converts a
/// running double total with): its exact binary value, rounded to 34 significant digits.
pub(crate) fn from_f64(d: f64) -> Decimal128 {
    if d.is_nan() {
        return nan();
    }
    if d.is_infinite() {
        return infinity(d < 0.0);
    }
    let negative = d.is_sign_negative();
    let (mut mantissa, exp2) = binary_parts(d);
    let mut exp2 = i64::from(exp2);
    if mantissa == 0 {
        return encode(negative, 0, 0);
    }
    let zeros = mantissa.trailing_zeros();
    mantissa >>= zeros;
    exp2 += i64::from(zeros);
    let mut digits = digits_of(u128::from(mantissa));
    let exponent = if exp2 >= 0 {
        for _ in 0..exp2 {
            digits = mul_digits(&digits, &[2]);
        }
        0
    } else {
        // m * 2^-k = m * 5^k * 10^-k.
        for _ in 0..-exp2 {
            digits = mul_digits(&digits, &[5]);
        }
        exp2
    };
    round(Finite { negative, digits, exponent }, false)
}

/// A double as mongod's `Decimal128(double)` with its default precision (`kRoundTo15Digits`,
/// which `SafeNum` and `Value::coerceToDecimal` use): the 34-digit conversion quantized to
/// exactly 15 significant digits, trailing zeros kept (0.1 becomes 0.100000000000000).
pub(crate) fn from_f64_15(d: f64) -> Decimal128 {
    let converted = from_f64(d);
    if d == 0.0 || !d.is_finite() {
        return converted;
    }
    let Decimal::Finite { negative, coefficient, exponent } = decode_decimal(converted) else { return converted };
    let digits = digits_of(coefficient);
    let len = i64::try_from(digits.len()).unwrap_or(0);
    // The exponent that leaves 15 digits: 14 below the leading one.
    let quantum = i64::from(exponent) + len - 15;
    let exponent = i64::from(exponent);
    if quantum <= exponent {
        let padded = with_zeros(digits, usize::try_from(exponent - quantum).unwrap_or(0));
        return encode(negative, to_u128(&padded), quantum);
    }
    let mut kept = digits;
    let dropped = kept.split_off(kept.len().saturating_sub(usize::try_from(quantum - exponent).unwrap_or(0)));
    let first = dropped.first().copied().unwrap_or(0);
    let rest = !is_zero_digits(dropped.get(1..).unwrap_or_default());
    let odd = kept.last().is_some_and(|d| d % 2 == 1);
    let mut kept = if first > 5 || (first == 5 && (rest || odd)) { add_digits(&kept, &[1]) } else { kept };
    let mut quantum = quantum;
    if kept.len() > 15 {
        // Rounded up to a power of ten: one digit less, as mongod's retry with a larger quantum.
        kept.pop();
        quantum += 1;
    }
    round(Finite { negative, digits: kept, exponent: quantum }, false)
}

/// The nearest double.
pub(crate) fn to_f64(d: Decimal128) -> f64 {
    match decode_decimal(d) {
        Decimal::NaN => f64::NAN,
        Decimal::Infinity { negative } => {
            if negative {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }
        }
        Decimal::Finite { negative, coefficient, exponent } => {
            // The standard library's parser rounds correctly.
            let magnitude: f64 = format!("{coefficient}e{exponent}").parse().unwrap_or(f64::NAN);
            if negative { -magnitude } else { magnitude }
        }
    }
}

/// The value rounded to an integer (half to even), if that fits an int64.
pub(crate) fn to_i64(d: Decimal128) -> Option<i64> {
    let Decimal::Finite { negative, coefficient, exponent } = decode_decimal(d) else { return None };
    let digits = digits_of(coefficient);
    let integer = if exponent >= 0 {
        let zeros = usize::try_from(exponent).ok()?;
        if digits.is_empty() {
            return Some(0);
        }
        // An int64 has at most 19 digits.
        if digits.len() + zeros > 19 {
            return None;
        }
        with_zeros(digits, zeros)
    } else {
        let drop = usize::try_from(-i64::from(exponent)).unwrap_or(usize::MAX);
        if drop > digits.len() {
            // Below 0.1: rounds to zero.
            Vec::new()
        } else {
            let mut kept = digits;
            let dropped = kept.split_off(kept.len() - drop);
            let first = dropped.first().copied().unwrap_or(0);
            let rest = !is_zero_digits(dropped.get(1..).unwrap_or_default());
            let odd = kept.last().is_some_and(|d| d % 2 == 1);
            if first > 5 || (first == 5 && (rest || odd)) { add_digits(&kept, &[1]) } else { kept }
        }
    };
    let integer = strip_leading_zeros(integer);
    if integer.len() > 19 {
        return None;
    }
    let magnitude = u64::try_from(to_u128(&integer)).ok()?;
    if negative { 0i64.checked_sub_unsigned(magnitude) } else { i64::try_from(magnitude).ok() }
}

/// How [`quantize`] rounds away the digits it drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rounding {
    /// To the nearest, ties to the even digit (`$round`).
    HalfEven,
    /// Toward zero (`$trunc`).
    TowardZero,
    /// Toward negative infinity (`$floor`).
    Floor,
    /// Toward positive infinity (`$ceil`).
    Ceiling,
}

/// `d` rounded to `places` digits after the point (before it when negative), as IEEE's
/// quantize: the result's exponent is `-places` unless `d` already has fewer digits there.
/// NaN and infinities are returned as they are.
pub(crate) fn quantize(d: Decimal128, places: i64, mode: Rounding) -> Decimal128 {
    let Decimal::Finite { negative, coefficient, exponent } = decode_decimal(d) else { return d };
    let target = -places;
    let exponent = i64::from(exponent);
    if exponent >= target {
        return d;
    }
    let drop = u32::try_from(target - exponent).unwrap_or(u32::MAX);
    let (kept, dropped_nonzero, half) = if drop > 38 {
        (0u128, coefficient != 0, std::cmp::Ordering::Less)
    } else {
        let scale = 10u128.pow(drop);
        let rest = coefficient % scale;
        (coefficient / scale, rest != 0, (rest * 2).cmp(&scale))
    };
    let up = match mode {
        Rounding::TowardZero => false,
        Rounding::Floor => negative && dropped_nonzero,
        Rounding::Ceiling => !negative && dropped_nonzero,
        Rounding::HalfEven => half.is_gt() || (half.is_eq() && kept % 2 == 1),
    };
    let kept = if up { kept + 1 } else { kept };
    let target = target.clamp(MIN_EXPONENT, MAX_EXPONENT);
    encode(negative, kept, target)
}

/// Whether the value is a zero of either sign.
pub(crate) fn is_zero(d: Decimal128) -> bool {
    matches!(decode_decimal(d), Decimal::Finite { coefficient: 0, .. })
}

#[cfg(test)]
mod tests;
