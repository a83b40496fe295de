use super::*;
use bson::rawdoc;

fn project(spec: RawDocumentBuf, doc: RawDocumentBuf) -> RawDocumentBuf {
    Projection::parse(&spec).unwrap().apply(&doc).unwrap()
}

/// Projects `doc` (which must match `query`) with a query-aware projection.
fn project_q(
    query: RawDocumentBuf,
    spec: RawDocumentBuf,
    doc: RawDocumentBuf,
) -> Result<RawDocumentBuf, (i32, String)> {
    let filter = Filter::parse(&query).unwrap();
    assert!(filter.matches(&doc), "the document must match the query");
    let projection =
        Projection::parse_with_query(&spec, &filter).map_err(|e| (e.code().code(), e.message().to_owned()))?;
    projection.apply(&doc).map_err(|e| (e.code().code(), e.message().to_owned()))
}

fn parse_err_q(query: RawDocumentBuf, spec: RawDocumentBuf) -> (i32, String) {
    let filter = Filter::parse(&query).unwrap();
    let err = Projection::parse_with_query(&spec, &filter).unwrap_err();
    (err.code().code(), err.message().to_owned())
}

fn parse_err(spec: RawDocumentBuf) -> (i32, String) {
    let err = Projection::parse(&spec).unwrap_err();
    (err.code().code(), err.message().to_owned())
}

#[test]
fn projection_empty_returns_whole_document() {
    let doc = rawdoc! { "_id": 1, "a": 2 };
    assert!(Projection::parse(&rawdoc! {}).unwrap().is_whole_document());
    assert_eq!(project(rawdoc! {}, doc.clone()), doc);
}

#[test]
fn projection_include_keeps_id_and_document_order() {
    let doc = rawdoc! { "_id": 1, "a": 2, "b": 3, "c": 4 };
    assert_eq!(project(rawdoc! { "c": 1, "a": true }, doc), rawdoc! { "_id": 1, "a": 2, "c": 4 });
}

#[test]
fn projection_include_without_id() {
    let doc = rawdoc! { "_id": 1, "a": 2, "b": 3 };
    assert_eq!(project(rawdoc! { "_id": 0, "a": 1 }, doc), rawdoc! { "a": 2 });
}

#[test]
fn projection_include_only_id() {
    let doc = rawdoc! { "_id": 1, "a": 2 };
    assert_eq!(project(rawdoc! { "_id": 1 }, doc), rawdoc! { "_id": 1 });
}

#[test]
fn projection_exclude_fields_and_id() {
    let doc = rawdoc! { "_id": 1, "a": 2, "b": 3 };
    assert_eq!(project(rawdoc! { "a": 0 }, doc.clone()), rawdoc! { "_id": 1, "b": 3 });
    assert_eq!(project(rawdoc! { "_id": 0 }, doc.clone()), rawdoc! { "a": 2, "b": 3 });
    assert_eq!(project(rawdoc! { "_id": 1, "a": 0 }, doc), rawdoc! { "_id": 1, "b": 3 });
}

#[test]
fn projection_include_dotted_keeps_only_subfield() {
    let doc = rawdoc! { "_id": 1, "a": { "b": 1, "c": 2 }, "d": 3 };
    assert_eq!(project(rawdoc! { "a.b": 1 }, doc), rawdoc! { "_id": 1, "a": { "b": 1 } });
}

#[test]
fn projection_include_dotted_through_arrays() {
    let doc = rawdoc! { "a": [ { "b": 1, "c": 2 }, 5, [ { "b": 3 }, 6 ], {} ] };
    assert_eq!(project(rawdoc! { "_id": 0, "a.b": 1 }, doc), rawdoc! { "a": [ { "b": 1 }, [ { "b": 3 } ], {} ] });
}

#[test]
fn projection_include_dotted_missing_or_scalar_parent() {
    assert_eq!(project(rawdoc! { "_id": 0, "a.b": 1 }, rawdoc! { "a": 4 }), rawdoc! {});
    assert_eq!(project(rawdoc! { "_id": 0, "a.b": 1 }, rawdoc! { "a": {} }), rawdoc! { "a": {} });
    assert_eq!(project(rawdoc! { "_id": 0, "a.b": 1 }, rawdoc! { "a": [1, 2] }), rawdoc! { "a": [] });
}

