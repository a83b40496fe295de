//! Collection validators: the `validator` option of `create`/`collMod`, compiled once per
//! catalog version with its `validationLevel` and `validationAction`, and matched against the
//! documents writes store.
//!
//! Compiling follows mongod's collection-validator parser, which refuses the operators that
//! need a JavaScript engine, text search or a geospatial sort. When a document fails,
//! [`Validator::error_info`] explains why in mongod's `errInfo` shape (see
//! [`validation_error`](super::validation_error)).

use std::sync::Arc;

use bson::{Document, RawBsonRef, RawDocument, RawDocumentBuf};

use super::collation::Collation;
use super::elements::{fields, items};
use super::error::QueryError;
use super::filter::{Filter, is_operator_document};
use super::validation_error;
use crate::error::ErrorCode;

/// Which writes a validator checks (`validationLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValidationLevel {
    /// Every insert and update (mongod's default).
    #[default]
    Strict,
    /// Inserts, and updates of documents that already pass.
    Moderate,
    /// None.
    Off,
}

impl ValidationLevel {
    /// The level named `name` (`strict`, `moderate`, `off`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "strict" => Some(Self::Strict),
            "moderate" => Some(Self::Moderate),
            "off" => Some(Self::Off),
            _ => None,
        }
    }
}

/// What happens to a write whose document fails (`validationAction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValidationAction {
    /// The write fails with 121 DocumentValidationFailure (mongod's default).
    #[default]
    Error,
    /// The write goes through and the server logs a warning.
    Warn,
}

impl ValidationAction {
    /// The action named `name` (`error`, `warn`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "error" => Some(Self::Error),
            "warn" => Some(Self::Warn),
            _ => None,
        }
    }
}

/// A compiled collection validator.
#[derive(Debug)]
pub struct Validator {
    /// The validator as written, from which failures are explained.
    spec: RawDocumentBuf,
    filter: Filter,
    /// The collection's default collation, which the validator's comparisons use.
    collation: Option<Arc<Collation>>,
    level: ValidationLevel,
    action: ValidationAction,
}

impl Validator {
    /// Compiles the validator of a collection's options (`validator`, `validationLevel`,
    /// `validationAction`, and `collation`, whose string comparisons the validator uses).
    /// `None` when there is no validator or it is empty, as mongod's `validator: {}`.
    ///
    /// # Errors
    /// The errors of [`Validator::compile`].
    pub fn from_options(options: &Document) -> Result<Option<Self>, QueryError> {
        let Ok(spec) = options.get_document("validator") else { return Ok(None) };
        if spec.is_empty() {
            return Ok(None);
        }
        let spec = RawDocumentBuf::try_from(spec).map_err(QueryError::invalid_bson)?;
        let collation = match options.get_document("collation") {
            Ok(collation) => {
                let raw = RawDocumentBuf::try_from(collation).map_err(QueryError::invalid_bson)?;
                Collation::parse(&raw)?.map(Arc::new)
            }
            Err(_) => None,
        };
        let filter = Self::compile(&spec)?.with_collation(collation.as_ref());
        // Stored options were checked when they were set; an unknown name keeps the default.
        let level = options.get_str("validationLevel").ok().and_then(ValidationLevel::parse).unwrap_or_default();
        let action = options.get_str("validationAction").ok().and_then(ValidationAction::parse).unwrap_or_default();
        Ok(Some(Self { spec, filter, collation, level, action }))
    }

    /// Compiles a validator document as mongod's collection-validator parser does: a query
    /// filter without `$where`, `$text`, `$near`, `$nearSphere` or `$geoNear`.
    ///
    /// # Errors
    /// 2 BadValue for `$where` and `$text`, 5626500 for the geospatial sorts, 17276 for an
    /// `$expr` reading a variable nothing binds, and the errors of [`Filter::parse`].
    pub fn compile(spec: &RawDocument) -> Result<Filter, QueryError> {
        refuse_disallowed(spec)?;
        Filter::parse(spec)
    }

    /// `validationLevel`.
    pub fn level(&self) -> ValidationLevel {
        self.level
    }

    /// `validationAction`.
    pub fn action(&self) -> ValidationAction {
        self.action
    }

