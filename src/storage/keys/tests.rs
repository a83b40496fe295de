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
    i32::from(crate::query::order::canonical_type(v)) - 1
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
                    assert_eq!(
                        ea.cmp(&eb),
                        expected,
                        "encoding: {a:?} ({}) vs {b:?} ({})",
                        hex::encode(&ea),
                        hex::encode(&eb)
                    );
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
    assert_eq!(hex::encode(&out), hex::encode(enc(&doc(&[("a", int(1))]))));
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
        let actual = hex::encode(enc(&value));
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
    prop_assert_eq!(ea.cmp(&eb), expected, "{:?} ({}) vs {:?} ({})", a, hex::encode(&ea), b, hex::encode(&eb));
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
        prop_assert_eq!(hex::encode(enc(&a)), hex::encode(enc(&b)), "{:?} vs {:?}", a, b);
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
