//! Collections and indexes a transaction creates (mongod 4.4+ allows both): `create`, an
//! insert into a collection that does not exist, and `createIndexes` on a collection the
//! transaction created or that does not exist. They stay in the transaction, seen by its own
//! statements only; its commit adds them to the catalog in the same batch as its writes, with
//! their `create` and `createIndexes` in its `applyOps`. An abort leaves nothing behind.

use std::sync::Arc;

use super::engine::{Batch, Space};
use bson::{Document, doc};

use super::Index;
use super::catalog::{self, Collection};
use super::index_ddl::{Added, CreatedIndexes, index_entries};
use super::oplog::{self, Entry};
use super::txn::{Transaction, write_conflict};
use super::{NEXT_ID_KEY, Namespace, Storage, Totals, totals_key};
use crate::error::{Error, ErrorCode, Result};

impl Storage {
    /// Creates the collection `ns` in `txn`.
    ///
    /// # Errors
    /// 48 NamespaceExists if it exists (in the catalog or in `txn`); 263
    /// OperationNotSupportedInTransaction for a capped collection (views are refused by
    /// `create`).
    pub fn create_in_transaction(
        &self,
        txn: &mut Transaction,
        ns: &Namespace,
        options: Document,
    ) -> Result<Arc<Collection>> {
        if self.collection(ns).is_some() || txn.created_collection(ns).is_some() {
            return Err(Error::new(ErrorCode::NamespaceExists, format!("Collection {ns} already exists.")));
        }
        if options.get_bool("capped").unwrap_or(false) {
            return Err(Error::new(
                ErrorCode::OperationNotSupportedInTransaction,
                "Cannot create a capped collection in a multi-document transaction.",
            ));
        }
        let (collection, _) = self.catalog.new_collection(ns.clone(), options);
        txn.created.push(collection.clone());
        Ok(collection)
    }

    /// Builds the indexes of `specs` on `ns` in `txn`: a collection `txn` created (its
    /// documents get their entries), or one it creates now.
    ///
    /// # Errors
    /// 263 OperationNotSupportedInTransaction on a collection that existed before; as
    /// [`Storage::create_indexes`].
    pub fn create_indexes_in_transaction(
        &self,
        txn: &mut Transaction,
        ns: &Namespace,
        specs: Vec<Document>,
    ) -> Result<CreatedIndexes> {
        let (collection, created_collection) = match txn.created_collection(ns) {
            Some(collection) => (collection, false),
            None if self.collection(ns).is_some() => {
                return Err(Error::new(
                    ErrorCode::OperationNotSupportedInTransaction,
                    format!("Cannot create new indexes on existing collection {ns} in a multi-document transaction."),
                ));
            }
            None => (self.create_in_transaction(txn, ns, Document::new())?, true),
        };
        let current = collection.indexes();
        let Added { indexes, built } = self.added_indexes(ns, &current, specs)?;
        for index in &built {
            txn.index_written_documents(&collection, index)?;
        }
        let outcome = CreatedIndexes { created_collection, before: current.len(), after: indexes.len() };
        collection.set_indexes(indexes.into());
        Ok(outcome)
    }
}

impl Transaction {
    /// Adds the entries `index` (new on `collection`, which this transaction created) needs
    /// for the documents this transaction wrote there.
    ///
    /// # Errors
    /// 11000 for documents that break a new unique index; key generation errors.
    pub(super) fn index_written_documents(&mut self, collection: &Collection, index: &Index) -> Result<()> {
        let prefix = collection.prefix();
        let written = self
            .overlay
            .docs
            .range(prefix.to_vec()..)
            .take_while(|(key, _)| key.starts_with(&prefix))
            .filter_map(|(key, value)| value.as_ref().map(|value| Ok((key, value))));
        let entries = index_entries(collection, index, written)?;
        Arc::make_mut(&mut self.overlay).index.extend(entries.into_iter().map(|(key, value)| (key, Some(value))));
        Ok(())
    }

    /// Adds to `batch` the catalog entries of the collections this transaction created and
    /// returns their `create` and `createIndexes` entries, which its `applyOps` records before
    /// its writes. Called by its commit, under the DDL lock.
    ///
    /// # Errors
    /// 112 WriteConflict when another client created one of them meanwhile.
    pub(super) fn creations_into(&self, batch: &mut Batch) -> Result<Vec<Entry>> {
        let storage = &self.storage;
        let mut logged = Vec::new();
        for collection in &self.created {
            if storage.collection(&collection.ns).is_some() {
                return Err(write_conflict());
            }
            batch.insert(Space::Meta, catalog::entry_key(&collection.ns), catalog::entry_value(collection)?);
            if !self.touched.contains_key(&collection.id) {
                batch.insert(Space::Meta, totals_key(collection), Totals::default().encode());
            }
            if storage.oplog.is_on() && oplog::is_logged(&collection.ns) {
                let db = &collection.ns.db;
                logged.push(Entry::command(db, Some(collection.uuid), &create_command(collection))?);
                for index in collection.indexes().iter().filter(|index| !index.is_named_id()) {
                    let mut o = doc! { "createIndexes": &collection.ns.coll };
                    o.extend(index.spec.clone());
                    logged.push(Entry::command(db, Some(collection.uuid), &o)?);
                }
            }
        }
        if !self.created.is_empty() {
            batch.insert(Space::Meta, NEXT_ID_KEY, storage.catalog.peek_next_id().to_be_bytes());
        }
        Ok(logged)
    }
}

/// The `create` command an oplog entry records for `collection`: its options, and its `_id`
/// index's spec when it has one (a clustered collection has its `clusteredIndex` instead).
pub(super) fn create_command(collection: &Collection) -> Document {
    let mut logged = doc! { "create": &collection.ns.coll };
    logged.extend(collection.options.clone());
    if !collection.is_clustered() && collection.indexes().iter().any(|index| index.is_named_id()) {
        logged.insert("idIndex", catalog::id_index_spec());
    }
    logged
}
