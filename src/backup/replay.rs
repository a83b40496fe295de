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
use crate::storage::{IndexSelector, Namespace, Storage, Writer};

/// How many document writes of one collection go into one storage batch.
const RUN_LENGTH: usize = 1_000;

/// Applies entries in order; keeps a split transaction's changes until its last entry, and
/// consecutive document writes to one collection until they fill a batch.
pub struct Replayer<'a> {
    storage: &'a Arc<Storage>,
    /// The changes of a transaction's `partialTxn` entries so far.
    pending: Vec<Document>,
    /// Inserts, updates and deletes not applied yet, each with its entry's offset: one run on
    /// one collection, applied in one batch when something else comes or it is full.
    run: Vec<(u64, Document)>,
    /// Entries applied.
    applied: u64,
}

/// An entry that cannot be applied: the offset of the entry (as given), and why.
pub type ReplayError = (u64, Error);

impl<'a> Replayer<'a> {
    /// A replayer writing into `storage`.
    pub fn new(storage: &'a Arc<Storage>) -> Self {
        Self { storage, pending: Vec::new(), run: Vec::new(), applied: 0 }
    }

    /// Entries applied so far (after [`Replayer::finish`], all those given).
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Applies one stored oplog entry found at `offset`, or queues it with the run of
    /// document writes before it.
    ///
    /// # Errors
    /// An entry that does not parse or does not apply (its collection missing, a diff that
    /// does not fit the document), with its offset and the reason; storage errors. The
    /// entry at fault may be an earlier one of the run.
    pub fn apply(&mut self, offset: u64, entry: &RawDocument) -> std::result::Result<(), ReplayError> {
        let entry = Document::try_from(entry).map_err(|e| (offset, bad(format!("the entry does not parse: {e}"))))?;
        let op = entry.get_str("op").map_err(|_| (offset, bad("the entry has no op")))?;
        if matches!(op, "i" | "u" | "d") {
            let same_collection =
                self.run.first().is_none_or(|(_, first)| first.get_str("ns").ok() == entry.get_str("ns").ok());
            if !same_collection || self.run.len() >= RUN_LENGTH {
                self.finish()?;
            }
            self.run.push((offset, entry));
            return Ok(());
        }
        self.finish()?;
        let applied = if op == "c" && entry.get_document("o").is_ok_and(|o| o.contains_key("applyOps")) {
            self.apply_transaction(&entry)
        } else {
            self.apply_change(&entry)
        };
        applied.map_err(|e| (offset, e))?;
        self.applied += 1;
        Ok(())
    }

    /// Applies the queued run of document writes, in one batch.
    ///
    /// # Errors
    /// As [`Replayer::apply`].
    pub fn finish(&mut self) -> std::result::Result<(), ReplayError> {
        let run = std::mem::take(&mut self.run);
        self.applied += self.write_batch(run.iter().map(|(offset, change)| (*offset, change)))?;
        Ok(())
    }

