//! Documents written into one collection through a server in batches, as mongoimport and
//! mongorestore write them: `insert`, or `update` with `upsert` for mongoimport's `upsert`
//! and `merge` modes. A document the server refuses (a duplicate key) is counted and
//! reported and the writing goes on, unless the writes are ordered (`--stopOnError`).

use bson::{Bson, Document, doc};

use super::client::Connection;
use super::error::BackupError;

/// Documents per write command.
const BATCH_DOCUMENTS: usize = 1000;
/// Bytes of documents per write command (whichever bound comes first), well under the
/// 48 MB message limit.
const BATCH_BYTES: usize = 8 << 20;

/// How each document is written (`--mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportMode {
    /// Insert it.
    Insert,
    /// Replace the document with the same upsert fields, or insert it.
    Upsert,
    /// Set its fields on the document with the same upsert fields, or insert it.
    Merge,
}

/// What was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Documents written.
    pub imported: u64,
    /// Documents the server refused.
    pub failed: u64,
}

/// Where and how documents are written.
#[derive(Debug, Clone)]
pub struct WriteTarget {
    /// The database.
    pub db: String,
    /// The collection.
    pub collection: String,
    /// How each document is written.
    pub mode: ImportMode,
    /// The fields that find the document to replace or merge into.
    pub upsert_fields: Vec<String>,
    /// Stop at the first document the server refuses.
    pub ordered: bool,
}

/// Documents gathered into write commands.
pub struct BatchWriter {
    target: WriteTarget,
    pending: Vec<Document>,
    bytes: usize,
    /// What was written so far.
    pub report: ImportReport,
}

impl BatchWriter {
    /// A writer into `target`.
    pub fn new(target: WriteTarget) -> Self {
        Self { target, pending: Vec::new(), bytes: 0, report: ImportReport::default() }
    }

    /// Adds `document`, sending a batch through `connection` when one is full.
    ///
    /// # Errors
    /// As [`Self::flush`].
    pub fn push(&mut self, connection: &mut Connection, document: Document) -> Result<(), BackupError> {
        self.bytes += bson::RawDocumentBuf::try_from(&document).map_or(0, |raw| raw.as_bytes().len());
        self.pending.push(document);
        if self.pending.len() >= BATCH_DOCUMENTS || self.bytes >= BATCH_BYTES {
            self.flush(connection)?;
        }
        Ok(())
    }

    /// Sends what is pending through `connection`.
    ///
    /// # Errors
    /// The server's errors; with ordered writes, its first refusal of a document.
    pub fn flush(&mut self, connection: &mut Connection) -> Result<(), BackupError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let documents = std::mem::take(&mut self.pending);
        self.bytes = 0;
        let count = documents.len() as u64;
        let target = &self.target;
        let command = match target.mode {
            ImportMode::Insert => {
                doc! { "insert": &target.collection, "documents": documents, "ordered": target.ordered }
            }
            mode => {
                let updates: Vec<Document> = documents.into_iter().map(|d| self.update_of(d, mode)).collect();
                doc! { "update": &target.collection, "updates": updates, "ordered": target.ordered }
            }
        };
        let reply = connection.command(&target.db, command)?;
        let errors = reply.get_array("writeErrors").map(Vec::len).unwrap_or(0) as u64;
        if let Ok(errors) = reply.get_array("writeErrors") {
            for error in errors.iter().filter_map(Bson::as_document).take(5) {
                eprintln!(
                    "{}.{}: document refused: {}",
                    target.db,
                    target.collection,
                    error.get_str("errmsg").unwrap_or("(no message)")
                );
            }
            if let Some(first) = errors.first().and_then(Bson::as_document)
                && target.ordered
            {
                let code = first.get_i32("code").unwrap_or(0);
                return Err(BackupError::Server {
                    code,
                    // mongod's write errors carry no code name.
                    code_name: crate::error::ErrorCode::from_code(code)
                        .map(|c| c.name().to_owned())
                        .unwrap_or_default(),
                    message: first.get_str("errmsg").unwrap_or("").to_owned(),
                });
            }
        }
        self.report.failed += errors;
        self.report.imported += count - errors;
        Ok(())
    }

    /// The update statement that writes `document` in `mode` (upsert or merge).
    fn update_of(&self, document: Document, mode: ImportMode) -> Document {
        let filter: Document = self
            .target
            .upsert_fields
            .iter()
            .map(|field| (field.clone(), document.get(field).cloned().unwrap_or(Bson::Null)))
            .collect();
        let update = match mode {
            ImportMode::Merge => {
                let id = document.get("_id").cloned();
                let fields: Document = document.into_iter().filter(|(k, _)| k != "_id").collect();
                let mut update = doc! { "$set": fields };
                if let Some(id) = id {
                    update.insert("$setOnInsert", doc! { "_id": id });
                }
                Bson::Document(update)
            }
            _ => Bson::Document(document),
        };
        doc! { "q": filter, "u": update, "upsert": true }
    }
}
