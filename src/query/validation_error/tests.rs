use bson::{bson, rawdoc};

use super::*;

/// The `details` generated for `validator` against `document` (given `_id: 1` when it has
/// none, as mongod's unit tests do), which must fail.
fn details(validator: Bson, document: Bson) -> Bson {
    let (Bson::Document(validator), Bson::Document(mut document)) = (validator, document) else {
        panic!("documents expected");
    };
    if !document.contains_key("_id") {
        document.insert("_id", 1);
    }
    let validator = RawDocumentBuf::try_from(&validator).unwrap();
    let document = RawDocumentBuf::try_from(&document).unwrap();
    assert!(!Filter::parse(&validator).unwrap().try_matches(&document).unwrap_or(false), "must fail");
    let info = generate(&validator, &document, None);
    assert_eq!(info.get("failingDocumentId"), document.get("_id").unwrap().map(to_bson).as_ref());
    info.get("details").cloned().unwrap()
}

#[test]
fn validation_error_comparisons_and_traversal() {
    assert_eq!(
        details(bson!({ "a": { "$eq": 2 } }), bson!({ "a": 1 })),
        bson!({ "operatorName": "$eq", "specifiedAs": { "a": { "$eq": 2 } }, "reason": "comparison failed",
                "consideredValue": 1 })
    );
    assert_eq!(
        details(bson!({ "a": { "$lt": 0 } }), bson!({ "b": 1 })),
        bson!({ "operatorName": "$lt", "specifiedAs": { "a": { "$lt": 0 } }, "reason": "field was missing" })
    );
    assert_eq!(
        details(bson!({ "a.b": { "$eq": 0 } }), bson!({ "a": [{ "b": [1, 2] }, { "b": [3, 4] }] })),
        bson!({ "operatorName": "$eq", "specifiedAs": { "a.b": { "$eq": 0 } }, "reason": "comparison failed",
                "consideredValues": [1, 2, 3, 4] })
    );
    assert_eq!(
        details(bson!({ "a": { "$gte": 3 } }), bson!({ "a": [] })),
        bson!({ "operatorName": "$gte", "specifiedAs": { "a": { "$gte": 3 } }, "reason": "comparison failed",
                "consideredValues": [] })
    );
    assert_eq!(
        details(bson!({ "a": 2 }), bson!({ "a": 1 })),
        bson!({ "operatorName": "$eq", "specifiedAs": { "a": 2 }, "reason": "comparison failed", "consideredValue": 1 })
    );
    assert_eq!(
        details(bson!({ "a": { "$ne": 2 } }), bson!({ "a": [1, 2, 3] })),
        bson!({ "operatorName": "$ne", "specifiedAs": { "a": { "$ne": 2 } }, "reason": "comparison succeeded",
                "consideredValues": [1, 2, 3] })
    );
    assert_eq!(
        details(bson!({ "a": { "$nin": [1, 2, 3] } }), bson!({ "a": 3 })),
        bson!({ "operatorName": "$nin", "specifiedAs": { "a": { "$nin": [1, 2, 3] } },
                "reason": "matching value found in array", "consideredValue": 3 })
    );
    let many: Vec<i32> = (0..12).collect();
    assert_eq!(
        details(bson!({ "a": { "$gt": 100 } }), bson!({ "a": many })),
        bson!({ "operatorName": "$gt", "specifiedAs": { "a": { "$gt": 100 } }, "reason": "comparison failed",
                "consideredValues": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "consideredValuesTruncated": true })
    );
}

