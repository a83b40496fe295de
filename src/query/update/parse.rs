//! Operator update documents parsed into the update tree, with mongod's checks and messages
//! on operators, paths and modifier arguments.

use std::collections::{BTreeMap, BTreeSet};

use bson::{Bson, RawArray, RawBson, RawBsonRef, RawDocument};

use super::component::{ArrayOperator, array_operator};
use super::modifier::{Modifier, PullCondition, PushSort, PushSpec, to_bson, wrap};
use super::tree::{Rename, Tree, insert};
use crate::error::ErrorCode;
use crate::query::elements::{fields, items};
use crate::query::error::QueryError;
use crate::query::filter::{Filter, is_operator_document};
use crate::query::number::{BitOp, Number};
use crate::query::order::compare_values;
use crate::query::render::{self, type_name};

#[derive(Debug, Clone, Copy)]
enum Operator {
    Set,
    SetOnInsert,
    Unset,
    Inc,
    Mul,
    Min,
    Max,
    CurrentDate,
    Push,
    AddToSet,
    Pop,
    Pull,
    PullAll,
    Bit,
    Rename,
}

/// The operators of an update document as a tree, with the `$rename`s apart; records in
/// `used` the array filter identifiers (and `"$"`) its paths use.
pub(super) fn parse_operators(
    spec: &RawDocument,
    filters: &BTreeMap<String, Filter>,
    used: &mut BTreeSet<String>,
) -> Result<(Tree, Vec<Rename>), QueryError> {
    let mut tree = Tree::new();
    let mut renames = Vec::new();
    for item in spec.iter() {
        let (op, arg) = item.map_err(QueryError::invalid_bson)?;
        let op = op.as_str();
        let operator = parse_operator_name(op)?;
        let RawBsonRef::Document(args) = arg else {
            return Err(QueryError::failed_to_parse(format!(
                "Modifiers operate on fields but we found type {} instead. For example: {{$mod: {{<field>: ...}}}} not {{{}}}",
                type_name(arg.element_type()),
                render::element(op, arg)
            )));
        };
        for item in args.iter() {
            let (path, value) = item.map_err(QueryError::invalid_bson)?;
            let path = path.as_str();
            let parts = check_update_path(path, filters, used)?;
            if let Operator::Rename = operator {
                let to = parse_rename(path, value)?;
                let to_parts = check_update_path(&to, filters, used)?;
                insert(&mut tree, &parts, path, Modifier::Renamed)?;
                insert(&mut tree, &to_parts, &to, Modifier::Renamed)?;
                renames.push(Rename {
                    from: parts.iter().map(|p| (*p).to_owned()).collect(),
                    to: to_parts.iter().map(|p| (*p).to_owned()).collect(),
                });
                continue;
            }
            let modifier = parse_modifier(operator, path, value)?;
            insert(&mut tree, &parts, path, modifier)?;
        }
    }
    Ok((tree, renames))
}

fn parse_operator_name(op: &str) -> Result<Operator, QueryError> {
    match op {
        "$set" => Ok(Operator::Set),
        "$setOnInsert" => Ok(Operator::SetOnInsert),
        "$unset" => Ok(Operator::Unset),
        "$inc" => Ok(Operator::Inc),
        "$mul" => Ok(Operator::Mul),
        "$min" => Ok(Operator::Min),
        "$max" => Ok(Operator::Max),
        "$currentDate" => Ok(Operator::CurrentDate),
        "$push" => Ok(Operator::Push),
        "$addToSet" => Ok(Operator::AddToSet),
        "$pop" => Ok(Operator::Pop),
        "$pull" => Ok(Operator::Pull),
        "$pullAll" => Ok(Operator::PullAll),
        "$bit" => Ok(Operator::Bit),
        "$rename" => Ok(Operator::Rename),
        _ => Err(QueryError::failed_to_parse(format!(
            "Unknown modifier: {op}. Expected a valid update modifier or pipeline-style update specified as an array"
        ))),
    }
}

