//! Secondary indexes: their catalog form and their entries in the `index` keyspace.
//!
//! An entry's key is the index id (8 bytes, big-endian), the key tuple (each field encoded by
//! [`keys`](super::keys), inverted for descending fields, a hash for hashed ones), the
//! document's record key (its encoded `_id`) and that record key's length (u16, big-endian),
//! so that the record can be cut from the end of a key. Every entry carries the record key,
//! unique indexes included: a unique check is then a prefix scan over `index id + tuple`, the
//! same shape for every index. The value is the key's values as a BSON document
//! (`{a: 1, "b.c": "x"}`), for duplicate-key errors, `returnKey` and covered queries.
//!
//! The `_id` index has no entries: the `docs` keyspace is ordered by `_id` already.

use std::hash::Hasher;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bson::{Bson, Document, RawBsonRef, RawDocument, RawDocumentBuf};

use super::engine::Instant;
pub(super) use super::engine::prefix_successor;
use super::keys;
use crate::error::{Error, ErrorCode, Result};
use crate::query::Filter;
use crate::query::bounds::{IndexBounds, Interval};
use crate::query::collation::Collation;
use crate::query::geo::{self, Shape};
use crate::query::index_key::{KeyOrder, KeyPattern};
use crate::query::text::TextSpec;

/// An index entry as stored: key and value bytes.
pub type IndexEntryBytes = (Vec<u8>, Vec<u8>);

/// Index id of the `_id` index, which has no entries of its own.
pub(super) const ID_INDEX_ID: u64 = 0;
/// The `_id` index's name, in every collection.
pub(super) const ID_INDEX_NAME: &str = "_id_";

/// Which way a scan walks the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Ascending key order.
    Forward,
    /// Descending key order.
    Backward,
}

impl Direction {
    /// [`Direction::Backward`] when `backward`, else forward.
    pub fn backward_if(backward: bool) -> Self {
        if backward { Self::Backward } else { Self::Forward }
    }

    /// Whether this is [`Direction::Backward`].
    pub fn is_backward(self) -> bool {
        self == Self::Backward
    }
}

/// `min` and `max` of a hinted index scan: one key range (`min` inclusive, `max` exclusive)
/// that replaces the query's bounds. Holds the encoded key tuples, without the prefix that
/// places them in the engine.
#[derive(Debug, Clone)]
pub struct KeyLimits {
    start: Vec<u8>,
    end: Option<Vec<u8>>,
}

impl KeyLimits {
    /// The limits as a byte range of the keys under `prefix`.
    pub(super) fn range_under(&self, prefix: &[u8]) -> KeyRange {
        let under = |key: &[u8]| [prefix, key].concat();
        let end = match &self.end {
            Some(end) => Bound::Excluded(under(end)),
            None => prefix_range(prefix.to_vec()).1,
        };
        (under(&self.start), end)
    }
}

/// One index of a collection, as the catalog keeps it.
#[derive(Debug)]
pub struct Index {
    /// Storage id: the prefix of its entries (never reused); 0 for `_id_`.
    pub id: u64,
    /// Its name (`a_1`).
    pub name: String,
    /// The key pattern.
    pub pattern: KeyPattern,
    /// The specification as `listIndexes` shows it (`{v: 2, key, name, ...options}`).
    pub spec: Document,
    /// `unique: true`.
    pub unique: bool,
    /// `sparse: true`: documents missing every indexed field get no entry.
    pub sparse: bool,
    /// `partialFilterExpression`: only matching documents get entries.
    pub partial: Option<Filter>,
    /// `hidden: true`: maintained but never chosen by the planner.
    pub hidden: bool,
    /// `expireAfterSeconds` of a TTL index.
    pub expire_after_seconds: Option<i64>,
    /// The index's collation: its string keys are collation keys (`None`: simple).
    pub collation: Option<Arc<Collation>>,
    /// A text index's weights and languages.
    pub text: Option<TextSpec>,
    /// A 2d index's grid (`bits`, `min`, `max`).
    pub grid: Option<FlatGrid>,
    /// Whether some document gave it several keys (or an array): set once, never cleared.
    multikey: AtomicBool,
    /// Queries that scanned it since `accesses_since` (`$indexStats`).
    accesses: AtomicU64,
    /// When the count started: the index's creation or the server's start.
    accesses_since: bson::DateTime,
    /// The first engine instant whose views hold all its entries: views of earlier instants
    /// (an older transaction's, a snapshot read's at an earlier time) must not scan it. 0 for
    /// an index that existed when the server started; `u64::MAX` while its build commits.
    visible_from: AtomicU64,
}