#[test]
fn validation_error_logical_operators() {
    assert_eq!(
        details(bson!({ "a": { "$gt": 0, "$lt": 10 } }), bson!({ "a": 11 })),
        bson!({ "operatorName": "$and", "clausesNotSatisfied": [{ "index": 1, "details": {
            "operatorName": "$lt", "specifiedAs": { "a": { "$lt": 10 } }, "reason": "comparison failed",
            "consideredValue": 11 } }] })
    );
    assert_eq!(
        details(bson!({ "$and": [{ "$and": [{ "a": 1 }] }, { "$and": [{ "b": 1 }] }] }), bson!({ "a": 1, "b": 2 })),
        bson!({ "operatorName": "$and", "clausesNotSatisfied": [{ "index": 1, "details": {
            "operatorName": "$and", "clausesNotSatisfied": [{ "index": 0, "details": {
                "operatorName": "$eq", "specifiedAs": { "b": 1 }, "reason": "comparison failed",
                "consideredValue": 2 } }] } }] })
    );
    assert_eq!(
        details(bson!({ "$or": [{ "a": { "$lt": 10 } }] }), bson!({ "a": 11 })),
        bson!({ "operatorName": "$or", "clausesNotSatisfied": [{ "index": 0, "details": {
            "operatorName": "$lt", "specifiedAs": { "a": { "$lt": 10 } }, "reason": "comparison failed",
            "consideredValue": 11 } }] })
    );
    assert_eq!(
        details(bson!({ "$nor": [{ "a": { "$gt": 10 } }, { "b": { "$lt": 10 } }] }), bson!({ "a": 9, "b": 9 })),
        bson!({ "operatorName": "$nor", "clausesSatisfied": [{ "index": 1, "details": {
            "operatorName": "$lt", "specifiedAs": { "b": { "$lt": 10 } }, "reason": "comparison succeeded",
            "consideredValue": 9 } }] })
    );
    assert_eq!(
        details(bson!({ "a": { "$not": { "$lt": 20, "$gt": 5 } } }), bson!({ "a": 10 })),
        bson!({ "operatorName": "$not", "details": { "operatorName": "$and", "clausesSatisfied": [
            { "index": 0, "details": { "operatorName": "$lt", "specifiedAs": { "a": { "$lt": 20 } },
                "reason": "comparison succeeded", "consideredValue": 10 } },
            { "index": 1, "details": { "operatorName": "$gt", "specifiedAs": { "a": { "$gt": 5 } },
                "reason": "comparison succeeded", "consideredValue": 10 } }] } })
    );
    assert_eq!(
        details(
            bson!({ "$and": [{ "$or": [{ "price": { "$lt": 20 } }] },
                             { "$nor": [{ "qty": { "$gt": 30 } }, { "qty": { "$not": { "$lt": 20 } } }] }] }),
            bson!({ "price": 10, "qty": 25 })
        ),
        bson!({ "operatorName": "$and", "clausesNotSatisfied": [{ "index": 1, "details": {
            "operatorName": "$nor", "clausesSatisfied": [{ "index": 1, "details": {
                "operatorName": "$not", "details": { "operatorName": "$lt", "specifiedAs": { "qty": { "$lt": 20 } },
                    "reason": "comparison failed", "consideredValue": 25 } } }] } }] })
    );
}

