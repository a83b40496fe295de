//! A decimal128's fields in the IEEE 754-2008 binary integer decimal (BID) layout that BSON
//! stores little-endian: decoded into a sign, a coefficient and an exponent, and encoded back.

use bson::Decimal128;

/// A decoded decimal128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decimal {
    /// Every NaN, quiet or signaling, of either sign.
    NaN,
    Infinity {
        negative: bool,
    },
    /// `±coefficient × 10^exponent`; a non-canonical encoding reads as a zero coefficient.
    Finite {
        negative: bool,
        coefficient: u128,
        exponent: i32,
    },
}

/// The largest coefficient a canonical decimal128 holds (34 nines, 10^34 - 1); larger ones
/// are non-canonical and read as zero.
pub(crate) const MAX_COEFFICIENT: u128 = 9_999_999_999_999_999_999_999_999_999_999_999;
/// The bias of the stored exponent: stored 0 is 10^-6176.
pub(crate) const EXPONENT_BIAS: i32 = 6176;
/// The smallest exponent of a coefficient (`emin - (precision - 1)`).
pub(crate) const MIN_EXPONENT: i32 = -6176;
/// The largest exponent of a coefficient (`emax - (precision - 1)`).
pub(crate) const MAX_EXPONENT: i32 = 6111;

/// Decodes a decimal128. Bits are numbered from the most significant (127):
///
/// - bit 127: sign;
/// - bits 126..122 = `11111`: NaN (bit 121 tells a signaling NaN, which compares the same);
/// - bits 126..122 = `11110`: infinity (the remaining bits are ignored);
/// - bits 126..125 = `11` otherwise: exponent in bits 124..111 and significand
///   `0b100 << 111 | bits 110..0`, always above 10^34 - 1, so non-canonical: the value is 0;
/// - else: biased exponent in bits 126..113 (bias 6176, so -6176..=6111) and significand in
///   bits 112..0; a significand above 10^34 - 1 is non-canonical and reads as 0.
pub(crate) fn decode_decimal(d: Decimal128) -> Decimal {
    let bits = u128::from_le_bytes(d.bytes());
    let negative = bits >> 127 == 1;
    let combination = (bits >> 122) & 0x1f;
    if combination == 0x1f {
        return Decimal::NaN;
    }
    if combination == 0x1e {
        return Decimal::Infinity { negative };
    }
    let (biased, coefficient) = if (bits >> 125) & 0b11 == 0b11 {
        // The second form's implied coefficient exceeds 34 digits: the value is zero.
        ((bits >> 111) & 0x3fff, 0)
    } else {
        ((bits >> 113) & 0x3fff, bits & ((1u128 << 113) - 1))
    };
    let coefficient = if coefficient > MAX_COEFFICIENT { 0 } else { coefficient };
    let biased = i32::try_from(biased).unwrap_or(0);
    Decimal::Finite { negative, coefficient, exponent: biased - EXPONENT_BIAS }
}

/// Encodes a finite decimal; the coefficient must be at most [`MAX_COEFFICIENT`] and the
/// exponent within [`MIN_EXPONENT`]..=[`MAX_EXPONENT`].
pub(crate) fn encode(negative: bool, coefficient: u128, exponent: i64) -> Decimal128 {
    let biased = u128::try_from(exponent + i64::from(EXPONENT_BIAS)).unwrap_or(0) & 0x3fff;
    Decimal128::from_bytes(((u128::from(negative) << 127) | (biased << 113) | coefficient).to_le_bytes())
}

/// The quiet NaN.
pub(crate) fn nan() -> Decimal128 {
    Decimal128::from_bytes((0x1fu128 << 122).to_le_bytes())
}

/// An infinity.
pub(crate) fn infinity(negative: bool) -> Decimal128 {
    Decimal128::from_bytes(((u128::from(negative) << 127) | (0x1eu128 << 122)).to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal128 {
        s.parse().unwrap()
    }

    #[test]
    fn decimal128_decode_finite_and_special() {
        assert_eq!(decode_decimal(d("1.5")), Decimal::Finite { negative: false, coefficient: 15, exponent: -1 });
        assert_eq!(decode_decimal(d("NaN")), Decimal::NaN);
        assert_eq!(decode_decimal(d("-Infinity")), Decimal::Infinity { negative: true });
        // The second form (bits 126..125 = 11) is always non-canonical: zero.
        let second_form = Decimal128::from_bytes((0b011u128 << 125 | 5).to_le_bytes());
        assert!(matches!(decode_decimal(second_form), Decimal::Finite { coefficient: 0, .. }));
    }

    #[test]
    fn decimal128_encode_round_trips() {
        assert_eq!(encode(true, 15, -1).to_string(), "-1.5");
        assert_eq!(
            decode_decimal(encode(false, MAX_COEFFICIENT, i64::from(MAX_EXPONENT))),
            Decimal::Finite { negative: false, coefficient: MAX_COEFFICIENT, exponent: MAX_EXPONENT }
        );
        assert_eq!(decode_decimal(nan()), Decimal::NaN);
        assert_eq!(infinity(true).to_string(), "-Infinity");
    }
}
