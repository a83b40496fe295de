//! Documents as they are stored: what mongod does to a document before inserting it (`_id`
//! first, generated when missing; allowed `_id` types; the size and nesting limits), shared by
//! the insert commands, upserts and the stages that write (`$out`, `$merge`); and the batched
//! writer those stages and the capped conversions copy documents with.

use std::sync::Arc;

use bson::oid::ObjectId;
use bson::{RawBsonRef, RawDocument, RawDocumentBuf};

use monarch_wire::MAX_BSON_OBJECT_SIZE;

use crate::error::{Error, ErrorCode, Result};
use crate::query::limits;
use crate::storage::{Collection, Storage, Writer};

/// Prepares a document for insertion as mongod does: `_id` first (generated when missing),
/// `_id` of an allowed type, size within 16 MiB, nesting within 180 levels.
pub fn prepare_for_insert(document: &RawDocument) -> Result<RawDocumentBuf> {
    let stored = match stored_as_sent(document)? {
        Some(stored) => stored,
        None => with_id_first(document)?,
    };
    check_size(&stored)?;
    // mongod checks the nesting right after the size (`fixDocumentForInsert`).
    limits::check_insert_depth(&stored)?;
    Ok(stored)
}

/// The document's bytes as they are, when its `_id` comes first and only once: drivers send
/// documents so, and a copy of the bytes is much cheaper than rebuilding them field by field.
/// Every element is still parsed, so malformed BSON gets the same error as on the slow path.
fn stored_as_sent(document: &RawDocument) -> Result<Option<RawDocumentBuf>> {
    let mut elements = document.iter();
    let Some(first) = elements.next() else {
        return Ok(None);
    };
    let (key, id) = first.map_err(invalid_bson)?;
    if key.as_str() != "_id" {
        return Ok(None);
    }
    check_id(id)?;
    for element in elements {
        let (key, _) = element.map_err(invalid_bson)?;
        if key.as_str() == "_id" {
            return Ok(None);
        }
    }
    Ok(Some(document.to_owned()))
}

fn invalid_bson(error: bson::error::Error) -> Error {
    Error::new(ErrorCode::InvalidBSON, error.to_string())
}

/// The document rebuilt with its (first, or generated) `_id` in front and no other `_id`.
fn with_id_first(document: &RawDocument) -> Result<RawDocumentBuf> {
    let mut out = RawDocumentBuf::new();
    match document.get("_id").map_err(invalid_bson)? {
        Some(id) => {
            check_id(id)?;
            out.append(bson::raw::cstr!("_id"), id);
        }
        None => out.append(bson::raw::cstr!("_id"), ObjectId::new()),
    }
    for element in document {
        let (key, value) = element.map_err(invalid_bson)?;
        if key.as_str() != "_id" {
            out.append(key, value);
        }
    }
    Ok(out)
}

/// mongod's rules for `_id`: not an array, regex or undefined, and no `$`-prefixed fields
/// inside a document `_id`.
fn check_id(id: RawBsonRef<'_>) -> Result<()> {
    if let RawBsonRef::Document(fields) = id
        && let Some(Ok((key, _))) = fields.iter().find(|f| f.as_ref().is_ok_and(|(k, _)| k.as_str().starts_with('$')))
    {
        return Err(Error::new(
            ErrorCode::DollarPrefixedFieldName,
            format!("_id fields may not contain '$'-prefixed fields: {} is not valid for storage.", key.as_str()),
        ));
    }
    let kind = match id {
        RawBsonRef::Array(_) => "array",
        RawBsonRef::RegularExpression(_) => "regex",
        RawBsonRef::Undefined => "undefined",
        _ => return Ok(()),
    };
    Err(Error::new(ErrorCode::InvalidIdField, format!("The '_id' value cannot be of type {kind}")))
}

/// mongod's limit on a stored document's size.
///
/// # Errors
/// 10334 BSONObjectTooLarge past 16 MiB.
pub fn check_size(document: &RawDocumentBuf) -> Result<()> {
    let size = document.as_bytes().len();
    if size > MAX_BSON_OBJECT_SIZE {
        return Err(Error::new(
            ErrorCode::BSONObjectTooLarge,
            format!("object to insert too large. size in bytes: {size}, max size: {MAX_BSON_OBJECT_SIZE}"),
        ));
    }
    Ok(())
}

/// Documents written per storage batch: big enough to amortise a commit, small enough that a
/// batch's memory stays modest.
const DOCUMENTS_PER_BATCH: usize = 1000;
/// Bytes of inserted documents per storage batch (whichever bound comes first): a thousand
/// large documents would otherwise hold up to 16 GB in one batch.
const BYTES_PER_BATCH: usize = 8 << 20;

