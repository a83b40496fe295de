use super::*;
use bson::{Bson, RawDocumentBuf, bson, doc, rawdoc};

fn schema(spec: Bson) -> Result<JsonSchema, (i32, String)> {
    let raw = RawBson::try_from(spec).unwrap();
    JsonSchema::parse(raw.as_raw_bson_ref()).map_err(|e| (e.code().code(), e.message().to_owned()))
}

/// Runs `(schema, document, matches)` rows.
fn table(rows: Vec<(Bson, bson::Document, bool)>) {
    for (spec, doc, expected) in rows {
        let compiled = schema(spec.clone()).unwrap_or_else(|e| panic!("{spec}: {e:?}"));
        let raw = RawDocumentBuf::try_from(&doc).unwrap();
        assert_eq!(compiled.matches(&raw), expected, "{spec} on {doc}");
    }
}

fn code(spec: Bson) -> i32 {
    schema(spec.clone()).map(|_| ()).expect_err(&format!("{spec} must fail")).0
}

#[test]
fn json_schema_types() {
    table(vec![
        (bson!({ "properties": { "a": { "bsonType": "int" } } }), doc! { "a": 1 }, true),
        (bson!({ "properties": { "a": { "bsonType": "int" } } }), doc! { "a": 1.0 }, false),
        (bson!({ "properties": { "a": { "bsonType": "int" } } }), doc! {}, true),
        (bson!({ "properties": { "a": { "bsonType": "int" } } }), doc! { "a": [1] }, false),
        (bson!({ "properties": { "a": { "bsonType": ["string", "null"] } } }), doc! { "a": null }, true),
        (bson!({ "properties": { "a": { "bsonType": "number" } } }), doc! { "a": 1_i64 }, true),
        (bson!({ "properties": { "a": { "bsonType": "objectId" } } }), doc! { "a": "x" }, false),
        (bson!({ "properties": { "a": { "type": "number" } } }), doc! { "a": 2.5 }, true),
        (bson!({ "properties": { "a": { "type": "boolean" } } }), doc! { "a": true }, true),
        (bson!({ "properties": { "a": { "type": "object" } } }), doc! { "a": {} }, true),
        (bson!({ "properties": { "a": { "type": ["array", "string"] } } }), doc! { "a": 1 }, false),
        (bson!({ "bsonType": "object" }), doc! { "a": 1 }, true),
        // A top-level schema for anything but an object matches nothing.
        (bson!({ "type": "string" }), doc! { "a": 1 }, false),
    ]);
    assert_eq!(
        schema(bson!({ "type": "integer" })).map(|_| ()),
        Err((9, "$jsonSchema type 'integer' is not currently supported.".into()))
    );
    assert_eq!(code(bson!({ "type": ["string", "integer"] })), 9);
    assert_eq!(code(bson!({ "type": "int" })), 2);
    assert_eq!(code(bson!({ "bsonType": "boolean" })), 2);
    assert_eq!(code(bson!({ "bsonType": 16 })), 14);
    assert_eq!(code(bson!({ "bsonType": [1] })), 14);
    assert_eq!(code(bson!({ "bsonType": [] })), 9);
    assert_eq!(code(bson!({ "bsonType": ["int", "int"] })), 9);
    assert_eq!(code(bson!({ "type": "object", "bsonType": "object" })), 9);
}

