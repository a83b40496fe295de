//! The one error type of the query layer: the MongoDB code and the message the client sees.

use std::fmt;

use crate::error::{Error, ErrorCode};

/// A failure while parsing or applying a filter, projection, sort or update document.
///
/// It carries mongod's code and message verbatim, so the command layer can hand it to the
/// client unchanged (through `From<QueryError> for Error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    code: ErrorCode,
    message: String,
}

impl QueryError {
    /// An error with `code` and the message shown to the client.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// 2 BadValue.
    pub(crate) fn bad_value(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadValue, message)
    }

    /// 9 FailedToParse.
    pub(crate) fn failed_to_parse(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::FailedToParse, message)
    }

    /// What mongod without a JavaScript engine answers for `$function` and `$accumulator`:
    /// 31264, with its message word for word (it names no operator). mongod raises it when
    /// the script would first run; Monarch, which can never run one, raises it at parse time.
    pub(crate) fn no_javascript() -> Self {
        Self::new(ErrorCode::Location31264, "Cannot run server-side javascript without the javascript engine enabled")
    }

    /// 238 NotImplemented, for query features that mongod has and Monarch does not have yet.
    pub(crate) fn not_implemented(feature: &str) -> Self {
        Self::new(ErrorCode::NotImplemented, format!("{feature} is not implemented yet"))
    }

    /// 22 InvalidBSON, for a document that cannot be walked; the wire layer normally rejects
    /// these first.
    pub(crate) fn invalid_bson(detail: impl fmt::Display) -> Self {
        Self::new(ErrorCode::InvalidBSON, format!("invalid BSON: {detail}"))
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message shown to the client.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code.name(), self.code.code(), self.message)
    }
}

impl std::error::Error for QueryError {}

impl From<QueryError> for Error {
    fn from(err: QueryError) -> Self {
        Error::new(err.code, err.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_into_server_error_keeps_code_and_message() {
        let err: Error = QueryError::bad_value("unknown operator: $foo").into();
        assert_eq!(err.code(), ErrorCode::BadValue);
        assert_eq!(err.message(), "unknown operator: $foo");
    }

    #[test]
    fn error_not_implemented_is_238() {
        let err = QueryError::not_implemented("$regex");
        assert_eq!(err.code().code(), 238);
        assert_eq!(err.message(), "$regex is not implemented yet");
    }
}
