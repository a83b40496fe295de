//! The operator families with their own modules (strings, numbers, conversions, sets,
//! objects, sequences, sizes): mongod's documented examples, null and missing inputs, mixed
//! numeric types and the error codes.

use bson::{Binary, Bson, DateTime, Decimal128, Timestamp, bson, doc, oid::ObjectId, spec::BinarySubtype};

use super::tests::{err_message, eval, ok, table};

fn dec(s: &str) -> Bson {
    Bson::Decimal128(s.parse::<Decimal128>().expect("a decimal literal"))
}

fn regex(pattern: &str, options: &str) -> bson::Regex {
    bson::Regex { pattern: pattern.try_into().expect("a pattern"), options: options.try_into().expect("options") }
}

const NULL: Result<Option<Bson>, i32> = Ok(Some(Bson::Null));

#[test]
fn string_lengths_substrings_and_searches() {
    let d = doc! { "s": "cafétéria", "n": 5, "x": 1.5 };
    table(vec![
        (d.clone(), bson!({ "$strLenBytes": "$s" }), ok(bson!(11))),
        (d.clone(), bson!({ "$strLenCP": "$s" }), ok(bson!(9))),
        (d.clone(), bson!({ "$strLenCP": "" }), ok(bson!(0))),
        (d.clone(), bson!({ "$strLenBytes": "$missing" }), Err(34473)),
        (d.clone(), bson!({ "$strLenCP": 5 }), Err(34471)),
        (d.clone(), bson!({ "$substrBytes": ["$s", 0, 3] }), ok(bson!("caf"))),
        (d.clone(), bson!({ "$substrBytes": ["$s", 0, 4] }), Err(28657)),
        (d.clone(), bson!({ "$substrBytes": ["$s", 4, 2] }), Err(28656)),
        (d.clone(), bson!({ "$substrBytes": ["$s", -1, 2] }), Err(50752)),
        (d.clone(), bson!({ "$substrBytes": ["$s", 5, -1] }), ok(bson!("téria"))),
        (d.clone(), bson!({ "$substrBytes": ["$s", 50, 2] }), ok(bson!(""))),
        (d.clone(), bson!({ "$substrBytes": ["$s", "a", 2] }), Err(16034)),
        (d.clone(), bson!({ "$substr": [null, 0, 2] }), ok(bson!(""))),
        (d.clone(), bson!({ "$substr": [12345, 1, 2] }), ok(bson!("23"))),
        (d.clone(), bson!({ "$substrCP": ["$s", 3, 3] }), ok(bson!("été"))),
        (d.clone(), bson!({ "$substrCP": ["$s", 1.5, 3] }), Err(34451)),
        (d.clone(), bson!({ "$substrCP": ["$s", 0, -1] }), Err(34454)),
        (d.clone(), bson!({ "$substrCP": ["$s", -1, 1] }), Err(34455)),
        (d.clone(), bson!({ "$substrCP": ["$s", 0] }), Err(16020)),
        (d.clone(), bson!({ "$indexOfBytes": ["$s", "t"] }), ok(bson!(5))),
        (d.clone(), bson!({ "$indexOfCP": ["$s", "t"] }), ok(bson!(4))),
        (d.clone(), bson!({ "$indexOfCP": ["$s", "é", 4] }), ok(bson!(5))),
        (d.clone(), bson!({ "$indexOfCP": ["$s", "z"] }), ok(bson!(-1))),
        (d.clone(), bson!({ "$indexOfCP": ["$s", "", 20] }), ok(bson!(-1))),
        (d.clone(), bson!({ "$indexOfCP": ["$s", "a", 5, 2] }), ok(bson!(-1))),
        (d.clone(), bson!({ "$indexOfBytes": [null, "a"] }), NULL),
        (d.clone(), bson!({ "$indexOfBytes": [1, "a"] }), Err(40091)),
        (d.clone(), bson!({ "$indexOfCP": ["a", 1] }), Err(40094)),
        (d.clone(), bson!({ "$indexOfCP": ["a", "a", -1] }), Err(40097)),
        (d.clone(), bson!({ "$indexOfCP": ["a", "a", 1.5] }), Err(40096)),
        (d.clone(), bson!({ "$split": ["June-15-2013", "-"] }), ok(bson!(["June", "15", "2013"]))),
        (d.clone(), bson!({ "$split": ["a,b,", ","] }), ok(bson!(["a", "b", ""]))),
        (d.clone(), bson!({ "$split": ["$missing", ","] }), NULL),
        (d.clone(), bson!({ "$split": ["abc", ""] }), Err(40087)),
        (d.clone(), bson!({ "$split": [1, ","] }), Err(40085)),
        (d.clone(), bson!({ "$strcasecmp": ["Hello", "hello"] }), ok(bson!(0))),
        (d.clone(), bson!({ "$strcasecmp": ["a", "B"] }), ok(bson!(-1))),
        (d.clone(), bson!({ "$strcasecmp": ["$n", "4"] }), ok(bson!(1))),
        (d.clone(), bson!({ "$toUpper": "$x" }), ok(bson!("1.5"))),
    ]);
}

