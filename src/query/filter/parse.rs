//! Filter documents parsed into the filter tree, with mongod's checks and messages.

use bson::spec::ElementType;
use bson::{RawBson, RawBsonRef, RawDocument};

use super::argument::{double_to_i64, parse_non_negative_long, true_value};
use super::predicate::{ALL_TYPES, BitTest, CompareOp, InList, Predicate, TypeSet};
use super::regex::RegexPredicate;
use super::tree::{ElemMatch, Expr};
use crate::error::ErrorCode;
use crate::query::elements::items;
use crate::query::error::QueryError;
use crate::query::expr::{Expression, Variables};
use crate::query::geo::GeoPredicate;
use crate::query::json_schema::JsonSchema;
use crate::query::number::Number;
use crate::query::order::compare_values;
use crate::query::path::{self, FieldPath};
use crate::query::{limits, render};

/// mongod's message for `$where` when it has no JavaScript engine.
const NO_SCRIPT_ENGINE: &str = "no globalScriptEngine in $where parsing";

pub(super) fn parse_document(doc: &RawDocument) -> Result<Expr, QueryError> {
    let mut children = Vec::new();
    for item in doc.iter() {
        let (key, value) = item.map_err(QueryError::invalid_bson)?;
        let key = key.as_str();
        if key.starts_with('$') {
            if let Some(expr) = parse_top_level(key, value)? {
                children.push(expr);
            }
        } else {
            parse_field(key, value, &mut children)?;
        }
    }
    Ok(if children.len() == 1 { children.remove(0) } else { Expr::And(children) })
}

/// A `$`-prefixed key at the top of a filter (or of an `$and`/`$or`/`$nor` entry).
fn parse_top_level(key: &str, value: RawBsonRef<'_>) -> Result<Option<Expr>, QueryError> {
    match key {
        "$and" => Ok(Some(Expr::And(parse_list(key, value)?))),
        "$or" => Ok(Some(Expr::Or(parse_list(key, value)?))),
        "$nor" => Ok(Some(Expr::Nor(parse_list(key, value)?))),
        "$comment" => Ok(None),
        // DBRef fields are matched as ordinary fields named "$ref", "$id" and "$db".
        "$ref" | "$id" | "$db" => Ok(Some(equality(key, value)?)),
        // Monarch has no JavaScript engine: mongod started with `--noscripting` answers this.
        "$where" => Err(QueryError::new(ErrorCode::Location6108304, NO_SCRIPT_ENGINE)),
        "$expr" => Ok(Some(Expr::Aggregate(Box::new((Expression::parse(value)?, Variables::new()))))),
        "$jsonSchema" => Ok(Some(Expr::Schema(Box::new(JsonSchema::parse(value)?)))),
        "$alwaysTrue" | "$alwaysFalse" => {
            // mongod's `parseAlwaysBoolean`: the argument must be the integer 1.
            let one = Number::from_raw(value).and_then(Number::to_i32_exact) == Some(1);
            if !one {
                return Err(QueryError::failed_to_parse(format!("{key} must be an integer value of 1")));
            }
            Ok(Some(if key == "$alwaysTrue" { Expr::And(Vec::new()) } else { Expr::Nothing }))
        }
        "$sampleRate" => parse_sample_rate(value).map(Some),
        "$text" => {
            crate::query::text::TextSearch::parse(value)?;
            Ok(Some(Expr::Text))
        }
        _ => Err(QueryError::bad_value(format!(
            "unknown top level operator: {key}. If you have a field name that starts with a '$' symbol, consider \
             using $getField or $setField."
        ))),
    }
}

/// `$sampleRate: p`: each document matches with probability `p`, as mongod's rewrite to
/// `{$expr: {$lt: [{$rand: {}}, p]}}` (0 matches nothing, 1 everything).
fn parse_sample_rate(value: RawBsonRef<'_>) -> Result<Expr, QueryError> {
    let Some(p) = Number::from_raw(value).map(Number::to_f64) else {
        return Err(QueryError::bad_value("argument to $sampleRate must be a numeric type"));
    };
    if !(0.0..=1.0).contains(&p) {
        return Err(QueryError::bad_value("numeric argument to $sampleRate must be in [0, 1]"));
    }
    if p == 0.0 {
        return Ok(Expr::Nothing);
    }
    if p == 1.0 {
        return Ok(Expr::And(Vec::new()));
    }
    let draw = bson::rawdoc! { "$lt": [{ "$rand": {} }, p] };
    let expression = Expression::parse(RawBsonRef::Document(&draw))?;
    Ok(Expr::Aggregate(Box::new((expression, Variables::new()))))
}

