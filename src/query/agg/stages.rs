//! The names of mongod 7.0's aggregation stages, one list for every pipeline: the aggregation
//! runner builds some and refuses the rest, update pipelines accept six and refuse the rest.
//! A name outside this list is unknown everywhere (40324).

/// Every stage name mongod 7.0 registers for users.
pub const STAGE_NAMES: &[&str] = &[
    "$_internalUnpackBucket",
    "$addFields",
    "$bucket",
    "$bucketAuto",
    "$changeStream",
    "$changeStreamSplitLargeEvent",
    "$collStats",
    "$count",
    "$currentOp",
    "$densify",
    "$documents",
    "$facet",
    "$fill",
    "$geoNear",
    "$graphLookup",
    "$group",
    "$indexStats",
    "$limit",
    "$listCatalog",
    "$listLocalSessions",
    "$listSampledQueries",
    "$listSearchIndexes",
    "$listSessions",
    "$lookup",
    "$match",
    "$merge",
    "$out",
    "$planCacheStats",
    "$project",
    "$redact",
    "$replaceRoot",
    "$replaceWith",
    "$sample",
    "$search",
    "$searchMeta",
    "$set",
    "$setWindowFields",
    "$shardedDataDistribution",
    "$skip",
    "$sort",
    "$sortByCount",
    "$unionWith",
    "$unset",
    "$unwind",
    "$vectorSearch",
];

/// Whether mongod knows `name` as a stage.
pub fn is_stage_name(name: &str) -> bool {
    STAGE_NAMES.binary_search(&name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_names_are_sorted_and_distinct_so_lookups_find_them() {
        assert!(STAGE_NAMES.windows(2).all(|w| w[0] < w[1]));
        assert!(is_stage_name("$group"));
        assert!(!is_stage_name("$grup"));
    }
}