#[test]
fn string_trims_and_replacements() {
    let d = doc! { "s": "  \u{a0}ggggoodbyeeeee\t" };
    table(vec![
        (d.clone(), bson!({ "$trim": { "input": "$s" } }), ok(bson!("ggggoodbyeeeee"))),
        (d.clone(), bson!({ "$ltrim": { "input": "$s" } }), ok(bson!("ggggoodbyeeeee\t"))),
        (d.clone(), bson!({ "$rtrim": { "input": "$s" } }), ok(bson!("  \u{a0}ggggoodbyeeeee"))),
        (d.clone(), bson!({ "$trim": { "input": "ggggoodbyeeeee", "chars": "ge" } }), ok(bson!("oodby"))),
        (d.clone(), bson!({ "$trim": { "input": "$missing" } }), NULL),
        (d.clone(), bson!({ "$trim": { "input": "a", "chars": null } }), NULL),
        (d.clone(), bson!({ "$trim": { "input": 1 } }), Err(50699)),
        (d.clone(), bson!({ "$trim": { "input": "a", "chars": 1 } }), Err(50700)),
        (d.clone(), bson!({ "$trim": "a" }), Err(50696)),
        (d.clone(), bson!({ "$trim": { "input": "a", "x": 1 } }), Err(50694)),
        (d.clone(), bson!({ "$trim": { "chars": "a" } }), Err(50695)),
        (
            d.clone(),
            bson!({ "$replaceOne": { "input": "blue paint", "find": "blue", "replacement": "red" } }),
            ok(bson!("red paint")),
        ),
        (
            d.clone(),
            bson!({ "$replaceOne": { "input": "a a a", "find": "a", "replacement": "b" } }),
            ok(bson!("b a a")),
        ),
        (
            d.clone(),
            bson!({ "$replaceAll": { "input": "a a a", "find": "a", "replacement": "b" } }),
            ok(bson!("b b b")),
        ),
        (d.clone(), bson!({ "$replaceAll": { "input": null, "find": "a", "replacement": "b" } }), NULL),
        (d.clone(), bson!({ "$replaceAll": { "input": "a", "find": 1, "replacement": "b" } }), Err(51745)),
        (d.clone(), bson!({ "$replaceAll": { "input": "a", "find": "a" } }), Err(51747)),
        (d.clone(), bson!({ "$replaceOne": [] }), Err(51751)),
    ]);
    assert_eq!(
        err_message(doc! {}, bson!({ "$trim": { "input": 5 } })),
        "$trim requires its input to be a string, got 5 (of type int) instead."
    );
}

#[test]
fn regular_expression_operators() {
    let d = doc! { "s": "Cafés are cool, coffee is hot" };
    table(vec![
        (d.clone(), bson!({ "$regexMatch": { "input": "$s", "regex": "cof+ee" } }), ok(bson!(true))),
        (d.clone(), bson!({ "$regexMatch": { "input": "$s", "regex": "^café", "options": "i" } }), ok(bson!(true))),
        (
            d.clone(),
            bson!({ "$regexMatch": { "input": "$s", "regex": Bson::RegularExpression(regex("^CAFÉ", "i")) } }),
            ok(bson!(true)),
        ),
        (d.clone(), bson!({ "$regexMatch": { "input": "$missing", "regex": "a" } }), ok(bson!(false))),
        (
            d.clone(),
            bson!({ "$regexFind": { "input": "$s", "regex": "(co)(o|f)" } }),
            ok(bson!({ "match": "coo", "idx": 10, "captures": ["co", "o"] })),
        ),
        (
            d.clone(),
            bson!({ "$regexFind": { "input": "$s", "regex": "(x)?hot" } }),
            ok(bson!({ "match": "hot", "idx": 26, "captures": [null] })),
        ),
        (d.clone(), bson!({ "$regexFind": { "input": "$s", "regex": "zzz" } }), NULL),
        (
            d.clone(),
            bson!({ "$regexFindAll": { "input": "$s", "regex": "c[a-z]+" } }),
            ok(bson!([
                { "match": "cool", "idx": 10, "captures": [] },
                { "match": "coffee", "idx": 16, "captures": [] },
            ])),
        ),
        (
            d.clone(),
            bson!({ "$regexFindAll": { "input": "ab", "regex": "" } }).clone(),
            ok(bson!([
                { "match": "", "idx": 0, "captures": [] },
                { "match": "", "idx": 1, "captures": [] },
                { "match": "", "idx": 2, "captures": [] },
            ])),
        ),
        (d.clone(), bson!({ "$regexFindAll": { "input": null, "regex": "a" } }), ok(bson!([]))),
        // PCRE's lookaround and backreferences, on the backtracking engine.
        (
            d.clone(),
            bson!({ "$regexFindAll": { "input": "$s", "regex": r"c(o)\1(?=l)|(?<=, )(c)" } }),
            ok(bson!([
                { "match": "coo", "idx": 10, "captures": ["o", null] },
                { "match": "c", "idx": 16, "captures": [null, "c"] },
            ])),
        ),
        (d.clone(), bson!({ "$regexMatch": { "input": "$s", "regex": r"^(?!Caf)" } }), ok(bson!(false))),
        (d.clone(), bson!({ "$regexMatch": { "input": 1, "regex": "a" } }), Err(51106)),
        (d.clone(), bson!({ "$regexMatch": { "input": "a", "regex": 1 } }), Err(51104)),
        (d.clone(), bson!({ "$regexMatch": { "input": "a", "regex": "a", "options": 1 } }), Err(51105)),
        (d.clone(), bson!({ "$regexMatch": { "input": "a", "regex": "a", "options": "z" } }), Err(51108)),
        (d.clone(), bson!({ "$regexMatch": { "input": "a", "regex": "(" } }), Err(51111)),
        (
            d.clone(),
            bson!({ "$regexMatch": { "input": "a", "regex": Bson::RegularExpression(regex("a", "i")), "options": "m" } }),
            Err(51107),
        ),
        (d.clone(), bson!({ "$regexMatch": { "regex": "a" } }), Err(31022)),
        (d.clone(), bson!({ "$regexMatch": { "input": "a" } }), Err(31023)),
        (d.clone(), bson!({ "$regexMatch": { "input": "a", "regex": "a", "x": 1 } }), Err(31024)),
        (d.clone(), bson!({ "$regexMatch": "a" }), Err(51103)),
    ]);
}