#[test]
fn projection_sub_object_equals_dotted_path() {
    let doc = rawdoc! { "a": { "b": 1, "c": 2 } };
    assert_eq!(project(rawdoc! { "_id": 0, "a": { "c": 1 } }, doc), rawdoc! { "a": { "c": 2 } });
}

#[test]
fn projection_exclude_dotted_through_arrays() {
    let doc = rawdoc! { "_id": 1, "a": [ { "b": 1, "c": 2 }, 5 ], "x": { "b": 1 } };
    assert_eq!(project(rawdoc! { "a.b": 0 }, doc), rawdoc! { "_id": 1, "a": [ { "c": 2 }, 5 ], "x": { "b": 1 } });
}

#[test]
fn projection_mixing_inclusion_and_exclusion_is_31254_or_31253() {
    assert_eq!(
        parse_err(rawdoc! { "a": 1, "b": 0 }),
        (31254, "Cannot do exclusion on field b in inclusion projection".into())
    );
    assert_eq!(
        parse_err(rawdoc! { "a": 0, "b": 1 }),
        (31253, "Cannot do inclusion on field b in exclusion projection".into())
    );
    assert_eq!(parse_err(rawdoc! { "a": 1, "_id.x": 0 }).0, 31254);
}

#[test]
fn projection_path_collisions() {
    assert_eq!(parse_err(rawdoc! { "a.b": 1, "a": 1 }), (31250, "Path collision at a".into()));
    assert_eq!(
        parse_err(rawdoc! { "a": 1, "a.b.c": 1 }),
        (31249, "Path collision at a.b.c remaining portion b.c".into())
    );
}

#[test]
fn projection_field_path_errors() {
    assert_eq!(parse_err(rawdoc! { "": 1 }).0, 40352);
    assert_eq!(parse_err(rawdoc! { "a.": 1 }).0, 40353);
    assert_eq!(parse_err(rawdoc! { "a..b": 1 }).0, 15998);
    assert_eq!(parse_err(rawdoc! { "$a": 1 }).0, 16410);
    assert_eq!(parse_err(rawdoc! { "a": {} }), (51270, "Invalid empty sub-projection: a".into()));
}

#[test]
fn projection_aggregate_has_no_find_operators() {
    let err = |spec: RawDocumentBuf| {
        let e = Projection::parse_aggregate(&spec).unwrap_err();
        (e.code().code(), e.message().to_owned())
    };
    assert_eq!(err(rawdoc! { "a.$": 1 }), (31324, "Cannot use positional projection in aggregation projection".into()));
    assert_eq!(
        err(rawdoc! { "a": { "$elemMatch": { "b": 1 } } }),
        (168, "Cannot use $elemMatch in this context".into())
    );
    assert_eq!(
        err(rawdoc! { "a": { "$slice": 1 } }),
        (28667, "Expression $slice takes at least 2 arguments, and at most 3, but 1 were passed in.".into())
    );
    let sliced = Projection::parse_aggregate(&rawdoc! { "a": { "$slice": ["$a", 1] } }).unwrap();
    assert_eq!(sliced.apply(&rawdoc! { "_id": 1, "a": [5, 6] }).unwrap(), rawdoc! { "_id": 1, "a": [5] });
    let doc = rawdoc! { "_id": 1, "a": 2 };
    assert_eq!(Projection::parse_aggregate(&rawdoc! { "a": 1 }).unwrap().apply(&doc).unwrap(), doc);
}

