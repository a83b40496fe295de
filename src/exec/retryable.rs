//! Retryable writes: a write command with `lsid` and `txnNumber` applies each of its
//! statements once, however often it is sent. Each statement's result is recorded in the same
//! storage batch as its change ([`crate::storage::Writer::record_retryable_result`]); a retry
//! of the same transaction number finds the result and answers with it instead of applying
//! the statement again, also after a restart.

use std::collections::BTreeMap;

use bson::{RawDocumentBuf, Uuid};

use crate::error::{Error, ErrorCode, Result};
use crate::state::State;
use crate::state::sessions::CheckedOutSession;
use crate::storage::Writer;

/// The statement ids of a command: `stmtIds` (one per statement) or `stmtId` (the first,
/// then counting up), 0 by default.
#[derive(Debug, Clone)]
pub enum StatementIds {
    /// One id per statement.
    Listed(Vec<i32>),
    /// The first statement's id; the others follow it.
    From(i32),
}

impl StatementIds {
    /// The id of statement `index`.
    pub fn of(&self, index: usize) -> i32 {
        match self {
            Self::Listed(ids) => ids.get(index).copied().unwrap_or(i32::MAX),
            Self::From(first) => first.saturating_add(i32::try_from(index).unwrap_or(i32::MAX)),
        }
    }
}

/// One retryable write command in progress, holding its session checked out.
pub struct RetryableWrite<'a> {
    state: &'a State,
    session: Uuid,
    txn: i64,
    ids: StatementIds,
    /// The results of statements an earlier attempt executed, by statement id.
    executed: BTreeMap<i32, RawDocumentBuf>,
    /// Whether `txn` is already the session's latest in storage (else the first batch that
    /// records makes it so).
    begun: bool,
    /// The session's latest number before `txn`, whose results `txn` replaces.
    previous: Option<i64>,
    retried: Vec<i32>,
    /// Results were recorded in the batch about to commit.
    recorded_since_commit: bool,
    /// A test fail point asked for the connection to be closed without a reply.
    close_connection: bool,
    _checked_out: CheckedOutSession<'a>,
}

impl<'a> RetryableWrite<'a> {
    /// Checks `session` out and reads what an earlier attempt of `txn` executed.
    ///
    /// # Errors
    /// 225 TransactionTooOld when the session has already run a newer transaction number;
    /// storage errors.
    pub fn start(state: &'a State, session: Uuid, txn: i64, ids: StatementIds) -> Result<Self> {
        let checked_out = state.sessions.check_out(session);
        // Transactions and retryable writes share the session's numbers.
        if let Some(latest) = state.transactions.latest_number(session) {
            if latest > txn {
                return Err(Error::new(
                    ErrorCode::TransactionTooOld,
                    format!(
                        "Retryable write with txnNumber {txn} is prohibited on session {session} because a newer transaction with txnNumber {latest} has already started on this session."
                    ),
                ));
            }
            // A newer number ends the session's transaction, as in mongod.
            state.transactions.abort_sessions(&[session]);
        }
        let latest = state.storage.latest_retryable_txn(session)?;
        if let Some(latest) = latest
            && latest > txn
        {
            return Err(Error::new(
                ErrorCode::TransactionTooOld,
                format!(
                    "Retryable write with txnNumber {txn} is prohibited on session {session} because a newer retryable write with txnNumber {latest} has already started on this session."
                ),
            ));
        }
        let begun = latest == Some(txn);
        let executed = if begun { state.storage.retryable_results(session, txn)? } else { BTreeMap::new() };
        Ok(Self {
            state,
            session,
            txn,
            ids,
            executed,
            begun,
            previous: latest.filter(|latest| *latest != txn),
            retried: Vec::new(),
            recorded_since_commit: false,
            close_connection: false,
            _checked_out: checked_out,
        })
    }

    /// The result an earlier attempt recorded for statement `index`, if it executed; the
    /// statement then counts as retried.
    pub fn previous(&mut self, index: usize) -> Option<RawDocumentBuf> {
        let id = self.ids.of(index);
        let result = self.executed.get(&id).cloned()?;
        self.retried.push(id);
        Some(result)
    }

    /// Records statement `index`'s `result` in `writer`'s batch.
    ///
    /// # Errors
    /// Storage errors.
    pub fn record(&mut self, writer: &mut Writer<'_>, index: usize, result: &RawDocumentBuf) -> Result<()> {
        if !self.begun {
            writer.begin_retryable_txn(self.session, self.txn, self.previous)?;
            self.begun = true;
        }
        let id = self.ids.of(index);
        writer.record_retryable_result(self.session, self.txn, id, result);
        self.executed.insert(id, result.clone());
        self.recorded_since_commit = true;
        Ok(())
    }

    /// Called before a batch that recorded results commits: mongod's test fail point
    /// `onPrimaryTransactionalWrite` may fail it (`failBeforeCommitExceptionCode`: nothing is
    /// committed) and, by default, have the connection closed, so that the driver's retry
    /// meets the record (or the lack of one).
    ///
    /// # Errors
    /// The fail point's error code.
    pub fn before_commit(&mut self) -> Result<()> {
        if !std::mem::take(&mut self.recorded_since_commit) {
            return Ok(());
        }
        let Some(fault) = self.state.failpoints.transactional_write() else { return Ok(()) };
        self.close_connection |= fault.close_connection;
        match fault.fail_before_commit {
            Some(code) => Err(Error::new(
                ErrorCode::from_code(code).unwrap_or(ErrorCode::InternalError),
                "Failing the retryable write via the 'onPrimaryTransactionalWrite' fail point",
            )),
            None => Ok(()),
        }
    }

    /// Whether a fail point asked for the connection to be closed instead of replying.
    pub fn close_connection(&self) -> bool {
        self.close_connection
    }

    /// The ids of the statements answered from an earlier attempt (`retriedStmtIds`).
    pub fn retried(&self) -> &[i32] {
        &self.retried
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_statement_ids_listed_or_counted() {
        assert_eq!(StatementIds::From(0).of(3), 3);
        assert_eq!(StatementIds::From(7).of(1), 8);
        assert_eq!(StatementIds::Listed(vec![4, 9]).of(1), 9);
    }
}