/// A storage batch on one collection, committed every [`DOCUMENTS_PER_BATCH`] documents or
/// [`BYTES_PER_BATCH`] bytes of documents inserted through [`BatchedWriter::insert`].
pub struct BatchedWriter<'a> {
    storage: &'a Storage,
    collection: &'a Arc<Collection>,
    writer: Option<Writer<'a>>,
    pending: usize,
    pending_bytes: usize,
}

impl<'a> BatchedWriter<'a> {
    /// A batched writer of `collection`, with no batch open yet.
    pub fn new(storage: &'a Storage, collection: &'a Arc<Collection>) -> Self {
        Self { storage, collection, writer: None, pending: 0, pending_bytes: 0 }
    }

    /// The open batch, committing the previous one first when it is full.
    ///
    /// # Errors
    /// Storage errors.
    pub fn writer(&mut self) -> Result<&mut Writer<'a>> {
        if self.pending >= DOCUMENTS_PER_BATCH || self.pending_bytes >= BYTES_PER_BATCH {
            self.flush()?;
        }
        self.pending += 1;
        match &mut self.writer {
            Some(writer) => Ok(writer),
            slot => Ok(slot.insert(self.storage.writer(self.collection)?)),
        }
    }

    /// Inserts `document` into the open batch, counting its bytes towards the batch's bound.
    ///
    /// # Errors
    /// The writer's (a duplicate key, storage errors).
    pub fn insert(&mut self, document: RawDocumentBuf) -> Result<()> {
        let size = document.as_bytes().len();
        self.writer()?.insert(document)?;
        self.pending_bytes += size;
        Ok(())
    }

    /// Runs `write` with this batch. When it meets a document an open transaction holds, the
    /// batch so far commits (the transaction's commit needs the collection's lock) and
    /// `write` runs again once a transaction has ended (see [`Storage::retry_while_held`]);
    /// `check` ends the wait with its error.
    ///
    /// # Errors
    /// `write`'s; `check`'s; storage errors.
    pub fn retry_while_held<T>(
        &mut self,
        check: impl Fn() -> Result<()>,
        mut write: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<T> {
        let storage = self.storage;
        storage.retry_while_held(check, || {
            let outcome = write(self);
            if outcome.as_ref().is_err_and(crate::storage::is_held_by_transaction) {
                self.flush()?;
            }
            outcome
        })
    }

    /// Commits the open batch, if any.
    ///
    /// # Errors
    /// Storage errors.
    pub fn flush(&mut self) -> Result<()> {
        self.pending = 0;
        self.pending_bytes = 0;
        match self.writer.take() {
            Some(writer) => writer.commit().map(|_| ()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::rawdoc;

    #[test]
    fn a_document_with_its_id_first_is_stored_byte_for_byte() -> Result<()> {
        let sent = rawdoc! { "_id": 7, "a": "x", "b": { "c": [1, 2] } };
        assert_eq!(prepare_for_insert(&sent)?.as_bytes(), sent.as_bytes());
        Ok(())
    }

    #[test]
    fn the_id_moves_first_and_only_the_first_id_is_kept() -> Result<()> {
        let later = rawdoc! { "a": 1, "_id": 2 };
        assert_eq!(prepare_for_insert(&later)?, rawdoc! { "_id": 2, "a": 1 });
        let twice = rawdoc! { "_id": 1, "a": 1, "_id": 2 };
        assert_eq!(prepare_for_insert(&twice)?, rawdoc! { "_id": 1, "a": 1 });
        let generated = prepare_for_insert(&rawdoc! { "a": 1 })?;
        let first = generated.iter().next().transpose().map_err(invalid_bson)?;
        assert!(matches!(first, Some((key, RawBsonRef::ObjectId(_))) if key.as_str() == "_id"));
        Ok(())
    }

    #[test]
    fn malformed_bson_after_a_leading_id_is_refused() {
        let mut bytes = rawdoc! { "_id": 1, "s": "ok" }.into_bytes();
        // The string's last byte before its terminator becomes invalid UTF-8.
        let at = bytes.len() - 3;
        if let Some(byte) = bytes.get_mut(at) {
            *byte = 0xff;
        }
        let document = RawDocument::from_bytes(&bytes).map_err(invalid_bson);
        let code = document.and_then(prepare_for_insert).err().map(|e| e.code());
        assert_eq!(code, Some(ErrorCode::InvalidBSON));
    }

    #[test]
    fn an_array_id_is_refused_on_the_fast_path_too() {
        let code = prepare_for_insert(&rawdoc! { "_id": [1], "a": 1 }).err().map(|e| e.code());
        assert_eq!(code, Some(ErrorCode::InvalidIdField));
    }
}
