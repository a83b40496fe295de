//! The object operators `$objectToArray`, `$arrayToObject` and `$mergeObjects` (`$getField`,
//! `$setField` and `$unsetField` are parsed with the field operators in `parse`).

use bson::{Bson, Document, RawBsonRef};

use super::args;
use super::ops::ObjectOp;
use super::syntax::{Expression, Operator};
use super::value::{Value, nullish, type_of};
use crate::error::ErrorCode;
use crate::query::error::QueryError;
use crate::query::render;

/// Parses `{name: arg}` for an operator of this family.
pub(super) fn parse(op: ObjectOp, arg: RawBsonRef<'_>) -> Result<Expression, QueryError> {
    let args = match op {
        ObjectOp::MergeObjects => args::positional(op.name(), arg, 0, None)?,
        _ => args::positional(op.name(), arg, 1, Some(1))?,
    };
    Ok(Expression::Operator { op: Operator::Object(op), args })
}

fn error(code: ErrorCode, message: String) -> QueryError {
    QueryError::new(code, message)
}

/// Evaluates an operator of this family; `eval(i)` evaluates its `i`th argument.
pub(super) fn evaluate(
    op: ObjectOp,
    args: &[Expression],
    eval: &mut dyn FnMut(usize) -> Result<Value, QueryError>,
) -> Result<Value, QueryError> {
    match op {
        ObjectOp::ObjectToArray => match eval(0)? {
            v if nullish(&v) => Ok(Some(Bson::Null)),
            Some(Bson::Document(doc)) => Ok(Some(Bson::Array(
                doc.into_iter()
                    .map(|(k, v)| {
                        let mut pair = Document::new();
                        pair.insert("k", k);
                        pair.insert("v", v);
                        Bson::Document(pair)
                    })
                    .collect(),
            ))),
            other => Err(error(
                ErrorCode::Location40390,
                format!("$objectToArray requires a document input, found: {}", type_of(&other)),
            )),
        },
        ObjectOp::ArrayToObject => match eval(0)? {
            v if nullish(&v) => Ok(Some(Bson::Null)),
            Some(Bson::Array(items)) => array_to_object(items).map(|d| Some(Bson::Document(d))),
            other => Err(error(
                ErrorCode::Location40386,
                format!("$arrayToObject requires an array input, found: {}", type_of(&other)),
            )),
        },
        ObjectOp::MergeObjects => {
            let mut merged = Document::new();
            for i in 0..args.len() {
                match eval(i)? {
                    v if nullish(&v) => {}
                    Some(Bson::Document(doc)) => {
                        for (k, v) in doc {
                            merged.insert(k, v);
                        }
                    }
                    Some(other) => {
                        return Err(error(
                            ErrorCode::Location40400,
                            format!(
                                "$mergeObjects requires object inputs, but input {} is of type {}",
                                render::owned_value(&other),
                                render::type_name(other.element_type())
                            ),
                        ));
                    }
                    None => {}
                }
            }
            Ok(Some(Bson::Document(merged)))
        }
    }
}

/// mongod's `ExpressionArrayToObject`: all `[k, v]` pairs or all `{k, v}` documents; a key
/// seen again replaces the value in its first place.
fn array_to_object(items: Vec<Bson>) -> Result<Document, QueryError> {
    let mut out = Document::new();
    let pairs = match items.first() {
        None => return Ok(out),
        Some(Bson::Array(_)) => true,
        Some(Bson::Document(_)) => false,
        Some(other) => {
            return Err(error(
                ErrorCode::Location40398,
                format!(
                    "Unrecognised input type format for $arrayToObject: {}",
                    render::type_name(other.element_type())
                ),
            ));
        }
    };
    for item in items {
        let (key, value) = match (pairs, item) {
            (true, Bson::Array(mut pair)) => {
                if pair.len() != 2 {
                    return Err(error(
                        ErrorCode::Location40397,
                        format!(
                            "$arrayToObject requires an array of size 2 arrays,found array of size: {}",
                            pair.len()
                        ),
                    ));
                }
                let value = pair.pop().unwrap_or(Bson::Null);
                match pair.pop() {
                    Some(Bson::String(k)) => (k, value),
                    other => {
                        return Err(error(
                            ErrorCode::Location40395,
                            format!(
                                "$arrayToObject requires an array of key-value pairs, where the key must be of type string. Found key type: {}",
                                type_of(&other)
                            ),
                        ));
                    }
                }
            }
            (false, Bson::Document(mut doc)) => {
                if doc.len() != 2 {
                    return Err(error(
                        ErrorCode::Location40392,
                        format!(
                            "$arrayToObject requires an object keys of 'k' and 'v'. Found incorrect number of keys:{}",
                            doc.len()
                        ),
                    ));
                }
                let (Some(k), Some(v)) = (doc.remove("k"), doc.remove("v")) else {
                    return Err(error(
                        ErrorCode::Location40393,
                        "$arrayToObject requires an object with keys 'k' and 'v'. Missing either or both keys from: "
                            .to_owned()
                            + &render::owned_value(&Bson::Document(doc)),
                    ));
                };
                let Bson::String(k) = k else {
                    return Err(error(
                        ErrorCode::Location40394,
                        format!(
                            "$arrayToObject requires an object with keys 'k' and 'v', where the value of 'k' must be of type string. Found type: {}",
                            render::type_name(k.element_type())
                        ),
                    ));
                };
                (k, v)
            }
            (true, other) => {
                return Err(error(
                    ErrorCode::Location40391,
                    format!(
                        "$arrayToObject requires a consistent input format. Elements must all be arrays or all be objects. Array was detected, now found: {}",
                        render::type_name(other.element_type())
                    ),
                ));
            }
            (false, other) => {
                return Err(error(
                    ErrorCode::Location40391,
                    format!(
                        "$arrayToObject requires a consistent input format. Elements must all be arrays or all be objects. Object was detected, now found: {}",
                        render::type_name(other.element_type())
                    ),
                ));
            }
        };
        if key.contains('\0') {
            return Err(error(ErrorCode::Location4940400, "Key field cannot contain an embedded null byte".to_owned()));
        }
        out.insert(key, value);
    }
    Ok(out)
}
