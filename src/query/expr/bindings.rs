//! `let` bindings evaluated per document: a `$lookup`'s `let` binds its variables from each
//! input document before the sub-pipeline runs.

use bson::RawDocument;

use super::names::validate_variable_name;
use super::syntax::{Expression, Variables};
use crate::query::elements::fields;
use crate::query::error::QueryError;

/// Variable names and the expressions that give their values.
#[derive(Debug, Clone, Default)]
pub struct LetBindings {
    bindings: Vec<(String, Expression)>,
}

impl LetBindings {
    /// Parses `{name: expression, ...}`.
    ///
    /// # Errors
    /// 16866/16867 for a name mongod refuses for a user variable; the expressions' parse errors.
    pub fn parse(spec: &RawDocument) -> Result<Self, QueryError> {
        let mut bindings = Vec::new();
        for (name, value) in fields(spec) {
            validate_variable_name(name, true)?;
            bindings.push((name.to_owned(), Expression::parse(value)?));
        }
        Ok(Self { bindings })
    }

    /// `outer` with each variable bound to its expression's value in `root` (evaluated in
    /// `outer`'s scope).
    ///
    /// # Errors
    /// The expressions' evaluation errors.
    pub fn bind(&self, root: &RawDocument, outer: &Variables) -> Result<Variables, QueryError> {
        let mut vars = outer.clone();
        for (name, expression) in &self.bindings {
            let value = expression.evaluate(root, outer)?;
            let raw = value.map(bson::RawBson::try_from).transpose().map_err(QueryError::invalid_bson)?;
            vars.bound.push((name.clone(), raw));
        }
        Ok(vars)
    }
}
