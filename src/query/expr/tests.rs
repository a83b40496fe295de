use super::*;
use bson::{Bson, DateTime, RawBson, RawBsonRef, bson, doc, rawdoc};

use crate::error::ErrorCode;

/// Parses `expr` and evaluates it against `doc`; an error becomes its code.
pub(super) fn eval(doc: bson::Document, expr: Bson) -> Result<Option<Bson>, i32> {
    let root = bson::RawDocumentBuf::try_from(&doc).unwrap();
    let raw = RawBson::try_from(expr).unwrap();
    let parsed = Expression::parse(raw.as_raw_bson_ref()).map_err(|e| e.code().code())?;
    parsed.evaluate(&root, &Variables::new()).map_err(|e| e.code().code())
}

pub(super) fn err_message(doc: bson::Document, expr: Bson) -> String {
    let root = bson::RawDocumentBuf::try_from(&doc).unwrap();
    let raw = RawBson::try_from(expr).unwrap();
    match Expression::parse(raw.as_raw_bson_ref()) {
        Err(e) => e.message().to_owned(),
        Ok(parsed) => parsed.evaluate(&root, &Variables::new()).unwrap_err().message().to_owned(),
    }
}

/// Runs `(document, expression, expected)` rows; `Err(code)` expects that error code.
pub(super) fn table(rows: Vec<(bson::Document, Bson, Result<Option<Bson>, i32>)>) {
    for (doc, expr, expected) in rows {
        let got = eval(doc.clone(), expr.clone());
        assert_eq!(got, expected, "{expr} on {doc}");
    }
}

pub(super) fn ok(v: Bson) -> Result<Option<Bson>, i32> {
    Ok(Some(v))
}

fn date(ms: i64) -> Bson {
    Bson::DateTime(DateTime::from_millis(ms))
}

#[test]
fn expr_literals_paths_and_variables() {
    let d = doc! { "a": { "b": 1 }, "arr": [ { "x": 1 }, { "y": 2 }, 3, { "x": [4] }, [ { "x": 5 } ] ] };
    table(vec![
        (d.clone(), bson!(5), ok(bson!(5))),
        (d.clone(), bson!("plain"), ok(bson!("plain"))),
        (d.clone(), bson!({ "$literal": "$a" }), ok(bson!("$a"))),
        (d.clone(), bson!({ "$literal": { "$add": 1 } }), ok(bson!({ "$add": 1 }))),
        (d.clone(), bson!("$a.b"), ok(bson!(1))),
        (d.clone(), bson!("$a.c"), Ok(None)),
        (d.clone(), bson!("$a.b.c"), Ok(None)),
        (d.clone(), bson!("$arr.x"), ok(bson!([1, [4]]))),
        (d.clone(), bson!("$arr.0"), ok(bson!([]))),
        (d.clone(), bson!("$$ROOT.a"), ok(bson!({ "b": 1 }))),
        (d.clone(), bson!("$$CURRENT.a.b"), ok(bson!(1))),
        (d.clone(), bson!("$$REMOVE"), Ok(None)),
        (d.clone(), bson!("$$nope"), Err(17276)),
        (d.clone(), bson!("$$Upper"), Err(17276)),
        (d.clone(), bson!("$$_x"), Err(16870)),
        (d.clone(), bson!("$$"), Err(16869)),
        (d.clone(), bson!("$"), Err(16872)),
        (d.clone(), bson!("$a."), Err(40353)),
        (d.clone(), bson!("$a..b"), Err(15998)),
        (d.clone(), bson!("$a.$b"), Err(16410)),
        (d.clone(), bson!({ "k": "$a.b", "gone": "$zzz" }), ok(bson!({ "k": 1 }))),
        (d.clone(), bson!(["$a.b", "$zzz"]), ok(bson!([1, null]))),
        (d.clone(), bson!({ "a.b": 1 }), Err(16412)),
        (d.clone(), bson!({ "$foo": 1 }), Err(168)),
        (d.clone(), bson!({ "$eq": [1, 1], "b": 1 }), Err(15983)),
    ]);
    let root = rawdoc! { "a": 1 };
    let mut vars = Variables::new();
    vars.bind("v", bson!({ "n": [ { "m": 7 } ] })).unwrap();
    let parsed = Expression::parse(RawBsonRef::String("$$v.n.m")).unwrap();
    assert_eq!(parsed.evaluate(&root, &vars), Ok(Some(bson!([7]))));
    let lets = Variables::from_let(&rawdoc! { "x": { "$add": [1, 2] }, "y": "$$x", "gone": "$a" }).unwrap();
    let sum = Expression::parse(RawBson::try_from(bson!({ "$add": ["$$x", "$$y", "$a"] })).unwrap().as_raw_bson_ref());
    assert_eq!(sum.unwrap().evaluate(&root, &lets), Ok(Some(bson!(7))));
    let gone = Expression::parse(RawBsonRef::String("$$gone")).unwrap();
    assert_eq!(gone.evaluate(&root, &lets), Ok(None));
    assert_eq!(Variables::from_let(&rawdoc! { "ROOT": 1 }).unwrap_err().code().code(), 16867);
    assert_eq!(Variables::from_let(&rawdoc! { "": 1 }).unwrap_err().code().code(), 16866);
    assert_eq!(Variables::from_let(&rawdoc! { "x": { "$bad": 1 } }).unwrap_err().code().code(), 168);
    assert_eq!(err_message(doc! {}, bson!({ "$foo": 1 })), "Unrecognized expression '$foo'");
    assert_eq!(
        err_message(doc! {}, bson!({ "$eq": [1, 1], "b": 1 })),
        "An object representing an expression must have exactly one field: { $eq: [ 1, 1 ], b: 1 }"
    );
}

