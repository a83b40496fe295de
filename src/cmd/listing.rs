//! The cursor replies of the listing commands (`listCollections`, `listIndexes`): a first
//! batch of `cursor.batchSize` entries (all by default), the rest parked as a cursor that
//! `getMore` reads, as mongod.

use std::sync::Arc;

use bson::{Bson, Document, RawBsonRef, RawDocumentBuf, doc};

use super::{CommandRequest, RequestCtx, type_name};
use crate::error::{Error, ErrorCode, Result};
use crate::exec::cursor::{self, Batch, FirstBatch};
use crate::state::cursors::DocumentStream;

/// `cursor.batchSize` of a listing command.
fn batch_size(req: &CommandRequest) -> Result<Option<usize>> {
    let Some(cursor) = req.doc_arg("cursor")? else { return Ok(None) };
    let value = match cursor.get("batchSize").ok().flatten() {
        None => return Ok(None),
        Some(RawBsonRef::Int32(n)) => i64::from(n),
        Some(RawBsonRef::Int64(n)) => n,
        Some(RawBsonRef::Double(n)) => n as i64,
        Some(other) => {
            return Err(Error::new(
                ErrorCode::TypeMismatch,
                format!(
                    "BSON field '{}.cursor.batchSize' is the wrong type '{}', expected types '[long, int, decimal, \
                     double]'",
                    req.name(),
                    type_name(other.element_type())
                ),
            ));
        }
    };
    if value < 0 {
        return Err(Error::new(
            ErrorCode::Location51024,
            format!("BSON field 'batchSize' value must be >= 0, actual value '{value}'"),
        ));
    }
    Ok(Some(usize::try_from(value).unwrap_or(usize::MAX)))
}

/// The reply `{cursor: {id, ns, firstBatch}}` over `entries`, parking a cursor on `ns` when
/// they do not all fit the first batch.
///
/// # Errors
/// 14 / 51024 for a malformed `cursor.batchSize`.
pub fn first_batch(ctx: &RequestCtx<'_>, req: &CommandRequest, ns: String, entries: Vec<Document>) -> Result<Document> {
    let batch_size = batch_size(req)?;
    let raw = entries
        .iter()
        .map(|entry| RawDocumentBuf::try_from(entry).map_err(|e| Error::new(ErrorCode::InternalError, e.to_string())))
        .collect::<Result<Vec<_>>>()?;
    let stream: DocumentStream = Box::new(raw.into_iter().map(Ok));
    let first = FirstBatch { size: Some(batch_size.unwrap_or(usize::MAX)), ..FirstBatch::default() };
    // mongod puts `id` before the batch here: the batch is taken before the reply is built.
    let mut batch = Vec::new();
    let take = |doc: &bson::RawDocument| {
        let entry = Document::try_from(doc).map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))?;
        batch.push(Bson::Document(entry));
        Ok(())
    };
    let Batch { cursor_id: id, .. } = cursor::open(
        &ctx.state.cursors,
        (ctx.client.auth.names.clone(), ctx.session),
        ns.clone(),
        stream,
        Arc::default(),
        first,
        take,
    )?;
    Ok(doc! { "cursor": { "id": id, "ns": ns, "firstBatch": batch } })
}
