use bson::{Bson, Decimal128, RawDocumentBuf, bson, doc};

use super::*;

/// Runs the accumulator `{op: input}` over `values` (each the document `{v: value}`; `None`
/// leaves `v` missing) and returns the result.
fn run(op: &str, values: &[Option<Bson>]) -> Result<Bson, QueryError> {
    let spec_doc = RawDocumentBuf::try_from(&doc! { op: "$v" }).map_err(QueryError::invalid_bson)?;
    let spec = AccumulatorSpec::parse("out", RawBsonRef::Document(&spec_doc))?;
    let mut acc = spec.start();
    let vars = Variables::new();
    for value in values {
        let mut d = doc! {};
        if let Some(v) = value {
            d.insert("v", v.clone());
        }
        let raw = RawDocumentBuf::try_from(&d).map_err(QueryError::invalid_bson)?;
        spec.add(&mut acc, &raw, &vars)?;
    }
    Ok(acc.finish(spec.op))
}

fn ok(op: &str, values: &[Option<Bson>]) -> Bson {
    run(op, values).unwrap_or_else(|e| panic!("{op}: {e}"))
}

fn some(values: &[Bson]) -> Vec<Option<Bson>> {
    values.iter().cloned().map(Some).collect()
}

#[test]
fn sum_keeps_ints_widens_on_overflow_and_skips_non_numbers() {
    assert_eq!(ok("$sum", &some(&[bson!(1), bson!(2), bson!("x"), Bson::Null])), bson!(3));
    assert_eq!(ok("$sum", &[]), bson!(0));
    assert_eq!(ok("$sum", &some(&[bson!(i32::MAX), bson!(1)])), Bson::Int64(i64::from(i32::MAX) + 1));
    assert_eq!(ok("$sum", &some(&[bson!(1), Bson::Int64(2)])), Bson::Int64(3));
    assert_eq!(ok("$sum", &some(&[bson!(1), bson!(0.5)])), bson!(1.5));
    assert_eq!(ok("$sum", &some(&[Bson::Int64(i64::MAX), Bson::Int64(1)])), Bson::Double(i64::MAX as f64 + 1.0));
    let dec = |s: &str| Bson::Decimal128(s.parse::<Decimal128>().unwrap_or_else(|_| panic!("{s}")));
    assert_eq!(ok("$sum", &[Some(bson!(1)), Some(dec("0.1")), Some(dec("0.2"))]), dec("1.3"));
    // Arrays are not numbers in $group's $sum.
    assert_eq!(ok("$sum", &some(&[bson!([1, 2]), bson!(4)])), bson!(4));
}

#[test]
fn avg_is_a_double_or_null_when_nothing_is_numeric() {
    assert_eq!(ok("$avg", &some(&[bson!(1), bson!(2)])), bson!(1.5));
    assert_eq!(ok("$avg", &[None, Some(Bson::Null), Some(bson!("a"))]), Bson::Null);
    assert_eq!(ok("$avg", &some(&[Bson::Int64(4), bson!(2)])), bson!(3.0));
}

#[test]
fn min_and_max_ignore_null_and_missing_and_compare_across_types() {
    let values = [Some(bson!(3)), None, Some(Bson::Null), Some(bson!("a")), Some(bson!(1.5))];
    assert_eq!(ok("$min", &values), bson!(1.5));
    assert_eq!(ok("$max", &values), bson!("a"));
    assert_eq!(ok("$min", &[None, Some(Bson::Null)]), Bson::Null);
}

#[test]
fn first_and_last_turn_missing_into_null() {
    assert_eq!(ok("$first", &[None, Some(bson!(2))]), Bson::Null);
    assert_eq!(ok("$last", &[Some(bson!(2)), None]), Bson::Null);
    assert_eq!(ok("$first", &some(&[bson!(7), bson!(8)])), bson!(7));
    assert_eq!(ok("$last", &some(&[bson!(7), bson!(8)])), bson!(8));
}

#[test]
fn push_skips_missing_and_add_to_set_keeps_one_of_each_value() {
    assert_eq!(ok("$push", &[Some(bson!(1)), None, Some(Bson::Null), Some(bson!(1))]), bson!([1, null, 1]));
    assert_eq!(
        ok("$addToSet", &[Some(bson!(1)), Some(bson!(1.0)), None, Some(bson!({"a": 1})), Some(bson!({"a": 1}))]),
        bson!([1, {"a": 1}])
    );
}

