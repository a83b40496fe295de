//! A double's exact binary value, as the comparison, decimal conversion and key encoding of
//! numbers read it.

/// The magnitude of a finite double exactly, as `mantissa × 2^exponent`: the 52 fraction bits
/// with the implicit leading bit for a normal double, the bare fraction (exponent -1074) for a
/// subnormal one. The sign is the caller's (`d < 0.0`, or `is_sign_negative` for -0.0).
pub(crate) fn binary_parts(d: f64) -> (u64, i32) {
    let bits = d.to_bits();
    let biased = i32::try_from((bits >> 52) & 0x7ff).unwrap_or(0);
    let fraction = bits & ((1 << 52) - 1);
    if biased == 0 { (fraction, -1074) } else { (fraction | (1 << 52), biased - 1075) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_binary_parts_are_exact() {
        assert_eq!(binary_parts(1.0), (1 << 52, -52));
        assert_eq!(binary_parts(-0.75), (3 << 51, -53));
        assert_eq!(binary_parts(5e-324), (1, -1074));
        assert_eq!(binary_parts(0.0), (0, -1074));
        let (mantissa, exponent) = binary_parts(f64::MAX);
        assert_eq!((mantissa, exponent), ((1 << 53) - 1, 971));
    }
}