#[test]
fn json_schema_required_properties_and_allowed_properties() {
    table(vec![
        (bson!({ "required": ["a", "b"] }), doc! { "a": 1, "b": null }, true),
        (bson!({ "required": ["a", "b"] }), doc! { "a": 1 }, false),
        (bson!({ "properties": { "o": { "required": ["x"] } } }), doc! { "o": { "x": 1 } }, true),
        (bson!({ "properties": { "o": { "required": ["x"] } } }), doc! { "o": { "y": 1 } }, false),
        // `required` below applies to objects only.
        (bson!({ "properties": { "o": { "required": ["x"] } } }), doc! { "o": 5 }, true),
        (
            bson!({ "properties": { "_id": {}, "a": {} }, "additionalProperties": false }),
            doc! { "_id": 1, "a": 1 },
            true,
        ),
        (bson!({ "properties": { "a": {} }, "additionalProperties": false }), doc! { "_id": 1, "a": 1 }, false),
        (bson!({ "additionalProperties": { "bsonType": "int" } }), doc! { "a": 1, "b": 2 }, true),
        (bson!({ "additionalProperties": { "bsonType": "int" } }), doc! { "a": 1, "b": "x" }, false),
        (bson!({ "additionalProperties": true }), doc! { "a": "x" }, true),
        (
            bson!({ "patternProperties": { "^s_": { "bsonType": "string" } }, "additionalProperties": false }),
            doc! { "s_a": "x", "s_b": "y" },
            true,
        ),
        (
            bson!({ "patternProperties": { "^s_": { "bsonType": "string" } }, "additionalProperties": false }),
            doc! { "s_a": 1 },
            false,
        ),
        (
            bson!({ "patternProperties": { "^s_": { "bsonType": "string" } }, "additionalProperties": false }),
            doc! { "t": "x" },
            false,
        ),
        // Patterns are searched, not anchored; a named property still meets its patterns.
        (
            bson!({ "properties": { "xay": {} }, "patternProperties": { "a": { "bsonType": "int" } } }),
            doc! { "xay": "s" },
            false,
        ),
        (bson!({ "minProperties": 2 }), doc! { "a": 1 }, false),
        (bson!({ "minProperties": 2, "maxProperties": 2 }), doc! { "a": 1, "b": 2 }, true),
        (bson!({ "maxProperties": 1 }), doc! { "a": 1, "b": 2 }, false),
        (bson!({ "properties": { "o": { "maxProperties": 0 } } }), doc! { "o": {} }, true),
        (bson!({ "properties": { "o": { "maxProperties": 0 } } }), doc! { "o": { "z": 1 } }, false),
    ]);
    assert_eq!(code(bson!({ "required": "a" })), 14);
    assert_eq!(code(bson!({ "required": [1] })), 14);
    assert_eq!(code(bson!({ "required": [] })), 9);
    assert_eq!(code(bson!({ "required": ["a", "a"] })), 9);
    assert_eq!(code(bson!({ "properties": 1 })), 14);
    assert_eq!(
        schema(bson!({ "properties": { "a": 1 } })).map(|_| ()),
        Err((14, "Nested schema for $jsonSchema property 'a' must be an object".into()))
    );
    assert_eq!(code(bson!({ "patternProperties": { "a": 1 } })), 14);
    assert_eq!(code(bson!({ "patternProperties": { "(": {} } })), 51091);
    assert_eq!(code(bson!({ "additionalProperties": 1 })), 14);
    assert_eq!(code(bson!({ "minProperties": -1 })), 9);
    assert_eq!(code(bson!({ "maxProperties": "1" })), 9);
}

#[test]
fn json_schema_dependencies() {
    let props = bson!({ "dependencies": { "card": ["billing", "name"] } });
    let nested = bson!({ "dependencies": { "card": { "required": ["billing"] } } });
    table(vec![
        (props.clone(), doc! { "card": 1, "billing": 2, "name": 3 }, true),
        (props.clone(), doc! { "card": 1, "billing": 2 }, false),
        (props.clone(), doc! { "billing": 2 }, true),
        (nested.clone(), doc! { "card": 1, "billing": 2 }, true),
        (nested.clone(), doc! { "card": 1 }, false),
        (nested, doc! { "other": 1 }, true),
    ]);
    assert_eq!(code(bson!({ "dependencies": 1 })), 14);
    assert_eq!(code(bson!({ "dependencies": { "a": 1 } })), 14);
    assert_eq!(code(bson!({ "dependencies": { "a": [] } })), 9);
    assert_eq!(code(bson!({ "dependencies": { "a": [1] } })), 14);
    assert_eq!(code(bson!({ "dependencies": { "a": ["b", "b"] } })), 9);
}

#[test]
fn json_schema_numbers() {
    let p = |s: Bson| bson!({ "properties": { "n": s } });
    table(vec![
        (p(bson!({ "minimum": 5 })), doc! { "n": 5 }, true),
        (p(bson!({ "minimum": 5 })), doc! { "n": 4.5 }, false),
        (p(bson!({ "minimum": 5, "exclusiveMinimum": true })), doc! { "n": 5 }, false),
        (p(bson!({ "maximum": 5 })), doc! { "n": 5_i64 }, true),
        (p(bson!({ "maximum": 5, "exclusiveMaximum": true })), doc! { "n": 5 }, false),
        (p(bson!({ "maximum": 5, "exclusiveMaximum": false })), doc! { "n": 5 }, true),
        // Restrictions pass values of other types.
        (p(bson!({ "maximum": 5 })), doc! { "n": "100" }, true),
        (p(bson!({ "multipleOf": 3 })), doc! { "n": 9 }, true),
        (p(bson!({ "multipleOf": 3 })), doc! { "n": 10 }, false),
        (p(bson!({ "multipleOf": 0.1 })), doc! { "n": 0.3 }, true),
        (p(bson!({ "multipleOf": 0.1 })), doc! { "n": 0.35 }, false),
        (p(bson!({ "multipleOf": 2.5 })), doc! { "n": 10_i64 }, true),
        (p(bson!({ "multipleOf": 7 })), doc! { "n": 1e30 }, false),
        (p(bson!({ "multipleOf": 5 })), doc! { "n": 1e30 }, true),
        (p(bson!({ "multipleOf": 2 })), doc! { "n": f64::NAN }, false),
        (p(bson!({ "multipleOf": 2 })), doc! { "n": 0 }, true),
    ]);
    assert_eq!(code(bson!({ "minimum": "1" })), 14);
    assert_eq!(code(bson!({ "maximum": 1, "exclusiveMaximum": 1 })), 14);
    assert_eq!(
        schema(bson!({ "exclusiveMinimum": true })).map(|_| ()),
        Err((9, "$jsonSchema keyword 'minimum' must be a present if exclusiveMinimum is present".into()))
    );
    assert_eq!(code(bson!({ "multipleOf": 0 })), 9);
    assert_eq!(code(bson!({ "multipleOf": -2 })), 9);
    assert_eq!(code(bson!({ "multipleOf": "2" })), 14);
}