/// Splits an update path, refusing empty components, more than one positional `$`, a
/// positional `$`, `$[]` or `$[<identifier>]` first, and identifiers naming none of
/// `filters`. Other `$`-prefixed components are field names (mongod 5.0+), checked when the
/// update is applied. Records the identifiers used, and `"$"` when the path has a positional
/// `$`.
fn check_update_path<'p>(
    path: &'p str,
    filters: &BTreeMap<String, Filter>,
    used: &mut BTreeSet<String>,
) -> Result<Vec<&'p str>, QueryError> {
    if path.is_empty() {
        return Err(QueryError::new(ErrorCode::EmptyFieldName, "An empty update path is not valid."));
    }
    let parts: Vec<&str> = path.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(QueryError::new(
            ErrorCode::EmptyFieldName,
            format!("The update path '{path}' contains an empty field name, which is not allowed."),
        ));
    }
    if parts.iter().filter(|part| **part == "$").count() > 1 {
        return Err(QueryError::bad_value(format!("Too many positional (i.e. '$') elements found in path '{path}'")));
    }
    if let Some((first, rest)) = parts.split_first() {
        match array_operator(first) {
            Some(ArrayOperator::First) => {
                return Err(QueryError::bad_value(format!(
                    "Cannot have positional (i.e. '$') element in the first position in path '{path}'"
                )));
            }
            Some(ArrayOperator::All | ArrayOperator::Filtered(_)) => {
                return Err(QueryError::bad_value(format!(
                    "Cannot have array filter identifier (i.e. '$[<id>]') element in the first position in path \
                     '{path}'"
                )));
            }
            None => {}
        }
        for part in rest {
            match array_operator(part) {
                Some(ArrayOperator::First) => {
                    used.insert("$".to_owned());
                }
                Some(ArrayOperator::All) => {}
                Some(ArrayOperator::Filtered(id)) => {
                    if !filters.contains_key(id) {
                        return Err(QueryError::bad_value(format!(
                            "No array filter found for identifier '{id}' in path '{path}'"
                        )));
                    }
                    used.insert(id.to_owned());
                }
                None => {}
            }
        }
    }
    Ok(parts)
}

/// Parses `arrayFilters` into filters keyed by their one top-level identifier.
pub(super) fn parse_array_filters(list: &RawArray) -> Result<BTreeMap<String, Filter>, QueryError> {
    let mut filters = BTreeMap::new();
    for item in items(list) {
        let RawBsonRef::Document(spec) = item else {
            return Err(QueryError::new(
                ErrorCode::TypeMismatch,
                format!("Each array filter must be an object, found {}", type_name(item.element_type())),
            ));
        };
        let filter = Filter::parse(spec)?;
        let mut names = BTreeSet::new();
        top_level_names(spec, &mut names);
        let mut names = names.into_iter();
        let Some(id) = names.next() else {
            return Err(QueryError::failed_to_parse(
                "Cannot use an expression without a top-level field name in arrayFilters",
            ));
        };
        if let Some(other) = names.next() {
            return Err(QueryError::failed_to_parse(format!(
                "Error parsing array filter :: caused by :: Expected a single top-level field name, found '{id}' and '{other}'"
            )));
        }
        let mut chars = id.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase()) && chars.all(|c| c.is_ascii_alphanumeric());
        if !valid {
            return Err(QueryError::bad_value(format!(
                "Error parsing array filter :: caused by :: The top-level field name must be an alphanumeric string \
                 beginning with a lowercase letter, found '{id}'"
            )));
        }
        if filters.contains_key(&id) {
            return Err(QueryError::failed_to_parse(format!(
                "Found multiple array filters with the same top-level field name {id}"
            )));
        }
        filters.insert(id, filter);
    }
    Ok(filters)
}

/// The first components of the paths a filter tests, looking inside `$and`, `$or`, `$nor`.
fn top_level_names(spec: &RawDocument, names: &mut BTreeSet<String>) {
    for (key, value) in fields(spec) {
        if let Some(operator) = key.strip_prefix('$') {
            if let ("and" | "or" | "nor", RawBsonRef::Array(children)) = (operator, value) {
                for child in items(children) {
                    if let RawBsonRef::Document(child) = child {
                        top_level_names(child, names);
                    }
                }
            }
            continue;
        }
        names.insert(key.split('.').next().unwrap_or_default().to_owned());
    }
}