fn parse_list(key: &str, value: RawBsonRef<'_>) -> Result<Vec<Expr>, QueryError> {
    let RawBsonRef::Array(entries) = value else {
        return Err(QueryError::bad_value(format!("{key} must be an array")));
    };
    let mut children = Vec::new();
    for entry in entries {
        match entry.map_err(QueryError::invalid_bson)? {
            RawBsonRef::Document(doc) => children.push(parse_document(doc)?),
            _ => return Err(QueryError::bad_value("$or/$and/$nor entries need to be full objects")),
        }
    }
    if children.is_empty() {
        return Err(QueryError::bad_value("$and/$or/$nor must be a nonempty array"));
    }
    Ok(children)
}

/// `{path: value}`: operators when `value` is an operator document, equality otherwise.
fn parse_field(path: &str, value: RawBsonRef<'_>, out: &mut Vec<Expr>) -> Result<(), QueryError> {
    // mongod checks the length first, so no walk ever follows a path deeper than a stored
    // document can nest.
    limits::check_match_path_parts(path.split('.').count())?;
    match value {
        RawBsonRef::Document(ops) if is_operator_document(ops) => parse_operators(path, ops, out),
        RawBsonRef::RegularExpression(re) => {
            out.push(leaf(path, Predicate::Regex(Box::new(RegexPredicate::from_value(re)?))));
            Ok(())
        }
        _ => {
            out.push(equality(path, value)?);
            Ok(())
        }
    }
}

/// mongod's `isExpressionDocument`: a non-empty document whose first field starts with `$`,
/// unless it is a DBRef (`$ref` and `$id`), which is compared as a value.
pub(crate) fn is_operator_document(doc: &RawDocument) -> bool {
    let first_is_operator = path::fields(doc).next().is_some_and(|(key, _)| key.starts_with('$'));
    first_is_operator && !(has_field(doc, "$ref") && has_field(doc, "$id"))
}

fn has_field(doc: &RawDocument, key: &str) -> bool {
    matches!(doc.get(key), Ok(Some(_)))
}

/// The operators of one operator document, each a child of the implicit conjunction; `$regex`
/// and `$options` together make one.
fn parse_operators(path: &str, ops: &RawDocument, out: &mut Vec<Expr>) -> Result<(), QueryError> {
    if has_field(ops, "$near") || has_field(ops, "$nearSphere") {
        // `$maxDistance` and `$minDistance` belong to it: the whole document is one search.
        crate::query::geo::Near::parse(ops)?;
        out.push(Expr::Near);
        return Ok(());
    }
    for item in ops.iter() {
        let (op, arg) = item.map_err(QueryError::invalid_bson)?;
        match op.as_str() {
            "$regex" => out.push(leaf(path, parse_regex_document(ops)?)),
            "$options" => {
                // Handled with its `$regex`, which may come before or after it.
                if !has_field(ops, "$regex") {
                    return Err(QueryError::bad_value("$options needs a $regex"));
                }
            }
            op => out.push(parse_operator(path, op, arg)?),
        }
    }
    Ok(())
}

fn leaf(path: &str, pred: Predicate) -> Expr {
    Expr::Path { path: FieldPath::new(path), pred }
}

/// mongod's `parseRegexDocument`: `$regex` (a string or a regex without conflicting options)
/// and `$options`.
fn parse_regex_document(ops: &RawDocument) -> Result<Predicate, QueryError> {
    let mut pattern = "";
    let mut options = "";
    for (key, value) in path::fields(ops) {
        match (key, value) {
            ("$regex", RawBsonRef::String(s)) => pattern = s,
            ("$regex", RawBsonRef::RegularExpression(re)) => {
                pattern = re.pattern.as_str();
                if !re.options.as_str().is_empty() {
                    if !options.is_empty() {
                        return Err(QueryError::new(
                            ErrorCode::Location51074,
                            "options set in both $regex and $options",
                        ));
                    }
                    options = re.options.as_str();
                }
            }
            ("$regex", _) => return Err(QueryError::bad_value("$regex has to be a string")),
            ("$options", RawBsonRef::String(s)) => {
                if !options.is_empty() {
                    return Err(QueryError::new(ErrorCode::Location51075, "options set in both $regex and $options"));
                }
                options = s;
            }
            ("$options", _) => return Err(QueryError::bad_value("$options has to be a string")),
            _ => {}
        }
    }
    Ok(Predicate::Regex(Box::new(RegexPredicate::new(pattern, options)?)))
}

