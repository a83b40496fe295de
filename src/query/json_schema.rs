//! `$jsonSchema` in filters: a JSON Schema (draft 4, with mongod's `bsonType`) compiled once
//! into a [`JsonSchema`] and matched against documents.
//!
//! Keywords: `bsonType`, `type` (JSON types; `integer` is refused, as in mongod), `required`,
//! `properties`, `patternProperties`, `additionalProperties`, `minProperties`,
//! `maxProperties`, `dependencies`, `enum`, `minimum`, `maximum`, `exclusiveMinimum`,
//! `exclusiveMaximum`, `multipleOf`, `minLength`, `maxLength`, `pattern`, `items`,
//! `additionalItems`, `minItems`, `maxItems`, `uniqueItems`, `allOf`, `anyOf`, `oneOf`, `not`,
//! and the annotations `title` and `description`. `$ref`, `$schema`, `default`,
//! `definitions`, `format` and `id` get mongod's "not currently supported" error; `encrypt`
//! and `encryptMetadata` (client-side encryption) answer 238 NotImplemented.
//!
//! mongod translates a schema into match expressions whose restrictions apply only to values
//! of the restricted type (`minimum` passes a string) and only to present fields; this module
//! evaluates the same rules on values directly. Keywords are checked in mongod's order, so the
//! first error reported is mongod's.

use bson::spec::ElementType;
use bson::{RawArray, RawBson, RawBsonRef, RawDocument};

use super::elements::{fields, items};
use super::error::QueryError;
use super::exact::{Decimal, decode_decimal};
use super::filter::argument::parse_non_negative_long;
use super::filter::predicate::{ALL_TYPES, CompareOp, compare_matches};
use super::filter::regex::RegexPredicate;
use super::number::Number;
use super::order::compare_values;
use super::render;
use crate::error::ErrorCode;

/// A compiled `$jsonSchema`.
#[derive(Debug, Clone)]
pub struct JsonSchema {
    root: Schema,
}

impl JsonSchema {
    /// Compiles the argument of `$jsonSchema`.
    ///
    /// # Errors
    /// mongod's: 14 TypeMismatch for a keyword of the wrong type (and for a non-object
    /// argument), 9 FailedToParse for unknown, duplicate, unsupported or inconsistent keywords,
    /// 2 BadValue for an unknown type alias, 51091 for an invalid `pattern`.
    pub fn parse(value: RawBsonRef<'_>) -> Result<Self, QueryError> {
        let RawBsonRef::Document(spec) = value else {
            return Err(QueryError::new(ErrorCode::TypeMismatch, "$jsonSchema must be an object"));
        };
        Ok(Self { root: Schema::parse(spec, true)? })
    }

    /// Whether `doc` satisfies the schema.
    pub fn matches(&self, doc: &RawDocument) -> bool {
        self.root.matches(RawBsonRef::Document(doc))
    }

    /// Compiles a subschema (a `properties` entry, an `items` schema, one keyword) to match
    /// single values with [`JsonSchema::matches_value`]; `top` when it applies to the whole
    /// document, where mongod does not compile `pattern`.
    ///
    /// # Errors
    /// As [`JsonSchema::parse`].
    pub(crate) fn parse_subschema(spec: &RawDocument, top: bool) -> Result<Self, QueryError> {
        Ok(Self { root: Schema::parse(spec, top)? })
    }

    /// Whether a present value satisfies the schema.
    pub(crate) fn matches_value(&self, value: RawBsonRef<'_>) -> bool {
        self.root.matches(value)
    }
}

/// The keywords mongod knows, in no particular order.
const KEYWORDS: &[&str] = &[
    "additionalItems",
    "additionalProperties",
    "allOf",
    "anyOf",
    "bsonType",
    "dependencies",
    "description",
    "encrypt",
    "encryptMetadata",
    "enum",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "items",
    "maxItems",
    "maxLength",
    "maxProperties",
    "maximum",
    "minItems",
    "minLength",
    "minProperties",
    "minimum",
    "multipleOf",
    "not",
    "oneOf",
    "pattern",
    "patternProperties",
    "properties",
    "required",
    "title",
    "type",
    "uniqueItems",
];