impl Index {
    /// Builds an index from its specification document (validated by the command layer, or
    /// read back from the catalog).
    ///
    /// # Errors
    /// 67 CannotCreateIndex for a malformed key pattern or partial filter.
    pub fn from_spec(id: u64, spec: Document, multikey: bool) -> Result<Self> {
        let key = spec.get_document("key").map_err(|_| Error::new(ErrorCode::CannotCreateIndex, "index has no key"))?;
        let mut pattern = KeyPattern::parse(&to_raw(key)?)?;
        if let Ok(projection) = spec.get_document("wildcardProjection") {
            pattern = pattern.with_wildcard_projection(projection)?;
        }
        let name = spec.get_str("name").map_err(|_| Error::new(ErrorCode::CannotCreateIndex, "index has no name"))?;
        let text = if pattern.is_text() { Some(TextSpec::from_stored(&spec)?) } else { None };
        let grid = match pattern.geo_field() {
            Some((_, _, KeyOrder::Flat)) => Some(FlatGrid::of_spec(&spec)?),
            _ => None,
        };
        let partial = match spec.get_document("partialFilterExpression") {
            Ok(filter) => Some(Filter::parse(&to_raw(filter)?)?),
            Err(_) => None,
        };
        let collation = match spec.get_document("collation") {
            Ok(collation) => Collation::parse(&to_raw(collation)?)?.map(Arc::new),
            Err(_) => None,
        };
        let flag = |field: &str| spec.get_bool(field).unwrap_or(false);
        let expire_after_seconds = match spec.get("expireAfterSeconds") {
            Some(Bson::Int32(n)) => Some(i64::from(*n)),
            Some(Bson::Int64(n)) => Some(*n),
            Some(Bson::Double(n)) => Some(*n as i64),
            _ => None,
        };
        Ok(Self {
            id,
            name: name.to_owned(),
            // `_id_` is unique whether it is the documents' own order or has entries.
            unique: flag("unique") || id == ID_INDEX_ID || name == ID_INDEX_NAME,
            sparse: flag("sparse"),
            hidden: flag("hidden"),
            partial,
            expire_after_seconds,
            collation,
            text,
            grid,
            pattern,
            multikey: AtomicBool::new(multikey),
            accesses: AtomicU64::new(0),
            accesses_since: bson::DateTime::now(),
            visible_from: AtomicU64::new(0),
            spec,
        })
    }

    /// Whether a view at engine instant `instant` holds all its entries.
    pub fn visible_at(&self, instant: Instant) -> bool {
        instant >= self.visible_from.load(Ordering::Acquire)
    }

    /// Sets the first instant whose views hold all its entries (see [`Index::visible_at`]).
    pub(super) fn set_visible_from(&self, instant: Instant) {
        self.visible_from.store(instant, Ordering::Release);
    }

    /// The instant from which it is visible (carried over when options change).
    pub(super) fn visible_from(&self) -> Instant {
        self.visible_from.load(Ordering::Acquire)
    }

    /// Counts one query that scans this index.
    pub fn record_access(&self) {
        self.accesses.fetch_add(1, Ordering::Relaxed);
    }

    /// Queries that scanned this index, and since when (`$indexStats`' `accesses`).
    pub fn accesses(&self) -> (u64, bson::DateTime) {
        (self.accesses.load(Ordering::Relaxed), self.accesses_since)
    }

    /// Whether this is the `_id_` index of a collection clustered by `_id`: its entries are
    /// the documents themselves. (A capped collection's `_id_` has entries of its own, as a
    /// secondary index does; see [`Index::is_named_id`].)
    pub fn is_id_index(&self) -> bool {
        self.id == ID_INDEX_ID
    }

    /// Whether this is the `_id_` index every collection has, however it is stored (a
    /// clustered collection's may have another name): it cannot be dropped or hidden.
    pub fn is_named_id(&self) -> bool {
        self.name == ID_INDEX_NAME || self.id == ID_INDEX_ID
    }