fn parse_operator(path: &str, op: &str, arg: RawBsonRef<'_>) -> Result<Expr, QueryError> {
    let leaf = |pred| leaf(path, pred);
    let compare = |op| compare_predicate(path, op, arg).map(leaf);
    match op {
        "$eq" => compare(CompareOp::Eq),
        "$lt" => compare(CompareOp::Lt),
        "$lte" => compare(CompareOp::Lte),
        "$gt" => compare(CompareOp::Gt),
        "$gte" => compare(CompareOp::Gte),
        "$ne" => {
            if matches!(arg, RawBsonRef::RegularExpression(_)) {
                return Err(QueryError::bad_value("Can't have regex as arg to $ne."));
            }
            Ok(Expr::Not(Box::new(compare(CompareOp::Eq)?)))
        }
        "$in" => Ok(leaf(Predicate::In(in_list("$in", arg)?))),
        "$nin" => Ok(Expr::Not(Box::new(leaf(Predicate::In(in_list("$nin", arg)?))))),
        "$exists" => {
            let exists = leaf(Predicate::Exists);
            Ok(if true_value(arg) { exists } else { Expr::Not(Box::new(exists)) })
        }
        "$where" => Err(QueryError::bad_value("$where cannot be applied to a field")),
        "$not" => parse_not(path, arg),
        "$type" => Ok(leaf(Predicate::Type(parse_type(path, arg)?))),
        "$mod" => parse_mod(arg).map(leaf),
        "$size" => parse_size(arg).map(leaf),
        "$all" => parse_all(path, arg),
        "$elemMatch" => parse_elem_match(path, arg),
        "$bitsAllSet" => parse_bits(op, BitTest::AllSet, arg).map(leaf),
        "$bitsAnySet" => parse_bits(op, BitTest::AnySet, arg).map(leaf),
        "$bitsAllClear" => parse_bits(op, BitTest::AllClear, arg).map(leaf),
        "$bitsAnyClear" => parse_bits(op, BitTest::AnyClear, arg).map(leaf),
        "$geoWithin" | "$within" => Ok(leaf(Predicate::Geo(Box::new(GeoPredicate::parse_within(arg)?)))),
        "$geoIntersects" => Ok(leaf(Predicate::Geo(Box::new(GeoPredicate::parse_intersects(arg)?)))),
        "$maxDistance" | "$minDistance" => Err(QueryError::bad_value(format!("{op} needs $near or $nearSphere"))),
        "$text" | "$expr" => Err(QueryError::not_implemented(op)),
        _ => Err(QueryError::bad_value(format!("unknown operator: {op}"))),
    }
}

fn equality(path: &str, value: RawBsonRef<'_>) -> Result<Expr, QueryError> {
    Ok(Expr::Path { path: FieldPath::new(path), pred: compare_predicate(path, CompareOp::Eq, value)? })
}

fn compare_predicate(path: &str, op: CompareOp, rhs: RawBsonRef<'_>) -> Result<Predicate, QueryError> {
    if op != CompareOp::Eq && matches!(rhs, RawBsonRef::RegularExpression(_)) {
        return Err(QueryError::bad_value(format!("Can't have RegEx as arg to predicate over field '{path}'.")));
    }
    if rhs == RawBsonRef::Undefined {
        return Err(QueryError::bad_value("cannot compare to undefined"));
    }
    Ok(Predicate::Compare { op, rhs: RawBson::from(rhs), collation: None })
}

fn in_list(op: &str, arg: RawBsonRef<'_>) -> Result<InList, QueryError> {
    let RawBsonRef::Array(entries) = arg else {
        return Err(QueryError::bad_value(format!("{op} needs an array")));
    };
    let mut list = InList { values: Vec::new(), has_null: false, regexes: Vec::new(), collation: None };
    for entry in entries {
        match entry.map_err(QueryError::invalid_bson)? {
            RawBsonRef::Document(doc) if is_operator_document(doc) => {
                return Err(QueryError::bad_value("cannot nest $ under $in"));
            }
            RawBsonRef::RegularExpression(re) => {
                list.regexes.push(RegexPredicate::from_value(re)?);
            }
            RawBsonRef::Undefined => {
                return Err(QueryError::bad_value("InMatchExpression equality cannot be undefined"));
            }
            value => {
                list.has_null |= value == RawBsonRef::Null;
                list.values.push(RawBson::from(value));
            }
        }
    }
    list.values.sort_by(|a, b| compare_values(a.as_raw_bson_ref(), b.as_raw_bson_ref()));
    Ok(list)
}

