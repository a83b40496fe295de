//! Multi-document transactions on a replica-set member: a command with `autocommit: false`
//! runs as a statement of its session's transaction ([`run_statement`]), with the open
//! storage transaction in its context; `commitTransaction` commits it, `abortTransaction`
//! drops it. A standalone runs no transactions: the dispatcher refuses `txnNumber` (20
//! IllegalOperation) before these run, so there they only ever see a request outside a
//! transaction, and answer as mongod does then.

use bson::{Document, RawBsonRef};

use super::request::session_id;
use super::{CommandRequest, Reply, RequestCtx};
use crate::error::{Error, ErrorCode, Result};
use crate::state::transactions::Statement;

/// The transaction number of a statement of a transaction (`autocommit: false`), if `req` is
/// one.
pub(super) fn transaction_number(req: &CommandRequest) -> Option<i64> {
    match (req.get("autocommit"), req.get("txnNumber")) {
        (Some(RawBsonRef::Boolean(false)), Some(RawBsonRef::Int64(number))) => Some(number),
        _ => None,
    }
}

/// Runs `run` as the statement `req` of its session's transaction, when it is one: with the
/// session checked out and the transaction in `ctx.txn` (begun by `startTransaction`). A
/// statement that fails, or answers with write errors, aborts the transaction, as mongod's.
///
/// # Errors
/// The transaction table's (225, 251, 256, 117); 72 for a `readConcern` after the first
/// statement or a `writeConcern` on a statement; `run`'s.
pub(super) fn run_statement(
    ctx: &mut RequestCtx<'_>,
    req: &CommandRequest,
    run: impl FnOnce(&mut RequestCtx<'_>) -> Result<Reply>,
) -> Result<Reply> {
    let Some(number) = transaction_number(req) else { return run(ctx) };
    let Some(RawBsonRef::Document(lsid)) = req.get("lsid") else { return run(ctx) };
    let session = session_id(lsid)?;
    let start = matches!(req.get("startTransaction"), Some(RawBsonRef::Boolean(true)));
    let ending = matches!(req.name(), "commitTransaction" | "abortTransaction");
    if !start && req.get("readConcern").is_some() {
        return Err(Error::new(
            ErrorCode::InvalidOptions,
            "Only the first command in a transaction may specify a readConcern",
        ));
    }
    if req.name() == "aggregate" && super::aggregate::writes_output(req) {
        return Err(Error::new(
            ErrorCode::OperationNotSupportedInTransaction,
            "$out and $merge cannot be used in a transaction",
        ));
    }
    if !ending && req.get("writeConcern").is_some() {
        return Err(Error::new(
            ErrorCode::InvalidOptions,
            "writeConcern is not allowed within a multi-statement transaction",
        ));
    }
    let state = ctx.state;
    // (The dispatcher has touched the session already, as for every request with an `lsid`.)
    let _checked_out = state.sessions.check_out(session);
    if start
        && let Some(latest) = state.storage.latest_retryable_txn(session)?
        && latest >= number
    {
        return Err(Error::new(
            ErrorCode::TransactionTooOld,
            format!(
                "Cannot start transaction {number} on session {session} because a newer retryable write {latest} has already started."
            ),
        ));
    }
    // A transaction reading at `atClusterTime` reads the snapshot history's view of it.
    let at = if start { super::generic::snapshot_time(req).flatten() } else { None };
    let snapshot = match at {
        Some(at) => Some(state.storage.snapshot_at(Some(at))?.0),
        None => None,
    };
    let begin = || match snapshot {
        Some(snapshot) => state.storage.begin_transaction_in(snapshot),
        None => state.storage.begin_transaction(),
    };
    let statement = state.transactions.begin_statement(session, number, start, req.name(), begin)?;
    let txn = match statement {
        Statement::AlreadyCommitted => return Ok(Reply::from(Document::new())),
        Statement::Open(txn) => txn,
    };
    ctx.txn = Some(txn);
    let outcome = run(ctx);
    let txn = ctx.txn.take();
    match req.name() {
        "commitTransaction" => state.transactions.finish(session, number, outcome.is_ok()),
        "abortTransaction" => state.transactions.finish(session, number, false),
        _ => {
            let keep = outcome.as_ref().is_ok_and(|reply| !reply.has("writeErrors"));
            state.transactions.end_statement(session, number, txn.filter(|_| keep));
        }
    }
    outcome
}

/// `commitTransaction`: commits the statements' changes in one atomic batch, waiting for the
/// journal when the write concern asks it.
pub fn commit_transaction(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let Some(txn) = ctx.txn.take() else { return outside_transaction(req, "commitTransaction") };
    let session = match req.get("lsid") {
        Some(RawBsonRef::Document(lsid)) => Some(session_id(lsid)?),
        _ => None,
    };
    let statement = session.zip(transaction_number(req)).map(|(session, txn)| crate::storage::SessionStatement {
        session,
        txn,
        stmt: None,
    });
    if let Some(ticket) = txn.commit(statement)?
        && super::generic::write_concern(req)?.journaled()
    {
        ctx.reply_after_sync(ticket);
    }
    Ok(Document::new())
}

/// `abortTransaction`: drops the statements' changes.
pub fn abort_transaction(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    match ctx.txn.take() {
        Some(_) => Ok(Document::new()),
        None => outside_transaction(req, "abortTransaction"),
    }
}

fn outside_transaction(req: &CommandRequest, name: &str) -> Result<Document> {
    if req.db() != "admin" {
        return Err(Error::new(ErrorCode::Unauthorized, format!("{name} may only be run against the admin database.")));
    }
    Err(Error::new(ErrorCode::CommandFailed, format!("{name} must be run within a transaction")))
}
