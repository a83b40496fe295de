//! Unit tests per stage: each stage over in-memory documents (a scratch storage under a
//! temporary directory stands in for the server's), with mongod's documented examples and the
//! edge cases of null, missing and mixed values.

use std::sync::Arc;

use bson::{Bson, Document, RawBsonRef, RawDocumentBuf, bson, doc};

use super::{PipelineEnv, run};
use crate::error::{Error, ErrorCode, Result};
use crate::state::cursors::DocumentStream;
use crate::storage::Storage;

/// Runs `stages` over `input` with `allowDiskUse` and a memory limit of `limit` bytes.
fn run_with(input: &[Document], stages: &[Document], allow_disk_use: bool, limit: u64) -> Result<Vec<Document>> {
    let dir = tempfile::tempdir().map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))?;
    let storage = Arc::new(Storage::open(dir.path()).map_err(|e| Error::new(ErrorCode::InternalError, e.to_string()))?);
    let env = Arc::new(PipelineEnv::detached(storage, "test", allow_disk_use, limit));
    let raw = |d: &Document| RawDocumentBuf::try_from(d).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()));
    let documents = input.iter().map(raw).collect::<Result<Vec<_>>>()?;
    let stages = stages.iter().map(raw).collect::<Result<Vec<_>>>()?;
    let refs: Vec<RawBsonRef<'_>> = stages.iter().map(|s| RawBsonRef::Document(s)).collect();
    let stream: DocumentStream = Box::new(documents.into_iter().map(Ok));
    let out = run(stream, &refs, &env)?;
    out.map(|d| Document::try_from(d?.as_ref()).map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string())))
        .collect()
}

fn stages(input: &[Document], stages: &[Document]) -> Vec<Document> {
    run_with(input, stages, true, 100 * 1024 * 1024).unwrap_or_else(|e| panic!("{stages:?}: {e:?}"))
}

fn code(input: &[Document], stages: &[Document]) -> Option<i32> {
    run_with(input, stages, true, 100 * 1024 * 1024).err().map(|e| e.code().code())
}

/// mongod's documentation data for `$group`: sales.
fn sales() -> Vec<Document> {
    vec![
        doc! { "_id": 1, "item": "abc", "price": 10, "quantity": 2, "day": 1 },
        doc! { "_id": 2, "item": "jkl", "price": 20, "quantity": 1, "day": 1 },
        doc! { "_id": 3, "item": "xyz", "price": 5, "quantity": 10, "day": 2 },
        doc! { "_id": 4, "item": "xyz", "price": 5, "quantity": 20, "day": 2 },
        doc! { "_id": 5, "item": "abc", "price": 10, "quantity": 10, "day": 3 },
        doc! { "_id": 6, "item": "def", "price": 7.5, "quantity": 5, "day": 3 },
        doc! { "_id": 7, "item": "def", "price": 7.5, "quantity": 10, "day": 3 },
        doc! { "_id": 8, "item": "abc", "price": 10, "quantity": 5, "day": 4 },
    ]
}

#[test]
fn group_by_item_with_totals_in_key_order_of_first_appearance() {
    let out = stages(
        &sales(),
        &[doc! { "$group": {
            "_id": "$item",
            "total": { "$sum": { "$multiply": ["$price", "$quantity"] } },
            "n": { "$count": {} },
            "avgQty": { "$avg": "$quantity" },
        } }],
    );
    assert_eq!(
        out,
        vec![
            doc! { "_id": "abc", "total": 170, "n": 3, "avgQty": 17.0 / 3.0 },
            doc! { "_id": "jkl", "total": 20, "n": 1, "avgQty": 1.0 },
            doc! { "_id": "xyz", "total": 150, "n": 2, "avgQty": 15.0 },
            doc! { "_id": "def", "total": 112.5, "n": 2, "avgQty": 7.5 },
        ]
    );
    // A null key groups missing and null together.
    let out = stages(
        &[doc! { "a": 1 }, doc! { "k": Bson::Null, "a": 2 }],
        &[doc! { "$group": { "_id": "$k", "s": { "$sum": "$a" } } }],
    );
    assert_eq!(out, vec![doc! { "_id": Bson::Null, "s": 3 }]);
    assert_eq!(code(&sales(), &[doc! { "$group": { "total": { "$sum": 1 } } }]), Some(15955));
}

#[test]
fn a_group_spills_under_a_small_limit_and_fails_without_disk_use() {
    let input: Vec<Document> = (0..300).map(|i| doc! { "k": i % 17, "v": i }).collect();
    let group = [
        doc! { "$group": { "_id": "$k", "all": { "$push": "$v" }, "n": { "$sum": 1 } } },
        doc! { "$sort": { "_id": 1 } },
    ];
    let spilled = run_with(&input, &group, true, 2_000).expect("spills");
    let in_memory = run_with(&input, &group, true, 100 * 1024 * 1024).expect("in memory");
    assert_eq!(spilled, in_memory);
    assert_eq!(spilled.len(), 17);
    let refused = run_with(&input, &group, false, 2_000).err().map(|e| e.code().code());
    assert_eq!(refused, Some(292));
}