/// `$not`: a regex, or an operator document whose conjunction is negated over the whole path.
fn parse_not(path: &str, arg: RawBsonRef<'_>) -> Result<Expr, QueryError> {
    let inner = match arg {
        RawBsonRef::RegularExpression(re) => leaf(path, Predicate::Regex(Box::new(RegexPredicate::from_value(re)?))),
        RawBsonRef::Document(ops) => {
            if ops.is_empty() {
                return Err(QueryError::bad_value("$not cannot be empty"));
            }
            let mut children = Vec::new();
            parse_operators(path, ops, &mut children)?;
            if children.len() == 1 { children.remove(0) } else { Expr::And(children) }
        }
        _ => return Err(QueryError::bad_value("$not needs a regex or a document")),
    };
    Ok(Expr::Not(Box::new(inner)))
}

/// `$type`: an alias, a numeric code, or an array of them (mongod's `MatcherTypeSet::parse`).
fn parse_type(path: &str, arg: RawBsonRef<'_>) -> Result<TypeSet, QueryError> {
    let mut set = TypeSet::default();
    match arg {
        RawBsonRef::Array(entries) => {
            for entry in items(entries) {
                add_type(&mut set, entry)?;
            }
        }
        single => add_type(&mut set, single)?,
    }
    if !set.all_numbers && set.types.is_empty() {
        return Err(QueryError::failed_to_parse(format!("{path} must match at least one type")));
    }
    Ok(set)
}

fn add_type(set: &mut TypeSet, spec: RawBsonRef<'_>) -> Result<(), QueryError> {
    if let RawBsonRef::String(alias) = spec {
        if alias == "number" {
            set.all_numbers = true;
            return Ok(());
        }
        let found = ALL_TYPES.iter().find(|t| render::type_name(**t) == alias);
        let Some(found) = found else {
            return Err(QueryError::bad_value(format!("Unknown type name alias: {alias}")));
        };
        set.types.push(*found);
        return Ok(());
    }
    let Some(number) = Number::from_raw(spec) else {
        return Err(QueryError::new(ErrorCode::TypeMismatch, "type must be represented as a number or a string"));
    };
    let shown = match number {
        Number::Int32(i) => i.to_string(),
        Number::Int64(i) => i.to_string(),
        Number::Double(d) => d.to_string(),
        Number::Decimal(d) => d.to_string(),
    };
    let invalid = || QueryError::bad_value(format!("Invalid numerical type code: {shown}"));
    let code = match number {
        Number::Int32(i) => i64::from(i),
        Number::Int64(i) => i,
        Number::Double(d) => double_to_i64(d).ok_or_else(invalid)?,
        Number::Decimal(d) => d.to_string().parse::<f64>().ok().and_then(double_to_i64).ok_or_else(invalid)?,
    };
    // MinKey is -1 in mongod's numbering and 0xFF on the wire.
    let tag = match code {
        -1 => 0xFF,
        0x01..=0x13 | 0x7F => u8::try_from(code).map_err(|_| invalid())?,
        _ => return Err(invalid()),
    };
    set.types.push(ElementType::from(tag).ok_or_else(invalid)?);
    Ok(())
}

/// `$mod: [divisor, remainder]` with mongod 7.0's checks; doubles are truncated.
fn parse_mod(arg: RawBsonRef<'_>) -> Result<Predicate, QueryError> {
    let RawBsonRef::Array(entries) = arg else {
        return Err(QueryError::bad_value("malformed mod, needs to be an array"));
    };
    let mut it = items(entries);
    let divisor = it.next().ok_or_else(|| QueryError::bad_value("malformed mod, not enough elements"))?;
    let divisor =
        Number::from_raw(divisor).ok_or_else(|| QueryError::bad_value("malformed mod, divisor not a number"))?;
    let remainder = it.next().ok_or_else(|| QueryError::bad_value("malformed mod, not enough elements"))?;
    let remainder =
        Number::from_raw(remainder).ok_or_else(|| QueryError::bad_value("malformed mod, remainder not a number"))?;
    if it.next().is_some() {
        return Err(QueryError::bad_value("malformed mod, too many elements"));
    }
    let divisor = coerce_to_i64(divisor, "divisor")?;
    let remainder = coerce_to_i64(remainder, "remainder")?;
    if divisor == 0 {
        return Err(QueryError::bad_value("divisor cannot be 0"));
    }
    Ok(Predicate::Mod { divisor, remainder })
}

