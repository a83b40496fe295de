//! The order-preserving key encoding of BSON values.
//!
//! [`encode_value`] appends bytes whose `memcmp` order is MongoDB's BSON comparison order (the
//! simple collation), and values that compare equal (`1`, `NumberLong(1)`, `1.0`,
//! `NumberDecimal("1.00")`) get identical bytes, so a unique index sees them as one key. Every
//! encoding is prefix-free (no encoding is a proper prefix of another), which is what lets
//! encodings be concatenated: a collection id followed by an `_id`, or the fields of a compound
//! index key, sort by the first component, then the second, and so on.
//!
//! # Layout (format version 1)
//!
//! The first byte orders the type brackets of mongod's `canonicalizeBSONType`:
//!
//! | byte | value | payload |
//! |---|---|---|
//! | `10` | MinKey | |
//! | `14` | undefined | |
//! | `18` | null | |
//! | `20` | number: NaN (every NaN, double or decimal) | |
//! | `21` | number: -Infinity | |
//! | `22` | number: negative finite | magnitude, every byte inverted |
//! | `23` | number: zero (`0`, `-0.0`, `0E+300`, ...) | |
//! | `24` | number: positive finite | magnitude |
//! | `25` | number: +Infinity | |
//! | `28` | string and symbol | escaped bytes |
//! | `2C` | object | (bracket byte, escaped field name, value)*, `00` |
//! | `30` | array | value*, `00` |
//! | `34` | binData | length u32 BE, subtype, bytes (as mongod sees them) |
//! | `38` | ObjectId | 12 bytes |
//! | `3C` / `3D` | false / true | |
//! | `40` | date | milliseconds as i64 BE with the sign bit flipped |
//! | `44` | timestamp | t u32 BE, i u32 BE |
//! | `48` | regex | escaped pattern, escaped options |
//! | `4C` | dbPointer | namespace length u32 BE, namespace bytes, 12 id bytes |
//! | `50` | code | escaped bytes |
//! | `54` | code with scope | escaped code, then the scope encoded as an object |
//! | `F0` | MaxKey | |
//!
//! - *Escaped* bytes: each `00` becomes `00 FF`, and `00 01` ends the string, so a string sorts
//!   before every extension of it and embedded NUL bytes keep their place.
//! - In an object, each element starts with its value's *bracket byte* (the first byte of its
//!   bracket: `20` for every number, `3C` for both booleans), because mongod compares the
//!   canonical type, then the field name, then the value. `00` ends the object (and an array),
//!   so a prefix sorts first.
//! - A *magnitude* places a finite non-zero |v| exactly, whatever its BSON type. Let
//!   `T = 1.f × 2^e` be |v| truncated to 53 significant bits (the exponent is unbounded, so
//!   subnormal doubles and huge decimals need no special case). The magnitude is `e + 0x8000`
//!   as u16 BE, then 7 bytes holding the 52 bits of `f` followed by a 4-bit tag: `0` when
//!   |v| = T exactly (every double, every int64 of at most 53 significant bits), `1` when |v|
//!   is above T. Tag `1`
//!   is followed by |v| in decimal: the adjusted exponent (that of the leading digit)
//!   `+ 0x8000` as u16 BE, then the significant digits without trailing zeros, one nibble each
//!   as digit + 1, ended by a `0` nibble and padded with `0` to a whole byte. Values with equal
//!   `T` lie in `[T, T + ulp)`, where the exact one sorts first and the decimal digits order the
//!   rest; equal values have equal `T` and equal normalized digits, hence identical bytes.
//! - [`encode_descending`] inverts every byte of the ascending encoding; prefix-freedom survives
//!   the inversion, so descending fields mix with ascending ones in one compound key.
//!
//! IMPORTANT: the unit tests pin a table of encodings (`fixtures()`). If one changes, keys
//! already on disk no longer sort with new ones: bump [`KEY_FORMAT_VERSION`] and plan a rebuild.

#![deny(clippy::indexing_slicing)]

use bson::raw::{CStr, RawDbPointerRef, RawDocumentBuf, RawIter};
use bson::{Decimal128, RawBsonRef};

use crate::query::exact::{self, BigUint, binary_parts, decode_decimal};

/// The version of the key layout described in this module. The catalog is meant to record it,
/// so that a data directory written with another layout is refused (or its indexes rebuilt).
pub const KEY_FORMAT_VERSION: u32 = 1;

/// Ends an object or an array; below every type byte so that a prefix sorts first.
const END: u8 = 0x00;
const MIN_KEY: u8 = 0x10;
const UNDEFINED: u8 = 0x14;
const NULL: u8 = 0x18;
const NUMBER_NAN: u8 = 0x20;
const NUMBER_NEG_INF: u8 = 0x21;
const NUMBER_NEG: u8 = 0x22;
const NUMBER_ZERO: u8 = 0x23;
const NUMBER_POS: u8 = 0x24;
const NUMBER_POS_INF: u8 = 0x25;
const STRING: u8 = 0x28;
const OBJECT: u8 = 0x2C;
const ARRAY: u8 = 0x30;
const BIN_DATA: u8 = 0x34;
const OBJECT_ID: u8 = 0x38;
const BOOL_FALSE: u8 = 0x3C;
const BOOL_TRUE: u8 = 0x3D;
const DATE: u8 = 0x40;
const TIMESTAMP: u8 = 0x44;
const REGEX: u8 = 0x48;
const DB_POINTER: u8 = 0x4C;
const CODE: u8 = 0x50;
const CODE_W_SCOPE: u8 = 0x54;
const MAX_KEY: u8 = 0xF0;

/// Added to binary and decimal exponents so they sort as unsigned 16-bit numbers. Binary
/// exponents stay within about ±20,520 (decimal128 reaches 10^6144 and 10^-6176).
const EXPONENT_BIAS: i32 = 0x8000;

/// The BSON subtype of "binary (old)", whose value carries a second, inner length.
const BINARY_OLD_SUBTYPE: u8 = 0x02;

/// Appends the order-preserving encoding of `value` to `out`.
///
/// `memcmp` on two encodings orders them as MongoDB orders the values (no collation); values
/// that compare equal encode to identical bytes; no encoding is a prefix of another. Never
/// panics: a malformed embedded document (which should have been refused when it arrived)
/// simply ends at its first unreadable element.
pub fn encode_value(value: RawBsonRef<'_>, out: &mut Vec<u8>) {
    encode_value_with(value, out, None);
}

/// Writes the collation key of a string (the bytes whose order is the collation's).
pub type StringKey<'k> = &'k dyn Fn(&str, &mut Vec<u8>);

/// [`encode_value`] under a collation: every string (and symbol), at any depth, is encoded by
/// its collation key from `strings` instead of its bytes, so `memcmp` follows the collation
/// and strings the collation calls equal get identical bytes. `None` is [`encode_value`].
pub fn encode_value_with(value: RawBsonRef<'_>, out: &mut Vec<u8>, strings: Option<StringKey<'_>>) {
    // IMPORTANT: nesting is walked with an explicit stack, not by recursion, so that a hostile
    // document nested a million levels deep costs heap (bounded by its size), not the stack.
    let mut open: Vec<Container<'_>> = Vec::new();
    let mut pending = Some(value);
    loop {
        if let Some(value) = pending.take()
            && let Some(container) = push_head(value, out, strings)
        {
            open.push(container);
        }
        let Some(innermost) = open.last_mut() else { return };
        match innermost.next_value(out) {
            Some(value) => pending = Some(value),
            None => {
                out.push(END);
                open.pop();
            }
        }
    }
}

/// Appends the encoding of `value` for a descending index field: the ascending encoding with
/// every byte inverted, so `memcmp` order is reversed.
pub fn encode_descending(value: RawBsonRef<'_>, out: &mut Vec<u8>) {
    encode_descending_with(value, out, None);
}

/// [`encode_descending`] under a collation (see [`encode_value_with`]).
pub fn encode_descending_with(value: RawBsonRef<'_>, out: &mut Vec<u8>, strings: Option<StringKey<'_>>) {
    let start = out.len();
    encode_value_with(value, out, strings);
    invert_from(out, start);
}

/// An object or array whose elements are being encoded.
struct Container<'a> {
    elements: RawIter<'a>,
    /// Objects prefix each value with its bracket byte and field name; arrays do not (their
    /// field names are positions, equal for equal positions).
    is_object: bool,
}

impl<'a> Container<'a> {
    fn new(elements: RawIter<'a>, is_object: bool) -> Self {
        Self { elements, is_object }
    }

    /// Returns the next element's value after writing what precedes it in an object, or `None`
    /// at the end (or at the first malformed element).
    fn next_value(&mut self, out: &mut Vec<u8>) -> Option<RawBsonRef<'a>> {
        let element = self.elements.next()?.ok()?;
        let value = element.value().ok()?;
        if self.is_object {
            out.push(bracket(value));
            push_escaped(out, element.key().as_str().as_bytes());
        }
        Some(value)
    }
}

/// The first byte of the value's type bracket: what mongod compares before field names.
fn bracket(value: RawBsonRef<'_>) -> u8 {
    match value {
        RawBsonRef::MinKey => MIN_KEY,
        RawBsonRef::Undefined => UNDEFINED,
        RawBsonRef::Null => NULL,
        RawBsonRef::Int32(_) | RawBsonRef::Int64(_) | RawBsonRef::Double(_) | RawBsonRef::Decimal128(_) => NUMBER_NAN,
        RawBsonRef::String(_) | RawBsonRef::Symbol(_) => STRING,
        RawBsonRef::Document(_) => OBJECT,
        RawBsonRef::Array(_) => ARRAY,
        RawBsonRef::Binary(_) => BIN_DATA,
        RawBsonRef::ObjectId(_) => OBJECT_ID,
        RawBsonRef::Boolean(_) => BOOL_FALSE,
        RawBsonRef::DateTime(_) => DATE,
        RawBsonRef::Timestamp(_) => TIMESTAMP,
        RawBsonRef::RegularExpression(_) => REGEX,
        RawBsonRef::DbPointer(_) => DB_POINTER,
        RawBsonRef::JavaScriptCode(_) => CODE,
        RawBsonRef::JavaScriptCodeWithScope(_) => CODE_W_SCOPE,
        RawBsonRef::MaxKey => MAX_KEY,
    }
}