fn parse_modifier(operator: Operator, path: &str, value: RawBsonRef<'_>) -> Result<Modifier, QueryError> {
    match operator {
        Operator::Set => Ok(Modifier::Set(to_bson(value)?)),
        Operator::SetOnInsert => Ok(Modifier::SetOnInsert(to_bson(value)?)),
        Operator::Unset => Ok(Modifier::Unset),
        Operator::Inc => Number::from_raw(value).map(Modifier::Inc).ok_or_else(|| {
            QueryError::new(
                ErrorCode::TypeMismatch,
                format!("Cannot increment with non-numeric argument: {{{}}}", render::element(path, value)),
            )
        }),
        Operator::Mul => Number::from_raw(value).map(Modifier::Mul).ok_or_else(|| {
            QueryError::new(
                ErrorCode::TypeMismatch,
                format!("Cannot multiply with non-numeric argument: {{{}}}", render::element(path, value)),
            )
        }),
        Operator::Min => Ok(Modifier::Bound { max: false, value: to_bson(value)? }),
        Operator::Max => Ok(Modifier::Bound { max: true, value: to_bson(value)? }),
        Operator::CurrentDate => parse_current_date(value),
        Operator::Push => parse_push(value).map(Modifier::Push),
        Operator::AddToSet => parse_add_to_set(value).map(Modifier::AddToSet),
        Operator::Pop => parse_pop(path, value),
        Operator::Pull => parse_pull(value).map(Modifier::Pull),
        Operator::PullAll => match value {
            RawBsonRef::Array(values) => Ok(Modifier::PullAll(items(values).map(RawBson::from).collect())),
            other => Err(QueryError::bad_value(format!(
                "$pullAll requires an array argument but was given a {}",
                type_name(other.element_type())
            ))),
        },
        Operator::Bit => parse_bit(value).map(Modifier::Bit),
        // Handled by the caller, which needs both paths.
        Operator::Rename => Ok(Modifier::Renamed),
    }
}

/// The destination of `{$rename: {from: "to"}}`, with mongod's checks on the pair.
fn parse_rename(from: &str, value: RawBsonRef<'_>) -> Result<String, QueryError> {
    let RawBsonRef::String(to) = value else {
        return Err(QueryError::bad_value(format!(
            "The 'to' field for $rename must be a string: {}",
            render::element(from, value)
        )));
    };
    if to.contains('\0') {
        return Err(QueryError::bad_value("The 'to' field for $rename cannot contain an embedded null byte"));
    }
    if from == to {
        return Err(QueryError::bad_value(format!(
            "The source and target field for $rename must differ: {}",
            render::element(from, value)
        )));
    }
    let prefix_of = |a: &str, b: &str| b.strip_prefix(a).is_some_and(|rest| rest.starts_with('.'));
    if prefix_of(from, to) || prefix_of(to, from) {
        return Err(QueryError::bad_value(format!(
            "The source and target field for $rename must not be on the same path: {}",
            render::element(from, value)
        )));
    }
    let dynamic = |path: &str| path.split('.').any(|p| p == "$" || (p.starts_with("$[") && p.ends_with(']')));
    if dynamic(from) {
        return Err(QueryError::bad_value(format!("The source field for $rename may not be dynamic: {from}")));
    }
    if dynamic(to) {
        return Err(QueryError::bad_value(format!("The destination field for $rename may not be dynamic: {to}")));
    }
    Ok(to.to_owned())
}

fn parse_current_date(value: RawBsonRef<'_>) -> Result<Modifier, QueryError> {
    match value {
        RawBsonRef::Boolean(_) => Ok(Modifier::CurrentDate { timestamp: false }),
        RawBsonRef::Document(options) => {
            let mut timestamp = None;
            for (key, option) in fields(options) {
                if key != "$type" {
                    return Err(QueryError::bad_value(format!("Unrecognized $currentDate option: {key}")));
                }
                match option {
                    RawBsonRef::String("date") => timestamp = Some(false),
                    RawBsonRef::String("timestamp") => timestamp = Some(true),
                    _ => {}
                }
            }
            timestamp.map(|timestamp| Modifier::CurrentDate { timestamp }).ok_or_else(|| {
                QueryError::bad_value(
                    "The '$type' string field is required to be 'date' or 'timestamp': \
                     {$currentDate: {field : {$type: 'date'}}}",
                )
            })
        }
        other => Err(QueryError::bad_value(format!(
            "{} is not valid type for $currentDate. Please use a boolean ('true') or a $type expression \
             ({{$type: 'timestamp/date'}}).",
            type_name(other.element_type())
        ))),
    }
}

