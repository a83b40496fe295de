//! What a handler answers: a [`Reply`], either a small document built as an owned
//! [`Document`] (most commands) or raw bytes built by a [`ReplyBuilder`] (the read and write
//! paths), so that stored documents go into the outgoing message as they are stored, once.

use bson::raw::{BindRawBsonRef, CStr, cstr};
use bson::spec::ElementType;
use bson::{Bson, Document, RawBsonRef, RawDocument, RawDocumentBuf};

use crate::error::{Error, ErrorCode, Result};
use crate::query::limits::{self, MAX_INTERNAL_SIZE};

/// A handler's reply, before the dispatcher adds `ok` and the connection frames it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply(Body);

#[derive(Debug, Clone, PartialEq)]
enum Body {
    /// Built as an owned document; encoded once, when the reply is framed.
    Document(Document),
    /// Already encoded.
    Raw(RawDocumentBuf),
}

impl From<Document> for Reply {
    fn from(document: Document) -> Self {
        Self(Body::Document(document))
    }
}

impl From<RawDocumentBuf> for Reply {
    fn from(document: RawDocumentBuf) -> Self {
        Self(Body::Raw(document))
    }
}

impl Reply {
    /// The reply with `ok: 1` appended, unless the handler set `ok` itself.
    pub fn with_ok(self) -> Self {
        match self.0 {
            Body::Document(mut document) => {
                if !document.contains_key("ok") {
                    document.insert("ok", 1.0);
                }
                Self(Body::Document(document))
            }
            Body::Raw(mut document) => {
                if document.get("ok").ok().flatten().is_none() {
                    document.append(cstr!("ok"), 1.0);
                }
                Self(Body::Raw(document))
            }
        }
    }

    /// Appends `key: value` after what the handler built (fields a fail point adds).
    ///
    /// # Errors
    /// 1 InternalError when `value` cannot be encoded.
    pub fn append(&mut self, key: &CStr, value: Bson) -> Result<()> {
        match &mut self.0 {
            Body::Document(document) => {
                document.insert(key.as_str(), value);
            }
            Body::Raw(document) => {
                let value =
                    bson::RawBson::try_from(value).map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))?;
                document.append(key, value);
            }
        }
        Ok(())
    }

    /// Whether the reply has a top-level field `key`.
    pub fn has(&self, key: &str) -> bool {
        match &self.0 {
            Body::Document(document) => document.contains_key(key),
            Body::Raw(document) => document.get(key).ok().flatten().is_some(),
        }
    }

    /// The `code` field of an error reply (`{ok: 0, code}`), if it has one.
    pub fn code(&self) -> Option<i32> {
        match &self.0 {
            Body::Document(document) => document.get_i32("code").ok(),
            Body::Raw(document) => document.get_i32("code").ok(),
        }
    }

    /// The reply as an owned document, for tests and for the few callers that inspect a reply.
    ///
    /// # Errors
    /// 22 InvalidBSON if raw bytes do not decode (they were built by [`ReplyBuilder`] or bson,
    /// so they do).
    pub fn to_document(&self) -> Result<Document> {
        match &self.0 {
            Body::Document(document) => Ok(document.clone()),
            Body::Raw(document) => {
                Document::try_from(document.as_ref()).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))
            }
        }
    }

    /// The reply's bytes, ready to frame.
    ///
    /// # Errors
    /// 10334 BSONObjectTooLarge over mongod's internal object size (16 MiB + 16 KiB), naming
    /// the first element as mongod does; 1 InternalError when an owned document does not
    /// encode.
    pub fn encode(self) -> Result<RawDocumentBuf> {
        let raw = match self.0 {
            Body::Raw(raw) => raw,
            Body::Document(document) => RawDocumentBuf::try_from(&document).map_err(|e| {
                tracing::error!(target: "COMMAND", id = 1, error = %e, "Reply could not be encoded");
                Error::new(ErrorCode::InternalError, "reply could not be encoded").with_internal(e.to_string())
            })?,
        };
        let size = raw.as_bytes().len();
        if size > MAX_INTERNAL_SIZE {
            // mongod refuses a reply over its internal object size the same way.
            return Err(limits::object_too_large(size, &first_element(&raw)).into());
        }
        Ok(raw)
    }
}

