//! Replaying oplog entries onto a data directory being restored (point-in-time recovery):
//! each entry is applied through the storage engine directly, as a secondary would apply it,
//! with mongod's oplog-application leniency where replay needs it (an insert of an `_id`
//! that exists replaces it).
//!
//! A backup holds exactly the changes up to its snapshot's oplog time, and the archived
//! chunks every entry after it, so the entries are applied once each, in order. What each
//! kind does:
//! - `i` upserts the document; `u` applies a `$v: 2` diff to the stored document, or
//!   replaces it whole; `d` deletes by `_id`; `n` (no-op) does nothing;
//! - `c` commands: `create`, `drop`, `renameCollection`, `createIndexes`, `dropIndexes`,
//!   `collMod` (options or an index's `hidden`/`expireAfterSeconds`), `dropDatabase`, and a
//!   transaction's `applyOps` (a transaction split over several entries is applied when its
//!   last entry arrives, so a limit between them leaves it out whole). A view's `create`,
//!   `collMod` and `drop` are recorded as writes to `system.views` too, and those carry them.

use std::sync::Arc;

use bson::{Bson, Document, RawDocument, RawDocumentBuf};

use crate::error::{Error, ErrorCode, Result};
use crate::query::update::diff::apply_diff;
use crate::storage::{IndexSelector, Namespace, Storage};

/// Applies entries in order; keeps a split transaction's changes until its last entry.
pub struct Replayer<'a> {
    storage: &'a Arc<Storage>,
    /// The changes of a transaction's `partialTxn` entries so far.
    pending: Vec<Document>,
    /// Entries applied.
    applied: u64,
}

impl<'a> Replayer<'a> {
    /// A replayer writing into `storage`.
    pub fn new(storage: &'a Arc<Storage>) -> Self {
        Self { storage, pending: Vec::new(), applied: 0 }
    }

    /// Entries applied so far.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Applies one stored oplog entry.
    ///
    /// # Errors
    /// An entry that does not parse or does not apply (its collection missing, a diff that
    /// does not fit the document), with the reason; storage errors.
    pub fn apply(&mut self, entry: &RawDocument) -> Result<()> {
        let entry = Document::try_from(entry).map_err(|e| bad(format!("the entry does not parse: {e}")))?;
        let op = entry.get_str("op").map_err(|_| bad("the entry has no op"))?;
        if op == "c" && entry.get_document("o").is_ok_and(|o| o.contains_key("applyOps")) {
            self.apply_transaction(&entry)?;
        } else {
            self.apply_change(&entry)?;
        }
        self.applied += 1;
        Ok(())
    }

    /// A transaction's `applyOps`: kept while `partialTxn`, applied with what was kept at its
    /// last entry.
    fn apply_transaction(&mut self, entry: &Document) -> Result<()> {
        let o = entry.get_document("o").map_err(|_| bad("applyOps without o"))?;
        let ops = o.get_array("applyOps").map_err(|_| bad("applyOps is not an array"))?;
        for op in ops {
            let Bson::Document(op) = op else { return Err(bad("an applyOps element is not a document")) };
            self.pending.push(op.clone());
        }
        if o.get_bool("partialTxn").unwrap_or(false) {
            return Ok(());
        }
        for op in std::mem::take(&mut self.pending) {
            self.apply_change(&op)?;
        }
        Ok(())
    }

    /// One change: `{op, ns, o, o2}`.
    fn apply_change(&self, change: &Document) -> Result<()> {
        let op = change.get_str("op").map_err(|_| bad("a change has no op"))?;
        let ns = change.get_str("ns").unwrap_or_default();
        let o = change.get_document("o").map_err(|_| bad(format!("the {op} entry on {ns} has no o")))?;
        match op {
            "n" => Ok(()),
            "i" => self.upsert(&Namespace::parse(ns)?, o.clone()),
            "u" => self.update(&Namespace::parse(ns)?, o, change.get_document("o2").ok()),
            "d" => {
                let ns = Namespace::parse(ns)?;
                let Some(collection) = self.storage.collection(&ns) else { return Err(missing(&ns)) };
                let id = o.get("_id").ok_or_else(|| bad("a delete without _id"))?;
                let id = raw_value(id)?;
                let mut writer = self.storage.writer(&collection)?;
                writer.delete(id.as_raw_bson_ref())?;
                writer.commit()?;
                Ok(())
            }
            "c" => self.command(ns.strip_suffix(".$cmd").ok_or_else(|| bad(format!("a command on {ns}")))?, o),
            other => Err(bad(format!("unknown op {other:?}"))),
        }
    }