/// Keywords of JSON Schema that mongod refuses by name.
const UNSUPPORTED: &[&str] = &["$ref", "$schema", "default", "definitions", "format", "id"];

/// One (sub)schema: every keyword present must hold.
#[derive(Debug, Clone, Default)]
struct Schema {
    types: Option<Types>,
    pattern: Option<RegexPredicate>,
    max_length: Option<i64>,
    min_length: Option<i64>,
    multiple_of: Option<Divisor>,
    maximum: Option<(RawBson, bool)>,
    minimum: Option<(RawBson, bool)>,
    min_items: Option<i64>,
    max_items: Option<i64>,
    unique_items: bool,
    items: Items,
    /// `additionalItems`, which only counts when `items` is an array.
    additional_items: Option<Allowed>,
    required: Vec<String>,
    properties: Vec<(String, Schema)>,
    pattern_properties: Vec<(RegexPredicate, Schema)>,
    /// `additionalProperties`; `None` allows anything.
    additional_properties: Option<Allowed>,
    min_properties: Option<i64>,
    max_properties: Option<i64>,
    dependencies: Vec<(String, Dependency)>,
    all_of: Vec<Schema>,
    any_of: Option<Vec<Schema>>,
    one_of: Option<Vec<Schema>>,
    not: Option<Box<Schema>>,
    enumeration: Option<Vec<RawBson>>,
}

/// The types `type` or `bsonType` allow.
#[derive(Debug, Clone, Default)]
struct Types {
    all_numbers: bool,
    types: Vec<ElementType>,
}

#[derive(Debug, Clone, Default)]
enum Items {
    #[default]
    Any,
    /// `items: {schema}`: every element.
    Each(Box<Schema>),
    /// `items: [schema, ...]`: the element at each position.
    Tuple(Vec<Schema>),
}

/// `additionalItems` / `additionalProperties`: a boolean or a schema.
#[derive(Debug, Clone)]
enum Allowed {
    Bool(bool),
    Schema(Box<Schema>),
}

#[derive(Debug, Clone)]
enum Dependency {
    /// When the property exists, the whole object satisfies the schema.
    Schema(Box<Schema>),
    /// When the property exists, these do too.
    Properties(Vec<String>),
}

/// A `multipleOf` divisor as a decimal `coefficient * 10^exponent`; `None` for NaN or
/// infinity, which nothing is a multiple of.
#[derive(Debug, Clone, Copy)]
struct Divisor(Option<(u128, i32)>);

fn type_mismatch(message: String) -> QueryError {
    QueryError::new(ErrorCode::TypeMismatch, message)
}

fn keyword_error(keyword: &str, rest: &str) -> String {
    format!("$jsonSchema keyword '{keyword}' {rest}")
}

