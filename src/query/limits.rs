//! mongod's nesting and size limits, and the depth-safe walks that enforce them.
//!
//! mongod's numbers (`src/mongo/bson/bson_depth.h`, `db/ops/insert.cpp`,
//! `db/update/storage_validation.cpp`, `db/pipeline/field_path.h`):
//! - BSON it reads (requests) may nest [`MAX_BSON_DEPTH`] (200) levels below the top document
//!   (`BSONDepth::kDefaultMaxAllowableDepth`);
//! - documents it stores may nest [`MAX_STORAGE_DEPTH`] (180) levels, 20 fewer, so that the
//!   server can still wrap them in replies and oplog entries (`getMaxDepthForUserStorage`);
//! - an aggregation field path (projections, sorts, expressions) has at most 200 components,
//!   a filter path at most 180.
//!
//! Every walk here is iterative, so no document, however deep, can exhaust the stack: the
//! bytes of a document stored by an older version are only ever walked through these.

use bson::raw::{RawArrayIter, RawIter};
use bson::{Bson, Document, JavaScriptCodeWithScope, RawBsonRef, RawDocument};

use super::error::QueryError;
use super::render;
use crate::error::ErrorCode;

/// How deep BSON may nest below its top document: mongod's `BSONDepth::getMaxAllowableDepth`.
pub const MAX_BSON_DEPTH: usize = 200;

/// How deep a stored document may nest (the top document is level 1):
/// `BSONDepth::getMaxDepthForUserStorage`, 20 levels below [`MAX_BSON_DEPTH`].
pub const MAX_STORAGE_DEPTH: usize = MAX_BSON_DEPTH - 20;

/// How deep a stored document may nest and still be read: [`MAX_BSON_DEPTH`] plus the 20
/// levels mongod keeps for documents it wraps itself (a profiler entry holds a whole command
/// one level down). Only a document stored by an older version goes deeper.
pub const MAX_READ_DEPTH: usize = MAX_BSON_DEPTH + 20;

/// The most components an aggregation `FieldPath` (projection, sort, expression) may have.
pub const MAX_FIELD_PATH_PARTS: usize = MAX_BSON_DEPTH;

/// The most components a filter path may have (mongod's match expression parser).
pub const MAX_MATCH_PATH_PARTS: usize = MAX_STORAGE_DEPTH;

/// mongod's `BSONObjMaxUserSize`: the largest document, and the longest string a value may
/// hold (`RCString`).
pub const MAX_USER_SIZE: usize = 16 * 1024 * 1024;

/// mongod's `BSONObjMaxInternalSize`: the largest reply, 16 KiB above [`MAX_USER_SIZE`].
pub const MAX_INTERNAL_SIZE: usize = MAX_USER_SIZE + 16 * 1024;

/// mongod's `BufferMaxSize`: the most a string builder grows before it gives up.
pub const MAX_BUILDER_SIZE: usize = 64 * 1024 * 1024;

/// mongod's 10334 BSONObjectTooLarge for a reply (or any object) of `size` bytes, over
/// [`MAX_INTERNAL_SIZE`]; `first_element` is the object's first element as mongod prints it.
pub fn object_too_large(size: usize, first_element: &str) -> QueryError {
    QueryError::new(
        ErrorCode::BSONObjectTooLarge,
        format!(
            "BSONObj size: {size} (0x{size:X}) is invalid. Size must be between 0 and {MAX_INTERNAL_SIZE}({}MB) First \
             element: {first_element}",
            MAX_INTERNAL_SIZE / (1024 * 1024)
        ),
    )
}

/// 15 Overflow "FieldPath is too long" unless a path of `parts` components fits
/// [`MAX_FIELD_PATH_PARTS`] (mongod's `FieldPath` constructor).
///
/// # Errors
/// As described.
pub fn check_field_path_parts(parts: usize) -> Result<(), QueryError> {
    if parts > MAX_FIELD_PATH_PARTS {
        return Err(QueryError::new(ErrorCode::Overflow, "FieldPath is too long"));
    }
    Ok(())
}