    /// Whether `doc` passes. A validator whose evaluation fails (an `$expr` dividing by zero)
    /// does not pass, as in mongod.
    pub fn matches(&self, doc: &RawDocument) -> bool {
        self.filter.try_matches(doc).unwrap_or(false)
    }

    /// mongod's `errInfo` for a document that does not pass: `failingDocumentId` and
    /// `details`.
    pub fn error_info(&self, doc: &RawDocument) -> Document {
        validation_error::generate(&self.spec, doc, self.collation.as_ref())
    }
}

/// Refuses what mongod's validator parser leaves out of its allowed features (JavaScript,
/// text search, geospatial sorts), wherever the filter's logical operators may hold it.
fn refuse_disallowed(spec: &RawDocument) -> Result<(), QueryError> {
    for (key, value) in fields(spec) {
        match key {
            "$where" | "$text" => return Err(QueryError::bad_value(format!("{key} is not allowed in this context"))),
            "$expr" => refuse_unbound_variables(value, &mut Vec::new())?,
            "$and" | "$or" | "$nor" => {
                if let RawBsonRef::Array(entries) = value {
                    for entry in items(entries) {
                        if let RawBsonRef::Document(entry) = entry {
                            refuse_disallowed(entry)?;
                        }
                    }
                }
            }
            _ if key.starts_with('$') => {}
            _ => {
                if let RawBsonRef::Document(ops) = value
                    && is_operator_document(ops)
                    && fields(ops).any(|(op, _)| matches!(op, "$near" | "$nearSphere" | "$geoNear"))
                {
                    return Err(QueryError::new(ErrorCode::Location5626500, super::filter::GEO_NEAR_NOT_ALLOWED));
                }
            }
        }
    }
    Ok(())
}

/// The variables every expression may read.
const SYSTEM_VARIABLES: &[&str] =
    &["ROOT", "CURRENT", "REMOVE", "NOW", "CLUSTER_TIME", "DESCEND", "PRUNE", "KEEP", "SEARCH_META", "USER_ROLES"];