    fn upsert(&self, ns: &Namespace, document: Document) -> Result<()> {
        let collection = self.storage.collection_or_create(ns)?;
        let document = RawDocumentBuf::try_from(&document).map_err(|e| bad(e.to_string()))?;
        let mut writer = self.storage.writer(&collection)?;
        writer.replace(document)?;
        writer.commit()?;
        Ok(())
    }

    /// An update: a `$v: 2` diff of the document `o2` names, or a replacement.
    fn update(&self, ns: &Namespace, o: &Document, o2: Option<&Document>) -> Result<()> {
        let Some(diff) = o.get_document("diff").ok().filter(|_| o.get("$v").is_some()) else {
            return self.upsert(ns, o.clone());
        };
        let Some(collection) = self.storage.collection(ns) else { return Err(missing(ns)) };
        let named = o2.and_then(|o2| o2.get("_id")).ok_or_else(|| bad("an update without o2._id"))?;
        let id = raw_value(named)?;
        let mut writer = self.storage.writer(&collection)?;
        let stored = writer
            .get(id.as_raw_bson_ref())?
            .ok_or_else(|| bad(format!("the update of {ns} names _id {}, which is not there", named)))?;
        let mut document = Document::try_from(stored.as_ref()).map_err(|e| bad(e.to_string()))?;
        apply_diff(&mut document, diff).map_err(|e| bad(format!("the update of {ns} does not apply: {e}")))?;
        writer.replace(RawDocumentBuf::try_from(&document).map_err(|e| bad(e.to_string()))?)?;
        writer.commit()?;
        Ok(())
    }

    /// A command on database `db`.
    fn command(&self, db: &str, o: &Document) -> Result<()> {
        let Some((name, target)) = o.iter().next() else { return Err(bad("an empty command")) };
        let target = target.as_str().unwrap_or_default();
        let storage = self.storage;
        let is_view = o.contains_key("viewOn");
        match name.as_str() {
            // A view's definition is replayed by its `system.views` write.
            "create" | "collMod" if is_view => Ok(()),
            "create" => {
                let options: Document = o
                    .iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "create" | "idIndex"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                storage.create_collection(&Namespace::new(db, target)?, options).map(|_| ())
            }
            "drop" => storage.drop_collection(&Namespace::new(db, target)?).map(|_| ()),
            "renameCollection" => {
                let to = o.get_str("to").map_err(|_| bad("renameCollection without to"))?;
                let drop_target = !matches!(o.get("dropTarget"), None | Some(Bson::Boolean(false)));
                storage.rename_collection(&Namespace::parse(target)?, &Namespace::parse(to)?, drop_target)
            }
            "createIndexes" => {
                let spec: Document = o.iter().skip(1).map(|(k, v)| (k.clone(), v.clone())).collect();
                storage.create_indexes(&Namespace::new(db, target)?, vec![spec]).map(|_| ())
            }
            "dropIndexes" | "deleteIndexes" => {
                let index = o.get_str("index").map_err(|_| bad("dropIndexes without an index name"))?;
                let selector = IndexSelector::Names(vec![index.to_owned()]);
                storage.drop_indexes(&Namespace::new(db, target)?, &selector).map(|_| ())
            }
            "collMod" => {
                let ns = Namespace::new(db, target)?;
                let Some(collection) = storage.collection(&ns) else { return Err(missing(&ns)) };
                if let Ok(index) = o.get_document("index") {
                    let name = index.get_str("name").map_err(|_| bad("collMod of an index without its name"))?;
                    let hidden = index.get_bool("hidden").ok();
                    let expire = index.get("expireAfterSeconds").and_then(as_i64);
                    return storage.modify_index(&collection, name, hidden, expire).map(|_| ());
                }
                let options: Document = o.iter().skip(1).map(|(k, v)| (k.clone(), v.clone())).collect();
                storage.set_options(&ns, options).map(|_| ())
            }
            "dropDatabase" => {
                for collection in storage.collections_in(db) {
                    storage.drop_collection(&collection.ns)?;
                }
                Ok(())
            }
            other => Err(bad(format!("the command {other:?} is not replayed by this build"))),
        }
    }
}

/// `value` as an owned raw value, for the writer's `_id` lookups.
fn raw_value(value: &Bson) -> Result<bson::RawBson> {
    bson::RawBson::try_from(value.clone()).map_err(|e| bad(e.to_string()))
}

fn bad(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::BadValue, message)
}

fn missing(ns: &Namespace) -> Error {
    Error::new(ErrorCode::NamespaceNotFound, format!("the entry names {ns}, which does not exist"))
}

/// An option's number, stored as any numeric type.
fn as_i64(value: &Bson) -> Option<i64> {
    match value {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        Bson::Double(n) => Some(*n as i64),
        _ => None,
    }
}