/// 5729100 "FieldPath is too long" unless a filter path of `parts` components fits
/// [`MAX_MATCH_PATH_PARTS`] (mongod's match expression parser).
///
/// # Errors
/// As described.
pub fn check_match_path_parts(parts: usize) -> Result<(), QueryError> {
    if parts > MAX_MATCH_PATH_PARTS {
        return Err(QueryError::new(ErrorCode::Location5729100, "FieldPath is too long"));
    }
    Ok(())
}

/// 15 Overflow unless `doc` fits [`MAX_STORAGE_DEPTH`], with mongod's insert message.
///
/// # Errors
/// As described.
pub fn check_insert_depth(doc: &RawDocument) -> Result<(), QueryError> {
    if raw_depth_exceeds(doc, MAX_STORAGE_DEPTH) {
        return Err(QueryError::new(
            ErrorCode::Overflow,
            format!("cannot insert document because it exceeds {MAX_STORAGE_DEPTH} levels of nesting"),
        ));
    }
    Ok(())
}

/// 15 Overflow unless `doc` (an update's result) fits [`MAX_STORAGE_DEPTH`], with mongod's
/// storage validation message.
///
/// # Errors
/// As described.
pub fn check_update_depth(doc: &Document) -> Result<(), QueryError> {
    if owned_depth_exceeds(doc, MAX_STORAGE_DEPTH) {
        return Err(update_too_deep());
    }
    Ok(())
}

/// mongod's storage validation error for an update that would nest too deep.
pub fn update_too_deep() -> QueryError {
    QueryError::new(ErrorCode::Overflow, format!("Document exceeds maximum nesting depth of {MAX_STORAGE_DEPTH}"))
}

/// Whether `doc` nests more than `max` levels, counted as mongod counts them: the document
/// itself is level 1, each non-empty embedded document or array one more (an empty one holds
/// no element, so it adds none).
pub fn raw_depth_exceeds(doc: &RawDocument, max: usize) -> bool {
    depth_exceeds(doc, max, false)
}

/// 15 Overflow unless a stored document fits [`MAX_READ_DEPTH`] levels below its top, with
/// [`to_document`]'s message: replies carry stored documents as they are, so this is the check
/// their conversion to owned documents used to make (only a document stored by an older
/// version fails it).
///
/// # Errors
/// As described.
pub fn check_read_depth(doc: &RawDocument) -> Result<(), QueryError> {
    // `to_bson_counted` refuses to open a container (even an empty one) below MAX_READ_DEPTH
    // levels under the top.
    if depth_exceeds(doc, MAX_READ_DEPTH + 1, true) {
        return Err(too_deep_to_read(doc, "BSONObj exceeds maximum nested object depth"));
    }
    Ok(())
}

/// mongod's `validateBSON` error for a document too deep to read, naming its `_id`.
fn too_deep_to_read(doc: &RawDocument, message: &str) -> QueryError {
    let id = match doc.get("_id") {
        Ok(Some(id)) => render::element("_id", id),
        _ => "unknown _id".to_owned(),
    };
    QueryError::new(ErrorCode::Overflow, format!("{message} in object with {id}"))
}