fn type_name(v: RawBsonRef<'_>) -> &'static str {
    render::type_name(v.element_type())
}

impl Schema {
    /// Parses one schema; `top` is the schema of the document itself (or a logical keyword
    /// or schema dependency of it), where mongod skips compiling `pattern`.
    fn parse(spec: &RawDocument, top: bool) -> Result<Self, QueryError> {
        let mut seen: Vec<(&str, RawBsonRef<'_>)> = Vec::new();
        for (key, value) in fields(spec) {
            if !KEYWORDS.contains(&key) {
                if UNSUPPORTED.contains(&key) {
                    return Err(QueryError::failed_to_parse(keyword_error(key, "is not currently supported")));
                }
                return Err(QueryError::failed_to_parse(format!("Unknown $jsonSchema keyword: {key}")));
            }
            if seen.iter().any(|(k, _)| *k == key) {
                return Err(QueryError::failed_to_parse(format!("Duplicate $jsonSchema keyword: {key}")));
            }
            seen.push((key, value));
        }
        let get = |name: &str| seen.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        for annotation in ["description", "title"] {
            if let Some(v) = get(annotation)
                && !matches!(v, RawBsonRef::String(_))
            {
                return Err(type_mismatch(keyword_error(annotation, "must be of type string")));
            }
        }
        if get("encrypt").is_some() || get("encryptMetadata").is_some() {
            return Err(QueryError::not_implemented("$jsonSchema encryption keywords"));
        }
        let mut schema = Self::default();
        match (get("type"), get("bsonType")) {
            (Some(_), Some(_)) => {
                return Err(QueryError::failed_to_parse(
                    "Cannot specify both $jsonSchema keywords 'type' and 'bsonType'",
                ));
            }
            (Some(t), None) => schema.types = Some(parse_types("type", t, true)?),
            (None, Some(t)) => schema.types = Some(parse_types("bsonType", t, false)?),
            (None, None) => {}
        }
        schema.parse_scalar_keywords(&get, top)?;
        schema.parse_array_keywords(&get)?;
        schema.parse_object_keywords(&get, top)?;
        schema.parse_logical_keywords(&get, top)?;
        Ok(schema)
    }

    fn parse_scalar_keywords<'a>(
        &mut self,
        get: &impl Fn(&str) -> Option<RawBsonRef<'a>>,
        top: bool,
    ) -> Result<(), QueryError> {
        if let Some(v) = get("pattern") {
            let RawBsonRef::String(pattern) = v else {
                return Err(type_mismatch(keyword_error("pattern", "must be a string")));
            };
            // JSON Schema has no regex flags. A document is never a string, so mongod does not
            // even compile a top-level pattern.
            if !top {
                self.pattern = Some(RegexPredicate::new(pattern, "")?);
            }
        }
        if let Some(v) = get("maxLength") {
            self.max_length = Some(parse_non_negative_long("maxLength", v)?);
        }
        if let Some(v) = get("minLength") {
            self.min_length = Some(parse_non_negative_long("minLength", v)?);
        }
        if let Some(v) = get("multipleOf") {
            let Some(n) = Number::from_raw(v) else {
                return Err(type_mismatch(keyword_error("multipleOf", "must be a number")));
            };
            let divisor = as_decimal(n);
            let positive = match divisor {
                DecimalValue::Finite { negative, coefficient, .. } => !negative && coefficient != 0,
                DecimalValue::Infinity { negative } => !negative,
                DecimalValue::NaN => true,
            };
            if !positive {
                return Err(QueryError::failed_to_parse(keyword_error("multipleOf", "must have a positive value")));
            }
            self.multiple_of = Some(Divisor(match divisor {
                DecimalValue::Finite { coefficient, exponent, .. } => Some((coefficient, exponent)),
                _ => None,
            }));
        }
        self.maximum = parse_bound(get, "maximum", "exclusiveMaximum")?;
        self.minimum = parse_bound(get, "minimum", "exclusiveMinimum")?;
        Ok(())
    }

    fn parse_array_keywords<'a>(&mut self, get: &impl Fn(&str) -> Option<RawBsonRef<'a>>) -> Result<(), QueryError> {
        if let Some(v) = get("minItems") {
            self.min_items = Some(parse_non_negative_long("minItems", v)?);
        }
        if let Some(v) = get("maxItems") {
            self.max_items = Some(parse_non_negative_long("maxItems", v)?);
        }
        if let Some(v) = get("uniqueItems") {
            let RawBsonRef::Boolean(unique) = v else {
                return Err(type_mismatch(keyword_error("uniqueItems", "must be a boolean")));
            };
            self.unique_items = unique;
        }
        if let Some(v) = get("items") {
            self.items = match v {
                RawBsonRef::Document(sub) => Items::Each(Box::new(Self::parse(sub, false)?)),
                RawBsonRef::Array(list) => {
                    let mut out = Vec::new();
                    for entry in items(list) {
                        let RawBsonRef::Document(sub) = entry else {
                            return Err(type_mismatch(keyword_error(
                                "items",
                                &format!(
                                    "requires that each element of the array is an object, but found a {}",
                                    type_name(entry)
                                ),
                            )));
                        };
                        out.push(Self::parse(sub, false)?);
                    }
                    Items::Tuple(out)
                }
                other => {
                    return Err(type_mismatch(keyword_error(
                        "items",
                        &format!("must be an array or an object, not {}", type_name(other)),
                    )));
                }
            };
        }
        if let Some(v) = get("additionalItems") {
            self.additional_items = Some(match v {
                RawBsonRef::Boolean(b) => Allowed::Bool(b),
                RawBsonRef::Document(sub) => Allowed::Schema(Box::new(Self::parse(sub, false)?)),
                other => {
                    return Err(type_mismatch(keyword_error(
                        "additionalItems",
                        &format!("must be either an object or a boolean, but got a {}", type_name(other)),
                    )));
                }
            });
        }
        Ok(())
    }

    fn parse_object_keywords<'a>(
        &mut self,
        get: &impl Fn(&str) -> Option<RawBsonRef<'a>>,
        top: bool,
    ) -> Result<(), QueryError> {
        if let Some(v) = get("required") {
            self.required = parse_required(v)?;
        }
        if let Some(v) = get("properties") {
            let RawBsonRef::Document(props) = v else {
                return Err(type_mismatch(keyword_error("properties", "must be an object")));
            };
            for (name, sub) in fields(props) {
                let RawBsonRef::Document(sub) = sub else {
                    return Err(type_mismatch(format!(
                        "Nested schema for $jsonSchema property '{name}' must be an object"
                    )));
                };
                self.properties.push((name.to_owned(), Self::parse(sub, false)?));
            }
        }
        if let Some(v) = get("patternProperties") {
            let RawBsonRef::Document(patterns) = v else {
                return Err(type_mismatch(keyword_error("patternProperties", "must be an object")));
            };
            for (pattern, sub) in fields(patterns) {
                let RawBsonRef::Document(sub) = sub else {
                    return Err(type_mismatch(keyword_error(
                        "patternProperties",
                        &format!("has property '{pattern}' which is not an object"),
                    )));
                };
                self.pattern_properties.push((RegexPredicate::new(pattern, "")?, Self::parse(sub, false)?));
            }
        }
        if let Some(v) = get("additionalProperties") {
            self.additional_properties = Some(match v {
                RawBsonRef::Boolean(b) => Allowed::Bool(b),
                RawBsonRef::Document(sub) => Allowed::Schema(Box::new(Self::parse(sub, false)?)),
                _ => {
                    return Err(type_mismatch(keyword_error("additionalProperties", "must be an object or a boolean")));
                }
            });
        }
        if let Some(v) = get("minProperties") {
            self.min_properties = Some(parse_non_negative_long("minProperties", v)?);
        }
        if let Some(v) = get("maxProperties") {
            self.max_properties = Some(parse_non_negative_long("maxProperties", v)?);
        }
        if let Some(v) = get("dependencies") {
            let RawBsonRef::Document(deps) = v else {
                return Err(type_mismatch(keyword_error("dependencies", "must be an object")));
            };
            for (name, dep) in fields(deps) {
                let dependency = match dep {
                    RawBsonRef::Document(sub) => Dependency::Schema(Box::new(Self::parse(sub, top)?)),
                    RawBsonRef::Array(list) => Dependency::Properties(parse_property_dependency(name, list)?),
                    _ => {
                        return Err(type_mismatch(format!(
                            "property '{name}' in $jsonSchema keyword 'dependencies' must be either an object or \
                             an array"
                        )));
                    }
                };
                self.dependencies.push((name.to_owned(), dependency));
            }
        }
        Ok(())
    }

    fn parse_logical_keywords<'a>(
        &mut self,
        get: &impl Fn(&str) -> Option<RawBsonRef<'a>>,
        top: bool,
    ) -> Result<(), QueryError> {
        if let Some(v) = get("allOf") {
            self.all_of = parse_schema_list("allOf", v, top)?;
        }
        if let Some(v) = get("anyOf") {
            self.any_of = Some(parse_schema_list("anyOf", v, top)?);
        }
        if let Some(v) = get("oneOf") {
            self.one_of = Some(parse_schema_list("oneOf", v, top)?);
        }
        if let Some(v) = get("not") {
            let RawBsonRef::Document(sub) = v else {
                return Err(type_mismatch(keyword_error(
                    "not",
                    &format!("must be an object, but found an element of type {}", type_name(v)),
                )));
            };
            self.not = Some(Box::new(Self::parse(sub, top)?));
        }
        if let Some(v) = get("enum") {
            self.enumeration = Some(parse_enum(v)?);
        }
        Ok(())
    }

    /// Whether a present value satisfies every keyword. Restrictions on one type pass values
    /// of other types, as JSON Schema (and mongod) has it.
    fn matches(&self, value: RawBsonRef<'_>) -> bool {
        if let Some(types) = &self.types
            && !types.contains(value)
        {
            return false;
        }
        let scalar_ok = match value {
            RawBsonRef::String(s) => {
                let length = i64::try_from(s.chars().count()).unwrap_or(i64::MAX);
                self.pattern.as_ref().is_none_or(|re| re.matches(value))
                    && self.max_length.is_none_or(|max| length <= max)
                    && self.min_length.is_none_or(|min| length >= min)
            }
            _ => match Number::from_raw(value) {
                Some(n) => {
                    let bound = |b: &Option<(RawBson, bool)>, strict: CompareOp, loose: CompareOp| {
                        b.as_ref().is_none_or(|(rhs, exclusive)| {
                            compare_matches(
                                if *exclusive { strict } else { loose },
                                Some(value),
                                rhs.as_raw_bson_ref(),
                                None,
                            )
                        })
                    };
                    self.multiple_of.is_none_or(|d| d.divides(n))
                        && bound(&self.maximum, CompareOp::Lt, CompareOp::Lte)
                        && bound(&self.minimum, CompareOp::Gt, CompareOp::Gte)
                }
                None => true,
            },
        };
        if !scalar_ok {
            return false;
        }
        let structure_ok = match value {
            RawBsonRef::Array(arr) => self.matches_array(arr),
            RawBsonRef::Document(doc) => self.matches_object(doc),
            _ => true,
        };
        structure_ok && self.matches_logical(value)
    }

    fn matches_array(&self, arr: &RawArray) -> bool {
        let elements: Vec<RawBsonRef<'_>> = items(arr).collect();
        let len = i64::try_from(elements.len()).unwrap_or(i64::MAX);
        if self.min_items.is_some_and(|min| len < min) || self.max_items.is_some_and(|max| len > max) {
            return false;
        }
        if self.unique_items
            && elements.iter().enumerate().any(|(i, a)| elements.iter().skip(i + 1).any(|b| equal_unordered(*a, *b)))
        {
            return false;
        }
        match &self.items {
            Items::Any => true,
            Items::Each(schema) => elements.iter().all(|e| schema.matches(*e)),
            Items::Tuple(schemas) => {
                let positional = elements.iter().zip(schemas).all(|(e, s)| s.matches(*e));
                let rest = elements.iter().skip(schemas.len());
                positional
                    && match &self.additional_items {
                        None | Some(Allowed::Bool(true)) => true,
                        Some(Allowed::Bool(false)) => rest.count() == 0,
                        Some(Allowed::Schema(schema)) => rest.into_iter().all(|e| schema.matches(*e)),
                    }
            }
        }
    }

    fn matches_object(&self, doc: &RawDocument) -> bool {
        let entries: Vec<(&str, RawBsonRef<'_>)> = fields(doc).collect();
        let get = |name: &str| entries.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        if !self.required.iter().all(|name| get(name).is_some()) {
            return false;
        }
        let count = i64::try_from(entries.len()).unwrap_or(i64::MAX);
        if self.min_properties.is_some_and(|min| count < min) || self.max_properties.is_some_and(|max| count > max) {
            return false;
        }
        // An absent property satisfies its schema; `required` is checked on its own.
        if !self.properties.iter().all(|(name, schema)| get(name).is_none_or(|v| schema.matches(v))) {
            return false;
        }
        if (!self.pattern_properties.is_empty() || self.additional_properties.is_some())
            && !entries.iter().all(|(name, value)| self.property_allowed(name, *value))
        {
            return false;
        }
        self.dependencies.iter().all(|(name, dependency)| {
            get(name).is_none()
                || match dependency {
                    Dependency::Schema(schema) => schema.matches(RawBsonRef::Document(doc)),
                    Dependency::Properties(names) => names.iter().all(|n| get(n).is_some()),
                }
        })
    }

    /// mongod's `InternalSchemaAllowedPropertiesMatchExpression` for one field: every matching
    /// pattern's schema holds; a field named by `properties` or matched by a pattern is not
    /// additional.
    fn property_allowed(&self, name: &str, value: RawBsonRef<'_>) -> bool {
        let mut additional = true;
        let name_value = RawBsonRef::String(name);
        for (pattern, schema) in &self.pattern_properties {
            if pattern.matches(name_value) {
                additional = false;
                if !schema.matches(value) {
                    return false;
                }
            }
        }
        if additional && self.properties.iter().any(|(n, _)| n == name) {
            additional = false;
        }
        !additional
            || match &self.additional_properties {
                None | Some(Allowed::Bool(true)) => true,
                Some(Allowed::Bool(false)) => false,
                Some(Allowed::Schema(schema)) => schema.matches(value),
            }
    }

    fn matches_logical(&self, value: RawBsonRef<'_>) -> bool {
        self.all_of.iter().all(|s| s.matches(value))
            && self.any_of.as_ref().is_none_or(|list| list.iter().any(|s| s.matches(value)))
            && self.one_of.as_ref().is_none_or(|list| list.iter().filter(|s| s.matches(value)).count() == 1)
            && self.not.as_ref().is_none_or(|s| !s.matches(value))
            && self
                .enumeration
                .as_ref()
                .is_none_or(|list| list.iter().any(|candidate| equal_unordered(candidate.as_raw_bson_ref(), value)))
    }
}