/// mongod's `BSONElement::tryCoerce` to a long, with `withContext` on failure.
fn coerce_to_i64(n: Number, what: &str) -> Result<i64, QueryError> {
    let fail =
        |why: &str| QueryError::bad_value(format!("malformed mod, {what} value is invalid :: caused by :: {why}"));
    let d = match n {
        Number::Int32(i) => return Ok(i64::from(i)),
        Number::Int64(i) => return Ok(i),
        Number::Double(d) => d,
        Number::Decimal(d) => d.to_string().parse::<f64>().unwrap_or(f64::NAN),
    };
    if !d.is_finite() {
        return Err(fail("Unable to coerce NaN/Inf to integral type"));
    }
    double_to_i64(d.trunc()).ok_or_else(|| fail("Out of bounds coercing to integral value"))
}

/// `$size`: a whole, non-negative number that fits an int32.
fn parse_size(arg: RawBsonRef<'_>) -> Result<Predicate, QueryError> {
    let size = match arg {
        RawBsonRef::Int32(i) => i64::from(i),
        RawBsonRef::Int64(i) => {
            if i32::try_from(i).is_err() {
                return Err(QueryError::bad_value("$size must be representable as a 32-bit integer"));
            }
            i
        }
        RawBsonRef::Double(d) => match double_to_i64(d).filter(|i| i32::try_from(*i).is_ok()) {
            Some(i) => i,
            None => return Err(QueryError::bad_value("$size must be a whole number")),
        },
        _ => return Err(QueryError::bad_value("$size needs a number")),
    };
    if size < 0 {
        return Err(QueryError::bad_value("$size may not be negative"));
    }
    Ok(Predicate::Size(size))
}

/// `$all`: a conjunction of equalities (regexes for regex entries), or of `$elemMatch`es when
/// the first entry is one; an empty list matches nothing.
fn parse_all(path: &str, arg: RawBsonRef<'_>) -> Result<Expr, QueryError> {
    let RawBsonRef::Array(entries) = arg else {
        return Err(QueryError::bad_value("$all needs an array"));
    };
    let first_key = |v: RawBsonRef<'_>| match v {
        RawBsonRef::Document(d) => path::fields(d).next().map(|(k, _)| k.to_owned()),
        _ => None,
    };
    let mut children = Vec::new();
    if items(entries).next().and_then(first_key).as_deref() == Some("$elemMatch") {
        for entry in items(entries) {
            let RawBsonRef::Document(d) = entry else {
                return Err(QueryError::bad_value("$all/$elemMatch has to be consistent"));
            };
            match path::fields(d).next() {
                Some(("$elemMatch", inner)) => children.push(parse_elem_match(path, inner)?),
                _ => return Err(QueryError::bad_value("$all/$elemMatch has to be consistent")),
            }
        }
    } else {
        for entry in items(entries) {
            match entry {
                RawBsonRef::RegularExpression(re) => {
                    children.push(leaf(path, Predicate::Regex(Box::new(RegexPredicate::from_value(re)?))))
                }
                RawBsonRef::Document(_) if first_key(entry).is_some_and(|k| is_path_operator(&k)) => {
                    return Err(QueryError::bad_value("no $ expressions in $all"));
                }
                value => children.push(equality(path, value)?),
            }
        }
    }
    Ok(if children.is_empty() { Expr::Nothing } else { Expr::And(children) })
}

/// mongod's `parsePathAcceptingKeyword`: the operators that apply to a path.
fn is_path_operator(key: &str) -> bool {
    matches!(
        key,
        "$eq"
            | "$ne"
            | "$gt"
            | "$gte"
            | "$lt"
            | "$lte"
            | "$in"
            | "$nin"
            | "$exists"
            | "$regex"
            | "$options"
            | "$not"
            | "$type"
            | "$mod"
            | "$size"
            | "$all"
            | "$elemMatch"
            | "$bitsAllSet"
            | "$bitsAnySet"
            | "$bitsAllClear"
            | "$bitsAnyClear"
            | "$geoWithin"
            | "$geoIntersects"
            | "$near"
            | "$nearSphere"
            | "$within"
            | "$geoNear"
    )
}

