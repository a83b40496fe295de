use super::*;
use crate::query::order::{canonical_type, compare_values};
use bson::{RawBson, doc, rawdoc};

fn filter(spec: bson::RawDocumentBuf) -> Filter {
    Filter::parse(&spec).unwrap()
}

fn matches(spec: bson::RawDocumentBuf, doc: bson::RawDocumentBuf) -> bool {
    filter(spec).matches(&doc)
}

fn parse_err(spec: bson::RawDocumentBuf) -> (i32, String) {
    let err = Filter::parse(&spec).unwrap_err();
    (err.code().code(), err.message().to_owned())
}

#[test]
fn filter_comparisons_under_collation() {
    let collation = |spec: bson::RawDocumentBuf| Arc::new(Collation::parse(&spec).unwrap().unwrap());
    let secondary = collation(rawdoc! { "locale": "en", "strength": 2 });
    let primary = collation(rawdoc! { "locale": "en", "strength": 1 });
    let numeric = collation(rawdoc! { "locale": "en", "numericOrdering": true });
    // (collation, filter, document, matches)
    let rows = [
        (&secondary, rawdoc! { "a": "abc" }, rawdoc! { "a": "ABC" }, true),
        (&secondary, rawdoc! { "a": "abc" }, rawdoc! { "a": "ábc" }, false),
        (&primary, rawdoc! { "a": "abc" }, rawdoc! { "a": "ÁBC" }, true),
        (&secondary, rawdoc! { "a": { "$ne": "abc" } }, rawdoc! { "a": "Abc" }, false),
        (&secondary, rawdoc! { "a": { "$in": ["x", "ABC"] } }, rawdoc! { "a": "abc" }, true),
        (&secondary, rawdoc! { "a": { "$nin": ["x", "ABC"] } }, rawdoc! { "a": "abc" }, false),
        (&secondary, rawdoc! { "a": { "$gt": "B" } }, rawdoc! { "a": "b" }, false),
        (&secondary, rawdoc! { "a": { "$gte": "B" } }, rawdoc! { "a": "b" }, true),
        (&numeric, rawdoc! { "a": { "$gt": "9" } }, rawdoc! { "a": "10" }, true),
        (&secondary, rawdoc! { "a.b": "X" }, rawdoc! { "a": [{ "b": "x" }] }, true),
        (&secondary, rawdoc! { "a": { "$elemMatch": { "$eq": "X" } } }, rawdoc! { "a": ["x"] }, true),
        (&secondary, rawdoc! { "a": { "b": "X" } }, rawdoc! { "a": { "b": "x" } }, true),
        (&secondary, rawdoc! { "$expr": { "$eq": ["$a", "ABC"] } }, rawdoc! { "a": "abc" }, true),
        // Regular expressions ignore the collation.
        (&primary, rawdoc! { "a": { "$regex": "^abc$" } }, rawdoc! { "a": "ABC" }, false),
        // Numbers are untouched.
        (&primary, rawdoc! { "a": 1 }, rawdoc! { "a": 1.0 }, true),
    ];
    for (collation, spec, doc, expected) in rows {
        let filter = Filter::parse(&spec).unwrap().with_collation(Some(collation));
        assert_eq!(filter.matches(&doc), expected, "{spec:?} on {doc:?}");
    }
    // Without a collation the same filter is binary.
    assert!(!filter(rawdoc! { "a": "abc" }).matches(&rawdoc! { "a": "ABC" }));
}

#[test]
fn filter_empty_matches_everything() {
    assert!(matches(rawdoc! {}, rawdoc! { "a": 1 }));
}

#[test]
fn filter_eq_implicit_scalar() {
    assert!(matches(rawdoc! { "a": 1 }, rawdoc! { "a": 1 }));
    assert!(!matches(rawdoc! { "a": 1 }, rawdoc! { "a": 2 }));
    assert!(!matches(rawdoc! { "a": 1 }, rawdoc! {}));
}

#[test]
fn filter_eq_mixed_numeric_types() {
    assert!(matches(rawdoc! { "a": 1 }, rawdoc! { "a": 1.0 }));
    assert!(matches(rawdoc! { "a": { "$eq": 2_i64 } }, rawdoc! { "a": 2 }));
    let dec: bson::Decimal128 = "3.0".parse().unwrap();
    assert!(matches(rawdoc! { "a": 3 }, rawdoc! { "a": dec }));
}

#[test]
fn filter_eq_array_element_or_whole_array() {
    assert!(matches(rawdoc! { "a": 2 }, rawdoc! { "a": [1, 2, 3] }));
    assert!(matches(rawdoc! { "a": [1, 2] }, rawdoc! { "a": [1, 2] }));
    assert!(!matches(rawdoc! { "a": [2, 1] }, rawdoc! { "a": [1, 2] }));
    assert!(matches(rawdoc! { "a": [1, 2] }, rawdoc! { "a": [[1, 2], 3] }));
}

#[test]
fn filter_eq_whole_document_is_order_sensitive() {
    assert!(matches(rawdoc! { "a": { "b": 1, "c": 2 } }, rawdoc! { "a": { "b": 1, "c": 2 } }));
    assert!(!matches(rawdoc! { "a": { "b": 1, "c": 2 } }, rawdoc! { "a": { "c": 2, "b": 1 } }));
}

#[test]
fn filter_eq_dotted_through_array_of_documents() {
    let doc = rawdoc! { "a": [ { "b": 1 }, { "b": 2 } ] };
    assert!(matches(rawdoc! { "a.b": 2 }, doc.clone()));
    assert!(matches(rawdoc! { "a.1.b": 2 }, doc.clone()));
    assert!(!matches(rawdoc! { "a.0.b": 2 }, doc));
}

#[test]
fn filter_eq_embedded_document_mixed_numbers() {
    assert!(matches(rawdoc! { "a": { "b": 1 } }, rawdoc! { "a": { "b": 1.0 } }));
    assert!(matches(rawdoc! { "a.b": 2_i64 }, rawdoc! { "a": { "b": 2.0 } }));
    assert!(!matches(rawdoc! { "a": { "b": 1 } }, rawdoc! { "a": { "b": 1, "c": 1 } }));
}

#[test]
fn filter_in_whole_array_value() {
    let f = filter(rawdoc! { "a": { "$in": [[1, 2], "x"] } });
    assert!(f.matches(&rawdoc! { "a": [1, 2] }));
    assert!(f.matches(&rawdoc! { "a": ["x"] }));
    assert!(!f.matches(&rawdoc! { "a": [2, 1] }));
}

#[test]
fn filter_eq_numeric_path_names_field_and_index() {
    assert!(matches(rawdoc! { "a.0": 5 }, rawdoc! { "a": [5, 6] }));
    assert!(matches(rawdoc! { "a.0": 5 }, rawdoc! { "a": { "0": 5 } }));
    assert!(!matches(rawdoc! { "a.1": 5 }, rawdoc! { "a": [5, 6] }));
}

#[test]
fn filter_eq_null_matches_missing() {
    assert!(matches(rawdoc! { "a": null }, rawdoc! {}));
    assert!(matches(rawdoc! { "a": null }, rawdoc! { "a": null }));
    assert!(matches(rawdoc! { "a": null }, rawdoc! { "a": bson::RawBson::Undefined }));
    assert!(matches(rawdoc! { "a": null }, rawdoc! { "a": [1, null] }));
    assert!(!matches(rawdoc! { "a": null }, rawdoc! { "a": 0 }));
    assert!(!matches(rawdoc! { "a": null }, rawdoc! { "a": [] }));
}

#[test]
fn filter_eq_null_dotted_legacy_semantics() {
    let f = filter(rawdoc! { "a.b": null });
    assert!(f.matches(&rawdoc! { "a": 4 }));
    assert!(f.matches(&rawdoc! { "a": {} }));
    assert!(f.matches(&rawdoc! { "a": [ { "b": 3 }, {} ] }));
    assert!(!f.matches(&rawdoc! { "a": [] }));
    assert!(!f.matches(&rawdoc! { "a": [1, 2] }));
    assert!(!f.matches(&rawdoc! { "a": [null] }));
    assert!(!f.matches(&rawdoc! { "a": { "b": "hi" } }));
}

#[test]
fn filter_ne_null_is_the_opposite() {
    let f = filter(rawdoc! { "a": { "$ne": null } });
    assert!(!f.matches(&rawdoc! {}));
    assert!(!f.matches(&rawdoc! { "a": null }));
    assert!(!f.matches(&rawdoc! { "a": bson::RawBson::Undefined }));
    assert!(f.matches(&rawdoc! { "a": 4 }));
    assert!(f.matches(&rawdoc! { "a": [] }));
}

