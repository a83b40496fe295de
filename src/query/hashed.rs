//! The hash a hashed index stores (and `$toHashedIndexKey` returns): mongod's
//! `BSONElementHasher::hash64` with seed 0, so
//! `returnKey`, explain bounds and data moved between mongod and Monarch (mongodump, a
//! hashed shard key computed by a driver or by `convertShardKeyToHashed`) agree.
//!
//! mongod feeds MD5 with, in order: the seed (an `i32`, little-endian), then the element:
//! - its canonical type (mongod's `canonicalizeBSONType`, an `i32`, little-endian);
//! - for a number of any type, the value squashed to an `i64` (little-endian) the way
//!   `safeNumberLongForHash` does: doubles truncated toward zero, decimals rounded half to
//!   even, NaN as 0, values past the `i64` range clamped (except the double 2^63, which
//!   becomes `i64::MIN`, as old casts did);
//! - for a document, an array or code with scope: the code's bytes with their NUL (code with
//!   scope only), then each element as above preceded by its field name and NUL, then the
//!   end-of-object marker (canonical type 0, nothing more);
//! - for every other type, the value's bytes as BSON stores them (a string's length prefix,
//!   bytes and NUL; nothing for null, undefined, MinKey and MaxKey).
//!
//! The hash is the first 8 bytes of the digest, read little-endian. Under a collation a string
//! is hashed as a string holding its collation key, as mongod does; the keys are this
//! server's, so hashes of strings under a collation are not mongod's.

use bson::RawBsonRef;
use bson::raw::RawDocument;
use md5::{Digest, Md5};

use super::elements::db_pointer_parts;

/// Writes the collation key of a string (the bytes whose order is the collation's).
pub type StringKey<'k> = &'k dyn Fn(&str, &mut Vec<u8>);

/// The seed of hashed indexes (mongod's `BSONElementHasher::DEFAULT_HASH_SEED`).
pub const DEFAULT_SEED: i32 = 0;

/// Nesting past which documents are not walked further: mongod accepts no BSON deeper than
/// 200 levels, stored documents hold at most 100, and a hostile query value must not exhaust
/// the stack.
const MAX_DEPTH: usize = 200;

/// mongod's `BSONElementHasher::hash64(value, seed)`, strings first turned into their
/// collation key by `strings` when given.
pub fn hash64(value: RawBsonRef<'_>, seed: i32, strings: Option<StringKey<'_>>) -> i64 {
    let mut md5 = Md5::new();
    md5.update(seed.to_le_bytes());
    md5.update(canonical_type(value).to_le_bytes());
    payload(&mut md5, value, strings, 0);
    let digest = md5.finalize();
    let mut first = [0u8; 8];
    for (to, from) in first.iter_mut().zip(digest.iter()) {
        *to = *from;
    }
    i64::from_le_bytes(first)
}

/// mongod's `canonicalizeBSONType`: one number per comparison bracket
/// (the query order's bracket, which shifts it by one to fit MinKey in a `u8`).
fn canonical_type(value: RawBsonRef<'_>) -> i32 {
    i32::from(crate::query::order::canonical_type(value)) - 1
}