#[test]
fn rounding_powers_and_logarithms() {
    let d = doc! {};
    table(vec![
        (d.clone(), bson!({ "$ceil": 7.80 }), ok(bson!(8.0))),
        (d.clone(), bson!({ "$floor": -2.5 }), ok(bson!(-3.0))),
        (d.clone(), bson!({ "$ceil": 5 }), ok(bson!(5))),
        (d.clone(), bson!({ "$floor": dec("-1.5") }), ok(dec("-2"))),
        (d.clone(), bson!({ "$ceil": null }), NULL),
        (d.clone(), bson!({ "$ceil": "a" }), Err(28765)),
        (d.clone(), bson!({ "$round": [19.25, 1] }), ok(bson!(19.2))),
        (d.clone(), bson!({ "$round": [28.73, -1] }), ok(bson!(30.0))),
        (d.clone(), bson!({ "$round": [10.5, 0] }), ok(bson!(10.0))),
        (d.clone(), bson!({ "$round": [11.5] }), ok(bson!(12.0))),
        (d.clone(), bson!({ "$round": [1234, -2] }), ok(bson!(1200))),
        (d.clone(), bson!({ "$round": [Bson::Int64(1250), -2] }), ok(Bson::Int64(1200))),
        (d.clone(), bson!({ "$round": [dec("1.2345"), 2] }), ok(dec("1.23"))),
        (d.clone(), bson!({ "$trunc": [7.895, 2] }), ok(bson!(7.89))),
        (d.clone(), bson!({ "$trunc": [-7.5] }), ok(bson!(-7.0))),
        (d.clone(), bson!({ "$round": [1.5, 101] }), Err(51083)),
        (d.clone(), bson!({ "$round": [1.5, 1.5] }), Err(51082)),
        (d.clone(), bson!({ "$round": ["a", 1] }), Err(51081)),
        (d.clone(), bson!({ "$round": [null, 1] }), NULL),
        (d.clone(), bson!({ "$sqrt": 25 }), ok(bson!(5.0))),
        (d.clone(), bson!({ "$sqrt": -1 }), Err(28714)),
        (d.clone(), bson!({ "$pow": [5, 2] }), ok(bson!(25))),
        (d.clone(), bson!({ "$pow": [5, -2] }), ok(bson!(0.04))),
        (d.clone(), bson!({ "$pow": [-1, -3] }), ok(bson!(-1))),
        (d.clone(), bson!({ "$pow": [2, 40] }), ok(Bson::Int64(1 << 40))),
        (d.clone(), bson!({ "$pow": [Bson::Int64(2), 3] }), ok(Bson::Int64(8))),
        (d.clone(), bson!({ "$pow": [2, 64] }), ok(bson!(18_446_744_073_709_551_616.0))),
        (d.clone(), bson!({ "$pow": [2.0, 3] }), ok(bson!(8.0))),
        (d.clone(), bson!({ "$pow": [dec("1.1"), 2] }), ok(dec("1.21"))),
        (d.clone(), bson!({ "$pow": [0, -1] }), Err(28764)),
        (d.clone(), bson!({ "$pow": ["a", 1] }), Err(28762)),
        (d.clone(), bson!({ "$exp": 0 }), ok(bson!(1.0))),
        (d.clone(), bson!({ "$ln": 1 }), ok(bson!(0.0))),
        (d.clone(), bson!({ "$ln": 0 }), Err(28766)),
        (d.clone(), bson!({ "$log10": 100 }), ok(bson!(2.0))),
        (d.clone(), bson!({ "$log10": -1 }), Err(28761)),
        (d.clone(), bson!({ "$log": [100, 10] }), ok(bson!(2.0))),
        (d.clone(), bson!({ "$log": [8, 1] }), Err(28759)),
        (d.clone(), bson!({ "$log": [-8, 2] }), Err(28758)),
        (d.clone(), bson!({ "$log": [null, 2] }), NULL),
    ]);
    assert_eq!(err_message(doc! {}, bson!({ "$ln": -2.5 })), "$ln's argument must be a positive number, but is -2.5");
}

