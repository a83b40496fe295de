//! Why a document fails a collection validator, in mongod's shape: the `errInfo` of 121
//! DocumentValidationFailure, `{failingDocumentId, details}`, where `details` names the
//! operators that failed (`operatorName`), what they were given (`specifiedAs`), why they
//! failed (`reason`) and the values they looked at (`consideredValue(s)`,
//! `consideredType(s)`), nesting through `$and`/`$or`/`$nor`/`$not` (`clausesNotSatisfied`,
//! `clausesSatisfied`) and `$jsonSchema` (`schemaRulesNotSatisfied`, `propertiesNotSatisfied`,
//! ...).
//!
//! It mirrors mongod's `doc_validation_error` walk over the validator's match expression:
//! under a negation (`$not`, `$nor`, `$ne`, `$nin`, `$exists: false`) an operator is reported
//! because it matched ("comparison succeeded"). It runs only for a document that has already
//! failed: it splits the validator as written and compiles each clause on its own to learn
//! whether it holds, so a write that passes never pays for it.
//!
//! Not reproduced: mongod's size limits on the generated error (`truncated`, the
//! "detailed error was too large" note), which a validator of ordinary size never reaches.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use bson::spec::ElementType;
use bson::{Bson, Document, RawArray, RawBsonRef, RawDocument, RawDocumentBuf, doc};

use super::collation::Collation;
use super::elements::{fields, items};
use super::expr::{Expression, Variables};
use super::filter::{Filter, is_operator_document, true_value};
use super::json_schema::{JsonSchema, equal_unordered};
use super::number::Number;
use super::path::{self, FieldPath, Reached};
use super::render::type_name;

/// At most this many values are listed in `consideredValues` (mongod's
/// `internalQueryMaxDocValidationErrorConsideredValues`).
const MAX_CONSIDERED_VALUES: usize = 10;

/// mongod's `errInfo` for `doc`, which fails `validator`; `collation` is the collection's
/// default, under which the validator compares strings.
pub fn generate(validator: &RawDocument, doc: &RawDocument, collation: Option<&Arc<Collation>>) -> Document {
    let cx = Cx { collation };
    let details = cx.error(&split(validator), doc, Sense::Normal);
    let mut info = Document::new();
    if let Some(id) = doc.get("_id").ok().flatten() {
        info.insert("failingDocumentId", to_bson(id));
    }
    info.insert("details", details);
    info
}

/// Whether an error explains a failure (normal) or, under a negation, a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sense {
    Normal,
    Inverted,
}

impl Sense {
    fn flip(self) -> Self {
        match self {
            Self::Normal => Self::Inverted,
            Self::Inverted => Self::Normal,
        }
    }

    /// The text for this sense.
    fn pick(self, normal: &'static str, inverted: &'static str) -> &'static str {
        match self {
            Self::Normal => normal,
            Self::Inverted => inverted,
        }
    }
}

