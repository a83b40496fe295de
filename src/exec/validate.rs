//! Document validation on writes: which documents a collection's validator checks (its
//! `validationLevel`, the command's `bypassDocumentValidation`) and what a failure does (its
//! `validationAction`): 121 DocumentValidationFailure with mongod's `errInfo`, or mongod's
//! warning line 20294 "Document would fail validation" and the write goes through.

use bson::{Document, RawDocument, doc};

use crate::error::{Error, ErrorCode, Result};
use crate::log::LogSink;
use crate::obs::slowlog::redact;
use crate::query::{ValidationAction, ValidationLevel, Validator};
use crate::storage::Collection;

/// How one write command checks the documents it stores in one collection. Built once per
/// command; a collection without a validator costs nothing more.
pub struct Validation<'a> {
    /// `Ok(None)` when nothing is checked: no validator, level `off`, or bypassed. The error
    /// of a stored validator that no longer compiles, which fails every write (bypass too,
    /// as in mongod).
    validator: std::result::Result<Option<&'a Validator>, Error>,
    collection: &'a Collection,
    log: &'a LogSink,
    /// `redactClientLogData`: warnings show documents redacted.
    redact: bool,
    connection_id: u64,
}

impl<'a> Validation<'a> {
    /// The checks of a write to `collection`; `bypass` is the command's
    /// `bypassDocumentValidation`. Warnings go to `log`, documents redacted when `redact`.
    pub fn new(log: &'a LogSink, redact: bool, connection_id: u64, collection: &'a Collection, bypass: bool) -> Self {
        let validator = match collection.validator() {
            Err(error) => Err(Error::from(error.clone())),
            Ok(Some(validator)) if !bypass && validator.level() != ValidationLevel::Off => Ok(Some(validator.as_ref())),
            Ok(_) => Ok(None),
        };
        Self { validator, collection, log, redact, connection_id }
    }

    /// Checks a document about to be inserted (an upsert's too).
    ///
    /// # Errors
    /// 121 DocumentValidationFailure, or the stored validator's parse error.
    pub fn check_insert(&self, doc: &RawDocument) -> Result<()> {
        let Some(validator) = self.validator.clone()? else { return Ok(()) };
        self.check(validator, doc, None)
    }

    /// Checks the document an update makes of `old`. Under `validationLevel: moderate` a
    /// document that failed already may keep failing.
    ///
    /// # Errors
    /// As [`Validation::check_insert`].
    pub fn check_update(&self, old: &RawDocument, new: &RawDocument) -> Result<()> {
        let Some(validator) = self.validator.clone()? else { return Ok(()) };
        self.check(validator, new, Some(old))
    }

    fn check(&self, validator: &Validator, doc: &RawDocument, old: Option<&RawDocument>) -> Result<()> {
        if validator.matches(doc) {
            return Ok(());
        }
        let info = validator.error_info(doc);
        match validator.action() {
            ValidationAction::Warn => {
                self.warn(doc, info);
                Ok(())
            }
            // mongod's moderate level checks the old document only once the new one failed.
            ValidationAction::Error
                if validator.level() == ValidationLevel::Moderate && old.is_some_and(|old| !validator.matches(old)) =>
            {
                Ok(())
            }
            ValidationAction::Error => {
                Err(Error::new(ErrorCode::DocumentValidationFailure, "Document failed validation")
                    .with_info(doc! { "errInfo": info }))
            }
        }
    }

    /// mongod's warning for a document let through by `validationAction: warn`. The document
    /// is redacted under `redactClientLogData`; the explanation is not, as in mongod 7.0.
    fn warn(&self, doc: &RawDocument, info: Document) {
        let document = Document::try_from(doc).unwrap_or_default();
        let document = if self.redact { redact(&document) } else { document };
        let attr = doc! { "namespace": self.collection.ns.full(), "document": document, "errInfo": info };
        self.log.write_warning(
            "STORAGE",
            20294,
            &format!("conn{}", self.connection_id),
            "Document would fail validation",
            &attr,
        );
    }
}