/// The first element of `reply` for an error message: a scalar as mongod prints it (cut at
/// 256 bytes), a document or array elided, as the reply it heads is too large to print.
fn first_element(reply: &RawDocument) -> String {
    let Some(Ok((key, value))) = reply.iter().next() else { return String::new() };
    let mut shown = match value {
        RawBsonRef::Document(_) => format!("{}: {{ ... }}", key.as_str()),
        RawBsonRef::Array(_) => format!("{}: [ ... ]", key.as_str()),
        other => match Bson::try_from(other) {
            Ok(other) => format!("{}: {other}", key.as_str()),
            Err(_) => key.as_str().to_owned(),
        },
    };
    if shown.len() > 256 {
        let cut = (0..=256).rev().find(|&i| shown.is_char_boundary(i)).unwrap_or(0);
        shown.truncate(cut);
    }
    shown
}

/// Builds a reply document in one buffer: embedded documents and arrays are written in place
/// (their lengths filled in when closed), so a document pushed into a batch is copied once,
/// from the bytes it was stored as. Values are encoded by `bson`.
#[derive(Debug)]
pub struct ReplyBuilder {
    bytes: Vec<u8>,
    /// The containers not yet closed, innermost last; the root is first.
    open: Vec<Container>,
}

#[derive(Debug)]
struct Container {
    /// Where its length prefix is.
    start: usize,
    /// For an array, the index of its next element.
    next_index: Option<usize>,
}

impl Default for ReplyBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplyBuilder {
    /// An empty reply document.
    pub fn new() -> Self {
        Self::with_capacity(64)
    }

