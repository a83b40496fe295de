use super::*;
use bson::raw::CStr;
use bson::{RawBson, doc, rawdoc};

fn update(spec: RawDocumentBuf) -> Update {
    Update::parse(&spec).unwrap()
}

/// Applies `spec` to `doc`, returning the new document and whether it changed.
fn run(spec: RawDocumentBuf, mut doc: Document) -> (Document, bool) {
    let changed = update(spec).apply(&mut doc, false).unwrap();
    (doc, changed)
}

fn run_err(spec: RawDocumentBuf, mut doc: Document) -> (i32, String) {
    let err = update(spec).apply(&mut doc, false).unwrap_err();
    (err.code().code(), err.message().to_owned())
}

fn parse_err(spec: RawDocumentBuf) -> (i32, String) {
    let err = Update::parse(&spec).unwrap_err();
    (err.code().code(), err.message().to_owned())
}

#[test]
fn update_operators_compare_under_collation() {
    let collation =
        Arc::new(crate::query::Collation::parse(&bson::rawdoc! { "locale": "en", "strength": 2 }).unwrap().unwrap());
    // (update, document before, document after)
    let rows = [
        (bson::rawdoc! { "$addToSet": { "t": "RED" } }, doc! { "t": ["red"] }, doc! { "t": ["red"] }),
        (bson::rawdoc! { "$addToSet": { "t": { "$each": ["B", "b"] } } }, doc! { "t": [] }, doc! { "t": ["B"] }),
        (bson::rawdoc! { "$pull": { "t": "RED" } }, doc! { "t": ["red", "blue"] }, doc! { "t": ["blue"] }),
        (bson::rawdoc! { "$pull": { "t": { "$in": ["BLUE"] } } }, doc! { "t": ["red", "blue"] }, doc! { "t": ["red"] }),
        (bson::rawdoc! { "$pullAll": { "t": ["RED"] } }, doc! { "t": ["red", "blue"] }, doc! { "t": ["blue"] }),
        // "B" sorts after "a" in English, before it in bytes.
        (bson::rawdoc! { "$max": { "s": "B" } }, doc! { "s": "a" }, doc! { "s": "B" }),
        (bson::rawdoc! { "$min": { "s": "A" } }, doc! { "s": "a" }, doc! { "s": "a" }),
        (
            bson::rawdoc! { "$push": { "t": { "$each": [], "$sort": 1 } } },
            doc! { "t": ["b", "C", "a"] },
            doc! { "t": ["a", "b", "C"] },
        ),
    ];
    for (spec, before, after) in rows {
        let update = Update::parse(&spec).unwrap().with_collation(Some(&collation)).unwrap();
        let mut doc = before.clone();
        update.apply(&mut doc, false).unwrap();
        assert_eq!(doc, after, "{spec:?} on {before}");
    }
}

#[test]
fn update_replacement_keeps_id_first() {
    let u = update(rawdoc! { "b": 2, "a": 1 });
    assert!(u.is_replacement());
    let mut doc = doc! { "_id": 1, "x": 0 };
    assert!(u.apply(&mut doc, false).unwrap());
    assert_eq!(doc, doc! { "_id": 1, "b": 2, "a": 1 });
}

#[test]
fn update_replacement_same_document_is_unchanged() {
    let (doc, changed) = run(rawdoc! { "_id": 1, "a": 1 }, doc! { "_id": 1, "a": 1 });
    assert!(!changed);
    assert_eq!(doc, doc! { "_id": 1, "a": 1 });
}

#[test]
fn update_replacement_changing_id_is_66() {
    let (code, message) = run_err(rawdoc! { "_id": 2 }, doc! { "_id": 1 });
    assert_eq!(code, 66);
    assert_eq!(
        message,
        "After applying the update, the (immutable) field '_id' was found to have been altered to _id: 2"
    );
    assert!(replace(&doc! { "_id": 1 }, &doc! { "_id": 1.0, "a": 1 }).is_ok());
}

#[test]
fn update_replacement_with_top_level_dollar_field_is_52_on_existing_documents_only() {
    let replacement = rawdoc! { "a": 1, "$set": { "b": 1 } };
    assert_eq!(
        run_err(replacement.clone(), doc! { "_id": 1 }),
        (
            52,
            "The dollar ($) prefixed field '$set' in '$set' is not allowed in the context of an update's \
             replacement document. Consider using an aggregation pipeline with $replaceWith."
                .into()
        )
    );
    // An upsert that inserts is checked as an insert.
    let mut inserted = Document::new();
    update(replacement).apply(&mut inserted, true).unwrap();
    assert_eq!(inserted, doc! { "a": 1, "$set": { "b": 1 } });
    // Nested `$` fields and DBRefs are storable.
    let (doc, _) = run(rawdoc! { "a": { "$b": 1 }, "r": { "$ref": "c", "$id": 1 } }, doc! { "_id": 1 });
    assert_eq!(doc, doc! { "_id": 1, "a": { "$b": 1 }, "r": { "$ref": "c", "$id": 1 } });
    let (doc, _) = run(rawdoc! { "a": 1, "$ref": "c", "$id": 1, "$db": "d" }, doc! { "_id": 1 });
    assert_eq!(doc, doc! { "_id": 1, "a": 1, "$ref": "c", "$id": 1, "$db": "d" });
    assert_eq!(
        run_err(rawdoc! { "a": 1, "$id": 1 }, doc! { "_id": 1 }),
        (55, "Found $id field without a $ref before it, which is invalid.".into())
    );
    assert_eq!(
        run_err(rawdoc! { "a": 1, "$ref": 1, "$id": 1 }, doc! { "_id": 1 }),
        (55, "The DBRef $ref field must be a String, not a int".into())
    );
}

