//! `$changeStreamSplitLargeEvent`: an event too large for a reply is returned as fragments,
//! as mongod 7.0 splits it. Past the size limit, the event's fields other than `_id` are taken
//! smallest first (ties by name) and packed into as few fragments as fit the limit; each
//! fragment carries its own resume token (the event's, with the fragment's index) as `_id`
//! and `splitEvent: {fragment, of}`. A stream resumed from a fragment's token continues with
//! the next fragment.

use bson::raw::cstr;
use bson::{RawBsonRef, RawDocumentBuf};

use super::token::ResumeToken;
use crate::error::{Error, ErrorCode, Result};

/// The largest event returned whole (mongod's: its internal object limit, 16 MB and 16 KB,
/// less 8 KB for the rest of the reply).
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024 + 16 * 1024 - 8 * 1024;

/// The fragments of `event` (whose `_id` is `token`) after the first `skip`, each with its
/// token, or the event itself with `token` when it fits in [`MAX_EVENT_BYTES`].
///
/// # Errors
/// 280 ChangeStreamFatalError when resuming from a fragment (`skip` > 0) of an event that
/// is no longer split, or split into fewer fragments; 7182502 for an event of `_id` alone;
/// 7182500 for a field too large for a fragment of its own.
pub fn fragments(event: RawDocumentBuf, token: ResumeToken, skip: u32) -> Result<Vec<(ResumeToken, RawDocumentBuf)>> {
    if event.as_bytes().len() <= MAX_EVENT_BYTES {
        if skip > 0 {
            return Err(Error::new(
                ErrorCode::ChangeStreamFatalError,
                "Attempted to resume from a split event fragment, but the event in the resumed stream was not large enough to be split",
            ));
        }
        return Ok(vec![(token, event)]);
    }
    let mut fields = Vec::new();
    for element in event.iter_elements() {
        let element = element.map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
        let key = element.key().as_str();
        if key != "_id" {
            // Its bytes in a document: the type, the name and its terminator, the value.
            let bytes = 1 + key.len() + 1 + element.size();
            let value = element.value().map_err(|e| Error::new(ErrorCode::InvalidBSON, e.to_string()))?;
            fields.push((bytes, key, value));
        }
    }
    if fields.is_empty() {
        return Err(Error::new(
            ErrorCode::Location7182502,
            "Cannot split an empty event or an event containing solely '_id' field",
        ));
    }
    fields.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    // The largest head a fragment has (its `_id` and `splitEvent`), so every fragment fits.
    let head = fragment(token.fragment(u32::MAX), u32::MAX, u32::MAX, &[]).as_bytes().len();
    let limit = MAX_EVENT_BYTES - token_bytes(token);
    let mut groups: Vec<Vec<(&str, RawBsonRef<'_>)>> = Vec::new();
    let mut size = 0;
    for (bytes, key, value) in fields {
        match groups.last_mut() {
            Some(group) if size + bytes <= limit => group.push((key, value)),
            _ => {
                if head + bytes > limit {
                    return Err(Error::new(
                        ErrorCode::Location7182500,
                        format!(
                            "Splitting change event failed: fragment size {} is greater than maximum allowed fragment size {limit}",
                            head + bytes
                        ),
                    ));
                }
                groups.push(vec![(key, value)]);
                size = head;
            }
        }
        size += bytes;
    }
    let total = u32::try_from(groups.len()).unwrap_or(u32::MAX);
    if skip >= total {
        return Err(Error::new(
            ErrorCode::ChangeStreamFatalError,
            "Attempted to resume from a split event, but the resumed stream produced a different split. Ensure that the pipeline used to resume is the same as the original",
        ));
    }
    Ok(groups
        .iter()
        .zip(0..)
        .skip(skip as usize)
        .map(|(group, index)| (token.fragment(index), fragment(token.fragment(index), index + 1, total, group)))
        .collect())
}

/// One fragment: its token as `_id`, `splitEvent`, then its fields.
fn fragment(token: ResumeToken, number: u32, of: u32, fields: &[(&str, RawBsonRef<'_>)]) -> RawDocumentBuf {
    let mut fragment = RawDocumentBuf::new();
    fragment.append(cstr!("_id"), RawBsonRef::Document(&token_document(token)));
    let mut split = RawDocumentBuf::new();
    split.append(cstr!("fragment"), i32::try_from(number).unwrap_or(i32::MAX));
    split.append(cstr!("of"), i32::try_from(of).unwrap_or(i32::MAX));
    fragment.append(cstr!("splitEvent"), RawBsonRef::Document(&split));
    for (key, value) in fields {
        if let Ok(key) = <&bson::raw::CStr>::try_from(*key) {
            fragment.append(key, *value);
        }
    }
    fragment
}

fn token_document(token: ResumeToken) -> RawDocumentBuf {
    RawDocumentBuf::try_from(&token.to_document()).unwrap_or_default()
}

/// The bytes of a token as a document (room the reply keeps for `postBatchResumeToken`).
fn token_bytes(token: ResumeToken) -> usize {
    token_document(token.fragment(0)).as_bytes().len()
}
