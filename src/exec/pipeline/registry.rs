//! The stage table: every stage name mongod 7.0 knows, either built here (with the function
//! that adds it to a stream) or refused with the error this server gives for it.

use super::{
    StageArgs, densify, facet, graph_lookup, group, lookup, output, redact, sample, transform, unpack, unwind, window,
};
use crate::error::{Error, ErrorCode, Result};
use crate::state::cursors::DocumentStream;

/// Adds one stage to a stream.
type StageFn = fn(DocumentStream, &StageArgs<'_>) -> Result<DocumentStream>;

/// The stages built here.
const BUILT: &[(&str, StageFn)] = &[
    ("$_internalUnpackBucket", unpack::unpack_bucket),
    ("$addFields", transform::document_stage),
    ("$bucket", group::bucket),
    ("$bucketAuto", group::bucket_auto),
    ("$count", transform::count_stage),
    ("$densify", densify::densify),
    ("$documents", transform::documents),
    ("$facet", facet::facet),
    ("$fill", window::fill),
    ("$graphLookup", graph_lookup::graph_lookup),
    ("$group", group::group),
    ("$limit", transform::limit),
    ("$lookup", lookup::lookup),
    ("$match", transform::match_stage),
    ("$merge", output::merge),
    ("$out", output::out),
    ("$project", transform::project),
    ("$redact", redact::redact),
    ("$replaceRoot", transform::document_stage),
    ("$replaceWith", transform::document_stage),
    ("$sample", sample::sample),
    ("$set", transform::document_stage),
    ("$setWindowFields", window::set_window_fields),
    ("$skip", transform::skip),
    ("$sort", transform::sort),
    ("$sortByCount", group::sort_by_count),
    ("$unionWith", lookup::union_with),
    ("$unset", transform::document_stage),
    ("$unwind", unwind::unwind),
];

/// Known stages that do not run through this table, and what each answers here.
const UNSUPPORTED: &[(&str, Unsupported)] = &[
    // On a standalone, `aggregate` answers mongod's 40573 for it.
    ("$changeStream", Unsupported::Source),
    ("$changeStreamSplitLargeEvent", Unsupported::ChangeStreamOnly),
    ("$collStats", Unsupported::Source),
    ("$currentOp", Unsupported::Source),
    // Run by `aggregate` as the first stage (`cmd/geo_near.rs`).
    ("$geoNear", Unsupported::Source),
    ("$indexStats", Unsupported::Source),
    ("$listCatalog", Unsupported::NotYet),
    ("$listLocalSessions", Unsupported::Source),
    ("$listSampledQueries", Unsupported::NotYet),
    ("$listSearchIndexes", Unsupported::NotYet),
    ("$listSessions", Unsupported::Source),
    ("$planCacheStats", Unsupported::Source),
    ("$search", Unsupported::NotYet),
    ("$searchMeta", Unsupported::NotYet),
    ("$shardedDataDistribution", Unsupported::NotYet),
    ("$vectorSearch", Unsupported::NotYet),
];

/// How a known stage that does not run here is refused.
#[derive(Debug, Clone, Copy)]
enum Unsupported {
    /// 238 NotImplemented: a later issue builds it.
    NotYet,
    /// Built, but run by `aggregate` itself as a pipeline's first stage (it reads a source
    /// of its own), never through this table.
    Source,
    /// Built, but only a change stream runs it (after `$changeStream`).
    ChangeStreamOnly,
}

/// Whether this server runs the stage `name` (one of `STAGE_NAMES`), for the compatibility
/// page: `Ok(())` when built, else the refusal's code and message.
pub fn stage_status(name: &str) -> std::result::Result<(), (ErrorCode, String)> {
    if BUILT.iter().any(|(n, _)| *n == name) {
        return Ok(());
    }
    match UNSUPPORTED.iter().find(|(n, _)| *n == name) {
        Some((_, Unsupported::Source | Unsupported::ChangeStreamOnly)) => Ok(()),
        Some((_, Unsupported::NotYet)) => Err((ErrorCode::NotImplemented, "not supported yet".to_owned())),
        None => Err((ErrorCode::Location40324, "unknown stage".to_owned())),
    }
}

/// Adds the stage `name` with argument `spec` to `stream`.
///
/// # Errors
/// 40600 for a stage `$facet` does not allow, 51047 for one `$lookup` does not allow, 40324
/// for an unknown name, the refusal of a known but unsupported one, and the stage's parse
/// errors.
pub(super) fn apply(stream: DocumentStream, args: &StageArgs<'_>) -> Result<DocumentStream> {
    let name = args.name;
    super::context::check(name, args.context)?;
    if let Some((_, add)) = BUILT.iter().find(|(n, _)| *n == name) {
        return add(stream, args);
    }
    match UNSUPPORTED.iter().find(|(n, _)| *n == name) {
        Some((_, Unsupported::Source)) => {
            Err(Error::new(ErrorCode::Location40602, format!("{name} is only valid as the first stage in a pipeline.")))
        }
        Some((_, Unsupported::NotYet)) => {
            Err(Error::new(ErrorCode::NotImplemented, format!("aggregation stage {name} is not supported yet")))
        }
        Some((_, Unsupported::ChangeStreamOnly)) => {
            Err(Error::new(ErrorCode::IllegalOperation, format!("{name} can only be used in a $changeStream pipeline")))
        }
        None => Err(Error::new(ErrorCode::Location40324, format!("Unrecognized pipeline stage name: '{name}'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::agg::stages::STAGE_NAMES;

    #[test]
    fn built_and_unsupported_never_overlap_and_cover_every_known_stage() {
        for (name, _) in BUILT {
            assert!(!UNSUPPORTED.iter().any(|(n, _)| n == name), "{name} is both built and unsupported");
        }
        let mut covered: Vec<&str> = BUILT.iter().map(|(n, _)| *n).chain(UNSUPPORTED.iter().map(|(n, _)| *n)).collect();
        covered.sort_unstable();
        assert_eq!(covered, STAGE_NAMES, "the stage table and the stage names differ");
        for name in super::super::context::FIRST_STAGE_ONLY.iter().chain(super::super::context::LAST_STAGE_ONLY) {
            assert!(STAGE_NAMES.contains(name), "{name} is not a stage");
        }
    }
}