/// mongod resolves an expression's variables when it parses it, so a validator naming one
/// that neither the system nor an enclosing `$let`, `$map`, `$filter` or `$reduce` binds is
/// refused when it is set (17276), not when a document meets it. `bound` holds the names the
/// enclosing operators bind.
fn refuse_unbound_variables(value: RawBsonRef<'_>, bound: &mut Vec<String>) -> Result<(), QueryError> {
    match value {
        RawBsonRef::String(text) => {
            let Some(name) = text.strip_prefix("$$").and_then(|rest| rest.split('.').next()) else { return Ok(()) };
            if name.is_empty() || SYSTEM_VARIABLES.contains(&name) || bound.iter().any(|b| b == name) {
                return Ok(());
            }
            Err(QueryError::new(ErrorCode::Location17276, format!("Use of undefined variable: {name}")))
        }
        RawBsonRef::Array(list) => items(list).try_for_each(|item| refuse_unbound_variables(item, bound)),
        RawBsonRef::Document(spec) => {
            if fields(spec).next().is_some_and(|(operator, _)| operator == "$literal") {
                return Ok(());
            }
            let Some((operator, RawBsonRef::Document(args))) = fields(spec).next() else {
                return fields(spec).try_for_each(|(_, v)| refuse_unbound_variables(v, bound));
            };
            let arg = |name: &str| args.get(name).ok().flatten();
            // The names the operator binds, and the arguments that see them.
            let (names, scoped): (Vec<String>, &[&str]) = match operator {
                "$let" => match arg("vars") {
                    Some(RawBsonRef::Document(vars)) => {
                        for (_, definition) in fields(vars) {
                            refuse_unbound_variables(definition, bound)?;
                        }
                        (fields(vars).map(|(name, _)| name.to_owned()).collect(), &["in"])
                    }
                    _ => (Vec::new(), &["in"]),
                },
                "$map" | "$filter" => {
                    let name = match arg("as") {
                        Some(RawBsonRef::String(name)) => name,
                        _ => "this",
                    };
                    (vec![name.to_owned()], &["in", "cond"])
                }
                "$reduce" => (vec!["value".to_owned(), "this".to_owned()], &["in"]),
                _ => return fields(spec).try_for_each(|(_, v)| refuse_unbound_variables(v, bound)),
            };
            for (name, value) in fields(args) {
                if !scoped.contains(&name) && name != "vars" {
                    refuse_unbound_variables(value, bound)?;
                }
            }
            let depth = bound.len();
            bound.extend(names);
            let checked =
                scoped.iter().filter_map(|name| arg(name)).try_for_each(|v| refuse_unbound_variables(v, bound));
            bound.truncate(depth);
            checked
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use bson::{doc, rawdoc};

    use super::*;

    fn options(validator: Document) -> Document {
        doc! { "validator": validator }
    }

    #[test]
    fn validator_empty_means_none_and_level_action_default() -> Result<(), QueryError> {
        assert!(Validator::from_options(&options(doc! {}))?.is_none());
        assert!(Validator::from_options(&doc! { "validationLevel": "off" })?.is_none());
        let validator = Validator::from_options(&options(doc! { "a": { "$type": "string" } }))?
            .ok_or_else(|| QueryError::bad_value("expected a validator"))?;
        assert_eq!((validator.level(), validator.action()), (ValidationLevel::Strict, ValidationAction::Error));
        assert!(validator.matches(&rawdoc! { "a": "x" }));
        assert!(!validator.matches(&rawdoc! { "a": 1 }));
        Ok(())
    }

    #[test]
    fn validator_refuses_where_text_and_geo_sorts() {
        let code = |spec: bson::RawDocumentBuf| Validator::compile(&spec).map(|_| ()).map_err(|e| e.code().code());
        assert_eq!(code(rawdoc! { "$where": "this.a" }), Err(2));
        assert_eq!(code(rawdoc! { "$or": [{ "$text": { "$search": "x" } }] }), Err(2));
        assert_eq!(code(rawdoc! { "loc": { "$near": [0, 0] } }), Err(5626500));
        assert_eq!(code(rawdoc! { "$jsonSchema": { "invalid": 1 } }), Err(9));
        assert_eq!(code(rawdoc! { "a": { "$exists": true } }), Ok(()));
        assert_eq!(code(rawdoc! { "$expr": { "$eq": ["$a", "$$unbound"] } }), Err(17276));
        assert_eq!(code(rawdoc! { "$and": [{ "$expr": { "$eq": ["$a", "$$ROOT.a"] } }] }), Ok(()));
        assert_eq!(code(rawdoc! { "$expr": { "$literal": "$$anything" } }), Ok(()));
    }

    #[test]
    fn validator_variables_bound_by_enclosing_operators() {
        // `$let`, `$map` and friends are not built yet, so their scoping is checked alone.
        let unbound = |spec: bson::RawDocumentBuf| {
            refuse_unbound_variables(RawBsonRef::Document(&spec), &mut Vec::new()).map_err(|e| e.code().code())
        };
        assert_eq!(
            unbound(rawdoc! { "$let": { "vars": { "x": "$a" }, "in": { "$eq": ["$$x", "$$CURRENT.a"] } } }),
            Ok(())
        );
        assert_eq!(unbound(rawdoc! { "$let": { "vars": { "x": "$$x" }, "in": true } }), Err(17276));
        assert_eq!(unbound(rawdoc! { "$map": { "input": "$a", "as": "e", "in": "$$e.ok" } }), Ok(()));
        assert_eq!(unbound(rawdoc! { "$filter": { "input": "$a", "cond": "$$this" } }), Ok(()));
        assert_eq!(unbound(rawdoc! { "$map": { "input": "$$e", "as": "e", "in": 1 } }), Err(17276));
        assert_eq!(
            unbound(rawdoc! { "$reduce": { "input": "$a", "initialValue": 0, "in": ["$$value", "$$this"] } }),
            Ok(())
        );
        assert_eq!(unbound(rawdoc! { "$add": [1, { "$let": { "vars": {}, "in": "$$y" } }] }), Err(17276));
    }

    #[test]
    fn validator_failing_expression_does_not_pass() -> Result<(), QueryError> {
        let validator = Validator::from_options(&options(doc! { "$expr": { "$divide": [10, 0] } }))?
            .ok_or_else(|| QueryError::bad_value("expected a validator"))?;
        assert!(!validator.matches(&rawdoc! { "_id": 1 }));
        Ok(())
    }
}