/// A clause of the validator as mongod's parser builds it.
enum Clause<'a> {
    /// `$and`, or the implicit conjunction of a document's clauses.
    And(Vec<Clause<'a>>),
    Or(Vec<Clause<'a>>),
    Nor(Vec<Clause<'a>>),
    /// `{path: {$not: ...}}`.
    Not(Box<Clause<'a>>),
    /// One operator on one path.
    Leaf(Leaf),
    /// `$expr`.
    Expr(RawBsonRef<'a>),
    /// `$jsonSchema`.
    Schema(&'a RawDocument),
}

/// One operator on one path.
struct Leaf {
    path: String,
    /// The operator as the user wrote it (`$eq` for an implicit equality).
    name: String,
    /// `$ne`, `$nin` and `$exists: false`: mongod's negation of the positive operator, which
    /// reports in the opposite sense.
    negated: bool,
    /// The clause alone, as a filter (`{a: {$lt: 10}}`): `specifiedAs`, and what is compiled
    /// to learn whether the clause holds.
    specified: Document,
    kind: LeafKind,
}

/// How an operator explains itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeafKind {
    Compare,
    In,
    Exists,
    Type,
    Regex,
    Mod,
    Bits,
    Size,
    ElemMatch,
    All,
    /// `$all: []`, which matches nothing.
    Never,
}

/// Splits a filter document into clauses: one clause stands alone, several form an `$and`.
fn split(doc: &RawDocument) -> Clause<'_> {
    let mut clauses = Vec::new();
    for (key, value) in fields(doc) {
        match key {
            "$and" | "$or" | "$nor" => {
                let children: Vec<Clause<'_>> = match value {
                    RawBsonRef::Array(entries) => items(entries)
                        .filter_map(|entry| match entry {
                            RawBsonRef::Document(entry) => Some(split(entry)),
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                clauses.push(match key {
                    "$and" => Clause::And(children),
                    "$or" => Clause::Or(children),
                    _ => Clause::Nor(children),
                });
            }
            "$expr" => clauses.push(Clause::Expr(value)),
            "$jsonSchema" => {
                if let RawBsonRef::Document(schema) = value {
                    clauses.push(Clause::Schema(schema));
                }
            }
            // DBRef fields are compared as fields; other `$` keys were refused by the parser.
            "$ref" | "$id" | "$db" => clauses.push(path_clauses(key, value)),
            _ if key.starts_with('$') => {}
            _ => clauses.push(path_clauses(key, value)),
        }
    }
    conjunction(clauses)
}

/// One clause, or the conjunction of several (mongod drops a conjunction of one).
fn conjunction(mut clauses: Vec<Clause<'_>>) -> Clause<'_> {
    if clauses.len() == 1
        && let Some(only) = clauses.pop()
    {
        return only;
    }
    Clause::And(clauses)
}

/// The clauses of `{path: value}`: one per operator of an operator document, else one
/// equality (or regular expression).
fn path_clauses<'a>(path: &str, value: RawBsonRef<'a>) -> Clause<'a> {
    let ops = match value {
        RawBsonRef::Document(ops) if is_operator_document(ops) => ops,
        RawBsonRef::RegularExpression(_) => return Clause::Leaf(leaf(path, "$regex", false, specified(path, value))),
        _ => return Clause::Leaf(leaf(path, "$eq", false, specified(path, value))),
    };
    let mut clauses = Vec::new();
    for (op, arg) in fields(ops) {
        let clause = match op {
            "$options" => continue,
            "$regex" => {
                // `$regex` and `$options` make one operator, reported together.
                let regex: Document = fields(ops)
                    .filter(|(key, _)| matches!(*key, "$regex" | "$options"))
                    .map(|(key, part)| (key.to_owned(), to_bson(part)))
                    .collect();
                let mut spec = Document::new();
                spec.insert(path, regex);
                Clause::Leaf(leaf(path, op, false, spec))
            }
            "$not" => Clause::Not(Box::new(path_clauses(path, arg))),
            "$ne" | "$nin" => Clause::Leaf(leaf(path, op, true, operator_spec(path, op, arg))),
            "$exists" => Clause::Leaf(leaf(path, op, !true_value(arg), operator_spec(path, op, arg))),
            "$all" if matches!(arg, RawBsonRef::Array(list) if items(list).next().is_none()) => {
                let mut never = leaf(path, op, false, operator_spec(path, op, arg));
                never.kind = LeafKind::Never;
                Clause::Leaf(never)
            }
            _ => Clause::Leaf(leaf(path, op, false, operator_spec(path, op, arg))),
        };
        clauses.push(clause);
    }
    conjunction(clauses)
}

fn leaf(path: &str, name: &str, negated: bool, specified: Document) -> Leaf {
    let kind = match name {
        "$in" | "$nin" => LeafKind::In,
        "$exists" => LeafKind::Exists,
        "$type" => LeafKind::Type,
        "$regex" => LeafKind::Regex,
        "$mod" => LeafKind::Mod,
        "$bitsAllSet" | "$bitsAnySet" | "$bitsAllClear" | "$bitsAnyClear" => LeafKind::Bits,
        "$size" => LeafKind::Size,
        "$elemMatch" => LeafKind::ElemMatch,
        "$all" => LeafKind::All,
        _ => LeafKind::Compare,
    };
    Leaf { path: path.to_owned(), name: name.to_owned(), negated, specified, kind }
}

/// `{path: value}`.
fn specified(path: &str, value: RawBsonRef<'_>) -> Document {
    let mut spec = Document::new();
    spec.insert(path, to_bson(value));
    spec
}

/// `{path: {op: arg}}`.
fn operator_spec(path: &str, op: &str, arg: RawBsonRef<'_>) -> Document {
    let mut inner = Document::new();
    inner.insert(op, to_bson(arg));
    let mut spec = Document::new();
    spec.insert(path, inner);
    spec
}

fn to_bson(value: RawBsonRef<'_>) -> Bson {
    Bson::try_from(value).unwrap_or(Bson::Null)
}

fn raw(doc: &Document) -> Option<RawDocumentBuf> {
    RawDocumentBuf::try_from(doc).ok()
}

/// What the walk needs besides the document.
struct Cx<'c> {
    collation: Option<&'c Arc<Collation>>,
}

impl Cx<'_> {
    /// Whether `clause` holds for `doc`; `None` when evaluating it fails (an `$expr` error),
    /// which mongod reports like a failure.
    fn holds(&self, clause: &Clause<'_>, doc: &RawDocument) -> Option<bool> {
        match clause {
            Clause::And(children) => {
                for child in children {
                    if !self.holds(child, doc)? {
                        return Some(false);
                    }
                }
                Some(true)
            }
            Clause::Or(children) | Clause::Nor(children) => {
                let mut any = false;
                for child in children {
                    if self.holds(child, doc)? {
                        any = true;
                        break;
                    }
                }
                Some(any == matches!(clause, Clause::Or(_)))
            }
            Clause::Not(child) => self.holds(child, doc).map(|held| !held),
            Clause::Leaf(leaf) => self.filter_holds(&leaf.specified, doc),
            Clause::Expr(value) => self.filter_holds(&doc! { "$expr": to_bson(*value) }, doc),
            Clause::Schema(schema) => {
                self.filter_holds(&doc! { "$jsonSchema": to_bson(RawBsonRef::Document(schema)) }, doc)
            }
        }
    }

    fn filter_holds(&self, spec: &Document, doc: &RawDocument) -> Option<bool> {
        let filter = Filter::parse(&raw(spec)?).ok()?.with_collation(self.collation);
        filter.try_matches(doc).ok()
    }

    /// Whether a child of a logical operator contributes to its parent's error: it fails in a
    /// normal context or matches in an inverted one (or cannot be evaluated either way).
    fn contributes(&self, clause: &Clause<'_>, doc: &RawDocument, sense: Sense) -> bool {
        match self.holds(clause, doc) {
            Some(held) => held == (sense == Sense::Inverted),
            None => true,
        }
    }

    /// The error of `clause`, which the caller knows contributes.
    fn error(&self, clause: &Clause<'_>, doc: &RawDocument, sense: Sense) -> Document {
        match clause {
            Clause::And(children) => {
                // A normal `$and` reports the clauses that failed; an inverted one (which
                // matched) reports them all.
                let entries = self.clause_entries(children, doc, sense, sense == Sense::Normal);
                let key = sense.pick("clausesNotSatisfied", "clausesSatisfied");
                doc! { "operatorName": "$and", key: entries }
            }
            Clause::Or(children) => {
                let entries = self.clause_entries(children, doc, sense, sense == Sense::Inverted);
                let key = sense.pick("clausesNotSatisfied", "clausesSatisfied");
                doc! { "operatorName": "$or", key: entries }
            }
            Clause::Nor(children) => {
                let inner = sense.flip();
                let entries = self.clause_entries(children, doc, inner, sense == Sense::Normal);
                let key = inner.pick("clausesNotSatisfied", "clausesSatisfied");
                doc! { "operatorName": "$nor", key: entries }
            }
            Clause::Not(child) => doc! { "operatorName": "$not", "details": self.error(child, doc, sense.flip()) },
            Clause::Leaf(leaf) => leaf_error(leaf, doc, sense),
            Clause::Expr(value) => self.expr_error(*value, doc, sense),
            Clause::Schema(schema) => match sense {
                Sense::Normal => schema_error(schema, doc),
                Sense::Inverted => doc! { "operatorName": "$jsonSchema", "reason": "schema matched" },
            },
        }
    }

    /// `[{index, details}]` for the children that contribute; `selective` when the parent
    /// looks at each child, else every child contributes.
    fn clause_entries(&self, children: &[Clause<'_>], doc: &RawDocument, sense: Sense, selective: bool) -> Vec<Bson> {
        children
            .iter()
            .enumerate()
            .filter(|(_, child)| !selective || self.contributes(child, doc, sense))
            .map(|(index, child)| {
                Bson::Document(doc! {
                    "index": i32::try_from(index).unwrap_or(i32::MAX),
                    "details": self.error(child, doc, sense),
                })
            })
            .collect()
    }

    /// `$expr`: the expression's result, or why it could not be evaluated.
    fn expr_error(&self, value: RawBsonRef<'_>, doc: &RawDocument, sense: Sense) -> Document {
        let mut out = doc! { "operatorName": "$expr", "specifiedAs": { "$expr": to_bson(value) } };
        let mut vars = Variables::new();
        vars.set_collation(self.collation.cloned());
        match Expression::parse(value).and_then(|expression| expression.evaluate(doc, &vars)) {
            Ok(result) => {
                out.insert("reason", sense.pick("expression did not match", "expression did match"));
                if let Some(result) = result {
                    out.insert("expressionResult", result);
                }
            }
            Err(error) => {
                out.insert("reason", "failed to evaluate aggregation expression");
                out.insert(
                    "details",
                    doc! { "code": error.code().code(), "codeName": error.code().name(), "errmsg": error.message() },
                );
            }
        }
        out
    }
}

const NUMBERS: &[ElementType] = &[ElementType::Int32, ElementType::Int64, ElementType::Double, ElementType::Decimal128];
const NUMBERS_AND_BINARY: &[ElementType] =
    &[ElementType::Int32, ElementType::Int64, ElementType::Double, ElementType::Decimal128, ElementType::Binary];

/// What an operator explains in each sense, the types it works on (none: any) and whether it
/// looks into an array at the end of its path.
struct LeafText {
    normal: &'static str,
    inverted: &'static str,
    expected: &'static [ElementType],
    traverse: bool,
}

fn leaf_text(kind: LeafKind) -> LeafText {
    let text = |normal, inverted, expected, traverse| LeafText { normal, inverted, expected, traverse };
    match kind {
        LeafKind::In => text("no matching value found in array", "matching value found in array", &[], true),
        LeafKind::Regex => text(
            "regular expression did not match",
            "regular expression did match",
            &[ElementType::String, ElementType::Symbol, ElementType::RegularExpression],
            true,
        ),
        LeafKind::Mod => text(
            "$mod did not evaluate to expected remainder",
            "$mod did evaluate to expected remainder",
            NUMBERS,
            true,
        ),
        LeafKind::Bits => {
            text("bitwise operator failed to match", "bitwise operator matched successfully", NUMBERS_AND_BINARY, true)
        }
        LeafKind::Size => text(
            "array length was not equal to given size",
            "array length was equal to given size",
            &[ElementType::Array],
            false,
        ),
        LeafKind::ElemMatch => text(
            "array did not satisfy the child predicate",
            "array did satisfy the child predicate",
            &[ElementType::Array],
            false,
        ),
        LeafKind::Type => text("type did not match", "type did match", &[], true),
        LeafKind::All => {
            text("array did not contain all specified values", "array did contain all specified values", &[], false)
        }
        LeafKind::Exists => text("path does not exist", "path does exist", &[], false),
        LeafKind::Never => {
            text("expression always evaluates to false", "expression always evaluates to true", &[], false)
        }
        LeafKind::Compare => text("comparison failed", "comparison succeeded", &[], true),
    }
}

/// The error of one operator, in mongod's field order: `operatorName`, `specifiedAs`,
/// `reason` (with the type mismatch, if any), then the considered values.
fn leaf_error(leaf: &Leaf, doc: &RawDocument, sense: Sense) -> Document {
    let sense = if leaf.negated { sense.flip() } else { sense };
    let text = leaf_text(leaf.kind);
    let reason = sense.pick(text.normal, text.inverted);
    let mut out = doc! { "operatorName": leaf.name.as_str(), "specifiedAs": leaf.specified.clone() };
    if matches!(leaf.kind, LeafKind::Exists | LeafKind::Never) {
        out.insert("reason", reason);
        return out;
    }
    let considered = considered(doc, &leaf.path, text.traverse);
    if considered.is_none() {
        out.insert("reason", "field was missing");
    }
    if leaf.kind == LeafKind::Type {
        add_reason(&mut out, reason);
        add_considered(&mut out, considered.as_ref());
        add_considered_types(&mut out, considered.as_ref());
        return out;
    }
    add_type_mismatch(&mut out, considered.as_ref(), text.expected);
    add_reason(&mut out, reason);
    add_considered(&mut out, considered.as_ref());
    out
}

/// The values an operator looked at.
struct Considered<'a> {
    values: Vec<RawBsonRef<'a>>,
    /// More values were reached than are listed.
    truncated: bool,
}

/// The values `path` reaches in `doc` as mongod's error generator enumerates them, `None`
/// when the path is missing: with `traverse`, the elements of an array at the end of the path
/// instead of the array (mongod's `kTraverseOmitArray`); without, the value itself
/// (`kNoTraversal`).
fn considered<'a>(doc: &'a RawDocument, path: &str, traverse: bool) -> Option<Considered<'a>> {
    let mut exists = false;
    let mut out = Considered { values: Vec::new(), truncated: false };
    let _ = path::walk(doc, &FieldPath::new(path), &mut |reached| {
        if let Reached::Value { value, array_element } = reached {
            exists = true;
            let keep = if traverse { array_element || !matches!(value, RawBsonRef::Array(_)) } else { !array_element };
            if keep {
                if out.values.len() == MAX_CONSIDERED_VALUES {
                    out.truncated = true;
                    return ControlFlow::Break(());
                }
                out.values.push(value);
            }
        }
        ControlFlow::Continue(())
    });
    exists.then_some(out)
}

