//! `commitTransaction` and `abortTransaction`. A standalone runs no transactions: the
//! dispatcher refuses `txnNumber` (20 IllegalOperation) before these run, so they only ever
//! see a request outside a transaction, and answer as mongod does then.

use bson::Document;

use super::{CommandRequest, RequestCtx};
use crate::error::{Error, ErrorCode, Result};

/// `commitTransaction`.
pub fn commit_transaction(_: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    outside_transaction(req, "commitTransaction")
}

/// `abortTransaction`.
pub fn abort_transaction(_: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    outside_transaction(req, "abortTransaction")
}

fn outside_transaction(req: &CommandRequest, name: &str) -> Result<Document> {
    if req.db() != "admin" {
        return Err(Error::new(ErrorCode::Unauthorized, format!("{name} may only be run against the admin database.")));
    }
    Err(Error::new(ErrorCode::CommandFailed, format!("{name} must be run within a transaction")))
}
