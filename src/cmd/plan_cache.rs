//! `$planCacheStats`: the plan cache's entries for one collection, as mongod lists them.

use bson::{RawBsonRef, RawDocument, doc};

use super::context::RequestCtx;
use super::target::Target;
use crate::error::{Error, ErrorCode, Result};
use crate::state::cursors::DocumentStream;

/// The `$planCacheStats` stage (first in a collection's pipeline): one document per cached
/// query shape of the collection, oldest first.
///
/// # Errors
/// 9 FailedToParse for a spec that is not an object or has another option than `allHosts`.
pub(super) fn plan_cache_stats_stage(
    ctx: &RequestCtx<'_>,
    target: &Target,
    stage: &RawDocument,
) -> Result<DocumentStream> {
    let spec = stage.get("$planCacheStats").ok().flatten();
    let Some(RawBsonRef::Document(spec)) = spec else {
        let found = spec.map_or("missing", |s| crate::query::type_name(s.element_type()));
        return Err(Error::new(
            ErrorCode::FailedToParse,
            format!("$planCacheStats value must be an object. Found: {found}"),
        ));
    };
    for element in spec {
        let (key, _) = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        if key.as_str() != "allHosts" {
            return Err(Error::new(
                ErrorCode::FailedToParse,
                format!("unrecognized option '{}' in $planCacheStats stage", key.as_str()),
            ));
        }
    }
    let host = format!("{}:{}", crate::host::hostname(), ctx.state.port());
    let indexes = target.collection.as_ref().map(|c| c.indexes()).unwrap_or_default();
    let mut documents = Vec::new();
    for entry in ctx.state.plans.entries_of(&target.ns.full()) {
        let cached_plan = match &entry.index {
            Some(name) => {
                let key = indexes
                    .iter()
                    .find(|i| &i.name == name)
                    .and_then(|i| i.spec.get_document("key").ok().cloned())
                    .unwrap_or_default();
                doc! { "stage": "FETCH", "inputStage": { "stage": "IXSCAN", "keyPattern": key, "indexName": name } }
            }
            None => doc! { "stage": "COLLSCAN" },
        };
        let key_hash = format!("{:08X}", crate::storage::index::fnv1a(entry.key.as_bytes()) as u32);
        let document = doc! {
            "version": "1",
            "queryHash": &entry.about.query_hash,
            "planCacheKey": key_hash,
            "isActive": true,
            "timeOfCreation": entry.about.created,
            "createdFromQuery": entry.about.created_from.clone(),
            "cachedPlan": cached_plan,
            "indexFilterSet": false,
            "estimatedSizeBytes": i64::try_from(entry.size()).unwrap_or(i64::MAX),
            "host": &host,
        };
        documents.push(crate::exec::pipeline::raw(&document));
    }
    Ok(Box::new(documents.into_iter()))
}
