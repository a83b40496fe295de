//! The elements of raw BSON as the query layer reads them: a document's fields, an array's
//! items, a DBPointer's value bytes. The bottom of the query layer: it imports nothing from it,
//! so that printing ([`super::render`]), ordering ([`super::order`]) and paths
//! ([`super::path`]) can all read documents without reaching each other.

use bson::{RawArray, RawBsonRef, RawDbPointerRef, RawDocument, RawDocumentBuf};

/// The fields of a document. Raw documents reaching the query layer were validated by the
/// request layer, so a malformed tail simply ends the iteration.
pub(crate) fn fields(doc: &RawDocument) -> impl Iterator<Item = (&str, RawBsonRef<'_>)> {
    doc.iter().map_while(Result::ok).map(|(key, value)| (key.as_str(), value))
}

/// The elements of an array; see [`fields`] for malformed input.
pub(crate) fn items(arr: &RawArray) -> impl Iterator<Item = RawBsonRef<'_>> {
    arr.into_iter().map_while(Result::ok)
}

/// The encoded value bytes of a DBPointer (namespace string, then ObjectId), which mongod
/// compares by size then bytes. bson keeps the parts private, so the value is encoded once.
pub(crate) fn db_pointer_value(p: RawDbPointerRef<'_>) -> Vec<u8> {
    let mut doc = RawDocumentBuf::new();
    let Ok(key) = <&bson::raw::CStr>::try_from("") else { return Vec::new() };
    doc.append(key, RawBsonRef::DbPointer(p));
    let bytes = doc.as_bytes();
    // length (4) + type (1) + empty key's terminator (1) ... value ... document terminator (1)
    bytes.get(6..bytes.len().saturating_sub(1)).unwrap_or_default().to_vec()
}

/// The namespace bytes and id of a DBPointer, read from [`db_pointer_value`]'s bytes:
/// `i32 len(ns)+1, ns, 00, 12-byte id`.
pub(crate) fn db_pointer_parts(p: RawDbPointerRef<'_>) -> Option<(Vec<u8>, [u8; 12])> {
    let bytes = db_pointer_value(p);
    let len_with_nul: [u8; 4] = bytes.get(0..4)?.try_into().ok()?;
    let len_with_nul = usize::try_from(i32::from_le_bytes(len_with_nul)).ok()?;
    let ns_end = 4usize.checked_add(len_with_nul.checked_sub(1)?)?;
    let namespace = bytes.get(4..ns_end)?.to_vec();
    let id_start = ns_end.checked_add(1)?;
    let id: [u8; 12] = bytes.get(id_start..id_start.checked_add(12)?)?.try_into().ok()?;
    Some((namespace, id))
}