/// The element `a.$` keeps comes from the part of the query that matched the array.
#[test]
fn projection_positional_follows_match_key() {
    let doc = rawdoc! { "_id": 1, "g": [ { "k": 1, "m": 9 }, { "k": 2, "m": 8 }, { "k": 2, "m": 7 } ], "x": [5, 6] };
    let rows: Vec<(RawDocumentBuf, RawDocumentBuf, Result<RawDocumentBuf, i32>)> = vec![
        (rawdoc! { "g.k": 2 }, rawdoc! { "g.$": 1 }, Ok(rawdoc! { "_id": 1, "g": [ { "k": 2, "m": 8 } ] })),
        (
            rawdoc! { "g": { "$elemMatch": { "k": 2, "m": { "$lt": 8 } } } },
            rawdoc! { "g.$": 1 },
            Ok(rawdoc! { "_id": 1, "g": [ { "k": 2, "m": 7 } ] }),
        ),
        // The last condition to reach an array decides, even another array's.
        (rawdoc! { "g.k": 2, "x": 6 }, rawdoc! { "g.$": 1 }, Ok(rawdoc! { "_id": 1, "g": [ { "k": 2, "m": 8 } ] })),
        (rawdoc! { "x": 6, "g.k": 1 }, rawdoc! { "x.$": 1 }, Ok(rawdoc! { "_id": 1, "x": [5] })),
        (
            rawdoc! { "$and": [ { "g.m": 9 }, { "g.m": { "$lt": 9 } } ] },
            rawdoc! { "g.$": 1 },
            Ok(rawdoc! { "_id": 1, "g": [ { "k": 2, "m": 8 } ] }),
        ),
        (
            rawdoc! { "$or": [ { "g.m": 7 } ] },
            rawdoc! { "g.$": 1 },
            Ok(rawdoc! { "_id": 1, "g": [ { "k": 2, "m": 7 } ] }),
        ),
        (
            rawdoc! { "$or": [ { "g.m": 7 }, { "g.m": 8 } ] },
            rawdoc! { "g.$": 1 },
            Ok(rawdoc! { "_id": 1, "g": [ { "k": 2, "m": 8 } ] }),
        ),
        // An `$or` over different paths records no element.
        (rawdoc! { "$or": [ { "g.m": 7 }, { "x": 0 } ] }, rawdoc! { "g.$": 1 }, Err(51246)),
    ];
    for (query, spec, expected) in rows {
        let label = format!("{query:?} {spec:?}");
        assert_eq!(project_q(query, spec, doc.clone()).map_err(|e| e.0), expected, "{label}");
    }
}

#[test]
fn projection_meta_other_than_text_score_not_implemented() {
    assert_eq!(parse_err(rawdoc! { "a": { "$meta": "indexKey" } }).0, 238);
    assert_eq!(parse_err(rawdoc! { "_id": 0, "a": { "$meta": "recordId" } }).0, 238);
    assert_eq!(parse_err(rawdoc! { "a": { "$meta": "other" } }).0, 17308);
}

#[test]
fn projection_computed_fields() {
    let doc = rawdoc! { "_id": 7, "a": 2, "b": 3, "s": { "x": 1, "y": 2 }, "arr": [ { "x": 1 }, { "x": 2 }, 5 ] };
    let rows: Vec<(RawDocumentBuf, RawDocumentBuf)> = vec![
        (
            rawdoc! { "total": { "$add": ["$a", "$b"] }, "a": 1, "lit": { "$literal": 5 } },
            rawdoc! { "_id": 7, "a": 2, "total": 5, "lit": 5 },
        ),
        // Any value but a number or a boolean is an expression: a field path, a string
        // constant, null, an array of expressions.
        (rawdoc! { "_id": 0, "c": "$b" }, rawdoc! { "c": 3 }),
        (rawdoc! { "_id": 0, "c": "text" }, rawdoc! { "c": "text" }),
        (rawdoc! { "_id": 0, "c": null }, rawdoc! { "c": null }),
        (rawdoc! { "_id": 0, "c": ["$a", "$missing", 1] }, rawdoc! { "c": [2, null, 1] }),
        // A missing result sets nothing.
        (rawdoc! { "_id": 0, "c": "$missing" }, rawdoc! {}),
        (rawdoc! { "_id": 0, "c": "$$REMOVE", "a": 1 }, rawdoc! { "a": 2 }),
        (rawdoc! { "_id": 0, "r": "$$ROOT.s.x" }, rawdoc! { "r": 1 }),
        // Computed fields follow the included ones, in spec order.
        (rawdoc! { "z": 1, "b": 1, "_id": 1, "a": 1 }, rawdoc! { "_id": 7, "a": 2, "b": 3 }),
        (rawdoc! { "c": "$a", "a": 1 }, rawdoc! { "_id": 7, "a": 2, "c": 2 }),
        // A computed `_id` replaces the stored one, after the included fields.
        (rawdoc! { "_id": "$a", "b": 1 }, rawdoc! { "b": 3, "_id": 2 }),
        // Nested: inside the included sub-document, into each array element, and as a new
        // document where the path is missing or a scalar.
        (rawdoc! { "_id": 0, "s.x": 1, "s.z": "$a" }, rawdoc! { "s": { "x": 1, "z": 2 } }),
        (rawdoc! { "_id": 0, "s": { "z": { "$literal": 1 } } }, rawdoc! { "s": { "z": 1 } }),
        (rawdoc! { "_id": 0, "arr.y": "$a" }, rawdoc! { "arr": [ { "y": 2 }, { "y": 2 } ] }),
        (rawdoc! { "_id": 0, "new.y": "$a" }, rawdoc! { "new": { "y": 2 } }),
        (rawdoc! { "_id": 0, "a.y": "$b" }, rawdoc! { "a": { "y": 3 } }),
        // The aggregation `$slice` when the find syntax does not fit.
        (rawdoc! { "_id": 0, "f": { "$slice": ["$arr.x", 1] } }, rawdoc! { "f": [1] }),
        (rawdoc! { "_id": 0, "f": { "$slice": ["$arr.x", -1, 1] } }, rawdoc! { "f": [2] }),
    ];
    for (spec, expected) in rows {
        assert_eq!(project(spec.clone(), doc.clone()), expected, "{spec:?}");
    }
}