/// Whether `doc` nests more than `max` levels; empty containers count as a level only with
/// `count_empty`.
fn depth_exceeds(doc: &RawDocument, max: usize, count_empty: bool) -> bool {
    // Each level below the top costs at least 7 bytes (type, empty name, length, terminator):
    // a short document cannot be too deep, and most are short.
    if doc.as_bytes().len() < 5 + 7 * max {
        return false;
    }
    enum Frame<'a> {
        Doc(RawIter<'a>),
        Arr(RawArrayIter<'a>),
    }
    let mut frames = vec![Frame::Doc(doc.iter_elements())];
    while let Some(frame) = frames.last_mut() {
        let next = match frame {
            Frame::Doc(iter) => iter.next().map(|item| item.and_then(|e| e.value())),
            Frame::Arr(iter) => iter.next(),
        };
        // A malformed tail ends the walk, as everywhere in the query layer.
        let Some(Ok(value)) = next else {
            frames.pop();
            continue;
        };
        let child = match value {
            RawBsonRef::Document(d) if count_empty || !d.is_empty() => Frame::Doc(d.iter_elements()),
            RawBsonRef::Array(a) if count_empty || !a.is_empty() => Frame::Arr(a.into_iter()),
            RawBsonRef::JavaScriptCodeWithScope(c) if count_empty || !c.scope.is_empty() => {
                Frame::Doc(c.scope.iter_elements())
            }
            _ => continue,
        };
        if frames.len() >= max {
            return true;
        }
        frames.push(child);
    }
    false
}

/// [`raw_depth_exceeds`] for an owned document.
pub fn owned_depth_exceeds(doc: &Document, max: usize) -> bool {
    enum Frame<'a> {
        Doc(bson::document::Iter<'a>),
        Arr(std::slice::Iter<'a, Bson>),
    }
    let mut frames = vec![Frame::Doc(doc.iter())];
    while let Some(frame) = frames.last_mut() {
        let next = match frame {
            Frame::Doc(iter) => iter.next().map(|(_, v)| v),
            Frame::Arr(iter) => iter.next(),
        };
        let Some(value) = next else {
            frames.pop();
            continue;
        };
        let child = match value {
            Bson::Document(d) if !d.is_empty() => Frame::Doc(d.iter()),
            Bson::Array(a) if !a.is_empty() => Frame::Arr(a.iter()),
            Bson::JavaScriptCodeWithScope(c) if !c.scope.is_empty() => Frame::Doc(c.scope.iter()),
            _ => continue,
        };
        if frames.len() >= max {
            return true;
        }
        frames.push(child);
    }
    false
}

/// Converts a raw document to an owned one without recursion (the `bson` crate's conversion
/// recurses, several kilobytes of stack per level in debug builds), refusing nesting deeper
/// than [`MAX_READ_DEPTH`] below the top: the owned tree is walked recursively afterwards
/// (encoded into replies, compared, dropped).
///
/// # Errors
/// 15 Overflow, with mongod's `validateBSON` message, for a document nested too deep (one
/// stored by an older version); 22 InvalidBSON for malformed bytes.
pub fn to_document(doc: &RawDocument) -> Result<Document, QueryError> {
    match to_bson(RawBsonRef::Document(doc)) {
        Ok(Bson::Document(out)) => Ok(out),
        Ok(_) => Ok(Document::new()),
        Err(e) if e.code() == ErrorCode::Overflow => Err(too_deep_to_read(doc, e.message())),
        Err(e) => Err(e),
    }
}

/// Converts a raw value to an owned one; see [`to_document`].
///
/// # Errors
/// As [`to_document`].
pub fn to_bson(value: RawBsonRef<'_>) -> Result<Bson, QueryError> {
    to_bson_counted(value).map(|(value, _)| value)
}

/// [`to_bson`], with the number of values the owned copy holds (the containers and every
/// value inside them), which with the raw size tells what the copy costs in memory.
///
/// # Errors
/// As [`to_document`].
pub fn to_bson_counted(value: RawBsonRef<'_>) -> Result<(Bson, usize), QueryError> {
    enum Built<'a> {
        Doc(Document, RawIter<'a>),
        Arr(Vec<Bson>, RawArrayIter<'a>),
        Scope(String, Document, RawIter<'a>),
    }
    fn open(value: RawBsonRef<'_>) -> Result<Result<Built<'_>, Bson>, QueryError> {
        Ok(match value {
            RawBsonRef::Document(d) => Ok(Built::Doc(Document::new(), d.iter_elements())),
            RawBsonRef::Array(a) => Ok(Built::Arr(Vec::new(), a.into_iter())),
            RawBsonRef::JavaScriptCodeWithScope(c) => {
                Ok(Built::Scope(c.code.to_owned(), Document::new(), c.scope.iter_elements()))
            }
            scalar => Err(Bson::try_from(scalar).map_err(QueryError::invalid_bson)?),
        })
    }
    // Each open container, with the key it will have in its parent (None for array elements
    // and the root).
    let mut stack: Vec<(Built<'_>, Option<String>)> = match open(value)? {
        Ok(built) => vec![(built, None)],
        Err(scalar) => return Ok((scalar, 1)),
    };
    let mut count = 1;
    loop {
        let Some((top, _)) = stack.last_mut() else { return Ok((Bson::Null, count)) };
        let next = match top {
            Built::Doc(_, iter) | Built::Scope(_, _, iter) => {
                iter.next().map(|item| item.and_then(|e| Ok((Some(e.key().as_str().to_owned()), e.value()?))))
            }
            Built::Arr(_, iter) => iter.next().map(|item| item.map(|v| (None, v))),
        };
        let finished = match next {
            Some(item) => {
                let (key, value) = item.map_err(QueryError::invalid_bson)?;
                count += 1;
                match open(value)? {
                    Ok(built) => {
                        if stack.len() > MAX_READ_DEPTH {
                            return Err(QueryError::new(
                                ErrorCode::Overflow,
                                "BSONObj exceeds maximum nested object depth",
                            ));
                        }
                        stack.push((built, key));
                        continue;
                    }
                    Err(scalar) => {
                        attach(&mut stack, key, scalar);
                        continue;
                    }
                }
            }
            None => stack.pop(),
        };
        let Some((built, key)) = finished else { return Ok((Bson::Null, count)) };
        let value = match built {
            Built::Doc(doc, _) => Bson::Document(doc),
            Built::Arr(items, _) => Bson::Array(items),
            Built::Scope(code, scope, _) => Bson::JavaScriptCodeWithScope(JavaScriptCodeWithScope { code, scope }),
        };
        if stack.is_empty() {
            return Ok((value, count));
        }
        attach(&mut stack, key, value);
    }

    fn attach(stack: &mut [(Built<'_>, Option<String>)], key: Option<String>, value: Bson) {
        match stack.last_mut() {
            Some((Built::Doc(doc, _) | Built::Scope(_, doc, _), _)) => {
                doc.insert(key.unwrap_or_default(), value);
            }
            Some((Built::Arr(items, _), _)) => items.push(value),
            None => {}
        }
    }
}

/// `{a: {a: ... {a: 1}}}` with `levels` documents in all, written as bytes (the sizes are
/// known up front), so that building a very deep one costs no recursion and no copying.
#[cfg(test)]
pub(crate) fn nested_for_tests(levels: usize) -> bson::RawDocumentBuf {
    let levels = levels.max(1);
    let mut bytes = Vec::with_capacity(levels * 8 + 8);
    // Each outer level is `len, 0x03, "a\0", <inner>, 0x00`: 8 bytes around the inner one.
    for outer in 1..levels {
        let len = 12 + 8 * (levels - outer);
        bytes.extend_from_slice(&i32::try_from(len).unwrap_or(i32::MAX).to_le_bytes());
        bytes.extend_from_slice(&[0x03, b'a', 0]);
    }
    bytes.extend_from_slice(&[12, 0, 0, 0, 0x10, b'a', 0, 1, 0, 0, 0, 0]);
    bytes.resize(bytes.len() + levels - 1, 0);
    bson::RawDocumentBuf::from_bytes(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{RawDocumentBuf, rawdoc};

    /// `{a: {a: ... {a: 1}}}` with `levels` documents in all.
    fn nested(levels: usize) -> RawDocumentBuf {
        super::nested_for_tests(levels)
    }

    #[test]
    fn limits_raw_depth_counts_like_mongod() {
        assert!(!raw_depth_exceeds(&nested(MAX_STORAGE_DEPTH), MAX_STORAGE_DEPTH));
        assert!(raw_depth_exceeds(&nested(MAX_STORAGE_DEPTH + 1), MAX_STORAGE_DEPTH));
        // An empty document at the bottom adds no level.
        let mut with_empty = rawdoc! { "a": {} };
        for _ in 1..MAX_STORAGE_DEPTH {
            let mut outer = RawDocumentBuf::new();
            outer.append(bson::raw::cstr!("a"), with_empty);
            with_empty = outer;
        }
        assert!(!raw_depth_exceeds(&with_empty, MAX_STORAGE_DEPTH));
        // Arrays count as documents do.
        let mut arrays = bson::RawArrayBuf::new();
        arrays.push(1);
        for _ in 2..MAX_STORAGE_DEPTH {
            let mut outer = bson::RawArrayBuf::new();
            outer.push(arrays);
            arrays = outer;
        }
        let mut top = RawDocumentBuf::new();
        top.append(bson::raw::cstr!("a"), arrays.clone());
        assert!(!raw_depth_exceeds(&top, MAX_STORAGE_DEPTH));
        let mut deeper = bson::RawArrayBuf::new();
        deeper.push(arrays);
        let mut top = RawDocumentBuf::new();
        top.append(bson::raw::cstr!("a"), deeper);
        assert!(raw_depth_exceeds(&top, MAX_STORAGE_DEPTH));
    }

    #[test]
    fn limits_insert_depth_is_15_with_mongods_message() {
        let err = check_insert_depth(&nested(MAX_STORAGE_DEPTH + 1)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Overflow);
        assert_eq!(err.message(), "cannot insert document because it exceeds 180 levels of nesting");
        assert!(check_insert_depth(&nested(MAX_STORAGE_DEPTH)).is_ok());
    }

    #[test]
    fn limits_owned_depth_matches_raw_depth() {
        for levels in [1, 2, 179, 180, 181, 201] {
            let raw = nested(levels);
            let owned = to_document(&raw).unwrap();
            assert_eq!(
                owned_depth_exceeds(&owned, MAX_STORAGE_DEPTH),
                raw_depth_exceeds(&raw, MAX_STORAGE_DEPTH),
                "{levels}"
            );
        }
    }

    #[test]
    fn limits_to_document_converts_like_bson() {
        let raw = rawdoc! {
            "_id": 1, "s": "x", "d": { "e": [1, { "f": null }, []] }, "x": {},
            "c": bson::RawJavaScriptCodeWithScope { code: "f".to_owned(), scope: rawdoc! { "v": [2] } },
        };
        assert_eq!(to_document(&raw).unwrap(), Document::try_from(raw.as_ref()).unwrap());
        assert_eq!(to_bson(RawBsonRef::Int32(3)).unwrap(), Bson::Int32(3));
    }

    #[test]
    fn limits_to_document_refuses_deeper_than_220_without_recursion() {
        // The top document and 220 below it.
        assert!(to_document(&nested(MAX_READ_DEPTH + 1)).is_ok());
        assert_eq!(to_document(&nested(MAX_READ_DEPTH + 2)).unwrap_err().code(), ErrorCode::Overflow);
        let mut deep = nested(100_000);
        let mut top = rawdoc! { "_id": 7 };
        top.append(bson::raw::cstr!("a"), std::mem::take(&mut deep));
        let err = to_document(&top).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Overflow);
        assert_eq!(err.message(), "BSONObj exceeds maximum nested object depth in object with _id: 7");
        assert!(raw_depth_exceeds(&top, MAX_STORAGE_DEPTH));
    }

    #[test]
    fn limits_read_depth_check_matches_owned_conversion() {
        // An empty document as the deepest level counts, as in the owned conversion.
        let mut empty_at_bottom = rawdoc! { "a": {} };
        for _ in 0..MAX_READ_DEPTH - 1 {
            let mut outer = RawDocumentBuf::new();
            outer.append(bson::raw::cstr!("a"), empty_at_bottom);
            empty_at_bottom = outer;
        }
        let mut top = rawdoc! { "_id": 7 };
        top.append(bson::raw::cstr!("a"), empty_at_bottom);
        for doc in [nested(1), nested(MAX_READ_DEPTH + 1), nested(MAX_READ_DEPTH + 2), top, rawdoc! { "x": [[], {}] }] {
            let read = check_read_depth(&doc).map_err(|e| (e.code(), e.message().to_owned()));
            let owned = to_document(&doc).map(|_| ()).map_err(|e| (e.code(), e.message().to_owned()));
            assert_eq!(read, owned);
        }
    }

    #[test]
    fn limits_object_too_large_message_matches_mongod() {
        let err = object_too_large(16_793_610, "_id: 1");
        assert_eq!(err.code(), ErrorCode::BSONObjectTooLarge);
        assert_eq!(
            err.message(),
            "BSONObj size: 16793610 (0x100400A) is invalid. Size must be between 0 and 16793600(16MB) First element: _id: 1"
        );
    }

    #[test]
    fn limits_field_path_parts() {
        assert!(check_field_path_parts(200).is_ok());
        assert_eq!(check_field_path_parts(201).unwrap_err().code(), ErrorCode::Overflow);
        assert!(check_match_path_parts(180).is_ok());
        assert_eq!(check_match_path_parts(181).unwrap_err().code(), ErrorCode::Location5729100);
    }
}