    /// The start of the `_id_` index's keys for the `_id` value `id` (its entries' keys are
    /// this, then the record they point to).
    ///
    /// # Errors
    /// The index's key errors (an `_id` always has a key).
    pub(super) fn id_key_prefix(&self, id: RawBsonRef<'_>) -> Result<Vec<u8>> {
        let mut document = RawDocumentBuf::new();
        document.append(bson::raw::cstr!("_id"), id);
        let (entries, _) = self.entries(&document, &[])?;
        let key = entries.into_iter().next().map(|(key, _)| key).unwrap_or_default();
        // An entry ends with its record and the record's 2-byte length; the record is empty.
        Ok(key.get(..key.len().saturating_sub(2)).unwrap_or_default().to_vec())
    }

    /// Whether some document gave this index several keys.
    pub fn is_multikey(&self) -> bool {
        self.multikey.load(Ordering::Acquire)
    }

    /// Records that this index is multikey; returns true if it was not before.
    pub(super) fn mark_multikey(&self) -> bool {
        !self.multikey.swap(true, Ordering::AcqRel)
    }

    /// The first bytes of every entry of this index.
    pub(super) fn prefix(&self) -> [u8; 8] {
        self.id.to_be_bytes()
    }

    /// The entries `doc` (whose record key is `record`) gives this index, as `(key, value)`
    /// pairs, and whether they make the index multikey. Sparse and partial indexes give
    /// skipped documents no entry.
    ///
    /// # Errors
    /// 171 CannotIndexParallelArrays, 16766 (an array in a hashed field), a partial filter's
    /// evaluation error.
    pub(super) fn entries(&self, doc: &RawDocument, record: &[u8]) -> Result<(Vec<IndexEntryBytes>, bool)> {
        if self.sparse && self.pattern.all_missing(doc) {
            return Ok((Vec::new(), false));
        }
        if let Some(partial) = &self.partial
            && !partial.try_matches(doc)?
        {
            return Ok((Vec::new(), false));
        }
        if let Some(text) = &self.text {
            return self.text_entries(text, doc, record);
        }
        if let Some((position, path, order)) = self.pattern.geo_field() {
            return self.geo_entries(doc, record, (position, path.dotted(), order));
        }
        if let Some(wildcard) = self.pattern.wildcard() {
            let (keys, multikey) = wildcard.keys(doc);
            let mut entries = Vec::with_capacity(keys.len());
            for (path, value) in &keys {
                entries.push(self.entry(&[RawBsonRef::String(path), *value], record)?);
            }
            return Ok((entries, multikey));
        }
        let keys = self.pattern.keys(doc)?;
        let mut entries = Vec::with_capacity(keys.tuples.len());
        for tuple in &keys.tuples {
            entries.push(self.entry(tuple, record)?);
        }
        Ok((entries, keys.multikey))
    }

    /// A text index's entries: one per distinct term of the document, its key the other
    /// fields' values around the term, its value holding the term's score (`_ftsx`).
    fn text_entries(&self, text: &TextSpec, doc: &RawDocument, record: &[u8]) -> Result<(Vec<IndexEntryBytes>, bool)> {
        let terms = text.terms(doc)?;
        let (before, after) = self.pattern.text_extras(doc)?;
        let mut entries = Vec::with_capacity(terms.len());
        for (term, score) in &terms {
            let mut tuple = before.clone();
            tuple.push(RawBsonRef::String(term));
            tuple.push(RawBsonRef::Double(*score));
            tuple.extend_from_slice(&after);
            entries.push(self.entry(&tuple, record)?);
        }
        Ok((entries, terms.len() > 1))
    }