#[test]
fn filter_ne_rejects_arrays_containing_the_value() {
    let f = filter(rawdoc! { "a": { "$ne": 1 } });
    assert!(!f.matches(&rawdoc! { "a": [1, 2] }));
    assert!(f.matches(&rawdoc! { "a": [2, 3] }));
    assert!(f.matches(&rawdoc! {}));
}

#[test]
fn filter_gt_type_bracketing() {
    let f = filter(rawdoc! { "a": { "$gt": 5 } });
    assert!(f.matches(&rawdoc! { "a": 6 }));
    assert!(f.matches(&rawdoc! { "a": 5.5 }));
    assert!(!f.matches(&rawdoc! { "a": "zzz" }));
    assert!(!f.matches(&rawdoc! { "a": {} }));
    assert!(!f.matches(&rawdoc! {}));
    let s = filter(rawdoc! { "a": { "$lt": "b" } });
    assert!(s.matches(&rawdoc! { "a": "a" }));
    assert!(!s.matches(&rawdoc! { "a": 1 }));
}

#[test]
fn filter_gt_any_array_element() {
    let f = filter(rawdoc! { "a": { "$gt": 5, "$lt": 10 } });
    // Each operator may be satisfied by a different element.
    assert!(f.matches(&rawdoc! { "a": [1, 20] }));
    assert!(!f.matches(&rawdoc! { "a": [1, 2] }));
}

#[test]
fn filter_gte_lte_null_match_missing() {
    assert!(matches(rawdoc! { "a": { "$gte": null } }, rawdoc! {}));
    assert!(matches(rawdoc! { "a": { "$lte": null } }, rawdoc! { "a": null }));
    assert!(!matches(rawdoc! { "a": { "$gt": null } }, rawdoc! {}));
    assert!(!matches(rawdoc! { "a": { "$lt": null } }, rawdoc! { "a": null }));
}

#[test]
fn filter_lt_maxkey_matches_everything_even_missing() {
    assert!(matches(rawdoc! { "a": { "$lt": bson::RawBson::MaxKey } }, rawdoc! {}));
    assert!(matches(rawdoc! { "a": { "$gt": bson::RawBson::MinKey } }, rawdoc! { "a": "x" }));
    assert!(!matches(rawdoc! { "a": { "$eq": bson::RawBson::MinKey } }, rawdoc! { "a": 1 }));
}

#[test]
fn filter_lte_nan_only_matches_nan() {
    assert!(matches(rawdoc! { "a": { "$lte": f64::NAN } }, rawdoc! { "a": f64::NAN }));
    assert!(!matches(rawdoc! { "a": { "$lt": f64::NAN } }, rawdoc! { "a": 1 }));
    assert!(!matches(rawdoc! { "a": { "$gt": 1 } }, rawdoc! { "a": f64::NAN }));
    assert!(matches(rawdoc! { "a": f64::NAN }, rawdoc! { "a": f64::NAN }));
}

#[test]
fn filter_lt_int64_against_double_exact() {
    let f = filter(rawdoc! { "a": { "$lt": 9.223372036854776e18 } });
    assert!(f.matches(&rawdoc! { "a": i64::MAX }));
    let g = filter(rawdoc! { "a": { "$gte": 9.223372036854776e18 } });
    assert!(!g.matches(&rawdoc! { "a": i64::MAX }));
}

#[test]
fn filter_in_values_and_null() {
    let f = filter(rawdoc! { "a": { "$in": [null, 4] } });
    assert!(f.matches(&rawdoc! { "a": 4.0 }));
    assert!(f.matches(&rawdoc! {}));
    assert!(f.matches(&rawdoc! { "a": [7, 4] }));
    assert!(!f.matches(&rawdoc! { "a": 5 }));
    assert!(!filter(rawdoc! { "a": { "$in": [] } }).matches(&rawdoc! { "a": 1 }));
}

#[test]
fn filter_nin_is_negated_in() {
    let f = filter(rawdoc! { "a": { "$nin": [null, 4] } });
    assert!(!f.matches(&rawdoc! {}));
    assert!(!f.matches(&rawdoc! { "a": [1, 4] }));
    assert!(f.matches(&rawdoc! { "a": 5 }));
}

#[test]
fn filter_exists_true_and_false() {
    assert!(matches(rawdoc! { "a": { "$exists": true } }, rawdoc! { "a": null }));
    assert!(matches(rawdoc! { "a": { "$exists": 1 } }, rawdoc! { "a": [] }));
    assert!(!matches(rawdoc! { "a": { "$exists": true } }, rawdoc! {}));
    assert!(matches(rawdoc! { "a": { "$exists": false } }, rawdoc! {}));
    assert!(matches(rawdoc! { "a.b": { "$exists": false } }, rawdoc! { "a": [] }));
    assert!(!matches(rawdoc! { "a.b": { "$exists": false } }, rawdoc! { "a": [ { "b": 1 } ] }));
}

#[test]
fn filter_and_or_nor() {
    let doc = rawdoc! { "a": 1, "b": 2 };
    assert!(matches(rawdoc! { "$and": [ { "a": 1 }, { "b": 2 } ] }, doc.clone()));
    assert!(matches(rawdoc! { "$or": [ { "a": 5 }, { "b": 2 } ] }, doc.clone()));
    assert!(!matches(rawdoc! { "$nor": [ { "a": 5 }, { "b": 2 } ] }, doc.clone()));
    assert!(matches(rawdoc! { "$nor": [ { "a": 5 } ], "b": 2 }, doc));
}

#[test]
fn filter_dbref_document_is_a_value() {
    let f = filter(rawdoc! { "r": { "$ref": "c", "$id": 1 } });
    assert!(f.matches(&rawdoc! { "r": { "$ref": "c", "$id": 1 } }));
}

#[test]
fn filter_unknown_operator_is_bad_value() {
    assert_eq!(parse_err(rawdoc! { "a": { "$foo": 1 } }), (2, "unknown operator: $foo".into()));
    assert_eq!(parse_err(rawdoc! { "a": { "$gt": 1, "b": 1 } }), (2, "unknown operator: b".into()));
    assert_eq!(
        parse_err(rawdoc! { "$foo": 1 }),
        (
            2,
            "unknown top level operator: $foo. If you have a field name that starts with a '$' symbol, \
             consider using $getField or $setField."
                .into()
        )
    );
}

#[test]
fn filter_and_requires_nonempty_array_of_objects() {
    assert_eq!(parse_err(rawdoc! { "$and": 1 }), (2, "$and must be an array".into()));
    assert_eq!(parse_err(rawdoc! { "$or": [] }), (2, "$and/$or/$nor must be a nonempty array".into()));
    assert_eq!(parse_err(rawdoc! { "$nor": [1] }), (2, "$or/$and/$nor entries need to be full objects".into()));
}

#[test]
fn filter_in_argument_errors() {
    assert_eq!(parse_err(rawdoc! { "a": { "$in": 1 } }), (2, "$in needs an array".into()));
    assert_eq!(parse_err(rawdoc! { "a": { "$nin": {} } }), (2, "$nin needs an array".into()));
    assert_eq!(parse_err(rawdoc! { "a": { "$in": [ { "$gt": 1 } ] } }), (2, "cannot nest $ under $in".into()));
}

#[test]
fn filter_compare_argument_errors() {
    let re = bson::Regex { pattern: "x".try_into().unwrap(), options: "".try_into().unwrap() };
    assert_eq!(
        parse_err(rawdoc! { "a": { "$gt": re.clone() } }),
        (2, "Can't have RegEx as arg to predicate over field 'a'.".into())
    );
    assert_eq!(parse_err(rawdoc! { "a": { "$ne": re } }), (2, "Can't have regex as arg to $ne.".into()));
    assert_eq!(parse_err(rawdoc! { "a": bson::RawBson::Undefined }), (2, "cannot compare to undefined".into()));
}