/// Writes a scalar whole, or the head of an object or array and returns it to be walked.
fn push_head<'a>(value: RawBsonRef<'a>, out: &mut Vec<u8>, strings: Option<StringKey<'_>>) -> Option<Container<'a>> {
    match value {
        RawBsonRef::MinKey => out.push(MIN_KEY),
        RawBsonRef::Undefined => out.push(UNDEFINED),
        RawBsonRef::Null => out.push(NULL),
        RawBsonRef::Int32(v) => push_number(out, Number::from_i64(i64::from(v))),
        RawBsonRef::Int64(v) => push_number(out, Number::from_i64(v)),
        RawBsonRef::Double(v) => push_number(out, Number::from_f64(v)),
        RawBsonRef::Decimal128(v) => push_number(out, Number::from_decimal128(v)),
        RawBsonRef::String(s) | RawBsonRef::Symbol(s) => {
            out.push(STRING);
            match strings {
                None => push_escaped(out, s.as_bytes()),
                Some(key_of) => {
                    let mut key = Vec::with_capacity(s.len() * 2);
                    key_of(s, &mut key);
                    push_escaped(out, &key);
                }
            }
        }
        RawBsonRef::Document(doc) => {
            out.push(OBJECT);
            return Some(Container::new(doc.iter_elements(), true));
        }
        RawBsonRef::Array(array) => {
            out.push(ARRAY);
            return Some(Container::new(array.iter_elements(), false));
        }
        RawBsonRef::Binary(binary) => {
            // mongod compares the declared length, then the subtype byte and the bytes. For the
            // old subtype 2 both include the inner length prefix, which the bson crate strips.
            let subtype = u8::from(binary.subtype);
            let data_len = u32::try_from(binary.bytes.len()).unwrap_or(u32::MAX);
            out.push(BIN_DATA);
            if subtype == BINARY_OLD_SUBTYPE {
                out.extend_from_slice(&data_len.saturating_add(4).to_be_bytes());
                out.push(subtype);
                out.extend_from_slice(&data_len.to_le_bytes());
            } else {
                out.extend_from_slice(&data_len.to_be_bytes());
                out.push(subtype);
            }
            out.extend_from_slice(binary.bytes);
        }
        RawBsonRef::ObjectId(oid) => {
            out.push(OBJECT_ID);
            out.extend_from_slice(&oid.bytes());
        }
        RawBsonRef::Boolean(b) => out.push(if b { BOOL_TRUE } else { BOOL_FALSE }),
        RawBsonRef::DateTime(date) => {
            // Flipping the sign bit makes two's complement sort as unsigned.
            let ms = date.timestamp_millis().to_be_bytes();
            out.push(DATE);
            out.extend_from_slice(&flip_sign(ms));
        }
        RawBsonRef::Timestamp(ts) => {
            // mongod compares the 64-bit (time << 32 | increment) as unsigned.
            out.push(TIMESTAMP);
            out.extend_from_slice(&ts.time.to_be_bytes());
            out.extend_from_slice(&ts.increment.to_be_bytes());
        }
        RawBsonRef::RegularExpression(regex) => {
            out.push(REGEX);
            push_escaped(out, regex.pattern.as_str().as_bytes());
            push_escaped(out, regex.options.as_str().as_bytes());
        }
        RawBsonRef::DbPointer(pointer) => {
            // mongod compares the value size first (so the namespace length), then the bytes.
            // The round trip through a document cannot fail; the default only keeps this total.
            let (namespace, id) = db_pointer_parts(pointer).unwrap_or_default();
            out.push(DB_POINTER);
            out.extend_from_slice(&u32::try_from(namespace.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(&namespace);
            out.extend_from_slice(&id);
        }
        RawBsonRef::JavaScriptCode(code) => {
            out.push(CODE);
            push_escaped(out, code.as_bytes());
        }
        RawBsonRef::JavaScriptCodeWithScope(cws) => {
            out.push(CODE_W_SCOPE);
            push_escaped(out, cws.code.as_bytes());
            out.push(OBJECT);
            return Some(Container::new(cws.scope.iter_elements(), true));
        }
        RawBsonRef::MaxKey => out.push(MAX_KEY),
    }
    None
}

/// Appends `bytes` with `00` escaped as `00 FF`, then the terminator `00 01`. The terminator
/// sorts below every continuation (a non-zero byte, or `00 FF`), so shorter strings sort first.
fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// Inverts every byte of `out` from `start` on.
fn invert_from(out: &mut [u8], start: usize) {
    for b in out.iter_mut().skip(start) {
        *b = !*b;
    }
}

/// Flips the top bit of a big-endian two's complement number, so it sorts as unsigned.
fn flip_sign(mut bytes: [u8; 8]) -> [u8; 8] {
    if let Some(top) = bytes.first_mut() {
        *top ^= 0x80;
    }
    bytes
}

/// The namespace bytes and id of a DBPointer.
///
/// The bson crate keeps both fields private, so the value is written into a one-element
/// document and read back from its bytes: `i32 size, 0x0C, "" (00), i32 len(ns)+1, ns, 00,
/// 12-byte id, 00`. DBPointer is deprecated and rare, so the allocation does not matter.
pub(super) fn db_pointer_parts(pointer: RawDbPointerRef<'_>) -> Option<(Vec<u8>, [u8; 12])> {
    let key = <&CStr>::try_from("").ok()?;
    let mut doc = RawDocumentBuf::new();
    doc.append(key, RawBsonRef::DbPointer(pointer));
    let bytes = doc.as_bytes();
    let len_with_nul: [u8; 4] = bytes.get(6..10)?.try_into().ok()?;
    let len_with_nul = usize::try_from(i32::from_le_bytes(len_with_nul)).ok()?;
    let ns_end = 10usize.checked_add(len_with_nul.checked_sub(1)?)?;
    let namespace = bytes.get(10..ns_end)?.to_vec();
    let id_start = ns_end.checked_add(1)?;
    let id: [u8; 12] = bytes.get(id_start..id_start.checked_add(12)?)?.try_into().ok()?;
    Some((namespace, id))
}

/// A number reduced to what its key depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Number {
    /// Every NaN (double or decimal, any sign or payload): below every other number.
    NaN,
    NegInfinity,
    /// `0`, `-0.0`, decimal zeros of any exponent, and non-canonical decimals (which IEEE 754
    /// and mongod's decimal library read as zero).
    Zero,
    Finite {
        negative: bool,
        magnitude: Magnitude,
    },
    PosInfinity,
}

/// A finite non-zero |v|: truncated to 53 significant bits, plus its exact decimal digits when
/// the truncation lost something.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Magnitude {
    /// `floor(log2 |v|)`.
    exponent: i32,
    /// The top 53 bits of |v|; bit 52 is always set.
    significand: u64,
    /// `None` when |v| equals `significand × 2^(exponent - 52)` exactly; otherwise |v| itself.
    rest: Option<Decimal>,
}

/// An exact decimal `coefficient × 10^exponent`, normalized: the coefficient is non-zero and has
/// no trailing zero digit, so equal values have equal fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decimal {
    coefficient: u128,
    exponent: i32,
}

const SIGNIFICAND_BITS: u32 = 53;
const FRACTION_MASK: u64 = (1 << 52) - 1;

impl Number {
    fn from_i64(v: i64) -> Self {
        if v == 0 {
            return Number::Zero;
        }
        let magnitude = v.unsigned_abs();
        let width = u64::BITS - magnitude.leading_zeros(); // 1..=64
        let exponent = width as i32 - 1;
        let magnitude = if width <= SIGNIFICAND_BITS {
            Magnitude { exponent, significand: magnitude << (SIGNIFICAND_BITS - width), rest: None }
        } else {
            // Beyond 2^53 an int64 may have more significant bits than a double holds.
            let dropped = width - SIGNIFICAND_BITS; // 1..=11
            let lost = magnitude & ((1u64 << dropped) - 1) != 0;
            Magnitude {
                exponent,
                significand: magnitude >> dropped,
                rest: lost.then(|| Decimal::normalized(u128::from(magnitude), 0)),
            }
        };
        Number::Finite { negative: v < 0, magnitude }
    }

    fn from_f64(v: f64) -> Self {
        if v.is_nan() {
            return Number::NaN;
        }
        if v.is_infinite() {
            return if v < 0.0 { Number::NegInfinity } else { Number::PosInfinity };
        }
        if v == 0.0 {
            return Number::Zero; // also -0.0, which compares equal to 0
        }
        // Renormalized so bit 52 is set (a subnormal's fraction is shorter).
        let (mantissa, exponent) = binary_parts(v);
        let width = u64::BITS - mantissa.leading_zeros(); // 1..=53
        let magnitude = Magnitude {
            exponent: exponent + width as i32 - 1,
            significand: mantissa << (SIGNIFICAND_BITS - width),
            rest: None,
        };
        Number::Finite { negative: v.is_sign_negative(), magnitude }
    }

    /// Reads a decimal128 (the layout is documented on [`decode_decimal`]); a non-canonical
    /// coefficient reads as zero, as IEEE 754 and mongod's decimal library read it.
    fn from_decimal128(v: Decimal128) -> Self {
        match decode_decimal(v) {
            exact::Decimal::NaN => Number::NaN,
            exact::Decimal::Infinity { negative: true } => Number::NegInfinity,
            exact::Decimal::Infinity { negative: false } => Number::PosInfinity,
            exact::Decimal::Finite { coefficient: 0, .. } => Number::Zero,
            exact::Decimal::Finite { negative, coefficient, exponent } => {
                Number::Finite { negative, magnitude: Decimal::normalized(coefficient, exponent).magnitude() }
            }
        }
    }
}