    /// A geo index's entries: one per key of the document's geometry (S2 cells, or a 2d
    /// geohash), the other fields' values around it. A document without the field has none.
    fn geo_entries(
        &self,
        doc: &RawDocument,
        record: &[u8],
        (position, path, order): (usize, &str, KeyOrder),
    ) -> Result<(Vec<IndexEntryBytes>, bool)> {
        let Some(value) = crate::query::index_key::value_through_documents(doc, path) else {
            return Ok((Vec::new(), false));
        };
        let shapes = geo_shapes(value);
        let mut keys = Vec::new();
        for shape in shapes {
            match (order, shape) {
                (KeyOrder::Flat, Some(Ok(Shape::Legacy(point)))) => {
                    let grid = self.grid.unwrap_or_default();
                    keys.push(grid.hash(point.x(), point.y())?);
                }
                (KeyOrder::Flat, _) => {
                    return Err(Error::new(
                        ErrorCode::Location16804,
                        "location object expected, location array not in correct format",
                    ));
                }
                (_, Some(Ok(shape))) => {
                    if let Shape::Legacy(point) = shape
                        && (!(-180.0..=180.0).contains(&point.x()) || !(-90.0..=90.0).contains(&point.y()))
                    {
                        return Err(cannot_extract(
                            doc,
                            &format!("longitude/latitude is out of bounds, lng: {} lat: {}", point.x(), point.y()),
                        ));
                    }
                    keys.extend(geo::cells::keys_of(&shape));
                }
                (_, Some(Err(why))) => return Err(cannot_extract(doc, &why)),
                (_, None) => return Err(cannot_extract(doc, "Point must be an array or object")),
            }
        }
        keys.sort_unstable();
        keys.dedup();
        let extras = self.pattern.geo_extras(doc);
        let mut entries = Vec::with_capacity(keys.len());
        for key in &keys {
            let tuple: Vec<RawBsonRef<'_>> = extras
                .iter()
                .enumerate()
                .map(
                    |(i, value)| {
                        if i == position { RawBsonRef::Int64(*key) } else { value.unwrap_or(RawBsonRef::Null) }
                    },
                )
                .collect();
            entries.push(self.entry(&tuple, record)?);
        }
        Ok((entries, keys.len() > 1))
    }