#[test]
fn expr_comparisons_use_bson_order_without_brackets() {
    let d = doc! { "a": 1, "s": "x", "n": null };
    table(vec![
        (d.clone(), bson!({ "$eq": ["$a", 1.0] }), ok(bson!(true))),
        (d.clone(), bson!({ "$ne": ["$a", 1] }), ok(bson!(false))),
        (d.clone(), bson!({ "$gt": ["$s", "$a"] }), ok(bson!(true))),
        (d.clone(), bson!({ "$gte": ["$a", 1] }), ok(bson!(true))),
        (d.clone(), bson!({ "$lt": ["$n", "$a"] }), ok(bson!(true))),
        (d.clone(), bson!({ "$lte": ["$a", 0] }), ok(bson!(false))),
        // Missing is below null and not equal to it.
        (d.clone(), bson!({ "$eq": ["$missing", null] }), ok(bson!(false))),
        (d.clone(), bson!({ "$lt": ["$missing", null] }), ok(bson!(true))),
        (d.clone(), bson!({ "$eq": ["$missing", "$other"] }), ok(bson!(true))),
        (d.clone(), bson!({ "$cmp": ["$a", 2] }), ok(bson!(-1))),
        (d.clone(), bson!({ "$cmp": ["$s", "$a"] }), ok(bson!(1))),
        (d.clone(), bson!({ "$cmp": [[1, 2], [1, 2]] }), ok(bson!(0))),
        (d.clone(), bson!({ "$eq": [1] }), Err(16020)),
        (d.clone(), bson!({ "$eq": 1 }), Err(16020)),
        (d.clone(), bson!({ "$cmp": [1, 2, 3] }), Err(16020)),
    ]);
    assert_eq!(
        err_message(doc! {}, bson!({ "$eq": [1] })),
        "Expression $eq takes exactly 2 arguments. 1 were passed in."
    );
}

