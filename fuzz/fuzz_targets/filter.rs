//! The query filter parser and matcher on arbitrary BSON: parsing must never panic, and a
//! parsed filter must evaluate on any document (its own input included) without panicking.
#![no_main]

use bson::{RawDocument, RawDocumentBuf, doc};
use libfuzzer_sys::fuzz_target;
use monarch::query::Filter;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = RawDocument::from_bytes(data) else { return };
    let Ok(filter) = Filter::parse(raw) else { return };
    let samples = [
        doc! {},
        doc! { "a": 1, "b": [1, 2, { "c": "x" }], "d": { "e": null } },
        doc! { "a": [[1], { "b": 2.5 }], "s": "text", "t": true },
    ];
    for sample in &samples {
        if let Ok(doc) = RawDocumentBuf::try_from(sample) {
            let _ = filter.try_matches(&doc);
        }
    }
    let _ = filter.try_matches(raw);
});