/// `$elemMatch`: the value form when the argument is an operator document whose first key is
/// not a top-level operator (`$and`, `$or`, ...), the object form otherwise.
fn parse_elem_match(path: &str, arg: RawBsonRef<'_>) -> Result<Expr, QueryError> {
    let RawBsonRef::Document(spec) = arg else {
        return Err(QueryError::bad_value("$elemMatch needs an Object"));
    };
    let first = path::fields(spec).next().map(|(k, _)| k);
    let top_level = matches!(
        first,
        Some(
            "$and"
                | "$or"
                | "$nor"
                | "$expr"
                | "$where"
                | "$text"
                | "$comment"
                | "$jsonSchema"
                | "$alwaysTrue"
                | "$alwaysFalse"
                | "$sampleRate"
        )
    );
    // Here even part of a DBRef (`$ref`, `$id` or `$db` alone) makes a document to match
    // (mongod's `isDBRefDocument` with incomplete DBRefs allowed).
    let dbref = ["$ref", "$id", "$db"].iter().any(|k| has_field(spec, k));
    let is_value_form = first.is_some_and(|k| k.starts_with('$')) && !dbref && !top_level;
    let elem = if is_value_form {
        let mut children = Vec::new();
        parse_operators("", spec, &mut children)?;
        ElemMatch::Value(children)
    } else {
        // mongod refuses `$where` here only after parsing it, which without JavaScript fails
        // first; so that parse error is the answer.
        ElemMatch::Object(Box::new(parse_document(spec)?))
    };
    Ok(Expr::ElemMatch { path: FieldPath::new(path), elem })
}

/// `$bitsAllSet` and friends: a non-negative int64 mask, an array of bit positions, or BinData.
fn parse_bits(op: &str, test: BitTest, arg: RawBsonRef<'_>) -> Result<Predicate, QueryError> {
    let positions = match arg {
        RawBsonRef::Array(entries) => {
            let mut positions = Vec::new();
            for (index, entry) in items(entries).enumerate() {
                positions.push(parse_bit_position(&index.to_string(), entry)?);
            }
            positions
        }
        RawBsonRef::Binary(bin) => (0u32..)
            .zip(bin.bytes.iter().flat_map(|byte| (0..8).map(move |bit| byte >> bit & 1 == 1)))
            .filter_map(|(position, set)| set.then_some(position))
            .collect(),
        value if Number::from_raw(value).is_some() => {
            let mask = parse_non_negative_long(op, value)?;
            (0u32..64).filter(|bit| mask >> bit & 1 == 1).collect()
        }
        other => {
            return Err(QueryError::bad_value(format!(
                "{op} takes an Array, a number, or a BinData but received: {}",
                render::element(op, other)
            )));
        }
    };
    Ok(Predicate::Bits { test, positions })
}

/// mongod's `parseBitPositionsArray` for one entry.
fn parse_bit_position(key: &str, entry: RawBsonRef<'_>) -> Result<u32, QueryError> {
    let shown = || render::element(key, entry);
    let value = match entry {
        RawBsonRef::Int32(i) => i64::from(i),
        RawBsonRef::Int64(i) => {
            if i32::try_from(i).is_err() {
                return Err(QueryError::bad_value(format!(
                    "bit positions cannot be represented as a 32-bit signed integer: {}",
                    shown()
                )));
            }
            i
        }
        RawBsonRef::Double(d) => {
            if d.is_nan() {
                return Err(QueryError::bad_value(format!("bit positions cannot take a NaN: {}", shown())));
            }
            if d > f64::from(i32::MAX) || d < f64::from(i32::MIN) {
                return Err(QueryError::bad_value(format!(
                    "bit positions cannot be represented as a 32-bit signed integer: {}",
                    shown()
                )));
            }
            match double_to_i64(d) {
                Some(i) => i,
                None => {
                    return Err(QueryError::bad_value(format!(
                        "bit positions must be an integer but got: {}",
                        shown()
                    )));
                }
            }
        }
        RawBsonRef::Decimal128(d) => match d.to_string().parse::<f64>().ok().and_then(double_to_i64) {
            Some(i) => i,
            None => {
                return Err(QueryError::bad_value(format!("bit positions must be an integer but got: {}", shown())));
            }
        },
        _ => return Err(QueryError::bad_value(format!("bit positions must be an integer but got: {}", shown()))),
    };
    u32::try_from(value).map_err(|_| QueryError::bad_value(format!("bit positions must be >= 0 but got: {}", shown())))
}