#[test]
fn projection_computed_uses_let_variables() {
    let vars = Variables::from_let(&rawdoc! { "v": { "$add": [1, 1] } }).unwrap();
    let projection = Projection::parse(&rawdoc! { "_id": 0, "x": "$$v" }).unwrap().with_variables(&vars);
    assert_eq!(projection.apply(&rawdoc! { "_id": 1 }).unwrap(), rawdoc! { "x": 2 });
    let unbound = Projection::parse(&rawdoc! { "x": "$$nope" }).unwrap();
    assert_eq!(unbound.apply(&rawdoc! { "_id": 1 }).unwrap_err().code().code(), 17276);
}

#[test]
fn projection_computed_errors() {
    let rows: Vec<(RawDocumentBuf, i32)> = vec![
        (rawdoc! { "a": 0, "b": { "$add": [1, 2] } }, 31252),
        (rawdoc! { "a": 0, "b": "x" }, 31310),
        (rawdoc! { "b": "x", "a": 0 }, 31254),
        (rawdoc! { "b": { "$add": [1] }, "a": 0 }, 31254),
        (rawdoc! { "b": { "$bogus": 1 } }, 31325),
        (rawdoc! { "b": { "$add": [{ "$bogus": 1 }] } }, 168),
        (rawdoc! { "b": { "$zip": { "inputs": [] } } }, 34465),
        (rawdoc! { "b": { "$add": 1, "c": 1 } }, 16410),
        (rawdoc! { "b": "$", "c": 1 }, 16872),
        (rawdoc! { "b": "$a", "b.c": 1 }, 31249),
    ];
    for (spec, code) in rows {
        assert_eq!(parse_err(spec.clone()).0, code, "{spec:?}");
    }
    let divide = Projection::parse(&rawdoc! { "x": { "$divide": [1, 0] } }).unwrap();
    assert_eq!(divide.apply(&rawdoc! { "_id": 1 }).unwrap_err().code().code(), 2);
    let err = rawdoc! { "a.$": "x" };
    assert_eq!(parse_err_q(rawdoc! { "a": 1 }, err).0, 31308);
}