/// Hashes what follows a value's canonical type (and field name, inside a document).
fn payload(md5: &mut Md5, value: RawBsonRef<'_>, strings: Option<StringKey<'_>>, depth: usize) {
    match value {
        RawBsonRef::MinKey | RawBsonRef::MaxKey | RawBsonRef::Null | RawBsonRef::Undefined => {}
        RawBsonRef::Double(_) | RawBsonRef::Int32(_) | RawBsonRef::Int64(_) | RawBsonRef::Decimal128(_) => {
            md5.update(number_for_hash(value).to_le_bytes());
        }
        RawBsonRef::String(s) | RawBsonRef::Symbol(s) => match strings {
            Some(sort_key) => {
                let mut key = Vec::new();
                sort_key(s, &mut key);
                string_bytes(md5, &key);
            }
            None => string_bytes(md5, s.as_bytes()),
        },
        RawBsonRef::JavaScriptCode(code) => string_bytes(md5, code.as_bytes()),
        RawBsonRef::Document(doc) => fields(md5, doc, strings, depth),
        RawBsonRef::Array(array) => match RawDocument::from_bytes(array.as_bytes()) {
            Ok(doc) => fields(md5, doc, strings, depth),
            Err(_) => md5.update(0i32.to_le_bytes()),
        },
        RawBsonRef::JavaScriptCodeWithScope(code) => {
            md5.update(code.code.as_bytes());
            md5.update([0]);
            fields(md5, code.scope, strings, depth);
        }
        RawBsonRef::Binary(binary) => {
            let subtype = u8::from(binary.subtype);
            // The old subtype 2 stores an inner length too, which the bson crate strips.
            let inner = if subtype == 2 { 4 } else { 0 };
            let len = i32::try_from(binary.bytes.len() + inner).unwrap_or(i32::MAX);
            md5.update(len.to_le_bytes());
            md5.update([subtype]);
            if subtype == 2 {
                md5.update(i32::try_from(binary.bytes.len()).unwrap_or(i32::MAX).to_le_bytes());
            }
            md5.update(binary.bytes);
        }
        RawBsonRef::ObjectId(id) => md5.update(id.bytes()),
        RawBsonRef::Boolean(b) => md5.update([u8::from(b)]),
        RawBsonRef::DateTime(date) => md5.update(date.timestamp_millis().to_le_bytes()),
        RawBsonRef::Timestamp(ts) => {
            // Stored as one little-endian u64: the increment in the low half.
            md5.update(ts.increment.to_le_bytes());
            md5.update(ts.time.to_le_bytes());
        }
        RawBsonRef::RegularExpression(regex) => {
            md5.update(regex.pattern.as_str().as_bytes());
            md5.update([0]);
            md5.update(regex.options.as_str().as_bytes());
            md5.update([0]);
        }
        RawBsonRef::DbPointer(pointer) => {
            if let Some((namespace, id)) = db_pointer_parts(pointer) {
                string_bytes(md5, &namespace);
                md5.update(id);
            }
        }
    }
}

/// A string's BSON value bytes: length with the NUL (i32, little-endian), bytes, NUL.
fn string_bytes(md5: &mut Md5, bytes: &[u8]) {
    md5.update(i32::try_from(bytes.len() + 1).unwrap_or(i32::MAX).to_le_bytes());
    md5.update(bytes);
    md5.update([0]);
}

/// Each element with its name, then the end-of-object marker.
fn fields(md5: &mut Md5, doc: &RawDocument, strings: Option<StringKey<'_>>, depth: usize) {
    let items = doc.into_iter().take(if depth < MAX_DEPTH { usize::MAX } else { 0 });
    for item in items {
        // Stored documents were validated on the way in; a malformed tail ends the walk.
        let Ok((name, value)) = item else { break };
        md5.update(canonical_type(value).to_le_bytes());
        md5.update(name.as_str().as_bytes());
        md5.update([0]);
        payload(md5, value, strings, depth + 1);
    }
    // EOO: canonical type 0, an empty name, no value.
    md5.update(0i32.to_le_bytes());
}