#[test]
fn validation_error_element_and_array_operators() {
    assert_eq!(
        details(bson!({ "a": { "$exists": false } }), bson!({ "a": 1 })),
        bson!({ "operatorName": "$exists", "specifiedAs": { "a": { "$exists": false } }, "reason": "path does exist" })
    );
    assert_eq!(
        details(bson!({ "a": { "$type": "double" } }), bson!({ "a": ["x", "y", "z"] })),
        bson!({ "operatorName": "$type", "specifiedAs": { "a": { "$type": "double" } }, "reason": "type did not match",
                "consideredValues": ["x", "y", "z"], "consideredType": "string" })
    );
    assert_eq!(
        details(bson!({ "a": { "$type": "double" } }), bson!({ "b": 1 })),
        bson!({ "operatorName": "$type", "specifiedAs": { "a": { "$type": "double" } }, "reason": "field was missing" })
    );
    assert_eq!(
        details(bson!({ "a": { "$mod": [2, 1] } }), bson!({ "a": "two" })),
        bson!({ "operatorName": "$mod", "specifiedAs": { "a": { "$mod": [2, 1] } }, "reason": "type did not match",
                "consideredType": "string", "expectedTypes": ["decimal", "double", "int", "long"],
                "consideredValue": "two" })
    );
    assert_eq!(
        details(bson!({ "a": { "$regex": "^S", "$options": "" } }), bson!({ "a": 1 })),
        bson!({ "operatorName": "$regex", "specifiedAs": { "a": { "$regex": "^S", "$options": "" } },
                "reason": "type did not match", "consideredType": "int",
                "expectedTypes": ["regex", "string", "symbol"], "consideredValue": 1 })
    );
    assert_eq!(
        details(bson!({ "a": { "$size": 2 } }), bson!({ "a": 3 })),
        bson!({ "operatorName": "$size", "specifiedAs": { "a": { "$size": 2 } }, "reason": "type did not match",
                "consideredType": "int", "expectedType": "array", "consideredValue": 3 })
    );
    assert_eq!(
        details(bson!({ "a": { "$all": [1, 2, 3] } }), bson!({ "a": [1, 2, 4] })),
        bson!({ "operatorName": "$all", "specifiedAs": { "a": { "$all": [1, 2, 3] } },
                "reason": "array did not contain all specified values", "consideredValue": [1, 2, 4] })
    );
    assert_eq!(
        details(bson!({ "a": { "$all": [] } }), bson!({ "a": [1] })),
        bson!({ "operatorName": "$all", "specifiedAs": { "a": { "$all": [] } },
                "reason": "expression always evaluates to false" })
    );
    assert_eq!(
        details(bson!({ "a": { "$elemMatch": { "$gt": 0, "$lt": 10 } } }), bson!({ "a": [10, 11, 12] })),
        bson!({ "operatorName": "$elemMatch", "specifiedAs": { "a": { "$elemMatch": { "$gt": 0, "$lt": 10 } } },
                "reason": "array did not satisfy the child predicate", "consideredValue": [10, 11, 12] })
    );
    assert_eq!(
        details(bson!({ "a": { "$bitsAnyClear": 3 } }), bson!({ "a": "someString" })),
        bson!({ "operatorName": "$bitsAnyClear", "specifiedAs": { "a": { "$bitsAnyClear": 3 } },
                "reason": "type did not match", "consideredType": "string",
                "expectedTypes": ["binData", "decimal", "double", "int", "long"], "consideredValue": "someString" })
    );
}

#[test]
fn validation_error_expr() {
    assert_eq!(
        details(bson!({ "$expr": { "$eq": ["$a", "$b"] } }), bson!({ "a": 1, "b": 2 })),
        bson!({ "operatorName": "$expr", "specifiedAs": { "$expr": { "$eq": ["$a", "$b"] } },
                "reason": "expression did not match", "expressionResult": false })
    );
    let info = generate(&rawdoc! { "$expr": { "$divide": [10, 0] } }, &rawdoc! { "_id": 1 }, None);
    let details = info.get_document("details").unwrap();
    assert_eq!(details.get_str("reason").ok(), Some("failed to evaluate aggregation expression"));
    assert_eq!(details.get_document("details").and_then(|d| d.get_i32("code")).ok(), Some(2));
}