#[test]
fn std_dev_population_and_sample() {
    let values = some(&[bson!(2), bson!(4), bson!(4), bson!(4), bson!(5), bson!(5), bson!(7), bson!(9)]);
    assert_eq!(ok("$stdDevPop", &values), bson!(2.0));
    let Bson::Double(samp) = ok("$stdDevSamp", &values) else { panic!("not a double") };
    assert!((samp - 2.138_089_935_299_395).abs() < 1e-12, "{samp}");
    assert_eq!(ok("$stdDevSamp", &some(&[bson!(1)])), Bson::Null);
    assert_eq!(ok("$stdDevPop", &[]), Bson::Null);
}

#[test]
fn merge_objects_overrides_in_order_and_refuses_non_documents() {
    let values = [Some(bson!({"a": 1, "b": 1})), None, Some(Bson::Null), Some(bson!({"b": 2}))];
    assert_eq!(ok("$mergeObjects", &values), bson!({"a": 1, "b": 2}));
    let err = run("$mergeObjects", &some(&[bson!(5)])).err().map(|e| e.code());
    assert_eq!(err, Some(ErrorCode::Location40400));
}

#[test]
fn parse_errors_carry_mongods_codes() {
    let code = |field: &str, spec: Bson| {
        let d = RawDocumentBuf::try_from(&doc! { "f": spec }).unwrap_or_default();
        let value = d.get("f").ok().flatten().unwrap_or(RawBsonRef::Null);
        AccumulatorSpec::parse(field, value).err().map(|e| e.code())
    };
    assert_eq!(code("a", bson!(1)), Some(ErrorCode::Location40234));
    assert_eq!(code("a", bson!({"sum": 1})), Some(ErrorCode::Location40234));
    assert_eq!(code("a.b", bson!({"$sum": 1})), Some(ErrorCode::Location40235));
    assert_eq!(code("$a", bson!({"$sum": 1})), Some(ErrorCode::Location40236));
    assert_eq!(code("a", bson!({"$sum": [1, 2]})), Some(ErrorCode::Location40237));
    assert_eq!(code("a", bson!({"$sum": 1, "$avg": 1})), Some(ErrorCode::Location40238));
    assert_eq!(code("a", bson!({"$bogus": 1})), Some(ErrorCode::Location15952));
    assert_eq!(code("a", bson!({"$topN": {}})), Some(ErrorCode::Location5788003));
    assert_eq!(code("a", bson!({"$count": 1})), Some(ErrorCode::Location40180));
    assert_eq!(code("a", bson!({"$count": {}})), None);
}

/// Runs `{op: "$v"}` over `values` split at every point into two accumulators, the second's
/// partial state merged into the first: each split must give the unsplit result.
fn merged_agrees(op: &str, values: &[Option<Bson>]) {
    merged_agrees_with(op, bson!("$v"), values);
}

/// [`merged_agrees`] for the accumulator `{op: arg}`.
fn merged_agrees_with(op: &str, arg: Bson, values: &[Option<Bson>]) {
    let spec_doc = RawDocumentBuf::try_from(&doc! { op: arg }).expect("spec");
    let spec = AccumulatorSpec::parse("out", RawBsonRef::Document(&spec_doc)).expect("parses");
    let vars = Variables::new();
    let feed = |acc: &mut Accumulator, part: &[Option<Bson>]| {
        for value in part {
            let mut d = doc! {};
            if let Some(v) = value {
                d.insert("v", v.clone());
            }
            let raw = RawDocumentBuf::try_from(&d).expect("encodes");
            spec.add(acc, &raw, &vars).expect("adds");
        }
    };
    let mut whole = spec.start();
    feed(&mut whole, values);
    let expected = whole.finish(spec.op);
    for split in 0..=values.len() {
        let (first, second) = values.split_at(split);
        let (mut a, mut b) = (spec.start(), spec.start());
        // As a merged group starts: prepared, before any input.
        spec.prepare(&mut a, None, &vars).expect("prepares");
        feed(&mut a, first);
        feed(&mut b, second);
        // Through BSON, as the spill files hold it.
        let partial = b.partial().expect("partial");
        let bytes = RawDocumentBuf::try_from(&doc! { "p": partial }).expect("encodes");
        let back = bson::Document::try_from(bytes.as_ref()).expect("decodes");
        if split < values.len() {
            a.merge(spec.op, back.get("p").expect("p"), &vars).expect("merges");
        }
        let got = a.finish(spec.op);
        match (&got, &expected) {
            (Bson::Double(x), Bson::Double(y)) => {
                assert!((x - y).abs() <= 1e-12 * y.abs().max(1.0), "{op} split at {split}: {got} vs {expected}");
            }
            // A decimal total may keep other trailing zeros; its value must agree.
            (Bson::Decimal128(_), Bson::Decimal128(_)) => {
                let (x, y) =
                    (RawBson::try_from(got.clone()).expect("raw"), RawBson::try_from(expected.clone()).expect("raw"));
                assert!(
                    crate::query::compare_values(x.as_raw_bson_ref(), y.as_raw_bson_ref()).is_eq(),
                    "{op} split at {split}: {got} vs {expected}"
                );
            }
            _ => assert_eq!(got, expected, "{op} split at {split}"),
        }
    }
}