#[test]
fn json_schema_strings() {
    let p = |s: Bson| bson!({ "properties": { "s": s } });
    table(vec![
        (p(bson!({ "minLength": 2 })), doc! { "s": "ab" }, true),
        (p(bson!({ "minLength": 2 })), doc! { "s": "é" }, false),
        (p(bson!({ "maxLength": 2 })), doc! { "s": "éé" }, true),
        (p(bson!({ "maxLength": 2 })), doc! { "s": "abc" }, false),
        (p(bson!({ "maxLength": 2 })), doc! { "s": 12345 }, true),
        (p(bson!({ "pattern": "^a.c$" })), doc! { "s": "abc" }, true),
        (p(bson!({ "pattern": "b" })), doc! { "s": "abc" }, true),
        (p(bson!({ "pattern": "^b" })), doc! { "s": "abc" }, false),
        (p(bson!({ "pattern": "^b" })), doc! { "s": 1 }, true),
    ]);
    assert_eq!(code(bson!({ "pattern": 1 })), 14);
    assert_eq!(code(bson!({ "properties": { "s": { "pattern": "(" } } })), 51091);
    // A top-level pattern never applies to a document, and mongod does not compile it.
    assert!(schema(bson!({ "pattern": "(" })).is_ok());
    assert!(schema(bson!({ "not": { "pattern": "(" } })).is_ok());
    assert_eq!(code(bson!({ "minLength": 1.5 })), 9);
    assert_eq!(code(bson!({ "maxLength": "x" })), 9);
}

#[test]
fn json_schema_arrays() {
    let p = |s: Bson| bson!({ "properties": { "a": s } });
    table(vec![
        (p(bson!({ "minItems": 2 })), doc! { "a": [1] }, false),
        (p(bson!({ "minItems": 1, "maxItems": 2 })), doc! { "a": [1, 2] }, true),
        (p(bson!({ "maxItems": 1 })), doc! { "a": [1, 2] }, false),
        (p(bson!({ "maxItems": 1 })), doc! { "a": "not an array" }, true),
        (p(bson!({ "uniqueItems": true })), doc! { "a": [1, 2, 3] }, true),
        (p(bson!({ "uniqueItems": true })), doc! { "a": [1, 2, 1.0] }, false),
        (p(bson!({ "uniqueItems": true })), doc! { "a": [{ "x": 1, "y": 2 }, { "y": 2, "x": 1 }] }, false),
        (p(bson!({ "uniqueItems": false })), doc! { "a": [1, 1] }, true),
        (p(bson!({ "items": { "bsonType": "int" } })), doc! { "a": [1, 2] }, true),
        (p(bson!({ "items": { "bsonType": "int" } })), doc! { "a": [1, "x"] }, false),
        (p(bson!({ "items": [{ "bsonType": "int" }, { "bsonType": "string" }] })), doc! { "a": [1, "x", 3] }, true),
        (p(bson!({ "items": [{ "bsonType": "int" }, { "bsonType": "string" }] })), doc! { "a": ["x"] }, false),
        (p(bson!({ "items": [{ "bsonType": "int" }], "additionalItems": false })), doc! { "a": [1, 2] }, false),
        (p(bson!({ "items": [{ "bsonType": "int" }], "additionalItems": false })), doc! { "a": [1] }, true),
        (p(bson!({ "items": [{}], "additionalItems": { "bsonType": "string" } })), doc! { "a": [1, "x", "y"] }, true),
        (p(bson!({ "items": [{}], "additionalItems": { "bsonType": "string" } })), doc! { "a": [1, 2] }, false),
        // Without an `items` array, `additionalItems` has nothing to add to.
        (p(bson!({ "additionalItems": false })), doc! { "a": [1, 2] }, true),
        (p(bson!({ "items": {}, "additionalItems": false })), doc! { "a": [1, 2] }, true),
    ]);
    assert_eq!(code(bson!({ "uniqueItems": 1 })), 14);
    assert_eq!(code(bson!({ "items": 1 })), 14);
    assert_eq!(code(bson!({ "items": [1] })), 14);
    assert_eq!(code(bson!({ "additionalItems": 1 })), 14);
    assert_eq!(code(bson!({ "minItems": -1 })), 9);
}