    /// The entry of one key tuple of the document whose record key is `record`.
    fn entry(&self, tuple: &[RawBsonRef<'_>], record: &[u8]) -> Result<IndexEntryBytes> {
        let mut key = Vec::with_capacity(16 + record.len());
        key.extend_from_slice(&self.prefix());
        self.encode_tuple(tuple, &mut key);
        key.extend_from_slice(record);
        key.extend_from_slice(&u16::try_from(record.len()).unwrap_or(u16::MAX).to_be_bytes());
        Ok((key, self.key_document(tuple)?.into_bytes()))
    }

    /// Appends the encoding of a key tuple (one value per pattern field).
    fn encode_tuple(&self, tuple: &[RawBsonRef<'_>], out: &mut Vec<u8>) {
        let collation = self.collation.as_deref();
        for ((_, order), value) in self.pattern.fields().iter().zip(tuple) {
            encode_field(*order, *value, out, collation);
        }
    }

    /// The byte ranges of this index's keys under `prefix` (its id, or a collection id for
    /// `_id_`) that `bounds` admit, in ascending key order (see [`key_ranges`]).
    pub(super) fn key_ranges(&self, prefix: &[u8], bounds: &IndexBounds) -> Vec<KeyRange> {
        key_ranges(prefix, &self.pattern, bounds, self.collation.as_deref())
    }

    /// The limits of a scan from `min` (inclusive) to `max` (exclusive) key values: both
    /// must name this index's fields in order, as mongod requires.
    ///
    /// # Errors
    /// 51174 when they do not.
    pub fn key_limits(&self, min: Option<&RawDocument>, max: Option<&RawDocument>) -> Result<KeyLimits> {
        let fields = self.pattern.fields();
        let tuple = |doc: &RawDocument| -> Result<Vec<u8>> {
            let names: Vec<&str> = crate::query::path::fields(doc).map(|(k, _)| k).collect();
            if names.len() != fields.len() || names.iter().zip(fields).any(|(n, (f, _))| *n != f.dotted()) {
                return Err(Error::new(ErrorCode::Location51174, "The index chosen is not consistent with min/max"));
            }
            let values: Vec<RawBsonRef<'_>> = crate::query::path::fields(doc).map(|(_, v)| v).collect();
            let mut key = Vec::new();
            self.encode_tuple(&values, &mut key);
            Ok(key)
        };
        Ok(KeyLimits { start: min.map(tuple).transpose()?.unwrap_or_default(), end: max.map(tuple).transpose()? })
    }

    /// The key values `doc` has in this secondary index, as a scan within `bounds` (or
    /// `limits`) walking in `direction` meets it first: `find`'s `returnKey`. Of a multikey
    /// document's keys, the first within the bounds in scan order; hashed fields hold their
    /// hash.
    ///
    /// # Errors
    /// The document's key extraction errors (it was indexed, so none in practice).
    pub fn scanned_key(
        &self,
        doc: &RawDocument,
        bounds: &IndexBounds,
        limits: Option<&KeyLimits>,
        direction: Direction,
    ) -> Result<RawDocumentBuf> {
        // The record key only follows the key tuple: any bytes serve to place a key in a range.
        let (mut entries, _) = self.entries(doc, &[])?;
        entries.sort();
        if direction.is_backward() {
            entries.reverse();
        }
        let prefix = self.prefix();
        let ranges = match limits {
            Some(limits) => vec![limits.range_under(&prefix)],
            None => self.key_ranges(&prefix, bounds),
        };
        let within = |key: &Vec<u8>| {
            ranges.iter().any(|(start, end)| {
                key >= start
                    && match end {
                        Bound::Included(end) => key <= end,
                        Bound::Excluded(end) => key < end,
                        Bound::Unbounded => true,
                    }
            })
        };
        let chosen = entries.iter().find(|(key, _)| within(key)).or_else(|| entries.first());
        Ok(match chosen {
            Some((_, values)) => RawDocumentBuf::from_bytes(values.clone())
                .map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?,
            None => RawDocumentBuf::new(),
        })
    }

    /// A key tuple as a document named by the pattern's fields (`{a: 1}`), hashed fields
    /// holding their hash, as mongod's `keyValue` shows it.
    fn key_document(&self, tuple: &[RawBsonRef<'_>]) -> Result<RawDocumentBuf> {
        let mut doc = RawDocumentBuf::new();
        for ((field, order), value) in self.pattern.fields().iter().zip(tuple) {
            let name = <&bson::raw::CStr>::try_from(field.dotted())
                .map_err(|e| Error::new(ErrorCode::CannotCreateIndex, e.to_string()))?;
            match order {
                KeyOrder::Hashed => doc.append(name, hash_value(*value, self.collation.as_deref())),
                _ => doc.append(name, *value),
            }
        }
        Ok(doc)
    }
}

/// Appends one key field's encoding in the index's order for that field, strings by their
/// collation key under `collation`.
fn encode_field(order: KeyOrder, value: RawBsonRef<'_>, out: &mut Vec<u8>, collation: Option<&Collation>) {
    match order {
        KeyOrder::Ascending => encode_collated(value, out, collation, false),
        KeyOrder::Descending => encode_collated(value, out, collation, true),
        KeyOrder::Hashed => keys::encode_value(RawBsonRef::Int64(hash_value(value, collation)), out),
        KeyOrder::WildcardPath | KeyOrder::TextTerm | KeyOrder::Sphere | KeyOrder::Flat => {
            encode_collated(value, out, None, false);
        }
        KeyOrder::TextScore => {}
    }
}

/// The shapes a geo field's value holds: one, or each element of an array that is not itself
/// a coordinate pair (`None` for a value that is no shape).
fn geo_shapes(value: RawBsonRef<'_>) -> Vec<Option<std::result::Result<Shape, String>>> {
    match value {
        RawBsonRef::Array(items) if geo::shape::legacy_pair(value).is_none() => {
            items.into_iter().flatten().map(geo::shape_of).collect()
        }
        other => vec![geo::shape_of(other)],
    }
}

/// mongod's 16755 for a document whose geometry a 2dsphere index cannot read.
fn cannot_extract(doc: &RawDocument, why: &str) -> Error {
    let shown = Document::try_from(doc).map(|d| d.to_string()).unwrap_or_default();
    Error::new(ErrorCode::Location16755, format!("Can't extract geo keys: {shown}  {why}"))
}

/// A 2d index's grid: `bits` of precision per coordinate over `[min, max)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlatGrid {
    /// Bits per coordinate (1 to 32; 26 by default).
    pub bits: u32,
    /// The lowest coordinate (-180 by default).
    pub min: f64,
    /// The bound above the highest coordinate (180 by default).
    pub max: f64,
}

impl Default for FlatGrid {
    fn default() -> Self {
        Self { bits: 26, min: -180.0, max: 180.0 }
    }
}

impl FlatGrid {
    /// The grid of a 2d index specification (`bits`, `min`, `max`).
    ///
    /// # Errors
    /// 13028 for bits outside 1 to 32, 13067 for a `max` not above `min`.
    pub fn of_spec(spec: &Document) -> Result<Self> {
        let number = |field: &str| {
            spec.get(field)
                .and_then(|v| v.as_f64().or_else(|| v.as_i32().map(f64::from)).or_else(|| v.as_i64().map(|n| n as f64)))
        };
        let mut grid = Self::default();
        if let Some(bits) = number("bits") {
            if !(1.0..=32.0).contains(&bits) {
                return Err(Error::new(ErrorCode::Location13028, "bits in geo index must be between 1 and 32"));
            }
            grid.bits = bits as u32;
        }
        grid.min = number("min").unwrap_or(grid.min);
        grid.max = number("max").unwrap_or(grid.max);
        if grid.max <= grid.min {
            return Err(Error::new(
                ErrorCode::CannotCreateIndex,
                "region for hash must be valid and have positive area",
            ));
        }
        Ok(grid)
    }

    /// The geohash of a point: each coordinate's cell on the grid, bits interleaved.
    ///
    /// # Errors
    /// 13027 for a point outside `[min, max)`.
    pub fn hash(&self, x: f64, y: f64) -> Result<i64> {
        let cells = 2_f64.powi(i32::try_from(self.bits).unwrap_or(26));
        let cell = |v: f64| -> Result<u64> {
            if !(self.min..self.max).contains(&v) {
                return Err(Error::new(
                    ErrorCode::Location13027,
                    format!("point not in interval of [ {}, {} )", self.min, self.max),
                ));
            }
            Ok((((v - self.min) / (self.max - self.min)) * cells) as u64)
        };
        let (cx, cy) = (cell(x)?, cell(y)?);
        let mut hash: u64 = 0;
        for bit in (0..self.bits).rev() {
            hash = (hash << 2) | (((cx >> bit) & 1) << 1) | ((cy >> bit) & 1);
        }
        Ok(hash as i64)
    }
}

/// Appends `value`'s key encoding (inverted when `descending`), its strings as `collation`'s
/// sort keys.
fn encode_collated(value: RawBsonRef<'_>, out: &mut Vec<u8>, collation: Option<&Collation>, descending: bool) {
    let sort_key = |s: &str, key: &mut Vec<u8>| {
        if let Some(collation) = collation {
            collation.write_sort_key(s, key);
        }
    };
    let strings: Option<keys::StringKey<'_>> = collation.map(|_| &sort_key as keys::StringKey<'_>);
    if descending {
        keys::encode_descending_with(value, out, strings);
    } else {
        keys::encode_value_with(value, out, strings);
    }
}

/// The 64-bit hash a hashed index stores: mongod's (see [`hashed`](super::hashed)), strings
/// under the index's collation hashed as their collation keys. Part of the on-disk format.
pub fn hash_value(value: RawBsonRef<'_>, collation: Option<&Collation>) -> i64 {
    let sort_key = |s: &str, key: &mut Vec<u8>| {
        if let Some(collation) = collation {
            collation.write_sort_key(s, key);
        }
    };
    let strings: Option<keys::StringKey<'_>> = collation.map(|_| &sort_key as keys::StringKey<'_>);
    crate::query::hashed::hash64(value, crate::query::hashed::DEFAULT_SEED, strings)
}