#[test]
fn update_unknown_modifier_is_9() {
    assert_eq!(
        parse_err(rawdoc! { "$foo": { "a": 1 } }),
        (
            9,
            "Unknown modifier: $foo. Expected a valid update modifier or pipeline-style update specified as an array"
                .into()
        )
    );
    assert_eq!(
        parse_err(rawdoc! { "$set": { "a": 1 }, "obj": 1 }).1,
        "Unknown modifier: obj. Expected a valid update modifier or pipeline-style update specified as an array"
    );
    assert_eq!(
        parse_err(rawdoc! { "$set": "string" }),
        (9, r#"Modifiers operate on fields but we found type string instead. For example: {$mod: {<field>: ...}} not {$set: "string"}"#.into())
    );
}

#[test]
fn update_set_creates_nested_documents() {
    let (doc, changed) = run(rawdoc! { "$set": { "a.b.c": 1 } }, doc! { "_id": 1 });
    assert!(changed);
    assert_eq!(doc, doc! { "_id": 1, "a": { "b": { "c": 1 } } });
}

#[test]
fn update_set_new_fields_in_name_order() {
    let (doc, _) = run(rawdoc! { "$set": { "z": 1, "b": 2 }, "$inc": { "a": 1 } }, doc! { "_id": 1 });
    assert_eq!(doc, doc! { "_id": 1, "a": 1, "b": 2, "z": 1 });
}

#[test]
fn update_set_same_value_is_unchanged() {
    let (_, changed) = run(rawdoc! { "$set": { "a": 1, "b.c": "x" } }, doc! { "_id": 1, "a": 1, "b": { "c": "x" } });
    assert!(!changed);
    // 1.0 is a different type from 1, so it is a change.
    let (doc, changed) = run(rawdoc! { "$set": { "a": 1.0 } }, doc! { "_id": 1, "a": 1 });
    assert!(changed);
    assert_eq!(doc, doc! { "_id": 1, "a": 1.0 });
}

#[test]
fn update_set_keeps_field_position() {
    let (doc, _) = run(rawdoc! { "$set": { "a": 9 } }, doc! { "_id": 1, "a": 1, "b": 2 });
    assert_eq!(doc, doc! { "_id": 1, "a": 9, "b": 2 });
}

#[test]
fn update_set_allows_dollar_fields_inside_values() {
    let (doc, _) = run(rawdoc! { "$set": { "a": { "$b": 1 } } }, doc! { "_id": 1 });
    assert_eq!(doc, doc! { "_id": 1, "a": { "$b": 1 } });
}

#[test]
fn update_dollar_path_components_follow_mongod_5() {
    // Nested `$` fields may be set and unset on existing documents.
    let (doc, _) = run(rawdoc! { "$set": { "preferences.$each": 42 } }, doc! { "_id": 1, "preferences": {} });
    assert_eq!(doc, doc! { "_id": 1, "preferences": { "$each": 42 } });
    let (doc, changed) = run(
        rawdoc! { "$unset": { "nested.data.$*._id": 1 } },
        doc! { "_id": 1, "nested": { "data": { "$*": { "_id": 1, "k": 2 } } } },
    );
    assert!(changed);
    assert_eq!(doc, doc! { "_id": 1, "nested": { "data": { "$*": { "k": 2 } } } });
    // Inside an existing top-level `$` field too; creating or setting one is refused.
    let (doc, _) = run(rawdoc! { "$set": { "$a.b": 2 } }, doc! { "_id": 1, "$a": { "b": 1 } });
    assert_eq!(doc, doc! { "_id": 1, "$a": { "b": 2 } });
    let refused = (
        52,
        "The dollar ($) prefixed field '$myKey' in '$myKey' is not allowed in the context of an update's \
         replacement document. Consider using an aggregation pipeline with $replaceWith."
            .to_owned(),
    );
    assert_eq!(run_err(rawdoc! { "$set": { "$myKey": 1 } }, doc! { "_id": 1 }), refused);
    assert_eq!(run_err(rawdoc! { "$set": { "$myKey": 2 } }, doc! { "_id": 1, "$myKey": 1 }), refused);
    assert_eq!(run_err(rawdoc! { "$set": { "$myKey.x": 2 } }, doc! { "_id": 1 }), refused);
    assert_eq!(run_err(rawdoc! { "$rename": { "a": "$myKey" } }, doc! { "_id": 1, "a": 1 }), refused);
    // Setting it to the value it has is no change, so nothing is stored or checked.
    let (_, changed) = run(rawdoc! { "$set": { "$myKey": 1 } }, doc! { "_id": 1, "$myKey": 1 });
    assert!(!changed);
    // An upsert that inserts accepts them.
    let mut inserted = Document::new();
    update(rawdoc! { "$set": { "$myKey": 1 } }).apply(&mut inserted, true).unwrap();
    assert_eq!(inserted, doc! { "$myKey": 1 });
    // A pipeline may store them (mongod's advice for them).
    let stages = bson::rawdoc! { "s": [
        { "$replaceWith": { "$setField": { "field": { "$literal": "$a" }, "value": 1, "input": "$$ROOT" } } },
    ] };
    let Ok(Some(RawBsonRef::Array(stages))) = stages.get("s") else { panic!("stages") };
    let mut doc = doc! { "_id": 1 };
    Update::parse_pipeline(stages, &Variables::default()).unwrap().apply(&mut doc, false).unwrap();
    assert_eq!(doc, doc! { "_id": 1, "$a": 1 });
    // The positional forms may not come first.
    assert_eq!(
        parse_err(rawdoc! { "$set": { "$": 1 } }),
        (2, "Cannot have positional (i.e. '$') element in the first position in path '$'".into())
    );
    assert_eq!(
        parse_err(rawdoc! { "$set": { "$[].a": 1 } }),
        (
            2,
            "Cannot have array filter identifier (i.e. '$[<id>]') element in the first position in path '$[].a'".into()
        )
    );
    assert_eq!(
        parse_err(rawdoc! { "$set": { "$.a.$": 1 } }).1,
        "Too many positional (i.e. '$') elements found in path '$.a.$'"
    );
}

#[test]
fn update_set_empty_path_component_is_56() {
    assert_eq!(
        parse_err(rawdoc! { "$set": { "a..b": 1 } }),
        (56, "The update path 'a..b' contains an empty field name, which is not allowed.".into())
    );
    assert_eq!(parse_err(rawdoc! { "$set": { "": 1 } }).0, 56);
}

#[test]
fn update_set_through_scalar_is_28() {
    assert_eq!(
        run_err(rawdoc! { "$set": { "a.b": 1 } }, doc! { "_id": 1, "a": 5 }),
        (28, "Cannot create field 'b' in element {a: 5}".into())
    );
    assert_eq!(
        run_err(rawdoc! { "$set": { "v.foo": 1 } }, doc! { "_id": 1, "v": [ { "foo": [ { "bar": "hello" } ] } ] }).1,
        r#"Cannot create field 'foo' in element {v: [ { foo: [ { bar: "hello" } ] } ]}"#
    );
}

#[test]
fn update_set_array_index_and_padding() {
    let (doc, _) = run(rawdoc! { "$set": { "a.1": 9, "a.4": 7 } }, doc! { "_id": 1, "a": [1, 2] });
    assert_eq!(doc, doc! { "_id": 1, "a": [1, 9, null, null, 7] });
    let (doc, _) = run(rawdoc! { "$set": { "a.0.b": 9 } }, doc! { "_id": 1, "a": [ { "b": 1 } ] });
    assert_eq!(doc, doc! { "_id": 1, "a": [ { "b": 9 } ] });
    assert_eq!(run_err(rawdoc! { "$set": { "a.2000000": 1 } }, doc! { "_id": 1, "a": [] }).0, 34);
}

#[test]
fn update_set_id_is_immutable() {
    assert_eq!(
        run_err(rawdoc! { "$set": { "_id": 2 } }, doc! { "_id": 1 }),
        (66, "Performing an update on the path '_id' would modify the immutable field '_id'".into())
    );
    let (_, changed) = run(rawdoc! { "$set": { "_id": 1 } }, doc! { "_id": 1 });
    assert!(!changed);
    assert_eq!(run_err(rawdoc! { "$set": { "_id.x": 2 } }, doc! { "_id": { "x": 1 } }).0, 66);
    assert_eq!(run_err(rawdoc! { "$unset": { "_id": 1 } }, doc! { "_id": 1 }).0, 66);
}

#[test]
fn update_unset_removes_and_nulls_array_elements() {
    let (doc, changed) = run(
        rawdoc! { "$unset": { "a": "", "b.c": 1, "d.1": 1 } },
        doc! {
            "_id": 1, "a": 1, "b": { "c": 1, "e": 2 }, "d": [1, 2]
        },
    );
    assert!(changed);
    assert_eq!(doc, doc! { "_id": 1, "b": { "e": 2 }, "d": [1, null] });
}

#[test]
fn update_unset_missing_is_unchanged() {
    let (doc, changed) = run(rawdoc! { "$unset": { "x": 1, "a.b": 1, "n.m": 1 } }, doc! { "_id": 1, "a": 5 });
    assert!(!changed);
    assert_eq!(doc, doc! { "_id": 1, "a": 5 });
}

#[test]
fn update_inc_types_and_promotion() {
    let (doc, _) = run(
        rawdoc! { "$inc": { "a": 1, "b": 2_147_483_647, "c": 0.5, "d": 1_i64, "new": 3 } },
        doc! {
            "_id": 1, "a": 1, "b": 1, "c": 1, "d": 1
        },
    );
    assert_eq!(doc, doc! { "_id": 1, "a": 2, "b": 2_147_483_648_i64, "c": 1.5, "d": 2_i64, "new": 3 });
}

#[test]
fn update_inc_and_mul_with_decimals() {
    let dec = |s: &str| s.parse::<bson::Decimal128>().unwrap();
    table(vec![
        (
            rawdoc! { "$inc": { "a": dec("0.1") } },
            doc! { "_id": 1, "a": dec("0.2") },
            doc! { "_id": 1, "a": dec("0.3") },
            true,
        ),
        (rawdoc! { "$inc": { "a": dec("1.5") } }, doc! { "_id": 1, "a": 2 }, doc! { "_id": 1, "a": dec("3.5") }, true),
        (
            rawdoc! { "$inc": { "a": 1 } },
            doc! { "_id": 1, "a": dec("1.10") },
            doc! { "_id": 1, "a": dec("2.10") },
            true,
        ),
        // A double converts to 15 significant digits, as in mongod's `SafeNum`.
        (
            rawdoc! { "$inc": { "a": 0.1 } },
            doc! { "_id": 1, "a": dec("0") },
            doc! { "_id": 1, "a": dec("0.100000000000000") },
            true,
        ),
        // Numerically equal is identical for decimals: 5 + 0.00 leaves 5 as it is.
        (
            rawdoc! { "$inc": { "a": dec("0.00") } },
            doc! { "_id": 1, "a": dec("5") },
            doc! { "_id": 1, "a": dec("5") },
            false,
        ),
        (rawdoc! { "$inc": { "a": dec("2") } }, doc! { "_id": 1 }, doc! { "_id": 1, "a": dec("2") }, true),
        (
            rawdoc! { "$inc": { "a": i64::MAX } },
            doc! { "_id": 1, "a": dec("1") },
            doc! { "_id": 1, "a": dec("9223372036854775808") },
            true,
        ),
        (rawdoc! { "$mul": { "a": dec("1.5") } }, doc! { "_id": 1, "a": 4 }, doc! { "_id": 1, "a": dec("6.0") }, true),
        (rawdoc! { "$mul": { "a": 3 } }, doc! { "_id": 1, "a": dec("0.1") }, doc! { "_id": 1, "a": dec("0.3") }, true),
        (rawdoc! { "$mul": { "a": dec("2.5") } }, doc! { "_id": 1 }, doc! { "_id": 1, "a": dec("0.0") }, true),
        (
            rawdoc! { "$inc": { "a": dec("0") } },
            doc! { "_id": 1, "a": dec("5") },
            doc! { "_id": 1, "a": dec("5") },
            false,
        ),
    ]);
}

#[test]
fn update_inc_zero_is_unchanged() {
    let (_, changed) = run(rawdoc! { "$inc": { "a": 0 } }, doc! { "_id": 1, "a": 5 });
    assert!(!changed);
}

#[test]
fn update_inc_non_number_is_14() {
    assert_eq!(
        run_err(rawdoc! { "$inc": { "a": 1 } }, doc! { "_id": 1, "a": "x" }),
        (
            14,
            "Cannot apply $inc to a value of non-numeric type. {_id: 1} has the field 'a' of non-numeric type string"
                .into()
        )
    );
    assert_eq!(
        parse_err(rawdoc! { "$inc": { "a": "x" } }),
        (14, r#"Cannot increment with non-numeric argument: {a: "x"}"#.into())
    );
}

#[test]
fn update_inc_int64_overflow_is_bad_value() {
    assert_eq!(
        run_err(rawdoc! { "$inc": { "v": i64::MAX } }, doc! { "_id": "int64-max", "v": i64::MAX }),
        (
            2,
            r#"Failed to apply $inc operations to current value ((NumberLong)9223372036854775807) for document {_id: "int64-max"}"#
                .into()
        )
    );
}

#[test]
fn update_push_appends_and_creates() {
    let (doc, _) = run(
        rawdoc! { "$push": { "a": 3, "b": { "x": 1 }, "c": { "$each": [1, 2] } } },
        doc! {
            "_id": 1, "a": [1, 2]
        },
    );
    assert_eq!(doc, doc! { "_id": 1, "a": [1, 2, 3], "b": [ { "x": 1 } ], "c": [1, 2] });
}

#[test]
fn update_push_to_non_array_is_bad_value() {
    assert_eq!(
        run_err(rawdoc! { "$push": { "a": 1 } }, doc! { "_id": "test_object", "a": 1 }),
        (2, r#"The field 'a' must be an array but is of type int in document {_id: "test_object"}"#.into())
    );
}

#[test]
fn update_pull_exact_value_mixed_numbers() {
    let (doc, changed) = run(rawdoc! { "$pull": { "a": 1 } }, doc! { "_id": 1, "a": [1, 1.0, 2, [1]] });
    assert!(changed);
    assert_eq!(doc, doc! { "_id": 1, "a": [2, [1]] });
    let (_, changed) = run(rawdoc! { "$pull": { "a": 9, "missing": 1 } }, doc! { "_id": 1, "a": [1] });
    assert!(!changed);
}

#[test]
fn update_pull_condition_on_values_and_documents() {
    let (doc, _) = run(rawdoc! { "$pull": { "a": { "$gte": 5 } } }, doc! { "_id": 1, "a": [1, 5, 9, "x"] });
    assert_eq!(doc, doc! { "_id": 1, "a": [1, "x"] });
    let (doc, _) = run(
        rawdoc! { "$pull": { "a": { "b": 1 } } },
        doc! {
            "_id": 1, "a": [ { "b": 1, "c": 2 }, { "b": 2 }, 1 ]
        },
    );
    assert_eq!(doc, doc! { "_id": 1, "a": [ { "b": 2 }, 1 ] });
}

#[test]
fn update_pull_non_array_is_bad_value() {
    assert_eq!(run_err(rawdoc! { "$pull": { "a": 1 } }, doc! { "_id": 1, "a": 1 }).0, 2);
}

#[test]
fn update_set_on_insert_only_when_inserting() {
    let u = update(rawdoc! { "$set": { "a": 1 }, "$setOnInsert": { "b": 2 } });
    let mut existing = doc! { "_id": 1 };
    u.apply(&mut existing, false).unwrap();
    assert_eq!(existing, doc! { "_id": 1, "a": 1 });
    let mut inserted = doc! { "x": 0 };
    u.apply(&mut inserted, true).unwrap();
    assert_eq!(inserted, doc! { "x": 0, "a": 1, "b": 2 });
}

#[test]
fn update_set_on_insert_may_set_id_when_inserting() {
    let u = update(rawdoc! { "$setOnInsert": { "_id": 5 }, "$set": { "a": 1 } });
    let mut seed = doc! { "q": 1 };
    u.apply(&mut seed, true).unwrap();
    assert_eq!(seed, doc! { "_id": 5, "q": 1, "a": 1 });
}

#[test]
fn update_conflicting_paths_are_40() {
    assert_eq!(
        parse_err(rawdoc! { "$set": { "a": 1 }, "$inc": { "a": 1 } }),
        (40, "Updating the path 'a' would create a conflict at 'a'".into())
    );
    assert_eq!(
        parse_err(rawdoc! { "$set": { "a": 1, "a.b": 1 } }).1,
        "Updating the path 'a.b' would create a conflict at 'a'"
    );
    assert_eq!(
        parse_err(rawdoc! { "$set": { "a.b": 1 }, "$unset": { "a": 1 } }).1,
        "Updating the path 'a' would create a conflict at 'a'"
    );
    assert!(Update::parse(&rawdoc! { "$set": { "a.b": 1, "a.c": 1 } }).is_ok());
}

#[test]
fn update_empty_modifier_is_noop() {
    let (_, changed) = run(rawdoc! { "$set": {} }, doc! { "_id": 1 });
    assert!(!changed);
}

/// Runs table rows: (update, input, expected output, expected `changed`).
fn table(rows: Vec<(RawDocumentBuf, Document, Document, bool)>) {
    for (spec, input, expected, expected_changed) in rows {
        let label = format!("{spec:?} on {input}");
        let (doc, changed) = run(spec, input);
        assert_eq!(doc, expected, "{label}");
        assert_eq!(changed, expected_changed, "changed flag of {label}");
    }
}

/// Runs error rows: (update, input, code, message).
fn error_table(rows: Vec<(RawDocumentBuf, Document, i32, &str)>) {
    for (spec, input, code, message) in rows {
        let label = format!("{spec:?} on {input}");
        assert_eq!(run_err(spec, input), (code, message.to_owned()), "{label}");
    }
}

#[test]
fn update_mul_table() {
    table(vec![
        (rawdoc! { "$mul": { "a": 2 } }, doc! { "_id": 1, "a": 3 }, doc! { "_id": 1, "a": 6 }, true),
        (rawdoc! { "$mul": { "a": 2.5 } }, doc! { "_id": 1, "a": 2 }, doc! { "_id": 1, "a": 5.0 }, true),
        (rawdoc! { "$mul": { "a": 2_i64 } }, doc! { "_id": 1, "a": 2 }, doc! { "_id": 1, "a": 4_i64 }, true),
        (
            rawdoc! { "$mul": { "a": 2 } },
            doc! { "_id": 1, "a": i32::MAX },
            doc! { "_id": 1, "a": i64::from(i32::MAX) * 2 },
            true,
        ),
        // Missing fields become a zero of the multiplier's type.
        (rawdoc! { "$mul": { "a": 5 } }, doc! { "_id": 1 }, doc! { "_id": 1, "a": 0 }, true),
        (rawdoc! { "$mul": { "a": 5_i64 } }, doc! { "_id": 1 }, doc! { "_id": 1, "a": 0_i64 }, true),
        (rawdoc! { "$mul": { "b.c": 1.5 } }, doc! { "_id": 1 }, doc! { "_id": 1, "b": { "c": 0.0 } }, true),
        (rawdoc! { "$mul": { "a.1": 3 } }, doc! { "_id": 1, "a": [1, 2] }, doc! { "_id": 1, "a": [1, 6] }, true),
        // Multiplying by one of the same type changes nothing; another type does.
        (rawdoc! { "$mul": { "a": 1 } }, doc! { "_id": 1, "a": 7 }, doc! { "_id": 1, "a": 7 }, false),
        (rawdoc! { "$mul": { "a": 1.0 } }, doc! { "_id": 1, "a": 7 }, doc! { "_id": 1, "a": 7.0 }, true),
    ]);
    error_table(vec![
        (
            rawdoc! { "$mul": { "a": 2 } },
            doc! { "_id": 1, "a": "x" },
            14,
            "Cannot apply $mul to a value of non-numeric type. {_id: 1} has the field 'a' of non-numeric type string",
        ),
        (
            rawdoc! { "$mul": { "a": 2 } },
            doc! { "_id": 1, "a": i64::MAX },
            2,
            "Failed to apply $mul operations to current value ((NumberLong)9223372036854775807) for document {_id: 1}",
        ),
        (
            rawdoc! { "$mul": { "a": 2 } },
            doc! { "_id": 1, "a": null },
            14,
            "Cannot apply $mul to a value of non-numeric type. {_id: 1} has the field 'a' of non-numeric type null",
        ),
    ]);
    assert_eq!(
        parse_err(rawdoc! { "$mul": { "a": "x" } }),
        (14, r#"Cannot multiply with non-numeric argument: {a: "x"}"#.into())
    );
}

#[test]
fn update_min_max_table() {
    table(vec![
        (rawdoc! { "$min": { "a": 1 } }, doc! { "_id": 1, "a": 5 }, doc! { "_id": 1, "a": 1 }, true),
        (rawdoc! { "$min": { "a": 9 } }, doc! { "_id": 1, "a": 5 }, doc! { "_id": 1, "a": 5 }, false),
        (rawdoc! { "$max": { "a": 9 } }, doc! { "_id": 1, "a": 5 }, doc! { "_id": 1, "a": 9 }, true),
        (rawdoc! { "$max": { "a": 1 } }, doc! { "_id": 1, "a": 5 }, doc! { "_id": 1, "a": 5 }, false),
        // Equal across numeric types is no change.
        (rawdoc! { "$min": { "a": 5.0 } }, doc! { "_id": 1, "a": 5 }, doc! { "_id": 1, "a": 5 }, false),
        (rawdoc! { "$max": { "a": 5_i64 } }, doc! { "_id": 1, "a": 5.0 }, doc! { "_id": 1, "a": 5.0 }, false),
        // BSON order across types: numbers sort below strings, null below numbers.
        (rawdoc! { "$max": { "a": "s" } }, doc! { "_id": 1, "a": 5 }, doc! { "_id": 1, "a": "s" }, true),
        (rawdoc! { "$min": { "a": null } }, doc! { "_id": 1, "a": 5 }, doc! { "_id": 1, "a": null }, true),
        (rawdoc! { "$max": { "a": 1 } }, doc! { "_id": 1, "a": null }, doc! { "_id": 1, "a": 1 }, true),
        // Missing fields are set.
        (rawdoc! { "$min": { "a.b": 3 } }, doc! { "_id": 1 }, doc! { "_id": 1, "a": { "b": 3 } }, true),
        (rawdoc! { "$max": { "a.0": 3 } }, doc! { "_id": 1, "a": [1] }, doc! { "_id": 1, "a": [3] }, true),
    ]);
}

#[test]
fn update_current_date_sets_date_or_timestamp() {
    let (doc, changed) = run(
        rawdoc! { "$currentDate": { "d": true, "t": { "$type": "timestamp" }, "e.f": { "$type": "date" } } },
        doc! { "_id": 1, "d": 1 },
    );
    assert!(changed);
    assert!(matches!(doc.get("d"), Some(Bson::DateTime(_))));
    assert!(matches!(doc.get("t"), Some(Bson::Timestamp(_))));
    assert!(matches!(doc.get_document("e").unwrap().get("f"), Some(Bson::DateTime(_))));
    // `false` still sets a date, as mongod does.
    let (doc, _) = run(rawdoc! { "$currentDate": { "d": false } }, doc! { "_id": 1 });
    assert!(matches!(doc.get("d"), Some(Bson::DateTime(_))));
}

#[test]
fn update_current_date_bad_arguments_are_bad_value() {
    assert_eq!(
        parse_err(rawdoc! { "$currentDate": { "d": 1 } }),
        (
            2,
            "int is not valid type for $currentDate. Please use a boolean ('true') or a $type expression \
             ({$type: 'timestamp/date'})."
                .into()
        )
    );
    assert_eq!(
        parse_err(rawdoc! { "$currentDate": { "d": { "$type": "x" } } }),
        (
            2,
            "The '$type' string field is required to be 'date' or 'timestamp': {$currentDate: {field : {$type: 'date'}}}"
                .into()
        )
    );
    assert_eq!(
        parse_err(rawdoc! { "$currentDate": { "d": { "x": 1 } } }),
        (2, "Unrecognized $currentDate option: x".into())
    );
}

#[test]
fn update_push_modifiers_table() {
    table(vec![
        // $position, positive, beyond the end, negative, far negative.
        (
            rawdoc! { "$push": { "a": { "$each": [9, 8], "$position": 1 } } },
            doc! { "_id": 1, "a": [1, 2, 3] },
            doc! { "_id": 1, "a": [1, 9, 8, 2, 3] },
            true,
        ),
        (
            rawdoc! { "$push": { "a": { "$each": [9], "$position": 10 } } },
            doc! { "_id": 1, "a": [1, 2] },
            doc! { "_id": 1, "a": [1, 2, 9] },
            true,
        ),
        (
            rawdoc! { "$push": { "a": { "$each": [9], "$position": -1 } } },
            doc! { "_id": 1, "a": [1, 2, 3] },
            doc! { "_id": 1, "a": [1, 2, 9, 3] },
            true,
        ),
        (
            rawdoc! { "$push": { "a": { "$each": [9], "$position": -5 } } },
            doc! { "_id": 1, "a": [1, 2] },
            doc! { "_id": 1, "a": [9, 1, 2] },
            true,
        ),
        (
            rawdoc! { "$push": { "a": { "$each": [9], "$position": 0 } } },
            doc! { "_id": 1, "a": [1] },
            doc! { "_id": 1, "a": [9, 1] },
            true,
        ),
        // $slice keeps the front (positive) or the back (negative).
        (
            rawdoc! { "$push": { "a": { "$each": [4, 5], "$slice": 3 } } },
            doc! { "_id": 1, "a": [1, 2, 3] },
            doc! { "_id": 1, "a": [1, 2, 3] },
            false,
        ),
        (
            rawdoc! { "$push": { "a": { "$each": [4, 5], "$slice": -3 } } },
            doc! { "_id": 1, "a": [1, 2, 3] },
            doc! { "_id": 1, "a": [3, 4, 5] },
            true,
        ),
        (
            rawdoc! { "$push": { "a": { "$each": [], "$slice": 0 } } },
            doc! { "_id": 1, "a": [1, 2] },
            doc! { "_id": 1, "a": [] },
            true,
        ),
        (
            rawdoc! { "$push": { "a": { "$each": [1], "$slice": 1.0 } } },
            doc! { "_id": 1 },
            doc! { "_id": 1, "a": [1] },
            true,
        ),
        // $sort on whole values, mixed types in BSON order, then slice.
        (
            rawdoc! { "$push": { "a": { "$each": [3, "x", 1.5], "$sort": 1, "$slice": 3 } } },
            doc! { "_id": 1, "a": [2, null] },
            doc! { "_id": 1, "a": [null, 1.5, 2] },
            true,
        ),
        (
            rawdoc! { "$push": { "a": { "$each": [3], "$sort": -1 } } },
            doc! { "_id": 1, "a": [1, 5] },
            doc! { "_id": 1, "a": [5, 3, 1] },
            true,
        ),
        // $sort by fields of documents; missing fields and scalars sort as null; ties stable.
        (
            rawdoc! { "$push": { "a": { "$each": [ { "s": 2, "n": "c" } ], "$sort": { "s": 1 } } } },
            doc! { "_id": 1, "a": [ { "s": 3, "n": "a" }, { "n": "b" }, { "s": 2, "n": "d" } ] },
            doc! { "_id": 1, "a": [ { "n": "b" }, { "s": 2, "n": "d" }, { "s": 2, "n": "c" }, { "s": 3, "n": "a" } ] },
            true,
        ),
        (
            rawdoc! { "$push": { "a": { "$each": [], "$sort": { "x.y": -1 } } } },
            doc! { "_id": 1, "a": [ { "x": { "y": 1 } }, { "x": { "y": 5 } } ] },
            doc! { "_id": 1, "a": [ { "x": { "y": 5 } }, { "x": { "y": 1 } } ] },
            true,
        ),
        // As in mongod, a $sort counts as a change even when the order stays.
        (
            rawdoc! { "$push": { "a": { "$each": [], "$sort": 1 } } },
            doc! { "_id": 1, "a": [1, 2] },
            doc! { "_id": 1, "a": [1, 2] },
            true,
        ),
        // Without $sort, pushing nothing and slicing nothing off is no change.
        (
            rawdoc! { "$push": { "a": { "$each": [], "$slice": 5 } } },
            doc! { "_id": 1, "a": [1, 2] },
            doc! { "_id": 1, "a": [1, 2] },
            false,
        ),
    ]);
}

#[test]
fn update_push_modifier_errors() {
    for (spec, message) in [
        (rawdoc! { "$push": { "a": { "$each": [1], "$foo": 1 } } }, "Unrecognized clause in $push: $foo"),
        (
            rawdoc! { "$push": { "a": { "$each": 1 } } },
            "The argument to $each in $push must be an array but it was of type: int",
        ),
        (
            rawdoc! { "$push": { "a": { "$each": [1], "$slice": "x" } } },
            "The value for $slice must be an integer value but was given type: string",
        ),
        (
            rawdoc! { "$push": { "a": { "$each": [1], "$slice": 1.5 } } },
            "The value for $slice must be an integer value but was given type: double",
        ),
        (
            rawdoc! { "$push": { "a": { "$each": [1], "$position": "x" } } },
            "The value for $position must be an integer value, not of type: string",
        ),
        (rawdoc! { "$push": { "a": { "$each": [1], "$sort": 2 } } }, "The $sort element value must be either 1 or -1"),
        (
            rawdoc! { "$push": { "a": { "$each": [1], "$sort": "x" } } },
            "The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} to sort embedded fields",
        ),
        (
            rawdoc! { "$push": { "a": { "$each": [1], "$sort": {} } } },
            "The $sort pattern is empty when it should be a set of fields.",
        ),
        (
            rawdoc! { "$push": { "a": { "$each": [1], "$sort": { "a..b": 1 } } } },
            "The $sort field is a dotted field but has an empty part: a..b",
        ),
    ] {
        assert_eq!(parse_err(spec), (2, message.to_owned()));
    }
    // Without $each, a document with $-fields is just a value to push.
    let (doc, _) = run(rawdoc! { "$push": { "a": { "$slice": 1 } } }, doc! { "_id": 1 });
    assert_eq!(doc, doc! { "_id": 1, "a": [ { "$slice": 1 } ] });
}

#[test]
fn update_add_to_set_table() {
    table(vec![
        (rawdoc! { "$addToSet": { "a": 3 } }, doc! { "_id": 1, "a": [1, 2] }, doc! { "_id": 1, "a": [1, 2, 3] }, true),
        (rawdoc! { "$addToSet": { "a": 2.0 } }, doc! { "_id": 1, "a": [1, 2] }, doc! { "_id": 1, "a": [1, 2] }, false),
        (
            rawdoc! { "$addToSet": { "a": { "$each": [2, 3, 3, 4.0, 4] } } },
            doc! { "_id": 1, "a": [1, 2] },
            doc! { "_id": 1, "a": [1, 2, 3, 4.0] },
            true,
        ),
        (
            rawdoc! { "$addToSet": { "a": { "$each": [1, 1, null] } } },
            doc! { "_id": 1 },
            doc! { "_id": 1, "a": [1, null] },
            true,
        ),
        // Documents compare by field order too; arrays are values, not $each.
        (
            rawdoc! { "$addToSet": { "a": { "y": 1, "x": 1 } } },
            doc! { "_id": 1, "a": [ { "x": 1, "y": 1 } ] },
            doc! { "_id": 1, "a": [ { "x": 1, "y": 1 }, { "y": 1, "x": 1 } ] },
            true,
        ),
        (rawdoc! { "$addToSet": { "a": [1] } }, doc! { "_id": 1, "a": [1] }, doc! { "_id": 1, "a": [1, [1]] }, true),
        (rawdoc! { "$addToSet": { "a": { "$each": [] } } }, doc! { "_id": 1 }, doc! { "_id": 1, "a": [] }, true),
    ]);
    error_table(vec![(
        rawdoc! { "$addToSet": { "a": 1 } },
        doc! { "_id": 1, "a": 1 },
        2,
        "Cannot apply $addToSet to non-array field. Field named 'a' has non-array type int",
    )]);
    assert_eq!(
        parse_err(rawdoc! { "$addToSet": { "a": { "$each": 1 } } }),
        (14, "The argument to $each in $addToSet must be an array but it was of type int".into())
    );
    assert_eq!(parse_err(rawdoc! { "$addToSet": { "a": { "$each": [1], "x": 1 } } }).0, 2);
}

#[test]
fn update_pop_table() {
    table(vec![
        (rawdoc! { "$pop": { "a": 1 } }, doc! { "_id": 1, "a": [1, 2, 3] }, doc! { "_id": 1, "a": [1, 2] }, true),
        (rawdoc! { "$pop": { "a": -1 } }, doc! { "_id": 1, "a": [1, 2, 3] }, doc! { "_id": 1, "a": [2, 3] }, true),
        (rawdoc! { "$pop": { "a": 1.0 } }, doc! { "_id": 1, "a": [1] }, doc! { "_id": 1, "a": [] }, true),
        (rawdoc! { "$pop": { "a": 1 } }, doc! { "_id": 1, "a": [] }, doc! { "_id": 1, "a": [] }, false),
        (rawdoc! { "$pop": { "a": 1, "b.c": 1 } }, doc! { "_id": 1 }, doc! { "_id": 1 }, false),
        (
            rawdoc! { "$pop": { "a.b": -1 } },
            doc! { "_id": 1, "a": { "b": [1, 2] } },
            doc! { "_id": 1, "a": { "b": [2] } },
            true,
        ),
    ]);
    error_table(vec![(
        rawdoc! { "$pop": { "a.b": 1 } },
        doc! { "_id": 1, "a": { "b": 5 } },
        14,
        "Path 'a.b' contains an element of non-array type 'int'",
    )]);
    assert_eq!(parse_err(rawdoc! { "$pop": { "a": "x" } }), (9, r#"Expected a number in: a: "x""#.into()));
    assert_eq!(parse_err(rawdoc! { "$pop": { "a": 2 } }), (9, "$pop expects 1 or -1, found: 2".into()));
    assert_eq!(parse_err(rawdoc! { "$pop": { "a": -2.0 } }), (9, "$pop expects 1 or -1, found: -2".into()));
    assert_eq!(parse_err(rawdoc! { "$pop": { "a": 1.5 } }), (9, "Expected an integer: a: 1.5".into()));
    assert_eq!(parse_err(rawdoc! { "$pop": { "a": true } }), (9, "Expected a number in: a: true".into()));
}

#[test]
fn update_pull_all_table() {
    table(vec![
        (
            rawdoc! { "$pullAll": { "a": [1, "x"] } },
            doc! { "_id": 1, "a": [1, 2, 1.0, "x", [1]] },
            doc! { "_id": 1, "a": [2, [1]] },
            true,
        ),
        (rawdoc! { "$pullAll": { "a": [9] } }, doc! { "_id": 1, "a": [1] }, doc! { "_id": 1, "a": [1] }, false),
        (rawdoc! { "$pullAll": { "a": [1] } }, doc! { "_id": 1 }, doc! { "_id": 1 }, false),
        (
            rawdoc! { "$pullAll": { "a": [ { "b": 1 } ] } },
            doc! { "_id": 1, "a": [ { "b": 1 }, { "b": 1, "c": 1 } ] },
            doc! { "_id": 1, "a": [ { "b": 1, "c": 1 } ] },
            true,
        ),
    ]);
    error_table(vec![(
        rawdoc! { "$pullAll": { "a": [1] } },
        doc! { "_id": 1, "a": 1 },
        2,
        "Cannot apply $pull to a non-array value",
    )]);
    assert_eq!(
        parse_err(rawdoc! { "$pullAll": { "a": 1 } }),
        (2, "$pullAll requires an array argument but was given a int".into())
    );
}

#[test]
fn update_bit_table() {
    table(vec![
        (rawdoc! { "$bit": { "a": { "and": 3 } } }, doc! { "_id": 1, "a": 6 }, doc! { "_id": 1, "a": 2 }, true),
        (rawdoc! { "$bit": { "a": { "or": 1 } } }, doc! { "_id": 1, "a": 6 }, doc! { "_id": 1, "a": 7 }, true),
        (rawdoc! { "$bit": { "a": { "xor": 5 } } }, doc! { "_id": 1, "a": 6 }, doc! { "_id": 1, "a": 3 }, true),
        (rawdoc! { "$bit": { "a": { "or": 1_i64 } } }, doc! { "_id": 1, "a": 6 }, doc! { "_id": 1, "a": 7_i64 }, true),
        (
            rawdoc! { "$bit": { "a": { "and": 1, "or": 8 } } },
            doc! { "_id": 1, "a": 3 },
            doc! { "_id": 1, "a": 9 },
            true,
        ),
        (rawdoc! { "$bit": { "a": { "or": 2 } } }, doc! { "_id": 1, "a": 2 }, doc! { "_id": 1, "a": 2 }, false),
        (rawdoc! { "$bit": { "a": { "or": 5 } } }, doc! { "_id": 1 }, doc! { "_id": 1, "a": 5 }, true),
        (rawdoc! { "$bit": { "a": { "and": 5_i64 } } }, doc! { "_id": 1 }, doc! { "_id": 1, "a": 0_i64 }, true),
    ]);
    error_table(vec![(
        rawdoc! { "$bit": { "a": { "and": 1 } } },
        doc! { "_id": 1, "a": 1.0 },
        2,
        "Cannot apply $bit to a value of non-integral type._id: 1 has the field a of non-integer type double",
    )]);
    for (spec, message) in [
        (
            rawdoc! { "$bit": { "a": 1 } },
            "The $bit modifier is not compatible with a int. You must pass in an embedded document: {$bit: {field: {and/or/xor: #}}",
        ),
        (
            rawdoc! { "$bit": { "a": {} } },
            "You must pass in at least one bitwise operation. The format is: {$bit: {field: {and/or/xor: #}}",
        ),
        (
            rawdoc! { "$bit": { "a": { "not": 1 } } },
            "The $bit modifier only supports 'and', 'or', and 'xor', not 'not' which is an unknown operator: {not: 1}",
        ),
        (
            rawdoc! { "$bit": { "a": { "and": 1.0 } } },
            "The $bit modifier field must be an Integer(32/64 bit); a 'double' is not supported here: {and: 1.0}",
        ),
    ] {
        assert_eq!(parse_err(spec), (2, message.to_owned()));
    }
}

#[test]
fn update_rename_table() {
    table(vec![
        (
            rawdoc! { "$rename": { "a": "b" } },
            doc! { "_id": 1, "a": 1, "c": 2 },
            doc! { "_id": 1, "c": 2, "b": 1 },
            true,
        ),
        (rawdoc! { "$rename": { "a": "c" } }, doc! { "_id": 1, "a": 1, "c": 2 }, doc! { "_id": 1, "c": 1 }, true),
        (
            rawdoc! { "$rename": { "a.b": "c.d" } },
            doc! { "_id": 1, "a": { "b": [1], "x": 1 } },
            doc! { "_id": 1, "a": { "x": 1 }, "c": { "d": [1] } },
            true,
        ),
        (rawdoc! { "$rename": { "missing": "b" } }, doc! { "_id": 1, "b": 1 }, doc! { "_id": 1, "b": 1 }, false),
        (rawdoc! { "$rename": { "a.b": "c" } }, doc! { "_id": 1, "a": {} }, doc! { "_id": 1, "a": {} }, false),
    ]);
    error_table(vec![
        (
            rawdoc! { "$rename": { "a.0": "b" } },
            doc! { "_id": 1, "a": [1] },
            2,
            "The source field cannot be an array element, 'a.0' in doc with _id: 1 has an array field called 'a'",
        ),
        (
            rawdoc! { "$rename": { "a": "b.0" } },
            doc! { "_id": 1, "a": 1, "b": [1] },
            2,
            "The destination field cannot be an array element, 'b.0' in doc with _id: 1 has an array field called 'b'",
        ),
        (
            rawdoc! { "$rename": { "a": "b.c" } },
            doc! { "_id": 1, "a": 1, "b": [] },
            2,
            "The destination field cannot be an array element, 'b.c' in doc with _id: 1 has an array field called 'b'",
        ),
        (
            rawdoc! { "$rename": { "a": "b.c" } },
            doc! { "_id": 1, "a": 1, "b": 5 },
            28,
            "Cannot create field 'c' in element {b: 5}",
        ),
        (
            rawdoc! { "$rename": { "_id": "b" } },
            doc! { "_id": 1 },
            66,
            "Unsetting the path '_id' using $rename would modify the immutable field '_id'",
        ),
        (
            rawdoc! { "$rename": { "a": "_id" } },
            doc! { "_id": 1, "a": 2 },
            66,
            "Performing an update on the path '_id' would modify the immutable field '_id'",
        ),
    ]);
    for (spec, code, message) in [
        (rawdoc! { "$rename": { "a": 1 } }, 2, "The 'to' field for $rename must be a string: a: 1"),
        (rawdoc! { "$rename": { "a": "a" } }, 2, r#"The source and target field for $rename must differ: a: "a""#),
        (rawdoc! { "$rename": { "a": "b\0c" } }, 2, "The 'to' field for $rename cannot contain an embedded null byte"),
        (
            rawdoc! { "$rename": { "a": "a.b" } },
            2,
            r#"The source and target field for $rename must not be on the same path: a: "a.b""#,
        ),
        (
            rawdoc! { "$rename": { "a.b": "a" } },
            2,
            r#"The source and target field for $rename must not be on the same path: a.b: "a""#,
        ),
        (
            rawdoc! { "$rename": { "a": "b" }, "$set": { "b": 1 } },
            40,
            "Updating the path 'b' would create a conflict at 'b'",
        ),
        (rawdoc! { "$rename": { "a": "" } }, 56, "An empty update path is not valid."),
    ] {
        assert_eq!(parse_err(spec), (code, message.to_owned()));
    }
    assert!(Update::parse(&rawdoc! { "$rename": { "a": "ab" } }).is_ok());
    // The destination lands where mongod's path-ordered walk puts it among new fields.
    let (doc, _) = run(rawdoc! { "$set": { "a": 1, "z": 1 }, "$rename": { "m": "n" } }, doc! { "_id": 1, "m": 2 });
    assert_eq!(doc, doc! { "_id": 1, "a": 1, "n": 2, "z": 1 });
}

/// Parses a statement with its query and array filters, applies it to `doc`.
fn run_statement(
    spec: RawDocumentBuf,
    query: RawDocumentBuf,
    filters: Option<bson::RawArrayBuf>,
    mut doc: Document,
) -> Result<(Document, bool), (i32, String)> {
    let update = Update::parse_statement(&spec, &query, filters.as_deref())
        .map_err(|e| (e.code().code(), e.message().to_owned()))?;
    let changed = update.apply(&mut doc, false).map_err(|e| (e.code().code(), e.message().to_owned()))?;
    Ok((doc, changed))
}

fn filters(list: Vec<RawDocumentBuf>) -> Option<bson::RawArrayBuf> {
    let mut array = bson::RawArrayBuf::new();
    for doc in list {
        array.push(doc);
    }
    Some(array)
}

#[test]
fn update_positional_first_match_table() {
    let rows = vec![
        // Scalar array matched by value.
        (
            rawdoc! { "$set": { "a.$": 9 } },
            rawdoc! { "a": 2 },
            doc! { "_id": 1, "a": [1, 2, 3, 2] },
            doc! { "_id": 1, "a": [1, 9, 3, 2] },
        ),
        // Documents matched through a dotted path, and an operator condition.
        (
            rawdoc! { "$inc": { "a.$.n": 1 } },
            rawdoc! { "a.k": { "$gte": 2 } },
            doc! { "_id": 1, "a": [ { "k": 1, "n": 0 }, { "k": 2, "n": 0 }, { "k": 3, "n": 0 } ] },
            doc! { "_id": 1, "a": [ { "k": 1, "n": 0 }, { "k": 2, "n": 1 }, { "k": 3, "n": 0 } ] },
        ),
        // Inside $and, next to a condition on another field.
        (
            rawdoc! { "$set": { "a.$.k": "x" } },
            rawdoc! { "_id": 1, "$and": [ { "a.k": 3 } ] },
            doc! { "_id": 1, "a": [ { "k": 1 }, { "k": 3 } ] },
            doc! { "_id": 1, "a": [ { "k": 1 }, { "k": "x" } ] },
        ),
        // A nested array under a document field.
        (
            rawdoc! { "$unset": { "d.a.$": 1 } },
            rawdoc! { "d.a": 5 },
            doc! { "_id": 1, "d": { "a": [4, 5] } },
            doc! { "_id": 1, "d": { "a": [4, null] } },
        ),
        // `$elemMatch`: the element meeting every condition at once (mongod's manual).
        (
            rawdoc! { "$set": { "g.$.std": 6 } },
            rawdoc! { "g": { "$elemMatch": { "grade": { "$lte": 90 }, "mean": { "$gt": 80 } } } },
            doc! { "_id": 1, "g": [ { "grade": 80, "mean": 75 }, { "grade": 85, "mean": 90 }, { "grade": 85, "mean": 85 } ] },
            doc! { "_id": 1, "g": [ { "grade": 80, "mean": 75 }, { "grade": 85, "mean": 90, "std": 6 }, { "grade": 85, "mean": 85 } ] },
        ),
        // Two conditions on the array without `$elemMatch`: the last one's element.
        (
            rawdoc! { "$set": { "g.$.std": 6 } },
            rawdoc! { "g.grade": { "$lte": 90 }, "g.mean": { "$gt": 80 } },
            doc! { "_id": 1, "g": [ { "grade": 80, "mean": 75 }, { "grade": 85, "mean": 90 } ] },
            doc! { "_id": 1, "g": [ { "grade": 80, "mean": 75 }, { "grade": 85, "mean": 90, "std": 6 } ] },
        ),
        (
            rawdoc! { "$set": { "a.$": 0 } },
            rawdoc! { "$and": [ { "a": { "$gt": 1 } }, { "a": { "$gt": 2 } } ] },
            doc! { "_id": 1, "a": [1, 2, 3] },
            doc! { "_id": 1, "a": [1, 2, 0] },
        ),
        // An `$or` of one clause, or of equalities on one path (mongod makes it an `$in`).
        (
            rawdoc! { "$set": { "a.$": 0 } },
            rawdoc! { "$or": [ { "a": 3 } ] },
            doc! { "_id": 1, "a": [1, 2, 3] },
            doc! { "_id": 1, "a": [1, 2, 0] },
        ),
        (
            rawdoc! { "$set": { "a.$": 0 } },
            rawdoc! { "$or": [ { "a": 3 }, { "a": 2 } ] },
            doc! { "_id": 1, "a": [1, 2, 3] },
            doc! { "_id": 1, "a": [1, 0, 3] },
        ),
        // An `$or` next to a condition on the array leaves that condition's element.
        (
            rawdoc! { "$set": { "a.$": 0 } },
            rawdoc! { "a": 2, "$or": [ { "_id": 1 }, { "b": 1 } ] },
            doc! { "_id": 1, "a": [1, 2, 3] },
            doc! { "_id": 1, "a": [1, 0, 3] },
        ),
    ];
    for (spec, query, input, expected) in rows {
        let label = format!("{spec:?} with {query:?}");
        let (doc, changed) = run_statement(spec, query, None, input).unwrap();
        assert_eq!(doc, expected, "{label}");
        assert!(changed, "{label}");
    }
}

#[test]
fn update_positional_errors() {
    assert_eq!(
        run_statement(rawdoc! { "$set": { "a.$": 1 } }, rawdoc! { "_id": 1 }, None, doc! { "_id": 1, "a": [1] })
            .unwrap_err(),
        (2, "The positional operator did not find the match needed from the query.".into())
    );
    assert_eq!(
        parse_err(rawdoc! { "$set": { "a.$.b.$": 5 } }),
        (2, "Too many positional (i.e. '$') elements found in path 'a.$.b.$'".into())
    );
    // mongod's `$or` records no element: several clauses on different paths leave none.
    assert_eq!(
        run_statement(
            rawdoc! { "$set": { "a.$": 1 } },
            rawdoc! { "$or": [ { "a": 1 }, { "b": 1 } ] },
            None,
            doc! { "_id": 1, "a": [1] }
        )
        .unwrap_err()
        .0,
        2
    );
    // An upsert's new document matched nothing.
    let u = Update::parse_statement(&rawdoc! { "$set": { "a.$": 1 } }, &rawdoc! { "a": 1 }, None).unwrap();
    let mut seed = doc! { "a": 1 };
    assert_eq!(u.apply(&mut seed, true).unwrap_err().code().code(), 2);
}

#[test]
fn update_all_positional_table() {
    table(vec![
        (rawdoc! { "$inc": { "a.$[]": 1 } }, doc! { "_id": 1, "a": [1, 2] }, doc! { "_id": 1, "a": [2, 3] }, true),
        (
            rawdoc! { "$set": { "a.$[].b": 0 } },
            doc! { "_id": 1, "a": [ { "b": 1 }, {} ] },
            doc! { "_id": 1, "a": [ { "b": 0 }, { "b": 0 } ] },
            true,
        ),
        (
            rawdoc! { "$set": { "a.$[].$[]": 0 } },
            doc! { "_id": 1, "a": [[1, 2], [3]] },
            doc! { "_id": 1, "a": [[0, 0], [0]] },
            true,
        ),
        (rawdoc! { "$set": { "a.$[]": 1 } }, doc! { "_id": 1, "a": [] }, doc! { "_id": 1, "a": [] }, false),
        (rawdoc! { "$set": { "a.$[]": 1 } }, doc! { "_id": 1, "a": [1, 1] }, doc! { "_id": 1, "a": [1, 1] }, false),
    ]);
    error_table(vec![
        (
            rawdoc! { "$set": { "a.$[]": 1 } },
            doc! { "_id": 1, "a": 5 },
            2,
            "Cannot apply array updates to non-array element a: 5",
        ),
        (
            rawdoc! { "$set": { "a.$[].c": 1 } },
            doc! { "_id": 1, "a": [1] },
            28,
            "Cannot create field 'c' in element {0: 1}",
        ),
        (
            rawdoc! { "$set": { "a.b.$[]": 1 } },
            doc! { "_id": 1, "a": {} },
            2,
            "The path 'a.b' must exist in the document in order to apply array updates.",
        ),
    ]);
}

#[test]
fn update_filtered_positional_table() {
    let (doc, changed) = run_statement(
        rawdoc! { "$set": { "a.$[x]": 0 } },
        rawdoc! {},
        filters(vec![rawdoc! { "x": { "$gt": 2 } }]),
        doc! { "_id": 1, "a": [1, 5, 2, 7] },
    )
    .unwrap();
    assert!(changed);
    assert_eq!(doc, doc! { "_id": 1, "a": [1, 0, 2, 0] });

    let (doc, _) = run_statement(
        rawdoc! { "$inc": { "g.$[e].n": 10, "g.$[f].n": 1 } },
        rawdoc! {},
        filters(vec![rawdoc! { "e.k": "a" }, rawdoc! { "f.k": { "$in": ["b", "c"] } }]),
        doc! { "_id": 1, "g": [ { "k": "a", "n": 1 }, { "k": "b", "n": 1 }, { "k": "c", "n": 1 } ] },
    )
    .unwrap();
    assert_eq!(doc, doc! { "_id": 1, "g": [ { "k": "a", "n": 11 }, { "k": "b", "n": 2 }, { "k": "c", "n": 2 } ] });

    // Nested: outer and inner identifiers.
    let (doc, _) = run_statement(
        rawdoc! { "$set": { "m.$[r].v.$[c]": "x" } },
        rawdoc! {},
        filters(vec![rawdoc! { "r.id": 2 }, rawdoc! { "c": { "$lt": 0 } }]),
        doc! { "_id": 1, "m": [ { "id": 1, "v": [-1, 1] }, { "id": 2, "v": [-1, 1, -2] } ] },
    )
    .unwrap();
    assert_eq!(doc, doc! { "_id": 1, "m": [ { "id": 1, "v": [-1, 1] }, { "id": 2, "v": ["x", 1, "x"] } ] });

    // No element matches: unchanged.
    let (_, changed) = run_statement(
        rawdoc! { "$set": { "a.$[x]": 0 } },
        rawdoc! {},
        filters(vec![rawdoc! { "x": 99 }]),
        doc! { "_id": 1, "a": [1] },
    )
    .unwrap();
    assert!(!changed);
}

#[test]
fn update_array_filter_errors() {
    let cases: Vec<(RawDocumentBuf, Vec<RawDocumentBuf>, i32, &str)> = vec![
        (
            rawdoc! { "$set": { "a.$[i]": 5.0 } },
            vec![rawdoc! { "i": 0 }, rawdoc! { "j": 0 }],
            9,
            "The array filter for identifier 'j' was not used in the update { $set: { a.$[i]: 5.0 } }",
        ),
        (rawdoc! { "$set": { "a.$[i]": 1 } }, vec![], 2, "No array filter found for identifier 'i' in path 'a.$[i]'"),
        (
            rawdoc! { "$set": { "a.$[i]": 1 } },
            vec![rawdoc! { "i": 0 }, rawdoc! { "i": 1 }],
            9,
            "Found multiple array filters with the same top-level field name i",
        ),
        (
            rawdoc! { "$set": { "a.$[i]": 1 } },
            vec![rawdoc! { "i": 0, "j": 1 }],
            9,
            "Error parsing array filter :: caused by :: Expected a single top-level field name, found 'i' and 'j'",
        ),
        (
            rawdoc! { "$set": { "a.$[I]": 1 } },
            vec![rawdoc! { "I": 0 }],
            2,
            "Error parsing array filter :: caused by :: The top-level field name must be an alphanumeric string \
             beginning with a lowercase letter, found 'I'",
        ),
        (
            rawdoc! { "$set": { "a.$[i]": 1 } },
            vec![rawdoc! {}],
            9,
            "Cannot use an expression without a top-level field name in arrayFilters",
        ),
    ];
    for (spec, list, code, message) in cases {
        let label = format!("{spec:?}");
        let err = Update::parse_statement(&spec, &rawdoc! {}, filters(list).as_deref()).unwrap_err();
        assert_eq!((err.code().code(), err.message()), (code, message), "{label}");
    }
    // A replacement ignores array filters, as mongod's UpdateDriver does.
    assert!(
        Update::parse_statement(&rawdoc! { "a": 1 }, &rawdoc! {}, filters(vec![rawdoc! { "i": 1 }]).as_deref()).is_ok()
    );
    // Filters that combine conditions on one identifier are fine.
    assert!(
        Update::parse_statement(
            &rawdoc! { "$set": { "a.$[i]": 1 } },
            &rawdoc! {},
            filters(vec![rawdoc! { "$or": [ { "i": 1 }, { "i.b": 2 } ] }]).as_deref(),
        )
        .is_ok()
    );
    assert_eq!(
        run_statement(
            rawdoc! { "$set": { "a.$[i]": 1 } },
            rawdoc! {},
            filters(vec![rawdoc! { "i": 1 }]),
            doc! { "_id": 1 }
        )
        .unwrap_err(),
        (2, "The path 'a' must exist in the document in order to apply array updates.".into())
    );
}

#[test]
fn update_push_to_nested_non_array_names_the_path() {
    assert_eq!(
        run_err(rawdoc! { "$push": { "a.b": 1 } }, doc! { "_id": 1, "a": { "b": 1 } }),
        (2, "The field 'a.b' must be an array but is of type int in document {_id: 1}".into())
    );
}

#[test]
fn update_creates_paths_and_pads_arrays() {
    table(vec![
        // A numeric component on a missing path names a field of a new document.
        (rawdoc! { "$set": { "a.0": 1 } }, doc! { "_id": 1 }, doc! { "_id": 1, "a": { "0": 1 } }, true),
        (
            rawdoc! { "$set": { "a.0.b": 1 } },
            doc! { "_id": 1, "a": {} },
            doc! { "_id": 1, "a": { "0": { "b": 1 } } },
            true,
        ),
        // On an array it is a position; beyond the end the gap is filled with nulls.
        (
            rawdoc! { "$inc": { "a.3": 1 } },
            doc! { "_id": 1, "a": [1] },
            doc! { "_id": 1, "a": [1, null, null, 1] },
            true,
        ),
        (
            rawdoc! { "$push": { "a.2": 5 } },
            doc! { "_id": 1, "a": [] },
            doc! { "_id": 1, "a": [null, null, [5]] },
            true,
        ),
        (
            rawdoc! { "$set": { "a.2.b": 1 } },
            doc! { "_id": 1, "a": [0] },
            doc! { "_id": 1, "a": [0, null, { "b": 1 }] },
            true,
        ),
        (rawdoc! { "$min": { "a.1": 1 } }, doc! { "_id": 1, "a": [0] }, doc! { "_id": 1, "a": [0, 1] }, true),
        // Non-creating operators leave missing positions alone.
        (
            rawdoc! { "$unset": { "a.5": 1 }, "$pop": { "b.3": 1 } },
            doc! { "_id": 1, "a": [0], "b": [] },
            doc! { "_id": 1, "a": [0], "b": [] },
            false,
        ),
    ]);
}

#[test]
fn update_upsert_seed_then_set_on_insert_and_set() {
    let filter = Filter::parse(&rawdoc! { "$and": [ { "_id": 5 }, { "a.b": 1 } ], "c": { "$gt": 1 } }).unwrap();
    let mut seed = filter.equality_seed().unwrap();
    let u = update(rawdoc! { "$setOnInsert": { "n": 1 }, "$inc": { "a.c": 2 }, "$push": { "l": 1 } });
    assert!(u.apply(&mut seed, true).unwrap());
    assert_eq!(seed, doc! { "_id": 5, "a": { "b": 1, "c": 2 }, "l": [1], "n": 1 });
}

#[test]
fn update_array_removers_need_a_traversable_path() {
    error_table(vec![
        (
            rawdoc! { "$pull": { "a.b": 1 } },
            doc! { "_id": 1, "a": 5 },
            28,
            "Cannot use the part (b) of (a.b) to traverse the element ({a: 5})",
        ),
        (
            rawdoc! { "$pop": { "a.b.c": 1 } },
            doc! { "_id": 1, "a": { "b": 1 } },
            28,
            "Cannot use the part (c) of (a.b.c) to traverse the element ({b: 1})",
        ),
        (
            rawdoc! { "$pullAll": { "a.b.c": [1] } },
            doc! { "_id": 1, "a": [1] },
            28,
            "Cannot use the part (b) of (a.b.c) to traverse the element ({a: [ 1 ]})",
        ),
    ]);
    // $unset is a no-op there, and missing documents or positions are no-ops for all.
    table(vec![
        (rawdoc! { "$unset": { "a.b": 1 } }, doc! { "_id": 1, "a": 5 }, doc! { "_id": 1, "a": 5 }, false),
        (rawdoc! { "$pull": { "a.b.c": 1 } }, doc! { "_id": 1, "a": {} }, doc! { "_id": 1, "a": {} }, false),
        (rawdoc! { "$pull": { "a.3.c": 1 } }, doc! { "_id": 1, "a": [1] }, doc! { "_id": 1, "a": [1] }, false),
    ]);
}

/// `{op: {path: value}}`.
fn one(op: &str, path: &str, value: impl Into<RawBson>) -> RawDocumentBuf {
    let mut args = RawDocumentBuf::new();
    args.append(<&CStr>::try_from(path).unwrap(), value.into());
    let mut spec = RawDocumentBuf::new();
    spec.append(<&CStr>::try_from(op).unwrap(), args);
    spec
}

#[test]
fn update_paths_past_the_storage_depth_create_nothing() {
    let long = |n: usize| vec!["a"; n].join(".");
    let too_deep = (15, "Document exceeds maximum nesting depth of 180".to_owned());
    // Creating any part of a 5,000-level path is refused before it is built.
    for op in ["$set", "$inc", "$max", "$push", "$addToSet"] {
        assert_eq!(run_err(one(op, &long(5000), 1), doc! { "_id": 0 }), too_deep, "{op}");
    }
    // Nothing can be there to remove or change.
    for op in ["$unset", "$pop", "$pull"] {
        assert_eq!(run(one(op, &long(5000), 1), doc! { "_id": 0 }), (doc! { "_id": 0 }, false), "{op}");
    }
    assert_eq!(run(one("$setOnInsert", &long(5000), 1), doc! { "_id": 0 }), (doc! { "_id": 0 }, false));
    let mut inserting = doc! {};
    let err = update(one("$setOnInsert", &long(5000), 1)).apply(&mut inserting, true).unwrap_err();
    assert_eq!((err.code().code(), err.message().to_owned()), too_deep);
    // The limit is mongod's: level 180 may be written, 181 not, also through arrays.
    assert_eq!(run_err(one("$set", &long(181), 1), doc! { "_id": 0 }), too_deep);
    let (done, changed) = run(one("$set", &long(180), 1), doc! { "_id": 0 });
    assert!(changed && !crate::query::limits::owned_depth_exceeds(&done, 180));
    let through_array = format!("a.0.{}", long(179));
    assert_eq!(run_err(one("$set", &through_array, 1), doc! { "_id": 0, "a": [{}] }), too_deep);
    // A rename to a path that deep is refused the same way.
    assert_eq!(run_err(one("$rename", "x", long(5000)), doc! { "_id": 0, "x": 1 }), too_deep);
    // Paths that deep still conflict with their prefixes.
    let mut spec = one("$set", &long(5000), 1);
    spec.append(bson::raw::cstr!("$unset"), rawdoc! { "a": 1 });
    assert_eq!(parse_err(spec).0, 40);
}
