//! The bodies of the fuzz targets in `fuzz/`, kept in the library so that one copy serves both
//! libFuzzer (nightly, `cargo fuzz run <target>`) and the stable replay of every committed seed
//! and regression input (`tests/fuzz_replay.rs`), which runs under `cargo test`.
//!
//! Each body takes arbitrary bytes and must never panic; a panic is a bug, and the assertions
//! inside are the oracles (the decoder fed in splits agrees with the decoder fed whole, the key
//! encoding orders as `compare_values`, a sort is antisymmetric). Not part of the server's API.

mod keys;
mod query;
mod server;
mod wire;

pub use keys::keys;
pub use query::{filter, projection, sort, update};
pub use server::{Harness, command, pipeline};
pub use wire::{wire_compressed, wire_stream};

/// Every target by name, as `fuzz/fuzz_targets/` and the seed directories name them.
pub const TARGETS: &[&str] =
    &["wire_stream", "wire_compressed", "filter", "projection", "update", "sort", "pipeline", "keys", "command"];

/// Runs the target `name` on `data` (`harness` serves the targets that need server state).
/// Returns `false` for an unknown name.
pub fn run(name: &str, data: &[u8], harness: &Harness) -> bool {
    match name {
        "wire_stream" => wire_stream(data),
        "wire_compressed" => wire_compressed(data),
        "filter" => filter(data),
        "projection" => projection(data),
        "update" => update(data),
        "sort" => sort(data),
        "pipeline" => pipeline(harness, data),
        "keys" => keys(data),
        "command" => command(harness, data),
        _ => return false,
    }
    true
}

/// Splits `data` into a leading BSON document (its length prefix tells where it ends) and the
/// bytes after it; `None` when no whole document leads.
fn leading_document(data: &[u8]) -> Option<(&bson::RawDocument, &[u8])> {
    let prefix: [u8; 4] = data.get(..4)?.try_into().ok()?;
    let len = usize::try_from(i32::from_le_bytes(prefix)).ok()?;
    let (head, rest) = data.split_at_checked(len)?;
    let doc = bson::RawDocument::from_bytes(head).ok()?;
    Some((doc, rest))
}

/// The documents every query target evaluates on, beside its own input: the shapes that
/// exercise paths (nested documents, arrays of arrays, arrays of documents), every scalar
/// type's bracket, and missing and null fields.
fn samples() -> Vec<bson::RawDocumentBuf> {
    use bson::{Binary, DateTime, Decimal128, Timestamp, doc, oid::ObjectId, spec::BinarySubtype};
    let docs = [
        doc! {},
        doc! { "_id": 1, "a": 1, "b": [1, 2, { "c": "x" }], "d": { "e": null } },
        doc! { "_id": 2, "a": [[1], { "b": 2.5 }], "s": "text", "t": true, "n": -0.0 },
        doc! {
            "_id": ObjectId::from_bytes([7; 12]),
            "a": { "b": [{ "c": 1 }, { "c": [2, 3] }] },
            "when": DateTime::from_millis(1_700_000_000_000),
            "ts": Timestamp { time: 5, increment: 1 },
            "dec": Decimal128::from_bytes([0; 16]),
            "bin": Binary { subtype: BinarySubtype::Generic, bytes: vec![1, 2, 3] },
            "big": i64::MAX,
            "nan": f64::NAN,
        },
    ];
    docs.iter().filter_map(|d| bson::RawDocumentBuf::try_from(d).ok()).collect()
}

/// The documents after the leading one (at most `limit`), then the samples.
fn query_targets(mut rest: &[u8], limit: usize) -> Vec<bson::RawDocumentBuf> {
    let mut docs = Vec::new();
    while docs.len() < limit {
        let Some((doc, tail)) = leading_document(rest) else { break };
        docs.push(doc.to_owned());
        rest = tail;
    }
    docs.extend(samples());
    docs
}
