//! `$bsonSize` and `$binarySize` (sizes in bytes), `$tsSecond`/`$tsIncrement` (the parts of
//! a timestamp) and `$toHashedIndexKey` (the key a hashed index stores).

use bson::{Bson, RawBsonRef, RawDocumentBuf};

use super::args;
use super::ops::MiscOp;
use super::syntax::{Expression, Operator};
use super::value::{Value, nullish, type_of};
use crate::error::ErrorCode;
use crate::query::error::QueryError;

/// Parses `{name: arg}` for an operator of this family.
pub(super) fn parse(op: MiscOp, arg: RawBsonRef<'_>) -> Result<Expression, QueryError> {
    let args = args::positional(op.name(), arg, 1, Some(1))?;
    Ok(Expression::Operator { op: Operator::Misc(op), args })
}

/// Evaluates an operator of this family on its evaluated argument.
pub(super) fn evaluate(op: MiscOp, v: Value) -> Result<Value, QueryError> {
    if op == MiscOp::ToHashedIndexKey {
        // A missing value hashes as null, as a hashed index keys a document without the field.
        let value = bson::RawBson::try_from(v.unwrap_or(Bson::Null)).map_err(QueryError::invalid_bson)?;
        let hash = crate::query::hashed::hash64(value.as_raw_bson_ref(), crate::query::hashed::DEFAULT_SEED, None);
        return Ok(Some(Bson::Int64(hash)));
    }
    if nullish(&v) {
        return Ok(Some(Bson::Null));
    }
    let size =
        |n: usize| i32::try_from(n).map_or_else(|_| Bson::Int64(i64::try_from(n).unwrap_or(i64::MAX)), Bson::Int32);
    match (op, v) {
        (MiscOp::BsonSize, Some(Bson::Document(doc))) => {
            let raw = RawDocumentBuf::try_from(&doc).map_err(QueryError::invalid_bson)?;
            Ok(Some(size(raw.as_bytes().len())))
        }
        (MiscOp::BsonSize, other) => Err(QueryError::new(
            ErrorCode::Location31393,
            format!("$bsonSize requires a document input, found: {}", type_of(&other)),
        )),
        (MiscOp::BinarySize, Some(Bson::String(s))) => Ok(Some(size(s.len()))),
        (MiscOp::BinarySize, Some(Bson::Binary(b))) => Ok(Some(size(b.bytes.len()))),
        (MiscOp::BinarySize, other) => Err(QueryError::new(
            ErrorCode::Location51276,
            format!("$binarySize requires a string or BinData argument, found: {}", type_of(&other)),
        )),
        (MiscOp::TsSecond, Some(Bson::Timestamp(ts))) => Ok(Some(Bson::Int64(i64::from(ts.time)))),
        (MiscOp::TsIncrement, Some(Bson::Timestamp(ts))) => Ok(Some(Bson::Int64(i64::from(ts.increment)))),
        (MiscOp::ToHashedIndexKey, _) => Ok(None),
        (MiscOp::TsSecond | MiscOp::TsIncrement, other) => {
            let (code, name) = if op == MiscOp::TsSecond {
                (ErrorCode::Location5687301, "$tsSecond")
            } else {
                (ErrorCode::Location5687302, "$tsIncrement")
            };
            Err(QueryError::new(code, format!("Argument to {name} must be a timestamp, but is {}", type_of(&other))))
        }
    }
}