/// FNV-1a, 64 bits: a fixed, fast hash (the query-shape hash logs and the profiler show).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = Fnv1a::default();
    hash.write(bytes);
    hash.finish()
}

/// [`fnv1a`] as a [`Hasher`], for bytes given piece by piece: the same hash as of their
/// concatenation.
#[derive(Debug, Clone, Copy)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        self.0 = bytes.iter().fold(self.0, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The part of a unique index's entry `key` that must be unique: the index's prefix and the
/// key's values, without the record id (`record`) and its length.
pub(super) fn unique_tuple<'k>(key: &'k [u8], record: &[u8]) -> &'k [u8] {
    let tuple_len = key.len().saturating_sub(record.len() + 2);
    key.get(..tuple_len).unwrap_or_default()
}

/// The record key (encoded `_id`) at the end of an index entry key.
pub(super) fn record_of(key: &[u8]) -> Option<&[u8]> {
    let len_at = key.len().checked_sub(2)?;
    let len = usize::from(u16::from_be_bytes(key.get(len_at..)?.try_into().ok()?));
    key.get(len_at.checked_sub(len)?..len_at)
}

/// A half-open byte range of index keys: inclusive start, exclusive end (`Unbounded` past the
/// last key).
pub(super) type KeyRange = (Vec<u8>, Bound<Vec<u8>>);