/// A `reason` unless one was given already.
fn add_reason(out: &mut Document, reason: &str) {
    if !out.contains_key("reason") {
        out.insert("reason", reason);
    }
}

/// "type did not match" when no considered value has a type the operator works on.
fn add_type_mismatch(out: &mut Document, considered: Option<&Considered<'_>>, expected: &[ElementType]) {
    let Some(considered) = considered else { return };
    if out.contains_key("reason")
        || expected.is_empty()
        || considered.values.iter().any(|v| expected.contains(&v.element_type()))
    {
        return;
    }
    out.insert("reason", "type did not match");
    add_considered_types(out, Some(considered));
    let names: BTreeSet<&str> = expected.iter().map(|t| type_name(*t)).collect();
    add_names(out, "expectedType", "expectedTypes", names);
}

fn add_considered(out: &mut Document, considered: Option<&Considered<'_>>) {
    let Some(considered) = considered else { return };
    match considered.values.as_slice() {
        [only] => out.insert("consideredValue", to_bson(*only)),
        values => out.insert("consideredValues", values.iter().map(|v| to_bson(*v)).collect::<Vec<_>>()),
    };
    if considered.truncated {
        out.insert("consideredValuesTruncated", true);
    }
}

fn add_considered_types(out: &mut Document, considered: Option<&Considered<'_>>) {
    let Some(considered) = considered else { return };
    let names: BTreeSet<&str> = considered.values.iter().map(|v| type_name(v.element_type())).collect();
    add_names(out, "consideredType", "consideredTypes", names);
}