#[test]
fn partial_states_merge_to_the_unsplit_result() {
    let dec = |s: &str| Bson::Decimal128(s.parse::<Decimal128>().unwrap_or_else(|_| panic!("{s}")));
    let mixed = vec![
        Some(bson!(3)),
        None,
        Some(bson!("b")),
        Some(Bson::Int64(i64::MAX - 1)),
        Some(bson!(2.5)),
        Some(bson!({ "a": 1 })),
        Some(Bson::Null),
        Some(bson!(3)),
        Some(bson!("a")),
    ];
    for op in ["$sum", "$avg", "$min", "$max", "$first", "$last", "$push", "$addToSet", "$stdDevPop", "$stdDevSamp"] {
        merged_agrees(op, &mixed);
        merged_agrees(op, &some(&[bson!(1), bson!(2), bson!(2), bson!(7)]));
        merged_agrees(op, &[None, Some(bson!(4))]);
    }
    merged_agrees("$sum", &some(&[bson!(1), dec("0.1"), bson!(2.5), Bson::Int64(4)]));
    merged_agrees("$sum", &some(&[bson!(i32::MAX), bson!(1), bson!(1)]));
    merged_agrees(
        "$mergeObjects",
        &[Some(bson!({ "a": 1, "b": 1 })), None, Some(bson!({ "b": 2 })), Some(bson!({ "c": 3 }))],
    );
}

/// Runs the accumulator `{op: arg}` over `docs` with a fresh group (no key) and returns the
/// result or the error code.
fn run_spec(op: &str, arg: Bson, docs: &[bson::Document]) -> Result<Bson, i32> {
    let spec_doc = RawDocumentBuf::try_from(&doc! { op: arg }).expect("spec");
    let spec = AccumulatorSpec::parse("out", RawBsonRef::Document(&spec_doc)).map_err(|e| e.code().code())?;
    let mut acc = spec.start();
    let vars = Variables::new();
    for d in docs {
        let raw = RawDocumentBuf::try_from(d).expect("encodes");
        spec.add(&mut acc, &raw, &vars).map_err(|e| e.code().code())?;
    }
    Ok(acc.finish(spec.op))
}

fn sample() -> Vec<bson::Document> {
    vec![
        doc! { "v": 3, "i": 0 },
        doc! { "v": Bson::Null, "i": 1 },
        doc! { "i": 2 },
        doc! { "v": 5, "i": 3 },
        doc! { "v": 1, "i": 4 },
        doc! { "v": 5, "i": 5 },
    ]
}