#[test]
fn expr_logic_cond_and_if_null() {
    let d = doc! { "t": true, "z": 0, "e": "", "n": null };
    table(vec![
        (d.clone(), bson!({ "$and": [] }), ok(bson!(true))),
        (d.clone(), bson!({ "$and": ["$t", "$e"] }), ok(bson!(true))),
        (d.clone(), bson!({ "$and": ["$t", "$z"] }), ok(bson!(false))),
        (d.clone(), bson!({ "$or": [] }), ok(bson!(false))),
        (d.clone(), bson!({ "$or": ["$n", "$missing", "$t"] }), ok(bson!(true))),
        // Short-circuit: the failing `$divide` is never evaluated.
        (d.clone(), bson!({ "$or": [true, { "$divide": [1, 0] }] }), ok(bson!(true))),
        (d.clone(), bson!({ "$not": ["$z"] }), ok(bson!(true))),
        (d.clone(), bson!({ "$not": "$e" }), ok(bson!(false))),
        (d.clone(), bson!({ "$not": [1, 2] }), Err(16020)),
        (d.clone(), bson!({ "$cond": ["$t", "yes", "no"] }), ok(bson!("yes"))),
        (d.clone(), bson!({ "$cond": { "if": "$z", "then": "yes", "else": "no" } }), ok(bson!("no"))),
        (d.clone(), bson!({ "$cond": { "if": true, "then": "$missing", "else": 1 } }), Ok(None)),
        (d.clone(), bson!({ "$cond": ["$t", 1] }), Err(16020)),
        (d.clone(), bson!({ "$cond": { "then": 1, "else": 2 } }), Err(17080)),
        (d.clone(), bson!({ "$cond": { "if": 1, "else": 2 } }), Err(17081)),
        (d.clone(), bson!({ "$cond": { "if": 1, "then": 2 } }), Err(17082)),
        (d.clone(), bson!({ "$cond": { "if": 1, "then": 2, "else": 3, "x": 4 } }), Err(17083)),
        (d.clone(), bson!({ "$ifNull": ["$n", "$missing", "fallback"] }), ok(bson!("fallback"))),
        (d.clone(), bson!({ "$ifNull": ["$z", "fallback"] }), ok(bson!(0))),
        (d.clone(), bson!({ "$ifNull": ["$n", "$missing"] }), Ok(None)),
        (d.clone(), bson!({ "$ifNull": ["$n"] }), Err(1257300)),
    ]);
}

