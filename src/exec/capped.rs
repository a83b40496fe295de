//! Making capped collections from existing ones (`convertToCapped`,
//! `cloneCollectionAsCapped`): the documents are copied, in the source's natural order, into
//! a new capped collection, which keeps the newest that fit its limits.

use std::sync::Arc;

use bson::{Bson, Document, doc};

use crate::error::{Error, ErrorCode, Result};
use crate::exec::insert::BatchedWriter;
use crate::storage::{Direction, Namespace, Storage, TEMPORARY_PREFIX};

/// The options of a capped collection of `size` bytes (rounded up to 256, as `create` does).
fn capped_options(size: i64) -> Document {
    let rounded = (size + 0xff) & !0xff;
    let size = i32::try_from(rounded).map_or(Bson::Int64(rounded), Bson::Int32);
    doc! { "capped": true, "size": size }
}

/// Copies every document of `source` into `target`, a new capped collection of `size` bytes.
/// On failure `target` is dropped again.
///
/// # Errors
/// 26 NamespaceNotFound for a missing source, 48 NamespaceExists for an existing target,
/// storage errors.
pub fn clone_as_capped(storage: &Arc<Storage>, source: &Namespace, target: &Namespace, size: i64) -> Result<()> {
    let from = storage.collection(source).ok_or_else(|| {
        Error::new(ErrorCode::NamespaceNotFound, format!("source collection {source} does not exist"))
    })?;
    if storage.collection(target).is_some() {
        return Err(Error::new(ErrorCode::NamespaceExists, "collection already exists"));
    }
    // The documents as they are now; writes after this moment are not copied, as in mongod.
    let view = storage.snapshot();
    let copy = storage.create_collection(target, capped_options(size))?;
    let copied = (|| {
        let mut batch = BatchedWriter::new(storage, &copy);
        for document in view.scan(&from, Direction::Forward) {
            batch.insert(document?)?;
        }
        batch.flush()
    })();
    if copied.is_err()
        && let Err(error) = storage.drop_collection(target)
    {
        tracing::warn!(target: "STORAGE", id = 7_000_350, namespace = %target, %error, "Cannot drop a failed capped copy");
    }
    copied
}

/// Replaces `ns` by a capped copy of `size` bytes holding its newest documents that fit; its
/// indexes other than `_id_` go, as with mongod.
///
/// # Errors
/// 26 NamespaceNotFound for a missing collection, storage errors.
pub fn convert_to_capped(storage: &Arc<Storage>, ns: &Namespace, size: i64) -> Result<()> {
    let temp = Namespace { db: ns.db.clone(), coll: format!("{TEMPORARY_PREFIX}{}", bson::Uuid::new()) };
    clone_as_capped(storage, ns, &temp, size)?;
    let replaced = storage.replace_collection(&temp, ns);
    if replaced.is_err()
        && let Err(error) = storage.drop_collection(&temp)
    {
        tracing::warn!(target: "STORAGE", id = 7_000_351, namespace = %temp, %error, "Cannot drop a failed capped copy");
    }
    replaced
}
