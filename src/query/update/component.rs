//! Update path components that address array elements: the array operators `$`, `$[]` and
//! `$[<identifier>]`, and numeric indexes.

/// A path component that picks array elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ArrayOperator<'a> {
    /// `$`: the element the query matched.
    First,
    /// `$[]`: every element.
    All,
    /// `$[id]`: the elements matching the array filter `id`.
    Filtered(&'a str),
}

pub(super) fn array_operator(part: &str) -> Option<ArrayOperator<'_>> {
    if part == "$" {
        return Some(ArrayOperator::First);
    }
    match part.strip_prefix("$[").and_then(|p| p.strip_suffix(']')) {
        Some("") => Some(ArrayOperator::All),
        Some(id) => Some(ArrayOperator::Filtered(id)),
        None => None,
    }
}

/// An update path component addresses an array element when it is all digits (mongod's
/// update path support accepts leading zeros here, unlike the matcher).
pub(super) fn update_index(name: &str) -> Option<usize> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(name.parse().unwrap_or(usize::MAX))
}