#[test]
fn n_accumulators_keep_values_as_mongod() {
    let d = sample();
    assert_eq!(run_spec("$firstN", bson!({ "input": "$v", "n": 3 }), &d), Ok(bson!([3, null, null])));
    assert_eq!(run_spec("$lastN", bson!({ "input": "$v", "n": 2 }), &d), Ok(bson!([1, 5])));
    assert_eq!(run_spec("$maxN", bson!({ "input": "$v", "n": 2 }), &d), Ok(bson!([5, 5])));
    assert_eq!(run_spec("$minN", bson!({ "input": "$v", "n": 2 }), &d), Ok(bson!([1, 3])));
    assert_eq!(run_spec("$minN", bson!({ "input": "$v", "n": 10 }), &d), Ok(bson!([1, 3, 5, 5])));
    assert_eq!(run_spec("$firstN", bson!({ "input": "$v", "n": 2 }), &[]), Ok(bson!([])));
    assert_eq!(run_spec("$top", bson!({ "output": "$i", "sortBy": { "v": -1 } }), &d), Ok(bson!(3)));
    // Null (i 1) and missing (i 2) sort alike, last under {v: -1}: of equal keys mongod's
    // $bottom keeps the first seen.
    assert_eq!(run_spec("$bottom", bson!({ "output": "$i", "sortBy": { "v": -1 } }), &d), Ok(bson!(1)));
    assert_eq!(
        run_spec("$topN", bson!({ "output": "$v", "sortBy": { "v": 1 }, "n": 3 }), &d),
        Ok(bson!([null, null, 1]))
    );
    assert_eq!(
        run_spec("$bottomN", bson!({ "output": ["$i", "$v"], "sortBy": { "v": 1 }, "n": 2 }), &d),
        Ok(bson!([[3, 5], [5, 5]]))
    );
    assert_eq!(run_spec("$top", bson!({ "output": "$v", "sortBy": { "i": 1 } }), &[]), Ok(Bson::Null));
}

#[test]
fn median_and_percentile_pick_a_value_of_the_input() {
    let d = sample();
    assert_eq!(run_spec("$median", bson!({ "input": "$v", "method": "approximate" }), &d), Ok(bson!(3.0)));
    assert_eq!(
        run_spec("$percentile", bson!({ "input": "$v", "p": [0, 0.25, 0.95, 1], "method": "approximate" }), &d),
        Ok(bson!([1.0, 1.0, 5.0, 5.0]))
    );
    assert_eq!(run_spec("$median", bson!({ "input": "$s", "method": "approximate" }), &d), Ok(Bson::Null));
    assert_eq!(
        run_spec("$percentile", bson!({ "input": "$s", "p": [0.5, 0.9], "method": "approximate" }), &d),
        Ok(bson!([null, null]))
    );
    // mongod's example data of five values: 95th percentile and median.
    let five: Vec<bson::Document> = [111, 11, 11111, 1, 1111].iter().map(|v| doc! { "v": *v }).collect();
    assert_eq!(
        run_spec("$percentile", bson!({ "input": "$v", "p": [0.95, 0.5], "method": "approximate" }), &five),
        Ok(bson!([11111.0, 111.0]))
    );
}

#[test]
fn multi_value_accumulators_check_their_arguments() {
    let d = sample();
    let rows: Vec<(&str, Bson, i32)> = vec![
        ("$firstN", bson!({ "input": "$v" }), 5787906),
        ("$firstN", bson!({ "n": 1 }), 5787907),
        ("$firstN", bson!({ "input": "$v", "n": 1, "x": 1 }), 5787901),
        ("$firstN", bson!(1), 5787801),
        ("$maxN", bson!("a"), 5787900),
        ("$lastN", bson!({ "input": "$v", "n": 0 }), 5787908),
        ("$lastN", bson!({ "input": "$v", "n": 1.5 }), 5787903),
        ("$lastN", bson!({ "input": "$v", "n": "a" }), 5787902),
        ("$top", bson!({ "output": "$v", "sortBy": { "v": 1 }, "n": 1 }), 5788002),
        ("$topN", bson!({ "output": "$v", "sortBy": { "v": 1 } }), 5788003),
        ("$topN", bson!({ "sortBy": { "v": 1 }, "n": 1 }), 5788004),
        ("$topN", bson!({ "output": "$v", "n": 1 }), 5788005),
        ("$topN", bson!({ "output": "$v", "n": 1, "sortBy": 1 }), 10065),
        ("$bottom", bson!("a"), 5788001),
        ("$bottom", bson!([1]), 40237),
        ("$median", bson!(1), 7436100),
        ("$percentile", bson!(1), 7429703),
        ("$percentile", bson!({ "input": "$v", "p": 0.5, "method": "approximate" }), 7750301),
        ("$percentile", bson!({ "input": "$v", "p": [], "method": "approximate" }), 7750301),
        ("$percentile", bson!({ "input": "$v", "p": ["a"], "method": "approximate" }), 7750302),
        ("$percentile", bson!({ "input": "$v", "p": [1.5], "method": "approximate" }), 7750303),
        ("$percentile", bson!({ "input": "$v", "method": "approximate" }), 40414),
        ("$median", bson!({ "input": "$v" }), 40414),
        ("$median", bson!({ "input": "$v", "method": "approximate", "p": [0.5] }), 40415),
        ("$median", bson!({ "input": "$v", "method": "discrete" }), 2),
        ("$median", bson!({ "input": "$v", "method": 1 }), 14),
        ("$accumulator", bson!({ "init": "function() {}" }), 31264),
    ];
    for (op, arg, code) in rows {
        assert_eq!(run_spec(op, arg.clone(), &d), Err(code), "{op}: {arg}");
    }
}

