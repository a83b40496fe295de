//! MongoDB's BSON comparison order, as mongod's `BSONElement::woCompare` has it.
//!
//! Values of different types compare by canonical type bracket first. Inside a bracket:
//! numbers by exact value, strings and symbols by bytes (or under a [`Collation`]), documents
//! field by field (bracket, then field name, then value; a prefix is less), arrays element by
//! element, binData by length then subtype then bytes, timestamps unsigned, dates signed,
//! regexes by pattern then options. Null, undefined, MinKey and MaxKey are equal to anything in their bracket.

use std::cmp::Ordering;

use bson::{RawArray, RawBsonRef, RawDocument};

use super::collation::Collation;
use super::elements::{db_pointer_value, fields, items};
use super::limits::MAX_BSON_DEPTH;
use super::number::{self, Number};

/// The canonical type bracket of `v`: mongod's `canonicalizeBSONType` number plus one, so
/// that MinKey (-1 in mongod) fits a `u8`. Undefined shares bracket 1 with a missing value.
///
/// MinKey 0 < undefined 1 < null 6 < numbers 11 < string, symbol 16 < object 21 < array 26
/// < binData 31 < ObjectId 36 < bool 41 < date 46 < timestamp 48 < regex 51 < dbPointer 56
/// < javascript 61 < javascriptWithScope 66 < MaxKey 128.
pub fn canonical_type(v: RawBsonRef<'_>) -> u8 {
    match v {
        RawBsonRef::MinKey => 0,
        RawBsonRef::Undefined => MISSING_BRACKET,
        RawBsonRef::Null => NULL_BRACKET,
        RawBsonRef::Double(_) | RawBsonRef::Int32(_) | RawBsonRef::Int64(_) | RawBsonRef::Decimal128(_) => 11,
        RawBsonRef::String(_) | RawBsonRef::Symbol(_) => 16,
        RawBsonRef::Document(_) => 21,
        RawBsonRef::Array(_) => 26,
        RawBsonRef::Binary(_) => 31,
        RawBsonRef::ObjectId(_) => 36,
        RawBsonRef::Boolean(_) => 41,
        RawBsonRef::DateTime(_) => 46,
        RawBsonRef::Timestamp(_) => 48,
        RawBsonRef::RegularExpression(_) => 51,
        RawBsonRef::DbPointer(_) => 56,
        RawBsonRef::JavaScriptCode(_) => 61,
        RawBsonRef::JavaScriptCodeWithScope(_) => 66,
        RawBsonRef::MaxKey => 128,
    }
}

/// The bracket of a missing value (mongod's EOO) and of undefined.
pub(crate) const MISSING_BRACKET: u8 = 1;
/// The bracket of null.
pub(crate) const NULL_BRACKET: u8 = 6;

/// Compares two values in MongoDB's BSON order.
pub fn compare_values(a: RawBsonRef<'_>, b: RawBsonRef<'_>) -> Ordering {
    compare_collated(a, b, None)
}

/// Compares two values in MongoDB's BSON order, strings (and symbols, also inside documents
/// and arrays) under `collation`; `None` is the simple collation. Field names always compare
/// by bytes, as in mongod.
pub fn compare_collated(a: RawBsonRef<'_>, b: RawBsonRef<'_>, collation: Option<&Collation>) -> Ordering {
    canonical_type(a).cmp(&canonical_type(b)).then_with(|| compare_in_bracket(a, b, collation, 0))
}

/// Compares two documents field by field: bracket, then field name, then value; a document
/// that is a prefix of the other is less.
pub fn compare_documents(a: &RawDocument, b: &RawDocument) -> Ordering {
    compare_elements(fields(a), fields(b), None, 0)
}

/// Compares two arrays element by element; a prefix is less.
fn compare_arrays(a: &RawArray, b: &RawArray, collation: Option<&Collation>, depth: usize) -> Ordering {
    // Array keys are the positions, equal at equal positions, so only values matter.
    compare_elements(items(a).map(|v| ("", v)), items(b).map(|v| ("", v)), collation, depth)
}