#[test]
fn trigonometry_and_bits() {
    let d = doc! {};
    table(vec![
        (d.clone(), bson!({ "$sin": 0 }), ok(bson!(0.0))),
        (d.clone(), bson!({ "$cos": 0 }), ok(bson!(1.0))),
        (d.clone(), bson!({ "$acos": 1 }), ok(bson!(0.0))),
        (d.clone(), bson!({ "$asin": 2 }), Err(50989)),
        (d.clone(), bson!({ "$acosh": 0.5 }), Err(50989)),
        (d.clone(), bson!({ "$sin": f64::INFINITY }), Err(50989)),
        (d.clone(), bson!({ "$atan2": [0, 1] }), ok(bson!(0.0))),
        (d.clone(), bson!({ "$atan2": ["a", 1] }), Err(51044)),
        (d.clone(), bson!({ "$degreesToRadians": 180 }), ok(bson!(std::f64::consts::PI))),
        (d.clone(), bson!({ "$radiansToDegrees": std::f64::consts::PI }), ok(bson!(180.0))),
        (d.clone(), bson!({ "$sinh": null }), NULL),
        (d.clone(), bson!({ "$bitAnd": [12, 10] }), ok(bson!(8))),
        (d.clone(), bson!({ "$bitOr": [12, Bson::Int64(3)] }), ok(Bson::Int64(15))),
        (d.clone(), bson!({ "$bitXor": [12, 10] }), ok(bson!(6))),
        (d.clone(), bson!({ "$bitAnd": [] }), ok(bson!(-1))),
        (d.clone(), bson!({ "$bitNot": 0 }), ok(bson!(-1))),
        (d.clone(), bson!({ "$bitNot": Bson::Int64(5) }), ok(Bson::Int64(-6))),
        (d.clone(), bson!({ "$bitAnd": [1, 1.0] }), Err(14)),
        (d.clone(), bson!({ "$bitNot": 1.5 }), Err(14)),
        (d.clone(), bson!({ "$bitOr": [1, null] }), NULL),
    ]);
}

#[test]
fn conversions() {
    let oid = ObjectId::parse_str("5ab9cbfa31c2ab715d42129e").expect("an object id");
    let d = doc! { "oid": oid, "when": DateTime::from_millis(1_500_000_000_000) };
    table(vec![
        (d.clone(), bson!({ "$toInt": "12" }), ok(bson!(12))),
        (d.clone(), bson!({ "$toInt": 12.9 }), ok(bson!(12))),
        (d.clone(), bson!({ "$toInt": -12.9 }), ok(bson!(-12))),
        (d.clone(), bson!({ "$toInt": true }), ok(bson!(1))),
        (d.clone(), bson!({ "$toInt": Bson::Int64(1 << 40) }), Err(241)),
        (d.clone(), bson!({ "$toInt": "1.5" }), Err(241)),
        (d.clone(), bson!({ "$toInt": f64::NAN }), Err(241)),
        (d.clone(), bson!({ "$toInt": null }), NULL),
        (d.clone(), bson!({ "$toInt": "$missing" }), NULL),
        (d.clone(), bson!({ "$toLong": "$when" }), ok(Bson::Int64(1_500_000_000_000))),
        (d.clone(), bson!({ "$toLong": dec("-5.9") }), ok(Bson::Int64(-5))),
        (d.clone(), bson!({ "$toDouble": "5.5" }), ok(bson!(5.5))),
        (d.clone(), bson!({ "$toDouble": "1e3" }), ok(bson!(1000.0))),
        (d.clone(), bson!({ "$toDouble": "abc" }), Err(241)),
        (d.clone(), bson!({ "$toDouble": false }), ok(bson!(0.0))),
        (d.clone(), bson!({ "$toDecimal": 2.5 }), ok(dec("2.50000000000000"))),
        (d.clone(), bson!({ "$toDecimal": "1.23" }), ok(dec("1.23"))),
        (d.clone(), bson!({ "$toString": 2.5 }), ok(bson!("2.5"))),
        (d.clone(), bson!({ "$toString": 1.0 / 3.0 }), ok(bson!("0.333333"))),
        (d.clone(), bson!({ "$toString": Bson::Int64(7) }), ok(bson!("7"))),
        (d.clone(), bson!({ "$toString": true }), ok(bson!("true"))),
        (d.clone(), bson!({ "$toString": "$oid" }), ok(bson!("5ab9cbfa31c2ab715d42129e"))),
        (d.clone(), bson!({ "$toString": "$when" }), ok(bson!("2017-07-14T02:40:00.000Z"))),
        (d.clone(), bson!({ "$toString": dec("1.50") }), ok(bson!("1.50"))),
        (d.clone(), bson!({ "$toString": [[1]] }), Err(241)),
        (d.clone(), bson!({ "$toObjectId": "5ab9cbfa31c2ab715d42129e" }), ok(Bson::ObjectId(oid))),
        (d.clone(), bson!({ "$toObjectId": "5ab9" }), Err(241)),
        (
            d.clone(),
            bson!({ "$toDate": Bson::Int64(1_500_000_000_000) }),
            ok(Bson::DateTime(DateTime::from_millis(1_500_000_000_000))),
        ),
        (
            d.clone(),
            bson!({ "$toDate": "2017-07-14T02:40:00Z" }),
            ok(Bson::DateTime(DateTime::from_millis(1_500_000_000_000))),
        ),
        (d.clone(), bson!({ "$toDate": "$oid" }), ok(Bson::DateTime(DateTime::from_millis(1_522_125_818_000)))),
        (d.clone(), bson!({ "$toDate": 5 }), Err(241)),
        (d.clone(), bson!({ "$toBool": 0 }), ok(bson!(false))),
        (d.clone(), bson!({ "$toBool": "" }), ok(bson!(true))),
        (d.clone(), bson!({ "$toBool": dec("0.0") }), ok(bson!(false))),
        (d.clone(), bson!({ "$isNumber": dec("1") }), ok(bson!(true))),
        (d.clone(), bson!({ "$isNumber": "1" }), ok(bson!(false))),
        (d.clone(), bson!({ "$isNumber": "$missing" }), ok(bson!(false))),
        (d.clone(), bson!({ "$convert": { "input": "x", "to": "int", "onError": -1 } }), ok(bson!(-1))),
        (d.clone(), bson!({ "$convert": { "input": null, "to": "int", "onNull": 0 } }), ok(bson!(0))),
        (d.clone(), bson!({ "$convert": { "input": "$missing", "to": "int" } }), NULL),
        (d.clone(), bson!({ "$convert": { "input": "5", "to": 16 } }), ok(bson!(5))),
        (d.clone(), bson!({ "$convert": { "input": "5", "to": null } }), NULL),
        (d.clone(), bson!({ "$convert": { "input": "5", "to": "bogus" } }), Err(2)),
        (d.clone(), bson!({ "$convert": { "input": "5", "to": 100 } }), Err(9)),
        (d.clone(), bson!({ "$convert": { "input": "5", "to": "object", "onError": "e" } }), ok(bson!("e"))),
        (d.clone(), bson!({ "$convert": { "input": "5", "to": "object" } }), Err(241)),
        (d.clone(), bson!({ "$convert": { "to": "int" } }), Err(9)),
        (d.clone(), bson!({ "$convert": { "input": 1 } }), Err(9)),
        (d.clone(), bson!({ "$convert": { "input": 1, "to": "int", "format": "x" } }), Err(9)),
        (d.clone(), bson!({ "$toInt": [1, 2] }), Err(16020)),
    ]);
    assert_eq!(
        err_message(doc! {}, bson!({ "$toInt": "abc" })),
        "Failed to parse number 'abc' in $convert with no onError value: Bad digit \"a\" while parsing abc"
    );
    // Strings coerced from timestamps read as mongod's `toStringPretty`.
    let ts = Bson::Timestamp(Timestamp { time: 86_400 * 33 + 61, increment: 7 });
    assert_eq!(eval(doc! {}, bson!({ "$substr": [ts, 0, 100] })), ok(bson!("Feb  3 00:01:01:7")));
}

