//! The collation a command runs under: its own `collation` option, else the collection's
//! default collation (the `collation` option of `create`), else the simple collation.

use std::sync::Arc;

use bson::{RawBsonRef, RawDocument};

use crate::error::{Error, ErrorCode, Result};
use crate::query::Collation;
use crate::storage::Collection;

/// Resolves the collation of a command or statement. `given` is its `collation` field (an
/// empty document counts as absent, as in mongod) and `field` that field's IDL path
/// (`find.collation`, `update.updates.collation`) for the type error; `None` is the simple
/// collation.
///
/// # Errors
/// 14 TypeMismatch when `given` is not a document, and the spec errors of
/// [`Collation::parse`].
pub fn resolve(
    given: Option<RawBsonRef<'_>>,
    field: &str,
    collection: Option<&Collection>,
) -> Result<Option<Arc<Collation>>> {
    match given {
        // mongod reads an empty collation as none given: the collection's default applies.
        Some(RawBsonRef::Document(spec)) if spec.is_empty() => resolve(None, field, collection),
        Some(RawBsonRef::Document(spec)) => parse(spec),
        Some(other) => Err(Error::new(
            ErrorCode::TypeMismatch,
            format!(
                "BSON field '{field}' is the wrong type '{}', expected type 'object'",
                crate::query::type_name(other.element_type())
            ),
        )),
        None => match collection.and_then(|c| c.options.get_document("collation").ok()) {
            Some(default) => {
                let raw = bson::RawDocumentBuf::try_from(default)
                    .map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
                parse(&raw)
            }
            None => Ok(None),
        },
    }
}

fn parse(spec: &RawDocument) -> Result<Option<Arc<Collation>>> {
    Ok(Collation::parse(spec)?.map(Arc::new))
}