#[test]
fn json_schema_logic_and_enum() {
    let p = |s: Bson| bson!({ "properties": { "v": s } });
    table(vec![
        (p(bson!({ "allOf": [{ "minimum": 1 }, { "maximum": 3 }] })), doc! { "v": 2 }, true),
        (p(bson!({ "allOf": [{ "minimum": 1 }, { "maximum": 3 }] })), doc! { "v": 4 }, false),
        (p(bson!({ "anyOf": [{ "bsonType": "int" }, { "bsonType": "string" }] })), doc! { "v": "x" }, true),
        (p(bson!({ "anyOf": [{ "bsonType": "int" }, { "bsonType": "string" }] })), doc! { "v": 1.5 }, false),
        (p(bson!({ "oneOf": [{ "minimum": 1 }, { "minimum": 2 }] })), doc! { "v": 1 }, true),
        (p(bson!({ "oneOf": [{ "minimum": 1 }, { "minimum": 2 }] })), doc! { "v": 3 }, false),
        (p(bson!({ "not": { "bsonType": "int" } })), doc! { "v": 1.5 }, true),
        (p(bson!({ "not": { "bsonType": "int" } })), doc! { "v": 1 }, false),
        (p(bson!({ "enum": [1, "x", { "a": 1, "b": 2 }] })), doc! { "v": 1.0 }, true),
        (p(bson!({ "enum": [1, "x", { "a": 1, "b": 2 }] })), doc! { "v": { "b": 2, "a": 1 } }, true),
        (p(bson!({ "enum": [1, "x", { "a": 1, "b": 2 }] })), doc! { "v": "y" }, false),
        // At the top, the document itself is compared.
        (bson!({ "enum": [{ "b": 2, "a": 1 }, 5] }), doc! { "a": 1, "b": 2 }, true),
        (bson!({ "enum": [5] }), doc! { "a": 1 }, false),
        (bson!({ "title": "t", "description": "d", "required": ["a"] }), doc! { "a": 1 }, true),
    ]);
    assert_eq!(code(bson!({ "allOf": {} })), 14);
    assert_eq!(code(bson!({ "anyOf": [] })), 2);
    assert_eq!(code(bson!({ "oneOf": [1] })), 14);
    assert_eq!(code(bson!({ "not": [] })), 14);
    assert_eq!(code(bson!({ "enum": 1 })), 14);
    assert_eq!(code(bson!({ "enum": [] })), 9);
    assert_eq!(code(bson!({ "enum": [{ "a": 1, "b": 1 }, { "b": 1, "a": 1 }] })), 9);
    assert_eq!(code(bson!({ "title": 1 })), 14);
    assert_eq!(code(bson!({ "description": 1 })), 14);
}

#[test]
fn json_schema_unknown_unsupported_and_duplicate_keywords() {
    for keyword in ["$ref", "$schema", "default", "definitions", "format", "id"] {
        let spec = RawDocumentBuf::try_from(&doc! { keyword: "x" }).unwrap();
        let err = JsonSchema::parse(RawBsonRef::Document(&spec)).unwrap_err();
        assert_eq!(
            (err.code().code(), err.message()),
            (9, format!("$jsonSchema keyword '{keyword}' is not currently supported").as_str())
        );
    }
    assert_eq!(schema(bson!({ "bogus": 1 })).map(|_| ()), Err((9, "Unknown $jsonSchema keyword: bogus".into())));
    let duplicate = rawdoc! { "minProperties": 1, "minProperties": 2 };
    let err = JsonSchema::parse(RawBsonRef::Document(&duplicate)).unwrap_err();
    assert_eq!(err.message(), "Duplicate $jsonSchema keyword: minProperties");
    assert_eq!(code(bson!({ "properties": { "a": { "format": "date" } } })), 9);
    assert_eq!(code(bson!({ "encrypt": {} })), 238);
    assert_eq!(code(bson!(1)), 14);
}