/// A number squashed to an `i64` as mongod's `safeNumberLongForHash`.
fn number_for_hash(value: RawBsonRef<'_>) -> i64 {
    // 2^63, the first double past `i64::MAX`.
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    match value {
        RawBsonRef::Int32(n) => i64::from(n),
        RawBsonRef::Int64(n) => n,
        RawBsonRef::Double(d) if d.is_nan() => 0,
        // Kept from mongod's older cast, which wrapped 2^63 around.
        RawBsonRef::Double(d) if d == TWO_POW_63 => i64::MIN,
        RawBsonRef::Double(d) if d > TWO_POW_63 => i64::MAX,
        RawBsonRef::Double(d) if d < -TWO_POW_63 => i64::MIN,
        // In range: truncation toward zero, as a C++ cast.
        RawBsonRef::Double(d) => d as i64,
        RawBsonRef::Decimal128(d) => {
            let bits = u128::from_le_bytes(d.bytes());
            let nan = (bits >> 122) & 0x1f == 0x1f;
            let negative = bits >> 127 == 1;
            match crate::query::decimal_to_i64(d) {
                _ if nan => 0,
                Some(n) => n,
                // Infinite or past the range: clamped by sign.
                None if negative => i64::MIN,
                None => i64::MAX,
            }
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use bson::oid::ObjectId;
    use bson::spec::BinarySubtype;
    use bson::{Binary, Bson, DateTime, Decimal128, Document, JavaScriptCodeWithScope, Regex, Timestamp, doc};

    use super::*;

    /// mongod's `hashIt`: the hash of the first element of `{check: value}`, seed 0.
    fn hash(value: impl Into<Bson>) -> i64 {
        let value: Bson = value.into();
        let raw = bson::RawBson::try_from(value).unwrap();
        hash64(raw.as_raw_bson_ref(), DEFAULT_SEED, None)
    }

    fn decimal(s: &str) -> Bson {
        Bson::Decimal128(s.parse::<Decimal128>().unwrap())
    }

    // Every expected value below is from mongod's src/mongo/db/hasher_test.cpp ("determined
    // experimentally", pinned there so the hash never changes across versions).

    #[test]
    fn hashed_numbers_match_mongod() {
        for value in [Bson::Int32(42), Bson::Double(42.123), Bson::Int64(42)] {
            assert_eq!(hash(value), -944_302_157_085_130_861);
        }
        for value in [Bson::Int32(0), Bson::Double(0.456), Bson::Int64(0), Bson::Double(f64::NAN)] {
            assert_eq!(hash(value), 4_854_801_880_128_277_513);
        }
        for value in [Bson::Int32(1), Bson::Double(1.987), Bson::Int64(1)] {
            assert_eq!(hash(value), 5_902_408_780_260_971_510);
        }
        for value in [Bson::Int32(-1), Bson::Double(-1.789), Bson::Int64(-1)] {
            assert_eq!(hash(value), 1_140_205_862_565_771_219);
        }
        for value in [Bson::Int32(i32::MIN), Bson::Double(f64::from(i32::MIN)), Bson::Int64(i64::from(i32::MIN))] {
            assert_eq!(hash(value), 6_165_898_260_261_354_870);
        }
        for value in [Bson::Int32(i32::MAX), Bson::Double(f64::from(i32::MAX)), Bson::Int64(i64::from(i32::MAX))] {
            assert_eq!(hash(value), 1_143_184_177_162_245_883);
        }
        assert_eq!(hash(f64::MAX), 921_523_596_458_303_250);
        assert_eq!(hash(i64::MAX), 921_523_596_458_303_250);
        assert_eq!(hash(-f64::MAX), 4_532_067_210_535_695_462);
        assert_eq!(hash(i64::MIN), 4_532_067_210_535_695_462);
        // safeNumberLongForHash: the double 2^63 wraps to i64::MIN, as mongod's old cast did.
        assert_eq!(hash(9_223_372_036_854_775_808.0_f64), hash(i64::MIN));
        // Decimals round half to even (Decimal128::toLong), doubles truncate.
        assert_eq!(hash(decimal("42")), hash(42));
        assert_eq!(hash(decimal("41.5")), hash(42));
        assert_eq!(hash(decimal("42.5")), hash(42));
        assert_eq!(hash(decimal("NaN")), hash(0));
        assert_eq!(hash(decimal("Infinity")), hash(i64::MAX));
        assert_eq!(hash(decimal("-Infinity")), hash(i64::MIN));
        assert_eq!(hash(decimal("1E+30")), hash(i64::MAX));
    }

    #[test]
    fn hashed_other_types_match_mongod() {
        assert_eq!(hash(Bson::MinKey), 7_961_148_599_568_647_290);
        assert_eq!(hash(Bson::MaxKey), 5_504_842_513_779_440_750);
        assert_eq!(hash(Bson::Undefined), 40_158_834_000_849_533);
        assert_eq!(hash(Bson::Null), 2_338_878_944_348_059_895);
        assert_eq!(hash("abc"), 8_478_485_326_885_698_097);
        assert_eq!(hash(Bson::Symbol("abc".into())), 8_478_485_326_885_698_097);
        assert_eq!(hash(""), 2_049_396_243_249_673_340);
        assert_eq!(hash(Bson::Symbol(String::new())), 2_049_396_243_249_673_340);
        assert_eq!(hash(doc! { "a": "abc", "b": 123_i64 }), 4_771_603_801_758_380_216);
        assert_eq!(hash(Document::new()), 7_980_500_913_326_740_417);
        assert_eq!(hash(vec![Bson::from("bar"), Bson::from("baz"), Bson::from("qux")]), -2_938_911_267_422_831_539);
        assert_eq!(hash(Vec::<Bson>::new()), 8_849_948_234_993_459_283);
        let bytes = vec![0, 1, 2, 3, 4, 6];
        assert_eq!(hash(Binary { subtype: BinarySubtype::Generic, bytes: bytes.clone() }), 7_252_465_090_394_235_301);
        assert_eq!(hash(Binary { subtype: BinarySubtype::UserDefined(128), bytes }), 5_736_670_452_907_618_262);
        assert_eq!(hash(Binary { subtype: BinarySubtype::Uuid, bytes: (0..16).collect() }), 6_084_661_258_071_355_978);
        let oid = |hex: &str| ObjectId::parse_str(hex).unwrap();
        assert_eq!(hash(oid("010203040506070809101112")), -5_588_663_249_627_035_708);
        assert_eq!(hash(oid("000000000000000000000000")), -4_293_118_519_463_489_418);
        assert_eq!(hash(true), 6_405_873_908_747_105_701);
        assert_eq!(hash(false), 6_289_544_573_401_934_092);
        assert_eq!(hash(DateTime::from_millis(0x5566_7788_1122_3344)), 4_476_222_765_095_560_467);
        assert_eq!(hash(Timestamp { time: 0x5566_7788, increment: 0x1122_3344 }), 4_873_046_866_288_452_390);
        assert_eq!(hash(DateTime::from_millis(0)), -1_178_696_894_582_842_035);
        assert_eq!(hash(Timestamp { time: 0, increment: 0 }), -7_867_208_682_377_458_672);
        let regex = Regex { pattern: ".*".to_owned().try_into().unwrap(), options: "i".to_owned().try_into().unwrap() };
        assert_eq!(hash(regex), 7_095_855_029_187_981_886);
        assert_eq!(hash(Bson::JavaScriptCode("func f() { return 1; }".into())), 6_861_638_109_178_014_270);
        let with_scope = JavaScriptCodeWithScope { code: "func f() { return 1; }".into(), scope: doc! { "c": true } };
        assert_eq!(hash(with_scope), 501_342_939_894_575_968);
    }

    /// `{check: DBPointer(ns, 010203040506070809101112)}` as bytes (the bson crate builds no
    /// DBPointer), hashed as mongod's `BSONDBRef` test does.
    fn db_pointer_hash(ns: &str) -> i64 {
        let mut element = vec![0x0C];
        element.extend_from_slice(b"check\0");
        element.extend_from_slice(&i32::try_from(ns.len() + 1).unwrap().to_le_bytes());
        element.extend_from_slice(ns.as_bytes());
        element.push(0);
        element.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 0x10, 0x11, 0x12]);
        let mut bytes = i32::try_from(4 + element.len() + 1).unwrap().to_le_bytes().to_vec();
        bytes.extend_from_slice(&element);
        bytes.push(0);
        let doc = RawDocument::from_bytes(&bytes).unwrap();
        hash64(doc.get("check").unwrap().unwrap(), DEFAULT_SEED, None)
    }

    #[test]
    fn hashed_db_pointer_and_seed_match_mongod() {
        assert_eq!(db_pointer_hash("c"), 940_175_826_736_461_384);
        assert_eq!(db_pointer_hash("db.c"), 2_426_768_198_104_018_194);
        let raw = |value: Bson| bson::RawBson::try_from(value).unwrap();
        assert_eq!(hash64(raw(Bson::Int32(42)).as_raw_bson_ref(), 40513, None), 4_302_929_669_663_179_197);
        let array = raw(Bson::from(vec!["sunflower", "sesame", "mustard"]));
        assert_eq!(hash64(array.as_raw_bson_ref(), 40513, None), -9_222_615_859_251_096_151);
    }

    #[test]
    fn hashed_deep_values_do_not_exhaust_the_stack() {
        // {a: {a: ... {a: 1}}}, 20,000 levels, built as bytes (a tree of that depth would
        // overflow the stack on its own).
        let mut bytes = vec![12, 0, 0, 0, 0x10, b'a', 0, 1, 0, 0, 0, 0];
        for _ in 0..20_000 {
            let mut outer = i32::try_from(4 + 3 + bytes.len() + 1).unwrap().to_le_bytes().to_vec();
            outer.extend_from_slice(&[0x03, b'a', 0]);
            outer.extend_from_slice(&bytes);
            outer.push(0);
            bytes = outer;
        }
        let doc = RawDocument::from_bytes(&bytes).unwrap();
        // Beyond MAX_DEPTH the walk stops: the call returns, whatever the value.
        let _ = hash64(RawBsonRef::Document(doc), DEFAULT_SEED, None);
    }
}
