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
    Bson::RegularExpression(bson::Regex { pattern: pattern.try_into().unwrap(), options: options.try_into().unwrap() })
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
    assert_eq!(cmp(bin(BinarySubtype::UserDefined(0x80), &[9]), bin(BinarySubtype::Generic, &[0, 0])), Ordering::Less);
    assert_eq!(cmp(bin(BinarySubtype::Generic, &[9]), bin(BinarySubtype::Function, &[0])), Ordering::Less);
    assert_eq!(cmp(bin(BinarySubtype::Generic, &[1]), bin(BinarySubtype::Generic, &[2])), Ordering::Less);
}

/// Found by the `keys` fuzz target: the old binary subtype 2 carries an inner length prefix
/// that the bson crate strips, but mongod (and the index key encoding) compare the declared
/// length, which includes those 4 bytes. `BinData(2, [0])` is 5 bytes long, as long as
/// `BinData(1, [0; 5])`, so the subtype decides: 1 sorts first.
#[test]
fn order_bindata_old_subtype_counts_its_inner_length() {
    let bin = |subtype, bytes: &[u8]| Bson::Binary(Binary { subtype, bytes: bytes.to_vec() });
    assert_eq!(
        cmp(bin(BinarySubtype::Function, &[0, 0, 2, 0, 0]), bin(BinarySubtype::BinaryOld, &[0])),
        Ordering::Less
    );
    assert_eq!(cmp(bin(BinarySubtype::BinaryOld, &[7]), bin(BinarySubtype::Generic, &[0; 4])), Ordering::Greater);
    assert_eq!(cmp(bin(BinarySubtype::BinaryOld, &[]), bin(BinarySubtype::Generic, &[0; 4])), Ordering::Greater);
    assert_eq!(cmp(bin(BinarySubtype::BinaryOld, &[1]), bin(BinarySubtype::BinaryOld, &[2])), Ordering::Less);
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
