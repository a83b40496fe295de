//! The memory one evaluation may copy out of the document and its variables, counted as the
//! copies are made.

use bson::{Bson, RawBsonRef};

use crate::error::ErrorCode;
use crate::query::error::QueryError;
use crate::query::limits;

/// The most memory the values one evaluation copies out of the document may take: 100 MiB,
/// the limit mongod gives its other in-memory work (`internalQueryMaxBlockingSortMemoryUsageBytes`,
/// `$push`, `$range`). mongod shares values by reference; Monarch copies them, so an
/// expression naming a large field many times (`[$s, $s, ...]`) is bounded here.
///
/// Every expression node is evaluated at most once per evaluation (no operator iterates), so
/// what an evaluation holds is at most these copies, its literals (part of the request) and
/// the results built from them: counting the copies as they are made bounds it, at constant
/// cost per copy.
pub const MAX_COPIED_BYTES: usize = 100 * 1024 * 1024;

/// The memory an evaluation has copied out of the document and its variables so far.
#[derive(Debug, Default)]
pub struct Budget {
    copied: usize,
}

impl Budget {
    /// Counts a copy of `raw_bytes` holding `values` owned values.
    ///
    /// # Errors
    /// 146 ExceededMemoryLimit past [`MAX_COPIED_BYTES`].
    pub(super) fn charge(&mut self, raw_bytes: usize, values: usize) -> Result<(), QueryError> {
        let cost = raw_bytes.saturating_add(values.saturating_mul(std::mem::size_of::<Bson>()));
        self.copied = self.copied.saturating_add(cost);
        if self.copied > MAX_COPIED_BYTES {
            return Err(QueryError::new(
                ErrorCode::ExceededMemoryLimit,
                format!(
                    "Expression evaluation used too much memory ({} bytes) and cannot spill to disk. Memory limit: \
                     {MAX_COPIED_BYTES} bytes",
                    self.copied
                ),
            ));
        }
        Ok(())
    }

    /// Copies `value` out of the document (or a variable), counting the copy.
    ///
    /// # Errors
    /// 146 ExceededMemoryLimit past [`MAX_COPIED_BYTES`]; those of [`limits::to_bson`].
    pub(super) fn copy(&mut self, value: RawBsonRef<'_>) -> Result<Bson, QueryError> {
        let raw_bytes = match value {
            RawBsonRef::Document(d) => d.as_bytes().len(),
            RawBsonRef::Array(a) => a.as_bytes().len(),
            RawBsonRef::String(s) | RawBsonRef::Symbol(s) | RawBsonRef::JavaScriptCode(s) => s.len(),
            RawBsonRef::Binary(b) => b.bytes.len(),
            RawBsonRef::JavaScriptCodeWithScope(c) => c.code.len() + c.scope.as_bytes().len(),
            _ => 0,
        };
        let (copy, values) = limits::to_bson_counted(value)?;
        self.charge(raw_bytes, values)?;
        Ok(copy)
    }
}