impl Types {
    fn contains(&self, value: RawBsonRef<'_>) -> bool {
        (self.all_numbers && Number::from_raw(value).is_some()) || self.types.contains(&value.element_type())
    }
}

/// `type` (JSON type names) or `bsonType` (mongod's `$type` aliases): a string or an array of
/// distinct strings (mongod's `JSONSchemaParser::parseTypeSet`).
fn parse_types(keyword: &str, value: RawBsonRef<'_>, json: bool) -> Result<Types, QueryError> {
    let names: Vec<&str> = match value {
        RawBsonRef::String(s) => vec![s],
        RawBsonRef::Array(list) => {
            let mut out = Vec::new();
            for entry in items(list) {
                let RawBsonRef::String(s) = entry else {
                    return Err(type_mismatch(keyword_error(keyword, "array elements must be strings")));
                };
                if s == "integer" {
                    return Err(integer_unsupported());
                }
                if out.contains(&s) {
                    return Err(QueryError::failed_to_parse(keyword_error(
                        keyword,
                        &format!("has duplicate value: {s}"),
                    )));
                }
                out.push(s);
            }
            out
        }
        _ => return Err(type_mismatch(keyword_error(keyword, "must be either a string or an array of strings"))),
    };
    if names.contains(&"integer") {
        return Err(integer_unsupported());
    }
    let mut types = Types::default();
    for name in names {
        if name == "number" {
            types.all_numbers = true;
            continue;
        }
        let found = if json {
            match name {
                "array" => Some(ElementType::Array),
                "boolean" => Some(ElementType::Boolean),
                "null" => Some(ElementType::Null),
                "object" => Some(ElementType::EmbeddedDocument),
                "string" => Some(ElementType::String),
                _ => None,
            }
        } else {
            ALL_TYPES.iter().copied().find(|t| render::type_name(*t) == name)
        };
        let Some(found) = found else {
            return Err(QueryError::bad_value(format!("Unknown type name alias: {name}")));
        };
        types.types.push(found);
    }
    if !types.all_numbers && types.types.is_empty() {
        return Err(QueryError::failed_to_parse(keyword_error(keyword, "must name at least one type")));
    }
    Ok(types)
}

