//! Where a stage may run: first or last in a pipeline, inside `$facet` or a `$lookup`
//! sub-pipeline. The stage table and the stages that nest pipelines both check here.

use crate::error::{Error, ErrorCode, Result};

/// Where a pipeline runs, for the stages that only some places allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// The command's own pipeline.
    Top,
    /// Inside `$facet`.
    Facet,
    /// Inside `$lookup`.
    Lookup,
}

/// Stages that read from a source of their own, so mongod accepts them only first (its
/// `kFirst` position requirement). `$collStats` and `$currentOp` are built by their commands.
pub(super) const FIRST_STAGE_ONLY: &[&str] = &[
    "$changeStream",
    "$collStats",
    "$currentOp",
    "$documents",
    "$geoNear",
    "$indexStats",
    "$listCatalog",
    "$listLocalSessions",
    "$listSampledQueries",
    "$listSearchIndexes",
    "$listSessions",
    "$planCacheStats",
    "$search",
    "$searchMeta",
    "$shardedDataDistribution",
    "$vectorSearch",
];

/// Stages that write their input somewhere, so mongod accepts them only last.
pub(super) const LAST_STAGE_ONLY: &[&str] = &["$merge", "$out"];

/// Checks that the stage `name` may run in `context`.
///
/// # Errors
/// 40600 for a stage `$facet` does not allow, 51047 for one `$lookup` does not allow.
pub(super) fn check(name: &str, context: Context) -> Result<()> {
    match context {
        Context::Facet if name == "$facet" || FIRST_STAGE_ONLY.contains(&name) || LAST_STAGE_ONLY.contains(&name) => {
            Err(Error::new(ErrorCode::Location40600, format!("{name} is not allowed to be used within a $facet stage")))
        }
        Context::Lookup if LAST_STAGE_ONLY.contains(&name) => {
            Err(Error::new(ErrorCode::Location51047, format!("{name} is not allowed within a $lookup's sub-pipeline")))
        }
        _ => Ok(()),
    }
}