#[test]
fn expr_add_subtract_multiply_promote_like_mongod() {
    let d = doc! { "i": 2, "l": i64::MAX, "f": 0.5, "d": date(1_000), "s": "x", "n": null };
    table(vec![
        (d.clone(), bson!({ "$add": [] }), ok(bson!(0))),
        (d.clone(), bson!({ "$add": ["$i", 3] }), ok(bson!(5))),
        (d.clone(), bson!({ "$add": [i32::MAX, 1] }), ok(Bson::Int64(i64::from(i32::MAX) + 1))),
        (d.clone(), bson!({ "$add": ["$l", 1] }), ok(Bson::Double(i64::MAX as f64 + 1.0))),
        (d.clone(), bson!({ "$add": ["$i", "$f"] }), ok(bson!(2.5))),
        (d.clone(), bson!({ "$add": ["$i", Bson::Int64(1)] }), ok(Bson::Int64(3))),
        (d.clone(), bson!({ "$add": ["$d", 5, "$f"] }), ok(date(1_006))),
        (d.clone(), bson!({ "$add": ["$d", "$d"] }), Err(16612)),
        (d.clone(), bson!({ "$add": ["$i", "$n"] }), ok(Bson::Null)),
        (d.clone(), bson!({ "$add": ["$i", "$missing"] }), ok(Bson::Null)),
        (d.clone(), bson!({ "$add": ["$s", "$n"] }), Err(14)),
        (d.clone(), bson!({ "$add": [i32::MAX, 1, -1] }), ok(bson!(i32::MAX))),
        (d.clone(), bson!({ "$add": ["$d", Bson::Int64(i64::MAX)] }), Err(15)),
        (d.clone(), bson!({ "$subtract": [5, "$i"] }), ok(bson!(3))),
        (d.clone(), bson!({ "$subtract": [i32::MIN, 1] }), ok(Bson::Int64(i64::from(i32::MIN) - 1))),
        (d.clone(), bson!({ "$subtract": [Bson::Int64(i64::MIN), 1] }), ok(Bson::Double(i64::MIN as f64 - 1.0))),
        (d.clone(), bson!({ "$subtract": ["$d", 1] }), ok(date(999))),
        (d.clone(), bson!({ "$subtract": ["$d", date(400)] }), ok(Bson::Int64(600))),
        (d.clone(), bson!({ "$subtract": [1, "$d"] }), Err(14)),
        (d.clone(), bson!({ "$subtract": ["$d", 0.6] }), ok(date(999))),
        (d.clone(), bson!({ "$subtract": ["$d", "$s"] }), Err(14)),
        (d.clone(), bson!({ "$subtract": ["$n", "$s"] }), ok(Bson::Null)),
        (d.clone(), bson!({ "$subtract": [1] }), Err(16020)),
        (d.clone(), bson!({ "$multiply": [] }), ok(bson!(1))),
        (d.clone(), bson!({ "$multiply": ["$i", 3, Bson::Int64(2)] }), ok(Bson::Int64(12))),
        (d.clone(), bson!({ "$multiply": [i32::MAX, 2] }), ok(Bson::Int64(i64::from(i32::MAX) * 2))),
        (d.clone(), bson!({ "$multiply": ["$l", 2] }), ok(Bson::Double(i64::MAX as f64 * 2.0))),
        (d.clone(), bson!({ "$multiply": ["$i", "$f"] }), ok(bson!(1.0))),
        (d.clone(), bson!({ "$multiply": ["$i", "$missing"] }), ok(Bson::Null)),
        (d.clone(), bson!({ "$multiply": ["$d", 2] }), Err(14)),
        (d.clone(), bson!({ "$multiply": [i32::MAX, 2, 0.5] }), ok(bson!(f64::from(i32::MAX)))),
    ]);
    assert_eq!(
        err_message(d.clone(), bson!({ "$add": ["$s"] })),
        "$add only supports numeric or date types, not string"
    );
    assert_eq!(err_message(d, bson!({ "$subtract": [1, "$d"] })), "can't $subtract date from int");
}

#[test]
fn expr_decimal_arithmetic_promotes_to_decimal() {
    let dec = |s: &str| Bson::Decimal128(s.parse().unwrap());
    let d = doc! { "x": dec("0.1"), "y": dec("0.2"), "i": 3, "l": i64::MAX, "f": 0.5, "z": dec("0"), "t": date(1_000) };
    table(vec![
        (d.clone(), bson!({ "$add": ["$x", "$y"] }), ok(dec("0.3"))),
        (d.clone(), bson!({ "$add": ["$i", "$x"] }), ok(dec("3.1"))),
        // The int64 total overflowed to a double (2^64) before the decimal came.
        (d.clone(), bson!({ "$add": ["$l", "$l", "$x"] }), ok(dec("18446744073709551616.1"))),
        (d.clone(), bson!({ "$add": ["$f", "$x"] }), ok(dec("0.6"))),
        // A double operand after the first decimal converts to 15 digits; a double total
        // before it to 34.
        (d.clone(), bson!({ "$add": ["$x", "$f", 1] }), ok(dec("1.600000000000000"))),
        (d.clone(), bson!({ "$add": ["$x", null] }), ok(Bson::Null)),
        (d.clone(), bson!({ "$add": ["$t", dec("2.5")] }), ok(date(1_002))),
        (d.clone(), bson!({ "$add": ["$t", dec("3.5")] }), ok(date(1_004))),
        (d.clone(), bson!({ "$subtract": ["$y", "$x"] }), ok(dec("0.1"))),
        (d.clone(), bson!({ "$subtract": ["$i", "$x"] }), ok(dec("2.9"))),
        (d.clone(), bson!({ "$subtract": ["$t", dec("1000")] }), ok(date(0))),
        (d.clone(), bson!({ "$multiply": ["$x", "$i"] }), ok(dec("0.3"))),
        (d.clone(), bson!({ "$multiply": ["$i", "$f", "$x"] }), ok(dec("0.150000000000000"))),
        (d.clone(), bson!({ "$divide": [1, dec("4")] }), ok(dec("0.25"))),
        (d.clone(), bson!({ "$divide": [dec("1"), 3] }), ok(dec("0.3333333333333333333333333333333333"))),
        (d.clone(), bson!({ "$divide": ["$i", "$z"] }), Err(2)),
        (d.clone(), bson!({ "$mod": [dec("7.5"), 2] }), ok(dec("1.5"))),
        (d.clone(), bson!({ "$mod": [dec("-7"), 3] }), ok(dec("-1"))),
        (d.clone(), bson!({ "$mod": [7, "$z"] }), Err(16610)),
        (d.clone(), bson!({ "$abs": dec("-2.50") }), ok(dec("2.50"))),
        (d, bson!({ "$eq": [{ "$add": ["$x", "$y"] }, dec("0.3")] }), ok(bson!(true))),
    ]);
}

