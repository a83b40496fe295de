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

use bson::raw::RawIter;
use bson::{Decimal128, RawBsonRef};

use crate::query::elements::db_pointer_parts;
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

pub use crate::query::hashed::StringKey;

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
mod tests;