#[test]
fn validation_error_json_schema_properties_required_and_types() {
    assert_eq!(
        details(
            bson!({ "$jsonSchema": { "properties": { "a": { "properties": { "b": { "minimum": 10, "maximum": -10 } } } } } }),
            bson!({ "a": { "b": 5 } })
        ),
        bson!({ "operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [{ "operatorName": "properties",
            "propertiesNotSatisfied": [{ "propertyName": "a", "details": [{ "operatorName": "properties",
                "propertiesNotSatisfied": [{ "propertyName": "b", "details": [
                    { "operatorName": "maximum", "specifiedAs": { "maximum": -10 }, "reason": "comparison failed",
                      "consideredValue": 5 },
                    { "operatorName": "minimum", "specifiedAs": { "minimum": 10 }, "reason": "comparison failed",
                      "consideredValue": 5 }] }] }] }] }] })
    );
    assert_eq!(
        details(
            bson!({ "$jsonSchema": { "required": ["a"], "properties": { "a": { "type": "number", "minimum": 1 } } } }),
            bson!({})
        ),
        bson!({ "operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [{ "operatorName": "required",
            "specifiedAs": { "required": ["a"] }, "missingProperties": ["a"] }] })
    );
    assert_eq!(
        details(
            bson!({ "$jsonSchema": { "title": "T", "properties": { "a": {
                "type": "string", "minLength": 4, "title": "t", "description": "d" } } } }),
            bson!({ "a": 1 })
        ),
        bson!({ "operatorName": "$jsonSchema", "title": "T", "schemaRulesNotSatisfied": [{ "operatorName": "properties",
            "propertiesNotSatisfied": [{ "propertyName": "a", "title": "t", "description": "d", "details": [
                { "operatorName": "type", "specifiedAs": { "type": "string" }, "reason": "type did not match",
                  "consideredValue": 1, "consideredType": "int" }] }] }] })
    );
    assert_eq!(
        details(
            bson!({ "$jsonSchema": { "type": "object", "properties": { "a": { "type": "string", "maximum": 5 } } } }),
            bson!({ "a": 6 })
        ),
        bson!({ "operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [{ "operatorName": "properties",
            "propertiesNotSatisfied": [{ "propertyName": "a", "details": [
                { "operatorName": "type", "specifiedAs": { "type": "string" }, "reason": "type did not match",
                  "consideredValue": 6, "consideredType": "int" }] }] }] })
    );
    assert_eq!(
        details(bson!({ "$jsonSchema": { "type": "number", "properties": { "a": {} } } }), bson!({ "a": 1 })),
        bson!({ "operatorName": "$jsonSchema", "specifiedAs": { "$jsonSchema": { "type": "number", "properties": { "a": {} } } },
                "reason": "expression always evaluates to false" })
    );
    assert_eq!(
        details(bson!({ "$nor": [{ "$jsonSchema": { "minimum": 1 } }] }), bson!({ "a": 2 })),
        bson!({ "operatorName": "$nor", "clausesSatisfied": [{ "index": 0, "details": {
            "operatorName": "$jsonSchema", "reason": "schema matched" } }] })
    );
}