#[test]
fn filter_text_only_once_at_the_top_of_a_query() {
    let query_err = |filter: bson::RawDocumentBuf| {
        let err = Filter::parse_query(&filter).unwrap_err();
        (err.code().code(), err.message().to_owned())
    };
    let text = rawdoc! { "$search": "x" };
    assert!(Filter::parse_query(&rawdoc! { "$text": text.clone(), "a": 1 }).unwrap().has_text());
    assert!(Filter::parse_query(&rawdoc! { "$or": [{ "$text": text.clone() }, { "a": 1 }] }).unwrap().has_text());
    assert_eq!(
        query_err(rawdoc! { "$and": [{ "$text": text.clone() }, { "$text": text.clone() }] }),
        (2, "Too many text expressions".into())
    );
    assert_eq!(
        query_err(rawdoc! { "$nor": [{ "$text": text.clone() }] }),
        (2, "text expression not allowed in nor".into())
    );
    assert_eq!(query_err(rawdoc! { "a": { "$elemMatch": { "$text": text.clone() } } }).0, 2);
    assert_eq!(parse_err(rawdoc! { "$text": text }), (2, "$text is not allowed in this context".into()));
    assert_eq!(parse_err(rawdoc! { "$text": 1 }), (2, "$text expects an object".into()));
}

#[test]
fn filter_near_only_once_at_the_top_of_a_query() {
    let query_err = |filter: bson::RawDocumentBuf| Filter::parse_query(&filter).unwrap_err().message().to_owned();
    let near = rawdoc! { "$near": [0, 0], "$maxDistance": 1 };
    assert!(Filter::parse_query(&rawdoc! { "a": near.clone(), "b": 1 }).unwrap().has_near());
    assert_eq!(query_err(rawdoc! { "$or": [{ "a": near.clone() }, { "b": 1 }] }), "geo $near must be top-level expr");
    assert_eq!(
        query_err(rawdoc! { "$and": [{ "a": near.clone() }, { "b": near.clone() }] }),
        "Too many geoNear expressions"
    );
    assert_eq!(
        query_err(rawdoc! { "a": near.clone(), "$text": { "$search": "x" } }),
        "text and geoNear not allowed in same query"
    );
    // Outside a query (a validator, `$pull`): mongod's 5626500.
    assert_eq!(parse_err(rawdoc! { "a": near }).0, 5626500);
    assert_eq!(parse_err(rawdoc! { "a": { "$maxDistance": 1 } }).0, 2);
}

#[test]
fn filter_always_true_false_and_sample_rate() {
    assert!(matches(rawdoc! { "$alwaysTrue": 1 }, rawdoc! { "a": 1 }));
    assert!(!matches(rawdoc! { "$alwaysFalse": 1 }, rawdoc! { "a": 1 }));
    assert!(!matches(rawdoc! { "$or": [{ "$alwaysFalse": 1 }, { "a": 2 }] }, rawdoc! { "a": 1 }));
    assert_eq!(parse_err(rawdoc! { "$alwaysTrue": 2 }), (9, "$alwaysTrue must be an integer value of 1".into()));
    assert_eq!(parse_err(rawdoc! { "$sampleRate": "x" }), (2, "argument to $sampleRate must be a numeric type".into()));
    assert_eq!(
        parse_err(rawdoc! { "$sampleRate": 1.5 }),
        (2, "numeric argument to $sampleRate must be in [0, 1]".into())
    );
    assert!(!matches(rawdoc! { "$sampleRate": 0 }, rawdoc! {}));
    assert!(matches(rawdoc! { "$sampleRate": 1.0 }, rawdoc! {}));
    // About half of many documents: the binomial's spread at 4000 draws is about 32.
    let half = filter(rawdoc! { "$sampleRate": 0.5 });
    let kept = (0..4000).filter(|_| half.matches(&rawdoc! {})).count();
    assert!((1700..2300).contains(&kept), "{kept} of 4000");
}

#[test]
fn filter_json_schema_with_other_operators() {
    let schema = rawdoc! { "$jsonSchema": { "required": ["a"], "properties": { "a": { "bsonType": "int" } } } };
    assert!(matches(schema.clone(), rawdoc! { "a": 1 }));
    assert!(!matches(schema.clone(), rawdoc! { "a": "x" }));
    assert!(!matches(schema, rawdoc! { "b": 1 }));
    let combined = rawdoc! { "$or": [ { "$jsonSchema": { "required": ["z"] } }, { "a": 2 } ] };
    assert!(matches(combined.clone(), rawdoc! { "a": 2 }));
    assert!(matches(combined.clone(), rawdoc! { "z": 0 }));
    assert!(!matches(combined, rawdoc! { "a": 1 }));
    let in_elem_match = rawdoc! { "arr": { "$elemMatch": { "$jsonSchema": { "required": ["k"] } } } };
    assert!(matches(in_elem_match.clone(), rawdoc! { "arr": [ { "j": 1 }, { "k": 1 } ] }));
    assert!(!matches(in_elem_match, rawdoc! { "arr": [ { "j": 1 } ] }));
    assert_eq!(parse_err(rawdoc! { "$jsonSchema": 1 }).0, 14);
    assert_eq!(parse_err(rawdoc! { "$jsonSchema": { "bogus": 1 } }).0, 9);
}

#[test]
fn filter_expr_compares_fields_of_one_document() {
    let spec = rawdoc! { "$expr": { "$gt": ["$a", "$b"] } };
    assert!(matches(spec.clone(), rawdoc! { "a": 2, "b": 1 }));
    assert!(!matches(spec.clone(), rawdoc! { "a": 1, "b": 1 }));
    // No type bracketing: a string is above every number.
    assert!(matches(spec.clone(), rawdoc! { "a": "x", "b": 5 }));
    // Missing sorts below null, so a missing `a` is not above a null `b`.
    assert!(!matches(spec, rawdoc! { "b": null }));
}

#[test]
fn filter_expr_truthiness_and_logic() {
    assert!(matches(rawdoc! { "$expr": "$a" }, rawdoc! { "a": "" }));
    assert!(!matches(rawdoc! { "$expr": "$a" }, rawdoc! { "a": 0.0 }));
    assert!(!matches(rawdoc! { "$expr": "$a" }, rawdoc! {}));
    assert!(matches(rawdoc! { "$expr": true, "a": 1 }, rawdoc! { "a": 1 }));
    assert!(!matches(rawdoc! { "$expr": false, "a": 1 }, rawdoc! { "a": 1 }));
    let either = rawdoc! { "$or": [ { "$expr": { "$eq": ["$a", 1] } }, { "b": 2 } ] };
    assert!(matches(either.clone(), rawdoc! { "a": 1 }));
    assert!(matches(either.clone(), rawdoc! { "b": 2 }));
    assert!(!matches(either, rawdoc! { "a": 2 }));
    let neither = rawdoc! { "$nor": [ { "$expr": { "$eq": ["$a", 1] } } ] };
    assert!(matches(neither, rawdoc! { "a": 2 }));
}

#[test]
fn filter_expr_root_variable_and_errors() {
    let spec = rawdoc! { "$expr": { "$eq": [ { "$size": { "$literal": [1, 2] } }, "$$ROOT.n" ] } };
    assert!(matches(spec, rawdoc! { "n": 2 }));
    assert_eq!(parse_err(rawdoc! { "$expr": { "$foo": 1 } }).0, 168);
    let failing = Filter::parse(&rawdoc! { "$expr": { "$divide": ["$a", 0] } }).unwrap();
    let doc = rawdoc! { "a": 1 };
    assert!(!failing.matches(&doc));
    assert_eq!(failing.try_matches(&doc).unwrap_err().code().code(), 2);
    let with_let = Filter::parse(&rawdoc! { "$or": [ { "$expr": { "$eq": ["$a", "$$want"] } } ] }).unwrap();
    let unbound = with_let.clone();
    let with_let = with_let.with_variables(&Variables::from_let(&rawdoc! { "want": 1 }).unwrap());
    assert!(with_let.matches(&doc));
    assert!(!with_let.matches(&rawdoc! { "a": 2 }));
    assert_eq!(unbound.try_matches(&doc).unwrap_err().code().code(), 17276);
    let ok = Filter::parse(&rawdoc! { "a": 1, "$expr": { "$lt": ["$a", 5] } }).unwrap();
    assert_eq!(ok.try_matches(&doc), Ok(true));
    assert_eq!(ok.try_matches(&rawdoc! { "a": 7 }), Ok(false));
}

fn re(pattern: &str, options: &str) -> bson::Regex {
    bson::Regex { pattern: pattern.try_into().unwrap(), options: options.try_into().unwrap() }
}

