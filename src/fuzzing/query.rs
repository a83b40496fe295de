//! The query language's parsers and evaluators: a fuzzed specification (the input's leading
//! BSON document) parsed, then evaluated on the fixed samples and on the documents after it.

use bson::{Document, RawArray, RawDocument, RawDocumentBuf};

use super::{leading_document, query_targets as targets};
use crate::query::{Filter, Projection, SortSpec, Update};

/// `doc`'s bytes read as a BSON array (an array is a document whose keys are positions; the
/// parsers take a [`RawArray`], which `bson` builds only from inside a document).
fn as_array(doc: &RawDocument) -> Option<RawDocumentBuf> {
    let bytes = doc.as_bytes();
    let mut wrapper = Vec::with_capacity(bytes.len() + 8);
    let len = i32::try_from(bytes.len() + 8).ok()?;
    wrapper.extend_from_slice(&len.to_le_bytes());
    wrapper.extend_from_slice(&[0x04, b'a', 0]);
    wrapper.extend_from_slice(bytes);
    wrapper.push(0);
    RawDocumentBuf::from_bytes(wrapper).ok()
}

/// The array inside a wrapper built by [`as_array`].
fn array_of(wrapper: &RawDocument) -> Option<&RawArray> {
    wrapper.get_array("a").ok()
}

/// The filter parser and matcher: a parsed filter must evaluate on any document, its own
/// input included, without panicking.
pub fn filter(data: &[u8]) {
    let Some((spec, rest)) = leading_document(data) else { return };
    let Ok(filter) = Filter::parse(spec) else { return };
    for doc in targets(rest, 4) {
        let _ = filter.try_matches(&doc);
    }
    let _ = filter.try_matches(spec);
}

/// The projection parsers (`find`'s, with and without a query for `a.$`, and `$project`'s)
/// and their application.
pub fn projection(data: &[u8]) {
    let Some((spec, rest)) = leading_document(data) else { return };
    let query = leading_document(rest).and_then(|(query, _)| Filter::parse(query).ok());
    let parsed = [
        Projection::parse(spec).ok(),
        Projection::parse_aggregate(spec).ok(),
        query.as_ref().and_then(|query| Projection::parse_with_query(spec, query).ok()),
    ];
    let docs = targets(rest, 4);
    for projection in parsed.iter().flatten() {
        for doc in &docs {
            let _ = projection.apply(doc);
        }
        let _ = projection.apply(spec);
    }
}

/// The update parser (operators, replacement, or a pipeline when the spec's first key is `0`,
/// as an array's is) with an optional query (for the positional `$`) and array filters (the
/// second and third documents), applied to every target both as an update and as an upsert's
/// insert.
pub fn update(data: &[u8]) {
    let Some((spec, rest)) = leading_document(data) else { return };
    let (query, rest) = leading_document(rest).unwrap_or((spec, rest));
    let filters = leading_document(rest).and_then(|(filters, _)| as_array(filters));
    let parsed = match spec.iter().next() {
        Some(Ok((key, _))) if key.as_str() == "0" => {
            as_array(spec).and_then(|wrapper| Update::parse_pipeline(array_of(&wrapper)?, &Default::default()).ok())
        }
        _ => Update::parse_statement(spec, query, filters.as_deref().and_then(array_of)).ok(),
    };
    let Some(update) = parsed else { return };
    for target in targets(rest, 2) {
        let Ok(original) = Document::try_from(target.as_ref()) else { continue };
        for inserting in [false, true] {
            let mut doc = original.clone();
            let _ = update.apply(&mut doc, inserting);
        }
    }
}

/// The sort parser and comparator: comparing a document with itself is `Equal`, comparing is
/// antisymmetric and transitive, and sorting does not panic (the standard sort may panic on an order
/// that is not total).
pub fn sort(data: &[u8]) {
    let Some((spec, rest)) = leading_document(data) else { return };
    let Ok(sort) = SortSpec::parse(spec) else { return };
    let mut docs = targets(rest, 6);
    for a in &docs {
        assert_eq!(sort.compare(a, a), std::cmp::Ordering::Equal, "a document sorts apart from itself: {a:?}");
        for b in &docs {
            let ab = sort.compare(a, b);
            assert_eq!(ab, sort.compare(b, a).reverse(), "not antisymmetric: {a:?} and {b:?}");
            for c in &docs {
                // Transitive: a <= b <= c means a <= c, and a strict step makes it strict.
                let bc = sort.compare(b, c);
                if ab.is_le() && bc.is_le() {
                    let ac = sort.compare(a, c);
                    let strict = ab.is_lt() || bc.is_lt();
                    assert!(if strict { ac.is_lt() } else { ac.is_eq() }, "not transitive: {a:?}, {b:?}, {c:?}");
                }
            }
        }
    }
    docs.sort_by(|a, b| sort.compare(a, b));
}