#[test]
fn expr_divide_mod_abs() {
    let d = doc! { "i": 7, "l": Bson::Int64(7), "f": 2.5, "s": "x" };
    table(vec![
        (d.clone(), bson!({ "$divide": ["$i", 2] }), ok(bson!(3.5))),
        (d.clone(), bson!({ "$divide": [6, 3] }), ok(bson!(2.0))),
        (d.clone(), bson!({ "$divide": ["$i", 0] }), Err(2)),
        (d.clone(), bson!({ "$divide": ["$i", 0.0] }), Err(2)),
        (d.clone(), bson!({ "$divide": ["$i", null] }), ok(Bson::Null)),
        (d.clone(), bson!({ "$divide": ["$s", 1] }), Err(14)),
        (d.clone(), bson!({ "$mod": ["$i", 3] }), ok(bson!(1))),
        (d.clone(), bson!({ "$mod": ["$l", 3] }), ok(Bson::Int64(1))),
        (d.clone(), bson!({ "$mod": ["$i", Bson::Int64(3)] }), ok(Bson::Int64(1))),
        (d.clone(), bson!({ "$mod": [-7, 3] }), ok(bson!(-1))),
        (d.clone(), bson!({ "$mod": ["$i", "$f"] }), ok(bson!(2.0))),
        (d.clone(), bson!({ "$mod": ["$i", 2.0] }), ok(bson!(1.0))),
        (d.clone(), bson!({ "$mod": ["$i", 0.0] }), Err(16610)),
        (d.clone(), bson!({ "$mod": ["$f", 2] }), ok(bson!(0.5))),
        (d.clone(), bson!({ "$mod": ["$i", 0] }), Err(16610)),
        (d.clone(), bson!({ "$mod": ["$i", "$missing"] }), ok(Bson::Null)),
        (d.clone(), bson!({ "$mod": ["$i", "$s"] }), Err(16611)),
        (d.clone(), bson!({ "$abs": -3 }), ok(bson!(3))),
        (d.clone(), bson!({ "$abs": [i32::MIN] }), ok(Bson::Int64(-i64::from(i32::MIN)))),
        (d.clone(), bson!({ "$abs": Bson::Int64(i64::MIN) }), Err(28680)),
        (d.clone(), bson!({ "$abs": -2.5 }), ok(bson!(2.5))),
        (d.clone(), bson!({ "$abs": "$missing" }), ok(Bson::Null)),
        (d.clone(), bson!({ "$abs": "$s" }), Err(28765)),
        (d.clone(), bson!({ "$abs": [1, 2] }), Err(16020)),
    ]);
    assert_eq!(err_message(d.clone(), bson!({ "$divide": ["$i", 0] })), "can't $divide by zero");
    assert_eq!(
        err_message(d, bson!({ "$divide": ["$s", 1] })),
        "$divide only supports numeric types, not string and int"
    );
}