fn compare_elements<'a, 'b>(
    mut a: impl Iterator<Item = (&'a str, RawBsonRef<'a>)>,
    mut b: impl Iterator<Item = (&'b str, RawBsonRef<'b>)>,
    collation: Option<&Collation>,
    depth: usize,
) -> Ordering {
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some((ka, va)), Some((kb, vb))) => {
                let ord = canonical_type(va)
                    .cmp(&canonical_type(vb))
                    .then_with(|| ka.as_bytes().cmp(kb.as_bytes()))
                    .then_with(|| compare_in_bracket(va, vb, collation, depth + 1));
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

/// Compares two values already known to share a bracket; `depth` is how many documents and
/// arrays both are nested in.
fn compare_in_bracket(a: RawBsonRef<'_>, b: RawBsonRef<'_>, collation: Option<&Collation>, depth: usize) -> Ordering {
    use RawBsonRef as V;
    // IMPORTANT: the recursion below goes only as deep as both values nest. Documents within
    // mongod's limits never come near this bound; two nested deeper (stored by an older
    // version) compare by their bytes from here on, a total order that keeps the stack safe.
    let too_deep = depth > MAX_BSON_DEPTH;
    match (a, b) {
        (V::Document(x), V::Document(y)) if too_deep => x.as_bytes().cmp(y.as_bytes()),
        (V::Array(x), V::Array(y)) if too_deep => x.as_bytes().cmp(y.as_bytes()),
        (V::JavaScriptCodeWithScope(x), V::JavaScriptCodeWithScope(y)) if too_deep => {
            x.code.as_bytes().cmp(y.code.as_bytes()).then_with(|| x.scope.as_bytes().cmp(y.scope.as_bytes()))
        }
        (V::String(x) | V::Symbol(x), V::String(y) | V::Symbol(y)) => match collation {
            None => x.as_bytes().cmp(y.as_bytes()),
            Some(collation) => collation.compare_str(x, y),
        },
        (V::Document(x), V::Document(y)) => compare_elements(fields(x), fields(y), collation, depth),
        (V::Array(x), V::Array(y)) => compare_arrays(x, y, collation, depth),
        (V::Binary(x), V::Binary(y)) => declared_len(&x)
            .cmp(&declared_len(&y))
            .then_with(|| u8::from(x.subtype).cmp(&u8::from(y.subtype)))
            .then_with(|| x.bytes.cmp(y.bytes)),
        (V::ObjectId(x), V::ObjectId(y)) => x.bytes().cmp(&y.bytes()),
        (V::Boolean(x), V::Boolean(y)) => x.cmp(&y),
        (V::DateTime(x), V::DateTime(y)) => x.timestamp_millis().cmp(&y.timestamp_millis()),
        // Timestamps compare as one unsigned 64-bit number: seconds high, increment low.
        (V::Timestamp(x), V::Timestamp(y)) => (x.time, x.increment).cmp(&(y.time, y.increment)),
        (V::RegularExpression(x), V::RegularExpression(y)) => x
            .pattern
            .as_str()
            .as_bytes()
            .cmp(y.pattern.as_str().as_bytes())
            .then_with(|| x.options.as_str().as_bytes().cmp(y.options.as_str().as_bytes())),
        (V::DbPointer(x), V::DbPointer(y)) => {
            let (x, y) = (db_pointer_value(x), db_pointer_value(y));
            x.len().cmp(&y.len()).then_with(|| x.cmp(&y))
        }
        (V::JavaScriptCode(x), V::JavaScriptCode(y)) => x.as_bytes().cmp(y.as_bytes()),
        (V::JavaScriptCodeWithScope(x), V::JavaScriptCodeWithScope(y)) => {
            let scope = || compare_elements(fields(x.scope), fields(y.scope), None, depth);
            x.code.as_bytes().cmp(y.code.as_bytes()).then_with(scope)
        }
        _ => match (Number::from_raw(a), Number::from_raw(b)) {
            (Some(x), Some(y)) => number::compare(x, y),
            // Null, undefined, MinKey and MaxKey: one value per bracket.
            _ => Ordering::Equal,
        },
    }
}

/// A binary value's length as mongod compares it: the declared one, which for the old subtype
/// 2 includes the inner length prefix the bson crate strips (4 bytes). Two old binaries of one
/// declared length have equal prefixes, so their bytes compare as mongod's do.
fn declared_len(binary: &bson::RawBinaryRef<'_>) -> usize {
    let prefix = if binary.subtype == bson::spec::BinarySubtype::BinaryOld { 4 } else { 0 };
    binary.bytes.len().saturating_add(prefix)
}

#[cfg(test)]
mod tests;