/// Runs `(filter, document, expected)` rows, naming the failing row.
fn table(rows: &[(bson::RawDocumentBuf, bson::RawDocumentBuf, bool)]) {
    for (i, (spec, doc, expected)) in rows.iter().enumerate() {
        let got = Filter::parse(spec).unwrap_or_else(|e| panic!("row {i}: {e}")).matches(doc);
        assert_eq!(got, *expected, "row {i}: filter {spec:?} on {doc:?}");
    }
}

#[test]
fn filter_regex_operator_and_options() {
    table(&[
        (rawdoc! { "a": { "$regex": "^ab" } }, rawdoc! { "a": "abc" }, true),
        (rawdoc! { "a": { "$regex": "^ab" } }, rawdoc! { "a": "xab" }, false),
        (rawdoc! { "a": { "$regex": "^AB", "$options": "i" } }, rawdoc! { "a": "abc" }, true),
        (rawdoc! { "a": { "$options": "i", "$regex": "^AB" } }, rawdoc! { "a": "abc" }, true),
        (rawdoc! { "a": { "$regex": re("^AB", "i") } }, rawdoc! { "a": "abc" }, true),
        (rawdoc! { "a": { "$regex": re("^b", ""), "$options": "m" } }, rawdoc! { "a": "a\nb" }, true),
        (rawdoc! { "a": { "$regex": "^b" } }, rawdoc! { "a": "a\nb" }, false),
        (rawdoc! { "a": { "$regex": "a.b", "$options": "s" } }, rawdoc! { "a": "a\nb" }, true),
        (rawdoc! { "a": { "$regex": "a.b" } }, rawdoc! { "a": "a\nb" }, false),
        (rawdoc! { "a": { "$regex": "a b # comment", "$options": "x" } }, rawdoc! { "a": "ab" }, true),
        (rawdoc! { "a": { "$regex": "b" } }, rawdoc! { "a": ["x", "abc"] }, true),
        (rawdoc! { "a": { "$regex": "1" } }, rawdoc! { "a": 1 }, false),
        (rawdoc! { "a": { "$regex": "" } }, rawdoc! {}, false),
        (rawdoc! { "a": { "$regex": "" } }, rawdoc! { "a": null }, false),
        (rawdoc! { "a": { "$regex": "^x" } }, rawdoc! { "a": bson::RawBson::Symbol("xy".into()) }, true),
        (rawdoc! { "a.b": { "$regex": "é" } }, rawdoc! { "a": [ { "b": "café" } ] }, true),
    ]);
}

#[test]
fn filter_regex_end_anchor_is_pcre() {
    table(&[
        (rawdoc! { "a": re("abc$", "") }, rawdoc! { "a": "abc\n" }, true),
        (rawdoc! { "a": re("abc$", "") }, rawdoc! { "a": "abc\nx" }, false),
        (rawdoc! { "a": re("abc$", "m") }, rawdoc! { "a": "abc\nx" }, true),
        (rawdoc! { "a": re("abc\\Z", "") }, rawdoc! { "a": "abc\n" }, true),
        (rawdoc! { "a": re("abc\\z", "") }, rawdoc! { "a": "abc\n" }, false),
        (rawdoc! { "a": re("a[$]b", "") }, rawdoc! { "a": "a$b" }, true),
        (rawdoc! { "a": re("a[]$]b", "") }, rawdoc! { "a": "a]b" }, true),
        (rawdoc! { "a": re("a\\$b", "") }, rawdoc! { "a": "a$b" }, true),
        (rawdoc! { "a": re("a[[:digit:]$]b", "") }, rawdoc! { "a": "a$b" }, true),
    ]);
}

#[test]
fn filter_regex_value_is_implicit_regex_or_equal_regex() {
    table(&[
        (rawdoc! { "a": re("^x", "") }, rawdoc! { "a": "xyz" }, true),
        (rawdoc! { "a": re("^x", "i") }, rawdoc! { "a": "XYZ" }, true),
        (rawdoc! { "a": re("^x", "") }, rawdoc! { "a": re("^x", "") }, true),
        (rawdoc! { "a": re("^x", "") }, rawdoc! { "a": re("^x", "i") }, false),
        (rawdoc! { "a": re("^x", "") }, rawdoc! { "a": 5 }, false),
    ]);
}

#[test]
fn filter_in_and_nin_with_regexes() {
    table(&[
        (rawdoc! { "a": { "$in": [re("^x", ""), 5] } }, rawdoc! { "a": "xa" }, true),
        (rawdoc! { "a": { "$in": [re("^x", ""), 5] } }, rawdoc! { "a": 5.0 }, true),
        (rawdoc! { "a": { "$in": [re("^x", ""), 5] } }, rawdoc! { "a": "ya" }, false),
        (rawdoc! { "a": { "$in": [re("^x", "")] } }, rawdoc! { "a": ["y", "xx"] }, true),
        (rawdoc! { "a": { "$nin": [re("^x", "")] } }, rawdoc! { "a": "xa" }, false),
        (rawdoc! { "a": { "$nin": [re("^x", "")] } }, rawdoc! { "a": "ya" }, true),
        (rawdoc! { "a": { "$nin": [re("^x", "")] } }, rawdoc! {}, true),
    ]);
}

#[test]
fn filter_regex_errors() {
    assert_eq!(parse_err(rawdoc! { "a": { "$regex": 1 } }), (2, "$regex has to be a string".into()));
    assert_eq!(parse_err(rawdoc! { "a": { "$options": "i" } }), (2, "$options needs a $regex".into()));
    assert_eq!(parse_err(rawdoc! { "a": { "$regex": "x", "$options": 1 } }), (2, "$options has to be a string".into()));
    assert_eq!(
        parse_err(rawdoc! { "a": { "$regex": re("x", "i"), "$options": "m" } }),
        (51075, "options set in both $regex and $options".into())
    );
    assert_eq!(
        parse_err(rawdoc! { "a": { "$options": "m", "$regex": re("x", "i") } }),
        (51074, "options set in both $regex and $options".into())
    );
    assert_eq!(
        parse_err(rawdoc! { "a": { "$regex": "x", "$options": "z" } }),
        (51108, " invalid flag in regex options: z".into())
    );
    let (code, message) = parse_err(rawdoc! { "a": { "$regex": "(" } });
    assert_eq!(code, 51091);
    assert!(message.starts_with("Regular expression is invalid: "), "{message}");
    assert_eq!(parse_err(rawdoc! { "a": { "$regex": "(?=x" } }).0, 51091, "an unclosed lookahead");
    let long = "a".repeat(32_765);
    assert_eq!(
        parse_err(rawdoc! { "a": { "$regex": long.as_str(), "$options": "z" } }),
        (2, "Regular expression is too long".into())
    );
    assert!(Filter::parse(&rawdoc! { "a": { "$regex": &long[1..] } }).is_ok());
}

#[test]
fn filter_not_with_regex_and_operators() {
    table(&[
        (rawdoc! { "a": { "$not": re("^x", "") } }, rawdoc! { "a": "xa" }, false),
        (rawdoc! { "a": { "$not": re("^x", "") } }, rawdoc! { "a": "ya" }, true),
        (rawdoc! { "a": { "$not": re("^x", "") } }, rawdoc! {}, true),
        (rawdoc! { "a": { "$not": { "$gt": 5 } } }, rawdoc! { "a": 3 }, true),
        (rawdoc! { "a": { "$not": { "$gt": 5 } } }, rawdoc! { "a": 6 }, false),
        (rawdoc! { "a": { "$not": { "$gt": 5 } } }, rawdoc! { "a": "x" }, true),
        (rawdoc! { "a": { "$not": { "$gt": 5 } } }, rawdoc! {}, true),
        (rawdoc! { "a": { "$not": { "$gt": 5 } } }, rawdoc! { "a": [1, 6] }, false),
        (rawdoc! { "a": { "$not": { "$gt": 1, "$lt": 5 } } }, rawdoc! { "a": 3 }, false),
        (rawdoc! { "a": { "$not": { "$gt": 1, "$lt": 5 } } }, rawdoc! { "a": 7 }, true),
        (rawdoc! { "a": { "$not": { "$regex": "^x" } } }, rawdoc! { "a": "xa" }, false),
        (rawdoc! { "a": { "$not": { "$size": 2 } } }, rawdoc! { "a": [1] }, true),
    ]);
}

#[test]
fn filter_not_errors() {
    assert_eq!(parse_err(rawdoc! { "a": { "$not": 5 } }), (2, "$not needs a regex or a document".into()));
    assert_eq!(parse_err(rawdoc! { "a": { "$not": {} } }), (2, "$not cannot be empty".into()));
    assert_eq!(parse_err(rawdoc! { "a": { "$not": { "b": 1 } } }), (2, "unknown operator: b".into()));
}