#[test]
fn expr_in_size_strings_and_type() {
    let d = doc! { "a": [1, "two", null], "s": "MiXeD", "i": 42 };
    table(vec![
        (d.clone(), bson!({ "$in": [1.0, "$a"] }), ok(bson!(true))),
        (d.clone(), bson!({ "$in": ["two", "$a"] }), ok(bson!(true))),
        (d.clone(), bson!({ "$in": [3, "$a"] }), ok(bson!(false))),
        (d.clone(), bson!({ "$in": [null, "$a"] }), ok(bson!(true))),
        (d.clone(), bson!({ "$in": ["$missing", "$a"] }), ok(bson!(false))),
        (d.clone(), bson!({ "$in": [1, "$s"] }), Err(40081)),
        (d.clone(), bson!({ "$in": [1, "$missing"] }), Err(40081)),
        (d.clone(), bson!({ "$size": "$a" }), ok(bson!(3))),
        (d.clone(), bson!({ "$size": [[]] }), ok(bson!(0))),
        (d.clone(), bson!({ "$size": "$s" }), Err(17124)),
        (d.clone(), bson!({ "$concat": [] }), ok(bson!(""))),
        (d.clone(), bson!({ "$concat": ["$s", "-", "x"] }), ok(bson!("MiXeD-x"))),
        (d.clone(), bson!({ "$concat": ["$s", "$missing"] }), ok(Bson::Null)),
        (d.clone(), bson!({ "$concat": ["$s", "$i"] }), Err(16702)),
        (d.clone(), bson!({ "$toLower": "$s" }), ok(bson!("mixed"))),
        (d.clone(), bson!({ "$toUpper": ["$s"] }), ok(bson!("MIXED"))),
        (d.clone(), bson!({ "$toUpper": "$missing" }), ok(bson!(""))),
        (d.clone(), bson!({ "$toLower": "$i" }), ok(bson!("42"))),
        (d.clone(), bson!({ "$toLower": "$a" }), Err(16007)),
        (d.clone(), bson!({ "$toUpper": "ÉtÉ" }), ok(bson!("ÉTÉ"))),
        (d.clone(), bson!({ "$type": "$missing" }), ok(bson!("missing"))),
        (d.clone(), bson!({ "$type": "$a" }), ok(bson!("array"))),
        (d.clone(), bson!({ "$type": "$i" }), ok(bson!("int"))),
        (d.clone(), bson!({ "$type": [null] }), ok(bson!("null"))),
        (d.clone(), bson!({ "$type": [1, 2] }), Err(16020)),
    ]);
    assert_eq!(
        err_message(d.clone(), bson!({ "$in": [1, "$missing"] })),
        "$in requires an array as a second argument, found: missing"
    );
    assert_eq!(
        err_message(d, bson!({ "$size": "$s" })),
        "The argument to $size must be an array, but was of type: string"
    );
}

#[test]
fn expr_slice() {
    let d = doc! { "a": [1, 2, 3, 4, 5], "s": "x", "n": null };
    table(vec![
        (d.clone(), bson!({ "$slice": ["$a", 2] }), ok(bson!([1, 2]))),
        (d.clone(), bson!({ "$slice": ["$a", -2] }), ok(bson!([4, 5]))),
        (d.clone(), bson!({ "$slice": ["$a", 0] }), ok(bson!([]))),
        (d.clone(), bson!({ "$slice": ["$a", -10] }), ok(bson!([1, 2, 3, 4, 5]))),
        (d.clone(), bson!({ "$slice": ["$a", 1, 2] }), ok(bson!([2, 3]))),
        (d.clone(), bson!({ "$slice": ["$a", -2, 5] }), ok(bson!([4, 5]))),
        (d.clone(), bson!({ "$slice": ["$a", -9, 1] }), ok(bson!([1]))),
        (d.clone(), bson!({ "$slice": ["$a", 9, 1] }), ok(bson!([]))),
        (d.clone(), bson!({ "$slice": ["$a", 2.0] }), ok(bson!([1, 2]))),
        (d.clone(), bson!({ "$slice": ["$n", 1] }), ok(Bson::Null)),
        (d.clone(), bson!({ "$slice": ["$a", "$missing"] }), ok(Bson::Null)),
        (d.clone(), bson!({ "$slice": ["$a", 1, null] }), ok(Bson::Null)),
        (d.clone(), bson!({ "$slice": ["$s", 1] }), Err(28724)),
        (d.clone(), bson!({ "$slice": ["$a", "1"] }), Err(28725)),
        (d.clone(), bson!({ "$slice": ["$a", 1.5] }), Err(28726)),
        (d.clone(), bson!({ "$slice": ["$a", 1, "1"] }), Err(28727)),
        (d.clone(), bson!({ "$slice": ["$a", 1, 1.5] }), Err(28728)),
        (d.clone(), bson!({ "$slice": ["$a", 1, 0] }), Err(28729)),
        (d.clone(), bson!({ "$slice": ["$a"] }), Err(28667)),
        (d.clone(), bson!({ "$slice": ["$a", 1, 2, 3] }), Err(28667)),
    ]);
    assert_eq!(err_message(d, bson!({ "$slice": ["$a", 1, -1] })), "Third argument to $slice must be positive: -1");
}

