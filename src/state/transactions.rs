//! Each session's multi-document transaction: its number, whether it is in progress,
//! committed or aborted, and the open storage [`Transaction`] between its statements.
//!
//! A statement takes the transaction out for its run ([`TransactionTable::begin_statement`])
//! and gives it back ([`TransactionTable::end_statement`]); a statement that fails gives
//! nothing back, which aborts the transaction, as mongod aborts a transaction whose statement
//! fails. Transactions open longer than `transactionLifetimeLimitSeconds` are aborted by a
//! background task.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bson::Uuid;

use crate::error::{Error, ErrorCode, Result};
use crate::storage::Transaction;

/// mongod's default `transactionLifetimeLimitSeconds`.
pub const TRANSACTION_LIFETIME: Duration = Duration::from_secs(60);

/// Where a session's latest transaction stands.
#[derive(Debug)]
enum Stage {
    /// Open; `None` while a statement runs with it.
    InProgress(Option<Box<Transaction>>),
    Committed,
    Aborted,
}

#[derive(Debug)]
struct SessionTransaction {
    number: i64,
    stage: Stage,
    started: Instant,
}

/// What a transaction statement runs with.
#[derive(Debug)]
pub enum Statement {
    /// The open transaction.
    Open(Box<Transaction>),
    /// `commitTransaction` of a transaction already committed: it answers as before.
    AlreadyCommitted,
}

/// The transactions of every session, by `lsid.id`.
#[derive(Debug, Default)]
pub struct TransactionTable {
    sessions: Mutex<HashMap<Uuid, SessionTransaction>>,
}

/// 251 NoSuchTransaction.
fn no_such_transaction(message: String) -> Error {
    Error::new(ErrorCode::NoSuchTransaction, message)
}

impl TransactionTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, SessionTransaction>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The transaction statement `command` of `session` runs with: a new transaction
    /// `number` (`start`, begun by `begin`), or the one in progress. The session is checked
    /// out by the caller.
    ///
    /// # Errors
    /// 225 TransactionTooOld for a number older than the session's latest; 251
    /// NoSuchTransaction to continue a transaction that is not in progress (aborted, or
    /// another number); 256 TransactionCommitted to run a statement (or abort) in a committed
    /// one; 117 ConflictingOperationInProgress to start a number already started.
    pub fn begin_statement(
        &self,
        session: Uuid,
        number: i64,
        start: bool,
        command: &str,
        begin: impl FnOnce() -> Transaction,
    ) -> Result<Statement> {
        let mut sessions = self.lock();
        let latest = sessions.get_mut(&session);
        if let Some(latest) = &latest
            && latest.number > number
        {
            return Err(Error::new(
                ErrorCode::TransactionTooOld,
                format!(
                    "Cannot start transaction {number} on session {session} because a newer transaction {} has already started.",
                    latest.number
                ),
            ));
        }
        match latest {
            Some(latest) if latest.number == number => {
                if start {
                    return Err(Error::new(
                        ErrorCode::ConflictingOperationInProgress,
                        format!("Transaction {number} on session {session} has already started"),
                    ));
                }
                match &mut latest.stage {
                    Stage::InProgress(open) => match open.take() {
                        Some(txn) => Ok(Statement::Open(txn)),
                        None => Err(no_such_transaction(format!(
                            "Transaction {number} on session {session} is running another statement"
                        ))),
                    },
                    Stage::Committed if command == "commitTransaction" => Ok(Statement::AlreadyCommitted),
                    Stage::Committed => Err(Error::new(
                        ErrorCode::TransactionCommitted,
                        format!("Transaction with {{ txnNumber: {number} }} has been committed."),
                    )),
                    Stage::Aborted => Err(no_such_transaction(format!(
                        "Transaction with {{ txnNumber: {number} }} has been aborted."
                    ))),
                }
            }
            _ if !start => Err(no_such_transaction(format!(
                "Given transaction number {number} does not match any in-progress transactions."
            ))),
            _ => {
                // A newer number ends whatever the session had open.
                sessions.insert(
                    session,
                    SessionTransaction { number, stage: Stage::InProgress(None), started: Instant::now() },
                );
                Ok(Statement::Open(Box::new(begin())))
            }
        }
    }

    /// Gives the transaction back after a statement of `number`: still open (`Some`), or
    /// aborted by the statement's failure (`None`).
    pub fn end_statement(&self, session: Uuid, number: i64, txn: Option<Box<Transaction>>) {
        let mut sessions = self.lock();
        if let Some(entry) = sessions.get_mut(&session)
            && entry.number == number
        {
            entry.stage = match txn {
                Some(txn) => Stage::InProgress(Some(txn)),
                None => Stage::Aborted,
            };
        }
    }

    /// Records how transaction `number` of `session` ended (committed, or aborted).
    pub fn finish(&self, session: Uuid, number: i64, committed: bool) {
        let mut sessions = self.lock();
        if let Some(entry) = sessions.get_mut(&session)
            && entry.number == number
        {
            entry.stage = if committed { Stage::Committed } else { Stage::Aborted };
        }
    }

    /// The latest transaction number of `session`, if it ran one.
    pub fn latest_number(&self, session: Uuid) -> Option<i64> {
        self.lock().get(&session).map(|entry| entry.number)
    }

    /// Aborts the open transactions of `sessions` (ended or killed).
    pub fn abort_sessions(&self, sessions: &[Uuid]) {
        let mut table = self.lock();
        for session in sessions {
            table.remove(session);
        }
    }

    /// Aborts every open transaction (every session killed).
    pub fn abort_all(&self) {
        self.lock().clear();
    }

    /// Aborts the transactions open for longer than `lifetime` as of `now`, between their
    /// statements; returns how many.
    pub fn abort_expired(&self, now: Instant, lifetime: Duration) -> usize {
        let mut aborted = 0;
        for entry in self.lock().values_mut() {
            if matches!(entry.stage, Stage::InProgress(Some(_)))
                && now.saturating_duration_since(entry.started) > lifetime
            {
                entry.stage = Stage::Aborted;
                aborted += 1;
            }
        }
        aborted
    }
}