#[test]
fn sets() {
    let d = doc! {};
    table(vec![
        (d.clone(), bson!({ "$setUnion": [["a", "b"], ["b", "c"]] }), ok(bson!(["a", "b", "c"]))),
        (d.clone(), bson!({ "$setUnion": [[1, 1.0, Bson::Int64(1)]] }), ok(bson!([1]))),
        (d.clone(), bson!({ "$setUnion": [["a"], null] }), NULL),
        (d.clone(), bson!({ "$setUnion": [["a"], "a"] }), Err(17043)),
        (d.clone(), bson!({ "$setIntersection": [["a", "b", "a"], ["b", "a"]] }), ok(bson!(["a", "b"]))),
        (d.clone(), bson!({ "$setIntersection": [["a"], []] }), ok(bson!([]))),
        (d.clone(), bson!({ "$setIntersection": [] }), ok(bson!([]))),
        (d.clone(), bson!({ "$setDifference": [["a", "b", "c"], ["b"]] }), ok(bson!(["a", "c"]))),
        (d.clone(), bson!({ "$setDifference": [["a"], null] }), NULL),
        (d.clone(), bson!({ "$setDifference": [["a"], 1] }), Err(17049)),
        (d.clone(), bson!({ "$setEquals": [["a", "b", "a"], ["b", "a"]] }), ok(bson!(true))),
        (d.clone(), bson!({ "$setEquals": [["a"], ["a", "b"]] }), ok(bson!(false))),
        (d.clone(), bson!({ "$setEquals": [["a"]] }), Err(17045)),
        (d.clone(), bson!({ "$setEquals": [["a"], null] }), Err(17044)),
        (d.clone(), bson!({ "$setIsSubset": [["a", "b"], [["a", "b"]]] }), ok(bson!(false))),
        (d.clone(), bson!({ "$setIsSubset": [["a"], ["a", "b"]] }), ok(bson!(true))),
        (d.clone(), bson!({ "$setIsSubset": [null, ["a"]] }), Err(17046)),
        (d.clone(), bson!({ "$allElementsTrue": [[true, 1, "x"]] }), ok(bson!(true))),
        (d.clone(), bson!({ "$allElementsTrue": [[true, 0]] }), ok(bson!(false))),
        (d.clone(), bson!({ "$allElementsTrue": [[]] }), ok(bson!(true))),
        (d.clone(), bson!({ "$anyElementTrue": [[null, false, 0]] }), ok(bson!(false))),
        (d.clone(), bson!({ "$anyElementTrue": [[[false]]] }), ok(bson!(true))),
        (d.clone(), bson!({ "$anyElementTrue": null }), Err(17041)),
    ]);
}