#[test]
fn expr_rand_meta_and_unbuilt_operators() {
    for spec in [bson!({ "$rand": {} }), bson!({ "$rand": [] })] {
        let Ok(Some(Bson::Double(x))) = eval(doc! {}, spec) else { panic!("$rand gives a double") };
        assert!((0.0..1.0).contains(&x));
    }
    let first = eval(doc! {}, bson!({ "$rand": {} }));
    let second = eval(doc! {}, bson!({ "$rand": {} }));
    assert_ne!(first, second, "two draws differ");
    table(vec![
        (doc! {}, bson!({ "$rand": { "a": 1 } }), Err(3040501)),
        (doc! {}, bson!({ "$rand": [1] }), Err(3040501)),
        (doc! {}, bson!({ "$rand": 1 }), Err(10065)),
        (doc! {}, bson!({ "$meta": "textScore" }), Err(40218)),
        (doc! {}, bson!({ "$meta": "indexKey" }), Err(238)),
        (doc! {}, bson!({ "$meta": "nope" }), Err(17308)),
        (doc! {}, bson!({ "$meta": 1 }), Err(17307)),
        (doc! {}, bson!({ "$concatArrays": [[1], [2]] }), Ok(Some(bson!([1, 2])))),
        (doc! {}, bson!({ "$notAnOperator": 1 }), Err(168)),
    ]);
}

#[test]
fn expr_get_field_and_set_field() {
    let d = doc! { "a.b": 1, "$x": 2, "o": { "k": 1, "m": 2 } };
    table(vec![
        (d.clone(), bson!({ "$getField": "a.b" }), ok(bson!(1))),
        (d.clone(), bson!({ "$getField": { "field": { "$literal": "$x" } } }), ok(bson!(2))),
        (d.clone(), bson!({ "$getField": { "field": "k", "input": "$o" } }), ok(bson!(1))),
        (d.clone(), bson!({ "$getField": { "field": "k", "input": "$missing" } }), Ok(None)),
        (d.clone(), bson!({ "$getField": { "field": "k", "input": 5 } }), Err(3041705)),
        (d.clone(), bson!({ "$getField": "$x" }), Err(4161106)),
        (d.clone(), bson!({ "$setField": { "field": "k", "input": "$o", "value": 9 } }), ok(bson!({ "k": 9, "m": 2 }))),
        (
            d.clone(),
            bson!({ "$setField": { "field": { "$literal": "$n" }, "input": "$o", "value": 3 } }),
            ok(bson!({ "k": 1, "m": 2, "$n": 3 })),
        ),
        (
            d.clone(),
            bson!({ "$setField": { "field": "k", "input": "$o", "value": "$$REMOVE" } }),
            ok(bson!({ "m": 2 })),
        ),
        (d.clone(), bson!({ "$setField": { "field": "k", "input": null, "value": 1 } }), ok(Bson::Null)),
        (d.clone(), bson!({ "$setField": { "field": "k", "input": 1, "value": 1 } }), Err(4161105)),
        (d.clone(), bson!({ "$setField": { "field": "k", "value": 1 } }), Err(4161103)),
        (d.clone(), bson!({ "$setField": { "field": "k", "input": {}, "bad": 1 } }), Err(4161101)),
        (d.clone(), bson!({ "$setField": 1 }), Err(4161100)),
    ]);
}