fn integer_unsupported() -> QueryError {
    QueryError::failed_to_parse("$jsonSchema type 'integer' is not currently supported.")
}

/// `maximum`/`minimum` with their `exclusive*` companion (a boolean, in draft 4).
fn parse_bound<'a>(
    get: &impl Fn(&str) -> Option<RawBsonRef<'a>>,
    keyword: &str,
    exclusive_keyword: &str,
) -> Result<Option<(RawBson, bool)>, QueryError> {
    let exclusive = get(exclusive_keyword);
    let Some(bound) = get(keyword) else {
        if exclusive.is_some() {
            return Err(QueryError::failed_to_parse(keyword_error(
                keyword,
                &format!("must be a present if {exclusive_keyword} is present"),
            )));
        }
        return Ok(None);
    };
    let exclusive = match exclusive {
        None => false,
        Some(RawBsonRef::Boolean(b)) => b,
        Some(_) => return Err(type_mismatch(keyword_error(exclusive_keyword, "must be a boolean"))),
    };
    if Number::from_raw(bound).is_none() {
        return Err(type_mismatch(keyword_error(keyword, "must be a number")));
    }
    Ok(Some((RawBson::from(bound), exclusive)))
}

fn parse_required(value: RawBsonRef<'_>) -> Result<Vec<String>, QueryError> {
    let RawBsonRef::Array(list) = value else {
        return Err(type_mismatch(keyword_error(
            "required",
            &format!("must be an array, but found an element of type {}", type_name(value)),
        )));
    };
    let mut names: Vec<String> = Vec::new();
    for entry in items(list) {
        let RawBsonRef::String(name) = entry else {
            return Err(type_mismatch(keyword_error(
                "required",
                &format!("must be an array of strings, but found an element of type: {}", type_name(entry)),
            )));
        };
        names.push(name.to_owned());
    }
    if names.is_empty() {
        return Err(QueryError::failed_to_parse(keyword_error("required", "cannot be an empty array")));
    }
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != names.len() {
        return Err(QueryError::failed_to_parse(keyword_error("required", "array cannot contain duplicate values")));
    }
    Ok(names)
}