/// `$addToSet` takes a value, or `{$each: [...]}` (and nothing after `$each`).
fn parse_add_to_set(value: RawBsonRef<'_>) -> Result<Vec<Bson>, QueryError> {
    let mut values = Vec::new();
    match value {
        RawBsonRef::Document(clauses) if fields(clauses).next().is_some_and(|(k, _)| k == "$each") => {
            let mut clause_iter = fields(clauses);
            if let Some((_, each)) = clause_iter.next() {
                let RawBsonRef::Array(each) = each else {
                    return Err(QueryError::new(
                        ErrorCode::TypeMismatch,
                        format!(
                            "The argument to $each in $addToSet must be an array but it was of type {}",
                            type_name(each.element_type())
                        ),
                    ));
                };
                if clause_iter.next().is_some() {
                    return Err(QueryError::bad_value(format!(
                        "Found unexpected fields after $each in $addToSet: {}",
                        render::element("", value).trim_start_matches(": ")
                    )));
                }
                for v in items(each) {
                    values.push(v);
                }
            }
        }
        other => values.push(other),
    }
    // Duplicates among the arguments are added once, the first one winning.
    let mut unique: Vec<Bson> = Vec::with_capacity(values.len());
    let mut seen: Vec<RawBsonRef<'_>> = Vec::with_capacity(values.len());
    for v in values {
        if !seen.iter().any(|s| compare_values(*s, v).is_eq()) {
            seen.push(v);
            unique.push(to_bson(v)?);
        }
    }
    Ok(unique)
}

/// `$pop` takes 1 or -1, read as mongod's `parseIntegerElementToLong` reads integers.
fn parse_pop(path: &str, value: RawBsonRef<'_>) -> Result<Modifier, QueryError> {
    let element = || render::element(path, value);
    if Number::from_raw(value).is_none() {
        return Err(QueryError::failed_to_parse(format!("Expected a number in: {}", element())));
    }
    let Some(n) = integer_argument(value) else {
        let integral = matches!(value, RawBsonRef::Double(d) if d.fract() == 0.0);
        return Err(QueryError::failed_to_parse(if integral {
            format!("Cannot represent as a 64-bit integer: {}", element())
        } else {
            format!("Expected an integer: {}", element())
        }));
    };
    match n {
        1 => Ok(Modifier::Pop { front: false }),
        -1 => Ok(Modifier::Pop { front: true }),
        other => Err(QueryError::failed_to_parse(format!("$pop expects 1 or -1, found: {other}"))),
    }
}

fn parse_bit(value: RawBsonRef<'_>) -> Result<Vec<(BitOp, Number)>, QueryError> {
    let RawBsonRef::Document(ops) = value else {
        return Err(QueryError::bad_value(format!(
            "The $bit modifier is not compatible with a {}. You must pass in an embedded document: \
             {{$bit: {{field: {{and/or/xor: #}}}}",
            type_name(value.element_type())
        )));
    };
    let mut list = Vec::new();
    for (name, operand) in fields(ops) {
        let op = match name {
            "and" => BitOp::And,
            "or" => BitOp::Or,
            "xor" => BitOp::Xor,
            _ => {
                return Err(QueryError::bad_value(format!(
                    "The $bit modifier only supports 'and', 'or', and 'xor', not '{name}' which is an unknown \
                     operator: {{{}}}",
                    render::element(name, operand)
                )));
            }
        };
        let operand = match operand {
            RawBsonRef::Int32(i) => Number::Int32(i),
            RawBsonRef::Int64(i) => Number::Int64(i),
            other => {
                return Err(QueryError::bad_value(format!(
                    "The $bit modifier field must be an Integer(32/64 bit); a '{}' is not supported here: {{{}}}",
                    type_name(other.element_type()),
                    render::element(name, other)
                )));
            }
        };
        list.push((op, operand));
    }
    if list.is_empty() {
        return Err(QueryError::bad_value(
            "You must pass in at least one bitwise operation. The format is: {$bit: {field: {and/or/xor: #}}",
        ));
    }
    Ok(list)
}

