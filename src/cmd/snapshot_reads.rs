//! Snapshot reads outside transactions (`readConcern: {level: "snapshot"}` on `find`,
//! `aggregate` and `distinct`, mongod 5.0's): the read sees the data as it was at one cluster
//! time, `atClusterTime` when the request names it (a time the snapshot history still keeps),
//! else now; the reply reports that time (`cursor.atClusterTime`, or `atClusterTime` for
//! `distinct`), and drivers send it back with the session's next snapshot reads, which then
//! see the same data whatever was written since. A cursor's later batches read the same view.

use super::{CommandRequest, Reply, RequestCtx};
use crate::error::Result;

/// Runs `run` with the view of the snapshot read `req` asks for, when it asks for one outside
/// a transaction (a transaction's statements read the transaction's own view).
///
/// # Errors
/// 239 SnapshotTooOld for an `atClusterTime` the history no longer keeps; `run`'s.
pub(super) fn run_read(
    ctx: &mut RequestCtx<'_>,
    req: &CommandRequest,
    run: impl FnOnce(&mut RequestCtx<'_>) -> Result<Reply>,
) -> Result<Reply> {
    if ctx.txn.is_some() || req.get("autocommit").is_some() {
        return run(ctx);
    }
    let Some(at) = super::generic::snapshot_time(req) else { return run(ctx) };
    ctx.snapshot_read = Some(ctx.state.storage.snapshot_at(at)?);
    let reply = run(ctx);
    ctx.snapshot_read = None;
    reply
}