impl Decimal {
    /// `coefficient × 10^exponent` with trailing zeros moved into the exponent. `coefficient`
    /// must be non-zero.
    fn normalized(mut coefficient: u128, mut exponent: i32) -> Self {
        while coefficient != 0 && coefficient.is_multiple_of(10) {
            coefficient /= 10;
            exponent += 1;
        }
        Decimal { coefficient, exponent }
    }

    /// Places the value on the binary scale exactly, with big-integer arithmetic.
    fn magnitude(self) -> Magnitude {
        let mut scaled = BigUint::from_u128(self.coefficient);
        // |v| = (scaled + f) / 2^scale with 0 <= f < 1, where f > 0 iff `remainder`.
        let (scale, remainder) = if self.exponent >= 0 {
            scaled.mul_pow10(self.exponent.unsigned_abs());
            (0, false)
        } else {
            // |v| = c / (2^k × 5^k). Scaling by 2^t with t > 54 + k·log2(5) (7/3 > log2 5)
            // makes floor(c × 2^t / 5^k) at least 2^54, so its top 53 bits are those of |v|:
            // floor(floor(x) / 2^j) = floor(x / 2^j).
            let k = self.exponent.unsigned_abs();
            let t = 56 + u64::from(k) * 7 / 3;
            scaled.shl(t);
            let remainder = scaled.div_pow5(k);
            (t as i64 + i64::from(k), remainder)
        };
        let width = scaled.bit_len() as i64;
        let (significand, lost) = top53(&scaled);
        let exponent = (width - 1 - scale).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        Magnitude { exponent, significand, rest: (remainder || lost).then_some(self) }
    }
}

/// Appends a number: its class byte, then the magnitude for finite non-zero values (inverted
/// for negative ones, so a larger magnitude sorts lower).
fn push_number(out: &mut Vec<u8>, number: Number) {
    match number {
        Number::NaN => out.push(NUMBER_NAN),
        Number::NegInfinity => out.push(NUMBER_NEG_INF),
        Number::Zero => out.push(NUMBER_ZERO),
        Number::PosInfinity => out.push(NUMBER_POS_INF),
        Number::Finite { negative: false, magnitude } => {
            out.push(NUMBER_POS);
            push_magnitude(out, &magnitude);
        }
        Number::Finite { negative: true, magnitude } => {
            out.push(NUMBER_NEG);
            let start = out.len();
            push_magnitude(out, &magnitude);
            invert_from(out, start);
        }
    }
}

/// Appends the biased binary exponent, the 52 fraction bits with the exactness tag, and the
/// decimal digits when inexact (see the module docs).
fn push_magnitude(out: &mut Vec<u8>, magnitude: &Magnitude) {
    out.extend_from_slice(&biased_u16(magnitude.exponent).to_be_bytes());
    let tag = u64::from(magnitude.rest.is_some());
    let word = ((magnitude.significand & FRACTION_MASK) << 4) | tag; // 56 bits
    out.extend(word.to_be_bytes().iter().skip(1));
    if let Some(decimal) = magnitude.rest {
        push_decimal(out, decimal);
    }
}

/// Appends a normalized decimal: adjusted exponent, then digit nibbles ended by a `0` nibble.
fn push_decimal(out: &mut Vec<u8>, decimal: Decimal) {
    let digits = decimal.coefficient.to_string();
    let adjusted = decimal.exponent.saturating_add(digits.len() as i32 - 1);
    out.extend_from_slice(&biased_u16(adjusted).to_be_bytes());
    let nibbles: Vec<u8> =
        digits.bytes().map(|d| d.saturating_sub(b'0').saturating_add(1)).chain(std::iter::once(0)).collect();
    for pair in nibbles.chunks(2) {
        let high = pair.first().copied().unwrap_or(0);
        let low = pair.get(1).copied().unwrap_or(0);
        out.push((high << 4) | low);
    }
}

/// `exponent + EXPONENT_BIAS` as u16 (exponents never come near the clamp).
fn biased_u16(exponent: i32) -> u16 {
    (exponent.clamp(-EXPONENT_BIAS, EXPONENT_BIAS - 1) + EXPONENT_BIAS) as u16
}