fn parse_property_dependency(name: &str, list: &RawArray) -> Result<Vec<String>, QueryError> {
    let mut names: Vec<String> = Vec::new();
    for entry in items(list) {
        let RawBsonRef::String(dependency) = entry else {
            return Err(type_mismatch(format!(
                "array '{name}' in $jsonSchema keyword 'dependencies' can only contain strings, but found element of \
                 type: {}",
                type_name(entry)
            )));
        };
        if names.iter().any(|n| n == dependency) {
            return Err(QueryError::failed_to_parse(format!(
                "array '{name}' in $jsonSchema keyword 'dependencies' contains duplicate element: {dependency}"
            )));
        }
        names.push(dependency.to_owned());
    }
    if names.is_empty() {
        return Err(QueryError::failed_to_parse(format!(
            "property '{name}' in $jsonSchema keyword 'dependencies' cannot be an empty array"
        )));
    }
    Ok(names)
}

fn parse_schema_list(keyword: &str, value: RawBsonRef<'_>, top: bool) -> Result<Vec<Schema>, QueryError> {
    let RawBsonRef::Array(list) = value else {
        return Err(type_mismatch(keyword_error(keyword, "must be an array")));
    };
    let mut out = Vec::new();
    for entry in items(list) {
        let RawBsonRef::Document(sub) = entry else {
            return Err(type_mismatch(keyword_error(
                keyword,
                &format!("must be an array of objects, but found an element of type {}", type_name(entry)),
            )));
        };
        out.push(Schema::parse(sub, top)?);
    }
    if out.is_empty() {
        return Err(QueryError::bad_value(keyword_error(keyword, "must be a non-empty array")));
    }
    Ok(out)
}

