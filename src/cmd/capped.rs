//! The capped conversions: `convertToCapped` and `cloneCollectionAsCapped`.

use bson::{Document, RawBsonRef};

use super::{Authorizer, CommandRequest, RequestCtx};
use crate::auth::action::ActionType;
use crate::error::{Error, ErrorCode, Result};
use crate::exec::capped;
use crate::storage::Namespace;

/// `size`, a required number (mongod's `safeDouble`), whole bytes.
fn size_arg(req: &CommandRequest) -> Result<i64> {
    match req.get("size") {
        Some(RawBsonRef::Int32(n)) => Ok(i64::from(n)),
        Some(RawBsonRef::Int64(n)) => Ok(n),
        Some(RawBsonRef::Double(n)) if n.is_finite() => Ok(n as i64),
        Some(other) => Err(req.wrong_type("size", other, "double")),
        None => Err(Error::new(
            ErrorCode::Location40414,
            format!("BSON field '{}.size' is missing but a required field", req.name()),
        )),
    }
    .and_then(|size| match size {
        n if n <= 0 => Err(Error::new(ErrorCode::InvalidOptions, "invalid command spec: size must be greater than 0")),
        n => Ok(n),
    })
}

/// `convertToCapped: <collection>, size`: the collection, capped, keeping its newest documents
/// that fit and only its `_id_` index.
pub fn convert_to_capped(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let ns = req.namespace()?;
    let size = size_arg(req)?;
    crate::exec::views::refuse_view(&ctx.state.storage, &ns)?;
    capped::convert_to_capped(&ctx.state.storage, &ns, size)?;
    Ok(Document::new())
}

/// `cloneCollectionAsCapped`: find on the source, insert and createCollection on the target.
pub(super) fn authorize_clone(authz: &Authorizer<'_>, req: &CommandRequest) -> bool {
    let target = req.str_arg("toCollection").ok().flatten().unwrap_or_default();
    authz.on_command_namespace(req, ActionType::Find)
        && authz.on_namespace(req.db(), target, ActionType::Insert)
        && authz.on_namespace(req.db(), target, ActionType::CreateCollection)
}

/// `cloneCollectionAsCapped: <source>, toCollection, size`: a new capped collection holding the
/// source's newest documents that fit.
pub fn clone_collection_as_capped(ctx: &mut RequestCtx<'_>, req: &CommandRequest) -> Result<Document> {
    let source = req.namespace()?;
    let Some(to) = req.str_arg("toCollection")? else {
        return Err(Error::new(
            ErrorCode::Location40414,
            "BSON field 'cloneCollectionAsCapped.toCollection' is missing but a required field",
        ));
    };
    let target = Namespace::new(&source.db, to)?;
    super::collections::check_system_namespace(&target)?;
    let size = size_arg(req)?;
    crate::exec::views::refuse_view(&ctx.state.storage, &source)?;
    capped::clone_as_capped(&ctx.state.storage, &source, &target, size)?;
    Ok(Document::new())
}
