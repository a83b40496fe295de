//! The text scores of a `$text` search's documents, for `{$meta: "textScore"}` in
//! projections, sorts and expressions: the search records each document's score as it hands
//! the document on, and readers (which only see documents after that) find it by `_id`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bson::{RawBsonRef, RawDocument, RawDocumentBuf};

/// The scores of one search's documents, shared by the search and the stages that read them.
#[derive(Debug, Default)]
pub struct TextScores {
    by_id: Mutex<HashMap<Vec<u8>, f64>>,
}

impl TextScores {
    /// An empty set, to share before the search runs.
    pub fn shared() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Records the score of the document whose `_id` is `id`.
    pub fn record(&self, id: RawBsonRef<'_>, score: f64) {
        self.by_id.lock().unwrap_or_else(PoisonError::into_inner).insert(id_key(id), score);
    }

    /// The score of `doc`, a document the search returned (`None` for another, or one
    /// whose `_id` a stage has changed since).
    pub fn score_of(&self, doc: &RawDocument) -> Option<f64> {
        let id = doc.get("_id").ok().flatten()?;
        self.by_id.lock().unwrap_or_else(PoisonError::into_inner).get(&id_key(id)).copied()
    }
}

/// One search's scores equal only themselves (variables compare by what they hold).
impl PartialEq for TextScores {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

/// The bytes a score is filed under: the `_id` value as a one-field document.
fn id_key(id: RawBsonRef<'_>) -> Vec<u8> {
    let mut key = RawDocumentBuf::new();
    key.append(bson::raw::cstr!("_id"), id);
    key.into_bytes()
}

/// Whether a projection or sort specification asks for `{$meta: "textScore"}` anywhere:
/// mongod refuses one without a `$text` query (40218) before it runs.
pub fn mentions_text_score(spec: &RawDocument) -> bool {
    spec.iter().flatten().any(|(name, value)| match value {
        RawBsonRef::String("textScore") => name == "$meta",
        RawBsonRef::Document(inner) => mentions_text_score(inner),
        RawBsonRef::Array(items) => items.into_iter().flatten().any(|item| match item {
            RawBsonRef::Document(inner) => mentions_text_score(inner),
            _ => false,
        }),
        _ => false,
    })
}
