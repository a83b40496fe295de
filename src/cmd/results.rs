//! What the read commands share: starting a query for the request, the `hint` argument, and
//! the cursor reply each answers with (`find`, `aggregate`, `getMore`, and reads of views).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bson::RawDocument;
use bson::raw::{CStr, cstr};

use super::target::Target;
use super::{CommandRequest, Reply, ReplyBuilder, RequestCtx};
use crate::error::Result;
use crate::exec::Query;
use crate::exec::cursor::{self, Batch, FirstBatch};
use crate::exec::planner::hint_of;
use crate::op::ExecStats;
use crate::query::limits;
use crate::state::cursors::DocumentStream;
use crate::storage::Namespace;

/// Starts `query` on `target` for the request: its work counts as the request's.
pub(super) fn stream(ctx: &RequestCtx<'_>, target: &Target, query: Query) -> Result<(DocumentStream, Arc<ExecStats>)> {
    let stats = Arc::new(ExecStats::default());
    ctx.op.track(&stats);
    let (_, stream) = query.run(ctx.state, target.collection.as_ref(), stats.clone())?;
    Ok((stream, stats))
}

/// The `hint` argument: an index name or key pattern (checked against the indexes when the
/// query is planned).
pub(super) fn hint_arg(req: &CommandRequest) -> Result<Option<bson::RawBson>> {
    hint_of(req.get("hint"))
        .map(|hint| hint.map(bson::RawBson::from))
        .map_err(|other| req.wrong_type("hint", other, "object or string"))
}

/// A cursor reply, `{cursor: {firstBatch | nextBatch: [...], id, ns}}`, built as its batch is
/// taken: each document goes from the bytes the executor produced into the reply, once.
pub(super) struct CursorReply(ReplyBuilder);

impl CursorReply {
    /// Starts the reply; `batch` names the batch (`firstBatch` or `nextBatch`).
    pub(super) fn start(batch: &CStr) -> Self {
        let mut builder = ReplyBuilder::with_capacity(256);
        builder.open_document(cstr!("cursor"));
        builder.open_array(batch);
        Self(builder)
    }

    /// Adds a document to the batch. One nested deeper than mongod reads (stored by an older
    /// version) fails the batch with 15 Overflow naming its `_id`, as mongod's `validateBSON`.
    pub(super) fn take(&mut self, document: &RawDocument) -> Result<()> {
        limits::check_read_depth(document)?;
        self.0.push_document(document);
        Ok(())
    }

    /// Ends the batch and the reply, with the cursor to continue with on `ns`.
    pub(super) fn finish(mut self, cursor_id: i64, ns: &str) -> Result<Reply> {
        self.0.close();
        self.0.append(cstr!("id"), cursor_id);
        self.0.append(cstr!("ns"), ns);
        Ok(Reply::from(self.0.finish()?))
    }
}

/// Builds a first-batch cursor reply, parking the cursor when documents remain.
pub(super) fn cursor_reply(
    ctx: &RequestCtx<'_>,
    ns: &Namespace,
    (stream, stats): (DocumentStream, Arc<ExecStats>),
    first: FirstBatch,
) -> Result<Reply> {
    let mut reply = CursorReply::start(cstr!("firstBatch"));
    let full = ns.full();
    let Batch { count, cursor_id } =
        cursor::open(&ctx.state.cursors, ctx.client.auth.names.clone(), full.clone(), stream, stats, first, |doc| {
            reply.take(doc)
        })?;
    ctx.op.docs.returned.fetch_add(count as u64, Ordering::Relaxed);
    reply.finish(cursor_id, &full)
}