/// `one: name` for a single name, `many: [names]` (sorted) for several, nothing for none.
fn add_names(out: &mut Document, one: &str, many: &str, names: BTreeSet<&str>) {
    if names.len() > 1 {
        out.insert(many, names.into_iter().collect::<Vec<_>>());
    } else if let Some(name) = names.into_iter().next() {
        out.insert(one, name);
    }
}

// ---- $jsonSchema ----

/// The error of a `$jsonSchema` the document fails.
fn schema_error(schema: &RawDocument, doc: &RawDocument) -> Document {
    if schema_types(schema).is_some_and(|types| !types.includes_object) {
        // A top-level schema that allows no object matches no document at all.
        return doc! {
            "operatorName": "$jsonSchema",
            "specifiedAs": { "$jsonSchema": to_bson(RawBsonRef::Document(schema)) },
            "reason": "expression always evaluates to false",
        };
    }
    let mut out = doc! { "operatorName": "$jsonSchema" };
    add_annotations(&mut out, schema);
    out.insert("schemaRulesNotSatisfied", schema_rules(schema, RawBsonRef::Document(doc), true));
    out
}

/// What the error generator needs of a schema's `type` or `bsonType`.
struct SchemaTypes {
    /// `type` or `bsonType`.
    keyword: &'static str,
    includes_object: bool,
    /// The family of the single type named (mongod's `isSingleType`), if one is.
    single: Option<TypeFamily>,
}