    /// Applies document writes to one collection (the first's `ns`) in one storage batch;
    /// returns how many. An error carries the offset of the write at fault.
    fn write_batch<'d>(
        &self,
        writes: impl IntoIterator<Item = (u64, &'d Document)>,
    ) -> std::result::Result<u64, ReplayError> {
        let mut writes = writes.into_iter().peekable();
        let Some(&(first_offset, first)) = writes.peek() else { return Ok(0) };
        let at_first = |e: Error| (first_offset, e);
        let ns = Namespace::parse(first.get_str("ns").unwrap_or_default()).map_err(at_first)?;
        let collection = match first.get_str("op") {
            Ok("i") => self.storage.collection_or_create(&ns).map_err(at_first)?,
            _ => self.storage.collection(&ns).ok_or_else(|| at_first(missing(&ns)))?,
        };
        let mut writer = self.storage.writer(&collection).map_err(at_first)?;
        let mut count = 0;
        for (offset, change) in writes {
            apply_document_write(&mut writer, &ns, change).map_err(|e| (offset, e))?;
            count += 1;
        }
        writer.commit().map_err(at_first)?;
        Ok(count)
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

    /// One change of a transaction, or a command: `{op, ns, o, o2}`.
    fn apply_change(&self, change: &Document) -> Result<()> {
        let op = change.get_str("op").map_err(|_| bad("a change has no op"))?;
        let ns = change.get_str("ns").unwrap_or_default();
        match op {
            "n" => Ok(()),
            "i" | "u" | "d" => self.write_batch([(0, change)]).map(|_| ()).map_err(|(_, e)| e),
            "c" => {
                let o = change.get_document("o").map_err(|_| bad(format!("the command on {ns} has no o")))?;
                self.command(ns.strip_suffix(".$cmd").ok_or_else(|| bad(format!("a command on {ns}")))?, o)
            }
            other => Err(bad(format!("unknown op {other:?}"))),
        }
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

/// Applies an insert (as an upsert), an update (a `$v: 2` diff of the document `o2` names,
/// or a replacement) or a delete (by `_id`) through `writer`, a writer of `ns`.
fn apply_document_write(writer: &mut Writer<'_>, ns: &Namespace, change: &Document) -> Result<()> {
    let op = change.get_str("op").map_err(|_| bad("a change has no op"))?;
    let o = change.get_document("o").map_err(|_| bad(format!("the {op} entry on {ns} has no o")))?;
    let raw = |document: &Document| RawDocumentBuf::try_from(document).map_err(|e| bad(e.to_string()));
    match op {
        "i" => writer.replace(raw(o)?),
        "d" => {
            let id = o.get("_id").ok_or_else(|| bad("a delete without _id"))?;
            writer.delete(raw_value(id)?.as_raw_bson_ref())
        }
        _ => {
            let Some(diff) = o.get_document("diff").ok().filter(|_| o.get("$v").is_some()) else {
                return writer.replace(raw(o)?);
            };
            let o2 = change.get_document("o2").ok();
            let named = o2.and_then(|o2| o2.get("_id")).ok_or_else(|| bad("an update without o2._id"))?;
            let stored = writer
                .get(raw_value(named)?.as_raw_bson_ref())?
                .ok_or_else(|| bad(format!("the update of {ns} names _id {named}, which is not there")))?;
            let mut document = Document::try_from(stored.as_ref()).map_err(|e| bad(e.to_string()))?;
            apply_diff(&mut document, diff).map_err(|e| bad(format!("the update of {ns} does not apply: {e}")))?;
            writer.replace(raw(&document)?)
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

#[cfg(test)]
mod tests {
    use bson::{doc, rawdoc};

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn entry(op: &str, ns: &str, o: Document, o2: Option<Document>) -> Result<RawDocumentBuf, bson::error::Error> {
        let mut entry = doc! { "op": op, "ns": ns, "o": o };
        if let Some(o2) = o2 {
            entry.insert("o2", o2);
        }
        RawDocumentBuf::try_from(&entry)
    }

    #[test]
    fn replay_batches_runs_in_order_and_names_the_entry_that_does_not_apply() -> TestResult {
        let scratch = tempfile::tempdir()?;
        let storage = Arc::new(Storage::open(scratch.path())?);
        let mut replayer = Replayer::new(&storage);
        for (offset, id) in [(0, 1), (10, 2), (20, 3)] {
            replayer.apply(offset, &entry("i", "app.c", doc! { "_id": id, "n": 0 }, None)?).map_err(|e| e.1)?;
        }
        let diff = doc! { "$v": 2, "diff": { "u": { "n": 5 } } };
        replayer.apply(30, &entry("u", "app.c", diff, Some(doc! { "_id": 2 }))?).map_err(|e| e.1)?;
        replayer.apply(40, &entry("d", "app.c", doc! { "_id": 3 }, None)?).map_err(|e| e.1)?;
        assert_eq!(replayer.applied(), 0, "a run waits for its end");
        // A command ends the run: the writes before it are applied first.
        replayer.apply(50, &entry("c", "app.$cmd", doc! { "create": "d" }, None)?).map_err(|e| e.1)?;
        assert_eq!(replayer.applied(), 6);
        let c = storage.collection(&Namespace::new("app", "c")?).ok_or("app.c")?;
        let stored: Vec<_> = storage.snapshot().scan(&c, crate::storage::Direction::Forward).collect::<Result<_>>()?;
        assert_eq!(stored, [rawdoc! { "_id": 1, "n": 0 }, rawdoc! { "_id": 2, "n": 5 }]);
        assert!(storage.collection(&Namespace::new("app", "d")?).is_some());

        // An update of a document that is not there fails at its own offset, at the run's end.
        let diff = doc! { "$v": 2, "diff": { "u": { "n": 1 } } };
        replayer.apply(60, &entry("i", "app.c", doc! { "_id": 4 }, None)?).map_err(|e| e.1)?;
        replayer.apply(70, &entry("u", "app.c", diff, Some(doc! { "_id": 9 }))?).map_err(|e| e.1)?;
        let failed = replayer.finish().err().map(|(offset, e)| (offset, e.message().to_owned()));
        assert_eq!(failed, Some((70, "the update of app.c names _id 9, which is not there".to_owned())));
        Ok(())
    }
}