#[test]
fn filter_type_names_codes_and_arrays() {
    let dec: bson::Decimal128 = "1.5".parse().unwrap();
    table(&[
        (rawdoc! { "a": { "$type": "string" } }, rawdoc! { "a": "x" }, true),
        (rawdoc! { "a": { "$type": 2 } }, rawdoc! { "a": "x" }, true),
        (rawdoc! { "a": { "$type": 2.0 } }, rawdoc! { "a": "x" }, true),
        (rawdoc! { "a": { "$type": "string" } }, rawdoc! { "a": 1 }, false),
        (rawdoc! { "a": { "$type": "number" } }, rawdoc! { "a": 1_i64 }, true),
        (rawdoc! { "a": { "$type": "number" } }, rawdoc! { "a": dec }, true),
        (rawdoc! { "a": { "$type": "number" } }, rawdoc! { "a": "1" }, false),
        (rawdoc! { "a": { "$type": "int" } }, rawdoc! { "a": 1.0 }, false),
        (rawdoc! { "a": { "$type": "double" } }, rawdoc! { "a": 1.0 }, true),
        (rawdoc! { "a": { "$type": ["string", 16] } }, rawdoc! { "a": 3 }, true),
        (rawdoc! { "a": { "$type": "null" } }, rawdoc! { "a": null }, true),
        (rawdoc! { "a": { "$type": "null" } }, rawdoc! {}, false),
        (rawdoc! { "a": { "$type": "array" } }, rawdoc! { "a": [] }, true),
        (rawdoc! { "a": { "$type": "array" } }, rawdoc! { "a": [[1]] }, true),
        (rawdoc! { "a": { "$type": "array" } }, rawdoc! { "a": 1 }, false),
        (rawdoc! { "a": { "$type": "string" } }, rawdoc! { "a": [1, "x"] }, true),
        (rawdoc! { "a": { "$type": "object" } }, rawdoc! { "a": { "b": 1 } }, true),
        (rawdoc! { "a": { "$type": "minKey" } }, rawdoc! { "a": bson::RawBson::MinKey }, true),
        (rawdoc! { "a": { "$type": -1 } }, rawdoc! { "a": bson::RawBson::MinKey }, true),
        (rawdoc! { "a": { "$type": 127 } }, rawdoc! { "a": bson::RawBson::MaxKey }, true),
        (rawdoc! { "a": { "$type": "regex" } }, rawdoc! { "a": re("x", "") }, true),
        (rawdoc! { "a.b": { "$type": "int" } }, rawdoc! { "a": [ { "b": "x" }, { "b": 2 } ] }, true),
    ]);
}

#[test]
fn filter_type_errors() {
    assert_eq!(parse_err(rawdoc! { "a": { "$type": "foo" } }), (2, "Unknown type name alias: foo".into()));
    assert_eq!(parse_err(rawdoc! { "a": { "$type": 99 } }), (2, "Invalid numerical type code: 99".into()));
    assert_eq!(parse_err(rawdoc! { "a": { "$type": 1.5 } }), (2, "Invalid numerical type code: 1.5".into()));
    assert_eq!(
        parse_err(rawdoc! { "a": { "$type": {} } }),
        (14, "type must be represented as a number or a string".into())
    );
    assert_eq!(parse_err(rawdoc! { "a": { "$type": [] } }), (9, "a must match at least one type".into()));
}

#[test]
fn filter_mod_matches_truncated_numbers() {
    let dec: bson::Decimal128 = "10.7".parse().unwrap();
    table(&[
        (rawdoc! { "a": { "$mod": [4, 0] } }, rawdoc! { "a": 8 }, true),
        (rawdoc! { "a": { "$mod": [4, 0] } }, rawdoc! { "a": 9 }, false),
        (rawdoc! { "a": { "$mod": [4, 1] } }, rawdoc! { "a": 9_i64 }, true),
        (rawdoc! { "a": { "$mod": [4, 1] } }, rawdoc! { "a": 9.9 }, true),
        (rawdoc! { "a": { "$mod": [4, -1] } }, rawdoc! { "a": -9 }, true),
        (rawdoc! { "a": { "$mod": [4.5, 2.9] } }, rawdoc! { "a": 10 }, true),
        (rawdoc! { "a": { "$mod": [4, 2] } }, rawdoc! { "a": dec }, true),
        (rawdoc! { "a": { "$mod": [4, 0] } }, rawdoc! { "a": f64::NAN }, false),
        (rawdoc! { "a": { "$mod": [4, 0] } }, rawdoc! { "a": f64::INFINITY }, false),
        (rawdoc! { "a": { "$mod": [4, 0] } }, rawdoc! { "a": 1e300 }, false),
        (rawdoc! { "a": { "$mod": [4, 0] } }, rawdoc! { "a": "8" }, false),
        (rawdoc! { "a": { "$mod": [4, 0] } }, rawdoc! {}, false),
        (rawdoc! { "a": { "$mod": [4, 0] } }, rawdoc! { "a": [1, 12] }, true),
        (rawdoc! { "a": { "$mod": [-1, 0] } }, rawdoc! { "a": i64::MIN }, true),
    ]);
}

#[test]
fn filter_mod_errors() {
    let rows: [(bson::RawDocumentBuf, &str); 9] = [
        (rawdoc! { "a": { "$mod": 4 } }, "malformed mod, needs to be an array"),
        (rawdoc! { "a": { "$mod": [] } }, "malformed mod, not enough elements"),
        (rawdoc! { "a": { "$mod": [4] } }, "malformed mod, not enough elements"),
        (rawdoc! { "a": { "$mod": [4, 1, 2] } }, "malformed mod, too many elements"),
        (rawdoc! { "a": { "$mod": ["4", 1] } }, "malformed mod, divisor not a number"),
        (rawdoc! { "a": { "$mod": [4, "1"] } }, "malformed mod, remainder not a number"),
        (rawdoc! { "a": { "$mod": [0, 1] } }, "divisor cannot be 0"),
        (
            rawdoc! { "a": { "$mod": [f64::NAN, 1] } },
            "malformed mod, divisor value is invalid :: caused by :: Unable to coerce NaN/Inf to integral type",
        ),
        (
            rawdoc! { "a": { "$mod": [4, 1e19] } },
            "malformed mod, remainder value is invalid :: caused by :: Out of bounds coercing to integral value",
        ),
    ];
    for (spec, message) in rows {
        assert_eq!(parse_err(spec), (2, message.to_owned()));
    }
    assert_eq!(parse_err(rawdoc! { "a": { "$mod": [0.5, 1] } }), (2, "divisor cannot be 0".into()));
}

#[test]
fn filter_size_counts_arrays_only() {
    table(&[
        (rawdoc! { "a": { "$size": 2 } }, rawdoc! { "a": [1, 2] }, true),
        (rawdoc! { "a": { "$size": 2.0 } }, rawdoc! { "a": [1, 2] }, true),
        (rawdoc! { "a": { "$size": 2_i64 } }, rawdoc! { "a": [1, 2] }, true),
        (rawdoc! { "a": { "$size": 1 } }, rawdoc! { "a": [1, 2] }, false),
        (rawdoc! { "a": { "$size": 0 } }, rawdoc! { "a": [] }, true),
        (rawdoc! { "a": { "$size": 0 } }, rawdoc! {}, false),
        (rawdoc! { "a": { "$size": 0 } }, rawdoc! { "a": null }, false),
        (rawdoc! { "a": { "$size": 1 } }, rawdoc! { "a": "x" }, false),
        (rawdoc! { "a": { "$size": 2 } }, rawdoc! { "a": [[1, 2]] }, false),
        (rawdoc! { "a.b": { "$size": 2 } }, rawdoc! { "a": [ { "b": [1] }, { "b": [1, 2] } ] }, true),
    ]);
}

#[test]
fn filter_size_errors() {
    assert_eq!(parse_err(rawdoc! { "a": { "$size": "2" } }), (2, "$size needs a number".into()));
    assert_eq!(parse_err(rawdoc! { "a": { "$size": 1.5 } }), (2, "$size must be a whole number".into()));
    assert_eq!(parse_err(rawdoc! { "a": { "$size": -1 } }), (2, "$size may not be negative".into()));
    assert_eq!(
        parse_err(rawdoc! { "a": { "$size": 1_i64 << 40 } }),
        (2, "$size must be representable as a 32-bit integer".into())
    );
}