#[test]
fn multi_value_partial_states_merge_to_the_unsplit_result() {
    // Ties on the sort key, nulls and a missing value: the kept order must survive a spill.
    let values = [
        Some(bson!(4)),
        Some(Bson::Null),
        Some(bson!(9)),
        None,
        Some(bson!(4)),
        Some(bson!("s")),
        Some(bson!(1)),
        Some(bson!(9)),
    ];
    for (op, arg) in [
        ("$firstN", bson!({ "input": "$v", "n": 3 })),
        ("$lastN", bson!({ "input": "$v", "n": 3 })),
        ("$maxN", bson!({ "input": "$v", "n": 3 })),
        ("$minN", bson!({ "input": "$v", "n": 3 })),
        ("$top", bson!({ "output": "$v", "sortBy": { "v": -1 } })),
        ("$bottom", bson!({ "output": "$v", "sortBy": { "v": -1 } })),
        ("$topN", bson!({ "output": "$v", "sortBy": { "v": 1 }, "n": 3 })),
        ("$bottomN", bson!({ "output": "$v", "sortBy": { "v": 1 }, "n": 3 })),
        ("$median", bson!({ "input": "$v", "method": "approximate" })),
        ("$percentile", bson!({ "input": "$v", "p": [0.1, 0.9], "method": "approximate" })),
    ] {
        merged_agrees_with(op, arg, &values);
    }
}

#[test]
fn bottom_keeps_the_first_of_equal_keys_in_a_group_and_the_last_in_a_sliding_window() {
    let docs: Vec<bson::Document> = (0..5).map(|i| doc! { "i": i, "k": i32::from(i >= 2) }).collect();
    let spec_of = |op: &str, arg: Bson| {
        let spec_doc = RawDocumentBuf::try_from(&doc! { op: arg }).expect("spec");
        AccumulatorSpec::parse("out", RawBsonRef::Document(&spec_doc)).expect("parses")
    };
    let vars = Variables::new();
    let feed = |spec: &AccumulatorSpec, mut acc: Accumulator| {
        for d in &docs {
            let raw = RawDocumentBuf::try_from(d).expect("encodes");
            spec.add(&mut acc, &raw, &vars).expect("adds");
        }
        acc.finish(spec.op)
    };
    // k: 0 0 1 1 1. mongod's $group: a later equal key never displaces a kept one.
    let bottom_n = spec_of("$bottomN", bson!({ "output": "$i", "sortBy": { "k": 1 }, "n": 2 }));
    assert_eq!(feed(&bottom_n, bottom_n.start()), bson!([2, 3]));
    let bottom = spec_of("$bottom", bson!({ "output": "$i", "sortBy": { "k": 1 } }));
    assert_eq!(feed(&bottom, bottom.start()), bson!(2));
    let top_n = spec_of("$topN", bson!({ "output": "$i", "sortBy": { "k": -1 }, "n": 2 }));
    assert_eq!(feed(&top_n, top_n.start()), bson!([2, 3]));
    // A sliding window ranks its whole window and takes the last n.
    assert_eq!(feed(&bottom_n, bottom_n.start_sliding()), bson!([3, 4]));
    assert_eq!(feed(&bottom, bottom.start_sliding()), bson!(4));
    assert_eq!(feed(&top_n, top_n.start_sliding()), bson!([2, 3]));
}

