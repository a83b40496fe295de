//! What a data command runs on and under, resolved once per command: its namespace, its
//! collection (one catalog lookup, shared by collation, planning and execution), its
//! collation, and its `maxTimeMS` deadline (the operation's, measured from when its message
//! was decoded, which the executor's interrupt checks and the cursor's batches share).

use std::sync::Arc;
use std::time::Instant;

use bson::RawBsonRef;

use super::{RequestCtx, collation};
use crate::error::Result;
use crate::query::Collation;
use crate::storage::{Collection, Namespace, Storage, Transaction};

/// A command's resolved target.
#[derive(Debug, Clone)]
pub(super) struct Target {
    /// The namespace the command names.
    pub(super) ns: Namespace,
    /// The collection there (`None`: it does not exist).
    pub(super) collection: Option<Arc<Collection>>,
    /// The command's collation: its own, else the collection's default (`None`: simple).
    pub(super) collation: Option<Arc<Collation>>,
    /// The `maxTimeMS` deadline.
    pub(super) deadline: Option<Instant>,
}

impl Target {
    /// Looks `ns` up and resolves the command's `collation` field (`given`, at IDL path
    /// `field` for its type error) against the collection's default.
    ///
    /// # Errors
    /// The collation's type and spec errors.
    pub(super) fn resolve(
        ctx: &RequestCtx<'_>,
        ns: Namespace,
        given: Option<RawBsonRef<'_>>,
        field: &str,
    ) -> Result<Self> {
        let collection = ctx.collection(&ns);
        let collation = collation::resolve(given, field, collection.as_deref())?;
        Ok(Self { ns, collection, collation, deadline: ctx.op.deadline() })
    }

    /// The target of a write command on `ns`: looked up once; its statements resolve their own
    /// collations ([`Target::statement_collation`]), so the command has none.
    pub(super) fn for_write(ctx: &RequestCtx<'_>, ns: Namespace) -> Self {
        let collection = ctx.collection(&ns);
        Self { ns, collection, collation: None, deadline: ctx.op.deadline() }
    }

    /// The collection a write goes to: created (once) when the write may insert, in `txn`
    /// when it runs in one; else `None` if it does not exist.
    ///
    /// # Errors
    /// As [`collection_or_create`].
    pub(super) fn collection_for_write(
        &mut self,
        storage: &Storage,
        txn: Option<&mut Transaction>,
        may_insert: bool,
    ) -> Result<Option<Arc<Collection>>> {
        if self.collection.is_none() {
            if may_insert {
                self.collection = Some(collection_or_create(storage, txn, &self.ns)?);
            } else {
                // No collection of that name: it may be a view, which takes no writes.
                crate::exec::views::refuse_view(storage, &self.ns)?;
            }
        }
        Ok(self.collection.clone())
    }

    /// The collation of one statement of a write (its own `collation` field, `given`), against
    /// the same collection's default.
    ///
    /// # Errors
    /// As [`Target::resolve`].
    pub(super) fn statement_collation(
        &self,
        given: Option<RawBsonRef<'_>>,
        field: &str,
    ) -> Result<Option<Arc<Collation>>> {
        collation::resolve(given, field, self.collection.as_deref())
    }
}

/// The collection at `ns` for a write that inserts: the existing one (`txn`'s own first),
/// else a new one, created in `txn` when the write runs in a transaction (others see it once
/// the transaction commits).
///
/// # Errors
/// 166 CommandNotSupportedOnView for a view; storage errors creating it.
pub(super) fn collection_or_create(
    storage: &Storage,
    txn: Option<&mut Transaction>,
    ns: &Namespace,
) -> Result<Arc<Collection>> {
    if let Some(collection) = txn.as_ref().and_then(|txn| txn.created_collection(ns)).or_else(|| storage.collection(ns))
    {
        return Ok(collection);
    }
    // No collection of that name: it may be a view, which takes no writes.
    crate::exec::views::refuse_view(storage, ns)?;
    match txn {
        Some(txn) => storage.create_in_transaction(txn, ns, bson::Document::new()),
        None => storage.collection_or_create(ns),
    }
}