#[test]
fn projection_slice_forms() {
    let doc = rawdoc! { "_id": 1, "a": [1, 2, 3, 4, 5], "b": 7 };
    let rows: Vec<(RawDocumentBuf, RawDocumentBuf)> = vec![
        (rawdoc! { "a": { "$slice": 2 } }, rawdoc! { "_id": 1, "a": [1, 2], "b": 7 }),
        (rawdoc! { "a": { "$slice": -2 } }, rawdoc! { "_id": 1, "a": [4, 5], "b": 7 }),
        (rawdoc! { "a": { "$slice": 0 } }, rawdoc! { "_id": 1, "a": [], "b": 7 }),
        (rawdoc! { "a": { "$slice": 10 } }, rawdoc! { "_id": 1, "a": [1, 2, 3, 4, 5], "b": 7 }),
        (rawdoc! { "a": { "$slice": -10 } }, rawdoc! { "_id": 1, "a": [1, 2, 3, 4, 5], "b": 7 }),
        (rawdoc! { "a": { "$slice": 2.7 } }, rawdoc! { "_id": 1, "a": [1, 2], "b": 7 }),
        (rawdoc! { "a": { "$slice": [1, 2] } }, rawdoc! { "_id": 1, "a": [2, 3], "b": 7 }),
        (rawdoc! { "a": { "$slice": [-2, 1] } }, rawdoc! { "_id": 1, "a": [4], "b": 7 }),
        (rawdoc! { "a": { "$slice": [-10, 2] } }, rawdoc! { "_id": 1, "a": [1, 2], "b": 7 }),
        (rawdoc! { "a": { "$slice": [10, 2] } }, rawdoc! { "_id": 1, "a": [], "b": 7 }),
        (rawdoc! { "b": { "$slice": 1 } }, rawdoc! { "_id": 1, "a": [1, 2, 3, 4, 5], "b": 7 }),
        // With an inclusion the sliced field is included too.
        (rawdoc! { "a": { "$slice": 1 }, "b": 1 }, rawdoc! { "_id": 1, "a": [1], "b": 7 }),
        (rawdoc! { "_id": 1, "a": { "$slice": 1 } }, rawdoc! { "_id": 1, "a": [1] }),
        (rawdoc! { "a": { "$slice": 1 }, "b": 0 }, rawdoc! { "_id": 1, "a": [1] }),
        (rawdoc! { "_id": 0, "a": { "$slice": 1 } }, rawdoc! { "a": [1], "b": 7 }),
    ];
    for (i, (spec, expected)) in rows.into_iter().enumerate() {
        assert_eq!(project(spec, doc.clone()), expected, "row {i}");
    }
}

#[test]
fn projection_slice_dotted_through_arrays() {
    let doc = rawdoc! { "a": [ { "b": [1, 2, 3] }, { "b": 4 }, 5 ] };
    assert_eq!(project(rawdoc! { "a.b": { "$slice": 1 } }, doc), rawdoc! { "a": [ { "b": [1] }, { "b": 4 }, 5 ] });
    let nested = rawdoc! { "a": { "b": [1, 2], "c": 1 } };
    assert_eq!(project(rawdoc! { "a": { "b": { "$slice": -1 } } }, nested), rawdoc! { "a": { "b": [2], "c": 1 } });
}

#[test]
fn projection_slice_errors() {
    // Not find syntax but a valid `$slice` expression, which fails on a non-array.
    let slice = Projection::parse(&rawdoc! { "a": { "$slice": [1, 0] } }).unwrap();
    assert_eq!(slice.apply(&rawdoc! { "a": [1] }).unwrap_err().code().code(), 28724);
    assert!(Projection::parse(&rawdoc! { "a": { "$slice": [1, 2, 3] } }).is_ok());
    let (code, message) = parse_err(rawdoc! { "a": { "$slice": "x" } });
    assert_eq!(code, 28667);
    assert_eq!(
        message,
        "Invalid $slice syntax. The given syntax { $slice: \"x\" } did not match the find() syntax because :: \
         Location31273: $slice only supports numbers and [skip, limit] arrays :: The given syntax did not match \
         the expression $slice syntax. :: caused by :: Expression $slice takes at least 2 arguments, and at most \
         3, but 1 were passed in."
    );
    let (code, message) = parse_err(rawdoc! { "a": { "$slice": [1] } });
    assert_eq!(code, 28667);
    assert!(message.contains("Location31272: $slice array argument should be of form [skip, limit]"), "{message}");
    assert!(message.ends_with("but 1 were passed in."), "{message}");
    assert_eq!(parse_err(rawdoc! { "a": 1, "a.b": { "$slice": 1 } }).0, 31249);
}

#[test]
fn projection_elem_match_under_collation() {
    let collation = Arc::new(Collation::parse(&rawdoc! { "locale": "en", "strength": 2 }).unwrap().unwrap());
    let spec = rawdoc! { "a": { "$elemMatch": { "b": "X" } } };
    let doc = rawdoc! { "_id": 1, "a": [ { "b": "y" }, { "b": "x" } ] };
    let collated = Projection::parse(&spec).unwrap().with_collation(Some(&collation));
    assert_eq!(collated.apply(&doc).unwrap(), rawdoc! { "_id": 1, "a": [ { "b": "x" } ] });
    assert_eq!(project(spec, doc), rawdoc! { "_id": 1 });
}