/// The kinds of values the keywords restrict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TypeFamily {
    String,
    Number,
    Array,
    Object,
    Other,
}

fn family_of_name(name: &str) -> TypeFamily {
    match name {
        "string" => TypeFamily::String,
        "number" | "double" | "int" | "long" | "decimal" => TypeFamily::Number,
        "array" => TypeFamily::Array,
        "object" => TypeFamily::Object,
        _ => TypeFamily::Other,
    }
}

fn family_of(value: RawBsonRef<'_>) -> TypeFamily {
    match value {
        RawBsonRef::String(_) => TypeFamily::String,
        RawBsonRef::Array(_) => TypeFamily::Array,
        RawBsonRef::Document(_) => TypeFamily::Object,
        other if Number::from_raw(other).is_some() => TypeFamily::Number,
        _ => TypeFamily::Other,
    }
}

fn schema_types(schema: &RawDocument) -> Option<SchemaTypes> {
    let (keyword, value) = match (keyword(schema, "type"), keyword(schema, "bsonType")) {
        (Some(value), _) => ("type", value),
        (None, Some(value)) => ("bsonType", value),
        (None, None) => return None,
    };
    let names: Vec<&str> = match value {
        RawBsonRef::String(name) => vec![name],
        RawBsonRef::Array(list) => items(list)
            .filter_map(|name| match name {
                RawBsonRef::String(name) => Some(name),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let single = match names.as_slice() {
        [only] => Some(family_of_name(only)),
        _ => None,
    };
    Some(SchemaTypes { keyword, includes_object: names.contains(&"object"), single })
}

fn keyword<'a>(schema: &'a RawDocument, name: &str) -> Option<RawBsonRef<'a>> {
    schema.get(name).ok().flatten()
}

/// The subschemas of a keyword holding a list of them (`allOf`, ...).
fn subschemas<'a>(schema: &'a RawDocument, name: &str) -> Vec<&'a RawDocument> {
    match keyword(schema, name) {
        Some(RawBsonRef::Array(list)) => items(list)
            .filter_map(|sub| match sub {
                RawBsonRef::Document(sub) => Some(sub),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `title` and `description`, which mongod copies into the error naming a subschema.
fn add_annotations(out: &mut Document, schema: &RawDocument) {
    for name in ["title", "description"] {
        if let Some(RawBsonRef::String(text)) = keyword(schema, name) {
            out.insert(name, text);
        }
    }
}

/// Whether `value` satisfies `schema` (`top` for schemas applying to the whole document).
fn schema_holds(schema: &RawDocument, value: RawBsonRef<'_>, top: bool) -> bool {
    JsonSchema::parse_subschema(schema, top).is_ok_and(|compiled| compiled.matches_value(value))
}

/// Whether `value` satisfies the schema made of `keywords` alone.
fn keywords_hold(keywords: &[(&str, RawBsonRef<'_>)], value: RawBsonRef<'_>) -> bool {
    let mut schema = RawDocumentBuf::new();
    for (name, given) in keywords {
        match <&bson::raw::CStr>::try_from(*name) {
            Ok(name) => schema.append(name, *given),
            Err(_) => return true,
        }
    }
    schema_holds(&schema, value, false)
}

/// `{keyword: value, ...}`, a `specifiedAs`.
fn specified_keywords(keywords: &[(&str, RawBsonRef<'_>)]) -> Document {
    keywords.iter().map(|(name, value)| ((*name).to_owned(), to_bson(*value))).collect()
}

fn small(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The errors of the keywords of `schema` that `value` fails, in the order mongod's parser
/// translates them: string and number keywords, array keywords, object keywords, logical
/// keywords, then the type (which a top-level schema does not check per document).
fn schema_rules(schema: &RawDocument, value: RawBsonRef<'_>, top: bool) -> Vec<Bson> {
    let types = schema_types(schema);
    // A keyword applies to values of its type; one restricting another type than the
    // schema's single stated type has no effect at all.
    let applies = |family: TypeFamily| {
        family_of(value) == family && types.as_ref().and_then(|t| t.single).is_none_or(|single| single == family)
    };
    let mut out = Vec::new();
    if applies(TypeFamily::String) {
        scalar_rule(schema, value, &["pattern"], "regular expression did not match", &mut out);
        for name in ["maxLength", "minLength"] {
            scalar_rule(schema, value, &[name], "specified string length was not satisfied", &mut out);
        }
    }
    if applies(TypeFamily::Number) {
        let reason = "considered value is not a multiple of the specified value";
        scalar_rule(schema, value, &["multipleOf"], reason, &mut out);
        scalar_rule(schema, value, &["maximum", "exclusiveMaximum"], "comparison failed", &mut out);
        scalar_rule(schema, value, &["minimum", "exclusiveMinimum"], "comparison failed", &mut out);
    }
    if let RawBsonRef::Array(array) = value
        && applies(TypeFamily::Array)
    {
        array_rules(schema, array, &mut out);
    }
    if let RawBsonRef::Document(object) = value
        && applies(TypeFamily::Object)
    {
        object_rules(schema, object, top, &mut out);
    }
    logical_rules(schema, value, top, &mut out);
    if !top
        && let Some(types) = types
        && let Some(given) = keyword(schema, types.keyword)
        && !keywords_hold(&[(types.keyword, given)], value)
    {
        out.push(Bson::Document(doc! {
            "operatorName": types.keyword,
            "specifiedAs": specified_keywords(&[(types.keyword, given)]),
            "reason": "type did not match",
            "consideredValue": to_bson(value),
            "consideredType": type_name(value.element_type()),
        }));
    }
    out
}

/// A string or number keyword, with its companion (`exclusiveMaximum` for `maximum`).
fn scalar_rule(schema: &RawDocument, value: RawBsonRef<'_>, names: &[&str], reason: &str, out: &mut Vec<Bson>) {
    let Some(name) = names.first() else { return };
    if keyword(schema, name).is_none() {
        return;
    }
    let given: Vec<(&str, RawBsonRef<'_>)> = names.iter().filter_map(|n| keyword(schema, n).map(|v| (*n, v))).collect();
    if keywords_hold(&given, value) {
        return;
    }
    out.push(Bson::Document(doc! {
        "operatorName": *name,
        "specifiedAs": specified_keywords(&given),
        "reason": reason,
        "consideredValue": to_bson(value),
    }));
}

fn array_rules(schema: &RawDocument, array: &RawArray, out: &mut Vec<Bson>) {
    let value = RawBsonRef::Array(array);
    let elements: Vec<RawBsonRef<'_>> = items(array).collect();
    for name in ["minItems", "maxItems"] {
        if let Some(given) = keyword(schema, name)
            && !keywords_hold(&[(name, given)], value)
        {
            out.push(Bson::Document(doc! {
                "operatorName": name,
                "specifiedAs": specified_keywords(&[(name, given)]),
                "reason": "array did not match specified length",
                "consideredValue": to_bson(value),
                "numberOfItems": small(elements.len()),
            }));
        }
    }
    if let Some(given) = keyword(schema, "uniqueItems")
        && !keywords_hold(&[("uniqueItems", given)], value)
    {
        let mut entry = doc! {
            "operatorName": "uniqueItems",
            "specifiedAs": specified_keywords(&[("uniqueItems", given)]),
            "reason": "found a duplicate item",
            "consideredValue": to_bson(value),
        };
        let duplicate = elements
            .iter()
            .enumerate()
            .find(|(i, element)| elements.iter().take(*i).any(|seen| equal_unordered(*seen, **element)));
        if let Some((_, duplicate)) = duplicate {
            entry.insert("duplicatedValue", to_bson(*duplicate));
        }
        out.push(Bson::Document(entry));
    }
    // `additionalItems` counts only after an `items` array, from the end of its schemas.
    let mut additional_from = None;
    match keyword(schema, "items") {
        Some(RawBsonRef::Document(each)) => {
            if let Some((index, element)) =
                elements.iter().enumerate().find(|(_, element)| !schema_holds(each, **element, false))
            {
                let reason = "At least one item did not match the sub-schema";
                out.push(Bson::Document(item_error("items", reason, each, index, *element)));
            }
        }
        Some(RawBsonRef::Array(list)) => {
            let schemas: Vec<RawBsonRef<'_>> = items(list).collect();
            let mut failing = Vec::new();
            for (index, (element, sub)) in elements.iter().zip(&schemas).enumerate() {
                if let RawBsonRef::Document(sub) = sub
                    && !schema_holds(sub, *element, false)
                {
                    failing.push(Bson::Document(doc! {
                        "itemIndex": i64::try_from(index).unwrap_or(i64::MAX),
                        "details": schema_rules(sub, *element, false),
                    }));
                }
            }
            if !failing.is_empty() {
                out.push(Bson::Document(doc! { "operatorName": "items", "details": failing }));
            }
            additional_from = Some(schemas.len());
        }
        _ => {}
    }
    let Some(from) = additional_from else { return };
    match keyword(schema, "additionalItems") {
        Some(RawBsonRef::Boolean(false)) if elements.len() > from => {
            out.push(Bson::Document(doc! {
                "operatorName": "additionalItems",
                "specifiedAs": { "additionalItems": false },
                "reason": "found additional items",
                "additionalItems": elements.iter().skip(from).map(|e| to_bson(*e)).collect::<Vec<_>>(),
            }));
        }
        Some(RawBsonRef::Document(sub)) => {
            if let Some((index, element)) =
                elements.iter().enumerate().skip(from).find(|(_, element)| !schema_holds(sub, **element, false))
            {
                let reason = "At least one additional item did not match the sub-schema";
                out.push(Bson::Document(item_error("additionalItems", reason, sub, index, *element)));
            }
        }
        _ => {}
    }
}

/// The error of `items` or `additionalItems` with one schema: the first element failing it.
fn item_error(name: &str, reason: &str, schema: &RawDocument, index: usize, element: RawBsonRef<'_>) -> Document {
    let mut entry = doc! { "operatorName": name };
    add_annotations(&mut entry, schema);
    entry.insert("reason", reason);
    entry.insert("itemIndex", small(index));
    entry.insert("details", schema_rules(schema, element, false));
    entry
}

fn object_rules(schema: &RawDocument, object: &RawDocument, top: bool, out: &mut Vec<Bson>) {
    let value = RawBsonRef::Document(object);
    let present: Vec<(&str, RawBsonRef<'_>)> = fields(object).collect();
    let get = |name: &str| present.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let properties: Vec<(&str, RawBsonRef<'_>)> = match keyword(schema, "properties") {
        Some(RawBsonRef::Document(properties)) => fields(properties).collect(),
        _ => Vec::new(),
    };
    let mut failing = Vec::new();
    for (name, sub) in &properties {
        let (RawBsonRef::Document(sub), Some(field)) = (sub, get(name)) else { continue };
        if schema_holds(sub, field, false) {
            continue;
        }
        // A property whose failure explains nothing (mongod's empty details) is left out.
        let details = schema_rules(sub, field, false);
        if details.is_empty() {
            continue;
        }
        let mut entry = doc! { "propertyName": *name };
        add_annotations(&mut entry, sub);
        entry.insert("details", details);
        failing.push(Bson::Document(entry));
    }
    if !failing.is_empty() {
        out.push(Bson::Document(doc! { "operatorName": "properties", "propertiesNotSatisfied": failing }));
    }
    allowed_properties_rules(schema, &present, &properties, out);
    if let Some(RawBsonRef::Array(required)) = keyword(schema, "required") {
        let missing: Vec<Bson> = items(required)
            .filter_map(|name| match name {
                RawBsonRef::String(name) if get(name).is_none() => Some(Bson::String(name.to_owned())),
                _ => None,
            })
            .collect();
        if !missing.is_empty() {
            out.push(Bson::Document(doc! {
                "operatorName": "required",
                "specifiedAs": { "required": to_bson(RawBsonRef::Array(required)) },
                "missingProperties": missing,
            }));
        }
    }
    for name in ["minProperties", "maxProperties"] {
        if let Some(given) = keyword(schema, name)
            && !keywords_hold(&[(name, given)], value)
        {
            out.push(Bson::Document(doc! {
                "operatorName": name,
                "specifiedAs": specified_keywords(&[(name, given)]),
                "reason": "specified number of properties was not satisfied",
                "numberOfProperties": small(present.len()),
            }));
        }
    }
    if let Some(RawBsonRef::Document(dependencies)) = keyword(schema, "dependencies") {
        let mut failing = Vec::new();
        for (name, dependency) in fields(dependencies) {
            if get(name).is_none() {
                continue;
            }
            match dependency {
                RawBsonRef::Array(needed) => {
                    let missing: Vec<Bson> = items(needed)
                        .filter_map(|n| match n {
                            RawBsonRef::String(n) if get(n).is_none() => Some(Bson::String(n.to_owned())),
                            _ => None,
                        })
                        .collect();
                    if !missing.is_empty() {
                        failing
                            .push(Bson::Document(doc! { "conditionalProperty": name, "missingProperties": missing }));
                    }
                }
                RawBsonRef::Document(sub) if !schema_holds(sub, value, top) => {
                    failing.push(Bson::Document(doc! {
                        "conditionalProperty": name,
                        "details": schema_rules(sub, value, top),
                    }));
                }
                _ => {}
            }
        }
        if !failing.is_empty() {
            out.push(Bson::Document(doc! { "operatorName": "dependencies", "failingDependencies": failing }));
        }
    }
}

/// `additionalProperties` and `patternProperties`, which mongod checks as one expression and
/// reports as two errors, in that order.
fn allowed_properties_rules(
    schema: &RawDocument,
    present: &[(&str, RawBsonRef<'_>)],
    properties: &[(&str, RawBsonRef<'_>)],
    out: &mut Vec<Bson>,
) {
    let patterns: Vec<(&str, &RawDocument)> = match keyword(schema, "patternProperties") {
        Some(RawBsonRef::Document(patterns)) => fields(patterns)
            .filter_map(|(pattern, sub)| match sub {
                RawBsonRef::Document(sub) => Some((pattern, sub)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let additional_keyword = keyword(schema, "additionalProperties");
    if patterns.is_empty() && additional_keyword.is_none() {
        return;
    }
    // A pattern matches a name as the `pattern` keyword matches a string (searched, not
    // anchored), so that keyword answers.
    let name_matches = |pattern: &str, name: &str| {
        keywords_hold(&[("pattern", RawBsonRef::String(pattern))], RawBsonRef::String(name))
    };
    let additional: Vec<(&str, RawBsonRef<'_>)> = present
        .iter()
        .filter(|(name, _)| {
            !properties.iter().any(|(p, _)| p == name)
                && !patterns.iter().any(|(pattern, _)| name_matches(pattern, name))
        })
        .copied()
        .collect();
    match additional_keyword {
        Some(RawBsonRef::Boolean(false)) if !additional.is_empty() => {
            let names: Vec<Bson> = additional.iter().map(|(name, _)| Bson::String((*name).to_owned())).collect();
            out.push(Bson::Document(doc! {
                "operatorName": "additionalProperties",
                "specifiedAs": { "additionalProperties": false },
                "additionalProperties": names,
            }));
        }
        Some(RawBsonRef::Document(sub)) => {
            if let Some((name, field)) = additional.iter().find(|(_, field)| !schema_holds(sub, *field, false)) {
                let mut entry = doc! { "operatorName": "additionalProperties" };
                add_annotations(&mut entry, sub);
                entry.insert("reason", "at least one additional property did not match the subschema");
                entry.insert("failingProperty", *name);
                entry.insert("details", schema_rules(sub, *field, false));
                out.push(Bson::Document(entry));
            }
        }
        _ => {}
    }
    let mut failing = Vec::new();
    for (pattern, sub) in &patterns {
        let failing_field =
            present.iter().find(|(name, field)| name_matches(pattern, name) && !schema_holds(sub, *field, false));
        if let Some((name, field)) = failing_field {
            let mut entry = doc! { "propertyName": *name };
            add_annotations(&mut entry, sub);
            entry.insert("regexMatched", *pattern);
            entry.insert("details", schema_rules(sub, *field, false));
            failing.push(Bson::Document(entry));
        }
    }
    if !failing.is_empty() {
        out.push(Bson::Document(doc! { "operatorName": "patternProperties", "details": failing }));
    }
}

fn logical_rules(schema: &RawDocument, value: RawBsonRef<'_>, top: bool, out: &mut Vec<Bson>) {
    let entry = |index: usize, sub: &RawDocument| {
        let mut entry = doc! { "index": small(index) };
        add_annotations(&mut entry, sub);
        entry.insert("details", schema_rules(sub, value, top));
        Bson::Document(entry)
    };
    let failing: Vec<Bson> = subschemas(schema, "allOf")
        .into_iter()
        .enumerate()
        .filter(|(_, sub)| !schema_holds(sub, value, top))
        .map(|(i, sub)| entry(i, sub))
        .collect();
    if !failing.is_empty() {
        out.push(Bson::Document(doc! { "operatorName": "allOf", "schemasNotSatisfied": failing }));
    }
    let any_of = subschemas(schema, "anyOf");
    if !any_of.is_empty() && !any_of.iter().any(|sub| schema_holds(sub, value, top)) {
        let entries: Vec<Bson> = any_of.iter().enumerate().map(|(i, sub)| entry(i, sub)).collect();
        out.push(Bson::Document(doc! { "operatorName": "anyOf", "schemasNotSatisfied": entries }));
    }
    let one_of = subschemas(schema, "oneOf");
    if !one_of.is_empty() {
        let matching: Vec<i32> =
            one_of.iter().enumerate().filter(|(_, sub)| schema_holds(sub, value, top)).map(|(i, _)| small(i)).collect();
        if matching.is_empty() {
            let entries: Vec<Bson> = one_of.iter().enumerate().map(|(i, sub)| entry(i, sub)).collect();
            out.push(Bson::Document(doc! { "operatorName": "oneOf", "schemasNotSatisfied": entries }));
        } else if matching.len() > 1 {
            out.push(Bson::Document(doc! {
                "operatorName": "oneOf",
                "reason": "more than one subschema matched",
                "matchingSchemaIndexes": matching,
            }));
        }
    }
    if let Some(RawBsonRef::Document(sub)) = keyword(schema, "not")
        && schema_holds(sub, value, top)
    {
        out.push(Bson::Document(doc! { "operatorName": "not", "reason": "child expression matched" }));
    }
    if let Some(given) = keyword(schema, "enum")
        && !keywords_hold(&[("enum", given)], value)
    {
        out.push(Bson::Document(doc! {
            "operatorName": "enum",
            "specifiedAs": specified_keywords(&[("enum", given)]),
            "reason": "value was not found in enum",
            "consideredValue": to_bson(value),
        }));
    }
}

#[cfg(test)]
mod tests;