#[test]
fn buckets_and_sort_by_count() {
    let out = stages(
        &sales(),
        &[
            doc! { "$bucket": { "groupBy": "$price", "boundaries": [0, 8, 15], "default": "other", "output": { "n": { "$sum": 1 } } } },
        ],
    );
    assert_eq!(out, vec![doc! { "_id": 0, "n": 4 }, doc! { "_id": 8, "n": 3 }, doc! { "_id": "other", "n": 1 }]);
    let out = stages(&sales(), &[doc! { "$bucketAuto": { "groupBy": "$quantity", "buckets": 3 } }]);
    assert_eq!(
        out,
        vec![
            doc! { "_id": { "min": 1, "max": 10 }, "count": 4 },
            doc! { "_id": { "min": 10, "max": 20 }, "count": 3 },
            doc! { "_id": { "min": 20, "max": 20 }, "count": 1 },
        ]
    );
    let out = stages(&sales(), &[doc! { "$sortByCount": "$item" }]);
    assert_eq!(
        out,
        vec![
            doc! { "_id": "abc", "count": 3 },
            doc! { "_id": "xyz", "count": 2 },
            doc! { "_id": "def", "count": 2 },
            doc! { "_id": "jkl", "count": 1 }
        ]
    );
    assert_eq!(code(&sales(), &[doc! { "$bucket": { "groupBy": "$price", "boundaries": [0, 8] } }]), Some(40066));
}

#[test]
fn facet_runs_each_sub_pipeline_on_the_same_input() {
    let out = stages(
        &sales(),
        &[doc! { "$facet": {
            "cheap": [{ "$match": { "price": { "$lt": 8 } } }, { "$count": "n" }],
            "days": [{ "$group": { "_id": "$day" } }, { "$sort": { "_id": -1 } }, { "$limit": 2 }],
        } }],
    );
    assert_eq!(out, vec![doc! { "cheap": [{ "n": 4 }], "days": [{ "_id": 4 }, { "_id": 3 }] }]);
    assert_eq!(code(&sales(), &[doc! { "$facet": { "a": [{ "$out": "x" }] } }]), Some(40600));
}

#[test]
fn shaping_stages_and_limits() {
    let input = [doc! { "_id": 1, "a": { "b": 1, "c": 2 }, "d": [1, 2] }];
    assert_eq!(
        stages(&input, &[doc! { "$project": { "a.b": 1, "e": { "$size": "$d" } } }]),
        vec![doc! { "_id": 1, "a": { "b": 1 }, "e": 2 }]
    );
    assert_eq!(stages(&input, &[doc! { "$unset": ["a.c", "d"] }]), vec![doc! { "_id": 1, "a": { "b": 1 } }]);
    assert_eq!(stages(&input, &[doc! { "$replaceRoot": { "newRoot": "$a" } }]), vec![doc! { "b": 1, "c": 2 }]);
    assert_eq!(code(&input, &[doc! { "$replaceWith": "$d" }]), Some(40228));
    assert_eq!(stages(&sales(), &[doc! { "$skip": 6 }, doc! { "$count": "left" }]), vec![doc! { "left": 2 }]);
    assert_eq!(
        stages(
            &sales(),
            &[doc! { "$sort": { "price": -1, "_id": 1 } }, doc! { "$limit": 2 }, doc! { "$project": { "_id": 1 } }]
        ),
        vec![doc! { "_id": 2 }, doc! { "_id": 1 }]
    );
    assert_eq!(code(&sales(), &[doc! { "$limit": 0 }]), Some(15958));
    assert_eq!(code(&sales(), &[doc! { "$skip": -1 }]), Some(15956));
}

#[test]
fn redact_prunes_levels_and_keeps_root() {
    let input = [doc! { "level": 1, "sub": { "level": 2, "x": 1 }, "list": [{ "level": 1, "y": 1 }, { "level": 3 }] }];
    let out = stages(
        &input,
        &[
            doc! { "$redact": { "$cond": [{ "$lte": ["$level", { "$add": ["$$ROOT.level", 1] }] }, "$$DESCEND", "$$PRUNE"] } },
        ],
    );
    assert_eq!(out, vec![doc! { "level": 1, "sub": { "level": 2, "x": 1 }, "list": [{ "level": 1, "y": 1 }] }]);
}

#[test]
fn sample_takes_distinct_documents() {
    let input: Vec<Document> = (0..50).map(|i| doc! { "_id": i }).collect();
    let out = stages(&input, &[doc! { "$sample": { "size": 10 } }]);
    let mut ids: Vec<i32> = out.iter().filter_map(|d| d.get_i32("_id").ok()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 10);
    assert_eq!(stages(&input, &[doc! { "$sample": { "size": 500 } }]).len(), 50);
    assert_eq!(code(&input, &[doc! { "$sample": { "size": -1 } }]), Some(28747));
}

#[test]
fn densify_fill_and_windows() {
    let input = [doc! { "t": 1, "v": 10 }, doc! { "t": 4, "v": Bson::Null }, doc! { "t": 5, "v": 30 }];
    let out = stages(
        &input,
        &[
            doc! { "$densify": { "field": "t", "range": { "step": 2, "bounds": "full" } } },
            doc! { "$project": { "_id": 0, "t": 1 } },
        ],
    );
    assert_eq!(out, vec![doc! { "t": 1 }, doc! { "t": 3 }, doc! { "t": 4 }, doc! { "t": 5 }]);
    let out = stages(&input, &[doc! { "$fill": { "sortBy": { "t": 1 }, "output": { "v": { "method": "linear" } } } }]);
    assert_eq!(
        out.iter().map(|d| d.get("v").cloned()).collect::<Vec<_>>(),
        vec![Some(bson!(10)), Some(bson!(25.0)), Some(bson!(30))]
    );
    let out = stages(
        &input,
        &[
            doc! { "$setWindowFields": { "sortBy": { "t": 1 }, "output": { "rank": { "$rank": {} }, "prev": { "$shift": { "output": "$t", "by": -1 } } } } },
        ],
    );
    assert_eq!(
        out.iter().map(|d| (d.get_i32("rank").ok(), d.get("prev").cloned())).collect::<Vec<_>>(),
        vec![(Some(1), Some(Bson::Null)), (Some(2), Some(bson!(1))), (Some(3), Some(bson!(4))),]
    );
}
