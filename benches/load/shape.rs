//! The documents and keys the workloads and the engine floor share, and the random streams
//! they are drawn from.

use bson::{Document, RawBsonRef, doc};

use crate::BenchResult;

/// String fields per document, as in YCSB.
pub(crate) const FIELDS: usize = 10;
/// Documents per `insert_many` and per engine batch.
pub(crate) const BATCH: u64 = 1_000;
/// The engine floor's collection prefix (Monarch's keys start with the collection id).
pub(crate) const ENGINE_PREFIX: u64 = 1;
/// Salts for the random streams derived from (worker, sequence).
pub(crate) const KEY_SALT: u64 = 0x6b65_7973;
pub(crate) const MIX_SALT: u64 = 0x6d69_7865;
const FIELD_SALT: u64 = 0x6669_656c;

/// The YCSB-shaped documents: an int64 `_id` and `FIELDS` strings of equal length.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub(crate) records: u64,
    field_len: usize,
    /// Extra bytes in `field0` so the document reaches the requested size exactly.
    pad: usize,
    /// The BSON size of every document.
    pub(crate) doc_size: usize,
}

impl Shape {
    pub(crate) fn new(records: u64, doc_size: usize) -> BenchResult<Self> {
        let mut shape = Self { records, field_len: 0, pad: 0, doc_size: 0 };
        let room = doc_size.saturating_sub(shape.bytes(0)?.len());
        shape.field_len = room / FIELDS;
        shape.pad = room % FIELDS;
        shape.doc_size = shape.bytes(0)?.len();
        Ok(shape)
    }

    pub(crate) fn document(&self, id: u64) -> Document {
        let mut document = Document::new();
        document.insert("_id", id as i64);
        document.insert("k", id as i64);
        for field in 0..FIELDS {
            document.insert(format!("field{field}"), filler(id * FIELDS as u64 + field as u64, self.field_len(field)));
        }
        document
    }

    /// The length of `field<n>`'s string.
    fn field_len(&self, field: usize) -> usize {
        self.field_len + if field == 0 { self.pad } else { 0 }
    }

    pub(crate) fn bytes(&self, id: u64) -> BenchResult<Vec<u8>> {
        Ok(self.document(id).to_vec()?)
    }

    /// A YCSB update: one random field gets a new value of the same length.
    pub(crate) fn update(&self, worker: usize, seq: u64) -> Document {
        let draw = random(worker, seq, FIELD_SALT);
        let field = (draw % FIELDS as u64) as usize;
        let mut set = Document::new();
        set.insert(format!("field{field}"), filler(draw, self.field_len(field)));
        doc! { "$set": set }
    }

    /// A uniform random `_id` among the loaded records.
    pub(crate) fn random_id(&self, worker: usize, seq: u64) -> u64 {
        random(worker, seq, KEY_SALT) % self.records
    }
}

/// SplitMix64: a tiny, good-enough generator for keys and filler.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A random number that depends only on the worker, its operation number and a salt.
pub(crate) fn random(worker: usize, seq: u64, salt: u64) -> u64 {
    let mut state = ((worker as u64) << 48) ^ seq ^ salt.rotate_left(17);
    splitmix64(&mut state)
}

/// `len` lowercase letters derived from `seed`.
fn filler(seed: u64, len: usize) -> String {
    let mut state = seed;
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for byte in splitmix64(&mut state).to_le_bytes().into_iter().take(len - out.len()) {
            out.push(char::from(b'a' + byte % 26));
        }
    }
    out
}

/// The engine floor's key for `id`: the collection prefix, then Monarch's `_id` encoding.
pub(crate) fn engine_key(id: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(24);
    key.extend_from_slice(&ENGINE_PREFIX.to_be_bytes());
    monarch::storage::keys::encode_value(RawBsonRef::Int64(id as i64), &mut key);
    key
}