#[test]
fn objects() {
    let d = doc! { "o": { "item": "foo", "qty": 25 } };
    table(vec![
        (
            d.clone(),
            bson!({ "$objectToArray": "$o" }),
            ok(bson!([{ "k": "item", "v": "foo" }, { "k": "qty", "v": 25 }])),
        ),
        (d.clone(), bson!({ "$objectToArray": "$missing" }), NULL),
        (d.clone(), bson!({ "$objectToArray": 1 }), Err(40390)),
        (
            d.clone(),
            bson!({ "$arrayToObject": [[["item", "abc"], ["qty", 25]]] }),
            ok(bson!({ "item": "abc", "qty": 25 })),
        ),
        (d.clone(), bson!({ "$arrayToObject": [[{ "k": "a", "v": 1 }, { "k": "a", "v": 2 }]] }), ok(bson!({ "a": 2 }))),
        (d.clone(), bson!({ "$arrayToObject": [[]] }), ok(bson!({}))),
        (d.clone(), bson!({ "$arrayToObject": [[["a"]]] }), Err(40397)),
        (d.clone(), bson!({ "$arrayToObject": [[[1, 2]]] }), Err(40395)),
        (d.clone(), bson!({ "$arrayToObject": [[{ "k": "a" }]] }), Err(40392)),
        (d.clone(), bson!({ "$arrayToObject": [[{ "k": "a", "x": 1 }]] }), Err(40393)),
        (d.clone(), bson!({ "$arrayToObject": [[{ "k": 1, "v": 1 }]] }), Err(40394)),
        (d.clone(), bson!({ "$arrayToObject": [[["a", 1], { "k": "b", "v": 2 }]] }), Err(40391)),
        (d.clone(), bson!({ "$arrayToObject": [[1]] }), Err(40398)),
        (d.clone(), bson!({ "$arrayToObject": "a" }), Err(40386)),
        (
            d.clone(),
            bson!({ "$mergeObjects": ["$o", { "qty": 5, "x": 1 }, null] }),
            ok(bson!({ "item": "foo", "qty": 5, "x": 1 })),
        ),
        (d.clone(), bson!({ "$mergeObjects": [] }), ok(bson!({}))),
        (d.clone(), bson!({ "$mergeObjects": [1] }), Err(40400)),
        (d.clone(), bson!({ "$unsetField": { "field": "qty", "input": "$o" } }), ok(bson!({ "item": "foo" }))),
        (d.clone(), bson!({ "$unsetField": { "field": "qty", "input": "$o", "value": 1 } }), Err(4161101)),
    ]);
}

#[test]
fn sequences() {
    let d = doc! { "a": [1, 2, 3] };
    table(vec![
        (d.clone(), bson!({ "$reverseArray": "$a" }), ok(bson!([3, 2, 1]))),
        (d.clone(), bson!({ "$reverseArray": "$missing" }), NULL),
        (d.clone(), bson!({ "$reverseArray": 1 }), Err(34435)),
        (d.clone(), bson!({ "$indexOfArray": [["a", "abc", "b"], "b"] }), ok(bson!(2))),
        (d.clone(), bson!({ "$indexOfArray": [[1, 2, 1], 1.0, 1] }), ok(bson!(2))),
        (d.clone(), bson!({ "$indexOfArray": [[1, 2], 5] }), ok(bson!(-1))),
        (d.clone(), bson!({ "$indexOfArray": [null, 5] }), NULL),
        (d.clone(), bson!({ "$indexOfArray": ["a", 5] }), Err(40090)),
        (d.clone(), bson!({ "$range": [0, 10, 2] }), ok(bson!([0, 2, 4, 6, 8]))),
        (d.clone(), bson!({ "$range": [10, 0, -3] }), ok(bson!([10, 7, 4, 1]))),
        (d.clone(), bson!({ "$range": [0, 10, -1] }), ok(bson!([]))),
        (d.clone(), bson!({ "$range": [0, 5] }), ok(bson!([0, 1, 2, 3, 4]))),
        (d.clone(), bson!({ "$range": [0, 5, 0] }), Err(34449)),
        (d.clone(), bson!({ "$range": [0.5, 5] }), Err(34444)),
        (d.clone(), bson!({ "$range": ["a", 5] }), Err(34443)),
        (d.clone(), bson!({ "$range": [0, 2_000_000_000] }), Err(146)),
        (d.clone(), bson!({ "$zip": { "inputs": [["a", "b"], [1, 2, 3]] } }), ok(bson!([["a", 1], ["b", 2]]))),
        (
            d.clone(),
            bson!({ "$zip": { "inputs": [["a"], [1, 2]], "useLongestLength": true, "defaults": ["z", 0] } }),
            ok(bson!([["a", 1], ["z", 2]])),
        ),
        (
            d.clone(),
            bson!({ "$zip": { "inputs": [["a"], [1, 2]], "useLongestLength": true } }),
            ok(bson!([["a", 1], [null, 2]])),
        ),
        (d.clone(), bson!({ "$zip": { "inputs": [["a"], null] } }), NULL),
        (d.clone(), bson!({ "$zip": { "inputs": [["a"], 1] } }), Err(34468)),
        (d.clone(), bson!({ "$zip": { "inputs": [] } }), Err(34465)),
        (d.clone(), bson!({ "$zip": { "inputs": [["a"]], "defaults": [1] } }), Err(34466)),
        (d.clone(), bson!({ "$zip": { "inputs": [["a"]], "x": 1 } }), Err(34464)),
        (d.clone(), bson!({ "$sortArray": { "input": [3, 1, "a", 2], "sortBy": 1 } }), ok(bson!([1, 2, 3, "a"]))),
        (d.clone(), bson!({ "$sortArray": { "input": [3, 1, 2], "sortBy": -1 } }), ok(bson!([3, 2, 1]))),
        (
            d.clone(),
            bson!({ "$sortArray": { "input": [{ "n": "b", "a": 2 }, { "n": "a", "a": 2 }, { "n": "c", "a": 1 }], "sortBy": { "a": 1, "n": -1 } } }),
            ok(bson!([{ "n": "c", "a": 1 }, { "n": "b", "a": 2 }, { "n": "a", "a": 2 }])),
        ),
        (d.clone(), bson!({ "$sortArray": { "input": null, "sortBy": 1 } }), NULL),
        (d.clone(), bson!({ "$sortArray": { "input": 1, "sortBy": 1 } }), Err(2942504)),
        (d.clone(), bson!({ "$sortArray": { "input": [1], "sortBy": 2 } }), Err(2942505)),
        (d.clone(), bson!({ "$sortArray": { "input": [1] } }), Err(2942503)),
    ]);
}