#[test]
fn projection_elem_match_returns_first_match_after_inclusions() {
    let doc = rawdoc! { "_id": 1, "a": [ { "b": 1 }, { "b": 2 }, { "b": 2, "c": 1 } ], "z": 3 };
    assert_eq!(
        project(rawdoc! { "a": { "$elemMatch": { "b": 2 } } }, doc.clone()),
        rawdoc! { "_id": 1, "a": [ { "b": 2 } ] }
    );
    assert_eq!(
        project(rawdoc! { "a": { "$elemMatch": { "b": 2 } }, "z": 1 }, doc.clone()),
        rawdoc! { "_id": 1, "z": 3, "a": [ { "b": 2 } ] }
    );
    assert_eq!(project(rawdoc! { "a": { "$elemMatch": { "b": 9 } } }, doc.clone()), rawdoc! { "_id": 1 });
    assert_eq!(
        project(rawdoc! { "_id": 0, "a": { "$elemMatch": { "b": 2 } } }, doc.clone()),
        rawdoc! { "a": [ { "b": 2 } ] }
    );
    // In an exclusion projection the field stays where it is.
    assert_eq!(
        project(rawdoc! { "z": 0, "a": { "$elemMatch": { "c": 1 } } }, doc.clone()),
        rawdoc! { "_id": 1, "a": [ { "b": 2, "c": 1 } ] }
    );
    assert_eq!(
        project(rawdoc! { "x": { "$elemMatch": { "$gt": 1 } } }, rawdoc! { "_id": 1, "x": [1, 5, 7] }),
        rawdoc! { "_id": 1, "x": [5] }
    );
    assert_eq!(
        project(rawdoc! { "x": { "$elemMatch": { "$gt": 1 } } }, rawdoc! { "_id": 1, "x": 5 }),
        rawdoc! { "_id": 1 }
    );
}

#[test]
fn projection_elem_match_errors() {
    assert_eq!(
        parse_err(rawdoc! { "a": { "$elemMatch": 1 } }),
        (31274, "elemMatch: Invalid argument, object required, but got int".into())
    );
    assert_eq!(
        parse_err(rawdoc! { "a.b": { "$elemMatch": { "c": 1 } } }),
        (31275, "Cannot use $elemMatch projection on a nested field.".into())
    );
    assert_eq!(parse_err(rawdoc! { "a": { "b": { "$elemMatch": { "c": 1 } } } }).0, 31275);
    assert_eq!(
        parse_err_q(rawdoc! { "a": 1 }, rawdoc! { "a.$": 1, "b": { "$elemMatch": { "c": 1 } } }),
        (31255, "Cannot specify positional operator and $elemMatch.".into())
    );
    assert_eq!(
        parse_err_q(rawdoc! { "a": 1 }, rawdoc! { "b": { "$elemMatch": { "c": 1 } }, "a.$": 1 }),
        (31256, "Cannot specify positional operator and $elemMatch.".into())
    );
    assert_eq!(parse_err(rawdoc! { "a": { "$elemMatch": { "$foo": 1 } } }), (2, "unknown operator: $foo".into()));
}

#[test]
fn projection_positional_returns_matched_element() {
    let doc = rawdoc! { "_id": 1, "a": [1, 5, 9], "b": 2 };
    assert_eq!(
        project_q(rawdoc! { "a": { "$gt": 4 } }, rawdoc! { "a.$": 1 }, doc.clone()),
        Ok(rawdoc! { "_id": 1, "a": [5] })
    );
    assert_eq!(
        project_q(rawdoc! { "a": 9, "b": 2 }, rawdoc! { "a.$": 1, "b": 1 }, doc.clone()),
        Ok(rawdoc! { "_id": 1, "a": [9], "b": 2 })
    );
    let docs = rawdoc! { "_id": 1, "a": [ { "b": 1, "c": 1 }, { "b": 2, "c": 2 } ] };
    assert_eq!(
        project_q(rawdoc! { "a.b": 2 }, rawdoc! { "_id": 0, "a.$": 1 }, docs.clone()),
        Ok(rawdoc! { "a": [ { "b": 2, "c": 2 } ] })
    );
    assert_eq!(
        project_q(rawdoc! { "a": { "$elemMatch": { "c": 2 } } }, rawdoc! { "a.b.$": 1 }, docs.clone()),
        Ok(rawdoc! { "_id": 1, "a": [ { "b": 2 } ] })
    );
    // Matched without an array: the field is left as the inclusion made it.
    assert_eq!(
        project_q(rawdoc! { "a": 3 }, rawdoc! { "a.$": 1 }, rawdoc! { "_id": 1, "a": 3 }),
        Ok(rawdoc! { "_id": 1, "a": 3 })
    );
}