#[test]
fn filter_all_values_regexes_and_elem_match() {
    table(&[
        (rawdoc! { "a": { "$all": [1, 2] } }, rawdoc! { "a": [2, 3, 1] }, true),
        (rawdoc! { "a": { "$all": [1, 2] } }, rawdoc! { "a": [1, 3] }, false),
        (rawdoc! { "a": { "$all": [1] } }, rawdoc! { "a": 1 }, true),
        (rawdoc! { "a": { "$all": [] } }, rawdoc! { "a": [] }, false),
        (rawdoc! { "a": { "$all": [[1, 2]] } }, rawdoc! { "a": [1, 2] }, true),
        (rawdoc! { "a": { "$all": [[1, 2]] } }, rawdoc! { "a": [[1, 2], 3] }, true),
        (rawdoc! { "a": { "$all": [re("^x", ""), "yy"] } }, rawdoc! { "a": ["xa", "yy"] }, true),
        (rawdoc! { "a": { "$all": [re("^x", ""), "yy"] } }, rawdoc! { "a": ["ya", "yy"] }, false),
        (rawdoc! { "a": { "$all": [null] } }, rawdoc! {}, true),
        (rawdoc! { "a": { "$all": [ { "b": 1 } ] } }, rawdoc! { "a": [ { "b": 1 } ] }, true),
        (
            rawdoc! { "a": { "$all": [ { "$elemMatch": { "b": 1 } }, { "$elemMatch": { "c": 2 } } ] } },
            rawdoc! { "a": [ { "b": 1 }, { "c": 2 } ] },
            true,
        ),
        (
            rawdoc! { "a": { "$all": [ { "$elemMatch": { "b": 1 } }, { "$elemMatch": { "c": 3 } } ] } },
            rawdoc! { "a": [ { "b": 1 }, { "c": 2 } ] },
            false,
        ),
    ]);
}

#[test]
fn filter_all_errors() {
    assert_eq!(parse_err(rawdoc! { "a": { "$all": 1 } }), (2, "$all needs an array".into()));
    assert_eq!(parse_err(rawdoc! { "a": { "$all": [ { "$gt": 1 } ] } }), (2, "no $ expressions in $all".into()));
    assert_eq!(
        parse_err(rawdoc! { "a": { "$all": [ { "$elemMatch": { "b": 1 } }, 5 ] } }),
        (2, "$all/$elemMatch has to be consistent".into())
    );
}

#[test]
fn filter_elem_match_value_form() {
    table(&[
        (rawdoc! { "a": { "$elemMatch": { "$gt": 1, "$lt": 5 } } }, rawdoc! { "a": [0, 3] }, true),
        // Without $elemMatch each bound may be met by a different element; with it, not.
        (rawdoc! { "a": { "$elemMatch": { "$gt": 1, "$lt": 5 } } }, rawdoc! { "a": [0, 6] }, false),
        (rawdoc! { "a": { "$gt": 1, "$lt": 5 } }, rawdoc! { "a": [0, 6] }, true),
        (rawdoc! { "a": { "$elemMatch": { "$gt": 1 } } }, rawdoc! { "a": 3 }, false),
        (rawdoc! { "a": { "$elemMatch": { "$gt": 1 } } }, rawdoc! { "a": [[3]] }, false),
        (rawdoc! { "a": { "$elemMatch": { "$regex": "^x" } } }, rawdoc! { "a": ["y", "xz"] }, true),
        (rawdoc! { "a": { "$elemMatch": { "$not": { "$gt": 1 } } } }, rawdoc! { "a": [5, 0] }, true),
        (rawdoc! { "a": { "$elemMatch": { "$not": { "$gt": 1 } } } }, rawdoc! { "a": [5, 6] }, false),
        (rawdoc! { "a": { "$elemMatch": { "$size": 1 } } }, rawdoc! { "a": [[1]] }, true),
        (rawdoc! { "a": { "$elemMatch": { "$elemMatch": { "$gt": 2 } } } }, rawdoc! { "a": [[1], [3]] }, true),
        (rawdoc! { "a": { "$elemMatch": { "$eq": null } } }, rawdoc! { "a": [null] }, true),
        (rawdoc! { "a": { "$elemMatch": { "$eq": null } } }, rawdoc! { "a": [] }, false),
        (rawdoc! { "a": { "$elemMatch": { "$exists": true } } }, rawdoc! { "a": [1] }, true),
    ]);
}

#[test]
fn filter_elem_match_object_form() {
    let doc = rawdoc! { "a": [ { "b": 1, "c": 2 }, { "b": 2, "c": 1 } ] };
    table(&[
        (rawdoc! { "a": { "$elemMatch": { "b": 1, "c": 2 } } }, doc.clone(), true),
        (rawdoc! { "a": { "$elemMatch": { "b": 1, "c": 1 } } }, doc.clone(), false),
        (rawdoc! { "a.b": 1, "a.c": 1 }, doc.clone(), true),
        (rawdoc! { "a": { "$elemMatch": { "$or": [ { "b": 5 }, { "c": 1 } ] } } }, doc.clone(), true),
        (rawdoc! { "a": { "$elemMatch": { "b": { "$gte": 2 } } } }, doc.clone(), true),
        (rawdoc! { "a": { "$elemMatch": {} } }, doc.clone(), true),
        (rawdoc! { "a": { "$elemMatch": {} } }, rawdoc! { "a": [1] }, false),
        (rawdoc! { "a": { "$elemMatch": {} } }, rawdoc! { "a": [] }, false),
        (rawdoc! { "a": { "$elemMatch": { "b": 1 } } }, rawdoc! { "a": { "b": 1 } }, false),
        (rawdoc! { "a": { "$elemMatch": { "0": 7 } } }, rawdoc! { "a": [[7]] }, true),
        (rawdoc! { "a": { "$elemMatch": { "$id": 7 } } }, rawdoc! { "a": [ { "$ref": "c", "$id": 7 } ] }, true),
        (rawdoc! { "x.a": { "$elemMatch": { "b": 1 } } }, rawdoc! { "x": [ { "a": [ { "b": 1 } ] } ] }, true),
    ]);
}

#[test]
fn filter_elem_match_errors() {
    assert_eq!(parse_err(rawdoc! { "a": { "$elemMatch": 1 } }), (2, "$elemMatch needs an Object".into()));
    assert_eq!(
        parse_err(rawdoc! { "a": { "$elemMatch": { "b": 1, "$where": "x" } } }),
        (6108304, "no globalScriptEngine in $where parsing".into())
    );
    assert_eq!(parse_err(rawdoc! { "a": { "$elemMatch": { "$gt": 1, "b": 1 } } }), (2, "unknown operator: b".into()));
}

#[test]
fn filter_bits_masks_positions_and_bindata() {
    let bin = |bytes: Vec<u8>| bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes };
    table(&[
        (rawdoc! { "a": { "$bitsAllSet": 5 } }, rawdoc! { "a": 7 }, true),
        (rawdoc! { "a": { "$bitsAllSet": 5 } }, rawdoc! { "a": 6 }, false),
        (rawdoc! { "a": { "$bitsAllSet": [0, 2] } }, rawdoc! { "a": 5_i64 }, true),
        (rawdoc! { "a": { "$bitsAnySet": [1, 3] } }, rawdoc! { "a": 8.0 }, true),
        (rawdoc! { "a": { "$bitsAnySet": [1, 3] } }, rawdoc! { "a": 5 }, false),
        (rawdoc! { "a": { "$bitsAllClear": [1, 3] } }, rawdoc! { "a": 5 }, true),
        (rawdoc! { "a": { "$bitsAnyClear": [0, 1] } }, rawdoc! { "a": 1 }, true),
        (rawdoc! { "a": { "$bitsAnyClear": [0, 1] } }, rawdoc! { "a": 3 }, false),
        // Bits past 63 take the sign.
        (rawdoc! { "a": { "$bitsAllSet": [100] } }, rawdoc! { "a": -1 }, true),
        (rawdoc! { "a": { "$bitsAllClear": [100] } }, rawdoc! { "a": 1 }, true),
        (rawdoc! { "a": { "$bitsAllSet": 1 } }, rawdoc! { "a": 1.5 }, false),
        (rawdoc! { "a": { "$bitsAllClear": 1 } }, rawdoc! { "a": 1e19 }, false),
        (rawdoc! { "a": { "$bitsAllClear": 1 } }, rawdoc! { "a": "x" }, false),
        (rawdoc! { "a": { "$bitsAllClear": 1 } }, rawdoc! {}, false),
        (rawdoc! { "a": { "$bitsAllSet": bin(vec![0x05]) } }, rawdoc! { "a": 5 }, true),
        (rawdoc! { "a": { "$bitsAllSet": [8] } }, rawdoc! { "a": bin(vec![0x00, 0x01]) }, true),
        (rawdoc! { "a": { "$bitsAllClear": [20] } }, rawdoc! { "a": bin(vec![0xff]) }, true),
        (rawdoc! { "a": { "$bitsAllSet": [] } }, rawdoc! { "a": 0 }, true),
        (rawdoc! { "a": { "$bitsAnySet": [] } }, rawdoc! { "a": 0 }, false),
        (rawdoc! { "a": { "$bitsAnySet": 2 } }, rawdoc! { "a": [1, 2] }, true),
    ]);
}