/// The top 53 bits of `n` (left-aligned to bit 52 when it is shorter), and whether any
/// bit below them is set.
fn top53(n: &BigUint) -> (u64, bool) {
    let width = n.bit_len();
    if width <= u64::from(SIGNIFICAND_BITS) {
        let low = n.limbs().first().copied().unwrap_or(0);
        return (low << (u64::from(SIGNIFICAND_BITS) - width), false);
    }
    let shift = width - u64::from(SIGNIFICAND_BITS);
    let index = usize::try_from(shift / 64).unwrap_or(usize::MAX);
    let offset = (shift % 64) as u32;
    let low = n.limbs().get(index).copied().unwrap_or(0);
    let high = n.limbs().get(index.saturating_add(1)).copied().unwrap_or(0);
    let window = if offset == 0 { low } else { (low >> offset) | (high << (64 - offset)) };
    let lost_in_low = offset > 0 && low & ((1u64 << offset) - 1) != 0;
    let lost_below = n.limbs().iter().take(index).any(|&limb| limb != 0);
    (window & ((1u64 << SIGNIFICAND_BITS) - 1), lost_in_low || lost_below)
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use bson::raw::{CString, RawArrayBuf, RawDocument};
    use bson::spec::BinarySubtype;
    use bson::{Binary, DateTime, Decimal128, RawBson, RawDocumentBuf, RawJavaScriptCodeWithScope, Regex, Timestamp};
    use num_bigint::BigInt;
    use proptest::prelude::*;

    use super::*;

    // ---- building values -------------------------------------------------------------------

    fn enc(v: &RawBson) -> Vec<u8> {
        let mut out = Vec::new();
        encode_value(v.as_raw_bson_ref(), &mut out);
        out
    }

    fn enc_desc(v: &RawBson) -> Vec<u8> {
        let mut out = Vec::new();
        encode_descending(v.as_raw_bson_ref(), &mut out);
        out
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn int(v: i32) -> RawBson {
        RawBson::Int32(v)
    }

    fn long(v: i64) -> RawBson {
        RawBson::Int64(v)
    }

    fn dbl(v: f64) -> RawBson {
        RawBson::Double(v)
    }

    fn dec(s: &str) -> RawBson {
        RawBson::Decimal128(s.parse().unwrap())
    }

    fn dec_bits(bits: u128) -> RawBson {
        RawBson::Decimal128(Decimal128::from_bytes(bits.to_le_bytes()))
    }

    /// A canonical decimal128 from its parts (the BID layout documented on `decode_decimal`).
    fn dec_parts(negative: bool, coefficient: u128, exponent: i32) -> RawBson {
        assert!(coefficient <= exact::decimal128::MAX_COEFFICIENT && (-6176..=6111).contains(&exponent));
        let biased = (exponent + exact::decimal128::EXPONENT_BIAS) as u128;
        dec_bits((u128::from(negative) << 127) | (biased << 113) | coefficient)
    }

    fn string(s: &str) -> RawBson {
        RawBson::String(s.to_owned())
    }

    fn symbol(s: &str) -> RawBson {
        RawBson::Symbol(s.to_owned())
    }

    fn doc(pairs: &[(&str, RawBson)]) -> RawBson {
        RawBson::Document(doc_buf(pairs))
    }

    fn doc_buf(pairs: &[(&str, RawBson)]) -> RawDocumentBuf {
        let mut d = RawDocumentBuf::new();
        for (k, v) in pairs {
            d.append(CString::try_from(*k).unwrap(), v.clone());
        }
        d
    }

    fn arr(items: &[RawBson]) -> RawBson {
        let mut a = RawArrayBuf::new();
        for v in items {
            a.push(v.clone());
        }
        RawBson::Array(a)
    }

    fn bin(subtype: u8, bytes: &[u8]) -> RawBson {
        RawBson::Binary(Binary { subtype: BinarySubtype::from(subtype), bytes: bytes.to_vec() })
    }

    fn oid(bytes: [u8; 12]) -> RawBson {
        RawBson::ObjectId(bson::oid::ObjectId::from_bytes(bytes))
    }

    fn date(ms: i64) -> RawBson {
        RawBson::DateTime(DateTime::from_millis(ms))
    }

    fn ts(time: u32, increment: u32) -> RawBson {
        RawBson::Timestamp(Timestamp { time, increment })
    }

    fn regex(pattern: &str, options: &str) -> RawBson {
        RawBson::RegularExpression(Regex {
            pattern: CString::try_from(pattern).unwrap(),
            options: CString::try_from(options).unwrap(),
        })
    }

    fn code(s: &str) -> RawBson {
        RawBson::JavaScriptCode(s.to_owned())
    }

    fn code_w_scope(s: &str, scope: &[(&str, RawBson)]) -> RawBson {
        RawBson::JavaScriptCodeWithScope(RawJavaScriptCodeWithScope { code: s.to_owned(), scope: doc_buf(scope) })
    }

    /// The bson crate cannot build a DBPointer, so this parses one from hand-written bytes.
    fn db_pointer(namespace: &str, id: [u8; 12]) -> RawBson {
        let mut body = vec![0x0C, b'p', 0];
        body.extend_from_slice(&(namespace.len() as i32 + 1).to_le_bytes());
        body.extend_from_slice(namespace.as_bytes());
        body.push(0);
        body.extend_from_slice(&id);
        body.push(0);
        let mut bytes = (body.len() as i32 + 4).to_le_bytes().to_vec();
        bytes.extend_from_slice(&body);
        let d = RawDocumentBuf::from_bytes(bytes).unwrap();
        RawBson::from(d.get("p").unwrap().unwrap())
    }

    // ---- the reference comparison ----------------------------------------------------------

    /// mongod's `canonicalizeBSONType`.
    fn canonical_rank(v: RawBsonRef<'_>) -> i32 {
        match v {
            RawBsonRef::MinKey => -1,
            RawBsonRef::Undefined => 0,
            RawBsonRef::Null => 5,
            RawBsonRef::Int32(_) | RawBsonRef::Int64(_) | RawBsonRef::Double(_) | RawBsonRef::Decimal128(_) => 10,
            RawBsonRef::String(_) | RawBsonRef::Symbol(_) => 15,
            RawBsonRef::Document(_) => 20,
            RawBsonRef::Array(_) => 25,
            RawBsonRef::Binary(_) => 30,
            RawBsonRef::ObjectId(_) => 35,
            RawBsonRef::Boolean(_) => 40,
            RawBsonRef::DateTime(_) => 45,
            RawBsonRef::Timestamp(_) => 47,
            RawBsonRef::RegularExpression(_) => 50,
            RawBsonRef::DbPointer(_) => 55,
            RawBsonRef::JavaScriptCode(_) => 60,
            RawBsonRef::JavaScriptCodeWithScope(_) => 65,
            RawBsonRef::MaxKey => 127,
        }
    }

    /// The comparison the encoding must agree with: a direct transcription of mongod's
    /// `BSONElement::compareElements` (simple collation), with numbers compared as exact
    /// rationals. Redirect this to `crate::query::order::compare_values` once that exists.
    fn reference_compare(a: RawBsonRef<'_>, b: RawBsonRef<'_>) -> Ordering {
        use RawBsonRef as B;
        let by_rank = canonical_rank(a).cmp(&canonical_rank(b));
        if by_rank != Ordering::Equal {
            return by_rank;
        }
        match (a, b) {
            (B::String(x) | B::Symbol(x), B::String(y) | B::Symbol(y)) => x.as_bytes().cmp(y.as_bytes()),
            (B::Document(x), B::Document(y)) => compare_documents(x, y),
            (B::Array(x), B::Array(y)) => {
                let xs: Vec<_> = x.into_iter().map(Result::unwrap).collect();
                let ys: Vec<_> = y.into_iter().map(Result::unwrap).collect();
                for (ex, ey) in xs.iter().zip(&ys) {
                    let o = reference_compare(*ex, *ey);
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                xs.len().cmp(&ys.len())
            }
            (B::Binary(x), B::Binary(y)) => {
                // mongod: the declared length, then subtype and bytes; the old subtype 2 declares
                // (and stores) an extra inner length.
                let view = |b: bson::RawBinaryRef<'_>| {
                    let subtype = u8::from(b.subtype);
                    let mut raw = vec![subtype];
                    if subtype == 2 {
                        raw.extend_from_slice(&(b.bytes.len() as i32).to_le_bytes());
                    }
                    raw.extend_from_slice(b.bytes);
                    (raw.len() - 1, raw)
                };
                view(x).cmp(&view(y))
            }
            (B::ObjectId(x), B::ObjectId(y)) => x.bytes().cmp(&y.bytes()),
            (B::Boolean(x), B::Boolean(y)) => x.cmp(&y),
            (B::DateTime(x), B::DateTime(y)) => x.timestamp_millis().cmp(&y.timestamp_millis()),
            (B::Timestamp(x), B::Timestamp(y)) => (x.time, x.increment).cmp(&(y.time, y.increment)),
            (B::RegularExpression(x), B::RegularExpression(y)) => {
                (x.pattern.as_str().as_bytes(), x.options.as_str().as_bytes())
                    .cmp(&(y.pattern.as_str().as_bytes(), y.options.as_str().as_bytes()))
            }
            (B::DbPointer(x), B::DbPointer(y)) => {
                let (nx, ix) = db_pointer_parts(x).unwrap();
                let (ny, iy) = db_pointer_parts(y).unwrap();
                (nx.len(), nx, ix).cmp(&(ny.len(), ny, iy))
            }
            (B::JavaScriptCode(x), B::JavaScriptCode(y)) => x.as_bytes().cmp(y.as_bytes()),
            (B::JavaScriptCodeWithScope(x), B::JavaScriptCodeWithScope(y)) => {
                x.code.as_bytes().cmp(y.code.as_bytes()).then_with(|| compare_documents(x.scope, y.scope))
            }
            (x, y) if canonical_rank(x) == 10 => compare_numbers(x, y),
            // MinKey, undefined, null, MaxKey: the bracket is the whole value.
            _ => Ordering::Equal,
        }
    }

    /// mongod's `BSONObj::woCompare` with field names: per element the canonical type, then the
    /// field name, then the value; a prefix sorts first.
    fn compare_documents(x: &RawDocument, y: &RawDocument) -> Ordering {
        let mut xs = x.into_iter();
        let mut ys = y.into_iter();
        loop {
            match (xs.next(), ys.next()) {
                (None, None) => return Ordering::Equal,
                (None, Some(_)) => return Ordering::Less,
                (Some(_), None) => return Ordering::Greater,
                (Some(ex), Some(ey)) => {
                    let (kx, vx) = ex.unwrap();
                    let (ky, vy) = ey.unwrap();
                    let o = canonical_rank(vx)
                        .cmp(&canonical_rank(vy))
                        .then_with(|| kx.as_str().as_bytes().cmp(ky.as_str().as_bytes()))
                        .then_with(|| reference_compare(vx, vy));
                    if o != Ordering::Equal {
                        return o;
                    }
                }
            }
        }
    }

    /// A number as an exact rational `n × 2^p × 10^q`, or one of the non-finite classes.
    #[derive(Debug)]
    enum Exact {
        NaN,
        NegInfinity,
        Finite(BigInt, i64, i64),
        PosInfinity,
    }

    impl Exact {
        fn class(&self) -> u8 {
            match self {
                Exact::NaN => 0,
                Exact::NegInfinity => 1,
                Exact::Finite(..) => 2,
                Exact::PosInfinity => 3,
            }
        }
    }

    fn exact(v: RawBsonRef<'_>) -> Exact {
        match v {
            RawBsonRef::Int32(i) => Exact::Finite(BigInt::from(i), 0, 0),
            RawBsonRef::Int64(i) => Exact::Finite(BigInt::from(i), 0, 0),
            RawBsonRef::Double(f) if f.is_nan() => Exact::NaN,
            RawBsonRef::Double(f) if f == f64::INFINITY => Exact::PosInfinity,
            RawBsonRef::Double(f) if f == f64::NEG_INFINITY => Exact::NegInfinity,
            RawBsonRef::Double(f) => {
                let bits = f.to_bits();
                let field = ((bits >> 52) & 0x7FF) as i64;
                let fraction = bits & ((1 << 52) - 1);
                let (m, e) = if field == 0 { (fraction, -1074) } else { (fraction | (1 << 52), field - 1075) };
                let m = BigInt::from(m);
                Exact::Finite(if f < 0.0 { -m } else { m }, e, 0)
            }
            // Parsed from the bson crate's own rendering, independently of the bit decoding in
            // the encoder.
            RawBsonRef::Decimal128(d) => parse_decimal(&d.to_string()),
            other => panic!("not a number: {other:?}"),
        }
    }

    fn parse_decimal(s: &str) -> Exact {
        let (negative, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        match body {
            "NaN" => Exact::NaN,
            "Infinity" if negative => Exact::NegInfinity,
            "Infinity" => Exact::PosInfinity,
            _ => {
                let (mantissa, exponent) = match body.split_once('E') {
                    Some((m, e)) => (m, e.parse::<i64>().unwrap()),
                    None => (body, 0),
                };
                let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
                let digits: BigInt = format!("{whole}{fraction}").parse().unwrap();
                Exact::Finite(if negative { -digits } else { digits }, 0, exponent - fraction.len() as i64)
            }
        }
    }

    fn compare_numbers(a: RawBsonRef<'_>, b: RawBsonRef<'_>) -> Ordering {
        match (exact(a), exact(b)) {
            (Exact::Finite(n1, p1, q1), Exact::Finite(n2, p2, q2)) => {
                let (p, q) = (p1.min(p2), q1.min(q2));
                let scale = |n: BigInt, p2: i64, q10: i64| (n << (p2 as usize)) * BigInt::from(10u32).pow(q10 as u32);
                scale(n1, p1 - p, q1 - q).cmp(&scale(n2, p2 - p, q2 - q))
            }
            (x, y) => x.class().cmp(&y.class()),
        }
    }

    // ---- deterministic tests ---------------------------------------------------------------

    /// Checks every pair of values: groups are strictly ascending, values within a group equal.
    /// Both the encoding and the reference comparison must agree with the table.
    fn assert_ascending(groups: &[Vec<RawBson>]) {
        for (gi, group_a) in groups.iter().enumerate() {
            for (gj, group_b) in groups.iter().enumerate() {
                for a in group_a {
                    for b in group_b {
                        let expected = gi.cmp(&gj);
                        let (ea, eb) = (enc(a), enc(b));
                        assert_eq!(
                            reference_compare(a.as_raw_bson_ref(), b.as_raw_bson_ref()),
                            expected,
                            "reference: {a:?} vs {b:?}"
                        );
                        assert_eq!(ea.cmp(&eb), expected, "encoding: {a:?} ({}) vs {b:?} ({})", hex(&ea), hex(&eb));
                        assert_eq!(enc_desc(a).cmp(&enc_desc(b)), expected.reverse(), "descending: {a:?} vs {b:?}");
                    }
                }
            }
        }
    }

    fn one(v: RawBson) -> Vec<RawBson> {
        vec![v]
    }

    #[test]
    fn keys_brackets_follow_mongod_canonical_type_order() {
        assert_ascending(&[
            one(RawBson::MinKey),
            one(RawBson::Undefined),
            one(RawBson::Null),
            vec![dbl(f64::NAN), dec("NaN")],
            vec![dbl(f64::NEG_INFINITY), dec("-Infinity")],
            one(int(-1)),
            one(int(0)),
            one(dec("1E+6144")),
            vec![dbl(f64::INFINITY), dec("Infinity")],
            vec![string(""), symbol("")],
            one(string("a")),
            one(doc(&[])),
            one(doc(&[("a", int(1))])),
            one(arr(&[])),
            one(arr(&[RawBson::MinKey])),
            one(bin(0, b"")),
            one(oid([0; 12])),
            one(oid([0xFF; 12])),
            one(RawBson::Boolean(false)),
            one(RawBson::Boolean(true)),
            one(date(i64::MIN)),
            one(date(i64::MAX)),
            one(ts(0, 0)),
            one(ts(u32::MAX, u32::MAX)),
            one(regex("", "")),
            one(db_pointer("", [0; 12])),
            one(code("")),
            one(code_w_scope("", &[])),
            one(RawBson::MaxKey),
        ]);
    }

    #[test]
    fn keys_numbers_order_exactly_across_types_at_the_edges() {
        let two_63 = 9_223_372_036_854_775_808.0_f64;
        assert_ascending(&[
            vec![
                dbl(f64::NAN),
                dbl(-f64::NAN),
                dbl(f64::from_bits(0x7FF0_0000_0000_0001)),
                dec("NaN"),
                dec_bits(0x7E00 << 112), // signaling NaN
                dec_bits(0xFC00 << 112), // negative NaN
            ],
            vec![dbl(f64::NEG_INFINITY), dec("-Infinity"), dec_bits((0xF800 << 112) | 12345)],
            one(dec("-9.999999999999999999999999999999999E+6144")),
            one(dec("-1E+309")),
            one(dec("-1.797693134862315708145274237317044E+308")),
            one(dbl(-f64::MAX)),
            one(dec("-1.797693134862315708145274237317043E+308")),
            one(dec("-9223372036854775809")),
            vec![long(i64::MIN), dbl(-two_63), dec("-9223372036854775808"), dec("-9.223372036854775808E+18")],
            one(long(i64::MIN + 1)),
            vec![dbl(-9_007_199_254_740_994.0), long(-9_007_199_254_740_994)],
            vec![long(-9_007_199_254_740_993), dec("-9007199254740993"), dec("-9007199254740993.000")],
            vec![dbl(-9_007_199_254_740_992.0), long(-9_007_199_254_740_992), dec("-9007199254740992")],
            vec![int(-1), long(-1), dbl(-1.0), dec("-1"), dec("-1.000"), dec("-0.1E+1")],
            one(dec("-0.5000000000000000000000000000000001")),
            vec![dbl(-0.5), dec("-0.5"), dec("-5E-1"), dec("-0.50")],
            one(dbl(-0.1)),
            one(dec("-0.1000000000000000055511151231257827")),
            one(dec("-0.1")),
            one(dec("-4.940656458412465441765687928682214E-324")),
            one(dbl(-5e-324)),
            one(dec("-4.940656458412465441765687928682213E-324")),
            one(dec("-1E-6176")),
            vec![
                int(0),
                long(0),
                dbl(0.0),
                dbl(-0.0),
                dec("0"),
                dec("-0"),
                dec("0E-6176"),
                dec("0E+6111"),
                dec_bits(0x6000 << 112), // the `11` form: non-canonical
                dec_parts(false, 0, 0),  // explicit zero
                dec_bits((6176u128 << 113) | (exact::decimal128::MAX_COEFFICIENT + 1)), // coefficient 10^34: non-canonical
            ],
            one(dec("1E-6176")),
            one(dec("4.940656458412465441765687928682213E-324")),
            one(dbl(5e-324)),
            one(dec("4.940656458412465441765687928682214E-324")),
            one(dbl(f64::MIN_POSITIVE)),
            one(dec("0.1")),
            one(dec("0.1000000000000000055511151231257827")),
            one(dbl(0.1)),
            one(dec("0.1000000000000000055511151231257828")),
            vec![dbl(0.5), dec("0.5"), dec("0.500000000000000000000000000000000")],
            one(dec("0.5000000000000000000000000000000001")),
            vec![int(1), long(1), dbl(1.0), dec("1"), dec("1.00"), dec("0.01E+2"), dec("1E0")],
            one(dec("1.000000000000000000000000000000001")),
            one(dbl(1.0 + f64::EPSILON)),
            vec![dbl(9_007_199_254_740_992.0), long(9_007_199_254_740_992), dec("9007199254740992")],
            vec![long(9_007_199_254_740_993), dec("9007199254740993"), dec("9.007199254740993E+15")],
            vec![dbl(9_007_199_254_740_994.0), long(9_007_199_254_740_994)],
            one(long(i64::MAX - 1)),
            one(long(i64::MAX)),
            vec![dbl(two_63), dec("9223372036854775808")],
            one(dec("9223372036854775809")),
            one(dbl(1e300)),
            one(dec("1.797693134862315708145274237317043E+308")),
            one(dbl(f64::MAX)),
            one(dec("1.797693134862315708145274237317044E+308")),
            one(dec("1E+309")),
            one(dec("9.999999999999999999999999999999999E+6144")),
            vec![dbl(f64::INFINITY), dec("Infinity"), dec_bits(0x7A00 << 112)],
        ]);
    }

    #[test]
    fn keys_decimal_just_above_a_double_is_not_mistaken_for_it() {
        // For these decimals the truncated binary value's dropped bits happen to be all zero,
        // so only the remainder of the division by 5^k shows that they are inexact.
        for (double, decimal) in [(1e-14, "1E-14"), (0.00031, "0.00031"), (3e-11, "3E-11"), (1.109e-16, "1.109E-16")] {
            assert_ascending(&[one(dbl(double)), one(dec(decimal)), one(dbl(f64::next_up(double)))]);
            assert_ascending(&[one(dbl(-f64::next_up(double))), one(dec(&format!("-{decimal}"))), one(dbl(-double))]);
        }
    }

    #[test]
    fn keys_strings_sort_by_bytes_with_embedded_nul() {
        assert_ascending(&[
            vec![string(""), symbol("")],
            one(string("\0")),
            one(string("\0\0")),
            one(string("\0a")),
            one(string("\u{1}")),
            vec![string("a"), symbol("a")],
            one(string("a\0")),
            one(string("a\0\0")),
            one(string("a\0b")),
            one(string("a\u{1}")),
            one(string("ab")),
            one(string("b")),
            one(string("\u{7f}")),
            one(string("é")),
            one(string("\u{ffff}")),
            one(string("😀")),
        ]);
    }

    #[test]
    fn keys_objects_compare_bracket_then_field_name_then_value() {
        assert_ascending(&[
            one(doc(&[])),
            one(doc(&[("z", RawBson::MinKey)])),
            one(doc(&[("b", RawBson::Null)])),
            // numbers before strings, whatever the field names
            vec![doc(&[("a", int(1))]), doc(&[("a", dbl(1.0))]), doc(&[("a", dec("1.0"))])],
            vec![doc(&[("a", int(1)), ("b", int(2))]), doc(&[("a", long(1)), ("b", dec("2"))])],
            one(doc(&[("a", int(1)), ("b", string(""))])),
            one(doc(&[("a", int(2))])),
            one(doc(&[("a\u{1}", int(-5))])),
            one(doc(&[("ab", int(-5))])),
            one(doc(&[("b", int(-5))])),
            one(doc(&[("", string("x"))])),
            one(doc(&[("a", string("x"))])),
            one(doc(&[("a", doc(&[]))])),
            one(doc(&[("a", doc(&[("a", int(1))]))])),
            one(doc(&[("a", arr(&[]))])),
            one(doc(&[("a", RawBson::Boolean(false))])),
            one(doc(&[("a", RawBson::MaxKey)])),
        ]);
    }

    #[test]
    fn keys_arrays_compare_element_by_element() {
        assert_ascending(&[
            one(arr(&[])),
            one(arr(&[RawBson::MinKey])),
            one(arr(&[RawBson::Null, int(5)])),
            vec![arr(&[int(1)]), arr(&[dbl(1.0)])],
            vec![arr(&[int(1), int(2)]), arr(&[dec("1"), long(2)])],
            one(arr(&[int(1), int(2), RawBson::MinKey])),
            one(arr(&[int(1), string("")])),
            one(arr(&[int(2)])),
            one(arr(&[string("a")])),
            one(arr(&[arr(&[])])),
            one(arr(&[arr(&[int(1)])])),
            one(arr(&[RawBson::MaxKey])),
        ]);
    }

    #[test]
    fn keys_bindata_compares_length_then_subtype_then_bytes() {
        assert_ascending(&[
            one(bin(0, b"")),
            one(bin(0x80, b"")),
            one(bin(0, b"\xFF")),
            one(bin(5, b"\x00")),
            one(bin(0, b"\x00\x00")),
            one(bin(0, b"\x00\x00\x00\x00\x00")),
            // subtype 2 declares 4 more bytes (its inner length) than it carries
            one(bin(2, b"\x00")),
            one(bin(3, b"\x00\x00\x00\x00\x00")),
            one(bin(0, b"\x00\x00\x00\x00\x00\x00")),
        ]);
    }

    #[test]
    fn keys_scalar_brackets_order_their_values() {
        let mut id = [0u8; 12];
        id[11] = 1;
        assert_ascending(&[one(oid([0; 12])), one(oid(id)), one(oid([1; 12])), one(oid([0xFF; 12]))]);
        assert_ascending(&[one(RawBson::Boolean(false)), one(RawBson::Boolean(true))]);
        assert_ascending(&[one(date(i64::MIN)), one(date(-1)), one(date(0)), one(date(1)), one(date(i64::MAX))]);
        // unsigned (time, increment): the top bit of time is no sign
        assert_ascending(&[one(ts(0, 0)), one(ts(0, u32::MAX)), one(ts(1, 0)), one(ts(0x8000_0000, 0))]);
        assert_ascending(&[
            one(regex("", "")),
            one(regex("", "i")),
            one(regex("a", "")),
            one(regex("a", "i")),
            one(regex("a", "im")),
            one(regex("a", "s")),
            one(regex("ab", "")),
        ]);
        assert_ascending(&[one(code("")), one(code("\0")), one(code("a")), one(code("a\0")), one(code("b"))]);
        assert_ascending(&[
            one(code_w_scope("", &[])),
            one(code_w_scope("", &[("a", int(1))])),
            vec![code_w_scope("", &[("a", int(2))]), code_w_scope("", &[("a", dbl(2.0))])],
            one(code_w_scope("a", &[])),
        ]);
    }

    #[test]
    fn keys_dbpointer_compares_namespace_length_then_bytes_then_id() {
        let mut id = [0u8; 12];
        id[0] = 1;
        assert_ascending(&[
            one(db_pointer("", [0; 12])),
            one(db_pointer("", id)),
            one(db_pointer("z", [0; 12])),
            one(db_pointer("ab", [0; 12])),
            one(db_pointer("ab", id)),
            one(db_pointer("b\u{1}", [0; 12])),
        ]);
        let (namespace, parsed_id) = match db_pointer("db.coll", id).as_raw_bson_ref() {
            RawBsonRef::DbPointer(p) => db_pointer_parts(p).unwrap(),
            other => panic!("not a DBPointer: {other:?}"),
        };
        assert_eq!((namespace.as_slice(), parsed_id), (b"db.coll".as_slice(), id));
    }

    #[test]
    fn keys_tuples_order_by_first_component_then_second() {
        let pairs = [
            (dec("1.5"), RawBson::MaxKey),
            (dec("1.50000000000000000000001"), RawBson::MinKey),
            (string("a"), int(2)),
            (string("a"), RawBson::MaxKey),
            (string("a\0"), RawBson::MinKey),
            (string("ab"), RawBson::MinKey),
            (doc(&[("a", int(1))]), RawBson::MaxKey),
            (doc(&[("a", int(1)), ("b", int(1))]), RawBson::MinKey),
            (arr(&[int(1)]), RawBson::MaxKey),
            (arr(&[int(1), int(1)]), RawBson::MinKey),
        ];
        let tuple = |(a, b): &(RawBson, RawBson)| [enc(a), enc(b)].concat();
        for w in pairs.windows(2) {
            assert!(tuple(&w[0]) < tuple(&w[1]), "{:?} vs {:?}", w[0], w[1]);
        }
    }

    #[test]
    fn keys_deeply_nested_document_encodes_without_recursion() {
        // {"": {"": ... {} ...}} nested 200,000 deep, built as bytes: sizes are known up front.
        let depth = 200_000usize;
        let mut bytes = Vec::with_capacity(depth * 8 + 5);
        for level in (1..=depth).rev() {
            bytes.extend_from_slice(&((5 + 7 * level) as i32).to_le_bytes());
            bytes.extend_from_slice(&[0x03, 0x00]);
        }
        bytes.extend_from_slice(&[5, 0, 0, 0, 0]);
        bytes.resize(bytes.len() + depth, 0);
        let doc = RawDocument::from_bytes(&bytes).unwrap();
        let mut out = Vec::new();
        encode_value(RawBsonRef::Document(doc), &mut out);
        // per level: OBJECT, bracket, "" (00 01) ... then END
        assert_eq!(out.len(), depth * 5 + 2);
    }

    #[test]
    fn keys_malformed_embedded_document_ends_at_the_bad_element() {
        // {a: 1, b: <int32 cut short by the terminator>}: the size header is right, element b
        // runs past the end.
        let bytes = [17, 0, 0, 0, 0x10, b'a', 0, 1, 0, 0, 0, 0x10, b'b', 0, 1, 0, 0];
        let malformed = RawDocument::from_bytes(&bytes[..]).unwrap();
        let mut out = Vec::new();
        encode_value(RawBsonRef::Document(malformed), &mut out);
        assert_eq!(hex(&out), hex(&enc(&doc(&[("a", int(1))]))));
    }

    #[test]
    fn keys_descending_inverts_every_byte() {
        let v = doc(&[("a", arr(&[int(1), string("x\0")]))]);
        let ascending = enc(&v);
        assert_eq!(enc_desc(&v), ascending.iter().map(|b| !b).collect::<Vec<_>>());
    }

    #[test]
    fn keys_top53_keeps_the_leading_bits_and_notes_the_rest() {
        let mut n = BigUint::from_u128(u128::MAX);
        n.shl(170);
        assert_eq!(top53(&n), ((1 << 53) - 1, true));
    }

    // ---- on-disk fixtures -------------------------------------------------------------------

    /// Pinned encodings. IMPORTANT: if any of these change, keys already on disk stop sorting
    /// with new ones: bump KEY_FORMAT_VERSION (and plan an index rebuild) in the same change.
    fn fixtures() -> Vec<(&'static str, RawBson, &'static str)> {
        vec![
            ("minkey", RawBson::MinKey, "10"),
            ("undefined", RawBson::Undefined, "14"),
            ("null", RawBson::Null, "18"),
            ("nan", dbl(f64::NAN), "20"),
            ("decimal_nan", dec("NaN"), "20"),
            ("minus_infinity", dbl(f64::NEG_INFINITY), "21"),
            ("min_int64", long(i64::MIN), "227fc0ffffffffffffff"),
            ("minus_one", int(-1), "227fffffffffffffffff"),
            ("minus_one_and_a_half", dbl(-1.5), "227fff7fffffffffffff"),
            ("minus_decimal_tenth", dec("-0.1"), "2280036666666666666e8000df"),
            ("zero", int(0), "23"),
            ("minus_zero_double", dbl(-0.0), "23"),
            ("smallest_subnormal", dbl(5e-324), "247bce00000000000000"),
            ("decimal_tiniest", dec("1E-6176"), "242fdbb52e43d01ddca167e020"),
            ("double_tenth", dbl(0.1), "247ffc999999999999a0"),
            ("decimal_tenth", dec("0.1"), "247ffc999999999999917fff20"),
            ("one", int(1), "24800000000000000000"),
            ("one_decimal_cohort", dec("1.000"), "24800000000000000000"),
            ("forty_two_long", long(42), "24800550000000000000"),
            ("two_pow_53_plus_one", long(9_007_199_254_740_993), "24803500000000000001800fa1182aa365851aa400"),
            ("max_int64", long(i64::MAX), "24803efffffffffffff18012a3344831479658869180"),
            ("max_double", dbl(f64::MAX), "2483fffffffffffffff0"),
            (
                "decimal_largest",
                dec("9.999999999999999999999999999999999E+6144"),
                "24cfbd300ba122908eb19800aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00",
            ),
            ("infinity", dec("Infinity"), "25"),
            ("empty_string", string(""), "280001"),
            ("string_with_nul", string("a\0b"), "286100ff620001"),
            ("unicode_symbol", symbol("é"), "28c3a90001"),
            ("empty_object", doc(&[]), "2c00"),
            ("object", doc(&[("a", int(1)), ("b", string("x"))]), "2c2061000124800000000000000000286200012878000100"),
            ("empty_array", arr(&[]), "3000"),
            ("array", arr(&[int(1), arr(&[RawBson::Null])]), "302480000000000000000030180000"),
            ("bindata", bin(4, &[0xAB, 0xCD]), "340000000204abcd"),
            ("bindata_old", bin(2, &[0xEF]), "34000000050201000000ef"),
            ("object_id", oid([0x65, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x2A]), "3865000000000000000000002a"),
            ("false", RawBson::Boolean(false), "3c"),
            ("true", RawBson::Boolean(true), "3d"),
            ("date_before_epoch", date(-1), "407fffffffffffffff"),
            ("date", date(1_700_000_000_000), "408000018bcfe56800"),
            ("timestamp", ts(1_700_000_000, 7), "446553f10000000007"),
            ("regex", regex("^a.*", "i"), "485e612e2a0001690001"),
            ("db_pointer", db_pointer("db.c", [7; 12]), "4c0000000464622e63070707070707070707070707"),
            ("code", code("x = 1"), "5078203d20310001"),
            ("code_with_scope", code_w_scope("x", &[("x", int(1))]), "547800012c207800012480000000000000000000"),
            ("maxkey", RawBson::MaxKey, "f0"),
        ]
    }

    #[test]
    fn keys_fixtures_pin_the_format() {
        assert_eq!(KEY_FORMAT_VERSION, 1, "the fixtures below describe format version 1");
        let mut mismatches = Vec::new();
        for (name, value, expected) in fixtures() {
            let actual = hex(&enc(&value));
            if actual != expected {
                mismatches.push(format!("(\"{name}\", {value:?}, \"{actual}\"),"));
            }
        }
        assert!(mismatches.is_empty(), "encodings changed:\n{}", mismatches.join("\n"));
    }

    // ---- property tests ---------------------------------------------------------------------

    /// A value with its numbers and strings kept abstract, so that one model renders to several
    /// BSON values that all compare equal (`1` as int32, int64, double or any decimal cohort).
    #[derive(Debug, Clone)]
    enum Model {
        MinKey,
        Undefined,
        Null,
        MaxKey,
        Number(NumberModel),
        /// Rendered as a string or a symbol.
        Text(String),
        Code(String),
        CodeWithScope(String, Vec<(String, Model)>),
        Binary(u8, Vec<u8>),
        ObjectId([u8; 12]),
        Bool(bool),
        Date(i64),
        Timestamp(u32, u32),
        Regex(String, String),
        DbPointer(String, [u8; 12]),
        Document(Vec<(String, Model)>),
        Array(Vec<Model>),
    }

    #[derive(Debug, Clone)]
    enum NumberModel {
        /// Rendered as int32 (when it fits), int64, double (when exact) or a decimal cohort.
        Integer(i64),
        /// Rendered as the double, a decimal (when its exact value has at most 34 digits), or an
        /// integer type (when integral and in range).
        Double(f64),
        /// sign, coefficient, exponent: rendered as any cohort, or an integer type.
        Decimal(bool, u128, i32),
        NaN,
        Infinity(bool),
        Zero,
        /// Rendered exactly as given.
        DoubleBits(u64),
        DecimalBits(u128),
    }

    /// A deterministic chooser for renderings (splitmix64).
    struct Chooser(u64);

    impl Chooser {
        fn pick<T: Clone>(&mut self, options: &[T]) -> T {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            options[(z % options.len() as u64) as usize].clone()
        }
    }

    fn render(model: &Model, ch: &mut Chooser) -> RawBson {
        let render_pairs = |pairs: &[(String, Model)], ch: &mut Chooser| {
            let mut d = RawDocumentBuf::new();
            for (k, v) in pairs {
                d.append(CString::try_from(k.as_str()).unwrap(), render(v, ch));
            }
            d
        };
        match model {
            Model::MinKey => RawBson::MinKey,
            Model::Undefined => RawBson::Undefined,
            Model::Null => RawBson::Null,
            Model::MaxKey => RawBson::MaxKey,
            Model::Number(n) => ch.pick(&render_number(n)),
            Model::Text(s) => ch.pick(&[string(s), symbol(s)]),
            Model::Code(s) => code(s),
            Model::CodeWithScope(s, scope) => RawBson::JavaScriptCodeWithScope(RawJavaScriptCodeWithScope {
                code: s.clone(),
                scope: render_pairs(scope, ch),
            }),
            Model::Binary(subtype, bytes) => bin(*subtype, bytes),
            Model::ObjectId(bytes) => oid(*bytes),
            Model::Bool(b) => RawBson::Boolean(*b),
            Model::Date(ms) => date(*ms),
            Model::Timestamp(t, i) => ts(*t, *i),
            Model::Regex(p, o) => regex(p, o),
            Model::DbPointer(ns, id) => db_pointer(ns, *id),
            Model::Document(pairs) => RawBson::Document(render_pairs(pairs, ch)),
            Model::Array(items) => {
                let mut a = RawArrayBuf::new();
                for v in items {
                    a.push(render(v, ch));
                }
                RawBson::Array(a)
            }
        }
    }

    /// Every decimal128 cohort member of ±c × 10^e that fits (c trimmed of, or padded with,
    /// trailing zeros), plus int64/int32 when the value is an integer in range.
    fn decimal_renderings(negative: bool, coefficient: u128, exponent: i32) -> Vec<RawBson> {
        let mut out = Vec::new();
        let fits = |c: u128, e: i32| c <= exact::decimal128::MAX_COEFFICIENT && (-6176..=6111).contains(&e);
        if fits(coefficient, exponent) {
            out.push(dec_parts(negative, coefficient, exponent));
        }
        if coefficient == 0 {
            return out;
        }
        let (mut c, mut e) = (coefficient, exponent);
        while c % 10 == 0 {
            c /= 10;
            e += 1;
        }
        for pad in 0..4u32 {
            if let Some(cp) = c.checked_mul(10u128.pow(pad))
                && fits(cp, e - pad as i32)
            {
                out.push(dec_parts(negative, cp, e - pad as i32));
            }
        }
        if (0..=18).contains(&e)
            && let Some(v) = c.checked_mul(10u128.pow(e as u32)).and_then(|v| i128::try_from(v).ok())
            && let Ok(v) = i64::try_from(if negative { -v } else { v })
        {
            out.push(long(v));
            if let Ok(v) = i32::try_from(v) {
                out.push(int(v));
            }
        }
        out
    }

    fn render_number(n: &NumberModel) -> Vec<RawBson> {
        match *n {
            NumberModel::Integer(i) => {
                let mut out = vec![long(i)];
                if let Ok(v) = i32::try_from(i) {
                    out.push(int(v));
                }
                if (i as f64) as i128 == i128::from(i) {
                    out.push(dbl(i as f64));
                }
                out.extend(decimal_renderings(i < 0, u128::from(i.unsigned_abs()), 0));
                out
            }
            NumberModel::Double(f) if !f.is_finite() || f == 0.0 => vec![dbl(f)],
            NumberModel::Double(f) => {
                let mut out = vec![dbl(f)];
                if let Exact::Finite(n, p, _) = exact(RawBsonRef::Double(f)) {
                    // n × 2^p = n × 5^-p × 10^p when p < 0
                    let (coefficient, exponent) = if p >= 0 {
                        (n.magnitude() << (p as usize), 0)
                    } else {
                        (n.magnitude() * BigInt::from(5).pow((-p) as u32).magnitude(), p)
                    };
                    if let Ok(c) = u128::try_from(&BigInt::from(coefficient)) {
                        out.extend(decimal_renderings(f < 0.0, c, exponent as i32));
                    }
                }
                out
            }
            NumberModel::Decimal(negative, coefficient, exponent) => {
                let out = decimal_renderings(negative, coefficient, exponent);
                if out.is_empty() {
                    vec![dec_parts(negative, coefficient % 1000, exponent.clamp(-6176, 6111))]
                } else {
                    out
                }
            }
            NumberModel::NaN => vec![
                dbl(f64::NAN),
                dbl(-f64::NAN),
                dbl(f64::from_bits(0x7FF0_0000_0000_0001)),
                dbl(f64::from_bits(0xFFF8_0000_0000_1234)),
                dec_bits(0x7C00 << 112),
                dec_bits(0x7E00 << 112),
                dec_bits((0xFC00 << 112) | 99),
            ],
            NumberModel::Infinity(negative) => {
                let sign = u128::from(negative) << 127;
                vec![
                    dbl(if negative { f64::NEG_INFINITY } else { f64::INFINITY }),
                    dec_bits(sign | (0x7800 << 112)),
                    dec_bits(sign | (0x7A00 << 112) | 777),
                ]
            }
            NumberModel::Zero => vec![
                int(0),
                long(0),
                dbl(0.0),
                dbl(-0.0),
                dec_parts(false, 0, 0),
                dec_parts(true, 0, -6176),
                dec_parts(false, 0, 6111),
                dec_bits(0x6000 << 112),
                dec_bits((1 << 127) | (0x6FFF << 112) | 5),
                dec_bits((6176u128 << 113) | (exact::decimal128::MAX_COEFFICIENT + 1)),
                dec_bits((1u128 << 113) - 1),
            ],
            NumberModel::DoubleBits(bits) => vec![dbl(f64::from_bits(bits))],
            NumberModel::DecimalBits(bits) => vec![dec_bits(bits)],
        }
    }

    const INT_EDGES: &[i64] = &[
        0,
        1,
        -1,
        10,
        100,
        i32::MIN as i64,
        i32::MAX as i64,
        (1 << 53) - 1,
        1 << 53,
        (1 << 53) + 1,
        -(1 << 53) - 1,
        (1 << 54) + 2,
        1 << 62,
        i64::MAX,
        i64::MAX - 1,
        i64::MIN,
        i64::MIN + 1,
        1_000_000_000_000_000_000,
        9_223_372_036_854_774_784, // the largest double below 2^63
        9_223_372_036_854_775_000,
    ];

    const DOUBLE_EDGES: &[f64] = &[
        0.1,
        0.5,
        1.0,
        1.5,
        -2.5,
        123.456,
        1e22,
        1e23,
        9_007_199_254_740_992.0,
        9_007_199_254_740_994.0,
        9_223_372_036_854_775_808.0,
        -9_223_372_036_854_775_808.0,
        18_446_744_073_709_551_616.0,
        f64::MAX,
        -f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
        -5e-324,
        1e-300,
        1e300,
        f64::EPSILON,
        1.0 + f64::EPSILON,
    ];

    const COEFFICIENT_EDGES: &[u128] = &[
        exact::decimal128::MAX_COEFFICIENT,
        1_000_000_000_000_000_000_000_000_000_000_000,
        9_007_199_254_740_992,
        9_007_199_254_740_993,
        9_223_372_036_854_775_808,
        18_446_744_073_709_551_616,
        4_940_656_458_412_465_441_765_687_928_682_213,
        1_797_693_134_862_315_708_145_274_237_317_043,
    ];

    fn arb_double() -> impl Strategy<Value = f64> {
        prop_oneof![
            2 => prop::sample::select(DOUBLE_EDGES),
            2 => (-64i64..64, 0u32..12).prop_map(|(n, j)| n as f64 / (1u64 << j) as f64),
            1 => prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::POSITIVE | prop::num::f64::NEGATIVE,
        ]
    }

    /// A decimal close to a double: its shortest round-trip digits (nudged by one unit in the last
    /// place) or its exact value cut to 34 digits (plus one), where exactness is hardest to judge.
    fn near_double_decimal(f: f64, variant: u8) -> NumberModel {
        let negative = f < 0.0;
        let (coefficient, exponent) = match variant % 2 {
            0 => {
                let text = format!("{:e}", f.abs());
                let (mantissa, e) = text.split_once('e').unwrap();
                let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
                let c: u128 = format!("{whole}{fraction}").parse().unwrap();
                (c, e.parse::<i32>().unwrap() - fraction.len() as i32)
            }
            _ => match exact(RawBsonRef::Double(f.abs())) {
                Exact::Finite(n, p, _) if p < 0 => {
                    let digits = (n * BigInt::from(5).pow((-p) as u32)).to_string();
                    let kept = digits.len().min(34);
                    let c: u128 = digits[..kept].parse().unwrap();
                    (c, p as i32 + (digits.len() - kept) as i32)
                }
                _ => (f.abs().min(1e30) as u128, 0),
            },
        };
        let coefficient = match variant % 3 {
            0 => coefficient,
            1 => coefficient.saturating_add(1).min(exact::decimal128::MAX_COEFFICIENT),
            _ => coefficient.saturating_sub(1),
        };
        NumberModel::Decimal(negative, coefficient, exponent)
    }

    fn arb_number() -> impl Strategy<Value = NumberModel> {
        let coefficient = prop_oneof![
            0u128..20,
            0u128..1_000_000,
            any::<u64>().prop_map(u128::from),
            0u128..=exact::decimal128::MAX_COEFFICIENT,
            prop::sample::select(COEFFICIENT_EDGES),
        ];
        let exponent = prop_oneof![
            -6i32..6,
            -40i32..40,
            -6176i32..=6111,
            prop::sample::select(&[-6176, 6111, -6143, -358, -340, -324, -308, 290, 308, 309][..]),
        ];
        prop_oneof![
            3 => prop_oneof![-20i64..20, any::<i64>(), any::<i32>().prop_map(i64::from), prop::sample::select(INT_EDGES)]
                .prop_map(NumberModel::Integer),
            3 => arb_double().prop_map(NumberModel::Double),
            3 => (any::<bool>(), coefficient, exponent).prop_map(|(s, c, e)| NumberModel::Decimal(s, c, e)),
            3 => (arb_double(), any::<u8>()).prop_map(|(f, v)| near_double_decimal(f, v)),
            1 => Just(NumberModel::NaN),
            1 => any::<bool>().prop_map(NumberModel::Infinity),
            1 => Just(NumberModel::Zero),
            1 => any::<u64>().prop_map(NumberModel::DoubleBits),
            1 => any::<u128>().prop_map(NumberModel::DecimalBits),
        ]
    }

    fn arb_text() -> impl Strategy<Value = String> {
        let ch = prop_oneof![
            Just('\0'),
            Just('\u{1}'),
            Just('a'),
            Just('b'),
            Just('\u{7f}'),
            Just('é'),
            Just('\u{ffff}'),
            Just('😀'),
            any::<char>(),
        ];
        prop::collection::vec(ch, 0..4).prop_map(|cs| cs.into_iter().collect())
    }

    /// Text for C strings (keys, regexes, namespaces): no NUL.
    fn arb_c_text() -> impl Strategy<Value = String> {
        arb_text().prop_map(|s| s.replace('\0', "z"))
    }

    fn arb_key() -> impl Strategy<Value = String> {
        prop_oneof![3 => prop::sample::select(&["", "a", "b", "ab", "a\u{1}", "é"][..]).prop_map(String::from), 1 => arb_c_text()]
    }

    fn arb_oid() -> impl Strategy<Value = [u8; 12]> {
        prop::array::uniform12(prop::sample::select(&[0u8, 1, 0xFF][..]))
    }

    fn arb_leaf() -> impl Strategy<Value = Model> {
        prop_oneof![
            6 => arb_number().prop_map(Model::Number),
            3 => arb_text().prop_map(Model::Text),
            1 => prop::sample::select(vec![Model::MinKey, Model::Undefined, Model::Null, Model::MaxKey]),
            1 => arb_text().prop_map(Model::Code),
            1 => (
                prop::sample::select(&[0u8, 1, 2, 3, 4, 5, 0x80][..]),
                prop::collection::vec(prop::sample::select(&[0u8, 1, 0xFF][..]), 0..6)
            )
                .prop_map(|(s, b)| Model::Binary(s, b)),
            1 => arb_oid().prop_map(Model::ObjectId),
            1 => any::<bool>().prop_map(Model::Bool),
            1 => prop_oneof![-3i64..3, any::<i64>(), prop::sample::select(&[i64::MIN, i64::MAX][..])].prop_map(Model::Date),
            1 => (
                prop::sample::select(&[0u32, 1, 0x7FFF_FFFF, 0x8000_0000, u32::MAX][..]),
                prop::sample::select(&[0u32, 1, 0x8000_0000, u32::MAX][..])
            )
                .prop_map(|(t, i)| Model::Timestamp(t, i)),
            1 => (arb_c_text(), prop::sample::select(&["", "i", "im", "s", "imsx"][..]))
                .prop_map(|(p, o)| Model::Regex(p, o.to_owned())),
            1 => (arb_c_text(), arb_oid()).prop_map(|(ns, id)| Model::DbPointer(ns, id)),
        ]
    }

    fn arb_model() -> impl Strategy<Value = Model> {
        arb_leaf().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                2 => prop::collection::vec((arb_key(), inner.clone()), 0..4).prop_map(Model::Document),
                2 => prop::collection::vec(inner.clone(), 0..4).prop_map(Model::Array),
                1 => (arb_text(), prop::collection::vec((arb_key(), inner), 0..3))
                    .prop_map(|(c, scope)| Model::CodeWithScope(c, scope)),
            ]
        })
    }

    fn check_order(a: &RawBson, b: &RawBson) -> Result<(), TestCaseError> {
        let expected = reference_compare(a.as_raw_bson_ref(), b.as_raw_bson_ref());
        // Two independent transcriptions of mongod's order must agree: this reference and the
        // query layer's comparator, which sorts and filters with it.
        let query_order = crate::query::compare_values(a.as_raw_bson_ref(), b.as_raw_bson_ref());
        prop_assert_eq!(query_order, expected, "query::compare_values disagrees on {:?} vs {:?}", a, b);
        let (ea, eb) = (enc(a), enc(b));
        prop_assert_eq!(ea.cmp(&eb), expected, "{:?} ({}) vs {:?} ({})", a, hex(&ea), b, hex(&eb));
        prop_assert_eq!(enc_desc(a).cmp(&enc_desc(b)), expected.reverse());
        if expected == Ordering::Equal {
            prop_assert_eq!(ea, eb);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn keys_memcmp_order_matches_reference_for_any_values(
            a in arb_model(), b in arb_model(), sa in any::<u64>(), sb in any::<u64>()
        ) {
            check_order(&render(&a, &mut Chooser(sa)), &render(&b, &mut Chooser(sb)))?;
        }

        #[test]
        fn keys_memcmp_order_matches_reference_for_numbers(
            a in arb_number(), b in arb_number(), sa in any::<u64>(), sb in any::<u64>()
        ) {
            let a = render(&Model::Number(a), &mut Chooser(sa));
            let b = render(&Model::Number(b), &mut Chooser(sb));
            check_order(&a, &b)?;
        }

        #[test]
        fn keys_numbers_order_exactly_against_their_nearest_neighbours(n in arb_number(), seed in any::<u64>()) {
            // Random pairs are rarely within one unit in the last place of each other, where
            // truncation and exactness are decided: compare each number with the doubles around
            // it, the int64 values around it, and the 34-digit decimals just above and below.
            let value = render(&Model::Number(n), &mut Chooser(seed));
            let Exact::Finite(..) = exact(value.as_raw_bson_ref()) else { return Ok(()) };
            let text = match &value {
                RawBson::Decimal128(d) => d.to_string(),
                RawBson::Double(f) => format!("{f:e}"),
                RawBson::Int32(i) => i.to_string(),
                RawBson::Int64(i) => i.to_string(),
                other => panic!("not a number: {other:?}"),
            };
            let nearest: f64 = text.parse().unwrap();
            let mut neighbours = Vec::new();
            for f in [nearest, nearest.next_down(), nearest.next_up(), nearest.next_down().next_down(), nearest.next_up().next_up()] {
                neighbours.push(dbl(f));
                if f.is_finite() && f.abs() < 9.3e18 {
                    let i = f as i64;
                    neighbours.extend([long(i), long(i.saturating_add(1)), long(i.saturating_sub(1))]);
                }
            }
            if let Exact::Finite(n, 0, q) = parse_decimal(&text.replace('e', "E")) {
                // n × 10^q padded to 34 digits, then one unit up and down in the last digit.
                let digits = n.magnitude().to_string();
                let pad = 34usize.saturating_sub(digits.len());
                let c: u128 = format!("{digits}{}", "0".repeat(pad)).parse().unwrap();
                let e = q as i32 - pad as i32;
                for c in [c.saturating_sub(1), c, c.saturating_add(1)] {
                    neighbours.extend(decimal_renderings(text.starts_with('-'), c, e).into_iter().take(1));
                }
            }
            for other in &neighbours {
                check_order(&value, other)?;
            }
        }

        #[test]
        fn keys_equal_values_encode_to_identical_bytes(m in arb_model(), sa in any::<u64>(), sb in any::<u64>()) {
            let a = render(&m, &mut Chooser(sa));
            let b = render(&m, &mut Chooser(sb));
            prop_assert_eq!(reference_compare(a.as_raw_bson_ref(), b.as_raw_bson_ref()), Ordering::Equal);
            prop_assert_eq!(hex(&enc(&a)), hex(&enc(&b)), "{:?} vs {:?}", a, b);
        }

        #[test]
        fn keys_tuples_order_lexicographically(
            first in arb_model(), other_first in arb_model(), second_a in arb_model(), second_b in arb_model(),
            same_first in any::<bool>(), descending_second in any::<bool>(), seeds in any::<[u64; 4]>()
        ) {
            let a1 = render(&first, &mut Chooser(seeds[0]));
            let b1 = render(if same_first { &first } else { &other_first }, &mut Chooser(seeds[1]));
            let a2 = render(&second_a, &mut Chooser(seeds[2]));
            let b2 = render(&second_b, &mut Chooser(seeds[3]));
            let second = |v: &RawBson| if descending_second { enc_desc(v) } else { enc(v) };
            let ta = [enc(&a1), second(&a2)].concat();
            let tb = [enc(&b1), second(&b2)].concat();
            let mut expected_second = reference_compare(a2.as_raw_bson_ref(), b2.as_raw_bson_ref());
            if descending_second {
                expected_second = expected_second.reverse();
            }
            let expected = reference_compare(a1.as_raw_bson_ref(), b1.as_raw_bson_ref()).then(expected_second);
            prop_assert_eq!(ta.cmp(&tb), expected, "({:?}, {:?}) vs ({:?}, {:?})", a1, a2, b1, b2);
        }

        #[test]
        fn keys_encoding_never_panics_on_malformed_documents(
            elements in prop::collection::vec(
                (prop::sample::select(&[1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 0x7F, 0xFF, 0x42][..]),
                 prop::collection::vec(any::<u8>(), 0..12)),
                0..5,
            )
        ) {
            let mut body = Vec::new();
            for (kind, payload) in &elements {
                body.push(*kind);
                body.extend_from_slice(b"k\0");
                body.extend_from_slice(payload);
            }
            body.push(0);
            // The bytes as a top-level document, then as an embedded document and array.
            let inner = [((body.len() + 4) as i32).to_le_bytes().as_slice(), &body].concat();
            let mut outer_body = vec![0x03, b'd', 0];
            outer_body.extend_from_slice(&inner);
            outer_body.extend_from_slice(&[0x04, b'a', 0]);
            outer_body.extend_from_slice(&inner);
            outer_body.push(0);
            let outer = [((outer_body.len() + 4) as i32).to_le_bytes().as_slice(), &outer_body].concat();
            for bytes in [&inner, &outer] {
                if let Ok(doc) = RawDocument::from_bytes(bytes) {
                    let mut out = Vec::new();
                    encode_value(RawBsonRef::Document(doc), &mut out);
                    encode_descending(RawBsonRef::Document(doc), &mut out);
                    prop_assert_eq!(out.first(), Some(&OBJECT));
                }
            }
        }
    }
}