/// Maximum key prefixes built from point sets before later fields are left unbounded.
const MAX_POINT_PREFIXES: usize = 4096;

/// The byte ranges of the keys under `prefix` (an index id, or a collection id for the `_id`
/// index) that `bounds` admit, in ascending key order. Fields after the first one that is not
/// bounded to points are scanned whole; the matcher filters what the ranges over-include.
fn key_ranges(
    prefix: &[u8],
    pattern: &KeyPattern,
    bounds: &IndexBounds,
    collation: Option<&Collation>,
) -> Vec<KeyRange> {
    if bounds.is_empty() {
        return Vec::new();
    }
    let mut prefixes = vec![prefix.to_vec()];
    for ((_, order), intervals) in pattern.fields().iter().zip(&bounds.fields) {
        let points = intervals.iter().all(Interval::is_point);
        if points && prefixes.len().saturating_mul(intervals.len()) <= MAX_POINT_PREFIXES {
            let mut encoded: Vec<Vec<u8>> = intervals
                .iter()
                .map(|i| {
                    let mut bytes = Vec::new();
                    encode_field(*order, i.start.as_raw_bson_ref(), &mut bytes, collation);
                    bytes
                })
                .collect();
            // Hashing and descending order reorder the values: keep the ranges in key order.
            encoded.sort();
            encoded.dedup();
            prefixes = prefixes
                .iter()
                .flat_map(|p| {
                    encoded.iter().map(move |e| {
                        let mut next = p.clone();
                        next.extend_from_slice(e);
                        next
                    })
                })
                .collect();
            continue;
        }
        if *order == KeyOrder::Hashed {
            break;
        }
        let mut ranges = Vec::with_capacity(prefixes.len() * intervals.len());
        for p in &prefixes {
            let mut field_ranges: Vec<KeyRange> =
                intervals.iter().map(|i| interval_range(p, *order, i, collation)).collect();
            if *order == KeyOrder::Descending {
                field_ranges.reverse();
            }
            ranges.extend(field_ranges);
        }
        return ranges;
    }
    prefixes.into_iter().map(prefix_range).collect()
}

/// The byte range of `prefix` followed by a value in `interval` (and anything after it).
fn interval_range(prefix: &[u8], order: KeyOrder, interval: &Interval, collation: Option<&Collation>) -> KeyRange {
    let encode = |value: &bson::RawBson| {
        let mut bytes = prefix.to_vec();
        encode_field(order, value.as_raw_bson_ref(), &mut bytes, collation);
        bytes
    };
    // Descending keys store inverted bytes: the value interval's end is the low key.
    let ((low, low_inclusive), (high, high_inclusive)) = match order {
        KeyOrder::Descending => ((&interval.end, interval.end_inclusive), (&interval.start, interval.start_inclusive)),
        _ => ((&interval.start, interval.start_inclusive), (&interval.end, interval.end_inclusive)),
    };
    let low = encode(low);
    let start = if low_inclusive { low } else { prefix_successor(&low).unwrap_or(low) };
    let high = encode(high);
    let end = if high_inclusive {
        prefix_successor(&high).map_or(Bound::Unbounded, Bound::Excluded)
    } else {
        Bound::Excluded(high)
    };
    (start, end)
}

/// The range of every key starting with `prefix`.
pub(super) fn prefix_range(prefix: Vec<u8>) -> KeyRange {
    let end = prefix_successor(&prefix).map_or(Bound::Unbounded, Bound::Excluded);
    (prefix, end)
}

fn to_raw(doc: &Document) -> Result<RawDocumentBuf> {
    RawDocumentBuf::try_from(doc).map_err(|e| Error::new(ErrorCode::BadValue, e.to_string()))
}

#[cfg(test)]
mod tests {
    use bson::{doc, rawdoc};

    use super::*;