fn parse_enum(value: RawBsonRef<'_>) -> Result<Vec<RawBson>, QueryError> {
    let RawBsonRef::Array(list) = value else {
        return Err(type_mismatch(keyword_error(
            "enum",
            &format!("must be an array, but found an element of type {}", type_name(value)),
        )));
    };
    let mut out: Vec<RawBson> = Vec::new();
    for entry in items(list) {
        if out.iter().any(|seen| equal_unordered(seen.as_raw_bson_ref(), entry)) {
            return Err(QueryError::failed_to_parse(keyword_error("enum", "array cannot contain duplicate values.")));
        }
        out.push(RawBson::from(entry));
    }
    if out.is_empty() {
        return Err(QueryError::failed_to_parse(keyword_error("enum", "cannot be an empty array")));
    }
    Ok(out)
}

/// mongod's `UnorderedFieldsBSONElementComparator` equality: BSON comparison, except that
/// documents are equal when they hold equal values under the same names in any order.
pub(crate) fn equal_unordered(a: RawBsonRef<'_>, b: RawBsonRef<'_>) -> bool {
    equal_unordered_at(a, b, 0)
}

/// [`equal_unordered`] for values `depth` levels down. The recursion goes as deep as both
/// values nest; past mongod's depth limit (two documents stored by an older version) nested
/// values are equal only when byte-identical, which keeps the stack safe.
fn equal_unordered_at(a: RawBsonRef<'_>, b: RawBsonRef<'_>, depth: usize) -> bool {
    let too_deep = depth > super::limits::MAX_BSON_DEPTH;
    match (a, b) {
        (RawBsonRef::Document(x), RawBsonRef::Document(y)) if too_deep => x.as_bytes() == y.as_bytes(),
        (RawBsonRef::Array(x), RawBsonRef::Array(y)) if too_deep => x.as_bytes() == y.as_bytes(),
        (RawBsonRef::Document(x), RawBsonRef::Document(y)) => {
            let (xs, ys): (Vec<_>, Vec<_>) = (fields(x).collect(), fields(y).collect());
            xs.len() == ys.len()
                && xs.iter().all(|(name, v)| ys.iter().any(|(n, w)| n == name && equal_unordered_at(*v, *w, depth + 1)))
        }
        (RawBsonRef::Array(x), RawBsonRef::Array(y)) => {
            let (xs, ys): (Vec<_>, Vec<_>) = (items(x).collect(), items(y).collect());
            xs.len() == ys.len() && xs.iter().zip(&ys).all(|(v, w)| equal_unordered_at(*v, *w, depth + 1))
        }
        _ => compare_values(a, b).is_eq(),
    }
}