#[test]
fn sizes_and_timestamps() {
    let d = doc! { "o": { "a": 1 } };
    table(vec![
        (d.clone(), bson!({ "$bsonSize": "$o" }), ok(bson!(12))),
        (d.clone(), bson!({ "$bsonSize": "$$ROOT" }), ok(bson!(20))),
        (d.clone(), bson!({ "$bsonSize": null }), NULL),
        (d.clone(), bson!({ "$bsonSize": 1 }), Err(31393)),
        (d.clone(), bson!({ "$binarySize": "café" }), ok(bson!(5))),
        (
            d.clone(),
            bson!({ "$binarySize": Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: vec![1, 2, 3] }) }),
            ok(bson!(3)),
        ),
        (d.clone(), bson!({ "$binarySize": 1 }), Err(51276)),
        (
            d.clone(),
            bson!({ "$tsSecond": Bson::Timestamp(Timestamp { time: 1_622_731_060, increment: 3 }) }),
            ok(Bson::Int64(1_622_731_060)),
        ),
        (
            d.clone(),
            bson!({ "$tsIncrement": Bson::Timestamp(Timestamp { time: 1, increment: 3 }) }),
            ok(Bson::Int64(3)),
        ),
        (d.clone(), bson!({ "$tsSecond": 1 }), Err(5687301)),
    ]);
}

#[test]
fn now_is_one_instant_per_set_of_variables() {
    let parsed = super::Expression::parse(bson::RawBson::String("$$NOW".into()).as_raw_bson_ref()).expect("parses");
    let vars = super::Variables::new();
    let root = bson::RawDocumentBuf::new();
    let first = parsed.evaluate(&root, &vars).expect("evaluates");
    assert!(matches!(first, Some(Bson::DateTime(_))), "{first:?}");
    std::thread::sleep(std::time::Duration::from_millis(3));
    assert_eq!(parsed.evaluate(&root, &vars.clone()).expect("evaluates"), first);
    assert_eq!(eval(doc! {}, bson!("$$NOW.x")), Ok(None));
}