    #[test]
    fn index_entries_end_with_their_record() {
        let index = Index::from_spec(7, doc! { "v": 2, "key": { "a": 1 }, "name": "a_1" }, false).unwrap();
        let mut record = Vec::new();
        keys::encode_value(RawBsonRef::String("id-1"), &mut record);
        let (mut entries, multikey) = index.entries(&rawdoc! { "_id": "id-1", "a": [3, 1] }, &record).unwrap();
        entries.sort();
        assert!(multikey);
        assert_eq!(entries.len(), 2);
        for (key, value) in &entries {
            assert!(key.starts_with(&7u64.to_be_bytes()));
            assert_eq!(record_of(key), Some(record.as_slice()));
            assert!(RawDocument::from_bytes(value).unwrap().get("a").unwrap().is_some());
        }
        assert!(entries[0].0 < entries[1].0, "1 sorts before 3");
    }

    #[test]
    fn index_entries_skip_sparse_and_partial_misses() {
        let sparse = Index::from_spec(1, doc! { "key": { "a": 1 }, "name": "a_1", "sparse": true }, false).unwrap();
        assert!(sparse.entries(&rawdoc! { "b": 1 }, b"r").unwrap().0.is_empty());
        assert_eq!(sparse.entries(&rawdoc! { "a": null }, b"r").unwrap().0.len(), 1);
        let partial = Index::from_spec(
            2,
            doc! { "key": { "a": 1 }, "name": "a_1", "partialFilterExpression": { "a": { "$gt": 5 } } },
            false,
        )
        .unwrap();
        assert!(partial.entries(&rawdoc! { "a": 1 }, b"r").unwrap().0.is_empty());
        assert_eq!(partial.entries(&rawdoc! { "a": 6 }, b"r").unwrap().0.len(), 1);
    }

    #[test]
    fn index_hash_is_stable_and_type_blind_for_numbers() {
        assert_eq!(hash_value(RawBsonRef::Int32(1), None), hash_value(RawBsonRef::Double(1.0), None));
        assert_ne!(hash_value(RawBsonRef::Int32(1), None), hash_value(RawBsonRef::Int32(2), None));
        // Pinned: stored hashes must never change (mongod's hash of "abc", from its
        // hasher_test.cpp).
        assert_eq!(hash_value(RawBsonRef::String("abc"), None), 8_478_485_326_885_698_097);
    }

    fn scan(ranges: &[KeyRange], keys: &[Vec<u8>]) -> Vec<usize> {
        (0..keys.len())
            .filter(|&i| {
                ranges.iter().any(|(start, end)| {
                    keys[i] >= *start
                        && match end {
                            Bound::Excluded(end) => keys[i] < *end,
                            _ => true,
                        }
                })
            })
            .collect()
    }

    #[test]
    fn index_key_ranges_select_exactly_the_bounded_keys() {
        for spec in [doc! { "a": 1, "b": 1 }, doc! { "a": -1, "b": 1 }, doc! { "a": 1, "b": -1 }] {
            let index = Index::from_spec(3, doc! { "key": spec.clone(), "name": "x" }, false).unwrap();
            let docs: Vec<_> = (0..6).flat_map(|a| (0..3).map(move |b| rawdoc! { "a": a, "b": b })).collect();
            let keys: Vec<Vec<u8>> = docs.iter().map(|d| index.entries(d, b"r").unwrap().0[0].0.clone()).collect();
            let cases = [
                rawdoc! { "a": 2 },
                rawdoc! { "a": { "$gt": 1, "$lte": 3 } },
                rawdoc! { "a": { "$in": [1, 4] }, "b": { "$lt": 2 } },
                rawdoc! { "a": 3, "b": 1 },
                rawdoc! { "a": { "$gt": 9 } },
            ];
            for filter in cases {
                let bounds = IndexBounds::for_filter(&filter, &index.pattern, false, false);
                let ranges = index.key_ranges(&index.prefix(), &bounds);
                let filter_compiled = Filter::parse(&filter).unwrap();
                let expected: Vec<usize> = (0..docs.len()).filter(|&i| filter_compiled.matches(&docs[i])).collect();
                // Point prefixes then one range: the ranges are exact.
                assert_eq!(scan(&ranges, &keys), expected, "{spec} {filter:?}");
                for pair in ranges.windows(2) {
                    assert!(pair[0].0 <= pair[1].0, "ranges in key order");
                }
            }
        }
    }

    #[test]
    fn index_prefix_successor_skips_trailing_ff() {
        assert_eq!(prefix_successor(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_successor(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xFF, 0xFF]), None);
    }
}