#[test]
fn filter_bits_errors() {
    assert_eq!(
        parse_err(rawdoc! { "a": { "$bitsAllSet": "x" } }),
        (2, "$bitsAllSet takes an Array, a number, or a BinData but received: $bitsAllSet: \"x\"".into())
    );
    assert_eq!(
        parse_err(rawdoc! { "a": { "$bitsAllSet": -1 } }),
        (9, "Expected a positive number in: $bitsAllSet: -1".into())
    );
    assert_eq!(parse_err(rawdoc! { "a": { "$bitsAnySet": 1.5 } }), (9, "Expected an integer: $bitsAnySet: 1.5".into()));
    assert_eq!(
        parse_err(rawdoc! { "a": { "$bitsAnySet": 1e19 } }),
        (9, "Cannot represent as a 64-bit integer: $bitsAnySet: 1e+19.0".into())
    );
    assert_eq!(
        parse_err(rawdoc! { "a": { "$bitsAllClear": [-1] } }),
        (2, "bit positions must be >= 0 but got: 0: -1".into())
    );
    assert_eq!(
        parse_err(rawdoc! { "a": { "$bitsAllClear": ["x"] } }),
        (2, "bit positions must be an integer but got: 0: \"x\"".into())
    );
}

#[test]
fn filter_where_and_unknown_operators() {
    assert_eq!(parse_err(rawdoc! { "$where": "true" }), (6108304, "no globalScriptEngine in $where parsing".into()));
    assert_eq!(
        parse_err(rawdoc! { "$or": [ { "a": 1 }, { "$where": "true" } ] }),
        (6108304, "no globalScriptEngine in $where parsing".into())
    );
    let in_match = Filter::parse_match_stage(&rawdoc! { "$where": "true" }).unwrap_err();
    assert_eq!((in_match.code().code(), in_match.message()), (2, "$where is not allowed in this context"));
    assert!(Filter::parse_match_stage(&rawdoc! { "a": 1 }).is_ok());
    assert_eq!(parse_err(rawdoc! { "a": { "$where": "x" } }), (2, "$where cannot be applied to a field".into()));
    assert_eq!(
        parse_err(rawdoc! { "$foo": 1 }),
        (
            2,
            "unknown top level operator: $foo. If you have a field name that starts with a '$' symbol, \
             consider using $getField or $setField."
                .into()
        )
    );
    assert_eq!(parse_err(rawdoc! { "a": { "$foo": 1 } }), (2, "unknown operator: $foo".into()));
}

#[test]
fn filter_comment_any_type_and_nor() {
    table(&[
        (rawdoc! { "$comment": { "x": [1] }, "a": 1 }, rawdoc! { "a": 1 }, true),
        (rawdoc! { "$comment": 5 }, rawdoc! {}, true),
        (rawdoc! { "$nor": [ { "a": 1 }, { "b": 2 } ] }, rawdoc! { "a": 2 }, true),
        (rawdoc! { "$nor": [ { "a": { "$exists": false } } ] }, rawdoc! {}, false),
    ]);
}

#[test]
fn filter_first_array_match_positions() {
    let key = |spec: bson::RawDocumentBuf, doc: bson::RawDocumentBuf| filter(spec).first_array_match(&doc);
    assert_eq!(key(rawdoc! { "a": 6 }, rawdoc! { "a": [5, 6] }), Some(1));
    assert_eq!(key(rawdoc! { "a": 7 }, rawdoc! { "a": [5, 6] }), None);
    assert_eq!(key(rawdoc! { "a": 5 }, rawdoc! { "a": 5 }), None);
    assert_eq!(key(rawdoc! { "a.b": 2 }, rawdoc! { "a": [ { "b": 1 }, { "b": [0, 2] } ] }), Some(1));
    assert_eq!(
        key(rawdoc! { "a": { "$elemMatch": { "b": 2 } } }, rawdoc! { "a": [ { "b": 1 }, { "b": 2 } ] }),
        Some(1)
    );
    assert_eq!(key(rawdoc! { "x": 1, "a": { "$gt": 4 } }, rawdoc! { "x": 1, "a": [1, 9] }), Some(1));
    assert_eq!(key(rawdoc! { "a": 7 }, rawdoc! { "a": [5, 6] }), None, "no match, no key");
}

/// mongod's `elemMatchKey` as `$` sees it, by the shape of the query: for a projection
/// (conjunctions in query order) and for an update (canonical order: operator, then path).
#[test]
fn filter_match_key_follows_mongod_matcher() {
    let grades = rawdoc! { "_id": 1, "grades": [ { "grade": 80, "mean": 75 }, { "grade": 85, "mean": 90 }, { "grade": 85, "mean": 85 } ] };
    let scores = rawdoc! { "_id": 1, "s": [80, 85, 90], "t": [1, 2] };
    let deans = rawdoc! { "_id": 8, "activity_ids": [1, 2], "grades": [90, 95], "deans_list": [2021, 2020] };
    // (query, document, projection key, update key)
    type Row<'d> = (bson::RawDocumentBuf, &'d bson::RawDocumentBuf, Option<usize>, Option<usize>);
    let rows: Vec<Row<'_>> = vec![
        (rawdoc! { "s": 85 }, &scores, Some(1), Some(1)),
        (rawdoc! { "_id": 1, "s": { "$gte": 85 } }, &scores, Some(1), Some(1)),
        (rawdoc! { "grades.grade": 85 }, &grades, Some(1), Some(1)),
        // `$elemMatch`: the element that satisfies every condition at once.
        (
            rawdoc! { "grades": { "$elemMatch": { "grade": { "$lte": 90 }, "mean": { "$gt": 80 } } } },
            &grades,
            Some(1),
            Some(1),
        ),
        (rawdoc! { "grades": { "$elemMatch": { "grade": 85, "mean": 85 } } }, &grades, Some(2), Some(2)),
        // Without `$elemMatch` each condition records its own element and the last one wins:
        // in query order for a projection, by operator then path for an update.
        (rawdoc! { "grades.grade": 85, "grades.mean": 85 }, &grades, Some(2), Some(2)),
        (rawdoc! { "grades.mean": 85, "grades.grade": 85 }, &grades, Some(1), Some(2)),
        (rawdoc! { "grades.mean": { "$gt": 80 }, "grades.grade": 80 }, &grades, Some(0), Some(1)),
        // mongod's manual: deans_list.$ is set at grades' position.
        (rawdoc! { "activity_ids": 1, "grades": 95, "deans_list": 2021 }, &deans, Some(0), Some(1)),
        (rawdoc! { "$and": [ { "s": 90 }, { "t": 1 } ] }, &scores, Some(0), Some(0)),
        (rawdoc! { "$and": [ { "t": 1 }, { "s": 90 } ] }, &scores, Some(2), Some(0)),
        // A condition that reaches no array leaves the key of an earlier one.
        (rawdoc! { "s": 90, "_id": 1 }, &scores, Some(2), Some(2)),
        // `$or` records nothing, unless the optimizer makes it one clause or an `$in`.
        (rawdoc! { "$or": [ { "s": 90 }, { "t": 2 } ] }, &scores, None, None),
        (rawdoc! { "$or": [ { "s": 90 } ] }, &scores, Some(2), Some(2)),
        (rawdoc! { "$or": [ { "$or": [ { "s": 90 } ] } ] }, &scores, Some(2), Some(2)),
        (rawdoc! { "$or": [ { "s": 90 }, { "s": 85 } ] }, &scores, Some(1), Some(1)),
        (rawdoc! { "$or": [ { "s": 90 }, { "s": { "$gt": 80 } } ] }, &scores, None, None),
        (rawdoc! { "s": 80, "$or": [ { "t": 2 }, { "t": 5 } ] }, &scores, Some(1), Some(1)),
        (rawdoc! { "s": 80, "$or": [ { "t": 2 }, { "_id": 5 } ] }, &scores, Some(0), Some(0)),
        (rawdoc! { "s": { "$in": [90, 85] } }, &scores, Some(1), Some(1)),
        // Negations record nothing.
        (rawdoc! { "s": { "$ne": 1 } }, &scores, None, None),
        (rawdoc! { "$nor": [ { "s": 1 } ] }, &scores, None, None),
        (rawdoc! { "s": { "$not": { "$lt": 50 } } }, &scores, None, None),
        // `$size` tests the array itself; a value `$elemMatch` records its element.
        (rawdoc! { "s": { "$size": 3 } }, &scores, None, None),
        (rawdoc! { "s": { "$elemMatch": { "$gt": 82 } } }, &scores, Some(1), Some(1)),
        // The optimizer moves the children of a nested conjunction after the others.
        (rawdoc! { "$and": [ { "s": 90 }, { "_id": 1 } ], "t": 2 }, &scores, Some(2), Some(1)),
        (rawdoc! { "$or": [ { "$and": [ { "s": 90 }, { "_id": 1 } ] } ], "t": 2 }, &scores, Some(2), Some(1)),
    ];
    for (spec, doc, projection, update) in rows {
        let f = filter(spec.clone());
        assert!(f.matches(doc), "{spec:?} must match");
        assert_eq!(f.first_array_match(doc), projection, "projection {spec:?}");
        assert_eq!(f.match_key(doc), update, "update {spec:?}");
    }
}

