//! An unsigned big integer: little-endian 64-bit limbs with no high zero limbs, and just the
//! arithmetic the exact number comparisons (`query::number`) and the exact numeric key
//! encoding (`storage::keys`) need. Both place decimals and doubles on one scale without
//! rounding.

use std::cmp::Ordering;

/// The largest power of five in a u64.
const FIVE_POW_27: u64 = 7_450_580_596_923_828_125;
/// The largest power of ten in a u64.
const TEN_POW_19: u64 = 10_000_000_000_000_000_000;

/// An unsigned big integer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BigUint(Vec<u64>);

impl BigUint {
    /// `v` as a big integer.
    pub(crate) fn from_u128(v: u128) -> Self {
        let mut n = Self(vec![v as u64, (v >> 64) as u64]);
        n.trim();
        n
    }

    /// The limbs, least significant first.
    pub(crate) fn limbs(&self) -> &[u64] {
        &self.0
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    /// The number of significant bits (0 for zero).
    pub(crate) fn bit_len(&self) -> u64 {
        match self.0.last() {
            None => 0,
            Some(top) => (self.0.len() as u64 - 1) * 64 + u64::from(u64::BITS - top.leading_zeros()),
        }
    }

    /// Multiplies in place by `factor`.
    pub(crate) fn mul_small(&mut self, factor: u64) {
        let mut carry = 0u128;
        for limb in &mut self.0 {
            // Cannot overflow: (2^64-1)^2 + (2^64-1) < 2^128.
            let product = u128::from(*limb) * u128::from(factor) + carry;
            *limb = product as u64;
            carry = product >> 64;
        }
        if carry != 0 {
            self.0.push(carry as u64);
        }
        self.trim();
    }

    /// Multiplies in place by 5^k.
    pub(crate) fn mul_pow5(&mut self, k: u32) {
        self.mul_pow(k, 5, 27, FIVE_POW_27);
    }

    /// Multiplies in place by 10^k.
    pub(crate) fn mul_pow10(&mut self, k: u32) {
        self.mul_pow(k, 10, 19, TEN_POW_19);
    }

    /// Multiplies by `base^k` in steps of `base^step` (= `big`, the largest fitting a u64).
    fn mul_pow(&mut self, mut k: u32, base: u64, step: u32, big: u64) {
        while k >= step {
            self.mul_small(big);
            k -= step;
        }
        if k > 0 {
            self.mul_small(base.pow(k));
        }
    }

    /// Shifts left in place by `bits`.
    pub(crate) fn shl(&mut self, bits: u64) {
        let shift = (bits % 64) as u32;
        if shift > 0 {
            let mut carry = 0u64;
            for limb in &mut self.0 {
                let next_carry = *limb >> (64 - shift);
                *limb = (*limb << shift) | carry;
                carry = next_carry;
            }
            if carry != 0 {
                self.0.push(carry);
            }
        }
        let whole_limbs = usize::try_from(bits / 64).unwrap_or(usize::MAX);
        if !self.0.is_empty() && whole_limbs > 0 {
            self.0.splice(0..0, std::iter::repeat_n(0, whole_limbs));
        }
    }

    /// Divides in place by a non-zero `divisor`, rounding down; returns the remainder.
    pub(crate) fn div_small(&mut self, divisor: u64) -> u64 {
        let divisor = u128::from(divisor.max(1));
        let mut remainder = 0u128;
        for limb in self.0.iter_mut().rev() {
            let current = (remainder << 64) | u128::from(*limb);
            *limb = (current / divisor) as u64; // < 2^64 because remainder < divisor
            remainder = current % divisor;
        }
        self.trim();
        remainder as u64
    }

    /// Divides in place by 5^k, rounding down; returns whether anything was dropped. Dividing
    /// in steps is exact for the floor: floor(floor(x / a) / b) = floor(x / (a·b)).
    pub(crate) fn div_pow5(&mut self, mut k: u32) -> bool {
        let mut dropped = false;
        while k >= 27 {
            dropped |= self.div_small(FIVE_POW_27) != 0;
            k -= 27;
        }
        if k > 0 {
            dropped |= self.div_small(5u64.pow(k)) != 0;
        }
        dropped
    }
}

impl PartialOrd for BigUint {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BigUint {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.len().cmp(&other.0.len()).then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn biguint_arithmetic_is_exact() {
        let mut n = BigUint::from_u128(u128::MAX);
        n.mul_pow10(40);
        n.shl(130);
        assert!(!n.div_pow5(40));
        // u128::MAX × 10^40 × 2^130 / 5^40 = u128::MAX × 2^170
        assert_eq!(n.bit_len(), 128 + 170);
        let mut three = BigUint::from_u128(3);
        assert_eq!(three.div_small(2), 1);
        assert_eq!(three, BigUint::from_u128(1));
        assert_eq!(BigUint::from_u128(0).bit_len(), 0);
        let mut x = BigUint::from_u128(3);
        x.shl(130);
        let mut y = BigUint::from_u128(3 << 2);
        y.shl(128);
        assert_eq!(x.cmp(&y), Ordering::Equal);
        let mut z = BigUint::from_u128(1);
        z.mul_pow5(60);
        assert_eq!(z.cmp(&BigUint::from_u128(5u128.pow(54))), Ordering::Greater);
        let mut zero = BigUint::from_u128(0);
        zero.mul_small(7);
        assert_eq!(zero, BigUint::from_u128(0));
    }
}
