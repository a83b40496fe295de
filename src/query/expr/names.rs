//! The rules for user variable names (`let`, `$$name`, `as`), shared by the parser, the
//! evaluator and the operators that bind variables.

use crate::error::ErrorCode;
use crate::query::error::QueryError;

/// mongod's `validateNameForUserWrite` (a `let` name, 16866/16867) and
/// `validateNameForUserRead` (a `$$name`, 16869/16870): not empty, and starting with a
/// lower-case letter or a non-ASCII character; reads also accept an upper-case letter, as
/// mongod's own variables are spelled that way.
pub(super) fn validate_variable_name(name: &str, write: bool) -> Result<(), QueryError> {
    let (empty, invalid) = if write {
        (ErrorCode::Location16866, ErrorCode::Location16867)
    } else {
        (ErrorCode::Location16869, ErrorCode::Location16870)
    };
    if name.is_empty() {
        return Err(QueryError::new(empty, "empty variable names are not allowed"));
    }
    let first_ok = |c: char| c.is_ascii_lowercase() || !c.is_ascii() || (!write && c.is_ascii_uppercase());
    if !name.starts_with(first_ok) {
        return Err(QueryError::new(
            invalid,
            format!("'{name}' starts with an invalid character for a user variable name"),
        ));
    }
    Ok(())
}
