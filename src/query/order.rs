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
use super::limits::MAX_BSON_DEPTH;
use super::number::{self, Number};
use super::elements::{db_pointer_value, fields, items};

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
        (V::Binary(x), V::Binary(y)) => x
            .bytes
            .len()
            .cmp(&y.bytes.len())
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

#[cfg(test)]
mod tests {
    use super::*;
    use bson::spec::BinarySubtype;
    use bson::{Binary, Bson, Decimal128, RawBson, RawDocumentBuf, Timestamp, rawdoc};

    fn raw(b: Bson) -> RawBson {
        RawBson::try_from(b).unwrap()
    }

    fn cmp(a: Bson, b: Bson) -> Ordering {
        compare_values(raw(a).as_raw_bson_ref(), raw(b).as_raw_bson_ref())
    }

    fn regex(pattern: &str, options: &str) -> Bson {
        Bson::RegularExpression(bson::Regex {
            pattern: pattern.try_into().unwrap(),
            options: options.try_into().unwrap(),
        })
    }

    fn dec(s: &str) -> Bson {
        Bson::Decimal128(s.parse::<Decimal128>().unwrap())
    }

    #[test]
    fn order_brackets_follow_canonical_types() {
        let ladder = [
            Bson::MinKey,
            Bson::Null,
            Bson::Int32(5),
            Bson::String("a".into()),
            Bson::Document(bson::doc! {}),
            Bson::Array(vec![]),
            Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: vec![] }),
            Bson::ObjectId(bson::oid::ObjectId::from_bytes([0; 12])),
            Bson::Boolean(false),
            Bson::DateTime(bson::DateTime::from_millis(0)),
            Bson::Timestamp(Timestamp { time: 0, increment: 0 }),
            regex("a", ""),
            Bson::JavaScriptCode("x".into()),
            Bson::MaxKey,
        ];
        for pair in ladder.windows(2) {
            assert_eq!(cmp(pair[0].clone(), pair[1].clone()), Ordering::Less, "{:?} < {:?}", pair[0], pair[1]);
        }
    }

    #[test]
    fn order_canonical_type_undefined_below_null() {
        assert_eq!(canonical_type(RawBsonRef::Undefined), 1);
        assert_eq!(canonical_type(RawBsonRef::Null), 6);
        assert_eq!(canonical_type(RawBsonRef::MaxKey), 128);
        assert_eq!(cmp(Bson::Undefined, Bson::Null), Ordering::Less);
    }

    #[test]
    fn order_numbers_mixed_types_by_value() {
        assert_eq!(cmp(Bson::Int32(1), Bson::Double(1.0)), Ordering::Equal);
        assert_eq!(cmp(Bson::Int64(2), Bson::Double(1.5)), Ordering::Greater);
        assert_eq!(cmp(Bson::Double(-0.0), Bson::Int32(0)), Ordering::Equal);
        assert_eq!(cmp(dec("-0"), Bson::Int32(0)), Ordering::Equal);
        assert_eq!(cmp(dec("1.0"), Bson::Int64(1)), Ordering::Equal);
        assert_eq!(cmp(dec("2.50"), Bson::Double(2.5)), Ordering::Equal);
    }

    #[test]
    fn order_numbers_int64_against_double_above_2_pow_53() {
        // 9.223372036854776e18 is 2^63, one above i64::MAX.
        assert_eq!(cmp(Bson::Int64(i64::MAX), Bson::Double(9.223372036854776e18)), Ordering::Less);
        let big = (1i64 << 53) + 1;
        assert_eq!(cmp(Bson::Int64(big), Bson::Double(9007199254740992.0)), Ordering::Greater);
        assert_eq!(cmp(Bson::Int64(1 << 60), Bson::Double(1152921504606846976.0)), Ordering::Equal);
        assert_eq!(cmp(Bson::Int64(i64::MIN), Bson::Double(-9.223372036854776e18)), Ordering::Equal);
        assert_eq!(cmp(Bson::Int64(i64::MIN), Bson::Double(f64::NEG_INFINITY)), Ordering::Greater);
    }

    #[test]
    fn order_numbers_nan_equal_to_nan_and_lowest() {
        assert_eq!(cmp(Bson::Double(f64::NAN), Bson::Double(f64::NAN)), Ordering::Equal);
        assert_eq!(cmp(Bson::Double(f64::NAN), dec("NaN")), Ordering::Equal);
        assert_eq!(cmp(Bson::Double(f64::NAN), Bson::Double(f64::NEG_INFINITY)), Ordering::Less);
        assert_eq!(cmp(dec("NaN"), Bson::Int64(i64::MIN)), Ordering::Less);
        assert_eq!(cmp(dec("NaN"), dec("-Infinity")), Ordering::Less);
        assert_eq!(cmp(Bson::Int32(0), Bson::Double(f64::NAN)), Ordering::Greater);
    }

    #[test]
    fn order_numbers_decimal_extremes() {
        assert_eq!(cmp(dec("1E+400"), Bson::Double(f64::INFINITY)), Ordering::Less);
        assert_eq!(cmp(dec("1E+400"), Bson::Double(f64::MAX)), Ordering::Greater);
        assert_eq!(cmp(dec("Infinity"), Bson::Double(f64::INFINITY)), Ordering::Equal);
        assert_eq!(cmp(dec("9223372036854775807"), Bson::Int64(i64::MAX)), Ordering::Equal);
        assert_eq!(cmp(dec("9223372036854775806.5"), Bson::Int64(i64::MAX)), Ordering::Less);
        assert_eq!(cmp(dec("0.1"), Bson::Double(0.1)), Ordering::Less);
        assert_eq!(cmp(dec("1E-6176"), Bson::Int32(0)), Ordering::Greater);
    }

    #[test]
    fn order_strings_by_bytes_and_symbol_same_bracket() {
        assert_eq!(cmp(Bson::String("B".into()), Bson::String("a".into())), Ordering::Less);
        assert_eq!(cmp(Bson::String("ab".into()), Bson::String("abc".into())), Ordering::Less);
        assert_eq!(cmp(Bson::Symbol("x".into()), Bson::String("x".into())), Ordering::Equal);
    }

    #[test]
    fn order_documents_field_by_field() {
        let a = rawdoc! { "a": 1 };
        let b = rawdoc! { "a": 1, "b": 1 };
        assert_eq!(compare_documents(&a, &b), Ordering::Less);
        // The bracket of the value is compared before the field name.
        let c = rawdoc! { "z": 1 };
        let d = rawdoc! { "a": "x" };
        assert_eq!(compare_documents(&c, &d), Ordering::Less);
        let e = rawdoc! { "a": 1 };
        let f = rawdoc! { "b": 1 };
        assert_eq!(compare_documents(&e, &f), Ordering::Less);
        assert_eq!(compare_documents(&rawdoc! { "a": 1 }, &rawdoc! { "a": 1.0 }), Ordering::Equal);
    }

    #[test]
    fn order_arrays_element_wise() {
        let a = Bson::Array(vec![Bson::Int32(1), Bson::Int32(2)]);
        let b = Bson::Array(vec![Bson::Int32(1), Bson::Int32(3)]);
        let c = Bson::Array(vec![Bson::Int32(1)]);
        assert_eq!(cmp(a.clone(), b), Ordering::Less);
        assert_eq!(cmp(c, a), Ordering::Less);
    }

    #[test]
    fn order_bindata_length_then_subtype_then_bytes() {
        let bin = |subtype, bytes: &[u8]| Bson::Binary(Binary { subtype, bytes: bytes.to_vec() });
        assert_eq!(
            cmp(bin(BinarySubtype::UserDefined(0x80), &[9]), bin(BinarySubtype::Generic, &[0, 0])),
            Ordering::Less
        );
        assert_eq!(cmp(bin(BinarySubtype::Generic, &[9]), bin(BinarySubtype::Function, &[0])), Ordering::Less);
        assert_eq!(cmp(bin(BinarySubtype::Generic, &[1]), bin(BinarySubtype::Generic, &[2])), Ordering::Less);
    }

    #[test]
    fn order_timestamps_unsigned_dates_signed() {
        let ts = |time, increment| Bson::Timestamp(Timestamp { time, increment });
        assert_eq!(cmp(ts(1, 0), ts(u32::MAX, 0)), Ordering::Less);
        assert_eq!(cmp(ts(1, 2), ts(1, 1)), Ordering::Greater);
        let date = |ms| Bson::DateTime(bson::DateTime::from_millis(ms));
        assert_eq!(cmp(date(-1), date(0)), Ordering::Less);
    }

    #[test]
    fn order_regex_pattern_then_options() {
        let re = regex;
        assert_eq!(cmp(re("a", "m"), re("b", "i")), Ordering::Less);
        assert_eq!(cmp(re("a", "i"), re("a", "m")), Ordering::Less);
    }

    #[test]
    fn order_null_equals_null_and_minmax_are_extremes() {
        assert_eq!(cmp(Bson::Null, Bson::Null), Ordering::Equal);
        assert_eq!(cmp(Bson::MaxKey, Bson::MaxKey), Ordering::Equal);
        assert_eq!(cmp(Bson::MinKey, Bson::Double(f64::NAN)), Ordering::Less);
    }

    #[test]
    fn order_documents_deeper_than_any_stack_compare_without_overflow() {
        let a = crate::query::limits::nested_for_tests(100_000);
        let mut bytes = a.as_bytes().to_vec();
        // The innermost value, 1, becomes 2.
        let innermost = bytes.len() - 100_000 - 4;
        bytes[innermost] = 2;
        let b = RawDocumentBuf::from_bytes(bytes).unwrap();
        assert_eq!(compare_documents(&a, &a), Ordering::Equal);
        assert_ne!(compare_values(RawBsonRef::Document(&a), RawBsonRef::Document(&b)), Ordering::Equal);
        // Within mongod's limits, values still compare field by field.
        let shallow = |v: i32| rawdoc! { "a": { "a": { "a": v } } };
        assert_eq!(compare_documents(&shallow(2), &shallow(10)), Ordering::Less);
    }
}