/// A number as mongod's `numberDecimal` sees it (doubles rounded to 15 significant digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DecimalValue {
    NaN,
    Infinity { negative: bool },
    Finite { negative: bool, coefficient: u128, exponent: i32 },
}

fn as_decimal(n: Number) -> DecimalValue {
    match n {
        Number::Int32(i) => {
            DecimalValue::Finite { negative: i < 0, coefficient: u128::from(i.unsigned_abs()), exponent: 0 }
        }
        Number::Int64(i) => {
            DecimalValue::Finite { negative: i < 0, coefficient: u128::from(i.unsigned_abs()), exponent: 0 }
        }
        Number::Double(d) if d.is_nan() => DecimalValue::NaN,
        Number::Double(d) if d.is_infinite() => DecimalValue::Infinity { negative: d < 0.0 },
        Number::Double(d) => {
            // `{:.14e}` is 15 significant digits, as mongod's `Decimal128(double)` keeps.
            let shown = format!("{:.14e}", d.abs());
            let (mantissa, exp) = shown.split_once('e').unwrap_or((&shown, "0"));
            let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
            DecimalValue::Finite {
                negative: d < 0.0,
                coefficient: digits.parse().unwrap_or(0),
                exponent: exp.parse::<i32>().unwrap_or(0) - 14,
            }
        }
        Number::Decimal(d) => match decode_decimal(d) {
            Decimal::NaN => DecimalValue::NaN,
            Decimal::Infinity { negative } => DecimalValue::Infinity { negative },
            Decimal::Finite { negative, coefficient, exponent } => {
                DecimalValue::Finite { negative, coefficient, exponent }
            }
        },
    }
}

impl Divisor {
    /// Whether `n` is an exact multiple (mongod's `$_internalSchemaFmod` with remainder 0,
    /// computed in decimal).
    fn divides(self, n: Number) -> bool {
        let (Some((dc, de)), DecimalValue::Finite { coefficient: xc, exponent: xe, .. }) = (self.0, as_decimal(n))
        else {
            return false;
        };
        if xc == 0 {
            return true;
        }
        if xe >= de {
            // x = xc * 10^(xe - de) * 10^de: the remainder of xc * 10^k by dc, step by step.
            let mut r = xc % dc;
            for _ in 0..xe.abs_diff(de) {
                if r == 0 {
                    break;
                }
                // r < dc < 10^34, so r * 10 fits a u128.
                r = (r * 10) % dc;
            }
            return r == 0;
        }
        // d = dc * 10^k * 10^xe; when that exceeds xc (34 digits at most), xc is the remainder.
        let mut m = dc;
        for _ in 0..de.abs_diff(xe) {
            match m.checked_mul(10) {
                Some(next) => m = next,
                None => return false,
            }
        }
        xc % m == 0
    }
}

#[cfg(test)]
mod tests;