    /// An empty reply document with room for `bytes` bytes.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut buffer = Vec::with_capacity(bytes.max(5));
        buffer.extend_from_slice(&[0; 4]);
        Self { bytes: buffer, open: vec![Container { start: 0, next_index: None }] }
    }

    /// The bytes written so far.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether nothing but the root's length prefix was written.
    pub fn is_empty(&self) -> bool {
        self.bytes.len() <= 4
    }

    /// Appends `key: value` to the innermost open document.
    pub fn append(&mut self, key: &CStr, value: impl BindRawBsonRef) {
        self.append_element(Some(key), value);
    }

    /// Appends `value` to the innermost open array.
    pub fn push(&mut self, value: impl BindRawBsonRef) {
        self.append_element(None, value);
    }

    /// Appends `key: document` to the innermost open document, copying its bytes.
    pub fn append_document(&mut self, key: &CStr, document: &RawDocument) {
        self.element_header(ElementType::EmbeddedDocument, Some(key));
        self.bytes.extend_from_slice(document.as_bytes());
    }

    /// Appends `document` to the innermost open array, copying its bytes.
    pub fn push_document(&mut self, document: &RawDocument) {
        self.element_header(ElementType::EmbeddedDocument, None);
        self.bytes.extend_from_slice(document.as_bytes());
    }

    /// Opens an embedded document under `key`; close it with [`ReplyBuilder::close`].
    pub fn open_document(&mut self, key: &CStr) {
        self.element_header(ElementType::EmbeddedDocument, Some(key));
        self.open.push(Container { start: self.bytes.len(), next_index: None });
        self.bytes.extend_from_slice(&[0; 4]);
    }

    /// Opens an array under `key`; close it with [`ReplyBuilder::close`].
    pub fn open_array(&mut self, key: &CStr) {
        self.element_header(ElementType::Array, Some(key));
        self.open.push(Container { start: self.bytes.len(), next_index: Some(0) });
        self.bytes.extend_from_slice(&[0; 4]);
    }

    /// Closes the innermost open document or array (never the root: see
    /// [`ReplyBuilder::finish`]).
    pub fn close(&mut self) {
        if self.open.len() > 1
            && let Some(container) = self.open.pop()
        {
            self.terminate(container.start);
        }
    }

    /// Closes every open container and returns the document.
    ///
    /// # Errors
    /// 1 InternalError if the document is over the 2 GiB a BSON length can say (a reply is
    /// refused long before, at 16 MiB + 16 KiB).
    pub fn finish(mut self) -> Result<RawDocumentBuf> {
        while let Some(container) = self.open.pop() {
            self.terminate(container.start);
        }
        RawDocumentBuf::from_bytes(self.bytes).map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))
    }

    /// Appends one element encoded by bson: it encodes it into a one-element document, whose
    /// element bytes are its bytes without the length prefix and the terminator.
    fn append_element(&mut self, key: Option<&CStr>, value: impl BindRawBsonRef) {
        let mut one = RawDocumentBuf::new();
        match self.next_index() {
            Some(index) => match bson::raw::CString::try_from(index.to_string()) {
                Ok(index) => one.append(index, value),
                Err(_) => return,
            },
            None => one.append(key.unwrap_or(cstr!("")), value),
        }
        let element = one.as_bytes();
        self.bytes.extend_from_slice(element.get(4..element.len().saturating_sub(1)).unwrap_or_default());
    }

    /// Takes the next element index of the innermost container when it is an array.
    fn next_index(&mut self) -> Option<usize> {
        let next = self.open.last_mut()?.next_index.as_mut()?;
        let index = *next;
        *next += 1;
        Some(index)
    }

    /// Writes an element's type and name: its index inside an array, else `key` (or the empty
    /// name).
    fn element_header(&mut self, kind: ElementType, key: Option<&CStr>) {
        self.bytes.push(kind as u8);
        match self.next_index() {
            Some(index) => {
                use std::io::Write;
                // Writing to a Vec cannot fail.
                let _ = write!(self.bytes, "{index}");
            }
            None => self.bytes.extend_from_slice(key.map_or("", CStr::as_str).as_bytes()),
        }
        self.bytes.push(0);
    }

    /// Ends the container whose length prefix is at `start`: its terminator, then its length.
    fn terminate(&mut self, start: usize) {
        self.bytes.push(0);
        // A length past i32 cannot be said; `finish` then refuses the frame.
        let length = i32::try_from(self.bytes.len() - start).unwrap_or(0);
        if let Some(prefix) = self.bytes.get_mut(start..start + 4) {
            prefix.copy_from_slice(&length.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use bson::oid::ObjectId;
    use bson::{Binary, DateTime, Decimal128, JavaScriptCodeWithScope, Regex, Timestamp, doc, rawdoc};

    use super::*;

    fn every_type() -> Document {
        doc! {
            "_id": ObjectId::from_bytes([7; 12]),
            "double": 1.5,
            "string": "é",
            "doc": { "a": 1 },
            "array": [1, "two", { "three": 3 }],
            "binary": Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1, 2] },
            "undefined": Bson::Undefined,
            "bool": true,
            "date": DateTime::from_millis(1),
            "null": Bson::Null,
            "regex": Regex { pattern: cstr!("a.c").into(), options: cstr!("i").into() },
            "code": Bson::JavaScriptCode("f()".into()),
            "symbol": Bson::Symbol("s".into()),
            "scope": JavaScriptCodeWithScope { code: "g()".into(), scope: doc! { "x": 1 } },
            "int": 1,
            "timestamp": Timestamp { time: 1, increment: 2 },
            "long": 2i64,
            "decimal": Decimal128::from_bytes([1; 16]),
            "min": Bson::MinKey,
            "max": Bson::MaxKey,
        }
    }

    #[test]
    fn reply_builder_bytes_equal_bson_encoding() -> Result<()> {
        let stored = [
            RawDocumentBuf::try_from(&every_type()).map_err(|e| Error::new(ErrorCode::BadValue, e.to_string()))?,
            rawdoc! { "_id": 2 },
        ];
        let mut builder = ReplyBuilder::new();
        builder.open_document(cstr!("cursor"));
        builder.open_array(cstr!("firstBatch"));
        for document in &stored {
            builder.push_document(document);
        }
        builder.close();
        builder.append(cstr!("id"), 0i64);
        builder.append(cstr!("ns"), "db.c");
        builder.close();
        let built = builder.finish()?;
        let expected = doc! { "cursor": { "firstBatch": [every_type(), { "_id": 2 }], "id": 0i64, "ns": "db.c" } };
        assert_eq!(built.as_bytes(), expected.to_vec().map_err(|e| Error::new(ErrorCode::BadValue, e.to_string()))?);
        Ok(())
    }

    #[test]
    fn reply_builder_arrays_of_scalars_and_empty_containers() -> Result<()> {
        let mut builder = ReplyBuilder::with_capacity(0);
        assert!(builder.is_empty());
        builder.open_array(cstr!("a"));
        for n in 0..12 {
            builder.push(n);
        }
        builder.open_document(cstr!("ignored"));
        builder.close();
        builder.close();
        builder.open_array(cstr!("empty"));
        builder.close();
        builder.open_document(cstr!("unclosed"));
        builder.append(cstr!("x"), true);
        let built = builder.finish()?;
        let numbers: Vec<Bson> = (0..12).map(Bson::Int32).chain([Bson::Document(doc! {})]).collect();
        let expected = doc! { "a": numbers, "empty": [], "unclosed": { "x": true } };
        assert_eq!(Document::try_from(built.as_ref()).ok(), Some(expected.clone()));
        assert_eq!(built.as_bytes(), expected.to_vec().unwrap_or_default());
        Ok(())
    }

    #[test]
    fn reply_ok_added_once_either_way() -> Result<()> {
        let owned = Reply::from(doc! { "n": 1 }).with_ok();
        let raw = Reply::from(rawdoc! { "n": 1 }).with_ok();
        assert_eq!(owned.to_document()?, doc! { "n": 1, "ok": 1.0 });
        assert_eq!(raw.to_document()?, doc! { "n": 1, "ok": 1.0 });
        assert_eq!(owned.encode()?.as_bytes(), raw.encode()?.as_bytes());
        let failed = Reply::from(rawdoc! { "ok": 0.0, "code": 2 }).with_ok();
        assert_eq!(failed.code(), Some(2));
        assert_eq!(failed.to_document()?, doc! { "ok": 0.0, "code": 2 });
        let (mut owned, mut raw) = (Reply::from(doc! { "n": 1 }), Reply::from(rawdoc! { "n": 1 }));
        for reply in [&mut owned, &mut raw] {
            reply.append(cstr!("writeConcernError"), Bson::Document(doc! { "code": 64 }))?;
        }
        assert_eq!(owned.encode()?.as_bytes(), raw.encode()?.as_bytes());
        Ok(())
    }

    #[test]
    fn reply_over_internal_size_is_bson_object_too_large() -> Result<()> {
        let big = Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![0; MAX_INTERNAL_SIZE] };
        let mut builder = ReplyBuilder::new();
        builder.open_document(cstr!("cursor"));
        builder.append(cstr!("b"), big);
        let error = Reply::from(builder.finish()?).encode().err();
        assert_eq!(error.as_ref().map(Error::code), Some(ErrorCode::BSONObjectTooLarge));
        assert!(error.is_some_and(|e| e.message().contains("cursor: { ... }")));
        // Right at the limit still goes out.
        let mut builder = ReplyBuilder::new();
        builder.append(
            cstr!("b"),
            Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![0; MAX_INTERNAL_SIZE - 13] },
        );
        let raw = builder.finish()?;
        assert_eq!(raw.as_bytes().len(), MAX_INTERNAL_SIZE);
        assert!(Reply::from(raw).encode().is_ok());
        Ok(())
    }

    #[test]
    fn reply_first_element_names_scalars_briefly() {
        let shown = |d: RawDocumentBuf| first_element(&d);
        assert_eq!(shown(rawdoc! { "explainVersion": "1", "x": 1 }), "explainVersion: \"1\"");
        assert_eq!(shown(rawdoc! { "cursor": { "firstBatch": [] } }), "cursor: { ... }");
        assert_eq!(shown(rawdoc! { "values": [1, 2] }), "values: [ ... ]");
        assert_eq!(shown(rawdoc! { "s": "é".repeat(1000) }).len(), 256);
        assert_eq!(shown(rawdoc! {}), "");
    }
}