#[test]
fn validation_error_json_schema_arrays_objects_and_logic() {
    assert_eq!(
        details(
            bson!({ "$jsonSchema": { "properties": { "a": { "items": { "type": "string", "description": "strings" } } } } }),
            bson!({ "a": [1, "A", {}] })
        ),
        bson!({ "operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [{ "operatorName": "properties",
            "propertiesNotSatisfied": [{ "propertyName": "a", "details": [{ "operatorName": "items",
                "description": "strings", "reason": "At least one item did not match the sub-schema",
                "itemIndex": 0, "details": [{ "operatorName": "type", "specifiedAs": { "type": "string" },
                    "reason": "type did not match", "consideredValue": 1, "consideredType": "int" }] }] }] }] })
    );
    assert_eq!(
        details(
            bson!({ "$jsonSchema": { "properties": { "a": { "uniqueItems": true } } } }),
            bson!({ "a": [1, 2, 3, 3, 4, 4] })
        ),
        bson!({ "operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [{ "operatorName": "properties",
            "propertiesNotSatisfied": [{ "propertyName": "a", "details": [{ "operatorName": "uniqueItems",
                "specifiedAs": { "uniqueItems": true }, "reason": "found a duplicate item",
                "consideredValue": [1, 2, 3, 3, 4, 4], "duplicatedValue": 3 }] }] }] })
    );
    assert_eq!(
        details(
            bson!({ "$jsonSchema": { "required": ["a"], "properties": { "b": { "type": "number" } },
                                     "additionalProperties": false } }),
            bson!({ "_id": 0, "b": 2 })
        ),
        bson!({ "operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [
            { "operatorName": "additionalProperties", "specifiedAs": { "additionalProperties": false },
              "additionalProperties": ["_id"] },
            { "operatorName": "required", "specifiedAs": { "required": ["a"] }, "missingProperties": ["a"] }] })
    );
    assert_eq!(
        details(
            bson!({ "$jsonSchema": { "patternProperties": { "^a": { "minimum": 3 }, "b$": { "maximum": 1 } } } }),
            bson!({ "_id": 1, "a": 45, "b": 0, "ab": 2 })
        ),
        bson!({ "operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [{ "operatorName": "patternProperties",
            "details": [
                { "propertyName": "ab", "regexMatched": "^a", "details": [{ "operatorName": "minimum",
                    "specifiedAs": { "minimum": 3 }, "reason": "comparison failed", "consideredValue": 2 }] },
                { "propertyName": "ab", "regexMatched": "b$", "details": [{ "operatorName": "maximum",
                    "specifiedAs": { "maximum": 1 }, "reason": "comparison failed", "consideredValue": 2 }] }] }] })
    );
    assert_eq!(
        details(
            bson!({ "$jsonSchema": { "dependencies": { "a": ["b", "c", "d"], "b": ["c", "d"], "e": ["c", "d"] } } }),
            bson!({ "a": 1, "b": 2, "e": 3 })
        ),
        bson!({ "operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [{ "operatorName": "dependencies",
            "failingDependencies": [
                { "conditionalProperty": "a", "missingProperties": ["c", "d"] },
                { "conditionalProperty": "b", "missingProperties": ["c", "d"] },
                { "conditionalProperty": "e", "missingProperties": ["c", "d"] }] }] })
    );
    assert_eq!(
        details(
            bson!({ "$jsonSchema": { "properties": { "a": { "oneOf": [{ "minimum": 1 }, { "maximum": 3 }] } } } }),
            bson!({ "a": 2 })
        ),
        bson!({ "operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [{ "operatorName": "properties",
            "propertiesNotSatisfied": [{ "propertyName": "a", "details": [{ "operatorName": "oneOf",
                "reason": "more than one subschema matched", "matchingSchemaIndexes": [0, 1] }] }] }] })
    );
    assert_eq!(
        details(
            bson!({ "$jsonSchema": { "allOf": [{ "properties": { "a": { "minimum": 1 } } },
                                                    { "properties": { "b": { "minimum": 2 } } }] } }),
            bson!({ "a": 1, "b": 0 })
        ),
        bson!({ "operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [{ "operatorName": "allOf",
            "schemasNotSatisfied": [{ "index": 1, "details": [{ "operatorName": "properties",
                "propertiesNotSatisfied": [{ "propertyName": "b", "details": [{ "operatorName": "minimum",
                    "specifiedAs": { "minimum": 2 }, "reason": "comparison failed", "consideredValue": 0 }] }] }] }] }] })
    );
    assert_eq!(
        details(bson!({ "$jsonSchema": { "enum": [{ "a": 1, "b": 1 }] } }), bson!({ "a": 0, "b": 1, "_id": 1 })),
        bson!({ "operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [{ "operatorName": "enum",
            "specifiedAs": { "enum": [{ "a": 1, "b": 1 }] }, "reason": "value was not found in enum",
            "consideredValue": { "a": 0, "b": 1, "_id": 1 } }] })
    );
    assert_eq!(
        details(bson!({ "$jsonSchema": { "not": { "properties": { "a": { "minimum": 3 } } } } }), bson!({ "a": 6 })),
        bson!({ "operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [{ "operatorName": "not",
            "reason": "child expression matched" }] })
    );
    assert_eq!(
        details(
            bson!({ "$jsonSchema": { "properties": { "a": { "items": [{ "type": "number" }, { "type": "string" }],
                                                            "additionalItems": false } } } }),
            bson!({ "a": [1, "First", "Extra element"] })
        ),
        bson!({ "operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [{ "operatorName": "properties",
            "propertiesNotSatisfied": [{ "propertyName": "a", "details": [{ "operatorName": "additionalItems",
                "specifiedAs": { "additionalItems": false }, "reason": "found additional items",
                "additionalItems": ["Extra element"] }] }] }] })
    );
    assert_eq!(
        details(bson!({ "$jsonSchema": { "minProperties": 10 } }), bson!({ "_id": 1, "a": 1, "b": 2, "c": 3 })),
        bson!({ "operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [{ "operatorName": "minProperties",
            "specifiedAs": { "minProperties": 10 }, "reason": "specified number of properties was not satisfied",
            "numberOfProperties": 4 }] })
    );
}