#[test]
fn projection_positional_runtime_errors() {
    let doc = rawdoc! { "_id": 1, "a": [1, 5, 9], "b": 2 };
    assert_eq!(
        project_q(rawdoc! { "a": [1, 5, 9] }, rawdoc! { "a.$": 1 }, doc.clone()),
        Err((51246, "positional operator '.$' couldn't find a matching element in the array".into()))
    );
    // The whole-array equality matched without an element; a negation records none either.
    assert_eq!(project_q(rawdoc! { "a": { "$ne": 2 } }, rawdoc! { "a.$": 1 }, doc).map_err(|e| e.0), Err(51246));
}

#[test]
fn projection_positional_parse_errors() {
    assert_eq!(
        parse_err(rawdoc! { "a.$": 1 }),
        (51050, "Projections with a positional operator require a matcher".into())
    );
    assert_eq!(
        parse_err_q(rawdoc! { "b": 1 }, rawdoc! { "a.$": 1 }),
        (31277, "Positional projection 'a.$' does not match the query document.".into())
    );
    assert_eq!(
        parse_err_q(rawdoc! { "a": 1, "b": 1 }, rawdoc! { "a.$": 1, "b.$": 1 }),
        (31276, "Cannot specify more than one positional projection per query.".into())
    );
    assert_eq!(
        parse_err_q(rawdoc! { "a": 1 }, rawdoc! { "a.$.b.$": 1 }),
        (31287, "Cannot use positional operator twice: a.$.b.$".into())
    );
    assert_eq!(parse_err_q(rawdoc! { "a": 1 }, rawdoc! { "a.$.": 1 }), (31270, "Path cannot end with '.$.'".into()));
    assert_eq!(
        parse_err_q(rawdoc! { "a": 1 }, rawdoc! { "a.$": { "$slice": 1 } }),
        (31271, "positional projection cannot be used with an expression or sub object".into())
    );
    assert_eq!(
        parse_err_q(rawdoc! { "a": 1 }, rawdoc! { "a.$": "x" }),
        (31308, "positional projection cannot be used with a literal".into())
    );
    assert_eq!(parse_err_q(rawdoc! { "a": 1 }, rawdoc! { "a.$": 0 }).0, 16410);
    assert_eq!(parse_err_q(rawdoc! { "a": 1 }, rawdoc! { "a.$": 1, "b": 0 }).0, 31254);
    let nested_query = Filter::parse(&rawdoc! { "$and": [ { "a.b": 1 } ] }).unwrap();
    assert!(Projection::parse_with_query(&rawdoc! { "a.$": 1 }, &nested_query).is_ok());
}

#[test]
fn projection_paths_past_200_components_are_overflow() {
    let long = |n: usize| vec!["a"; n].join(".");
    let spec = |path: &str| {
        let mut spec = RawDocumentBuf::new();
        spec.append(<&CStr>::try_from(path).unwrap(), 1);
        spec
    };
    let too_long = (15, "FieldPath is too long".to_owned());
    assert_eq!(parse_err(spec(&long(50_000))), too_long);
    assert_eq!(parse_err(spec(&long(201))), too_long);
    assert!(Projection::parse(&spec(&long(200))).is_ok());
    // A sub-object continues its parent's path.
    let mut nested = RawDocumentBuf::new();
    nested.append(<&CStr>::try_from(long(150).as_str()).unwrap(), spec(&long(51)));
    assert_eq!(parse_err(nested), too_long);
}
