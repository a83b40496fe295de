//! The order-preserving key encoding against `compare_values`, its differential oracle.
//!
//! The encoding has no decoder (values that compare equal share one encoding on purpose:
//! `1`, `1.0` and `NumberLong(1)` are one unique-index key), so the round trip is checked as
//! far as it exists: equal values give identical bytes, and distinct orders give distinct
//! bytes in the same order.

use bson::RawBsonRef;

use super::leading_document;
use crate::query::compare_values;
use crate::storage::keys::{encode_descending, encode_value};

/// At most this many values of the input document are compared pairwise.
const MAX_VALUES: usize = 8;

fn ascending(value: RawBsonRef<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_value(value, &mut out);
    out
}

fn descending(value: RawBsonRef<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_descending(value, &mut out);
    out
}

/// The values of the input's leading document, compared pairwise: `memcmp` of their ascending
/// encodings equals `compare_values`, of their descending ones its reverse; and compound keys
/// of neighbours (`v[i]` ascending, then `v[i + 1]` descending) order by the first field, then
/// by the second reversed, which holds only because no encoding is a prefix of another.
pub fn keys(data: &[u8]) {
    let Some((doc, _)) = leading_document(data) else { return };
    let values: Vec<RawBsonRef<'_>> =
        doc.iter().take(MAX_VALUES).map_while(Result::ok).map(|(_, value)| value).collect();
    let encoded: Vec<(Vec<u8>, Vec<u8>)> = values.iter().map(|v| (ascending(*v), descending(*v))).collect();
    for (a, (a_up, a_down)) in values.iter().zip(&encoded) {
        for (b, (b_up, b_down)) in values.iter().zip(&encoded) {
            let expected = compare_values(*a, *b);
            assert_eq!(a_up.cmp(b_up), expected, "ascending keys disagree with compare_values: {a:?} vs {b:?}");
            assert_eq!(a_down.cmp(b_down), expected.reverse(), "descending keys disagree: {a:?} vs {b:?}");
        }
    }
    let pairs: Vec<(RawBsonRef<'_>, RawBsonRef<'_>, Vec<u8>)> = values
        .iter()
        .zip(&encoded)
        .zip(values.iter().zip(&encoded).skip(1))
        .map(|((first, (first_up, _)), (second, (_, second_down)))| {
            (*first, *second, [first_up.as_slice(), second_down.as_slice()].concat())
        })
        .collect();
    for (a1, a2, a_key) in &pairs {
        for (b1, b2, b_key) in &pairs {
            let expected = compare_values(*a1, *b1).then_with(|| compare_values(*b2, *a2));
            assert_eq!(a_key.cmp(b_key), expected, "compound keys disagree: ({a1:?}, {a2:?}) vs ({b1:?}, {b2:?})");
        }
    }
}
