//! Cursors as the executor drives them: a query's first batch, the rest parked in the
//! registry ([`CursorRegistry`]) until `getMore` asks for the next batch.

use std::sync::Arc;
use std::time::Instant;

use bson::RawDocument;

use crate::error::Result;
use crate::op::{ExecStats, Operation};
use crate::state::cursors::{Cursor, CursorRegistry, DocumentStream, ResumeTokenSource, Tailing};

/// Documents in a first batch when the client sets no `batchSize` (mongod's default).
pub const DEFAULT_FIRST_BATCH: usize = 101;

/// What taking a batch left: how many documents it had and the cursor to continue with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// Documents in the batch.
    pub count: usize,
    /// The cursor to continue with: 0 once exhausted (or not kept).
    pub cursor_id: i64,
}

/// How a cursor's first batch is taken.
#[derive(Clone, Default)]
pub struct FirstBatch {
    /// The most documents in it (`None`: as many as fit the reply).
    pub size: Option<usize>,
    /// `singleBatch`: close the cursor after this batch.
    pub single_batch: bool,
    /// `noCursorTimeout`: keep the parked cursor however long it idles.
    pub no_timeout: bool,
    /// The request's `maxTimeMS` deadline.
    pub deadline: Option<Instant>,
    /// A tailable cursor on a capped collection that has documents: kept open at its end.
    pub tailing: Option<Tailing>,
    /// A change stream's position, for its batches' `postBatchResumeToken`.
    pub resume_token: Option<ResumeTokenSource>,
}

/// The first batch size of a `find` with `batchSize` and `limit`: the smaller of the two,
/// else the limit when below the default, else [`DEFAULT_FIRST_BATCH`].
pub fn find_first_batch(batch_size: Option<usize>, limit: Option<usize>) -> usize {
    let size = match (batch_size, limit) {
        (Some(b), Some(l)) => Some(b.min(l)),
        (b, l) => b.or(l.filter(|&l| l < DEFAULT_FIRST_BATCH)),
    };
    size.unwrap_or(DEFAULT_FIRST_BATCH)
}

/// Opens a cursor on `ns` for `owners` in `session` over `stream` (whose work `stats` counts): hands its first batch to
/// `take` and parks the rest in `cursors`, unless it is exhausted or a single batch was asked
/// for.
///
/// # Errors
/// The stream's errors and `take`'s; 50 MaxTimeMSExpired past the deadline.
pub fn open(
    cursors: &CursorRegistry,
    (owners, session): (crate::auth::UserNames, Option<bson::Uuid>),
    ns: String,
    stream: DocumentStream,
    stats: Arc<ExecStats>,
    first: FirstBatch,
    take: impl FnMut(&RawDocument) -> Result<()>,
) -> Result<Batch> {
    let mut cursor = Cursor::new(ns, stream, first.no_timeout, stats)
        .owned_by(owners)
        .in_session(session)
        .with_resume_token(first.resume_token);
    if let Some(tailing) = first.tailing {
        cursor = cursor.tailing(tailing);
    }
    let (count, done) = cursor.next_batch(first.size, first.deadline, take)?;
    let cursor_id = if done || first.single_batch { 0 } else { cursors.insert(cursor) };
    Ok(Batch { count, cursor_id })
}

/// Hands the next batch of at most `size` documents of `cursor` (taken out of `cursors` as
/// `id`) to `take`, for a `getMore` run as `op` (whose counts the cursor's work goes to from
/// now on). The cursor is parked again unless exhausted; one whose batch failed is not put
/// back: mongod kills it too.
///
/// # Errors
/// The stream's errors and `take`'s; 50 MaxTimeMSExpired past `op`'s deadline.
pub fn get_more(
    cursors: &CursorRegistry,
    id: i64,
    mut cursor: Cursor,
    op: &Operation,
    size: Option<usize>,
    take: impl FnMut(&RawDocument) -> Result<()>,
) -> Result<Batch> {
    op.track(cursor.stats());
    let (count, done) = cursor.next_batch(size, op.deadline(), take)?;
    let cursor_id = if done {
        0
    } else {
        cursors.restore(id, cursor);
        id
    };
    Ok(Batch { count, cursor_id })
}