#[test]
fn accumulators_as_expressions() {
    let d = doc! { "a": [1, 2.5, "x", null, 4], "b": 3, "n": Bson::Null, "s": ["b", "a", "c"] };
    table(vec![
        (d.clone(), bson!({ "$sum": "$a" }), ok(bson!(7.5))),
        (d.clone(), bson!({ "$sum": ["$a", "$b"] }), ok(bson!(3))),
        (d.clone(), bson!({ "$sum": ["$b", 4] }), ok(bson!(7))),
        (d.clone(), bson!({ "$sum": "$missing" }), ok(bson!(0))),
        (d.clone(), bson!({ "$sum": [] }), ok(bson!(0))),
        (d.clone(), bson!({ "$avg": "$a" }), ok(bson!(2.5))),
        (d.clone(), bson!({ "$avg": "$s" }), NULL),
        (d.clone(), bson!({ "$max": "$a" }), ok(bson!("x"))),
        (d.clone(), bson!({ "$min": "$a" }), ok(bson!(1))),
        (d.clone(), bson!({ "$min": ["$b", 2, null] }), ok(bson!(2))),
        (d.clone(), bson!({ "$max": "$n" }), NULL),
        (d.clone(), bson!({ "$stdDevPop": [1, 3] }), ok(bson!(1.0))),
        (d.clone(), bson!({ "$stdDevSamp": [5] }), NULL),
        // mongod's jstest group_accumulators_as_exprs.js: NaN is a value like any other (below),
        // and a single array argument is a list of values.
        (d.clone(), bson!({ "$max": [1, 2, f64::NAN] }), ok(bson!(2))),
        (d.clone(), bson!({ "$stdDevSamp": [[1, 2, 3]] }), ok(bson!(1.0))),
        (d.clone(), bson!({ "$sum": ["$b", 2, 3, { "$sum": [["$b", 4, 5]] }] }), ok(bson!(20))),
        (d.clone(), bson!({ "$avg": ["$b", 3, { "$avg": [4, 6] }] }), ok(bson!(11.0 / 3.0))),
        (d.clone(), bson!({ "$firstN": { "n": 2, "input": "$a" } }), ok(bson!([1, 2.5]))),
        (d.clone(), bson!({ "$lastN": { "n": 2, "input": "$a" } }), ok(bson!([null, 4]))),
        (d.clone(), bson!({ "$lastN": { "n": 9, "input": "$s" } }), ok(bson!(["b", "a", "c"]))),
        (d.clone(), bson!({ "$maxN": { "n": 2, "input": "$s" } }), ok(bson!(["c", "b"]))),
        (d.clone(), bson!({ "$minN": { "n": 3, "input": "$a" } }), ok(bson!([1, 2.5, 4]))),
        (d.clone(), bson!({ "$maxN": { "n": 2, "input": "$n" } }), Err(5788200)),
        (d.clone(), bson!({ "$minN": { "n": 2, "input": "$missing" } }), Err(5788200)),
        (d.clone(), bson!({ "$firstN": { "n": 2, "input": "$n" } }), Err(5788200)),
        (d.clone(), bson!({ "$firstN": { "n": 0, "input": "$a" } }), Err(5787908)),
        (d.clone(), bson!({ "$firstN": { "input": "$a" } }), Err(5787906)),
        (d.clone(), bson!({ "$maxN": [1] }), Err(5787900)),
        (d.clone(), bson!({ "$median": { "input": "$a", "method": "approximate" } }), ok(bson!(2.5))),
        (
            d.clone(),
            bson!({ "$percentile": { "input": [1, 2, 3, 4], "p": [0.25, 1], "method": "approximate" } }),
            ok(bson!([1.0, 4.0])),
        ),
        (d.clone(), bson!({ "$median": { "input": "$b", "method": "approximate" } }), ok(bson!(3.0))),
        (d.clone(), bson!({ "$median": { "input": "$b", "method": "continuous" } }), Err(2)),
        // mongod's IDL checks `method` as it meets it, before the missing fields.
        (d.clone(), bson!({ "$median": { "method": "continuous" } }), Err(2)),
        (d.clone(), bson!({ "$median": { "method": "approximate" } }), Err(40414)),
        (d.clone(), bson!({ "$median": 1 }), Err(7436201)),
        (d.clone(), bson!({ "$percentile": [1] }), Err(7436200)),
        // `p` is folded to a constant at parse time; a field path cannot be.
        (
            d.clone(),
            bson!({ "$percentile": { "input": "$a", "p": [{ "$divide": [1, 4] }], "method": "approximate" } }),
            ok(bson!([1.0])),
        ),
        (d.clone(), bson!({ "$percentile": { "input": "$a", "p": "$s", "method": "approximate" } }), Err(7750300)),
        (d.clone(), bson!({ "$percentile": { "input": "$a", "p": ["$b"], "method": "approximate" } }), Err(7750300)),
        (
            d.clone(),
            bson!({ "$percentile": { "input": "$b", "p": [0.1, 0.9], "method": "approximate" } }),
            ok(bson!([3.0, 3.0])),
        ),
        (
            d.clone(),
            bson!({ "$percentile": { "input": [], "p": [0.1, 0.9], "method": "approximate" } }),
            ok(bson!([null, null])),
        ),
        (d.clone(), bson!({ "$function": { "body": "function() {}", "args": [], "lang": "js" } }), Err(31264)),
    ]);
    // NaN sorts below every number, so $min finds it; $sum and $avg carry it.
    for op in ["$min", "$sum", "$avg", "$stdDevPop"] {
        let got = eval(doc! {}, bson!({ op: [1, 2, f64::NAN] }));
        assert!(matches!(got, Ok(Some(Bson::Double(x))) if x.is_nan()), "{op}: {got:?}");
    }
}

#[test]
fn to_hashed_index_key_is_the_hashed_index_hash() {
    // mongod's documented example: {$toHashedIndexKey: "string to hash"}.
    assert_eq!(
        eval(doc! {}, bson!({ "$toHashedIndexKey": "string to hash" })),
        ok(Bson::Int64(763_543_691_661_428_748))
    );
    // Numbers hash by value across types; a missing value hashes as null.
    assert_eq!(eval(doc! {}, bson!({ "$toHashedIndexKey": 1 })), eval(doc! {}, bson!({ "$toHashedIndexKey": 1.0 })));
    assert_eq!(
        eval(doc! {}, bson!({ "$toHashedIndexKey": "$missing" })),
        eval(doc! {}, bson!({ "$toHashedIndexKey": null }))
    );
}
