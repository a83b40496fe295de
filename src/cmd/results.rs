//! What the read commands share: starting a query for the request, the `hint` argument, and
//! the cursor reply each answers with (`find`, `aggregate`, `getMore`, and reads of views).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bson::raw::{CStr, cstr};
use bson::{RawDocument, RawDocumentBuf};

use super::target::Target;
use super::{CommandRequest, Reply, ReplyBuilder, RequestCtx};
use crate::error::{Error, ErrorCode, Result};
use crate::exec::Query;
use crate::exec::cursor::{self, Batch, FirstBatch};
use crate::exec::planner::hint_of;
use crate::op::ExecStats;
use crate::query::limits;
use crate::state::cursors::{DocumentStream, ResumeTokenSource};
use crate::storage::Namespace;

/// Starts `query` on `target` for the request: its work counts as the request's.
pub(super) fn stream(ctx: &RequestCtx<'_>, target: &Target, query: Query) -> Result<(DocumentStream, Arc<ExecStats>)> {
    let stats = Arc::new(ExecStats::default());
    ctx.op.track(&stats);
    let (_, stream) = query.run(ctx.state, target.collection.as_ref(), stats.clone(), ctx.read_view())?;
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
pub(super) struct CursorReply {
    builder: ReplyBuilder,
    /// A change stream's: where it stands without events, and the `_id` (resume token) of
    /// the last event in the batch; together they make `postBatchResumeToken`.
    change_stream: Option<(ResumeTokenSource, Option<RawDocumentBuf>)>,
    /// A snapshot read's: the cluster time it read at (`atClusterTime`).
    at_cluster_time: Option<bson::Timestamp>,
}

impl CursorReply {
    /// Starts the reply; `batch` names the batch (`firstBatch` or `nextBatch`); a change
    /// stream's cursor gives where it stands.
    pub(super) fn start(batch: &CStr, resume_token: Option<ResumeTokenSource>) -> Self {
        let mut builder = ReplyBuilder::with_capacity(256);
        builder.open_document(cstr!("cursor"));
        builder.open_array(batch);
        Self { builder, change_stream: resume_token.map(|source| (source, None)), at_cluster_time: None }
    }

    /// Adds a document to the batch. One nested deeper than mongod reads (stored by an older
    /// version) fails the batch with 15 Overflow naming its `_id`, as mongod's `validateBSON`.
    pub(super) fn take(&mut self, document: &RawDocument) -> Result<()> {
        limits::check_read_depth(document)?;
        self.builder.push_document(document);
        if let Some((_, last)) = &mut self.change_stream {
            *last = document.get_document("_id").ok().map(RawDocument::to_owned);
        }
        Ok(())
    }

    /// Ends the batch and the reply, with the cursor to continue with on `ns`. A change
    /// stream's batch tells where to resume after it (`postBatchResumeToken`): its last
    /// event's token, or, without events, how far the stream has read.
    pub(super) fn finish(mut self, cursor_id: i64, ns: &str) -> Result<Reply> {
        self.builder.close();
        if let Some((source, last)) = self.change_stream.take() {
            let token = match last {
                Some(token) => token,
                None => RawDocumentBuf::try_from(&source())
                    .map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))?,
            };
            self.builder.append_document(cstr!("postBatchResumeToken"), &token);
        }
        self.builder.append(cstr!("id"), cursor_id);
        self.builder.append(cstr!("ns"), ns);
        if let Some(at) = self.at_cluster_time {
            self.builder.append(cstr!("atClusterTime"), at);
        }
        Ok(Reply::from(self.builder.finish()?))
    }
}

/// Builds a first-batch cursor reply, parking the cursor when documents remain.
pub(super) fn cursor_reply(
    ctx: &RequestCtx<'_>,
    ns: &Namespace,
    (stream, stats): (DocumentStream, Arc<ExecStats>),
    first: FirstBatch,
) -> Result<Reply> {
    let mut reply = CursorReply::start(cstr!("firstBatch"), first.resume_token.clone());
    let full = ns.full();
    let Batch { count, cursor_id } = cursor::open(
        &ctx.state.cursors,
        (ctx.client.auth.names.clone(), ctx.session),
        full.clone(),
        stream,
        stats,
        first,
        |doc| reply.take(doc),
    )?;
    ctx.op.docs.returned.fetch_add(count as u64, Ordering::Relaxed);
    reply.at_cluster_time = ctx.snapshot_time();
    reply.finish(cursor_id, &full)
}