#[test]
fn expr_truthy_follows_coerce_to_bool() {
    for (v, expected) in [
        (None, false),
        (Some(Bson::Null), false),
        (Some(Bson::Undefined), false),
        (Some(bson!(false)), false),
        (Some(bson!(0)), false),
        (Some(Bson::Int64(0)), false),
        (Some(bson!(-0.0)), false),
        (Some(Bson::Decimal128("0E+3".parse().unwrap())), false),
        (Some(Bson::Decimal128("1".parse().unwrap())), true),
        (Some(bson!(f64::NAN)), true),
        (Some(bson!("")), true),
        (Some(bson!([])), true),
        (Some(bson!({})), true),
    ] {
        assert_eq!(truthy(&v), expected, "{v:?}");
    }
}

#[test]
fn expr_field_paths_past_200_components_are_overflow() {
    let path = |n: usize| format!("${}", vec!["a"; n].join("."));
    let err = Expression::parse(RawBsonRef::String(&path(201))).unwrap_err();
    assert_eq!((err.code(), err.message()), (ErrorCode::Overflow, "FieldPath is too long"));
    assert!(Expression::parse(RawBsonRef::String(&path(200))).is_ok());
    assert_eq!(
        Expression::parse(RawBsonRef::String(&format!("$$v.{}", &path(201)[1..]))).unwrap_err().code(),
        ErrorCode::Overflow
    );
}

#[test]
fn expr_concat_is_bounded_like_mongods_string_builder() {
    let doc = doc! { "s": "x".repeat(1 << 20) };
    let concat = |n: usize| bson!({ "$concat": vec![Bson::from("$s"); n] });
    assert_eq!(eval(doc.clone(), concat(65)), Err(13548));
    assert_eq!(
        err_message(doc.clone(), concat(65)),
        "BufBuilder attempted to grow() to 68157440 bytes, past the 64MB limit."
    );
    assert_eq!(eval(doc.clone(), concat(16)), Err(16493));
    assert_eq!(err_message(doc.clone(), concat(16)), "Tried to create string longer than 16MB");
    assert!(matches!(eval(doc.clone(), concat(15)), Ok(Some(Bson::String(s))) if s.len() == 15 << 20));
    // As in mongod, a nullish argument ends it before the later ones are evaluated.
    assert_eq!(eval(doc, bson!({ "$concat": ["a", null, { "$add": ["x"] }] })), Ok(Some(Bson::Null)));
}

#[test]
fn expr_values_copied_out_of_the_document_are_bounded() {
    let doc = doc! { "s": "x".repeat(1 << 20) };
    let copies = |n: usize| Bson::Array(vec![Bson::from("$s"); n]);
    assert_eq!(eval(doc.clone(), copies(101)), Err(146));
    assert!(eval(doc.clone(), copies(90)).is_ok());
    // Every copy of one evaluation counts, wherever it is made: each node is evaluated
    // once, so the count bounds what the evaluation holds without tracking its lifetime.
    assert_eq!(eval(doc.clone(), Bson::Array(vec![copies(60), copies(60)])), Err(146));
    assert_eq!(eval(doc.clone(), bson!({ "$eq": [copies(60), copies(60)] })), Err(146));
    assert_eq!(eval(doc.clone(), bson!({ "$eq": ["$$ROOT", copies(100)] })), Err(146));
    // Small values cost their count: a copy is charged its owned size, not only its bytes.
    let many = doc! { "a": (0..500_000).collect::<Vec<i32>>() };
    assert_eq!(eval(many, Bson::Array(vec![Bson::from("$a"); 3])), Err(146));
}