/// `$push` takes a value, or `{$each: [...]}` with optional `$slice`, `$sort`, `$position`.
fn parse_push(value: RawBsonRef<'_>) -> Result<PushSpec, QueryError> {
    let plain = |v| Ok(PushSpec { values: vec![to_bson(v)?], slice: None, sort: None, position: None });
    let RawBsonRef::Document(clauses) = value else { return plain(value) };
    if !matches!(clauses.get("$each"), Ok(Some(_))) {
        return plain(value);
    }
    let mut spec = PushSpec { values: Vec::new(), slice: None, sort: None, position: None };
    let mut seen: Vec<&str> = Vec::new();
    for (clause, arg) in fields(clauses) {
        if !matches!(clause, "$each" | "$slice" | "$sort" | "$position") {
            return Err(QueryError::bad_value(format!("Unrecognized clause in $push: {clause}")));
        }
        if seen.contains(&clause) {
            return Err(QueryError::bad_value(format!("Only one {clause} is supported.")));
        }
        seen.push(clause);
        match (clause, arg) {
            ("$each", RawBsonRef::Array(each)) => {
                for v in items(each) {
                    spec.values.push(to_bson(v)?);
                }
            }
            ("$each", other) => {
                return Err(QueryError::bad_value(format!(
                    "The argument to $each in $push must be an array but it was of type: {}",
                    type_name(other.element_type())
                )));
            }
            ("$slice", arg) => {
                spec.slice = Some(integer_argument(arg).ok_or_else(|| {
                    QueryError::bad_value(format!(
                        "The value for $slice must be an integer value but was given type: {}",
                        type_name(arg.element_type())
                    ))
                })?);
            }
            ("$position", arg) => {
                spec.position = Some(integer_argument(arg).ok_or_else(|| {
                    QueryError::bad_value(format!(
                        "The value for $position must be an integer value, not of type: {}",
                        type_name(arg.element_type())
                    ))
                })?);
            }
            (_, arg) => spec.sort = Some(parse_push_sort(arg)?),
        }
    }
    Ok(spec)
}

/// 2^63, the first double above the int64 range.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// mongod's `parseIntegerElementToLong`: a number with an integral value that fits an int64.
fn integer_argument(value: RawBsonRef<'_>) -> Option<i64> {
    match value {
        RawBsonRef::Int32(i) => Some(i64::from(i)),
        RawBsonRef::Int64(i) => Some(i),
        RawBsonRef::Double(d) if d.fract() == 0.0 && (-TWO_POW_63..TWO_POW_63).contains(&d) => Some(d as i64),
        RawBsonRef::Decimal128(d) => d.to_string().parse().ok(),
        _ => None,
    }
}

fn sort_direction(value: RawBsonRef<'_>) -> Option<bool> {
    let n = match value {
        RawBsonRef::Int32(i) => f64::from(i),
        RawBsonRef::Int64(i) => i as f64,
        RawBsonRef::Double(d) => d,
        RawBsonRef::Decimal128(d) => d.to_string().parse().ok()?,
        _ => return None,
    };
    if n == 1.0 {
        Some(true)
    } else if n == -1.0 {
        Some(false)
    } else {
        None
    }
}

fn parse_push_sort(value: RawBsonRef<'_>) -> Result<PushSort, QueryError> {
    let bad_direction = || QueryError::bad_value("The $sort element value must be either 1 or -1");
    match value {
        RawBsonRef::Document(pattern) => {
            let mut keys = Vec::new();
            for (field, direction) in fields(pattern) {
                let ascending = sort_direction(direction).ok_or_else(bad_direction)?;
                if field.is_empty() {
                    return Err(QueryError::bad_value("The $sort field cannot be empty"));
                }
                if field.split('.').any(str::is_empty) {
                    return Err(QueryError::bad_value(format!(
                        "The $sort field is a dotted field but has an empty part: {field}"
                    )));
                }
                keys.push((field.split('.').map(str::to_owned).collect(), ascending));
            }
            if keys.is_empty() {
                return Err(QueryError::bad_value("The $sort pattern is empty when it should be a set of fields."));
            }
            Ok(PushSort::Fields(keys))
        }
        v if Number::from_raw(v).is_some() => sort_direction(v).map(PushSort::Whole).ok_or_else(bad_direction),
        _ => Err(QueryError::bad_value(
            "The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} to sort embedded fields",
        )),
    }
}

fn parse_pull(value: RawBsonRef<'_>) -> Result<PullCondition, QueryError> {
    match value {
        RawBsonRef::Document(cond) if is_operator_document(cond) && !starts_with_logical(cond) => {
            Ok(PullCondition::Value(Filter::parse(&wrap(value)?)?))
        }
        RawBsonRef::Document(cond) => Ok(PullCondition::Query(Filter::parse(cond)?)),
        other => Ok(PullCondition::Equals(RawBson::from(other))),
    }
}

/// `$and`, `$or`, `$nor` and friends make a `$pull` condition a query on document elements.
fn starts_with_logical(cond: &RawDocument) -> bool {
    fields(cond).next().is_some_and(|(key, _)| {
        matches!(key, "$and" | "$or" | "$nor" | "$expr" | "$where" | "$text" | "$comment" | "$jsonSchema")
    })
}