#[test]
fn n_accumulators_count_only_the_values_they_keep() {
    let big = "x".repeat(4096);
    let docs: Vec<RawDocumentBuf> =
        (0..2000).map(|i| RawDocumentBuf::try_from(&doc! { "i": i, "s": big.clone() }).expect("encodes")).collect();
    let vars = Variables::new();
    for (op, arg) in [
        ("$lastN", bson!({ "input": "$s", "n": 2 })),
        ("$maxN", bson!({ "input": { "$concat": ["$s", { "$toString": "$i" }] }, "n": 2 })),
        ("$bottomN", bson!({ "output": "$s", "sortBy": { "i": 1 }, "n": 2 })),
        ("$topN", bson!({ "output": "$s", "sortBy": { "i": -1 }, "n": 2 })),
    ] {
        let spec_doc = RawDocumentBuf::try_from(&doc! { op: arg }).expect("spec");
        let spec = AccumulatorSpec::parse("out", RawBsonRef::Document(&spec_doc)).expect("parses");
        let mut acc = spec.start();
        for d in &docs {
            spec.add(&mut acc, d, &vars).expect("adds");
        }
        // Two kept values of about 4 KiB each, not the 8 MB that passed through.
        assert!(acc.memory() < 3 * 4096, "{op} holds {} bytes", acc.memory());
    }
}

#[test]
fn n_accumulators_refuse_to_keep_more_than_the_memory_limit() {
    let big = "y".repeat(1 << 20);
    let doc = RawDocumentBuf::try_from(&doc! { "s": big }).expect("encodes");
    let spec_doc = RawDocumentBuf::try_from(&doc! { "$firstN": { "input": "$s", "n": 1000 } }).expect("spec");
    let spec = AccumulatorSpec::parse("out", RawBsonRef::Document(&spec_doc)).expect("parses");
    let mut acc = spec.start();
    let vars = Variables::new();
    let mut failed = None;
    for _ in 0..=(MAX_COLLECTED_BYTES >> 20) {
        if let Err(e) = spec.add(&mut acc, &doc, &vars) {
            failed = Some(e);
            break;
        }
    }
    let e = failed.expect("passes the limit");
    assert_eq!(e.code(), ErrorCode::ExceededMemoryLimit);
    assert!(e.message().starts_with("$firstN used too much memory"), "{}", e.message());
}

#[test]
fn n_is_evaluated_against_the_fields_of_a_document_key() {
    let spec_doc = RawDocumentBuf::try_from(&doc! { "$firstN": {
        "input": "$v",
        "n": { "$cond": { "if": { "$eq": ["$g", "G2"] }, "then": 1, "else": 3 } },
    } })
    .expect("spec");
    let spec = AccumulatorSpec::parse("out", RawBsonRef::Document(&spec_doc)).expect("parses");
    let vars = Variables::new();
    let docs: Vec<RawDocumentBuf> =
        (0..4).map(|v| RawDocumentBuf::try_from(&doc! { "v": v }).expect("encodes")).collect();
    let run_with_key = |key: Bson| {
        let key = RawBson::try_from(key).expect("raw");
        let mut acc = spec.start();
        spec.prepare(&mut acc, Some(key.as_raw_bson_ref()), &vars).expect("prepares");
        for d in &docs {
            spec.add(&mut acc, d, &vars).expect("adds");
        }
        acc.finish(spec.op)
    };
    assert_eq!(run_with_key(bson!({ "g": "G2" })), bson!([0]));
    assert_eq!(run_with_key(bson!({ "g": "G1" })), bson!([0, 1, 2]));
    // A key that is not a document gives `n` nothing to read: `$g` is missing.
    assert_eq!(run_with_key(bson!("G2")), bson!([0, 1, 2]));
}

#[test]
fn javascript_accumulator_answers_as_mongod_without_a_javascript_engine() {
    let spec_doc = RawDocumentBuf::try_from(&doc! { "$accumulator": { "init": "function() {}" } }).expect("spec");
    let err = AccumulatorSpec::parse("out", RawBsonRef::Document(&spec_doc)).expect_err("no JavaScript");
    assert_eq!(err.code(), ErrorCode::Location31264);
    assert_eq!(err.message(), "Cannot run server-side javascript without the javascript engine enabled");
}