#[test]
fn filter_comment_is_ignored() {
    assert!(matches(rawdoc! { "$comment": "hi", "a": 1 }, rawdoc! { "a": 1 }));
}

#[test]
fn filter_seed_equalities_nested_and_id_first() {
    let f = filter(rawdoc! {
        "x.y": 1, "$and": [ { "a": { "$eq": 2 } }, { "b": { "$gt": 3 } } ], "_id": 7, "c": { "$in": [4] }
    });
    assert_eq!(f.equality_seed().unwrap(), doc! { "_id": 7, "a": 2, "c": 4, "x": { "y": 1 } });
}

#[test]
fn filter_seed_skips_non_equalities() {
    let f = filter(rawdoc! { "a": { "$in": [1, 2] }, "$or": [ { "b": 1 }, { "c": 1 } ], "d": { "$ne": 1 } });
    assert_eq!(f.equality_seed().unwrap(), doc! {});
    let single = filter(rawdoc! { "$or": [ { "b": 1 } ] });
    assert_eq!(single.equality_seed().unwrap(), doc! { "b": 1 });
}

#[test]
fn filter_seed_conflicting_paths_are_54() {
    let err = filter(rawdoc! { "a": 1, "$and": [ { "a": 2 } ] }).equality_seed().unwrap_err();
    assert_eq!(err.code().code(), 54);
    assert_eq!(err.message(), "cannot infer query fields to set, path 'a' is matched twice");
    let err = filter(rawdoc! { "a": 1, "a.b": 2 }).equality_seed().unwrap_err();
    assert_eq!(err.message(), "cannot infer query fields to set, both paths 'a.b' and 'a' are matched");
}

mod comparison_properties {
    use super::*;
    use proptest::prelude::*;

    /// Scalars of every comparable kind, numbers of all four types clustered around a few
    /// values so that cross-type ties are common. NaN is left out: it is the one value
    /// where filters and the sort order disagree on purpose (tested above).
    fn arb_scalar() -> impl Strategy<Value = RawBson> {
        let small = -3i64..3;
        prop_oneof![
            small.clone().prop_map(|i| RawBson::Int32(i32::try_from(i).unwrap_or_default())),
            small.clone().prop_map(RawBson::Int64),
            small.clone().prop_map(|i| RawBson::Double(i as f64)),
            (small.clone(), 0u8..4).prop_map(|(i, q)| RawBson::Double(i as f64 + f64::from(q) / 4.0)),
            small.prop_map(|i| RawBson::Decimal128(i.to_string().parse().unwrap())),
            any::<i64>().prop_map(RawBson::Int64),
            any::<f64>().prop_filter("no NaN", |d| !d.is_nan()).prop_map(RawBson::Double),
            "[a-c]{0,3}".prop_map(RawBson::String),
            any::<bool>().prop_map(RawBson::Boolean),
            Just(RawBson::Null),
            (0i64..3).prop_map(|ms| RawBson::DateTime(bson::DateTime::from_millis(ms))),
        ]
    }

    fn expected(op: &str, doc: &RawBson, rhs: &RawBson) -> bool {
        let (a, b) = (doc.as_raw_bson_ref(), rhs.as_raw_bson_ref());
        if canonical_type(a) != canonical_type(b) {
            return false;
        }
        let ord = compare_values(a, b);
        match op {
            "$eq" => ord.is_eq(),
            "$lt" => ord.is_lt(),
            "$lte" => ord.is_le(),
            "$gt" => ord.is_gt(),
            _ => ord.is_ge(),
        }
    }

    proptest! {
        #[test]
        fn filter_comparison_agrees_with_compare_values(
            value in arb_scalar(),
            rhs in arb_scalar(),
            op in prop::sample::select(vec!["$eq", "$lt", "$lte", "$gt", "$gte"]),
        ) {
            let mut doc = bson::RawDocumentBuf::new();
            doc.append(bson::raw::cstr!("a"), value.clone());
            let mut ops = bson::RawDocumentBuf::new();
            ops.append(<&bson::raw::CStr>::try_from(op).unwrap(), rhs.clone());
            let mut spec = bson::RawDocumentBuf::new();
            spec.append(bson::raw::cstr!("a"), ops);
            let got = Filter::parse(&spec).unwrap().matches(&doc);
            prop_assert_eq!(got, expected(op, &value, &rhs), "{:?} {} {:?}", value, op, rhs);
            // Implicit equality is `$eq`.
            if op == "$eq" {
                let mut implicit = bson::RawDocumentBuf::new();
                implicit.append(bson::raw::cstr!("a"), rhs.clone());
                prop_assert_eq!(Filter::parse(&implicit).unwrap().matches(&doc), got);
            }
        }
    }
}

#[test]
fn filter_paths_past_180_components_are_5729100() {
    let spec = |n: usize| {
        let mut spec = bson::RawDocumentBuf::new();
        spec.append(<&bson::raw::CStr>::try_from(vec!["a"; n].join(".").as_str()).unwrap(), 1);
        spec
    };
    assert_eq!(parse_err(spec(181)), (5_729_100, "FieldPath is too long".to_owned()));
    assert_eq!(parse_err(spec(10_000)).0, 5_729_100);
    assert!(Filter::parse(&spec(180)).is_ok());
    let mut elem_match = bson::RawDocumentBuf::new();
    elem_match.append(bson::raw::cstr!("x"), bson::rawdoc! { "$elemMatch": spec(181) });
    assert_eq!(parse_err(elem_match).0, 5_729_100);
}

#[test]
fn filter_regex_lookaround_and_backreferences_run_as_pcre() {
    let check =
        |filter: bson::RawDocumentBuf, doc: bson::RawDocumentBuf| Filter::parse(&filter).map(|f| f.matches(&doc));
    // pymongo's list_collection_names(filter=...) excludes system collections this way.
    let not_system = rawdoc! { "name": { "$regex": r"^(?!system\.)" } };
    assert_eq!(check(not_system.clone(), rawdoc! { "name": "orders" }).ok(), Some(true));
    assert_eq!(check(not_system, rawdoc! { "name": "system.views" }).ok(), Some(false));
    let repeated = rawdoc! { "w": { "$regex": r"^(a+)b\1$", "$options": "i" } };
    assert_eq!(check(repeated.clone(), rawdoc! { "w": "AAbAA" }).ok(), Some(true), "a backreference, with an option");
    assert_eq!(check(repeated, rawdoc! { "w": "aab" }).ok(), Some(false));
    let behind = rawdoc! { "w": { "$regex": r"(?<=\$)\d+$" } };
    assert_eq!(check(behind, rawdoc! { "w": "cost $42" }).ok(), Some(true));
}
