//! The server error: a MongoDB error code the client sees, and detail only the logs see.

use bson::{Document, doc};

macro_rules! error_codes {
    ($($(#[$doc:meta])* $name:ident = $code:literal,)*) => {
        /// A MongoDB error code; variants use mongod's `codeName` verbatim.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($(#[$doc])* $name,)*
        }

        impl ErrorCode {
            /// The numeric `code` drivers match on.
            pub fn code(self) -> i32 {
                match self { $(ErrorCode::$name => $code,)* }
            }

            /// The `codeName`.
            pub fn name(self) -> &'static str {
                match self { $(ErrorCode::$name => stringify!($name),)* }
            }
        }
    };
}

error_codes! {
    /// An unexpected server-side failure.
    InternalError = 1,
    /// An argument has an invalid value.
    BadValue = 2,
    /// A command or operator is malformed.
    FailedToParse = 9,
    /// A value has the wrong BSON type.
    TypeMismatch = 14,
    /// A BSON document is malformed.
    InvalidBSON = 22,
    /// The command name is not known.
    CommandNotFound = 59,
    /// Options conflict or are missing.
    InvalidOptions = 72,
    /// A generic failure.
    OperationFailed = 96,
    /// The legacy op code is not supported for this request.
    UnsupportedOpQueryCommand = 352,
    /// The command is known but not built yet.
    NotImplemented = 238,
    /// A second hello tried to replace the client metadata.
    ClientMetadataCannotBeMutated = 186,
    /// An OP_MSG arrived without `$db`.
    MissingDatabase = 40571,
}

/// A failed command, as the client will see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Error(Box<ErrorInner>);

#[derive(Debug, Clone, PartialEq)]
struct ErrorInner {
    code: ErrorCode,
    message: String,
    internal: Option<String>,
}

impl Error {
    /// An error with `code` and the message shown to the client.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(Box::new(ErrorInner { code, message: message.into(), internal: None }))
    }

    /// Attaches detail for the server log only (never sent to the client).
    #[must_use]
    pub fn with_internal(mut self, detail: impl Into<String>) -> Self {
        self.0.internal = Some(detail.into());
        self
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        self.0.code
    }

    /// The message shown to the client.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// Detail kept for the logs.
    pub fn internal(&self) -> Option<&str> {
        self.0.internal.as_deref()
    }

    /// The reply mongod sends for a failed command: `{ok: 0, errmsg, code, codeName}`.
    pub fn to_reply(&self) -> Document {
        doc! {
            "ok": 0.0,
            "errmsg": self.message(),
            "code": self.code().code(),
            "codeName": self.code().name(),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code().name(), self.code().code(), self.message())
    }
}

impl std::error::Error for Error {}

/// A shorthand for handler results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reply_has_mongod_shape() {
        let err = Error::new(ErrorCode::CommandNotFound, "no such command: 'x'").with_internal("secret");
        let reply = err.to_reply();
        assert_eq!(reply.get_f64("ok").ok(), Some(0.0));
        assert_eq!(reply.get_str("errmsg").ok(), Some("no such command: 'x'"));
        assert_eq!(reply.get_i32("code").ok(), Some(59));
        assert_eq!(reply.get_str("codeName").ok(), Some("CommandNotFound"));
        assert!(!reply.contains_key("internal"), "internal detail must not reach the client");
    }
}
